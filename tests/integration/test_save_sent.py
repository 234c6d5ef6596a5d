"""
submission.save_sent: a copy of the mail an authenticated user sends in
the Sent folder of the account they logged in as
(<Maildir>/.Sent/cur/<name>:2,S), written by the committer with the
local copies before the 250 — for local and remote recipients alike, the
message as it goes out (no Return-Path, no Delivered-To), off by
default. Real smtplib with AUTH on the submission listener.
"""

import imaplib
import json
import re
import smtplib
import stat

import pytest

from conftest import (PASSWORD, serving, Godwit, free_port, godwit_base,
                      wait_for)

ALICE = "alice@example.test"
BOB = "bob@example.test"
REMOTE = "someone@example.org"     # queued; the test DNS refuses: deferred


def sent_dir(g, address=ALICE):
    return g.maildir(address) / ".Sent"


def sent_files(g, address=ALICE):
    d = sent_dir(g, address)
    files = []
    for sub in ("new", "cur", "tmp"):
        if (d / sub).is_dir():
            files += sorted(p for p in (d / sub).iterdir() if p.is_file())
    return files


def submit(g, rcpts, marker, sender=ALICE, login=ALICE):
    """Sends a message holding marker as login over AUTH; (code, text)."""
    s = smtplib.SMTP("127.0.0.1", g.sub_port, local_hostname="client.test",
                     timeout=30)
    try:
        s.login(login, PASSWORD)
        msg = (f"From: {sender}\r\nTo: {', '.join(rcpts)}\r\n"
               f"Subject: {marker}\r\n\r\nbody {marker}\r\n")
        try:
            s.sendmail(sender, rcpts, msg)
        except smtplib.SMTPDataError as e:
            return e.smtp_code, e.smtp_error
        return 250, b""
    finally:
        s.close()


def accept_line(g, marker_rcpt, result):
    """The smtp accept line of the last message to marker_rcpt."""
    return wait_for(lambda: [l for l in g.log_text().splitlines()
                             if "fac=smtp event=accept" in l and
                             f"to={marker_rcpt}" in l and
                             f"result={result}" in l], 10,
                    what="the accept line")[-1]


def audit_sent(g, qid):
    recs = [json.loads(l) for l in
            (g.data_dir / "log" / "audit.log").read_text().splitlines()]
    return next(r for r in recs if r.get("queue") == qid).get("sent")


def check_name(p, data):
    """A delivery's Maildir name: S= the file's size, \\Seen in cur/."""
    assert p.parent.name == "cur", p
    assert p.name.endswith(":2,S"), p
    m = re.search(r",S=(\d+),W=(\d+):2,S$", p.name)
    assert m, p.name
    assert int(m.group(1)) == len(data)
    lf = data.count(b"\n")
    assert int(m.group(2)) == len(data) + lf - data.count(b"\r\n")


def overrides(cert, save_sent=None):
    crt, key = cert
    over = {"tls": {"certificates": [{"cert": str(crt), "key": str(key)}]}}
    if save_sent is not None:
        over["submission"] = {"save_sent": save_sent}
    return over


@pytest.fixture(scope="module")
def on(godwit_root, cert):
    g = Godwit(godwit_base(godwit_root, "save_sent_on"),
               overrides(cert, True))
    g.add_submission()
    g.imap_port = free_port()
    g.config["listeners"].append(
        {"name": "imap", "protocol": "imap", "plaintext_auth": True,
         "listen": [f"127.0.0.1:{g.imap_port}"]})
    g.write_config()
    with serving(g):
        yield g


def test_local_and_remote_copy_in_sent(on, uniq):
    code, _ = submit(on, [BOB, REMOTE], uniq)
    assert code == 250
    line = accept_line(on, f"{BOB},{REMOTE}", "queued")
    assert "sent_copy=alice@example.test" in line
    files = [p for p in sent_files(on) if uniq.encode() in p.read_bytes()]
    assert len(files) == 1, sent_files(on)
    p = files[0]
    data = p.read_bytes()
    check_name(p, data)
    # the message as it went out: trace fields, no local header
    assert data.startswith(b"Received: "), data[:200]
    assert b"Return-Path:" not in data and b"Delivered-To:" not in data
    assert b"Subject: " + uniq.encode() in data
    # the folder as Maildir++ and IMAP know it
    assert (sent_dir(on) / "maildirfolder").is_file()
    for sub in ("tmp", "new"):
        assert (sent_dir(on) / sub).is_dir()
    assert stat.S_IMODE(p.stat().st_mode) == 0o640
    # bob's copy is the usual one; the queue has the remote copy; alice's
    # inbox has nothing
    bob = [m for m in on.maildir_messages(BOB) if uniq.encode() in m]
    assert len(bob) == 1 and bob[0].startswith(b"Return-Path: <")
    assert bob[0].endswith(data)
    assert not [m for m in on.maildir_messages(ALICE) if uniq.encode() in m]
    qid = re.search(r"queue=(\S+)", line).group(1)
    assert audit_sent(on, qid) == ALICE


