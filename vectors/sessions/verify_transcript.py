#!/usr/bin/env python3
"""Check aeschat golden session transcripts independently of aeschat's code.

Usage (from anywhere):

    python3 vectors/sessions/verify_transcript.py FILE...       check each transcript
    python3 vectors/sessions/verify_transcript.py --forge FILE  print forged records as JSON

Protocol 2 (docs/PROTOCOL.md). From the inputs a transcript file states (the secret, both
nonces, CPace scalar seeds, times and message limits, and each record's type, text, time and
IV) this script rebuilds every byte of the session by the rules of docs/PROTOCOL.md, and
requires each recorded frame to be exactly the rebuilt one:

- the hellos: magic "AESCHAT", version 2, mode, nonce, time, max_message_len, and in the
  ServerHello the server's CPace share;
- CPace (CPACE-RISTR255-SHA512, `cpace_ristretto.py`, initiator = server): PRS the password's
  UTF-8 bytes or the 32 key bytes, CI = lv_cat("aeschat/2", mode, "server", "client"), sid =
  client nonce || server nonce, ADa = ADb = empty, each scalar sampled from its scalar seed;
- the ClientShare frame (kind 7) with the client's share;
- transcript_hash = SHA-256(ClientHello || ServerHello || ClientShare frames), headers included;
- prk = HMAC-SHA256(key = transcript_hash, msg = ISK), and each key the one HKDF-Expand
  block HMAC-SHA256(prk, label || 0x01) with the "aeschat/2 ..." labels;
- Finished = HMAC-SHA256(confirm key, transcript_hash);
- each record a Fernet token under its direction's write key over type || sequence || body,
  built here from AES-128-CBC and HMAC-SHA256, and decrypted again by cryptography.fernet.

It also checks the session's shape: sequence numbers from 0 in each direction, texts within the
receiver's announced limit, nothing after a close, and both closes present.

--forge prints records that are authentic under the session's keys (the control cases) or that
break one record rule an honest sender never breaks (a short plaintext, a close with a body, an
unknown type, a wrong sequence number, a text over the limit, a non-canonical token): the Rust
test `session_golden.rs` feeds them to aeschat's receiver.

Only the standard library (hashlib, hmac) and the `cryptography` package are used. Exit status:
0 when every file checks out, 1 otherwise.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cpace_ristretto as cpace  # noqa: E402

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

KINDS = {
    "ClientHello": 1,
    "ServerHello": 2,
    "ClientFinished": 3,
    "ServerFinished": 4,
    "Record": 5,
    "Alert": 6,
    "ClientShare": 7,
}
MODES = {"password": 1, "pre-shared key": 2}
MAGIC = b"AESCHAT"
VERSION = 2
LABELS = {
    "client_write_key": b"aeschat/2 client write key",
    "server_write_key": b"aeschat/2 server write key",
    "client_confirm_key": b"aeschat/2 client confirm key",
    "server_confirm_key": b"aeschat/2 server confirm key",
}
RECORD_TYPES = {"text": 1, "close": 2}
HANDSHAKE = [
    ("client", "ClientHello"),
    ("server", "ServerHello"),
    ("client", "ClientShare"),
    ("client", "ClientFinished"),
    ("server", "ServerFinished"),
]


class Mismatch(Exception):
    """A recorded value differs from the one the rules give."""


def expect(condition, message):
    if not condition:
        raise Mismatch(message)


def frame(kind, body):
    return bytes([kind]) + struct.pack(">I", len(body)) + body


def hello_body(mode, endpoint, share=None):
    nonce = bytes.fromhex(endpoint["nonce_hex"])
    expect(len(nonce) == 32, "a nonce must be 32 bytes")
    body = MAGIC + bytes([VERSION, mode]) + nonce
    body += struct.pack(">QI", endpoint["time"], endpoint["max_message_len"])
    if share is not None:
        body += share
    return body


def scalar_of(endpoint):
    seed = bytes.fromhex(endpoint["scalar_seed_hex"])
    expect(len(seed) == 32, "a scalar seed must be 32 bytes")
    scalar = cpace.sample_scalar(seed)
    expect(scalar != 0, "a zero scalar is refused")
    return scalar


def hmac_sha256(key, message):
    return hmac.new(key, message, hashlib.sha256).digest()


def fernet_token(key, plaintext, timestamp, iv):
    """A Fernet token built from its definition: 0x80 || time || IV || AES-CBC || HMAC."""
    signing, encryption = key[:16], key[16:]
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(encryption), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    signed = b"\x80" + struct.pack(">Q", timestamp) + iv + ciphertext
    return base64.urlsafe_b64encode(signed + hmac_sha256(signing, signed))


def record_plaintext(record_type, sequence, body):
    return bytes([record_type]) + struct.pack(">Q", sequence) + body


def derive(transcript):
    """The hellos and every derived value, from the transcript's inputs alone."""
    mode_name = transcript["mode"]
    expect(mode_name in MODES, f"unknown mode {mode_name!r}")
    mode = MODES[mode_name]
    client, server = transcript["client"], transcript["server"]
    expect("iterations" not in transcript, "protocol 2 has no work factor")
    if mode_name == "password":
        prs = transcript["password"].encode("utf-8")
    else:
        key_text = transcript["key"]
        expect(len(key_text) == 44, "a key text is 44 characters")
        prs = base64.urlsafe_b64decode(key_text)
        expect(base64.urlsafe_b64encode(prs).decode() == key_text, "non-canonical key text")
        expect(len(prs) == 32, "a key is 32 bytes")
    client_nonce = bytes.fromhex(client["nonce_hex"])
    server_nonce = bytes.fromhex(server["nonce_hex"])
    ci = cpace.lv_cat(b"aeschat/2", bytes([mode]), b"server", b"client")
    sid = client_nonce + server_nonce
    ya, yb = scalar_of(server), scalar_of(client)
    server_share = cpace.share(prs, ci, sid, ya)
    client_share = cpace.share(prs, ci, sid, yb)
    k = cpace.scalar_mult_vfy(ya, client_share)
    expect(k is not None and k == cpace.scalar_mult_vfy(yb, server_share), "CPace K")
    master = cpace.isk(sid, k, server_share, b"", client_share, b"")
    client_hello = frame(1, hello_body(mode, client))
    server_hello = frame(2, hello_body(mode, server, server_share))
    client_share_frame = frame(7, client_share)
    transcript_hash = hashlib.sha256(client_hello + server_hello + client_share_frame).digest()
    prk = hmac_sha256(transcript_hash, master)
    derived = {
        "client_hello": client_hello,
        "server_hello": server_hello,
        "client_share": client_share_frame,
        "transcript_hash": transcript_hash,
        "isk": master,
        "prk": prk,
    }
    for name, label in LABELS.items():
        derived[name] = hmac_sha256(prk, label + b"\x01")
    derived["client_finished"] = frame(
        3, hmac_sha256(derived["client_confirm_key"], transcript_hash)
    )
    derived["server_finished"] = frame(
        4, hmac_sha256(derived["server_confirm_key"], transcript_hash)
    )
    return derived


