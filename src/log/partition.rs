//! `PartitionLog`: one partition's log — an ordered set of segments, the log start
//! offset, the recovery point (everything below it is durable), the high watermark, the
//! leader-epoch cache and producer state.
//!
//! Durability: appends are *written* on return. They become durable through a
//! `FlushJob` (prepare → run, possibly on a blocking thread → complete), which is how the
//! L4 driver does group commit: one job's fsyncs cover every append made before it ran.
//! A failed job takes the partition offline for good; nothing is acknowledged after.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::batch::{self, BatchMeta, BATCH_HEADER_BYTES};
use super::checkpoint::{read_checkpoint, write_checkpoint};
use super::config::{LogConfig, TimestampType};
use super::epoch_cache::EpochCache;
use super::producer_state::ProducerState;
use super::segment::{file_stem, segment_paths, Segment};
use super::LogError;
use crate::base::{IoError, IoErrorKind, LeaderEpoch, Offset};
use crate::io::{join, read_exact_at, write_atomic, Clock, DiskRef, FileRef};
use crate::protocol;

/// Per-partition checkpoint: `log_start_offset`, `recovery_point`, `high_watermark`.
pub const PARTITION_CHECKPOINT: &str = "partition.checkpoint";
/// Kafka's leader-epoch checkpoint file name.
pub const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";

/// What an append did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendInfo {
    pub first_offset: Offset,
    pub last_offset: Offset,
    /// The broker's timestamp for LogAppendTime topics, -1 otherwise.
    pub log_append_time_ms: i64,
    pub log_start_offset: Offset,
    pub record_count: u64,
    /// The request was a retry of an idempotent producer's batch already in the log:
    /// nothing was appended, and the offsets are the original's.
    pub duplicate: bool,
}

/// What a read returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadResult {
    /// Whole, CRC-checked batches (possibly empty).
    pub records: Bytes,
    pub log_start_offset: Offset,
    pub log_end_offset: Offset,
    pub high_watermark: Offset,
}

/// The fsyncs that make everything appended so far durable. `run` blocks; the driver
/// runs it off the reactor, then hands the result to `PartitionLog::complete_flush`.
/// A write of the partition checkpoint (log start offset, recovery point, high
/// watermark) prepared on the log and run off it, so the fsyncs it takes never stall
/// the log's owner (see `broker::log_driver`).
#[derive(Clone, Debug)]
pub struct CheckpointJob {
    disk: DiskRef,
    path: String,
    row: [i64; 3],
}

impl CheckpointJob {
    /// Writes the checkpoint atomically (temp file, fsync, rename, fsync the directory).
    pub fn run(&self) -> Result<(), IoError> {
        write_checkpoint(self.disk.as_ref(), &self.path, &[self.row.to_vec()])
    }

    /// Simulated I/O latency the write accumulated (0 on a real disk).
    pub fn take_delay_ms(&self) -> u64 {
        self.disk.take_delay_ms()
    }
}

#[derive(Debug)]
pub struct FlushJob {
    disk: DiskRef,
    files: Vec<FileRef>,
    dir: Option<(DiskRef, String)>,
    /// Every offset below this is durable once the job succeeds.
    pub up_to: Offset,
    generation: u64,
}

impl FlushJob {
    /// Syncs the files, then the directory if entries changed. After `Ok`, every append
    /// made before `prepare_flush` survives a crash.
    pub fn run(&self) -> Result<(), IoError> {
        for file in &self.files {
            file.sync()?;
        }
        if let Some((disk, dir)) = &self.dir {
            disk.sync_dir(dir)?;
        }
        Ok(())
    }

    /// Simulated I/O latency the disk accumulated (always 0 on a real disk, whose
    /// latency is real): the driver waits this long before reporting the flush done,
    /// so in simulation an fsync takes virtual time like a real one.
    pub fn take_delay_ms(&self) -> u64 {
        self.disk.take_delay_ms()
    }
}

#[derive(Debug)]
pub struct PartitionLog {
    disk: DiskRef,
    dir: String,
    config: LogConfig,
    clock: Clock,
    segments: BTreeMap<Offset, Segment>,
    log_start_offset: Offset,
    recovery_point: Offset,
    high_watermark: Offset,
    epochs: EpochCache,
    producers: ProducerState,
    unflushed_messages: u64,
    first_unflushed_ms: Option<i64>,
    dir_dirty: bool,
    /// Bumped by every truncation, so a flush prepared before it cannot move the
    /// recovery point past the truncated end.
    generation: u64,
    offline: Option<String>,
    /// The headers of the batches being appended, kept to spare an allocation per append.
    append_scratch: Vec<BatchMeta>,
    /// The partition checkpoint row last written, if any since the log was opened.
    checkpointed: Option<[i64; 3]>,
}

/// Recovery statistics, for logs and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    pub segments_loaded: u64,
    pub segments_scanned: u64,
    pub bytes_truncated: u64,
    pub segments_dropped: u64,
    /// Damaged batches and holes kept in place (never served, offsets never reused).
    pub corrupt_batches: u64,
    /// Synced data could not be framed: the log was opened offline, nothing changed.
    pub offline: bool,
}

