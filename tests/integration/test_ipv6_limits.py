"""
IPv6 clients are grouped by prefix: every per-client
table (connections, rate, early-talker passes, auth failures, bans) counts
an IPv6 client's /64 (limits.ipv6_prefix), and a /48 (ipv6_wide_prefix)
gets ipv6_wide_factor times each budget. The clients connect from several
addresses of one /64 added to lo, as an attacker rotating the addresses of
its /64 would; the log names the network (net=).
"""

import ipaddress
import secrets
import socket
import subprocess

import pytest

from conftest import free_port, wait_for
from smtpclient import RawSMTP


def _ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True,
                          check=check, timeout=15)


@pytest.fixture
def v6net():
    """A random ULA /40 with addresses on lo: net(k, j, h) is host h of
    /64 j of /48 k. Removed again after the test."""
    if subprocess.run(["id", "-u"], capture_output=True,
                      text=True).stdout.strip() != "0":
        pytest.skip("adding addresses to lo needs root")
    tag = secrets.token_hex(3)
    added = []

    def net(k, j, h):
        return str(ipaddress.ip_address(
            f"fd{tag[:2]}:{tag[2:]}:{k:x}:{j:x}::{h:x}"))

    def add(*addrs):
        for a in addrs:
            _ip("-6", "addr", "add", f"{a}/128", "dev", "lo", "nodad")
            added.append(a)
        return addrs

    net.add = add
    try:
        yield net
    finally:
        for a in added:
            _ip("-6", "addr", "del", f"{a}/128", "dev", "lo", check=False)


def _net(addr, prefix):
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))


def _banner(g, source, port=None, timeout=10):
    """Connects from source to [::1] and returns (connection, first reply
    code); a refused connection is closed and returned as None."""
    c = RawSMTP("::1", port or g.port, timeout=timeout, source=source)
    r = c.reply(timeout=timeout)
    if r.code != 220:
        c.close()
        return None, r
    return c, r


def test_per_client_limit_holds_across_a_64(make_godwit, v6net):
    """The issue's case: 148 connections from four addresses of one /64
    with a per-IP limit of 50 were all accepted. Now the /64 gets 50; the
    next /64 of the same /48, and another /48, are not affected."""
    a = v6net.add(*(v6net(1, 0xa, h) for h in (1, 2, 0xbeef, 0xffff)))
    other64, other48 = v6net.add(v6net(1, 0xb, 1), v6net(2, 0xa, 1))
    g = make_godwit({"limits": {"max_connections_per_ip": 50}})
    held, refused = [], []
    try:
        for i in range(148):
            c, r = _banner(g, a[i % 4])
            if c is None:
                refused.append(r)
            else:
                held.append(c)
        assert len(held) == 50, (len(held), refused[:3])
        assert all((r.code, r.enh) == (421, "4.7.0") for r in refused)
        assert "too many connections from your address" in refused[0].text
        for src in (other64, other48):
            c, r = _banner(g, src)
            assert c is not None, (src, r)
            assert c.cmd("NOOP").code == 250
            c.close()
        # the held ones still work, and a freed slot can be taken from
        # any address of the /64
        assert held[0].cmd("NOOP").code == 250
        held.pop(0).close()
        def slot():
            c, r = _banner(g, a[3])
            if c is not None:
                held.append(c)
            return c is not None
        wait_for(slot, 10, interval=0.2, what="the slot to be freed")
    finally:
        for c in held:
            c.close()
    net = _net(a[0], 64)
    log = g.log_text()
    assert f"net={net} listener=mx reason=limit" in log, log[-2000:]


def test_wide_budget_per_48(make_godwit, v6net):
    """Rotating /64s inside one /48 meets the /48's budget:
    max_connections_per_ip * ipv6_wide_factor."""
    srcs = v6net.add(*(v6net(1, j, 1) for j in range(1, 6)))
    other48, = v6net.add(v6net(2, 1, 1))
    g = make_godwit({"limits": {"max_connections_per_ip": 2,
                                "ipv6_wide_factor": 3}})
    held = []
    try:
        for src in srcs[:3]:
            for _ in range(2):
                c, r = _banner(g, src)
                assert c is not None, (src, r)
                held.append(c)
        c, r = _banner(g, srcs[3])
        assert c is None and (r.code, r.enh) == (421, "4.7.0"), r
        assert "your network" in r.text, r
        c, r = _banner(g, other48)
        assert c is not None, r
        held.append(c)
    finally:
        for c in held:
            c.close()
    assert "net=" + _net(srcs[0], 48) in g.log_text()


