//! Shared helpers for the session tests: fixed inputs, the handshake run through
//! `aeschat_testkit::Pair` (two engines in one thread, with a hook for the man in the middle),
//! a blocking in-memory duplex pipe for the driver on two threads, scripted transports, and a
//! recorder of whole conversations.
//!
//! Every protocol rule is the engine's: nothing here decides which alert answers what.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use aeschat_core::fernet::{Iv, Key};
use aeschat_core::rand_core::{TryCryptoRng, TryRng};
use aeschat_core::session;
use aeschat_core::session::{
    Config, Engine, Error, Frame, FrameKind, Handshake, Inbox, Incoming, Read, Receiver, Role,
    Secret, Sender, SessionError, Write, DEFAULT_FRAME_CAPACITY, FRAME_HEADER_LEN,
    HANDSHAKE_FRAME_LEN,
};
pub use aeschat_testkit::{Got, Outcome, Pair, Replay, Side, TestRng};

/// The password both sides share in most tests.
pub const PASSWORD: &[u8] = b"correct horse battery staple";
pub const CLIENT_NONCE: [u8; 32] = [0xC1; 32];
pub const SERVER_NONCE: [u8; 32] = [0x5E; 32];
pub const CLIENT_TIME: u64 = 1_700_000_000;

/// A fixed CPace scalar seed for a handshake made by hand, told apart by its nonce (two sides
/// with the same seed, PRS and sid would send the same share, which is refused as reflected).
/// FOR TESTS ONLY: a real seed is fresh random bytes.
pub fn scalar_seed(nonce: [u8; 32]) -> [u8; 32] {
    let mut seed = nonce.map(|b| b ^ 0xa5);
    seed[0] |= 1; // never the zero scalar, whatever the nonce
    seed
}
pub const SERVER_TIME: u64 = 1_700_000_003;

/// The pre-shared key both sides share in key-file tests, and one neither does.
pub static PSK: Key = Key::from_bytes([0x42; 32]);
pub static OTHER_PSK: Key = Key::from_bytes([0x43; 32]);

