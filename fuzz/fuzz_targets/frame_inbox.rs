//! Framing over an arbitrary byte stream split into fuzzer-chosen chunks: `Frame::parse` over
//! the whole stream, and an `Inbox` filled chunk by chunk (as a transport's reads would) with
//! `Frame::parse` on its pending bytes and `discard` after each frame, at several body limits
//! and buffer sizes (including buffers too small for a header).
//!
//! Both must agree with a reference parser: the same frames, the same error, and the same
//! answer to whether the stream ended between frames; the inbox must never lose or reorder a
//! byte, whatever room its reads find.
#![no_main]

use aeschat_core::session::{
    Error, Frame, FrameKind, Inbox, FRAME_HEADER_LEN, HANDSHAKE_FRAME_LEN,
};
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Capacity {
    /// Smaller than a header: the inbox can never hold one.
    Zero,
    Four,
    /// A header and no body.
    Five,
    Sixteen,
    Handshake,
    Large,
}

impl Capacity {
    fn bytes(&self) -> usize {
        match self {
            Capacity::Zero => 0,
            Capacity::Four => 4,
            Capacity::Five => 5,
            Capacity::Sixteen => 16,
            Capacity::Handshake => HANDSHAKE_FRAME_LEN,
            Capacity::Large => 1024,
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    /// The inbox's size; the body limit is what it leaves after a header.
    capacity: Capacity,
    /// Chunk sizes, used in turn; the rest of the stream is the last chunk.
    chunks: Vec<u8>,
    /// Take every whole frame after each chunk (else only once the inbox is full, or at the
    /// end: frames pile up, and the unfinished tail must move to make room).
    eager: bool,
    stream: Vec<u8>,
}

/// Everything framing produced from a stream.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    frames: Vec<(FrameKind, Vec<u8>)>,
    error: Option<Error>,
    between_frames: bool,
}

/// The reference: a plain parser of `kind ‖ u32 length ‖ body` written from frame.rs's docs.
fn model(stream: &[u8], max: usize) -> Outcome {
    let mut frames = Vec::new();
    let mut rest = stream;
    loop {
        if rest.len() < FRAME_HEADER_LEN {
            return Outcome {
                frames,
                error: None,
                between_frames: rest.is_empty(),
            };
        }
        let (header, body) = rest.split_at(FRAME_HEADER_LEN);
        let error = if header == b"gAAAA" {
            Some(Error::LegacyPeer)
        } else if FrameKind::from_byte(header[0]).is_none() {
            Some(Error::UnexpectedMessage)
        } else {
            None
        };
        let len = u32::from_be_bytes(header[1..].try_into().expect("4 bytes")) as usize;
        let error = error.or((len > max).then_some(Error::FrameTooLong { max }));
        if error.is_some() {
            return Outcome {
                frames,
                error,
                between_frames: false,
            };
        }
        if body.len() < len {
            return Outcome {
                frames,
                error: None,
                between_frames: false,
            };
        }
        let kind = FrameKind::from_byte(header[0]).expect("checked");
        frames.push((kind, body[..len].to_vec()));
        rest = &body[len..];
    }
}

/// Splits the stream into the chosen chunks; the remainder (possibly empty) is the last one.
fn split<'s>(stream: &'s [u8], sizes: &[u8]) -> Vec<&'s [u8]> {
    let mut chunks = Vec::new();
    let mut rest = stream;
    for &size in sizes {
        let (chunk, tail) = rest.split_at(usize::from(size).min(rest.len()));
        chunks.push(chunk);
        rest = tail;
    }
    chunks.push(rest);
    chunks
}

/// `Frame::parse` over the whole stream in one buffer, taking frame after frame.
fn by_parse(stream: &[u8], max: usize) -> Outcome {
    let mut bytes = stream.to_vec();
    let mut frames = Vec::new();
    let mut at = 0;
    loop {
        match Frame::parse(&mut bytes[at..], max) {
            Ok(Some((frame, len))) => {
                assert_eq!(len, FRAME_HEADER_LEN + frame.body.len());
                assert!(frame.body.len() <= max);
                frames.push((frame.kind, frame.body.to_vec()));
                at += len;
            }
            Ok(None) => {
                return Outcome {
                    frames,
                    error: None,
                    between_frames: at == bytes.len(),
                }
            }
            Err(error) => {
                return Outcome {
                    frames,
                    error: Some(error),
                    between_frames: false,
                }
            }
        }
    }
}

