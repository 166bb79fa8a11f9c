//! Fresh random IVs for the records this side sends, drawn from the operating system a few
//! hundred at a time instead of one system call per record (at small messages that call cost
//! as much as sealing the record).
//!
//! An IV must be unpredictable until it is used, and never used twice: each one is taken from
//! bytes the operating system's generator produced, handed out once, and wiped from the store
//! as it goes (it is public once sent, but the bytes after it are not). The store is wiped
//! when dropped. It lives in this process's memory next to the session keys, so it adds no
//! way to learn an IV early that would not also reveal the keys.

use aeschat_core::{Error, Iv, IV_LEN};
use zeroize::Zeroize;

/// IVs drawn per system call.
const IVS_PER_DRAW: usize = 256;

pub(super) struct Ivs {
    store: [u8; IV_LEN * IVS_PER_DRAW],
    /// Bytes of `store` already handed out (and wiped).
    used: usize,
}

impl Ivs {
    /// An empty store: the first IV draws.
    pub(super) fn new() -> Ivs {
        Ivs {
            store: [0; IV_LEN * IVS_PER_DRAW],
            used: IV_LEN * IVS_PER_DRAW,
        }
    }

    /// The next IV.
    pub(super) fn next(&mut self) -> Result<Iv, Error> {
        if self.used >= self.store.len() {
            getrandom::fill(&mut self.store).map_err(|_| Error::Randomness)?;
            self.used = 0;
        }
        let mut bytes = [0u8; IV_LEN];
        let taken = self
            .store
            .get_mut(self.used..self.used + IV_LEN)
            .ok_or(Error::Randomness)?;
        bytes.copy_from_slice(taken);
        taken.zeroize();
        self.used += IV_LEN;
        Ok(Iv::from_bytes(bytes))
    }
}

impl Drop for Ivs {
    fn drop(&mut self) {
        self.store.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::{Ivs, IVS_PER_DRAW};
    use std::collections::HashSet;

    #[test]
    fn ivs_are_distinct_across_draws_and_wiped_once_taken() {
        let mut ivs = Ivs::new();
        let mut seen = HashSet::new();
        for _ in 0..3 * IVS_PER_DRAW + 5 {
            let iv = ivs.next().unwrap();
            assert!(seen.insert(*iv.as_bytes()), "an IV came twice");
            assert!(ivs.store[..ivs.used].iter().all(|&byte| byte == 0));
        }
    }
}
