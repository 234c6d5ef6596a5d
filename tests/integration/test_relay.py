"""
Never an open relay: for a client that is neither trusted nor
authenticated, every classic relay trick is refused at RCPT time and
nothing is queued; local recipients are recognised in every spelling;
a trusted network may relay, and what it relays goes into the queue.
"""

import pytest

from smtpclient import make_message, transaction

# Remote domains, dressed up: 554 5.7.1 relay access denied.
RELAY_DENIED = [
    "user@other.example",
    "USER@OTHER.EXAMPLE",
    "User@Other.Example",
    "user@other.example.",
    "alice@other.example",
    "postmaster@other.example",
    "@example.test:user@other.example",
    "@example.test,@mx.example.test:user@other.example",
    "user@[127.0.0.1]",
    "alice@[127.0.0.1]",
    "user@[IPv6:::1]",
    "user@[IPv6:0:0:0:0:0:0:0:1]",
    "user@[192.0.2.1]",
    "user@example.test.evil.org",
    "user@evilexample.test",
    "user@sub.example.test",
    "user@example.tes",
    "user@localhost",
    "user@xn--bcher-kva.example",
]

# Local domain, but the local part names a remote address: the local part
# is an unknown user. 550 5.1.1.
UNKNOWN_LOCAL = [
    "user%other.example@example.test",
    "alice%other.example@example.test",
    "user%other.example%example.test@example.test",
    '"user@other.example"@example.test',
    '"alice@other.example"@example.test',
    '"user%other.example"@example.test',
    "other.example!user@example.test",
    "other.example!alice@example.test",
    "nobody@example.test",
    "NOBODY@EXAMPLE.TEST",
    "@other.example:nobody@example.test",
]

# Not an address at all: 501, a 5.x.x enhanced code.
SYNTAX = [
    "user@other.example@example.test",
    "alice@example.test@other.example",
    "user@@example.test",
    "@example.test",
    "user@",
    "user@other.example%example.test",
    "user@[127.0.0.1",
    "<user@other.example>",
    "user@other example",
    "user\\@other.example@example.test",
]

# Malformed one way or another: refused (501 or 554), never accepted.
REFUSED_ANY = [
    "user@example.test..",
    "user@.example.test",
    "user@example..test",
    "user@-example.test",
    "user@[IPv6:::1",
    "user@[300.0.0.1]",
]

# Local users in other spellings: accepted and delivered to alice.
LOCAL_OK = [
    "alice@example.test.",
    "ALICE@EXAMPLE.TEST",
    "Alice@Example.Test",
    "@other.example:alice@example.test",  # source routes are ignored
    "@a.example,@b.example:alice@example.test",
    "alice+tag@example.test",
]


def _rcpt(g, addr, family=4, helo="client.test", sender="sender@example.org"):
    with g.raw(family) as c:
        c.ehlo(helo)
        assert c.cmd(f"MAIL FROM:<{sender}>").code == 250
        r = c.cmd(f"RCPT TO:<{addr}>")
        if r.code >= 500:
            d = c.cmd("DATA")
            # a RCPT was tried and refused: 554 (503 is for no RCPT at all)
            assert (d.code, d.enh) == (554, "5.5.1"), f"DATA with no valid recipient: {d}"
        c.cmd("QUIT")
    return r


def _assert_nothing_relayed(g):
    assert g.queue_files() == [], f"relayed into the queue: {g.queue_files()}"
    for sub in ("active", "deferred", "hold"):
        assert g.queue_files(sub) == [], sub


@pytest.mark.parametrize("addr", RELAY_DENIED)
def test_relay_denied(shared_godwit, addr):
    r = _rcpt(shared_godwit, addr)
    assert (r.code, r.enh) == (554, "5.7.1"), f"RCPT TO:<{addr}>: {r}"
    _assert_nothing_relayed(shared_godwit)


@pytest.mark.parametrize("addr", UNKNOWN_LOCAL)
def test_unknown_local_part(shared_godwit, addr):
    r = _rcpt(shared_godwit, addr)
    assert (r.code, r.enh) == (550, "5.1.1"), f"RCPT TO:<{addr}>: {r}"
    _assert_nothing_relayed(shared_godwit)


@pytest.mark.parametrize("addr", SYNTAX)
def test_bad_address_syntax(shared_godwit, addr):
    r = _rcpt(shared_godwit, addr)
    assert r.code == 501, f"RCPT TO:<{addr}>: {r}"
    assert r.enh is not None and r.enh.startswith("5."), r
    _assert_nothing_relayed(shared_godwit)


