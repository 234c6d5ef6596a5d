"""
rspamd as godwit's spam filter: a real rspamd 3.4 (rspamd_peer.py: its
proxy worker in milter mode, a minimal configuration with test rules, no
Redis, nothing leaving the machine) in filter.milters, and godwit acting
on each of rspamd's actions:

  GTUBE              reject (a pre-result)   554 5.7.1 Gtube pattern
  REJECT_TOKEN       reject by score (20)    554 5.7.1 Spam message rejected
  JUNK_TOKEN         add header (score 10)   250, X-Spam: Yes -> .Junk
  GREY_TOKEN         greylist (score 5)      451 4.7.1 Try again later
  a clean message    no action               250, INBOX
  rspamd down        the milter's on_error (tempfail: 451 4.7.1; accept)

and rspamd sees what its rules need: godwit's queue id (the `i` macro),
the client address, the envelope sender and recipients (its task log).

The reply codes are rspamd's own (its milter replycode), passed on by
godwit. Delivered messages carry rspamd's milter_headers (X-Spamd-Result
with the symbols, X-Spam-Status with the score, X-Spam-Level). One rspamd
and one godwit serve the whole module (rspamd starts in about a second);
the on_error tests have a godwit of their own pointed at a dead port.
"""

import re

import pytest

import rspamd_peer
from conftest import (Godwit, serving, free_port, godwit_base,
                      refusing_dns_port, wait_for)
from smtpclient import RawSMTP, crlf, send_one

ALICE = "alice@example.test"
REJECT_TOKEN = "GODWIT-RSPAMD-REJECT-TOKEN"
REJECT_LUA = f"""
rspamd_config.GODWIT_TEST_REJECT = {{
  callback = function(task)
    local s = task:get_header('Subject')
    return s ~= nil and s:find('{REJECT_TOKEN}', 1, true) ~= nil
  end,
  score = 20.0,
  description = 'godwit test: a score above reject',
  group = 'godwit_test',
}}
"""


def milter(socket_spec, on_error="tempfail"):
    return {"name": "rspamd", "socket": socket_spec, "on_error": on_error,
            "timeout": "30s", "junk_header": "X-Spam: Yes"}


@pytest.fixture(scope="module")
def rspamd(godwit_root):
    ok, why = rspamd_peer.available()
    if not ok:
        pytest.skip(why)
    base = godwit_base(godwit_root, "rspamd_peer")
    peer = rspamd_peer.RspamdPeer(base, free_port(),
                                  f"127.0.0.1:{refusing_dns_port()}",
                                  extra_lua=REJECT_LUA)
    peer.start()
    yield peer
    peer.stop()


@pytest.fixture(scope="module")
def world(godwit_root, rspamd):
    g = Godwit(godwit_base(godwit_root, "rspamd_godwit"),
               {"filter": {"milters": [milter(rspamd.socket_spec)]}})
    with serving(g):
        yield g


def message(marker, subject="", body=""):
    hdrs = ["From: <sender@client.test>", f"To: <{ALICE}>",
            f"Subject: rspamd {marker} {subject}",
            f"Message-ID: <{marker}@client.test>",
            "Date: Sun, 06 Dec 2026 12:00:00 +0000"]
    return crlf("\n".join(hdrs) + f"\n\nbody {marker}\n{body}\n")


def send(g, msg, rcpt=ALICE):
    """One transaction on port 25; the reply to the final dot."""
    return send_one(g.port, "sender@client.test", [rcpt], msg, timeout=60)


def stored(g, marker, folder="new"):
    md = g.maildir(ALICE) / folder
    if not md.is_dir():
        return []
    return [p.read_bytes() for p in md.iterdir()
            if marker.encode() in p.read_bytes()]


def head_of(raw):
    """The header of a stored message, folded lines joined."""
    head = raw.split(b"\n\n", 1)[0].decode()
    return re.sub(r"\n[ \t]+", " ", head)


def field(head, name):
    return [l.split(":", 1)[1].strip() for l in head.splitlines()
            if l.lower().startswith(name.lower() + ":")]


def refused_and_logged(g, since, r, marker, code, text):
    """r is exactly code + text, nothing of marker is stored, and the
    refusal is in godwit's log (after offset since) as a milter's, with
    rspamd's reply."""
    assert (r.code, r.text) == (code, text), r
    # the reply came after the milter's verdict: nothing more to wait for
    assert g.find_messages(marker) == []
    log = g.log_since(since)
    assert re.search(rf"fac=smtp event=reject .*reason=milter code={code} ",
                     log), log
    assert re.search(r"fac=milter .*milter=rspamd .*"
                     + re.escape(f'"{code} {text}"'), log), log


def test_gtube_rejected(world, uniq):
    since = world.log_size()
    r = send(world, message(uniq, "gtube", rspamd_peer.GTUBE))
    refused_and_logged(world, since, r, uniq, 554, "5.7.1 Gtube pattern")


