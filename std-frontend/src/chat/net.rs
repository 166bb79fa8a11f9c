//! The network: addresses as people type them, listening and connecting with a time limit, and
//! the two halves of a TCP connection with their deadlines (the core's driver takes them
//! through the standard `embedded-io` adapters).

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs,
};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Failure;

/// The port the chat uses when none is given.
pub(super) const DEFAULT_PORT: u16 = 7878;

/// A host (IPv4, IPv6 or name) and a port, as given on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    host: String,
    port: u16,
}

impl Endpoint {
    pub(super) fn new(host: &str, port: u16) -> Endpoint {
        Endpoint {
            host: host.to_owned(),
            port,
        }
    }

    /// Every address the host resolves to, in the resolver's order.
    fn resolve(&self) -> Result<Vec<SocketAddr>, Failure> {
        let addresses: Vec<SocketAddr> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|err| Failure::other(format!("cannot resolve \"{}\": {err}", self.host)))?
            .collect();
        if addresses.is_empty() {
            return Err(Failure::other(format!(
                "\"{}\" has no address to use",
                self.host
            )));
        }
        Ok(addresses)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Parses `HOST:PORT`, `[IPv6]:PORT`, a bare IP address or host name (default port), or a bare
/// port number (all interfaces).
impl FromStr for Endpoint {
    type Err = String;

    fn from_str(text: &str) -> Result<Endpoint, String> {
        if text.is_empty() {
            return Err("the address is empty".to_owned());
        }
        if text.bytes().all(|byte| byte.is_ascii_digit()) {
            // A number alone is a port; the resolver would take a larger one for an IPv4
            // address (99999 is 0.1.134.159).
            return Ok(Endpoint::new("::", parse_port(text)?));
        }
        if let Ok(address) = text.parse::<SocketAddr>() {
            return Ok(Endpoint::new(&address.ip().to_string(), address.port()));
        }
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(Endpoint::new(&ip.to_string(), DEFAULT_PORT));
        }
        if let Some(inside) = text.strip_prefix('[') {
            let (host, rest) = inside
                .split_once(']')
                .ok_or("an IPv6 address in brackets lacks its closing ']'")?;
            host.parse::<Ipv6Addr>()
                .map_err(|_| format!("\"{host}\" is not an IPv6 address"))?;
            let port = match rest {
                "" => DEFAULT_PORT,
                _ => parse_port(rest.strip_prefix(':').ok_or("expected ':PORT' after ']'")?)?,
            };
            return Ok(Endpoint::new(host, port));
        }
        let (host, port) = match text.rsplit_once(':') {
            Some((host, port)) => (host, parse_port(port)?),
            None => (text, DEFAULT_PORT),
        };
        if host.is_empty() || host.contains(':') || host.chars().any(char::is_whitespace) {
            return Err(format!(
                "\"{text}\" is not HOST:PORT (write an IPv6 address as [ADDRESS]:PORT)"
            ));
        }
        Ok(Endpoint::new(host, port))
    }
}

fn parse_port(text: &str) -> Result<u16, String> {
    text.parse()
        .map_err(|_| format!("port \"{text}\" is not a port number (0 to 65535)"))
}

/// Binds the listening socket. Without an address: every interface, IPv6 and IPv4 together
/// where the system allows a dual-stack socket, else IPv4 only.
pub(super) fn listen(endpoint: Option<&Endpoint>) -> Result<TcpListener, Failure> {
    let all_interfaces = Endpoint::new("::", DEFAULT_PORT);
    let endpoint = endpoint.unwrap_or(&all_interfaces);
    let mut candidates = endpoint.resolve()?;
    if endpoint.host == "::" {
        // "::" is every IPv6 interface and, on a dual-stack system, every IPv4 one too; where
        // IPv6 is switched off, all IPv4 interfaces are the next best thing.
        candidates.push(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), endpoint.port));
    }
    let mut last_error = None;
    for address in &candidates {
        match TcpListener::bind(address) {
            Ok(listener) => return Ok(listener),
            Err(err) => last_error = Some((address, err)),
        }
    }
    let (address, err) = last_error.expect("resolve returns at least one address");
    Err(Failure::other(format!("cannot listen on {address}: {err}")))
}

/// Why a connection could not be made.
pub(super) struct NotConnected {
    pub(super) failure: Failure,
    /// Every address refused the connection: nothing listens there (yet).
    pub(super) refused: bool,
}

/// Connects to the first address of `endpoint` that answers within `timeout` each.
pub(super) fn connect(endpoint: &Endpoint, timeout: Duration) -> Result<TcpStream, NotConnected> {
    let addresses = endpoint.resolve().map_err(|failure| NotConnected {
        failure,
        refused: false,
    })?;
    let mut refused = true;
    let mut last_error = None;
    for address in addresses {
        match TcpStream::connect_timeout(&address, timeout) {
            Ok(stream) => return Ok(stream),
            Err(err) => {
                refused &= err.kind() == io::ErrorKind::ConnectionRefused;
                last_error = Some((address, err));
            }
        }
    }
    let (address, err) = last_error.expect("resolve returns at least one address");
    let reason = match err.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            format!("no answer within {}", seconds(timeout))
        }
        _ => err.to_string(),
    };
    Err(NotConnected {
        failure: Failure::other(format!(
            "cannot connect to {endpoint} ({address}): {reason}"
        )),
        refused,
    })
}

