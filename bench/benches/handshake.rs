//! The handshake and its key derivation.
//!
//! - `handshake/in-memory`: a full password handshake between two engines in one thread, moved
//!   by the shared test pair (`aeschat_testkit::Pair`): the protocol's own cost (hellos, both
//!   sides' CPace, HKDF, key confirmation) and nothing else.
//! - `handshake/threads`: the same between two threads, each running the core's blocking driver
//!   over an in-memory pipe (the protocol's cost and thread start-up).
//! - `derive_keys/client`: one side's key derivation alone, [`Engine::derive_keys`] (CPace's
//!   second half and HKDF) reached through the public API: what a server's admission gate
//!   decides about.
//! - `session/records`: 256-byte messages sealed, sent, received and opened between two threads
//!   (IVs from an `IvPool`, as the chat draws them).

use std::hint::black_box;
use std::time::Duration;

use aeschat_bench::{connection, now};
use aeschat_core::fernet::IvPool;
use aeschat_core::session::{
    handshake, receive, record_frame_len, send_text, Action, Config, Engine, Inbox, Incoming, Role,
    Secret,
};
use aeschat_testkit::{Pair, Side, TestRng};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

const PASSWORD: &[u8] = b"correct horse battery staple";
/// The longest message of the sessions set up here.
const SMALL: usize = 256;

/// One handshake between two engines in one thread, moved by the shared test pair.
fn handshake_in_memory(round: u64) -> (Option<i64>, Option<i64>) {
    let config = |role| Config::new(role, Secret::Password(PASSWORD)).with_max_message_len(SMALL);
    let mut pair = Pair::from_configs(config(Role::Client), config(Role::Server), round);
    pair.run();
    assert_eq!(
        pair.result(Side::Client),
        Some(Ok(())),
        "the client completes"
    );
    assert_eq!(
        pair.result(Side::Server),
        Some(Ok(())),
        "the server completes"
    );
    (
        pair.engine(Side::Client).peer_clock_offset(),
        pair.engine(Side::Server).peer_clock_offset(),
    )
}

/// A fresh engine whose nonce comes from a generator seeded with `seed` (benchmarks only: the
/// nonce is predictable).
fn engine(config: Config<'_>, seed: u64, now: Option<u64>) -> Engine<'_> {
    Engine::new(config, &mut TestRng::new(seed), now)
}

/// One handshake between two threads; returns both sessions' clock offsets to keep them alive.
fn handshake_pair(round: u64) -> (Option<i64>, Option<i64>) {
    let ((client_read, client_write), (server_read, server_write)) = connection();
    let config = |role| Config::new(role, Secret::Password(PASSWORD)).with_max_message_len(SMALL);
    std::thread::scope(|scope| {
        let server = scope.spawn(move || {
            let (mut reader, mut writer) = (server_read, server_write);
            let mut server = engine(config(Role::Server), round, Some(now()));
            let mut inbox = Inbox::new(vec![0u8; server.input_capacity()]);
            handshake(&mut reader, &mut writer, &mut inbox, &mut server)
                .expect("the server side completes");
            server.peer_clock_offset()
        });
        let (mut reader, mut writer) = (client_read, client_write);
        let mut client = engine(config(Role::Client), !round, Some(now()));
        let mut inbox = Inbox::new(vec![0u8; client.input_capacity()]);
        handshake(&mut reader, &mut writer, &mut inbox, &mut client)
            .expect("the client side completes");
        let client = client.peer_clock_offset();
        (client, server.join().expect("the server thread ends"))
    })
}

fn handshakes(c: &mut Criterion) {
    let mut round = 0u64;
    let mut group = c.benchmark_group("handshake/in-memory");
    group.bench_function("password", |b| {
        b.iter(|| {
            round = round.wrapping_add(1);
            handshake_in_memory(round)
        })
    });
    group.finish();

    let mut group = c.benchmark_group("handshake/threads");
    group.sample_size(10);
    group.bench_function("password", |b| {
        b.iter(|| {
            round = round.wrapping_add(1);
            handshake_pair(round)
        })
    });
    group.finish();
}

/// A client engine that has exchanged hellos with a server and asks to derive its keys: a
/// minimal loop over `Engine::poll` that moves each side's bytes to the other.
fn ready_to_derive(config: Config<'_>) -> Engine<'_> {
    let server_config = Config::new(Role::Server, Secret::Password(PASSWORD));
    let mut client = engine(config, 1, None);
    let mut server = engine(server_config, 2, None);
    let (mut to_client, mut to_server) = (Vec::new(), Vec::new());
    loop {
        let step = client.poll(&mut to_client);
        match step.action {
            Action::DeriveKeys => return client,
            Action::Transmit(bytes) => to_server.extend_from_slice(bytes),
            Action::NeedInput => {}
            other => panic!("the client: {other:?}"),
        }
        let step = server.poll(&mut to_server);
        let discard = step.discard;
        match step.action {
            Action::Transmit(bytes) => to_client.extend_from_slice(bytes),
            Action::NeedInput => {}
            other => panic!("the server: {other:?}"),
        }
        to_server.drain(..discard);
    }
}

fn derive_keys(c: &mut Criterion) {
    let mut group = c.benchmark_group("derive_keys");
    let config = Config::new(Role::Client, Secret::Password(PASSWORD));
    group.bench_function("client", |b| {
        b.iter_batched(
            || ready_to_derive(config),
            |mut client| {
                client.derive_keys();
                black_box(client)
            },
            BatchSize::SmallInput,
        )
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
            let config =
                |role| Config::new(role, Secret::Password(PASSWORD)).with_max_message_len(MESSAGE);
            let messages = batches * BATCH;
            std::thread::scope(|scope| {
                let receiver = scope.spawn(move || {
                    let (mut reader, mut writer) = (server_read, server_write);
                    let mut server = engine(config(Role::Server), 3, Some(now()));
                    let mut inbox = Inbox::new(vec![0u8; server.input_capacity()]);
                    handshake(&mut reader, &mut writer, &mut inbox, &mut server)
                        .expect("the server side completes");
                    let (_, mut receiver) = server.split().expect("established");
                    let started = std::time::Instant::now();
                    for _ in 0..messages {
                        let incoming = receive(&mut receiver, &mut reader, &mut inbox)
                            .expect("a record arrives");
                        assert!(matches!(incoming, Incoming::Text(text) if text.len() == MESSAGE));
                    }
                    started
                });
                let (mut reader, mut writer) = (client_read, client_write);
                let mut client = engine(config(Role::Client), 4, Some(now()));
                let mut inbox = Inbox::new(vec![0u8; client.input_capacity()]);
                handshake(&mut reader, &mut writer, &mut inbox, &mut client)
                    .expect("the client side completes");
                let (mut sender, _) = client.split().expect("established");
                let mut out = [0u8; record_frame_len(MESSAGE)];
                let text = [b'x'; MESSAGE];
                let mut ivs = IvPool::<256>::new();
                for _ in 0..messages {
                    send_text(
                        &mut sender,
                        &mut writer,
                        &text,
                        &mut ivs,
                        Some(now()),
                        &mut out,
                    )
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
    targets = handshakes, derive_keys, records
}
criterion_main!(benches);
