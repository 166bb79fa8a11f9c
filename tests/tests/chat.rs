//! The chat as people use it: real `aeschat server` and `aeschat client` processes talking
//! over loopback. Messages both ways (Unicode, the largest size, one too large), wrong
//! passwords, clean and unclean ends, terminal-safe printing, key files and passwords from the
//! environment, IPv6 and host names.
//!
//! Every wait has a deadline and every process is killed when its test ends; servers listen
//! on port 0, so the tests run alone or in parallel.

use aeschat_tests::chat_support;
use aeschat_tests::cli_support;

use aeschat_core::session::MAX_MESSAGE_LEN;
use chat_support::*;
use cli_support::XorShift;

#[test]
fn messages_flow_both_ways_with_unicode_and_at_the_maximum_size() {
    let files = Files::new("chat-both-ways");
    let (mut server, mut client, _) = connected_pair(&files, &["--once"]);

    client.type_line("hello! ünïcödé 🙂");
    server.wait_stdout_line("[Client]: hello! ünïcödé 🙂");
    server.type_line("hi there! 你好, κόσμε");
    client.wait_stdout_line("[Server]: hi there! 你好, κόσμε");

    // Exactly the largest message, in two-byte characters one way and ASCII the other.
    let from_client = "é".repeat(MAX_MESSAGE_LEN / 2);
    assert_eq!(from_client.len(), MAX_MESSAGE_LEN);
    client.type_line(&from_client);
    server.wait_stdout_line(&format!("[Client]: {from_client}"));
    let from_server = "x".repeat(MAX_MESSAGE_LEN);
    server.type_line(&from_server);
    client.wait_stdout_line(&format!("[Server]: {from_server}"));

    client.type_line("/quit");
    client.assert_exit(0);
    server.assert_exit(0);
    // Only peer text reaches stdout, one line per message.
    assert_eq!(
        server.stdout_text().lines().count(),
        2,
        "{}",
        server.transcript()
    );
    assert_eq!(
        client.stdout_text().lines().count(),
        2,
        "{}",
        client.transcript()
    );
    assert!(client
        .stderr_text()
        .starts_with("=== AES Encrypted Chat Client ===\n"));
    assert!(server
        .stderr_text()
        .starts_with("=== AES Encrypted Chat Server ===\n"));
}

#[test]
fn an_overlong_line_is_refused_locally_and_the_conversation_goes_on() {
    let files = Files::new("chat-overlong");
    let (mut server, mut client, _) = connected_pair(&files, &["--once"]);

    client.type_line(&"y".repeat(MAX_MESSAGE_LEN + 1));
    let refusal = client.wait_stderr("not sent");
    assert!(
        refusal.starts_with(
            "aeschat: not sent: line 1 of the input (65537 bytes): The message is too long: at \
             most 65536 bytes"
        ),
        "{refusal}"
    );
    // Much longer than any buffer: refused too, without reading it all into memory.
    client.type_line(&"z".repeat(5 * MAX_MESSAGE_LEN));
    let refusal = client.wait_stderr_count("not sent", 2);
    assert!(
        refusal.starts_with("aeschat: not sent: line 2 of the input: The message is too long"),
        "{refusal}"
    );

    client.type_line("still here");
    server.wait_stdout_line("[Client]: still here");
    server.type_line("me too");
    client.wait_stdout_line("[Server]: me too");
    client.type_line("/quit");
    client.assert_exit(0);
    server.assert_exit(0);
    assert_eq!(server.stdout_text(), "[Client]: still here\n");
}

