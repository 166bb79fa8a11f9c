//! An active attacker between two real `aeschat` processes. A frame-aware proxy on loopback
//! (`mitm_support`) sits between `aeschat client` and `aeschat server --once` and attacks one
//! frame per run: it drops, duplicates, reorders, delays, truncates, flips a bit in, injects a
//! forged frame or a forged alert before, or replays a previous session's frame in place of,
//! the target, in either direction and in every phase (each hello, the client's ClientShare,
//! each key confirmation, the first chat record, a later chat record, the closing side's close,
//! the answering close). On the frames that carry a CPace share (the ServerHello and the
//! ClientShare, docs/PROTOCOL.md 3.2 and 3.3) it also replaces the share with the identity,
//! with bytes that are no canonical encoding, with the server's own share reflected back
//! (client to server only: the client's share does not exist yet when the ServerHello
//! travels), or with the same side's share from an earlier session; and the share and the
//! ClientFinished swapped in order is the "reorder" row of the share phase. A share that fails
//! CPace's checks is refused as a malformed message (alert 6, exit 1 on both sides: the side
//! that checked it reports the malformed message, its peer the abort), never as a wrong password;
//! a valid share of another session fails key confirmation (alert 1, exit 3 on both sides).
//!
//! For every run the test asserts how each process ends (exit status and its one error line),
//! and that each side's standard output is exactly the peer's genuine messages that arrived
//! before the attack, in order: nothing altered or injected is shown, and nothing shown is
//! lost. It also checks that the proxy really applied the fault to a frame of the kind the
//! phase names, so no row can pass without its attack. The matrix and its results are printed
//! at the end (on the real stderr, past the test harness's capture) and written to
//! `$CARGO_TARGET_TMPDIR/mitm-matrix.md`.
//!
//! Every row is judged strictly against the right ending. In the close phases that includes
//! the side that leaves: only the peer's authenticated answering close is a clean end for it,
//! so when its own close or the answer is dropped, cut off, altered, forged, replayed or
//! overtaken by a held-back record, it reports what went wrong (exit 1) like the other side.

use aeschat_tests::chat_support;
use aeschat_tests::cli_support;
use aeschat_tests::mitm_support;

use std::fmt;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aeschat_core::cpace::SHARE_LEN;
use aeschat_core::fernet::{encrypt, Iv, Key};
use aeschat_core::session::{Alert, FRAME_HEADER_LEN, NONCE_LEN};
use chat_support::{start_client_with, start_server, Files, Peer};
use cli_support::XorShift;
use mitm_support::{Attack, Direction, Fault, Proxy, PATIENCE};

/// The client's handshake time limit, below the server's, so that when both wait for a frame
/// that never comes the client gives up first and the server sees the connection end.
const CLIENT_TIMEOUT: &str = "3";
const SERVER_TIMEOUT: &str = "4";

/// A delay well below both time limits: it must not disturb anything.
const DELAY: Duration = Duration::from_millis(500);

/// Runs at once; each is two mostly idle processes and a proxy.
const WORKERS: usize = 8;

/// What each side types, in order. Distinct and longer than 6 bytes, so that a text record
/// (125 bytes and more) is told apart from a close (105 bytes) on the wire.
const CLIENT_TEXTS: [&str; 3] = [
    "client 0: the kettle is on",
    "client 1: bring the red umbrella",
    "client 2: see you at noon",
];
const SERVER_TEXTS: [&str; 3] = [
    "server 0: the train is late",
    "server 1: meet at the north gate",
    "server 2: keep the change",
];

/// The length of a close record's frame (and of any record with at most 6 bytes of text).
const CLOSE_FRAME_LEN: usize = 105;

// ---------------------------------------------------------------------------------------------
// The matrix.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Drop,
    Duplicate,
    Reorder,
    Delay,
    Truncate,
    FlipBit,
    Inject,
    InjectAlert,
    Replay,
    /// The share (the ServerHello's `Ya` or the ClientShare's `Yb`) replaced by the identity
    /// element, which would make `K` independent of the password (docs/PROTOCOL.md 4.4).
    ShareIdentity,
    /// The share replaced by bytes that are no canonical ristretto255 encoding (4.4).
    ShareNonCanonical,
    /// The server's own share, from this session's ServerHello, sent back to it as the
    /// client's (reflection, 4.4).
    ShareReflected,
    /// The share replaced by the same side's share from an earlier session with the same
    /// password: a valid element, for another session id and scalar.
    ShareFromOldSession,
}

impl Action {
    const ALL: [Action; 13] = [
        Action::Drop,
        Action::Duplicate,
        Action::Reorder,
        Action::Delay,
        Action::Truncate,
        Action::FlipBit,
        Action::Inject,
        Action::InjectAlert,
        Action::Replay,
        Action::ShareIdentity,
        Action::ShareNonCanonical,
        Action::ShareReflected,
        Action::ShareFromOldSession,
    ];

    fn is_share_attack(self) -> bool {
        matches!(
            self,
            Action::ShareIdentity
                | Action::ShareNonCanonical
                | Action::ShareReflected
                | Action::ShareFromOldSession
        )
    }

    fn describe(self) -> &'static str {
        match self {
            Action::Drop => "drop",
            Action::Duplicate => "duplicate",
            Action::Reorder => "reorder",
            Action::Delay => "delay 0.5 s",
            Action::Truncate => "truncate mid-frame",
            Action::FlipBit => "flip a bit",
            Action::Inject => "inject forged frame",
            Action::InjectAlert => "inject alert 1",
            Action::Replay => "replay old session",
            Action::ShareIdentity => "share: the identity",
            Action::ShareNonCanonical => "share: not canonical",
            Action::ShareReflected => "share: the server's reflected",
            Action::ShareFromOldSession => "share: from an old session",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// The first frame each way: ClientHello or ServerHello (which carries the server's
    /// CPace share).
    Hello,
    /// The client's second frame, ClientShare (kind 7, its CPace share), written in one piece
    /// with its ClientFinished (docs/PROTOCOL.md 3.3). The server has no such frame.
    Share,
    /// ClientFinished or ServerFinished.
    Finished,
    /// The first chat record of the direction.
    FirstRecord,
    /// A chat record after one was delivered each way.
    Record,
    /// The close of the side that leaves first.
    Close,
    /// The close that answers the peer's close.
    AnswerClose,
}

impl Phase {
    const ALL: [Phase; 7] = [
        Phase::Hello,
        Phase::Share,
        Phase::Finished,
        Phase::FirstRecord,
        Phase::Record,
        Phase::Close,
        Phase::AnswerClose,
    ];

