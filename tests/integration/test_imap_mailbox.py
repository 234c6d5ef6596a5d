"""
The IMAP mailbox commands against the real daemon: SELECT/EXAMINE in
their IMAP4rev1 and IMAP4rev2 forms, CREATE DELETE RENAME SUBSCRIBE
UNSUBSCRIBE, LIST (basic, RFC 5258 extended, RFC 6154 special-use,
RFC 5819 LIST-STATUS), LSUB, NAMESPACE, STATUS, APPEND (APPENDUID,
TRYCREATE), STORE, COPY (COPYUID), MOVE, EXPUNGE, UID EXPUNGE, CLOSE,
UNSELECT, and the error replies with their response codes. Python's
imaplib where it shows enough, a raw client (imap_mbox_util.Raw) where
the exact lines matter. One daemon for the module; each test works in
folders of its own (alice), the first-login test alone uses bob.
"""

import imaplib
import itertools
import os
import re

import pytest

from conftest import PASSWORD, Godwit, _finish, free_port, godwit_base
from imap_mbox_util import (ALICE, BOB, Raw, append_ok, code_of, deliver,
                            message, raw, status_of)

_names = itertools.count(1)


@pytest.fixture(scope="module")
def g(request, godwit_root):
    gw = Godwit(godwit_base(godwit_root, "imap_mailbox"),
                {"imap": {"max_append": "3M"}})
    gw.imap_port = free_port()
    gw.config["listeners"] += [
        {"name": "imap", "protocol": "imap", "plaintext_auth": True,
         "listen": [f"127.0.0.1:{gw.imap_port}"]},
    ]
    gw.write_config()
    gw.start()
    yield gw
    problems = _finish(gw)
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


def fresh(prefix="F"):
    return f"{prefix}{next(_names)}x{os.getpid() % 1000}"


def folder_dir(g, name, user=ALICE):
    return g.maildir(user) / ("." + name.replace("/", "."))


def files_in(d):
    out = []
    for sub in ("new", "cur"):
        p = d / sub
        if p.is_dir():
            out += sorted(x.name for x in p.iterdir())
    return out


def list_lines(untagged):
    return [u for u in untagged if u.startswith("* LIST ")]


def list_entry(untagged, name):
    """The attributes of name in LIST lines, as a set; None if absent."""
    for u in untagged:
        m = re.match(r'\* (?:LIST|LSUB) \(([^)]*)\) "/" "?([^"]*)"?( .*)?$',
                     u)
        if m and m.group(2) == name:
            return set(m.group(1).split())
    return None


def with_msgs(c, name, n, flags=""):
    """A new folder with n messages in it."""
    _, t = c.cmd(f'CREATE "{name}"')
    assert status_of(t) == "OK", t
    for i in range(n):
        _, t = c.append(name, message(f"{name}-{i}"), flags)
        assert status_of(t) == "OK", t


# ------------------------------------------------------------ folders ---

def test_special_use_folders_on_first_login(g):
    md = g.maildir(BOB)
    assert not (md / ".Junk").exists()
    with raw(g, BOB) as c:
        u, t = c.cmd('LIST "" "*"')
        assert status_of(t) == "OK", t
    for name, attr in (("Sent", "\\Sent"), ("Drafts", "\\Drafts"),
                       ("Junk", "\\Junk"), ("Trash", "\\Trash")):
        assert (md / ("." + name) / "cur").is_dir(), name
        attrs = list_entry(u, name)
        assert attrs is not None and attr in attrs, (name, u)
        assert "\\HasNoChildren" in attrs
    assert "\\HasNoChildren" in list_entry(u, "INBOX")


def test_list_delimiter_and_namespace(g):
    with raw(g) as c:
        u, t = c.cmd('LIST "" ""')
        assert u == ['* LIST (\\Noselect) "/" ""'] and status_of(t) == "OK"
        u, t = c.cmd("NAMESPACE")
        assert u == ['* NAMESPACE (("" "/")) NIL NIL'], u
        assert status_of(t) == "OK"


