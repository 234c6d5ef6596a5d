"""
POP3 (RFC 1939, 2449, 2595, 5034) against the real daemon with real
clients: Python's poplib (POP3, POP3_SSL, stls, capa, uidl, top), curl
pop3:// and pop3s://, and fetchmail (test_pop3_fetchmail.py). A raw
socket client checks what poplib hides: the exact octets on the wire.
"""

import base64
import hashlib
import hmac
import os
import poplib
import re
import signal
import smtplib
import socket
import subprocess
import time

import pytest

from conftest import PASSWORD, client_tls_context, free_port, wait_for

ALICE = "alice@example.test"
BOB = "bob@example.test"


# ------------------------------------------------------------- fixtures ---

@pytest.fixture
def pop(make_godwit, cert):
    """make(extra=None, plaintext=False, start=True) -> a godwit with the
    mx listener plus pop3 (110-style, STLS) and pop3s (995-style)."""

    def make(extra=None, plaintext=False, start=True):
        crt, key = cert
        o = {
            "tls": {"certificates": [{"cert": str(crt), "key": str(key)}]},
            "auth": {"delay_base": "100ms", "delay_max": "400ms",
                     "max_failures_ip": 4, "ban_time": "3s"},
            "smtp": {"max_message_size": "60M"},
        }
        if extra:
            for k, v in extra.items():
                o.setdefault(k, {})
                if isinstance(v, dict):
                    o[k].update(v)
                else:
                    o[k] = v
        g = make_godwit(o, start=False)
        g.pop3_port, g.pop3s_port = free_port(), free_port()
        l3 = {"name": "pop3", "protocol": "pop3",
              "listen": [f"127.0.0.1:{g.pop3_port}", f"[::1]:{g.pop3_port}"]}
        if plaintext:
            l3["plaintext_auth"] = True
        g.config["listeners"] += [
            l3,
            {"name": "pop3s", "protocol": "pop3s",
             "listen": [f"127.0.0.1:{g.pop3s_port}",
                        f"[::1]:{g.pop3s_port}"]},
        ]
        g.write_config()
        if start:
            g.start()
        return g

    return make


def pop3s(g, user=ALICE, password=PASSWORD, family=4):
    host = "127.0.0.1" if family == 4 else "::1"
    p = poplib.POP3_SSL(host, g.pop3s_port, context=client_tls_context(),
                        timeout=20)
    if user is not None:
        p.user(user)
        p.pass_(password)
    return p


def send(g, rcpt, msg):
    """Delivers msg (bytes, CRLF) over SMTP; returns it."""
    with smtplib.SMTP("127.0.0.1", g.port, timeout=30) as s:
        s.ehlo("client.test")
        s.sendmail("sender@example.org", [rcpt], msg)
    return msg


def crlf(text):
    if isinstance(text, str):
        text = text.encode()
    return text.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def message(subject, body):
    return crlf(f"From: sender@example.org\nTo: {ALICE}\n"
                f"Subject: {subject}\n\n") + crlf(body)


def retr_bytes(p, n):
    """RETR through poplib: the message as the client sees it, CRLF."""
    resp, lines, octets = p.retr(n)
    assert resp.startswith(b"+OK")
    data = b"".join(l + b"\r\n" for l in lines)
    assert octets == len(data)
    return data


def strip_trace(stored):
    """godwit prepends Return-Path, Delivered-To, Authentication-Results
    and Received: what follows them is what the client sent, byte for
    byte."""
    lines = stored.split(b"\r\n")
    i = 0
    while i < len(lines) and (lines[i].startswith((b"Return-Path:",
                                                   b"Delivered-To:",
                                                   b"Authentication-Results:",
                                                   b"Received:"))
                              or lines[i][:1] in (b" ", b"\t")):
        i += 1
    return b"\r\n".join(lines[i:])


