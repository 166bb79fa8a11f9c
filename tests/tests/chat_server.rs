//! The server under pressure: a second caller during a conversation, a caller that connects
//! and says nothing, and someone guessing passwords.

use aeschat_tests::chat_support;

use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use chat_support::*;

#[test]
fn a_second_client_is_refused_as_busy_without_disturbing_the_conversation() {
    let files = Files::new("chat-busy");
    let (mut server, mut client, address) = connected_pair(&files, &["--once"]);
    client.type_line("before the intruder");
    server.wait_stdout_line("[Client]: before the intruder");

    let mut second = start_client_with("second client", &address, &files.password_file, &[]);
    second.assert_exit(1);
    let line = second.wait_error_line();
    assert!(line.contains("busy"), "{}", second.transcript());
    server.wait_stderr("busy with another conversation");

    client.type_line("after the intruder");
    server.wait_stdout_line("[Client]: after the intruder");
    server.type_line("still with you");
    client.wait_stdout_line("[Server]: still with you");
    client.type_line("/quit");
    client.assert_exit(0);
    server.assert_exit(0);
    assert_eq!(
        server.stdout_text(),
        "[Client]: before the intruder\n[Client]: after the intruder\n"
    );
}

#[test]
fn a_silent_connection_is_dropped_after_the_timeout_and_the_next_client_is_served() {
    let files = Files::new("chat-silent");
    let (mut server, address) = start_server(&files, &["--timeout", "1"]);
    let mut silent = TcpStream::connect(&address).expect("cannot connect to the server");
    silent
        .set_read_timeout(Some(PATIENCE))
        .expect("cannot set a read timeout");
    let started = Instant::now();
    // The server never speaks first; it only closes the connection.
    let mut buf = [0u8; 64];
    let read = silent.read(&mut buf);
    assert!(
        matches!(read, Ok(0)) || read.is_err(),
        "the server sent something to a silent peer: {read:?}"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(10),
        "dropped after {waited:?}"
    );
    // The first frame's deadline is a few seconds, or the whole handshake's if that is less.
    let line = server.wait_stderr("the caller sent no aeschat hello within 1 s");
    assert!(line.starts_with("[!] Dropped 127.0.0.1:"), "{line}");

    server.wait_idle();
    let mut client = start_client(&files, &address);
    client.type_line("I do talk");
    server.wait_stdout_line("[Client]: I do talk");
    client.type_line("/quit");
    client.assert_exit(0);
    server.close_stdin();
    server.assert_exit(0);
}

#[test]
fn a_peer_sending_a_byte_now_and_then_cannot_stretch_the_handshake() {
    let files = Files::new("chat-dribble");
    let (server, address) = start_server(&files, &["--timeout", "1"]);
    let mut slow = TcpStream::connect(&address).expect("cannot connect to the server");
    let started = Instant::now();
    // The first bytes of a ClientHello frame header, one every 300 ms: each read completes
    // well within a second, but the handshake as a whole must not.
    for byte in [1u8, 0, 0, 0, 53, b'A', b'E', b'S', b'C', b'H'] {
        if std::io::Write::write_all(&mut slow, &[byte]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    // Its first frame (the hello) is not whole within the 1 s limit.
    server.wait_stderr("the caller sent no aeschat hello within 1 s");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn failed_passwords_are_throttled_and_the_server_stops_after_the_maximum() {
    let files = Files::new("chat-throttle");
    let (mut server, address) = start_server(&files, &["--max-failures", "2", "--fail-delay", "3"]);
    let wrong = files.password("wrong", "not the password at all, sorry");

    let mut guesser = start_client_with("first guess", &address, &wrong, &[]);
    guesser.assert_exit(3);
    let line = server.wait_stderr("[!] Authentication failed for 127.0.0.1:");
    assert!(line.contains("127.0.0.1 must wait 3 s"), "{line}");

    // During the wait even the right password is turned away from that address, at no cost
    // to the server, and told how long to wait.
    let mut during = start_client_with("during the wait", &address, &files.password_file, &[]);
    during.assert_exit(1);
    assert!(
        during.stderr_text().contains("try again in 3 s"),
        "{}",
        during.transcript()
    );
    server.wait_stderr("waiting after a failed authentication");

    // After the wait the second failure in a row stops it, as --max-failures asks.
    std::thread::sleep(Duration::from_secs(3));
    let mut again = start_client_with("second guess", &address, &wrong, &[]);
    again.assert_exit(3);
    server.assert_exit(3);
    let last = server.wait_stderr("aeschat: authentication failed 2 times in a row");
    assert!(last.contains("the server stops"), "{last}");
    assert_eq!(server.stdout(), b"");
}

#[test]
fn a_successful_login_resets_the_failure_count() {
    let files = Files::new("chat-reset");
    let (mut server, address) = start_server(&files, &["--max-failures", "2", "--fail-delay", "0"]);
    let wrong = files.password("wrong", "not the password at all, sorry");
    for round in 1..=3 {
        let mut guesser = start_client_with("guess", &address, &wrong, &[]);
        guesser.assert_exit(3);
        server.wait_stderr_count("[!] Authentication failed", round);
        let mut friend = start_client(&files, &address);
        friend.type_line("/quit");
        friend.assert_exit(0);
        server.wait_stderr_count("[-] Client left", round);
        server.wait_idle();
    }
    assert!(server.is_running(), "{}", server.transcript());
    server.close_stdin();
    server.assert_exit(0);
}
