"""
A minimal raw SMTP client for tests that must send exact bytes (pipelining,
smuggling, early talkers, BDAT) and read replies one by one. Every read has
a deadline; nothing here loops without a bound.
"""

import re
import socket
import time

ENH_RE = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?:\s|$)")


class Closed(Exception):
    """The server closed the connection (or reset it) before a full reply."""


class Reply:
    def __init__(self, lines):
        self.lines = lines  # text after "ddd-" / "ddd "
        self.raw_lines = lines
        self.code = int(lines[0][:3])
        self.texts = [l[4:] for l in lines]
        m = ENH_RE.match(self.texts[0]) if self.texts else None
        self.enh = ".".join(m.groups()) if m else None

    @property
    def text(self):
        return "\n".join(self.texts)

    def __repr__(self):
        return "Reply(%r)" % "\\n".join(self.lines)

    def __str__(self):
        return "\n".join(self.lines)


class RawSMTP:
    def __init__(self, host, port, timeout=10.0, source=None):
        """source: the local address to connect from (e.g. one of several
        added to lo)."""
        self.timeout = timeout
        self.sock = socket.create_connection(
            (host, port), timeout=timeout,
            source_address=(source, 0) if source else None)
        self.buf = b""
        self.closed = False
        self.greeting = None

    # -- sending ---------------------------------------------------------

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def try_send(self, data):
        """send(), but a reset or broken pipe (the server hung up on us)
        is not an error: returns False then."""
        try:
            self.send(data)
            return True
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            return False

    def cmd(self, line, timeout=None):
        """Sends one command line (CRLF added) and returns its reply."""
        self.send(line + "\r\n" if isinstance(line, str) else line + b"\r\n")
        return self.reply(timeout)

    def ehlo(self, name="client.test"):
        r = self.cmd(f"EHLO {name}")
        assert r.code == 250, f"EHLO: {r}"
        return r

    # -- receiving -------------------------------------------------------

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("reply deadline passed")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, ConnectionAbortedError):
            chunk = b""
        if not chunk:
            self.closed = True
            raise Closed(f"connection closed; unparsed data {self.buf!r}")
        self.buf += chunk

    def _line(self, deadline):
        while b"\r\n" not in self.buf:
            if len(self.buf) > 1 << 20:
                raise AssertionError("reply line longer than 1 MiB")
            self._fill(deadline)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def reply(self, timeout=None):
        """Reads one complete (possibly multi-line) reply."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        lines = []
        for _ in range(1000):
            line = self._line(deadline)
            if not re.match(r"^[2-5]\d\d([ -]|$)", line):
                raise AssertionError(f"malformed reply line {line!r} after {lines!r}")
            if lines and line[:3] != lines[0][:3]:
                raise AssertionError(f"reply code changed mid-reply: {lines!r} then {line!r}")
            lines.append(line)
            if len(line) == 3 or line[3] == " ":
                return Reply(lines)
        raise AssertionError("reply with more than 1000 lines")

    def replies(self, n, timeout=None):
        return [self.reply(timeout) for _ in range(n)]

    def read_all(self, timeout=3.0, max_replies=100):
        """Reads replies until the server closes, or until no more comes
        within timeout. Returns (replies, closed)."""
        out = []
        for _ in range(max_replies):
            try:
                out.append(self.reply(timeout))
            except Closed:
                return out, True
            except socket.timeout:
                return out, False
        return out, self.closed

    def read_raw_lines(self, timeout=5.0):
        """Everything the server sends until it closes or goes quiet for
        timeout, as text lines, without reply parsing (for servers that
        break a reply off on purpose, e.g. an early-talker rejection after
        a "220-" line). Returns (lines, closed)."""
        for _ in range(10000):
            try:
                self._fill(time.monotonic() + timeout)
            except Closed:
                break
            except socket.timeout:
                break
        lines = [l.decode("utf-8", "replace") for l in self.buf.split(b"\r\n")]
        self.buf = b""
        return [l for l in lines if l], self.closed

    def wait_closed(self, timeout=5.0):
        """True if the server closes the connection within timeout (any
        data that arrives first is kept in self.buf)."""
        deadline = time.monotonic() + timeout
        if self.closed:
            return True
        for _ in range(10000):
            try:
                self._fill(deadline)
            except Closed:
                return True
            except socket.timeout:
                return False
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def crlf(text):
    """Turns a LF-written multi-line string into CRLF bytes."""
    if isinstance(text, str):
        text = text.encode("utf-8")
    return text.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def dot_stuff(data):
    """RFC 5321 4.5.2 transparency for CRLF-terminated data."""
    lines = data.split(b"\r\n")
    return b"\r\n".join(b"." + l if l.startswith(b".") else l for l in lines)


def split_stored(stored, original_lf):
    """Splits a stored message into (prepended header block, rest) given
    the original message (LF line endings). Asserts the original follows
    the prepended headers exactly."""
    idx = stored.find(original_lf)
    assert idx >= 0, (
        "original message not found intact in stored file:\n"
        f"stored: {stored[:3000]!r}\noriginal: {original_lf[:1000]!r}"
    )
    assert idx + len(original_lf) == len(stored), (
        "stored file has extra bytes after the message:\n"
        f"{stored[idx + len(original_lf):][:500]!r}"
    )
    return stored[:idx], stored[idx:]


def header_fields(block):
    """Unfolds a header block (bytes, LF) into [(name_lower, value)]."""
    out = []
    for line in block.decode("utf-8", "replace").split("\n"):
        if not line:
            continue
        if line[0] in " \t" and out:
            out[-1] = (out[-1][0], out[-1][1] + " " + line.strip())
        elif ":" in line:
            name, value = line.split(":", 1)
            out.append((name.strip().lower(), value.strip()))
        else:
            out.append(("", line))
    return out


def make_message(marker, body=None, sender="sender@example.org",
                 to="alice@example.test", extra_headers=()):
    """An RFC 5322 message (CRLF bytes) whose Subject and body carry marker."""
    if body is None:
        body = f"Hello from the godwit tests.\nmarker {marker}\nBye.\n"
    hdrs = [
        f"From: <{sender}>",
        f"To: <{to}>",
        f"Subject: test {marker}",
        f"Message-ID: <{marker}@client.test>",
        "Date: Mon, 23 Nov 2026 06:40:00 +0000",
    ]
    hdrs.extend(extra_headers)
    head = ("\n".join(hdrs) + "\n\n").encode("utf-8")
    if isinstance(body, str):
        body = body.encode("utf-8")
    return crlf(head + body)


def transaction(c, sender, rcpts, message, mail_params=""):
    """MAIL, RCPT..., DATA, message (dot-stuffed here), final dot. Asserts
    the envelope is accepted; returns the reply to the final dot."""
    r = c.cmd(f"MAIL FROM:<{sender}>{(' ' + mail_params) if mail_params else ''}")
    assert r.code == 250, f"MAIL: {r}"
    for rcpt in rcpts:
        r = c.cmd(f"RCPT TO:<{rcpt}>")
        assert r.code == 250, f"RCPT {rcpt}: {r}"
    r = c.cmd("DATA")
    assert r.code == 354, f"DATA: {r}"
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    c.send(dot_stuff(message) + b".\r\n")
    return c.reply()


def send_one(port, sender, rcpts, message, helo="client.test", source=None,
             timeout=30):
    """One session on 127.0.0.1:port: the greeting, EHLO, one
    transaction (sender and rcpts accepted), QUIT. The reply to the final
    dot."""
    with RawSMTP("127.0.0.1", port, timeout=timeout, source=source) as c:
        assert c.reply().code == 220
        assert c.ehlo(helo).code == 250
        r = transaction(c, sender, rcpts, message)
        c.cmd("QUIT")
        return r
