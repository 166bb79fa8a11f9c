//! The async driver (`aeschat-core`'s `async` feature) on a host executor: a client and a
//! server as two tasks of one thread, over an in-memory connection whose reads are pending
//! until the other task writes. A whole session runs (password handshake, texts both ways,
//! close).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

use aeschat_core::asynch;
use aeschat_core::fernet::IvPool;
use aeschat_core::rand_core::UnwrapErr;
use aeschat_core::session::{
    record_frame_len, Config, Engine, Error, Inbox, Incoming, Role, Secret, DEFAULT_FRAME_CAPACITY,
};
use embedded_io_async::{ErrorType, Read, Write};

/// One direction of the connection: bytes in flight, the waiting reader, and whether the
/// writer has hung up.
#[derive(Default)]
struct Direction {
    bytes: VecDeque<u8>,
    reader: Option<Waker>,
    closed: bool,
}

/// The reading end of a direction: `read` is pending while nothing is there.
struct PipeReader(Rc<RefCell<Direction>>);
/// The writing end: wakes the reader; dropping it is the end of the stream.
struct PipeWriter(Rc<RefCell<Direction>>);

fn pipe() -> (PipeWriter, PipeReader) {
    let direction = Rc::new(RefCell::new(Direction::default()));
    (PipeWriter(direction.clone()), PipeReader(direction))
}

impl ErrorType for PipeReader {
    type Error = Infallible;
}

impl ErrorType for PipeWriter {
    type Error = Infallible;
}

impl Read for PipeReader {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        poll_fn(|context| {
            let mut direction = self.0.borrow_mut();
            if direction.bytes.is_empty() && !direction.closed {
                direction.reader = Some(context.waker().clone());
                return Poll::Pending;
            }
            let count = buf.len().min(direction.bytes.len());
            for (slot, byte) in buf.iter_mut().zip(direction.bytes.drain(..count)) {
                *slot = byte;
            }
            Poll::Ready(Ok(count))
        })
        .await
    }
}

impl Write for PipeWriter {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        let mut direction = self.0.borrow_mut();
        direction.bytes.extend(buf);
        if let Some(reader) = direction.reader.take() {
            reader.wake();
        }
        Ok(buf.len())
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        let mut direction = self.0.borrow_mut();
        direction.closed = true;
        if let Some(reader) = direction.reader.take() {
            reader.wake();
        }
    }
}

const PASSWORD: &[u8] = b"async tasks share a thread";

/// What one side saw: its texts, whether the peer closed, and the first failure.
#[derive(Debug, PartialEq)]
struct Seen {
    texts: Vec<Vec<u8>>,
    closed: bool,
}

/// Runs one side: handshake, then sends `say` and receives until the peer's close (a client
/// closes first once it has heard the server; the server answers the close with its own).
async fn side(
    role: Role,
    mut reader: PipeReader,
    mut writer: PipeWriter,
    say: &[&[u8]],
    expect: usize,
) -> Result<Seen, Error> {
    let config = Config::new(role, Secret::Password(PASSWORD));
    let mut rng = UnwrapErr(IvPool::<16>::new());
    let mut engine = Engine::new(config, &mut rng, None);
    let mut inbox = Inbox::new(vec![0u8; DEFAULT_FRAME_CAPACITY]);
    asynch::handshake(&mut reader, &mut writer, &mut inbox, &mut engine)
        .await
        .map_err(protocol)?;
    let (mut sender, mut receiver) = engine.split()?;
    let mut out = vec![0u8; record_frame_len(64)];
    let mut ivs = IvPool::<16>::new();
    for text in say {
        asynch::send_text(&mut sender, &mut writer, text, &mut ivs, None, &mut out)
            .await
            .map_err(protocol)?;
    }
    let mut seen = Seen {
        texts: Vec::new(),
        closed: false,
    };
    if role == Role::Client {
        while seen.texts.len() < expect {
            match asynch::receive(&mut receiver, &mut reader, &mut inbox).await {
                Ok(Incoming::Text(text)) => seen.texts.push(text.to_vec()),
                Ok(Incoming::Closed) => return Err(Error::UnexpectedMessage),
                Err(error) => return Err(protocol(error)),
            }
        }
        asynch::send_close(&mut sender, &mut writer, &mut ivs, None, &mut out)
            .await
            .map_err(protocol)?;
    }
    loop {
        match asynch::receive(&mut receiver, &mut reader, &mut inbox).await {
            Ok(Incoming::Text(text)) => seen.texts.push(text.to_vec()),
            Ok(Incoming::Closed) => break,
            Err(error) => return Err(protocol(error)),
        }
    }
    seen.closed = true;
    if role == Role::Server {
        asynch::send_close(&mut sender, &mut writer, &mut ivs, None, &mut out)
            .await
            .map_err(protocol)?;
    }
    Ok(seen)
}

fn protocol(error: aeschat_core::session::SessionError<Infallible>) -> Error {
    match error {
        aeschat_core::session::SessionError::Protocol(error) => error,
        aeschat_core::session::SessionError::Transport(never) => match never {},
    }
}

#[test]
fn a_whole_session_runs_as_two_tasks_on_one_thread() {
    let (to_server, server_in) = pipe();
    let (to_client, client_in) = pipe();
    let client = side(
        Role::Client,
        client_in,
        to_server,
        &[b"hello from a task"],
        2,
    );
    let server = side(
        Role::Server,
        server_in,
        to_client,
        &[b"hello back", b"and once more"],
        1,
    );
    let (client, server) = futures_executor::block_on(futures_util::future::join(client, server));
    assert_eq!(
        client,
        Ok(Seen {
            texts: vec![b"hello back".to_vec(), b"and once more".to_vec()],
            closed: true
        })
    );
    assert_eq!(
        server,
        Ok(Seen {
            texts: vec![b"hello from a task".to_vec()],
            closed: true
        })
    );
}
