//! The aeschat session working as intended: the order of handshake states and messages, whole
//! conversations over the blocking driver on two threads in both modes, fresh keys for every
//! session, message length limits, transactional buffer errors, the end of a session, and
//! property tests that the way bytes are cut into reads changes nothing.

use aeschat_tests::session_support;

use std::sync::OnceLock;

use aeschat_core::session::{
    frame_capacity, record_frame_len, send_close, send_text, Error, FrameKind, Handshake,
    HandshakeState, Secret, SessionError, DEFAULT_FRAME_CAPACITY, HANDSHAKE_FRAME_LEN,
    MAX_MESSAGE_LEN,
};
use proptest::prelude::*;
use session_support::*;

const CLIENT_STATES: [HandshakeState; 6] = [
    HandshakeState::SendHello,
    HandshakeState::AwaitHello,
    HandshakeState::DeriveKeys,
    HandshakeState::SendFinished,
    HandshakeState::AwaitFinished,
    HandshakeState::Established,
];

const SERVER_STATES: [HandshakeState; 7] = [
    HandshakeState::AwaitHello,
    HandshakeState::SendHello,
    // Protocol 2: the client's share, then its Finished (one flight).
    HandshakeState::AwaitShare,
    // The server derives nothing before the client's Finished has arrived.
    HandshakeState::AwaitFinished,
    HandshakeState::DeriveKeys,
    HandshakeState::SendFinished,
    HandshakeState::Established,
];

