//! Everything the main thread waits for, in one queue: lines typed on standard input, new
//! connections from the server's accept thread, and the end of the peer's side of the current
//! conversation from its receiving thread. One queue, because the standard library has no way
//! to wait on several.
//!
//! Standard input is read by a thread of its own for the life of the process, because a
//! blocking read cannot be abandoned when a conversation ends. On a terminal that thread runs
//! the line editor (see `editor`); elsewhere it reads lines as they come. What is typed waits
//! in the queue for the current or next conversation, so it is sent in order. Lines from a
//! pipe that arrive between conversations go to the next peer, as they would if nobody had
//! read them yet (a script prepares its input ahead); a person at a terminal is told instead
//! that nobody is there to read them.
//!
//! Nothing here allocates per line (the line editor does, for a person's typing pace). Standard
//! input is read straight into a few buffers, made once, that cycle between the reading thread
//! and the conversation (the editor copies each line into one of them): each read that ends one
//! or more lines hands those lines over together (see [`Lines`]), and the start of a line
//! not yet ended moves on to the next buffer. A person typing gets one line per read; a pipe
//! delivers hundreds, which then cost one hand-over instead of one each. When every buffer is
//! taken, reading waits, so typed input that nobody sends yet holds at most
//! [`INPUT_BUFFERS`] buffers in memory.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use aeschat_core::session::{SessionError, MAX_MESSAGE_LEN};
use zeroize::Zeroize;

use super::editor::LineEditor;
use super::queue::Queue;
use super::server::Arrival;
use super::{interrupt, Failure};

/// The size of each input buffer: room for the longest message with its line ending, twice,
/// so that a line that starts late in one read still fits once moved to the next buffer. A
/// line that fills a whole buffer without ending is far too long to send, and is dropped as
/// it is read. Only the pages that reads reach are ever touched.
const INPUT_BUFFER: usize = 2 * (MAX_MESSAGE_LEN + 2);

/// How many input buffers cycle: one being read into, the others waiting to be sent.
const INPUT_BUFFERS: usize = 4;

/// Room in the queue for typed input: every buffer of lines, and as many other typed events
/// (an overlong line, the end of input) besides. Typed input waits when this is reached.
const TYPED_CAPACITY: usize = 4 * INPUT_BUFFERS;

/// Room reserved for the events that must never wait (a connection, the end of a peer's side),
/// so that they are queued without allocating.
const OTHER_CAPACITY: usize = 8;

/// One thing read from standard input.
pub(super) enum Typed {
    /// One or more whole lines.
    Lines(Lines),
    /// A line too long to hold; none of it was kept.
    TooLong,
    End,
    /// Ctrl-C: leave, as at the end of input.
    Interrupted,
    Failed(io::Error),
}

impl Typed {
    fn is_last(&self) -> bool {
        matches!(self, Typed::End | Typed::Interrupted | Typed::Failed(_))
    }
}

/// Whole lines, as one read of standard input delivered them, in a buffer that goes back to
/// the reading thread (wiped) when dropped. Each line ends in `\n`, except a last line at the
/// end of input.
pub(super) struct Lines {
    buffer: Box<[u8]>,
    /// `buffer[..len]` holds the lines, `buffer[next..len]` those not yet taken.
    len: usize,
    next: usize,
    free: Arc<Queue<Box<[u8]>>>,
}

impl Lines {
    /// The next line, without its line ending (`\n` or `\r\n`). It may be longer than a
    /// message.
    pub(super) fn next_line(&mut self) -> Option<&[u8]> {
        let rest = self
            .buffer
            .get(self.next..self.len)
            .filter(|rest| !rest.is_empty())?;
        let (line, taken) = match find_newline(rest) {
            Some(end) => (rest.get(..end).unwrap_or_default(), end + 1),
            None => (rest, rest.len()),
        };
        self.next += taken;
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    }

    /// True when every line has been taken.
    pub(super) fn is_empty(&self) -> bool {
        self.next >= self.len
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        // Typed text may be secret.
        self.buffer
            .get_mut(..self.len)
            .unwrap_or_default()
            .zeroize();
        let buffer = std::mem::take(&mut self.buffer);
        // The free list has room for every buffer; it refuses only once nobody reads any more,
        // and then the buffer is simply freed.
        let _ = self.free.push(buffer);
    }
}

