//! The blocking driver: a short loop that moves bytes between the [`Engine`] and any
//! `embedded-io` transport. Every protocol rule is in the engine.

use core::fmt;

use rand_core::TryCryptoRng;

use crate::engine::{Action, Engine};
use crate::inbox::Inbox;
use crate::records::{Incoming, Receiver, Sender};
use crate::session::Error;
use crate::transport::{Read, Write};

/// A session failure: either the protocol's own [`Error`] or the transport's error `E`.
///
/// Its `Display` is the whole message, the cause included, so `source()` is `None`: a reporter
/// that prints the chain of causes prints each once. The transport's error itself is in the
/// `Transport` variant.
///
/// ```
/// use aeschat_core::session::{Error, SessionError};
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

/// Runs the handshake to completion over a blocking transport: `reader` and `writer` are the
/// two halves of one connection (or the same object twice), `inbox` the received bytes, which
/// go on to [`receive`] afterwards (a record may follow the last handshake message at once).
///
/// ```
/// use aeschat_core::fernet::Key;
/// use aeschat_core::session::{handshake, Config, Engine, Inbox, Role, Secret};
/// # include!("doc/established_pair.rs");
/// # fn main() -> Result<(), aeschat_core::session::Error> {
/// let key = Key::from_bytes([7; 32]);
/// let mut client = Engine::new(Config::new(Role::Client, Secret::PreSharedKey(&key)), &mut Os, None);
/// let mut inbox = Inbox::new(vec![0u8; client.input_capacity()]);
///
/// // A slice is a reader (here: a server that hangs up at once); a Vec is a writer.
/// let (mut from_server, mut to_server): (&[u8], Vec<u8>) = (&[], Vec::new());
/// let result = handshake(&mut from_server, &mut to_server, &mut inbox, &mut client);
/// assert_eq!(result, Err(aeschat_core::session::Error::HandshakeInterrupted.into()));
/// assert_eq!(to_server[0], 1, "the ClientHello went out");
/// # Ok(()) }
/// ```
pub fn handshake<R, W, B>(
    reader: &mut R,
    writer: &mut W,
    inbox: &mut Inbox<B>,
    engine: &mut Engine<'_>,
) -> Result<(), SessionError<R::Error>>
where
    R: Read,
    W: Write<Error = R::Error>,
    B: AsRef<[u8]> + AsMut<[u8]>,
{
    handshake_admitting(reader, writer, inbox, engine, || Ok(()))
}

/// [`handshake`], with a say before the expensive step: `admit` is called just before the key
/// derivation (CPace's second scalar multiplication, HKDF, and on a server the check of the
/// client's confirmation), which on a server comes only once the client has sent its
/// ClientShare and ClientFinished. A server uses it to ration derivations among callers; an error from
/// `admit` ends the handshake with that error, and its alert (for instance
/// [`Error::RetryLater`]) goes to the peer.
///
/// ```
/// use aeschat_core::session::{handshake_admitting, Config, Engine, Error, Inbox, Role, Secret};
/// # include!("doc/established_pair.rs");
/// # fn main() -> Result<(), aeschat_core::session::Error> {
/// # fn demo<T: aeschat_core::session::Read<Error = E> + aeschat_core::session::Write<Error = E>, E>(stream: &mut T, other: &mut T) {
/// let config = Config::new(Role::Server, Secret::Password(b"passphrase"));
/// let mut server = Engine::new(config, &mut Os, Some(1_700_000_000));
/// let mut inbox = Inbox::new(vec![0u8; server.input_capacity()]);
/// let mut derivations_left = 3;
/// let result = handshake_admitting(stream, other, &mut inbox, &mut server, || {
///     if derivations_left == 0 {
///         return Err(Error::RetryLater { seconds: 60 });
///     }
///     derivations_left -= 1;
///     Ok(())
/// });
/// # }
/// # Ok(()) }
/// ```
pub fn handshake_admitting<R, W, B>(
    reader: &mut R,
    writer: &mut W,
    inbox: &mut Inbox<B>,
    engine: &mut Engine<'_>,
    mut admit: impl FnMut() -> Result<(), Error>,
) -> Result<(), SessionError<R::Error>>
where
    R: Read,
    W: Write<Error = R::Error>,
    B: AsRef<[u8]> + AsMut<[u8]>,
{
    let required = engine.input_capacity();
    if inbox.capacity() < required {
        return Err(Error::BufferTooSmall { required }.into());
    }
    loop {
        match engine.poll_inbox(inbox) {
            Action::Transmit(bytes) => {
                write_all(writer, bytes)?;
                writer.flush().map_err(SessionError::Transport)?;
            }
            Action::DeriveKeys => match admit() {
                Ok(()) => engine.derive_keys(),
                Err(refusal) => engine.refuse(refusal),
            },
            Action::NeedInput => {
                if !fill(reader, inbox)? {
                    return Err(engine.end_of_stream().into());
                }
            }
            Action::Established => return Ok(()),
            Action::Failed(error) => return Err(error.into()),
            // The engine says Established before it opens any record.
            Action::Text(_) | Action::Closed => return Err(Error::OutOfOrderCall.into()),
        }
    }
}

