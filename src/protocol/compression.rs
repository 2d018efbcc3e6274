//! The four record-batch codecs Kafka defines (gzip, snappy, lz4, zstd), applied to the
//! records section of a v2 batch.
//!
//! Owns: compressing and bounded decompressing of in-memory buffers, in the exact framings
//! Kafka clients use: gzip members (possibly concatenated), snappy either xerial-framed
//! (Java client) or raw (librdkafka), the LZ4 frame format, and zstd frames. Never does
//! I/O (the `std::io` traits here only wrap slices) and never allocates more than the
//! caller's `max_bytes` plus one codec block, whatever the input claims.

use std::io::{Read, Write};

use crate::base::limits::ZSTD_WINDOW_LOG_MAX;

/// A batch's compression codec: attribute bits 0-2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    /// All codecs, in id order.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// The codec for attribute bits 0-2, or `None` for the unassigned ids 5-7.
    pub fn from_id(id: u8) -> Option<Compression> {
        match id {
            0 => Some(Compression::None),
            1 => Some(Compression::Gzip),
            2 => Some(Compression::Snappy),
            3 => Some(Compression::Lz4),
            4 => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// The id stored in attribute bits 0-2.
    pub fn id(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }
}

/// Why a buffer could not be compressed or decompressed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CompressionError {
    /// The output would exceed the caller's bound (a decompression bomb, or a batch simply
    /// larger than the broker accepts).
    #[error("decompressed data exceeds {max_bytes} bytes")]
    TooLarge { max_bytes: usize },
    /// The compressed data is malformed for its codec.
    #[error("{codec:?} data is corrupt: {detail}")]
    Corrupt { codec: Compression, detail: String },
}

/// The xerial snappy-java stream header: magic, then version and min-compatible version.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_HEADER_BYTES: usize = 16;
const XERIAL_VERSION: i32 = 1;
/// snappy-java's default block size; each block is compressed independently.
const XERIAL_BLOCK_BYTES: usize = 32 * 1024;

fn corrupt(codec: Compression, detail: impl ToString) -> CompressionError {
    CompressionError::Corrupt {
        codec,
        detail: detail.to_string(),
    }
}

/// Compresses `input` with `codec` in the framing Kafka's Java client writes.
pub fn compress(codec: Compression, input: &[u8]) -> Result<Vec<u8>, CompressionError> {
    match codec {
        Compression::None => Ok(input.to_vec()),
        Compression::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(input).map_err(|e| corrupt(codec, e))?;
            encoder.finish().map_err(|e| corrupt(codec, e))
        }
        Compression::Snappy => compress_xerial_snappy(input),
        Compression::Lz4 => {
            let info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max64KB)
                .block_mode(lz4_flex::frame::BlockMode::Independent);
            let mut encoder = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
            encoder.write_all(input).map_err(|e| corrupt(codec, e))?;
            encoder.finish().map_err(|e| corrupt(codec, e))
        }
        // Level 3 is zstd's and Kafka's default.
        Compression::Zstd => zstd::stream::encode_all(input, 3).map_err(|e| corrupt(codec, e)),
    }
}

fn compress_xerial_snappy(input: &[u8]) -> Result<Vec<u8>, CompressionError> {
    let codec = Compression::Snappy;
    let mut out = Vec::with_capacity(XERIAL_HEADER_BYTES + input.len() / 2);
    out.extend_from_slice(&XERIAL_MAGIC);
    out.extend_from_slice(&XERIAL_VERSION.to_be_bytes());
    out.extend_from_slice(&XERIAL_VERSION.to_be_bytes());
    let mut encoder = snap::raw::Encoder::new();
    for block in input.chunks(XERIAL_BLOCK_BYTES) {
        let compressed = encoder.compress_vec(block).map_err(|e| corrupt(codec, e))?;
        let len = i32::try_from(compressed.len()).map_err(|e| corrupt(codec, e))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&compressed);
    }
    Ok(out)
}

/// Decompresses `input`, failing with `TooLarge` rather than producing more than
/// `max_bytes` bytes.
pub fn decompress(
    codec: Compression,
    input: &[u8],
    max_bytes: usize,
) -> Result<Vec<u8>, CompressionError> {
    match codec {
        Compression::None => {
            if input.len() > max_bytes {
                return Err(CompressionError::TooLarge { max_bytes });
            }
            Ok(input.to_vec())
        }
        // Java's GZIPInputStream reads concatenated members, so accept them too.
        Compression::Gzip => {
            read_bounded(codec, flate2::read::MultiGzDecoder::new(input), max_bytes)
        }
        Compression::Snappy => {
            if input.starts_with(&XERIAL_MAGIC) {
                decompress_xerial_snappy(input, max_bytes)
            } else {
                // A raw snappy stream starts with a length varint then a literal, so it can
                // never begin with the xerial magic: the two are told apart unambiguously.
                decompress_raw_snappy(input, max_bytes, 0)
            }
        }
        Compression::Lz4 => {
            read_bounded(codec, lz4_flex::frame::FrameDecoder::new(input), max_bytes)
        }
        Compression::Zstd => {
            let mut decoder =
                zstd::stream::read::Decoder::new(input).map_err(|e| corrupt(codec, e))?;
            // A frame may demand a window as large as 2 GiB; cap what the decoder allocates.
            decoder
                .window_log_max(ZSTD_WINDOW_LOG_MAX)
                .map_err(|e| corrupt(codec, e))?;
            read_bounded(codec, decoder, max_bytes)
        }
    }
}

