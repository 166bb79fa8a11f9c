//! One direction of a pair: a fixed buffer between reading one client and writing the other.
//! The buffer never grows: when it is full the relay stops reading the sender until the
//! receiver has taken some, so a slow reader slows its peer down (TCP's own flow control does
//! the rest) instead of making the relay buffer without bound.

use std::io::{self, Read, Write};

/// The bytes one direction holds at most.
pub(super) const PIPE_CAPACITY: usize = 16 * 1024;

pub(super) struct Pipe {
    buffer: Box<[u8]>,
    /// The bytes not yet written: `buffer[start..end]`.
    start: usize,
    end: usize,
}

/// What one attempt to move bytes did.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Moved {
    /// Some bytes moved.
    Some,
    /// Nothing could move now (the socket would block, or the buffer is full or empty).
    Nothing,
    /// The reading side has ended its direction (end of stream).
    Ended,
}

impl Pipe {
    /// A pipe that starts with `first` (the relay's answer to the receiver) waiting to go out.
    pub(super) fn starting_with(first: &[u8]) -> Pipe {
        let mut buffer = vec![0u8; PIPE_CAPACITY].into_boxed_slice();
        let end = first.len().min(PIPE_CAPACITY);
        if let (Some(to), Some(from)) = (buffer.get_mut(..end), first.get(..end)) {
            to.copy_from_slice(from);
        }
        Pipe {
            buffer,
            start: 0,
            end,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Reads what fits from `from` (one read).
    pub(super) fn fill(&mut self, mut from: impl Read) -> io::Result<Moved> {
        if self.is_empty() {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buffer.len() && self.start > 0 {
            self.buffer.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let Some(free) = self
            .buffer
            .get_mut(self.end..)
            .filter(|free| !free.is_empty())
        else {
            return Ok(Moved::Nothing);
        };
        loop {
            return match from.read(free) {
                Ok(0) => Ok(Moved::Ended),
                Ok(count) => {
                    self.end += count;
                    Ok(Moved::Some)
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(Moved::Nothing),
                Err(err) => Err(err),
            };
        }
    }

    /// Writes what it holds to `to` (one write).
    pub(super) fn drain(&mut self, mut to: impl Write) -> io::Result<Moved> {
        let Some(held) = self
            .buffer
            .get(self.start..self.end)
            .filter(|b| !b.is_empty())
        else {
            return Ok(Moved::Nothing);
        };
        loop {
            return match to.write(held) {
                Ok(0) => Err(io::ErrorKind::WriteZero.into()),
                Ok(count) => {
                    self.start += count;
                    Ok(Moved::Some)
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(Moved::Nothing),
                Err(err) => Err(err),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader and writer that take at most `step` bytes per call and then would block.
    struct Trickle {
        data: Vec<u8>,
        step: usize,
        blocked: bool,
    }

    impl Read for &mut Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.blocked {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let count = self.step.min(buf.len()).min(self.data.len());
            if count == 0 {
                return Ok(0);
            }
            buf[..count].copy_from_slice(&self.data[..count]);
            self.data.drain(..count);
            Ok(count)
        }
    }

    impl Write for &mut Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.blocked {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let count = self.step.min(buf.len());
            self.data.extend_from_slice(&buf[..count]);
            Ok(count)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn bytes_arrive_in_order_behind_the_answer_and_the_buffer_never_grows() {
        let sent: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut from = Trickle {
            data: sent.clone(),
            step: 5_000,
            blocked: false,
        };
        let mut to = Trickle {
            data: Vec::new(),
            step: 3_001,
            blocked: false,
        };
        let mut pipe = Pipe::starting_with(b"answer");
        let mut ended = false;
        let mut rounds = 0;
        while !(ended && pipe.is_empty()) {
            rounds += 1;
            // The receiver stalls every third round: the pipe fills and reading stops.
            to.blocked = rounds % 3 == 0;
            if !ended {
                ended = pipe.fill(&mut from).unwrap() == Moved::Ended;
            }
            pipe.drain(&mut to).unwrap();
            assert!(pipe.end - pipe.start <= PIPE_CAPACITY);
            assert_eq!(pipe.buffer.len(), PIPE_CAPACITY);
        }
        assert_eq!(&to.data[..6], b"answer");
        assert_eq!(&to.data[6..], &sent[..]);
    }

    #[test]
    fn a_full_pipe_reads_nothing() {
        let mut pipe = Pipe::starting_with(&[1; PIPE_CAPACITY]);
        let mut from = Trickle {
            data: vec![2; 10],
            step: 10,
            blocked: false,
        };
        assert_eq!(pipe.fill(&mut from).unwrap(), Moved::Nothing);
        assert_eq!(from.data.len(), 10);
    }
}
