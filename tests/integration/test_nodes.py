"""
Several nodes on one shared mail store (docs/scale-out.md): two godwit
daemons, each with its own data_dir (queue, logs, user database), one
mail_dir between them (a local directory stands for the NFS export).

- mail delivered over SMTP through A is in IMAP on B, and an IMAP IDLE
  on B is told of it;
- IMAP APPENDs to one folder through A and B at once get distinct UIDs,
  the same on both nodes (dovecot-uidlist under its dotlock);
- POP3 on A holds the mailbox: POP3 on B gets -ERR [IN-USE]; after A's
  QUIT, B sees A's deletions;
- `godwit queue adopt`: A's queue (deferred, held and incoming mail)
  taken over by B after A was killed with SIGKILL, delivered once, A's
  queue left empty but for a torn file (reported, left in place), a
  second run a no-op, an interrupted earlier run finished without a
  second delivery.

Every wait is bounded.
"""

import hashlib
import imaplib
import os
import poplib
import pwd
import re
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import PASSWORD, free_port, wait_for
from imap_mbox_util import ALICE, BOB, deliver, message, raw, status_of

PUSH_TIMEOUT = 15


@pytest.fixture
def shared_mail(godwit_root):
    d = Path(tempfile.mkdtemp(prefix="shared-mail-", dir=godwit_root))
    os.chmod(d, 0o755)
    return d / "mail"


def node(make_godwit, mail_dir, extra=None):
    """A started node with mx, imap and pop3 listeners on the shared
    mail_dir; the IDLE check every second."""
    o = {"mail_dir": str(mail_dir),
         "imap": {"idle_check_interval": "1s"},
         "auth": {"delay_base": "100ms", "delay_max": "400ms"}}
    if extra:
        for k, v in extra.items():
            if isinstance(v, dict):
                o.setdefault(k, {}).update(v)
            else:
                o[k] = v
    g = make_godwit(o, start=False)
    g.imap_port, g.pop3_port = free_port(), free_port()
    g.config["listeners"] += [
        {"name": "imap", "protocol": "imap", "plaintext_auth": True,
         "listen": [f"127.0.0.1:{g.imap_port}"]},
        {"name": "pop3", "protocol": "pop3", "plaintext_auth": True,
         "listen": [f"127.0.0.1:{g.pop3_port}"]},
    ]
    g.write_config()
    g.start()
    return g


def imap(g, user=ALICE):
    m = imaplib.IMAP4("127.0.0.1", g.imap_port, timeout=30)
    m.login(user, PASSWORD)
    return m


