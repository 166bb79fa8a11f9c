//! The frame reader fed an arbitrary byte stream split into fuzzer-chosen chunks, at several
//! capacities (including ones too small for a header).
//!
//! Three ways of feeding the reader must agree with each other and with a reference parser:
//! the whole stream in one `push`, the chunks through `push`, and the chunks through
//! `unfilled`/`advance` as a transport would. They must yield the same frames, stop with the
//! same error, and agree on whether the stream ended between frames.
#![no_main]

use aeschat_core::{Error, FrameKind, FrameReader, FRAME_HEADER_LEN, HANDSHAKE_FRAME_LEN};
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Capacity {
    /// Smaller than a header: every call must fail, never panic.
    Zero,
    Four,
    /// A header and no body.
    Five,
    Sixteen,
    Handshake,
    Large,
}

#[derive(Arbitrary, Debug)]
struct Input {
    capacity: Capacity,
    /// Chunk sizes, used in turn; the rest of the stream is the last chunk.
    chunks: Vec<u8>,
    stream: Vec<u8>,
}

/// Everything a reader produced from a stream.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    frames: Vec<(FrameKind, Vec<u8>)>,
    error: Option<Error>,
    between_frames: bool,
}

/// The reference: a plain parser of `kind ‖ u32 length ‖ body` written from frame.rs's docs.
fn model(stream: &[u8], capacity: usize) -> Outcome {
    let max = capacity.saturating_sub(FRAME_HEADER_LEN);
    let mut frames = Vec::new();
    if capacity < FRAME_HEADER_LEN {
        let error = Some(Error::FrameTooLong { max: 0 });
        return Outcome {
            frames,
            error,
            between_frames: true,
        };
    }
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

/// Splits the stream into the chosen chunks; the remainder (possibly empty) is the last one,
/// so every way of feeding makes at least one call.
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

fn by_push<const N: usize>(chunks: &[&[u8]]) -> Outcome {
    let mut reader = FrameReader::<N>::new();
    let mut frames = Vec::new();
    for chunk in chunks {
        let mut rest: &[u8] = chunk;
        loop {
            let taken = match reader.push(rest) {
                Ok(taken) => taken,
                Err(error) => {
                    return Outcome {
                        frames,
                        error: Some(error),
                        between_frames: reader.is_between_frames(),
                    }
                }
            };
            assert!(taken <= rest.len());
            rest = &rest[taken..];
            match reader.frame() {
                Some(frame) => {
                    assert!(frame.body.len() <= FrameReader::<N>::max_body_len());
                    frames.push((frame.kind, frame.body.to_vec()));
                    // Handed out once only.
                    assert!(reader.frame().is_none());
                }
                None => {
                    // `push` stops early only when a frame is complete.
                    assert!(rest.is_empty(), "push left input with no frame complete");
                    break;
                }
            }
        }
    }
    Outcome {
        frames,
        error: None,
        between_frames: reader.is_between_frames(),
    }
}

fn by_unfilled<const N: usize>(chunks: &[&[u8]]) -> Outcome {
    let mut reader = FrameReader::<N>::new();
    let mut frames = Vec::new();
    for chunk in chunks {
        let mut rest: &[u8] = chunk;
        loop {
            let space = match reader.unfilled() {
                Ok(space) => space,
                Err(error) => {
                    return Outcome {
                        frames,
                        error: Some(error),
                        between_frames: reader.is_between_frames(),
                    }
                }
            };
            assert!(space.len() <= N);
            if space.is_empty() {
                // An empty space means a complete frame, which must be available.
                let frame = reader
                    .frame()
                    .expect("unfilled is empty only for a whole frame");
                frames.push((frame.kind, frame.body.to_vec()));
                continue;
            }
            if rest.is_empty() {
                break;
            }
            let take = space.len().min(rest.len());
            space[..take].copy_from_slice(&rest[..take]);
            reader.advance(take);
            rest = &rest[take..];
        }
    }
    // The loop collects every complete frame before it stops.
    assert!(reader.frame().is_none());
    Outcome {
        frames,
        error: None,
        between_frames: reader.is_between_frames(),
    }
}

fn check<const N: usize>(input: &Input) {
    assert_eq!(
        FrameReader::<N>::max_body_len(),
        N.saturating_sub(FRAME_HEADER_LEN)
    );
    let whole = [input.stream.as_slice()];
    let chunks = split(&input.stream, &input.chunks);
    let expected = model(&input.stream, N);
    assert_eq!(by_push::<N>(&whole), expected, "one push");
    assert_eq!(by_push::<N>(&chunks), expected, "chunked push");
    assert_eq!(by_unfilled::<N>(&chunks), expected, "unfilled and advance");
}

fuzz_target!(|input: Input| match input.capacity {
    Capacity::Zero => check::<0>(&input),
    Capacity::Four => check::<4>(&input),
    Capacity::Five => check::<5>(&input),
    Capacity::Sixteen => check::<16>(&input),
    Capacity::Handshake => check::<HANDSHAKE_FRAME_LEN>(&input),
    Capacity::Large => check::<1024>(&input),
});
