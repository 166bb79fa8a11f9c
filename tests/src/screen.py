"""The chat as a person sees it: `aeschat` runs in a pseudo-terminal whose output a terminal
emulator (pyte) renders into a screen of cells, and the scenarios below type keys and pastes
into it and look at that screen, while the other side runs with plain pipes.

Usage: python3 screen.py BINARY SCRATCH_DIR SCENARIO
Exits 0 when the scenario held; otherwise prints what went wrong, the screen and the other
side's output, and exits 1. Driven by tests/tests/chat_screen.rs.
"""

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time

import pyte

BINARY, SCRATCH, SCENARIO = sys.argv[1], sys.argv[2], sys.argv[3]
PASSWORD = "otter pizza violet kettle brave dune"
PATIENCE = 30.0
ESC = "\x1b"
PASTE_START, PASTE_END = b"\x1b[200~", b"\x1b[201~"
COLS, ROWS = 100, 30

# Everything started, to stop on the way out whatever happens.
STARTED = []


class Failed(Exception):
    pass


def password_file():
    path = os.path.join(SCRATCH, "pass")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, (PASSWORD + "\n").encode())
    os.close(fd)
    return path


def child_env(extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("AESCHAT_PASSWORD", "NO_COLOR")}
    env["TERM"] = "xterm-256color"
    env.update(extra or {})
    return env


class Emulated(pyte.Screen):
    """A pyte screen that answers the terminal's queries (the cursor position) as a real
    terminal does."""

    def __init__(self, cols, rows, answer):
        super().__init__(cols, rows)
        self.answer = answer

    def write_process_input(self, data):
        self.answer(data.encode())


class Term:
    """`aeschat ARGS` on a pseudo-terminal of COLS x ROWS, rendered by pyte."""

    def __init__(self, args, env=None, cols=COLS, rows=ROWS):
        pid, fd = pty.fork()
        if pid == 0:
            try:
                fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
                os.execve(BINARY, [BINARY] + args, child_env(env))
            finally:
                os._exit(127)
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.pid, self.fd = pid, fd
        self.screen = Emulated(cols, rows, self.write)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = b""
        self.closed = False
        self.status = None
        STARTED.append(self)

    def pump(self, timeout=0.02):
        if self.closed:
            time.sleep(timeout)
            return
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return
        try:
            data = os.read(self.fd, 1 << 16)
        except OSError:
            data = b""
        if not data:
            self.closed = True
            return
        self.raw += data
        self.stream.feed(data)

    def write(self, data):
        """Writes to the terminal's input, reading its output meanwhile so neither side
        blocks."""
        deadline = time.time() + PATIENCE
        while data:
            if time.time() > deadline:
                raise Failed("the program stopped reading its terminal")
            _, writable, _ = select.select([], [self.fd], [], 0.02)
            if writable:
                written = os.write(self.fd, data[:512])
                data = data[written:]
            self.pump(0)

    def type(self, text):
        self.write(text.encode() if isinstance(text, str) else text)

    def paste(self, text):
        self.write(PASTE_START + text.encode() + PASTE_END)

    def lines(self):
        return [line.rstrip() for line in self.screen.display]

    def text(self):
        return "\n".join(self.lines())

    def wait_for(self, what, needle=None):
        """Waits until `what` (a string on screen, or a function of the screen's text)."""
        check = (lambda text: what in text) if isinstance(what, str) else what
        deadline = time.time() + PATIENCE
        while not check(self.text()):
            if time.time() > deadline:
                raise Failed("timed out waiting for %r on screen" % (needle or what))
            self.pump(0.05)

    def settle(self, seconds=0.3):
        end = time.time() + seconds
        while time.time() < end:
            self.pump(0.02)

    def row_of(self, text):
        """The screen row that starts with `text`."""
        for index, line in enumerate(self.lines()):
            if line.startswith(text):
                return index
        raise Failed("no row starts with %r" % text)

    def cells(self, row, count):
        line = self.screen.buffer[row]
        return [line[col] for col in range(count)]

    def wait_exit(self):
        deadline = time.time() + PATIENCE
        while True:
            self.pump(0.05)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                # Whatever it printed last.
                for _ in range(20):
                    self.pump(0.01)
                self.status = (os.WEXITSTATUS(status) if os.WIFEXITED(status)
                               else 128 + os.WTERMSIG(status))
                return self.status
            if time.time() > deadline:
                raise Failed("the program on the terminal did not exit")

    def stop(self):
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except OSError:
                pass
            self.status = -9

    def describe(self):
        return "screen:\n" + self.text()


