//! With the `count-allocations` feature: a global allocator that counts every heap allocation
//! of the process (all threads), and at exit one line on stderr,
//! `aeschat: heap allocations after the handshake: N (M messages)`, where N counts from the
//! moment the last handshake succeeded and M is the messages this side sent and received in
//! that time. `tests/tests/chat_alloc.rs` checks that N does not grow with M.
//!
//! Without the feature (the normal build) every function here is empty and the system
//! allocator is used as it is.

#[cfg(feature = "count-allocations")]
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    /// Allocations and reallocations since the process started.
    static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
    /// `ALLOCATIONS` when the last handshake succeeded.
    static AT_HANDSHAKE: AtomicU64 = AtomicU64::new(0);
    static HANDSHAKEN: AtomicBool = AtomicBool::new(false);
    /// Messages sent and received since then.
    static MESSAGES: AtomicU64 = AtomicU64::new(0);

    /// The system allocator, counting.
    struct Counting;

    // SAFETY: every call is forwarded unchanged to the system allocator; counting touches only
    // an atomic and never allocates.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which we pass on.
            unsafe { System.alloc(layout) }
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            // SAFETY: as for `alloc`.
            unsafe { System.alloc_zeroed(layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            // SAFETY: `ptr` and `layout` come from this allocator, which is the system's.
            unsafe { System.realloc(ptr, layout, new_size) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: `ptr` and `layout` come from this allocator, which is the system's.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[global_allocator]
    static ALLOCATOR: Counting = Counting;

    pub(in crate::chat) fn handshake_done() {
        MESSAGES.store(0, Ordering::Relaxed);
        AT_HANDSHAKE.store(ALLOCATIONS.load(Ordering::Relaxed), Ordering::Relaxed);
        HANDSHAKEN.store(true, Ordering::Relaxed);
    }

    pub(in crate::chat) fn message() {
        MESSAGES.fetch_add(1, Ordering::Relaxed);
    }

    pub(in crate::chat) fn report() {
        if !HANDSHAKEN.load(Ordering::Relaxed) {
            return;
        }
        // Read before the line is made: making it allocates.
        let after = ALLOCATIONS.load(Ordering::Relaxed) - AT_HANDSHAKE.load(Ordering::Relaxed);
        let messages = MESSAGES.load(Ordering::Relaxed);
        super::super::terminal::status(&format!(
            "aeschat: heap allocations after the handshake: {after} ({messages} messages)"
        ));
    }
}

#[cfg(feature = "count-allocations")]
pub(super) use counting::{handshake_done, message, report};

/// Marks the end of a successful handshake: allocations are counted from here.
#[cfg(not(feature = "count-allocations"))]
pub(super) fn handshake_done() {}

/// Counts one message sent or received.
#[cfg(not(feature = "count-allocations"))]
#[inline(always)]
pub(super) fn message() {}

/// Prints the count, at exit.
#[cfg(not(feature = "count-allocations"))]
pub(super) fn report() {}
