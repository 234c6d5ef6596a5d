"""
User-database lookups never stall a worker's loop (net/lookupq.c): RCPT,
VRFY, MAIL's sender check and the header From: check of submitted mail
run on the worker's lookup thread. The database is made slow and broken
the real way: the test holds an exclusive lock on the SQLite file
(Python's sqlite3, BEGIN EXCLUSIVE) for longer than the daemon's busy
timeout (2 s), so each lookup waits and then fails. Meanwhile another
session on the same (single) worker gets its replies, the locked session
gets 451 4.3.0 for each pipelined RCPT in order, and once the lock is
gone the same session is served again. A session that hangs up while
its lookup is out is freed safely when the answer comes (ASan watches).
MAIL, the header From:, AUTH/POP3/IMAP logins and the queue runner get
their temporary answers the same way; and a real PostgreSQL frozen with
SIGSTOP (pg_peer.py) stalls only the session that waits for it.
"""

import base64
import contextlib
import imaplib
import os
import poplib
import select
import shutil
import signal
import sqlite3
import tempfile
import time

import pytest

from conftest import (PASSWORD, Godwit, _finish, free_port, godwit_base,
                      wait_for)
from smtpclient import RawSMTP
import pg_peer

ALICE = "alice@example.test"
BOB = "bob@example.test"
BUSY_S = 2.0	# the daemon's SQLite busy timeout (userdb_sqlite.c)


@pytest.fixture(scope="module")
def g(godwit_root, cert):
    """One godwit with one worker (so every session shares its loop),
    VRFY on and a submission listener that takes AUTH in plaintext."""
    crt, key = cert
    gw = Godwit(godwit_base(godwit_root, "udbasync"),
                {"workers": 1, "smtp": {"vrfy": True},
                 # every login asks the database, which these tests lock
                 "auth": {"cache_ttl": 0},
                 "tls": {"certificates": [{"cert": str(crt),
                                           "key": str(key)}]}})
    gw.add_submission()
    gw.pop3_port, gw.imap_port = free_port(), free_port()
    gw.config["listeners"] += [
        {"name": "pop3", "protocol": "pop3", "plaintext_auth": True,
         "listen": [f"127.0.0.1:{gw.pop3_port}"]},
        {"name": "imap", "protocol": "imap", "plaintext_auth": True,
         "listen": [f"127.0.0.1:{gw.imap_port}"]}]
    gw.write_config()
    gw.start()
    yield gw
    problems = _finish(gw)
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@contextlib.contextmanager
def locked(g):
    """The user database locked for writing: the daemon's readers wait
    their busy timeout and fail."""
    db = sqlite3.connect(str(g.data_dir / "db" / "godwit.sqlite"),
                         timeout=5, isolation_level=None)
    try:
        db.execute("BEGIN EXCLUSIVE")
        yield
    finally:
        db.execute("ROLLBACK")
        db.close()


def pending(c):
    """Whether the server has sent c anything not read yet."""
    if c.buf:
        return True
    r, _, _ = select.select([c.sock], [], [], 0)
    return bool(r)


def login(g):
    c = RawSMTP("127.0.0.1", g.sub_port, timeout=30)
    assert c.reply().code == 220
    c.ehlo()
    tok = base64.b64encode(f"\0{ALICE}\0{PASSWORD}".encode()).decode()
    r = c.cmd(f"AUTH PLAIN {tok}")
    assert r.code == 235, r
    return c


def test_locked_db_does_not_stall_other_sessions(g):
    a = g.raw(timeout=30)
    a.ehlo()
    assert a.cmd("MAIL FROM:<s@example.org>").code == 250
    b = g.raw(timeout=30)
    b.ehlo()
    off = g.log_size()
    with locked(g):
        # two RCPTs and a NOOP in one packet: each RCPT waits the busy
        # timeout on the lookup thread
        a.send("RCPT TO:<alice@example.test>\r\n"
               "RCPT TO:<bob@example.test>\r\n"
               "NOOP\r\n")
        # the same worker answers another session meanwhile, and takes
        # a new one (greeting, EHLO) ...
        assert b.cmd("NOOP").code == 250
        c = g.raw(timeout=30)
        c.ehlo()
        assert c.cmd("NOOP").code == 250
        # ... while the locked session's first answer is still to come
        assert not pending(a), "a RCPT was answered before its lookup"
        c.cmd("QUIT")
        c.close()
        # in order: the lookups failed, the NOOP waited behind them
        replies = a.replies(3, timeout=4 * BUSY_S + 20)
    assert [r.code for r in replies] == [451, 451, 250], replies
    assert all("4.3.0" in r.text for r in replies[:2]), replies
    # the database is back: the same session is served
    assert a.cmd("RCPT TO:<alice@example.test>").code == 250
    a.cmd("QUIT")
    a.close()
    b.cmd("QUIT")
    b.close()
    log = g.log_since(off)
    assert log.count("reason=lookup") >= 2, log


