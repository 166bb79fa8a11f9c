//! Fernet tokens, aeschat against the `fernet` crate (RustCrypto backend), on the same key and
//! plaintexts, as an application calls each: a fresh random IV and the clock read per token,
//! and for decryption the clock read and the "not from the future" check that `fernet` makes.
//! aeschat writes into a reused buffer (its API); `fernet` allocates (its API). Times are the
//! benchmarking thread's CPU time ([`ThreadCpuTime`]), so other processes on a shared machine
//! distort the ratios less.
//!
//! `aeschat-prepared` is the same with a [`PreparedKey`] (key schedules computed once), which the
//! `fernet` crate has no equivalent of. `base64` measures the `base64` crate (the one `fernet`
//! uses) on the token's bytes, and `iv+clock` the system calls every encryption makes, for the
//! report's ceiling and overhead columns.

use std::hint::black_box;
use std::time::Duration;

use aeschat_bench::{key, now, plaintext, size_label, ThreadCpuTime, KEY_TEXT, SIZES};
use aeschat_core::{decrypt, decrypt_buffer_len, encrypt, token_len, Iv, PreparedKey, TimePolicy};
use base64::Engine;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn tokens(c: &mut Criterion<ThreadCpuTime>) {
    let key = key();
    let prepared = PreparedKey::new(&key);
    let engine = base64::engine::general_purpose::URL_SAFE;
    let peer = fernet::Fernet::new(KEY_TEXT).expect("the key is valid");
    for len in SIZES {
        let input = plaintext(len);
        let mut out = vec![0u8; token_len(len)];
        let token = encrypt(&key, &input, now(), &Iv::random().unwrap(), &mut out)
            .unwrap()
            .to_owned();
        assert_eq!(peer.decrypt(&token).unwrap(), input, "fernet reads aeschat");
        let mut plain = vec![0u8; decrypt_buffer_len(token.len())];

        let mut group = c.benchmark_group(format!("encrypt/{}", size_label(len)));
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(BenchmarkId::from_parameter("aeschat"), |b| {
            b.iter(|| {
                let iv = Iv::random().unwrap();
                encrypt(&key, black_box(&input), now(), &iv, &mut out)
                    .unwrap()
                    .len()
            })
        });
        group.bench_function(BenchmarkId::from_parameter("fernet"), |b| {
            b.iter(|| peer.encrypt(black_box(&input)))
        });
        group.bench_function(BenchmarkId::from_parameter("aeschat-prepared"), |b| {
            b.iter(|| {
                let iv = Iv::random().unwrap();
                prepared
                    .encrypt(black_box(&input), now(), &iv, &mut out)
                    .unwrap()
                    .len()
            })
        });
        let raw = engine.decode(&token).unwrap();
        let mut text = vec![0u8; token.len()];
        group.bench_function(BenchmarkId::from_parameter("base64"), |b| {
            b.iter(|| engine.encode_slice(black_box(&raw), &mut text).unwrap())
        });
        group.finish();

        let mut group = c.benchmark_group(format!("decrypt/{}", size_label(len)));
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(BenchmarkId::from_parameter("aeschat"), |b| {
            b.iter(|| {
                let policy = TimePolicy::MaxAge {
                    ttl: u64::MAX,
                    now: now(),
                };
                decrypt(&key, black_box(token.as_bytes()), policy, &mut plain)
                    .unwrap()
                    .len()
            })
        });
        group.bench_function(BenchmarkId::from_parameter("fernet"), |b| {
            b.iter(|| peer.decrypt(black_box(&token)).unwrap())
        });
        group.bench_function(BenchmarkId::from_parameter("aeschat-prepared"), |b| {
            b.iter(|| {
                let policy = TimePolicy::MaxAge {
                    ttl: u64::MAX,
                    now: now(),
                };
                prepared
                    .decrypt(black_box(token.as_bytes()), policy, &mut plain)
                    .unwrap()
                    .len()
            })
        });
        let mut raw = vec![0u8; token.len()];
        group.bench_function(BenchmarkId::from_parameter("base64"), |b| {
            b.iter(|| engine.decode_slice(black_box(&token), &mut raw).unwrap())
        });
        group.finish();
    }
}

/// What every encryption pays outside the token code: 16 random bytes and the clock.
fn system_calls(c: &mut Criterion<ThreadCpuTime>) {
    c.bench_function("overhead/iv+clock", |b| {
        b.iter(|| (Iv::random().unwrap(), now()))
    });
}

fn config() -> Criterion<ThreadCpuTime> {
    let seconds = |name, default| {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    Criterion::default()
        .with_measurement(ThreadCpuTime::default())
        .warm_up_time(Duration::from_secs_f64(seconds("BENCH_WARMUP", 0.5)))
        .measurement_time(Duration::from_secs_f64(seconds("BENCH_SECONDS", 2.0)))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = tokens, system_calls
}
criterion_main!(benches);
