//! A man in the middle on loopback: a frame-aware TCP proxy between a real `aeschat client` and
//! a real `aeschat server` that forwards every frame (`kind u8 ‖ len u32 BE ‖ body`) unchanged
//! except one, the target, which it drops, duplicates, holds back, delays, cuts off, alters,
//! precedes with injected bytes or replaces. It records every frame it reads, so a test can
//! check what it attacked and replay a whole session's frames into a later one.
//!
//! Use it from a test file with `mod mitm_support;`. Every wait has a deadline, and dropping a
//! [`Proxy`] shuts its sockets, which ends its threads.

use std::fmt;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use aeschat_core::session::FRAME_HEADER_LEN;

/// How long the proxy waits for anything: a connection, a frame, the end of a session.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Far beyond any aeschat frame (87,485 bytes at most): a header announcing more means the
/// stream is not aeschat, and the proxy forwards the header and ends that direction.
const MAX_BODY: usize = 1 << 20;

/// Which way bytes travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    ClientToServer,
    ServerToClient,
}

impl Direction {
    pub const BOTH: [Direction; 2] = [Direction::ClientToServer, Direction::ServerToClient];

    fn index(self) -> usize {
        match self {
            Direction::ClientToServer => 0,
            Direction::ServerToClient => 1,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::ClientToServer => "client→server",
            Direction::ServerToClient => "server→client",
        })
    }
}

/// What the proxy does to the target frame.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Not forwarded.
    Drop,
    /// Forwarded twice in a row.
    Duplicate,
    /// Held back and forwarded right after the next frame of its direction (or at the end of
    /// the stream, if no next frame comes).
    HoldUntilNext,
    /// Forwarded after this pause; the frames behind it wait too, so the order is kept.
    Delay(Duration),
    /// The header and the first half of the body are forwarded; then this direction ends
    /// (TCP FIN), and whatever the sender writes later is read and discarded.
    Truncate,
    /// Forwarded as this function changes it (the function gets the whole frame).
    Alter(fn(&mut [u8])),
    /// Forwarded as this function changes it, given the whole frame and every frame the proxy
    /// has read so far, per direction (client to server first): for an attack built from
    /// this session's own frames, such as a share reflected back to its sender.
    AlterSeen(fn(&mut [u8], &[Vec<Vec<u8>>; 2])),
    /// Forwarded with `bytes` written over it from offset `at` (a field replaced in place).
    Overwrite { at: usize, bytes: Vec<u8> },
    /// These bytes are forwarded first, then the frame.
    InjectBefore(Vec<u8>),
    /// These bytes are forwarded instead of the frame.
    Replace(Vec<u8>),
}

/// One fault on one frame: the frame numbered `frame` (from 0) in `direction`.
#[derive(Clone, Debug)]
pub struct Attack {
    pub direction: Direction,
    pub frame: usize,
    pub fault: Fault,
}

