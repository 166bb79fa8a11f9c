//! CPace, the balanced password-authenticated key exchange, in the CPACE-RISTR255-SHA512 suite
//! of the IRTF CFRG draft (draft-irtf-cfrg-cpace): ristretto255 as the group, SHA-512 as the hash.
//!
//! Two parties who share a password-related string (PRS) each send one 32-byte share and derive
//! the same 64-byte intermediate session key (ISK) if and only if they used the same PRS, channel
//! identifier and session id, and saw the same shares and associated data. A recording of the two
//! shares gives nothing to test a password guess against; an active attacker gets one guess per
//! run. The ISK is meant to go through a KDF (HKDF) and an explicit key confirmation before use.
//!
//! This is the initiator–responder setting: the initiator's share and associated data come first
//! in the transcript, whichever side sent first on the wire. Both sides must agree on who is who.
//!
//! ```
//! use aeschat_core::cpace::{Cpace, Role};
//!
//! # fn main() -> Result<(), aeschat_core::cpace::Error> {
//! // Any `rand_core::TryCryptoRng`: here the OS's (getrandom's `sys_rng` feature); on a board,
//! // its hardware generator.
//! let mut rng = getrandom::SysRng;
//! let (prs, ci, sid) = (b"correct horse".as_slice(), b"aeschat example".as_slice(), [7u8; 32]);
//! let a = Cpace::new(Role::Initiator, prs, ci, &sid, &mut rng)?;
//! let b = Cpace::new(Role::Responder, prs, ci, &sid, &mut rng)?;
//! let (share_a, share_b) = (*a.share(), *b.share()); // these two go over the wire
//!
//! let isk_a = a.finish(b"ADa", &share_b, b"ADb")?;
//! let isk_b = b.finish(b"ADb", &share_a, b"ADa")?;
//! assert_eq!(isk_a.as_bytes(), isk_b.as_bytes());
//! # Ok(())
//! # }
//! ```
//!
//! Nothing here allocates or panics, whatever the input. Hashing is incremental, so the PRS,
//! channel identifier, session id and associated data may be of any length. The string
//! utilities ([`prepend_len`], [`lv_cat`], [`generator_string`], [`transcript_ir`],
//! [`transcript_oc`]) write into caller-owned buffers; they are the same code that feeds the
//! hashes, exposed so that the draft's vectors check it byte for byte.

use core::fmt;

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use rand_core::TryCryptoRng;
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

/// The domain-separation identifier of the ristretto255 group (the draft's `G.DSI`).
pub const DSI: &[u8] = b"CPaceRistretto255";

/// The label that ends the ISK's domain separator: the ISK hash starts with `DSI ‖ "_ISK"`.
pub const ISK_LABEL: &[u8] = b"_ISK";

/// SHA-512's input block size in bytes (the draft's `H.s_in_bytes`): the generator string pads
/// the DSI and PRS with zeros to fill the first block.
pub const HASH_BLOCK_LEN: usize = 128;

/// The length of a share on the wire: a ristretto255 element's canonical encoding.
pub const SHARE_LEN: usize = 32;

/// The length of the intermediate session key (one SHA-512 output).
pub const ISK_LEN: usize = 64;

/// The longest LEB128 encoding of a `usize` (7 bits per byte).
const LEB128_MAX: usize = usize::BITS.div_ceil(7) as usize;

/// A zero block to pad the generator string from, without a buffer of the caller's.
const ZERO_PAD: [u8; HASH_BLOCK_LEN] = [0; HASH_BLOCK_LEN];

