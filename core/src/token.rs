//! Fernet tokens: encrypt into, and decrypt from, caller-owned buffers.
//!
//! A token is `base64url(0x80 ‖ timestamp ‖ IV ‖ AES-128-CBC(PKCS#7(plaintext)) ‖ HMAC)`, where the
//! timestamp is a big-endian `u64` of Unix seconds and the HMAC-SHA256 covers everything before it.
//! Both directions stream: encryption writes base64 straight into the output, and decryption
//! decodes, authenticates and stores the ciphertext in one pass, so neither needs a second buffer.
//!
//! Speed (see `docs/PERFORMANCE.md`): the key schedules and HMAC pad states can be computed once
//! ([`crate::fernet::PreparedKey`]); each token's HMAC-SHA256 (`mac.rs`, the `hmac` crate) starts from
//! a clone of the cached keyed state, which the crates wipe on drop; token text goes through a
//! table-driven base64url (`base64.rs`), since it only ever holds public bytes, never a key or a
//! plaintext.

use aes::{Aes128Dec, Aes128Enc};
use cbc::cipher::inout::InOutBuf;
use cbc::cipher::{BlockModeDecrypt, BlockModeEncrypt, InnerIvInit};
use core::borrow::Borrow;
use core::ops::Range;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::base64::{decode_padded, decode_quanta, encode_padded, encode_quanta};
use crate::mac::Mac;
pub(crate) use crate::mac::MacKey;
use crate::mac::TAG_LEN;
use crate::{fernet::Error, key::Key};

/// The version byte every Fernet token starts with (Fernet's, not this crate's or the session
/// protocol's, which is [`PROTOCOL_VERSION`](crate::session::PROTOCOL_VERSION)).
///
/// ```
/// use aeschat_core::fernet::{encrypt, token_len, Iv, Key, FERNET_VERSION};
/// let mut out = [0u8; token_len(2)];
/// let token = encrypt(&Key::from_bytes([1; 32]), b"hi", 0, &Iv::from_bytes([2; 16]), &mut out)?;
/// // base64url of 0x80 followed by zero bits begins with "g".
/// assert_eq!(FERNET_VERSION, 0x80);
/// assert!(token.as_bytes().starts_with(b"gAAAA"));
/// # Ok::<(), aeschat_core::fernet::Error>(())
/// ```
pub const FERNET_VERSION: u8 = 0x80;
/// The length of an initialisation vector.
pub const IV_LEN: usize = 16;
/// How far, in seconds, a timestamp may lie ahead of `now` when a TTL is checked (as in the
/// reference implementation).
pub const MAX_CLOCK_SKEW: u64 = 60;

const BLOCK_LEN: usize = 16;
const HEADER_LEN: usize = 1 + 8 + IV_LEN;
const OVERHEAD: usize = HEADER_LEN + TAG_LEN;

/// Bytes of plaintext encrypted per step: a multiple of the AES block (16).
const ENCRYPT_CHUNK: usize = 768;
/// The encryption staging buffer: up to two bytes carried over from the last step (fewer than
/// a base64 quantum) or the header, one chunk, and the tag after the last.
const STAGE_LEN: usize = HEADER_LEN + ENCRYPT_CHUNK + TAG_LEN;
/// Characters of token text decoded per step (a multiple of 4), and the bytes they decode to.
const DECODE_TEXT_CHUNK: usize = 1024;
const DECODE_RAW_CHUNK: usize = DECODE_TEXT_CHUNK / 4 * 3;
/// The decode buffer of a short token (up to 127 bytes of plaintext), decoded in one step: a
/// 16-byte token's decryption spent 2 % of its time zeroing the 768 bytes of the long one.
const SHORT_RAW_CHUNK: usize = 192;
// Both decode buffers hold whole quanta, so every step but the last ends on a quantum.
const _: () = assert!(SHORT_RAW_CHUNK.is_multiple_of(3) && DECODE_RAW_CHUNK.is_multiple_of(3));

/// The ciphertext length for a plaintext length: PKCS#7 always adds 1 to 16 bytes.
///
/// ```
/// assert_eq!(aeschat_core::fernet::ciphertext_len(0), 16);
/// assert_eq!(aeschat_core::fernet::ciphertext_len(16), 32);
/// ```
pub const fn ciphertext_len(plaintext_len: usize) -> usize {
    (plaintext_len / BLOCK_LEN)
        .saturating_add(1)
        .saturating_mul(BLOCK_LEN)
}