class RawPOP3:
    """Just enough client to see the octets on the wire."""

    def __init__(self, host, port, tls=False, timeout=15):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        if tls:
            self.sock = client_tls_context().wrap_socket(
                self.sock, server_hostname="localhost")
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self):
        while b"\r\n" not in self.buf:
            d = self.sock.recv(65536)
            if not d:
                raise EOFError(self.buf)
            self.buf += d
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("latin-1")

    def cmd(self, c):
        self.send(c + "\r\n")
        return self.line()

    def multi(self):
        """The body of a multi-line response, raw (stuffed), up to and
        without the terminating ".\\r\\n"."""
        while True:
            if self.buf.startswith(b".\r\n"):
                self.buf = self.buf[3:]
                return b""
            i = self.buf.find(b"\r\n.\r\n")
            if i >= 0:
                out, self.buf = self.buf[:i + 2], self.buf[i + 5:]
                return out
            d = self.sock.recv(1 << 20)
            if not d:
                raise EOFError(self.buf[-200:])
            self.buf += d

    def closed(self, timeout=5):
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, OSError):
            return True

    def stls(self):
        r = self.cmd("STLS")
        assert r.startswith("+OK"), r
        assert self.buf == b""
        self.sock = client_tls_context().wrap_socket(
            self.sock, server_hostname="localhost")

    def login(self, user=ALICE, password=PASSWORD):
        assert self.cmd(f"USER {user}").startswith("+OK")
        r = self.cmd(f"PASS {password}")
        assert r.startswith("+OK"), r
        return r

    def close(self):
        self.sock.close()


def raw(g, tls=True, port=None, family=4):
    host = "127.0.0.1" if family == 4 else "::1"
    c = RawPOP3(host, port or (g.pop3s_port if tls else g.pop3_port), tls)
    greeting = c.line()
    assert greeting.startswith("+OK"), greeting
    return c


def put_file(g, address, name, data, sub="new"):
    """A message placed by hand, as another MDA or an import would."""
    d = g.maildir(address) / sub
    for s in ("tmp", "new", "cur"):
        (g.maildir(address) / s).mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)
    g.hand_over_mail()
    return d / name


def unstuff(body):
    """Removes the byte-stuffing of a raw multi-line body."""
    return b"".join(l[1:] if l.startswith(b".") else l
                    for l in body.splitlines(keepends=True))


# ---------------------------------------------------- capabilities, TLS ---

def test_capa_depends_on_tls(pop):
    g = pop()
    p = poplib.POP3("127.0.0.1", g.pop3_port, timeout=20)
    caps = p.capa()
    for c in ("TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING",
              "STLS", "IMPLEMENTATION"):
        assert c in caps, (c, caps)
    # no password in the clear: neither USER nor SASL before STLS
    assert "USER" not in caps and "SASL" not in caps
    p.stls(context=client_tls_context())
    caps = p.capa()
    assert "STLS" not in caps
    assert "USER" in caps
    assert {"PLAIN", "SCRAM-SHA-256"} <= set(caps["SASL"])
    p.user(ALICE)
    p.pass_(PASSWORD)
    caps = p.capa()
    assert "USER" not in caps and "TOP" in caps
    p.quit()
    q = pop3s(g, user=None)
    caps = q.capa()
    assert "USER" in caps and "STLS" not in caps
    q.quit()


def test_plaintext_login_refused_before_stls(pop):
    g = pop()
    c = raw(g, tls=False)
    r = c.cmd(f"USER {ALICE}")
    assert r.startswith("-ERR [AUTH]") and "Plaintext" in r, r
    assert c.cmd(f"PASS {PASSWORD}").startswith("-ERR")
    plain = base64.b64encode(f"\0{ALICE}\0{PASSWORD}".encode()).decode()
    assert c.cmd(f"AUTH PLAIN {plain}").startswith("-ERR [AUTH]")
    assert c.cmd("STAT").startswith("-ERR")
    # after STLS the same login works
    c.stls()
    c.login()
    assert re.match(r"\+OK \d+ \d+$", c.cmd("STAT"))
    assert c.cmd("QUIT").startswith("+OK")
    assert "result=ok" in g.log_text()


def test_plaintext_allowed_when_the_listener_says_so(pop):
    g = pop(plaintext=True)
    send(g, ALICE, message("plain", "hello\n"))
    p = poplib.POP3("127.0.0.1", g.pop3_port, timeout=20)
    assert "USER" in p.capa()
    p.user(ALICE)
    p.pass_(PASSWORD)
    assert p.stat()[0] == 1
    p.quit()


def test_stls_injection_is_discarded(pop):
    """Commands pipelined behind STLS must not run after the handshake
    (the STARTTLS command-injection attack, CVE-2011-0411)."""
    g = pop(plaintext=True)
    c = raw(g, tls=False)
    c.send("STLS\r\nUSER evil@example.test\r\n")
    assert c.line().startswith("+OK")
    c.sock = client_tls_context().wrap_socket(c.sock,
                                              server_hostname="localhost")
    # had USER run, PASS would be accepted as its continuation
    r = c.cmd(f"PASS {PASSWORD}")
    assert r.startswith("-ERR") and "USER" in r, r
    c.close()


