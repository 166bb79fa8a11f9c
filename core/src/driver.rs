//! The one thin driver: moves bytes between the sans-IO engine and any blocking transport.

use core::fmt;

use crate::frame::{Frame, FrameKind, FrameReader};
use crate::handshake::{Alert, Handshake, HandshakeState, HANDSHAKE_FRAME_LEN};
use crate::session::{frame_capacity, Incoming, Receiver, Sender, Session};
use crate::token::Iv;
use crate::transport::{Read, Write};
use crate::Error;

/// A session failure: either the protocol's own [`Error`] or the transport's error `E`.
///
/// Its `Display` is the whole message, the cause included, so `source()` is `None`: a reporter
/// that prints the chain of causes prints each once. The transport's error itself is in the
/// `Transport` variant.
///
/// ```
/// use aeschat_core::{Error, SessionError};
/// use core::error::Error as _;
///
/// let error: SessionError<core::fmt::Error> = SessionError::Protocol(Error::Truncated);
/// assert_eq!(error.to_string(), Error::Truncated.to_string());
/// assert!(error.source().is_none());
/// let error = SessionError::Transport(core::fmt::Error);
/// assert_eq!(error.to_string(), "The connection failed: an error occurred when formatting an argument");
/// assert!(error.source().is_none());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionError<E> {
    /// The protocol failed (authentication, order, framing, ...).
    Protocol(Error),
    /// The transport failed; the session cannot continue.
    Transport(E),
}

impl<E> From<Error> for SessionError<E> {
    fn from(error: Error) -> Self {
        SessionError::Protocol(error)
    }
}

impl<E: fmt::Display> fmt::Display for SessionError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Protocol(error) => error.fmt(f),
            SessionError::Transport(error) => write!(f, "The connection failed: {error}"),
        }
    }
}

/// No `source()`: the `Display` above already says the cause (see the type's documentation).
impl<E: fmt::Debug + fmt::Display> core::error::Error for SessionError<E> {}

/// Runs a handshake to completion over a transport. On failure it tells the peer why when the
/// peer should know (see [`Alert::for_error`]), then returns the error.
///
/// ```
/// # use aeschat_core::*;
/// # fn demo<T: Read<Error = E> + Write<Error = E>, E>(stream: &mut T, other: &mut T) {
/// let config = Config::new(Role::Client, Secret::Password(b"passphrase"));
/// let mut frames = FrameReader::<DEFAULT_FRAME_CAPACITY>::new();
/// // `stream` and `other` are the two halves of one connection (or the same object twice).
/// let result = handshake(stream, other, &mut frames, Handshake::new(config, [0x5a; 32], 1_700_000_000));
/// # }
/// ```
pub fn handshake<R, W, const N: usize>(
    reader: &mut R,
    writer: &mut W,
    frames: &mut FrameReader<N>,
    handshake: Handshake<'_>,
) -> Result<Session, SessionError<R::Error>>
where
    R: Read,
    W: Write<Error = R::Error>,
{
    handshake_admitting(reader, writer, frames, handshake, || Ok(()))
}

/// [`handshake`], with a say before the expensive step: `admit` is called just before the key
/// derivation (PBKDF2 in password mode), which on a server comes only once the client has sent
/// its ClientFinished. A server uses it to ration derivations among callers; an error from
/// `admit` ends the handshake with that error, and its alert (for instance
/// [`Error::RetryLater`]) goes to the peer.
///
/// ```
/// # use aeschat_core::*;
/// # fn demo<T: Read<Error = E> + Write<Error = E>, E>(stream: &mut T, other: &mut T) {
/// let config = Config::new(Role::Server, Secret::Password(b"passphrase"));
/// let mut frames = FrameReader::<DEFAULT_FRAME_CAPACITY>::new();
/// let mut derivations_left = 3;
/// let result = handshake_admitting(stream, other, &mut frames, Handshake::new(config, [0x5a; 32], 0), || {
///     if derivations_left == 0 {
///         return Err(Error::RetryLater { seconds: 60 });
///     }
///     derivations_left -= 1;
///     Ok(())
/// });
/// # }
/// ```
pub fn handshake_admitting<R, W, const N: usize>(
    reader: &mut R,
    writer: &mut W,
    frames: &mut FrameReader<N>,
    mut handshake: Handshake<'_>,
    mut admit: impl FnMut() -> Result<(), Error>,
) -> Result<Session, SessionError<R::Error>>
where
    R: Read,
    W: Write<Error = R::Error>,
{
    // The frame reader must hold the longest message this side announces it accepts.
    let required = frame_capacity(handshake.config().max_message_len());
    if N < required {
        return Err(Error::BufferTooSmall { required }.into());
    }
    let mut out = [0u8; HANDSHAKE_FRAME_LEN];
    loop {
        match handshake.state() {
            HandshakeState::SendHello | HandshakeState::SendFinished => {
                let message = handshake.write_message(&mut out)?;
                write_all(writer, message)?;
                writer.flush().map_err(SessionError::Transport)?;
            }
            HandshakeState::AwaitHello | HandshakeState::AwaitFinished => {
                let first = handshake.state() == HandshakeState::AwaitHello;
                let frame = match read_frame(reader, frames) {
                    Ok(Some(frame)) => frame,
                    Ok(None) => return Err(Error::HandshakeInterrupted.into()),
                    Err(SessionError::Protocol(Error::Truncated)) => {
                        return Err(Error::HandshakeInterrupted.into())
                    }
                    // A first frame of no known kind comes from a stranger, not from a broken
                    // aeschat: say so.
                    Err(SessionError::Protocol(Error::UnexpectedMessage)) if first => {
                        return Err(alert_peer(writer, Error::NotAeschat))
                    }
                    Err(SessionError::Protocol(error)) => return Err(alert_peer(writer, error)),
                    Err(transport) => return Err(transport),
                };
                // An alert is the peer's last word: answering it with another would only echo.
                let from_alert = frame.kind == FrameKind::Alert;
                if let Err(error) = handshake.read_message(frame) {
                    return Err(if from_alert {
                        error.into()
                    } else {
                        alert_peer(writer, error)
                    });
                }
            }
            HandshakeState::DeriveKeys => {
                // A server that finds the client's confirmation wrong says so (alert 1).
                if let Err(error) = admit().and_then(|()| handshake.derive_keys()) {
                    return Err(alert_peer(writer, error));
                }
            }
            HandshakeState::Established => return Ok(handshake.into_session()?),
            HandshakeState::Failed => return Err(Error::OutOfOrderCall.into()),
        }
    }
}