fn kinds(frames: &[(Side, Vec<u8>)]) -> Vec<(Side, FrameKind)> {
    frames
        .iter()
        .flat_map(|(side, bytes)| frames_of(bytes).into_iter().map(|f| (*side, f.kind)))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Transcripts: states and messages in order.

#[test]
fn each_side_passes_through_the_documented_states_in_order() {
    for (mode, secret) in [
        ("password", Secret::Password(PASSWORD)),
        ("key file", Secret::PreSharedKey(&PSK)),
    ] {
        let outcome = connect(client(secret), server(secret));
        assert_eq!(outcome.client_states, CLIENT_STATES, "{mode}: client");
        // The engine takes the ClientHello and writes the ServerHello in one poll, so its
        // SendHello is never seen between polls (`each_call_moves_the_handshake_exactly_one_
        // state_on` sees it, call by call). Everything else is seen, in the documented order.
        let mut seen_between_polls = SERVER_STATES.to_vec();
        // Likewise its AwaitFinished: the client's flight (ClientShare ‖ ClientFinished)
        // arrives in one piece and both frames are taken in one poll.
        seen_between_polls.retain(|&state| {
            state != HandshakeState::SendHello && state != HandshakeState::AwaitFinished
        });
        assert_eq!(outcome.server_states, seen_between_polls, "{mode}: server");
        outcome.sessions();
    }
}

#[test]
fn each_call_moves_the_handshake_exactly_one_state_on() {
    let secret = Secret::Password(PASSWORD);
    let mut client = client(secret);
    let mut server = server(secret);
    assert_eq!(client.state(), HandshakeState::SendHello);
    assert_eq!(server.state(), HandshakeState::AwaitHello);

    let client_hello = write_message(&mut client);
    assert_eq!(client.state(), HandshakeState::AwaitHello);
    read_message(&mut server, &client_hello).unwrap();
    assert_eq!(server.state(), HandshakeState::SendHello);

    let server_hello = write_message(&mut server);
    assert_eq!(server.state(), HandshakeState::AwaitShare);
    read_message(&mut client, &server_hello).unwrap();
    assert_eq!(client.state(), HandshakeState::DeriveKeys);

    client.derive_keys().unwrap();
    assert_eq!(client.state(), HandshakeState::SendFinished);
    // Too early for the server: it derives once the client's Finished is in.
    assert_eq!(server.derive_keys(), Err(Error::OutOfOrderCall));

    let flight = write_message(&mut client);
    assert_eq!(client.state(), HandshakeState::AwaitFinished);
    let (client_share, client_finished) = flight.split_at(5 + 32);
    read_message(&mut server, client_share).unwrap();
    assert_eq!(server.state(), HandshakeState::AwaitFinished);
    assert_eq!(server.derive_keys(), Err(Error::OutOfOrderCall));
    read_message(&mut server, client_finished).unwrap();
    assert_eq!(server.state(), HandshakeState::DeriveKeys);
    server.derive_keys().unwrap();
    assert_eq!(server.state(), HandshakeState::SendFinished);

    let server_finished = write_message(&mut server);
    assert_eq!(server.state(), HandshakeState::Established);
    read_message(&mut client, &server_finished).unwrap();
    assert_eq!(client.state(), HandshakeState::Established);

    // The layout the protocol fixes: header, magic, version 2, mode 1 (password), nonce, time,
    // the longest message accepted, and in the server's hello its CPace share.
    let mut expected_client_hello = vec![1, 0, 0, 0, 53];
    expected_client_hello.extend_from_slice(b"AESCHAT\x02\x01");
    expected_client_hello.extend_from_slice(&CLIENT_NONCE);
    expected_client_hello.extend_from_slice(&CLIENT_TIME.to_be_bytes());
    expected_client_hello.extend_from_slice(&(MAX_MESSAGE_LEN as u32).to_be_bytes());
    assert_eq!(client_hello, expected_client_hello);
    let mut expected_server_hello = vec![2, 0, 0, 0, 85];
    expected_server_hello.extend_from_slice(b"AESCHAT\x02\x01");
    expected_server_hello.extend_from_slice(&SERVER_NONCE);
    expected_server_hello.extend_from_slice(&SERVER_TIME.to_be_bytes());
    expected_server_hello.extend_from_slice(&(MAX_MESSAGE_LEN as u32).to_be_bytes());
    expected_server_hello.extend_from_slice(&server_hello[58..]); // the share: checked elsewhere
    assert_eq!(server_hello, expected_server_hello);
    assert_eq!(server_hello.len(), HANDSHAKE_FRAME_LEN);
    assert_eq!(client_finished[..5], [3, 0, 0, 0, 32]);
    assert_eq!(server_finished[..5], [4, 0, 0, 0, 32]);
    assert_ne!(
        client_finished[5..],
        server_finished[5..],
        "each direction has its own confirmation key"
    );
}

#[test]
fn messages_cross_in_the_documented_order_in_both_modes() {
    for (mode, secret, mode_byte) in [
        ("password", Secret::Password(PASSWORD), 1),
        ("key file", Secret::PreSharedKey(&PSK), 2),
    ] {
        let outcome = connect(client(secret), server(secret));
        assert_eq!(
            kinds(&outcome.wire),
            [
                (Side::Client, FrameKind::ClientHello),
                (Side::Server, FrameKind::ServerHello),
                (Side::Client, FrameKind::ClientShare),
                (Side::Client, FrameKind::ClientFinished),
                (Side::Server, FrameKind::ServerFinished),
            ],
            "{mode}"
        );
        let client_hello = frame_of(&outcome.wire[0].1);
        let server_hello = frame_of(&outcome.wire[1].1);
        assert_eq!(client_hello.body[8], mode_byte, "{mode}: client mode byte");
        assert_eq!(server_hello.body[8], mode_byte, "{mode}: server mode byte");
        // Protocol 2: the ServerHello ends in the server's 32-byte CPace share.
        assert_eq!(server_hello.body.len(), 53 + 32, "{mode}");
        outcome.sessions();
    }
}

#[test]
fn calls_out_of_order_are_refused_as_caller_errors() {
    let secret = Secret::Password(PASSWORD);
    let mut out = [0u8; HANDSHAKE_FRAME_LEN];

    let mut fresh_server = server(secret);
    assert_eq!(
        fresh_server.write_message(&mut out).err(),
        Some(Error::OutOfOrderCall),
        "a server cannot speak first"
    );
    let mut fresh_client = client(secret);
    assert_eq!(fresh_client.derive_keys(), Err(Error::OutOfOrderCall));
    assert_eq!(
        fresh_client.state(),
        HandshakeState::SendHello,
        "deriving early changes nothing"
    );
    assert_eq!(
        client(secret).into_session().err(),
        Some(Error::OutOfOrderCall)
    );
    let mut waiting_client = client(secret);
    write_message(&mut waiting_client);
    assert_eq!(
        waiting_client.write_message(&mut out).err(),
        Some(Error::OutOfOrderCall),
        "a client cannot send twice"
    );
    assert_ne!(waiting_client.state(), HandshakeState::Established);

    // A message after the end is refused too.
    let mut established = client(secret);
    let mut peer = server(secret);
    read_message(&mut peer, &write_message(&mut established)).unwrap();
    read_message(&mut established, &write_message(&mut peer)).unwrap();
    established.derive_keys().unwrap();
    read_message(&mut peer, &write_message(&mut established)).unwrap();
    peer.derive_keys().unwrap();
    let server_finished = write_message(&mut peer);
    read_message(&mut established, &server_finished).unwrap();
    assert_eq!(established.state(), HandshakeState::Established);
    assert_eq!(
        read_message(&mut established, &server_finished),
        Err(Error::OutOfOrderCall)
    );
}

// ---------------------------------------------------------------------------------------------
// Whole conversations over the blocking driver, on two threads.

/// The client sends `texts`, the server echoes each one reversed, then both close.
fn echo_over_threads(
    client_secret: Secret<'_>,
    server_secret: Secret<'_>,
    texts: &[&[u8]],
) -> (Vec<Got>, Vec<Got>, Vec<u8>) {
    let ((client_got, client_wrote), (server_got, _)) = on_two_threads(
        |mut end| {
            let mut frames = new_frames();
            let session = handshake_over(
                &mut end.reader,
                &mut end.writer,
                &mut frames,
                client(client_secret),
            )
            .expect("the client's handshake");
            let (mut tx, mut rx) = session.split();
            let mut out = vec![0u8; record_frame_len(MAX_MESSAGE_LEN)];
            let mut got = Vec::new();
            for (n, text) in texts.iter().enumerate() {
                let mut iv = OsRng;
                send_text(
                    &mut tx,
                    &mut end.writer,
                    text,
                    &mut iv,
                    Some(1_700_000_100),
                    &mut out,
                )
                .unwrap_or_else(|e| panic!("message {n}: {e}"));
                got.push(receive(&mut rx, &mut end.reader, &mut frames).unwrap());
            }
            send_close(
                &mut tx,
                &mut end.writer,
                &mut OsRng,
                Some(1_700_000_200),
                &mut out,
            )
            .unwrap();
            got.push(receive(&mut rx, &mut end.reader, &mut frames).unwrap());
            // After the peer's close the stream ends; nothing more is accepted.
            let after = receive(&mut rx, &mut end.reader, &mut frames);
            assert_eq!(after, Err(SessionError::Protocol(Error::SessionEnded)));
            got
        },
        |mut end| {
            let mut frames = new_frames();
            let session = handshake_over(
                &mut end.reader,
                &mut end.writer,
                &mut frames,
                server(server_secret),
            )
            .expect("the server's handshake");
            let (mut tx, mut rx) = session.split();
            let mut out = vec![0u8; record_frame_len(MAX_MESSAGE_LEN)];
            let mut got = Vec::new();
            loop {
                let incoming = receive(&mut rx, &mut end.reader, &mut frames).unwrap();
                got.push(incoming.clone());
                let mut iv = OsRng;
                match incoming {
                    Got::Text(mut text) => {
                        text.reverse();
                        send_text(
                            &mut tx,
                            &mut end.writer,
                            &text,
                            &mut iv,
                            Some(1_700_000_150),
                            &mut out,
                        )
                        .unwrap();
                    }
                    Got::Closed => {
                        send_close(
                            &mut tx,
                            &mut end.writer,
                            &mut iv,
                            Some(1_700_000_250),
                            &mut out,
                        )
                        .unwrap();
                        break;
                    }
                }
            }
            got
        },
    );
    (client_got, server_got, client_wrote)
}

fn check_echo(client_secret: Secret<'_>, server_secret: Secret<'_>) {
    let long = vec![b'x'; MAX_MESSAGE_LEN];
    let texts: [&[u8]; 5] = [
        b"hello",
        b"",
        "gr\u{fc}\u{df}e \u{1f600}".as_bytes(),
        &long,
        b"bye",
    ];
    let (client_got, server_got, client_wrote) =
        echo_over_threads(client_secret, server_secret, &texts);
    let mut expected_at_server: Vec<Got> = texts.iter().map(|t| Got::Text(t.to_vec())).collect();
    expected_at_server.push(Got::Closed);
    assert_eq!(server_got, expected_at_server);
    let mut expected_at_client: Vec<Got> = texts
        .iter()
        .map(|t| Got::Text(t.iter().rev().copied().collect()))
        .collect();
    expected_at_client.push(Got::Closed);
    assert_eq!(client_got, expected_at_client);
    // What crossed the wire is encrypted: no plaintext appears in it.
    let needle = "gr\u{fc}\u{df}e".as_bytes();
    assert!(!client_wrote.windows(needle.len()).any(|w| w == needle));
    assert!(!client_wrote.windows(5).any(|w| w == b"hello"));
}

#[test]
fn password_session_carries_text_both_ways_and_closes_cleanly_over_the_driver() {
    check_echo(Secret::Password(PASSWORD), Secret::Password(PASSWORD));
}

#[test]
fn key_file_session_carries_text_both_ways_and_closes_cleanly_over_the_driver() {
    check_echo(Secret::PreSharedKey(&PSK), Secret::PreSharedKey(&PSK));
}

#[test]
fn split_halves_send_and_receive_at_once_on_separate_threads() {
    const COUNT: usize = 200;
    let conversation = |end: session_support::End, handshake: Handshake<'static>| {
        let session_support::End {
            mut reader,
            mut writer,
        } = end;
        let mut frames = new_frames();
        let session =
            handshake_over(&mut reader, &mut writer, &mut frames, handshake).expect("handshake");
        let (mut tx, mut rx) = session.split();
        std::thread::scope(|scope| {
            // The sending half moves to its own thread; the receiving half stays here.
            scope.spawn(move || {
                let mut out = vec![0u8; record_frame_len(64)];
                for n in 0..COUNT {
                    let text = format!("message {n}");
                    let mut iv = OsRng;
                    send_text(
                        &mut tx,
                        &mut writer,
                        text.as_bytes(),
                        &mut iv,
                        None,
                        &mut out,
                    )
                    .unwrap();
                }
                send_close(&mut tx, &mut writer, &mut OsRng, None, &mut out).unwrap();
            });
            let mut got = Vec::new();
            while let Got::Text(text) = receive(&mut rx, &mut reader, &mut frames).unwrap() {
                got.push(String::from_utf8(text).unwrap());
            }
            got
        })
    };
    let ((client_got, _), (server_got, _)) = on_two_threads(
        |end| conversation(end, client(Secret::Password(PASSWORD))),
        |end| conversation(end, server(Secret::Password(PASSWORD))),
    );
    let expected: Vec<String> = (0..COUNT).map(|n| format!("message {n}")).collect();
    assert_eq!(client_got, expected);
    assert_eq!(server_got, expected);
}

