//! The pair's contract, which the tests, the fuzz targets and the benches rely on: it only moves
//! bytes (fragmentation, the middle, admission and hang-ups change delivery, never a rule).
#![allow(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "test bookkeeping, not attacker input"
)]

use aeschat_core::fernet::Key;
use aeschat_core::session::{Config, Engine, Error, HandshakeState, Role, Secret};
use aeschat_testkit::{Got, Pair, Replay, Side, TestRng};
use rand_core::Rng;

static KEY: Key = Key::from_bytes([9; 32]);

fn password(role: Role) -> Config<'static> {
    Config::new(role, Secret::Password(b"pair test"))
}

fn key_file(role: Role) -> Config<'static> {
    Config::new(role, Secret::PreSharedKey(&KEY))
}

#[test]
fn a_clean_handshake_and_texts_both_ways_in_any_fragmentation() {
    for fragment in [1, 2, 7, 64, usize::MAX] {
        let mut pair = Pair::from_configs(password(Role::Client), password(Role::Server), 3)
            .with_fragments(fragment);
        pair.run();
        assert_eq!(pair.result(Side::Client), Some(Ok(())), "{fragment}");
        assert_eq!(pair.result(Side::Server), Some(Ok(())), "{fragment}");
        assert_eq!(pair.derivations(Side::Client), 1);
        assert_eq!(pair.derivations(Side::Server), 1);
        pair.send_text(Side::Client, b"one").unwrap();
        pair.send_text(Side::Server, b"two").unwrap();
        pair.send_close(Side::Client).unwrap();
        pair.run();
        assert_eq!(
            pair.take_received(Side::Server),
            [Got::Text(b"one".to_vec()), Got::Closed]
        );
        assert_eq!(
            pair.take_received(Side::Client),
            [Got::Text(b"two".to_vec())]
        );
        // The client's peer hangs up without a close: a truncation; the server saw the close.
        assert_eq!(pair.hang_up(Side::Client), Err(Error::Truncated));
        let outcome = pair.finish();
        assert_eq!(outcome.client, Err(Error::Truncated));
        assert_eq!(outcome.server, Ok(()));
        // Four handshake frames, three records.
        assert_eq!(outcome.wire.len(), 7, "{fragment}");
    }
}

#[test]
fn a_middle_that_drops_everything_leaves_both_sides_interrupted() {
    let outcome = Pair::from_configs(key_file(Role::Client), key_file(Role::Server), 1)
        .with_middle(|_, bytes| bytes.clear())
        .finish();
    assert_eq!(outcome.client, Err(Error::HandshakeInterrupted));
    assert_eq!(outcome.server, Err(Error::HandshakeInterrupted));
    assert_eq!(
        outcome.wire.len(),
        1,
        "the ClientHello, recorded before it was dropped"
    );
    assert_eq!(
        outcome.client_states,
        [
            HandshakeState::SendHello,
            HandshakeState::AwaitHello,
            HandshakeState::Failed
        ]
    );
}

#[test]
fn a_refused_derivation_sends_the_engines_alert() {
    let mut asked = Vec::new();
    let outcome = Pair::from_configs(password(Role::Client), password(Role::Server), 2)
        .with_admission(|side| {
            asked.push(side);
            match side {
                Side::Client => Ok(()),
                Side::Server => Err(Error::RetryLater { seconds: 300 }),
            }
        })
        .finish();
    assert_eq!(asked, [Side::Client, Side::Server]);
    assert_eq!(outcome.server, Err(Error::RetryLater { seconds: 300 }));
    assert_eq!(outcome.client, Err(Error::RetryLater { seconds: 300 }));
    assert_eq!(
        outcome.wire.last(),
        Some(&(Side::Server, vec![6, 0, 0, 0, 3, 7, 1, 44]))
    );
}

#[test]
fn injected_bytes_reach_the_side_unrecorded_and_transmitted_ones_are_recorded() {
    let mut pair = Pair::from_configs(key_file(Role::Client), key_file(Role::Server), 5);
    pair.inject(Side::Server, b"GET / HTTP/1.1\r\n");
    pair.run();
    assert_eq!(pair.result(Side::Server), Some(Err(Error::NotAeschat)));
    let mut pair = Pair::from_configs(key_file(Role::Client), key_file(Role::Server), 5);
    pair.run();
    pair.transmit(Side::Client, &[6, 0, 0, 0, 1, 6]);
    pair.run();
    assert_eq!(
        pair.wire().last(),
        Some(&(Side::Client, vec![6, 0, 0, 0, 1, 6]))
    );
    // An alert inside the session is no record: the server's session ends.
    assert_eq!(
        pair.result(Side::Server),
        Some(Err(Error::UnexpectedMessage))
    );
}

#[test]
fn the_generators_are_deterministic_and_replay_is_exact() {
    let (mut a, mut b) = (TestRng::new(1), TestRng::new(1));
    let (mut x, mut y) = ([0u8; 37], [0u8; 37]);
    a.fill_bytes(&mut x);
    b.fill_bytes(&mut y);
    assert_eq!(x, y);
    assert_ne!(x, [0; 37]);
    let mut replay = Replay::new([1u8, 2, 3]);
    let mut out = [0u8; 3];
    replay.fill_bytes(&mut out);
    assert_eq!((out, replay.remaining()), ([1, 2, 3], 0));
    let drained = std::panic::catch_unwind(move || replay.fill_bytes(&mut [0u8; 1]));
    assert!(drained.is_err(), "a drained replay panics");
    // Two engines from the same seed make the same hello.
    let mut hellos = Vec::new();
    for _ in 0..2 {
        let engine = Engine::new(key_file(Role::Client), &mut TestRng::new(4), None);
        let mut pair = Pair::new(
            engine,
            Engine::new(key_file(Role::Server), &mut TestRng::new(5), None),
        );
        pair.run();
        hellos.push(pair.wire()[0].clone());
    }
    assert_eq!(hellos[0], hellos[1]);
}