/// The exact length of the token text for a plaintext length, to size an output buffer at
/// compile time. Saturates at `usize::MAX` for impossible lengths.
///
/// ```
/// static mut TOKEN: [u8; aeschat_core::fernet::token_len(5)] = [0; aeschat_core::fernet::token_len(5)];
/// assert_eq!(aeschat_core::fernet::token_len(5), 100);
/// ```
pub const fn token_len(plaintext_len: usize) -> usize {
    let raw = OVERHEAD.saturating_add(ciphertext_len(plaintext_len));
    raw.div_ceil(3).saturating_mul(4)
}

/// The size of the output buffer [`decrypt`] needs for a token of `token_len` characters. It is
/// never less than the plaintext, which is always shorter than this.
///
/// ```
/// use aeschat_core::fernet::{decrypt_buffer_len, token_len};
/// assert!(decrypt_buffer_len(token_len(1000)) >= 1000);
/// ```
pub const fn decrypt_buffer_len(token_len: usize) -> usize {
    (token_len / 4).saturating_mul(3).saturating_sub(OVERHEAD)
}

/// An AES-CBC initialisation vector. It must be unpredictable: draw it from a secure random
/// source for every token.
///
/// ```
/// use aeschat_core::fernet::Iv;
/// let iv = Iv::from_bytes([0; 16]);
/// assert_eq!(iv.as_bytes(), &[0; 16]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Iv([u8; IV_LEN]);

impl Iv {
    /// An IV from 16 bytes.
    pub const fn from_bytes(bytes: [u8; IV_LEN]) -> Iv {
        Iv(bytes)
    }

    /// Draws an IV from the operating system's random number generator. On a board without an
    /// OS, draw 16 bytes from the hardware generator and use [`Iv::from_bytes`].
    ///
    /// ```
    /// let iv = aeschat_core::fernet::Iv::random()?;
    /// # Ok::<(), aeschat_core::fernet::Error>(())
    /// ```
    #[cfg(feature = "getrandom")]
    #[cfg_attr(docsrs, doc(cfg(feature = "getrandom")))]
    pub fn random() -> Result<Iv, Error> {
        let mut bytes = [0u8; IV_LEN];
        getrandom::fill(&mut bytes).map_err(|_| Error::Randomness)?;
        Ok(Iv(bytes))
    }

    /// The IV's bytes.
    pub const fn as_bytes(&self) -> &[u8; IV_LEN] {
        &self.0
    }
}

/// Which time checks decryption applies, with the caller's idea of the current time.
///
/// ```
/// use aeschat_core::fernet::TimePolicy;
/// assert!(TimePolicy::MaxAge { ttl: 60, now: 1000 }.check(940).is_ok());
/// assert!(TimePolicy::MaxAge { ttl: 60, now: 1000 }.check(939).is_err());
/// assert!(TimePolicy::Unchecked.check(u64::MAX).is_ok());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimePolicy {
    /// No time check at all, as in the reference implementation without a TTL: neither the age
    /// nor a timestamp in the future is checked. Authenticity is still checked in full.
    Unchecked,
    /// Valid iff `timestamp + ttl >= now` and `timestamp <= now + 60` (both inclusive), computed
    /// without overflow.
    MaxAge {
        /// The largest accepted age in seconds.
        ttl: u64,
        /// The current Unix time in seconds.
        now: u64,
    },
}

impl TimePolicy {
    /// Checks a timestamp against the policy.
    pub fn check(self, timestamp: u64) -> Result<(), Error> {
        let TimePolicy::MaxAge { ttl, now } = self else {
            return Ok(());
        };
        // A sum that overflows lies beyond every `now`: never expired, and never wraps around.
        if timestamp
            .checked_add(ttl)
            .is_some_and(|expiry| expiry < now)
        {
            return Err(Error::Expired);
        }
        if now
            .checked_add(MAX_CLOCK_SKEW)
            .is_some_and(|latest| timestamp > latest)
        {
            return Err(Error::FromTheFuture);
        }
        Ok(())
    }
}

