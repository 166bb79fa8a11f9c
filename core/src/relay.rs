//! The relay framing: the few fixed-size messages a client and an `aeschat relay` exchange
//! before the relay starts forwarding the normal aeschat protocol, byte for byte, between the
//! two clients of a room. The aeschat repository's `docs/RELAY.md` describes it for people;
//! this module is the parser.
//!
//! Every message is [`RELAY_MESSAGE_LEN`] bytes: the magic [`RELAY_MAGIC`], the version
//! [`RELAY_VERSION`], one byte saying what the message is, and a 32-bit big-endian number.
//! Parsing is total: any 14 bytes give either a message or a [`RelayError`], never a panic.
//!
//! ```
//! use aeschat_core::relay::{Answer, Hello, RELAY_MESSAGE_LEN};
//!
//! let hello = Hello::Join { room: 17 }.to_bytes();
//! assert_eq!(Hello::parse(&hello), Ok(Hello::Join { room: 17 }));
//! let answer: [u8; RELAY_MESSAGE_LEN] = Answer::PairedAsClient { room: 17 }.to_bytes();
//! assert_eq!(Answer::parse(&answer), Ok(Answer::PairedAsClient { room: 17 }));
//! ```

use core::fmt;

/// The first bytes of every relay message, in both directions.
pub const RELAY_MAGIC: [u8; 8] = *b"aeschRLY";

/// The version of the relay framing this module speaks.
pub const RELAY_VERSION: u8 = 1;

/// The length of every relay message: magic, version, kind, a 32-bit number.
pub const RELAY_MESSAGE_LEN: usize = RELAY_MAGIC.len() + 1 + 1 + 4;

/// The highest room number a relay hands out or a client may ask to join: six digits at most,
/// so a code stays short to read aloud.
pub const MAX_ROOM: u32 = 999_999;

/// What a client sends first, once.
///
/// ```
/// use aeschat_core::relay::Hello;
/// let hello = Hello::Join { room: 417 };
/// assert_eq!(Hello::parse(&hello.to_bytes()), Ok(hello));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Hello {
    /// Open a new room: the relay picks its number and answers [`Answer::Waiting`]. The client
    /// that opens a room takes the protocol's server role.
    Open,
    /// Join the room with this number, opened by someone else. The client that joins takes the
    /// protocol's client role.
    Join {
        /// The room's number, 1 to [`MAX_ROOM`].
        room: u32,
    },
}

/// What a relay answers. After [`Answer::PairedAsServer`] or [`Answer::PairedAsClient`] every
/// further byte is the other client's; after any other answer but [`Answer::Waiting`], the
/// relay closes the connection.
///
/// ```
/// use aeschat_core::relay::Answer;
/// let answer = Answer::PairedAsClient { room: 417 };
/// assert_eq!(Answer::parse(&answer.to_bytes()), Ok(answer));
/// assert!(!answer.is_refusal());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Answer {
    /// The room is open and waits for the other person (to the client that opened it).
    Waiting {
        /// The room's number, which goes at the start of the code.
        room: u32,
    },
    /// The other person joined: run the protocol as its server (to the client that opened the
    /// room).
    PairedAsServer {
        /// The room's number.
        room: u32,
    },
    /// The room's opener is there: run the protocol as its client (to the client that joined).
    PairedAsClient {
        /// The room's number.
        room: u32,
    },
    /// No room has this number (a typo, or the room ended or expired).
    NoSuchRoom,
    /// Two people are already in this room.
    RoomFull,
    /// The hello was not a relay hello, or the client spoke before it was paired.
    BadHello,
    /// The client's version is not spoken here; the number is the relay's version.
    UnsupportedVersion {
        /// The version the relay speaks.
        version: u32,
    },
    /// Too many connections or rooms from this address; try again after this many seconds.
    RateLimited {
        /// Seconds to wait before trying again.
        retry_after: u32,
    },
    /// The relay is at its capacity.
    Busy,
    /// The room waited longer than the relay keeps rooms, and is closed.
    Expired,
}

/// Why bytes are not a relay message.
///
/// ```
/// use aeschat_core::relay::{Hello, RelayError};
/// assert_eq!(Hello::parse(b"GET / HTTP/1.1\r\n"), Err(RelayError::NotRelay));
/// assert_eq!(Hello::parse(b"aeschRLY"), Err(RelayError::Short));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RelayError {
    /// Fewer than [`RELAY_MESSAGE_LEN`] bytes.
    Short,
    /// The bytes do not start with [`RELAY_MAGIC`]: not an aeschat relay message.
    NotRelay,
    /// The version is not [`RELAY_VERSION`]; the field holds the one received.
    Version(u8),
    /// The magic and version are right, but the kind or the number is not a valid message.
    Malformed,
}

