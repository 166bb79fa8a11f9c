//! The established session: records that carry chat text, each one Fernet token under its
//! direction's key, numbered so that nothing can be replayed, reordered or dropped unnoticed.
//!
//! A record's plaintext is `type: u8 ‖ sequence: u64 big-endian ‖ body`. The session splits into
//! a [`Sender`] and a [`Receiver`] that share nothing, so two threads can own one each.

use aes::{Aes128Dec, Aes128Enc};
use rand_core::TryCryptoRng;

use crate::fernet::Key;
use crate::frame::{Frame, FrameKind, FRAME_HEADER_LEN};
use crate::handshake::{Alert, Role, HANDSHAKE_FRAME_LEN};
use crate::session::Error;
use crate::token::{self, token_len, Iv, MacKey, TimePolicy, IV_LEN};

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
/// assert_eq!(aeschat_core::session::record_frame_len(0), 5 + 100);
/// ```
pub const fn record_frame_len(message_len: usize) -> usize {
    FRAME_HEADER_LEN.saturating_add(token_len(RECORD_HEADER_LEN.saturating_add(message_len)))
}

/// The input buffer size a side needs to receive messages of up to `max_message_len` bytes
/// (and every handshake message): the longest frame it accepts.
///
/// ```
/// use aeschat_core::session::{frame_capacity, Inbox};
/// static mut RECEIVED: [u8; frame_capacity(256)] = [0; frame_capacity(256)];
/// let inbox = Inbox::new([0u8; frame_capacity(256)]); // or a `static`, on a board
/// assert_eq!(inbox.capacity(), 445);
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

    pub(crate) fn sender_mut(&mut self) -> &mut Sender {
        &mut self.sender
    }

    pub(crate) fn receiver_mut(&mut self) -> &mut Receiver {
        &mut self.receiver
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
    /// `now` (Unix seconds; `None` on a board without a clock, which dates it 0), under a fresh
    /// IV drawn from `rng` (a generator that can fail, such as the operating system's, makes
    /// this [`Error::Randomness`] when it does). A longer text than the peer accepts is refused whole, never cut; a
    /// too-small `out` changes nothing and can be retried.
    ///
    /// ```
    /// # include!("doc/established_pair.rs");
    /// # fn main() -> Result<(), aeschat_core::session::Error> {
    /// # let (mut client, _server) = established_pair();
    /// # let mut rng = Os;
    /// let (mut sender, _receiver) = client.split()?;
    /// let mut out = [0u8; aeschat_core::session::record_frame_len(5)];
    /// let frame = sender.seal_text(b"hello", &mut rng, None, &mut out)?;
    /// assert_eq!(frame.len(), out.len());
    /// # Ok(()) }
    /// ```
    pub fn seal_text<'o, R: TryCryptoRng + ?Sized>(
        &mut self,
        text: &[u8],
        rng: &mut R,
        now: Option<u64>,
        out: &'o mut [u8],
    ) -> Result<&'o [u8], Error> {
        if text.len() > self.max_message_len {
            return Err(Error::MessageTooLong {
                max: self.max_message_len,
            });
        }
        self.seal(RECORD_TEXT, text, rng, now, out)
    }

    /// Seals the authenticated close, after which this half sends nothing more. The peer
    /// knows the conversation ended here and nothing after it was cut off.
    ///
    /// ```
    /// # include!("doc/established_pair.rs");
    /// # fn main() -> Result<(), aeschat_core::session::Error> {
    /// # let (mut client, _server) = established_pair();
    /// # let mut rng = Os;
    /// let (mut sender, _receiver) = client.split()?;
    /// let mut out = [0u8; aeschat_core::session::record_frame_len(0)];
    /// sender.seal_close(&mut rng, None, &mut out)?;
    /// assert_eq!(sender.seal_close(&mut rng, None, &mut out), Err(aeschat_core::session::Error::SessionEnded));
    /// # Ok(()) }
    /// ```
    pub fn seal_close<'o, R: TryCryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        now: Option<u64>,
        out: &'o mut [u8],
    ) -> Result<&'o [u8], Error> {
        let frame = self.seal(RECORD_CLOSE, &[], rng, now, out)?;
        self.ended = true;
        Ok(frame)
    }

    fn seal<'o, R: TryCryptoRng + ?Sized>(
        &mut self,
        record_type: u8,
        body: &[u8],
        rng: &mut R,
        now: Option<u64>,
        out: &'o mut [u8],
    ) -> Result<&'o [u8], Error> {
        if self.ended {
            return Err(Error::SessionEnded);
        }
        let required = record_frame_len(body.len());
        let frame = out
            .get_mut(..required)
            .ok_or(Error::BufferTooSmall { required })?;
        // A fresh IV for every record, drawn here so no caller can reuse one.
        let mut iv = [0u8; IV_LEN];
        rng.try_fill_bytes(&mut iv).map_err(|_| Error::Randomness)?;
        let (iv, now) = (Iv::from_bytes(iv), now.unwrap_or(0));
        let iv = &iv;
        let (header, token_out) = frame
            .split_first_chunk_mut::<FRAME_HEADER_LEN>()
            .ok_or(Error::BufferTooSmall { required })?;
        let [s0, s1, s2, s3, s4, s5, s6, s7] = self.next_sequence.to_be_bytes();
        let record_header = [record_type, s0, s1, s2, s3, s4, s5, s6, s7];
        let parts: [&[u8]; 2] = [&record_header, body];
        // Sealing fails only for a short buffer, and the frame was sized above.
        let token_len = token::seal(&self.aes, self.mac_key.start(), &parts, now, iv, token_out)
            .map_err(|_| Error::BufferTooSmall { required })?
            .len();
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

