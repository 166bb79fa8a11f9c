#!/usr/bin/env bash
# Code size of the no_std core, protocol 2 (this tree) against protocol 1 (a copy of 0854a3f):
# the figures of docs/PERFORMANCE.md, section "Protocol 2 (issue 13)".
#
#  1. x86-64, as bench/run.sh measures it: nostd-check (release, panic = "abort") linked into
#     its C driver with --gc-sections; `size`'s text, and text + read-only data by crate
#     (bench/report.py's code_size, from the symbol names). Then once more with the driver's
#     standalone CPace check (aeschat_nostd_cpace) replaced by a stub: protocol 1's core
#     without curve25519-dalek, as PERFORMANCE.md's 152,621 B was measured; protocol 2's core
#     still links CPace through its handshake.
#  2. Cortex-M4 (thumbv7em-none-eabihf, if the target is installed): the same nostd-check
#     library at opt-level "s" and 3, linked with rust-lld --gc-sections keeping every function
#     the C driver calls (no C driver, no libc); text by crate the same way ("no crate in the
#     name" is mostly unnamed read-only data: constant tables); and again without
#     aeschat_nostd_cpace.
#  3. The Cortex-M4 firmware of bench/m4 (one protocol-2 handshake, LTO, codegen-units = 1) at
#     opt-level "s" and 3: a whole image, vector table to formatting code.
#
# Usage: bash bench/code_size.sh   (P1_REF / P1_DIR as in bench/handshake_ab.sh)
# Needs: cargo, cc, binutils (size, nm), python3; rustup's thumbv7em-none-eabihf for 2 and 3.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
p1="${P1_DIR:-$root/target/p1}"
if [[ -z "${P1_DIR:-}" ]]; then
    rm -rf "$p1"
    mkdir -p "$p1"
    git -C "$root" archive "${P1_REF:-0854a3f}" | tar -x -C "$p1"
fi
out="$root/target/code-size"
mkdir -p "$out"
sysroot="$(rustc --print sysroot)"
lld="$(ls "$sysroot"/lib/rustlib/*/bin/rust-lld | head -1)"
thumb=thumbv7em-none-eabihf
# The firmware resolves exactly the versions the root workspace pins (as nostd-check does).
cp "$root/Cargo.lock" "$root/bench/m4/Cargo.lock"

# By crate: text and read-only data from the symbol names, largest first. (report.py names
# symbols without a crate path after the C driver; in an image without one, say so.)
by_crate() {
    python3 - "$1" "$root/bench" "${2:-}" <<'EOF'
import sys
sys.path.insert(0, sys.argv[2])
from report import code_size
_, _, crates = code_size(sys.argv[1], sys.argv[1])
for crate, size in sorted(crates.items(), key=lambda kv: -kv[1]):
    if sys.argv[3] == "no-c":
        crate = crate.replace("C driver, libc start-up", "no crate in the name")
    print(f"    {crate:<45} {size:>8,}")
EOF
}

text() { size "$1" | awk 'NR == 2 { print $1 }'; }

for tree in "$root" "$p1"; do
    name=$([[ "$tree" == "$root" ]] && echo "protocol 2 (this tree)" || echo "protocol 1 (0854a3f)")
    tag=$([[ "$tree" == "$root" ]] && echo p2 || echo p1)
    cp "$tree/Cargo.lock" "$tree/nostd-check/Cargo.lock" # as nostd-check/run.sh does
    manifest="$tree/nostd-check/Cargo.toml"
    target_dir="$tree/target/nostd-check"

    cargo build --quiet --release --manifest-path "$manifest" --target-dir "$target_dir"
    cc -O2 -o "$out/driver-$tag" "$tree/nostd-check/driver.c" \
        "$target_dir/release/libaeschat_nostd_check.a" -Wl,--gc-sections
    "$out/driver-$tag" >/dev/null
    echo "== $name: x86-64 nostd-check driver, text $(text "$out/driver-$tag") B"
    by_crate "$out/driver-$tag"
    printf '#include <stdint.h>\nint32_t stub_cpace(uint8_t seed) { (void)seed; return 0; }\n' \
        >"$out/stub.c"
    cc -O2 -o "$out/driver-$tag-no-cpace-check" -Daeschat_nostd_cpace=stub_cpace \
        "$tree/nostd-check/driver.c" "$out/stub.c" "$target_dir/release/libaeschat_nostd_check.a" \
        -Wl,--gc-sections
    "$out/driver-$tag-no-cpace-check" >/dev/null
    echo "== $name: the same without the standalone CPace check, text $(text "$out/driver-$tag-no-cpace-check") B"
    by_crate "$out/driver-$tag-no-cpace-check"

    if ! rustup target list --installed 2>/dev/null | grep -qx "$thumb"; then
        echo "   ($thumb not installed: no Cortex-M4 sizes)"
        continue
    fi
    for opt in s 3; do
        CARGO_PROFILE_RELEASE_OPT_LEVEL=$opt cargo build --quiet --release \
            --manifest-path "$manifest" --target-dir "$target_dir-$thumb-$opt" --target "$thumb"
        lib="$target_dir-$thumb-$opt/$thumb/release/libaeschat_nostd_check.a"
        keep=()
        for symbol in $(nm -g --defined-only "$lib" 2>/dev/null | awk '$2 == "T" && $3 ~ /^aeschat_nostd_/ { print $3 }' | sort -u); do
            # The canary is only linked in the canary builds (the C driver never calls it).
            [[ "$symbol" == aeschat_nostd_canary ]] && continue
            [[ "$symbol" == aeschat_nostd_random ]] && continue
            keep+=(-u "$symbol")
        done
        # No entry point: the kept functions are the roots (lld warns that _start is missing).
        elf="$out/nostd-$tag-$thumb-$opt.elf"
        "$lld" -flavor gnu --gc-sections "${keep[@]}" -o "$elf" "$lib" 2>/dev/null
        echo "== $name: $thumb nostd-check, opt-level $opt, text $(text "$elf") B ($((${#keep[@]} / 2)) functions kept)"
        by_crate "$elf" no-c
        without=()
        for ((i = 0; i < ${#keep[@]}; i += 2)); do
            [[ "${keep[i + 1]}" == aeschat_nostd_cpace ]] || without+=(-u "${keep[i + 1]}")
        done
        "$lld" -flavor gnu --gc-sections "${without[@]}" -o "${elf%.elf}-no-cpace-check.elf" "$lib" 2>/dev/null
        echo "== $name: the same without aeschat_nostd_cpace, text $(text "${elf%.elf}-no-cpace-check.elf") B"
        by_crate "${elf%.elf}-no-cpace-check.elf" no-c
    done
done

if rustup target list --installed 2>/dev/null | grep -qx "$thumb"; then
    for opt in s 3; do
        (cd "$root/bench/m4" && CARGO_PROFILE_RELEASE_OPT_LEVEL=$opt cargo build --quiet --release \
            --target-dir "$root/target/m4-$opt")
        elf="$root/target/m4-$opt/$thumb/release/aeschat-m4"
        echo "== protocol 2 (this tree): bench/m4 firmware (one handshake, LTO), opt-level $opt, text $(text "$elf") B"
        by_crate "$elf" no-c
    done
fi