def test_stls_twice_and_on_pop3s_refused(pop):
    g = pop()
    c = raw(g, tls=False)
    c.stls()
    assert c.cmd("STLS").startswith("-ERR")
    c.close()
    c = raw(g, tls=True)
    assert c.cmd("STLS").startswith("-ERR")
    c.close()


# ------------------------------------------------------ the basic cycle ---

@pytest.mark.parametrize("family", [4, 6])
def test_retrieve_delete_quit(pop, family):
    g = pop()
    sent = [send(g, ALICE, message(f"m{i}", f"body {i}\n")) for i in range(3)]
    g.wait_messages(ALICE, 3)
    p = pop3s(g, family=family)
    count, size = p.stat()
    assert count == 3
    resp, listing, _ = p.list()
    sizes = {int(a): int(b) for a, b in (l.split() for l in listing)}
    assert sorted(sizes) == [1, 2, 3] and sum(sizes.values()) == size
    got = [retr_bytes(p, i) for i in (1, 2, 3)]
    for i in (1, 2, 3):
        assert len(got[i - 1]) == sizes[i]
    # arrival order, and each is what was sent after the trace headers
    assert [strip_trace(m) for m in got] == sent
    assert got[0].startswith(b"Return-Path: <sender@example.org>\r\n")
    p.dele(2)
    p.quit()
    left = g.maildir_messages(ALICE)
    assert len(left) == 2
    assert not any(b"Subject: m1" in m for m in left)
    log = g.log_text()
    assert re.search(r"event=login .*user=alice@example.test .*messages=3",
                     log)
    assert re.search(r"event=logout .*reason=quit retrieved=3 deleted=1",
                     log), log


def test_byte_exact_dots_8bit_and_long_lines(pop):
    g = pop()
    bodies = [
        b".starts with a dot\r\n..two dots\r\n.\r\nafter a lone dot\r\n",
        "8-bit: caf\u00e9 \u00fc\u00f1\u00ee\u00e7\u00f8d\u00e9\r\n".encode(),
        b"x" * 998 + b"\r\n" + b".y" * 400 + b"\r\n",
        b"",
        b"\r\n\r\n\r\n",
    ]
    sent = []
    for i, b in enumerate(bodies):
        m = crlf(f"From: sender@example.org\nTo: {ALICE}\nSubject: b{i}\n"
                 "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
                 "Content-Transfer-Encoding: 8bit\n\n") + b
        with smtplib.SMTP("127.0.0.1", g.port, timeout=30) as s:
            s.ehlo("client.test")
            s.sendmail("sender@example.org", [ALICE], m,
                       mail_options=["BODY=8BITMIME"])
        sent.append(m)
    g.wait_messages(ALICE, len(bodies))
    p = pop3s(g)
    _, listing, _ = p.list()
    sizes = [int(l.split()[1]) for l in listing]
    for i, m in enumerate(sent):
        got = retr_bytes(p, i + 1)
        assert strip_trace(got) == m
        assert len(got) == sizes[i]
    p.quit()
    # and on the wire: stuffed, CRLF only, terminated once
    c = raw(g)
    c.login()
    r = c.cmd("RETR 1")
    n = int(r.split()[1])
    wire = c.multi()
    assert b"\r\n...two dots\r\n" in wire and b"\r\n..\r\n" in wire
    assert b"\r\n..starts with a dot\r\n" in wire
    assert len(unstuff(wire)) == n
    assert re.search(rb"(?<!\r)\n", wire) is None
    c.cmd("QUIT")


