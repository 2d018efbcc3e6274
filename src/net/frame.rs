//! Kafka-style length-prefixed frames: a 4-byte big-endian signed length, then that many
//! bytes of body (a request or response, header included).
//!
//! Owns: reading one frame from an `AsyncRead` and writing one to an `AsyncWrite`, and the
//! checks that make a frame safe to accept. Must never: allocate more than the peer has
//! actually sent (a claimed length is checked against the bound *before* any buffer is
//! sized from it, and the buffer then grows only as bytes arrive), panic on any byte
//! sequence, or leave written bytes unflushed (madsim sends nothing until `flush`).

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::base::limits::FRAME_BYTES_MAX;

/// Bytes of the length prefix.
pub const FRAME_PREFIX_BYTES: usize = 4;

/// First buffer size for a frame body; the buffer grows as bytes arrive, so a peer that
/// claims a large frame and sends little costs little memory.
const FRAME_READ_CHUNK_BYTES: usize = 64 * 1024;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The underlying stream failed.
    #[error("frame i/o failed: {0}")]
    Io(#[from] std::io::Error),
    /// The stream ended inside the 4-byte length prefix.
    #[error("stream ended after {read_bytes} of {FRAME_PREFIX_BYTES} length-prefix bytes")]
    TruncatedPrefix { read_bytes: usize },
    /// The stream ended inside a frame body.
    #[error("stream ended after {read_bytes} of {length_bytes} frame body bytes")]
    TruncatedBody { read_bytes: u64, length_bytes: u32 },
    /// The length prefix is negative (Kafka uses a signed int32).
    #[error("negative frame length {length}")]
    NegativeLength { length: i32 },
    /// The frame is larger than the caller's bound (or FRAME_BYTES_MAX).
    #[error("frame length {length_bytes} exceeds the bound of {max_bytes} bytes")]
    TooLarge { length_bytes: u64, max_bytes: u32 },
}

/// Reads one frame. Returns `Ok(None)` on a clean end of stream between frames, and an
/// error on an end of stream inside a frame, a negative length, or a length above
/// `max_bytes` (itself capped at `FRAME_BYTES_MAX`). The bound is checked before any
/// body byte is read or any buffer is sized from the claimed length.
///
/// Not cancel-safe: if the future is dropped midway, the stream is left mid-frame and
/// must be closed.
pub async fn read_frame<R>(reader: &mut R, max_bytes: u32) -> Result<Option<Bytes>, FrameError>
where
    R: AsyncRead + Unpin,
{
    let max_bytes = max_bytes.min(FRAME_BYTES_MAX);
    let mut prefix = [0u8; FRAME_PREFIX_BYTES];
    let mut prefix_read_bytes = 0;
    while prefix_read_bytes < FRAME_PREFIX_BYTES {
        let read_bytes = reader.read(&mut prefix[prefix_read_bytes..]).await?;
        if read_bytes == 0 {
            if prefix_read_bytes == 0 {
                return Ok(None);
            }
            return Err(FrameError::TruncatedPrefix {
                read_bytes: prefix_read_bytes,
            });
        }
        prefix_read_bytes += read_bytes;
    }
    let length = i32::from_be_bytes(prefix);
    let length_bytes = u32::try_from(length).map_err(|_| FrameError::NegativeLength { length })?;
    if length_bytes > max_bytes {
        return Err(FrameError::TooLarge {
            length_bytes: u64::from(length_bytes),
            max_bytes,
        });
    }
    // usize is at least 32 bits on every target this crate builds for.
    let length_usize = length_bytes as usize;
    let mut body = Vec::with_capacity(length_usize.min(FRAME_READ_CHUNK_BYTES));
    let read_bytes = reader
        .take(u64::from(length_bytes))
        .read_to_end(&mut body)
        .await?;
    if read_bytes != length_usize {
        return Err(FrameError::TruncatedBody {
            read_bytes: read_bytes as u64,
            length_bytes,
        });
    }
    Ok(Some(Bytes::from(body)))
}

/// Writes one frame (prefix and body) and flushes it. A body larger than
/// `FRAME_BYTES_MAX` is refused before anything is written.
///
/// Not cancel-safe: if the future is dropped midway, part of the frame may have been
/// written and the stream must be closed.
pub async fn write_frame<W>(writer: &mut W, body: &[u8]) -> Result<(), FrameError>
where
    W: AsyncWrite + Unpin,
{
    let prefix = frame_prefix(body.len())?;
    writer.write_all(&prefix).await?;
    writer.write_all(body).await?;
    writer.flush().await?;
    Ok(())
}

