//! What the chat prints, and how: peer text made harmless for a terminal, and every line written
//! whole under one lock, so lines from the receiving thread and the sending thread never mix.
//!
//! Only peer text goes to standard output; banners, status lines, warnings and errors go to
//! standard error. Status lines never contain peer bytes, and on a terminal they are marked in
//! a way peer text cannot be (colour, or bold alone under `NO_COLOR`), so a peer cannot fake
//! one, not even with a message that wraps at the edge of the window. While the line editor
//! runs, everything is printed above the input line, which the editor then redraws intact.

use std::cell::Cell;
use std::io::{self, IsTerminal, Write};
use std::sync::{Mutex, OnceLock};

use aeschat_core::session::MAX_MESSAGE_LEN;
use rustyline::ExternalPrinter;
use unicode_general_category::{get_general_category, GeneralCategory};

/// Held for every direct write to stdout or stderr, so a line on one stream is never written
/// in the middle of a line on the other (each stream is a separate file, and a long line may
/// take several system calls). Lines printed through the line editor are kept whole by its own
/// lock ([`ABOVE_INPUT`]).
static OUTPUT: Mutex<()> = Mutex::new(());

/// Prints above the line editor's input line while it runs (see [`print_above_input`]).
static ABOVE_INPUT: Mutex<Option<Box<dyn ExternalPrinter + Send>>> = Mutex::new(None);

/// How many combining marks in a row are shown as they are: enough for any real script (a
/// Vietnamese vowel takes two, Hebrew points with cantillation three); a longer run, which
/// piles up above and below the line over other lines, shows the rest as escapes.
const MAX_COMBINING_RUN: usize = 4;

/// How much escaped peer text is collected before it is written, when more is on its way.
const OUTPUT_BATCH: usize = 32 * 1024;

/// The most bytes one byte of peer text becomes when escaped: a control byte becomes `\xNN`.
/// (A backslash becomes two, a two-byte C1 control or combining mark at most seven, a
/// three-byte format character at most eight, a four-byte tag ten, and an invalid byte the
/// three of U+FFFD.)
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
            write_whole(&mut io::stdout(), stdout_is_terminal(), &self.out);
            self.out.clear();
        }
    }
}

/// Prints one status line (a banner, `[+] ...`, `[-] ...`) on stderr.
pub(super) fn status(line: &str) {
    marked(Kind::Status, line);
}

/// Prints a warning on stderr: `aeschat: warning: ...`.
pub(super) fn warning(message: &str) {
    marked(Kind::Warning, &format!("aeschat: warning: {message}"));
}

/// Prints an error on stderr: `aeschat: ...`.
pub(super) fn error(message: &str) {
    marked(Kind::Error, &format!("aeschat: {message}"));
}

/// Prints a prompt on stderr, without a line ending.
pub(super) fn prompt(text: &str) {
    write_whole(&mut io::stderr(), stderr_is_terminal(), text.as_bytes());
}

/// From now on, everything printed goes above the line editor's input line (while the editor
/// reads a line; between lines it is written as usual).
pub(super) fn print_above_input(printer: Box<dyn ExternalPrinter + Send>) {
    *lock(&ABOVE_INPUT) = Some(printer);
}

/// What a line of this program's own says, which decides its colour.
#[derive(Clone, Copy)]
enum Kind {
    Status,
    Warning,
    Error,
}

/// How this program's own lines stand out from peer text on a terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Marking {
    /// Not a terminal: plain text (peer text is on another stream anyway).
    Plain,
    /// `NO_COLOR` is set: bold, a weight peer text can never have.
    Bold,
    /// Bold and coloured.
    Colour,
}

fn marking() -> Marking {
    static MARKING: OnceLock<Marking> = OnceLock::new();
    *MARKING.get_or_init(|| {
        // https://no-color.org: set and not empty.
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
        choose_marking(stderr_is_terminal(), no_color)
    })
}

fn choose_marking(terminal: bool, no_color: bool) -> Marking {
    match (terminal, no_color) {
        (false, _) => Marking::Plain,
        (true, true) => Marking::Bold,
        (true, false) => Marking::Colour,
    }
}

/// On a terminal, replaces the line the cursor is on with a status line that changes (a count
/// of seconds), without ending it; true if it did. Elsewhere it does nothing: a log needs no
/// count. [`end_in_place`] ends the line.
pub(super) fn status_in_place(line: &str) -> bool {
    if !stderr_is_terminal() {
        return false;
    }
    marked_between(Kind::Status, "\r\x1b[2K", line, "");
    true
}

/// Ends the line [`status_in_place`] wrote.
pub(super) fn end_in_place() {
    write_whole(&mut io::stderr(), stderr_is_terminal(), b"\n");
}

fn marked(kind: Kind, line: &str) {
    marked_between(kind, "", line, "\n");
}

