//! The record layer's receiving half, fed arbitrary records after a real in-memory handshake
//! (the shared test pair; pre-shared key, fixed nonces): genuine records in and out of order,
//! replays, drops, mutations of genuine frames, records reflected from the receiver's own side,
//! records sealed under the real key with contents the genuine sender never writes, frames of
//! every kind, and raw bytes, all taken by `Receiver::poll` where they lie.
//!
//! A reference model predicts every result, so the target checks more than "no panic": a
//! genuine record in order opens to its text, anything else (a framing error included) ends the
//! session with the right error, and nothing is accepted after the session ended.
#![no_main]

use aeschat_core::fernet::{encrypt, token_len, Iv, Key};
use aeschat_core::session::{
    frame_capacity, write_frame, Error, Frame, FrameKind, Incoming, Received, Receiver, Sender,
    FRAME_HEADER_LEN,
};
use aeschat_fuzz::{establish, kind_from_byte, Mutation};
use aeschat_testkit::TestRng;
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

/// The longest message either side accepts: long enough for records that cross the token
/// codec's internal chunk sizes (768 and 1024 bytes), short enough to stay fast.
const MAX_MESSAGE: usize = 1500;
const CAPACITY: usize = frame_capacity(MAX_MESSAGE);
const MAX_BODY: usize = CAPACITY - FRAME_HEADER_LEN;

#[derive(Arbitrary, Debug)]
struct Input {
    /// Which direction is under test: the client's receiver (else the server's).
    client_receives: bool,
    steps: Vec<Step>,
}

#[derive(Arbitrary, Debug)]
enum Step {
    /// The peer seals a text record, delivered as is.
    Text { text: Vec<u8>, time: u64 },
    /// The peer seals its close, delivered as is.
    Close { time: u64 },
    /// The peer seals a text record that is lost on the way.
    Withheld { text: Vec<u8> },
    /// The peer seals a text record whose frame bytes are changed on the way.
    Mutated { text: Vec<u8>, mutation: Mutation },
    /// An earlier frame delivered again.
    Replay { index: u8 },
    /// A record sealed by the receiving side itself, reflected back to it.
    Reflected { text: Vec<u8> },
    /// A record sealed under the peer's real key with any type, sequence and length.
    Forged {
        record_type: u8,
        /// The sequence number the receiver expects plus this (0: in order).
        sequence_delta: u64,
        body: Vec<u8>,
        /// Cut the plaintext short of its 9-byte header.
        truncate_header: Option<u8>,
    },
    /// A frame of any kind with an arbitrary body.
    Frame { kind: u8, body: Vec<u8> },
    /// Raw bytes, taken record by record where they lie.
    Wire(Vec<u8>),
}

/// What `Receiver::poll` returns for a whole frame, owned so the model can predict it.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Text(Vec<u8>),
    Closed,
    Failed(Error),
}

impl From<Result<Incoming<'_>, Error>> for Outcome {
    fn from(result: Result<Incoming<'_>, Error>) -> Self {
        match result {
            Ok(Incoming::Text(text)) => Outcome::Text(text.to_vec()),
            Ok(Incoming::Closed) => Outcome::Closed,
            Err(error) => Outcome::Failed(error),
        }
    }
}

/// The generator the genuine senders draw IVs from (deterministic, so a crash reproduces).
struct Ivs(TestRng);

/// What the model knows about the receiver.
#[derive(Default)]
struct Model {
    /// The receiver under test is the server's.
    server: bool,
    expected: u64,
    ended: bool,
    /// Every token sealed under the key the receiver opens with, and its record plaintext.
    authentic: Vec<(Vec<u8>, Vec<u8>)>,
    /// How many records the genuine peer sealed: the next one's sequence number.
    peer_sealed: u64,
    /// Every frame sent so far, for replays.
    sent: Vec<Vec<u8>>,
}

impl Model {
    /// The result `Receiver::poll` must give for a whole frame, and the model's next state.
    fn predict(&mut self, kind: FrameKind, body: &[u8]) -> Outcome {
        if self.ended {
            return Outcome::Failed(Error::SessionEnded);
        }
        let outcome = self.predict_record(kind, body);
        if !matches!(outcome, Outcome::Text(_)) {
            self.ended = true;
        }
        outcome
    }

