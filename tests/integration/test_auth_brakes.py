"""
Brute-force brakes under parallel clients, and SCRAM that does not tell
which accounts exist.

- A failure is counted when it is decided, and a verdict that comes back
  after a parallel session began a ban is withheld (421): 20 parallel
  guesses from one address against max_failures_ip 10 get at most 10
  verdicts, over SMTP AUTH and over POP3.
- The ban is checked at every AUTH, USER, PASS and SASL line: a session
  opened (or an exchange started) before the ban does not log in after
  it, even with the right password.
- An exchange cancelled with "*" after our challenge counts as a failure.
- SCRAM-SHA-256: an unknown user's salt and iteration count are the same
  on every connection, every worker and after a restart, and look like a
  real user's.
"""

import base64
import os
import socket
import threading

import pytest

from conftest import PASSWORD, free_port

ALICE = "alice@example.test"
N = 20
MAX = 10


@pytest.fixture
def brakes(make_godwit, cert):
    """make(auth=None) -> a godwit with submission and pop3 listeners on
    ::1 and 127.0.0.1 that allow logins before TLS (the brakes are under
    test, not TLS; submission needs a certificate all the same)."""
    crt, key = cert

    def make(auth=None, start=True):
        a = {"max_failures_ip": MAX, "ban_time": "5m",
             "failure_window": "1h", "delay_base": "100ms",
             "delay_max": "400ms"}
        a.update(auth or {})
        g = make_godwit({"auth": a, "tls": {"certificates": [
            {"cert": str(crt), "key": str(key)}]}}, start=False)
        g.sub_port, g.pop3_port = free_port(), free_port()
        g.config["listeners"] += [
            {"name": "submission", "protocol": "submission",
             "plaintext_auth": True,
             "listen": [f"127.0.0.1:{g.sub_port}", f"[::1]:{g.sub_port}"]},
            {"name": "pop3", "protocol": "pop3", "plaintext_auth": True,
             "listen": [f"127.0.0.1:{g.pop3_port}",
                        f"[::1]:{g.pop3_port}"]},
        ]
        g.write_config()
        if start:
            g.start()
        return g

    return make


class Line:
    """A line-based client over a plain socket: SMTP or POP3."""

    def __init__(self, port, host="127.0.0.1", timeout=30):
        self.s = socket.create_connection((host, port), timeout=timeout)
        self.f = self.s.makefile("rwb", buffering=0)

    def send(self, line):
        self.f.write(line.encode() + b"\r\n")

    def line(self):
        return self.f.readline().decode("utf-8", "replace").rstrip("\r\n")

    def smtp_reply(self):
        """The last line of a (possibly multi-line) SMTP reply; "" at EOF."""
        while True:
            l = self.line()
            if len(l) < 4 or l[3] != "-":
                return l

    def cmd(self, line):
        self.send(line)
        return self.smtp_reply()

    def closed(self, timeout=10):
        self.s.settimeout(timeout)
        try:
            return self.f.readline() == b""
        except (ConnectionResetError, socket.timeout):
            return False

    def close(self):
        try:
            self.f.close()
            self.s.close()
        except OSError:
            pass


def plain(user, password):
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


def _parallel(n, prepare, fire):
    """Runs prepare(i) in n threads, then lets them all fire(i, conn) at
    once; returns the results in order."""
    barrier = threading.Barrier(n, timeout=60)
    out = [None] * n

    def run(i):
        c = prepare(i)
        try:
            barrier.wait()
            out[i] = fire(i, c)
        except Exception as e:     # reported as a result, not lost
            out[i] = f"error: {e!r}"
        finally:
            c.close()

    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not any(t.is_alive() for t in ts), "a client hung"
    return out


