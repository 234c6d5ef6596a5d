"""
Power loss: nothing that got its 250 may be lost when the power goes, and
not only when the process dies. test_durability kills the daemon with
SIGKILL, after which the page cache still holds everything: it cannot
see a missing fsync. These tests can.

The daemon runs with tests/durability/syncrec.c preloaded (LD_PRELOAD,
built by the Makefile into build/tests/syncrec.so; the binary is the one
the rest of the suite runs, unchanged). It records, in order and across
all of godwit's processes and threads, every create, write, rename, link,
unlink and mkdir, every fsync, fdatasync and syncfs, and every reply
written to a socket. tests/durability/crashmodel.py replays that record
on a file system that keeps, at a power cut, only what was made durable,
and checks each promise the daemon makes against it:
  - each SMTP "250 ... queued as ID": every Maildir copy and the queue
    file of ID survive (data and directory entries, and every directory
    made on the way, e.g. a new user's Maildir), and so does ID's line in
    the audit log (log/audit.log);
  - each POP3 "+OK" to QUIT: every deleted message stays deleted;
  - each move of a message from queue/active/ to deferred/: its state
    file (attempts, next try, errors) survives, as last written;
  - and at every moment: no message or state file gets its final name
    before its data is durable (a torn file after a power cut).
This covers the committer's three ways: one job (fdatasync of each file,
fsync of each directory), a group of jobs (syncfs twice), and a copy
where a hard link is impossible (another mount: fdatasync, fsync).

tests/durability/prove.py (run by hand) builds godwit once per sync call
on those paths with that one call made a no-op and shows that these tests
fail for every one of them.

ASan: the ASan runtime wants to come first in the library list; with
verify_asan_link_order=0 it lets the recorder come first, so the daemon's
calls go recorder -> ASan's interceptor -> libc and both see everything.
"""

import contextlib
import os
import poplib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DOMAIN, PASSWORD, REPO, free_port, wait_for
from smtpclient import RawSMTP, dot_stuff, make_message

sys.path.insert(0, str(REPO / "tests" / "durability"))
import crashmodel  # noqa: E402

SYNCREC = Path(os.environ.get("GODWIT_SYNCREC",
                              REPO / "build" / "tests" / "syncrec.so"))
ALICE, BOB = f"alice@{DOMAIN}", f"bob@{DOMAIN}"
# sync calls slowed down this much while the committer is watched, so that
# messages sent together meet in one batch (group commit)
DELAY_MS = 40


@pytest.fixture(autouse=True)
def _recorder_built():
    if not SYNCREC.exists():
        pytest.fail(f"{SYNCREC} is missing: make build/tests/syncrec.so")


@contextlib.contextmanager
def preloaded(g, trace=None, **env):
    """Environment for the daemon started in the with block: the
    recorder preloaded, writing to trace; env: GODWIT_SYNCREC_* knobs
    (fail=..., fail_syncfs=1, delay_ms=N)."""
    add = {"LD_PRELOAD": str(SYNCREC)}
    if trace is not None:
        add["GODWIT_SYNCREC_TRACE"] = str(trace)
    for k, v in env.items():
        add["GODWIT_SYNCREC_" + k.upper()] = str(v)
    saved = {k: os.environ.get(k) for k in add}
    saved_asan = g.asan_extra
    os.environ.update(add)
    g.asan_extra = ":".join(x for x in (g.asan_extra, "verify_asan_link_order=0") if x)
    try:
        yield
    finally:
        g.asan_extra = saved_asan
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def start_preloaded(g, trace=None, prefix=None, **env):
    with preloaded(g, trace, **env):
        if prefix is None:
            g.start()
        else:
            # e.g. a private mount namespace; admin commands run outside it
            orig = g._ns_prefix
            g._ns_prefix = lambda: prefix
            try:
                g.start()
            finally:
                g._ns_prefix = orig


def with_pop3(g):
    g.pop3_port = free_port()
    g.config["listeners"].append(
        {"name": "pop3", "protocol": "pop3", "plaintext_auth": True,
         "listen": [f"127.0.0.1:{g.pop3_port}"]})
    g.write_config()


