//! Protocol 2 (docs/PROTOCOL.md) over the shared engine pair: both modes complete; a wrong
//! password fails once, on both sides; reflected, swapped, identity and invalid shares fail; a
//! version-1 hello is refused on both sides; and the recording property: from the wire and the
//! password, the keys come back only with an ephemeral scalar (an independent recomputation from
//! the document, which also pins the key schedule).

use aeschat_core::cpace::{self, lv_cat, transcript_ir, Cpace, DSI, ISK_LABEL, SHARE_LEN};
use aeschat_core::fernet::Key;
use aeschat_core::session::{Config, Engine, Error, HandshakeState, Role, Secret};
use aeschat_testkit::{Got, Pair, Replay, Side};
use sha2::{Digest, Sha256, Sha512};

const PASSWORD: &[u8] = b"hunter2";
const HEADER: usize = 5;
/// Body offset of the ServerHello's share (after the 53 bytes a ClientHello also has).
const SHARE_AT: usize = HEADER + 53;

fn password(role: Role) -> Config<'static> {
    Config::new(role, Secret::Password(PASSWORD))
}

/// A pair whose sides draw nonce and scalar seed from given bytes.
fn pair_from<'a>(
    client: Config<'a>,
    server: Config<'a>,
    client_random: [[u8; 32]; 2],
    server_random: [[u8; 32]; 2],
) -> Pair<'a> {
    let client = Engine::new(client, &mut Replay::new(client_random.concat()), None);
    let server = Engine::new(server, &mut Replay::new(server_random.concat()), None);
    Pair::new(client, server)
}

const C_NONCE: [u8; 32] = [0xC1; 32];
const S_NONCE: [u8; 32] = [0x5E; 32];
const C_SEED: [u8; 32] = [0x11; 32];
const S_SEED: [u8; 32] = [0x22; 32];

fn standard_pair(client: Config<'static>, server: Config<'static>) -> Pair<'static> {
    pair_from(client, server, [C_NONCE, C_SEED], [S_NONCE, S_SEED])
}

#[test]
fn both_modes_complete_and_carry_texts() {
    let key = Box::leak(Box::new(Key::from_bytes([7; 32])));
    let modes = [
        (password(Role::Client), password(Role::Server)),
        (
            Config::new(Role::Client, Secret::PreSharedKey(key)),
            Config::new(Role::Server, Secret::PreSharedKey(key)),
        ),
    ];
    for (seed, (client, server)) in modes.into_iter().enumerate() {
        let mut pair = Pair::from_configs(client, server, seed as u64 + 40);
        pair.run();
        assert_eq!(pair.result(Side::Client), Some(Ok(())));
        assert_eq!(pair.result(Side::Server), Some(Ok(())));
        pair.send_text(Side::Client, b"hello over protocol 2")
            .unwrap();
        pair.send_text(Side::Server, b"and back").unwrap();
        pair.run();
        assert_eq!(
            pair.take_received(Side::Server),
            [Got::Text(b"hello over protocol 2".to_vec())]
        );
        assert_eq!(
            pair.take_received(Side::Client),
            [Got::Text(b"and back".to_vec())]
        );
        // The wire: ClientHello 58, ServerHello 90, ClientShare ‖ ClientFinished 37 + 37,
        // ServerFinished 37.
        let lens: Vec<(Side, usize)> = pair
            .wire()
            .iter()
            .take(4)
            .map(|(s, b)| (*s, b.len()))
            .collect();
        assert_eq!(
            lens,
            [
                (Side::Client, 58),
                (Side::Server, 90),
                (Side::Client, 74),
                (Side::Server, 37)
            ]
        );
        let flight = &pair.wire()[2].1;
        assert_eq!(flight[..5], [7, 0, 0, 0, 32]);
        assert_eq!(flight[37..42], [3, 0, 0, 0, 32]);
    }
}

#[test]
fn the_state_sequences_are_the_documented_ones() {
    let mut pair = standard_pair(password(Role::Client), password(Role::Server));
    pair.run();
    use HandshakeState::*;
    assert_eq!(
        pair.states(Side::Client),
        [
            SendHello,
            AwaitHello,
            DeriveKeys,
            SendFinished,
            AwaitFinished,
            Established
        ]
    );
    // As seen between polls: the server takes the ServerHello's writing (SendHello) and the
    // client's two-frame flight (AwaitShare -> AwaitFinished) each within one poll.
    assert_eq!(
        pair.states(Side::Server),
        [
            AwaitHello,
            AwaitShare,
            DeriveKeys,
            SendFinished,
            Established
        ]
    );
    assert_eq!(pair.derivations(Side::Server), 1);
}

