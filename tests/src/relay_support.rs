//! Running a real `aeschat relay`, clients that speak its framing by hand, and a proxy in
//! front of it that records what passes and can flip or drop bytes on the way to a client.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use aeschat_core::relay::{Answer, Hello, RELAY_MESSAGE_LEN};
use socket2::{Domain, Socket, Type};

use crate::chat_support::{Peer, PATIENCE};

/// `aeschat relay --listen 127.0.0.1:0` plus `extra`; returns it once it listens, with its
/// address.
pub fn start_relay(extra: &[&str]) -> (Peer, String) {
    let mut args = vec!["relay", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let relay = Peer::spawn("relay", &args, &[]);
    let line = relay.wait_stderr("Relay listening on ");
    let address = line
        .split("Relay listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("an address follows `Relay listening on`")
        .to_owned();
    (relay, address)
}

/// `aeschat client --relay ADDRESS` (opens a room), plus `extra`.
pub fn start_opener(name: &str, relay: &str, extra: &[&str]) -> Peer {
    let mut args = vec!["client", "--relay", relay];
    args.extend_from_slice(extra);
    Peer::spawn(name, &args, &[])
}

/// `aeschat client --relay ADDRESS --code CODE`.
pub fn start_joiner(name: &str, relay: &str, code: &str) -> Peer {
    let args = ["client", "--relay", relay, "--code", code];
    Peer::spawn(name, &args, &[])
}

/// The code an opener printed.
pub fn printed_code(opener: &Peer) -> String {
    let line = opener.wait_stderr("[*] Your code: ");
    line.split("[*] Your code: ")
        .nth(1)
        .expect("checked above")
        .trim()
        .to_owned()
}

/// Connects to the relay with a deadline on every read and write.
pub fn dial(relay: &str) -> TcpStream {
    let stream = TcpStream::connect(relay).expect("cannot connect to the relay");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.set_write_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// Connects to the relay from the loopback address 127.0.0.`last`, as another source.
pub fn dial_from(last: u8, relay: &str) -> TcpStream {
    let relay: SocketAddr = relay.parse().expect("a loopback address");
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("cannot make a socket");
    let source = SocketAddr::from((Ipv4Addr::new(127, 0, 0, last), 0));
    socket
        .bind(&source.into())
        .expect("cannot bind a loopback source address");
    socket
        .connect_timeout(&relay.into(), PATIENCE)
        .expect("cannot connect to the relay");
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.set_write_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// Reads one relay answer; `None` if the relay closed the connection first.
pub fn read_answer(stream: &mut TcpStream) -> Option<Answer> {
    let mut bytes = [0u8; RELAY_MESSAGE_LEN];
    stream.read_exact(&mut bytes).ok()?;
    Some(Answer::parse(&bytes).expect("the relay answered with a malformed message"))
}

/// Sends `hello` on a new connection and reads the answer.
pub fn say_hello(relay: &str, hello: Hello) -> (TcpStream, Option<Answer>) {
    let mut stream = dial(relay);
    stream.write_all(&hello.to_bytes()).unwrap();
    let answer = read_answer(&mut stream);
    (stream, answer)
}

/// Opens a room by hand; returns the connection and the room number.
pub fn open_room(relay: &str) -> (TcpStream, u32) {
    match say_hello(relay, Hello::Open) {
        (stream, Some(Answer::Waiting { room })) => (stream, room),
        (_, other) => panic!("opening a room was answered {other:?}"),
    }
}

/// Opens a room and joins it by hand; returns the opener's and the joiner's connections, each
/// past its `Paired` answer.
pub fn raw_pair(relay: &str) -> (TcpStream, TcpStream, u32) {
    let (mut opener, room) = open_room(relay);
    let (joiner, answer) = say_hello(relay, Hello::Join { room });
    assert_eq!(answer, Some(Answer::PairedAsClient { room }));
    assert_eq!(
        read_answer(&mut opener),
        Some(Answer::PairedAsServer { room })
    );
    (opener, joiner, room)
}

/// The relay process's resident memory in KiB.
pub fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("no /proc");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .expect("no VmRSS line")
}

/// What the proxy does to the bytes going from the relay to its client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tamper {
    /// Flip one bit of the byte at the offset.
    Flip,
    /// Leave out 16 bytes from the offset (or to the end of the chunk they arrive in).
    Drop,
}

/// A proxy between one client and the relay: what it forwards each way is recorded, and it can
/// be told to tamper with the stream towards the client at a chosen offset.
pub struct Proxy {
    pub address: String,
    /// Bytes the client sent, and bytes it was sent.
    pub recorded: Arc<Mutex<(Vec<u8>, Vec<u8>)>>,
    tamper: Arc<Mutex<Option<(Tamper, usize)>>>,
}

impl Proxy {
    /// Listens on loopback and, for the first connection, dials `relay`.
    pub fn start(relay: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let recorded = Arc::new(Mutex::new((Vec::new(), Vec::new())));
        let tamper = Arc::new(Mutex::new(None));
        let relay = relay.to_owned();
        let (record, tampering) = (Arc::clone(&recorded), Arc::clone(&tamper));
        thread::spawn(move || {
            let Ok((client, _)) = listener.accept() else {
                return;
            };
            let upstream = TcpStream::connect(&relay).unwrap();
            let (client2, upstream2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
            let up_record = Arc::clone(&record);
            thread::spawn(move || {
                copy(client2, upstream2, |chunk| {
                    up_record.lock().unwrap().0.extend_from_slice(chunk);
                    chunk.to_vec()
                })
            });
            // Offset in the stream towards the client of the chunk's first byte (as sent by
            // the relay, before any tampering).
            let mut passed = 0usize;
            copy(upstream, client, |chunk| {
                let mut chunk = chunk.to_vec();
                let length = chunk.len();
                let mut planned = tampering.lock().unwrap();
                if let Some((how, offset)) = *planned {
                    if (passed..passed + length).contains(&offset) {
                        let at = offset - passed;
                        match how {
                            Tamper::Flip => chunk[at] ^= 0x10,
                            Tamper::Drop => {
                                chunk.drain(at..(at + 16).min(length));
                            }
                        }
                        *planned = None;
                    }
                }
                passed += length;
                record.lock().unwrap().1.extend_from_slice(&chunk);
                chunk
            });
        });
        Proxy {
            address,
            recorded,
            tamper,
        }
    }

    /// Tampers with the stream towards the client at `offset` (counted from its first byte).
    pub fn tamper_at(&self, how: Tamper, offset: usize) {
        *self.tamper.lock().unwrap() = Some((how, offset));
    }

    /// The bytes sent towards the client so far.
    pub fn sent_to_client(&self) -> usize {
        self.recorded.lock().unwrap().1.len()
    }

    /// Everything recorded, both ways, in one buffer.
    pub fn all_bytes(&self) -> Vec<u8> {
        let recorded = self.recorded.lock().unwrap();
        [recorded.0.clone(), recorded.1.clone()].concat()
    }
}

/// Copies `from` to `to` through `change` until either ends, then ends `to`'s direction.
fn copy(mut from: TcpStream, mut to: TcpStream, mut change: impl FnMut(&[u8]) -> Vec<u8>) {
    let mut buffer = [0u8; 64 * 1024];
    loop {
        match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(count) => {
                if to.write_all(&change(&buffer[..count])).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// A short pause for things that have no event to wait for (a process that must *not* do
/// something); never used to judge speed.
pub fn settle() {
    thread::sleep(Duration::from_millis(300));
}