class Piped:
    """`aeschat ARGS` with plain pipes, as a script (or the tests) run it."""

    def __init__(self, args, env=None):
        self.process = subprocess.Popen(
            [BINARY] + args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=child_env(env))
        self.out, self.err = bytearray(), bytearray()
        self.lock = threading.Lock()
        for stream, into in ((self.process.stdout, self.out), (self.process.stderr, self.err)):
            threading.Thread(target=self.collect, args=(stream, into), daemon=True).start()
        STARTED.append(self)

    def collect(self, stream, into):
        while True:
            chunk = stream.read1(1 << 16)
            if not chunk:
                return
            with self.lock:
                into.extend(chunk)

    def stdout(self):
        with self.lock:
            return self.out.decode("utf-8", "replace")

    def stderr(self):
        with self.lock:
            return self.err.decode("utf-8", "replace")

    def wait_stdout(self, needle):
        self.wait(lambda: needle in self.stdout(), "%r on stdout" % needle[:80])

    def wait_stderr(self, needle):
        self.wait(lambda: needle in self.stderr(), "%r on stderr" % needle[:80])

    def wait(self, check, what):
        deadline = time.time() + PATIENCE
        while not check():
            if time.time() > deadline:
                raise Failed("timed out waiting for " + what)
            for term in STARTED:
                if isinstance(term, Term):
                    term.pump(0)
            time.sleep(0.02)

    def listening_address(self):
        self.wait_stderr("listening on ")
        return re.search(r"listening on (\S+)", self.stderr()).group(1)

    def type_line(self, text):
        self.process.stdin.write(text.encode() + b"\n")
        self.process.stdin.flush()

    def type_bytes(self, data):
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def close_stdin(self):
        self.process.stdin.close()

    def wait_exit(self):
        deadline = time.time() + PATIENCE
        while self.process.poll() is None:
            if time.time() > deadline:
                raise Failed("the piped program did not exit")
            for term in STARTED:
                if isinstance(term, Term):
                    term.pump(0)
            time.sleep(0.02)
        time.sleep(0.05)
        return self.process.returncode

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def describe(self):
        return "stdout:\n%s\nstderr:\n%s" % (self.stdout()[-3000:], self.stderr()[-3000:])


def errors(term):
    """The error lines on a terminal's screen (warnings are not errors)."""
    return [line for line in term.lines()
            if line.startswith("aeschat: ") and not line.startswith("aeschat: warning: ")]


def expect(condition, why):
    if not condition:
        raise Failed(why)


def piped_server(extra=()):
    server = Piped(["server", "--password-file", password_file(), "--listen", "127.0.0.1:0"]
                   + list(extra))
    return server, server.listening_address()


def terminal_client(address, env=None, extra=(), **size):
    client = Term(["client", "--connect", address, "--password-file", password_file()]
                  + list(extra), env=env, **size)
    client.wait_for("to Server>")
    return client


def terminal_server(env=None, extra=()):
    server = Term(["server", "--password-file", password_file(), "--listen", "127.0.0.1:0"]
                  + list(extra), env=env)
    server.wait_for("listening on ")
    address = re.search(r"listening on (\S+)", server.text()).group(1)
    # Keys go in once the line editor shows its prompt, as a person types: before that the
    # terminal is still in line mode, where a Ctrl-D is an end-of-file mark rather than a byte,
    # and the editor's raw mode never sees it (this raced: 1 run in 3 lost the key).
    server.wait_for("to Client>")
    return server, address


def quit_both(client, server):
    client.type("/quit\r")
    expect(client.wait_exit() == 0, "the client did not end cleanly: %r" % client.status)
    expect(server.wait_exit() == 0, "the server did not end cleanly")


