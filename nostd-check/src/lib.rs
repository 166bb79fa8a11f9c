//! Proof that `aeschat-core` needs neither `std` nor `alloc`.
//!
//! This crate is `#![no_std]`, defines its own panic handler, defines no global allocator, and is
//! built as a `staticlib` with `panic = "abort"`. A static library is a final artifact, so the
//! compiler must resolve every lang item here: if anything in the dependency tree linked `std`,
//! its `panic_impl` would clash with the one below; if anything linked `alloc`, the build would
//! stop for want of a global allocator. The canary features link each on purpose (see
//! `run.sh`), which shows that the check can fail.
//!
//! Each exported function exercises one area of the core's public API with real inputs, so the
//! optimiser cannot discard it, and checks the results. It returns 0 on success or the number of
//! the first failed step, so `driver.c` can run the library and say where it went wrong.
//!
//! To cover a new area of the core (the session protocol, say), add one function in the same
//! shape: a private `fn area(..) -> Result<(), i32>` that numbers its steps, and an exported
//! `aeschat_nostd_area` wrapper that calls `status(area(..))`; then call it from `driver.c`.
#![no_std]
// `#[no_mangle]` counts as unsafe code; it is allowed on the exported wrappers one by one.
#![deny(unsafe_code)]
#![deny(missing_docs)]

use aeschat_core::fernet::{
    decrypt, decrypt_buffer_len, decrypt_in_place, encrypt, encrypt_to_string, token_len,
    verified_timestamp, Error, Iv, Key, Keyring, TimePolicy,
};
use aeschat_core::rand_core::{CryptoRng, Infallible, TryCryptoRng, TryRng};
use aeschat_core::session;
use aeschat_core::session::{
    frame_capacity, record_frame_len, Action, Config, Engine, Inbox, Incoming, Role, Secret,
};
use core::fmt::Write;

/// The longest plaintext the checks encrypt; long enough to cross the core's internal chunks.
const MAX_PLAINTEXT: usize = 1600;
const TOKEN_CAPACITY: usize = token_len(MAX_PLAINTEXT);
const PLAINTEXT_CAPACITY: usize = decrypt_buffer_len(TOKEN_CAPACITY);

/// Halts on a panic. The core promises never to panic, so this only has to exist.
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {
        core::hint::spin_loop();
    }
}

/// Keys: parsing, writing as text, and the errors for malformed text.
#[allow(unsafe_code)]
#[no_mangle]
pub extern "C" fn aeschat_nostd_keys(seed: u8) -> i32 {
    status(keys(seed))
}

/// Tokens: encrypt (into a slice and into a fixed-capacity string), decrypt, decrypt in place,
/// the verified timestamp, and the time policy, for a plaintext of `seed % 1601` bytes.
#[allow(unsafe_code)]
#[no_mangle]
pub extern "C" fn aeschat_nostd_tokens(seed: u16, now: u64) -> i32 {
    status(tokens(seed, now))
}

/// Key rotation: decrypting with an older key of a keyring, and re-encrypting under the primary.
#[allow(unsafe_code)]
#[no_mangle]
pub extern "C" fn aeschat_nostd_keyring(seed: u8, now: u64) -> i32 {
    status(keyring(seed, now))
}

/// The session protocol: two protocol engines, a client and a server, pumped in one thread
/// through caller-owned inboxes as a board's superloop would (the handshake and its key
/// derivation, text records both ways, one side split into halves, the authenticated close),
/// and a stranger told off with an alert. `password` selects a password rather than a
/// pre-shared key; nonces and IVs come from a TRNG-like generator seeded with
/// `seed`.
#[allow(unsafe_code)]
#[no_mangle]
pub extern "C" fn aeschat_nostd_session(seed: u8, password: bool) -> i32 {
    let mut trng = Trng::new(seed);
    status(session(&mut trng, seed, password))
}

/// Errors: every message is written without a heap, through `core::fmt`.
#[allow(unsafe_code)]
#[no_mangle]
pub extern "C" fn aeschat_nostd_errors() -> i32 {
    status(errors())
}