/// What can go wrong in CPace, as one small `Copy` enum.
///
/// The share checks are reported precisely: a share is public, and whether it failed to decode
/// or was the identity tells an attacker nothing they did not send. No variant carries a secret.
/// `From<Error> for aeschat_core::session::Error` maps them onto the session's error, so `?`
/// works in the handshake.
///
/// ```
/// use aeschat_core::cpace::{Cpace, Error, Role};
///
/// # let mut rng = getrandom::SysRng;
/// let a = Cpace::new(Role::Initiator, b"password", b"", b"sid", &mut rng)?;
/// // Thirty-two zero bytes encode the identity element, which would make the key independent of
/// // the password: refused.
/// let err = a.finish(b"", &[0; 32], b"").unwrap_err();
/// assert_eq!(err, Error::IdentityShare);
/// assert!(err.to_string().contains("identity"));
/// # Ok::<(), Error>(())
/// ```
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// The peer's share is not the canonical encoding of a ristretto255 element.
    InvalidShare,
    /// The peer's share is the identity element, or the shared point came out as the identity.
    IdentityShare,
    /// The peer's share is this side's own share, sent back.
    ReflectedShare,
    /// The random number generator failed, or gave a zero scalar (a broken generator).
    Randomness,
    /// An output buffer is too small; nothing was written and the call can be retried.
    BufferTooSmall {
        /// The number of bytes the buffer must hold.
        required: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidShare => f.write_str(
                "The peer's CPace share is not a valid ristretto255 element: it is malformed or \
                 someone interfered with the connection.",
            ),
            Error::IdentityShare => f.write_str(
                "The peer's CPace share is the identity element, which would make the key \
                 independent of the password: someone interfered with the connection.",
            ),
            Error::ReflectedShare => f.write_str(
                "The peer's CPace share is this side's own share sent back: someone reflected it.",
            ),
            Error::Randomness => f.write_str(
                "The random number generator failed or returned zeros: no secret scalar could be \
                 drawn.",
            ),
            Error::BufferTooSmall { required } => write!(
                f,
                "The output buffer is too small: it must hold at least {required} bytes."
            ),
        }
    }
}

impl core::error::Error for Error {}

impl From<Error> for crate::session::Error {
    /// A bad share is a malformed handshake message; a failed generator is
    /// [`crate::session::Error::Randomness`]; a short buffer keeps its size.
    fn from(err: Error) -> Self {
        match err {
            Error::InvalidShare | Error::IdentityShare | Error::ReflectedShare => {
                crate::session::Error::UnexpectedMessage
            }
            Error::Randomness => crate::session::Error::Randomness,
            Error::BufferTooSmall { required } => {
                crate::session::Error::BufferTooSmall { required }
            }
        }
    }
}

/// Which side of the initiator–responder setting a party plays: the initiator's share and
/// associated data come first in the transcript the ISK hashes.
///
/// ```
/// use aeschat_core::cpace::Role;
///
/// assert_eq!(Role::Initiator.peer(), Role::Responder);
/// ```
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Party A: its share and associated data come first (`Ya`, `ADa`).
    Initiator,
    /// Party B: its share and associated data come second (`Yb`, `ADb`).
    Responder,
}

impl Role {
    /// The role the other party plays.
    ///
    /// ```
    /// use aeschat_core::cpace::Role;
    ///
    /// assert_eq!(Role::Responder.peer(), Role::Initiator);
    /// ```
    pub const fn peer(self) -> Role {
        match self {
            Role::Initiator => Role::Responder,
            Role::Responder => Role::Initiator,
        }
    }
}

/// One party's CPace run: its secret scalar, its share, and the session id already absorbed into
/// the ISK hash.
///
/// Created with [`Cpace::new`]; [`Cpace::share`] is what goes to the peer, and the consuming
/// [`Cpace::finish`] takes the peer's share and gives the ISK. The scalar is wiped when the value
/// is dropped, finished or not. It is neither `Clone` nor `Copy` (a scalar must never serve two
/// runs), and its `Debug` shows only the role and the public share.
///
/// It owns everything it needs (288 bytes on x86_64, no borrows), so a handshake state machine can
/// keep it between messages.
///
/// ```
/// use aeschat_core::cpace::{Cpace, Role};
///
/// # let mut rng = getrandom::SysRng;
/// let server = Cpace::new(Role::Initiator, b"password", b"ci", b"sid", &mut rng)?;
/// assert!(!format!("{server:?}").contains("scalar"));
/// # Ok::<(), aeschat_core::cpace::Error>(())
/// ```
pub struct Cpace {
    role: Role,
    scalar: Scalar,
    share: [u8; SHARE_LEN],
    /// SHA-512 over `prepend_len(DSI ‖ "_ISK") ‖ prepend_len(sid)`: the ISK hash up to `K`.
    isk_hash: Sha512,
}

