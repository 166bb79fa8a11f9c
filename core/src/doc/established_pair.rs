// Shared by the documentation's examples (pulled in with `include!`): two engines, client and
// server, taken through the handshake in memory, and a generator for their nonces and IVs.
use aeschat_core::rand_core::{Infallible, TryCryptoRng, TryRng};

/// The operating system's generator (a board hands the engine its TRNG instead).
struct Os;

impl TryRng for Os {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        aeschat_core::rand_core::utils::next_word_via_fill(self)
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        aeschat_core::rand_core::utils::next_word_via_fill(self)
    }
    fn try_fill_bytes(&mut self, out: &mut [u8]) -> Result<(), Infallible> {
        getrandom::fill(out).expect("the operating system's generator failed");
        Ok(())
    }
}

impl TryCryptoRng for Os {}

/// A client and a server engine that have completed their handshake with each other.
fn established_pair() -> (
    aeschat_core::session::Engine<'static>,
    aeschat_core::session::Engine<'static>,
) {
    use aeschat_core::fernet::Key;
    use aeschat_core::session::{Action, Config, Engine, Role, Secret};
    static KEY: Key = Key::from_bytes([7; 32]);
    let config = |role| Config::new(role, Secret::PreSharedKey(&KEY));
    let mut client = Engine::new(config(Role::Client), &mut Os, None);
    let mut server = Engine::new(config(Role::Server), &mut Os, None);
    let (mut to_server, mut to_client) = (Vec::new(), Vec::new());
    while !(client.is_established() && server.is_established()) {
        pump(&mut client, &mut to_client, &mut to_server);
        pump(&mut server, &mut to_server, &mut to_client);
    }
    (client, server)
}

/// One poll of `engine` on `input`, whose transmitted bytes go to `output`.
fn pump(engine: &mut aeschat_core::session::Engine<'_>, input: &mut Vec<u8>, output: &mut Vec<u8>) {
    use aeschat_core::session::Action;
    let step = engine.poll(input);
    let discard = step.discard;
    match step.action {
        Action::Transmit(bytes) => output.extend_from_slice(bytes),
        Action::DeriveKeys => engine.derive_keys(),
        Action::Established | Action::NeedInput => {}
        other => panic!("{other:?}"),
    }
    input.drain(..discard);
}
