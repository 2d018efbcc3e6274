//! Kafka RecordBatch v2 framing: the 61-byte header, validation of the batches a Produce
//! request carries, the recovery scan over a log segment, and in-place patching of the
//! header fields the broker owns (base offset, partition leader epoch, max timestamp).
//!
//! Owns: everything about a batch that can be decided from its bytes alone. Never does
//! I/O, never reads a clock (callers pass times in), never re-encodes a batch (the log
//! stores the producer's bytes exactly as accepted), and never panics or allocates in
//! proportion to a length field it has not bounded.
//!
//! Layout (big-endian), offsets in bytes from the start of the batch:
//!
//! | off | size | field                | covered by CRC |
//! |-----|------|----------------------|----------------|
//! | 0   | 8    | baseOffset           | no             |
//! | 8   | 4    | batchLength (after this field) | no   |
//! | 12  | 4    | partitionLeaderEpoch | no             |
//! | 16  | 1    | magic (= 2)          | no             |
//! | 17  | 4    | crc (CRC-32C)        | -              |
//! | 21  | 2    | attributes           | yes            |
//! | 23  | 4    | lastOffsetDelta      | yes            |
//! | 27  | 8    | baseTimestamp        | yes            |
//! | 35  | 8    | maxTimestamp         | yes            |
//! | 43  | 8    | producerId           | yes            |
//! | 51  | 2    | producerEpoch        | yes            |
//! | 53  | 4    | baseSequence         | yes            |
//! | 57  | 4    | recordsCount         | yes            |
//! | 61  | ...  | records (maybe compressed) | yes      |

use std::ops::Range;

use crate::base::limits::{RECORD_BATCH_BYTES_MAX, RECORD_BATCH_RECORDS_MAX};
use crate::base::{LeaderEpoch, Offset, ProducerEpoch, ProducerId, Sequence};
use crate::protocol::compression::{Compression, CompressionError};
use crate::protocol::records::{walk_records, RecordFault};

/// Bytes before `batchLength` ends: baseOffset + batchLength. `batchLength` counts the rest.
pub const LOG_OVERHEAD_BYTES: usize = 12;
/// The whole v2 header, up to and including `recordsCount`.
pub const HEADER_BYTES: usize = 61;
/// The only magic this broker accepts.
pub const MAGIC_V2: i8 = 2;

const BATCH_LENGTH_OFFSET: usize = 8;
const PARTITION_LEADER_EPOCH_OFFSET: usize = 12;
const MAGIC_OFFSET: usize = 16;
const CRC_OFFSET: usize = 17;
/// The CRC covers everything from here to the end of the batch.
const ATTRIBUTES_OFFSET: usize = 21;
const LAST_OFFSET_DELTA_OFFSET: usize = 23;
const BASE_TIMESTAMP_OFFSET: usize = 27;
const MAX_TIMESTAMP_OFFSET: usize = 35;
const PRODUCER_ID_OFFSET: usize = 43;
const PRODUCER_EPOCH_OFFSET: usize = 51;
const BASE_SEQUENCE_OFFSET: usize = 53;
const RECORDS_COUNT_OFFSET: usize = 57;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;
const DELETE_HORIZON_BIT: i16 = 0x40;

/// Kafka error codes this module produces (org.apache.kafka.common.protocol.Errors).
pub mod error_code {
    pub const CORRUPT_MESSAGE: i16 = 2;
    pub const MESSAGE_TOO_LARGE: i16 = 10;
    pub const INVALID_TIMESTAMP: i16 = 32;
    pub const INVALID_PRODUCER_EPOCH: i16 = 47;
    pub const UNSUPPORTED_COMPRESSION_TYPE: i16 = 76;
    pub const INVALID_RECORD: i16 = 87;
}

/// Attribute bit 3: who set the timestamps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimestampType {
    /// The producer's timestamps (bit 3 clear).
    CreateTime,
    /// The broker's append time (bit 3 set); only the broker may set it.
    LogAppendTime,
}

