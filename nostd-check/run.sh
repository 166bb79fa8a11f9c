#!/usr/bin/env bash
# Proves that aeschat-core needs neither `std` nor `alloc`, and that this proof can fail.
#
#  1. Builds nostd-check (a `#![no_std]` staticlib with its own panic handler, no global
#     allocator, panic = "abort") against aeschat-core with default features, then with the
#     `getrandom` feature. Both builds must succeed.
#  2. Links each library into a C program (driver.c) and runs it: the no_std code really encrypts
#     and decrypts, with no Rust runtime underneath. Prints the linked program's code size.
#  3. Builds with each canary feature, which links `std` or `alloc` through a dependency. Both
#     builds must fail, with the compiler's error for exactly that cause.
#
# Run from anywhere: bash nostd-check/run.sh
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

manifest=nostd-check/Cargo.toml
target_dir=target/nostd-check
library="$target_dir/release/libaeschat_nostd_check.a"
mkdir -p "$target_dir"

# Resolve exactly the dependency versions the root workspace pins. (This workspace's own
# Cargo.lock is therefore derived, and ignored by git.)
cp Cargo.lock nostd-check/Cargo.lock

build() {
    cargo build --release --manifest-path "$manifest" --target-dir "$target_dir" "$@"
}

# Links the library just built into driver.c and runs it. `--gc-sections` drops the unwind
# tables of the precompiled libcore, which name a personality routine nothing ever calls.
run_driver() {
    local name="$1"
    shift
    cc -O2 -Wall -Wextra -Werror "$@" -o "$target_dir/$name" nostd-check/driver.c "$library" \
        -Wl,--gc-sections
    "$target_dir/$name"
    # The code the library brings in, as linked (the C driver's own part is a few hundred bytes).
    if command -v size >/dev/null; then
        echo "code size: $(size "$target_dir/$name" | awk 'NR == 2 { print $1 }') bytes of text in $name"
    fi
}

# Builds with a canary feature; passes only if the build fails with the expected error line.
expect_failure() {
    local feature="$1" expected="$2" log="$target_dir/$1.log"
    if build --features "$feature" >"$log" 2>&1; then
        echo "FAIL: the $feature build succeeded, so the check cannot detect what it links" >&2
        exit 1
    fi
    if ! grep -F -- "$expected" "$log"; then
        echo "FAIL: the $feature build failed, but not with: $expected" >&2
        cat "$log" >&2
        exit 1
    fi
}

echo "-- no_std build, aeschat-core default features"
build
run_driver driver

echo "-- no_std build, aeschat-core with getrandom"
build --features getrandom
run_driver driver-getrandom -DAESCHAT_GETRANDOM

echo "-- canary: a dependency links std (must fail)"
expect_failure canary-std 'error[E0152]: found duplicate lang item `panic_impl`'
grep -F 'the lang item is first defined in crate `std` (which `aeschat_nostd_canary` depends on)' \
    "$target_dir/canary-std.log"

echo "-- canary: a dependency links alloc (must fail)"
expect_failure canary-alloc 'error: no global memory allocator found but one is required'

cat <<'EOF'
-- proved:
   aeschat-core (default features, and with getrandom) builds into a #![no_std] staticlib with
   panic = "abort", its own panic handler and no global allocator: nothing links std or alloc.
   The library encrypts and decrypts, pumps two protocol engines through caller-owned inboxes
   (handshake in both modes, records both ways, the close, a stranger refused), and runs a
   CPace exchange (both roles, bad shares refused),
   correctly when called from C.
   The check can fail: linking std gives a duplicate panic_impl, linking alloc finds no allocator.
EOF
