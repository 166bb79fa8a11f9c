//! The RAM one connection needs, by type and buffer, for the default longest message (64 KiB)
//! and for 256-byte messages. Everything listed is owned state (statics on a board); the stack
//! the calls use comes on top (see docs/PERFORMANCE.md).
//!
//! ```text
//! cargo run --release -p aeschat-core --example footprint
//! ```
#![allow(
    clippy::arithmetic_side_effects,
    reason = "sums of type sizes, not attacker input (the lint is for the library's parsers)"
)]

use aeschat_core::fernet::{Key, PreparedKey};
use aeschat_core::session::{
    frame_capacity, record_frame_len, Engine, Inbox, Receiver, Sender, MAX_MESSAGE_LEN,
};
use core::mem::size_of;

/// What a device keeps for one connection whose messages are at most `N` bytes: the engine
/// (the handshake, then the session in the same memory), the inbox the received bytes wait in
/// (records are decrypted where they lie) and the send buffer.
fn connection<const FRAME: usize, const SEND: usize>(label: &str) {
    let rows = [
        (
            "Engine (handshake, then session)",
            size_of::<Engine<'static>>(),
        ),
        (
            "Inbox<[u8; frame_capacity(N)]>",
            size_of::<Inbox<[u8; FRAME]>>(),
        ),
        ("send buffer [u8; record_frame_len(N)]", SEND),
    ];
    let total: usize = rows.iter().map(|(_, size)| size).sum();
    println!("{label}");
    for (name, size) in rows {
        println!("  {name:<42} {size:>7} B");
    }
    println!("  {:<42} {total:>7} B", "total, one thread");
    // Split for two threads, the halves move out and the engine may be dropped.
    let halves = size_of::<Sender>() + size_of::<Receiver>();
    let split = halves + size_of::<Inbox<[u8; FRAME]>>() + SEND;
    println!("  {:<42} {:>7} B", "Sender", size_of::<Sender>());
    println!("  {:<42} {:>7} B", "Receiver", size_of::<Receiver>());
    println!(
        "  {:<42} {split:>7} B",
        "split: Sender + Receiver + Inbox + buffer"
    );
}

fn main() {
    println!("aeschat-core footprint: owned state, bytes (size_of on this target)");
    connection::<{ frame_capacity(MAX_MESSAGE_LEN) }, { record_frame_len(MAX_MESSAGE_LEN) }>(
        "default maximum message (65536 B)",
    );
    connection::<{ frame_capacity(256) }, { record_frame_len(256) }>("256-byte messages");
    println!("other types");
    for (name, size) in [
        ("Key", size_of::<Key>()),
        ("PreparedKey", size_of::<PreparedKey>()),
    ] {
        println!("  {name:<42} {size:>7} B");
    }
}