// ---------------------------------------------------------------------------------------------
// Fresh keys for every session.

/// A client record sealed in a session with the given nonces, and a server session opening it.
fn record_crosses_sessions(
    secret: Secret<'_>,
    sealed_in: ([u8; 32], [u8; 32]),
    opened_in: ([u8; 32], [u8; 32]),
) -> Result<Got, Error> {
    let session = |(client_nonce, server_nonce)| {
        connect(
            Handshake::new(
                client_config(secret),
                client_nonce,
                scalar_seed(client_nonce),
                Some(CLIENT_TIME),
            ),
            Handshake::new(
                server_config(secret),
                server_nonce,
                scalar_seed(server_nonce),
                Some(SERVER_TIME),
            ),
        )
        .sessions()
    };
    let (first_client, _) = session(sealed_in);
    let (_, second_server) = session(opened_in);
    let (mut tx, _) = first_client.split();
    let (_, mut rx) = second_server.split();
    open(&mut rx, &seal(&mut tx, b"meant for the first session", 1))
}

#[test]
fn same_password_with_fresh_nonces_gives_keys_that_open_nothing_of_another_session() {
    let secret = Secret::Password(PASSWORD);
    let first = (CLIENT_NONCE, SERVER_NONCE);
    // The control: the very same inputs derive the very same keys.
    assert_eq!(
        record_crosses_sessions(secret, first, first),
        Ok(Got::Text(b"meant for the first session".to_vec()))
    );
    let mut client_nonce = CLIENT_NONCE;
    client_nonce[31] ^= 1;
    let mut server_nonce = SERVER_NONCE;
    server_nonce[0] ^= 0x80;
    for other in [
        (client_nonce, SERVER_NONCE),
        (CLIENT_NONCE, server_nonce),
        ([7; 32], [8; 32]),
    ] {
        assert_eq!(
            record_crosses_sessions(secret, first, other),
            Err(Error::RecordRejected)
        );
    }
}

