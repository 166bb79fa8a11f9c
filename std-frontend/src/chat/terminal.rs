//! What the chat prints, and how: peer text made harmless for a terminal, and every line written
//! whole under one lock, so lines from the receiving thread and the sending thread never mix.
//!
//! Only peer text goes to standard output; banners, status lines, warnings and errors go to
//! standard error. Status lines never contain peer bytes, so a peer cannot fake one.

use std::io::{self, Write};
use std::sync::Mutex;

use aeschat_core::MAX_MESSAGE_LEN;

/// Held for every write to stdout or stderr, so a line on one stream is never written in the
/// middle of a line on the other (each stream is a separate file, and a long line may take
/// several system calls).
static OUTPUT: Mutex<()> = Mutex::new(());

/// How much escaped peer text is collected before it is written, when more is on its way.
const OUTPUT_BATCH: usize = 32 * 1024;

/// The most bytes one byte of peer text becomes when escaped: a control byte becomes `\xNN`.
/// (A two-byte C1 control becomes four, a three-byte bidirectional mark at most eight, and an
/// invalid byte the three of U+FFFD.)
const ESCAPED_GROWTH: usize = 4;

/// Messages from the peer on their way to stdout, each one line: `[Client]: text`. Lines are
/// escaped into one buffer, made once, and written whole under the output lock; the receiving
/// side calls [`PeerLines::flush`] before it waits for the network, so nothing typed to this
/// side waits on screen behind messages that have arrived.
pub(super) struct PeerLines {
    peer: &'static str,
    out: Vec<u8>,
}

impl PeerLines {
    pub(super) fn new(peer: &'static str) -> PeerLines {
        let longest = peer.len() + 4 + ESCAPED_GROWTH * MAX_MESSAGE_LEN + 1;
        PeerLines {
            peer,
            out: Vec::with_capacity(OUTPUT_BATCH + longest),
        }
    }

    /// Adds one message from the peer; writes what has been collected once it is a batch.
    pub(super) fn push(&mut self, text: &[u8]) {
        self.out.push(b'[');
        self.out.extend_from_slice(self.peer.as_bytes());
        self.out.extend_from_slice(b"]: ");
        escape_into(&mut self.out, text);
        self.out.push(b'\n');
        if self.out.len() >= OUTPUT_BATCH {
            self.flush();
        }
    }

    /// Writes every line collected so far.
    pub(super) fn flush(&mut self) {
        if !self.out.is_empty() {
            write_whole(&mut io::stdout(), &self.out);
            self.out.clear();
        }
    }
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
/// visible escape. Adds at most [`ESCAPED_GROWTH`] bytes for each byte of `text`.
fn escape_into(out: &mut Vec<u8>, text: &[u8]) {
    // Nearly all text is valid UTF-8, which is checked fastest in one go.
    if let Ok(valid) = std::str::from_utf8(text) {
        escape_valid_into(out, valid);
        return;
    }
    for chunk in text.utf8_chunks() {
        escape_valid_into(out, chunk.valid());
        // One U+FFFD for each invalid sequence, as `String::from_utf8_lossy` shows them.
        if !chunk.invalid().is_empty() {
            out.extend_from_slice("\u{fffd}".as_bytes());
        }
    }
}

fn escape_valid_into(out: &mut Vec<u8>, text: &str) {
    let mut rest = text;
    while !rest.is_empty() {
        // Printable ASCII, most of any text, is copied as it is, a run at a time.
        let (plain, others) = rest.split_at(printable_ascii_len(rest.as_bytes()));
        out.extend_from_slice(plain.as_bytes());
        let mut chars = others.chars();
        if let Some(c) = chars.next() {
            push_shown(out, c);
        }
        rest = chars.as_str();
    }
}

/// How many bytes at the start of `bytes` are printable ASCII (space to `~`). Looks at 16
/// bytes at a time, which the compiler turns into vector comparisons.
fn printable_ascii_len(bytes: &[u8]) -> usize {
    let printable = |byte: &u8| (b' '..=b'~').contains(byte);
    let mut len = 0;
    for chunk in bytes.chunks_exact(16) {
        if !chunk.iter().fold(true, |all, byte| all & printable(byte)) {
            break;
        }
        len += 16;
    }
    let tail = bytes.get(len..).unwrap_or_default();
    len + tail
        .iter()
        .position(|byte| !printable(byte))
        .unwrap_or(tail.len())
}

/// Appends one character as it is safe to show.
fn push_shown(out: &mut Vec<u8>, c: char) {
    if !is_dangerous(c) {
        out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
        return;
    }
    let code = u32::from(c);
    match c {
        '\n' => out.extend_from_slice(b"\\n"),
        '\r' => out.extend_from_slice(b"\\r"),
        '\t' => out.extend_from_slice(b"\\t"),
        // C0 controls, DEL and C1 controls, like `\x1b` for ESC, as programmers know them.
        _ if code < 0x100 => {
            out.extend_from_slice(b"\\x");
            push_hex(out, code, 2);
        }
        _ => {
            out.extend_from_slice(b"\\u{");
            push_hex(out, code, 1);
            out.push(b'}');
        }
    }
}

/// Appends `value` in lowercase hexadecimal, with at least `min_digits` digits.
fn push_hex(out: &mut Vec<u8>, value: u32, min_digits: u32) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let significant = (u32::BITS - value.leading_zeros()).div_ceil(4);
    for digit in (0..significant.max(min_digits)).rev() {
        let nibble = (value >> (4 * digit)) & 0xf;
        out.push(DIGITS[nibble as usize]);
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
    use super::{escape_into, ESCAPED_GROWTH};

    fn escape_peer_text(text: &[u8]) -> String {
        let mut out = Vec::new();
        escape_into(&mut out, text);
        String::from_utf8(out).expect("escaped text is UTF-8")
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

    #[test]
    fn escaping_agrees_with_a_lossy_decode_character_by_character() {
        // Every byte value, every escape kind and invalid sequences of each length, mixed.
        let mut text: Vec<u8> = (0..=255u8).collect();
        text.extend_from_slice("é✓🙂\u{85}\u{9b}\u{202e}\u{2029}".as_bytes());
        text.extend_from_slice(b"\xe2\x82 \xf0\x9f\x99 \xc3");
        let mut expected = String::new();
        for c in String::from_utf8_lossy(&text).chars() {
            match c {
                '\n' => expected.push_str("\\n"),
                '\r' => expected.push_str("\\r"),
                '\t' => expected.push_str("\\t"),
                c if super::is_dangerous(c) && u32::from(c) < 0x100 => {
                    expected.push_str(&format!("\\x{:02x}", u32::from(c)));
                }
                c if super::is_dangerous(c) => {
                    expected.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
                }
                c => expected.push(c),
            }
        }
        assert_eq!(escape_peer_text(&text), expected);
    }

    #[test]
    fn escaping_grows_text_at_most_fourfold() {
        let worst: [&[u8]; 5] = [
            b"\x00\x1b\x7f",
            "\u{85}\u{9b}".as_bytes(),
            "\u{202e}\u{2066}\u{2028}".as_bytes(),
            b"\xff\xfe\x80",
            b"\n\r\t",
        ];
        for text in worst {
            let repeated = text.repeat(1000);
            let shown = escape_peer_text(&repeated);
            assert!(
                shown.len() <= ESCAPED_GROWTH * repeated.len(),
                "{text:?}: {} bytes from {}",
                shown.len(),
                repeated.len()
            );
        }
    }
}
