//! CPace's secrets are wiped when their holders are dropped: a `Cpace`'s secret scalar and an
//! `Isk`'s 64 key bytes, with no stack scrub to help (a board has none).
//!
//! As in `wipe_on_drop.rs`, this binary's global allocator looks into every block freed while a
//! test arms it, through `/proc/self/mem` (the kernel copies the bytes, so no Rust reference to
//! freed bytes is made). The scalar is set through the generator, so its bytes are known (ristretto
//! scalars are kept as their 32 little-endian bytes). Each drop is paired with a block freed
//! without dropping its value, which must show the needle: a scanner that finds nothing cannot
//! pass for a wipe.

use std::alloc::{GlobalAlloc, Layout, System};
use std::convert::Infallible;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use aeschat_core::cpace::{Cpace, Isk, Role};
use rand_core::{TryCryptoRng, TryRng};

/// Blocks larger than this are not scanned (the values looked into are a few hundred bytes).
const MAX_SCANNED: usize = 4096;

static ARMED: AtomicBool = AtomicBool::new(false);
static MEMORY: OnceLock<File> = OnceLock::new();
/// What the armed scan looks for; set under `SCANNING` before arming.
static NEEDLE: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static HITS: AtomicUsize = AtomicUsize::new(0);
/// One armed scan at a time: the test harness runs tests on parallel threads.
static SCANNING: Mutex<()> = Mutex::new(());

struct Scanning;

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
    // `try_lock`: never block inside the allocator; the needle is set before arming.
    if let Ok(needle) = NEEDLE.try_lock() {
        if !needle.is_empty() && copy.windows(needle.len()).any(|w| w == needle.as_slice()) {
            HITS.fetch_add(1, Ordering::SeqCst);
        }
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator. While armed, `dealloc`
// first copies the block through `/proc/self/mem` into a stack buffer (a system call on a file
// opened before arming): it allocates nothing and dereferences no pointer.
unsafe impl GlobalAlloc for Scanning {
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

#[global_allocator]
static ALLOCATOR: Scanning = Scanning;

/// Hands out one fixed scalar.
struct FixedScalar([u8; 32]);

impl TryRng for FixedScalar {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(0)
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(0)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        dst.copy_from_slice(&self.0[..dst.len()]);
        Ok(())
    }
}

impl TryCryptoRng for FixedScalar {}

/// A scalar whose top four bits are already clear, so it is kept exactly as given.
fn scalar(tag: u8) -> [u8; 32] {
    let mut bytes: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(73) ^ tag);
    bytes[31] &= 0x0f;
    bytes
}

fn start(role: Role, tag: u8) -> Cpace {
    Cpace::new(
        role,
        b"password",
        b"ci",
        b"sid",
        &mut FixedScalar(scalar(tag)),
    )
    .unwrap()
}

/// Runs `free` armed, looking for `needle`, and returns how many freed blocks held it.
fn hits_while(needle: &[u8], free: impl FnOnce()) -> usize {
    *NEEDLE.lock().unwrap() = needle.to_vec();
    HITS.store(0, Ordering::SeqCst);
    ARMED.store(true, Ordering::SeqCst);
    free();
    ARMED.store(false, Ordering::SeqCst);
    HITS.load(Ordering::SeqCst)
}

/// Frees `boxed`'s block without dropping its value.
fn free_without_drop<T>(boxed: Box<T>) {
    let raw = Box::into_raw(boxed);
    // SAFETY: `raw` came from `Box::new` of this type, is freed once, and is never used again;
    // `Cpace` and `Isk` own no heap memory, so skipping their drop leaks nothing.
    unsafe { std::alloc::dealloc(raw.cast(), Layout::new::<T>()) }
}

fn lock() -> std::sync::MutexGuard<'static, ()> {
    MEMORY.get_or_init(|| File::open("/proc/self/mem").expect("cannot open /proc/self/mem"));
    SCANNING.lock().unwrap_or_else(|p| p.into_inner())
}

#[test]
fn a_dropped_cpace_leaves_no_scalar_in_memory() {
    let _one_at_a_time = lock();
    let needle = scalar(1);
    let found = hits_while(&needle, || {
        free_without_drop(Box::new(start(Role::Initiator, 1)))
    });
    assert!(
        found >= 1,
        "the scanner did not find the scalar in a block freed without a wipe"
    );
    let left = hits_while(&needle, || drop(Box::new(start(Role::Initiator, 1))));
    assert_eq!(left, 0, "a dropped Cpace left its scalar in memory");
}

#[test]
fn a_dropped_isk_leaves_no_key_in_memory() {
    let _one_at_a_time = lock();
    let isk = || -> Box<Isk> {
        let (a, b) = (start(Role::Initiator, 2), start(Role::Responder, 3));
        let b_share = *b.share();
        Box::new(a.finish(b"", &b_share, b"").unwrap())
    };
    let needle = isk().as_bytes().to_vec();
    let found = hits_while(&needle, || free_without_drop(isk()));
    assert!(
        found >= 1,
        "the scanner did not find the ISK in a block freed without a wipe"
    );
    let dropped = isk();
    let left = hits_while(&needle, || drop(dropped));
    assert_eq!(left, 0, "a dropped Isk left its key in memory");
}
