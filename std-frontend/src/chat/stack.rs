//! Wiping the stack memory that finished work with secrets used.
//!
//! Moving a value in Rust copies its bytes and leaves the old ones behind, and so does every
//! callee that holds a key in a local for a while: a key that wipes itself on drop wipes only
//! its last copy. The functions that read the pre-shared key, run the handshake and receive a
//! conversation's records leave such copies in stack frames that are gone once they return,
//! yet the memory keeps the bytes until something happens to overwrite it. [`scrub`]
//! overwrites it on purpose (the technique libsodium offers as `sodium_stackzero`), so a
//! memory dump or a core file taken later does not show them.

use zeroize::Zeroize;

/// How much stack below the caller [`scrub`] overwrites. Measured with the memory scans of
/// `tests/tests/secrets.rs`, shrinking this until they fail: a release build needs 16 KiB or
/// less, a debug build over 96 KiB (it builds the 87 KiB frame reader on the stack before
/// boxing it, and the handshake runs below that). Twice the debug figure, and well inside the
/// smallest stack this runs on (a spawned thread's, 2 MiB). The cost is writing 256 KiB once
/// per conversation.
const SCRUBBED_LEN: usize = 256 * 1024;

/// Overwrites with zeros the stack memory that the frames of functions this caller has
/// called, and which have returned, occupied. Call it from the function that called the work
/// with secrets, right after that work returned.
#[inline(never)]
pub(super) fn scrub() {
    // Words rather than bytes: eight times fewer volatile stores (measured in a release
    // build: 25 µs for the 256 KiB, against 0.1 ms in bytes).
    let mut area = [0u64; SCRUBBED_LEN / 8];
    // Zeroize writes through volatile stores, which the optimiser must keep even though
    // nothing reads the area afterwards; `black_box` keeps the array itself from being elided.
    area.zeroize();
    std::hint::black_box(&area);
}
