#!/usr/bin/env python3
"""The chat between two aeschat processes over loopback TCP: how long a client takes from start
to an established session (at 1,000 PBKDF2 iterations and at the default 600,000), and how many
256-byte messages per second go from the client's standard input to the server's standard output.

Usage: chat.py PATH_TO_AESCHAT [--quick]   (prints JSON rows for report.py)
"""

import json
import os
import re
import subprocess
import sys
import threading
import time

AESCHAT = sys.argv[1]
QUICK = "--quick" in sys.argv
MESSAGES = 2000 if QUICK else 10000
LINE = b"m" * 255 + b"\n"  # 256 bytes on the wire per message, newline included
ENV = dict(os.environ, AESCHAT_PASSWORD="a benchmark passphrase, long and random enough")


def wait_for(stream, pattern, timeout=120):
    """Reads lines from `stream` until one matches; returns the match."""
    deadline = time.monotonic() + timeout
    for raw in iter(stream.readline, b""):
        line = raw.decode(errors="replace")
        match = re.search(pattern, line)
        if match:
            return match
        if time.monotonic() > deadline:
            break
    raise RuntimeError(f"never saw {pattern!r}")


def conversation(iterations, messages):
    """Returns (seconds from client start to connected, seconds to deliver `messages`)."""
    flags = ["--insecure-kdf-iterations", str(iterations)]
    server = subprocess.Popen(
        [AESCHAT, "server", "--listen", "127.0.0.1:0", "--once", *flags],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV,
    )
    try:
        port = wait_for(server.stderr, r"listening on 127\.0\.0\.1:(\d+)").group(1)
        threading.Thread(target=lambda: server.stderr.read(), daemon=True).start()
        started = time.perf_counter()
        client = subprocess.Popen(
            [AESCHAT, "client", "--connect", f"127.0.0.1:{port}", *flags],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV,
        )
        wait_for(client.stderr, r"\[\+\] Connected")
        connected = time.perf_counter() - started
        threading.Thread(target=lambda: client.stderr.read(), daemon=True).start()
        received = 0
        sending = time.perf_counter()
        writer = threading.Thread(target=lambda: (client.stdin.write(LINE * messages), client.stdin.flush()))
        writer.start()
        while received < messages:
            line = server.stdout.readline()
            if not line:
                raise RuntimeError(f"the server stopped after {received} messages")
            received += 1
        delivered = time.perf_counter() - sending
        writer.join()
        client.stdin.close()
        client.wait(timeout=60)
        return connected, delivered
    finally:
        for process in (server,):
            if process.poll() is None:
                process.stdin.close()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()


def main():
    runs = 2 if QUICK else 3
    low = [conversation(1000, MESSAGES) for _ in range(runs)]
    connect_low = sorted(c for c, _ in low)[runs // 2]
    deliver = sorted(d for _, d in low)[runs // 2]
    connect_default, _ = conversation(600_000, 10)
    rows = [
        {"what": "chat, two aeschat processes over loopback TCP: client start to connected, 1,000 iterations",
         "value": f"{connect_low * 1e3:.1f} ms"},
        {"what": "the same at the default 600,000 iterations",
         "value": f"{connect_default * 1e3:.0f} ms"},
        {"what": f"chat: {MESSAGES:,} messages of 256 bytes, client stdin to server stdout, per message",
         "value": f"{deliver / MESSAGES * 1e6:.1f} µs",
         "ratio": f"{MESSAGES / deliver / 1e3:.1f} k messages/s"},
    ]
    json.dump({"rows": rows}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
