//! Per-source limits: how many rooms one address may hold open, and how fast it may connect.
//! An IPv6 source is its /64 (what one home or one machine usually gets), so that a single
//! host cannot pass for millions of sources.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// A source as the limits count it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Source(u128);

impl Source {
    pub(super) fn of(address: SocketAddr) -> Source {
        match address.ip().to_canonical() {
            IpAddr::V4(ip) => Source(u128::from(u32::from(ip))),
            // The /64 prefix, marked so that it cannot equal an IPv4 number.
            IpAddr::V6(ip) => Source((u128::from(ip) >> 64) | (1 << 127)),
        }
    }
}

/// The limits, from the command line.
#[derive(Clone, Copy, Debug)]
pub(super) struct SourceLimits {
    /// Rooms (waiting or paired) one source may hold open at once.
    pub(super) rooms: u32,
    /// Connections one source may open per minute, in a burst or spread out.
    pub(super) connections_per_minute: u32,
}

struct SourceState {
    rooms: u32,
    /// Connections that may still be made now (a token bucket refilled continuously).
    allowance: f64,
    refilled: Instant,
}

/// The state of every source that holds a room or has connected lately.
pub(super) struct Sources {
    limits: SourceLimits,
    states: HashMap<Source, SourceState>,
}

impl Sources {
    pub(super) fn new(limits: SourceLimits) -> Sources {
        Sources {
            limits,
            states: HashMap::new(),
        }
    }

    fn state(&mut self, source: Source, now: Instant) -> &mut SourceState {
        let limits = self.limits;
        let state = self.states.entry(source).or_insert(SourceState {
            rooms: 0,
            allowance: f64::from(limits.connections_per_minute),
            refilled: now,
        });
        let burst = f64::from(limits.connections_per_minute);
        let elapsed = now.saturating_duration_since(state.refilled).as_secs_f64();
        state.allowance = (state.allowance + elapsed * burst / 60.0).min(burst);
        state.refilled = now;
        state
    }

    /// Counts a new connection from `source`: `Ok` if it may go on, or the seconds until it
    /// could.
    pub(super) fn connect(&mut self, source: Source, now: Instant) -> Result<(), u32> {
        let per_minute = f64::from(self.limits.connections_per_minute);
        let state = self.state(source, now);
        if state.allowance >= 1.0 {
            state.allowance -= 1.0;
            return Ok(());
        }
        // The time until one whole connection is allowed again, rounded up.
        let wait = ((1.0 - state.allowance) * 60.0 / per_minute).ceil();
        Err(wait.clamp(1.0, 3600.0) as u32)
    }

    /// Counts a room opened by `source`, if it may open one more.
    pub(super) fn open_room(&mut self, source: Source, now: Instant) -> bool {
        let most = self.limits.rooms;
        let state = self.state(source, now);
        if state.rooms >= most {
            return false;
        }
        state.rooms += 1;
        true
    }

    /// A room of `source` ended.
    pub(super) fn close_room(&mut self, source: Source) {
        if let Some(state) = self.states.get_mut(&source) {
            state.rooms = state.rooms.saturating_sub(1);
        }
    }

    /// Forgets sources that hold no room and whose allowance is whole again, so the table
    /// stays as small as the set of recent callers.
    pub(super) fn forget_idle(&mut self, now: Instant) {
        let burst = f64::from(self.limits.connections_per_minute);
        self.states.retain(|_, state| {
            let elapsed = now.saturating_duration_since(state.refilled).as_secs_f64();
            state.rooms > 0 || state.allowance + elapsed * burst / 60.0 < burst
        });
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.states.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn address(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_ipv6_source_is_its_slash_64_and_never_an_ipv4_one() {
        let a = Source::of(address("[2001:db8::1]:1"));
        let b = Source::of(address("[2001:db8::ffff:2]:2"));
        let c = Source::of(address("[2001:db8:0:1::1]:1"));
        assert_eq!(a, b);
        assert_ne!(a, c);
        let v4 = Source::of(address("10.0.0.1:1"));
        assert_eq!(v4, Source::of(address("[::ffff:10.0.0.1]:9")));
        assert_ne!(v4, Source::of(address("[::a00:1]:9")));
    }

    #[test]
    fn connections_beyond_the_burst_wait_for_the_refill() {
        let mut sources = Sources::new(SourceLimits {
            rooms: 2,
            connections_per_minute: 3,
        });
        let one = Source::of(address("10.0.0.1:1"));
        let other = Source::of(address("10.0.0.2:1"));
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(sources.connect(one, start), Ok(()));
        }
        assert_eq!(sources.connect(one, start), Err(20));
        assert_eq!(sources.connect(other, start), Ok(()));
        assert_eq!(
            sources.connect(one, start + Duration::from_secs(20)),
            Ok(())
        );
        assert!(sources
            .connect(one, start + Duration::from_secs(21))
            .is_err());
    }

    #[test]
    fn rooms_are_counted_until_closed_and_idle_sources_forgotten() {
        let mut sources = Sources::new(SourceLimits {
            rooms: 2,
            connections_per_minute: 60,
        });
        let one = Source::of(address("10.0.0.1:1"));
        let now = Instant::now();
        assert!(sources.open_room(one, now));
        assert!(sources.open_room(one, now));
        assert!(!sources.open_room(one, now));
        sources.close_room(one);
        assert!(sources.open_room(one, now));
        sources.close_room(one);
        sources.close_room(one);
        sources.close_room(one);
        sources.forget_idle(now + Duration::from_secs(120));
        assert_eq!(sources.len(), 0);
    }
}
