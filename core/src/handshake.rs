//! The aeschat handshake: a sans-IO state machine that agrees on fresh session keys from a
//! shared password (or pre-shared key) and two random nonces, and proves both sides hold the
//! same secret before any chat text moves. `docs/PROTOCOL.md` specifies it byte by byte.
//!
//! Protocol 2 (`docs/PROTOCOL.md`): a CPace PAKE (CPACE-RISTR255-SHA512, [`crate::cpace`])
//! with the password (or the pre-shared key) as its PRS; the server is CPace's initiator, the
//! client its responder. Messages, in order: ClientHello → ServerHello (with the server's share)
//! → ClientShare and ClientFinished (one flight) → ServerFinished.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::cpace::{self, lv_cat, Cpace, SHARE_LEN};
use crate::fernet::Key;
use crate::frame::{write_frame, Frame, FrameKind, FRAME_HEADER_LEN};
use crate::kdf::{hkdf_expand, hkdf_extract, hmac_sha256, HASH_LEN};
use crate::records::{Receiver, Sender, Session, MAX_MESSAGE_LEN};
use crate::session::Error;

/// The bytes every hello starts with, so a stranger is recognised as one.
pub const PROTOCOL_MAGIC: &[u8; 7] = b"AESCHAT";
/// The one protocol version this implementation speaks. There is no negotiation.
pub const PROTOCOL_VERSION: u8 = 2;
/// The length of each side's random nonce.
pub const NONCE_LEN: usize = 32;

const CLIENT_HELLO_LEN: usize = PROTOCOL_MAGIC.len() + 1 + 1 + NONCE_LEN + 8 + 4;
/// A ServerHello: the ClientHello's fields, then the server's 32-byte CPace share.
const SERVER_HELLO_LEN: usize = CLIENT_HELLO_LEN + SHARE_LEN;
const FINISHED_LEN: usize = HASH_LEN;
/// The client's third flight: its ClientShare frame and its ClientFinished frame, written
/// together by one [`Handshake::write_message`].
const CLIENT_FLIGHT_LEN: usize = SHARE_FRAME_LEN + FRAME_HEADER_LEN + FINISHED_LEN;
/// A ClientShare frame: header and the client's share.
const SHARE_FRAME_LEN: usize = FRAME_HEADER_LEN + SHARE_LEN;
/// The largest handshake write: a buffer of this size holds any message (or flight) the
/// handshake writes.
pub const HANDSHAKE_FRAME_LEN: usize = if FRAME_HEADER_LEN + SERVER_HELLO_LEN > CLIENT_FLIGHT_LEN {
    FRAME_HEADER_LEN + SERVER_HELLO_LEN
} else {
    CLIENT_FLIGHT_LEN
};

/// Labels for the key schedule. Every key has one purpose and one direction.
const CLIENT_WRITE_LABEL: &[u8] = b"aeschat/2 client write key";
const SERVER_WRITE_LABEL: &[u8] = b"aeschat/2 server write key";
const CLIENT_CONFIRM_LABEL: &[u8] = b"aeschat/2 client confirm key";
const SERVER_CONFIRM_LABEL: &[u8] = b"aeschat/2 server confirm key";

/// CPace's channel identifier parts (PROTOCOL.md §4.2): protocol, then (after the mode byte)
/// the initiator's role and the responder's.
const CI_PROTOCOL: &[u8] = b"aeschat/2";
const CI_INITIATOR: &[u8] = b"server";
const CI_RESPONDER: &[u8] = b"client";
/// `lv_cat("aeschat/2", mode, "server", "client")`: 10 + 2 + 7 + 7 bytes.
const CI_LEN: usize = 26;

/// The length of the caller-drawn secret from which this side's CPace scalar is taken.
pub const SCALAR_SEED_LEN: usize = 32;

/// Which end of the connection this side is.
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The side that connects; it sends the first message and is CPace's responder.
    Client,
    /// The side that listens; it is CPace's initiator (its share goes in the ServerHello).
    Server,
}

/// The shared secret both people hold.
#[derive(Clone, Copy)]
pub enum Secret<'a> {
    /// A password: CPace's PRS, exactly its bytes (protocol 2 does not stretch it).
    Password(&'a [u8]),
    /// A 32-byte random key from a key file: CPace's PRS in key mode.
    PreSharedKey(&'a Key),
}

impl Secret<'_> {
    const PASSWORD_MODE: u8 = 1;
    const KEY_MODE: u8 = 2;

    fn mode_byte(&self) -> u8 {
        match self {
            Secret::Password(_) => Self::PASSWORD_MODE,
            Secret::PreSharedKey(_) => Self::KEY_MODE,
        }
    }
}

