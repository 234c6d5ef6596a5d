"""
RFC 5321 basics against the running daemon: greeting, EHLO keywords, the
simple commands and their reply codes (with RFC 3463 enhanced codes),
commands out of order, and local delivery into Maildir over IPv4 and IPv6
with Python's smtplib.
"""

import os
import smtplib

import pytest

from conftest import HOSTNAME
from smtpclient import (crlf, header_fields, make_message, split_stored,
                        transaction)


def ehlo_keywords(reply):
    """{KEYWORD: [params]} from an EHLO reply (first line is the domain)."""
    kw = {}
    for t in reply.texts[1:]:
        parts = t.split()
        if parts:
            kw[parts[0].upper()] = parts[1:]
    return kw


# ------------------------------------------------------------- replies ---


def test_greeting_is_220_with_hostname(shared_godwit):
    with shared_godwit.raw() as c:
        assert c.greeting.code == 220
        # RFC 5321 4.3.1: "220 <domain> ..."
        assert c.greeting.texts[0].split()[0] == HOSTNAME, c.greeting


@pytest.mark.parametrize("family", [4, 6])
def test_ehlo_lists_extensions(shared_godwit, family):
    with shared_godwit.raw(family) as c:
        r = c.ehlo()
        assert r.code == 250
        assert len(r.lines) > 1, "EHLO reply must be multi-line with extensions"
        assert r.texts[0].split()[0] == HOSTNAME
        kw = ehlo_keywords(r)
        for k in ("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8",
                  "CHUNKING", "SIZE"):
            assert k in kw, f"{k} missing from EHLO: {r}"
        assert kw["SIZE"] == [str(1024 * 1024)], f"SIZE parameter: {r}"


def test_helo(shared_godwit):
    with shared_godwit.raw() as c:
        r = c.cmd("HELO client.test")
        assert r.code == 250
        assert len(r.lines) == 1, "HELO reply is a single line"


def test_noop_rset_help_vrfy_quit(shared_godwit):
    with shared_godwit.raw() as c:
        c.ehlo()
        r = c.cmd("NOOP")
        assert (r.code, r.enh) == (250, "2.0.0"), r
        r = c.cmd("RSET")
        assert (r.code, r.enh) == (250, "2.0.0"), r
        r = c.cmd("HELP")
        assert r.code == 214, r
        assert r.enh is not None and r.enh.startswith("2."), r
        # VRFY is disabled by default: 252, never a yes/no about a user
        for who in ("alice", "alice@example.test", "nobody@example.test"):
            r = c.cmd(f"VRFY {who}")
            assert r.code == 252, r
            assert r.enh is not None and r.enh.startswith("2."), r
        r = c.cmd("QUIT")
        assert (r.code, r.enh) == (221, "2.0.0"), r
        assert c.wait_closed(5), "server must close after QUIT"


def test_noop_with_argument_is_fine(shared_godwit):
    # RFC 5321 4.1.1.9: NOOP may have a string argument
    with shared_godwit.raw() as c:
        c.ehlo()
        r = c.cmd("NOOP anything at all")
        assert r.code == 250, r


def test_commands_are_case_insensitive(shared_godwit, uniq):
    with shared_godwit.raw() as c:
        assert c.cmd("ehlo client.test").code == 250
        assert c.cmd("mail from:<sender@example.org>").code == 250
        assert c.cmd("rcpt to:<alice@example.test>").code == 250
        assert c.cmd("data").code == 354
        c.send(make_message(uniq) + b".\r\n")
        r = c.reply()
        assert (r.code, r.enh) == (250, "2.0.0"), r
    assert len(shared_godwit.find_messages(uniq)) == 1


def test_unknown_command(shared_godwit):
    with shared_godwit.raw() as c:
        c.ehlo()
        r = c.cmd("FROBNICATE now")
        assert (r.code, r.enh) == (500, "5.5.1"), r
        r = c.cmd("NOOP")
        assert r.code == 250, "session continues after an unknown command"


def test_expn_not_a_user_oracle(shared_godwit):
    with shared_godwit.raw() as c:
        c.ehlo()
        r = c.cmd("EXPN team@example.test")
        assert (r.code, r.enh) == (502, "5.5.1"), r
        assert "bob" not in r.text.lower(), f"EXPN reveals alias members: {r}"


# ------------------------------------------------------ out of order ---


def test_rcpt_before_mail(shared_godwit):
    with shared_godwit.raw() as c:
        c.ehlo()
        r = c.cmd("RCPT TO:<alice@example.test>")
        assert (r.code, r.enh) == (503, "5.5.1"), r


