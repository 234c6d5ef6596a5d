"""
Slow clients: a client that trickles its input
must not hold a connection longer than the configured deadlines.

- a command line must be complete within smtp.timeouts.command (POP3:
  pop3.login_timeout before login), however its bytes trickle in: the
  old idle timer started again with every byte;
- a TLS handshake (STARTTLS, STLS, implicit TLS) within
  tls.handshake_timeout;
- a message's text at smtp.min_data_rate after smtp.timeouts.data_block;
- under stress (limits.stress_threshold percent of max_connections in
  use) the sessions that have not logged in get limits.stress_timeout.

The timeouts are configured short (2 s) so each test takes seconds; the
bounds checked are generous (a cut must come well before the drip would
have ended), never a measure of speed.
"""

import base64
import re
import socket
import ssl
import time

import pytest

from conftest import (PASSWORD, client_tls_context, deep_merge, free_port,
                      wait_for)
from smtpclient import RawSMTP

# how long a dripping client keeps going before the test gives up: far
# beyond every deadline configured here
DRIP_FOR = 25


def _events(g, fac, event):
    """The kv log lines of fac/event, each as a dict (values unquoted)."""
    out = []
    for line in g.log_text().splitlines():
        if f" fac={fac} " not in line or f" event={event}" not in line:
            continue
        d = {}
        for m in re.finditer(r'([a-z_0-9]+)=("(?:[^"\\]|\\.)*"|\S*)', line):
            v = m.group(2)
            d[m.group(1)] = v[1:-1] if v.startswith('"') else v
        if d.get("fac") == fac and d.get("event") == event:
            out.append(d)
    return out


def _assert_timeout_logged(g, fac, wait):
    """A timeout event of this kind, and its session's disconnect with
    reason=timeout."""
    def find():
        for t in _events(g, fac, "timeout"):
            if t.get("wait") != wait:
                continue
            for d in _events(g, fac, "disconnect"):
                if d.get("session") == t.get("session"):
                    return t, d
        return None

    found = wait_for(find, 10, what=f"{fac} timeout wait={wait} in the log")
    t, d = found
    assert d.get("reason") == "timeout", d


def _drip(sock, data, interval, until_closed=True):
    """Sends data one byte every interval seconds, reading whatever the
    server says. Returns (what it said, seconds until it closed), or
    (said, None) if it never closed within DRIP_FOR seconds."""
    sock.setblocking(False)
    said = b""
    t0 = time.monotonic()
    i = 0
    while time.monotonic() - t0 < DRIP_FOR:
        if i < len(data):
            try:
                sock.send(data[i:i + 1])
            except (BrokenPipeError, ConnectionResetError):
                return said, time.monotonic() - t0
            except BlockingIOError:
                pass
            i += 1
        end = time.monotonic() + interval
        while time.monotonic() < end:
            try:
                chunk = sock.recv(4096)
            except BlockingIOError:
                time.sleep(0.02)  # nothing yet: poll again until `end`
                continue
            except ConnectionResetError:
                return said, time.monotonic() - t0
            if not chunk:
                return said, time.monotonic() - t0
            said += chunk
    return said, None


def _client_hello():
    """The first flight of a real TLS client: a ClientHello."""
    ctx = client_tls_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = outgoing.read()
    assert len(hello) > 100
    return hello


def _start(make_godwit, over, listeners=()):
    """A godwit with over merged into its config and listeners added to
    the default mx one."""
    g = make_godwit(over, start=False)
    g.config["listeners"] = g.config["listeners"] + list(listeners)
    g.write_config()
    g.start()
    return g


# ------------------------------------------------------------- SMTP ---


def test_dripped_command_line_cut_at_its_deadline(make_godwit):
    """One byte every 0.4 s, never a line end: the old idle timer never
    fired; the line's deadline cuts it with 421 4.4.2."""
    g = make_godwit({"smtp": {"timeouts": {"command": "2s"}}})
    c = g.raw()
    c.ehlo()
    said, closed_after = _drip(c.sock, b"NOOP" + b"P" * 200, 0.4)
    c.sock.close()
    assert closed_after is not None, (
        f"a dripping client was still connected after {DRIP_FOR}s: {said!r}")
    assert said.startswith(b"421 4.4.2 "), said
    assert closed_after < 15, closed_after
    _assert_timeout_logged(g, "smtp", "line")


