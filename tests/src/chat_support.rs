//! Running real `aeschat server` and `aeschat client` processes side by side on loopback:
//! spawn them, type into them, wait (always with a deadline) for what they print, and collect
//! how they end. A test that fails or times out kills its processes when the `Peer`s drop.
//!
//!

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::cli_support::{aeschat_binary, ScratchDir};

/// The password the tests share. Long enough not to draw the weak-password warning.
pub const PASSWORD: &str = "otter pizza violet kettle brave dune";

/// How long any one expected thing may take to happen. Generous: the machine may be busy
/// building or running other tests.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Everything a process has written to one stream so far, and whether the stream has ended.
#[derive(Default)]
struct Captured {
    bytes: Vec<u8>,
    ended: bool,
}

#[derive(Default)]
struct Capture {
    state: Mutex<Captured>,
    changed: Condvar,
}

impl Capture {
    /// Collects `stream` on a thread of its own until it ends.
    fn start(mut stream: impl Read + Send + 'static) -> Arc<Capture> {
        let capture = Arc::new(Capture::default());
        let filling = Arc::clone(&capture);
        thread::spawn(move || {
            let mut chunk = [0u8; 16 * 1024];
            loop {
                let read = stream.read(&mut chunk).unwrap_or(0);
                let mut state = filling.state.lock().unwrap();
                match chunk.get(..read) {
                    Some(bytes) if read > 0 => state.bytes.extend_from_slice(bytes),
                    _ => state.ended = true,
                }
                filling.changed.notify_all();
                if state.ended {
                    return;
                }
            }
        });
        capture
    }

    fn snapshot(&self) -> Vec<u8> {
        self.state.lock().unwrap().bytes.clone()
    }

    /// Waits until `done` holds for what was captured, or the stream ends, or `deadline`.
    fn wait_until(&self, deadline: Instant, mut done: impl FnMut(&[u8]) -> bool) -> bool {
        let mut state = self.state.lock().unwrap();
        loop {
            if done(&state.bytes) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if state.ended || left.is_zero() {
                return false;
            }
            state = self.changed.wait_timeout(state, left).unwrap().0;
        }
    }
}

/// A running `aeschat` process with piped stdin, stdout and stderr.
pub struct Peer {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Arc<Capture>,
    stderr: Arc<Capture>,
    status: Option<ExitStatus>,
}

impl Peer {
    /// Starts `aeschat ARGS` with extra environment variables. `name` labels failure output.
    pub fn spawn(name: &str, args: &[&str], env: &[(&str, &str)]) -> Peer {
        let mut command = Command::new(aeschat_binary());
        command.args(args);
        for (key, value) in env {
            command.env(key, value);
        }
        Peer::spawn_command(name, command)
    }

    /// Starts a prepared command (for example `aeschat` inside `ip netns exec`), with piped
    /// standard streams and without the password variable of the environment the tests run in.
    pub fn spawn_command(name: &str, mut command: Command) -> Peer {
        if !command.get_envs().any(|(key, _)| key == "AESCHAT_PASSWORD") {
            command.env_remove("AESCHAT_PASSWORD");
        }
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("cannot start the aeschat binary");
        let stdout = Capture::start(child.stdout.take().expect("stdout is piped"));
        let stderr = Capture::start(child.stderr.take().expect("stderr is piped"));
        Peer {
            name: name.to_owned(),
            stdin: child.stdin.take(),
            child,
            stdout,
            stderr,
            status: None,
        }
    }

    /// Everything written to stdout so far.
    pub fn stdout(&self) -> Vec<u8> {
        self.stdout.snapshot()
    }

    /// Everything written to stdout so far, as text.
    pub fn stdout_text(&self) -> String {
        String::from_utf8(self.stdout()).expect("stdout is not UTF-8")
    }

    /// Everything written to stderr so far, as text.
    pub fn stderr_text(&self) -> String {
        String::from_utf8(self.stderr.snapshot()).expect("stderr is not UTF-8")
    }

    /// What this process printed, for failure messages.
    pub fn transcript(&self) -> String {
        let stdout = String::from_utf8_lossy(&self.stdout()).into_owned();
        let shown = if stdout.len() > 2000 {
            format!("{}... ({} bytes)", prefix(&stdout, 2000), stdout.len())
        } else {
            stdout
        };
        format!(
            "--- {} stderr:\n{}--- {} stdout:\n{shown}",
            self.name,
            self.stderr_text(),
            self.name
        )
    }