/// The length prefix for a body of `body_bytes`, or `TooLarge` above `FRAME_BYTES_MAX`.
pub fn frame_prefix(body_bytes: usize) -> Result<[u8; FRAME_PREFIX_BYTES], FrameError> {
    let too_large = || FrameError::TooLarge {
        length_bytes: body_bytes as u64,
        max_bytes: FRAME_BYTES_MAX,
    };
    let length_bytes = u32::try_from(body_bytes).map_err(|_| too_large())?;
    if length_bytes > FRAME_BYTES_MAX {
        return Err(too_large());
    }
    // FRAME_BYTES_MAX < i32::MAX, so the length is a valid non-negative i32.
    let length = i32::try_from(length_bytes).map_err(|_| too_large())?;
    Ok(length.to_be_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::Rng;

    async fn encode(bodies: &[&[u8]]) -> Vec<u8> {
        let mut wire = Vec::new();
        for body in bodies {
            write_frame(&mut wire, body).await.expect("write to a Vec");
        }
        wire
    }

    #[tokio::test]
    async fn frames_round_trip_and_clean_eof_is_none() {
        let wire = encode(&[b"hello", b"", &[7u8; 1000]]).await;
        assert_eq!(&wire[..4], &5i32.to_be_bytes());
        let mut reader = &wire[..];
        let first = read_frame(&mut reader, 2000).await.unwrap().unwrap();
        let second = read_frame(&mut reader, 2000).await.unwrap().unwrap();
        let third = read_frame(&mut reader, 2000).await.unwrap().unwrap();
        assert_eq!(&first[..], b"hello");
        assert!(second.is_empty());
        assert_eq!(&third[..], &[7u8; 1000][..]);
        assert!(read_frame(&mut reader, 2000).await.unwrap().is_none());
        assert!(read_frame(&mut reader, 2000).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn negative_length_is_an_error() {
        let wire = (-1i32).to_be_bytes();
        let result = read_frame(&mut &wire[..], 100).await;
        assert!(matches!(
            result,
            Err(FrameError::NegativeLength { length: -1 })
        ));
    }

    #[tokio::test]
    async fn too_large_is_refused_before_reading_the_body() {
        // Only the prefix is present: a bound check after reading would report truncation.
        let wire = 101i32.to_be_bytes();
        let result = read_frame(&mut &wire[..], 100).await;
        assert!(matches!(
            result,
            Err(FrameError::TooLarge {
                length_bytes: 101,
                max_bytes: 100
            })
        ));
        // The caller's bound is itself capped by FRAME_BYTES_MAX.
        let wire = i32::MAX.to_be_bytes();
        let result = read_frame(&mut &wire[..], u32::MAX).await;
        assert!(matches!(
            result,
            Err(FrameError::TooLarge {
                max_bytes: FRAME_BYTES_MAX,
                ..
            })
        ));
        // Exactly at the bound is fine.
        let wire = encode(&[&[1u8; 100]]).await;
        assert_eq!(
            read_frame(&mut &wire[..], 100)
                .await
                .unwrap()
                .unwrap()
                .len(),
            100
        );
    }

    #[tokio::test]
    async fn eof_mid_frame_is_an_error() {
        let wire = encode(&[b"abcdef"]).await;
        for cut in 1..FRAME_PREFIX_BYTES {
            let result = read_frame(&mut &wire[..cut], 100).await;
            assert!(
                matches!(result, Err(FrameError::TruncatedPrefix { read_bytes }) if read_bytes == cut),
                "cut={cut}"
            );
        }
        for cut in FRAME_PREFIX_BYTES..wire.len() {
            let result = read_frame(&mut &wire[..cut], 100).await;
            assert!(
                matches!(result, Err(FrameError::TruncatedBody { length_bytes: 6, read_bytes })
                    if read_bytes == (cut - FRAME_PREFIX_BYTES) as u64),
                "cut={cut}"
            );
        }
    }

    #[test]
    fn prefix_refuses_oversized_bodies_without_allocating_them() {
        assert_eq!(frame_prefix(0).unwrap(), [0, 0, 0, 0]);
        assert_eq!(
            frame_prefix(FRAME_BYTES_MAX as usize).unwrap(),
            (FRAME_BYTES_MAX as i32).to_be_bytes()
        );
        assert!(matches!(
            frame_prefix(FRAME_BYTES_MAX as usize + 1),
            Err(FrameError::TooLarge { .. })
        ));
        assert!(matches!(
            frame_prefix(usize::MAX),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[tokio::test]
    async fn garbage_never_panics() {
        let mut rng = Rng::with_seed(0x5eed);
        for _ in 0..2000 {
            let wire_bytes = rng.below(64) as usize;
            let mut wire = vec![0u8; wire_bytes];
            rng.fill(&mut wire);
            let mut reader = &wire[..];
            // At most one frame per prefix, so this loop ends within wire_bytes / 4 + 1 turns.
            for _ in 0..=wire_bytes / FRAME_PREFIX_BYTES {
                match read_frame(&mut reader, 32).await {
                    Ok(Some(body)) => assert!(body.len() <= 32),
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }
}
