"""
Log forging: whatever a client sends (EHLO
names, quoted local parts, RCPT addresses, SASL user names, POP3 USER
names; quotes, '=', backslashes, control bytes, invalid UTF-8, U+0085,
U+2028, U+2029) stays inside one value of one line. Run against the real
daemon in both log formats; every line of the log is then read by a
logfmt parser written here from the contract in docs/operations.md ("Log
format"), and in JSON mode by json.loads too, and must say exactly what
happened: every ip is the loopback address, no line holds a planted field
or a second event, the values decode to the bytes the client sent, and
line-based readers that also split on Unicode line breaks
(str.splitlines) see the same number of lines.
"""

import base64
import json
import re
import socket

import pytest

from conftest import free_port
from smtpclient import make_message, transaction

PLANT = "6.6.6.6"
LOOPBACK = {"127.0.0.1", "::1"}
TS_RE = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
KEY_RE = re.compile(rb"[a-z0-9_]+")
BARE = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
           b"0123456789-._:/@+,[]")
HEX = set(b"0123456789abcdefABCDEF")

# Text a line-based reader may split on besides LF.
UNICODE_BREAKS = ("\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85",
                  "\u2028", "\u2029", "\r")


# ------------------------------------------------- independent parsers ---

def parse_kv(line):
    """b'TS k=v k="..."' -> (ts, [(key, value bytes)]), by the contract:
    bare values of [A-Za-z0-9-._:/@+,[]], quoted ones with \\" \\\\ and
    \\xHH only, no raw control byte anywhere."""
    ts, sep, rest = line.partition(b" ")
    assert TS_RE.match(ts), f"no timestamp first: {line!r}"
    fields = []
    i, n = 0, len(rest)
    while i < n:
        m = KEY_RE.match(rest, i)
        assert m, f"no key at {rest[i:]!r}"
        key = m.group().decode()
        i = m.end()
        assert i < n and rest[i:i + 1] == b"=", f"no '=' after {key}: {line!r}"
        i += 1
        val = bytearray()
        if rest[i:i + 1] == b'"':
            i += 1
            while True:
                assert i < n, f"unterminated value: {line!r}"
                c = rest[i]
                if c == 0x22:
                    i += 1
                    break
                if c == 0x5c:
                    e = rest[i + 1:i + 2]
                    if e in (b'"', b"\\"):
                        val += e
                        i += 2
                    elif e == b"x" and set(rest[i + 2:i + 4]) <= HEX \
                            and len(rest[i + 2:i + 4]) == 2:
                        val.append(int(rest[i + 2:i + 4], 16))
                        i += 4
                    else:
                        raise AssertionError(f"bad escape in {line!r}")
                    continue
                assert c >= 0x20 and c != 0x7f, f"raw control in {line!r}"
                val.append(c)
                i += 1
        else:
            while i < n and rest[i] != 0x20:
                assert rest[i] in BARE, f"byte {rest[i]:#x} bare in {line!r}"
                val.append(rest[i])
                i += 1
            assert val, f"empty bare value: {line!r}"
        fields.append((key, bytes(val)))
        if i < n:
            assert rest[i] == 0x20, f"no space after a value: {line!r}"
            i += 1
            assert i < n, f"trailing space: {line!r}"
    return ts.decode(), fields


def parse_json_values(line):
    """A flat JSON object as godwit writes it, decoded by the contract (an
    escape below U+0100 stands for one byte): [(key, value bytes)]."""
    fields = []
    i = 1
    assert line[:1] == b"{" and line[-1:] == b"}", line

    def string(i):
        assert line[i:i + 1] == b'"'
        i += 1
        out = bytearray()
        while line[i] != 0x22:
            if line[i] == 0x5c:
                e = line[i + 1:i + 2]
                if e in (b'"', b"\\"):
                    out += e
                    i += 2
                elif e == b"u":
                    cp = int(line[i + 2:i + 6], 16)
                    out += bytes([cp]) if cp < 0x100 else chr(cp).encode()
                    i += 6
                else:
                    raise AssertionError(f"escape godwit never writes: {line!r}")
            else:
                out.append(line[i])
                i += 1
        return bytes(out), i + 1

    while True:
        k, i = string(i)
        assert line[i:i + 1] == b":"
        i += 1
        if line[i:i + 1] == b'"':
            v, i = string(i)
        else:
            m = re.compile(rb"-?\d+").match(line, i)
            assert m, line
            v, i = m.group(), m.end()
        fields.append((k.decode(), v))
        if line[i:i + 1] == b"}":
            assert i + 1 == len(line)
            return fields
        assert line[i:i + 1] == b",", line
        i += 1