#[test]
fn same_key_file_with_fresh_nonces_gives_keys_that_open_nothing_of_another_session() {
    let secret = Secret::PreSharedKey(&PSK);
    let first = (CLIENT_NONCE, SERVER_NONCE);
    assert!(record_crosses_sessions(secret, first, first).is_ok());
    assert_eq!(
        record_crosses_sessions(secret, first, ([1; 32], SERVER_NONCE)),
        Err(Error::RecordRejected)
    );
    assert_eq!(
        record_crosses_sessions(secret, first, (CLIENT_NONCE, [2; 32])),
        Err(Error::RecordRejected)
    );
}

#[test]
fn key_confirmations_differ_between_sessions_with_different_nonces() {
    let secret = Secret::Password(PASSWORD);
    let a = connect(client(secret), server(secret));
    let b = connect(
        Handshake::new(
            client_config(secret),
            [9; 32],
            scalar_seed([9; 32]),
            Some(CLIENT_TIME),
        ),
        server(secret),
    );
    assert_ne!(a.wire[2].1, b.wire[2].1, "client finished");
    assert_ne!(a.wire[3].1, b.wire[3].1, "server finished");
    let again = connect(client(secret), server(secret));
    assert_eq!(
        a.wire, again.wire,
        "the same inputs give the same transcript"
    );
}

