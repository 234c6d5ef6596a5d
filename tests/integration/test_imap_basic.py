"""
IMAP's session core (RFC 9051, RFC 3501) against the real daemon:
Python's imaplib (IMAP4, IMAP4_SSL, starttls, authenticate) for what a
client sees, and a raw socket client for the octets on the wire:
greeting and CAPABILITY, LOGINDISABLED before STARTTLS, LOGIN,
AUTHENTICATE PLAIN and SCRAM-SHA-256 with and without SASL-IR, literals
(synchronizing, LITERAL+, too big, streamed), BAD lines and too many of
them, bans, autologout, the per-user limit, ENABLE, ID and LOGOUT.
"""

import base64
import hashlib
import hmac
import imaplib
import os
import re
import socket
import time

import pytest

from conftest import PASSWORD, client_tls_context, free_port, wait_for

ALICE = "alice@example.test"
BOB = "bob@example.test"


# ------------------------------------------------------------- fixtures ---

@pytest.fixture
def imap(make_godwit, cert):
    """make(extra=None, plaintext=False, start=True) -> a godwit with the
    mx listener plus imap (143-style, STARTTLS) and imaps (993-style)."""

    def make(extra=None, plaintext=False, start=True):
        crt, key = cert
        o = {
            "tls": {"certificates": [{"cert": str(crt), "key": str(key)}]},
            "auth": {"delay_base": "100ms", "delay_max": "400ms",
                     "max_failures_ip": 4, "ban_time": "3s"},
        }
        for k, v in (extra or {}).items():
            o.setdefault(k, {})
            if isinstance(v, dict):
                o[k].update(v)
            else:
                o[k] = v
        g = make_godwit(o, start=False)
        g.imap_port, g.imaps_port = free_port(), free_port()
        l = {"name": "imap", "protocol": "imap",
             "listen": [f"127.0.0.1:{g.imap_port}", f"[::1]:{g.imap_port}"]}
        if plaintext:
            l["plaintext_auth"] = True
        g.config["listeners"] += [
            l,
            {"name": "imaps", "protocol": "imaps",
             "listen": [f"127.0.0.1:{g.imaps_port}",
                        f"[::1]:{g.imaps_port}"]},
        ]
        g.write_config()
        if start:
            g.start()
        return g

    return make


class RawIMAP:
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
        return line.decode("utf-8", "replace")

    def cmd(self, tag, c):
        """Sends "tag c"; returns (untagged lines, the tagged line)."""
        self.send(f"{tag} {c}\r\n")
        return self.until(tag)

    def until(self, tag):
        untagged = []
        for _ in range(10000):
            l = self.line()
            if l.startswith(tag + " "):
                return untagged, l
            untagged.append(l)
        raise AssertionError("no tagged reply")

    def closed(self, timeout=5):
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, OSError):
            return True

    def starttls(self):
        _, r = self.cmd("S", "STARTTLS")
        assert r == "S OK Begin TLS negotiation now", r
        assert self.buf == b""
        self.sock = client_tls_context().wrap_socket(
            self.sock, server_hostname="localhost")

    def login(self, user=ALICE, password=PASSWORD):
        _, r = self.cmd("L", f'LOGIN "{user}" "{password}"')
        assert r.startswith("L OK"), r
        return r

    def close(self):
        self.sock.close()


def raw(g, tls=True, port=None, family=4):
    host = "127.0.0.1" if family == 4 else "::1"
    c = RawIMAP(host, port or (g.imaps_port if tls else g.imap_port), tls)
    greeting = c.line()
    assert greeting.startswith("* OK [CAPABILITY IMAP4rev1 IMAP4rev2 "), \
        greeting
    return c


def imaps(g, family=4):
    host = "127.0.0.1" if family == 4 else "::1"
    return imaplib.IMAP4_SSL(host, g.imaps_port,
                             ssl_context=client_tls_context(), timeout=20)