/// Encrypts `plaintext` into `out` as a token dated `timestamp` (Unix seconds), returning the
/// token text. `out` must hold [`token_len`]`(plaintext.len())` bytes; if it does not, the error
/// says how many and nothing is written.
///
/// ```
/// use aeschat_core::fernet::{encrypt, token_len, Iv, Key};
///
/// let key = Key::parse(b"cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=")?;
/// let iv = Iv::from_bytes([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
/// let mut out = [0u8; token_len(5)];
/// let token = encrypt(&key, b"hello", 499162800, &iv, &mut out)?;
/// assert_eq!(token, "gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==");
/// # Ok::<(), aeschat_core::fernet::Error>(())
/// ```
pub fn encrypt<'o>(
    key: &Key,
    plaintext: &[u8],
    timestamp: u64,
    iv: &Iv,
    out: &'o mut [u8],
) -> Result<&'o str, Error> {
    seal(
        &key.aes_enc(),
        key.mac_key().into_mac(),
        &[plaintext],
        timestamp,
        iv,
        out,
    )
}

/// Encrypts the concatenation of `parts` as one plaintext (without copying it together first)
/// with an expanded key: the engine under [`encrypt`], [`crate::fernet::PreparedKey::encrypt`] and the
/// session's records.
pub(crate) fn seal<'o>(
    aes: &Aes128Enc,
    mut mac: Mac,
    parts: &[&[u8]],
    timestamp: u64,
    iv: &Iv,
    out: &'o mut [u8],
) -> Result<&'o str, Error> {
    let plaintext_len = parts
        .iter()
        .fold(0usize, |sum, part| sum.saturating_add(part.len()));
    let required = token_len(plaintext_len);
    let too_small = Error::BufferTooSmall { required };
    let out = out.get_mut(..required).ok_or(too_small)?;

    // The stage holds bytes not yet encoded: first the header, later at most two bytes carried
    // over (less than a base64 quantum), each followed by a chunk of ciphertext.
    let mut header = [0u8; HEADER_LEN];
    header[0] = FERNET_VERSION;
    header[1..9].copy_from_slice(&timestamp.to_be_bytes());
    header[9..].copy_from_slice(iv.as_bytes());
    let mut stage = [0u8; STAGE_LEN];
    stage
        .get_mut(..HEADER_LEN)
        .ok_or(too_small)?
        .copy_from_slice(&header);
    let mut pending = HEADER_LEN;
    mac.update(&header);

    let mut cipher = cbc::Encryptor::<&Aes128Enc>::inner_iv_init(aes, iv.as_bytes().into());
    let mut gather = Gather { parts, offset: 0 };
    let mut written = 0;
    loop {
        let chunk_end = pending.saturating_add(ENCRYPT_CHUNK);
        let filled = gather.fill(stage.get_mut(pending..chunk_end).ok_or(too_small)?);
        // A short chunk is the last: PKCS#7 pads it to a whole block with 1 to 16 bytes, each
        // holding the padding length (a whole block of 16 when the plaintext fills its blocks).
        let last = filled < ENCRYPT_CHUNK;
        let len = if last {
            let pad = BLOCK_LEN.saturating_sub(filled % BLOCK_LEN);
            let padded = filled.saturating_add(pad);
            let from = pending.saturating_add(filled);
            let to = pending.saturating_add(padded);
            stage.get_mut(from..to).ok_or(too_small)?.fill(pad as u8);
            padded
        } else {
            filled
        };
        let end = pending.saturating_add(len);
        let blocks = stage.get_mut(pending..end).ok_or(too_small)?;
        let (blocks_inout, _) = InOutBuf::from(&mut *blocks).into_chunks();
        cipher.encrypt_blocks_inout(blocks_inout);
        mac.update(blocks);
        if last {
            let tag_end = end.saturating_add(TAG_LEN);
            stage
                .get_mut(end..tag_end)
                .ok_or(too_small)?
                .copy_from_slice(&mac.finalize());
            let rest = out.get_mut(written..).ok_or(too_small)?;
            let encoded = encode_padded(stage.get(..tag_end).ok_or(too_small)?, rest)?;
            written = written.saturating_add(encoded);
            break;
        }
        // Encode whole quanta; carry the rest (0 to 2 bytes) to the front of the stage.
        let whole = end.saturating_sub(end % 3);
        let text_end = written.saturating_add((whole / 3).saturating_mul(4));
        let text = out.get_mut(written..text_end).ok_or(too_small)?;
        encode_quanta(stage.get(..whole).ok_or(too_small)?, text);
        written = text_end;
        stage.copy_within(whole..end, 0);
        pending = end.saturating_sub(whole);
    }

    let token = out.get(..written).ok_or(too_small)?;
    core::str::from_utf8(token).map_err(|_| too_small)
}

/// Reads the concatenation of several slices in pieces.
struct Gather<'p, 'b> {
    parts: &'p [&'b [u8]],
    offset: usize,
}

