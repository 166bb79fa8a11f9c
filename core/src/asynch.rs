//! The async driver: the blocking driver's loops with `.await`, over `embedded-io-async`'s
//! transport traits, so a session runs on an executor (embassy on a board, any runtime on a
//! desktop) without blocking it. Every protocol rule is in the [`Engine`], as for the blocking
//! driver. The key derivation is one call (CPace's second scalar multiplication and HKDF, well
//! under a millisecond on a desktop), so there are no slices to yield between.
//!
//! ```
//! use aeschat_core::asynch;
//! use aeschat_core::fernet::Key;
//! use aeschat_core::session::{Config, Engine, Inbox, Role, Secret};
//! # include!("doc/established_pair.rs");
//! # fn main() {
//! let key = Key::from_bytes([7; 32]);
//! let mut client = Engine::new(Config::new(Role::Client, Secret::PreSharedKey(&key)), &mut Os, None);
//! let mut inbox = Inbox::new([0u8; aeschat_core::session::DEFAULT_FRAME_CAPACITY]);
//!
//! // A slice is an async reader too (here: a server that hangs up at once), and `Sink` keeps
//! // what is written.
//! let mut from_server: &[u8] = &[];
//! let mut to_server = Sink(Vec::new());
//! let result = futures_executor::block_on(asynch::handshake(
//!     &mut from_server, &mut to_server, &mut inbox, &mut client,
//! ));
//! assert_eq!(result, Err(aeschat_core::session::Error::HandshakeInterrupted.into()));
//! assert_eq!(to_server.0[0], 1, "the ClientHello went out");
//! # }
//! # struct Sink(Vec<u8>);
//! # impl asynch::embedded_io_async::ErrorType for Sink { type Error = core::convert::Infallible; }
//! # impl asynch::embedded_io_async::Write for Sink {
//! #     async fn write(&mut self, bytes: &[u8]) -> Result<usize, Self::Error> {
//! #         self.0.extend_from_slice(bytes);
//! #         Ok(bytes.len())
//! #     }
//! # }
//! ```

/// The `embedded-io-async` release the async transport traits come from.
pub use embedded_io_async;
use embedded_io_async::{Read, Write};
use rand_core::TryCryptoRng;

use crate::driver::SessionError;
use crate::engine::{Action, Engine};
use crate::inbox::Inbox;
use crate::records::{Incoming, Receiver, Sender};
use crate::session::Error;

/// Runs the handshake to completion; see the blocking [`crate::session::handshake`].
///
/// ```
/// # include!("doc/established_pair.rs");
/// # include!("doc/async_sink.rs");
/// # fn main() {
/// use aeschat_core::asynch;
/// use aeschat_core::fernet::Key;
/// use aeschat_core::session::{Config, Engine, Error, Inbox, Role, Secret};
/// let key = Key::from_bytes([7; 32]);
/// let config = Config::new(Role::Server, Secret::PreSharedKey(&key));
/// let mut server = Engine::new(config, &mut Os, None);
/// let mut inbox = Inbox::new(vec![0u8; server.input_capacity()]);
/// // A stranger calls: it is told so (alert 6) and the handshake ends.
/// let (mut from_caller, mut to_caller): (&[u8], _) = (b"GET / HTTP/1.1\r\n", Sink(Vec::new()));
/// let result = futures_executor::block_on(asynch::handshake(&mut from_caller, &mut to_caller, &mut inbox, &mut server));
/// assert_eq!(result, Err(Error::NotAeschat.into()));
/// assert_eq!(to_caller.0, [6, 0, 0, 0, 1, 6]);
/// # }
/// ```
pub async fn handshake<R, W, B>(
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
    handshake_admitting(reader, writer, inbox, engine, || Ok(())).await
}