def test_vrfy_locked_then_back(g):
    c = g.raw(timeout=30)
    c.ehlo()
    with locked(g):
        r = c.cmd("VRFY alice@example.test", timeout=BUSY_S + 20)
    assert r.code == 451 and "4.3.0" in r.text, r
    r = c.cmd("VRFY alice@example.test")
    assert r.code == 250 and "alice@example.test" in r.text, r
    c.cmd("QUIT")
    c.close()


def test_hangup_while_lookup_out(g):
    """Sessions that go away with a lookup out: nothing answers them, the
    daemon stays up (and ASan, at teardown, has nothing to say)."""
    with locked(g):
        for _ in range(3):
            c = g.raw(timeout=30)
            c.ehlo()
            c.send("MAIL FROM:<s@example.org>\r\n"
                   "RCPT TO:<alice@example.test>\r\n"
                   "RCPT TO:<team@example.test>\r\nQUIT\r\n")
            assert c.reply().code == 250
            c.close()
        b = g.raw(timeout=30)
        b.ehlo()
    # every job came back to a session that was gone
    time.sleep(0.2)
    r = b.cmd("VRFY bob@example.test", timeout=6 * BUSY_S + 20)
    assert r.code == 250, r
    b.cmd("QUIT")
    b.close()
    assert g.running()


def test_submission_sender_and_from_locked(g):
    """MAIL's sender check and the header From: check fail temporarily
    (451 4.3.0) while the database is locked, and pass once it is not."""
    c = login(g)
    off = g.log_size()
    with locked(g):
        r = c.cmd("MAIL FROM:<team@example.test>", timeout=BUSY_S + 20)
    assert r.code == 451 and "4.3.0" in r.text, r
    assert c.cmd("MAIL FROM:<alice@example.test>").code == 250
    assert c.cmd("RCPT TO:<bob@example.test>").code == 250
    assert c.cmd("DATA").code == 354
    with locked(g):
        c.send("From: <team@example.test>\r\nSubject: t\r\n\r\nhi\r\n.\r\n")
        r = c.reply(timeout=BUSY_S + 20)
    assert r.code == 451 and "4.3.0" in r.text, r
    log = g.log_since(off)
    assert "reason=lookup" in log and "reason=userdb-error" in log, log
    # back: an alias of alice's in From: passes
    assert c.cmd("MAIL FROM:<alice@example.test>").code == 250
    assert c.cmd("RCPT TO:<bob@example.test>").code == 250
    assert c.cmd("DATA").code == 354
    c.send("From: <postmaster@example.test>\r\nSubject: t\r\n\r\nhi\r\n.\r\n")
    r = c.reply(timeout=20)
    assert r.code == 250, r
    c.cmd("QUIT")
    c.close()


def test_logins_locked_are_temporary(g):
    """A login while the database fails: the protocol's temporary answer,
    logged as such and not counted as a failed login; then it works."""
    off = g.log_size()
    with locked(g):
        c = RawSMTP("127.0.0.1", g.sub_port, timeout=30)
        assert c.reply().code == 220
        c.ehlo()
        tok = base64.b64encode(f"\0{ALICE}\0{PASSWORD}".encode()).decode()
        r = c.cmd(f"AUTH PLAIN {tok}", timeout=BUSY_S + 20)
        assert r.code == 454 and "4.7.0" in r.text, r
        p = poplib.POP3("127.0.0.1", g.pop3_port, timeout=BUSY_S + 20)
        p.user(ALICE)
        with pytest.raises(poplib.error_proto) as e:
            p.pass_(PASSWORD)
        assert b"[SYS/TEMP]" in e.value.args[0], e.value
        m = imaplib.IMAP4("127.0.0.1", g.imap_port, timeout=BUSY_S + 20)
        with pytest.raises(imaplib.IMAP4.error) as e:
            m.login(ALICE, PASSWORD)
        assert "UNAVAILABLE" in str(e.value), e.value
    assert c.cmd(f"AUTH PLAIN {tok}").code == 235
    c.cmd("QUIT")
    c.close()
    p.user(ALICE)
    p.pass_(PASSWORD)
    p.quit()
    m.login(ALICE, PASSWORD)
    m.logout()
    log = g.log_since(off)
    assert log.count("result=tempfail") >= 3, log
    assert "result=fail" not in log, log


