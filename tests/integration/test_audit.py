"""
The tamper-evident audit log (<data_dir>/log/audit.log, store/audit.h):
a JSON line per accepted message, written before the 250, with the
SHA-256 of the stored Maildir file; a line per admin action and per
reload; every line carrying the SHA-256 of the line before. `godwit audit
verify` passes on what the daemon wrote and names the first broken line
after a byte is changed or a line deleted; `--expect HEAD` fails after
the tail is cut; `godwit audit rotate` keeps the chain across files.
"""

import hashlib
import json
import os
import pwd
import re
import shutil
import time

import pytest

from conftest import PASSWORD, clear_of_midnight, daemon_user, wait_for

GENESIS = "0" * 64


@pytest.fixture(autouse=True)
def _one_day():
    """Every test here reads a file the daemon rotates at local midnight
    (and names files after today): none starts in the minute before it."""
    clear_of_midnight()


def audit_path(g, name="audit.log"):
    return g.data_dir / "log" / name


def lines_of(path):
    data = path.read_bytes()
    assert data.endswith(b"\n"), "every line ends with a newline"
    return data[:-1].split(b"\n")


def records(g, name="audit.log"):
    return [json.loads(l) for l in lines_of(audit_path(g, name))]


def check_links(lines, first_prev=None):
    """Each line's prev is the SHA-256 of the line before."""
    prev = first_prev
    for i, l in enumerate(lines):
        rec = json.loads(l)
        assert l.startswith(b'{"prev":"'), l
        if prev is not None:
            assert rec["prev"] == prev, f"line {i + 1}"
        prev = hashlib.sha256(l).hexdigest()
    return prev


def send(g, sender, rcpts, body, user=None):
    s = g.smtp()
    try:
        s.ehlo()
        code, _ = s.mail(sender)
        assert code == 250
        for r in rcpts:
            code, _ = s.rcpt(r)
            assert code == 250, r
        code, msg = s.data(body)
        assert code == 250, msg
        return re.search(rb"queued as (\S+)", msg).group(1).decode()
    finally:
        s.quit()


def message_line(g, qid):
    return wait_for(
        lambda: next((r for r in records(g) if r.get("queue") == qid), None),
        10, what=f"the audit line of {qid}")


def verify(g, *args):
    return g.run("audit", "verify", *args)


def head(g):
    p = g.run("audit", "head", check=True)
    return p.stdout.strip()


# ------------------------------------------------------------ messages ---


def test_accepted_mail_has_a_chained_line(godwit, uniq):
    g = godwit
    body = f"Subject: {uniq}\r\n\r\nhello\r\n"
    # a quoted local part with a quote and a backslash: the line stays
    # one valid JSON object and the value comes back as sent
    sender = '"we\\"ird\\\\one"@remote.test'
    qid = send(g, sender, ["alice@example.test", "team@example.test"], body)
    rec = message_line(g, qid)
    files = g.find_messages(uniq)
    assert len(files) == 2  # alice (once: hard link) and bob
    data = files[0].read_bytes()
    assert rec["type"] == "message"
    assert rec["origin"] == "smtp"
    assert rec["ip"] == "127.0.0.1"
    assert rec["sender"] == sender
    assert rec["rcpts"] == ["alice@example.test", "team@example.test"]
    assert sorted(rec["mailboxes"]) == ["alice@example.test",
                                        "bob@example.test"]
    assert rec["remote"] == []
    assert "user" not in rec
    assert rec["size"] == len(data)
    assert rec["sha256"] == hashlib.sha256(data).hexdigest()
    for f in files:
        assert hashlib.sha256(f.read_bytes()).hexdigest() == rec["sha256"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z",
                        rec["time"])
    # the chain: the first line of the first file starts at genesis
    lines = lines_of(audit_path(g))
    assert json.loads(lines[0])["prev"] == GENESIS
    last = check_links(lines)
    assert head(g) == last
    p = verify(g)
    assert p.returncode == 0, p.stderr
    assert f"head {last}" in p.stdout
    # the parent anchored the head at start in the normal log
    assert re.search(r"fac=audit event=audit-head head=[0-9a-f]{64}",
                     g.log_text())