def test_create_delete_rename(g):
    a = fresh("Top")
    with raw(g) as c:
        _, t = c.cmd(f'CREATE "{a}/Child"')
        assert status_of(t) == "OK", t
        assert folder_dir(g, f"{a}/Child").is_dir()
        u, _ = c.cmd(f'LIST "" "{a}*"')
        assert "\\HasChildren" in list_entry(u, a)
        assert "\\HasNoChildren" in list_entry(u, f"{a}/Child")
        u, _ = c.cmd(f'LIST "" "{a}%"')
        assert list_entry(u, a) is not None
        assert list_entry(u, f"{a}/Child") is None
        _, t = c.cmd(f'CREATE "{a}/Child"')
        assert (status_of(t), code_of(t)) == ("NO", "ALREADYEXISTS"), t
        _, t = c.cmd('CREATE "inbox"')
        assert (status_of(t), code_of(t)) == ("NO", "ALREADYEXISTS"), t
        _, t = c.cmd(f'CREATE "{a}-slash/"')
        assert status_of(t) == "OK" and folder_dir(g, f"{a}-slash").is_dir()
        _, t = c.cmd(f'RENAME "{a}/Child" "{a}-renamed"')
        assert status_of(t) == "OK", t
        assert folder_dir(g, f"{a}-renamed").is_dir()
        assert not folder_dir(g, f"{a}/Child").exists()
        _, t = c.cmd(f'RENAME "{a}-renamed" "{a}-slash"')
        assert (status_of(t), code_of(t)) == ("NO", "ALREADYEXISTS"), t
        _, t = c.cmd(f'RENAME "{a}-none" "{a}-other"')
        assert (status_of(t), code_of(t)) == ("NO", "NONEXISTENT"), t
        _, t = c.cmd(f'DELETE "{a}-renamed"')
        assert status_of(t) == "OK", t
        assert not folder_dir(g, f"{a}-renamed").exists()
        _, t = c.cmd(f'DELETE "{a}-renamed"')
        assert (status_of(t), code_of(t)) == ("NO", "NONEXISTENT"), t
        c.cmd(f'SELECT "{a}-slash"')
        _, t = c.cmd(f'DELETE "{a}-slash"')
        assert status_of(t) == "OK", t
        assert not folder_dir(g, f"{a}-slash").exists()
        _, t = c.cmd("NOOP")
        assert status_of(t) == "OK", t
        _, t = c.cmd("CLOSE")
        assert status_of(t) == "BAD", "the deleted folder is not selected"
        _, t = c.cmd('DELETE "INBOX"')
        assert status_of(t) == "NO", t
        _, t = c.cmd("CREATE")
        assert status_of(t) == "BAD", t


def test_subscribe_lsub_and_extended_list(g):
    a = fresh("Sub")
    with raw(g) as c:
        _, t = c.cmd(f'CREATE "{a}/kid"')
        assert status_of(t) == "OK"
        for n in (f"{a}/kid", f"{a}-ghost"):
            _, t = c.cmd(f'SUBSCRIBE "{n}"')
            assert status_of(t) == "OK", t
        u, t = c.cmd(f'LSUB "" "{a}*"')
        assert status_of(t) == "OK"
        assert list_entry(u, f"{a}/kid") is not None
        assert list_entry(u, a) is None
        u, _ = c.cmd(f'LSUB "" "{a}%"')
        assert "\\Noselect" in list_entry(u, a), u
        u, _ = c.cmd(f'LIST (SUBSCRIBED) "" "{a}*"')
        assert "\\Subscribed" in list_entry(u, f"{a}/kid")
        assert "\\NonExistent" in list_entry(u, f"{a}-ghost")
        assert list_entry(u, a) is None
        u, _ = c.cmd(f'LIST (SUBSCRIBED RECURSIVEMATCH) "" "{a}%"')
        line = [x for x in u if f'"/" {a} ' in x or f'"/" "{a}" ' in x]
        assert line and '("CHILDINFO" ("SUBSCRIBED"))' in line[0], u
        _, t = c.cmd(f'LIST (RECURSIVEMATCH) "" "{a}%"')
        assert status_of(t) == "BAD", t
        _, t = c.cmd(f'LIST (BOGUS) "" "{a}%"')
        assert status_of(t) == "BAD", t
        u, _ = c.cmd(f'LIST "" "{a}*" RETURN (SUBSCRIBED CHILDREN)')
        assert "\\Subscribed" in list_entry(u, f"{a}/kid")
        assert "\\HasChildren" in list_entry(u, a)
        assert "\\Subscribed" not in list_entry(u, a)
        _, t = c.cmd(f'UNSUBSCRIBE "{a}-ghost"')
        assert status_of(t) == "OK"
        u, _ = c.cmd(f'LIST (SUBSCRIBED) "" "{a}*"')
        assert list_entry(u, f"{a}-ghost") is None


