//! One segment of a partition log: `<base:020>.log` holding whole RecordBatch v2 bytes
//! exactly as accepted (offsets patched), plus its sparse `.index` and `.timeindex`.
//!
//! The segment never decides policy (rolling, flushing, retention): `PartitionLog` does.
//! It never holds a batch that is not whole and valid: appends take validated batches,
//! and `recover` truncates at the first torn or corrupt one.

use bytes::Bytes;

use super::batch::{read_header, BatchMeta, BATCH_HEADER_BYTES};
use super::index::{OffsetIndex, TimeIndex};
use super::LogError;
use crate::base::{IoError, IoErrorKind, Offset};
use crate::io::{join, read_exact_at, Disk, FileRef};

/// Chunk size recovery reads the log in.
const RECOVERY_READ_BYTES: u64 = 1024 * 1024;

/// File name stem of a segment: the base offset, zero-padded to 20 digits (Kafka's).
pub fn file_stem(base: Offset) -> String {
    format!("{:020}", base.0)
}

/// The three paths of a segment in `dir`.
pub fn segment_paths(dir: &str, base: Offset) -> [String; 3] {
    let stem = file_stem(base);
    [
        join(dir, &format!("{stem}.log")),
        join(dir, &format!("{stem}.index")),
        join(dir, &format!("{stem}.timeindex")),
    ]
}

/// Where a batch is, and what its header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLocation {
    pub position: u64,
    pub meta: BatchMeta,
}

/// What recovery of one segment found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecoveryOutcome {
    /// Bytes cut off the end because they were torn or corrupt.
    pub truncated_bytes: u64,
    /// Batches kept (valid ones, and `corrupt_batches` kept in synced data).
    pub batches: u64,
    /// Why the scan stopped early, if it did.
    pub stopped: Option<StopReason>,
    /// Damaged batches and holes kept in place (never served, their offsets never
    /// reused) rather than cut: damage after the data was written, not a torn write.
    pub corrupt_batches: u64,
    /// The scan stopped (`stopped` says why) in synced data it could neither frame nor
    /// bound: nothing was truncated, and the partition must not be written or served.
    pub durable_damage: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    TornTail,
    BadHeader,
    CrcMismatch,
    OffsetsNotIncreasing,
}

#[derive(Debug)]
pub struct Segment {
    pub base: Offset,
    log: FileRef,
    /// A read-only (memory-mapped on the real disk) handle, for sealed segments.
    reader: Option<FileRef>,
    index: OffsetIndex,
    time_index: TimeIndex,
    size_bytes: u64,
    next_offset: Offset,
    max_timestamp_ms: i64,
    offset_of_max_timestamp: Offset,
    /// Timestamp of the first batch (for `segment.ms`), -1 while empty.
    first_batch_timestamp_ms: i64,
    bytes_since_index_entry: u64,
    index_interval_bytes: u64,
}

impl Segment {
    /// Creates an empty segment's three files in `dir` (whose entry the caller syncs).
    pub fn create(
        disk: &dyn Disk,
        dir: &str,
        base: Offset,
        index_interval_bytes: u64,
    ) -> Result<Segment, IoError> {
        let [log_path, index_path, time_path] = segment_paths(dir, base);
        let create_or_reset = |path: &str| -> Result<FileRef, IoError> {
            match disk.create(path) {
                Ok(f) => Ok(f),
                Err(e) if e.kind == IoErrorKind::AlreadyExists => {
                    let f = disk.open(path)?;
                    f.truncate(0)?;
                    Ok(f)
                }
                Err(e) => Err(e),
            }
        };
        let log = create_or_reset(&log_path)?;
        let index = OffsetIndex::empty(base, create_or_reset(&index_path)?)?;
        let time_index = TimeIndex::empty(base, create_or_reset(&time_path)?)?;
        Ok(Segment {
            base,
            log,
            reader: None,
            index,
            time_index,
            size_bytes: 0,
            next_offset: base,
            max_timestamp_ms: -1,
            offset_of_max_timestamp: base,
            first_batch_timestamp_ms: -1,
            bytes_since_index_entry: 0,
            index_interval_bytes,
        })
    }

