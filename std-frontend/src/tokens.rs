//! `aeschat genkey`, `encrypt`, `decrypt` and `rotate`: Fernet tokens on the command line.
//!
//! Every command reads standard input completely, writes standard output only once it has
//! succeeded, and otherwise reports one line on standard error (`aeschat: ...`) with exit
//! status 1. Key files are read by [`read_key_file`], which the chat commands share.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use aeschat_core::fernet::{decrypt_buffer_len, token_len, Error, Iv, Key, Keyring, TimePolicy};
use zeroize::Zeroize;

/// The text after the options in `--help`: the command in detail, then its examples. (`-h`
/// shows only the examples; the one-line summary above the usage comes from `main.rs`.)
fn long_help(details: &str, examples: &str) -> String {
    format!("{details}\n\n{examples}")
}

const GENKEY_DETAILS: &str =
    "Print a new random Fernet key: 44 characters of base64url and a newline, \
                  drawn from the operating system's random number generator. Save it in a \
                  key file and give that file to --key-file.";

const GENKEY_EXAMPLES: &str = "\
Examples:
  # A key file that only you can read:
  (umask 077; aeschat genkey > alice.key)";

/// Arguments of `aeschat genkey`.
#[derive(clap::Args)]
#[command(after_help = GENKEY_EXAMPLES, after_long_help = long_help(GENKEY_DETAILS, GENKEY_EXAMPLES))]
pub struct GenkeyArgs {}

const ENCRYPT_DETAILS: &str =
    "Encrypt all of standard input (any bytes, including none) into one Fernet \
                  token, and print the token and a newline. Each token gets a fresh random IV, \
                  so encrypting the same input twice gives different tokens.";

const ENCRYPT_EXAMPLES: &str = "\
Examples:
  printf 'hello' | aeschat encrypt --key-file alice.key
  aeschat encrypt --key-file alice.key < photo.jpg > photo.token
  # A token dated 2023-11-14 22:13:20 UTC instead of now:
  printf 'hello' | aeschat encrypt --key-file alice.key --at 1700000000";

/// Arguments of `aeschat encrypt`.
#[derive(clap::Args)]
#[command(after_help = ENCRYPT_EXAMPLES, after_long_help = long_help(ENCRYPT_DETAILS, ENCRYPT_EXAMPLES))]
pub struct EncryptArgs {
    /// The key file: one key as printed by `aeschat genkey`.
    #[arg(long, value_name = "PATH")]
    key_file: PathBuf,
    /// The token's timestamp in Unix seconds [default: now, from the system clock].
    #[arg(long, value_name = "UNIX_SECONDS")]
    at: Option<u64>,
}

const DECRYPT_DETAILS: &str =
    "Verify one Fernet token from standard input and write exactly its plaintext \
                  bytes to standard output. Standard input holds the token, optionally followed \
                  by one line ending (\\n or \\r\\n), and nothing else.\n\n\
                  If the token is not authentic under any of the keys, is malformed, or fails \
                  the time check, nothing is written to standard output, one line on standard \
                  error says why, and the exit status is 1.\n\n\
                  Without --ttl no time check is done at all: an authentic token of any age, \
                  even one dated in the future, is accepted.";

const DECRYPT_EXAMPLES: &str = "\
Examples:
  aeschat decrypt --key-file alice.key < photo.token > photo.jpg
  # Accept only tokens at most 5 minutes old:
  aeschat decrypt --key-file alice.key --ttl 300 < message.token
  # After a key change, the new key first, then the old ones still accepted:
  aeschat decrypt --key-file new.key --key-file old.key < message.token
  # Check the age as if it were 2023-11-14 22:13:50 UTC:
  aeschat decrypt --key-file alice.key --ttl 60 --now 1700000030 < message.token";

