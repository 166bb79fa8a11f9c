//! Test-only helpers for aeschat, shared by the integration tests, the fuzz targets and the
//! benches: deterministic generators ([`TestRng`], [`Replay`]) and [`Pair`], the one in-memory
//! client/server pair with fault injection.
//!
//! **Nothing here is for production.** The generators are predictable on purpose.
//!
//! ```
//! use aeschat_core::fernet::Key;
//! use aeschat_core::session::{Config, Error, Role, Secret};
//! use aeschat_testkit::{Got, Pair, Side};
//!
//! let key = Key::from_bytes([7; 32]);
//! let config = |role| Config::new(role, Secret::PreSharedKey(&key));
//! // Fresh engines with nonces from seeded TestRngs; every byte delivered in pieces of 3;
//! // the middle drops nothing and changes nothing.
//! let mut pair = Pair::from_configs(config(Role::Client), config(Role::Server), 42)
//!     .with_fragments(3)
//!     .with_middle(|_from, _bytes| {});
//! pair.run(); // the handshake
//! pair.send_text(Side::Server, b"welcome")?;
//! pair.run();
//! assert_eq!(pair.take_received(Side::Client), [Got::Text(b"welcome".to_vec())]);
//!
//! let outcome = pair.finish();
//! assert_eq!((outcome.client, outcome.server), (Ok(()), Ok(())));
//! let ((_client_tx, _client_rx), (_server_tx, _server_rx)) = outcome.halves();
//! # Ok::<(), Error>(())
//! ```

mod pair;
mod rng;

pub use pair::{AdmitAll, Got, Halves, NoMiddle, Outcome, Pair, Side};
pub use rng::{Replay, TestRng};