/// Randomness from the operating system (`getrandom` feature): a new key and IV, round-tripped.
#[cfg(feature = "getrandom")]
#[allow(unsafe_code)]
#[no_mangle]
pub extern "C" fn aeschat_nostd_random(now: u64) -> i32 {
    status(random(now))
}

/// Calls into the canary dependency, which links `std` or `alloc`: this build must fail.
#[cfg(any(feature = "canary-std", feature = "canary-alloc"))]
#[allow(unsafe_code)]
#[no_mangle]
pub extern "C" fn aeschat_nostd_canary(seed: u8) -> usize {
    aeschat_nostd_canary::touch(seed)
}

fn status(result: Result<(), i32>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(step) => step,
    }
}

/// Fails with `step` unless `ok`.
fn ensure(ok: bool, step: i32) -> Result<(), i32> {
    if ok {
        Ok(())
    } else {
        Err(step)
    }
}

fn key_bytes(seed: u8) -> [u8; 32] {
    core::array::from_fn(|i| seed.wrapping_mul(31).wrapping_add(i as u8))
}

fn plaintext(seed: u8) -> [u8; MAX_PLAINTEXT] {
    core::array::from_fn(|i| seed ^ (i as u8))
}

fn keys(seed: u8) -> Result<(), i32> {
    let key = Key::from_bytes(key_bytes(seed));
    let text = key.to_text();
    ensure(text.as_str().len() == 44, 1)?;
    ensure(Key::parse(text.as_bytes()) == Ok(key.clone()), 2)?;
    let short = text.as_bytes().get(..43).ok_or(3)?;
    ensure(Key::parse(short).err() == Some(Error::KeyLength), 4)?;
    let mut bad = [0u8; 44];
    bad.copy_from_slice(text.as_bytes());
    bad[0] = b'+';
    ensure(Key::parse(&bad).err() == Some(Error::KeyEncoding), 5)
}

fn tokens(seed: u16, now: u64) -> Result<(), i32> {
    let byte = seed as u8;
    let len = usize::from(seed) % (MAX_PLAINTEXT + 1);
    let key = Key::from_bytes(key_bytes(byte));
    let iv = Iv::from_bytes([byte ^ 0x5a; 16]);
    let source = plaintext(byte);
    let message = source.get(..len).ok_or(1)?;

    let mut buffer = [0u8; TOKEN_CAPACITY];
    let token = encrypt(&key, message, now, &iv, &mut buffer).map_err(|_| 2)?;
    ensure(token.len() == token_len(len), 3)?;
    let string = encrypt_to_string::<TOKEN_CAPACITY>(&key, message, now, &iv).map_err(|_| 4)?;
    ensure(string.as_str() == token, 5)?;
    let token_len = token.len();

    let policy = TimePolicy::MaxAge { ttl: 60, now };
    let mut out = [0u8; PLAINTEXT_CAPACITY];
    let decrypted = decrypt(&key, string.as_bytes(), policy, &mut out).map_err(|_| 6)?;
    ensure(decrypted == message, 7)?;
    ensure(verified_timestamp(&key, string.as_bytes()) == Ok(now), 8)?;

    let late = TimePolicy::MaxAge {
        ttl: 0,
        now: now.wrapping_add(1),
    };
    let expired = decrypt(&key, string.as_bytes(), late, &mut out);
    ensure(now == u64::MAX || expired == Err(Error::Expired), 9)?;
    let wrong_key = Key::from_bytes(key_bytes(byte.wrapping_add(1)));
    let forged = decrypt(&wrong_key, string.as_bytes(), policy, &mut out);
    ensure(forged == Err(Error::InvalidToken), 10)?;

    let in_place = buffer.get_mut(..token_len).ok_or(11)?;
    let decrypted = decrypt_in_place(&key, in_place, policy).map_err(|_| 12)?;
    ensure(decrypted == message, 13)
}

