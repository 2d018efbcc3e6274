//! L1 — the Kafka wire formats, as pure computation on bytes.
//!
//! Owns: decoding and validating what clients send and what the log stores (today the
//! RecordBatch v2 format and its codecs), and the Kafka error codes those checks map to.
//! Must never do I/O, read a clock, spawn tasks or iterate unordered collections; every
//! decoder is total (any input gives `Ok` or a typed error, never a panic) and bounded
//! by `base::limits`.
//!
//! - `varint`: zig-zag varints and varlongs.
//! - `compression`: gzip, snappy (xerial or raw), lz4 frame, zstd; bounded output.
//! - `crc32c`: the batch checksum, with an AVX-512 fast path for long inputs.
//! - `record_batch`: the v2 header, produce validation, recovery scan, in-place patches.
//! - `records`: record-level decoding inside a batch.
//! - `error_codes`: Kafka's error codes by name.
//! - `batch_builder`: encoding batches (tests and the project's own client).

pub mod batch_builder;
pub mod compression;
pub mod crc32c;
pub mod error_codes;
pub mod record_batch;
pub mod records;
pub mod varint;

#[cfg(test)]
mod crc32c_tests;
#[cfg(test)]
mod record_batch_tests;

pub use batch_builder::{BuildError, RecordBatchBuilder, RecordInput};
pub use compression::{Compression, CompressionError};
pub use record_batch::{
    assign_offsets, client_batches, frame_batch, increment_sequence, parse_batches,
    parse_produce_batch, scan_log, set_log_append_time, set_max_timestamp,
    set_partition_leader_epoch, BatchError, BatchInfo, LogScanner, RecordBatchHeader, ScanOutcome,
    ScanStop, TimestampType,
};
pub use records::{records, Record, RecordFault};
