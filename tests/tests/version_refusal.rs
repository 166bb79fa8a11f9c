//! A protocol-1 peer against the real binary, both ways: refused at once with the version
//! alert and a message that names both versions, no fallback, and (for the server) no harm to
//! the person it waits for. The protocol-1 messages are the first frames of the protocol-1
//! golden transcript (`vectors/sessions/password.json` before protocol 2): what an aeschat of
//! the previous release sends.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use aeschat_tests::chat_support::{start_client_with, start_server, Files, PASSWORD, PATIENCE};
use aeschat_tests::session_support::alert_bytes;

/// Protocol 1's ClientHello (frame kind 1, 53 bytes: magic, version 1, password mode, nonce,
/// time, max_message_len).
const V1_CLIENT_HELLO: &str = "01000000354145534348415401011111111111111111111111111111111111\
111111111111111111111111111111111111000000006553f100000003e8";
/// Protocol 1's ServerHello (frame kind 2, 57 bytes: the hello fields, then its iteration
/// count).
const V1_SERVER_HELLO: &str = "02000000394145534348415401012222222222222222222222222222222222\
222222222222222222222222222222222222000000006553f10300010000000003e8";

/// Alert 2: "your version is not mine".
const VERSION_ALERT: u8 = 2;

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).unwrap())
        .collect()
}

/// Everything the peer sends until it closes (or the patience runs out).
fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut got = Vec::new();
    let _ = stream.read_to_end(&mut got);
    got
}

#[test]
fn a_protocol_1_client_is_refused_with_the_version_alert_and_the_server_goes_on() {
    let files = Files::new("version-v1-client");
    let (mut server, address) = start_server(&files, &["--once"]);

    let mut old_client = TcpStream::connect(&address).unwrap();
    old_client.write_all(&unhex(V1_CLIENT_HELLO)).unwrap();
    let answer = read_until_closed(&mut old_client);
    assert_eq!(
        answer,
        alert_bytes(VERSION_ALERT),
        "the server answers a version-1 hello with the version alert alone, and closes"
    );
    let line = server.wait_stderr("protocol version 1");
    assert!(
        line.contains("does not support") && line.contains("same aeschat version"),
        "{line}"
    );

    // A refused old client is no guess and takes nothing from the person the server waits for.
    let password_file = files.password("right", PASSWORD);
    let mut client = start_client_with("client", &address, &password_file, &[]);
    client.wait_stderr("[+] Connected");
    server.wait_stderr("[+] Client connected");
    client.type_line("/quit");
    client.assert_exit(0);
    server.assert_exit(0);
}

#[test]
fn a_protocol_1_server_is_refused_by_the_client_with_the_version_alert() {
    let files = Files::new("version-v1-server");
    let password_file = files.password("right", PASSWORD);
    let old_server = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = old_server.local_addr().unwrap().to_string();
    let mut client = start_client_with("client", &address, &password_file, &[]);

    let (mut connection, _) = old_server.accept().unwrap();
    connection
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut hello = [0u8; 58];
    connection.read_exact(&mut hello).unwrap();
    assert_eq!(hello[12], 2, "the client's hello says version 2");
    connection.write_all(&unhex(V1_SERVER_HELLO)).unwrap();
    let answer = read_until_closed(&mut connection);
    assert_eq!(
        answer,
        alert_bytes(VERSION_ALERT),
        "the client answers a version-1 server with the version alert alone, and closes"
    );

    assert_eq!(client.wait_exit(), 1, "{}", client.transcript());
    let error = client.wait_error_line();
    assert!(
        error.contains("protocol version 1") && error.contains("same aeschat version"),
        "{error}"
    );
}
