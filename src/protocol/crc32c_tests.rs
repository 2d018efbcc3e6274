//! Tests of `protocol::crc32c`: equality with the `crc32c` crate at every length up to
//! 2 KiB and every start alignment within a cache line, on random buffers up to 256 KiB,
//! and on published check values; the fast path also alone, below its threshold.

use proptest::prelude::*;

use crate::protocol::crc32c::{append, crc32c, fast_path_append, FAST_MIN_BYTES};

/// Deterministic bytes with no short period (xorshift64*).
fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

#[test]
fn check_values() {
    assert_eq!(crc32c(b""), 0);
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
    assert_eq!(crc32c(&[0xFFu8; 32]), 0x62A8_AB43);
}

/// Long runs of one byte value, where the fast path runs, against the crate.
#[test]
fn long_constant_buffers_match_the_crate() {
    for len in [FAST_MIN_BYTES, 1024, 4096, 65536, 65536 + 15] {
        for value in [0x00u8, 0xFF, 0x5A] {
            let data = vec![value; len];
            assert_eq!(
                crc32c(&data),
                ::crc32c::crc32c(&data),
                "len {len} value {value:#x}"
            );
        }
    }
}

#[test]
fn every_length_and_alignment_matches_the_crate() {
    const MAX_LEN: usize = 2048;
    const ALIGNMENTS: usize = 64;
    let buffer = pseudo_random_bytes(MAX_LEN + ALIGNMENTS, 0x5eed);
    for offset in 0..ALIGNMENTS {
        for len in 0..=MAX_LEN {
            let data = &buffer[offset..offset + len];
            let expected = ::crc32c::crc32c(data);
            assert_eq!(crc32c(data), expected, "offset {offset} len {len}");
            if let Some(fast) = fast_path_append(0, data) {
                assert_eq!(fast, expected, "fast path, offset {offset} len {len}");
            }
        }
    }
}

#[test]
fn appending_continues_a_crc() {
    let buffer = pseudo_random_bytes(4096, 7);
    for split in [0, 1, 3, 16, 63, 64, 255, 256, 1000, 4095, 4096] {
        let (head, rest) = buffer.split_at(split);
        assert_eq!(append(crc32c(head), rest), crc32c(&buffer), "split {split}");
        if let Some(fast) = fast_path_append(crc32c(head), rest) {
            assert_eq!(fast, crc32c(&buffer), "fast path, split {split}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_buffers_match_the_crate(
        data in proptest::collection::vec(any::<u8>(), 0..=256 * 1024),
        offset in 0usize..64,
        initial in any::<u32>(),
    ) {
        let data = data.get(offset..).unwrap_or_default();
        prop_assert_eq!(crc32c(data), ::crc32c::crc32c(data));
        prop_assert_eq!(append(initial, data), ::crc32c::crc32c_append(initial, data));
    }
}
