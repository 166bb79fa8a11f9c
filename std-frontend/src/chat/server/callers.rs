//! Every connection the server accepts: refused at once, or given a handshake on a thread of
//! its own, under the rules of `admission`.
//!
//! Key derivations run one at a time, under [`Callers::derivation`], and only once the caller
//! has sent its ClientFinished; the lock is held until the outcome is known, so the first
//! caller to authenticate takes the conversation before the next derivation can start, and
//! everyone after it is told (truthfully) that the server is busy.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use aeschat_core::session::{Alert, Error, Role};

use super::super::conversation;
use super::super::events::Handover;
use super::super::handshake::establish;
use super::super::net::{self, Awaiting};
use super::super::secret::SharedSecret;
use super::super::{stack, terminal, Failure};
use super::admission::{Admission, Refusal, Rules, Source, ABANDON_ALLOWANCE, ABANDON_WINDOW};
use super::log::CallerLog;
use super::{Arrival, Established};

/// How long a caller has to send its first frame (its ClientHello) before it is dropped, when
/// that is sooner than `--timeout`: a silent connection holds one of the few handshake places.
const FIRST_FRAME_WAIT: Duration = Duration::from_secs(5);

/// How long a caller has to send its next frame (its ClientShare and ClientFinished) once the
/// server has answered its hello, when that is sooner than `--timeout`. It stops callers that
/// send a valid hello and then fall silent from holding places for the whole `--timeout`. An
/// honest client sends that flight one round trip after the hello, plus about a millisecond of
/// CPace: 5 s is many round trips even over satellite or a congested mobile link.
const SILENCE_AFTER_HELLO_WAIT: Duration = Duration::from_secs(5);

/// When all places are taken and no caller is silent, a newcomer takes the place of the caller
/// that has waited longest for its next frame after the server's answer, if that is longer
/// than this. Without it, callers from a few addresses that send a hello and then fall silent
/// hold every place, refilled as each is dropped, and the real client is refused as busy for as
/// long as they keep it up. An honest client waits one round trip there (well under a second
/// almost everywhere), so it is dropped for a newcomer only after two seconds without a word,
/// and only while every place is taken. Callers that hang up and say hello again more often
/// than this, to keep their places fresh, abandon handshakes: `admission` makes their sources
/// wait once they have abandoned more than a few.
const SILENCE_AFTER_HELLO_GRACE: Duration = Duration::from_secs(2);

/// How long a refused connection is given to read its alert.
const REFUSAL_GRACE: Duration = Duration::from_millis(250);

/// A handshake in progress, as the accept thread sees it.
struct Pending {
    id: u64,
    source: Source,
    stream: TcpStream,
    /// Which of the caller's frames its handshake waits for, and since when.
    awaiting: Arc<Mutex<Awaiting>>,
}

/// What the accept thread and the handshake threads share.
pub(super) struct Callers {
    secret: SharedSecret,
    timeout: Duration,
    admission: Mutex<Admission>,
    /// Held from the start of a key derivation until its outcome is recorded.
    derivation: Mutex<()>,
    pending: Mutex<Vec<Pending>>,
    next_id: AtomicUsize,
    log: CallerLog,
    handover: Handover,
}

impl Callers {
    pub(super) fn new(
        secret: SharedSecret,
        timeout: Duration,
        fail_delay: Duration,
        handover: Handover,
    ) -> Callers {
        let throttle_guesses = matches!(secret, SharedSecret::Password(_));
        Callers {
            secret,
            timeout,
            admission: Mutex::new(Admission::new(Rules {
                fail_delay,
                throttle_guesses,
            })),
            derivation: Mutex::new(()),
            pending: Mutex::new(Vec::new()),
            next_id: AtomicUsize::new(0),
            log: CallerLog::start(),
            handover,
        }
    }

    fn admission(&self) -> MutexGuard<'_, Admission> {
        // A poisoned lock means a thread panicked mid-update; the counts are still usable.
        self.admission
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// The conversation is over: the next caller to authenticate may have the server.
    pub(super) fn conversation_ended(&self) {
        self.admission().conversation_ended();
    }

