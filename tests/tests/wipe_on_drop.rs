//! The core's keyed states are wiped when they are dropped, by the crates that hold them (`aes`,
//! `hmac` and `sha2` with their `zeroize` features), not only by the chat's stack scrubs, which
//! hide a missing wipe from the process-wide scans of `secrets.rs`: a board has no such scrub.
//!
//! This binary's global allocator looks into every block freed while a test arms it
//! (`aeschat_tests::freed_blocks`), for a key's AES half (an AES-NI key schedule begins with the key) and the
//! SHA-256 states after its signing half's inner and outer pad blocks (what a MAC key is kept
//! as, computed here with `sha2` from the pad blocks). Each drop is paired with a block freed
//! without dropping its value, which must show every needle: a scanner that finds nothing
//! cannot pass for a wipe.

use aeschat_core::fernet::{Key, PreparedKey};
use aeschat_tests::freed_blocks::{free_without_drop, hits_while, ScanningAllocator};
use sha2::digest::common::hazmat::SerializableState;
use sha2::{Digest, Sha256};

#[global_allocator]
static ALLOCATOR: ScanningAllocator = ScanningAllocator;

/// The needles: the AES key, the inner MAC state, the outer MAC state.
const NAMES: [&str; 3] = ["AES key", "inner MAC state", "outer MAC state"];

/// The SHA-256 state after one 64-byte block, as its eight words lie in memory.
fn state_after(block: &[u8; 64]) -> Vec<u8> {
    let mut hash = Sha256::new();
    hash.update(block);
    // The serialized state starts with the eight words, little-endian, as they are in memory
    // on this (little-endian) target; the block was compressed at once (an eager buffer).
    hash.serialize()[..32].to_vec()
}

fn targets_for(key: &[u8; 32]) -> [Vec<u8>; 3] {
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

#[test]
fn a_dropped_prepared_key_leaves_neither_its_aes_key_nor_its_mac_states_in_memory() {
    let bytes: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(73).wrapping_add(11));
    let targets = targets_for(&bytes);
    let needles: Vec<&[u8]> = targets.iter().map(Vec::as_slice).collect();
    let key = Key::from_bytes(bytes);

    // Freed without being dropped: nothing wiped it, so each needle is there to be found.
    let found = hits_while(&needles, || {
        free_without_drop(Box::new(PreparedKey::new(&key)))
    });
    for (name, &count) in NAMES.iter().zip(&found) {
        assert!(
            count >= 1,
            "the scanner did not find the {name} in a block freed without a wipe"
        );
    }

    // Dropped: the crates' wipes must leave none of it.
    let dropped = Box::new(PreparedKey::new(&key));
    let left = hits_while(&needles, || drop(dropped));
    eprintln!(
        "figures: a PreparedKey's block ({} B) freed without its drop held {found:?} of \
         [AES key, inner MAC state, outer MAC state]; after its drop {left:?}",
        size_of::<PreparedKey>()
    );
    for (name, &count) in NAMES.iter().zip(&left) {
        assert_eq!(count, 0, "a dropped PreparedKey left its {name} in memory");
    }
}