def test_data_before_rcpt(shared_godwit):
    with shared_godwit.raw() as c:
        c.ehlo()
        r = c.cmd("DATA")
        assert r.code == 503, r
        assert r.enh is not None and r.enh.startswith("5.5."), r
        assert c.cmd("MAIL FROM:<sender@example.org>").code == 250
        r = c.cmd("DATA")
        assert r.code == 503, r
        assert r.enh is not None and r.enh.startswith("5.5."), r


def test_nested_mail(shared_godwit):
    with shared_godwit.raw() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@example.org>").code == 250
        r = c.cmd("MAIL FROM:<other@example.org>")
        assert (r.code, r.enh) == (503, "5.5.1"), r


def test_rset_clears_transaction(shared_godwit):
    with shared_godwit.raw() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@example.org>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("RSET").code == 250
        r = c.cmd("RCPT TO:<alice@example.test>")
        assert r.code == 503, f"RCPT after RSET without MAIL: {r}"
        r = c.cmd("DATA")
        assert r.code == 503, r


def test_mail_syntax_errors(shared_godwit):
    with shared_godwit.raw() as c:
        c.ehlo()
        for bad in ("MAIL FROM:sender@example.org", "MAIL TO:<a@b.example>",
                    "MAIL FROM:<sender@example.org", "MAIL"):
            r = c.cmd(bad)
            assert r.code == 501, f"{bad}: {r}"
            assert r.enh is not None and r.enh.startswith("5."), f"{bad}: {r}"
        r = c.cmd("MAIL FROM:<sender@example.org> FROBBLE=1")
        assert r.code == 555, r
        assert r.enh is not None and r.enh.startswith("5.5."), r


def test_data_with_argument(shared_godwit):
    with shared_godwit.raw() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@example.org>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        r = c.cmd("DATA now")
        assert (r.code, r.enh) == (501, "5.5.4"), r


# ------------------------------------------------------------ delivery ---


def _check_delivered(g, marker, original_crlf, rcpt="alice@example.test",
                     sender="sender@example.org", helo="client.test", proto="ESMTP"):
    files = [p for p in g.maildir_files(rcpt) if marker.encode() in p.read_bytes()]
    assert len(files) == 1, f"expected exactly one message with {marker} for {rcpt}, got {files}"
    stored = files[0].read_bytes()
    assert b"\r" not in stored, "stored Maildir file must use LF line endings"
    original_lf = original_crlf.replace(b"\r\n", b"\n")
    prefix, _ = split_stored(stored, original_lf)
    fields = header_fields(prefix)
    names = [n for n, _ in fields]
    assert "return-path" in names, prefix
    assert "received" in names, prefix
    assert "delivered-to" in names, prefix
    rp = dict(fields)["return-path"]
    assert rp == f"<{sender}>", f"Return-Path: {rp}"
    dt = dict(fields)["delivered-to"]
    assert dt.lower() == rcpt.lower(), f"Delivered-To: {dt}"
    received = [v for n, v in fields if n == "received"][0]
    # RFC 5321 4.4: from <helo> ... by <us> ... with <protocol> ...; date
    assert f"from {helo}" in received, received
    assert f"by {HOSTNAME}" in received, received
    assert f"with {proto}" in received, received
    assert ";" in received and received.rsplit(";", 1)[1].strip(), received
    assert names.index("return-path") == 0, "Return-Path comes first"
    return stored, fields


@pytest.mark.parametrize("family", [4, 6])
def test_delivery_smtplib(shared_godwit, uniq, family):
    g = shared_godwit
    msg = make_message(uniq)
    with g.smtp(family) as s:
        refused = s.sendmail("sender@example.org", ["alice@example.test"], msg)
        assert refused == {}
    _, fields = _check_delivered(g, uniq, msg)
    received = [v for n, v in fields if n == "received"][0]
    ip = "127.0.0.1" if family == 4 else "::1"
    assert ip in received, f"client IP missing from Received: {received}"


def test_delivery_logged(shared_godwit, uniq):
    g = shared_godwit
    msg = make_message(uniq)
    with g.smtp() as s:
        s.sendmail("logged-sender@example.org", ["alice@example.test"], msg)
    text = g.log_text()
    lines = [l for l in text.splitlines() if "logged-sender@example.org" in l]
    assert lines, f"no log line names the sender:\n{text[-3000:]}"
    line = lines[-1]
    assert "ip=127.0.0.1" in line, line
    assert "alice@example.test" in line, line