impl PartitionLog {
    /// Opens (creating if needed) the partition directory `dir` and recovers it: segments
    /// below the checkpointed recovery point are trusted (valid indexes reused), the rest
    /// are scanned batch by batch with CRC checks and cut at the first torn or corrupt
    /// batch; everything after a cut is dropped so the log stays a contiguous prefix.
    /// Only unsynced data (at or past the checkpointed recovery point) is ever cut: a bad
    /// batch below it is media damage, kept in place and refused by every read, and synced
    /// data that cannot be framed opens the partition offline with nothing changed.
    pub fn open(
        disk: DiskRef,
        dir: &str,
        config: LogConfig,
        clock: Clock,
    ) -> Result<(PartitionLog, RecoveryReport), LogError> {
        if !disk.exists(dir)? {
            // The directory's own entry must be durable before anything in it can be.
            disk.create_dir_all(dir)?;
            disk.sync_dir(crate::io::parent_of(dir))?;
        }
        let mut report = RecoveryReport::default();
        let names = disk.list(dir)?;
        let mut bases = Vec::new();
        for name in &names {
            if name.ends_with(".tmp") || name.ends_with(".deleted") {
                disk.remove(&join(dir, name))?;
                continue;
            }
            if let Some(stem) = name.strip_suffix(".log") {
                if stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()) {
                    if let Ok(base) = stem.parse::<i64>() {
                        bases.push(Offset(base));
                    }
                }
            }
        }
        bases.sort();
        let checkpoint = read_checkpoint(disk.as_ref(), &join(dir, PARTITION_CHECKPOINT), 3)
            .ok()
            .flatten();
        let (mut log_start_offset, checkpoint_recovery, checkpoint_hw) = match checkpoint.as_deref()
        {
            Some([row]) => (Offset(row[0]), Offset(row[1]), Offset(row[2])),
            _ => (Offset(0), Offset(0), Offset(0)),
        };

