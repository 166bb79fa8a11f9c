//! The relay framing (`aeschat_core::relay`) from arbitrary bytes, as a relay reads a hello and
//! a client reads an answer.
//!
//! Checks: no panic; whatever parses writes back exactly the 14 bytes it came from (so two
//! different byte strings never mean the same message); parsing looks at nothing past the
//! message; a wrong magic is always `NotRelay` and `could_be_message` agrees with it byte by
//! byte; room numbers are never 0 or above `MAX_ROOM`.
#![no_main]

use aeschat_core::relay::{
    could_be_message, Answer, Hello, RelayError, MAX_ROOM, RELAY_MAGIC, RELAY_MESSAGE_LEN,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let message = data.get(..RELAY_MESSAGE_LEN);
    let magic_ok = data.len() >= RELAY_MAGIC.len() && data[..RELAY_MAGIC.len()] == RELAY_MAGIC;
    match Hello::parse(data) {
        Ok(hello) => {
            assert_eq!(Some(&hello.to_bytes()[..]), message);
            if let Hello::Join { room } = hello {
                assert!((1..=MAX_ROOM).contains(&room));
            }
        }
        Err(RelayError::Short) => assert!(data.len() < RELAY_MESSAGE_LEN),
        Err(RelayError::NotRelay) => assert!(!magic_ok),
        Err(_) => assert!(magic_ok),
    }
    match Answer::parse(data) {
        Ok(answer) => {
            assert_eq!(Some(&answer.to_bytes()[..]), message);
            if let Answer::Waiting { room }
            | Answer::PairedAsServer { room }
            | Answer::PairedAsClient { room } = answer
            {
                assert!((1..=MAX_ROOM).contains(&room));
            }
        }
        Err(RelayError::Short) => assert!(data.len() < RELAY_MESSAGE_LEN),
        Err(RelayError::NotRelay) => assert!(!magic_ok),
        Err(_) => assert!(magic_ok),
    }
    // Byte by byte, the prefix check says "could still be a message" exactly while the magic
    // matches so far.
    for end in 0..=data.len().min(RELAY_MESSAGE_LEN) {
        let prefix = &data[..end];
        let agrees = prefix
            .iter()
            .zip(RELAY_MAGIC.iter())
            .all(|(got, want)| got == want);
        assert_eq!(could_be_message(prefix), agrees);
    }
});
