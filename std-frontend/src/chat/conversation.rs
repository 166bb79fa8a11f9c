//! One conversation over an established session: a thread that receives and prints, and the
//! calling thread that seals and sends what is typed, until either side closes or the
//! connection fails. The two share nothing but the queue of events (see `events`).
//!
//! After the handshake nothing here allocates per message: records are sealed into one send
//! buffer, text is made printable in one output buffer, and both are made once per
//! conversation. When lines arrive faster than one at a time, the records of all those ready
//! go out in one write, and the messages of all the records that arrived together are printed
//! in one write; nothing waits for more to come, so a lone message goes out at once.

use std::io;
use std::thread;
use std::time::{Duration, Instant};

use std::io::Write;

use aeschat_core::fernet::IvPool;
use aeschat_core::session::{
    receive, record_frame_len, Error, Incoming, Receiver, Sender, SessionError,
    DEFAULT_FRAME_CAPACITY, MAX_MESSAGE_LEN,
};
use embedded_io_adapters::std::FromStd;

use super::allocations;
use super::events::{Events, Next, PeerEnd, Typed};
use super::handshake::unix_now;
use super::interrupt::Conversing;
use super::net::{TcpReader, TcpWriter};
use super::stack;
use super::terminal::{self, PeerLines};
use super::Failure;

/// The bytes received on one connection and not yet taken by the protocol engine: room for the
/// longest frame (about 87 KiB, so it lives on the heap). Reads land here and records are
/// decrypted where they lie. The same inbox serves the handshake and then the conversation, so
/// nothing read ahead is lost.
pub(super) type Inbox = aeschat_core::session::Inbox<Box<[u8]>>;

/// An empty inbox for one connection.
pub(super) fn new_inbox() -> Inbox {
    Inbox::new(vec![0; DEFAULT_FRAME_CAPACITY].into_boxed_slice())
}

/// What typing this line does instead of sending it.
const QUIT: &[u8] = b"/quit";

/// Records are collected up to this many bytes before they are written, when more lines are
/// ready to send.
const SEND_BATCH: usize = 32 * 1024;

/// How a conversation ended.
pub(super) enum Ending {
    /// The peer closed it; this side answered with its own close.
    PeerLeft,
    /// This side closed it: `/quit`, Ctrl-C, or the end of standard input.
    Left { input_ended: bool },
    /// The connection failed or was tampered with; what was said may be incomplete.
    Failed(Failure),
}

/// Runs one conversation over a session's two halves to its end. `peer` names the other side
/// in printed lines ("Client", "Server"); `close_wait` bounds the wait for the peer's answering
/// close.
///
/// The halves are borrowed, not taken: wherever they live (the caller's stack, or a box made
/// once), they stay there and are wiped there when dropped, with no copy of their keys left
/// behind by a move.
#[allow(clippy::too_many_arguments)]
pub(super) fn run(
    sender: &mut Sender,
    receiver: &mut Receiver,
    reader: TcpReader,
    mut writer: TcpWriter,
    inbox: Inbox,
    events: &mut Events,
    peer: &'static str,
    close_wait: Duration,
) -> Ending {
    let (conversation, notice) = events.begin_conversation();
    // Meanwhile a first Ctrl-C leaves the conversation instead of exiting.
    let _conversing = Conversing::start();
    // The receiving thread borrows its half rather than owning it: moved into the thread, the
    // half would leave a copy of its keys in the closure's heap allocation, which nothing wipes.
    thread::scope(|scope| {
        let receiving = thread::Builder::new()
            .name("receive".to_owned())
            .spawn_scoped(scope, move || {
                notice.ended(receive_all(receiver, reader, inbox, peer));
                // The thread's stack outlives it (the system keeps it for the next thread),
                // with the copies of the keys that receiving left in it.
                stack::scrub();
            });
        let ending = match receiving {
            Ok(_) => {
                let mut sending = Sending {
                    sender,
                    writer: &mut writer,
                    records: vec![0; SEND_BATCH + record_frame_len(MAX_MESSAGE_LEN)]
                        .into_boxed_slice(),
                    filled: 0,
                    text: Vec::with_capacity(MAX_MESSAGE_LEN),
                    ivs: IvPool::new(),
                    line_number: 0,
                };
                sending.run(events, conversation, peer, close_wait)
            }
            Err(err) => Ending::Failed(Failure::other(format!("cannot start a thread: {err}"))),
        };
        // Wakes the receiving thread if it still waits for the peer, so the scope can end.
        writer.abort();
        ending
    })
}