def verify(transcript):
    """Raises Mismatch at the first recorded value that differs from the rules; returns the
    derived values."""
    derived = derive(transcript)
    frames = transcript["frames"]
    expect(len(frames) >= 5, "a session starts with five handshake frames")
    expected_handshake = [
        derived["client_hello"],
        derived["server_hello"],
        derived["client_share"],
        derived["client_finished"],
        derived["server_finished"],
    ]
    for index, ((side, kind), expected) in enumerate(zip(HANDSHAKE, expected_handshake)):
        recorded = frames[index]
        expect(
            (recorded["from"], recorded["kind"]) == (side, kind),
            f"frame {index} must be the {side}'s {kind}",
        )
        expect(
            bytes.fromhex(recorded["hex"]) == expected,
            f"frame {index} ({kind}) differs: the rules give {expected.hex()}",
        )
        expect("record" not in recorded, f"frame {index} is no record")

    write_keys = {
        "client": derived["client_write_key"],
        "server": derived["server_write_key"],
    }
    # A text must fit the limit the receiving side announced.
    limits = {
        "client": transcript["server"]["max_message_len"],
        "server": transcript["client"]["max_message_len"],
    }
    next_sequence = {"client": 0, "server": 0}
    closed = {"client": False, "server": False}
    for index, recorded in enumerate(frames[5:], start=5):
        side = recorded["from"]
        expect(side in write_keys, f"frame {index}: unknown side {side!r}")
        expect(recorded["kind"] == "Record", f"frame {index}: only records follow the handshake")
        expect(not closed[side], f"frame {index}: the {side} sent a record after its close")
        record = recorded["record"]
        expect(record["type"] in RECORD_TYPES, f"frame {index}: unknown record type")
        expect(
            record["sequence"] == next_sequence[side],
            f"frame {index}: the {side}'s record {next_sequence[side]} is numbered "
            f"{record['sequence']}",
        )
        if record["type"] == "text":
            body = record["text"].encode("utf-8")
            expect(
                len(body) <= limits[side],
                f"frame {index}: a text of {len(body)} bytes exceeds the limit {limits[side]}",
            )
        else:
            expect("text" not in record, f"frame {index}: a close has no text")
            body = b""
            closed[side] = True
        plaintext = record_plaintext(RECORD_TYPES[record["type"]], record["sequence"], body)
        iv = bytes.fromhex(record["iv_hex"])
        expect(len(iv) == 16, f"frame {index}: an IV is 16 bytes")
        token = fernet_token(write_keys[side], plaintext, record["time"], iv)
        expect(
            record["token"].encode() == token,
            f"frame {index}: the token differs: the rules give {token.decode()}",
        )
        expect(
            bytes.fromhex(recorded["hex"]) == frame(5, token),
            f"frame {index}: the frame differs from its token",
        )
        # The reference implementation agrees, from the recorded token alone.
        fernet = Fernet(base64.urlsafe_b64encode(write_keys[side]))
        opened = fernet.decrypt(record["token"].encode())
        expect(opened == plaintext, f"frame {index}: cryptography.fernet opens something else")
        expect(
            fernet.extract_timestamp(record["token"].encode()) == record["time"],
            f"frame {index}: the token's time differs",
        )
        next_sequence[side] += 1
    expect(all(closed.values()), "both sides must end with their close")
    return derived


