"""
SMTP smuggling and bare line endings: only <CRLF>.<CRLF> ends DATA.
A DATA body with a fake terminator followed by a second transaction must
never produce a second message; bare CR and bare LF in DATA and in command
lines are refused with a 5xx.
"""

import pytest

# Fake end-of-data sequences, each written right after "...text".
STRICT_VARIANTS = [
    b"\n.\n",
    b"\r.\r",
    b"\n.\r\n",
    b"\r\n.\n",
    b"\r\n.\r",
    b"\r.\r\n",
    b"\n.\r",
    b"\r\n.\r\r\n",
    b"\r\n.\n\r\n",
    b"\n\n.\n\n",
    b"\r\r.\r\r",
]
# No bare CR or LF in these: the server may accept the message, but as ONE
# message that carries the would-be second transaction as text.
LENIENT_VARIANTS = [
    b"\r\n.\x00\r\n",
    b"\r\n. \r\n",
    b"\r\n.\t\r\n",
    b"\r\n\x00.\r\n",
]


def _smuggle(g, variant, marker, family=4):
    body = (b"From: <sender@example.org>\r\n"
            b"Subject: carrier " + marker + b"\r\n\r\n"
            b"first part " + marker)
    smuggled = (b"MAIL FROM:<spoof@example.test>\r\n"
                b"RCPT TO:<bob@example.test>\r\n"
                b"DATA\r\n"
                b"From: <spoof@example.test>\r\n"
                b"Subject: SMUGGLED " + marker + b"\r\n\r\n"
                b"smuggled part " + marker + b"\r\n"
                b".\r\n")
    c = g.raw(family)
    try:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@example.org>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.try_send(body + variant + smuggled)
        c.try_send(b"QUIT\r\n")
        replies, closed = c.read_all(timeout=3, max_replies=12)
    finally:
        c.close()
    return replies


def _check_not_smuggled(g, marker, replies):
    bob = [m for m in g.maildir_messages("bob@example.test") if marker in m]
    assert bob == [], f"SMUGGLED: bob got {len(bob)} message(s); replies {replies}"
    spoofed = [p for p in g.all_maildir_files()
               if b"Return-Path: <spoof@example.test>" in p.read_bytes()]
    assert spoofed == [], f"a message with the smuggled envelope was stored: {spoofed}"
    alice = [m for m in g.maildir_messages("alice@example.test") if marker in m]
    assert len(alice) <= 1, f"alice got {len(alice)} messages"
    # at most one 250 after the DATA: the (single) message
    assert sum(1 for r in replies if r.code == 250) <= 1, replies
    assert not any(r.code == 354 for r in replies), f"a second DATA was started: {replies}"
    return alice


@pytest.mark.parametrize("variant", STRICT_VARIANTS, ids=repr)
def test_smuggling_bare_line_endings_refused(shared_godwit, uniq, variant):
    g = shared_godwit
    marker = uniq.encode()
    replies = _smuggle(g, variant, marker)
    alice = _check_not_smuggled(g, marker, replies)
    assert alice == [], f"message with bare CR/LF was accepted: {alice[0][-300:]!r}"
    errors = [r for r in replies if r.code >= 500]
    assert errors, f"no 5xx for bare CR/LF in DATA: {replies}"
    assert (errors[0].code, errors[0].enh) == (521, "5.5.2"), errors[0]


@pytest.mark.parametrize("variant", LENIENT_VARIANTS, ids=repr)
def test_smuggling_lookalike_terminators(shared_godwit, uniq, variant):
    g = shared_godwit
    marker = uniq.encode()
    replies = _smuggle(g, variant, marker)
    alice = _check_not_smuggled(g, marker, replies)
    if alice:
        # it did not end where the fake terminator was
        assert b"smuggled part " + marker in alice[0], alice[0][-400:]
        assert b"MAIL FROM:<spoof@example.test>" in alice[0]


def test_smuggling_over_ipv6(shared_godwit, uniq):
    g = shared_godwit
    marker = uniq.encode()
    replies = _smuggle(g, b"\n.\n", marker, family=6)
    assert _check_not_smuggled(g, marker, replies) == []


@pytest.mark.parametrize("data", [
    b"line one\nline two\r\n",
    b"line one\rline two\r\n",
    b"ends with bare LF\n",
    b"\n",
    b"text\r\r\n",
], ids=repr)
def test_bare_cr_lf_in_data_refused(shared_godwit, uniq, data):
    g = shared_godwit
    marker = uniq.encode()
    with g.raw() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@example.org>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.try_send(b"Subject: " + marker + b"\r\n\r\n" + data + b"tail\r\n.\r\n")
        rs, closed = c.read_all(timeout=3, max_replies=3)
        assert rs, "no reply"
        assert rs[0].code >= 500, f"bare CR/LF in DATA accepted: {rs}"
        # refused, and the session ends: where the message ends is unknown
        assert [(r.code, r.enh) for r in rs] == [(521, "5.5.2")], rs
        assert closed, rs
    assert g.find_messages(marker) == []


@pytest.mark.parametrize("wire", [
    b"NOOP\nNOOP\r\n",
    b"NOOP\rNOOP\r\n",
    b"MAIL FROM:<sender@example.org>\nRCPT TO:<alice@example.test>\r\n",
    b"RSET\n\r\n",
], ids=repr)
def test_bare_cr_lf_in_command_refused(shared_godwit, wire):
    with shared_godwit.raw() as c:
        c.ehlo()
        c.try_send(wire)
        rs, closed = c.read_all(timeout=3, max_replies=3)
        assert rs, f"no reply to {wire!r}"
        assert rs[0].code >= 500, f"bare CR/LF in a command accepted: {rs}"
        # refused, and the session ends
        assert [(r.code, r.enh) for r in rs] == [(521, "5.5.2")], rs
        assert closed, rs


def test_bare_lf_before_data_command(shared_godwit, uniq):
    """A whole transaction with LF-only line ends must not deliver."""
    g = shared_godwit
    marker = uniq.encode()
    c = g.raw()
    try:
        c.try_send(b"EHLO client.test\nMAIL FROM:<a@example.org>\nRCPT TO:<alice@example.test>\n"
                   b"DATA\nSubject: " + marker + b"\n\nhi\n.\n")
        rs, closed = c.read_all(timeout=3)
        assert not any(r.code in (250, 354) for r in rs), rs
        # the EHLO line already ends in a bare LF: refused, session over
        assert [(r.code, r.enh) for r in rs] == [(521, "5.5.2")], rs
        assert closed, rs
    finally:
        c.close()
    assert g.find_messages(marker) == []


def test_real_terminator_then_pipelined_commands(shared_godwit, uniq):
    """The legitimate case next to the tricks: CRLF.CRLF ends the message
    and what follows is a command again."""
    g = shared_godwit
    marker = uniq.encode()
    with g.raw() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@example.org>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: " + marker + b"\r\n\r\nbody\r\n.\r\nMAIL FROM:<b@example.org>\r\n"
               b"RCPT TO:<bob@example.test>\r\nDATA\r\nSubject: second " + marker +
               b"\r\n\r\nx\r\n.\r\n")
        rs = c.replies(5)
        assert [r.code for r in rs] == [250, 250, 250, 354, 250], rs
    assert len([m for m in g.maildir_messages("alice@example.test") if marker in m]) == 1
    assert len([m for m in g.maildir_messages("bob@example.test") if marker in m]) == 1


def test_server_survives_smuggling_attempts(shared_godwit):
    with shared_godwit.raw() as c:
        assert c.cmd("NOOP").code == 250

