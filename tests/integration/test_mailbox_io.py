"""
`godwit mailbox import` and `export` against the real data directory and
real readers: an mboxrd file imported into a user's Maildir and exported
again comes out octet for octet the same (the From_ lines too, given
godwit's own form of them); Debian's mb2md turns the export into a
Maildir with the same messages; Python's mailbox module reads it; a Maildir import keeps the
flags; the files are the daemon user's; POP3 serves what was imported.
"""

import mailbox
import os
import poplib
import pwd
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import PASSWORD, daemon_user, free_port

ALICE = "alice@example.test"

# Messages with what mboxrd must get right: "From " and ">From " lines
# in the body, empty lines at the end, a message with an empty body.
MESSAGES = [
    b"From: bob@example.test\nSubject: one\n\nFrom the start\nmiddle\n"
    b"From again\n",
    b"Subject: two\n\nends with empty lines\n\n\n",
    b"Subject: three\n\n",
    b"Subject: four\nX-Long: " + b">" * 5000 + b"From x\n\n>From quoted\n"
    b">>From twice\nFrom\nFrom \n",
]
# what mb2md (an mboxo reader: it unquotes ">From " only, and keeps the
# separating empty line) must give back unchanged
MB2MD_SAME = [0, 1, 2]


def mboxrd(messages, start=1796544000):
    """The mbox godwit writes for these messages (no Return-Path, so the
    sender is MAILER-DAEMON; dates a second apart)."""
    out = []
    for i, m in enumerate(messages):
        t = time.gmtime(start + i)
        out.append(time.strftime("From MAILER-DAEMON %a %b ", t).encode()
                   + f"{t.tm_mday:2d}".encode()
                   + time.strftime(" %H:%M:%S %Y\n", t).encode())
        for line in m.splitlines(keepends=True):
            if line.lstrip(b">").startswith(b"From "):
                line = b">" + line
            out.append(line)
        out.append(b"\n")
    return b"".join(out)


@pytest.fixture
def g(make_godwit, cert):
    g = make_godwit(start=False)
    (g.base / "tls").mkdir()
    shutil.copy(cert[0], g.base / "tls" / "c.pem")
    shutil.copy(cert[1], g.base / "tls" / "k.pem")
    return g


def maildir_contents(md):
    files = sorted((p for sub in ("new", "cur") if (md / sub).is_dir()
                    for p in (md / sub).iterdir()),
                   key=lambda p: p.name)
    return files, [p.read_bytes() for p in files]


def test_mbox_round_trip_byte_exact(g, tmp_path):
    src = tmp_path / "in.mbox"
    src.write_bytes(mboxrd(MESSAGES))
    os.chmod(src, 0o600)    # root's: read as root, written as the daemon
    r = g.run("mailbox", "import", ALICE, "--mbox", src)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"imported {len(MESSAGES)} messages ")
    files, contents = maildir_contents(g.maildir(ALICE))
    assert contents == MESSAGES
    user = daemon_user()
    for f in files:
        assert f.parent.name == "new"
        assert f.stat().st_mode & 0o777 == 0o640
        if user:
            assert f.stat().st_uid == pwd.getpwnam(user).pw_uid
    if user:
        assert g.maildir(ALICE).stat().st_uid == pwd.getpwnam(user).pw_uid

    out = tmp_path / "out.mbox"
    r = g.run("mailbox", "export", ALICE, "--mbox", out)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"exported {len(MESSAGES)} messages ")
    assert out.read_bytes() == src.read_bytes()
    assert out.stat().st_mode & 0o777 == 0o600

    # POP3 serves what was imported, with the sizes it sends
    pop3_listener(g)
    g.start()
    poplib._MAXLINE = 10000     # message four has a 5000-octet line
    p = poplib.POP3("127.0.0.1", g.pop3_port, timeout=20)
    p.user(ALICE)
    p.pass_(PASSWORD)
    sizes = [int(x.split()[1]) for x in p.list()[1]]
    bodies = [b"\r\n".join(p.retr(i + 1)[1]) + b"\r\n"
              for i in range(len(sizes))]
    p.quit()
    assert bodies == [m.replace(b"\n", b"\r\n") for m in MESSAGES]
    assert sizes == [len(b) for b in bodies]


