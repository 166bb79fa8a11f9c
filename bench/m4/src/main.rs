//! Protocol 2's handshake on an emulated Cortex-M4 (QEMU's mps2-an386), counted in
//! instructions. `bash bench/m4.sh` builds and runs it; see docs/PERFORMANCE.md.
//!
//! QEMU runs with `-icount shift=0`: every guest instruction advances the virtual clock by
//! exactly 1 ns, and the board's CMSDK timer 0 counts down at its 25 MHz system clock in that
//! virtual time, so one timer tick is 40 instructions. A calibration loop of a known
//! instruction count checks the conversion. Instructions, not cycles: a real Cortex-M4 takes
//! more than one cycle for loads, stores, taken branches and flash wait states (the estimate in
//! PERFORMANCE.md states its cycles-per-instruction assumption).
//!
//! Measured, each printed over semihosting:
//! - `Cpace::new` (draw a scalar, hash the password to a point, one scalar multiplication: the
//!   server's cost for a stranger's ClientHello) and `Cpace::finish` (decode the peer's share,
//!   a second scalar multiplication, the ISK hash);
//! - a whole handshake between two engines (both modes), each side's `Engine::new`, `poll` and
//!   `derive_keys` calls counted apart; and a wrong password (the server's cost of one guess);
//! - the stack: the region below the stack pointer is painted before each measured call and
//!   the deepest overwritten byte found after it.
#![no_std]
#![no_main]

use aeschat_core::cpace::{Cpace, Role as CpaceRole};
use aeschat_core::fernet::Key;
use aeschat_core::rand_core::{Infallible, TryCryptoRng, TryRng};
use aeschat_core::session::{Action, Config, Engine, Role, Secret};
use core::arch::asm;
use core::fmt::Write;
use core::ptr::{read_volatile, write_volatile};

const PASSWORD: &[u8] = b"correct horse battery staple";
const WRONG: &[u8] = b"correct horse battery stapler";
const SMALL: usize = 256;

// ---- the board: vector table, timer, semihosting ----

/// Reset and the fault handlers (the initial stack pointer precedes them, from m4.ld).
#[link_section = ".vectors"]
#[no_mangle]
#[used]
static VECTORS: [unsafe extern "C" fn() -> !; 6] = [reset, fault, fault, fault, fault, fault];

unsafe extern "C" fn fault() -> ! {
    print("fault\n");
    exit(1)
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    print("panic\n");
    exit(2)
}

#[no_mangle]
unsafe extern "C" fn reset() -> ! {
    extern "C" {
        static mut _sbss: u32;
        static mut _ebss: u32;
    }
    // Zero .bss; enable the FPU (the hard-float target may use its registers).
    let mut p = &raw mut _sbss;
    while p < &raw mut _ebss {
        write_volatile(p, 0);
        p = p.add(1);
    }
    let cpacr = 0xE000_ED88 as *mut u32;
    write_volatile(cpacr, read_volatile(cpacr) | (0xF << 20));
    asm!("dsb", "isb");
    main();
    exit(0)
}

const TIMER: usize = 0x4000_0000; // CMSDK APB timer 0: CTRL, VALUE, RELOAD
const INSTRUCTIONS_PER_TICK: u64 = 40; // 1 ns per instruction, a 25 MHz timer

fn timer_start() {
    unsafe {
        write_volatile((TIMER + 8) as *mut u32, u32::MAX);
        write_volatile((TIMER + 4) as *mut u32, u32::MAX);
        write_volatile(TIMER as *mut u32, 1);
    }
}

fn ticks() -> u32 {
    // A down counter.
    !unsafe { read_volatile((TIMER + 4) as *const u32) }
}

/// Semihosting call `op` with parameter `arg`.
fn semihost(op: u32, arg: usize) -> u32 {
    let mut r0 = op;
    unsafe { asm!("bkpt 0xab", inout("r0") r0, in("r1") arg, options(nostack)) };
    r0
}

