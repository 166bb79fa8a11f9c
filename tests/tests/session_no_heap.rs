//! Proves that a whole session never touches the heap: handshakes in both modes, hundreds of
//! records each way of every length up to the limit, the closes, and the usual failures, all
//! measured by a counting global allocator that must see zero allocations.
//!
//! Only allocations made by the measured thread while it measures are counted, so the test
//! harness and other tests cannot disturb the count. The transports are fixed-size ring buffers
//! created before measuring: one test drives both sides' engines in one thread (each poll's
//! bytes moved over the rings, every protocol rule the engine's), then the driver's `send_text`,
//! `send_close` and `receive`; the other runs the blocking
//! driver's `handshake` on the measured thread against a peer thread spawned before counting
//! starts, over rings guarded by a mutex and condition variable.

mod counting_allocator;

use std::cell::RefCell;
use std::convert::Infallible;
use std::hint::black_box;
use std::sync::{Arc, Barrier, Condvar, Mutex};

use counting_allocator::allocations_during;

use aeschat_core::fernet::Key;
use aeschat_core::rand_core::{TryCryptoRng, TryRng};
use aeschat_core::session::{
    frame_capacity, handshake, receive, record_frame_len, send_close, send_text, Action, Config,
    Engine, Error, Inbox, Incoming, Read, Receiver, Role, Secret, Sender, SessionError, Write,
};
use aeschat_testkit::TestRng;

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
    Config::new(role, secret).with_max_message_len(MAX_MESSAGE)
}

/// A "generator" that yields one fixed IV, over and over (no heap: `Replay` keeps a `Vec`).
/// NOT RANDOM: tests only.
struct FixedIv([u8; 16]);

impl TryRng for FixedIv {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(u32::from_le_bytes([
            self.0[0], self.0[1], self.0[2], self.0[3],
        ]))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(u64::from_le_bytes(self.0[..8].try_into().unwrap()))
    }

    fn try_fill_bytes(&mut self, out: &mut [u8]) -> Result<(), Infallible> {
        for (slot, byte) in out.iter_mut().zip(self.0.iter().cycle()) {
            *slot = *byte;
        }
        Ok(())
    }
}

impl TryCryptoRng for FixedIv {}

fn iv(n: usize, side: u8) -> FixedIv {
    let mut bytes = [side; 16];
    bytes[..8].copy_from_slice(&(n as u64).to_be_bytes());
    FixedIv(bytes)
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

impl aeschat_core::session::ErrorType for RingWriter<'_> {
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

impl aeschat_core::session::ErrorType for RingReader<'_> {
    type Error = Infallible;
}

impl Read for RingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        Ok(self.0.borrow_mut().pop(buf))
    }
}

/// One side: its engine, its transport halves and its inbox (all inline, no heap).
struct Side<'a> {
    engine: Engine<'a>,
    reader: RingReader<'a>,
    writer: RingWriter<'a>,
    inbox: Inbox<[u8; CAPACITY]>,
    /// `Ok` once established, `Err` once failed.
    result: Option<Result<(), Error>>,
}

fn side<'a>(
    role: Role,
    secret: Secret<'a>,
    seed: u64,
    reader: RingReader<'a>,
    writer: RingWriter<'a>,
) -> Side<'a> {
    // The nonce from a seeded test generator (no heap), the clock a fixed time.
    let mut rng = TestRng::new(seed);
    Side {
        engine: Engine::new(config(role, secret), &mut rng, Some(1_700_000_000)),
        reader,
        writer,
        inbox: Inbox::new([0; CAPACITY]),
        result: None,
    }
}

impl Side<'_> {
    /// One poll of the engine, its bytes moved over the rings; returns whether anything moved.
    fn step(&mut self) -> bool {
        if self.result.is_some() {
            return false;
        }
        match self.engine.poll_inbox(&mut self.inbox) {
            Action::Transmit(bytes) => assert_eq!(self.writer.write(bytes), Ok(bytes.len())),
            Action::DeriveKeys => self.engine.derive_keys(),
            Action::NeedInput => {
                let room = self.inbox.unfilled().expect("a frame fits the inbox");
                let count = self.reader.read(room).unwrap();
                self.inbox.filled(count);
                return count > 0;
            }
            Action::Established => self.result = Some(Ok(())),
            Action::Failed(error) => self.result = Some(Err(error)),
            other => panic!("no record is sent during the handshake: {other:?}"),
        }
        true
    }

    /// The halves of the established session.
    fn split(&mut self) -> (Sender, Receiver) {
        self.engine.split().expect("established")
    }
}

