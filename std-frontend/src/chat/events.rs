//! Everything the main thread waits for, in one queue: lines typed on standard input, new
//! connections from the server's accept thread, and the end of the peer's side of the current
//! conversation from its receiving thread. One queue, because the standard library has no way
//! to wait on several.
//!
//! Standard input is read by a thread of its own for the life of the process, because a
//! blocking read cannot be abandoned when a conversation ends. What is typed waits in the queue
//! for the current or next conversation, so it is sent in order, and lines typed between
//! conversations go to the next peer, as they would if nobody had read them yet.

use std::collections::VecDeque;
use std::io::{self, BufRead};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use aeschat_core::{SessionError, MAX_MESSAGE_LEN};

use super::secret::SecretBytes;
use super::Failure;

/// The most of one line that is kept: one more byte than a message may hold, after a possible
/// `\r`, so that an overlong line is recognised without keeping all of it.
const LINE_CAPACITY: usize = MAX_MESSAGE_LEN + 2;

/// One thing read from standard input.
pub(super) enum Typed {
    Line(SecretBytes),
    /// A line longer than any message; only its first bytes were kept.
    TooLong,
    End,
    Failed(io::Error),
}

impl Typed {
    fn is_last(&self) -> bool {
        matches!(self, Typed::End | Typed::Failed(_))
    }
}

/// How the peer's side of a conversation ended, as the receiving thread saw it.
pub(super) enum PeerEnd {
    /// The peer's authenticated close: nothing is missing.
    Closed,
    Failed(SessionError<io::Error>),
}

enum Event {
    Typed(Typed),
    Connection(TcpStream, SocketAddr),
    Peer { conversation: u64, end: PeerEnd },
}

/// What a conversation waits for next.
pub(super) enum Next {
    Typed(Typed),
    Peer(PeerEnd),
    TimedOut,
}

/// The queue of everything the main thread waits for.
pub(super) struct Events {
    queue: mpsc::Receiver<Event>,
    sender: mpsc::Sender<Event>,
    /// Typed input taken off the queue while something else was awaited, kept in order.
    held: VecDeque<Typed>,
    conversations: u64,
}

/// Hands new connections to the main thread.
pub(super) struct Handover(mpsc::Sender<Event>);

impl Handover {
    /// False once nobody waits for connections any more.
    pub(super) fn hand_over(&self, stream: TcpStream, peer: SocketAddr) -> bool {
        self.0.send(Event::Connection(stream, peer)).is_ok()
    }
}

/// Reports the end of one conversation's receiving side.
pub(super) struct PeerNotice {
    conversation: u64,
    sender: mpsc::Sender<Event>,
}

impl PeerNotice {
    pub(super) fn ended(self, end: PeerEnd) {
        // The conversation may be over already; then nobody needs to know.
        let _ = self.sender.send(Event::Peer {
            conversation: self.conversation,
            end,
        });
    }
}

impl Events {
    /// Starts the thread that reads standard input.
    pub(super) fn start() -> Result<Events, Failure> {
        let (sender, queue) = mpsc::channel();
        let lines = sender.clone();
        thread::Builder::new()
            .name("stdin".to_owned())
            .spawn(move || read_stdin(&lines))
            .map_err(|err| Failure::other(format!("cannot start a thread: {err}")))?;
        Ok(Events {
            queue,
            sender,
            held: VecDeque::new(),
            conversations: 0,
        })
    }

    /// What the server's accept thread hands connections over with.
    pub(super) fn handover(&self) -> Handover {
        Handover(self.sender.clone())
    }

    /// Numbers a new conversation, and gives its receiving thread the way to report its end.
    pub(super) fn begin_conversation(&mut self) -> (u64, PeerNotice) {
        self.conversations += 1;
        let notice = PeerNotice {
            conversation: self.conversations,
            sender: self.sender.clone(),
        };
        (self.conversations, notice)
    }

    /// Waits for the next connection, keeping what is typed meanwhile for that conversation.
    /// `None` when input has ended with nothing left to send: nobody can talk to a next
    /// client, so there is no reason to wait for one.
    pub(super) fn next_connection(&mut self) -> Option<(TcpStream, SocketAddr)> {
        loop {
            if matches!(self.held.front(), Some(typed) if typed.is_last()) {
                return None;
            }
            match self.receive(None)? {
                Event::Connection(stream, peer) => return Some((stream, peer)),
                Event::Typed(typed) => self.held.push_back(typed),
                // From a conversation that is over.
                Event::Peer { .. } => {}
            }
        }
    }

    /// The next event for `conversation`: typed input in order (unless `peer_only`, which
    /// keeps it for later), or the end of the peer's side. Ends of earlier conversations are
    /// skipped. `TimedOut` once `deadline` passes.
    pub(super) fn next(
        &mut self,
        conversation: u64,
        peer_only: bool,
        deadline: Option<Instant>,
    ) -> Next {
        if !peer_only {
            if let Some(typed) = self.held.pop_front() {
                return Next::Typed(typed);
            }
        }
        loop {
            match self.receive(deadline) {
                None => return Next::TimedOut,
                Some(Event::Typed(typed)) if peer_only => self.held.push_back(typed),
                Some(Event::Typed(typed)) => return Next::Typed(typed),
                Some(Event::Peer {
                    conversation: c,
                    end,
                }) if c == conversation => return Next::Peer(end),
                Some(Event::Peer { .. }) => {}
                // The accept thread hands over nothing during a conversation; should a
                // connection come anyway, dropping it closes it.
                Some(Event::Connection(..)) => {}
            }
        }
    }

    /// The next event; `None` once `deadline` passes.
    fn receive(&mut self, deadline: Option<Instant>) -> Option<Event> {
        match deadline {
            // `self.sender` keeps the queue open, so `recv` cannot fail; if it did, that
            // would mean nothing more can ever be typed.
            None => Some(self.queue.recv().unwrap_or(Event::Typed(Typed::End))),
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                self.queue.recv_timeout(left).ok()
            }
        }
    }
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
        let last = typed.is_last();
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