#[test]
fn a_wrong_password_fails_once_on_both_sides() {
    let client = Config::new(Role::Client, Secret::Password(b"hunter3"));
    let mut pair = standard_pair(client, password(Role::Server));
    pair.run();
    assert_eq!(
        pair.result(Side::Server),
        Some(Err(Error::AuthenticationFailed))
    );
    assert_eq!(
        pair.result(Side::Client),
        Some(Err(Error::AuthenticationFailed))
    );
    // One derivation on the server: one guess, counted once.
    assert_eq!(pair.derivations(Side::Server), 1);
}

#[test]
fn a_password_and_a_key_with_the_same_bytes_do_not_agree() {
    // Mode is in the hello (ModeMismatch) and in CI: here the hello check catches it first.
    let key = Box::leak(Box::new(Key::from_bytes([7; 32])));
    let mut pair = standard_pair(
        Config::new(Role::Client, Secret::Password(&[7; 32])),
        Config::new(Role::Server, Secret::PreSharedKey(key)),
    );
    pair.run();
    assert_eq!(pair.result(Side::Server), Some(Err(Error::ModeMismatch)));
}

/// A side's result, as `Pair::result` gives it.
type SideResult = Option<Result<(), Error>>;

/// Runs the standard pair with `middle`: both results and the server's derivations.
fn with_middle(middle: impl FnMut(Side, &mut Vec<u8>)) -> (SideResult, SideResult, usize) {
    let pair = standard_pair(password(Role::Client), password(Role::Server));
    let mut pair = pair.with_middle(middle);
    pair.run();
    (
        pair.result(Side::Client),
        pair.result(Side::Server),
        pair.derivations(Side::Server),
    )
}

#[test]
fn the_servers_share_reflected_to_it_is_refused_and_counts_no_guess() {
    let mut ya = [0u8; SHARE_LEN];
    let (client, server, _) = with_middle(|from, bytes| match (from, bytes.first()) {
        (Side::Server, Some(2)) => ya.copy_from_slice(&bytes[SHARE_AT..SHARE_AT + SHARE_LEN]),
        (Side::Client, Some(7)) => bytes[HEADER..HEADER + SHARE_LEN].copy_from_slice(&ya),
        _ => {}
    });
    assert_eq!(server, Some(Err(Error::UnexpectedMessage)));
    assert_eq!(client, Some(Err(Error::PeerAborted)));
}

#[test]
fn identity_and_invalid_shares_are_refused_on_both_sides() {
    let bad_shares: [[u8; 32]; 3] = [
        [0; 32],    // the identity
        [0xff; 32], // not canonical
        {
            let mut b = [0; 32];
            b[0] = 1; // an odd (negative) field element: not a canonical encoding
            b
        },
    ];
    for bad in bad_shares {
        // To the client, in the ServerHello.
        let (client, server, _) = with_middle(|from, bytes| {
            if from == Side::Server && bytes.first() == Some(&2) {
                bytes[SHARE_AT..SHARE_AT + SHARE_LEN].copy_from_slice(&bad);
            }
        });
        assert_eq!(client, Some(Err(Error::UnexpectedMessage)), "{bad:02x?}");
        assert_eq!(server, Some(Err(Error::PeerAborted)));
        // To the server, in the ClientShare: refused as malformed, not as a guess.
        let (client, server, _) = with_middle(|from, bytes| {
            if from == Side::Client && bytes.first() == Some(&7) {
                bytes[HEADER..HEADER + SHARE_LEN].copy_from_slice(&bad);
            }
        });
        assert_eq!(server, Some(Err(Error::UnexpectedMessage)), "{bad:02x?}");
        assert_eq!(client, Some(Err(Error::PeerAborted)));
    }
}

#[test]
fn a_share_from_another_session_fails() {
    // Record session A's ServerHello share; swap it into session B (other nonces, same password).
    let mut a = pair_from(
        password(Role::Client),
        password(Role::Server),
        [[1; 32], [2; 32]],
        [[3; 32], [4; 32]],
    );
    a.run();
    let ya_a: [u8; 32] = a.wire()[1].1[SHARE_AT..SHARE_AT + SHARE_LEN]
        .try_into()
        .unwrap();
    let (client, server, _) = with_middle(|from, bytes| {
        if from == Side::Server && bytes.first() == Some(&2) {
            bytes[SHARE_AT..SHARE_AT + SHARE_LEN].copy_from_slice(&ya_a);
        }
    });
    // A valid element, but for another generator (sid) and scalar: the keys differ.
    assert_eq!(server, Some(Err(Error::AuthenticationFailed)));
    assert_eq!(client, Some(Err(Error::AuthenticationFailed)));
}