def test_dripped_lines_each_complete_in_time_are_served(make_godwit):
    """The deadline is per line: a client that completes each line within
    it goes on for longer than the deadline in all."""
    g = make_godwit({"smtp": {"timeouts": {"command": "2s"}}})
    with g.raw() as c:
        c.ehlo()
        for _ in range(3):
            for b in b"NOOP":
                c.send(bytes([b]))
                time.sleep(0.2)  # the subject: a byte every 0.2 s
            assert c.cmd("").code == 250  # the CRLF ends "NOOP"


def test_dripped_data_cut_by_the_minimum_rate(make_godwit):
    """DATA trickled at 3 bytes/s against the default min_data_rate (500
    bytes/s): cut once the 2 s allowance is used up, although a byte came
    every 0.3 s (the old data_block timer restarted with each); nothing
    is stored."""
    g = make_godwit({"smtp": {"timeouts": {"command": "30s",
                                           "data_block": "2s"}}})
    c = g.raw()
    c.ehlo()
    assert c.cmd("MAIL FROM:<sender@example.org>").code == 250
    assert c.cmd("RCPT TO:<alice@example.test>").code == 250
    assert c.cmd("DATA").code == 354
    said, closed_after = _drip(c.sock, b"Subject: slow\r\n\r\n" + b"x" * 500,
                               0.3)
    c.sock.close()
    assert closed_after is not None, (
        f"a dripping DATA was still connected after {DRIP_FOR}s: {said!r}")
    assert said.startswith(b"421 4.4.2 "), said
    assert closed_after < 15, closed_after
    _assert_timeout_logged(g, "smtp", "data")
    assert g.all_maildir_files() == []
    assert g.queue_files() == []


def test_data_at_the_minimum_rate_is_accepted(make_godwit, uniq):
    """A client keeping up the rate earns time: 12 KB at ~2 KB/s takes
    about 6 s, three times the 2 s allowance, and is accepted."""
    g = make_godwit({"smtp": {"timeouts": {"data_block": "2s"},
                              "min_data_rate": "1K"}})
    body = (f"Subject: {uniq}\r\n\r\n" + ("y" * 998 + "\r\n") * 12).encode()
    with g.raw() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@example.org>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        for i in range(0, len(body), 1000):
            c.send(body[i:i + 1000])
            time.sleep(0.5)  # the subject: 1000 bytes every 0.5 s
        r = c.cmd(".")
        assert r.code == 250, r
    assert len(g.find_messages(uniq)) == 1


def test_dripped_bdat_chunk_cut_by_the_minimum_rate(make_godwit):
    g = make_godwit({"smtp": {"timeouts": {"command": "30s",
                                           "data_block": "2s"}}})
    c = g.raw()
    c.ehlo()
    assert c.cmd("MAIL FROM:<sender@example.org>").code == 250
    assert c.cmd("RCPT TO:<alice@example.test>").code == 250
    c.send(b"BDAT 1000 LAST\r\n")
    said, closed_after = _drip(c.sock, b"Subject: slow\r\n\r\n" + b"z" * 900,
                               0.3)
    c.sock.close()
    assert closed_after is not None, said
    assert said.startswith(b"421 4.4.2 "), said
    _assert_timeout_logged(g, "smtp", "data")
    assert g.all_maildir_files() == []


@pytest.fixture
def tls_godwit(make_godwit, cert):
    """MX with STARTTLS and an implicit-TLS submissions listener, a 2 s
    handshake deadline and a long command timeout (which the old code
    applied, byte by byte, to the handshake)."""
    def make(extra=None):
        crt, key = cert
        port = free_port()
        over = {
            "tls": {"certificates": [{"cert": str(crt), "key": str(key)}],
                    "handshake_timeout": "2s"},
            "smtp": {"timeouts": {"command": "60s"}},
        }
        g = _start(make_godwit, over, [
            {"name": "submissions", "protocol": "submissions",
             "listen": [f"127.0.0.1:{port}"]}])
        g.submissions_port = port
        return g
    return make


