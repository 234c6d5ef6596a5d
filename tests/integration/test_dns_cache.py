"""
godwit keeps the answers of its checks' DNS lookups (net/dns.c, the
answer cache in front of dns_lookup()) so that the same sender's records
do not go through libunbound's thread for every message. What the cache
must never change is what the checks see: an answer is kept no longer
than its TTL, and a temporary failure is never kept. The daemon checks
SPF against a DNS server whose zone the test changes while it runs.
"""

import time

import pytest

from conftest import Godwit, serving, free_port, godwit_base, wait_for
from spf_dns_server import SuiteDNS
from test_msgauth import ar_fields, message, send, stored


@pytest.fixture(scope="module")
def dns_daemon(godwit_root):
    """A DNS server answering with TTL 1 s, and a godwit that uses it."""
    port = free_port()
    dns = SuiteDNS(port, ttl=1)
    dns.start()
    g = Godwit(godwit_base(godwit_root, "dnscache"), {
        "dns": {"resolver": [f"127.0.0.1@{port}"]},
        "checks": {"timeout": "3s"},
    })
    g.dns = dns
    try:
        with serving(g):
            yield g
    finally:
        dns.stop()


def spf_of(g, sender, marker):
    """Sends one message from sender; the spf= result godwit recorded."""
    r = send(g, sender, message(marker, sender))
    assert r.code == 250, r
    got = wait_for(lambda: stored(g, marker), 10, what="the message")
    v = ar_fields(got[0])[0]
    return v.split("spf=", 1)[1].split()[0]


def test_answer_kept_no_longer_than_its_ttl(dns_daemon, uniq):
    g = dns_daemon
    g.dns.set_zone({"ttl.test": [{"SPF": "v=spf1 ip4:127.0.0.0/8 -all"}]})
    assert spf_of(g, "a@ttl.test", uniq + "-1") == "pass"
    assert spf_of(g, "a@ttl.test", uniq + "-2") == "pass"
    g.dns.set_zone({"ttl.test": [{"SPF": "v=spf1 -all"}]})
    # the old answer may be served for its one second, not for longer
    deadline = time.monotonic() + 15
    seen = []
    while time.monotonic() < deadline:
        seen.append(spf_of(g, "a@ttl.test", f"{uniq}-{len(seen) + 3}"))
        if seen[-1] == "fail":
            break
        time.sleep(0.5)
    assert seen[-1] == "fail", seen


def test_temporary_failure_not_kept(dns_daemon, uniq):
    g = dns_daemon
    g.dns.set_zone({"tf.test": ["TIMEOUT"]})	# answered SERVFAIL
    assert spf_of(g, "a@tf.test", uniq + "-1") == "temperror"
    g.dns.set_zone({"tf.test": [{"SPF": "v=spf1 ip4:127.0.0.0/8 -all"}]})
    deadline = time.monotonic() + 15
    seen = []
    while time.monotonic() < deadline:
        seen.append(spf_of(g, "a@tf.test", f"{uniq}-{len(seen) + 2}"))
        if seen[-1] == "pass":
            break
        time.sleep(0.5)
    assert seen[-1] == "pass", seen