def pop3_listener(g):
    tls = g.base / "tls"
    g.pop3_port = free_port()
    g.config["listeners"].append(
        {"name": "pop3", "protocol": "pop3", "plaintext_auth": True,
         "listen": [f"127.0.0.1:{g.pop3_port}"]})
    g.config["tls"] = {"certificates": [{"cert": str(tls / "c.pem"),
                                         "key": str(tls / "k.pem")}]}
    g.write_config()


def test_mb2md_and_python_mailbox_read_the_export(g, tmp_path):
    src = tmp_path / "in.mbox"
    src.write_bytes(mboxrd(MESSAGES))
    g.run("mailbox", "import", ALICE, "--mbox", src, check=True)
    out = tmp_path / "out.mbox"
    g.run("mailbox", "export", ALICE, "--mbox", out, check=True)

    dest = tmp_path / "mb2md"
    p = subprocess.run(["mb2md", "-s", str(out), "-d", str(dest)],
                       capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, HOME=str(tmp_path)))
    assert p.returncode == 0, p.stderr
    _, got = maildir_contents(dest)
    assert len(got) == len(MESSAGES)
    for i in MB2MD_SAME:
        assert got[i] == MESSAGES[i] + b"\n", i

    # Python's mailbox module, a second reader we did not write: the
    # export splits into the same messages, each with its envelope line.
    # (mutt under script(1) once did this; it hung on the CI machine.)
    box = mailbox.mbox(str(out), create=False)
    msgs = list(box)
    assert [m["Subject"] for m in msgs] == ["one", "two", "three", "four"]
    want = mboxrd(MESSAGES).split(b"\n")
    want_from = [l[5:].decode() for l in want if l.startswith(b"From ")]
    assert [m.get_from() for m in msgs] == want_from
    assert msgs[2].get_payload() in ("", "\n")
    box.close()


def test_maildir_import_keeps_flags(g, tmp_path):
    src = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (src / sub).mkdir(parents=True)
    files = {
        "new/1700000001.a.host": b"Subject: new\n\nunread\n",
        "cur/1700000002.b.host:2,S": b"Subject: seen\n\nread\n",
        "cur/1700000003.c.host:2,FRS": b"Subject: flagged\n\nanswered\n",
        "cur/1700000004.d.host": b"Subject: noinfo\n\nx\n",
    }
    for name, body in files.items():
        (src / name).write_bytes(body)
        os.utime(src / name, (1700000000, 1700000000))
    r = g.run("mailbox", "import", ALICE, "--maildir", src)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("imported 4 messages ")
    paths, contents = maildir_contents(g.maildir(ALICE))
    got = {p.parent.name + ":" + p.name.partition(":")[2]: c
           for p, c in zip(paths, contents)}
    assert got == {
        "new:": files["new/1700000001.a.host"],
        "cur:2,S": files["cur/1700000002.b.host:2,S"],
        "cur:2,FRS": files["cur/1700000003.c.host:2,FRS"],
        "cur:2,": files["cur/1700000004.d.host"],
    }
    assert all(p.stat().st_mtime == 1700000000 for p in paths)
    # in the original order
    assert [c.split(b"\n")[0] for c in contents] == [
        b"Subject: new", b"Subject: seen", b"Subject: flagged",
        b"Subject: noinfo"]


def test_import_refusals(g, tmp_path):
    src = tmp_path / "in.mbox"
    src.write_bytes(b"Subject: no From_ line\n\nx\n")
    r = g.run("mailbox", "import", ALICE, "--mbox", src)
    assert r.returncode == 1
    assert "not an mbox: no From_ line at the start" in r.stderr
    r = g.run("mailbox", "import", "nobody@example.test", "--mbox", src)
    assert r.returncode == 1
    assert "nobody@example.test: no such user" in r.stderr
    r = g.run("mailbox", "export", ALICE, "--maildir", src)
    assert r.returncode == 2
    assert maildir_contents(g.maildir(ALICE))[1] == []