fn read_bounded(
    codec: Compression,
    reader: impl Read,
    max_bytes: usize,
) -> Result<Vec<u8>, CompressionError> {
    let mut out = Vec::new();
    let limit = (max_bytes as u64).saturating_add(1);
    reader
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| corrupt(codec, e))?;
    if out.len() > max_bytes {
        return Err(CompressionError::TooLarge { max_bytes });
    }
    Ok(out)
}

/// Decompresses one raw snappy block, given `already_bytes` of output produced before it.
fn decompress_raw_snappy(
    input: &[u8],
    max_bytes: usize,
    already_bytes: usize,
) -> Result<Vec<u8>, CompressionError> {
    let codec = Compression::Snappy;
    // The declared length is checked before any allocation.
    let len = snap::raw::decompress_len(input).map_err(|e| corrupt(codec, e))?;
    if len > max_bytes.saturating_sub(already_bytes) {
        return Err(CompressionError::TooLarge { max_bytes });
    }
    let mut out = vec![0u8; len];
    let written = snap::raw::Decoder::new()
        .decompress(input, &mut out)
        .map_err(|e| corrupt(codec, e))?;
    out.truncate(written);
    Ok(out)
}

fn decompress_xerial_snappy(input: &[u8], max_bytes: usize) -> Result<Vec<u8>, CompressionError> {
    let codec = Compression::Snappy;
    let mut pos = XERIAL_HEADER_BYTES;
    if input.len() < pos {
        return Err(corrupt(codec, "xerial header truncated"));
    }
    let mut out = Vec::new();
    while pos < input.len() {
        let len_bytes: [u8; 4] = input
            .get(pos..pos + 4)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| corrupt(codec, "xerial block length truncated"))?;
        pos += 4;
        let len = usize::try_from(i32::from_be_bytes(len_bytes))
            .map_err(|_| corrupt(codec, "negative xerial block length"))?;
        let block = input
            .get(pos..pos.saturating_add(len))
            .ok_or_else(|| corrupt(codec, "xerial block truncated"))?;
        pos += len;
        let decoded = decompress_raw_snappy(block, max_bytes, out.len())?;
        out.extend_from_slice(&decoded);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        (0..100_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect()
    }

    #[test]
    fn every_codec_round_trips() {
        let input = sample();
        for codec in Compression::ALL {
            let packed = compress(codec, &input).expect("compress");
            let unpacked = decompress(codec, &packed, input.len()).expect("decompress");
            assert_eq!(unpacked, input, "{codec:?}");
            assert_eq!(
                decompress(codec, &packed, input.len() - 1),
                Err(CompressionError::TooLarge {
                    max_bytes: input.len() - 1
                }),
                "{codec:?} must respect the bound"
            );
        }
    }

    #[test]
    fn raw_snappy_as_librdkafka_writes_it_is_accepted() {
        let input = sample();
        let raw = snap::raw::Encoder::new()
            .compress_vec(&input)
            .expect("compress");
        assert_eq!(
            decompress(Compression::Snappy, &raw, input.len()),
            Ok(input)
        );
    }

    #[test]
    fn garbage_is_an_error_for_every_codec() {
        // For raw snappy: length 4, then a copy before any literal.
        let garbage = [0x04, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02];
        for codec in Compression::ALL {
            if codec == Compression::None {
                continue;
            }
            assert!(
                matches!(
                    decompress(codec, &garbage, 1 << 20),
                    Err(CompressionError::Corrupt { .. })
                ),
                "{codec:?}"
            );
        }
        let mut xerial = XERIAL_MAGIC.to_vec();
        xerial.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]);
        assert!(matches!(
            decompress(Compression::Snappy, &xerial, 1 << 20),
            Err(CompressionError::Corrupt { .. })
        ));
    }

    #[test]
    fn bombs_are_bounded() {
        // 64 MiB of zeros compresses to a few KiB in every codec.
        let zeros = vec![0u8; 64 << 20];
        for codec in Compression::ALL {
            let packed = compress(codec, &zeros).expect("compress");
            assert_eq!(
                decompress(codec, &packed, 1 << 20),
                Err(CompressionError::TooLarge { max_bytes: 1 << 20 }),
                "{codec:?}"
            );
        }
        // A raw snappy header that claims 4 GiB is refused before allocating.
        let claim = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
        assert!(decompress(Compression::Snappy, &claim, 1 << 20).is_err());
    }
}