impl Gather<'_, '_> {
    /// Copies as many bytes as fit into `dst` and returns how many.
    fn fill(&mut self, dst: &mut [u8]) -> usize {
        let mut filled = 0;
        while let Some((part, rest)) = self.parts.split_first() {
            let available = part.get(self.offset..).unwrap_or(&[]);
            let space = dst.get_mut(filled..).unwrap_or(&mut []);
            let take = available.len().min(space.len());
            if let (Some(dst), Some(src)) = (space.get_mut(..take), available.get(..take)) {
                dst.copy_from_slice(src);
            }
            filled = filled.saturating_add(take);
            self.offset = self.offset.saturating_add(take);
            if self.offset < part.len() {
                break; // dst is full
            }
            self.parts = rest;
            self.offset = 0;
        }
        filled
    }
}

/// Like [`encrypt`], but returns the token in a `heapless::String` of capacity `N`, fixed at
/// compile time; size it with [`token_len`].
///
/// ```
/// use aeschat_core::fernet::{encrypt_to_string, token_len, Iv, Key};
///
/// let key = Key::from_bytes([3; 32]);
/// let token = encrypt_to_string::<{ token_len(64) }>(&key, b"up to 64 bytes", 0, &Iv::from_bytes([9; 16]))?;
/// assert!(token.starts_with("gAAAAAAAAAAA"));
/// # Ok::<(), aeschat_core::fernet::Error>(())
/// ```
pub fn encrypt_to_string<const N: usize>(
    key: &Key,
    plaintext: &[u8],
    timestamp: u64,
    iv: &Iv,
) -> Result<heapless::String<N>, Error> {
    let mut buffer = [0u8; N];
    let token = encrypt(key, plaintext, timestamp, iv, &mut buffer)?;
    let mut string = heapless::String::new();
    string.push_str(token).map_err(|_| Error::BufferTooSmall {
        required: token.len(),
    })?;
    Ok(string)
}

/// Verifies `token` and decrypts it into `out`, returning the plaintext at the start of `out`.
///
/// Checks run in the spec's order: canonical base64url, version byte, length, time (per
/// `policy`), HMAC-SHA256 in constant time, then AES-128-CBC and PKCS#7. `out` must hold
/// [`decrypt_buffer_len`]`(token.len())` bytes; a smaller one gets [`Error::BufferTooSmall`]
/// with the exact size needed, before anything is written.
///
/// ```
/// use aeschat_core::fernet::{decrypt, decrypt_buffer_len, Key, TimePolicy};
///
/// let key = Key::parse(b"cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=")?;
/// let token = b"gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==";
/// let mut out = [0u8; decrypt_buffer_len(100)];
/// let plaintext = decrypt(&key, token, TimePolicy::MaxAge { ttl: 60, now: 499162801 }, &mut out)?;
/// assert_eq!(plaintext, b"hello");
/// # Ok::<(), aeschat_core::fernet::Error>(())
/// ```
pub fn decrypt<'o>(
    key: &Key,
    token: &[u8],
    policy: TimePolicy,
    out: &'o mut [u8],
) -> Result<&'o [u8], Error> {
    let (_, plaintext) = open(key, token, policy, out)?;
    Ok(plaintext)
}

/// Verifies and decrypts the token held in `buffer` in place, returning the plaintext at the
/// start of `buffer`. For callers who can afford only one buffer.
///
/// ```
/// use aeschat_core::fernet::{decrypt_in_place, Key, TimePolicy};
///
/// let key = Key::parse(b"cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=")?;
/// let mut buffer = *b"gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==";
/// assert_eq!(decrypt_in_place(&key, &mut buffer, TimePolicy::Unchecked)?, b"hello");
/// # Ok::<(), aeschat_core::fernet::Error>(())
/// ```
pub fn decrypt_in_place<'b>(
    key: &Key,
    buffer: &'b mut [u8],
    policy: TimePolicy,
) -> Result<&'b [u8], Error> {
    open_in_place_with(key.mac_key().into_mac(), || key.aes_dec(), buffer, policy)
}

/// Decrypts in place with an expanded key; the AES key schedule is only asked for once the
/// token is authentic.
pub(crate) fn open_in_place_with<A: Borrow<Aes128Dec>>(
    mac: Mac,
    aes: impl FnOnce() -> A,
    buffer: &mut [u8],
    policy: TimePolicy,
) -> Result<&[u8], Error> {
    let raw_len = decoded_len(buffer)?;
    let verified = stream_token(
        mac,
        raw_len,
        &mut InPlace {
            buffer: &mut *buffer,
        },
    )?;
    policy.check(verified.timestamp)?;
    verified.authenticate()?;
    verified.decrypt(aes().borrow(), buffer)
}