def test_stored_bare_cr_crlf_and_unterminated(pop):
    """Files another MDA wrote: CRLF line ends, a bare CR, no final line
    end, no ,W= in the name. Sizes are computed; what RETR sends is what
    LIST said."""
    g = pop()
    files = {
        "1000000001.foreign1.host": b"Subject: crlf\r\n\r\nline\r\n.dot\r\n",
        "1000000002.foreign2.host:2,S": b"Subject: cr\n\nbare\rcr\n",
        "1000000003.foreign3.host": b"Subject: unterminated\n\nlast",
    }
    for name, data in files.items():
        put_file(g, ALICE, name, data)
    c = raw(g)
    c.login()
    assert c.cmd("STAT") == "+OK 3 {}".format(
        sum(len(v.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
            for v in files.values()) + 2)
    want = [
        b"Subject: crlf\r\n\r\nline\r\n..dot\r\n",
        b"Subject: cr\r\n\r\nbare\rcr\r\n",
        b"Subject: unterminated\r\n\r\nlast\r\n",
    ]
    for i, w in enumerate(want, 1):
        size = int(c.cmd(f"LIST {i}").split()[2])
        r = c.cmd(f"RETR {i}")
        assert r == f"+OK {size} octets", r
        body = c.multi()
        assert body == w
        assert len(unstuff(body)) == size
    assert c.cmd("QUIT").startswith("+OK")


def test_top(pop):
    g = pop()
    send(g, ALICE, message("top", "one\n.two\nthree\nfour\n"))
    g.wait_messages(ALICE, 1)
    p = pop3s(g)
    resp, lines, _ = p.top(1, 0)
    assert lines[-1] == b"" and b"Subject: top" in lines
    assert b"one" not in lines
    resp, lines, _ = p.top(1, 2)
    assert lines[-2:] == [b"one", b".two"]
    resp, lines, _ = p.top(1, 100)
    assert lines[-1] == b"four"
    # TOP does not count as retrieved
    p.quit()
    assert "retrieved=0" in g.log_text()


def test_logout_counts_retr_not_top(pop):
    """The logout line's retrieved= and octets= are what RETR sent; TOP
    output is not retrieved mail (it was counted in octets)."""
    g = pop()
    for i in range(2):
        send(g, ALICE, message(f"t{i}", "line\n" * 200))
    g.wait_messages(ALICE, 2)
    p = pop3s(g)
    p.top(1, 100)
    p.top(2, 5)
    sizes = {int(a): int(b) for a, b in (l.split() for l in p.list()[1])}
    data = retr_bytes(p, 2)
    assert len(data) == sizes[2]
    p.quit()
    m = re.search(r"event=logout .*reason=quit retrieved=(\d+) deleted=0 "
                  r"delete_failed=0 octets=(\d+)", g.log_text())
    assert m, g.log_text()
    assert (int(m.group(1)), int(m.group(2))) == (1, sizes[2])


def test_uidl_stable_across_sessions_moves_and_restarts(pop):
    g = pop()
    for i in range(3):
        send(g, ALICE, message(f"u{i}", "x\n"))
    put_file(g, ALICE, "1900000000." + "h" * 80 + ",S=10", b"S: long\n\nx\n")
    g.wait_messages(ALICE, 4)
    p = pop3s(g)
    _, listing, _ = p.uidl()
    first = [l.split()[1] for l in listing]
    p.quit()
    assert len(set(first)) == 4
    for u in first:
        assert 1 <= len(u) <= 70 and all(0x21 <= c <= 0x7E for c in u)
    # a reader marks the messages seen: new/ -> cur/ with flags
    for f in (g.maildir(ALICE) / "new").iterdir():
        f.rename(g.maildir(ALICE) / "cur" / (f.name + ":2,S"))
    p = pop3s(g)
    assert [l.split()[1] for l in p.uidl()[1]] == first
    assert p.uidl(2).split()[2] == first[1]
    p.quit()
    g.stop()
    g.start()
    p = pop3s(g)
    assert [l.split()[1] for l in p.uidl()[1]] == first
    # RETR finds a message that moved after the snapshot was taken
    f = sorted((g.maildir(ALICE) / "cur").iterdir())[0]
    f.rename(f.with_name(f.name + "T"))
    assert b"Subject: u0" in retr_bytes(p, 1)
    p.quit()


# ------------------------------------------------------- Maildir rules ---

def test_snapshot_at_login(pop):
    g = pop()
    send(g, ALICE, message("before", "x\n"))
    g.wait_messages(ALICE, 1)
    p = pop3s(g)
    assert p.stat()[0] == 1
    send(g, ALICE, message("during", "x\n"))
    g.wait_messages(ALICE, 2)
    assert p.stat()[0] == 1
    assert len(p.list()[1]) == 1
    with pytest.raises(poplib.error_proto):
        p.retr(2)
    p.quit()
    p = pop3s(g)
    assert p.stat()[0] == 2
    p.quit()


def test_second_session_gets_in_use(pop):
    g = pop()
    a = pop3s(g)
    b = pop3s(g, user=None)
    b.user(ALICE)
    with pytest.raises(poplib.error_proto) as e:
        b.pass_(PASSWORD)
    assert b"[IN-USE]" in e.value.args[0]
    # another user is not affected
    pop3s(g, user=BOB).quit()
    a.quit()
    # the lock went with the QUIT: the waiting client gets in at once
    b.user(ALICE)
    b.pass_(PASSWORD)
    b.quit()
    assert "reason=in-use" in g.log_text()


def test_disconnect_without_quit_deletes_nothing(pop):
    g = pop()
    for i in range(3):
        send(g, ALICE, message(f"d{i}", "x\n"))
    g.wait_messages(ALICE, 3)
    c = raw(g)
    c.login()
    for i in (1, 2, 3):
        assert c.cmd(f"DELE {i}").startswith("+OK")
    assert c.cmd("STAT") == "+OK 0 0"
    c.close()
    # the lock is released when the worker sees the close
    p = wait_for(lambda: _try_login(g), 10, what="login after disconnect")
    assert p.stat()[0] == 3
    p.quit()
    assert len(g.maildir_files(ALICE)) == 3
    # (a TLS connection closed without close_notify logs as tls-error)
    assert re.search(r"event=logout .*reason=(eof|tls-error) .*deleted=0 ",
                     g.log_text())


def _try_login(g, user=ALICE):
    try:
        return pop3s(g, user=user)
    except poplib.error_proto as e:
        if b"[IN-USE]" in e.args[0]:
            return None
        raise


def test_rset_undeletes(pop):
    g = pop()
    send(g, ALICE, message("r", "x\n"))
    g.wait_messages(ALICE, 1)
    c = raw(g)
    c.login()
    assert c.cmd("DELE 1").startswith("+OK")
    assert c.cmd("DELE 1").startswith("-ERR")
    assert c.cmd("RETR 1").startswith("-ERR")
    assert c.cmd("LIST 1").startswith("-ERR")
    assert c.cmd("RSET").startswith("+OK 1 ")
    assert c.cmd("LIST 1").startswith("+OK 1 ")
    assert c.cmd("QUIT") == "+OK Logging out, 0 messages deleted"
    assert len(g.maildir_files(ALICE)) == 1


def test_worker_killed_mid_session(pop):
    """kill -9 of the worker holding a session: nothing is deleted and the
    lock does not outlive the process."""
    g = pop({"workers": 1})
    for i in range(2):
        send(g, ALICE, message(f"k{i}", "x\n"))
    g.wait_messages(ALICE, 2)
    c = raw(g)
    c.login()
    assert c.cmd("DELE 1").startswith("+OK")
    assert c.cmd("DELE 2").startswith("+OK")
    workers = g.children()
    assert workers
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    assert c.closed()
    g.expect_crash = True
    p = wait_for(lambda: _try_connect_login(g), 15,
                 what="login after the worker was killed")
    assert p.stat()[0] == 2
    p.quit()
    assert len(g.maildir_files(ALICE)) == 2


def _try_connect_login(g):
    try:
        return _try_login(g)
    except (ConnectionError, OSError, poplib.error_proto):
        return None


def test_commands_in_the_wrong_state(pop):
    g = pop()
    send(g, ALICE, message("w", "x\n"))
    g.wait_messages(ALICE, 1)
    c = raw(g)
    for cmd in ("STAT", "LIST", "RETR 1", "DELE 1", "UIDL", "TOP 1 0",
                "RSET", "NOOP"):
        assert c.cmd(cmd).startswith("-ERR"), cmd
    assert c.cmd(f"PASS {PASSWORD}").startswith("-ERR")   # no USER yet
    c.close()
    bad = ["RETR 2", "RETR 0", "DELE 99", "LIST 2", "UIDL 7", "TOP 2 1",
           "RETR", "RETR x", "RETR 1 2", "TOP 1", "STAT 1", f"USER {ALICE}",
           "PASS x", "AUTH PLAIN", "STLS",
           "APOP alice 0123456789abcdef0123456789abcdef", "XYZZY"]
    for i in range(0, len(bad), 6):
        c = raw(g)
        c.login()
        for cmd in bad[i:i + 6]:
            r = c.cmd(cmd)
            assert r.startswith("-ERR"), (cmd, r)
            assert len(r) <= 510
        assert c.cmd("NOOP") == "+OK"
        c.cmd("QUIT")
    # ten errors and the server hangs up
    c = raw(g)
    c.login()
    for i in range(10):
        assert c.cmd("RETR 9").startswith("-ERR")
    assert c.closed()
    assert len(g.maildir_files(ALICE)) == 1


def test_quit_before_login_and_line_limits(pop):
    g = pop()
    c = raw(g)
    r = c.cmd("USER " + "a" * 300)
    assert r.startswith("-ERR"), r
    assert c.cmd("NOOP").startswith("-ERR")    # still talking, in sync
    assert c.cmd("QUIT").startswith("+OK")
    assert c.closed()


# ------------------------------------------------------------ SASL AUTH ---

def test_auth_plain_login_and_scram(pop):
    g = pop()
    c = raw(g)
    plain = base64.b64encode(f"\0{ALICE}\0{PASSWORD}".encode()).decode()
    assert c.cmd(f"AUTH PLAIN {plain}").startswith("+OK")
    c.cmd("QUIT")
    # without an initial response: "+ " then the response
    c = raw(g)
    assert c.cmd("AUTH PLAIN") == "+ "
    assert c.cmd(plain).startswith("+OK")
    c.cmd("QUIT")
    # LOGIN
    c = raw(g)
    assert base64.b64decode(c.cmd("AUTH LOGIN")[2:]) == b"Username:"
    c.cmd(base64.b64encode(ALICE.encode()).decode())
    assert c.cmd(base64.b64encode(PASSWORD.encode()).decode()).startswith(
        "+OK")
    c.cmd("QUIT")
    # SCRAM-SHA-256, a client written from RFC 5802 / 7677 here
    c = raw(g)
    cnonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = f"n={ALICE},r={cnonce}"
    r = c.cmd("AUTH SCRAM-SHA-256 " +
              base64.b64encode(("n,," + first_bare).encode()).decode())
    assert r.startswith("+ "), r
    server_first = base64.b64decode(r[2:]).decode()
    attrs = dict(a.split("=", 1) for a in server_first.split(","))
    salted = hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(),
                                 base64.b64decode(attrs["s"]), int(attrs["i"]))
    ckey = hmac.new(salted, b"Client Key", "sha256").digest()
    final_nop = f"c=biws,r={attrs['r']}"
    auth_msg = f"{first_bare},{server_first},{final_nop}".encode()
    sig = hmac.new(hashlib.sha256(ckey).digest(), auth_msg, "sha256").digest()
    proof = base64.b64encode(bytes(a ^ b for a, b in zip(ckey, sig)))
    r = c.cmd(base64.b64encode(f"{final_nop},p={proof.decode()}".encode())
              .decode())
    skey = hmac.new(salted, b"Server Key", "sha256").digest()
    want = b"v=" + base64.b64encode(hmac.new(skey, auth_msg, "sha256").digest())
    assert base64.b64decode(r[2:]) == want
    assert c.cmd("").startswith("+OK")
    assert re.match(r"\+OK \d+ \d+$", c.cmd("STAT"))
    c.cmd("QUIT")
    # cancel, unknown mechanism, the bare AUTH listing
    c = raw(g)
    assert c.cmd("AUTH PLAIN") == "+ "
    assert c.cmd("*").startswith("-ERR")
    assert c.cmd("AUTH NOSUCH").startswith("-ERR")
    c.send("AUTH\r\n")
    assert c.line() == "+OK"
    assert b"PLAIN\r\n" in c.multi()
    c.close()
    assert "mech=SCRAM-SHA-256 result=ok" in g.log_text()