    /// Opens an existing segment. With `trust_indexes`, valid index files are used as they
    /// are and only the log's size is taken (a segment below the recovery point); without,
    /// the log is scanned by `recover` before use.
    pub fn open(
        disk: &dyn Disk,
        dir: &str,
        base: Offset,
        index_interval_bytes: u64,
    ) -> Result<Segment, IoError> {
        let [log_path, index_path, time_path] = segment_paths(dir, base);
        let log = disk.open(&log_path)?;
        let open_or_create = |path: &str| -> Result<FileRef, IoError> {
            match disk.open(path) {
                Ok(f) => Ok(f),
                Err(e) if e.kind == IoErrorKind::NotFound => disk.create(path),
                Err(e) => Err(e),
            }
        };
        let index_file = open_or_create(&index_path)?;
        let time_file = open_or_create(&time_path)?;
        let size_bytes = log.len()?;
        Ok(Segment {
            base,
            log,
            reader: None,
            index: OffsetIndex::empty(base, index_file)?,
            time_index: TimeIndex::empty(base, time_file)?,
            size_bytes,
            next_offset: base,
            max_timestamp_ms: -1,
            offset_of_max_timestamp: base,
            first_batch_timestamp_ms: -1,
            bytes_since_index_entry: 0,
            index_interval_bytes,
        })
    }

    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    pub fn next_offset(&self) -> Offset {
        self.next_offset
    }

    pub fn is_empty(&self) -> bool {
        self.size_bytes == 0
    }

    pub fn max_timestamp_ms(&self) -> i64 {
        self.max_timestamp_ms
    }

    pub fn offset_of_max_timestamp(&self) -> Offset {
        self.offset_of_max_timestamp
    }

    pub fn first_batch_timestamp_ms(&self) -> i64 {
        self.first_batch_timestamp_ms
    }

    pub fn index_bytes(&self) -> u64 {
        self.index.len_bytes()
    }

    /// The file handles a flush must sync for this segment. The active segment's
    /// indexes are left out: recovery always rebuilds them (it rescans every segment
    /// not wholly below the recovery point). A sealed segment's indexes are synced with
    /// it, because recovery trusts them once the recovery point passes the segment.
    /// Whether either index has entries not yet written to its file.
    pub fn indexes_dirty(&self) -> bool {
        self.index.is_dirty() || self.time_index.is_dirty()
    }

    /// Writes a sealed segment's pending index entries first, so the sync covers them.
    pub fn files(&mut self, sealed: bool) -> Result<Vec<FileRef>, IoError> {
        if sealed {
            self.index.persist()?;
            self.time_index.persist()?;
            Ok(vec![
                self.log.clone(),
                self.index.file().clone(),
                self.time_index.file().clone(),
            ])
        } else {
            Ok(vec![self.log.clone()])
        }
    }

    /// Appends a validated batch whose offsets are already assigned. Returns its position.
    pub fn append(&mut self, batch: &[u8], meta: &BatchMeta) -> Result<u64, IoError> {
        assert!(
            meta.base_offset >= self.next_offset,
            "segment appends must have increasing offsets"
        );
        assert!(
            self.reader.is_none(),
            "appends go to the active segment only"
        );
        // The segment is its log file's only writer and knows where it ends: a
        // positional write saves the length lookup an `append` would make.
        let position = self.size_bytes;
        self.log.write_at(position, batch)?;
        self.size_bytes += batch.len() as u64;
        self.note_batch(position, meta)?;
        Ok(position)
    }

    /// Updates the in-memory summary and the indexes for a batch at `position`.
    fn note_batch(&mut self, position: u64, meta: &BatchMeta) -> Result<(), IoError> {
        if self.first_batch_timestamp_ms < 0 {
            self.first_batch_timestamp_ms = meta.max_timestamp_ms.max(0);
        }
        if self.bytes_since_index_entry >= self.index_interval_bytes
            || self.index.entries().is_empty()
        {
            self.index.append(meta.base_offset, position);
            self.bytes_since_index_entry = 0;
        }
        self.bytes_since_index_entry += meta.size_bytes;
        if meta.max_timestamp_ms > self.max_timestamp_ms {
            self.max_timestamp_ms = meta.max_timestamp_ms;
            self.offset_of_max_timestamp = meta.last_offset();
            self.time_index
                .maybe_append(meta.max_timestamp_ms, meta.last_offset());
        }
        self.next_offset = meta.next_offset();
        Ok(())
    }