/// Writes `before`, then `line` marked as this program's own, then `after`.
fn marked_between(kind: Kind, before: &str, line: &str, after: &str) {
    let start = match (marking(), kind) {
        (Marking::Plain, _) => "",
        (Marking::Bold, _) => "\x1b[1m",
        (Marking::Colour, Kind::Status) => "\x1b[1;36m",
        (Marking::Colour, Kind::Warning) => "\x1b[1;33m",
        (Marking::Colour, Kind::Error) => "\x1b[1;31m",
    };
    let end = if start.is_empty() { "" } else { "\x1b[0m" };
    let mut whole =
        String::with_capacity(before.len() + start.len() + line.len() + end.len() + after.len());
    whole.push_str(before);
    whole.push_str(start);
    whole.push_str(line);
    whole.push_str(end);
    whole.push_str(after);
    write_whole(&mut io::stderr(), stderr_is_terminal(), whole.as_bytes());
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means another thread panicked while printing; printing still works.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn stdout_is_terminal() -> bool {
    static TERMINAL: OnceLock<bool> = OnceLock::new();
    *TERMINAL.get_or_init(|| io::stdout().is_terminal())
}

fn stderr_is_terminal() -> bool {
    static TERMINAL: OnceLock<bool> = OnceLock::new();
    *TERMINAL.get_or_init(|| io::stderr().is_terminal())
}

thread_local! {
    /// True on the thread that runs the line editor.
    static EDITING: Cell<bool> = const { Cell::new(false) };
}

/// Marks the calling thread as the line editor's: it prints only between two lines, when the
/// editor does not draw, so its lines go straight to the terminal. (Through the editor they
/// would wait for the editor's next line, which this thread itself has to start.)
pub(super) fn this_thread_edits() {
    EDITING.with(|editing| editing.set(true));
}

fn write_whole(stream: &mut impl Write, to_terminal: bool, bytes: &[u8]) {
    // While the line editor runs, what goes to the terminal goes through it. (Peer text goes to
    // stdout, which is a terminal whenever the editor runs.) Only the editor's lock is held
    // meanwhile: handing a line over may wait for the editor, which may print itself.
    if to_terminal && !EDITING.with(Cell::get) {
        if let Some(printer) = lock(&ABOVE_INPUT).as_mut() {
            let text = String::from_utf8_lossy(bytes).into_owned();
            if printer.print(text).is_ok() {
                return;
            }
        }
    }
    let _guard = lock(&OUTPUT);
    // Nothing sensible can be done when the terminal itself is gone: the chat goes on and ends
    // by its own rules.
    let _ = stream.write_all(bytes).and_then(|()| stream.flush());
}

/// Appends peer text to `out` as a single line that cannot control the terminal or hide what
/// it holds: invalid UTF-8 is shown as U+FFFD, and every character that could move the
/// cursor, change colours, erase text, ring the bell, start a new line, reorder the line's
/// text, or be invisible (format characters, tags, fillers, variation selectors, a pile of
/// combining marks) is replaced by a visible escape. A backslash is shown as `\\`, so every
/// escape is unambiguous: `\x1b` on screen is an ESC byte, `\\x1b` four typed characters.
/// Adds at most [`ESCAPED_GROWTH`] bytes for each byte of `text`.
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
    // Combining marks in a row so far.
    let mut marks = 0;
    while !rest.is_empty() {
        // Printable ASCII, most of any text, is copied as it is, a run at a time.
        let plain_len = printable_ascii_len(rest.as_bytes());
        if plain_len > 0 {
            marks = 0;
        }
        let (plain, others) = rest.split_at(plain_len);
        out.extend_from_slice(plain.as_bytes());
        let mut chars = others.chars();
        if let Some(c) = chars.next() {
            let mark = is_combining_mark(c);
            marks = if mark { marks + 1 } else { 0 };
            if mark && marks > MAX_COMBINING_RUN {
                push_escaped(out, c);
            } else {
                push_shown(out, c);
            }
        }
        rest = chars.as_str();
    }
}

/// How many bytes at the start of `bytes` are printable ASCII (space to `~`) other than the
/// backslash. Looks at 16 bytes at a time, which the compiler turns into vector comparisons.
fn printable_ascii_len(bytes: &[u8]) -> usize {
    let printable = |byte: &u8| (b' '..=b'~').contains(byte) & (*byte != b'\\');
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
    if is_dangerous(c) {
        push_escaped(out, c);
    } else {
        out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
    }
}

