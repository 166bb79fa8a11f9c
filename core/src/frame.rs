//! Frames: how messages are delimited on a byte stream.
//!
//! A frame is `kind: u8 ‖ length: u32 big-endian ‖ body`. The reader looks at the header before
//! anything else, so a frame longer than its capacity is refused before one byte of its body is
//! read, and it never reads past the end of the current frame, so no byte of the next is lost.

use crate::Error;

/// The length of a frame header: one byte of kind, four of body length.
pub const FRAME_HEADER_LEN: usize = 5;

/// What a frame carries.
///
/// ```
/// use aeschat_core::FrameKind;
/// assert_eq!(FrameKind::from_byte(5), Some(FrameKind::Record));
/// assert_eq!(FrameKind::Record as u8, 5);
/// ```
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    /// The client's first message: protocol, version, mode, nonce.
    ClientHello = 1,
    /// The server's answer: protocol, version, mode, nonce, PBKDF2 iterations.
    ServerHello = 2,
    /// The client's key confirmation MAC.
    ClientFinished = 3,
    /// The server's key confirmation MAC.
    ServerFinished = 4,
    /// One Fernet token holding a text or close record.
    Record = 5,
    /// An unauthenticated one-byte reason why the sender gives up.
    Alert = 6,
}

impl FrameKind {
    /// The kind for a header byte, if it is one.
    pub const fn from_byte(byte: u8) -> Option<FrameKind> {
        match byte {
            1 => Some(FrameKind::ClientHello),
            2 => Some(FrameKind::ServerHello),
            3 => Some(FrameKind::ClientFinished),
            4 => Some(FrameKind::ServerFinished),
            5 => Some(FrameKind::Record),
            6 => Some(FrameKind::Alert),
            _ => None,
        }
    }
}

/// Writes one frame into `out` and returns the bytes written.
///
/// ```
/// use aeschat_core::{write_frame, FrameKind};
/// let mut out = [0u8; 8];
/// assert_eq!(write_frame(FrameKind::Alert, &[1], &mut out)?, &[6, 0, 0, 0, 1, 1][..]);
/// # Ok::<(), aeschat_core::Error>(())
/// ```
pub fn write_frame<'o>(kind: FrameKind, body: &[u8], out: &'o mut [u8]) -> Result<&'o [u8], Error> {
    let required = FRAME_HEADER_LEN.saturating_add(body.len());
    let too_small = Error::BufferTooSmall { required };
    let body_len = u32::try_from(body.len()).map_err(|_| too_small)?;
    let frame = out.get_mut(..required).ok_or(too_small)?;
    let (header, rest) = frame
        .split_first_chunk_mut::<FRAME_HEADER_LEN>()
        .ok_or(too_small)?;
    let [l0, l1, l2, l3] = body_len.to_be_bytes();
    *header = [kind as u8, l0, l1, l2, l3];
    rest.copy_from_slice(body);
    Ok(frame)
}

/// A complete frame, its body borrowed mutably from the reader so it can be decrypted in place.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame<'b> {
    /// What the frame carries.
    pub kind: FrameKind,
    /// The frame's body.
    pub body: &'b mut [u8],
}

/// Collects one frame at a time from a byte stream delivered in pieces of any size, into a
/// buffer of `N` bytes it owns (header included). Size `N` with [`crate::frame_capacity`].
///
/// ```
/// use aeschat_core::{FrameKind, FrameReader};
///
/// let mut reader = FrameReader::<16>::new();
/// let stream = [6u8, 0, 0, 0, 1, 3];
/// for byte in stream.chunks(1) {
///     // A transport would `read` into `reader.unfilled()?` and call `advance`.
///     assert_eq!(reader.push(byte)?, 1);
/// }
/// let frame = reader.frame().unwrap();
/// assert_eq!((frame.kind, &*frame.body), (FrameKind::Alert, &[3u8][..]));
/// # Ok::<(), aeschat_core::Error>(())
/// ```
pub struct FrameReader<const N: usize> {
    buffer: [u8; N],
    filled: usize,
    /// A frame was handed out; the next read starts a new one.
    taken: bool,
}