# --- Scenarios -------------------------------------------------------------------------------

def a_long_paste_arrives_whole():
    server, address = piped_server(["--once"])
    client = terminal_client(address)
    # 20,000 characters, far past the terminal's 4,095-byte line limit, each position
    # recognisable, with some non-ASCII.
    text = "".join("%05d✓ " % i for i in range(0, 20000 // 7 + 1))[:20000]
    client.paste(text)
    client.type("\r")
    server.wait_stdout("[Client]: " + text + "\n")
    # Longer than a message can be: refused with a message, whole, and nothing is sent.
    client.paste("y" * 70000)
    client.type("\r")
    client.wait_for("not sent: a line of 70000 bytes")
    # A paste of several lines is one message each.
    client.paste("first pasted line\nsecond pasted line")
    client.type("\r")
    server.wait_stdout("[Client]: first pasted line\n[Client]: second pasted line\n")
    quit_both(client, server)
    expect("yyyy" not in server.stdout(), "part of the over-long paste was sent")


def an_incoming_message_leaves_the_typed_line_intact():
    server, address = piped_server(["--once"])
    client = terminal_client(address)
    client.type("I am typing a long sent")
    client.wait_for("to Server> I am typing a long sent")
    server.type_line("interrupting you!")
    client.wait_for("[Server]: interrupting you!")
    client.settle()
    lines = client.lines()
    expect("[Server]: interrupting you!" in lines, "the message is not on a line of its own")
    expect(lines.index("[Server]: interrupting you!") < lines.index("to Server> I am typing a long sent"),
           "the message is not above the input line")
    client.type("ence here\r")
    server.wait_stdout("[Client]: I am typing a long sentence here\n")
    client.wait_for("to Server> I am typing a long sentence here")
    quit_both(client, server)


def a_burst_of_messages_while_typing_loses_nothing():
    server, address = piped_server(["--once"])
    client = terminal_client(address)
    server.type_bytes("".join("burst %d\n" % i for i in range(500)).encode())
    typed = "typed during the burst, one key at a time"
    for key in typed:
        client.type(key)
    client.wait_for("[Server]: burst 499")
    client.wait_for("to Server> " + typed)
    client.type("\r")
    server.wait_stdout("[Client]: " + typed + "\n")
    lines = client.lines()
    expect(lines.index("[Server]: burst 499") < lines.index("to Server> " + typed),
           "the last message is not above the typed line")
    # The screen holds the last lines of the burst in order.
    shown = [int(line.split()[-1]) for line in lines if line.startswith("[Server]: burst ")]
    expect(shown == list(range(shown[0], 500)), "messages out of order: %r" % shown)
    quit_both(client, server)


def keys_edit_the_line_and_history_recalls():
    server, address = piped_server(["--once"])
    # History stays in memory: nothing may appear in the home directory.
    home = os.path.join(SCRATCH, "home")
    os.mkdir(home)
    client = terminal_client(address, env={"HOME": home, "XDG_CONFIG_HOME": home,
                                           "XDG_DATA_HOME": home, "XDG_STATE_HOME": home})
    # Left arrow, then a missing letter.
    client.type("helo" + ESC + "[D" + "l\r")
    server.wait_stdout("[Client]: hello\n")
    # Up brings back the last line; End and more text change it.
    client.type(ESC + "[A")
    client.wait_for(lambda text: text.count("to Server> hello") >= 2, "hello recalled")
    client.type(ESC + "[F" + " again\r")
    server.wait_stdout("[Client]: hello again\n")
    # Ctrl-L clears the screen and is not sent.
    client.type("\x0c")
    client.wait_for(lambda text: "[Client]" not in text and "hello again" not in text,
                    "a cleared screen")
    client.type("after ctrl-l\r")
    server.wait_stdout("[Client]: after ctrl-l\n")
    quit_both(client, server)
    expect("\\x1b" not in server.stdout() and "\\x0c" not in server.stdout(),
           "an editing key was sent as an escape")
    expect(not os.listdir(home), "the line editor wrote to the home directory: %r"
           % os.listdir(home))


def ctrl_c_leaves_the_client_cleanly():
    server, address = piped_server(["--once"])
    client = terminal_client(address)
    client.type("bye now\r")
    server.wait_stdout("[Client]: bye now\n")
    client.type("\x03")
    server.wait_stderr("[-] Client left")
    expect(client.wait_exit() == 0, "the client's Ctrl-C is not a clean end: %r" % client.status)
    expect(server.wait_exit() == 0, "the server saw a faulty end")
    expect("messages may be missing" not in server.stderr(), "the server reported a fault")
    expect("[-] Conversation closed" in client.text(), "the client did not say it closed")


def ctrl_c_leaves_the_server_cleanly():
    server, address = terminal_server()
    client = Piped(["client", "--connect", address, "--password-file", password_file()])
    server.wait_for("[+] Client connected")
    server.type("\x03")
    client.wait_stderr("[-] Server left")
    expect(client.wait_exit() == 0, "the client saw a faulty end")
    expect(server.wait_exit() == 0, "the server's Ctrl-C is not a clean end")


def a_second_ctrl_c_exits_at_once():
    server, address = piped_server(["--once"])
    client = terminal_client(address, extra=["--timeout", "60"])
    # A peer that does not answer the close: the first Ctrl-C waits for its answer.
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        client.type("\x03")
        client.wait_for("Ctrl-C again quits at once")
        started = time.time()
        client.type("\x03")
        expect(client.wait_exit() == 130, "a second Ctrl-C gave status %r" % client.status)
        expect(time.time() - started < 5, "a second Ctrl-C did not exit at once")
    finally:
        os.kill(server.process.pid, signal.SIGCONT)


def ctrl_c_while_waiting_exits_quietly():
    server, _ = terminal_server()
    server.type("\x03")
    expect(server.wait_exit() == 130, "Ctrl-C while waiting gave status %r" % server.status)
    expect(not errors(server), "Ctrl-C while waiting printed an error")
    # At the password prompt, too, and the terminal's echo is back afterwards.
    client = Term(["client", "--connect", "127.0.0.1:9"])
    client.wait_for("Enter shared password:")
    while termios.tcgetattr(client.fd)[3] & termios.ECHO:
        client.pump(0.01)
    client.type("secr\x03")
    expect(client.wait_exit() == 130, "Ctrl-C at the prompt gave status %r" % client.status)
    expect(not errors(client), "Ctrl-C at the prompt printed an error")


def a_client_started_first_counts_the_wait_then_connects():
    import socket
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    address = "127.0.0.1:%d" % probe.getsockname()[1]
    probe.close()
    client = Term(["client", "--connect", address, "--password-file", password_file(),
                   "--wait", "60"])
    client.wait_for("[*] No server at %s yet: waiting up to 60 s" % address)
    client.wait_for("[*] Still waiting: 2 s of 60 s")
    server = Piped(["server", "--password-file", password_file(), "--listen", address,
                    "--once"])
    client.wait_for("to Server>")
    lines = client.lines()
    counter = [index for index, line in enumerate(lines) if line.startswith("[*] Still waiting")]
    expect(len(counter) == 1 and lines[counter[0] + 1].startswith("[+] Connected"),
           "the count is not one line, ended before the next")
    quit_both(client, server)


def a_waiting_server_stops_at_ctrl_d_or_quit():
    for keys in ("\x04", "/quit\r"):
        server, _ = terminal_server()
        server.type(keys)
        server.wait_for("[-] Input ended with nobody connected: the server stops")
        expect(server.wait_exit() == 0, "%r did not stop the server cleanly" % keys)


def text_typed_with_nobody_connected_is_not_sent_later():
    server, address = terminal_server()
    server.type("anyone there?\r")
    server.wait_for("Not sent: nobody is connected")
    client = Piped(["client", "--connect", address, "--password-file", password_file()])
    server.wait_for("[+] Client connected")
    server.type("now you are here\r")
    client.wait_stdout("[Server]: now you are here\n")
    client.close_stdin()
    expect(client.wait_exit() == 0, "the client did not end cleanly")
    expect("anyone there" not in client.stdout(), "a line typed to nobody was sent later")
    server.type("\x04")
    expect(server.wait_exit() == 0, "Ctrl-D did not stop the waiting server")


# Every character README says is shown escaped, each between two letters.
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u202e", "\u2066",
             "\u061c", "\U000e0001", "\U000e0020", "\U000e0041", "\U000e007f", "\u115f",
             "\u1160", "\u3164", "\uffa0", "\ufe0f", "\U000e0100", "\u180b", "\u034f",
             "\u2028", "\u0085"]


def escaped(c):
    code = ord(c)
    return "\\x%02x" % code if code < 0x100 else "\\u{%x}" % code


def peer_text_cannot_hide_or_pretend():
    server, address = piped_server(["--once"])
    client = terminal_client(address, rows=60)
    for c in INVISIBLE:
        server.type_line("a" + c + "b")
    # Four typed characters, and one ESC byte followed by three.
    server.type_bytes(b"typed \\x1b and real \x1b[31m end\n")
    # A window title, a cleared screen and a moved cursor.
    server.type_bytes(b"\x1b]0;pwned\x07\x1b[2J\x1b[1;1Hmoved\n")
    # A flood of combining marks.
    server.type_line("e" + "\u0301" * 12 + "z")
    # A message that wraps at the window's edge into a line that reads like a status line.
    fake = "[-] Server left"
    server.type_line("x" * (COLS - len("[Server]: ")) + fake)
    client.wait_for("[Server]: " + "x" * (COLS - len("[Server]: ")))
    client.settle()
    lines = client.lines()
    for c in INVISIBLE:
        expect("[Server]: a" + escaped(c) + "b" in lines,
               "U+%04X is not shown escaped" % ord(c))
    expect("[Server]: typed \\\\x1b and real \\x1b[31m end" in lines,
           "a typed backslash and an ESC byte are not told apart")
    expect("[Server]: \\x1b]0;pwned\\x07\\x1b[2J\\x1b[1;1Hmoved" in lines,
           "escape sequences are not shown escaped")
    expect(client.screen.title != "pwned", "the peer set the window title")
    expect(client.lines()[0].startswith("=== AES Encrypted Chat Client"),
           "the peer cleared the screen")
    flood = [line for line in lines if line.endswith("}z")]
    expect(len(flood) == 1 and flood[0].count("\\u{301}") == 8,
           "a flood of combining marks is not cut short: %r" % flood)
    # The real status lines are marked, the peer's imitation is not.
    real = client.row_of("[+] Connected to the server")
    imitation = client.row_of(fake)
    expect(all(cell.bold for cell in client.cells(real, 3)), "a status line is not bold")
    expect(client.cells(real, 1)[0].fg != "default", "a status line has no colour")
    expect(not any(cell.bold for cell in client.cells(imitation, len(fake))),
           "peer text looks like a status line")
    expect(client.cells(imitation, 1)[0].fg == "default", "peer text has a colour")
    quit_both(client, server)


def without_colour_status_lines_are_still_marked():
    server, address = piped_server(["--once"])
    client = terminal_client(address, env={"NO_COLOR": "1"})
    fake = "[-] Server left"
    server.type_line("x" * (COLS - len("[Server]: ")) + fake)
    client.wait_for("\n" + fake)
    real = client.row_of("[+] Connected to the server")
    imitation = client.row_of(fake)
    expect(all(cell.bold for cell in client.cells(real, 3)), "a status line is not bold")
    expect(all(cell.fg == "default" for cell in client.cells(real, 20)),
           "NO_COLOR is not honoured")
    expect(not any(cell.bold for cell in client.cells(imitation, len(fake))),
           "peer text looks like a status line")
    quit_both(client, server)


def main():
    scenario = globals().get(SCENARIO)
    if scenario is None:
        print("no scenario " + SCENARIO)
        return 2
    try:
        scenario()
        return 0
    except Failed as failure:
        print("FAILED: %s" % failure)
        for started in STARTED:
            print("--- %s %s" % (type(started).__name__, started.describe()))
        return 1
    finally:
        for started in STARTED:
            started.stop()


if __name__ == "__main__":
    sys.exit(main())
