//! Secrets: the password and keys never appear in a process's command line, in any output or
//! error text, and are wiped from memory once no longer needed.
//!
//! Memory is read the way a debugger would, through `/proc/<pid>/maps` and `/proc/<pid>/mem`
//! (allowed for a child of the test process), while the processes run: no core dump needed.
//! Every scan that must find nothing is paired with one that must find something (the secret
//! the server keeps by design, or the live session key), so a scanner that sees nothing cannot
//! pass for one that finds nothing. Derived values (the binary's CPace scalar, `K`, the ISK, the
//! HKDF keys, the MAC keys' keyed SHA-256 states; docs/PROTOCOL.md) are computed
//! independently of aeschat, with the plain-Python CPace of `vectors/sessions/`, Python's
//! hashlib and hmac and a SHA-256 compression function checked against hashlib, from the
//! handshake on the wire and the random bytes the binary drew (`random_log`: observed through
//! a preloaded `getrandom`, not changed), and checked against the binary's share and both
//! Finished MACs on the wire, so each needle is the value the binary really computed.

use aeschat_tests::chat_support;
use aeschat_tests::cli_support;
use aeschat_tests::load_support;
use aeschat_tests::random_log::RandomLog;

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use aeschat_core::fernet::Key;
use aeschat_core::session::{Role, Secret};
use chat_support::*;
use cli_support::{aeschat_binary, run, XorShift};
use load_support::*;

/// The password of these tests: no 8 bytes of it in a row occur anywhere by chance (unlike
/// the words of `chat_support::PASSWORD`), so finding any 8 of them means finding the password.
const SECRET: &str = "Qz7-lumen-PARSEC-8xw-ortolan-vk3";

/// A second password, for the side that gets it wrong.
const OTHER_SECRET: &str = "Vb2-quasar-MINNOW-4tj-halberd-zp9";

/// How many bytes in a row of a password count as a trace of it.
const TRACE: usize = 8;

/// What to look for, under a name for the report.
struct Needle {
    name: String,
    bytes: Vec<u8>,
}

fn needle(name: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Needle {
    Needle {
        name: name.into(),
        bytes: bytes.into(),
    }
}

/// Every `TRACE` bytes in a row of `password`.
fn password_traces(label: &str, password: &str) -> Vec<Needle> {
    password
        .as_bytes()
        .windows(TRACE)
        .enumerate()
        .map(|(at, window)| needle(format!("{label}[{at}..{}]", at + TRACE), window))
        .collect()
}

/// A key as bytes (whole and each half) and as text (whole and every 12 characters in a row).
fn key_traces(label: &str, key: &Key) -> Vec<Needle> {
    let text = key.to_text();
    let bytes = key_bytes(key);
    let mut needles = vec![
        needle(format!("{label} bytes"), bytes.to_vec()),
        needle(format!("{label} signing half"), bytes[..16].to_vec()),
        needle(format!("{label} encryption half"), bytes[16..].to_vec()),
    ];
    needles.extend(
        text.as_bytes()
            .windows(12)
            .enumerate()
            .map(|(at, window)| needle(format!("{label} text[{at}..]"), window)),
    );
    needles
}

/// The 32 bytes of a key, decoded from its text by hand (the core keeps them private).
fn key_bytes(key: &Key) -> [u8; 32] {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let text = key.to_text();
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for &c in text.as_bytes().iter().take_while(|&&c| c != b'=') {
        let value = ALPHABET.iter().position(|&a| a == c).expect("base64url") as u32;
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out.try_into().expect("32 bytes")
}

/// Where `needles` occur in `haystack`, as (needle name, offset).
fn find_all(haystack: &[u8], needles: &[Needle]) -> Vec<(String, usize)> {
    // Only positions whose byte starts some needle are compared: memory is mostly zeros.
    let mut starts = [false; 256];
    for needle in needles {
        starts[usize::from(needle.bytes[0])] = true;
    }
    let mut found = Vec::new();
    for (at, &byte) in haystack.iter().enumerate() {
        if !starts[usize::from(byte)] {
            continue;
        }
        for needle in needles {
            if haystack[at..].starts_with(&needle.bytes) {
                found.push((needle.name.clone(), at));
            }
        }
    }
    found
}

/// What a memory scan read and found.
struct Scan {
    bytes_read: u64,
    regions: usize,
    /// (needle, address, mapping)
    hits: Vec<(String, u64, String)>,
}

impl Scan {
    fn count(&self, name_prefix: &str) -> usize {
        self.hits
            .iter()
            .filter(|(name, ..)| name.starts_with(name_prefix))
            .count()
    }

    fn report(&self) -> String {
        let mut lines: Vec<String> = self
            .hits
            .iter()
            .take(20)
            .map(|(name, address, mapping)| format!("  {name} at {address:#x} in {mapping}"))
            .collect();
        if self.hits.len() > 20 {
            lines.push(format!("  ... {} in all", self.hits.len()));
        }
        format!(
            "{} hits in {} regions, {} KiB read:\n{}",
            self.hits.len(),
            self.regions,
            self.bytes_read / 1024,
            lines.join("\n")
        )
    }
}

/// Reads every readable mapping of process `pid` and looks for `needles`.
fn scan_memory(pid: u32, needles: &[Needle]) -> Scan {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .unwrap_or_else(|err| panic!("cannot read /proc/{pid}/maps: {err}"));
    let mut mem = File::open(format!("/proc/{pid}/mem"))
        .unwrap_or_else(|err| panic!("cannot open /proc/{pid}/mem: {err}"));
    let mut scan = Scan {
        bytes_read: 0,
        regions: 0,
        hits: Vec::new(),
    };
    for line in maps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(range), Some(perms)) = (fields.first(), fields.get(1)) else {
            continue;
        };
        let mapping = fields.get(5).copied().unwrap_or("[anonymous]").to_owned();
        if !perms.starts_with('r') || mapping.starts_with("[vvar") || mapping == "[vsyscall]" {
            continue;
        }
        let (start, end) = range.split_once('-').expect("a range");
        let start = u64::from_str_radix(start, 16).expect("hex");
        let end = u64::from_str_radix(end, 16).expect("hex");
        let mut region = vec![0u8; (end - start) as usize];
        let read = mem
            .seek(SeekFrom::Start(start))
            .and_then(|_| mem.read_exact(&mut region));
        if read.is_err() {
            continue;
        }
        scan.regions += 1;
        scan.bytes_read += end - start;
        for (name, at) in find_all(&region, needles) {
            scan.hits.push((name, start + at as u64, mapping.clone()));
        }
    }
    assert!(
        scan.regions > 5 && scan.bytes_read > 1 << 20,
        "the scan of process {pid} read too little: {}",
        scan.report()
    );
    scan
}

