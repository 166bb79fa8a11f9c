//! What the chat prints, and how: peer text made harmless for a terminal, and every line written
//! whole under one lock, so lines from the receiving thread and the sending thread never mix.
//!
//! Only peer text goes to standard output; banners, status lines, warnings and errors go to
//! standard error. Status lines never contain peer bytes, so a peer cannot fake one.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::sync::Mutex;

/// Held for every write to stdout or stderr, so a line on one stream is never written in the
/// middle of a line on the other (each stream is a separate file, and a long line may take
/// several system calls).
static OUTPUT: Mutex<()> = Mutex::new(());

/// Prints a message from the peer on stdout as one line: `[Client]: text`.
pub(super) fn peer_line(peer: &str, text: &[u8]) {
    let mut line = String::with_capacity(peer.len() + text.len() + 5);
    line.push('[');
    line.push_str(peer);
    line.push_str("]: ");
    escape_into(&mut line, text);
    line.push('\n');
    write_whole(&mut io::stdout(), line.as_bytes());
}

/// Prints one status line (a banner, `[+] ...`, `[-] ...`) on stderr.
pub(super) fn status(line: &str) {
    let mut whole = String::with_capacity(line.len() + 1);
    whole.push_str(line);
    whole.push('\n');
    write_whole(&mut io::stderr(), whole.as_bytes());
}

/// Prints a warning on stderr: `aeschat: warning: ...`.
pub(super) fn warning(message: &str) {
    status(&format!("aeschat: warning: {message}"));
}

/// Prints an error on stderr: `aeschat: ...`.
pub(super) fn error(message: &str) {
    status(&format!("aeschat: {message}"));
}

/// Prints a prompt on stderr, without a line ending.
pub(super) fn prompt(text: &str) {
    write_whole(&mut io::stderr(), text.as_bytes());
}

fn write_whole(stream: &mut impl Write, bytes: &[u8]) {
    // A poisoned lock only means another thread panicked while printing; printing still works.
    let _guard = OUTPUT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    // Nothing sensible can be done when the terminal itself is gone: the chat goes on and ends
    // by its own rules.
    let _ = stream.write_all(bytes).and_then(|()| stream.flush());
}

/// Appends peer text to `out` as a single line that cannot control the terminal: invalid
/// UTF-8 is shown as U+FFFD, and every character that could move the cursor, change colours,
/// erase text, ring the bell, start a new line or reorder the line's text is replaced by a
/// visible escape.
fn escape_into(out: &mut String, text: &[u8]) {
    for c in String::from_utf8_lossy(text).chars() {
        if !is_dangerous(c) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // C0 controls, DEL and C1 controls, like `\x1b` for ESC, as programmers know them.
            c if u32::from(c) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
        }
    }
}

/// Characters a terminal acts on instead of showing.
fn is_dangerous(c: char) -> bool {
    // `is_control` is Unicode's Cc: C0 (ESC starts every escape sequence, BEL, backspace, CR,
    // line feed, tab), DEL, and C1 (U+009B is a one-character CSI on many terminals).
    c.is_control()
        || matches!(
            c,
            // Bidirectional marks, embeddings, overrides and isolates: they can make a line
            // read differently from the bytes it holds ("Trojan Source").
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
            // Line and paragraph separators: some terminals and logs break the line there.
            | '\u{2028}' | '\u{2029}'
        )
}

#[cfg(test)]
mod tests {
    fn escape_peer_text(text: &[u8]) -> String {
        let mut out = String::new();
        super::escape_into(&mut out, text);
        out
    }

    #[test]
    fn plain_and_unicode_text_is_unchanged() {
        let text = "héllo wörld ✓ 你好 🙂 back\\slash";
        assert_eq!(escape_peer_text(text.as_bytes()), text);
    }

    #[test]
    fn escape_sequences_and_controls_become_visible() {
        assert_eq!(
            escape_peer_text(b"\x1b[31mred\x1b[0m\x07\x08\r\n\t\x7f"),
            "\\x1b[31mred\\x1b[0m\\x07\\x08\\r\\n\\t\\x7f"
        );
        assert_eq!(escape_peer_text(b"\0"), "\\x00");
    }

    #[test]
    fn c1_controls_are_escaped() {
        // U+009B (CSI) and U+0085 (NEL) encoded as UTF-8.
        assert_eq!(
            escape_peer_text("\u{9b}2J\u{85}".as_bytes()),
            "\\x9b2J\\x85"
        );
    }

    #[test]
    fn bidi_controls_are_escaped() {
        assert_eq!(
            escape_peer_text("a\u{202e}b\u{2066}c\u{2069}\u{200f}\u{2028}".as_bytes()),
            "a\\u{202e}b\\u{2066}c\\u{2069}\\u{200f}\\u{2028}"
        );
    }

    #[test]
    fn invalid_utf8_is_shown_lossily() {
        assert_eq!(
            escape_peer_text(b"ok \xff\xfe end"),
            "ok \u{fffd}\u{fffd} end"
        );
        // A raw C1 byte is not UTF-8, so it cannot reach the terminal as a control either.
        assert_eq!(escape_peer_text(b"\x9b31m"), "\u{fffd}31m");
    }

    #[test]
    fn output_never_contains_a_control_character() {
        let all: Vec<u8> = (0..=255u8).collect();
        let shown = escape_peer_text(&all);
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
    }
}