impl core::fmt::Debug for Secret<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Secret::Password(_) => f.write_str("Password(..)"),
            Secret::PreSharedKey(_) => f.write_str("PreSharedKey(..)"),
        }
    }
}

/// One side's settings for a handshake.
///
/// ```
/// use aeschat_core::session::{Config, Role, Secret, MAX_MESSAGE_LEN};
///
/// let config = Config::new(Role::Client, Secret::Password(b"correct horse battery staple"));
/// assert_eq!(config.role(), Role::Client);
/// assert_eq!(config.max_message_len(), MAX_MESSAGE_LEN);
/// assert_eq!(config.with_max_message_len(256).max_message_len(), 256);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Config<'a> {
    role: Role,
    secret: Secret<'a>,
    max_message_len: usize,
}

impl<'a> Config<'a> {
    /// Settings with the default maximum message length ([`crate::session::MAX_MESSAGE_LEN`]).
    pub const fn new(role: Role, secret: Secret<'a>) -> Config<'a> {
        Config {
            role,
            secret,
            max_message_len: MAX_MESSAGE_LEN,
        }
    }

    /// Sets the longest message this side accepts (announced to the peer, which will not send
    /// longer ones). It must fit the frame reader's capacity: see
    /// [`crate::session::frame_capacity`].
    pub const fn with_max_message_len(mut self, max_message_len: usize) -> Config<'a> {
        self.max_message_len = max_message_len;
        self
    }

    /// This side's role.
    pub const fn role(&self) -> Role {
        self.role
    }

    /// The longest message this side accepts.
    pub const fn max_message_len(&self) -> usize {
        self.max_message_len
    }
}

/// Where a handshake stands: what it needs next.
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeState {
    /// Call [`Handshake::write_message`]: this side sends its hello.
    SendHello,
    /// Call [`Handshake::read_message`] with the peer's hello.
    AwaitHello,
    /// A server: call [`Handshake::read_message`] with the client's share (ClientShare).
    AwaitShare,
    /// Call [`Handshake::derive_keys`]: CPace's second half and HKDF (cheap in protocol 2).
    /// A client comes here after the ServerHello (and computes its own share here); a server
    /// only after the ClientFinished, which it then checks, so a gate placed here (see
    /// [`crate::session::Engine::refuse`]) still decides before the server's key derivation.
    DeriveKeys,
    /// Call [`Handshake::write_message`]: this side sends its key confirmation.
    SendFinished,
    /// Call [`Handshake::read_message`] with the peer's key confirmation.
    AwaitFinished,
    /// Done: call [`Handshake::into_session`].
    Established,
    /// The handshake failed; it cannot continue.
    Failed,
}

/// The reason one side gives up, sent unauthenticated in an alert frame. An alert can only end
/// a handshake, never change its parameters, so forging one gains an attacker nothing beyond
/// cutting the connection, which it can do anyway.
///
/// Codes on the wire: 1 to 3 and 5 to 7 as below; 4 is reserved (protocol 1's iteration
/// refusal) and never sent. A received code this side does not know, 4 included, is only
/// [`Error::PeerAborted`].
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Alert {
    /// Key confirmation failed (code 1).
    AuthenticationFailed,
    /// The client's protocol version is not supported (code 2).
    UnsupportedVersion,
    /// One side uses a password, the other a key file (code 3).
    ModeMismatch,
    /// The server is in another conversation (code 5).
    Busy,
    /// A malformed or unexpected message (code 6).
    UnexpectedMessage,
    /// The server takes no attempt from this caller for the next `seconds` (code 7, followed by
    /// the seconds as a big-endian u16): a pause after failed authentications or abandoned
    /// handshakes, or too many attempts at once.
    RetryLater {
        /// How long the caller should wait before trying again.
        seconds: u16,
    },
}

impl Alert {
    /// The longest alert frame: header, code and a two-byte parameter.
    pub const MAX_FRAME_LEN: usize = FRAME_HEADER_LEN + 3;

    /// The alert's code on the wire.
    ///
    /// ```
    /// use aeschat_core::session::Alert;
    /// assert_eq!(Alert::Busy.code(), 5);
    /// assert_eq!(Alert::RetryLater { seconds: 4 }.code(), 7);
    /// ```
    pub const fn code(self) -> u8 {
        match self {
            Alert::AuthenticationFailed => 1,
            Alert::UnsupportedVersion => 2,
            Alert::ModeMismatch => 3,
            Alert::Busy => 5,
            Alert::UnexpectedMessage => 6,
            Alert::RetryLater { .. } => 7,
        }
    }

