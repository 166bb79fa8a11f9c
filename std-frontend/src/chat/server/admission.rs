//! Who may start a handshake, and who may make the server derive keys: the rules that keep the
//! server available to the person it waits for, whatever strangers send.
//!
//! - **Connections** are bounded: a handful of handshakes at once, at most two per source, so
//!   callers that connect and say nothing cannot fill the server (the caller of this module
//!   also drops the oldest silent one, or one stalled after its hello, when all places are
//!   taken).
//! - **Key derivations** (CPace's second scalar multiplication, HKDF and the check of the
//!   caller's confirmation: the step that tests a password guess) happen only once a caller has
//!   sent its ClientShare and ClientFinished, one at a time, and never while a conversation is
//!   in progress. The server's other CPace work per caller, one hash-to-curve and one scalar
//!   multiplication for its ServerHello (about 50 µs), comes before any of these rules and
//!   is bounded by the connection limits above.
//! - **Guesses** are only failed authentications: the server itself checked a ClientFinished
//!   and found it wrong. Each one makes its source wait (doubling, capped), and all sources
//!   together get a fixed number per window. An alert, junk, a hang-up or a timeout is no guess.
//!   In key-file mode there is nothing to guess, so there is no waiting at all.
//! - **Abandoned handshakes** are those that got the server's ServerHello (its CPace share)
//!   and ended before a whole ClientFinished came: the caller hung up, stalled until it was
//!   dropped or its place was given to a newcomer, or sent junk. A source that abandons more
//!   than a few within a minute is made to wait before it may start another (doubling, capped),
//!   so that callers from a few addresses cannot keep every place fresh by renewing their
//!   hellos faster than the grace after the hello, and cannot make the server compute shares
//!   for them without end. Refusals, completed handshakes and failed authentications (guesses,
//!   which have their own waits) are not abandoned. This applies in key-file mode too.
//!
//! Pure bookkeeping: every call takes `now`, nothing here sleeps, reads a clock or touches a
//! socket, so the rules are tested directly.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Handshakes in progress at once, from all sources.
pub(super) const MAX_HANDSHAKES: usize = 16;
/// Handshakes in progress at once from one source.
pub(super) const MAX_HANDSHAKES_PER_SOURCE: usize = 2;
/// The longest wait imposed on one source, however many failures came before.
pub(super) const MAX_FAIL_DELAY: Duration = Duration::from_secs(300);
/// Failed authentications allowed from all sources together within [`GUESS_WINDOW`].
pub(super) const GLOBAL_GUESSES: usize = 20;
/// The window of [`GLOBAL_GUESSES`].
pub(super) const GUESS_WINDOW: Duration = Duration::from_secs(600);
/// A source with no failure for this long starts afresh.
const FORGET_AFTER: Duration = Duration::from_secs(3600);
/// Handshakes a source may abandon within [`ABANDON_WINDOW`] before it must wait: the attack
/// of callers that renew their places with fresh hellos, faster than the grace after the hello
/// (callers.rs), to keep every place fresh. Keeping all sixteen places fresh takes at least
/// eight abandoned handshakes a second; an honest client abandons one only when its connection
/// dies in the one round trip between the ServerHello and its ClientFinished, and a very flaky
/// mobile link a few times a minute at worst.
pub(super) const ABANDON_ALLOWANCE: u32 = 10;
/// The window of [`ABANDON_ALLOWANCE`], from the first abandoned handshake in it.
pub(super) const ABANDON_WINDOW: Duration = Duration::from_secs(60);
/// The first wait of a source that abandoned more than [`ABANDON_ALLOWANCE`] handshakes within
/// [`ABANDON_WINDOW`]; each further time doubles it, up to [`MAX_ABANDON_WAIT`]. Long against
/// the few seconds the attack needs from an address to spend its allowance, so that each
/// address holds places for a few seconds in every half minute, then every five minutes: the
/// attack then needs about 20 addresses for its first half-minute and on the order of 150 to
/// keep it up, rather than 8 (see docs/SECURITY.md).
pub(super) const ABANDON_WAIT: Duration = Duration::from_secs(30);
/// The longest wait for abandoned handshakes.
pub(super) const MAX_ABANDON_WAIT: Duration = Duration::from_secs(300);
/// A source that abandoned no handshake for this long starts again from [`ABANDON_WAIT`]:
/// longer than [`MAX_ABANDON_WAIT`], so that waiting out the longest wait is not enough.
const ABANDON_FORGET_AFTER: Duration = Duration::from_secs(600);
/// Sources whose failures and abandoned handshakes are remembered; beyond this the stalest is
/// forgotten first, so a flood of addresses cannot make the table grow without bound.
const MAX_REMEMBERED: usize = 4096;

