//! A workload for profilers: encrypts or decrypts one plaintext size many times with aeschat
//! (fixed IV and time, so only the core runs), or with the `fernet` crate for comparison.
//!
//! ```text
//! cargo build --release --example profile
//! valgrind --tool=callgrind ../target/bench/release/examples/profile encrypt 16 20000
//! ```
//!
//! Arguments: `encrypt|decrypt`, the plaintext length, the repetitions, and optionally `fernet`.

use std::hint::black_box;

use aeschat_bench::{key, plaintext, KEY_TEXT};
use aeschat_core::fernet::{decrypt, decrypt_buffer_len, encrypt, token_len, Iv, TimePolicy};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: profile encrypt|decrypt LENGTH REPETITIONS [fernet]";
    let direction = args.get(1).expect(usage).as_str();
    let len: usize = args.get(2).and_then(|s| s.parse().ok()).expect(usage);
    let repetitions: usize = args.get(3).and_then(|s| s.parse().ok()).expect(usage);
    let peer = args.get(4).is_some_and(|s| s == "fernet");

    let key = key();
    let input = plaintext(len);
    let iv = Iv::from_bytes([7; 16]);
    let mut out = vec![0u8; token_len(len)];
    let token = encrypt(&key, &input, 1_700_000_000, &iv, &mut out)
        .expect("the buffer fits")
        .to_owned();
    let mut plain = vec![0u8; decrypt_buffer_len(token.len())];
    let fernet = fernet::Fernet::new(KEY_TEXT).expect("the key is valid");

    let mut total = 0usize;
    for _ in 0..repetitions {
        total += match (direction, peer) {
            ("encrypt", false) => encrypt(&key, black_box(&input), 1_700_000_000, &iv, &mut out)
                .expect("the buffer fits")
                .len(),
            ("decrypt", false) => decrypt(
                &key,
                black_box(token.as_bytes()),
                TimePolicy::Unchecked,
                &mut plain,
            )
            .expect("the token is valid")
            .len(),
            ("encrypt", true) => fernet.encrypt(black_box(&input)).len(),
            ("decrypt", true) => fernet.decrypt(black_box(&token)).expect("valid").len(),
            _ => panic!("{usage}"),
        };
    }
    println!("{total}");
}