/// The arguments a process was started with, as bytes.
fn cmdline(pid: u32) -> Vec<u8> {
    std::fs::read(format!("/proc/{pid}/cmdline")).expect("cannot read a command line")
}

fn environ(pid: u32) -> Vec<u8> {
    std::fs::read(format!("/proc/{pid}/environ")).expect("cannot read an environment")
}

/// Scratch files: the two passwords and a key.
struct SecretFiles {
    files: Files,
    password_file: String,
    other_password_file: String,
    key: Key,
    key_file: String,
    other_key: Key,
    other_key_file: String,
}

impl SecretFiles {
    fn new(label: &str) -> SecretFiles {
        let files = Files::new(label);
        let mut random = XorShift::new(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |elapsed| elapsed.as_nanos() as u64),
        );
        let key = random.key();
        let other_key = random.key();
        SecretFiles {
            password_file: files.password("secret.pass", SECRET),
            other_password_file: files.password("other.pass", OTHER_SECRET),
            key_file: files.dir.key_file("chat.key", &key),
            other_key_file: files.dir.key_file("other.key", &other_key),
            key,
            other_key,
            files,
        }
    }

    /// Every trace of every secret these files hold.
    fn all_traces(&self) -> Vec<Needle> {
        let mut needles = password_traces("password", SECRET);
        needles.extend(password_traces("other password", OTHER_SECRET));
        needles.extend(key_traces("key", &self.key));
        needles.extend(key_traces("other key", &self.other_key));
        needles
    }
}

fn server_args<'a>(secret_args: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["server", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(secret_args);
    args.extend_from_slice(extra);
    args
}

fn client_args<'a>(address: &'a str, secret_args: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["client", "--connect", address];
    args.extend_from_slice(secret_args);
    args
}

/// A server and a client with the given secret arguments, in a conversation in which each
/// side has sent and shown one message. Returns them with their process ids.
fn talking_pair(
    server_secret: &[&str],
    client_secret: &[&str],
    client_env: &[(&str, &str)],
) -> ((Peer, u32), (Peer, u32)) {
    let server = Peer::spawn("server", &server_args(server_secret, &["--once"]), &[]);
    let address = server.listening_address();
    let server_pid = pid_of(&server_args(server_secret, &["--once"]));
    let mut server = server;
    let args = client_args(&address, client_secret);
    let mut client = Peer::spawn("client", &args, client_env);
    let client_pid = pid_of(&args);
    client.wait_stderr("[+] Connected to the server");
    server.wait_stderr("[+] Client connected");
    client.type_line("hello from the client");
    server.wait_stdout_line("[Client]: hello from the client");
    server.type_line("hello from the server");
    client.wait_stdout_line("[Server]: hello from the server");
    ((server, server_pid), (client, client_pid))
}

fn end_conversation(server: &mut Peer, client: &mut Peer) {
    client.type_line("/quit");
    client.assert_exit(0);
    server.assert_exit(0);
}

#[test]
fn the_password_is_never_on_a_command_line_and_in_an_environment_only_when_put_there() {
    let files = SecretFiles::new("secrets-cmdline");
    // The server reads a file; the client takes AESCHAT_PASSWORD, the user's choice.
    let ((mut server, server_pid), (mut client, client_pid)) = talking_pair(
        &["--password-file", &files.password_file],
        &[],
        &[("AESCHAT_PASSWORD", SECRET)],
    );
    let traces = password_traces("password", SECRET);
    for (name, pid) in [("server", server_pid), ("client", client_pid)] {
        let found = find_all(&cmdline(pid), &traces);
        assert!(found.is_empty(), "the {name}'s command line: {found:?}");
    }
    let found = find_all(&environ(server_pid), &traces);
    assert!(found.is_empty(), "the server's environment: {found:?}");
    // A documented limit (README, docs/SECURITY.md): the variable is readable by the same
    // user and root for as long as the process runs.
    let variable = format!("AESCHAT_PASSWORD={SECRET}");
    assert!(
        !find_all(&environ(client_pid), &[needle("variable", variable)]).is_empty(),
        "the client's environment no longer holds AESCHAT_PASSWORD: update docs/SECURITY.md"
    );
    end_conversation(&mut server, &mut client);
}