/// Where a connection comes from, as far as limits go: an IPv4 address, or an IPv6 /64 (one
/// machine commonly holds a whole /64, so single IPv6 addresses would be free for the taking).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct Source(IpAddr);

impl Source {
    pub(super) fn of(ip: IpAddr) -> Source {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                Source(IpAddr::V6(prefix.into()))
            }
            v4 => Source(v4),
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V6(prefix) => write!(f, "{prefix}/64"),
            v4 => v4.fmt(f),
        }
    }
}

/// Why a caller is turned away before any key work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    /// A conversation is in progress.
    Busy,
    /// This source failed to authenticate and must wait.
    CoolingDown { left: Duration },
    /// This source abandoned too many handshakes lately and must wait.
    Abandoning { left: Duration },
    /// All sources together have failed too often lately.
    TooManyGuesses { left: Duration },
    /// This source already has its handshakes in progress.
    TooManyFromSource,
    /// Every place for a handshake is taken by callers that are talking.
    TooManyAtOnce,
}

impl Refusal {
    /// How long the caller is told to wait, if it should wait rather than give up.
    pub(super) fn retry_after(self) -> Option<Duration> {
        match self {
            Refusal::Busy => None,
            Refusal::CoolingDown { left }
            | Refusal::Abandoning { left }
            | Refusal::TooManyGuesses { left } => Some(left),
            Refusal::TooManyFromSource | Refusal::TooManyAtOnce => Some(Duration::from_secs(1)),
        }
    }

    /// A few words for the server's log.
    pub(super) fn reason(self) -> &'static str {
        match self {
            Refusal::Busy => "busy with another conversation",
            Refusal::CoolingDown { .. } => "waiting after a failed authentication from there",
            Refusal::Abandoning { .. } => "waiting after too many abandoned handshakes from there",
            Refusal::TooManyGuesses { .. } => "too many failed authentications lately",
            Refusal::TooManyFromSource => "too many connections from there at once",
            Refusal::TooManyAtOnce => "too many handshakes at once",
        }
    }
}

/// What a failed authentication did to its source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::chat) struct Penalty {
    /// How long the source now waits (zero in key-file mode).
    pub(in crate::chat) delay: Duration,
    /// Failed authentications in a row, from anywhere, since the last success.
    pub(in crate::chat) in_a_row: u32,
}

/// The settings the operator chose.
#[derive(Clone, Copy, Debug)]
pub(super) struct Rules {
    /// The first wait after a failure; each further failure from the same source doubles it.
    pub(super) fail_delay: Duration,
    /// Whether failures are guesses that slow their source (password mode) or not (key file).
    pub(super) throttle_guesses: bool,
}

/// What is remembered of one source: its failed authentications and abandoned handshakes.
#[derive(Debug)]
struct SourceRecord {
    failures: u32,
    last_failure: Instant,
    blocked_until: Instant,
    /// Abandoned handshakes in the window that began at `abandon_window_start`.
    abandoned: u32,
    abandon_window_start: Instant,
    last_abandon: Instant,
    /// Times this source was made to wait for abandoned handshakes (each doubles the next).
    abandon_waits: u32,
    abandon_blocked_until: Instant,
    /// The last failure or abandoned handshake: the stalest record is forgotten first.
    last_seen: Instant,
}

impl SourceRecord {
    fn new(now: Instant) -> SourceRecord {
        SourceRecord {
            failures: 0,
            last_failure: now,
            blocked_until: now,
            abandoned: 0,
            abandon_window_start: now,
            last_abandon: now,
            abandon_waits: 0,
            abandon_blocked_until: now,
            last_seen: now,
        }
    }
}

