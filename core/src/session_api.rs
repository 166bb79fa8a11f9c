//! The session layer: the aeschat handshake, the established session and its halves, the
//! sans-IO [`Engine`] that owns every protocol rule, and the blocking drivers over any
//! `embedded-io` transport, with their own [`Error`].
//!
//! Keys come from [`fernet`](crate::fernet); token problems never surface here: a record that
//! fails to open is [`Error::RecordRejected`].
//!
//! ```
//! use aeschat_core::fernet::Key;
//! use aeschat_core::session::{handshake, Config, Engine, Error, Inbox, Role, Secret};
//! # include!("doc/established_pair.rs");
//! # fn main() -> Result<(), Error> {
//! let key = Key::from_bytes([7; 32]);
//! let mut client = Engine::new(Config::new(Role::Client, Secret::PreSharedKey(&key)), &mut Os, None);
//! let mut inbox = Inbox::new(vec![0u8; client.input_capacity()]);
//!
//! // A server that hangs up at once.
//! let (mut from_server, mut to_server): (&[u8], Vec<u8>) = (&[], Vec::new());
//! let result = handshake(&mut from_server, &mut to_server, &mut inbox, &mut client);
//! assert_eq!(result, Err(Error::HandshakeInterrupted.into()));
//! # Ok(()) }
//! ```

pub use crate::driver::{
    handshake, handshake_admitting, receive, send_close, send_text, SessionError,
};
pub use crate::engine::{Action, Engine, Step};
pub use crate::error::Error;
pub use crate::frame::{write_frame, Frame, FrameKind, FRAME_HEADER_LEN};
pub use crate::handshake::{
    Alert, Config, Handshake, HandshakeState, Role, Secret, HANDSHAKE_FRAME_LEN, NONCE_LEN,
    PROTOCOL_MAGIC, PROTOCOL_VERSION, SCALAR_SEED_LEN,
};
pub use crate::inbox::Inbox;
pub use crate::records::{
    frame_capacity, record_frame_len, Incoming, Received, Receiver, Sender, Session,
    DEFAULT_FRAME_CAPACITY, MAX_MESSAGE_LEN, RECORD_HEADER_LEN,
};
pub use crate::transport::{ErrorKind, ErrorType, Read, TransportError, Write};