def test_list_special_use_multiple_patterns_and_status(g):
    a = fresh("Ls")
    with raw(g) as c:
        with_msgs(c, a, 2, "\\Seen")
        u, t = c.cmd('LIST (SPECIAL-USE) "" "*" RETURN (SPECIAL-USE)')
        assert status_of(t) == "OK"
        names = {re.search(r'"/" "?([^" ]*)', x).group(1)
                 for x in list_lines(u)}
        assert names == {"Sent", "Drafts", "Junk", "Trash"}, u
        u, _ = c.cmd(f'LIST "" ("INBOX" "{a}" "Junk")')
        assert {re.search(r'"/" "?([^" ]*)', x).group(1)
                for x in list_lines(u)} == {"INBOX", a, "Junk"}
        u, t = c.cmd(f'LIST "" "{a}" RETURN (STATUS (MESSAGES UNSEEN SIZE))')
        assert status_of(t) == "OK"
        assert list_lines(u) and re.match(rf'\* STATUS "?{a}"? \(', u[1]), u
        st = dict(re.findall(r"(\w+) (\d+)", u[1].split("(", 1)[1]))
        assert st["MESSAGES"] == "2" and st["UNSEEN"] == "0"
        assert int(st["SIZE"]) > 0
        _, t = c.cmd(f'LIST "" "{a}" RETURN (STATUS (BOGUS))')
        assert status_of(t) == "BAD"


def test_utf8_names(g):
    with raw(g) as c:
        _, t = c.cmd('CREATE "Entw&APw-rfe"')
        assert status_of(t) == "OK", t
        assert (g.maildir(ALICE) / ".Entw&APw-rfe").is_dir()
        u, _ = c.cmd('LIST "" "Entw*"')
        assert list_entry(u, "Entw&APw-rfe") is not None, u
        _, t = c.cmd("ENABLE IMAP4rev2")
        assert status_of(t) == "OK"
        u, _ = c.cmd('LIST "" "Entw*"')
        assert list_entry(u, "Entwürfe") is not None, u


# ------------------------------------------------------------- SELECT ---

def test_select_rev1(g):
    a = fresh("Sel")
    with raw(g) as c:
        with_msgs(c, a, 1, "\\Seen")
        with_msgs(c, a + "b", 0)
        _, t = c.append(a, message("unseen"))
        assert status_of(t) == "OK"
        u, t = c.cmd(f'SELECT "{a}"')
        assert t.split()[1:3] == ["OK", "[READ-WRITE]"], t
        assert u[0].startswith("* FLAGS (\\Answered \\Flagged \\Deleted "
                               "\\Seen \\Draft"), u
        assert "* 2 EXISTS" in u
        assert any(re.fullmatch(r"\* \d+ RECENT", x) for x in u)
        assert any(x.startswith("* OK [UNSEEN 2]") for x in u), u
        assert any(x.startswith("* OK [PERMANENTFLAGS (") and "\\*" in x
                   for x in u), u
        assert any(x.startswith("* OK [UIDVALIDITY ") for x in u)
        assert any(x.startswith("* OK [UIDNEXT 3]") for x in u), u
        assert not list_lines(u)
        u, t = c.cmd(f'EXAMINE "{a}"')
        assert t.split()[1:3] == ["OK", "[READ-ONLY]"], t
        assert "* OK [PERMANENTFLAGS ()] Flags permitted" in u, u
        u, t = c.cmd(f'SELECT "{a}-missing"')
        assert (status_of(t), code_of(t)) == ("NO", "NONEXISTENT"), t
        _, t = c.cmd("CLOSE")
        assert status_of(t) == "BAD", "a failed SELECT leaves no folder"
        _, t = c.cmd(f'SELECT "{a}" (CONDSTORE)')
        assert status_of(t) == "BAD", t


def test_select_rev2(g):
    a = fresh("Rev2")
    with raw(g) as c:
        with_msgs(c, a, 2)
        _, t = c.cmd("ENABLE IMAP4rev2")
        assert status_of(t) == "OK"
        u, t = c.cmd(f'SELECT "{a}"')
        assert t.split()[1:3] == ["OK", "[READ-WRITE]"], t
        assert "* 2 EXISTS" in u
        assert not any("RECENT" in x or "[UNSEEN" in x for x in u), u
        assert f'* LIST () "/" {a}' in u or f'* LIST () "/" "{a}"' in u, u
        u, t = c.cmd('SELECT "INBOX"')
        assert u[0].startswith("* OK [CLOSED]"), u