def config(**smtp):
    """One worker (so that messages sent together meet in its committer),
    loopback may relay (the queue), quick retries (the runner's state)."""
    return {"workers": 1,
            "smtp": {"trusted_networks": ["127.0.0.0/8"], **smtp},
            "queue": {"retry_min": "1s", "retry_max": "2s"}}


QUEUED_RE = re.compile(r"^250 [0-9.]+ Ok: queued as (\S+)$")


def send(g, rcpts, marker):
    """One message over its own connection; returns its queue id."""
    with RawSMTP(g.host4, g.port, timeout=30) as c:
        assert c.reply().code == 220
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@example.org>").code == 250
        for r in rcpts:
            rr = c.cmd(f"RCPT TO:<{r}>")
            assert rr.code == 250, f"RCPT {r}: {rr}"
        assert c.cmd("DATA").code == 354
        c.send(dot_stuff(make_message(marker)) + b".\r\n")
        r = c.reply(timeout=60)
        m = QUEUED_RE.match(r.lines[-1])
        assert m, f"{marker}: {r}"
        c.cmd("QUIT")
        return m.group(1)


def send_together(g, rcpt_lists, marker):
    """Several messages over as many connections, their final dots sent
    back to back so that the committer gets them in one batch. Returns
    [(reply, marker)]."""
    conns = []
    try:
        for i, rcpts in enumerate(rcpt_lists):
            c = RawSMTP(g.host4, g.port, timeout=30)
            conns.append(c)
            assert c.reply().code == 220
            c.ehlo()
            assert c.cmd("MAIL FROM:<sender@example.org>").code == 250
            for r in rcpts:
                assert c.cmd(f"RCPT TO:<{r}>").code == 250
            assert c.cmd("DATA").code == 354
            c.send(dot_stuff(make_message(f"{marker}-{i}")))
        for c in conns:
            c.send(b".\r\n")
        return [(c.reply(timeout=60), f"{marker}-{i}") for i, c in enumerate(conns)]
    finally:
        for c in conns:
            c.close()


def trace_count(trace, pattern):
    try:
        return len(re.findall(pattern, Path(trace).read_text(errors="replace"), re.M))
    except FileNotFoundError:
        return 0


def grouped_round(g, trace, rcpt_lists, marker, tries=4):
    """send_together until the committer made a batch of several jobs
    (seen as a syncfs in the trace); returns the queue ids."""
    ids = []
    for t in range(tries):
        before = trace_count(trace, r" syncfs 0 ")
        for reply, _ in send_together(g, rcpt_lists, f"{marker}-{t}"):
            m = QUEUED_RE.match(reply.lines[-1])
            assert m, reply
            ids.append(m.group(1))
        if trace_count(trace, r" syncfs 0 ") > before:
            return ids
    pytest.fail(f"no batch of several jobs in {tries} rounds of "
                f"{len(rcpt_lists)} messages sent together")


def wait_deferrals(g, trace, qid, n, timeout=30):
    """Until the runner moved qid from active/ to deferred/ n times."""
    pat = rf" rename \d+ \d+ \S*/queue/active/{qid} \S*/queue/deferred/{qid}$"
    wait_for(lambda: trace_count(trace, pat) >= n, timeout,
             interval=0.2, what=f"{n} deferrals of {qid}")


def pop3_delete(g, user, numbers):
    p = poplib.POP3("127.0.0.1", g.pop3_port, timeout=30)
    p.user(user)
    p.pass_(PASSWORD)
    for n in numbers:
        assert p.dele(n).startswith(b"+OK")
    return p.quit()


def check(trace):
    report = crashmodel.check_trace(trace)
    assert not report.all_violations(), (
        "a power cut at these moments loses what was promised:\n"
        + report.summary())
    return report


def homes(report, qid):
    return {home for home, _ in report.acks.get(qid, [])}


def warm_up(g):
    """A first run that sets the data directory up (and, sent alice a
    message, her Maildir): what exists before the traced run is taken as
    durable."""
    g.start()
    send(g, [ALICE], "warm-up")
    g.stop()


# ------------------------------------------------------------ the model ---

def model(lines):
    return crashmodel.Model().replay(
        [f"1 1 {l}" for l in lines.strip().splitlines() if l.strip()])