def test_helo_received_says_smtp(shared_godwit, uniq):
    g = shared_godwit
    msg = make_message(uniq)
    with g.raw() as c:
        assert c.cmd("HELO oldclient.test").code == 250
        r = transaction(c, "sender@example.org", ["alice@example.test"], msg)
        assert (r.code, r.enh) == (250, "2.0.0"), r
    _check_delivered(g, uniq, msg, helo="oldclient.test", proto="SMTP")


def test_dot_stuffing_undone(shared_godwit, uniq):
    g = shared_godwit
    body = f"marker {uniq}\n.foo\n..bar\n.\n...\nend\n"
    msg = make_message(uniq, body=body)
    with g.raw() as c:
        c.ehlo()
        # transaction() dot-stuffs: ".foo" goes on the wire as "..foo"
        r = transaction(c, "sender@example.org", ["alice@example.test"], msg)
        assert (r.code, r.enh) == (250, "2.0.0"), r
    stored, _ = _check_delivered(g, uniq, msg)
    assert stored.endswith(b"\n.foo\n..bar\n.\n...\nend\n"), stored[-200:]


def test_dot_stuffing_smtplib(shared_godwit, uniq):
    g = shared_godwit
    msg = make_message(uniq, body=f"{uniq}\n.leading dot\n")
    with g.smtp() as s:
        s.sendmail("sender@example.org", ["alice@example.test"], msg)
    stored, _ = _check_delivered(g, uniq, msg)
    assert stored.endswith(b"\n.leading dot\n")


def test_null_sender(shared_godwit, uniq):
    g = shared_godwit
    msg = make_message(uniq)
    with g.raw() as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<>")
        assert (r.code, r.enh) == (250, "2.1.0"), r
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(msg + b".\r\n")
        r = c.reply()
        assert (r.code, r.enh) == (250, "2.0.0"), r
    _check_delivered(g, uniq, msg, sender="")


def test_rcpt_reply_codes(shared_godwit):
    with shared_godwit.raw() as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<sender@example.org>")
        assert (r.code, r.enh) == (250, "2.1.0"), r
        r = c.cmd("RCPT TO:<alice@example.test>")
        assert (r.code, r.enh) == (250, "2.1.5"), r
        r = c.cmd("RCPT TO:<nobody@example.test>")
        assert (r.code, r.enh) == (550, "5.1.1"), r
        r = c.cmd("DATA")
        assert r.code == 354, r
        r = c.cmd(b"Subject: x\r\n\r\nx\r\n.")
        assert r.code == 250, r


def test_postmaster_with_domain(shared_godwit, uniq):
    g = shared_godwit
    msg = make_message(uniq, to="postmaster@example.test")
    with g.raw() as c:
        c.ehlo()
        r = transaction(c, "sender@example.org", ["postmaster@example.test"], msg)
        assert (r.code, r.enh) == (250, "2.0.0"), r
    # postmaster is an alias of alice in the test database
    assert len([m for m in g.maildir_messages("alice@example.test")
                if uniq.encode() in m]) == 1


def test_postmaster_case_insensitive(shared_godwit):
    with shared_godwit.raw() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@example.org>").code == 250
        r = c.cmd("RCPT TO:<PostMaster@Example.Test>")
        assert r.code == 250, r


def test_bare_postmaster(shared_godwit, uniq):
    g = shared_godwit
    msg = make_message(uniq, to="postmaster")
    with g.raw() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@example.org>").code == 250
        # RFC 5321 4.5.1: <Postmaster> without a domain must be accepted
        r = c.cmd("RCPT TO:<Postmaster>")
        assert r.code == 250, r
        assert c.cmd("DATA").code == 354
        c.send(msg + b".\r\n")
        r = c.reply()
        assert (r.code, r.enh) == (250, "2.0.0"), r
    stored = g.find_messages(uniq) + [p for p in g.queue_files()
                                      if uniq.encode() in p.read_bytes()]
    assert len(stored) >= 1, "mail to <postmaster> went nowhere"


def test_multiple_recipients_hard_linked(shared_godwit, uniq):
    g = shared_godwit
    msg = make_message(uniq)
    with g.smtp() as s:
        refused = s.sendmail("sender@example.org",
                             ["alice@example.test", "bob@example.test"], msg)
        assert refused == {}
    a = [p for p in g.maildir_files("alice@example.test") if uniq.encode() in p.read_bytes()]
    b = [p for p in g.maildir_files("bob@example.test") if uniq.encode() in p.read_bytes()]
    assert len(a) == 1 and len(b) == 1, (a, b)
    original_lf = msg.replace(b"\r\n", b"\n")
    split_stored(a[0].read_bytes(), original_lf)
    split_stored(b[0].read_bytes(), original_lf)
    sa, sb = os.stat(a[0]), os.stat(b[0])
    # Several local recipients share the message through hard links. The
    # Delivered-To header is only added for a single recipient, so the
    # files may be identical.
    assert (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino), \
        "recipients of one message should share one hard-linked file"