    /// The number (from 0) of the attacked frame in `direction`: the client sends
    /// ClientHello, ClientShare, ClientFinished, then records; the server ServerHello,
    /// ServerFinished, then records.
    fn target(self, direction: Direction) -> usize {
        // The ClientShare comes before everything after the hello, client to server.
        let share = usize::from(direction == Direction::ClientToServer);
        match self {
            Phase::Hello => 0,
            Phase::Share => 1,
            Phase::Finished => 1 + share,
            Phase::FirstRecord => 2 + share,
            Phase::Record => 3 + share,
            Phase::Close | Phase::AnswerClose => 4 + share,
        }
    }

    /// The sequence number of the record a session phase attacks.
    fn sequence(self) -> u64 {
        match self {
            Phase::FirstRecord => 0,
            Phase::Record => 1,
            _ => 2,
        }
    }

    fn is_handshake(self) -> bool {
        matches!(self, Phase::Hello | Phase::Share | Phase::Finished)
    }

    fn describe(self) -> &'static str {
        match self {
            Phase::Hello => "handshake: hello",
            Phase::Share => "handshake: client's share",
            Phase::Finished => "handshake: finished",
            Phase::FirstRecord => "chat: first record",
            Phase::Record => "chat: later record",
            Phase::Close => "close: leaver's close",
            Phase::AnswerClose => "close: answering close",
        }
    }

    fn is_close(self) -> bool {
        matches!(self, Phase::Close | Phase::AnswerClose)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Client,
    Server,
}

impl Side {
    fn other(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }

    fn sender_of(direction: Direction) -> Side {
        match direction {
            Direction::ClientToServer => Side::Client,
            Direction::ServerToClient => Side::Server,
        }
    }

    fn texts(self) -> [&'static str; 3] {
        match self {
            Side::Client => CLIENT_TEXTS,
            Side::Server => SERVER_TEXTS,
        }
    }

    /// How the other side prints a message from this one.
    fn shown_as(self, n: usize) -> String {
        let label = match self {
            Side::Client => "Client",
            Side::Server => "Server",
        };
        format!("[{label}]: {}", self.texts()[n])
    }
}

/// How one process ends: its exit status and the one error line it prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// Status 0, no error.
    Clean,
    AuthFailed,
    Unexpected,
    Rejected,
    OutOfOrder,
    Truncated,
    Interrupted,
    TimedOut,
    PeerAborted,
}

impl End {
    const ALL: [End; 9] = [
        End::Clean,
        End::AuthFailed,
        End::Unexpected,
        End::Rejected,
        End::OutOfOrder,
        End::Truncated,
        End::Interrupted,
        End::TimedOut,
        End::PeerAborted,
    ];

    fn code(self) -> i32 {
        match self {
            End::Clean => 0,
            End::AuthFailed => 3,
            _ => 1,
        }
    }

    /// What the error line says (`docs/PROTOCOL.md` section 7.2).
    fn needle(self) -> &'static str {
        match self {
            End::Clean => "",
            End::AuthFailed => {
                "Authentication failed: the other side used a different password or key"
            }
            End::Unexpected => "The peer sent a malformed or unexpected message",
            End::Rejected => "A message failed authentication",
            End::OutOfOrder => "A message arrived out of order",
            End::Truncated => {
                "The connection ended without the peer's close: messages may be missing"
            }
            End::Interrupted => "The connection ended during the handshake",
            End::TimedOut => "did not complete the handshake within",
            End::PeerAborted => "The peer aborted the handshake",
        }
    }

    fn matches(self, code: i32, error: Option<&str>) -> bool {
        match (self, error) {
            (End::Clean, None) => code == 0,
            (End::Clean, Some(_)) | (_, None) => false,
            (end, Some(line)) => code == end.code() && line.contains(end.needle()),
        }
    }
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            End::Clean => "0 clean",
            End::AuthFailed => "3 authentication failed",
            End::Unexpected => "1 unexpected message",
            End::Rejected => "1 failed authentication",
            End::OutOfOrder => "1 out of order",
            End::Truncated => "1 messages may be missing",
            End::Interrupted => "1 handshake interrupted",
            End::TimedOut => "1 handshake timed out",
            End::PeerAborted => "1 peer aborted",
        })
    }
}

/// What a row expects. `client_shows` counts the server's messages the client prints (always
/// the first ones, in order), `server_shows` the client's messages the server prints.
#[derive(Clone, Copy, Debug)]
struct Expect {
    client: End,
    server: End,
    client_shows: usize,
    server_shows: usize,
}

impl Expect {
    fn end(&self, side: Side) -> End {
        match side {
            Side::Client => self.client,
            Side::Server => self.server,
        }
    }

    fn shows(&self, side: Side) -> usize {
        match side {
            Side::Client => self.client_shows,
            Side::Server => self.server_shows,
        }
    }

    fn is_clean(&self) -> bool {
        self.client == End::Clean && self.server == End::Clean
    }
}

#[derive(Clone, Copy, Debug)]
struct Scenario {
    action: Action,
    direction: Direction,
    phase: Phase,
}

impl Scenario {
    fn sender(&self) -> Side {
        Side::sender_of(self.direction)
    }

    /// The frame the proxy acts on. Reordering a close holds back the text record before it
    /// and sends it after the close.
    fn attacked_frame(&self) -> usize {
        let target = self.phase.target(self.direction);
        if self.action == Action::Reorder && self.phase.is_close() {
            target - 1
        } else {
            target
        }
    }

