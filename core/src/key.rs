//! Fernet keys: 32 bytes, a signing half and an encryption half, written as base64url.

use aes::cipher::KeyInit;
use aes::{Aes128Dec, Aes128Enc};
use base64ct::{Base64Url, Encoding};
use core::fmt;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::token::{self, MacKey, TimePolicy};
use crate::{fernet::Error, token::Iv};

/// The length of a key in bytes: 16 for HMAC-SHA256 signing, then 16 for AES-128 encryption.
pub const KEY_LEN: usize = 32;

/// The length of a key's text: padded base64url of [`KEY_LEN`] bytes.
pub const KEY_TEXT_LEN: usize = 44;

/// A Fernet key. Its bytes never appear in `Debug` output and are wiped when it is dropped.
///
/// ```
/// use aeschat_core::fernet::Key;
///
/// let key = Key::parse(b"cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=")?;
/// assert_eq!(key.to_text().as_str(), "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=");
/// assert_eq!(format!("{key:?}"), "Key(..)");
/// # Ok::<(), aeschat_core::fernet::Error>(())
/// ```
#[derive(Clone)]
pub struct Key {
    bytes: [u8; KEY_LEN],
}

impl Key {
    /// Builds a key from 32 bytes, which must come from a cryptographically secure source
    /// (a random number generator or a key derivation function).
    ///
    /// ```
    /// # use aeschat_core::fernet::Key;
    /// let key = Key::from_bytes([7; 32]);
    /// assert_eq!(key.to_text().as_str(), "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=");
    /// ```
    pub const fn from_bytes(bytes: [u8; KEY_LEN]) -> Key {
        Key { bytes }
    }

    /// Parses a key's text: exactly 44 characters of canonical, padded base64url.
    /// Nothing is trimmed: a caller reading a key file strips its line ending first.
    ///
    /// ```
    /// # use aeschat_core::fernet::{Error, Key};
    /// assert!(Key::parse(b"cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=").is_ok());
    /// assert_eq!(Key::parse(b"cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4").unwrap_err(), Error::KeyLength);
    /// assert_eq!(Key::parse(b"cw/0x689RpI+jtRR7oE8h/eQsKImvJapLeSbXpwF4e4=").unwrap_err(), Error::KeyEncoding);
    /// ```
    pub fn parse(text: &[u8]) -> Result<Key, Error> {
        if text.len() != KEY_TEXT_LEN {
            return Err(Error::KeyLength);
        }
        let mut bytes = [0u8; KEY_LEN];
        match Base64Url::decode(text, &mut bytes) {
            Ok(decoded) if decoded.len() == KEY_LEN => Ok(Key { bytes }),
            _ => {
                bytes.zeroize();
                Err(Error::KeyEncoding)
            }
        }
    }

    /// Draws a new key from the operating system's random number generator.
    ///
    /// ```
    /// # use aeschat_core::fernet::Key;
    /// let key = Key::generate()?;
    /// assert_eq!(key.to_text().as_str().len(), 44);
    /// # Ok::<(), aeschat_core::fernet::Error>(())
    /// ```
    #[cfg(feature = "getrandom")]
    #[cfg_attr(docsrs, doc(cfg(feature = "getrandom")))]
    pub fn generate() -> Result<Key, Error> {
        let mut bytes = [0u8; KEY_LEN];
        getrandom::fill(&mut bytes).map_err(|_| Error::Randomness)?;
        Ok(Key { bytes })
    }

    /// Writes the key as its 44-character text. The text is wiped when dropped.
    ///
    /// ```
    /// # use aeschat_core::fernet::Key;
    /// let text = Key::from_bytes([0; 32]).to_text();
    /// assert_eq!(text.as_str(), "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    /// ```
    pub fn to_text(&self) -> KeyText {
        let mut text = KeyText {
            bytes: [0u8; KEY_TEXT_LEN],
        };
        // Cannot fail: the destination is exactly the encoded length of 32 bytes.
        let _ = Base64Url::encode(&self.bytes, &mut text.bytes);
        text
    }