/// Takes every whole frame waiting in the inbox; an error ends the stream.
fn drain(
    inbox: &mut Inbox<Vec<u8>>,
    max: usize,
    frames: &mut Vec<(FrameKind, Vec<u8>)>,
) -> Result<(), Error> {
    loop {
        let before = inbox.pending().len();
        match Frame::parse(inbox.pending(), max)? {
            Some((frame, len)) => {
                assert!(len <= before);
                frames.push((frame.kind, frame.body.to_vec()));
                inbox.discard(len);
                assert_eq!(
                    inbox.pending().len(),
                    before - len,
                    "discard drops exactly the frame"
                );
            }
            None => return Ok(()),
        }
    }
}

/// The chunks through an inbox of `capacity` bytes, as a transport's reads fill it.
fn by_inbox(chunks: &[&[u8]], capacity: usize, eager: bool) -> Outcome {
    let max = capacity.saturating_sub(FRAME_HEADER_LEN);
    let mut inbox = Inbox::new(vec![0u8; capacity]);
    assert_eq!(inbox.capacity(), capacity);
    let mut frames = Vec::new();
    let failed = |frames, error| Outcome {
        frames,
        error: Some(error),
        between_frames: false,
    };
    for chunk in chunks {
        let mut rest: &[u8] = chunk;
        while !rest.is_empty() {
            let pending = inbox.pending().to_vec();
            let space = match inbox.unfilled() {
                Ok(space) => space,
                Err(error) => {
                    // Full: take the frames waiting, then try again; full of one unfinished
                    // frame, the buffer is too small for it.
                    if let Err(error) = drain(&mut inbox, max, &mut frames) {
                        return failed(frames, error);
                    }
                    if inbox.unfilled().is_err() {
                        return failed(frames, error);
                    }
                    continue;
                }
            };
            assert!(!space.is_empty());
            let take = space.len().min(rest.len());
            space[..take].copy_from_slice(&rest[..take]);
            inbox.filled(take);
            rest = &rest[take..];
            // Making room moves bytes, never changes or drops them.
            let mut expected = pending;
            expected.extend_from_slice(
                &chunk[chunk.len() - rest.len() - take..chunk.len() - rest.len()],
            );
            assert_eq!(
                inbox.pending(),
                expected.as_slice(),
                "the inbox lost or reordered bytes"
            );
            if eager {
                if let Err(error) = drain(&mut inbox, max, &mut frames) {
                    return failed(frames, error);
                }
            }
        }
    }
    if let Err(error) = drain(&mut inbox, max, &mut frames) {
        return failed(frames, error);
    }
    Outcome {
        frames,
        error: None,
        between_frames: inbox.is_empty(),
    }
}

fuzz_target!(|input: Input| {
    let capacity = input.capacity.bytes();
    let max = capacity.saturating_sub(FRAME_HEADER_LEN);
    let expected = model(&input.stream, max);
    assert_eq!(by_parse(&input.stream, max), expected, "Frame::parse");

    let chunks = split(&input.stream, &input.chunks);
    let inbox = by_inbox(&chunks, capacity, input.eager);
    if capacity < FRAME_HEADER_LEN {
        // No header fits: the inbox fills up, and says how much it would need.
        if input.stream.len() > capacity {
            let needed = Error::BufferTooSmall {
                required: capacity + 1,
            };
            assert_eq!((inbox.frames.len(), inbox.error), (0, Some(needed)));
        } else {
            assert_eq!(inbox.error, None);
            assert_eq!(inbox.between_frames, input.stream.is_empty());
        }
    } else {
        // A buffer of a header and the longest body always has room for the next frame.
        assert_eq!(inbox, expected, "inbox, chunked");
    }
});