    /// For an attack on a share, the alert the side that checks it must send, as (direction,
    /// frame number from 0, alert): alert 6 for a share CPace refuses (docs/PROTOCOL.md
    /// 4.4), alert 1 from the server for a valid share of another session (3.3).
    fn share_alert(&self) -> Option<(Direction, usize, Alert)> {
        use Action::*;
        let c2s = self.direction == Direction::ClientToServer;
        match (self.phase, c2s, self.action) {
            // The client checks the ServerHello's share and answers with the alert instead of
            // its flight.
            (Phase::Hello, false, ShareIdentity | ShareNonCanonical) => {
                Some((Direction::ClientToServer, 1, Alert::UnexpectedMessage))
            }
            // The server checks the ClientShare once the ClientFinished is in, and answers
            // instead of its ServerFinished.
            (Phase::Share, true, ShareIdentity | ShareNonCanonical | ShareReflected | FlipBit) => {
                Some((Direction::ServerToClient, 1, Alert::UnexpectedMessage))
            }
            (Phase::Hello, false, ShareFromOldSession)
            | (Phase::Share, true, ShareFromOldSession) => {
                Some((Direction::ServerToClient, 1, Alert::AuthenticationFailed))
            }
            _ => None,
        }
    }

    /// Whether the server types its first message before the handshake, so that it follows
    /// ServerFinished at once (the only handshake frame with a successor the proxy can swap
    /// it with).
    fn server_types_early(&self) -> bool {
        self.phase == Phase::Finished && self.direction == Direction::ServerToClient
    }

    fn expect(&self) -> Result<Expect, &'static str> {
        let c2s = self.direction == Direction::ClientToServer;
        if self.phase == Phase::Share && !c2s {
            return Err("the server sends no ClientShare: its share is in its hello");
        }
        if self.action.is_share_attack() {
            match (self.phase, c2s, self.action) {
                (Phase::Hello, false, Action::ShareReflected) => {
                    return Err("the client's share exists only after the ServerHello: it \
                                cannot be reflected in it")
                }
                (Phase::Hello, false, _) | (Phase::Share, true, _) => {}
                _ => return Err("this frame carries no share"),
            }
        }
        if self.phase.is_handshake() {
            self.expect_in_handshake()
        } else {
            Ok(self.expect_in_session())
        }
    }

    fn expect_in_handshake(&self) -> Result<Expect, &'static str> {
        use Action::*;
        use End::*;
        use Phase::{Finished, Hello, Share};
        let c2s = self.direction == Direction::ClientToServer;
        let (client, server) = match (self.phase, c2s, self.action) {
            (_, _, Delay) => (Clean, Clean),
            // CPace's share checks (docs/PROTOCOL.md 4.4): the side that checks the share
            // refuses it as malformed (alert 6, no guess counted), and its peer, told by the
            // alert, reports that it aborted.
            (Hello, false, ShareIdentity | ShareNonCanonical) => (Unexpected, PeerAborted),
            (Share, true, ShareIdentity | ShareNonCanonical | ShareReflected) => {
                (PeerAborted, Unexpected)
            }
            // The sign bit of the share flipped: an odd field element, never canonical.
            (Share, true, FlipBit) => (PeerAborted, Unexpected),
            // A valid element of another session: different keys, so key confirmation fails.
            (Hello | Share, _, ShareFromOldSession) | (Share, true, Replay) => {
                (AuthFailed, AuthFailed)
            }
            // The client's flight is ClientShare then ClientFinished; without the share first
            // (dropped, or swapped behind the Finished), or with a second share or a forged
            // one before it, the server gets a frame it does not expect next and sends alert 6.
            (Share, true, Drop | Reorder | Duplicate | Inject) => (PeerAborted, Unexpected),
            (Share, true, Truncate) => (Interrupted, Interrupted),
            (Share, true, InjectAlert) => (Interrupted, PeerAborted),
            // The client's alert 6 reaches an established server as its first session frame,
            // where only alert 1 is accepted (docs/PROTOCOL.md 5.3).
            (Finished, false, Reorder) => (Unexpected, Unexpected),
            (_, _, Reorder) => {
                return Err("the next frame this way is sent only after the peer has \
                            answered this one: holding it back is a drop")
            }
            // The client's handshake time limit runs out first; the server then sees the
            // connection end.
            (Hello, _, Drop) | (Finished, true, Drop) => (TimedOut, Interrupted),
            (Hello, _, Truncate) | (Finished, true, Truncate) => (Interrupted, Interrupted),
            // A hello or key confirmation that is not the one sent fails key confirmation.
            (_, _, FlipBit) | (_, _, Replay) => (AuthFailed, AuthFailed),
            // The second hello arrives where a key confirmation should; the server's alert 6
            // tells the client.
            (Hello, true, Duplicate) | (Hello, true, Inject) => (PeerAborted, Unexpected),
            // An unauthenticated alert ends a handshake, as designed, but never passes for a
            // failed password on the server, which has checked no ClientFinished yet.
            (Hello, true, InjectAlert) | (Finished, true, InjectAlert) => {
                (Interrupted, PeerAborted)
            }
            // The server has finished; the repeated ClientFinished is its first session frame.
            (Finished, true, Duplicate) => (Truncated, Unexpected),
            (Finished, true, Inject) => (AuthFailed, AuthFailed),
            // The client sent its ClientFinished before it read the second hello; the server
            // finishes and gets the client's alert 6 as its first session frame.
            (Hello, false, Duplicate) => (Unexpected, Unexpected),
            // The client confirms the forged hello's keys, which the server refuses; the real
            // hello then reaches the client where ServerFinished should be.
            (Hello, false, Inject) => (Unexpected, AuthFailed),
            // Alert 1 before the ServerHello: the client has sent nothing derived from the
            // password, so it is no failed password either, only an abort.
            (Hello, false, InjectAlert) => (PeerAborted, Interrupted),
            // The server's first record arrives where ServerFinished should.
            (Finished, false, Drop) => (Unexpected, Unexpected),
            (Finished, false, Duplicate) => (Unexpected, Truncated),
            (Finished, false, Truncate) => (Interrupted, Truncated),
            (Finished, false, Inject) => (AuthFailed, AuthFailed),
            (Finished, false, InjectAlert) => (AuthFailed, Truncated),
            (phase, _, _) => unreachable!("{phase:?} is not a handshake phase"),
        };
        let shown = usize::from(client == Clean && server == Clean);
        Ok(Expect {
            client,
            server,
            client_shows: shown,
            server_shows: shown,
        })
    }

    /// In a session, in terms of the side that sends the attacked frame (`x`) and the side
    /// that receives it (`y`). In the close phases `x` is the side that leaves (`Close`) or the
    /// side that answers (`AnswerClose`).
    fn expect_in_session(&self) -> Expect {
        use Action::*;
        use End::*;
        let x = self.sender();
        let y = x.other();
        // What the receiver of the attacked frame rightly reports.
        let y_end = match (self.phase, self.action) {
            (_, Delay) => Clean,
            // A close followed by anything: nothing after a close is read.
            (Phase::Close | Phase::AnswerClose, Duplicate) => Clean,
            // The sender's end of stream follows (the proxy forwards it).
            (_, Drop) if self.phase.is_close() => Truncated,
            // A reordered close overtakes the record held back before it.
            (_, Drop | Duplicate | Reorder) => OutOfOrder,
            (_, Truncate) => Truncated,
            (_, FlipBit | Inject | Replay) => Rejected,
            // Before the first record an alert is taken as the peer's: the server may get
            // alert 1 there from a client that refused ServerFinished (PROTOCOL.md 6.2).
            (Phase::FirstRecord, InjectAlert) if y == Side::Server => AuthFailed,
            (_, InjectAlert) => Unexpected,
            (_, ShareIdentity | ShareNonCanonical | ShareReflected | ShareFromOldSession) => {
                unreachable!("a record carries no share")
            }
        };
        let x_end = match self.phase {
            // x answered the leaver's close, which arrived intact: its side ended cleanly,
            // whatever then happens to its answer.
            Phase::AnswerClose => Clean,
            // Otherwise y hangs up without a close (for Close: without answering x's), and x,
            // waiting for one, sees the connection end.
            _ if y_end == Clean => Clean,
            _ => Truncated,
        };
        let clean = y_end == Clean && x_end == Clean;
        // How many of x's messages y shows, and of y's messages x shows.
        let (y_shows, x_shows) = match self.phase {
            Phase::FirstRecord => (
                match self.action {
                    Delay => 2,
                    Duplicate => 1,
                    _ => 0,
                },
                if clean { 2 } else { 1 },
            ),
            Phase::Record => (
                match self.action {
                    Delay => 3,
                    Duplicate => 2,
                    _ => 1,
                },
                if clean { 2 } else { 1 },
            ),
            // The held-back record comes after the close: never shown.
            _ if self.action == Reorder => (1, 1),
            _ => (2, 1),
        };
        let (client, server, client_shows, server_shows) = match x {
            Side::Client => (x_end, y_end, x_shows, y_shows),
            Side::Server => (y_end, x_end, y_shows, x_shows),
        };
        Expect {
            client,
            server,
            client_shows,
            server_shows,
        }
    }
}

