//! Two boards chat over a serial line, the way firmware would run aeschat.
//!
//! Everything a session needs lives in fixed-size arrays sized at compile time from the largest
//! message (256 bytes here): no heap, no threads, no clock, no operating system. The "UART" is
//! two small ring buffers (`heapless::spsc::Queue`, the queue an interrupt handler and a main
//! loop would share), and each tick of one superloop delivers ONE byte in each direction, so
//! every frame arrives in many pieces, as it does on a real serial port.
//!
//! Only `main` and the log printing use `std`; the session path (`Node` and everything under it)
//! would compile unchanged in a `#![no_std]` firmware crate. Here each board lives in the stack
//! frame of `run`; on a board it would sit in a `static` (through a `StaticCell` or the like) or in
//! the frame of a `main` that never returns, so its size is known at link time.
//!
//! Run it with `cargo run -p aeschat-core --example serial_board`; `cargo test` runs the same
//! scenarios as a test, and any unexpected outcome panics.
#![allow(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    reason = "the simulated boards' own bookkeeping, not attacker input (the lint is for the library's parsers)"
)]

use core::fmt;

use aeschat_core::{
    frame_capacity, record_frame_len, Alert, Config, Error, Frame, FrameKind, FrameReader,
    Handshake, HandshakeState, Incoming, Iv, Key, Receiver, Role, Secret, Sender, FRAME_HEADER_LEN,
    HANDSHAKE_FRAME_LEN, IV_LEN, NONCE_LEN,
};
use heapless::spsc::{Consumer, Producer, Queue};

/// The longest chat message either board accepts. Each board announces it in its hello, and the
/// peer's `Sender` refuses anything longer, so no record can outgrow the buffers below.
const MAX_MESSAGE_LEN: usize = 256;
/// The receive buffer: the largest record of `MAX_MESSAGE_LEN` bytes, and every handshake frame.
const FRAME_CAPACITY: usize = frame_capacity(MAX_MESSAGE_LEN);
/// The transmit buffer: one whole outgoing frame (a record is sealed in one piece, and the UART
/// FIFO is far smaller than a frame).
const OUT_CAPACITY: usize = record_frame_len(MAX_MESSAGE_LEN);
const _: () = assert!(
    OUT_CAPACITY >= HANDSHAKE_FRAME_LEN,
    "handshake frames must fit too"
);
/// The depth of each direction's UART FIFO (the queue keeps one slot free, so it holds 15).
const UART_FIFO: usize = 16;
/// A board without a real-time clock says so with time 0: the hellos then report no clock, and
/// records carry timestamp 0, which the receiver does not check.
const NO_CLOCK: u64 = 0;
/// Generous: a whole session here takes a few thousand ticks. Hitting it means a deadlock.
const MAX_TICKS: u32 = 200_000;
/// The bytes the server sends before its first record: ServerHello (the largest handshake
/// frame) and ServerFinished (a 32-byte MAC).
const SERVER_HANDSHAKE_BYTES: usize = HANDSHAKE_FRAME_LEN + FRAME_HEADER_LEN + 32;

/// The pre-shared key both boards were provisioned with (in flash, in a real product). Example
/// only: a real pair of boards gets 32 random bytes, e.g. from `aeschat genkey`.
static PROVISIONED_KEY: Key = Key::from_bytes(*b"example key: provision randomly!");
/// A key some other pair of boards holds.
static OTHER_KEY: Key = Key::from_bytes(*b"a different key, another device!");
/// The one message that fills a record to the limit.
static LONGEST: [u8; MAX_MESSAGE_LEN] = [b'#'; MAX_MESSAGE_LEN];

/// STAND-IN for the board's hardware random number generator, so that every run is the same.
/// SplitMix64 is NOT cryptographically secure: a real board MUST draw its handshake nonce and
/// every IV from its hardware TRNG (or a CSPRNG seeded from it). Predictable nonces and IVs
/// would let an attacker precompute or correlate what the protocol keeps fresh.
struct FakeTrng(u64);

impl FakeTrng {
    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
    }

    fn iv(&mut self) -> Iv {
        let mut bytes = [0u8; IV_LEN];
        self.fill(&mut bytes);
        Iv::from_bytes(bytes)
    }
}

/// One outgoing frame, handed to the UART a few bytes at a time as its FIFO has room.
struct Transmitter {
    frame: [u8; OUT_CAPACITY],
    len: usize,
    sent: usize,
    /// Bytes put on the line so far, to aim the fault injection.
    line_position: usize,
    /// Flip one bit of the byte at this position of the stream: line noise or an attacker.
    corrupt_at: Option<usize>,
}

