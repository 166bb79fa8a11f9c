//! The handshake harness shared by `handshake_client` and `handshake_server`: the engine under
//! test (the target) either runs against a genuine peer engine with fuzzer-chosen substitutes
//! for the messages it receives, or is driven alone by calls in any order with arbitrary bytes.
//!
//! The harness only moves bytes: framing, which error sends which alert, never answering an
//! alert, the stranger rule and the step to the session are the engine's. It checks the
//! engine's promises from outside: only a genuine run with the same secret passes key
//! confirmation; a failed side reports its error, tells the peer at most once (the alert for
//! its error) and never in answer to an alert; it stays failed; and established sessions agree
//! on keys and on what the peers announced.

use aeschat_core::fernet::Key;
use aeschat_core::session::{
    record_frame_len, write_frame, Action, Alert, Config, Engine, Error, FrameKind, HandshakeState,
    Incoming, Role, Secret, HANDSHAKE_FRAME_LEN,
};
use aeschat_testkit::TestRng;
use arbitrary::Arbitrary;

use crate::{engine, first_frame, frames_in, kind_from_byte, other_psk, psk, Mutation};
use crate::{OTHER_PASSWORD, PASSWORD};

/// The genuine peer's nonce.
const PEER_NONCE: [u8; 32] = [0x33; 32];

/// Polls of one engine in a row before the harness calls it stuck (an engine that neither
/// waits nor ends would spin a driver forever).
const MAX_POLLS: usize = 64;

/// One input of a handshake target.
#[derive(Arbitrary, Debug)]
pub enum HandshakeInput {
    /// A genuine peer runs alongside; the target receives genuine or substituted messages.
    Lockstep(Lockstep),
    /// The target alone, driven by calls in any order with arbitrary bytes.
    Calls(Calls),
}

/// How the two sides are set up.
#[derive(Arbitrary, Debug)]
pub struct Sides {
    /// The target uses a password (else a pre-shared key).
    pub target_password: bool,
    /// The peer uses a password (else a pre-shared key).
    pub peer_password: bool,
    /// The peer holds a different password or key than the target.
    pub peer_secret_differs: bool,
    /// Clocks of the two sides (0: no clock).
    pub target_time: u64,
    pub peer_time: u64,
    /// The target's nonce.
    pub target_nonce: [u8; 32],
    /// The longest message each side accepts.
    pub target_max_message_len: u32,
    pub peer_max_message_len: u32,
}

/// A handshake against a genuine peer.
#[derive(Arbitrary, Debug)]
pub struct Lockstep {
    pub sides: Sides,
    /// What the target receives in place of each of the peer's transmissions (its hello, then
    /// its finished flight or an alert), in turn; once they run out, the connection ends.
    pub deliveries: [Delivery; 2],
}

/// What the target receives in place of one genuine transmission.
#[derive(Arbitrary, Debug)]
pub enum Delivery {
    /// The genuine bytes.
    Genuine,
    /// The genuine bytes (header included) changed.
    Mutated(Mutation),
    /// The genuine transmission frame by frame, each frame substituted on its own: the client's
    /// flight is two frames (ClientShare, then ClientFinished), so a server target gets a
    /// changed share with a genuine Finished, or the other way round. Frames beyond the first
    /// two stay genuine.
    EachFrame([FrameDelivery; 2]),
    /// A well-formed frame of any kind with an arbitrary body.
    Frame { kind: u8, body: Vec<u8> },
    /// Raw bytes.
    Wire(Vec<u8>),
}

/// What the target receives in place of one genuine frame of a transmission.
#[derive(Arbitrary, Debug)]
pub enum FrameDelivery {
    /// The genuine frame.
    Genuine,
    /// The genuine frame (header included) changed.
    Mutated(Mutation),
    /// A ClientShare frame (kind 7) with any 32 bytes as the share: the right length, so
    /// the share's own checks (canonical encoding, identity, reflection) are what is explored.
    Share([u8; 32]),
    /// A well-formed frame of any kind with an arbitrary body.
    Frame { kind: u8, body: Vec<u8> },
    /// Nothing in its place.
    Dropped,
}