/// Where the first `\n` in `bytes` is. Looks at 16 bytes at a time (which the compiler turns
/// into one vector comparison), then within the 16 that hold it.
pub(super) fn find_newline(bytes: &[u8]) -> Option<usize> {
    let mut offset = 0;
    for chunk in bytes.chunks_exact(16) {
        if chunk
            .iter()
            .fold(false, |found, &byte| found | (byte == b'\n'))
        {
            break;
        }
        offset += 16;
    }
    let at = bytes
        .get(offset..)?
        .iter()
        .position(|&byte| byte == b'\n')?;
    Some(offset + at)
}

/// How the peer's side of a conversation ended, as the receiving thread saw it.
pub(super) enum PeerEnd {
    /// The peer's authenticated close: nothing is missing.
    Closed,
    Failed(SessionError<io::Error>),
}

enum Event {
    Typed(Typed),
    Connection(Arrival),
    Peer { conversation: u64, end: PeerEnd },
}

/// What a conversation waits for next.
pub(super) enum Next {
    Typed(Typed),
    Peer(PeerEnd),
    TimedOut,
}

/// How long to wait for an event.
#[derive(Clone, Copy)]
enum Wait {
    Forever,
    Until(Instant),
    /// Only what is there already.
    No,
}

/// The queue of everything the main thread waits for.
pub(super) struct Events {
    queue: Arc<Queue<Event>>,
    /// Input buffers not in use, for the reading thread.
    free: Arc<Queue<Box<[u8]>>>,
    /// Typed input taken off the queue while something else was awaited, kept in order.
    held: VecDeque<Typed>,
    conversations: u64,
    /// Set once anything at all has been read from standard input.
    input_seen: Arc<AtomicBool>,
}

/// Where the thread that reads standard input puts what it reads.
pub(super) struct TypedSink {
    queue: Arc<Queue<Event>>,
    free: Arc<Queue<Box<[u8]>>>,
    input_seen: Arc<AtomicBool>,
}

impl TypedSink {
    /// Queues one line (of at most [`MAX_MESSAGE_LEN`] bytes, else it is refused as too long).
    /// Waits while every input buffer holds lines not sent yet. False once nobody listens.
    pub(super) fn line(&self, line: &[u8]) -> bool {
        self.input_seen.store(true, Ordering::SeqCst);
        if line.len() > MAX_MESSAGE_LEN {
            return self.send(Typed::TooLong);
        }
        let Some(mut buffer) = self.free.pop(None) else {
            return false;
        };
        let len = line.len() + 1;
        if let Some(room) = buffer.get_mut(..len) {
            if let Some((end, text)) = room.split_last_mut() {
                text.copy_from_slice(line);
                *end = b'\n';
            }
        }
        self.send(Typed::Lines(Lines {
            buffer,
            len,
            next: 0,
            free: Arc::clone(&self.free),
        }))
    }

    /// Records that input is there to be typed, even if nothing is yet: a person at a
    /// terminal.
    pub(super) fn input_is_open(&self) {
        self.input_seen.store(true, Ordering::SeqCst);
    }

    /// Queues anything else typed. False once nobody listens.
    pub(super) fn send(&self, typed: Typed) -> bool {
        self.queue.push(Event::Typed(typed)).is_ok()
    }
}

/// Hands new connections to the main thread.
pub(super) struct Handover(Arc<Queue<Event>>);

impl Handover {
    /// False once nobody waits for connections any more.
    pub(super) fn hand_over(&self, arrival: Arrival) -> bool {
        self.0.push_urgent(Event::Connection(arrival)).is_ok()
    }
}

/// Reports the end of one conversation's receiving side.
pub(super) struct PeerNotice {
    conversation: u64,
    queue: Arc<Queue<Event>>,
}

impl PeerNotice {
    pub(super) fn ended(self, end: PeerEnd) {
        // Never waits (the conversation may be over, with nobody taking events); if nobody
        // listens at all any more, nobody needs to know.
        let _ = self.queue.push_urgent(Event::Peer {
            conversation: self.conversation,
            end,
        });
    }
}

