"""
A model of a file system that loses power, replayed over a syncrec trace
(tests/durability/syncrec.c), and the checks of godwit's durability rule
against it: nothing is acknowledged before it is durable, the file's data
and the directory entry that names it.

The model is the one POSIX promises and applications must assume (the
one ALICE and CrashMonkey test against), with nothing an ext4 mount
option happens to add:
  - a file's data is durable after fsync or fdatasync of the file (or
    syncfs of its file system, or sync) that came after its last write;
  - a directory entry (a create, link, rename or unlink in a directory, a
    new subdirectory) is durable after fsync of that directory (or syncfs,
    or sync) that came after the change; fsync of a file does not make
    its name durable;
  - until then the file system may have written either state: a change
    not yet durable can be lost at the power cut, and an entry can become
    durable before the data it names, unless that data was durable first;
  - a failed fsync may have dropped the data (Linux marks the pages clean):
    what it covered is never durable afterwards.
Directories that exist before the trace starts are durable.

Checks (each a list of violations in Report):
  order     every link or rename into a directory other than a tmp/ one
            (Maildir new/ and cur/, queue/incoming, queue/state, ...)
            names a file whose data is already durable: otherwise a power
            cut can leave a torn message or state file under its final
            name.
  ack       at each SMTP "250 ... queued as ID" reply, every placement made
            for ID (a name containing Q<ID>_ in a Maildir, or ID in a
            queue directory) is durable: some durable entry in the same
            Maildir (new/ or cur/) or the same queue names the same file,
            its data is durable, and every directory on the way down that
            was created during the trace has a durable entry.
  pop3      at each POP3 "+OK" answer to QUIT, every Maildir message
            unlinked before it is durably gone.
  kept      after that 250, at every later sync: as long as the message
            is in that Maildir or the queue, a power cut still leaves it
            there (the runner's moves between queue directories, and
            other processes syncing the directory it left, must not open
            a window where it has no durable name).
  state     when the queue runner renames queue/active/ID to deferred/ or
            hold/, queue/state/ID is durable (entry and data) and the one
            it last wrote.
  audit     once the trace holds audit-log lines (syncrec's audit=ID on a
            write), at each 250 for ID: a write that carried ID's line is
            durable (the file's data synced after it, and no failed sync
            since).
"""

import os
import re
from collections import defaultdict
from urllib.parse import unquote_to_bytes

ACK_RE = re.compile(rb"250 [0-9.]+ Ok: queued as (\S+)\r\n")
POP3_QUIT_RE = re.compile(rb"^\+OK Logging out", re.M)
QUEUE_DIRS = ("incoming", "active", "deferred", "hold")


def dec(field):
    return unquote_to_bytes(field).decode("utf-8", "surrogateescape")


class File:
    """A regular file (an inode): versions of its data."""
    _n = 0

    def __init__(self, dev, ino):
        File._n += 1
        self.id = File._n
        self.dev, self.ino = dev, ino
        self.live = 0       # bumped by every write
        self.durable = 0    # the version a power cut keeps
        self.lost = False   # an fsync failed: its data may be gone

    def data_durable(self):
        return not self.lost and self.durable == self.live

    def __repr__(self):
        return f"<file {self.dev}:{self.ino}#{self.id}>"


class Dir:
    """A directory: its entries as they are and as a power cut leaves them.
    An entry is a File or the string path of a subdirectory. Names in
    neither dict existed (durably) before the trace, or never existed:
    fresh (made during the trace) directories had none."""

    def __init__(self, path, dev=None, fresh=False):
        self.path, self.dev, self.fresh = path, dev, fresh
        self.live = {}
        self.durable = {}
        self.known = set()      # names changed during the trace
        self.poisoned = set()   # (name, entry) a failed fsync covered

    def touch(self, name, before):
        """First change of name: what was there before is durable."""
        if name not in self.known:
            self.known.add(name)
            if before is not None and not self.fresh:
                self.live[name] = before
                self.durable[name] = before

    def sync(self):
        self.durable = dict(self.live)
        self.poisoned.clear()

    def fail_sync(self):
        for name in self.known:
            e = self.live.get(name)
            if e is not None and ekey(e) != ekey(self.durable.get(name)):
                self.poisoned.add((name, ekey(e)))

    def durable_entry(self, name):
        e = self.durable.get(name)
        if e is not None and (name, ekey(e)) in self.poisoned:
            return None
        return e