    /// Decides about one new connection.
    fn take(self: &Arc<Self>, stream: TcpStream, peer: SocketAddr) {
        let source = Source::of(peer.ip());
        let verdict = {
            let mut admission = self.admission();
            match admission.connect(source, Instant::now()) {
                Err(Refusal::TooManyAtOnce) if self.drop_a_stalled_caller(None) => {
                    admission.connect_in_place_of_stalled(source);
                    Ok(())
                }
                Err(Refusal::TooManyFromSource) if self.drop_a_stalled_caller(Some(source)) => {
                    admission.connect_in_place_of_stalled(source);
                    Ok(())
                }
                verdict => verdict,
            }
        };
        if let Err(refusal) = verdict {
            self.log
                .record(source, &format!("Refused {peer}"), refusal.reason());
            refuse(stream, alert_for(refusal));
            return;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) as u64;
        let awaiting = Arc::new(Mutex::new(Awaiting::FirstFrame));
        if let Ok(clone) = stream.try_clone() {
            self.pending().push(Pending {
                id,
                source,
                stream: clone,
                awaiting: Arc::clone(&awaiting),
            });
        }
        let callers = Arc::clone(self);
        let spawned = thread::Builder::new()
            .name("handshake".to_owned())
            .spawn(move || {
                callers.handshake(&stream, peer, source, awaiting);
                callers.admission().handshake_ended(source);
                callers.pending().retain(|pending| pending.id != id);
                // Thread stacks are kept for the next thread, with what the handshake left
                // in them: the password's derivation, the keys on their way to the box.
                stack::scrub();
            });
        if spawned.is_err() {
            self.admission().handshake_ended(source);
            self.pending().retain(|pending| pending.id != id);
        }
    }

    fn pending(&self) -> MutexGuard<'_, Vec<Pending>> {
        self.pending
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Makes room by closing a stalled connection (from `source`, if given), if there is one:
    /// the oldest that has not yet sent its first frame, else the one that has waited longest
    /// for its next frame after the server's answer, if longer than
    /// [`SILENCE_AFTER_HELLO_GRACE`]. Callers that say nothing, or say hello and then nothing,
    /// cannot keep out one who talks, from anywhere or from the same address. A caller whose
    /// last frame is whole (its ClientFinished is being checked) is never closed.
    fn drop_a_stalled_caller(&self, source: Option<Source>) -> bool {
        let now = Instant::now();
        let mut pending = self.pending();
        let awaiting = |pending: &Pending| {
            *pending
                .awaiting
                .lock()
                .unwrap_or_else(|poison| poison.into_inner())
        };
        let from_source = |pending: &&Pending| source.is_none_or(|s| s == pending.source);
        let silent = pending
            .iter()
            .filter(from_source)
            .find(|pending| awaiting(pending) == Awaiting::FirstFrame);
        let stalled = || {
            pending
                .iter()
                .filter(from_source)
                .filter_map(|pending| match awaiting(pending) {
                    Awaiting::NextFrame(since)
                        if now.saturating_duration_since(since) > SILENCE_AFTER_HELLO_GRACE =>
                    {
                        Some((since, pending))
                    }
                    _ => None,
                })
                .min_by_key(|(since, _)| *since)
                .map(|(_, pending)| pending)
        };
        let Some(id) = silent.or_else(stalled).map(|pending| pending.id) else {
            return false;
        };
        if let Some(index) = pending.iter().position(|pending| pending.id == id) {
            let _ = pending.remove(index).stream.shutdown(Shutdown::Both);
        }
        true
    }