def test_alias_to_two_users(shared_godwit, uniq):
    g = shared_godwit
    msg = make_message(uniq, to="team@example.test")
    with g.smtp() as s:
        assert s.sendmail("sender@example.org", ["team@example.test"], msg) == {}
    for rcpt in ("alice@example.test", "bob@example.test"):
        got = [m for m in g.maildir_messages(rcpt) if uniq.encode() in m]
        assert len(got) == 1, f"{rcpt} got {len(got)} copies"


def test_duplicate_recipient_delivered_once(shared_godwit, uniq):
    g = shared_godwit
    msg = make_message(uniq)
    with g.raw() as c:
        c.ehlo()
        r = transaction(c, "sender@example.org",
                        ["alice@example.test", "ALICE@example.test",
                         "postmaster@example.test"], msg)
        assert r.code == 250, r
    got = [m for m in g.maildir_messages("alice@example.test") if uniq.encode() in m]
    assert len(got) == 1, f"alice got {len(got)} copies of one message"


def test_many_messages_one_session(shared_godwit, uniq):
    g = shared_godwit
    with g.raw() as c:
        c.ehlo()
        for i in range(5):
            r = transaction(c, "sender@example.org", ["bob@example.test"],
                            make_message(f"{uniq}-n{i}"))
            assert (r.code, r.enh) == (250, "2.0.0"), r
        assert c.cmd("QUIT").code == 221
    for i in range(5):
        assert len(g.find_messages(f"{uniq}-n{i}\n")) >= 1


def test_smtputf8_sender_and_recipient_text(shared_godwit, uniq):
    g = shared_godwit
    sender = "jörg@bücher.example"
    msg = make_message(uniq, sender=sender,
                       body=f"Grüße {uniq}\nΚαλημέρα κόσμε\n")
    with g.smtp() as s:
        s.ehlo("client.test")
        assert s.has_extn("smtputf8")
        refused = s.sendmail(sender, ["alice@example.test"], msg,
                             mail_options=["SMTPUTF8", "BODY=8BITMIME"])
        assert refused == {}
    stored, fields = _check_delivered(g, uniq, msg, sender=sender, proto="UTF8SMTP")


def test_utf8_address_without_smtputf8_refused(shared_godwit):
    with shared_godwit.raw() as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<jörg@bücher.example>")
        assert (r.code, r.enh) == (553, "5.6.7"), r


def test_8bitmime_body(shared_godwit, uniq):
    g = shared_godwit
    body = ("marker " + uniq + "\n").encode() + bytes(range(0x80, 0x100)) + \
        b"\nLatin-1: \xe9t\xe9\n"
    msg = crlf(make_message(uniq, body=body))
    with g.raw() as c:
        c.ehlo()
        r = transaction(c, "sender@example.org", ["alice@example.test"], msg,
                        mail_params="BODY=8BITMIME")
        assert (r.code, r.enh) == (250, "2.0.0"), r
    stored, _ = _check_delivered(g, uniq, msg)
    assert bytes(range(0x80, 0x100)) in stored


def test_smtplib_send_message_two_recipients_v6(shared_godwit, uniq):
    from email.message import EmailMessage

    g = shared_godwit
    m = EmailMessage()
    m["From"] = "sender@example.org"
    m["To"] = "alice@example.test, bob@example.test"
    m["Subject"] = f"test {uniq}"
    m.set_content(f"body {uniq}\n")
    with g.smtp(6) as s:
        assert s.send_message(m) == {}
    for rcpt in ("alice@example.test", "bob@example.test"):
        got = [x for x in g.maildir_messages(rcpt) if uniq.encode() in x]
        assert len(got) == 1


def test_smtplib_rejects_surface_as_exceptions(shared_godwit):
    g = shared_godwit
    with g.smtp() as s:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as ei:
            s.sendmail("sender@example.org", ["nobody@example.test"], b"Subject: x\r\n\r\nx\r\n")
        code, text = ei.value.recipients["nobody@example.test"]
        assert code == 550 and text.startswith(b"5.1.1"), (code, text)
