"""
DNS block and allow lists end to end: the real daemon looks its clients
up in test lists (RFC 5782) served by a dnslib server on loopback, and
refuses a listed client at RCPT with 554 5.7.1 naming the zone and its
TXT reason, while postmaster stays reachable; IPv6 (the nibble name),
weights and the threshold, an allow list that skips the blocklists,
"query refused" answers ignored and logged, trusted and authenticated
clients not checked, and a lookup that times out blocks nobody.

Each client is a loopback source address, each listed in its own way:
  127.0.0.1   nowhere
  127.0.0.2   bl.test (weight 2, with a TXT reason)
  127.0.0.3   half.test (weight 1: below the threshold of 2)
  127.0.0.4   bl.test, but in trusted_networks
  127.0.0.5   half.test and half2.test (1 + 1: blocked)
  127.0.0.6   bl.test and the allow list wl.test
  127.0.0.7   bl.test answers 127.255.255.254 (query refused)
  127.0.0.8   codes.test with 127.0.0.3 (not a code that counts)
  127.0.0.9   codes.test with 127.0.0.4 (counts: blocked)
  127.0.0.10  slow.test answers only after the lookup timed out
  ::1         bl.test, by its nibble name
"""

import base64
import re
import socket
import time

import pytest

from conftest import PASSWORD, Godwit, serving, free_port, godwit_base, wait_for
from smtpclient import RawSMTP, crlf, dot_stuff
from spf_dns_server import SuiteDNS

ALICE = "alice@example.test"
REASON = "Blocked: see https://bl.test/lookup?ip=127.0.0.2"
SLOW_SECONDS = 4


def rev4(ip):
    return ".".join(reversed(ip.split(".")))


def rev6(ip):
    full = socket.inet_pton(socket.AF_INET6, ip).hex()
    return ".".join(reversed(full))


def zone():
    z = {}

    def a(name, *vals):
        z.setdefault(name, []).extend({"A": v} for v in vals)

    a(f"{rev4('127.0.0.2')}.bl.test", "127.0.0.2")
    z[f"{rev4('127.0.0.2')}.bl.test"].append({"TXT": REASON + "\x01\n"})
    a(f"{rev4('127.0.0.3')}.half.test", "127.0.0.2")
    a(f"{rev4('127.0.0.4')}.bl.test", "127.0.0.2")
    a(f"{rev4('127.0.0.5')}.half.test", "127.0.0.2")
    a(f"{rev4('127.0.0.5')}.half2.test", "127.0.0.2")
    z[f"{rev4('127.0.0.5')}.half2.test"].append({"TXT": "half2 says no"})
    a(f"{rev4('127.0.0.6')}.bl.test", "127.0.0.2")
    a(f"{rev4('127.0.0.6')}.wl.test", "127.0.10.2", "127.0.10.3")
    a(f"{rev4('127.0.0.7')}.bl.test", "127.255.255.254")
    a(f"{rev4('127.0.0.8')}.codes.test", "127.0.0.3")
    a(f"{rev4('127.0.0.9')}.codes.test", "127.0.0.4")
    a(f"{rev4('127.0.0.10')}.slow.test", "127.0.0.2")
    a(f"{rev6('::1')}.bl.test", "127.0.0.2")
    # the RFC 5782 test entries: 127.0.0.2 listed, 127.0.0.1 not
    return z


@pytest.fixture(scope="module")
def world(godwit_root):
    dns_port = free_port()
    dns = SuiteDNS(dns_port, ttl=1)
    dns.set_zone(zone())
    orig = dns.resolver.resolve

    def resolve(request, handler):
        # a list that answers too late: after godwit stopped waiting
        if str(request.q.qname).rstrip(".").endswith(
                rev4("127.0.0.10") + ".slow.test"):
            time.sleep(SLOW_SECONDS)
        return orig(request, handler)

    dns.resolver.resolve = resolve
    dns.start()
    g = Godwit(godwit_base(godwit_root, "dnsbl"), {
        "dns": {"resolver": [f"127.0.0.1@{dns_port}"]},
        "checks": {"timeout": "2s"},
        "smtp": {"trusted_networks": ["127.0.0.4/32"]},
        "filter": {
            "dnsbl": ["bl.test*2", "half.test", "half2.test*1",
                      "codes.test=127.0.0.[4..5]*2", "slow.test*2"],
            "dnswl": ["wl.test=127.0.[0..255].[1..3]"],
            "dnsbl_threshold": 2,
            "dnsbl_timeout": "1s",
        },
    })
    g.listener("mx").update({"auth": True, "plaintext_auth": True})
    g.write_config()
    try:
        with serving(g):
            yield g
    finally:
        dns.stop()