impl<const N: usize> Default for FrameReader<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> FrameReader<N> {
    /// An empty reader.
    pub const fn new() -> Self {
        FrameReader {
            buffer: [0; N],
            filled: 0,
            taken: false,
        }
    }

    /// The largest frame body this reader accepts.
    pub const fn max_body_len() -> usize {
        N.saturating_sub(FRAME_HEADER_LEN)
    }

    /// True when no byte of a frame has arrived yet (so an end of stream here falls between
    /// frames).
    pub fn is_between_frames(&self) -> bool {
        self.taken || self.filled == 0
    }

    /// The space the next bytes from the transport go into: exactly what the current frame
    /// still lacks, so a read never takes bytes of the next frame. Empty when a frame is
    /// complete. Fails, before any body byte is read, when the header announces a frame
    /// longer than the capacity or a kind that does not exist.
    pub fn unfilled(&mut self) -> Result<&mut [u8], Error> {
        self.start_next_frame();
        let wanted = self.wanted_len()?;
        self.buffer
            .get_mut(self.filled..wanted)
            .ok_or(Error::FrameTooLong {
                max: Self::max_body_len(),
            })
    }

    /// Records that the transport wrote `count` bytes at the start of [`Self::unfilled`].
    pub fn advance(&mut self, count: usize) {
        self.filled = self.filled.saturating_add(count).min(N);
    }

    /// Copies as much of `input` as the current frame needs and returns how much it took
    /// (possibly less than `input.len()` when a frame completes: feed the rest afterwards).
    pub fn push(&mut self, input: &[u8]) -> Result<usize, Error> {
        let mut taken = 0;
        loop {
            let rest = input.get(taken..).unwrap_or(&[]);
            let space = self.unfilled()?;
            let take = space.len().min(rest.len());
            if take == 0 {
                return Ok(taken);
            }
            if let (Some(dst), Some(src)) = (space.get_mut(..take), rest.get(..take)) {
                dst.copy_from_slice(src);
            }
            self.advance(take);
            taken = taken.saturating_add(take);
        }
    }

    /// The completed frame, if the current one is complete. The frame stays available until
    /// the next call to [`Self::unfilled`] or [`Self::push`].
    pub fn frame(&mut self) -> Option<Frame<'_>> {
        let wanted = self.wanted_len().ok()?;
        if self.taken || self.filled < FRAME_HEADER_LEN || self.filled < wanted {
            return None;
        }
        let kind = FrameKind::from_byte(*self.buffer.first()?)?;
        self.taken = true;
        let body = self.buffer.get_mut(FRAME_HEADER_LEN..wanted)?;
        Some(Frame { kind, body })
    }

    fn start_next_frame(&mut self) {
        if self.taken {
            self.taken = false;
            self.filled = 0;
        }
    }

    /// How many bytes the current frame needs in all: the header until it is complete, then
    /// the header and body it announces.
    fn wanted_len(&self) -> Result<usize, Error> {
        if self.filled < FRAME_HEADER_LEN {
            return Ok(FRAME_HEADER_LEN);
        }
        let header = self
            .buffer
            .first_chunk::<FRAME_HEADER_LEN>()
            .ok_or(Error::FrameTooLong { max: 0 })?;
        announced_len(header, Self::max_body_len())
    }
}

impl<'b> Frame<'b> {
    /// Finds the frame at the start of `input`, in the caller's own buffer: `Ok(None)` while
    /// `input` holds less than a whole frame, else the frame and the bytes it took. The body is
    /// borrowed mutably, so a record is decrypted where it lies. A header is judged as soon as
    /// it is whole: a kind that does not exist, or a body longer than `max_body_len`, fails
    /// before a byte of the body is awaited.
    ///
    /// ```
    /// use aeschat_core::{Frame, FrameKind};
    ///
    /// let mut input = [6u8, 0, 0, 0, 1, 5, 6, 0];
    /// let (frame, len) = Frame::parse(&mut input, 64)?.expect("one whole frame");
    /// assert_eq!((frame.kind, &*frame.body, len), (FrameKind::Alert, &[5u8][..], 6));
    /// assert_eq!(Frame::parse(&mut input[6..], 64)?, None); // the next one is not whole yet
    /// # Ok::<(), aeschat_core::Error>(())
    /// ```
    pub fn parse(
        input: &'b mut [u8],
        max_body_len: usize,
    ) -> Result<Option<(Frame<'b>, usize)>, Error> {
        let Some(frame_len) = whole_frame_len(input, max_body_len)? else {
            return Ok(None);
        };
        let (header, body) = input
            .get_mut(..frame_len)
            .and_then(|frame| frame.split_first_mut())
            .ok_or(Error::UnexpectedMessage)?;
        let kind = FrameKind::from_byte(*header).ok_or(Error::UnexpectedMessage)?;
        let body = body
            .get_mut(FRAME_HEADER_LEN.saturating_sub(1)..)
            .unwrap_or_default();
        Ok(Some((Frame { kind, body }, frame_len)))
    }
}

