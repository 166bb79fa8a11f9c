#!/usr/bin/env python3
"""Two builds of aeschat side by side in one run: the chat's one-way rates (64 B and 4 KiB lines)
and round trip, measured by chat.py's own functions, alternating between the builds round by
round so that a busy machine slows both alike. For a change that must not regress the chat.

Usage: chat_ab.py BEFORE_BINARY AFTER_BINARY [ROUNDS]   (prints a markdown table)
"""

import statistics
import sys

BEFORE, AFTER = sys.argv[1], sys.argv[2]
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 3
sys.argv = [sys.argv[0], BEFORE, "--quick"]
import chat  # noqa: E402  (reads its binary from sys.argv at import)


def measure(binary):
    chat.AESCHAT = binary
    rates = {}
    for size in (64, 4096):
        messages = chat.MESSAGES[("aeschat", size)] // 4
        rates[size], _ = chat.one_way("aeschat", size, messages)
    times, _ = chat.round_trips("aeschat", chat.ECHOES)
    return rates, statistics.median(times), chat.percentile(times, 0.99)


def main():
    runs = {"before": [], "after": []}
    for _ in range(ROUNDS):
        for label, binary in (("before", BEFORE), ("after", AFTER)):
            runs[label].append(measure(binary))
    print("| build | 64 B lines/s | 4 KiB lines/s | round trip median | round trip p99 |")
    print("|---|---:|---:|---:|---:|")
    for label in ("before", "after"):
        rows = runs[label]
        small = statistics.median(r[0][64] for r in rows)
        large = statistics.median(r[0][4096] for r in rows)
        median = statistics.median(r[1] for r in rows)
        p99 = statistics.median(r[2] for r in rows)
        print(f"| {label} | {small:,.0f} | {large:,.0f} | {median * 1e6:.0f} µs | {p99 * 1e6:.0f} µs |")


if __name__ == "__main__":
    main()