/// What [`Receiver::poll`] found in the received bytes.
#[derive(Debug, PartialEq, Eq)]
pub struct Received<'b> {
    /// How many bytes at the start of the input the record took: discard them once done with
    /// the text.
    pub discard: usize,
    /// The record's content, `Ok(None)` if no whole frame has arrived yet, or why the session
    /// ended.
    pub result: Result<Option<Incoming<'b>>, Error>,
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
    /// Ended by the peer's authenticated close (not by a failure).
    closed: bool,
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
            closed: false,
        }
    }

    /// Takes the next record from `input`, the bytes received so far in the caller's buffer,
    /// and opens it where it lies. Returns how many bytes to discard and what they held:
    /// `Ok(None)` while the next frame is not yet whole (read more, keep these). Any failure
    /// ends the session: skipping a bad record would let an attacker delete messages.
    ///
    /// ```
    /// # include!("doc/established_pair.rs");
    /// # fn main() -> Result<(), aeschat_core::session::Error> {
    /// # let (mut client, mut server) = established_pair();
    /// # let mut rng = Os;
    /// use aeschat_core::session::Incoming;
    ///
    /// let (mut sender, _) = client.split()?;
    /// let (_, mut receiver) = server.split()?;
    /// let mut wire = [0u8; 256];
    /// let len = sender.seal_text(b"hi", &mut rng, None, &mut wire)?.len();
    ///
    /// let partial = receiver.poll(&mut wire[..10]);
    /// assert_eq!((partial.discard, partial.result), (0, Ok(None))); // read more
    /// let whole = receiver.poll(&mut wire[..len]);
    /// assert_eq!((whole.discard, whole.result), (len, Ok(Some(Incoming::Text(b"hi")))));
    /// # Ok(()) }
    /// ```
    pub fn poll<'b>(&mut self, input: &'b mut [u8]) -> Received<'b> {
        if self.ended {
            return Received {
                discard: 0,
                result: Err(Error::SessionEnded),
            };
        }
        match Frame::parse(input, self.max_body_len()) {
            Ok(None) => Received {
                discard: 0,
                result: Ok(None),
            },
            Ok(Some((frame, len))) => Received {
                discard: len,
                result: self.open(frame).map(Some),
            },
            Err(error) => {
                self.ended = true;
                Received {
                    discard: 0,
                    result: Err(error),
                }
            }
        }
    }

    /// The largest frame body this half accepts: the record of its longest message.
    fn max_body_len(&self) -> usize {
        frame_capacity(self.max_message_len).saturating_sub(FRAME_HEADER_LEN)
    }

    /// True when `pending` (the bytes received and not yet taken) holds something for
    /// [`Receiver::poll`] to act on at once: a whole frame, or a header it refuses. A driver
    /// asks before it waits for the network (to show what has arrived first), or before a poll
    /// whose text it returns.
    ///
    /// ```
    /// # include!("doc/established_pair.rs");
    /// # fn main() -> Result<(), aeschat_core::session::Error> {
    /// # let (mut client, mut server) = established_pair();
    /// let (mut sender, _) = client.split()?;
    /// let (_, receiver) = server.split()?;
    /// let mut wire = [0u8; 256];
    /// let len = sender.seal_text(b"hi", &mut Os, None, &mut wire)?.len();
    /// assert!(!receiver.is_ready(&wire[..len - 1]));
    /// assert!(receiver.is_ready(&wire[..len]));
    /// # Ok(()) }
    /// ```
    pub fn is_ready(&self, pending: &[u8]) -> bool {
        let input = pending;
        self.ended
            || !matches!(
                crate::frame::whole_frame_len(input, self.max_body_len()),
                Ok(None)
            )
    }

    /// [`Receiver::poll`] on the bytes waiting in `inbox`, discarding what the record took
    /// (once the returned text, which lies in them, is dropped).
    pub fn poll_inbox<'s, B>(
        &mut self,
        inbox: &'s mut crate::session::Inbox<B>,
    ) -> Result<Option<Incoming<'s>>, Error>
    where
        B: AsRef<[u8]> + AsMut<[u8]>,
    {
        let (input, discard) = inbox.pending_and_discard();
        let received = self.poll(input);
        *discard = received.discard;
        received.result
    }

    /// Verifies and decrypts one record frame in place (see [`Receiver::poll`], which finds the
    /// frame in the received bytes). Any failure ends the session.
    pub fn open<'b>(&mut self, frame: Frame<'b>) -> Result<Incoming<'b>, Error> {
        if self.ended {
            return Err(Error::SessionEnded);
        }
        let result = self.open_record(frame);
        match result {
            Ok(Incoming::Text(_)) => {}
            Ok(Incoming::Closed) => (self.ended, self.closed) = (true, true),
            Err(_) => self.ended = true,
        }
        result
    }

    /// True once the session has ended here (closed by the peer, or failed): nothing more will
    /// be opened, so a driver need not read further.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// True once the peer's authenticated close has arrived: the conversation ended cleanly.
    pub fn is_closed(&self) -> bool {
        self.closed
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