#[test]
fn a_wrong_password_fails_with_status_3_on_both_sides_and_delivers_nothing() {
    let files = Files::new("chat-wrong-password");
    let (mut server, address) = start_server(&files, &["--once"]);
    server.type_line("secret words for the right person");
    let wrong = files.password("wrong", "a different but long passphrase");
    let mut client = start_client_with("client", &address, &wrong, &[]);
    client.type_line("secret words for the wrong person");

    client.assert_exit(3);
    server.assert_exit(3);
    for peer in [&client, &server] {
        assert_eq!(peer.stdout(), b"", "{}", peer.transcript());
        let stderr = peer.stderr_text();
        assert!(
            stderr.contains("aeschat: Authentication failed"),
            "{}",
            peer.transcript()
        );
        assert!(!stderr.contains("connected"), "{}", peer.transcript());
    }
}

#[test]
fn quit_closes_the_conversation_and_the_server_says_the_client_left() {
    let files = Files::new("chat-quit");
    let (mut server, mut client, _) = connected_pair(&files, &["--once"]);
    client.type_line("bye");
    client.type_line("/quit");
    server.wait_stdout_line("[Client]: bye");
    server.wait_stderr("[-] Client left");
    client.assert_exit(0);
    server.assert_exit(0);
    for peer in [&client, &server] {
        let problems = peer
            .stderr_text()
            .lines()
            .filter(|line| line.starts_with("aeschat: "))
            .count();
        assert_eq!(
            problems,
            0,
            "a clean close reported a problem\n{}",
            peer.transcript()
        );
    }
}

#[test]
fn the_end_of_the_servers_input_closes_and_the_client_says_the_server_left() {
    let files = Files::new("chat-eof");
    let (mut server, mut client, _) = connected_pair(&files, &[]);
    server.type_line("last words");
    server.close_stdin();
    client.wait_stdout_line("[Server]: last words");
    client.wait_stderr("[-] Server left");
    client.assert_exit(0);
    // Without --once too: nobody is left to type to a next client.
    server.assert_exit(0);
}

#[test]
fn the_end_of_the_clients_input_closes_cleanly() {
    let files = Files::new("chat-client-eof");
    let (mut server, mut client, _) = connected_pair(&files, &["--once"]);
    client.type_line("sent before the end");
    client.close_stdin();
    server.wait_stdout_line("[Client]: sent before the end");
    server.wait_stderr("[-] Client left");
    client.assert_exit(0);
    server.assert_exit(0);
}

#[test]
fn a_killed_client_is_reported_as_a_truncated_conversation() {
    let files = Files::new("chat-killed-client");
    let (mut server, mut client, _) = connected_pair(&files, &["--once"]);
    client.type_line("about to vanish");
    server.wait_stdout_line("[Client]: about to vanish");
    client.kill();
    server.assert_exit(1);
    let stderr = server.stderr_text();
    assert!(
        stderr.contains("messages may be missing"),
        "{}",
        server.transcript()
    );
    assert!(
        !stderr.contains("[-] Client left"),
        "{}",
        server.transcript()
    );
}

#[test]
fn a_killed_server_is_reported_as_a_truncated_conversation() {
    let files = Files::new("chat-killed-server");
    let (mut server, mut client, _) = connected_pair(&files, &[]);
    server.kill();
    client.assert_exit(1);
    let line = client.wait_error_line();
    assert!(
        line.contains("messages may be missing"),
        "{}",
        client.transcript()
    );
}

#[test]
fn the_server_serves_the_next_client_after_one_leaves() {
    let files = Files::new("chat-next-client");
    let (mut server, address) = start_server(&files, &[]);
    for round in 1..=2 {
        let mut client = start_client(&files, &address);
        server.wait_stderr_count("[+] Client connected", round);
        client.type_line(&format!("hello from client {round}"));
        server.wait_stdout_line(&format!("[Client]: hello from client {round}"));
        server.type_line(&format!("welcome, client {round}"));
        client.wait_stdout_line(&format!("[Server]: welcome, client {round}"));
        client.type_line("/quit");
        client.assert_exit(0);
        server.wait_stderr_count("[-] Client left", round);
        // Listening again before the next client comes.
        server.wait_stderr_count("listening on", round + 1);
    }
    assert!(server.is_running(), "{}", server.transcript());
    server.close_stdin();
    server.assert_exit(0);
}