def test_submission_line_names_the_user(make_godwit, cert, uniq):
    import smtplib
    from conftest import client_tls_context, free_port

    port = free_port()
    g = make_godwit({
        "tls": {"certificates": [{"cert": str(cert[0]), "key": str(cert[1])}]},
        "listeners": [
            {"name": "mx", "protocol": "smtp",
             "listen": [f"127.0.0.1:{free_port()}"], "greet_pause": 0},
            {"name": "sub", "protocol": "submission",
             "listen": [f"127.0.0.1:{port}"]},
        ]})
    s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.test",
                     timeout=10)
    try:
        s.starttls(context=client_tls_context())
        s.login("alice@example.test", PASSWORD)
        s.mail("alice@example.test")
        assert s.rcpt("bob@example.test")[0] == 250
        assert s.rcpt("someone@remote.test")[0] == 250
        code, msg = s.data(f"From: alice@example.test\r\nSubject: {uniq}\r\n"
                           f"\r\nhi\r\n")
        assert code == 250, msg
    finally:
        s.quit()
    qid = re.search(rb"queued as (\S+)", msg).group(1).decode()
    rec = message_line(g, qid)
    assert rec["user"] == "alice@example.test"
    assert rec["mailboxes"] == ["bob@example.test"]
    assert rec["remote"] == ["someone@remote.test"]
    data = g.find_messages(uniq)[0].read_bytes()
    assert rec["sha256"] == hashlib.sha256(data).hexdigest()


def test_queued_local_delivery_and_its_report(make_godwit, uniq):
    """A local recipient who asked for a success report goes through the
    queue: its line at acceptance lists it as queued; the runner's local
    delivery has a line of its own ("origin":"queue", the hash of the
    Maildir file), and so has the report it sends ("origin":"godwit").
    (A trusted client: reports are promised only to verified senders.)"""
    g = make_godwit({"smtp": {"trusted_networks": ["127.0.0.0/8"]}})
    s = g.smtp()
    try:
        s.ehlo()
        assert s.mail("x@remote.test")[0] == 250
        assert s.rcpt("alice@example.test", ["NOTIFY=SUCCESS"])[0] == 250
        code, msg = s.data(f"Subject: {uniq}\r\n\r\nhi\r\n")
        assert code == 250, msg
    finally:
        s.quit()
    qid = re.search(rb"queued as (\S+)", msg).group(1).decode()
    g.wait_messages("alice@example.test", 1)

    def lines():
        recs = [r for r in records(g) if r["type"] == "message"]
        mine = [r for r in recs if r["queue"] == qid]
        report = [r for r in recs if r["origin"] == "godwit"]
        return (mine, report) if len(mine) == 2 and report else None

    mine, report = wait_for(lines, 15, what="the queue's and report's lines")
    assert mine[0]["origin"] == "smtp"
    assert mine[0]["remote"] == ["alice@example.test"]
    assert mine[0]["mailboxes"] == []
    local = mine[1]
    assert local["origin"] == "queue"
    assert (local["ip"], local["sender"]) == ("127.0.0.1", "x@remote.test")
    assert local["mailboxes"] == ["alice@example.test"]
    data = g.find_messages(uniq)[0].read_bytes()
    assert local["sha256"] == hashlib.sha256(data).hexdigest()
    assert report[0]["sender"] == ""
    assert report[0]["remote"] == ["x@remote.test"]
    assert verify(g).returncode == 0