/// Arguments of `aeschat decrypt`.
#[derive(clap::Args)]
#[command(after_help = DECRYPT_EXAMPLES, after_long_help = long_help(DECRYPT_DETAILS, DECRYPT_EXAMPLES))]
pub struct DecryptArgs {
    /// A key file. Repeat it to accept tokens under several keys, the newest first.
    #[arg(long = "key-file", value_name = "PATH", required = true)]
    key_files: Vec<PathBuf>,
    /// Reject tokens older than this many seconds, or dated more than 60 seconds in the
    /// future. Without it, no time check is done.
    #[arg(long, value_name = "SECONDS")]
    ttl: Option<u64>,
    /// The current time in Unix seconds for the --ttl check [default: the system clock].
    /// Only with --ttl, since without a TTL no time check is done.
    #[arg(long, value_name = "UNIX_SECONDS", requires = "ttl")]
    now: Option<u64>,
}

const ROTATE_DETAILS: &str =
    "Re-encrypt one Fernet token from standard input under a new key, keeping its \
                  original timestamp, and print the new token and a newline. The first \
                  --key-file is the new key; the token may be under any of the given keys. No \
                  time check is done, so old tokens can be moved to a new key too.";

const ROTATE_EXAMPLES: &str = "\
Examples:
  aeschat rotate --key-file new.key --key-file old.key < old.token > new.token
  # Tokens made under either of two old keys:
  aeschat rotate --key-file new.key --key-file old.key --key-file older.key < a.token";

/// Arguments of `aeschat rotate`.
#[derive(clap::Args)]
#[command(after_help = ROTATE_EXAMPLES, after_long_help = long_help(ROTATE_DETAILS, ROTATE_EXAMPLES))]
pub struct RotateArgs {
    /// A key file: first the new key, then the keys the token may be under.
    #[arg(long = "key-file", value_name = "PATH", required = true)]
    key_files: Vec<PathBuf>,
}

/// `aeschat genkey`: prints a new key.
pub fn genkey(_: GenkeyArgs) -> ExitCode {
    report(generate_key())
}

/// `aeschat encrypt`: stdin into one token on stdout.
pub fn encrypt(args: EncryptArgs) -> ExitCode {
    report(encrypt_stdin(&args))
}

/// `aeschat decrypt`: one token on stdin into its plaintext on stdout.
pub fn decrypt(args: DecryptArgs) -> ExitCode {
    report(decrypt_stdin(&args))
}

/// `aeschat rotate`: one token on stdin into a token under the new key on stdout.
pub fn rotate(args: RotateArgs) -> ExitCode {
    report(rotate_stdin(&args))
}

fn generate_key() -> Result<(), Failure> {
    let text = Key::generate()?.to_text();
    write_stdout(&[text.as_bytes(), b"\n"])
}

fn encrypt_stdin(args: &EncryptArgs) -> Result<(), Failure> {
    // Keys and clock first, so a mistake is reported before stdin is consumed.
    let key = read_key_file(&args.key_file)?;
    let timestamp = args.at.map_or_else(unix_now, Ok)?;
    let plaintext = SecretBuffer::read_all(io::stdin().lock()).map_err(Failure::ReadStdin)?;
    let iv = Iv::random()?;
    let mut out = vec![0u8; token_len(plaintext.as_slice().len())];
    let token =
        aeschat_core::fernet::encrypt(&key, plaintext.as_slice(), timestamp, &iv, &mut out)?;
    write_stdout(&[token.as_bytes(), b"\n"])
}

fn decrypt_stdin(args: &DecryptArgs) -> Result<(), Failure> {
    let keys = read_key_files(&args.key_files)?;
    let (primary, older) = keys.split_first().ok_or(Failure::NoKey)?;
    let policy = match args.ttl {
        None => TimePolicy::Unchecked,
        Some(ttl) => TimePolicy::MaxAge {
            ttl,
            now: args.now.map_or_else(unix_now, Ok)?,
        },
    };
    let token = read_token()?;
    let mut out = SecretBuffer::zeroed(decrypt_buffer_len(token.len()));
    let plaintext = Keyring::new(primary, older).decrypt(&token, policy, out.as_mut_slice())?;
    write_stdout(&[plaintext])
}