fn print(text: &str) {
    let mut buf = [0u8; 160];
    for chunk in text.as_bytes().chunks(buf.len() - 1) {
        buf[..chunk.len()].copy_from_slice(chunk);
        buf[chunk.len()] = 0;
        semihost(0x04, buf.as_ptr() as usize); // SYS_WRITE0
    }
}

fn exit(code: u32) -> ! {
    // SYS_EXIT with ADP_Stopped_ApplicationExit (0x20026), or an internal error.
    semihost(0x18, if code == 0 { 0x20026 } else { 0x20024 });
    loop {
        core::hint::spin_loop();
    }
}

struct Line {
    bytes: [u8; 256],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        self.bytes
            .get_mut(self.len..end)
            .ok_or(core::fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

macro_rules! say {
    ($($arg:tt)*) => {{
        let mut line = Line { bytes: [0; 256], len: 0 };
        let _ = write!(line, $($arg)*);
        print(core::str::from_utf8(&line.bytes[..line.len]).unwrap_or("?\n"));
    }};
}

// ---- stack painting ----

const PAINT: u32 = 0x5AA5_C33C;
/// How far below the current stack pointer the paint reaches.
const PAINTED: usize = 64 * 1024;

#[inline(always)]
fn stack_pointer() -> usize {
    let sp: usize;
    unsafe { asm!("mov {}, sp", out(reg) sp, options(nomem, nostack)) };
    sp
}

/// Paints the stack below the caller's frame (leaving 256 bytes for this call itself).
#[inline(never)]
fn paint() -> usize {
    let top = (stack_pointer() - 256) & !3;
    let mut p = top - PAINTED;
    while p < top {
        unsafe { write_volatile(p as *mut u32, PAINT) };
        p += 4;
    }
    top
}

/// The deepest byte written below `top` since `paint`.
fn stack_used(top: usize) -> usize {
    let mut p = top - PAINTED;
    while p < top && unsafe { read_volatile(p as *const u32) } == PAINT {
        p += 4;
    }
    top - p + 256
}

/// Instructions and stack bytes of `f` (the caller's stack frame is not counted).
fn measure<T>(f: impl FnOnce() -> T) -> (T, u64, usize) {
    let top = paint();
    let start = ticks();
    let out = f();
    let end = ticks();
    let used = stack_used(top);
    (
        out,
        u64::from(end.wrapping_sub(start)) * INSTRUCTIONS_PER_TICK,
        used,
    )
}

// ---- the workload ----

/// A deterministic stand-in for a hardware generator (SplitMix64), as in nostd-check.
struct Trng(u64);

impl TryRng for Trng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        self.try_next_u64().map(|word| word as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Ok(z ^ (z >> 31))
    }
    fn try_fill_bytes(&mut self, out: &mut [u8]) -> Result<(), Infallible> {
        for chunk in out.chunks_mut(8) {
            let word = self.try_next_u64()?.to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        Ok(())
    }
}

impl TryCryptoRng for Trng {}

/// One side: its engine, the bytes it has received, and what its calls cost.
struct Peer<'a> {
    engine: Engine<'a>,
    input: [u8; 512],
    len: usize,
    instructions: u64,
    stack: usize,
    done: Option<bool>,
}

impl Peer<'_> {
    fn deliver(&mut self, bytes: &[u8]) {
        self.input[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    /// Polls until this side waits or is done; what it transmits goes to `other`.
    fn run(&mut self, other: &mut Peer<'_>) {
        while self.done.is_none() {
            let ((discard, out, derive, wait), n, stack) = measure(|| {
                let step = self.engine.poll(&mut self.input[..self.len]);
                let mut out = ([0u8; 128], 0usize);
                let (mut derive, mut wait) = (false, false);
                match step.action {
                    Action::Transmit(bytes) => {
                        out.0[..bytes.len()].copy_from_slice(bytes);
                        out.1 = bytes.len();
                    }
                    Action::DeriveKeys => derive = true,
                    Action::NeedInput => wait = true,
                    Action::Established => self.done = Some(true),
                    Action::Failed(_) => self.done = Some(false),
                    _ => panic!(),
                }
                (step.discard, out, derive, wait)
            });
            self.account(n, stack);
            if derive {
                let (_, n, stack) = measure(|| self.engine.derive_keys(u32::MAX));
                self.account(n, stack);
            }
            self.input.copy_within(discard..self.len, 0);
            self.len -= discard;
            other.deliver(&out.0[..out.1]);
            if wait {
                return;
            }
        }
    }

    fn account(&mut self, instructions: u64, stack: usize) {
        self.instructions += instructions;
        self.stack = self.stack.max(stack);
    }
}

fn new_peer<'a>(config: Config<'a>, rng: &mut Trng) -> Peer<'a> {
    let (engine, n, stack) = measure(|| Engine::new(config, rng, None));
    Peer {
        engine,
        input: [0; 512],
        len: 0,
        instructions: n,
        stack,
        done: None,
    }
}