def test_parallel_smtp_guesses_get_at_most_the_limit(brakes):
    g = brakes()

    def prepare(i):
        c = Line(g.sub_port)
        assert c.smtp_reply().startswith("220")
        assert c.cmd("EHLO c.test").startswith("250")
        return c

    def fire(i, c):
        return c.cmd(f"AUTH PLAIN {plain(ALICE, f'guess-{i}')}")[:3]

    codes = _parallel(N, prepare, fire)
    assert set(codes) <= {"535", "421"}, codes
    # every guess is either told (535) or refused without a verdict (421)
    assert codes.count("535") <= MAX, codes
    assert codes.count("535") >= 1, codes
    log = g.log_text()
    assert log.count("result=fail") <= MAX
    assert "result=banned" in log


def test_parallel_pop3_guesses_get_at_most_the_limit(brakes):
    g = brakes()

    def prepare(i):
        c = Line(g.pop3_port)
        assert c.line().startswith("+OK")
        c.send(f"USER {ALICE}")
        assert c.line().startswith("+OK")
        return c

    def fire(i, c):
        c.send(f"PASS guess-{i}")
        return c.line()

    lines = _parallel(N, prepare, fire)
    told = [l for l in lines if l.startswith("-ERR [AUTH]")]
    refused = [l for l in lines if l.startswith("-ERR [SYS/TEMP]")]
    assert len(told) + len(refused) == N, lines
    assert 1 <= len(told) <= MAX, lines


def _ban(g, port=None, n=MAX):
    """n failed USER/PASS logins over POP3 from 127.0.0.1, one after
    another: the last one starts the ban."""
    for i in range(n):
        c = Line(port or g.pop3_port)
        try:
            assert c.line().startswith("+OK")
            c.send(f"USER {ALICE}")
            c.line()
            c.send("PASS wrong")
            r = c.line()
            assert r.startswith("-ERR [AUTH]"), (i, r)
        finally:
            c.close()
    assert "event=ban" in g.log_text()


def test_pop3_session_opened_before_a_ban_cannot_log_in(brakes):
    """USER/PASS, and an AUTH PLAIN exchange begun before the ban, are
    refused after it even with the right password; nothing logs in."""
    g = brakes({"max_failures_ip": 3})
    early = Line(g.pop3_port)
    mid = Line(g.pop3_port)
    try:
        assert early.line().startswith("+OK")
        assert mid.line().startswith("+OK")
        early.send(f"USER {ALICE}")
        assert early.line().startswith("+OK")
        mid.send("AUTH PLAIN")
        assert mid.line().startswith("+ ")
        _ban(g, n=3)
        early.send(f"PASS {PASSWORD}")
        r = early.line()
        assert r.startswith("-ERR [SYS/TEMP]"), r
        assert early.closed()
        mid.send(plain(ALICE, PASSWORD))
        r = mid.line()
        assert r.startswith("-ERR [SYS/TEMP]"), r
        assert mid.closed()
    finally:
        early.close()
        mid.close()
    log = g.log_text()
    assert "event=login" not in log, log[-2000:]
    assert "result=ok" not in log


def test_smtp_session_opened_before_a_ban_cannot_log_in(brakes):
    g = brakes({"max_failures_ip": 3})
    early = Line(g.sub_port)
    mid = Line(g.sub_port)
    try:
        for c in (early, mid):
            assert c.smtp_reply().startswith("220")
            assert c.cmd("EHLO c.test").startswith("250")
        assert mid.cmd("AUTH PLAIN").startswith("334")
        _ban(g, n=3)
        r = early.cmd(f"AUTH PLAIN {plain(ALICE, PASSWORD)}")
        assert r.startswith("421 4.7.0"), r
        r = mid.cmd(plain(ALICE, PASSWORD))
        assert r.startswith("421 4.7.0"), r
        assert mid.closed()
    finally:
        early.close()
        mid.close()
    assert "result=ok" not in g.log_text()


