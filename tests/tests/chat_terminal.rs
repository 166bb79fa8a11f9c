//! The chat commands at a terminal: the password prompt that does not echo (through a real
//! pseudo-terminal), `--help` for each command, `aeschat passphrase`, and the weak-password
//! warning.

use aeschat_tests::chat_support;
use aeschat_tests::cli_support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chat_support::*;
use cli_support::{aeschat_binary, run};

/// Drives `aeschat client` on a pseudo-terminal the way a person would: waits for the prompt
/// and for echo to be off, types the password, waits to be connected, says hello, quits.
/// Prints everything the terminal showed, and exits with the client's status.
const TERMINAL_SCRIPT: &str = r#"
import os, pty, select, sys, termios, time

binary, address, password = sys.argv[1], sys.argv[2], sys.argv[3].encode()
pid, fd = pty.fork()
if pid == 0:
    os.execv(binary, [binary, "client", "--connect", address])

shown = b""
deadline = time.time() + 30

def fail(why):
    sys.stdout.buffer.write(shown)
    print("\nTERMINAL SCRIPT FAILED: " + why)
    os.kill(pid, 9)
    sys.exit(99)

def read_until(wanted):
    global shown
    while wanted not in shown:
        left = deadline - time.time()
        if left <= 0:
            fail("timed out waiting for %r" % wanted)
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                if wanted is None:
                    return
                fail("the terminal closed while waiting for %r" % wanted)
            shown += chunk

def read_to_end():
    global shown
    while time.time() < deadline:
        ready, _, _ = select.select([fd], [], [], deadline - time.time())
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                return
            if not chunk:
                return
            shown += chunk
    fail("the client did not end")

read_until(b"Enter shared password: ")
# Typing before echo is switched off would show the password no matter what aeschat does.
# (On Linux, terminal attributes read through the master side are the terminal's own.)
while termios.tcgetattr(fd)[3] & termios.ECHO:
    if time.time() > deadline:
        fail("echo was never switched off")
    time.sleep(0.01)
os.write(fd, password + b"\r")
read_until(b"[+] Connected to the server")
os.write(fd, b"hello from a terminal\r")
time.sleep(0.2)
os.write(fd, b"/quit\r")
read_to_end()
_, status = os.waitpid(pid, 0)
sys.stdout.buffer.write(shown)
sys.exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 98)
"#;

fn python_with_pty() -> Option<&'static str> {
    let ok = Command::new("python3")
        .args(["-c", "import pty, termios, select"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    ok.then_some("python3")
}

#[test]
fn the_password_prompt_does_not_echo_on_a_terminal() {
    let Some(python) = python_with_pty() else {
        eprintln!("skipped: python3 with the pty module is needed to drive a pseudo-terminal");
        return;
    };
    let files = Files::new("chat-pty");
    let (mut server, address) = start_server(&files, &["--once"]);
    let mut child = Command::new(python)
        .args(["-c", TERMINAL_SCRIPT])
        .arg(aeschat_binary())
        .arg(&address)
        .arg(PASSWORD)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start python3");
    // The script has its own 30 s deadline; this one only guards against the script itself.
    let deadline = Instant::now() + PATIENCE + Duration::from_secs(10);
    while child.try_wait().expect("cannot wait for python3").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the terminal script did not finish");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child
        .wait_with_output()
        .expect("cannot collect the script's output");
    let shown = String::from_utf8_lossy(&output.stdout);
    let errors = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "the client failed on the terminal:\n{shown}\n{errors}\n{}",
        server.transcript()
    );
    assert!(shown.contains("Enter shared password: "), "{shown}");
    assert!(shown.contains("[+] Connected to the server"), "{shown}");
    assert!(
        !shown.contains(PASSWORD) && !shown.contains("otter pizza"),
        "the password appeared on the terminal:\n{shown}"
    );
    server.wait_stdout_line("[Client]: hello from a terminal");
    server.assert_exit(0);
}

#[test]
fn each_chat_command_has_help_with_examples() {
    for (command, expected) in [
        (
            "server",
            &["--listen", "--once", "--max-failures", "--fail-delay"][..],
        ),
        ("client", &["--connect"][..]),
    ] {
        let help = run([command, "--help"], b"").success_text();
        for option in expected.iter().chain(&[
            "--password-file",
            "--key-file",
            "--timeout",
            "AESCHAT_PASSWORD",
            "Examples:",
            "Exit status",
            "aeschat passphrase",
        ]) {
            assert!(
                help.contains(option),
                "`{command} --help` lacks {option}:\n{help}"
            );
        }
        // Protocol 2 stretches no password: no work factor to set or to read about.
        assert!(
            !help.to_lowercase().contains("iterations"),
            "`{command} --help` still mentions iterations:\n{help}"
        );
    }
    let help = run(["passphrase", "--help"], b"").success_text();
    assert!(help.contains("45 bits"), "{help}");
    assert!(help.contains("Examples:"), "{help}");
    let overview = run(["--help"], b"").success_text();
    assert!(overview.contains("passphrase"), "{overview}");
}

#[test]
fn passphrase_prints_five_random_words() {
    let first = run(["passphrase"], b"").success_text();
    let second = run(["passphrase"], b"").success_text();
    let words: Vec<&str> = first.trim_end().split('-').collect();
    assert_eq!(words.len(), 5, "{first}");
    assert!(words
        .iter()
        .all(|word| word.len() >= 3 && word.bytes().all(|b| b.is_ascii_lowercase())));
    assert_ne!(first, second);
    let longer = run(["passphrase", "--words", "12"], b"").success_text();
    assert_eq!(longer.trim_end().split('-').count(), 12);
    run(["passphrase", "--words", "3"], b"").usage_error();
}

/// README: "aeschat warns (but goes on) when a password is short or obviously weak". Each weak
/// kind draws the warning naming why, and the server still listens; a 10-character password of
/// words and a generated passphrase draw none.
#[test]
fn a_weak_password_draws_a_warning_and_the_server_still_listens() {
    let files = Files::new("weak-password");
    for (n, (password, why)) in [
        ("bluefish7", Some("shorter than 10 characters")),
        ("1234567890123", Some("only digits")),
        ("Password12345", Some("it is built on a common password")),
        ("aaaaaaaaaaaaaaaa", Some("it repeats a few characters")),
        ("tidal-orbit", None),
        ("otter-pizza-violet-kettle-brave", None),
    ]
    .into_iter()
    .enumerate()
    {
        let file = files.password(&format!("pass-{n}"), password);
        let mut server = Peer::spawn(
            "server",
            &[
                "server",
                "--listen",
                "127.0.0.1:0",
                "--password-file",
                &file,
            ],
            &[],
        );
        server.wait_stderr("listening on");
        let stderr = server.stderr_text();
        match why {
            Some(why) => assert!(
                stderr.contains(&format!("warning: this password is weak ({why})")),
                "{password:?}: {stderr}"
            ),
            None => assert!(!stderr.contains("weak"), "{password:?}: {stderr}"),
        }
        assert!(
            !stderr.contains(password),
            "the warning shows the password: {stderr}"
        );
        server.kill();
    }
}