    /// The alert to send the peer when this side fails with `error`, if the peer should hear
    /// of it.
    ///
    /// ```
    /// use aeschat_core::session::{Alert, Error};
    /// assert_eq!(Alert::for_error(Error::AuthenticationFailed), Some(Alert::AuthenticationFailed));
    /// assert_eq!(Alert::for_error(Error::LegacyPeer), None);
    /// ```
    pub const fn for_error(error: Error) -> Option<Alert> {
        match error {
            Error::AuthenticationFailed => Some(Alert::AuthenticationFailed),
            Error::UnsupportedProtocol { .. } => Some(Alert::UnsupportedVersion),
            Error::ModeMismatch => Some(Alert::ModeMismatch),
            Error::UnexpectedMessage | Error::NotAeschat | Error::FrameTooLong { .. } => {
                Some(Alert::UnexpectedMessage)
            }
            // A server's own refusals, as a gate before the key derivation may return them
            // (see `handshake_admitting`).
            Error::PeerBusy => Some(Alert::Busy),
            Error::RetryLater { seconds } => Some(Alert::RetryLater { seconds }),
            _ => None,
        }
    }

    /// The error a handshake reports when it receives an alert body from a peer in the role
    /// `from`; `proof_sent` says whether this side has already sent its key confirmation (the
    /// client's flight). An alert that role never sends at this point is a stranger's or a
    /// forger's, and is only [`Error::PeerAborted`]: no alert reaching a server before it has
    /// checked a ClientFinished can pass for a failed password (a server that counted failures
    /// would otherwise be stopped by anyone able to reach it), and no alert 1 reaching a client
    /// before it has sent its ClientFinished can pass for a wrong password either (nothing
    /// derived from it had been sent, so nothing was tested: a forger, or a relay, would
    /// otherwise make a person believe their password or code was wrong).
    pub(crate) fn received(body: &[u8], from: Role, proof_sent: bool) -> Error {
        match (body, from) {
            ([1], Role::Server) if proof_sent => Error::AuthenticationFailed,
            ([2], _) => Error::VersionRefused,
            ([3], _) => Error::ModeMismatch,
            ([5], Role::Server) => Error::PeerBusy,
            (&[7, high, low], Role::Server) => Error::RetryLater {
                seconds: u16::from_be_bytes([high, low]),
            },
            _ => Error::PeerAborted,
        }
    }

    /// Writes this alert as a frame into `out` (which needs [`Alert::MAX_FRAME_LEN`] bytes at
    /// most: 6 for every alert but `RetryLater`, which takes 8).
    ///
    /// ```
    /// use aeschat_core::session::Alert;
    /// let mut out = [0u8; Alert::MAX_FRAME_LEN];
    /// assert_eq!(Alert::Busy.write(&mut out)?, &[6, 0, 0, 0, 1, 5][..]);
    /// assert_eq!(Alert::RetryLater { seconds: 300 }.write(&mut out)?, &[6, 0, 0, 0, 3, 7, 1, 44][..]);
    /// # Ok::<(), aeschat_core::session::Error>(())
    /// ```
    pub fn write(self, out: &mut [u8]) -> Result<&[u8], Error> {
        match self {
            Alert::RetryLater { seconds } => {
                let [high, low] = seconds.to_be_bytes();
                write_frame(FrameKind::Alert, &[self.code(), high, low], out)
            }
            _ => write_frame(FrameKind::Alert, &[self.code()], out),
        }
    }
}

/// The keys one session derives. Each has one purpose and one direction.
struct SessionKeys {
    client_write: Key,
    server_write: Key,
    client_confirm: [u8; HASH_LEN],
    server_confirm: [u8; HASH_LEN],
}

impl Drop for SessionKeys {
    fn drop(&mut self) {
        self.client_confirm.zeroize();
        self.server_confirm.zeroize();
    }
}

