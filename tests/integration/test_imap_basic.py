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
