#!/usr/bin/env bash
# Protocol 2 (this tree) against protocol 1 (a copy of 0854a3f, the last protocol-1 main),
# handshake times side by side:
# the figures of docs/PERFORMANCE.md, section "Protocol 2 (issue 13)".
#
#  1. Builds bench/examples/handshake_ab.rs against this tree's core, and the same file against
#     a copy of protocol 1's tree (`git archive 0854a3f` into target/p1, or P1_DIR if set),
#     there compiled with `--cfg protocol1` so it can set PBKDF2's iteration count.
#  2. Runs the two binaries alternately, ROUNDS times (A, B, A, B ...), each case for SECONDS:
#     a successful handshake in password and key mode, a wrong password, a stranger's
#     ClientHello answered, the shared test pair; protocol 1 at 1 PBKDF2 iteration (the
#     protocol's own cost) and at its default 600,000 (its real cost).
#  3. Prints a markdown table: per case and part, the median over the runs of each run's median,
#     with the lowest and highest run median, and the quartiles of the middle run.
#
# Usage: bash bench/handshake_ab.sh [ROUNDS, default 5] [SECONDS, default 1]
# Environment: P1_REF (default 0854a3f), P1_DIR (a checkout of protocol 1 to build instead).
# Raw results: target/bench/handshake_ab.jsonl. Needs cargo, git, python3.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rounds="${1:-5}"
seconds="${2:-1}"
out="$root/target/bench"
mkdir -p "$out"

p1="${P1_DIR:-$root/target/p1}"
if [[ -z "${P1_DIR:-}" ]]; then
    rm -rf "$p1"
    mkdir -p "$p1"
    git -C "$root" archive "${P1_REF:-0854a3f}" | tar -x -C "$p1"
fi
cp "$root/bench/examples/handshake_ab.rs" "$p1/bench/examples/handshake_ab.rs"

echo "-- building protocol 2 ($root)" >&2
(cd "$root/bench" && cargo build --quiet --release --example handshake_ab)
echo "-- building protocol 1 ($p1, --cfg protocol1)" >&2
(cd "$p1/bench" && cargo rustc --quiet --release --example handshake_ab -- --cfg protocol1)

# Each bench workspace's target directory is ../target/bench (bench/.cargo/config.toml).
p2_bin="$root/target/bench/release/examples/handshake_ab"
p1_bin="$p1/target/bench/release/examples/handshake_ab"

results="$out/handshake_ab.jsonl"
: >"$results"
{
    echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >&2
for round in $(seq 1 "$rounds"); do
    echo "-- round $round of $rounds" >&2
    for case in password key wrong stranger pair; do
        "$p2_bin" "$case" "$seconds" >>"$results"
        case "$case" in
        password | wrong | pair) "$p1_bin" "$case" "$seconds" 1 >>"$results" ;;
        *) "$p1_bin" "$case" "$seconds" >>"$results" ;;
        esac
    done
    # Protocol 1 at its default iteration count: one PBKDF2 per side, about 70 ms each.
    "$p1_bin" password "$seconds" >>"$results"
    "$p1_bin" wrong "$seconds" >>"$results"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

python3 - "$results" <<'EOF'
import json, statistics, sys
from collections import defaultdict

runs = defaultdict(list)
for line in open(sys.argv[1]):
    r = json.loads(line)
    runs[(r["protocol"], r["case"], r["part"])].append(r)

def show(ns):
    return f"{ns / 1e6:.2f} ms" if ns >= 1e6 else f"{ns / 1e3:.1f} µs"

print("| protocol | case | part | median of run medians | lowest–highest run | quartiles (middle run) | samples per run |")
print("|---|---|---|---:|---:|---:|---:|")
for (protocol, case, part), rs in sorted(runs.items(), key=lambda kv: (kv[0][1], kv[0][0], kv[0][2])):
    medians = sorted(r["median_ns"] for r in rs)
    mid = sorted(rs, key=lambda r: r["median_ns"])[len(rs) // 2]
    print(f"| {protocol} | {case} | {part} | {show(statistics.median(medians))} | "
          f"{show(medians[0])}–{show(medians[-1])} | {show(mid['q1_ns'])}–{show(mid['q3_ns'])} | "
          f"{min(r['n'] for r in rs)}–{max(r['n'] for r in rs)} |")
EOF
