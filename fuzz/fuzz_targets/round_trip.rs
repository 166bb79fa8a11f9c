//! Encryption and decryption of valid tokens and records built from a fuzzer-chosen plaintext,
//! IV and time under a fixed key, so everything after the MAC check runs on every input (the
//! MAC is never switched off: the tokens are genuine).
//!
//! The input is laid out by hand (see `seed_corpus.py`, which fills it from the generate
//! vectors):
//!
//! | bytes  | field                                          |
//! |--------|------------------------------------------------|
//! | 0..16  | IV                                             |
//! | 16..24 | token timestamp, big-endian u64                |
//! | 24..32 | TTL, big-endian u64                            |
//! | 32..40 | now, big-endian u64                            |
//! | 40..48 | record timestamp, big-endian u64               |
//! | 48..50 | position of a bit flip (modulo the length)     |
//! | 50     | the flip's XOR mask (0 counts as 1)            |
//! | 51..   | plaintext                                      |
//!
//! Checks: the token is exactly what an independent Fernet (`src/reference.rs`) makes of the
//! same parts, has `token_len` characters and the documented layout; the prepared key gives the
//! same token; all decryption paths give the plaintext back; the time policy matches the
//! documented inequalities computed without overflow; too-small buffers name the exact size
//! and are left untouched; any changed byte is rejected; rotation and `encrypt_to_string`
//! agree with `encrypt`; a record sealed by a session opens to the same text on the other
//! side, and its token holds the documented record plaintext under the direction's key, with the
//! IV the sender's generator gave.
#![no_main]

use aeschat_core::fernet::{
    ciphertext_len, decrypt, decrypt_buffer_len, decrypt_in_place, encrypt, encrypt_to_string,
    token_len, verified_timestamp, Error, Iv, Key, Keyring, PreparedKey, TimePolicy,
};
use aeschat_core::session::{self, record_frame_len, Incoming};
use aeschat_fuzz::{establish, reference};
use aeschat_testkit::Replay;
use base64ct::{Base64Url, Encoding};
use libfuzzer_sys::fuzz_target;

const HEADER_LEN: usize = 51;
/// The longest plaintext a session in this target accepts; longer inputs skip the record part.
const MAX_MESSAGE: usize = 8192;
const SENTINEL: u8 = 0xA5;

const KEY: [u8; 32] = *b"aeschat fuzz round trip key 0001";

fn u64_at(header: &[u8; HEADER_LEN], at: usize) -> u64 {
    u64::from_be_bytes(header[at..at + 8].try_into().unwrap())
}

