//! Choosing a partition for a keyed record, exactly as the Java client does
//! (`Utils.toPositive(Utils.murmur2(key)) % numPartitions`), so that records with the
//! same key land on the same partition whichever client produced them.
//!
//! Owns: murmur2 (Kafka's variant, seed 0x9747b28c) and the keyed partition choice.
//! Pure computation; never randomness (keyless records are spread by the producer's
//! deterministic sticky round robin, not here).

/// Kafka's murmur2 hash of `data` (the 32-bit MurmurHash2 with seed 0x9747b28c), as a
/// Java `int`.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    // Java computes `seed ^ length` on ints; a key longer than 2^31 bytes cannot exist
    // there, and the truncation below matches it for every length that can.
    let length = data.len();
    let mut h: u32 = SEED ^ (length as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Java's `Utils.toPositive`: clears the sign bit (not `abs`, which overflows).
pub fn to_positive(value: i32) -> i32 {
    value & 0x7fff_ffff
}

/// The partition of a keyed record among `partition_count` partitions.
/// `partition_count` must be positive.
pub fn partition_for_key(key: &[u8], partition_count: usize) -> i32 {
    assert!(partition_count > 0, "a topic has at least one partition");
    let count = i64::try_from(partition_count).unwrap_or(i64::MAX);
    // The result is below partition_count, itself at most i32::MAX in Kafka.
    (i64::from(to_positive(murmur2(key))) % count) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values of Kafka's own `UtilsTest.testMurmur2`.
    #[test]
    fn murmur2_matches_the_java_client() {
        let cases: &[(&[u8], i32)] = &[
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (key, expected) in cases {
            assert_eq!(
                murmur2(key),
                *expected,
                "murmur2({:?})",
                String::from_utf8_lossy(key)
            );
        }
    }

    #[test]
    fn partitions_are_in_range_and_stable() {
        for partition_count in 1..40usize {
            for i in 0..200u32 {
                let key = format!("key-{i}");
                let partition = partition_for_key(key.as_bytes(), partition_count);
                assert!((0..partition_count as i32).contains(&partition));
                assert_eq!(
                    partition,
                    partition_for_key(key.as_bytes(), partition_count)
                );
            }
        }
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(-1), i32::MAX);
        // Every tail length (0..=3 bytes after the 4-byte chunks) is exercised.
        for length in 0..9 {
            let key = vec![0xabu8; length];
            let _ = murmur2(&key);
        }
        // Keys spread: 1000 keys over 10 partitions touch every partition.
        let mut seen = [false; 10];
        for i in 0..1000 {
            seen[partition_for_key(format!("{i}").as_bytes(), 10) as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }
}
