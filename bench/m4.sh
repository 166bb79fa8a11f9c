#!/usr/bin/env bash
# Protocol 2's handshake on an emulated Cortex-M4: instructions and stack per part, from the
# bare-metal firmware in bench/m4 run in QEMU's mps2-an386 (a Cortex-M4 board) with
# `-icount shift=0` (one instruction per virtual nanosecond; see bench/m4/src/main.rs), built at
# opt-level "s" and 3, and at both again with the sha2 crate's compact software SHA-2
# (`--cfg sha2_backend_soft="compact"`, a firmware author's choice). docs/PERFORMANCE.md, section "Protocol 2 (issue 13)", turns the counts
# into a time estimate.
#
# With P1_DIR set to a checkout of protocol 1 (for instance `git worktree add /tmp/p1 0854a3f`,
# the last protocol-1 main),
# also builds the same firmware there (opt-level 3) and runs it: protocol 1 at its default
# 600,000 PBKDF2 iterations, about 3.1 billion instructions per side (some seconds in QEMU).
#
# Usage: bash bench/m4.sh
# Needs: rustup's thumbv7em-none-eabihf target (`rustup target add thumbv7em-none-eabihf`) and
# qemu-system-arm (Debian: `apt-get install qemu-system-arm`). QEMU's instruction count does
# not depend on the host, so these figures are not affected by the machine's load.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The firmware resolves exactly the versions the root workspace pins (as nostd-check does).
cp "$root/Cargo.lock" "$root/bench/m4/Cargo.lock"
for variant in s 3 compact-s compact-3; do
    opt="${variant#compact-}"
    flags=()
    [[ "$variant" == compact-* ]] && flags=(--cfg 'sha2_backend_soft="compact"')
    (cd "$root/bench/m4" && RUSTFLAGS="${flags[*]}" CARGO_PROFILE_RELEASE_OPT_LEVEL=$opt \
        cargo build --quiet --release --target-dir "$root/target/m4-$variant")
    elf="$root/target/m4-$variant/thumbv7em-none-eabihf/release/aeschat-m4"
    echo "== $variant: opt-level $opt${flags[*]:+, ${flags[*]}} ($(size "$elf" | awk 'NR == 2 { print $1 }') bytes of text)"
    timeout 600 qemu-system-arm -M mps2-an386 -nographic -monitor none -serial none \
        -semihosting-config enable=on,target=native -icount shift=0 -kernel "$elf"
done

if [[ -n "${P1_DIR:-}" ]]; then
    rm -rf "$P1_DIR/bench/m4"
    cp -r "$root/bench/m4" "$P1_DIR/bench/m4"
    cp "$P1_DIR/Cargo.lock" "$P1_DIR/bench/m4/Cargo.lock"
    (cd "$P1_DIR/bench/m4" && CARGO_PROFILE_RELEASE_OPT_LEVEL=3 cargo build --quiet --release \
        --target-dir "$P1_DIR/target/m4-3")
    elf="$P1_DIR/target/m4-3/thumbv7em-none-eabihf/release/aeschat-m4"
    echo "== protocol 1 ($P1_DIR): opt-level 3 ($(size "$elf" | awk 'NR == 2 { print $1 }') bytes of text)"
    timeout 1200 qemu-system-arm -M mps2-an386 -nographic -monitor none -serial none \
        -semihosting-config enable=on,target=native -icount shift=0 -kernel "$elf"
fi
