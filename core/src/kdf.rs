//! Key derivation: HKDF-SHA256 (RFC 5869) for the working keys, over HMAC-SHA256.

use zeroize::Zeroize;

use crate::mac::MacKey;

/// The length of a SHA-256 output, and of every key derived here.
pub(crate) const HASH_LEN: usize = 32;

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