def no_dup_keys(pairs):
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), f"a key twice: {keys}"
    return dict(pairs)


def read_events(g, fmt):
    """Every line of the log as a dict of value bytes; checks the line
    framing on the way."""
    raw = g.stderr_path.read_bytes()
    assert raw.endswith(b"\n")
    lines = raw[:-1].split(b"\n")
    text = raw.decode("utf-8")  # the whole log is valid UTF-8
    assert len(text.splitlines()) == len(lines), \
        "a Unicode line break or control splits a line"
    for ch in UNICODE_BREAKS:
        assert ch not in text, f"raw {ch!r} in the log"
    events = []
    for line in lines:
        assert 0 < len(line) < 4096, line[:200]
        if fmt == "json":
            obj = json.loads(line, object_pairs_hook=no_dup_keys)
            assert isinstance(obj, dict)
            pairs = parse_json_values(line)
            # both readers agree on the keys and on every ASCII value
            assert [k for k, _ in pairs] == list(obj), line
            ts = obj["ts"]
            assert TS_RE.match(ts.encode()), ts
            d = dict(pairs)
        else:
            ts, pairs = parse_kv(line)
            d = no_dup_keys(pairs)
        assert b"event" in d.values() or "event" in d, line
        d["_line"] = line
        events.append(d)
    return events


def s(v):
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else v


# ---------------------------------------------------------------- setup ---

@pytest.fixture
def hostile(make_godwit, cert):
    def make(fmt):
        crt, key = cert
        g = make_godwit({
            "tls": {"certificates": [{"cert": str(crt), "key": str(key)}]},
            "log": {"format": fmt, "level": "debug"},
            "auth": {"delay_base": "0s", "delay_max": "0s",
                     "max_failures_ip": 1000000,
                     "max_failures_account": 1000000},
        }, start=False)
        g.sub_port, g.pop3_port = free_port(), free_port()
        g.config["listeners"] += [
            {"name": "submission", "protocol": "submission",
             "listen": [f"127.0.0.1:{g.sub_port}"], "plaintext_auth": True},
            {"name": "pop3", "protocol": "pop3",
             "listen": [f"127.0.0.1:{g.pop3_port}"], "plaintext_auth": True},
        ]
        g.write_config()
        g.start()
        return g
    return make


HELOS = [
    f"evil.test event=accept result=ok ip={PLANT}",
    'x"y=z\\ ip=' + PLANT,
    f"a\\x0a2026-01-01T00:00:00.000Z level=info ip={PLANT}",
    f"ls\u2028ip={PLANT} event=accept",
    f"ps\u2029ip={PLANT}",
    f"nel\u0085ip={PLANT}",
    f"c0\x0bvt\x0cff\x1cfs\x1dgs\x1ers\x1b[2K\x7f ip={PLANT}",
    "bad\xff\xfeutf8 ip=" + PLANT,   # sent as latin-1: invalid UTF-8
    f"\u00e9\u20ac ok ip={PLANT}",
    f'{{"event":"accept","ip":"{PLANT}"}}',
]

# local parts the SMTP parser takes (RFC 5321 quoted strings)
SENDERS = [
    f'"x event=accept result=ok ip={PLANT} to=x"@example.org',
    f'"a\\"b ip={PLANT}"@example.org',
    f'"c\\\\ event=accept ip={PLANT}"@example.org',
    f'"d=e,f ip={PLANT}"@example.org',
]

SASL_NAMES = [
    f'user" ip={PLANT} result=ok',
    f"a=b ip={PLANT}",
    f"back\\slash\\\" ip={PLANT}",
    f"ls\u2028ip={PLANT} result=ok",
    f"ps\u2029ip={PLANT}",
    f"nel\u0085ip={PLANT}",
    f'{{"result":"ok","ip":"{PLANT}"}}',
]
POP3_NAMES = [
    f'user"ip={PLANT}',
    f'a=b\\"ip={PLANT}',
    f"ls\u2028ip={PLANT}",
    "ps\u2029event=accept",
    f"nel\u0085ip={PLANT}",
    f'{{"ip":"{PLANT}"}}',
]
SASL_RAW = [
    b"ctl\x01\x1b[2Kip=" + PLANT.encode(),
    b"bad\xff\xc0\xafutf8 ip=" + PLANT.encode(),
    b"nul\x00ip=" + PLANT.encode(),
]


