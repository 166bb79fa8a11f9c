//! The core's keyed states are wiped when they are dropped, by the crates that hold them (`aes`,
//! `hmac` and `sha2` with their `zeroize` features), not only by the chat's stack scrubs, which
//! hide a missing wipe from the process-wide scans of `secrets.rs`: a board has no such scrub.
//!
//! This binary's global allocator looks into every block freed while a test arms it, through
//! `/proc/self/mem` (the kernel copies the bytes, so no Rust reference to freed or padding
//! bytes is made), for a key's AES half (an AES-NI key schedule begins with the key) and the
//! SHA-256 states after its signing half's inner and outer pad blocks (what a MAC key is kept
//! as, computed here with `sha2` from the pad blocks). Each drop is paired with a block freed
//! without dropping its value, which must show every needle: a scanner that finds nothing
//! cannot pass for a wipe.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use aeschat_core::fernet::{Key, PreparedKey};
use sha2::digest::common::hazmat::SerializableState;
use sha2::{Digest, Sha256};

/// The needles: the AES key, the inner MAC state, the outer MAC state.
const NEEDLES: usize = 3;
const NAMES: [&str; NEEDLES] = ["AES key", "inner MAC state", "outer MAC state"];
/// Blocks larger than this are not scanned (the values looked into are a few hundred bytes).
const MAX_SCANNED: usize = 4096;

static ARMED: AtomicBool = AtomicBool::new(false);
static MEMORY: OnceLock<File> = OnceLock::new();
static TARGETS: OnceLock<[Vec<u8>; NEEDLES]> = OnceLock::new();
static HITS: [AtomicUsize; NEEDLES] = [const { AtomicUsize::new(0) }; NEEDLES];
/// One armed scan at a time: the test harness runs tests on parallel threads.
static SCANNING: Mutex<()> = Mutex::new(());

/// The system allocator, which looks into blocks freed while armed.
struct Scanning;

fn scan(ptr: *mut u8, size: usize) {
    let (Some(memory), Some(targets)) = (MEMORY.get(), TARGETS.get()) else {
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
    for (target, hits) in targets.iter().zip(&HITS) {
        if copy
            .windows(target.len())
            .any(|window| window == target.as_slice())
        {
            hits.fetch_add(1, Ordering::SeqCst);
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

/// The SHA-256 state after one 64-byte block, as its eight words lie in memory.
fn state_after(block: &[u8; 64]) -> Vec<u8> {
    let mut hash = Sha256::new();
    hash.update(block);
    // The serialized state starts with the eight words, little-endian, as they are in memory
    // on this (little-endian) target; the block was compressed at once (an eager buffer).
    hash.serialize()[..32].to_vec()
}

fn targets_for(key: &[u8; 32]) -> [Vec<u8>; NEEDLES] {
    let pad_block = |pad: u8| {
        let mut block = [pad; 64];
        for (b, k) in block.iter_mut().zip(&key[..16]) {
            *b ^= k;
        }
        block
    };
    [
        key[16..].to_vec(),
        state_after(&pad_block(0x36)),
        state_after(&pad_block(0x5c)),
    ]
}

/// Runs `free` armed and returns how many freed blocks held each needle.
fn hits_while(free: impl FnOnce()) -> [usize; NEEDLES] {
    for hits in &HITS {
        hits.store(0, Ordering::SeqCst);
    }
    ARMED.store(true, Ordering::SeqCst);
    free();
    ARMED.store(false, Ordering::SeqCst);
    std::array::from_fn(|i| HITS[i].load(Ordering::SeqCst))
}

#[test]
fn a_dropped_prepared_key_leaves_neither_its_aes_key_nor_its_mac_states_in_memory() {
    let _one_at_a_time = SCANNING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let bytes: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(73).wrapping_add(11));
    MEMORY.get_or_init(|| File::open("/proc/self/mem").expect("cannot open /proc/self/mem"));
    let targets = TARGETS.get_or_init(|| targets_for(&bytes));
    assert_eq!(
        targets,
        &targets_for(&bytes),
        "one key for the whole binary"
    );
    let key = Key::from_bytes(bytes);

    // Freed without being dropped: nothing wiped it, so each needle is there to be found.
    let forgotten = Box::into_raw(Box::new(PreparedKey::new(&key)));
    let found = hits_while(|| {
        // SAFETY: `forgotten` came from `Box::new` of this type, is freed once, and is never
        // used again; `PreparedKey` owns no heap memory, so skipping its drop leaks nothing.
        unsafe { std::alloc::dealloc(forgotten.cast(), Layout::new::<PreparedKey>()) }
    });
    for (name, count) in NAMES.iter().zip(found) {
        assert!(
            count >= 1,
            "the scanner did not find the {name} in a block freed without a wipe"
        );
    }

    // Dropped: the crates' wipes must leave none of it.
    let dropped = Box::new(PreparedKey::new(&key));
    let left = hits_while(|| drop(dropped));
    eprintln!(
        "figures: a PreparedKey's block ({} B) freed without its drop held {found:?} of \
         [AES key, inner MAC state, outer MAC state]; after its drop {left:?}",
        size_of::<PreparedKey>()
    );
    for (name, count) in NAMES.iter().zip(left) {
        assert_eq!(count, 0, "a dropped PreparedKey left its {name} in memory");
    }
}
