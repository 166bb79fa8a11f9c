//! The session under attack and against the wrong peer: wrong secrets, records reflected,
//! replayed, reordered, dropped, moved between sessions or altered, over-long frames, cut
//! connections, version and mode mismatches, peers of the old raw-token chat and strangers,
//! alerts, and random garbage in every state. Each test names the attack or
//! fault and asserts what each side reports and, where it matters, the exact bytes it wrote.

use aeschat_tests::session_support;

use std::collections::VecDeque;
use std::convert::Infallible;

use aeschat_core::fernet::{encrypt, token_len, Iv, Key};
use aeschat_core::session::{
    frame_capacity, Action, Alert, Engine, Error, Frame, FrameKind, Handshake, HandshakeState,
    Inbox, Receiver, Secret, SessionError, DEFAULT_FRAME_CAPACITY,
};
use proptest::prelude::*;
use session_support::*;

type DriverResult<'a> = Result<Established<'a>, SessionError<Infallible>>;

/// Runs one side's blocking handshake over scripted input; returns the result, the bytes it
/// wrote and how many bytes it read.
fn drive(handshake: Handshake<'_>, input: Vec<u8>) -> (DriverResult<'_>, Vec<u8>, usize) {
    drive_chunked(handshake, input, vec![usize::MAX])
}

/// [`drive`], the input handed out in reads of at most `schedule[i]` bytes (repeating).
fn drive_chunked(
    handshake: Handshake<'_>,
    input: Vec<u8>,
    schedule: Vec<usize>,
) -> (DriverResult<'_>, Vec<u8>, usize) {
    let mut reader = ScriptedReader::chunked(input, schedule);
    let mut writer: Vec<u8> = Vec::new();
    let mut frames = new_frames();
    let result = handshake_over(&mut reader, &mut writer, &mut frames, handshake);
    (result, writer, reader.consumed())
}

fn protocol_error(result: &DriverResult<'_>) -> Option<Error> {
    match result {
        Err(SessionError::Protocol(error)) => Some(*error),
        _ => None,
    }
}

/// The client's hello with the fixed inputs, as the core writes it.
fn client_hello(secret: Secret<'_>) -> Vec<u8> {
    write_message(&mut client(secret))
}

/// The server's hello answering the fixed client hello.
fn server_hello(secret: Secret<'_>) -> Vec<u8> {
    let mut server = server(secret);
    read_message(&mut server, &client_hello(secret)).unwrap();
    write_message(&mut server)
}

/// Offsets in a hello frame: header, magic, version, mode (then nonce, time, max length).
const MAGIC: std::ops::Range<usize> = 5..12;
const VERSION: usize = 12;
const MODE: usize = 13;
/// Protocol 2: the server's CPace share in a ServerHello frame.
const SHARE: std::ops::Range<usize> = 58..90;