impl Cpace {
    /// Starts a run: derives the generator from `prs`, `channel_identifier` and `sid`, draws a
    /// secret scalar from `rng`, and computes this side's share.
    ///
    /// `prs` is the password-related string (a password, or a key). The channel identifier is
    /// never sent; `sid` should be unique per session (fresh nonces from both sides, say); both
    /// must be the same on both sides. Any length works, the empty string included.
    ///
    /// The scalar is drawn as the draft recommends: exactly 32 bytes in one
    /// `try_fill_bytes` call, the top four bits cleared, read little-endian. `rng` may be any
    /// `TryCryptoRng`: an infallible `CryptoRng` (which is one), `getrandom::SysRng`, or a board's
    /// hardware generator. Its failure, or a scalar of zero (which only a broken generator
    /// gives), is [`Error::Randomness`].
    ///
    /// ```
    /// use aeschat_core::cpace::{Cpace, Role, SHARE_LEN};
    ///
    /// let mut rng = getrandom::SysRng; // getrandom's `sys_rng` feature
    /// let nonces = [[1u8; 32], [2u8; 32]].concat();
    /// let cpace = Cpace::new(Role::Responder, b"hunter2", b"aeschat/2", &nonces, &mut rng)?;
    /// assert_eq!(cpace.share().len(), SHARE_LEN);
    /// # Ok::<(), aeschat_core::cpace::Error>(())
    /// ```
    pub fn new<R: TryCryptoRng + ?Sized>(
        role: Role,
        prs: &[u8],
        channel_identifier: &[u8],
        sid: &[u8],
        rng: &mut R,
    ) -> Result<Cpace, Error> {
        let mut bytes = [0u8; 32];
        let drawn = rng.try_fill_bytes(&mut bytes);
        // The draft's sampling: clear the bits above the group's 252, so the value is below the
        // group order and needs no reduction (no bias from a modular reduction either).
        if let Some(top) = bytes.last_mut() {
            *top &= 0x0f;
        }
        let scalar = Scalar::from_bytes_mod_order(bytes);
        bytes.zeroize();
        // A zero scalar makes the share the identity and the key independent of the password;
        // only a broken generator gives one (probability 2^-252 otherwise).
        let zero: bool = scalar.ct_eq(&Scalar::ZERO).into();
        if drawn.is_err() || zero {
            // `scalar` is a plain value: wipe it ourselves on this early return.
            let mut scalar = scalar;
            scalar.zeroize();
            return Err(Error::Randomness);
        }

        let mut generator = generator_point(prs, channel_identifier, sid);
        let share = scalar_mult(&scalar, &generator).compress().to_bytes();
        generator.zeroize();

        let mut isk_hash = Sha512::new();
        lv_feed_parts(&mut isk_hash, &[DSI, ISK_LABEL]);
        lv_feed(&mut isk_hash, sid);
        Ok(Cpace {
            role,
            scalar,
            share,
            isk_hash,
        })
    }

    /// This side's share, the 32 bytes to send to the peer (`Ya` or `Yb`).
    ///
    /// ```
    /// use aeschat_core::cpace::{Cpace, Role};
    ///
    /// # let mut rng = getrandom::SysRng;
    /// let a = Cpace::new(Role::Initiator, b"pw", b"", b"", &mut rng)?;
    /// let b = Cpace::new(Role::Initiator, b"pw", b"", b"", &mut rng)?;
    /// assert_ne!(a.share(), b.share()); // a fresh scalar every run
    /// # Ok::<(), aeschat_core::cpace::Error>(())
    /// ```
    pub fn share(&self) -> &[u8; SHARE_LEN] {
        &self.share
    }

    /// This side's role, as given to [`Cpace::new`].
    ///
    /// ```
    /// use aeschat_core::cpace::{Cpace, Role};
    ///
    /// # let mut rng = getrandom::SysRng;
    /// let b = Cpace::new(Role::Responder, b"pw", b"", b"", &mut rng)?;
    /// assert_eq!(b.role(), Role::Responder);
    /// # Ok::<(), aeschat_core::cpace::Error>(())
    /// ```
    pub fn role(&self) -> Role {
        self.role
    }