def caps_of(line):
    m = re.search(r"CAPABILITY ([^\]]*)", line)
    assert m, line
    return m.group(1).split()


# ---------------------------------------------------- greeting, TLS ------

def test_greeting_and_capability_by_state(imap):
    g = imap()
    c = raw(g, tls=False)
    u, r = c.cmd("a1", "CAPABILITY")
    assert r == "a1 OK CAPABILITY completed"
    caps = caps_of(u[0])
    assert {"IMAP4rev1", "IMAP4rev2", "STARTTLS", "LOGINDISABLED",
            "SASL-IR", "LITERAL+", "ID", "ENABLE"} <= set(caps)
    assert not any(x.startswith("AUTH=") for x in caps)
    c.starttls()
    u, r = c.cmd("a2", "CAPABILITY")
    caps = caps_of(u[0])
    assert "STARTTLS" not in caps and "LOGINDISABLED" not in caps
    assert {"AUTH=PLAIN", "AUTH=SCRAM-SHA-256"} <= set(caps)
    r = c.login()
    full = set(caps_of(r))
    assert {"IDLE", "NAMESPACE", "UNSELECT", "UIDPLUS", "MOVE", "CHILDREN",
            "LIST-EXTENDED", "LIST-STATUS", "SPECIAL-USE", "ESEARCH",
            "SEARCHRES", "STATUS=SIZE", "BINARY", "UTF8=ACCEPT",
            "LITERAL+", "IMAP4rev2"} <= full
    u, r = c.cmd("a3", "LOGOUT")
    assert u == ["* BYE Logging out"] and r == "a3 OK LOGOUT completed"
    assert c.closed()
    log = g.log_text()
    assert "fac=imap event=connect" in log
    assert re.search(r"fac=imap event=login .*user=alice@example.test "
                     r"mech=LOGIN tls=yes", log)
    assert re.search(r"fac=imap event=logout .*reason=logout", log)
    assert re.search(r"fac=imap event=disconnect .*reason=logout", log)


def test_login_disabled_until_starttls(imap):
    g = imap()
    c = raw(g, tls=False)
    _, r = c.cmd("a1", f'LOGIN {ALICE} "{PASSWORD}"')
    assert r.startswith("a1 NO [PRIVACYREQUIRED] "), r
    p = base64.b64encode(f"\0{ALICE}\0{PASSWORD}".encode()).decode()
    _, r = c.cmd("a2", f"AUTHENTICATE PLAIN {p}")
    assert r.startswith("a2 NO [PRIVACYREQUIRED] "), r
    # what was pipelined behind STARTTLS is thrown away (CVE-2011-0411)
    c.send("s STARTTLS\r\nx LOGIN alice@example.test pw\r\n")
    assert c.line() == "s OK Begin TLS negotiation now"
    c.sock = client_tls_context().wrap_socket(c.sock,
                                              server_hostname="localhost")
    c.buf = b""
    _, r = c.cmd("a3", "NOOP")
    assert r == "a3 OK NOOP completed"
    _, r = c.cmd("a4", "STARTTLS")
    assert r.startswith("a4 BAD"), r
    c.login()
    c.close()


def test_plaintext_listener_allows_login(imap):
    g = imap(plaintext=True)
    c = raw(g, tls=False)
    u, _ = c.cmd("a", "CAPABILITY")
    assert "AUTH=PLAIN" in u[0] and "LOGINDISABLED" not in u[0]
    c.login()
    c.close()


def test_imaplib_starttls_and_imaps(imap):
    g = imap()
    m = imaplib.IMAP4("127.0.0.1", g.imap_port, timeout=20)
    assert "LOGINDISABLED" in m.capabilities
    m.starttls(ssl_context=client_tls_context())
    typ, _ = m.login(ALICE, PASSWORD)
    assert typ == "OK"
    assert m.noop()[0] == "OK"
    assert m.logout()[0] == "BYE"
    for family in (4, 6):
        m = imaps(g, family)
        assert "AUTH=PLAIN" in m.capabilities
        assert m.login(ALICE, PASSWORD)[0] == "OK"
        m.logout()
    with pytest.raises(imaplib.IMAP4.error) as e:
        imaps(g).login(ALICE, "wrong")
    assert "AUTHENTICATIONFAILED" in str(e.value)
    assert "fac=imap event=tls" in g.log_text()


