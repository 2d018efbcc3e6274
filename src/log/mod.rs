//! L2 — the partition log: segments of RecordBatch v2 bytes on the `Disk` seam, their
//! indexes, checkpoints, the leader-epoch cache and producer state; recovery, retention
//! and truncation. See docs/ON_DISK_FORMAT.md for every file's bytes.
//!
//! Synchronous and single-owner: one task owns a `PartitionLog` and calls it; waiting
//! (group commit, acks, long polls) is the L4 driver's. It must never serve a batch that
//! failed its CRC, never acknowledge as durable what was not synced, and never keep
//! operating after a failed fsync (the partition goes offline).

pub mod batch;
pub mod checkpoint;
pub mod config;
pub mod epoch_cache;
pub mod index;
pub mod partition;
pub mod producer_state;
pub mod segment;

#[cfg(test)]
mod tests;

pub use config::{ConfigError, LogConfig, TimestampType};
pub use partition::{AppendInfo, CheckpointJob, FlushJob, PartitionLog, ReadResult};

use crate::base::{IoError, Offset};

/// Errors of the log. The broker maps them to Kafka error codes at the protocol edge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    /// An I/O error. After a failed sync the partition is offline (`Offline`).
    #[error("log I/O error: {0}")]
    Io(#[from] IoError),
    /// The partition went offline after an I/O failure and refuses every operation.
    #[error("partition offline after an I/O failure: {0}")]
    Offline(String),
    /// Stored bytes failed validation (CRC, header): never served.
    #[error("corrupt log data: {detail}")]
    Corrupt { detail: String },
    /// A produced batch failed validation; carries the Kafka error code to answer.
    #[error("invalid record batch: {0}")]
    Batch(#[from] crate::protocol::BatchError),
    /// A batch larger than `max.message.bytes`.
    #[error("record batch of {size_bytes} bytes exceeds max.message.bytes {max_bytes}")]
    RecordTooLarge { size_bytes: u64, max_bytes: u64 },
    /// A CreateTime outside the allowed window.
    #[error("timestamp {timestamp_ms} out of range")]
    InvalidTimestamp { timestamp_ms: i64 },
    /// A batch breaks its idempotent producer's epoch or sequence.
    #[error("{0}")]
    Sequence(#[from] producer_state::SequenceError),
    /// A read or truncation outside [log start, log end].
    #[error("offset {offset} out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        offset: Offset,
        log_start: Offset,
        log_end: Offset,
    },
}