        let mut segments: BTreeMap<Offset, Segment> = BTreeMap::new();
        let mut cut = false;
        // The first segment recovery scanned (and may have truncated or re-indexed): from
        // there on, everything is synced before the log is called recovered.
        let mut first_scanned: Option<Offset> = None;
        // Synced data that cannot be framed: the partition is opened offline, untouched.
        let mut damaged: Option<String> = None;
        for (i, base) in bases.iter().enumerate() {
            if damaged.is_some() {
                // Leave later segments on disk as they are; the partition serves nothing.
                break;
            }
            // Offsets are contiguous across segments: a segment that does not start where
            // the previous one ends (its unsynced tail was lost in a crash) starts a hole.
            let previous_end = segments.values().next_back().map(|s| s.next_offset());
            if previous_end.is_some_and(|end| end != *base) {
                cut = true;
            }
            if cut {
                // A cut earlier in the log: later segments would leave a hole. Drop them.
                for path in segment_paths(dir, *base) {
                    if disk.exists(&path)? {
                        disk.remove(&path)?;
                    }
                }
                report.segments_dropped += 1;
                continue;
            }
            let mut segment =
                Segment::open(disk.as_ref(), dir, *base, config.index_interval_bytes)?;
            let next_base = bases.get(i + 1).copied();
            let below_recovery_point = next_base.is_some_and(|next| next <= checkpoint_recovery);
            // Trusted only if its header walk ends where its successor begins: the walk
            // checks no CRC, and a damaged offset delta must not move the log's end.
            let trusted = below_recovery_point
                && segment.load_trusted().is_ok()
                && Some(segment.next_offset()) == next_base;
            if trusted {
                report.segments_loaded += 1;
            } else {
                first_scanned.get_or_insert(*base);
                // Synced: below the checkpointed recovery point, and, when every message
                // is synced before its ack, all of a segment with a successor (`roll`
                // then syncs a segment before creating the next).
                let durable_end = match next_base {
                    Some(next) if config.syncs_every_message() => next.max(checkpoint_recovery),
                    _ => checkpoint_recovery,
                };
                let outcome = segment.recover(
                    durable_end,
                    next_base,
                    &|b: &[u8]| batch::crc_matches(b),
                    &mut |_| {},
                )?;
                report.segments_scanned += 1;
                report.bytes_truncated += outcome.truncated_bytes;
                report.corrupt_batches += outcome.corrupt_batches;
                if outcome.durable_damage {
                    damaged = Some(format!(
                        "segment {base} of {dir}: synced data is damaged at offset {} ({:?}); \
                         nothing was truncated, the partition stays offline",
                        segment.next_offset(),
                        outcome.stopped
                    ));
                } else if outcome.stopped.is_some() {
                    cut = true;
                }
            }
            segments.insert(*base, segment);
        }
        // Drop empty segments in the middle (a crash right after a roll), keeping the last.
        let empty_middle: Vec<Offset> = segments
            .iter()
            .rev()
            .skip(1)
            .filter(|(_, s)| s.is_empty())
            .map(|(b, _)| *b)
            .collect();
        for base in empty_middle {
            segments.remove(&base);
            for path in segment_paths(dir, base) {
                if disk.exists(&path)? {
                    disk.remove(&path)?;
                }
            }
        }
        let first_base = segments.keys().next().copied();
        let mut dir_dirty = false;
        if let Some(first) = first_base {
            log_start_offset = log_start_offset.max(first);
        } else {
            let segment = Segment::create(
                disk.as_ref(),
                dir,
                log_start_offset,
                config.index_interval_bytes,
            )?;
            segments.insert(log_start_offset, segment);
            dir_dirty = true;
        }
        let mut log = PartitionLog {
            disk,
            dir: dir.to_string(),
            config,
            clock,
            segments,
            log_start_offset,
            recovery_point: Offset(0),
            high_watermark: Offset(0),
            epochs: EpochCache::new(),
            producers: ProducerState::new(),
            unflushed_messages: 0,
            first_unflushed_ms: None,
            dir_dirty,
            generation: 0,
            offline: None,
            append_scratch: Vec::new(),
            checkpointed: None,
        };
        if let Some(reason) = damaged {
            // Change nothing on disk (no cut, no checkpoint): the data past the damage is
            // still there for an operator, and no offset of it can be handed out again.
            log.recovery_point = checkpoint_recovery.min(log.log_end_offset());
            log.offline = Some(reason);
            report.offline = true;
            return Ok((log, report));
        }
        let log_end = log.log_end_offset();
        log.log_start_offset = log.log_start_offset.min(log_end);
        log.high_watermark = checkpoint_hw.clamp(log.log_start_offset, log_end);
        log.load_epochs()?;
        log.rebuild_producer_state()?;
        // What recovery read back may still sit only in the page cache, and what it cut
        // (torn tails, dropped segments) is not yet durable either: sync every scanned
        // segment and the directory before calling the log recovered. Otherwise a later
        // crash could bring a cut tail back below a recovery point that trusts it.
        log.recovery_point = first_scanned.map_or(log_end, |base| base.min(log_end));
        log.dir_dirty = true;
        log.flush_now()?;
        log.write_partition_checkpoint()?;
        Ok((log, report))
    }

    pub fn dir(&self) -> &str {
        &self.dir
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Replaces the config (AlterConfigs); takes effect for later appends and rolls.
    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    pub fn log_start_offset(&self) -> Offset {
        self.log_start_offset
    }

    pub fn log_end_offset(&self) -> Offset {
        self.active().next_offset()
    }

    pub fn recovery_point(&self) -> Offset {
        self.recovery_point
    }

    pub fn high_watermark(&self) -> Offset {
        self.high_watermark
    }

    pub fn epochs(&self) -> &EpochCache {
        &self.epochs
    }

    pub fn producers(&self) -> &ProducerState {
        &self.producers
    }

    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(|s| s.size_bytes()).sum()
    }

    /// (base, next offset, bytes) of every segment, for diagnostics.
    pub fn segment_summary(&self) -> Vec<(Offset, Offset, u64)> {
        self.segments
            .values()
            .map(|s| (s.base, s.next_offset(), s.size_bytes()))
            .collect()
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// The log's wall clock, for flush and retention policies.
    pub fn clock_now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn is_offline(&self) -> bool {
        self.offline.is_some()
    }

    /// Moves the high watermark (replication's decision; a single node sets it to the
    /// log end once appends are acknowledged). Never backwards, never past the log end.
    pub fn set_high_watermark(&mut self, high_watermark: Offset) {
        let capped = high_watermark.min(self.log_end_offset());
        if capped > self.high_watermark {
            self.high_watermark = capped;
        }
    }

    fn active(&self) -> &Segment {
        self.segments
            .values()
            .next_back()
            .expect("a partition log always has an active segment")
    }

    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .values_mut()
            .next_back()
            .expect("a partition log always has an active segment")
    }

    fn check_online(&self) -> Result<(), LogError> {
        match &self.offline {
            Some(reason) => Err(LogError::Offline(reason.clone())),
            None => Ok(()),
        }
    }

    /// Any I/O error on a write path takes the partition offline: we no longer know
    /// what is on disk.
    fn fail<T>(&mut self, err: IoError) -> Result<T, LogError> {
        let reason = err.to_string();
        self.offline = Some(reason.clone());
        Err(LogError::Offline(reason))
    }

    /// Validates every batch in `records` (a Produce request's records for this
    /// partition), assigns offsets from the log end by patching `baseOffset` in place,
    /// stamps `leader_epoch`, and appends them. All or nothing: a bad batch rejects the
    /// whole set before anything is written.
    pub fn append_as_leader(
        &mut self,
        records: &mut [u8],
        leader_epoch: LeaderEpoch,
    ) -> Result<AppendInfo, LogError> {
        self.check_online()?;
        let now_ms = self.clock.now_ms();
        // A reused buffer: appends allocate nothing in the steady state.
        let mut metas = std::mem::take(&mut self.append_scratch);
        metas.clear();
        let result = self
            .validate_produce(records, now_ms, &mut metas)
            .and_then(|()| Ok(self.producers.check_all(&metas)?))
            .and_then(|retry_of| match retry_of {
                Some(original) => Ok(AppendInfo {
                    first_offset: original.first_offset,
                    last_offset: original.last_offset,
                    log_append_time_ms: -1,
                    log_start_offset: self.log_start_offset,
                    record_count: 0,
                    duplicate: true,
                }),
                None => self.append_validated(records, &metas, leader_epoch, now_ms),
            });
        self.append_scratch = metas;
        result
    }

    /// Assigns offsets to batches `validate_produce` accepted and appends them.
    fn append_validated(
        &mut self,
        records: &mut [u8],
        metas: &[BatchMeta],
        leader_epoch: LeaderEpoch,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        let first_offset = self.log_end_offset();
        let mut next = first_offset;
        let mut position = 0usize;
        let mut record_count = 0u64;
        let log_append_time_ms = match self.config.timestamp_type {
            TimestampType::LogAppendTime => now_ms,
            TimestampType::CreateTime => -1,
        };
        for meta in metas {
            let end = position + meta.size_bytes as usize;
            let bytes = &mut records[position..end];
            protocol::assign_offsets(bytes, next)?;
            protocol::set_partition_leader_epoch(bytes, leader_epoch)?;
            let mut stored = BatchMeta {
                base_offset: next,
                partition_leader_epoch: leader_epoch,
                ..*meta
            };
            if log_append_time_ms >= 0 {
                protocol::set_log_append_time(bytes, log_append_time_ms)?;
                stored = batch::read_header(bytes)?;
            }
            debug_assert_eq!(Ok(stored), batch::read_header(bytes));
            self.append_batch(bytes, &stored, now_ms)?;
            next = stored.next_offset();
            record_count += stored.record_count.max(0) as u64;
            position = end;
        }
        Ok(AppendInfo {
            first_offset,
            last_offset: Offset(next.0 - 1),
            log_append_time_ms,
            log_start_offset: self.log_start_offset,
            record_count,
            duplicate: false,
        })
    }

    /// Checks a produce request's batches (the protocol layer validates structure, CRC
    /// and every record; the log adds its own limits); puts their headers, in order, in
    /// `metas`.
    fn validate_produce(
        &self,
        records: &[u8],
        now_ms: i64,
        metas: &mut Vec<BatchMeta>,
    ) -> Result<(), LogError> {
        for info in protocol::client_batches(records) {
            let meta = batch::meta_of(&info?.header)?;
            if meta.size_bytes > self.config.max_message_bytes {
                return Err(LogError::RecordTooLarge {
                    size_bytes: meta.size_bytes,
                    max_bytes: self.config.max_message_bytes,
                });
            }
            if self.config.timestamp_type == TimestampType::CreateTime {
                for timestamp_ms in [meta.base_timestamp_ms, meta.max_timestamp_ms] {
                    let too_old =
                        now_ms.saturating_sub(timestamp_ms) > self.config.timestamp_before_max_ms();
                    let too_new =
                        timestamp_ms.saturating_sub(now_ms) > self.config.timestamp_after_max_ms();
                    if too_old || too_new {
                        return Err(LogError::InvalidTimestamp { timestamp_ms });
                    }
                }
            }
            metas.push(meta);
        }
        Ok(())
    }

    /// Appends one batch with final offsets, rolling first if the active segment is full.
    fn append_batch(
        &mut self,
        bytes: &[u8],
        meta: &BatchMeta,
        now_ms: i64,
    ) -> Result<(), LogError> {
        assert_eq!(
            meta.base_offset,
            self.log_end_offset(),
            "appends must continue the log"
        );
        if self.should_roll(meta, now_ms) {
            self.roll()?;
        }
        if let Err(e) = self.active_mut().append(bytes, meta) {
            return self.fail(e);
        }
        if self
            .epochs
            .assign(meta.partition_leader_epoch, meta.base_offset)
        {
            self.write_epoch_checkpoint()?;
        }
        self.producers.update(meta);
        self.unflushed_messages += meta.record_count.max(0) as u64;
        self.first_unflushed_ms.get_or_insert(now_ms);
        Ok(())
    }

    fn should_roll(&self, meta: &BatchMeta, now_ms: i64) -> bool {
        let active = self.active();
        if active.is_empty() {
            return false;
        }
        let too_big = active.size_bytes() + meta.size_bytes > self.config.segment_bytes;
        let too_old =
            now_ms.saturating_sub(active.first_batch_timestamp_ms()) >= self.config.segment_ms;
        let index_full = active.index_bytes() + super::index::OFFSET_ENTRY_BYTES
            > self.config.segment_index_bytes;
        let offsets_overflow = meta.last_offset().0 - active.base.0 > i32::MAX as i64;
        too_big || too_old || index_full || offsets_overflow
    }

    /// Starts a new segment at the log end, snapshotting producer state there.
    fn roll(&mut self) -> Result<(), LogError> {
        // When every message is synced before its ack, the outgoing segment is synced
        // before its successor exists (cheap: little of it is unsynced): a segment with a
        // successor on disk is then wholly durable, so recovery reads damage in it as
        // damage to synced data, never as a torn tail to cut. In page-cache mode this
        // would cost a synchronous flush of the whole segment per roll, and nothing there
        // is promised durable anyway.
        if self.config.syncs_every_message() {
            let outgoing = match self.active_mut().files(false) {
                Ok(files) => files,
                Err(e) => return self.fail(e),
            };
            for file in outgoing {
                if let Err(e) = file.sync() {
                    return self.fail(e);
                }
            }
        }
        let base = self.log_end_offset();
        let snapshot = join(&self.dir, &format!("{}.snapshot", file_stem(base)));
        if let Err(e) = write_atomic(self.disk.as_ref(), &snapshot, &self.producers.encode()) {
            return self.fail(e);
        }
        match Segment::create(
            self.disk.as_ref(),
            &self.dir,
            base,
            self.config.index_interval_bytes,
        ) {
            Ok(segment) => {
                self.segments.insert(base, segment);
                self.dir_dirty = true;
                Ok(())
            }
            Err(e) => self.fail(e),
        }
    }

    /// Whether the flush policy (`flush.messages`, `flush.ms`) asks for a flush now.
    pub fn flush_due(&self, now_ms: i64) -> bool {
        if self.unflushed_messages == 0 && !self.dir_dirty {
            return false;
        }
        let by_count = self.unflushed_messages >= self.config.flush_messages.max(1) as u64;
        let by_time = self
            .first_unflushed_ms
            .is_some_and(|first| now_ms.saturating_sub(first) >= self.config.flush_ms);
        by_count || by_time
    }

    /// The fsyncs that would make the whole log durable, or `None` if it already is.
    /// Writes sealed segments' pending index entries first (an error takes the
    /// partition offline).
    pub fn prepare_flush(&mut self) -> Result<Option<FlushJob>, LogError> {
        self.check_online()?;
        let log_end = self.log_end_offset();
        let indexes_dirty = self
            .segments
            .values()
            .rev()
            .skip(1)
            .any(|s| s.indexes_dirty());
        if self.recovery_point >= log_end && !self.dir_dirty && !indexes_dirty {
            return Ok(None);
        }
        let recovery_point = self.recovery_point;
        let active_base = self.active().base;
        let mut files: Vec<FileRef> = Vec::new();
        let mut failure = None;
        for segment in self.segments.values_mut() {
            let sealed = segment.base != active_base;
            let unflushed =
                segment.next_offset() > recovery_point || segment.base >= recovery_point;
            if unflushed || (sealed && segment.indexes_dirty()) {
                match segment.files(sealed) {
                    Ok(more) => files.extend(more),
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
        }
        if let Some(e) = failure {
            return self.fail(e);
        }
        let dir = self
            .dir_dirty
            .then(|| (self.disk.clone(), self.dir.clone()));
        self.dir_dirty = false;
        self.unflushed_messages = 0;
        self.first_unflushed_ms = None;
        Ok(Some(FlushJob {
            disk: self.disk.clone(),
            files,
            dir,
            up_to: log_end,
            generation: self.generation,
        }))
    }

    /// Records a flush's outcome. On failure the partition goes offline for good: the
    /// unsynced data may or may not be on disk, and an fsync is never retried.
    pub fn complete_flush(
        &mut self,
        job: &FlushJob,
        result: Result<(), IoError>,
    ) -> Result<Offset, LogError> {
        if let Err(e) = result {
            return self.fail(e);
        }
        if job.generation == self.generation && job.up_to > self.recovery_point {
            self.recovery_point = job.up_to.min(self.log_end_offset());
        }
        // Sealed segments that are now durable get zero-copy read handles.
        let recovery_point = self.recovery_point;
        let last = self.active().base;
        for segment in self.segments.values_mut() {
            if segment.base != last && segment.next_offset() <= recovery_point {
                if let Err(e) = segment.open_reader(self.disk.as_ref(), &self.dir) {
                    tracing::warn!(dir = %self.dir, error = %e, "could not map sealed segment; reading through the file");
                }
            }
        }
        Ok(self.recovery_point)
    }

    /// Prepares, runs and completes a flush on this thread (tests, shutdown, recovery).
    pub fn flush_now(&mut self) -> Result<Offset, LogError> {
        self.check_online()?;
        match self.prepare_flush()? {
            Some(job) => {
                let result = job.run();
                self.complete_flush(&job, result)
            }
            None => Ok(self.recovery_point),
        }
    }

    /// Reads whole batches from `offset`: at most `max_bytes` (but always the first
    /// batch whole), from one segment, none at or past `upper` (the high watermark for
    /// consumers, the log end for followers). Every batch returned passed its CRC check.
    pub fn read(
        &self,
        offset: Offset,
        max_bytes: u64,
        upper: Offset,
    ) -> Result<ReadResult, LogError> {
        self.check_online()?;
        let log_end = self.log_end_offset();
        if offset < self.log_start_offset || offset > log_end {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start: self.log_start_offset,
                log_end,
            });
        }
        let upper = upper.min(log_end);
        let mut records = Bytes::new();
        if offset < upper {
            // The segment holding `offset`, or the next non-empty one after it.
            let start = self
                .segments
                .range(..=offset)
                .next_back()
                .map_or(offset, |(b, _)| *b);
            for segment in self.segments.range(start..).map(|(_, s)| s) {
                if let Some(bytes) = segment.read(offset, max_bytes, upper)? {
                    records = verified_prefix(bytes, segment.base)?;
                    break;
                }
            }
        }
        Ok(ReadResult {
            records,
            log_start_offset: self.log_start_offset,
            log_end_offset: log_end,
            high_watermark: self.high_watermark,
        })
    }

    /// ListOffsets by timestamp: the first batch whose max timestamp is >= `timestamp_ms`
    /// and that starts at or after the log start, as (its location's bytes, base offset).
    /// The broker looks inside the batch for the first record at or after the timestamp.
    pub fn batch_for_timestamp(&self, timestamp_ms: i64) -> Result<Option<Bytes>, LogError> {
        self.check_online()?;
        for segment in self.segments.values() {
            if segment.next_offset() <= self.log_start_offset {
                continue;
            }
            if let Some(location) = segment.find_by_timestamp(timestamp_ms)? {
                let bytes = verified_prefix(segment.batch_bytes(&location)?, segment.base)?;
                return Ok(Some(bytes));
            }
        }
        Ok(None)
    }

    /// ListOffsets MAX_TIMESTAMP: the batch holding the largest timestamp in the log.
    pub fn batch_with_max_timestamp(&self) -> Result<Option<Bytes>, LogError> {
        self.check_online()?;
        let best = self
            .segments
            .values()
            .filter(|s| !s.is_empty())
            .max_by_key(|s| (s.max_timestamp_ms(), std::cmp::Reverse(s.base)));
        let Some(segment) = best else {
            return Ok(None);
        };
        match segment.find(segment.offset_of_max_timestamp())? {
            Some(location) => Ok(Some(verified_prefix(
                segment.batch_bytes(&location)?,
                segment.base,
            )?)),
            None => Ok(None),
        }
    }

    /// ListOffsets by timestamp: the offset and timestamp of the first record, at or after
    /// the log start, whose timestamp is >= `timestamp_ms`; `None` if there is none (Kafka
    /// then answers offset -1). LogAppendTime batches use the batch's append time for
    /// every record, as Kafka does.
    pub fn offset_for_timestamp(
        &self,
        timestamp_ms: i64,
    ) -> Result<Option<(Offset, i64)>, LogError> {
        self.check_online()?;
        let mut search_from = timestamp_ms;
        loop {
            let Some(bytes) = self.batch_for_timestamp(search_from)? else {
                return Ok(None);
            };
            let meta = batch::read_header(&bytes)?;
            for (offset, record_timestamp_ms) in record_timestamps(&bytes, &meta)? {
                if offset >= self.log_start_offset && record_timestamp_ms >= timestamp_ms {
                    return Ok(Some((offset, record_timestamp_ms)));
                }
            }
            // Every record of this batch is below the log start: look past it.
            if meta.max_timestamp_ms == i64::MAX {
                return Ok(None);
            }
            search_from = search_from.max(meta.max_timestamp_ms + 1);
            if meta.next_offset() >= self.log_end_offset() {
                return Ok(None);
            }
        }
    }

    /// ListOffsets MAX_TIMESTAMP: the offset and timestamp of the record holding the
    /// largest timestamp in the log (the first such record), or `None` if it is empty.
    pub fn offset_of_max_timestamp(&self) -> Result<Option<(Offset, i64)>, LogError> {
        let Some(bytes) = self.batch_with_max_timestamp()? else {
            return Ok(None);
        };
        let meta = batch::read_header(&bytes)?;
        let best = record_timestamps(&bytes, &meta)?
            .into_iter()
            .filter(|(offset, _)| *offset >= self.log_start_offset)
            .max_by_key(|(offset, timestamp_ms)| (*timestamp_ms, std::cmp::Reverse(*offset)));
        Ok(best)
    }

    /// DeleteRecords: moves the log start offset to `offset` (at most the high
    /// watermark), deletes segments wholly below it, and checkpoints it durably.
    pub fn delete_records(&mut self, offset: Offset) -> Result<Offset, LogError> {
        self.check_online()?;
        if offset < Offset(0) || offset > self.high_watermark {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start: self.log_start_offset,
                log_end: self.high_watermark,
            });
        }
        if offset > self.log_start_offset {
            self.log_start_offset = offset;
            self.epochs.truncate_from_start(offset);
            self.producers.evict_below(offset);
            self.write_partition_checkpoint()?;
            self.delete_segments_below_start()?;
        }
        Ok(self.log_start_offset)
    }

    /// Forgets idempotent producers whose last batch is `expiration_ms` or more older
    /// than `now_ms` (Kafka's `producer.id.expiration.ms`): every session of an
    /// idempotent client gets a new producer id, and without expiry their state would
    /// grow without bound. A retry from such a producer is then a new producer's batch.
    /// Returns how many were forgotten.
    pub fn expire_producers(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        self.producers.expire(now_ms, expiration_ms)
    }

    /// Retention by time and size. Only segments wholly below the high watermark and
    /// not active are deleted. Returns how many were.
    pub fn apply_retention(&mut self, now_ms: i64) -> Result<usize, LogError> {
        self.check_online()?;
        let mut total_bytes = self.size_bytes() as i64;
        let mut new_start = self.log_start_offset;
        let active_base = self.active().base;
        let mut deleted = 0;
        for segment in self.segments.values() {
            if segment.base == active_base || segment.next_offset() > self.high_watermark {
                break;
            }
            let expired = self.config.retention_ms >= 0
                && segment.max_timestamp_ms() >= 0
                && now_ms.saturating_sub(segment.max_timestamp_ms()) > self.config.retention_ms;
            let oversize = self.config.retention_bytes >= 0
                && total_bytes - segment.size_bytes() as i64 >= self.config.retention_bytes;
            if !(expired || oversize) {
                break;
            }
            total_bytes -= segment.size_bytes() as i64;
            new_start = segment.next_offset();
            deleted += 1;
        }
        if deleted > 0 {
            self.log_start_offset = new_start;
            self.epochs.truncate_from_start(new_start);
            self.producers.evict_below(new_start);
            self.write_partition_checkpoint()?;
            self.delete_segments_below_start()?;
        }
        Ok(deleted)
    }

    fn delete_segments_below_start(&mut self) -> Result<(), LogError> {
        let active_base = self.active().base;
        let doomed: Vec<Offset> = self
            .segments
            .values()
            .filter(|s| s.base != active_base && s.next_offset() <= self.log_start_offset)
            .map(|s| s.base)
            .collect();
        if doomed.is_empty() {
            return Ok(());
        }
        for base in &doomed {
            self.segments.remove(base);
            let mut paths = segment_paths(&self.dir, *base).to_vec();
            paths.push(join(&self.dir, &format!("{}.snapshot", file_stem(*base))));
            for path in paths {
                match self.disk.remove(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind == IoErrorKind::NotFound => {}
                    Err(e) => return self.fail(e),
                }
            }
        }
        if let Err(e) = self.disk.sync_dir(&self.dir) {
            return self.fail(e);
        }
        Ok(())
    }

    /// Removes every batch whose last offset is >= `offset` (replication's truncation
    /// after a leader change; a batch holding `offset` goes whole), then makes the
    /// truncation durable at once, so a crash cannot bring the removed batches back.
    pub fn truncate_to(&mut self, offset: Offset) -> Result<Offset, LogError> {
        self.check_online()?;
        if offset >= self.log_end_offset() {
            return Ok(self.log_end_offset());
        }
        if offset < self.log_start_offset {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start: self.log_start_offset,
                log_end: self.log_end_offset(),
            });
        }
        self.generation += 1;
        // Segments starting at or after `offset` go, except the first one (which is then
        // emptied): the log always keeps an active segment.
        let first_base = self
            .segments
            .keys()
            .next()
            .copied()
            .expect("a partition log always has a segment");
        let doomed: Vec<Offset> = self
            .segments
            .range(offset..)
            .map(|(b, _)| *b)
            .filter(|b| *b != first_base)
            .collect();
        for base in doomed {
            self.segments.remove(&base);
            let mut paths = segment_paths(&self.dir, base).to_vec();
            paths.push(join(&self.dir, &format!("{}.snapshot", file_stem(base))));
            for path in paths {
                match self.disk.remove(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind == IoErrorKind::NotFound => {}
                    Err(e) => return self.fail(e),
                }
            }
            self.dir_dirty = true;
        }
        self.active_mut().truncate_to(offset)?;
        let log_end = self.log_end_offset();
        self.recovery_point = self.recovery_point.min(log_end);
        self.high_watermark = self.high_watermark.min(log_end);
        if self.log_start_offset > log_end {
            // The batch holding the log start (set mid-batch by DeleteRecords) was cut:
            // the log is now empty and starts at its end, as Kafka lowers its start.
            self.log_start_offset = log_end;
            self.producers.evict_below(log_end);
            self.write_partition_checkpoint()?;
        }
        if self.epochs.truncate_from_end(log_end) {
            self.write_epoch_checkpoint()?;
        }
        self.rebuild_producer_state()?;
        // Sync the truncated files now (not just at the next flush): otherwise a crash
        // could restore bytes past the new end, and new appends could then sit beside them.
        let files = match self.active_mut().files(true) {
            Ok(files) => files,
            Err(e) => return self.fail(e),
        };
        for file in files {
            if let Err(e) = file.sync() {
                return self.fail(e);
            }
        }
        self.flush_now()?;
        // The recovery point went down: the checkpoint on disk may still claim offsets
        // past the new end are durable, and new appends there are not. Persist it now,
        // before any append, or recovery would trust a torn tail.
        self.write_partition_checkpoint()?;
        Ok(log_end)
    }

    /// Writes the checkpoints and syncs everything: a clean shutdown.
    pub fn close(mut self) -> Result<(), LogError> {
        self.flush_now()?;
        self.write_partition_checkpoint()
    }

    /// Writes `partition.checkpoint` (log start, recovery point, high watermark).
    pub fn write_partition_checkpoint(&mut self) -> Result<(), LogError> {
        let row = self.checkpoint_row();
        let path = join(&self.dir, PARTITION_CHECKPOINT);
        match write_checkpoint(self.disk.as_ref(), &path, &[row.to_vec()]) {
            Ok(()) => {
                self.checkpointed = Some(row);
                Ok(())
            }
            Err(e) => self.fail(e),
        }
    }

    fn checkpoint_row(&self) -> [i64; 3] {
        [
            self.log_start_offset.0,
            self.recovery_point.0,
            self.high_watermark.0,
        ]
    }

    /// The periodic checkpoint write (Kafka writes its recovery points every
    /// `log.flush.offset.checkpoint.interval.ms`), or `None` if the partition is offline
    /// or nothing changed since the last write. Without it, a crash after a long run
    /// would rescan every segment written since the log was opened. Run the job while
    /// no other checkpoint write or truncation can happen, then `complete_checkpoint`.
    pub fn prepare_checkpoint(&self) -> Option<CheckpointJob> {
        let row = self.checkpoint_row();
        if self.offline.is_some() || self.checkpointed == Some(row) {
            return None;
        }
        Some(CheckpointJob {
            disk: self.disk.clone(),
            path: join(&self.dir, PARTITION_CHECKPOINT),
            row,
        })
    }

    /// Records a checkpoint job's outcome; a failed write takes the partition offline,
    /// as every failed checkpoint write does.
    pub fn complete_checkpoint(
        &mut self,
        job: &CheckpointJob,
        result: Result<(), IoError>,
    ) -> Result<(), LogError> {
        match result {
            Ok(()) => {
                self.checkpointed = Some(job.row);
                Ok(())
            }
            Err(e) => self.fail(e),
        }
    }

    fn write_epoch_checkpoint(&mut self) -> Result<(), LogError> {
        let rows: Vec<Vec<i64>> = self
            .epochs
            .entries()
            .iter()
            .map(|(e, o)| vec![e.0 as i64, o.0])
            .collect();
        let path = join(&self.dir, LEADER_EPOCH_CHECKPOINT);
        match write_checkpoint(self.disk.as_ref(), &path, &rows) {
            Ok(()) => Ok(()),
            Err(e) => self.fail(e),
        }
    }

    /// Loads the epoch cache from its checkpoint, or rebuilds it from the batches'
    /// partitionLeaderEpoch fields if the file is missing or malformed.
    fn load_epochs(&mut self) -> Result<(), LogError> {
        let path = join(&self.dir, LEADER_EPOCH_CHECKPOINT);
        let loaded = match read_checkpoint(self.disk.as_ref(), &path, 2) {
            Ok(Some(rows)) => {
                let entries = rows
                    .iter()
                    .map(|r| {
                        (
                            LeaderEpoch(r[0].clamp(i32::MIN as i64, i32::MAX as i64) as i32),
                            Offset(r[1]),
                        )
                    })
                    .collect();
                EpochCache::from_entries(entries)
            }
            Ok(None) | Err(_) => None,
        };
        let mut epochs = match loaded {
            Some(cache) => cache,
            None => {
                let mut cache = EpochCache::new();
                self.for_each_batch_from(self.log_start_offset, &mut |meta| {
                    if meta.partition_leader_epoch.0 >= 0
                        && cache
                            .latest()
                            .is_none_or(|(e, _)| meta.partition_leader_epoch > e)
                    {
                        cache.assign(meta.partition_leader_epoch, meta.base_offset);
                    }
                })?;
                cache
            }
        };
        epochs.truncate_from_end(self.log_end_offset());
        epochs.truncate_from_start(self.log_start_offset);
        self.epochs = epochs;
        self.write_epoch_checkpoint()
    }

    /// Producer state = latest valid snapshot at or below the log end + replay of the
    /// batches after it.
    fn rebuild_producer_state(&mut self) -> Result<(), LogError> {
        let log_end = self.log_end_offset();
        let mut snapshots: Vec<Offset> = self
            .disk
            .list(&self.dir)?
            .iter()
            .filter_map(|n| n.strip_suffix(".snapshot"))
            .filter_map(|stem| stem.parse::<i64>().ok())
            .map(Offset)
            .collect();
        snapshots.sort();
        let mut state = ProducerState::new();
        let mut replay_from = self.segments.keys().next().copied().unwrap_or(Offset(0));
        for snapshot in snapshots.iter().rev() {
            let path = join(&self.dir, &format!("{}.snapshot", file_stem(*snapshot)));
            if *snapshot > log_end {
                self.disk.remove(&path)?;
                continue;
            }
            if *snapshot < replay_from {
                break;
            }
            let file = self.disk.open(&path)?;
            let bytes = read_exact_at(file.as_ref(), 0, file.len()?)?;
            if let Some(loaded) = ProducerState::decode(&bytes) {
                state = loaded;
                replay_from = *snapshot;
                break;
            }
        }
        self.for_each_batch_from(replay_from, &mut |meta| state.update(meta))?;
        state.evict_below(self.log_start_offset);
        self.producers = state;
        Ok(())
    }

    /// Walks batch headers from `offset` to the end.
    fn for_each_batch_from(
        &self,
        offset: Offset,
        visit: &mut dyn FnMut(&BatchMeta),
    ) -> Result<(), LogError> {
        let start = self
            .segments
            .range(..=offset)
            .next_back()
            .map_or(offset, |(b, _)| *b);
        for segment in self.segments.range(start..).map(|(_, s)| s) {
            segment.visit_batches_from(offset, visit)?;
        }
        Ok(())
    }
}

