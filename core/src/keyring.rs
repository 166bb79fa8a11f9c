//! Key rotation in the manner of the reference's `MultiFernet`: one primary key that encrypts,
//! any number of older keys that are still accepted.

use crate::fernet::{Error, Iv, Key};
use crate::token::{self, TimePolicy};

/// A primary key and the older keys still accepted for decryption.
///
/// ```
/// use aeschat_core::fernet::{encrypt, token_len, Iv, Key, Keyring, TimePolicy};
///
/// let (old, new) = (Key::from_bytes([1; 32]), Key::from_bytes([2; 32]));
/// let mut token = [0u8; token_len(2)];
/// let token = encrypt(&old, b"hi", 1000, &Iv::from_bytes([0; 16]), &mut token)?;
///
/// let older = [old];
/// let keyring = Keyring::new(&new, &older);
/// let mut out = [0u8; 64];
/// assert_eq!(keyring.decrypt(token.as_bytes(), TimePolicy::Unchecked, &mut out)?, b"hi");
/// # Ok::<(), aeschat_core::fernet::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Keyring<'k> {
    primary: &'k Key,
    older: &'k [Key],
}

impl<'k> Keyring<'k> {
    /// A keyring that encrypts with `primary` and also accepts tokens made with `older` keys.
    pub const fn new(primary: &'k Key, older: &'k [Key]) -> Keyring<'k> {
        Keyring { primary, older }
    }

    /// Decrypts with the first key, primary first, under which the token is authentic. The time
    /// policy applies whichever key matches; a structural or time error is final, since no key
    /// can change it.
    pub fn decrypt<'o>(
        &self,
        token: &[u8],
        policy: TimePolicy,
        out: &'o mut [u8],
    ) -> Result<&'o [u8], Error> {
        let (_, range) = self.open(token, policy, out)?;
        out.get(range).ok_or(Error::InvalidToken)
    }

    /// Re-encrypts a token under the primary key with a fresh IV, keeping its original timestamp
    /// (no time check, as in the reference). `scratch` holds the plaintext meanwhile (it needs
    /// [`crate::fernet::decrypt_buffer_len`]`(token.len())` bytes) and is wiped afterwards; `out`
    /// receives the new token ([`crate::fernet::token_len`] of the plaintext length; at most
    /// `token_len(decrypt_buffer_len(token.len()))` bytes, so that size always suffices).
    ///
    /// ```
    /// use aeschat_core::fernet::{encrypt, token_len, verified_timestamp, Iv, Key, Keyring};
    ///
    /// let (old, new) = (Key::from_bytes([1; 32]), Key::from_bytes([2; 32]));
    /// let mut buf = [0u8; token_len(2)];
    /// let token = encrypt(&old, b"hi", 1000, &Iv::from_bytes([0; 16]), &mut buf)?;
    ///
    /// let older = [old];
    /// let (mut scratch, mut out) = ([0u8; 64], [0u8; 128]);
    /// let rotated = Keyring::new(&new, &older)
    ///     .rotate(token.as_bytes(), &Iv::from_bytes([5; 16]), &mut scratch, &mut out)?;
    /// assert_eq!(verified_timestamp(&new, rotated.as_bytes())?, 1000);
    /// # Ok::<(), aeschat_core::fernet::Error>(())
    /// ```
    pub fn rotate<'o>(
        &self,
        token: &[u8],
        iv: &Iv,
        scratch: &mut [u8],
        out: &'o mut [u8],
    ) -> Result<&'o str, Error> {
        let (timestamp, range) = self.open(token, TimePolicy::Unchecked, scratch)?;
        let plaintext = scratch.get(range).ok_or(Error::InvalidToken)?;
        let rotated = token::encrypt(self.primary, plaintext, timestamp, iv, out);
        // Wipe all of it: the padding bytes after the plaintext were decrypted there too.
        zeroize::Zeroize::zeroize(scratch);
        rotated
    }

    fn open(
        &self,
        token: &[u8],
        policy: TimePolicy,
        out: &mut [u8],
    ) -> Result<(u64, core::ops::Range<usize>), Error> {
        for key in core::iter::once(self.primary).chain(self.older) {
            match token::open(key, token, policy, out) {
                Ok((timestamp, plaintext)) => return Ok((timestamp, 0..plaintext.len())),
                Err(Error::InvalidToken) => continue,
                Err(other) => return Err(other),
            }
        }
        Err(Error::InvalidToken)
    }
}
