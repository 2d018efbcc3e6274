//! CRC-32C (Castagnoli), the checksum of a RecordBatch, with a fast path for long inputs.
//!
//! Results are bit-for-bit those of the `crc32c` crate, which this module falls back to
//! for short inputs, CPUs without the needed instructions, other architectures and
//! unoptimised builds. On x86-64 with AVX-512 and VPCLMULQDQ, inputs of at least `FAST_MIN_BYTES` are folded 64
//! bytes per carry-less multiply pair (four 512-bit accumulators in flight), reduced to
//! 128 bits, and finished with the SSE4.2 `crc32` instruction.
//!
//! The folding, in the bit-reflected form the CRC uses (the first byte's lowest bit is
//! the message polynomial's highest coefficient): a 128-bit accumulator `X = H·x^64 + L`
//! that must be carried `D` bits further down the message is replaced by
//! `H·(x^(D+64) mod P) + L·(x^D mod P)`, a polynomial of degree below 96 that is
//! congruent modulo P and so can be XORed into the 128 bits that sit there. With
//! reflected operands a carry-less product comes out multiplied by one extra `x`, so the
//! constants are taken one power lower: `x^(D+63) mod P` and `x^(D-1) mod P`.

/// Inputs shorter than this go to the `crc32c` crate. The fast path needs one whole
/// 64-byte block, and from there on it was the faster in `benches/log.rs` (group
/// `crc32c`, Xeon with AVX-512): 5.0 against 6.1 ns at 64 bytes, 5.4 against 7.5 ns at
/// 128, 14 against 46 ns at 1 KiB.
pub const FAST_MIN_BYTES: usize = 64;

/// Whether `append` takes the fast path at all: not in unoptimised builds (the `skald`
/// crate stays at opt-level 0 in tests and simulations), where the intrinsics are calls,
/// not instructions, and the fast path ran 25 times slower than the crate (1.5 µs against
/// 57 ns for 1 KiB). Tests there still run it, through `fast_path_append`.
const FAST_PATH_IN_THIS_BUILD: bool = !cfg!(debug_assertions);

/// CRC-32C of `data`: equal to `crc32c::crc32c(data)` for every input.
pub fn crc32c(data: &[u8]) -> u32 {
    append(0, data)
}

/// The CRC-32C of the concatenation of the bytes `crc` was computed over and `data`:
/// equal to `crc32c::crc32c_append(crc, data)` for every input.
pub fn append(crc: u32, data: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    if FAST_PATH_IN_THIS_BUILD && data.len() >= FAST_MIN_BYTES && x86::fast_path_available() {
        // SAFETY: `fast_path_available` checked at run time that the CPU has every
        // feature `x86::append` is compiled with.
        return unsafe { x86::append(crc, data) };
    }
    ::crc32c::crc32c_append(crc, data)
}

/// The fast path alone, whatever the input's length, for tests: `None` where the CPU
/// lacks it.
#[cfg(test)]
pub(super) fn fast_path_append(crc: u32, data: &[u8]) -> Option<u32> {
    #[cfg(target_arch = "x86_64")]
    if x86::fast_path_available() {
        // SAFETY: as in `append`.
        return Some(unsafe { x86::append(crc, data) });
    }
    let _ = (crc, data);
    None
}

/// The CRC-32C generator polynomial without its `x^32` term (normal bit order: bit `i`
/// is the coefficient of `x^i`).
const POLY: u32 = 0x1EDC_6F41;

/// `x^n mod P` in normal bit order, by `n` multiply-by-`x` steps (compile time only).
const fn x_pow_mod_p(n: u32) -> u32 {
    let mut remainder: u32 = 1;
    let mut i = 0;
    while i < n {
        let overflow = remainder & 0x8000_0000 != 0;
        remainder <<= 1;
        if overflow {
            remainder ^= POLY;
        }
        i += 1;
    }
    remainder
}

/// `x^n mod P` as a 64-bit carry-less multiplication operand in reflected bit order
/// (bit `j` is the coefficient of `x^(63-j)`).
const fn reflected_x_pow(n: u32) -> u64 {
    (x_pow_mod_p(n) as u64).reverse_bits()
}

/// The pair of constants that carry a 128-bit accumulator `distance_bits` further down
/// the message: `(x^(D+63) mod P, x^(D-1) mod P)`, for its low (higher-degree) and high
/// (lower-degree) 64-bit halves. See the module comment for the `-1`.
const fn fold_constants(distance_bits: u32) -> (u64, u64) {
    (
        reflected_x_pow(distance_bits + 63),
        reflected_x_pow(distance_bits - 1),
    )
}

