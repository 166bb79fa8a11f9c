//! Proves that a whole session never touches the heap: handshakes in both modes, hundreds of
//! records each way of every length up to the limit, the closes, and the usual failures, all
//! measured by a counting global allocator that must see zero allocations.
//!
//! Only allocations made by the measured thread while it measures are counted, so the test
//! harness and other tests cannot disturb the count. The transports are fixed-size ring buffers
//! created before measuring: one test drives both sides sans-IO in one thread through the
//! driver's `read_frame`, `send_text`, `send_close` and `receive`; the other runs the blocking
//! driver's `handshake` on the measured thread against a peer thread spawned before counting
//! starts, over rings guarded by a mutex and condition variable.

mod counting_allocator;

use std::cell::RefCell;
use std::convert::Infallible;
use std::hint::black_box;
use std::sync::{Arc, Barrier, Condvar, Mutex};

use counting_allocator::allocations_during;

use aeschat_core::{
    frame_capacity, read_frame, receive, record_frame_len, send_close, send_text, Alert, Config,
    Error, FrameKind, FrameReader, Handshake, HandshakeState, Incoming, Iv, Key, Read, Role,
    Secret, SessionError, Write, HANDSHAKE_FRAME_LEN,
};

const PASSWORD: &[u8] = b"correct horse battery staple";
static PSK: Key = Key::from_bytes([0x42; 32]);
/// The longest message either side accepts, and the frame readers and buffers it needs.
const MAX_MESSAGE: usize = 4096;
const CAPACITY: usize = frame_capacity(MAX_MESSAGE);
const RECORD_OUT: usize = record_frame_len(MAX_MESSAGE);
/// Records each way per session.
const RECORDS: usize = 300;
/// Ring size: more than the longest frame, so one frame always fits.
const RING: usize = 2 * RECORD_OUT;

/// Text of every length: record `n` carries the first `length(n)` bytes of it.
static TEXT: [u8; MAX_MESSAGE] = {
    let mut text = [0u8; MAX_MESSAGE];
    let mut i = 0;
    while i < MAX_MESSAGE {
        text[i] = b'a' + (i % 26) as u8;
        i += 1;
    }
    text
};

/// Lengths around the block and chunk sizes, the extremes, and others spread between.
fn length(n: usize) -> usize {
    const EDGES: [usize; 12] = [0, 1, 15, 16, 17, 767, 768, 769, 1024, 4095, MAX_MESSAGE, 3];
    EDGES
        .get(n)
        .copied()
        .unwrap_or(n.wrapping_mul(2_654_435_761) % (MAX_MESSAGE + 1))
}

fn config(role: Role, secret: Secret<'_>) -> Config<'_> {
    Config::new(role, secret)
        .with_insecure_iterations(1000)
        .with_max_message_len(MAX_MESSAGE)
}

fn iv(n: usize, side: u8) -> Iv {
    let mut bytes = [side; 16];
    bytes[..8].copy_from_slice(&(n as u64).to_be_bytes());
    Iv::from_bytes(bytes)
}

// ---------------------------------------------------------------------------------------------
// One thread: rings in place, both sides driven sans-IO.

/// A byte ring with its storage inline: reading an empty ring is the end of the stream.
struct Ring {
    bytes: [u8; RING],
    start: usize,
    len: usize,
}

impl Ring {
    const fn new() -> Ring {
        Ring {
            bytes: [0; RING],
            start: 0,
            len: 0,
        }
    }

    fn push(&mut self, input: &[u8]) -> usize {
        let count = input.len().min(RING - self.len);
        for &byte in &input[..count] {
            self.bytes[(self.start + self.len) % RING] = byte;
            self.len += 1;
        }
        count
    }

    fn pop(&mut self, output: &mut [u8]) -> usize {
        let count = output.len().min(self.len);
        for slot in &mut output[..count] {
            *slot = self.bytes[self.start];
            self.start = (self.start + 1) % RING;
            self.len -= 1;
        }
        count
    }
}

struct RingWriter<'a>(&'a RefCell<Ring>);
struct RingReader<'a>(&'a RefCell<Ring>);

