"""
FETCH and UID FETCH against the real daemon (RFC 9051 6.4.5, RFC 3501,
RFC 3516 BINARY): every item and macro in the IMAP4rev1 and IMAP4rev2
forms, BODYSTRUCTURE / BODY / ENVELOPE against exact strings, sections
of a multipart message with nested parts, an attachment and an
encapsulated message, partials at their boundaries, BINARY of base64 and
quoted-printable parts, \\Seen set by BODY[] and not by BODY.PEEK[] (nor
in EXAMINE), and a large message streamed whole and in pieces. BODY[] is
compared with the stored file in its CRLF form.

The messages are written into the Maildir before the daemon starts (as
another delivery agent would), so their bytes are known exactly.
"""

import imaplib
import os
import re
import time

import pytest

from conftest import PASSWORD, Godwit, _finish, free_port, godwit_base

ALICE = "alice@example.test"
BOB = "bob@example.test"
MTIME = 1057128757		# 2003-07-02 06:52:37 UTC

SIMPLE = (
    b'From: "Alice A." <alice@example.test>\n'
    b"To: bob@example.test, Group: c@d.test, e@f.test;\n"
    b"Subject: =?utf-8?q?caf=C3=A9?= time\n"
    b"Date: Tue, 1 Jul 2003 10:52:37 +0200\n"
    b"Message-ID: <1@example.test>\n"
    b"\n"
    b"hello\n"
    b"world\n")

MULTI = (
    b"From: a@b.test\n"
    b"Subject: multi\n"
    b"MIME-Version: 1.0\n"
    b'Content-Type: multipart/mixed; boundary="outer"\n'
    b"\n"
    b"preamble\n"
    b"--outer\n"
    b"Content-Type: text/plain; charset=utf-8\n"
    b"Content-Transfer-Encoding: quoted-printable\n"
    b"\n"
    b"caf=C3=A9 =\n"
    b"ok\n"
    b"--outer\n"
    b"Content-Type: multipart/alternative; boundary=inner\n"
    b"\n"
    b"--inner\n"
    b"\n"
    b"plain\n"
    b"--inner\n"
    b"Content-Type: text/html\n"
    b"\n"
    b"<b>x</b>\n"
    b"--inner--\n"
    b"--outer\n"
    b'Content-Type: application/octet-stream; name="a.bin"\n'
    b"Content-Transfer-Encoding: base64\n"
    b'Content-Disposition: attachment; filename="a.bin"\n'
    b"Content-Language: en, fr\n"
    b"\n"
    b"AAEC\n"
    b"/w==\n"
    b"--outer\n"
    b"Content-Type: message/rfc822\n"
    b"\n"
    b"From: c@d.test\n"
    b"Subject: inner\n"
    b"\n"
    b"body\n"
    b"--outer--\n"
    b"epilogue\n")

UUE = (b"Subject: uu\nContent-Type: text/plain\n"
       b"Content-Transfer-Encoding: x-uuencode\n\nbegin 644 x\n`\nend\n")

NOEOL = b"Subject: noeol\n\nno line end"

LARGE_LINE = b"0123456789abcdefghijklmnopqrstuvwxyz" * 2 + b"\n"


def large():
    lines = 8 * 1024 * 1024 // len(LARGE_LINE)
    return (b"From: big@example.test\nSubject: large\n\n" +
            LARGE_LINE * lines)


MESSAGES = [SIMPLE, MULTI, None, b"Subject: last\n\nshort\n"]

SIMPLE_BS = (
    b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 14 2 '
    b'NIL NIL NIL NIL)')
SIMPLE_BODY = (
    b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 14 2)')
SIMPLE_ENV = (
    b'("Tue, 1 Jul 2003 10:52:37 +0200" "=?utf-8?q?caf=C3=A9?= time" '
    b'(("Alice A." NIL "alice" "example.test")) '
    b'(("Alice A." NIL "alice" "example.test")) '
    b'(("Alice A." NIL "alice" "example.test")) '
    b'((NIL NIL "bob" "example.test")(NIL NIL "Group" NIL)'
    b'(NIL NIL "c" "d.test")(NIL NIL "e" "f.test")(NIL NIL NIL NIL)) '
    b'NIL NIL NIL "<1@example.test>")')
