//! The protocol engine: one side of a connection from its first hello to its last record, as a
//! sans-IO state machine, and the one place every protocol rule lives.
//!
//! The caller owns the bytes: it passes what it has received to [`Engine::poll`], which says how
//! many it is done with and what to do next ([`Action`]): transmit bytes, run the key
//! derivation, read more, or take a text, the close, or the failure (its alert to the peer, if
//! the peer should hear one, already handed out as bytes to transmit). Framing, which error
//! sends which alert, never answering an alert, "an unknown first frame is a stranger", and
//! the step from handshake to session are all here, so every driver (blocking, async, a board's
//! superloop, a fuzzer, a test pair) is a short loop that moves bytes.

use rand_core::{CryptoRng, TryCryptoRng};
use zeroize::Zeroize;

use crate::frame::{Frame, FrameKind, FRAME_HEADER_LEN};
use crate::handshake::{
    Alert, Config, Handshake, HandshakeState, HANDSHAKE_FRAME_LEN, NONCE_LEN, SCALAR_SEED_LEN,
};
use crate::inbox::Inbox;
use crate::records::{frame_capacity, Incoming, Receiver, Sender, Session};
use crate::session::Error;

/// What the caller does next, as [`Engine::poll`] says.
#[derive(Debug, PartialEq, Eq)]
pub enum Action<'e, 'b> {
    /// Write these bytes to the peer (all of them, then flush), then poll again.
    Transmit(&'e [u8]),
    /// Run the key derivation with [`Engine::derive_keys`] (CPace's second half and HKDF, well
    /// under a millisecond on a desktop, in one call), then poll again. A server that
    /// rations attempts decides here, after the client's share and Finished arrived and before
    /// its second scalar multiplication and the guess check, and refuses with
    /// [`Engine::refuse`].
    DeriveKeys,
    /// No whole frame in the input: read more bytes from the peer, keep the ones not
    /// discarded, and poll again. An end of stream goes to [`Engine::end_of_stream`].
    NeedInput,
    /// The handshake is complete (said once): texts can be sent, or the engine split into
    /// halves for two threads with [`Engine::split`].
    Established,
    /// The peer sent a chat message (bytes as sent; the chat sends UTF-8). It lies in the
    /// caller's input: discard its bytes once done with it.
    Text(&'b [u8]),
    /// The peer's authenticated close: the conversation ended and nothing is missing. Said
    /// again on every later poll; this side's sender may still send its own close.
    Closed,
    /// The session failed. Any alert the peer should hear was the last `Transmit`.
    Failed(Error),
}

/// The answer of [`Engine::poll`]: how many bytes at the start of the input it is done with,
/// and what to do next.
#[derive(Debug, PartialEq, Eq)]
pub struct Step<'e, 'b> {
    /// Bytes of the input to drop (after using a [`Action::Text`], which lies in them).
    pub discard: usize,
    /// What to do next.
    pub action: Action<'e, 'b>,
}

/// Where the engine stands.
// The handshake and the session's halves differ in size on purpose: one enum reuses the
// handshake's memory for the session, which is what a board wants; boxing would need a heap.
#[allow(clippy::large_enum_variant)]
enum Phase<'a> {
    Handshaking(Handshake<'a>),
    Established(Session),
    /// Split: the halves carry on elsewhere.
    Split,
    Failed(Error),
}

/// One side of an aeschat connection: the handshake, then the session.
///
/// ```
/// use aeschat_core::session::{Action, Config, Engine, Role, Secret};
/// # include!("doc/established_pair.rs");
/// # fn main() {
///
/// let secret = Secret::Password(b"correct horse battery staple");
/// // `Os` is the operating system's generator (a board hands over its TRNG).
/// let mut client = Engine::new(Config::new(Role::Client, secret), &mut Os, None);
/// let mut server = Engine::new(Config::new(Role::Server, secret), &mut Os, None);
///
/// // Two sides in one loop: what one transmits is the other's input.
/// let (mut to_server, mut to_client) = (Vec::new(), Vec::new());
/// while !(client.is_established() && server.is_established()) {
///     step(&mut client, &mut to_client, &mut to_server);
///     step(&mut server, &mut to_server, &mut to_client);
/// }
///
/// /// One poll of `engine` on the bytes it has received.
/// fn step(engine: &mut Engine, input: &mut Vec<u8>, output: &mut Vec<u8>) {
///     let step = engine.poll(input);
///     let discard = step.discard;
///     match step.action {
///         Action::Transmit(bytes) => output.extend_from_slice(bytes),
///         Action::DeriveKeys => engine.derive_keys(),
///         Action::Established | Action::NeedInput => {}
///         other => panic!("{other:?}"),
///     }
///     input.drain(..discard);
/// }
/// # }
/// ```
pub struct Engine<'a> {
    phase: Phase<'a>,
    /// A handshake frame or alert waiting to be handed out: `outbox[..outbox_len]`.
    outbox: [u8; HANDSHAKE_FRAME_LEN],
    outbox_len: usize,
    /// No frame has arrived yet: a first frame of no known kind comes from a stranger.
    awaiting_first_frame: bool,
    /// The largest frame body this side accepts (its longest message's record).
    max_body_len: usize,
}

impl<'a> Engine<'a> {
    /// Starts one side of a connection. A fresh handshake nonce is drawn from `rng` (the
    /// operating system's generator, or a board's TRNG); `now` is this side's clock in Unix
    /// seconds, `None` on a board without one.
    pub fn new<R: CryptoRng + ?Sized>(config: Config<'a>, rng: &mut R, now: Option<u64>) -> Self {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let mut seed = [0u8; SCALAR_SEED_LEN];
        rng.fill_bytes(&mut seed);
        let engine = Engine::from_handshake(Handshake::new(config, nonce, seed, now));
        seed.zeroize();
        engine
    }

