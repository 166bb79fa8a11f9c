//! `aeschat client`: connect to a waiting server, agree on keys, chat, and exit.

use std::net::SocketAddr;

use aeschat_core::{Role, Session};

use super::conversation::{self, Ending, Frames};
use super::events::Events;
use super::handshake::{establish, warn_about_iterations};
use super::net::{self, Endpoint, TcpReader, TcpWriter};
use super::{secret, stack, terminal, ClientArgs, Failure};

/// Where the client connects without `--connect`: a server on the same computer.
const DEFAULT_SERVER: &str = "127.0.0.1";

pub(super) fn run(args: ClientArgs) -> Result<(), Failure> {
    terminal::status("=== AES Encrypted Chat Client ===");
    let connected = connect(&args);
    // The client needs the secret for the handshake only. It was wiped when `connect`
    // returned, but copies made on the way (moves of the key, the handshake's locals) are
    // still in the stack memory `connect` and its callees used.
    stack::scrub();
    let Connected {
        session,
        reader,
        writer,
        frames,
        server,
    } = connected?;

    terminal::status(&format!("[+] Connected to the server at {server}"));
    terminal::status(super::TYPING_HINT);
    let mut events = Events::start()?;
    let (mut sender, mut receiver) = session.split();
    match conversation::run(
        &mut sender,
        &mut receiver,
        reader,
        writer,
        frames,
        &mut events,
        "Server",
        args.common.timeout,
    ) {
        Ending::PeerLeft | Ending::Left { .. } => Ok(()),
        Ending::Failed(failure) => Err(failure),
    }
}

/// A connection with a session established on it.
struct Connected {
    session: Session,
    reader: TcpReader,
    writer: TcpWriter,
    frames: Box<Frames>,
    /// The server's address, as connected to.
    server: SocketAddr,
}

/// Obtains the secret, connects and runs the handshake. Everything that held the secret lives
/// in this function's frame or below it, so that the caller can scrub it afterwards.
#[inline(never)]
fn connect(args: &ClientArgs) -> Result<Connected, Failure> {
    let common = &args.common;
    let secret = secret::obtain(common.key_file.as_deref(), common.password_file.as_deref())?;
    warn_about_iterations(common.insecure_kdf_iterations, &secret);

    let endpoint = args
        .connect
        .clone()
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
        || Ok(()),
    )?;
    Ok(Connected {
        session,
        reader,
        writer,
        frames,
        server,
    })
}
