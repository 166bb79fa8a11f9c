//! Property tests of the core's token API: round trips, the time rule, tamper detection, garbage
//! input, transactional buffer errors, sizes and key rings, each over random inputs.

use aeschat_core::fernet::{
    ciphertext_len, decrypt, decrypt_buffer_len, decrypt_in_place, encrypt, encrypt_to_string,
    token_len, verified_timestamp, Error, Iv, Key, Keyring, TimePolicy, MAX_CLOCK_SKEW,
};
use proptest::prelude::*;
use proptest::sample::Index;

const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Padded base64url, written independently of the core.
fn base64_encode(raw: &[u8]) -> String {
    let mut text = String::with_capacity(raw.len().div_ceil(3) * 4);
    for group in raw.chunks(3) {
        let byte = |i: usize| u32::from(group.get(i).copied().unwrap_or(0));
        let bits = byte(0) << 16 | byte(1) << 8 | byte(2);
        for i in 0..4 {
            if i <= group.len() {
                text.push(BASE64URL[(bits >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                text.push('=');
            }
        }
    }
    text
}

/// Decodes padded base64url that is known to be valid (tokens the core wrote).
fn base64_decode(text: &str) -> Vec<u8> {
    let mut raw = Vec::with_capacity(text.len() / 4 * 3);
    for quantum in text.as_bytes().chunks(4) {
        let data = quantum.iter().take_while(|&&c| c != b'=').count();
        let bits = quantum.iter().take(data).fold(0u32, |bits, &c| {
            let value = BASE64URL.iter().position(|&a| a == c).expect("base64url");
            bits << 6 | value as u32
        }) << (6 * (4 - data));
        raw.extend_from_slice(&bits.to_be_bytes()[1..data]);
    }
    raw
}

fn make_token(key: &Key, plaintext: &[u8], timestamp: u64, iv: &Iv) -> String {
    let mut out = vec![0u8; token_len(plaintext.len())];
    let token = encrypt(key, plaintext, timestamp, iv, &mut out).expect("exact buffer");
    token.to_owned()
}

/// The time rule, computed in 128-bit arithmetic where nothing overflows.
fn expected_time_result(timestamp: u64, ttl: u64, now: u64) -> Result<(), Error> {
    let (timestamp, ttl, now) = (u128::from(timestamp), u128::from(ttl), u128::from(now));
    if timestamp + ttl < now {
        Err(Error::Expired)
    } else if timestamp > now + u128::from(MAX_CLOCK_SKEW) {
        Err(Error::FromTheFuture)
    } else {
        Ok(())
    }
}

/// Timestamps, TTLs and clocks biased towards the ends of the u64 range.
fn time() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        0u64..5000,
        (u64::MAX - 5000)..=u64::MAX,
        1_000_000_000u64..5_000_000_000,
    ]
}

/// A clock near one of the two limits of a token's validity, or anywhere.
fn clock(timestamp: u64, ttl: u64) -> impl Strategy<Value = u64> {
    let near = move |limit: i128| {
        (-3i128..=3).prop_map(move |offset| (limit + offset).clamp(0, i128::from(u64::MAX)) as u64)
    };
    let expiry = i128::from(timestamp) + i128::from(ttl);
    let earliest = i128::from(timestamp) - i128::from(MAX_CLOCK_SKEW);
    prop_oneof![any::<u64>(), near(expiry), near(earliest)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn tokens_round_trip(
        plaintext in prop::collection::vec(any::<u8>(), 0..2000),
        key in any::<[u8; 32]>(),
        iv in any::<[u8; 16]>(),
        timestamp in time(),
        ttl in time(),
    ) {
        let (key, iv) = (Key::from_bytes(key), Iv::from_bytes(iv));
        let token = make_token(&key, &plaintext, timestamp, &iv);
        prop_assert_eq!(token.len(), token_len(plaintext.len()));

        // The layout is the spec's: version, timestamp, IV, ciphertext, HMAC.
        let raw = base64_decode(&token);
        prop_assert_eq!(base64_encode(&raw), token.as_str());
        prop_assert_eq!(raw.len(), 1 + 8 + 16 + ciphertext_len(plaintext.len()) + 32);
        prop_assert_eq!(raw[0], 0x80);
        prop_assert_eq!(&raw[1..9], &timestamp.to_be_bytes());
        prop_assert_eq!(&raw[9..25], iv.as_bytes());

        let string = encrypt_to_string::<{ token_len(2000) }>(&key, &plaintext, timestamp, &iv);
        let string = string.expect("capacity for 2000 bytes");
        prop_assert_eq!(string.as_str(), token.as_str());

        let mut out = vec![0u8; decrypt_buffer_len(token.len())];
        let decrypted = decrypt(&key, token.as_bytes(), TimePolicy::Unchecked, &mut out);
        prop_assert_eq!(decrypted, Ok(&plaintext[..]));
        // At its own time a token is always valid, whatever the TTL.
        let fresh = TimePolicy::MaxAge { ttl, now: timestamp };
        prop_assert_eq!(decrypt(&key, token.as_bytes(), fresh, &mut out), Ok(&plaintext[..]));
        prop_assert_eq!(verified_timestamp(&key, token.as_bytes()), Ok(timestamp));

        let mut buffer = token.clone().into_bytes();
        let decrypted = decrypt_in_place(&key, &mut buffer, fresh);
        prop_assert_eq!(decrypted, Ok(&plaintext[..]));
    }

    #[test]
    fn the_time_rule_is_inclusive_and_never_overflows(
        (timestamp, ttl, now) in (time(), time())
            .prop_flat_map(|(timestamp, ttl)| (Just(timestamp), Just(ttl), clock(timestamp, ttl))),
        key in any::<[u8; 32]>(),
    ) {
        let key = Key::from_bytes(key);
        let token = make_token(&key, b"time", timestamp, &Iv::from_bytes([3; 16]));
        let policy = TimePolicy::MaxAge { ttl, now };
        let expected = expected_time_result(timestamp, ttl, now);
        prop_assert_eq!(policy.check(timestamp), expected);

        let mut out = [0u8; 16];
        let decrypted = decrypt(&key, token.as_bytes(), policy, &mut out).map(|_| ());
        prop_assert_eq!(decrypted, expected);
        let mut buffer = token.clone().into_bytes();
        let decrypted = decrypt_in_place(&key, &mut buffer, policy).map(|_| ());
        prop_assert_eq!(decrypted, expected);
        // Without a TTL there is no time check at all.
        let unchecked = decrypt(&key, token.as_bytes(), TimePolicy::Unchecked, &mut out);
        prop_assert_eq!(unchecked, Ok(&b"time"[..]));
    }

    #[test]
    fn garbage_never_panics(
        garbage in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..400),
            "[A-Za-z0-9_=-]{0,300}".prop_map(String::into_bytes),
            "[A-Za-z0-9_-]{0,300}={0,2}".prop_map(String::into_bytes),
            // Canonical base64url of random bytes behind the right version byte: passes the
            // encoding and version checks and reaches the length, time and MAC checks.
            prop::collection::vec(any::<u8>(), 0..300).prop_map(|mut raw| {
                raw.insert(0, 0x80);
                base64_encode(&raw).into_bytes()
            }),
        ],
        key in any::<[u8; 32]>(),
        out_len in 0usize..500,
        ttl in time(),
        now in time(),
        checked in any::<bool>(),
    ) {
        let key = Key::from_bytes(key);
        let policy = if checked { TimePolicy::MaxAge { ttl, now } } else { TimePolicy::Unchecked };
        let mut out = vec![0u8; out_len];
        prop_assert!(decrypt(&key, &garbage, policy, &mut out).is_err());
        prop_assert!(decrypt_in_place(&key, &mut garbage.clone(), policy).is_err());
        prop_assert!(verified_timestamp(&key, &garbage).is_err());

        let older = [Key::from_bytes([1; 32])];
        let ring = Keyring::new(&key, &older);
        prop_assert!(ring.decrypt(&garbage, policy, &mut out).is_err());
        let mut rotated = vec![0u8; out_len];
        let mut scratch = vec![0u8; out_len];
        let iv = Iv::from_bytes([0; 16]);
        prop_assert!(ring.rotate(&garbage, &iv, &mut scratch, &mut rotated).is_err());

        // A key's text has exactly one spelling: whatever parses is written back unchanged.
        if let Ok(parsed) = Key::parse(&garbage) {
            let text = parsed.to_text();
            prop_assert_eq!(text.as_bytes(), &garbage[..]);
        }
    }

    #[test]
    fn key_text_round_trips(key in any::<[u8; 32]>()) {
        let text = Key::from_bytes(key).to_text();
        prop_assert_eq!(text.as_str(), base64_encode(&key));
        prop_assert_eq!(Key::parse(text.as_bytes()), Ok(Key::from_bytes(key)));
    }

    #[test]
    fn sizes_are_exact(len in prop_oneof![0usize..5000, 0usize..1 << 40]) {
        // Independently: 57 bytes of overhead plus 1 to 16 bytes of padding, in base64.
        let ciphertext = (len / 16 + 1) * 16;
        prop_assert_eq!(ciphertext_len(len), ciphertext);
        prop_assert_eq!(token_len(len), (57 + ciphertext).div_ceil(3) * 4);
        prop_assert!(decrypt_buffer_len(token_len(len)) >= ciphertext);
        prop_assert!(token_len(len + 1) >= token_len(len));
    }

    #[test]
    fn too_small_buffers_say_what_they_need_and_change_nothing(
        plaintext in prop::collection::vec(any::<u8>(), 0..3000),
        short in any::<Index>(),
        key in any::<[u8; 32]>(),
        timestamp in time(),
    ) {
        let key = Key::from_bytes(key);
        let iv = Iv::from_bytes([9; 16]);
        let token = make_token(&key, &plaintext, timestamp, &iv);

        // Encrypt.
        let required = token_len(plaintext.len());
        let mut small = vec![0xA5u8; short.index(required)];
        let result = encrypt(&key, &plaintext, timestamp, &iv, &mut small).map(str::to_owned);
        prop_assert_eq!(result, Err(Error::BufferTooSmall { required }));
        prop_assert!(small.iter().all(|&b| b == 0xA5), "encrypt wrote into a short buffer");
        let mut exact = vec![0u8; required];
        let retried = encrypt(&key, &plaintext, timestamp, &iv, &mut exact);
        prop_assert_eq!(retried, Ok(token.as_str()));

        // Decrypt: the reported size is exactly the smallest that works.
        let mut tiny = [0xA5u8; 0];
        let Err(Error::BufferTooSmall { required }) =
            decrypt(&key, token.as_bytes(), TimePolicy::Unchecked, &mut tiny)
        else {
            return Err(TestCaseError::fail("an empty buffer was not too small"));
        };
        prop_assert_eq!(required, ciphertext_len(plaintext.len()));
        prop_assert!(required <= decrypt_buffer_len(token.len()));
        let mut small = vec![0xA5u8; short.index(required)];
        let result = decrypt(&key, token.as_bytes(), TimePolicy::Unchecked, &mut small);
        prop_assert_eq!(result, Err(Error::BufferTooSmall { required }));
        prop_assert!(small.iter().all(|&b| b == 0xA5), "decrypt wrote into a short buffer");
        let mut exact = vec![0u8; required];
        let retried = decrypt(&key, token.as_bytes(), TimePolicy::Unchecked, &mut exact);
        prop_assert_eq!(retried, Ok(&plaintext[..]));

        // A keyring reports the same, and so does rotation for its scratch and its output.
        let ring = Keyring::new(&key, &[]);
        let mut small = vec![0xA5u8; short.index(required)];
        let result = ring.decrypt(token.as_bytes(), TimePolicy::Unchecked, &mut small);
        prop_assert_eq!(result, Err(Error::BufferTooSmall { required }));
        prop_assert!(small.iter().all(|&b| b == 0xA5), "keyring wrote into a short buffer");

        let mut rotated = vec![0u8; token.len()];
        let result = ring.rotate(token.as_bytes(), &iv, &mut small, &mut rotated).map(str::to_owned);
        prop_assert_eq!(result, Err(Error::BufferTooSmall { required }));
        let mut scratch = vec![0u8; required];
        let mut short_out = vec![0xA5u8; short.index(token.len())];
        let result = ring.rotate(token.as_bytes(), &iv, &mut scratch, &mut short_out);
        let result = result.map(str::to_owned);
        prop_assert_eq!(result, Err(Error::BufferTooSmall { required: token.len() }));
        prop_assert!(short_out.iter().all(|&b| b == 0xA5), "rotate wrote into a short output");
        let left = &scratch[..plaintext.len()];
        prop_assert!(left.iter().all(|&b| b == 0), "rotate left plaintext in its scratch");
        let retried = ring.rotate(token.as_bytes(), &iv, &mut scratch, &mut rotated);
        prop_assert_eq!(retried, Ok(token.as_str()));
    }

    #[test]
    fn a_keyring_finds_its_key_at_any_position(
        keys in prop::collection::vec(any::<[u8; 32]>(), 1..8),
        position in any::<Index>(),
        plaintext in prop::collection::vec(any::<u8>(), 0..300),
        timestamp in time(),
    ) {
        let keys: Vec<Key> = keys.into_iter().map(Key::from_bytes).collect();
        let signer = &keys[position.index(keys.len())];
        let token = make_token(signer, &plaintext, timestamp, &Iv::from_bytes([4; 16]));
        let ring = Keyring::new(&keys[0], &keys[1..]);

        let mut out = vec![0u8; decrypt_buffer_len(token.len())];
        let decrypted = ring.decrypt(token.as_bytes(), TimePolicy::Unchecked, &mut out);
        prop_assert_eq!(decrypted, Ok(&plaintext[..]));

        // Rotation re-encrypts under the primary key and keeps the timestamp.
        let mut scratch = vec![0u8; out.len()];
        let mut rotated = vec![0u8; token.len()];
        let iv = Iv::from_bytes([5; 16]);
        let rotated = ring.rotate(token.as_bytes(), &iv, &mut scratch, &mut rotated);
        let rotated = rotated.expect("rotation").to_owned();
        prop_assert_eq!(verified_timestamp(&keys[0], rotated.as_bytes()), Ok(timestamp));
        let decrypted = decrypt(&keys[0], rotated.as_bytes(), TimePolicy::Unchecked, &mut out);
        prop_assert_eq!(decrypted, Ok(&plaintext[..]));

        // Without the signing key, no ring accepts the token.
        let others: Vec<Key> = keys.iter().filter(|&key| key != signer).cloned().collect();
        let stranger = Key::from_bytes([0xEE; 32]);
        prop_assume!(&stranger != signer);
        let ring = Keyring::new(&stranger, &others);
        let decrypted = ring.decrypt(token.as_bytes(), TimePolicy::Unchecked, &mut out);
        prop_assert_eq!(decrypted, Err(Error::InvalidToken));
    }
}

