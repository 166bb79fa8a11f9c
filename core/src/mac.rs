//! HMAC-SHA256 (RFC 2104) on SHA-256's compression function, so that the keyed state can be
//! computed once, kept in a [`crate::PreparedKey`], and wiped: the `hmac` crate's state cannot be.

// This module handles attacker-controlled bytes: no indexing that could panic, no unchecked arithmetic.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use sha2::digest::consts::U64;
use sha2::digest::generic_array::GenericArray;
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
/// The outer hash's message length in bits: the outer pad block and the inner hash.
const OUTER_MESSAGE_BITS: u64 = ((SHA256_BLOCK + TAG_LEN) * 8) as u64;

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
    pub(crate) fn new(key: &[u8; 16]) -> MacKey {
        let mut block = [0x36u8; SHA256_BLOCK];
        for (b, k) in block.iter_mut().zip(key) {
            *b ^= k;
        }
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

        // The outer hash over the outer pad block and the inner hash: one more block.
        let mut block = [0u8; SHA256_BLOCK];
        for (dst, word) in block.chunks_exact_mut(4).zip(self.state) {
            dst.copy_from_slice(&word.to_be_bytes());
        }
        if let Some(marker) = block.get_mut(TAG_LEN) {
            *marker = 0x80;
        }
        if let Some(length) = block.last_chunk_mut::<8>() {
            *length = OUTER_MESSAGE_BITS.to_be_bytes();
        }
        let mut outer = self.outer;
        compress(&mut outer, &block);
        let mut tag = [0u8; TAG_LEN];
        for (dst, word) in tag.chunks_exact_mut(4).zip(outer) {
            dst.copy_from_slice(&word.to_be_bytes());
        }
        outer.zeroize();
        tag
    }
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
