//! What the load and secrets tests share: what a running process uses (from `/proc`), finding
//! the process id of an `aeschat` started through `chat_support`, a test-side aeschat peer
//! built on `aeschat-core` that can also misbehave on the wire, and a long-running `aeschat`
//! whose standard output is counted instead of kept.
//!
//! Use it with `mod cli_support; mod chat_support; mod load_support;`.

use std::io::{self, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aeschat_core::fernet::Iv;
use aeschat_core::session;
use aeschat_core::session::{
    receive, send_close, send_text, Config, Engine, Handshake, Inbox, Incoming, Receiver, Role,
    Secret, Sender, SessionError, DEFAULT_FRAME_CAPACITY, HANDSHAKE_FRAME_LEN, NONCE_LEN,
};

use crate::chat_support::PATIENCE;
use crate::cli_support::aeschat_binary;

/// Tests that measure time, memory or CPU take this, so that two of them never run at once in
/// one test process and disturb each other's figures.
pub fn exclusive() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    // A test that failed while holding the lock poisons it; the next one may still run.
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What a process uses, from `/proc/<pid>/status` and `/proc/<pid>/stat`.
#[derive(Clone, Copy, Debug)]
pub struct Usage {
    /// Resident memory now (VmRSS), KiB.
    pub rss_kib: u64,
    /// The most resident memory so far (VmHWM), KiB.
    pub hwm_kib: u64,
    pub threads: u64,
    /// User and system CPU time, in clock ticks of 1/100 s (Linux's USER_HZ is 100).
    pub cpu_ticks: u64,
}

impl Usage {
    pub fn cpu(&self) -> Duration {
        Duration::from_millis(self.cpu_ticks * 10)
    }
}

/// What process `pid` uses now. Panics if it has gone.
pub fn usage(pid: u32) -> Usage {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|err| panic!("cannot read /proc/{pid}/status: {err}"));
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status:\n{status}"))
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|err| panic!("cannot read /proc/{pid}/stat: {err}"));
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis
    // start with field 3, so utime (14) and stime (15) are the 12th and 13th of them.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |index: usize| -> u64 {
        fields
            .get(index)
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("cannot parse /proc/{pid}/stat: {stat}"))
    };
    Usage {
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
        threads: field("Threads:"),
        cpu_ticks: ticks(11) + ticks(12),
    }
}

/// The process id of the running child of this test process whose command line holds every
/// one of `markers` as an argument (a test's scratch paths make them unique).
pub fn pid_of(markers: &[&str]) -> u32 {
    let me = std::process::id();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc")
            .expect("cannot list /proc")
            .flatten()
        {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|name| name.parse().ok())
            else {
                continue;
            };
            let is_child = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    let rest = stat.rsplit_once(')')?.1.to_owned();
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(me);
            if !is_child {
                continue;
            }
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmdline.split(|&byte| byte == 0).collect();
            if markers
                .iter()
                .all(|marker| args.contains(&marker.as_bytes()))
            {
                found.push(pid);
            }
        }
        match found.as_slice() {
            [pid] => return *pid,
            [] if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            _ => panic!("expected one child process with arguments {markers:?}, found {found:?}"),
        }
    }
}

/// The exact Busy alert (docs/PROTOCOL.md sections 7.1 and 9).
pub const BUSY_ALERT: [u8; 6] = [6, 0, 0, 0, 1, 5];

/// The alert for a malformed or foreign first message (UnexpectedMessage, code 6).
pub const UNEXPECTED_ALERT: [u8; 6] = [6, 0, 0, 0, 1, 6];

/// A fresh, valid ClientHello frame in password mode.
pub fn client_hello() -> Vec<u8> {
    let mut handshake = Handshake::new(
        Config::new(Role::Client, Secret::Password(b"not used")),
        random_nonce(),
        random_nonce(),
        Some(unix_now()),
    );
    let mut out = [0u8; HANDSHAKE_FRAME_LEN];
    handshake
        .write_message(&mut out)
        .expect("a ClientHello fits a handshake frame")
        .to_vec()
}

/// Reads from `stream` until the peer ends it (or `deadline`), returning what arrived and
/// whether the end was seen. A reset counts as the end.
pub fn read_to_end(stream: &mut TcpStream, deadline: Instant) -> (Vec<u8>, bool) {
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (got, false);
        }
        stream
            .set_read_timeout(Some(left))
            .expect("cannot set a read timeout");
        match stream.read(&mut chunk) {
            Ok(0) => return (got, true),
            Ok(read) => got.extend_from_slice(&chunk[..read]),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) if err.kind() == io::ErrorKind::ConnectionReset => return (got, true),
            Err(_) => return (got, false),
        }
    }
}