def ekey(e):
    """An entry's identity: a File by its inode's life, a directory by
    its path."""
    return None if e is None else e if isinstance(e, str) else e.id


class Report:
    def __init__(self):
        self.violations = defaultdict(list)   # check -> [text]
        self.counts = defaultdict(int)         # what was checked
        self.acks = {}                         # id -> [(home, name)]

    def bad(self, check, text):
        self.violations[check].append(text)

    def all_violations(self):
        return [f"[{k}] {t}" for k, v in self.violations.items() for t in v]

    def summary(self):
        c = ", ".join(f"{k}={v}" for k, v in sorted(self.counts.items()))
        v = self.all_violations()
        return f"checked: {c}; {len(v)} violations" + "".join(
            "\n  " + t for t in v[:40])


class Model:
    def __init__(self):
        self.dirs = {}
        self.files = {}     # (dev, ino) -> the File that has it now
        self.report = Report()
        self.placements = defaultdict(list)   # message id -> [(home, dir, name, File)]
        self.unlinked = []                    # (Dir, name, File) in Maildirs
        self.promises = []                    # [mid, home, File, line of the 250]
        self.audit = defaultdict(list)        # message id -> [(File, version)]
        self.line = 0

    # -- the file system ---------------------------------------------------

    def dir(self, path, dev=None):
        d = self.dirs.get(path)
        if d is None:
            d = self.dirs[path] = Dir(path, dev)
        if d.dev is None and dev is not None:
            d.dev = dev
        return d

    def file(self, dev, ino):
        f = self.files.get((dev, ino))
        if f is None:
            f = self.files[(dev, ino)] = File(dev, ino)
        return f

    def split(self, path, dev=None):
        path = os.path.normpath(path)
        parent, name = os.path.split(path)
        return self.dir(parent, dev), name

    def reachable(self, path):
        """Every directory from / down to path that was made during the
        trace has a durable entry in its parent."""
        path = os.path.normpath(path)
        parts = path.strip("/").split("/")
        cur = "/"
        for p in parts:
            parent = self.dirs.get(cur)
            nxt = os.path.join(cur, p)
            if parent is not None and (p in parent.known or parent.fresh):
                if parent.durable_entry(p) != nxt:
                    return False
            cur = nxt
        return True

    def durable_at(self, path):
        """(ok, why) for: the file path names now is what a power cut
        leaves at path, with its data."""
        d, name = self.split(path)
        e = d.live.get(name) if name in d.known else None
        if not isinstance(e, File):
            return False, "no such file now"
        if d.durable_entry(name) is not e:
            return False, "its directory entry is not durable"
        if not e.data_durable():
            return False, "its data is not durable"
        if not self.reachable(d.path):
            return False, f"directory {d.path} is not durably reachable"
        return True, ""

    # -- replay ------------------------------------------------------------

    def replay(self, lines):
        for raw in lines:
            self.line += 1
            f = raw.rstrip("\n").split(" ")
            if len(f) < 3:
                continue
            getattr(self, "op_" + f[2], self.op_unknown)(f[3:])
        return self.report

    def op_unknown(self, a):
        self.report.bad("trace", f"line {self.line}: unknown record")

    def op_create(self, a):
        dev, ino, path = int(a[0]), int(a[1]), dec(a[2])
        f = self.files[(dev, ino)] = File(dev, ino)
        d, name = self.split(path, dev)
        d.touch(name, None)
        d.live[name] = f

    def op_trunc(self, a):
        self.file(int(a[0]), int(a[1])).live += 1

    def op_write(self, a):
        f = self.file(int(a[0]), int(a[1]))
        f.live += 1
        for field in a[2:]:
            if field.startswith("audit="):
                self.audit[field[6:]].append((f, f.live))

    def _fsync(self, a):
        rc, dev, ino, isdir, path = int(a[0]), int(a[1]), int(a[2]), a[3] == "1", dec(a[4])
        if isdir:
            d = self.dir(os.path.normpath(path), dev)
            d.sync() if rc == 0 else d.fail_sync()
            self.report.counts["fsync-dir"] += rc == 0
            self._check_promises()
        else:
            f = self.file(dev, ino)
            if rc == 0:
                f.durable = f.live
            else:
                f.lost = True
            self.report.counts["fsync-file"] += rc == 0

    op_fsync = op_fdatasync = _fsync

    def _sync_all(self, dev=None):
        for f in self.files.values():
            if dev is None or f.dev == dev:
                f.durable = f.live
        for d in self.dirs.values():
            if dev is None or d.dev in (dev, None):
                d.sync()

    def op_syncfs(self, a):
        rc, dev = int(a[0]), int(a[1])
        if rc == 0:
            self._sync_all(dev)
            self.report.counts["syncfs"] += 1
            self._check_promises()
        else:
            for f in self.files.values():
                if f.dev == dev and f.durable != f.live:
                    f.lost = True
            for d in self.dirs.values():
                if d.dev in (dev, None):
                    d.fail_sync()

    def op_sync(self, a):
        self._sync_all()

    def _entry_of(self, dev, ino, path):
        """What path names (a File, or a directory path)."""
        if os.path.normpath(path) in self.dirs and (dev, ino) not in self.files:
            return os.path.normpath(path)
        return self.file(dev, ino)

    def op_rename(self, a):
        dev, ino, old, new = int(a[0]), int(a[1]), dec(a[2]), dec(a[3])
        od, oname = self.split(old, dev)
        e = od.live.get(oname) if oname in od.known else None
        if e is None:
            e = self._entry_of(dev, ino, new)
            od.touch(oname, e)
        if isinstance(e, str):
            self.report.bad("trace", f"line {self.line}: a directory renamed "
                            f"({old} -> {new}): not modelled")
            return
        del od.live[oname]
        nd, nname = self.split(new, dev)
        nd.touch(nname, None)
        nd.live[nname] = e
        self._placed(nd, nname, e, "rename", old)

    def op_link(self, a):
        dev, ino, old, new = int(a[0]), int(a[1]), dec(a[2]), dec(a[3])
        e = self.file(dev, ino)
        nd, nname = self.split(new, dev)
        nd.touch(nname, None)
        nd.live[nname] = e
        self._placed(nd, nname, e, "link", old)

    def op_unlink(self, a):
        dev, ino, path = int(a[0]), int(a[1]), dec(a[2])
        d, name = self.split(path, dev)
        e = d.live.get(name) if name in d.known else None
        if e is None:
            e = self.file(dev, ino)
            d.touch(name, e)
        d.live.pop(name, None)
        if is_maildir_sub(d.path):
            self.unlinked.append((d, name, e))

    def op_mkdir(self, a):
        dev, path = int(a[0]), os.path.normpath(dec(a[2]))
        pd, name = self.split(path, dev)
        pd.touch(name, None)
        pd.live[name] = path
        self.dirs[path] = Dir(path, dev, fresh=True)
        self.report.counts["mkdir"] += 1

    def op_rmdir(self, a):
        path = os.path.normpath(dec(a[0]))
        pd, name = self.split(path)
        pd.touch(name, path)
        pd.live.pop(name, None)

    def op_reply(self, a):
        data = unquote_to_bytes(a[0]) if a else b""
        for m in ACK_RE.finditer(data):
            self._check_ack(m.group(1).decode())
        if POP3_QUIT_RE.search(data):
            self._check_pop3_quit()

    # -- the checks --------------------------------------------------------

    def _placed(self, d, name, e, how, old):
        """A name made for e in d: the order check, and the placement
        remembered for the ack of its message."""
        if not isinstance(e, File) or os.path.basename(d.path) == "tmp":
            return
        self.report.counts["order"] += 1
        if (how == "rename" and is_maildir_sub(d.path)
                and os.path.basename(os.path.dirname(old)) == "tmp"):
            self.report.counts["maildir-copy"] += 1
        if not e.data_durable():
            self.report.bad("order", f"line {self.line}: {how} {old} -> "
                            f"{d.path}/{name} before the file's data was durable")
        home = os.path.dirname(d.path)
        for mid in message_ids(d.path, name):
            self.placements[mid].append((home, d, name, e))
        # the runner moving a message out of active/: its state first
        if (os.path.basename(os.path.dirname(old)) == "active"
                and os.path.basename(d.path) in ("deferred", "hold")):
            self._check_state(home, name)

    def _check_audit(self, mid):
        if not self.audit:
            return      # no audit log in this trace
        lines = self.audit.get(mid)
        if not lines:
            self.report.bad("audit", f"line {self.line}: 250 for {mid}, "
                            "which has no line in the audit log")
        elif not any(not f.lost and f.durable >= v for f, v in lines):
            self.report.bad("audit", f"line {self.line}: 250 for {mid} "
                            "while its audit line is not durable")
        else:
            self.report.counts["ack-audit"] += 1

    def _check_ack(self, mid):
        r = self.report
        r.counts["ack"] += 1
        self._check_audit(mid)
        placed = self.placements.get(mid, [])
        r.acks[mid] = [(home, name) for home, _, name, _ in placed]
        if not placed:
            r.bad("ack", f"line {self.line}: 250 for {mid}, which was never "
                  "placed in a Maildir or the queue")
        for home, d, name, f in placed:
            r.counts["ack-placement"] += 1
            why = self._durable_in_home(home, f)
            if why:
                r.bad("ack", f"line {self.line}: 250 for {mid} while "
                      f"{d.path}/{name} {why}")
            elif not any(p[1] == home and p[2] is f for p in self.promises):
                self.promises.append([mid, home, f, self.line])

    def _check_promises(self):
        """After a 250 the message must stay durable, through the
        runner's moves and whatever else syncs a directory it left, for
        as long as it is in its Maildir or the queue."""
        keep = []
        for p in self.promises:
            mid, home, f, acked = p
            if not self._live_in_home(home, f):
                continue    # delivered, or deleted over POP3
            self.report.counts["kept"] += 1
            why = self._durable_in_home(home, f)
            if why:
                self.report.bad("kept", f"line {self.line}: {mid}, "
                                f"acknowledged at line {acked}, no longer "
                                f"survives a power cut: in {home} it {why}")
                continue
            keep.append(p)
        self.promises = keep

    def _live_in_home(self, home, f):
        for d in self.dirs.values():
            if (os.path.dirname(d.path) == home
                    and os.path.basename(d.path) != "tmp"
                    and any(e is f for e in d.live.values())):
                return True
        return False

    def _durable_in_home(self, home, f):
        """'' if a power cut leaves f, whole, under some name in a
        directory of home (new/ or cur/ of a Maildir, a queue directory),
        else why not."""
        why = "has no durable entry"
        for d in self.dirs.values():
            if os.path.dirname(d.path) != home or os.path.basename(d.path) == "tmp":
                continue
            for name in list(d.durable):
                if d.durable_entry(name) is not f:
                    continue
                if not f.data_durable():
                    return "has data that is not durable"
                if not self.reachable(d.path):
                    return f"is in {d.path}, which is not durably reachable"
                return ""
        return why

    def _check_pop3_quit(self):
        r = self.report
        r.counts["pop3-quit"] += 1
        for d, name, f in self.unlinked:
            r.counts["pop3-deletion"] += 1
            if d.durable_entry(name) is f:
                r.bad("pop3", f"line {self.line}: +OK to QUIT while the "
                      f"deletion of {d.path}/{name} is not durable")

    def _check_state(self, queue, mid):
        r = self.report
        r.counts["state"] += 1
        ok, why = self.durable_at(os.path.join(queue, "state", mid))
        if not ok:
            r.bad("state", f"line {self.line}: {mid} moved out of active/ "
                  f"while queue/state/{mid}: {why}")


def is_maildir_sub(path):
    return (os.path.basename(path) in ("new", "cur")
            and os.path.basename(os.path.dirname(path)) == "Maildir")


def message_ids(dirpath, name):
    """The queue ids a name placed in dirpath belongs to."""
    if is_maildir_sub(dirpath):
        m = re.search(r"Q([^_./]+)_", name)
        return [m.group(1)] if m else []
    if os.path.basename(dirpath) in QUEUE_DIRS:
        return [name]
    return []


def check_trace(path):
    """Replays the trace file at path; returns the Report."""
    with open(path, encoding="ascii", errors="replace") as f:
        return Model().replay(f)