/// The server's admission state: one per server, behind a lock.
#[derive(Debug)]
pub(super) struct Admission {
    rules: Rules,
    talking: bool,
    handshakes: HashMap<Source, usize>,
    handshakes_total: usize,
    records: HashMap<Source, SourceRecord>,
    /// When the recent failed authentications happened, oldest first.
    recent_failures: Vec<Instant>,
    in_a_row: u32,
}

impl Admission {
    pub(super) fn new(rules: Rules) -> Admission {
        Admission {
            rules,
            talking: false,
            handshakes: HashMap::new(),
            handshakes_total: 0,
            records: HashMap::new(),
            recent_failures: Vec::new(),
            in_a_row: 0,
        }
    }

    /// A new connection: takes a handshake place for it, or says why not. No key work has
    /// been done, and a refused caller costs only the refusal.
    pub(super) fn connect(&mut self, source: Source, now: Instant) -> Result<(), Refusal> {
        self.check_waits(source, now)?;
        // Only here, not before a derivation: a caller that has sent its ClientFinished is not
        // abandoning its handshake.
        if let Some(record) = self.records.get(&source) {
            if record.abandon_blocked_until > now {
                return Err(Refusal::Abandoning {
                    left: record.abandon_blocked_until - now,
                });
            }
        }
        let from_source = self.handshakes.get(&source).copied().unwrap_or(0);
        if from_source >= MAX_HANDSHAKES_PER_SOURCE {
            return Err(Refusal::TooManyFromSource);
        }
        if self.handshakes_total >= MAX_HANDSHAKES {
            return Err(Refusal::TooManyAtOnce);
        }
        self.take_place(source);
        Ok(())
    }

    /// A place for `source` although all are taken, because the caller is closing a stalled
    /// connection to make room (its place is given back when its handshake ends).
    pub(super) fn connect_in_place_of_stalled(&mut self, source: Source) {
        self.take_place(source);
    }

    fn take_place(&mut self, source: Source) {
        *self.handshakes.entry(source).or_insert(0) += 1;
        self.handshakes_total += 1;
    }

    /// A handshake ended, however it ended: its place is free.
    pub(super) fn handshake_ended(&mut self, source: Source) {
        if let Some(count) = self.handshakes.get_mut(&source) {
            *count -= 1;
            if *count == 0 {
                self.handshakes.remove(&source);
            }
            self.handshakes_total -= 1;
        }
    }

    /// A caller has sent its ClientFinished: may the server derive keys to check it? Checked
    /// again here because a conversation or a failure may have come since it connected.
    pub(super) fn derive(&self, source: Source, now: Instant) -> Result<(), Refusal> {
        self.check_waits(source, now)
    }

    fn check_waits(&self, source: Source, now: Instant) -> Result<(), Refusal> {
        if self.talking {
            return Err(Refusal::Busy);
        }
        if let Some(record) = self.records.get(&source) {
            if record.blocked_until > now {
                return Err(Refusal::CoolingDown {
                    left: record.blocked_until - now,
                });
            }
        }
        if self.rules.throttle_guesses && self.recent_failures.len() >= GLOBAL_GUESSES {
            let oldest = self.recent_failures[self.recent_failures.len() - GLOBAL_GUESSES];
            let free_at = oldest + GUESS_WINDOW;
            if free_at > now {
                return Err(Refusal::TooManyGuesses {
                    left: free_at - now,
                });
            }
        }
        Ok(())
    }

    /// The caller proved the secret and now holds the conversation: every other caller is
    /// busy until [`Admission::conversation_ended`]. Its source starts afresh.
    pub(super) fn authenticated(&mut self, source: Source) {
        self.talking = true;
        self.in_a_row = 0;
        self.records.remove(&source);
    }

    pub(super) fn conversation_ended(&mut self) {
        self.talking = false;
    }

