//! Proves that the core never touches the heap: a counting global allocator watches many cycles
//! of every token operation, on plaintexts of assorted sizes, and must see zero allocations.
//!
//! Only allocations made by the current thread while it is measuring are counted, so the test
//! harness (its output capture, other tests running in parallel) cannot disturb the count.

mod counting_allocator;

use std::fmt::Write;
use std::hint::black_box;

use counting_allocator::allocations_during;

use aeschat_core::fernet::{
    decrypt, decrypt_buffer_len, decrypt_in_place, encrypt, encrypt_to_string, token_len,
    verified_timestamp, Error, Iv, Key, Keyring, TimePolicy,
};

/// Plaintext lengths around the AES block, the base64 quantum and the core's internal chunks.
const SIZES: [usize; 26] = [
    0, 1, 2, 3, 15, 16, 17, 31, 32, 33, 100, 255, 256, 767, 768, 769, 1023, 1024, 1025, 1535, 1536,
    1537, 2048, 4095, 4096, 5000,
];
const MAX_PLAINTEXT: usize = 5000;
const TOKEN_CAPACITY: usize = token_len(MAX_PLAINTEXT);
const PLAINTEXT_CAPACITY: usize = decrypt_buffer_len(TOKEN_CAPACITY);
const ROUNDS: u8 = 12;

/// Text written into a fixed array through `core::fmt`, to format errors without a heap.
struct FixedText {
    bytes: [u8; 256],
    len: usize,
}

impl Write for FixedText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let dst = self.bytes.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// One cycle of every operation on one plaintext, checking each result.
fn cycle(round: u8, len: usize, plaintext: &[u8; MAX_PLAINTEXT]) {
    let seed = round.wrapping_mul(37).wrapping_add(len as u8);
    let key = Key::from_bytes([seed; 32]);
    let other = Key::from_bytes([seed.wrapping_add(1); 32]);
    let iv = Iv::from_bytes([round ^ (len as u8); 16]);
    let now = 1_700_000_000 + u64::from(round) * 1000 + len as u64;
    let message = &plaintext[..len];
    let policy = TimePolicy::MaxAge { ttl: 60, now };

    // Keys as text and back.
    let text = key.to_text();
    assert_eq!(Key::parse(text.as_bytes()), Ok(key.clone()));

    // Encrypt, both ways.
    let mut token_buffer = [0u8; TOKEN_CAPACITY];
    let token = encrypt(&key, message, now, &iv, &mut token_buffer).unwrap();
    let string = encrypt_to_string::<TOKEN_CAPACITY>(&key, message, now, &iv).unwrap();
    assert_eq!(string.as_str(), token);
    let text_len = token.len();

    // Decrypt, verify the timestamp, decrypt in place.
    let mut out = [0u8; PLAINTEXT_CAPACITY];
    assert_eq!(
        decrypt(&key, string.as_bytes(), policy, &mut out),
        Ok(message)
    );
    assert_eq!(verified_timestamp(&key, string.as_bytes()), Ok(now));
    let in_place = &mut token_buffer[..text_len];
    assert_eq!(decrypt_in_place(&key, in_place, policy), Ok(message));

    // Key rotation: the old key is second in the ring.
    let older = [other.clone(), key.clone()];
    let new = Key::from_bytes([seed.wrapping_add(2); 32]);
    let ring = Keyring::new(&new, &older);
    assert_eq!(
        ring.decrypt(string.as_bytes(), policy, &mut out),
        Ok(message)
    );
    let mut scratch = [0u8; PLAINTEXT_CAPACITY];
    let mut rotated = [0u8; TOKEN_CAPACITY];
    let rotated = ring
        .rotate(string.as_bytes(), &iv, &mut scratch, &mut rotated)
        .unwrap();
    assert_eq!(verified_timestamp(&new, rotated.as_bytes()), Ok(now));

    // Failures: wrong key, expiry, the future, small buffers, garbage, and their messages.
    let wrong = decrypt(&other, string.as_bytes(), policy, &mut out);
    assert_eq!(wrong, Err(Error::InvalidToken));
    let late = TimePolicy::MaxAge {
        ttl: 60,
        now: now + 61,
    };
    assert_eq!(
        decrypt(&key, string.as_bytes(), late, &mut out),
        Err(Error::Expired)
    );
    let early = TimePolicy::MaxAge {
        ttl: 60,
        now: now - 61,
    };
    assert_eq!(
        decrypt(&key, string.as_bytes(), early, &mut out),
        Err(Error::FromTheFuture)
    );
    let mut small = [0u8; 15];
    let required = token_len(len);
    assert_eq!(
        encrypt(&key, message, now, &iv, &mut small),
        Err(Error::BufferTooSmall { required })
    );
    let too_small = decrypt(&key, string.as_bytes(), policy, &mut small);
    assert!(matches!(too_small, Err(Error::BufferTooSmall { .. })));
    let garbage = &plaintext[..len.min(200)];
    assert!(decrypt(&key, garbage, TimePolicy::Unchecked, &mut out).is_err());
    assert!(Key::parse(garbage).is_err());
    let mut message_text = FixedText {
        bytes: [0; 256],
        len: 0,
    };
    write!(message_text, "{}", Error::BufferTooSmall { required }).unwrap();
    assert!(message_text.len > 0);
}

#[test]
fn token_operations_allocate_nothing() {
    let plaintext: [u8; MAX_PLAINTEXT] = std::array::from_fn(|i| (i * 131 % 251) as u8);
    let mut cycles = 0usize;
    let ((), allocations) = allocations_during(|| {
        for round in 0..ROUNDS {
            for len in SIZES {
                cycle(round, len, black_box(&plaintext));
                cycles += 1;
            }
        }
    });
    assert_eq!(cycles, usize::from(ROUNDS) * SIZES.len());
    assert_eq!(
        allocations, 0,
        "{allocations} heap allocations in {cycles} cycles"
    );
}

#[test]
fn operating_system_randomness_allocates_nothing() {
    let ((), allocations) = allocations_during(|| {
        for _ in 0..100 {
            let key = Key::generate().unwrap();
            let iv = Iv::random().unwrap();
            let mut token = [0u8; token_len(5)];
            let token = encrypt(&key, b"hello", 0, &iv, &mut token).unwrap();
            black_box(token);
        }
    });
    assert_eq!(allocations, 0);
}

/// The counter works: without this, a broken allocator hook would make the tests above pass.
#[test]
fn the_counter_sees_heap_allocations() {
    let ((), allocations) = allocations_during(|| {
        black_box(Box::new(black_box(7u64)));
        let mut growing: Vec<u8> = Vec::with_capacity(1);
        growing.extend_from_slice(black_box(&[1, 2, 3, 4]));
        black_box(growing);
    });
    // The box, the vector, and the vector growing.
    assert_eq!(allocations, 3);
    // Not measuring: nothing is counted.
    black_box(Box::new(black_box(8u64)));
    assert_eq!(allocations_during(|| {}).1, 0);
}
