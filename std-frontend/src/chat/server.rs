//! `aeschat server`: listen, serve one conversation at a time, refuse others while busy, and
//! slow down and finally stop password guessing.
//!
//! An accept thread takes every connection. While the server is idle it hands one over to the
//! main thread, which runs the handshake and the conversation; while the server is busy (or
//! waiting after a failed password) it answers with the Busy alert itself and closes, so a
//! second caller costs the server no PBKDF2 and cannot disturb the conversation.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use aeschat_core::{Alert, Error, Role};

use super::conversation::{self, Ending, Frames};
use super::events::{Events, Handover};
use super::handshake::{establish, warn_about_iterations};
use super::net;
use super::secret::{self, SharedSecret};
use super::{stack, terminal, Failure, ServerArgs};

/// The longest wait after a failed password, however many failures came before.
const MAX_FAIL_DELAY: Duration = Duration::from_secs(300);

/// How long a refused connection is given to read the Busy alert.
const REFUSAL_GRACE: Duration = Duration::from_millis(250);

/// What the server is doing, as the accept thread needs to know.
const IDLE: u8 = 0;
const TALKING: u8 = 1;
const COOLING_DOWN: u8 = 2;

pub(super) fn run(args: ServerArgs) -> Result<(), Failure> {
    terminal::status("=== AES Encrypted Chat Server ===");
    let common = &args.common;
    let secret = secret::obtain(common.key_file.as_deref(), common.password_file.as_deref())?;
    warn_about_iterations(common.insecure_kdf_iterations, &secret);
    let listener = net::listen(args.listen.as_ref())?;
    let local = listener
        .local_addr()
        .map_err(|err| Failure::other(format!("cannot tell where the server listens: {err}")))?;

    // Busy until the main thread is ready to take a connection.
    let state = Arc::new(AtomicU8::new(TALKING));
    let mut events = Events::start("Client")?;
    let handover = events.handover();
    let accept_state = Arc::clone(&state);
    thread::Builder::new()
        .name("accept".to_owned())
        .spawn(move || accept_all(&listener, &accept_state, &handover))
        .map_err(|err| Failure::other(format!("cannot start a thread: {err}")))?;
    let mut server = Server {
        args: &args,
        secret: &secret,
        state: &state,
        failures: 0,
    };
    loop {
        // Idle before saying so: a client that reads this line and connects must be served.
        state.store(IDLE, Ordering::SeqCst);
        // The last conversation's keys were wiped when it ended, but copies made on the way
        // (the handshake's locals, moves of the session) are still in the stack memory `serve`
        // and its callees used. (A caller arriving meanwhile waits in the handover.)
        stack::scrub();
        terminal::status(&format!("[*] Waiting for a client: listening on {local}"));
        let Some((stream, peer)) = events.next_connection() else {
            // The end of input with nothing left to send: nobody can talk to a next client.
            return stop_without_input(&events);
        };
        match server.serve(stream, peer, &mut events)? {
            Next::Listen => {}
            Next::CoolDown(delay) => thread::sleep(delay),
            Next::Stop => return Ok(()),
        }
    }
}

/// Says why the server stops when its input ends while nobody is connected.
fn stop_without_input(events: &Events) -> Result<(), Failure> {
    if events.input_was_closed_from_the_start() {
        return Err(Failure::usage(
            "standard input is closed (as under nohup, or in a container without -i), so \
             nothing could be typed to a client: the server stops. Run it in a terminal, or \
             give it its input through a pipe",
        ));
    }
    terminal::status("[-] Input ended with nobody connected: the server stops");
    Ok(())
}

/// What the server does after a connection.
enum Next {
    Listen,
    /// Refuse connections for this long (after a failed password), then listen.
    CoolDown(Duration),
    Stop,
}

struct Server<'a> {
    args: &'a ServerArgs,
    secret: &'a SharedSecret,
    /// What the accept thread is told the server is doing.
    state: &'a AtomicU8,
    /// Failed passwords since the last successful handshake.
    failures: u32,
}