# ---------------------------------------------------- AUTHENTICATE -------

def scram_client(c, tag, user=ALICE, password=PASSWORD, ir=True):
    """SCRAM-SHA-256 (RFC 5802, 7677) written here; returns the tagged
    reply after the server's signature was checked."""
    cnonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = f"n={user},r={cnonce}"
    first = base64.b64encode(("n,," + first_bare).encode()).decode()
    if ir:
        c.send(f"{tag} AUTHENTICATE SCRAM-SHA-256 {first}\r\n")
    else:
        c.send(f"{tag} AUTHENTICATE SCRAM-SHA-256\r\n")
        assert c.line() == "+ "
        c.send(first + "\r\n")
    r = c.line()
    assert r.startswith("+ "), r
    server_first = base64.b64decode(r[2:]).decode()
    attrs = dict(a.split("=", 1) for a in server_first.split(","))
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(),
                                 base64.b64decode(attrs["s"]), int(attrs["i"]))
    ckey = hmac.new(salted, b"Client Key", "sha256").digest()
    final_nop = f"c=biws,r={attrs['r']}"
    auth_msg = f"{first_bare},{server_first},{final_nop}".encode()
    sig = hmac.new(hashlib.sha256(ckey).digest(), auth_msg, "sha256").digest()
    proof = base64.b64encode(bytes(a ^ b for a, b in zip(ckey, sig)))
    c.send(base64.b64encode(f"{final_nop},p={proof.decode()}".encode())
           .decode() + "\r\n")
    r = c.line()
    if not r.startswith("+ "):
        return r
    skey = hmac.new(salted, b"Server Key", "sha256").digest()
    want = b"v=" + base64.b64encode(hmac.new(skey, auth_msg, "sha256").digest())
    assert base64.b64decode(r[2:]) == want
    c.send("\r\n")
    return c.line()


def test_authenticate_plain_and_scram(imap):
    g = imap()
    plain = base64.b64encode(f"\0{ALICE}\0{PASSWORD}".encode()).decode()
    # SASL-IR (RFC 4959)
    c = raw(g)
    _, r = c.cmd("a", f"AUTHENTICATE PLAIN {plain}")
    assert r.startswith("a OK [CAPABILITY IMAP4rev1 IMAP4rev2 "), r
    c.close()
    # without: "+ " then the response
    c = raw(g)
    c.send("a AUTHENTICATE plain\r\n")
    assert c.line() == "+ "
    c.send(plain + "\r\n")
    assert c.line().startswith("a OK ")
    c.close()
    # "*" cancels: BAD, and the session goes on
    c = raw(g)
    c.send("a AUTHENTICATE PLAIN\r\n")
    assert c.line() == "+ "
    c.send("*\r\n")
    assert c.line() == "a BAD Authentication cancelled"
    _, r = c.cmd("b", "AUTHENTICATE NOSUCH")
    assert r.startswith("b NO [CANNOT] "), r
    _, r = c.cmd("c", "AUTHENTICATE CRAM-MD5")
    assert r.startswith("c NO [CANNOT] "), r
    # a wrong password
    bad = base64.b64encode(f"\0{ALICE}\0nope".encode()).decode()
    _, r = c.cmd("d", f"AUTHENTICATE PLAIN {bad}")
    assert r == "d NO [AUTHENTICATIONFAILED] Authentication failed", r
    # SCRAM, with and without the initial response
    assert scram_client(c, "e").startswith("e OK [CAPABILITY ")
    c.close()
    c = raw(g)
    assert scram_client(c, "f", ir=False).startswith("f OK ")
    _, r = c.cmd("g", "AUTHENTICATE PLAIN")
    assert r == "g BAD Already logged in", r
    c.close()
    c = raw(g)
    assert scram_client(c, "h", password="wrong").startswith(
        "h NO [AUTHENTICATIONFAILED]")
    c.close()
    # imaplib's AUTHENTICATE (it sends the response after "+ ")
    m = imaps(g)
    typ, _ = m.authenticate(
        "PLAIN", lambda _: f"\0{ALICE}\0{PASSWORD}".encode())
    assert typ == "OK"
    m.logout()
    log = g.log_text()
    assert "fac=imap event=auth" in log
    assert "mech=SCRAM-SHA-256 result=ok" in log
    assert re.search(r"fac=imap event=login .*mech=PLAIN", log)


