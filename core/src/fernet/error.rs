//! The token layer's error type.

use core::fmt;

/// Everything that can go wrong with a key, a token or a keyring, as one small `Copy` enum.
///
/// Structural problems (encoding, length, version, time, buffer size) are reported precisely,
/// because they help a caller fix their input and tell an attacker nothing new. A wrong MAC and
/// a bad padding are deliberately the same variant, [`Error::InvalidToken`]: telling them apart
/// would give an attacker a padding oracle. No variant ever carries key or plaintext bytes.
///
/// ```
/// use aeschat_core::fernet::{Error, Key};
///
/// let err = Key::parse(b"not a key").unwrap_err();
/// assert_eq!(err, Error::KeyLength);
/// assert!(err.to_string().contains("44 characters"));
/// ```
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// A key's text is not 44 characters long.
    KeyLength,
    /// A key's text is 44 characters but not canonical, padded base64url of 32 bytes.
    KeyEncoding,
    /// A token is not canonical, padded base64url (wrong alphabet, missing or extra padding,
    /// whitespace, non-zero unused bits, or text after the padding).
    TokenEncoding,
    /// A token decodes to a length no Fernet token can have.
    TokenLength,
    /// A token's version byte is not 0x80.
    UnsupportedVersion,
    /// A token's timestamp is older than the allowed age.
    Expired,
    /// A token's timestamp is more than the allowed clock skew ahead of `now`.
    FromTheFuture,
    /// A token failed authentication: wrong key, altered bytes, or bad padding under a valid MAC.
    InvalidToken,
    /// An output buffer is too small; nothing was written and the call can be retried.
    BufferTooSmall {
        /// The number of bytes the buffer must hold.
        required: usize,
    },
    /// A plaintext is longer than the caller's fixed capacity allows.
    MessageTooLong {
        /// The largest plaintext length accepted.
        max: usize,
    },
    /// The random number generator failed (the operating system's, or the one the caller
    /// passed).
    Randomness,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::KeyLength => f.write_str(
                "The key is not a Fernet key: it must be exactly 44 characters of base64url \
                 (32 bytes).",
            ),
            Error::KeyEncoding => f.write_str(
                "The key is not valid base64url: use only A-Z, a-z, 0-9, '-' and '_', ending in \
                 one '='.",
            ),
            Error::TokenEncoding => f.write_str(
                "The token is not canonical base64url: it contains characters outside \
                 A-Z a-z 0-9 - _, whitespace, wrong padding, or text after the padding.",
            ),
            Error::TokenLength => f.write_str(
                "The token has an impossible length: it was truncated or padded with extra data.",
            ),
            Error::UnsupportedVersion => {
                f.write_str("The token does not start with the Fernet version byte 0x80.")
            }
            Error::Expired => {
                f.write_str("The token has expired: it is older than the allowed age.")
            }
            Error::FromTheFuture => f.write_str(
                "The token's timestamp is in the future beyond the allowed clock skew: check both \
                 clocks.",
            ),
            Error::InvalidToken => f.write_str(
                "The token is not authentic: it was made with a different key or altered in \
                 transit.",
            ),
            Error::BufferTooSmall { required } => write!(
                f,
                "The output buffer is too small: it must hold at least {required} bytes."
            ),
            Error::MessageTooLong { max } => write!(
                f,
                "The message is too long: at most {max} bytes fit in one message."
            ),
            Error::Randomness => f.write_str(
                "The random number generator failed: no fresh nonce or IV could be drawn, so \
                 nothing was sent.",
            ),
        }
    }
}

impl core::error::Error for Error {}