/// Both engines polled in turn until neither moves; a side still waiting then meets the end
/// of the stream. The error each side met.
fn handshake_pair<'a>(
    client: &mut Side<'a>,
    server: &mut Side<'a>,
) -> (Option<Error>, Option<Error>) {
    while client.step() | server.step() {}
    for side in [&mut *client, &mut *server] {
        if side.result.is_none() {
            side.result = Some(Err(side.engine.end_of_stream()));
        }
    }
    (
        client.result.and_then(Result::err),
        server.result.and_then(Result::err),
    )
}

/// A whole session with `RECORDS` texts each way and both closes, checking every delivery.
fn whole_session(secret: Secret<'_>, seed: usize) -> usize {
    let to_server = RefCell::new(Ring::new());
    let to_client = RefCell::new(Ring::new());
    let mut client = side(
        Role::Client,
        secret,
        seed as u64,
        RingReader(&to_client),
        RingWriter(&to_server),
    );
    let mut server = side(
        Role::Server,
        secret,
        !(seed as u64),
        RingReader(&to_server),
        RingWriter(&to_client),
    );
    assert_eq!(handshake_pair(&mut client, &mut server), (None, None));
    let (mut client_tx, mut client_rx) = client.split();
    let (mut server_tx, mut server_rx) = server.split();
    let Side {
        reader: mut client_reader,
        writer: mut client_writer,
        inbox: mut client_inbox,
        ..
    } = client;
    let Side {
        reader: mut server_reader,
        writer: mut server_writer,
        inbox: mut server_inbox,
        ..
    } = server;

    let mut out = [0u8; RECORD_OUT];
    let mut delivered = 0;
    for n in 0..RECORDS {
        let text = &TEXT[..length(n + seed)];
        let now = 1_700_000_100 + n as u64;
        send_text(
            &mut client_tx,
            &mut client_writer,
            text,
            &mut iv(n, 1),
            Some(now),
            &mut out,
        )
        .unwrap();
        let got = receive(&mut server_rx, &mut server_reader, &mut server_inbox);
        assert_eq!(got, Ok(Incoming::Text(text)));
        let reply = &TEXT[MAX_MESSAGE - length(n + seed + 1)..];
        send_text(
            &mut server_tx,
            &mut server_writer,
            reply,
            &mut iv(n, 2),
            Some(now),
            &mut out,
        )
        .unwrap();
        let got = receive(&mut client_rx, &mut client_reader, &mut client_inbox);
        assert_eq!(got, Ok(Incoming::Text(reply)));
        delivered += 2;
    }
    send_close(
        &mut client_tx,
        &mut client_writer,
        &mut iv(0, 3),
        None,
        &mut out,
    )
    .unwrap();
    send_close(
        &mut server_tx,
        &mut server_writer,
        &mut iv(0, 4),
        None,
        &mut out,
    )
    .unwrap();
    let closed = Ok(Incoming::Closed);
    assert_eq!(
        receive(&mut server_rx, &mut server_reader, &mut server_inbox),
        closed
    );
    assert_eq!(
        receive(&mut client_rx, &mut client_reader, &mut client_inbox),
        closed
    );
    let ended = Err(SessionError::Protocol(Error::SessionEnded));
    assert_eq!(
        receive(&mut server_rx, &mut server_reader, &mut server_inbox),
        ended
    );
    delivered
}

/// A fresh key-file session over `to_server` and `to_client`: the client's sender and writer,
/// the server's receiver, reader and inbox.
fn key_file_session<'a>(
    to_server: &'a RefCell<Ring>,
    to_client: &'a RefCell<Ring>,
) -> (
    Sender,
    RingWriter<'a>,
    Receiver,
    RingReader<'a>,
    Inbox<[u8; CAPACITY]>,
) {
    let secret = Secret::PreSharedKey(&PSK);
    let mut client = side(
        Role::Client,
        secret,
        7,
        RingReader(to_client),
        RingWriter(to_server),
    );
    let mut server = side(
        Role::Server,
        secret,
        8,
        RingReader(to_server),
        RingWriter(to_client),
    );
    assert_eq!(handshake_pair(&mut client, &mut server), (None, None));
    let (tx, _) = client.split();
    let (_, rx) = server.split();
    (tx, client.writer, rx, server.reader, server.inbox)
}