/// One side of a handshake, driven by its [`HandshakeState`].
///
/// ```
/// use aeschat_core::session::{Config, Frame, Handshake, HandshakeState, Role, Secret, HANDSHAKE_FRAME_LEN};
///
/// let password = Secret::Password(b"a long random passphrase");
/// // Nonces and scalar seeds: fresh random bytes in real use (the engine draws them).
/// let mut client = Handshake::new(Config::new(Role::Client, password), [1; 32], [3; 32], None);
/// let mut server = Handshake::new(Config::new(Role::Server, password), [2; 32], [4; 32], None);
/// let mut wire = [0u8; HANDSHAKE_FRAME_LEN];
///
/// // Move each write (one frame, or the client's two-frame flight) to the other side.
/// let mut pass = |from: &mut Handshake, to: &mut Handshake| -> Result<(), aeschat_core::session::Error> {
///     let len = from.write_message(&mut wire)?.len();
///     let mut at = 0;
///     while at < len {
///         let (frame, used) = Frame::parse(&mut wire[at..len], HANDSHAKE_FRAME_LEN)?.unwrap();
///         to.read_message(frame)?;
///         at += used;
///     }
///     Ok(())
/// };
/// pass(&mut client, &mut server)?;              // ClientHello
/// pass(&mut server, &mut client)?;              // ServerHello, with the server's share
/// client.derive_keys()?;                        // CPace: the client's share, ISK, the keys
/// pass(&mut client, &mut server)?;              // ClientShare ‖ ClientFinished
/// server.derive_keys()?;                        // CPace, the keys; checks the ClientFinished
/// pass(&mut server, &mut client)?;              // ServerFinished
/// assert_eq!(client.state(), HandshakeState::Established);
/// assert_eq!(server.state(), HandshakeState::Established);
/// # Ok::<(), aeschat_core::session::Error>(())
/// ```
pub struct Handshake<'a> {
    config: Config<'a>,
    state: HandshakeState,
    own_nonce: [u8; NONCE_LEN],
    own_time: u64,
    peer_nonce: [u8; NONCE_LEN],
    peer_time: u64,
    peer_max_message_len: usize,
    /// The caller-drawn secret CPace takes its scalar from; wiped once used and on drop.
    scalar_seed: ScalarSeed,
    /// A server's CPace run, from its ServerHello until the client's share is taken.
    cpace: Option<Cpace>,
    /// A client's own CPace share, once computed, for the flight that sends it.
    own_share: Option<[u8; SHARE_LEN]>,
    /// The peer's CPace share (the ServerHello's, or the ClientShare's).
    peer_share: [u8; SHARE_LEN],
    /// SHA-256 over ClientHello, ServerHello and ClientShare frames, then its result.
    transcript: Sha256,
    transcript_hash: [u8; HASH_LEN],
    /// The server's copy of the client's key confirmation, checked once the keys are derived.
    peer_finished: [u8; FINISHED_LEN],
    keys: Option<SessionKeys>,
}

/// The secret bytes a side's CPace scalar is drawn from, handed to [`Cpace::new`] as a one-shot
/// generator. Wiped after use and on drop.
struct ScalarSeed {
    bytes: [u8; SCALAR_SEED_LEN],
    used: bool,
}

impl Drop for ScalarSeed {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl rand_core::TryRng for ScalarSeed {
    type Error = cpace::Error;

    fn try_next_u32(&mut self) -> Result<u32, cpace::Error> {
        Err(cpace::Error::Randomness)
    }

    fn try_next_u64(&mut self) -> Result<u64, cpace::Error> {
        Err(cpace::Error::Randomness)
    }

    /// Hands out the seed exactly once, for exactly its length: anything else is a misuse,
    /// reported as a generator failure (which `Cpace::new` turns into `Error::Randomness`).
    fn try_fill_bytes(&mut self, out: &mut [u8]) -> Result<(), cpace::Error> {
        if self.used || out.len() != SCALAR_SEED_LEN {
            return Err(cpace::Error::Randomness);
        }
        out.copy_from_slice(&self.bytes);
        self.bytes.zeroize();
        self.used = true;
        Ok(())
    }
}

impl rand_core::TryCryptoRng for ScalarSeed {}

impl<'a> Handshake<'a> {
    /// Starts a handshake. `nonce` and `scalar_seed` must be fresh random bytes (never reused;
    /// the seed is this side's CPace secret, and never leaves the handshake); `now` is this
    /// side's clock in Unix seconds, `None` on a board without one (sent as 0).
    pub fn new(
        config: Config<'a>,
        nonce: [u8; NONCE_LEN],
        scalar_seed: [u8; SCALAR_SEED_LEN],
        now: Option<u64>,
    ) -> Handshake<'a> {
        let state = match config.role {
            Role::Client => HandshakeState::SendHello,
            Role::Server => HandshakeState::AwaitHello,
        };
        Handshake {
            config,
            state,
            own_nonce: nonce,
            own_time: now.unwrap_or(0),
            peer_nonce: [0; NONCE_LEN],
            peer_time: 0,
            peer_max_message_len: 0,
            scalar_seed: ScalarSeed {
                bytes: scalar_seed,
                used: false,
            },
            cpace: None,
            own_share: None,
            peer_share: [0; SHARE_LEN],
            transcript: Sha256::new(),
            transcript_hash: [0; HASH_LEN],
            peer_finished: [0; FINISHED_LEN],
            keys: None,
        }
    }