fuzz_target!(|data: &[u8]| {
    let Some((header, plaintext)) = data.split_first_chunk::<HEADER_LEN>() else {
        return;
    };
    let iv = Iv::from_bytes(header[..16].try_into().unwrap());
    let timestamp = u64_at(header, 16);
    let (ttl, now) = (u64_at(header, 24), u64_at(header, 32));
    let record_time = u64_at(header, 40);
    let flip_at = usize::from(u16::from_be_bytes([header[48], header[49]]));
    let flip_mask = header[50].max(1);
    let key = Key::from_bytes(KEY);

    // Encrypt into a buffer of exactly the documented size.
    let expected_len = token_len(plaintext.len());
    let mut buffer = vec![0u8; expected_len];
    let token = encrypt(&key, plaintext, timestamp, &iv, &mut buffer)
        .expect("token_len is enough")
        .to_owned();
    assert_eq!(
        token,
        reference::encrypt(&KEY, plaintext, timestamp, iv.as_bytes()),
        "the token differs from the reference's"
    );
    assert_eq!(token.len(), expected_len);
    assert!(token
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'='));

    // The documented layout: 0x80, timestamp, IV, ciphertext, 32-byte HMAC.
    let raw = Base64Url::decode_vec(&token).expect("canonical base64url");
    assert_eq!(raw.len(), 1 + 8 + 16 + ciphertext_len(plaintext.len()) + 32);
    assert_eq!(raw[0], 0x80);
    assert_eq!(raw[1..9], timestamp.to_be_bytes());
    assert_eq!(raw[9..25], *iv.as_bytes());

    // A buffer one byte short is refused whole, naming the size.
    let mut short = vec![SENTINEL; expected_len - 1];
    assert_eq!(
        encrypt(&key, plaintext, timestamp, &iv, &mut short).err(),
        Some(Error::BufferTooSmall {
            required: expected_len
        })
    );
    assert!(short.iter().all(|&b| b == SENTINEL));

    // Every decryption path gives the plaintext back.
    let mut out = vec![0u8; decrypt_buffer_len(token.len())];
    assert!(out.len() >= plaintext.len());
    assert_eq!(
        decrypt(&key, token.as_bytes(), TimePolicy::Unchecked, &mut out),
        Ok(plaintext)
    );
    let mut in_place = token.clone().into_bytes();
    assert_eq!(
        decrypt_in_place(&key, &mut in_place, TimePolicy::Unchecked),
        Ok(plaintext)
    );
    assert_eq!(verified_timestamp(&key, token.as_bytes()), Ok(timestamp));
    let prepared = PreparedKey::new(&key);
    let mut again = vec![0u8; expected_len];
    assert_eq!(
        prepared.encrypt(plaintext, timestamp, &iv, &mut again),
        Ok(token.as_str())
    );
    assert_eq!(
        prepared.decrypt(token.as_bytes(), TimePolicy::Unchecked, &mut out),
        Ok(plaintext)
    );

    // The smallest output buffer is the ciphertext's length, exactly.
    let needed = ciphertext_len(plaintext.len());
    let mut tight = vec![SENTINEL; needed - 1];
    assert_eq!(
        decrypt(&key, token.as_bytes(), TimePolicy::Unchecked, &mut tight).err(),
        Some(Error::BufferTooSmall { required: needed })
    );
    assert!(tight.iter().all(|&b| b == SENTINEL));
    let mut exact = vec![0u8; needed];
    assert_eq!(
        decrypt(&key, token.as_bytes(), TimePolicy::Unchecked, &mut exact),
        Ok(plaintext)
    );

    // The time policy is exactly the documented one.
    let policy = TimePolicy::MaxAge { ttl, now };
    let expected_time = reference::check_time(policy, timestamp);
    assert_eq!(policy.check(timestamp), expected_time);
    assert_eq!(
        decrypt(&key, token.as_bytes(), policy, &mut out),
        expected_time.map(|()| plaintext)
    );

    // Any change to the token is rejected, by every path.
    let mut forged = token.clone().into_bytes();
    let at = flip_at % forged.len();
    forged[at] ^= flip_mask;
    assert!(decrypt(&key, &forged, TimePolicy::Unchecked, &mut out).is_err());
    assert!(verified_timestamp(&key, &forged).is_err());
    let mut forged_in_place = forged.clone();
    assert!(decrypt_in_place(&key, &mut forged_in_place, TimePolicy::Unchecked).is_err());
    // So is the genuine token under another key.
    let other = Key::from_bytes([0x42; 32]);
    assert_eq!(
        decrypt(&other, token.as_bytes(), TimePolicy::Unchecked, &mut out).err(),
        Some(Error::InvalidToken)
    );

    // A keyring accepts the token through an older key and rotates it to the primary.
    let older = [key.clone()];
    let keyring = Keyring::new(&other, &older);
    assert_eq!(
        keyring.decrypt(token.as_bytes(), TimePolicy::Unchecked, &mut out),
        Ok(plaintext)
    );
    let mut scratch = vec![0u8; out.len()];
    let mut rotated = vec![0u8; expected_len];
    let new_iv = Iv::from_bytes([header[50]; 16]);
    let rotated = keyring
        .rotate(token.as_bytes(), &new_iv, &mut scratch, &mut rotated)
        .expect("rotates")
        .to_owned();
    assert_eq!(rotated.len(), expected_len);
    assert_eq!(
        verified_timestamp(&other, rotated.as_bytes()),
        Ok(timestamp)
    );
    assert_eq!(
        decrypt(&other, rotated.as_bytes(), TimePolicy::Unchecked, &mut out),
        Ok(plaintext)
    );

    // The fixed-capacity string form is the same token, or names the size it needs.
    const CAPACITY: usize = token_len(256);
    match encrypt_to_string::<CAPACITY>(&key, plaintext, timestamp, &iv) {
        Ok(string) => assert_eq!(string.as_str(), token),
        Err(error) => {
            assert!(expected_len > CAPACITY);
            assert_eq!(
                error,
                Error::BufferTooSmall {
                    required: expected_len
                }
            );
        }
    }

    if plaintext.len() <= MAX_MESSAGE {
        check_record(plaintext, record_time, &iv);
    }
});

/// A record sealed by the client's sender opens to the same text at the server's receiver.
fn check_record(text: &[u8], time: u64, iv: &Iv) {
    let session = establish(MAX_MESSAGE);
    let (mut sender, _) = session.client;
    let (_, mut receiver) = session.server;
    // The sender draws the record's IV from its generator: here one that hands out the
    // fuzzer's IV, so the token can be checked byte for byte.
    let mut ivs = Replay::new(iv.as_bytes().to_vec());

    let mut out = vec![0u8; record_frame_len(text.len())];
    let frame = sender
        .seal_text(text, &mut ivs, Some(time), &mut out)
        .expect("fits")
        .to_vec();
    assert_eq!(frame.len(), record_frame_len(text.len()));
    assert_eq!(ivs.remaining(), 0, "one IV per record");

    // Its token holds `type 1 ‖ sequence 0 ‖ text`, dated `time`, under the client's key,
    // with the IV drawn.
    let token = &frame[5..];
    let raw =
        Base64Url::decode_vec(std::str::from_utf8(token).expect("base64url")).expect("a token");
    assert_eq!(raw[9..25], *iv.as_bytes(), "the IV came from the generator");
    let mut plaintext = vec![0u8; decrypt_buffer_len(token.len())];
    let opened = decrypt(
        &session.client_write,
        token,
        TimePolicy::Unchecked,
        &mut plaintext,
    )
    .expect("sealed under the client's write key");
    assert_eq!(opened[..9], [1, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(&opened[9..], text);
    assert_eq!(verified_timestamp(&session.client_write, token), Ok(time));

    // The record and the close that follows arrive together and are taken where they lie.
    let mut close = vec![0u8; record_frame_len(0)];
    ivs.push(iv.as_bytes());
    let close = sender
        .seal_close(&mut ivs, Some(time), &mut close)
        .expect("fits")
        .to_vec();
    let mut wire = [frame.as_slice(), &close].concat();
    let received = receiver.poll(&mut wire);
    assert_eq!(received.discard, frame.len());
    assert_eq!(received.result, Ok(Some(Incoming::Text(text))));
    let received = receiver.poll(&mut wire[frame.len()..]);
    assert_eq!(received.discard, close.len());
    assert_eq!(received.result, Ok(Some(Incoming::Closed)));
    let mut after = vec![0u8; record_frame_len(0)];
    assert_eq!(
        sender
            .seal_text(b"", &mut ivs, Some(time), &mut after)
            .err(),
        Some(session::Error::SessionEnded)
    );
}