    /// The server checked a caller's ClientFinished and found it wrong: a guess.
    pub(super) fn failed(&mut self, source: Source, now: Instant) -> Penalty {
        self.in_a_row = self.in_a_row.saturating_add(1);
        if !self.rules.throttle_guesses {
            return Penalty {
                delay: Duration::ZERO,
                in_a_row: self.in_a_row,
            };
        }
        self.recent_failures.retain(|&at| at + GUESS_WINDOW > now);
        self.recent_failures.push(now);
        let fail_delay = self.rules.fail_delay;
        let record = self.record(source, now);
        if now.duration_since(record.last_failure) > FORGET_AFTER {
            record.failures = 0;
        }
        record.failures = record.failures.saturating_add(1);
        record.last_failure = now;
        record.last_seen = now;
        let doublings = (record.failures - 1).min(20);
        let delay = fail_delay
            .saturating_mul(1 << doublings)
            .min(MAX_FAIL_DELAY);
        record.blocked_until = now + delay;
        Penalty {
            delay,
            in_a_row: self.in_a_row,
        }
    }

    /// A handshake from `source` that got the server's ServerHello ended before a whole
    /// ClientFinished came (see the module's documentation). Returns the wait this source is
    /// now given, if this one was past its allowance.
    pub(super) fn abandoned(&mut self, source: Source, now: Instant) -> Option<Duration> {
        let record = self.record(source, now);
        if now.duration_since(record.last_abandon) > ABANDON_FORGET_AFTER {
            record.abandon_waits = 0;
        }
        if now.duration_since(record.abandon_window_start) >= ABANDON_WINDOW {
            record.abandoned = 0;
            record.abandon_window_start = now;
        }
        record.abandoned = record.abandoned.saturating_add(1);
        record.last_abandon = now;
        record.last_seen = now;
        if record.abandoned <= ABANDON_ALLOWANCE {
            return None;
        }
        let wait = ABANDON_WAIT
            .saturating_mul(1 << record.abandon_waits.min(20))
            .min(MAX_ABANDON_WAIT);
        record.abandon_waits = record.abandon_waits.saturating_add(1);
        // The allowance starts afresh after the wait (the handshakes still in progress when
        // the wait began count against it).
        record.abandoned = 0;
        record.abandon_window_start = now;
        record.abandon_blocked_until = now + wait;
        Some(wait)
    }

    /// The record of `source`, made if there is none (forgetting others first if the table is
    /// full).
    fn record(&mut self, source: Source, now: Instant) -> &mut SourceRecord {
        if !self.records.contains_key(&source) {
            self.forget_stale(now);
        }
        self.records
            .entry(source)
            .or_insert_with(|| SourceRecord::new(now))
    }