impl Transmitter {
    const fn new(corrupt_at: Option<usize>) -> Self {
        Transmitter {
            frame: [0; OUT_CAPACITY],
            len: 0,
            sent: 0,
            line_position: 0,
            corrupt_at,
        }
    }

    fn is_idle(&self) -> bool {
        self.sent == self.len
    }

    /// Lets `write` put the next frame into the buffer (only when the previous one is gone).
    fn load(
        &mut self,
        write: impl FnOnce(&mut [u8]) -> Result<&[u8], Error>,
    ) -> Result<usize, Error> {
        let len = write(&mut self.frame)?.len();
        (self.len, self.sent) = (len, 0);
        Ok(len)
    }

    /// Fills the UART FIFO with as much of the frame as it takes (what a TX interrupt does).
    fn pump(&mut self, uart: &mut Producer<'_, u8>) {
        while let Some(&byte) = self.frame.get(self.sent..self.len).and_then(<[u8]>::first) {
            let noisy = if self.corrupt_at == Some(self.line_position) {
                byte ^ 0x01
            } else {
                byte
            };
            if uart.enqueue(noisy).is_err() {
                break; // FIFO full: continue on a later tick
            }
            self.sent += 1;
            self.line_position += 1;
        }
    }
}

/// What this board says and what it expects to hear, in order.
struct Script {
    outgoing: &'static [&'static [u8]],
    sent: usize,
    incoming: &'static [&'static [u8]],
    received: usize,
    /// The client ends the conversation; the server answers the client's close with its own.
    closes_first: bool,
}

/// A session after the handshake: the two halves, and how far the close has got.
struct Chat {
    sender: Sender,
    receiver: Receiver,
    close_sent: bool,
    peer_closed: bool,
}

/// Where a board stands. One enum, so the handshake's memory is reused by the session.
// The variants differ in size on purpose: boxing the large one is exactly what firmware avoids.
#[allow(clippy::large_enum_variant)]
enum Phase<'a> {
    Handshaking(Handshake<'a>),
    Chatting(Chat),
    /// Both directions ended with authenticated close records: nothing was lost.
    Closed,
    Failed(Error),
}

/// One board: its receive buffer and everything else, as separate fields so a frame borrowed
/// from the reader can be handed to the protocol state.
struct Node<'a> {
    frames: FrameReader<FRAME_CAPACITY>,
    engine: Engine<'a>,
}

struct Engine<'a> {
    name: &'static str,
    phase: Phase<'a>,
    tx: Transmitter,
    trng: FakeTrng,
    script: Script,
}

