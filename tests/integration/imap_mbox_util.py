"""
What the IMAP mailbox tests (test_imap_mailbox.py, test_imap_idle.py)
share: a godwit with an imap listener (plaintext LOGIN allowed on
loopback) and a pop3 one, and a raw IMAP client that shows the exact
lines imaplib hides (untagged responses in order, response codes), with
a deadline on every read.
"""

import re
import smtplib
import socket
import time

from conftest import PASSWORD, free_port

ALICE = "alice@example.test"
BOB = "bob@example.test"


def imap_godwit(make_godwit, extra=None):
    """A started godwit with mx, imap (plaintext allowed) and pop3
    listeners: g.imap_port, g.pop3_port."""
    o = {"auth": {"delay_base": "100ms", "delay_max": "400ms"}}
    if extra:
        o.update(extra)
    g = make_godwit(o, start=False)
    g.imap_port, g.pop3_port = free_port(), free_port()
    g.config["listeners"] += [
        {"name": "imap", "protocol": "imap", "plaintext_auth": True,
         "listen": [f"127.0.0.1:{g.imap_port}"]},
        {"name": "pop3", "protocol": "pop3", "plaintext_auth": True,
         "listen": [f"127.0.0.1:{g.pop3_port}"]},
    ]
    g.write_config()
    g.start()
    return g


def crlf(text):
    if isinstance(text, str):
        text = text.encode()
    return text.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def message(subject, body="hello\n", to=ALICE):
    return crlf(f"From: sender@example.org\nTo: {to}\n"
                f"Subject: {subject}\nMessage-ID: <{subject}@example.org>\n"
                f"\n{body}")


def deliver(g, rcpt, msg):
    """Delivers msg over SMTP to the MX listener."""
    with smtplib.SMTP("127.0.0.1", g.port, timeout=30) as s:
        s.ehlo("client.test")
        s.sendmail("sender@example.org", [rcpt], msg)


class Raw:
    """A raw IMAP client: cmd() sends one command and returns
    (untagged lines, tagged line) as str, literals inlined."""

    def __init__(self, port, timeout=15):
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=timeout)
        self.timeout = timeout
        self.buf = b""
        self.n = 0
        greeting = self.line()
        assert greeting.startswith("* OK"), greeting

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no reply from the server")
        self.sock.settimeout(left)
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        self.buf += data

    def raw_line(self, timeout=None):
        """One line (bytes, CRLF stripped) with literals inlined."""
        deadline = time.monotonic() + (timeout or self.timeout)
        out = b""
        while True:
            while b"\r\n" not in self.buf:
                self._fill(deadline)
            line, self.buf = self.buf.split(b"\r\n", 1)
            out += line
            m = re.search(rb"\{(\d+)\}$", line)
            if not m:
                return out
            n = int(m.group(1))
            while len(self.buf) < n:
                self._fill(deadline)
            out += b"\r\n" + self.buf[:n]
            self.buf = self.buf[n:]

    def line(self, timeout=None):
        return self.raw_line(timeout).decode("utf-8", "replace")

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def tag(self):
        self.n += 1
        return f"t{self.n}"

    def cmd(self, text, timeout=None):
        t = self.tag()
        self.send(f"{t} {text}\r\n")
        return self.until(t, timeout)

    def until(self, t, timeout=None):
        untagged = []
        for _ in range(100000):
            ln = self.line(timeout)
            if ln.startswith(t + " "):
                return untagged, ln
            untagged.append(ln)
        raise AssertionError("too many lines")

    def login(self, user=ALICE, password=PASSWORD):
        _, tagged = self.cmd(f'LOGIN "{user}" "{password}"')
        assert tagged.split()[1] == "OK", tagged
        return self

    def append(self, mailbox, msg, flags="", date=None):
        """APPEND with a synchronising literal; (untagged, tagged)."""
        if isinstance(msg, str):
            msg = msg.encode()
        t = self.tag()
        args = f'"{mailbox}"'
        if flags:
            args += f" ({flags})"
        if date:
            args += f' "{date}"'
        self.send(f"{t} APPEND {args} {{{len(msg)}}}\r\n")
        ln = self.line()
        if not ln.startswith("+"):
            return [], ln
        self.send(msg + b"\r\n")
        return self.until(t)


def append_ok(c, mailbox, msg, flags=""):
    _, t = c.append(mailbox, msg, flags)
    assert t.split()[1] == "OK", t
    return t


def raw(g, user=ALICE):
    return Raw(g.imap_port).login(user)


def status_of(tagged):
    """'OK', 'NO' or 'BAD' of a tagged line."""
    return tagged.split(" ", 2)[1]


def code_of(tagged):
    """The response code of a tagged line ('' if none)."""
    m = re.match(r"\S+ \S+ \[([^\]]*)\]", tagged)
    return m.group(1) if m else ""
