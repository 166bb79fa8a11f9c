//! Shared helpers for the session tests: fixed inputs, a sans-IO pair that moves frames between
//! a client and a server with a hook for the man in the middle, a blocking in-memory duplex pipe
//! for the driver on two threads, scripted transports, and a recorder of whole conversations.
//!
//! Use it from a test file with `mod session_support;`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use aeschat_core::{
    Alert, Config, Error, Frame, FrameKind, FrameReader, Handshake, HandshakeState, Incoming, Iv,
    Key, Read, Receiver, Role, Secret, Sender, Session, SessionError, Write,
    DEFAULT_FRAME_CAPACITY, HANDSHAKE_FRAME_LEN,
};

/// The password both sides share in most tests.
pub const PASSWORD: &[u8] = b"correct horse battery staple";
/// A work factor low enough for hundreds of handshakes per test.
pub const FAST: u32 = 1000;
pub const CLIENT_NONCE: [u8; 32] = [0xC1; 32];
pub const SERVER_NONCE: [u8; 32] = [0x5E; 32];
pub const CLIENT_TIME: u64 = 1_700_000_000;
pub const SERVER_TIME: u64 = 1_700_000_003;

/// The pre-shared key both sides share in key-file tests, and one neither does.
pub static PSK: Key = Key::from_bytes([0x42; 32]);
pub static OTHER_PSK: Key = Key::from_bytes([0x43; 32]);

