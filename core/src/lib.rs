//! # aeschat-core
//!
//! Fernet tokens and the aeschat secure session, for any target: `#![no_std]`, no heap, no
//! `unsafe`, and no panic on any input. Time and randomness are always arguments, so the same
//! code runs on a desktop and on a board with no clock and no operating system.
//!
//! The API comes in two layers, each with its own error type:
//!
//! - [`fernet`]: keys, tokens and key rotation. A Fernet token is AES-128-CBC with PKCS#7
//!   padding, authenticated by HMAC-SHA256, under a 256-bit key split in two halves (signing,
//!   then encryption), written as base64url. Its errors are [`fernet::Error`].
//! - [`session`]: the aeschat handshake and the established session built on those tokens, as
//!   one sans-IO [`Engine`](session::Engine) that splits into a sending and a receiving half,
//!   with blocking drivers over any `embedded-io` transport (and async ones in `asynch`, with
//!   the `async` feature). Its errors are [`session::Error`].
//!
//! [`cpace`] is the password-authenticated key exchange and [`relay`] the framing of the relay
//! that joins two parties by a short code.
//!
//! ```
//! use aeschat_core::fernet::{decrypt, decrypt_buffer_len, encrypt, token_len, Iv, Key, TimePolicy};
//!
//! let key = Key::from_bytes([42; 32]); // use Key::generate() or your board's RNG
//! let mut token = [0u8; token_len(11)];
//! let token = encrypt(&key, b"hello board", 1_700_000_000, &Iv::from_bytes([7; 16]), &mut token)?;
//!
//! let mut plaintext = [0u8; decrypt_buffer_len(token_len(11))];
//! let policy = TimePolicy::MaxAge { ttl: 60, now: 1_700_000_030 };
//! assert_eq!(decrypt(&key, token.as_bytes(), policy, &mut plaintext)?, b"hello board");
//! # Ok::<(), aeschat_core::fernet::Error>(())
//! ```
//!
//! The session layer on top: an established pair of engines (here taken through the handshake
//! in memory) splits into halves; each record is a token under its direction's key, and a
//! record that fails to open ends the session with [`session::Error::RecordRejected`].
//!
//! ```
//! use aeschat_core::session::{record_frame_len, Error, Incoming};
//! # include!("doc/established_pair.rs");
//! # fn main() -> Result<(), Error> {
//! let (mut client, mut server) = established_pair();
//! let (mut sender, _) = client.split()?;
//! let (_, mut receiver) = server.split()?;
//!
//! let mut wire = [0u8; record_frame_len(11)];
//! let len = sender.seal_text(b"hello board", &mut Os, Some(1_700_000_000), &mut wire)?.len();
//! let received = receiver.poll(&mut wire[..len]);
//! assert_eq!(received.result, Ok(Some(Incoming::Text(b"hello board"))));
//!
//! let len = sender.seal_text(b"hello again", &mut Os, None, &mut wire)?.len();
//! wire[len - 1] ^= 1; // altered in transit
//! assert_eq!(receiver.poll(&mut wire[..len]).result, Err(Error::RecordRejected));
//! # Ok(()) }
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
pub mod fernet;
mod frame;
mod handshake;
mod inbox;
#[cfg(feature = "getrandom")]
mod ivs;
mod kdf;
mod key;
mod keyring;
mod mac;
// The records of an established session (`session.rs`); its public items are re-exported by
// the `session` layer below, which takes the name.
#[path = "session.rs"]
mod records;
pub mod relay;
#[path = "session_api.rs"]
pub mod session;
mod token;
mod transport;

/// The `embedded-io` release the transport traits come from, for callers that name its types.
pub use embedded_io;
/// The `rand_core` release whose `CryptoRng` the engine draws nonces and IVs from.
pub use rand_core;