    /// Seals the segment: no more appends. Syncs are the caller's (flush) business; a
    /// read-only handle is opened lazily for zero-copy reads once it is durable.
    pub fn open_reader(&mut self, disk: &dyn Disk, dir: &str) -> Result<(), IoError> {
        if self.reader.is_none() && self.size_bytes > 0 {
            let [log_path, _, _] = segment_paths(dir, self.base);
            let reader = disk.open_read_only(&log_path)?;
            if reader.len()? == self.size_bytes {
                self.reader = Some(reader);
            }
        }
        Ok(())
    }

    fn read_handle(&self) -> &FileRef {
        self.reader.as_ref().unwrap_or(&self.log)
    }

    /// Reads the header of the batch at `position`.
    pub fn header_at(&self, position: u64) -> Result<BatchMeta, LogError> {
        let bytes = read_exact_at(self.read_handle().as_ref(), position, BATCH_HEADER_BYTES)?;
        read_header(&bytes).map_err(|problem| LogError::Corrupt {
            detail: format!(
                "segment {} position {position}: bad header {problem:?}",
                self.base
            ),
        })
    }

    /// The first batch whose last offset is >= `offset`, or `None` if there is none.
    pub fn find(&self, offset: Offset) -> Result<Option<BatchLocation>, LogError> {
        let (mut position, mut expected) = self.walk_start(offset);
        while position < self.size_bytes {
            let (meta, damaged) = self.header_expecting(position, expected)?;
            if meta.last_offset() >= offset {
                if damaged {
                    return Err(self.damaged_base_offset(position, expected));
                }
                return Ok(Some(BatchLocation { position, meta }));
            }
            expected = meta.next_offset();
            position += meta.size_bytes;
        }
        if offset < self.next_offset {
            // The segment holds `offset`, yet no intact batch does: it lies in damage that
            // recovery kept in place. Report it; never skip to later data silently.
            return Err(LogError::Corrupt {
                detail: format!(
                    "segment {}: offset {offset} lies in damaged data",
                    self.base
                ),
            });
        }
        Ok(None)
    }

    /// Visits the header of every intact batch holding or following `offset`. Damage that
    /// recovery kept in place (a hole that does not frame) is stepped over: the walk
    /// resumes at the first index entry after it (recovery indexes the batch after a
    /// hole).
    pub fn visit_batches_from(
        &self,
        offset: Offset,
        visit: &mut dyn FnMut(&BatchMeta),
    ) -> Result<(), LogError> {
        let (mut position, mut expected) = self.walk_start(offset);
        while position < self.size_bytes {
            match self.header_expecting(position, expected) {
                Ok((meta, damaged)) => {
                    if !damaged && meta.last_offset() >= offset {
                        visit(&meta);
                    }
                    expected = meta.next_offset();
                    position += meta.size_bytes;
                }
                Err(LogError::Corrupt { .. }) => {
                    match self.index.entries().iter().find(|e| e.position > position) {
                        Some(entry) => (position, expected) = (entry.position, entry.offset),
                        None => break,
                    }
                }
                Err(other) => return Err(other),
            }
        }
        Ok(())
    }

    /// Where a header walk towards `offset` starts: the index entry at or before it (its
    /// position, and the base offset the batch there must have), else the segment start.
    fn walk_start(&self, offset: Offset) -> (u64, Offset) {
        self.index
            .lookup(offset)
            .map_or((0, self.base), |e| (e.position, e.offset))
    }

    /// The header at `position`, whose batch must start at `expected`: offsets are
    /// contiguous (no compaction yet), and the base offset lies outside the batch CRC, so
    /// contiguity is the only check that catches a damaged one before it is served.
    /// Returns the header with the base offset the batch really has, and whether the
    /// stored one was damaged (the rest of the header is covered by the CRC, so the walk
    /// can step over such a batch, which is never served).
    fn header_expecting(
        &self,
        position: u64,
        expected: Offset,
    ) -> Result<(BatchMeta, bool), LogError> {
        let meta = self.header_at(position)?;
        Ok(at_expected_offset(meta, expected))
    }