    /// Waits for a line on stderr containing `needle` and returns it (the first one).
    pub fn wait_stderr(&self, needle: &str) -> String {
        self.wait_stderr_count(needle, 1)
    }

    /// Waits until stderr holds `count` lines containing `needle`; returns the last of them.
    pub fn wait_stderr_count(&self, needle: &str, count: usize) -> String {
        let deadline = Instant::now() + PATIENCE;
        let found = self.stderr.wait_until(deadline, |bytes| {
            matching_lines(bytes, needle).len() >= count
        });
        let lines = matching_lines(&self.stderr.snapshot(), needle);
        assert!(
            found,
            "{} never printed {count} line(s) with {needle:?} on stderr\n{}",
            self.name,
            self.transcript()
        );
        lines[count - 1].clone()
    }

    /// Waits for the error line (`aeschat: ...`, not a warning) on stderr and returns it.
    pub fn wait_error_line(&self) -> String {
        let is_error =
            |line: &str| line.starts_with("aeschat: ") && !line.starts_with("aeschat: warning: ");
        let errors = |bytes: &[u8]| -> Vec<String> {
            String::from_utf8_lossy(bytes)
                .lines()
                .filter(|line| is_error(line))
                .map(str::to_owned)
                .collect()
        };
        let deadline = Instant::now() + PATIENCE;
        let found = self
            .stderr
            .wait_until(deadline, |bytes| !errors(bytes).is_empty());
        assert!(
            found,
            "{} never printed an error line\n{}",
            self.name,
            self.transcript()
        );
        errors(&self.stderr.snapshot()).remove(0)
    }

    /// Waits for a line on stdout equal to `line` (without its line ending).
    pub fn wait_stdout_line(&self, line: &str) {
        let deadline = Instant::now() + PATIENCE;
        let found = self.stdout.wait_until(deadline, |bytes| {
            bytes
                .split(|&byte| byte == b'\n')
                .any(|candidate| candidate == line.as_bytes())
        });
        assert!(
            found,
            "{} never printed the line {:?} on stdout\n{}",
            self.name,
            abbreviate(line),
            self.transcript()
        );
    }

    /// Waits until a server's last line on stderr is its `Waiting for a client` line: it
    /// prints it only once it is ready, and nothing after it until someone calls (but for its
    /// account of callers it refused or dropped, which do not change that). Before it, a caller
    /// may still find the server busy with the previous one.
    pub fn wait_idle(&self) {
        let deadline = Instant::now() + PATIENCE;
        let caller_log = |line: &[u8]| {
            line.starts_with(b"[!] Refused ")
                || line.starts_with(b"[!] Dropped ")
                || line.starts_with(b"[!] Authentication failed for ")
                || (line.starts_with(b"[!] ") && line.windows(12).any(|w| w == b" more caller"))
        };
        let idle = self.stderr.wait_until(deadline, |bytes| {
            bytes
                .split(|&byte| byte == b'\n')
                .rfind(|line| !line.is_empty() && !caller_log(line))
                .is_some_and(|line| line.starts_with(b"[*] Waiting for a client"))
        });
        assert!(
            idle,
            "{} never went back to waiting for a client\n{}",
            self.name,
            self.transcript()
        );
    }

    /// The address from the server's `listening on HOST:PORT` line.
    pub fn listening_address(&self) -> String {
        let line = self.wait_stderr("listening on ");
        let rest = line.split("listening on ").nth(1).expect("checked above");
        rest.split_whitespace()
            .next()
            .expect("an address follows `listening on`")
            .to_owned()
    }

    /// Types one line (a line ending is added).
    pub fn type_line(&mut self, line: &str) {
        self.type_bytes(format!("{line}\n").as_bytes());
    }