/// Seals `text` and writes the record. See [`Sender::seal_text`].
///
/// ```
/// # include!("doc/established_pair.rs");
/// # fn main() -> Result<(), aeschat_core::session::SessionError<core::convert::Infallible>> {
/// use aeschat_core::session::{receive, record_frame_len, send_close, send_text, Inbox, Incoming};
/// let (mut client, mut server) = established_pair();
/// let (mut sender, _) = client.split()?;
/// let (_, mut receiver) = server.split()?;
///
/// // A Vec is a writer and a slice a reader: the records go through memory here.
/// let mut wire = Vec::new();
/// let mut out = [0u8; record_frame_len(64)];
/// send_text(&mut sender, &mut wire, b"hello", &mut Os, None, &mut out)?;
/// send_close(&mut sender, &mut wire, &mut Os, None, &mut out)?;
///
/// let mut inbox = Inbox::new(vec![0u8; aeschat_core::session::DEFAULT_FRAME_CAPACITY]);
/// let mut reader: &[u8] = &wire;
/// assert_eq!(receive(&mut receiver, &mut reader, &mut inbox)?, Incoming::Text(b"hello"));
/// assert_eq!(receive(&mut receiver, &mut reader, &mut inbox)?, Incoming::Closed);
/// # Ok(()) }
/// ```
pub fn send_text<W: Write, G: TryCryptoRng + ?Sized>(
    sender: &mut Sender,
    writer: &mut W,
    text: &[u8],
    rng: &mut G,
    now: Option<u64>,
    out: &mut [u8],
) -> Result<(), SessionError<W::Error>> {
    let record = sender.seal_text(text, rng, now, out)?;
    write_all(writer, record)?;
    writer.flush().map_err(SessionError::Transport)
}

/// Writes the authenticated close. See [`Sender::seal_close`].
///
/// ```
/// # include!("doc/established_pair.rs");
/// # fn main() -> Result<(), aeschat_core::session::SessionError<core::convert::Infallible>> {
/// use aeschat_core::session::{receive, record_frame_len, send_close, send_text, Inbox, Incoming};
/// let (mut client, mut server) = established_pair();
/// let (mut sender, _) = client.split()?;
/// let (_, mut receiver) = server.split()?;
///
/// // A Vec is a writer and a slice a reader: the records go through memory here.
/// let mut wire = Vec::new();
/// let mut out = [0u8; record_frame_len(64)];
/// send_text(&mut sender, &mut wire, b"hello", &mut Os, None, &mut out)?;
/// send_close(&mut sender, &mut wire, &mut Os, None, &mut out)?;
///
/// let mut inbox = Inbox::new(vec![0u8; aeschat_core::session::DEFAULT_FRAME_CAPACITY]);
/// let mut reader: &[u8] = &wire;
/// assert_eq!(receive(&mut receiver, &mut reader, &mut inbox)?, Incoming::Text(b"hello"));
/// assert_eq!(receive(&mut receiver, &mut reader, &mut inbox)?, Incoming::Closed);
/// # Ok(()) }
/// ```
pub fn send_close<W: Write, G: TryCryptoRng + ?Sized>(
    sender: &mut Sender,
    writer: &mut W,
    rng: &mut G,
    now: Option<u64>,
    out: &mut [u8],
) -> Result<(), SessionError<W::Error>> {
    let record = sender.seal_close(rng, now, out)?;
    write_all(writer, record)?;
    writer.flush().map_err(SessionError::Transport)
}

/// Blocks for the next record and opens it where it lies in `inbox`. An end of stream without
/// the peer's close is [`Error::Truncated`].
///
/// ```
/// # include!("doc/established_pair.rs");
/// # fn main() -> Result<(), aeschat_core::session::SessionError<core::convert::Infallible>> {
/// use aeschat_core::session::{receive, record_frame_len, send_close, send_text, Inbox, Incoming};
/// let (mut client, mut server) = established_pair();
/// let (mut sender, _) = client.split()?;
/// let (_, mut receiver) = server.split()?;
///
/// // A Vec is a writer and a slice a reader: the records go through memory here.
/// let mut wire = Vec::new();
/// let mut out = [0u8; record_frame_len(64)];
/// send_text(&mut sender, &mut wire, b"hello", &mut Os, None, &mut out)?;
/// send_close(&mut sender, &mut wire, &mut Os, None, &mut out)?;
///
/// let mut inbox = Inbox::new(vec![0u8; aeschat_core::session::DEFAULT_FRAME_CAPACITY]);
/// let mut reader: &[u8] = &wire;
/// assert_eq!(receive(&mut receiver, &mut reader, &mut inbox)?, Incoming::Text(b"hello"));
/// assert_eq!(receive(&mut receiver, &mut reader, &mut inbox)?, Incoming::Closed);
/// # Ok(()) }
/// ```
pub fn receive<'i, R: Read, B>(
    receiver: &mut Receiver,
    reader: &mut R,
    inbox: &'i mut Inbox<B>,
) -> Result<Incoming<'i>, SessionError<R::Error>>
where
    B: AsRef<[u8]> + AsMut<[u8]>,
{
    // Read until a frame is whole, then open it: the text returned lies in the inbox.
    while !receiver.is_ready(inbox.pending()) {
        match fill(reader, inbox) {
            Ok(true) => {}
            Ok(false) => return Err(receiver.end_of_stream().into()),
            Err(error) => {
                receiver.end_of_stream();
                return Err(error);
            }
        }
    }
    match receiver.poll_inbox(inbox)? {
        Some(incoming) => Ok(incoming),
        None => Err(Error::OutOfOrderCall.into()),
    }
}

/// One read from the transport into the inbox; false at the end of the stream.
fn fill<R: Read, B>(reader: &mut R, inbox: &mut Inbox<B>) -> Result<bool, SessionError<R::Error>>
where
    B: AsRef<[u8]> + AsMut<[u8]>,
{
    let count = reader
        .read(inbox.unfilled()?)
        .map_err(SessionError::Transport)?;
    inbox.filled(count);
    Ok(count > 0)
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
