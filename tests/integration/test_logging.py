"""
Logging: one event per line, key=value by default and JSON lines
when configured, with the fields a log pipeline needs: connect, each
accepted message (queue id, client IP, HELO, sender, recipients, size,
result), each rejection with its reason, disconnect with counters.
"""

import json
import re

from smtpclient import make_message, transaction

TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)$")
KV_RE = re.compile(r'([A-Za-z_][A-Za-z0-9_.-]*)=("(?:[^"\\]|\\.)*"|\S*)')


def parse_kv(line):
    """'TS k=v k="v w" ...' -> dict with 'ts' and the pairs (values
    unquoted)."""
    ts, _, rest = line.partition(" ")
    d = {"ts": ts}
    pos = 0
    rest = rest.strip()
    while pos < len(rest):
        m = KV_RE.match(rest, pos)
        assert m, f"not key=value at {rest[pos:]!r} in {line!r}"
        v = m.group(2)
        if v.startswith('"'):
            v = re.sub(r"\\(.)", r"\1", v[1:-1])
        d[m.group(1)] = v
        pos = m.end()
        while pos < len(rest) and rest[pos] == " ":
            pos += 1
    return d


def _session(g, sender, rcpts_ok, rcpts_bad, message):
    with g.raw() as c:
        c.ehlo("logger.test")
        assert c.cmd(f"MAIL FROM:<{sender}>").code == 250
        for r in rcpts_bad:  # other people's domains: relay denied
            rr = c.cmd(f"RCPT TO:<{r}>")
            assert (rr.code, rr.enh) == (554, "5.7.1"), rr
        c.cmd("RSET")
        r = transaction(c, sender, rcpts_ok, message) if rcpts_ok else None
        c.cmd("QUIT")
        return r


def test_kv_log_events(make_godwit, uniq):
    g = make_godwit()
    sender = f"{uniq}@example.org"
    msg = make_message(uniq)
    with g.raw() as c:
        c.ehlo("logger.test")
        assert c.cmd(f"MAIL FROM:<{sender}>").code == 250
        assert c.cmd("RCPT TO:<user@other.example>").code == 554
        assert c.cmd("RCPT TO:<nobody@example.test>").code == 550
        c.cmd("RSET")
        r = transaction(c, sender, ["alice@example.test", "bob@example.test"], msg)
        assert r.code == 250
        assert c.cmd("QUIT").code == 221
    g.stop()

    events = []
    for line in g.log_text().splitlines():
        d = parse_kv(line)
        assert TS_RE.match(d["ts"]), f"no timestamp: {line!r}"
        assert "level" in d and "event" in d, line
        events.append(d)

    mine = [e for e in events if sender in e.get("from", "")]
    accept = [e for e in mine if e["event"] == "accept"]
    assert len(accept) == 1, mine
    a = accept[0]
    assert a["ip"] == "127.0.0.1"
    assert a["helo"] == "logger.test"
    # the bare address (no angle brackets); to is comma-separated
    assert a["from"] == sender
    assert a["to"] == "alice@example.test,bob@example.test", a
    assert a["rcpts"] == "2"
    assert a.get("queue"), a
    size = int(a["size"])
    assert len(msg) * 0.9 <= size <= len(msg) + 4096, (size, len(msg))
    assert a.get("result") == "delivered", a

    rejects = [e for e in mine if e["event"] == "reject"]
    reasons = {e.get("reason") for e in rejects}
    assert len(rejects) == 2 and None not in reasons and len(reasons) == 2, rejects
    for e in rejects:
        assert e["ip"] == "127.0.0.1"

    session = a.get("session")
    assert session
    connect = [e for e in events if e["event"] == "connect" and e.get("session") == session]
    disconnect = [e for e in events if e["event"] == "disconnect" and e.get("session") == session]
    assert len(connect) == 1 and connect[0]["ip"] == "127.0.0.1", connect
    assert len(disconnect) == 1, disconnect
    assert disconnect[0].get("messages") == "1", disconnect


def test_json_log(make_godwit, uniq):
    g = make_godwit({"log": {"format": "json"}})
    sender = f"{uniq}@example.org"
    _session(g, sender, ["alice@example.test"], ["user@other.example"], make_message(uniq))
    g.stop()
    objs = []
    for line in g.log_text().splitlines():
        try:
            o = json.loads(line)
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}")
        assert isinstance(o, dict), line
        objs.append(o)
    assert objs
    for o in objs:
        assert "event" in o and "level" in o, o
        ts = o.get("ts") or o.get("time") or o.get("timestamp")
        assert ts and TS_RE.match(ts), o
    accept = [o for o in objs if o["event"] == "accept" and sender in str(o.get("from"))]
    assert len(accept) == 1, objs[-10:]
    assert accept[0]["ip"] == "127.0.0.1" and accept[0]["helo"] == "logger.test"
    reject = [o for o in objs if o["event"] == "reject" and sender in str(o.get("from"))]
    assert len(reject) == 1 and reject[0].get("reason"), reject


def test_hostile_values_stay_on_one_line(make_godwit, uniq):
    """Client-controlled text (HELO, addresses) cannot forge log lines or
    fields."""
    g = make_godwit()
    with g.raw() as c:
        c.ehlo(f"evil.test event=accept ip=6.6.6.6 {uniq}")
        c.cmd('MAIL FROM:<"x\\"y event=forged"@example.org>')
        c.cmd(f"RCPT TO:<{uniq}@other.example>")
        c.cmd("QUIT")
    g.stop()
    for line in g.log_text().splitlines():
        if not re.match(r"^\d{4}-", line):
            continue  # not an event line: test_kv_log_events reports those
        d = parse_kv(line)
        assert d.get("ip") != "6.6.6.6", f"forged field: {line}"
        assert d.get("event") != "forged", line