MULTI_BODY = (
    b'(("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 15 2)'
    b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 5 1)'
    b'("text" "html" NIL NIL NIL "7bit" 8 1) "alternative")'
    b'("application" "octet-stream" ("name" "a.bin") NIL NIL "base64" 10)'
    b'("message" "rfc822" NIL NIL NIL "7bit" 38 '
    b'(NIL "inner" ((NIL NIL "c" "d.test")) ((NIL NIL "c" "d.test")) '
    b'((NIL NIL "c" "d.test")) NIL NIL NIL NIL NIL) '
    b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 4 1) 4) '
    b'"mixed")')
MULTI_BS = (
    b'(("text" "plain" ("charset" "utf-8") NIL NIL "quoted-printable" 15 2 '
    b'NIL NIL NIL NIL)'
    b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 5 1 '
    b'NIL NIL NIL NIL)'
    b'("text" "html" NIL NIL NIL "7bit" 8 1 NIL NIL NIL NIL) "alternative" '
    b'("boundary" "inner") NIL NIL NIL)'
    b'("application" "octet-stream" ("name" "a.bin") NIL NIL "base64" 10 '
    b'NIL ("attachment" ("filename" "a.bin")) ("en" "fr") NIL)'
    b'("message" "rfc822" NIL NIL NIL "7bit" 38 '
    b'(NIL "inner" ((NIL NIL "c" "d.test")) ((NIL NIL "c" "d.test")) '
    b'((NIL NIL "c" "d.test")) NIL NIL NIL NIL NIL) '
    b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 4 1 '
    b'NIL NIL NIL NIL) 4 NIL NIL NIL NIL) '
    b'"mixed" ("boundary" "outer") NIL NIL NIL)')


def crlf(b):
    return b.replace(b"\n", b"\r\n")


def place(g, user, msgs):
    """Writes msgs into user's Maildir cur/ (unseen, mtime MTIME)."""
    md = g.maildir(user)
    for sub in ("cur", "new", "tmp"):
        os.makedirs(md / sub, exist_ok=True)
    for i, m in enumerate(msgs):
        # W= as godwit and POP3 count it: a last line without its end
        # gets one
        w = len(crlf(m)) + (0 if m.endswith(b"\n") else 2)
        name = f"{1000000000 + i}.M{i}P1.test,S={len(m)},W={w}:2,"
        p = md / "cur" / name
        p.write_bytes(m)
        os.utime(p, (MTIME, MTIME))
    g.hand_over_mail()


# ",W=" that lies (another program named the files): far too large, below
# the stored size, and two within what the stored form allows
W_LIES = [10**12, 3, len(crlf(SIMPLE)) + 5, len(SIMPLE)]


def place_w(g, user, first, msgs):
    """Writes (message, W) pairs into user's cur/, numbered from first."""
    md = g.maildir(user)
    for i, (m, w) in enumerate(msgs, first):
        p = md / "cur" / f"{1000000000 + i}.M{i}P1.test,S={len(m)},W={w}:2,"
        p.write_bytes(m)
        os.utime(p, (MTIME, MTIME))
    g.hand_over_mail()

# header-only FETCH (folder .Hdr of BOB): (message, its header as sent)
HDR_PAD = b"".join(b"X-Pad-%04d: %s\n" % (i, b"p" * 60)
                   for i in range(1200))		# ~ 86 KiB
HDR_MSGS = [
    (b"Subject: fold\nX-Long: one\n two\n\tthree\nFrom: a@b.test\n\nbody\n",
     b"Subject: fold\r\nX-Long: one\r\n two\r\n\tthree\r\n"
     b"From: a@b.test\r\n\r\n"),
    (b"Subject: nobody\nFrom: a@b.test\n\n",
     b"Subject: nobody\r\nFrom: a@b.test\r\n\r\n"),
    (b"\nonly a body\n", b"\r\n"),
    (b"Subject: big\n" + HDR_PAD + b"\nbody\n",
     crlf(b"Subject: big\n" + HDR_PAD + b"\n")),
    # no empty line: the header is the whole file, sent as it is stored
    (b"Subject: noend\nX-Last: no line end",
     b"Subject: noend\r\nX-Last: no line end"),
]


