//! The relay's one thread: an event loop (epoll through `mio`) that accepts connections, reads
//! hellos, keeps waiting rooms, pairs the second arrival with the first, and forwards bytes
//! both ways through fixed buffers until both sides have closed.
//!
//! State per connection: a few dozen bytes while it sends its hello or waits in a room; two
//! [`PIPE_CAPACITY`] buffers per pair once it forwards. Nothing outlives a pair: when it ends,
//! its room number is free again and nothing about it is kept.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use aeschat_core::relay::{
    could_be_message, Answer, Hello, RelayError, MAX_ROOM, RELAY_MAGIC, RELAY_MESSAGE_LEN,
    RELAY_VERSION,
};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

use super::pipe::{Moved, Pipe, PIPE_CAPACITY};
use super::sources::{Source, SourceLimits, Sources};
use super::stats::Stats;

const LISTENER: Token = Token(usize::MAX);

/// How often deadlines are checked (and a listener that hit the file limit is tried again).
const TICK: Duration = Duration::from_millis(500);

/// The relay's settings.
#[derive(Clone, Copy, Debug)]
pub(super) struct Settings {
    pub(super) sources: SourceLimits,
    /// Connections at once, in every state; more are answered [`Answer::Busy`].
    pub(super) max_connections: usize,
    /// How long a new connection has to send its hello.
    pub(super) hello_timeout: Duration,
    /// How long a room waits for its second person.
    pub(super) room_timeout: Duration,
    /// How long a pair may stay silent both ways before the relay cuts it.
    pub(super) idle_timeout: Duration,
}

enum State {
    /// Reading the hello: `got[..len]` so far.
    Hello {
        got: [u8; RELAY_MESSAGE_LEN],
        len: usize,
        deadline: Instant,
    },
    /// The opener of a room, waiting for the second person.
    Waiting { room: u32, deadline: Instant },
    /// One end of a pair.
    Paired { pair: usize },
}

struct Connection {
    stream: TcpStream,
    source: Source,
    state: State,
}

/// Two connections that forward to each other. `ends[i]` receives what `to[i]` holds, which
/// was read from the other end.
struct Pair {
    ends: [usize; 2],
    to: [Pipe; 2],
    /// The end has sent its end of stream (so nothing more goes to the other end).
    read_ended: [bool; 2],
    /// The relay has ended its direction towards this end.
    write_ended: [bool; 2],
    last_activity: Instant,
    room: u32,
    /// Whose room it is, for the per-source count.
    opener_source: Source,
}

enum Room {
    Waiting(usize),
    Paired,
}

/// A vector of optional slots with a free list, handing out stable indices.
struct Slots<T> {
    slots: Vec<Option<T>>,
    free: Vec<usize>,
}

impl<T> Slots<T> {
    fn new() -> Slots<T> {
        Slots {
            slots: Vec::new(),
            free: Vec::new(),
        }
    }

    fn insert(&mut self, value: T) -> usize {
        match self.free.pop() {
            Some(index) => {
                if let Some(slot) = self.slots.get_mut(index) {
                    *slot = Some(value);
                }
                index
            }
            None => {
                self.slots.push(Some(value));
                self.slots.len() - 1
            }
        }
    }

    fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        self.slots.get_mut(index).and_then(Option::as_mut)
    }

    fn remove(&mut self, index: usize) -> Option<T> {
        let value = self.slots.get_mut(index).and_then(Option::take);
        if value.is_some() {
            self.free.push(index);
        }
        value
    }

    fn count(&self) -> usize {
        self.slots.len() - self.free.len()
    }
}

pub(super) struct Relay {
    poll: Poll,
    listener: TcpListener,
    settings: Settings,
    connections: Slots<Connection>,
    pairs: Slots<Pair>,
    rooms: HashMap<u32, Room>,
    sources: Sources,
    pub(super) stats: Stats,
}

impl Relay {
    pub(super) fn new(listener: std::net::TcpListener, settings: Settings) -> io::Result<Relay> {
        listener.set_nonblocking(true)?;
        let mut listener = TcpListener::from_std(listener);
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        Ok(Relay {
            poll,
            listener,
            settings,
            connections: Slots::new(),
            pairs: Slots::new(),
            rooms: HashMap::new(),
            sources: Sources::new(settings.sources),
            stats: Stats::default(),
        })
    }