/// Why a batch (or a record inside it) was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Fewer bytes than the header or the declared length need. For a produce request this
    /// is corruption; for a log segment it is a torn tail.
    #[error("batch truncated: need {needed_bytes} bytes, have {available_bytes}")]
    Truncated {
        needed_bytes: u64,
        available_bytes: u64,
    },
    /// `batchLength` is negative or too small to hold the v2 header.
    #[error("batchLength {batch_length_bytes} is invalid (v2 header needs 49)")]
    InvalidLength { batch_length_bytes: i32 },
    /// The batch is larger than any batch the broker accepts.
    #[error("batch of {size_bytes} bytes exceeds the {max_bytes}-byte bound")]
    TooLarge { size_bytes: u64, max_bytes: u64 },
    /// A legacy message set (magic 0 or 1). Produce v3+ requires magic 2.
    #[error("magic {magic} is not supported: only RecordBatch v2 (magic 2) is accepted")]
    UnsupportedMagic { magic: i8 },
    /// A magic byte no Kafka version ever wrote (negative or above 2).
    #[error("invalid magic {magic}")]
    InvalidMagic { magic: i8 },
    /// The stored CRC-32C does not match the bytes.
    #[error("CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    /// Attribute bits 0-2 name no codec.
    #[error("unsupported compression id {codec_id}")]
    UnsupportedCompression { codec_id: u8 },
    /// A produce request carried no batch at all.
    #[error("no record batch")]
    NoBatches,
    /// A produce request (v3+) carried more than one batch for one partition.
    #[error("more than one record batch for one partition")]
    MultipleBatches,
    /// `recordsCount` is negative, or zero where records are required.
    #[error("invalid records count {records_count}")]
    InvalidRecordCount { records_count: i32 },
    /// `recordsCount` exceeds the decoder's bound.
    #[error("records count {records_count} exceeds {max}")]
    TooManyRecords { records_count: i32, max: i32 },
    /// `lastOffsetDelta + 1 != recordsCount` in a batch from a client.
    #[error("lastOffsetDelta {last_offset_delta} inconsistent with records count {records_count}")]
    OffsetDeltaMismatch {
        last_offset_delta: i32,
        records_count: i32,
    },
    /// Clients may not write control batches.
    #[error("clients may not write control batches")]
    ControlBatchFromClient,
    /// Clients may not set timestampType = LogAppendTime.
    #[error("clients may not set timestamp type LogAppendTime")]
    LogAppendTimeFromClient,
    /// An idempotent batch (producerId >= 0) with a negative base sequence.
    #[error("invalid base sequence {base_sequence} for producer id {producer_id}")]
    InvalidSequence {
        producer_id: i64,
        base_sequence: i32,
    },
    /// An idempotent batch (producerId >= 0) with a negative producer epoch.
    #[error("invalid producer epoch {producer_epoch} for producer id {producer_id}")]
    InvalidProducerEpoch {
        producer_id: i64,
        producer_epoch: i16,
    },
    /// A transactional batch without a producer id.
    #[error("transactional batch without a producer id")]
    TransactionalWithoutProducerId,
    /// The records section could not be decompressed.
    #[error("records section: {0}")]
    Decompression(CompressionError),
    /// The records section decodes to something other than `recordsCount` records.
    #[error("records count {declared} declared, {found} found")]
    RecordCountMismatch { declared: i32, found: i64 },
    /// Record `index` (0-based) is malformed.
    #[error("record {index}: {fault}")]
    InvalidRecord { index: i32, fault: RecordFault },
    /// A patch or decode function was handed a slice that is not exactly one batch.
    #[error("slice of {len_bytes} bytes is not one batch of {declared_bytes} bytes")]
    NotOneBatch { len_bytes: u64, declared_bytes: u64 },
}

impl BatchError {
    /// The Kafka error code a real broker returns for this batch. Where Kafka's choice
    /// depends on where the check happens, this follows the produce path of Kafka 3.x/4.x.
    pub fn kafka_error_code(&self) -> i16 {
        use error_code::*;
        match self {
            BatchError::Truncated { .. }
            | BatchError::InvalidLength { .. }
            | BatchError::InvalidMagic { .. }
            | BatchError::CrcMismatch { .. }
            | BatchError::NotOneBatch { .. } => CORRUPT_MESSAGE,
            BatchError::Decompression(CompressionError::TooLarge { .. }) => MESSAGE_TOO_LARGE,
            BatchError::Decompression(CompressionError::Corrupt { .. }) => CORRUPT_MESSAGE,
            BatchError::TooLarge { .. } | BatchError::TooManyRecords { .. } => MESSAGE_TOO_LARGE,
            BatchError::UnsupportedCompression { .. } => UNSUPPORTED_COMPRESSION_TYPE,
            BatchError::LogAppendTimeFromClient => INVALID_TIMESTAMP,
            BatchError::InvalidProducerEpoch { .. } => INVALID_PRODUCER_EPOCH,
            BatchError::UnsupportedMagic { .. }
            | BatchError::NoBatches
            | BatchError::MultipleBatches
            | BatchError::InvalidRecordCount { .. }
            | BatchError::OffsetDeltaMismatch { .. }
            | BatchError::ControlBatchFromClient
            | BatchError::InvalidSequence { .. }
            | BatchError::TransactionalWithoutProducerId
            | BatchError::RecordCountMismatch { .. }
            | BatchError::InvalidRecord { .. } => INVALID_RECORD,
        }
    }
}

