"""
PIPELINING (RFC 2920): commands sent in one write get their replies in
order, with nothing lost or reordered, across whole transactions.
"""

from smtpclient import dot_stuff, make_message


def _expect(replies, codes):
    got = [r.code for r in replies]
    assert got == codes, f"replies {got}, wanted {codes}:\n" + "\n".join(map(str, replies))


def test_one_transaction_pipelined(shared_godwit, uniq):
    g = shared_godwit
    msg = make_message(uniq)
    with g.raw() as c:
        c.send(b"EHLO client.test\r\n"
               b"MAIL FROM:<sender@example.org>\r\n"
               b"RCPT TO:<alice@example.test>\r\n"
               b"RCPT TO:<nobody@example.test>\r\n"
               b"RCPT TO:<bob@example.test>\r\n"
               b"DATA\r\n")
        rs = c.replies(6)
        _expect(rs, [250, 250, 250, 550, 250, 354])
        assert rs[3].enh == "5.1.1"
        c.send(dot_stuff(msg) + b".\r\nQUIT\r\n")
        rs = c.replies(2)
        _expect(rs, [250, 221])
        assert rs[0].enh == "2.0.0"
        assert c.wait_closed(5)
    for rcpt in ("alice@example.test", "bob@example.test"):
        got = [m for m in g.maildir_messages(rcpt) if uniq.encode() in m]
        assert len(got) == 1, rcpt


def test_two_transactions_pipelined(shared_godwit, uniq):
    g = shared_godwit
    m1 = make_message(uniq + "-one")
    m2 = make_message(uniq + "-two")
    with g.raw() as c:
        c.ehlo()
        # RFC 2920: the client may pipeline up to DATA, then the data,
        # then the next transaction's commands up to its DATA.
        c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
        _expect(c.replies(3), [250, 250, 354])
        c.send(dot_stuff(m1) + b".\r\n"
               b"RSET\r\n"
               b"MAIL FROM:<b@example.org>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
        _expect(c.replies(5), [250, 250, 250, 250, 354])
        c.send(dot_stuff(m2) + b".\r\nNOOP\r\nQUIT\r\n")
        _expect(c.replies(3), [250, 250, 221])
    a = [m for m in g.maildir_messages("alice@example.test") if uniq.encode() in m]
    b = [m for m in g.maildir_messages("bob@example.test") if uniq.encode() in m]
    assert len(a) == 1 and (uniq + "-one").encode() in a[0]
    assert len(b) == 1 and (uniq + "-two").encode() in b[0]
    assert b"Return-Path: <a@example.org>" in a[0]
    assert b"Return-Path: <b@example.org>" in b[0]


def test_whole_session_in_one_write(shared_godwit, uniq):
    """Everything after the greeting in one send: servers must not lose
    the data that arrived together with the DATA command."""
    g = shared_godwit
    msg = make_message(uniq)
    with g.raw() as c:
        c.send(b"EHLO client.test\r\nMAIL FROM:<sender@example.org>\r\n"
               b"RCPT TO:<alice@example.test>\r\nDATA\r\n"
               + dot_stuff(msg) + b".\r\nQUIT\r\n")
        rs, closed = c.read_all(timeout=5)
        _expect(rs, [250, 250, 250, 354, 250, 221])
        assert closed
    assert len([m for m in g.maildir_messages("alice@example.test") if uniq.encode() in m]) == 1


def test_many_pipelined_commands(shared_godwit):
    """A big burst of commands in one write: every one answered, in order."""
    g = shared_godwit
    with g.raw() as c:
        c.ehlo()
        burst = b""
        expect = []
        # (only commands that succeed: rejections count towards
        # max_errors and would end the session)
        for i in range(40):
            burst += b"MAIL FROM:<s%d@example.org>\r\nRCPT TO:<alice@example.test>\r\n" \
                     b"RCPT TO:<bob@example.test>\r\nRSET\r\n" % i
            expect += [250, 250, 250, 250]
        c.send(burst + b"NOOP\r\n")
        rs = c.replies(len(expect) + 1)
        _expect(rs, expect + [250])


def test_pipelined_rejects_keep_order(shared_godwit, uniq):
    g = shared_godwit
    with g.raw() as c:
        c.ehlo()
        c.send(b"RCPT TO:<alice@example.test>\r\n"      # 503: no MAIL yet
               b"MAIL FROM:<sender@example.org>\r\n"
               b"RCPT TO:<user@other.example>\r\n"      # 554 relay
               b"RCPT TO:<nobody@example.test>\r\n"     # 550 unknown
               b"DATA\r\n")                             # 554/503: no recipients
        rs = c.replies(5)
        assert [r.code for r in rs[:4]] == [503, 250, 554, 550], rs
        assert rs[2].enh == "5.7.1" and rs[3].enh == "5.1.1", rs
        assert (rs[4].code, rs[4].enh) == (554, "5.5.1"), \
            f"DATA without valid recipients: {rs[4]}"
        # the server must not treat the following as message data
        r = c.cmd("NOOP")
        assert r.code == 250, r
