//! Load on `aeschat relay`, side by side with a minimal thread-per-connection forwarder that
//! speaks the same framing: many waiting rooms, then many pairs forwarding at once, with the
//! server's memory (VmRSS, VmHWM), threads and CPU time read from /proc.
//!
//! ```sh
//! cargo build --release -p aeschat
//! cd bench && cargo run --release --example relay_load -- [ROOMS [PAIRS [SECONDS]]]
//! ```
//!
//! Defaults: 10,000 waiting rooms, 1,000 pairs, 10 s of traffic. The load generator runs one
//! thread per pair, which writes 16 KiB to the joiner's end and reads it back at the opener's,
//! over and over: every byte crosses the server once. Needs `ulimit -n` above ROOMS + 2 PAIRS
//! plus a few, in this process and in the server.
//!
//! The baseline (`relay_load baseline`, run as a child process) is what a thread-per-connection
//! relay amounts to at its barest: a thread per connection blocked reading, `io::copy` both ways
//! once paired, 64 KiB stacks, no limits, no timeouts, no per-source accounting.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use aeschat_core::relay::{Answer, Hello, RELAY_MESSAGE_LEN};

const STACK: usize = 64 * 1024;
const CHUNK: usize = 16 * 1024;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("baseline") {
        baseline();
        return;
    }
    let number = |index: usize, default: u64| {
        args.get(index)
            .map(|text| text.parse().expect("a number"))
            .unwrap_or(default)
    };
    let rooms = number(0, 10_000) as usize;
    let pairs = number(1, 1_000) as usize;
    let seconds = number(2, 10);
    let aeschat = std::env::var_os("AESCHAT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/aeschat")
        });
    let mut rows = Vec::new();
    let mut relay = Command::new(&aeschat);
    relay.args([
        "relay",
        "--listen",
        "127.0.0.1:0",
        "--max-rooms-per-source",
        "1000000",
        "--connections-per-minute",
        "100000000",
        "--max-connections",
        "19000",
        "--stats-every",
        "0",
    ]);
    rows.push(("aeschat relay (mio event loop, 1 thread)", run(relay, rooms, pairs, seconds)));
    let mut baseline = Command::new(std::env::current_exe().expect("own path"));
    baseline.arg("baseline");
    rows.push((
        "baseline: thread per connection, io::copy",
        run(baseline, rooms, pairs, seconds),
    ));
    println!(
        "| Server | {rooms} rooms opened in | RSS with {rooms} rooms | + {pairs} pairs: RSS \
         | peak RSS | threads | forwarded, all pairs | server CPU per GiB |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (name, figures) in rows {
        println!("| {name} | {figures} |");
    }
}

/// Starts the server, loads it, and returns the row of figures.
fn run(mut server: Command, rooms: usize, pairs: usize, seconds: u64) -> String {
    let mut child = Server(
        server
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("cannot start the server"),
    );
    let address = listening_address(&mut child.0);
    let pid = child.0.id();

    let started = Instant::now();
    let waiting: Vec<TcpStream> = (0..rooms).map(|_| open_room(&address).0).collect();
    let open_time = started.elapsed();
    eprintln!("{rooms} rooms open in {:.2} s", open_time.as_secs_f64());
    thread::sleep(Duration::from_millis(500));
    let rss_rooms = status_kib(pid, "VmRSS:");

    let stop = Arc::new(AtomicBool::new(false));
    let forwarded = Arc::new(AtomicU64::new(0));
    let ready = Arc::new(AtomicU32::new(0));
    let go = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..pairs {
        let (opener, joiner) = pair(&address);
        let (stop, forwarded, ready, go) =
            (stop.clone(), forwarded.clone(), ready.clone(), go.clone());
        workers.push(
            thread::Builder::new()
                .stack_size(STACK)
                .spawn(move || {
                    // All pairs are made before any traffic starts.
                    ready.fetch_add(1, Ordering::SeqCst);
                    while !go.load(Ordering::SeqCst) {
                        thread::park();
                    }
                    traffic(opener, joiner, &stop, &forwarded)
                })
                .expect("cannot start a load thread"),
        );
    }
    while (ready.load(Ordering::SeqCst) as usize) < pairs {
        thread::sleep(Duration::from_millis(10));
    }
    go.store(true, Ordering::SeqCst);
    for worker in &workers {
        worker.thread().unpark();
    }
    eprintln!("{pairs} pairs forwarding");
    let cpu_before = cpu_seconds(pid);
    let bytes_before = forwarded.load(Ordering::SeqCst);
    let traffic_started = Instant::now();
    thread::sleep(Duration::from_secs(seconds));
    let bytes = forwarded.load(Ordering::SeqCst) - bytes_before;
    let elapsed = traffic_started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid) - cpu_before;
    let rss_pairs = status_kib(pid, "VmRSS:");
    let peak = status_kib(pid, "VmHWM:");
    let threads = status_kib(pid, "Threads:");
    stop.store(true, Ordering::SeqCst);
    for worker in workers {
        let _ = worker.join();
    }
    drop(waiting);
    drop(child);
    let gib = bytes as f64 / f64::from(1u32 << 30);
    format!(
        "{:.2} s | {:.1} MiB | {:.1} MiB | {:.1} MiB | {threads} | {:.0} MiB/s | {:.2} s",
        open_time.as_secs_f64(),
        rss_rooms as f64 / 1024.0,
        rss_pairs as f64 / 1024.0,
        peak as f64 / 1024.0,
        bytes as f64 / elapsed / f64::from(1u32 << 20),
        if gib > 0.0 { cpu / gib } else { f64::NAN },
    )
}