    fn damaged_base_offset(&self, position: u64, expected: Offset) -> LogError {
        LogError::Corrupt {
            detail: format!(
                "segment {} position {position}: the batch at offset {expected} has a damaged base offset",
                self.base
            ),
        }
    }

    /// Whole batches starting with the one holding `offset`, as one zero-copy slice: at
    /// most `max_bytes` unless the first batch alone is larger (it is returned whole,
    /// as Kafka does, so a consumer can always make progress), and none starting at or
    /// after `end_offset`.
    pub fn read(
        &self,
        offset: Offset,
        max_bytes: u64,
        end_offset: Offset,
    ) -> Result<Option<Bytes>, LogError> {
        let Some(first) = self.find(offset)? else {
            return Ok(None);
        };
        if first.meta.base_offset >= end_offset {
            return Ok(None);
        }
        let mut end = first.position + first.meta.size_bytes;
        let mut next = first.meta.next_offset();
        while end < self.size_bytes {
            // A damaged header ends the read before it; a read starting there reports it.
            let Ok((meta, false)) = self.header_expecting(end, next) else {
                break;
            };
            if meta.base_offset >= end_offset || end + meta.size_bytes - first.position > max_bytes
            {
                break;
            }
            end += meta.size_bytes;
            next = meta.next_offset();
        }
        let bytes = read_exact_at(
            self.read_handle().as_ref(),
            first.position,
            end - first.position,
        )?;
        Ok(Some(bytes))
    }

    /// The first batch whose max timestamp is >= `timestamp_ms`.
    pub fn find_by_timestamp(&self, timestamp_ms: i64) -> Result<Option<BatchLocation>, LogError> {
        if self.max_timestamp_ms < timestamp_ms {
            return Ok(None);
        }
        let start_offset = self
            .time_index
            .lookup_before(timestamp_ms)
            .map_or(self.base, |e| e.offset);
        let (mut position, mut expected) = self.walk_start(start_offset);
        while position < self.size_bytes {
            let (meta, damaged) = self.header_expecting(position, expected)?;
            if meta.max_timestamp_ms >= timestamp_ms {
                if damaged {
                    return Err(self.damaged_base_offset(position, expected));
                }
                return Ok(Some(BatchLocation { position, meta }));
            }
            expected = meta.next_offset();
            position += meta.size_bytes;
        }
        Ok(None)
    }

    /// The whole batch at a location.
    pub fn batch_bytes(&self, location: &BatchLocation) -> Result<Bytes, LogError> {
        Ok(read_exact_at(
            self.read_handle().as_ref(),
            location.position,
            location.meta.size_bytes,
        )?)
    }

    /// Removes every batch whose last offset is >= `offset` (a batch holding `offset` goes
    /// whole). Returns the new next offset.
    pub fn truncate_to(&mut self, offset: Offset) -> Result<Offset, LogError> {
        // The segment may become (or stay) the active one: no read-only map may remain.
        self.reader = None;
        let Some(cut) = self.find(offset)? else {
            return Ok(self.next_offset);
        };
        self.truncate_at(cut.position)?;
        Ok(self.next_offset)
    }

    /// Cuts the log at `position` (a batch boundary) and recomputes the summary by
    /// rescanning what is left.
    fn truncate_at(&mut self, position: u64) -> Result<(), LogError> {
        self.log.truncate(position)?;
        self.size_bytes = position;
        self.index.truncate_to_position(position)?;
        // Rebuild the summary (next offset, timestamps) from the indexes' remains by
        // rescanning: truncation is rare (replication divergence, torn tails).
        self.rescan_summary()
    }

