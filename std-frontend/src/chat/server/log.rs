//! The server's account of callers it refused or dropped, at a bounded rate: a flood of
//! connections must not scroll the conversation off the operator's screen, nor hold the
//! terminal's lock against the peer's messages.
//!
//! In each window of [`WINDOW`] the first [`LINES_PER_WINDOW`] events are printed as they come;
//! the rest are counted per source and summed up in at most [`SUMMARY_LINES`] lines when the
//! window ends. Failed authentications are not events of this log: each is printed with its
//! source (there are few, since each one makes its source wait).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::super::{net, terminal};
use super::admission::Source;

/// How often the counts are summed up.
pub(super) const WINDOW: Duration = Duration::from_secs(10);
/// Events printed one by one per window.
const LINES_PER_WINDOW: usize = 10;
/// Sources named in a window's summary; the others are summed up in one more line.
const SUMMARY_LINES: usize = 3;

#[derive(Default)]
struct Window {
    started: Option<Instant>,
    printed: usize,
    /// Per source: events not printed, and of those, per reason.
    unprinted: HashMap<Source, (u64, HashMap<String, u64>)>,
}

/// Shared by the accept thread and the handshake threads.
#[derive(Clone, Default)]
pub(super) struct CallerLog {
    window: Arc<Mutex<Window>>,
}

impl CallerLog {
    /// Starts the thread that sums up each window.
    pub(super) fn start() -> CallerLog {
        let log = CallerLog::default();
        let summing = log.clone();
        // If the thread cannot start, events beyond the first few go unreported: acceptable
        // for a log, and nothing else depends on it.
        let _ = thread::Builder::new()
            .name("caller-log".to_owned())
            .spawn(move || loop {
                thread::sleep(WINDOW);
                summing.end_window(Instant::now());
            });
        log
    }

    /// One caller refused or dropped: `what` says what happened, in a few words.
    /// One caller refused or dropped: `subject` names the caller and what befell it ("Refused
    /// 127.0.0.2:4000"), `what` says why, in a few words.
    pub(super) fn record(&self, source: Source, subject: &str, what: &str) {
        self.record_at(source, subject, what, Instant::now());
    }

    fn record_at(&self, source: Source, subject: &str, what: &str, now: Instant) {
        let mut window = self
            .window
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        window.started.get_or_insert(now);
        if window.printed < LINES_PER_WINDOW {
            window.printed += 1;
            terminal::status(&format!("[!] {subject}: {what}"));
            return;
        }
        let (total, reasons) = window.unprinted.entry(source).or_default();
        *total += 1;
        match reasons.get_mut(what) {
            Some(count) => *count += 1,
            None => {
                reasons.insert(what.to_owned(), 1);
            }
        }
    }

    /// Prints the window's summary, if anything went unprinted, and starts a new window.
    fn end_window(&self, now: Instant) {
        let mut window = self
            .window
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let finished = std::mem::take(&mut *window);
        drop(window);
        for line in summary(finished, now) {
            terminal::status(&line);
        }
    }
}

/// The lines that sum up a window: the busiest sources by name, the rest together.
fn summary(window: Window, now: Instant) -> Vec<String> {
    let Some(started) = window.started else {
        return Vec::new();
    };
    let mut sources: Vec<_> = window.unprinted.into_iter().collect();
    sources.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then_with(|| a.0.cmp(&b.0)));
    let span = net::seconds(Duration::from_secs(
        now.duration_since(started).as_secs().max(1),
    ));
    let mut lines = Vec::new();
    for (source, (total, reasons)) in sources.iter().take(SUMMARY_LINES) {
        let mut reasons: Vec<_> = reasons.iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        let why: Vec<String> = reasons
            .iter()
            .map(|(what, count)| format!("{}: {what}", thousands(**count)))
            .collect();
        lines.push(format!(
            "[!] {} more caller{} from {source} in the last {span} ({})",
            thousands(*total),
            if *total == 1 { "" } else { "s" },
            why.join("; ")
        ));
    }
    let rest: Vec<_> = sources.iter().skip(SUMMARY_LINES).collect();
    if !rest.is_empty() {
        let total: u64 = rest.iter().map(|(_, (count, _))| count).sum();
        lines.push(format!(
            "[!] {} more caller{} from {} other source{} in the last {span}",
            thousands(total),
            if total == 1 { "" } else { "s" },
            thousands(rest.len() as u64),
            if rest.len() == 1 { "" } else { "s" },
        ));
    }
    lines
}

/// 12345 as "12,345".
fn thousands(number: u64) -> String {
    let digits = number.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn source(last: u8) -> Source {
        Source::of(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
    }

    #[test]
    fn numbers_have_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn a_flood_is_summed_up_in_a_few_lines() {
        let mut window = Window {
            started: Some(Instant::now()),
            printed: LINES_PER_WINDOW,
            unprinted: HashMap::new(),
        };
        for last in 2..=20u8 {
            let count = if last == 3 { 2000 } else { u64::from(last) };
            let mut reasons = HashMap::new();
            reasons.insert("busy with another conversation".to_owned(), count - 1);
            reasons.insert("sent no aeschat hello in time".to_owned(), 1);
            window.unprinted.insert(source(last), (count, reasons));
        }
        let now = window.started.unwrap() + WINDOW;
        let lines = summary(window, now);
        assert_eq!(lines.len(), SUMMARY_LINES + 1, "{lines:#?}");
        assert_eq!(
            lines[0],
            "[!] 2,000 more callers from 127.0.0.3 in the last 10 s (1,999: busy with another \
             conversation; 1: sent no aeschat hello in time)"
        );
        assert!(lines[1].contains("from 127.0.0.20 "), "{}", lines[1]);
        assert!(
            lines[3].ends_with("from 16 other sources in the last 10 s"),
            "{}",
            lines[3]
        );
    }

    #[test]
    fn a_quiet_window_says_nothing() {
        assert!(summary(Window::default(), Instant::now()).is_empty());
    }
}
