//! Looking into heap blocks as they are freed, for secrets a drop should have wiped, with no
//! stack scrub to help (a board has none). A test binary installs [`ScanningAllocator`] as its
//! global allocator; [`hits_while`] arms it around a closure that frees something and counts
//! the freed blocks that held each needle.
//!
//! The allocator forwards everything to the system's. While armed, it first copies each freed
//! block (up to [`MAX_SCANNED`] bytes) through `/proc/self/mem`: the kernel copies the bytes,
//! so no Rust reference to freed or padding bytes is made, and nothing is allocated inside the
//! allocator. Tests pair every drop with a block freed without dropping its value
//! ([`free_without_drop`]), which must show the needles: a scanner that finds nothing cannot
//! pass for a wipe.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// Blocks larger than this are not scanned (the values looked into are a few hundred bytes).
pub const MAX_SCANNED: usize = 4096;
/// The most needles one scan looks for.
pub const MAX_NEEDLES: usize = 4;

static ARMED: AtomicBool = AtomicBool::new(false);
static MEMORY: OnceLock<File> = OnceLock::new();
/// What the armed scan looks for; set before arming, read with `try_lock` while armed.
static NEEDLES: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
static HITS: [AtomicUsize; MAX_NEEDLES] = [const { AtomicUsize::new(0) }; MAX_NEEDLES];
/// One armed scan at a time: the test harness runs tests on parallel threads.
static SCANNING: Mutex<()> = Mutex::new(());

/// The system allocator, which looks into blocks freed while a scan is armed. Install it with
/// `#[global_allocator] static ALLOCATOR: ScanningAllocator = ScanningAllocator;`.
pub struct ScanningAllocator;

fn scan(ptr: *mut u8, size: usize) {
    let Some(memory) = MEMORY.get() else {
        return;
    };
    if size > MAX_SCANNED {
        return;
    }
    let mut copy = [0u8; MAX_SCANNED];
    let copy = &mut copy[..size];
    if memory.read_exact_at(copy, ptr as u64).is_err() {
        return;
    }
    // `try_lock`: never block inside the allocator; the needles are set before arming.
    let Ok(needles) = NEEDLES.try_lock() else {
        return;
    };
    for (needle, hits) in needles.iter().zip(&HITS) {
        if copy.windows(needle.len()).any(|window| window == needle) {
            hits.fetch_add(1, Ordering::SeqCst);
        }
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator. While armed, `dealloc`
// first copies the block through `/proc/self/mem` into a stack buffer (a system call on a file
// opened before arming): it allocates nothing and dereferences no pointer.
unsafe impl GlobalAlloc for ScanningAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which we pass on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ARMED.load(Ordering::SeqCst) {
            scan(ptr, layout.size());
        }
        // SAFETY: `ptr` and `layout` come from this allocator, which is the system's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Runs `free` with the scan armed and returns, for each needle, how many blocks freed meanwhile
/// held it. Scans run one at a time. Only meaningful in a binary whose global allocator is
/// [`ScanningAllocator`] (elsewhere every count is 0, which the paired positive control of
/// each test catches).
pub fn hits_while(needles: &[&[u8]], free: impl FnOnce()) -> Vec<usize> {
    assert!(
        needles.len() <= MAX_NEEDLES,
        "at most {MAX_NEEDLES} needles"
    );
    let _one_at_a_time = SCANNING.lock().unwrap_or_else(|p| p.into_inner());
    MEMORY.get_or_init(|| File::open("/proc/self/mem").expect("cannot open /proc/self/mem"));
    *NEEDLES.lock().unwrap_or_else(|p| p.into_inner()) =
        needles.iter().map(|needle| needle.to_vec()).collect();
    for hits in &HITS {
        hits.store(0, Ordering::SeqCst);
    }
    ARMED.store(true, Ordering::SeqCst);
    free();
    ARMED.store(false, Ordering::SeqCst);
    HITS[..needles.len()]
        .iter()
        .map(|hits| hits.load(Ordering::SeqCst))
        .collect()
}

/// Frees `boxed`'s block without dropping its value: the positive control of a wipe test. Only
/// for values that own no heap memory (skipping their drop must leak nothing).
pub fn free_without_drop<T>(boxed: Box<T>) {
    let raw = Box::into_raw(boxed);
    // SAFETY: `raw` came from `Box::new` of this type, is freed once, and is never used again;
    // the caller's value owns no heap memory, so skipping its drop leaks nothing.
    unsafe { std::alloc::dealloc(raw.cast(), Layout::new::<T>()) }
}
