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
use aeschat_testkit::{Pair, Replay, Side};
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
    let seed = scalar_seed(nonce, config.role());
    Engine::from_handshake(Handshake::new(config, nonce, seed, now))
}

/// The CPace scalar seed [`engine`] gives a side with `nonce` in `role`: fixed, and told apart
/// by the nonce and by the role, so that two sides with equal nonces (a fuzzed nonce can be the
/// genuine peer's) still draw different scalars (else each would see its own share come back,
/// and refuse it as reflected). Never zero (bit 0 of byte 0 set: the scalar's lowest bit), so
/// no nonce makes `Cpace::new` refuse it.
pub fn scalar_seed(nonce: [u8; 32], role: Role) -> [u8; 32] {
    let mut seed = nonce.map(|b| b ^ 0xa5);
    seed[0] |= 1;
    if role == Role::Server {
        seed[1] ^= 0xff;
    }
    seed
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
    let (from_client, _) = frames_in(&outcome.written_by(Side::Client));
    let (from_server, _) = frames_in(&outcome.written_by(Side::Server));
    let frame = |(kind, body): &(FrameKind, Vec<u8>)| {
        let mut bytes = vec![*kind as u8];
        bytes.extend_from_slice(&(body.len() as u32).to_be_bytes());
        bytes.extend_from_slice(body);
        bytes
    };
    // The client writes ClientHello, ClientShare, ClientFinished; the server ServerHello first.
    assert_eq!(from_client[1].0, FrameKind::ClientShare);
    let (client_write, server_write) = record_keys(
        &frame(&from_client[0]),
        &frame(&from_server[0]),
        &frame(&from_client[1]),
        &key,
        scalar_seed([1; 32], Role::Client),
    );
    let (client, server) = outcome.halves();
    Established {
        client,
        server,
        client_write,
        server_write,
    }
}

/// The two record keys of a key-file session, computed here as docs/PROTOCOL.md §4.1 and §4.3 specifies
/// (HKDF-SHA256 over the transcript hash of ClientHello, ServerHello and ClientShare, and
/// CPace's ISK), so that a target can seal records with contents the genuine sender never
/// writes. The transcript and HKDF are this crate's own (the previous RustCrypto generation);
/// the ISK comes from the core's CPace, run again as the client with its scalar seed
/// (`client_seed`), the key's 32 bytes as PRS and the nonces from the hellos.
pub fn record_keys(
    client_hello: &[u8],
    server_hello: &[u8],
    client_share: &[u8],
    psk: &Key,
    client_seed: [u8; 32],
) -> (Key, Key) {
    use aeschat_core::cpace::{self, lv_cat, Cpace};
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256};
    let hmac = |key: &[u8], parts: &[&[u8]]| -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    };
    let psk_bytes = base64ct::Base64Url::decode_vec(psk.to_text().as_str()).expect("a key");
    // Hello frames: a 5-byte header, then magic (7), version, mode, the 32-byte nonce; a
    // ServerHello ends with the server's 32-byte share.
    let nonce = |hello: &[u8]| hello[14..46].to_vec();
    let sid = [nonce(client_hello), nonce(server_hello)].concat();
    let server_share: [u8; 32] = server_hello[server_hello.len() - 32..].try_into().unwrap();
    // CI = lv_cat("aeschat/2", mode, "server", "client"); key-file mode is 2.
    let mut ci = [0u8; 64];
    let ci = lv_cat(&[b"aeschat/2", &[2], b"server", b"client"], &mut ci).expect("fits");
    let client = Cpace::new(
        cpace::Role::Responder,
        &psk_bytes,
        ci,
        &sid,
        &mut Replay::new(client_seed),
    )
    .expect("a valid seed");
    assert_eq!(
        &client.share()[..],
        &client_share[5..],
        "the recorded ClientShare"
    );
    let isk = client
        .finish(b"", &server_share, b"")
        .expect("the genuine share");
    let transcript: [u8; 32] = Sha256::new()
        .chain_update(client_hello)
        .chain_update(server_hello)
        .chain_update(client_share)
        .finalize()
        .into();
    let prk = hmac(&transcript, &[isk.as_bytes()]);
    // One HKDF-Expand block: T(1) = HMAC(PRK, info || 0x01).
    let client_write = hmac(&prk, &[b"aeschat/2 client write key", &[1]]);
    let server_write = hmac(&prk, &[b"aeschat/2 server write key", &[1]]);
    (Key::from_bytes(client_write), Key::from_bytes(server_write))
}