def test_login_failures_delay_then_ban(imap):
    g = imap()
    c = raw(g)
    times = []
    for i in range(3):
        t0 = time.monotonic()
        _, r = c.cmd(f"a{i}", f"LOGIN {ALICE} wrong")
        times.append(time.monotonic() - t0)
        assert r == f"a{i} NO [AUTHENTICATIONFAILED] Authentication failed"
    assert times[0] >= 0.08 and times[2] >= 0.35, times
    t0 = time.monotonic()
    _, r = c.cmd("a4", f"LOGIN {ALICE} wrong")      # the 4th: banned
    assert r.startswith("a4 NO [AUTHENTICATIONFAILED]"), r
    assert c.closed()
    c = RawIMAP("127.0.0.1", g.imap_port)
    r = c.line()
    assert r == ("* BYE [UNAVAILABLE] Too many failed logins from your "
                 "address"), r
    assert "fac=imap event=ban" in g.log_text()

    def unbanned():
        c = RawIMAP("127.0.0.1", g.imap_port)
        try:
            r = c.line()
        finally:
            c.sock.close()
        if r.startswith("* OK "):
            return time.monotonic() - t0
        assert r.startswith("* BYE [UNAVAILABLE]"), r
        return False
    elapsed = wait_for(unbanned, t0 + 4.5 - time.monotonic(), interval=0.1,
                       what="the ban to end")
    assert elapsed >= 2.9, f"the 3 s ban ended after {elapsed:.2f}s"
    c = raw(g)
    c.login()
    c.close()


# ---------------------------------------------------------- literals -----

def test_literals(imap):
    g = imap({"imap": {"max_append": "1M"}})
    c = raw(g)
    # synchronizing: "+ " before each literal
    c.send("a LOGIN {%d}\r\n" % len(ALICE))
    assert c.line().startswith("+ ")
    c.send(ALICE + " {%d}\r\n" % len(PASSWORD))
    assert c.line().startswith("+ ")
    c.send(PASSWORD + "\r\n")
    assert c.line().startswith("a OK ")
    c.close()
    # LITERAL+: none, all in one write
    c = raw(g)
    c.send("b LOGIN {%d+}\r\n%s {%d+}\r\n%s\r\nc NOOP\r\n"
           % (len(ALICE), ALICE, len(PASSWORD), PASSWORD))
    assert c.line().startswith("b OK ")
    assert c.line() == "c OK NOOP completed"
    # a literal over imap.max_append is refused before it is sent
    _, r = c.cmd("d", "APPEND INBOX {2000000}")
    assert r == "d NO [TOOBIG] Literal too big", r
    # LITERAL+ over it: the octets are read and thrown away, then BAD
    c.send("e APPEND INBOX {1100000+}\r\n")
    c.send(b"x" * 1100000 + b"\r\n")
    assert c.until("e")[1] == "e BAD [TOOBIG] Literal too big"
    # a big one within the bound goes through a file: the session goes on
    c.send("f APPEND INBOX {300000+}\r\n")
    c.send(b"From: a@b\r\n\r\n" + b"y" * (300000 - 14) + b"\r\n")
    _, r = c.until("f")
    assert not r.startswith("f BAD [TOOBIG]"), r
    # any other command gets at most 64 KiB
    _, r = c.cmd("g", "LOGIN {70000}")
    assert r == "g NO [TOOBIG] Literal too big", r
    _, r = c.cmd("h", "NOOP")
    assert r == "h OK NOOP completed"
    c.close()
    log = g.log_text()
    assert re.search(r"fac=imap event=literal-refused .*cmd=APPEND "
                     r"octets=2000000 sync=yes", log)
    assert "octets=1100000 sync=no" in log
    # nothing is left behind in the Maildir's tmp/
    tmp = g.maildir(ALICE) / "tmp"
    assert not tmp.exists() or not list(tmp.iterdir())