def test_rate_is_per_64(make_godwit, v6net):
    a = v6net.add(*(v6net(1, 0xa, h) for h in range(1, 5)))
    b, = v6net.add(v6net(1, 0xb, 1))
    g = make_godwit({"limits": {"connection_rate": "3/60s"}})
    for src in a[:3]:
        c, r = _banner(g, src)
        assert c is not None, r
        c.close()
    c, r = _banner(g, a[3])
    assert c is None and "rate" in r.text, r
    c, r = _banner(g, b)
    assert c is not None, r
    c.close()


def _pop3_fail(g, port, source, password="wrong"):
    """One failed USER/PASS from source; returns the PASS reply line, or
    the refusal at connect."""
    s = socket.create_connection(("::1", port), timeout=20,
                                 source_address=(source, 0))
    f = s.makefile("rwb", buffering=0)
    try:
        line = f.readline()
        if not line.startswith(b"+OK"):
            return line
        f.write(b"USER alice@example.test\r\n")
        f.readline()
        f.write(b"PASS " + password.encode() + b"\r\n")
        return f.readline()
    finally:
        f.close()
        s.close()


def test_bans_reach_the_whole_64(make_godwit, v6net):
    """Failed logins from three addresses of one /64 ban the /64: a fourth
    address of it is refused at connect, with the right password too;
    another /64 logs in."""
    a = v6net.add(*(v6net(1, 0xa, h) for h in range(1, 5)))
    b, = v6net.add(v6net(1, 0xb, 1))
    port = free_port()
    g = make_godwit({"auth": {"max_failures_ip": 3, "ban_time": "1m",
                              "delay_base": "50ms", "delay_max": "100ms"}},
                    start=False)
    g.config["listeners"].append(
        {"name": "pop3", "protocol": "pop3", "plaintext_auth": True,
         "listen": [f"[::1]:{port}"]})
    g.write_config()
    g.start()
    for src in a[:3]:
        assert _pop3_fail(g, port, src).startswith(b"-ERR [AUTH]")
    from conftest import PASSWORD
    r = _pop3_fail(g, port, a[3], PASSWORD)
    assert r.startswith(b"-ERR [SYS/TEMP]"), r
    assert _pop3_fail(g, port, b, PASSWORD).startswith(b"+OK"), \
        "another /64 must not be banned"
    net = _net(a[0], 64)
    log = g.log_text()
    assert f"event=ban ip={a[2]} net={net}" in log, log[-3000:]
    # SMTP is refused at connect from the banned /64 as well
    c, r = _banner(g, a[3])
    assert c is None and (r.code, r.enh) == (421, "4.7.0"), r


def test_early_talker_pass_is_per_64(make_godwit, v6net):
    """A /64 that passed the early-talker test is trusted from any of its
    addresses; a /64 that did not is still tested."""
    a1, a2 = v6net.add(v6net(1, 0xa, 1), v6net(1, 0xa, 2))
    b, = v6net.add(v6net(1, 0xb, 1))
    g = make_godwit(start=False)
    g.listener()["greet_pause"] = "1s"
    g.write_config()
    g.start()
    c, r = _banner(g, a1)        # waits out the pause: a1's /64 passes
    assert c is not None, r
    assert c.cmd("QUIT").code == 221
    c.close()

    def talk_early(src):
        c = RawSMTP("::1", g.port, timeout=10, source=src)
        try:
            c.send(b"EHLO early.test\r\n")
            lines, _ = c.read_raw_lines(timeout=4)
            return [l[:3] for l in lines]
        finally:
            c.close()

    assert talk_early(a2)[:2] == ["220", "250"], "a2 shares a1's pass"
    codes = talk_early(b)
    assert "250" not in codes and codes, codes
