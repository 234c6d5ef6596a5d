#!/usr/bin/python3
"""
Proof that the power-loss tests (tests/integration/test_powerloss.py) can
fail: for every sync call on the paths they cover, build godwit with that
one call made a no-op, run the tests against it, and report whether they
failed. Also builds the code these tests were written against (old
queue_move, old dirset, old POP3 UPDATE) where a test targets its defect.

Run by hand from the repository (not part of `make test`; it takes a few
minutes):

    make build/godwit build/tests/syncrec.so
    tests/durability/prove.py [-k SITE_SUBSTRING] [-v]

Each variant is built in a scratch copy under /tmp (the objects of
build/obj are reused, so only the patched file is compiled); nothing in
the repository is changed. The table goes to standard output; a variant
whose tests still pass is an ERROR (the exit status is 1).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DURABILITY = "test_powerloss.py::test_power_cut_delivery_queue_runner_pop3 " \
             "test_powerloss.py::test_power_cut_batched_queue_moves " \
             "test_powerloss.py::test_power_cut_copy_across_mounts"

# (site, file, exact text, replacement, tests to run)
SITES = [
    ("deliver.c phase_sync_files: fdatasync(spool file)", "src/store/deliver.c",
     "if (fdatasync(job->spool->fd) < 0)", "if (0)", DURABILITY),
    ("deliver.c phase_sync_files: fdatasync(queue file)", "src/store/deliver.c",
     "else if (st->qfd >= 0 && fdatasync(st->qfd) < 0)", "else if (0)", DURABILITY),
    ("deliver.c commit_batch: syncfs before the entries (group)", "src/store/deliver.c",
     "if (syncfs(c->data_fd) < 0) {", "if (0) {", DURABILITY),
    ("deliver.c commit_batch: syncfs after the entries (group)", "src/store/deliver.c",
     "if (ds.n > 0 && syncfs(c->data_fd) < 0) {", "if (0) {", DURABILITY),
    ("deliver.c commit_batch: fsync of each directory (sync_dirset ds)", "src/store/deliver.c",
     "\t\tsync_dirset(&ds, st, n);", "\t\t(void)0;", DURABILITY),
    ("deliver.c commit_batch: fsync of copies' directories (sync_dirset other)", "src/store/deliver.c",
     "\tsync_dirset(&other, st, n);", "\t(void)0;", DURABILITY),
    ("deliver.c commit_batch: fsync(queue/incoming) in phase 5", "src/store/deliver.c",
     "\tsync_dirset(&qs, st, n);", "\t(void)0;", DURABILITY),
    ("deliver.c maildir_copy: fdatasync(copy)", "src/store/deliver.c",
     "spool_copy(job->spool, 0, fd) == 0 && fdatasync(fd) == 0 &&",
     "spool_copy(job->spool, 0, fd) == 0 &&", DURABILITY),
    ("audit.c audit_log_append: fdatasync(audit.log), a batch of one", "src/store/audit.c",
     "((flags & AUDIT_NOSYNC) == 0 && fdatasync(al->fd) < 0)",
     "((flags & AUDIT_NOSYNC) == 0 && 0)", DURABILITY),
    ("deliver.c mkdir_durable: fsync(parent) of a new Maildir directory", "src/store/deliver.c",
     "r = fsync_dir(parent);", "r = 0;", DURABILITY),
    ("queue.c queue_state_write_batch: fdatasync(each state file)", "src/store/queue.c",
     "fdatasync(fd) < 0 || rename(tmp, path) < 0) {",
     "rename(tmp, path) < 0) {", DURABILITY),
    ("queue.c queue_state_write_batch: fsync(queue/state) of a batch", "src/store/queue.c",
     "if (renamed > 0 && fsync_dir(dir) < 0) {", "if (0) {", DURABILITY),
    ("queue.c queue_move_batch: fsync(to) of a batch (links out of incoming/, "
     "renames otherwise)", "src/store/queue.c",
     "if (moved > 0 && fsync_dir(dir) < 0) {", "if (0) {", DURABILITY),
    ("queue.c queue_move_batch: fsync(to) after links only (out of incoming/)",
     "src/store/queue.c", "if (moved > 0 && fsync_dir(dir) < 0) {",
     "if (moved > 0 && !linking && fsync_dir(dir) < 0) {", DURABILITY),
    ("queue.c queue_move_batch: fsync(to) after renames only (out of "
     "deferred/, hold/, active/)", "src/store/queue.c",
     "if (moved > 0 && fsync_dir(dir) < 0) {",
     "if (moved > 0 && linking && fsync_dir(dir) < 0) {", DURABILITY),
    ("mailbox.c mailbox_commit: fsync(new/, cur/) in POP3 UPDATE", "src/store/mailbox.c",
     "open_sub(mb->path, subdirs[s])) < 0 ||\n\t\t    fsync(dfd) < 0) {",
     "open_sub(mb->path, subdirs[s])) < 0) {", DURABILITY),
    # the code before this work, where a test targets its defect
    ("OLD queue_move (plain rename, no fsync)", "src/store/queue.c",
     None, "old_queue_move", DURABILITY),
    ("OLD runner (a queue move and a state file, each with its fsync, per "
     "message)", "src/mta/runner.c", None, "git:57b4a1d",
     "test_powerloss.py::test_power_cut_batched_queue_moves"),
    ("OLD deliver.c (DIRSET_MAX: an fsync failure beyond it only logged)",
     "src/store/deliver.c", None, "git:cc78af3",
     "test_powerloss.py::test_failed_fsync_beyond_the_old_dirset_limit"),
    ("OLD deliver.c (queue file into incoming/ before the Maildirs are durable)",
     "src/store/deliver.c", None, "git:cc78af3",
     "test_powerloss.py::test_failed_directory_fsync_fails_the_message"),
    ("OLD mailbox.c (POP3 UPDATE: fsync failure only logged, +OK)",
     "src/store/mailbox.c", None, "git:cc78af3",
     "test_powerloss.py::test_failed_fsync_in_pop3_update"),
]

# the moves before this work: a plain rename, no fsync
OLD_QUEUE_MOVE = [
    ('bool linking = strcmp(from, "incoming") == 0;', "bool linking = false;"),
    ("if (moved > 0 && fsync_dir(dir) < 0) {", "if (0) {"),
]


def git_show(commit, path):
    """path as it was at commit. A commit from before src/ had layers has
    the file at its flat place (src/NAME.c); its includes are then named
    by the layer each header is in now."""
    show = ["git", "-C", str(REPO), "show"]
    p = subprocess.run(show + [f"{commit}:{path}"], capture_output=True, text=True)
    if p.returncode == 0:
        return p.stdout
    text = subprocess.run(show + [f"{commit}:src/{Path(path).name}"],
                          check=True, capture_output=True, text=True).stdout
    where = {h.name: f"{h.parent.name}/{h.name}" for h in (REPO / "src").glob("*/*.h")}
    return re.sub(r'^(\s*#\s*include\s+")([^"/]+)"',
                  lambda m: f'{m.group(1)}{where.get(m.group(2), m.group(2))}"',
                  text, flags=re.M)


def patch(tree, path, old, new):
    f = tree / path
    text = f.read_text()
    if new.startswith("git:"):
        text = git_show(new[4:], path)
    elif new == "old_queue_move":
        for o, n in OLD_QUEUE_MOVE:
            assert text.count(o) == 1, o
            text = text.replace(o, n)
    else:
        n = text.count(old)
        if n != 1:
            raise SystemExit(f"{path}: {old!r} found {n} times (want 1): "
                             "update SITES to the code")
        text = text.replace(old, new)
    f.write_text(text)


def build(tree):
    p = subprocess.run(["make", "-C", str(tree), "-j2", "build/godwit"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"build failed in {tree}:\n{p.stdout[-3000:]}{p.stderr[-3000:]}")
    return tree / "build" / "godwit"


def scratch():
    t = Path(tempfile.mkdtemp(prefix="godwit-prove-"))
    for name in ("src", "Makefile"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, t / name)
    (t / "build").mkdir()
    for src in [REPO / "build" / "obj", REPO / "build" / "godwit"] + \
            sorted((REPO / "build").glob("libgodwit-*.a")):
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, t / "build" / src.name)
    return t


def run_tests(binary, tests, verbose):
    env = dict(os.environ, GODWIT_BIN=str(binary))
    args = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider"]
    args += [f"tests/integration/{t}" for t in tests.split()]
    p = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=600)
    out = p.stdout + p.stderr
    if verbose:
        print(out[-4000:])
    reason = ""
    for line in out.splitlines():
        s = line.strip()
        if s.startswith("E ") and ("[" in s or "wanted" in s or "+OK" in s or "assert" in s):
            reason = re.sub(r"/\S*?/g\d+/data/", "data/", s[2:].strip())
            break
    return p.returncode, reason


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-k", default="", help="only sites containing this")
    ap.add_argument("-v", action="store_true")
    a = ap.parse_args()
    for need in (REPO / "build" / "godwit", REPO / "build" / "tests" / "syncrec.so"):
        if not need.exists():
            raise SystemExit(f"{need} missing: make build/godwit build/tests/syncrec.so")
    failures = 0
    print("| sync call made a no-op | tests | result |")
    print("|---|---|---|")
    sites = [s for s in SITES if a.k in s[0]]
    if not a.k:
        sites = [("(none: the code as it is)", None, None, None, DURABILITY)] + sites
    for site, path, old, new, tests in sites:
        tree = scratch()
        try:
            if path is not None:
                patch(tree, path, old, new)
            binary = build(tree)
            code, reason = run_tests(binary, tests, a.v)
        finally:
            shutil.rmtree(tree, ignore_errors=True)
        names = ", ".join(t.split("::")[1] for t in tests.split())
        if path is None:
            ok = code == 0
            result = "pass" if ok else f"ERROR: fails ({reason})"
        else:
            ok = code != 0
            result = f"FAILS: {reason[:200]}" if ok else "ERROR: still passes"
        failures += not ok
        print(f"| {site} | {names} | {result} |", flush=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
