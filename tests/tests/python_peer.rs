//! The proof that `docs/PROTOCOL.md` is enough to interoperate: `tests/src/protocol_peer.py`, a
//! peer written from the document alone (with the CPace draft's primitives from
//! `vectors/sessions/cpace_ristretto.py`, not aeschat's code), against the real `aeschat`
//! binary over loopback: as client and as server, with a password and with a key file, texts
//! both ways (non-ASCII, and as long as the receiver announced), both ways of closing, a limit
//! the Python side announces below the default, and the documented failures: a wrong password
//! (exit status 3 and alert 1 on whichever side did not detect it) and a mode mismatch
//! (alert 3).
//!
//! Needs python3 with `cryptography` (`.ci/run` installs it); skips with a message without.

use std::process::Command;

use aeschat_tests::chat_support::{start_client_with, start_server, Files, Peer};
use aeschat_tests::cli_support::{run, workspace_dir};

use aeschat_core::session::MAX_MESSAGE_LEN;

/// True when python3 can import `cryptography`; otherwise says why the test is skipped.
fn python_ready() -> bool {
    let ready = Command::new("python3")
        .args(["-c", "import cryptography"])
        .output()
        .is_ok_and(|output| output.status.success());
    if !ready {
        eprintln!("skipped: python3 with the cryptography package is needed for protocol_peer.py");
    }
    ready
}

/// `python3 tests/src/protocol_peer.py ARGS`, captured like an `aeschat` process.
fn python_peer(name: &str, args: &[&str]) -> Peer {
    let mut command = Command::new("python3");
    command
        .arg(workspace_dir().join("tests/src/protocol_peer.py"))
        .args(args);
    Peer::spawn_command(name, command)
}

/// The Python peer as a client of `address`, in `mode` ("password" or "key") with the secret in
/// `secret_file`, plus `rest` (texts to send and expect, options).
fn python_client(name: &str, mode: &str, secret_file: &str, address: &str, rest: &[&str]) -> Peer {
    let mut args = vec![
        "--role",
        "client",
        "--mode",
        mode,
        "--secret-file",
        secret_file,
    ];
    args.extend_from_slice(&["--connect", address]);
    args.extend_from_slice(rest);
    python_peer(name, &args)
}

/// The Python peer as a server on a free loopback port (its `listening_address`), like
/// [`python_client`] otherwise.
fn python_server(name: &str, mode: &str, secret_file: &str, rest: &[&str]) -> Peer {
    let mut args = vec![
        "--role",
        "server",
        "--mode",
        mode,
        "--secret-file",
        secret_file,
    ];
    args.extend_from_slice(&["--listen", "127.0.0.1:0"]);
    args.extend_from_slice(rest);
    python_peer(name, &args)
}

/// A key file from `aeschat genkey`, exactly as it writes it.
fn genkey(files: &Files) -> String {
    files.dir.write("key", run(["genkey"], b"").success())
}

/// Everything the Python peer printed on stdout: one line per received text.
fn received_lines(peer: &Peer) -> Vec<String> {
    peer.stdout_text().lines().map(str::to_owned).collect()
}

#[test]
fn python_client_and_aeschat_server_chat_with_a_password_and_the_python_side_closes() {
    if !python_ready() {
        return;
    }
    let files = Files::new("pypeer-client-password");
    let (mut server, address) = start_server(&files, &["--once"]);
    // The longest text the binary announces (65,536 bytes), in two-byte characters.
    let long_up = "é".repeat(MAX_MESSAGE_LEN / 2);
    let long_down = "x".repeat(MAX_MESSAGE_LEN);
    let mut python = python_client(
        "python client",
        "password",
        &files.password_file,
        &address,
        &[
            "--send",
            "héllo from Python, ünïcödé 🙂",
            "--send",
            &long_up,
            "--expect",
            "hi Python — 你好, κόσμε",
            "--expect",
            &long_down,
        ],
    );
    server.wait_stderr("[+] Client connected");
    server.wait_stdout_line("[Client]: héllo from Python, ünïcödé 🙂");
    server.wait_stdout_line(&format!("[Client]: {long_up}"));
    server.type_line("hi Python — 你好, κόσμε");
    server.type_line(&long_down);
    // Python has everything it expects and sends its close; the server answers with its own.
    python.assert_exit(0);
    server.assert_exit(0);
    assert_eq!(
        received_lines(&python),
        ["hi Python — 你好, κόσμε", long_down.as_str()],
        "{}",
        python.transcript()
    );
    assert!(
        python.stderr_text().contains("closed cleanly"),
        "{}",
        python.transcript()
    );
    server.wait_stderr("[-] Client left");
}

