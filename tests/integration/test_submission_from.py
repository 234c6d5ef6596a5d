"""
Who an authenticated user may send as, read from the header section the
way mail readers read it (RFC 5322, submission.check_from): exactly one
From: and at most one Sender:, field names with the obsolete white space
before the colon, every mailbox of From: and Sender: the user's, and no
display name that shows another address
(submission.refuse_address_display_name). Real smtplib over STARTTLS and
AUTH, and raw BDAT.
"""

import base64
import smtplib

import pytest

from conftest import (PASSWORD, Godwit, _finish, client_tls_context as ctx,
                      free_port, godwit_base)
from smtpclient import RawSMTP, crlf

ALICE = "alice@example.test"
BOB = "bob@example.test"


def _make(godwit_root, cert, name, extra=None):
    crt, key = cert
    port = free_port()
    over = {"tls": {"certificates": [{"cert": str(crt), "key": str(key)}]}}
    if extra:
        over.update(extra)
    g = Godwit(godwit_base(godwit_root, name), over)
    g.config["listeners"].append(
        {"name": "submission", "protocol": "submission",
         "listen": [f"127.0.0.1:{port}"]})
    g.write_config()
    g.sub_port = port
    g.start()
    return g


@pytest.fixture(scope="module")
def sub(godwit_root, cert):
    """One godwit with a submission listener and the default policy."""
    g = _make(godwit_root, cert, "subfrom")
    yield g
    problems = _finish(g)
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


def submit(g, header, marker, rcpt=BOB, sender=ALICE):
    """Sends header + a body holding marker as alice; (code, text)."""
    s = smtplib.SMTP("127.0.0.1", g.sub_port, local_hostname="client.test",
                     timeout=30)
    s.starttls(context=ctx())
    s.login(ALICE, PASSWORD)
    try:
        s.sendmail(sender, [rcpt], crlf(header + "\n" + marker + "\n"))
        return 250, b""
    except smtplib.SMTPDataError as e:
        return e.smtp_code, e.smtp_error
    finally:
        s.close()


def assert_not_stored(g, marker):
    """Nothing of a refused message anywhere: Maildirs, queue, tmp."""
    assert g.find_messages(marker) == []
    for p in g.queue_files() + g.tmp_files():
        assert marker.encode() not in p.read_bytes(), p


def refused(g, header, marker, code, enh, reason):
    got, text = submit(g, header, marker)
    assert (got, text[:5]) == (code, enh.encode()), (got, text)
    assert_not_stored(g, marker)
    assert f"reason={reason}" in g.log_text()


# ---- RFC 5322 3.6: one From:, at most one Sender: -----------------------

@pytest.mark.parametrize("header", [
    f"From: {ALICE}\nFrom: {BOB}\nSubject: two\n",
    f"From: {BOB}\nFrom: {ALICE}\nSubject: two\n",
    f"From: {ALICE}\nSubject: two\nfrom: {ALICE}\n",   # even both hers
    f"From: {ALICE}\nFROM : {BOB}\nSubject: two\n",
])
def test_two_from_fields_are_refused(sub, uniq, header):
    refused(sub, header, uniq, 550, "5.6.0", "multiple-from")


def test_two_sender_fields_are_refused(sub, uniq):
    refused(sub, f"From: {ALICE}\nSender: {ALICE}\nSender: {BOB}\n", uniq,
            550, "5.6.0", "multiple-sender")


# ---- field names as RFC 5322 4.5 reads them ------------------------------

@pytest.mark.parametrize("header", [
    f"From : {BOB}\nSubject: obs\n",
    f"From\t: {BOB}\nSubject: obs\n",
    f"FROM:{BOB}\nSubject: case\n",
    f"from :\n {BOB}\nSubject: folded\n",
])
def test_obsolete_or_odd_from_field_is_checked(sub, uniq, header):
    refused(sub, header, uniq, 553, "5.7.1", "from-not-owned")


def test_malformed_header_section_is_refused(sub, uniq):
    # a line that is no field: readers differ on where the header ends
    refused(sub, f"Subject: x\nnot a field\nFrom: {BOB}\n", uniq,
            550, "5.6.0", "bad-header")