#[test]
fn the_servers_quit_ends_the_conversation_but_not_the_server() {
    let files = Files::new("chat-server-quit");
    let (mut server, mut client, address) = connected_pair(&files, &[]);
    server.type_line("/quit");
    client.wait_stderr("[-] Server left");
    client.assert_exit(0);
    server.wait_stderr_count("listening on", 2);
    let mut again = start_client(&files, &address);
    again.wait_stderr("[+] Connected to the server");
    again.type_line("/quit");
    again.assert_exit(0);
    server.close_stdin();
    server.assert_exit(0);
}

#[test]
fn escape_sequences_in_peer_text_cannot_reach_the_terminal() {
    let files = Files::new("chat-escapes");
    let (mut server, mut client, _) = connected_pair(&files, &["--once"]);
    // Clear screen, red text, set the window title, bell, backspace, carriage return, a C1
    // CSI, a fake status line after a carriage return, and a right-to-left override.
    let nasty = "\x1b[2J\x1b[31mred\x1b]0;owned\x07\x08\r[+] fake status \u{9b}31m \u{202e}txt.exe";
    client.type_line(nasty);
    server.type_line(nasty);
    let shown = "\\x1b[2J\\x1b[31mred\\x1b]0;owned\\x07\\x08\\r[+] fake status \\x9b31m \
                 \\u{202e}txt.exe";
    server.wait_stdout_line(&format!("[Client]: {shown}"));
    client.wait_stdout_line(&format!("[Server]: {shown}"));
    // Invalid UTF-8 is shown, lossily, rather than passed on.
    client.type_bytes(b"bytes \xff\xfe\n");
    server.wait_stdout_line("[Client]: bytes \u{fffd}\u{fffd}");
    client.type_line("/quit");
    client.assert_exit(0);
    server.assert_exit(0);
    for peer in [&server, &client] {
        let stdout = peer.stdout();
        assert!(
            !stdout
                .iter()
                .any(|&byte| byte < 0x20 && byte != b'\n' || byte == 0x7f),
            "control bytes reached stdout: {}",
            peer.transcript()
        );
        assert!(!String::from_utf8_lossy(&stdout).contains('\u{202e}'));
    }
}

#[test]
fn a_pre_shared_key_file_works_and_a_mode_mismatch_is_refused() {
    let files = Files::new("chat-key-file");
    let key_file = files.dir.key_file("chat.key", &XorShift::new(7).key());
    let mut server = Peer::spawn(
        "server",
        &["server", "--listen", "127.0.0.1:0", "--key-file", &key_file],
        &[],
    );
    let address = server.listening_address();
    let mut args = vec!["client", "--connect", &address, "--key-file", &key_file];
    let mut client = Peer::spawn("client", &args, &[]);
    client.type_line("keyed hello");
    server.wait_stdout_line("[Client]: keyed hello");
    client.type_line("/quit");
    client.assert_exit(0);

    // A password client meets the key-file server: neither falls back to the other mode.
    args = vec!["client", "--connect", &address];
    args.extend(["--password-file", files.password_file.as_str()]);
    let mut mismatched = Peer::spawn("mismatched client", &args, &[]);
    mismatched.assert_exit(1);
    assert!(
        mismatched
            .stderr_text()
            .contains("One side uses a password and the other a key file"),
        "{}",
        mismatched.transcript()
    );
    server.wait_stderr("One side uses a password and the other a key file");
    assert!(server.is_running(), "{}", server.transcript());
}

#[test]
fn the_password_can_come_from_the_environment() {
    let files = Files::new("chat-environment");
    let (mut server, address) = start_server(&files, &["--once"]);
    let args = ["client", "--connect", address.as_str()];
    let mut client = Peer::spawn("client", &args, &[("AESCHAT_PASSWORD", PASSWORD)]);
    client.type_line("from the environment");
    server.wait_stdout_line("[Client]: from the environment");
    client.close_stdin();
    client.assert_exit(0);
    server.assert_exit(0);
    assert!(!client.stderr_text().contains(PASSWORD));
}

