//! Encodes records into a RecordBatch v2, for tests and for the project's own client.
//!
//! Owns: record encoding, compression of the records section, header fields and the CRC.
//! Never used on the broker's produce path: the broker stores the producer's bytes and
//! only patches header fields in place (see `record_batch`).

use bytes::Bytes;

use crate::base::limits::{RECORD_BATCH_BYTES_MAX, RECORD_BATCH_RECORDS_MAX};
use crate::base::{LeaderEpoch, Offset, ProducerEpoch, ProducerId, Sequence};
use crate::protocol::compression::{compress, Compression, CompressionError};
use crate::protocol::record_batch::{
    write_crc, TimestampType, HEADER_BYTES, LOG_OVERHEAD_BYTES, MAGIC_V2,
};
use crate::protocol::varint::{write_varint, write_varlong};

/// Why a batch could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("more than {max} records")]
    TooManyRecords { max: i32 },
    #[error("a key, value or header is longer than i32::MAX bytes")]
    FieldTooLarge,
    #[error("timestamp delta of record {index} overflows")]
    TimestampOverflow { index: usize },
    #[error("batch of {size_bytes} bytes exceeds {max_bytes}")]
    TooLarge { size_bytes: u64, max_bytes: u64 },
    #[error("compression failed: {0}")]
    Compression(CompressionError),
}

/// A record to encode; its offset delta is its position in the batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordInput {
    pub timestamp_ms: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// Builds one v2 batch. Defaults: no compression, CreateTime, base offset 0, leader
/// epoch -1, no producer id (-1/-1/-1), neither transactional nor control.
#[derive(Clone, Debug)]
pub struct RecordBatchBuilder {
    compression: Compression,
    timestamp_type: TimestampType,
    base_offset: Offset,
    partition_leader_epoch: LeaderEpoch,
    producer_id: ProducerId,
    producer_epoch: ProducerEpoch,
    base_sequence: Sequence,
    is_transactional: bool,
    is_control: bool,
    records: Vec<RecordInput>,
}

impl RecordBatchBuilder {
    pub fn new(compression: Compression) -> RecordBatchBuilder {
        RecordBatchBuilder {
            compression,
            timestamp_type: TimestampType::CreateTime,
            base_offset: Offset(0),
            partition_leader_epoch: LeaderEpoch(-1),
            producer_id: ProducerId(-1),
            producer_epoch: ProducerEpoch(-1),
            base_sequence: Sequence(-1),
            is_transactional: false,
            is_control: false,
            records: Vec::new(),
        }
    }

    pub fn timestamp_type(mut self, timestamp_type: TimestampType) -> Self {
        self.timestamp_type = timestamp_type;
        self
    }

    pub fn base_offset(mut self, base_offset: Offset) -> Self {
        self.base_offset = base_offset;
        self
    }

    pub fn partition_leader_epoch(mut self, epoch: LeaderEpoch) -> Self {
        self.partition_leader_epoch = epoch;
        self
    }

    /// Idempotent producer fields: producer id, epoch, and the first record's sequence.
    pub fn producer(
        mut self,
        id: ProducerId,
        epoch: ProducerEpoch,
        base_sequence: Sequence,
    ) -> Self {
        self.producer_id = id;
        self.producer_epoch = epoch;
        self.base_sequence = base_sequence;
        self
    }

    pub fn transactional(mut self, is_transactional: bool) -> Self {
        self.is_transactional = is_transactional;
        self
    }

    pub fn control(mut self, is_control: bool) -> Self {
        self.is_control = is_control;
        self
    }

    /// Appends a record; it gets offset delta `records so far`.
    pub fn append(&mut self, record: RecordInput) -> &mut Self {
        self.records.push(record);
        self
    }