/// The timestamp of a token, after verifying its HMAC (as the reference's `extract_timestamp`):
/// no buffer needed, nothing decrypted, no time policy applied.
///
/// ```
/// use aeschat_core::fernet::{verified_timestamp, Key};
///
/// let key = Key::parse(b"cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=")?;
/// let token = b"gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==";
/// assert_eq!(verified_timestamp(&key, token)?, 499162800);
/// # Ok::<(), aeschat_core::fernet::Error>(())
/// ```
pub fn verified_timestamp(key: &Key, token: &[u8]) -> Result<u64, Error> {
    let raw_len = decoded_len(token)?;
    let verified = stream_token(
        key.mac_key().into_mac(),
        raw_len,
        &mut Separate {
            text: token,
            out: &mut [],
        },
    )?;
    verified.authenticate()?;
    Ok(verified.timestamp)
}

/// Decrypts into `out` and returns the timestamp too (for rotation).
pub(crate) fn open<'o>(
    key: &Key,
    token: &[u8],
    policy: TimePolicy,
    out: &'o mut [u8],
) -> Result<(u64, &'o [u8]), Error> {
    open_with(
        key.mac_key().into_mac(),
        || key.aes_dec(),
        token,
        policy,
        out,
    )
}

/// Decrypts into `out` with an expanded key; the AES key schedule is only asked for once the
/// token is authentic.
pub(crate) fn open_with<'o, A: Borrow<Aes128Dec>>(
    mac: Mac,
    aes: impl FnOnce() -> A,
    token: &[u8],
    policy: TimePolicy,
    out: &'o mut [u8],
) -> Result<(u64, &'o [u8]), Error> {
    let raw_len = decoded_len(token)?;
    let required = raw_len.saturating_sub(OVERHEAD);
    if out.len() < required {
        return Err(Error::BufferTooSmall { required });
    }
    let verified = stream_token(
        mac,
        raw_len,
        &mut Separate {
            text: token,
            out: &mut *out,
        },
    )?;
    let timestamp = verified.timestamp;
    policy.check(timestamp)?;
    verified.authenticate()?;
    Ok((timestamp, verified.decrypt(aes().borrow(), out)?))
}

/// The decoded length of a token's text, from its length and padding alone. Rejects text that
/// cannot be canonical padded base64 by its length.
fn decoded_len(text: &[u8]) -> Result<usize, Error> {
    if text.is_empty() || !text.len().is_multiple_of(4) {
        return Err(Error::TokenEncoding);
    }
    let padding = text.iter().rev().take(2).filter(|&&c| c == b'=').count();
    Ok((text.len() / 4).saturating_mul(3).saturating_sub(padding))
}

/// Where a token's text comes from and its ciphertext goes.
trait TokenIo {
    /// The token's text.
    fn text(&self) -> &[u8];
    /// Stores ciphertext bytes at offset `at` of the ciphertext.
    fn write_ciphertext(&mut self, at: usize, bytes: &[u8]) -> Result<(), Error>;
}

/// Text in one slice, ciphertext into another (an empty one when only verifying).
struct Separate<'t, 'o> {
    text: &'t [u8],
    out: &'o mut [u8],
}

impl TokenIo for Separate<'_, '_> {
    fn text(&self) -> &[u8] {
        self.text
    }

    fn write_ciphertext(&mut self, at: usize, bytes: &[u8]) -> Result<(), Error> {
        if self.out.is_empty() {
            return Ok(()); // verifying only: the ciphertext is not kept
        }
        let required = at.saturating_add(bytes.len());
        let dst = self.out.get_mut(at..required);
        dst.ok_or(Error::BufferTooSmall { required })?
            .copy_from_slice(bytes);
        Ok(())
    }
}

/// Text and ciphertext in the same buffer. Safe because every chunk of text is decoded before
/// its ciphertext is written, and ciphertext offset `i` comes from text beyond offset `i`.
struct InPlace<'b> {
    buffer: &'b mut [u8],
}

impl TokenIo for InPlace<'_> {
    fn text(&self) -> &[u8] {
        self.buffer
    }

    fn write_ciphertext(&mut self, at: usize, bytes: &[u8]) -> Result<(), Error> {
        let required = at.saturating_add(bytes.len());
        let dst = self.buffer.get_mut(at..required);
        dst.ok_or(Error::BufferTooSmall { required })?
            .copy_from_slice(bytes);
        Ok(())
    }
}

