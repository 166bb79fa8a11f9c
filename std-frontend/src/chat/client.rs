//! `aeschat client`: connect to a waiting server, agree on keys, chat, and exit.

use aeschat_core::Role;

use super::conversation::{self, Ending, Frames};
use super::events::Events;
use super::handshake::{establish, warn_about_iterations};
use super::net::{self, Endpoint};
use super::{secret, terminal, ClientArgs, Failure};

/// Where the client connects without `--connect`: a server on the same computer.
const DEFAULT_SERVER: &str = "127.0.0.1";

pub(super) fn run(args: ClientArgs) -> Result<(), Failure> {
    terminal::status("=== AES Encrypted Chat Client ===");
    let common = &args.common;
    let secret = secret::obtain(common.key_file.as_deref(), common.password_file.as_deref())?;
    warn_about_iterations(common.insecure_kdf_iterations, &secret);

    let endpoint = args
        .connect
        .unwrap_or_else(|| Endpoint::new(DEFAULT_SERVER, net::DEFAULT_PORT));
    terminal::status(&format!("[*] Connecting to {endpoint}..."));
    let stream = net::connect(&endpoint, common.timeout)?;
    let server = stream
        .peer_addr()
        .map_err(|err| Failure::other(format!("the connection failed: {err}")))?;
    let (mut reader, mut writer) = net::halves(&stream, common.timeout)
        .map_err(|err| Failure::other(format!("the connection failed: {err}")))?;
    let mut frames = Box::new(Frames::new());
    let session = establish(
        Role::Client,
        &secret,
        common.insecure_kdf_iterations,
        &mut reader,
        &mut writer,
        &mut frames,
    )?;
    // The client needs the password for this one handshake only: wipe it now.
    drop(secret);

    terminal::status(&format!("[+] Connected to the server at {server}"));
    terminal::status(super::TYPING_HINT);
    let mut events = Events::start()?;
    match conversation::run(
        session,
        reader,
        writer,
        frames,
        &mut events,
        "Server",
        common.timeout,
    ) {
        Ending::PeerLeft | Ending::Left { .. } => Ok(()),
        Ending::Failed(failure) => Err(failure),
    }
}