#[test]
fn a_weak_password_draws_a_warning_but_works() {
    let files = Files::new("chat-weak");
    let weak = files.password("weak", "hunter2");
    let mut server = Peer::spawn(
        "server",
        &[
            "server",
            "--listen",
            "127.0.0.1:0",
            "--once",
            "--password-file",
            &weak,
        ],
        &[],
    );
    let warning = server.wait_stderr("weak");
    assert!(warning.starts_with("aeschat: warning: "), "{warning}");
    assert!(warning.contains("aeschat passphrase"), "{warning}");
    let address = server.listening_address();
    let mut client = start_client_with("client", &address, &weak, &[]);
    client.type_line("/quit");
    client.assert_exit(0);
    server.assert_exit(0);
    assert!(!server.stderr_text().contains("hunter2"));
}

#[test]
fn without_a_terminal_or_a_password_source_it_is_a_usage_error() {
    for command in ["server", "client"] {
        let mut peer = Peer::spawn(command, &[command], &[]);
        peer.assert_exit(2);
        let stderr = peer.stderr_text();
        assert!(
            stderr.contains("aeschat: no password: standard input is not a terminal"),
            "{}",
            peer.transcript()
        );
    }
    let files = Files::new("chat-usage");
    let mut both = Peer::spawn(
        "client",
        &[
            "client",
            "--password-file",
            &files.password_file,
            "--key-file",
            "k",
        ],
        &[],
    );
    both.assert_exit(2);
    let empty = files.password("empty", "");
    let mut empty_password = Peer::spawn("client", &["client", "--password-file", &empty], &[]);
    empty_password.assert_exit(2);
    assert!(empty_password.stderr_text().contains("empty"));
    let mut bad_address = Peer::spawn("client", &["client", "--connect", "nowhere:99999"], &[]);
    bad_address.assert_exit(2);
    for peer in [&both, &empty_password, &bad_address] {
        // Besides the banner, which may come first.
        let stderr = peer.stderr_text();
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.starts_with("===")).collect();
        assert!(
            matches!(&lines[..], [line] if line.starts_with("aeschat: ")),
            "a usage error is one line starting with `aeschat: `: {}",
            peer.transcript()
        );
    }
}

#[test]
fn a_missing_server_is_a_clear_failure() {
    let files = Files::new("chat-no-server");
    // Bind and drop a listener to find a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .unwrap()
        .port();
    // Without waiting for a server to start.
    let mut client = start_client_with(
        "client",
        &format!("127.0.0.1:{port}"),
        &files.password_file,
        &["--wait", "0"],
    );
    client.assert_exit(1);
    let line = client.wait_error_line();
    assert!(
        line.starts_with("aeschat: cannot connect to 127.0.0.1:"),
        "{line}"
    );
}

#[test]
fn ipv6_loopback_and_host_names_work() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipped: this machine has no IPv6 loopback");
        return;
    }
    let files = Files::new("chat-ipv6");
    let (mut server, address) = start_server_with(&files, &["--listen", "[::1]:0"], &["--once"]);
    assert!(address.starts_with("[::1]:"), "{address}");
    let mut client = start_client(&files, &address);
    client.type_line("over IPv6");
    server.wait_stdout_line("[Client]: over IPv6");
    client.type_line("/quit");
    client.assert_exit(0);
    server.assert_exit(0);

    // Every interface, both families: a client naming "localhost" gets through whichever
    // address the name resolves to first.
    let (mut server, address) = start_server_with(&files, &["--listen", "0"], &["--once"]);
    let port = address.rsplit(':').next().unwrap();
    let mut client = start_client(&files, &format!("localhost:{port}"));
    client.type_line("by name");
    server.wait_stdout_line("[Client]: by name");
    client.type_line("/quit");
    client.assert_exit(0);
    server.assert_exit(0);
}
