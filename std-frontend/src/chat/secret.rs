//! Where the shared secret comes from: a key file, a password file, the `AESCHAT_PASSWORD`
//! environment variable, or a prompt that does not echo. Never the command line, where other
//! users see it in the process list and shells keep it in their history.

use std::fs::File;
use std::io::{self, IsTerminal, Read};
use std::ops::Deref;
use std::path::Path;

use aeschat_core::fernet::Key;
use aeschat_core::session::Secret;
use zeroize::Zeroize;

use super::terminal;
use super::Failure;
use crate::tokens::read_key_file;

/// The environment variable a password may come from (for scripts; a file is safer, since
/// other processes of the same user can read a process's environment).
pub(super) const PASSWORD_VARIABLE: &str = "AESCHAT_PASSWORD";

/// The password prompt, as the project aeschat replaces printed it.
const PROMPT: &str = "Enter shared password: ";

/// Passwords shorter than this get a warning. Guessing is online only (protocol 2's PAKE
/// leaves a recording nothing to test), at most 120 wrong guesses an hour, about a million a
/// year: what matters is not being among an attacker's first million guesses, which short
/// human-made passwords are.
const STRONG_PASSWORD_CHARS: usize = 10;

/// The most of a password file that is read: far more than any password.
const PASSWORD_FILE_MAX_LEN: usize = 64 * 1024;

/// Bytes that are wiped, all of the allocation, when dropped.
pub(super) struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Takes over `bytes` (which must not have been reallocated since it held anything
    /// secret: a reallocation leaves the old copy behind, unwiped).
    pub(super) fn new(bytes: Vec<u8>) -> SecretBytes {
        SecretBytes(bytes)
    }

    /// An empty buffer that holds `capacity` bytes without reallocating.
    pub(super) fn with_capacity(capacity: usize) -> SecretBytes {
        SecretBytes(Vec::with_capacity(capacity))
    }

    /// The vector, to fill without growing past its capacity.
    pub(super) fn as_mut_vec(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl Deref for SecretBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        // Filling to capacity (no reallocation) makes the spare capacity, which may hold bytes
        // from before a truncation, part of what is wiped.
        let capacity = self.0.capacity();
        self.0.resize(capacity, 0);
        self.0.as_mut_slice().zeroize();
    }
}

/// The secret both people hold.
pub(super) enum SharedSecret {
    Password(SecretBytes),
    Key(Key),
}

impl SharedSecret {
    /// The secret as the core's handshake takes it.
    pub(super) fn as_core(&self) -> Secret<'_> {
        match self {
            SharedSecret::Password(password) => Secret::Password(password),
            SharedSecret::Key(key) => Secret::PreSharedKey(key),
        }
    }
}

/// Gets the secret from the first source given: `--key-file`, `--password-file`,
/// `AESCHAT_PASSWORD`, or else a prompt when stdin is a terminal. Warns about a weak password.
pub(super) fn obtain(
    key_file: Option<&Path>,
    password_file: Option<&Path>,
) -> Result<SharedSecret, Failure> {
    if let Some(path) = key_file {
        warn_if_others_can_read(path, "key file");
        return read_key_file(path)
            .map(SharedSecret::Key)
            .map_err(|err| Failure::other(err.to_string()));
    }
    let password = if let Some(path) = password_file {
        warn_if_others_can_read(path, "password file");
        read_password_file(path)?
    } else if let Some(value) = std::env::var_os(PASSWORD_VARIABLE) {
        password_from_environment(value)?
    } else if io::stdin().is_terminal() {
        prompt_password()?
    } else {
        return Err(Failure::usage(format!(
            "no password: standard input is not a terminal, so give --password-file PATH, \
             set {PASSWORD_VARIABLE}, or use --key-file PATH"
        )));
    };
    if password.is_empty() {
        return Err(Failure::usage("the password is empty"));
    }
    if let Some(problem) = weakness(&password) {
        terminal::warning(&format!(
            "this password is weak ({problem}): it is among the first guesses anyone who can \
             connect would try; `aeschat passphrase` makes a strong one"
        ));
    }
    Ok(SharedSecret::Password(password))
}

