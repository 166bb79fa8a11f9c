//! The handshake and its key derivation.
//!
//! - `handshake/threads`: a full handshake between two threads, each running the core's blocking
//!   driver over an in-memory pipe, at 1 PBKDF2 iteration (the protocol's own cost: hellos, HKDF,
//!   key confirmation, thread start-up) and at the default 600,000.
//! - `pbkdf2/600000`: the key stretching alone. `aeschat` is [`Handshake::derive_keys`] (PBKDF2-
//!   HMAC-SHA256 and the HKDF after it), reached through the public API; `pbkdf2-crate` calls the
//!   `pbkdf2` crate directly with the same inputs. OpenSSL's figure comes from `peers.py`.
//! - `session/records`: 256-byte messages sealed, sent, received and opened between two threads.

use std::hint::black_box;
use std::time::Duration;

use aeschat_bench::{connection, now};
use aeschat_core::{
    frame_capacity, handshake, receive, record_frame_len, send_text, Config, FrameReader,
    Handshake, HandshakeState, Incoming, Iv, Role, Secret, DEFAULT_ITERATIONS, HANDSHAKE_FRAME_LEN,
};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

const PASSWORD: &[u8] = b"correct horse battery staple";
/// The longest message of the sessions set up here.
const SMALL: usize = 256;

/// One handshake between two threads; returns both sessions' clock offsets to keep them alive.
fn handshake_pair(iterations: u32, round: u8) -> (Option<i64>, Option<i64>) {
    let ((client_read, client_write), (server_read, server_write)) = connection();
    let config = |role| {
        Config::new(role, Secret::Password(PASSWORD))
            .with_insecure_iterations(iterations)
            .with_max_message_len(SMALL)
    };
    std::thread::scope(|scope| {
        let server = scope.spawn(move || {
            let (mut reader, mut writer) = (server_read, server_write);
            let mut frames = FrameReader::<{ frame_capacity(SMALL) }>::new();
            let start = Handshake::new(config(Role::Server), [round; 32], now());
            handshake(&mut reader, &mut writer, &mut frames, start)
                .expect("the server side completes")
                .peer_clock_offset()
        });
        let (mut reader, mut writer) = (client_read, client_write);
        let mut frames = FrameReader::<{ frame_capacity(SMALL) }>::new();
        let start = Handshake::new(config(Role::Client), [!round; 32], now());
        let client = handshake(&mut reader, &mut writer, &mut frames, start)
            .expect("the client side completes")
            .peer_clock_offset();
        (client, server.join().expect("the server thread ends"))
    })
}

fn handshakes(c: &mut Criterion) {
    let mut group = c.benchmark_group("handshake/threads");
    group.sample_size(10);
    let mut round = 0u8;
    group.bench_function("1 iteration", |b| {
        b.iter(|| {
            round = round.wrapping_add(1);
            handshake_pair(1, round)
        })
    });
    group.bench_function("600000 iterations", |b| {
        b.iter(|| {
            round = round.wrapping_add(1);
            handshake_pair(DEFAULT_ITERATIONS, round)
        })
    });
    group.finish();
}

/// A client handshake that has exchanged hellos with a server and waits to derive its keys.
fn ready_to_derive(config: Config<'_>) -> Handshake<'_> {
    let server_config = Config::new(Role::Server, Secret::Password(PASSWORD));
    let mut client = Handshake::new(config, [1; 32], 0);
    let mut server = Handshake::new(server_config, [2; 32], 0);
    let mut wire = [0u8; HANDSHAKE_FRAME_LEN];
    let mut frames = FrameReader::<HANDSHAKE_FRAME_LEN>::new();
    let mut pass = |from: &mut Handshake, to: &mut Handshake| {
        let bytes = from.write_message(&mut wire).expect("a hello fits");
        frames.push(bytes).expect("a hello fits");
        to.read_message(frames.frame().expect("a whole hello"))
            .expect("the hello is accepted");
    };
    pass(&mut client, &mut server);
    pass(&mut server, &mut client);
    assert_eq!(client.state(), HandshakeState::DeriveKeys);
    client
}

fn pbkdf2(c: &mut Criterion) {
    let mut group = c.benchmark_group("pbkdf2/600000");
    group.sample_size(10);
    let config = Config::new(Role::Client, Secret::Password(PASSWORD));
    group.bench_function("aeschat", |b| {
        b.iter_batched(
            || ready_to_derive(config),
            |mut client| client.derive_keys().expect("keys derive"),
            BatchSize::PerIteration,
        )
    });
    let salt = [0x5a; 85]; // as long as the handshake's: a label and two nonces
    group.bench_function("pbkdf2-crate", |b| {
        b.iter(|| {
            let mut out = [0u8; 32];
            pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
                black_box(PASSWORD),
                &salt,
                DEFAULT_ITERATIONS,
                &mut out,
            );
            out
        })
    });
    group.finish();
}

/// 256-byte messages from one thread to another through an established session.
fn records(c: &mut Criterion) {
    const MESSAGE: usize = 256;
    const BATCH: u64 = 1000;
    let mut group = c.benchmark_group("session/records");
    group.sample_size(10);
    group.throughput(Throughput::Elements(BATCH));
    group.bench_function("256 B", |b| {
        b.iter_custom(|batches| {
            let ((client_read, client_write), (server_read, server_write)) = connection();
            let config = |role| {
                Config::new(role, Secret::Password(PASSWORD))
                    .with_insecure_iterations(1)
                    .with_max_message_len(MESSAGE)
            };
            let messages = batches * BATCH;
            std::thread::scope(|scope| {
                let receiver = scope.spawn(move || {
                    let (mut reader, mut writer) = (server_read, server_write);
                    let mut frames = FrameReader::<{ frame_capacity(MESSAGE) }>::new();
                    let start = Handshake::new(config(Role::Server), [3; 32], now());
                    let session = handshake(&mut reader, &mut writer, &mut frames, start)
                        .expect("the server side completes");
                    let (_, mut receiver) = session.split();
                    let started = std::time::Instant::now();
                    for _ in 0..messages {
                        let incoming = receive(&mut receiver, &mut reader, &mut frames)
                            .expect("a record arrives");
                        assert!(matches!(incoming, Incoming::Text(text) if text.len() == MESSAGE));
                    }
                    started
                });
                let (mut reader, mut writer) = (client_read, client_write);
                let mut frames = FrameReader::<{ frame_capacity(MESSAGE) }>::new();
                let start = Handshake::new(config(Role::Client), [4; 32], now());
                let session = handshake(&mut reader, &mut writer, &mut frames, start)
                    .expect("the client side completes");
                let (mut sender, _) = session.split();
                let mut out = [0u8; record_frame_len(MESSAGE)];
                let text = [b'x'; MESSAGE];
                for _ in 0..messages {
                    let iv = Iv::random().expect("randomness");
                    send_text(&mut sender, &mut writer, &text, now(), &iv, &mut out)
                        .expect("the record is sent");
                }
                let started = receiver.join().expect("the receiver ends");
                started.elapsed()
            })
        })
    });
    group.finish();
}

fn config() -> Criterion {
    let seconds = |name, default| {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    Criterion::default()
        .warm_up_time(Duration::from_secs_f64(seconds("BENCH_WARMUP", 0.5)))
        .measurement_time(Duration::from_secs_f64(seconds("BENCH_SECONDS", 2.0)))
}

criterion_group! {
    name = benches;
    config = config();
    targets = handshakes, pbkdf2, records
}
criterion_main!(benches);
