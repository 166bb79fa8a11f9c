//! Proves that the chat allocates nothing per message once the handshake is done, and stays
//! small: a real server and client on loopback, built with the `count-allocations` feature
//! (a counting global allocator that reports at exit how many heap allocations the process made
//! after its handshake), exchange 10 and then 1,000 messages in each direction. The count must
//! be the same for both runs, on each side: whatever is allocated after the handshake (threads,
//! buffers made once per conversation, status lines) does not depend on how much is said. The
//! peak resident memory (VmHWM) of each process, read while it still runs at the end of the
//! conversation, must stay within 8 MiB.
//!
//! The counting binary is built once per test process into `target/alloc-count`, so the normal
//! binary the other tests run is never replaced by it; with unoptimised dependencies and no
//! debug information, to keep that build short. A last check runs the normal binary and finds
//! no count: the default build does not include the counting allocator.

use aeschat_tests::cli_support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use cli_support::{aeschat_binary, build_aeschat_with, workspace_dir};

const PASSWORD: &str = "otter pizza violet kettle brave dune";

/// The most any one process of the chat may have resident at its peak.
const PEAK_LIMIT: u64 = 8 << 20;

/// How long any one expected thing may take. Generous: the machine may be busy.
const PATIENCE: Duration = Duration::from_secs(60);

/// The `aeschat` binary with the counting allocator, built on first use.
fn counting_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        build_aeschat_with(|command| {
            let target = workspace_dir().join("target").join("alloc-count");
            command
                .args(["--features", "count-allocations"])
                .arg("--target-dir")
                .arg(target)
                // The dependencies unoptimised and no debug information: the build takes a
                // third of the time, and allocations are the same at any optimisation level.
                .args(["--config", "profile.dev.package.\"*\".opt-level=0"])
                .args(["--config", "profile.dev.debug=0"]);
        })
    })
}

/// Everything a stream of a process has written, filled by a thread of its own.
#[derive(Default)]
struct Captured {
    bytes: Mutex<Vec<u8>>,
    changed: Condvar,
}

impl Captured {
    /// Starts capturing; the thread ends with the stream.
    fn start(mut stream: impl Read + Send + 'static) -> (Arc<Captured>, JoinHandle<()>) {
        let captured = Arc::new(Captured::default());
        let filling = Arc::clone(&captured);
        let thread = thread::spawn(move || {
            let mut chunk = [0u8; 16 * 1024];
            while let Ok(read @ 1..) = stream.read(&mut chunk) {
                filling
                    .bytes
                    .lock()
                    .unwrap()
                    .extend_from_slice(&chunk[..read]);
                filling.changed.notify_all();
            }
        });
        (captured, thread)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes.lock().unwrap()).into_owned()
    }

    /// Waits until `done` holds for what was captured; false after [`PATIENCE`].
    fn wait_until(&self, done: impl Fn(&[u8]) -> bool) -> bool {
        let deadline = Instant::now() + PATIENCE;
        let mut bytes = self.bytes.lock().unwrap();
        while !done(&bytes) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            bytes = self.changed.wait_timeout(bytes, left).unwrap().0;
        }
        true
    }
}

/// One `aeschat` process with piped standard streams.
struct Process {
    name: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Arc<Captured>,
    stderr: Arc<Captured>,
    capturing: Vec<JoinHandle<()>>,
}

impl Process {
    fn spawn(name: &'static str, binary: &Path, args: &[&str]) -> Process {
        let mut child = Command::new(binary)
            .args(args)
            .env("AESCHAT_PASSWORD", PASSWORD)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start aeschat");
        let (stdout, out_thread) = Captured::start(child.stdout.take().expect("piped"));
        let (stderr, err_thread) = Captured::start(child.stderr.take().expect("piped"));
        Process {
            name,
            stdin: child.stdin.take(),
            child,
            stdout,
            stderr,
            capturing: vec![out_thread, err_thread],
        }
    }

    fn transcript(&self) -> String {
        format!("--- {} stderr:\n{}", self.name, self.stderr.text())
    }

    fn wait_stderr(&self, needle: &str) -> String {
        let found = self
            .stderr
            .wait_until(|bytes| String::from_utf8_lossy(bytes).contains(needle));
        assert!(found, "never saw {needle:?}\n{}", self.transcript());
        let text = self.stderr.text();
        let line = text.lines().find(|line| line.contains(needle));
        line.expect("found above").to_owned()
    }

    fn wait_stdout_lines(&self, count: usize) {
        let found = self
            .stdout
            .wait_until(|bytes| bytes.iter().filter(|&&byte| byte == b'\n').count() >= count);
        assert!(
            found,
            "{} never printed {count} lines\n{}",
            self.name,
            self.transcript()
        );
    }

