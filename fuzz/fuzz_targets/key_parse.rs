//! Key parsing from arbitrary bytes, checked against a reference decoder written here from the
//! key format (exactly 44 characters of canonical, padded base64url of 32 bytes).
//!
//! Checks: `Key::parse` accepts exactly what the reference accepts, with the same bytes and the
//! documented error otherwise; an accepted key writes back the very text it came from; key
//! bytes never appear in `Debug` output.
#![no_main]

use aeschat_core::fernet::{Error, Key, KEY_LEN, KEY_TEXT_LEN};
use libfuzzer_sys::fuzz_target;

/// The value of a base64url character.
fn sextet(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'-' => Some(62),
        b'_' => Some(63),
        _ => None,
    }
}

/// Strict decoding: 43 alphabet characters whose last two unused bits are zero, then one '='.
fn reference(text: &[u8]) -> Result<[u8; KEY_LEN], Error> {
    if text.len() != KEY_TEXT_LEN {
        return Err(Error::KeyLength);
    }
    let (data, padding) = text.split_at(KEY_TEXT_LEN - 1);
    if padding != b"=" {
        return Err(Error::KeyEncoding);
    }
    let mut bits: u32 = 0;
    let mut held = 0;
    let mut out = Vec::with_capacity(KEY_LEN);
    for &c in data {
        bits = (bits << 6) | u32::from(sextet(c).ok_or(Error::KeyEncoding)?);
        held += 6;
        if held >= 8 {
            held -= 8;
            out.push((bits >> held) as u8);
            bits &= (1 << held) - 1;
        }
    }
    // 43 characters carry 258 bits: the 2 left over must be zero in a canonical encoding.
    if held != 2 || bits != 0 {
        return Err(Error::KeyEncoding);
    }
    out.try_into().map_err(|_| Error::KeyEncoding)
}

fuzz_target!(|data: &[u8]| {
    let parsed = Key::parse(data);
    match (&parsed, reference(data)) {
        (Ok(key), Ok(bytes)) => {
            assert_eq!(*key, Key::from_bytes(bytes));
            let text = key.to_text();
            assert_eq!(
                text.as_bytes(),
                data,
                "an accepted key writes back its own text"
            );
            assert_eq!(text.as_str().as_bytes(), data);
            assert_eq!(format!("{key:?}"), "Key(..)");
            assert_eq!(format!("{text:?}"), "KeyText(..)");
        }
        (Err(error), Err(expected)) => assert_eq!(*error, expected),
        (got, expected) => panic!("parse gave {got:?}, the reference {expected:?}"),
    }

    // Any 32 bytes make a key whose text parses back to it.
    if let Some(bytes) = data.first_chunk::<KEY_LEN>() {
        let key = Key::from_bytes(*bytes);
        let text = key.to_text();
        assert_eq!(text.as_bytes().len(), KEY_TEXT_LEN);
        assert_eq!(reference(text.as_bytes()), Ok(*bytes));
        assert_eq!(Key::parse(text.as_bytes()), Ok(key));
    }
});
