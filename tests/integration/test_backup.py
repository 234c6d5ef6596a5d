"""
`godwit backup` and `godwit restore` against the real daemon: a backup
taken while a client keeps sending holds every message that got its 250
before the backup started; restored into a new directory, `serve` starts
on it (as root, dropping to the daemon user), the user logs in over POP3
and finds each of those messages once; owners and modes are right; a
damaged or tampered archive is refused before anything is written.
"""

import gzip
import io
import os
import poplib
import pwd
import shutil
import smtplib
import stat
import tarfile
import threading
import time
from pathlib import Path

import pytest

from conftest import PASSWORD, daemon_user, free_port, wait_for

ALICE = "alice@example.test"


def pop3_overrides(g, crt, key):
    """A plaintext POP3 listener (loopback) and the certificate copied
    below the configuration's directory, where backup takes it along."""
    tls = g.base / "tls"
    tls.mkdir(exist_ok=True)
    shutil.copy(crt, tls / "cert.pem")
    shutil.copy(key, tls / "key.pem")
    os.chmod(tls / "key.pem", 0o600)
    g.pop3_port = free_port()
    g.config["tls"] = {"certificates": [{"cert": str(tls / "cert.pem"),
                                         "key": str(tls / "key.pem")}]}
    g.config["listeners"].append(
        {"name": "pop3", "protocol": "pop3", "plaintext_auth": True,
         "listen": [f"127.0.0.1:{g.pop3_port}"]})
    # loopback may relay: the message for a remote domain waits in the
    # queue (the resolver refuses everything)
    g.config["smtp"]["trusted_networks"] = ["127.0.0.1/32"]
    g.write_config()


def make_server(make_godwit, cert):
    g = make_godwit(start=False)
    pop3_overrides(g, *cert)
    return g


class Sender(threading.Thread):
    """Sends numbered messages to alice until told to stop (bounded in
    count and time); records when each one got its 250."""

    def __init__(self, g, limit=400, seconds=40):
        super().__init__(daemon=True)
        self.g, self.limit, self.seconds = g, limit, seconds
        self.accepted = []      # (n, monotonic time of the 250)
        self.stop = threading.Event()
        self.error = None

    def run(self):
        end = time.monotonic() + self.seconds
        try:
            with self.g.smtp() as s:
                for n in range(self.limit):
                    if self.stop.is_set() or time.monotonic() > end:
                        break
                    msg = (f"From: bob@example.test\r\nTo: {ALICE}\r\n"
                           f"Subject: bk-{n:04d}\r\n\r\nbody {n}\r\n")
                    s.sendmail("bob@example.test", [ALICE], msg)
                    self.accepted.append((n, time.monotonic()))
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e


def pop3_subjects(g, user=ALICE):
    p = poplib.POP3("127.0.0.1", g.pop3_port, timeout=20)
    try:
        p.user(user)
        p.pass_(PASSWORD)
        subjects = []
        for i in range(1, len(p.list()[1]) + 1):
            for line in p.retr(i)[1]:
                if line.startswith(b"Subject: "):
                    subjects.append(line[9:].decode())
        return subjects
    finally:
        p.quit()


def walk(root):
    return sorted(p for p in [root] + list(root.rglob("*")))


def test_backup_under_load_restores_everything(make_godwit, cert, tmp_path):
    g = make_server(make_godwit, cert)
    g.start()
    # a message for a remote domain stays deferred in the queue (DNS
    # refuses everything): the backup must carry it too
    with g.smtp() as s:
        s.sendmail("bob@example.test", ["carol@remote.test"],
                   "Subject: queued\r\n\r\nfor later\r\n")
    wait_for(lambda: g.queue_files(), 10, what="the remote message queued")

    sender = Sender(g)
    sender.start()
    wait_for(lambda: len(sender.accepted) >= 30 or not sender.is_alive(),
             30, what="30 messages accepted")
    started = time.monotonic()
    before = {n for n, t in sender.accepted if t < started}
    archive = tmp_path / "godwit-backup.tar.gz"
    r = g.run("backup", archive)
    sender.stop.set()
    sender.join(30)
    assert sender.error is None, sender.error
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"backup {archive}: "), r.stdout
    assert len(before) >= 30
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert not Path(str(archive) + ".tmp").exists()

    g2 = make_server(make_godwit, cert)
    shutil.rmtree(g2.data_dir)
    restored_cfg = g2.base / "restored" / "godwit.yaml"
    r = g2.run("restore", archive, "--data-dir", g2.data_dir,
               "-c", restored_cfg, global_cfg=False)
    assert r.returncode == 0, r.stderr
    assert f"configuration: {restored_cfg}" in r.stdout
    assert f"change that to {g2.data_dir}" in r.stdout
    # the configuration and the certificate beside it, byte for byte
    assert restored_cfg.read_bytes() == g.cfg_path.read_bytes()
    for f in ("cert.pem", "key.pem"):
        assert (g2.base / "restored" / "tls" / f).read_bytes() == \
            (g.base / "tls" / f).read_bytes()
    assert stat.S_IMODE((g2.base / "restored/tls/key.pem").stat().st_mode) \
        == 0o600

    g2.start()
    subjects = pop3_subjects(g2)
    for n in sorted(before):
        assert subjects.count(f"bk-{n:04d}") == 1, (n, subjects)
    assert len(subjects) == len(set(subjects))
    assert any(p.parent.name == "deferred" or p.parent.name == "incoming"
               or p.parent.name == "active" for p in g2.queue_files())
    check_owners(g, g2)


