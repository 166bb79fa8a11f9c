#!/usr/bin/env python3
"""The peers outside Rust, on the same inputs as the Rust benchmarks (bench/src/lib.rs): Python
`cryptography`'s Fernet at each plaintext size, and `openssl speed` for AES-128-CBC and
HMAC-SHA256 (the ceiling). Prints one JSON object: seconds per operation (median of repeats), and bytes/s.

Usage: python3 bench/peers.py [--quick]
"""

import json
import re
import statistics
import subprocess
import sys
import timeit

from cryptography.fernet import Fernet

KEY = b"cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4="
SIZES = [16, 256, 4 << 10, 64 << 10, 1 << 20]
QUICK = "--quick" in sys.argv


def plaintext(n):
    """The same bytes as aeschat_bench::plaintext."""
    return bytes(i % 251 for i in range(n))


def per_call(fn, seconds=0.4 if QUICK else 1.0, repeats=5):
    """Median seconds per call over `repeats` runs of about `seconds` / `repeats` each."""
    timer = timeit.Timer(fn)
    number, took = 1, 0.0
    while took < seconds / repeats / 4:
        number *= 2
        took = timer.timeit(number)
    number = max(1, int(number * (seconds / repeats) / took))
    return statistics.median(t / number for t in timer.repeat(repeats, number))


def openssl_speed(*args):
    """Bytes per second from `openssl speed -mr` at 16 KiB blocks."""
    out = subprocess.run(
        ["openssl", "speed", *args, "-bytes", "16384", "-seconds", "1", "-mr"],
        capture_output=True, text=True, check=True,
    ).stdout
    rates = re.findall(r"^\+F:\d+:[^:]+:([0-9.]+)", out, re.M)
    return float(rates[-1])


def main():
    fernet = Fernet(KEY)
    result = {"python": sys.version.split()[0], "cryptography": __import__("cryptography").__version__}
    tokens = {}
    for n in SIZES:
        data = plaintext(n)
        token = fernet.encrypt(data)
        assert fernet.decrypt(token) == data
        tokens[str(n)] = {
            "encrypt": per_call(lambda: fernet.encrypt(data)),
            "decrypt": per_call(lambda: fernet.decrypt(token)),
        }
    result["fernet"] = tokens

    result["openssl_version"] = subprocess.run(
        ["openssl", "version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    result["openssl_aes_cbc_encrypt"] = openssl_speed("-evp", "aes-128-cbc")
    result["openssl_aes_cbc_decrypt"] = openssl_speed("-evp", "aes-128-cbc", "-decrypt")
    result["openssl_hmac_sha256"] = openssl_speed("-hmac", "sha256")
    json.dump(result, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
