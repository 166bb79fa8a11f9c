#!/usr/bin/env python3
"""Turns one run's measurements into the markdown ratio table that docs/PERFORMANCE.md quotes.

Reads criterion's results (CRITERION_HOME), peers.py's JSON, the footprint example's output and
the no_std binary; run by bench/run.sh, which says where each is.

Usage: report.py CRITERION_DIR PEERS_JSON FOOTPRINT_TXT NOSTD_BINARY EMPTY_BINARY [CHAT_JSON]
"""

import json
import pathlib
import re
import subprocess
import sys
from collections import defaultdict

SIZES = [16, 256, 4 << 10, 64 << 10, 1 << 20]


def label(n):
    if n >= 1 << 20:
        return f"{n >> 20} MiB"
    if n >= 1 << 10:
        return f"{n >> 10} KiB"
    return f"{n} B"


def token_raw_len(n):
    """Bytes under the base64: version, time, IV, padded ciphertext, tag."""
    return 1 + 8 + 16 + (n // 16 + 1) * 16 + 32


def load_criterion(root):
    """Median seconds per iteration (per element for throughput in elements) by full id."""
    results = {}
    for bench in pathlib.Path(root).glob("**/new/benchmark.json"):
        meta = json.loads(bench.read_text())
        estimates = json.loads((bench.parent / "estimates.json").read_text())
        results[meta["full_id"]] = estimates["median"]["point_estimate"] * 1e-9
    return results


def fmt_rate(x):
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    if x >= 1e3:
        return f"{x / 1e3:.1f} k"
    return f"{x:.1f} "


def fmt_time(s):
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.1f} ms"
    return f"{s * 1e6:.1f} µs"


def code_size(binary, empty):
    """Text bytes of the linked no_std binary, and by crate (from the symbol names)."""
    def text(path):
        out = subprocess.run(["size", path], capture_output=True, text=True, check=True).stdout
        return int(out.splitlines()[1].split()[0])

    by_crate = defaultdict(int)
    nm = subprocess.run(["nm", "-C", "-S", "--size-sort", binary], capture_output=True,
                        text=True, check=True).stdout
    for line in nm.splitlines():
        parts = line.split(None, 3)
        if len(parts) < 4 or parts[2] not in "tTrR":
            continue
        size, kind, name = int(parts[1], 16), parts[2], parts[3]
        match = re.search(r"([A-Za-z_][A-Za-z0-9_]*)::", name)
        crate = match.group(1) if match else ("nostd-check" if name.startswith("aeschat_nostd") else "C driver, libc start-up")
        if kind in "rR":
            crate += " (read-only data)"
        by_crate[crate] += size
    return text(binary), text(empty), dict(by_crate)


def print_chat(chat, check):
    """The chat against the Python stand-in (bench/chat.py, bench/legacy_chat.py)."""
    one_way, trips, peaks = chat["one_way"], chat["round_trip"], chat["peak_rss"]
    print("Two processes over loopback TCP, driven through their standard input and output by the same")
    print("harness (`bench/chat.py`): aeschat against `bench/legacy_chat.py`, a stand-in for the Python")
    print("chat it replaces (PBKDF2 with a static salt to a Fernet key, one token per line, a receiving")
    print("thread). The stand-in at 1,000 PBKDF2 iterations; key setup is not in any rate (see above).")
    print("*One-way*: N lines written into the client's stdin, (N - 1) / time from the first to the last")
    print("line on the server's stdout, median of runs. *Round trip*: harness → client stdin → server")
    print("stdout → harness → server stdin → client stdout → harness, per 64-byte echo, after a warm-up.")
    print("*Peak memory*: VmHWM of each process, read while it runs, highest over all runs.")
    print()
    print("| measure | aeschat | Python stand-in | aeschat ÷ Python |")
    print("|---|---:|---:|---:|")
    for size in (64, 4096):
        ours, theirs = one_way[f"aeschat/{size}"], one_way[f"python/{size}"]
        ratio = ours["median"] / theirs["median"]
        print(f"| one-way messages/s, {label(size)} ({ours['messages']:,} and {theirs['messages']:,} messages) | "
              f"{fmt_rate(ours['median'])} | {fmt_rate(theirs['median'])} | {ratio:.0f}× |")
        if size == 64:
            check("chat 64 B: ≥ 20× the Python stand-in's messages/s", ratio >= 20, f"{ratio:.0f}×")
    ours, theirs = trips["aeschat"], trips["python"]
    for stat in ("median", "p99"):
        print(f"| round trip, {stat} ({ours['echoes']:,} echoes) | {fmt_time(ours[stat])} | "
              f"{fmt_time(theirs[stat])} | {ours[stat] / theirs[stat]:.2f}× |")
    median = ours["median"] / theirs["median"]
    check("chat round trip median ≤ 0.5× the Python stand-in's", median <= 0.5, f"{median:.2f}×")
    for side in ("server", "client"):
        print(f"| peak memory, {side} | {peaks['aeschat'][side] / 2**20:.1f} MiB | "
              f"{peaks['python'][side] / 2**20:.1f} MiB | |")
    peak = max(peaks["aeschat"].values())
    check("chat: peak memory of each process ≤ 8 MiB", peak <= 8 << 20, f"{peak / 2**20:.1f} MiB")
    print()
    rates = "; ".join(f"{key}: " + ", ".join(fmt_rate(r) for r in value["rates"])
                      for key, value in one_way.items())
    print(f"Every one-way run, messages/s: {rates}.")


