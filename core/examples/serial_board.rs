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

use core::convert::Infallible;
use core::fmt;

use aeschat_core::fernet::Key;
use aeschat_core::rand_core::{TryCryptoRng, TryRng};
use aeschat_core::session::{
    frame_capacity, record_frame_len, Action, Config, Engine, Error, Inbox, Receiver, Role, Secret,
    Sender, FRAME_HEADER_LEN, HANDSHAKE_FRAME_LEN,
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
/// These boards have no real-time clock: the hellos say so, and records are dated 0, which
/// the receiver does not check.
const NO_CLOCK: Option<u64> = None;
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
/// SplitMix64 is NOT cryptographically secure, and claims to be one here only so the example
/// runs anywhere: a real board MUST hand the engine its hardware TRNG (or a CSPRNG seeded from
/// it). The engine draws the handshake nonce and every record's IV from it; predictable ones
/// would let an attacker precompute or correlate what the protocol keeps fresh.
struct FakeTrng(u64);

impl TryRng for FakeTrng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        self.try_next_u64().map(|word| word as u32)
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Ok(z ^ (z >> 31))
    }

    fn try_fill_bytes(&mut self, out: &mut [u8]) -> Result<(), Infallible> {
        for chunk in out.chunks_mut(8) {
            let word = self.try_next_u64()?.to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        Ok(())
    }
}

/// See above: a stand-in, for the example only.
impl TryCryptoRng for FakeTrng {}

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

    /// Takes the engine's next bytes to send (only when the previous frame is gone).
    fn load(&mut self, bytes: &[u8]) {
        let len = bytes.len().min(OUT_CAPACITY);
        self.frame[..len].copy_from_slice(&bytes[..len]);
        (self.len, self.sent) = (len, 0);
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
    close_sent: bool,
    peer_closed: bool,
}

/// One board: the bytes it has received, the protocol engine (the handshake, then the session,
/// in one place), its transmitter and its random number generator.
struct Node<'a> {
    name: &'static str,
    inbox: Inbox<[u8; FRAME_CAPACITY]>,
    engine: Engine<'a>,
    tx: Transmitter,
    trng: FakeTrng,
    script: Script,
    outcome: Option<Result<(), Error>>,
}