/// Appends one character as an escape: `\n`, `\\`, `\x1b`, `\u{200b}`.
fn push_escaped(out: &mut Vec<u8>, c: char) {
    let code = u32::from(c);
    match c {
        '\\' => out.extend_from_slice(b"\\\\"),
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

/// Characters a terminal acts on instead of showing, that show as nothing, or that change how
/// the characters around them look; and the backslash, which starts every escape.
fn is_dangerous(c: char) -> bool {
    if c.is_ascii() {
        // `is_control` is Unicode's Cc: C0 (ESC starts every escape sequence, BEL, backspace,
        // CR, line feed, tab) and DEL.
        return c.is_ascii_control() || c == '\\';
    }
    match get_general_category(c) {
        // C1 (U+009B is a one-character CSI on many terminals).
        GeneralCategory::Control
        // Every format character: bidirectional marks, embeddings, overrides and isolates
        // ("Trojan Source"), zero-width spaces and joiners, the word joiner, the byte order
        // mark, the soft hyphen, invisible operators, and the tag characters U+E0001 and
        // U+E0020 to U+E007F.
        | GeneralCategory::Format
        // Line and paragraph separators: some terminals and logs break the line there.
        | GeneralCategory::LineSeparator
        | GeneralCategory::ParagraphSeparator => true,
        _ => matches!(
            c,
            // Hangul fillers: letters that show as blank space.
            '\u{115f}' | '\u{1160}' | '\u{3164}' | '\u{ffa0}'
            // Variation selectors (they change how the character before them looks), the
            // Mongolian free variation selectors and the combining grapheme joiner.
            | '\u{fe00}'..='\u{fe0f}' | '\u{e0100}'..='\u{e01ef}' | '\u{180b}'..='\u{180f}'
            | '\u{034f}'
        ),
    }
}

/// A character drawn over the one before it.
fn is_combining_mark(c: char) -> bool {
    !c.is_ascii()
        && matches!(
            get_general_category(c),
            GeneralCategory::NonspacingMark
                | GeneralCategory::SpacingMark
                | GeneralCategory::EnclosingMark
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
        let text = "héllo wörld ✓ 你好 🙂 Tiếng Việt שָׁלוֹם";
        assert_eq!(escape_peer_text(text.as_bytes()), text);
    }

    #[test]
    fn a_backslash_is_escaped_so_escapes_are_unambiguous() {
        assert_eq!(escape_peer_text(b"back\\slash"), "back\\\\slash");
        // Four typed characters and one ESC byte look different.
        assert_eq!(escape_peer_text(b"\\x1b"), "\\\\x1b");
        assert_eq!(escape_peer_text(b"\x1b"), "\\x1b");
    }

    #[test]
    fn invisible_and_format_characters_are_escaped() {
        for (c, shown) in [
            ('\u{200b}', "\\u{200b}"),
            ('\u{200c}', "\\u{200c}"),
            ('\u{200d}', "\\u{200d}"),
            ('\u{2060}', "\\u{2060}"),
            ('\u{feff}', "\\u{feff}"),
            ('\u{ad}', "\\xad"),
            ('\u{61c}', "\\u{61c}"),
            ('\u{e0001}', "\\u{e0001}"),
            ('\u{e0020}', "\\u{e0020}"),
            ('\u{e0041}', "\\u{e0041}"),
            ('\u{e007f}', "\\u{e007f}"),
            ('\u{115f}', "\\u{115f}"),
            ('\u{1160}', "\\u{1160}"),
            ('\u{3164}', "\\u{3164}"),
            ('\u{ffa0}', "\\u{ffa0}"),
            ('\u{fe00}', "\\u{fe00}"),
            ('\u{fe0f}', "\\u{fe0f}"),
            ('\u{e0100}', "\\u{e0100}"),
            ('\u{e01ef}', "\\u{e01ef}"),
            ('\u{180b}', "\\u{180b}"),
            ('\u{34f}', "\\u{34f}"),
        ] {
            assert_eq!(
                escape_peer_text(format!("a{c}b").as_bytes()),
                format!("a{shown}b")
            );
        }
    }

    #[test]
    fn every_format_character_is_escaped() {
        use unicode_general_category::{get_general_category, GeneralCategory};
        for c in (0..=0x10_ffff).filter_map(char::from_u32) {
            if get_general_category(c) == GeneralCategory::Format {
                let shown = escape_peer_text(c.to_string().as_bytes());
                assert!(shown.starts_with('\\'), "{c:?} shown as {shown:?}");
            }
        }
    }

    #[test]
    fn a_long_run_of_combining_marks_is_cut_short() {
        let acute = '\u{301}';
        // A few marks in a row are real text.
        let few = format!("e{acute}{acute}{acute}{acute}");
        assert_eq!(escape_peer_text(few.as_bytes()), few);
        // A flood is not: marks beyond the fourth show as escapes.
        let flood = format!("e{}x{acute}", acute.to_string().repeat(6));
        let shown = escape_peer_text(flood.as_bytes());
        assert_eq!(
            shown,
            format!(
                "e{}\\u{{301}}\\u{{301}}x{acute}",
                acute.to_string().repeat(4)
            )
        );
    }

    #[test]
    fn status_lines_are_marked_on_a_terminal_only() {
        use super::{choose_marking, Marking};
        assert_eq!(choose_marking(false, false), Marking::Plain);
        assert_eq!(choose_marking(false, true), Marking::Plain);
        assert_eq!(choose_marking(true, true), Marking::Bold);
        assert_eq!(choose_marking(true, false), Marking::Colour);
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
                '\\' => expected.push_str("\\\\"),
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
        let worst: [&[u8]; 8] = [
            b"\\\\",
            "\u{301}\u{301}\u{301}\u{301}\u{301}\u{301}\u{301}\u{301}".as_bytes(),
            "\u{ad}\u{200b}\u{e0041}\u{fe0f}".as_bytes(),
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