impl FrameDelivery {
    /// The bytes that arrive in place of `genuine` (one whole frame).
    fn apply(&self, genuine: &[u8]) -> Vec<u8> {
        match self {
            FrameDelivery::Genuine => genuine.to_vec(),
            FrameDelivery::Mutated(mutation) => mutation.apply(genuine),
            FrameDelivery::Share(share) => frame(FrameKind::ClientShare, share),
            FrameDelivery::Frame { kind, body } => frame(kind_from_byte(*kind), body),
            FrameDelivery::Dropped => Vec::new(),
        }
    }
}

/// A frame of `kind` around `body`.
fn frame(kind: FrameKind, body: &[u8]) -> Vec<u8> {
    let mut frame = vec![0u8; body.len() + 5];
    write_frame(kind, body, &mut frame).expect("fits");
    frame
}

/// The genuine `bytes` cut into their whole frames (anything after the last whole frame, which
/// a genuine peer never sends, as one more piece).
fn split_frames(bytes: &[u8]) -> Vec<&[u8]> {
    let mut pieces = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let len = first_frame(rest, usize::MAX).map_or(rest.len(), |(_, body)| body.len() + 5);
        let (piece, tail) = rest.split_at(len);
        pieces.push(piece);
        rest = tail;
    }
    pieces
}

/// The target alone, driven by calls in any order.
#[derive(Arbitrary, Debug)]
pub struct Calls {
    pub sides: Sides,
    pub calls: Vec<Call>,
}

/// One call on the target.
#[derive(Arbitrary, Debug)]
pub enum Call {
    /// Bytes arrive (appended to the input).
    Receive(Vec<u8>),
    /// A well-formed frame of any kind arrives.
    ReceiveFrame { kind: u8, body: Vec<u8> },
    /// `poll`.
    Poll,
    /// `derive_keys`, whether asked for or not.
    Derive,
    /// `refuse`: busy, or retry after so many seconds.
    Refuse(Option<u16>),
    /// `end_of_stream`.
    EndOfStream,
    /// `split`.
    Split,
}

/// Runs one input against a target of `role`.
pub fn run(role: Role, input: &HandshakeInput) {
    match input {
        HandshakeInput::Lockstep(lockstep) => run_lockstep(role, lockstep),
        HandshakeInput::Calls(calls) => run_calls(role, calls),
    }
}

fn peer_role(role: Role) -> Role {
    match role {
        Role::Client => Role::Server,
        Role::Server => Role::Client,
    }
}

/// The secret of one side: the genuine one, or the wrong one when `wrong`.
fn secret<'k>(password: bool, wrong: bool, key: &'k Key, other: &'k Key) -> Secret<'k> {
    match (password, wrong) {
        (true, false) => Secret::Password(PASSWORD),
        (true, true) => Secret::Password(OTHER_PASSWORD),
        (false, false) => Secret::PreSharedKey(key),
        (false, true) => Secret::PreSharedKey(other),
    }
}

/// Whether a handshake state comes after accepting the peer's key confirmation.
fn confirmed(role: Role, state: Option<HandshakeState>) -> bool {
    match role {
        Role::Client => false,
        Role::Server => matches!(
            state,
            Some(HandshakeState::SendFinished | HandshakeState::Established)
        ),
    }
}

