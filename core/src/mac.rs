//! HMAC-SHA256, the one MAC of the crate (token tags, HKDF, the key confirmation),
//! from the `hmac` and `sha2` crates with their `zeroize` features: a keyed state dropped or
//! cloned away is wiped by the crates themselves (`sha2`'s block-level state and `block-buffer`'s
//! buffer zeroize on drop).
//!
//! [`MacKey`] keeps the state after the key's inner and outer pad blocks, computed once; each MAC
//! starts from a clone of it, which is what `hmac::Hmac` is built for and what keeps a token's
//! MAC at two compressions beyond its message.

use hmac::digest::FixedOutput;
use hmac::{Hmac, KeyInit, Mac as _};
use sha2::Sha256;

/// The length of an HMAC-SHA256 tag.
pub(crate) const TAG_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

// Proof, at compile time, that the `zeroize` features are on: `Sha256` is `ZeroizeOnDrop` only
// when its block-level core and its block buffer are, and `Hmac<Sha256>` holds exactly two such
// cores and one such buffer (`hmac::block_api::HmacCore`). `Hmac` itself does not carry the
// marker trait in hmac 0.13, so it cannot be asserted directly; tests/tests/wipe_on_drop.rs
// checks the outcome in memory, and fails when these features are off.
const _: () = {
    fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>() {}
    let _ = wiped_on_drop::<Sha256>;
};

/// An HMAC-SHA256 keyed with `key`, of any length: a key longer than a block is hashed first
/// (RFC 2104, section 2).
fn keyed(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length, so `new_from_slice` always succeeds (hmac 0.13 returns `Ok`
    // unconditionally). The fallback, never taken, keeps this function free of a panic path of
    // its own: the core promises not to panic.
    HmacSha256::new_from_slice(key).unwrap_or_else(|_| HmacSha256::new(&Default::default()))
}

/// An HMAC-SHA256 key, as the hash states after its inner and outer pad blocks. Wiped on drop
/// (by the crates): these states let anyone compute MACs, as the key itself does.
#[derive(Clone)]
pub(crate) struct MacKey(HmacSha256);

impl MacKey {
    /// The keyed states of `key`, of any length.
    pub(crate) fn new(key: &[u8]) -> MacKey {
        MacKey(keyed(key))
    }

    /// A MAC computation under this key.
    pub(crate) fn start(&self) -> Mac {
        Mac(self.0.clone())
    }

    /// The one MAC computation of a key used once: the keyed state itself, moved rather than
    /// cloned, so there is no second state to copy and wipe (a plain `Key`'s token).
    pub(crate) fn into_mac(self) -> Mac {
        Mac(self.0)
    }
}

/// An HMAC-SHA256 computation in progress (wiped on drop, as [`MacKey`]).
pub(crate) struct Mac(HmacSha256);

impl Mac {
    pub(crate) fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    pub(crate) fn finalize(self) -> [u8; TAG_LEN] {
        let mut tag = [0u8; TAG_LEN];
        self.0.finalize_into((&mut tag).into());
        tag
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    /// RFC 4231, section 4: test cases 1, 2, 4 and 6 (a key longer than a block) and 7 (a key
    /// and data longer than a block): the wrapper feeds the crate what it is given.
    #[test]
    fn hmac_matches_rfc_4231() {
        fn tag(key: &[u8], data: &[u8]) -> [u8; TAG_LEN] {
            let mut mac = MacKey::new(key).start();
            mac.update(data);
            mac.finalize()
        }
        fn hex(text: &str) -> [u8; TAG_LEN] {
            core::array::from_fn(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap())
        }
        let counting: [u8; 25] = core::array::from_fn(|i| i as u8 + 1);
        let cases: [(&[u8], &[u8], &str); 5] = [
            (
                &[0x0b; 20],
                b"Hi There",
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
            (
                b"Jefe",
                b"what do ya want for nothing?",
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                &counting,
                &[0xcd; 50],
                "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
            ),
            (
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First",
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
            (
                &[0xaa; 131],
                b"This is a test using a larger than block-size key and a larger than \
                  block-size data. The key needs to be hashed before being used by the HMAC \
                  algorithm.",
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
            ),
        ];
        for (number, (key, data, expected)) in cases.into_iter().enumerate() {
            assert_eq!(tag(key, data), hex(expected), "case {number}");
        }
    }

    /// A prepared key gives the same MAC every time it is started: starting clones the keyed
    /// state and never changes it.
    #[test]
    fn a_mac_key_is_reusable() {
        let key = MacKey::new(b"key");
        let tags: [[u8; TAG_LEN]; 2] = core::array::from_fn(|_| {
            let mut mac = key.start();
            mac.update(b"message");
            mac.finalize()
        });
        assert_eq!(tags[0], tags[1]);
    }
}