#[test]
fn the_client_wipes_a_password_from_a_file_after_the_handshake() {
    let files = SecretFiles::new("secrets-memory");
    let ((mut server, server_pid), (mut client, client_pid)) = talking_pair(
        &["--password-file", &files.password_file],
        &["--password-file", &files.password_file],
        &[],
    );
    let traces = password_traces("password", SECRET);
    let in_client = scan_memory(client_pid, &traces);
    // The server keeps the password for its whole life, by design: every conversation derives
    // new keys from it. Finding it there shows the scan can find it.
    let in_server = scan_memory(server_pid, &traces);
    eprintln!(
        "figures: client {} KiB scanned, server {} KiB; password traces: client {}, server {}",
        in_client.bytes_read / 1024,
        in_server.bytes_read / 1024,
        in_client.hits.len(),
        in_server.hits.len()
    );
    assert!(
        in_server.count("password[0..8]") >= 1,
        "the scan did not find the password the server keeps: {}",
        in_server.report()
    );
    assert!(
        in_client.hits.is_empty(),
        "the client still holds the password after the handshake: {}",
        in_client.report()
    );
    end_conversation(&mut server, &mut client);
}

#[test]
fn the_client_wipes_a_pre_shared_key_after_the_handshake() {
    let files = SecretFiles::new("secrets-key-memory");
    let ((mut server, server_pid), (mut client, client_pid)) = talking_pair(
        &["--key-file", &files.key_file],
        &["--key-file", &files.key_file],
        &[],
    );
    let traces = key_traces("key", &files.key);
    let in_client = scan_memory(client_pid, &traces);
    let in_server = scan_memory(server_pid, &traces);
    eprintln!(
        "figures: key traces: client {}, server {}",
        in_client.hits.len(),
        in_server.hits.len()
    );
    assert!(
        in_server.count("key bytes") >= 1,
        "the scan did not find the key the server keeps: {}",
        in_server.report()
    );
    assert!(
        in_client.hits.is_empty(),
        "the client still holds the pre-shared key after the handshake: {}",
        in_client.report()
    );
    end_conversation(&mut server, &mut client);
}

/// The secrets of one protocol-2 session (docs/PROTOCOL.md section 4), computed by
/// Python independently of aeschat: CPace with `vectors/sessions/cpace_ristretto.py` (plain
/// Python from RFC 9496 and the draft, checked against the draft's vectors), HKDF with hashlib
/// and hmac. The input is the handshake's frames and the scalar seed the real binary drew (from
/// its `RandomLog`). Nothing is taken on trust: the script checks that the seed gives the
/// binary's share on the wire, and that the keys it derives reproduce both Finished MACs on the
/// wire, so every value below is exactly what the binary computed.
struct Derived {
    values: Vec<(String, Vec<u8>)>,
}

/// The Python of `Derived` and `binary_scalar`.
const SCRIPT: &str = r#"
import hashlib, hmac, sys

sys.path.insert(0, sys.argv[1])
import cpace_ristretto as cp

# SHA-256's compression function (FIPS 180-4, 6.2.2), constants computed exactly from primes.
def icbrt(n):
    low, high = 0, 1 << (n.bit_length() // 3 + 1)
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if mid ** 3 <= n else (low, mid - 1)
    return low
PRIMES = [p for p in range(2, 312) if all(p % d for d in range(2, p))]
K = [icbrt(p << 96) & 0xFFFFFFFF for p in PRIMES[:64]]
IV = [__import__("math").isqrt(p << 64) & 0xFFFFFFFF for p in PRIMES[:8]]
def rotr(x, n):
    return ((x >> n) | (x << (32 - n))) & 0xFFFFFFFF
def compress(state, block):
    w = [int.from_bytes(block[i:i + 4], "big") for i in range(0, 64, 4)]
    for i in range(16, 64):
        s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3)
        s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10)
        w.append((w[i - 16] + s0 + w[i - 7] + s1) & 0xFFFFFFFF)
    a, b, c, d, e, f, g, h = state
    for i in range(64):
        t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]
        t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))
        a, b, c, d, e, f, g, h = (t1 + t2) & 0xFFFFFFFF, a, b, c, (d + t1) & 0xFFFFFFFF, e, f, g
    return [(x + y) & 0xFFFFFFFF for x, y in zip(state, [a, b, c, d, e, f, g, h])]
# The function checked against hashlib: SHA-256 of the empty message is one padding block.
empty = b"".join(x.to_bytes(4, "big") for x in compress(IV, b"\x80" + b"\0" * 63))
assert empty == hashlib.sha256(b"").digest(), "compress() is wrong"

def mac_key(name, key):
    # What an HMAC key becomes: the key XORed into the inner and outer pad blocks (the key's
    # bytes of those blocks are printed), and the SHA-256 states after each block, u32s in
    # memory order, which is what a MAC key is kept as.
    for pad_name, pad in [("inner", 0x36), ("outer", 0x5c)]:
        block = bytes(b ^ pad for b in key.ljust(64, b"\0"))
        print(name + "_pad_" + pad_name, block[:len(key)].hex())
        state = compress(IV, block)
        print(name + "_mac_" + pad_name, b"".join(word.to_bytes(4, "little") for word in state).hex())

h = bytes.fromhex
what, args = sys.argv[2], sys.argv[3:]
ch, sh = h(args[0]), h(args[1])
# Section 4: sid = the two nonces; CI from the mode byte (ClientHello body offset 8).
sid = ch[14:46] + sh[14:46]
ci = cp.lv_cat(b"aeschat/2", ch[13:14], b"server", b"client")
ya = sh[58:90]