fn rotate_stdin(args: &RotateArgs) -> Result<(), Failure> {
    let keys = read_key_files(&args.key_files)?;
    let (primary, older) = keys.split_first().ok_or(Failure::NoKey)?;
    let token = read_token()?;
    // `scratch` holds the plaintext in between; the core wipes it, and so does its drop.
    let mut scratch = SecretBuffer::zeroed(decrypt_buffer_len(token.len()));
    let mut out = vec![0u8; token_len(scratch.as_slice().len())];
    let iv = Iv::random()?;
    let rotated =
        Keyring::new(primary, older).rotate(&token, &iv, scratch.as_mut_slice(), &mut out)?;
    write_stdout(&[rotated.as_bytes(), b"\n"])
}

/// Reads the one token on stdin, without the single line ending it may carry. Anything else
/// around the token is left in place for the core to reject as a bad encoding.
fn read_token() -> Result<Vec<u8>, Failure> {
    let mut input = Vec::new();
    io::stdin()
        .lock()
        .read_to_end(&mut input)
        .map_err(Failure::ReadStdin)?;
    let token_len = strip_line_ending(&input).len();
    input.truncate(token_len);
    if input.is_empty() {
        return Err(Failure::NoToken);
    }
    Ok(input)
}

/// The current Unix time in seconds, from the system clock.
fn unix_now() -> Result<u64, Failure> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since_epoch| since_epoch.as_secs())
        .map_err(|_| Failure::ClockBeforeEpoch)
}

/// Writes all parts to stdout and flushes, so a write error is reported rather than lost.
fn write_stdout(parts: &[&[u8]]) -> Result<(), Failure> {
    let mut stdout = io::stdout().lock();
    for part in parts {
        stdout.write_all(part).map_err(Failure::WriteStdout)?;
    }
    stdout.flush().map_err(Failure::WriteStdout)
}

/// Turns a command's outcome into its exit status, reporting a failure on stderr.
fn report(outcome: Result<(), Failure>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("aeschat: {failure}");
            ExitCode::FAILURE
        }
    }
}

/// Why a token command failed: shown as one line on stderr, with exit status 1.
enum Failure {
    KeyFile(KeyFileError),
    /// Clap requires at least one `--key-file`; this only guards against that changing.
    NoKey,
    Token(Error),
    NoToken,
    ReadStdin(io::Error),
    WriteStdout(io::Error),
    ClockBeforeEpoch,
}

impl From<KeyFileError> for Failure {
    fn from(err: KeyFileError) -> Failure {
        Failure::KeyFile(err)
    }
}

impl From<Error> for Failure {
    fn from(err: Error) -> Failure {
        Failure::Token(err)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::KeyFile(err) => err.fmt(f),
            Failure::NoKey => f.write_str("No key was given: name a key file with --key-file."),
            Failure::Token(err) => err.fmt(f),
            Failure::NoToken => f.write_str(
                "Standard input holds no token: pipe exactly one token into this command.",
            ),
            Failure::ReadStdin(err) => write!(f, "Cannot read standard input: {err}."),
            Failure::WriteStdout(err) => write!(f, "Cannot write to standard output: {err}."),
            Failure::ClockBeforeEpoch => f.write_str(
                "The system clock is set before 1970: correct it, or give the time explicitly \
                 (--at, or --now with --ttl).",
            ),
        }
    }
}

/// The most a key file may hold and still be read: a key and a line ending fit with room to
/// spare, and anything longer is surely not a key file, so it is not read any further.
const KEY_FILE_MAX_LEN: usize = 128;

