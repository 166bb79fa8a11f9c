//! Fernet tokens, aeschat against the `fernet` crate (RustCrypto backend), on the same key and
//! plaintexts, as an application calls each, **interleaved**: every size runs in rounds, and each
//! round times a batch of every implementation in turn (the order rotating from round to round),
//! so a change in the machine's load falls on all of them alike. Each figure is the median over
//! the rounds of a batch's time per token. Times are the benchmarking thread's CPU time
//! ([`thread_cpu_time`]), so other processes on a shared machine distort the ratios less.
//!
//! Per token, on both sides: a fresh random IV and a clock read (`SystemTime::now`) for
//! encryption, a clock read and the "not from the future" check for decryption. `fernet` draws
//! its IV inside `encrypt` (one `getrandom` call per token, which its API offers no way around);
//! aeschat takes it as an argument:
//!
//! - `aeschat`: the plain `Key` API (key schedules per token) with the IV from an [`IvPool`]
//!   (one `getrandom` call per 256 IVs, each IV fresh), as an application using the library's std
//!   path does;
//! - `aeschat-syscall-iv`: the same with one `getrandom` call per token ([`Iv::random`]), as
//!   `fernet` does internally;
//! - `aeschat-prepared`: with a [`PreparedKey`] (schedules computed once) and the pool;
//! - `base64`: the `base64` crate (the one `fernet` uses) on the token's bytes, and `iv+clock`
//!   the system calls of `aeschat-syscall-iv`, for the report's ceiling and overhead columns.
//!
//! aeschat writes into a reused buffer (its API); `fernet` allocates (its API), from an allocator
//! kept from returning memory to the kernel ([`steady_allocator`]). The results are
//! written where criterion writes its own (`$CRITERION_HOME/<group>/<name>/new/`), in the same
//! format, so `report.py` reads them with the handshake's. `BENCH_SECONDS` (default 2) is the
//! time per implementation and size, `BENCH_WARMUP` (default 0.5) the warm-up of each.

use std::hint::black_box;
use std::path::PathBuf;

use aeschat_bench::{key, now, plaintext, size_label, thread_cpu_time, KEY_TEXT, SIZES};
use aeschat_core::fernet::{
    decrypt, decrypt_buffer_len, encrypt, token_len, Iv, IvPool, PreparedKey, TimePolicy,
};
use base64::Engine;

/// Rounds per size: each implementation's figure is the median of this many batches.
const ROUNDS: usize = 31;

type Bench<'a> = (&'static str, Box<dyn FnMut() -> usize + 'a>);

