//! What a real `aeschat` process drew from the operating system's random number generator,
//! observed without changing it: a tiny `LD_PRELOAD` library whose `getrandom` makes the real
//! system call and appends the bytes it returned to a file. With it a test knows a binary's
//! ephemeral secrets (its CPace scalar is the 32 bytes it draws right after its nonce, which
//! travels in its hello: docs/PROTOCOL.md section 4.2, `Engine::try_new`), and can look for
//! them in the process's memory.
//!
//! The binary's `getrandom` crate finds the function with `dlsym(RTLD_DEFAULT, "getrandom")`,
//! so the preloaded one is the one it calls. The library copies nothing into the process's
//! memory: it writes the caller's own buffer to the file in one `write` (one `O_APPEND` write,
//! so draws from several threads never interleave inside one draw). Draws with `GRND_INSECURE`
//! are not logged: Rust's standard library takes its `HashMap` keys that way (16 bytes the
//! first time a thread makes a map), and counting them would blur a count of aeschat's own
//! draws. It is built with `cc`, the linker every Rust build on Linux already needs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const SHIM: &str = r#"
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

ssize_t getrandom(void *buf, size_t len, unsigned int flags) {
    long got = syscall(SYS_getrandom, buf, len, flags);
    /* GRND_INSECURE (4): the standard library's HashMap keys, not a secret of aeschat's. */
    if (got > 0 && (flags & 4) == 0) {
        const char *path = getenv("AESCHAT_TEST_RANDOM_LOG");
        if (path != NULL) {
            int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
            if (fd >= 0) {
                ssize_t ignored = write(fd, buf, (size_t)got);
                (void)ignored;
                close(fd);
            }
        }
    }
    return (ssize_t)got;
}
"#;

/// The preload library, built once per test process into the build directory beside the test
/// binaries (so nothing is left behind in the system's temporary directory). Each process
/// builds under its own name and renames the result into place: the rename is atomic, and
/// every build is the same library, so concurrent test processes never see half a file.
fn shim() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let test_binary = std::env::current_exe().expect("the test binary's path");
        let dir = test_binary
            .parent()
            .expect("the test binary is in a directory")
            .join("random-log");
        std::fs::create_dir_all(&dir).expect("cannot make a directory for the preload library");
        let pid = std::process::id();
        let source = dir.join(format!("random_log.{pid}.c"));
        let built = dir.join(format!("librandom_log.{pid}.so"));
        let library = dir.join("librandom_log.so");
        std::fs::write(&source, SHIM).expect("cannot write the preload library's source");
        let output = Command::new("cc")
            .args(["-shared", "-fPIC", "-O2", "-o"])
            .arg(&built)
            .arg(&source)
            .output()
            .expect("cc is needed to build the random-log preload library");
        let _ = std::fs::remove_file(&source);
        assert!(
            output.status.success(),
            "cc failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::fs::rename(&built, &library).expect("cannot move the preload library into place");
        library
    })
}

/// One process's log of random bytes.
pub struct RandomLog {
    path: PathBuf,
    preload: String,
    file: String,
}

impl RandomLog {
    /// A log in `dir` (a test's scratch directory), empty so far.
    pub fn new(dir: &Path, name: &str) -> RandomLog {
        let path = dir.join(format!("{name}.random"));
        let _ = std::fs::remove_file(&path);
        RandomLog {
            preload: shim().display().to_string(),
            file: path.display().to_string(),
            path,
        }
    }

    /// The environment that makes a process log its random bytes here.
    pub fn env(&self) -> [(&str, &str); 2] {
        [
            ("LD_PRELOAD", self.preload.as_str()),
            ("AESCHAT_TEST_RANDOM_LOG", self.file.as_str()),
        ]
    }

    /// Every byte logged so far, in the order drawn.
    pub fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.path).unwrap_or_default()
    }

    /// The 32 bytes drawn right after `nonce`: the scalar seed of the handshake that drew that
    /// nonce. Panics unless the nonce was drawn exactly once and 32 bytes followed it.
    pub fn seed_after(&self, nonce: &[u8]) -> [u8; 32] {
        let bytes = self.bytes();
        let at: Vec<usize> = bytes
            .windows(nonce.len())
            .enumerate()
            .filter(|(_, window)| *window == nonce)
            .map(|(at, _)| at)
            .collect();
        let [at] = at[..] else {
            panic!(
                "the nonce {nonce:02x?} occurs {} times in the {} random bytes logged, not once \
                 (was the process started with this log's environment?)",
                at.len(),
                bytes.len()
            );
        };
        bytes
            .get(at + nonce.len()..at + nonce.len() + 32)
            .and_then(|seed| seed.try_into().ok())
            .expect("32 random bytes after the nonce")
    }
}
