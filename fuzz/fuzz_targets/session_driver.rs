//! The blocking driver (`handshake`, `receive`, `send_text`, `send_close`: short loops over the
//! engine and an `Inbox`) over a transport the
//! fuzzer controls: the genuine peer's bytes (its handshake messages, then records and maybe
//! its close) changed on the way, served in reads of fuzzer-chosen sizes, with a failure or an
//! end of stream at a fuzzer-chosen offset; and a writer that takes fuzzer-chosen amounts per
//! call and fails, or takes no more, after a fuzzer-chosen total.
//!
//! Beyond "no panic", it checks what the driver promises a firmware author:
//! - the handshake succeeds exactly when the peer's handshake bytes arrive intact and this
//!   side's own messages could be written, and then this side wrote exactly its messages; on
//!   failure it wrote a prefix of them and at most one alert;
//! - every text received is the peer's next genuine text (nothing altered or injected is ever
//!   returned), all of them and then the close when the stream arrives intact;
//! - after the session ended, `receive` reports it without touching the transport;
//! - what this side sends through a writer that takes a few bytes at a time opens, in order,
//!   on the genuine peer.
#![no_main]

use aeschat_core::fernet::Key;
use aeschat_core::session::{
    frame_capacity, receive, record_frame_len, send_close, send_text, Config, Engine, Error,
    FrameKind, Inbox, Incoming, Read, Receiver, Role, Secret, SessionError, Write,
};
use aeschat_fuzz::{engine, frames_in, psk, Mutation};
use aeschat_testkit::{Pair, Side, TestRng};
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

/// The longest message either side accepts: past the token codec's internal chunk sizes (768
/// and 1024 bytes), short enough to stay fast.
const MAX_MESSAGE: usize = 1500;
const CAPACITY: usize = frame_capacity(MAX_MESSAGE);
const TIME: u64 = 1_700_000_000;

#[derive(Arbitrary, Debug)]
struct Input {
    /// The side under test is the client (else the server).
    client: bool,
    /// What the genuine peer says after the handshake (each cut to the message limit).
    peer_texts: Vec<Vec<u8>>,
    /// Whether the peer then closes.
    peer_closes: bool,
    /// What happens to the peer's bytes on the way.
    mutation: Mutation,
    /// The sizes of the reads the transport serves, in turn (0 counts as 1; none: all at once).
    read_sizes: Vec<u8>,
    /// The transport fails at this offset of the stream instead of serving that byte: with an
    /// error, or (`true`) with an end of stream.
    read_fault: Option<(u16, bool)>,
    /// What this side sends after the handshake (each cut to the message limit), then its close.
    own_texts: Vec<Vec<u8>>,
    /// The sizes of the writes the transport takes, in turn (0 counts as 1; none: all).
    write_sizes: Vec<u8>,
    /// The transport takes this many bytes in all, then fails: with an error, or (`true`) by
    /// taking no more (a write of 0).
    write_fault: Option<(u16, bool)>,
}

/// What the fuzzer's transport reports when it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Broken;

impl aeschat_core::session::TransportError for Broken {
    fn kind(&self) -> aeschat_core::session::ErrorKind {
        aeschat_core::session::ErrorKind::BrokenPipe
    }
}

/// The receiving half: the stream, served as the input says.
struct FuzzReader<'a> {
    stream: &'a [u8],
    at: usize,
    sizes: &'a [u8],
    reads: usize,
    fault: Option<(usize, bool)>,
}

impl aeschat_core::session::ErrorType for FuzzReader<'_> {
    type Error = Broken;
}

impl Read for FuzzReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Broken> {
        let size = self
            .sizes
            .get(self.reads % self.sizes.len().max(1))
            .copied();
        self.reads += 1;
        let mut end = self.stream.len();
        if let Some((offset, end_of_stream)) = self.fault {
            if self.at >= offset {
                return if end_of_stream { Ok(0) } else { Err(Broken) };
            }
            end = end.min(offset);
        }
        let count = buf
            .len()
            .min(end - self.at)
            .min(size.map_or(usize::MAX, |s| usize::from(s.max(1))));
        buf[..count].copy_from_slice(&self.stream[self.at..self.at + count]);
        self.at += count;
        Ok(count)
    }
}

/// The sending half: keeps everything it takes.
struct FuzzWriter<'a> {
    taken: Vec<u8>,
    sizes: &'a [u8],
    writes: usize,
    fault: Option<(usize, bool)>,
}

impl aeschat_core::session::ErrorType for FuzzWriter<'_> {
    type Error = Broken;
}

