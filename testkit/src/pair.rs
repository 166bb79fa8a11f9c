//! The one in-memory client/server pair: two engines pumped in one thread, with a man in the
//! middle on every transmission.

use std::collections::VecDeque;

use aeschat_core::session::{
    record_frame_len, Action, Config, Engine, Error, HandshakeState, Receiver, Role, Sender,
};

use crate::rng::TestRng;

/// Which end of the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The side that connects.
    Client,
    /// The side that listens.
    Server,
}

impl Side {
    /// The other end.
    pub const fn peer(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }

    /// `"client"` or `"server"`, for messages.
    pub const fn name(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }

    /// The protocol role of this end.
    pub const fn role(self) -> Role {
        match self {
            Side::Client => Role::Client,
            Side::Server => Role::Server,
        }
    }
}

/// What a side's engine handed up from a record, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Got {
    /// A text, as sent.
    Text(Vec<u8>),
    /// The peer's authenticated close.
    Closed,
}

/// The man in the middle of a pair without one ([`Pair::with_middle`] sets one): it changes
/// nothing.
pub type NoMiddle = fn(Side, &mut Vec<u8>);
/// The admission of a pair without one ([`Pair::with_admission`] sets one): every derivation
/// runs.
pub type AdmitAll = fn(Side) -> Result<(), Error>;

fn no_middle(_: Side, _: &mut Vec<u8>) {}

fn admit_all(_: Side) -> Result<(), Error> {
    Ok(())
}

/// One side of the pair.
struct End<'a> {
    engine: Engine<'a>,
    /// Bytes delivered to the engine and not yet discarded by it.
    input: Vec<u8>,
    /// Bytes on their way here, not yet delivered (fragmentation delivers them piecemeal).
    in_flight: VecDeque<u8>,
    /// `None` while handshaking, `Ok` once established, `Err` once failed.
    result: Option<Result<(), Error>>,
    states: Vec<HandshakeState>,
    received: Vec<Got>,
    /// The peer's close arrived: the engine will only say so again.
    closed: bool,
    /// Derivations this side ran to completion.
    derivations: usize,
    rng: TestRng,
}

impl<'a> End<'a> {
    fn new(engine: Engine<'a>, seed: u64) -> End<'a> {
        End {
            states: engine.handshake_state().into_iter().collect(),
            engine,
            input: Vec::new(),
            in_flight: VecDeque::new(),
            result: None,
            received: Vec::new(),
            closed: false,
            derivations: 0,
            rng: TestRng::new(seed),
        }
    }

    /// True when polling can change nothing (failed, or the peer's close taken).
    fn is_done(&self) -> bool {
        self.closed || matches!(self.result, Some(Err(_)))
    }

    fn note_state(&mut self) {
        if let Some(state) = self.engine.handshake_state() {
            if self.states.last() != Some(&state) {
                self.states.push(state);
            }
        }
    }
}

/// The one in-memory client/server pair, for tests, fuzzing and benches: two [`Engine`]s in one
/// thread, every transmission recorded (the wire), passed through a middle hook (fault
/// injection) and delivered to the peer whole or in fragments of `n` bytes.
///
/// The pair only moves bytes: every protocol rule (alerts, framing, the step from handshake to
/// session) is the engines' own.
///
/// ```
/// use aeschat_core::session::{Config, Engine, Error, Role, Secret};
/// use aeschat_testkit::{Got, Pair, Side, TestRng};
///
/// let config = |role| Config::new(role, Secret::Password(b"hunter2"));
/// let client = Engine::new(config(Role::Client), &mut TestRng::new(1), None);
/// let server = Engine::new(config(Role::Server), &mut TestRng::new(2), None);
///
/// // A clean handshake, then texts both ways.
/// let mut pair = Pair::new(client, server);
/// pair.run();
/// assert_eq!(pair.result(Side::Client), Some(Ok(())));
/// pair.send_text(Side::Client, b"hello")?;
/// pair.send_close(Side::Server)?;
/// pair.run();
/// assert_eq!(pair.take_received(Side::Server), [Got::Text(b"hello".to_vec())]);
/// assert_eq!(pair.take_received(Side::Client), [Got::Closed]);
///
/// // A man in the middle who flips a bit of the ServerHello, delivered one byte at a time.
/// let client = Engine::new(config(Role::Client), &mut TestRng::new(1), None);
/// let server = Engine::new(config(Role::Server), &mut TestRng::new(2), None);
/// let outcome = Pair::new(client, server)
///     .with_fragments(1)
///     .with_middle(|from, bytes| if from == Side::Server && bytes[0] == 2 { bytes[20] ^= 1 })
///     .finish();
/// assert_eq!(outcome.client, Err(Error::AuthenticationFailed));
/// assert_eq!(outcome.server, Err(Error::AuthenticationFailed)); // told by the client's alert 1
/// # Ok::<(), Error>(())
/// ```
///
/// The middle hook and the admission are type parameters (`M`, `A`), so a closure that
/// borrows the test's own variables does not tie them to the [`Outcome`].
pub struct Pair<'a, M = NoMiddle, A = AdmitAll> {
    ends: [End<'a>; 2],
    wire: Vec<(Side, Vec<u8>)>,
    middle: M,
    admission: A,
    fragment: usize,
    now: Option<u64>,
}

impl<'a> Pair<'a> {
    /// A pair over two engines (`client` must have the client role). Nothing moves before
    /// [`Pair::run`].
    pub fn new(client: Engine<'a>, server: Engine<'a>) -> Pair<'a> {
        Pair {
            ends: [End::new(client, 0xC11E), End::new(server, 0x5E4E)],
            wire: Vec::new(),
            middle: no_middle,
            admission: admit_all,
            fragment: usize::MAX,
            now: None,
        }
    }