/// Durations as people read them: "30 s", "1.5 s".
pub(super) fn seconds(duration: Duration) -> String {
    format!("{} s", duration.as_secs_f64())
}

/// The receiving half of a connection. During the handshake it enforces one deadline for the
/// whole exchange, so a peer that sends a byte now and then cannot hold the server forever.
/// Reads go straight into the caller's buffer (the session's inbox, where records are
/// decrypted in place): no read-ahead copy.
pub(super) struct TcpReader {
    stream: TcpStream,
    deadline: Option<(Instant, Duration)>,
    /// A server's shorter deadlines for each of the caller's handshake frames, until its last
    /// is whole.
    frames: Option<CallerFrames>,
    /// A client's shorter deadline for the server's first byte (see
    /// [`TcpReader::expect_answer_within`]).
    answer: Option<(Instant, Duration)>,
}

/// The sending half of a connection. A peer that stops reading makes a write fail after the
/// time limit instead of blocking this side forever.
pub(super) struct TcpWriter {
    stream: TcpStream,
    limit: Duration,
}

/// Splits `stream` into halves for two threads. Until [`TcpReader::end_deadline`], reads must
/// complete within `limit` from now in total; writes always within `limit` each.
pub(super) fn halves(stream: &TcpStream, limit: Duration) -> io::Result<(TcpReader, TcpWriter)> {
    stream.set_write_timeout(Some(limit))?;
    // Nagle's algorithm would hold back small chat lines waiting for more.
    stream.set_nodelay(true)?;
    let reader = TcpReader {
        stream: stream.try_clone()?,
        deadline: Some((Instant::now() + limit, limit)),
        frames: None,
        answer: None,
    };
    let writer = TcpWriter {
        stream: stream.try_clone()?,
        limit,
    };
    Ok((reader, writer))
}

/// Which of a caller's handshake frames the server waits for, as the thread that accepts
/// callers sees it (to choose whom to drop when all places are taken).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Awaiting {
    /// Its first frame (the ClientHello): it has sent nothing whole yet.
    FirstFrame,
    /// Its next frame (the ClientShare and ClientFinished), since this instant, when the
    /// server sent its answer to the last one (the ServerHello).
    NextFrame(Instant),
    /// Nothing more: its last frame is whole (its ClientFinished is being checked) or the
    /// handshake is over. Never goes back.
    Nothing,
}

/// A caller that stops talking is dropped after a few seconds rather than after the whole
/// handshake's time limit: its connection holds one of the server's few handshake places.
struct CallerFrames {
    /// For each frame after the first, from when the server answered the last.
    next_wait: Duration,
    /// When the frame waited for must be whole, and what to say if it is not.
    deadline: Option<(Instant, String)>,
    awaiting: Arc<Mutex<Awaiting>>,
}

impl CallerFrames {
    fn set(&mut self, awaiting: Awaiting) {
        let mut shared = self
            .awaiting
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if *shared != Awaiting::Nothing {
            *shared = awaiting;
        }
    }
}

impl TcpReader {
    /// Requires the peer's first byte within `limit` from now: a port that accepts connections
    /// but does not answer like aeschat (another program, a firewall that holds connections
    /// open) is reported as such in seconds, not after the whole handshake's time limit.
    pub(super) fn expect_answer_within(&mut self, limit: Duration) {
        self.answer = Some((Instant::now() + limit, limit));
    }

    /// Lifts the handshake deadline: an established conversation may be quiet for hours.
    pub(super) fn end_deadline(&mut self) -> io::Result<()> {
        self.deadline = None;
        self.frames_whole();
        self.answer = None;
        self.stream.set_read_timeout(None)
    }

    /// Requires each of the peer's handshake frames to be whole in time (if that is sooner than
    /// the handshake's deadline): the first within `first_wait` from now, each next one within
    /// `next_wait` from when [`TcpReader::frame_answered`] says the last was answered.
    /// `awaiting` tells the accept thread which one the server waits for.
    pub(super) fn frames_within(
        &mut self,
        first_wait: Duration,
        next_wait: Duration,
        awaiting: Arc<Mutex<Awaiting>>,
    ) {
        let mut frames = CallerFrames {
            next_wait,
            deadline: None,
            awaiting,
        };
        frames.set(Awaiting::FirstFrame);
        self.frames = Some(frames);
        self.wait_for_frame(first_wait, "the caller sent no aeschat hello");
    }

    /// The server answers the peer's last frame: the next one is due within its wait from now.
    pub(super) fn frame_answered(&mut self) {
        let Some(frames) = self.frames.as_mut() else {
            return;
        };
        frames.set(Awaiting::NextFrame(Instant::now()));
        let wait = frames.next_wait;
        self.wait_for_frame(wait, "the caller did not go on with its handshake");
        // When the whole handshake's deadline is no later, it is the one that is reported.
        if let (Some(frames), Some((whole, _))) = (self.frames.as_mut(), self.deadline) {
            if frames.deadline.as_ref().is_some_and(|(at, _)| *at >= whole) {
                frames.deadline = None;
            }
        }
    }