// ---------------------------------------------------------------------------------------------
// Message lengths and buffers.

#[test]
fn a_message_of_exactly_the_peer_maximum_passes_and_one_byte_more_is_refused_whole() {
    const CLIENT_MAX: usize = 100;
    const SERVER_MAX: usize = 300;
    let secret = Secret::Password(PASSWORD);
    let outcome = connect(
        Handshake::new(
            client_config(secret).with_max_message_len(CLIENT_MAX),
            CLIENT_NONCE,
            scalar_seed(CLIENT_NONCE),
            Some(CLIENT_TIME),
        ),
        Handshake::new(
            server_config(secret).with_max_message_len(SERVER_MAX),
            SERVER_NONCE,
            scalar_seed(SERVER_NONCE),
            Some(SERVER_TIME),
        ),
    );
    let (client, server) = outcome.sessions();
    let (mut client_tx, mut client_rx) = client.split();
    let (mut server_tx, mut server_rx) = server.split();
    assert_eq!(
        client_tx.max_message_len(),
        SERVER_MAX,
        "the server's announcement"
    );
    assert_eq!(
        server_tx.max_message_len(),
        CLIENT_MAX,
        "the client's announcement"
    );

    for (tx, rx, max) in [
        (&mut client_tx, &mut server_rx, SERVER_MAX),
        (&mut server_tx, &mut client_rx, CLIENT_MAX),
    ] {
        let longest = vec![b'a'; max];
        let record = seal(tx, &longest, 1);
        // The receiver's frame reader, sized for its own maximum, holds the longest record.
        let parsed = parse_chunks::<{ frame_capacity(SERVER_MAX) }>([&record[..]]);
        assert_eq!(parsed.error, None);
        assert_eq!(open(rx, &record), Ok(Got::Text(longest)));

        let too_long = vec![b'b'; max + 1];
        let mut out = vec![0xEE; record_frame_len(max + 1)];
        assert_eq!(
            tx.seal_text(&too_long, &mut fixed_iv([2; 16]), None, &mut out)
                .err(),
            Some(Error::MessageTooLong { max })
        );
        assert!(out.iter().all(|&b| b == 0xEE), "nothing was written");
        // The sequence did not move: the next message is the next the receiver expects.
        assert_eq!(
            open(rx, &seal(tx, b"after the refusal", 3)),
            Ok(Got::Text(b"after the refusal".to_vec()))
        );
    }
}

#[test]
fn a_too_small_record_buffer_names_the_size_needed_changes_nothing_and_can_be_retried() {
    let (client, server) = password_sessions();
    let (mut tx, _) = client.split();
    let (_, mut rx) = server.split();
    let mut iv = fixed_iv([5; 16]);
    for text in [&b""[..], b"a", b"exactly sixteen!", &[b'z'; 1000]] {
        let required = record_frame_len(text.len());
        let mut small = vec![0xEE; required - 1];
        assert_eq!(
            tx.seal_text(text, &mut iv, None, &mut small).err(),
            Some(Error::BufferTooSmall { required })
        );
        assert!(small.iter().all(|&b| b == 0xEE), "nothing was written");
        assert_eq!(
            tx.seal_text(text, &mut iv, None, &mut []).err(),
            Some(Error::BufferTooSmall { required })
        );
        let mut exact = vec![0u8; required];
        let record = tx
            .seal_text(text, &mut iv, None, &mut exact)
            .unwrap()
            .to_vec();
        assert_eq!(record.len(), required);
        assert_eq!(open(&mut rx, &record), Ok(Got::Text(text.to_vec())));
    }
    let required = record_frame_len(0);
    let mut small = vec![0u8; required - 1];
    assert_eq!(
        tx.seal_close(&mut iv, None, &mut small).err(),
        Some(Error::BufferTooSmall { required })
    );
    // The failed close did not end the sender.
    assert_eq!(
        open(&mut rx, &seal(&mut tx, b"still open", 9)),
        Ok(Got::Text(b"still open".to_vec()))
    );
    assert_eq!(open(&mut rx, &seal_close(&mut tx)), Ok(Got::Closed));
}

