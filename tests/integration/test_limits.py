"""
Limits with proper replies: message size (SIZE and the
data itself), command and text line length, recipients per message, errors
per session, idle timeouts, connections (total, per IP, per-IP rate),
per-listener allow/deny lists and the early-talker test.
"""

import os
import selectors
import signal
import socket
import time

import pytest

from conftest import DELETE, free_port, wait_for
from smtpclient import RawSMTP, dot_stuff, make_message, transaction

# Linux: the source port is chosen at connect(), so 600 sockets bound to
# one address do not each reserve a port at bind()
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)

USERS5 = ("alice", "bob", "carol", "dave", "erin")


def _refused_at_connect(g, family=4, port=None, code=421, enh="4.7.0"):
    """Connects and asserts the server refuses: the given reply, then close."""
    c = RawSMTP(g.host(family), port or g.port, timeout=10)
    try:
        rs, closed = c.read_all(timeout=5, max_replies=3)
        assert rs, "connection closed without a reply"
        assert (rs[0].code, rs[0].enh) == (code, enh), rs
        assert closed or c.wait_closed(5), "server must close after refusing"
    finally:
        c.close()


# ------------------------------------------------------------- size ---


def test_size_declared_too_big(shared_godwit):
    with shared_godwit.raw() as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<sender@example.org> SIZE=%d" % (1024 * 1024 + 1))
        assert (r.code, r.enh) == (552, "5.3.4"), r
        r = c.cmd("MAIL FROM:<sender@example.org> SIZE=99999999999999999999999")
        assert (r.code, r.enh) == (501, "5.5.4"), r  # not a number: bad SIZE
        r = c.cmd("MAIL FROM:<sender@example.org> SIZE=%d" % (1024 * 1024))
        assert (r.code, r.enh) == (250, "2.1.0"), r


def test_data_too_big_nothing_stored(make_godwit, uniq):
    g = make_godwit({"smtp": {"max_message_size": 10000}})
    body = f"{uniq}\n" + ("0123456789" * 7 + "\n") * 300  # ~21 KB
    msg = make_message(uniq, body=body)
    with g.raw() as c:
        c.ehlo()
        r = transaction(c, "sender@example.org", ["alice@example.test"], msg)
        assert (r.code, r.enh) == (552, "5.3.4"), r
        # the transaction is over, the session goes on
        assert c.cmd("NOOP").code == 250
        small = make_message(uniq + "-small")
        r = transaction(c, "sender@example.org", ["alice@example.test"], small)
        assert r.code == 250, r
    msgs = g.maildir_messages("alice@example.test")
    assert len(msgs) == 1 and (uniq + "-small").encode() in msgs[0]
    assert g.queue_files() == []
    assert g.tmp_files() == [], "a refused message left its temporary file"


def test_data_exactly_at_limit_accepted(make_godwit, uniq):
    limit = 20000
    g = make_godwit({"smtp": {"max_message_size": limit}})
    head = make_message(uniq, body="")
    # the message as the client sends it, CRLF line endings, no final dot
    filler_line = b"y" * 98 + b"\r\n"
    n = (limit - len(head) - 100) // len(filler_line)
    msg = head + filler_line * n
    msg += b"z" * (limit - len(msg) - 2) + b"\r\n"
    assert len(msg) == limit
    with g.raw() as c:
        c.ehlo()
        r = transaction(c, "sender@example.org", ["alice@example.test"], msg,
                        mail_params=f"SIZE={limit}")
        assert r.code == 250, f"a message of exactly max_message_size: {r}"


# ------------------------------------------------------------- lines ---


def test_command_line_too_long(shared_godwit):
    with shared_godwit.raw() as c:
        c.ehlo()
        r = c.cmd("NOOP " + "x" * 600)
        assert (r.code, r.enh) == (500, "5.5.2"), r
        r = c.cmd("MAIL FROM:<" + "a" * 600 + "@example.org>")
        assert (r.code, r.enh) == (500, "5.5.2"), r  # over 512 octets
        # the session survives a long line and resynchronises at its CRLF
        r = c.cmd("NOOP")
        assert r.code == 250, r