    /// [`Engine::new`] with a generator that can fail, such as the operating system's (the
    /// `getrandom` feature's [`crate::fernet::IvPool`] is one): a failure is
    /// [`Error::Randomness`].
    ///
    /// ```
    /// # include!("doc/established_pair.rs");
    /// # fn main() -> Result<(), aeschat_core::session::Error> {
    /// use aeschat_core::fernet::Key;
    /// use aeschat_core::session::{Config, Engine, Role, Secret};
    /// let key = Key::from_bytes([7; 32]);
    /// let config = Config::new(Role::Client, Secret::PreSharedKey(&key));
    /// let client = Engine::try_new(config, &mut Os, Some(1_700_000_000))?;
    /// assert!(!client.is_established());
    /// # Ok(()) }
    /// ```
    pub fn try_new<R: TryCryptoRng + ?Sized>(
        config: Config<'a>,
        rng: &mut R,
        now: Option<u64>,
    ) -> Result<Self, Error> {
        let mut nonce = [0u8; NONCE_LEN];
        rng.try_fill_bytes(&mut nonce)
            .map_err(|_| Error::Randomness)?;
        let mut seed = [0u8; SCALAR_SEED_LEN];
        if rng.try_fill_bytes(&mut seed).is_err() {
            // Whatever part of the seed was drawn is secret too.
            seed.zeroize();
            return Err(Error::Randomness);
        }
        let engine = Engine::from_handshake(Handshake::new(config, nonce, seed, now));
        seed.zeroize();
        Ok(engine)
    }

    /// An engine over a handshake made by hand, whose nonce is fixed: for golden transcripts
    /// and tests. Anything else uses [`Engine::new`] or [`Engine::try_new`].
    pub fn from_handshake(handshake: Handshake<'a>) -> Self {
        let max_body_len =
            frame_capacity(handshake.config().max_message_len()).saturating_sub(FRAME_HEADER_LEN);
        Engine {
            phase: Phase::Handshaking(handshake),
            outbox: [0; HANDSHAKE_FRAME_LEN],
            outbox_len: 0,
            awaiting_first_frame: true,
            max_body_len,
        }
    }

    /// The size of input buffer this side needs: the longest frame it accepts.
    ///
    /// ```
    /// use aeschat_core::fernet::Key;
    /// use aeschat_core::session::{frame_capacity, Config, Engine, Role, Secret};
    /// # include!("doc/established_pair.rs");
    /// # fn main() -> Result<(), aeschat_core::session::Error> {
    /// let key = Key::from_bytes([7; 32]);
    /// let config = Config::new(Role::Server, Secret::PreSharedKey(&key)).with_max_message_len(256);
    /// assert_eq!(Engine::new(config, &mut Os, None).input_capacity(), frame_capacity(256));
    /// # Ok(()) }
    /// ```
    pub fn input_capacity(&self) -> usize {
        self.max_body_len.saturating_add(FRAME_HEADER_LEN)
    }