def test_wrong_password_delays_then_bans(pop):
    g = pop()
    c = raw(g)
    times = []
    for i in range(3):
        c.cmd(f"USER {ALICE}")
        t0 = time.monotonic()
        r = c.cmd("PASS wrong")
        times.append(time.monotonic() - t0)
        assert r.startswith("-ERR [AUTH]"), r
    assert times[0] >= 0.08 and times[2] >= 0.35, times
    c.cmd(f"USER {ALICE}")
    t0 = time.monotonic()
    assert c.cmd("PASS wrong").startswith("-ERR [AUTH]")   # 4th: banned
    assert c.closed()
    c = RawPOP3("127.0.0.1", g.pop3_port)
    r = c.line()
    assert r == "-ERR [SYS/TEMP] too many failed logins from your address", r
    # on the implicit-TLS port a plaintext line would be garbage: closed
    with pytest.raises((ConnectionError, OSError)):
        RawPOP3("127.0.0.1", g.pop3s_port, tls=True).line()
    # the ban is shared with SMTP AUTH: one brake for both doors
    log = g.log_text()
    assert "fac=pop3 event=ban" in log
    # it ends, 3 s (ban_time) after the 4th failure: not before, and soon
    # after
    def unbanned():
        c = RawPOP3("127.0.0.1", g.pop3_port)
        try:
            r = c.line()
        finally:
            c.sock.close()
        if r.startswith("+OK"):
            return time.monotonic() - t0
        assert r == "-ERR [SYS/TEMP] too many failed logins from your address", r
        return False
    elapsed = wait_for(unbanned, t0 + 4.5 - time.monotonic(), interval=0.1,
                       what="the ban to end")
    assert elapsed >= 2.9, f"the 3 s ban ended after {elapsed:.2f}s"
    pop3s(g).quit()