    fn predict_record(&mut self, kind: FrameKind, body: &[u8]) -> Outcome {
        match kind {
            FrameKind::Record => {}
            // Only a server believes an alert, only alert 1, and only before the first record
            // it receives: the client may reject the server's finished after the server is
            // established. Any other alert could only be forged.
            FrameKind::Alert if self.server && self.expected == 0 && body == [1] => {
                return Outcome::Failed(Error::AuthenticationFailed)
            }
            _ => return Outcome::Failed(Error::UnexpectedMessage),
        }
        // Only a token sealed under the receiving key authenticates: the fuzzer cannot forge
        // one, so anything else is rejected.
        let Some((_, plaintext)) = self.authentic.iter().find(|(token, _)| token == body) else {
            return Outcome::Failed(Error::RecordRejected);
        };
        let Some((header, text)) = plaintext.split_first_chunk::<9>() else {
            return Outcome::Failed(Error::UnexpectedMessage);
        };
        let [record_type, sequence @ ..] = *header;
        let sequence = u64::from_be_bytes(sequence);
        if sequence != self.expected {
            return Outcome::Failed(Error::RecordOutOfOrder {
                expected: self.expected,
                received: sequence,
            });
        }
        self.expected += 1;
        match (record_type, text) {
            // The receiver announced its limit; a longer text breaks the protocol.
            (1, text) if text.len() > MAX_MESSAGE => Outcome::Failed(Error::UnexpectedMessage),
            (1, text) => Outcome::Text(text.to_vec()),
            (2, []) => Outcome::Closed,
            _ => Outcome::Failed(Error::UnexpectedMessage),
        }
    }
}

/// Seals a text (`Some`) or the close (`None`) with the genuine peer's sender and records the
/// token as authentic; `None` if the sender refuses (too long, or after its close).
fn seal(
    sender: &mut Sender,
    model: &mut Model,
    text: Option<&[u8]>,
    time: u64,
    ivs: &mut Ivs,
) -> Option<Vec<u8>> {
    let body = text.unwrap_or_default();
    let mut out = vec![0u8; aeschat_core::session::record_frame_len(body.len())];
    let frame = match text {
        Some(text) => sender.seal_text(text, &mut ivs.0, Some(time), &mut out),
        None => sender.seal_close(&mut ivs.0, Some(time), &mut out),
    };
    let frame = match frame {
        Ok(frame) => frame.to_vec(),
        Err(error) => {
            assert!(matches!(
                error,
                Error::MessageTooLong { .. } | Error::SessionEnded
            ));
            return None;
        }
    };
    // Structure of a genuine record frame: its exact length and kind.
    assert_eq!(
        frame.len(),
        aeschat_core::session::record_frame_len(body.len())
    );
    assert_eq!(frame[0], FrameKind::Record as u8);
    let mut plaintext = vec![if text.is_some() { 1 } else { 2 }];
    plaintext.extend_from_slice(&model.peer_sealed.to_be_bytes());
    plaintext.extend_from_slice(body);
    model.authentic.push((frame[5..].to_vec(), plaintext));
    model.peer_sealed += 1;
    Some(frame)
}

/// Delivers `bytes` to the receiver, which takes record after record where they lie, checking
/// each result against the model (framing included: a refused header ends the session too).
fn deliver(receiver: &mut Receiver, model: &mut Model, bytes: &[u8]) {
    model.sent.push(bytes.to_vec());
    let mut buffer = bytes.to_vec();
    let mut at = 0;
    loop {
        // What framing makes of the bytes, judged on a copy before the receiver sees them.
        let mut copy = buffer[at..].to_vec();
        let framed = Frame::parse(&mut copy, MAX_BODY)
            .map(|found| found.map(|(frame, len)| (frame.kind, frame.body.to_vec(), len)));
        let Received { discard, result } = receiver.poll(&mut buffer[at..]);
        let (expected, expected_discard) = match framed {
            _ if model.ended => (Some(Outcome::Failed(Error::SessionEnded)), 0),
            Ok(None) => (None, 0),
            Ok(Some((kind, body, len))) => (Some(model.predict(kind, &body)), len),
            Err(error) => {
                model.ended = true;
                (Some(Outcome::Failed(error)), 0)
            }
        };
        let outcome = match result {
            Ok(None) => None,
            Ok(Some(incoming)) => Some(Outcome::from(Ok(incoming))),
            Err(error) => Some(Outcome::Failed(error)),
        };
        assert_eq!(outcome, expected);
        assert_eq!(discard, expected_discard);
        assert_eq!(receiver.is_ended(), model.ended);
        at += discard;
        match outcome {
            Some(Outcome::Text(_)) => {}
            _ => return,
        }
    }
}