def main():
    crit = load_criterion(sys.argv[1])
    peers = json.loads(pathlib.Path(sys.argv[2]).read_text())
    footprint = pathlib.Path(sys.argv[3]).read_text()
    binary, empty = sys.argv[4], sys.argv[5]
    chat = json.loads(pathlib.Path(sys.argv[6]).read_text()) if len(sys.argv) > 6 and pathlib.Path(sys.argv[6]).exists() else None
    aes_enc, aes_dec = peers["openssl_aes_cbc_encrypt"], peers["openssl_aes_cbc_decrypt"]
    hmac = peers["openssl_hmac_sha256"]
    targets = []

    def check(name, ok, detail):
        targets.append((name, ok, detail))

    print("### Tokens")
    print()
    print("Median CPU time of the benchmarking thread per token, every implementation of a size measured interleaved")
    print("(rounds of one batch each, `bench/benches/tokens.rs`); tokens/s and MB/s (10^6 bytes of plaintext per second)")
    print("of aeschat's `encrypt`/`decrypt` with a `Key`: a fresh random IV (from an `IvPool`, one `getrandom` call per")
    print("256 IVs) and a clock read per token; `fernet` reads the clock and calls `getrandom` inside `encrypt`.")
    print("Ratios are aeschat's rate over the peer's. *syscall IV*: aeschat with one `getrandom` call per token, as")
    print("`fernet`. *prepared*: with a `PreparedKey`.")
    print("*ceiling*: AES-128-CBC and HMAC-SHA256 at `openssl speed` rates plus the `base64` crate on")
    print("the token's bytes, all measured in this run; *% ceil.* is that time over aeschat's.")
    print()
    print("| op | size | aeschat tokens/s | aeschat MB/s | ÷ fernet | syscall IV ÷ fernet | prepared ÷ fernet | ÷ Python | % ceil. | % crypto-only ceil. |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for op in ["encrypt", "decrypt"]:
        for n in SIZES:
            g = f"{op}/{label(n)}"
            ours, prep, theirs = crit[f"{g}/aeschat"], crit[f"{g}/aeschat-prepared"], crit[f"{g}/fernet"]
            py = peers["fernet"][str(n)][op]
            raw = token_raw_len(n)
            crypto = (raw - 57) / (aes_enc if op == "encrypt" else aes_dec) + (raw - 32) / hmac
            ceiling = crypto + crit[f"{g}/base64"]
            r_fernet, r_prep, r_py = theirs / ours, theirs / prep, py / ours
            syscall = crit.get(f"{g}/aeschat-syscall-iv")
            r_sys = f"{theirs / syscall:.2f}×" if syscall else "—"
            print(f"| {op} | {label(n)} | {fmt_rate(1 / ours)} | {n / ours / 1e6:.1f} | {r_fernet:.2f}× | {r_sys} | {r_prep:.2f}× | {r_py:.0f}× | {ceiling / ours * 100:.0f}% | {crypto / ours * 100:.0f}% |")
            goal = 1.5 if n in (16, 256) else 1.2
            extra = f"; syscall IV {r_sys}" if syscall else ""
            check(f"{op} {label(n)}: ≥ {goal}× fernet tokens/s", r_fernet >= goal, f"{r_fernet:.2f}× (prepared key {r_prep:.2f}×{extra})")
            if n >= 64 << 10:
                check(f"{op} {label(n)}: ≥ 70% of the crypto-only ceiling", crypto / ours >= 0.7, f"{crypto / ours * 100:.0f}% (with base64 {ceiling / ours * 100:.0f}%)")
            if n == 256:
                check(f"{op} 256 B: ≥ 20× Python cryptography", r_py >= 20, f"{r_py:.0f}×")
    print()
    print("Peers at the same sizes, tokens/s:")
    print()
    print("| op | " + " | ".join(label(n) for n in SIZES) + " |")
    print("|---|" + "---:|" * len(SIZES))
    for op in ["encrypt", "decrypt"]:
        for who in ["aeschat", "aeschat-syscall-iv", "aeschat-prepared", "fernet"]:
            if f"{op}/{label(SIZES[0])}/{who}" in crit:
                print(f"| {op}, {who} | " + " | ".join(fmt_rate(1 / crit[f'{op}/{label(n)}/{who}']) for n in SIZES) + " |")
        print(f"| {op}, Python cryptography {peers['cryptography']} | " + " | ".join(fmt_rate(1 / peers['fernet'][str(n)][op]) for n in SIZES) + " |")
    print()
    print(f"OpenSSL ({peers['openssl_version'].split(' (')[0]}) in this run: AES-128-CBC encrypt {aes_enc / 1e6:.0f} MB/s, "
          f"decrypt {aes_dec / 1e6:.0f} MB/s, HMAC-SHA256 {hmac / 1e6:.0f} MB/s (16 KiB blocks). "
          f"A random IV and a clock read cost {fmt_time(crit['overhead/iv+clock'])} per token with a `getrandom` call per IV, "
          f"{fmt_time(crit['overhead/pooled-iv+clock'])} from an `IvPool`.")
    print()

    print("### Key derivation and handshake")
    print()
    print("| what | time | ratio |")
    print("|---|---:|---:|")
    print(f"| one side's key derivation (`Engine::derive_keys`: CPace's second half + HKDF), a client | {fmt_time(crit['derive_keys/client'])} | |")
    print(f"| full password handshake, two engines in one thread (the shared test pair) | {fmt_time(crit['handshake/in-memory/password'])} | |")
    print(f"| full password handshake, two threads, core driver over an in-memory pipe | {fmt_time(crit['handshake/threads/password'])} | |")
    records = crit["session/records/256 B"] / 1000  # criterion's iteration is 1,000 records
    print(f"| 256-byte records between two threads (seal, send, receive, open), per record | {fmt_time(records)} | {fmt_rate(1 / records)}records/s |")
    if chat:
        print(f"| chat, two aeschat processes over loopback TCP: client start to connected | {fmt_time(chat['connect'])} | |")
    print()

    print("### Chat")
    print()
    if chat:
        print_chat(chat, check)
    else:
        print("Not measured: the `aeschat` binary was not built.")
    print()

    print("### Footprint")
    print()
    total, base, crates = code_size(binary, empty)
    print(f"Code: the no_std check (nostd-check, `panic = \"abort\"`, release) linked into its C driver with")
    print(f"`--gc-sections`: {total:,} bytes of text, of which {total - base:,} are more than an empty C program's")
    print("(everything the driver calls: tokens, keys, keyring, session, handshake, errors).")
    print()
    print("| crate | text + read-only bytes |")
    print("|---|---:|")
    for crate, size in sorted(crates.items(), key=lambda kv: -kv[1])[:12]:
        print(f"| {crate} | {size:,} |")
    print()
    print("RAM (`cargo run --release -p aeschat-core --example footprint`):")
    print()
    print("```")
    print(footprint.strip())
    print("```")
    small = re.search(r"256-byte messages.*?total, one thread\s+(\d+) B", footprint, re.S)
    small = int(small.group(1))
    check("256-byte session ≤ 4 KiB of RAM besides the stack", small <= 4096, f"{small:,} B")
    print()

    print("### Targets")
    print()
    print("| target | met | measured |")
    print("|---|---|---|")
    for name, ok, detail in targets:
        print(f"| {name} | {'yes' if ok else '**no**'} | {detail} |")


if __name__ == "__main__":
    main()