    /// Keeps the table of sources bounded: when it is full, sources quiet for an hour go, and
    /// then, while it is still full, the one heard from least recently.
    fn forget_stale(&mut self, now: Instant) {
        if self.records.len() < MAX_REMEMBERED {
            return;
        }
        self.records
            .retain(|_, record| now.duration_since(record.last_seen) <= FORGET_AFTER);
        while self.records.len() >= MAX_REMEMBERED {
            let stalest = self
                .records
                .iter()
                .min_by_key(|(_, record)| record.last_seen)
                .map(|(source, _)| *source);
            match stalest {
                Some(source) => self.records.remove(&source),
                None => break,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn source(last: u8) -> Source {
        Source::of(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
    }

    fn passwords() -> Admission {
        Admission::new(Rules {
            fail_delay: Duration::from_secs(2),
            throttle_guesses: true,
        })
    }

    #[test]
    fn each_source_gets_two_places_and_everyone_sixteen() {
        let mut admission = passwords();
        let now = Instant::now();
        assert_eq!(admission.connect(source(2), now), Ok(()));
        assert_eq!(admission.connect(source(2), now), Ok(()));
        assert_eq!(
            admission.connect(source(2), now),
            Err(Refusal::TooManyFromSource)
        );
        for last in 3..=16 {
            assert_eq!(admission.connect(source(last), now), Ok(()));
        }
        assert_eq!(
            admission.connect(source(1), now),
            Err(Refusal::TooManyAtOnce)
        );
        admission.handshake_ended(source(2));
        assert_eq!(admission.connect(source(1), now), Ok(()));
    }

    #[test]
    fn a_failure_slows_its_own_source_only_doubling_up_to_the_cap() {
        let mut admission = passwords();
        let start = Instant::now();
        let mut now = start;
        let mut delays = Vec::new();
        for _ in 0..10 {
            let penalty = admission.failed(source(2), now);
            delays.push(penalty.delay.as_secs());
            assert_eq!(
                admission.derive(source(2), now),
                Err(Refusal::CoolingDown {
                    left: penalty.delay
                })
            );
            assert_eq!(admission.derive(source(1), now), Ok(()));
            now += penalty.delay;
            assert_eq!(admission.derive(source(2), now), Ok(()));
        }
        assert_eq!(delays, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
    }

    #[test]
    fn all_sources_together_get_a_fixed_number_of_guesses_per_window() {
        let mut admission = passwords();
        let now = Instant::now();
        for n in 0..GLOBAL_GUESSES {
            admission.failed(source(10 + n as u8), now);
        }
        let refusal = admission.derive(source(1), now);
        assert_eq!(refusal, Err(Refusal::TooManyGuesses { left: GUESS_WINDOW }));
        assert_eq!(admission.derive(source(1), now + GUESS_WINDOW), Ok(()));
    }

    #[test]
    fn key_file_mode_has_nothing_to_guess_and_never_waits() {
        let mut admission = Admission::new(Rules {
            fail_delay: Duration::from_secs(2),
            throttle_guesses: false,
        });
        let now = Instant::now();
        for round in 1..=100 {
            let penalty = admission.failed(source(2), now);
            assert_eq!(penalty.delay, Duration::ZERO);
            assert_eq!(penalty.in_a_row, round);
            assert_eq!(admission.derive(source(2), now), Ok(()));
        }
    }

    #[test]
    fn a_conversation_makes_everyone_else_busy_until_it_ends() {
        let mut admission = passwords();
        let now = Instant::now();
        admission.failed(source(1), now);
        admission.authenticated(source(1));
        assert_eq!(admission.connect(source(2), now), Err(Refusal::Busy));
        assert_eq!(admission.derive(source(3), now), Err(Refusal::Busy));
        admission.conversation_ended();
        // The successful source starts afresh.
        assert_eq!(admission.derive(source(1), now), Ok(()));
    }

    #[test]
    fn ipv6_callers_are_counted_per_64_bit_prefix() {
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::ffff:1".parse().unwrap();
        let c: IpAddr = "2001:db8:0:1::1".parse().unwrap();
        assert_eq!(Source::of(a), Source::of(b));
        assert_ne!(Source::of(a), Source::of(c));
        assert_eq!(Source::of(a).to_string(), "2001:db8::/64");
        let mapped: IpAddr = "::ffff:127.0.0.2".parse().unwrap();
        assert_eq!(Source::of(mapped), source(2));
    }

    #[test]
    fn the_table_of_sources_stays_bounded() {
        let mut admission = passwords();
        let now = Instant::now();
        for n in 0..(MAX_REMEMBERED as u32 + 100) {
            let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n));
            admission.failed(Source::of(ip), now);
        }
        assert!(admission.records.len() <= MAX_REMEMBERED);
    }

    /// Abandons `count` handshakes from `source` at `now`; the waits (in seconds) they brought.
    fn abandon(admission: &mut Admission, source: Source, count: u32, now: Instant) -> Vec<u64> {
        (0..count)
            .filter_map(|_| admission.abandoned(source, now))
            .map(|wait| wait.as_secs())
            .collect()
    }

    #[test]
    fn a_source_may_abandon_a_few_handshakes_then_waits_and_others_do_not() {
        let mut admission = passwords();
        let now = Instant::now();
        assert!(abandon(&mut admission, source(2), ABANDON_ALLOWANCE, now).is_empty());
        assert_eq!(admission.connect(source(2), now), Ok(()));
        admission.handshake_ended(source(2));
        assert_eq!(admission.abandoned(source(2), now), Some(ABANDON_WAIT));
        assert_eq!(
            admission.connect(source(2), now),
            Err(Refusal::Abandoning { left: ABANDON_WAIT })
        );
        assert_eq!(
            Refusal::Abandoning { left: ABANDON_WAIT }.retry_after(),
            Some(ABANDON_WAIT)
        );
        // A caller from there that already sent its ClientFinished is still checked.
        assert_eq!(admission.derive(source(2), now), Ok(()));
        // The real client's address, and any other, is not affected.
        assert_eq!(admission.connect(source(1), now), Ok(()));
        assert_eq!(admission.connect(source(3), now), Ok(()));
        assert_eq!(admission.connect(source(2), now + ABANDON_WAIT), Ok(()));
    }

    #[test]
    fn the_allowance_is_per_window() {
        let mut admission = passwords();
        let mut now = Instant::now();
        for _ in 0..10 {
            assert!(abandon(&mut admission, source(2), ABANDON_ALLOWANCE, now).is_empty());
            now += ABANDON_WINDOW;
        }
        assert_eq!(admission.connect(source(2), now), Ok(()));
    }

    #[test]
    fn each_wait_for_abandoned_handshakes_doubles_up_to_the_cap() {
        let mut admission = passwords();
        let mut now = Instant::now();
        let mut waits = Vec::new();
        for _ in 0..7 {
            let cycle = abandon(&mut admission, source(2), ABANDON_ALLOWANCE + 1, now);
            assert_eq!(cycle.len(), 1, "{cycle:?}");
            waits.push(cycle[0]);
            let wait = Duration::from_secs(cycle[0]);
            assert_eq!(
                admission.connect(source(2), now + wait - Duration::from_millis(1)),
                Err(Refusal::Abandoning {
                    left: Duration::from_millis(1)
                })
            );
            now += wait;
            assert_eq!(admission.connect(source(2), now), Ok(()));
            admission.handshake_ended(source(2));
        }
        assert_eq!(waits, [30, 60, 120, 240, 300, 300, 300]);
        assert_eq!(MAX_ABANDON_WAIT.as_secs(), 300);
    }

    #[test]
    fn a_quiet_source_starts_again_from_the_first_wait() {
        let mut admission = passwords();
        let mut now = Instant::now();
        for expected in [30, 60, 120] {
            let cycle = abandon(&mut admission, source(2), ABANDON_ALLOWANCE + 1, now);
            assert_eq!(cycle, [expected]);
            now += Duration::from_secs(expected);
        }
        // Waiting out the wait is not enough to be forgotten...
        let cycle = abandon(&mut admission, source(2), ABANDON_ALLOWANCE + 1, now);
        assert_eq!(cycle, [240]);
        // ...but a quiet period is.
        now += Duration::from_secs(240) + ABANDON_FORGET_AFTER + Duration::from_secs(1);
        let cycle = abandon(&mut admission, source(2), ABANDON_ALLOWANCE + 1, now);
        assert_eq!(cycle, [30]);
    }

    #[test]
    fn completed_handshakes_and_failed_guesses_are_not_abandoned() {
        let mut admission = passwords();
        let now = Instant::now();
        // Failures have their own waits and do not spend the allowance.
        for _ in 0..5 {
            admission.failed(source(2), now);
        }
        assert!(abandon(&mut admission, source(2), ABANDON_ALLOWANCE, now).is_empty());
        // A source that authenticates starts afresh: its abandoned handshakes are forgotten.
        assert!(abandon(&mut admission, source(3), ABANDON_ALLOWANCE, now).is_empty());
        admission.authenticated(source(3));
        admission.conversation_ended();
        assert!(abandon(&mut admission, source(3), ABANDON_ALLOWANCE, now).is_empty());
        assert_eq!(admission.connect(source(3), now), Ok(()));
    }

    #[test]
    fn abandoned_handshakes_from_a_flood_of_addresses_keep_the_table_bounded() {
        let mut admission = passwords();
        let now = Instant::now();
        for n in 0..(MAX_REMEMBERED as u32 + 100) {
            let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n));
            admission.abandoned(Source::of(ip), now);
        }
        assert!(admission.records.len() <= MAX_REMEMBERED);
    }

    /// The help text, `aeschat passphrase` and README state the online-guessing rate this
    /// module allows; if the limits change, so must they.
    #[test]
    fn all_sources_together_get_at_most_120_guesses_an_hour() {
        let windows_per_hour = 3600 / GUESS_WINDOW.as_secs() as usize;
        assert_eq!(GLOBAL_GUESSES * windows_per_hour, 120);
    }
}