fn seconds(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Time per call of `f` over `iterations` calls, in the thread's CPU time.
fn time(f: &mut dyn FnMut() -> usize, iterations: u64) -> f64 {
    let start = thread_cpu_time();
    for _ in 0..iterations {
        black_box(f());
    }
    (thread_cpu_time() - start).as_secs_f64() / iterations as f64
}

/// Runs the benchmarks of one group interleaved and records their medians.
fn interleaved(group: &str, benches: &mut [Bench<'_>]) {
    let warmup = seconds("BENCH_WARMUP", 0.5);
    let budget = seconds("BENCH_SECONDS", 2.0);
    // Warm-up, which also sizes the batches: each round gives each benchmark budget / ROUNDS.
    let batches: Vec<u64> = benches
        .iter_mut()
        .map(|(_, f)| {
            let mut iterations = 1u64;
            let mut spent = 0.0;
            let mut per_call = time(f, 1);
            while spent < warmup {
                per_call = time(f, iterations);
                spent += per_call * iterations as f64;
                iterations = (iterations * 2).min(1 << 24);
            }
            ((budget / ROUNDS as f64 / per_call) as u64).max(1)
        })
        .collect();
    let mut samples = vec![Vec::with_capacity(ROUNDS); benches.len()];
    for round in 0..ROUNDS {
        for k in 0..benches.len() {
            let i = (round + k) % benches.len();
            samples[i].push(time(&mut *benches[i].1, batches[i]));
        }
    }
    for ((name, _), mut times) in benches.iter().zip(samples) {
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        let (low, high) = (times[times.len() / 4], times[times.len() * 3 / 4]);
        eprintln!(
            "{group}/{name}: {:.3} µs (quartiles {:.3} to {:.3})",
            median * 1e6,
            low * 1e6,
            high * 1e6
        );
        record(&format!("{group}/{name}"), median);
    }
}

/// Writes a median where criterion keeps its results, in its format (what `report.py` reads).
fn record(full_id: &str, seconds: f64) {
    let home = std::env::var("CRITERION_HOME").unwrap_or_else(|_| "target/criterion".into());
    let dir = PathBuf::from(home)
        .join(full_id.replace([' ', '/', '+'], "_"))
        .join("new");
    std::fs::create_dir_all(&dir).expect("the results folder can be made");
    let ns = seconds * 1e9;
    std::fs::write(
        dir.join("benchmark.json"),
        format!("{{\"full_id\":\"{full_id}\",\"interleaved\":true}}"),
    )
    .expect("the results can be written");
    std::fs::write(
        dir.join("estimates.json"),
        format!("{{\"median\":{{\"point_estimate\":{ns}}}}}"),
    )
    .expect("the results can be written");
}

/// The allocator at its best for `fernet`, which allocates three or four buffers per token: glibc
/// returns freed memory at the top of the heap to the kernel once it exceeds its trim threshold,
/// and serves large blocks with `mmap`, so a token of 64 KiB or more could pay a page fault per
/// 4 KiB touched on every call, depending on the process's history (criterion's own allocations
/// moved those thresholds; this harness does not). Raising both thresholds keeps freed memory in
/// the heap, so `fernet`'s allocations cost what they cost in a warmed-up application.
fn steady_allocator() {
    // SAFETY: mallopt only sets allocator parameters; no other thread exists yet.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
    }
}

fn main() {
    steady_allocator();
    let filter = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let key = key();
    let prepared = PreparedKey::new(&key);
    let engine = base64::engine::general_purpose::URL_SAFE;
    let peer = fernet::Fernet::new(KEY_TEXT).expect("the key is valid");
    let ivs = std::cell::RefCell::new(IvPool::<256>::new());
    for len in SIZES {
        let input = plaintext(len);
        let out = std::cell::RefCell::new(vec![0u8; token_len(len)]);
        let token = encrypt(
            &key,
            &input,
            now(),
            &Iv::random().unwrap(),
            &mut out.borrow_mut(),
        )
        .unwrap()
        .to_owned();
        assert_eq!(peer.decrypt(&token).unwrap(), input, "fernet reads aeschat");
        let plain = std::cell::RefCell::new(vec![0u8; decrypt_buffer_len(token.len())]);
        let raw = engine.decode(&token).unwrap();
        let text = std::cell::RefCell::new(vec![0u8; token.len()]);
        let raw_out = std::cell::RefCell::new(vec![0u8; token.len()]);
        let policy = || TimePolicy::MaxAge {
            ttl: u64::MAX,
            now: now(),
        };

        let group = format!("encrypt/{}", size_label(len));
        if filter.as_ref().is_none_or(|f| group.contains(f.as_str())) {
            let mut benches: Vec<Bench> = vec![
                (
                    "aeschat",
                    Box::new(|| {
                        let iv = ivs.borrow_mut().draw().unwrap();
                        let mut out = out.borrow_mut();
                        encrypt(&key, black_box(&input), now(), &iv, &mut out)
                            .unwrap()
                            .len()
                    }),
                ),
                ("fernet", Box::new(|| peer.encrypt(black_box(&input)).len())),
                (
                    "aeschat-syscall-iv",
                    Box::new(|| {
                        let iv = Iv::random().unwrap();
                        let mut out = out.borrow_mut();
                        encrypt(&key, black_box(&input), now(), &iv, &mut out)
                            .unwrap()
                            .len()
                    }),
                ),
                (
                    "aeschat-prepared",
                    Box::new(|| {
                        let iv = ivs.borrow_mut().draw().unwrap();
                        let mut out = out.borrow_mut();
                        prepared
                            .encrypt(black_box(&input), now(), &iv, &mut out)
                            .unwrap()
                            .len()
                    }),
                ),
                (
                    "base64",
                    Box::new(|| {
                        engine
                            .encode_slice(black_box(&raw), &mut text.borrow_mut())
                            .unwrap()
                    }),
                ),
            ];
            interleaved(&group, &mut benches);
        }

        let group = format!("decrypt/{}", size_label(len));
        if filter.as_ref().is_none_or(|f| group.contains(f.as_str())) {
            let mut benches: Vec<Bench> = vec![
                (
                    "aeschat",
                    Box::new(|| {
                        let mut plain = plain.borrow_mut();
                        decrypt(&key, black_box(token.as_bytes()), policy(), &mut plain)
                            .unwrap()
                            .len()
                    }),
                ),
                (
                    "fernet",
                    Box::new(|| peer.decrypt(black_box(&token)).unwrap().len()),
                ),
                (
                    "aeschat-prepared",
                    Box::new(|| {
                        let mut plain = plain.borrow_mut();
                        prepared
                            .decrypt(black_box(token.as_bytes()), policy(), &mut plain)
                            .unwrap()
                            .len()
                    }),
                ),
                (
                    "base64",
                    Box::new(|| {
                        engine
                            .decode_slice(black_box(&token), &mut raw_out.borrow_mut())
                            .unwrap()
                    }),
                ),
            ];
            interleaved(&group, &mut benches);
        }
    }

    if filter
        .as_ref()
        .is_none_or(|f| "overhead".contains(f.as_str()))
    {
        interleaved(
            "overhead",
            &mut [
                (
                    "iv+clock",
                    Box::new(|| usize::from(Iv::random().unwrap().as_bytes()[0]) ^ now() as usize),
                ),
                (
                    "pooled-iv+clock",
                    Box::new(|| {
                        usize::from(ivs.borrow_mut().draw().unwrap().as_bytes()[0]) ^ now() as usize
                    }),
                ),
            ],
        );
    }
}
