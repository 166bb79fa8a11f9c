//! Shared pieces of the aeschat fuzz targets: byte mutations of genuine messages, a genuine
//! handshake peer that runs in lockstep with the side under test, an in-process session (over
//! the shared test pair, `aeschat_testkit::Pair`), and an independent Fernet as the oracle of
//! differential checks. Every pump here only moves bytes: the protocol rules are the engine's.
//!
//! The targets panic (via `assert!`) only when the core breaks one of its promises; any panic
//! inside the core itself is a bug too, since the core must never panic on any input.

pub mod handshake;
pub mod reference;

use aeschat_core::fernet::Key;
use aeschat_core::session::{
    Config, Engine, Frame, FrameKind, Handshake, Receiver, Role, Secret, Sender,
};
use aeschat_testkit::{Pair, Side};
use arbitrary::Arbitrary;
use base64ct::Encoding;

/// The pre-shared key both genuine sides hold in key-file mode.
pub fn psk() -> Key {
    Key::from_bytes([0x5a; 32])
}

/// A different key, for a peer that holds the wrong secret.
pub fn other_psk() -> Key {
    Key::from_bytes([0xa5; 32])
}

/// The password both genuine sides hold in password mode.
pub const PASSWORD: &[u8] = b"correct horse battery staple";
/// A different password, for a peer that holds the wrong secret.
pub const OTHER_PASSWORD: &[u8] = b"correct horse battery stapler";

/// Changes to a genuine message: byte flips, a truncation and an extension. An empty mutation
/// leaves the message as it was, which the invariants must (and do) tolerate.
#[derive(Arbitrary, Debug, Clone)]
pub struct Mutation {
    /// XOR masks applied at positions taken modulo the length.
    pub flips: Vec<(u16, u8)>,
    /// Keep only this many bytes (modulo the length plus one).
    pub truncate_to: Option<u16>,
    /// Bytes added at the end.
    pub append: Vec<u8>,
}

impl Mutation {
    /// The mutated copy of `bytes`.
    pub fn apply(&self, bytes: &[u8]) -> Vec<u8> {
        let mut out = bytes.to_vec();
        if !out.is_empty() {
            for &(at, mask) in &self.flips {
                let at = usize::from(at) % out.len();
                out[at] ^= mask;
            }
        }
        if let Some(len) = self.truncate_to {
            out.truncate(usize::from(len) % (bytes.len() + 1));
        }
        out.extend_from_slice(&self.append);
        out
    }
}

/// A frame kind from any byte: every byte names one of the seven kinds (protocol 2's
/// ClientShare included), so the fuzzer wastes no inputs on kinds that framing would refuse
/// before the handshake sees them.
pub fn kind_from_byte(byte: u8) -> FrameKind {
    match byte % 7 {
        0 => FrameKind::ClientHello,
        1 => FrameKind::ServerHello,
        2 => FrameKind::ClientFinished,
        3 => FrameKind::ServerFinished,
        4 => FrameKind::Record,
        5 => FrameKind::Alert,
        _ => FrameKind::ClientShare,
    }
}

/// The whole frames at the start of `bytes`, as owned kinds and bodies, and the bytes they take
/// (an oracle's view of a stream the engine framed: any body length is accepted, the first
/// framing error or unfinished frame stops the list).
pub fn frames_in(bytes: &[u8]) -> (Vec<(FrameKind, Vec<u8>)>, usize) {
    let mut copy = bytes.to_vec();
    let mut frames = Vec::new();
    let mut at = 0;
    while let Ok(Some((frame, len))) = Frame::parse(&mut copy[at..], usize::MAX) {
        frames.push((frame.kind, frame.body.to_vec()));
        at += len;
    }
    (frames, at)
}

/// The first frame in `bytes`, as an owned kind and body, parsed with a body limit of
/// `max_body_len`; `None` when the bytes hold no complete frame or framing refuses them.
pub fn first_frame(bytes: &[u8], max_body_len: usize) -> Option<(FrameKind, Vec<u8>)> {
    let mut copy = bytes.to_vec();
    let (frame, _) = Frame::parse(&mut copy, max_body_len).ok()??;
    Some((frame.kind, frame.body.to_vec()))
}

/// A genuine session pair from [`establish`], with the record keys recomputed independently.
pub struct Established {
    /// The client's halves.
    pub client: (Sender, Receiver),
    /// The server's halves.
    pub server: (Sender, Receiver),
    /// The key of records the client sends (and the server receives).
    pub client_write: Key,
    /// The key of records the server sends (and the client receives).
    pub server_write: Key,
}

/// An engine over a handshake with a fixed nonce and clock, so that a run can be repeated byte
/// for byte.
pub fn engine(config: Config<'_>, nonce: [u8; 32], now: Option<u64>) -> Engine<'_> {
    // A fixed CPace scalar seed told apart by the nonce, never zero (bit 0 of byte 0 set: the
    // scalar's lowest bit), so no nonce makes `Cpace::new` refuse it.
    let mut seed = nonce.map(|b| b ^ 0xa5);
    seed[0] |= 1;
    Engine::from_handshake(Handshake::new(config, nonce, seed, now))
}

/// Runs a genuine key-file handshake in memory over the shared test pair (fixed nonces, so it
/// is deterministic) and returns both sides' halves. Both sides accept messages of up to
/// `max_message_len` bytes.
pub fn establish(max_message_len: usize) -> Established {
    let key = psk();
    let secret = Secret::PreSharedKey(&key);
    let config = |role| Config::new(role, secret).with_max_message_len(max_message_len);
    let client = engine(config(Role::Client), [1; 32], Some(1_700_000_000));
    let server = engine(config(Role::Server), [2; 32], Some(1_700_000_000));
    let outcome = Pair::new(client, server).finish();
    assert_eq!((outcome.client, outcome.server), (Ok(()), Ok(())));
    let (client_hello, _) = frames_in(&outcome.written_by(Side::Client));
    let (server_hello, _) = frames_in(&outcome.written_by(Side::Server));
    let hello = |frames: &[(FrameKind, Vec<u8>)]| {
        let (kind, body) = &frames[0];
        let mut bytes = vec![*kind as u8];
        bytes.extend_from_slice(&(body.len() as u32).to_be_bytes());
        bytes.extend_from_slice(body);
        bytes
    };
    let (client_write, server_write) =
        record_keys(&hello(&client_hello), &hello(&server_hello), &key);
    let (client, server) = outcome.halves();
    Established {
        client,
        server,
        client_write,
        server_write,
    }
}

/// The two record keys of a key-file session, computed here from the hello frames as
/// docs/PROTOCOL.md section 4 specifies (HKDF-SHA256 over the transcript hash and the
/// pre-shared key), so that a target can seal records with contents the genuine sender never
/// writes.
pub fn record_keys(client_hello: &[u8], server_hello: &[u8], psk: &Key) -> (Key, Key) {
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256};
    let hmac = |key: &[u8], parts: &[&[u8]]| -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    };
    let transcript: [u8; 32] = Sha256::new()
        .chain_update(client_hello)
        .chain_update(server_hello)
        .finalize()
        .into();
    let psk_bytes = base64ct::Base64Url::decode_vec(psk.to_text().as_str()).expect("a key");
    let prk = hmac(&transcript, &[&psk_bytes]);
    // One HKDF-Expand block: T(1) = HMAC(PRK, info || 0x01).
    let client_write = hmac(&prk, &[b"aeschat/1 client write key", &[1]]);
    let server_write = hmac(&prk, &[b"aeschat/1 server write key", &[1]]);
    (Key::from_bytes(client_write), Key::from_bytes(server_write))
}