def test_no_250_without_its_line(godwit, uniq):
    """When the audit log cannot be written the message is not accepted:
    451 4.3.0 and nothing in the Maildir (the client will retry); once it
    can be written again, mail flows and the chain is whole."""
    g = godwit
    path = audit_path(g)
    aside = audit_path(g, "aside")
    os.rename(path, aside)
    os.mkdir(path)  # a directory where audit.log belongs: open() fails
    try:
        s = g.smtp()
        s.ehlo()
        assert s.mail("x@remote.test")[0] == 250
        assert s.rcpt("alice@example.test")[0] == 250
        code, msg = s.data(f"Subject: {uniq}-refused\r\n\r\nhi\r\n")
        s.quit()
        assert code == 451 and msg.startswith(b"4.3.0"), (code, msg)
        assert g.find_messages(f"{uniq}-refused") == []
        assert "fac=store event=audit-failed" in g.log_text()
    finally:
        os.rmdir(path)
        os.rename(aside, path)
    qid = send(g, "x@remote.test", ["alice@example.test"],
               f"Subject: {uniq}-ok\r\n\r\nhi\r\n")
    message_line(g, qid)
    assert len(g.find_messages(f"{uniq}-ok")) == 1
    assert verify(g).returncode == 0


def test_disabled_writes_no_message_line(make_godwit, uniq):
    g = make_godwit({"audit": {"enabled": False}})
    before = audit_path(g).read_bytes()
    send(g, "x@remote.test", ["alice@example.test"],
         f"Subject: {uniq}\r\n\r\nhi\r\n")
    g.wait_messages("alice@example.test", 1)
    assert audit_path(g).read_bytes() == before


# ------------------------------------------------------- admin actions ---


def test_admin_actions_and_reload_are_recorded(godwit):
    g = godwit
    g.admin("domain", "add", "other.test")
    g.admin("user", "add", "carol@other.test", "--password-stdin",
            input=PASSWORD + "\n")
    g.admin("alias", "add", "info@other.test", "carol@other.test")
    p = g.run("user", "del", "nobody@other.test")
    assert p.returncode == 1
    p = g.run("queue", "hold", "NOSUCHID")
    assert p.returncode != 0 and p.returncode != 2
    size = len(lines_of(audit_path(g)))
    g.reload()
    wait_for(lambda: len(lines_of(audit_path(g))) > size, 10,
             what="the reload's line")
    admin = [r for r in records(g) if r["type"] == "admin"]
    got = [(r["action"], r["object"], r["result"]) for r in admin]
    assert ("domain-add", "other.test", "ok") in got
    # the password came on stdin: the object is the address only
    assert ("user-add", "carol@other.test", "ok") in got
    assert ("alias-add", "info@other.test carol@other.test", "ok") in got
    assert ("user-del", "nobody@other.test", "failed") in got
    assert ("queue-hold", "NOSUCHID", "failed") in got
    assert got[-1] == ("config-reload", str(g.cfg_path), "ok")
    me = pwd.getpwuid(os.getuid()).pw_name
    for r in admin[:-1]:
        assert (r["actor"], r["uid"]) == (me, os.getuid()), r
    assert admin[-1]["actor"] == "signal" and "uid" not in admin[-1]
    # a usage error changed nothing and is not recorded
    n = len(lines_of(audit_path(g)))
    assert g.run("domain", "add").returncode == 2
    assert len(lines_of(audit_path(g))) == n
    assert verify(g).returncode == 0


def test_reading_mail_and_restoring_are_recorded(godwit):
    """`mailbox export` and `backup` read users' mail: each has its line.
    A restore appends its own line to the restored chain."""
    g = godwit
    send(g, "x@remote.test", ["alice@example.test"], "Subject: r\r\n\r\nr\r\n")
    mbox = g.base / "alice.mbox"
    p = g.run("mailbox", "export", "alice@example.test", "--mbox", mbox)
    assert p.returncode == 0, p.stderr
    rec = records(g)[-1]
    assert (rec["action"], rec["object"], rec["result"]) == (
        "mailbox-export", f"alice@example.test {mbox}", "ok")
    p = g.run("mailbox", "export", "nobody@example.test", "--mbox", mbox)
    assert p.returncode == 1
    rec = records(g)[-1]
    assert (rec["action"], rec["result"]) == ("mailbox-export", "failed")
    archive = g.base / "audit-backup.tar.gz"
    p = g.run("backup", archive)
    assert p.returncode == 0, p.stderr
    rec = records(g)[-1]
    assert (rec["action"], rec["object"], rec["result"]) == (
        "backup", str(archive), "ok")
    assert rec["actor"] == pwd.getpwuid(os.getuid()).pw_name
    # the archive has the chain up to the line before the backup's own
    backed = lines_of(audit_path(g))[:-1]
    target = g.base / "restored-data"
    p = g.run("restore", archive, "--data-dir", target, "-c",
              g.base / "restored.yaml", global_cfg=False)
    assert p.returncode == 0, p.stderr
    restored = lines_of(target / "log" / "audit.log")
    assert restored[:-1] == backed
    last = json.loads(restored[-1])
    assert (last["type"], last["action"], last["object"],
            last["result"]) == ("admin", "restore", str(archive), "ok")
    check_links(restored)
    assert last["prev"] == hashlib.sha256(backed[-1]).hexdigest()
    assert verify(g).returncode == 0


