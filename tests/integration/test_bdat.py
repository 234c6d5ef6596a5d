"""
CHUNKING / BDAT (RFC 3030) over a raw socket: chunked transfer, the empty
LAST chunk, exact content (no dot-unstuffing in BDAT), and errors.
"""

import pytest

from smtpclient import make_message, split_stored


def _mine(g, rcpt, uniq):
    return [m for m in g.maildir_messages(rcpt) if uniq.encode() in m]


def _start(c, rcpts=("alice@example.test",)):
    c.ehlo()
    assert c.cmd("MAIL FROM:<sender@example.org>").code == 250
    for r in rcpts:
        assert c.cmd(f"RCPT TO:<{r}>").code == 250


def test_bdat_two_chunks(shared_godwit, uniq):
    g = shared_godwit
    msg = make_message(uniq, body=f"{uniq}\n" + "line of text\n" * 200)
    a, b = msg[:1000], msg[1000:]
    with g.raw() as c:
        _start(c)
        c.send(b"BDAT %d\r\n" % len(a) + a)
        r = c.reply()
        assert (r.code, r.enh) == (250, "2.0.0"), r
        c.send(b"BDAT %d LAST\r\n" % len(b) + b)
        r = c.reply()
        assert (r.code, r.enh) == (250, "2.0.0"), r
        assert c.cmd("QUIT").code == 221
    got = _mine(g, "alice@example.test", uniq)
    assert len(got) == 1
    split_stored(got[0], msg.replace(b"\r\n", b"\n"))


def test_bdat_zero_last(shared_godwit, uniq):
    g = shared_godwit
    msg = make_message(uniq)
    with g.raw() as c:
        _start(c)
        c.send(b"BDAT %d\r\n" % len(msg) + msg)
        assert c.reply().code == 250
        r = c.cmd("BDAT 0 LAST")
        assert (r.code, r.enh) == (250, "2.0.0"), r
    got = _mine(g, "alice@example.test", uniq)
    assert len(got) == 1
    split_stored(got[0], msg.replace(b"\r\n", b"\n"))


def test_bdat_is_not_dot_stuffed(shared_godwit, uniq):
    """In BDAT, a line "." is data and ".." stays "..": nothing is
    unstuffed and nothing ends the message early."""
    g = shared_godwit
    msg = make_message(uniq, body=f"{uniq}\n.\n..two\n.\nafter the dots\n")
    with g.raw() as c:
        _start(c)
        c.send(b"BDAT %d LAST\r\n" % len(msg) + msg)
        r = c.reply()
        assert (r.code, r.enh) == (250, "2.0.0"), r
        assert c.cmd("NOOP").code == 250
    got = _mine(g, "alice@example.test", uniq)
    assert len(got) == 1
    assert got[0].endswith(b"\n.\n..two\n.\nafter the dots\n"), got[0][-100:]


def test_bdat_many_small_chunks_pipelined(shared_godwit, uniq):
    g = shared_godwit
    msg = make_message(uniq, body=f"{uniq}\n" + "x" * 70 + "\n" + "y" * 70 + "\n")
    chunks = [msg[i:i + 7] for i in range(0, len(msg), 7)]
    with g.raw() as c:
        _start(c, ("alice@example.test", "bob@example.test"))
        wire = b""
        for i, ch in enumerate(chunks):
            last = b" LAST" if i == len(chunks) - 1 else b""
            wire += b"BDAT %d%s\r\n" % (len(ch), last) + ch
        c.send(wire)
        rs = c.replies(len(chunks))
        assert all(r.code == 250 for r in rs), rs
    for rcpt in ("alice@example.test", "bob@example.test"):
        got = _mine(g, rcpt, uniq)
        assert len(got) == 1
        split_stored(got[0], msg.replace(b"\r\n", b"\n"))


def test_bdat_then_next_transaction(shared_godwit, uniq):
    g = shared_godwit
    m1 = make_message(uniq + "-1")
    m2 = make_message(uniq + "-2")
    with g.raw() as c:
        _start(c)
        c.send(b"BDAT %d LAST\r\n" % len(m1) + m1)
        assert c.reply().code == 250
        # a new transaction after BDAT LAST, this time with DATA
        assert c.cmd("MAIL FROM:<sender@example.org>").code == 250
        assert c.cmd("RCPT TO:<bob@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(m2 + b".\r\n")
        assert c.reply().code == 250
    assert len(_mine(g, "alice@example.test", uniq + "-1")) == 1
    assert len(_mine(g, "bob@example.test", uniq + "-2")) == 1


@pytest.mark.parametrize("bad", ["BDAT", "BDAT abc", "BDAT -5", "BDAT 10 FIRST",
                                 "BDAT 1x LAST", "BDAT 99999999999999999999999"])
def test_bdat_bad_size(shared_godwit, bad):
    """A BDAT whose size cannot be read is refused with 501. The server
    cannot tell where the chunk would end, so it closes the session (and
    must not take the chunk for commands). A BDAT with no argument at all
    announces no chunk: refused like any command missing its argument,
    and the session goes on."""
    g = shared_godwit
    with g.raw() as c:
        _start(c)
        c.try_send(bad.encode() + b"\r\nNOOP\r\n")
        if bad == "BDAT":
            rs = c.replies(2)
            assert [(r.code, r.enh) for r in rs] == [(501, "5.5.4"),
                                                    (250, "2.0.0")], rs
            return
        rs, closed = c.read_all(timeout=10, max_replies=3)
        assert [(r.code, r.enh) for r in rs] == [(501, "5.5.4")], f"{bad}: {rs}"
        assert closed, f"{bad}: the session goes on"


def test_bdat_without_transaction(shared_godwit):
    with shared_godwit.raw() as c:
        c.ehlo()
        c.send(b"BDAT 5 LAST\r\nhello")
        r = c.reply()
        assert r.code == 503, r
        # the 5 octets must have been consumed, not parsed as a command
        r = c.cmd("NOOP")
        assert r.code == 250, r


def test_bdat_then_data_refused(shared_godwit):
    with shared_godwit.raw() as c:
        _start(c)
        c.send(b"BDAT 5\r\nhello")
        assert c.reply().code == 250
        r = c.cmd("DATA")
        assert r.code == 503, r
        assert r.enh is not None and r.enh.startswith("5.5."), r


def test_bdat_too_big_refused_nothing_stored(make_godwit, uniq):
    g = make_godwit({"smtp": {"max_message_size": 4096}})
    with g.raw() as c:
        _start(c)
        data = (uniq + "\r\n").encode() + b"z" * 8000
        c.send(b"BDAT %d LAST\r\n" % len(data))
        c.try_send(data)
        r = c.reply()
        assert (r.code, r.enh) == (552, "5.3.4"), r
    assert g.find_messages(uniq) == []
