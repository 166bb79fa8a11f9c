#!/usr/bin/env python3
"""A stand-in for the Python chat that aeschat replaces (server.py and client.py of the seed
project, /work/shared/seed/README.md), written for the benchmarks from that description: its
source is not in this repository.

What it does, as the old project did:
- the key: PBKDF2-HMAC-SHA256 of the shared password with a static salt (the old project's
  "salt exchange is static in v1"), 32 bytes, base64url, used as a Fernet key;
- each message: one `Fernet.encrypt` of the typed line (a fresh IV and timestamp per token) and
  the token sent over TCP followed by a newline, one token per line;
- a thread receives: reads token lines, `Fernet.decrypt`s each and prints `[Client]: text` (on
  the server) or `[Server]: text` (on the client);
- the main thread reads lines from standard input and sends each; the end of input closes the
  connection.

Where it differs, only so that a benchmark can drive it through pipes:
- the password comes from AESCHAT_PASSWORD (the old project prompted for it), and `--iterations`
  sets the PBKDF2 work factor, so both programs can be run with equal settings;
- status lines (banner, "[+] Client connected") go to standard error and messages to standard
  output, so a harness reads messages without filtering; the server can listen on port 0 and
  says which port it got;
- each printed message is flushed, as print() does on a terminal (line buffering); through a
  pipe Python would otherwise hold output back in an 8 KiB block, which a person at a terminal
  never sees.
No Nagle switch-off (TCP_NODELAY) or other tuning: the old project used plain sockets.

Usage:
  AESCHAT_PASSWORD=... legacy_chat.py server [--listen HOST:PORT] [--iterations N]
  AESCHAT_PASSWORD=... legacy_chat.py client --connect HOST:PORT [--iterations N]
"""

import argparse
import base64
import os
import socket
import sys
import threading

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

# The old project's fixed salt ("static in v1"): both sides derive the same key from the
# password alone.
STATIC_SALT = b"aes-secure-chat-static-salt"


def derive_key(password, iterations):
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=STATIC_SALT, iterations=iterations)
    return base64.urlsafe_b64encode(kdf.derive(password))


def status(line):
    print(line, file=sys.stderr, flush=True)


def receive(sock, fernet, peer):
    """Decrypts and prints every token line until the peer closes."""
    stream = sock.makefile("rb")
    for token in stream:
        try:
            text = fernet.decrypt(token.rstrip(b"\n")).decode(errors="replace")
        except InvalidToken:
            status("[!] A message failed to decrypt (wrong password or tampering)")
            continue
        print(f"[{peer}]: {text}", flush=True)
    status(f"[-] {peer} disconnected")


def send(sock, fernet):
    """Encrypts and sends every line typed on standard input until its end."""
    for line in sys.stdin.buffer:
        sock.sendall(fernet.encrypt(line.rstrip(b"\r\n")) + b"\n")
    sock.shutdown(socket.SHUT_WR)


def chat(sock, fernet, peer):
    receiver = threading.Thread(target=receive, args=(sock, fernet, peer), daemon=True)
    receiver.start()
    send(sock, fernet)
    receiver.join()
    sock.close()


def address(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("role", choices=["server", "client"])
    parser.add_argument("--listen", default="127.0.0.1:5555")
    parser.add_argument("--connect", default="127.0.0.1:5555")
    parser.add_argument("--iterations", type=int, default=100_000)
    args = parser.parse_args()
    password = os.environ["AESCHAT_PASSWORD"].encode()
    if args.role == "server":
        status("=== AES Encrypted Chat Server ===")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address(args.listen))
        listener.listen(1)
        host, port = listener.getsockname()
        status(f"[*] Listening on {host}:{port}")
        fernet = Fernet(derive_key(password, args.iterations))
        sock, _ = listener.accept()
        status("[+] Client connected")
        chat(sock, fernet, "Client")
    else:
        status("=== AES Encrypted Chat Client ===")
        fernet = Fernet(derive_key(password, args.iterations))
        sock = socket.create_connection(address(args.connect))
        status("[+] Connected to the server")
        chat(sock, fernet, "Server")


if __name__ == "__main__":
    main()
