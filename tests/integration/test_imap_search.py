"""
SEARCH and UID SEARCH against the real daemon (RFC 9051 6.4.4, RFC
3501): every search key, OR / NOT / parenthesised nesting, CHARSET
(UTF-8 and US-ASCII; any other is NO [BADCHARSET]), header searches over
RFC 2047 encoded words, body searches over quoted-printable and base64
text in another charset, the IMAP4rev1 SEARCH and IMAP4rev2 ESEARCH
answers, the ESEARCH return options MIN MAX ALL COUNT (RFC 4731) and
SEARCHRES (RFC 5182: SAVE and "$").

The messages, their flags (in the file names) and a keyword (in
dovecot-keywords) are written into the Maildir before the daemon starts.
"""

import imaplib
import os
import re

import pytest

from conftest import PASSWORD, Godwit, _finish, free_port, godwit_base

ALICE = "alice@example.test"

M1 = (
    b'From: "Alice" <alice@example.test>\n'
    b"To: bob@example.test\n"
    b"Cc: carol@example.test\n"
    b"Subject: =?iso-8859-1?q?Caf=E9?= meeting\n"
    b"Date: Tue, 1 Jul 2003 23:52:37 -0700\n"
    b"X-Tag: blue\n"
    b"MIME-Version: 1.0\n"
    b"Content-Type: multipart/mixed; boundary=b\n"
    b"\n"
    b"--b\n"
    b"Content-Type: text/plain; charset=iso-8859-1\n"
    b"Content-Transfer-Encoding: quoted-printable\n"
    b"\n"
    b"Na=EFve text about =\n"
    b"godwits\n"
    b"--b\n"
    b"Content-Type: text/plain; charset=utf-8\n"
    b"Content-Transfer-Encoding: base64\n"
    b"\n"
    b"aGlkZGVuIHdvcmQgaW4gYmFzZTY0\n"
    b"--b\n"
    b"Content-Type: application/octet-stream\n"
    b"\n"
    b"binaryneedle\n"
    b"--b--\n")
M2 = (
    b"From: bob@example.test\n"
    b"To: alice@example.test\n"
    b"Subject: hello world\n"
    b"Date: Fri, 5 Mar 2010 08:00:00 +0000\n"
    b"\n"
    b"plain body text\n" + b"padding line\n" * 200)
M3 = (
    b"From: carol@example.test\n"
    b"To: alice@example.test\n"
    b"Bcc: dave@example.test\n"
    b"Subject: =?utf-8?b?w5xiZXIgZ29kd2l0cw==?=\n"
    b"Date: Wed, 1 Jan 2020 12:00:00 +0100\n"
    b"\n"
    b"something else\n")

# name flags, mtime
FILES = [
    (M1, "S", 1057128757),	# 2003-07-02 06:52 UTC, \Seen
    (M2, "FRa", 1267776000),	# 2010-03-05, \Flagged \Answered, "work"
    (M3, "DT", 1577880000),	# 2020-01-01 12:00 UTC, \Draft \Deleted
]


@pytest.fixture(scope="module")
def g(request, godwit_root):
    gw = Godwit(godwit_base(godwit_root, "imap_search"))
    gw.imap_port = free_port()
    gw.config["listeners"] += [
        {"name": "imap", "protocol": "imap", "plaintext_auth": True,
         "listen": [f"127.0.0.1:{gw.imap_port}"]},
    ]
    gw.write_config()
    md = gw.maildir(ALICE)
    for sub in ("cur", "new", "tmp"):
        os.makedirs(md / sub, exist_ok=True)
    for i, (m, flags, mtime) in enumerate(FILES):
        w = len(m.replace(b"\n", b"\r\n"))
        p = md / "cur" / (f"{1000000000 + i}.M{i}P1.test,S={len(m)},"
                          f"W={w}:2,{flags}")
        p.write_bytes(m)
        os.utime(p, (mtime, mtime))
    (md / "dovecot-keywords").write_text("0 work\n")
    gw.hand_over_mail()
    gw.start()
    yield gw
    problems = _finish(gw)
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


