#!/usr/bin/env python3
"""Connecting over loopback TCP, protocol 2 against protocol 1, with the real binaries.

For docs/PERFORMANCE.md, section "Protocol 2 (issue 13)". Each run starts `aeschat server
--listen 127.0.0.1:0 --once`, then `aeschat client --connect` to it, and times the client from
its start to its "[+] Connected" line (process start-up, TCP connect, the whole handshake on
both sides, the terminal set-up), as bench/chat.py's connect figure does. The password comes
from AESCHAT_PASSWORD. The variants run alternately (A, B, C, A, B, C ...):

- protocol 2: the binary built from this tree (no iteration count: protocol 2 has none);
- protocol 1 at its default 600,000 PBKDF2 iterations (its real cost);
- protocol 1 at 1,000 iterations (`--insecure-kdf-iterations 1000`, as chat.py runs it).

Usage (from the repository root):
    python3 bench/connect_ab.py P2_AESCHAT P1_AESCHAT [RUNS, default 9]
Prints, per variant, the median, lowest and highest time in milliseconds.
"""

import os
import re
import statistics
import subprocess
import sys
import time

ENV = dict(os.environ, AESCHAT_PASSWORD="a benchmark passphrase, long and random enough")


def wait_for(stream, pattern, timeout=60):
    """Reads lines from `stream` until one matches; returns the match."""
    deadline = time.monotonic() + timeout
    for raw in iter(stream.readline, b""):
        match = re.search(pattern, raw.decode(errors="replace"))
        if match:
            return match
        if time.monotonic() > deadline:
            break
    raise RuntimeError(f"never saw {pattern!r}")


def connect_once(binary, extra):
    pipes = dict(stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    server = subprocess.Popen([binary, "server", "--listen", "127.0.0.1:0", "--once", *extra], **pipes)
    client = None
    try:
        port = wait_for(server.stderr, r"[Ll]istening on 127\.0\.0\.1:(\d+)").group(1)
        started = time.perf_counter()
        client = subprocess.Popen([binary, "client", "--connect", f"127.0.0.1:{port}", *extra], **pipes)
        wait_for(client.stderr, r"\[\+\] Connected")
        elapsed = time.perf_counter() - started
        wait_for(server.stderr, r"\[\+\] Client connected")
        return elapsed
    finally:
        for process in (client, server):
            if process is not None:
                process.stdin.close()
        for process in (client, server):
            if process is None:
                continue
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def main():
    p2, p1 = sys.argv[1], sys.argv[2]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 9
    variants = {
        "protocol 2": (p2, []),
        "protocol 1, 600,000 iterations (default)": (p1, []),
        "protocol 1, 1,000 iterations": (p1, ["--insecure-kdf-iterations", "1000"]),
    }
    times = {name: [] for name in variants}
    for name, (binary, extra) in variants.items():  # warm-up: page cache, first start
        connect_once(binary, extra)
    for _ in range(runs):
        for name, (binary, extra) in variants.items():
            times[name].append(connect_once(binary, extra))
    print(f"| client start to connected, loopback TCP ({runs} runs each, alternating) | median | lowest–highest |")
    print("|---|---:|---:|")
    for name, values in times.items():
        ms = sorted(v * 1e3 for v in values)
        print(f"| {name} | {statistics.median(ms):.1f} ms | {ms[0]:.1f}–{ms[-1]:.1f} ms |")


if __name__ == "__main__":
    main()
