//! Shared helpers for tests that run the real `aeschat` binary: build it once per test process,
//! run it with bytes on stdin, make scratch directories, and draw reproducible random bytes.
//!
//! Use it from a test file with `mod cli_support;`. Cargo offers `CARGO_BIN_EXE_*` only to the
//! tests of the binary's own package, so the binary is built here with `cargo build` and found
//! through Cargo's JSON messages, which name the executable wherever the target directory is.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use aeschat_core::fernet::Key;

/// The workspace root.
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests package lives inside the workspace")
        .to_path_buf()
}

/// The official Fernet spec vectors as copied into the repository.
pub fn official_vectors_dir() -> PathBuf {
    workspace_dir().join("vectors").join("official")
}

/// aeschat's extended vectors.
pub fn extended_vectors_dir() -> PathBuf {
    workspace_dir().join("vectors").join("extended")
}

/// The path of an up-to-date `aeschat` binary, built on first use.
pub fn aeschat_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(build_aeschat)
}

fn build_aeschat() -> PathBuf {
    build_aeschat_with(|_| {})
}

/// Builds the `aeschat` binary with `cargo build`, plus whatever `configure` adds to the
/// command (features, a target directory, profile settings), and returns the executable's path.
pub fn build_aeschat_with(configure: impl FnOnce(&mut Command)) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(workspace_dir()).args([
        "build",
        "--package",
        "aeschat",
        "--bin",
        "aeschat",
    ]);
    configure(&mut command);
    let output = command
        .args(["--message-format", "json-render-diagnostics"])
        .stderr(Stdio::inherit())
        .output()
        .expect("cannot run cargo to build the aeschat binary");
    assert!(
        output.status.success(),
        "`cargo build --package aeschat` failed (its errors are above): {command:?}"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .filter(|message| message["target"]["name"] == "aeschat")
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .expect("cargo reported no executable for the aeschat binary")
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    /// The exit code; a test fails if the process was killed by a signal.
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| panic!("aeschat was killed by a signal: {self:?}"))
    }

    /// Asserts exit 0 and an empty stderr, and returns stdout.
    pub fn success(self) -> Vec<u8> {
        assert_eq!(self.code(), 0, "aeschat failed: {}", self.stderr);
        assert_eq!(self.stderr, "", "aeschat succeeded but wrote to stderr");
        self.stdout
    }

    /// Asserts exit 0 and an empty stderr, and returns stdout as text.
    pub fn success_text(self) -> String {
        String::from_utf8(self.success()).expect("stdout is not UTF-8")
    }

    /// Asserts a runtime failure as the CLI promises it: exit 1, nothing on stdout, and exactly
    /// one line on stderr starting with `aeschat: `. Returns that line without its newline.
    pub fn failure_line(self) -> String {
        assert_eq!(self.code(), 1, "expected exit status 1: {self:?}");
        assert!(
            self.stdout.is_empty(),
            "a failing command wrote to stdout: {self:?}"
        );
        let line = self
            .stderr
            .strip_suffix('\n')
            .unwrap_or_else(|| panic!("stderr does not end in a newline: {self:?}"));
        assert!(!line.contains('\n'), "stderr has several lines: {self:?}");
        assert!(
            line.starts_with("aeschat: "),
            "stderr lacks the `aeschat: ` prefix: {self:?}"
        );
        line.to_owned()
    }

    /// Asserts a usage error: exit 2, nothing on stdout, something on stderr and no panic.
    pub fn usage_error(self) {
        assert_eq!(self.code(), 2, "expected exit status 2: {self:?}");
        assert!(
            self.stdout.is_empty(),
            "usage error wrote to stdout: {self:?}"
        );
        assert!(
            self.stderr.starts_with("aeschat: ")
                && self.stderr.ends_with('\n')
                && self.stderr.lines().count() == 1,
            "a usage error is one line starting with `aeschat: `: {self:?}"
        );
    }
}

/// Runs `aeschat` with `args`, feeding `stdin` from a separate thread (so a large output
/// cannot deadlock against a large input), and collects everything it writes.
pub fn run<I, S>(args: I, stdin: &[u8]) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut child = Command::new(aeschat_binary())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start the aeschat binary");
    let mut pipe = child.stdin.take().expect("stdin is piped");
    let output = std::thread::scope(|scope| {
        scope.spawn(move || {
            // A command may exit without reading all of stdin (a usage error): not a failure.
            let _ = pipe.write_all(stdin);
        });
        child.wait_with_output().expect("cannot wait for aeschat")
    });
    Run {
        status: output.status,
        stdout: output.stdout,
        stderr: String::from_utf8(output.stderr).expect("stderr is not UTF-8"),
    }
}

/// Cargo's scratch space for integration tests, `target/tmp` (what `CARGO_TARGET_TMPDIR` names
/// to a test binary, which this library is not): found from the running test binary, which is
/// `target/<profile>/deps/<test>`.
fn target_tmpdir() -> PathBuf {
    let binary = std::env::current_exe().expect("cannot tell where the test binary is");
    let target = binary
        .ancestors()
        .nth(3)
        .expect("the test binary lies in target/<profile>/deps");
    target.join("tmp")
}

/// A fresh directory under Cargo's scratch space for integration tests, removed when dropped.
/// Names carry the process id and a counter, so tests running in parallel never share one.
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    pub fn new(label: &str) -> ScratchDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("aeschat-{label}-{}-{unique}", std::process::id());
        let path = target_tmpdir().join(name);
        // Left over from an earlier, killed run with the same process id.
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("cannot create a scratch directory");
        ScratchDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes a file into the directory, readable by its owner only (as a secret's file must
    /// be to draw no warning), and returns its path as text, for command lines.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> String {
        let path = self.path.join(name);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        std::io::Write::write_all(
            &mut options.open(&path).expect("cannot create a scratch file"),
            contents.as_ref(),
        )
        .expect("cannot write a scratch file");
        path.to_str().expect("scratch paths are UTF-8").to_owned()
    }

    /// Writes `key` as a key file the way `aeschat genkey > name` would.
    pub fn key_file(&self, name: &str, key: &Key) -> String {
        self.write(name, format!("{}\n", key.to_text().as_str()))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A small, seeded xorshift64* generator: reproducible test data, not for keys in real use.
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> XorShift {
        // The all-zero state would repeat forever.
        XorShift(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..=max` (with a negligible bias, which tests do not mind).
    pub fn up_to(&mut self, max: u64) -> u64 {
        match max.checked_add(1) {
            Some(bound) => self.next_u64() % bound,
            None => self.next_u64(),
        }
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(len + 8);
        while bytes.len() < len {
            bytes.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        bytes.truncate(len);
        bytes
    }

    pub fn key(&mut self) -> Key {
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(&self.bytes(32));
        Key::from_bytes(bytes)
    }
}
