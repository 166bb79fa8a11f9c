//! `aeschat client`: connect to a waiting server, agree on keys, chat, and exit.

use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use aeschat_core::session::{Receiver, Role, Sender};

use super::conversation::{self, Ending, Inbox};
use super::events::Events;
use super::handshake::establish;
use super::interrupt::Conversing;
use super::net::{self, Endpoint, TcpReader, TcpWriter};
use super::{secret, stack, terminal, ClientArgs, Failure};

/// Where the client connects without `--connect`: a server on the same computer.
const DEFAULT_SERVER: &str = "127.0.0.1";

/// How often a client waiting for its server tries again.
const RETRY_EVERY: Duration = Duration::from_millis(250);

/// How long an aeschat server takes at most to send its first bytes (its hello goes out as
/// soon as the client's arrives); silence beyond this means something else answered.
const FIRST_ANSWER: Duration = Duration::from_secs(5);

pub(super) fn run(args: ClientArgs) -> Result<(), Failure> {
    terminal::status("=== AES Encrypted Chat Client ===");
    let connected = connect(&args);
    // The client needs the secret for the handshake only. It was wiped when `connect`
    // returned, but copies made on the way (moves of the key, the handshake's locals) are
    // still in the stack memory `connect` and its callees used.
    stack::scrub();
    let Connected { connection, server } = connected?;
    terminal::status(&format!("[+] Connected to the server at {server}"));
    converse(connection, "Server", args.common.timeout)
}

/// A connection with a session established on it, ready for the conversation.
pub(super) struct Connection {
    pub(super) halves: (Sender, Receiver),
    pub(super) reader: TcpReader,
    pub(super) writer: TcpWriter,
    pub(super) inbox: Inbox,
}

/// A client's one conversation over `connection`, with `peer` as the other side's name in
/// printed lines ("Server", "Peer").
pub(super) fn converse(
    connection: Connection,
    peer: &'static str,
    close_wait: Duration,
) -> Result<(), Failure> {
    let Connection {
        halves,
        reader,
        writer,
        inbox,
    } = connection;
    terminal::status(super::TYPING_HINT);
    // From here on the client is in its conversation: what is typed (even before the
    // conversation's loop runs) is for the peer, and Ctrl-C leaves cleanly.
    let _conversing = Conversing::start();
    let mut events = Events::start(peer)?;
    let (mut sender, mut receiver) = halves;
    match conversation::run(
        &mut sender,
        &mut receiver,
        reader,
        writer,
        inbox,
        &mut events,
        peer,
        close_wait,
    ) {
        Ending::PeerLeft | Ending::Left { .. } => Ok(()),
        Ending::Failed(failure) => Err(failure),
    }
}

/// A connection with a session established on it, and where it goes.
struct Connected {
    connection: Connection,
    /// The server's address, as connected to.
    server: SocketAddr,
}

/// Obtains the secret, connects and runs the handshake. Everything that held the secret lives
/// in this function's frame or below it, so that the caller can scrub it afterwards.
#[inline(never)]
fn connect(args: &ClientArgs) -> Result<Connected, Failure> {
    let common = &args.common;
    let secret = secret::obtain(common.key_file.as_deref(), common.password_file.as_deref())?;

    let endpoint = args
        .connect
        .clone()
        .unwrap_or_else(|| Endpoint::new(DEFAULT_SERVER, net::DEFAULT_PORT));
    terminal::status(&format!("[*] Connecting to {endpoint}..."));
    let stream = connect_waiting(&endpoint, common.timeout, args.wait)?;
    let server = stream
        .peer_addr()
        .map_err(|err| Failure::other(format!("the connection failed: {err}")))?;
    let (mut reader, mut writer) = net::halves(&stream, common.timeout)
        .map_err(|err| Failure::other(format!("the connection failed: {err}")))?;
    reader.expect_answer_within(FIRST_ANSWER.min(common.timeout));
    let mut inbox = conversation::new_inbox();
    let halves = establish(
        Role::Client,
        &secret,
        &mut reader,
        &mut writer,
        &mut inbox,
        || Ok(()),
    )?;
    Ok(Connected {
        connection: Connection {
            halves,
            reader,
            writer,
            inbox,
        },
        server,
    })
}

/// Connects; while nothing listens at the address (the server is not started yet), tries
/// again until `wait` has passed, saying that it waits and, on a terminal, for how long so far.
fn connect_waiting(
    endpoint: &Endpoint,
    timeout: Duration,
    wait: Duration,
) -> Result<TcpStream, Failure> {
    let started = Instant::now();
    let deadline = started + wait;
    let mut waiting = WaitingLine::default();
    loop {
        let not_connected = match net::connect(endpoint, timeout) {
            Ok(stream) => return Ok(stream),
            Err(not_connected) => not_connected,
        };
        if !(not_connected.refused && Instant::now() < deadline) {
            return Err(match waiting.shown {
                false => not_connected.failure,
                true => Failure::other(format!(
                    "{} (no server started within {})",
                    not_connected.failure.message(),
                    net::seconds(wait)
                )),
            });
        }
        waiting.show(endpoint, started.elapsed(), wait);
        thread::sleep(RETRY_EVERY);
    }
}

/// What a client waiting for its server shows: a line saying so, then (on a terminal) a line
/// that counts the seconds, ended when the wait is.
#[derive(Default)]
struct WaitingLine {
    shown: bool,
    /// The seconds the counting line shows, while there is one.
    counted: Option<u64>,
}

impl WaitingLine {
    fn show(&mut self, endpoint: &Endpoint, waited: Duration, wait: Duration) {
        if !self.shown {
            self.shown = true;
            terminal::status(&format!(
                "[*] No server at {endpoint} yet: waiting up to {} for it to start \
                 (Ctrl-C stops)...",
                net::seconds(wait)
            ));
            return;
        }
        let seconds = waited.as_secs();
        if self.counted != Some(seconds)
            && terminal::status_in_place(&format!(
                "[*] Still waiting: {seconds} s of {}",
                net::seconds(wait)
            ))
        {
            self.counted = Some(seconds);
        }
    }
}

impl Drop for WaitingLine {
    fn drop(&mut self) {
        if self.counted.is_some() {
            terminal::end_in_place();
        }
    }
}