    /// Checks the peer's share and derives the ISK; the scalar is wiped either way.
    ///
    /// `own_ad` is the associated data this side sent with its share, `peer_ad` what the peer
    /// sent with its own (both may be empty); the transcript orders them by role. The ISK is
    /// `SHA-512(lv_cat(DSI ‖ "_ISK", sid, K) ‖ transcript_ir(Ya, ADa, Yb, ADb))` with
    /// `K = y · Y_peer`. `K` itself never leaves this function: it would let anyone test
    /// password guesses offline.
    ///
    /// The checks, each named after the attack it stops:
    /// - invalid-point attack: the peer's share must be a canonical ristretto255 encoding
    ///   ([`Error::InvalidShare`]);
    /// - identity attack: neither the peer's share nor `K` may be the identity element, which
    ///   would make the key the same whatever the password ([`Error::IdentityShare`]);
    /// - reflection attack: the peer's share must not be this side's own
    ///   ([`Error::ReflectedShare`]).
    ///
    /// A wrong password is not an error here: both sides get different ISKs, which the key
    /// confirmation that must follow detects.
    ///
    /// ```
    /// use aeschat_core::cpace::{Cpace, Error, Role};
    ///
    /// # let mut rng = getrandom::SysRng;
    /// let a = Cpace::new(Role::Initiator, b"pw", b"", b"", &mut rng)?;
    /// let own = *a.share();
    /// assert_eq!(a.finish(b"", &own, b"").unwrap_err(), Error::ReflectedShare);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn finish(
        self,
        own_ad: &[u8],
        peer_share: &[u8; SHARE_LEN],
        peer_ad: &[u8],
    ) -> Result<Isk, Error> {
        // Shares are public: these comparisons need not be constant-time, but they are.
        let reflected: bool = self.share.ct_eq(peer_share).into();
        if reflected {
            return Err(Error::ReflectedShare);
        }
        let peer = CompressedRistretto(*peer_share)
            .decompress()
            .ok_or(Error::InvalidShare)?;
        if peer.is_identity() {
            return Err(Error::IdentityShare);
        }
        let mut shared = scalar_mult(&self.scalar, &peer);
        // In a prime-order group this cannot happen after the checks above; the draft requires
        // the check all the same, and it costs nothing.
        let identity = shared.is_identity();
        let mut k = shared.compress().to_bytes();
        shared.zeroize();
        if identity {
            k.zeroize();
            return Err(Error::IdentityShare);
        }

        let mut hash = self.isk_hash.clone();
        lv_feed(&mut hash, &k);
        k.zeroize();
        let (own, peer) = ((&self.share[..], own_ad), (&peer_share[..], peer_ad));
        let ((ya, ada), (yb, adb)) = match self.role {
            Role::Initiator => (own, peer),
            Role::Responder => (peer, own),
        };
        feed_transcript_ir(&mut hash, ya, ada, yb, adb);
        Ok(Isk(hash.finalize().into()))
    }
}

impl Drop for Cpace {
    fn drop(&mut self) {
        self.scalar.zeroize();
    }
}

impl fmt::Debug for Cpace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cpace")
            .field("role", &self.role)
            .field("share", &self.share)
            .finish_non_exhaustive()
    }
}

/// The intermediate session key: 64 secret bytes, wiped on drop. Feed it to a KDF (HKDF) and
/// confirm it explicitly before trusting it; its `Debug` shows nothing of it.
///
/// ```
/// use aeschat_core::cpace::{Cpace, Role, ISK_LEN};
///
/// # let mut rng = getrandom::SysRng;
/// let a = Cpace::new(Role::Initiator, b"pw", b"", b"", &mut rng)?;
/// let b = Cpace::new(Role::Responder, b"pw", b"", b"", &mut rng)?;
/// let b_share = *b.share();
/// let isk = a.finish(b"", &b_share, b"")?;
/// assert_eq!(isk.as_bytes().len(), ISK_LEN);
/// assert_eq!(format!("{isk:?}"), "Isk(..)");
/// # Ok::<(), aeschat_core::cpace::Error>(())
/// ```
pub struct Isk([u8; ISK_LEN]);

impl Isk {
    /// The key's bytes, to feed a KDF.
    ///
    /// ```
    /// use aeschat_core::cpace::{Cpace, Role};
    ///
    /// # let mut rng = getrandom::SysRng;
    /// let a = Cpace::new(Role::Initiator, b"pw", b"", b"", &mut rng)?;
    /// let b = Cpace::new(Role::Responder, b"pw", b"", b"", &mut rng)?;
    /// let (a_share, b_share) = (*a.share(), *b.share());
    /// let isk_a = a.finish(b"", &b_share, b"")?;
    /// let isk_b = b.finish(b"", &a_share, b"")?;
    /// assert_eq!(isk_a.as_bytes(), isk_b.as_bytes());
    /// # Ok::<(), aeschat_core::cpace::Error>(())
    /// ```
    pub fn as_bytes(&self) -> &[u8; ISK_LEN] {
        &self.0
    }
}