def uid_subjects(g, folder="INBOX"):
    """{uid: subject} of folder as g serves it."""
    m = imap(g)
    try:
        typ, _ = m.select(folder)
        assert typ == "OK"
        typ, data = m.uid("FETCH", "1:*",
                          "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert typ == "OK", data
        out = {}
        for item in data:
            if not isinstance(item, tuple):
                continue
            uid = int(re.search(rb"UID (\d+)", item[0]).group(1))
            subj = re.search(rb"Subject: (.*)", item[1]).group(1).strip()
            out[uid] = subj.decode()
        return out
    finally:
        m.logout()


def test_shared_mail_dir(make_godwit, shared_mail):
    a = node(make_godwit, shared_mail)
    b = node(make_godwit, shared_mail)
    assert a.maildir(ALICE) == b.maildir(ALICE)

    # delivered through A, read through B; IDLE on B told of A's delivery
    deliver(a, ALICE, message("through-a"))
    assert list(uid_subjects(b).values()) == ["through-a"]
    with raw(b) as c:
        u, t = c.cmd('SELECT "INBOX"')
        assert "* 1 EXISTS" in u, u
        tag = c.tag()
        c.send(f"{tag} IDLE\r\n")
        assert c.line() == "+ idling"
        deliver(a, ALICE, message("idle-through-a"))
        deadline = time.monotonic() + PUSH_TIMEOUT
        seen = []
        while "* 2 EXISTS" not in seen:
            left = deadline - time.monotonic()
            assert left > 0, f"no EXISTS on B: {seen}"
            seen.append(c.line(timeout=left))
        c.send("DONE\r\n")
        _, tagged = c.until(tag)
        assert status_of(tagged) == "OK", tagged

    # APPENDs through both nodes at once: distinct UIDs, one view
    n_each = 8
    errors = []

    def appender(g, who):
        try:
            m = imap(g)
            for i in range(n_each):
                typ, data = m.append("INBOX", None, None,
                                     message(f"{who}-{i}"))
                assert typ == "OK", data
            m.logout()
        except Exception as e:  # reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=appender, args=(g, w))
               for g, w in ((a, "a"), (b, "b"), (a, "a2"), (b, "b2"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)
    va, vb = uid_subjects(a), uid_subjects(b)
    assert va == vb
    assert len(va) == 2 + 4 * n_each
    assert len(set(va.values())) == len(va)

    # POP3: A holds the mailbox, B is refused; A's deletions seen by B
    pa = poplib.POP3("127.0.0.1", a.pop3_port, timeout=20)
    pa.user(ALICE)
    pa.pass_(PASSWORD)
    total = len(va)
    assert pa.stat()[0] == total
    pb = poplib.POP3("127.0.0.1", b.pop3_port, timeout=20)
    pb.user(ALICE)
    with pytest.raises(poplib.error_proto) as e:
        pb.pass_(PASSWORD)
    assert b"[IN-USE]" in e.value.args[0], e.value.args
    pb.close()
    pa.dele(1)
    pa.dele(2)
    pa.quit()
    pb = poplib.POP3("127.0.0.1", b.pop3_port, timeout=20)
    pb.user(ALICE)
    pb.pass_(PASSWORD)
    assert pb.stat()[0] == total - 2
    pb.quit()
    assert len(uid_subjects(a)) == total - 2

    # a node's backup leaves the shared store out, and says so
    out = a.base / "backup.tar"
    p = a.run("backup", out, check=True)
    assert f"not included: mail_dir {shared_mail}" in p.stdout, p.stdout


def test_idle_check_without_inotify(make_godwit, shared_mail, monkeypatch):
    """B's inotify is blinded (GODWIT_TEST_BLIND_WATCH), as on NFS where
    another node's changes raise no event: the imap.idle_check_interval
    check alone brings A's deliveries to B's IDLE and to its next
    command."""
    a = node(make_godwit, shared_mail)
    monkeypatch.setenv("GODWIT_TEST_BLIND_WATCH", "1")
    b = node(make_godwit, shared_mail)
    monkeypatch.delenv("GODWIT_TEST_BLIND_WATCH")
    with raw(b) as c:
        u, t = c.cmd('SELECT "INBOX"')
        assert "* 0 EXISTS" in u, u
        tag = c.tag()
        c.send(f"{tag} IDLE\r\n")
        assert c.line() == "+ idling"
        deliver(a, ALICE, message("blind-1"))
        deadline = time.monotonic() + PUSH_TIMEOUT
        seen = []
        while "* 1 EXISTS" not in seen:
            left = deadline - time.monotonic()
            assert left > 0, f"no EXISTS on B: {seen}"
            seen.append(c.line(timeout=left))
        c.send("DONE\r\n")
        _, tagged = c.until(tag)
        assert status_of(tagged) == "OK", tagged
        # between commands: seen once the interval has passed
        deliver(a, ALICE, message("blind-2"))
        deadline = time.monotonic() + PUSH_TIMEOUT
        while True:
            u, t = c.cmd("NOOP")
            assert status_of(t) == "OK", t
            if "* 2 EXISTS" in u:
                break
            assert time.monotonic() < deadline, u
            time.sleep(0.3)


# ---- queue adopt --------------------------------------------------------


def queue_file_text(qid, rcpt, body, sender="sender@example.org"):
    """A queue file as docs/queue-format.md describes it."""
    msg = body.replace(b"\r\n", b"\n")
    head = (f"godwit-queue 1\nid {qid}\narrival {int(time.time())}\n"
            f"client 127.0.0.1\nhelo client.test\nsender {sender}\n"
            f"body 7BIT\nsmtputf8 0\nret +\nenvid +\nrcpt {rcpt} 0 +\n"
            f"size {len(msg)}\n\n").encode()
    return head + msg + b"\n.end godwit-queue\n"


def place(g, sub, name, data):
    """A file into g's queue/<sub>, the daemon user's as the runner's
    would be."""
    p = g.data_dir / "queue" / sub / name
    p.write_bytes(data)
    user = g.config.get("user") or ""
    if user:
        pw = pwd.getpwnam(user)
        os.chown(p, pw.pw_uid, pw.pw_gid)
    return p


def queue_ids(g, sub):
    d = g.data_dir / "queue" / sub
    return sorted(p.name for p in d.iterdir() if p.is_file()) \
        if d.is_dir() else []


def relay(g, rcpt, subject):
    deliver(g, rcpt, message(subject, to=rcpt))


def test_queue_adopt(make_godwit, shared_mail):
    trusted = {"smtp": {"trusted_networks": ["127.0.0.0/8"]}}
    a = node(make_godwit, shared_mail, trusted)
    b = node(make_godwit, shared_mail, trusted)

    # A: two messages for a remote domain (the test's DNS refuses every
    # lookup: they stay deferred), one of them held
    relay(a, "far@example.net", "adopt-deferred")
    relay(a, "far2@example.net", "adopt-held")
    wait_for(lambda: len(queue_ids(a, "deferred")) == 2, 20,
             what="two deferred messages on A")
    held = queue_ids(a, "deferred")[1]
    a.admin("queue", "hold", held)
    # B: one of its own, whose id A's incoming message will also have
    relay(b, "far3@example.net", "b-own")
    wait_for(lambda: len(queue_ids(b, "deferred")) == 1, 20,
             what="B's deferred message")
    b_own = queue_ids(b, "deferred")[0]

    a.kill9()
    # mail A had accepted for a local user, not yet picked up; and a torn
    # file (no end marker)
    local_body = message("adopt-local-for-bob", to=BOB)
    place(a, "incoming", b_own, queue_file_text(b_own, BOB, local_body))
    torn_id = "0" * 11 + "00001"
    torn = place(a, "incoming", torn_id,
                 queue_file_text(torn_id, BOB, message("torn"))[:-5])

    p = b.run("queue", "adopt", a.data_dir)
    assert p.returncode == 1, p.stdout + p.stderr   # the torn file
    out = p.stdout
    assert "3 moved, 0 finished, 1 torn" in out, out
    assert f"torn incoming/{torn_id}" in out, out
    m = re.search(rf"adopted incoming/{b_own} -> incoming/([0-9a-f]{{16}})",
                  out)
    assert m and m.group(1) != b_own, out   # a new id: b_own is B's
    assert re.search(rf"adopted hold/{held} -> hold/{held}", out), out
    assert torn.exists()
    for sub in ("incoming", "active", "deferred", "hold"):
        left = queue_ids(a, sub)
        assert left == ([torn_id] if sub == "incoming" else []), (sub, left)

    # B delivers bob's message into the shared store, once
    b.wait_messages(BOB, 1, timeout=20)
    time.sleep(1)
    assert len(b.find_messages("adopt-local-for-bob")) == 1
    # the deferred one is B's now (retried, deferred again), the held one
    # held; B's own untouched
    wait_for(lambda: len(queue_ids(b, "deferred")) == 2, 20,
             what="the adopted deferred message deferred on B")
    assert queue_ids(b, "hold") == [held]
    assert b_own in queue_ids(b, "deferred")
    assert list((b.data_dir / "queue" / "adopt").iterdir()) == []
    lst = b.run("queue", "list", check=True).stdout
    assert held in lst
    audit = (b.data_dir / "log" / "audit.log").read_text()
    assert '"action":"queue-adopt"' in audit, audit[-2000:]

    # again: nothing to do but report the torn file
    p = b.run("queue", "adopt", a.data_dir)
    assert "0 moved, 0 finished, 1 torn" in p.stdout, p.stdout
    torn.unlink()
    p = b.run("queue", "adopt", a.data_dir / "queue", check=True)
    assert "0 moved, 0 finished, 0 torn (left), 0 failed" in p.stdout

    # an earlier adopt that crashed after its commit (the record there,
    # the staged copy gone) is finished without delivering again; one
    # that crashed before (record and staged copy there) is committed
    done_id = "1" * 11 + "00002"
    staged_id = "1" * 11 + "00003"
    adopt = b.data_dir / "queue" / "adopt"
    for qid, subj in ((done_id, "adopt-crash-after"),
                      (staged_id, "adopt-crash-before")):
        data = queue_file_text(qid, BOB, message(subj, to=BOB))
        place(a, "incoming", qid, data)
        rec = adopt / f"{qid}.{qid}.t"
        rec.write_text(hashlib.sha256(data).hexdigest())
        if qid == staged_id:
            (adopt / f"{qid}.{qid}.q").write_bytes(data)
    for f in adopt.iterdir():
        pw = pwd.getpwnam(b.config["user"])
        os.chown(f, pw.pw_uid, pw.pw_gid)
    p = b.run("queue", "adopt", a.data_dir, check=True)
    assert "0 moved, 2 finished" in p.stdout, p.stdout
    wait_for(lambda: b.find_messages("adopt-crash-before"), 20,
             what="the staged message delivered")
    time.sleep(1)
    assert b.find_messages("adopt-crash-after") == []
    assert len(b.find_messages("adopt-crash-before")) == 1
    assert queue_ids(a, "incoming") == []
    assert list(adopt.iterdir()) == []

    # a copy staged but never recorded (a crash before the record) is
    # thrown away and made again: delivered once
    qid = "1" * 11 + "00004"
    data = queue_file_text(qid, BOB, message("adopt-unrecorded", to=BOB))
    place(a, "incoming", qid, data)
    stale = adopt / f"{qid}.{qid}.q"
    stale.write_bytes(data[:40])
    pw = pwd.getpwnam(b.config["user"])
    os.chown(stale, pw.pw_uid, pw.pw_gid)
    p = b.run("queue", "adopt", a.data_dir, check=True)
    assert "1 moved, 0 finished" in p.stdout, p.stdout
    wait_for(lambda: b.find_messages("adopt-unrecorded"), 20,
             what="the unrecorded message delivered")
    time.sleep(1)
    assert len(b.find_messages("adopt-unrecorded")) == 1
    assert list(adopt.iterdir()) == []

    # a queue that is ours, or no queue at all, is refused
    p = b.run("queue", "adopt", b.data_dir)
    assert p.returncode == 1 and "our own queue" in p.stderr, p.stderr
    p = b.run("queue", "adopt", b.base)
    assert p.returncode == 1 and "neither" in p.stderr, p.stderr