/// A client's settings.
pub fn client_config(secret: Secret<'_>) -> Config<'_> {
    Config::new(Role::Client, secret)
}

/// A server's settings.
pub fn server_config(secret: Secret<'_>) -> Config<'_> {
    Config::new(Role::Server, secret)
}

/// A client handshake with the fixed nonce and time (for message-level tests; pumps wrap it
/// in an engine).
pub fn client(secret: Secret<'_>) -> Handshake<'_> {
    Handshake::new(
        client_config(secret),
        CLIENT_NONCE,
        scalar_seed(CLIENT_NONCE),
        Some(CLIENT_TIME),
    )
}

/// A server handshake with the fixed nonce and time.
pub fn server(secret: Secret<'_>) -> Handshake<'_> {
    Handshake::new(
        server_config(secret),
        SERVER_NONCE,
        scalar_seed(SERVER_NONCE),
        Some(SERVER_TIME),
    )
}

/// A client engine with the fixed nonce and time.
pub fn client_engine(secret: Secret<'_>) -> Engine<'_> {
    Engine::from_handshake(client(secret))
}

/// A server engine with the fixed nonce and time.
pub fn server_engine(secret: Secret<'_>) -> Engine<'_> {
    Engine::from_handshake(server(secret))
}

/// An inbox for the default message length, on the heap (it is about 87 KiB).
pub type Frames = Inbox<Box<[u8]>>;

pub fn new_frames() -> Frames {
    Inbox::new(vec![0u8; DEFAULT_FRAME_CAPACITY].into_boxed_slice())
}

/// A frame copied out of the bytes it was found in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedFrame {
    pub kind: FrameKind,
    pub body: Vec<u8>,
}

/// The alert frame for a reason code, written independently of the core: kind 6, length 1.
pub fn alert_bytes(code: u8) -> Vec<u8> {
    vec![6, 0, 0, 0, 1, code]
}

/// A frame written independently of the core: kind, big-endian u32 length, body.
pub fn frame_bytes(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut bytes = vec![kind];
    bytes.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
    bytes.extend_from_slice(body);
    bytes
}

/// What a stream of bytes parses to when its frames are taken with `Frame::parse`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// The complete frames, in order.
    pub frames: Vec<OwnedFrame>,
    /// The error that stopped parsing, if any.
    pub error: Option<Error>,
    /// The bytes end inside a frame (its header or body is incomplete).
    pub unfinished: bool,
}

/// Feeds `chunks` one after another to an inbox of capacity `N` (frames of at most `N` bytes,
/// header included), taking frames with `Frame::parse` as soon as they are whole, until the
/// first error.
pub fn parse_chunks<'a, const N: usize>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Parsed {
    let max_body_len = N.saturating_sub(FRAME_HEADER_LEN);
    let mut pending: Vec<u8> = Vec::new();
    let mut parsed = Parsed {
        frames: Vec::new(),
        error: None,
        unfinished: false,
    };
    for chunk in chunks {
        pending.extend_from_slice(chunk);
        loop {
            match Frame::parse(&mut pending, max_body_len) {
                Ok(Some((frame, len))) => {
                    parsed.frames.push(OwnedFrame {
                        kind: frame.kind,
                        body: frame.body.to_vec(),
                    });
                    pending.drain(..len);
                }
                Ok(None) => break,
                Err(error) => {
                    parsed.error = Some(error);
                    return parsed;
                }
            }
        }
    }
    parsed.unfinished = !pending.is_empty();
    parsed
}

/// The frames in `bytes`, which must be whole, well-formed frames.
pub fn frames_of(bytes: &[u8]) -> Vec<OwnedFrame> {
    let parsed = parse_chunks::<DEFAULT_FRAME_CAPACITY>([bytes]);
    assert_eq!(parsed.error, None, "the bytes are not well-formed frames");
    assert!(!parsed.unfinished, "the bytes end inside a frame");
    parsed.frames
}

/// The one frame in `bytes`.
pub fn frame_of(bytes: &[u8]) -> OwnedFrame {
    let mut frames = frames_of(bytes);
    assert_eq!(frames.len(), 1, "expected exactly one frame");
    frames.remove(0)
}

/// The next handshake message `handshake` writes.
pub fn write_message(handshake: &mut Handshake<'_>) -> Vec<u8> {
    let mut out = [0u8; HANDSHAKE_FRAME_LEN];
    handshake
        .write_message(&mut out)
        .expect("the handshake writes its message")
        .to_vec()
}

/// Hands the whole frames in `bytes` (one, or protocol 2's client flight of two) to a
/// handshake, in order, stopping at the first error.
pub fn read_message(handshake: &mut Handshake<'_>, bytes: &[u8]) -> Result<(), Error> {
    for mut frame in frames_of(bytes) {
        handshake.read_message(Frame {
            kind: frame.kind,
            body: &mut frame.body,
        })?;
    }
    Ok(())
}

/// Opens one record frame (as bytes).
pub fn open(receiver: &mut Receiver, bytes: &[u8]) -> Result<Got, Error> {
    let mut frame = frame_of(bytes);
    let incoming = receiver.open(Frame {
        kind: frame.kind,
        body: &mut frame.body,
    })?;
    Ok(match incoming {
        Incoming::Text(text) => Got::Text(text.to_vec()),
        Incoming::Closed => Got::Closed,
    })
}

/// Blocks for the next record through the driver and copies out what it carried.
pub fn receive<R: Read>(
    receiver: &mut Receiver,
    reader: &mut R,
    frames: &mut Frames,
) -> Result<Got, SessionError<R::Error>> {
    Ok(match session::receive(receiver, reader, frames)? {
        Incoming::Text(text) => Got::Text(text.to_vec()),
        Incoming::Closed => Got::Closed,
    })
}

/// A "generator" whose every 16 bytes are `iv`: each record sealed with it gets that IV (for
/// tests that fix IVs; tests only).
pub fn fixed_iv(iv: [u8; 16]) -> FixedIv {
    FixedIv { iv, position: 0 }
}

/// See [`fixed_iv`]. NOT RANDOM: tests only.
#[derive(Clone, Debug)]
pub struct FixedIv {
    iv: [u8; 16],
    position: usize,
}

impl TryRng for FixedIv {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        rand_core::utils::next_word_via_fill(self)
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        rand_core::utils::next_word_via_fill(self)
    }

    fn try_fill_bytes(&mut self, out: &mut [u8]) -> Result<(), Infallible> {
        for byte in out {
            *byte = self.iv[self.position % 16];
            self.position += 1;
        }
        Ok(())
    }
}

impl TryCryptoRng for FixedIv {}

/// The operating system's generator (through the core's `Iv::random`), for tests that want
/// real randomness (a peer of the real binary, records whose IVs do not matter).
#[derive(Clone, Copy, Debug)]
pub struct OsRng;

impl TryRng for OsRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        rand_core::utils::next_word_via_fill(self)
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        rand_core::utils::next_word_via_fill(self)
    }

    fn try_fill_bytes(&mut self, out: &mut [u8]) -> Result<(), Infallible> {
        for chunk in out.chunks_mut(16) {
            let iv = Iv::random().expect("the operating system's generator");
            chunk.copy_from_slice(&iv.as_bytes()[..chunk.len()]);
        }
        Ok(())
    }
}

