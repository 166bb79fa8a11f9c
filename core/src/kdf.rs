//! Key derivation: PBKDF2-HMAC-SHA256 from a password, HKDF-SHA256 (RFC 5869) for working keys.

use hmac::digest::FixedOutputReset;
use hmac::{HmacReset, Mac as _};
use sha2::Sha256;
use zeroize::Zeroize;

use crate::mac::{keyed, MacKey};

/// The length of a SHA-256 output, and of every key derived here.
pub(crate) const HASH_LEN: usize = 32;

/// PBKDF2-HMAC-SHA256 (RFC 8018, section 5.2) producing exactly one 32-byte block: a longer
/// output would cost the defender a full extra run per block while an attacker needs only the
/// first. An `iterations` of 0 counts as 1 (the handshake refuses 0 before this).
///
/// RFC 8018's function F for block 1, as a loop over `hmac::HmacReset`, not a call to
/// `pbkdf2::pbkdf2_hmac`: the crate clones its keyed HMAC for every iteration and drops the
/// clone, which with the `zeroize` features wipes a 64-byte buffer and two hash states each
/// time; at 600,000 iterations that made the derivation about a quarter slower, measured side
/// by side (docs/PERFORMANCE.md). `HmacReset` computes every iteration in one working state
/// that goes back to the keyed state after each tag, and is wiped once, when dropped.
///
/// The loop runs in slices ([`Pbkdf2::run`]), so that a board can feed its watchdog and an
/// executor can yield between them: minutes of work on a microcontroller need not be one call.
/// Unit tests check it, in one call and in slices of every size, against the `pbkdf2` crate and
/// RFC 7914's vectors.
#[allow(dead_code)] // protocol 1's stretching: unused by protocol 2, to be removed with the iteration API
pub(crate) struct Pbkdf2 {
    prf: HmacReset<Sha256>,
    /// U_i, the last PRF output.
    u: [u8; HASH_LEN],
    /// U_1 ^ ... ^ U_i.
    block: [u8; HASH_LEN],
    /// Iterations still to run after U_1.
    remaining: u32,
}

#[allow(dead_code)]
impl Pbkdf2 {
    /// Computes U_1 and sets up the remaining `iterations - 1`.
    pub(crate) fn start(password: &[u8], salt: &[u8], iterations: u32) -> Pbkdf2 {
        let mut prf: HmacReset<Sha256> = keyed(password);
        // U_1 = PRF(password, salt || INT(1)).
        prf.update(salt);
        prf.update(&1u32.to_be_bytes());
        let mut u = [0u8; HASH_LEN];
        prf.finalize_into_reset((&mut u).into());
        Pbkdf2 {
            prf,
            u,
            block: u,
            remaining: iterations.saturating_sub(1),
        }
    }

    /// Runs at most `iterations` more iterations (at least one, while any are left) and says
    /// whether the derivation is complete.
    pub(crate) fn run(&mut self, iterations: u32) -> bool {
        let now = self.remaining.min(iterations.max(1));
        // U_i = PRF(password, U_{i-1}); the block is U_1 ^ U_2 ^ ... ^ U_c.
        for _ in 0..now {
            self.prf.update(&self.u);
            self.prf.finalize_into_reset((&mut self.u).into());
            for (m, b) in self.block.iter_mut().zip(&self.u) {
                *m ^= b;
            }
        }
        self.remaining = self.remaining.saturating_sub(now);
        self.remaining == 0
    }

    /// Iterations still to run.
    pub(crate) fn remaining(&self) -> u32 {
        self.remaining
    }

    /// The derived block, once [`Pbkdf2::run`] has said it is complete.
    pub(crate) fn finish(mut self) -> [u8; HASH_LEN] {
        core::mem::take(&mut self.block)
    }
}

impl Drop for Pbkdf2 {
    fn drop(&mut self) {
        // With U_{c-1} and U_c a password guess costs one HMAC instead of a full run; the block
        // is the key itself. The keyed PRF wipes itself (hmac's `zeroize` feature).
        self.u.zeroize();
        self.block.zeroize();
    }
}

/// PBKDF2-HMAC-SHA256 in one call: [`Pbkdf2`] run to its end (the tests' reference form).
#[cfg(test)]
pub(crate) fn pbkdf2_sha256(password: &[u8], salt: &[u8], iterations: u32) -> [u8; HASH_LEN] {
    let mut derivation = Pbkdf2::start(password, salt, iterations);
    while !derivation.run(u32::MAX) {}
    derivation.finish()
}

/// HMAC-SHA256 of the concatenated `parts`.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; HASH_LEN] {
    let mut mac = MacKey::new(key).into_mac();
    for part in parts {
        mac.update(part);
    }
    mac.finalize()
}

/// HKDF-Extract: a pseudorandom key from input keying material and a salt.
pub(crate) fn hkdf_extract(salt: &[u8], ikm: &[u8]) -> [u8; HASH_LEN] {
    hmac_sha256(salt, &[ikm])
}

