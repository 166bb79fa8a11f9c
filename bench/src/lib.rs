//! What the benchmarks share: the inputs every implementation gets, and an in-memory byte pipe
//! that carries a handshake or a chat between two threads through the core's blocking driver.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// The plaintext sizes every token benchmark runs at: 16 B, 256 B, 4 KiB, 64 KiB and 1 MiB.
pub const SIZES: [usize; 5] = [16, 256, 4 << 10, 64 << 10, 1 << 20];

/// The Fernet key every implementation uses (the spec's), as text.
pub const KEY_TEXT: &str = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=";

/// The same key for aeschat.
pub fn key() -> aeschat_core::fernet::Key {
    aeschat_core::fernet::Key::parse(KEY_TEXT.as_bytes()).expect("the key text is valid")
}

/// The plaintext of `len` bytes every implementation encrypts (the same pattern in Python).
pub fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// The current Unix time in seconds, as every application reads it per token.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A human-readable size: "16 B", "4 KiB", "1 MiB".
pub fn size_label(len: usize) -> String {
    match len {
        l if l >= 1 << 20 && l % (1 << 20) == 0 => format!("{} MiB", l >> 20),
        l if l >= 1 << 10 && l % (1 << 10) == 0 => format!("{} KiB", l >> 10),
        l => format!("{l} B"),
    }
}

#[derive(Default)]
struct Shared {
    bytes: VecDeque<u8>,
    closed: bool,
}

/// One direction of an in-memory byte stream.
#[derive(Clone, Default)]
struct Channel(Arc<(Mutex<Shared>, Condvar)>);

/// The reading end of an in-memory stream: blocks until bytes arrive or the writer is dropped.
pub struct PipeReader(Channel);

/// The writing end of an in-memory stream; dropping it ends the stream.
pub struct PipeWriter(Channel);

/// A one-way in-memory byte stream.
pub fn pipe() -> (PipeWriter, PipeReader) {
    let channel = Channel::default();
    (PipeWriter(channel.clone()), PipeReader(channel))
}

/// Two crossed pipes: one end of a connection for each thread.
pub fn connection() -> ((PipeReader, PipeWriter), (PipeReader, PipeWriter)) {
    let (a_to_b, b_from_a) = pipe();
    let (b_to_a, a_from_b) = pipe();
    ((a_from_b, a_to_b), (b_from_a, b_to_a))
}

/// The pipe never fails; a closed stream reads as its end.
pub type Never = core::convert::Infallible;

impl aeschat_core::session::ErrorType for PipeReader {
    type Error = Never;
}

impl aeschat_core::session::Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Never> {
        let (lock, ready) = &*self.0 .0;
        let mut shared = lock.lock().unwrap_or_else(|e| e.into_inner());
        while shared.bytes.is_empty() && !shared.closed && !buf.is_empty() {
            shared = ready.wait(shared).unwrap_or_else(|e| e.into_inner());
        }
        let count = buf.len().min(shared.bytes.len());
        for (dst, src) in buf.iter_mut().zip(shared.bytes.drain(..count)) {
            *dst = src;
        }
        Ok(count)
    }
}

impl aeschat_core::session::ErrorType for PipeWriter {
    type Error = Never;
}

impl aeschat_core::session::Write for PipeWriter {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Never> {
        let (lock, ready) = &*self.0 .0;
        let mut shared = lock.lock().unwrap_or_else(|e| e.into_inner());
        shared.bytes.extend(buf);
        ready.notify_all();
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Never> {
        Ok(())
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        let (lock, ready) = &*self.0 .0;
        lock.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
        ready.notify_all();
    }
}

/// Criterion's measurement of the benchmarking thread's CPU time instead of wall time. The
/// machines this runs on are small and shared: when another process takes the core, wall time
/// counts the wait, CPU time does not, so ratios of aeschat to its peers stay comparable.
/// (Caches and clock frequency are still shared, so noise remains.) Single-threaded benchmarks
/// only: a benchmark that hands work to other threads is measured in wall time.
pub struct ThreadCpuTime(criterion::measurement::WallTime);

impl Default for ThreadCpuTime {
    fn default() -> Self {
        ThreadCpuTime(criterion::measurement::WallTime)
    }
}

/// The calling thread's CPU time so far (`CLOCK_THREAD_CPUTIME_ID`).
pub fn thread_cpu_time() -> std::time::Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer to a local.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(status, 0, "the thread CPU clock is readable");
    std::time::Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

impl criterion::measurement::Measurement for ThreadCpuTime {
    type Intermediate = std::time::Duration;
    type Value = std::time::Duration;

    fn start(&self) -> Self::Intermediate {
        thread_cpu_time()
    }

    fn end(&self, started: Self::Intermediate) -> Self::Value {
        thread_cpu_time().saturating_sub(started)
    }

    fn add(&self, a: &Self::Value, b: &Self::Value) -> Self::Value {
        *a + *b
    }

    fn zero(&self) -> Self::Value {
        std::time::Duration::ZERO
    }

    fn to_f64(&self, value: &Self::Value) -> f64 {
        value.as_nanos() as f64
    }

    fn formatter(&self) -> &dyn criterion::measurement::ValueFormatter {
        criterion::measurement::Measurement::formatter(&self.0)
    }
}