def place_hdr(g):
    md = g.maildir(BOB) / ".Hdr"
    for sub in ("cur", "new", "tmp"):
        os.makedirs(md / sub, exist_ok=True)
    for i, (m, _) in enumerate(HDR_MSGS):
        w = len(crlf(m)) + (0 if m.endswith(b"\n") else 2)
        p = md / "cur" / f"{1000000000 + i}.H{i}P1.test,S={len(m)},W={w}:2,"
        p.write_bytes(m)
        os.utime(p, (MTIME, MTIME))
    g.hand_over_mail()


@pytest.fixture(scope="module")
def g(request, godwit_root):
    gw = Godwit(godwit_base(godwit_root, "imap_fetch"))
    gw.imap_port = free_port()
    gw.config["listeners"] += [
        {"name": "imap", "protocol": "imap", "plaintext_auth": True,
         "listen": [f"127.0.0.1:{gw.imap_port}"]},
    ]
    gw.write_config()
    MESSAGES[2] = large()
    place(gw, ALICE, MESSAGES)
    place(gw, BOB, [SIMPLE, MULTI, SIMPLE, UUE, NOEOL])
    place_w(gw, BOB, 5, [(SIMPLE, w) for w in W_LIES])
    place_hdr(gw)
    gw.start()
    yield gw
    problems = _finish(gw)
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


def login(g, user=ALICE, rev2=False, examine=False):
    c = imaplib.IMAP4("127.0.0.1", g.imap_port, timeout=60)
    c.login(user, PASSWORD)
    if rev2:
        typ, _ = c._simple_command("ENABLE", "IMAP4rev2")
        assert typ == "OK"
    typ, _ = c.select("INBOX", readonly=examine)
    assert typ == "OK"
    return c


def fetch(c, seq, items, uid=False):
    if uid:
        typ, data = c.uid("FETCH", seq, items)
    else:
        typ, data = c.fetch(seq, items)
    assert typ == "OK", data
    return data


def literal(data):
    """The one literal of a one-item FETCH response."""
    lits = [d[1] for d in data if isinstance(d, tuple)]
    assert len(lits) == 1, data
    return lits[0]


@pytest.mark.parametrize("rev2", [False, True])
def test_body_is_the_file_in_crlf(g, rev2):
    c = login(g, rev2=rev2)
    try:
        for i, m in enumerate(MESSAGES, 1):
            data = fetch(c, str(i), "(RFC822.SIZE BODY.PEEK[])")
            head = data[0][0]
            assert f"RFC822.SIZE {len(crlf(m))}".encode() in head
            assert re.search(rb"BODY\[\] \{(\d+)\}$", head)
            assert literal(data) == crlf(m)
        data = fetch(c, "4", "(RFC822)")
        assert b"RFC822 {" in data[0][0]
        assert literal(data) == crlf(MESSAGES[3])
    finally:
        c.logout()


@pytest.mark.parametrize("rev2", [False, True])
def test_structures_exact(g, rev2):
    c = login(g, rev2=rev2)
    try:
        d = fetch(c, "1", "(BODYSTRUCTURE)")
        assert d[0] == b"1 (BODYSTRUCTURE " + SIMPLE_BS + b")"
        d = fetch(c, "1", "(ENVELOPE)")
        assert d[0] == b"1 (ENVELOPE " + SIMPLE_ENV + b")"
        d = fetch(c, "2", "(BODY)")
        assert d[0] == b"2 (BODY " + MULTI_BODY + b")"
        d = fetch(c, "2", "(BODYSTRUCTURE)")
        assert d[0] == b"2 (BODYSTRUCTURE " + MULTI_BS + b")"
    finally:
        c.logout()


