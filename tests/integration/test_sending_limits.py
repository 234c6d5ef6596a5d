"""Sending limits of submission (issue 15 item 6, R4.3): an account that
sends past its limit over real submission (smtplib) gets 451 4.7.1 at
MAIL or RCPT, the refusal is logged (reason=sending-limit), its queued
outbound mail is moved to hold/, other accounts go on sending, and an
alert reaches the postmaster's Maildir through the queue."""
import re
import smtplib

import pytest

from conftest import (DOMAIN, PASSWORD, wait_for)

REMOTE = "someone@far.example.net"  # the refusing resolver defers it


@pytest.fixture
def limited(make_godwit, cert):
    def make(limits, alerts=None):
        crt, key = cert
        g = make_godwit({
            "submission": {"limits": limits},
            # the test certificate expires in days: not this file's alert
            "alerts": dict({"enabled": True, "cert_expiry": 0},
                           **(alerts or {})),
            "tls": {"certificates": [{"cert": str(crt), "key": str(key)}]},
        }, start=False)
        g.add_submission()
        g.write_config()
        g.start()
        return g
    return make


def login(g, user):
    c = smtplib.SMTP("127.0.0.1", g.sub_port, timeout=30)
    c.ehlo("client.example.test")
    c.login(f"{user}@{DOMAIN}", PASSWORD)
    return c


def message(frm, to, subject):
    return (f"From: <{frm}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n\r\n"
            f"body of {subject}\r\n")


def send(c, frm, to, subject):
    """One transaction: the MAIL and the last RCPT reply codes, and the
    end of data's if it got that far."""
    code, _ = c.mail(frm)
    if code != 250:
        c.rset()
        return code, None
    for r in to:
        rc, text = c.rcpt(r)
        if rc != 250:
            c.rset()
            return rc, text
    code, _ = c.data(message(frm, to[0], subject))
    return code, None


def test_messages_per_hour_451_and_alert(limited, uniq):
    g = limited({"messages_per_hour": 3})
    alice, bob = f"alice@{DOMAIN}", f"bob@{DOMAIN}"
    c = login(g, "alice")
    for i in range(3):
        assert send(c, alice, [bob], f"{uniq}-{i}") == (250, None)
    code, resp = c.mail(alice)
    assert code == 451
    assert b"4.7.1" in resp and b"sending limit" in resp
    # the block holds for the rest of the hour, on a new connection too
    c.quit()
    c = login(g, "alice")
    assert c.mail(alice)[0] == 451
    c.quit()
    # another account is not affected
    c = login(g, "bob")
    assert send(c, bob, [alice], f"{uniq}-bob") == (250, None)
    c.quit()
    log = g.log_text()
    assert re.search(r"event=reject .*user=alice@example\.test .*"
                     r"code=451 reason=sending-limit "
                     r"limit=messages-per-hour count=3 max=3", log), log
    lines = [l for l in log.splitlines() if "event=alert " in l]
    assert len(lines) == 1, lines	# once per block, not per refusal
    assert "kind=sending-limit subject=alice@example.test" in lines[0]
    assert "notified=yes" in lines[0]
    # the postmaster (alice, by the alias) gets the alert through the
    # queue: a mail with the kind in its subject and the JSON
    msgs = wait_for(lambda: [m for m in g.maildir_messages(alice)
                             if b"[godwit alert] sending-limit" in m],
                    30, what="the alert mail")
    assert b'"kind":"sending-limit"' in msgs[0]
    assert b"Auto-Submitted: auto-generated" in msgs[0]


def test_recipients_per_hour_451_at_rcpt(limited, uniq):
    g = limited({"recipients_per_hour": 2})
    alice, bob = f"alice@{DOMAIN}", f"bob@{DOMAIN}"
    c = login(g, "bob")
    code, text = send(c, bob, [alice, alice, alice], uniq)
    assert code == 451 and b"4.7.1" in text
    assert b"recipients-per-hour" in text
    # blocked: MAIL too
    assert c.mail(bob)[0] == 451
    c.quit()
    assert "reason=sending-limit limit=recipients-per-hour" in g.log_text()


def test_account_with_limits_of_its_own(limited, uniq):
    g = limited({"messages_per_hour": 1, "accounts": {
        "Bob@Example.test": {"messages_per_hour": 3}}})
    alice, bob = f"alice@{DOMAIN}", f"bob@{DOMAIN}"
    ca, cb = login(g, "alice"), login(g, "bob")
    assert send(ca, alice, [bob], f"{uniq}-a") == (250, None)
    assert ca.mail(alice)[0] == 451
    for i in range(3):
        assert send(cb, bob, [alice], f"{uniq}-b{i}") == (250, None)
    assert cb.mail(bob)[0] == 451
    ca.quit()
    cb.quit()
    assert re.search(r"user=bob@example\.test .*reason=sending-limit "
                     r"limit=messages-per-hour count=3 max=3", g.log_text())


def queue_ids(g, sub):
    return sorted(p.name for p in (g.data_dir / "queue" / sub).iterdir()
                  if not p.name.startswith("."))


def auth_of(g, sub, qid):
    head = (g.data_dir / "queue" / sub / qid).read_bytes().split(b"\n\n")[0]
    m = re.search(rb"^auth (\S+)$", head, re.M)
    return m.group(1).decode() if m else None


def test_queued_mail_held_others_unaffected(limited, uniq):
    """Mail of alice still in the queue (deferred: the test's resolver
    refuses every lookup) moves to hold/ when she goes over her limit;
    bob's stays deferred; `godwit queue release` lets hers go."""
    g = limited({"messages_per_hour": 2})
    alice, bob = f"alice@{DOMAIN}", f"bob@{DOMAIN}"
    ca, cb = login(g, "alice"), login(g, "bob")
    for i in range(2):
        assert send(ca, alice, [REMOTE], f"{uniq}-a{i}") == (250, None)
    assert send(cb, bob, [REMOTE], f"{uniq}-b") == (250, None)
    wait_for(lambda: len(queue_ids(g, "deferred")) == 3, 30,
             what="three deferred messages")
    mine = [q for q in queue_ids(g, "deferred")
            if auth_of(g, "deferred", q) == alice]
    assert len(mine) == 2
    assert code_of(ca.mail(alice)) == 451
    wait_for(lambda: queue_ids(g, "hold") == mine, 30,
             what="alice's mail in hold/")
    # bob's is not held and he still sends
    assert [auth_of(g, "deferred", q) for q in queue_ids(g, "deferred")] \
        == [bob]
    assert send(cb, bob, [REMOTE], f"{uniq}-b2") == (250, None)
    ca.quit()
    cb.quit()
    log = g.log_text()
    for q in mine:
        assert re.search(rf"event=held id={q} user=alice@example\.test "
                         rf"reason=sending-limit", log), log
    # what the administrator sees of it
    shown = g.admin("queue", "show", mine[0]).stdout
    assert "state: hold\n" in shown and "user: alice@example.test\n" in shown
    # released by the administrator: it goes back to the queue and is
    # not held again
    g.admin("queue", "release", mine[0])
    wait_for(lambda: mine[0] not in queue_ids(g, "hold") and
             mine[0] in queue_ids(g, "deferred"), 30,
             what="the released message deferred again")
    assert queue_ids(g, "hold") == mine[1:]


def code_of(reply):
    return reply[0]