impl aeschat_core::ErrorType for RingWriter<'_> {
    type Error = Infallible;
}

impl Write for RingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        Ok(self.0.borrow_mut().push(buf))
    }

    fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

impl aeschat_core::ErrorType for RingReader<'_> {
    type Error = Infallible;
}

impl Read for RingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        Ok(self.0.borrow_mut().pop(buf))
    }
}

/// One side of a sans-IO handshake, with its transport halves and frame reader.
struct Side<'a> {
    handshake: Handshake<'a>,
    reader: RingReader<'a>,
    writer: RingWriter<'a>,
    frames: FrameReader<CAPACITY>,
}

fn side<'a>(
    role: Role,
    secret: Secret<'a>,
    reader: RingReader<'a>,
    writer: RingWriter<'a>,
) -> Side<'a> {
    let nonce = [role as u8; 32];
    Side {
        handshake: Handshake::new(config(role, secret), nonce, 1_700_000_000),
        reader,
        writer,
        frames: FrameReader::new(),
    }
}

impl Side<'_> {
    /// Takes one step; returns the error that ended the handshake, if any, after telling the
    /// peer why as the driver does (unless the peer's own alert was the reason).
    fn step(&mut self) -> Result<(), Error> {
        match self.handshake.state() {
            HandshakeState::SendHello | HandshakeState::SendFinished => {
                let mut out = [0u8; HANDSHAKE_FRAME_LEN];
                let message = self.handshake.write_message(&mut out)?;
                assert_eq!(self.writer.write(message), Ok(message.len()));
            }
            // A server's derivation checks the client's Finished; a wrong one is told.
            HandshakeState::DeriveKeys => {
                if let Err(error) = self.handshake.derive_keys() {
                    if let Some(alert) = Alert::for_error(error) {
                        let mut out = [0u8; 6];
                        let frame = alert.write(&mut out)?;
                        assert_eq!(self.writer.write(frame), Ok(frame.len()));
                    }
                    return Err(error);
                }
            }
            HandshakeState::AwaitHello | HandshakeState::AwaitFinished => {
                if self.reader.0.borrow().len == 0 {
                    return Ok(());
                }
                let (error, tell_peer) = match read_frame(&mut self.reader, &mut self.frames) {
                    Ok(Some(frame)) => {
                        let from_alert = frame.kind == FrameKind::Alert;
                        match self.handshake.read_message(frame) {
                            Ok(()) => return Ok(()),
                            Err(error) => (error, !from_alert),
                        }
                    }
                    Ok(None) => (Error::HandshakeInterrupted, false),
                    Err(SessionError::Protocol(error)) => (error, true),
                    Err(SessionError::Transport(never)) => match never {},
                };
                if let Some(alert) = Alert::for_error(error).filter(|_| tell_peer) {
                    let mut out = [0u8; 6];
                    let frame = alert.write(&mut out)?;
                    assert_eq!(self.writer.write(frame), Ok(frame.len()));
                }
                return Err(error);
            }
            HandshakeState::Established | HandshakeState::Failed => {}
        }
        Ok(())
    }

    fn done(&self) -> bool {
        self.handshake.state() == HandshakeState::Established
    }
}

/// Both handshakes to the end; the error each side met.
fn handshake_pair(client: &mut Side<'_>, server: &mut Side<'_>) -> (Option<Error>, Option<Error>) {
    let (mut client_error, mut server_error) = (None, None);
    for _ in 0..32 {
        if client_error.is_none() && !client.done() {
            client_error = client.step().err();
        }
        if server_error.is_none() && !server.done() {
            server_error = server.step().err();
        }
        let finished = |side: &Side<'_>, error: Option<Error>| error.is_some() || side.done();
        if finished(client, client_error) && finished(server, server_error) {
            break;
        }
    }
    (client_error, server_error)
}