def login(g, rev2=False):
    c = imaplib.IMAP4("127.0.0.1", g.imap_port, timeout=30)
    c.login(ALICE, PASSWORD)
    if rev2:
        typ, _ = c._simple_command("ENABLE", "IMAP4rev2")
        assert typ == "OK"
    typ, _ = c.select("INBOX")
    assert typ == "OK"
    return c


@pytest.fixture(scope="module")
def c1(g):
    c = login(g)
    yield c
    c.logout()


def search(c, *keys, charset=None):
    typ, data = c.search(charset, *keys)
    assert typ == "OK", data
    return [int(x) for x in data[0].split()]


KEYS = [
    ("ALL", [1, 2, 3]),
    ("SEEN", [1]), ("UNSEEN", [2, 3]),
    ("FLAGGED", [2]), ("UNFLAGGED", [1, 3]),
    ("ANSWERED", [2]), ("UNANSWERED", [1, 3]),
    ("DELETED", [3]), ("UNDELETED", [1, 2]),
    ("DRAFT", [3]), ("UNDRAFT", [1, 2]),
    ("KEYWORD work", [2]), ("UNKEYWORD work", [1, 3]),
    ("KEYWORD nosuch", []), ("UNKEYWORD nosuch", [1, 2, 3]),
    ("RECENT", []), ("OLD", [1, 2, 3]), ("NEW", []),
    ("LARGER 1000", [2]), ("SMALLER 300", [3]),
    ("2:3", [2, 3]), ("*", [3]), ("1,3", [1, 3]),
    ("BEFORE 2-Jul-2003", []), ("BEFORE 3-Jul-2003", [1]),
    ("ON 5-Mar-2010", [2]), ("SINCE 1-Jan-2020", [3]),
    ("SINCE 5-Mar-2010", [2, 3]),
    ("SENTON 1-Jul-2003", [1]), ("SENTBEFORE 2-Jul-2003", [1]),
    ("SENTSINCE 5-Mar-2010", [2, 3]), ('SENTON "1-Jan-2020"', [3]),
    ("FROM alice", [1]), ("FROM EXAMPLE.TEST", [1, 2, 3]),
    ("TO alice", [2, 3]), ("CC carol", [1]), ("BCC dave", [3]),
    ("SUBJECT hello", [2]), ("SUBJECT meeting", [1]),
    ('SUBJECT "=?iso"', []),
    ("HEADER X-Tag blue", [1]), ('HEADER X-Tag ""', [1]),
    ("HEADER x-tag red", []),
    ("BODY godwits", [1]), ('BODY "about godwits"', [1]),
    ('BODY "hidden WORD"', [1]), ("BODY binaryneedle", []),
    ("BODY padding", [2]), ("BODY alice", []),
    ("TEXT alice", [1, 2, 3]), ("TEXT godwits", [1, 3]),
    ("TEXT nothing-like-this", []),
    ("NOT SEEN", [2, 3]), ("NOT NOT SEEN", [1]),
    ("OR SEEN DELETED", [1, 3]), ("OR (FLAGGED) (FROM carol)", [2, 3]),
    ("(UNSEEN UNDELETED)", [2]),
    ("OR (NOT DRAFT SUBJECT hello) (SEEN BODY godwits)", [1, 2]),
    ("UNSEEN NOT (DELETED OR FLAGGED DRAFT)", [2]),
    ("1:* UNDELETED", [1, 2]),
]


@pytest.mark.parametrize("keys,want", KEYS)
def test_keys_rev1(c1, keys, want):
    assert search(c1, keys) == want


def test_utf8_and_charsets(c1):
    assert search(c1, "ALL", charset="US-ASCII") == [1, 2, 3]
    assert search(c1, "FROM bob", charset="UTF-8") == [2]
    # UTF-8 needles as literals: decoded headers and converted bodies
    for key, needle, want in (("SUBJECT", "café", [1]),
                              ("SUBJECT", "über GODWITS", [3]),
                              ("BODY", "naïve", [1]),
                              ("TEXT", "Über", [3])):
        c1.literal = needle.encode()
        assert search(c1, key, charset="UTF-8") == want, needle
    typ, data = c1._simple_command("SEARCH", "CHARSET", "ISO-8859-1",
                                   "ALL")
    assert typ == "NO"
    assert data[0].startswith(b"[BADCHARSET (UTF-8 US-ASCII)]")