type Log<'l> = &'l mut dyn FnMut(fmt::Arguments<'_>);

impl<'a> Node<'a> {
    fn new(name: &'static str, config: Config<'a>, seed: u64, script: Script) -> Self {
        let mut trng = FakeTrng(seed);
        Node {
            name,
            inbox: Inbox::new([0; FRAME_CAPACITY]),
            engine: Engine::new(config, &mut trng, NO_CLOCK),
            tx: Transmitter::new(None),
            trng,
            script,
            outcome: None,
        }
    }

    /// The line goes dead only once this board has finished and its last frame has left.
    fn hung_up(&self) -> bool {
        self.outcome.is_some() && self.tx.is_idle()
    }

    /// Takes at most ONE byte from the UART (what an RX interrupt delivers). `peer_hung_up`
    /// models the line going dead once its bytes are read.
    fn receive(&mut self, uart: &mut Consumer<'_, u8>, peer_hung_up: bool, log: Log) {
        if self.outcome.is_some() {
            return;
        }
        match uart.dequeue() {
            // The inbox holds the largest frame this board accepts, and the engine takes each
            // frame as soon as it is whole, so there is always room for the next byte.
            Some(byte) => match self.inbox.unfilled() {
                Ok(space) => {
                    space[0] = byte;
                    self.inbox.filled(1);
                }
                Err(error) => self.end(Err(error), log),
            },
            None if peer_hung_up => {
                let error = self.engine.end_of_stream();
                let clean = self.script.close_sent && error == Error::SessionEnded;
                self.end(if clean { Ok(()) } else { Err(error) }, log);
            }
            None => {}
        }
    }

    /// One tick of protocol work: whatever the engine asks for, while the transmitter is free
    /// to take what it may send.
    fn step(&mut self, log: Log) {
        if self.outcome.is_some() || !self.tx.is_idle() {
            return;
        }
        match self.engine.poll_inbox(&mut self.inbox) {
            Action::Transmit(bytes) => {
                log(format_args!("{} -> {} bytes", self.name, bytes.len()));
                self.tx.load(bytes);
            }
            // CPace's second half and HKDF: one call, in both modes.
            Action::DeriveKeys => self.engine.derive_keys(),
            Action::Established => log(format_args!(
                "{}: established; the peer accepts messages of up to {} bytes",
                self.name,
                self.engine
                    .sender()
                    .map_or(0, |sender| sender.max_message_len())
            )),
            Action::Text(text) => {
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
            Action::Closed => {
                if !self.script.peer_closed {
                    log(format_args!("{} <- close", self.name));
                }
                self.script.peer_closed = true;
                self.send_next(log);
            }
            Action::NeedInput => self.send_next(log),
            Action::Failed(error) => self.end(Err(error), log),
        }
    }

    /// Seals this board's next message, or its close once the conversation is over for it.
    fn send_next(&mut self, log: Log) {
        let Some(sender) = self.engine.sender() else {
            return; // still in the handshake
        };
        let script = &mut self.script;
        let sealed = if let Some(&text) = script.outgoing.get(script.sent) {
            script.sent += 1;
            // The engine draws a fresh IV for every record from the (here: fake) TRNG.
            seal(&mut self.tx, |out| {
                sender.seal_text(text, &mut self.trng, NO_CLOCK, out)
            })
        } else if !script.close_sent
            && script.received == script.incoming.len()
            && (script.closes_first || script.peer_closed)
        {
            script.close_sent = true;
            log(format_args!("{} -> close", self.name));
            seal(&mut self.tx, |out| {
                sender.seal_close(&mut self.trng, NO_CLOCK, out)
            })
        } else {
            Ok(())
        };
        if let Err(error) = sealed {
            self.end(Err(error), log);
        } else if script.close_sent && script.peer_closed {
            self.end(Ok(()), log);
        }
    }

    fn end(&mut self, outcome: Result<(), Error>, log: Log) {
        match outcome {
            Ok(()) => log(format_args!("{}: closed, nothing lost", self.name)),
            Err(error) => log(format_args!("{}: session failed: {error}", self.name)),
        }
        self.outcome = Some(outcome);
    }
}

/// Seals one record straight into the transmit buffer.
fn seal(
    tx: &mut Transmitter,
    write: impl FnOnce(&mut [u8]) -> Result<&[u8], Error>,
) -> Result<(), Error> {
    let len = write(&mut tx.frame)?.len();
    (tx.len, tx.sent) = (len, 0);
    Ok(())
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
            close_sent: false,
            peer_closed: false,
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
            close_sent: false,
            peer_closed: false,
        },
    );
    server.tx.corrupt_at = scenario.corrupt_server_byte;

    // The serial line: one FIFO per direction, each split into the writer's and reader's end.
    let mut to_server: Queue<u8, UART_FIFO> = Queue::new();
    let mut to_client: Queue<u8, UART_FIFO> = Queue::new();
    let (mut client_tx, mut server_rx) = to_server.split();
    let (mut server_tx, mut client_rx) = to_client.split();

    for tick in 0..MAX_TICKS {
        client.tx.pump(&mut client_tx);
        server.tx.pump(&mut server_tx);
        let (client_gone, server_gone) = (client.hung_up(), server.hung_up());
        client.receive(&mut client_rx, server_gone, log);
        server.receive(&mut server_rx, client_gone, log);
        client.step(log);
        server.step(log);
        if let (Some(client_end), Some(server_end)) = (client.outcome, server.outcome) {
            assert_eq!(client_end, scenario.client_outcome, "client outcome");
            assert_eq!(server_end, scenario.server_outcome, "server outcome");
            if client_end.is_ok() {
                assert_eq!(client.script.received, SERVER_SAYS.len());
                assert_eq!(server.script.received, CLIENT_SAYS.len());
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
        // Protocol 2: both modes run CPace (two scalar multiplications per side, no PBKDF2), so
        // a board can use a password as cheaply as a provisioned random key.
        Scenario {
            title: "pre-shared key",
            client: psk(Role::Client, &PROVISIONED_KEY),
            server: psk(Role::Server, &PROVISIONED_KEY),
            corrupt_server_byte: None,
            client_outcome: Ok(()),
            server_outcome: Ok(()),
        },
        // Password mode: the password is CPace's PRS, unstretched (PROTOCOL.md §4.5).
        Scenario {
            title: "password",
            client: password(Role::Client),
            server: password(Role::Server),
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
        // A wrong password: one failed key confirmation on each side, one guess for the server.
        Scenario {
            title: "a wrong password",
            client: Config::new(
                Role::Client,
                Secret::Password(b"correct horse battery stapler"),
            )
            .with_max_message_len(MAX_MESSAGE_LEN),
            server: password(Role::Server),
            corrupt_server_byte: None,
            client_outcome: Err(Error::AuthenticationFailed),
            server_outcome: Err(Error::AuthenticationFailed),
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
            "Inbox<[u8; frame_capacity(256)]>",
            size_of::<Inbox<[u8; FRAME_CAPACITY]>>(),
        ),
        ("transmit buffer record_frame_len(256)", OUT_CAPACITY),
        (
            "Engine: the handshake, then the session, in one place",
            size_of::<Engine<'static>>(),
        ),
        ("(Sender, if split)", size_of::<Sender>()),
        ("(Receiver, if split)", size_of::<Receiver>()),
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
