#!/usr/bin/env python3
"""Generate the extended Fernet test vectors in vectors/extended/.

Run from the repository root:

    python3 vectors/generate_extended.py

The output is deterministic: every random choice comes from a seeded generator, so a rerun
rewrites byte-identical files. Expected results come from `cryptography.fernet` (the reference
implementation), never from aeschat's own code:

* every token in generate.json is built by `Fernet._encrypt_from_parts` and decrypted again;
* every case in verify.json is decrypted by Fernet with the same `now` and `ttl`;
* every case in invalid.json is handed to Fernet and its real verdict is recorded in `python`.

The `error` field of invalid.json is the error class aeschat's strict decoder must report. It
follows from the check order documented in vectors/README.md; `strict_error` below writes that
order down so that each case's label is checked rather than trusted. Each case has exactly one
fault (most are a genuine token with one change), so that the label is unambiguous.

The checks are `assert` statements, so the script refuses to run under `python3 -O`.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import re
import sys
from pathlib import Path

import cryptography
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.hmac import HMAC

SEED = 20261129
OUT_DIR = Path(__file__).resolve().parent / "extended"

U64_MAX = 2**64 - 1
MAX_CLOCK_SKEW = 60  # seconds a token's timestamp may lie in the future
BLOCK = 16
HEADER_LEN = 1 + 8 + 16  # version, timestamp, IV
MAC_LEN = 32
OVERHEAD = HEADER_LEN + MAC_LEN  # 57: a token with no ciphertext at all
MIN_RAW_LEN = OVERHEAD + BLOCK  # 73: PKCS#7 always adds at least one block

# An ordinary "now": 2025-11-29T00:00:00Z.
NOW = 1_764_374_400
# The timestamp of the official spec vectors: 1985-10-26T01:20:00-07:00.
SPEC_TS = 499_162_800
SPEC_SECRET = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4="
SPEC_IV = bytes(range(16))
SPEC_TOKEN = "gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA=="


def rng(family: str) -> random.Random:
    """One generator per case family, so adding a case to one family leaves the others as they are."""
    return random.Random(f"{SEED}/{family}")


def b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii")


def make_secret(raw: bytes) -> str:
    assert len(raw) == 32
    return b64e(raw)


def _make_keys() -> dict[str, str]:
    r = rng("keys")
    return {
        "spec": SPEC_SECRET,
        "zero": make_secret(bytes(32)),
        "ones": make_secret(b"\xff" * 32),
        "a": make_secret(r.randbytes(32)),
        "b": make_secret(r.randbytes(32)),
        "c": make_secret(r.randbytes(32)),
    }


KEYS = _make_keys()
RANDOM_KEYS = [KEYS["a"], KEYS["b"], KEYS["c"]]


def key_halves(secret: str) -> tuple[bytes, bytes]:
    """(signing key, encryption key)"""
    raw = base64.urlsafe_b64decode(secret)
    return raw[:16], raw[16:]


# ---------------------------------------------------------------------------------------------
# Building tokens with cryptography's primitives
# ---------------------------------------------------------------------------------------------


def make_token(secret: str, src: bytes, ts: int, iv: bytes) -> str:
    """A genuine token, built by the reference implementation."""
    return Fernet(secret)._encrypt_from_parts(src, ts, iv).decode("ascii")


def raw_of(token: str) -> bytes:
    return base64.urlsafe_b64decode(token)


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    h = HMAC(key, hashes.SHA256())
    h.update(data)
    return h.finalize()


def mac_is_valid(secret: str, raw: bytes) -> bool:
    return hmac_sha256(key_halves(secret)[0], raw[:-MAC_LEN]) == raw[-MAC_LEN:]


def sign(secret: str, body: bytes) -> bytes:
    """Append a correct HMAC to arbitrary token bytes (version | ts | IV | ciphertext)."""
    return body + hmac_sha256(key_halves(secret)[0], body)


def cbc_encrypt_unpadded(secret: str, iv: bytes, plaintext: bytes) -> bytes:
    """AES-128-CBC with no padding applied, so the caller controls the last block exactly."""
    assert len(plaintext) % BLOCK == 0
    enc = Cipher(algorithms.AES(key_halves(secret)[1]), modes.CBC(iv)).encryptor()
    return enc.update(plaintext) + enc.finalize()


def header(ts: int, iv: bytes, version: int = 0x80) -> bytes:
    return bytes([version]) + ts.to_bytes(8, "big") + iv


def set_byte(raw: bytes, index: int, value: int) -> bytes:
    out = bytearray(raw)
    out[index] = value
    return bytes(out)


def flip_bit(raw: bytes, index: int) -> bytes:
    return set_byte(raw, index, raw[index] ^ 0x01)


# ---------------------------------------------------------------------------------------------
# The two judges: cryptography.fernet (the oracle) and the strict check order (the label)
# ---------------------------------------------------------------------------------------------


def python_decrypt(secret: str, token: str, now: int, ttl: int | None) -> bytes:
    """Decrypt with cryptography.fernet; with no TTL there is no time check at all."""
    f = Fernet(secret)
    if ttl is None:
        return f.decrypt(token)
    return f.decrypt_at_time(token, ttl, now)


def python_verdict(secret: str, token: str, now: int, ttl: int | None) -> str:
    try:
        python_decrypt(secret, token, now, ttl)
    # Fernet raises InvalidToken for every bad token, except that base64's str decoding raises a
    # plain ValueError for a non-ASCII character before Fernet can translate it.
    except (InvalidToken, ValueError):
        return "rejects"
    return "accepts"


def strict_b64decode(token: str) -> bytes | None:
    """Canonical padded base64url only: the alphabet A-Za-z0-9-_, '=' only as final padding, a
    length that is a multiple of 4, and unused trailing bits zero (re-encoding gives the input)."""
    if not token or len(token) % 4 != 0:
        return None
    if not re.fullmatch(r"[A-Za-z0-9_-]*={0,2}", token):
        return None
    try:
        raw = base64.urlsafe_b64decode(token)
    except binascii.Error:
        return None
    return raw if b64e(raw) == token else None


def strict_error(secret: str, token: str, now: int, ttl: int | None) -> str | None:
    """The error class aeschat must report, in its check order; None if the token is valid."""
    raw = strict_b64decode(token)
    if raw is None:
        return "encoding"
    if raw[0] != 0x80:
        return "version"
    if len(raw) < MIN_RAW_LEN or (len(raw) - OVERHEAD) % BLOCK != 0:
        return "length"
    if ttl is not None:
        ts = int.from_bytes(raw[1:9], "big")
        # Python integers are unbounded, which is exactly the overflow-free comparison we want.
        if ts + ttl < now:
            return "expired"
        if ts > now + MAX_CLOCK_SKEW:
            return "future"
    # MAC, then CBC decryption and PKCS#7 unpadding: the reference implementation decides. The
    # token is canonical here, so its lenient base64 decoding reads the same bytes ours does.
    try:
        Fernet(secret).decrypt(token)
    except InvalidToken:
        return "invalid"
    return None


# ---------------------------------------------------------------------------------------------
# Case records
# ---------------------------------------------------------------------------------------------


def generate_case(desc: str, secret: str, iv: bytes, ts: int, src: bytes) -> dict:
    token = make_token(secret, src, ts, iv)
    assert python_decrypt(secret, token, ts, None) == src, desc
    assert python_decrypt(secret, token, ts, 0) == src, desc
    assert strict_error(secret, token, ts, None) is None, desc
    return {
        "desc": desc,
        "secret": secret,
        "iv_hex": iv.hex(),
        "now": ts,
        "src_hex": src.hex(),
        "token": token,
    }


def verify_case(desc: str, secret: str, token: str, now: int, ttl: int | None, src: bytes) -> dict:
    assert python_decrypt(secret, token, now, ttl) == src, desc
    assert strict_error(secret, token, now, ttl) is None, desc
    return {
        "desc": desc,
        "secret": secret,
        "token": token,
        "now": now,
        "ttl_sec": ttl,
        "src_hex": src.hex(),
    }


def invalid_case(desc: str, secret: str, token: str, now: int, ttl: int | None, error: str) -> dict:
    got = strict_error(secret, token, now, ttl)
    assert got == error, f"{desc}: check order gives {got}, case says {error}"
    verdict = python_verdict(secret, token, now, ttl)
    # Only base64 leniency may let Python accept something we reject; anything else would mean
    # the case is not the single fault it claims to be.
    assert verdict == "rejects" or error == "encoding", desc
    return {
        "desc": desc,
        "secret": secret,
        "token": token,
        "now": now,
        "ttl_sec": ttl,
        "error": error,
        "python": verdict,
    }


# ---------------------------------------------------------------------------------------------
# generate.json
# ---------------------------------------------------------------------------------------------


def generate_official_reproduced() -> list[dict]:
    # Anchors the generator: the same inputs must give the spec's own token.
    case = generate_case("official spec vector reproduced", SPEC_SECRET, SPEC_IV, SPEC_TS, b"hello")
    assert case["token"] == SPEC_TOKEN
    return [case]


def generate_every_short_length() -> list[dict]:
    # Every plaintext length up to four blocks: each amount of PKCS#7 padding, 1..=16, occurs.
    r = rng("generate/lengths")
    return [
        generate_case(f"plaintext length {n}", KEYS["a"], r.randbytes(16), NOW + n, r.randbytes(n))
        for n in range(0, 65)
    ]


def generate_block_boundaries() -> list[dict]:
    # One byte below, at and above each power-of-two block multiple up to 4 KiB: the padding goes
    # from one byte to a whole extra block across each triple.
    r = rng("generate/boundaries")
    cases = []
    for power in range(4, 13):
        for n in (2**power - 1, 2**power, 2**power + 1):
            secret = RANDOM_KEYS[len(cases) % len(RANDOM_KEYS)]
            cases.append(
                generate_case(
                    f"block boundary: plaintext length {n}",
                    secret,
                    r.randbytes(16),
                    NOW - len(cases),
                    r.randbytes(n),
                )
            )
    return cases


def generate_large() -> list[dict]:
    # One large message, for buffer sizing and chunked decoding; kept to a single case for size.
    r = rng("generate/large")
    return [
        generate_case("plaintext length 65536", KEYS["b"], r.randbytes(16), NOW, r.randbytes(65536))
    ]


def generate_timestamps() -> list[dict]:
    # The timestamp is an unsigned 64-bit big-endian field: its extremes and byte-carry points.
    r = rng("generate/timestamps")
    stamps = [
        ("timestamp 0", 0),
        ("timestamp 1", 1),
        ("timestamp 2^31 - 1", 2**31 - 1),
        ("timestamp 2^32 - 1", 2**32 - 1),
        ("timestamp 2^32", 2**32),
        ("timestamp 2^63 - 1", 2**63 - 1),
        ("timestamp 2^63", 2**63),
        ("timestamp 2^64 - 1", U64_MAX),
        ("timestamp of the official vectors", SPEC_TS),
        ("ordinary timestamp", NOW),
    ]
    return [
        generate_case(desc, RANDOM_KEYS[i % len(RANDOM_KEYS)], r.randbytes(16), ts, r.randbytes(11))
        for i, (desc, ts) in enumerate(stamps)
    ]


def generate_keys_and_ivs() -> list[dict]:
    # The same plaintext under every key and several IVs: any mix-up of the signing and encryption
    # halves, or of IV handling, changes the token.
    r = rng("generate/keys-ivs")
    ivs = [
        ("zero IV", bytes(16)),
        ("all-ones IV", b"\xff" * 16),
        ("IV 00..0f", bytes(range(16))),
        ("random IV", r.randbytes(16)),
    ]
    cases = []
    for key_name, secret in KEYS.items():
        for iv_name, iv in ivs:
            cases.append(
                generate_case(
                    f"key '{key_name}', {iv_name}",
                    secret,
                    iv,
                    NOW,
                    b"The quick brown fox jumps over the lazy dog",
                )
            )
    return cases


def build_generate() -> list[dict]:
    return (
        generate_official_reproduced()
        + generate_every_short_length()
        + generate_block_boundaries()
        + generate_large()
        + generate_timestamps()
        + generate_keys_and_ivs()
    )


# ---------------------------------------------------------------------------------------------
# verify.json
# ---------------------------------------------------------------------------------------------


def verify_time_boundaries() -> list[dict]:
    # The last valid second on each side: the TTL check is ts + ttl >= now and the skew check is
    # ts <= now + 60. The first invalid second on each side is in invalid.json.
    r = rng("verify/time")
    cases = []

    def add(desc: str, ts: int, now: int, ttl: int | None) -> None:
        secret = RANDOM_KEYS[len(cases) % len(RANDOM_KEYS)]
        src = r.randbytes(r.randrange(0, 40))
        cases.append(
            verify_case(desc, secret, make_token(secret, src, ts, r.randbytes(16)), now, ttl, src)
        )

    add("fresh: now == ts, ttl 60", NOW, NOW, 60)
    add("ttl boundary: ts + ttl == now, ttl 60", NOW, NOW + 60, 60)
    add("one second inside ttl: ts + ttl == now + 1, ttl 60", NOW, NOW + 59, 60)
    add("ttl 0: now == ts", NOW, NOW, 0)
    add("ttl boundary: ts + ttl == now, ttl 1", NOW, NOW + 1, 1)
    add("ttl boundary: ts + ttl == now, ttl 3600", NOW, NOW + 3600, 3600)
    add("ttl boundary at the epoch: ts 0, ttl == now", 0, NOW, NOW)
    add("ts 0, now 0, ttl 0", 0, 0, 0)
    add("skew boundary: ts == now + 60, ttl 60", NOW + 60, NOW, 60)
    add("one second inside skew: ts == now + 59, ttl 60", NOW + 59, NOW, 60)
    add("skew boundary with ttl 0: ts == now + 60", NOW + 60, NOW, 0)
    add("skew boundary near u64::MAX: ts == now + 60 == 2^64 - 1, ttl 0", U64_MAX, U64_MAX - 60, 0)
    # now + 60 does not fit in u64 here; a decoder that wraps it would call the token "future".
    add("now == ts == 2^64 - 1, ttl 0 (now + 60 exceeds u64)", U64_MAX, U64_MAX, 0)
    add("ttl boundary near u64::MAX: ts + ttl == now == 2^64 - 1", U64_MAX - 60, U64_MAX, 60)
    return cases


def verify_ttl_overflow() -> list[dict]:
    # ts + ttl exceeds u64: mathematically the token has not expired, and Python (unbounded
    # integers) accepts it. A decoder that wraps the sum would wrongly report "expired".
    r = rng("verify/ttl-overflow")
    cases = []

    def add(desc: str, ts: int, now: int, ttl: int) -> None:
        assert ts + ttl > U64_MAX
        secret = RANDOM_KEYS[len(cases) % len(RANDOM_KEYS)]
        src = r.randbytes(r.randrange(1, 40))
        cases.append(
            verify_case(desc, secret, make_token(secret, src, ts, r.randbytes(16)), now, ttl, src)
        )

    add("ttl 2^64 - 1 on an ordinary timestamp", NOW, NOW + 1_000_000, U64_MAX)
    add("ts + ttl == 2^64 exactly", NOW, NOW, 2**64 - NOW)
    add("ts 2^63, ttl 2^63", 2**63, 2**63 + 10, 2**63)
    add("ts 2^64 - 61, ttl 2^64 - 1, now 2^64 - 1", U64_MAX - 60, U64_MAX, U64_MAX)
    add("ts 2^64 - 1, ttl 2^64 - 1, now 2^64 - 1", U64_MAX, U64_MAX, U64_MAX)
    return cases


def verify_no_ttl() -> list[dict]:
    # With no TTL there is no time check at all, whatever the timestamp and clock say.
    r = rng("verify/no-ttl")
    stamps = [
        ("ts 0", 0, NOW),
        ("ts 1", 1, NOW),
        ("old timestamp (the official vectors')", SPEC_TS, NOW),
        ("far-future ts 2^63 - 1", 2**63 - 1, NOW),
        ("ts 2^64 - 1", U64_MAX, NOW),
        ("ts 2^64 - 1, now 0", U64_MAX, 0),
        ("ts a day ahead of now", NOW + 86_400, NOW),
    ]
    cases = []
    for i, (desc, ts, now) in enumerate(stamps):
        secret = RANDOM_KEYS[i % len(RANDOM_KEYS)]
        src = r.randbytes(r.randrange(0, 40))
        token = make_token(secret, src, ts, r.randbytes(16))
        cases.append(verify_case(f"no ttl: {desc}", secret, token, now, None, src))
    return cases


def verify_lengths_and_keys() -> list[dict]:
    # Valid tokens of several sizes under every key, checked with a TTL, to exercise decryption.
    r = rng("verify/lengths")
    cases = []
    for key_name, secret in KEYS.items():
        for n in (0, 1, 15, 16, 17, 100):
            src = r.randbytes(n)
            ts = NOW - r.randrange(0, 60)
            token = make_token(secret, src, ts, r.randbytes(16))
            cases.append(
                verify_case(
                    f"key '{key_name}', plaintext length {n}, ttl 60", secret, token, NOW, 60, src
                )
            )
    return cases


def build_verify() -> list[dict]:
    return (
        verify_time_boundaries()
        + verify_ttl_overflow()
        + verify_no_ttl()
        + verify_lengths_and_keys()
    )


# ---------------------------------------------------------------------------------------------
# invalid.json
# ---------------------------------------------------------------------------------------------


class Base:
    """A genuine token and parameters under which it is valid; each invalid case changes one thing."""

    def __init__(self, r: random.Random, secret: str, n_blocks: int, ttl: int | None = 60):
        self.secret = secret
        self.ts = NOW - 5
        self.now = NOW
        self.ttl = ttl
        # n_blocks blocks of ciphertext: a plaintext of 16 * n_blocks - 1 bytes, padding one byte.
        self.src = r.randbytes(BLOCK * n_blocks - 1)
        self.iv = r.randbytes(16)
        self.token = make_token(secret, self.src, self.ts, self.iv)
        self.raw = raw_of(self.token)
        assert python_decrypt(secret, self.token, self.now, ttl) == self.src
        assert strict_error(secret, self.token, self.now, ttl) is None

    def case(self, desc: str, token: str, error: str, secret: str | None = None) -> dict:
        return invalid_case(desc, secret or self.secret, token, self.now, self.ttl, error)

    def raw_case(self, desc: str, raw: bytes, error: str) -> dict:
        return self.case(desc, b64e(raw), error)


def find_base(r: random.Random, secret: str, n_blocks: int, ttl: int | None, wanted) -> Base:
    """The first base token (in seeded order) whose text has a property an encoding case needs."""
    while True:
        base = Base(r, secret, n_blocks, ttl)
        if wanted(base.token):
            return base


def invalid_encoding() -> list[dict]:
    # Each case is a valid token (under its own now/ttl) re-encoded wrongly, so base64 is the only
    # fault. Python's decoder is lenient, so for several of these it decodes the original bytes and
    # accepts; our strict decoder rejects them all.
    r = rng("invalid/encoding")
    cases = []

    # Raw lengths 57 + 16k: one block ends in "==", two blocks in "=", three blocks in no padding.
    two_pad = find_base(r, KEYS["a"], 1, 60, lambda t: "-" in t and "_" in t)
    one_pad = find_base(r, KEYS["b"], 2, None, lambda t: "-" in t and "_" in t)
    no_pad = find_base(r, KEYS["c"], 3, 60, lambda t: "-" in t and "_" in t)
    assert two_pad.token.endswith("==") and not two_pad.token.endswith("===")
    assert one_pad.token.endswith("=") and not one_pad.token.endswith("==")
    assert "=" not in no_pad.token

    def add(base: Base, desc: str, token: str) -> None:
        case = base.case(desc, token, "encoding")
        if case["python"] == "accepts":
            # Python accepted because it read the original bytes, not some other valid token.
            assert python_decrypt(base.secret, token, base.now, base.ttl) == base.src
        cases.append(case)

    t2, t1, t0 = two_pad.token, one_pad.token, no_pad.token
    mid = len(t2) // 2

    # Characters outside the alphabet.
    add(two_pad, "'%' replaces the first 13 characters", "%" * 13 + t2[13:])
    add(two_pad, "'%' inserted mid-token", t2[:mid] + "%" + t2[mid:])
    add(two_pad, "'.' inserted mid-token", t2[:mid] + "." + t2[mid:])
    add(two_pad, "'*' replaces one character", t2[:mid] + "*" + t2[mid + 1 :])
    add(two_pad, "NUL inserted mid-token", t2[:mid] + "\0" + t2[mid:])
    add(two_pad, "non-ASCII 'é' inserted mid-token", t2[:mid] + "é" + t2[mid:])

    # The standard alphabet's '+' and '/' in place of the URL-safe '-' and '_'.
    add(two_pad, "'+' and '/' replace every '-' and '_'", t2.replace("-", "+").replace("_", "/"))
    add(one_pad, "'+' replaces the first '-'", t1.replace("-", "+", 1))
    add(no_pad, "'/' replaces the first '_'", t0.replace("_", "/", 1))

    # Whitespace anywhere.
    add(two_pad, "newline inserted mid-token", t2[:mid] + "\n" + t2[mid:])
    add(one_pad, "newline appended", t1 + "\n")
    add(no_pad, "CRLF appended", t0 + "\r\n")
    add(two_pad, "space inserted mid-token", t2[:mid] + " " + t2[mid:])
    add(one_pad, "leading space", " " + t1)
    add(no_pad, "tab inserted mid-token", t0[:mid] + "\t" + t0[mid:])

    # Padding missing, short, extra or misplaced.
    add(two_pad, "padding '==' removed", t2[:-2])
    add(two_pad, "one '=' of '==' removed", t2[:-1])
    add(one_pad, "padding '=' removed", t1[:-1])
    add(two_pad, "extra '=' after '=='", t2 + "=")
    add(one_pad, "extra '====' after '=' (length still a multiple of 4)", t1 + "====")
    add(no_pad, "'==' appended to a token that needs no padding", t0 + "==")
    add(no_pad, "'====' appended to a token that needs no padding", t0 + "====")
    add(no_pad, "'=' inserted mid-token", t0[:mid] + "=" + t0[mid:])
    add(no_pad, "'====' inserted at a quantum boundary mid-token", t0[:40] + "====" + t0[40:])

    # Anything after the padding.
    add(two_pad, "junk 'AAAA' after padding", t2 + "AAAA")
    add(one_pad, "junk 'A' after padding", t1 + "A")
    add(two_pad, "the token repeated after its own padding", t2 + t2)

    # Non-canonical: the unused low bits of the last character are not zero. With "==" the last
    # character carries 4 unused bits, with "=" it carries 2.
    add(
        two_pad,
        "non-canonical: unused trailing bits set (before '==')",
        t2[:-3] + set_low_bits(t2[-3], 0b1111) + "==",
    )
    add(
        two_pad,
        "non-canonical: lowest unused trailing bit set (before '==')",
        t2[:-3] + set_low_bits(t2[-3], 0b0001) + "==",
    )
    add(
        one_pad,
        "non-canonical: unused trailing bits set (before '=')",
        t1[:-2] + set_low_bits(t1[-2], 0b11) + "=",
    )

    # Length not a multiple of 4, empty, nothing but padding.
    add(no_pad, "one character appended to a token that needs no padding", t0 + "A")
    add(no_pad, "last character removed from a token that needs no padding", t0[:-1])
    add(no_pad, "empty token", "")
    add(no_pad, "padding only: '===='", "====")
    return cases


B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def set_low_bits(char: str, bits: int) -> str:
    """The base64url character with the given low bits set (they are unused in a final char)."""
    return B64_ALPHABET[B64_ALPHABET.index(char) | bits]


def invalid_version() -> list[dict]:
    # The version byte is checked first, so the rest of the token needs no repair: with or without
    # a recomputed MAC the answer is "version".
    r = rng("invalid/version")
    cases = []
    for secret, n_blocks in ((KEYS["a"], 1), (KEYS["spec"], 2)):
        base = Base(r, secret, n_blocks)
        for version in (0x81, 0x00, 0x7F, 0xFF):
            raw = set_byte(base.raw, 0, version)
            cases.append(
                base.raw_case(
                    f"version 0x{version:02x}, MAC not recomputed, {n_blocks} block(s)",
                    raw,
                    "version",
                )
            )
        for version in (0x81, 0x00):
            raw = sign(secret, set_byte(base.raw, 0, version)[:-MAC_LEN])
            cases.append(
                base.raw_case(
                    f"version 0x{version:02x} under a valid MAC, {n_blocks} block(s)",
                    raw,
                    "version",
                )
            )
    return cases


def invalid_length() -> list[dict]:
    # Truncations and splices that leave a raw length below 73 or not 57 plus whole blocks.
    r = rng("invalid/length")
    one = Base(r, KEYS["b"], 1)  # 73 bytes: the shortest valid token
    two = Base(r, KEYS["c"], 2)  # 89 bytes
    three = Base(r, KEYS["zero"], 3, ttl=None)  # 105 bytes
    cases = [
        one.raw_case("version byte only", one.raw[:1], "length"),
        one.raw_case("truncated mid-timestamp (5 bytes)", one.raw[:5], "length"),
        one.raw_case("truncated after 8 of 9 header bytes", one.raw[:8], "length"),
        one.raw_case("version and timestamp only (9 bytes)", one.raw[:9], "length"),
        one.raw_case("truncated mid-IV (17 bytes)", one.raw[:17], "length"),
        one.raw_case(
            "header only, no ciphertext or MAC (25 bytes)", one.raw[:HEADER_LEN], "length"
        ),
        one.raw_case("truncated mid-ciphertext (35 bytes)", one.raw[: HEADER_LEN + 10], "length"),
        one.raw_case("ciphertext, no MAC (41 bytes)", one.raw[:-MAC_LEN], "length"),
        one.raw_case("MAC truncated by 1 byte (72 bytes)", one.raw[:-1], "length"),
        one.raw_case("MAC truncated by 16 bytes (57 bytes)", one.raw[:-16], "length"),
        # Header and a MAC that is correct for it: 57 bytes, no ciphertext block at all.
        one.raw_case(
            "no ciphertext, MAC valid over the header (57 bytes)",
            sign(one.secret, one.raw[:HEADER_LEN]),
            "length",
        ),
        one.raw_case("one byte appended after the MAC (74 bytes)", one.raw + b"\x00", "length"),
        two.raw_case("MAC truncated by 1 byte (88 bytes)", two.raw[:-1], "length"),
        two.raw_case(
            "5 ciphertext bytes removed, MAC kept (84 bytes)",
            two.raw[: HEADER_LEN + 20] + two.raw[HEADER_LEN + 25 :],
            "length",
        ),
        two.raw_case(
            "truncated mid-ciphertext, no MAC (45 bytes)", two.raw[: HEADER_LEN + 20], "length"
        ),
        three.raw_case("MAC truncated by 31 bytes (74 bytes)", three.raw[:-31], "length"),
        three.raw_case(
            "ciphertext byte appended before the MAC (106 bytes)",
            three.raw[:-MAC_LEN] + b"\x00" + three.raw[-MAC_LEN:],
            "length",
        ),
    ]
    # Truncations that happen to land on 57 + whole blocks pass the length check and fail the MAC.
    cases += [
        two.raw_case(
            "MAC truncated by 16 bytes, lands on 73 bytes: MAC fails", two.raw[:-16], "invalid"
        ),
        three.raw_case(
            "MAC removed entirely, lands on 73 bytes: MAC fails", three.raw[:-MAC_LEN], "invalid"
        ),
    ]
    return cases


def invalid_time() -> list[dict]:
    # Genuine tokens one second past each boundary, and timestamps at the top of the u64 range
    # where a wrapping sum would turn "future" into something else.
    r = rng("invalid/time")
    cases = []

    def add(desc: str, ts: int, now: int, ttl: int, error: str) -> None:
        secret = RANDOM_KEYS[len(cases) % len(RANDOM_KEYS)]
        token = make_token(secret, r.randbytes(r.randrange(0, 40)), ts, r.randbytes(16))
        cases.append(invalid_case(desc, secret, token, now, ttl, error))

    add("expired: ts + ttl == now - 1, ttl 60", NOW, NOW + 61, 60, "expired")
    add("expired: ts + ttl == now - 1, ttl 0", NOW, NOW + 1, 0, "expired")
    add("expired: ts + ttl == now - 1, ttl 1", NOW, NOW + 2, 1, "expired")
    add("expired: ts 0, ttl 60, ordinary now", 0, NOW, 60, "expired")
    add("expired: official vectors' ts, ttl 3600, ordinary now", SPEC_TS, NOW, 3600, "expired")
    add("expired at the top: ts 0, ttl 2^64 - 2, now 2^64 - 1", 0, U64_MAX, U64_MAX - 1, "expired")
    add("future: ts == now + 61, ttl 60", NOW + 61, NOW, 60, "future")
    add("future: ts == now + 61, ttl 0", NOW + 61, NOW, 0, "future")
    add(
        "future: ts == now + 61, ttl 2^64 - 1 (ts + ttl exceeds u64)",
        NOW + 61,
        NOW,
        U64_MAX,
        "future",
    )
    add("future: ts 2^64 - 1, ttl 60, ordinary now", U64_MAX, NOW, 60, "future")
    add("future: ts 2^64 - 1, ttl 1, now 0", U64_MAX, 0, 1, "future")
    add("future: ts 2^64 - 1, ttl 2^64 - 1 (ts + ttl exceeds u64)", U64_MAX, NOW, U64_MAX, "future")
    add("future at the top: ts 2^64 - 1 == now + 61", U64_MAX, U64_MAX - 61, 60, "future")
    return cases


def invalid_mac() -> list[dict]:
    # One field changed after signing (or the wrong key): structure and time stay valid, the MAC
    # check fails. "invalid" is the one variant for every MAC or padding failure.
    r = rng("invalid/mac")
    cases = []
    for secret, n_blocks, ttl in ((KEYS["a"], 1, 60), (KEYS["spec"], 2, None), (KEYS["c"], 3, 60)):
        base = Base(r, secret, n_blocks, ttl)
        raw = base.raw
        ct_start, mac_start = HEADER_LEN, len(raw) - MAC_LEN
        label = f"{n_blocks} block(s), ttl {ttl}"
        cases += [
            base.raw_case(
                f"timestamp + 1, MAC not recomputed, {label}",
                header(base.ts + 1, base.iv) + raw[HEADER_LEN:],
                "invalid",
            ),
            base.raw_case(
                f"timestamp - 1, MAC not recomputed, {label}",
                header(base.ts - 1, base.iv) + raw[HEADER_LEN:],
                "invalid",
            ),
            base.raw_case(f"IV first byte flipped, {label}", flip_bit(raw, 9), "invalid"),
            base.raw_case(
                f"IV last byte flipped, {label}", flip_bit(raw, HEADER_LEN - 1), "invalid"
            ),
            base.raw_case(
                f"ciphertext first byte flipped, {label}", flip_bit(raw, ct_start), "invalid"
            ),
            base.raw_case(
                f"ciphertext last byte flipped, {label}", flip_bit(raw, mac_start - 1), "invalid"
            ),
            base.raw_case(f"MAC first byte flipped, {label}", flip_bit(raw, mac_start), "invalid"),
            base.raw_case(
                f"MAC last byte flipped, {label}", flip_bit(raw, len(raw) - 1), "invalid"
            ),
            base.raw_case(f"MAC all zero, {label}", raw[:mac_start] + bytes(MAC_LEN), "invalid"),
            base.raw_case(
                f"ciphertext block appended, {label}",
                raw[:mac_start] + raw[ct_start : ct_start + BLOCK] + raw[mac_start:],
                "invalid",
            ),
            base.case(f"wrong key, {label}", base.token, "invalid", secret=KEYS["b"]),
            base.case(
                f"signing and encryption keys swapped, {label}",
                base.token,
                "invalid",
                secret=swap_halves(secret),
            ),
        ]
        if n_blocks > 1:
            cases += [
                base.raw_case(
                    f"first ciphertext block removed, {label}",
                    raw[:ct_start] + raw[ct_start + BLOCK :],
                    "invalid",
                ),
                base.raw_case(
                    f"last ciphertext block removed, {label}",
                    raw[: mac_start - BLOCK] + raw[mac_start:],
                    "invalid",
                ),
            ]
    return cases


def swap_halves(secret: str) -> str:
    signing, encryption = key_halves(secret)
    return make_secret(encryption + signing)


def invalid_padding() -> list[dict]:
    # A correct MAC over a ciphertext whose plaintext has bad PKCS#7 padding: the MAC passes, so
    # only the unpadding can catch it. Built from raw AES-CBC without padding, then signed.
    r = rng("invalid/padding")
    cases = []

    def add(desc: str, secret: str, ttl: int | None, plaintext: bytes) -> None:
        iv = r.randbytes(16)
        raw = sign(secret, header(NOW, iv) + cbc_encrypt_unpadded(secret, iv, plaintext))
        cases.append(
            invalid_case(
                f"bad padding under a valid MAC: {desc}",
                secret,
                b64e(raw),
                NOW,
                ttl,
                "invalid",
            )
        )

    data = r.randbytes(15)
    add("last byte 0x00", KEYS["a"], 60, data + b"\x00")
    add("last byte 0x11 (17)", KEYS["b"], None, data + b"\x11")
    add("last byte 0xff", KEYS["c"], 60, data + b"\xff")
    add(
        "last byte 0x04, byte before it 0x03",
        KEYS["a"],
        None,
        r.randbytes(12) + b"\x04\x04\x03\x04",
    )
    add("last byte 0x10, first byte of the block 0x0f", KEYS["spec"], 60, b"\x0f" + b"\x10" * 15)
    add("last byte 0x02, byte before it 0x01", KEYS["zero"], 60, r.randbytes(14) + b"\x01\x02")
    add("two blocks, last byte 0x20 (32)", KEYS["b"], 60, r.randbytes(31) + b"\x20")
    add(
        "two blocks, valid-looking first block, last block ends in 0x00",
        KEYS["c"],
        None,
        b"\x10" * 16 + r.randbytes(15) + b"\x00",
    )
    # Right signing key, wrong encryption key: the MAC verifies, decryption gives garbage padding.
    base = Base(r, KEYS["a"], 1)
    wrong_encryption = make_secret(key_halves(KEYS["a"])[0] + key_halves(KEYS["b"])[1])
    assert mac_is_valid(wrong_encryption, base.raw)
    cases.append(
        base.case(
            "bad padding under a valid MAC: right signing key, wrong encryption key",
            base.token,
            "invalid",
            secret=wrong_encryption,
        )
    )
    return cases


def build_invalid() -> list[dict]:
    return (
        invalid_encoding()
        + invalid_version()
        + invalid_length()
        + invalid_time()
        + invalid_mac()
        + invalid_padding()
    )


# ---------------------------------------------------------------------------------------------


def write(name: str, cases: list[dict]) -> None:
    descs = [c["desc"] for c in cases]
    assert len(descs) == len(set(descs)), f"{name}: duplicate desc"
    path = OUT_DIR / name
    path.write_text(json.dumps(cases, indent=2) + "\n", encoding="utf-8")
    print(f"vectors/extended/{name}: {len(cases)} cases")


def main() -> int:
    if not __debug__:
        sys.exit("generate_extended.py checks every case with assert: run it without -O")
    print(f"cryptography {cryptography.__version__}, Python {sys.version.split()[0]}")
    OUT_DIR.mkdir(exist_ok=True)
    write("generate.json", build_generate())
    write("verify.json", build_verify())
    write("invalid.json", build_invalid())
    return 0


if __name__ == "__main__":
    sys.exit(main())
