//! base64url with padding, by table lookup. Not constant-time, and never given secrets: it only
//! encodes and decodes token bytes, which are public (version, timestamp, IV, ciphertext, tag).
//! Keys, which are secret, go through base64ct's constant-time code instead.
//!
//! Wide and scalar, in safe Rust: encoding looks up two characters per 12 bits ([`PAIRS`]),
//! decoding looks up each character's value already shifted into its quantum ([`QUANTUM`]), two
//! quanta (8 characters, 6 bytes) per step. Half the lookups, shifts and ORs of one character
//! per lookup, for 12 KiB of tables; `docs/PERFORMANCE.md` has the measurements.
//!
//! With the `simd` feature (std builds), whole quanta go to `base64-simd` instead (AVX2, SSSE3 or
//! NEON, chosen at run time); the padded last quantum and its canonical check stay here, and the
//! tests hold both codecs to base64ct.

use crate::fernet::Error;

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

/// Two characters for every 12-bit value (the first in the low byte): encoding looks up a pair
/// of characters at once, four lookups for 6 bytes instead of eight. 8 KiB of read-only data.
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)] // compile time, as DECODE
const PAIRS: [u16; 4096] = {
    let mut table = [0u16; 4096];
    let mut i = 0;
    while i < 4096 {
        table[i] = ALPHABET[i >> 6] as u16 | (ALPHABET[i & 63] as u16) << 8;
        i += 1;
    }
    table
};

/// The 6-bit value of each character, shifted to its place in a 24-bit quantum: `QUANTUM[k][c]`
/// for the `k`-th character of four. A byte outside the alphabet has bit 31 set instead, which
/// no value reaches, so one OR over a quantum's four entries both assembles it and flags it.
#[allow(clippy::indexing_slicing)] // evaluated at compile time, as DECODE
const QUANTUM: [[u32; 256]; 4] = {
    let mut tables = [[INVALID_QUANTUM; 256]; 4];
    let mut i = 0;
    while i < ALPHABET.len() {
        let c = ALPHABET[i] as usize;
        let v = i as u32;
        tables[0][c] = v << 18;
        tables[1][c] = v << 12;
        tables[2][c] = v << 6;
        tables[3][c] = v;
        i += 1;
    }
    tables
};

/// Marks a byte outside the alphabet in [`QUANTUM`].
const INVALID_QUANTUM: u32 = 1 << 31;

fn symbol(value: u64) -> u8 {
    ALPHABET.get((value & 63) as usize).copied().unwrap_or(b'A')
}

fn pair(value: u64) -> u64 {
    u64::from(PAIRS.get((value & 0xfff) as usize).copied().unwrap_or(0))
}

fn value(symbol: u8) -> u32 {
    u32::from(DECODE.get(usize::from(symbol)).copied().unwrap_or(INVALID))
}

/// Four characters, the first in the low byte, as a 24-bit quantum (bit 31 set if any is not
/// in the alphabet).
fn quantum(text: u32) -> u32 {
    let [a, b, c, d] = text.to_le_bytes().map(usize::from);
    let [t0, t1, t2, t3] = &QUANTUM;
    let look = |table: &[u32; 256], c: usize| table.get(c).copied().unwrap_or(INVALID_QUANTUM);
    look(t0, a) | look(t1, b) | look(t2, c) | look(t3, d)
}

/// Encodes whole quanta: 3 bytes of `src` to 4 characters of `dst`, as far as both reach.
pub(crate) fn encode_quanta(src: &[u8], dst: &mut [u8]) {
    #[cfg(feature = "simd")]
    if src.len() >= SIMD_MIN_BYTES {
        let quanta = (src.len() / 3).min(dst.len() / 4);
        let src = src.get(..quanta.saturating_mul(3)).unwrap_or(&[]);
        if let Some(dst) = dst.get_mut(..quanta.saturating_mul(4)) {
            // Whole quanta in, exactly their text out: no padding, and `dst` is exactly the
            // encoded length, which is all `encode` asserts.
            let _ = base64_simd::URL_SAFE_NO_PAD.encode(src, base64_simd::Out::from_slice(dst));
        }
        return;
    }
    encode_quanta_scalar(src, dst);
}

/// Below this many bytes (or four thirds as many characters) the scalar codec is used even
/// with the `simd` feature. `base64-simd`'s vector loops start at 24 bytes, and in a tight loop
/// of 16-byte tokens it wins 5 % from there; but in the chat, where each token is sealed or
/// opened between system calls, 64-byte messages (137-byte tokens) ran 3 % to 6 % slower with
/// it than with the scalar codec (`bench/chat_ab.py`, builds with and without `simd`). From
/// 256 bytes (a 256-byte message's token and up) the token benchmarks show it level at 256 B
/// and faster from 4 KiB (decryption 1.4× to 1.65×).
#[cfg(feature = "simd")]
const SIMD_MIN_BYTES: usize = 256;

