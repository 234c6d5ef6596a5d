"""
Greylisting end to end: the real daemon answers a new (client /24,
sender, recipient) triplet 451 4.7.1, again before the delay, and accepts
it after; clients that delivered auto_allow messages pass at once;
trusted and authenticated clients are never greylisted; first sights and
passed triplets expire; mail with spf=pass or dkim=pass from a skip
domain passes (the DKIM case decided at the end of the data, where other
mail gets its 451); the state is bounded.

Each test uses its own client network (a 127.0.N.1 source address), as
the triplets and the auto-allow count are per /24.
"""

import base64
import time

import dkim
import pytest

from conftest import (PASSWORD, Godwit, _finish, free_port, godwit_base,
                      rsa_dkim_key, wait_for)
from smtpclient import RawSMTP, crlf, dot_stuff
from spf_dns_server import SuiteDNS

ALICE = "alice@example.test"
BOB = "bob@example.test"
DELAY = 2
WINDOW = 4
EXPIRE = 3


def grey_cfg(extra=None):
    cfg = {"enabled": True, "delay": f"{DELAY}s", "window": f"{WINDOW}s",
           "expire": f"{EXPIRE}s", "auto_allow": 2}
    cfg.update(extra or {})
    return cfg


def start(godwit_root, name, grey, overrides=None):
    over = {"smtp": {"trusted_networks": ["127.0.0.4/32"]},
            "filter": {"greylist": grey}}
    over.update(overrides or {})
    g = Godwit(godwit_base(godwit_root, name), over)
    g.listener("mx").update({"auth": True, "plaintext_auth": True})
    g.write_config()
    g.start()
    return g


def finish(g):
    problems = _finish(g)
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture(scope="module")
def grey(godwit_root):
    g = start(godwit_root, "greylist", grey_cfg())
    yield g
    finish(g)


@pytest.fixture(scope="module")
def skip(godwit_root, tmp_path_factory):
    """skip_domains: [big.test]; big.test's SPF passes loopback and its
    DKIM key is served by a dnslib server."""
    tmp = tmp_path_factory.mktemp("greyskip")
    key, p = rsa_dkim_key(tmp / "big.pem")
    port = free_port()
    dns = SuiteDNS(port, ttl=1)
    dns.set_zone({
        "big.test": [{"TXT": "v=spf1 ip4:127.0.0.0/8 -all"}],
        "s1._domainkey.big.test": [{"TXT": f"v=DKIM1; k=rsa; p={p}"}],
        "other.test": [{"TXT": "v=spf1 -all"}],
    })
    dns.start()
    try:
        g = start(godwit_root, "greyskip",
                  grey_cfg({"skip_domains": ["big.test"]}),
                  {"dns": {"resolver": [f"127.0.0.1@{port}"]},
                   "checks": {"timeout": "3s"}})
        g.big_key = key
        yield g
        finish(g)
    finally:
        dns.stop()


def message(marker, sender, to):
    return crlf(f"From: <{sender}>\nTo: <{to}>\nSubject: {marker}\n"
                f"Message-ID: <{marker}@sender.test>\n"
                "Date: Mon, 23 Nov 2026 06:40:00 +0000\n\n"
                f"body {marker}\n")


def attempt(g, source, sender, to=ALICE, msg=None, auth=False):
    """One transaction from source: (RCPT reply, end-of-data reply or
    None). The message is sent when msg is given and RCPT got 250."""
    with RawSMTP("127.0.0.1", g.port, timeout=20, source=source) as c:
        assert c.reply().code == 220
        assert c.ehlo("client.sender.test").code == 250
        if auth:
            plain = base64.b64encode(
                f"\0{ALICE}\0{PASSWORD}".encode()).decode()
            assert c.cmd(f"AUTH PLAIN {plain}").code == 235
        assert c.cmd(f"MAIL FROM:<{sender}>").code == 250
        r = c.cmd(f"RCPT TO:<{to}>")
        end = None
        if r.code == 250 and msg is not None:
            assert c.cmd("DATA").code == 354
            c.send(dot_stuff(msg) + b".\r\n")
            end = c.reply(timeout=20)
        c.cmd("QUIT")
        return r, end


def assert_greylisted(r):
    assert r.code == 451, r
    assert r.text.startswith("4.7.1 Greylisted"), r


def pass_after_delay(g, source, sender, to=ALICE, msg=None):
    """Retries until the triplet passes; the replies of the pass."""
    got = {}

    def once():
        r, end = attempt(g, source, sender, to, msg)
        if r.code == 250 and (end is None or end.code != 451):
            got["r"], got["end"] = r, end
            return True
        assert_greylisted(r if r.code != 250 else end)
        return False

    t0 = time.monotonic()
    wait_for(once, DELAY + 3, interval=0.3, what="the triplet to pass")
    return got["r"], got["end"], time.monotonic() - t0


def test_first_sight_refused_then_accepted_after_delay(grey, uniq):
    src, sender = "127.0.1.1", f"a-{uniq}@sender.test"
    r, _ = attempt(grey, src, sender)
    assert_greylisted(r)
    r, _ = attempt(grey, src, sender)
    assert_greylisted(r)
    # another recipient is another triplet
    assert_greylisted(attempt(grey, src, sender, to=BOB)[0])
    _, end, took = pass_after_delay(grey, src, sender,
                                    msg=message(uniq, sender, ALICE))
    assert end.code == 250, end
    assert took >= DELAY - 1.5
    wait_for(lambda: grey.find_messages(uniq), 10, what="the message")
    log = grey.log_text()
    assert "fac=filter event=greylist" in log and "verdict=wait" in log