GOOD_DELIVERY = """
create 1 10 /d/queue/tmp/X
write 1 10
fdatasync 0 1 10 0 /d/queue/tmp/X
link 1 10 /d/queue/tmp/X /d/mail/a/Maildir/new/1.QX_0.h
unlink 1 10 /d/queue/tmp/X
fsync 0 1 3 1 /d/mail/a/Maildir/new
reply 250%202.0.0%20Ok:%20queued%20as%20X%0D%0A
"""


def test_model_accepts_a_durable_delivery():
    r = model(GOOD_DELIVERY)
    assert not r.all_violations(), r.summary()
    assert r.counts["ack-placement"] == 1 and r.counts["order"] == 1


@pytest.mark.parametrize("drop,check_name", [
    ("fdatasync 0 1 10 0 /d/queue/tmp/X", "order"),
    ("fsync 0 1 3 1 /d/mail/a/Maildir/new", "ack"),
])
def test_model_catches_a_missing_sync(drop, check_name):
    r = model(GOOD_DELIVERY.replace(drop + "\n", ""))
    assert r.violations[check_name], r.summary()


AUDITED = GOOD_DELIVERY.replace(
    "reply ", "create 1 20 /d/log/audit.log\nwrite 1 20 audit=X\n"
    "fdatasync 0 1 20 0 /d/log/audit.log\nreply ")


def test_model_audit_line_before_the_250():
    r = model(AUDITED)
    assert not r.all_violations(), r.summary()
    assert r.counts["ack-audit"] == 1
    # not synced, or another message's line only: caught
    r = model(AUDITED.replace("fdatasync 0 1 20 0 /d/log/audit.log\n", ""))
    assert r.violations["audit"], r.summary()
    r = model(AUDITED.replace("audit=X", "audit=Y"))
    assert r.violations["audit"], r.summary()
    # a syncfs after the write covers it
    r = model(AUDITED.replace("fdatasync 0 1 20 0 /d/log/audit.log",
                              "syncfs 0 1"))
    assert not r.violations["audit"], r.summary()


def test_model_syncfs_and_failed_fsync():
    # syncfs before the link and after it: durable
    r = model("""
create 1 10 /d/queue/tmp/X
write 1 10
syncfs 0 1
link 1 10 /d/queue/tmp/X /d/mail/a/Maildir/new/1.QX_0.h
syncfs 0 1
reply 250%202.0.0%20Ok:%20queued%20as%20X%0D%0A
""")
    assert not r.all_violations(), r.summary()
    # syncfs of another file system covers nothing here
    r = model(GOOD_DELIVERY.replace("fsync 0 1 3 1 /d/mail/a/Maildir/new", "syncfs 0 2"))
    assert r.violations["ack"], r.summary()
    # a failed fsync may have dropped the data: a later one does not help
    r = model(GOOD_DELIVERY.replace(
        "fdatasync 0 1 10 0 /d/queue/tmp/X",
        "fdatasync -1 1 10 0 /d/queue/tmp/X\nfdatasync 0 1 10 0 /d/queue/tmp/X"))
    assert r.violations["order"] and r.violations["ack"], r.summary()


