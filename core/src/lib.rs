//! # aeschat-core
//!
//! Fernet tokens and the aeschat secure session, for any target: `#![no_std]`, no heap, no
//! `unsafe`, and no panic on any input. Time and randomness are always arguments, so the same
//! code runs on a desktop and on a board with no clock and no operating system.
//!
//! A Fernet token is AES-128-CBC with PKCS#7 padding, authenticated by HMAC-SHA256, under a
//! 256-bit key split in two halves (signing, then encryption), written as base64url.
//!
//! ```
//! use aeschat_core::{decrypt, decrypt_buffer_len, encrypt, token_len, Iv, Key, TimePolicy};
//!
//! let key = Key::from_bytes([42; 32]); // use Key::generate() or your board's RNG
//! let mut token = [0u8; token_len(11)];
//! let token = encrypt(&key, b"hello board", 1_700_000_000, &Iv::from_bytes([7; 16]), &mut token)?;
//!
//! let mut plaintext = [0u8; decrypt_buffer_len(token_len(11))];
//! let policy = TimePolicy::MaxAge { ttl: 60, now: 1_700_000_030 };
//! assert_eq!(decrypt(&key, token.as_bytes(), policy, &mut plaintext)?, b"hello board");
//! # Ok::<(), aeschat_core::Error>(())
//! ```
#![no_std]
// The guarantee a reviewer looks for first, where it is seen: no `unsafe` anywhere in the core
// (forbid, so no inner `allow` can lift it). The other lints are in [workspace.lints].
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "async")]
#[cfg_attr(docsrs, doc(cfg(feature = "async")))]
pub mod asynch;
mod base64;
pub mod cpace;
mod driver;
mod engine;
mod error;
mod frame;
mod handshake;
mod inbox;
#[cfg(feature = "getrandom")]
mod ivs;
mod kdf;
mod key;
mod keyring;
mod mac;
pub mod relay;
mod session;
mod token;
mod transport;

pub use driver::{handshake, handshake_admitting, receive, send_close, send_text, SessionError};
/// The `embedded-io` release the transport traits come from, for callers that name its types.
pub use embedded_io;
pub use engine::{Action, Engine, Step};
pub use frame::{write_frame, Frame, FrameKind, FRAME_HEADER_LEN};
pub use handshake::{
    Alert, Config, Derivation, Handshake, HandshakeState, Role, Secret, DEFAULT_ITERATIONS,
    HANDSHAKE_FRAME_LEN, MAX_ITERATIONS, NONCE_LEN, PROTOCOL_MAGIC, PROTOCOL_VERSION,
};
pub use inbox::Inbox;
/// The `rand_core` release whose `CryptoRng` the engine draws nonces and IVs from.
pub use rand_core;
pub use session::{
    frame_capacity, record_frame_len, Incoming, Received, Receiver, Sender, Session,
    DEFAULT_FRAME_CAPACITY, MAX_MESSAGE_LEN, RECORD_HEADER_LEN,
};
pub use transport::{ErrorKind, ErrorType, Read, TransportError, Write};

pub use error::Error;
#[cfg(feature = "getrandom")]
#[cfg_attr(docsrs, doc(cfg(feature = "getrandom")))]
pub use ivs::{IvPool, DEFAULT_POOL_IVS};
pub use key::{Key, KeyText, PreparedKey, KEY_LEN, KEY_TEXT_LEN};
pub use keyring::Keyring;
pub use token::{
    ciphertext_len, decrypt, decrypt_buffer_len, decrypt_in_place, encrypt, encrypt_to_string,
    token_len, verified_timestamp, Iv, TimePolicy, FERNET_VERSION, IV_LEN, MAX_CLOCK_SKEW,
};