    /// All 32 bytes, for key derivation.
    pub(crate) fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }

    /// The HMAC-SHA256 state after the signing half's pad blocks.
    pub(crate) fn mac_key(&self) -> MacKey {
        let (signing, _) = self.halves();
        MacKey::new(signing)
    }

    /// The AES-128 encryption key schedule of the encryption half.
    pub(crate) fn aes_enc(&self) -> Aes128Enc {
        let (_, encryption) = self.halves();
        Aes128Enc::new(encryption.into())
    }

    /// The AES-128 decryption key schedule of the encryption half.
    pub(crate) fn aes_dec(&self) -> Aes128Dec {
        let (_, encryption) = self.halves();
        Aes128Dec::new(encryption.into())
    }

    /// The 16-byte HMAC-SHA256 signing key and the 16-byte AES-128 encryption key.
    fn halves(&self) -> (&[u8; 16], &[u8; 16]) {
        let (signing, encryption) = self.bytes.split_at(16);
        // Both conversions succeed: 32 bytes split at 16 are two halves of 16.
        match (signing.try_into(), encryption.try_into()) {
            (Ok(signing), Ok(encryption)) => (signing, encryption),
            _ => (&[0; 16], &[0; 16]),
        }
    }
}

impl PartialEq for Key {
    /// Compares in constant time, so comparing keys leaks nothing about where they differ.
    fn eq(&self, other: &Key) -> bool {
        self.bytes.ct_eq(&other.bytes).into()
    }
}

impl Eq for Key {}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

/// A key written as text (44 characters of base64url), wiped when dropped.
///
/// ```
/// # use aeschat_core::fernet::Key;
/// let text = Key::from_bytes([1; 32]).to_text();
/// assert_eq!(Key::parse(text.as_bytes())?, Key::from_bytes([1; 32]));
/// # Ok::<(), aeschat_core::fernet::Error>(())
/// ```
pub struct KeyText {
    bytes: [u8; KEY_TEXT_LEN],
}

impl KeyText {
    /// The text as a string slice.
    pub fn as_str(&self) -> &str {
        // base64url output is ASCII, so this never fails.
        core::str::from_utf8(&self.bytes).unwrap_or("")
    }

    /// The text as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for KeyText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyText(..)")
    }
}

impl Drop for KeyText {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

/// A key made ready for many tokens: both AES-128 key schedules and the HMAC-SHA256 state
/// after the signing key's pad blocks, computed once instead of for every token. The plain
/// functions ([`crate::fernet::encrypt`], [`crate::fernet::decrypt`]) prepare the key on each call; an
/// application that encrypts or decrypts many tokens under one key keeps one of these.
/// Everything it holds is wiped when it is dropped.
///
/// ```
/// use aeschat_core::fernet::{token_len, Iv, Key, PreparedKey, TimePolicy};
///
/// let key = PreparedKey::new(&Key::from_bytes([42; 32]));
/// let mut token = [0u8; token_len(5)];
/// let token = key.encrypt(b"hello", 1_700_000_000, &Iv::from_bytes([7; 16]), &mut token)?;
/// let mut out = [0u8; 64];
/// assert_eq!(key.decrypt(token.as_bytes(), TimePolicy::Unchecked, &mut out)?, b"hello");
/// # Ok::<(), aeschat_core::fernet::Error>(())
/// ```
#[derive(Clone)]
pub struct PreparedKey {
    aes_enc: Aes128Enc,
    aes_dec: Aes128Dec,
    mac: MacKey,
}

impl PreparedKey {
    /// Expands `key` once.
    pub fn new(key: &Key) -> PreparedKey {
        PreparedKey {
            aes_enc: key.aes_enc(),
            aes_dec: key.aes_dec(),
            mac: key.mac_key(),
        }
    }

    /// Like [`crate::fernet::encrypt`], with the prepared key.
    pub fn encrypt<'o>(
        &self,
        plaintext: &[u8],
        timestamp: u64,
        iv: &Iv,
        out: &'o mut [u8],
    ) -> Result<&'o str, Error> {
        token::seal(
            &self.aes_enc,
            self.mac.start(),
            &[plaintext],
            timestamp,
            iv,
            out,
        )
    }

    /// Like [`crate::fernet::decrypt`], with the prepared key.
    pub fn decrypt<'o>(
        &self,
        token: &[u8],
        policy: TimePolicy,
        out: &'o mut [u8],
    ) -> Result<&'o [u8], Error> {
        let (_, plaintext) =
            token::open_with(self.mac.start(), || &self.aes_dec, token, policy, out)?;
        Ok(plaintext)
    }

    /// Like [`crate::fernet::decrypt_in_place`], with the prepared key.
    pub fn decrypt_in_place<'b>(
        &self,
        buffer: &'b mut [u8],
        policy: TimePolicy,
    ) -> Result<&'b [u8], Error> {
        token::open_in_place_with(self.mac.start(), || &self.aes_dec, buffer, policy)
    }
}

impl fmt::Debug for PreparedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PreparedKey(..)")
    }
}
