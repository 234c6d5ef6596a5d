"""
Privilege separation: started as root with `user: godwit`, the parent
keeps root (to bind and reload) and the network-facing workers run as the
unprivileged user with no capabilities; mail still gets delivered.
Needs root and the `godwit` user (scripts/install-deps.sh creates it).
"""

import json
import os
import grp
import pwd
import shutil
import stat
import subprocess

import pytest

from conftest import daemon_user, free_port, wait_for
from smtpclient import make_message


def _need_drop():
    if daemon_user() != "godwit":
        pytest.skip("needs root and the user godwit "
                    "(scripts/install-deps.sh creates it)")
    return pwd.getpwnam("godwit")


@pytest.fixture
def priv_godwit(make_godwit):
    """The default set-up, which is production's: root, dropping to
    godwit (conftest.default_config)."""
    pw = _need_drop()
    g = make_godwit()
    assert g.config["user"] == "godwit"
    return g, pw


def _ids(pid):
    with open(f"/proc/{pid}/status") as f:
        st = dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)
    uids = [int(x) for x in st["Uid"].split()]
    gids = [int(x) for x in st["Gid"].split()]
    groups = [int(x) for x in st.get("Groups", "").split()]
    capeff = int(st["CapEff"].strip(), 16)
    return uids, gids, groups, capeff


def test_workers_drop_privileges(priv_godwit, uniq):
    g, pw = priv_godwit
    # a worker is root for a moment after fork(), until it drops
    def dropped():
        kids = g.children()
        return len(kids) >= 2 and all(_ids(p)[0][0] == pw.pw_uid for p in kids) and kids

    try:
        kids = wait_for(dropped, 5, what="workers to drop privileges")
    except AssertionError:
        kids = g.children()
    for pid in kids:
        uids, gids, groups, capeff = _ids(pid)
        assert uids == [pw.pw_uid] * 4, f"worker {pid} uids {uids}"
        assert gids == [pw.pw_gid] * 4, f"worker {pid} gids {gids}"
        assert set(groups) <= {pw.pw_gid}, f"worker {pid} keeps groups {groups}"
        assert capeff == 0, f"worker {pid} has capabilities {capeff:#x}"

    with g.smtp() as s:
        assert s.sendmail("sender@example.org", ["alice@example.test"],
                          make_message(uniq)) == {}
    files = [p for p in g.maildir_files("alice@example.test") if uniq.encode() in p.read_bytes()]
    assert len(files) == 1
    # written by the worker, so owned by godwit, and not world-readable
    st = files[0].stat()
    assert st.st_uid == pw.pw_uid, f"message owned by uid {st.st_uid}"
    assert st.st_mode & 0o007 == 0, f"message mode {st.st_mode & 0o777:o}"


def test_workers_keep_the_users_groups(make_godwit):
    """The groups /etc/group gives the daemon user stay (an administrator
    adds godwit to clamav's group so it reaches clamd's socket); nothing
    else does."""
    pw = _need_drop()
    name = f"gwit{os.getpid() % 100000}"
    subprocess.run(["groupadd", "--system", name], check=True)
    try:
        subprocess.run(["usermod", "-a", "-G", name, "godwit"], check=True)
        gid = grp.getgrnam(name).gr_gid
        g = make_godwit()
        kids = wait_for(lambda: len(g.children()) >= 2 and all(
            _ids(p)[0][0] == pw.pw_uid for p in g.children()) and
            g.children(), 5, what="workers to drop privileges")
        for pid in kids:
            groups = set(_ids(pid)[2])
            assert groups == {pw.pw_gid, gid}, \
                f"worker {pid}: groups {groups}, want {pw.pw_gid} and {gid}"
    finally:
        subprocess.run(["groupdel", name], check=False)


# The layout of the data directory (src/store/datadir.c): (path, owner,
# group, mode); "godwit" is the daemon user, "root" root.
LAYOUT = [
    ("", "root", "godwit", 0o750),
    ("db", "root", "godwit", 0o750),
    ("db/godwit.sqlite", "root", "godwit", 0o640),
    # the daemon's group may enter log/ to append to its audit.log
    ("log", "root", "godwit", 0o750),
    ("log/audit.log", "godwit", "godwit", 0o640),
    ("mail", "godwit", "godwit", 0o750),
    ("queue", "godwit", "godwit", 0o750),
    ("queue/tmp", "godwit", "godwit", 0o750),
    ("queue/incoming", "godwit", "godwit", 0o750),
    ("queue/active", "godwit", "godwit", 0o750),
    ("queue/deferred", "godwit", "godwit", 0o750),
    ("queue/hold", "godwit", "godwit", 0o750),
    ("queue/state", "godwit", "godwit", 0o750),
    ("control", "godwit", "godwit", 0o750),
    ("dkim", "root", "root", 0o700),
    ("dmarc", "godwit", "godwit", 0o750),
    ("filter", "godwit", "godwit", 0o750),
]


def _layout_problems(data_dir, pw):
    ids = {"root": 0, "godwit": pw.pw_uid}
    gids = {"root": 0, "godwit": pw.pw_gid}
    out = []
    for rel, owner, group, mode in LAYOUT:
        p = data_dir / rel if rel else data_dir
        st = os.lstat(p)
        got = (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode))
        want = (ids[owner], gids[group], mode)
        if got != want:
            out.append(f"{rel or '.'}: uid/gid/mode {got[0]}/{got[1]}/"
                       f"{got[2]:o}, want {want[0]}/{want[1]}/{want[2]:o}")
    return out