/// Runs the handshake with a say before the key derivation; see the blocking
/// [`crate::session::handshake_admitting`].
///
/// ```
/// # include!("doc/established_pair.rs");
/// # include!("doc/async_sink.rs");
/// # fn main() {
/// use aeschat_core::asynch;
/// use aeschat_core::fernet::Key;
/// use aeschat_core::session::{Config, Engine, Error, Inbox, Role, Secret};
/// let key = Key::from_bytes([7; 32]);
/// let config = Config::new(Role::Server, Secret::PreSharedKey(&key));
/// let mut server = Engine::new(config, &mut Os, None);
/// let mut inbox = Inbox::new(vec![0u8; server.input_capacity()]);
/// // A stranger calls: it is told so (alert 6) and the handshake ends.
/// let (mut from_caller, mut to_caller): (&[u8], _) = (b"GET / HTTP/1.1\r\n", Sink(Vec::new()));
/// let result = futures_executor::block_on(asynch::handshake_admitting(
///     &mut from_caller, &mut to_caller, &mut inbox, &mut server, || Ok(()),
/// ));
/// assert_eq!(result, Err(Error::NotAeschat.into()));
/// assert_eq!(to_caller.0, [6, 0, 0, 0, 1, 6]);
/// # }
/// ```
pub async fn handshake_admitting<R, W, B>(
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
                write_all(writer, bytes).await?;
                writer.flush().await.map_err(SessionError::Transport)?;
            }
            Action::DeriveKeys => match admit() {
                Ok(()) => engine.derive_keys(),
                Err(refusal) => engine.refuse(refusal),
            },
            Action::NeedInput => {
                if !fill(reader, inbox).await? {
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

/// Seals `text` and writes the record; see [`Sender::seal_text`].
///
/// ```
/// # include!("doc/established_pair.rs");
/// # include!("doc/async_sink.rs");
/// # fn main() -> Result<(), aeschat_core::session::SessionError<core::convert::Infallible>> {
/// use aeschat_core::asynch;
/// use aeschat_core::session::{record_frame_len, Inbox, Incoming, DEFAULT_FRAME_CAPACITY};
/// let (mut client, mut server) = established_pair();
/// let (mut sender, _) = client.split()?;
/// let (_, mut receiver) = server.split()?;
/// futures_executor::block_on(async {
///     let mut wire = Sink(Vec::new());
///     let mut out = [0u8; record_frame_len(64)];
///     asynch::send_text(&mut sender, &mut wire, b"hello", &mut Os, None, &mut out).await?;
///     asynch::send_close(&mut sender, &mut wire, &mut Os, None, &mut out).await?;
///
///     let mut inbox = Inbox::new(vec![0u8; DEFAULT_FRAME_CAPACITY]);
///     let mut reader: &[u8] = &wire.0;
///     let first = asynch::receive(&mut receiver, &mut reader, &mut inbox).await?;
///     assert_eq!(first, Incoming::Text(b"hello"));
///     let second = asynch::receive(&mut receiver, &mut reader, &mut inbox).await?;
///     assert_eq!(second, Incoming::Closed);
///     Ok(())
/// })
/// # }
/// ```
pub async fn send_text<W: Write, G: TryCryptoRng + ?Sized>(
    sender: &mut Sender,
    writer: &mut W,
    text: &[u8],
    rng: &mut G,
    now: Option<u64>,
    out: &mut [u8],
) -> Result<(), SessionError<W::Error>> {
    let record = sender.seal_text(text, rng, now, out)?;
    write_all(writer, record).await?;
    writer.flush().await.map_err(SessionError::Transport)
}

/// Writes the authenticated close; see [`Sender::seal_close`].
///
/// ```
/// # include!("doc/established_pair.rs");
/// # include!("doc/async_sink.rs");
/// # fn main() -> Result<(), aeschat_core::session::SessionError<core::convert::Infallible>> {
/// use aeschat_core::asynch;
/// use aeschat_core::session::{record_frame_len, Inbox, Incoming, DEFAULT_FRAME_CAPACITY};
/// let (mut client, mut server) = established_pair();
/// let (mut sender, _) = client.split()?;
/// let (_, mut receiver) = server.split()?;
/// futures_executor::block_on(async {
///     let mut wire = Sink(Vec::new());
///     let mut out = [0u8; record_frame_len(64)];
///     asynch::send_text(&mut sender, &mut wire, b"hello", &mut Os, None, &mut out).await?;
///     asynch::send_close(&mut sender, &mut wire, &mut Os, None, &mut out).await?;
///
///     let mut inbox = Inbox::new(vec![0u8; DEFAULT_FRAME_CAPACITY]);
///     let mut reader: &[u8] = &wire.0;
///     let first = asynch::receive(&mut receiver, &mut reader, &mut inbox).await?;
///     assert_eq!(first, Incoming::Text(b"hello"));
///     let second = asynch::receive(&mut receiver, &mut reader, &mut inbox).await?;
///     assert_eq!(second, Incoming::Closed);
///     Ok(())
/// })
/// # }
/// ```
pub async fn send_close<W: Write, G: TryCryptoRng + ?Sized>(
    sender: &mut Sender,
    writer: &mut W,
    rng: &mut G,
    now: Option<u64>,
    out: &mut [u8],
) -> Result<(), SessionError<W::Error>> {
    let record = sender.seal_close(rng, now, out)?;
    write_all(writer, record).await?;
    writer.flush().await.map_err(SessionError::Transport)
}

/// Waits for the next record and opens it where it lies in `inbox`; see the blocking
/// [`crate::session::receive`].
///
/// ```
/// # include!("doc/established_pair.rs");
/// # include!("doc/async_sink.rs");
/// # fn main() -> Result<(), aeschat_core::session::SessionError<core::convert::Infallible>> {
/// use aeschat_core::asynch;
/// use aeschat_core::session::{record_frame_len, Inbox, Incoming, DEFAULT_FRAME_CAPACITY};
/// let (mut client, mut server) = established_pair();
/// let (mut sender, _) = client.split()?;
/// let (_, mut receiver) = server.split()?;
/// futures_executor::block_on(async {
///     let mut wire = Sink(Vec::new());
///     let mut out = [0u8; record_frame_len(64)];
///     asynch::send_text(&mut sender, &mut wire, b"hello", &mut Os, None, &mut out).await?;
///     asynch::send_close(&mut sender, &mut wire, &mut Os, None, &mut out).await?;
///
///     let mut inbox = Inbox::new(vec![0u8; DEFAULT_FRAME_CAPACITY]);
///     let mut reader: &[u8] = &wire.0;
///     let first = asynch::receive(&mut receiver, &mut reader, &mut inbox).await?;
///     assert_eq!(first, Incoming::Text(b"hello"));
///     let second = asynch::receive(&mut receiver, &mut reader, &mut inbox).await?;
///     assert_eq!(second, Incoming::Closed);
///     Ok(())
/// })
/// # }
/// ```
pub async fn receive<'i, R: Read, B>(
    receiver: &mut Receiver,
    reader: &mut R,
    inbox: &'i mut Inbox<B>,
) -> Result<Incoming<'i>, SessionError<R::Error>>
where
    B: AsRef<[u8]> + AsMut<[u8]>,
{
    while !receiver.is_ready(inbox.pending()) {
        match fill(reader, inbox).await {
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
async fn fill<R: Read, B>(
    reader: &mut R,
    inbox: &mut Inbox<B>,
) -> Result<bool, SessionError<R::Error>>
where
    B: AsRef<[u8]> + AsMut<[u8]>,
{
    let count = reader
        .read(inbox.unfilled()?)
        .await
        .map_err(SessionError::Transport)?;
    inbox.filled(count);
    Ok(count > 0)
}

/// Writes all of `bytes`. (`embedded-io-async`'s own `write_all` panics on a transport that
/// takes nothing; a closed connection is an error here, not a crash.)
async fn write_all<W: Write>(
    writer: &mut W,
    mut bytes: &[u8],
) -> Result<(), SessionError<W::Error>> {
    while !bytes.is_empty() {
        let written = writer.write(bytes).await.map_err(SessionError::Transport)?;
        if written == 0 {
            return Err(Error::ConnectionClosed.into());
        }
        bytes = bytes.get(written..).unwrap_or_default();
    }
    Ok(())
}