def test_queue_action_without_daemon_names_who_ran_it(make_godwit):
    """`queue hold` with no daemon running moves the file itself as the
    daemon user; its line still names root, who ran it."""
    g = make_godwit({"smtp": {"trusted_networks": ["127.0.0.0/8"]}})
    qid = send(g, "a@example.test", ["x@remote.test"], "Subject: q\r\n\r\nq\r\n")
    # its first attempt failed (the test's DNS refuses): deferred, where
    # hold applies
    wait_for(lambda: any(p.name == qid for p in g.queue_files("deferred")),
             15, what="the message deferred")
    g.stop()
    p = g.run("queue", "hold", qid)
    assert p.returncode == 0, p.stderr
    rec = records(g)[-1]
    assert (rec["action"], rec["object"], rec["result"]) == (
        "queue-hold", qid, "ok")
    assert rec["uid"] == os.getuid()
    assert verify(g).returncode == 0


# ------------------------------------------------------------ tampering ---


@pytest.fixture
def filled(make_godwit):
    """A stopped daemon whose audit.log has a few message lines."""
    g = make_godwit()
    for i in range(4):
        send(g, f"s{i}@remote.test", ["alice@example.test"],
             f"Subject: t{i}\r\n\r\nbody {i}\r\n")
    g.wait_messages("alice@example.test", 4)
    g.stop()
    p = verify(g)
    assert p.returncode == 0, p.stderr
    return g


def broken_at(p, where):
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert f"broken at {where}:" in p.stderr, p.stderr


def test_verify_names_the_line_after_a_changed_byte(filled):
    g = filled
    path = audit_path(g)
    lines = lines_of(path)
    k = len(lines) - 2  # 0-based: a line that has a successor
    assert b"@remote.test" in lines[k]
    lines[k] = lines[k].replace(b"@remote.test", b"@remote.tesu", 1)
    path.write_bytes(b"\n".join(lines) + b"\n")
    # the changed line still has its shape; the next one no longer links
    broken_at(verify(g), f"{path}:{k + 2}")


def test_verify_names_the_gap_of_a_deleted_line(filled):
    g = filled
    path = audit_path(g)
    lines = lines_of(path)
    k = len(lines) - 3
    del lines[k]
    path.write_bytes(b"\n".join(lines) + b"\n")
    broken_at(verify(g), f"{path}:{k + 1}")


def test_verify_names_a_torn_or_malformed_line(filled):
    g = filled
    path = audit_path(g)
    original = path.read_bytes()
    path.write_bytes(original[:-5])
    n = len(lines_of_raw(original))
    broken_at(verify(g), f"{path}:{n}")
    p = verify(g)
    assert "incomplete" in p.stderr
    path.write_bytes(original + b"not json\n")
    broken_at(verify(g), f"{path}:{n + 1}")


def lines_of_raw(data):
    return data[:-1].split(b"\n")


