//! Setting up a session on a fresh connection: the core's handshake with this side's secret,
//! a fresh nonce and the clock, under the connection's time limit.

use std::io::{Read, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use aeschat_core::fernet::IvPool;
use aeschat_core::session::{
    Action, Config, Engine, Error, FrameKind, Receiver, Role, Sender, SessionError,
};

use super::allocations;
use super::conversation::Inbox;
use super::net::{TcpReader, TcpWriter};
use super::secret::SharedSecret;
use super::{terminal, Failure};

/// A clock difference larger than this gets a warning: it suggests a wrong clock, which would
/// make token timestamps misleading, though the session itself does not depend on it.
const CLOCK_WARNING_SECS: u64 = 60;

/// Runs the handshake on a connection whose halves are `reader` and `writer`, then lifts the
/// handshake's deadline, and returns the session's two halves. `admit` is asked just before the
/// key derivation, which a server reaches only once the caller has sent its ClientShare and
/// ClientFinished.
///
/// The loop only moves bytes between the connection and the core's protocol engine, which
/// holds every rule (alerts included); it adds the connection's deadlines, and tells the
/// reader when the server answers a frame of the peer's and when the peer's last is whole.
pub(super) fn establish(
    role: Role,
    secret: &SharedSecret,
    reader: &mut TcpReader,
    writer: &mut TcpWriter,
    inbox: &mut Inbox,
    mut admit: impl FnMut() -> Result<(), Error>,
) -> Result<(Sender, Receiver), Failure> {
    let config = Config::new(role, secret.as_core());
    let mut os = IvPool::<0>::new();
    let mut engine =
        Engine::try_new(config, &mut os, unix_now()).map_err(SessionError::Protocol)?;
    loop {
        match engine.poll_inbox(inbox) {
            Action::Transmit(bytes) => {
                // A server transmits only in answer to a frame of the caller's, which has been
                // taken: the caller's next one is due from now. Said before the write, so that
                // the caller's wait is counted from before it can see the answer (else a flood
                // of new callers could evict it as silent in between). An alert ends the
                // handshake: no next frame is due, and a caller answered only by an alert has
                // not been given the server's CPace share (its handshake is not abandoned).
                if role == Role::Server && bytes.first() != Some(&(FrameKind::Alert as u8)) {
                    reader.frame_answered();
                }
                writer
                    .write_all(bytes)
                    .and_then(|()| writer.flush())
                    .map_err(SessionError::Transport)?
            }
            Action::DeriveKeys => {
                // The caller's last frame is whole: from here on it is never dropped to make
                // room, however long it waits for its turn to be checked.
                reader.frames_whole();
                match admit() {
                    Ok(()) => engine.derive_keys(),
                    Err(refusal) => engine.refuse(refusal),
                }
            }
            Action::NeedInput => {
                let space = inbox.unfilled().map_err(SessionError::Protocol)?;
                match reader.read(space).map_err(SessionError::Transport)? {
                    0 => return Err(SessionError::Protocol(engine.end_of_stream()).into()),
                    count => inbox.filled(count),
                }
            }
            Action::Established => break,
            Action::Failed(error) => return Err(SessionError::Protocol(error).into()),
            // The engine says Established before it opens any record.
            Action::Text(_) | Action::Closed => {
                return Err(SessionError::Protocol(Error::OutOfOrderCall).into())
            }
        }
    }
    reader
        .end_deadline()
        .map_err(|err| Failure::other(format!("the connection failed: {err}")))?;
    if let Some(offset) = engine.peer_clock_offset() {
        if offset.unsigned_abs() > CLOCK_WARNING_SECS {
            let direction = if offset > 0 { "ahead of" } else { "behind" };
            terminal::warning(&format!(
                "the peer's clock is {} s {direction} this computer's: one of them is wrong",
                offset.unsigned_abs()
            ));
        }
    }
    let halves = engine.split().map_err(SessionError::Protocol)?;
    allocations::handshake_done();
    Ok(halves)
}

/// The system clock in Unix seconds, or `None` ("no clock") if it is set before 1970.
pub(super) fn unix_now() -> Option<u64> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .map(|elapsed| elapsed.as_secs())
}