def test_select_with_imaplib(g):
    a = fresh("Lib")
    with raw(g) as c:
        with_msgs(c, a, 3)
    m = imaplib.IMAP4("127.0.0.1", g.imap_port, timeout=15)
    try:
        m.login(ALICE, PASSWORD)
        typ, data = m.select(a)
        assert (typ, data) == ("OK", [b"3"])
        assert m.response("UIDNEXT")[1] == [b"4"]
        typ, data = m.status(a, "(MESSAGES UIDNEXT)")
        assert typ == "OK" and b"MESSAGES 3" in data[0]
        m.close()
    finally:
        m.logout()


# ------------------------------------------------------- STATUS, APPEND ---

def test_status(g):
    a = fresh("St")
    with raw(g) as c:
        with_msgs(c, a, 1, "\\Seen \\Deleted")
        with_msgs(c, a + "-2", 0)
        _, t = c.append(a, message("two"))
        u, t = c.cmd(f'STATUS "{a}" (MESSAGES UIDNEXT UIDVALIDITY UNSEEN '
                     f'DELETED SIZE RECENT)')
        assert status_of(t) == "OK", t
        st = dict(re.findall(r"(\w+) (\d+)", u[0].split("(", 1)[1]))
        assert st["MESSAGES"] == "2" and st["UIDNEXT"] == "3"
        assert st["UNSEEN"] == "1" and st["DELETED"] == "1"
        size = sum(os.path.getsize(p) + p.read_bytes().count(b"\n")
                   for p in (folder_dir(g, a) / "cur").iterdir())
        assert int(st["SIZE"]) == size
        _, t = c.cmd(f'STATUS "{a}" (BOGUS)')
        assert status_of(t) == "BAD", t
        _, t = c.cmd(f'STATUS "{a}-none" (MESSAGES)')
        assert (status_of(t), code_of(t)) == ("NO", "NONEXISTENT"), t


def test_append(g):
    a = fresh("Ap")
    with raw(g) as c:
        _, t = c.append(a, message("x"))
        assert (status_of(t), code_of(t)) == ("NO", "TRYCREATE"), t
        _, t = c.cmd(f'CREATE "{a}"')
        u, t = c.append(a, message("flagged"), "\\Seen \\Flagged Work",
                        "05-Mar-2024 10:20:30 +0100")
        assert status_of(t) == "OK", t
        m = re.match(r"\S+ OK \[APPENDUID (\d+) (\d+)\]", t)
        assert m and m.group(2) == "1", t
        cur = folder_dir(g, a) / "cur"
        (f,) = list(cur.iterdir())
        flags = f.name.rsplit(":2,", 1)[1]
        assert "S" in flags and "F" in flags and "a" in flags, f.name
        assert "Work" in (folder_dir(g, a) / "dovecot-keywords").read_text()
        assert int(f.stat().st_mtime) == 1709630430
        assert b"Subject: flagged" in f.read_bytes()
        assert b"\r\n" not in f.read_bytes()
        u, t = c.cmd(f'STATUS "{a}" (UIDVALIDITY UIDNEXT)')
        assert f"UIDVALIDITY {m.group(1)}" in u[0] and "UIDNEXT 2" in u[0]
        _, t = c.append(a, message("big", "x" * (3 << 20)))
        assert (status_of(t), code_of(t)) == ("NO", "TOOBIG"), t
        assert len(files_in(folder_dir(g, a))) == 1
        _, t = c.append(a, message("bad date"), "", "31-Foo-2024 10:20:30 +0100")
        assert status_of(t) == "BAD", t
        _, t = c.cmd(f'SELECT "{a}"')
        _, t = c.append(a, message("while selected"))
        assert status_of(t) == "OK"
        u, t = c.cmd("NOOP")
        assert "* 2 EXISTS" in u or status_of(t) == "OK"