/// Across one 256-byte stride: each of the four accumulators to its next block.
const FOLD_2048_BITS: (u64, u64) = fold_constants(2048);
/// Accumulator 0 onto accumulator 3 (192 bytes apart).
const FOLD_1536_BITS: (u64, u64) = fold_constants(1536);
/// Accumulator 1 onto accumulator 3 (128 bytes apart).
const FOLD_1024_BITS: (u64, u64) = fold_constants(1024);
/// One 64-byte block to the next (and accumulator 2 onto accumulator 3).
const FOLD_512_BITS: (u64, u64) = fold_constants(512);
/// 128-bit lane 0 onto lane 3 of a 512-bit accumulator (48 bytes apart).
const FOLD_384_BITS: (u64, u64) = fold_constants(384);
/// Lane 1 onto lane 3 (32 bytes apart).
const FOLD_256_BITS: (u64, u64) = fold_constants(256);
/// Lane 2 onto lane 3, and one 16-byte block to the next.
const FOLD_128_BITS: (u64, u64) = fold_constants(128);

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{
        __m128i, __m512i, _mm512_broadcast_i32x4, _mm512_clmulepi64_epi128,
        _mm512_extracti32x4_epi32, _mm512_inserti32x4, _mm512_loadu_si512, _mm512_set_epi64,
        _mm512_setzero_si512, _mm512_ternarylogic_epi64, _mm512_xor_si512, _mm_clmulepi64_si128,
        _mm_crc32_u64, _mm_crc32_u8, _mm_cvtsi128_si64, _mm_cvtsi32_si128, _mm_extract_epi64,
        _mm_loadu_si128, _mm_set_epi64x, _mm_ternarylogic_epi64, _mm_xor_si128,
    };

    use super::{
        FOLD_1024_BITS, FOLD_128_BITS, FOLD_1536_BITS, FOLD_2048_BITS, FOLD_256_BITS,
        FOLD_384_BITS, FOLD_512_BITS,
    };

    /// `_mm*_ternarylogic_epi64` truth table for `a ^ b ^ c`.
    const XOR3: i32 = 0x96;

    /// Whether the CPU has every feature `append` is compiled with.
    pub(super) fn fast_path_available() -> bool {
        is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("vpclmulqdq")
            && is_x86_feature_detected!("pclmulqdq")
            && is_x86_feature_detected!("sse4.2")
    }

    /// A constant pair in the layout the folds expect: the low-half constant in each
    /// lane's low 64 bits.
    #[target_feature(enable = "avx512f,avx512vl,vpclmulqdq,pclmulqdq,sse4.2")]
    fn constants_128((low_half, high_half): (u64, u64)) -> __m128i {
        _mm_set_epi64x(high_half as i64, low_half as i64)
    }

    /// The same pair in all four 128-bit lanes.
    #[target_feature(enable = "avx512f,avx512vl,vpclmulqdq,pclmulqdq,sse4.2")]
    fn constants_512(pair: (u64, u64)) -> __m512i {
        _mm512_broadcast_i32x4(constants_128(pair))
    }

    /// Each 128-bit lane of `acc` carried forward by the distance `constants` encode,
    /// XORed with `next` (the lanes that sit there).
    #[target_feature(enable = "avx512f,avx512vl,vpclmulqdq,pclmulqdq,sse4.2")]
    fn fold_512(acc: __m512i, constants: __m512i, next: __m512i) -> __m512i {
        let from_low_half = _mm512_clmulepi64_epi128::<0x00>(acc, constants);
        let from_high_half = _mm512_clmulepi64_epi128::<0x11>(acc, constants);
        _mm512_ternarylogic_epi64::<XOR3>(from_low_half, from_high_half, next)
    }

    /// `fold_512` for a single 128-bit accumulator.
    #[target_feature(enable = "avx512f,avx512vl,vpclmulqdq,pclmulqdq,sse4.2")]
    fn fold_128(acc: __m128i, constants: __m128i, next: __m128i) -> __m128i {
        let from_low_half = _mm_clmulepi64_si128::<0x00>(acc, constants);
        let from_high_half = _mm_clmulepi64_si128::<0x11>(acc, constants);
        _mm_ternarylogic_epi64::<XOR3>(from_low_half, from_high_half, next)
    }

    #[target_feature(enable = "avx512f,avx512vl,vpclmulqdq,pclmulqdq,sse4.2")]
    fn load_64(block: &[u8; 64]) -> __m512i {
        // SAFETY: `block` is 64 readable bytes; the load has no alignment requirement.
        unsafe { _mm512_loadu_si512(block.as_ptr().cast()) }
    }

    #[target_feature(enable = "avx512f,avx512vl,vpclmulqdq,pclmulqdq,sse4.2")]
    fn load_16(block: &[u8; 16]) -> __m128i {
        // SAFETY: `block` is 16 readable bytes; the load has no alignment requirement.
        unsafe { _mm_loadu_si128(block.as_ptr().cast()) }
    }

    /// `super::append` for CPUs with AVX-512F/VL, VPCLMULQDQ, PCLMULQDQ and SSE4.2.
    /// Correct for any length; `super::append` sends it inputs of one 64-byte block or more.
    #[target_feature(enable = "avx512f,avx512vl,vpclmulqdq,pclmulqdq,sse4.2")]
    pub(super) fn append(crc: u32, data: &[u8]) -> u32 {
        // The CRC register before `data`; it is XORed into the first four bytes.
        let register = !crc;
        let initial =
            _mm512_inserti32x4::<0>(_mm512_setzero_si512(), _mm_cvtsi32_si128(register as i32));

        let (blocks, rest) = data.as_chunks::<64>();

        // Four accumulators, each covering one 64-byte block of every 256-byte stride.
        let (strides, blocks) = blocks.as_chunks::<4>();
        let mut acc512 = match strides.split_first() {
            None => None,
            Some(([b0, b1, b2, b3], strides)) => {
                let mut acc = [
                    _mm512_xor_si512(load_64(b0), initial),
                    load_64(b1),
                    load_64(b2),
                    load_64(b3),
                ];
                let stride_constants = constants_512(FOLD_2048_BITS);
                for stride in strides {
                    for (acc, block) in acc.iter_mut().zip(stride) {
                        *acc = fold_512(*acc, stride_constants, load_64(block));
                    }
                }
                let [a0, a1, a2, a3] = acc;
                let a3 = fold_512(a2, constants_512(FOLD_512_BITS), a3);
                let a3 = fold_512(a1, constants_512(FOLD_1024_BITS), a3);
                Some(fold_512(a0, constants_512(FOLD_1536_BITS), a3))
            }
        };

        // Then one accumulator, 64 bytes at a time.
        let block_constants = constants_512(FOLD_512_BITS);
        for block in blocks {
            acc512 = Some(match acc512 {
                None => _mm512_xor_si512(load_64(block), initial),
                Some(acc) => fold_512(acc, block_constants, load_64(block)),
            });
        }
        // Shorter than one block: not worth it.
        let Some(acc512) = acc512 else {
            return ::crc32c::crc32c_append(crc, data);
        };

        // Its four 128-bit lanes onto the last one: lanes 0-2 by 48, 32 and 16 bytes
        // (lane 3's constants are zero, dropping it from the products).
        let lane_constants = _mm512_set_epi64(
            0,
            0,
            FOLD_128_BITS.1 as i64,
            FOLD_128_BITS.0 as i64,
            FOLD_256_BITS.1 as i64,
            FOLD_256_BITS.0 as i64,
            FOLD_384_BITS.1 as i64,
            FOLD_384_BITS.0 as i64,
        );
        let products = fold_512(acc512, lane_constants, _mm512_setzero_si512());
        let mut acc = _mm_ternarylogic_epi64::<XOR3>(
            _mm512_extracti32x4_epi32::<0>(products),
            _mm512_extracti32x4_epi32::<1>(products),
            _mm512_extracti32x4_epi32::<2>(products),
        );
        acc = _mm_xor_si128(acc, _mm512_extracti32x4_epi32::<3>(acc512));

        // Then 16 bytes at a time.
        let (blocks, tail) = rest.as_chunks::<16>();
        let block_constants = constants_128(FOLD_128_BITS);
        for block in blocks {
            acc = fold_128(acc, block_constants, load_16(block));
        }

        // The accumulator is congruent to everything so far, sitting in the last 16 bytes
        // before `tail`, with the initial register already applied: its CRC from a zero
        // register is the register at that point.
        let low = _mm_cvtsi128_si64(acc) as u64;
        let high = _mm_extract_epi64::<1>(acc) as u64;
        let mut register = _mm_crc32_u64(_mm_crc32_u64(0, low), high) as u32;
        let (words, bytes) = tail.as_chunks::<8>();
        for word in words {
            register = _mm_crc32_u64(u64::from(register), u64::from_le_bytes(*word)) as u32;
        }
        for &byte in bytes {
            register = _mm_crc32_u8(register, byte);
        }
        !register
    }
}