proptest! {
    // Each case tries every bit of a token, so fewer cases cover plenty.
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_single_bit_change_in_the_text_is_rejected(
        plaintext in prop::collection::vec(any::<u8>(), 0..64),
        key in any::<[u8; 32]>(),
        iv in any::<[u8; 16]>(),
        timestamp in time(),
    ) {
        let key = Key::from_bytes(key);
        let token = make_token(&key, &plaintext, timestamp, &Iv::from_bytes(iv));
        let mut out = vec![0u8; decrypt_buffer_len(token.len())];
        for position in 0..token.len() {
            for bit in 0..8 {
                let mut forged = token.clone().into_bytes();
                forged[position] ^= 1 << bit;
                let result = decrypt(&key, &forged, TimePolicy::Unchecked, &mut out);
                prop_assert!(result.is_err(), "accepted bit {} of character {}", bit, position);
                prop_assert!(decrypt_in_place(&key, &mut forged.clone(), TimePolicy::Unchecked).is_err());
                prop_assert!(verified_timestamp(&key, &forged).is_err());
            }
        }
    }

    #[test]
    fn any_single_bit_change_in_the_bytes_is_rejected(
        plaintext in prop::collection::vec(any::<u8>(), 0..64),
        key in any::<[u8; 32]>(),
        iv in any::<[u8; 16]>(),
        timestamp in time(),
    ) {
        let key = Key::from_bytes(key);
        let raw = base64_decode(&make_token(&key, &plaintext, timestamp, &Iv::from_bytes(iv)));
        let mut out = vec![0u8; raw.len()];
        for position in 0..raw.len() {
            for bit in 0..8 {
                let mut forged = raw.clone();
                forged[position] ^= 1 << bit;
                let forged = base64_encode(&forged);
                // The version byte is checked first; any other change breaks the MAC.
                let expected = if position == 0 {
                    Error::UnsupportedVersion
                } else {
                    Error::InvalidToken
                };
                let result = decrypt(&key, forged.as_bytes(), TimePolicy::Unchecked, &mut out);
                prop_assert_eq!(result, Err(expected), "bit {} of byte {}", bit, position);
                let mut buffer = forged.clone().into_bytes();
                let result = decrypt_in_place(&key, &mut buffer, TimePolicy::Unchecked);
                prop_assert_eq!(result, Err(expected));
                prop_assert_eq!(verified_timestamp(&key, forged.as_bytes()), Err(expected));
            }
        }
    }
}

#[test]
fn the_base64_helpers_agree_with_the_spec_token() {
    let token = "gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==";
    let raw = base64_decode(token);
    assert_eq!(raw.len(), 73);
    assert_eq!(raw[0], 0x80);
    assert_eq!(raw[1..9], 499_162_800u64.to_be_bytes());
    assert_eq!(raw[9..25], core::array::from_fn::<u8, 16, _>(|i| i as u8));
    assert_eq!(base64_encode(&raw), token);
    assert_eq!(base64_encode(b"\xfb\xff"), "-_8=");
    assert_eq!(base64_decode("-_8="), b"\xfb\xff");
}
