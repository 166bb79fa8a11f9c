//! The token layer: Fernet keys, tokens and key rotation, with their own [`Error`].
//!
//! A Fernet token is AES-128-CBC with PKCS#7 padding, authenticated by HMAC-SHA256, under a
//! 256-bit key split in two halves (signing, then encryption), written as base64url. This layer
//! knows nothing of the chat protocol; [`session`](crate::session) builds on it.
//!
//! ```
//! use aeschat_core::fernet::{decrypt, encrypt, token_len, Error, Iv, Key, TimePolicy};
//!
//! let key = Key::from_bytes([42; 32]);
//! let mut token = [0u8; token_len(5)];
//! let token = encrypt(&key, b"hello", 1_700_000_000, &Iv::from_bytes([7; 16]), &mut token)?;
//! let mut plaintext = [0u8; 16];
//! let other = Key::from_bytes([1; 32]);
//! let result = decrypt(&other, token.as_bytes(), TimePolicy::Unchecked, &mut plaintext);
//! assert_eq!(result, Err(Error::InvalidToken));
//! # Ok::<(), Error>(())
//! ```

mod error;

#[cfg(feature = "getrandom")]
#[cfg_attr(docsrs, doc(cfg(feature = "getrandom")))]
pub use crate::ivs::{IvPool, DEFAULT_POOL_IVS};
pub use crate::key::{Key, KeyText, PreparedKey, KEY_LEN, KEY_TEXT_LEN};
pub use crate::keyring::Keyring;
pub use crate::token::{
    ciphertext_len, decrypt, decrypt_buffer_len, decrypt_in_place, encrypt, encrypt_to_string,
    token_len, verified_timestamp, Iv, TimePolicy, FERNET_VERSION, IV_LEN, MAX_CLOCK_SKEW,
};
pub use error::Error;