/// A whole session with `RECORDS` texts each way and both closes, checking every delivery.
fn whole_session(secret: Secret<'_>, seed: usize) -> usize {
    let to_server = RefCell::new(Ring::new());
    let to_client = RefCell::new(Ring::new());
    let mut client = side(
        Role::Client,
        secret,
        RingReader(&to_client),
        RingWriter(&to_server),
    );
    let mut server = side(
        Role::Server,
        secret,
        RingReader(&to_server),
        RingWriter(&to_client),
    );
    client.handshake = Handshake::new(config(Role::Client, secret), [seed as u8; 32], 1);
    assert_eq!(handshake_pair(&mut client, &mut server), (None, None));
    let Side {
        handshake,
        reader: mut client_reader,
        writer: mut client_writer,
        frames: mut client_frames,
    } = client;
    let (mut client_tx, mut client_rx) = handshake.into_session().unwrap().split();
    let Side {
        handshake,
        reader: mut server_reader,
        writer: mut server_writer,
        frames: mut server_frames,
    } = server;
    let (mut server_tx, mut server_rx) = handshake.into_session().unwrap().split();

    let mut out = [0u8; RECORD_OUT];
    let mut delivered = 0;
    for n in 0..RECORDS {
        let text = &TEXT[..length(n + seed)];
        let now = 1_700_000_100 + n as u64;
        send_text(
            &mut client_tx,
            &mut client_writer,
            text,
            now,
            &iv(n, 1),
            &mut out,
        )
        .unwrap();
        let got = receive(&mut server_rx, &mut server_reader, &mut server_frames);
        assert_eq!(got, Ok(Incoming::Text(text)));
        let reply = &TEXT[MAX_MESSAGE - length(n + seed + 1)..];
        send_text(
            &mut server_tx,
            &mut server_writer,
            reply,
            now,
            &iv(n, 2),
            &mut out,
        )
        .unwrap();
        let got = receive(&mut client_rx, &mut client_reader, &mut client_frames);
        assert_eq!(got, Ok(Incoming::Text(reply)));
        delivered += 2;
    }
    send_close(&mut client_tx, &mut client_writer, 0, &iv(0, 3), &mut out).unwrap();
    send_close(&mut server_tx, &mut server_writer, 0, &iv(0, 4), &mut out).unwrap();
    let closed = Ok(Incoming::Closed);
    assert_eq!(
        receive(&mut server_rx, &mut server_reader, &mut server_frames),
        closed
    );
    assert_eq!(
        receive(&mut client_rx, &mut client_reader, &mut client_frames),
        closed
    );
    let ended = Err(SessionError::Protocol(Error::SessionEnded));
    assert_eq!(
        receive(&mut server_rx, &mut server_reader, &mut server_frames),
        ended
    );
    delivered
}