#[test]
fn python_server_and_aeschat_client_chat_with_a_password_and_the_binary_closes() {
    if !python_ready() {
        return;
    }
    let files = Files::new("pypeer-server-password");
    let long_up = "y".repeat(MAX_MESSAGE_LEN);
    let mut python = python_server(
        "python server",
        "password",
        &files.password_file,
        &[
            "--linger",
            "--send",
            "welcome from the Python server ✓",
            "--expect",
            "thanks — ça marche 🙂",
            "--expect",
            &long_up,
        ],
    );
    let address = python.listening_address();
    let mut client = start_client_with("client", &address, &files.password_file, &[]);
    client.wait_stderr("[+] Connected to the server");
    // Sent by the Python server right after its ServerFinished (section 6.2 allows it).
    client.wait_stdout_line("[Server]: welcome from the Python server ✓");
    client.type_line("thanks — ça marche 🙂");
    client.type_line(&long_up);
    client.type_line("/quit");
    // The binary closes first; the lingering Python server answers with its close.
    client.assert_exit(0);
    python.assert_exit(0);
    assert_eq!(
        received_lines(&python),
        ["thanks — ça marche 🙂", long_up.as_str()],
        "{}",
        python.transcript()
    );
    client.wait_stderr("[-] Conversation closed");
}

#[test]
fn python_client_and_aeschat_server_chat_with_a_key_file() {
    if !python_ready() {
        return;
    }
    let files = Files::new("pypeer-client-key");
    let key = genkey(&files);
    let mut server = Peer::spawn(
        "server",
        &[
            "server",
            "--key-file",
            &key,
            "--listen",
            "127.0.0.1:0",
            "--once",
        ],
        &[],
    );
    let address = server.listening_address();
    let mut python = python_client(
        "python client",
        "key",
        &key,
        &address,
        &[
            "--send",
            "key mode from Python: Grüße 🔑",
            "--expect",
            "and back: ✓",
        ],
    );
    server.wait_stdout_line("[Client]: key mode from Python: Grüße 🔑");
    server.type_line("and back: ✓");
    python.assert_exit(0);
    server.assert_exit(0);
    assert_eq!(
        received_lines(&python),
        ["and back: ✓"],
        "{}",
        python.transcript()
    );
}

#[test]
fn python_server_with_a_key_file_and_a_smaller_limit_is_obeyed_by_the_aeschat_client() {
    if !python_ready() {
        return;
    }
    let files = Files::new("pypeer-server-key");
    let key = genkey(&files);
    // The Python side announces 1,000 bytes: the binary must send exactly that much, and
    // refuse one byte more locally (section 3.2), and the conversation goes on.
    let longest = "z".repeat(1000);
    let mut python = python_server(
        "python server",
        "key",
        &key,
        &[
            "--max-message-len",
            "1000",
            "--linger",
            "--send",
            "limit 1000, key mode ✓",
            "--expect",
            &longest,
            "--expect",
            "still here 🙂",
        ],
    );
    let address = python.listening_address();
    let mut client = Peer::spawn(
        "client",
        &["client", "--key-file", &key, "--connect", &address],
        &[],
    );
    client.wait_stdout_line("[Server]: limit 1000, key mode ✓");
    client.type_line(&longest);
    client.type_line(&"z".repeat(1001));
    let refusal = client.wait_stderr("not sent");
    assert!(
        refusal.contains("The message is too long: at most 1000 bytes"),
        "{refusal}"
    );
    client.type_line("still here 🙂");
    client.close_stdin();
    client.assert_exit(0);
    python.assert_exit(0);
    assert_eq!(
        received_lines(&python),
        [longest.as_str(), "still here 🙂"],
        "{}",
        python.transcript()
    );
}