    /// A pair of fresh engines over `client` and `server`, their nonces drawn from
    /// [`TestRng`]s seeded from `seed`, without clocks.
    pub fn from_configs(client: Config<'a>, server: Config<'a>, seed: u64) -> Pair<'a> {
        let client = Engine::new(client, &mut TestRng::new(seed), None);
        let server = Engine::new(server, &mut TestRng::new(!seed), None);
        Pair::new(client, server)
    }
}

impl<'a, M, A> Pair<'a, M, A>
where
    M: FnMut(Side, &mut Vec<u8>),
    A: FnMut(Side) -> Result<(), Error>,
{
    /// Puts a man in the middle: `middle(from, bytes)` sees every transmission (handshake
    /// frames, alerts, records, and bytes passed to [`Pair::transmit`]) after it is recorded on
    /// the wire and before the peer receives it, and may change, empty or extend it.
    pub fn with_middle<N: FnMut(Side, &mut Vec<u8>)>(self, middle: N) -> Pair<'a, N, A> {
        Pair {
            ends: self.ends,
            wire: self.wire,
            middle,
            admission: self.admission,
            fragment: self.fragment,
            now: self.now,
        }
    }

    /// Delivers received bytes in pieces of at most `n` (at least 1), one piece per
    /// [`Action::NeedInput`], as a slow transport would.
    pub fn with_fragments(mut self, n: usize) -> Self {
        self.fragment = n.max(1);
        self
    }

    /// Asks `admit(side)` before each key derivation; an error refuses it
    /// ([`Engine::refuse`]): a server rationing derivations.
    pub fn with_admission<B: FnMut(Side) -> Result<(), Error>>(self, admit: B) -> Pair<'a, M, B> {
        Pair {
            ends: self.ends,
            wire: self.wire,
            middle: self.middle,
            admission: admit,
            fragment: self.fragment,
            now: self.now,
        }
    }

    /// The clock [`Pair::send_text`] and [`Pair::send_close`] date records with (default
    /// `None`).
    pub fn with_clock(mut self, now: Option<u64>) -> Self {
        self.now = now;
        self
    }

    fn end(&self, side: Side) -> &End<'a> {
        let [client, server] = &self.ends;
        match side {
            Side::Client => client,
            Side::Server => server,
        }
    }

    fn end_mut(&mut self, side: Side) -> &mut End<'a> {
        let [client, server] = &mut self.ends;
        match side {
            Side::Client => client,
            Side::Server => server,
        }
    }

    /// Polls both engines in turn, moving bytes between them, until neither can move: both
    /// wait for input that is not coming, or are done. Returns whether anything moved.
    pub fn run(&mut self) -> bool {
        let mut moved_at_all = false;
        loop {
            let moved = self.step(Side::Client) | self.step(Side::Server);
            if !moved {
                return moved_at_all;
            }
            moved_at_all = true;
        }
    }

    /// Polls `side` once (delivering one piece of input if it needs some); returns whether
    /// anything happened.
    pub fn step(&mut self, side: Side) -> bool {
        let fragment = self.fragment;
        let end = self.end_mut(side);
        if end.is_done() {
            return false;
        }
        let step = end.engine.poll(&mut end.input);
        let discard = step.discard;
        let mut transmitted = None;
        let mut admit = false;
        let moved = match step.action {
            Action::Transmit(bytes) => {
                transmitted = Some(bytes.to_vec());
                true
            }
            Action::DeriveKeys => {
                admit = true;
                true
            }
            Action::NeedInput => {
                let count = fragment.min(end.in_flight.len());
                end.input.extend(end.in_flight.drain(..count));
                count > 0
            }
            Action::Established => {
                end.result = Some(Ok(()));
                if end.states.last() != Some(&HandshakeState::Established) {
                    end.states.push(HandshakeState::Established);
                }
                true
            }
            Action::Text(text) => {
                end.received.push(Got::Text(text.to_vec()));
                true
            }
            Action::Closed => {
                end.received.push(Got::Closed);
                end.closed = true;
                true
            }
            Action::Failed(error) => {
                if end.result.is_none() && end.states.last() != Some(&HandshakeState::Failed) {
                    end.states.push(HandshakeState::Failed);
                }
                end.result = Some(Err(error));
                true
            }
        };
        end.input.drain(..discard.min(end.input.len()));
        end.note_state();
        if admit {
            match (self.admission)(side) {
                Ok(()) => {
                    let end = self.end_mut(side);
                    end.engine.derive_keys();
                    end.derivations = end.derivations.saturating_add(1);
                }
                Err(refusal) => self.end_mut(side).engine.refuse(refusal),
            }
        }
        self.end_mut(side).note_state();
        if let Some(bytes) = transmitted {
            self.transmit(side, &bytes);
        }
        moved
    }

    /// Puts `bytes` on the wire as if `from` had transmitted them: recorded, shown to the
    /// middle, and queued for the peer (a record sealed by hand, or an attacker's injection
    /// recorded as coming from `from`).
    pub fn transmit(&mut self, from: Side, bytes: &[u8]) {
        self.wire.push((from, bytes.to_vec()));
        let mut bytes = bytes.to_vec();
        (self.middle)(from, &mut bytes);
        self.end_mut(from.peer()).in_flight.extend(bytes);
    }

    /// Queues `bytes` for `to` without recording them on the wire and without the middle: an
    /// attacker's own bytes.
    pub fn inject(&mut self, to: Side, bytes: &[u8]) {
        self.end_mut(to).in_flight.extend(bytes.iter().copied());
    }

    /// Seals `text` with `from`'s established engine ([`Engine::sender`]) and transmits it.
    /// Delivery happens at the next [`Pair::run`].
    pub fn send_text(&mut self, from: Side, text: &[u8]) -> Result<(), Error> {
        let now = self.now;
        let end = self.end_mut(from);
        let mut out = vec![0u8; record_frame_len(text.len())];
        let sender = end.engine.sender().ok_or(Error::OutOfOrderCall)?;
        let record = sender
            .seal_text(text, &mut end.rng, now, &mut out)?
            .to_vec();
        self.transmit(from, &record);
        Ok(())
    }

    /// Seals `from`'s authenticated close and transmits it.
    pub fn send_close(&mut self, from: Side) -> Result<(), Error> {
        let now = self.now;
        let end = self.end_mut(from);
        let mut out = vec![0u8; record_frame_len(0)];
        let sender = end.engine.sender().ok_or(Error::OutOfOrderCall)?;
        let record = sender.seal_close(&mut end.rng, now, &mut out)?.to_vec();
        self.transmit(from, &record);
        Ok(())
    }

    /// The peer of `side` hangs up: `side` takes whatever is still on its way, then meets the
    /// end of the stream ([`Engine::end_of_stream`]), unless it already ended. Returns the
    /// side's result afterwards.
    pub fn hang_up(&mut self, side: Side) -> Result<(), Error> {
        self.run();
        let end = self.end_mut(side);
        if !end.is_done() {
            let error = end.engine.end_of_stream();
            if end.result.is_none() {
                end.states.push(HandshakeState::Failed);
            }
            end.result = Some(Err(error));
        }
        self.end(side)
            .result
            .unwrap_or(Err(Error::HandshakeInterrupted))
    }

    /// `side`'s result so far: `None` while it is in the handshake, `Ok` once established,
    /// `Err` once failed (a later session failure replaces `Ok`).
    pub fn result(&self, side: Side) -> Option<Result<(), Error>> {
        self.end(side).result
    }

    /// What `side` received from records since the last call, in order.
    pub fn take_received(&mut self, side: Side) -> Vec<Got> {
        core::mem::take(&mut self.end_mut(side).received)
    }

    /// Every transmission so far, in order, before the middle changed it.
    pub fn wire(&self) -> &[(Side, Vec<u8>)] {
        &self.wire
    }

    /// The handshake states `side` went through, starting with its first, as
    /// [`Engine::handshake_state`] reported them after each step; the end of the handshake is
    /// recorded from the engine's word: [`HandshakeState::Established`] when it says
    /// [`Action::Established`], [`HandshakeState::Failed`] when it fails (or meets the end of
    /// the stream) before that.
    pub fn states(&self, side: Side) -> &[HandshakeState] {
        &self.end(side).states
    }

    /// How many key derivations `side` ran.
    pub fn derivations(&self, side: Side) -> usize {
        self.end(side).derivations
    }

    /// Bytes on their way to `side` or delivered and not yet taken by its engine.
    pub fn pending(&self, side: Side) -> usize {
        let end = self.end(side);
        end.input.len().saturating_add(end.in_flight.len())
    }

    /// `side`'s engine.
    pub fn engine(&mut self, side: Side) -> &mut Engine<'a> {
        &mut self.end_mut(side).engine
    }

    /// Runs until nothing moves, ends every side still in its handshake with
    /// [`Engine::end_of_stream`] (nothing more can arrive), and returns the outcome.
    pub fn finish(mut self) -> Outcome<'a> {
        self.run();
        for side in [Side::Client, Side::Server] {
            if self.result(side).is_none() {
                self.hang_up(side).ok();
            }
        }
        self.into_outcome()
    }

    /// The outcome as it stands, without running anything (a side still in its handshake has
    /// the result [`Error::HandshakeInterrupted`]).
    pub fn into_outcome(self) -> Outcome<'a> {
        let [client, server] = self.ends;
        let result = |end: &End<'_>| end.result.unwrap_or(Err(Error::HandshakeInterrupted));
        Outcome {
            client: result(&client),
            server: result(&server),
            wire: self.wire,
            client_states: client.states,
            server_states: server.states,
            client_received: client.received,
            server_received: server.received,
            client_engine: client.engine,
            server_engine: server.engine,
        }
    }
}

