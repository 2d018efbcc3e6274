//! Decoding of the records inside a v2 batch: decompression (bounded) and the record
//! grammar (length, attributes, timestampDelta, offsetDelta, key, value, headers).
//!
//! Owns: record-level validation and the `Record` value type. Never re-encodes, never
//! allocates in proportion to an unchecked count (record and header totals are bounded
//! by `base::limits`), and returns keys and values as slices of one shared buffer.

use std::ops::Range;

use bytes::Bytes;

use crate::base::limits::{
    RECORD_BATCH_DECOMPRESSED_BYTES_MAX, RECORD_BATCH_HEADERS_MAX, RECORD_BATCH_RECORDS_MAX,
};
use crate::protocol::compression::{decompress, Compression};
use crate::protocol::record_batch::{frame_batch, BatchError, RecordBatchHeader, HEADER_BYTES};
use crate::protocol::varint::{read_varint, read_varlong, VarintError};

/// The smallest possible record: length, attributes, timestampDelta, offsetDelta,
/// keyLength, valueLength and headersCount, one byte each.
const RECORD_BYTES_MIN: usize = 7;

/// What is wrong with one record.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordFault {
    #[error("record runs past the end of the records section")]
    Truncated,
    #[error("bad varint: {0}")]
    Varint(VarintError),
    #[error("negative length {length}")]
    NegativeLength { length: i32 },
    #[error("declared length {declared_bytes} but body is {actual_bytes} bytes")]
    LengthMismatch {
        declared_bytes: usize,
        actual_bytes: usize,
    },
    #[error("offsetDelta {offset_delta} after {previous}: not increasing within 0..={last_offset_delta}")]
    OffsetDelta {
        offset_delta: i32,
        previous: i64,
        last_offset_delta: i32,
    },
    #[error("timestamp overflows i64")]
    TimestampOverflow,
    #[error("header key is not UTF-8")]
    HeaderKeyNotUtf8,
    #[error("headers in the batch exceed {max}")]
    TooManyHeaders { max: usize },
}

/// One decoded record. Key, value and header values share the batch's buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub offset_delta: i32,
    pub timestamp_delta_ms: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// A record located in a records section: parsed integers and byte ranges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RecordView {
    pub offset_delta: i32,
    pub timestamp_delta_ms: i64,
    pub key: Option<Range<usize>>,
    pub value: Option<Range<usize>>,
    /// (key range, value range) per header.
    pub headers: Vec<(Range<usize>, Option<Range<usize>>)>,
}

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    end: usize,
}

impl Cursor<'_> {
    fn varint(&mut self) -> Result<i32, RecordFault> {
        let mut pos = self.pos;
        let value = read_varint(&self.data[..self.end], &mut pos).map_err(varint_fault)?;
        self.pos = pos;
        Ok(value)
    }

    fn varlong(&mut self) -> Result<i64, RecordFault> {
        let mut pos = self.pos;
        let value = read_varlong(&self.data[..self.end], &mut pos).map_err(varint_fault)?;
        self.pos = pos;
        Ok(value)
    }

    fn byte(&mut self) -> Result<u8, RecordFault> {
        let value = *self.data[..self.end]
            .get(self.pos)
            .ok_or(RecordFault::Truncated)?;
        self.pos += 1;
        Ok(value)
    }

    /// A range of `length` bytes, `length` being a non-negative wire length.
    fn take(&mut self, length: i32) -> Result<Range<usize>, RecordFault> {
        let length = usize::try_from(length).map_err(|_| RecordFault::NegativeLength { length })?;
        if length > self.end - self.pos {
            return Err(RecordFault::Truncated);
        }
        let range = self.pos..self.pos + length;
        self.pos += length;
        Ok(range)
    }

    /// A nullable byte string: length -1 is null, other negatives are invalid.
    fn nullable(&mut self) -> Result<Option<Range<usize>>, RecordFault> {
        match self.varint()? {
            -1 => Ok(None),
            length => self.take(length).map(Some),
        }
    }
}

