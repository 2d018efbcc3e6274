//! What the log needs to know about a stored RecordBatch v2: its header fields, read at
//! fixed positions. Full validation (CRC-32C, record structure) is the protocol layer's;
//! this module only reads what the header says and checks it is self-consistent.

use crate::base::{LeaderEpoch, Offset, ProducerEpoch, ProducerId, Sequence};

/// baseOffset (8) + batchLength (4): the bytes before `batchLength` starts counting.
pub const LOG_OVERHEAD_BYTES: u64 = 12;
/// The whole v2 header, up to and including recordsCount.
pub const BATCH_HEADER_BYTES: u64 = 61;

/// Header fields of one batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchMeta {
    pub base_offset: Offset,
    /// Bytes of the whole batch, including the 12-byte offset/length prefix.
    pub size_bytes: u64,
    pub partition_leader_epoch: LeaderEpoch,
    pub magic: i8,
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

    pub fn is_transactional(&self) -> bool {
        self.attributes & 0x10 != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & 0x20 != 0
    }
}

/// Why a header could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderProblem {
    /// Fewer bytes than a header (a torn tail).
    Short,
    /// batchLength is negative or smaller than the header.
    BadLength,
    /// Not magic 2.
    BadMagic,
    /// lastOffsetDelta negative.
    BadOffsetDelta,
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(x)
}

fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

/// Reads the header at the start of `bytes` (which must hold at least the header).
pub fn read_header(bytes: &[u8]) -> Result<BatchMeta, HeaderProblem> {
    if (bytes.len() as u64) < BATCH_HEADER_BYTES {
        return Err(HeaderProblem::Short);
    }
    let batch_length = i32_at(bytes, 8);
    if (batch_length as i64) < (BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES) as i64 {
        return Err(HeaderProblem::BadLength);
    }
    let magic = bytes[16] as i8;
    if magic != 2 {
        return Err(HeaderProblem::BadMagic);
    }
    let last_offset_delta = i32_at(bytes, 23);
    if last_offset_delta < 0 {
        return Err(HeaderProblem::BadOffsetDelta);
    }
    Ok(BatchMeta {
        base_offset: Offset(i64_at(bytes, 0)),
        size_bytes: LOG_OVERHEAD_BYTES + batch_length as u64,
        partition_leader_epoch: LeaderEpoch(i32_at(bytes, 12)),
        magic,
        attributes: i16_at(bytes, 21),
        last_offset_delta,
        base_timestamp_ms: i64_at(bytes, 27),
        max_timestamp_ms: i64_at(bytes, 35),
        producer_id: ProducerId(i64_at(bytes, 43)),
        producer_epoch: ProducerEpoch(i16_at(bytes, 51)),
        base_sequence: Sequence(i32_at(bytes, 53)),
        record_count: i32_at(bytes, 57),
    })
}

/// Overwrites baseOffset (not covered by the CRC).
pub fn patch_base_offset(batch: &mut [u8], base_offset: Offset) {
    batch[..8].copy_from_slice(&base_offset.0.to_be_bytes());
}

/// Overwrites partitionLeaderEpoch (not covered by the CRC).
pub fn patch_leader_epoch(batch: &mut [u8], epoch: LeaderEpoch) {
    batch[12..16].copy_from_slice(&epoch.0.to_be_bytes());
}

/// Whether the batch's stored CRC-32C matches its bytes (attributes to the end).
pub fn crc_matches(batch: &[u8]) -> bool {
    if (batch.len() as u64) < BATCH_HEADER_BYTES {
        return false;
    }
    let stored = u32::from_be_bytes([batch[17], batch[18], batch[19], batch[20]]);
    crc32c::crc32c(&batch[21..]) == stored
}

/// Marks a batch LogAppendTime with `timestamp_ms` as its max timestamp and recomputes
/// the CRC (attributes and maxTimestamp are covered by it).
pub fn patch_log_append_time(batch: &mut [u8], timestamp_ms: i64) {
    let attributes = i16_at(batch, 21) | 0x08;
    batch[21..23].copy_from_slice(&attributes.to_be_bytes());
    batch[35..43].copy_from_slice(&timestamp_ms.to_be_bytes());
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}