fn be_i16(buf: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([buf[at], buf[at + 1]])
}
fn be_i32(buf: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}
fn be_i64(buf: &[u8], at: usize) -> i64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&buf[at..at + 8]);
    i64::from_be_bytes(bytes)
}

/// A parsed copy of a v2 batch header. Reading it checks nothing beyond its length; the
/// validation lives in `frame_batch` and `parse_batches`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordBatchHeader {
    pub base_offset: Offset,
    /// Bytes after the `batchLength` field: the batch is `batch_length_bytes + 12` long.
    pub batch_length_bytes: i32,
    pub partition_leader_epoch: LeaderEpoch,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp_ms: i64,
    pub max_timestamp_ms: i64,
    pub producer_id: ProducerId,
    pub producer_epoch: ProducerEpoch,
    pub base_sequence: Sequence,
    pub records_count: i32,
}

impl RecordBatchHeader {
    /// Reads the 61-byte header at the start of `buf`.
    pub fn read(buf: &[u8]) -> Result<RecordBatchHeader, BatchError> {
        if buf.len() < HEADER_BYTES {
            return Err(BatchError::Truncated {
                needed_bytes: HEADER_BYTES as u64,
                available_bytes: buf.len() as u64,
            });
        }
        Ok(RecordBatchHeader {
            base_offset: Offset(be_i64(buf, 0)),
            batch_length_bytes: be_i32(buf, BATCH_LENGTH_OFFSET),
            partition_leader_epoch: LeaderEpoch(be_i32(buf, PARTITION_LEADER_EPOCH_OFFSET)),
            magic: buf[MAGIC_OFFSET] as i8,
            crc: be_i32(buf, CRC_OFFSET) as u32,
            attributes: be_i16(buf, ATTRIBUTES_OFFSET),
            last_offset_delta: be_i32(buf, LAST_OFFSET_DELTA_OFFSET),
            base_timestamp_ms: be_i64(buf, BASE_TIMESTAMP_OFFSET),
            max_timestamp_ms: be_i64(buf, MAX_TIMESTAMP_OFFSET),
            producer_id: ProducerId(be_i64(buf, PRODUCER_ID_OFFSET)),
            producer_epoch: ProducerEpoch(be_i16(buf, PRODUCER_EPOCH_OFFSET)),
            base_sequence: Sequence(be_i32(buf, BASE_SEQUENCE_OFFSET)),
            records_count: be_i32(buf, RECORDS_COUNT_OFFSET),
        })
    }

    /// The whole batch's size, header included.
    pub fn size_bytes(&self) -> u64 {
        LOG_OVERHEAD_BYTES as u64 + self.batch_length_bytes.max(0) as u64
    }

    /// The codec named by attribute bits 0-2.
    pub fn compression(&self) -> Result<Compression, BatchError> {
        let codec_id = (self.attributes & COMPRESSION_MASK) as u8;
        Compression::from_id(codec_id).ok_or(BatchError::UnsupportedCompression { codec_id })
    }

    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    /// Bit 6: `baseTimestamp` holds the delete horizon (set by compaction, KIP-534).
    pub fn has_delete_horizon_ms(&self) -> bool {
        self.attributes & DELETE_HORIZON_BIT != 0
    }

    /// Idempotent or transactional: Kafka treats any producerId >= 0 as a producer id.
    pub fn has_producer_id(&self) -> bool {
        self.producer_id.0 >= 0
    }

    /// `base_offset + last_offset_delta`, or `None` if that overflows (a corrupt header).
    pub fn last_offset(&self) -> Option<Offset> {
        self.base_offset
            .0
            .checked_add(i64::from(self.last_offset_delta))
            .map(Offset)
    }
}

/// A batch found in a buffer: its header and where it lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchInfo {
    pub header: RecordBatchHeader,
    /// Where the batch starts in the scanned buffer.
    pub position_bytes: usize,
    /// The whole batch's size, header included.
    pub size_bytes: usize,
}

impl BatchInfo {
    /// The batch's byte range in the scanned buffer.
    pub fn range(&self) -> Range<usize> {
        self.position_bytes..self.position_bytes + self.size_bytes
    }
}