fn all_scenarios() -> Vec<Scenario> {
    let mut all = Vec::new();
    for phase in Phase::ALL {
        for direction in Direction::BOTH {
            for action in Action::ALL {
                all.push(Scenario {
                    action,
                    direction,
                    phase,
                });
            }
        }
    }
    all
}

// ---------------------------------------------------------------------------------------------
// The attacks.

/// Every frame of an earlier, complete session with the same password, each way: hello,
/// finished, two text records and a close.
struct Recording {
    frames: [Vec<Vec<u8>>; 2],
}

impl Recording {
    fn frame(&self, direction: Direction, index: usize) -> Vec<u8> {
        let d = match direction {
            Direction::ClientToServer => 0,
            Direction::ServerToClient => 1,
        };
        self.frames[d][index].clone()
    }
}

/// Where the share is in the frame a share attack targets: the ServerHello's body offset 53
/// (docs/PROTOCOL.md 3.2), or the whole body of a ClientShare (3.3).
fn share_at(direction: Direction) -> usize {
    match direction {
        Direction::ServerToClient => FRAME_HEADER_LEN + 53,
        Direction::ClientToServer => FRAME_HEADER_LEN,
    }
}

/// 32 bytes that are no canonical ristretto255 encoding: a field element above p.
const NON_CANONICAL_SHARE: [u8; SHARE_LEN] = [0xff; SHARE_LEN];

fn attack_for(scenario: &Scenario, old: &Recording, random: &mut XorShift) -> Attack {
    let target = scenario.phase.target(scenario.direction);
    let at = share_at(scenario.direction);
    let fault = match scenario.action {
        Action::Drop => Fault::Drop,
        Action::Duplicate => Fault::Duplicate,
        Action::Reorder => Fault::HoldUntilNext,
        Action::Delay => Fault::Delay(DELAY),
        Action::Truncate => Fault::Truncate,
        Action::FlipBit => Fault::Alter(match scenario.phase {
            Phase::Hello => flip_nonce_bit,
            Phase::Share => flip_share_sign_bit,
            Phase::Finished => flip_mac_bit,
            _ => flip_token_bit,
        }),
        Action::Inject => Fault::InjectBefore(forged_frame(scenario, old, random)),
        Action::InjectAlert => {
            let mut alert = [0u8; 6];
            let frame = Alert::AuthenticationFailed
                .write(&mut alert)
                .expect("an alert fits in 6 bytes");
            Fault::InjectBefore(frame.to_vec())
        }
        Action::Replay => Fault::Replace(old.frame(scenario.direction, target)),
        Action::ShareIdentity => Fault::Overwrite {
            at,
            bytes: vec![0; SHARE_LEN],
        },
        Action::ShareNonCanonical => Fault::Overwrite {
            at,
            bytes: NON_CANONICAL_SHARE.to_vec(),
        },
        Action::ShareReflected => Fault::AlterSeen(reflect_servers_share),
        Action::ShareFromOldSession => Fault::Overwrite {
            at,
            bytes: old.frame(scenario.direction, target)[at..at + SHARE_LEN].to_vec(),
        },
    };
    Attack {
        direction: scenario.direction,
        frame: scenario.attacked_frame(),
        fault,
    }
}

