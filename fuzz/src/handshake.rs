//! The handshake harness shared by `handshake_client` and `handshake_server`: the side under
//! test (the target) either runs against a genuine peer with fuzzer-chosen substitutes for the
//! messages it receives, or is driven alone by calls in any order with arbitrary frames.

use aeschat_core::{
    frame_capacity, write_frame, Alert, Config, Error, FrameKind, FrameReader, Handshake,
    HandshakeState, Incoming, Iv, Key, Role, Secret, Session, HANDSHAKE_FRAME_LEN,
};
use arbitrary::Arbitrary;

use crate::{deliver, first_frame, kind_from_byte, other_psk, psk, Mutation};
use crate::{OTHER_PASSWORD, PASSWORD};

/// Password-mode handshakes stretch with this many PBKDF2 iterations, so an input costs
/// microseconds; the work factor is a number, not a code path the fuzzer could explore.
const ITERATIONS: u32 = 1;

/// The ceiling a client target accepts. A fuzzer-chosen server hello may announce up to the
/// default ceiling of 10 million iterations, and deriving with that many would take seconds per
/// input for no new coverage; a board lowers its ceiling the same way.
const CLIENT_MAX_ITERATIONS: u32 = 64;

/// The genuine peer's nonce and the bytes its first messages carry.
const PEER_NONCE: [u8; 32] = [0x33; 32];

/// One input of a handshake target.
#[derive(Arbitrary, Debug)]
pub enum HandshakeInput {
    /// A genuine peer runs alongside; the target receives genuine or substituted messages.
    Lockstep(Lockstep),
    /// The target alone, driven by calls in any order with arbitrary frames.
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
    /// What the target receives in place of each of the peer's two messages (hello, finished).
    pub deliveries: [Delivery; 2],
    /// A size for the target's first write buffer, to check that a too-small one changes
    /// nothing.
    pub first_out_len: u8,
}

/// What the target receives in place of one genuine message.
#[derive(Arbitrary, Debug)]
pub enum Delivery {
    /// The genuine message.
    Genuine,
    /// The genuine frame with its bytes (header included) changed.
    Mutated(Mutation),
    /// A well-formed frame of any kind with an arbitrary body.
    Frame { kind: u8, body: Vec<u8> },
    /// Raw bytes, through a frame reader.
    Wire(Vec<u8>),
}

/// The target alone, driven by calls in any order.
#[derive(Arbitrary, Debug)]
pub struct Calls {
    pub sides: Sides,
    /// The work factor the target announces (server) or requires (client): 0 to 3 (0 counts
    /// as 1).
    pub iterations: u8,
    pub calls: Vec<Call>,
}

