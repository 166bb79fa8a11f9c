//! The established session: records that carry chat text, each one Fernet token under its
//! direction's key, numbered so that nothing can be replayed, reordered or dropped unnoticed.
//!
//! A record's plaintext is `type: u8 ‖ sequence: u64 big-endian ‖ body`. The session splits into
//! a [`Sender`] and a [`Receiver`] that share nothing, so two threads can own one each.

use crate::frame::{Frame, FrameKind, FRAME_HEADER_LEN};
use crate::handshake::{Alert, Role, HANDSHAKE_FRAME_LEN};
use aes::{Aes128Dec, Aes128Enc};

use crate::token::{self, token_len, Iv, MacKey, TimePolicy};
use crate::{Error, Key};

/// The default longest message: 64 KiB, so a pasted block of text fits.
pub const MAX_MESSAGE_LEN: usize = 64 * 1024;
/// The bytes a record adds before the message: type and sequence number.
pub const RECORD_HEADER_LEN: usize = 1 + 8;

const RECORD_TEXT: u8 = 1;
const RECORD_CLOSE: u8 = 2;

/// The frame length of a record carrying a message of `message_len` bytes: the size of the
/// buffer [`Sender::seal_text`] writes into.
///
/// ```
/// assert_eq!(aeschat_core::record_frame_len(0), 5 + 100);
/// ```
pub const fn record_frame_len(message_len: usize) -> usize {
    FRAME_HEADER_LEN.saturating_add(token_len(RECORD_HEADER_LEN.saturating_add(message_len)))
}

/// The buffer size a frame reader needs to receive messages of up to `max_message_len` bytes
/// (and every handshake message).
///
/// ```
/// use aeschat_core::{frame_capacity, FrameReader};
/// static READER: FrameReader<{ frame_capacity(256) }> = FrameReader::new();
/// assert!(frame_capacity(256) < 512);
/// ```
pub const fn frame_capacity(max_message_len: usize) -> usize {
    let record = record_frame_len(max_message_len);
    if record > HANDSHAKE_FRAME_LEN {
        record
    } else {
        HANDSHAKE_FRAME_LEN
    }
}

/// The frame capacity for the default maximum message length.
pub const DEFAULT_FRAME_CAPACITY: usize = frame_capacity(MAX_MESSAGE_LEN);

const _: () = assert!(DEFAULT_FRAME_CAPACITY >= HANDSHAKE_FRAME_LEN);
const _: () = assert!(record_frame_len(MAX_MESSAGE_LEN) <= u32::MAX as usize);

/// An established session, before it is split.
#[derive(Debug)]
pub struct Session {
    sender: Sender,
    receiver: Receiver,
    peer_clock_offset: Option<i64>,
}

impl Session {
    pub(crate) fn new(sender: Sender, receiver: Receiver, peer_clock_offset: Option<i64>) -> Self {
        Session {
            sender,
            receiver,
            peer_clock_offset,
        }
    }

    /// How far the peer's clock is ahead of this side's (negative: behind), in seconds, as the
    /// hellos reported them; `None` if either side has no clock. Records are not rejected for
    /// their time, so a wrong clock is diagnosed here, never mistaken for tampering.
    pub fn peer_clock_offset(&self) -> Option<i64> {
        self.peer_clock_offset
    }

    /// Splits into a sending and a receiving half that share nothing mutable.
    pub fn split(self) -> (Sender, Receiver) {
        (self.sender, self.receiver)
    }
}

/// The sending half: seals text and the final close into record frames.
pub struct Sender {
    /// This direction's AES key schedule and HMAC state, expanded once for the whole session
    /// (only the encrypting half: a sender never decrypts).
    aes: Aes128Enc,
    mac_key: MacKey,
    next_sequence: u64,
    max_message_len: usize,
    ended: bool,
}

impl Sender {
    pub(crate) fn new(key: &Key, max_message_len: usize) -> Self {
        Sender {
            aes: key.aes_enc(),
            mac_key: key.mac_key(),
            next_sequence: 0,
            max_message_len,
            ended: false,
        }
    }

    /// The longest message the peer accepts.
    pub fn max_message_len(&self) -> usize {
        self.max_message_len
    }

    /// Seals `text` into a record frame in `out` ([`record_frame_len`] of its length), dated
    /// `now`, encrypted with `iv` (fresh random bytes). A longer text than the peer accepts is
    /// refused whole, never cut; a too-small `out` changes nothing and can be retried.
    pub fn seal_text<'o>(
        &mut self,
        text: &[u8],
        now: u64,
        iv: &Iv,
        out: &'o mut [u8],
    ) -> Result<&'o [u8], Error> {
        if text.len() > self.max_message_len {
            return Err(Error::MessageTooLong {
                max: self.max_message_len,
            });
        }
        self.seal(RECORD_TEXT, text, now, iv, out)
    }

    /// Seals the authenticated close, after which this half sends nothing more. The peer
    /// knows the conversation ended here and nothing after it was cut off.
    pub fn seal_close<'o>(
        &mut self,
        now: u64,
        iv: &Iv,
        out: &'o mut [u8],
    ) -> Result<&'o [u8], Error> {
        let frame = self.seal(RECORD_CLOSE, &[], now, iv, out)?;
        self.ended = true;
        Ok(frame)
    }

    fn seal<'o>(
        &mut self,
        record_type: u8,
        body: &[u8],
        now: u64,
        iv: &Iv,
        out: &'o mut [u8],
    ) -> Result<&'o [u8], Error> {
        if self.ended {
            return Err(Error::SessionEnded);
        }
        let required = record_frame_len(body.len());
        let frame = out
            .get_mut(..required)
            .ok_or(Error::BufferTooSmall { required })?;
        let (header, token_out) = frame
            .split_first_chunk_mut::<FRAME_HEADER_LEN>()
            .ok_or(Error::BufferTooSmall { required })?;
        let [s0, s1, s2, s3, s4, s5, s6, s7] = self.next_sequence.to_be_bytes();
        let record_header = [record_type, s0, s1, s2, s3, s4, s5, s6, s7];
        let parts: [&[u8]; 2] = [&record_header, body];
        let token_len =
            token::seal(&self.aes, self.mac_key.start(), &parts, now, iv, token_out)?.len();
        let token_len = u32::try_from(token_len).map_err(|_| Error::MessageTooLong {
            max: self.max_message_len,
        })?;
        let [l0, l1, l2, l3] = token_len.to_be_bytes();
        *header = [FrameKind::Record as u8, l0, l1, l2, l3];
        // A session cannot send 2^64 records; if it ever did, numbers must not repeat.
        match self.next_sequence.checked_add(1) {
            Some(next) => self.next_sequence = next,
            None => self.ended = true,
        }
        Ok(frame)
    }
}