impl Events {
    /// Makes the input buffers and starts the thread that reads standard input: the line
    /// editor, with a prompt that names the `peer`, when standard input and output are a
    /// terminal; else plain lines.
    pub(super) fn start(peer: &'static str) -> Result<Events, Failure> {
        let queue = Arc::new(Queue::new(TYPED_CAPACITY, OTHER_CAPACITY));
        let free = Arc::new(Queue::new(INPUT_BUFFERS, 0));
        for _ in 0..INPUT_BUFFERS {
            // Cannot fail: the free list has room for every buffer and is open.
            let _ = free.push(vec![0; INPUT_BUFFER].into_boxed_slice());
        }
        let input_seen = Arc::new(AtomicBool::new(false));
        let sink = TypedSink {
            queue: Arc::clone(&queue),
            free: Arc::clone(&free),
            input_seen: Arc::clone(&input_seen),
        };
        // Ctrl-C pressed during a conversation (outside the editor, which reads it as a key)
        // leaves it like the end of input.
        let interrupts = Arc::clone(&queue);
        interrupt::on_interrupt(Box::new(move || {
            interrupts.push(Event::Typed(Typed::Interrupted)).is_ok()
        }));
        let started = match LineEditor::new(peer) {
            Some(editor) => thread::Builder::new()
                .name("editor".to_owned())
                .spawn(move || editor.run(&sink)),
            None => thread::Builder::new()
                .name("stdin".to_owned())
                .spawn(move || StdinReader { sink }.run()),
        };
        started.map_err(|err| Failure::other(format!("cannot start a thread: {err}")))?;
        Ok(Events {
            queue,
            free,
            held: VecDeque::with_capacity(TYPED_CAPACITY + OTHER_CAPACITY),
            conversations: 0,
            input_seen,
        })
    }

    /// True when standard input ended before anything was read from it or any conversation
    /// began: it was closed from the start (as under `nohup`, or in a container without `-i`).
    pub(super) fn input_was_closed_from_the_start(&self) -> bool {
        self.conversations == 0 && !self.input_seen.load(Ordering::SeqCst)
    }

    /// What the server's accept thread hands connections over with.
    pub(super) fn handover(&self) -> Handover {
        Handover(Arc::clone(&self.queue))
    }

    /// Numbers a new conversation, and gives its receiving thread the way to report its end.
    pub(super) fn begin_conversation(&mut self) -> (u64, PeerNotice) {
        self.conversations += 1;
        let notice = PeerNotice {
            conversation: self.conversations,
            queue: Arc::clone(&self.queue),
        };
        (self.conversations, notice)
    }