fn keyring(seed: u8, now: u64) -> Result<(), i32> {
    let old = Key::from_bytes(key_bytes(seed));
    let new = Key::from_bytes(key_bytes(seed.wrapping_add(1)));
    let stranger = Key::from_bytes(key_bytes(seed.wrapping_add(2)));
    let source = plaintext(seed);
    let message = source.get(..usize::from(seed)).ok_or(1)?;

    let mut buffer = [0u8; TOKEN_CAPACITY];
    let token = encrypt(&old, message, now, &Iv::from_bytes([seed; 16]), &mut buffer);
    let token = token.map_err(|_| 2)?;

    let older = [stranger.clone(), old];
    let ring = Keyring::new(&new, &older);
    let mut out = [0u8; PLAINTEXT_CAPACITY];
    let decrypted = ring.decrypt(token.as_bytes(), TimePolicy::Unchecked, &mut out);
    ensure(decrypted == Ok(message), 3)?;

    let mut scratch = [0u8; PLAINTEXT_CAPACITY];
    let mut rotated = [0u8; TOKEN_CAPACITY];
    let iv = Iv::from_bytes([!seed; 16]);
    let rotated = ring
        .rotate(token.as_bytes(), &iv, &mut scratch, &mut rotated)
        .map_err(|_| 4)?;
    ensure(verified_timestamp(&new, rotated.as_bytes()) == Ok(now), 5)?;
    ensure(
        verified_timestamp(&older[1], rotated.as_bytes()).is_err(),
        6,
    )?;

    let none = [stranger];
    let outsider =
        Keyring::new(&new, &none).decrypt(token.as_bytes(), TimePolicy::Unchecked, &mut out);
    ensure(outsider == Err(Error::InvalidToken), 7)
}

/// A fixed buffer that `core::fmt` writes into.
struct Text {
    bytes: [u8; 256],
    len: usize,
}

impl Write for Text {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(core::fmt::Error)?;
        let dst = self.bytes.get_mut(self.len..end).ok_or(core::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

fn errors() -> Result<(), i32> {
    let all = [
        Error::KeyLength,
        Error::KeyEncoding,
        Error::TokenEncoding,
        Error::TokenLength,
        Error::UnsupportedVersion,
        Error::Expired,
        Error::FromTheFuture,
        Error::InvalidToken,
        Error::BufferTooSmall { required: 100 },
        Error::MessageTooLong { max: 100 },
        Error::Randomness,
    ];
    for (step, error) in (1..).zip(all) {
        let mut text = Text {
            bytes: [0; 256],
            len: 0,
        };
        write!(text, "{error}").map_err(|_| step)?;
        ensure(
            text.len > 20 && text.bytes.get(text.len - 1) == Some(&b'.'),
            step,
        )?;
    }
    Ok(())
}

#[cfg(feature = "getrandom")]
fn random(now: u64) -> Result<(), i32> {
    let key = Key::generate().map_err(|_| 1)?;
    let iv = Iv::random().map_err(|_| 2)?;
    ensure(key != Key::generate().map_err(|_| 3)?, 4)?;
    let mut buffer = [0u8; token_len(5)];
    let token = encrypt(&key, b"hello", now, &iv, &mut buffer).map_err(|_| 5)?;
    let mut out = [0u8; decrypt_buffer_len(token_len(5))];
    let decrypted = decrypt(&key, token.as_bytes(), TimePolicy::Unchecked, &mut out);
    ensure(decrypted == Ok(b"hello".as_slice()), 6)
}

/// A board's true random number generator as its HAL hands it over: a `CryptoRng` the engine
/// draws handshake nonces and record IVs from. (Here a SplitMix64 stream stands in for the
/// peripheral; a real one reads its data register.)
struct Trng {
    state: u64,
}

impl Trng {
    fn new(seed: u8) -> Trng {
        Trng {
            state: u64::from(seed) ^ 0x9e37_79b9_7f4a_7c15,
        }
    }
}

impl TryRng for Trng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        self.try_next_u64().map(|word| word as u32)
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Ok(z ^ (z >> 31))
    }

    fn try_fill_bytes(&mut self, out: &mut [u8]) -> Result<(), Infallible> {
        for chunk in out.chunks_mut(8) {
            let word = self.try_next_u64()?.to_le_bytes();
            chunk.copy_from_slice(word.get(..chunk.len()).unwrap_or_default());
        }
        Ok(())
    }
}

impl TryCryptoRng for Trng {}