/// A bit of the hello's nonce: the hello stays well formed, so only key confirmation can
/// notice.
fn flip_nonce_bit(frame: &mut [u8]) {
    frame[FRAME_HEADER_LEN + 9 + NONCE_LEN / 2] ^= 0x01;
}

/// The lowest bit of the ClientShare's first byte: a canonical encoding is an even field
/// element, so the share becomes invalid, whatever it was.
fn flip_share_sign_bit(frame: &mut [u8]) {
    frame[FRAME_HEADER_LEN] ^= 0x01;
}

/// The ClientShare's share replaced by the one in this session's ServerHello.
fn reflect_servers_share(frame: &mut [u8], seen: &[Vec<Vec<u8>>; 2]) {
    let at = share_at(Direction::ServerToClient);
    let server_hello = &seen[1][0];
    frame[FRAME_HEADER_LEN..FRAME_HEADER_LEN + SHARE_LEN]
        .copy_from_slice(&server_hello[at..at + SHARE_LEN]);
}

/// A bit in the middle of a key confirmation's MAC.
fn flip_mac_bit(frame: &mut [u8]) {
    frame[FRAME_HEADER_LEN + 16] ^= 0x01;
}

/// The case bit of a letter in the middle of a token: the text stays canonical base64url,
/// so the token's MAC, not its parser, must catch it.
fn flip_token_bit(frame: &mut [u8]) {
    let middle = FRAME_HEADER_LEN + (frame.len() - FRAME_HEADER_LEN) / 2;
    let letter = (middle..frame.len())
        .find(|&i| frame[i].is_ascii_alphabetic())
        .expect("a token has letters after its middle");
    frame[letter] ^= 0x20;
}

/// ristretto255's base point: a valid share anyone can send, with no password behind it.
const BASE_POINT: [u8; SHARE_LEN] = [
    0xe2, 0xf2, 0xae, 0x0a, 0x6a, 0xbc, 0x4e, 0x71, 0xa8, 0x84, 0xa9, 0x61, 0xc5, 0x00, 0x51, 0x5f,
    0x58, 0xe3, 0x0b, 0x6a, 0xa5, 0x82, 0xdd, 0x8d, 0xb6, 0xa6, 0x59, 0x45, 0xe0, 0x8d, 0x2d, 0x76,
];

