//! Fresh random IVs drawn from the operating system many at a time: one system call per
//! [`IvPool`]-full instead of one per token. At small tokens that call costs as much as the
//! token itself (about 0.7 µs on the machine of `docs/PERFORMANCE.md`, against 0.5 µs for a
//! 16-byte token's cryptography).
//!
//! Every IV is still fresh: 16 bytes the operating system's generator produced, handed out once
//! and wiped from the pool as they go. An IV is public once its token is sent, but the bytes
//! after it are not, so the pool is wiped when dropped; it lives next to the key that uses its
//! IVs, so reading it early needs the same access as reading the key.

use zeroize::Zeroize;

use crate::fernet::{Error, Iv, IV_LEN};

/// The IVs an [`IvPool`] draws per system call unless told otherwise: 256, 4 KiB.
pub const DEFAULT_POOL_IVS: usize = 256;

/// A store of random IVs, refilled from the operating system `N` at a time. Keep one per
/// thread that encrypts, next to its key.
///
/// ```
/// use aeschat_core::fernet::{encrypt, token_len, IvPool, Key};
///
/// let key = Key::generate()?;
/// let mut ivs = IvPool::<16>::new(); // or IvPool::default(): 256 IVs per draw
/// let mut out = [0u8; token_len(5)];
/// let first = encrypt(&key, b"hello", 1_700_000_000, &ivs.draw()?, &mut out)?.to_owned();
/// let second = encrypt(&key, b"hello", 1_700_000_000, &ivs.draw()?, &mut out)?;
/// assert_ne!(first, second);
/// # Ok::<(), aeschat_core::fernet::Error>(())
/// ```
pub struct IvPool<const N: usize = DEFAULT_POOL_IVS> {
    store: [[u8; IV_LEN]; N],
    /// IVs of `store` already handed out (and wiped).
    used: usize,
}

impl<const N: usize> IvPool<N> {
    /// An empty pool: the first [`IvPool::draw`] draws `N` IVs.
    pub const fn new() -> IvPool<N> {
        IvPool {
            store: [[0; IV_LEN]; N],
            used: N,
        }
    }

    /// The next IV, drawing `N` more from the operating system when the pool is empty. An
    /// `IvPool<0>` draws each IV on its own.
    pub fn draw(&mut self) -> Result<Iv, Error> {
        if self.used >= N {
            if N == 0 {
                return Iv::random();
            }
            getrandom::fill(self.store.as_flattened_mut()).map_err(|_| Error::Randomness)?;
            self.used = 0;
        }
        let taken = self.store.get_mut(self.used).ok_or(Error::Randomness)?;
        let iv = Iv::from_bytes(*taken);
        taken.zeroize();
        self.used = self.used.saturating_add(1);
        Ok(iv)
    }
}

/// The pool as a random generator for the session, which draws each record's IV from it: the
/// operating system's bytes, many at a time. It can fail (as the operating system's generator
/// can), so it is a `TryCryptoRng`; [`crate::session::Sender::seal_text`] reports a failure
/// as [`crate::session::Error::Randomness`].
///
/// ```
/// # include!("doc/established_pair.rs");
/// # fn main() -> Result<(), aeschat_core::session::Error> {
/// # let (mut client, _) = established_pair();
/// use aeschat_core::fernet::IvPool;
/// use aeschat_core::session::record_frame_len;
/// let (mut sender, _) = client.split()?;
/// let mut ivs = IvPool::<64>::new();
/// let mut out = [0u8; record_frame_len(5)];
/// sender.seal_text(b"hello", &mut ivs, Some(1_700_000_000), &mut out)?;
/// # Ok(()) }
/// ```
impl<const N: usize> rand_core::TryRng for IvPool<N> {
    type Error = Error;

    fn try_next_u32(&mut self) -> Result<u32, Error> {
        rand_core::utils::next_word_via_fill(self)
    }

    fn try_next_u64(&mut self) -> Result<u64, Error> {
        rand_core::utils::next_word_via_fill(self)
    }

    /// Fills `out` an IV at a time; every byte handed out is wiped from the pool.
    fn try_fill_bytes(&mut self, out: &mut [u8]) -> Result<(), Error> {
        for chunk in out.chunks_mut(IV_LEN) {
            let iv = self.draw()?;
            let bytes = iv.as_bytes().get(..chunk.len()).unwrap_or_default();
            chunk.copy_from_slice(bytes);
        }
        Ok(())
    }
}

impl<const N: usize> rand_core::TryCryptoRng for IvPool<N> {}

impl<const N: usize> Default for IvPool<N> {
    fn default() -> Self {
        IvPool::new()
    }
}

impl<const N: usize> Drop for IvPool<N> {
    fn drop(&mut self) {
        self.store.as_flattened_mut().zeroize();
    }
}

impl<const N: usize> core::fmt::Debug for IvPool<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "IvPool({} of {N} left)", N.saturating_sub(self.used))
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    #[test]
    fn ivs_are_distinct_across_draws_and_wiped_once_taken() {
        let mut pool = IvPool::<8>::new();
        let mut seen = [[0u8; IV_LEN]; 3 * 8 + 5];
        for i in 0..seen.len() {
            seen[i] = *pool.draw().unwrap().as_bytes();
            assert!(!seen[..i].contains(&seen[i]), "an IV came twice");
            assert!(pool.store[..pool.used].iter().all(|iv| *iv == [0; IV_LEN]));
        }
        let mut single = IvPool::<0>::new();
        assert_ne!(single.draw().unwrap(), single.draw().unwrap());
    }
}
