//! Kafka's zig-zag variable-length integers (protobuf style): `varint` for i32 (at most 5
//! bytes) and `varlong` for i64 (at most 10 bytes), as used inside v2 records.
//!
//! Owns: total decoding with a cursor, and encoding. Never panics on input and never
//! accepts an encoding longer than the type allows or with bits beyond the type's width.

/// Why a varint could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VarintError {
    /// The input ended in the middle of the varint.
    #[error("varint truncated")]
    Truncated,
    /// More bytes than the type allows, or bits set beyond the type's width.
    #[error("varint too long or out of range")]
    Overlong,
}

/// Longest encoding of a zig-zag i32.
pub const VARINT_BYTES_MAX: usize = 5;
/// Longest encoding of a zig-zag i64.
pub const VARLONG_BYTES_MAX: usize = 10;

/// Reads an unsigned LEB128 of at most `bytes_max` bytes whose value fits in `bits` bits.
fn read_unsigned(
    buf: &[u8],
    pos: &mut usize,
    bytes_max: usize,
    bits: u32,
) -> Result<u64, VarintError> {
    let mut value: u64 = 0;
    for index in 0..bytes_max {
        let byte = *buf.get(*pos + index).ok_or(VarintError::Truncated)?;
        let shift = 7 * index as u32;
        let payload = u64::from(byte & 0x7f);
        // Bits that would land at or above `bits` make the value out of range.
        if shift + 7 > bits && (payload >> (bits - shift)) != 0 {
            return Err(VarintError::Overlong);
        }
        value |= payload << shift;
        if byte & 0x80 == 0 {
            *pos += index + 1;
            return Ok(value);
        }
    }
    Err(VarintError::Overlong)
}

/// Decodes a zig-zag varint (i32) at `*pos`, advancing `*pos` past it on success.
pub fn read_varint(buf: &[u8], pos: &mut usize) -> Result<i32, VarintError> {
    let raw = read_unsigned(buf, pos, VARINT_BYTES_MAX, 32)? as u32;
    Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
}

/// Decodes a zig-zag varlong (i64) at `*pos`, advancing `*pos` past it on success.
pub fn read_varlong(buf: &[u8], pos: &mut usize) -> Result<i64, VarintError> {
    let raw = read_unsigned(buf, pos, VARLONG_BYTES_MAX, 64)?;
    Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

fn write_unsigned(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends `value` as a zig-zag varint.
pub fn write_varint(out: &mut Vec<u8>, value: i32) {
    write_unsigned(out, u64::from(((value << 1) ^ (value >> 31)) as u32));
}

/// Appends `value` as a zig-zag varlong.
pub fn write_varlong(out: &mut Vec<u8>, value: i64) {
    write_unsigned(out, ((value << 1) ^ (value >> 63)) as u64);
}

/// Bytes `write_varint(value)` appends.
pub fn varint_len_bytes(value: i32) -> usize {
    let mut out = Vec::with_capacity(VARINT_BYTES_MAX);
    write_varint(&mut out, value);
    out.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_encodings() {
        let cases: &[(i32, &[u8])] = &[
            (0, &[0x00]),
            (-1, &[0x01]),
            (1, &[0x02]),
            (63, &[0x7e]),
            (-64, &[0x7f]),
            (64, &[0x80, 0x01]),
            (i32::MAX, &[0xfe, 0xff, 0xff, 0xff, 0x0f]),
            (i32::MIN, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
        ];
        for (value, bytes) in cases {
            let mut out = Vec::new();
            write_varint(&mut out, *value);
            assert_eq!(&out[..], *bytes, "encoding of {value}");
            let mut pos = 0;
            assert_eq!(read_varint(bytes, &mut pos), Ok(*value));
            assert_eq!(pos, bytes.len());
        }
    }

    #[test]
    fn rejects_overlong_and_out_of_range() {
        // Six bytes: longer than any i32.
        let mut pos = 0;
        let six = [0x80, 0x80, 0x80, 0x80, 0x80, 0x00];
        assert_eq!(read_varint(&six, &mut pos), Err(VarintError::Overlong));
        // Five bytes with bits beyond 32.
        let wide = [0xff, 0xff, 0xff, 0xff, 0x1f];
        assert_eq!(read_varint(&wide, &mut pos), Err(VarintError::Overlong));
        // Eleven-byte varlong.
        let eleven = [0x80u8; 11];
        assert_eq!(read_varlong(&eleven, &mut pos), Err(VarintError::Overlong));
        // Tenth byte of a varlong may only carry one bit.
        let mut ten = [0xffu8; 10];
        ten[9] = 0x02;
        assert_eq!(read_varlong(&ten, &mut pos), Err(VarintError::Overlong));
        assert_eq!(pos, 0, "a failed read must not advance the cursor");
        assert_eq!(read_varint(&[0x80], &mut pos), Err(VarintError::Truncated));
        assert_eq!(read_varint(&[], &mut pos), Err(VarintError::Truncated));
    }

    proptest! {
        #[test]
        fn varint_round_trips(value in any::<i32>()) {
            let mut out = Vec::new();
            write_varint(&mut out, value);
            prop_assert_eq!(out.len(), varint_len_bytes(value));
            let mut pos = 0;
            prop_assert_eq!(read_varint(&out, &mut pos), Ok(value));
            prop_assert_eq!(pos, out.len());
        }

        #[test]
        fn varlong_round_trips(value in any::<i64>()) {
            let mut out = Vec::new();
            write_varlong(&mut out, value);
            let mut pos = 0;
            prop_assert_eq!(read_varlong(&out, &mut pos), Ok(value));
            prop_assert_eq!(pos, out.len());
        }

        #[test]
        fn varint_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..12)) {
            let mut pos = 0;
            let _ = read_varint(&bytes, &mut pos);
            let _ = read_varlong(&bytes, &mut pos);
        }
    }
}
