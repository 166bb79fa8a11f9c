//! The byte transport a session runs over: `embedded-io`'s blocking traits themselves, so that a
//! board's UART or a HAL driver (which implement them already) plugs in with no glue, slices work
//! as in-memory streams, and std types come in through `embedded-io`'s `std` feature or the
//! `embedded-io-adapters` crate. A session needs separate halves (a reader and a writer) so
//! that two threads can each own one.
//!
//! ```
//! use aeschat_core::session::{Inbox, Read};
//!
//! // A slice is a reader: here, one alert frame (Busy) and the end of the stream.
//! let mut stream: &[u8] = &[6, 0, 0, 0, 1, 5];
//! let mut inbox = Inbox::new([0u8; 64]);
//! let count = stream.read(inbox.unfilled()?)?;
//! inbox.filled(count);
//! assert_eq!(inbox.pending(), &[6, 0, 0, 0, 1, 5]);
//! assert_eq!(stream.read(inbox.unfilled()?)?, 0, "the end of the stream");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub use embedded_io::{Error as TransportError, ErrorKind, ErrorType, Read, Write};