def test_auto_allow_after_deliveries(grey, uniq):
    src = "127.0.2.1"
    for i in range(2):
        sender = f"n{i}-{uniq}@sender.test"
        assert_greylisted(attempt(grey, src, sender)[0])
        _, end, _ = pass_after_delay(grey, src, sender,
                                     msg=message(f"{uniq}-{i}", sender,
                                                 ALICE))
        assert end.code == 250, end
        if i == 0:
            # one delivery is not enough
            assert_greylisted(attempt(grey, src, f"x-{uniq}@s.test")[0])
    # two: a new triplet of the same /24 passes at once
    r, end = attempt(grey, "127.0.2.77", f"new-{uniq}@sender.test",
                     msg=message(f"{uniq}-new", "n@sender.test", ALICE))
    assert r.code == 250 and end.code == 250, (r, end)
    # another network is still greylisted
    assert_greylisted(attempt(grey, "127.0.3.1",
                              f"new-{uniq}@sender.test")[0])


def test_trusted_and_authenticated_not_greylisted(grey, uniq):
    assert attempt(grey, "127.0.0.4", f"t-{uniq}@sender.test")[0].code \
        == 250
    assert attempt(grey, "127.0.4.1", ALICE, auth=True)[0].code == 250
    # the same client without AUTH is greylisted
    assert_greylisted(attempt(grey, "127.0.4.1", ALICE)[0])


def test_expiry(grey, uniq):
    """A first sight not retried within the window starts over; a passed
    triplet unused for `expire` is forgotten. Both waits overlap."""
    src, w, e = "127.0.6.1", f"w-{uniq}@sender.test", f"e-{uniq}@s.test"
    assert_greylisted(attempt(grey, src, w)[0])
    t0 = time.monotonic()
    assert_greylisted(attempt(grey, src, e)[0])
    pass_after_delay(grey, src, e)
    assert attempt(grey, src, e)[0].code == 250
    t1 = time.monotonic()
    wait_for(lambda: time.monotonic() - t0 > WINDOW + 1.1
             and time.monotonic() - t1 > EXPIRE + 1.1, WINDOW + EXPIRE + 4)
    # the window passed: a first sight again, which waits the delay
    assert_greylisted(attempt(grey, src, w)[0])
    _, _, took = pass_after_delay(grey, src, w)
    assert took >= DELAY - 1.5
    # the passed triplet expired
    assert_greylisted(attempt(grey, src, e)[0])


def test_spf_pass_from_skip_domain_not_greylisted(skip, uniq):
    sender = f"s-{uniq}@big.test"
    r, end = attempt(skip, "127.0.8.1", sender,
                     msg=message(uniq, sender, ALICE))
    assert r.code == 250 and end.code == 250, (r, end)
    wait_for(lambda: skip.find_messages(uniq), 10, what="the message")


def test_other_mail_refused_at_the_end(skip, uniq):
    """With skip_domains the RCPT of a new triplet is accepted and the 451
    comes at the end of the data; the retry after the delay passes."""
    src, sender = "127.0.9.1", f"o-{uniq}@other.test"
    r, end = attempt(skip, src, sender, msg=message(uniq, sender, ALICE))
    assert r.code == 250, r
    assert_greylisted(end)
    assert not skip.find_messages(uniq)
    _, end, _ = pass_after_delay(skip, src, sender,
                                 msg=message(uniq, sender, ALICE))
    assert end.code == 250, end


def test_dkim_pass_from_skip_domain_not_greylisted(skip, uniq):
    sender = f"d-{uniq}@other.test"
    msg = message(uniq, sender, ALICE)
    sig = dkim.sign(msg, b"s1", b"big.test", skip.big_key,
                    include_headers=[b"from", b"to", b"subject"])
    r, end = attempt(skip, "127.0.10.1", sender, msg=sig + msg)
    assert r.code == 250 and end.code == 250, (r, end)
    wait_for(lambda: skip.find_messages(uniq), 10, what="the message")
    assert any("verdict=skip-end" in l and f"d-{uniq}@other.test" in l
               for l in skip.log_text().splitlines())
    # the same sender's unsigned mail is not skipped
    msg2 = message(uniq + "-2", sender, BOB)
    r, end = attempt(skip, "127.0.10.1", sender, to=BOB, msg=msg2)
    assert r.code == 250
    assert_greylisted(end)


def test_state_bounded(godwit_root, uniq):
    """max_entries: the oldest triplets go. The first of 120 is evicted,
    so after the delay it is a first sight again (well within the window);
    the last one passes."""
    g = start(godwit_root, "greycap",
              grey_cfg({"max_entries": 100, "auto_allow": 0,
                        "window": "1m"}))
    try:
        src = "127.0.11.1"
        for i in range(120):
            assert_greylisted(attempt(g, src, f"c{i}-{uniq}@s.test")[0])
        t0 = time.monotonic()
        wait_for(lambda: time.monotonic() - t0 > DELAY + 0.1, DELAY + 2)
        assert attempt(g, src, f"c119-{uniq}@s.test")[0].code == 250
        assert_greylisted(attempt(g, src, f"c0-{uniq}@s.test")[0])
    finally:
        finish(g)


def test_delay_must_fit_in_window(grey, tmp_path):
    text = grey.cfg_path.read_text()
    bad = text.replace(f"window: {WINDOW}s", "window: 1s")
    assert bad != text
    path = tmp_path / "bad.yaml"
    path.write_text(bad)
    p = grey.run("config", "check", "-c", str(path), global_cfg=False)
    assert p.returncode != 0
    assert "filter.greylist: delay must be shorter than window" in \
        p.stdout + p.stderr