fn varint_fault(error: VarintError) -> RecordFault {
    match error {
        // Running out of bytes mid-varint is a truncated record, like any other.
        VarintError::Truncated => RecordFault::Truncated,
        VarintError::Overlong => RecordFault::Varint(error),
    }
}

/// Parses the record at `data[pos..]`, returning it and the position after it.
/// `headers_budget` is decremented by the record's header count.
#[inline(always)]
fn parse_record(
    data: &[u8],
    pos: usize,
    headers_budget: &mut usize,
) -> Result<(RecordView, usize), RecordFault> {
    let mut outer = Cursor {
        data,
        pos,
        end: data.len(),
    };
    let body_bytes = outer.varint()?;
    let body = outer.take(body_bytes)?;
    let mut cursor = Cursor {
        data,
        pos: body.start,
        end: body.end,
    };
    let _attributes = cursor.byte()?;
    let timestamp_delta_ms = cursor.varlong()?;
    let offset_delta = cursor.varint()?;
    let key = cursor.nullable()?;
    let value = cursor.nullable()?;
    let headers_count = cursor.varint()?;
    let headers_count =
        usize::try_from(headers_count).map_err(|_| RecordFault::NegativeLength {
            length: headers_count,
        })?;
    // Each header takes at least two bytes, so a count the body cannot hold is refused
    // before it sizes an allocation.
    if headers_count > (cursor.end - cursor.pos) / 2 {
        return Err(RecordFault::Truncated);
    }
    if headers_count > *headers_budget {
        return Err(RecordFault::TooManyHeaders {
            max: RECORD_BATCH_HEADERS_MAX,
        });
    }
    *headers_budget -= headers_count;
    let mut headers = Vec::with_capacity(headers_count);
    for _ in 0..headers_count {
        let key_bytes = cursor.varint()?;
        let header_key = cursor.take(key_bytes)?;
        let header_value = cursor.nullable()?;
        headers.push((header_key, header_value));
    }
    if cursor.pos != body.end {
        return Err(RecordFault::LengthMismatch {
            declared_bytes: body.len(),
            actual_bytes: cursor.pos - body.start,
        });
    }
    let view = RecordView {
        offset_delta,
        timestamp_delta_ms,
        key,
        value,
        headers,
    };
    Ok((view, body.end))
}

/// Decompresses (bounded) the records section of a framed batch if needed, then walks
/// exactly `records_count` records through `visit`, checking that offset deltas increase
/// strictly within `0..=lastOffsetDelta` (which, with `lastOffsetDelta + 1 == count` as
/// clients must send, means exactly `0..count`), that timestamps do not overflow, and
/// that no bytes remain. Returns the (possibly decompressed) section.
pub(crate) fn walk_records(
    header: &RecordBatchHeader,
    section: &[u8],
    mut visit: impl FnMut(RecordView) -> Result<(), BatchError>,
) -> Result<Option<Vec<u8>>, BatchError> {
    let records_count = header.records_count;
    if records_count < 0 {
        return Err(BatchError::InvalidRecordCount { records_count });
    }
    if records_count > RECORD_BATCH_RECORDS_MAX {
        return Err(BatchError::TooManyRecords {
            records_count,
            max: RECORD_BATCH_RECORDS_MAX,
        });
    }
    let codec = header.compression()?;
    let decompressed = match codec {
        Compression::None => None,
        _ => Some(
            decompress(codec, section, RECORD_BATCH_DECOMPRESSED_BYTES_MAX)
                .map_err(BatchError::Decompression)?,
        ),
    };
    let data: &[u8] = decompressed.as_deref().unwrap_or(section);
    if (records_count as usize).saturating_mul(RECORD_BYTES_MIN) > data.len() {
        return Err(BatchError::RecordCountMismatch {
            declared: records_count,
            found: count_fitting(data),
        });
    }
    let mut pos = 0;
    let mut previous: i64 = -1;
    let mut headers_budget = RECORD_BATCH_HEADERS_MAX;
    for index in 0..records_count {
        if pos == data.len() {
            return Err(BatchError::RecordCountMismatch {
                declared: records_count,
                found: i64::from(index),
            });
        }
        let invalid = |fault| BatchError::InvalidRecord { index, fault };
        let (view, next) = parse_record(data, pos, &mut headers_budget).map_err(invalid)?;
        let offset_delta = i64::from(view.offset_delta);
        if offset_delta <= previous || view.offset_delta > header.last_offset_delta {
            return Err(invalid(RecordFault::OffsetDelta {
                offset_delta: view.offset_delta,
                previous,
                last_offset_delta: header.last_offset_delta,
            }));
        }
        if header
            .base_timestamp_ms
            .checked_add(view.timestamp_delta_ms)
            .is_none()
        {
            return Err(invalid(RecordFault::TimestampOverflow));
        }
        previous = offset_delta;
        pos = next;
        visit(view)?;
    }
    if pos != data.len() {
        return Err(BatchError::RecordCountMismatch {
            declared: records_count,
            found: i64::from(records_count) + count_fitting(&data[pos..]),
        });
    }
    Ok(decompressed)
}