if what == "server-scalar":
    # A server's scalar from its seed, checked against the share in its ServerHello.
    prs, seed = args[2].encode(), h(args[3])
    scalar = cp.sample_scalar(seed)
    assert cp.share(prs, ci, sid, scalar) == ya, "the logged seed does not give the server's share"
    print("scalar", scalar.to_bytes(32, "little").hex())
    sys.exit(0)

assert what == "session"
cs, cf, sf = h(args[2]), h(args[3]), h(args[4])
prs, role, seed = args[5].encode(), args[6], h(args[7])
yb = cs[5:37]
own, peer = (ya, yb) if role == "server" else (yb, ya)
scalar = cp.sample_scalar(seed)
assert cp.share(prs, ci, sid, scalar) == own, "the logged seed does not give the binary's share"
k = cp.scalar_mult_vfy(scalar, peer)
assert k is not None
isk = cp.isk(sid, k, ya, b"", yb, b"")
# Section 5.
transcript = hashlib.sha256(ch + sh + cs).digest()
prk = hmac.new(transcript, isk, "sha256").digest()
print("seed", seed.hex())
print("scalar", scalar.to_bytes(32, "little").hex())
print("k", k.hex())
print("isk", isk.hex())
print("prk", prk.hex())
mac_key("prk", prk)
keys = {}
for name in ["client write", "server write", "client confirm", "server confirm"]:
    label = ("aeschat/2 " + name + " key").encode()
    key = hmac.new(prk, label + b"\x01", "sha256").digest()
    keys[name] = key
    print(name.replace(" ", "_"), key.hex())
    # The signing half of a write key, the whole of a confirmation key, is an HMAC key.
    mac_key(name.replace(" ", "_"), key[:16] if name.endswith("write") else key)
# Positive control: these are the keys the binary used, else its Finished would not verify.
assert hmac.new(keys["client confirm"], transcript, "sha256").digest() == cf[5:], "ClientFinished"
assert hmac.new(keys["server confirm"], transcript, "sha256").digest() == sf[5:], "ServerFinished"
"#;

