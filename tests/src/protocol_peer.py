#!/usr/bin/env python3
"""An aeschat protocol-2 peer written from docs/PROTOCOL.md alone (section numbers: "§").

It is the proof that the document suffices to interoperate: tests/tests/python_peer.rs runs it
against the real `aeschat` binary in both roles and both modes. Standard library, Python's
`cryptography` (AES-128-CBC only) and vectors/sessions/cpace_ristretto.py (CPACE-RISTR255-SHA512
of the CFRG draft, not aeschat). Slow and not constant-time: a test peer, never for secrets.

    protocol_peer.py --role client|server --mode password|key --secret-file F
                     (--connect HOST:PORT | --listen HOST:PORT)
                     [--send TEXT ...] [--expect TEXT ...] [--linger] [--max-message-len N] [--no-clock]

Sends each --send text, prints each received text as a line on stdout, then closes (§5.4): at
once once every --expect text has arrived, or with --linger only after the peer's close. Exit 0
on a clean end; otherwise one line on stderr and status 3 (authentication failed) or 1.
"""

import argparse
import base64
import hashlib
import hmac
import os
import re
import socket
import struct
import sys
import time
from pathlib import Path

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "vectors" / "sessions"))
import cpace_ristretto as cpace  # noqa: E402  (the draft's primitives, by path)

# §2 frame kinds, §3.1 hello constants, §4 labels, §7.1 alert codes.
CLIENT_HELLO, SERVER_HELLO, CLIENT_FINISHED, SERVER_FINISHED, RECORD, ALERT, CLIENT_SHARE = range(1, 8)
MAGIC, VERSION = b"AESCHAT", 2
MODES = {"password": 1, "key": 2}
ALERT_NAMES = {1: "AuthenticationFailed", 2: "UnsupportedVersion", 3: "ModeMismatch", 4: "reserved",
               5: "Busy", 6: "UnexpectedMessage", 7: "RetryLater"}


class Failure(Exception):
    """A protocol failure (§7.2's error name), with the alert to send during the handshake."""

    def __init__(self, error, detail="", alert=None):
        super().__init__(f"{error}{': ' + detail if detail else ''}")
        self.error, self.alert = error, alert


# ---- §5.5 and §8: sizes --------------------------------------------------------------------