/// The longest message the session check sends: a small board's limit.
const SESSION_MESSAGE: usize = 256;
/// One side's receive buffer: the longest frame it accepts.
const SESSION_FRAME: usize = frame_capacity(SESSION_MESSAGE);

/// Bytes a side transmits, arriving in the other side's inbox (the wire is perfect here).
fn deliver(bytes: &[u8], to: &mut Inbox<[u8; SESSION_FRAME]>, step: i32) -> Result<(), i32> {
    let space = to.unfilled().map_err(|_| step)?;
    space
        .get_mut(..bytes.len())
        .ok_or(step)?
        .copy_from_slice(bytes);
    to.filled(bytes.len());
    Ok(())
}

/// One poll of `engine` on its inbox, as a superloop runs it: transmitted bytes go to the
/// peer's inbox, the key derivation runs in one call. Returns true once this side is
/// established.
fn pump(
    engine: &mut Engine<'_>,
    inbox: &mut Inbox<[u8; SESSION_FRAME]>,
    peer: &mut Inbox<[u8; SESSION_FRAME]>,
    step: i32,
) -> Result<bool, i32> {
    match engine.poll_inbox(inbox) {
        Action::Transmit(bytes) => deliver(bytes, peer, step)?,
        Action::DeriveKeys => engine.derive_keys(),
        Action::NeedInput => {}
        Action::Established => return Ok(true),
        Action::Text(_) | Action::Closed | Action::Failed(_) => return Err(step),
    }
    Ok(false)
}

fn session<R: CryptoRng>(rng: &mut R, seed: u8, password: bool) -> Result<(), i32> {
    let key = Key::from_bytes(key_bytes(seed));
    let secret = if password {
        Secret::Password(b"correct horse battery staple")
    } else {
        Secret::PreSharedKey(&key)
    };
    let config = |role| Config::new(role, secret).with_max_message_len(SESSION_MESSAGE);
    let mut client = Engine::new(config(Role::Client), rng, None);
    let mut server = Engine::new(config(Role::Server), rng, Some(1_700_000_000));
    ensure(client.input_capacity() == SESSION_FRAME, 1)?;
    let mut to_client = Inbox::new([0u8; SESSION_FRAME]);
    let mut to_server = Inbox::new([0u8; SESSION_FRAME]);

    // The handshake: both sides polled in turn until each has said Established.
    let (mut client_done, mut server_done) = (false, false);
    for _ in 0..64 {
        if !client_done {
            client_done = pump(&mut client, &mut to_client, &mut to_server, 2)?;
        }
        if !server_done {
            server_done = pump(&mut server, &mut to_server, &mut to_client, 3)?;
        }
        if client_done && server_done {
            break;
        }
    }
    ensure(client_done && server_done, 4)?;
    ensure(client.peer_clock_offset().is_none(), 5)?;

    // Records both ways: the client stays one engine, the server splits into halves.
    let (mut server_sender, mut server_receiver) = server.split().map_err(|_| 6)?;
    let mut wire = [0u8; record_frame_len(SESSION_MESSAGE)];
    let text = plaintext(seed);
    for len in [0, 1, 15, 16, SESSION_MESSAGE] {
        let message = text.get(..len).ok_or(7)?;
        let sender = client.sender().ok_or(8)?;
        let record = sender
            .seal_text(message, rng, None, &mut wire)
            .map_err(|_| 9)?;
        deliver(record, &mut to_server, 10)?;
        let opened = server_receiver.poll_inbox(&mut to_server);
        ensure(opened == Ok(Some(Incoming::Text(message))), 11)?;

        let record = server_sender
            .seal_text(message, rng, Some(1_700_000_000), &mut wire)
            .map_err(|_| 12)?;
        deliver(record, &mut to_client, 13)?;
        ensure(
            client.poll_inbox(&mut to_client) == Action::Text(message),
            14,
        )?;
    }
    ensure(client.poll_inbox(&mut to_client) == Action::NeedInput, 15)?;
    let too_long = text.get(..=SESSION_MESSAGE).ok_or(16)?;
    let sender = client.sender().ok_or(17)?;
    let refused = sender.seal_text(too_long, rng, None, &mut wire);
    let limit = session::Error::MessageTooLong {
        max: SESSION_MESSAGE,
    };
    ensure(refused.err() == Some(limit), 18)?;

    // The authenticated close, each way.
    let close = sender.seal_close(rng, None, &mut wire).map_err(|_| 19)?;
    deliver(close, &mut to_server, 20)?;
    ensure(
        server_receiver.poll_inbox(&mut to_server) == Ok(Some(Incoming::Closed)),
        21,
    )?;
    let close = server_sender
        .seal_close(rng, None, &mut wire)
        .map_err(|_| 22)?;
    deliver(close, &mut to_client, 23)?;
    ensure(client.poll_inbox(&mut to_client) == Action::Closed, 24)?;
    ensure(client.end_of_stream() == session::Error::SessionEnded, 25)?;

    // A stranger (a web browser) reaches a server: told so with an alert, then it stops.
    let mut stranger = Engine::new(config(Role::Server), rng, None);
    let mut inbox = Inbox::new([0u8; SESSION_FRAME]);
    deliver(b"GET / HTTP/1.1\r\n", &mut inbox, 26)?;
    let alert = stranger.poll_inbox(&mut inbox);
    ensure(alert == Action::Transmit(&[6, 0, 0, 0, 1, 6]), 27)?;
    let failed = stranger.poll_inbox(&mut inbox);
    ensure(failed == Action::Failed(session::Error::NotAeschat), 28)
}