impl Drop for Isk {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Isk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Isk(..)")
    }
}

/// The encoded generator `g` for a PRS, channel identifier and session id (the draft's
/// `calculate_generator`, encoded): SHA-512 of the generator string, mapped to ristretto255 by
/// its one-way map.
///
/// **As secret as the PRS**: whoever knows `g` can test password guesses offline. It is public
/// for test vectors and interoperability checks only; [`Cpace::new`] computes it internally and
/// never keeps it.
///
/// ```
/// use aeschat_core::cpace::generator;
///
/// let g = generator(b"password", b"ci", b"sid");
/// assert_eq!(g, generator(b"password", b"ci", b"sid"));
/// assert_ne!(g, generator(b"passwore", b"ci", b"sid"));
/// ```
pub fn generator(prs: &[u8], channel_identifier: &[u8], sid: &[u8]) -> [u8; 32] {
    let mut point = generator_point(prs, channel_identifier, sid);
    let encoded = point.compress().to_bytes();
    point.zeroize();
    encoded
}

/// `scalar · point` in ristretto255 (constant-time in the scalar). A group operation is modular:
/// there is no integer here to overflow, whatever clippy's arithmetic lint assumes.
#[allow(clippy::arithmetic_side_effects)]
fn scalar_mult(scalar: &Scalar, point: &RistrettoPoint) -> RistrettoPoint {
    scalar * point
}

/// The generator as a point: the generator string hashed as it is produced (no buffer, no length
/// limit), then ristretto255's element derivation. The hash state and output are wiped.
fn generator_point(prs: &[u8], channel_identifier: &[u8], sid: &[u8]) -> RistrettoPoint {
    let mut hash = Sha512::new();
    feed_generator_string(&mut hash, DSI, prs, channel_identifier, sid, HASH_BLOCK_LEN);
    // sha2's `zeroize` feature wipes the state, which held the PRS, when `finalize` drops it.
    let mut uniform: [u8; 64] = hash.finalize().into();
    let point = RistrettoPoint::from_uniform_bytes(&uniform);
    uniform.zeroize();
    point
}

/// The number of bytes LEB128 takes for `n`: one per started group of 7 bits, at least one.
///
/// ```
/// use aeschat_core::cpace::leb128_len;
///
/// assert_eq!(leb128_len(0), 1);
/// assert_eq!(leb128_len(127), 1);
/// assert_eq!(leb128_len(128), 2);
/// ```
pub const fn leb128_len(n: usize) -> usize {
    let bits = usize::BITS.saturating_sub(n.leading_zeros());
    if bits == 0 {
        1
    } else {
        bits.div_ceil(7) as usize
    }
}

/// The length of `prepend_len(data)` for `data_len` bytes of data, for sizing buffers at
/// compile time; `usize::MAX` if that does not fit in a `usize` (no buffer holds it anyway).
///
/// ```
/// use aeschat_core::cpace::lv_len;
///
/// assert_eq!(lv_len(32), 33);
/// const TRANSCRIPT: usize = 2 * lv_len(32) + lv_len(3) + lv_len(3);
/// assert_eq!(TRANSCRIPT, 74);
/// ```
pub const fn lv_len(data_len: usize) -> usize {
    leb128_len(data_len).saturating_add(data_len)
}

/// LEB128 of a length: 7 bits per byte, least significant group first, the top bit set on every
/// byte but the last.
struct Leb128 {
    bytes: [u8; LEB128_MAX],
    len: usize,
}

impl Leb128 {
    fn new(mut n: usize) -> Leb128 {
        let mut out = Leb128 {
            bytes: [0; LEB128_MAX],
            len: 0,
        };
        for slot in out.bytes.iter_mut() {
            let low = (n & 0x7f) as u8; // the mask makes the cast exact
            n >>= 7;
            out.len = out.len.saturating_add(1);
            if n == 0 {
                *slot = low;
                break;
            }
            *slot = low | 0x80;
        }
        out
    }

    fn as_slice(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }
}

/// Where the string utilities write: a hash, a byte counter, or a caller's buffer.
trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Sha512 {
    fn put(&mut self, bytes: &[u8]) {
        Digest::update(self, bytes);
    }
}

/// Counts the bytes a utility would write (saturating: too large for any buffer either way).
struct Counter(usize);

impl Sink for Counter {
    fn put(&mut self, bytes: &[u8]) {
        self.0 = self.0.saturating_add(bytes.len());
    }
}