impl Server<'_> {
    /// Handshake and conversation with one client. Errors that end the server are returned;
    /// others are reported and the server listens again (unless `--once`).
    #[inline(never)]
    fn serve(
        &mut self,
        stream: TcpStream,
        peer: SocketAddr,
        events: &mut Events,
    ) -> Result<Next, Failure> {
        let once = self.args.once;
        let common = &self.args.common;
        let (mut reader, mut writer) = net::halves(&stream, common.timeout)
            .map_err(|err| Failure::other(format!("the connection failed: {err}")))?;
        let mut frames = Box::new(Frames::new());
        let handshake = establish(
            Role::Server,
            self.secret,
            common.insecure_kdf_iterations,
            &mut reader,
            &mut writer,
            &mut frames,
        );
        let session = match handshake {
            Ok(session) => session,
            Err(failure) if failure.is_authentication() => return self.failed_password(peer),
            Err(failure) if once => return Err(failure),
            Err(failure) => {
                terminal::error(&format!("connection from {peer}: {}", failure.message()));
                return Ok(Next::Listen);
            }
        };
        self.failures = 0;
        terminal::status(&format!("[+] Client connected from {peer}"));
        terminal::status(super::TYPING_HINT);
        let ending = conversation::run(
            session,
            reader,
            writer,
            frames,
            events,
            "Client",
            common.timeout,
        );
        match ending {
            // Nobody is left to type to a next client.
            Ending::Left { input_ended: true } => Ok(Next::Stop),
            Ending::PeerLeft | Ending::Left { .. } if once => Ok(Next::Stop),
            Ending::PeerLeft | Ending::Left { .. } => Ok(Next::Listen),
            Ending::Failed(failure) if once => Err(failure),
            Ending::Failed(failure) => {
                terminal::error(failure.message());
                Ok(Next::Listen)
            }
        }
    }

    /// Counts a failed password: the server waits longer after each one (doubling) and stops
    /// after `--max-failures`, so an online guesser gets a handful of tries, not millions.
    fn failed_password(&mut self, peer: SocketAddr) -> Result<Next, Failure> {
        self.failures = self.failures.saturating_add(1);
        let max = self.args.max_failures;
        if self.failures >= max {
            return Err(Failure::authentication(format!(
                "authentication failed {} time{} (last from {peer}): the server stops, to \
                 resist password guessing",
                self.failures,
                if self.failures == 1 { "" } else { "s" },
            )));
        }
        if self.args.once {
            return Err(Failure::authentication(
                Error::AuthenticationFailed.to_string(),
            ));
        }
        let doublings = (self.failures - 1).min(20);
        let delay = self
            .args
            .fail_delay
            .saturating_mul(1 << doublings)
            .min(MAX_FAIL_DELAY);
        let left = max - self.failures;
        // Said before the failure is reported, so a caller who reads the report and calls
        // right back is told why it is refused.
        self.state.store(COOLING_DOWN, Ordering::SeqCst);
        terminal::status(&format!(
            "[!] Authentication failed for {peer}: wrong password or interference. \
             {left} attempt{} left; refusing connections for {}",
            if left == 1 { "" } else { "s" },
            net::seconds(delay),
        ));
        Ok(Next::CoolDown(delay))
    }
}

/// Takes every connection: hands it to the main thread when idle, refuses it otherwise.
fn accept_all(listener: &TcpListener, state: &AtomicU8, handover: &Handover) {
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                // A dual-stack listener sees IPv4 callers as ::ffff:a.b.c.d; people know them
                // as a.b.c.d.
                let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
                match state.compare_exchange(IDLE, TALKING, Ordering::SeqCst, Ordering::SeqCst) {
                    Ok(_) => {
                        if !handover.hand_over(stream, peer) {
                            return;
                        }
                    }
                    Err(doing) => refuse(stream, peer, doing),
                }
            }
            // The caller gave up before the connection was taken: nothing to do.
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::Interrupted
                ) => {}
            // Most likely out of file descriptors: give connections time to close rather
            // than spin.
            Err(_) => thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Answers a connection with the Busy alert and closes it.
fn refuse(stream: TcpStream, peer: SocketAddr, doing: u8) {
    let why = if doing == COOLING_DOWN {
        "waiting after a failed password"
    } else {
        "busy with another conversation"
    };
    terminal::status(&format!("[!] Refused {peer}: {why}"));
    let mut alert = [0u8; 6];
    if let Ok(frame) = Alert::Busy.write(&mut alert) {
        let _ = stream.set_write_timeout(Some(REFUSAL_GRACE));
        let _ = (&stream).write_all(frame);
    }
    let _ = stream.shutdown(Shutdown::Write);
    // The wait for the caller to hang up runs on a thread of its own, so that slow or silent
    // callers cannot hold up the accept thread and delay every refusal after them; at most
    // MAX_DRAINING at once (beyond that the socket is simply closed).
    if DRAINING.fetch_add(1, Ordering::SeqCst) >= MAX_DRAINING {
        DRAINING.fetch_sub(1, Ordering::SeqCst);
        return;
    }
    let spawned = thread::Builder::new()
        .name("refuse".to_owned())
        .spawn(move || {
            drain(&stream);
            DRAINING.fetch_sub(1, Ordering::SeqCst);
        });
    if spawned.is_err() {
        DRAINING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Refused connections being drained at the same time.
static DRAINING: AtomicUsize = AtomicUsize::new(0);
const MAX_DRAINING: usize = 64;

/// Closing a socket with unread input (the caller's hello) sends a reset, which may destroy
/// the Busy alert before the caller reads it. Reading that input first, briefly, avoids it:
/// until the caller hangs up, 4 KiB have arrived, or one deadline for the whole drain passes
/// (so a caller trickling bytes cannot keep the thread).
fn drain(stream: &TcpStream) {
    let deadline = Instant::now() + REFUSAL_GRACE;
    let mut sink = [0u8; 512];
    let mut total = 0;
    while total < 4096 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match (&*stream).read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(read) => total += read,
        }
    }
}
