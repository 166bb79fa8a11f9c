//! Token decryption with arbitrary token bytes, key, time policy, clock and output size:
//! `decrypt`, `decrypt_in_place`, `verified_timestamp`, `Keyring::decrypt` and
//! `Keyring::rotate`.
//!
//! The input is laid out by hand (see `seed_corpus.py`) so that seeds can carry the key of the
//! vector they come from, which lets mutations start from tokens that pass the MAC:
//!
//! | bytes  | field                                                         |
//! |--------|---------------------------------------------------------------|
//! | 0      | flags: bit 0 = TTL policy (else unchecked), bit 1 = key order  |
//! | 1..9   | TTL, big-endian u64                                           |
//! | 9..17  | now, big-endian u64                                           |
//! | 17..19 | size of a second, possibly too small, output buffer (BE u16)  |
//! | 19..51 | key                                                           |
//! | 51..   | token text                                                    |
//!
//! Checks: in-place and separate decryption agree; the keyring agrees with the key alone; the
//! verified timestamp, the time policy and decryption are consistent with the documented check
//! order; a too-small buffer gets the exact size and is left untouched; a bad padding leaves no
//! decrypted bytes behind; and every accepted token is byte for byte the token `encrypt` makes
//! of its plaintext, timestamp and IV (so no malleable encoding is ever accepted).
#![no_main]

use aeschat_core::{
    decrypt, decrypt_buffer_len, decrypt_in_place, encrypt, token_len, verified_timestamp, Error,
    Iv, Key, Keyring, TimePolicy,
};
use base64ct::{Base64Url, Encoding};
use libfuzzer_sys::fuzz_target;

const HEADER_LEN: usize = 51;
/// Version, timestamp, IV and HMAC: the bytes a token adds to its ciphertext.
const OVERHEAD: usize = 1 + 8 + 16 + 32;
const SENTINEL: u8 = 0xA5;

fn owned(result: Result<&[u8], Error>) -> Result<Vec<u8>, Error> {
    result.map(<[u8]>::to_vec)
}

fuzz_target!(|data: &[u8]| {
    let Some((header, token)) = data.split_first_chunk::<HEADER_LEN>() else {
        return;
    };
    let flags = header[0];
    let ttl = u64::from_be_bytes(header[1..9].try_into().unwrap());
    let now = u64::from_be_bytes(header[9..17].try_into().unwrap());
    let small_len = usize::from(u16::from_be_bytes(header[17..19].try_into().unwrap()));
    let key_bytes: [u8; 32] = header[19..51].try_into().unwrap();
    let key = Key::from_bytes(key_bytes);
    // A key that differs from `key` in every byte, so it never authenticates the same token.
    let other = Key::from_bytes(key_bytes.map(|b| !b));
    let policy = if flags & 1 == 1 {
        TimePolicy::MaxAge { ttl, now }
    } else {
        TimePolicy::Unchecked
    };

    // The documented buffer size always suffices.
    let full_len = decrypt_buffer_len(token.len());
    let mut out = vec![SENTINEL; full_len];
    let separate = owned(decrypt(&key, token, policy, &mut out));
    let mut buffer = token.to_vec();
    let in_place = owned(decrypt_in_place(&key, &mut buffer, policy));
    assert_eq!(
        separate, in_place,
        "in-place and separate decryption disagree"
    );
    assert!(!matches!(separate, Err(Error::BufferTooSmall { .. })));

    // The keyring tries each key; only a failed MAC moves on to the next.
    let older = [other.clone()];
    let older_with_key = [other.clone(), key.clone()];
    let keyring = if flags & 2 == 0 {
        Keyring::new(&key, &older)
    } else {
        Keyring::new(&other, &older_with_key)
    };
    let mut ring_out = vec![0u8; full_len];
    assert_eq!(
        owned(keyring.decrypt(token, policy, &mut ring_out)),
        separate,
        "the keyring disagrees with its matching key"
    );

    // A second, possibly too small, buffer: either it suffices, or the call names the exact
    // size and writes nothing.
    let mut small = vec![SENTINEL; small_len];
    match decrypt(&key, token, policy, &mut small) {
        Err(Error::BufferTooSmall { required }) => {
            assert!(small_len < required && required <= full_len);
            assert!(
                small.iter().all(|&b| b == SENTINEL),
                "a refused buffer was written"
            );
            let mut exact = vec![0u8; required];
            assert_eq!(owned(decrypt(&key, token, policy, &mut exact)), separate);
        }
        other => assert_eq!(owned(other), separate),
    }

    // The check order: structure, then time, then the MAC, then the padding.
    let unchecked = owned(decrypt(&key, token, TimePolicy::Unchecked, &mut out));
    match verified_timestamp(&key, token) {
        Err(error) => {
            assert_eq!(unchecked, Err(error));
            if error != Error::InvalidToken {
                // Structural errors come before the time check.
                assert_eq!(separate, Err(error));
            }
            assert!(separate.is_err());
        }
        Ok(timestamp) => match policy.check(timestamp) {
            Err(time_error) => assert_eq!(separate, Err(time_error)),
            Ok(()) => {
                assert_eq!(separate, unchecked);
                if separate == Err(Error::InvalidToken) {
                    // An authentic token with bad padding: nothing decrypted may remain.
                    let raw = decoded(token);
                    let ciphertext_len = raw.len() - OVERHEAD;
                    assert!(
                        out[..ciphertext_len].iter().all(|&b| b == 0),
                        "bad padding left decrypted bytes in the output"
                    );
                }
            }
        },
    }

    if let Ok(plaintext) = &unchecked {
        let timestamp = verified_timestamp(&key, token).expect("decrypted, so authentic");
        // The token must be exactly what `encrypt` makes of its parts: one canonical form.
        let raw = decoded(token);
        let iv = Iv::from_bytes(raw[9..25].try_into().unwrap());
        let mut again = vec![0u8; token_len(plaintext.len())];
        let again = encrypt(&key, plaintext, timestamp, &iv, &mut again).expect("sized");
        assert_eq!(
            again.as_bytes(),
            token,
            "an accepted token is not canonical"
        );

        // Rotation keeps the timestamp and the plaintext under the new primary.
        let older = [key.clone()];
        let rotator = Keyring::new(&other, &older);
        let mut scratch = vec![0u8; full_len];
        let mut rotated = vec![0u8; token_len(plaintext.len())];
        let new_iv = Iv::from_bytes([flags; 16]);
        let rotated = rotator
            .rotate(token, &new_iv, &mut scratch, &mut rotated)
            .expect("an authentic token rotates");
        assert_eq!(
            verified_timestamp(&other, rotated.as_bytes()),
            Ok(timestamp)
        );
        let mut check = vec![0u8; full_len];
        assert_eq!(
            owned(decrypt(
                &other,
                rotated.as_bytes(),
                TimePolicy::Unchecked,
                &mut check
            )),
            Ok(plaintext.clone())
        );
        assert!(
            scratch[..plaintext.len()].iter().all(|&b| b == 0),
            "rotation left plaintext in scratch"
        );
    }
});

/// The raw bytes of a token that the core accepted as canonical base64url.
fn decoded(token: &[u8]) -> Vec<u8> {
    let text = core::str::from_utf8(token).expect("accepted tokens are ASCII");
    Base64Url::decode_vec(text).expect("accepted tokens decode")
}
