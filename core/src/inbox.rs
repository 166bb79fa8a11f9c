//! The bytes a side has received and the engine has not yet taken, in storage the caller owns.
//!
//! A transport reads into [`Inbox::unfilled`]; the engine works on [`Inbox::pending`] where the
//! bytes lie (a record is decrypted in place) and says how many it is done with, which
//! [`Inbox::discard`] drops before the next look. No byte is copied on the way in, except the
//! unfinished tail of a frame when it must move to the front to make room.

use crate::session::Error;

/// Received bytes, in a buffer of the caller's choosing: an array on a board, a boxed slice on
/// a desktop. Size it with [`crate::session::frame_capacity`] of the longest message this side
/// accepts.
///
/// ```
/// use aeschat_core::session::{Frame, FrameKind, Inbox};
///
/// let mut inbox = Inbox::new([0u8; 64]);
/// let arrived = [6u8, 0, 0, 0, 1, 5, 6, 0]; // one alert frame and part of the next
/// inbox.unfilled()?[..8].copy_from_slice(&arrived); // what a transport's `read` does
/// inbox.filled(8);
///
/// let (frame, len) = Frame::parse(inbox.pending(), 64)?.expect("one whole frame");
/// assert_eq!(frame.kind, FrameKind::Alert);
/// inbox.discard(len);
/// assert_eq!(inbox.pending(), &[6, 0]);
/// # Ok::<(), aeschat_core::session::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Inbox<B> {
    buffer: B,
    /// The pending bytes are `buffer[start..end]`.
    start: usize,
    end: usize,
    /// Pending bytes the engine is done with, dropped at the next look (so a text borrowed from
    /// the buffer stays readable until then).
    discarded: usize,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Inbox<B> {
    /// An empty inbox over `buffer` (its contents are ignored).
    pub const fn new(buffer: B) -> Self {
        Inbox {
            buffer,
            start: 0,
            end: 0,
            discarded: 0,
        }
    }

    /// How many bytes the buffer holds in all.
    pub fn capacity(&self) -> usize {
        self.buffer.as_ref().len()
    }

    /// The bytes received and not yet discarded.
    pub fn pending(&mut self) -> &mut [u8] {
        self.drop_discarded();
        self.buffer
            .as_mut()
            .get_mut(self.start..self.end)
            .unwrap_or_default()
    }

    /// True when no received byte waits (an end of stream now falls between frames).
    pub fn is_empty(&self) -> bool {
        self.end.saturating_sub(self.start) <= self.discarded
    }

    /// Marks the first `count` pending bytes as taken; they are dropped at the next call to
    /// [`Inbox::pending`] or [`Inbox::unfilled`].
    pub fn discard(&mut self, count: usize) {
        let pending = self.end.saturating_sub(self.start);
        self.discarded = self.discarded.saturating_add(count).min(pending);
    }

    /// The free space the next bytes from the transport go into. Pending bytes move to the
    /// front first when no space is left behind them. Fails when the buffer is full of one
    /// unfinished frame: the frame is longer than the buffer, which was sized too small.
    pub fn unfilled(&mut self) -> Result<&mut [u8], Error> {
        self.drop_discarded();
        let capacity = self.capacity();
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        } else if self.end == capacity && self.start > 0 {
            self.buffer.as_mut().copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end.saturating_sub(self.start));
        }
        if self.end >= capacity {
            return Err(Error::BufferTooSmall {
                required: capacity.saturating_add(1),
            });
        }
        Ok(self.buffer.as_mut().get_mut(self.end..).unwrap_or_default())
    }

    /// Records that the transport wrote `count` bytes at the start of [`Inbox::unfilled`].
    pub fn filled(&mut self, count: usize) {
        self.end = self.end.saturating_add(count).min(self.capacity());
    }

    /// The pending bytes and the count to discard, borrowed apart, so that what an engine
    /// finds in the bytes can outlive the call that marks them taken.
    pub(crate) fn pending_and_discard(&mut self) -> (&mut [u8], &mut usize) {
        self.drop_discarded();
        let pending = self
            .buffer
            .as_mut()
            .get_mut(self.start..self.end)
            .unwrap_or_default();
        (pending, &mut self.discarded)
    }

    fn drop_discarded(&mut self) {
        self.start = self.start.saturating_add(self.discarded).min(self.end);
        self.discarded = 0;
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    #[test]
    fn the_unfinished_tail_moves_to_the_front_only_when_room_runs_out() {
        let mut inbox = Inbox::new([0u8; 8]);
        inbox.unfilled().unwrap()[..6].copy_from_slice(b"abcdef");
        inbox.filled(6);
        inbox.discard(4);
        assert_eq!(inbox.unfilled().unwrap().len(), 2, "room behind: no move");
        inbox.unfilled().unwrap()[..2].copy_from_slice(b"gh");
        inbox.filled(2);
        assert_eq!(inbox.pending(), b"efgh");
        assert_eq!(inbox.unfilled().unwrap().len(), 4, "moved to the front");
        assert_eq!(inbox.pending(), b"efgh");
        inbox.discard(100);
        assert!(inbox.is_empty());
        assert_eq!(inbox.unfilled().unwrap().len(), 8);
    }

    #[test]
    fn a_buffer_full_of_one_frame_is_too_small() {
        let mut inbox = Inbox::new([0u8; 4]);
        inbox.filled(4);
        assert_eq!(
            inbox.unfilled().err(),
            Some(Error::BufferTooSmall { required: 5 })
        );
    }
}
