//! `aeschat client --relay HOST:PORT`: meet the other person at a relay instead of connecting
//! to them. Without `--code` this side opens a room, prints a fresh code and waits; with it,
//! this side joins the code's room. The relay says which protocol role each side plays (the
//! opener is the server); then the usual password handshake runs over the same connection,
//! with the whole code as the password, and the conversation is the usual one.

use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use aeschat_core::relay::{Answer, Hello, RelayError, RELAY_MESSAGE_LEN};
use aeschat_core::session::Role;

use super::client::{converse, Connection};
use super::code::{self, BITS_PER_WORD};
use super::conversation;
use super::handshake::establish;
use super::net::{self, Endpoint};
use super::secret::{SecretBytes, SharedSecret};
use super::{stack, terminal, ClientArgs, Failure};

/// The relay's port when `--relay` names a host alone.
const DEFAULT_RELAY_PORT: u16 = crate::relay::DEFAULT_RELAY_PORT;

/// How long the other side takes at most to start the handshake once the relay has paired
/// the two: it is already connected and waiting.
const FIRST_ANSWER: Duration = Duration::from_secs(10);

pub(super) fn run(args: ClientArgs) -> Result<(), Failure> {
    terminal::status("=== AES Encrypted Chat Client (through a relay) ===");
    let met = meet(&args);
    // As in `client`: the code was the password, and copies of it are on the stack.
    stack::scrub();
    let connection = met?;
    terminal::status("[+] Connected to the other person through the relay");
    converse(connection, "Peer", args.common.timeout)
}

/// The relay's address as given: a host alone means the relay's default port.
fn relay_endpoint(text: &str) -> Result<Endpoint, Failure> {
    let with_port = if text.contains(':') {
        text.to_owned()
    } else {
        format!("{text}:{DEFAULT_RELAY_PORT}")
    };
    with_port
        .parse()
        .map_err(|why| Failure::usage(format!("--relay {text}: {why}")))
}

/// Gets or makes the code, meets the other side at the relay and runs the handshake.
#[inline(never)]
fn meet(args: &ClientArgs) -> Result<Connection, Failure> {
    let common = &args.common;
    let relay = relay_endpoint(args.relay.as_deref().unwrap_or_default())?;
    // A joiner's code is checked before anything goes on the network: a typo is said at once.
    let joining = match args.code.as_deref() {
        None => None,
        Some("") => Some(code::parse(&prompt_code()?)?),
        Some(typed) => Some(code::parse(typed)?),
    };
    terminal::status(&format!("[*] Connecting to the relay at {relay}..."));
    let mut stream = net::connect(&relay, common.timeout).map_err(|not| not.failure)?;
    let hello = match &joining {
        Some(code) => Hello::Join { room: code.room },
        None => Hello::Open,
    };
    stream
        .set_read_timeout(Some(common.timeout))
        .and_then(|()| stream.write_all(&hello.to_bytes()))
        .map_err(|err| Failure::other(format!("the connection to the relay failed: {err}")))?;
    let (role, password) = match joining {
        Some(code) => {
            match read_answer(&mut stream, &relay)? {
                Answer::PairedAsClient { .. } => {}
                other => return Err(refused(other, &relay)),
            }
            terminal::status(&format!(
                "[*] The relay found room {}: checking the code ({} bits) with the other \
                 person...",
                code.room,
                code.words * BITS_PER_WORD as usize
            ));
            (Role::Client, code.password)
        }
        None => {
            let room = match read_answer(&mut stream, &relay)? {
                Answer::Waiting { room } => room,
                other => return Err(refused(other, &relay)),
            };
            let words = args.code_words;
            let password = code::generate(room, words)?;
            announce(&password, words);
            // The room may wait as long as the relay keeps it: no time limit here.
            stream
                .set_read_timeout(None)
                .map_err(|err| Failure::other(format!("the connection failed: {err}")))?;
            match read_answer(&mut stream, &relay)? {
                Answer::PairedAsServer { .. } => {}
                other => return Err(refused(other, &relay)),
            }
            terminal::status("[*] Someone joined the room: checking the code with them...");
            (Role::Server, password)
        }
    };
    let secret = SharedSecret::Password(password);
    let (mut reader, mut writer) = net::halves(&stream, common.timeout)
        .map_err(|err| Failure::other(format!("the connection failed: {err}")))?;
    if role == Role::Client {
        reader.expect_answer_within(FIRST_ANSWER.min(common.timeout));
    }
    let mut inbox = conversation::new_inbox();
    let halves = establish(role, &secret, &mut reader, &mut writer, &mut inbox, || {
        Ok(())
    })
    .map_err(|failure| match failure.is_authentication() {
        // The core's words speak of passwords and restarting both sides; here the code is
        // the password, and the room cannot be used again.
        true => Failure::authentication(
            "Authentication failed: the code did not match (a typo, or someone else joined \
             the room), or the relay tampered with the connection. The room is used up: start \
             again with a new code.",
        ),
        false => failure,
    })?;
    Ok(Connection {
        halves,
        reader,
        writer,
        inbox,
    })
}

