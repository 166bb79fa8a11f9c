//! One conversation over an established session: a thread that receives and prints, and the
//! calling thread that seals and sends what is typed, until either side closes or the
//! connection fails.
//!
//! Standard input is read by a thread of its own for the life of the process, because a
//! blocking read cannot be abandoned when a conversation ends. Everything it reads waits in a
//! queue for the current or next conversation, so what is typed is sent in order, and what is
//! typed between conversations goes to the next peer (as it would if nobody had read it yet).

use std::collections::VecDeque;
use std::io::{self, BufRead};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use aeschat_core::{
    receive, record_frame_len, send_close, send_text, Error, FrameReader, Incoming, Iv, Receiver,
    Sender, Session, SessionError, DEFAULT_FRAME_CAPACITY, MAX_MESSAGE_LEN,
};

use super::handshake::unix_now;
use super::net::{TcpReader, TcpWriter};
use super::secret::SecretBytes;
use super::{terminal, Failure};

/// The frame reader of one connection: big enough for the longest message (about 87 KiB, so
/// it lives on the heap).
pub(super) type Frames = FrameReader<DEFAULT_FRAME_CAPACITY>;

/// What typing this line does instead of sending it.
const QUIT: &[u8] = b"/quit";

/// The most of one line that is kept: one more byte than a message may hold, after a possible
/// `\r`, so that an overlong line is recognised without keeping all of it.
const LINE_CAPACITY: usize = MAX_MESSAGE_LEN + 2;

/// One thing read from standard input.
enum Typed {
    Line(SecretBytes),
    /// A line longer than any message; only its first bytes were kept.
    TooLong,
    End,
    Failed(io::Error),
}

/// How the peer's side of a conversation ended, as the receiving thread saw it.
enum PeerEnd {
    /// The peer's authenticated close: nothing is missing.
    Closed,
    Failed(SessionError<io::Error>),
}

enum Event {
    Typed(Typed),
    Peer { conversation: u64, end: PeerEnd },
}

enum Next {
    Typed(Typed),
    Peer(PeerEnd),
    TimedOut,
}

/// Standard input, read line by line by its own thread, and the queue where the receiving
/// thread of the current conversation reports its end.
pub(super) struct Input {
    events: mpsc::Receiver<Event>,
    notify: mpsc::Sender<Event>,
    /// Typed events taken off the queue while only the peer's end was awaited.
    held: VecDeque<Typed>,
    conversations: u64,
}

impl Input {
    /// Starts the thread that reads standard input.
    pub(super) fn from_stdin() -> Result<Input, Failure> {
        let (notify, events) = mpsc::channel();
        let lines = notify.clone();
        thread::Builder::new()
            .name("stdin".to_owned())
            .spawn(move || read_stdin(&lines))
            .map_err(|err| Failure::other(format!("cannot start a thread: {err}")))?;
        Ok(Input {
            events,
            notify,
            held: VecDeque::new(),
            conversations: 0,
        })
    }