/// A side's settings.
fn config(role: Role, secret: Secret<'_>, max_message_len: u32) -> Config<'_> {
    Config::new(role, secret).with_max_message_len(max_message_len as usize)
}

fn clock(time: u64) -> Option<u64> {
    (time != 0).then_some(time)
}

/// What one engine did, seen from outside: everything it transmitted, the bytes it took, and
/// how it ended.
#[derive(Default)]
struct Record {
    /// Every transmission, in order.
    sent: Vec<Vec<u8>>,
    /// The input it has been given, and how much of it it has taken.
    input: Vec<u8>,
    taken: usize,
    established: bool,
    failed: Option<Error>,
}

impl Record {
    /// The frames this engine has taken.
    fn frames_taken(&self) -> Vec<(FrameKind, Vec<u8>)> {
        frames_in(&self.input[..self.taken]).0
    }

    /// Alerts among the transmissions.
    fn alerts_sent(&self) -> usize {
        self.sent
            .iter()
            .filter(|bytes| bytes.first() == Some(&(FrameKind::Alert as u8)))
            .count()
    }
}

/// What a poll loop stopped on.
#[derive(Debug, PartialEq, Eq)]
enum Stop {
    NeedInput,
    Established,
    Failed(Error),
}

/// Polls `engine` until it needs input, is established or fails, checking each step. Its
/// transmissions go to `out` (and the record).
fn pump(engine: &mut Engine<'_>, record: &mut Record, out: &mut Vec<u8>) -> Stop {
    for _ in 0..MAX_POLLS {
        let before = record.taken;
        let step = engine.poll(&mut record.input[before..]);
        let discard = step.discard;
        let stop = match step.action {
            Action::Transmit(bytes) => {
                assert!(!bytes.is_empty() && bytes.len() <= HANDSHAKE_FRAME_LEN);
                assert_eq!(record.alerts_sent(), 0, "a transmission after an alert");
                assert!(!record.established, "a handshake message after Established");
                record.sent.push(bytes.to_vec());
                out.extend_from_slice(bytes);
                None
            }
            Action::DeriveKeys => {
                engine.derive_keys();
                None
            }
            Action::NeedInput => Some(Stop::NeedInput),
            Action::Established => {
                assert!(!record.established, "Established said twice");
                record.established = true;
                Some(Stop::Established)
            }
            Action::Text(_) | Action::Closed => panic!("a record's content during a handshake"),
            Action::Failed(error) => Some(Stop::Failed(error)),
        };
        assert!(before + discard <= record.input.len());
        record.taken += discard;
        if let Some(stop) = stop {
            if let Stop::Failed(error) = stop {
                check_failed(engine, record, error);
            }
            return stop;
        }
    }
    panic!("the engine neither waits nor ends");
}

/// The promises a failed engine keeps: the alert it sent (if any) is the one for its error, it
/// sent at most one and never in answer to an alert, and it stays failed.
fn check_failed(engine: &mut Engine<'_>, record: &mut Record, error: Error) {
    if let Some(earlier) = record.failed {
        assert_eq!(error, earlier, "a failed engine changed its error");
    }
    record.failed = Some(error);
    assert!(record.alerts_sent() <= 1);
    if let Some(last) = record.sent.last().filter(|_| record.alerts_sent() == 1) {
        assert_eq!(
            last[0],
            FrameKind::Alert as u8,
            "the alert is the last word"
        );
        let alert = Alert::for_error(error).expect("an alert only for an error that has one");
        let mut expected = [0u8; Alert::MAX_FRAME_LEN];
        assert_eq!(last.as_slice(), alert.write(&mut expected).expect("fits"));
        let answered_alert = record
            .frames_taken()
            .last()
            .is_some_and(|(kind, _)| *kind == FrameKind::Alert);
        assert!(!answered_alert, "an alert answered with an alert");
    }
    if error == Error::NotAeschat {
        // A frame of no known kind, or a hello without the magic: only ever the first frame.
        let taken = record.frames_taken().len();
        assert!(taken <= 1, "a stranger after {taken} frames");
    }
    // Failed stays failed, whatever comes.
    let mut junk = [FrameKind::Alert as u8, 0, 0, 0, 1, 1];
    let again = engine.poll(&mut junk);
    assert_eq!((again.discard, again.action), (0, Action::Failed(error)));
    engine.derive_keys();
    engine.refuse(Error::PeerBusy);
    assert_eq!(engine.poll(&mut []).action, Action::Failed(error));
    assert!(!engine.is_established());
    assert!(engine.sender().is_none());
    assert_eq!(engine.end_of_stream(), error);
    assert_eq!(engine.handshake_state(), None);
}

fn run_lockstep(role: Role, input: &Lockstep) {
    let sides = &input.sides;
    let (key, other) = (psk(), other_psk());
    let target_secret = secret(sides.target_password, false, &key, &other);
    let peer_secret = secret(sides.peer_password, sides.peer_secret_differs, &key, &other);
    let target_config = config(role, target_secret, sides.target_max_message_len);
    let peer_config = config(peer_role(role), peer_secret, sides.peer_max_message_len);
    let mut target = engine(target_config, sides.target_nonce, clock(sides.target_time));
    let mut peer = engine(peer_config, PEER_NONCE, clock(sides.peer_time));

    // A genuine run of two honest sides with the same secret must succeed; anything else
    // (a substituted message, a wrong secret, another mode) must never pass key confirmation.
    let honest_setup = sides.target_password == sides.peer_password && !sides.peer_secret_differs;
    let (mut target_record, mut peer_record) = (Record::default(), Record::default());
    // Everything the genuine peer transmitted, in order: what the target should have taken.
    let mut genuine_stream = Vec::new();
    let mut deliveries = input.deliveries.iter();
    let mut all_genuine = true;

    let target_stop = loop {
        let mut to_peer = Vec::new();
        let stop = pump(&mut target, &mut target_record, &mut to_peer);
        peer_record.input.extend_from_slice(&to_peer);
        if confirmed(role, target.handshake_state()) || stop == Stop::Established {
            // Key confirmation passed: only for an honest setup that took the genuine frames.
            let taken = target_record.frames_taken();
            let (genuine, _) = frames_in(&genuine_stream);
            assert!(
                honest_setup && genuine.starts_with(&taken),
                "key confirmation passed after tampering or with a wrong secret (honest \
                 setup: {honest_setup})"
            );
        }
        if stop != Stop::NeedInput {
            break stop;
        }
        // The genuine peer takes what the target sent and answers, if it has anything to say.
        let mut from_peer = Vec::new();
        if peer_record.failed.is_none() && !peer_record.established {
            pump(&mut peer, &mut peer_record, &mut from_peer);
        }
        genuine_stream.extend_from_slice(&from_peer);
        let Some(delivery) = deliveries.next() else {
            // Nothing more arrives: the peer hung up in the middle of the handshake.
            break Stop::Failed(target.end_of_stream());
        };
        let bytes = match delivery {
            Delivery::Genuine => from_peer,
            Delivery::Mutated(mutation) => mutation.apply(&from_peer),
            Delivery::EachFrame(substitutes) => {
                let mut substitutes = substitutes.iter();
                let mut bytes = Vec::new();
                for genuine in split_frames(&from_peer) {
                    match substitutes.next() {
                        Some(substitute) => bytes.extend(substitute.apply(genuine)),
                        None => bytes.extend_from_slice(genuine),
                    }
                }
                bytes
            }
            Delivery::Frame { kind, body } => frame(kind_from_byte(*kind), body),
            Delivery::Wire(bytes) => bytes.clone(),
        };
        if !matches!(delivery, Delivery::Genuine) {
            all_genuine = false;
        }
        target_record.input.extend_from_slice(&bytes);
    };

    match target_stop {
        Stop::Established => {
            assert!(honest_setup);
            // The peer takes the target's last message and is established too.
            if !peer_record.established {
                let stop = pump(&mut peer, &mut peer_record, &mut Vec::new());
                assert_eq!(stop, Stop::Established, "the genuine peer did not finish");
            }
            check_sessions(sides, &mut target, &mut peer);
        }
        Stop::Failed(error) => {
            if target_record.failed.is_none() {
                // Failed by the end of the stream, outside `pump`.
                assert_eq!(error, Error::HandshakeInterrupted);
                check_failed(&mut target, &mut target_record, error);
            }
            // Two genuine deliveries are all a handshake needs, on either side.
            assert!(
                !honest_setup || !all_genuine,
                "a genuine handshake failed: {error:?}"
            );
            assert_eq!(
                target.split().err(),
                Some(error),
                "no halves of a failed engine"
            );
        }
        Stop::NeedInput => unreachable!("the loop ends only on another stop"),
    }
}

/// After a genuine handshake: the sessions agree on keys and report what the peers announced.
fn check_sessions(sides: &Sides, target: &mut Engine<'_>, peer: &mut Engine<'_>) {
    let expected_offset = if sides.target_time == 0 || sides.peer_time == 0 {
        None
    } else {
        let offset = i128::from(sides.peer_time) - i128::from(sides.target_time);
        Some(offset.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
    };
    assert_eq!(target.peer_clock_offset(), expected_offset);
    assert_eq!(
        target.poll(&mut []).action,
        Action::NeedInput,
        "Established is said once"
    );
    let (mut target_sender, mut target_receiver) = target.split().expect("established");
    let (mut peer_sender, mut peer_receiver) = peer.split().expect("established");
    assert_eq!(
        target_sender.max_message_len(),
        sides.peer_max_message_len as usize
    );
    assert_eq!(
        peer_sender.max_message_len(),
        sides.target_max_message_len as usize
    );

    // One record each way proves both directions derived the same keys.
    let mut rng = TestRng::new(9);
    let mut out = [0u8; record_frame_len(4)];
    for (sender, receiver) in [
        (&mut target_sender, &mut peer_receiver),
        (&mut peer_sender, &mut target_receiver),
    ] {
        let text = &b"ping"[..sender.max_message_len().min(4)];
        let len = sender
            .seal_text(text, &mut rng, None, &mut out)
            .expect("seal")
            .len();
        let received = receiver.poll(&mut out[..len]);
        assert_eq!(received.discard, len);
        assert_eq!(received.result, Ok(Some(Incoming::Text(text))));
    }
}

fn run_calls(role: Role, input: &Calls) {
    let sides = &input.sides;
    let (key, other) = (psk(), other_psk());
    let target_secret = secret(sides.target_password, false, &key, &other);
    let config = config(role, target_secret, sides.target_max_message_len);
    let mut target = engine(config, sides.target_nonce, clock(sides.target_time));
    let max_body = target.input_capacity() - 5;
    let mut record = Record::default();

    for call in &input.calls {
        match call {
            Call::Receive(bytes) => record.input.extend_from_slice(bytes),
            Call::ReceiveFrame { kind, body } => {
                record
                    .input
                    .extend_from_slice(&frame(kind_from_byte(*kind), body));
            }
            Call::Poll => {
                let before = record.taken;
                let step = target.poll(&mut record.input[before..]);
                let discard = step.discard;
                match step.action {
                    Action::Transmit(bytes) => {
                        assert!(!bytes.is_empty() && bytes.len() <= HANDSHAKE_FRAME_LEN);
                        assert_eq!(record.alerts_sent(), 0, "a transmission after an alert");
                        record.sent.push(bytes.to_vec());
                    }
                    Action::DeriveKeys | Action::NeedInput => {}
                    // The fuzzer knows the secret's bytes but cannot compute the transcript
                    // MAC: with only the fuzzer as its peer, the target never gets here.
                    Action::Established | Action::Text(_) | Action::Closed => {
                        panic!("key confirmation passed with no genuine peer")
                    }
                    Action::Failed(error) => {
                        record.taken += discard;
                        check_failed(&mut target, &mut record, error);
                        continue;
                    }
                }
                // Frames are taken whole (protocol 2: one, or the client's ClientShare and
                // ClientFinished in one poll), and framed as the engine's limit says.
                let mut at = before;
                while at < before + discard {
                    let frame = first_frame(&record.input[at..], max_body);
                    let len = frame.map(|(_, body)| body.len() + 5);
                    let Some(len) = len else {
                        panic!("took other than whole frames");
                    };
                    at += len;
                }
                assert_eq!(at, before + discard, "took other than whole frames");
                record.taken += discard;
            }
            Call::Derive => target.derive_keys(),
            Call::Refuse(seconds) => target.refuse(match seconds {
                None => Error::PeerBusy,
                Some(seconds) => Error::RetryLater { seconds: *seconds },
            }),
            Call::EndOfStream => {
                let error = target.end_of_stream();
                assert!(record.failed.is_none_or(|failed| failed == error));
                record.failed = Some(error);
            }
            Call::Split => {
                // Never established: there are no halves.
                assert!(target.split().is_err());
            }
        }
        assert!(
            !confirmed(role, target.handshake_state()),
            "key confirmation passed with no genuine peer"
        );
        assert!(!target.is_established());
    }
}