    /// Waits for the next connection, keeping what is typed meanwhile for that conversation.
    /// `None` when input has ended with nothing left to send: nobody can talk to a next
    /// client, so there is no reason to wait for one.
    pub(super) fn next_connection(&mut self) -> Option<Arrival> {
        loop {
            if matches!(self.held.front(), Some(typed) if typed.is_last()) {
                return None;
            }
            match self.receive(Wait::Forever)? {
                Event::Connection(arrival) => return Some(arrival),
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
        let wait = deadline.map_or(Wait::Forever, Wait::Until);
        self.take(conversation, peer_only, wait)
            .unwrap_or(Next::TimedOut)
    }

    /// Puts typed input back in front of everything, for the next conversation: the lines
    /// after a `/quit`.
    pub(super) fn hold_first(&mut self, typed: Typed) {
        self.held.push_front(typed);
    }

    /// Like [`Events::next`] for typed input and the peer's end, but only what has arrived
    /// already: `None` when nothing has.
    pub(super) fn next_now(&mut self, conversation: u64) -> Option<Next> {
        self.take(conversation, false, Wait::No)
    }

    fn take(&mut self, conversation: u64, peer_only: bool, wait: Wait) -> Option<Next> {
        if !peer_only {
            if let Some(typed) = self.held.pop_front() {
                return Some(Next::Typed(typed));
            }
        }
        loop {
            match self.receive(wait)? {
                Event::Typed(typed) if peer_only => self.held.push_back(typed),
                Event::Typed(typed) => return Some(Next::Typed(typed)),
                Event::Peer {
                    conversation: c,
                    end,
                } if c == conversation => return Some(Next::Peer(end)),
                Event::Peer { .. } => {}
                // The accept thread hands over nothing during a conversation; should a
                // connection come anyway, dropping it closes it.
                Event::Connection(..) => {}
            }
        }
    }

    /// The next event; `None` once the wait is over.
    fn receive(&mut self, wait: Wait) -> Option<Event> {
        match wait {
            // The queue is closed only when `Events` is dropped, so this cannot fail; if it
            // did, that would mean nothing more can ever be typed.
            Wait::Forever => Some(self.queue.pop(None).unwrap_or(Event::Typed(Typed::End))),
            Wait::Until(deadline) => self.queue.pop(Some(deadline)),
            Wait::No => self.queue.try_pop(),
        }
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        // Tells the reading thread and the accept thread that nobody listens any more.
        self.queue.close();
        self.free.close();
    }
}

/// The thread that reads standard input when it is not a terminal.
struct StdinReader {
    sink: TypedSink,
}

impl StdinReader {
    /// Reads standard input until its end, handing on whole lines as they come.
    fn run(self) {
        let TypedSink {
            queue,
            free,
            input_seen,
        } = &self.sink;
        let stdin = io::stdin();
        let mut input = stdin.lock();
        let Some(buffer) = free.pop(None) else {
            return;
        };
        let mut lines = LineReader::new(buffer);
        loop {
            let read = match lines.read(&mut input) {
                Ok(read) => read,
                Err(err) => {
                    let _ = queue.push(Event::Typed(Typed::Failed(err)));
                    return;
                }
            };
            if !read.end || read.too_long || lines.len > 0 {
                input_seen.store(true, Ordering::SeqCst);
            }
            if read.too_long && queue.push(Event::Typed(Typed::TooLong)).is_err() {
                return;
            }
            if read.lines > 0 || (read.end && lines.len > 0) {
                // The start of a line not yet ended goes on in a fresh buffer. Waits while
                // every other buffer holds lines nobody has sent yet.
                let Some(fresh) = free.pop(None) else {
                    return;
                };
                let (buffer, len) = lines.hand_over(read.lines, fresh);
                let whole = Lines {
                    buffer,
                    len,
                    next: 0,
                    free: Arc::clone(free),
                };
                if queue.push(Event::Typed(Typed::Lines(whole))).is_err() {
                    return;
                }
            }
            if read.end {
                let _ = queue.push(Event::Typed(Typed::End));
                return;
            }
        }
    }
}

/// Reads input into one buffer at a time and finds where its lines end.
struct LineReader {
    buffer: Box<[u8]>,
    /// Bytes read into `buffer`: whole lines, then the start of one not yet ended.
    len: usize,
    /// Inside a line too long to hold, until its end.
    dropping: bool,
}

/// What one read brought.
#[derive(Debug, Default, PartialEq, Eq)]
struct ReadLines {
    /// The buffer now starts with whole lines, this many bytes of them.
    lines: usize,
    /// A line too long to hold ended (or input ended inside one).
    too_long: bool,
    /// Input ended: whatever is in the buffer is the last line, without its line ending.
    end: bool,
}

impl LineReader {
    fn new(buffer: Box<[u8]>) -> LineReader {
        LineReader {
            buffer,
            len: 0,
            dropping: false,
        }
    }

    /// One read. Blocks until there is input, or its end.
    fn read(&mut self, input: &mut impl Read) -> io::Result<ReadLines> {
        let start = self.len;
        let space = self.buffer.get_mut(start..).unwrap_or_default();
        let count = loop {
            match input.read(space) {
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                result => break result?,
            }
        };
        let mut read = ReadLines::default();
        if count == 0 {
            read.end = true;
            read.too_long = self.dropping;
            if self.dropping {
                self.len = 0;
            }
            return Ok(read);
        }
        self.len += count;
        if self.dropping {
            let new = self.buffer.get(start..self.len).unwrap_or_default();
            match find_newline(new) {
                None => {
                    self.wipe(0..self.len);
                    self.len = 0;
                    return Ok(read);
                }
                Some(at) => {
                    // What follows the overlong line's end is the start of the next.
                    let after = start + at + 1;
                    self.buffer.copy_within(after..self.len, 0);
                    self.wipe(self.len - after..self.len);
                    self.len -= after;
                    self.dropping = false;
                    read.too_long = true;
                    // Every byte left is new: look for line endings in all of it.
                    return Ok(ReadLines {
                        lines: self.whole_lines(0),
                        ..read
                    });
                }
            }
        }
        // Bytes before `start` are the start of a line: no line ends there.
        read.lines = self.whole_lines(start);
        if read.lines == 0 && self.len == self.buffer.len() {
            // A whole buffer of one line: far longer than a message can be.
            self.wipe(0..self.len);
            self.len = 0;
            self.dropping = true;
        }
        Ok(read)
    }

    /// The length of the whole lines in the buffer: up to the last line ending, looking only
    /// from `from` on.
    fn whole_lines(&self, from: usize) -> usize {
        self.buffer
            .get(from..self.len)
            .and_then(|new| new.iter().rposition(|&byte| byte == b'\n'))
            .map_or(0, |at| from + at + 1)
    }

    /// Gives away the buffer holding `lines` bytes of whole lines (or, with `lines` 0 at the
    /// end of input, everything read as one last line), keeping what follows them in `fresh`.
    fn hand_over(&mut self, lines: usize, mut fresh: Box<[u8]>) -> (Box<[u8]>, usize) {
        let lines = if lines == 0 { self.len } else { lines };
        let rest = self.len - lines;
        if let (Some(to), Some(from)) = (fresh.get_mut(..rest), self.buffer.get(lines..self.len)) {
            to.copy_from_slice(from);
        }
        self.wipe(lines..self.len);
        self.len = rest;
        (std::mem::replace(&mut self.buffer, fresh), lines)
    }

    fn wipe(&mut self, range: std::ops::Range<usize>) {
        self.buffer.get_mut(range).unwrap_or_default().zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::{find_newline, LineReader, Lines, Queue, INPUT_BUFFER, MAX_MESSAGE_LEN};
    use std::sync::Arc;

    /// Reads `input` in pieces of at most `piece` bytes, as the reading thread does, and
    /// returns the lines (or "too long") in order.
    fn lines(input: &[u8], piece: usize) -> Vec<Result<Vec<u8>, &'static str>> {
        // Two buffers cycle, as in the reading thread: the one read into, and the one handed
        // over, which comes back when its lines are dropped.
        let free = Arc::new(Queue::new(1, 0));
        free.push(vec![0; INPUT_BUFFER].into_boxed_slice()).unwrap();
        let mut reader = LineReader::new(vec![0; INPUT_BUFFER].into_boxed_slice());
        let mut source = Pieces { input, piece };
        let mut out = Vec::new();
        loop {
            let read = reader.read(&mut source).unwrap();
            if read.too_long {
                out.push(Err("too long"));
            }
            if read.lines > 0 || (read.end && reader.len > 0) {
                let fresh = free.try_pop().expect("the other buffer came back");
                let (buffer, len) = reader.hand_over(read.lines, fresh);
                let mut whole = Lines {
                    buffer,
                    len,
                    next: 0,
                    free: Arc::clone(&free),
                };
                while let Some(line) = whole.next_line() {
                    out.push(if line.len() > MAX_MESSAGE_LEN {
                        Err("too long")
                    } else {
                        Ok(line.to_vec())
                    });
                }
                assert!(whole.is_empty());
            }
            if read.end {
                return out;
            }
        }
    }

    struct Pieces<'a> {
        input: &'a [u8],
        piece: usize,
    }

    impl std::io::Read for Pieces<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let count = buf.len().min(self.piece).min(self.input.len());
            let (now, later) = self.input.split_at(count);
            buf[..count].copy_from_slice(now);
            self.input = later;
            Ok(count)
        }
    }

    #[test]
    fn lines_lose_their_line_endings() {
        for piece in [1, 3, 7, 1 << 20] {
            assert_eq!(
                lines(b"one\ntwo\r\n\nlast", piece),
                [
                    Ok(b"one".to_vec()),
                    Ok(b"two".to_vec()),
                    Ok(vec![]),
                    Ok(b"last".to_vec())
                ],
                "pieces of {piece}"
            );
            assert_eq!(lines(b"", piece), []);
            assert_eq!(lines(b"a\n", piece), [Ok(b"a".to_vec())]);
        }
    }

    #[test]
    fn a_maximum_line_is_kept_and_a_longer_one_refused() {
        let mut input = vec![b'a'; MAX_MESSAGE_LEN];
        input.extend_from_slice(b"\r\n");
        input.extend(vec![b'b'; MAX_MESSAGE_LEN + 1]);
        input.push(b'\n');
        input.extend(vec![b'c'; 3 * MAX_MESSAGE_LEN]);
        input.extend_from_slice(b"\nafter\n");
        input.extend(vec![b'd'; 3 * MAX_MESSAGE_LEN]);
        for piece in [4096, 65536, 1 << 20] {
            let read = lines(&input, piece);
            assert_eq!(read.len(), 5, "pieces of {piece}");
            assert_eq!(read[0].as_ref().map(Vec::len), Ok(MAX_MESSAGE_LEN));
            assert_eq!(read[1], Err("too long"));
            assert_eq!(read[2], Err("too long"));
            assert_eq!(read[3], Ok(b"after".to_vec()));
            // Input that ends inside an overlong line.
            assert_eq!(read[4], Err("too long"));
        }
    }

    #[test]
    fn newlines_are_found_at_every_position() {
        for len in 0..40 {
            let mut bytes = vec![b'x'; len];
            assert_eq!(find_newline(&bytes), None);
            for at in 0..len {
                bytes[at] = b'\n';
                assert_eq!(find_newline(&bytes), Some(at));
                bytes[at] = b'x';
            }
        }
    }
}