def test_model_new_directories_and_deletions_and_state():
    # a Maildir made during the trace: its parent must be synced too
    made = """
mkdir 1 5 /d/mail/b
mkdir 1 6 /d/mail/b/Maildir
mkdir 1 7 /d/mail/b/Maildir/new
fsync 0 1 6 1 /d/mail/b/Maildir
create 1 10 /d/queue/tmp/Y
write 1 10
fdatasync 0 1 10 0 /d/queue/tmp/Y
link 1 10 /d/queue/tmp/Y /d/mail/b/Maildir/new/1.QY_0.h
fsync 0 1 7 1 /d/mail/b/Maildir/new
reply 250%202.0.0%20Ok:%20queued%20as%20Y%0D%0A
"""
    r = model(made)
    assert r.violations["ack"], r.summary()
    r = model(made.replace("fsync 0 1 6 1", "fsync 0 1 4 1 /d/mail\nfsync 0 1 5 1 /d/mail/b\nfsync 0 1 6 1"))
    assert not r.all_violations(), r.summary()
    # POP3: a deletion not synced before +OK
    dele = GOOD_DELIVERY + """
unlink 1 10 /d/mail/a/Maildir/new/1.QX_0.h
reply +OK%20Logging%20out,%201%20messages%20deleted%0D%0A
"""
    assert model(dele).violations["pop3"]
    assert not model(dele.replace("reply +OK", "fsync 0 1 3 1 /d/mail/a/Maildir/new\nreply +OK")).all_violations()
    # the runner: the state file before the move to deferred/
    state = """
create 1 20 /d/queue/state/X.tmp
write 1 20
fdatasync 0 1 20 0 /d/queue/state/X.tmp
rename 1 20 /d/queue/state/X.tmp /d/queue/state/X
fsync 0 1 8 1 /d/queue/state
rename 1 11 /d/queue/active/X /d/queue/deferred/X
"""
    r = model(state)
    assert not r.all_violations() and r.counts["state"] == 1, r.summary()
    assert model(state.replace("fsync 0 1 8 1 /d/queue/state\n", "")).violations["state"]
    r = model(state.replace("fdatasync 0 1 20 0 /d/queue/state/X.tmp\n", ""))
    assert r.violations["state"] and r.violations["order"]


# ----------------------------------------------------------- the daemon ---

def test_power_cut_delivery_queue_runner_pop3(make_godwit, tmp_path):
    """Single jobs (an existing Maildir, a new one, the queue, all three),
    a group commit, the runner's deferrals, a POP3 UPDATE: every promise
    holds at a power cut."""
    g = make_godwit(config(), start=False)
    with_pop3(g)
    warm_up(g)
    trace = tmp_path / "trace"
    start_preloaded(g, trace, delay_ms=DELAY_MS)

    a = send(g, [ALICE], "pl-existing-maildir")
    b = send(g, [BOB], "pl-new-maildir")
    c = send(g, ["carol@remote.test"], "pl-queue")
    d = send(g, [ALICE, BOB, "dave@remote.test"], "pl-all")
    grouped = grouped_round(g, trace, [[ALICE], [BOB, "erin@remote.test"],
                                       [ALICE, "frank@remote.test"], [BOB]],
                            "pl-group")
    # the runner defers c twice (no DNS in the tests): a new state file,
    # then one replacing it
    wait_deferrals(g, trace, c, 2)
    # c now waits in deferred/: the next pickup into active/ syncs the
    # directory c left, so c must be durable in deferred/ by then
    e = send(g, ["gina@remote.test"], "pl-after-deferral")
    wait_deferrals(g, trace, e, 1)
    assert pop3_delete(g, ALICE, [1, 2]).startswith(b"+OK")
    g.stop()

    r = check(trace)
    data = os.path.normpath(g.data_dir)
    alice_md = os.path.normpath(g.maildir(ALICE))
    bob_md = os.path.normpath(g.maildir(BOB))
    queue = os.path.join(data, "queue")
    assert homes(r, a) == {alice_md}
    assert homes(r, b) == {bob_md}
    assert homes(r, c) == {queue}
    assert homes(r, d) == {alice_md, bob_md, queue}
    assert homes(r, e) == {queue}
    assert all(homes(r, i) for i in grouped)
    # every 250 had its audit line durable (store/audit.h)
    assert r.counts["ack-audit"] == r.counts["ack"] > 0, r.summary()
    # the paths were all taken (else the test proves nothing)
    assert r.counts["syncfs"] >= 2, r.summary()           # group commit
    assert r.counts["mkdir"] >= 1, r.summary()            # bob's Maildir
    assert r.counts["state"] >= 2, r.summary()            # two deferrals
    assert r.counts["pop3-deletion"] >= 2, r.summary()


def batches_into(trace, sub):
    """Sizes of the runner's batches of moves into queue/<sub>/: the
    renames and links into it between two fsyncs of it."""
    sizes, n = [], 0
    for line in Path(trace).read_text(errors="replace").splitlines():
        f = line.split(" ")
        if len(f) < 4:
            continue
        if f[2] in ("rename", "link") and f"/queue/{sub}/" in f[-1]:
            n += 1
        elif f[2] == "fsync" and f[-1].endswith(f"/queue/{sub}"):
            if n:
                sizes.append(n)
            n = 0
    return sizes