/// Writes into a buffer already known to be large enough (a [`Counter`] pass checked it); bytes
/// beyond its end, which the check rules out, would be dropped rather than panic.
struct Writer<'a> {
    out: &'a mut [u8],
    len: usize,
}

impl Sink for Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let end = self.len.saturating_add(bytes.len());
        if let Some(dst) = self.out.get_mut(self.len..end) {
            dst.copy_from_slice(bytes);
            self.len = end;
        }
    }
}

/// Runs `emit` once to count, then, if `out` is large enough, once to write: a buffer that is
/// too small gets [`Error::BufferTooSmall`] with nothing written.
fn write_to(out: &mut [u8], emit: impl Fn(&mut dyn Sink)) -> Result<&[u8], Error> {
    let mut counter = Counter(0);
    emit(&mut counter);
    let required = counter.0;
    if required > out.len() {
        return Err(Error::BufferTooSmall { required });
    }
    let mut writer = Writer { out, len: 0 };
    emit(&mut writer);
    let Writer { out, len } = writer;
    Ok(out.get(..len).unwrap_or(&[]))
}

/// `prepend_len(data)`, into a sink.
fn lv_feed<S: Sink + ?Sized>(sink: &mut S, data: &[u8]) {
    sink.put(Leb128::new(data.len()).as_slice());
    sink.put(data);
}

/// `prepend_len` of the concatenation of `parts`, into a sink (so `DSI ‖ "_ISK"` needs no
/// buffer).
fn lv_feed_parts<S: Sink + ?Sized>(sink: &mut S, parts: &[&[u8]]) {
    let len = parts
        .iter()
        .fold(0usize, |sum, part| sum.saturating_add(part.len()));
    sink.put(Leb128::new(len).as_slice());
    for part in parts {
        sink.put(part);
    }
}

fn feed_generator_string<S: Sink + ?Sized>(
    sink: &mut S,
    dsi: &[u8],
    prs: &[u8],
    channel_identifier: &[u8],
    sid: &[u8],
    block_len: usize,
) {
    // Zeros fill the rest of the first hash block after the DSI and the PRS (and the padding's
    // own one-byte length); none if they already fill it.
    let pad = block_len
        .saturating_sub(1)
        .saturating_sub(lv_len(prs.len()))
        .saturating_sub(lv_len(dsi.len()));
    lv_feed(sink, dsi);
    lv_feed(sink, prs);
    // `pad` is below `block_len`; a `block_len` above HASH_BLOCK_LEN (never used by this suite)
    // pads from the zero block in slices.
    sink.put(Leb128::new(pad).as_slice());
    let mut left = pad;
    while left > 0 {
        let take = left.min(HASH_BLOCK_LEN);
        sink.put(ZERO_PAD.get(..take).unwrap_or(&[]));
        left = left.saturating_sub(take);
    }
    lv_feed(sink, channel_identifier);
    lv_feed(sink, sid);
}

fn feed_transcript_ir<S: Sink + ?Sized>(
    sink: &mut S,
    ya: &[u8],
    ada: &[u8],
    yb: &[u8],
    adb: &[u8],
) {
    for part in [ya, ada, yb, adb] {
        lv_feed(sink, part);
    }
}

/// The bytes of `lv_cat(y, ad)`, one at a time, for comparing without a buffer.
fn lv_pair_bytes<'a>(y: &'a [u8], ad: &'a [u8]) -> impl Iterator<Item = u8> + 'a {
    let (len_y, len_ad) = (Leb128::new(y.len()), Leb128::new(ad.len()));
    let prefix_y = len_y.bytes.into_iter().take(len_y.len);
    let prefix_ad = len_ad.bytes.into_iter().take(len_ad.len);
    prefix_y
        .chain(y.iter().copied())
        .chain(prefix_ad)
        .chain(ad.iter().copied())
}

/// `prepend_len(data)`: the LEB128 encoding of `data.len()`, then `data`.
///
/// ```
/// use aeschat_core::cpace::prepend_len;
///
/// let mut out = [0u8; 5];
/// assert_eq!(prepend_len(b"1234", &mut out)?, b"\x041234");
/// # Ok::<(), aeschat_core::cpace::Error>(())
/// ```
pub fn prepend_len<'o>(data: &[u8], out: &'o mut [u8]) -> Result<&'o [u8], Error> {
    write_to(out, |sink| lv_feed(sink, data))
}