    /// VmHWM from /proc: the most memory the process has had resident so far.
    fn peak_resident(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("cannot read /proc/PID/status of a running process");
        let line = status
            .lines()
            .find(|line| line.starts_with("VmHWM:"))
            .expect("no VmHWM line");
        let kib: u64 = line
            .split_whitespace()
            .nth(1)
            .and_then(|number| number.parse().ok())
            .expect("VmHWM is a number of kB");
        kib * 1024
    }

    fn exit_code(&mut self) -> i32 {
        self.stdin = None;
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The output is complete once the pipes have closed.
                for capturing in self.capturing.drain(..) {
                    capturing.join().expect("a capturing thread panicked");
                }
                return status.code().expect("killed by a signal");
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit\n{}",
                self.name,
                self.transcript()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one side of a conversation reported.
#[derive(Debug)]
struct Report {
    /// Heap allocations after the handshake (`None` when the binary does not count).
    allocations: Option<(u64, u64)>,
    peak: u64,
}

/// A conversation of `messages` lines each way; the server's report and the client's.
fn conversation(binary: &Path, messages: usize) -> (Report, Report) {
    let mut server = Process::spawn(
        "server",
        binary,
        &["server", "--listen", "127.0.0.1:0", "--once"],
    );
    let line = server.wait_stderr("listening on ");
    let address = line
        .split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("an address after `listening on`")
        .to_owned();
    let mut client = Process::spawn("client", binary, &["client", "--connect", &address]);
    client.wait_stderr("[+] Connected");
    server.wait_stderr("[+] Client connected");

    // Both sides type at once: every line is on its way before the first has arrived.
    for (process, who) in [(&mut server, "server"), (&mut client, "client")] {
        let typed: String = (0..messages)
            .map(|i| format!("{who} says {i}: the quick brown fox jumps over the lazy dog\n"))
            .collect();
        let stdin = process.stdin.as_mut().expect("open");
        stdin.write_all(typed.as_bytes()).expect("cannot type");
        stdin.flush().expect("cannot type");
    }
    server.wait_stdout_lines(messages);
    client.wait_stdout_lines(messages);
    let peaks = (server.peak_resident(), client.peak_resident());

    // The client leaves; the server (with --once) answers its close and ends too.
    assert_eq!(client.exit_code(), 0, "{}", client.transcript());
    assert_eq!(server.exit_code(), 0, "{}", server.transcript());
    let report = |process: &Process, peak| Report {
        allocations: allocations(&process.stderr.text()),
        peak,
    };
    (report(&server, peaks.0), report(&client, peaks.1))
}

/// `N` and `M` from `aeschat: heap allocations after the handshake: N (M messages)`.
fn allocations(stderr: &str) -> Option<(u64, u64)> {
    let line = stderr
        .lines()
        .find(|line| line.starts_with("aeschat: heap allocations after the handshake: "))?;
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|number| number.parse().ok())
        .collect();
    match numbers[..] {
        [count, messages] => Some((count, messages)),
        _ => panic!("a count line without two numbers: {line}"),
    }
}

#[test]
fn no_heap_allocation_per_message_after_the_handshake_and_a_small_peak() {
    let binary = counting_binary();
    let (few_server, few_client) = conversation(binary, 10);
    let (many_server, many_client) = conversation(binary, 1000);
    for (side, few, many) in [
        ("server", &few_server, &many_server),
        ("client", &few_client, &many_client),
    ] {
        let (few_count, few_messages) = few.allocations.expect("a count at exit");
        let (many_count, many_messages) = many.allocations.expect("a count at exit");
        eprintln!(
            "{side}: {few_count} allocations after the handshake with {few_messages} messages, \
             {many_count} with {many_messages}; peak resident {} and {} KiB",
            few.peak / 1024,
            many.peak / 1024
        );
        assert_eq!((few_messages, many_messages), (20, 2000), "{side}");
        assert_eq!(
            few_count, many_count,
            "{side}: the allocations after the handshake grew with the messages"
        );
        for report in [few, many] {
            assert!(
                report.peak <= PEAK_LIMIT,
                "{side}: peak resident memory {} KiB is over {} KiB",
                report.peak / 1024,
                PEAK_LIMIT / 1024
            );
        }
    }
}

#[test]
fn the_normal_build_does_not_count() {
    let (server, client) = conversation(aeschat_binary(), 10);
    assert!(server.allocations.is_none() && client.allocations.is_none());
    eprintln!(
        "normal build: peak resident {} KiB (server), {} KiB (client)",
        server.peak / 1024,
        client.peak / 1024
    );
    for report in [server, client] {
        assert!(report.peak <= PEAK_LIMIT, "{report:?}");
    }
}
