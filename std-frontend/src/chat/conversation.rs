//! One conversation over an established session: a thread that receives and prints, and the
//! calling thread that seals and sends what is typed, until either side closes or the
//! connection fails. The two share nothing but the queue of events (see `events`).

use std::io;
use std::thread;
use std::time::{Duration, Instant};

use aeschat_core::{
    receive, record_frame_len, send_close, send_text, Error, FrameReader, Incoming, Iv, Receiver,
    Sender, Session, SessionError, DEFAULT_FRAME_CAPACITY, MAX_MESSAGE_LEN,
};

use super::events::{Events, Next, PeerEnd, Typed};
use super::handshake::unix_now;
use super::net::{TcpReader, TcpWriter};
use super::{terminal, Failure};

/// The frame reader of one connection: big enough for the longest message (about 87 KiB, so
/// it lives on the heap).
pub(super) type Frames = FrameReader<DEFAULT_FRAME_CAPACITY>;

/// What typing this line does instead of sending it.
const QUIT: &[u8] = b"/quit";

/// How a conversation ended.
pub(super) enum Ending {
    /// The peer closed it; this side answered with its own close.
    PeerLeft,
    /// This side closed it: `/quit`, or the end of standard input.
    Left { input_ended: bool },
    /// The connection failed or was tampered with; what was said may be incomplete.
    Failed(Failure),
}

/// Runs one conversation over `session` to its end. `peer` names the other side in printed
/// lines ("Client", "Server"); `close_wait` bounds the wait for the peer's answering close.
pub(super) fn run(
    session: Session,
    reader: TcpReader,
    mut writer: TcpWriter,
    frames: Box<Frames>,
    events: &mut Events,
    peer: &'static str,
    close_wait: Duration,
) -> Ending {
    let (conversation, notice) = events.begin_conversation();
    let (mut sender, receiver) = session.split();
    thread::scope(|scope| {
        let receiving = thread::Builder::new()
            .name("receive".to_owned())
            .spawn_scoped(scope, move || {
                notice.ended(receive_all(receiver, reader, frames, peer));
            });
        let ending = match receiving {
            Ok(_) => {
                let mut sending = Sending {
                    sender: &mut sender,
                    writer: &mut writer,
                    record: vec![0; record_frame_len(MAX_MESSAGE_LEN)],
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
    mut receiver: Receiver,
    mut reader: TcpReader,
    mut frames: Box<Frames>,
    peer: &str,
) -> PeerEnd {
    loop {
        match receive(&mut receiver, &mut reader, &mut *frames) {
            Ok(Incoming::Text(text)) => terminal::peer_line(peer, text),
            Ok(Incoming::Closed) => return PeerEnd::Closed,
            // A reset is the peer's system ending the connection without the peer's close: the
            // same as an end of stream, as far as what may be missing goes.
            Err(SessionError::Transport(err))
                if matches!(
                    err.kind(),
                    io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
                ) =>
            {
                return PeerEnd::Failed(SessionError::Protocol(Error::Truncated))
            }
            Err(error) => return PeerEnd::Failed(error),
        }
    }
}

/// The sending half of a conversation, driven by what is typed.
struct Sending<'a> {
    sender: &'a mut Sender,
    writer: &'a mut TcpWriter,
    /// Where records are sealed: room for the longest message.
    record: Vec<u8>,
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
            match events.next(conversation, false, None) {
                Next::Typed(Typed::Line(line)) if line.trim_ascii_end() == QUIT => {
                    return self.leave(events, conversation, close_wait, false)
                }
                Next::Typed(Typed::Line(line)) => {
                    if let Err(error) = self.send_line(&line) {
                        return Ending::Failed(send_failure(events, conversation, error));
                    }
                }
                Next::Typed(Typed::TooLong) => not_sent(Error::MessageTooLong {
                    max: self.max_message_len(),
                }),
                Next::Typed(Typed::End) => {
                    return self.leave(events, conversation, close_wait, true)
                }
                Next::Typed(Typed::Failed(err)) => {
                    terminal::error(&format!("cannot read standard input: {err}"));
                    return self.leave(events, conversation, close_wait, true);
                }
                Next::Peer(PeerEnd::Closed) => {
                    terminal::status(&format!("[-] {peer} left"));
                    // Answering with this side's close tells the peer that everything it was
                    // sent arrived; if the peer has gone already, there is no one to tell.
                    let _ = self.close();
                    return Ending::PeerLeft;
                }
                Next::Peer(PeerEnd::Failed(error)) => return Ending::Failed(error.into()),
                Next::TimedOut => {}
            }
        }
    }

    /// The longest message this side can send: the peer's limit, and this side's buffer.
    fn max_message_len(&self) -> usize {
        self.sender.max_message_len().min(MAX_MESSAGE_LEN)
    }

    /// Seals and sends one typed line. A line too long for one message is refused here, whole,
    /// and the conversation goes on; only a failed connection ends it.
    fn send_line(&mut self, line: &[u8]) -> Result<(), SessionError<io::Error>> {
        if line.is_empty() {
            return Ok(());
        }
        // The chat promises UTF-8 text; bytes that are not are sent as U+FFFD.
        let text = String::from_utf8_lossy(line);
        let max = self.max_message_len();
        if text.len() > max {
            not_sent(Error::MessageTooLong { max });
            return Ok(());
        }
        let iv = Iv::random()?;
        match send_text(
            self.sender,
            self.writer,
            text.as_bytes(),
            unix_now(),
            &iv,
            &mut self.record,
        ) {
            Ok(()) => Ok(()),
            Err(SessionError::Protocol(error @ Error::MessageTooLong { .. })) => {
                not_sent(error);
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// Sends the authenticated close and ends this side's direction of the connection.
    fn close(&mut self) -> Result<(), SessionError<io::Error>> {
        let iv = Iv::random()?;
        let result = send_close(self.sender, self.writer, unix_now(), &iv, &mut self.record);
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

fn not_sent(error: Error) {
    terminal::error(&format!("not sent: {error}"));
}