    /// Takes the bytes received so far and says what to do next; see [`Action`]. `input` is
    /// the caller's buffer of received bytes not yet discarded; the engine reads and decrypts
    /// in place, and never keeps a reference to it.
    pub fn poll<'e, 'b>(&'e mut self, input: &'b mut [u8]) -> Step<'e, 'b> {
        let (discard, next) = if self.outbox_len > 0 {
            (0, Next::Transmit)
        } else {
            self.advance(input)
        };
        let action = match next {
            Next::Transmit => {
                let len = core::mem::take(&mut self.outbox_len);
                Action::Transmit(self.outbox.get(..len).unwrap_or_default())
            }
            Next::DeriveKeys => Action::DeriveKeys,
            Next::NeedInput => Action::NeedInput,
            Next::Established => Action::Established,
            Next::Text(text) => Action::Text(text),
            Next::Closed => Action::Closed,
            Next::Failed(error) => Action::Failed(error),
        };
        Step { discard, action }
    }

    /// [`Engine::poll`] on the bytes waiting in `inbox`, discarding what the step took (once
    /// the returned action, which may borrow them, is dropped).
    ///
    /// ```
    /// use aeschat_core::fernet::Key;
    /// use aeschat_core::session::{Action, Config, Engine, Inbox, Role, Secret};
    /// # include!("doc/established_pair.rs");
    /// # fn main() -> Result<(), aeschat_core::session::Error> {
    /// let key = Key::from_bytes([7; 32]);
    /// let mut server = Engine::new(Config::new(Role::Server, Secret::PreSharedKey(&key)), &mut Os, None);
    /// let mut inbox = Inbox::new(vec![0u8; server.input_capacity()]);
    ///
    /// assert_eq!(server.poll_inbox(&mut inbox), Action::NeedInput); // nothing arrived yet
    /// let junk = b"GET / HTTP/1.1\r\n";
    /// inbox.unfilled()?[..junk.len()].copy_from_slice(junk);
    /// inbox.filled(junk.len());
    /// // A stranger: told so with an alert (code 6), then the engine reports why it stopped.
    /// assert_eq!(server.poll_inbox(&mut inbox), Action::Transmit(&[6, 0, 0, 0, 1, 6]));
    /// assert_eq!(server.poll_inbox(&mut inbox), Action::Failed(aeschat_core::session::Error::NotAeschat));
    /// # Ok(()) }
    /// ```
    pub fn poll_inbox<'e, 's, B>(&'e mut self, inbox: &'s mut Inbox<B>) -> Action<'e, 's>
    where
        B: AsRef<[u8]> + AsMut<[u8]>,
    {
        let (input, discard) = inbox.pending_and_discard();
        let step = self.poll(input);
        *discard = step.discard;
        step.action
    }

    /// Runs the key derivation when [`Action::DeriveKeys`] asked for it: CPace's second half
    /// and HKDF, in one call. A failure (a bad CPace share, or a server finding the client's
    /// confirmation wrong) comes from the next [`Engine::poll`], after the alert it sends.
    /// After the handshake it does nothing.
    ///
    /// ```
    /// use aeschat_core::fernet::Key;
    /// use aeschat_core::session::{Action, Config, Engine, HandshakeState, Role, Secret};
    /// # include!("doc/established_pair.rs");
    /// # fn main() {
    /// let key = Key::from_bytes([7; 32]);
    /// let mut client = Engine::new(Config::new(Role::Client, Secret::PreSharedKey(&key)), &mut Os, None);
    /// let mut server = Engine::new(Config::new(Role::Server, Secret::PreSharedKey(&key)), &mut Os, None);
    /// let (mut to_server, mut to_client) = (Vec::new(), Vec::new());
    /// pump(&mut client, &mut to_client, &mut to_server); // ClientHello
    /// pump(&mut server, &mut to_server, &mut to_client); // ServerHello
    /// assert_eq!(client.poll(&mut to_client).action, Action::DeriveKeys);
    /// client.derive_keys();
    /// assert_eq!(client.handshake_state(), Some(HandshakeState::SendFinished));
    /// # }
    /// ```
    pub fn derive_keys(&mut self) {
        let Phase::Handshaking(handshake) = &mut self.phase else {
            return;
        };
        if let Err(error) = handshake.derive_keys() {
            // A server that finds the client's Finished wrong says so (alert 1).
            self.fail(error, true);
        }
    }