    /// What the handshake needs next.
    pub fn state(&self) -> HandshakeState {
        self.state
    }

    /// This side's settings.
    pub fn config(&self) -> &Config<'a> {
        &self.config
    }

    /// Writes this side's next message as a frame into `out` (at least
    /// [`HANDSHAKE_FRAME_LEN`] bytes) and returns it.
    pub fn write_message<'o>(&mut self, out: &'o mut [u8]) -> Result<&'o [u8], Error> {
        let result = self.write_inner(out);
        if let Err(error) = result {
            if !matches!(error, Error::BufferTooSmall { .. }) {
                self.state = HandshakeState::Failed;
            }
        }
        result
    }

    /// Takes the peer's next message. Any error ends the handshake; [`Alert::for_error`] says
    /// whether to tell the peer.
    pub fn read_message(&mut self, frame: Frame<'_>) -> Result<(), Error> {
        let result = self.read_inner(frame);
        if result.is_err() {
            self.state = HandshakeState::Failed;
        }
        result
    }

    /// Derives the session keys: CPace's second half (a client first computes its own share),
    /// then HKDF over ISK and the transcript. Cheap in protocol 2 (well under a millisecond on
    /// a desktop): no PBKDF2.
    ///
    /// A server derives only once the client has sent its share and ClientFinished, and checks
    /// the ClientFinished here. A malformed, identity or reflected share is
    /// [`Error::UnexpectedMessage`] (not a guess); a wrong password is
    /// [`Error::AuthenticationFailed`]. Either ends the handshake, and the peer should be told
    /// ([`Alert::for_error`]).
    ///
    /// ```
    /// use aeschat_core::session::{Config, Error, Handshake, HandshakeState, Role, Secret};
    /// # use aeschat_core::session::{Frame, HANDSHAKE_FRAME_LEN};
    /// # let password = Secret::Password(b"a long random passphrase");
    /// # let mut client = Handshake::new(Config::new(Role::Client, password), [1; 32], [3; 32], None);
    /// # let mut server = Handshake::new(Config::new(Role::Server, password), [2; 32], [4; 32], None);
    /// # let mut wire = [0u8; HANDSHAKE_FRAME_LEN];
    /// # let len = client.write_message(&mut wire)?.len(); server.read_message(Frame::parse(&mut wire[..len], 99)?.unwrap().0)?;
    /// # let len = server.write_message(&mut wire)?.len(); client.read_message(Frame::parse(&mut wire[..len], 99)?.unwrap().0)?;
    /// assert_eq!(client.state(), HandshakeState::DeriveKeys); // the ServerHello arrived
    /// client.derive_keys()?; // one call: there is nothing to resume
    /// assert_eq!(client.state(), HandshakeState::SendFinished);
    /// assert_eq!(client.derive_keys(), Err(Error::OutOfOrderCall)); // only when asked for
    /// # Ok::<(), aeschat_core::session::Error>(())
    /// ```
    pub fn derive_keys(&mut self) -> Result<(), Error> {
        if self.state != HandshakeState::DeriveKeys {
            return Err(Error::OutOfOrderCall);
        }
        let result = self.derive_inner();
        if result.is_err() {
            self.state = HandshakeState::Failed;
        }
        result
    }

    fn derive_inner(&mut self) -> Result<(), Error> {
        let isk = match self.config.role {
            Role::Server => {
                // The server's run began at its ServerHello; the client's share is in the
                // transcript already. A bad share is UnexpectedMessage, not a guess.
                let run = self.cpace.take().ok_or(Error::OutOfOrderCall)?;
                run.finish(b"", &self.peer_share, b"")?
            }
            Role::Client => {
                let run = self.start_cpace(cpace::Role::Responder)?;
                self.own_share = Some(*run.share());
                // The ClientShare frame joins the transcript before it is hashed: the keys and
                // both Finished MACs cover it.
                let mut frame = [0u8; SHARE_FRAME_LEN];
                let frame = write_frame(FrameKind::ClientShare, run.share(), &mut frame)?;
                self.transcript.update(frame);
                self.finish_transcript();
                run.finish(b"", &self.peer_share, b"")?
            }
        };
        self.derive_session_keys(isk.as_bytes());
        drop(isk);
        if self.config.role == Role::Server {
            self.check_finished(&self.peer_finished)?;
        }
        self.state = HandshakeState::SendFinished;
        Ok(())
    }

    /// This side's CPace run: PRS the password or key, CI from the mode, sid both nonces.
    fn start_cpace(&mut self, role: cpace::Role) -> Result<Cpace, Error> {
        let prs: &[u8] = match self.config.secret {
            Secret::Password(password) => password,
            Secret::PreSharedKey(key) => key.as_bytes(),
        };
        let mut ci = [0u8; CI_LEN];
        let mode = [self.config.secret.mode_byte()];
        let ci = lv_cat(&[CI_PROTOCOL, &mode, CI_INITIATOR, CI_RESPONDER], &mut ci)?;
        let (client_nonce, server_nonce) = match self.config.role {
            Role::Client => (&self.own_nonce, &self.peer_nonce),
            Role::Server => (&self.peer_nonce, &self.own_nonce),
        };
        let mut sid = [0u8; 2 * NONCE_LEN];
        let (client, server) = sid.split_at_mut(NONCE_LEN);
        client.copy_from_slice(client_nonce);
        server.copy_from_slice(server_nonce);
        Ok(Cpace::new(role, prs, ci, &sid, &mut self.scalar_seed)?)
    }

    /// The four keys from CPace's ISK and the transcript hash.
    fn derive_session_keys(&mut self, master: &[u8]) {
        let mut prk = hkdf_extract(&self.transcript_hash, master);
        let derive = |label: &[u8]| {
            let mut okm = [0u8; HASH_LEN];
            hkdf_expand(&prk, label, &mut okm);
            okm
        };
        let mut client_write = derive(CLIENT_WRITE_LABEL);
        let mut server_write = derive(SERVER_WRITE_LABEL);
        self.keys = Some(SessionKeys {
            client_write: Key::from_bytes(client_write),
            server_write: Key::from_bytes(server_write),
            client_confirm: derive(CLIENT_CONFIRM_LABEL),
            server_confirm: derive(SERVER_CONFIRM_LABEL),
        });
        client_write.zeroize();
        server_write.zeroize();
        prk.zeroize();
    }

    /// The established session, ready to split into a sending and a receiving half.
    pub fn into_session(self) -> Result<Session, Error> {
        if self.state != HandshakeState::Established {
            return Err(Error::OutOfOrderCall);
        }
        let keys = self.keys.as_ref().ok_or(Error::OutOfOrderCall)?;
        let (send_key, receive_key) = match self.config.role {
            Role::Client => (&keys.client_write, &keys.server_write),
            Role::Server => (&keys.server_write, &keys.client_write),
        };
        // Zero means "no clock" on either side: then there is no offset to report.
        let peer_clock_offset = if self.own_time == 0 || self.peer_time == 0 {
            None
        } else {
            let offset = i128::from(self.peer_time).saturating_sub(i128::from(self.own_time));
            Some(i64::try_from(offset).unwrap_or(if offset < 0 { i64::MIN } else { i64::MAX }))
        };
        Ok(Session::new(
            Sender::new(send_key, self.peer_max_message_len),
            Receiver::new(receive_key, self.config.max_message_len, self.config.role),
            peer_clock_offset,
        ))
    }

    fn write_inner<'o>(&mut self, out: &'o mut [u8]) -> Result<&'o [u8], Error> {
        match (self.state, self.config.role) {
            (HandshakeState::SendHello, role) => {
                let mut body = [0u8; SERVER_HELLO_LEN];
                // Once only: a retry after `BufferTooSmall` reuses the run (the seed is spent).
                if role == Role::Server && self.cpace.is_none() {
                    // The server's only public-key work before the caller proves anything: one
                    // hash-to-curve and one scalar multiplication (~50 µs on a desktop).
                    self.cpace = Some(self.start_cpace(cpace::Role::Initiator)?);
                }
                let len = self.hello_body(role, &mut body);
                let hello_kind = match role {
                    Role::Client => FrameKind::ClientHello,
                    Role::Server => FrameKind::ServerHello,
                };
                let frame = write_frame(hello_kind, body.get(..len).unwrap_or(&[]), out)?;
                self.transcript.update(frame);
                self.state = match role {
                    Role::Client => HandshakeState::AwaitHello,
                    // The server derives nothing before the client's ClientFinished arrives.
                    Role::Server => HandshakeState::AwaitShare,
                };
                Ok(frame)
            }
            (HandshakeState::SendFinished, role) => {
                let keys = self.keys.as_ref().ok_or(Error::OutOfOrderCall)?;
                let (confirm_key, kind) = match role {
                    Role::Client => (&keys.client_confirm, FrameKind::ClientFinished),
                    Role::Server => (&keys.server_confirm, FrameKind::ServerFinished),
                };
                let proof = hmac_sha256(confirm_key, &[&self.transcript_hash]);
                let frame = match role {
                    // One flight: the ClientShare frame, then the ClientFinished frame.
                    Role::Client => {
                        let flight =
                            out.get_mut(..CLIENT_FLIGHT_LEN)
                                .ok_or(Error::BufferTooSmall {
                                    required: CLIENT_FLIGHT_LEN,
                                })?;
                        let (share_out, finished_out) = flight.split_at_mut(SHARE_FRAME_LEN);
                        let share = self.own_share().ok_or(Error::OutOfOrderCall)?;
                        write_frame(FrameKind::ClientShare, &share, share_out)?;
                        write_frame(kind, &proof, finished_out)?;
                        &*flight
                    }
                    Role::Server => write_frame(kind, &proof, out)?,
                };
                self.state = match role {
                    Role::Client => HandshakeState::AwaitFinished,
                    Role::Server => HandshakeState::Established,
                };
                Ok(frame)
            }
            _ => Err(Error::OutOfOrderCall),
        }
    }

    fn read_inner(&mut self, frame: Frame<'_>) -> Result<(), Error> {
        let expected = match (self.state, self.config.role) {
            (HandshakeState::AwaitHello, Role::Client) => FrameKind::ServerHello,
            (HandshakeState::AwaitHello, Role::Server) => FrameKind::ClientHello,
            (HandshakeState::AwaitShare, Role::Server) => FrameKind::ClientShare,
            (HandshakeState::AwaitFinished, Role::Client) => FrameKind::ServerFinished,
            (HandshakeState::AwaitFinished, Role::Server) => FrameKind::ClientFinished,
            _ => return Err(Error::OutOfOrderCall),
        };
        if frame.kind == FrameKind::Alert {
            let from = match self.config.role {
                Role::Client => Role::Server,
                Role::Server => Role::Client,
            };
            // A client awaiting the ServerFinished has sent its ClientFinished (for a server the
            // flag does not matter: no alert from a client counts as a failed password).
            let proof_sent = self.state == HandshakeState::AwaitFinished;
            return Err(Alert::received(frame.body, from, proof_sent));
        }
        if frame.kind != expected {
            return Err(Error::UnexpectedMessage);
        }
        match expected {
            FrameKind::ClientHello | FrameKind::ServerHello => {
                self.read_hello(frame.body)?;
                self.transcript.update([expected as u8]);
                self.transcript.update(frame_length(frame.body)?);
                self.transcript.update(&*frame.body);
                self.state = match self.config.role {
                    // The transcript is hashed once the client's share joins it.
                    Role::Client => HandshakeState::DeriveKeys,
                    Role::Server => HandshakeState::SendHello,
                };
            }
            FrameKind::ClientShare => {
                let share: &[u8; SHARE_LEN] = (&*frame.body)
                    .try_into()
                    .map_err(|_| Error::UnexpectedMessage)?;
                self.peer_share = *share;
                self.transcript.update([expected as u8]);
                self.transcript.update(frame_length(frame.body)?);
                self.transcript.update(&*frame.body);
                self.finish_transcript();
                self.state = HandshakeState::AwaitFinished;
            }
            _ => {
                // A confirmation of the wrong length is malformed, not a wrong secret: nothing
                // was checked, so it is not reported (or counted) as a failed authentication.
                let proof: &[u8; FINISHED_LEN] = (&*frame.body)
                    .try_into()
                    .map_err(|_| Error::UnexpectedMessage)?;
                match self.config.role {
                    Role::Client => {
                        self.check_finished(proof)?;
                        self.state = HandshakeState::Established;
                    }
                    Role::Server => {
                        self.peer_finished = *proof;
                        self.state = HandshakeState::DeriveKeys;
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes this side's hello body and returns its length.
    fn hello_body(&self, role: Role, body: &mut [u8; SERVER_HELLO_LEN]) -> usize {
        let (magic, rest) = body.split_at_mut(PROTOCOL_MAGIC.len());
        magic.copy_from_slice(PROTOCOL_MAGIC);
        let (fixed, rest) = rest.split_at_mut(2);
        fixed.copy_from_slice(&[PROTOCOL_VERSION, self.config.secret.mode_byte()]);
        let (nonce, rest) = rest.split_at_mut(NONCE_LEN);
        nonce.copy_from_slice(&self.own_nonce);
        let (time, rest) = rest.split_at_mut(8);
        time.copy_from_slice(&self.own_time.to_be_bytes());
        let (max_message, rest) = rest.split_at_mut(4);
        let announced = u32::try_from(self.config.max_message_len).unwrap_or(u32::MAX);
        max_message.copy_from_slice(&announced.to_be_bytes());
        match role {
            Role::Client => CLIENT_HELLO_LEN,
            Role::Server => {
                if let Some(run) = &self.cpace {
                    rest.copy_from_slice(run.share());
                }
                SERVER_HELLO_LEN
            }
        }
    }

    fn read_hello(&mut self, body: &[u8]) -> Result<(), Error> {
        let Some((magic, rest)) = body.split_first_chunk::<7>() else {
            return Err(Error::NotAeschat);
        };
        if magic != PROTOCOL_MAGIC {
            return Err(Error::NotAeschat);
        }
        // The version comes before anything whose layout a later version might change, and is
        // matched exactly: no negotiation an attacker could steer to a weaker version.
        let Some((&version, rest)) = rest.split_first() else {
            return Err(Error::UnexpectedMessage);
        };
        if version != PROTOCOL_VERSION {
            return Err(Error::UnsupportedProtocol { version });
        }
        let expected_len = match self.config.role {
            Role::Client => SERVER_HELLO_LEN,
            Role::Server => CLIENT_HELLO_LEN,
        };
        if body.len() != expected_len {
            return Err(Error::UnexpectedMessage);
        }
        let Some((&mode, rest)) = rest.split_first() else {
            return Err(Error::UnexpectedMessage);
        };
        // Stops silent fallback: a password side never talks to a key-file side. A mode byte
        // that is neither is no mismatch of secrets but a malformed hello.
        if mode != Secret::PASSWORD_MODE && mode != Secret::KEY_MODE {
            return Err(Error::UnexpectedMessage);
        }
        if mode != self.config.secret.mode_byte() {
            return Err(Error::ModeMismatch);
        }
        let (nonce, rest) = rest
            .split_first_chunk::<NONCE_LEN>()
            .ok_or(Error::UnexpectedMessage)?;
        let (time, rest) = rest
            .split_first_chunk::<8>()
            .ok_or(Error::UnexpectedMessage)?;
        let (max_message, rest) = rest
            .split_first_chunk::<4>()
            .ok_or(Error::UnexpectedMessage)?;
        self.peer_nonce = *nonce;
        self.peer_time = u64::from_be_bytes(*time);
        self.peer_max_message_len =
            usize::try_from(u32::from_be_bytes(*max_message)).unwrap_or(usize::MAX);
        if self.config.role == Role::Client {
            let share = rest
                .first_chunk::<SHARE_LEN>()
                .ok_or(Error::UnexpectedMessage)?;
            self.peer_share = *share;
        }
        Ok(())
    }

    /// The client's own share (public), kept from its `Cpace` run for the flight that sends it.
    fn own_share(&self) -> Option<[u8; SHARE_LEN]> {
        self.own_share
    }

    /// Key confirmation: stops a side without the secret (wrong password, or an attacker) from
    /// reaching the chat. The MAC is compared in constant time.
    fn check_finished(&self, proof: &[u8; FINISHED_LEN]) -> Result<(), Error> {
        let keys = self.keys.as_ref().ok_or(Error::OutOfOrderCall)?;
        let peer_confirm = match self.config.role {
            Role::Client => &keys.server_confirm,
            Role::Server => &keys.client_confirm,
        };
        let expected = hmac_sha256(peer_confirm, &[&self.transcript_hash]);
        if !bool::from(expected.ct_eq(proof)) {
            return Err(Error::AuthenticationFailed);
        }
        Ok(())
    }

    fn finish_transcript(&mut self) {
        self.transcript_hash = self.transcript.clone().finalize().into();
    }
}

fn frame_length(body: &[u8]) -> Result<[u8; 4], Error> {
    u32::try_from(body.len())
        .map(u32::to_be_bytes)
        .map_err(|_| Error::UnexpectedMessage)
}