/// Warns when a secret's file may be read by its group or by others (as ssh refuses such a
/// key), and says which `chmod` fixes it. The file is still used: a secret that has been
/// readable may already be known, which is for the person to judge.
fn warn_if_others_can_read(path: &Path, what: &str) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let Ok(metadata) = std::fs::metadata(path) else {
            // Reading it will say what is wrong.
            return;
        };
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            terminal::warning(&format!(
                "{what} \"{}\" can be read by {} (mode {mode:03o}): anyone who can read it \
                 can take either side of the chat. `chmod 600 {}` makes it yours alone",
                path.display(),
                if mode & 0o007 != 0 {
                    "other users"
                } else {
                    "its group"
                },
                shell_quoted(&path.display().to_string()),
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = (path, what);
}

/// `text` as one shell word: as it is when it needs no quoting, else in single quotes.
#[cfg(unix)]
fn shell_quoted(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+,:@%".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        return text.to_owned();
    }
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// The first line of a file, without its line ending.
fn read_password_file(path: &Path) -> Result<SecretBytes, Failure> {
    let unreadable = |err: io::Error| {
        Failure::other(format!(
            "password file \"{}\": cannot read it: {err}",
            path.display()
        ))
    };
    let file = File::open(path).map_err(unreadable)?;
    // Sized up front and read with `take`, so the buffer never grows and leaves copies behind.
    let mut contents = SecretBytes::with_capacity(PASSWORD_FILE_MAX_LEN);
    file.take(PASSWORD_FILE_MAX_LEN as u64)
        .read_to_end(contents.as_mut_vec())
        .map_err(unreadable)?;
    let bytes = contents.as_mut_vec();
    let line_len = bytes
        .iter()
        .position(|&byte| byte == b'\n')
        .unwrap_or(bytes.len());
    bytes.truncate(line_len);
    if bytes.last() == Some(&b'\r') {
        bytes.pop();
    }
    if bytes.is_empty() {
        return Err(Failure::usage(format!(
            "password file \"{}\": its first line is empty",
            path.display()
        )));
    }
    Ok(contents)
}

fn password_from_environment(value: std::ffi::OsString) -> Result<SecretBytes, Failure> {
    #[cfg(unix)]
    let bytes = std::os::unix::ffi::OsStringExt::into_vec(value);
    #[cfg(not(unix))]
    let bytes = value
        .into_string()
        .map_err(|_| Failure::usage(format!("{PASSWORD_VARIABLE} is not valid Unicode")))?
        .into_bytes();
    Ok(SecretBytes::new(bytes))
}

/// Asks on the terminal, with echo off, so the password is neither shown nor left in the
/// scrollback.
fn prompt_password() -> Result<SecretBytes, Failure> {
    terminal::prompt(PROMPT);
    // rpassword reads the controlling terminal (/dev/tty) with echo off and restores it after.
    // Its own output (the line ending after Enter) goes to stderr with the prompt.
    let config = rpassword::ConfigBuilder::new()
        .password_feedback_hide()
        .output_writer(io::stderr())
        .build();
    // Ctrl-C here is read by rpassword, which puts echo back before it returns.
    let prompting = super::interrupt::Prompting::start();
    let password = rpassword::read_password_with_config(config);
    drop(prompting);
    let password = password.map_err(|err| match err.kind() {
        io::ErrorKind::Interrupted => {
            terminal::prompt("\n");
            Failure::interrupted()
        }
        _ => Failure::other(format!("cannot read the password: {err}")),
    })?;
    // `into_bytes` keeps the same allocation, which is wiped on drop.
    Ok(SecretBytes::new(password.into_bytes()))
}

/// Why a password is obviously weak, if it is. Works on the bytes in place: a lowercased or
/// decoded copy would be one more copy of the password to wipe.
fn weakness(password: &[u8]) -> Option<&'static str> {
    // Characters, counted as UTF-8 sequences: every byte that is not a continuation byte.
    let chars = password.iter().filter(|&&byte| byte & 0xc0 != 0x80).count();
    if chars < STRONG_PASSWORD_CHARS {
        return Some("shorter than 10 characters");
    }
    let mut seen = [false; 256];
    for &byte in password {
        seen[usize::from(byte)] = true;
    }
    let distinct = seen.iter().filter(|&&seen| seen).count();
    // Which bytes the password uses is a hint about it too.
    seen.zeroize();
    if distinct < 5 {
        return Some("it repeats a few characters");
    }
    if password.iter().all(u8::is_ascii_digit) {
        return Some("only digits");
    }
    const COMMON: [&[u8]; 8] = [
        b"password",
        b"123456",
        b"qwerty",
        b"letmein",
        b"welcome",
        b"iloveyou",
        b"abc123",
        b"admin",
    ];
    let contains = |common: &[u8]| {
        password
            .windows(common.len())
            .any(|window| window.eq_ignore_ascii_case(common))
    };
    // A short password built around a famous one is among the first guesses.
    if chars < 20 && COMMON.iter().any(|common| contains(common)) {
        return Some("it is built on a common password");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::weakness;

    #[test]
    fn weak_passwords_are_recognised() {
        assert!(weakness(b"hunter2").is_some());
        assert!(weakness(b"aaaaaaaaaaaaaaaa").is_some());
        assert!(weakness(b"1234567890123").is_some());
        assert!(weakness(b"bluefish7").is_some());
        assert!(weakness(b"Password12345").is_some());
        assert!(weakness("ééééé".as_bytes()).is_some());
    }

    #[test]
    fn strong_passwords_pass() {
        assert_eq!(weakness(b"correct horse battery staple"), None);
        assert_eq!(weakness(b"tidal-orbit-lantern"), None);
        assert_eq!(
            weakness(b"otter-pizza-violet-kettle-brave-dune-jog-harbor-mint"),
            None
        );
    }
}