def test_bad_keys(g):
    # each BAD counts towards the session's error limit: a fresh one
    c = login(g)
    try:
        for bad in ("FOO", "LARGER", "LARGER x", "ON 32-Jan-2003",
                    "BEFORE 1-Jan-03", "OR SEEN", "NOT", "HEADER X"):
            with pytest.raises(imaplib.IMAP4.error):
                c.search(None, bad)
    finally:
        c.logout()
    c = login(g)
    try:
        for bad in ("UID x", "0", "(SEEN", "ALL)"):
            with pytest.raises(imaplib.IMAP4.error):
                c.search(None, bad)
    finally:
        c.logout()


def esearch(c, *args, uid=False):
    cmd = ("UID", "SEARCH") if uid else ("SEARCH",)
    typ, data = c._simple_command(*cmd, *args)
    assert typ == "OK", data
    _, data = c._untagged_response(typ, data, "ESEARCH")
    return [d for d in data if d is not None]


def uids(c):
    typ, data = c.fetch("1:*", "(UID)")
    return [int(re.search(rb"UID (\d+)", d).group(1)) for d in data]


def test_esearch_and_rev2(g):
    c = login(g, rev2=True)
    try:
        u = uids(c)
        tag_re = rb'\(TAG "[A-Z0-9]+"\)'
        d = esearch(c, "UNSEEN")
        assert re.fullmatch(tag_re + rb" ALL 2:3", d[0]), d
        d = esearch(c, "KEYWORD", "nosuch")
        assert re.fullmatch(tag_re, d[0]), d
        d = esearch(c, "UNDELETED", uid=True)
        assert re.fullmatch(tag_re + b" UID ALL %d:%d" % (u[0], u[1]),
                            d[0]), d
        typ, data = c._simple_command("SEARCH", "ALL")
        assert c.untagged_responses.get("SEARCH") is None
    finally:
        c.logout()


def test_return_options(c1):
    tag_re = rb'\(TAG "[A-Z0-9]+"\)'
    d = esearch(c1, "RETURN", "(MIN MAX COUNT ALL)", "ALL")
    assert re.fullmatch(tag_re + rb" MIN 1 MAX 3 COUNT 3 ALL 1:3", d[0]), d
    d = esearch(c1, "RETURN", "(COUNT)", "SEEN")
    assert re.fullmatch(tag_re + rb" COUNT 1", d[0]), d
    d = esearch(c1, "RETURN", "()", "OR SEEN DRAFT")
    assert re.fullmatch(tag_re + rb" ALL 1,3", d[0]), d
    d = esearch(c1, "RETURN", "(MIN MAX COUNT)", "KEYWORD nosuch")
    assert re.fullmatch(tag_re + rb" COUNT 0", d[0]), d
    with pytest.raises(imaplib.IMAP4.error, match="Invalid RETURN"):
        c1._simple_command("SEARCH", "RETURN", "(FOO)", "ALL")


def test_searchres(g):
    c = login(g)
    try:
        u = uids(c)
        # SAVE alone: no ESEARCH answer, the result kept
        typ, data = c._simple_command("UID", "SEARCH", "RETURN", "(SAVE)",
                                      "OR FLAGGED DRAFT")
        assert typ == "OK"
        assert c.untagged_responses.get("ESEARCH") is None
        typ, data = c.uid("FETCH", "$", "(UID)")
        assert typ == "OK"
        assert [int(re.search(rb"UID (\d+)", x).group(1))
                for x in data] == [u[1], u[2]]
        assert search(c, "$") == [2, 3]
        assert search(c, "UID $ SEEN") == []
        assert search(c, "NOT $") == [1]
        # SAVE with MIN: only the minimum is kept
        d = esearch(c, "RETURN", "(SAVE MIN)", "ALL")
        assert d[0].endswith(b" MIN 1")
        assert search(c, "$") == [1]
        # a search that finds nothing saves nothing
        esearch(c, "RETURN", "(SAVE)", "KEYWORD nosuch")
        assert search(c, "$") == []
    finally:
        c.logout()


# ---- the header cache (godwit-cache) ----------------------------------

def _fnv(data, h=2166136261):
    for b in data:
        h = ((h ^ b) * 16777619) & 0xffffffff
    return h