# ---------------------------------------------------------- pipelining ---

def test_pipelined_session(pop):
    g = pop()
    for i in range(5):
        send(g, ALICE, message(f"p{i}", f"body {i}\n"))
    g.wait_messages(ALICE, 5)
    c = raw(g)
    c.send(f"USER {ALICE}\r\nPASS {PASSWORD}\r\nSTAT\r\nLIST\r\n" +
           "".join(f"RETR {i}\r\n" for i in range(1, 6)) +
           "DELE 1\r\nQUIT\r\n")
    assert c.line().startswith("+OK")          # USER
    assert c.line().startswith("+OK Logged in")
    assert c.line().startswith("+OK 5 ")
    assert c.line().startswith("+OK 5 messages")
    assert len(c.multi().splitlines()) == 5
    for i in range(5):
        assert c.line().startswith("+OK")
        assert f"Subject: p{i}".encode() in c.multi()
    assert c.line().startswith("+OK")          # DELE
    assert c.line() == "+OK Logging out, 1 messages deleted"
    assert c.closed()
    assert len(g.maildir_files(ALICE)) == 4


# ----------------------------------------------------------------- curl ---

def test_curl_pop3s_and_stls(pop):
    g = pop()
    for i in range(2):
        send(g, ALICE, message(f"c{i}", f"curl body {i}\n"))
    g.wait_messages(ALICE, 2)
    base = ["curl", "-sS", "-k", "--max-time", "30",
            "--user", f"{ALICE}:{PASSWORD}"]
    url = f"pop3s://127.0.0.1:{g.pop3s_port}/"
    r = subprocess.run(base + [url], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().split("\r\n")
    assert lines[0].startswith("1 ") and lines[1].startswith("2 ")
    r = subprocess.run(base + [url + "2"], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert b"Subject: c1" in r.stdout and b"curl body 1" in r.stdout
    r = subprocess.run(base + ["-X", "DELE", "-I", url + "1"],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    left = g.maildir_messages(ALICE)
    assert len(left) == 1 and b"Subject: c1" in left[0]
    # 110 with STLS required by the client
    r = subprocess.run(base + ["--ssl-reqd",
                               f"pop3://127.0.0.1:{g.pop3_port}/1"],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert b"Subject: c1" in r.stdout
    # a wrong password: curl fails, reading nothing
    r = subprocess.run(["curl", "-sS", "-k", "--max-time", "30", "--user",
                        f"{ALICE}:wrong", url], capture_output=True,
                       timeout=60)
    assert r.returncode != 0


# --------------------------------------------------------- big messages ---

def worker_rss_kb(g):
    total = 0
    for pid in g.children():
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total = max(total, int(line.split()[1]))
    return total


def test_50_mb_message_is_streamed(pop):
    g = pop({"workers": 1}, start=False)
    # ASan keeps freed memory in quarantine (256 MB by default), which
    # would count every buffer the stream went through as resident
    g.asan_extra = "quarantine_size_mb=1"
    g.start()
    line = b"0123456789abcdefghijklmnopqrstuvwxyz.ABCDEFGHIJKLMNOPQRSTUVWXYZ\n"
    body = b"Subject: big\n\n" + line * (50 * 1024 * 1024 // len(line))
    body += b".leading dot at the end\n"
    put_file(g, ALICE, "1000000000.big.host", body)
    want = hashlib.sha256(body.replace(b"\n", b"\r\n")).hexdigest()
    c = raw(g)
    c.login()
    rss0 = worker_rss_kb(g)
    r = c.cmd("RETR 1")
    size = int(r.split()[1])
    assert size == len(body) + body.count(b"\n")
    h = hashlib.sha256()
    got = 0
    pending, c.buf = c.buf, b""     # what came with the +OK line
    peak = rss0
    while True:
        d = c.sock.recv(1 << 20)
        assert d, "connection closed during RETR"
        pending += d
        # unstuff line by line
        *full, pending = pending.split(b"\r\n")
        done = False
        for l in full:
            if l == b".":
                done = True
                break
            l = l[1:] if l.startswith(b".") else l
            h.update(l + b"\r\n")
            got += len(l) + 2
        if done:
            break
        if got % (8 << 20) < (1 << 20):
            peak = max(peak, worker_rss_kb(g))
    assert got == size
    assert h.hexdigest() == want
    # the worker never held the message: its memory grew by far less
    # than 50 MB (ASan's own overhead included)
    assert peak - rss0 < 20 * 1024, (rss0, peak)
    c.cmd("QUIT")


# ------------------------------------------------------ delay, shutdown ---

def test_login_delay(pop):
    g = pop({"pop3": {"login_delay": "1h"}})
    p = pop3s(g, user=None)
    assert p.capa()["LOGIN-DELAY"] == ["3600"]
    p.user(ALICE)
    p.pass_(PASSWORD)
    p.quit()
    p = pop3s(g, user=None)
    p.user(ALICE)
    with pytest.raises(poplib.error_proto) as e:
        p.pass_(PASSWORD)
    assert b"[LOGIN-DELAY]" in e.value.args[0]
    p.quit()


def test_sigterm_during_a_session_deletes_nothing(pop):
    g = pop()
    send(g, ALICE, message("t", "x\n"))
    g.wait_messages(ALICE, 1)
    c = raw(g)
    c.login()
    assert c.cmd("DELE 1").startswith("+OK")
    g.stop()
    assert c.line().startswith("-ERR [SYS/TEMP]")
    assert len(g.maildir_files(ALICE)) == 1


def test_reload_keeps_the_session(pop):
    g = pop()
    send(g, ALICE, message("h", "x\n"))
    g.wait_messages(ALICE, 1)
    c = raw(g)
    c.login()
    offset = g.log_size()
    g.reload()
    # the parent has a new generation of workers and has told the old
    # ones (this session's among them) to drain
    wait_for(lambda: " fac=daemon event=reloaded " in g.log_since(offset),
             10, what="the reload")
    assert c.cmd("STAT").startswith("+OK 1 ")
    assert c.cmd("DELE 1").startswith("+OK")
    assert c.cmd("QUIT").startswith("+OK")
    assert g.maildir_files(ALICE) == []


# ------------------------------------------------------------ retention ---

def test_retention_removes_old_mail(pop):
    g = pop(start=False)
    old = time.time() - 200 * 86400
    for i, who in enumerate((ALICE, BOB)):
        f = put_file(g, who, f"100000000{i}.old.host", b"Subject: old\n\nx\n",
                     sub="cur" if i else "new")
        os.utime(f, (old, old))
        put_file(g, who, f"170000000{i}.recent.host", b"Subject: new\n\nx\n")
    tmp = g.maildir(ALICE) / "tmp" / "inflight"
    tmp.write_bytes(b"x")
    os.utime(tmp, (old, old))
    g.hand_over_mail()
    g.update_config({"retention": {"mail": "180d", "interval": "1h"}})
    g.start()
    wait_for(lambda: "fac=retention event=sweep" in g.log_text(), 15,
             what="the retention sweep")
    log = g.log_text()
    assert re.search(r"event=sweep max_age_days=180 mailboxes=2 "
                     r"skipped_in_use=0 removed=2 ", log), log
    names = sorted(f.name for f in g.all_maildir_files())
    assert names == ["1700000000.recent.host", "1700000001.recent.host"]
    assert tmp.exists()
    p = pop3s(g)
    assert p.capa()["EXPIRE"] == ["180"]
    p.quit()


def test_list_and_uidl_of_100000_messages(pop):
    """A big mailbox: every size comes from the ,W= in the name (the files
    are empty, so a server that read them would get every size wrong), and
    LIST/UIDL stream 100,000 lines without holding them all."""
    g = pop(start=False)
    new = g.maildir(ALICE) / "new"
    for s in ("tmp", "new", "cur"):
        (g.maildir(ALICE) / s).mkdir(parents=True, exist_ok=True)
    n = 100_000
    for i in range(n):
        (new / f"{1600000000 + i}.M{i}P1Q{i:016x}_0.host,S={i},W={i + 7}"
         ).touch()
    g.hand_over_mail()
    g.start()
    c = raw(g)
    c.login()
    total = sum(i + 7 for i in range(n))
    assert c.cmd("STAT") == f"+OK {n} {total}"
    assert c.cmd("LIST").startswith(f"+OK {n} messages")
    lines = c.multi().split(b"\r\n")[:-1]
    assert len(lines) == n
    assert lines[0] == b"1 7" and lines[-1] == f"{n} {n + 6}".encode()
    assert c.cmd("UIDL").startswith("+OK")
    uidls = c.multi().split(b"\r\n")[:-1]
    assert len(uidls) == n and len(set(u.split()[1] for u in uidls)) == n
    assert uidls[1] == b"2 1600000001.M1P1Q0000000000000001_0.host"
    assert c.cmd(f"LIST {n}") == f"+OK {n} {n + 6}"
    assert c.cmd("QUIT").startswith("+OK")