def test_runner_defers_when_the_database_fails(g):
    """The queue runner asks the database on its own lookup thread: a
    message it loads while the database fails is deferred (451 4.3.0),
    not sent to the local domain's MX; flushed later, it is delivered."""
    c = login(g)
    assert c.cmd("MAIL FROM:<alice@example.test>").code == 250
    # a success report asked for: the runner delivers this one
    assert c.cmd("RCPT TO:<bob@example.test> NOTIFY=SUCCESS").code == 250
    assert c.cmd("DATA").code == 354
    off = g.log_size()
    with locked(g):
        c.send("From: <alice@example.test>\r\nSubject: runner\r\n\r\n"
               "runner-lookup\r\n.\r\n")
        r = c.reply(timeout=20)
        assert r.code == 250, r
        wait_for(lambda: "event=deferred" in g.log_since(off), 4 * BUSY_S + 20,
                 what="the runner to defer the message")
    log = g.log_since(off)
    assert "bob@example.test" in log and "4.3.0" in log, log
    c.cmd("QUIT")
    c.close()
    g.run("queue", "flush", check=True)
    wait_for(lambda: any(b"runner-lookup" in p.read_bytes()
                         for p in g.maildir_files(BOB)),
             30, what="the deferred message delivered")


# ---- a real PostgreSQL that stops answering ---------------------------------

def _cluster_pids(peer):
    """The postmaster and its children (backends, helpers)."""
    main = int((peer.datadir / "postmaster.pid").read_text().split()[0])
    pids = [main]
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = open(f"/proc/{d}/stat").read()
        except OSError:
            continue
        # the parent pid is the 2nd field after the ")" of the name
        if int(stat.rsplit(")", 1)[1].split()[1]) == main:
            pids.append(int(d))
    return pids


@contextlib.contextmanager
def frozen(peer):
    """Every process of the cluster stopped (SIGSTOP): connections stay
    open, queries get no answer until SIGCONT."""
    pids = _cluster_pids(peer)
    for p in pids:
        os.kill(p, signal.SIGSTOP)
    try:
        yield
    finally:
        for p in pids:
            os.kill(p, signal.SIGCONT)


def test_postgresql_stalled_does_not_stall_the_worker(make_godwit):
    """PostgreSQL stops answering in the middle of a session: the RCPTs
    wait (in order, with the NOOP behind them), the same worker serves
    other sessions meanwhile, and the answers come when it is back."""
    why = pg_peer.available()
    if why is not None:
        pytest.skip(why)
    base = tempfile.mkdtemp(prefix="godwit-pg-")
    os.chmod(base, 0o755)
    peer = pg_peer.PgPeer(os.path.join(base, "cluster")).start()
    try:
        db = peer.createdb("t_async")
        g = make_godwit({"workers": 1}, start=False, users=(),
                        aliases=None)
        g.config["userdb"] = {"backend": "postgresql", "dsn": peer.dsn(db),
                              "connect_timeout": "2s"}
        g.write_config()
        g.run("db", "init", check=True)
        g.admin("domain", "add", "example.test")
        g.admin("user", "add", ALICE, "--password-stdin",
                input=PASSWORD + "\n")
        g.start()
        a = g.raw(timeout=30)
        a.ehlo()
        assert a.cmd("MAIL FROM:<s@example.org>").code == 250
        assert a.cmd("RCPT TO:<alice@example.test>").code == 250
        b = g.raw(timeout=30)
        b.ehlo()
        with frozen(peer):
            a.send("RCPT TO:<alice@example.test>\r\n"
                   "RCPT TO:<nobody@example.test>\r\nNOOP\r\n")
            assert b.cmd("NOOP").code == 250
            c = g.raw(timeout=30)
            c.ehlo()
            assert c.cmd("NOOP").code == 250
            c.cmd("QUIT")
            c.close()
            time.sleep(0.5)
            assert not pending(a), "a RCPT was answered by a frozen server"
        replies = a.replies(3, timeout=30)
        assert [r.code for r in replies] == [250, 550, 250], replies
        a.cmd("QUIT")
        a.close()
        b.cmd("QUIT")
        b.close()
    finally:
        peer.destroy()
        shutil.rmtree(base, ignore_errors=True)
