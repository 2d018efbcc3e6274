//! What the log needs to know about a stored RecordBatch v2, on top of the protocol
//! layer's decoder: a header view whose offsets are known to be sane (non-negative
//! length and offset delta, magic 2, no overflow), so segment code can do arithmetic
//! on them without checks. Validation (CRC-32C, records) is `protocol::record_batch`'s.

use crate::base::{LeaderEpoch, Offset, ProducerEpoch, ProducerId, Sequence};
use crate::protocol::record_batch::{self, BatchError, RecordBatchHeader, MAGIC_V2};

/// baseOffset (8) + batchLength (4): the bytes before `batchLength` starts counting.
pub const LOG_OVERHEAD_BYTES: u64 = record_batch::LOG_OVERHEAD_BYTES as u64;
/// The whole v2 header, up to and including recordsCount.
pub const BATCH_HEADER_BYTES: u64 = record_batch::HEADER_BYTES as u64;

/// Header fields of one batch, checked for sanity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchMeta {
    pub base_offset: Offset,
    /// Bytes of the whole batch, including the 12-byte offset/length prefix.
    pub size_bytes: u64,
    pub partition_leader_epoch: LeaderEpoch,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp_ms: i64,
    pub max_timestamp_ms: i64,
    pub producer_id: ProducerId,
    pub producer_epoch: ProducerEpoch,
    pub base_sequence: Sequence,
    pub record_count: i32,
}

impl BatchMeta {
    pub fn last_offset(&self) -> Offset {
        Offset(self.base_offset.0 + self.last_offset_delta as i64)
    }

    pub fn next_offset(&self) -> Offset {
        self.last_offset().next()
    }

    pub fn is_control(&self) -> bool {
        self.attributes & 0x20 != 0
    }
}

/// Reads the header at the start of `bytes` and checks the fields the log does
/// arithmetic on. No CRC check: see `crc_matches`.
pub fn read_header(bytes: &[u8]) -> Result<BatchMeta, BatchError> {
    meta_of(&RecordBatchHeader::read(bytes)?)
}

/// The log's view of a header already read, with the same sanity checks as `read_header`.
pub fn meta_of(header: &RecordBatchHeader) -> Result<BatchMeta, BatchError> {
    let sane = header.magic == MAGIC_V2
        && header.size_bytes() >= BATCH_HEADER_BYTES
        && header.last_offset_delta >= 0
        && header.base_offset.0 >= 0
        && header.last_offset().is_some_and(|last| last.0 < i64::MAX);
    if !sane {
        return Err(BatchError::InvalidLength {
            batch_length_bytes: header.batch_length_bytes,
        });
    }
    Ok(BatchMeta {
        base_offset: header.base_offset,
        size_bytes: header.size_bytes(),
        partition_leader_epoch: header.partition_leader_epoch,
        attributes: header.attributes,
        last_offset_delta: header.last_offset_delta,
        base_timestamp_ms: header.base_timestamp_ms,
        max_timestamp_ms: header.max_timestamp_ms,
        producer_id: header.producer_id,
        producer_epoch: header.producer_epoch,
        base_sequence: header.base_sequence,
        record_count: header.records_count,
    })
}

/// Whether `batch` is exactly one whole batch whose length, magic and CRC-32C check out.
pub fn crc_matches(batch: &[u8]) -> bool {
    match record_batch::frame_batch(batch) {
        Ok(header) => header.size_bytes() == batch.len() as u64,
        Err(_) => false,
    }
}