def test_dripped_starttls_handshake_cut(tls_godwit):
    g = tls_godwit()
    c = g.raw()
    c.ehlo()
    r = c.cmd("STARTTLS")
    assert r.code == 220, r
    said, closed_after = _drip(c.sock, _client_hello(), 0.3)
    c.sock.close()
    assert closed_after is not None, (
        f"a dripped ClientHello was still connected after {DRIP_FOR}s")
    assert closed_after < 15, closed_after
    _assert_timeout_logged(g, "smtp", "tls-handshake")


def test_dripped_implicit_tls_handshake_cut(tls_godwit):
    g = tls_godwit()
    s = socket.create_connection(("127.0.0.1", g.submissions_port), timeout=10)
    said, closed_after = _drip(s, _client_hello(), 0.3)
    s.close()
    assert closed_after is not None, (
        f"a dripped ClientHello was still connected after {DRIP_FOR}s")
    assert closed_after < 15, closed_after
    _assert_timeout_logged(g, "smtp", "tls-handshake")


def test_silent_tls_connection_cut(tls_godwit):
    """A connection that never starts its handshake (the half of the
    1,000 hoarded TLS connections that said nothing)."""
    g = tls_godwit()
    s = socket.create_connection(("127.0.0.1", g.submissions_port), timeout=10)
    said, closed_after = _drip(s, b"", 0.5)
    s.close()
    assert closed_after is not None and closed_after < 15, closed_after
    _assert_timeout_logged(g, "smtp", "tls-handshake")


# ------------------------------------------------------------- POP3 ---


@pytest.fixture
def pop_godwit(make_godwit, cert):
    def make(extra=None):
        crt, key = cert
        p3, p3s = free_port(), free_port()
        over = {
            "tls": {"certificates": [{"cert": str(crt), "key": str(key)}],
                    "handshake_timeout": "2s"},
            "pop3": {"login_timeout": "2s"},
        }
        if extra:
            over = deep_merge(over, extra)
        g = _start(make_godwit, over, [
            {"name": "pop3", "protocol": "pop3",
             "listen": [f"127.0.0.1:{p3}"], "plaintext_auth": True},
            {"name": "pop3s", "protocol": "pop3s",
             "listen": [f"127.0.0.1:{p3s}"]}])
        g.pop3_port, g.pop3s_port = p3, p3s
        return g
    return make


def _pop3_banner(s):
    s.settimeout(10)
    buf = b""
    while b"\r\n" not in buf:
        chunk = s.recv(512)
        assert chunk, "closed before the greeting"
        buf += chunk
    assert buf.startswith(b"+OK"), buf
    return buf


def test_pop3_dripped_line_cut_at_its_deadline(pop_godwit):
    g = pop_godwit()
    s = socket.create_connection(("127.0.0.1", g.pop3_port), timeout=10)
    _pop3_banner(s)
    said, closed_after = _drip(s, b"USER " + b"a" * 200, 0.4)
    s.close()
    assert closed_after is not None, (
        f"a dripping POP3 client was still connected after {DRIP_FOR}s")
    assert said.startswith(b"-ERR"), said
    assert closed_after < 15, closed_after
    _assert_timeout_logged(g, "pop3", "line")


def test_pop3_dripped_stls_handshake_cut(pop_godwit):
    g = pop_godwit()
    s = socket.create_connection(("127.0.0.1", g.pop3_port), timeout=10)
    _pop3_banner(s)
    s.sendall(b"STLS\r\n")
    buf = b""
    while b"\r\n" not in buf:
        buf += s.recv(512)
    assert buf.startswith(b"+OK"), buf
    said, closed_after = _drip(s, _client_hello(), 0.3)
    s.close()
    assert closed_after is not None and closed_after < 15, closed_after
    _assert_timeout_logged(g, "pop3", "tls-handshake")


def test_pop3s_dripped_handshake_cut(pop_godwit):
    g = pop_godwit()
    s = socket.create_connection(("127.0.0.1", g.pop3s_port), timeout=10)
    said, closed_after = _drip(s, _client_hello(), 0.3)
    s.close()
    assert closed_after is not None and closed_after < 15, closed_after
    _assert_timeout_logged(g, "pop3", "tls-handshake")


