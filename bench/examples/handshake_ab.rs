//! Handshake timings for the protocol-2-versus-protocol-1 comparison in docs/PERFORMANCE.md
//! (section "Protocol 2 (issue 13)"). `bench/handshake_ab.sh` builds this file twice, once
//! against this branch's core and once against a copy of `main` (protocol 1, compiled with
//! `--cfg protocol1`, which enables the PBKDF2 iteration setting), and runs the two binaries
//! alternately. Each run prints one line per case, as JSON: the median, quartiles and count of
//! per-handshake wall times in nanoseconds.
//!
//! The handshake is moved by hand between two engines in one thread, and every `poll` and
//! `derive_keys` call is timed on its own, so the client's and the server's shares of the work
//! are reported apart (the copy of the few bytes a side transmits counts for that side: tens of
//! nanoseconds). Engine creation (nonce, and in protocol 2 the scalar seed from a deterministic
//! generator) counts for the side that creates it.
//!
//! ```text
//! cargo run --release --example handshake_ab -- password 1.0         # protocol 2
//! cargo rustc --release --example handshake_ab -- --cfg protocol1     # in a copy of main
//! ```
//!
//! Arguments: `password|key|wrong|stranger|pair` [seconds per case, default 1] [iterations
//! (protocol 1 only; default: the core's default, 600,000)].
//!
//! - `password`, `key`: a successful handshake in that mode; prints `total`, `client`,
//!   `server`.
//! - `wrong`: the client has a wrong password; the server's cost of one wrong guess (to its
//!   failure), and the client's.
//! - `stranger`: what a server spends on a ClientHello it answers with a ServerHello (a new
//!   engine, then the poll that writes the ServerHello): protocol 2's `Cpace::new`.
//! - `pair`: the shared test pair (`aeschat_testkit::Pair`), as `bench/benches/handshake.rs`
//!   measures `handshake/in-memory`, for continuity with the older figure.
#![allow(unexpected_cfgs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use aeschat_core::fernet::Key;
use aeschat_core::session::{Action, Config, Engine, Role, Secret};
use aeschat_testkit::{Pair, Side, TestRng};

const PASSWORD: &[u8] = b"correct horse battery staple";
const WRONG: &[u8] = b"correct horse battery stapler";
const SMALL: usize = 256;

/// One whole key derivation. Protocol 1 (main) sliced its PBKDF2: u32::MAX iterations per
/// call is more than any configured count, so one call completes.
#[cfg(protocol1)]
fn derive_keys(engine: &mut Engine<'_>) {
    let _ = black_box(engine.derive_keys(u32::MAX));
}

/// One whole key derivation: protocol 2's is one call.
#[cfg(not(protocol1))]
fn derive_keys(engine: &mut Engine<'_>) {
    engine.derive_keys();
    black_box(&engine);
}

/// Protocol 1 (main) takes an iteration count; protocol 2 has none.
#[cfg(protocol1)]
fn config(role: Role, secret: Secret<'_>, iterations: Option<u32>) -> Config<'_> {
    let config = Config::new(role, secret).with_max_message_len(SMALL);
    match iterations {
        Some(n) => config.with_insecure_iterations(n),
        None => config,
    }
}

#[cfg(not(protocol1))]
fn config(role: Role, secret: Secret<'_>, iterations: Option<u32>) -> Config<'_> {
    assert!(iterations.is_none(), "protocol 2 has no iteration count");
    Config::new(role, secret).with_max_message_len(SMALL)
}

/// One side of the hand-moved handshake.
struct Peer<'a> {
    engine: Engine<'a>,
    input: Vec<u8>,
    spent: Duration,
    done: Option<bool>,
}

impl<'a> Peer<'a> {
    fn new(config: Config<'a>, seed: u64) -> Self {
        let started = Instant::now();
        let engine = Engine::new(config, &mut TestRng::new(seed), None);
        Peer {
            engine,
            input: Vec::with_capacity(256),
            spent: started.elapsed(),
            done: None,
        }
    }

    /// Polls until this side needs input or is done; whatever it transmits goes to `other`.
    fn run(&mut self, other: &mut Vec<u8>) {
        while self.done.is_none() {
            let started = Instant::now();
            let step = self.engine.poll(&mut self.input);
            let discard = step.discard;
            let mut derive = false;
            let mut wait = false;
            match step.action {
                Action::Transmit(bytes) => other.extend_from_slice(bytes),
                Action::DeriveKeys => derive = true,
                Action::NeedInput => wait = true,
                Action::Established => self.done = Some(true),
                Action::Failed(_) => self.done = Some(false),
                other => panic!("unexpected during the handshake: {other:?}"),
            }
            self.input.drain(..discard);
            if derive {
                derive_keys(&mut self.engine);
            }
            self.spent += started.elapsed();
            if wait {
                return;
            }
        }
    }
}

/// One handshake; returns (client time, server time, both succeeded).
fn handshake(client: Config<'_>, server: Config<'_>, seed: u64) -> (Duration, Duration, bool) {
    let mut client = Peer::new(client, seed);
    let mut server = Peer::new(server, !seed);
    for _ in 0..16 {
        client.run(&mut server.input);
        server.run(&mut client.input);
        if client.done.is_some() && server.done.is_some() {
            break;
        }
        // A failed server's alert still has to reach the client.
        if server.done == Some(false) {
            client.run(&mut server.input);
            break;
        }
    }
    let ok = client.done == Some(true) && server.done == Some(true);
    (client.spent, server.spent, ok)
}

fn quantiles(mut samples: Vec<u64>) -> (u64, u64, u64, usize) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.25), at(0.75), samples.len())
}