def test_remote_only_is_the_queued_message(on, uniq):
    code, _ = submit(on, [REMOTE], uniq)
    assert code == 250
    line = accept_line(on, REMOTE, "queued")
    assert "sent_copy=alice@example.test" in line
    files = [p for p in sent_files(on) if uniq.encode() in p.read_bytes()]
    assert len(files) == 1
    data = files[0].read_bytes()
    check_name(files[0], data)
    def queued_now():
        # the runner moves the file (active/ to deferred/) as we read
        found = []
        for q in on.queue_files():
            try:
                b = q.read_bytes()
            except FileNotFoundError:
                return None
            if uniq.encode() in b:
                found.append(b)
        return found
    queued = wait_for(queued_now, 10, what="the queue file")
    assert len(queued) == 1 and data in queued[0]
    assert data.startswith(b"Received: ")


def test_alias_sender_goes_to_the_login(on, uniq):
    """MAIL FROM an alias of alice: the copy is in the Sent folder of the
    account that logged in, not of an address of the envelope."""
    code, _ = submit(on, [BOB], uniq, sender="postmaster@example.test")
    assert code == 250
    assert "sent_copy=alice@example.test" in accept_line(on, BOB,
                                                        "delivered")
    assert [p for p in sent_files(on) if uniq.encode() in p.read_bytes()]
    assert not (on.data_dir / "mail" / "example.test" / "postmaster").exists()


def test_mx_mail_gets_no_copy(on, uniq):
    """Mail from another server (port 25, no login) is no one's to keep."""
    s = on.smtp()
    try:
        s.sendmail("someone@example.org", [ALICE],
                   f"Subject: {uniq}\r\n\r\nx\r\n")
    finally:
        s.quit()
    wait_for(lambda: on.find_messages(uniq), 10, what="the delivery")
    line = accept_line(on, ALICE, "delivered")
    assert "sent_copy" not in line
    assert not [p for p in sent_files(on) if uniq.encode() in p.read_bytes()]
    assert not [p for p in sent_files(on, BOB) if uniq.encode() in
                p.read_bytes()]


def test_unwritable_sent_fails_the_whole_message(make_godwit, cert, uniq):
    """A Sent copy that cannot be written takes the message back: 451,
    and no recipient has it (no half-done delivery a retry would
    double)."""
    g = make_godwit(overrides(cert, True), start=False)
    g.add_submission()
    g.write_config()
    g.start()
    md = g.maildir(ALICE)
    for sub in ("tmp", "new", "cur"):
        (md / sub).mkdir(parents=True, exist_ok=True)
    (md / ".Sent").write_bytes(b"not a folder\n")
    g.hand_over_mail()
    code, text = submit(g, [BOB, REMOTE], uniq)
    assert (code, text[:5]) == (451, b"4.3.0"), (code, text)
    assert g.find_messages(uniq) == []
    for p in g.queue_files() + g.tmp_files():
        assert uniq.encode() not in p.read_bytes(), p
    assert re.search(r"fac=smtp event=error .*reason=commit msg=\"save to ",
                     g.log_text())


def test_off_by_default(make_godwit, cert, uniq):
    g = make_godwit(overrides(cert), start=False)
    g.add_submission()
    g.write_config()
    g.start()
    code, _ = submit(g, [BOB, REMOTE], uniq)
    assert code == 250
    line = accept_line(g, f"{BOB},{REMOTE}", "queued")
    assert "sent_copy" not in line
    assert not sent_dir(g).exists()
    assert len(g.find_messages(uniq)) == 1   # bob's


def test_imap_shows_it_in_sent_seen(on, uniq):
    """The copy is what an IMAP client sees in Sent (\\Sent), read."""
    code, _ = submit(on, [REMOTE], uniq)
    assert code == 250
    m = imaplib.IMAP4("127.0.0.1", on.imap_port, timeout=30)
    try:
        assert m.login(ALICE, PASSWORD)[0] == "OK"
        typ, lines = m.list('""', "Sent")
        assert typ == "OK" and len(lines) == 1, lines
        assert b"\\Sent" in lines[0], lines
        typ, _ = m.select("Sent", readonly=True)
        assert typ == "OK"
        typ, data = m.search(None, "SUBJECT", f'"{uniq}"')
        assert typ == "OK" and len(data[0].split()) == 1, data
        n = data[0].split()[0]
        typ, data = m.fetch(n, "(FLAGS)")
        assert typ == "OK" and b"\\Seen" in data[0], data
    finally:
        m.logout()