    /// One caller's handshake, to its outcome.
    #[inline(never)]
    fn handshake(
        &self,
        stream: &TcpStream,
        peer: SocketAddr,
        source: Source,
        awaiting: Arc<Mutex<Awaiting>>,
    ) {
        let (mut reader, mut writer) = match net::halves(stream, self.timeout) {
            Ok(halves) => halves,
            Err(err) => {
                self.log
                    .record(source, &format!("Dropped {peer}"), &err.to_string());
                return;
            }
        };
        reader.frames_within(
            FIRST_FRAME_WAIT,
            SILENCE_AFTER_HELLO_WAIT,
            Arc::clone(&awaiting),
        );
        let mut inbox = conversation::new_inbox();
        // Taken just before the derivation and held until its outcome is recorded below.
        let mut deriving: Option<MutexGuard<'_, ()>> = None;
        let mut refused = None;
        let result = establish(
            Role::Server,
            &self.secret,
            &mut reader,
            &mut writer,
            &mut inbox,
            || {
                let turn = self
                    .derivation
                    .lock()
                    .unwrap_or_else(|poison| poison.into_inner());
                self.admission()
                    .derive(source, Instant::now())
                    .map_err(|refusal| {
                        refused = Some(refusal);
                        refusal_error(refusal)
                    })?;
                deriving = Some(turn);
                Ok(())
            },
        );
        match result {
            Ok(halves) => {
                self.admission().authenticated(source);
                drop(deriving);
                let established = Established {
                    halves: Box::new(halves),
                    reader,
                    writer,
                    inbox,
                    peer,
                };
                // If nobody takes it (the server is stopping), dropping it closes the connection.
                self.handover.hand_over(Arrival::Authenticated(established));
            }
            Err(failure) if failure.is_authentication() => {
                let penalty = self.admission().failed(source, Instant::now());
                drop(deriving);
                say_failed(peer, source, penalty.delay, &self.secret);
                self.handover.hand_over(Arrival::Failed { peer, penalty });
            }
            Err(failure) => {
                drop(deriving);
                if let Some(refusal) = refused {
                    self.log
                        .record(source, &format!("Refused {peer}"), refusal.reason());
                    return;
                }
                self.log
                    .record(source, &format!("Dropped {peer}"), failure.message());
                // Still waiting for the ClientFinished after the ServerHello: the caller hung
                // up, stalled, was dropped to make room, or sent junk in its place.
                let after_the_hello = matches!(
                    *awaiting.lock().unwrap_or_else(|poison| poison.into_inner()),
                    Awaiting::NextFrame(_)
                );
                if after_the_hello {
                    let wait = self.admission().abandoned(source, Instant::now());
                    if let Some(wait) = wait {
                        self.log.record(
                            source,
                            &format!("Slowed {source}"),
                            &format!(
                                "more than {ABANDON_ALLOWANCE} handshakes abandoned after the \
                                 hello within {}; it must wait {}",
                                net::seconds(ABANDON_WINDOW),
                                net::seconds(wait)
                            ),
                        );
                    }
                }
            }
        }
    }
}

/// A failed authentication names its source, always: there are few, since each one makes its
/// source wait.
fn say_failed(peer: SocketAddr, source: Source, delay: Duration, secret: &SharedSecret) {
    let what = match secret {
        SharedSecret::Password(_) => "wrong password or interference",
        SharedSecret::Key(_) => "wrong key or interference",
    };
    if delay.is_zero() {
        terminal::status(&format!("[!] Authentication failed for {peer}: {what}"));
    } else {
        terminal::status(&format!(
            "[!] Authentication failed for {peer}: {what}; {source} must wait {} before trying \
             again",
            net::seconds(delay)
        ));
    }
}

/// Starts the thread that accepts every connection.
pub(super) fn start_accepting(listener: TcpListener, callers: Arc<Callers>) -> Result<(), Failure> {
    thread::Builder::new()
        .name("accept".to_owned())
        .spawn(move || accept_all(&listener, &callers))
        .map(|_| ())
        .map_err(|err| Failure::other(format!("cannot start a thread: {err}")))
}

fn accept_all(listener: &TcpListener, callers: &Arc<Callers>) {
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                // A dual-stack listener sees IPv4 callers as ::ffff:a.b.c.d; people know them
                // as a.b.c.d.
                let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
                callers.take(stream, peer);
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

/// The alert that tells a refused caller why.
fn alert_for(refusal: Refusal) -> Alert {
    match refusal_error(refusal) {
        Error::PeerBusy => Alert::Busy,
        error => Alert::for_error(error).unwrap_or(Alert::Busy),
    }
}

/// A refusal as the error a handshake gate returns, which carries its alert.
fn refusal_error(refusal: Refusal) -> Error {
    match refusal.retry_after() {
        None => Error::PeerBusy,
        Some(wait) => Error::RetryLater {
            // Rounded up, so that a caller who waits exactly that long is let in.
            seconds: u16::try_from(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
                .unwrap_or(u16::MAX),
        },
    }
}

/// Answers a connection with an alert and closes it.
fn refuse(stream: TcpStream, alert: Alert) {
    let mut frame = [0u8; Alert::MAX_FRAME_LEN];
    if let Ok(frame) = alert.write(&mut frame) {
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
/// the alert before the caller reads it. Reading that input first, briefly, avoids it: until
/// the caller hangs up, 4 KiB have arrived, or one deadline for the whole drain passes (so a
/// caller trickling bytes cannot keep the thread).
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