def token_len(p):
    return 4 * -(-(57 + 16 * (p // 16 + 1)) // 3)


def frame_capacity(m):
    return max(5 + token_len(9 + m), 90)


# ---- §2: framing --------------------------------------------------------------------------

def frame(kind, body):
    return struct.pack(">BI", kind, len(body)) + body


class Wire:
    def __init__(self, sock, max_message_len):
        self.sock, self.capacity, self.frames_read = sock, frame_capacity(max_message_len), 0

    def send(self, data):
        self.sock.sendall(data)

    def _exactly(self, n, during_handshake):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise Failure("HandshakeInterrupted" if during_handshake else "Truncated")
            data += chunk
        return data

    def read(self, during_handshake=True):
        """One frame as (kind, body, whole frame), with the three header rules of §2 in order."""
        header = self._exactly(5, during_handshake)
        first, self.frames_read = self.frames_read == 0, self.frames_read + 1
        if header == b"gAAAA":  # rule 1: the old raw-token chat; no alert (§14)
            raise Failure("LegacyPeer")
        kind, length = struct.unpack(">BI", header)
        if not 1 <= kind <= 7:  # rule 2
            raise Failure("NotAeschat" if first else "UnexpectedMessage", f"kind {kind}", alert=6)
        if length > self.capacity - 5:  # rule 3, before reading the body
            raise Failure("FrameTooLong", f"max {self.capacity - 5}", alert=6)
        body = self._exactly(length, during_handshake)
        return kind, body, header + body


def alert_failure(body, accepted):
    """§7.1: the error a received alert gives; codes the sender's role never sends are PeerAborted."""
    code = body[0] if body else None
    if code == 7 and 7 in accepted and len(body) == 3:
        return Failure("RetryLater", f"alert 7 (RetryLater) received: wait {struct.unpack('>H', body[1:])[0]} s")
    errors = {1: "AuthenticationFailed", 2: "VersionRefused", 3: "ModeMismatch", 5: "PeerBusy"}
    name = errors.get(code, "PeerAborted") if len(body) == 1 and code in accepted else "PeerAborted"
    return Failure(name, f"alert {code} ({ALERT_NAMES.get(code, 'unknown')}) received")


# ---- §3: handshake messages ----------------------------------------------------------------

NO_CLOCK = False  # --no-clock: time 0 in the hello and in every token (§3.1, §5.2, §10)


def now():
    return 0 if NO_CLOCK else int(time.time())


def hello_body(mode, nonce, max_message_len):
    # §3.1: magic, version, mode, nonce, time (u64 Unix seconds), max_message_len (u32).
    return MAGIC + bytes([VERSION, mode]) + nonce + struct.pack(">QI", now(), max_message_len)


def check_hello(kind, body, expected_kind, own_mode, accepted_alerts):
    """§3.4, in its order; returns the peer's max_message_len."""
    if kind == ALERT:
        raise alert_failure(body, accepted_alerts)
    if kind != expected_kind:
        raise Failure("UnexpectedMessage", f"kind {kind} instead of a hello", alert=6)
    if body[:7] != MAGIC:
        raise Failure("NotAeschat", alert=6)
    if len(body) < 8:
        raise Failure("UnexpectedMessage", "short hello", alert=6)
    if body[7] != VERSION:
        raise Failure("UnsupportedProtocol", f"version {body[7]}", alert=2)
    if len(body) != (53 if expected_kind == CLIENT_HELLO else 85):
        raise Failure("UnexpectedMessage", f"hello of {len(body)} bytes", alert=6)
    if body[8] not in (1, 2):
        raise Failure("UnexpectedMessage", f"mode {body[8]}", alert=6)
    if body[8] != own_mode:
        raise Failure("ModeMismatch", alert=3)
    return struct.unpack(">I", body[49:53])[0]


# ---- §4: CPace and the key schedule --------------------------------------------------------

LABELS = ("client write key", "server write key", "client confirm key", "server confirm key")


def fresh_scalar():
    # §4.2: 32 random bytes, b[31] &= 0x0f, little-endian; a zero scalar is refused.
    scalar = cpace.sample_scalar(os.urandom(32))
    if scalar == 0:
        raise Failure("Randomness")
    return scalar


def cpace_inputs(mode, client_nonce, server_nonce):
    """§4.2: CI = lv_cat("aeschat/2", mode, "server", "client") (26 bytes), sid = both nonces."""
    return cpace.lv_cat(b"aeschat/2", bytes([mode]), b"server", b"client"), client_nonce + server_nonce


def derive(sid, own_scalar, peer_share, ya, yb, transcript_hash):
    """§4.4 checks and K, §4.2 ISK (server = initiator A, client = responder B), §4.3 HKDF."""
    k = cpace.scalar_mult_vfy(own_scalar, peer_share)  # canonical, not identity, K not identity
    if k is None:
        raise Failure("UnexpectedMessage", "the peer's CPace share was refused", alert=6)
    isk = cpace.isk(sid, k, ya, b"", yb, b"")  # ADa and ADb empty
    prk = hmac.new(transcript_hash, isk, hashlib.sha256).digest()  # HKDF-Extract(salt, ikm)
    return {label: hmac.new(prk, b"aeschat/2 " + label.encode() + b"\x01", hashlib.sha256).digest()
            for label in LABELS}  # HKDF-Expand, one block each


def handshake_client(wire, mode, prs, max_message_len):
    """§6.1."""
    client_nonce = os.urandom(32)
    client_hello = frame(CLIENT_HELLO, hello_body(mode, client_nonce, max_message_len))
    wire.send(client_hello)
    kind, body, server_hello = wire.read()
    peer_max = check_hello(kind, body, SERVER_HELLO, mode, accepted_alerts={1, 2, 3, 5, 7})
    server_nonce, ya = body[9:41], body[53:85]
    yb_scalar = fresh_scalar()
    ci, sid = cpace_inputs(mode, client_nonce, server_nonce)
    yb = cpace.share(prs, ci, sid, yb_scalar)
    client_share = frame(CLIENT_SHARE, yb)
    transcript_hash = hashlib.sha256(client_hello + server_hello + client_share).digest()  # §4.1
    keys = derive(sid, yb_scalar, ya, ya, yb, transcript_hash)
    client_finished = frame(CLIENT_FINISHED, hmac.digest(keys["client confirm key"], transcript_hash, "sha256"))
    wire.send(client_share + client_finished)  # §3.3: one flight of 74 bytes
    kind, body, _ = wire.read()
    if kind == ALERT:
        raise alert_failure(body, {1, 2, 3, 5, 7})
    if kind != SERVER_FINISHED or len(body) != 32:
        raise Failure("UnexpectedMessage", f"kind {kind} of {len(body)} bytes instead of ServerFinished", alert=6)
    if not hmac.compare_digest(body, hmac.digest(keys["server confirm key"], transcript_hash, "sha256")):
        raise Failure("AuthenticationFailed", "wrong ServerFinished", alert=1)
    return keys["client write key"], keys["server write key"], peer_max


def handshake_server(wire, mode, prs, max_message_len):
    """§6.2."""
    kind, body, client_hello = wire.read()
    peer_max = check_hello(kind, body, CLIENT_HELLO, mode, accepted_alerts={2, 3})
    client_nonce, server_nonce = body[9:41], os.urandom(32)
    ya_scalar = fresh_scalar()
    ci, sid = cpace_inputs(mode, client_nonce, server_nonce)
    ya = cpace.share(prs, ci, sid, ya_scalar)
    server_hello = frame(SERVER_HELLO, hello_body(mode, server_nonce, max_message_len) + ya)
    wire.send(server_hello)
    received = []
    for expected in (CLIENT_SHARE, CLIENT_FINISHED):  # §3.3: a ClientShare first, then the Finished
        kind, body, whole = wire.read()
        if kind == ALERT:
            raise alert_failure(body, {2, 3})  # alert 1 here is PeerAborted (§7.1)
        if kind != expected or len(body) != 32:
            raise Failure("UnexpectedMessage", f"kind {kind} of {len(body)} bytes", alert=6)
        received.append((body, whole))
    (yb, client_share), (client_mac, _) = received
    if yb == ya:  # §4.4: reflection, checked first
        raise Failure("UnexpectedMessage", "own share reflected", alert=6)
    transcript_hash = hashlib.sha256(client_hello + server_hello + client_share).digest()
    keys = derive(sid, ya_scalar, yb, ya, yb, transcript_hash)
    if not hmac.compare_digest(client_mac, hmac.digest(keys["client confirm key"], transcript_hash, "sha256")):
        raise Failure("AuthenticationFailed", "wrong ClientFinished", alert=1)
    wire.send(frame(SERVER_FINISHED, hmac.digest(keys["server confirm key"], transcript_hash, "sha256")))
    return keys["server write key"], keys["client write key"], peer_max


# ---- §5: records ---------------------------------------------------------------------------

CANONICAL = re.compile(rb"^[A-Za-z0-9_-]*={0,2}$")


def seal(write_key, plaintext):
    """§5.2: base64url(0x80 ‖ timestamp ‖ IV ‖ AES-128-CBC(PKCS#7(plaintext)) ‖ HMAC)."""
    signing_key, encryption_key = write_key[:16], write_key[16:]
    iv = os.urandom(16)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(encryption_key), modes.CBC(iv)).encryptor()
    raw = b"\x80" + struct.pack(">Q", now()) + iv + encryptor.update(padded) + encryptor.finalize()
    return base64.urlsafe_b64encode(raw + hmac.digest(signing_key, raw, "sha256"))


def open_token(read_key, token):
    """§5.3 check 2: canonical base64url, version, length, tag (before decrypting), padding."""
    rejected = Failure("RecordRejected")
    if not CANONICAL.match(token) or len(token) % 4:
        raise rejected
    raw = base64.urlsafe_b64decode(token)
    if base64.urlsafe_b64encode(raw) != token:  # zero unused bits, nothing after the padding
        raise rejected
    if raw[:1] != b"\x80" or len(raw) < 73 or (len(raw) - 57) % 16:
        raise rejected
    if not hmac.compare_digest(raw[-32:], hmac.digest(read_key[:16], raw[:-32], "sha256")):
        raise rejected
    decryptor = Cipher(algorithms.AES(read_key[16:]), modes.CBC(raw[9:25])).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(decryptor.update(raw[25:-32]) + decryptor.finalize()) + unpadder.finalize()
    except ValueError:
        raise rejected from None


class Session:
    """§5.1 plaintext (type, u64 sequence number, body) and §5.4 numbering, one per direction."""

    def __init__(self, wire, role, write_key, read_key, peer_max, own_max):
        self.wire, self.role, self.write_key, self.read_key = wire, role, write_key, read_key
        self.peer_max, self.own_max, self.sent, self.received = peer_max, own_max, 0, 0

    def _send(self, record_type, body):
        token = seal(self.write_key, bytes([record_type]) + struct.pack(">Q", self.sent) + body)
        self.wire.send(frame(RECORD, token))
        self.sent += 1

    def send_text(self, text):
        if len(text) > self.peer_max:  # §3.2: refused locally, nothing cut
            raise Failure("MessageTooLong", f"max {self.peer_max}")
        self._send(1, text)

    def send_close(self):
        self._send(2, b"")

    def receive(self):
        """The next text (bytes), or None for the peer's close (§5.3, in its order)."""
        kind, body, _ = self.wire.read(during_handshake=False)
        if kind == ALERT:
            # §7.1: only alert 1, only on the server, before its first received record.
            if self.role == "server" and self.received == 0 and body == b"\x01":
                raise Failure("AuthenticationFailed", "alert 1 (AuthenticationFailed) received")
            raise Failure("UnexpectedMessage", f"alert {body.hex()} in the session")
        if kind != RECORD:
            raise Failure("UnexpectedMessage", f"kind {kind} in the session")
        plaintext = open_token(self.read_key, body)
        if len(plaintext) < 9:
            raise Failure("UnexpectedMessage", "short record plaintext")
        record_type, number = plaintext[0], struct.unpack(">Q", plaintext[1:9])[0]
        if number != self.received:
            raise Failure("RecordOutOfOrder", f"expected {self.received}, received {number}")
        self.received += 1
        if record_type == 1 and len(plaintext) - 9 <= self.own_max:
            return plaintext[9:]
        if record_type == 2 and len(plaintext) == 9:
            return None
        raise Failure("UnexpectedMessage", f"record type {record_type} with {len(plaintext) - 9} bytes")


# ---- the program ---------------------------------------------------------------------------

def read_secret(mode, path):
    """§4.2: a password file's first line without its ending; a key file's 44-character key and
    at most one line ending, PRS being the 32 bytes it decodes to."""
    data = Path(path).read_bytes()
    if mode == "password":
        return data.split(b"\n")[0].removesuffix(b"\r")
    text = data.removesuffix(b"\n").removesuffix(b"\r") if data.endswith(b"\n") else data
    key = base64.urlsafe_b64decode(text) if len(text) == 44 else b""
    if len(key) != 32:
        raise SystemExit("protocol_peer: the key file does not hold a 44-character Fernet key")
    return key


def address(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def chat(args):
    mode = MODES[args.mode]
    prs = read_secret(args.mode, args.secret_file)
    if args.connect:
        sock = socket.create_connection(address(args.connect), timeout=args.timeout)
    else:
        listener = socket.create_server(address(args.listen))
        print(f"listening on {args.listen.rpartition(':')[0]}:{listener.getsockname()[1]}", file=sys.stderr, flush=True)
        listener.settimeout(args.timeout)
        sock, _ = listener.accept()
        listener.close()
    sock.settimeout(args.timeout)  # §9: the handshake is bounded; so is every wait here
    wire = Wire(sock, args.max_message_len)
    try:
        run = handshake_client if args.role == "client" else handshake_server
        write_key, read_key, peer_max = run(wire, mode, prs, args.max_message_len)
    except Failure as failure:
        if failure.alert is not None:
            wire.send(frame(ALERT, bytes([failure.alert])))  # §7.1: alert frame 06 00000001 code
        sock.close()
        raise
    print(f"established: the peer accepts {peer_max} bytes", file=sys.stderr, flush=True)
    session = Session(wire, args.role, write_key, read_key, peer_max, args.max_message_len)
    for text in args.send:
        session.send_text(text.encode())
    expected = [text.encode() for text in args.expect]
    received, closed = [], False
    while True:
        if not closed and not args.linger and len(received) >= len(expected):
            session.send_close()  # §5.4: we end the chat; then await the peer's close
            closed = True
        text = session.receive()
        if text is None:
            break
        received.append(text)
        sys.stdout.buffer.write(text + b"\n")
        sys.stdout.flush()
    if not closed:
        session.send_close()  # §5.4: the peer ended; answer with our own close
    sock.close()
    if received != expected and args.expect:
        raise Failure("Mismatch", f"expected {len(expected)} texts, received {len(received)} others")
    print("closed cleanly", file=sys.stderr, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", choices=("client", "server"), required=True)
    parser.add_argument("--mode", choices=tuple(MODES), required=True)
    parser.add_argument("--secret-file", required=True)
    place = parser.add_mutually_exclusive_group(required=True)
    place.add_argument("--connect", metavar="HOST:PORT")
    place.add_argument("--listen", metavar="HOST:PORT")
    parser.add_argument("--send", action="append", default=[], metavar="TEXT")
    parser.add_argument("--expect", action="append", default=[], metavar="TEXT")
    parser.add_argument("--linger", action="store_true", help="close only after the peer's close")
    parser.add_argument("--max-message-len", type=int, default=65536)
    parser.add_argument("--no-clock", action="store_true", help="send time 0, as a board without a clock")
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()
    global NO_CLOCK
    NO_CLOCK = args.no_clock
    try:
        chat(args)
    except Failure as failure:
        print(f"protocol_peer: {failure}", file=sys.stderr)
        sys.exit(3 if failure.error == "AuthenticationFailed" else 1)
    except (OSError, socket.timeout) as error:
        print(f"protocol_peer: transport: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