/// A well-formed frame of the target's kind that the attacker, without the password, can
/// make: a hello with a fresh nonce, a ClientShare with a valid element of its choosing, a
/// random key confirmation, or a record with the expected sequence number sealed under a key
/// of the attacker's own.
fn forged_frame(scenario: &Scenario, old: &Recording, random: &mut XorShift) -> Vec<u8> {
    let target = scenario.phase.target(scenario.direction);
    match scenario.phase {
        Phase::Hello => {
            let mut hello = old.frame(scenario.direction, 0);
            let nonce = FRAME_HEADER_LEN + 9;
            hello[nonce..nonce + NONCE_LEN].copy_from_slice(&random.bytes(NONCE_LEN));
            hello
        }
        Phase::Share => {
            let mut frame = vec![7, 0, 0, 0, 32];
            frame.extend(BASE_POINT);
            frame
        }
        Phase::Finished => {
            let kind = old.frame(scenario.direction, target)[0];
            let mut frame = vec![kind, 0, 0, 0, 32];
            frame.extend(random.bytes(32));
            frame
        }
        _ => {
            let sequence = scenario.phase.sequence();
            let mut plaintext = vec![if scenario.phase.is_close() { 2 } else { 1 }];
            plaintext.extend(sequence.to_be_bytes());
            if !scenario.phase.is_close() {
                plaintext.extend(b"forged: the meeting moved to 5 pm");
            }
            let key = Key::generate().expect("randomness for a key");
            let iv = Iv::random().expect("randomness for an IV");
            let mut token = vec![0u8; 512];
            let token =
                encrypt(&key, &plaintext, unix_now(), &iv, &mut token).expect("a short token fits");
            let mut frame = vec![5];
            frame.extend((token.len() as u32).to_be_bytes());
            frame.extend(token.as_bytes());
            frame
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

// ---------------------------------------------------------------------------------------------
// Running one scenario.

/// What happened in one run.
struct Observed {
    client: (i32, Option<String>),
    server: (i32, Option<String>),
    client_stdout: String,
    server_stdout: String,
    /// Whatever the proxy or the frames on the wire got wrong (no fault, wrong frame kind).
    wire: Vec<String>,
    transcript: String,
    elapsed: Duration,
}

impl Observed {
    fn end(&self, side: Side) -> (i32, Option<&str>) {
        let (code, line) = match side {
            Side::Client => &self.client,
            Side::Server => &self.server,
        };
        (*code, line.as_deref())
    }

    fn stdout(&self, side: Side) -> &str {
        match side {
            Side::Client => &self.client_stdout,
            Side::Server => &self.server_stdout,
        }
    }

    /// The row's cell for one side: which ending it matched.
    fn describe(&self, side: Side) -> String {
        let (code, line) = self.end(side);
        End::ALL
            .into_iter()
            .find(|end| end.matches(code, line))
            .map_or_else(|| format!("{code} {line:?}"), |end| end.to_string())
    }
}

/// The two processes of one run.
struct Pair {
    client: Peer,
    server: Peer,
}

impl Pair {
    fn peer(&mut self, side: Side) -> &mut Peer {
        match side {
            Side::Client => &mut self.client,
            Side::Server => &mut self.server,
        }
    }

    /// `side` types its message number `n`.
    fn say(&mut self, side: Side, n: usize) {
        self.peer(side).type_line(side.texts()[n]);
    }

    /// Waits until `side` shows the other side's message number `n`.
    fn shows(&mut self, side: Side, n: usize) {
        let line = side.other().shown_as(n);
        self.peer(side).wait_stdout_line(&line);
    }

    fn connected(&mut self) {
        self.client.wait_stderr("[+] Connected to the server");
        self.server.wait_stderr("[+] Client connected");
    }

    /// Client says 0, server says 0, each waiting for the other's to arrive.
    fn warm_up(&mut self) {
        self.connected();
        self.say(Side::Client, 0);
        self.shows(Side::Server, 0);
        self.say(Side::Server, 0);
        self.shows(Side::Client, 0);
    }
}

/// The one error line (`aeschat: ...`, not a warning) a process printed, if any.
fn error_line(peer: &Peer) -> Result<Option<String>, String> {
    let stderr = peer.stderr_text();
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("aeschat: ") && !line.starts_with("aeschat: warning: "))
        .collect();
    match errors[..] {
        [] => Ok(None),
        [line] => Ok(Some(line.to_owned())),
        _ => Err(format!("several error lines:\n{}", peer.transcript())),
    }
}

/// Runs one scenario through the proxy. Panics (a wait that timed out) are the caller's.
fn run(scenario: &Scenario, expect: &Expect, files: &Files, old: &Recording) -> Observed {
    let started = Instant::now();
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |elapsed| elapsed.as_nanos() as u64);
    let mut random = XorShift::new(seed);
    let attack = attack_for(scenario, old, &mut random);
    let (mut server, address) = start_server(files, &["--once", "--timeout", SERVER_TIMEOUT]);
    let proxy = Proxy::start(&address, Some(attack));
    if scenario.server_types_early() {
        server.type_line(SERVER_TEXTS[0]);
    }
    let client = start_client_with(
        "client",
        &proxy.address(),
        &files.password_file,
        &["--timeout", CLIENT_TIMEOUT],
    );
    let mut pair = Pair { client, server };
    let x = scenario.sender();
    let y = x.other();
    let clean = expect.is_clean();
    match scenario.phase {
        Phase::Hello | Phase::Share | Phase::Finished => {
            if clean {
                pair.connected();
                if !scenario.server_types_early() {
                    pair.say(Side::Server, 0);
                }
                pair.shows(Side::Client, 0);
                pair.say(Side::Client, 0);
                pair.shows(Side::Server, 0);
                pair.client.type_line("/quit");
            }
        }
        Phase::FirstRecord | Phase::Record => {
            pair.connected();
            // One genuine message each way (FirstRecord: only towards the attacker's sender)
            // before the attack, to show it is not lost.
            let first = if scenario.phase == Phase::Record {
                pair.warm_up();
                1
            } else {
                pair.say(y, 0);
                pair.shows(x, 0);
                0
            };
            // The target, and the record after it that reveals a drop or a reordering.
            pair.say(x, first);
            pair.say(x, first + 1);
            if clean {
                pair.shows(y, first);
                pair.shows(y, first + 1);
                pair.say(y, 1);
                pair.shows(x, 1);
                pair.client.type_line("/quit");
            }
        }
        Phase::Close | Phase::AnswerClose => {
            pair.warm_up();
            pair.say(x, 1);
            // x has sent it before anyone leaves (the proxy may hold it back).
            assert!(
                proxy.wait_frames(
                    scenario.direction,
                    Phase::Record.target(scenario.direction) + 1
                ),
                "{x:?} never sent its second message"
            );
            if expect.shows(y) == 2 {
                pair.shows(y, 1);
            }
            let leaver = if scenario.phase == Phase::Close { x } else { y };
            pair.peer(leaver).type_line("/quit");
        }
    }
    let client_code = pair.client.wait_exit();
    // A server drops a caller whose handshake failed without an authenticated verdict, says
    // so, and goes on listening even with --once (docs/SECURITY.md, "Availability"): that is
    // its outcome here, read as the error it reports.
    let (server_code, dropped) = match pair.server.wait_exit_or_line("[!] Dropped ") {
        Ok(code) => (code, None),
        Err(line) => {
            pair.server.close_stdin();
            pair.server.wait_exit();
            let reason = line.split_once(": ").map_or("", |(_, reason)| reason);
            (1, Some(format!("aeschat: {reason}")))
        }
    };
    let mut wire = Vec::new();
    if !proxy.wait_finished() {
        wire.push("the proxy did not see both directions end".to_owned());
    }
    wire.extend(proxy.trouble());
    wire.extend(check_wire(scenario, &proxy));
    if scenario.action == Action::Delay && started.elapsed() < DELAY {
        wire.push("the run took less time than the delay".to_owned());
    }
    let mut observed = Observed {
        client: (client_code, None),
        server: (server_code, None),
        client_stdout: pair.client.stdout_text(),
        server_stdout: pair.server.stdout_text(),
        wire,
        transcript: format!("{}\n{}", pair.client.transcript(), pair.server.transcript()),
        elapsed: started.elapsed(),
    };
    for side in [Side::Client, Side::Server] {
        let reported = match (side, &dropped) {
            (Side::Server, Some(line)) => Ok(Some(line.clone())),
            _ => error_line(pair.peer(side)),
        };
        match reported {
            Ok(line) => match side {
                Side::Client => observed.client.1 = line,
                Side::Server => observed.server.1 = line,
            },
            Err(problem) => observed.wire.push(problem),
        }
    }
    observed
}

/// The proxy applied the fault, to a frame of the kind the phase names.
fn check_wire(scenario: &Scenario, proxy: &Proxy) -> Vec<String> {
    let mut problems = Vec::new();
    if !proxy.applied() {
        problems.push("the proxy never reached the frame to attack".to_owned());
        return problems;
    }
    let frames = proxy.frames(scenario.direction);
    let target = scenario.phase.target(scenario.direction);
    // The attacked frame, or for a held-back record the close it was swapped with.
    let Some(frame) = frames.get(target) else {
        problems.push(format!("frame {} never came", target + 1));
        return problems;
    };
    let c2s = scenario.direction == Direction::ClientToServer;
    let (kind, length_ok) = (frame[0], frame.len());
    let fits = match scenario.phase {
        Phase::Hello => kind == if c2s { 1 } else { 2 },
        Phase::Share => kind == 7,
        Phase::Finished => kind == if c2s { 3 } else { 4 },
        Phase::FirstRecord | Phase::Record => kind == 5 && length_ok > CLOSE_FRAME_LEN,
        Phase::Close | Phase::AnswerClose => kind == 5 && length_ok == CLOSE_FRAME_LEN,
    };
    if !fits {
        problems.push(format!(
            "frame {} is of kind {kind} and {length_ok} bytes, not the {}",
            target + 1,
            scenario.phase.describe()
        ));
    }
    if let Some((direction, index, alert)) = scenario.share_alert() {
        let mut wanted = [0u8; 6];
        let wanted = alert.write(&mut wanted).expect("an alert fits in 6 bytes");
        let sent = proxy.frames(direction);
        if sent.get(index).map(Vec::as_slice) != Some(wanted) {
            problems.push(format!(
                "frame {} {direction} is {:02x?}, not the documented {alert:?} alert",
                index + 1,
                sent.get(index)
            ));
        }
    }
    if scenario.action == Action::Reorder && !proxy.released_late() {
        problems.push("the held-back frame was not sent after its successor".to_owned());
    }
    problems
}

/// How a row came out.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Verdict {
    Pass,
    Fail(String),
}