def test_append_imaplib(g):
    a = fresh("ApLib")
    m = imaplib.IMAP4("127.0.0.1", g.imap_port, timeout=15)
    try:
        m.login(ALICE, PASSWORD)
        assert m.create(a)[0] == "OK"
        typ, data = m.append(a, "(\\Draft)", None, message("draft"))
        assert typ == "OK" and b"APPENDUID" in data[0], data
        typ, data = m.select(a)
        assert data == [b"1"]
    finally:
        m.logout()


# --------------------------------------------------- STORE COPY MOVE ---

def test_store(g):
    a = fresh("Sto")
    with raw(g) as c:
        with_msgs(c, a, 3)
        c.cmd(f'SELECT "{a}"')
        u, t = c.cmd("STORE 1 +FLAGS (\\Seen)")
        assert status_of(t) == "OK", t
        assert re.fullmatch(r"\* 1 FETCH \(FLAGS \((\\Recent )?\\Seen"
                            r"( \\Recent)?\)\)", u[0]), u
        names = files_in(folder_dir(g, a))
        assert sum(n.endswith(":2,S") for n in names) == 1, names
        u, t = c.cmd("STORE 1:2 +FLAGS.SILENT (\\Flagged $Label1)")
        assert status_of(t) == "OK" and not any("FETCH" in x for x in u), u
        u, t = c.cmd("UID STORE 2 -FLAGS (\\Flagged)")
        assert re.match(r"\* 2 FETCH \(FLAGS \(.*\) UID 2\)", u[0]), u
        assert "\\Flagged" not in u[0] and "$Label1" in u[0]
        u, t = c.cmd("STORE 3 FLAGS (\\Answered)")
        assert "\\Answered" in u[0]
        u, t = c.cmd("STORE 4 +FLAGS (\\Seen)")
        assert status_of(t) == "BAD", t
        u, t = c.cmd("STORE 1 +FLAGS (\\Bogus)")
        assert status_of(t) == "BAD", t
        u, t = c.cmd("STORE 1 (UNCHANGEDSINCE 5) +FLAGS (\\Seen)")
        assert status_of(t) == "BAD", t
        c.cmd(f'EXAMINE "{a}"')
        u, t = c.cmd("STORE 1 +FLAGS (\\Deleted)")
        assert status_of(t) == "NO", t


def test_copy_and_move(g):
    a, b = fresh("Src"), fresh("Dst")
    with raw(g) as c:
        with_msgs(c, a, 3)
        with_msgs(c, b, 1)
        c.cmd(f'SELECT "{a}"')
        _, t = c.cmd(f'COPY 1:2 "{b}"')
        m = re.match(r"\S+ OK \[COPYUID (\d+) 1:2 2:3\]", t)
        assert m, t
        assert len(files_in(folder_dir(g, b))) == 3
        _, t = c.cmd(f'COPY 1 "{b}-missing"')
        assert (status_of(t), code_of(t)) == ("NO", "TRYCREATE"), t
        _, t = c.cmd(f'MOVE 1 "{b}-missing"')
        assert (status_of(t), code_of(t)) == ("NO", "TRYCREATE"), t
        u, t = c.cmd(f'UID MOVE 2:3 "{b}"')
        assert status_of(t) == "OK", t
        assert re.match(r"\* OK \[COPYUID \d+ 2:3 4:5\]", u[0]), u
        assert u[1:3] == ["* 2 EXPUNGE", "* 2 EXPUNGE"], u
        assert len(files_in(folder_dir(g, a))) == 1
        assert len(files_in(folder_dir(g, b))) == 5
        _, t = c.cmd('COPY 5 "INBOX"')
        assert status_of(t) == "BAD", t
        c.cmd(f'EXAMINE "{a}"')
        _, t = c.cmd(f'MOVE 1 "{b}"')
        assert status_of(t) == "NO", t