/// Reads exactly `len` bytes, or fails the test at `deadline`.
pub fn read_exactly(stream: &mut TcpStream, len: usize, deadline: Instant) -> Vec<u8> {
    let mut got = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "only {filled} of {len} bytes arrived in time: {:02x?}",
            &got[..filled]
        );
        stream
            .set_read_timeout(Some(left))
            .expect("cannot set a read timeout");
        match stream.read(&mut got[filled..]) {
            Ok(0) => panic!(
                "the connection ended after {filled} of {len} bytes: {:02x?}",
                &got[..filled]
            ),
            Ok(read) => filled += read,
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::Interrupted
                        | io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                ) => {}
            Err(err) => panic!("reading failed after {filled} of {len} bytes: {err}"),
        }
    }
    got
}

pub fn random_nonce() -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    nonce[..16].copy_from_slice(Iv::random().expect("randomness").as_bytes());
    nonce[16..].copy_from_slice(Iv::random().expect("randomness").as_bytes());
    nonce
}

pub use crate::session_support::OsRng;

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// The receiving half of a test-side connection, keeping a copy of the first bytes received.
pub struct WireReader {
    stream: TcpStream,
    pub log: Vec<u8>,
}

/// The sending half of a test-side connection, keeping a copy of the first bytes sent.
pub struct WireWriter {
    stream: TcpStream,
    pub log: Vec<u8>,
}

/// How many bytes of each direction are kept: both hellos and Finished messages.
const LOG_LIMIT: usize = 256;

impl session::ErrorType for WireReader {
    type Error = io::Error;
}

impl session::Read for WireReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = loop {
            match self.stream.read(buf) {
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                result => break result?,
            }
        };
        let keep = read.min(LOG_LIMIT.saturating_sub(self.log.len()));
        self.log.extend_from_slice(&buf[..keep]);
        Ok(read)
    }
}

impl session::ErrorType for WireWriter {
    type Error = io::Error;
}

impl session::Write for WireWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.stream.write(buf)?;
        let keep = written.min(LOG_LIMIT.saturating_sub(self.log.len()));
        self.log.extend_from_slice(&buf[..keep]);
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

/// A test-side aeschat peer on `aeschat-core`, for sessions driven from the test: as fast as
/// the core allows, and able to misbehave on the raw stream once established.
pub struct TestPeer {
    pub stream: TcpStream,
    pub reader: WireReader,
    pub writer: WireWriter,
    pub sender: Sender,
    pub receiver: Receiver,
    frames: Inbox<Box<[u8]>>,
    record: Vec<u8>,
}

impl TestPeer {
    /// Runs the handshake on `stream` in `role`.
    pub fn establish(
        stream: TcpStream,
        role: Role,
        secret: Secret<'_>,
    ) -> Result<TestPeer, SessionError<io::Error>> {
        stream
            .set_read_timeout(Some(PATIENCE))
            .and_then(|()| stream.set_write_timeout(Some(PATIENCE)))
            .and_then(|()| stream.set_nodelay(true))
            .map_err(SessionError::Transport)?;
        let clone = || stream.try_clone().map_err(SessionError::Transport);
        let mut reader = WireReader {
            stream: clone()?,
            log: Vec::new(),
        };
        let mut writer = WireWriter {
            stream: clone()?,
            log: Vec::new(),
        };
        let config = Config::new(role, secret);
        let mut frames = Inbox::new(vec![0u8; DEFAULT_FRAME_CAPACITY].into_boxed_slice());
        let mut engine = Engine::new(config, &mut OsRng, Some(unix_now()));
        session::handshake(&mut reader, &mut writer, &mut frames, &mut engine)?;
        let (sender, receiver) = engine.split()?;
        Ok(TestPeer {
            stream,
            reader,
            writer,
            sender,
            receiver,
            frames,
            record: vec![0; session::record_frame_len(session::MAX_MESSAGE_LEN)],
        })
    }

    /// Connects to `address` as a client.
    pub fn connect(address: &str, secret: Secret<'_>) -> Result<TestPeer, SessionError<io::Error>> {
        let stream = TcpStream::connect(address).map_err(SessionError::Transport)?;
        TestPeer::establish(stream, Role::Client, secret)
    }

    pub fn send(&mut self, text: &[u8]) -> Result<(), SessionError<io::Error>> {
        send_text(
            &mut self.sender,
            &mut self.writer,
            text,
            &mut OsRng,
            Some(unix_now()),
            &mut self.record,
        )
    }

    /// Seals a text record and returns its frame without sending it.
    pub fn seal(&mut self, text: &[u8]) -> Vec<u8> {
        self.sender
            .seal_text(text, &mut OsRng, Some(unix_now()), &mut self.record)
            .expect("the text fits a record")
            .to_vec()
    }

    pub fn close(&mut self) -> Result<(), SessionError<io::Error>> {
        send_close(
            &mut self.sender,
            &mut self.writer,
            &mut OsRng,
            Some(unix_now()),
            &mut self.record,
        )
    }