/// Receives and prints until the peer closes or the connection fails.
fn receive_all(
    receiver: &mut Receiver,
    reader: TcpReader,
    mut inbox: Inbox,
    peer: &'static str,
) -> PeerEnd {
    let mut lines = PeerLines::new(peer);
    let mut reader = FromStd::new(reader);
    let end = loop {
        match receive(receiver, &mut reader, &mut inbox) {
            Ok(Incoming::Text(text)) => {
                allocations::message();
                lines.push(text);
                // Before a wait for the network, everything received is shown.
                if !receiver.is_ready(inbox.pending()) {
                    lines.flush();
                }
            }
            Ok(Incoming::Closed) => break PeerEnd::Closed,
            // A reset is the peer's system ending the connection without the peer's close: the
            // same as an end of stream, as far as what may be missing goes.
            Err(SessionError::Transport(err))
                if matches!(
                    err.kind(),
                    io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
                ) =>
            {
                break PeerEnd::Failed(SessionError::Protocol(Error::Truncated))
            }
            Err(error) => break PeerEnd::Failed(error),
        }
    };
    lines.flush();
    end
}

/// The sending half of a conversation, driven by what is typed.
struct Sending<'a> {
    sender: &'a mut Sender,
    writer: &'a mut TcpWriter,
    /// Where records are sealed, `filled` bytes of them not yet written: room for a batch
    /// and the longest record after it.
    records: Box<[u8]>,
    filled: usize,
    /// Where a line that is not UTF-8 is made so.
    text: Vec<u8>,
    /// Fresh IVs for the records sent, drawn from the system a few hundred at a time.
    ivs: IvPool,
    /// Lines typed in this conversation so far, to name a line that is refused.
    line_number: u64,
}

