//! The `__cluster_metadata` log: the controller's records, one Kafka record each (the
//! value is `MetadataRecord::encode`), appended as RecordBatch v2 to an ordinary
//! `PartitionLog` in `<data>/__cluster_metadata-0/`, and replayed from its start into a
//! `MetadataImage` when the node starts.
//!
//! Commit rule: a batch is appended and fsynced before its records are applied to the
//! image or any answer goes out. A single node is a one-voter quorum, so its own durable
//! append *is* the commit. The Raft issue replicates this same log (same directory, same
//! batches, leader epochs as Raft terms) and moves the commit point to a majority; nothing
//! written here is thrown away.
//!
//! Appends run on the calling task, fsync included: metadata changes are rare admin
//! operations, and running them inline keeps their order obvious.

use bytes::Bytes;

use crate::base::limits::METADATA_BATCH_RECORDS_MAX;
use crate::base::{LeaderEpoch, Offset};
use crate::controller::{MetadataImage, MetadataRecord, ReplayError, METADATA_TOPIC};
use crate::io::{Clock, DiskRef};
use crate::log::{LogConfig, LogError, PartitionLog};
use crate::protocol::{frame_batch, records, Compression, RecordBatchBuilder, RecordInput};

/// The metadata log's directory under the data root.
pub fn metadata_dir() -> String {
    format!("{METADATA_TOPIC}-0")
}