def session(g, source, family=4):
    host = "::1" if family == 6 else "127.0.0.1"
    c = RawSMTP(host, g.port, timeout=20, source=source)
    assert c.reply().code == 220
    assert c.ehlo("client.sender.test").code == 250
    assert c.cmd("MAIL FROM:<someone@sender.test>").code == 250
    return c


def rcpt(g, source, to=ALICE, family=4):
    with session(g, source, family) as c:
        return c.cmd(f"RCPT TO:<{to}>")


def deliver(g, source, marker, to=ALICE, family=4):
    """A whole message; the stored copy (bytes)."""
    with session(g, source, family) as c:
        r = c.cmd(f"RCPT TO:<{to}>")
        assert r.code == 250, r
        assert c.cmd("DATA").code == 354
        msg = crlf(f"From: <someone@sender.test>\nTo: <{to}>\n"
                   f"Subject: {marker}\n\nbody {marker}\n")
        c.send(dot_stuff(msg) + b".\r\n")
        assert c.reply(timeout=20).code == 250
        c.cmd("QUIT")
    found = wait_for(lambda: g.find_messages(marker), 10, what=marker)
    return found[0].read_bytes()


def dnsbl_logs(g, ip):
    return [l for l in g.log_text().splitlines()
            if "fac=filter" in l and "event=dnsbl " in l
            and f"ip={ip} " in l + " "]


def test_listed_client_refused_naming_zone_and_reason(world):
    r = rcpt(world, "127.0.0.2")
    assert r.code == 554
    # the TXT record's control characters are cleaned away
    assert r.text == ("5.7.1 Service unavailable; client [127.0.0.2] "
                      f"blocked using bl.test; {REASON}"), r
    line = wait_for(lambda: dnsbl_logs(world, "127.0.0.2"), 5)[-1]
    assert "verdict=blocked" in line and "zone=bl.test" in line
    assert "score=2" in line and "bl.test=127.0.0.2" in line


def test_unlisted_client_accepted(world, uniq):
    raw = deliver(world, "127.0.0.1", uniq)
    assert b"X-Godwit-DNSBL" not in raw


def test_ipv6_listing_by_nibbles(world):
    r = rcpt(world, "::1", family=6)
    assert r.code == 554
    assert "blocked using bl.test" in str(r.text)
    assert "client [::1]" in str(r.text)


def test_postmaster_still_reachable(world, uniq):
    with session(world, "127.0.0.2") as c:
        assert c.cmd("RCPT TO:<postmaster@example.test>").code == 250
        assert c.cmd("RCPT TO:<Postmaster>").code == 250
        assert c.cmd(f"RCPT TO:<{ALICE}>").code == 554
        assert c.cmd("DATA").code == 354
        c.send(dot_stuff(crlf(f"Subject: {uniq}\n\nhello\n")) + b".\r\n")
        assert c.reply(timeout=20).code == 250
    raw = wait_for(lambda: world.find_messages(uniq), 10)[0].read_bytes()
    assert b"X-Godwit-DNSBL: score=2 threshold=2 (postmaster)" in raw


def test_below_threshold_accepted_with_header(world, uniq):
    raw = deliver(world, "127.0.0.3", uniq)
    assert b"X-Godwit-DNSBL: score=1 threshold=2;\n\tlisted by half.test " \
           b"(127.0.0.2) weight 1\n" in raw


def test_weights_add_up_to_the_threshold(world):
    r = rcpt(world, "127.0.0.5")
    assert r.code == 554
    # either list may be named (equal weights); the reason is its own
    assert re.search(r"blocked using half2?\.test", str(r.text))
    line = wait_for(lambda: dnsbl_logs(world, "127.0.0.5"), 5)[-1]
    assert "score=2" in line