def forge(transcript):
    """Records sealed under the session's real keys that each break one rule (or none)."""
    derived = verify(transcript)
    client_key = derived["client_write_key"]
    server_key = derived["server_write_key"]
    client_limit = transcript["client"]["max_message_len"]
    iv = bytes([0x99]) * 16
    at = 1_700_000_100
    forged = []

    def add(case, side, token):
        forged.append({"case": case, "from": side, "hex": frame(5, token).hex()})

    def sealed(key, plaintext, timestamp=at, with_iv=iv):
        return fernet_token(key, plaintext, timestamp, with_iv)

    text = record_plaintext(1, 0, b"forged by python")
    add("valid text", "client", sealed(client_key, text))
    add("valid close", "client", sealed(client_key, record_plaintext(2, 0, b"")))
    add(
        "text at the receiver's limit",
        "server",
        sealed(server_key, record_plaintext(1, 0, b"L" * client_limit)),
    )
    add(
        "text over the receiver's limit",
        "server",
        sealed(server_key, record_plaintext(1, 0, b"L" * (client_limit + 1))),
    )
    add(
        "timestamp u64::MAX",
        "client",
        sealed(client_key, record_plaintext(1, 0, b"times are not checked"), 2**64 - 1),
    )
    add(
        "plaintext shorter than a record header",
        "client",
        sealed(client_key, record_plaintext(1, 0, b"")[:8]),
    )
    add("empty plaintext", "client", sealed(client_key, b""))
    add("close with a body", "client", sealed(client_key, record_plaintext(2, 0, b"x")))
    add("unknown record type 0", "client", sealed(client_key, record_plaintext(0, 0, b"hi")))
    add("unknown record type 3", "client", sealed(client_key, record_plaintext(3, 0, b"hi")))
    add("sequence number 1 first", "client", sealed(client_key, record_plaintext(1, 1, b"hi")))
    add(
        "sequence number u64::MAX",
        "client",
        sealed(client_key, record_plaintext(1, 2**64 - 1, b"hi")),
    )
    padded = sealed(client_key, text)
    assert padded.endswith(b"="), "this plaintext length gives a padded token"
    add("token without its padding", "client", padded.rstrip(b"="))
    # An IV whose token has a character that differs between the two base64 alphabets.
    for byte in range(256):
        candidate = sealed(client_key, text, with_iv=bytes([byte]) * 16)
        if b"-" in candidate or b"_" in candidate:
            standard = candidate.replace(b"-", b"+").replace(b"_", b"/")
            add("token in standard base64", "client", standard)
            break
    add("token with a trailing newline", "client", padded + b"\n")
    add(
        "token under the other direction's key",
        "server",
        sealed(client_key, record_plaintext(1, 0, b"reflected")),
    )
    return forged


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", help="golden transcript JSON files")
    parser.add_argument(
        "--forge", action="store_true", help="print forged records for one file as JSON"
    )
    args = parser.parse_args()
    if args.forge:
        if len(args.files) != 1:
            parser.error("--forge takes exactly one file")
        with open(args.files[0], encoding="utf-8") as file:
            json.dump(forge(json.load(file)), sys.stdout, indent=1)
        print()
        return 0
    failures = 0
    for path in args.files:
        try:
            with open(path, encoding="utf-8") as file:
                transcript = json.load(file)
            derived = verify(transcript)
        except (Mismatch, InvalidToken, KeyError, TypeError, ValueError) as error:
            kind = "" if isinstance(error, Mismatch) else f"{type(error).__name__}: "
            print(f"FAIL {path}: {kind}{error}")
            failures += 1
            continue
        print(f"ok {path}: {len(transcript['frames'])} frames")
        for name in ["transcript_hash", "isk", "prk", *LABELS]:
            print(f"    {name:<18} {derived[name].hex()}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
