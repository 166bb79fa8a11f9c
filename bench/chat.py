#!/usr/bin/env python3
"""The chat between two processes over loopback TCP, aeschat against the Python stand-in for the
project it replaces (bench/legacy_chat.py), both driven the same way through the standard input
and output of the real processes:

- one-way messages/s: N lines of 64 B or 4 KiB (newline not counted) written into the client's
  standard input as fast as it takes them; the server's standard output is read line by line,
  and the rate is (N - 1) over the time from the first line's arrival to the last's, so
  connecting and start-up are not in it. Median of several runs. The peak resident memory
  (VmHWM) of each process is read while it is still running, after the last line.
- round trip: an echo over both processes. The harness writes a 64-byte line into the client's
  standard input, reads it from the server's standard output, writes it back into the server's
  standard input and reads it from the client's standard output; one round trip is the time
  from the first write to the last read. Median and 99th percentile over a few thousand echoes,
  after a warm-up.
- connecting: how long an aeschat client takes from its start to an established session (not
  part of any rate above).

Both programs run with the same password; the stand-in derives its key with 1,000 PBKDF2
iterations (aeschat's protocol 2 stretches nothing: its handshake is a CPace PAKE).

Usage: chat.py PATH_TO_AESCHAT [--quick]   (prints JSON for report.py)
"""

import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time

AESCHAT = sys.argv[1]
QUICK = "--quick" in sys.argv
LEGACY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "legacy_chat.py")
ENV = dict(os.environ, AESCHAT_PASSWORD="a benchmark passphrase, long and random enough")
# The stand-in's PBKDF2 work factor (its own setting; aeschat has none).
LEGACY_ITERATIONS = "1000"
RUNS = 2 if QUICK else 3
ECHOES = 1000 if QUICK else 3000
WARMUP = 100 if QUICK else 300
# Messages per one-way run, by program and size: each run takes about a second or more.
MESSAGES = {
    ("aeschat", 64): 1_000_000,
    ("aeschat", 4096): 100_000,
    ("python", 64): 20_000,
    ("python", 4096): 10_000,
}


def payload(size, i=0):
    """`size` printable bytes, starting with a serial number so echoes can be matched."""
    head = f"{i:08d} ".encode()
    return (head + b"abcdefghijklmnopqrstuvwxyz0123456789" * (size // 36 + 1))[:size]


def command(program, role, address=None):
    if program == "aeschat":
        if role == "server":
            return [AESCHAT, "server", "--listen", "127.0.0.1:0", "--once"]
        return [AESCHAT, "client", "--connect", address]
    if role == "server":
        return [sys.executable, LEGACY, "server", "--listen", "127.0.0.1:0",
                "--iterations", LEGACY_ITERATIONS]
    return [sys.executable, LEGACY, "client", "--connect", address,
            "--iterations", LEGACY_ITERATIONS]


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


def drain(stream):
    threading.Thread(target=stream.read, daemon=True).start()


def peak_rss(process):
    """VmHWM of a running process, in bytes."""
    with open(f"/proc/{process.pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


class Pair:
    """A connected server and client of one program, with piped standard streams."""

    def __init__(self, program):
        self.program = program
        pipes = dict(stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
        self.server = subprocess.Popen(command(program, "server"), **pipes)
        self.client = None
        try:
            port = wait_for(self.server.stderr, r"[Ll]istening on 127\.0\.0\.1:(\d+)").group(1)
            started = time.perf_counter()
            self.client = subprocess.Popen(command(program, "client", f"127.0.0.1:{port}"), **pipes)
            wait_for(self.client.stderr, r"\[\+\] Connected")
            self.connect_time = time.perf_counter() - started
            wait_for(self.server.stderr, r"\[\+\] Client connected")
            drain(self.server.stderr)
            drain(self.client.stderr)
        except BaseException:
            self.close()
            raise

    def close(self):
        for process in (self.client, self.server):
            if process is None:
                continue
            try:
                process.stdin.close()
            except BrokenPipeError:
                pass
        for process in (self.client, self.server):
            if process is None:
                continue
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def one_way(program, size, messages):
    """(messages/s, peak RSS of the server, peak RSS of the client) for one run."""
    pair = Pair(program)
    try:
        line = payload(size) + b"\n"
        chunk = line * max(1, (64 << 10) // len(line))
        per_chunk = (64 << 10) // len(line) or 1

        def write():
            stdin = pair.client.stdin
            left = messages
            while left > 0:
                take = min(left, per_chunk)
                stdin.write(chunk if take == per_chunk else line * take)
                left -= take
            stdin.flush()

        writer = threading.Thread(target=write, daemon=True)
        expected = b"[Client]: " + line
        readline = pair.server.stdout.readline
        writer.start()
        first = readline()
        started = time.perf_counter()
        if first != expected:
            raise RuntimeError(f"{program}: unexpected output {first[:80]!r}")
        for received in range(1, messages):
            if readline() != expected:
                raise RuntimeError(f"{program}: the server printed something else after {received} messages")
        elapsed = time.perf_counter() - started
        writer.join()
        rss = (peak_rss(pair.server), peak_rss(pair.client))
        return (messages - 1) / elapsed, rss
    finally:
        pair.close()


def round_trips(program, echoes):
    """Seconds per round trip, after the warm-up, and the processes' peak RSS."""
    pair = Pair(program)
    try:
        times = []
        client_in, server_in = pair.client.stdin, pair.server.stdin
        server_out, client_out = pair.server.stdout.readline, pair.client.stdout.readline
        for i in range(WARMUP + echoes):
            text = payload(64, i)
            started = time.perf_counter()
            client_in.write(text + b"\n")
            client_in.flush()
            seen = server_out()
            server_in.write(seen[len(b"[Client]: "):])
            server_in.flush()
            back = client_out()
            took = time.perf_counter() - started
            if back != b"[Server]: " + text + b"\n":
                raise RuntimeError(f"{program}: echo {i} came back as {back[:80]!r}")
            if i >= WARMUP:
                times.append(took)
        return times, (peak_rss(pair.server), peak_rss(pair.client))
    finally:
        pair.close()


def connect_time():
    pair = Pair("aeschat")
    pair.close()
    return pair.connect_time


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main():
    result = {"one_way": {}, "round_trip": {}, "peak_rss": {}}
    for program in ("aeschat", "python"):
        rss = [0, 0]
        for size in (64, 4096):
            messages = MESSAGES[(program, size)] // (4 if QUICK else 1)
            runs = [one_way(program, size, messages) for _ in range(RUNS)]
            result["one_way"][f"{program}/{size}"] = {
                "messages": messages,
                "rates": [rate for rate, _ in runs],
                "median": statistics.median(rate for rate, _ in runs),
            }
            for _, (server, client) in runs:
                rss = [max(rss[0], server), max(rss[1], client)]
        times, (server, client) = round_trips(program, ECHOES)
        result["round_trip"][program] = {
            "echoes": len(times),
            "median": statistics.median(times),
            "p99": percentile(times, 0.99),
        }
        rss = [max(rss[0], server), max(rss[1], client)]
        result["peak_rss"][program] = {"server": rss[0], "client": rss[1]}
    runs = 3
    result["connect"] = statistics.median(connect_time() for _ in range(runs))
    json.dump(result, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