/// Seals `text` into `out` and writes the record. See [`Sender::seal_text`].
pub fn send_text<W: Write>(
    sender: &mut Sender,
    writer: &mut W,
    text: &[u8],
    now: u64,
    iv: &Iv,
    out: &mut [u8],
) -> Result<(), SessionError<W::Error>> {
    let record = sender.seal_text(text, now, iv, out)?;
    write_all(writer, record)?;
    writer.flush().map_err(SessionError::Transport)
}

/// Writes the authenticated close. See [`Sender::seal_close`].
pub fn send_close<W: Write>(
    sender: &mut Sender,
    writer: &mut W,
    now: u64,
    iv: &Iv,
    out: &mut [u8],
) -> Result<(), SessionError<W::Error>> {
    let record = sender.seal_close(now, iv, out)?;
    write_all(writer, record)?;
    writer.flush().map_err(SessionError::Transport)
}

/// Blocks for the next record and opens it. An end of stream without the peer's close is
/// [`Error::Truncated`].
pub fn receive<'f, R: Read, const N: usize>(
    receiver: &mut Receiver,
    reader: &mut R,
    frames: &'f mut FrameReader<N>,
) -> Result<Incoming<'f>, SessionError<R::Error>> {
    // After the close or a failure, touch the transport no more: a further read could block
    // on a peer that keeps the connection open, or swallow bytes nobody will open.
    if receiver.is_ended() {
        return Err(Error::SessionEnded.into());
    }
    match read_frame(reader, frames) {
        Ok(Some(frame)) => Ok(receiver.open(frame)?),
        Ok(None) | Err(SessionError::Protocol(Error::Truncated)) => {
            Err(receiver.end_of_stream().into())
        }
        Err(error) => {
            receiver.end_of_stream();
            Err(error)
        }
    }
}

/// Reads exactly one frame. `Ok(None)` is an end of stream between frames; an end of stream
/// inside a frame is [`Error::Truncated`].
pub fn read_frame<'f, R: Read, const N: usize>(
    reader: &mut R,
    frames: &'f mut FrameReader<N>,
) -> Result<Option<Frame<'f>>, SessionError<R::Error>> {
    loop {
        let space = frames.unfilled()?;
        if space.is_empty() {
            break;
        }
        let count = reader.read(space).map_err(SessionError::Transport)?;
        if count == 0 {
            if frames.is_between_frames() {
                return Ok(None);
            }
            return Err(Error::Truncated.into());
        }
        frames.advance(count);
    }
    frames
        .frame()
        .map(Some)
        .ok_or(Error::UnexpectedMessage.into())
}

fn write_all<W: Write>(writer: &mut W, mut bytes: &[u8]) -> Result<(), SessionError<W::Error>> {
    while !bytes.is_empty() {
        let written = writer.write(bytes).map_err(SessionError::Transport)?;
        if written == 0 {
            return Err(Error::ConnectionClosed.into());
        }
        bytes = bytes.get(written..).unwrap_or(&[]);
    }
    Ok(())
}

/// Tells the peer why the handshake ends, if it should know; a failure to tell is ignored,
/// since the handshake has failed either way.
fn alert_peer<W: Write>(writer: &mut W, error: Error) -> SessionError<W::Error> {
    if let Some(alert) = Alert::for_error(error) {
        let mut out = [0u8; Alert::MAX_FRAME_LEN];
        if let Ok(frame) = alert.write(&mut out) {
            let _ = write_all(writer, frame)
                .and_then(|()| writer.flush().map_err(SessionError::Transport));
        }
    }
    error.into()
}