/// What the proxy has seen so far.
#[derive(Default)]
struct State {
    /// Every complete frame read, per direction, as it arrived (before any fault).
    frames: [Vec<Vec<u8>>; 2],
    /// Whether the direction's reader has finished (end of stream, failure or truncation).
    ended: [bool; 2],
    /// When the fault was applied (the target frame was read).
    applied: Option<Instant>,
    /// A frame held back by `HoldUntilNext` was forwarded after its successor.
    released_late: bool,
    /// Whatever went wrong inside the proxy itself (not the peers' doing).
    trouble: Vec<String>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn update(&self, change: impl FnOnce(&mut State)) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        change(&mut state);
        self.changed.notify_all();
    }

    fn read<T>(&self, look: impl FnOnce(&State) -> T) -> T {
        look(&self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Waits until `done` holds, or [`PATIENCE`] passes; returns whether it holds.
    fn wait(&self, mut done: impl FnMut(&State) -> bool) -> bool {
        let deadline = Instant::now() + PATIENCE;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if done(&state) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// A proxy for one connection, listening on `127.0.0.1` at a free port.
pub struct Proxy {
    address: SocketAddr,
    shared: Arc<Shared>,
    /// Clones of both connections, so that dropping the proxy can end its threads.
    sockets: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Starts a proxy that forwards the first connection it accepts to `server`, applying
    /// `attack` if there is one.
    pub fn start(server: &str, attack: Option<Attack>) -> Proxy {
        let server: SocketAddr = server.parse().expect("the server address is IP:PORT");
        let listener = TcpListener::bind("127.0.0.1:0").expect("cannot listen for the proxy");
        let address = listener.local_addr().expect("the proxy has an address");
        listener
            .set_nonblocking(true)
            .expect("cannot make the proxy's listener non-blocking");
        let shared = Arc::new(Shared::default());
        let sockets = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let shared = Arc::clone(&shared);
            let sockets = Arc::clone(&sockets);
            let stop = Arc::clone(&stop);
            thread::spawn(move || serve(&listener, server, attack, &shared, &sockets, &stop))
        };
        Proxy {
            address,
            shared,
            sockets,
            stop,
            thread: Some(thread),
        }
    }

    /// Where the client connects: `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// Waits until the proxy has read `count` complete frames in `direction`; false if that
    /// does not happen within [`PATIENCE`] or the direction ends first.
    pub fn wait_frames(&self, direction: Direction, count: usize) -> bool {
        let d = direction.index();
        self.shared
            .wait(|state| state.frames[d].len() >= count || state.ended[d])
            && self.shared.read(|state| state.frames[d].len() >= count)
    }

    /// Waits until both directions have ended (both peers have closed their side); false if
    /// that takes longer than [`PATIENCE`].
    pub fn wait_finished(&self) -> bool {
        self.shared
            .wait(|state| state.ended.iter().all(|&ended| ended))
    }

    /// Every complete frame read so far in `direction`, as the sender wrote it.
    pub fn frames(&self, direction: Direction) -> Vec<Vec<u8>> {
        self.shared
            .read(|state| state.frames[direction.index()].clone())
    }

    /// Whether the target frame was reached and the fault applied.
    pub fn applied(&self) -> bool {
        self.shared.read(|state| state.applied.is_some())
    }

    /// Whether a held-back frame was forwarded after the frame that followed it.
    pub fn released_late(&self) -> bool {
        self.shared.read(|state| state.released_late)
    }

    /// Problems of the proxy itself, such as failing to reach the server.
    pub fn trouble(&self) -> Vec<String> {
        self.shared.read(|state| state.trouble.clone())
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for socket in self
            .sockets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = socket.shutdown(Shutdown::Both);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accepts one connection (within [`PATIENCE`]), connects to the server and forwards both
/// ways until both directions end.
fn serve(
    listener: &TcpListener,
    server: SocketAddr,
    attack: Option<Attack>,
    shared: &Shared,
    sockets: &Mutex<Vec<TcpStream>>,
    stop: &AtomicBool,
) {
    let deadline = Instant::now() + PATIENCE;
    let client = loop {
        if stop.load(Ordering::SeqCst) {
            return finish_unused(shared, "the proxy was dropped before a client came");
        }
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return finish_unused(shared, "no client connected to the proxy");
                }
                thread::sleep(Duration::from_millis(5));
            }
            Err(err) => return finish_unused(shared, &format!("accept failed: {err}")),
        }
    };
    let upstream = match TcpStream::connect_timeout(&server, PATIENCE) {
        Ok(stream) => stream,
        Err(err) => {
            let _ = client.shutdown(Shutdown::Both);
            return finish_unused(shared, &format!("cannot reach the server: {err}"));
        }
    };
    let streams = [client, upstream].map(|stream| {
        stream.set_nonblocking(false)?;
        // Frames are forwarded as soon as they are whole; Nagle would only blur the timing.
        stream.set_nodelay(true)?;
        Ok::<_, std::io::Error>((stream.try_clone()?, stream.try_clone()?, stream))
    });
    let [Ok((client_in, client_out, client)), Ok((server_in, server_out, server))] = streams else {
        return finish_unused(shared, "cannot set up the proxied connection");
    };
    {
        let mut kept = sockets.lock().unwrap_or_else(PoisonError::into_inner);
        kept.push(client);
        kept.push(server);
    }
    if stop.load(Ordering::SeqCst) {
        // Dropped while connecting: the sockets above were not shut down by the drop.
        for socket in sockets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
    thread::scope(|scope| {
        let to_server = attack.clone();
        scope.spawn(move || {
            forward(
                client_in,
                server_out,
                Direction::ClientToServer,
                to_server,
                shared,
            )
        });
        forward(
            server_in,
            client_out,
            Direction::ServerToClient,
            attack,
            shared,
        );
    });
}

fn finish_unused(shared: &Shared, why: &str) {
    shared.update(|state| {
        state.trouble.push(why.to_owned());
        state.ended = [true, true];
    });
}

/// What one read of a frame gave.
enum Next {
    Frame(Vec<u8>),
    /// The stream ended (or failed); these bytes of an incomplete frame came before the end.
    End(Vec<u8>),
}

/// Reads one whole frame from `src`.
fn read_frame(src: &mut TcpStream) -> Next {
    let mut frame = vec![0u8; FRAME_HEADER_LEN];
    let got = fill(src, &mut frame);
    if got < FRAME_HEADER_LEN {
        frame.truncate(got);
        return Next::End(frame);
    }
    let [_, l0, l1, l2, l3] = [frame[0], frame[1], frame[2], frame[3], frame[4]];
    let body = u32::from_be_bytes([l0, l1, l2, l3]) as usize;
    if body > MAX_BODY {
        return Next::End(frame);
    }
    frame.resize(FRAME_HEADER_LEN + body, 0);
    let got = fill(src, &mut frame[FRAME_HEADER_LEN..]);
    if got < body {
        frame.truncate(FRAME_HEADER_LEN + got);
        return Next::End(frame);
    }
    Next::Frame(frame)
}

/// Reads until `buf` is full or the stream ends or fails; returns how much was read.
fn fill(src: &mut TcpStream, buf: &mut [u8]) -> usize {
    let mut filled = 0;
    while filled < buf.len() {
        match src.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            // A reset is an end like any other, as far as forwarding goes.
            Err(_) => break,
        }
    }
    filled
}

/// The receiving end of one direction. Once a write fails (the receiver has gone), later
/// bytes are discarded, as a network would lose them.
struct Outlet {
    dst: TcpStream,
    open: bool,
}

impl Outlet {
    fn send(&mut self, bytes: &[u8]) {
        if self.open && self.dst.write_all(bytes).is_err() {
            self.open = false;
        }
    }

    /// Ends the direction: the receiver reads an end of stream after what was sent.
    fn end(&mut self) {
        if self.open {
            let _ = self.dst.shutdown(Shutdown::Write);
            self.open = false;
        }
    }
}

/// Forwards frames from `src` to `dst`, applying the attack when its frame comes.
fn forward(
    mut src: TcpStream,
    dst: TcpStream,
    direction: Direction,
    attack: Option<Attack>,
    shared: &Shared,
) {
    let d = direction.index();
    let mut outlet = Outlet { dst, open: true };
    let mut held: Option<Vec<u8>> = None;
    let mut index = 0;
    loop {
        let frame = match read_frame(&mut src) {
            Next::Frame(frame) => frame,
            Next::End(partial) => {
                if let Some(late) = held.take() {
                    outlet.send(&late);
                }
                outlet.send(&partial);
                break;
            }
        };
        shared.update(|state| state.frames[d].push(frame.clone()));
        let fault = attack
            .as_ref()
            .filter(|attack| attack.direction == direction && attack.frame == index)
            .map(|attack| &attack.fault);
        index += 1;
        let Some(fault) = fault else {
            outlet.send(&frame);
            if let Some(late) = held.take() {
                outlet.send(&late);
                shared.update(|state| state.released_late = true);
            }
            continue;
        };
        shared.update(|state| state.applied = Some(Instant::now()));
        match fault {
            Fault::Drop => {}
            Fault::Duplicate => {
                outlet.send(&frame);
                outlet.send(&frame);
            }
            Fault::HoldUntilNext => held = Some(frame),
            Fault::Delay(pause) => {
                thread::sleep(*pause);
                outlet.send(&frame);
            }
            Fault::Truncate => {
                let body = frame.len() - FRAME_HEADER_LEN;
                outlet.send(&frame[..FRAME_HEADER_LEN + body / 2]);
                outlet.end();
                // Keeps reading so the sender sees no reset, only silence.
                let mut sink = [0u8; 4096];
                while matches!(src.read(&mut sink), Ok(read) if read > 0) {}
                break;
            }
            Fault::Alter(change) => {
                let mut altered = frame;
                change(&mut altered);
                outlet.send(&altered);
            }
            Fault::AlterSeen(change) => {
                let seen = shared.read(|state| state.frames.clone());
                let mut altered = frame;
                change(&mut altered, &seen);
                outlet.send(&altered);
            }
            Fault::Overwrite { at, bytes } => {
                let mut altered = frame;
                altered[*at..*at + bytes.len()].copy_from_slice(bytes);
                outlet.send(&altered);
            }
            Fault::InjectBefore(bytes) => {
                outlet.send(bytes);
                outlet.send(&frame);
            }
            Fault::Replace(bytes) => outlet.send(bytes),
        }
    }
    outlet.end();
    shared.update(|state| state.ended[d] = true);
}