impl fmt::Display for RelayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RelayError::Short => f.write_str("the relay message is cut short"),
            RelayError::NotRelay => f.write_str("the bytes are not an aeschat relay message"),
            RelayError::Version(version) => write!(
                f,
                "the relay message has version {version}, but this program speaks version \
                 {RELAY_VERSION}"
            ),
            RelayError::Malformed => f.write_str("the relay message is malformed"),
        }
    }
}

impl core::error::Error for RelayError {}

const HELLO_OPEN: u8 = 1;
const HELLO_JOIN: u8 = 2;

const ANSWER_WAITING: u8 = 1;
const ANSWER_PAIRED_SERVER: u8 = 2;
const ANSWER_PAIRED_CLIENT: u8 = 3;
const ANSWER_NO_SUCH_ROOM: u8 = 16;
const ANSWER_ROOM_FULL: u8 = 17;
const ANSWER_BAD_HELLO: u8 = 18;
const ANSWER_UNSUPPORTED_VERSION: u8 = 19;
const ANSWER_RATE_LIMITED: u8 = 20;
const ANSWER_BUSY: u8 = 21;
const ANSWER_EXPIRED: u8 = 22;

/// A room number as a message may carry it: 1 to [`MAX_ROOM`].
fn valid_room(room: u32) -> Result<u32, RelayError> {
    match room {
        1..=MAX_ROOM => Ok(room),
        _ => Err(RelayError::Malformed),
    }
}

/// Builds one message.
fn encode(kind: u8, number: u32) -> [u8; RELAY_MESSAGE_LEN] {
    let mut bytes = [0u8; RELAY_MESSAGE_LEN];
    let (magic, rest) = bytes.split_at_mut(RELAY_MAGIC.len());
    magic.copy_from_slice(&RELAY_MAGIC);
    if let [version, kind_byte, number_bytes @ ..] = rest {
        *version = RELAY_VERSION;
        *kind_byte = kind;
        number_bytes.copy_from_slice(&number.to_be_bytes());
    }
    bytes
}

/// Checks the magic and the version of the first [`RELAY_MESSAGE_LEN`] bytes and returns the
/// kind and the number. Bytes past the message are not looked at.
fn decode(bytes: &[u8]) -> Result<(u8, u32), RelayError> {
    let message = bytes
        .first_chunk::<RELAY_MESSAGE_LEN>()
        .ok_or(RelayError::Short)?;
    let (magic, rest) = message.split_at(RELAY_MAGIC.len());
    if magic != RELAY_MAGIC {
        return Err(RelayError::NotRelay);
    }
    let [version, kind, a, b, c, d] = *rest else {
        return Err(RelayError::Short);
    };
    if version != RELAY_VERSION {
        return Err(RelayError::Version(version));
    }
    Ok((kind, u32::from_be_bytes([a, b, c, d])))
}

/// True when `prefix` could still become a relay message (its bytes agree with the magic so
/// far): a relay can refuse junk at its first wrong byte instead of waiting for 14.
///
/// ```
/// use aeschat_core::relay::could_be_message;
/// assert!(could_be_message(b"aesch"));
/// assert!(!could_be_message(b"GET"));
/// ```
pub fn could_be_message(prefix: &[u8]) -> bool {
    prefix
        .iter()
        .zip(RELAY_MAGIC.iter())
        .all(|(got, want)| got == want)
}

impl Hello {
    /// The message's bytes.
    ///
    /// ```
    /// use aeschat_core::relay::{Hello, RELAY_MAGIC, RELAY_MESSAGE_LEN};
    /// let bytes = Hello::Open.to_bytes();
    /// assert_eq!((bytes.len(), &bytes[..8]), (RELAY_MESSAGE_LEN, &RELAY_MAGIC[..]));
    /// ```
    pub fn to_bytes(self) -> [u8; RELAY_MESSAGE_LEN] {
        match self {
            Hello::Open => encode(HELLO_OPEN, 0),
            Hello::Join { room } => encode(HELLO_JOIN, room),
        }
    }