@pytest.mark.parametrize("value", [
    "Alice",                                  # a name, no address
    f"<{BOB}",                                # unterminated
    "undisclosed-recipients:;",               # a group: not in From:
    "",                                       # no mailbox
    ",\n ".join([ALICE] * 101),               # too many to look up
])
def test_unparsable_from_is_refused(sub, uniq, value):
    refused(sub, f"From: {value}\nSubject: bad\n", uniq, 550, "5.6.0",
            "bad-address-header")


# ---- every mailbox ---------------------------------------------------------

@pytest.mark.parametrize("value", [
    f"Alice <{ALICE}>, Bob <{BOB}>",
    f"{ALICE}, {BOB}",
    f"{ALICE},\n {BOB}",
    f"Alice <{ALICE}>, (comment) {BOB}",
    f"\"Alice, <{ALICE}>\" <{BOB}>",      # the <...> inside quotes is a name
    f"Alice <{ALICE}> (x), <@relay.test:{BOB}>",
])
def test_multi_address_from_with_a_foreign_mailbox(sub, uniq, value):
    refused(sub, f"From: {value}\nSubject: multi\n", uniq, 553, "5.7.1",
            "from-not-owned")


@pytest.mark.parametrize("value", [BOB, f"Bob <{BOB}>",
                                   f"Alice <{ALICE}>, Bob <{BOB}>"])
def test_foreign_sender_is_refused(sub, uniq, value):
    got, text = submit(sub, f"From: {ALICE}\nSender: {value}\n", uniq)
    assert (got, text[:5]) in ((553, b"5.7.1"), (550, b"5.6.0")), (got, text)
    assert_not_stored(sub, uniq)


def test_foreign_sender_reply_and_reason(sub, uniq):
    refused(sub, f"From: {ALICE}\nSender: Bob <{BOB}>\n", uniq, 553, "5.7.1",
            "header-sender-not-owned")


# ---- display names that show another address -----------------------------

@pytest.mark.parametrize("value", [
    f"\"{BOB}\" <{ALICE}>",
    f"\"Bob <{BOB}>\" <{ALICE}>",
    f"\"Bob ({BOB})\" <{ALICE}>",
    f"=?utf-8?q?bob=40example.test?= <{ALICE}>",
    f"=?utf-8?b?{base64.b64encode(BOB.encode()).decode()}?= <{ALICE}>",
    f"\"bob\uff20example.test\" <{ALICE}>",        # full-width at
    f"{ALICE} ({BOB})",                             # an old-style comment
])
def test_display_name_showing_another_address(sub, uniq, value):
    refused(sub, f"From: {value}\nSubject: spoof\n", uniq, 550, "5.7.1",
            "display-name-address")


def test_display_name_in_sender(sub, uniq):
    refused(sub, f"From: {ALICE}\nSender: \"{BOB}\" <{ALICE}>\n", uniq,
            550, "5.7.1", "display-name-address")


def test_display_name_policy_off(godwit_root, cert, uniq):
    g = _make(godwit_root, cert, "subfrom-off",
              {"submission": {"refuse_address_display_name": False}})
    try:
        code, err = submit(g, f"From: \"{BOB}\" <{ALICE}>\n", uniq)
        assert code == 250, err
        assert g.wait_messages(BOB, 1)
        # the other checks stay on
        code, err = submit(g, f"From: {ALICE}\nFrom: {BOB}\n", uniq + "-2")
        assert (code, err[:5]) == (550, b"5.6.0"), (code, err)
    finally:
        problems = _finish(g)
    assert not problems, problems


# ---- what must still work --------------------------------------------------