def hc_record(name, hdr, bad_sum=False):
    lens = len(name).to_bytes(2, "little") + len(hdr).to_bytes(4, "little")
    s = _fnv(lens + name + hdr) ^ (1 if bad_sum else 0)
    return b"GWH1" + lens + s.to_bytes(4, "little") + name + hdr


def hc_msg(subject, frm):
    return (f"From: {frm}\r\nTo: x@example.test\r\nSubject: {subject}\r\n"
            f"Date: Mon, 7 Dec 2026 10:00:00 +0000\r\n\r\nbody {subject}\r\n"
            ).encode()


def test_header_cache(g):
    md = g.maildir(ALICE) / ".Hc"
    cache = md / "godwit-cache"
    c = login(g)
    try:
        assert c.create("Hc")[0] == "OK"
        for subj, frm in (("alpha one", "ann@a.test"),
                          ("beta two", "ben@b.test"),
                          ("gamma three", "gil@c.test")):
            assert c.append("Hc", None, None, hc_msg(subj, frm))[0] == "OK"
        assert c.select("Hc")[0] == "OK"
        # the first header search reads the files and fills the cache
        assert search(c, "SUBJECT beta") == [2]
        assert search(c, "FROM gil") == [3]
    finally:
        c.logout()
    data = cache.read_bytes()
    assert data.count(b"GWH1") == 3
    names = sorted(os.listdir(md / "cur"))
    base = [n.split(":")[0].encode() for n in names]
    st = os.stat(md)

    def put(blob):
        cache.write_bytes(blob)
        os.chown(cache, st.st_uid, st.st_gid)

    # a second session answers from the cache: a valid record that
    # says otherwise than the file is believed (the proof it is read)
    fake = b"Subject: zeta cached\r\nFrom: ann@a.test\r\n"
    put(hc_record(base[0], fake))
    c = login(g)
    try:
        assert c.select("Hc")[0] == "OK"
        assert search(c, "SUBJECT zeta") == [1]
        assert search(c, "SUBJECT beta") == [2]
    finally:
        c.logout()
    # garbage, a record with a bad sum, impossible lengths and a torn
    # record: each skipped, the files read, the right answers
    lie = b"Subject: omega lie\r\n"
    put(os.urandom(64) + hc_record(base[1], lie, bad_sum=True) +
        b"GWH1\xff\xff\xff\xff\xff\xff\0\0\0\0" + b"\0" * 40 +
        b"GWH1" + b"\x05\0\x00\x00\x01\x00" + b"1234" +
        hc_record(base[2], lie)[:-5])
    c = login(g)
    try:
        assert c.select("Hc")[0] == "OK"
        assert search(c, "SUBJECT omega") == []
        assert search(c, "SUBJECT beta") == [2]
        assert search(c, "SUBJECT gamma") == [3]
        assert search(c, "SUBJECT alpha", "FROM ann") == [1]
        # expunge the first, deliver a fourth
        c.store("1", "+FLAGS", "(\\Deleted)")
        assert c.expunge()[0] == "OK"
        assert c.append("Hc", None, None,
                        hc_msg("delta four", "dan@d.test"))[0] == "OK"
    finally:
        c.logout()
    c = login(g)
    try:
        assert c.select("Hc")[0] == "OK"
        assert search(c, "SUBJECT alpha") == []
        assert search(c, "SUBJECT delta") == [3]
        assert search(c, "OR FROM ben FROM dan") == [1, 3]
        assert search(c, "SENTON 7-Dec-2026 SUBJECT gamma") == [2]
        assert search(c, "BODY delta") == [3]
        # a folded Subject: the line end is not part of the value
        folded = (b"From: fay@f.test\r\nSubject: folded\r\n line here\r\n"
                  b"\r\nbody\r\n")
        assert c.append("Hc", None, None, folded)[0] == "OK"
        assert c.noop()[0] == "OK"
        assert search(c, 'SUBJECT "folded line here"') == [4]
    finally:
        c.logout()
    c = login(g)
    try:
        assert c.select("Hc")[0] == "OK"
        assert search(c, 'SUBJECT "folded line here"') == [4]
        assert search(c, 'SUBJECT "folded  line"') == []
    finally:
        c.logout()
