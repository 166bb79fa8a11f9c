//! Token decryption with arbitrary token bytes, key, time policy, clock and output size:
//! `decrypt`, `decrypt_in_place`, `verified_timestamp`, `PreparedKey`, `Keyring::decrypt` and
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
//! Checks: every path gives exactly the result of an independent Fernet (`src/reference.rs`:
//! the same plaintext, or the same error by the documented check order), so the core's own
//! base64url decoder and HMAC are tested differentially; in-place, separate, prepared-key and
//! keyring decryption agree; a too-small buffer gets the exact size and is left untouched; a
//! bad padding leaves no decrypted bytes behind; every accepted token is byte for byte what
//! `encrypt` makes of its parts; rotation keeps timestamp and plaintext and wipes its scratch.
#![no_main]

use aeschat_core::fernet::{
    decrypt, decrypt_buffer_len, decrypt_in_place, encrypt, token_len, verified_timestamp, Error,
    Iv, Key, Keyring, PreparedKey, TimePolicy,
};
use aeschat_fuzz::reference;
use libfuzzer_sys::fuzz_target;

const HEADER_LEN: usize = 51;
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

    // The oracle's verdict, and the core's by every path. The documented buffer size always
    // suffices.
    let expected = reference::decrypt(&key_bytes, token, policy).map(|(_, plaintext)| plaintext);
    let full_len = decrypt_buffer_len(token.len());
    let mut out = vec![SENTINEL; full_len];
    let separate = owned(decrypt(&key, token, policy, &mut out));
    assert_eq!(separate, expected, "decrypt disagrees with the reference");

    let mut buffer = token.to_vec();
    let in_place = owned(decrypt_in_place(&key, &mut buffer, policy));
    assert_eq!(in_place, expected, "decrypt_in_place disagrees");

    let prepared = PreparedKey::new(&key);
    let mut prepared_out = vec![0u8; full_len];
    assert_eq!(
        owned(prepared.decrypt(token, policy, &mut prepared_out)),
        expected,
        "PreparedKey::decrypt disagrees"
    );
    let mut buffer = token.to_vec();
    assert_eq!(
        owned(prepared.decrypt_in_place(&mut buffer, policy)),
        expected,
        "PreparedKey::decrypt_in_place disagrees"
    );

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
        expected,
        "the keyring disagrees with its matching key"
    );

    // The MAC alone: structure first, then the tag, no time check.
    let raw = reference::parse(token);
    let expected_timestamp = match &raw {
        Err(error) => Err(*error),
        Ok(raw) if raw.authentic(&key_bytes) => Ok(raw.timestamp()),
        Ok(_) => Err(Error::InvalidToken),
    };
    assert_eq!(verified_timestamp(&key, token), expected_timestamp);

    // An authentic token with a bad padding: nothing decrypted may remain in the output.
    if let (Ok(raw), Ok(_), Err(Error::InvalidToken)) = (&raw, &expected_timestamp, &separate) {
        let ciphertext_len = raw.ciphertext().len();
        assert!(
            out[..ciphertext_len].iter().all(|&b| b == 0),
            "bad padding left decrypted bytes in the output"
        );
    }

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
            assert_eq!(owned(decrypt(&key, token, policy, &mut exact)), expected);
        }
        other => assert_eq!(owned(other), expected),
    }

    let (Ok(raw), Ok(timestamp)) = (raw, expected_timestamp) else {
        return;
    };
    let Ok(plaintext) = owned(decrypt(&key, token, TimePolicy::Unchecked, &mut out)) else {
        return;
    };
    // The token must be exactly what `encrypt` makes of its parts: one canonical form.
    let iv = Iv::from_bytes(raw.iv());
    let mut again = vec![0u8; token_len(plaintext.len())];
    let again = encrypt(&key, &plaintext, timestamp, &iv, &mut again).expect("sized");
    assert_eq!(
        again.as_bytes(),
        token,
        "an accepted token is not canonical"
    );

    // Rotation keeps the timestamp and the plaintext under the new primary, and wipes the
    // scratch buffer that held the plaintext.
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
        Ok(plaintext)
    );
    assert!(
        scratch.iter().all(|&b| b == 0),
        "rotation left decrypted bytes in scratch"
    );
});