#[test]
fn the_shares_swapped_in_order_fail() {
    // The client's share sent as if it were the server's is impossible on the wire (the client
    // computes its share after the ServerHello); the closest swap: the server receives its own
    // ServerHello share as the client's (reflection, above) or the client's share is replaced by
    // the share of a different client run with the same nonces (a fresh scalar).
    let mut other = pair_from(
        password(Role::Client),
        password(Role::Server),
        [C_NONCE, [0x33; 32]],
        [S_NONCE, S_SEED],
    );
    other.run();
    let yb_other: [u8; 32] = other.wire()[2].1[HEADER..HEADER + SHARE_LEN]
        .try_into()
        .unwrap();
    let (_, server, _) = with_middle(|from, bytes| {
        if from == Side::Client && bytes.first() == Some(&7) {
            bytes[HEADER..HEADER + SHARE_LEN].copy_from_slice(&yb_other);
        }
    });
    assert_eq!(server, Some(Err(Error::AuthenticationFailed)));
}

#[test]
fn a_version_1_hello_is_refused_on_both_sides() {
    // A version-1 ClientHello has version 1's layout at these offsets: the version byte is 12.
    let (client, server, derivations) = with_middle(|from, bytes| {
        if from == Side::Client && bytes.first() == Some(&1) {
            bytes[12] = 1;
        }
    });
    assert_eq!(server, Some(Err(Error::UnsupportedProtocol { version: 1 })));
    assert_eq!(client, Some(Err(Error::VersionRefused)));
    assert_eq!(derivations, 0);
    // And a version-1 ServerHello (57 bytes: iterations instead of a share).
    let (client, server, _) = with_middle(|from, bytes| {
        if from == Side::Server && bytes.first() == Some(&2) {
            bytes.truncate(HEADER + 57);
            bytes[1..5].copy_from_slice(&57u32.to_be_bytes());
            bytes[12] = 1;
            bytes[HEADER + 53..].copy_from_slice(&600_000u32.to_be_bytes());
        }
    });
    assert_eq!(client, Some(Err(Error::UnsupportedProtocol { version: 1 })));
    assert_eq!(server, Some(Err(Error::VersionRefused)));
    let message = Error::VersionRefused.to_string();
    assert!(message.contains("version"), "{message}");
}

// ---- The recording property, by an independent recomputation from PROTOCOL.md ----

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    for part in parts {
        inner.update(part);
    }
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

struct Recording {
    client_hello: Vec<u8>,
    server_hello: Vec<u8>,
    client_share_frame: Vec<u8>,
    client_finished: Vec<u8>,
}

impl Recording {
    fn of(pair: &Pair<'_>) -> Recording {
        let wire = pair.wire();
        Recording {
            client_hello: wire[0].1.clone(),
            server_hello: wire[1].1.clone(),
            client_share_frame: wire[2].1[..37].to_vec(),
            client_finished: wire[2].1[37..].to_vec(),
        }
    }
    fn sid(&self) -> Vec<u8> {
        [&self.client_hello[14..46], &self.server_hello[14..46]].concat()
    }
    fn ya(&self) -> [u8; 32] {
        self.server_hello[SHARE_AT..SHARE_AT + 32]
            .try_into()
            .unwrap()
    }
    fn yb(&self) -> [u8; 32] {
        self.client_share_frame[HEADER..].try_into().unwrap()
    }
    fn transcript_hash(&self) -> [u8; 32] {
        Sha256::new()
            .chain_update(&self.client_hello)
            .chain_update(&self.server_hello)
            .chain_update(&self.client_share_frame)
            .finalize()
            .into()
    }
    /// Does `ikm` (an ISK candidate) reproduce the recorded ClientFinished?
    fn confirms(&self, ikm: &[u8]) -> bool {
        let prk = hmac_sha256(&self.transcript_hash(), &[ikm]);
        let confirm = hmac_sha256(&prk, &[b"aeschat/2 client confirm key", &[1]]);
        hmac_sha256(&confirm, &[&self.transcript_hash()])[..] == self.client_finished[HEADER..]
    }
}

fn ci(mode: u8) -> Vec<u8> {
    let mut out = [0u8; 64];
    lv_cat(&[b"aeschat/2", &[mode], b"server", b"client"], &mut out)
        .unwrap()
        .to_vec()
}

/// The ISK as the draft defines it, from any candidate `K` (which needs a scalar for real).
fn isk_from(k: &[u8], rec: &Recording) -> [u8; 64] {
    let mut prefix = [0u8; 256];
    let prefix = lv_cat(&[&[DSI, ISK_LABEL].concat(), &rec.sid(), k], &mut prefix).unwrap();
    let mut tr = [0u8; 256];
    let tr = transcript_ir(&rec.ya(), b"", &rec.yb(), b"", &mut tr).unwrap();
    Sha512::new()
        .chain_update(prefix)
        .chain_update(tr)
        .finalize()
        .into()
}

