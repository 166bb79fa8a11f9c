//! The session layer's error type: the handshake, records, frames and drivers.

use core::fmt;

use crate::fernet::Error as FernetError;

/// Everything that can go wrong in a handshake or an established session, as one small `Copy`
/// enum. Key and token problems are [`fernet::Error`](crate::fernet::Error) instead: a record
/// that fails to open is [`Error::RecordRejected`], whatever the token layer found.
///
/// Structural problems (framing, versions, modes, buffer size) are reported
/// precisely, because they help a caller fix their setup and tell an attacker nothing new. No
/// variant ever carries key or plaintext bytes.
///
/// ```
/// use aeschat_core::session::Error;
///
/// let err = Error::RecordOutOfOrder { expected: 3, received: 5 };
/// assert!(err.to_string().contains("expected number 3, got 5"));
/// ```
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
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
    /// A frame announced a body longer than the receiver's capacity; its body was not read.
    FrameTooLong {
        /// The longest frame body the receiver accepts.
        max: usize,
    },
    /// The peer sent a message that is malformed or does not belong at this point.
    UnexpectedMessage,
    /// The peer speaks the old raw-token protocol of the project aeschat replaces.
    LegacyPeer,
    /// The peer does not speak the aeschat protocol at all.
    NotAeschat,
    /// The peer speaks a protocol version this side does not: there is no fallback.
    UnsupportedProtocol {
        /// The version the peer announced.
        version: u8,
    },
    /// One side uses a password and the other a key file.
    ModeMismatch,
    /// Key confirmation failed: the sides hold different secrets, or someone interfered.
    AuthenticationFailed,
    /// The server is already in a conversation and refused this connection.
    PeerBusy,
    /// The server takes no attempt from this caller for a while: it paused after failed
    /// authentications, or too many attempts are in progress.
    RetryLater {
        /// How long to wait before trying again.
        seconds: u16,
    },
    /// The peer does not support this side's protocol version.
    VersionRefused,
    /// The peer ended the handshake with a generic alert (a malformed or unexpected message on
    /// its side) or with one this side does not know (reserved code 4 included).
    PeerAborted,
    /// A record arrived out of sequence: replayed, reordered, or one before it was lost.
    RecordOutOfOrder {
        /// The sequence number this side expected.
        expected: u64,
        /// The sequence number the record carried.
        received: u64,
    },
    /// A record failed authentication: altered, from another session, or reflected back.
    RecordRejected,
    /// The connection ended without the peer's authenticated close.
    Truncated,
    /// The connection ended during the handshake.
    HandshakeInterrupted,
    /// The transport accepted no more bytes.
    ConnectionClosed,
    /// The session already ended (closed or failed); nothing more can be sent or received.
    SessionEnded,
    /// A call came at the wrong point of the handshake (a programming error in the caller).
    OutOfOrderCall,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The errors both layers have say the same thing, written once (in the fernet layer).
            Error::BufferTooSmall { required } => FernetError::BufferTooSmall {
                required: *required,
            }
            .fmt(f),
            Error::MessageTooLong { max } => FernetError::MessageTooLong { max: *max }.fmt(f),
            Error::Randomness => FernetError::Randomness.fmt(f),
            Error::FrameTooLong { max } => write!(
                f,
                "The peer sent a message longer than the {max} bytes this side accepts; it was \
                 not read."
            ),
            Error::UnexpectedMessage => f.write_str(
                "The peer sent a malformed or unexpected message: it is not a compatible aeschat, \
                 or someone interfered with the connection.",
            ),
            Error::LegacyPeer => f.write_str(
                "The peer speaks the old raw-token chat protocol, which is insecure: upgrade it \
                 to aeschat.",
            ),
            Error::NotAeschat => f.write_str("The peer does not speak the aeschat protocol."),
            Error::UnsupportedProtocol { version } => write!(
                f,
                "The peer speaks aeschat protocol version {version}, which this side does not \
                 support: use the same aeschat version on both sides."
            ),
            Error::ModeMismatch => f.write_str(
                "One side uses a password and the other a key file: both must use the same kind \
                 of secret.",
            ),
            Error::AuthenticationFailed => f.write_str(
                "Authentication failed: the other side used a different password or key, or \
                 someone interfered with the connection. Restart both sides with the same \
                 password.",
            ),
            Error::RetryLater { seconds } => write!(
                f,
                "The server is not taking attempts from this address right now (a pause after \
                 failed authentications or abandoned handshakes, or too many at once): try again \
                 in {seconds} s."
            ),
            Error::PeerBusy => f.write_str(
                "The server is busy with another conversation: try again when it is free.",
            ),
            Error::VersionRefused => f.write_str(
                "The peer does not support this side's aeschat protocol version: use the same \
                 aeschat version on both sides.",
            ),
            Error::PeerAborted => f.write_str("The peer aborted the handshake."),
            Error::RecordOutOfOrder { expected, received } => write!(
                f,
                "A message arrived out of order (expected number {expected}, got {received}): \
                 it was replayed, reordered or one was lost; the session is ended."
            ),
            Error::RecordRejected => f.write_str(
                "A message failed authentication: it was altered, replayed from another session \
                 or reflected back; the session is ended.",
            ),
            Error::Truncated => f.write_str(
                "The connection ended without the peer's close: messages may be missing.",
            ),
            Error::HandshakeInterrupted => {
                f.write_str("The connection ended during the handshake.")
            }
            Error::ConnectionClosed => f.write_str("The connection was closed."),
            Error::SessionEnded => f.write_str("The session has already ended."),
            Error::OutOfOrderCall => {
                f.write_str("A handshake step was called out of order (a bug in the caller).")
            }
        }
    }
}

impl core::error::Error for Error {}
