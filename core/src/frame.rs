//! Frames: how messages are delimited on a byte stream.
//!
//! A frame is `kind: u8 ‖ length: u32 big-endian ‖ body`. [`Frame::parse`] finds one in the
//! caller's received bytes and judges its header first, so a frame longer than the side accepts
//! is refused before one byte of its body is awaited; the bytes after a frame stay where they
//! are for the next.

use crate::session::Error;

/// The length of a frame header: one byte of kind, four of body length.
pub const FRAME_HEADER_LEN: usize = 5;

/// What a frame carries.
///
/// ```
/// use aeschat_core::session::FrameKind;
/// assert_eq!(FrameKind::from_byte(5), Some(FrameKind::Record));
/// assert_eq!(FrameKind::Record as u8, 5);
/// ```
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    /// The client's first message: protocol, version, mode, nonce.
    ClientHello = 1,
    /// The server's answer: protocol, version, mode, nonce, (protocol 2) its CPace share.
    ServerHello = 2,
    /// The client's key confirmation MAC.
    ClientFinished = 3,
    /// The server's key confirmation MAC.
    ServerFinished = 4,
    /// One Fernet token holding a text or close record.
    Record = 5,
    /// An unauthenticated one-byte reason why the sender gives up.
    Alert = 6,
    /// Protocol 2: the client's 32-byte CPace share, sent just before its ClientFinished.
    ClientShare = 7,
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
            7 => Some(FrameKind::ClientShare),
            _ => None,
        }
    }
}

/// Writes one frame into `out` and returns the bytes written.
///
/// ```
/// use aeschat_core::session::{write_frame, FrameKind};
/// let mut out = [0u8; 8];
/// assert_eq!(write_frame(FrameKind::Alert, &[1], &mut out)?, &[6, 0, 0, 0, 1, 1][..]);
/// # Ok::<(), aeschat_core::session::Error>(())
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

impl<'b> Frame<'b> {
    /// Finds the frame at the start of `input`, in the caller's own buffer: `Ok(None)` while
    /// `input` holds less than a whole frame, else the frame and the bytes it took. The body is
    /// borrowed mutably, so a record is decrypted where it lies. A header is judged as soon as
    /// it is whole: a kind that does not exist, or a body longer than `max_body_len`, fails
    /// before a byte of the body is awaited.
    ///
    /// ```
    /// use aeschat_core::session::{Frame, FrameKind};
    ///
    /// let mut input = [6u8, 0, 0, 0, 1, 5, 6, 0];
    /// let (frame, len) = Frame::parse(&mut input, 64)?.expect("one whole frame");
    /// assert_eq!((frame.kind, &*frame.body, len), (FrameKind::Alert, &[5u8][..], 6));
    /// assert_eq!(Frame::parse(&mut input[6..], 64)?, None); // the next one is not whole yet
    /// # Ok::<(), aeschat_core::session::Error>(())
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
        let mut header = [5, 0, 0, 0, 27];
        assert_eq!(
            Frame::parse(&mut header, 27),
            Ok(None),
            "the largest body fits"
        );
        let mut header = [5, 0, 0, 0, 28, 0xAA];
        assert_eq!(
            Frame::parse(&mut header, 27),
            Err(Error::FrameTooLong { max: 27 })
        );
        let mut header = [5, 0xFF, 0xFF, 0xFF, 0xFF];
        assert_eq!(
            Frame::parse(&mut header, 27),
            Err(Error::FrameTooLong { max: 27 })
        );
    }

    #[test]
    fn legacy_tokens_and_unknown_kinds_are_named() {
        assert_eq!(
            Frame::parse(&mut b"gAAAAABl".to_vec(), 128),
            Err(Error::LegacyPeer)
        );
        assert_eq!(
            Frame::parse(&mut [9, 0, 0, 0, 0], 128),
            Err(Error::UnexpectedMessage)
        );
    }

    #[test]
    fn a_frame_takes_exactly_its_own_bytes() {
        let mut stream = [6, 0, 0, 0, 1, 7, 6, 0, 0, 0, 1, 8];
        for cut in 0..6 {
            assert_eq!(
                Frame::parse(&mut stream[..cut], 64),
                Ok(None),
                "cut at {cut}"
            );
        }
        let (frame, len) = Frame::parse(&mut stream, 64).unwrap().unwrap();
        assert_eq!(
            (frame.kind, &*frame.body, len),
            (FrameKind::Alert, &[7u8][..], 6)
        );
        let (frame, len) = Frame::parse(&mut stream[6..], 64).unwrap().unwrap();
        assert_eq!((&*frame.body, len), (&[8u8][..], 6));
    }
}