/// Judges one run against its row.
fn judge(expect: &Expect, observed: &Observed) -> Verdict {
    let mut problems = observed.wire.clone();
    for side in [Side::Client, Side::Server] {
        let (code, line) = observed.end(side);
        let right = expect.end(side);
        if !right.matches(code, line) {
            problems.push(format!(
                "{side:?} ended with status {code} and {line:?}, expected {right}"
            ));
        }
    }
    for side in [Side::Client, Side::Server] {
        let shown: Vec<String> = (0..expect.shows(side))
            .map(|n| side.other().shown_as(n))
            .collect();
        let wanted = shown
            .iter()
            .map(|line| format!("{line}\n"))
            .collect::<String>();
        let stdout = observed.stdout(side);
        if stdout != wanted {
            problems.push(format!(
                "{side:?} showed {stdout:?}, expected exactly {wanted:?}"
            ));
        }
    }
    if problems.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail(format!("{}\n{}", problems.join("\n"), observed.transcript))
    }
}

// ---------------------------------------------------------------------------------------------
// The previous session and the whole matrix.

/// A clean session through a proxy that attacks nothing: it must be transparent, and its
/// frames are what the replay rows replay.
fn record_a_session(files: &Files) -> Recording {
    let (server, address) = start_server(files, &["--once", "--timeout", SERVER_TIMEOUT]);
    let proxy = Proxy::start(&address, None);
    let client = start_client_with(
        "client",
        &proxy.address(),
        &files.password_file,
        &["--timeout", CLIENT_TIMEOUT],
    );
    let mut pair = Pair { client, server };
    pair.warm_up();
    pair.say(Side::Client, 1);
    pair.shows(Side::Server, 1);
    pair.say(Side::Server, 1);
    pair.shows(Side::Client, 1);
    pair.client.type_line("/quit");
    assert_eq!(pair.client.wait_exit(), 0, "{}", pair.client.transcript());
    assert_eq!(pair.server.wait_exit(), 0, "{}", pair.server.transcript());
    for side in [Side::Client, Side::Server] {
        let wanted: String = (0..2)
            .map(|n| format!("{}\n", side.other().shown_as(n)))
            .collect();
        assert_eq!(pair.peer(side).stdout_text(), wanted);
        assert_eq!(error_line(pair.peer(side)), Ok(None));
    }
    assert!(proxy.wait_finished(), "the recorded session did not end");
    assert!(proxy.trouble().is_empty(), "{:?}", proxy.trouble());
    let frames = Direction::BOTH.map(|direction| proxy.frames(direction));
    let kinds = frames
        .clone()
        .map(|frames| frames.iter().map(|frame| frame[0]).collect::<Vec<u8>>());
    assert_eq!(kinds, [vec![1, 7, 3, 5, 5, 5], vec![2, 4, 5, 5, 5]]);
    for (direction, frames) in Direction::BOTH.iter().zip(&frames) {
        let first = Phase::FirstRecord.target(*direction);
        assert_eq!(
            frames[first + 2].len(),
            CLOSE_FRAME_LEN,
            "the last record is a close"
        );
        assert!(frames[first].len() > CLOSE_FRAME_LEN && frames[first + 1].len() > CLOSE_FRAME_LEN);
    }
    Recording { frames }
}

/// One row of the matrix and how it came out.
struct Row {
    scenario: Scenario,
    expect: Result<Expect, &'static str>,
    verdict: Option<Verdict>,
    observed: Option<(String, String, Duration)>,
}

/// Runs every applicable row, several at once, and returns every row of the matrix.
fn run_matrix() -> (Vec<Row>, Duration) {
    let started = Instant::now();
    let files = Files::new("mitm");
    let old = record_a_session(&files);
    let rows: Vec<Row> = all_scenarios()
        .into_iter()
        .map(|scenario| Row {
            scenario,
            expect: scenario.expect(),
            verdict: None,
            observed: None,
        })
        .collect();
    let to_run: Vec<usize> = (0..rows.len())
        .filter(|&i| rows[i].expect.is_ok())
        .collect();
    let rows = Mutex::new(rows);
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..WORKERS {
            scope.spawn(|| loop {
                let Some(&i) = to_run.get(next.fetch_add(1, Ordering::SeqCst)) else {
                    return;
                };
                let (scenario, expect) = {
                    let rows = rows.lock().unwrap();
                    (
                        rows[i].scenario,
                        rows[i].expect.expect("only applicable rows run"),
                    )
                };
                let outcome =
                    panic::catch_unwind(AssertUnwindSafe(|| run(&scenario, &expect, &files, &old)));
                let (verdict, observed) = match outcome {
                    Ok(observed) => (
                        judge(&expect, &observed),
                        Some((
                            observed.describe(Side::Client),
                            observed.describe(Side::Server),
                            observed.elapsed,
                        )),
                    ),
                    Err(payload) => {
                        let message = payload
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_else(|| "a panic".to_owned());
                        (Verdict::Fail(message), None)
                    }
                };
                let mut rows = rows.lock().unwrap();
                rows[i].verdict = Some(verdict);
                rows[i].observed = observed;
            });
        }
    });
    (rows.into_inner().unwrap(), started.elapsed())
}