# ------------------------------------------------- errors, timeouts ------

def test_bad_lines_and_too_many(imap):
    g = imap()
    c = raw(g)
    _, r = c.cmd("a", "FROBNICATE")
    assert r == "a BAD Unknown command"
    _, r = c.cmd("b", 'LOGIN "unterminated')
    assert r == "b BAD Invalid quoted string"
    c.send("*\r\n")
    assert c.line() == "* BAD Invalid tag"
    _, r = c.cmd("d", "ENABLE IMAP4rev2")
    assert r == "d BAD Not logged in"
    c.send("e LOGIN " + "x" * 70000 + "\r\n")
    assert c.line() == "e BAD Line too long"
    _, r = c.cmd("f", "NOOP")
    assert r == "f OK NOOP completed"
    for i in range(4):
        _, r = c.cmd(f"g{i}", "BOGUS")
    c.send("h BOGUS\r\n")
    assert c.line() == "h BAD Unknown command"
    assert c.line() == "* BYE Too many invalid commands"
    assert c.closed()
    log = g.log_text()
    assert re.search(r"fac=imap event=reject .*reason=too-many-errors "
                     r"errors=10", log)
    assert re.search(r"fac=imap event=disconnect .*reason=too-many-errors",
                     log)


def test_autologout_before_login(imap):
    g = imap({"imap": {"login_timeout": "1s"}})
    c = raw(g)
    t0 = time.monotonic()
    c.send("a NOOP\r\n")
    assert c.line() == "a OK NOOP completed"
    c.send("b NO")           # half a command does not restart the timer
    assert c.line() == "* BYE Autologout; idle for too long"
    assert 0.8 <= time.monotonic() - t0 < 5
    assert c.closed()
    log = g.log_text()
    assert re.search(r"fac=imap event=timeout .*state=NOT_AUTHENTICATED "
                     r"wait=line limit_ms=1000", log)


def test_per_user_connection_limit(imap):
    g = imap({"imap": {"max_connections_per_user": 2}})
    a, b = raw(g), raw(g)
    a.login()
    b.login()
    c = raw(g)
    _, r = c.cmd("L", f'LOGIN {ALICE.upper()} "{PASSWORD}"')
    assert r == "L NO [LIMIT] Too many sessions for this account (2)", r
    other = raw(g)              # another account is not affected
    other.login(BOB)
    a.cmd("Z", "LOGOUT")
    assert a.closed()

    def in_again():
        _, r = c.cmd("L", f'LOGIN {ALICE} "{PASSWORD}"')
        return r.startswith("L OK")
    wait_for(in_again, 5, interval=0.1, what="the slot to be given back")
    log = g.log_text()
    assert re.search(r"fac=imap event=reject .*user=alice@example.test "
                     r"reason=user-connections count=2 max=2", log)


# ------------------------------------------------- ENABLE, ID, LOGOUT ----