#[test]
fn a_too_small_handshake_buffer_names_the_size_needed_and_the_retry_completes() {
    let secret = Secret::Password(PASSWORD);
    let mut client = client(secret);
    let mut server = server(secret);
    let mut small = [0u8; 20];
    let mut step = |from: &mut Handshake<'_>, to: &mut Handshake<'_>, required: usize| {
        let before = from.state();
        assert_eq!(
            from.write_message(&mut small).err(),
            Some(Error::BufferTooSmall { required })
        );
        assert_eq!(from.state(), before, "the refusal changed no state");
        let mut exact = vec![0u8; required];
        let frame = from.write_message(&mut exact).unwrap().to_vec();
        read_message(to, &frame).unwrap();
    };
    step(&mut client, &mut server, 5 + 53);
    step(&mut server, &mut client, 5 + 85);
    client.derive_keys().unwrap();
    step(&mut client, &mut server, 2 * 5 + 32 + 32); // ClientShare ‖ ClientFinished
    server.derive_keys().unwrap();
    step(&mut server, &mut client, 5 + 32);
    assert_eq!(client.state(), HandshakeState::Established);
    assert_eq!(server.state(), HandshakeState::Established);

    let mut out = [0u8; 5];
    assert_eq!(
        aeschat_core::session::Alert::Busy.write(&mut out).err(),
        Some(Error::BufferTooSmall { required: 6 })
    );
}

// ---------------------------------------------------------------------------------------------
// The end of a session.

#[test]
fn a_clean_close_is_reported_as_closed_and_nothing_follows_it() {
    let (client, server) = password_sessions();
    let (mut tx, _) = client.split();
    let (_, mut rx) = server.split();
    let text = seal(&mut tx, b"last words", 1);
    let close = seal_close(&mut tx);
    let mut out = vec![0u8; record_frame_len(10)];
    assert_eq!(
        tx.seal_text(b"more", &mut fixed_iv([1; 16]), None, &mut out)
            .err(),
        Some(Error::SessionEnded),
        "the sender sends nothing after its close"
    );
    assert_eq!(
        tx.seal_close(&mut fixed_iv([1; 16]), None, &mut out).err(),
        Some(Error::SessionEnded)
    );
    assert_eq!(open(&mut rx, &text), Ok(Got::Text(b"last words".to_vec())));
    assert_eq!(open(&mut rx, &close), Ok(Got::Closed));
    assert_eq!(
        rx.end_of_stream(),
        Error::SessionEnded,
        "an end after the close is no truncation"
    );
}

#[test]
fn end_of_stream_without_the_close_is_truncation_between_or_inside_frames() {
    let (client, _) = password_sessions();
    let (mut tx, _) = client.split();
    let first = seal(&mut tx, b"one", 1);
    let second = seal(&mut tx, b"two", 2);
    let close = seal_close(&mut tx);
    for (cut, after) in [
        (first.len() + second.len(), 2),                   // between frames
        (first.len() + second.len() + 1, 2),               // one byte of the close's header
        (first.len() + second.len() + 5, 2),               // the close's header only
        (first.len() + second.len() + close.len() - 1, 2), // all but its last byte
        (first.len() + 3, 1),                              // inside the second
    ] {
        let (_, server) = password_sessions();
        let (_, mut rx) = server.split();
        let stream = [first.clone(), second.clone(), close.clone()].concat();
        let mut reader = ScriptedReader::new(stream[..cut].to_vec());
        let mut frames = new_frames();
        let mut got = Vec::new();
        let error = loop {
            match receive(&mut rx, &mut reader, &mut frames) {
                Ok(incoming) => got.push(incoming),
                Err(error) => break error,
            }
        };
        assert_eq!(got.len(), after, "cut at {cut}");
        assert_eq!(
            error,
            SessionError::Protocol(Error::Truncated),
            "cut at {cut}"
        );
        assert_eq!(
            receive(&mut rx, &mut reader, &mut frames),
            Err(SessionError::Protocol(Error::SessionEnded))
        );
    }
}

