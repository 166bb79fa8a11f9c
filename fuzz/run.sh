#!/usr/bin/env bash
# Runs fuzz targets for a fixed time each and reports, per target, the executions and whether it
# crashed. Exits non-zero if any target crashed (a panic, a sanitizer report, a timeout or
# running out of memory all count).
#
# Usage: fuzz/run.sh SECONDS [TARGET...]      (all targets when none are named)
#
# Works from a clean clone: it installs cargo-fuzz if missing and writes the seed corpora from
# the vectors. Needs a nightly toolchain (cargo-fuzz uses -Zsanitizer; no rust-src needed).
# Environment: FUZZ_TOOLCHAIN (default nightly), FUZZ_TIMEOUT (seconds one input may take
# before it counts as a hang, default 20), FUZZ_LOG_DIR (default fuzz/logs), FUZZ_BUILD_FLAGS
# (extra `cargo fuzz build` options, e.g. "--codegen-units 16", which compiles about twice as
# fast on two cores for somewhat slower fuzzing: right for short CI runs).
#
# Corpora grow in fuzz/corpus/<target>/ (only the seed-* files there are committed).
# Inputs in fuzz/regressions/<target>/ are replayed every run and never written to.
# A crashing input is saved under fuzz/artifacts/<target>/; the summary gives the command that
# reproduces it.
set -euo pipefail

usage() {
    echo "usage: $0 SECONDS [TARGET...]" >&2
    exit 2
}

[[ $# -ge 1 && $1 =~ ^[0-9]+$ && $1 -gt 0 ]] || usage
seconds=$1
shift

fuzz_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$fuzz_dir")"
cd "$root"

toolchain=${FUZZ_TOOLCHAIN:-nightly}
timeout=${FUZZ_TIMEOUT:-20}
log_dir=${FUZZ_LOG_DIR:-$fuzz_dir/logs}
cargo_fuzz=(cargo "+$toolchain" fuzz)
# The same flags for build and run, or `cargo fuzz run` would rebuild with its defaults.
read -r -a build_flags <<<"${FUZZ_BUILD_FLAGS:-}"

if ! "${cargo_fuzz[@]}" --version >/dev/null 2>&1; then
    echo "cargo-fuzz not found: installing it" >&2
    cargo install cargo-fuzz --locked --version 0.13.2
fi

if command -v python3 >/dev/null; then
    # A failure here must not stop the fuzzing: the corpora already hold the committed seeds.
    if ! python3 "$fuzz_dir/seed_corpus.py" >/dev/null; then
        echo "warning: seed_corpus.py failed; fuzzing with the committed seeds" >&2
    fi
else
    echo "python3 not found: fuzzing without refreshing the seed corpora" >&2
fi

if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    mapfile -t targets < <("${cargo_fuzz[@]}" list)
fi

# Build up front, so the timed runs measure fuzzing, not compiling: all targets in one cargo
# invocation when all are run, else just the ones named.
if [[ $# -eq 0 ]]; then
    "${cargo_fuzz[@]}" build "${build_flags[@]}"
else
    for target in "${targets[@]}"; do
        "${cargo_fuzz[@]}" build "${build_flags[@]}" "$target"
    done
fi

mkdir -p "$log_dir"
crashed=()
summary=()
for target in "${targets[@]}"; do
    corpus="$fuzz_dir/corpus/$target"
    mkdir -p "$corpus"
    corpora=("$corpus")
    if [[ -d $fuzz_dir/regressions/$target ]]; then
        corpora+=("$fuzz_dir/regressions/$target")
    fi
    log="$log_dir/$target.log"
    echo "fuzzing $target for ${seconds}s (log: $log)" >&2
    start=$(date +%s)
    if "${cargo_fuzz[@]}" run "${build_flags[@]}" "$target" "${corpora[@]}" -- \
        -max_total_time="$seconds" -timeout="$timeout" -print_final_stats=1 >"$log" 2>&1; then
        status=0
    else
        status=$?
    fi
    elapsed=$(($(date +%s) - start))

    # libFuzzer ends a clean run with "Done N runs in S second(s)"; after a crash it still
    # prints its final statistics, so the executions are known either way. (Once, in a long
    # run, these last lines were not yet readable when the run returned: look a few times.)
    for _ in 1 2 3 4 5; do
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
        done_line=$(grep -E '^Done [0-9]+ runs in [0-9]+ second' "$log" | tail -n 1 || true)
        [[ -n $runs || -n $done_line ]] && break
        sleep 1
    done
    if [[ -n $done_line ]]; then
        runs=$(awk '{ print $2 }' <<<"$done_line")
        elapsed=$(awk '{ print $5 }' <<<"$done_line")
    fi
    # The last status line holds libFuzzer's coverage counters and in-memory corpus size.
    status_line=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
    cov=$(grep -oE 'cov: [0-9]+' <<<"$status_line" | awk '{ print $2 }' || true)
    corp=$(grep -oE 'corp: [0-9]+/[0-9]+[a-zA-Z]*' <<<"$status_line" | awk '{ print $2 }' || true)

    # The exit status decides: libFuzzer exits non-zero on a crash, a hang or running out of
    # memory, and cargo-fuzz passes that on.
    if [[ $status -eq 0 ]]; then
        result="ok"
    else
        artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
        result="CRASH (exit $status)"
        if [[ -n $artifact ]]; then
            result="$result: $artifact; reproduce: cargo +$toolchain fuzz run $target $artifact"
        else
            result="$result: see $log"
        fi
        crashed+=("$target")
    fi
    summary+=("$(printf '%-18s %12s runs %6ss  cov %-5s corpus %-12s %s' \
        "$target" "${runs:-?}" "$elapsed" "${cov:-?}" "${corp:-?}" "$result")")
    echo "${summary[-1]}" >&2
done

echo
echo "fuzz summary (${seconds}s per target):"
printf '%s\n' "${summary[@]}"
if [[ ${#crashed[@]} -gt 0 ]]; then
    echo "crashed: ${crashed[*]}" >&2
    exit 1
fi