    /// The peer's last handshake frame is whole: only the handshake's deadline is left.
    pub(super) fn frames_whole(&mut self) {
        if let Some(mut frames) = self.frames.take() {
            frames.set(Awaiting::Nothing);
        }
    }

    fn wait_for_frame(&mut self, wait: Duration, why: &str) {
        let Some(frames) = self.frames.as_mut() else {
            return;
        };
        let mut deadline = Instant::now() + wait;
        let mut wait = wait;
        if let Some((whole, limit)) = self.deadline {
            // Never later than the whole handshake's: then it is this frame that is late.
            deadline = deadline.min(whole);
            wait = wait.min(limit);
        }
        frames.deadline = Some((deadline, format!("{why} within {}", seconds(wait))));
    }

    /// The deadline the next read must meet, and what to say when it passes.
    fn current_deadline(&self) -> Option<(Instant, String)> {
        let whole = self.deadline.map(|(deadline, limit)| {
            let why = format!(
                "the peer did not complete the handshake within {}",
                seconds(limit)
            );
            (deadline, why)
        });
        let frame = self
            .frames
            .as_ref()
            .and_then(|frames| frames.deadline.clone());
        match (frame, self.answer, whole) {
            (Some(frame), _, Some((deadline, _))) if frame.0 <= deadline => Some(frame),
            (_, Some((first, limit)), Some((deadline, _))) if first < deadline => Some((
                first,
                format!(
                    "the connection was accepted, but nothing answered like an aeschat server \
                     within {}: is an aeschat server listening at that address and port?",
                    seconds(limit)
                ),
            )),
            (_, _, whole) => whole,
        }
    }
}

impl Read for TcpReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let count = read_stream(&self.stream, self.current_deadline(), buf)?;
        self.answer = None;
        Ok(count)
    }
}

/// One read from the socket, under the handshake's deadline while there is one.
fn read_stream(
    mut stream: &TcpStream,
    deadline: Option<(Instant, String)>,
    buf: &mut [u8],
) -> io::Result<usize> {
    loop {
        if let Some((deadline, why)) = &deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(io::ErrorKind::TimedOut, why.clone()));
            }
            stream.set_read_timeout(Some(left))?;
        }
        match stream.read(buf) {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            // The socket's timeout fired: the loop reports the deadline.
            Err(err)
                if deadline.is_some()
                    && matches!(
                        err.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
            result => return result,
        }
    }
}

impl Write for TcpWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            match self.stream.write(buf) {
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("the peer took no data for {}", seconds(self.limit)),
                    ))
                }
                result => return result,
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

impl TcpWriter {
    /// Ends this side's direction (TCP FIN) after everything written so far.
    pub(super) fn finish(&self) {
        // The connection may already be gone; there is nothing left to tell anyone then.
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    /// Ends the connection both ways now, which also wakes a thread blocked reading it.
    pub(super) fn abort(&self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

#[cfg(test)]
mod tests {
    use super::{Endpoint, DEFAULT_PORT};

    fn parse(text: &str) -> Result<Endpoint, String> {
        text.parse()
    }

    #[test]
    fn addresses_parse_as_people_write_them() {
        assert_eq!(
            parse("127.0.0.1:9000"),
            Ok(Endpoint::new("127.0.0.1", 9000))
        );
        assert_eq!(parse("[::1]:9000"), Ok(Endpoint::new("::1", 9000)));
        assert_eq!(parse("[::1]"), Ok(Endpoint::new("::1", DEFAULT_PORT)));
        assert_eq!(parse("::1"), Ok(Endpoint::new("::1", DEFAULT_PORT)));
        assert_eq!(
            parse("10.0.0.2"),
            Ok(Endpoint::new("10.0.0.2", DEFAULT_PORT))
        );
        assert_eq!(
            parse("example.org:80"),
            Ok(Endpoint::new("example.org", 80))
        );
        assert_eq!(
            parse("localhost"),
            Ok(Endpoint::new("localhost", DEFAULT_PORT))
        );
        assert_eq!(parse("0"), Ok(Endpoint::new("::", 0)));
        assert_eq!(parse("host:0"), Ok(Endpoint::new("host", 0)));
    }

    #[test]
    fn bad_addresses_are_refused() {
        assert_eq!(
            parse("99999"),
            Err("port \"99999\" is not a port number (0 to 65535)".to_owned())
        );
        for bad in [
            "",
            "host:",
            "host:70000",
            "[::1",
            "[nothost]:1",
            "a b:1",
            ":80",
            "[::1]x",
            "99999",
            "65536",
            "host:99999",
            "[::1]:65536",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn endpoints_display_with_brackets_for_ipv6() {
        assert_eq!(Endpoint::new("::1", 7).to_string(), "[::1]:7");
        assert_eq!(Endpoint::new("localhost", 7).to_string(), "localhost:7");
    }
}