def test_command_line_512_accepted(shared_godwit):
    with shared_godwit.raw() as c:
        c.ehlo()
        line = "NOOP " + "x" * (512 - 2 - 5)  # 512 octets with CRLF
        assert len(line) + 2 == 512
        r = c.cmd(line)
        assert r.code == 250, r


def test_huge_line_does_not_hurt(shared_godwit):
    """A megabyte without a line end: refused with one 500 and skipped up
    to its line end, never buffered without limit; the session goes on
    and the server keeps serving others."""
    g = shared_godwit
    c = g.raw()
    try:
        c.ehlo()
        for _ in range(16):
            assert c.try_send(b"A" * 65536), "disconnected during the line"
        # the NOOP's reply proves the server has read the whole line
        c.send(b"\r\nNOOP\r\n")
        rs = c.replies(2)
        assert [(r.code, r.enh) for r in rs] == [(500, "5.5.2"),
                                                (250, "2.0.0")], rs
    finally:
        c.close()
    with g.raw() as c2:
        assert c2.cmd("NOOP").code == 250


def test_text_line_too_long_nothing_stored(make_godwit, uniq):
    g = make_godwit()
    body = f"{uniq}\n" + "L" * 1200 + "\nend\n"
    msg = make_message(uniq, body=body)
    with g.raw() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@example.org>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.try_send(msg + b".\r\n")
        r = c.reply()
        assert 500 <= r.code <= 599, r
        assert r.enh is not None and r.enh.startswith("5."), r
    assert g.all_maildir_files() == []
    assert g.queue_files() == []


def test_text_line_1000_accepted(shared_godwit, uniq):
    g = shared_godwit
    line = "T" * 998  # 1000 octets with CRLF (RFC 5321 4.5.3.1.6)
    msg = make_message(uniq, body=f"{uniq}\n{line}\n")
    with g.raw() as c:
        c.ehlo()
        r = transaction(c, "sender@example.org", ["alice@example.test"], msg)
        assert r.code == 250, r
    got = g.find_messages(uniq)
    assert len(got) == 1 and (line + "\n").encode() in got[0].read_bytes()


# -------------------------------------------------------- recipients ---


def test_too_many_recipients(make_godwit, uniq):
    g = make_godwit({"smtp": {"max_recipients": 3}}, users=USERS5)
    msg = make_message(uniq)
    with g.raw() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@example.org>").code == 250
        for u in ("alice", "bob", "carol"):
            r = c.cmd(f"RCPT TO:<{u}@example.test>")
            assert r.code == 250, r
        for u in ("dave", "erin"):
            r = c.cmd(f"RCPT TO:<{u}@example.test>")
            assert (r.code, r.enh) == (452, "4.5.3"), r
        assert c.cmd("DATA").code == 354
        c.send(msg + b".\r\n")
        assert c.reply().code == 250
    for u in ("alice", "bob", "carol"):
        assert len(g.maildir_messages(f"{u}@example.test")) == 1, u
    for u in ("dave", "erin"):
        assert g.maildir_messages(f"{u}@example.test") == [], u


def test_default_max_recipients_is_100(make_godwit):
    g = make_godwit({"smtp": {"max_recipients": DELETE}})
    with g.raw() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@example.org>").code == 250
        burst = b"".join(b"RCPT TO:<alice+%d@example.test>\r\n" % i for i in range(101))
        c.send(burst)
        rs = c.replies(101)
        assert all(r.code == 250 for r in rs[:100]), [r.code for r in rs]
        assert (rs[100].code, rs[100].enh) == (452, "4.5.3"), rs[100]


# ------------------------------------------------------------ errors ---


def test_max_errors_then_421(make_godwit):
    g = make_godwit({"smtp": {"max_errors": 3}})
    with g.raw() as c:
        c.ehlo()
        c.send(b"BOGUS1\r\nBOGUS2\r\nBOGUS3\r\nBOGUS4\r\nBOGUS5\r\nBOGUS6\r\n")
        rs, closed = c.read_all(timeout=5, max_replies=10)
        codes = [r.code for r in rs]
        assert 421 in codes, f"no 421 after too many errors: {rs}"
        # the third error is answered, then the 421, and nothing after
        assert codes == [500, 500, 500, 421], rs
        assert rs[3].enh == "4.7.0", rs
        assert closed or c.wait_closed(5), "server must close after 421"