/// Largest read while replaying (whole batches are always returned).
const REPLAY_READ_BYTES: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum MetadataLogError {
    #[error("metadata log: {0}")]
    Log(#[from] LogError),
    #[error("metadata log batch at offset {offset}: {detail}")]
    Corrupt { offset: Offset, detail: String },
    #[error("metadata log record at offset {offset} does not fit the image: {error}")]
    Replay { offset: Offset, error: ReplayError },
}

#[derive(Debug)]
pub struct MetadataLog {
    log: PartitionLog,
    clock: Clock,
}

impl MetadataLog {
    /// Opens (creating if needed) the metadata log, recovers it, and replays every
    /// record into a fresh image.
    pub fn open(
        disk: DiskRef,
        clock: Clock,
    ) -> Result<(MetadataLog, MetadataImage), MetadataLogError> {
        let config = LogConfig {
            // Every append is durable before it is applied (see the module docs).
            flush_messages: 1,
            retention_ms: -1,
            max_message_bytes: 64 * 1024 * 1024,
            ..LogConfig::default()
        };
        let (mut log, _report) = PartitionLog::open(disk, &metadata_dir(), config, clock.clone())?;
        let mut image = MetadataImage::new();
        let end = log.log_end_offset();
        // Recovery leaves only whole, CRC-checked batches below the end, and every one
        // of them was fsynced before it was applied: all of it is committed.
        log.set_high_watermark(end);
        let mut offset = log.log_start_offset();
        while offset < end {
            let read = log.read(offset, REPLAY_READ_BYTES, end)?;
            if read.records.is_empty() {
                break;
            }
            offset = replay_batches(&read.records, &mut image, offset)?;
        }
        Ok((MetadataLog { log, clock }, image))
    }

    /// Appends `records` as one batch and makes it durable. Only after `Ok` may the
    /// caller replay them: they are then committed.
    pub fn append(&mut self, records: &[MetadataRecord]) -> Result<Offset, MetadataLogError> {
        if records.is_empty() {
            return Ok(self.log.log_end_offset());
        }
        let now_ms = self.clock.now_ms();
        let mut builder = RecordBatchBuilder::new(Compression::None);
        for record in records {
            builder.append(RecordInput {
                timestamp_ms: now_ms,
                key: None,
                value: Some(Bytes::from(record.encode())),
                headers: Vec::new(),
            });
        }
        let batch = builder.build().map_err(|e| MetadataLogError::Corrupt {
            offset: self.log.log_end_offset(),
            detail: e.to_string(),
        })?;
        let mut bytes = batch.to_vec();
        let info = self.log.append_as_leader(&mut bytes, LeaderEpoch(0))?;
        self.log.flush_now()?;
        self.log.set_high_watermark(info.last_offset.next());
        Ok(info.last_offset)
    }

    /// Flushes and checkpoints: a clean shutdown.
    pub fn close(self) -> Result<(), LogError> {
        self.log.close()
    }

    /// Flushes and checkpoints without giving the log up (shutdown through a shared
    /// state). Appends stay possible, and stay durable-before-applied.
    pub fn checkpoint(&mut self) -> Result<(), LogError> {
        self.log.flush_now()?;
        self.log.write_partition_checkpoint()
    }
}

/// Replays every batch in `bytes` (read from `offset`); returns the offset after them.
fn replay_batches(
    bytes: &Bytes,
    image: &mut MetadataImage,
    mut offset: Offset,
) -> Result<Offset, MetadataLogError> {
    let mut position = 0usize;
    while position < bytes.len() {
        let corrupt = |detail: String| MetadataLogError::Corrupt { offset, detail };
        let header = frame_batch(&bytes[position..]).map_err(|e| corrupt(e.to_string()))?;
        let size = header.size_bytes() as usize;
        let batch = bytes.slice(position..position + size);
        let decoded = records(&batch).map_err(|e| corrupt(e.to_string()))?;
        if decoded.len() > METADATA_BATCH_RECORDS_MAX {
            return Err(corrupt("too many records".into()));
        }
        for record in &decoded {
            let record_offset = Offset(header.base_offset.0 + i64::from(record.offset_delta));
            let value = record
                .value
                .as_ref()
                .ok_or_else(|| MetadataLogError::Corrupt {
                    offset: record_offset,
                    detail: "record without a value".into(),
                })?;
            let record = MetadataRecord::decode(value).map_err(|e| MetadataLogError::Corrupt {
                offset: record_offset,
                detail: e.to_string(),
            })?;
            image
                .replay(&record)
                .map_err(|error| MetadataLogError::Replay {
                    offset: record_offset,
                    error,
                })?;
        }
        offset = header
            .last_offset()
            .ok_or_else(|| corrupt("bad last offset".into()))?
            .next();
        position += size;
    }
    Ok(offset)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::controller::TopicId;
    use crate::io::sim::SimDisk;

    fn topic(n: u8) -> MetadataRecord {
        MetadataRecord::Topic {
            name: format!("t{n}"),
            id: TopicId([n; 16]),
        }
    }

    #[test]
    fn appended_records_replay_after_reopen_and_survive_a_crash() {
        let sim = Arc::new(SimDisk::new(1));
        let disk: DiskRef = sim.clone();
        let clock = Clock::manual(1_000);
        let (mut log, image) = MetadataLog::open(disk.clone(), clock.clone()).unwrap();
        assert_eq!(image, MetadataImage::new());
        log.append(&[topic(1), topic(2)]).unwrap();
        log.append(&[topic(3)]).unwrap();
        // No close: a crash right after the appends returned keeps them (fsynced).
        drop(log);
        sim.crash();
        let (log, image) = MetadataLog::open(disk.clone(), clock.clone()).unwrap();
        assert_eq!(
            image.topics.keys().cloned().collect::<Vec<_>>(),
            vec!["t1", "t2", "t3"]
        );
        assert_eq!(image.records_applied, 3);
        log.close().unwrap();
        let (_, again) = MetadataLog::open(disk, clock).unwrap();
        assert_eq!(again, image);
    }

    #[test]
    fn a_record_that_contradicts_the_image_fails_the_open() {
        let disk: DiskRef = Arc::new(SimDisk::new(2));
        let clock = Clock::manual(1_000);
        let (mut log, _) = MetadataLog::open(disk.clone(), clock.clone()).unwrap();
        log.append(&[MetadataRecord::RemoveTopic {
            id: TopicId([5; 16]),
        }])
        .unwrap();
        log.close().unwrap();
        assert!(matches!(
            MetadataLog::open(disk, clock),
            Err(MetadataLogError::Replay { .. })
        ));
    }
}