@pytest.mark.parametrize("proto", ["smtp", "pop3"])
def test_cancel_after_the_challenge_counts(brakes, proto):
    """Three exchanges cancelled with "*" after our challenge (PLAIN's
    empty one, and SCRAM's server-first-message with the salt) are three
    failures: the third bans the address."""
    g = brakes({"max_failures_ip": 3})
    first = base64.b64encode(
        b"n,,n=alice@example.test,r=" +
        base64.b64encode(os.urandom(18))).decode()
    if proto == "smtp":
        c = Line(g.sub_port)
        assert c.smtp_reply().startswith("220")
        assert c.cmd("EHLO c.test").startswith("250")
        for i, start in enumerate(["AUTH PLAIN", "AUTH LOGIN",
                                   f"AUTH SCRAM-SHA-256 {first}"]):
            assert c.cmd(start).startswith("334"), i
            r = c.cmd("*")
            assert r.startswith("501 5.0.0"), (i, r)
        r = c.smtp_reply()
        assert r.startswith("421 4.7.0"), r
    else:
        c = Line(g.pop3_port)
        assert c.line().startswith("+OK")
        for i, start in enumerate(["AUTH PLAIN", "AUTH LOGIN",
                                   f"AUTH SCRAM-SHA-256 {first}"]):
            c.send(start)
            assert c.line().startswith("+ "), i
            c.send("*")
            r = c.line()
            assert r.startswith("-ERR"), (i, r)
    assert c.closed()
    c.close()
    log = g.log_text()
    assert log.count("failure=cancelled") == 3, log[-3000:]
    assert "event=ban" in log
    # the address is banned now, for both protocols
    c = Line(g.sub_port)
    assert c.smtp_reply().startswith("421"), "not banned"
    c.close()


def _server_first(port, user, host="127.0.0.1"):
    """(salt, iterations) from SCRAM-SHA-256's server-first-message for
    user, then cancels the exchange."""
    c = Line(port, host)
    try:
        assert c.smtp_reply().startswith("220")
        assert c.cmd("EHLO c.test").startswith("250")
        first = f"n,,n={user},r=" + base64.b64encode(os.urandom(18)).decode()
        r = c.cmd("AUTH SCRAM-SHA-256 " +
                  base64.b64encode(first.encode()).decode())
        assert r.startswith("334 "), r
        attrs = dict(a.split("=", 1) for a in
                     base64.b64decode(r[4:]).decode().split(","))
        c.cmd("*")
        return attrs["s"], attrs["i"]
    finally:
        c.close()


def test_scram_unknown_user_is_stable_and_looks_real(brakes):
    g = brakes({"max_failures_ip": 1000, "delay_base": 0, "delay_max": 0})
    ghost = "nobody@example.test"
    seen = {_server_first(g.sub_port, ghost, h) for h in
            ["127.0.0.1", "::1"] * 8}
    assert len(seen) == 1, f"the unknown user's salt changes: {seen}"
    salt, iters = seen.pop()
    real = {_server_first(g.sub_port, u) for u in
            (ALICE, ALICE, "Alice@Example.TEST")}
    assert len(real) == 1, real
    rsalt, riters = real.pop()
    assert iters == riters, (iters, riters)
    assert len(base64.b64decode(salt)) == len(base64.b64decode(rsalt))
    assert len(salt) == len(rsalt) and salt != rsalt
    # a real user's two spellings share one salt: so do an unknown one's
    assert _server_first(g.sub_port, "NoBody@EXAMPLE.test") == (salt, iters)
    other = _server_first(g.sub_port, "someone@example.test")
    assert other[0] != salt and other[1] == iters
    # the secret is the parent's alone, and survives a restart
    secret = g.data_dir / "server-secret"
    st = secret.stat()
    assert st.st_size == 32 and (st.st_mode & 0o777) == 0o600, oct(st.st_mode)
    g.stop()
    g.start()
    assert _server_first(g.sub_port, ghost) == (salt, iters)
    assert _server_first(g.sub_port, ALICE) == (rsalt, riters)
    assert secret.stat().st_ino == st.st_ino


def test_server_secret_readable_by_others_is_refused(brakes):
    g = brakes(start=False)
    secret = g.data_dir / "server-secret"
    secret.write_bytes(os.urandom(32))
    os.chmod(secret, 0o644)
    with pytest.raises(AssertionError, match="exited with 1 at start"):
        g.start()
    log = g.log_text()
    assert "server-secret" in log and "chmod 600" in log, log