/// The matrix as a Markdown table with its totals.
fn summary(rows: &[Row], elapsed: Duration) -> String {
    let mut out = String::new();
    out.push_str(
        "| # | action | direction | phase | frame | client: expected | server: expected | \
         client shows | server shows | client: observed | server: observed | result | time |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    let (mut applicable, mut passed, mut failed, mut not_run) = (0, 0, 0, 0);
    for (n, row) in rows.iter().enumerate() {
        let s = &row.scenario;
        let first = format!(
            "| {} | {} | {} | {} |",
            n + 1,
            s.action.describe(),
            s.direction,
            s.phase.describe()
        );
        let expect = match &row.expect {
            Err(why) => {
                out.push_str(&format!("{first} – | n/a: {why} | | | | | | n/a | |\n"));
                continue;
            }
            Ok(expect) => expect,
        };
        applicable += 1;
        let result = match &row.verdict {
            Some(Verdict::Pass) => {
                passed += 1;
                "pass"
            }
            Some(Verdict::Fail(_)) => {
                failed += 1;
                "FAIL"
            }
            None => {
                not_run += 1;
                "not run"
            }
        };
        let (client, server, time) = match &row.observed {
            Some((client, server, time)) => (
                client.clone(),
                server.clone(),
                format!("{} ms", time.as_millis()),
            ),
            None => (String::new(), String::new(), String::new()),
        };
        out.push_str(&format!(
            "{first} {} | {} | {} | {} | {} | {client} | {server} | {result} | {time} |\n",
            s.attacked_frame() + 1,
            expect.client,
            expect.server,
            expect.client_shows,
            expect.server_shows,
        ));
    }
    out.push_str(&format!(
        "\n{} actions × {} directions × {} phases = {} rows: {} not applicable, {applicable} \
         run: {passed} passed, {failed} failed{}; {:.1} s\n",
        Action::ALL.len(),
        Direction::BOTH.len(),
        Phase::ALL.len(),
        rows.len(),
        rows.len() - applicable,
        if not_run > 0 {
            format!(", {not_run} not run")
        } else {
            String::new()
        },
        elapsed.as_secs_f64(),
    ));
    out.push_str(
        "frame: the attacked frame's number in its direction (client: 1 hello, 2 share, 3 \
         finished, 4 and 5 text records, 6 close; server: 1 hello with its share, 2 finished, 3 \
         and 4 text records, 5 close); shows: how many of the peer's messages the side prints, \
         exactly those and in order; an ending is the exit status and the error line.\n",
    );
    out
}

/// Prints past the test harness's capture, so CI logs show it, and keeps a copy.
fn publish(name: &str, text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "\n{text}");
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::write(path, text);
}

fn failures(rows: &[Row]) -> Vec<String> {
    rows.iter()
        .filter_map(|row| match &row.verdict {
            Some(Verdict::Fail(why)) => Some(format!(
                "== {} / {} / {}:\n{why}",
                row.scenario.action.describe(),
                row.scenario.direction,
                row.scenario.phase.describe()
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn every_attack_in_every_direction_and_phase_ends_safely_with_the_right_message() {
    let (rows, elapsed) = run_matrix();
    publish("mitm-matrix.md", &summary(&rows, elapsed));
    let failed = failures(&rows);
    assert!(
        failed.is_empty(),
        "{} rows failed:\n{}",
        failed.len(),
        failed.join("\n\n")
    );
    // The matrix is what docs/SECURITY.md quotes; a row that silently stopped running would
    // weaken it.
    let applicable = rows.iter().filter(|row| row.expect.is_ok()).count();
    assert_eq!(applicable, 121);
    assert!(rows
        .iter()
        .filter(|row| row.expect.is_ok())
        .all(|row| row.verdict.is_some()));
}

#[test]
fn a_whole_recorded_client_side_replayed_to_a_new_server_fails_authentication() {
    let files = Files::new("mitm-replay-all");
    let old = record_a_session(&files);
    let (mut server, address) = start_server(&files, &["--once", "--timeout", SERVER_TIMEOUT]);
    // Everything the client sent last time, at once: hello, share, key confirmation, two
    // messages and the close.
    let mut stream = TcpStream::connect(&address).expect("cannot connect to the server");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(&old.frames[0].concat()).unwrap();
    // The server answers with a fresh hello (a fresh nonce and share) and, when the old key
    // confirmation fails against it (the old share meets a new scalar and session id: other
    // keys), with alert 1.
    let mut answer = Vec::new();
    let mut chunk = [0u8; 256];
    while answer.len() < 90 + 6 {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(read) => answer.extend_from_slice(&chunk[..read]),
        }
    }
    server.assert_exit(3);
    assert_eq!(
        answer.len(),
        90 + 6,
        "{answer:02x?}\n{}",
        server.transcript()
    );
    let (hello, alert) = answer.split_at(90);
    assert_eq!(hello[..5], [2, 0, 0, 0, 85]);
    let nonce = FRAME_HEADER_LEN + 9..FRAME_HEADER_LEN + 9 + NONCE_LEN;
    assert_ne!(
        hello[nonce.clone()],
        old.frames[1][0][nonce],
        "the server's nonce is fresh"
    );
    let share =
        share_at(Direction::ServerToClient)..share_at(Direction::ServerToClient) + SHARE_LEN;
    assert_ne!(
        hello[share.clone()],
        old.frames[1][0][share],
        "the server's share is fresh"
    );
    assert_eq!(alert, [6, 0, 0, 0, 1, 1]);
    assert_eq!(server.stdout_text(), "");
    let error = error_line(&server).unwrap().unwrap_or_default();
    assert!(
        End::AuthFailed.matches(3, Some(&error)),
        "{}",
        server.transcript()
    );
    assert!(!server.stderr_text().contains("[+] Client connected"));
}