    /// The next message: `Some(text)`, or `None` for the peer's close.
    pub fn receive(&mut self) -> Result<Option<Vec<u8>>, SessionError<io::Error>> {
        match receive(&mut self.receiver, &mut self.reader, &mut self.frames)? {
            Incoming::Text(text) => Ok(Some(text.to_vec())),
            Incoming::Closed => Ok(None),
        }
    }

    /// The handshake's frames as they travelled (docs/PROTOCOL.md sections 2 and 3), from the logs
    /// of what this peer, in `role`, sent and received.
    pub fn handshake_frames(&self, role: Role) -> HandshakeFrames {
        let (client, server) = match role {
            Role::Client => (&self.writer.log, &self.reader.log),
            Role::Server => (&self.reader.log, &self.writer.log),
        };
        let (client_hello, rest) = client.split_at(58);
        let (client_share, rest) = rest.split_at(37);
        let (server_hello, server_rest) = server.split_at(90);
        HandshakeFrames {
            client_hello: client_hello.to_vec(),
            server_hello: server_hello.to_vec(),
            client_share: client_share.to_vec(),
            client_finished: rest[..37].to_vec(),
            server_finished: server_rest[..37].to_vec(),
        }
    }
}

/// A protocol-2 handshake's five frames, headers included.
#[derive(Clone, Debug)]
pub struct HandshakeFrames {
    pub client_hello: Vec<u8>,
    pub server_hello: Vec<u8>,
    pub client_share: Vec<u8>,
    pub client_finished: Vec<u8>,
    pub server_finished: Vec<u8>,
}

/// A running `aeschat` whose standard output is counted, line by line, rather than kept: for
/// sessions of a million messages. Killed when dropped.
pub struct Counted {
    name: String,
    child: Child,
    pub stdin: Option<ChildStdin>,
    lines: Arc<AtomicU64>,
    last_line: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    exited: bool,
}

impl Counted {
    pub fn spawn(name: &str, args: &[&str]) -> Counted {
        let mut child = Command::new(aeschat_binary())
            .args(args)
            .env_remove("AESCHAT_PASSWORD")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start the aeschat binary");
        let lines = Arc::new(AtomicU64::new(0));
        let last_line = Arc::new(Mutex::new(Vec::new()));
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let (counter, last) = (Arc::clone(&lines), Arc::clone(&last_line));
        thread::spawn(move || {
            let mut chunk = vec![0u8; 64 * 1024];
            let mut current = Vec::new();
            loop {
                let read = match stdout.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(read) => read,
                };
                for &byte in &chunk[..read] {
                    if byte == b'\n' {
                        *last.lock().unwrap() = std::mem::take(&mut current);
                        counter.fetch_add(1, Ordering::SeqCst);
                    } else if current.len() < 256 {
                        current.push(byte);
                    }
                }
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut pipe = child.stderr.take().expect("stderr is piped");
        let filling = Arc::clone(&stderr);
        thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(read @ 1..) = pipe.read(&mut chunk) {
                filling.lock().unwrap().extend_from_slice(&chunk[..read]);
            }
        });
        Counted {
            name: name.to_owned(),
            stdin: child.stdin.take(),
            child,
            lines,
            last_line,
            stderr,
            exited: false,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn lines(&self) -> u64 {
        self.lines.load(Ordering::SeqCst)
    }

    pub fn last_line(&self) -> String {
        String::from_utf8_lossy(&self.last_line.lock().unwrap()).into_owned()
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Waits until stderr contains `needle`, failing the test after [`PATIENCE`].
    pub fn wait_stderr(&self, needle: &str) {
        let deadline = Instant::now() + PATIENCE;
        while !self.stderr_text().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "{} never printed {needle:?}:\n{}",
                self.name,
                self.stderr_text()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// The address from a server's `listening on HOST:PORT` line.
    pub fn listening_address(&self) -> String {
        self.wait_stderr("listening on ");
        let text = self.stderr_text();
        let rest = text.split("listening on ").nth(1).expect("checked above");
        rest.split_whitespace()
            .next()
            .expect("an address follows")
            .to_owned()
    }

    /// Waits for the exit (at most `patience`) and returns the exit code; kills the process
    /// and fails the test if it does not come.
    pub fn wait_exit(&mut self, patience: Duration) -> i32 {
        let deadline = Instant::now() + patience;
        loop {
            if let Some(status) = self.child.try_wait().expect("cannot wait for aeschat") {
                self.exited = true;
                return status.code().unwrap_or(-1);
            }
            if Instant::now() >= deadline {
                self.kill();
                panic!(
                    "{} did not exit in time:\n{}",
                    self.name,
                    self.stderr_text()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.exited = true;
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        if !self.exited {
            self.kill();
        }
    }
}