def test_power_cut_batched_queue_moves(make_godwit, tmp_path):
    """The runner moves what is due together into active/ with one fsync
    of it (queue_move_batch): three deferred messages, held, then released
    at once, are taken in one batch; their next deferral syncs deferred/,
    which they left, so a batch without its fsync of active/ leaves them
    no durable name (the kept check). Deferred together (one destination
    fails them all), their state files get one fsync of queue/state/ and
    their moves one of deferred/ (the state check)."""
    g = make_godwit(config(), start=False)
    warm_up(g)
    trace = tmp_path / "trace"
    start_preloaded(g, trace)
    ids = [send(g, [f"batch{i}@remote.test"], f"pl-batch-{i}") for i in range(3)]
    for qid in ids:
        wait_deferrals(g, trace, qid, 1)
    g.admin("queue", "hold", "all")
    wait_for(lambda: len(g.queue_files("hold")) == 3, 30, interval=0.2,
             what="the three messages in hold/")
    g.admin("queue", "release", "all")
    for qid in ids:
        wait_deferrals(g, trace, qid, 2)
    g.stop()

    r = check(trace)
    queue = os.path.join(os.path.normpath(g.data_dir), "queue")
    assert all(homes(r, i) == {queue} for i in ids)
    assert max(batches_into(trace, "active")) >= 3, batches_into(trace, "active")
    assert max(batches_into(trace, "deferred")) >= 3, batches_into(trace, "deferred")
    assert max(batches_into(trace, "state")) >= 3, batches_into(trace, "state")
    assert r.counts["kept"] >= 3 and r.counts["state"] >= 6, r.summary()


