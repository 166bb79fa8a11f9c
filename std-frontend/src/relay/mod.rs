//! `aeschat relay`: a rendezvous point for two clients that can only dial out. One opens a
//! room, the other joins it by number, and the relay forwards their bytes both ways until both
//! have closed. It sees the aeschat protocol's frames and nothing inside them, keeps nothing
//! once a pair ends, and logs counts only (no address, no room number, no content).
//! The framing is in `docs/RELAY.md` and `aeschat_core::relay`.

mod event_loop;
mod pipe;
mod sources;
mod stats;

use std::io::Write;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use event_loop::{Relay, Settings};
use sources::SourceLimits;

/// The relay's port when none is given.
pub const DEFAULT_RELAY_PORT: u16 = 7879;

const RELAY_EXAMPLES: &str = "\
Examples:
  # On a machine both people can reach (a small server, a VPS), port 7879 of every interface:
  aeschat relay
  # Then one person opens a room and reads the printed code to the other:
  aeschat client --relay relay.example.org:7879
  # ...who joins with it:
  aeschat client --relay relay.example.org:7879 --code 417-amber-coast-...";

/// Arguments of `aeschat relay`.
#[derive(clap::Args)]
#[command(after_help = RELAY_EXAMPLES)]
pub struct RelayArgs {
    /// Where to listen: HOST:PORT, [IPv6]:PORT, or a port alone for every interface. Port 0
    /// picks a free port [default: 7879 on every interface, IPv6 and IPv4]
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
    /// Rooms one address (an IPv6 /64) may hold open at once, waiting or paired.
    #[arg(long, value_name = "N", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..))]
    max_rooms_per_source: u32,
    /// Connections one address (an IPv6 /64) may open per minute.
    #[arg(long, value_name = "N", default_value_t = 60,
          value_parser = clap::value_parser!(u32).range(1..))]
    connections_per_minute: u32,
    /// Connections at once, in every state; more are told the relay is busy.
    #[arg(long, value_name = "N", default_value_t = 16_000,
          value_parser = clap::value_parser!(u32).range(2..))]
    max_connections: u32,
    /// How long a new connection has to send its hello, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3_600))]
    hello_timeout: u64,
    /// How long a room waits for its second person, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 600,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    room_timeout: u64,
    /// How long a pair may stay silent both ways before the relay cuts it, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 3_600,
          value_parser = clap::value_parser!(u64).range(1..=604_800))]
    idle_timeout: u64,
    /// How often to print a line of counts, in seconds (0: never).
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    stats_every: u64,
}

/// Runs `aeschat relay` until the process is stopped.
pub fn relay(args: RelayArgs) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("aeschat: {message}");
            ExitCode::from(1)
        }
    }
}

fn run(args: RelayArgs) -> Result<(), String> {
    let listener = bind(args.listen.as_deref())?;
    let local = listener
        .local_addr()
        .map_err(|err| format!("cannot read the listening address: {err}"))?;
    // Every connection is a file descriptor: above the process's limit, accepting fails and
    // callers queue unanswered, so the limit caps the connections (a few kept for the rest).
    let mut max_connections = usize::try_from(args.max_connections).unwrap_or(usize::MAX);
    if let Some(files) = open_files_limit() {
        let most = files.saturating_sub(FILES_KEPT);
        if most < max_connections {
            log(&format!(
                "[!] Only {files} open files are allowed (ulimit -n): at most {most} \
                 connections instead of {max_connections}"
            ));
            max_connections = most.max(2);
        }
    }
    let settings = Settings {
        sources: SourceLimits {
            rooms: args.max_rooms_per_source,
            connections_per_minute: args.connections_per_minute,
        },
        max_connections,
        hello_timeout: Duration::from_secs(args.hello_timeout),
        room_timeout: Duration::from_secs(args.room_timeout),
        idle_timeout: Duration::from_secs(args.idle_timeout),
    };
    let mut relay = Relay::new(listener, settings)
        .map_err(|err| format!("cannot start the event loop: {err}"))?;
    log(&format!("[*] Relay listening on {local}"));
    log(&format!(
        "[*] Limits: {} rooms and {} connections a minute per address, {} connections in all; \
         rooms wait {} s, silent pairs are cut after {} s. Logged: counts only.",
        args.max_rooms_per_source,
        args.connections_per_minute,
        max_connections,
        args.room_timeout,
        args.idle_timeout
    ));
    let every = Duration::from_secs(args.stats_every);
    let mut last = Instant::now();
    relay
        .run(|relay| {
            if every.is_zero() || last.elapsed() < every {
                return;
            }
            last = Instant::now();
            let (waiting, pairs, connections) = relay.counts();
            log(&format!(
                "[*] {waiting} rooms waiting, {pairs} pairs forwarding ({} KiB of buffers), \
                 {connections} connections open; since start: {}",
                relay.buffered_capacity() / 1024,
                relay.stats
            ));
        })
        .map_err(|err| format!("the relay stopped: {err}"))
}

/// File descriptors kept for the listener, the event loop, the standard streams and a margin.
const FILES_KEPT: usize = 32;

/// The soft limit on open files, from `/proc/self/limits` (Linux); `None` where there is no
/// such file or no limit.
fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Prints one line on stderr in one write, so that a reader never sees half of it. A failed
/// write (a closed stderr) is no reason to stop relaying.
fn log(line: &str) {
    let _ = std::io::stderr().write_all(format!("{line}\n").as_bytes());
}

/// Binds the listening socket: a port alone (or nothing) means every interface, IPv6 and IPv4
/// together where the system allows, else IPv4.
fn bind(listen: Option<&str>) -> Result<TcpListener, String> {
    let candidates: Vec<SocketAddr> = match listen {
        None => every_interface(DEFAULT_RELAY_PORT),
        Some(port) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            let port: u16 = port
                .parse()
                .map_err(|_| format!("port \"{port}\" is not a port number (0 to 65535)"))?;
            every_interface(port)
        }
        Some(text) => text
            .to_socket_addrs()
            .map_err(|err| format!("cannot use \"{text}\" as HOST:PORT: {err}"))?
            .collect(),
    };
    let mut last_error = format!("\"{}\" has no address to use", listen.unwrap_or(""));
    for address in candidates {
        match TcpListener::bind(address) {
            Ok(listener) => return Ok(listener),
            Err(err) => last_error = format!("cannot listen on {address}: {err}"),
        }
    }
    Err(last_error)
}

fn every_interface(port: u16) -> Vec<SocketAddr> {
    vec![
        SocketAddr::from(([0u16; 8], port)),
        SocketAddr::from(([0u8; 4], port)),
    ]
}