impl core::fmt::Debug for Sender {
    /// Shows the position in the session, never key material.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sender")
            .field("next_sequence", &self.next_sequence)
            .field("max_message_len", &self.max_message_len)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

/// What a received record carried.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming<'b> {
    /// A chat message (bytes as sent; the chat sends UTF-8).
    Text(&'b [u8]),
    /// The peer's authenticated close: the conversation ended cleanly, nothing is missing.
    Closed,
}

/// The receiving half: opens record frames in order.
pub struct Receiver {
    /// The peer's direction's AES key schedule and HMAC state, expanded once for the whole
    /// session (only the decrypting half).
    aes: Aes128Dec,
    mac_key: MacKey,
    next_sequence: u64,
    max_message_len: usize,
    /// Only a server can legitimately receive an alert after its handshake (see `open_record`).
    accepts_late_alert: bool,
    ended: bool,
}

impl Receiver {
    pub(crate) fn new(key: &Key, max_message_len: usize, role: Role) -> Self {
        Receiver {
            aes: key.aes_dec(),
            mac_key: key.mac_key(),
            next_sequence: 0,
            max_message_len,
            accepts_late_alert: role == Role::Server,
            ended: false,
        }
    }

    /// Verifies and decrypts a record frame in place. Any failure ends the session: skipping a
    /// bad record would let an attacker delete messages.
    pub fn open<'b>(&mut self, frame: Frame<'b>) -> Result<Incoming<'b>, Error> {
        if self.ended {
            return Err(Error::SessionEnded);
        }
        let result = self.open_record(frame);
        if !matches!(result, Ok(Incoming::Text(_))) {
            self.ended = true;
        }
        result
    }

    /// True once the session has ended here (closed by the peer, or failed): nothing more will
    /// be opened, so a driver need not read further.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// The error for an end of stream: a truncation unless the peer closed first.
    pub fn end_of_stream(&mut self) -> Error {
        if self.ended {
            Error::SessionEnded
        } else {
            self.ended = true;
            Error::Truncated
        }
    }

    fn open_record<'b>(&mut self, frame: Frame<'b>) -> Result<Incoming<'b>, Error> {
        match frame.kind {
            FrameKind::Record => {}
            // The one alert that can follow a handshake: alert 1, the client rejected the
            // server's key confirmation after the server had finished, so it reaches the server
            // before the first record the server receives. Any other (unauthenticated) alert
            // could only be forged, and must not pass for a wrong password or a busy server.
            FrameKind::Alert
                if self.accepts_late_alert
                    && self.next_sequence == 0
                    && frame.body == [Alert::AuthenticationFailed.code()] =>
            {
                return Err(Error::AuthenticationFailed)
            }
            _ => return Err(Error::UnexpectedMessage),
        }
        // Stops tampering, records from other sessions and reflection: each direction has
        // its own key, fresh for every session, so all of these fail authentication here.
        // Record times are not checked: freshness comes from the keys and sequence numbers.
        let plaintext = token::open_in_place_with(
            self.mac_key.start(),
            || &self.aes,
            frame.body,
            TimePolicy::Unchecked,
        )
        .map_err(|_| Error::RecordRejected)?;
        let (header, body) = plaintext
            .split_first_chunk::<RECORD_HEADER_LEN>()
            .ok_or(Error::UnexpectedMessage)?;
        let [record_type, sequence @ ..] = *header;
        let sequence = u64::from_be_bytes(sequence);
        // Stops replay, reordering and deletion: only the exact next number is accepted.
        if sequence != self.next_sequence {
            return Err(Error::RecordOutOfOrder {
                expected: self.next_sequence,
                received: sequence,
            });
        }
        match self.next_sequence.checked_add(1) {
            Some(next) => self.next_sequence = next,
            // The sender's last possible number, 2^64 - 1, is accepted like any other (the
            // sender seals it, section 5.4); nothing can follow it.
            None => self.ended = true,
        }
        match (record_type, body) {
            // The peer was told this side's limit and must keep to it.
            (RECORD_TEXT, text) if text.len() > self.max_message_len => {
                Err(Error::UnexpectedMessage)
            }
            (RECORD_TEXT, text) => Ok(Incoming::Text(text)),
            (RECORD_CLOSE, []) => Ok(Incoming::Closed),
            _ => Err(Error::UnexpectedMessage),
        }
    }
}

impl core::fmt::Debug for Receiver {
    /// Shows the position in the session, never key material.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Receiver")
            .field("next_sequence", &self.next_sequence)
            .field("max_message_len", &self.max_message_len)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}