impl Write for FuzzWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Broken> {
        let size = self
            .sizes
            .get(self.writes % self.sizes.len().max(1))
            .copied();
        self.writes += 1;
        let mut room = buf.len();
        if let Some((limit, takes_no_more)) = self.fault {
            if self.taken.len() >= limit {
                return if takes_no_more { Ok(0) } else { Err(Broken) };
            }
            room = room.min(limit - self.taken.len());
        }
        let count = room.min(size.map_or(usize::MAX, |s| usize::from(s.max(1))));
        self.taken.extend_from_slice(&buf[..count]);
        Ok(count)
    }

    fn flush(&mut self) -> Result<(), Broken> {
        Ok(())
    }
}

/// The engine of one side, as the side under test and its genuine peer both make it.
fn side(role: Role, key: &Key) -> Engine<'_> {
    let nonce = match role {
        Role::Client => [1; 32],
        Role::Server => [2; 32],
    };
    let config = Config::new(role, Secret::PreSharedKey(key)).with_max_message_len(MAX_MESSAGE);
    engine(config, nonce, Some(TIME))
}

/// Runs both sides in memory over the shared test pair. Returns the bytes each sent (client's,
/// server's) and the peer's halves: the side under test is run again, through the driver, with
/// the same nonce and clock, so the peer's recorded answers fit it.
fn genuine_exchange(
    key: &Key,
    peer_role: Role,
) -> (Vec<u8>, Vec<u8>, (aeschat_core::session::Sender, Receiver)) {
    let outcome = Pair::new(side(Role::Client, key), side(Role::Server, key)).finish();
    assert_eq!((outcome.client, outcome.server), (Ok(()), Ok(())));
    let from_client = outcome.written_by(Side::Client);
    let from_server = outcome.written_by(Side::Server);
    let (client, server) = outcome.halves();
    let peer = match peer_role {
        Role::Client => client,
        Role::Server => server,
    };
    (from_client, from_server, peer)
}

/// After a failed handshake, this side wrote its messages in order, as far as it got (its
/// hello's fields exactly; a share and a finished may differ, since what they cover may have
/// been changed), then at most one alert; a frame cut short only where the writer failed.
fn check_written_on_failure(written: &[u8], own: &[u8], writer_fails: bool) {
    let (frames, framed) = frames_in(written);
    let cut_short = framed < written.len();
    let (own_frames, _) = frames_in(own);
    let mut frames = frames.as_slice();
    if let Some(((FrameKind::Alert, body), before)) = frames.split_last() {
        assert_eq!(body.len(), 1, "an alert of one byte");
        frames = before;
    }
    assert!(
        frames.len() <= own_frames.len(),
        "more messages than its own"
    );
    for (n, ((kind, body), (own_kind, own_body))) in frames.iter().zip(&own_frames).enumerate() {
        assert_eq!(kind, own_kind, "message {n}");
        assert_eq!(body.len(), own_body.len(), "message {n}");
        if n == 0 {
            // A hello's own fields depend on nothing the peer sent; a ServerHello's CPace share
            // (its last 32 bytes) does, through the client's nonce in CPace's sid.
            let fields = match kind {
                FrameKind::ServerHello => body.len().saturating_sub(32),
                _ => body.len(),
            };
            assert_eq!(
                body[..fields],
                own_body[..fields],
                "the hello's fields depend on nothing the peer sent"
            );
        }
    }
    assert!(
        !cut_short || writer_fails,
        "a frame cut short by a writer that works"
    );
}

fn cut(text: &[u8]) -> &[u8] {
    &text[..text.len().min(MAX_MESSAGE)]
}

