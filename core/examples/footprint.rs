//! The RAM one session needs, by type and buffer, for the default longest message (64 KiB) and
//! for 256-byte messages. Everything listed is owned state (statics on a board); the stack the
//! calls use comes on top (see docs/PERFORMANCE.md).
//!
//! ```text
//! cargo run --release -p aeschat-core --example footprint
//! ```
#![allow(
    clippy::arithmetic_side_effects,
    reason = "sums of type sizes, not attacker input (the lint is for the library's parsers)"
)]

use aeschat_core::{
    frame_capacity, record_frame_len, FrameReader, Handshake, Key, PreparedKey, Receiver, Sender,
    Session, MAX_MESSAGE_LEN,
};
use core::mem::size_of;

/// What a device keeps for one session whose messages are at most `N` bytes: the two halves,
/// the frame reader (which receives and decrypts in place) and the send buffer. The handshake
/// state lives only until the session exists, and can share memory with the send buffer.
fn session<const FRAME: usize, const SEND: usize>(label: &str) {
    let rows = [
        ("Sender", size_of::<Sender>()),
        ("Receiver", size_of::<Receiver>()),
        (
            "FrameReader<frame_capacity(N)>",
            size_of::<FrameReader<FRAME>>(),
        ),
        ("send buffer [u8; record_frame_len(N)]", SEND),
    ];
    let total: usize = rows.iter().map(|(_, size)| size).sum();
    println!("{label}");
    for (name, size) in rows {
        println!("  {name:<40} {size:>7} B");
    }
    println!("  {:<40} {total:>7} B", "session total");
    let handshake = size_of::<Handshake<'static>>();
    println!("  {:<40} {handshake:>7} B", "Handshake (until established)");
    println!(
        "  {:<40} {:>7} B",
        "peak: session + Handshake",
        total + handshake
    );
}

fn main() {
    println!("aeschat-core footprint: owned state, bytes (size_of on this target)");
    session::<{ frame_capacity(MAX_MESSAGE_LEN) }, { record_frame_len(MAX_MESSAGE_LEN) }>(
        "default maximum message (65536 B)",
    );
    session::<{ frame_capacity(256) }, { record_frame_len(256) }>("256-byte messages");
    println!("other types");
    for (name, size) in [
        ("Session (before split)", size_of::<Session>()),
        ("Key", size_of::<Key>()),
        ("PreparedKey", size_of::<PreparedKey>()),
    ] {
        println!("  {name:<40} {size:>7} B");
    }
}
