"""
The daemon's life: SIGHUP reloads the configuration without dropping
sessions (and refuses a bad one), SIGTERM stops gracefully with exit 0 and
lets a transaction in progress finish, a dead worker is replaced.
"""

import os
import signal
import socket
import time

from conftest import wait_for
from smtpclient import Closed, RawSMTP, make_message, transaction


def _limit_in_effect(g, family=4):
    """True if a new session gets 452 for its second recipient (the
    max_recipients: 1 config), False if it gets 250."""
    with g.raw(family) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@example.org>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        r = c.cmd("RCPT TO:<bob@example.test>")
        assert r.code in (250, 452), r  # which config is in force: the question
        if r.code == 452:
            assert r.enh == "4.5.3", r
        c.cmd("QUIT")
        return r.code == 452


def test_sighup_reload_new_connections_only(make_godwit, uniq):
    g = make_godwit()
    assert not _limit_in_effect(g)
    old = g.raw()
    try:
        old.ehlo()
        assert old.cmd("MAIL FROM:<sender@example.org>").code == 250
        assert old.cmd("RCPT TO:<alice@example.test>").code == 250

        g.update_config({"smtp": {"max_recipients": 1}})
        g.reload()
        wait_for(lambda: _limit_in_effect(g), 10, interval=0.2,
                 what="the reloaded max_recipients to apply to new sessions")
        assert _limit_in_effect(g, family=6)

        # the session opened before the reload still works and completes
        assert old.cmd("NOOP").code == 250
        assert old.cmd("DATA").code == 354
        old.send(make_message(uniq) + b".\r\n")
        r = old.reply()
        assert (r.code, r.enh) == (250, "2.0.0"), r
        assert old.cmd("QUIT").code == 221
    finally:
        old.close()
    assert len([m for m in g.maildir_messages("alice@example.test") if uniq.encode() in m]) == 1
    assert g.running()


def test_sighup_bad_config_refused(make_godwit):
    g = make_godwit({"smtp": {"max_recipients": 1}})
    assert _limit_in_effect(g)
    good_text = g.cfg_path.read_text()

    for broken in (
        good_text.replace("max_recipients: 1", "max_recipients: 50\n  no_such_key: 1"),
        good_text.replace("max_recipients: 1", "max_recipients: [1"),
        good_text.replace("max_recipients: 1", "max_recipients: lots"),
    ):
        assert broken != good_text
        check = g.run("config", "check")
        assert check.returncode == 0
        g.write_config(raw=broken)
        assert g.run("config", "check").returncode == 1
        offset = g.log_size()
        g.reload()
        # refused with a log line naming the file; the daemon stays up
        wait_for(lambda: str(g.cfg_path) in g.log_since(offset), 10,
                 what="a log line about the refused configuration")
        assert g.running()
        assert _limit_in_effect(g), "the old configuration must stay in force"
        g.write_config(raw=good_text)

    # a good config is still picked up after the refusals
    g.update_config({"smtp": {"max_recipients": 10}})
    g.reload()
    wait_for(lambda: not _limit_in_effect(g), 10, interval=0.2,
             what="the valid reloaded config to apply")


def _reloads(g):
    return g.log_text().count(" fac=daemon event=reloaded ")


def test_sighup_many_times(make_godwit, uniq):
    g = make_godwit()
    # its signal handlers are in place (see test_signals_during_slow_start
    # for the early case)
    wait_for(lambda: " fac=daemon event=start " in g.log_text(), 10,
             what="the start line")
    for i in range(5):
        g.reload()
        wait_for(lambda: _reloads(g) == i + 1, 10, what=f"reload {i + 1}")
    assert g.running(), f"godwit died on SIGHUP: exit {g.proc.returncode}"
    with g.smtp() as s:
        assert s.sendmail("sender@example.org", ["alice@example.test"], make_message(uniq)) == {}


def _leftovers(g, n=30000):
    """Files a crash left in queue/tmp: the daemon removes them at start,
    which makes its start-up take a moment."""
    tmp = g.data_dir / "queue" / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        with open(tmp / f"crash-leftover.{i}", "wb"):
            pass


def test_signals_during_slow_start(make_godwit):
    """Once the daemon listens it must handle SIGHUP and SIGTERM, even
    while start-up work (cleaning queue/tmp) is still going on."""
    g = make_godwit(start=False)
    _leftovers(g)
    g.start()
    g.reload()
    # the SIGHUP is served once start-up work is done: the reload line
    # proves the daemon got past it
    wait_for(lambda: _reloads(g) == 1 or not g.running(), 20,
             what="the reload during start-up")
    assert g.running(), f"godwit died on SIGHUP during start-up: exit {g.proc.returncode}"
    wait_for(lambda: g.queue_files("tmp") == [], 20, what="queue/tmp to be cleaned")
    g.stop()

    _leftovers(g)
    g.start()
    code = g.stop(expect_code=None)
    assert code == 0, f"SIGTERM during start-up: exit {code}"


def test_sigterm_idle_session(make_godwit):
    g = make_godwit()
    c = g.raw()
    try:
        c.ehlo()
        t0 = time.monotonic()
        code = g.stop(timeout=15)
        elapsed = time.monotonic() - t0
        assert code == 0
        assert elapsed < 10, f"idle session delayed shutdown by {elapsed:.1f}s"
        # the client was told (421) or at least disconnected
        rs, closed = c.read_all(timeout=3, max_replies=2)
        assert closed, f"client still connected after the daemon exited: {rs}"
        assert all(r.code == 421 for r in rs), rs
    finally:
        c.close()