/// Runs `SCRIPT` and reads its `name hex` lines.
fn python(args: &[String]) -> Vec<(String, Vec<u8>)> {
    let sessions = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors/sessions");
    let output = Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(sessions)
        .args(args)
        .output()
        .expect("python3 is needed to derive session keys independently (CI has it)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .lines()
        .map(|line| {
            let (name, value) = line.split_once(' ').expect("name value");
            (name.to_owned(), unhex(value))
        })
        .collect()
}

/// A server's CPace scalar for a handshake that went no further than its ServerHello, from the
/// seed the server drew after the hello's nonce; checked against the share in the hello.
fn server_scalar(client_hello: &[u8], server_hello: &[u8], log: &RandomLog) -> Vec<u8> {
    let seed = log.seed_after(&server_hello[14..46]);
    let values = python(&[
        "server-scalar".to_owned(),
        hex(client_hello),
        hex(server_hello),
        SECRET.to_owned(),
        hex(&seed),
    ]);
    values.into_iter().next().expect("a scalar").1
}

/// The three needles of a secret value: whole and each half.
fn whole_and_halves(name: &str, value: &[u8]) -> [Needle; 3] {
    let half = value.len() / 2;
    [
        needle(name, value),
        needle(format!("{name} first half"), &value[..half]),
        needle(format!("{name} second half"), &value[half..]),
    ]
}

impl Derived {
    /// The session of `frames`, as the binary in `binary_role` (which logged its random bytes
    /// in `log`) computed it, with the password `SECRET`.
    fn compute(frames: &HandshakeFrames, binary_role: Role, log: &RandomLog) -> Derived {
        let (role, own_hello) = match binary_role {
            Role::Server => ("server", &frames.server_hello),
            Role::Client => ("client", &frames.client_hello),
        };
        let seed = log.seed_after(&own_hello[14..46]);
        let values = python(&[
            "session".to_owned(),
            hex(&frames.client_hello),
            hex(&frames.server_hello),
            hex(&frames.client_share),
            hex(&frames.client_finished),
            hex(&frames.server_finished),
            SECRET.to_owned(),
            role.to_owned(),
            hex(&seed),
        ]);
        Derived { values }
    }

    fn get(&self, name: &str) -> &[u8] {
        &self
            .values
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no {name}"))
            .1
    }

    /// What must be gone once the handshake is over, whole and in halves: the binary's CPace
    /// scalar seed and scalar (with it and the wire, anyone could test password guesses offline and open the
    /// recording), the CPace key `K`, the ISK, `prk` and both confirmation keys; and what the
    /// HMAC keys of HKDF (`prk`) and of the key confirmation become: the pad blocks with the
    /// key in them, and the hash states after them.
    fn gone_after_handshake(&self) -> Vec<Needle> {
        let mut needles: Vec<Needle> = [
            "seed",
            "scalar",
            "k",
            "isk",
            "prk",
            "client_confirm",
            "server_confirm",
        ]
        .iter()
        .flat_map(|name| whole_and_halves(name, self.get(name)))
        .collect();
        needles.extend(self.mac_key_traces(&["prk", "client_confirm", "server_confirm"]));
        needles
    }

    /// For each HMAC key named: its bytes XORed into the inner and outer pad blocks, and the
    /// SHA-256 states after those blocks.
    fn mac_key_traces(&self, keys: &[&str]) -> Vec<Needle> {
        keys.iter()
            .flat_map(|key| {
                ["pad_inner", "pad_outer", "mac_inner", "mac_outer"].map(|what| {
                    let name = format!("{key}_{what}");
                    let value = self.get(&name);
                    needle(name, value)
                })
            })
            .collect()
    }

    /// The AES-128 halves of both write keys: in use during the session (an AES key schedule
    /// starts with the key itself).
    fn session_aes_keys(&self) -> Vec<Needle> {
        ["client_write", "server_write"]
            .iter()
            .map(|name| needle(format!("{name} aes"), &self.get(name)[16..]))
            .collect()
    }

    /// The signing halves of both write keys, as they are kept during the session: SHA-256
    /// states after the inner and outer pad blocks (each lets anyone forge MACs).
    fn session_mac_states(&self) -> Vec<Needle> {
        ["client_write_mac_inner", "client_write_mac_outer"]
            .iter()
            .chain(&["server_write_mac_inner", "server_write_mac_outer"])
            .map(|name| needle(*name, self.get(name)))
            .collect()
    }

    /// Everything of the session's write keys that is kept while it runs.
    fn session_keys(&self) -> Vec<Needle> {
        let mut needles = self.session_aes_keys();
        needles.extend(self.session_mac_states());
        needles
    }

    /// The signing halves of both write keys XORed into the pad blocks: made when the MAC
    /// states are computed, never kept.
    fn session_pad_blocks(&self) -> Vec<Needle> {
        ["client_write", "server_write"]
            .iter()
            .flat_map(|key| {
                ["pad_inner", "pad_outer"].map(|what| {
                    let name = format!("{key}_{what}");
                    needle(name.clone(), self.get(&name))
                })
            })
            .collect()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

/// A real server (password from a file) in conversation with a test-side client, after one
/// message each way, so both session halves have done their work; and the session's secrets,
/// computed independently from the handshake and the server's random bytes. Before the
/// conversation, a caller that sent a ClientHello, read the ServerHello and hung up: its
/// scalar was found in the server's memory while the server waited for the caller's share
/// (`probe_scalar`), which shows a scan finds a scalar that is there.
struct ServerInConversation {
    server: Peer,
    pid: u32,
    peer: TestPeer,
    derived: Derived,
    /// The scalar of the abandoned handshake.
    probe_scalar: Vec<u8>,
    /// Kept so that the log outlives the server.
    _log: RandomLog,
    /// Kept so that the password file outlives the server.
    _files: SecretFiles,
}

fn server_in_conversation(label: &str, server_extra: &[&str]) -> ServerInConversation {
    let files = SecretFiles::new(label);
    let args = server_args(&["--password-file", &files.password_file], server_extra);
    let log = RandomLog::new(files.files.path(), "server");
    let mut server = Peer::spawn("server", &args, &log.env());
    let probe_scalar = scalar_held_while_waiting_for_a_share(&server, pid_of(&args), &log);
    let address = server.listening_address();
    let pid = pid_of(&args);
    let mut peer = TestPeer::connect(&address, Secret::Password(SECRET.as_bytes()))
        .expect("cannot establish a session");
    peer.send(b"from the test").expect("send");
    server.wait_stdout_line("[Client]: from the test");
    server.type_line("from the server");
    assert_eq!(
        peer.receive().expect("a message"),
        Some(b"from the server".to_vec())
    );
    let derived = Derived::compute(&peer.handshake_frames(Role::Client), Role::Server, &log);
    ServerInConversation {
        server,
        pid,
        peer,
        derived,
        probe_scalar,
        _log: log,
        _files: files,
    }
}

/// Waits for the ClientHello a client (process `pid`, logging its random bytes in `log`) sent
/// on `stream`, without taking it, and finds the client's scalar seed in its memory while it
/// waits for the ServerHello: the seed (its scalar but for the top four bits) is drawn with the
/// nonce and kept until the ServerHello arrives. This shows a scan finds the scalar's bytes
/// when they are there; the client computes its scalar, share, `K`, ISK and keys in one step
/// after the ServerHello, so there is no moment to catch those in between. Returns the seed.
fn seed_held_while_waiting_for_the_server_hello(
    stream: &TcpStream,
    pid: u32,
    log: &RandomLog,
) -> [u8; 32] {
    let mut hello = [0u8; 58];
    let deadline = Instant::now() + PATIENCE;
    while stream
        .peek(&mut hello)
        .expect("cannot peek at the ClientHello")
        < hello.len()
    {
        assert!(Instant::now() < deadline, "no whole ClientHello came");
        thread::sleep(Duration::from_millis(10));
    }
    let seed = log.seed_after(&hello[14..46]);
    let held = scan_memory(pid, &whole_and_halves("waiting seed", &seed));
    eprintln!(
        "figures: client: copies of its scalar seed while it waits for the ServerHello {}",
        held.hits.len()
    );
    assert!(
        held.count("waiting seed") >= 1,
        "the scan did not find the seed of a handshake in progress: {}",
        held.report()
    );
    seed
}

/// Sends a ClientHello to `server` (process `pid`, logging its random bytes in `log`), reads
/// the ServerHello, and finds the server's scalar for it in the server's memory while the
/// server waits for the share; then hangs up and waits until the server has dropped the
/// caller. Returns the scalar.
fn scalar_held_while_waiting_for_a_share(server: &Peer, pid: u32, log: &RandomLog) -> Vec<u8> {
    let mut stream = TcpStream::connect(server.listening_address()).expect("cannot connect");
    let hello = client_hello();
    stream.write_all(&hello).expect("cannot send a ClientHello");
    let server_hello = read_exactly(&mut stream, 90, Instant::now() + PATIENCE);
    let scalar = server_scalar(&hello, &server_hello, log);
    let held = scan_memory(pid, &whole_and_halves("probe scalar", &scalar));
    eprintln!(
        "figures: server: copies of a waiting handshake's scalar {}",
        held.hits.len()
    );
    assert!(
        held.count("probe scalar") >= 1,
        "the scan did not find the scalar of a handshake in progress: {}",
        held.report()
    );
    drop(stream);
    server.wait_stderr("[!] Dropped");
    scalar
}

#[test]
fn the_servers_derived_secrets_are_wiped_after_the_handshake() {
    let mut talk = server_in_conversation("secrets-derived-server", &["--once"]);
    let live = scan_memory(talk.pid, &talk.derived.session_aes_keys());
    let mut traces = talk.derived.gone_after_handshake();
    traces.extend(whole_and_halves("probe scalar", &talk.probe_scalar));
    let gone = scan_memory(talk.pid, &traces);
    eprintln!(
        "figures: server: live session AES keys {} copies; its scalar seed and scalar, K, ISK, prk, confirm \
         keys, HMAC pad blocks and states of prk and the confirm keys, and the abandoned \
         handshake's scalar {}",
        live.hits.len(),
        gone.hits.len()
    );
    assert!(
        live.count("server_write") >= 1 && live.count("client_write") >= 1,
        "the scan did not find the session keys in use: {}",
        live.report()
    );
    assert!(
        gone.hits.is_empty(),
        "the server still holds secrets of its handshake: {}",
        gone.report()
    );
    talk.peer.close().expect("close");
    talk.server.assert_exit(0);
}

#[test]
fn the_clients_derived_secrets_are_wiped_after_the_handshake() {
    let files = SecretFiles::new("secrets-derived-client");
    let listener = TcpListener::bind("127.0.0.1:0").expect("cannot listen");
    let address = listener.local_addr().expect("an address").to_string();
    let args = client_args(&address, &["--password-file", &files.password_file]);
    let log = RandomLog::new(files.files.path(), "client");
    let mut client = Peer::spawn("client", &args, &log.env());
    let client_pid = pid_of(&args);
    let (accepted, arrived) = mpsc::channel();
    thread::spawn(move || {
        let _ = accepted.send(listener.accept());
    });
    let (stream, _) = arrived
        .recv_timeout(PATIENCE)
        .expect("the client never connected")
        .expect("accept failed");
    let seed_while_waiting =
        seed_held_while_waiting_for_the_server_hello(&stream, client_pid, &log);
    let mut peer = TestPeer::establish(stream, Role::Server, Secret::Password(SECRET.as_bytes()))
        .expect("cannot establish a session");
    client.wait_stderr("[+] Connected to the server");
    client.type_line("from the client");
    assert_eq!(
        peer.receive().expect("a message"),
        Some(b"from the client".to_vec())
    );
    peer.send(b"from the test").expect("send");
    client.wait_stdout_line("[Server]: from the test");
    let derived = Derived::compute(&peer.handshake_frames(Role::Server), Role::Client, &log);
    assert_eq!(
        derived.get("seed"),
        seed_while_waiting,
        "the same handshake's seed"
    );

    let live = scan_memory(client_pid, &derived.session_aes_keys());
    let gone = scan_memory(client_pid, &derived.gone_after_handshake());
    eprintln!(
        "figures: client: live session AES keys {} copies; its scalar seed and scalar, K, ISK, prk, confirm \
         keys, HMAC pad blocks and states of prk and the confirm keys {}",
        live.hits.len(),
        gone.hits.len()
    );
    assert!(
        live.count("server_write") >= 1 && live.count("client_write") >= 1,
        "the scan did not find the session keys in use: {}",
        live.report()
    );
    assert!(
        gone.hits.is_empty(),
        "the client still holds secrets of its handshake: {}",
        gone.report()
    );
    client.type_line("/quit");
    assert_eq!(peer.receive().expect("the close"), None);
    peer.close().expect("close");
    client.assert_exit(0);
}

#[test]
fn a_finished_conversations_keys_are_wiped_from_the_server() {
    let mut talk = server_in_conversation("secrets-after", &[]);
    let keys = talk.derived.session_keys();
    let during = scan_memory(talk.pid, &keys);
    talk.peer.close().expect("close");
    assert_eq!(talk.peer.receive().expect("the close"), None);
    talk.server.wait_stderr("[-] Client left");
    talk.server.wait_stderr_count("Waiting for a client", 2);
    // After it, the pad blocks the MAC states were computed from must be gone too.
    let mut traces = talk.derived.session_keys();
    traces.extend(talk.derived.session_pad_blocks());
    let after = scan_memory(talk.pid, &traces);
    eprintln!(
        "figures: server: copies of the session's AES keys and MAC states during the \
         conversation {}, after it {} (pad blocks included)",
        during.hits.len(),
        after.hits.len()
    );
    for key in &keys {
        assert!(
            during.count(&key.name) >= 1,
            "the scan did not find {} in use: {}",
            key.name,
            during.report()
        );
    }
    assert!(
        after.hits.is_empty(),
        "the server keeps a finished conversation's keys: {}",
        after.report()
    );
    talk.server.close_stdin();
    talk.server.assert_exit(0);
}

/// Drives `aeschat client` on a pseudo-terminal: types the password at the prompt once echo is
/// off, prints the client's process id once connected, waits for a line on its own standard
/// input, then quits and prints everything the terminal showed.
const TERMINAL_SCRIPT: &str = r#"
import os, pty, select, sys, termios, time

binary, address, password = sys.argv[1], sys.argv[2], sys.argv[3].encode()
pid, fd = pty.fork()
if pid == 0:
    os.execv(binary, [binary, "client", "--connect", address])
shown = b""
deadline = time.time() + 30

def fail(why):
    sys.stdout.buffer.write(b"FAILED " + why.encode() + b"\n" + shown)
    sys.stdout.flush()
    os.kill(pid, 9)
    sys.exit(99)

def read_until(wanted):
    global shown
    while wanted not in shown:
        left = deadline - time.time()
        if left <= 0:
            fail("timed out waiting for %r" % wanted)
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                fail("the terminal closed while waiting for %r" % wanted)
            shown += chunk

read_until(b"Enter shared password: ")
while termios.tcgetattr(fd)[3] & termios.ECHO:
    if time.time() > deadline:
        fail("echo was never switched off")
    time.sleep(0.01)
os.write(fd, password + b"\r")
read_until(b"[+] Connected to the server")
os.write(fd, b"typed on a terminal\r")
print("PID %d" % pid, flush=True)
sys.stdin.readline()
os.write(fd, b"/quit\r")
while True:
    ready, _, _ = select.select([fd], [], [], max(0, deadline - time.time()))
    if not ready:
        fail("the client did not end")
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    shown += chunk
_, status = os.waitpid(pid, 0)
sys.stdout.buffer.write(b"SHOWN\n" + shown)
sys.exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 98)
"#;

#[test]
fn a_password_typed_at_the_prompt_is_wiped_and_never_shown_or_on_the_command_line() {
    let files = SecretFiles::new("secrets-prompt");
    let args = server_args(&["--password-file", &files.password_file], &["--once"]);
    let mut server = Peer::spawn("server", &args, &[]);
    let address = server.listening_address();
    let server_pid = pid_of(&args);
    let mut script = Command::new("python3")
        .args(["-c", TERMINAL_SCRIPT])
        .arg(aeschat_binary())
        .arg(&address)
        .arg(SECRET)
        .env_remove("AESCHAT_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 with the pty module is needed to drive a terminal (CI has it)");
    let mut out = BufReader::new(script.stdout.take().expect("piped"));
    let (line_sent, line) = mpsc::channel();
    let reading = thread::spawn(move || {
        let mut first = String::new();
        let _ = out.read_line(&mut first);
        let _ = line_sent.send(first);
        let mut rest = Vec::new();
        let _ = out.read_to_end(&mut rest);
        rest
    });
    let first = line.recv_timeout(PATIENCE + Duration::from_secs(5));
    let guard = KillOnDrop(&mut script);
    let first = first.expect("the terminal script said nothing");
    let client_pid: u32 = first
        .strip_prefix("PID ")
        .and_then(|pid| pid.trim().parse().ok())
        .unwrap_or_else(|| panic!("the terminal script failed: {first}"));
    server.wait_stdout_line("[Client]: typed on a terminal");

    let traces = password_traces("password", SECRET);
    assert!(find_all(&cmdline(client_pid), &traces).is_empty());
    assert!(find_all(&environ(client_pid), &traces).is_empty());
    let in_client = scan_memory(client_pid, &traces);
    let in_server = scan_memory(server_pid, &traces);
    eprintln!(
        "figures: typed password traces: client {}, server {}",
        in_client.hits.len(),
        in_server.hits.len()
    );
    assert!(
        in_server.count("password[0..8]") >= 1,
        "{}",
        in_server.report()
    );
    assert!(
        in_client.hits.is_empty(),
        "the client still holds the typed password: {}",
        in_client.report()
    );

    let script = &mut *guard.0;
    script
        .stdin
        .as_mut()
        .expect("piped")
        .write_all(b"go\n")
        .expect("cannot tell the script to go on");
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = script.try_wait().expect("cannot wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "the terminal script did not end");
        thread::sleep(Duration::from_millis(20));
    };
    let shown = String::from_utf8_lossy(&reading.join().expect("reader")).into_owned();
    assert_eq!(status.code(), Some(0), "{shown}");
    assert!(shown.contains("Enter shared password: "), "{shown}");
    assert!(
        find_all(shown.as_bytes(), &traces).is_empty(),
        "the terminal showed the password:\n{shown}"
    );
    server.assert_exit(0);
}

/// Kills a child process when dropped (a failed test leaves nothing running).
struct KillOnDrop<'a>(&'a mut std::process::Child);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// One scenario's outputs: (what, stdout, stderr).
type Outputs = Vec<(String, Vec<u8>, String)>;

fn record(outputs: &mut Outputs, what: &str, peer: &Peer) {
    outputs.push((what.to_owned(), peer.stdout(), peer.stderr_text()));
}

/// A server and client with the given secrets, which talk if `connects`, else fail; records
/// every output.
fn chat_scenario(
    outputs: &mut Outputs,
    what: &str,
    connects: bool,
    server_secret: &[&str],
    client_secret: &[&str],
    client_env: &[(&str, &str)],
    server_extra: &[&str],
) {
    let mut extra = vec!["--once"];
    extra.extend_from_slice(server_extra);
    let mut server = Peer::spawn("server", &server_args(server_secret, &extra), &[]);
    let address = server.listening_address();
    let mut client = Peer::spawn("client", &client_args(&address, client_secret), client_env);
    // Only a client that gets through the handshake reads what is typed; the others may have
    // exited already.
    if connects {
        client.wait_stderr("[+] Connected to the server");
        client.type_line("a message from the client");
        server.wait_stdout_line("[Client]: a message from the client");
        server.type_line("a message from the server");
        client.wait_stdout_line("[Server]: a message from the server");
    }
    client.close_stdin();
    let client_code = client.wait_exit();
    server.close_stdin();
    let server_code = server.wait_exit();
    eprintln!("scenario {what}: client exit {client_code}, server exit {server_code}");
    record(outputs, &format!("{what}: client"), &client);
    record(outputs, &format!("{what}: server"), &server);
}

#[test]
fn no_output_or_error_of_any_scenario_contains_a_secret() {
    let files = SecretFiles::new("secrets-outputs");
    let pass = files.password_file.as_str();
    let other = files.other_password_file.as_str();
    let key = files.key_file.as_str();
    let other_key = files.other_key_file.as_str();
    let mut outputs: Outputs = Vec::new();

    chat_scenario(
        &mut outputs,
        "password file",
        true,
        &["--password-file", pass],
        &["--password-file", pass],
        &[],
        &[],
    );
    chat_scenario(
        &mut outputs,
        "mismatched passwords",
        false,
        &["--password-file", pass],
        &["--password-file", other],
        &[],
        &[],
    );
    chat_scenario(
        &mut outputs,
        "mismatched passwords, the server stops after one failure",
        false,
        &["--password-file", pass],
        &["--password-file", other],
        &[],
        &["--max-failures", "1"],
    );
    chat_scenario(
        &mut outputs,
        "password from the environment",
        true,
        &["--password-file", pass],
        &[],
        &[("AESCHAT_PASSWORD", SECRET)],
        &[],
    );
    chat_scenario(
        &mut outputs,
        "key file",
        true,
        &["--key-file", key],
        &["--key-file", key],
        &[],
        &[],
    );
    chat_scenario(
        &mut outputs,
        "mismatched key files",
        false,
        &["--key-file", key],
        &["--key-file", other_key],
        &[],
        &[],
    );
    chat_scenario(
        &mut outputs,
        "password against key file",
        false,
        &["--key-file", key],
        &["--password-file", pass],
        &[],
        &[],
    );
    // Mistakes with files: a password file given as a key file, a key with one wrong
    // character, a key file holding two keys.
    let broken = files.files.dir.write(
        "broken.key",
        format!("{}*\n", &files.key.to_text().as_str()[..43]),
    );
    let doubled = files.files.dir.write(
        "doubled.key",
        format!(
            "{}\n{}\n",
            files.key.to_text().as_str(),
            files.key.to_text().as_str()
        ),
    );
    for bad in [pass, broken.as_str(), doubled.as_str()] {
        chat_scenario(
            &mut outputs,
            &format!("bad key file {bad}"),
            false,
            &["--key-file", key],
            &["--key-file", bad],
            &[],
            &[],
        );
        let run_client = run(
            [
                "client",
                "--connect",
                "127.0.0.1:9",
                "--key-file",
                bad,
                "--timeout",
                "1",
            ],
            b"",
        );
        outputs.push((
            format!("client with bad key file {bad}"),
            run_client.stdout,
            run_client.stderr,
        ));
    }

    // The token commands with key files, right and wrong.
    let token = run(["encrypt", "--key-file", key], b"a token's plaintext");
    outputs.push((
        "encrypt".to_owned(),
        token.stdout.clone(),
        token.stderr.clone(),
    ));
    let token = token.stdout;
    for (what, args) in [
        ("decrypt", vec!["decrypt", "--key-file", key]),
        (
            "decrypt, wrong key",
            vec!["decrypt", "--key-file", other_key],
        ),
        (
            "decrypt, key ring",
            vec!["decrypt", "--key-file", other_key, "--key-file", key],
        ),
        (
            "rotate",
            vec!["rotate", "--key-file", other_key, "--key-file", key],
        ),
        (
            "rotate, wrong key",
            vec!["rotate", "--key-file", key, "--key-file", other_key],
        ),
        (
            "decrypt, password file",
            vec!["decrypt", "--key-file", pass],
        ),
        (
            "decrypt, broken key",
            vec!["decrypt", "--key-file", broken.as_str()],
        ),
        (
            "decrypt, doubled key",
            vec!["decrypt", "--key-file", doubled.as_str()],
        ),
        (
            "encrypt, password file",
            vec!["encrypt", "--key-file", pass],
        ),
        (
            "encrypt, broken key",
            vec!["encrypt", "--key-file", broken.as_str()],
        ),
    ] {
        let result = run(&args, &token);
        outputs.push((what.to_owned(), result.stdout, result.stderr));
    }
    // A key given where a token is expected.
    let result = run(
        ["decrypt", "--key-file", key],
        files.key.to_text().as_bytes(),
    );
    outputs.push(("a key as a token".to_owned(), result.stdout, result.stderr));

    let needles = files.all_traces();
    let mut leaks = Vec::new();
    let mut bytes = 0;
    for (what, stdout, stderr) in &outputs {
        bytes += stdout.len() + stderr.len();
        for (stream, text) in [("stdout", stdout.as_slice()), ("stderr", stderr.as_bytes())] {
            for (name, at) in find_all(text, &needles) {
                leaks.push(format!("{what} {stream} at {at}: {name}"));
            }
        }
    }
    eprintln!(
        "figures: {} outputs ({} bytes) searched for {} traces of 2 passwords and 2 keys",
        outputs.len() * 2,
        bytes,
        needles.len()
    );
    assert!(
        leaks.is_empty(),
        "secrets in outputs:\n{}",
        leaks.join("\n")
    );
}