def test_reject_score_rejected(world, uniq):
    since = world.log_size()
    r = send(world, message(uniq, REJECT_TOKEN))
    refused_and_logged(world, since, r, uniq, 554, "5.7.1 Spam message rejected")


def test_greylist_action_tempfails(world, uniq):
    since = world.log_size()
    r = send(world, message(uniq, rspamd_peer.GREY_TOKEN))
    refused_and_logged(world, since, r, uniq, 451, "4.7.1 Try again later")


def test_add_header_action_goes_to_junk(world, uniq):
    r = send(world, message(uniq, rspamd_peer.JUNK_TOKEN))
    assert r.code == 250, r
    got = wait_for(lambda: stored(world, uniq, ".Junk/new"), 10,
                   what="the message in .Junk")
    assert stored(world, uniq) == []
    head = head_of(got[0])
    assert field(head, "X-Spam") == ["Yes"], head
    assert field(head, "X-Spam-Status") == ["Yes, score=10.00"], head
    assert field(head, "X-Spam-Level") == ["*" * 10], head
    res = field(head, "X-Spamd-Result")
    assert len(res) == 1 and res[0].startswith("default: False [10.00 / 15.00]"), head
    assert "GODWIT_TEST_JUNK(10.00)" in res[0], head


def test_clean_message_to_inbox_with_headers(world, uniq):
    r = send(world, message(uniq, "clean", "nothing to see here"))
    assert r.code == 250, r
    got = wait_for(lambda: stored(world, uniq), 10, what="the message")
    head = head_of(got[0])
    assert field(head, "X-Spam") == [], head
    assert field(head, "X-Spam-Status") == ["No, score=0.00"], head
    res = field(head, "X-Spamd-Result")
    assert res == ["default: False [0.00 / 15.00]"], head
    assert stored(world, uniq, ".Junk/new") == []


def test_forged_spam_headers_do_not_survive(world, uniq):
    """A sender's own X-Spam-Status is replaced by rspamd's verdict
    (milter_headers removes the old field before adding its own)."""
    msg = message(uniq, "forged").replace(
        b"Subject:", b"X-Spam-Status: No, score=-100.00\r\nSubject:", 1)
    r = send(world, msg)
    assert r.code == 250, r
    got = wait_for(lambda: stored(world, uniq), 10, what="the message")
    assert field(head_of(got[0]), "X-Spam-Status") == ["No, score=0.00"]


@pytest.mark.parametrize("on_error", ["tempfail", "accept"])
def test_rspamd_down(make_godwit, uniq, on_error):
    """Nothing listens on the milter's port: with on_error tempfail the
    session is answered 451 4.7.1 from MAIL on (the connect stage's
    verdict, kept until MAIL so postmaster rules and logs see the
    sender), nothing stored; with accept the message is delivered
    unscanned."""
    dead = free_port()  # nothing listens there
    g = make_godwit({"filter": {"milters": [
        milter(f"inet:127.0.0.1:{dead}", on_error)]}})
    if on_error == "tempfail":
        with RawSMTP("127.0.0.1", g.port, timeout=60) as c:
            assert c.reply().code == 220
            assert c.ehlo("client.test").code == 250
            r = c.cmd("MAIL FROM:<sender@client.test>")
            assert (r.code, r.enh) == (451, "4.7.1"), r
            c.cmd("QUIT")
        assert re.search(r"fac=milter event=error .*milter=rspamd "
                         r".*action=tempfail", g.log_text()), g.log_text()
        return
    r = send(g, message(uniq, rspamd_peer.JUNK_TOKEN))
    assert r.code == 250, r
    got = wait_for(lambda: stored(g, uniq), 10, what="the message")
    head = head_of(got[0])
    assert field(head, "X-Spamd-Result") == [], head
    assert field(head, "X-Spam") == [], head
    assert re.search(r"fac=milter event=error .*milter=rspamd .*action=accept",
                     g.log_text()), g.log_text()


def test_rspamd_sees_the_envelope(world, rspamd, uniq):
    """godwit's milter macros and envelope reach rspamd: its task log
    names godwit's queue id ({i}), the client address, the sender and the
    recipient, and the stored message carries that queue id back in
    X-Rspamd-Queue-Id."""
    r = send(world, message(uniq, "envelope"))
    assert r.code == 250, r
    m = re.search(r"queued as (\S+)", r.text)
    assert m, r
    qid = m.group(1)
    line = wait_for(lambda: [l for l in rspamd.log_text().splitlines()
                             if "rspamd_task_write_log" in l
                             and f"<{uniq}@client.test>" in l], 10,
                    what="rspamd's log line of the message")[0]
    for want in (f"qid: <{qid}>", "ip: 127.0.0.1",
                 "from: <sender@client.test>", f"rcpts: <{ALICE}>"):
        assert want in line, line
    got = wait_for(lambda: stored(world, uniq), 10, what="the message")
    assert field(head_of(got[0]), "X-Rspamd-Queue-Id") == [qid]