    fn rescan_summary(&mut self) -> Result<(), LogError> {
        self.next_offset = self.base;
        self.max_timestamp_ms = -1;
        self.offset_of_max_timestamp = self.base;
        self.first_batch_timestamp_ms = -1;
        self.bytes_since_index_entry = 0;
        let mut position = 0;
        while position < self.size_bytes {
            let meta = self.header_at(position)?;
            if self.first_batch_timestamp_ms < 0 {
                self.first_batch_timestamp_ms = meta.max_timestamp_ms.max(0);
            }
            if meta.max_timestamp_ms > self.max_timestamp_ms {
                self.max_timestamp_ms = meta.max_timestamp_ms;
                self.offset_of_max_timestamp = meta.last_offset();
            }
            self.next_offset = meta.next_offset();
            self.bytes_since_index_entry = match self.index.lookup(meta.base_offset) {
                Some(entry) if entry.position == position => meta.size_bytes,
                _ => self.bytes_since_index_entry + meta.size_bytes,
            };
            position += meta.size_bytes;
        }
        self.time_index.truncate_to_offset(self.next_offset)?;
        Ok(())
    }

    /// Scans the whole log, validating every batch with `validate` (CRC and structure),
    /// truncates at the first torn or invalid one, and rebuilds both indexes.
    /// `expected_base` is the first offset the segment must hold (its base, or the
    /// previous segment's next offset).
    ///
    /// `durable_end` is the checkpointed recovery point: every batch starting below it was
    /// synced, so a bad batch there is media damage, never a torn write, and is never cut
    /// (cutting would drop acknowledged data after it and hand its offsets out again).
    pub fn recover(
        &mut self,
        durable_end: Offset,
        successor_base: Option<Offset>,
        validate: &dyn Fn(&[u8]) -> bool,
        on_batch: &mut dyn FnMut(&BatchMeta),
    ) -> Result<RecoveryOutcome, LogError> {
        self.reader = None;
        self.index = OffsetIndex::empty(self.base, self.index.file().clone())?;
        self.time_index = TimeIndex::empty(self.base, self.time_index.file().clone())?;
        self.next_offset = self.base;
        self.max_timestamp_ms = -1;
        self.offset_of_max_timestamp = self.base;
        self.first_batch_timestamp_ms = -1;
        self.bytes_since_index_entry = 0;
        let file_len = self.log.len()?;
        let mut position = 0u64;
        let mut batches = 0u64;
        let mut stopped = None;
        let mut corrupt_batches = 0u64;
        let mut chunk = Bytes::new();
        let mut chunk_start = 0u64;
        'scan: loop {
            while position < file_len {
                let remaining = file_len - position;
                if remaining < BATCH_HEADER_BYTES {
                    stopped = Some(StopReason::TornTail);
                    break;
                }
                // Make sure the chunk holds the header, then the whole batch.
                if position < chunk_start
                    || position + BATCH_HEADER_BYTES > chunk_start + chunk.len() as u64
                {
                    chunk = read_exact_at(
                        self.log.as_ref(),
                        position,
                        RECOVERY_READ_BYTES.min(remaining),
                    )?;
                    chunk_start = position;
                }
                let at = (position - chunk_start) as usize;
                let meta = match read_header(&chunk[at..]) {
                    Ok(meta) => meta,
                    Err(_) => {
                        stopped = Some(StopReason::BadHeader);
                        break;
                    }
                };
                if meta.size_bytes > remaining {
                    stopped = Some(StopReason::TornTail);
                    break;
                }
                // Offsets are contiguous: a batch starts where the one before it ended. The
                // base offset lies outside the CRC, so a different one is damage to that field
                // alone; such a batch is kept (never served) if what follows frames it.
                let (meta, base_damaged) = at_expected_offset(meta, self.next_offset);
                // The base offset is outside the batch CRC: a flipped bit there passes
                // `validate`, and an offset beyond the segment's u32 relative range would
                // break the indexes. Such a header is corrupt.
                let last_relative = meta
                    .base_offset
                    .0
                    .checked_add(i64::from(meta.last_offset_delta))
                    .and_then(|last| last.checked_sub(self.base.0));
                if !last_relative.is_some_and(|r| (0..=i64::from(u32::MAX)).contains(&r)) {
                    stopped = Some(StopReason::BadHeader);
                    break;
                }
                if position + meta.size_bytes > chunk_start + chunk.len() as u64 {
                    chunk = read_exact_at(
                        self.log.as_ref(),
                        position,
                        RECOVERY_READ_BYTES.max(meta.size_bytes).min(remaining),
                    )?;
                    chunk_start = position;
                }
                let at = (position - chunk_start) as usize;
                let batch = &chunk[at..at + meta.size_bytes as usize];
                let crc_ok = validate(batch);
                if !crc_ok || base_damaged {
                    // A torn write leaves a short batch (caught above as a torn tail); a whole
                    // batch whose CRC fails, framed by what follows it, was damaged after it
                    // was written. Keep it in place — reads check every CRC and the offsets'
                    // contiguity and refuse it — so nothing after it is lost and none of its
                    // offsets is handed out again.
                    // What follows must confirm the offsets the header claims: the next
                    // header, else the successor segment's base, else (the file's last
                    // batch) two header fields that must agree, as they do in every
                    // batch a producer writes.
                    let end = position + meta.size_bytes;
                    let framed = if end < file_len {
                        self.header_continues_at(end, file_len, &meta)?
                    } else if let Some(next) = successor_base {
                        next == meta.next_offset()
                    } else {
                        crc_ok
                            || i64::from(meta.last_offset_delta) + 1 == i64::from(meta.record_count)
                    };
                    if !framed {
                        stopped = Some(if crc_ok {
                            StopReason::OffsetsNotIncreasing
                        } else {
                            StopReason::CrcMismatch
                        });
                        break;
                    }
                    corrupt_batches += 1;
                }
                self.size_bytes = position;
                self.note_batch(position, &meta)?;
                on_batch(&meta);
                position += meta.size_bytes;
                self.size_bytes = position;
                batches += 1;
            }
            if stopped.is_some() {
                // Bytes that do not frame. Valid batches after them mean this is no torn tail
                // (writes are sequential): the stretch up to the next batch is a hole whose
                // offsets are never served nor reused. So is the rest of a segment that has a
                // successor, whose base bounds the hole.
                let skip_to = match self.next_batch_after(position, file_len, validate)? {
                    Some(next) => Some(next),
                    // Only in synced data: an unsynced torn tail is cut (the log keeps
                    // a prefix), and its successor goes with it.
                    None => successor_base
                        .filter(|&next| next > self.next_offset && self.next_offset < durable_end)
                        .map(|next| (file_len, next)),
                };
                if let Some((next_position, next_offset)) = skip_to {
                    corrupt_batches += 1;
                    self.next_offset = next_offset;
                    // The batch after the hole gets an index entry: walks start past the hole.
                    self.bytes_since_index_entry = self.index_interval_bytes;
                    position = next_position;
                    self.size_bytes = position;
                    stopped = None;
                    chunk = Bytes::new();
                    chunk_start = 0;
                    continue 'scan;
                }
            }
            break;
        }
        self.size_bytes = position;
        if stopped.is_some() && self.next_offset < durable_end {
            // The bytes at `position` start a batch that was synced, yet cannot be framed:
            // cut nothing. The caller takes the partition offline.
            return Ok(RecoveryOutcome {
                truncated_bytes: 0,
                batches,
                stopped,
                corrupt_batches,
                durable_damage: true,
            });
        }
        let truncated_bytes = file_len - position;
        if truncated_bytes > 0 {
            self.log.truncate(position)?;
        }
        Ok(RecoveryOutcome {
            truncated_bytes,
            batches,
            stopped,
            corrupt_batches,
            durable_damage: false,
        })
    }

    /// The first valid batch after damage at `from`: a header (magic 2, an offset past
    /// `self.next_offset` within the segment's range, a size that fits the file) whose
    /// batch passes `validate`. Returns its position and base offset.
    fn next_batch_after(
        &self,
        from: u64,
        file_len: u64,
        validate: &dyn Fn(&[u8]) -> bool,
    ) -> Result<Option<(u64, Offset)>, LogError> {
        const MAGIC_AT: usize = 16;
        let header = BATCH_HEADER_BYTES as usize;
        let mut start = from + 1;
        while start + BATCH_HEADER_BYTES <= file_len {
            let len = (RECOVERY_READ_BYTES + BATCH_HEADER_BYTES).min(file_len - start);
            let chunk = read_exact_at(self.log.as_ref(), start, len)?;
            let last = chunk.len().saturating_sub(header);
            for i in 0..=last {
                if chunk[i + MAGIC_AT] != 2 {
                    continue;
                }
                let Ok(meta) = read_header(&chunk[i..]) else {
                    continue;
                };
                let position = start + i as u64;
                let in_range = meta.base_offset > self.next_offset
                    && meta
                        .next_offset()
                        .0
                        .checked_sub(self.base.0)
                        .is_some_and(|r| r <= i64::from(u32::MAX));
                if !in_range || meta.size_bytes > file_len - position {
                    continue;
                }
                let batch = read_exact_at(self.log.as_ref(), position, meta.size_bytes)?;
                if validate(&batch) {
                    return Ok(Some((position, meta.base_offset)));
                }
            }
            start += (last + 1) as u64;
        }
        Ok(None)
    }

    /// Whether a batch header that continues `previous` (the next offset, and a size that
    /// fits the file) starts at `position`.
    fn header_continues_at(
        &self,
        position: u64,
        file_len: u64,
        previous: &BatchMeta,
    ) -> Result<bool, LogError> {
        if file_len - position < BATCH_HEADER_BYTES {
            return Ok(false);
        }
        let bytes = read_exact_at(self.log.as_ref(), position, BATCH_HEADER_BYTES)?;
        Ok(read_header(&bytes).is_ok_and(|next| {
            next.base_offset == previous.next_offset() && next.size_bytes <= file_len - position
        }))
    }

    /// Loads a segment wholly below the recovery point: its bytes and indexes were
    /// synced by the flush that moved the recovery point past it, so valid index files
    /// are trusted and only the tail after the last index entry is walked (headers only,
    /// no CRC). Invalid indexes are rebuilt by a header walk of the whole segment.
    /// Returns false if it had to rebuild.
    pub fn load_trusted(&mut self) -> Result<bool, LogError> {
        let index =
            OffsetIndex::load(self.base, self.index.file().clone(), self.size_bytes.max(1))?;
        let time_index = match &index {
            Some(_) => {
                TimeIndex::load(self.base, self.time_index.file().clone(), Offset(i64::MAX))?
            }
            None => None,
        };
        let (Some(index), Some(time_index)) = (index, time_index) else {
            self.index = OffsetIndex::empty(self.base, self.index.file().clone())?;
            self.time_index = TimeIndex::empty(self.base, self.time_index.file().clone())?;
            self.next_offset = self.base;
            let mut position = 0;
            while position < self.size_bytes {
                let (meta, _) = self.header_expecting(position, self.next_offset)?;
                self.note_batch(position, &meta)?;
                position += meta.size_bytes;
            }
            return Ok(false);
        };
        self.index = index;
        self.time_index = time_index;
        if let Some(last) = self.time_index.entries().last() {
            self.max_timestamp_ms = last.timestamp_ms;
            self.offset_of_max_timestamp = last.offset;
        }
        if self.size_bytes > 0 {
            self.first_batch_timestamp_ms = self.header_at(0)?.max_timestamp_ms.max(0);
        }
        let (mut position, mut expected) = self
            .index
            .entries()
            .last()
            .map_or((0, self.base), |e| (e.position, e.offset));
        self.bytes_since_index_entry = 0;
        while position < self.size_bytes {
            let (meta, _) = self.header_expecting(position, expected)?;
            expected = meta.next_offset();
            if position + meta.size_bytes > self.size_bytes {
                // Not what a flush left behind: let recovery scan this segment instead.
                return Err(LogError::Corrupt {
                    detail: format!(
                        "segment {} ends inside the batch at position {position}",
                        self.base
                    ),
                });
            }
            if meta.max_timestamp_ms > self.max_timestamp_ms {
                self.max_timestamp_ms = meta.max_timestamp_ms;
                self.offset_of_max_timestamp = meta.last_offset();
            }
            self.next_offset = meta.next_offset();
            self.bytes_since_index_entry += meta.size_bytes;
            position += meta.size_bytes;
        }
        Ok(true)
    }
}

/// `meta` as the batch at `expected` (offsets are contiguous), and whether its stored
/// base offset differed (damage to that field: it is not covered by the batch CRC).
fn at_expected_offset(meta: BatchMeta, expected: Offset) -> (BatchMeta, bool) {
    let damaged = meta.base_offset != expected;
    (
        BatchMeta {
            base_offset: expected,
            ..meta
        },
        damaged,
    )
}