type Log<'l> = &'l mut dyn FnMut(fmt::Arguments<'_>);

impl<'a> Node<'a> {
    fn new(name: &'static str, config: Config<'a>, seed: u64, script: Script) -> Self {
        let mut trng = FakeTrng(seed);
        let mut nonce = [0u8; NONCE_LEN];
        trng.fill(&mut nonce);
        Node {
            frames: FrameReader::new(),
            engine: Engine {
                name,
                phase: Phase::Handshaking(Handshake::new(config, nonce, NO_CLOCK)),
                tx: Transmitter::new(None),
                trng,
                script,
            },
        }
    }

    /// Takes at most ONE byte from the UART (what an RX interrupt delivers) and acts on any
    /// frame it completes. `peer_hung_up` models the line going dead once its bytes are read.
    fn receive(&mut self, uart: &mut Consumer<'_, u8>, peer_hung_up: bool, log: Log) {
        if self.engine.is_over() {
            return;
        }
        let Some(byte) = uart.dequeue() else {
            if peer_hung_up {
                self.engine.end_of_stream(log);
            }
            return;
        };
        // A completed frame is handled below before the next byte arrives, so the reader always
        // has room for this one: `push` takes it whole or fails on a bad header.
        match self.frames.push(&[byte]) {
            Ok(_) => {
                if let Some(frame) = self.frames.frame() {
                    self.engine.on_frame(frame, log);
                }
            }
            Err(error) => self.engine.fail(error, true, log),
        }
    }
}

impl<'a> Engine<'a> {
    fn is_over(&self) -> bool {
        matches!(self.phase, Phase::Closed | Phase::Failed(_))
    }

    /// The line goes dead only once this board has finished and its last frame has left.
    fn hung_up(&self) -> bool {
        self.is_over() && self.tx.is_idle()
    }

    fn outcome(&self) -> Option<Result<(), Error>> {
        match self.phase {
            Phase::Closed => Some(Ok(())),
            Phase::Failed(error) => Some(Err(error)),
            _ => None,
        }
    }

    fn on_frame(&mut self, frame: Frame<'_>, log: Log) {
        let kind = frame.kind;
        match &mut self.phase {
            Phase::Handshaking(handshake) => match handshake.read_message(frame) {
                Ok(()) => log(format_args!("{} <- {kind:?}", self.name)),
                // An alert is never answered with an alert: the peer has already given up.
                Err(error) => self.fail(error, kind != FrameKind::Alert, log),
            },
            Phase::Chatting(chat) => match chat.receiver.open(frame) {
                Ok(Incoming::Text(text)) => {
                    let script = &mut self.script;
                    let expected = script.incoming.get(script.received).copied();
                    assert_eq!(Some(text), expected, "{} got the wrong text", self.name);
                    script.received += 1;
                    match core::str::from_utf8(text) {
                        Ok(text) if text.len() <= 40 => {
                            log(format_args!("{} <- text {text:?}", self.name))
                        }
                        _ => log(format_args!(
                            "{} <- text of {} bytes",
                            self.name,
                            text.len()
                        )),
                    }
                }
                Ok(Incoming::Closed) => {
                    chat.peer_closed = true;
                    log(format_args!("{} <- close", self.name));
                }
                Err(error) => self.fail(error, false, log),
            },
            Phase::Closed | Phase::Failed(_) => {}
        }
    }

    /// Does this board's next piece of work, if its transmitter is free for it.
    fn step(&mut self, log: Log) {
        // A finished handshake becomes a session at once, so a record can never meet a
        // handshake that is done but not yet turned into a session.
        if matches!(&self.phase, Phase::Handshaking(h) if h.state() == HandshakeState::Established)
        {
            if let Phase::Handshaking(handshake) =
                core::mem::replace(&mut self.phase, Phase::Closed)
            {
                self.phase = match handshake.into_session() {
                    Ok(session) => {
                        // Both boards sent time 0 ("no clock"), so there is no offset to report.
                        assert_eq!(session.peer_clock_offset(), None);
                        let (sender, receiver) = session.split();
                        log(format_args!(
                            "{}: established; the peer accepts messages of up to {} bytes",
                            self.name,
                            sender.max_message_len()
                        ));
                        Phase::Chatting(Chat {
                            sender,
                            receiver,
                            close_sent: false,
                            peer_closed: false,
                        })
                    }
                    Err(error) => Phase::Failed(error),
                };
            }
        }
        if !self.tx.is_idle() {
            return;
        }
        let result = match &mut self.phase {
            Phase::Handshaking(handshake) => match handshake.state() {
                HandshakeState::SendHello | HandshakeState::SendFinished => {
                    self.tx.load(|out| handshake.write_message(out)).map(|len| {
                        let kind = self
                            .tx
                            .frame
                            .first()
                            .copied()
                            .and_then(FrameKind::from_byte);
                        if let Some(kind) = kind {
                            log(format_args!("{} -> {kind:?} ({len} bytes)", self.name));
                        }
                    })
                }
                // The slow step with a password (PBKDF2), a slice per tick so that the
                // superloop (and its watchdog) keeps running; instant with a pre-shared key.
                HandshakeState::DeriveKeys => handshake
                    .derive_keys_in_steps(PBKDF2_ITERATIONS_PER_TICK)
                    .map(|_| ()),
                _ => Ok(()),
            },
            Phase::Chatting(chat) => {
                let script = &mut self.script;
                let result = if let Some(&text) = script.outgoing.get(script.sent) {
                    script.sent += 1;
                    // A fresh IV for every record, from the (here: fake) hardware RNG.
                    let iv = self.trng.iv();
                    self.tx
                        .load(|out| chat.sender.seal_text(text, NO_CLOCK, &iv, out))
                        .map(|_| ())
                } else if !chat.close_sent
                    && script.received == script.incoming.len()
                    && (script.closes_first || chat.peer_closed)
                {
                    let iv = self.trng.iv();
                    chat.close_sent = true;
                    log(format_args!("{} -> close", self.name));
                    self.tx
                        .load(|out| chat.sender.seal_close(NO_CLOCK, &iv, out))
                        .map(|_| ())
                } else {
                    Ok(())
                };
                if chat.close_sent && chat.peer_closed {
                    self.phase = Phase::Closed;
                }
                result
            }
            Phase::Closed | Phase::Failed(_) => Ok(()),
        };
        if let Err(error) = result {
            // A server's derivation checks the client's Finished: a wrong one is told (alert 1).
            let tell_peer = matches!(error, Error::AuthenticationFailed);
            self.fail(error, tell_peer, log);
        }
    }

    /// The connection ended: mid-handshake it was interrupted; in a session it is a truncation
    /// unless the peer's authenticated close came first.
    fn end_of_stream(&mut self, log: Log) {
        let error = match &mut self.phase {
            Phase::Chatting(chat) => chat.receiver.end_of_stream(),
            _ => Error::HandshakeInterrupted,
        };
        self.fail(error, false, log);
    }

    /// Ends this board's session. During the handshake the peer is told why, when it should
    /// know (`Alert::for_error`), and only if no frame is half sent: an alert spliced into the
    /// middle of another frame would be garbage to the peer.
    fn fail(&mut self, error: Error, may_alert: bool, log: Log) {
        if may_alert && matches!(self.phase, Phase::Handshaking(_)) && self.tx.is_idle() {
            if let Some(alert) = Alert::for_error(error) {
                if self.tx.load(|out| alert.write(out)).is_ok() {
                    log(format_args!("{} -> alert {alert:?}", self.name));
                }
            }
        }
        log(format_args!("{}: session failed: {error}", self.name));
        self.phase = Phase::Failed(error);
    }
}

/// One run of the two boards, and what each must end with.
struct Scenario {
    title: &'static str,
    client: Config<'static>,
    server: Config<'static>,
    /// A position in the server-to-client byte stream to corrupt.
    corrupt_server_byte: Option<usize>,
    client_outcome: Result<(), Error>,
    server_outcome: Result<(), Error>,
}

const CLIENT_SAYS: &[&[u8]] = &[b"hello from the client board", b"temp=21.5C rh=40%"];
const SERVER_SAYS: &[&[u8]] = &[b"hello from the server board", &LONGEST];

/// PBKDF2 iterations a board runs per tick of its superloop: two SHA-256 compressions each, a
/// few milliseconds on a Cortex-M4-class chip, well within a typical watchdog period.
const PBKDF2_ITERATIONS_PER_TICK: u32 = 100;

/// Runs both boards in one superloop until each has ended, and returns the ticks it took.
fn run(scenario: &Scenario, log: Log) -> u32 {
    let mut client = Node::new(
        "client",
        scenario.client,
        0xC11E_2700,
        Script {
            outgoing: CLIENT_SAYS,
            sent: 0,
            incoming: SERVER_SAYS,
            received: 0,
            closes_first: true,
        },
    );
    let mut server = Node::new(
        "server",
        scenario.server,
        0x5E2F_E200,
        Script {
            outgoing: SERVER_SAYS,
            sent: 0,
            incoming: CLIENT_SAYS,
            received: 0,
            closes_first: false,
        },
    );
    server.engine.tx.corrupt_at = scenario.corrupt_server_byte;

    // The serial line: one FIFO per direction, each split into the writer's and reader's end.
    let mut to_server: Queue<u8, UART_FIFO> = Queue::new();
    let mut to_client: Queue<u8, UART_FIFO> = Queue::new();
    let (mut client_tx, mut server_rx) = to_server.split();
    let (mut server_tx, mut client_rx) = to_client.split();

    for tick in 0..MAX_TICKS {
        client.engine.tx.pump(&mut client_tx);
        server.engine.tx.pump(&mut server_tx);
        let (client_gone, server_gone) = (client.engine.hung_up(), server.engine.hung_up());
        client.receive(&mut client_rx, server_gone, log);
        server.receive(&mut server_rx, client_gone, log);
        client.engine.step(log);
        server.engine.step(log);
        if let (Some(client_end), Some(server_end)) =
            (client.engine.outcome(), server.engine.outcome())
        {
            assert_eq!(client_end, scenario.client_outcome, "client outcome");
            assert_eq!(server_end, scenario.server_outcome, "server outcome");
            if client_end.is_ok() {
                assert_eq!(client.engine.script.received, SERVER_SAYS.len());
                assert_eq!(server.engine.script.received, CLIENT_SAYS.len());
            }
            return tick;
        }
    }
    panic!(
        "{}: the boards stalled after {MAX_TICKS} ticks",
        scenario.title
    );
}

fn scenarios() -> [Scenario; 5] {
    let psk = |role, key| {
        Config::new(role, Secret::PreSharedKey(key)).with_max_message_len(MAX_MESSAGE_LEN)
    };
    let password = |role| {
        Config::new(role, Secret::Password(b"correct horse battery staple"))
            .with_max_message_len(MAX_MESSAGE_LEN)
    };
    [
        // The mode for boards: PBKDF2 at the default 600,000 iterations takes about 0.1 s on a
        // desktop but minutes on a microcontroller, so boards share a random 32-byte key instead.
        Scenario {
            title: "pre-shared key",
            client: psk(Role::Client, &PROVISIONED_KEY),
            server: psk(Role::Server, &PROVISIONED_KEY),
            corrupt_server_byte: None,
            client_outcome: Ok(()),
            server_outcome: Ok(()),
        },
        // Password mode works the same way; a low work factor keeps the demo quick. Never ship
        // `with_insecure_iterations`: it makes offline password guessing cheap.
        Scenario {
            title: "password, 1,000 iterations (demo only)",
            client: password(Role::Client).with_insecure_iterations(1_000),
            server: password(Role::Server).with_insecure_iterations(1_000),
            corrupt_server_byte: None,
            client_outcome: Ok(()),
            server_outcome: Ok(()),
        },
        // Key confirmation: the server finds out from the client's Finished and tells it.
        Scenario {
            title: "boards with different keys",
            client: psk(Role::Client, &PROVISIONED_KEY),
            server: psk(Role::Server, &OTHER_KEY),
            corrupt_server_byte: None,
            client_outcome: Err(Error::AuthenticationFailed),
            server_outcome: Err(Error::AuthenticationFailed),
        },
        // Downgrade protection: a client at the default minimum refuses a weak work factor
        // before it derives anything from the password.
        Scenario {
            title: "server announces a weak work factor",
            client: password(Role::Client),
            server: password(Role::Server).with_insecure_iterations(1_000),
            corrupt_server_byte: None,
            client_outcome: Err(Error::IterationsTooLow {
                announced: 1_000,
                minimum: 600_000,
            }),
            server_outcome: Err(Error::IterationsRefused),
        },
        // One flipped bit in the server's first record: the client rejects the record and
        // hangs up; the server, never having seen the client's close, reports a truncation.
        Scenario {
            title: "a bit flips in the server's first record",
            client: psk(Role::Client, &PROVISIONED_KEY),
            server: psk(Role::Server, &PROVISIONED_KEY),
            corrupt_server_byte: Some(SERVER_HANDSHAKE_BYTES + FRAME_HEADER_LEN + 40),
            client_outcome: Err(Error::RecordRejected),
            server_outcome: Err(Error::Truncated),
        },
    ]
}

fn run_all(log: Log) {
    for scenario in &scenarios() {
        log(format_args!("== {}", scenario.title));
        let ticks = run(scenario, log);
        // At 115,200 baud one byte takes about 87 µs on the wire.
        log(format_args!(
            "== done in {ticks} ticks (one byte each way per tick: {} ms at 115200 baud)\n",
            u64::from(ticks) * 10_000 / 115_200
        ));
    }
    let sizes = [
        (
            "FrameReader<frame_capacity(256)>",
            size_of::<FrameReader<FRAME_CAPACITY>>(),
        ),
        ("transmit buffer record_frame_len(256)", OUT_CAPACITY),
        (
            "Handshake (during the handshake)",
            size_of::<Handshake<'static>>(),
        ),
        ("Sender (after it)", size_of::<Sender>()),
        ("Receiver (after it)", size_of::<Receiver>()),
        (
            "Phase: the handshake, then the halves, in one place",
            size_of::<Phase<'static>>(),
        ),
        (
            "UART FIFOs, receive and transmit",
            2 * size_of::<Queue<u8, UART_FIFO>>(),
        ),
        ("one whole board (Node)", size_of::<Node<'static>>()),
    ];
    log(format_args!("RAM per board, in bytes:"));
    for (what, bytes) in sizes {
        log(format_args!("  {bytes:>6}  {what}"));
    }
}

fn main() {
    run_all(&mut |line| println!("{line}"));
}

#[test]
fn serial_board_scenarios() {
    run_all(&mut |line| println!("{line}"));
}