/// A side's handshake advanced, against an honest peer, to the first time it is in `state`.
fn advanced_to(side: Side, state: HandshakeState, secret: Secret<'static>) -> Handshake<'static> {
    let target = match side {
        Side::Client => 0,
        Side::Server => 1,
    };
    let mut parties = [
        (client(secret), VecDeque::<Vec<u8>>::new()),
        (server(secret), VecDeque::new()),
    ];
    for turn in 0..40 {
        if parties[target].0.state() == state {
            let [client, server] = parties;
            return if target == 0 { client.0 } else { server.0 };
        }
        let i = turn % 2;
        let (handshake, inbox) = &mut parties[i];
        match handshake.state() {
            HandshakeState::SendHello | HandshakeState::SendFinished => {
                // One frame at a time to the peer (protocol 2's client flight is two).
                let message = write_message(handshake);
                let mut at = 0;
                while at < message.len() {
                    let body = u32::from_be_bytes(message[at + 1..at + 5].try_into().unwrap());
                    let end = at + aeschat_core::session::FRAME_HEADER_LEN + body as usize;
                    parties[1 - i].1.push_back(message[at..end].to_vec());
                    at = end;
                }
            }
            HandshakeState::DeriveKeys => handshake.derive_keys().unwrap(),
            HandshakeState::AwaitHello
            | HandshakeState::AwaitShare
            | HandshakeState::AwaitFinished => {
                if let Some(message) = inbox.pop_front() {
                    read_message(handshake, &message).unwrap();
                }
            }
            _ => {}
        }
    }
    panic!("{} never reached {state:?}", side.name());
}

const AWAITING: [(Side, HandshakeState); 5] = [
    (Side::Client, HandshakeState::AwaitHello),
    (Side::Server, HandshakeState::AwaitHello),
    (Side::Server, HandshakeState::AwaitShare),
    (Side::Client, HandshakeState::AwaitFinished),
    (Side::Server, HandshakeState::AwaitFinished),
];

/// Fresh established halves over the key file (cheap), with the fixed inputs.
fn key_file_sessions() -> (Established<'static>, Established<'static>) {
    let secret = Secret::PreSharedKey(&PSK);
    connect(client(secret), server(secret)).sessions()
}

// ---------------------------------------------------------------------------------------------
// Wrong secrets.

#[test]
fn wrong_password_fails_authentication_on_both_sides_before_any_chat_text() {
    let outcome = connect(
        client(Secret::Password(b"correct horse battery stapler")),
        server(Secret::Password(PASSWORD)),
    );
    assert_eq!(outcome.client_error(), Some(Error::AuthenticationFailed));
    assert_eq!(outcome.server_error(), Some(Error::AuthenticationFailed));
    let kinds =
        |side| -> Vec<FrameKind> { outcome.frames_by(side).iter().map(|f| f.kind).collect() };
    assert_eq!(
        kinds(Side::Client),
        [
            FrameKind::ClientHello,
            FrameKind::ClientShare,
            FrameKind::ClientFinished
        ]
    );
    assert_eq!(
        kinds(Side::Server),
        [FrameKind::ServerHello, FrameKind::Alert]
    );
    assert_eq!(outcome.wire.last().unwrap().1, alert_bytes(1));
}

#[test]
fn wrong_password_over_the_driver_reports_authentication_failure_on_both_sides() {
    let ((client_result, client_wrote), (server_result, server_wrote)) = on_two_threads(
        |mut end| {
            let mut frames = new_frames();
            handshake_over(
                &mut end.reader,
                &mut end.writer,
                &mut frames,
                client(Secret::Password(b"Tr0ub4dor&3")),
            )
            .map(drop)
        },
        |mut end| {
            let mut frames = new_frames();
            handshake_over(
                &mut end.reader,
                &mut end.writer,
                &mut frames,
                server(Secret::Password(PASSWORD)),
            )
            .map(drop)
        },
    );
    let failed = Err(SessionError::Protocol(Error::AuthenticationFailed));
    assert_eq!(client_result, failed);
    assert_eq!(server_result, failed);
    // The server wrote its hello and the alert, and nothing sealed.
    let server_hello = server_hello(Secret::Password(PASSWORD));
    assert_eq!(server_wrote, [server_hello, alert_bytes(1)].concat());
    let kinds: Vec<FrameKind> = frames_of(&client_wrote).iter().map(|f| f.kind).collect();
    assert_eq!(
        kinds,
        [
            FrameKind::ClientHello,
            FrameKind::ClientShare,
            FrameKind::ClientFinished
        ]
    );
}

#[test]
fn wrong_key_file_fails_authentication_on_both_sides() {
    let outcome = connect(
        client(Secret::PreSharedKey(&OTHER_PSK)),
        server(Secret::PreSharedKey(&PSK)),
    );
    assert_eq!(outcome.client_error(), Some(Error::AuthenticationFailed));
    assert_eq!(outcome.server_error(), Some(Error::AuthenticationFailed));
    assert_eq!(
        outcome.wire.last().unwrap(),
        &(Side::Server, alert_bytes(1))
    );
    assert!(!outcome
        .frames_by(Side::Server)
        .iter()
        .any(|f| f.kind == FrameKind::ServerFinished));
}

// ---------------------------------------------------------------------------------------------
// Records: reflected, replayed, reordered, dropped, from another session, altered.

#[test]
fn a_record_reflected_back_to_its_sender_is_rejected() {
    for reflect_from in [Side::Client, Side::Server] {
        let (client, server) = key_file_sessions();
        let (mut client_tx, mut client_rx) = client.split();
        let (mut server_tx, mut server_rx) = server.split();
        let (tx, rx) = match reflect_from {
            Side::Client => (&mut client_tx, &mut client_rx),
            Side::Server => (&mut server_tx, &mut server_rx),
        };
        let record = seal(tx, b"to the peer", 1);
        assert_eq!(
            open(rx, &record),
            Err(Error::RecordRejected),
            "{}",
            reflect_from.name()
        );
    }
}

#[test]
fn a_key_confirmation_reflected_back_to_the_client_fails_authentication() {
    let secret = Secret::PreSharedKey(&PSK);
    // The client's flight is ClientShare (37 bytes) ‖ ClientFinished.
    let client_finished = connect(client(secret), server(secret)).wire[2].1[37..].to_vec();
    assert_eq!(client_finished[0], FrameKind::ClientFinished as u8);
    // The client's own confirmation comes back relabelled as the server's.
    let mut reflected = client_finished.clone();
    reflected[0] = FrameKind::ServerFinished as u8;
    let mut client = advanced_to(Side::Client, HandshakeState::AwaitFinished, secret);
    assert_eq!(
        read_message(&mut client, &reflected),
        Err(Error::AuthenticationFailed)
    );
    // Unchanged, it is not even the right kind of message.
    let mut client = advanced_to(Side::Client, HandshakeState::AwaitFinished, secret);
    assert_eq!(
        read_message(&mut client, &client_finished),
        Err(Error::UnexpectedMessage)
    );
}

#[test]
fn a_hello_reflected_back_to_its_sender_is_refused() {
    let secret = Secret::Password(PASSWORD);
    let mut client = client(secret);
    let hello = write_message(&mut client);
    assert_eq!(
        read_message(&mut client, &hello),
        Err(Error::UnexpectedMessage)
    );
    // Relabelled as a server hello, it has the wrong length.
    let mut client = session_support::client(secret);
    let mut hello = write_message(&mut client);
    hello[0] = FrameKind::ServerHello as u8;
    assert_eq!(
        read_message(&mut client, &hello),
        Err(Error::UnexpectedMessage)
    );
}

#[test]
fn a_replayed_record_is_refused_as_out_of_order() {
    let (client, server) = key_file_sessions();
    let (mut tx, _) = client.split();
    let (_, mut rx) = server.split();
    let records: Vec<Vec<u8>> = (0..4).map(|n| seal(&mut tx, b"pay 10 euros", n)).collect();
    assert_eq!(
        open(&mut rx, &records[0]),
        Ok(Got::Text(b"pay 10 euros".to_vec()))
    );
    assert_eq!(
        open(&mut rx, &records[0]),
        Err(Error::RecordOutOfOrder {
            expected: 1,
            received: 0
        })
    );

    let (client, server) = key_file_sessions();
    let (mut tx, _) = client.split();
    let (_, mut rx) = server.split();
    let records: Vec<Vec<u8>> = (0..4).map(|n| seal(&mut tx, b"pay 10 euros", n)).collect();
    for record in &records {
        assert!(open(&mut rx, record).is_ok());
    }
    assert_eq!(
        open(&mut rx, &records[1]),
        Err(Error::RecordOutOfOrder {
            expected: 4,
            received: 1
        })
    );
}

#[test]
fn reordered_records_are_refused_at_the_first_out_of_place() {
    let (client, server) = key_file_sessions();
    let (mut tx, _) = client.split();
    let (_, mut rx) = server.split();
    let first = seal(&mut tx, b"first", 1);
    let second = seal(&mut tx, b"second", 2);
    assert_eq!(
        open(&mut rx, &second),
        Err(Error::RecordOutOfOrder {
            expected: 0,
            received: 1
        })
    );
    assert_eq!(open(&mut rx, &first), Err(Error::SessionEnded));
}

#[test]
fn a_dropped_record_is_noticed_at_the_next_one() {
    let (client, server) = key_file_sessions();
    let (mut tx, _) = client.split();
    let (_, mut rx) = server.split();
    let records: Vec<Vec<u8>> = (0..3).map(|n| seal(&mut tx, &[b'a' + n], n)).collect();
    assert_eq!(open(&mut rx, &records[0]), Ok(Got::Text(b"a".to_vec())));
    assert_eq!(
        open(&mut rx, &records[2]),
        Err(Error::RecordOutOfOrder {
            expected: 1,
            received: 2
        })
    );
}

#[test]
fn a_dropped_close_is_a_truncation_not_a_clean_end() {
    let (client, server) = key_file_sessions();
    let (mut tx, _) = client.split();
    let (_, mut rx) = server.split();
    let text = seal(&mut tx, b"see you", 1);
    let _dropped_close = seal_close(&mut tx);
    let mut reader = ScriptedReader::new(text);
    let mut frames = new_frames();
    assert_eq!(
        receive(&mut rx, &mut reader, &mut frames),
        Ok(Got::Text(b"see you".to_vec()))
    );
    assert_eq!(
        receive(&mut rx, &mut reader, &mut frames),
        Err(SessionError::Protocol(Error::Truncated))
    );
}

#[test]
fn a_record_from_another_session_is_rejected() {
    let secret = Secret::PreSharedKey(&PSK);
    let (other_client, other_server) = connect(
        Handshake::new(
            client_config(secret),
            [1; 32],
            scalar_seed([1; 32]),
            Some(CLIENT_TIME),
        ),
        server(secret),
    )
    .sessions();
    let (mut other_client_tx, _) = other_client.split();
    let (mut other_server_tx, _) = other_server.split();
    // Same sequence number, same direction, same secret: only the session differs.
    let from_other_client = seal(&mut other_client_tx, b"hello", 1);
    let from_other_server = seal(&mut other_server_tx, b"hello", 1);
    let (client, server) = key_file_sessions();
    let (_, mut client_rx) = client.split();
    let (_, mut server_rx) = server.split();
    assert_eq!(
        open(&mut server_rx, &from_other_client),
        Err(Error::RecordRejected)
    );
    assert_eq!(
        open(&mut client_rx, &from_other_server),
        Err(Error::RecordRejected)
    );
}

#[test]
fn every_flipped_bit_in_a_record_body_is_rejected() {
    let (client, _) = key_file_sessions();
    let (mut tx, _) = client.split();
    let record = seal(&mut tx, b"transfer to alice", 1);
    for byte in 5..record.len() {
        for bit in 0..8 {
            let mut altered = record.clone();
            altered[byte] ^= 1 << bit;
            let (_, server) = key_file_sessions();
            let (_, mut rx) = server.split();
            assert_eq!(
                open(&mut rx, &altered),
                Err(Error::RecordRejected),
                "byte {byte} bit {bit}"
            );
            assert_eq!(open(&mut rx, &record), Err(Error::SessionEnded));
        }
    }
}

#[test]
fn every_flipped_bit_in_a_record_header_prevents_delivery() {
    let (client, _) = key_file_sessions();
    let (mut tx, _) = client.split();
    let record = seal(&mut tx, b"transfer to alice", 1);
    for byte in 0..5 {
        for bit in 0..8 {
            let mut altered = record.clone();
            altered[byte] ^= 1 << bit;
            let (_, server) = key_file_sessions();
            let (_, mut rx) = server.split();
            let mut reader = ScriptedReader::new(altered);
            let mut frames = new_frames();
            let result = receive(&mut rx, &mut reader, &mut frames);
            assert!(result.is_err(), "byte {byte} bit {bit}: {result:?}");
            assert!(
                !matches!(result, Err(SessionError::Protocol(Error::SessionEnded))),
                "byte {byte} bit {bit}: a specific error"
            );
        }
    }
}

#[test]
fn every_flipped_bit_in_a_key_confirmation_fails_authentication() {
    let secret = Secret::PreSharedKey(&PSK);
    for (from, kind) in [
        (Side::Client, FrameKind::ClientFinished),
        (Side::Server, FrameKind::ServerFinished),
    ] {
        for bit in 0..256 {
            let outcome = run_handshake(client(secret), server(secret), |side, bytes| {
                // Protocol 2's client flight: ClientShare (37 bytes), then ClientFinished.
                let at = if bytes[0] == FrameKind::ClientShare as u8 {
                    37
                } else {
                    0
                };
                if side == from && bytes.get(at) == Some(&(kind as u8)) {
                    bytes[at + 5 + bit / 8] ^= 1 << (bit % 8);
                }
            });
            let case = format!("{} bit {bit}", from.name());
            assert_eq!(
                outcome.client_error(),
                Some(Error::AuthenticationFailed),
                "{case}"
            );
            match from {
                Side::Client => {
                    assert_eq!(
                        outcome.server_error(),
                        Some(Error::AuthenticationFailed),
                        "{case}"
                    );
                    assert_eq!(
                        outcome.wire.last().unwrap(),
                        &(Side::Server, alert_bytes(1))
                    );
                }
                Side::Server => {
                    // The server finished first; the client's alert reaches its receiver, and
                    // the server's engine (which polls on once established) reports it.
                    assert_eq!(
                        outcome.wire.last().unwrap(),
                        &(Side::Client, alert_bytes(1))
                    );
                    assert_eq!(
                        outcome.server_states.last(),
                        Some(&HandshakeState::Established)
                    );
                    assert_eq!(
                        outcome.server_error(),
                        Some(Error::AuthenticationFailed),
                        "{case}"
                    );
                }
            }
        }
    }
}

/// What each side reports when one bit of a hello body is flipped in transit (key-file mode;
/// the ServerHello's share is judged by the caller).
fn expected_for_hello_flip(offset: usize, flipped: u8) -> (Error, Error) {
    // (the error of the side that reads the altered hello, the error of its sender)
    match offset {
        o if MAGIC.contains(&o) => (Error::NotAeschat, Error::PeerAborted),
        VERSION => (
            Error::UnsupportedProtocol { version: flipped },
            Error::VersionRefused,
        ),
        // Mode 2 (this test's) flipped to mode 1 is the other kind of secret; to anything else
        // it is no mode at all, a malformed hello.
        MODE if flipped == 1 => (Error::ModeMismatch, Error::ModeMismatch),
        MODE => (Error::UnexpectedMessage, Error::PeerAborted),
        // Nonce, time and maximum length: the transcripts differ, so the keys do.
        _ => (Error::AuthenticationFailed, Error::AuthenticationFailed),
    }
}

#[test]
fn every_flipped_bit_in_either_hello_body_stops_the_handshake_with_the_right_reason() {
    let secret = Secret::PreSharedKey(&PSK);
    for (from, kind, len) in [
        (Side::Client, FrameKind::ClientHello, 58),
        (Side::Server, FrameKind::ServerHello, 90),
    ] {
        for offset in 5..len {
            for bit in 0..8 {
                let mut flipped = 0;
                let outcome = run_handshake(client(secret), server(secret), |side, bytes| {
                    if side == from && bytes[0] == kind as u8 {
                        bytes[offset] ^= 1 << bit;
                        flipped = bytes[offset];
                    }
                });
                let (reader, sender) = match from {
                    Side::Client => (outcome.server_error(), outcome.client_error()),
                    Side::Server => (outcome.client_error(), outcome.server_error()),
                };
                let case = format!("{} offset {offset} bit {bit}", from.name());
                if from == Side::Server && SHARE.contains(&offset) {
                    // The server's CPace share: no longer an encoding (refused as malformed) or
                    // another element (other keys).
                    assert!(
                        matches!(
                            (reader, sender),
                            (Some(Error::UnexpectedMessage), Some(Error::PeerAborted))
                                | (
                                    Some(Error::AuthenticationFailed),
                                    Some(Error::AuthenticationFailed)
                                )
                        ),
                        "{case}: {reader:?} {sender:?}"
                    );
                    continue;
                }
                let (reader_error, sender_error) = expected_for_hello_flip(offset, flipped);
                assert_eq!(reader, Some(reader_error), "{case}: reader");
                assert_eq!(sender, Some(sender_error), "{case}: sender");
                assert!(
                    !outcome
                        .frames_by(Side::Server)
                        .iter()
                        .any(|f| f.kind == FrameKind::ServerFinished),
                    "{case}: the server confirmed"
                );
            }
        }
    }
}

#[test]
fn every_flipped_bit_in_a_handshake_frame_header_stops_the_handshake() {
    let secret = Secret::PreSharedKey(&PSK);
    for target in [
        FrameKind::ClientHello,
        FrameKind::ServerHello,
        FrameKind::ClientShare,
        FrameKind::ClientFinished,
        FrameKind::ServerFinished,
    ] {
        for byte in 0..5 {
            for bit in 0..8 {
                let outcome = run_handshake(client(secret), server(secret), |_, bytes| {
                    // Protocol 2's client flight: ClientShare (37 bytes), then ClientFinished.
                    let at = match (bytes[0], target) {
                        (7, FrameKind::ClientFinished) => 37,
                        _ => 0,
                    };
                    if bytes.get(at) == Some(&(target as u8)) {
                        bytes[at + byte] ^= 1 << bit;
                    }
                });
                let case = format!("{target:?} byte {byte} bit {bit}");
                assert!(
                    outcome.client.is_err(),
                    "{case}: the client was established"
                );
                if target != FrameKind::ServerFinished {
                    assert!(
                        outcome.server.is_err(),
                        "{case}: the server was established"
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Framing: over-long frames, cut connections.

#[test]
fn a_frame_longer_than_the_maximum_is_refused_from_its_header_without_reading_its_body() {
    let max = DEFAULT_FRAME_CAPACITY - 5;
    for announced in [max as u32 + 1, 1 << 24, u32::MAX] {
        let (_, server) = key_file_sessions();
        let (_, mut rx) = server.split();
        let mut stream = vec![5];
        stream.extend_from_slice(&announced.to_be_bytes());
        stream.extend(vec![0x41; 100_000]);
        // The driver reads whatever the transport has ready into its inbox (it no longer stops
        // at frame boundaries), so the reader hands out the header alone: one more read would show.
        let mut reader = ScriptedReader::chunked(stream, vec![5]);
        let mut frames = new_frames();
        assert_eq!(
            receive(&mut rx, &mut reader, &mut frames),
            Err(SessionError::Protocol(Error::FrameTooLong { max }))
        );
        assert_eq!(reader.consumed(), 5, "only the header was read");
    }
    // The largest allowed length is read in full.
    let (_, server) = key_file_sessions();
    let (_, mut rx) = server.split();
    let mut stream = frame_bytes(5, &vec![0x41; max]);
    stream.push(0xFF);
    let mut reader = ScriptedReader::new(stream);
    let mut frames = new_frames();
    assert_eq!(
        receive(&mut rx, &mut reader, &mut frames),
        Err(SessionError::Protocol(Error::RecordRejected))
    );
    assert_eq!(reader.consumed(), 5 + max, "the frame, and not a byte more");
}

#[test]
fn a_frame_longer_than_a_small_readers_capacity_is_refused_during_the_handshake_with_an_alert() {
    const MAX_MESSAGE: usize = 100;
    const CAPACITY: usize = frame_capacity(MAX_MESSAGE);
    let max = CAPACITY - 5;
    let mut stream = vec![1];
    stream.extend_from_slice(&(max as u32 + 1).to_be_bytes());
    stream.extend(vec![0; 10_000]);
    // The driver reads whatever the transport has ready into its inbox (it no longer stops
    // at frame boundaries), so the reader hands out the header alone: one more read would show.
    let mut reader = ScriptedReader::chunked(stream, vec![5]);
    let mut writer: Vec<u8> = Vec::new();
    let mut frames = Inbox::new([0u8; CAPACITY]);
    let config = server_config(Secret::Password(PASSWORD)).with_max_message_len(MAX_MESSAGE);
    let result = handshake_over(
        &mut reader,
        &mut writer,
        &mut frames,
        Handshake::new(
            config,
            SERVER_NONCE,
            scalar_seed(SERVER_NONCE),
            Some(SERVER_TIME),
        ),
    );
    assert_eq!(
        result.err(),
        Some(SessionError::Protocol(Error::FrameTooLong { max }))
    );
    assert_eq!(reader.consumed(), 5);
    assert_eq!(writer, alert_bytes(6));
}

#[test]
fn a_frame_reader_too_small_for_the_announced_maximum_is_refused_before_anything_is_sent() {
    const CAPACITY: usize = frame_capacity(100);
    let mut reader = ScriptedReader::new(client_hello(Secret::Password(PASSWORD)));
    let mut writer: Vec<u8> = Vec::new();
    let mut frames = Inbox::new([0u8; CAPACITY]);
    // The default maximum (64 KiB) would be announced, but such records would not fit.
    let result = handshake_over(
        &mut reader,
        &mut writer,
        &mut frames,
        server(Secret::Password(PASSWORD)),
    );
    assert_eq!(
        result.err(),
        Some(SessionError::Protocol(Error::BufferTooSmall {
            required: DEFAULT_FRAME_CAPACITY
        }))
    );
    assert!(writer.is_empty());
    assert_eq!(reader.consumed(), 0);
}

#[test]
fn a_connection_cut_during_the_handshake_is_an_interrupted_handshake() {
    let secret = Secret::Password(PASSWORD);
    let hello = server_hello(secret);
    for cut in [0, 1, 4, 5, 30, hello.len() - 1, hello.len()] {
        let (result, wrote, _) = drive(client(secret), hello[..cut].to_vec());
        assert_eq!(
            protocol_error(&result),
            Some(Error::HandshakeInterrupted),
            "cut at {cut}"
        );
        // Nothing is said to a peer that is gone, and nothing derived was sent before it went:
        // a whole hello lets the client derive and confirm (hello, share, finished), and only
        // then does it wait.
        let expected_frames = if cut == hello.len() { 3 } else { 1 };
        assert_eq!(frames_of(&wrote).len(), expected_frames, "cut at {cut}");
    }
    let (result, wrote, _) = drive(server(secret), client_hello(secret)[..20].to_vec());
    assert_eq!(protocol_error(&result), Some(Error::HandshakeInterrupted));
    assert!(wrote.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Version and mode mismatches.

#[test]
fn a_client_of_another_version_is_refused_by_the_server_and_told_so() {
    let secret = Secret::Password(PASSWORD);
    for version in [0, 1, 0x80, 0xFF] {
        let mut hello = client_hello(secret);
        hello[VERSION] = version;
        let (result, wrote, _) = drive(server(secret), hello);
        assert_eq!(
            protocol_error(&result),
            Some(Error::UnsupportedProtocol { version })
        );
        assert_eq!(wrote, alert_bytes(2), "version {version}: only the alert");
        // The client that sent it reads the alert as a refusal of its version.
        let (result, client_wrote, _) = drive(client(secret), wrote);
        assert_eq!(protocol_error(&result), Some(Error::VersionRefused));
        assert_eq!(
            client_wrote,
            client_hello(secret),
            "no alert answers an alert"
        );
    }
    // A hello of another version may have another layout: the version decides first.
    let (result, _, _) = drive(server(secret), frame_bytes(1, b"AESCHAT\x01"));
    assert_eq!(
        protocol_error(&result),
        Some(Error::UnsupportedProtocol { version: 1 })
    );
    let (result, wrote, _) = drive(server(secret), frame_bytes(1, b"AESCHAT\x01 and more"));
    assert_eq!(
        protocol_error(&result),
        Some(Error::UnsupportedProtocol { version: 1 })
    );
    assert_eq!(wrote, alert_bytes(2));
}

#[test]
fn a_server_of_another_version_is_refused_by_the_client_and_told_so() {
    let secret = Secret::Password(PASSWORD);
    let mut hello = server_hello(secret);
    hello[VERSION] = 1;
    let (result, wrote, _) = drive(client(secret), hello);
    assert_eq!(
        protocol_error(&result),
        Some(Error::UnsupportedProtocol { version: 1 })
    );
    assert_eq!(wrote, [client_hello(secret), alert_bytes(2)].concat());
    let mut server = advanced_to(Side::Server, HandshakeState::AwaitFinished, secret);
    assert_eq!(
        read_message(&mut server, &alert_bytes(2)),
        Err(Error::VersionRefused)
    );
}

#[test]
fn a_password_side_and_a_key_file_side_both_report_mode_mismatch() {
    let password = Secret::Password(PASSWORD);
    let key_file = Secret::PreSharedKey(&PSK);
    for (client_secret, server_secret) in [(password, key_file), (key_file, password)] {
        let ((client_result, client_wrote), (server_result, server_wrote)) = on_two_threads(
            |mut end| {
                let mut frames = new_frames();
                let handshake = client(client_secret);
                handshake_over(&mut end.reader, &mut end.writer, &mut frames, handshake).map(drop)
            },
            |mut end| {
                let mut frames = new_frames();
                let handshake = server(server_secret);
                handshake_over(&mut end.reader, &mut end.writer, &mut frames, handshake).map(drop)
            },
        );
        let mismatch = Err(SessionError::Protocol(Error::ModeMismatch));
        assert_eq!(client_result, mismatch, "client ({client_secret:?})");
        assert_eq!(server_result, mismatch, "server ({server_secret:?})");
        assert_eq!(
            server_wrote,
            alert_bytes(3),
            "the server answers only with the alert"
        );
        assert_eq!(client_wrote, client_hello(client_secret));
    }
    // A client that notices first (the server hello's mode) says so too.
    let mut hello = server_hello(password);
    hello[MODE] = 2;
    let (result, wrote, _) = drive(client(password), hello);
    assert_eq!(protocol_error(&result), Some(Error::ModeMismatch));
    assert_eq!(wrote, [client_hello(password), alert_bytes(3)].concat());
}

// ---------------------------------------------------------------------------------------------
// Peers that are not aeschat.

/// The start of what the old chat sent: a bare Fernet token, base64url, ending in a newline.
fn legacy_token() -> Vec<u8> {
    let key = Key::from_bytes([9; 32]);
    let mut out = [0u8; token_len(5)];
    let token = encrypt(
        &key,
        b"hello",
        1_700_000_000,
        &Iv::from_bytes([1; 16]),
        &mut out,
    )
    .unwrap();
    let mut bytes = token.as_bytes().to_vec();
    bytes.push(b'\n');
    bytes
}

#[test]
fn a_peer_sending_raw_old_style_tokens_is_named_a_legacy_peer() {
    let secret = Secret::Password(PASSWORD);
    // A legacy client connecting to an aeschat server.
    // The driver reads whatever the transport has ready into its inbox (it no longer stops
    // at frame boundaries), so the reader hands out five bytes alone: one more read would show.
    let (result, wrote, consumed) = drive_chunked(server(secret), legacy_token(), vec![5]);
    assert_eq!(protocol_error(&result), Some(Error::LegacyPeer));
    assert!(
        wrote.is_empty(),
        "a legacy peer would not understand an alert"
    );
    assert_eq!(consumed, 5, "recognised from the first five bytes");
    // An aeschat client connecting to a legacy peer that sends first.
    let (result, wrote, _) = drive(client(secret), legacy_token());
    assert_eq!(protocol_error(&result), Some(Error::LegacyPeer));
    assert_eq!(wrote, client_hello(secret));
    // A token in the middle of a session.
    let (_, server) = key_file_sessions();
    let (_, mut rx) = server.split();
    let mut reader = ScriptedReader::new(legacy_token());
    let mut frames = new_frames();
    assert_eq!(
        receive(&mut rx, &mut reader, &mut frames),
        Err(SessionError::Protocol(Error::LegacyPeer))
    );
}

#[test]
fn a_hello_that_is_not_aeschat_is_named_so_and_answered_with_an_alert() {
    let secret = Secret::Password(PASSWORD);
    for body in [
        &b""[..],
        b"AESCHA",
        b"AESCHAX\x01",
        b"aeschat\x01\x01",
        b"HTTP/1.1 200 OK\r\n",
    ] {
        let (result, wrote, _) = drive(server(secret), frame_bytes(1, body));
        assert_eq!(protocol_error(&result), Some(Error::NotAeschat), "{body:?}");
        assert_eq!(wrote, alert_bytes(6), "{body:?}");
    }
    let mut hello = server_hello(secret);
    hello[MAGIC.start] = b'X';
    let (result, wrote, _) = drive(client(secret), hello);
    assert_eq!(protocol_error(&result), Some(Error::NotAeschat));
    assert_eq!(wrote, [client_hello(secret), alert_bytes(6)].concat());
    // The alert "unexpected message" reaches the peer as an abort.
    let (result, _, _) = drive(client(secret), alert_bytes(6));
    assert_eq!(protocol_error(&result), Some(Error::PeerAborted));
}

#[test]
fn a_stranger_speaking_another_protocol_is_named_not_aeschat() {
    let secret = Secret::Password(PASSWORD);
    for opening in [
        &b"GET / HTTP/1.1\r\nHost: example.org\r\n\r\n"[..],
        b"SSH-2.0-OpenSSH_9.6\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    ] {
        // The driver reads whatever the transport has ready into its inbox (it no longer stops
        // at frame boundaries), so the reader hands out five bytes alone: one more read would show.
        let (result, wrote, consumed) = drive_chunked(server(secret), opening.to_vec(), vec![5]);
        let case = String::from_utf8_lossy(opening);
        assert_eq!(protocol_error(&result), Some(Error::NotAeschat), "{case}");
        assert_eq!(wrote, alert_bytes(6), "{case}");
        assert_eq!(consumed, 5, "{case}: recognised from the first five bytes");
    }
}

#[test]
fn frames_of_the_wrong_kind_in_the_handshake_are_unexpected_and_answered_with_an_alert() {
    let secret = Secret::Password(PASSWORD);
    let (client_session, _) = key_file_sessions();
    let (mut tx, _) = client_session.split();
    let record = seal(&mut tx, b"too early", 1);
    for input in [
        record.clone(),
        frame_bytes(3, &[0; 32]),
        frame_bytes(2, &[0; 57]),
    ] {
        let (result, wrote, _) = drive(server(secret), input.clone());
        assert_eq!(
            protocol_error(&result),
            Some(Error::UnexpectedMessage),
            "{input:?}"
        );
        assert_eq!(wrote, alert_bytes(6), "{input:?}");
    }
    // A first frame of no known kind is a stranger's.
    for input in [frame_bytes(9, b"no such kind"), frame_bytes(0, b"")] {
        let (result, wrote, _) = drive(server(secret), input.clone());
        assert_eq!(
            protocol_error(&result),
            Some(Error::NotAeschat),
            "{input:?}"
        );
        assert_eq!(wrote, alert_bytes(6), "{input:?}");
    }
    // Later, it is a broken or tampered peer.
    let input = [client_hello(secret), frame_bytes(9, b"no such kind")].concat();
    let (result, wrote, _) = drive(server(secret), input);
    assert_eq!(protocol_error(&result), Some(Error::UnexpectedMessage));
    assert_eq!(wrote, [server_hello(secret), alert_bytes(6)].concat());
    let mut server = advanced_to(Side::Server, HandshakeState::AwaitFinished, secret);
    assert_eq!(
        read_message(&mut server, &record),
        Err(Error::UnexpectedMessage)
    );
    assert_eq!(server.state(), HandshakeState::Failed);
}

#[test]
fn a_handshake_message_inside_the_session_is_unexpected() {
    let secret = Secret::PreSharedKey(&PSK);
    let outcome = connect(client(secret), server(secret));
    let server_finished = outcome.wire[3].1.clone();
    let client_hello = outcome.wire[0].1.clone();
    let (client, server) = outcome.sessions();
    let (_, mut client_rx) = client.split();
    let (_, mut server_rx) = server.split();
    assert_eq!(
        open(&mut client_rx, &server_finished),
        Err(Error::UnexpectedMessage)
    );
    assert_eq!(
        open(&mut server_rx, &client_hello),
        Err(Error::UnexpectedMessage)
    );
}

// ---------------------------------------------------------------------------------------------
// Alerts.

/// What a handshake on `side`, waiting in `state`, reports for an alert with `body`: an alert is
/// believed only from the role that sends it, and alert 1 only once the client has sent its
/// ClientFinished (docs/PROTOCOL.md 7.1); anything else is the peer aborting.
fn expected_alert_error(side: Side, state: HandshakeState, body: &[u8]) -> Error {
    match (side, body) {
        (Side::Client, [1]) if state == HandshakeState::AwaitFinished => {
            Error::AuthenticationFailed
        }
        (_, [2]) => Error::VersionRefused,
        (_, [3]) => Error::ModeMismatch,
        // 4 is reserved (protocol 1's iteration refusal): PeerAborted from either role, as 0 is.
        (Side::Client, [5]) => Error::PeerBusy,
        (Side::Client, &[7, high, low]) => Error::RetryLater {
            seconds: u16::from_be_bytes([high, low]),
        },
        _ => Error::PeerAborted,
    }
}

/// Alert bodies both layers are tried with: every code (reserved 4 included), a retry wait of
/// two lengths, and malformed ones (no code 0, a retry without its seconds, a code with a stray byte).
const ALERT_BODIES: [&[u8]; 11] = [
    &[0],
    &[1],
    &[2],
    &[3],
    &[4],
    &[5],
    &[6],
    &[7, 0, 2],
    &[7, 1, 44],
    &[7],
    &[1, 1],
];

#[test]
fn each_alert_is_believed_only_from_the_role_that_sends_it_in_every_waiting_state() {
    let secret = Secret::PreSharedKey(&PSK);
    for body in ALERT_BODIES {
        for (side, state) in AWAITING {
            let mut handshake = advanced_to(side, state, secret);
            assert_eq!(
                read_message(&mut handshake, &frame_bytes(6, body)),
                Err(expected_alert_error(side, state, body)),
                "alert {body:?} to {} in {state:?}",
                side.name()
            );
            assert_eq!(handshake.state(), HandshakeState::Failed);
        }
    }
}

/// The whole frames in `bytes`, each as its own bytes (protocol 2's client flight is two).
fn split_frames(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let body = u32::from_be_bytes(bytes[at + 1..at + 5].try_into().unwrap()) as usize;
        let end = at + 5 + body;
        frames.push(bytes[at..end].to_vec());
        at = end;
    }
    frames
}

/// An engine on `side`, fed the honest peer's recorded frames one at a time (as an engine, not
/// by hand), polled until it waits for input in `state`.
fn engine_awaiting(side: Side, state: HandshakeState, secret: Secret<'static>) -> Engine<'static> {
    let wire = connect(client(secret), server(secret)).wire;
    let mut from_peer = wire
        .into_iter()
        .filter(|(from, _)| *from == side.peer())
        .flat_map(|(_, bytes)| split_frames(&bytes));
    let mut engine = match side {
        Side::Client => client_engine(secret),
        Side::Server => server_engine(secret),
    };
    let mut input = Vec::new();
    loop {
        let step = engine.poll(&mut input);
        let (discard, needs_input) = (step.discard, step.action == Action::NeedInput);
        match step.action {
            Action::Transmit(_) | Action::Established | Action::NeedInput => {}
            Action::DeriveKeys => engine.derive_keys(),
            other => panic!("{} before {state:?}: {other:?}", side.name()),
        }
        input.drain(..discard);
        if needs_input {
            if engine.handshake_state() == Some(state) {
                return engine;
            }
            input.extend(from_peer.next().expect("the peer's next frame"));
        }
    }
}

#[test]
fn the_engine_believes_each_alert_only_from_the_role_that_sends_it_and_never_answers_it() {
    let secret = Secret::PreSharedKey(&PSK);
    for body in ALERT_BODIES {
        for (side, state) in AWAITING {
            let case = format!("alert {body:?} to the {} engine in {state:?}", side.name());
            let mut engine = engine_awaiting(side, state, secret);
            let mut alert = frame_bytes(6, body);
            let step = engine.poll(&mut alert);
            // Failed at once: no alert (nor anything else) is transmitted in answer.
            assert_eq!(
                step.action,
                Action::Failed(expected_alert_error(side, state, body)),
                "{case}"
            );
            assert_eq!(
                engine.poll(&mut []).action,
                Action::Failed(expected_alert_error(side, state, body)),
                "{case}: the failure stays the answer"
            );
            assert!(!engine.is_established(), "{case}");
        }
    }
}

#[test]
fn no_alert_before_the_servers_finished_passes_for_a_failed_password() {
    // A stranger's alert 1 as the first frame, or after the hello: the server has checked no
    // ClientFinished, so this is no guess (it used to stop a server after five).
    let secret = Secret::Password(PASSWORD);
    for state in [HandshakeState::AwaitHello, HandshakeState::AwaitFinished] {
        let mut handshake = advanced_to(Side::Server, state, secret);
        assert_eq!(
            read_message(&mut handshake, &alert_bytes(1)),
            Err(Error::PeerAborted),
            "{state:?}"
        );
    }
}

#[test]
fn after_the_handshake_only_the_servers_late_alert_1_is_accepted() {
    for code in 0..=8u8 {
        let (client, server) = key_file_sessions();
        let (_, mut server_rx) = server.split();
        let expected = if code == 1 {
            Error::AuthenticationFailed
        } else {
            Error::UnexpectedMessage
        };
        assert_eq!(
            open(&mut server_rx, &alert_bytes(code)),
            Err(expected),
            "server, alert {code}"
        );
        let (_, mut client_rx) = client.split();
        assert_eq!(
            open(&mut client_rx, &alert_bytes(code)),
            Err(Error::UnexpectedMessage),
            "client, alert {code}"
        );
    }
    // Once the server has received a record, even alert 1 can only be forged.
    let (client, server) = key_file_sessions();
    let (mut client_tx, _) = client.split();
    let (_, mut server_rx) = server.split();
    let record = seal(&mut client_tx, b"first", 1);
    assert_eq!(
        open(&mut server_rx, &record),
        Ok(Got::Text(b"first".to_vec()))
    );
    assert_eq!(
        open(&mut server_rx, &alert_bytes(1)),
        Err(Error::UnexpectedMessage)
    );
}

#[test]
fn an_unknown_alert_is_reported_as_the_peer_aborting() {
    let secret = Secret::PreSharedKey(&PSK);
    let unknown: [Vec<u8>; 7] = [
        alert_bytes(0),
        alert_bytes(6),
        alert_bytes(8),
        alert_bytes(0xFF),
        frame_bytes(6, b""),
        frame_bytes(6, &[1, 1]),
        frame_bytes(6, &[2; 200]),
    ];
    for alert in &unknown {
        for (side, state) in AWAITING {
            let mut handshake = advanced_to(side, state, secret);
            assert_eq!(
                read_message(&mut handshake, alert),
                Err(Error::PeerAborted),
                "{alert:?} to {} in {state:?}",
                side.name()
            );
        }
        let (_, server) = key_file_sessions();
        let (_, mut rx) = server.split();
        assert_eq!(
            open(&mut rx, alert),
            Err(Error::UnexpectedMessage),
            "{alert:?} in session"
        );
    }
}

#[test]
fn an_alert_from_the_peer_is_never_answered_with_an_alert() {
    let secret = Secret::Password(PASSWORD);
    for code in [0, 1, 2, 3, 4, 5, 6, 7, 0xFF] {
        let (result, wrote, _) = drive(client(secret), alert_bytes(code));
        assert!(result.is_err());
        assert_eq!(wrote, client_hello(secret), "client answered alert {code}");
        let (result, wrote, _) = drive(server(secret), alert_bytes(code));
        assert!(result.is_err());
        assert!(
            wrote.is_empty(),
            "server answered alert {code} instead of a hello"
        );
        let input = [client_hello(secret), alert_bytes(code)].concat();
        let (result, wrote, _) = drive(server(secret), input);
        assert!(result.is_err());
        assert_eq!(wrote, server_hello(secret), "server answered alert {code}");
    }
}

#[test]
fn a_busy_server_alert_ends_the_clients_handshake_as_peer_busy() {
    let secret = Secret::Password(PASSWORD);
    let mut out = [0u8; 6];
    let busy = Alert::Busy.write(&mut out).unwrap().to_vec();
    assert_eq!(busy, alert_bytes(5));
    let (result, wrote, _) = drive(client(secret), busy);
    assert_eq!(protocol_error(&result), Some(Error::PeerBusy));
    assert_eq!(wrote, client_hello(secret));
}

#[test]
fn alerts_are_sent_for_exactly_the_errors_the_peer_should_hear_of() {
    let expected = [
        (Error::AuthenticationFailed, Some(1)),
        (Error::UnsupportedProtocol { version: 9 }, Some(2)),
        (Error::ModeMismatch, Some(3)),
        (Error::UnexpectedMessage, Some(6)),
        (Error::NotAeschat, Some(6)),
        (Error::FrameTooLong { max: 10 }, Some(6)),
        // A legacy peer would not understand; the rest came from the peer or the transport.
        (Error::LegacyPeer, None),
        (Error::VersionRefused, None),
        (Error::PeerAborted, None),
        // A server's own refusals, which a gate before its key derivation returns.
        (Error::PeerBusy, Some(5)),
        (Error::HandshakeInterrupted, None),
        (Error::Truncated, None),
        (Error::RecordRejected, None),
    ];
    for (error, code) in expected {
        let alert = Alert::for_error(error);
        assert_eq!(alert.map(|a| a.code()), code, "{error:?}");
        if let Some(alert) = alert {
            let mut out = [0u8; Alert::MAX_FRAME_LEN];
            assert_eq!(alert.write(&mut out).unwrap(), alert_bytes(code.unwrap()));
        }
    }
}

#[test]
fn an_alert_injected_into_a_session_ends_it_as_an_error_never_as_a_clean_close() {
    for code in 0..=255u8 {
        let (_, server) = key_file_sessions();
        let (_, mut rx) = server.split();
        let result = open(&mut rx, &alert_bytes(code));
        assert!(result.is_err(), "alert {code}: {result:?}");
        assert_eq!(rx.end_of_stream(), Error::SessionEnded, "alert {code}");
    }
}

#[test]
fn an_alert_after_the_first_record_is_unexpected_not_a_reason() {
    for code in [1, 2, 3, 4, 5, 6] {
        let (client, server) = key_file_sessions();
        let (mut tx, _) = client.split();
        let (_, mut rx) = server.split();
        assert_eq!(
            open(&mut rx, &seal(&mut tx, b"first", 1)),
            Ok(Got::Text(b"first".to_vec()))
        );
        // Only a forger sends an alert now: it must not pass for a wrong password.
        assert_eq!(
            open(&mut rx, &alert_bytes(code)),
            Err(Error::UnexpectedMessage),
            "alert {code}"
        );
        assert_eq!(
            open(&mut rx, &seal(&mut tx, b"second", 2)),
            Err(Error::SessionEnded)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// After a failure.

#[test]
fn after_any_failure_the_receiver_returns_session_ended() {
    let (client, _) = key_file_sessions();
    let (mut tx, _) = client.split();
    let records: Vec<Vec<u8>> = (0..3).map(|n| seal(&mut tx, b"text", n)).collect();
    let mut tampered = records[0].clone();
    tampered[40] ^= 4;
    let failures: [(&str, Vec<u8>); 4] = [
        ("tampered", tampered),
        ("out of order", records[1].clone()),
        ("alert", alert_bytes(1)),
        ("handshake message", frame_bytes(4, &[0; 32])),
    ];
    for (what, bad) in failures {
        let (_, server) = key_file_sessions();
        let (_, mut rx) = server.split();
        assert!(open(&mut rx, &bad).is_err(), "{what}");
        for record in &records {
            assert_eq!(open(&mut rx, record), Err(Error::SessionEnded), "{what}");
        }
        assert_eq!(rx.end_of_stream(), Error::SessionEnded, "{what}");
    }
}

#[test]
fn after_a_truncation_the_receiver_returns_session_ended() {
    let (client, server) = key_file_sessions();
    let (mut tx, _) = client.split();
    let (_, mut rx) = server.split();
    let record = seal(&mut tx, b"late", 0);
    assert_eq!(rx.end_of_stream(), Error::Truncated);
    assert_eq!(open(&mut rx, &record), Err(Error::SessionEnded));
}

#[test]
fn receive_after_the_session_ended_touches_no_more_of_the_transport() {
    let (client, server) = key_file_sessions();
    let (mut tx, _) = client.split();
    let (_, mut rx) = server.split();
    let mut tampered = seal(&mut tx, b"one", 0);
    tampered[30] ^= 1;
    let next = seal(&mut tx, b"two", 1);
    // The driver reads whatever the transport has ready into its inbox (it no longer stops
    // at frame boundaries), so the reader hands out the tampered record alone: one more read would show.
    let mut reader =
        ScriptedReader::chunked([tampered.clone(), next].concat(), vec![tampered.len()]);
    let mut frames = new_frames();
    assert_eq!(
        receive(&mut rx, &mut reader, &mut frames),
        Err(SessionError::Protocol(Error::RecordRejected))
    );
    assert_eq!(reader.consumed(), tampered.len());
    assert_eq!(
        receive(&mut rx, &mut reader, &mut frames),
        Err(SessionError::Protocol(Error::SessionEnded))
    );
    // An ended session must not block on, or consume, the transport: a chat that keeps calling
    // `receive` after the peer's close would otherwise wait for bytes that never come.
    assert_eq!(reader.consumed(), tampered.len(), "the next frame was read");
}

#[test]
fn a_recorded_client_handshake_replayed_to_a_fresh_server_fails_authentication() {
    let secret = Secret::Password(PASSWORD);
    let recorded = connect(client(secret), server(secret));
    let replayed = [recorded.wire[0].1.clone(), recorded.wire[2].1.clone()].concat();
    // The new server draws a new nonce: the old confirmation does not match its transcript.
    let fresh = Handshake::new(
        server_config(secret),
        [0x77; 32],
        scalar_seed([0x77; 32]),
        Some(SERVER_TIME),
    );
    let (result, wrote, _) = drive(fresh, replayed.clone());
    assert_eq!(protocol_error(&result), Some(Error::AuthenticationFailed));
    let kinds: Vec<FrameKind> = frames_of(&wrote).iter().map(|f| f.kind).collect();
    assert_eq!(kinds, [FrameKind::ServerHello, FrameKind::Alert]);
    // The control: the same server nonce accepts it (the replay test can fail).
    let (result, _, _) = drive(server(secret), replayed);
    assert!(result.is_ok());
}

// ---------------------------------------------------------------------------------------------
// Random garbage in every state: never a panic, never a session.

fn any_frame() -> impl Strategy<Value = (u8, Vec<u8>)> {
    let body = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..80),
        prop::collection::vec(any::<u8>(), 0..2000),
        (0usize..70).prop_map(|n| {
            let mut body = b"AESCHAT\x01".to_vec();
            body.extend(vec![1; n]);
            body
        }),
    ];
    (any::<u8>(), body)
}

/// A valid hello or confirmation with random bytes replaced, cut or appended.
fn mutated(original: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = original.len();
    (
        prop::collection::vec((0..len, any::<u8>()), 0..4),
        0..=len + 3,
        prop::collection::vec(any::<u8>(), 0..3),
    )
        .prop_map(move |(changes, keep, extra)| {
            let mut bytes = original.clone();
            for (at, value) in changes {
                bytes[at] = value;
            }
            bytes.truncate(keep.max(5));
            bytes.extend(extra);
            bytes
        })
}

fn check_garbage_in_handshake(side: Side, state: HandshakeState, kind: u8, body: &mut [u8]) {
    let secret = Secret::PreSharedKey(&PSK);
    let Some(kind) = FrameKind::from_byte(kind) else {
        return;
    };
    let mut handshake = advanced_to(side, state, secret);
    let result = handshake.read_message(Frame { kind, body });
    match result {
        Err(_) => assert_eq!(handshake.state(), HandshakeState::Failed),
        // Only a hello can be accepted without the secret, and then the confirmation is next.
        Ok(()) => assert!(
            state == HandshakeState::AwaitHello
                && matches!(
                    handshake.state(),
                    HandshakeState::SendHello | HandshakeState::DeriveKeys
                ),
            "{} in {state:?} accepted a {kind:?}",
            side.name()
        ),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_frames_never_panic_a_handshake_in_any_waiting_state(
        (kind, mut body) in any_frame(),
        which in 0usize..4,
    ) {
        let (side, state) = AWAITING[which];
        check_garbage_in_handshake(side, state, kind, &mut body);
    }

    #[test]
    fn random_frames_never_open_in_a_receiver(
        (kind, mut body) in any_frame(),
    ) {
        let Some(kind) = FrameKind::from_byte(kind) else { return Ok(()); };
        let (_, server) = key_file_sessions();
        let (_, mut rx): (_, Receiver) = server.split();
        let result = rx.open(Frame { kind, body: &mut body }).map(|_| ());
        prop_assert!(result.is_err());
        prop_assert_eq!(rx.end_of_stream(), Error::SessionEnded);
    }

    #[test]
    fn random_byte_streams_never_panic_the_driver_and_never_establish_a_session(
        stream in prop::collection::vec(any::<u8>(), 0..300),
        frames in prop::collection::vec(any_frame(), 0..4),
        server_side in any::<bool>(),
    ) {
        let mut input = stream;
        for (kind, body) in frames {
            input.extend(frame_bytes(kind, &body));
        }
        let secret = Secret::PreSharedKey(&PSK);
        let handshake = if server_side { server(secret) } else { client(secret) };
        let (result, wrote, _) = drive(handshake, input);
        prop_assert!(result.is_err());
        // Whatever it wrote is whole frames: its own messages, at most one alert, last.
        let written = frames_of(&wrote);
        let alerts = written.iter().filter(|f| f.kind == FrameKind::Alert).count();
        prop_assert!(alerts <= 1);
        if alerts == 1 {
            prop_assert_eq!(written.last().unwrap().kind, FrameKind::Alert);
        }
    }

    #[test]
    fn mutated_client_hellos_never_panic_the_server(
        bytes in mutated(client_hello(Secret::PreSharedKey(&PSK))),
    ) {
        let secret = Secret::PreSharedKey(&PSK);
        let (result, wrote, _) = drive(server(secret), bytes);
        // No confirmation from the client follows, so the server cannot finish.
        prop_assert!(result.is_err());
        let written = frames_of(&wrote);
        prop_assert!(written.len() <= 2);
    }

    #[test]
    fn mutated_server_hellos_never_panic_the_client(
        bytes in mutated(server_hello(Secret::PreSharedKey(&PSK))),
    ) {
        let secret = Secret::PreSharedKey(&PSK);
        let (result, _, _) = drive(client(secret), bytes);
        prop_assert!(result.is_err());
    }

    #[test]
    fn mutated_confirmations_never_complete_a_handshake(
        bytes in mutated(frame_bytes(4, &[0x33; 32])),
        server_side in any::<bool>(),
    ) {
        let secret = Secret::PreSharedKey(&PSK);
        let (side, kind) = if server_side {
            (Side::Server, FrameKind::ClientFinished as u8)
        } else {
            (Side::Client, FrameKind::ServerFinished as u8)
        };
        let mut bytes = bytes;
        bytes[0] = kind;
        let parsed = parse_chunks::<DEFAULT_FRAME_CAPACITY>([&bytes[..]]);
        if let Some(mut frame) = parsed.frames.into_iter().next() {
            let mut handshake = advanced_to(side, HandshakeState::AwaitFinished, secret);
            let mut result = handshake.read_message(Frame { kind: frame.kind, body: &mut frame.body });
            // A server checks the confirmation once it has derived its keys.
            if result.is_ok() && side == Side::Server {
                prop_assert_eq!(handshake.state(), HandshakeState::DeriveKeys);
                result = handshake.derive_keys();
            }
            // 32 bytes that are not the MAC fail authentication; any other length is malformed.
            let expected = if frame.body.len() == 32 {
                Error::AuthenticationFailed
            } else {
                Error::UnexpectedMessage
            };
            prop_assert_eq!(result, Err(expected));
        }
    }
}