def check_owners(g, g2):
    """Every restored entry has the original's mode, and the owner the
    data directory's table gives it (the originals are right: the daemon
    and the admin commands made them)."""
    user = daemon_user()
    old, new = g.data_dir, g2.data_dir
    checked = 0
    for p in walk(new):
        rel = p.relative_to(new)
        o = old / rel
        if not o.exists() or o.is_symlink():
            continue
        st, ost = os.lstat(p), os.lstat(o)
        assert stat.S_IMODE(st.st_mode) == stat.S_IMODE(ost.st_mode), rel
        assert (st.st_uid, st.st_gid) == (ost.st_uid, ost.st_gid), rel
        checked += 1
    assert checked > 40
    if user:
        pw = pwd.getpwnam(user)
        md = g2.maildir(ALICE)
        assert os.stat(next(iter((md / "new").iterdir()))).st_uid \
            == pw.pw_uid
        db = new / "db" / "godwit.sqlite"
        assert (os.stat(db).st_uid, os.stat(db).st_gid) == (0, pw.pw_gid)
        assert stat.S_IMODE(os.stat(db).st_mode) == 0o640


def small_backup(make_godwit, cert, tmp_path):
    g = make_server(make_godwit, cert)
    g.start()
    with g.smtp() as s:
        s.sendmail("bob@example.test", [ALICE], "Subject: one\r\n\r\nx\r\n")
    archive = tmp_path / "b.tar.gz"
    g.run("backup", archive, check=True)
    return g, archive


def restore(g, archive, target, *extra):
    return g.run("restore", archive, "--data-dir", target, "-c",
                 target.parent / "restored.yaml", *extra, global_cfg=False)


def test_damaged_archive_is_refused(make_godwit, cert, tmp_path):
    g, archive = small_backup(make_godwit, cert, tmp_path)
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x40
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(bytes(data))
    target = g.base / "t1" / "data"
    r = restore(g, bad, target)
    assert r.returncode == 1, r.stdout
    assert r.stderr.startswith("godwit: "), r.stderr
    assert not target.exists()

    # whole gzip, whole tar, one message changed: the SHA-256 catches it
    out = io.BytesIO()
    with tarfile.open(archive, "r:gz") as src, \
            tarfile.open(fileobj=out, mode="w:gz",
                         format=tarfile.PAX_FORMAT) as dst:
        changed = False
        for m in src.getmembers():
            f = src.extractfile(m) if m.isfile() else None
            body = f.read() if f else None
            if body and "/mail/" in m.name and not changed:
                body = body.replace(b"x", b"y")
                changed = True
            if body is not None:
                m.size = len(body)
                dst.addfile(m, io.BytesIO(body))
            else:
                dst.addfile(m)
        assert changed
    tampered = tmp_path / "tampered.tar.gz"
    tampered.write_bytes(out.getvalue())
    r = restore(g, tampered, target)
    assert r.returncode == 1
    assert "does not match the MANIFEST" in r.stderr, r.stderr
    assert not target.exists()

    # and the same archive unchanged goes through
    r = restore(g, archive, target)
    assert r.returncode == 0, r.stderr


def test_restore_refuses_a_used_target(make_godwit, cert, tmp_path):
    g, archive = small_backup(make_godwit, cert, tmp_path)
    target = g.base / "t" / "data"
    target.mkdir(parents=True)
    (target / "something").write_text("x")
    r = restore(g, archive, target)
    assert r.returncode == 1
    assert "not empty" in r.stderr and "--force" in r.stderr
    assert sorted(os.listdir(target)) == ["something"]
    r = restore(g, archive, target, "--force")
    assert r.returncode == 0, r.stderr
    assert (target / "db" / "godwit.sqlite").is_file()
    # never into data_dir itself (it would copy its own half-written file)
    r = g.run("backup", g.data_dir / "mail" / "b.tar.gz")
    assert r.returncode == 1
    assert "inside data_dir" in r.stderr
    assert not (g.data_dir / "mail" / "b.tar.gz.tmp").exists()
    # a second time: the configuration is there now
    r = restore(g, archive, target, "--force")
    assert r.returncode == 0, r.stderr
    shutil.rmtree(target)
    r = restore(g, archive, target)
    assert r.returncode == 1
    assert "restored.yaml: exists" in r.stderr