impl TryCryptoRng for OsRng {}

/// The blocking driver's handshake for an engine over `handshake` (fixed nonce and time),
/// handed on established.
pub fn handshake_over<'a, R, W, B>(
    reader: &mut R,
    writer: &mut W,
    frames: &mut Inbox<B>,
    handshake: Handshake<'a>,
) -> Result<Established<'a>, SessionError<R::Error>>
where
    R: Read,
    W: Write<Error = R::Error>,
    B: AsRef<[u8]> + AsMut<[u8]>,
{
    let mut engine = Engine::from_handshake(handshake);
    session::handshake(reader, writer, frames, &mut engine)?;
    Ok(Established(engine))
}

/// Seals a text with a time and an IV made from `n`.
pub fn seal(sender: &mut Sender, text: &[u8], n: u8) -> Vec<u8> {
    let mut out = vec![0u8; session::record_frame_len(text.len())];
    sender
        .seal_text(
            text,
            &mut fixed_iv([n; 16]),
            Some(1_700_000_100 + u64::from(n)),
            &mut out,
        )
        .expect("the text is sealed")
        .to_vec()
}

/// Seals the close.
pub fn seal_close(sender: &mut Sender) -> Vec<u8> {
    let mut out = vec![0u8; session::record_frame_len(0)];
    sender
        .seal_close(&mut fixed_iv([0xCC; 16]), Some(1_700_000_999), &mut out)
        .expect("the close is sealed")
        .to_vec()
}

/// An established engine, as a handshake test hands it on: split it, or ask its clock offset.
pub struct Established<'a>(pub Engine<'a>);

impl Established<'_> {
    /// The sending and receiving halves.
    pub fn split(mut self) -> (Sender, Receiver) {
        self.0.split().expect("the engine is established")
    }

    /// See `Engine::peer_clock_offset`.
    pub fn peer_clock_offset(&self) -> Option<i64> {
        self.0.peer_clock_offset()
    }
}

/// What the session tests ask of a pair's outcome beyond `aeschat_testkit::Outcome`'s own.
pub trait OutcomeExt<'a> {
    /// The frames `side` transmitted.
    fn frames_by(&self, side: Side) -> Vec<OwnedFrame>;
    /// Both established engines; panics with both results if either side failed.
    fn sessions(self) -> (Established<'a>, Established<'a>);
}

impl<'a> OutcomeExt<'a> for Outcome<'a> {
    fn frames_by(&self, side: Side) -> Vec<OwnedFrame> {
        frames_of(&self.written_by(side))
    }

    fn sessions(self) -> (Established<'a>, Established<'a>) {
        match (self.client, self.server) {
            (Ok(()), Ok(())) => (
                Established(self.client_engine),
                Established(self.server_engine),
            ),
            (client, server) => panic!(
                "the handshake failed: client {:?}, server {:?}",
                client.err(),
                server.err()
            ),
        }
    }
}

/// Runs a client and a server engine over `client` and `server` against each other in one
/// thread (`aeschat_testkit::Pair`). Every frame a side transmits passes through `middle`,
/// which may change the bytes (or empty them to drop the frame) before the peer reads them. A
/// side left waiting when nothing more can arrive meets the end of the stream
/// ([`Error::HandshakeInterrupted`]).
pub fn run_handshake<'a>(
    client: Handshake<'a>,
    server: Handshake<'a>,
    middle: impl FnMut(Side, &mut Vec<u8>),
) -> Outcome<'a> {
    Pair::new(
        Engine::from_handshake(client),
        Engine::from_handshake(server),
    )
    .with_middle(middle)
    .finish()
}

/// A handshake with nobody in the middle.
pub fn connect<'a>(client: Handshake<'a>, server: Handshake<'a>) -> Outcome<'a> {
    run_handshake(client, server, |_, _| {})
}

/// Established client and server sessions over the password, with the fixed inputs.
pub fn password_sessions() -> (Established<'static>, Established<'static>) {
    connect(
        client(Secret::Password(PASSWORD)),
        server(Secret::Password(PASSWORD)),
    )
    .sessions()
}

/// One message of a scripted conversation: a text, or the close when `text` is `None`.
#[derive(Clone, Debug)]
pub struct Message {
    pub from: Side,
    pub text: Option<String>,
    pub time: u64,
    pub iv: [u8; 16],
}