/// CPace (`aeschat_core::cpace`): both roles of one run, with scalars from a generator seeded by
/// `seed`; the same ISK on both sides, a different one under another password, and the
/// reflected, identity and non-canonical shares refused.
#[allow(unsafe_code)]
#[no_mangle]
pub extern "C" fn aeschat_nostd_cpace(seed: u8) -> i32 {
    status(cpace(seed))
}

/// A deterministic stand-in for a board's hardware generator (not a secure one): a counter
/// spread over the bytes.
struct CountingRng(u64);

impl rand_core::TryRng for CountingRng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        self.0 = self.0.wrapping_add(1);
        Ok(self.0 as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.0 = self.0.wrapping_add(1);
        Ok(self.0)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for (i, byte) in dst.iter_mut().enumerate() {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(i as u64 | 1);
            *byte = (self.0 >> 33) as u8;
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for CountingRng {}

fn cpace(seed: u8) -> Result<(), i32> {
    use aeschat_core::cpace::{Cpace, Error as CpaceError, Role};

    let mut rng = CountingRng(u64::from(seed));
    let prs = key_bytes(seed);
    let sid = [seed; 64];
    let start = |role, prs: &[u8], rng: &mut CountingRng| {
        Cpace::new(role, prs, b"aeschat/2", &sid, rng).map_err(|_| 1)
    };
    let a = start(Role::Initiator, &prs, &mut rng)?;
    let b = start(Role::Responder, &prs, &mut rng)?;
    let (ya, yb) = (*a.share(), *b.share());
    let isk_a = a.finish(b"", &yb, b"").map_err(|_| 2)?;
    let isk_b = b.finish(b"", &ya, b"").map_err(|_| 3)?;
    ensure(isk_a.as_bytes() == isk_b.as_bytes(), 4)?;

    let wrong = start(Role::Responder, b"another password", &mut rng)?;
    let isk_wrong = wrong.finish(b"", &ya, b"").map_err(|_| 5)?;
    ensure(isk_wrong.as_bytes() != isk_a.as_bytes(), 6)?;

    let mut non_canonical = [0xff; 32];
    non_canonical[31] = 0x7f;
    // `None` stands for the side's own share, sent back.
    for (share, expected, step) in [
        (None, CpaceError::ReflectedShare, 7),
        (Some([0; 32]), CpaceError::IdentityShare, 8),
        (Some(non_canonical), CpaceError::InvalidShare, 9),
    ] {
        let a = start(Role::Initiator, &prs, &mut rng)?;
        let share = share.unwrap_or(*a.share());
        ensure(a.finish(b"", &share, b"").err() == Some(expected), step)?;
    }
    Ok(())
}