impl Sending<'_> {
    fn run(
        &mut self,
        events: &mut Events,
        conversation: u64,
        peer: &str,
        close_wait: Duration,
    ) -> Ending {
        loop {
            // With records waiting to be written, only what is ready joins them; when nothing
            // is, they go out before this side waits.
            let next = if self.filled == 0 {
                events.next(conversation, false, None)
            } else if let Some(next) = events.next_now(conversation) {
                next
            } else {
                if let Err(error) = self.write_records() {
                    return Ending::Failed(send_failure(events, conversation, error));
                }
                continue;
            };
            let Next::Typed(Typed::Lines(mut lines)) = next else {
                // Whatever happens next comes after the lines typed before it.
                if let Err(error) = self.write_records() {
                    return Ending::Failed(send_failure(events, conversation, error));
                }
                match self.handle(next, events, conversation, peer, close_wait) {
                    Some(ending) => return ending,
                    None => continue,
                }
            };
            while let Some(line) = lines.next_line() {
                self.line_number += 1;
                if line.trim_ascii_end() == QUIT {
                    if !lines.is_empty() {
                        // The lines after it are for whoever this side talks to next.
                        events.hold_first(Typed::Lines(lines));
                    }
                    if let Err(error) = self.write_records() {
                        return Ending::Failed(send_failure(events, conversation, error));
                    }
                    return self.leave(events, conversation, close_wait, false);
                }
                let sealed = self.seal_line(line);
                let full = self.filled >= SEND_BATCH;
                if let Err(error) = sealed.and_then(|()| match full {
                    true => self.write_records(),
                    false => Ok(()),
                }) {
                    return Ending::Failed(send_failure(events, conversation, error));
                }
            }
        }
    }

    /// Everything but a line to send: the end of the conversation (`Some`) or a notice.
    fn handle(
        &mut self,
        next: Next,
        events: &mut Events,
        conversation: u64,
        peer: &str,
        close_wait: Duration,
    ) -> Option<Ending> {
        match next {
            // Sent by `run`.
            Next::Typed(Typed::Lines(_)) => None,
            Next::Typed(Typed::TooLong) => {
                self.line_number += 1;
                let max = self.max_message_len();
                not_sent(self.line_number, None, Error::MessageTooLong { max });
                None
            }
            Next::Typed(Typed::End | Typed::Interrupted) => {
                Some(self.leave(events, conversation, close_wait, true))
            }
            Next::Typed(Typed::Failed(err)) => {
                terminal::error(&format!("cannot read standard input: {err}"));
                Some(self.leave(events, conversation, close_wait, true))
            }
            Next::Peer(PeerEnd::Closed) => {
                terminal::status(&format!("[-] {peer} left"));
                // Answering with this side's close tells the peer that everything it was
                // sent arrived; if the peer has gone already, there is no one to tell.
                let _ = self.close();
                Some(Ending::PeerLeft)
            }
            Next::Peer(PeerEnd::Failed(error)) => Some(Ending::Failed(error.into())),
            Next::TimedOut => None,
        }
    }

    /// The longest message this side can send: the peer's limit, and this side's buffer.
    fn max_message_len(&self) -> usize {
        self.sender.max_message_len().min(MAX_MESSAGE_LEN)
    }

    /// Seals one typed line into the records waiting to be written (writing those first if
    /// there is no room). A line too long for one message is refused here, whole, and the
    /// conversation goes on; only a failed connection ends it.
    fn seal_line(&mut self, line: &[u8]) -> Result<(), SessionError<io::Error>> {
        if line.is_empty() {
            return Ok(());
        }
        let max = self.max_message_len();
        // The chat promises UTF-8 text; bytes that are not are sent as U+FFFD.
        let lossy = std::str::from_utf8(line).is_err();
        if lossy && !replace_invalid_utf8(line, &mut self.text) {
            not_sent(self.line_number, None, Error::MessageTooLong { max });
            return Ok(());
        }
        let len = if lossy { self.text.len() } else { line.len() };
        if len > max {
            not_sent(self.line_number, Some(len), Error::MessageTooLong { max });
            return Ok(());
        }
        if self.records.len() - self.filled < record_frame_len(len) {
            self.write_records()?;
        }
        let text = if lossy { &self.text[..] } else { line };
        let out = self.records.get_mut(self.filled..).unwrap_or_default();
        match self.sender.seal_text(text, &mut self.ivs, unix_now(), out) {
            Ok(record) => {
                self.filled += record.len();
                allocations::message();
                Ok(())
            }
            Err(error @ Error::MessageTooLong { .. }) => {
                not_sent(self.line_number, Some(len), error);
                Ok(())
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Writes the records sealed so far.
    fn write_records(&mut self) -> Result<(), SessionError<io::Error>> {
        let records = self.records.get(..self.filled).unwrap_or_default();
        self.filled = 0;
        let mut rest = records;
        while !rest.is_empty() {
            match self.writer.write(rest) {
                Ok(0) => return Err(Error::ConnectionClosed.into()),
                Ok(written) => rest = rest.get(written..).unwrap_or_default(),
                Err(err) => return Err(SessionError::Transport(err)),
            }
        }
        Ok(())
    }

    /// Sends the authenticated close and ends this side's direction of the connection.
    fn close(&mut self) -> Result<(), SessionError<io::Error>> {
        let result = self
            .sender
            .seal_close(&mut self.ivs, unix_now(), &mut self.records)
            .map_err(SessionError::Protocol)
            .and_then(|record| {
                self.writer
                    .write_all(record)
                    .and_then(|()| self.writer.flush())
                    .map_err(SessionError::Transport)
            });
        self.writer.finish();
        result
    }

    /// Closes the conversation from this side, then waits (a bounded time) for the peer's
    /// answering close, so both sides know nothing was cut off. Typed input that arrives
    /// meanwhile is kept for the next conversation.
    fn leave(
        &mut self,
        events: &mut Events,
        conversation: u64,
        close_wait: Duration,
        input_ended: bool,
    ) -> Ending {
        if let Err(error) = self.close() {
            return Ending::Failed(send_failure(events, conversation, error));
        }
        let deadline = Instant::now() + close_wait;
        // Only the peer's authenticated answer makes a clean end. Anything else means a
        // message of the peer's may have been held back or cut off on the way (an attacker
        // can delay a record until after this side's close), and the person must hear of it.
        match events.next(conversation, true, Some(deadline)) {
            Next::Peer(PeerEnd::Closed) => {
                terminal::status("[-] Conversation closed");
                Ending::Left { input_ended }
            }
            Next::Peer(PeerEnd::Failed(error)) => Ending::Failed(error.into()),
            Next::TimedOut | Next::Typed(_) => Ending::Failed(Failure::other(format!(
                "The peer did not confirm the end within {} s: messages may be missing.",
                close_wait.as_secs()
            ))),
        }
    }
}

/// What to report when sending failed. A failed send mostly means the connection is gone, and
/// then the receiving thread knows more (such as an end without the peer's close, where
/// messages may be missing), so its account is preferred if it comes within a moment.
fn send_failure(events: &mut Events, conversation: u64, error: SessionError<io::Error>) -> Failure {
    if matches!(error, SessionError::Transport(_)) {
        let moment = Instant::now() + Duration::from_secs(1);
        if let Next::Peer(PeerEnd::Failed(seen)) = events.next(conversation, true, Some(moment)) {
            return seen.into();
        }
    }
    error.into()
}

/// Says that a typed line was not sent, naming it by its number in the conversation's input
/// (and its length, when known: a line far too long is not kept to be measured).
fn not_sent(line_number: u64, len: Option<usize>, error: Error) {
    let size = len.map_or_else(String::new, |len| format!(" ({len} bytes)"));
    terminal::error(&format!(
        "not sent: line {line_number} of the input{size}: {error}"
    ));
}

/// Writes `line` into `text` (empty, never grown) as UTF-8, with U+FFFD for each invalid
/// sequence as `String::from_utf8_lossy` does. False when the result would not fit in `text`,
/// which holds the longest message.
fn replace_invalid_utf8(line: &[u8], text: &mut Vec<u8>) -> bool {
    text.clear();
    for chunk in line.utf8_chunks() {
        let invalid = if chunk.invalid().is_empty() {
            ""
        } else {
            "\u{fffd}"
        };
        if text.len() + chunk.valid().len() + invalid.len() > text.capacity() {
            return false;
        }
        text.extend_from_slice(chunk.valid().as_bytes());
        text.extend_from_slice(invalid.as_bytes());
    }
    true
}

#[cfg(test)]
mod tests {
    use super::replace_invalid_utf8;

    #[test]
    fn invalid_utf8_is_replaced_as_a_lossy_decode_does_within_the_buffer() {
        let line = b"ok \xff\xfe end \xe2\x82 \xf0\x9f\x99\x82";
        let mut text = Vec::with_capacity(64);
        assert!(replace_invalid_utf8(line, &mut text));
        assert_eq!(text, String::from_utf8_lossy(line).as_bytes());
        assert_eq!(text.capacity(), 64);
        // Each invalid byte takes three bytes: 30 of them need 90.
        assert!(!replace_invalid_utf8(&[0xff; 30], &mut text));
        assert_eq!(text.capacity(), 64);
    }
}