/// The length of the whole frame at the start of `input`, if it is all there; an error as
/// soon as the header is whole and wrong. [`Frame::parse`] without taking the bytes.
pub(crate) fn whole_frame_len(input: &[u8], max_body_len: usize) -> Result<Option<usize>, Error> {
    let Some(header) = input.first_chunk::<FRAME_HEADER_LEN>() else {
        return Ok(None);
    };
    let frame_len = announced_len(header, max_body_len)?;
    Ok((input.len() >= frame_len).then_some(frame_len))
}

/// The whole length (header and body) a frame header announces, once the header is judged.
fn announced_len(header: &[u8; FRAME_HEADER_LEN], max_body_len: usize) -> Result<usize, Error> {
    let [kind, length @ ..] = *header;
    // The old raw-token chat sent bare Fernet tokens, which begin "gAAAA" (0x80 and a
    // timestamp's zero high bytes, in base64url): recognise it to say so plainly.
    if header == b"gAAAA" {
        return Err(Error::LegacyPeer);
    }
    if FrameKind::from_byte(kind).is_none() {
        return Err(Error::UnexpectedMessage);
    }
    // Stops memory exhaustion: a frame larger than the buffer is refused from its header.
    let body_len = usize::try_from(u32::from_be_bytes(length)).unwrap_or(usize::MAX);
    if body_len > max_body_len {
        return Err(Error::FrameTooLong { max: max_body_len });
    }
    Ok(FRAME_HEADER_LEN.saturating_add(body_len))
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    #[test]
    fn oversize_frame_is_refused_from_its_header() {
        let mut reader = FrameReader::<32>::new();
        assert_eq!(reader.push(&[5, 0, 0, 0, 27]), Ok(5));
        assert_eq!(
            reader.unfilled().map(|s| s.len()),
            Ok(27),
            "the largest body fits"
        );
        let mut reader = FrameReader::<32>::new();
        assert_eq!(
            reader.push(&[5, 0, 0, 0, 28, 0xAA]),
            Err(Error::FrameTooLong { max: 27 })
        );
        let mut reader = FrameReader::<32>::new();
        let header = [5, 0xFF, 0xFF, 0xFF, 0xFF];
        assert_eq!(reader.push(&header), Err(Error::FrameTooLong { max: 27 }));
        assert_eq!(
            reader.unfilled().err(),
            Some(Error::FrameTooLong { max: 27 })
        );
    }

    #[test]
    fn legacy_tokens_and_unknown_kinds_are_named() {
        let mut reader = FrameReader::<128>::new();
        assert_eq!(reader.push(b"gAAAAABl"), Err(Error::LegacyPeer));
        let mut reader = FrameReader::<128>::new();
        assert_eq!(reader.push(&[9, 0, 0, 0, 0]), Err(Error::UnexpectedMessage));
    }

    #[test]
    fn reads_stop_at_the_frame_boundary() {
        let mut reader = FrameReader::<64>::new();
        let stream = [6, 0, 0, 0, 1, 7, 6, 0, 0, 0, 1, 8];
        assert_eq!(reader.push(&stream), Ok(6));
        assert_eq!(reader.push(&stream[6..]), Ok(0));
        assert_eq!(reader.frame().map(|f| f.body[0]), Some(7));
        assert!(reader.frame().is_none(), "a frame is handed out once");
        assert_eq!(reader.push(&stream[6..]), Ok(6));
        assert_eq!(reader.frame().map(|f| f.body[0]), Some(8));
    }
}