def test_sigterm_right_after_start(make_godwit):
    """SIGTERM as soon as the daemon listens (its workers may still be
    starting): every process must see it and the daemon exit promptly, not
    after the kill timer."""
    g = make_godwit(start=False)
    for i in range(10):
        g.start()
        # the subject: SIGTERM at ten moments of the workers' start-up
        time.sleep(0.005 * i)
        t0 = time.monotonic()
        code = g.stop(timeout=15)
        elapsed = time.monotonic() - t0
        assert code == 0
        assert elapsed < 1.5, \
            f"try {i + 1}: SIGTERM right after start took {elapsed:.1f}s to stop"


def test_sigterm_lets_transaction_finish(make_godwit, uniq):
    g = make_godwit({"limits": {"shutdown_timeout": "20s"}})
    msg = make_message(uniq)
    c = g.raw()
    try:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@example.org>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(msg[:40])
        os.kill(g.pid, signal.SIGTERM)

        # new connections are no longer served
        def not_served():
            try:
                n = RawSMTP(g.host4, g.port, timeout=3)
            except OSError:
                return True
            try:
                r = n.reply(timeout=3)
                return r.code != 220
            except (Closed, socket.timeout, OSError):
                return True
            finally:
                n.close()

        wait_for(not_served, 5, interval=0.2, what="new connections to be refused")
        c.send(msg[40:] + b".\r\n")
        r = c.reply()
        assert (r.code, r.enh) == (250, "2.0.0"), r
        c.try_send(b"QUIT\r\n")
    finally:
        c.close()
    code = g.proc.wait(timeout=15)
    assert code == 0, f"exit code {code}"
    assert len(g.maildir_messages("alice@example.test")) == 1


def test_restart_same_data_dir(make_godwit, uniq):
    g = make_godwit()
    with g.smtp() as s:
        s.sendmail("sender@example.org", ["alice@example.test"], make_message(uniq + "-1"))
    g.stop()
    g.start()
    with g.smtp(6) as s:
        s.sendmail("sender@example.org", ["alice@example.test"], make_message(uniq + "-2"))
    assert len(g.maildir_messages("alice@example.test")) == 2


def _dead(pid):
    """True once pid is a zombie or gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def _wait_children(g, n, timeout=15):
    return wait_for(lambda: len(g.children()) == n and g.children(), timeout,
                    what=f"{n} worker processes")


def test_killed_worker_is_restarted(make_godwit, uniq):
    g = make_godwit({"workers": 2})
    kids = _wait_children(g, 2)
    victim = kids[0]
    os.kill(victim, signal.SIGKILL)
    new = wait_for(lambda: (len(g.children()) == 2 and victim not in g.children()
                            and g.children()), 15, what="the worker to be replaced")
    assert victim not in new
    assert g.running()
    # both workers serve: enough sessions that each gets some
    for i in range(8):
        with g.raw(4 if i % 2 else 6) as c:
            c.ehlo()
            r = transaction(c, "sender@example.org", ["bob@example.test"],
                            make_message(f"{uniq}-{i}"))
            assert r.code == 250, r
    assert len(g.maildir_messages("bob@example.test")) == 8


def test_dead_workers_connections_are_forgotten(make_godwit):
    """Per-IP connection counts of a worker that died are released, or the
    client would be locked out for good."""
    g = make_godwit({"workers": 2, "limits": {"max_connections_per_ip": 2}})
    _wait_children(g, 2)
    held = [g.raw(), g.raw()]
    try:
        for c in held:
            c.ehlo()
        for pid in g.children():
            os.kill(pid, signal.SIGKILL)
        for c in held:
            assert c.wait_closed(5)
    finally:
        for c in held:
            c.close()
    _wait_children(g, 2)

    def two_fit():
        cs = []
        try:
            for _ in range(2):
                c = RawSMTP(g.host4, g.port, timeout=5)
                cs.append(c)
                if c.reply().code != 220:
                    return False
            return True
        except (Closed, OSError):
            return False
        finally:
            for c in cs:
                c.close()

    wait_for(two_fit, 10, interval=0.3, what="the dead workers' connections to be released")


def test_session_survives_other_worker_death(make_godwit, uniq):
    g = make_godwit({"workers": 2})
    kids = _wait_children(g, 2)
    sessions = [g.raw() for _ in range(6)]
    try:
        for c in sessions:
            c.ehlo()
        os.kill(kids[0], signal.SIGKILL)
        # gone (its sockets closed), so no NOOP below is answered by it
        wait_for(lambda: _dead(kids[0]), 10, what="the killed worker to die")
        survivors = 0
        for i, c in enumerate(sessions):
            try:
                r = c.cmd("NOOP", timeout=3)
            except (Closed, OSError, socket.timeout):
                continue
            assert r.code == 250
            r = transaction(c, "sender@example.org", ["alice@example.test"],
                            make_message(f"{uniq}-{i}"))
            assert r.code == 250, r
            survivors += 1
        # sessions on the other worker are untouched (we cannot choose the
        # worker, so all six may have landed on the victim: then none)
        assert len(g.maildir_messages("alice@example.test")) == survivors
    finally:
        for c in sessions:
            c.close()
