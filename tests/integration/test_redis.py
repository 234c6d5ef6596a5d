"""
Shared state through a real Redis 7 (redis-server from Debian, started
by this module): two godwit nodes on this machine, each with its own
data directory, both `redis:` to the same server.

- Wrong passwords spread across both nodes (SMTP AUTH on one, POP3 on
  the other) ban the client on both (421 4.7.0 / -ERR); the ban is a key
  with a TTL under the prefix, failures of an account are counted under
  a keyed hash (the name never appears in Redis), and an IPv6 client is
  counted as its /64 and its /48.
- An account's sending limit holds across the nodes.
- Greylisting: a first try on A is refused, the retry after the delay on
  B is accepted.
- Redis stopped: both nodes log it loudly (fac=redis event=down) and go
  on from their local tables (logins, mail, greylisting); Redis back:
  event=up, and state is shared again.
"""

import base64
import re
import smtplib
import socket
import time

import pytest

from conftest import DOMAIN, PASSWORD, free_port, wait_for
from redis_peer import RedisPeer, available
from smtpclient import RawSMTP, crlf, dot_stuff

ALICE = f"alice@{DOMAIN}"
ok, why = available()
pytestmark = pytest.mark.skipif(not ok, reason=why)


@pytest.fixture(scope="module")
def redis(tmp_path_factory):
    r = RedisPeer(tmp_path_factory.mktemp("redis"), free_port()).start()
    yield r
    r.stop()


_prefixes = [0]


def prefix():
    _prefixes[0] += 1
    return f"t{_prefixes[0]}-{int(time.time() * 1000) % 100000}:"


@pytest.fixture
def pair(make_godwit, cert):
    """pair(redis, **over) -> (A, B): two nodes sharing redis under a
    fresh prefix, each with submission and POP3 listeners (plaintext
    logins: the brakes are under test, not TLS)."""
    crt, key = cert

    def make(r, over=None, prefix_=None):
        pre = prefix_ or prefix()
        nodes = []
        for _ in range(2):
            cfg = {
                "redis": {"address": r.address, "prefix": pre,
                          "timeout": "300ms"},
                "auth": {"max_failures_ip": 4, "ban_time": "2m",
                         "failure_window": "1m", "delay_base": "10ms",
                         "delay_max": "50ms"},
                "alerts": {"enabled": True, "cert_expiry": 0},
                "tls": {"certificates": [{"cert": str(crt),
                                          "key": str(key)}]},
            }
            for k, v in (over or {}).items():
                cfg[k] = dict(cfg.get(k, {}), **v)
            g = make_godwit(cfg, start=False)
            g.sub_port, g.pop3_port = free_port(), free_port()
            g.config["listeners"] += [
                {"name": "submission", "protocol": "submission",
                 "plaintext_auth": True,
                 "listen": [f"127.0.0.1:{g.sub_port}",
                            f"[::1]:{g.sub_port}"]},
                {"name": "pop3", "protocol": "pop3", "plaintext_auth": True,
                 "listen": [f"127.0.0.1:{g.pop3_port}",
                            f"[::1]:{g.pop3_port}"]},
            ]
            g.write_config()
            g.start()
            g.prefix = pre
            nodes.append(g)
        for g in nodes:
            wait_up(g)
        return nodes

    return make


def wait_up(g, after=0, timeout=20):
    """Every worker (and the parent) logged fac=redis event=up."""
    def up():
        return "fac=redis event=up" in g.log_since(after)
    wait_for(up, timeout, what="redis event=up")


def lines(host, port):
    s = socket.create_connection((host, port), timeout=10)
    return s, s.makefile("rwb", buffering=0)


def reply(f):
    while True:
        l = f.readline().decode(errors="replace").rstrip("\r\n")
        if len(l) < 4 or l[3] != "-":
            return l