/// `lv_cat(parts...)`: each part with its length prepended, concatenated.
///
/// ```
/// use aeschat_core::cpace::lv_cat;
///
/// let mut out = [0u8; 16];
/// assert_eq!(lv_cat(&[b"12", b"", b"3"], &mut out)?, b"\x0212\x00\x013");
/// # Ok::<(), aeschat_core::cpace::Error>(())
/// ```
pub fn lv_cat<'o>(parts: &[&[u8]], out: &'o mut [u8]) -> Result<&'o [u8], Error> {
    write_to(out, |sink| {
        for part in parts {
            lv_feed(sink, part);
        }
    })
}

/// `generator_string(dsi, prs, ci, sid, block_len)`: `lv_cat(dsi, prs, zeros, ci, sid)`, with
/// as many zeros as fill the first hash block of `block_len` bytes after the DSI and PRS. With
/// [`DSI`] and [`HASH_BLOCK_LEN`] it is what [`generator`] hashes (which never buffers it).
///
/// ```
/// use aeschat_core::cpace::{generator_string, lv_len, DSI, HASH_BLOCK_LEN};
///
/// let mut out = [0u8; 256];
/// let s = generator_string(DSI, b"pw", b"ci", b"sid", HASH_BLOCK_LEN, &mut out)?;
/// assert_eq!(s.len(), HASH_BLOCK_LEN + lv_len(2) + lv_len(3));
/// # Ok::<(), aeschat_core::cpace::Error>(())
/// ```
pub fn generator_string<'o>(
    dsi: &[u8],
    prs: &[u8],
    channel_identifier: &[u8],
    sid: &[u8],
    block_len: usize,
    out: &'o mut [u8],
) -> Result<&'o [u8], Error> {
    write_to(out, |sink| {
        feed_generator_string(sink, dsi, prs, channel_identifier, sid, block_len)
    })
}

/// `transcript_ir(Ya, ADa, Yb, ADb)`: `lv_cat(Ya, ADa) ‖ lv_cat(Yb, ADb)`, the initiator's part
/// first. This is the transcript [`Cpace::finish`] hashes.
///
/// ```
/// use aeschat_core::cpace::transcript_ir;
///
/// let mut out = [0u8; 32];
/// assert_eq!(transcript_ir(b"1", b"A", b"2", b"B", &mut out)?, b"\x011\x01A\x012\x01B");
/// # Ok::<(), aeschat_core::cpace::Error>(())
/// ```
pub fn transcript_ir<'o>(
    ya: &[u8],
    ada: &[u8],
    yb: &[u8],
    adb: &[u8],
    out: &'o mut [u8],
) -> Result<&'o [u8], Error> {
    write_to(out, |sink| feed_transcript_ir(sink, ya, ada, yb, adb))
}