@pytest.mark.parametrize("addr", REFUSED_ANY)
def test_refused_anyway(shared_godwit, addr):
    r = _rcpt(shared_godwit, addr)
    assert (r.code, r.enh) == (501, "5.1.3"), f"RCPT TO:<{addr}>: {r}"
    _assert_nothing_relayed(shared_godwit)


@pytest.mark.parametrize("line,enh", [
    ("RCPT TO:user@other.example", "5.5.4"),
    ("RCPT TO:<user@other.example", "5.1.3"),
    ("RCPT TO:user@other.example>", "5.5.4"),
    ("RCPT TO:<user@other.example> <alice@example.test>", "5.5.4"),
    ("RCPT TO:<alice@example.test> <user@other.example>", "5.5.4"),
    ("RCPT TO:<alice@example.test>,<user@other.example>", "5.5.4"),
    ("RCPT TO:<alice@example.test>\tNOTIFY=NEVER", "5.5.4"),
])
def test_malformed_rcpt_lines(shared_godwit, line, enh):
    with shared_godwit.raw() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@example.org>").code == 250
        r = c.cmd(line)
        assert (r.code, r.enh) == (501, enh), f"{line}: {r}"
    _assert_nothing_relayed(shared_godwit)


@pytest.mark.parametrize("helo,sender", [
    ("mx.example.test", "alice@example.test"),      # pretend to be us
    ("localhost", "postmaster@example.test"),
    ("[127.0.0.1]", ""),                            # null sender
    ("example.test", "bob@EXAMPLE.TEST"),
])
def test_no_relay_by_helo_or_sender(shared_godwit, helo, sender):
    r = _rcpt(shared_godwit, "user@other.example", helo=helo, sender=sender)
    assert (r.code, r.enh) == (554, "5.7.1"), r
    _assert_nothing_relayed(shared_godwit)


def test_relay_denied_over_ipv6(shared_godwit):
    r = _rcpt(shared_godwit, "user@other.example", family=6)
    assert (r.code, r.enh) == (554, "5.7.1"), r
    _assert_nothing_relayed(shared_godwit)


def test_relay_denied_with_local_recipient_too(shared_godwit, uniq):
    """A remote recipient next to a local one: the local one gets the
    mail, the remote one nothing."""
    g = shared_godwit
    with g.raw() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@example.org>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        r = c.cmd("RCPT TO:<user@other.example>")
        assert (r.code, r.enh) == (554, "5.7.1"), r
        assert c.cmd("DATA").code == 354
        c.send(make_message(uniq) + b".\r\n")
        assert c.reply().code == 250
    assert len(g.find_messages(uniq)) == 1
    _assert_nothing_relayed(g)


@pytest.mark.parametrize("addr", LOCAL_OK)
def test_local_spellings_accepted(shared_godwit, uniq, addr):
    g = shared_godwit
    with g.raw() as c:
        c.ehlo()
        r = transaction(c, "sender@example.org", [addr], make_message(uniq))
        assert (r.code, r.enh) == (250, "2.0.0"), r
    got = [m for m in g.maildir_messages("alice@example.test") if uniq.encode() in m]
    assert len(got) == 1, f"{addr} not delivered to alice"
    _assert_nothing_relayed(g)


def test_unknown_user_smtplib(shared_godwit):

    with shared_godwit.smtp(6) as s:
        s.ehlo()
        s.mail("sender@example.org")
        code, text = s.rcpt("nobody@example.test")
        assert code == 550 and text.startswith(b"5.1.1"), (code, text)
        code, text = s.rcpt("someone@other.example")
        assert code == 554 and text.startswith(b"5.7.1"), (code, text)


# -------------------------------------------------- trusted networks ---


def _queue_list(g):
    p = g.run("queue", "list")
    assert p.returncode == 0, f"queue list: {p.returncode} {p.stderr}"
    return p.stdout


def test_trusted_network_may_relay(make_godwit, uniq):
    g = make_godwit({"smtp": {"trusted_networks": ["127.0.0.1/32"]}})
    msg = make_message(uniq, to="user@other.example")
    with g.raw(4) as c:
        c.ehlo()
        r = transaction(c, "alice@example.test",
                        ["user@other.example", "bob@example.test"], msg)
        assert (r.code, r.enh) == (250, "2.0.0"), r
    # the local recipient is delivered, the remote one queued
    assert len([m for m in g.maildir_messages("bob@example.test") if uniq.encode() in m]) == 1
    q = g.queue_files()
    assert len(q) == 1, f"queue/incoming: {q}"
    data = q[0].read_bytes()
    assert uniq.encode() in data
    assert b"user@other.example" in data
    out = _queue_list(g)
    assert q[0].name in out or "user@other.example" in out, \
        f"queue list does not show {q[0].name}:\n{out}"
    assert "user@other.example" in out, out