def test_pop3_logged_in_session_keeps_the_autologout_time(pop_godwit):
    """login_timeout is for the unauthenticated: after USER/PASS the
    session has pop3.timeout (10 minutes) per line."""
    g = pop_godwit()
    s = socket.create_connection(("127.0.0.1", g.pop3_port), timeout=10)
    f = s.makefile("rb")
    assert f.readline().startswith(b"+OK")
    s.sendall(b"USER alice@example.test\r\n")
    assert f.readline().startswith(b"+OK")
    s.sendall(f"PASS {PASSWORD}\r\n".encode())
    assert f.readline().startswith(b"+OK")
    # idle for longer than login_timeout: a session opened after the login
    # is cut by it first
    w = socket.create_connection(("127.0.0.1", g.pop3_port), timeout=10)
    try:
        assert _pop3_banner(w).startswith(b"+OK")
        w.settimeout(10)
        said = b""
        while (chunk := w.recv(4096)):
            said += chunk
        assert said == b"-ERR Disconnected: timeout exceeded\r\n", said
    finally:
        w.close()
    s.sendall(b"NOOP\r\n")
    assert f.readline().startswith(b"+OK")
    s.sendall(b"QUIT\r\n")
    assert f.readline().startswith(b"+OK")
    s.close()


# ------------------------------------------------------------ stress ---


def _silent_smtp(g):
    c = RawSMTP("127.0.0.1", g.port, timeout=20)
    r = c.reply()
    assert r.code == 220, r
    return c


def test_stress_shortens_pre_auth_timeouts(make_godwit, cert):
    """max_connections 8, stress at 50 %: four silent connections (with
    a 60 s command timeout) start stress; a fifth gets the 2 s stress
    timeout, and so do the four that were already waiting. An
    authenticated session keeps its 60 s. The change is logged, and so
    is its end once the connections are gone."""
    sub = free_port()
    crt, key = cert
    g = _start(make_godwit, {
        "tls": {"certificates": [{"cert": str(crt), "key": str(key)}]},
        "smtp": {"timeouts": {"command": "60s"}},
        "limits": {"max_connections": 8, "stress_threshold": 50,
                   "stress_timeout": "2s"},
    }, [{"name": "submission", "protocol": "submission",
         "listen": [f"127.0.0.1:{sub}"], "plaintext_auth": True}])

    # a logged-in session, from before the stress
    user = RawSMTP("127.0.0.1", sub, timeout=20)
    assert user.reply().code == 220
    user.ehlo()
    token = base64.b64encode(
        f"\0alice@example.test\0{PASSWORD}".encode()).decode()
    r = user.cmd(f"AUTH PLAIN {token}")
    assert r.code == 235, r

    held = [_silent_smtp(g) for _ in range(3)]  # 4 with the user: stress
    wait_for(lambda: _events(g, "daemon", "stress-on"), 10,
             what="the stress-on line")
    late = _silent_smtp(g)
    t0 = time.monotonic()
    try:
        for c in held + [late]:
            r = c.reply(timeout=15)
            assert (r.code, r.enh) == (421, "4.4.2"), r
            assert c.wait_closed(5)
        assert time.monotonic() - t0 < 15
        # the authenticated session was not cut
        assert user.cmd("NOOP").code == 250
    finally:
        for c in held + [late]:
            c.close()
    user.close()
    _assert_timeout_logged(g, "smtp", "line")
    wait_for(lambda: _events(g, "daemon", "stress-off"), 10,
             what="the stress-off line")


def test_stress_applies_to_pop3_before_login(pop_godwit):
    """Under stress a silent POP3 client is cut after the stress timeout
    although its login_timeout is long."""
    g = pop_godwit({"pop3": {"login_timeout": "60s"},
                    "limits": {"max_connections": 4, "stress_threshold": 50,
                               "stress_timeout": "2s"}})
    socks = []
    try:
        for _ in range(2):
            s = socket.create_connection(("127.0.0.1", g.pop3_port),
                                         timeout=10)
            _pop3_banner(s)
            socks.append(s)
        wait_for(lambda: _events(g, "daemon", "stress-on"), 10,
                 what="the stress-on line")
        for s in socks:
            said, closed_after = _drip(s, b"", 0.5)
            assert closed_after is not None and closed_after < 15, closed_after
            assert said.startswith(b"-ERR"), said
    finally:
        for s in socks:
            s.close()
    _assert_timeout_logged(g, "pop3", "line")