fn handshake(label: &str, client: Secret<'_>, server: Secret<'_>, rng: &mut Trng) {
    let config = |role, secret| Config::new(role, secret).with_max_message_len(SMALL);
    let mut c = new_peer(config(Role::Client, client), rng);
    let mut s = new_peer(config(Role::Server, server), rng);
    for _ in 0..16 {
        c.run(&mut s);
        s.run(&mut c);
        if c.done.is_some() && s.done.is_some() {
            break;
        }
        if s.done == Some(false) {
            c.run(&mut s);
            break;
        }
    }
    say!(
        "{label}: client {} instructions, stack {} B; server {} instructions, stack {} B; \
         client ok {:?}, server ok {:?}\n",
        c.instructions,
        c.stack,
        s.instructions,
        s.stack,
        c.done,
        s.done
    );
}

fn main() {
    timer_start();

    // Calibration: 2 * 1,000,000 instructions (subs, bne), plus a few.
    let (_, n, _) = measure(|| unsafe {
        asm!("1:", "subs {0}, #1", "bne 1b", inout(reg) 1_000_000u32 => _, options(nomem, nostack));
    });
    say!("calibration: 2000000 instructions counted as {n}\n");
    // What `measure` reports for a call that does nothing: its own overhead.
    let (_, n, stack) = measure(|| core::hint::black_box(0u32));
    say!("empty call: {n} instructions, stack {stack} B\n");

    let mut rng = Trng(1);
    let sid = [7u8; 64];
    for _ in 0..2 {
        let (a, n_new, stack_new) =
            measure(|| Cpace::new(CpaceRole::Initiator, PASSWORD, b"aeschat/2", &sid, &mut rng));
        let a = a.unwrap_or_else(|_| panic!());
        let b = Cpace::new(CpaceRole::Responder, PASSWORD, b"aeschat/2", &sid, &mut rng)
            .unwrap_or_else(|_| panic!());
        let share = *b.share();
        let (isk, n_finish, stack_finish) = measure(|| a.finish(b"", &share, b""));
        assert!(isk.is_ok());
        say!(
            "cpace: new {n_new} instructions, stack {stack_new} B; finish {n_finish} \
             instructions, stack {stack_finish} B\n"
        );
    }

    let key = Key::from_bytes([0x42; 32]);
    handshake(
        "handshake, password",
        Secret::Password(PASSWORD),
        Secret::Password(PASSWORD),
        &mut rng,
    );
    handshake(
        "handshake, key",
        Secret::PreSharedKey(&key),
        Secret::PreSharedKey(&key),
        &mut rng,
    );
    handshake(
        "handshake, wrong password",
        Secret::Password(WRONG),
        Secret::Password(PASSWORD),
        &mut rng,
    );
    say!(
        "sizes: Engine {} B, Cpace {} B\n",
        core::mem::size_of::<Engine<'static>>(),
        core::mem::size_of::<Cpace>()
    );
}