#[test]
fn a_peer_that_hangs_up_without_closing_leaves_a_truncation_over_threads() {
    let ((client_result, _), (server_got, _)) = on_two_threads(
        |mut end| {
            let mut frames = new_frames();
            let session = handshake_over(
                &mut end.reader,
                &mut end.writer,
                &mut frames,
                client(Secret::Password(PASSWORD)),
            )
            .unwrap();
            let (mut tx, _) = session.split();
            let mut out = [0u8; record_frame_len(16)];
            send_text(
                &mut tx,
                &mut end.writer,
                b"bye",
                &mut fixed_iv([3; 16]),
                None,
                &mut out,
            )
            .unwrap();
            // Dropping the end hangs up with no close.
        },
        |mut end| {
            let mut frames = new_frames();
            let session = handshake_over(
                &mut end.reader,
                &mut end.writer,
                &mut frames,
                server(Secret::Password(PASSWORD)),
            )
            .unwrap();
            let (_, mut rx) = session.split();
            let first = receive(&mut rx, &mut end.reader, &mut frames);
            let second = receive(&mut rx, &mut end.reader, &mut frames);
            (first, second)
        },
    );
    let () = client_result;
    assert_eq!(server_got.0, Ok(Got::Text(b"bye".to_vec())));
    assert_eq!(server_got.1, Err(SessionError::Protocol(Error::Truncated)));
}

#[test]
fn the_peer_clock_offset_is_the_difference_of_the_hello_times() {
    let secret = Secret::PreSharedKey(&PSK);
    let (client, server) = connect(client(secret), server(secret)).sessions();
    let offset = (SERVER_TIME - CLIENT_TIME) as i64;
    assert_eq!(client.peer_clock_offset(), Some(offset));
    assert_eq!(server.peer_clock_offset(), Some(-offset));
    // No clock (`None`, sent as 0) on either side, and a clock reading 0, mean no offset.
    for (client_time, server_time) in [
        (None, Some(SERVER_TIME)),
        (Some(CLIENT_TIME), None),
        (None, Some(SERVER_TIME)),
        (Some(CLIENT_TIME), Some(0)),
    ] {
        let (client, server) = connect(
            Handshake::new(
                client_config(secret),
                CLIENT_NONCE,
                scalar_seed(CLIENT_NONCE),
                client_time,
            ),
            Handshake::new(
                server_config(secret),
                SERVER_NONCE,
                scalar_seed(SERVER_NONCE),
                server_time,
            ),
        )
        .sessions();
        let case = format!("{client_time:?}, {server_time:?}");
        assert_eq!(client.peer_clock_offset(), None, "no clock: {case}");
        assert_eq!(server.peer_clock_offset(), None, "no clock: {case}");
    }
    let (client, server) = connect(
        Handshake::new(
            client_config(secret),
            CLIENT_NONCE,
            scalar_seed(CLIENT_NONCE),
            Some(1),
        ),
        Handshake::new(
            server_config(secret),
            SERVER_NONCE,
            scalar_seed(SERVER_NONCE),
            Some(u64::MAX),
        ),
    )
    .sessions();
    assert_eq!(client.peer_clock_offset(), Some(i64::MAX), "saturates");
    assert_eq!(server.peer_clock_offset(), Some(i64::MIN), "saturates");
}

// ---------------------------------------------------------------------------------------------
// Property tests: cutting the byte stream differently changes nothing.

/// Every frame of a password session and a conversation, recorded once.
fn recorded_session() -> &'static [(Side, Vec<u8>)] {
    static FRAMES: OnceLock<Vec<(Side, Vec<u8>)>> = OnceLock::new();
    FRAMES.get_or_init(|| {
        let secret = Secret::Password(PASSWORD);
        record_session(client(secret), server(secret), &sample_conversation())
    })
}

fn written_by(side: Side) -> Vec<u8> {
    recorded_session()
        .iter()
        .filter(|(from, _)| *from == side)
        .flat_map(|(_, bytes)| bytes.iter().copied())
        .collect()
}

/// Cuts `bytes` into pieces of the given sizes (the rest in one piece).
fn cut<'a>(bytes: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut pieces = Vec::new();
    let mut rest = bytes;
    for &size in sizes {
        let (piece, tail) = rest.split_at(size.min(rest.len()));
        pieces.push(piece);
        rest = tail;
    }
    pieces.push(rest);
    pieces
}

