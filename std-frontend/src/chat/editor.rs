//! The line editor on a terminal (rustyline): cursor movement, in-session history (kept in
//! memory only: rustyline is built without file history, so no message can reach the disk
//! through it), Ctrl-L, and bracketed paste, so a pasted text of any length arrives whole
//! rather than cut at the terminal's line limit of 4,095 bytes. What the program prints
//! meanwhile goes above the input line, which is redrawn intact (see `terminal`).
//!
//! A pasted text of several lines is sent as one message per line. A line longer than a
//! message can be is refused, whole, with a message; Up brings it back to shorten it.

use std::io::{self, IsTerminal};

use aeschat_core::session::MAX_MESSAGE_LEN;
use rustyline::error::ReadlineError;
use rustyline::history::MemHistory;
use rustyline::{Config, Editor};

use super::events::{Typed, TypedSink};
use super::{interrupt, terminal};

/// How many lines Up can bring back.
const HISTORY_LINES: usize = 1000;

pub(super) struct LineEditor {
    editor: Editor<(), MemHistory>,
    prompt: String,
}

impl LineEditor {
    /// The editor, when standard input and output are a terminal it can drive; `None` means
    /// plain lines. From now on the program prints above the input line.
    pub(super) fn new(peer: &str) -> Option<LineEditor> {
        if !(io::stdin().is_terminal() && io::stdout().is_terminal()) {
            return None;
        }
        let config = Config::builder()
            .max_history_size(HISTORY_LINES)
            .ok()?
            .auto_add_history(true)
            .bracketed_paste(true)
            .build();
        let mut editor = Editor::with_history(config, MemHistory::new()).ok()?;
        // Fails where rustyline cannot drive the terminal (TERM=dumb, for one): plain lines.
        let printer = editor.create_external_printer().ok()?;
        terminal::print_above_input(Box::new(printer));
        Some(LineEditor {
            editor,
            prompt: format!("to {peer}> "),
        })
    }

    /// Reads lines until the end of input (Ctrl-D on an empty line, or `/quit` while nobody
    /// is connected) or Ctrl-C.
    pub(super) fn run(mut self, sink: &TypedSink) {
        terminal::this_thread_edits();
        sink.input_is_open();
        loop {
            match self.editor.readline(&self.prompt) {
                Ok(text) => {
                    if !interrupt::conversing() && text.trim_end() == "/quit" {
                        // A waiting server stops, as at Ctrl-D.
                        sink.send(Typed::End);
                        return;
                    }
                    if !interrupt::conversing() {
                        terminal::status(
                            "[!] Not sent: nobody is connected. Lines typed now are not kept \
                             for whoever connects next.",
                        );
                        continue;
                    }
                    if !send(sink, &text) {
                        return;
                    }
                }
                Err(ReadlineError::Interrupted) => {
                    // The editor stops reading: a second Ctrl-C then comes as a signal.
                    interrupt::pressed();
                    return;
                }
                Err(ReadlineError::Eof) => {
                    sink.send(Typed::End);
                    return;
                }
                Err(err) => {
                    sink.send(Typed::Failed(io::Error::other(err.to_string())));
                    return;
                }
            }
        }
    }
}

/// Sends each line of `text` (more than one if it was pasted), unless one is too long for a
/// message: then none. False once nobody listens.
fn send(sink: &TypedSink, text: &str) -> bool {
    if let Some(longest) = text.split('\n').map(str::len).max() {
        if longest > MAX_MESSAGE_LEN {
            terminal::error(&format!(
                "not sent: a line of {longest} bytes is longer than a message can be \
                 ({MAX_MESSAGE_LEN} bytes); Up brings it back to shorten it"
            ));
            return true;
        }
    }
    text.split('\n').all(|line| sink.line(line.as_bytes()))
}
