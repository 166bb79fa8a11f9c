//! The byte transport a session runs over: `embedded-io`'s blocking traits themselves, so that a
//! board's UART or a HAL driver (which implement them already) plugs in with no glue, slices work
//! as in-memory streams, and std types come in through `embedded-io`'s `std` feature or the
//! `embedded-io-adapters` crate. A session needs separate halves (a reader and a writer) so
//! that two threads can each own one.
//!
//! ```
//! use aeschat_core::{read_frame, FrameKind, FrameReader};
//!
//! // A slice is a reader: here, one alert frame (Busy) and the end of the stream.
//! let mut stream: &[u8] = &[6, 0, 0, 0, 1, 5];
//! let mut frames = FrameReader::<64>::new();
//! let frame = read_frame(&mut stream, &mut frames).unwrap().unwrap();
//! assert_eq!(frame.kind, FrameKind::Alert);
//! assert!(read_frame(&mut stream, &mut frames).unwrap().is_none());
//! ```

pub use embedded_io::{Error as TransportError, ErrorKind, ErrorType, Read, Write};
