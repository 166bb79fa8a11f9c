//! A stand-in for a dependency that quietly links `std` or `alloc`, which is exactly what the
//! no_std check must catch. Without features it is an empty `#![no_std]` crate.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

/// Uses `std` (a heap vector and the process environment), so that it is really linked.
#[cfg(feature = "std")]
pub fn touch(seed: u8) -> usize {
    let mut bytes = std::vec::Vec::from([seed]);
    if std::env::var_os("AESCHAT_NOSTD_CANARY").is_some() {
        bytes.push(seed);
    }
    bytes.len()
}

/// Uses `alloc` (a heap vector), so that it is really linked.
#[cfg(all(feature = "alloc", not(feature = "std")))]
pub fn touch(seed: u8) -> usize {
    alloc::vec::Vec::from([seed]).len()
}

/// Links nothing: the crate is inert without a feature.
#[cfg(not(any(feature = "std", feature = "alloc")))]
pub fn touch(seed: u8) -> usize {
    usize::from(seed)
}