/// One call on the target.
#[derive(Arbitrary, Debug)]
pub enum Call {
    /// `write_message` into a buffer of this size.
    Write { out_len: u8 },
    /// `read_message` of a frame of any kind.
    Read { kind: u8, body: Vec<u8> },
    /// `read_message` of whatever frame a reader finds in raw bytes.
    ReadWire(Vec<u8>),
    /// `derive_keys`.
    Derive,
    /// `into_session` (ends the run: it consumes the handshake).
    IntoSession,
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

/// Whether the target has accepted its peer's key confirmation.
fn confirmed(role: Role, state: HandshakeState) -> bool {
    match role {
        Role::Client => state == HandshakeState::Established,
        Role::Server => matches!(
            state,
            HandshakeState::SendFinished | HandshakeState::Established
        ),
    }
}

/// A side's settings; a client never accepts more than [`CLIENT_MAX_ITERATIONS`].
fn config(role: Role, secret: Secret<'_>, iterations: u32, max_message_len: u32) -> Config<'_> {
    Config::new(role, secret)
        .with_insecure_iterations(iterations)
        .with_max_iterations(CLIENT_MAX_ITERATIONS)
        .with_max_message_len(max_message_len as usize)
}

/// Checks the promises every failed handshake keeps: it stays failed and refuses every call.
fn check_failed(mut target: Handshake<'_>) {
    assert_eq!(target.state(), HandshakeState::Failed);
    let mut out = [0u8; HANDSHAKE_FRAME_LEN];
    assert_eq!(
        target.write_message(&mut out).err(),
        Some(Error::OutOfOrderCall)
    );
    assert_eq!(target.derive_keys(), Err(Error::OutOfOrderCall));
    let mut body = [1u8];
    let frame = aeschat_core::Frame {
        kind: FrameKind::Alert,
        body: &mut body,
    };
    assert_eq!(target.read_message(frame), Err(Error::OutOfOrderCall));
    assert_eq!(target.state(), HandshakeState::Failed);
    assert_eq!(target.into_session().err(), Some(Error::OutOfOrderCall));
}

/// Every error maps to at most one alert, and that alert always fits `Alert::MAX_FRAME_LEN`.
fn check_alert(error: Error) {
    if let Some(alert) = Alert::for_error(error) {
        let mut out = [0u8; Alert::MAX_FRAME_LEN];
        let frame = alert.write(&mut out).expect("an alert fits its maximum");
        assert!(frame.len() == 6 || frame.len() == Alert::MAX_FRAME_LEN);
    }
}

fn run_lockstep(role: Role, input: &Lockstep) {
    let sides = &input.sides;
    let (key, other) = (psk(), other_psk());
    let target_secret = secret(sides.target_password, false, &key, &other);
    let peer_secret = secret(sides.peer_password, sides.peer_secret_differs, &key, &other);
    let target_config = config(
        role,
        target_secret,
        ITERATIONS,
        sides.target_max_message_len,
    );
    let peer_config = config(
        peer_role(role),
        peer_secret,
        ITERATIONS,
        sides.peer_max_message_len,
    );
    let mut target = Handshake::new(target_config, sides.target_nonce, sides.target_time);
    let mut peer = Handshake::new(peer_config, PEER_NONCE, sides.peer_time);

    // A genuine run of two honest sides with the same secret must succeed; anything else
    // (a substituted message, a wrong secret, another mode) must never pass key confirmation.
    let honest_setup = sides.target_password == sides.peer_password && !sides.peer_secret_differs;
    let mut tampered = false;
    let mut slot = 0;
    let mut first_write = true;
    let mut out = [0u8; HANDSHAKE_FRAME_LEN];

    loop {
        match target.state() {
            HandshakeState::SendHello | HandshakeState::SendFinished => {
                if first_write {
                    // A too-small buffer must be refused whole and leave the state alone.
                    first_write = false;
                    let before = target.state();
                    let mut small = vec![0u8; usize::from(input.first_out_len)];
                    match target.write_message(&mut small) {
                        Err(Error::BufferTooSmall { required }) => {
                            assert!(required > small.len());
                            assert!(small.iter().all(|&b| b == 0), "nothing written");
                            assert_eq!(target.state(), before);
                        }
                        Ok(message) => {
                            // It fit: pass on exactly what was written.
                            let message = message.to_vec();
                            to_peer(&mut peer, &message);
                            continue;
                        }
                        Err(other) => panic!("a genuine write failed: {other:?}"),
                    }
                }
                let message = target
                    .write_message(&mut out)
                    .expect("a write in a send state succeeds")
                    .to_vec();
                to_peer(&mut peer, &message);
            }
            HandshakeState::DeriveKeys => {
                // A server checks the client's Finished once it has derived its keys: the
                // fuzzer's Finished may well be wrong, and that is the only way this can fail.
                if let Err(error) = target.derive_keys() {
                    assert_eq!(error, Error::AuthenticationFailed);
                    assert_eq!(target.state(), HandshakeState::Failed);
                    check_alert(error);
                    return;
                }
            }
            HandshakeState::AwaitHello | HandshakeState::AwaitFinished => {
                // Let the genuine peer act until it sends its next message (or waits, or has
                // failed, when it has nothing to send).
                let genuine: Option<Vec<u8>> = loop {
                    match peer.state() {
                        HandshakeState::SendHello | HandshakeState::SendFinished => {
                            let message = peer.write_message(&mut out).expect("peer write");
                            break Some(message.to_vec());
                        }
                        // A genuine server finds the target's Finished wrong when the fuzzer
                        // changed what the target saw: then it has failed.
                        HandshakeState::DeriveKeys => {
                            if peer.derive_keys().is_err() {
                                break None;
                            }
                        }
                        _ => break None,
                    }
                };
                let Some(delivery) = input.deliveries.get(slot) else {
                    return;
                };
                slot += 1;
                let bytes = match (delivery, &genuine) {
                    (Delivery::Genuine, Some(message)) => message.clone(),
                    // Nothing genuine to deliver: the connection would simply stall.
                    (Delivery::Genuine, None) => return,
                    (Delivery::Mutated(mutation), Some(message)) => mutation.apply(message),
                    (Delivery::Mutated(mutation), None) => mutation.apply(&[]),
                    (Delivery::Frame { kind, body }, _) => {
                        let mut frame = vec![0u8; body.len() + 5];
                        write_frame(kind_from_byte(*kind), body, &mut frame).expect("fits");
                        frame
                    }
                    (Delivery::Wire(bytes), _) => bytes.clone(),
                };
                // Compare what a reader makes of the bytes with the genuine frame: the same
                // kind and body is the same message, whatever followed it on the wire.
                let received = first_frame::<HANDSHAKE_FRAME_LEN>(&bytes);
                let expected = genuine
                    .as_deref()
                    .and_then(first_frame::<HANDSHAKE_FRAME_LEN>);
                if received.is_none() {
                    // A driver would fail on a framing error or wait for more bytes.
                    return;
                }
                if received != expected {
                    tampered = true;
                }
                match deliver(&mut target, &bytes) {
                    Ok(()) => {
                        if confirmed(role, target.state()) {
                            assert!(
                                honest_setup && !tampered,
                                "key confirmation passed after tampering or with a wrong \
                                 secret (honest setup: {honest_setup})"
                            );
                        }
                    }
                    Err(error) => {
                        assert!(
                            !honest_setup || tampered,
                            "a genuine handshake failed: {error:?}"
                        );
                        check_alert(error);
                        check_failed(target);
                        return;
                    }
                }
            }
            HandshakeState::Established => {
                assert!(honest_setup && !tampered);
                let target_session = target.into_session().expect("established");
                // The peer is established too: a server peer sent its finished before the
                // target read it, and a client peer read the target's in `to_peer`.
                let peer_session = peer.into_session().expect("peer established");
                check_sessions(sides, target_session, peer_session);
                return;
            }
            HandshakeState::Failed => {
                // Only a refused read fails the target here, and that path returns above.
                panic!("the target failed without an error being returned");
            }
        }
    }
}

/// Passes a message from the target to the genuine peer, which first finishes deriving its
/// keys if it was about to (a real peer derives while the message is in flight). The peer may
/// refuse the message (wrong secret, other mode); it then fails and sends nothing more.
fn to_peer(peer: &mut Handshake<'_>, message: &[u8]) {
    if peer.state() == HandshakeState::DeriveKeys && peer.derive_keys().is_err() {
        return;
    }
    let _ = deliver(peer, message);
}

/// After a genuine handshake: the sessions agree on keys and report what the peers announced.
fn check_sessions(sides: &Sides, target: Session, peer: Session) {
    let expected_offset = if sides.target_time == 0 || sides.peer_time == 0 {
        None
    } else {
        let offset = i128::from(sides.peer_time) - i128::from(sides.target_time);
        Some(offset.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
    };
    assert_eq!(target.peer_clock_offset(), expected_offset);
    let (mut target_sender, mut target_receiver) = target.split();
    let (mut peer_sender, mut peer_receiver) = peer.split();
    assert_eq!(
        target_sender.max_message_len(),
        sides.peer_max_message_len as usize
    );
    assert_eq!(
        peer_sender.max_message_len(),
        sides.target_max_message_len as usize
    );

    // One record each way proves both directions derived the same keys.
    let iv = Iv::from_bytes([9; 16]);
    let mut out = [0u8; aeschat_core::record_frame_len(4)];
    for (sender, receiver) in [
        (&mut target_sender, &mut peer_receiver),
        (&mut peer_sender, &mut target_receiver),
    ] {
        let text = &b"ping"[..sender.max_message_len().min(4)];
        let frame = sender.seal_text(text, 1, &iv, &mut out).expect("seal");
        let mut reader = FrameReader::<{ frame_capacity(4) }>::new();
        assert_eq!(reader.push(frame), Ok(frame.len()));
        let frame = reader.frame().expect("a whole frame");
        assert_eq!(receiver.open(frame), Ok(Incoming::Text(text)));
    }
}

fn run_calls(role: Role, input: &Calls) {
    let sides = &input.sides;
    let (key, other) = (psk(), other_psk());
    let target_secret = secret(sides.target_password, false, &key, &other);
    let config = config(
        role,
        target_secret,
        u32::from(input.iterations % 4),
        sides.target_max_message_len,
    );
    let mut target = Handshake::new(config, sides.target_nonce, sides.target_time);

    for call in &input.calls {
        let before = target.state();
        match call {
            Call::Write { out_len } => {
                let mut out = vec![0u8; usize::from(*out_len)];
                match target.write_message(&mut out) {
                    Ok(frame) => {
                        assert!(matches!(
                            before,
                            HandshakeState::SendHello | HandshakeState::SendFinished
                        ));
                        assert!(frame.len() <= HANDSHAKE_FRAME_LEN);
                    }
                    Err(Error::BufferTooSmall { required }) => {
                        assert!(required > out.len() && required <= HANDSHAKE_FRAME_LEN);
                        assert_eq!(target.state(), before, "a too-small buffer changes nothing");
                    }
                    Err(error) => {
                        assert_eq!(error, Error::OutOfOrderCall);
                        assert_eq!(target.state(), HandshakeState::Failed);
                    }
                }
            }
            Call::Read { kind, body } => {
                let mut body = body.clone();
                let frame = aeschat_core::Frame {
                    kind: kind_from_byte(*kind),
                    body: &mut body,
                };
                after_read(before, target.read_message(frame));
            }
            Call::ReadWire(bytes) => {
                let Some((kind, mut body)) = first_frame::<HANDSHAKE_FRAME_LEN>(bytes) else {
                    continue;
                };
                let frame = aeschat_core::Frame {
                    kind,
                    body: &mut body,
                };
                after_read(before, target.read_message(frame));
            }
            Call::Derive => match target.derive_keys() {
                Ok(()) => assert_eq!(before, HandshakeState::DeriveKeys),
                Err(error) => {
                    assert_eq!(error, Error::OutOfOrderCall);
                    assert_eq!(target.state(), before, "an early derive changes nothing");
                }
            },
            Call::IntoSession => {
                // Without a genuine peer the target can never be established.
                assert!(target.into_session().is_err());
                return;
            }
        }
        // With only the fuzzer as its peer, the target must never pass key confirmation: the
        // fuzzer knows the secret's bytes but cannot compute the transcript MAC.
        assert!(
            !confirmed(role, target.state()),
            "key confirmation passed with no genuine peer"
        );
    }
}

fn after_read(before: HandshakeState, result: Result<(), Error>) {
    match result {
        Ok(()) => assert!(matches!(
            before,
            HandshakeState::AwaitHello | HandshakeState::AwaitFinished
        )),
        Err(error) => check_alert(error),
    }
}