/// [`encode_quanta`] in scalar code. Two quanta at a time: 48 bits in one word, four lookups of
/// two characters each, 8 characters out in one store.
fn encode_quanta_scalar(src: &[u8], dst: &mut [u8]) {
    let mut src_pairs = src.chunks_exact(6);
    let mut dst_pairs = dst.chunks_exact_mut(8);
    for (s, d) in (&mut src_pairs).zip(&mut dst_pairs) {
        let mut word = [0u8; 8];
        word[2..].copy_from_slice(s);
        let n = u64::from_be_bytes(word);
        let text = pair(n >> 36) | pair(n >> 24) << 16 | pair(n >> 12) << 32 | pair(n) << 48;
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
/// Two quanta at a time: 8 characters in one load, one lookup per character in a table of
/// values already in place ([`QUANTUM`]), 48 bits out.
pub(crate) fn decode_quanta(src: &[u8], dst: &mut [u8]) -> Result<(), Error> {
    if !src.len().is_multiple_of(4) || (src.len() / 4).saturating_mul(3) != dst.len() {
        return Err(Error::TokenEncoding);
    }
    #[cfg(feature = "simd")]
    if dst.len() >= SIMD_MIN_BYTES {
        // Whole quanta without padding ('=' is outside the alphabet here), and `dst` exactly
        // their decoded length, which is all `decode` asserts. Whole quanta have no unused
        // bits, so there is no canonical form to check; `decode_padded` checks the last one.
        return match base64_simd::URL_SAFE_NO_PAD.decode(src, base64_simd::Out::from_slice(dst)) {
            Ok(_) => Ok(()),
            Err(_) => Err(Error::TokenEncoding),
        };
    }
    decode_quanta_scalar(src, dst)
}

/// [`decode_quanta`] in scalar code, once the lengths are checked.
fn decode_quanta_scalar(src: &[u8], dst: &mut [u8]) -> Result<(), Error> {
    let mut invalid = 0;
    let mut src_pairs = src.chunks_exact(8);
    let mut dst_pairs = dst.chunks_exact_mut(6);
    for (s, d) in (&mut src_pairs).zip(&mut dst_pairs) {
        let mut text = [0u8; 8];
        text.copy_from_slice(s);
        let text = u64::from_le_bytes(text);
        let (first, second) = (quantum(text as u32), quantum((text >> 32) as u32));
        invalid |= first | second;
        let n = u64::from(first) << 24 | u64::from(second);
        d.copy_from_slice(&n.to_be_bytes()[2..]);
    }
    let (src, dst) = (src_pairs.remainder(), dst_pairs.into_remainder());
    for (s, d) in src.chunks_exact(4).zip(dst.chunks_exact_mut(3)) {
        if let (&[a, b, c, e], [x, y, z]) = (s, d) {
            let n = quantum(u32::from_le_bytes([a, b, c, e]));
            invalid |= n;
            *x = (n >> 16) as u8;
            *y = (n >> 8) as u8;
            *z = n as u8;
        }
    }
    if invalid & INVALID_QUANTUM != 0 {
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

    /// A small deterministic generator (xorshift64*), so the test needs no dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
    }

    /// The wide paths (six bytes or eight characters per step, and the remainders after them)
    /// against base64ct over random bytes of every length up to 600, and over random text that
    /// mixes the alphabet with '=', the standard alphabet's '+' and '/', and other bytes.
    #[test]
    fn wide_paths_match_base64ct_on_random_input() {
        use base64ct::{Base64Url, Base64UrlUnpadded, Encoding};
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut data = [0u8; 600];
        for len in 0..data.len() {
            for byte in &mut data[..len] {
                *byte = rng.next() as u8;
            }
            let mut ours = [0u8; 800];
            let mut theirs = [0u8; 800];
            let n = encode_padded(&data[..len], &mut ours).unwrap();
            let expected = Base64Url::encode(&data[..len], &mut theirs).unwrap();
            assert_eq!(&ours[..n], expected.as_bytes(), "encoding {len} bytes");
            if n > 0 {
                let mut raw = [0u8; 600];
                assert_eq!(decode_padded(&ours[..n], &mut raw).unwrap(), &data[..len]);
            }
            let whole = len / 3 * 4;
            let mut raw = [0u8; 600];
            decode_quanta(&ours[..whole], &mut raw[..whole / 4 * 3]).unwrap();
            assert_eq!(&raw[..whole / 4 * 3], &data[..whole / 4 * 3]);
        }
        let chars =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/ \0\x80\xff";
        for round in 0..20_000 {
            let len = 4 * (1 + round % 24);
            let mut text = [0u8; 96];
            for c in &mut text[..len] {
                // Mostly valid characters, so that errors sit at every position in turn.
                let r = rng.next();
                *c = if r.is_multiple_of(16) {
                    chars[(r >> 8) as usize % chars.len()]
                } else {
                    chars[(r >> 8) as usize % 64]
                };
            }
            let text = &text[..len];
            let mut ours = [0u8; 72];
            let mut theirs = [0u8; 72];
            let expected = Base64Url::decode(text, &mut theirs)
                .ok()
                .map(<[u8]>::to_vec);
            let got = decode_padded(text, &mut ours).ok().map(<[u8]>::to_vec);
            assert_eq!(got, expected, "{text:?}");
            let out = &mut ours[..len / 4 * 3];
            let got = decode_quanta(text, out).ok().map(|()| out.to_vec());
            let expected = Base64UrlUnpadded::decode(text, &mut theirs)
                .ok()
                .map(<[u8]>::to_vec);
            assert_eq!(got, expected, "{text:?} unpadded");
        }
    }

    /// Long texts, which take the SIMD loops when the `simd` feature is on (and the scalar ones
    /// otherwise): whole quanta of random bytes up to 1,536 bytes encode and decode as base64ct
    /// does them, and one foreign byte anywhere in them (every position of a 256-character
    /// text with every foreign byte; random positions and bytes in longer ones) is rejected.
    #[test]
    fn long_texts_match_base64ct() {
        use base64ct::{Base64UrlUnpadded, Encoding};
        let mut rng = Rng(0x0123_4567_89AB_CDEF);
        let mut data = [0u8; 1536];
        let mut text = [0u8; 2048];
        let mut theirs = [0u8; 2048];
        let mut raw = [0u8; 1536];
        for quanta in 0..=512 {
            let (bytes, chars) = (quanta * 3, quanta * 4);
            for byte in &mut data[..bytes] {
                *byte = rng.next() as u8;
            }
            encode_quanta(&data[..bytes], &mut text[..chars]);
            let expected = Base64UrlUnpadded::encode(&data[..bytes], &mut theirs).unwrap();
            assert_eq!(
                &text[..chars],
                expected.as_bytes(),
                "encoding {bytes} bytes"
            );
            decode_quanta(&text[..chars], &mut raw[..bytes]).unwrap();
            assert_eq!(&raw[..bytes], &data[..bytes], "decoding {chars} characters");
            if chars == 0 {
                continue;
            }
            for _ in 0..8 {
                let mut forged = text;
                let at = (rng.next() as usize) % chars;
                let byte = loop {
                    let byte = rng.next() as u8;
                    if !ALPHABET.contains(&byte) {
                        break byte;
                    }
                };
                forged[at] = byte;
                assert!(
                    decode_quanta(&forged[..chars], &mut raw[..bytes]).is_err(),
                    "{byte} at {at} of {chars}"
                );
            }
        }
        encode_quanta(&data[..192], &mut text[..256]);
        for at in 0..256 {
            for byte in (0..=255u8).filter(|b| !ALPHABET.contains(b)) {
                let mut forged = text;
                forged[at] = byte;
                assert!(decode_quanta(&forged[..256], &mut raw[..192]).is_err());
                // '=' in the last two places is padding, which the canonical check judges.
                if !(byte == b'=' && at >= 254) {
                    assert!(decode_padded(&forged[..256], &mut raw[..192]).is_err());
                }
            }
        }
    }

    /// Every byte outside the alphabet, at every position of a 96-character text, is rejected
    /// by both decoders, and so are non-zero unused bits behind padding after a long body.
    #[test]
    fn every_foreign_byte_at_every_position_is_rejected() {
        let data: [u8; 72] = core::array::from_fn(|i| (i * 91 + 7) as u8);
        let mut text = [0u8; 96];
        encode_padded(&data, &mut text).unwrap();
        let mut out = [0u8; 72];
        for at in 0..text.len() {
            for byte in 0..=255u8 {
                if ALPHABET.contains(&byte) {
                    continue;
                }
                let mut forged = text;
                forged[at] = byte;
                assert!(decode_quanta(&forged, &mut out).is_err(), "{byte} at {at}");
                assert!(decode_padded(&forged, &mut out).is_err(), "{byte} at {at}");
            }
        }
        // 70 and 71 bytes end in "xx==" and "xxx=": the last character passes if and only if
        // the bits it leaves unused (4 and 2) are zero.
        for (len, unused) in [(70, 0x0f), (71, 0x03)] {
            let n = encode_padded(&data[..len], &mut text).unwrap();
            let last = if len == 70 { n - 3 } else { n - 2 };
            for (value, &c) in ALPHABET.iter().enumerate() {
                let mut forged = text;
                forged[last] = c;
                let passes = decode_padded(&forged[..n], &mut out).is_ok();
                assert_eq!(
                    passes,
                    value & unused == 0,
                    "{len} bytes, last character {c}"
                );
            }
        }
    }
}