/// The CRC-32C a batch should carry: over everything from `attributes` to its end.
/// `batch` must be at least `HEADER_BYTES` long (callers check).
fn compute_crc(batch: &[u8]) -> u32 {
    super::crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..])
}

/// Frames and checks the batch at the start of `buf`: length, magic and CRC, nothing a
/// log segment could legitimately violate. Returns the header; the batch occupies
/// `header.size_bytes()` bytes. Bytes after the batch are ignored.
pub fn frame_batch(buf: &[u8]) -> Result<RecordBatchHeader, BatchError> {
    let available_bytes = buf.len() as u64;
    if buf.len() < LOG_OVERHEAD_BYTES {
        return Err(BatchError::Truncated {
            needed_bytes: LOG_OVERHEAD_BYTES as u64,
            available_bytes,
        });
    }
    let batch_length_bytes = be_i32(buf, BATCH_LENGTH_OFFSET);
    if batch_length_bytes < 0 {
        return Err(BatchError::InvalidLength { batch_length_bytes });
    }
    let size_bytes = LOG_OVERHEAD_BYTES as u64 + batch_length_bytes as u64;
    if size_bytes > RECORD_BATCH_BYTES_MAX {
        return Err(BatchError::TooLarge {
            size_bytes,
            max_bytes: RECORD_BATCH_BYTES_MAX,
        });
    }
    // The magic sits at offset 16 in every message format, so it is checked before the
    // v2 length minimum: a legacy message set gets the clearer error.
    if buf.len() <= MAGIC_OFFSET {
        return Err(BatchError::Truncated {
            needed_bytes: size_bytes.max(MAGIC_OFFSET as u64 + 1),
            available_bytes,
        });
    }
    let magic = buf[MAGIC_OFFSET] as i8;
    match magic {
        MAGIC_V2 => {}
        0 | 1 => return Err(BatchError::UnsupportedMagic { magic }),
        _ => return Err(BatchError::InvalidMagic { magic }),
    }
    if size_bytes < HEADER_BYTES as u64 {
        return Err(BatchError::InvalidLength { batch_length_bytes });
    }
    if available_bytes < size_bytes {
        return Err(BatchError::Truncated {
            needed_bytes: size_bytes,
            available_bytes,
        });
    }
    let batch = &buf[..size_bytes as usize];
    let header = RecordBatchHeader::read(batch)?;
    let computed = compute_crc(batch);
    if computed != header.crc {
        return Err(BatchError::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    Ok(header)
}

/// The rules Kafka applies to a batch that comes from a client (LogValidator.validateBatch
/// and friends), beyond framing.
fn check_client_header(header: &RecordBatchHeader) -> Result<(), BatchError> {
    header.compression()?;
    let records_count = header.records_count;
    if records_count <= 0 {
        return Err(BatchError::InvalidRecordCount { records_count });
    }
    if records_count > RECORD_BATCH_RECORDS_MAX {
        return Err(BatchError::TooManyRecords {
            records_count,
            max: RECORD_BATCH_RECORDS_MAX,
        });
    }
    if i64::from(header.last_offset_delta) + 1 != i64::from(records_count) {
        return Err(BatchError::OffsetDeltaMismatch {
            last_offset_delta: header.last_offset_delta,
            records_count,
        });
    }
    if header.is_control() {
        return Err(BatchError::ControlBatchFromClient);
    }
    if header.timestamp_type() == TimestampType::LogAppendTime {
        return Err(BatchError::LogAppendTimeFromClient);
    }
    // producerId -1 means a plain producer; its epoch and sequence are not checked,
    // because clients disagree on them (kafkajs sends epoch 0 and sequence 0).
    if header.has_producer_id() {
        if header.base_sequence.0 < 0 {
            return Err(BatchError::InvalidSequence {
                producer_id: header.producer_id.0,
                base_sequence: header.base_sequence.0,
            });
        }
        if header.producer_epoch.0 < 0 {
            return Err(BatchError::InvalidProducerEpoch {
                producer_id: header.producer_id.0,
                producer_epoch: header.producer_epoch.0,
            });
        }
    } else if header.is_transactional() {
        return Err(BatchError::TransactionalWithoutProducerId);
    }
    Ok(())
}

/// Validates one batch from a client completely: framing, CRC, client header rules, and
/// every record (decompressing, bounded, if needed).
fn check_client_batch(batch: &[u8]) -> Result<RecordBatchHeader, BatchError> {
    let header = frame_batch(batch)?;
    check_client_header(&header)?;
    let size_bytes = header.size_bytes() as usize;
    walk_records(&header, &batch[HEADER_BYTES..size_bytes], |_| Ok(()))?;
    Ok(header)
}

/// Walks a Produce request's records buffer, which may hold several concatenated batches,
/// and validates each completely (see `check_client_batch`). Any defect, including a
/// truncated final batch, rejects the whole buffer.
pub fn parse_batches(buf: &[u8]) -> Result<Vec<BatchInfo>, BatchError> {
    client_batches(buf).collect()
}

/// As `parse_batches`, one batch at a time and without allocating: the append path's
/// form. Yields `Err` (and then stops) at the first defect; an empty buffer yields
/// `Err(NoBatches)`.
pub fn client_batches(buf: &[u8]) -> ClientBatches<'_> {
    ClientBatches {
        buf,
        position_bytes: 0,
        failed: false,
    }
}

/// The iterator of `client_batches`.
#[derive(Clone, Debug)]
pub struct ClientBatches<'a> {
    buf: &'a [u8],
    position_bytes: usize,
    failed: bool,
}