SECTIONS = [
    ("1", "[TEXT]", b"hello\r\nworld\r\n"),
    ("1", "[1]", b"hello\r\nworld\r\n"),
    ("1", "[HEADER.FIELDS (SUBJECT DATE)]",
     b"Subject: =?utf-8?q?caf=C3=A9?= time\r\n"
     b"Date: Tue, 1 Jul 2003 10:52:37 +0200\r\n\r\n"),
    ("1", "[HEADER.FIELDS.NOT (To Subject Date Message-ID)]",
     b'From: "Alice A." <alice@example.test>\r\n\r\n'),
    ("1", "[HEADER]", crlf(SIMPLE.split(b"\n\n")[0] + b"\n\n")),
    ("2", "[1]", b"caf=C3=A9 =\r\nok"),
    ("2", "[1.MIME]", b"Content-Type: text/plain; charset=utf-8\r\n"
     b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"),
    ("2", "[2.1]", b"plain"),
    ("2", "[2.2]", b"<b>x</b>"),
    ("2", "[2.2.MIME]", b"Content-Type: text/html\r\n\r\n"),
    ("2", "[3]", b"AAEC\r\n/w=="),
    ("2", "[4]", b"From: c@d.test\r\nSubject: inner\r\n\r\nbody"),
    ("2", "[4.HEADER]", b"From: c@d.test\r\nSubject: inner\r\n\r\n"),
    ("2", "[4.HEADER.FIELDS (subject)]", b"Subject: inner\r\n\r\n"),
    ("2", "[4.TEXT]", b"body"),
    ("2", "[4.1]", b"body"),
    ("2", "[TEXT]<0.8>", b"preamble"),
    ("2", "[]<0.4>", b"From"),
    ("1", "[TEXT]<5.3>", b"\r\nw"),
    ("1", "[TEXT]<6.100>", b"\nworld\r\n"),
    ("1", "[TEXT]<13.1>", b"\n"),
]


@pytest.mark.parametrize("seq,spec,want", SECTIONS)
def test_sections(g, seq, spec, want):
    c = login(g, rev2=True)
    try:
        data = fetch(c, seq, f"(BODY.PEEK{spec})")
        echo = spec.split("<")[0].upper()
        m = re.match(rb"%s \(BODY(\[[^]]*\])(<\d+>)? \{(\d+)\}$" %
                     seq.encode(), data[0][0])
        assert m, data
        assert m.group(1).upper().replace(b'"', b"") == echo.encode()
        if "<" in spec:
            assert m.group(2) == b"<" + spec.split("<")[1].split(".")[
                0].encode() + b">"
        assert literal(data) == want
    finally:
        c.logout()


def test_missing_parts_and_past_the_end(g):
    c = login(g)
    try:
        d = fetch(c, "1", "(BODY.PEEK[2])")
        assert d[0] == b"1 (BODY[2] NIL)"
        d = fetch(c, "2", "(BODY.PEEK[2.3] BODY.PEEK[1.HEADER])")
        assert d[0] == b"2 (BODY[2.3] NIL BODY[1.HEADER] NIL)"
        d = fetch(c, "1", "(BODY.PEEK[TEXT]<14.5>)")
        assert d[0] == (b"1 (BODY[TEXT]<14> {0}", b"")
        d = fetch(c, "1", "(BODY.PEEK[TEXT]<1000.5>)")
        assert d[0] == (b"1 (BODY[TEXT]<1000> {0}", b"")
        for bad in ("(BODY[FOO])", "(BODY.PEEK[1.]<0.1>)",
                    "(BODY[TEXT]<1.0>)", "(NOSUCH)", "(BINARY[TEXT])"):
            with pytest.raises(imaplib.IMAP4.error):
                c.fetch("1", bad)
        with pytest.raises(imaplib.IMAP4.error):
            c.fetch("99", "(UID)")
    finally:
        c.logout()


def test_binary(g):
    c = login(g, rev2=True)
    try:
        d = fetch(c, "2", "(BINARY.PEEK[3])")
        assert d[0][0] == b"2 (BINARY[3] ~{4}"
        assert d[0][1] == b"\x00\x01\x02\xff"
        d = fetch(c, "2", "(BINARY.SIZE[3] BINARY.SIZE[1] BINARY.SIZE[2.1])")
        assert d[0] == (b"2 (BINARY.SIZE[3] 4 BINARY.SIZE[1] 8 "
                        b"BINARY.SIZE[2.1] 5)")
        d = fetch(c, "2", "(BINARY.PEEK[1])")
        assert d[0][1] == "café ok".encode()
        d = fetch(c, "2", "(BINARY.PEEK[3]<1.2>)")
        assert d[0] == (b"2 (BINARY[3]<1> ~{2}", b"\x01\x02")
        d = fetch(c, "1", "(BINARY.PEEK[])")
        assert d[0][1] == crlf(SIMPLE)
    finally:
        c.logout()
    c = login(g, BOB, examine=True)
    try:
        typ, data = c._simple_command("FETCH", "4", "(BINARY.PEEK[1])")
        assert typ == "NO"
        assert data[-1].startswith(b"[UNKNOWN-CTE]"), data
        # BODY[] of the same part is the octets as they are
        d = fetch(c, "4", "(BODY.PEEK[1])")
        assert literal(d) == b"begin 644 x\r\n`\r\nend\r\n"
    finally:
        c.logout()


def flags_of(c, seq):
    d = fetch(c, seq, "(FLAGS)")
    return re.search(rb"FLAGS \(([^)]*)\)", d[0]).group(1).split()


def test_seen_by_body_not_by_peek(g):
    c = login(g, BOB)
    try:
        fetch(c, "1", "(BODY.PEEK[] BINARY.PEEK[1] RFC822.HEADER)")
        assert b"\\Seen" not in flags_of(c, "1")
        d = fetch(c, "1", "(BODY[TEXT])")
        # the FLAGS that changed come with the response
        assert any(isinstance(x, bytes) and b"FLAGS (\\Seen" in x
                   for x in d), d
        assert b"\\Seen" in flags_of(c, "1")
        fetch(c, "2", "(BINARY[1])")
        assert b"\\Seen" in flags_of(c, "2")
    finally:
        c.logout()
    c = login(g, BOB, examine=True)
    try:
        fetch(c, "3", "(BODY[] RFC822 RFC822.TEXT)")
        assert b"\\Seen" not in flags_of(c, "3")
    finally:
        c.logout()
    c = login(g, BOB)
    try:
        fetch(c, "3", "(RFC822.TEXT)")
        assert b"\\Seen" in flags_of(c, "3")
    finally:
        c.logout()


def internaldate():
    t = time.localtime(MTIME)
    off = t.tm_gmtoff // 60
    sign = "-" if off < 0 else "+"
    return (time.strftime("%d-%b-%Y %H:%M:%S", t) +
            f" {sign}{abs(off) // 60:02d}{abs(off) % 60:02d}")


@pytest.mark.parametrize("rev2", [False, True])
def test_macros_and_uid(g, rev2):
    c = login(g, rev2=rev2)
    try:
        size = len(crlf(SIMPLE))
        date = internaldate().encode()
        d = fetch(c, "1", "FAST")
        assert d[0] == (b'1 (FLAGS () INTERNALDATE "%s" RFC822.SIZE %d)' %
                        (date, size))
        d = fetch(c, "1", "ALL")
        assert d[0] == (b'1 (FLAGS () INTERNALDATE "%s" RFC822.SIZE %d '
                        b'ENVELOPE %s)' % (date, size, SIMPLE_ENV))
        d = fetch(c, "1", "FULL")
        assert d[0] == (b'1 (FLAGS () INTERNALDATE "%s" RFC822.SIZE %d '
                        b'ENVELOPE %s BODY %s)' %
                        (date, size, SIMPLE_ENV, SIMPLE_BODY))
        d = fetch(c, "1:*", "(UID)")
        uids = [int(re.search(rb"UID (\d+)", x).group(1)) for x in d]
        assert len(uids) == 4 and uids == sorted(uids)
        d = fetch(c, f"{uids[1]}", "(RFC822.SIZE)", uid=True)
        assert d[0] == b"2 (UID %d RFC822.SIZE %d)" % (uids[1],
                                                        len(crlf(MULTI)))
        d = fetch(c, f"{uids[3]}:*", "(UID RFC822.SIZE)", uid=True)
        assert d == [b"4 (UID %d RFC822.SIZE %d)" % (uids[3],
                                                      len(crlf(MESSAGES[3])))]
        typ, d = c.uid("FETCH", "999999", "(FLAGS)")
        assert typ == "OK" and d == [None]
    finally:
        c.logout()


def test_large_message_streamed(g):
    big = crlf(MESSAGES[2])
    c = login(g)
    try:
        d = fetch(c, "3", "(BODY.PEEK[])")
        assert literal(d) == big
        start = len(big) // 2 + 1
        d = fetch(c, "3", f"(BODY.PEEK[]<{start}.100000>)")
        assert literal(d) == big[start:start + 100000]
        d = fetch(c, "3", f"(BODY.PEEK[TEXT]<{len(big) - 100}.1000>)")
        body = big[big.index(b"\r\n\r\n") + 4:]
        assert literal(d) == body[len(big) - 100:len(big) + 900]
        d = fetch(c, "1:*", "(BODY.PEEK[])")
        lits = [x[1] for x in d if isinstance(x, tuple)]
        assert lits == [crlf(m) for m in MESSAGES]
    finally:
        c.logout()


def rss_kib(pids):
    total = 0
    for p in pids:
        with open(f"/proc/{p}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def test_slow_reader_costs_a_bounded_buffer(g):
    """A client that asks for the 8 MB message and does not read: the
    worker writes ahead only up to its high mark (plus what the socket
    takes), it does not load the message."""
    import socket
    from conftest import wait_for
    s = socket.create_connection(("127.0.0.1", g.imap_port), timeout=30)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    try:
        f = s.makefile("rb")
        f.readline()
        s.sendall(f"a LOGIN {ALICE} \"{PASSWORD}\"\r\n".encode())
        while not f.readline().startswith(b"a "):
            pass
        s.sendall(b"b EXAMINE INBOX\r\n")
        while not f.readline().startswith(b"b "):
            pass
        workers = g.children()
        before = rss_kib(workers)
        s.sendall(b"c FETCH 3 (BODY.PEEK[])\r\n")
        # the worker fills the socket and stops: its RSS settles
        samples = []

        def settled():
            samples.append(rss_kib(workers))
            return len(samples) > 5 and samples[-1] == samples[-5]
        wait_for(settled, 20, interval=0.1, what="worker RSS to settle")
        # holding the message would cost its 8 MB; streaming costs what
        # went through to the socket (kept a while in ASan's quarantine)
        # and the 256 KiB buffer
        assert samples[-1] - before < 6 * 1024, (before, samples)
        # and the response is whole when read
        got = f.readline()
        assert got.startswith(b"* 3 FETCH (BODY[] {"), got
        n = int(got.rstrip()[got.index(b"{") + 1:-1])
        assert f.read(n) == crlf(MESSAGES[2])
        assert f.readline() == b")\r\n"
        assert f.readline().startswith(b"c OK")
    finally:
        s.close()


def test_last_line_without_end(g):
    """BODY[] is RFC822.SIZE octets however it is asked for: a stored
    message whose last line has no end gets CR LF, as POP3 sends it."""
    want = crlf(NOEOL) + b"\r\n"
    c = login(g, BOB, examine=True)
    try:
        d = fetch(c, "5", "(RFC822.SIZE)")
        assert d[0] == b"5 (RFC822.SIZE %d)" % len(want)
        assert literal(fetch(c, "5", "(BODY.PEEK[])")) == want
        d = fetch(c, "5", "(ENVELOPE BODY.PEEK[])")
        assert literal(d) == want
        assert literal(fetch(c, "5", "(BODY.PEEK[TEXT])")) == b"no line end"
    finally:
        c.logout()


def test_w_that_lies(g):
    """BODY[] of a file whose ",W=" is wrong: a claim the stored form
    cannot have is counted from the file (the message, whole); one within
    its bounds pads with spaces or cuts. The literal is always exactly
    the announced size: the next command still gets its answer."""
    want = crlf(SIMPLE)
    expect = [want, want, want + b" " * 5, want[:len(SIMPLE)]]
    c = login(g, BOB, examine=True)
    try:
        for i, e in enumerate(expect, 6):
            for items in ("(BODY.PEEK[])", "(ENVELOPE BODY.PEEK[])"):
                assert literal(fetch(c, str(i), items)) == e, (i, items)
                typ, _ = c.noop()
                assert typ == "OK"
        d = fetch(c, "1", "(BODY.PEEK[])")
        assert literal(d) == want
    finally:
        c.logout()


def test_fetch_modifiers_refused(g):
    """FETCH's modifiers (RFC 4466: CHANGEDSINCE of CONDSTORE, VANISHED,
    PARTIAL) belong to extensions godwit does not advertise: BAD, not
    silently ignored (CHANGEDSINCE was answered with every message)."""
    c = login(g)
    try:
        for mod in ("(CHANGEDSINCE 1)", "(FOO)"):
            with pytest.raises(imaplib.IMAP4.error,
                               match="BAD.*FETCH modifiers are not"):
                c._simple_command("FETCH", "1", "(UID)", mod)
            with pytest.raises(imaplib.IMAP4.error,
                               match="BAD.*FETCH modifiers are not"):
                c._simple_command("UID", "FETCH", "1:*", "(FLAGS)", mod)
        d = fetch(c, "1", "(UID)")
        assert d[0].startswith(b"1 (UID "), d
    finally:
        c.logout()


def test_envelope_of_addresses_the_parser_refuses(g):
    """A From: without a domain ("nobody") or with a stray bracket keeps
    its text in the ENVELOPE (mailbox, and host or "MISSING_DOMAIN", as
    Dovecot answers) instead of NIL; Sender and Reply-To follow From."""
    c = imaplib.IMAP4("127.0.0.1", g.imap_port, timeout=60)
    c.login(ALICE, PASSWORD)
    try:
        assert c.create("Odd")[0] == "OK"
        for m in (b"From: nobody\r\nTo: a@b.example, <broken\r\n"
                  b"Subject: x\r\n\r\nbody\r\n",
                  b"From: <who@where.example\r\nSubject: y\r\n\r\nb\r\n"):
            assert c.append("Odd", None, None, m)[0] == "OK"
        assert c.select("Odd", readonly=True)[0] == "OK"
        env = fetch(c, "1", "(ENVELOPE)")[0]
        nobody = b'((NIL NIL "nobody" "MISSING_DOMAIN"))'
        assert env.count(nobody) == 3, env          # from, sender, reply-to
        to = b'((NIL NIL "a" "b.example")(NIL NIL "broken" "MISSING_DOMAIN"))'
        assert to in env, env
        env = fetch(c, "2", "(ENVELOPE)")[0]
        assert env.count(b'((NIL NIL "who" "where.example"))') == 3, env
        c.unselect()
        assert c.delete("Odd")[0] == "OK"
    finally:
        c.logout()


def _hdr_answers(c, n):
    """BODY.PEEK[HEADER] of message n by the header-only path and by the
    full structure walk (BODYSTRUCTURE asked too), and RFC822.HEADER."""
    one = literal(fetch(c, str(n), "(BODY.PEEK[HEADER])"))
    walk = [x[1] for x in fetch(c, str(n), "(BODYSTRUCTURE BODY.PEEK[HEADER])")
            if isinstance(x, tuple)]
    assert len(walk) == 1
    rfc = literal(fetch(c, str(n), "(RFC822.HEADER)"))
    return one, walk[0], rfc


def test_header_only_fetch(g):
    """A header-only FETCH sends the header in its CRLF form, byte for
    byte what the full structure walk sends: folded lines, no body, an
    empty header, a header over 64 KiB, a last line without its end;
    the same after a header search has filled the header cache."""
    def check(c):
        got = []
        for n, (_, want) in enumerate(HDR_MSGS, 1):
            one, walk, rfc = _hdr_answers(c, n)
            assert one == walk == rfc, n
            assert one == want, n
            item = "BODY.PEEK[HEADER.FIELDS (SUBJECT)]"
            f = literal(fetch(c, str(n), f"({item})"))
            fw = [x[1] for x in fetch(c, str(n), f"(BODY {item})")
                  if isinstance(x, tuple)]
            fe = [x[1] for x in fetch(c, str(n), f"(ENVELOPE {item})")
                  if isinstance(x, tuple)]
            assert [f] == fw == fe, n
            got.append(one)
        return got

    c = login(g, BOB, examine=True)
    try:
        assert c.select("Hdr", readonly=True)[0] == "OK"
        before = check(c)
        # a header search fills godwit-cache; the answers stay the same
        typ, d = c.search(None, "SUBJECT", "nobody")
        assert typ == "OK" and d == [b"2"]
    finally:
        c.logout()
    assert (g.maildir(BOB) / ".Hdr" / "godwit-cache").exists()
    c = login(g, BOB, examine=True)
    try:
        assert c.select("Hdr", readonly=True)[0] == "OK"
        assert check(c) == before
        d = fetch(c, "1:*", "(BODY.PEEK[HEADER])")
        lits = [x[1] for x in d if isinstance(x, tuple)]
        assert lits == before
    finally:
        c.logout()