    /// Encodes the batch: records, compression, header, CRC.
    pub fn build(&self) -> Result<Bytes, BuildError> {
        let records_count = i32::try_from(self.records.len())
            .ok()
            .filter(|count| *count <= RECORD_BATCH_RECORDS_MAX)
            .ok_or(BuildError::TooManyRecords {
                max: RECORD_BATCH_RECORDS_MAX,
            })?;
        let base_timestamp_ms = self.records.first().map_or(-1, |r| r.timestamp_ms);
        let max_timestamp_ms = self
            .records
            .iter()
            .map(|r| r.timestamp_ms)
            .max()
            .unwrap_or(-1);

        let mut section = Vec::new();
        let mut body = Vec::new();
        for (index, record) in self.records.iter().enumerate() {
            let timestamp_delta_ms = record
                .timestamp_ms
                .checked_sub(base_timestamp_ms)
                .ok_or(BuildError::TimestampOverflow { index })?;
            body.clear();
            body.push(0); // record attributes: unused in v2
            write_varlong(&mut body, timestamp_delta_ms);
            write_varint(&mut body, index as i32);
            write_nullable(&mut body, record.key.as_deref())?;
            write_nullable(&mut body, record.value.as_deref())?;
            write_varint(&mut body, length_i32(record.headers.len())?);
            for (key, value) in &record.headers {
                write_nullable(&mut body, Some(key.as_bytes()))?;
                write_nullable(&mut body, value.as_deref())?;
            }
            write_varint(&mut section, length_i32(body.len())?);
            section.extend_from_slice(&body);
        }
        let section = compress(self.compression, &section).map_err(BuildError::Compression)?;

        let size_bytes = (HEADER_BYTES + section.len()) as u64;
        if size_bytes > RECORD_BATCH_BYTES_MAX {
            return Err(BuildError::TooLarge {
                size_bytes,
                max_bytes: RECORD_BATCH_BYTES_MAX,
            });
        }
        let batch_length_bytes = length_i32(HEADER_BYTES + section.len() - LOG_OVERHEAD_BYTES)?;
        let mut attributes = i16::from(self.compression.id());
        if self.timestamp_type == TimestampType::LogAppendTime {
            attributes |= 0x08;
        }
        if self.is_transactional {
            attributes |= 0x10;
        }
        if self.is_control {
            attributes |= 0x20;
        }

        let mut batch = Vec::with_capacity(HEADER_BYTES + section.len());
        batch.extend_from_slice(&self.base_offset.0.to_be_bytes());
        batch.extend_from_slice(&batch_length_bytes.to_be_bytes());
        batch.extend_from_slice(&self.partition_leader_epoch.0.to_be_bytes());
        batch.push(MAGIC_V2 as u8);
        batch.extend_from_slice(&[0; 4]); // CRC, written last
        batch.extend_from_slice(&attributes.to_be_bytes());
        batch.extend_from_slice(&(records_count - 1).to_be_bytes()); // lastOffsetDelta
        batch.extend_from_slice(&base_timestamp_ms.to_be_bytes());
        batch.extend_from_slice(&max_timestamp_ms.to_be_bytes());
        batch.extend_from_slice(&self.producer_id.0.to_be_bytes());
        batch.extend_from_slice(&self.producer_epoch.0.to_be_bytes());
        batch.extend_from_slice(&self.base_sequence.0.to_be_bytes());
        batch.extend_from_slice(&records_count.to_be_bytes());
        assert_eq!(batch.len(), HEADER_BYTES, "the v2 header is 61 bytes");
        batch.extend_from_slice(&section);
        write_crc(&mut batch);
        Ok(Bytes::from(batch))
    }
}

fn length_i32(length: usize) -> Result<i32, BuildError> {
    i32::try_from(length).map_err(|_| BuildError::FieldTooLarge)
}

fn write_nullable(out: &mut Vec<u8>, bytes: Option<&[u8]>) -> Result<(), BuildError> {
    match bytes {
        None => write_varint(out, -1),
        Some(bytes) => {
            write_varint(out, length_i32(bytes.len())?);
            out.extend_from_slice(bytes);
        }
    }
    Ok(())
}
