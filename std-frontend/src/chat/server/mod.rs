//! `aeschat server`: listen, hold one conversation at a time with whoever first proves the
//! secret, and stay available to that person whatever strangers send.
//!
//! The accept thread takes every connection and either refuses it at once (busy, a source
//! waiting after failed authentications, too many at once) or starts a handshake on a thread of
//! its own (`callers`), so several callers can handshake at the same time and a silent one
//! holds up nobody. The first caller to authenticate hands its established session to the main
//! thread, which runs the conversation; the rules of who may do what are in `admission`.

mod admission;
mod callers;
mod log;

use std::net::SocketAddr;
use std::sync::Arc;

use aeschat_core::session::{Error, Receiver, Sender};

use super::conversation::{self, Ending, Inbox};
use super::events::Events;
use super::net::{self, TcpReader, TcpWriter};
use super::secret;
use super::{stack, terminal, Failure, ServerArgs};

pub(super) use admission::Penalty;

/// A caller's connection with its session established: the conversation is theirs.
pub(super) struct Established {
    /// The session's two halves, in a box made once: the conversation borrows them, so their
    /// keys are never copied by a move and are wiped where they are when the box is dropped.
    pub(super) halves: Box<(Sender, Receiver)>,
    pub(super) reader: TcpReader,
    pub(super) writer: TcpWriter,
    pub(super) inbox: Inbox,
    pub(super) peer: SocketAddr,
}

/// What a handshake thread tells the main thread.
pub(super) enum Arrival {
    /// A caller proved the secret.
    Authenticated(Established),
    /// The server checked a caller's key confirmation and found it wrong.
    Failed { peer: SocketAddr, penalty: Penalty },
}

pub(super) fn run(args: ServerArgs) -> Result<(), Failure> {
    terminal::status("=== AES Encrypted Chat Server ===");
    let common = &args.common;
    let secret = secret::obtain(common.key_file.as_deref(), common.password_file.as_deref())?;
    let listener = net::listen(args.listen.as_ref())?;
    let local = listener
        .local_addr()
        .map_err(|err| Failure::other(format!("cannot tell where the server listens: {err}")))?;

    let mut events = Events::start("Client")?;
    let callers = Arc::new(callers::Callers::new(
        secret,
        common.timeout,
        args.fail_delay,
        events.handover(),
    ));
    callers::start_accepting(listener, Arc::clone(&callers))?;
    let mut waiting_line = true;
    loop {
        if waiting_line {
            terminal::status(&format!("[*] Waiting for a client: listening on {local}"));
            waiting_line = false;
        }
        let Some(arrival) = events.next_connection() else {
            // The end of input with nothing left to send: nobody can talk to a next client.
            return stop_without_input(&events);
        };
        let next = match arrival {
            Arrival::Authenticated(established) => converse(&args, established, &mut events),
            Arrival::Failed { peer, penalty } => failed_authentication(&args, peer, penalty),
        };
        match next? {
            Next::Listen => {}
            Next::ListenAgain => {
                // The conversation's keys were wiped when it ended, but copies made on the way
                // (moves of the session, the conversation's locals) are still in the stack
                // memory `converse` and its callees used.
                stack::scrub();
                // Idle before saying so: a client that reads the line and connects is served.
                callers.conversation_ended();
                waiting_line = true;
            }
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

/// What the server does next.
enum Next {
    /// Keep waiting, as before.
    Listen,
    /// A conversation ended: wait for the next client.
    ListenAgain,
    Stop,
}

/// The conversation with the caller who authenticated first.
#[inline(never)]
fn converse(
    args: &ServerArgs,
    established: Established,
    events: &mut Events,
) -> Result<Next, Failure> {
    let Established {
        mut halves,
        reader,
        writer,
        inbox,
        peer,
    } = established;
    terminal::status(&format!("[+] Client connected from {peer}"));
    terminal::status(super::TYPING_HINT);
    let (sender, receiver) = &mut *halves;
    let ending = conversation::run(
        sender,
        receiver,
        reader,
        writer,
        inbox,
        events,
        "Client",
        args.common.timeout,
    );
    drop(halves);
    let once = args.once;
    match ending {
        // Nobody is left to type to a next client.
        Ending::Left { input_ended: true } => Ok(Next::Stop),
        Ending::PeerLeft | Ending::Left { .. } if once => Ok(Next::Stop),
        Ending::PeerLeft | Ending::Left { .. } => Ok(Next::ListenAgain),
        Ending::Failed(failure) if once => Err(failure),
        Ending::Failed(failure) => {
            terminal::error(failure.message());
            Ok(Next::ListenAgain)
        }
    }
}

/// A failed authentication ends the server only where the operator asked for it: `--once`
/// (this one connection's outcome), or `--max-failures` in a row. The handshake thread has
/// already said who failed and how long their source waits.
fn failed_authentication(
    args: &ServerArgs,
    peer: SocketAddr,
    penalty: Penalty,
) -> Result<Next, Failure> {
    if let Some(max) = args.max_failures {
        if penalty.in_a_row >= max {
            return Err(Failure::authentication(format!(
                "authentication failed {} time{} in a row (last from {peer}): the server stops, \
                 as --max-failures {max} asks",
                penalty.in_a_row,
                if penalty.in_a_row == 1 { "" } else { "s" },
            )));
        }
    }
    if args.once {
        return Err(Failure::authentication(
            Error::AuthenticationFailed.to_string(),
        ));
    }
    Ok(Next::Listen)
}