def _sasl_name_ok(name):
    """What the SASL decoder takes as a name (net/sasl.c name_ok): valid
    UTF-8 with no control character (C0, DEL, C1) and no NUL; anything
    else is an undecodable response (501 5.5.2), not a failed login."""
    try:
        s = name.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return s != "" and not any(ord(ch) < 0x20 or 0x7f <= ord(ch) <= 0x9f
                               for ch in s)


def wire(text):
    """EHLO text as bytes: latin-1 where a name carries raw bytes."""
    try:
        if "\xff" in text:
            return text.encode("latin-1")
    except UnicodeEncodeError:
        pass
    return text.encode("utf-8")


def b64(b):
    return base64.b64encode(b).decode()


def run_hostile_clients(g):
    """Returns what was sent, for the checks."""
    sent = {"sessions": 0, "relay": [], "helos": [], "auth_names": [],
            "pop3_names": [], "ehlo_client": 0}
    # EHLO names: each logged by the helo event (debug level)
    for h in HELOS:
        with g.raw() as c:
            sent["sessions"] += 1
            r = c.cmd(b"EHLO " + wire(h))
            if r.code == 250:
                sent["helos"].append(wire(h))
            c.cmd("QUIT")
    # quoted local parts, then a relay-refused RCPT (the case)
    with g.raw() as c:
        sent["sessions"] += 1
        c.ehlo("client.test")
        sent["ehlo_client"] += 1
        for snd in SENDERS:
            r = c.cmd(f"MAIL FROM:<{snd}>")
            assert r.code == 250, (snd, r)
            rcpt = f'"victim ip={PLANT} event=accept"@outside.example'
            r = c.cmd(f"RCPT TO:<{rcpt}>")
            assert r.code == 554, r
            sent["relay"].append((snd, rcpt))
            c.cmd("RSET")
        # a UTF-8 sender with a line separator, where SMTPUTF8 allows it
        r = c.cmd(f'MAIL FROM:<"u\u2028ip={PLANT}"@example.org> SMTPUTF8')
        if r.code == 250:
            r = c.cmd("RCPT TO:<victim@outside.example>")
            assert r.code == 554
            # logged in its canonical form: '=' and UTF-8 are atext
            # (RFC 6531), so the quotes go
            sent["relay"].append((f"u\u2028ip={PLANT}@example.org",
                                  "victim@outside.example"))
        c.cmd("RSET")
        # one accepted message with a hostile HELO and sender
        h = f"acc ip={PLANT} event=reject"
        c.cmd(f"EHLO {h}")
        sent["helos"].append(h.encode())
        r = transaction(c, SENDERS[0], ["alice@example.test"],
                        make_message("forgery"))
        assert r.code == 250, r
        c.cmd("QUIT")
    # SASL names, AUTH PLAIN and AUTH LOGIN, on the submission port (a
    # connection each: failures count towards smtp.max_errors)
    for name in [n.encode() for n in SASL_NAMES] + SASL_RAW:
        c = g.raw(port=g.sub_port)
        sent["sessions"] += 1
        c.ehlo("client.test")
        sent["ehlo_client"] += 1
        r = c.cmd("AUTH PLAIN " + b64(b"\0" + name + b"\0wrong"))
        if _sasl_name_ok(name):
            assert (r.code, r.enh) == (535, "5.7.8"), (name, r)
            sent["auth_names"].append(name)
        else:
            assert (r.code, r.enh) == (501, "5.5.2"), (name, r)
        r = c.cmd("AUTH LOGIN " + b64(name))
        if _sasl_name_ok(name):
            assert r.code == 334, (name, r)
            r = c.cmd(b64(b"wrong"))
            assert (r.code, r.enh) == (535, "5.7.8"), (name, r)
            sent["auth_names"].append(name)
        else:
            assert (r.code, r.enh) == (501, "5.5.2"), (name, r)
        c.cmd("QUIT")
        c.close()
    # POP3 USER names (one argument: no spaces)
    for name in [n.encode() for n in POP3_NAMES] + SASL_RAW[:2]:
        p = socket.create_connection(("127.0.0.1", g.pop3_port), timeout=10)
        sent["sessions"] += 1
        f = p.makefile("rb")
        assert f.readline().startswith(b"+OK")
        p.sendall(b"USER " + name.replace(b" ", b"_") + b"\r\n")
        if f.readline().startswith(b"+OK"):
            p.sendall(b"PASS wrong\r\n")
            if f.readline().startswith(b"-ERR [AUTH]"):
                sent["pop3_names"].append(name.replace(b" ", b"_"))
        p.sendall(b"QUIT\r\n")
        f.readline()
        p.close()
    return sent


