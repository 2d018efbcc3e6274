//! Tests of `protocol::crc32c`: equality with the `crc32c` crate at every length up to
//! 2 KiB and every start alignment within a cache line, on random buffers up to 256 KiB,
//! and on published check values. Each comparison covers both `append` (the dispatch,
//! which in unoptimised builds is the crate) and the fast path alone at any length,
//! where the CPU has it.

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

/// `append(initial, data)` and the fast path alone, against the crate; the message
/// names the failing case.
fn check(initial: u32, data: &[u8], case: &str) {
    let expected = ::crc32c::crc32c_append(initial, data);
    assert_eq!(append(initial, data), expected, "{case}");
    if let Some(fast) = fast_path_append(initial, data) {
        assert_eq!(fast, expected, "fast path, {case}");
    }
}

#[test]
fn check_values() {
    for (data, expected) in [
        (&b""[..], 0),
        (&b"123456789"[..], 0xE306_9283),
        (&[0u8; 32][..], 0x8A91_36AA),
        (&[0xFFu8; 32][..], 0x62A8_AB43),
    ] {
        assert_eq!(crc32c(data), expected, "{data:?}");
        if let Some(fast) = fast_path_append(0, data) {
            assert_eq!(fast, expected, "fast path, {data:?}");
        }
    }
}

/// Long runs of one byte value, from the fast path's threshold to past 64 KiB.
#[test]
fn long_constant_buffers_match_the_crate() {
    for len in [FAST_MIN_BYTES, 1024, 4096, 65536, 65536 + 15] {
        for value in [0x00u8, 0xFF, 0x5A] {
            check(0, &vec![value; len], &format!("len {len} value {value:#x}"));
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
            check(0, data, &format!("offset {offset} len {len}"));
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
        check(0, data, "zero initial crc");
        check(initial, data, &format!("initial crc {initial:#x}"));
    }
}