impl<M, A> core::fmt::Debug for Pair<'_, M, A> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let [client, server] = &self.ends;
        f.debug_struct("Pair")
            .field("client", &client.engine)
            .field("server", &server.engine)
            .field("wire_transmissions", &self.wire.len())
            .finish_non_exhaustive()
    }
}

/// How a pair's run ended: both results, the wire, the states, what each side received, and
/// the engines (to [`Engine::split`] into halves).
#[derive(Debug)]
pub struct Outcome<'a> {
    /// The client's result: `Ok` if it established (and did not fail later).
    pub client: Result<(), Error>,
    /// The server's result.
    pub server: Result<(), Error>,
    /// Every transmission, in order, before the middle changed it.
    pub wire: Vec<(Side, Vec<u8>)>,
    /// The handshake states the client went through, starting with its first.
    pub client_states: Vec<HandshakeState>,
    /// The handshake states the server went through, starting with its first.
    pub server_states: Vec<HandshakeState>,
    /// What the client received from records, in order.
    pub client_received: Vec<Got>,
    /// What the server received from records, in order.
    pub server_received: Vec<Got>,
    /// The client's engine.
    pub client_engine: Engine<'a>,
    /// The server's engine.
    pub server_engine: Engine<'a>,
}

/// The sending and receiving halves of one side.
pub type Halves = (Sender, Receiver);

impl<'a> Outcome<'a> {
    /// The client's error, if it failed.
    pub fn client_error(&self) -> Option<Error> {
        self.client.err()
    }

    /// The server's error, if it failed.
    pub fn server_error(&self) -> Option<Error> {
        self.server.err()
    }

    /// `side`'s result.
    pub fn result(&self, side: Side) -> Result<(), Error> {
        match side {
            Side::Client => self.client,
            Side::Server => self.server,
        }
    }

    /// Everything `side` transmitted, concatenated.
    pub fn written_by(&self, side: Side) -> Vec<u8> {
        self.wire
            .iter()
            .filter(|(from, _)| *from == side)
            .flat_map(|(_, bytes)| bytes.iter().copied())
            .collect()
    }

    /// Both established engines split into halves, client's first. Panics (with both results)
    /// if either side did not establish.
    pub fn halves(mut self) -> (Halves, Halves) {
        match (self.client_engine.split(), self.server_engine.split()) {
            (Ok(client), Ok(server)) => (client, server),
            (client, server) => panic!(
                "the handshake failed: client {:?} ({:?}), server {:?} ({:?})",
                self.client,
                client.err(),
                self.server,
                server.err()
            ),
        }
    }
}
