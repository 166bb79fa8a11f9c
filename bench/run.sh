#!/usr/bin/env bash
# Runs every aeschat benchmark and its peers in one go and prints the ratio table (markdown) on
# standard output; progress and the tools' own output go to target/bench/run.log.
#
#  1. cargo bench: tokens (aeschat with a pooled or a per-token getrandom IV, aeschat with a
#     PreparedKey, the `fernet` crate, the `base64` crate), measured interleaved by our own harness
#     (bench/benches/tokens.rs) into criterion's result format; the key derivation, the handshake
#     and session records between two threads, the in-memory handshake with criterion.
#  2. peers.py: Python cryptography's Fernet, `openssl speed`.
#  3. chat.py: the chat between two aeschat processes over loopback TCP, and between two
#     processes of legacy_chat.py, the Python stand-in for the project aeschat replaces.
#  4. The footprint example (RAM per session) and the no_std check linked into its C driver
#     (code size).
#
# Usage: bash bench/run.sh [--quick]   (--quick: 1 s per benchmark instead of 2, for a smoke test)
# Needs: cargo, python3 with `cryptography`, openssl, cc, binutils (size, nm).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/target/bench"
mkdir -p "$out"
log="$out/run.log"
: >"$log"
quick=()
if [[ "${1:-}" == "--quick" ]]; then
    export BENCH_SECONDS=1 BENCH_WARMUP=0.3
    quick=(--quick)
fi
step() { echo "-- $*" | tee -a "$log" >&2; }
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"

# Results of this run only: criterion keeps old ones, which the report must not mix in.
export CRITERION_HOME="$out/criterion"
rm -rf "$CRITERION_HOME"

step "building (release)"
(cd "$root/bench" && cargo build --release --benches --example profile) >>"$log" 2>&1
(cd "$root" && cargo build --release -p aeschat) >>"$log" 2>&1 || echo "the aeschat binary did not build" >>"$log"

step "cargo bench: tokens (interleaved), handshake, key derivation, session records"
(cd "$root/bench" && cargo bench --bench tokens --bench handshake -- --noplot) >>"$log" 2>&1

step "peers: Python cryptography, openssl speed"
python3 "$root/bench/peers.py" "${quick[@]}" >"$out/peers.json" 2>>"$log"

step "chat: aeschat and the Python stand-in, over loopback TCP"
rm -f "$out/chat.json"
if [[ -x "$root/target/release/aeschat" ]]; then
    python3 "$root/bench/chat.py" "$root/target/release/aeschat" "${quick[@]}" >"$out/chat.json" 2>>"$log" \
        || { echo "chat.py failed (see above)" >>"$log"; rm -f "$out/chat.json"; }
fi

step "footprint and code size"
(cd "$root" && cargo run --quiet --release -p aeschat-core --example footprint) >"$out/footprint.txt" 2>>"$log"
cp "$root/Cargo.lock" "$root/nostd-check/Cargo.lock" # as nostd-check/run.sh does
cargo build --release --manifest-path "$root/nostd-check/Cargo.toml" \
    --target-dir "$root/target/nostd-check" >>"$log" 2>&1
cc -O2 -o "$out/nostd-driver" "$root/nostd-check/driver.c" \
    "$root/target/nostd-check/release/libaeschat_nostd_check.a" -Wl,--gc-sections
"$out/nostd-driver" >>"$log"
printf 'int main(void) { return 0; }\n' >"$out/empty.c"
cc -O2 -o "$out/empty" "$out/empty.c" -Wl,--gc-sections

step "report"
{
    echo "Machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores. Load average (1, 5, 15 min)" \
        "before the run: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg)."
    echo
    python3 "$root/bench/report.py" "$CRITERION_HOME" "$out/peers.json" "$out/footprint.txt" \
        "$out/nostd-driver" "$out/empty" "$out/chat.json"
} | tee "$out/report.md"