/// Seals one scripted message with `sender` and returns the record frame.
pub fn seal_message(sender: &mut Sender, message: &Message) -> Vec<u8> {
    let mut iv = fixed_iv(message.iv);
    let len = message.text.as_deref().map_or(0, str::len);
    let mut out = vec![0u8; session::record_frame_len(len)];
    let frame = match &message.text {
        Some(text) => sender.seal_text(text.as_bytes(), &mut iv, Some(message.time), &mut out),
        None => sender.seal_close(&mut iv, Some(message.time), &mut out),
    };
    frame.expect("the record is sealed").to_vec()
}

/// Seals `messages` in order with the established halves and returns the record frames.
pub fn seal_messages(
    client: &mut Sender,
    server: &mut Sender,
    messages: &[Message],
) -> Vec<(Side, Vec<u8>)> {
    messages
        .iter()
        .map(|message| {
            let sender = match message.from {
                Side::Client => &mut *client,
                Side::Server => &mut *server,
            };
            (message.from, seal_message(sender, message))
        })
        .collect()
}

/// Every frame of a whole session: the handshake, then `messages`, in the order written.
pub fn record_session(
    client: Handshake<'_>,
    server: Handshake<'_>,
    messages: &[Message],
) -> Vec<(Side, Vec<u8>)> {
    let outcome = connect(client, server);
    let mut frames = outcome.wire.clone();
    let (client, server) = outcome.sessions();
    let (mut client_tx, _) = client.split();
    let (mut server_tx, _) = server.split();
    frames.extend(seal_messages(&mut client_tx, &mut server_tx, messages));
    frames
}

/// A short conversation in both directions that ends with both closes.
pub fn sample_conversation() -> Vec<Message> {
    let text = |from, text: &str, n: u8| Message {
        from,
        text: Some(text.to_owned()),
        time: 1_700_000_010 + u64::from(n),
        iv: [n; 16],
    };
    let close = |from, n: u8| Message {
        from,
        text: None,
        time: 1_700_000_010 + u64::from(n),
        iv: [n; 16],
    };
    vec![
        text(Side::Client, "hello", 1),
        text(Side::Server, "hi! who is this?", 2),
        text(Side::Client, "", 3),
        text(Side::Client, &"long line ".repeat(300), 4),
        text(Side::Server, "sch\u{f6}n, \u{1f44b}", 5),
        close(Side::Client, 6),
        close(Side::Server, 7),
    ]
}

// ---------------------------------------------------------------------------------------------
// Blocking transports.

/// What an in-memory pipe reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PipeError {
    /// The reading end is gone.
    Broken,
    /// Nothing arrived for a long time: a test is stuck, so fail instead of hanging.
    TimedOut,
}

impl session::TransportError for PipeError {
    fn kind(&self) -> session::ErrorKind {
        match self {
            PipeError::Broken => session::ErrorKind::BrokenPipe,
            PipeError::TimedOut => session::ErrorKind::TimedOut,
        }
    }
}

impl std::fmt::Display for PipeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PipeError::Broken => "the pipe's reader is gone",
            PipeError::TimedOut => "nothing arrived on the pipe in time",
        })
    }
}

impl std::error::Error for PipeError {}

#[derive(Default)]
struct Buffer {
    bytes: VecDeque<u8>,
    writer_closed: bool,
    reader_closed: bool,
}