fn report(case: &str, part: &str, samples: Vec<u64>) {
    let (median, q1, q3, n) = quantiles(samples);
    println!(
        "{{\"protocol\": {}, \"case\": \"{case}\", \"part\": \"{part}\", \"median_ns\": {median}, \
         \"q1_ns\": {q1}, \"q3_ns\": {q3}, \"n\": {n}}}",
        if cfg!(protocol1) { 1 } else { 2 }
    );
}

/// Runs `f` repeatedly for about `seconds` (at least 5 times, after 2 warm-up runs).
fn repeat(seconds: f64, mut f: impl FnMut(u64)) {
    f(0);
    f(1);
    let started = Instant::now();
    let mut round = 2u64;
    while round < 7 || started.elapsed().as_secs_f64() < seconds {
        f(round);
        round += 1;
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: handshake_ab password|key|wrong|stranger|pair [SECONDS] [ITERATIONS]";
    let case = args.get(1).expect(usage).as_str();
    let seconds: f64 = args.get(2).map_or(1.0, |s| s.parse().expect(usage));
    let iterations: Option<u32> = args.get(3).map(|s| s.parse().expect(usage));
    let key = Key::from_bytes([0x42; 32]);
    let label = match iterations {
        Some(n) => format!("{case}, {n} iterations"),
        None => case.to_owned(),
    };

    match case {
        "password" | "key" | "wrong" => {
            let (client_secret, server_secret) = match case {
                "password" => (Secret::Password(PASSWORD), Secret::Password(PASSWORD)),
                "key" => (Secret::PreSharedKey(&key), Secret::PreSharedKey(&key)),
                _ => (Secret::Password(WRONG), Secret::Password(PASSWORD)),
            };
            let (mut total, mut client, mut server) = (Vec::new(), Vec::new(), Vec::new());
            repeat(seconds, |round| {
                let (c, s, ok) = handshake(
                    config(Role::Client, client_secret, iterations),
                    config(Role::Server, server_secret, iterations),
                    round,
                );
                assert_eq!(ok, case != "wrong", "{case}: the handshake's outcome");
                total.push((c + s).as_nanos() as u64);
                client.push(c.as_nanos() as u64);
                server.push(s.as_nanos() as u64);
            });
            report(&label, "total", total);
            report(&label, "client", client);
            report(&label, "server", server);
        }
        "stranger" => {
            // The stranger's ClientHello, once: the server's cost is what is measured.
            let mut stranger = Engine::new(
                config(Role::Client, Secret::Password(WRONG), iterations),
                &mut TestRng::new(7),
                None,
            );
            let hello = match stranger.poll(&mut []).action {
                Action::Transmit(bytes) => bytes.to_vec(),
                other => panic!("the client's first action: {other:?}"),
            };
            let mut samples = Vec::new();
            repeat(seconds, |round| {
                let mut input = hello.clone();
                let started = Instant::now();
                let mut server = Engine::new(
                    config(Role::Server, Secret::Password(PASSWORD), iterations),
                    &mut TestRng::new(round),
                    None,
                );
                let mut answered = 0;
                loop {
                    let step = server.poll(&mut input);
                    let discard = step.discard;
                    match step.action {
                        Action::Transmit(bytes) => answered = black_box(bytes.len()),
                        Action::NeedInput => break,
                        other => panic!("the server: {other:?}"),
                    }
                    input.drain(..discard);
                }
                samples.push(started.elapsed().as_nanos() as u64);
                assert!(answered > 0, "the server answered with a ServerHello");
            });
            report(&label, "server", samples);
        }
        "pair" => {
            let mut samples = Vec::new();
            repeat(seconds, |round| {
                let started = Instant::now();
                let mut pair = Pair::from_configs(
                    config(Role::Client, Secret::Password(PASSWORD), iterations),
                    config(Role::Server, Secret::Password(PASSWORD), iterations),
                    round,
                );
                pair.run();
                assert_eq!(pair.result(Side::Client), Some(Ok(())));
                assert_eq!(pair.result(Side::Server), Some(Ok(())));
                samples.push(started.elapsed().as_nanos() as u64);
            });
            report(&label, "total", samples);
        }
        _ => panic!("{usage}"),
    }
}