    /// Ends the handshake now with `error`: a server that cannot take this caller
    /// ([`Error::PeerBusy`], [`Error::RetryLater`]), typically when [`Action::DeriveKeys`]
    /// asks for the expensive step. The peer hears the matching alert from the next
    /// [`Engine::poll`], which then reports the failure. After the handshake it does nothing.
    pub fn refuse(&mut self, error: Error) {
        if matches!(self.phase, Phase::Handshaking(_)) {
            self.fail(error, true);
        }
    }

    /// The peer's end of stream, with no whole frame left in the input: returns why the
    /// session is over. During the handshake it was interrupted; in the session it is a
    /// truncation unless the peer's close came first ([`Error::SessionEnded`] then).
    pub fn end_of_stream(&mut self) -> Error {
        let error = match &mut self.phase {
            Phase::Handshaking(_) => Error::HandshakeInterrupted,
            Phase::Established(session) => session.receiver_mut().end_of_stream(),
            Phase::Split => Error::SessionEnded,
            Phase::Failed(error) => return *error,
        };
        self.phase = Phase::Failed(error);
        error
    }

    /// Where the handshake stands while it runs (`None` once it is over, either way): what
    /// the engine will do on the next poll, for tests and logs.
    ///
    /// ```
    /// # include!("doc/established_pair.rs");
    /// # fn main() {
    /// use aeschat_core::fernet::Key;
    /// use aeschat_core::session::{Config, Engine, HandshakeState, Role, Secret};
    /// let key = Key::from_bytes([7; 32]);
    /// let client = Engine::new(Config::new(Role::Client, Secret::PreSharedKey(&key)), &mut Os, None);
    /// assert_eq!(client.handshake_state(), Some(HandshakeState::SendHello));
    /// # }
    /// ```
    pub fn handshake_state(&self) -> Option<HandshakeState> {
        match &self.phase {
            Phase::Handshaking(handshake) => Some(handshake.state()),
            _ => None,
        }
    }

    /// True once the handshake is complete (and the session has not failed).
    pub fn is_established(&self) -> bool {
        matches!(self.phase, Phase::Established(_))
    }

    /// The established session's sending half, to seal texts and the close without splitting
    /// (a single-threaded loop); `None` before the handshake is done or after a failure.
    pub fn sender(&mut self) -> Option<&mut Sender> {
        match &mut self.phase {
            Phase::Established(session) => Some(session.sender_mut()),
            _ => None,
        }
    }

    /// How far the peer's clock is ahead of this side's, once established: see
    /// [`Session::peer_clock_offset`].
    pub fn peer_clock_offset(&self) -> Option<i64> {
        match &self.phase {
            Phase::Established(session) => session.peer_clock_offset(),
            _ => None,
        }
    }

    /// Splits the established session into a sending and a receiving half that share nothing
    /// mutable, for two threads. Bytes already received go on to [`Receiver::poll`].
    pub fn split(&mut self) -> Result<(Sender, Receiver), Error> {
        match core::mem::replace(&mut self.phase, Phase::Split) {
            Phase::Established(session) => Ok(session.split()),
            other => {
                let error = match &other {
                    Phase::Failed(error) => *error,
                    _ => Error::OutOfOrderCall,
                };
                self.phase = other;
                Err(error)
            }
        }
    }

    fn advance<'b>(&mut self, input: &'b mut [u8]) -> (usize, Next<'b>) {
        let handshake = match &mut self.phase {
            Phase::Failed(error) => return (0, Next::Failed(*error)),
            Phase::Split => return (0, Next::Failed(Error::SessionEnded)),
            Phase::Established(session) => {
                let receiver = session.receiver_mut();
                if receiver.is_closed() {
                    // The close stays the answer; the sender may still send its own.
                    return (0, Next::Closed);
                }
                let received = receiver.poll(input);
                let next = match received.result {
                    Ok(None) => Next::NeedInput,
                    Ok(Some(Incoming::Text(text))) => Next::Text(text),
                    Ok(Some(Incoming::Closed)) => Next::Closed,
                    Err(error) => {
                        self.phase = Phase::Failed(error);
                        Next::Failed(error)
                    }
                };
                return (received.discard, next);
            }
            Phase::Handshaking(handshake) => handshake,
        };
        match handshake.state() {
            HandshakeState::SendHello | HandshakeState::SendFinished => {
                match handshake.write_message(&mut self.outbox) {
                    Ok(frame) => self.outbox_len = frame.len(),
                    Err(error) => self.fail(error, false),
                }
                (0, self.after_failure_or(Next::Transmit))
            }
            HandshakeState::DeriveKeys => (0, Next::DeriveKeys),
            HandshakeState::AwaitHello
            | HandshakeState::AwaitShare
            | HandshakeState::AwaitFinished => self.receive_handshake(input),
            HandshakeState::Established => {
                let Phase::Handshaking(handshake) =
                    core::mem::replace(&mut self.phase, Phase::Split)
                else {
                    return (0, Next::Failed(Error::OutOfOrderCall));
                };
                match handshake.into_session() {
                    Ok(session) => self.phase = Phase::Established(session),
                    Err(error) => self.fail(error, false),
                }
                // Said once: from here the phase is the session, which polls records.
                (0, self.after_failure_or(Next::Established))
            }
            HandshakeState::Failed => {
                self.fail(Error::OutOfOrderCall, false);
                (0, Next::Failed(Error::OutOfOrderCall))
            }
        }
    }