/// The failures: a wrong password, a tampered record, an over-long frame, a cut.
fn failures() -> usize {
    let to_server = RefCell::new(Ring::new());
    let to_client = RefCell::new(Ring::new());
    let mut client = side(
        Role::Client,
        Secret::Password(b"wrong password"),
        1,
        RingReader(&to_client),
        RingWriter(&to_server),
    );
    let mut server = side(
        Role::Server,
        Secret::Password(PASSWORD),
        2,
        RingReader(&to_server),
        RingWriter(&to_client),
    );
    // The server's derivation finds the client's Finished wrong and says so (alert 1): the
    // engine's rule, no longer this test's.
    let failed = Some(Error::AuthenticationFailed);
    assert_eq!(handshake_pair(&mut client, &mut server), (failed, failed));

    // Fresh rings and a key-file session for each record failure.
    let to_server = RefCell::new(Ring::new());
    let to_client = RefCell::new(Ring::new());
    let (mut tx, mut writer, mut rx, mut reader, mut inbox) =
        key_file_session(&to_server, &to_client);
    let mut out = [0u8; RECORD_OUT];
    let record = tx
        .seal_text(b"tamper with me", &mut iv(0, 5), None, &mut out)
        .unwrap();
    let mut altered = [0u8; RECORD_OUT];
    let altered = &mut altered[..record.len()];
    altered.copy_from_slice(record);
    altered[50] ^= 0x01;
    writer.write(altered).unwrap();
    assert_eq!(
        receive(&mut rx, &mut reader, &mut inbox),
        Err(SessionError::Protocol(Error::RecordRejected))
    );

    // An over-long frame is refused from its header.
    let to_server = RefCell::new(Ring::new());
    let to_client = RefCell::new(Ring::new());
    let (_, mut writer, mut rx, mut reader, mut inbox) = key_file_session(&to_server, &to_client);
    writer.write(&[5, 0xFF, 0xFF, 0xFF, 0xFF]).unwrap();
    assert_eq!(
        receive(&mut rx, &mut reader, &mut inbox),
        Err(SessionError::Protocol(Error::FrameTooLong {
            max: CAPACITY - 5
        }))
    );
    // A cut inside a frame is a truncation.
    let to_server = RefCell::new(Ring::new());
    let to_client = RefCell::new(Ring::new());
    let (_, mut writer, mut rx, mut reader, mut inbox) = key_file_session(&to_server, &to_client);
    writer.write(&[5, 0, 0, 0, 100, b'g']).unwrap();
    assert_eq!(
        receive(&mut rx, &mut reader, &mut inbox),
        Err(SessionError::Protocol(Error::Truncated))
    );
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

impl aeschat_core::session::ErrorType for BlockingWriter {
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

impl aeschat_core::session::ErrorType for BlockingReader {
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
    let mut frames = Box::new(Inbox::new([0u8; CAPACITY]));
    let config = config(Role::Server, Secret::Password(PASSWORD));
    let mut engine = Engine::new(config, &mut TestRng::new(2), None);
    handshake(&mut reader, &mut writer, &mut *frames, &mut engine).expect("the server's handshake");
    let (mut tx, mut rx) = engine.split().expect("established");
    let mut out = Box::new([0u8; RECORD_OUT]);
    let mut echo = Box::new([0u8; MAX_MESSAGE]);
    let mut received = 0;
    while let Incoming::Text(text) = receive(&mut rx, &mut reader, &mut *frames).unwrap() {
        let len = text.len();
        echo[..len].copy_from_slice(text);
        received += 1;
        let mut iv = iv(received, 9);
        send_text(&mut tx, &mut writer, &echo[..len], &mut iv, None, &mut *out).unwrap();
    }
    send_close(&mut tx, &mut writer, &mut iv(0, 9), None, &mut *out).unwrap();
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
    let mut frames = Box::new(Inbox::new([0u8; CAPACITY]));
    let mut out = Box::new([0u8; RECORD_OUT]);
    let mut client_rng = TestRng::new(1);
    let peer = std::thread::spawn(move || echo_server(server_reader, server_writer));

    let (echoed, allocations) = allocations_during(|| {
        let config = config(Role::Client, Secret::Password(PASSWORD));
        let mut engine = Engine::new(config, &mut client_rng, None);
        handshake(&mut reader, &mut writer, &mut *frames, &mut engine)
            .expect("the client's handshake");
        let (mut tx, mut rx) = engine.split().expect("established");
        let mut echoed = 0;
        for n in 0..RECORDS {
            let text = &TEXT[..length(n)];
            send_text(&mut tx, &mut writer, text, &mut iv(n, 1), None, &mut *out).unwrap();
            let got = receive(&mut rx, &mut reader, &mut *frames);
            assert_eq!(got, Ok(Incoming::Text(text)));
            echoed += 1;
        }
        send_close(&mut tx, &mut writer, &mut iv(0, 1), None, &mut *out).unwrap();
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