@pytest.mark.parametrize("header", [
    f"From: {ALICE}\n",
    f"From: Alice Example <{ALICE}>\n",
    f"From: \"Example, Alice\" <{ALICE}>\n",
    f"From: \"Alice (at work)\" <{ALICE}>\n",
    f"From: \"{ALICE}\" <{ALICE}>\n",                 # her own address
    f"From: =?utf-8?q?Al=C3=AFce?= <{ALICE}>\n",
    f"From: Alice\n <{ALICE}>\n",                      # folded
    f"From:\n\t{ALICE}\n  (comment)\n",
    f"From : {ALICE}\n",                               # obsolete, hers
    f"From: {ALICE} (Alice)\n",
    "From: Postmaster <postmaster@example.test>\n",   # an alias to her
    "From: <ALICE+news@Example.Test>\n",              # sub-address
    f"From: Alice <{ALICE}>, Team <team@example.test>\n",
    f"From: Alice <{ALICE}>\nSender: {ALICE}\n",
    f"From: \"Team\" <team@example.test>\nSender: Alice <{ALICE}>\n",
    f"From: Alice <@relay.test:{ALICE}>\n",            # obs-route
    f"From: {ALICE}\nX-Long: {'x' * 900}\n",
    "Subject: no From at all\n",
])
def test_legitimate_headers_are_accepted(sub, uniq, header):
    code, err = submit(sub, header + "Subject: ok\n", uniq)
    assert code == 250, err
    wait_stored(sub, uniq)


def test_from_in_the_body_is_not_a_header(sub, uniq):
    """After the empty line that ends the header, 'From:' is body text."""
    code, err = submit(sub, f"From: {ALICE}\n", f"From: {BOB}\n{uniq}")
    assert code == 250, err
    wait_stored(sub, uniq)


def wait_stored(g, marker):
    from conftest import wait_for
    return wait_for(lambda: g.find_messages(marker), 10,
                    what=f"message {marker}")


def test_obsolete_date_name_gets_no_second_date(sub, uniq):
    """'Date :' is a Date: field: submission adds none of its own."""
    code, err = submit(sub, f"From: {ALICE}\nDate : Mon, 1 Jan 2024 00:00:00 "
                            "+0000\nMessage-ID : <own@client>\n", uniq)
    assert code == 250, err
    msg = wait_stored(sub, uniq)[0].read_bytes()
    head = msg.split(b"\n\n", 1)[0].lower()
    assert head.count(b"\ndate") == 1 and head.count(b"\nmessage-id") == 1


# ---- a large header section -------------------------------------------------

def test_from_after_a_large_header_is_checked(sub, uniq):
    """A From: after 60 KB of other fields is still found (the header is
    held to its end), and a header over 64 KB is refused, not passed
    unchecked."""
    pad = "".join(f"X-Pad-{i}: {'p' * 70}\n" for i in range(850))   # > 64 KB
    small = pad[:60000].rsplit("\n", 1)[0] + "\n"
    got, text = submit(sub, small + f"From: {BOB}\n", uniq)
    assert (got, text[:5]) == (553, b"5.7.1"), (got, text)
    got, text = submit(sub, small + f"From: {ALICE}\n", uniq + "-ok")
    assert got == 250, text
    wait_stored(sub, uniq + "-ok")
    got, text = submit(sub, pad + f"From: {BOB}\n", uniq + "-big")
    assert (got, text[:5]) == (552, b"5.3.4"), (got, text)
    assert_not_stored(sub, uniq + "-big")


# ---- BDAT -------------------------------------------------------------------

def test_two_from_fields_over_bdat(sub, uniq):
    c = RawSMTP("127.0.0.1", sub.sub_port, timeout=30)
    try:
        c.reply()
        c.ehlo()
        assert c.cmd("STARTTLS").code == 220
        c.sock = ctx().wrap_socket(c.sock, server_hostname="localhost")
        c.ehlo()
        tok = base64.b64encode(f"\0{ALICE}\0{PASSWORD}".encode()).decode()
        assert c.cmd(f"AUTH PLAIN {tok}").code == 235
        assert c.cmd(f"MAIL FROM:<{ALICE}>").code == 250
        assert c.cmd(f"RCPT TO:<{BOB}>").code == 250
        a = crlf(f"From: {ALICE}\nSubject: bdat\n")
        b = crlf(f"From: {BOB}\n\n{uniq}\n")
        c.send(b"BDAT %d\r\n" % len(a) + a)
        assert c.reply().code == 250
        c.send(b"BDAT %d LAST\r\n" % len(b) + b)
        r = c.reply()
        assert (r.code, r.enh) == (550, "5.6.0"), r
        c.cmd("QUIT")
    finally:
        c.close()
    assert_not_stored(sub, uniq)
