//! Fernet keys: 32 bytes, a signing half and an encryption half, written as base64url.

// This module parses attacker-controlled bytes: no indexing that could panic, no unchecked arithmetic.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use base64ct::{Base64Url, Encoding};
use core::fmt;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::Error;

/// The length of a key in bytes: 16 for HMAC-SHA256 signing, then 16 for AES-128 encryption.
pub const KEY_LEN: usize = 32;

/// The length of a key's text: padded base64url of [`KEY_LEN`] bytes.
pub const KEY_TEXT_LEN: usize = 44;

/// A Fernet key. Its bytes never appear in `Debug` output and are wiped when it is dropped.
///
/// ```
/// use aeschat_core::Key;
///
/// let key = Key::parse(b"cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=")?;
/// assert_eq!(key.to_text().as_str(), "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=");
/// assert_eq!(format!("{key:?}"), "Key(..)");
/// # Ok::<(), aeschat_core::Error>(())
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
    /// # use aeschat_core::Key;
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
    /// # use aeschat_core::{Error, Key};
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
    /// # use aeschat_core::Key;
    /// let key = Key::generate()?;
    /// assert_eq!(key.to_text().as_str().len(), 44);
    /// # Ok::<(), aeschat_core::Error>(())
    /// ```
    #[cfg(feature = "getrandom")]
    pub fn generate() -> Result<Key, Error> {
        let mut bytes = [0u8; KEY_LEN];
        getrandom::getrandom(&mut bytes).map_err(|_| Error::Randomness)?;
        Ok(Key { bytes })
    }

    /// Writes the key as its 44-character text. The text is wiped when dropped.
    ///
    /// ```
    /// # use aeschat_core::Key;
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

    /// The 16-byte HMAC-SHA256 signing key.
    pub(crate) fn signing(&self) -> &[u8] {
        self.bytes.get(..16).unwrap_or(&[])
    }

    /// The 16-byte AES-128 encryption key.
    pub(crate) fn encryption(&self) -> &[u8] {
        self.bytes.get(16..).unwrap_or(&[])
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
/// # use aeschat_core::Key;
/// let text = Key::from_bytes([1; 32]).to_text();
/// assert_eq!(Key::parse(text.as_bytes())?, Key::from_bytes([1; 32]));
/// # Ok::<(), aeschat_core::Error>(())
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