/// HKDF-Expand: fills `okm` (at most 255 × 32 bytes; any longer tail is left zero) from a
/// pseudorandom key and a context label.
pub(crate) fn hkdf_expand(prk: &[u8; HASH_LEN], info: &[u8], okm: &mut [u8]) {
    let mut previous = [0u8; HASH_LEN];
    let mut previous_len = 0;
    for (counter, block) in (1..=255u8).zip(okm.chunks_mut(HASH_LEN)) {
        let t = hmac_sha256(
            prk,
            &[
                previous.get(..previous_len).unwrap_or(&[]),
                info,
                &[counter],
            ],
        );
        if let Some(src) = t.get(..block.len()) {
            block.copy_from_slice(src);
        }
        previous = t;
        previous_len = HASH_LEN;
    }
    previous.zeroize();
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    fn hex(text: &str) -> [u8; 128] {
        let mut out = [0u8; 128];
        for (i, pair) in text.as_bytes().chunks(2).enumerate() {
            let s = core::str::from_utf8(pair).unwrap();
            out[i] = u8::from_str_radix(s, 16).unwrap();
        }
        out
    }

    /// RFC 7914 §11 gives PBKDF2-HMAC-SHA256 vectors of 64 bytes; our single block is the
    /// first 32 of them.
    #[test]
    fn pbkdf2_matches_rfc_7914() {
        assert_eq!(
            pbkdf2_sha256(b"passwd", b"salt", 1)[..],
            hex("55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc")[..32]
        );
        assert_eq!(
            pbkdf2_sha256(b"Password", b"NaCl", 80000)[..],
            hex("4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56")[..32]
        );
    }

    /// Passwords across the block length (a longer one is hashed first), short and long salts
    /// and a few iteration counts, against the `pbkdf2` crate.
    #[test]
    fn pbkdf2_matches_the_pbkdf2_crate() {
        let bytes: [u8; 150] = core::array::from_fn(|i| (i * 37 + 1) as u8);
        for password_len in [0, 1, 16, 63, 64, 65, 150] {
            for salt_len in [0, 16, 85, 150] {
                for iterations in [1, 2, 3, 1000] {
                    let (password, salt) = (&bytes[..password_len], &bytes[..salt_len]);
                    let mut expected = [0u8; HASH_LEN];
                    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut expected);
                    assert_eq!(
                        pbkdf2_sha256(password, salt, iterations),
                        expected,
                        "password {password_len}, salt {salt_len}, {iterations} iterations"
                    );
                }
            }
        }
    }

    /// In slices of any size the result is the same as in one call.
    #[test]
    fn pbkdf2_in_slices_matches_one_call() {
        for iterations in [0, 1, 2, 3, 7, 100, 1000] {
            let whole = pbkdf2_sha256(b"passwd", b"salt", iterations);
            for slice in [0, 1, 2, 3, 10, 99, 1000, u32::MAX] {
                let mut derivation = Pbkdf2::start(b"passwd", b"salt", iterations);
                let mut calls = 0u32;
                while !derivation.run(slice) {
                    calls += 1;
                    assert!(derivation.remaining() > 0);
                }
                let expected_calls = iterations.saturating_sub(1).div_ceil(slice.max(1)).max(1) - 1;
                assert_eq!(calls, expected_calls, "{iterations} in slices of {slice}");
                assert_eq!(
                    derivation.finish(),
                    whole,
                    "{iterations} in slices of {slice}"
                );
            }
        }
    }

    /// 0 iterations count as 1, as documented.
    #[test]
    fn zero_iterations_count_as_one() {
        assert_eq!(
            pbkdf2_sha256(b"passwd", b"salt", 0),
            pbkdf2_sha256(b"passwd", b"salt", 1)
        );
    }

    fn check_hkdf(ikm: &[u8], salt: &[u8], info: &[u8], prk: &str, okm: &str) {
        let extracted = hkdf_extract(salt, ikm);
        assert_eq!(extracted[..], hex(prk)[..32]);
        let len = okm.len() / 2;
        let mut out = [0u8; 128];
        hkdf_expand(&extracted, info, &mut out[..len]);
        assert_eq!(out[..len], hex(okm)[..len]);
    }

    #[test]
    fn hkdf_matches_rfc_5869_appendix_a() {
        // A.1: basic test case with SHA-256.
        check_hkdf(
            &[0x0b; 22],
            &hex("000102030405060708090a0b0c")[..13],
            &hex("f0f1f2f3f4f5f6f7f8f9")[..10],
            "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
        );
        // A.2: longer inputs and outputs.
        let ikm: [u8; 80] = core::array::from_fn(|i| i as u8);
        let salt: [u8; 80] = core::array::from_fn(|i| 0x60 + i as u8);
        let info: [u8; 80] = core::array::from_fn(|i| 0xb0 + i as u8);
        check_hkdf(
            &ikm,
            &salt,
            &info,
            "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
            "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87",
        );
        // A.3: zero-length salt and info.
        check_hkdf(
            &[0x0b; 22],
            &[],
            &[],
            "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
        );
    }
}
