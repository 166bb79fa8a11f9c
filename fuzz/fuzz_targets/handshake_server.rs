//! The server side of the handshake, fed arbitrary client messages at each state: substitutes
//! for the genuine client's hello or finished (mutated, well-formed frames of any kind, raw
//! bytes), or calls in any order with arbitrary frames. See `src/handshake.rs` for the checks.
#![no_main]

use aeschat_core::session::Role;
use aeschat_fuzz::handshake::{run, HandshakeInput};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: HandshakeInput| run(Role::Server, &input));
