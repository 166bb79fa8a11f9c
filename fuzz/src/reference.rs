//! An independent Fernet, written here from the specification with RustCrypto's `hmac`, `sha2`,
//! `aes`, `cbc` and `base64ct`, as the oracle of differential checks. The core streams its
//! tokens through its own chunked CBC and MAC loop and a lookup-table base64url; this uses
//! neither. Its crates are deliberately the previous RustCrypto generation (hmac 0.12, sha2
//! 0.10, aes 0.8, cbc 0.1) while the core uses the current one: the primitives are then
//! separate releases of the same projects, not the very code the core calls.
//!
//! It follows the check order aeschat documents (vectors/README.md): canonical base64url,
//! version, length, time (only with a TTL, without overflow), HMAC, then padding.

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use aeschat_core::fernet::{Error, TimePolicy, MAX_CLOCK_SKEW};
use base64ct::{Base64Url, Encoding};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const OVERHEAD: usize = 1 + 8 + 16 + 32;

/// The documented time rule: valid iff `timestamp + ttl >= now` and `timestamp <= now + 60`,
/// as mathematical (not wrapping) sums; expiry is checked first.
pub fn check_time(policy: TimePolicy, timestamp: u64) -> Result<(), Error> {
    let TimePolicy::MaxAge { ttl, now } = policy else {
        return Ok(());
    };
    if u128::from(timestamp) + u128::from(ttl) < u128::from(now) {
        Err(Error::Expired)
    } else if u128::from(timestamp) > u128::from(now) + u128::from(MAX_CLOCK_SKEW) {
        Err(Error::FromTheFuture)
    } else {
        Ok(())
    }
}

fn tag(key: &[u8; 32], signed: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(&key[..16]).expect("any key length");
    mac.update(signed);
    mac
}

/// A token that passed the structural checks: its raw bytes.
pub struct Raw(pub Vec<u8>);

impl Raw {
    pub fn timestamp(&self) -> u64 {
        u64::from_be_bytes(self.0[1..9].try_into().expect("8 bytes"))
    }

    pub fn iv(&self) -> [u8; 16] {
        self.0[9..25].try_into().expect("16 bytes")
    }

    pub fn ciphertext(&self) -> &[u8] {
        &self.0[25..self.0.len() - 32]
    }

    /// Whether the HMAC is right under `key`.
    pub fn authentic(&self, key: &[u8; 32]) -> bool {
        let (signed, mac) = self.0.split_at(self.0.len() - 32);
        tag(key, signed).verify_slice(mac).is_ok()
    }
}

/// The structural checks: canonical padded base64url, version, length.
pub fn parse(token: &[u8]) -> Result<Raw, Error> {
    let text = core::str::from_utf8(token).map_err(|_| Error::TokenEncoding)?;
    let raw = Base64Url::decode_vec(text).map_err(|_| Error::TokenEncoding)?;
    if raw.is_empty() {
        return Err(Error::TokenEncoding);
    }
    if raw[0] != 0x80 {
        return Err(Error::UnsupportedVersion);
    }
    if raw.len() < OVERHEAD + 16 || (raw.len() - OVERHEAD) % 16 != 0 {
        return Err(Error::TokenLength);
    }
    Ok(Raw(raw))
}

/// Decrypts as the specification says, returning the timestamp and plaintext.
pub fn decrypt(key: &[u8; 32], token: &[u8], policy: TimePolicy) -> Result<(u64, Vec<u8>), Error> {
    let raw = parse(token)?;
    check_time(policy, raw.timestamp())?;
    if !raw.authentic(key) {
        return Err(Error::InvalidToken);
    }
    let plaintext = cbc::Decryptor::<aes::Aes128>::new(key[16..].into(), &raw.iv().into())
        .decrypt_padded_vec_mut::<Pkcs7>(raw.ciphertext())
        .map_err(|_| Error::InvalidToken)?;
    Ok((raw.timestamp(), plaintext))
}

/// Encrypts as the specification says.
pub fn encrypt(key: &[u8; 32], plaintext: &[u8], timestamp: u64, iv: &[u8; 16]) -> String {
    let ciphertext = cbc::Encryptor::<aes::Aes128>::new(key[16..].into(), iv.into())
        .encrypt_padded_vec_mut::<Pkcs7>(plaintext);
    let mut raw = vec![0x80];
    raw.extend_from_slice(&timestamp.to_be_bytes());
    raw.extend_from_slice(iv);
    raw.extend_from_slice(&ciphertext);
    let mac = tag(key, &raw).finalize().into_bytes();
    raw.extend_from_slice(&mac);
    Base64Url::encode_string(&raw)
}
