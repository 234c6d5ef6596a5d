"""
Privilege separation: started as root with `user: godwit`, the parent
keeps root (to bind and reload) and the network-facing workers run as the
unprivileged user with no capabilities; mail still gets delivered.
Needs root and the `godwit` user (scripts/install-deps.sh creates it).
"""

import os
import pwd
import shutil
import tempfile

import pytest

from conftest import Godwit, _finish, wait_for
from smtpclient import make_message


@pytest.fixture
def priv_godwit():
    if os.geteuid() != 0:
        pytest.skip("needs root")
    try:
        pw = pwd.getpwnam("godwit")
    except KeyError:
        pytest.skip("no user godwit (scripts/install-deps.sh creates it)")
    # pytest's own temporary directories are 0700 root: the unprivileged
    # workers could not reach a data directory below them.
    base = tempfile.mkdtemp(prefix="godwit-priv-", dir="/tmp")
    os.chmod(base, 0o755)
    g = Godwit(os.path.join(base, "g"), {"user": "godwit"})
    g.start()
    yield g, pw
    problems = _finish(g)
    shutil.rmtree(base, ignore_errors=True)
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


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