def test_enable_id_logout(imap):
    g = imap()
    c = raw(g)
    u, r = c.cmd("a", 'ID ("name" "test client" "version" "1.0\\"x")')
    assert u == ['* ID ("name" "godwit" "vendor" "godwit")']
    assert r == "a OK ID completed"
    u, r = c.cmd("b", "ID NIL")
    assert r == "b OK ID completed"
    _, r = c.cmd("c", "ID (\"name\")")
    assert r.startswith("c BAD"), r
    c.login()
    u, r = c.cmd("d", "ENABLE IMAP4rev2 UTF8=ACCEPT X-UNKNOWN")
    assert u == ["* ENABLED IMAP4rev2"] and r == "d OK ENABLE completed"
    u, r = c.cmd("e", "ENABLE UTF8=ACCEPT IMAP4rev2")
    assert u == ["* ENABLED"], u      # already on: not listed again
    u, r = c.cmd("f", "NOOP")
    assert r == "f OK NOOP completed"
    u, r = c.cmd("g", "LOGOUT")
    assert u == ["* BYE Logging out"] and r == "g OK LOGOUT completed"
    assert c.closed()
    log = g.log_text()
    assert re.search(r'fac=imap event=id .*client="test client" '
                     r'client_version=1.0"x', log) or \
        re.search(r'fac=imap event=id .*client="test client"', log)
    # imaplib: rev1 client, ENABLE and logout
    m = imaps(g)
    m.login(ALICE, PASSWORD)
    typ, data = m._simple_command("ENABLE", "UTF8=ACCEPT")
    assert typ == "OK"
    assert m.logout()[0] == "BYE"


def test_authenticate_response_too_long(imap):
    g = imap()
    c = raw(g)
    c.send("a AUTHENTICATE PLAIN\r\n")
    assert c.line() == "+ "
    c.send("A" * 5000 + "\r\nb NOOP\r\n")    # b was pipelined behind it
    assert c.line() == "a BAD Line too long"
    assert c.line() == "b OK NOOP completed"
    c.send("c AUTHENTICATE PLAIN\r\n")
    assert c.line() == "+ "
    c.send("A" * 70000)                      # no end of line in sight
    assert c.line() == "c BAD Line too long"
    c.send("A" * 10 + "\r\nd NOOP\r\n")
    assert c.line() == "d OK NOOP completed"
    c.login()
    c.close()


def test_sigterm_says_bye(imap):
    g = imap()
    a, b = raw(g), raw(g)
    a.login()
    b.send("x AUTHENTICATE PLAIN\r\n")       # waiting for its response
    assert b.line() == "+ "
    g.stop()
    assert a.line() == "* BYE Server shutting down"
    assert b.line() == "* BYE Server shutting down"
    assert a.closed() and b.closed()
    assert re.search(r"fac=imap event=logout .*reason=shutdown", g.log_text())


def test_nil_is_an_astring(imap):
    """astring = 1*ASTRING-CHAR / string (RFC 9051 section 9): the atom
    NIL where a name is expected is the name "NIL", not a syntax error
    (Dovecot alike); in ID's list it still means no value."""
    g = imap()
    c = raw(g)
    _, r = c.cmd("a", "LOGIN NIL NIL")
    assert r == "a NO [AUTHENTICATIONFAILED] Authentication failed", r
    _, r = c.cmd("b", 'ID ("name" NIL "version" "2")')
    assert r == "b OK ID completed", r
    c.login()
    u, r = c.cmd("c", 'LIST "" NIL')
    assert r == "c OK LIST completed" and u == [], (u, r)
    _, r = c.cmd("d", "SELECT nil")
    assert r.startswith("d NO [NONEXISTENT] "), r
    _, r = c.cmd("e", "CREATE NIL")
    assert r == "e OK CREATE completed", r
    u, r = c.cmd("f", 'LIST "" NIL')
    assert u == ['* LIST (\\HasNoChildren) "/" "NIL"'], u
    c.close()
    assert "client_version=2" in g.log_text() or \
        re.search(r"event=id .*client_version=2", g.log_text())