def test_trusted_network_v4_only(make_godwit):
    g = make_godwit({"smtp": {"trusted_networks": ["127.0.0.1/32"]}})
    r = _rcpt(g, "user@other.example", family=6)
    assert (r.code, r.enh) == (554, "5.7.1"), r
    r = _rcpt(g, "user@other.example", family=4)
    assert r.code == 250, r
    assert g.queue_files() == []  # no DATA was sent


def test_trusted_ipv6_network(make_godwit, uniq):
    g = make_godwit({"smtp": {"trusted_networks": ["::1/128"]}})
    r = _rcpt(g, "user@other.example", family=4)
    assert (r.code, r.enh) == (554, "5.7.1"), r
    with g.raw(6) as c:
        c.ehlo()
        r = transaction(c, "", ["user@other.example"], make_message(uniq))
        assert r.code == 250, r
    assert len(g.queue_files()) == 1


def test_trusted_queue_survives_restart(make_godwit, uniq):
    g = make_godwit({"smtp": {"trusted_networks": ["127.0.0.1/32"]}})
    with g.raw() as c:
        c.ehlo()
        r = transaction(c, "alice@example.test", ["far@other.example"], make_message(uniq))
        assert r.code == 250, r
    before = [p.name for p in g.queue_files()]
    g.stop()
    g.start()
    assert [p.name for p in g.queue_files()] == before
    assert "far@other.example" in _queue_list(g)


def test_alias_to_remote_address_is_queued(make_godwit, uniq):
    """An alias pointing outside is the admin's choice, not a relay: the
    untrusted client may send to the alias, and the mail is queued for
    the remote target."""
    g = make_godwit(start=False)
    g.admin("alias", "add", "fwd@example.test", "someone@remote.example")
    g.start()
    with g.raw() as c:
        c.ehlo()
        r = transaction(c, "sender@example.org", ["fwd@example.test"], make_message(uniq))
        assert r.code == 250, r
        # ... but not straight to the target
        assert c.cmd("MAIL FROM:<sender@example.org>").code == 250
        r = c.cmd("RCPT TO:<someone@remote.example>")
        assert (r.code, r.enh) == (554, "5.7.1"), r
    q = g.queue_files()
    assert len(q) == 1 and uniq.encode() in q[0].read_bytes()
    assert b"someone@remote.example" in q[0].read_bytes()


def test_catch_all(make_godwit, uniq):
    g = make_godwit(start=False)
    g.admin("alias", "add", "@example.test", "bob@example.test")
    g.start()
    with g.raw() as c:
        c.ehlo()
        r = transaction(c, "sender@example.org", ["whoever@example.test"], make_message(uniq))
        assert r.code == 250, r
        # the catch-all is for the local domain only
        assert c.cmd("MAIL FROM:<sender@example.org>").code == 250
        r = c.cmd("RCPT TO:<whoever@other.example>")
        assert (r.code, r.enh) == (554, "5.7.1"), r
        r = c.cmd("RCPT TO:<whoever%other.example@example.test>")
        # no routing in '%': a local part like any other, to bob via the catch-all
        assert (r.code, r.enh) == (250, "2.1.5"), r
    assert len([m for m in g.maildir_messages("bob@example.test") if uniq.encode() in m]) == 1
    assert g.queue_files() == []


@pytest.mark.parametrize("addr,code,enh", [
    ("user@bücher.example", 554, "5.7.1"),
    ("ü@example.test", 550, "5.1.1"),
    ("alice@EXAMPLE.test", 250, "2.1.5"),
    ("user%bücher.example@example.test", 550, "5.1.1"),
])
def test_relay_rule_with_smtputf8(shared_godwit, addr, code, enh):
    with shared_godwit.raw() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<jörg@bücher.example> SMTPUTF8").code == 250
        r = c.cmd(f"RCPT TO:<{addr}>")
        assert (r.code, r.enh) == (code, enh), f"RCPT TO:<{addr}>: {r}"
    _assert_nothing_relayed(shared_godwit)