/// A client with the test work factor as its minimum.
pub fn client_config(secret: Secret<'_>) -> Config<'_> {
    Config::new(Role::Client, secret).with_insecure_iterations(FAST)
}

/// A server announcing the test work factor.
pub fn server_config(secret: Secret<'_>) -> Config<'_> {
    Config::new(Role::Server, secret).with_insecure_iterations(FAST)
}

/// A client handshake with the fixed nonce and time.
pub fn client(secret: Secret<'_>) -> Handshake<'_> {
    Handshake::new(client_config(secret), CLIENT_NONCE, CLIENT_TIME)
}

/// A server handshake with the fixed nonce and time.
pub fn server(secret: Secret<'_>) -> Handshake<'_> {
    Handshake::new(server_config(secret), SERVER_NONCE, SERVER_TIME)
}

/// The frame reader for the default message length, on the heap (it is about 87 KiB).
pub type Frames = FrameReader<DEFAULT_FRAME_CAPACITY>;

pub fn new_frames() -> Box<Frames> {
    Box::new(Frames::new())
}

/// Which end of the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    Client,
    Server,
}

impl Side {
    pub fn peer(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

/// A frame copied out of a reader.
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

/// What a stream of bytes parses to when fed to one frame reader all at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// The complete frames, in order.
    pub frames: Vec<OwnedFrame>,
    /// The error that stopped parsing, if any.
    pub error: Option<Error>,
    /// The bytes end inside a frame (its header or body is incomplete).
    pub unfinished: bool,
}

/// Feeds `chunks` one after another to a fresh frame reader of capacity `N`, collecting frames
/// until the first error.
pub fn parse_chunks<'a, const N: usize>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Parsed {
    let mut reader = Box::new(FrameReader::<N>::new());
    let mut parsed = Parsed {
        frames: Vec::new(),
        error: None,
        unfinished: false,
    };
    for mut chunk in chunks {
        loop {
            match reader.push(chunk) {
                Ok(taken) => chunk = &chunk[taken..],
                Err(error) => {
                    parsed.error = Some(error);
                    return parsed;
                }
            }
            match reader.frame() {
                Some(frame) => {
                    parsed.frames.push(OwnedFrame {
                        kind: frame.kind,
                        body: frame.body.to_vec(),
                    });
                }
                None => {
                    assert!(
                        chunk.is_empty(),
                        "the reader stopped short of a whole frame"
                    );
                    break;
                }
            }
        }
    }
    parsed.unfinished = !reader.is_between_frames();
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

/// Hands one whole frame (as bytes) to a handshake.
pub fn read_message(handshake: &mut Handshake<'_>, bytes: &[u8]) -> Result<(), Error> {
    let mut frame = frame_of(bytes);
    handshake.read_message(Frame {
        kind: frame.kind,
        body: &mut frame.body,
    })
}

/// What a record opened to, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Got {
    Text(Vec<u8>),
    Closed,
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
pub fn receive<R: Read, const N: usize>(
    receiver: &mut Receiver,
    reader: &mut R,
    frames: &mut FrameReader<N>,
) -> Result<Got, SessionError<R::Error>> {
    Ok(match aeschat_core::receive(receiver, reader, frames)? {
        Incoming::Text(text) => Got::Text(text.to_vec()),
        Incoming::Closed => Got::Closed,
    })
}

/// Seals a text with a time and an IV made from `n`.
pub fn seal(sender: &mut Sender, text: &[u8], n: u8) -> Vec<u8> {
    let mut out = vec![0u8; aeschat_core::record_frame_len(text.len())];
    sender
        .seal_text(
            text,
            1_700_000_100 + u64::from(n),
            &Iv::from_bytes([n; 16]),
            &mut out,
        )
        .expect("the text is sealed")
        .to_vec()
}

/// Seals the close.
pub fn seal_close(sender: &mut Sender) -> Vec<u8> {
    let mut out = vec![0u8; aeschat_core::record_frame_len(0)];
    sender
        .seal_close(1_700_000_999, &Iv::from_bytes([0xCC; 16]), &mut out)
        .expect("the close is sealed")
        .to_vec()
}

/// How a sans-IO handshake between two sides ended.
pub struct Outcome {
    pub client: Result<Session, Error>,
    pub server: Result<Session, Error>,
    /// Every frame each side wrote (alerts included), before the man in the middle saw it.
    pub wire: Vec<(Side, Vec<u8>)>,
    /// The states each side passed through, starting with its first.
    pub client_states: Vec<HandshakeState>,
    pub server_states: Vec<HandshakeState>,
}

impl Outcome {
    /// Everything `side` wrote, concatenated.
    pub fn written_by(&self, side: Side) -> Vec<u8> {
        self.wire
            .iter()
            .filter(|(from, _)| *from == side)
            .flat_map(|(_, bytes)| bytes.iter().copied())
            .collect()
    }

    /// The frames `side` wrote.
    pub fn frames_by(&self, side: Side) -> Vec<OwnedFrame> {
        frames_of(&self.written_by(side))
    }

    pub fn client_error(&self) -> Option<Error> {
        self.client.as_ref().err().copied()
    }

    pub fn server_error(&self) -> Option<Error> {
        self.server.as_ref().err().copied()
    }

    pub fn sessions(self) -> (Session, Session) {
        match (self.client, self.server) {
            (Ok(client), Ok(server)) => (client, server),
            (client, server) => panic!(
                "the handshake failed: client {:?}, server {:?}",
                client.err(),
                server.err()
            ),
        }
    }
}

/// One side of a sans-IO handshake run as the blocking driver runs it: it writes what its state
/// asks for, reads frames from the bytes the peer sent, and on a failed read sends the alert
/// [`Alert::for_error`] names, unless the frame it failed on was the peer's alert. (The driver
/// itself still answers some alerts with an alert: see `session_faults.rs`.)
struct Party<'a> {
    side: Side,
    handshake: Option<Handshake<'a>>,
    frames: Box<Frames>,
    inbox: VecDeque<u8>,
    result: Option<Result<Session, Error>>,
    states: Vec<HandshakeState>,
}

impl<'a> Party<'a> {
    fn new(side: Side, handshake: Handshake<'a>) -> Party<'a> {
        Party {
            side,
            states: vec![handshake.state()],
            handshake: Some(handshake),
            frames: new_frames(),
            inbox: VecDeque::new(),
            result: None,
        }
    }

    fn note_state(&mut self) {
        if let Some(handshake) = &self.handshake {
            if self.states.last() != Some(&handshake.state()) {
                self.states.push(handshake.state());
            }
        }
    }

    /// Ends this side with `error`, telling the peer why unless the peer's own alert was the
    /// cause: an alert is never answered with an alert.
    fn fail(&mut self, error: Error, peer_alerted: bool, outbox: &mut Vec<Vec<u8>>) {
        if let Some(alert) = Alert::for_error(error).filter(|_| !peer_alerted) {
            let mut out = [0u8; Alert::MAX_FRAME_LEN];
            outbox.push(alert.write(&mut out).expect("an alert fits").to_vec());
        }
        self.result = Some(Err(error));
        self.handshake = None;
    }

    /// Takes one step; returns false if it cannot move until the peer sends something.
    fn step(&mut self, outbox: &mut Vec<Vec<u8>>) -> bool {
        let Some(handshake) = self.handshake.as_mut() else {
            return false;
        };
        let failure = match handshake.state() {
            HandshakeState::SendHello | HandshakeState::SendFinished => {
                outbox.push(write_message(handshake));
                None
            }
            // A server's derivation checks the client's Finished; a wrong one is told (alert 1).
            HandshakeState::DeriveKeys => handshake.derive_keys().err().map(|e| (e, false)),
            HandshakeState::AwaitHello | HandshakeState::AwaitFinished => {
                // Feed bytes until a frame completes, as the driver's reads would.
                loop {
                    let front = self.inbox.as_slices().0.to_vec();
                    match self.frames.push(&front) {
                        Ok(taken) => drop(self.inbox.drain(..taken)),
                        Err(error) => break Some((error, false)),
                    }
                    if let Some(frame) = self.frames.frame() {
                        let peer_alerted = frame.kind == FrameKind::Alert;
                        break handshake
                            .read_message(frame)
                            .err()
                            .map(|e| (e, peer_alerted));
                    }
                    if self.inbox.is_empty() {
                        return false;
                    }
                }
            }
            HandshakeState::Established => {
                let handshake = self.handshake.take().expect("present");
                self.result = Some(handshake.into_session());
                return true;
            }
            HandshakeState::Failed => panic!("{} reached Failed unreported", self.side.name()),
        };
        self.note_state();
        if let Some((error, peer_alerted)) = failure {
            self.fail(error, peer_alerted, outbox);
        }
        true
    }
}

/// Runs a client and a server against each other in one thread. Every frame a side writes
/// passes through `middle`, which may change the bytes (or empty them to drop the frame) before
/// the peer reads them. A side left waiting when nothing more can arrive fails with
/// [`Error::HandshakeInterrupted`], as the driver does at the end of the stream.
pub fn run_handshake<'a>(
    client: Handshake<'a>,
    server: Handshake<'a>,
    mut middle: impl FnMut(Side, &mut Vec<u8>),
) -> Outcome {
    let mut parties = [
        Party::new(Side::Client, client),
        Party::new(Side::Server, server),
    ];
    let mut wire = Vec::new();
    loop {
        let mut moved = false;
        for index in 0..2 {
            let mut outbox = Vec::new();
            moved |= parties[index].step(&mut outbox);
            let side = parties[index].side;
            for mut bytes in outbox {
                wire.push((side, bytes.clone()));
                middle(side, &mut bytes);
                parties[1 - index].inbox.extend(bytes);
            }
        }
        if !moved {
            break;
        }
    }
    let [client, server] = parties.map(|mut party| {
        let result = party
            .result
            .take()
            .unwrap_or(Err(Error::HandshakeInterrupted));
        (result, party.states)
    });
    Outcome {
        client: client.0,
        server: server.0,
        wire,
        client_states: client.1,
        server_states: server.1,
    }
}

/// A handshake with nobody in the middle.
pub fn connect<'a>(client: Handshake<'a>, server: Handshake<'a>) -> Outcome {
    run_handshake(client, server, |_, _| {})
}

/// Established client and server sessions over the password, with the fixed inputs.
pub fn password_sessions() -> (Session, Session) {
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
    let iv = Iv::from_bytes(message.iv);
    let len = message.text.as_deref().map_or(0, str::len);
    let mut out = vec![0u8; aeschat_core::record_frame_len(len)];
    let frame = match &message.text {
        Some(text) => sender.seal_text(text.as_bytes(), message.time, &iv, &mut out),
        None => sender.seal_close(message.time, &iv, &mut out),
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

impl aeschat_core::TransportError for PipeError {
    fn kind(&self) -> aeschat_core::ErrorKind {
        match self {
            PipeError::Broken => aeschat_core::ErrorKind::BrokenPipe,
            PipeError::TimedOut => aeschat_core::ErrorKind::TimedOut,
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

impl aeschat_core::ErrorType for PipeReader {
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

impl aeschat_core::ErrorType for PipeWriter {
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

impl aeschat_core::ErrorType for ScriptedReader {
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