impl Iterator for ClientBatches<'_> {
    type Item = Result<BatchInfo, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.buf.is_empty() {
            self.failed = true;
            return Some(Err(BatchError::NoBatches));
        }
        if self.position_bytes >= self.buf.len() {
            return None;
        }
        match check_client_batch(&self.buf[self.position_bytes..]) {
            Ok(header) => {
                let size_bytes = header.size_bytes() as usize;
                let info = BatchInfo {
                    header,
                    position_bytes: self.position_bytes,
                    size_bytes,
                };
                self.position_bytes += size_bytes;
                Some(Ok(info))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// As `parse_batches`, plus Kafka's Produce v3+ rule: exactly one batch per partition.
pub fn parse_produce_batch(buf: &[u8]) -> Result<BatchInfo, BatchError> {
    let header = check_client_batch(buf)?;
    let size_bytes = header.size_bytes() as usize;
    if size_bytes != buf.len() {
        // Validate what follows first, so that a corrupt second batch reports corruption.
        check_client_batch(&buf[size_bytes..])?;
        return Err(BatchError::MultipleBatches);
    }
    Ok(BatchInfo {
        header,
        position_bytes: 0,
        size_bytes,
    })
}

/// Why a log scan stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScanStop {
    /// The buffer ended exactly at a batch boundary.
    End,
    /// The last batch is incomplete: a torn write. Truncate at `valid_bytes`.
    TornTail {
        needed_bytes: u64,
        available_bytes: u64,
    },
    /// A batch failed its checks (bad length, magic or CRC). Truncate at `valid_bytes`.
    Corrupt(BatchError),
}

/// Where a log scan's valid prefix ends, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanOutcome {
    /// Length of the prefix made of whole, valid batches.
    pub valid_bytes: usize,
    pub stop: ScanStop,
}

/// Iterates the whole, valid batches at the start of a log segment's bytes, for recovery.
/// Checks framing, magic and CRC only: compacted batches (gaps in offsets, zero records,
/// control batches) are legitimate in a log. Allocates nothing.
#[derive(Clone, Debug)]
pub struct LogScanner<'a> {
    buf: &'a [u8],
    position_bytes: usize,
    stop: Option<ScanStop>,
}

/// Starts a recovery scan over `buf` (bytes of a segment from a batch boundary on).
pub fn scan_log(buf: &[u8]) -> LogScanner<'_> {
    LogScanner {
        buf,
        position_bytes: 0,
        stop: None,
    }
}

impl LogScanner<'_> {
    /// Length of the valid prefix found so far; final once `outcome` is `Some`.
    pub fn valid_bytes(&self) -> usize {
        self.position_bytes
    }

    /// `Some` once the iterator has returned `None`: where and why the scan stopped.
    pub fn outcome(&self) -> Option<ScanOutcome> {
        self.stop.clone().map(|stop| ScanOutcome {
            valid_bytes: self.position_bytes,
            stop,
        })
    }

    /// Drains the scanner and returns its outcome.
    pub fn finish(mut self) -> ScanOutcome {
        while self.next().is_some() {}
        ScanOutcome {
            valid_bytes: self.position_bytes,
            stop: self.stop.unwrap_or(ScanStop::End),
        }
    }
}

