//! What the relay counts, and the one line a minute it prints: numbers only, never an address,
//! a room number or a byte of what it forwards.

use std::fmt;

/// Counts since the relay started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Stats {
    pub(super) accepted: u64,
    pub(super) accept_failures: u64,
    pub(super) refused_busy: u64,
    pub(super) refused_rate: u64,
    pub(super) refused_rooms: u64,
    pub(super) refused_bad_hello: u64,
    pub(super) refused_no_room: u64,
    pub(super) refused_full: u64,
    pub(super) hung_up: u64,
    pub(super) hello_timeouts: u64,
    pub(super) rooms_opened: u64,
    pub(super) rooms_expired: u64,
    pub(super) pairs_made: u64,
    pub(super) pairs_ended: u64,
    pub(super) pairs_failed: u64,
    pub(super) pairs_idle: u64,
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "connections {} (accept failures {}); rooms opened {}, expired {}; pairs made {}, \
             ended {} (cut for errors {}, idle {}); refused: busy {}, rate {}, rooms per \
             source {}, bad hello {}, no such room {}, room full {}; hung up before a hello {}, \
             hello timeouts {}",
            self.accepted,
            self.accept_failures,
            self.rooms_opened,
            self.rooms_expired,
            self.pairs_made,
            self.pairs_ended,
            self.pairs_failed,
            self.pairs_idle,
            self.refused_busy,
            self.refused_rate,
            self.refused_rooms,
            self.refused_bad_hello,
            self.refused_no_room,
            self.refused_full,
            self.hung_up,
            self.hello_timeouts,
        )
    }
}
