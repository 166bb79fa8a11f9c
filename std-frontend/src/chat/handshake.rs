//! Setting up a session on a fresh connection: the core's handshake with this side's secret,
//! a fresh nonce and the clock, under the connection's time limit.

use std::time::{SystemTime, UNIX_EPOCH};

use aeschat_core::{Config, Error, Handshake, Role, Session, DEFAULT_ITERATIONS, NONCE_LEN};

use super::allocations;
use super::conversation::Frames;
use super::net::{TcpReader, TcpWriter};
use super::secret::SharedSecret;
use super::{terminal, Failure};

/// A clock difference larger than this gets a warning: it suggests a wrong clock, which would
/// make token timestamps misleading, though the session itself does not depend on it.
const CLOCK_WARNING_SECS: u64 = 60;

/// Runs the handshake on a connection whose halves are `reader` and `writer`, then lifts the
/// handshake's deadline. `iterations` lowers the PBKDF2 work factor (tests only). `admit` is
/// asked just before the key derivation (see `aeschat_core::handshake_admitting`).
pub(super) fn establish(
    role: Role,
    secret: &SharedSecret,
    iterations: Option<u32>,
    reader: &mut TcpReader,
    writer: &mut TcpWriter,
    frames: &mut Frames,
    admit: impl FnMut() -> Result<(), Error>,
) -> Result<Session, Failure> {
    let mut config = Config::new(role, secret.as_core());
    if let Some(iterations) = iterations {
        config = config.with_insecure_iterations(iterations);
    }
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|_| Failure::other(Error::Randomness.to_string()))?;
    let handshake = Handshake::new(config, nonce, unix_now());
    let session = aeschat_core::handshake_admitting(reader, writer, frames, handshake, admit)?;
    reader
        .end_deadline()
        .map_err(|err| Failure::other(format!("the connection failed: {err}")))?;
    if let Some(offset) = session.peer_clock_offset() {
        if offset.unsigned_abs() > CLOCK_WARNING_SECS {
            let direction = if offset > 0 { "ahead of" } else { "behind" };
            terminal::warning(&format!(
                "the peer's clock is {} s {direction} this computer's: one of them is wrong",
                offset.unsigned_abs()
            ));
        }
    }
    allocations::handshake_done();
    Ok(session)
}

/// Warns that `--insecure-kdf-iterations` weakens the password, if it does.
pub(super) fn warn_about_iterations(iterations: Option<u32>, secret: &SharedSecret) {
    match (iterations, secret) {
        (Some(iterations), SharedSecret::Password(_)) if iterations < DEFAULT_ITERATIONS => {
            terminal::warning(&format!(
                "--insecure-kdf-iterations {iterations} makes password guessing \
                 {}x cheaper than the default {DEFAULT_ITERATIONS}: for tests and benchmarks only",
                DEFAULT_ITERATIONS / iterations
            ));
        }
        _ => {}
    }
}

/// The system clock in Unix seconds, or 0 ("no clock") if it is set before 1970.
pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