    /// The next event for `conversation`: typed input in order (unless `peer_only`, which
    /// keeps it for later), or the end of the peer's side. Ends of earlier conversations are
    /// skipped. `TimedOut` once `deadline` passes.
    fn next(&mut self, conversation: u64, peer_only: bool, deadline: Option<Instant>) -> Next {
        if !peer_only {
            if let Some(typed) = self.held.pop_front() {
                return Next::Typed(typed);
            }
        }
        loop {
            let event = match deadline {
                None => match self.events.recv() {
                    Ok(event) => event,
                    // Cannot happen while `self.notify` lives; treat it as the end of input.
                    Err(mpsc::RecvError) => Event::Typed(Typed::End),
                },
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    match self.events.recv_timeout(left) {
                        Ok(event) => event,
                        Err(_) => return Next::TimedOut,
                    }
                }
            };
            match event {
                Event::Typed(typed) if peer_only => self.held.push_back(typed),
                Event::Typed(typed) => return Next::Typed(typed),
                Event::Peer {
                    conversation: c,
                    end,
                } if c == conversation => return Next::Peer(end),
                Event::Peer { .. } => {}
            }
        }
    }
}

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
    input: &mut Input,
    peer: &'static str,
    close_wait: Duration,
) -> Ending {
    input.conversations += 1;
    let conversation = input.conversations;
    let notify = input.notify.clone();
    let (mut sender, receiver) = session.split();
    thread::scope(|scope| {
        let receiving = thread::Builder::new()
            .name("receive".to_owned())
            .spawn_scoped(scope, move || {
                let end = receive_all(receiver, reader, frames, peer);
                // The conversation may be over already; then nobody needs to know.
                let _ = notify.send(Event::Peer { conversation, end });
            });
        let ending = match receiving {
            Ok(_) => {
                let mut sending = Sending {
                    sender: &mut sender,
                    writer: &mut writer,
                    record: vec![0; record_frame_len(MAX_MESSAGE_LEN)],
                };
                sending.run(input, conversation, peer, close_wait)
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
        input: &mut Input,
        conversation: u64,
        peer: &str,
        close_wait: Duration,
    ) -> Ending {
        loop {
            match input.next(conversation, false, None) {
                Next::Typed(Typed::Line(line)) if line.trim_ascii_end() == QUIT => {
                    return self.leave(input, conversation, close_wait, false)
                }
                Next::Typed(Typed::Line(line)) => {
                    if let Err(failure) = self.send_line(&line) {
                        return Ending::Failed(failure);
                    }
                }
                Next::Typed(Typed::TooLong) => not_sent(Error::MessageTooLong {
                    max: self.max_message_len(),
                }),
                Next::Typed(Typed::End) => {
                    return self.leave(input, conversation, close_wait, true)
                }
                Next::Typed(Typed::Failed(err)) => {
                    terminal::error(&format!("cannot read standard input: {err}"));
                    return self.leave(input, conversation, close_wait, true);
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
    fn send_line(&mut self, line: &[u8]) -> Result<(), Failure> {
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
        let iv = Iv::random().map_err(|err| Failure::other(err.to_string()))?;
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
            Err(error) => Err(error.into()),
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
        input: &mut Input,
        conversation: u64,
        close_wait: Duration,
        input_ended: bool,
    ) -> Ending {
        if let Err(error) = self.close() {
            return Ending::Failed(error.into());
        }
        let deadline = Instant::now() + close_wait;
        // Any end will do: the peer's close, a failure (it vanished after this side's close
        // was sent), or the deadline.
        let _ = input.next(conversation, true, Some(deadline));
        terminal::status("[-] Conversation closed");
        Ending::Left { input_ended }
    }
}

fn not_sent(error: Error) {
    terminal::error(&format!("not sent: {error}"));
}

/// Reads standard input line by line until its end, handing each line on.
fn read_stdin(events: &mpsc::Sender<Event>) {
    let stdin = io::stdin();
    let mut input = stdin.lock();
    loop {
        let typed = match read_line(&mut input) {
            Ok(Some(typed)) => typed,
            Ok(None) => Typed::End,
            Err(err) => Typed::Failed(err),
        };
        let last = matches!(typed, Typed::End | Typed::Failed(_));
        if events.send(Event::Typed(typed)).is_err() || last {
            return;
        }
    }
}

/// One line without its line ending (`\n` or `\r\n`); `None` at the end of input. A last line
/// without a line ending counts. A line longer than a message is read to its end but not kept.
fn read_line(input: &mut impl BufRead) -> io::Result<Option<Typed>> {
    // Sized once and never grown, so wiping it on drop leaves no copy behind.
    let mut line = SecretBytes::with_capacity(LINE_CAPACITY);
    let mut overlong = false;
    let mut anything = false;
    loop {
        let available = match input.fill_buf() {
            Ok(available) => available,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        if available.is_empty() {
            break;
        }
        anything = true;
        let newline = available.iter().position(|&byte| byte == b'\n');
        let content = available
            .get(..newline.unwrap_or(available.len()))
            .unwrap_or(available);
        let bytes = line.as_mut_vec();
        let room = LINE_CAPACITY.saturating_sub(bytes.len());
        if content.len() > room {
            overlong = true;
        }
        bytes.extend_from_slice(content.get(..room).unwrap_or(content));
        let used = content.len() + usize::from(newline.is_some());
        input.consume(used);
        if newline.is_some() {
            break;
        }
    }
    if !anything {
        return Ok(None);
    }
    let bytes = line.as_mut_vec();
    if bytes.last() == Some(&b'\r') {
        bytes.pop();
    }
    if overlong || bytes.len() > MAX_MESSAGE_LEN {
        return Ok(Some(Typed::TooLong));
    }
    Ok(Some(Typed::Line(line)))
}

#[cfg(test)]
mod tests {
    use super::{read_line, Typed, MAX_MESSAGE_LEN};

    fn lines(input: &[u8]) -> Vec<Result<Vec<u8>, &'static str>> {
        // A tiny buffer makes lines arrive in many pieces.
        let mut reader = std::io::BufReader::with_capacity(7, input);
        let mut out = Vec::new();
        while let Some(typed) = read_line(&mut reader).unwrap() {
            out.push(match typed {
                Typed::Line(line) => Ok(line.to_vec()),
                Typed::TooLong => Err("too long"),
                Typed::End | Typed::Failed(_) => unreachable!(),
            });
        }
        out
    }

    #[test]
    fn lines_lose_their_line_endings() {
        assert_eq!(
            lines(b"one\ntwo\r\n\nlast"),
            [
                Ok(b"one".to_vec()),
                Ok(b"two".to_vec()),
                Ok(vec![]),
                Ok(b"last".to_vec())
            ]
        );
        assert_eq!(lines(b""), []);
    }

    #[test]
    fn a_maximum_line_is_kept_and_a_longer_one_refused() {
        let mut input = vec![b'a'; MAX_MESSAGE_LEN];
        input.extend_from_slice(b"\r\n");
        input.extend(vec![b'b'; MAX_MESSAGE_LEN + 1]);
        input.push(b'\n');
        input.extend(vec![b'c'; 3 * MAX_MESSAGE_LEN]);
        input.extend_from_slice(b"\nafter\n");
        let read = lines(&input);
        assert_eq!(read.len(), 4);
        assert_eq!(read[0].as_ref().map(Vec::len), Ok(MAX_MESSAGE_LEN));
        assert_eq!(read[1], Err("too long"));
        assert_eq!(read[2], Err("too long"));
        assert_eq!(read[3], Ok(b"after".to_vec()));
    }
}