/// The server process, stopped when dropped (also when a load step panics).
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One pair's traffic: 16 KiB in at the joiner, out at the opener, until told to stop.
fn traffic(
    mut opener: TcpStream,
    mut joiner: TcpStream,
    stop: &AtomicBool,
    forwarded: &AtomicU64,
) {
    let out = [0x5au8; CHUNK];
    let mut back = [0u8; CHUNK];
    while !stop.load(Ordering::Relaxed) {
        if joiner.write_all(&out).is_err() || opener.read_exact(&mut back).is_err() {
            return;
        }
        forwarded.fetch_add(CHUNK as u64, Ordering::Relaxed);
    }
    let _ = joiner.shutdown(Shutdown::Both);
    let _ = opener.shutdown(Shutdown::Both);
}

fn listening_address(child: &mut Child) -> String {
    let stderr = child.stderr.take().expect("piped");
    let mut lines = BufReader::new(stderr).lines();
    let line = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|line| line.contains("listening on "))
        .expect("the server printed its address");
    // Keep reading (and dropping) the rest, so the server never blocks on a full pipe.
    thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            eprintln!("server: {line}");
        }
    });
    line.rsplit("listening on ")
        .next()
        .and_then(|rest| rest.split_whitespace().next())
        .expect("an address")
        .to_owned()
}

fn answer(stream: &mut TcpStream) -> Answer {
    let mut bytes = [0u8; RELAY_MESSAGE_LEN];
    stream.read_exact(&mut bytes).expect("an answer");
    Answer::parse(&bytes).expect("a relay answer")
}

fn open_room(address: &str) -> (TcpStream, u32) {
    let mut stream = TcpStream::connect(address).expect("cannot connect");
    stream.write_all(&Hello::Open.to_bytes()).unwrap();
    match answer(&mut stream) {
        Answer::Waiting { room } => (stream, room),
        other => panic!("opening a room was answered {other:?}"),
    }
}

fn pair(address: &str) -> (TcpStream, TcpStream) {
    let (mut opener, room) = open_room(address);
    let mut joiner = TcpStream::connect(address).expect("cannot connect");
    joiner.write_all(&Hello::Join { room }.to_bytes()).unwrap();
    assert_eq!(answer(&mut joiner), Answer::PairedAsClient { room });
    assert_eq!(answer(&mut opener), Answer::PairedAsServer { room });
    (opener, joiner)
}

/// A `/proc/PID/status` figure (kB, or a count).
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(field))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|number| number.parse().ok())
        })
        .unwrap_or(0)
}

/// User plus system CPU time of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |index: usize| -> f64 {
        fields
            .get(index)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// The baseline server: a thread per connection, blocked reading; paired connections copy to
/// each other with `io::copy`. Streams are shared through `Arc` rather than `try_clone`, so a
/// connection costs one file descriptor, as in the relay.
fn baseline() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("cannot listen");
    eprintln!("baseline listening on {}", listener.local_addr().unwrap());
    let rooms: Arc<Rooms> = Arc::default();
    let next_room = Arc::new(AtomicU32::new(1));
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => Arc::new(stream),
            Err(err) => {
                eprintln!("baseline: cannot accept: {err}");
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let (rooms, next_room) = (rooms.clone(), next_room.clone());
        if let Err(err) = thread::Builder::new()
            .stack_size(STACK)
            .spawn(move || serve(stream, &rooms, &next_room))
        {
            eprintln!("baseline: cannot start a thread: {err}");
        }
    }
}

/// Waiting openers by room number, and joiners by room number with the top bit set (for the
/// opener's thread to take).
type Rooms = Mutex<HashMap<u32, Arc<TcpStream>>>;

fn serve(stream: Arc<TcpStream>, rooms: &Rooms, next_room: &AtomicU32) {
    let mut hello = [0u8; RELAY_MESSAGE_LEN];
    if (&*stream).read_exact(&mut hello).is_err() {
        return;
    }
    match Hello::parse(&hello) {
        Ok(Hello::Open) => {
            let room = next_room.fetch_add(1, Ordering::SeqCst);
            rooms.lock().unwrap().insert(room, stream.clone());
            let _ = (&*stream).write_all(&Answer::Waiting { room }.to_bytes());
            // This thread waits in a read, as a thread-per-connection relay must to notice a
            // hang-up; once paired, it forwards this side's bytes.
            let mut first = [0u8; 1];
            let partner = loop {
                match stream.peek(&mut first) {
                    Ok(0) | Err(_) => {
                        rooms.lock().unwrap().remove(&room);
                        return;
                    }
                    Ok(_) => {}
                }
                if let Some(partner) = rooms.lock().unwrap().remove(&(room | 1 << 31)) {
                    break partner;
                }
                thread::sleep(Duration::from_millis(1));
            };
            let _ = io::copy(&mut &*stream, &mut &*partner);
            let _ = partner.shutdown(Shutdown::Write);
        }
        Ok(Hello::Join { room }) => {
            let Some(opener) = rooms.lock().unwrap().remove(&room) else {
                let _ = (&*stream).write_all(&Answer::NoSuchRoom.to_bytes());
                return;
            };
            rooms.lock().unwrap().insert(room | 1 << 31, stream.clone());
            let _ = (&*opener).write_all(&Answer::PairedAsServer { room }.to_bytes());
            let _ = (&*stream).write_all(&Answer::PairedAsClient { room }.to_bytes());
            let _ = io::copy(&mut &*stream, &mut &*opener);
            let _ = opener.shutdown(Shutdown::Write);
        }
        _ => {}
    }
}