/// A token whose structure has been checked and whose MAC has been computed, but not yet
/// compared.
struct Streamed {
    timestamp: u64,
    iv: [u8; IV_LEN],
    ciphertext_len: usize,
    /// The MAC this key gives the token's content: wiped, since for a forged token it is the
    /// tag the forger lacks.
    /// Held as 8-byte words, so the wipe is four word stores, not 32 byte stores.
    computed: [u64; TAG_LEN / 8],
    tag: [u8; TAG_LEN],
}

impl Drop for Streamed {
    fn drop(&mut self) {
        self.computed.zeroize();
    }
}

impl Streamed {
    /// Compares the HMAC in constant time. Stops forgery: without the signing key no altered
    /// or invented token gets past this point, and nothing is decrypted before it.
    fn authenticate(&self) -> Result<(), Error> {
        if bool::from(words_equal(&self.computed, &tag_words(&self.tag))) {
            Ok(())
        } else {
            Err(Error::InvalidToken)
        }
    }

    /// Decrypts the ciphertext stored at the start of `buffer` and strips the padding. A bad
    /// padding reports the same error as a bad MAC, so it cannot serve as a padding oracle.
    fn decrypt<'b>(&self, aes: &Aes128Dec, buffer: &'b mut [u8]) -> Result<&'b [u8], Error> {
        let mut cipher = cbc::Decryptor::<&Aes128Dec>::inner_iv_init(aes, (&self.iv).into());
        let ciphertext = buffer
            .get_mut(..self.ciphertext_len)
            .ok_or(Error::InvalidToken)?;
        let (blocks, tail) = InOutBuf::from(&mut *ciphertext).into_chunks();
        if !tail.is_empty() {
            return Err(Error::InvalidToken);
        }
        cipher.decrypt_blocks_inout(blocks);
        match pkcs7_unpadded_len(ciphertext) {
            Some(len) => ciphertext.get(..len).ok_or(Error::InvalidToken),
            None => {
                // Wipe what the bad padding left behind; report it like a bad MAC.
                ciphertext.zeroize();
                Err(Error::InvalidToken)
            }
        }
    }
}

/// Compares two tags in constant time: the XOR of each 8-byte word, OR-ed together without a
/// branch, then one `subtle` comparison of the result. `subtle`'s slice comparison does the
/// same a byte at a time with an optimisation barrier per byte, which cost 7 % of a 16-byte
/// token's decryption. (The tests' form, on bytes; a token's computed MAC is kept in words.)
#[cfg(test)]
fn tags_equal(a: &[u8; TAG_LEN], b: &[u8; TAG_LEN]) -> subtle::Choice {
    words_equal(&tag_words(a), &tag_words(b))
}

/// Two tags in words, compared in constant time as `tags_equal` describes.
fn words_equal(a: &[u64; TAG_LEN / 8], b: &[u64; TAG_LEN / 8]) -> subtle::Choice {
    let difference = a.iter().zip(b).fold(0u64, |acc, (x, y)| acc | (x ^ y));
    difference.ct_eq(&0)
}

/// A tag as four native-endian 8-byte words.
fn tag_words(tag: &[u8; TAG_LEN]) -> [u64; TAG_LEN / 8] {
    let (chunks, _) = tag.as_chunks::<8>();
    core::array::from_fn(|i| chunks.get(i).map_or(0, |c| u64::from_ne_bytes(*c)))
}

/// The length of the plaintext inside PKCS#7-padded bytes, or `None` if the padding is bad:
/// the last byte `n` must be 1 to 16 and the last `n` bytes must all equal `n`.
fn pkcs7_unpadded_len(padded: &[u8]) -> Option<usize> {
    let &pad = padded.last()?;
    let pad_len = usize::from(pad);
    if pad_len == 0 || pad_len > BLOCK_LEN {
        return None;
    }
    let start = padded.len().checked_sub(pad_len)?;
    let padding = padded.get(start..)?;
    padding.iter().all(|&b| b == pad).then_some(start)
}

/// Decodes a token's text in chunks, routing each decoded byte to where it belongs: the header,
/// the MAC, the stored ciphertext, the tag. Then checks version and length.
fn stream_token(mac: Mac, raw_len: usize, io: &mut impl TokenIo) -> Result<Streamed, Error> {
    if raw_len <= SHORT_RAW_CHUNK {
        stream_token_in::<SHORT_RAW_CHUNK>(mac, raw_len, io)
    } else {
        stream_token_in::<DECODE_RAW_CHUNK>(mac, raw_len, io)
    }
}