def test_power_cut_copy_across_mounts(make_godwit, tmp_path):
    """Where the Maildirs are another mount (a hard link fails with EXDEV)
    the committer copies: the copy and its directory must be durable
    too, alone and in a group commit."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare(1) for a private mount namespace")
    g = make_godwit(config(), start=False)
    warm_up(g)
    store = g.data_dir / "mailstore"
    store.mkdir()
    shutil.copystat(g.data_dir / "mail", store)
    st = os.stat(g.data_dir / "mail")
    os.chown(store, st.st_uid, st.st_gid)
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"],
                           capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"unshare -m: {probe.stderr.decode(errors='replace')}")
    trace = tmp_path / "trace"
    prefix = ["unshare", "-m", "--propagation", "private", "sh", "-c",
              'mount --bind "$1" "$2" && shift 2 && exec "$@"', "sh",
              str(store), str(g.data_dir / "mail")]
    start_preloaded(g, trace, prefix=prefix, delay_ms=DELAY_MS)

    a = send(g, [ALICE], "pl-copy-new-maildir")
    b = send(g, [ALICE, BOB], "pl-copy-two")
    grouped = grouped_round(g, trace, [[ALICE], [BOB], [ALICE]], "pl-copy-group")
    g.stop()

    r = check(trace)
    alice_md = os.path.normpath(g.maildir(ALICE))
    bob_md = os.path.normpath(g.maildir(BOB))
    assert homes(r, a) == {alice_md}
    assert homes(r, b) == {alice_md, bob_md}
    assert all(homes(r, i) for i in grouped)
    assert r.counts["maildir-copy"] >= 2 + 3, r.summary()
    assert r.counts["syncfs"] >= 1, r.summary()
    # the copies are where the mount put them
    assert list(store.glob("*/alice/Maildir/new/*"))


# ------------------------------------------------------ failing fsyncs ---

def stored(g, marker):
    return g.find_messages(f"marker {marker}\n")


def send_expect(g, rcpts, marker, code):
    with RawSMTP(g.host4, g.port, timeout=60) as c:
        assert c.reply().code == 220
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@example.org>").code == 250
        for r in rcpts:
            assert c.cmd(f"RCPT TO:<{r}>").code == 250, r
        assert c.cmd("DATA").code == 354
        c.send(dot_stuff(make_message(marker)) + b".\r\n")
        r = c.reply(timeout=120)
        assert r.code == code, f"{marker}: wanted {code}, got {r}"
        return r


def test_failed_directory_fsync_fails_the_message(make_godwit):
    """fsync of one Maildir's new/ fails: the message gets no 250, and
    none of its copies is left (the client's retry must not make two)."""
    g = make_godwit(config(), start=False)
    warm_up(g)
    start_preloaded(g, fail=f"/{DOMAIN}/bob/Maildir/new")
    send_expect(g, [ALICE, BOB, "zoe@remote.test"], "pl-fail-one", 451)
    assert not stored(g, "pl-fail-one")
    # nor did its queue file reach incoming/, where the runner would have
    # taken it at once (it goes there only once the rest is durable)
    assert not [p for p in g.queue_files() if b"pl-fail-one" in p.read_bytes()]
    assert "fac=delivery event=queued" not in g.log_text()
    send_expect(g, [ALICE], "pl-fail-other", 250)
    assert stored(g, "pl-fail-other")


def test_failed_fsync_beyond_the_old_dirset_limit(make_godwit, tmp_path):
    """A message to more Maildirs than the committer's old fixed set of
    512 directories: those beyond it were fsync'd at once and a failure
    only logged, so the message got its 250 with a copy that a power cut
    could lose. Every directory's failure must fail the message."""
    n = 520
    g = make_godwit(config(max_recipients=1000), start=False)
    warm_up(g)
    hashed = subprocess.run(["openssl", "passwd", "-6", "-stdin"],
                            input=PASSWORD + "\n", capture_output=True,
                            text=True, check=True).stdout.strip()
    users = [f"u{i:03d}@{DOMAIN}" for i in range(n)]
    g.admin("user", "import", "-",
            input="".join(f"{u}:{{SHA512-CRYPT}}{hashed}\n" for u in users))
    # their Maildirs, as the daemon would make them (making 520 of them
    # during the test would take 2,600 fsyncs)
    own = os.stat(g.data_dir / "mail")
    for u in users:
        for sub in ("tmp", "new", "cur"):
            p = g.maildir(u) / sub
            p.mkdir(parents=True, exist_ok=True)
        for q in [g.maildir(u).parent, g.maildir(u)] + [g.maildir(u) / s for s in ("tmp", "new", "cur")]:
            os.chown(q, own.st_uid, own.st_gid)
            os.chmod(q, 0o750)
    os.chown(g.maildir(users[0]).parent.parent, own.st_uid, own.st_gid)
    start_preloaded(g, fail=f"/{DOMAIN}/{users[-1].split('@')[0]}/Maildir/new")
    send_expect(g, users, "pl-fail-many", 451)
    assert not stored(g, "pl-fail-many")
    send_expect(g, users[:3], "pl-fail-many-ok", 250)


def test_failed_syncfs_fails_the_group(make_godwit, tmp_path):
    """In a group commit a failed syncfs fails every job of the batch;
    what got 451 is nowhere."""
    g = make_godwit(config(), start=False)
    warm_up(g)
    trace = tmp_path / "trace"
    start_preloaded(g, trace, fail_syncfs=1, delay_ms=DELAY_MS)
    codes = {}
    for t in range(4):
        for reply, marker in send_together(g, [[ALICE], [BOB], [ALICE, "x@remote.test"]],
                                           f"pl-syncfs-{t}"):
            codes[marker] = reply.code
        if 451 in codes.values():
            break
    assert set(codes.values()) <= {250, 451}, codes
    assert 451 in codes.values(), f"no group commit happened: {codes}"
    for marker, code in codes.items():
        assert bool(stored(g, marker)) == (code == 250), (marker, code)


def test_failed_fsync_in_pop3_update(make_godwit):
    """POP3 UPDATE: when new/ cannot be fsync'd after the deletions, the
    client is not told they were made (-ERR, RFC 1939 section 6)."""
    g = make_godwit(config(), start=False)
    with_pop3(g)
    g.start()
    send(g, [ALICE], "pl-pop3-1")
    send(g, [ALICE], "pl-pop3-2")
    g.stop()
    start_preloaded(g, fail=f"/{DOMAIN}/alice/Maildir/new")
    try:
        pop3_delete(g, ALICE, [1, 2])
    except poplib.error_proto as e:
        assert str(e).startswith("b'-ERR [SYS/TEMP]"), e
    else:
        pytest.fail("+OK to QUIT although new/ could not be fsync'd")