    /// Runs until the process ends; calls `every_tick` about twice a second.
    pub(super) fn run(&mut self, mut every_tick: impl FnMut(&mut Relay)) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            match self.poll.poll(&mut events, Some(TICK)) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            }
            for event in &events {
                match event.token() {
                    LISTENER => self.accept_all(),
                    Token(index) => self.on_ready(index),
                }
            }
            let now = Instant::now();
            self.expire(now);
            // A listener that could not accept (no file descriptors left) raises no new
            // event for the connections already queued: try again on every tick.
            self.accept_all();
            every_tick(self);
        }
    }

    /// Rooms waiting, pairs forwarding, connections open.
    pub(super) fn counts(&self) -> (usize, usize, usize) {
        let waiting = self
            .rooms
            .values()
            .filter(|room| matches!(room, Room::Waiting(_)))
            .count();
        (waiting, self.pairs.count(), self.connections.count())
    }

    fn accept_all(&mut self) {
        loop {
            let (stream, address) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) if err.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(_) => {
                    // Out of file descriptors or memory: the queued callers wait for the
                    // next tick.
                    self.stats.accept_failures += 1;
                    return;
                }
            };
            self.stats.accepted += 1;
            let source = Source::of(address);
            let now = Instant::now();
            if self.connections.count() >= self.settings.max_connections {
                self.stats.refused_busy += 1;
                refuse(stream, Answer::Busy);
                continue;
            }
            if let Err(retry_after) = self.sources.connect(source, now) {
                self.stats.refused_rate += 1;
                refuse(stream, Answer::RateLimited { retry_after });
                continue;
            }
            let _ = stream.set_nodelay(true);
            let index = self.connections.insert(Connection {
                stream,
                source,
                state: State::Hello {
                    got: [0; RELAY_MESSAGE_LEN],
                    len: 0,
                    deadline: now + self.settings.hello_timeout,
                },
            });
            let registered = match self.connections.get_mut(index) {
                Some(connection) => self.poll.registry().register(
                    &mut connection.stream,
                    Token(index),
                    Interest::READABLE | Interest::WRITABLE,
                ),
                None => Ok(()),
            };
            if registered.is_err() {
                self.connections.remove(index);
            }
        }
    }

    fn on_ready(&mut self, index: usize) {
        let Some(connection) = self.connections.get_mut(index) else {
            return;
        };
        match connection.state {
            State::Hello { .. } => self.read_hello(index),
            State::Waiting { room, .. } => self.watch_waiting(index, room),
            State::Paired { pair } => self.pump(pair),
        }
    }

    /// Reads what there is of the hello, and acts on it once it is whole.
    fn read_hello(&mut self, index: usize) {
        let Some(connection) = self.connections.get_mut(index) else {
            return;
        };
        let State::Hello { got, len, .. } = &mut connection.state else {
            return;
        };
        while let Some(rest) = got.get_mut(*len..).filter(|rest| !rest.is_empty()) {
            match io::Read::read(&mut connection.stream, rest) {
                Ok(0) => {
                    self.stats.hung_up += 1;
                    self.drop_connection(index);
                    return;
                }
                Ok(count) => *len += count,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.stats.hung_up += 1;
                    self.drop_connection(index);
                    return;
                }
            }
            let so_far = got.get(..*len).unwrap_or_default();
            // Junk is refused at its first wrong byte, a version from the future at its byte.
            if !could_be_message(so_far) {
                self.refuse_connection(index, Answer::BadHello);
                return;
            }
            if let Some(&version) = so_far.get(RELAY_MAGIC.len()) {
                if version != RELAY_VERSION {
                    self.refuse_connection(
                        index,
                        Answer::UnsupportedVersion {
                            version: u32::from(RELAY_VERSION),
                        },
                    );
                    return;
                }
            }
        }
        if *len < RELAY_MESSAGE_LEN {
            return;
        }
        let hello = Hello::parse(got);
        match hello {
            Ok(Hello::Open) => self.open_room(index),
            Ok(Hello::Join { room }) => self.join_room(index, room),
            Err(RelayError::Version(_)) => self.refuse_connection(
                index,
                Answer::UnsupportedVersion {
                    version: u32::from(RELAY_VERSION),
                },
            ),
            Ok(_) | Err(_) => self.refuse_connection(index, Answer::BadHello),
        }
    }

    fn open_room(&mut self, index: usize) {
        let now = Instant::now();
        let Some(connection) = self.connections.get_mut(index) else {
            return;
        };
        let source = connection.source;
        if self.rooms.len() >= MAX_ROOM as usize / 2 {
            self.stats.refused_busy += 1;
            self.refuse_connection(index, Answer::Busy);
            return;
        }
        if !self.sources.open_room(source, now) {
            self.stats.refused_rooms += 1;
            let retry_after = u32::try_from(self.settings.room_timeout.as_secs()).unwrap_or(60);
            self.refuse_connection(index, Answer::RateLimited { retry_after });
            return;
        }
        let room = match self.free_room_number() {
            Some(room) => room,
            None => {
                self.sources.close_room(source);
                self.refuse_connection(index, Answer::Busy);
                return;
            }
        };
        let Some(connection) = self.connections.get_mut(index) else {
            return;
        };
        if send_now(&mut connection.stream, Answer::Waiting { room }).is_err() {
            self.sources.close_room(source);
            self.drop_connection(index);
            return;
        }
        connection.state = State::Waiting {
            room,
            deadline: now + self.settings.room_timeout,
        };
        self.rooms.insert(room, Room::Waiting(index));
        self.stats.rooms_opened += 1;
    }

    /// A random free room number. The range grows with the rooms in use (3 digits while
    /// fewer than 250 rooms are open, then 4, 5, 6), so that numbers stay short but a
    /// stranger cannot simply take the next number as it is handed out.
    fn free_room_number(&self) -> Option<u32> {
        let in_use = self.rooms.len();
        let bound = [999u32, 9_999, 99_999, MAX_ROOM]
            .into_iter()
            .find(|&bound| in_use < bound as usize / 4)
            .unwrap_or(MAX_ROOM);
        for _ in 0..32 {
            let mut random = [0u8; 4];
            getrandom::fill(&mut random).ok()?;
            let room = u32::from_le_bytes(random) % bound + 1;
            if !self.rooms.contains_key(&room) {
                return Some(room);
            }
        }
        (1..=MAX_ROOM).find(|room| !self.rooms.contains_key(room))
    }

    fn join_room(&mut self, index: usize, room: u32) {
        let opener = match self.rooms.get(&room) {
            None => {
                self.stats.refused_no_room += 1;
                self.refuse_connection(index, Answer::NoSuchRoom);
                return;
            }
            Some(Room::Paired) => {
                self.stats.refused_full += 1;
                self.refuse_connection(index, Answer::RoomFull);
                return;
            }
            Some(Room::Waiting(opener)) => *opener,
        };
        let Some(opener_source) = self.connections.get_mut(opener).map(|c| c.source) else {
            return;
        };
        let pair = self.pairs.insert(Pair {
            ends: [opener, index],
            to: [
                Pipe::starting_with(&Answer::PairedAsServer { room }.to_bytes()),
                Pipe::starting_with(&Answer::PairedAsClient { room }.to_bytes()),
            ],
            read_ended: [false; 2],
            write_ended: [false; 2],
            last_activity: Instant::now(),
            room,
            opener_source,
        });
        for connection in [opener, index] {
            if let Some(connection) = self.connections.get_mut(connection) {
                connection.state = State::Paired { pair };
            }
        }
        self.rooms.insert(room, Room::Paired);
        self.stats.pairs_made += 1;
        self.pump(pair);
    }

    /// A waiting opener must say nothing until it is paired: readable means it hung up (or
    /// broke the rule).
    fn watch_waiting(&mut self, index: usize, room: u32) {
        let Some(connection) = self.connections.get_mut(index) else {
            return;
        };
        let mut byte = [0u8; 1];
        match io::Read::read(&mut connection.stream, &mut byte) {
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Ok(0) | Err(_) => {
                self.end_waiting_room(index, room, None);
            }
            Ok(_) => {
                self.end_waiting_room(index, room, Some(Answer::BadHello));
            }
        }
    }

    fn end_waiting_room(&mut self, index: usize, room: u32, answer: Option<Answer>) {
        self.rooms.remove(&room);
        if let Some(connection) = self.connections.get_mut(index) {
            let source = connection.source;
            self.sources.close_room(source);
        }
        match answer {
            Some(answer) => self.refuse_connection(index, answer),
            None => self.drop_connection(index),
        }
    }

    /// Moves bytes both ways until nothing more can move now; ends the pair when both
    /// directions have ended or either connection failed.
    fn pump(&mut self, pair_index: usize) {
        let Some(pair) = self
            .pairs
            .slots
            .get_mut(pair_index)
            .and_then(Option::as_mut)
        else {
            return;
        };
        let connections = &mut self.connections;
        let mut failed = false;
        let mut moved_any = false;
        'moving: loop {
            let mut moved = false;
            for end in 0..2 {
                let other = 1 - end;
                let (Some(receiver), Some(sender)) = (pair.ends.get(end), pair.ends.get(other))
                else {
                    break 'moving;
                };
                let (receiver, sender) = (*receiver, *sender);
                let Some(pipe) = pair.to.get_mut(end) else {
                    break 'moving;
                };
                // Out to `end` first, which makes room for more from `other`.
                if let Some(connection) = connections.get_mut(receiver) {
                    match pipe.drain(&mut connection.stream) {
                        Ok(Moved::Some) => moved = true,
                        Ok(_) => {}
                        Err(_) => {
                            failed = true;
                            break 'moving;
                        }
                    }
                }
                if !pair.read_ended[other] {
                    if let Some(connection) = connections.get_mut(sender) {
                        match pipe.fill(&mut connection.stream) {
                            Ok(Moved::Some) => moved = true,
                            Ok(Moved::Ended) => {
                                pair.read_ended[other] = true;
                                moved = true;
                            }
                            Ok(Moved::Nothing) => {}
                            Err(_) => {
                                failed = true;
                                break 'moving;
                            }
                        }
                    }
                }
                if pair.read_ended[other] && pipe.is_empty() && !pair.write_ended[end] {
                    // The sender is done and everything it sent is out: pass its end of
                    // stream on.
                    pair.write_ended[end] = true;
                    if let Some(connection) = connections.get_mut(receiver) {
                        let _ = connection.stream.shutdown(Shutdown::Write);
                    }
                }
            }
            moved_any |= moved;
            if !moved {
                break;
            }
        }
        if moved_any {
            pair.last_activity = Instant::now();
        }
        if failed || pair.write_ended == [true, true] {
            if failed {
                self.stats.pairs_failed += 1;
            }
            self.end_pair(pair_index);
        }
    }

    fn end_pair(&mut self, pair_index: usize) {
        let Some(pair) = self.pairs.remove(pair_index) else {
            return;
        };
        self.rooms.remove(&pair.room);
        self.sources.close_room(pair.opener_source);
        for index in pair.ends {
            self.drop_connection(index);
        }
        self.stats.pairs_ended += 1;
    }

    /// Sends `answer` if the socket takes it at once (it always has room for 14 bytes on a
    /// connection that has received nothing else), then closes.
    fn refuse_connection(&mut self, index: usize, answer: Answer) {
        if let Some(connection) = self.connections.get_mut(index) {
            if matches!(answer, Answer::BadHello | Answer::UnsupportedVersion { .. }) {
                self.stats.refused_bad_hello += 1;
            }
            let _ = send_now(&mut connection.stream, answer);
        }
        self.drop_connection(index);
    }

    fn drop_connection(&mut self, index: usize) {
        if let Some(mut connection) = self.connections.remove(index) {
            let _ = self.poll.registry().deregister(&mut connection.stream);
        }
    }

    /// Ends what has waited too long: hellos, rooms, silent pairs.
    fn expire(&mut self, now: Instant) {
        let mut late_hellos = Vec::new();
        let mut expired_rooms = Vec::new();
        for (index, slot) in self.connections.slots.iter().enumerate() {
            match slot.as_ref().map(|connection| &connection.state) {
                Some(State::Hello { deadline, .. }) if *deadline <= now => late_hellos.push(index),
                Some(State::Waiting { room, deadline }) if *deadline <= now => {
                    expired_rooms.push((index, *room));
                }
                _ => {}
            }
        }
        for index in late_hellos {
            self.stats.hello_timeouts += 1;
            self.drop_connection(index);
        }
        for (index, room) in expired_rooms {
            self.stats.rooms_expired += 1;
            self.end_waiting_room(index, room, Some(Answer::Expired));
        }
        let idle_timeout = self.settings.idle_timeout;
        let silent: Vec<usize> = self
            .pairs
            .slots
            .iter()
            .enumerate()
            .filter(|(_, pair)| {
                pair.as_ref().is_some_and(|pair| {
                    now.saturating_duration_since(pair.last_activity) >= idle_timeout
                })
            })
            .map(|(index, _)| index)
            .collect();
        for index in silent {
            self.stats.pairs_idle += 1;
            self.end_pair(index);
        }
        self.sources.forget_idle(now);
    }

    /// Bytes of buffers the relay holds for its pairs.
    pub(super) fn buffered_capacity(&self) -> usize {
        self.pairs.count() * 2 * PIPE_CAPACITY
    }
}

/// Writes one answer on a socket that has room for it, in one call.
fn send_now(stream: &mut TcpStream, answer: Answer) -> io::Result<()> {
    let bytes = answer.to_bytes();
    match stream.write(&bytes) {
        Ok(count) if count == bytes.len() => Ok(()),
        Ok(_) => Err(io::ErrorKind::WriteZero.into()),
        Err(err) => Err(err),
    }
}

/// Answers a connection that was never registered, then closes it.
fn refuse(mut stream: TcpStream, answer: Answer) {
    let _ = send_now(&mut stream, answer);
}