/// Prints the code for the person who opened the room to pass on.
fn announce(code: &SecretBytes, words: u8) {
    let text = String::from_utf8_lossy(code);
    terminal::status(&format!("[*] Your code: {text}"));
    terminal::status(&format!(
        "[*] Give it to the other person (it has {} bits of entropy, {words} words; whoever \
         joins with a wrong code gets one try, which both of you see fail), who runs: \
         aeschat client --relay HOST:PORT --code {text}",
        u32::from(words) * BITS_PER_WORD
    ));
    terminal::status("[*] Waiting for them to join (Ctrl-C stops)...");
}

/// Reads the code from standard input (the first line), with a prompt on a terminal.
fn prompt_code() -> Result<String, Failure> {
    let stdin = io::stdin();
    if stdin.is_terminal() {
        terminal::prompt("Enter the code: ");
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|err| Failure::other(format!("cannot read the code: {err}")))?;
    if line.is_empty() {
        return Err(Failure::usage(
            "no code: standard input ended before one was typed",
        ));
    }
    Ok(line)
}

/// Reads one relay answer.
fn read_answer(stream: &mut TcpStream, relay: &Endpoint) -> Result<Answer, Failure> {
    let mut bytes = [0u8; RELAY_MESSAGE_LEN];
    let mut got = 0;
    while got < RELAY_MESSAGE_LEN {
        match stream.read(&mut bytes[got..]) {
            Ok(0) if got == 0 => {
                return Err(Failure::other(format!(
                    "the relay at {relay} closed the connection without an answer"
                )))
            }
            Ok(0) => break,
            Ok(count) => got += count,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(Failure::other(format!(
                    "the relay at {relay} did not answer in time"
                )))
            }
            Err(err) => {
                return Err(Failure::other(format!(
                    "the connection to the relay failed: {err}"
                )))
            }
        }
    }
    Answer::parse(&bytes[..got]).map_err(|error| match error {
        RelayError::NotRelay | RelayError::Short => Failure::other(format!(
            "{relay} answered, but not like an aeschat relay: is an aeschat relay running at \
             that address and port?"
        )),
        other => Failure::other(format!("the relay at {relay} answered wrongly: {other}")),
    })
}

/// What a refusal means for the person at the keyboard.
fn refused(answer: Answer, relay: &Endpoint) -> Failure {
    let why = match answer {
        Answer::NoSuchRoom => "no room has this code's number (a typo, or the room was used \
                               up or expired): check the code, or ask for a new one"
            .to_owned(),
        Answer::RoomFull => {
            "two people are already in this code's room: ask for a new code".to_owned()
        }
        Answer::RateLimited { retry_after } => format!(
            "the relay refuses this address for now (too many rooms or connections): try \
             again in {retry_after} s"
        ),
        Answer::Busy => "the relay is full: try again later".to_owned(),
        Answer::Expired => "nobody joined the room before the relay closed it: start again \
                            for a new code"
            .to_owned(),
        Answer::BadHello => "the relay did not understand this client".to_owned(),
        Answer::UnsupportedVersion { version } => format!(
            "the relay speaks relay version {version}, which this client does not: update one \
             of them"
        ),
        other => format!("the relay answered out of turn ({other:?})"),
    };
    Failure::other(format!("relay {relay}: {why}"))
}