    fn receive_handshake<'b>(&mut self, input: &'b mut [u8]) -> (usize, Next<'b>) {
        let parsed = Frame::parse(&mut *input, self.max_body_len);
        let first = core::mem::replace(&mut self.awaiting_first_frame, false);
        let (frame, len) = match parsed {
            Ok(Some(found)) => found,
            Ok(None) => {
                self.awaiting_first_frame = first;
                return (0, Next::NeedInput);
            }
            // A first frame of no known kind comes from a stranger (a web browser, a port
            // scanner), not from a broken aeschat: say so.
            Err(Error::UnexpectedMessage) if first => {
                self.fail(Error::NotAeschat, true);
                return (0, self.after_failure_or(Next::NeedInput));
            }
            Err(error) => {
                self.fail(error, true);
                return (0, self.after_failure_or(Next::NeedInput));
            }
        };
        // An alert is the peer's last word: answering it with another would only echo.
        let from_alert = frame.kind == FrameKind::Alert;
        let Phase::Handshaking(handshake) = &mut self.phase else {
            return (len, Next::Failed(Error::OutOfOrderCall));
        };
        if let Err(error) = handshake.read_message(frame) {
            self.fail(error, !from_alert);
            return (len, self.after_failure_or(Next::NeedInput));
        }
        // The next step goes on with the bytes after this frame: protocol 2's client sends two
        // frames in one flight (ClientShare ‖ ClientFinished), and a caller told NeedInput with
        // a whole frame still in its buffer would wait for bytes that never come.
        let rest = input.get_mut(len..).unwrap_or_default();
        let (more, next) = self.advance(rest);
        let next = match next {
            // Records are opened only once the caller has heard Established.
            Next::Text(_) => Next::Failed(Error::OutOfOrderCall),
            other => other,
        };
        (len.saturating_add(more), next)
    }

    /// The alert to hand out if a failure queued one, else the failure, else `otherwise`.
    fn after_failure_or<'b>(&self, otherwise: Next<'b>) -> Next<'b> {
        match (&self.phase, self.outbox_len) {
            (Phase::Failed(_), len) if len > 0 => Next::Transmit,
            (Phase::Failed(error), _) => Next::Failed(*error),
            _ => otherwise,
        }
    }

    /// Ends the session with `error`. During the handshake the peer is told why when it should
    /// know ([`Alert::for_error`]) and `tell_peer` allows it (never in answer to an alert).
    fn fail(&mut self, error: Error, tell_peer: bool) {
        if tell_peer && matches!(self.phase, Phase::Handshaking(_)) {
            if let Some(alert) = Alert::for_error(error) {
                self.outbox_len = alert.write(&mut self.outbox).map_or(0, <[u8]>::len);
            }
        }
        self.phase = Phase::Failed(error);
    }
}

/// [`Action`] before the outbox is borrowed.
enum Next<'b> {
    Transmit,
    DeriveKeys,
    NeedInput,
    Established,
    Text(&'b [u8]),
    Closed,
    Failed(Error),
}

impl core::fmt::Debug for Engine<'_> {
    /// Shows where the engine stands, never key material.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let phase = match &self.phase {
            Phase::Handshaking(handshake) => match handshake.state() {
                HandshakeState::Failed => "failed",
                _ => "handshaking",
            },
            Phase::Established(_) => "established",
            Phase::Split => "split",
            Phase::Failed(_) => "failed",
        };
        f.debug_struct("Engine")
            .field("phase", &phase)
            .field("pending_transmit", &self.outbox_len)
            .finish_non_exhaustive()
    }
}