#[test]
fn a_wrong_password_from_a_python_client_fails_with_status_3_and_alert_1() {
    if !python_ready() {
        return;
    }
    let files = Files::new("pypeer-wrong-client");
    let wrong = files.password("wrong", "otter pizza violet kettle brave dunes");
    let (mut server, address) = start_server(&files, &["--once"]);
    let mut python = python_client(
        "python client",
        "password",
        &wrong,
        &address,
        &["--send", "never sent"],
    );
    // The server detects it on the ClientFinished and sends alert 1 (sections 3.3, 7.1).
    server.assert_exit(3);
    assert!(
        server
            .wait_error_line()
            .starts_with("aeschat: Authentication failed: "),
        "{}",
        server.transcript()
    );
    python.assert_exit(3);
    assert!(
        python
            .stderr_text()
            .contains("AuthenticationFailed: alert 1 (AuthenticationFailed) received"),
        "{}",
        python.transcript()
    );
    assert!(server.stdout().is_empty(), "{}", server.transcript());
}

#[test]
fn a_wrong_password_on_a_python_server_fails_the_aeschat_client_with_status_3() {
    if !python_ready() {
        return;
    }
    let files = Files::new("pypeer-wrong-server");
    let wrong = files.password("wrong", "otter pizza violet kettle brave dunes");
    let mut python = python_server(
        "python server",
        "password",
        &wrong,
        &["--send", "never sent"],
    );
    let address = python.listening_address();
    let mut client = start_client_with("client", &address, &files.password_file, &[]);
    // The Python server finds the ClientFinished wrong and sends alert 1; the client reports it.
    client.assert_exit(3);
    assert!(
        client
            .wait_error_line()
            .starts_with("aeschat: Authentication failed: "),
        "{}",
        client.transcript()
    );
    python.assert_exit(3);
    assert!(
        python
            .stderr_text()
            .contains("AuthenticationFailed: wrong ClientFinished"),
        "{}",
        python.transcript()
    );
    assert!(client.stdout().is_empty(), "{}", client.transcript());
}

#[test]
fn a_python_server_with_a_key_refuses_an_aeschat_client_with_a_password_by_alert_3() {
    if !python_ready() {
        return;
    }
    let files = Files::new("pypeer-mode");
    let key = genkey(&files);
    let mut python = python_server("python server", "key", &key, &[]);
    let address = python.listening_address();
    let mut client = start_client_with("client", &address, &files.password_file, &[]);
    client.assert_exit(1);
    assert!(
        client
            .wait_error_line()
            .starts_with("aeschat: One side uses a password and the other a key file"),
        "{}",
        client.transcript()
    );
    python.assert_exit(1);
    assert!(
        python.stderr_text().contains("ModeMismatch"),
        "{}",
        python.transcript()
    );
}

#[test]
fn a_python_client_without_a_clock_sends_an_empty_text_and_the_aeschat_server_closes_first() {
    if !python_ready() {
        return;
    }
    let files = Files::new("pypeer-no-clock");
    let (mut server, address) = start_server(&files, &["--once"]);
    // Time 0 in the hello and in every token (sections 3.1, 5.2 and 10), an empty text
    // (section 5.1), and the binary's close first, answered by the lingering Python side.
    let mut python = python_client(
        "python client",
        "password",
        &files.password_file,
        &address,
        &[
            "--no-clock",
            "--linger",
            "--send",
            "",
            "--send",
            "after an empty text",
            "--expect",
            "seen",
        ],
    );
    server.wait_stdout_line("[Client]: after an empty text");
    server.type_line("seen");
    server.close_stdin();
    server.assert_exit(0);
    python.assert_exit(0);
    assert_eq!(
        server.stdout_text(),
        "[Client]: \n[Client]: after an empty text\n",
        "{}",
        server.transcript()
    );
    assert_eq!(received_lines(&python), ["seen"], "{}", python.transcript());
    // With no clock on one side there is no offset to warn about.
    assert!(
        !server.stderr_text().contains("clock"),
        "{}",
        server.transcript()
    );
}