def test_expunge_close_unselect(g):
    a = fresh("Ex")
    with raw(g) as c:
        with_msgs(c, a, 5)
        c.cmd(f'SELECT "{a}"')
        c.cmd("STORE 2,4 +FLAGS.SILENT (\\Deleted)")
        u, t = c.cmd("EXPUNGE")
        assert status_of(t) == "OK"
        assert u == ["* 2 EXPUNGE", "* 3 EXPUNGE"], u
        assert len(files_in(folder_dir(g, a))) == 3
        c.cmd("STORE 1:3 +FLAGS.SILENT (\\Deleted)")
        u, t = c.cmd("UID EXPUNGE 3")
        assert u == ["* 2 EXPUNGE"], u
        c.cmd("STORE 1 -FLAGS.SILENT (\\Deleted)")
        _, t = c.cmd("UNSELECT")
        assert status_of(t) == "OK"
        assert len(files_in(folder_dir(g, a))) == 2
        c.cmd(f'EXAMINE "{a}"')
        u, t = c.cmd("EXPUNGE")
        assert status_of(t) == "NO", t
        _, t = c.cmd("CLOSE")
        assert status_of(t) == "OK"
        assert len(files_in(folder_dir(g, a))) == 2
        c.cmd(f'SELECT "{a}"')
        u, t = c.cmd("CLOSE")
        assert status_of(t) == "OK" and not u, u
        assert len(files_in(folder_dir(g, a))) == 1
        c.cmd(f'SELECT "{a}"')
        _, t = c.cmd("CHECK")
        assert status_of(t) == "OK", t
        _, t = c.cmd("UNSELECT")
        _, t = c.cmd("EXPUNGE")
        assert status_of(t) == "BAD", "no folder selected"
        _, t = c.cmd("CHECK")
        assert status_of(t) == "BAD", "no folder selected"


def test_changes_reported_after_commands_not_during_store(g):
    a = fresh("Chg")
    with raw(g) as c1, raw(g) as c2:
        with_msgs(c1, a, 3)
        c1.cmd(f'SELECT "{a}"')
        c2.cmd(f'SELECT "{a}"')
        c2.cmd("STORE 2 +FLAGS.SILENT (\\Deleted)")
        c2.cmd("STORE 3 +FLAGS.SILENT (\\Flagged)")
        c2.cmd("EXPUNGE")
        _, t = c2.append(a, message("new one"))
        assert status_of(t) == "OK"
        us, t = c1.cmd("STORE 1 +FLAGS (\\Seen)")
        assert status_of(t) == "OK", t
        assert not any("EXPUNGE" in x for x in us), us
        u, t = c1.cmd("NOOP")
        assert status_of(t) == "OK"
        assert "* 2 EXPUNGE" in u, u
        # the new message may be announced during the STORE (before the
        # EXPUNGE, as 4) or at the NOOP (after it, as 3)
        assert "* 4 EXISTS" in us or "* 3 EXISTS" in u, (us, u)
        # the flag change of old message 3 (2 after the EXPUNGE) shows
        # up during the STORE or at the NOOP
        flagged = [x for x in us if x.startswith("* 3 FETCH")] + \
                  [x for x in u if x.startswith("* 2 FETCH")]
        assert flagged and "\\Flagged" in flagged[0], (us, u)


def test_two_sessions_see_each_others_folders(g):
    a = fresh("Two")
    with raw(g) as c1, raw(g) as c2:
        _, t = c1.cmd(f'CREATE "{a}"')
        u, _ = c2.cmd(f'LIST "" "{a}"')
        assert list_entry(u, a) is not None
        c1.append(a, message("m"))
        u, _ = c2.cmd(f'STATUS "{a}" (MESSAGES)')
        assert "MESSAGES 1" in u[0]


def test_not_logged_in(g):
    with Raw(g.imap_port) as c:
        _, t = c.cmd('SELECT "INBOX"')
        assert status_of(t) == "BAD", t


def test_delivered_mail_in_inbox(g):
    with raw(g) as c:
        u, _ = c.cmd('STATUS "INBOX" (MESSAGES)')
        before = int(re.search(r"MESSAGES (\d+)", u[0]).group(1))
        deliver(g, ALICE, message(fresh("Dlv")))
        g.wait_messages(ALICE, before + 1)
        u, _ = c.cmd('SELECT "INBOX"')
        assert f"* {before + 1} EXISTS" in u, u


def test_append_large_streamed(g):
    """A message bigger than what the parser holds in memory is streamed
    to a file by the core and saved from there, byte for byte."""
    a = fresh("Big")
    body = "".join(f"line {i:07d} " + "y" * 60 + "\n" for i in range(20000))
    msg = message("large", body)
    with raw(g) as c:
        c.cmd(f'CREATE "{a}"')
        u, t = c.append(a, msg, "\\Seen")
        assert status_of(t) == "OK" and "APPENDUID" in t, t
        (f,) = list((folder_dir(g, a) / "cur").iterdir())
        assert f.read_bytes() == msg.replace(b"\r\n", b"\n")
        u, _ = c.cmd(f'STATUS "{a}" (MESSAGES SIZE)')
        assert f"SIZE {len(msg)}" in u[0], u