/// (offset, timestamp) of every record of one stored batch.
fn record_timestamps(bytes: &Bytes, meta: &BatchMeta) -> Result<Vec<(Offset, i64)>, LogError> {
    let log_append_time = meta.attributes & 0x08 != 0;
    let records = protocol::records(bytes)?;
    Ok(records
        .iter()
        .map(|r| {
            let offset = Offset(meta.base_offset.0 + r.offset_delta as i64);
            let timestamp_ms = if log_append_time {
                meta.max_timestamp_ms
            } else {
                meta.base_timestamp_ms.saturating_add(r.timestamp_delta_ms)
            };
            (offset, timestamp_ms)
        })
        .collect())
}

/// The CRC-valid prefix of `bytes` (whole batches). If the very first batch is corrupt,
/// an error: corrupt data is never served.
fn verified_prefix(bytes: Bytes, segment_base: Offset) -> Result<Bytes, LogError> {
    let mut position = 0usize;
    while position < bytes.len() {
        let rest = &bytes[position..];
        let valid = batch::read_header(rest)
            .ok()
            .filter(|m| m.size_bytes as usize <= rest.len() && m.size_bytes >= BATCH_HEADER_BYTES)
            .filter(|m| batch::crc_matches(&rest[..m.size_bytes as usize]));
        match valid {
            Some(meta) => position += meta.size_bytes as usize,
            None if position == 0 => {
                return Err(LogError::Corrupt {
                    detail: format!("batch failed its CRC check in segment {segment_base}"),
                })
            }
            None => break,
        }
    }
    Ok(bytes.slice(..position))
}