/// [`stream_token`] with a decode buffer of `RAW` bytes (a multiple of 3): `RAW / 3 * 4`
/// characters of text per step.
fn stream_token_in<const RAW: usize>(
    mut mac: Mac,
    raw_len: usize,
    io: &mut impl TokenIo,
) -> Result<Streamed, Error> {
    let text_len = io.text().len();
    let mac_end = raw_len.saturating_sub(TAG_LEN);
    let mut header = [0u8; HEADER_LEN];
    let mut tag = [0u8; TAG_LEN];
    let mut raw = [0u8; RAW];
    let text_chunk = (RAW / 3).saturating_mul(4);
    let mut text_at = 0;
    let mut raw_at = 0;
    while text_at < text_len {
        let take = text_chunk.min(text_len.saturating_sub(text_at));
        let text_end = text_at.saturating_add(take);
        let text = io
            .text()
            .get(text_at..text_end)
            .ok_or(Error::TokenEncoding)?;
        // Only the final chunk may carry padding: '=' anywhere earlier is rejected.
        let decoded = if text_end == text_len {
            decode_padded(text, &mut raw)?
        } else {
            let decoded = raw
                .get_mut(..(take / 4).saturating_mul(3))
                .ok_or(Error::TokenEncoding)?;
            decode_quanta(text, decoded)?;
            decoded
        };
        text_at = text_end;

        if let Some((at, bytes)) = overlap(raw_at, decoded, 0..HEADER_LEN) {
            copy_into(&mut header, at, bytes)?;
        }
        if let Some((_, bytes)) = overlap(raw_at, decoded, 0..mac_end) {
            mac.update(bytes);
        }
        if let Some((at, bytes)) = overlap(raw_at, decoded, HEADER_LEN..mac_end) {
            io.write_ciphertext(at, bytes)?;
        }
        if let Some((at, bytes)) = overlap(raw_at, decoded, mac_end..raw_len) {
            copy_into(&mut tag, at, bytes)?;
        }
        raw_at = raw_at.saturating_add(decoded.len());
    }
    if raw_at != raw_len {
        return Err(Error::TokenEncoding);
    }

    let [version, t0, t1, t2, t3, t4, t5, t6, t7, iv @ ..] = header;
    // Stops downgrade to any other format: only version 0x80 is understood.
    if version != FERNET_VERSION {
        return Err(Error::UnsupportedVersion);
    }
    // Stops truncation and extension: the body must be a whole number of AES blocks.
    let Some(ciphertext_len) = raw_len
        .checked_sub(OVERHEAD)
        .filter(|&len| len >= BLOCK_LEN && len % BLOCK_LEN == 0)
    else {
        return Err(Error::TokenLength);
    };
    Ok(Streamed {
        timestamp: u64::from_be_bytes([t0, t1, t2, t3, t4, t5, t6, t7]),
        iv,
        ciphertext_len,
        computed: tag_words(&mac.finalize()),
        tag,
    })
}

/// The part of `chunk` (which starts at offset `start` of the whole) inside `range`, with its
/// offset relative to the range's start.
fn overlap(start: usize, chunk: &[u8], range: Range<usize>) -> Option<(usize, &[u8])> {
    let end = start.checked_add(chunk.len())?;
    let from = start.max(range.start);
    let to = end.min(range.end);
    if from >= to {
        return None;
    }
    let bytes = chunk.get(from.checked_sub(start)?..to.checked_sub(start)?)?;
    Some((from.checked_sub(range.start)?, bytes))
}