/// Reads a key file: the key's 44 characters, optionally followed by one line ending
/// (`\n` or `\r\n`), and nothing else. The file's bytes are wiped from memory afterwards.
pub(crate) fn read_key_file(path: &Path) -> Result<Key, KeyFileError> {
    // One byte more than the limit, to tell a file at the limit from a longer one.
    let mut contents = [0u8; KEY_FILE_MAX_LEN + 1];
    let read = File::open(path).and_then(|file| read_up_to(file, &mut contents));
    let key = match read {
        Ok(len) => parse_key_file(contents.get(..len).unwrap_or(&[])),
        Err(err) => Err(KeyFileProblem::Unreadable(err)),
    };
    contents.zeroize();
    key.map_err(|problem| KeyFileError {
        path: path.to_path_buf(),
        problem,
    })
}

/// Reads several key files, in order.
pub(crate) fn read_key_files(paths: &[PathBuf]) -> Result<Vec<Key>, KeyFileError> {
    // Sized up front: growing the vector would move keys and leave unwiped copies behind.
    let mut keys = Vec::with_capacity(paths.len());
    for path in paths {
        keys.push(read_key_file(path)?);
    }
    Ok(keys)
}

fn parse_key_file(contents: &[u8]) -> Result<Key, KeyFileProblem> {
    if contents.len() > KEY_FILE_MAX_LEN {
        return Err(KeyFileProblem::TooLong);
    }
    let text = strip_line_ending(contents);
    if text.is_empty() {
        return Err(KeyFileProblem::Empty);
    }
    if text.iter().any(|&byte| byte == b'\n' || byte == b'\r') {
        return Err(KeyFileProblem::ExtraLines);
    }
    Key::parse(text).map_err(KeyFileProblem::NotAKey)
}

/// `bytes` without one final `\n` or `\r\n`, if it has one.
fn strip_line_ending(bytes: &[u8]) -> &[u8] {
    bytes
        .strip_suffix(b"\r\n")
        .or_else(|| bytes.strip_suffix(b"\n"))
        .unwrap_or(bytes)
}

/// Reads until `buf` is full or the input ends, returning how many bytes were read.
fn read_up_to(mut reader: impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while let Some(rest) = buf.get_mut(filled..).filter(|rest| !rest.is_empty()) {
        match reader.read(rest) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

/// A key file that cannot be used, and why. Its message names the file but never shows any
/// of its contents, which may be a key.
#[derive(Debug)]
pub(crate) struct KeyFileError {
    path: PathBuf,
    problem: KeyFileProblem,
}

#[derive(Debug)]
enum KeyFileProblem {
    Unreadable(io::Error),
    Empty,
    TooLong,
    ExtraLines,
    NotAKey(Error),
}

impl fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key file \"{}\": ", self.path.display())?;
        match &self.problem {
            KeyFileProblem::Unreadable(err) => write!(f, "Cannot read it: {err}."),
            KeyFileProblem::Empty => {
                f.write_str("It is empty: it must hold a key as printed by `aeschat genkey`.")
            }
            KeyFileProblem::TooLong => f.write_str(
                "It is far too long for a key file: it must hold one 44-character key, \
                 optionally followed by one line ending.",
            ),
            KeyFileProblem::ExtraLines => f.write_str(
                "It holds more than one line: it must hold one 44-character key, optionally \
                 followed by one line ending.",
            ),
            KeyFileProblem::NotAKey(err) => err.fmt(f),
        }
    }
}

/// No `source()`: the message already ends with the cause (the I/O error or the key's problem),
/// and an error reporter that also walked the source chain would print it twice.
impl std::error::Error for KeyFileError {}

/// Secret bytes (a plaintext) that are wiped when dropped. Every byte of the allocation is
/// initialised, and growing copies into a new allocation and wipes the old one, so no copy is
/// left behind in freed memory (as `Vec`'s own growth would).
struct SecretBuffer {
    bytes: Vec<u8>,
    len: usize,
}

impl SecretBuffer {
    /// The first allocation when reading input of unknown size.
    const INITIAL_CAPACITY: usize = 64 * 1024;