/// The failures: a wrong password, a tampered record, a replay, an over-long frame, a cut.
fn failures() -> usize {
    let to_server = RefCell::new(Ring::new());
    let to_client = RefCell::new(Ring::new());
    let mut client = side(
        Role::Client,
        Secret::Password(b"wrong password"),
        RingReader(&to_client),
        RingWriter(&to_server),
    );
    let mut server = side(
        Role::Server,
        Secret::Password(PASSWORD),
        RingReader(&to_server),
        RingWriter(&to_client),
    );
    let failed = Some(Error::AuthenticationFailed);
    assert_eq!(handshake_pair(&mut client, &mut server), (failed, failed));

    // Fresh rings and a key-file session for the record failures.
    let to_server = RefCell::new(Ring::new());
    let to_client = RefCell::new(Ring::new());
    let mut client = side(
        Role::Client,
        Secret::PreSharedKey(&PSK),
        RingReader(&to_client),
        RingWriter(&to_server),
    );
    let mut server = side(
        Role::Server,
        Secret::PreSharedKey(&PSK),
        RingReader(&to_server),
        RingWriter(&to_client),
    );
    assert_eq!(handshake_pair(&mut client, &mut server), (None, None));
    let (mut tx, _) = client.handshake.into_session().unwrap().split();
    let (_, mut rx) = server.handshake.into_session().unwrap().split();
    let mut out = [0u8; RECORD_OUT];
    let record = tx
        .seal_text(b"tamper with me", 0, &iv(0, 5), &mut out)
        .unwrap();
    let mut altered = [0u8; RECORD_OUT];
    let altered = &mut altered[..record.len()];
    altered.copy_from_slice(record);
    altered[50] ^= 0x01;
    let mut reader = server.reader;
    let mut writer = client.writer;
    writer.write(altered).unwrap();
    assert_eq!(
        receive(&mut rx, &mut reader, &mut server.frames),
        Err(SessionError::Protocol(Error::RecordRejected))
    );

    // An over-long frame is refused from its header; a cut inside a frame is a truncation.
    let mut frames = FrameReader::<CAPACITY>::new();
    writer.write(&[5, 0xFF, 0xFF, 0xFF, 0xFF]).unwrap();
    let too_long = read_frame(&mut reader, &mut frames).map(|frame| frame.is_some());
    assert_eq!(
        too_long,
        Err(SessionError::Protocol(Error::FrameTooLong {
            max: CAPACITY - 5
        }))
    );
    let mut frames = FrameReader::<CAPACITY>::new();
    writer.write(&[5, 0, 0, 0, 100, b'g']).unwrap();
    let cut = read_frame(&mut reader, &mut frames).map(|frame| frame.is_some());
    assert_eq!(cut, Err(SessionError::Protocol(Error::Truncated)));
    4
}

#[test]
fn a_whole_session_in_one_thread_allocates_nothing() {
    let (delivered, allocations) = allocations_during(|| {
        let mut delivered = 0;
        delivered += whole_session(Secret::Password(PASSWORD), 1);
        delivered += whole_session(Secret::PreSharedKey(&PSK), 2);
        delivered += failures();
        black_box(delivered)
    });
    assert_eq!(delivered, 4 * RECORDS + 4, "every record arrived");
    assert_eq!(allocations, 0, "{allocations} heap allocations");
}

// ---------------------------------------------------------------------------------------------
// Two threads: the blocking driver on the measured thread, the peer on a thread spawned first.

/// A blocking byte ring: readers wait for bytes, writers for space; storage allocated once.
struct BlockingRing {
    ring: Mutex<(Ring, bool)>,
    changed: Condvar,
}

impl BlockingRing {
    fn new() -> Arc<BlockingRing> {
        Arc::new(BlockingRing {
            ring: Mutex::new((Ring::new(), false)),
            changed: Condvar::new(),
        })
    }

    fn close(&self) {
        self.ring.lock().unwrap().1 = true;
        self.changed.notify_all();
    }
}

struct BlockingWriter(Arc<BlockingRing>);
struct BlockingReader(Arc<BlockingRing>);

impl aeschat_core::ErrorType for BlockingWriter {
    type Error = Infallible;
}

impl Write for BlockingWriter {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        let guard = self.0.ring.lock().unwrap();
        let mut guard = self
            .0
            .changed
            .wait_while(guard, |(ring, _)| ring.len == RING)
            .unwrap();
        let count = guard.0.push(buf);
        drop(guard);
        self.0.changed.notify_all();
        Ok(count)
    }

    fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

impl aeschat_core::ErrorType for BlockingReader {
    type Error = Infallible;
}

impl Read for BlockingReader {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        if buf.is_empty() {
            return Ok(0);
        }
        let guard = self.0.ring.lock().unwrap();
        let mut guard = self
            .0
            .changed
            .wait_while(guard, |(ring, closed)| ring.len == 0 && !*closed)
            .unwrap();
        let count = guard.0.pop(buf);
        drop(guard);
        self.0.changed.notify_all();
        Ok(count)
    }
}