/// How many well-formed records lie at the start of `data`, for error messages.
fn count_fitting(data: &[u8]) -> i64 {
    let mut pos = 0;
    let mut found = 0;
    let mut headers_budget = RECORD_BATCH_HEADERS_MAX;
    while pos < data.len() {
        match parse_record(data, pos, &mut headers_budget) {
            Ok((_, next)) => {
                pos = next;
                found += 1;
            }
            Err(_) => break,
        }
    }
    found
}

/// Decodes every record of `batch`, which must be exactly one v2 batch (framing and CRC
/// are checked; the client-only rules of `parse_batches` are not, so compacted batches
/// from a log decode too). Compressed sections are decompressed within
/// `RECORD_BATCH_DECOMPRESSED_BYTES_MAX`. Keys and values are slices of `batch` (or of
/// the decompressed buffer), never copies.
pub fn records(batch: &Bytes) -> Result<Vec<Record>, BatchError> {
    let header = frame_batch(batch)?;
    let size_bytes = header.size_bytes();
    if size_bytes != batch.len() as u64 {
        return Err(BatchError::NotOneBatch {
            len_bytes: batch.len() as u64,
            declared_bytes: size_bytes,
        });
    }
    let mut views = Vec::with_capacity(
        (header.records_count.clamp(0, RECORD_BATCH_RECORDS_MAX) as usize)
            .min((batch.len() - HEADER_BYTES) / RECORD_BYTES_MIN),
    );
    let decompressed = walk_records(&header, &batch[HEADER_BYTES..], |view| {
        views.push(view);
        Ok(())
    })?;
    let data = match decompressed {
        Some(bytes) => Bytes::from(bytes),
        None => batch.slice(HEADER_BYTES..),
    };
    let mut out = Vec::with_capacity(views.len());
    for (index, view) in views.into_iter().enumerate() {
        let mut headers = Vec::with_capacity(view.headers.len());
        for (key, value) in view.headers {
            let key = std::str::from_utf8(&data[key])
                .map_err(|_| BatchError::InvalidRecord {
                    index: index as i32,
                    fault: RecordFault::HeaderKeyNotUtf8,
                })?
                .to_owned();
            headers.push((key, value.map(|range| data.slice(range))));
        }
        out.push(Record {
            offset_delta: view.offset_delta,
            timestamp_delta_ms: view.timestamp_delta_ms,
            key: view.key.map(|range| data.slice(range)),
            value: view.value.map(|range| data.slice(range)),
            headers,
        });
    }
    Ok(out)
}
