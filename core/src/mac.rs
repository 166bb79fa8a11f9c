//! HMAC-SHA256 (RFC 2104) on SHA-256's compression function, so that the keyed state can be
//! computed once, kept (in a [`crate::PreparedKey`], a session half, PBKDF2's loop), and wiped:
//! the `hmac` crate's state cannot be. The one HMAC of the crate: tokens, PBKDF2 and HKDF.

// This module handles attacker-controlled bytes: no indexing that could panic, no unchecked arithmetic.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use sha2::digest::consts::U64;
use sha2::digest::generic_array::GenericArray;
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

/// The length of an HMAC-SHA256 tag.
pub(crate) const TAG_LEN: usize = 32;

/// SHA-256's initial hash value (FIPS 180-4, 5.3.3).
const SHA256_INITIAL: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];
const SHA256_BLOCK: usize = 64;
/// The message length in bits of a hash over a pad block and one hash: the outer hash always,
/// the inner hash of [`MacKey::mac_of_hash`].
const PAD_AND_HASH_BITS: u64 = ((SHA256_BLOCK + TAG_LEN) * 8) as u64;

fn compress(state: &mut [u32; 8], block: &[u8; SHA256_BLOCK]) {
    // The length is right by type, so `from_slice` cannot fail.
    let block = GenericArray::<u8, U64>::from_slice(block);
    sha2::compress256(state, core::slice::from_ref(block));
}

/// An HMAC-SHA256 key, as SHA-256 states after its inner and outer pad blocks. Wiped on drop:
/// these states let anyone compute MACs, as the key itself does.
#[derive(Clone)]
pub(crate) struct MacKey {
    inner: [u32; 8],
    outer: [u32; 8],
}

impl MacKey {
    /// The keyed states of `key`, of any length: a key longer than a block is hashed first
    /// (RFC 2104, section 2).
    pub(crate) fn new(key: &[u8]) -> MacKey {
        let mut hashed = [0u8; TAG_LEN];
        let key = if key.len() > SHA256_BLOCK {
            // Only for keys over 64 bytes (long passwords): the sha2 hasher's own buffer, which
            // held the key's last block, cannot be wiped; a caller that must leave nothing
            // behind clears its stack afterwards (the chat client does).
            hashed = Sha256::digest(key).into();
            &hashed[..]
        } else {
            key
        };
        let mut block = [0x36u8; SHA256_BLOCK];
        for (b, k) in block.iter_mut().zip(key) {
            *b ^= k;
        }
        hashed.zeroize();
        let mut inner = SHA256_INITIAL;
        compress(&mut inner, &block);
        for b in block.iter_mut() {
            *b ^= 0x36 ^ 0x5c;
        }
        let mut outer = SHA256_INITIAL;
        compress(&mut outer, &block);
        block.zeroize();
        MacKey { inner, outer }
    }

    /// The MAC of a message that is one hash long, in two compressions and nothing else: what
    /// PBKDF2 computes hundreds of thousands of times per password.
    pub(crate) fn mac_of_hash(&self, message: &[u8; TAG_LEN]) -> [u8; TAG_LEN] {
        let mut block = [0u8; SHA256_BLOCK];
        let (head, padding) = block.split_at_mut(TAG_LEN);
        head.copy_from_slice(message);
        if let Some(marker) = padding.first_mut() {
            *marker = 0x80;
        }
        if let Some(length) = padding.last_chunk_mut::<8>() {
            *length = PAD_AND_HASH_BITS.to_be_bytes();
        }
        let mut inner = self.inner;
        compress(&mut inner, &block);
        block.zeroize();
        let tag = outer_hash(&self.outer, &inner);
        inner.zeroize();
        tag
    }

    /// A MAC computation under this key.
    pub(crate) fn start(&self) -> Mac {
        Mac {
            state: self.inner,
            outer: self.outer,
            block: [0; SHA256_BLOCK],
            buffered: 0,
            length: SHA256_BLOCK as u64,
        }
    }
}

impl Drop for MacKey {
    fn drop(&mut self) {
        self.inner.zeroize();
        self.outer.zeroize();
    }
}

/// An HMAC-SHA256 computation in progress.
pub(crate) struct Mac {
    state: [u32; 8],
    outer: [u32; 8],
    /// Message bytes waiting for a whole block (public: token bytes).
    block: [u8; SHA256_BLOCK],
    buffered: usize,
    /// Bytes hashed so far by the inner hash, its key block included.
    length: u64,
}