#[derive(Default)]
struct Shared {
    buffer: Mutex<Buffer>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Buffer> {
        self.buffer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

const PIPE_TIMEOUT: Duration = Duration::from_secs(60);

/// The reading end of a one-way pipe: blocks for bytes, `Ok(0)` once the writer is dropped or
/// closed and everything is read.
pub struct PipeReader {
    shared: Arc<Shared>,
}

/// The writing end of a one-way pipe. It keeps a copy of everything written, so a test can
/// assert the exact bytes a side sent.
pub struct PipeWriter {
    shared: Arc<Shared>,
    log: Arc<Mutex<Vec<u8>>>,
}

/// A one-way pipe.
pub fn pipe() -> (PipeWriter, PipeReader) {
    let shared = Arc::new(Shared::default());
    (
        PipeWriter {
            shared: Arc::clone(&shared),
            log: Arc::default(),
        },
        PipeReader { shared },
    )
}

impl PipeWriter {
    /// A handle on the copy of everything written, readable after this end is gone.
    pub fn log(&self) -> Arc<Mutex<Vec<u8>>> {
        Arc::clone(&self.log)
    }

    /// Ends the stream: the reader sees end of stream once it has read everything.
    pub fn close(&mut self) {
        self.shared.lock().writer_closed = true;
        self.shared.changed.notify_all();
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        self.close();
    }
}

impl Drop for PipeReader {
    fn drop(&mut self) {
        self.shared.lock().reader_closed = true;
        self.shared.changed.notify_all();
    }
}

impl session::ErrorType for PipeReader {
    type Error = PipeError;
}

impl Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, PipeError> {
        if buf.is_empty() {
            return Ok(0);
        }
        let buffer = self.shared.lock();
        let (mut buffer, timeout) = self
            .shared
            .changed
            .wait_timeout_while(buffer, PIPE_TIMEOUT, |b| {
                b.bytes.is_empty() && !b.writer_closed
            })
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if timeout.timed_out() {
            return Err(PipeError::TimedOut);
        }
        let count = buf.len().min(buffer.bytes.len());
        for (dst, src) in buf.iter_mut().zip(buffer.bytes.drain(..count)) {
            *dst = src;
        }
        Ok(count)
    }
}

impl session::ErrorType for PipeWriter {
    type Error = PipeError;
}

impl Write for PipeWriter {
    fn write(&mut self, buf: &[u8]) -> Result<usize, PipeError> {
        let mut buffer = self.shared.lock();
        if buffer.reader_closed {
            return Err(PipeError::Broken);
        }
        buffer.bytes.extend(buf);
        drop(buffer);
        self.log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .extend_from_slice(buf);
        self.shared.changed.notify_all();
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), PipeError> {
        Ok(())
    }
}

/// One end of a duplex connection.
pub struct End {
    pub reader: PipeReader,
    pub writer: PipeWriter,
}

/// Two connected ends: what one writes, the other reads.
pub fn duplex() -> (End, End) {
    let (a_writer, b_reader) = pipe();
    let (b_writer, a_reader) = pipe();
    (
        End {
            reader: a_reader,
            writer: a_writer,
        },
        End {
            reader: b_reader,
            writer: b_writer,
        },
    )
}

/// Runs `client` on this thread and `server` on another, each with one end of a fresh duplex
/// pipe; returns both results and the bytes each side wrote.
pub fn on_two_threads<C, S>(
    client: impl FnOnce(End) -> C + Send,
    server: impl FnOnce(End) -> S + Send,
) -> ((C, Vec<u8>), (S, Vec<u8>))
where
    C: Send,
    S: Send,
{
    let (client_end, server_end) = duplex();
    let client_log = client_end.writer.log();
    let server_log = server_end.writer.log();
    let (client_result, server_result) = std::thread::scope(|scope| {
        let server = scope.spawn(move || server(server_end));
        let client_result = client(client_end);
        (
            client_result,
            server.join().expect("the server thread panicked"),
        )
    });
    let take = |log: Arc<Mutex<Vec<u8>>>| std::mem::take(&mut *log.lock().unwrap());
    (
        (client_result, take(client_log)),
        (server_result, take(server_log)),
    )
}

/// A reader over fixed bytes that hands them out in pieces of the scheduled sizes (repeating
/// the schedule), then reports the end of the stream. It counts what it handed out.
pub struct ScriptedReader {
    bytes: Vec<u8>,
    position: usize,
    schedule: Vec<usize>,
    next: usize,
    /// How many calls to `read` asked for bytes.
    pub reads: usize,
}

impl ScriptedReader {
    /// Hands out as much as each read asks for.
    pub fn new(bytes: Vec<u8>) -> ScriptedReader {
        ScriptedReader::chunked(bytes, vec![usize::MAX])
    }

    /// Hands out at most `schedule[i]` bytes on the i-th read (each at least 1).
    pub fn chunked(bytes: Vec<u8>, schedule: Vec<usize>) -> ScriptedReader {
        assert!(!schedule.is_empty() && schedule.iter().all(|&n| n > 0));
        ScriptedReader {
            bytes,
            position: 0,
            schedule,
            next: 0,
            reads: 0,
        }
    }

    /// How many bytes were read so far.
    pub fn consumed(&self) -> usize {
        self.position
    }
}

impl session::ErrorType for ScriptedReader {
    type Error = Infallible;
}

impl Read for ScriptedReader {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.reads += 1;
        let limit = self.schedule[self.next % self.schedule.len()];
        self.next += 1;
        let rest = &self.bytes[self.position..];
        let count = buf.len().min(limit).min(rest.len());
        buf[..count].copy_from_slice(&rest[..count]);
        self.position += count;
        Ok(count)
    }
}

/// Hex, lowercase.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Bytes from hex, which must be valid.
pub fn unhex(text: &str) -> Vec<u8> {
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let pair = std::str::from_utf8(pair).expect("ASCII hex");
            assert_eq!(pair.len(), 2, "odd-length hex");
            u8::from_str_radix(pair, 16).expect("valid hex")
        })
        .collect()
}
