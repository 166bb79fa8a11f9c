//! Ctrl-C. During a conversation the first one leaves it cleanly (the authenticated close goes
//! out, as at the end of input) and a second one exits at once; anywhere else (the password
//! prompt, connecting, waiting for a peer) it exits at once, quietly, with the conventional
//! status 130.
//!
//! The line editor reads Ctrl-C as a key and calls [`pressed`] itself; outside the editor the
//! terminal sends SIGINT, which the handler installed by [`install`] turns into the same call,
//! on a thread of its own (so it may take locks and queue events).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;

/// The exit status of a program stopped by Ctrl-C: 128 + SIGINT.
pub(super) const INTERRUPTED_STATUS: u8 = 130;

/// Ctrl-C presses so far.
static PRESSES: AtomicU32 = AtomicU32::new(0);

/// How many marks of a running conversation there are ([`Conversing`]): while there is one, a
/// first Ctrl-C leaves it instead of exiting.
static CONVERSING: AtomicU32 = AtomicU32::new(0);

/// True while the password prompt reads: it reports Ctrl-C itself, after putting the
/// terminal's echo back.
static PROMPTING: AtomicBool = AtomicBool::new(false);

/// Tells the conversation to leave; false if nobody listens.
type Notify = Box<dyn Fn() -> bool + Send>;

static LEAVE: Mutex<Option<Notify>> = Mutex::new(None);

/// Takes SIGINT from here on. Without the handler (should the system refuse it) Ctrl-C still
/// stops the program, only without the clean leave.
pub(super) fn install() {
    let _ = ctrlc::set_handler(pressed);
}

/// Sets how a first Ctrl-C during a conversation makes it leave.
pub(super) fn on_interrupt(notify: Notify) {
    *LEAVE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(notify);
}

/// Ctrl-C was pressed.
pub(super) fn pressed() {
    if PROMPTING.load(Ordering::SeqCst) {
        return;
    }
    let first = PRESSES.fetch_add(1, Ordering::SeqCst) == 0;
    if first && conversing() {
        let leave = LEAVE
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if leave.as_ref().is_some_and(|notify| notify()) {
            super::terminal::status("[*] Leaving (Ctrl-C again quits at once)");
            return;
        }
    }
    exit();
}

/// Exits at once with status 130, on a line of its own.
pub(super) fn exit() -> ! {
    super::terminal::prompt("\n");
    std::process::exit(i32::from(INTERRUPTED_STATUS));
}

/// True while a conversation runs.
pub(super) fn conversing() -> bool {
    CONVERSING.load(Ordering::SeqCst) > 0
}

/// Marks the life of a conversation: made when it starts, dropped when it ends. Marks may
/// nest (the client's covers the whole time after its handshake).
pub(super) struct Conversing(());

impl Conversing {
    pub(super) fn start() -> Conversing {
        CONVERSING.fetch_add(1, Ordering::SeqCst);
        Conversing(())
    }
}

impl Drop for Conversing {
    fn drop(&mut self) {
        CONVERSING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Marks the password prompt: made before it reads, dropped after.
pub(super) struct Prompting(());

impl Prompting {
    pub(super) fn start() -> Prompting {
        PROMPTING.store(true, Ordering::SeqCst);
        Prompting(())
    }
}

impl Drop for Prompting {
    fn drop(&mut self) {
        PROMPTING.store(false, Ordering::SeqCst);
    }
}