    /// Parses the first [`RELAY_MESSAGE_LEN`] bytes of `bytes`.
    ///
    /// ```
    /// use aeschat_core::relay::{Hello, RelayError, MAX_ROOM};
    /// assert_eq!(Hello::parse(&Hello::Open.to_bytes()), Ok(Hello::Open));
    /// let beyond = Hello::Join { room: MAX_ROOM + 1 }.to_bytes();
    /// assert_eq!(Hello::parse(&beyond), Err(RelayError::Malformed));
    /// ```
    pub fn parse(bytes: &[u8]) -> Result<Hello, RelayError> {
        match decode(bytes)? {
            (HELLO_OPEN, 0) => Ok(Hello::Open),
            (HELLO_JOIN, room) => Ok(Hello::Join {
                room: valid_room(room)?,
            }),
            _ => Err(RelayError::Malformed),
        }
    }
}

impl Answer {
    /// The message's bytes.
    ///
    /// ```
    /// use aeschat_core::relay::{Answer, RELAY_MESSAGE_LEN};
    /// assert_eq!(Answer::Busy.to_bytes().len(), RELAY_MESSAGE_LEN);
    /// ```
    pub fn to_bytes(self) -> [u8; RELAY_MESSAGE_LEN] {
        match self {
            Answer::Waiting { room } => encode(ANSWER_WAITING, room),
            Answer::PairedAsServer { room } => encode(ANSWER_PAIRED_SERVER, room),
            Answer::PairedAsClient { room } => encode(ANSWER_PAIRED_CLIENT, room),
            Answer::NoSuchRoom => encode(ANSWER_NO_SUCH_ROOM, 0),
            Answer::RoomFull => encode(ANSWER_ROOM_FULL, 0),
            Answer::BadHello => encode(ANSWER_BAD_HELLO, 0),
            Answer::UnsupportedVersion { version } => encode(ANSWER_UNSUPPORTED_VERSION, version),
            Answer::RateLimited { retry_after } => encode(ANSWER_RATE_LIMITED, retry_after),
            Answer::Busy => encode(ANSWER_BUSY, 0),
            Answer::Expired => encode(ANSWER_EXPIRED, 0),
        }
    }

    /// Parses the first [`RELAY_MESSAGE_LEN`] bytes of `bytes`.
    ///
    /// ```
    /// use aeschat_core::relay::{Answer, Hello, RelayError};
    /// let waiting = Answer::Waiting { room: 12 };
    /// assert_eq!(Answer::parse(&waiting.to_bytes()), Ok(waiting));
    /// // A hello is no answer.
    /// assert_eq!(Answer::parse(&Hello::Open.to_bytes()), Err(RelayError::Malformed));
    /// ```
    pub fn parse(bytes: &[u8]) -> Result<Answer, RelayError> {
        let (kind, number) = decode(bytes)?;
        let answer = match (kind, number) {
            (ANSWER_WAITING, room) => Answer::Waiting {
                room: valid_room(room)?,
            },
            (ANSWER_PAIRED_SERVER, room) => Answer::PairedAsServer {
                room: valid_room(room)?,
            },
            (ANSWER_PAIRED_CLIENT, room) => Answer::PairedAsClient {
                room: valid_room(room)?,
            },
            (ANSWER_NO_SUCH_ROOM, 0) => Answer::NoSuchRoom,
            (ANSWER_ROOM_FULL, 0) => Answer::RoomFull,
            (ANSWER_BAD_HELLO, 0) => Answer::BadHello,
            (ANSWER_UNSUPPORTED_VERSION, version) => Answer::UnsupportedVersion { version },
            (ANSWER_RATE_LIMITED, retry_after) => Answer::RateLimited { retry_after },
            (ANSWER_BUSY, 0) => Answer::Busy,
            (ANSWER_EXPIRED, 0) => Answer::Expired,
            _ => return Err(RelayError::Malformed),
        };
        Ok(answer)
    }

