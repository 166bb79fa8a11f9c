//! Getting connected, with plain pipes: a client started before its server waits for it, an
//! address that accepts but does not answer like aeschat is named as such, ports are checked,
//! a server without input says so, loose file modes on secrets draw a warning, and the line
//! mode that scripts use keeps every line in order.

use aeschat_tests::chat_support;
use aeschat_tests::cli_support;

use std::io::Read;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use chat_support::*;
use cli_support::run;

/// A port on the loopback address that nothing listens on (just now).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("cannot find a free port")
        .port()
}

#[test]
fn a_client_started_before_its_server_connects_once_the_server_listens() {
    let files = Files::new("chat-wait");
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let mut client = start_client_with("client", &address, &files.password_file, &["--wait", "60"]);
    client.wait_stderr("[*] No server at 127.0.0.1:");
    assert!(client.is_running(), "{}", client.transcript());
    let (mut server, _) = start_server_with(&files, &["--listen", address.as_str()], &["--once"]);
    client.wait_stderr("[+] Connected to the server");
    client.type_line("you took your time");
    server.wait_stdout_line("[Client]: you took your time");
    client.type_line("/quit");
    client.assert_exit(0);
    server.assert_exit(0);
}

#[test]
fn a_client_that_waits_in_vain_says_how_long_it_waited() {
    let files = Files::new("chat-wait-vain");
    let address = format!("127.0.0.1:{}", free_port());
    let mut client = start_client_with("client", &address, &files.password_file, &["--wait", "1"]);
    client.assert_exit(1);
    let line = client.wait_error_line();
    assert!(
        line.starts_with("aeschat: cannot connect to 127.0.0.1:")
            && line.contains("no server started within 1 s"),
        "{line}"
    );
}

#[test]
fn an_address_that_accepts_but_does_not_answer_is_reported_within_seconds() {
    let files = Files::new("chat-silent");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    // Takes the connection and says nothing, as another program on the port might.
    let holder = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink);
    });
    let started = Instant::now();
    let mut client = start_client(&files, &address);
    client.assert_exit(1);
    let took = started.elapsed();
    let line = client.wait_error_line();
    assert!(
        line.contains("nothing answered like an aeschat server within 5 s"),
        "{line}"
    );
    assert!(took < Duration::from_secs(15), "took {took:?}");
    drop(client);
    let _ = holder.join();
}

#[test]
fn ports_out_of_range_are_usage_errors_naming_the_port() {
    for args in [
        &["server", "--listen", "99999"][..],
        &["server", "--listen", "127.0.0.1:65536"][..],
        &["client", "--connect", "localhost:70000"][..],
    ] {
        let result = run(args, b"");
        let port = args[2].rsplit(':').next().unwrap();
        assert!(
            result.stderr.contains(&format!("port \"{port}\"")),
            "{args:?}: {result:?}"
        );
        result.usage_error();
    }
}

#[test]
fn a_server_whose_input_is_closed_says_so_and_stops() {
    let files = Files::new("chat-no-input");
    let (mut server, _) = start_server(&files, &[]);
    server.close_stdin();
    server.assert_exit(2);
    let line = server.wait_error_line();
    assert!(line.contains("standard input is closed"), "{line}");
}

#[test]
fn a_server_whose_input_ends_while_nobody_is_connected_says_it_stops() {
    let files = Files::new("chat-input-ends");
    let (mut server, address) = start_server(&files, &[]);
    let mut client = start_client(&files, &address);
    server.wait_stderr("[+] Client connected");
    server.type_line("hello, and goodbye");
    client.wait_stdout_line("[Server]: hello, and goodbye");
    client.type_line("/quit");
    client.assert_exit(0);
    server.wait_stderr_count("[*] Waiting for a client", 2);
    server.close_stdin();
    server.assert_exit(0);
    server.wait_stderr("[-] Input ended with nobody connected: the server stops");
}

#[cfg(unix)]
#[test]
fn secret_files_readable_by_others_draw_a_warning_with_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let files = Files::new("chat-modes");
    let loose = files.password("loose.pass", PASSWORD);
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (mut server, address) = start_server(&files, &["--once"]);
    let mut client = start_client_with("client", &address, &loose, &[]);
    let warning = client.wait_stderr("can be read by other users (mode 644)");
    assert!(warning.contains(&format!("chmod 600 {loose}")), "{warning}");
    client.type_line("/quit");
    client.assert_exit(0);
    server.assert_exit(0);
    assert!(
        !server.stderr_text().contains("can be read by"),
        "a private file drew the warning: {}",
        server.transcript()
    );

    // A key file readable by its group.
    let key = files
        .dir
        .key_file("chat.key", &cli_support::XorShift::new(3).key());
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let result = run(
        [
            "client",
            "--key-file",
            key.as_str(),
            "--wait",
            "0",
            "--connect",
            "127.0.0.1:9",
        ],
        b"",
    );
    assert!(
        result.stderr.contains(&format!(
            "key file \"{key}\" can be read by its group (mode 640)"
        )),
        "{result:?}"
    );
}

#[test]
fn plain_lines_from_pipes_keep_their_order_both_ways() {
    let files = Files::new("chat-hundred");
    let (mut server, mut client, _) = connected_pair(&files, &["--once"]);
    let to_server: String = (0..100).map(|i| format!("client line {i}\n")).collect();
    let to_client: String = (0..100).map(|i| format!("server line {i}\n")).collect();
    client.type_bytes(to_server.as_bytes());
    server.type_bytes(to_client.as_bytes());
    server.wait_stdout_line("[Client]: client line 99");
    client.wait_stdout_line("[Server]: server line 99");
    let expected = |who: &str, side: &str| -> String {
        (0..100)
            .map(|i| format!("[{who}]: {side} line {i}\n"))
            .collect()
    };
    assert_eq!(server.stdout_text(), expected("Client", "client"));
    assert_eq!(client.stdout_text(), expected("Server", "server"));
    client.type_line("/quit");
    client.assert_exit(0);
    server.assert_exit(0);
}

#[test]
fn sigint_in_a_conversation_leaves_cleanly_and_while_waiting_exits_with_130() {
    let files = Files::new("chat-sigint");
    let (mut server, mut client, _) = connected_pair(&files, &["--once"]);
    client.type_line("before the interrupt");
    server.wait_stdout_line("[Client]: before the interrupt");
    client.interrupt();
    server.wait_stderr("[-] Client left");
    client.wait_stderr("[-] Conversation closed");
    client.assert_exit(0);
    server.assert_exit(0);
    assert!(
        !server.stderr_text().contains("messages may be missing"),
        "{}",
        server.transcript()
    );

    // A client waiting for its server stops at once, quietly.
    let address = format!("127.0.0.1:{}", free_port());
    let mut waiting = start_client_with("client", &address, &files.password_file, &[]);
    waiting.wait_stderr("[*] No server at");
    waiting.interrupt();
    assert_eq!(waiting.wait_exit(), 130, "{}", waiting.transcript());
    assert!(
        !waiting
            .stderr_text()
            .lines()
            .any(|line| line.starts_with("aeschat: ") && !line.contains("warning")),
        "{}",
        waiting.transcript()
    );
}