/// `transcript_oc(Ya, ADa, Yb, ADb)`: `"oc"`, then the lexicographically larger of
/// `lv_cat(Ya, ADa)` and `lv_cat(Yb, ADb)`, then the other: the transcript of the draft's
/// symmetric setting, where either side may speak first. (aeschat uses the initiator–responder
/// setting; this is here for completeness and its test vectors.)
///
/// ```
/// use aeschat_core::cpace::transcript_oc;
///
/// let mut out = [0u8; 32];
/// assert_eq!(transcript_oc(b"1", b"A", b"2", b"B", &mut out)?, b"oc\x012\x01B\x011\x01A");
/// # Ok::<(), aeschat_core::cpace::Error>(())
/// ```
pub fn transcript_oc<'o>(
    ya: &[u8],
    ada: &[u8],
    yb: &[u8],
    adb: &[u8],
    out: &'o mut [u8],
) -> Result<&'o [u8], Error> {
    // Byte-wise comparison, a proper prefix being the smaller: the draft's ordering.
    let a_larger = lv_pair_bytes(ya, ada).gt(lv_pair_bytes(yb, adb));
    let (first, second) = if a_larger {
        ((ya, ada), (yb, adb))
    } else {
        ((yb, adb), (ya, ada))
    };
    write_to(out, |sink| {
        sink.put(b"oc");
        feed_transcript_ir(sink, first.0, first.1, second.0, second.1);
    })
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    /// An RNG that hands out fixed bytes, to set the scalar.
    struct Fixed([u8; 32]);

    impl rand_core::TryRng for Fixed {
        type Error = core::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            Ok(0)
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            Ok(0)
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            dst.copy_from_slice(&self.0[..dst.len()]);
            Ok(())
        }
    }
    impl TryCryptoRng for Fixed {}

    /// An RNG that always fails.
    struct Broken;

    impl rand_core::TryRng for Broken {
        type Error = core::fmt::Error;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            Err(core::fmt::Error)
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            Err(core::fmt::Error)
        }
        fn try_fill_bytes(&mut self, _: &mut [u8]) -> Result<(), Self::Error> {
            Err(core::fmt::Error)
        }
    }
    impl TryCryptoRng for Broken {}

    #[test]
    fn leb128_matches_its_length_at_every_boundary() {
        for n in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            u32::MAX as usize,
            usize::MAX,
        ] {
            let enc = Leb128::new(n);
            assert_eq!(enc.len, leb128_len(n), "{n}");
            let decoded = enc
                .as_slice()
                .iter()
                .enumerate()
                .fold(0u128, |acc, (i, b)| acc | (u128::from(b & 0x7f) << (7 * i)));
            assert_eq!(decoded, n as u128);
            assert!(enc.as_slice()[..enc.len - 1].iter().all(|b| b & 0x80 != 0));
            assert_eq!(enc.as_slice()[enc.len - 1] & 0x80, 0);
        }
        assert_eq!(Leb128::new(128).as_slice(), [0x80, 0x01]);
        assert_eq!(leb128_len(usize::MAX), LEB128_MAX);
        assert_eq!(lv_len(usize::MAX), usize::MAX);
    }

    #[test]
    fn a_short_buffer_is_told_the_size_and_left_alone() {
        let mut out = [0xaa; 4];
        assert_eq!(
            prepend_len(b"1234", &mut out),
            Err(Error::BufferTooSmall { required: 5 })
        );
        assert_eq!(out, [0xaa; 4]);
    }

    #[test]
    fn the_hashed_generator_string_is_the_written_one() {
        let long = [9u8; 300];
        for prs in [&b""[..], b"pw", &long[..120], &long[..]] {
            let mut buf = [0u8; 1024];
            let s = generator_string(DSI, prs, b"ci", b"sid", HASH_BLOCK_LEN, &mut buf).unwrap();
            let mut uniform = [0u8; 64];
            uniform.copy_from_slice(&Sha512::digest(s));
            let expected = RistrettoPoint::from_uniform_bytes(&uniform)
                .compress()
                .to_bytes();
            assert_eq!(generator(prs, b"ci", b"sid"), expected);
        }
    }

    #[test]
    fn padding_beyond_the_zero_block_is_written_whole() {
        let mut buf = [0u8; 600];
        let s = generator_string(b"D", b"P", b"", b"", 400, &mut buf).unwrap();
        // lv("D") lv("P"), then 395 zeros behind a two-byte length, then two empty strings.
        assert_eq!(s.len(), 2 + 2 + 2 + 395 + 1 + 1);
        assert_eq!(&s[4..6], [0x8b, 0x03]);
        assert!(s[6..6 + 395].iter().all(|&b| b == 0));
    }

    #[test]
    fn a_failing_or_zero_generator_is_refused() {
        assert_eq!(
            Cpace::new(Role::Initiator, b"", b"", b"", &mut Broken).unwrap_err(),
            Error::Randomness
        );
        // Only the top four bits set: cleared, leaving zero.
        let mut top = [0u8; 32];
        top[31] = 0xf0;
        assert_eq!(
            Cpace::new(Role::Initiator, b"", b"", b"", &mut Fixed(top)).unwrap_err(),
            Error::Randomness
        );
    }

    #[test]
    fn the_top_four_bits_of_the_scalar_are_cleared() {
        let mut bytes = [0x11u8; 32];
        let a = Cpace::new(Role::Initiator, b"pw", b"", b"", &mut Fixed(bytes)).unwrap();
        bytes[31] = 0xf1;
        let b = Cpace::new(Role::Initiator, b"pw", b"", b"", &mut Fixed(bytes)).unwrap();
        assert_eq!(a.share(), b.share());
    }

    #[test]
    fn core_error_conversion_keeps_the_meaning() {
        assert_eq!(
            crate::session::Error::from(Error::InvalidShare),
            crate::session::Error::UnexpectedMessage
        );
        assert_eq!(
            crate::session::Error::from(Error::Randomness),
            crate::session::Error::Randomness
        );
    }
}