    /// True for the answers after which the relay closes the connection.
    ///
    /// ```
    /// use aeschat_core::relay::Answer;
    /// assert!(Answer::RoomFull.is_refusal());
    /// assert!(!Answer::Waiting { room: 3 }.is_refusal());
    /// ```
    pub fn is_refusal(self) -> bool {
        !matches!(
            self,
            Answer::Waiting { .. } | Answer::PairedAsServer { .. } | Answer::PairedAsClient { .. }
        )
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    /// The golden bytes of two messages: the wire format is fixed, not whatever encode says.
    #[test]
    fn messages_have_their_documented_bytes() {
        assert_eq!(
            Hello::Join { room: 17 }.to_bytes(),
            *b"aeschRLY\x01\x02\x00\x00\x00\x11"
        );
        assert_eq!(Hello::Open.to_bytes(), *b"aeschRLY\x01\x01\x00\x00\x00\x00");
        assert_eq!(
            Answer::PairedAsServer { room: 999_999 }.to_bytes(),
            *b"aeschRLY\x01\x02\x00\x0f\x42\x3f"
        );
        assert_eq!(
            Answer::RateLimited { retry_after: 5 }.to_bytes(),
            *b"aeschRLY\x01\x14\x00\x00\x00\x05"
        );
    }

    #[test]
    fn every_message_round_trips() {
        let hellos = [
            Hello::Open,
            Hello::Join { room: 1 },
            Hello::Join { room: MAX_ROOM },
        ];
        for hello in hellos {
            assert_eq!(Hello::parse(&hello.to_bytes()), Ok(hello));
        }
        let answers = [
            Answer::Waiting { room: 5 },
            Answer::PairedAsServer { room: 5 },
            Answer::PairedAsClient { room: 5 },
            Answer::NoSuchRoom,
            Answer::RoomFull,
            Answer::BadHello,
            Answer::UnsupportedVersion { version: 1 },
            Answer::RateLimited { retry_after: 30 },
            Answer::Busy,
            Answer::Expired,
        ];
        for answer in answers {
            assert_eq!(Answer::parse(&answer.to_bytes()), Ok(answer));
            assert_eq!(
                answer.is_refusal(),
                !matches!(
                    answer,
                    Answer::Waiting { .. }
                        | Answer::PairedAsServer { .. }
                        | Answer::PairedAsClient { .. }
                )
            );
        }
    }

    #[test]
    fn junk_is_refused_with_the_right_reason() {
        let good = Hello::Join { room: 17 }.to_bytes();
        assert_eq!(Hello::parse(&good[..13]), Err(RelayError::Short));
        assert_eq!(Hello::parse(&[]), Err(RelayError::Short));
        let mut not_relay = good;
        not_relay[0] ^= 1;
        assert_eq!(Hello::parse(&not_relay), Err(RelayError::NotRelay));
        let mut version = good;
        version[8] = 2;
        assert_eq!(Hello::parse(&version), Err(RelayError::Version(2)));
        for (kind, room) in [
            (2u8, 0u32),
            (2, MAX_ROOM + 1),
            (2, u32::MAX),
            (1, 5),
            (0, 0),
            (3, 1),
        ] {
            let bytes = encode(kind, room);
            assert_eq!(
                Hello::parse(&bytes),
                Err(RelayError::Malformed),
                "{kind} {room}"
            );
        }
        assert_eq!(Answer::parse(&encode(1, 0)), Err(RelayError::Malformed));
        assert_eq!(Answer::parse(&encode(17, 1)), Err(RelayError::Malformed));
        assert_eq!(Answer::parse(&encode(99, 0)), Err(RelayError::Malformed));
        // An aeschat protocol hello is not a relay hello.
        assert_eq!(
            Hello::parse(b"\x01\x00\x00\x00\x40aeschat....."),
            Err(RelayError::NotRelay)
        );
    }

    #[test]
    fn trailing_bytes_are_not_looked_at() {
        let mut bytes = [0xffu8; 40];
        bytes[..RELAY_MESSAGE_LEN].copy_from_slice(&Hello::Open.to_bytes());
        assert_eq!(Hello::parse(&bytes), Ok(Hello::Open));
    }

    #[test]
    fn a_prefix_is_judged_byte_by_byte() {
        assert!(could_be_message(b""));
        assert!(could_be_message(b"aesch"));
        assert!(could_be_message(&Hello::Open.to_bytes()));
        assert!(!could_be_message(b"GET / HTTP/1.1"));
        assert!(!could_be_message(b"aeschX"));
    }

    /// Every one- and two-byte change of a valid hello parses to something or to an error,
    /// without a panic (the fuzz target `relay_framing` goes further).
    #[test]
    fn every_single_byte_change_is_handled() {
        let good = Hello::Join { room: 17 }.to_bytes();
        for index in 0..RELAY_MESSAGE_LEN {
            for value in 0..=255u8 {
                let mut bytes = good;
                bytes[index] = value;
                let _ = Hello::parse(&bytes);
                let _ = Answer::parse(&bytes);
                let _ = Hello::parse(&bytes[..index]);
            }
        }
    }
}