    /// `len` zero bytes, to decrypt into.
    fn zeroed(len: usize) -> SecretBuffer {
        SecretBuffer {
            bytes: vec![0; len],
            len,
        }
    }

    /// Everything `reader` yields, to its end.
    fn read_all(mut reader: impl Read) -> io::Result<SecretBuffer> {
        let mut buffer = SecretBuffer {
            bytes: vec![0; Self::INITIAL_CAPACITY],
            len: 0,
        };
        loop {
            if buffer.len == buffer.bytes.len() {
                buffer.grow();
            }
            let spare = buffer.bytes.get_mut(buffer.len..).unwrap_or(&mut []);
            match reader.read(spare) {
                Ok(0) => return Ok(buffer),
                Ok(read) => buffer.len += read,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
    }

    /// Doubles the capacity, wiping the allocation it replaces.
    fn grow(&mut self) {
        let mut bigger = vec![0; self.bytes.len().saturating_mul(2).max(1)];
        if let (Some(dst), Some(src)) = (bigger.get_mut(..self.len), self.bytes.get(..self.len)) {
            dst.copy_from_slice(src);
        }
        let mut old = std::mem::replace(&mut self.bytes, bigger);
        old.as_mut_slice().zeroize();
    }

    fn as_slice(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        self.bytes.get_mut(..self.len).unwrap_or(&mut [])
    }
}

impl Drop for SecretBuffer {
    fn drop(&mut self) {
        self.bytes.as_mut_slice().zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_TEXT: &[u8] = b"cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=";

    #[test]
    fn key_files_allow_one_line_ending_and_nothing_else() {
        let expected = Key::parse(KEY_TEXT).unwrap();
        for suffix in [&b""[..], b"\n", b"\r\n"] {
            let contents = [KEY_TEXT, suffix].concat();
            assert_eq!(parse_key_file(&contents).unwrap(), expected);
        }
        for (suffix, problem) in [
            (&b"\n\n"[..], "ExtraLines"),
            (b"\r", "ExtraLines"),
            (b"\n\r\n", "ExtraLines"),
            (b"\nsecond line\n", "ExtraLines"),
            (b" ", "NotAKey(KeyLength)"),
            (b"\t\n", "NotAKey(KeyLength)"),
        ] {
            let contents = [KEY_TEXT, suffix].concat();
            let err = parse_key_file(&contents).unwrap_err();
            assert_eq!(format!("{err:?}"), problem, "suffix {suffix:?}");
        }
        assert!(matches!(parse_key_file(b"\n"), Err(KeyFileProblem::Empty)));
        assert!(matches!(
            parse_key_file(&[b'A'; KEY_FILE_MAX_LEN + 1]),
            Err(KeyFileProblem::TooLong)
        ));
        assert!(matches!(
            parse_key_file(b"cw/0x689RpI+jtRR7oE8h/eQsKImvJapLeSbXpwF4e4=\n"),
            Err(KeyFileProblem::NotAKey(Error::KeyEncoding))
        ));
    }

    #[test]
    fn secret_buffer_reads_everything_across_growth() {
        let input: Vec<u8> = (0..SecretBuffer::INITIAL_CAPACITY * 3 + 5)
            .map(|i| (i % 251) as u8)
            .collect();
        let buffer = SecretBuffer::read_all(&input[..]).unwrap();
        assert_eq!(buffer.as_slice(), &input[..]);
        assert!(SecretBuffer::read_all(&[][..])
            .unwrap()
            .as_slice()
            .is_empty());
    }

    #[test]
    fn read_up_to_stops_at_the_buffer_size() {
        let mut buf = [0u8; 4];
        assert_eq!(read_up_to(&b"abcdef"[..], &mut buf).unwrap(), 4);
        assert_eq!(&buf, b"abcd");
        assert_eq!(read_up_to(&b"ab"[..], &mut buf).unwrap(), 2);
    }
}