fn copy_into(dst: &mut [u8], at: usize, bytes: &[u8]) -> Result<(), Error> {
    let end = at.checked_add(bytes.len()).ok_or(Error::TokenEncoding)?;
    dst.get_mut(at..end)
        .ok_or(Error::TokenEncoding)?
        .copy_from_slice(bytes);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    const SPEC_KEY: &[u8] = b"cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=";
    const SPEC_TOKEN: &[u8] = b"gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==";

    fn key() -> Key {
        Key::parse(SPEC_KEY).unwrap()
    }

    #[test]
    fn round_trips_every_length_across_chunk_boundaries() {
        let plaintext: [u8; 3000] = core::array::from_fn(|i| (i * 7) as u8);
        let mut token = [0u8; token_len(3000)];
        let mut out = [0u8; 3000 + 16];
        for len in (0..200).chain([767, 768, 769, 1535, 1536, 1537, 2999, 3000]) {
            let text = encrypt(
                &key(),
                &plaintext[..len],
                77,
                &Iv::from_bytes([1; 16]),
                &mut token,
            )
            .unwrap();
            assert_eq!(text.len(), token_len(len));
            let decrypted =
                decrypt(&key(), text.as_bytes(), TimePolicy::Unchecked, &mut out).unwrap();
            assert_eq!(decrypted, &plaintext[..len]);
        }
    }

    #[test]
    fn in_place_matches_separate() {
        let mut buffer = [0u8; token_len(2000)];
        let plaintext = [0xA5u8; 2000];
        let len = encrypt(&key(), &plaintext, 5, &Iv::from_bytes([2; 16]), &mut buffer)
            .unwrap()
            .len();
        let decrypted =
            decrypt_in_place(&key(), &mut buffer[..len], TimePolicy::Unchecked).unwrap();
        assert_eq!(decrypted, &plaintext[..]);
    }

    #[test]
    fn too_small_buffers_report_the_size_and_write_nothing() {
        let mut out = [0xEEu8; 99];
        let err = encrypt(&key(), b"hello", 0, &Iv::from_bytes([0; 16]), &mut out).unwrap_err();
        assert_eq!(err, Error::BufferTooSmall { required: 100 });
        assert!(out.iter().all(|&b| b == 0xEE));

        let mut out = [0xEEu8; 15];
        let err = decrypt(&key(), SPEC_TOKEN, TimePolicy::Unchecked, &mut out).unwrap_err();
        assert_eq!(err, Error::BufferTooSmall { required: 16 });
        assert!(out.iter().all(|&b| b == 0xEE));
        let mut out = [0u8; 16];
        assert_eq!(
            decrypt(&key(), SPEC_TOKEN, TimePolicy::Unchecked, &mut out).unwrap(),
            b"hello"
        );
    }

    #[test]
    fn time_boundaries_are_inclusive_and_overflow_free() {
        let policy = |ttl, now| TimePolicy::MaxAge { ttl, now };
        assert_eq!(policy(10, 110).check(100), Ok(()));
        assert_eq!(policy(10, 111).check(100), Err(Error::Expired));
        assert_eq!(policy(10, 40).check(100), Ok(()));
        assert_eq!(policy(10, 39).check(100), Err(Error::FromTheFuture));
        assert_eq!(policy(u64::MAX, u64::MAX).check(u64::MAX), Ok(()));
        assert_eq!(policy(60, 0).check(u64::MAX), Err(Error::FromTheFuture));
        assert_eq!(policy(u64::MAX, u64::MAX).check(0), Ok(()));
        assert_eq!(policy(0, u64::MAX).check(0), Err(Error::Expired));
    }

    #[test]
    fn tags_are_equal_only_when_every_bit_is() {
        let tag: [u8; TAG_LEN] = core::array::from_fn(|i| (i * 13 + 5) as u8);
        assert!(bool::from(tags_equal(&tag, &tag)));
        for i in 0..TAG_LEN {
            for bit in 0..8 {
                let mut other = tag;
                other[i] ^= 1 << bit;
                assert!(!bool::from(tags_equal(&tag, &other)), "byte {i} bit {bit}");
            }
        }
    }

    #[test]
    fn padding_rules() {
        assert_eq!(pkcs7_unpadded_len(&[1, 2, 3, 1]), Some(3));
        assert_eq!(pkcs7_unpadded_len(&[16; 16]), Some(0));
        assert_eq!(pkcs7_unpadded_len(&[0; 16]), None);
        assert_eq!(pkcs7_unpadded_len(&[17; 16]), None);
        assert_eq!(pkcs7_unpadded_len(&[3, 2, 3, 3]), None);
        assert_eq!(pkcs7_unpadded_len(&[]), None);
    }

    #[test]
    fn every_single_bit_flip_is_rejected() {
        let mut token = [0u8; 100];
        token.copy_from_slice(SPEC_TOKEN);
        let mut out = [0u8; 64];
        for i in 0..token.len() {
            for bit in 0..8 {
                let mut forged = token;
                forged[i] ^= 1 << bit;
                assert!(
                    decrypt(&key(), &forged, TimePolicy::Unchecked, &mut out).is_err(),
                    "byte {i} bit {bit}"
                );
            }
        }
    }
}