#[test]
fn keys_come_back_from_a_recording_only_with_a_scalar() {
    let mut pair = standard_pair(password(Role::Client), password(Role::Server));
    pair.run();
    assert_eq!(pair.result(Side::Client), Some(Ok(())));
    let rec = Recording::of(&pair);

    // Positive control (the document is complete): with the client's scalar seed, CPace as
    // specified and the key schedule of PROTOCOL.md §4.1 and §4.3 reproduce the recorded ClientFinished.
    let run = Cpace::new(
        cpace::Role::Responder,
        PASSWORD,
        &ci(1),
        &rec.sid(),
        &mut Replay::new(C_SEED),
    )
    .unwrap();
    assert_eq!(
        run.share(),
        &rec.yb(),
        "the share from the documented inputs"
    );
    let isk = run.finish(b"", &rec.ya(), b"").unwrap();
    assert!(rec.confirms(isk.as_bytes()), "the documented key schedule");

    // An attacker with the wire and the right password but no scalar: every scalar-free
    // candidate for K fails, as does a guessed scalar and protocol 1's "password as master".
    let g = cpace::generator(PASSWORD, &ci(1), &rec.sid());
    for k in [&rec.ya()[..], &rec.yb()[..], &g[..], &[0u8; 32][..]] {
        assert!(!rec.confirms(&isk_from(k, &rec)));
    }
    assert!(!rec.confirms(PASSWORD));
    let guessed = Cpace::new(
        cpace::Role::Responder,
        PASSWORD,
        &ci(1),
        &rec.sid(),
        &mut Replay::new([0x12; 32]),
    )
    .unwrap()
    .finish(b"", &rec.ya(), b"")
    .unwrap();
    assert!(!rec.confirms(guessed.as_bytes()));
}

#[test]
fn same_nonces_different_scalars_give_different_keys() {
    let run = |c_seed: [u8; 32], s_seed: [u8; 32]| {
        let mut pair = pair_from(
            password(Role::Client),
            password(Role::Server),
            [C_NONCE, c_seed],
            [S_NONCE, s_seed],
        );
        pair.run();
        assert_eq!(pair.result(Side::Client), Some(Ok(())));
        // The pair's IV generators are fixed, so the same text sealed at the same (no) clock
        // differs only if the keys do.
        pair.send_text(Side::Client, b"same text").unwrap();
        let before = pair.wire().len();
        pair.run();
        let wire = pair.wire();
        (wire[..before].to_vec(), wire[before - 1].1.clone())
    };
    let (wire_a, record_a) = run(C_SEED, S_SEED);
    let (wire_b, record_b) = run([0x44; 32], [0x55; 32]);
    let (_, record_c) = run(C_SEED, S_SEED);
    assert_eq!(
        record_a, record_c,
        "same scalars: same keys (deterministic test)"
    );
    assert_ne!(
        record_a, record_b,
        "fresh scalars: other keys, same nonces and password"
    );
    assert_eq!(wire_a[0], wire_b[0], "the same ClientHello");
}

#[test]
fn a_pre_shared_key_recording_does_not_open_with_the_key() {
    let key = Box::leak(Box::new(Key::from_bytes([9; 32])));
    let key_bytes = [9u8; 32];
    let mut pair = standard_pair(
        Config::new(Role::Client, Secret::PreSharedKey(key)),
        Config::new(Role::Server, Secret::PreSharedKey(key)),
    );
    pair.run();
    let rec = Recording::of(&pair);
    assert!(
        !rec.confirms(&key_bytes),
        "protocol 1's schedule: the key as master"
    );
    let run = Cpace::new(
        cpace::Role::Responder,
        &key_bytes,
        &ci(2),
        &rec.sid(),
        &mut Replay::new(C_SEED),
    )
    .unwrap();
    let isk = run.finish(b"", &rec.ya(), b"").unwrap();
    assert!(
        rec.confirms(isk.as_bytes()),
        "with the scalar (positive control)"
    );
}

#[test]
fn the_server_gate_still_refuses_before_the_derivation() {
    let pair = standard_pair(password(Role::Client), password(Role::Server));
    let mut pair = pair.with_admission(|side| match side {
        Side::Server => Err(Error::RetryLater { seconds: 3 }),
        Side::Client => Ok(()),
    });
    pair.run();
    assert_eq!(
        pair.result(Side::Server),
        Some(Err(Error::RetryLater { seconds: 3 }))
    );
    assert_eq!(
        pair.result(Side::Client),
        Some(Err(Error::RetryLater { seconds: 3 }))
    );
}