    /// Types raw bytes, exactly as given.
    pub fn type_bytes(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin was already closed");
        stdin
            .write_all(bytes)
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|err| panic!("cannot type into {}: {err}", self.name));
    }

    /// Ends standard input (like Ctrl-D on a terminal).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for the process to exit and for its output to be complete; returns its exit code.
    /// Kills it and fails the test if it takes longer than [`PATIENCE`].
    /// Waits until the process exits (its status) or prints a line on stderr starting with
    /// `prefix` while still running (that line). A server reports the callers it drops this way
    /// and goes on listening.
    pub fn wait_exit_or_line(&mut self, prefix: &str) -> Result<i32, String> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if self
                .child
                .try_wait()
                .expect("cannot wait for aeschat")
                .is_some()
            {
                return Ok(self.wait_exit());
            }
            if let Some(line) = self
                .stderr_text()
                .lines()
                .find(|line| line.starts_with(prefix))
            {
                return Err(line.to_owned());
            }
            if Instant::now() >= deadline {
                return Ok(self.wait_exit());
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn wait_exit(&mut self) -> i32 {
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("cannot wait for aeschat") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("{} did not exit in time\n{}", self.name, self.transcript());
            }
            thread::sleep(Duration::from_millis(20));
        };
        self.status = Some(status);
        // The output threads finish once the pipes close, right after the exit.
        let deadline = Instant::now() + PATIENCE;
        self.stdout.wait_until(deadline, |_| false);
        self.stderr.wait_until(deadline, |_| false);
        status.code().unwrap_or_else(|| {
            panic!(
                "{} was killed by a signal: {status}\n{}",
                self.name,
                self.transcript()
            )
        })
    }

    /// Waits for the exit and asserts its code, showing the transcript if it differs.
    pub fn assert_exit(&mut self, expected: i32) {
        let code = self.wait_exit();
        assert_eq!(
            code,
            expected,
            "{} exited with {code}, expected {expected}\n{}",
            self.name,
            self.transcript()
        );
        let stderr = self.stderr_text();
        assert!(
            !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
            "{} panicked\n{}",
            self.name,
            self.transcript()
        );
    }

    /// Sends SIGINT, as Ctrl-C on its terminal would.
    pub fn interrupt(&self) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("cannot run kill");
        assert!(status.success(), "kill -INT failed for {}", self.name);
    }

    /// Kills the process at once (SIGKILL): it gets no chance to close anything.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The process id (to read its memory use from /proc).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn matching_lines(bytes: &[u8], needle: &str) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter(|line| line.contains(needle))
        .map(str::to_owned)
        .collect()
}

/// The longest start of `text` of at most `max` bytes that ends on a character boundary.
fn prefix(text: &str, max: usize) -> &str {
    let end = (0..=max.min(text.len()))
        .rev()
        .find(|&end| text.is_char_boundary(end))
        .unwrap_or(0);
    &text[..end]
}

fn abbreviate(text: &str) -> String {
    if text.len() > 200 {
        format!("{}... ({} bytes)", prefix(text, 200), text.len())
    } else {
        text.to_owned()
    }
}

/// A scratch directory with the shared password in `pass` (and more files on demand).
pub struct Files {
    pub dir: ScratchDir,
    pub password_file: String,
}

impl Files {
    pub fn new(label: &str) -> Files {
        let dir = ScratchDir::new(label);
        let password_file = dir.write("pass", format!("{PASSWORD}\n"));
        Files { dir, password_file }
    }

    /// Writes another password file.
    pub fn password(&self, name: &str, password: &str) -> String {
        self.dir.write(name, format!("{password}\n"))
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// `server --listen 127.0.0.1:0` with the shared password, plus `extra` arguments; returns it once it listens, with the address it listens on.
pub fn start_server(files: &Files, extra: &[&str]) -> (Peer, String) {
    start_server_with(files, &["--listen", "127.0.0.1:0"], extra)
}

/// Like [`start_server`], with the listening arguments given.
pub fn start_server_with(files: &Files, listen: &[&str], extra: &[&str]) -> (Peer, String) {
    let mut args = vec!["server", "--password-file", files.password_file.as_str()];
    args.extend_from_slice(listen);
    args.extend_from_slice(extra);
    let server = Peer::spawn("server", &args, &[]);
    let address = server.listening_address();
    (server, address)
}

/// `client --connect ADDRESS` with the password file given, plus `extra` arguments.
pub fn start_client_with(name: &str, address: &str, password_file: &str, extra: &[&str]) -> Peer {
    let mut args = vec![
        "client",
        "--connect",
        address,
        "--password-file",
        password_file,
    ];
    args.extend_from_slice(extra);
    Peer::spawn(name, &args, &[])
}

/// A client with the shared password.
pub fn start_client(files: &Files, address: &str) -> Peer {
    start_client_with("client", address, &files.password_file, &[])
}

/// A server and a client that have completed the handshake.
pub fn connected_pair(files: &Files, server_extra: &[&str]) -> (Peer, Peer, String) {
    let (server, address) = start_server(files, server_extra);
    let client = start_client(files, &address);
    client.wait_stderr("[+] Connected to the server");
    server.wait_stderr("[+] Client connected");
    (server, client, address)
}
