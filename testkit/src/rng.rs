//! Deterministic generators. FOR TESTS ONLY: neither is random, and an engine fed by one makes
//! nonces and IVs anybody can predict.

use core::convert::Infallible;

use rand_core::{TryCryptoRng, TryRng};

/// A deterministic generator (SplitMix64) from a seed.
///
/// **FOR TESTS, FUZZING AND BENCHMARKS ONLY. NOT CRYPTOGRAPHICALLY SECURE.** It claims to be a
/// `CryptoRng` only so an engine accepts it; its output follows from its seed, so handshake
/// nonces and record IVs drawn from it are predictable. Real code hands the engine the
/// operating system's generator or a board's TRNG.
///
/// ```
/// use aeschat_testkit::TestRng;
/// use rand_core::Rng;
///
/// let (mut a, mut b) = (TestRng::new(7), TestRng::new(7));
/// assert_eq!(a.next_u64(), b.next_u64(), "same seed, same bytes");
/// ```
#[derive(Clone, Debug)]
pub struct TestRng {
    state: u64,
}

impl TestRng {
    /// A generator whose whole output follows from `seed`.
    pub const fn new(seed: u64) -> TestRng {
        TestRng { state: seed }
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl TryRng for TestRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self
            .next()
            .to_le_bytes()
            .first_chunk()
            .map_or(0, |w| u32::from_le_bytes(*w)))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.next())
    }

    fn try_fill_bytes(&mut self, out: &mut [u8]) -> Result<(), Infallible> {
        for chunk in out.chunks_mut(8) {
            let word = self.next().to_le_bytes();
            for (dst, src) in chunk.iter_mut().zip(word) {
                *dst = src;
            }
        }
        Ok(())
    }
}

/// Not secure: see the type's documentation. For tests only.
impl TryCryptoRng for TestRng {}

/// A "generator" that hands out given bytes in order: a golden transcript's recorded nonce,
/// then its recorded IVs, so a replay reproduces the transcript byte for byte.
///
/// **FOR TESTS ONLY. NOT RANDOM AT ALL.** It panics when asked for more bytes than it was
/// given (a test that draws more than it recorded is wrong, and must not go on quietly).
///
/// ```
/// use aeschat_testkit::Replay;
/// use rand_core::Rng;
///
/// let mut replay = Replay::new([[1u8; 4].as_slice(), &[2; 2]].concat());
/// let mut out = [0u8; 5];
/// replay.fill_bytes(&mut out);
/// assert_eq!(out, [1, 1, 1, 1, 2]);
/// assert_eq!(replay.remaining(), 1);
/// ```
#[derive(Clone, Debug)]
pub struct Replay {
    bytes: Vec<u8>,
    position: usize,
}

impl Replay {
    /// Hands out `bytes`, in order.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Replay {
        Replay {
            bytes: bytes.into(),
            position: 0,
        }
    }

    /// Appends more bytes to hand out after the ones given so far.
    pub fn push(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }

    /// How many bytes are left to hand out.
    pub fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.position)
    }
}

impl TryRng for Replay {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        rand_core::utils::next_word_via_fill(self)
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        rand_core::utils::next_word_via_fill(self)
    }

    fn try_fill_bytes(&mut self, out: &mut [u8]) -> Result<(), Infallible> {
        let end = self.position.saturating_add(out.len());
        let Some(bytes) = self.bytes.get(self.position..end) else {
            panic!(
                "Replay ran out: asked for {} bytes, {} left",
                out.len(),
                self.remaining()
            );
        };
        out.copy_from_slice(bytes);
        self.position = end;
        Ok(())
    }
}

/// Not random: see the type's documentation. For tests only.
impl TryCryptoRng for Replay {}