# ---------------------------------------------------------- timeouts ---


def test_idle_timeout(make_godwit):
    g = make_godwit({"smtp": {"timeouts": {"command": "2s"}}})
    with g.raw() as c:
        c.ehlo()
        t0 = time.monotonic()
        r = c.reply(timeout=8)
        elapsed = time.monotonic() - t0
        assert (r.code, r.enh) == (421, "4.4.2"), r
        assert 1.5 <= elapsed <= 6, f"timed out after {elapsed:.1f}s, configured 2s"
        assert c.wait_closed(5)


def test_data_timeout_nothing_stored(make_godwit, uniq):
    g = make_godwit({"smtp": {"timeouts": {"command": "2s", "data_block": "2s"}}})
    with g.raw() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@example.org>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(make_message(uniq))  # no final dot: the client stalls
        r = c.reply(timeout=8)
        assert (r.code, r.enh) == (421, "4.4.2"), r
        assert c.wait_closed(5)
    assert g.all_maildir_files() == []


def test_active_client_not_timed_out(make_godwit):
    g = make_godwit({"smtp": {"timeouts": {"command": "2s"}}})
    with g.raw() as c:
        c.ehlo()
        for _ in range(4):
            # the subject: idle for less than the timeout each time, for
            # longer than it in all
            time.sleep(0.8)
            assert c.cmd("NOOP").code == 250


# -------------------------------------------------------- connections ---


def test_connections_per_ip(make_godwit):
    g = make_godwit({"limits": {"max_connections_per_ip": 3}})
    held = [g.raw() for _ in range(3)]
    try:
        _refused_at_connect(g)
        # another address is not affected
        with g.raw(6) as c6:
            assert c6.cmd("NOOP").code == 250
        # the three held connections still work
        for c in held:
            assert c.cmd("NOOP").code == 250
        held.pop().close()

        # once one closed, a new connection gets in (the count is released
        # asynchronously; allow a moment)
        def can_connect():
            c = RawSMTP(g.host4, g.port, timeout=5)
            try:
                r = c.reply()
                return r.code == 220
            finally:
                c.close()

        wait_for(can_connect, 5, interval=0.2, what="a slot to free up")
    finally:
        for c in held:
            c.close()
    log = g.log_text()
    assert "4.7.0" in log or "limit" in log.lower(), "connection limit refusal not logged"


def test_connection_rate(make_godwit):
    g = make_godwit({"limits": {"connection_rate": "3/60s"}})
    for i in range(3):
        with g.raw() as c:
            assert c.cmd("QUIT").code == 221
    _refused_at_connect(g)
    # ::1 is a different client
    with g.raw(6) as c:
        assert c.cmd("NOOP").code == 250


def test_total_connections(make_godwit):
    g = make_godwit({"limits": {"max_connections": 3}})
    held = [g.raw(4), g.raw(4), g.raw(6)]
    try:
        _refused_at_connect(g, family=6)
        _refused_at_connect(g, family=4)
        for c in held:
            assert c.cmd("NOOP").code == 250
    finally:
        for c in held:
            c.close()

    def can_connect():
        c = RawSMTP(g.host6, g.port, timeout=5)
        try:
            return c.reply().code == 220
        finally:
            c.close()

    wait_for(can_connect, 5, interval=0.2, what="connections to be released")


def _listen_queue(port):
    """Connections waiting in the accept queue of 127.0.0.1:port (the
    Recv-Q that `ss -ltn` shows for a listening socket), from
    /proc/net/tcp: for a socket in LISTEN state its rx_queue field is the
    accept queue's length."""
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            local, state = parts[1], parts[3]
            if state == "0A" and local == "0100007F:%04X" % port:
                return int(parts[4].split(":")[1], 16)
    raise AssertionError(f"no listening socket on 127.0.0.1:{port}")