def test_rename_inbox_moves_its_messages(g):
    a = fresh("OldInbox")
    with raw(g) as c:
        c.append("INBOX", message(fresh("in")))
        u, _ = c.cmd('STATUS "INBOX" (MESSAGES)')
        n = int(re.search(r"MESSAGES (\d+)", u[0]).group(1))
        assert n >= 1
        _, t = c.cmd(f'RENAME "INBOX" "{a}"')
        assert status_of(t) == "OK", t
        u, _ = c.cmd(f'STATUS "{a}" (MESSAGES)')
        assert f"MESSAGES {n}" in u[0], u
        u, _ = c.cmd('STATUS "INBOX" (MESSAGES)')
        assert "MESSAGES 0" in u[0], u


def test_list_with_reference(g):
    a = fresh("Ref")
    with raw(g) as c:
        c.cmd(f'CREATE "{a}/one"')
        c.cmd(f'CREATE "{a}/two/deep"')
        u, t = c.cmd(f'LIST "{a}/" "%"')
        assert status_of(t) == "OK"
        names = sorted(re.search(r'"/" "?([^"]*)"?$', x).group(1)
                       for x in list_lines(u))
        assert names == [f"{a}/one", f"{a}/two"], u
        assert "\\HasChildren" in list_entry(u, f"{a}/two")


def test_rename_selected_folder(g):
    a = fresh("RenSel")
    with raw(g) as c, raw(g) as other:
        with_msgs(c, a, 2)
        c.cmd(f'SELECT "{a}"')
        _, t = c.cmd(f'RENAME "{a}" "{a}-new"')
        assert status_of(t) == "OK", t
        append_ok(other, f"{a}-new", message("after rename"))
        u, t = c.cmd("NOOP")
        assert status_of(t) == "OK" and "* 3 EXISTS" in u, u
        u, t = c.cmd("STORE 3 +FLAGS (\\Seen)")
        assert status_of(t) == "OK", t
        assert any(n.endswith(":2,S")
                   for n in files_in(folder_dir(g, f"{a}-new"))), u


def test_rename_noselect_parent_moves_inferiors(g):
    """RFC 9051 6.3.6: renaming a name renames its inferiors too, also
    when the name itself is only a \\Noselect parent (Maildir++ keeps no
    directory for it) — as Dovecot does; it was NO [NONEXISTENT]."""
    a, b = fresh("Par"), fresh("Moved")
    with raw(g) as c:
        _, t = c.cmd(f'CREATE "{a}/Mid/Leaf"')
        assert status_of(t) == "OK", t
        _, t = c.cmd(f'CREATE "{a}/Other"')
        assert status_of(t) == "OK", t
        _, t = c.cmd(f'APPEND "{a}/Mid/Leaf" {{12+}}\r\nSubject: x\r\n')
        assert status_of(t) == "OK", t
        u, _ = c.cmd(f'LIST "" "{a}*"')
        assert "\\Noselect" in list_entry(u, a), u
        _, t = c.cmd(f'RENAME "{a}" "{b}"')
        assert t.endswith("OK RENAME completed"), t
        u, _ = c.cmd(f'LIST "" "{a}*"')
        assert list_lines(u) == [], u
        u, _ = c.cmd(f'LIST "" "{b}*"')
        assert "\\Noselect" in list_entry(u, b), u
        assert "\\Noselect" in list_entry(u, f"{b}/Mid"), u
        assert list_entry(u, f"{b}/Mid/Leaf") == {"\\HasNoChildren"}, u
        assert list_entry(u, f"{b}/Other") == {"\\HasNoChildren"}, u
        assert len(files_in(folder_dir(g, f"{b}/Mid/Leaf"))) == 1
        # onto an existing name, under itself, or nothing there at all
        _, t = c.cmd(f'RENAME "{b}/Mid" "{b}/Other"')
        assert (status_of(t), code_of(t)) == ("NO", "ALREADYEXISTS"), t
        _, t = c.cmd(f'RENAME "{b}" "{b}/Sub"')
        assert status_of(t) == "NO", t
        _, t = c.cmd(f'RENAME "{a}" "{b}2"')
        assert (status_of(t), code_of(t)) == ("NO", "NONEXISTENT"), t