fuzz_target!(|input: Input| {
    let key = psk();
    let (role, peer_role) = if input.client {
        (Role::Client, Role::Server)
    } else {
        (Role::Server, Role::Client)
    };
    let (from_client, from_server, peer) = genuine_exchange(&key, peer_role);
    let (own_messages, peer_messages) = match role {
        Role::Client => (from_client, from_server),
        Role::Server => (from_server, from_client),
    };
    let (mut peer_sender, mut peer_receiver) = peer;
    // The generator every record's IV comes from (deterministic, so a crash reproduces).
    let mut ivs = TestRng::new(input.peer_texts.len() as u64);

    // What the genuine peer sends: its handshake messages, then its records.
    let mut genuine = peer_messages.clone();
    let peer_texts: Vec<&[u8]> = input.peer_texts.iter().map(|t| cut(t)).collect();
    let mut out = vec![0u8; record_frame_len(MAX_MESSAGE)];
    for text in &peer_texts {
        let record = peer_sender
            .seal_text(text, &mut ivs, Some(TIME), &mut out)
            .expect("a genuine record");
        genuine.extend_from_slice(record);
    }
    if input.peer_closes {
        let close = peer_sender
            .seal_close(&mut ivs, Some(TIME), &mut out)
            .expect("the genuine close");
        genuine.extend_from_slice(close);
    }
    let stream = input.mutation.apply(&genuine);
    let read_fault = input.read_fault.map(|(at, eos)| (usize::from(at), eos));
    let write_fault = input
        .write_fault
        .map(|(at, no_more)| (usize::from(at), no_more));
    // The first `len` bytes of the genuine stream reach this side unchanged.
    let arrives_intact = |len: usize| {
        stream.get(..len) == genuine.get(..len) && read_fault.is_none_or(|(at, _)| at >= len)
    };

    let mut reader = FuzzReader {
        stream: &stream,
        at: 0,
        sizes: &input.read_sizes,
        reads: 0,
        fault: read_fault,
    };
    let mut writer = FuzzWriter {
        taken: Vec::new(),
        sizes: &input.write_sizes,
        writes: 0,
        fault: write_fault,
    };
    let mut engine = side(role, &key);
    let mut inbox = Inbox::new(vec![0u8; CAPACITY]);
    let handshake =
        aeschat_core::session::handshake(&mut reader, &mut writer, &mut inbox, &mut engine);

    // Authentication: only the genuine handshake bytes, all of them, establish a session.
    let can_write = write_fault.is_none_or(|(limit, _)| limit >= own_messages.len());
    let should_succeed = arrives_intact(peer_messages.len()) && can_write;
    assert_eq!(
        handshake.is_ok(),
        should_succeed,
        "{:?}",
        handshake.as_ref().err()
    );
    if handshake.is_err() {
        check_written_on_failure(&writer.taken, &own_messages, write_fault.is_some());
        // A failed engine stays failed: no halves to split.
        assert!(engine.split().is_err());
        return;
    }
    assert_eq!(
        writer.taken, own_messages,
        "the handshake wrote other bytes"
    );
    let (mut sender, mut receiver) = engine.split().expect("established");

    // Receiving: only the peer's genuine texts, in order.
    let mut received: Vec<Vec<u8>> = Vec::new();
    let ending = loop {
        match receive(&mut receiver, &mut reader, &mut inbox) {
            Ok(Incoming::Text(text)) => {
                received.push(text.to_vec());
                assert!(
                    received.len() <= peer_texts.len(),
                    "more texts than were sent"
                );
            }
            Ok(Incoming::Closed) => break Ok(()),
            Err(error) => break Err(error),
        }
    };
    for (got, sent) in received.iter().zip(&peer_texts) {
        assert_eq!(got.as_slice(), *sent, "a text that was not the peer's");
    }
    if arrives_intact(genuine.len()) && stream.len() == genuine.len() {
        assert_eq!(
            received.len(),
            peer_texts.len(),
            "a genuine text went missing"
        );
        // Without a close the driver reads past the last record: it meets the end of the
        // stream, or the transport's failure if one was placed right there.
        let expected = if input.peer_closes {
            Ok(())
        } else if read_fault == Some((genuine.len(), false)) {
            Err(SessionError::Transport(Broken))
        } else {
            Err(SessionError::Protocol(Error::Truncated))
        };
        assert_eq!(ending, expected);
    }
    if ending.is_ok() {
        assert_eq!(
            received.len(),
            peer_texts.len(),
            "closed before every text arrived"
        );
    }
    // Once ended, the driver reports it and leaves the transport alone.
    let reads = reader.reads;
    assert_eq!(
        receive(&mut receiver, &mut reader, &mut inbox).err(),
        Some(SessionError::Protocol(Error::SessionEnded))
    );
    assert_eq!(reader.reads, reads, "read after the session ended");

    // Sending, through a writer that takes a few bytes at a time: the peer opens what was sent.
    let handshake_len = writer.taken.len();
    let mut sent: Vec<&[u8]> = Vec::new();
    let mut send_failed = false;
    for text in input.own_texts.iter().map(|t| cut(t)) {
        match send_text(
            &mut sender,
            &mut writer,
            text,
            &mut ivs,
            Some(TIME),
            &mut out,
        ) {
            Ok(()) => sent.push(text),
            Err(error) => {
                assert!(
                    matches!(
                        error,
                        SessionError::Transport(Broken)
                            | SessionError::Protocol(Error::ConnectionClosed)
                    ),
                    "{error:?}"
                );
                send_failed = true;
                break;
            }
        }
    }
    let closed = !send_failed
        && send_close(&mut sender, &mut writer, &mut ivs, Some(TIME), &mut out).is_ok();
    // The genuine peer takes what arrived where it lies, record after record.
    let mut bytes = writer.taken[handshake_len..].to_vec();
    let mut at = 0;
    let mut opened = Vec::new();
    let mut peer_saw_close = false;
    loop {
        let received = peer_receiver.poll(&mut bytes[at..]);
        at += received.discard;
        match received.result.expect("genuine records") {
            Some(Incoming::Text(text)) => opened.push(text.to_vec()),
            Some(Incoming::Closed) => {
                peer_saw_close = true;
                break;
            }
            None => break,
        }
    }
    let sent: Vec<Vec<u8>> = sent.iter().map(|t| t.to_vec()).collect();
    assert_eq!(opened, sent, "the peer did not open what was sent");
    assert_eq!(peer_saw_close, closed);
});