def _listen_overflows():
    with open("/proc/net/netstat") as f:
        lines = f.read().splitlines()
    for head, vals in zip(lines[::2], lines[1::2]):
        if head.startswith("TcpExt:"):
            return int(dict(zip(head.split()[1:], vals.split()[1:]))["ListenOverflows"])
    return None


def test_connection_burst_waits_in_the_backlog(make_godwit):
    """A burst of connections arriving faster than the
    workers accept waits in the listen queue instead of being dropped
    (dropped handshakes are only retried by TCP after 1, 3, 7... s, which
    made bench/idle-connections take 105 s for 10,000 connections). The
    workers are stopped while 600 connections from three addresses
    arrive, so the queue alone must hold them all: with the listen()
    backlog libevent used to reset to 128, it held 129."""
    n, addrs = 600, ("127.0.0.2", "127.0.0.3", "127.0.0.4")
    with open("/proc/sys/net/core/somaxconn") as f:
        if int(f.read()) <= n:
            pytest.skip("net.core.somaxconn caps every backlog below 600")
    g = make_godwit({"limits": {"max_connections": 2000,
                                "max_connections_per_ip": 1000}})
    # the parent listens before it forks: wait for both workers to exist
    workers = wait_for(lambda: len(g.children()) == 2 and g.children(), 10,
                       what="two workers")
    socks = []
    overflows0 = _listen_overflows()
    for w in workers:
        os.kill(w, signal.SIGSTOP)
    try:
        for i in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            s.bind((addrs[i * len(addrs) // n], 0))
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", g.port))
            socks.append(s)
        # the kernel completes loopback handshakes at once; give it a
        # moment for any straggler, then look at the queue
        try:
            wait_for(lambda: _listen_queue(g.port) >= n, 5,
                     what=f"{n} connections in the listen queue")
        except AssertionError:
            pass  # the assertion below says how many
        queued = _listen_queue(g.port)
        assert queued == n, (
            f"the listen queue held {queued} of {n} connections; the rest "
            f"were dropped (ListenOverflows {overflows0} -> "
            f"{_listen_overflows()})")
    finally:
        for w in workers:
            os.kill(w, signal.SIGCONT)
    try:
        sel = selectors.DefaultSelector()
        pending = {}
        for s in socks:
            pending[s] = b""
            sel.register(s, selectors.EVENT_READ)
        deadline = time.monotonic() + 60
        while pending and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=0.5):
                s = key.fileobj
                try:
                    data = s.recv(512)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                pending[s] += data
                if not data or b"\n" in pending[s]:
                    sel.unregister(s)
                    assert pending.pop(s).startswith(b"220 "), \
                        "no banner on a queued connection"
        assert not pending, f"{len(pending)} of {n} connections got no banner"
        sel.close()
    finally:
        for s in socks:
            s.close()


# ------------------------------------------------------ allow / deny ---


def _assert_refused(g, family, port):
    """Refused: a 554 5.7.1 banner and close, or closed without a banner.
    Never a 220, and no command is ever accepted."""
    c = RawSMTP(g.host(family), port, timeout=10)
    try:
        c.try_send(b"EHLO client.test\r\nMAIL FROM:<a@example.org>\r\n"
                   b"RCPT TO:<alice@example.test>\r\n")
        rs, closed = c.read_all(timeout=5, max_replies=5)
        assert closed or c.wait_closed(3), f"connection not closed: {rs}"
        assert not any(200 <= r.code < 400 for r in rs), f"refused client was served: {rs}"
        if rs:
            assert (rs[0].code, rs[0].enh) == (554, "5.7.1"), rs
    finally:
        c.close()


def test_deny_ipv4_allows_ipv6(make_godwit):
    g = make_godwit(start=False)
    other = free_port()
    g.listener()["deny"] = ["127.0.0.0/8"]
    # a second listener without the deny list: the lists are per listener
    g.config["listeners"].append({
        "name": "mx2", "protocol": "smtp",
        "listen": [f"127.0.0.1:{other}", f"[::1]:{other}"],
        "greet_pause": 0,
    })
    g.write_config()
    g.start()
    _assert_refused(g, 4, g.port)
    with g.raw(6) as c:
        assert c.cmd("NOOP").code == 250
    with g.raw(4, port=other) as c:
        assert c.cmd("NOOP").code == 250
    assert g.all_maildir_files() == []


def test_deny_ipv6(make_godwit):
    g = make_godwit(start=False)
    g.listener()["deny"] = ["::1/128"]
    g.write_config()
    g.start()
    _assert_refused(g, 6, g.port)
    with g.raw(4) as c:
        assert c.cmd("NOOP").code == 250


def test_allow_list(make_godwit):
    g = make_godwit(start=False)
    g.listener()["allow"] = ["::1/128", "192.0.2.0/24"]
    g.write_config()
    g.start()
    _assert_refused(g, 4, g.port)
    with g.raw(6) as c:
        assert c.cmd("NOOP").code == 250


def test_deny_beats_allow(make_godwit):
    g = make_godwit(start=False)
    g.listener()["allow"] = ["127.0.0.0/8", "::1/128"]
    g.listener()["deny"] = ["127.0.0.1/32"]
    g.write_config()
    g.start()
    _assert_refused(g, 4, g.port)
    with g.raw(6) as c:
        assert c.cmd("NOOP").code == 250


# ------------------------------------------------------ early talker ---


def _greet_pause_godwit(make_godwit):
    g = make_godwit(start=False)
    g.listener()["greet_pause"] = "1s"
    g.write_config()
    g.start()
    return g


def test_early_talker_rejected(make_godwit, uniq):
    g = _greet_pause_godwit(make_godwit)
    msg = make_message(uniq)
    c = RawSMTP(g.host4, g.port, timeout=10)
    try:
        # the whole transaction before the banner, as spam bots do
        c.send(b"EHLO bot.test\r\nMAIL FROM:<bot@example.org>\r\n"
               b"RCPT TO:<alice@example.test>\r\nDATA\r\n" + dot_stuff(msg) + b".\r\nQUIT\r\n")
        # A server may send "220-" and break it off with the rejection
        # (as Postfix's postscreen does): read lines, not replies.
        lines, closed = c.read_raw_lines(timeout=6)
        assert closed, f"early talker not disconnected: {lines}"
        codes = [l[:3] for l in lines]
        assert not any(x in ("250", "354") for x in codes), \
            f"early talker was served: {lines}"
        rejections = [l for l in lines if not l.startswith("220")]
        assert rejections, f"early talker got no rejection: {lines}"
        assert rejections[0].startswith("554 5.5.1 "), lines
    finally:
        c.close()
    assert g.all_maildir_files() == []


def test_patient_client_passes(make_godwit, uniq):
    g = _greet_pause_godwit(make_godwit)
    c = RawSMTP(g.host6, g.port, timeout=10)
    try:
        t0 = time.monotonic()
        r = c.reply(timeout=5)
        waited = time.monotonic() - t0
        assert r.code == 220, r
        assert waited >= 0.8, f"banner came after {waited:.2f}s, greet_pause is 1s"
        c.ehlo()
        r = transaction(c, "sender@example.org", ["alice@example.test"], make_message(uniq))
        assert r.code == 250, r
    finally:
        c.close()
    assert len(g.maildir_messages("alice@example.test")) == 1


def test_greet_pass_remembered(make_godwit):
    """An address that passed the early-talker test is not made to wait
    again (greet_pass_ttl); another address still is."""
    g = _greet_pause_godwit(make_godwit)
    with g.raw(4) as c:  # waits out the pause
        assert c.cmd("QUIT").code == 221
    t0 = time.monotonic()
    with g.raw(4):
        pass
    assert time.monotonic() - t0 < 0.8, "second banner for a passed address was delayed"
    t0 = time.monotonic()
    with g.raw(6):
        pass
    assert time.monotonic() - t0 >= 0.8, "::1 never passed, but got no pause"


def test_greet_pause_off_banner_is_immediate(shared_godwit):
    t0 = time.monotonic()
    with shared_godwit.raw():
        pass
    assert time.monotonic() - t0 < 0.8

