"""
IDLE (RFC 2177) and one mailbox shared by delivery, POP3 and several IMAP
sessions at once: a message delivered over SMTP is pushed as EXISTS to a
session in IDLE, a flag change in another IMAP session as FETCH FLAGS, a
POP3 DELE+QUIT as EXPUNGE. Every wait is bounded.
"""

import os
import poplib
import re
import time

import pytest

from conftest import PASSWORD
from imap_mbox_util import (ALICE, append_ok, deliver, imap_godwit, message,
                            raw, status_of)

PUSH_TIMEOUT = 10


@pytest.fixture
def g(make_godwit):
    return imap_godwit(make_godwit)


def wait_line(c, pred, timeout=PUSH_TIMEOUT):
    """Reads untagged lines until pred(line) holds; the lines read."""
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no such line in {timeout}s: {seen}")
        ln = c.line(timeout=left)
        seen.append(ln)
        if pred(ln):
            return seen


def idle(c):
    t = c.tag()
    c.send(f"{t} IDLE\r\n")
    assert c.line() == "+ idling"
    return t


def done(c, t):
    c.send("DONE\r\n")
    u, tagged = c.until(t)
    assert status_of(tagged) == "OK", tagged
    return u


def test_idle_pushes_delivery(g):
    with raw(g) as c:
        u, t = c.cmd('SELECT "INBOX"')
        assert "* 0 EXISTS" in u, u
        tag = idle(c)
        deliver(g, ALICE, message("pushed"))
        wait_line(c, lambda ln: ln == "* 1 EXISTS")
        deliver(g, ALICE, message("pushed again"))
        wait_line(c, lambda ln: ln == "* 2 EXISTS")
        done(c, tag)
        u, t = c.cmd("NOOP")
        assert status_of(t) == "OK" and not any("EXISTS" in x for x in u)


def test_idle_sees_flags_of_another_session(g):
    with raw(g) as a, raw(g) as b:
        append_ok(a, "INBOX", message("one"))
        append_ok(a, "INBOX", message("two"))
        a.cmd('SELECT "INBOX"')
        b.cmd('SELECT "INBOX"')
        tag = idle(a)
        _, t = b.cmd("STORE 2 +FLAGS (\\Flagged)")
        assert status_of(t) == "OK"
        seen = wait_line(a, lambda ln: ln.startswith("* 2 FETCH"))
        assert "\\Flagged" in seen[-1] and "UID 2" in seen[-1], seen
        append_ok(b, "INBOX", message("three"))
        wait_line(a, lambda ln: ln == "* 3 EXISTS")
        done(a, tag)


def test_pop3_delete_shows_up_as_expunge(g):
    for i in range(3):
        deliver(g, ALICE, message(f"pop{i}"))
    g.wait_messages(ALICE, 3)
    with raw(g) as c:
        u, _ = c.cmd('SELECT "INBOX"')
        assert "* 3 EXISTS" in u
        tag = idle(c)
        p = poplib.POP3("127.0.0.1", g.pop3_port, timeout=15)
        p.user(ALICE)
        p.pass_(PASSWORD)
        assert p.stat()[0] == 3
        p.dele(2)
        p.quit()
        wait_line(c, lambda ln: ln == "* 2 EXPUNGE")
        done(c, tag)
        u, t = c.cmd("NOOP")
        assert not any("EXPUNGE" in x for x in u), u


def test_two_sessions_idle_on_one_mailbox(g):
    with raw(g) as a, raw(g) as b:
        a.cmd('SELECT "INBOX"')
        b.cmd('SELECT "INBOX"')
        ta, tb = idle(a), idle(b)
        deliver(g, ALICE, message("both"))
        wait_line(a, lambda ln: ln == "* 1 EXISTS")
        wait_line(b, lambda ln: ln == "* 1 EXISTS")
        done(a, ta)
        a.cmd("STORE 1 +FLAGS.SILENT (\\Deleted)")
        u, _ = a.cmd("EXPUNGE")
        assert u == ["* 1 EXPUNGE"], u
        wait_line(b, lambda ln: ln == "* 1 EXPUNGE")
        done(b, tb)


def test_idle_without_folder_and_bad_end(g):
    with raw(g) as c:
        tag = idle(c)
        done(c, tag)
        c.cmd('SELECT "INBOX"')
        tag = idle(c)
        c.send("NOT DONE\r\n")
        _, t = c.until(tag)
        assert status_of(t) == "BAD", t
        _, t = c.cmd("NOOP")
        assert status_of(t) == "OK", t
        _, t = c.cmd("IDLE now")
        assert status_of(t) == "BAD", t


def test_idle_after_folder_reselected(g):
    """The watch follows the selected folder: after SELECT of another
    folder, mail delivered to INBOX is not pushed, a message appended to
    the selected folder is."""
    with raw(g) as c, raw(g) as other:
        append_ok(other, "Trash", message("old one"))
        append_ok(other, "Trash", message("old two"))
        c.cmd('SELECT "INBOX"')
        _, t = c.cmd('SELECT "Trash"')
        assert status_of(t) == "OK"
        tag = idle(c)
        deliver(g, ALICE, message("to inbox"))
        g.wait_messages(ALICE, 1)
        append_ok(other, "Trash", message("to trash"))
        seen = wait_line(c, lambda ln: re.fullmatch(r"\* \d+ EXISTS", ln))
        assert seen[-1] == "* 3 EXISTS", seen
        done(c, tag)


def test_files_changed_by_hand_show_up_at_once(g):
    """Another Maildir tool writing, renaming and removing files: the
    next command reports it, without waiting for the event loop."""
    with raw(g) as c:
        append_ok(c, "INBOX", message("kept"))
        u, _ = c.cmd('SELECT "INBOX"')
        assert "* 1 EXISTS" in u
        md = g.maildir(ALICE)
        (md / "new" / "1700000000.M1P1.tool").write_bytes(
            message("dropped").replace(b"\r\n", b"\n"))
        g.hand_over_mail()
        u, _ = c.cmd("NOOP")
        assert "* 2 EXISTS" in u, u
        (cur,) = [p for p in (md / "cur").iterdir()
                  if b"Subject: kept" in p.read_bytes()]
        base = cur.name.split(":2,")[0]
        os.rename(cur, md / "cur" / (base + ":2,FS"))
        u, _ = c.cmd("NOOP")
        fetch = [x for x in u if x.startswith("* 1 FETCH")]
        assert fetch and "\\Flagged" in fetch[0], u
        os.unlink(md / "cur" / (base + ":2,FS"))
        u, _ = c.cmd("NOOP")
        assert u == ["* 1 EXPUNGE"], u
