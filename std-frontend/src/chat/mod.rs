//! `aeschat server`, `aeschat client` and `aeschat passphrase`: the chat's command line, and
//! how its outcomes become exit statuses.
//!
//! Exit status: 0 for a clean end, 1 for any failure, 2 for a usage error, 3 when
//! authentication failed (a wrong password or key, or someone interfering). Every failure is
//! one line on stderr starting with `aeschat: `.

mod allocations;
mod client;
mod code;
mod conversation;
mod editor;
mod events;
mod handshake;
mod interrupt;
mod net;
mod passphrase;
mod queue;
mod rendezvous;
mod secret;
mod server;
mod stack;
mod terminal;
mod wordlist;

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use aeschat_core::session::{Error, SessionError};

use net::Endpoint;
pub use passphrase::{passphrase, PassphraseArgs};

/// Printed when a conversation starts.
const TYPING_HINT: &str =
    "[*] Type a message and press Enter to send it; /quit, end of input (Ctrl-D) or Ctrl-C leaves.";

const SECRET_HELP: &str = "\
The shared secret never goes on the command line. It comes from, in this order:
  --key-file PATH        a pre-shared key from `aeschat genkey` (both sides the same file)
  --password-file PATH   the first line of a file
  AESCHAT_PASSWORD       an environment variable
  a prompt               when standard input is a terminal (the password is not shown)
Nobody can test guesses of the password offline, not even from a recorded conversation; a
server allows at most 120 wrong guesses an hour. Still avoid a password that is among the
first anyone would try: `aeschat passphrase` prints a random one (5 words, 45 bits).";

const CHAT_HELP: &str = "\
Lines typed on standard input are sent as messages (up to 65536 bytes each); messages from the
peer are printed on standard output, with control and invisible characters shown as escapes like
\\x1b or \\u{200b} (and a backslash as \\\\). Status and errors go to standard error. On a
terminal a line editor reads what is typed (arrows, history kept in memory only, whole pastes).
/quit, the end of input (Ctrl-D) or Ctrl-C closes the conversation; a second Ctrl-C exits at once.

Exit status: 0 clean end, 1 failure, 2 usage error, 3 authentication failed (wrong password or
key, or someone interfered with the connection), 130 stopped by Ctrl-C.";

const SERVER_EXAMPLES: &str = "\
Examples:
  # Wait for a client on port 7878 of every interface; type the password when asked:
  aeschat server
  # The password from a file, on one address, for one conversation only:
  aeschat server --password-file chat.pass --listen 192.168.1.10:9000 --once
  # Pre-shared key mode (the client uses the same key file):
  aeschat genkey > chat.key && aeschat server --key-file chat.key";

const CLIENT_EXAMPLES: &str = "\
Examples:
  # Connect to a server on this computer (127.0.0.1:7878); type the password when asked:
  aeschat client
  # Connect to another computer, by name or address:
  aeschat client --connect chat.example.org:7878
  aeschat client --connect '[2001:db8::7]:9000' --password-file chat.pass
  # Meet through a relay (`aeschat relay`) when neither side can accept connections: one
  # side opens a room and prints a code, the other joins with the code:
  aeschat client --relay relay.example.org:7879
  aeschat client --relay relay.example.org:7879 --code 417-amber-coast-...";

fn server_help() -> String {
    format!("{SERVER_EXAMPLES}\n\n{SECRET_HELP}\n\n{CHAT_HELP}")
}

fn client_help() -> String {
    format!("{CLIENT_EXAMPLES}\n\n{SECRET_HELP}\n\n{CHAT_HELP}")
}

/// Options both sides share.
#[derive(clap::Args)]
pub struct CommonArgs {
    /// Read the password from the first line of this file.
    #[arg(long, value_name = "PATH", conflicts_with = "key_file")]
    password_file: Option<PathBuf>,
    /// Use the pre-shared key in this file (made by `aeschat genkey`) instead of a password.
    #[arg(long, value_name = "PATH")]
    key_file: Option<PathBuf>,
    /// Time limit in seconds for connecting and for the whole handshake.
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_timeout)]
    timeout: Duration,
}

/// Arguments of `aeschat server`.
#[derive(clap::Args)]
#[command(after_help = server_help())]
pub struct ServerArgs {
    /// Where to listen: HOST:PORT, [IPv6]:PORT, or a port alone for every interface. Port 0
    /// picks a free port [default: [::]:7878, every interface, IPv6 and IPv4]
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<Endpoint>,
    /// Serve one conversation, then exit with its outcome; a failed authentication before it
    /// also ends the server (exit status 3). Callers that never authenticate (junk, hang-ups,
    /// timeouts) do not count.
    #[arg(long)]
    once: bool,
    /// Stop (exit status 3) after this many failed authentications in a row. Off by default:
    /// whoever can reach the port could otherwise stop the server by guessing.
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..),
    )]
    max_failures: Option<u32>,
    /// After a failed password, refuse that caller's address for this many seconds, doubling
    /// after each further failure from it (at most 300 s). Other addresses are not affected.
    #[arg(long, value_name = "SECS", default_value = "2", value_parser = parse_delay)]
    fail_delay: Duration,
    #[command(flatten)]
    common: CommonArgs,
}