/// Plays `side` of the recorded session through the blocking driver, reading the peer's
/// recorded bytes in pieces of the scheduled sizes; returns what it wrote and what it received.
fn replay_through_driver(side: Side, schedule: Vec<usize>) -> (Vec<u8>, Vec<Got>) {
    let secret = Secret::Password(PASSWORD);
    let handshake = match side {
        Side::Client => client(secret),
        Side::Server => server(secret),
    };
    let mut reader = ScriptedReader::chunked(written_by(side.peer()), schedule);
    let mut writer: Vec<u8> = Vec::new();
    let mut frames = new_frames();
    let session = handshake_over(&mut reader, &mut writer, &mut frames, handshake)
        .expect("the handshake completes");
    let (mut tx, mut rx) = session.split();
    let mut received = Vec::new();
    let mut out = vec![0u8; record_frame_len(MAX_MESSAGE_LEN)];
    for message in sample_conversation() {
        let mut iv = fixed_iv(message.iv);
        if message.from == side {
            match &message.text {
                Some(text) => send_text(
                    &mut tx,
                    &mut writer,
                    text.as_bytes(),
                    &mut iv,
                    Some(message.time),
                    &mut out,
                ),
                None => send_close(&mut tx, &mut writer, &mut iv, Some(message.time), &mut out),
            }
            .unwrap();
        } else {
            received.push(receive(&mut rx, &mut reader, &mut frames).unwrap());
        }
    }
    assert_eq!(reader.consumed(), written_by(side.peer()).len(), "all read");
    (writer, received)
}

fn expected_received(side: Side) -> Vec<Got> {
    sample_conversation()
        .into_iter()
        .filter(|message| message.from != side)
        .map(|message| match message.text {
            Some(text) => Got::Text(text.into_bytes()),
            None => Got::Closed,
        })
        .collect()
}

#[test]
fn the_driver_replays_the_recorded_session_in_one_read_per_frame() {
    for side in [Side::Client, Side::Server] {
        let (wrote, received) = replay_through_driver(side, vec![usize::MAX]);
        assert_eq!(wrote, written_by(side), "{}", side.name());
        assert_eq!(received, expected_received(side), "{}", side.name());
    }
}

/// Byte streams near the frame format: well-formed frames of random kinds, mixed with garbage.
fn streams() -> impl Strategy<Value = Vec<u8>> {
    let frame = (0u8..=8, prop::collection::vec(any::<u8>(), 0..80))
        .prop_map(|(kind, body)| frame_bytes(kind, &body));
    let garbage = prop::collection::vec(any::<u8>(), 0..12);
    prop::collection::vec(prop_oneof![4 => frame, 1 => garbage], 0..8)
        .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn frame_reader_finds_the_same_frames_however_the_session_bytes_are_cut(
        sizes in prop::collection::vec(0usize..200, 0..60),
    ) {
        let stream: Vec<u8> = recorded_session().iter().flat_map(|(_, b)| b.clone()).collect();
        let whole = parse_chunks::<DEFAULT_FRAME_CAPACITY>([&stream[..]]);
        prop_assert_eq!(whole.error, None);
        prop_assert!(!whole.unfinished);
        let expected: Vec<OwnedFrame> = recorded_session().iter().flat_map(|(_, b)| frames_of(b)).collect();
        prop_assert_eq!(&whole.frames, &expected);
        let pieces = parse_chunks::<DEFAULT_FRAME_CAPACITY>(cut(&stream, &sizes));
        prop_assert_eq!(pieces, whole);
    }

    #[test]
    fn framing_gives_the_same_frames_and_error_for_any_stream_however_it_is_cut(
        stream in streams(),
        sizes in prop::collection::vec(0usize..40, 0..40),
    ) {
        // A small limit, so over-long frames occur too.
        let whole = parse_chunks::<64>([&stream[..]]);
        let pieces = parse_chunks::<64>(cut(&stream, &sizes));
        prop_assert_eq!(&pieces, &whole);
        let one_by_one = parse_chunks::<64>(stream.chunks(1));
        prop_assert_eq!(&one_by_one, &whole);
    }

    #[test]
    fn the_driver_gives_the_same_session_for_any_pattern_of_short_reads(
        schedule in prop::collection::vec(1usize..300, 1..50),
        side in prop_oneof![Just(Side::Client), Just(Side::Server)],
    ) {
        let (wrote, received) = replay_through_driver(side, schedule);
        prop_assert_eq!(wrote, written_by(side));
        prop_assert_eq!(received, expected_received(side));
    }
}
