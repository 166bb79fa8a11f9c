//! Shared pieces of the aeschat fuzz targets: byte mutations of genuine messages, a genuine
//! handshake peer that runs in lockstep with the side under test, an in-process session, and an
//! independent Fernet as the oracle of differential checks.
//!
//! The targets panic (via `assert!`) only when the core breaks one of its promises; any panic
//! inside the core itself is a bug too, since the core must never panic on any input.

pub mod handshake;
pub mod reference;

use aeschat_core::{
    Config, Error, Frame, FrameKind, FrameReader, Handshake, HandshakeState, Key, Role, Secret,
    Session, HANDSHAKE_FRAME_LEN,
};
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

/// A frame kind from any byte: every byte names one of the six kinds, so the fuzzer wastes no
/// inputs on kinds that the frame reader would refuse before the handshake sees them.
pub fn kind_from_byte(byte: u8) -> FrameKind {
    match byte % 6 {
        0 => FrameKind::ClientHello,
        1 => FrameKind::ServerHello,
        2 => FrameKind::ClientFinished,
        3 => FrameKind::ServerFinished,
        4 => FrameKind::Record,
        _ => FrameKind::Alert,
    }
}

/// The first frame in `bytes`, parsed by a real frame reader of capacity `N`, as an owned
/// kind and body; `None` when the bytes hold no complete frame or the reader refuses them.
pub fn first_frame<const N: usize>(bytes: &[u8]) -> Option<(FrameKind, Vec<u8>)> {
    let mut reader = FrameReader::<N>::new();
    reader.push(bytes).ok()?;
    let frame = reader.frame()?;
    Some((frame.kind, frame.body.to_vec()))
}

/// Passes one handshake frame to `to`, parsing it with a real frame reader as a driver would.
pub fn deliver(to: &mut Handshake<'_>, bytes: &[u8]) -> Result<(), Error> {
    let mut reader = FrameReader::<HANDSHAKE_FRAME_LEN>::new();
    reader.push(bytes)?;
    let frame = reader.frame().ok_or(Error::HandshakeInterrupted)?;
    to.read_message(frame)
}

/// A genuine session pair from [`establish`], with the record keys recomputed independently.
pub struct Established {
    pub client: Session,
    pub server: Session,
    /// The key of records the client sends (and the server receives).
    pub client_write: Key,
    /// The key of records the server sends (and the client receives).
    pub server_write: Key,
}

/// Runs a genuine key-file handshake in-process (fixed nonces, so it is deterministic) and
/// returns both sessions. Both sides accept messages of up to `max_message_len` bytes.
pub fn establish(max_message_len: usize) -> Established {
    let key = psk();
    let secret = Secret::PreSharedKey(&key);
    let mut client = Handshake::new(
        Config::new(Role::Client, secret).with_max_message_len(max_message_len),
        [1; 32],
        1_700_000_000,
    );
    let mut server = Handshake::new(
        Config::new(Role::Server, secret).with_max_message_len(max_message_len),
        [2; 32],
        1_700_000_000,
    );
    let mut wire = [0u8; HANDSHAKE_FRAME_LEN];
    let mut hellos = Vec::new();
    let steps = [Role::Client, Role::Server];
    while client.state() != HandshakeState::Established
        || server.state() != HandshakeState::Established
    {
        for role in steps {
            let (from, to) = match role {
                Role::Client => (&mut client, &mut server),
                Role::Server => (&mut server, &mut client),
            };
            match from.state() {
                HandshakeState::SendHello | HandshakeState::SendFinished => {
                    let hello = from.state() == HandshakeState::SendHello;
                    let message = from.write_message(&mut wire).expect("genuine write");
                    if hello {
                        hellos.push(message.to_vec());
                    }
                    deliver(to, message).expect("genuine read");
                }
                HandshakeState::DeriveKeys => from.derive_keys().expect("genuine derive"),
                _ => {}
            }
        }
    }
    let (client_write, server_write) = record_keys(&hellos[0], &hellos[1], &key);
    Established {
        client: client.into_session().expect("client established"),
        server: server.into_session().expect("server established"),
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

/// Opens an owned frame with `open`, lending it a mutable body as a frame reader would.
pub fn with_frame<R>(kind: FrameKind, body: &[u8], open: impl FnOnce(Frame<'_>) -> R) -> R {
    let mut body = body.to_vec();
    open(Frame {
        kind,
        body: &mut body,
    })
}