/// Arguments of `aeschat client`.
#[derive(clap::Args)]
#[command(after_help = client_help())]
pub struct ClientArgs {
    /// The server: HOST:PORT, [IPv6]:PORT, or a host alone for port 7878
    /// [default: 127.0.0.1:7878]
    #[arg(long, value_name = "HOST:PORT")]
    connect: Option<Endpoint>,
    /// While nothing listens at the address, try again for this many seconds, so the client
    /// can be started before its server (0: fail at once; Ctrl-C stops waiting).
    #[arg(long, value_name = "SECS", default_value = "120", value_parser = parse_delay)]
    wait: Duration,
    /// Meet the other person at this relay (`aeschat relay`) instead of connecting to them:
    /// HOST:PORT, or a host alone for port 7879. Without --code, opens a room and prints a
    /// new code to pass on; the code is the password (no --password-file or --key-file).
    #[arg(
        long,
        value_name = "HOST:PORT",
        conflicts_with_all = ["connect", "wait", "password_file", "key_file"],
    )]
    relay: Option<String>,
    /// With --relay: join the room of this code (from the person who opened it). Without a
    /// value, the code is read from standard input (a prompt on a terminal).
    #[arg(
        long,
        value_name = "CODE",
        requires = "relay",
        num_args = 0..=1,
        default_missing_value = "",
    )]
    code: Option<String>,
    /// With --relay and no --code: how many words the new code has (9 bits each).
    #[arg(
        long,
        value_name = "N",
        requires = "relay",
        conflicts_with = "code",
        default_value_t = code::DEFAULT_CODE_WORDS,
        value_parser = clap::value_parser!(u8)
            .range(i64::from(code::MIN_CODE_WORDS)..=i64::from(code::MAX_CODE_WORDS)),
    )]
    code_words: u8,
    #[command(flatten)]
    common: CommonArgs,
}

/// Runs `aeschat server`.
pub fn server(args: ServerArgs) -> ExitCode {
    interrupt::install();
    finish(server::run(args))
}

/// Runs `aeschat client`.
pub fn client(args: ClientArgs) -> ExitCode {
    interrupt::install();
    finish(match args.relay {
        Some(_) => rendezvous::run(args),
        None => client::run(args),
    })
}

fn finish(result: Result<(), Failure>) -> ExitCode {
    allocations::report();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // Ctrl-C needs no explanation.
        Err(failure) if failure.status == Status::Interrupted => failure.exit_code(),
        Err(failure) => {
            terminal::error(failure.message());
            failure.exit_code()
        }
    }
}

/// Seconds, possibly fractional, greater than zero.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    match parse_delay(text)? {
        duration if duration.is_zero() => Err("the time limit must be more than 0".to_owned()),
        duration => Ok(duration),
    }
}

/// Seconds, possibly fractional, zero or more.
fn parse_delay(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("\"{text}\" is not a number of seconds"))?;
    // A day is far beyond any sensible setting and keeps the conversion exact enough.
    if !(0.0..=86_400.0).contains(&seconds) {
        return Err("the number of seconds must be between 0 and 86400".to_owned());
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Why a chat command failed, and its exit status.
#[derive(Debug)]
struct Failure {
    status: Status,
    message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Other = 1,
    Usage = 2,
    Authentication = 3,
    /// Ctrl-C, where it stops the program: 128 + SIGINT, as shells report it.
    Interrupted = interrupt::INTERRUPTED_STATUS as isize,
}

impl Failure {
    fn other(message: impl Into<String>) -> Failure {
        Failure {
            status: Status::Other,
            message: message.into(),
        }
    }

    fn usage(message: impl Into<String>) -> Failure {
        Failure {
            status: Status::Usage,
            message: message.into(),
        }
    }

    /// Ctrl-C: nothing is printed.
    fn interrupted() -> Failure {
        Failure {
            status: Status::Interrupted,
            message: String::new(),
        }
    }

    fn authentication(message: impl Into<String>) -> Failure {
        Failure {
            status: Status::Authentication,
            message: message.into(),
        }
    }

    /// One line, without the `aeschat: ` prefix.
    fn message(&self) -> &str {
        &self.message
    }

    fn is_authentication(&self) -> bool {
        self.status == Status::Authentication
    }

    fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.status as u8)
    }
}

impl From<SessionError<io::Error>> for Failure {
    fn from(error: SessionError<io::Error>) -> Failure {
        match error {
            // Only a failed key confirmation means "wrong secret or interference"; a mode
            // mismatch or a refused protocol version is a setup problem, said as such.
            SessionError::Protocol(Error::AuthenticationFailed) => {
                Failure::authentication(error.to_string())
            }
            _ => Failure::other(error.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_delay, parse_timeout};
    use std::time::Duration;

    #[test]
    fn seconds_parse_with_fractions_and_bounds() {
        assert_eq!(parse_timeout("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_timeout("0.5"), Ok(Duration::from_millis(500)));
        assert!(parse_timeout("0").is_err());
        assert_eq!(parse_delay("0"), Ok(Duration::ZERO));
        for bad in ["-1", "NaN", "inf", "1e9", "soon", ""] {
            assert!(parse_delay(bad).is_err(), "{bad}");
        }
    }
}
