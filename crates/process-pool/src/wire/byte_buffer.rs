//! Byte buffers as whole arguments and results: `Vec<u8>` and
//! `serde_bytes::ByteBuf`, the commonest big payloads, skip serde.
//!
//! Both encode, in postcard, as the length (a varint) and then the bytes
//! as they are (`Vec<u8>` as a sequence of `u8`, which postcard writes one
//! byte each; `ByteBuf` as one block): the same wire bytes. Through serde
//! they cost more than that. A `Vec<u8>` goes element by element (a call
//! per byte each way), and the worker reads an argument into its scratch
//! buffer, then the decoder copies it out (16 MiB: a 16 MiB `memcpy`).
//!
//! So when the type of an argument or a result *is* one of these two (a
//! `TypeId` check, the same decision at both ends of the pipe: both run
//! the same monomorphised code), the codec moves the bytes itself:
//!
//! * encoding appends the varint and the bytes in one copy;
//! * the worker reads the argument's bytes straight from the pipe into
//!   the vector the task gets (`ArgReader::read_vec`): no scratch buffer,
//!   no copy;
//! * the worker writes a result from the vector's own memory to the pipe
//!   in one write (`ResultWriter::value`): no size pass, no buffer;
//! * decoding checks the length against the bytes there are and copies
//!   once.
//!
//! The wire format does not change: every other type still decodes these
//! bytes, and a length prefix longer than the bytes is an error, never an
//! allocation.

use std::any::{Any, TypeId};

/// Whether `T` is one of the byte buffers this module moves by hand.
pub(crate) fn is_byte_buffer<T: ?Sized + 'static>() -> bool {
    let t = TypeId::of::<T>();
    t == TypeId::of::<Vec<u8>>() || t == TypeId::of::<serde_bytes::ByteBuf>()
}

/// The bytes of `value`, if it is a byte buffer.
pub(crate) fn as_bytes<T: 'static>(value: &T) -> Option<&[u8]> {
    let value: &dyn Any = value;
    if let Some(v) = value.downcast_ref::<Vec<u8>>() {
        return Some(v);
    }
    value
        .downcast_ref::<serde_bytes::ByteBuf>()
        .map(|b| b.as_slice())
}

/// `bytes` as a `T`, if `T` is a byte buffer (no copy: the vector moves).
pub(crate) fn from_vec<T: 'static>(bytes: Vec<u8>) -> Option<T> {
    let boxed: Box<dyn Any> = if TypeId::of::<T>() == TypeId::of::<Vec<u8>>() {
        Box::new(bytes)
    } else {
        Box::new(serde_bytes::ByteBuf::from(bytes))
    };
    boxed.downcast::<T>().ok().map(|b| *b)
}

/// The most bytes a postcard varint of a `u64` (or a 64-bit `usize`) takes.
pub(crate) const MAX_VARINT: usize = 10;

/// Appends `len` as postcard writes a length: 7 bits a byte, low first,
/// the high bit set on every byte but the last.
pub(crate) fn put_len(out: &mut Vec<u8>, len: usize) {
    let mut n = len as u64;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Reads a length written by [`put_len`] one byte at a time from `next`
/// (None: the bytes ended). Errors as postcard's decoder would: a varint
/// that never ends, or one too big for a `u64`.
pub(crate) fn take_len(mut next: impl FnMut() -> Option<u8>) -> Result<u64, String> {
    let mut value = 0u64;
    for i in 0..MAX_VARINT {
        let Some(byte) = next() else {
            return Err("the byte buffer's length prefix is cut short".into());
        };
        if i == MAX_VARINT - 1 && byte > 1 {
            return Err("the byte buffer's length prefix overflows 64 bits".into());
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("the byte buffer's length prefix overflows 64 bits".into())
}

/// Decodes a byte buffer `T` from postcard bytes: one copy. Trailing bytes
/// are ignored (as postcard does); a length longer than the bytes is an
/// error.
pub(crate) fn decode<T: 'static>(bytes: &[u8]) -> Result<T, String> {
    let mut at = 0;
    let len = take_len(|| {
        let b = bytes.get(at).copied();
        at += 1;
        b
    })?;
    let rest = &bytes[at.min(bytes.len())..];
    let len = usize::try_from(len)
        .ok()
        .filter(|&n| n <= rest.len())
        .ok_or_else(|| too_long(len, rest.len() as u64))?;
    from_vec(rest[..len].to_vec()).ok_or_else(not_a_byte_buffer)
}

/// The error for a length prefix longer than the bytes that follow it.
pub(crate) fn too_long(len: u64, have: u64) -> String {
    format!("the byte buffer's length prefix says {len} bytes but only {have} follow")
}

/// The error for a type that is not a byte buffer (a bug of ours).
pub(crate) fn not_a_byte_buffer() -> String {
    "internal error: not a byte buffer type".into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_bytes::ByteBuf;

    #[test]
    fn lengths_match_postcards_encoding() {
        for len in [0usize, 1, 127, 128, 300, 16 << 20, u32::MAX as usize] {
            let mut ours = Vec::new();
            put_len(&mut ours, len);
            let mut theirs = Vec::new();
            crate::wire::codec::encode(&len, &mut theirs).unwrap();
            assert_eq!(ours, theirs, "{len}");
            let mut it = ours.iter().copied();
            assert_eq!(take_len(|| it.next()).unwrap(), len as u64);
        }
        let mut it = [0xffu8; 10].into_iter();
        assert!(take_len(|| it.next()).is_err());
        let mut it = [0x80u8; 3].into_iter();
        assert!(take_len(|| it.next()).is_err());
    }

    #[test]
    fn both_buffers_decode_what_serde_encodes_and_refuse_long_prefixes() {
        let data: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let mut wire = Vec::new();
        crate::wire::codec::encode(&data, &mut wire).unwrap();
        assert_eq!(decode::<Vec<u8>>(&wire).unwrap(), data);
        assert_eq!(decode::<ByteBuf>(&wire).unwrap().into_vec(), data);
        // A prefix of 2^60 bytes over 8 bytes: an error, no allocation.
        let mut lie = Vec::new();
        put_len(&mut lie, 1 << 60);
        lie.extend_from_slice(&[0; 8]);
        let err = decode::<Vec<u8>>(&lie).unwrap_err();
        assert!(err.contains("only 8 follow"), "{err}");
        assert!(decode::<Vec<u8>>(&[]).is_err());
        assert!(!is_byte_buffer::<Vec<u16>>() && !is_byte_buffer::<String>());
        assert_eq!(as_bytes(&ByteBuf::from(vec![1, 2])), Some(&[1u8, 2][..]));
        assert_eq!(as_bytes(&"no"), None);
    }
}
