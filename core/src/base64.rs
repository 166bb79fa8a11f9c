//! base64url with padding, by table lookup. Not constant-time, and never given secrets: it only
//! encodes and decodes token bytes, which are public (version, timestamp, IV, ciphertext, tag).
//! Keys, which are secret, go through base64ct's constant-time code instead.

use crate::Error;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Marks a byte that is not a base64url character ('=' included) in [`DECODE`].
const INVALID: u8 = 0x80;

/// The 6-bit value of each base64url character, [`INVALID`] for every other byte.
#[allow(clippy::indexing_slicing)] // evaluated at compile time, where indexing cannot fail silently
const DECODE: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < ALPHABET.len() {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

fn symbol(value: u64) -> u8 {
    ALPHABET.get((value & 63) as usize).copied().unwrap_or(b'A')
}

fn value(symbol: u8) -> u32 {
    u32::from(DECODE.get(usize::from(symbol)).copied().unwrap_or(INVALID))
}

/// Encodes whole quanta: 3 bytes of `src` to 4 characters of `dst`, as far as both reach.
/// Two quanta at a time: 48 bits in one word, 8 characters out in one store.
pub(crate) fn encode_quanta(src: &[u8], dst: &mut [u8]) {
    let mut src_pairs = src.chunks_exact(6);
    let mut dst_pairs = dst.chunks_exact_mut(8);
    for (s, d) in (&mut src_pairs).zip(&mut dst_pairs) {
        let mut word = [0u8; 8];
        word[2..].copy_from_slice(s);
        let n = u64::from_be_bytes(word);
        let text = u64::from(symbol(n >> 42))
            | u64::from(symbol(n >> 36)) << 8
            | u64::from(symbol(n >> 30)) << 16
            | u64::from(symbol(n >> 24)) << 24
            | u64::from(symbol(n >> 18)) << 32
            | u64::from(symbol(n >> 12)) << 40
            | u64::from(symbol(n >> 6)) << 48
            | u64::from(symbol(n)) << 56;
        d.copy_from_slice(&text.to_le_bytes());
    }
    let (src, dst) = (src_pairs.remainder(), dst_pairs.into_remainder());
    for (s, d) in src.chunks_exact(3).zip(dst.chunks_exact_mut(4)) {
        if let (&[a, b, c], [w, x, y, z]) = (s, d) {
            let n = u64::from(a) << 16 | u64::from(b) << 8 | u64::from(c);
            *w = symbol(n >> 18);
            *x = symbol(n >> 12);
            *y = symbol(n >> 6);
            *z = symbol(n);
        }
    }
}

/// Encodes `src` with padding into `dst` and returns the text length.
pub(crate) fn encode_padded(src: &[u8], dst: &mut [u8]) -> Result<usize, Error> {
    let whole = src.len().saturating_sub(src.len() % 3);
    let (body, rest) = src.split_at(whole);
    let text_len = src.len().div_ceil(3).saturating_mul(4);
    let required = Error::BufferTooSmall { required: text_len };
    let dst = dst.get_mut(..text_len).ok_or(required)?;
    let (text, last) = dst.split_at_mut((whole / 3).saturating_mul(4));
    encode_quanta(body, text);
    match (rest, last) {
        (&[a], [w, x, y, z]) => {
            let n = u64::from(a) << 16;
            *w = symbol(n >> 18);
            *x = symbol(n >> 12);
            *y = b'=';
            *z = b'=';
        }
        (&[a, b], [w, x, y, z]) => {
            let n = u64::from(a) << 16 | u64::from(b) << 8;
            *w = symbol(n >> 18);
            *x = symbol(n >> 12);
            *y = symbol(n >> 6);
            *z = b'=';
        }
        _ => {}
    }
    Ok(text_len)
}

/// Decodes unpadded whole quanta: 4 characters of `src` to 3 bytes of `dst`, which must be
/// exactly long enough. Any character outside the alphabet ('=' included) is an error.
/// Two quanta at a time: 8 characters in one load, 48 bits out.
pub(crate) fn decode_quanta(src: &[u8], dst: &mut [u8]) -> Result<(), Error> {
    if !src.len().is_multiple_of(4) || (src.len() / 4).saturating_mul(3) != dst.len() {
        return Err(Error::TokenEncoding);
    }
    let mut invalid = 0;
    let mut src_pairs = src.chunks_exact(8);
    let mut dst_pairs = dst.chunks_exact_mut(6);
    for (s, d) in (&mut src_pairs).zip(&mut dst_pairs) {
        let mut text = [0u8; 8];
        text.copy_from_slice(s);
        let text = u64::from_le_bytes(text);
        let values = [0, 8, 16, 24, 32, 40, 48, 56].map(|shift| value((text >> shift) as u8));
        let [a, b, c, e, f, g, h, i] = values.map(u64::from);
        invalid |= a | b | c | e | f | g | h | i;
        let n = a << 42 | b << 36 | c << 30 | e << 24 | f << 18 | g << 12 | h << 6 | i;
        d.copy_from_slice(&n.to_be_bytes()[2..]);
    }
    let (src, dst) = (src_pairs.remainder(), dst_pairs.into_remainder());
    for (s, d) in src.chunks_exact(4).zip(dst.chunks_exact_mut(3)) {
        if let (&[a, b, c, e], [x, y, z]) = (s, d) {
            let (a, b, c, e) = (value(a), value(b), value(c), value(e));
            invalid |= u64::from(a | b | c | e);
            let n = a << 18 | b << 12 | c << 6 | e;
            *x = (n >> 16) as u8;
            *y = (n >> 8) as u8;
            *z = n as u8;
        }
    }
    if invalid & u64::from(INVALID) != 0 {
        return Err(Error::TokenEncoding);
    }
    Ok(())
}

/// Decodes the text's final chunk, whose last quantum may be padded: "xx==" is one byte,
/// "xxx=" two. Only canonical text passes: the bits a padded quantum leaves unused must be zero.
/// Returns the decoded bytes at the start of `dst`.
pub(crate) fn decode_padded<'d>(src: &[u8], dst: &'d mut [u8]) -> Result<&'d [u8], Error> {
    let (body, &[a, b, c, e]) = src.split_last_chunk::<4>().ok_or(Error::TokenEncoding)?;
    let body_len = (body.len() / 4).saturating_mul(3);
    let (decoded, last) = dst
        .split_at_mut_checked(body_len)
        .ok_or(Error::TokenEncoding)?;
    decode_quanta(body, decoded)?;
    let (a, b) = (value(a), value(b));
    // The quantum's value, its length in bytes, every character's value OR-ed (an invalid one
    // sets the INVALID bit), and the bits a padded quantum leaves unused (must be zero).
    let (n, len, seen, unused) = match (c, e) {
        (b'=', b'=') => (a << 18 | b << 12, 1, a | b, b & 0x0f),
        (c, b'=') => {
            let c = value(c);
            (a << 18 | b << 12 | c << 6, 2, a | b | c, c & 0x03)
        }
        (c, e) => {
            let (c, e) = (value(c), value(e));
            (a << 18 | b << 12 | c << 6 | e, 3, a | b | c | e, 0)
        }
    };
    if seen & u32::from(INVALID) != 0 || unused != 0 {
        return Err(Error::TokenEncoding);
    }
    let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
    last.get_mut(..len)
        .ok_or(Error::TokenEncoding)?
        .copy_from_slice(bytes.get(..len).ok_or(Error::TokenEncoding)?);
    dst.get(..body_len.saturating_add(len))
        .ok_or(Error::TokenEncoding)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    /// base64url against base64ct (strict, canonical) for every 0 to 3 byte tail and every
    /// four-character quantum of interesting characters.
    #[test]
    fn base64_matches_base64ct() {
        use base64ct::{Base64Url, Encoding};
        let data: [u8; 64] = core::array::from_fn(|i| (i * 37 + 11) as u8);
        for len in 0..data.len() {
            let mut ours = [0u8; 88];
            let mut theirs = [0u8; 88];
            let n = encode_padded(&data[..len], &mut ours).unwrap();
            let expected = Base64Url::encode(&data[..len], &mut theirs).unwrap();
            assert_eq!(&ours[..n], expected.as_bytes());
            if n > 0 {
                let mut raw = [0u8; 66];
                assert_eq!(decode_padded(&ours[..n], &mut raw).unwrap(), &data[..len]);
            }
        }
        let chars = b"AQgw_-=9+/ \x80";
        for &a in chars {
            for &b in chars {
                for &c in chars {
                    for &d in chars {
                        let text = [a, b, c, d];
                        let mut ours = [0u8; 3];
                        let mut theirs = [0u8; 3];
                        let expected = Base64Url::decode(text, &mut theirs).ok();
                        let got = decode_padded(&text, &mut ours).ok();
                        assert_eq!(got, expected, "{text:?}");
                        let unpadded = decode_quanta(&text, &mut ours).ok().map(|()| &ours[..]);
                        let expected = base64ct::Base64UrlUnpadded::decode(text, &mut theirs).ok();
                        assert_eq!(unpadded, expected, "{text:?} unpadded");
                    }
                }
            }
        }
    }
}