impl Mac {
    pub(crate) fn update(&mut self, mut data: &[u8]) {
        self.length = self.length.wrapping_add(data.len() as u64);
        if self.buffered > 0 {
            let space = self.block.get_mut(self.buffered..).unwrap_or(&mut []);
            let take = space.len().min(data.len());
            let (head, rest) = data.split_at(take);
            if let Some(dst) = space.get_mut(..take) {
                dst.copy_from_slice(head);
            }
            data = rest;
            self.buffered = self.buffered.saturating_add(take);
            if self.buffered < SHA256_BLOCK {
                return;
            }
            compress(&mut self.state, &self.block);
            self.buffered = 0;
        }
        let mut blocks = data.chunks_exact(SHA256_BLOCK);
        for block in &mut blocks {
            if let Ok(block) = block.try_into() {
                compress(&mut self.state, block);
            }
        }
        let rest = blocks.remainder();
        if let Some(dst) = self.block.get_mut(..rest.len()) {
            dst.copy_from_slice(rest);
        }
        self.buffered = rest.len();
    }

    pub(crate) fn finalize(mut self) -> [u8; TAG_LEN] {
        // The inner hash: pad with 0x80, zeros, and the length in bits.
        let bits = self.length.wrapping_mul(8).to_be_bytes();
        let buffered = self.buffered;
        let tail = self.block.get_mut(buffered..).unwrap_or(&mut []);
        tail.fill(0);
        if let Some(first) = tail.first_mut() {
            *first = 0x80;
        }
        if buffered >= SHA256_BLOCK - 8 {
            compress(&mut self.state, &self.block);
            self.block.fill(0);
        }
        if let Some(length) = self.block.last_chunk_mut::<8>() {
            *length = bits;
        }
        compress(&mut self.state, &self.block);

        outer_hash(&self.outer, &self.state)
    }
}

/// The outer hash, from the state after the outer pad block, over the inner hash (whose final
/// state is `inner`): one more block. The result is the tag.
fn outer_hash(outer: &[u32; 8], inner: &[u32; 8]) -> [u8; TAG_LEN] {
    let mut block = [0u8; SHA256_BLOCK];
    for (dst, word) in block.chunks_exact_mut(4).zip(inner) {
        dst.copy_from_slice(&word.to_be_bytes());
    }
    if let Some(marker) = block.get_mut(TAG_LEN) {
        *marker = 0x80;
    }
    if let Some(length) = block.last_chunk_mut::<8>() {
        *length = PAD_AND_HASH_BITS.to_be_bytes();
    }
    let mut state = *outer;
    compress(&mut state, &block);
    // `block` holds only the inner hash, from which nothing about the key follows; wiping it
    // would cost PBKDF2 a tenth of its speed (measured), which is the defender's margin.
    let mut tag = [0u8; TAG_LEN];
    for (dst, word) in tag.chunks_exact_mut(4).zip(state) {
        dst.copy_from_slice(&word.to_be_bytes());
    }
    state.zeroize();
    tag
}

impl Drop for Mac {
    fn drop(&mut self) {
        self.state.zeroize();
        self.outer.zeroize();
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    /// RFC 4231, section 4: test cases 1, 2, 4 and 6 (a key longer than a block) and 7 (a key
    /// and data longer than a block).
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

    /// The shortcut PBKDF2 takes gives the same MAC as the general computation.
    #[test]
    fn mac_of_hash_is_the_mac_of_those_32_bytes() {
        for key_len in [0, 16, 32, 64, 65, 100] {
            let key: [u8; 100] = core::array::from_fn(|i| (i * 7 + key_len) as u8);
            let mac_key = MacKey::new(&key[..key_len]);
            let message: [u8; TAG_LEN] = core::array::from_fn(|i| (i * 31 + key_len) as u8);
            let mut general = mac_key.start();
            general.update(&message);
            assert_eq!(
                mac_key.mac_of_hash(&message),
                general.finalize(),
                "key of {key_len}"
            );
        }
    }

    /// Keys of every length up to two blocks, against the reference HMAC.
    #[test]
    fn keys_of_every_length_match_the_hmac_crate() {
        use hmac::Mac as _;
        let key: [u8; 130] = core::array::from_fn(|i| (i * 11 + 3) as u8);
        for len in 0..key.len() {
            let mut reference = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key[..len]).unwrap();
            reference.update(b"message");
            let expected: [u8; 32] = reference.finalize().into_bytes().into();
            let mut mac = MacKey::new(&key[..len]).start();
            mac.update(b"message");
            assert_eq!(mac.finalize(), expected, "key of {len} bytes");
        }
    }

    /// The reference HMAC (the `hmac` crate) against ours, for every length across the block
    /// and padding boundaries, in pieces of every size.
    #[test]
    fn hmac_matches_the_hmac_crate() {
        use hmac::Mac as _;
        let data: [u8; 300] = core::array::from_fn(|i| (i * 13) as u8);
        let key_bytes = [0x0bu8; 16];
        let mac_key = MacKey::new(&key_bytes);
        for len in 0..data.len() {
            let mut reference = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key_bytes).unwrap();
            reference.update(&data[..len]);
            let expected: [u8; 32] = reference.finalize().into_bytes().into();
            for piece in [1, 7, 64, 65, 300] {
                let mut mac = mac_key.start();
                for part in data[..len].chunks(piece) {
                    mac.update(part);
                }
                assert_eq!(mac.finalize(), expected, "length {len}, pieces of {piece}");
            }
        }
    }
}