impl Iterator for LogScanner<'_> {
    type Item = BatchInfo;

    fn next(&mut self) -> Option<BatchInfo> {
        if self.stop.is_some() {
            return None;
        }
        let rest = &self.buf[self.position_bytes..];
        if rest.is_empty() {
            self.stop = Some(ScanStop::End);
            return None;
        }
        match frame_batch(rest) {
            Ok(header) => {
                let info = BatchInfo {
                    header,
                    position_bytes: self.position_bytes,
                    size_bytes: header.size_bytes() as usize,
                };
                self.position_bytes += info.size_bytes;
                Some(info)
            }
            Err(BatchError::Truncated {
                needed_bytes,
                available_bytes,
            }) => {
                self.stop = Some(ScanStop::TornTail {
                    needed_bytes,
                    available_bytes,
                });
                None
            }
            Err(error) => {
                self.stop = Some(ScanStop::Corrupt(error));
                None
            }
        }
    }
}

/// Checks that `batch` is exactly one batch with a readable header, for the patchers.
fn check_one_batch(batch: &[u8]) -> Result<(), BatchError> {
    if batch.len() < HEADER_BYTES {
        return Err(BatchError::Truncated {
            needed_bytes: HEADER_BYTES as u64,
            available_bytes: batch.len() as u64,
        });
    }
    let declared_bytes =
        LOG_OVERHEAD_BYTES as u64 + be_i32(batch, BATCH_LENGTH_OFFSET).max(0) as u64;
    if declared_bytes != batch.len() as u64 {
        return Err(BatchError::NotOneBatch {
            len_bytes: batch.len() as u64,
            declared_bytes,
        });
    }
    Ok(())
}

/// `sequence` advanced by `increment` (>= 0) as Kafka counts producer sequences: they
/// wrap from `i32::MAX` to 0 (Kafka's `DefaultRecordBatch.incrementSequence`). The
/// producer numbers its batches with it and the broker checks them with it.
pub fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    match sequence.checked_add(increment) {
        Some(next) => next,
        None => increment - (i32::MAX - sequence) - 1,
    }
}

/// Sets `baseOffset` in place. The CRC does not cover it, so the CRC stays valid.
pub fn assign_offsets(batch: &mut [u8], base_offset: Offset) -> Result<(), BatchError> {
    check_one_batch(batch)?;
    batch[..8].copy_from_slice(&base_offset.0.to_be_bytes());
    Ok(())
}

/// Sets `partitionLeaderEpoch` in place. The CRC does not cover it.
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: LeaderEpoch) -> Result<(), BatchError> {
    check_one_batch(batch)?;
    batch[PARTITION_LEADER_EPOCH_OFFSET..PARTITION_LEADER_EPOCH_OFFSET + 4]
        .copy_from_slice(&epoch.0.to_be_bytes());
    Ok(())
}

/// Sets the timestamp type (attribute bit 3) and `maxTimestamp` in place, as Kafka's
/// `setMaxTimestamp` does. Both are covered by the CRC, so the CRC is recomputed (only
/// if something changed). The records themselves are untouched.
pub fn set_max_timestamp(
    batch: &mut [u8],
    timestamp_type: TimestampType,
    max_timestamp_ms: i64,
) -> Result<(), BatchError> {
    check_one_batch(batch)?;
    let attributes = be_i16(batch, ATTRIBUTES_OFFSET);
    let attributes_new = match timestamp_type {
        TimestampType::CreateTime => attributes & !TIMESTAMP_TYPE_BIT,
        TimestampType::LogAppendTime => attributes | TIMESTAMP_TYPE_BIT,
    };
    if attributes_new == attributes && be_i64(batch, MAX_TIMESTAMP_OFFSET) == max_timestamp_ms {
        return Ok(());
    }
    batch[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes_new.to_be_bytes());
    batch[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8]
        .copy_from_slice(&max_timestamp_ms.to_be_bytes());
    let crc = compute_crc(batch);
    batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// Stamps the batch with the broker's append time (topic `message.timestamp.type =
/// LogAppendTime`): sets attribute bit 3 and `maxTimestamp`, and recomputes the CRC.
pub fn set_log_append_time(batch: &mut [u8], timestamp_ms: i64) -> Result<(), BatchError> {
    set_max_timestamp(batch, TimestampType::LogAppendTime, timestamp_ms)
}

/// Writes a correct CRC into a batch whose other fields are final. For the builder.
pub(crate) fn write_crc(batch: &mut [u8]) {
    assert!(
        batch.len() >= HEADER_BYTES,
        "write_crc needs a whole batch header"
    );
    let crc = compute_crc(batch);
    batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}