def test_expect_fails_when_the_tail_is_cut(filled):
    g = filled
    path = audit_path(g)
    anchored = head(g)
    assert verify(g, "--expect", anchored).returncode == 0
    # an older anchor is in the chain too
    lines = lines_of(path)
    older = hashlib.sha256(lines[1]).hexdigest()
    assert verify(g, "--expect", older).returncode == 0
    # the last line cut: what is left is a whole chain, but it no
    # longer holds the anchored head
    path.write_bytes(b"\n".join(lines[:-1]) + b"\n")
    assert verify(g).returncode == 0
    p = verify(g, "--expect", anchored)
    assert p.returncode == 1
    assert anchored in p.stderr
    assert g.run("audit", "verify", "--expect", "xyz").returncode == 1
    assert g.run("audit", "verify", "--bogus").returncode == 2


# ------------------------------------------------------------- rotation ---


def test_rotation_keeps_the_chain(godwit):
    g = godwit
    send(g, "a@remote.test", ["alice@example.test"], "Subject: 1\r\n\r\n1\r\n")
    old_head = head(g)
    p = g.run("audit", "rotate", check=True)
    today = time.strftime("%Y-%m-%d")
    rotated = audit_path(g, f"audit.log.{today}")
    assert str(rotated) in p.stdout
    assert hashlib.sha256(lines_of(rotated)[-1]).hexdigest() == old_head
    first = records(g)[0]
    assert first["type"] == "rotate"
    assert first["prev"] == old_head
    assert first["previous"] == f"audit.log.{today}"
    # the new file is the daemon's, and the workers append to it
    user = daemon_user()
    st = audit_path(g).stat()
    if user:
        assert st.st_uid == pwd.getpwnam(user).pw_uid
    assert st.st_mode & 0o777 == 0o640
    qid = send(g, "b@remote.test", ["alice@example.test"],
               "Subject: 2\r\n\r\n2\r\n")
    message_line(g, qid)
    # a second rotation on the same day takes the next name
    g.run("audit", "rotate", check=True)
    assert audit_path(g, f"audit.log.{today}.1").exists()
    qid = send(g, "c@remote.test", ["alice@example.test"],
               "Subject: 3\r\n\r\n3\r\n")
    message_line(g, qid)
    p = verify(g)
    assert p.returncode == 0, p.stderr
    assert "in 3 files" in p.stdout
    # a rotated file changed breaks the first line of the file after it
    g.stop()
    lines = lines_of(rotated)
    lines[-1] = lines[-1].replace(b"a@remote.test", b"A@remote.test")
    rotated.write_bytes(b"\n".join(lines) + b"\n")
    broken_at(verify(g), f"{audit_path(g, f'audit.log.{today}.1')}:1")
    # retention removing the oldest file leaves a chain that still holds
    rotated.unlink()
    p = verify(g)
    assert p.returncode == 0, p.stderr
    assert "older files removed" in p.stdout


def test_start_rotates_a_log_of_an_earlier_day(make_godwit):
    """The parent rotates at the first tick of a new day, and at start
    when audit.log was last written on an earlier day (a server that was
    down over midnight): named after that day, the chain kept."""
    g = make_godwit(start=False)
    path = audit_path(g)
    old_head = check_links(lines_of(path))
    yesterday = time.time() - 86400
    os.utime(path, (yesterday, yesterday))
    day = time.strftime("%Y-%m-%d", time.localtime(yesterday))
    g.start()
    rotated = audit_path(g, f"audit.log.{day}")
    wait_for(rotated.exists, 10, what=f"{rotated.name}")
    assert hashlib.sha256(lines_of(rotated)[-1]).hexdigest() == old_head
    # the rotated name is linked first, the new audit.log renamed in
    # after it: wait for that one too
    first = wait_for(lambda: next((r for r in records(g)[:1]
                                   if r["type"] == "rotate"), None),
                     10, what="the new audit.log")
    assert (first["type"], first["prev"], first["previous"]) == (
        "rotate", old_head, f"audit.log.{day}")
    assert re.search(r"event=audit-rotated file=audit\.log\." + day,
                     g.log_text())
    p = verify(g)
    assert p.returncode == 0, p.stderr
    assert "in 2 files" in p.stdout