/// The peer: echoes every text, answers the close with its own, and counts what it received.
fn echo_server(mut reader: BlockingReader, mut writer: BlockingWriter) -> usize {
    let mut frames = Box::new(FrameReader::<CAPACITY>::new());
    let handshake = Handshake::new(config(Role::Server, Secret::Password(PASSWORD)), [2; 32], 0);
    let session = aeschat_core::handshake(&mut reader, &mut writer, &mut *frames, handshake)
        .expect("the server's handshake");
    let (mut tx, mut rx) = session.split();
    let mut out = Box::new([0u8; RECORD_OUT]);
    let mut echo = Box::new([0u8; MAX_MESSAGE]);
    let mut received = 0;
    while let Incoming::Text(text) = receive(&mut rx, &mut reader, &mut *frames).unwrap() {
        let len = text.len();
        echo[..len].copy_from_slice(text);
        received += 1;
        let iv = iv(received, 9);
        send_text(&mut tx, &mut writer, &echo[..len], 0, &iv, &mut *out).unwrap();
    }
    send_close(&mut tx, &mut writer, 0, &iv(0, 9), &mut *out).unwrap();
    writer.0.close();
    received
}

#[test]
fn the_blocking_driver_against_a_peer_thread_allocates_nothing_on_the_measured_thread() {
    let to_server = BlockingRing::new();
    let to_client = BlockingRing::new();
    let server_reader = BlockingReader(Arc::clone(&to_server));
    let server_writer = BlockingWriter(Arc::clone(&to_client));
    let mut reader = BlockingReader(Arc::clone(&to_client));
    let mut writer = BlockingWriter(Arc::clone(&to_server));
    // Everything the measured thread uses exists before counting starts.
    let mut frames = Box::new(FrameReader::<CAPACITY>::new());
    let mut out = Box::new([0u8; RECORD_OUT]);
    let peer = std::thread::spawn(move || echo_server(server_reader, server_writer));

    let (echoed, allocations) = allocations_during(|| {
        let handshake =
            Handshake::new(config(Role::Client, Secret::Password(PASSWORD)), [1; 32], 0);
        let session = aeschat_core::handshake(&mut reader, &mut writer, &mut *frames, handshake)
            .expect("the client's handshake");
        let (mut tx, mut rx) = session.split();
        let mut echoed = 0;
        for n in 0..RECORDS {
            let text = &TEXT[..length(n)];
            send_text(&mut tx, &mut writer, text, 0, &iv(n, 1), &mut *out).unwrap();
            let got = receive(&mut rx, &mut reader, &mut *frames);
            assert_eq!(got, Ok(Incoming::Text(text)));
            echoed += 1;
        }
        send_close(&mut tx, &mut writer, 0, &iv(0, 1), &mut *out).unwrap();
        let got = receive(&mut rx, &mut reader, &mut *frames);
        assert_eq!(got, Ok(Incoming::Closed));
        black_box(echoed)
    });
    assert_eq!(peer.join().expect("the peer thread"), RECORDS);
    assert_eq!(echoed, RECORDS);
    assert_eq!(
        allocations, 0,
        "{allocations} heap allocations on the measured thread"
    );
}

/// The counter works: without this, a broken allocator hook would make the tests above pass.
#[test]
fn the_counter_sees_heap_allocations_on_the_measured_thread_only() {
    let ((), allocations) = allocations_during(|| {
        black_box(Box::new(black_box(7u64)));
        let mut growing: Vec<u8> = Vec::with_capacity(1);
        growing.extend_from_slice(black_box(&[1, 2, 3, 4]));
        black_box(growing);
    });
    // The box, the vector, and the vector growing.
    assert_eq!(allocations, 3);
    // Another thread's allocations, made while this one measures, are not counted.
    let barrier = Arc::new(Barrier::new(2));
    let other_barrier = Arc::clone(&barrier);
    let other = std::thread::spawn(move || {
        other_barrier.wait();
        let len = black_box(vec![0u8; 100]).len();
        other_barrier.wait();
        len
    });
    let ((), allocations) = allocations_during(|| {
        barrier.wait();
        barrier.wait();
    });
    assert_eq!(other.join().unwrap(), 100);
    assert_eq!(allocations, 0);
}
