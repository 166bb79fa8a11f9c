//! CPace's secrets are wiped when their holders are dropped: a `Cpace`'s secret scalar and an
//! `Isk`'s 64 key bytes, with no stack scrub to help (a board has none).
//!
//! As in `wipe_on_drop.rs`, this binary's global allocator looks into every block freed while a
//! test arms it (`aeschat_tests::freed_blocks`). The scalar is set through the generator, so its bytes are known (ristretto
//! scalars are kept as their 32 little-endian bytes). Each drop is paired with a block freed
//! without dropping its value, which must show the needle: a scanner that finds nothing cannot
//! pass for a wipe.

use std::convert::Infallible;

use aeschat_core::cpace::{Cpace, Isk, Role};
use aeschat_tests::freed_blocks::{free_without_drop, hits_while, ScanningAllocator};
use rand_core::{TryCryptoRng, TryRng};

#[global_allocator]
static ALLOCATOR: ScanningAllocator = ScanningAllocator;

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

#[test]
fn a_dropped_cpace_leaves_no_scalar_in_memory() {
    let needle = scalar(1);
    let found = hits_while(&[&needle], || {
        free_without_drop(Box::new(start(Role::Initiator, 1)))
    })[0];
    assert!(
        found >= 1,
        "the scanner did not find the scalar in a block freed without a wipe"
    );
    let left = hits_while(&[&needle], || drop(Box::new(start(Role::Initiator, 1))))[0];
    assert_eq!(left, 0, "a dropped Cpace left its scalar in memory");
}

#[test]
fn a_dropped_isk_leaves_no_key_in_memory() {
    let isk = || -> Box<Isk> {
        let (a, b) = (start(Role::Initiator, 2), start(Role::Responder, 3));
        let b_share = *b.share();
        Box::new(a.finish(b"", &b_share, b"").unwrap())
    };
    let needle = isk().as_bytes().to_vec();
    let found = hits_while(&[&needle], || free_without_drop(isk()))[0];
    assert!(
        found >= 1,
        "the scanner did not find the ISK in a block freed without a wipe"
    );
    let dropped = isk();
    let left = hits_while(&[&needle], || drop(dropped))[0];
    assert_eq!(left, 0, "a dropped Isk left its key in memory");
}