def test_allow_list_skips_blocklists(world, uniq):
    raw = deliver(world, "127.0.0.6", uniq)
    # two answers, in either order (resolvers may rotate them)
    assert re.search(rb"X-Godwit-DNSBL: allowed by wl\.test "
                     rb"\(127\.0\.10\.[23],127\.0\.10\.[23]\)\n", raw), raw
    assert re.search(rb"Authentication-Results: [^;]+;\n\tdnswl=pass "
                     rb"dns\.zone=wl\.test policy\.ip=127\.0\.10\.[23]\n", raw), raw


def test_trusted_and_authenticated_not_checked(world):
    assert rcpt(world, "127.0.0.4").code == 250
    with RawSMTP("127.0.0.1", world.port, timeout=20,
                 source="127.0.0.2") as c:
        assert c.reply().code == 220
        assert c.ehlo("client.test").code == 250
        plain = base64.b64encode(
            f"\0{ALICE}\0{PASSWORD}".encode()).decode()
        assert c.cmd(f"AUTH PLAIN {plain}").code == 235
        assert c.cmd(f"MAIL FROM:<{ALICE}>").code == 250
        assert c.cmd(f"RCPT TO:<{ALICE}>").code == 250


def test_query_refused_ignored_and_logged(world, uniq):
    deliver(world, "127.0.0.7", uniq)
    line = wait_for(lambda: [l for l in world.log_text().splitlines()
                             if "event=dnsbl-refused" in l], 5)[0]
    assert "level=err" in line or "ERR" in line.upper()
    assert "zone=bl.test" in line and "code=127.255.255.254" in line
    log = wait_for(lambda: dnsbl_logs(world, "127.0.0.7"), 5)[-1]
    assert "verdict=pass" in log
    assert 'refused="bl.test=127.255.255.254"' in log


def test_codes_that_do_not_count(world, uniq):
    raw = deliver(world, "127.0.0.8", uniq)
    assert b"X-Godwit-DNSBL" not in raw
    log = wait_for(lambda: dnsbl_logs(world, "127.0.0.8"), 5)[-1]
    assert 'uncounted="codes.test=127.0.0.3"' in log and "score=0" in log
    r = rcpt(world, "127.0.0.9")
    assert r.code == 554 and "blocked using codes.test" in str(r.text)


def test_bad_specs_reported_by_config_check(world, tmp_path):
    text = world.cfg_path.read_text()
    bad = text + ("filter:\n"
                  "  dnsbl:\n"
                  "    - bl.test=127.0.0.[5..2]\n"
                  "    - ok.test*3\n"
                  "  dnswl:\n"
                  "    - wl.test*2\n")
    # the world's own filter: section is replaced by the bad one
    bad = re.sub(r"^filter:\n(?:  .*\n)+", "", text, count=1, flags=re.M) \
        + bad[len(text):]
    path = tmp_path / "bad.yaml"
    path.write_text(bad)
    p = world.run("config", "check", "-c", str(path), global_cfg=False)
    assert p.returncode != 0
    lines = [l for l in (p.stdout + p.stderr).splitlines() if "filter." in l]
    n = bad.splitlines().index("    - bl.test=127.0.0.[5..2]") + 1
    assert any(f"bad.yaml:{n}:" in l and "backwards" in l for l in lines), \
        lines
    assert any(f"bad.yaml:{n + 3}:" in l and "weight" in l for l in lines), \
        lines
    assert not any("ok.test" in l for l in lines)


def test_lookup_timeout_does_not_block(world, uniq):
    """Last: unbound remembers the slow server for a while."""
    slow = session(world, "127.0.0.10")
    t0 = time.monotonic()
    slow.send(f"RCPT TO:<{ALICE}>\r\n".encode())
    # meanwhile another client is served at once
    deliver(world, "127.0.0.1", uniq)
    r = slow.reply(timeout=SLOW_SECONDS + 5)
    took = time.monotonic() - t0
    slow.close()
    assert r.code == 250
    assert took < SLOW_SECONDS - 0.5, took
    line = wait_for(lambda: dnsbl_logs(world, "127.0.0.10"), 5)[-1]
    assert "failed=1" in line and "verdict=pass" in line