def test_data_dir_layout_after_start(priv_godwit):
    """Every directory of the layout has the owner and mode of the table,
    whatever the admin commands (run as root before the start) left."""
    g, pw = priv_godwit
    assert _layout_problems(g.data_dir, pw) == []
    # the control socket is the runner's, owner only
    sock = g.data_dir / "control" / "control.sock"
    wait_for(sock.exists, 10, what="the control socket")
    st = os.lstat(sock)
    assert stat.S_ISSOCK(st.st_mode) and st.st_uid == pw.pw_uid
    assert stat.S_IMODE(st.st_mode) & 0o077 == 0


def test_admin_commands_leave_what_the_daemon_uses(make_godwit, uniq):
    """Admin commands run as root before the daemon ever started make
    the whole layout as the daemon does; users added while it runs are
    found by the workers."""
    pw = _need_drop()
    g = make_godwit(start=False)
    # as a fresh install: nothing there yet but what the commands make
    shutil.rmtree(g.data_dir)
    g._make_userdb(["carol"], {})
    assert _layout_problems(g.data_dir, pw) == []
    g.start()
    g.admin("user", "add", "dave@example.test", "--password-stdin",
            input="a long enough password\n")
    assert _layout_problems(g.data_dir, pw) == []
    with g.smtp() as s:
        assert s.sendmail("x@example.org", ["dave@example.test"],
                          make_message(uniq)) == {}
    g.wait_messages("dave@example.test", 1)


def test_deferral_state_written_under_privilege_drop(make_godwit, uniq):
    """The queue runner, running as godwit, writes queue/state: a
    deferral shows its attempts and last error in `godwit queue list`
    (before, queue/state was root's and every deferral logged
    state-failed ... Permission denied)."""
    pw = _need_drop()
    dead = free_port()  # nothing listens here: every attempt defers
    g = make_godwit({
        "smtp": {"trusted_networks": ["127.0.0.0/8", "::1/128"]},
        "queue": {"retry_min": "1s", "retry_max": "2s"},
        "smarthost": {"host": "[127.0.0.1]", "port": dead, "tls": "none",
                      "verify": False},
    })
    with g.smtp() as s:
        s.sendmail("alice@example.test", ["r@remote.example"],
                   make_message(uniq))

    def listed():
        r = g.run("queue", "list", "--json", check=True)
        q = [json.loads(l) for l in r.stdout.splitlines() if l]
        return q if q and q[0]["attempts"] >= 2 and \
            q[0]["state"] == "deferred" else None

    [m] = wait_for(listed, 20, what="two attempts recorded")
    assert m["state"] == "deferred"
    assert m["last_error"] and "refused" in m["last_error"], m
    [st] = list((g.data_dir / "queue" / "state").iterdir())
    assert st.stat().st_uid == pw.pw_uid
    assert "state-failed" not in g.log_text()
    # released by the admin command with the daemon stopped: the state it
    # rewrites stays the runner's
    g.stop()
    assert g.run("queue", "hold", m["id"]).returncode == 0
    assert g.run("queue", "release", m["id"]).returncode == 0
    for f in (g.data_dir / "queue").rglob("*"):
        assert f.stat().st_uid == pw.pw_uid, f
    g.start()
    off = g.log_size()
    wait_for(lambda: "fac=delivery" in g.log_since(off), 20,
             what="a new attempt after the restart")
    assert "state-failed" not in g.log_text()


def test_wrong_owners_are_fixed_at_start(make_godwit):
    """An older godwit left queue/state root:root 0750 and mail/ 0700:
    the start puts them right and says so."""
    pw = _need_drop()
    g = make_godwit(start=False)
    (g.data_dir / "queue" / "state").mkdir(parents=True, exist_ok=True)
    os.chown(g.data_dir / "queue" / "state", 0, 0)
    os.chmod(g.data_dir / "queue" / "state", 0o750)
    (g.data_dir / "mail").mkdir(exist_ok=True)
    os.chmod(g.data_dir / "mail", 0o700)
    g.start()
    assert _layout_problems(g.data_dir, pw) == []
    log = g.log_text()
    assert "fac=datadir event=fixed" in log and "queue/state" in log


def test_link_in_data_dir_refused(make_godwit, tmp_path):
    """The daemon user can write in queue/: a link it planted there must
    not make root chown its target at the next start."""
    pw = _need_drop()
    g = make_godwit(start=False)
    victim = tmp_path / "victim"
    victim.mkdir()
    q = g.data_dir / "queue"
    q.mkdir(exist_ok=True)
    if (q / "state").exists():
        (q / "state").rmdir()
    (q / "state").symlink_to(victim)
    g.start(wait=False)
    assert g.proc.wait(timeout=30) == 1
    assert "queue/state: a symbolic link" in g.log_text()
    st = victim.stat()
    assert st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o755
    assert pw.pw_uid != 0


def test_unreachable_data_dir_refused(make_godwit):
    """A data_dir below a directory the daemon user cannot enter is
    refused at start with the directory named, not left to fail later."""
    _need_drop()
    g = make_godwit(start=False)
    locked = g.base / "locked"
    locked.mkdir()
    os.chmod(locked, 0o700)
    g.update_config({"data_dir": str(locked / "data")})
    g.start(wait=False)
    assert g.proc.wait(timeout=30) == 1
    log = g.log_text()
    assert f"{locked}: user godwit cannot enter this directory" in log, log
