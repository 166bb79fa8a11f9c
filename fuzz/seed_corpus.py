#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets from the Fernet vectors.

Usage, from anywhere: python3 fuzz/seed_corpus.py

Every seed is a file named `seed-*` in fuzz/corpus/<target>/; those are committed, while the
inputs libFuzzer adds next to them are ignored by git (see fuzz/.gitignore). The script is
deterministic and idempotent: rerunning it rewrites the same files, and it removes stale seeds.

- token_decrypt: every vector token (official and extended; generate, verify and invalid) with
  its key, TTL and clock, laid out as fuzz_targets/token_decrypt.rs documents. Seeds carry the
  vector's key, so mutation starts from tokens that pass the MAC (and from the invalid cases'
  exact faults).
- round_trip: the plaintext, IV and time of every generate vector.
- key_parse: every key in the vectors, and a few near misses of the format.
- frame_inbox: one frame of each kind, a record frame holding a vector token, and the bare
  legacy token the old chat sent.
- handshake_client, handshake_server, session_receiver, session_driver: the vectors hold
  nothing for them; one all-zero input, which these targets read as "every message genuine",
  so fuzzing starts from a complete handshake or session.
"""

import base64
import datetime
import json
import pathlib
import struct

FUZZ = pathlib.Path(__file__).resolve().parent
VECTORS = FUZZ.parent / "vectors"

# Vectors whose token or plaintext is larger than this are skipped, to keep the committed seeds
# small (only the one 65,536-byte case is affected); libFuzzer's default maximum input is 4 KiB.
MAX_SEED_LEN = 4096


def unix_time(value):
    """The extended set gives Unix seconds; the official set RFC 3339 strings."""
    if isinstance(value, int):
        return value
    return int(datetime.datetime.fromisoformat(value).timestamp())


def key_bytes(secret):
    return base64.urlsafe_b64decode(secret)


def vector_cases():
    """(file label, index, case) for every Fernet vector file (not the session transcripts
    that also live under vectors/)."""
    paths = sorted(VECTORS.glob("official/*.json")) + sorted(VECTORS.glob("extended/*.json"))
    for path in paths:
        label = f"{path.parent.name}-{path.stem}"
        for index, case in enumerate(json.loads(path.read_text(encoding="utf-8"))):
            yield label, index, case


def plaintext(case):
    if "src_hex" in case:
        return bytes.fromhex(case["src_hex"])
    return case["src"].encode("utf-8")


def iv(case):
    if "iv_hex" in case:
        return bytes.fromhex(case["iv_hex"])
    return bytes(case["iv"])


def token_decrypt_seeds():
    for label, index, case in vector_cases():
        token = case["token"].encode("utf-8")
        if len(token) > MAX_SEED_LEN:
            continue
        ttl = case.get("ttl_sec")
        flags = 1 if ttl is not None else 0
        now = unix_time(case["now"])
        # The second output buffer: 16 bytes, too small for most tokens.
        header = struct.pack(">BQQH", flags, ttl or 0, now, 16) + key_bytes(case["secret"])
        assert len(header) == 51
        yield f"{label}-{index:03}", header + token


def round_trip_seeds():
    for label, index, case in vector_cases():
        if "iv" not in case and "iv_hex" not in case:
            continue
        text = plaintext(case)
        if len(text) > MAX_SEED_LEN:
            continue
        time = unix_time(case["now"])
        header = iv(case) + struct.pack(">QQQQHB", time, 60, time, time, 0, 1)
        assert len(header) == 51
        yield f"{label}-{index:03}", header + text


def key_parse_seeds():
    secrets = sorted({case["secret"] for _, _, case in vector_cases()})
    for index, secret in enumerate(secrets):
        yield f"vector-key-{index:02}", secret.encode("ascii")
    official = b"cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4="
    near_misses = {
        "unpadded": official[:-1],
        "standard-alphabet": official.replace(b"_", b"/").replace(b"-", b"+"),
        "noncanonical-last-char": official[:42] + b"5=",
        "double-padding": official[:42] + b"==",
        "trailing-newline": official + b"\n",
    }
    for name, text in near_misses.items():
        yield name, text


def frame(kind, body):
    return struct.pack(">BI", kind, len(body)) + body


def frame_inbox_seeds():
    token = json.loads((VECTORS / "official" / "generate.json").read_text())[0]["token"]
    hello = b"AESCHAT" + bytes([1, 1]) + bytes(32) + bytes(8) + struct.pack(">I", 65536)
    yield "client-hello", frame(1, hello)
    yield "server-hello", frame(2, hello + struct.pack(">I", 600000))
    yield "client-finished", frame(3, bytes(32))
    yield "server-finished", frame(4, bytes(32))
    yield "record", frame(5, token.encode("ascii"))
    yield "alert", frame(6, bytes([5]))
    yield "two-frames", frame(6, bytes([1])) + frame(5, b"")
    yield "legacy-token", token.encode("ascii")


def all_genuine_seeds():
    yield "all-genuine", bytes(512)


TARGETS = {
    "token_decrypt": token_decrypt_seeds,
    "round_trip": round_trip_seeds,
    "key_parse": key_parse_seeds,
    "frame_inbox": frame_inbox_seeds,
    "handshake_client": all_genuine_seeds,
    "handshake_server": all_genuine_seeds,
    "session_receiver": all_genuine_seeds,
    "session_driver": all_genuine_seeds,
}


def main():
    for target, seeds in TARGETS.items():
        directory = FUZZ / "corpus" / target
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("seed-*"):
            stale.unlink()
        count = total = 0
        for name, data in seeds():
            (directory / f"seed-{name}").write_bytes(data)
            count += 1
            total += len(data)
        print(f"{target}: {count} seeds, {total} bytes")


if __name__ == "__main__":
    main()
