"""
Logging (R4.1): one event per line, key=value by default and JSON lines
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
        for r in rcpts_bad:
            assert c.cmd(f"RCPT TO:<{r}>").code >= 500
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
    assert a["from"] == f"<{sender}>"
    assert "alice@example.test" in a.get("to", "") and "bob@example.test" in a.get("to", ""), a
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