# ---------------------------------------------- disconnect reasons (item 8) ---

def _events(g):
    out = []
    for line in g.log_text().splitlines():
        d = parse_kv(line)
        out.append(d)
    return out


def _wait_disconnects(g, n, timeout=15):
    """The first n disconnect events (SMTP and POP3), in log order."""
    from conftest import wait_for

    def got():
        d = [e for e in _events(g) if e.get("event") == "disconnect"]
        return d if len(d) >= n else None
    return wait_for(got, timeout, what=f"{n} disconnect lines")[:n]


def test_disconnect_reasons(make_godwit):
    """Each way an SMTP session ends has its own reason (it was always
    reason=closed), and a refusal that ends the session counts in
    errors like any other 5xx."""
    from conftest import free_port
    from smtpclient import RawSMTP

    g = make_godwit({"smtp": {"max_errors": 3,
                              "timeouts": {"command": "2s"}}}, start=False)
    port2 = free_port()
    g.config["listeners"].append(
        {"name": "mx2", "protocol": "smtp", "greet_pause": "1s",
         "listen": [f"127.0.0.1:{port2}"]})
    g.write_config()
    g.start()
    want = []

    with g.raw() as c:                          # QUIT
        c.ehlo()
        assert c.cmd("QUIT").code == 221
        c.wait_closed()
    want.append(("quit", "0"))
    with g.raw() as c:                          # the client hangs up
        c.ehlo()
    want.append(("eof", "0"))
    _wait_disconnects(g, 2)
    with g.raw() as c:                          # max_errors 5xx replies
        c.ehlo()
        for _ in range(3):
            c.send("BOGUS\r\n")
        c.read_all(timeout=5)
    want.append(("too-many-errors", "3"))
    with g.raw() as c:                          # a bare LF: 521
        c.send("EHLO bare.test\n")
        r = c.reply()
        assert r.code == 521, r
        c.wait_closed()
    want.append(("bare-eol", "1"))
    with g.raw() as c:                          # silence: 421 after 2s
        c.ehlo()
        r = c.reply(timeout=15)
        assert r.code == 421, r
        c.wait_closed()
    want.append(("timeout", "0"))
    c = RawSMTP("127.0.0.1", port2, timeout=10)  # talks before the banner
    c.send("EHLO early.test\r\n")
    c.read_raw_lines(timeout=6)
    c.close()
    want.append(("early-talker", "1"))
    _wait_disconnects(g, len(want))
    c = g.raw()                                 # idle at shutdown: 421
    c.ehlo()
    g.stop()
    c.close()
    want.append(("shutdown", "0"))

    got = [(e["reason"], e["errors"]) for e in _wait_disconnects(g, len(want))]
    assert got == want
    assert "reason=closed" not in g.log_text()


def _tls_godwit(make_godwit, cert):
    from conftest import free_port

    crt, key = cert
    g = make_godwit({"tls": {"certificates": [{"cert": str(crt),
                                               "key": str(key)}]}},
                    start=False)
    g.pop3s_port = free_port()
    g.config["listeners"].append(
        {"name": "pop3s", "protocol": "pop3s",
         "listen": [f"127.0.0.1:{g.pop3s_port}"]})
    g.write_config()
    g.start()
    return g


def test_tls_close_without_close_notify_is_eof(make_godwit, cert):
    """A TLS client that hangs up without close_notify (as many do) has
    closed the connection: one disconnect line with reason=eof, no
    tls-error line and no OpenSSL error code junk."""
    import socket
    from conftest import client_tls_context

    g = _tls_godwit(make_godwit, cert)
    c = g.raw()
    c.ehlo()
    assert c.cmd("STARTTLS").code == 220
    tls = client_tls_context().wrap_socket(c.sock,
                                           server_hostname="localhost")
    tls.sendall(b"EHLO tls.test\r\n")
    assert tls.recv(4096).startswith(b"250")
    tls.close()                     # no SSL_shutdown: no close_notify
    p = socket.create_connection(("127.0.0.1", g.pop3s_port), timeout=10)
    tls = client_tls_context().wrap_socket(p, server_hostname="localhost")
    assert tls.recv(4096).startswith(b"+OK")
    tls.close()
    d = _wait_disconnects(g, 2)
    assert [e["reason"] for e in d] == ["eof", "eof"], d
    assert {e["fac"] for e in d} == {"smtp", "pop3"}
    g.stop()
    log = g.log_text()
    assert "event=tls-error" not in log, log
    assert "error:0" not in log and "reason(" not in log, log


def test_tls_error_logged_once_with_its_reason(make_godwit, cert):
    """A real TLS failure (plain text to the pop3s port) is one tls-error
    line with OpenSSL's reason in words, and reason=tls-error on the
    disconnect line."""
    import socket

    g = _tls_godwit(make_godwit, cert)
    p = socket.create_connection(("127.0.0.1", g.pop3s_port), timeout=10)
    p.sendall(b"USER alice@example.test\r\n" * 4)
    p.settimeout(10)
    try:
        while p.recv(4096):
            pass
    except OSError:
        pass
    p.close()
    d = _wait_disconnects(g, 1)
    assert d[0]["reason"] == "tls-error", d
    errs = [e for e in _events(g) if e.get("event") == "tls-error"]
    assert len(errs) == 1, errs
    assert re.fullmatch(r"[a-z][a-z0-9 ]+", errs[0]["error"]), errs
    assert errs[0]["session"] == d[0]["session"]