def smtp_wrong(g, host="127.0.0.1"):
    """One wrong AUTH PLAIN on g's submission: the reply."""
    s, f = lines(host, g.sub_port)
    try:
        first = reply(f)
        if not first.startswith("220"):
            return first
        f.write(b"EHLO c.test\r\n")
        reply(f)
        p = base64.b64encode(f"\0{ALICE}\0wrong".encode())
        f.write(b"AUTH PLAIN " + p + b"\r\n")
        return reply(f)
    finally:
        s.close()


def pop3_wrong(g, host="127.0.0.1"):
    """One wrong USER/PASS on g's POP3: the reply."""
    s, f = lines(host, g.pop3_port)
    try:
        first = f.readline().decode(errors="replace").strip()
        if not first.startswith("+OK"):
            return first
        f.write(f"USER {ALICE}\r\n".encode())
        f.readline()
        f.write(b"PASS wrong\r\n")
        return f.readline().decode(errors="replace").strip()
    finally:
        s.close()


def smtp_greeting(g, host="127.0.0.1"):
    s, f = lines(host, g.sub_port)
    try:
        return reply(f)
    finally:
        s.close()


def pop3_greeting(g, host="127.0.0.1"):
    s, f = lines(host, g.pop3_port)
    try:
        return f.readline().decode(errors="replace").strip()
    finally:
        s.close()


def test_failures_across_nodes_ban_on_both(redis, pair):
    a, b = pair(redis)
    assert smtp_wrong(a).startswith("535")
    assert pop3_wrong(b).startswith("-ERR [AUTH]")
    assert smtp_wrong(a).startswith("535")
    # the fourth, on B, reaches the cluster's max_failures_ip: each node
    # alone has seen two
    assert pop3_wrong(b).startswith("-ERR")
    wait_for(lambda: smtp_greeting(a).startswith("421 4.7.0"), 10,
             what="the ban on A")
    wait_for(lambda: pop3_greeting(b).startswith("-ERR"), 10,
             what="the ban on B")
    assert smtp_greeting(b).startswith("421 4.7.0")
    assert pop3_greeting(a).startswith("-ERR")
    # in Redis: the ban with its TTL, under the prefix
    key = f"{a.prefix}ban:ip:127.0.0.1/32"
    assert redis.keys(f"{a.prefix}ban:*") == [key]
    assert 0 < redis.pttl(key) <= 120000
    # the account's failures under a keyed hash, never the name
    keys = redis.keys(f"{a.prefix}*")
    acct = [k for k in keys if k.startswith(f"{a.prefix}authfail:acct:")]
    assert len(acct) == 1 and re.fullmatch(
        re.escape(a.prefix) + r"authfail:acct:[0-9a-f]{32}", acct[0]), keys
    assert not any("alice" in k for k in keys), keys
    assert all(redis.pttl(k) > 0 for k in keys
               if not k.endswith("hashkey")), keys


def test_ipv6_client_counted_as_its_networks(redis, pair):
    a, b = pair(redis, {"auth": {"max_failures_ip": 2},
                        "limits": {"ipv6_prefix": 64,
                                   "ipv6_wide_prefix": 48}})
    assert smtp_wrong(a, "::1").startswith("535")
    keys = redis.keys(f"{a.prefix}authfail:*")
    assert f"{a.prefix}authfail:ip:::/64" in keys, keys
    assert f"{a.prefix}authfail:net:::/48" in keys, keys
    smtp_wrong(b, "::1")
    wait_for(lambda: smtp_greeting(a, "::1").startswith("421"), 10,
             what="the /64 banned on A")
    assert f"{a.prefix}ban:ip:::/64" in redis.keys(f"{a.prefix}ban:*")
    # IPv4 is another client
    assert smtp_greeting(a).startswith("220")


def login(g):
    c = smtplib.SMTP("127.0.0.1", g.sub_port, timeout=30)
    c.ehlo("client.example.test")
    c.login(ALICE, PASSWORD)
    return c