@pytest.mark.parametrize("fmt", ["kv", "json"])
def test_no_client_planted_field(hostile, fmt):
    g = hostile(fmt)
    sent = run_hostile_clients(g)
    g.stop()
    events = read_events(g, fmt)

    for e in events:
        line = e.pop("_line")
        # no value is exactly a planted one: a planted field would be
        for k, v in e.items():
            assert v != PLANT.encode(), f"{k}={PLANT} planted: {line!r}"
        ip = e.get("ip")
        if ip is not None:
            assert s(ip) in LOOPBACK, line
        assert s(e["event"]) in KNOWN_EVENTS, line
        assert set(e) <= KNOWN_KEYS, f"unknown key in {line!r}"

    def ev(fac, name):
        return [e for e in events if e["fac"] == fac.encode() and
                e["event"] == name.encode()]

    # as many events as happened: nothing planted adds one
    assert len(ev("smtp", "connect")) + len(ev("pop3", "connect")) \
        == sent["sessions"]
    assert len(ev("smtp", "disconnect")) + len(ev("pop3", "disconnect")) \
        == sent["sessions"]
    accepts = ev("smtp", "accept")
    assert len(accepts) == 1, accepts
    assert [e for e in events if e.get("result") == b"ok"] == []

    # and each value is exactly what the client sent
    a = accepts[0]
    assert s(a["from"]) == SENDERS[0]
    assert s(a["to"]) == "alice@example.test"
    assert a["helo"] == sent["helos"][-1]
    helos = [e["helo"] for e in ev("smtp", "helo")]
    assert sorted(helos) == sorted(sent["helos"] +
                                   [b"client.test"] * sent["ehlo_client"])
    relay = [(s(e["from"]), s(e["to"])) for e in ev("smtp", "reject")
             if e.get("reason") == b"relay-denied"]
    assert relay == sent["relay"]
    auth = ev("smtp", "auth")
    assert [e["user"] for e in auth] == sent["auth_names"]
    assert all(e["result"] == b"fail" for e in auth)
    assert len(sent["auth_names"]) >= 2 * len(SASL_NAMES) - 2, sent
    pauth = ev("pop3", "auth")
    assert [e["user"] for e in pauth] == sent["pop3_names"]
    assert len(sent["pop3_names"]) >= len(POP3_NAMES) - 1, sent


KNOWN_EVENTS = {
    "start", "stopping", "stopped", "reloaded", "runner-start",
    "runner-exit", "worker-start", "worker-exit", "message", "connect",
    "helo", "reject", "accept", "auth", "ban", "tls", "tls-error",
    "timeout", "disconnect", "queued", "removed", "login", "logout",
    "login-refused", "bad-command", "sweep", "sent", "deferred",
    "bounced", "dsn", "error", "read-error", "fsync-failed",
    "syncfs-failed", "dsn-limited", "fixed", "stress-on", "stress-off",
    "result", "record-failed", "dkim-sign", "dkim-sign-failed",
    "attachments", "logs-sweep", "log-removed", "log-remove-failed",
    "rotated", "rotate-failed", "reopened", "reopen-failed",
    "alert", "held", "audit-head", "audit-rotated", "audit-failed",
    "audit-torn-tail", "audit-rotate-failed", "audit-head-failed",
    "id", "literal-refused", "literal-error",
}
KNOWN_KEYS = {
    "ts", "level", "proc", "fac", "event", "session", "ip", "listener",
    "trusted", "tls", "helo", "from", "to", "code", "enh", "reason",
    "queue", "rcpts", "local", "remote", "size", "result", "user", "mech",
    "delay_ms", "banned", "state", "messages", "errors", "duration_ms",
    "version", "pid", "hostname", "workers", "listen", "slot", "children",
    "msg", "id", "nrcpt", "cmd", "where", "relay", "dsn", "status",
    "error", "path", "dir", "errno", "limit", "retrieved", "deleted",
    "delete_failed", "octets", "dsn_id", "action", "signal", "config",
    "net", "failure", "ban_s", "notify", "ret", "owner_was", "mode_was",
    "owner", "mode", "header_addr", "wait", "limit_ms", "connections",
    "max_connections", "threshold", "stress_timeout_s", "below",
    "iprev", "spf", "spf_domain", "dkim", "dmarc", "from_domain", "policy",
    "dmarc_reason", "domain", "signed", "parts", "decoded", "us",
    "max_age_days", "files", "removed", "kept",
    "kind", "subject", "count", "max", "window_s", "notified",
    "head", "file", "dropped", "sent_copy",
    "commands", "client", "client_version", "sync",
}