fuzz_target!(|input: Input| {
    let session = establish(MAX_MESSAGE);
    let (client_sender, client_receiver) = session.client;
    let (server_sender, server_receiver) = session.server;
    let mut ivs = Ivs(TestRng::new(input.steps.len() as u64));
    let (mut peer, mut receiver, mut own, receive_key) = if input.client_receives {
        (
            server_sender,
            client_receiver,
            client_sender,
            session.server_write,
        )
    } else {
        (
            client_sender,
            server_receiver,
            server_sender,
            session.client_write,
        )
    };
    let mut model = Model {
        server: !input.client_receives,
        ..Model::default()
    };

    for (n, step) in input.steps.iter().enumerate() {
        // A distinct IV for each forged record.
        let iv = Iv::from_bytes([n as u8; 16]);
        match step {
            Step::Text { text, time } => {
                if let Some(frame) = seal(&mut peer, &mut model, Some(text), *time, &mut ivs) {
                    deliver(&mut receiver, &mut model, &frame);
                }
            }
            Step::Close { time } => {
                if let Some(frame) = seal(&mut peer, &mut model, None, *time, &mut ivs) {
                    deliver(&mut receiver, &mut model, &frame);
                }
            }
            Step::Withheld { text } => {
                seal(&mut peer, &mut model, Some(text), 0, &mut ivs);
            }
            Step::Mutated { text, mutation } => {
                if let Some(frame) = seal(&mut peer, &mut model, Some(text), 0, &mut ivs) {
                    deliver(&mut receiver, &mut model, &mutation.apply(&frame));
                }
            }
            Step::Replay { index } => {
                if !model.sent.is_empty() {
                    let frame = model.sent[usize::from(*index) % model.sent.len()].clone();
                    deliver(&mut receiver, &mut model, &frame);
                }
            }
            Step::Reflected { text } => {
                // Sealed by the receiving side's own sender: under the other direction's key,
                // so it must never authenticate (the scratch model keeps it out of `authentic`).
                let mut scratch = Model::default();
                if let Some(frame) = seal(&mut own, &mut scratch, Some(text), 0, &mut ivs) {
                    deliver(&mut receiver, &mut model, &frame);
                }
            }
            Step::Forged {
                record_type,
                sequence_delta,
                body,
                truncate_header,
            } => {
                let sequence = model.expected.wrapping_add(*sequence_delta);
                let mut plaintext = vec![*record_type];
                plaintext.extend_from_slice(&sequence.to_be_bytes());
                if let Some(cut) = truncate_header {
                    plaintext.truncate(usize::from(*cut) % 9);
                } else {
                    plaintext.extend_from_slice(body);
                }
                let frame = seal_with_key(&receive_key, &plaintext, &iv);
                model.authentic.push((frame[5..].to_vec(), plaintext));
                deliver(&mut receiver, &mut model, &frame);
            }
            Step::Frame { kind, body } => {
                let mut frame = vec![0u8; body.len() + 5];
                write_frame(kind_from_byte(*kind), body, &mut frame).expect("fits");
                deliver(&mut receiver, &mut model, &frame);
            }
            Step::Wire(bytes) => deliver(&mut receiver, &mut model, bytes),
        }
    }

    let expected_end = if model.ended {
        Error::SessionEnded
    } else {
        Error::Truncated
    };
    assert_eq!(receiver.end_of_stream(), expected_end);
    assert_eq!(receiver.end_of_stream(), Error::SessionEnded);
});

/// A record frame holding any plaintext, sealed under `key` exactly as a sender would.
fn seal_with_key(key: &Key, plaintext: &[u8], iv: &Iv) -> Vec<u8> {
    let mut token = vec![0u8; token_len(plaintext.len())];
    let token = encrypt(key, plaintext, 0, iv, &mut token).expect("sized with token_len");
    let mut frame = vec![0u8; token.len() + 5];
    write_frame(FrameKind::Record, token.as_bytes(), &mut frame).expect("sized");
    frame
}