def send_one(g, subject):
    c = login(g)
    try:
        code, _ = c.mail(ALICE)
        if code != 250:
            return code
        code, _ = c.rcpt(f"bob@{DOMAIN}")
        if code != 250:
            return code
        code, _ = c.data(f"From: <{ALICE}>\r\nTo: <bob@{DOMAIN}>\r\n"
                         f"Subject: {subject}\r\n\r\nbody\r\n")
        return code
    finally:
        c.quit()


def test_sending_limit_across_nodes(redis, pair):
    a, b = pair(redis, {"submission": {"limits": {"messages_per_hour": 3}}})
    assert send_one(a, "1") == 250
    assert send_one(b, "2") == 250
    assert send_one(a, "3") == 250
    # B itself has seen one message; the cluster three
    assert send_one(b, "4") == 451
    assert send_one(a, "5") == 451
    assert re.search(r"reason=sending-limit limit=messages-per-hour",
                     b.log_text())
    assert redis.keys(f"{a.prefix}send:block:*")


def grey_attempt(g, source, sender):
    with RawSMTP("127.0.0.1", g.port, timeout=20, source=source) as c:
        assert c.reply().code == 220
        assert c.ehlo("client.sender.test").code == 250
        assert c.cmd(f"MAIL FROM:<{sender}>").code == 250
        r = c.cmd(f"RCPT TO:<{ALICE}>")
        if r.code == 250:
            assert c.cmd("DATA").code == 354
            c.send(dot_stuff(crlf(f"From: <{sender}>\nSubject: g\n\n"
                                  "grey\n")) + b".\r\n")
            assert c.reply(timeout=20).code == 250
        c.cmd("QUIT")
        return r.code


GREY = {"filter": {"greylist": {"enabled": True, "delay": "2s",
                                "window": "30s", "expire": "1m",
                                "auto_allow": 0}}}


def test_greylist_retry_passes_on_the_other_node(redis, pair):
    a, b = pair(redis, GREY)
    assert grey_attempt(a, "127.0.5.1", "s1@far.test") == 451
    assert grey_attempt(b, "127.0.5.1", "s1@far.test") == 451
    t0 = time.monotonic()
    wait_for(lambda: grey_attempt(b, "127.0.5.1", "s1@far.test") == 250,
             10, interval=0.5, what="the retry on B")
    assert time.monotonic() - t0 < 10
    assert redis.keys(f"{a.prefix}grey:t:*")
    # a passed triplet passes on A too
    assert grey_attempt(a, "127.0.5.1", "s1@far.test") == 250


def test_redis_down_local_fallback_then_shared_again(pair, tmp_path):
    r = RedisPeer(tmp_path / "redis-own", free_port()).start()
    try:
        a, b = pair(r, GREY)
        offs = [a.log_size(), b.log_size()]
        r.stop()
        for g in (a, b):
            wait_for(lambda g=g: re.search(
                r"level=err[a-z]* .*fac=redis event=down|"
                r"fac=redis event=down", g.log_text()), 15,
                what="event=down")
        # nothing refused because of Redis: logins, mail, greylisting
        # (locally)
        assert send_one(a, "down-a") == 250
        assert send_one(b, "down-b") == 250
        assert smtp_wrong(a).startswith("535")
        assert grey_attempt(a, "127.0.6.1", "s2@far.test") == 451
        wait_for(lambda: grey_attempt(a, "127.0.6.1", "s2@far.test") == 250,
                 10, interval=0.5, what="the local greylist pass")
        # back: both reconnect (the backoff is short after a short down)
        offs = [a.log_size(), b.log_size()]
        r.start()
        wait_up(a, offs[0], 30)
        wait_up(b, offs[1], 30)
        assert grey_attempt(a, "127.0.7.1", "s3@far.test") == 451
        assert redis_keys_soon(r, f"{a.prefix}grey:t:*")
        wait_for(lambda: grey_attempt(b, "127.0.7.1", "s3@far.test") == 250,
                 10, interval=0.5, what="the retry on B after the return")
    finally:
        r.stop()


def redis_keys_soon(r, pattern, timeout=5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        k = r.keys(pattern)
        if k:
            return k
        time.sleep(0.1)
    return []
