"""
The mail log in files (log.file, docs/log-schema.md, operations "Logs"):
the daemon started as root, its workers and runner dropped to `godwit`.

- `log.file: mail.log` is <data_dir>/log/mail.log, root's and 0640; only
  the parent holds it (the children write through a pipe the parent
  relays), so no child has a descriptor of it.
- An outside logrotate (`mv mail.log mail.log.1`, then SIGUSR1 to the
  parent): the lines before the signal stay in the moved file, those after
  go to a fresh mail.log, none is lost, none is written twice, none is cut.
  A SIGUSR1 sent to a child (`pidof -s` may name one) does not end it and
  reaches the parent.
- Daily rotation at local midnight: GODWIT_TEST_LOG_CLOCK_OFFSET (a test
  hook, read by daemon/logfile.c only) shifts the clock that decides the
  day, so that midnight comes a few seconds after the start; the real
  timer then renames mail.log to mail.log.<the day that ended>.
- A reload naming another log.file moves the log; a worker orphaned by
  kill -9 of the parent writes to standard error (EPIPE) instead.
- retention.logs: rotated log and audit files whose day ended longer ago
  are removed at start (and after each midnight); current files, younger
  ones, other names and the newest rotated audit file while audit.log is
  empty (it holds the chain head) stay.
"""

import datetime
import json
import os
import re
import signal
import time

import pytest

from conftest import clear_of_midnight, wait_for
from smtpclient import make_message, transaction
from test_log_schema import doc_tables, logfmt

LINE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=\S+ "
                     r"proc=\S+ fac=\S+ event=\S+( .*)?$")


@pytest.fixture(autouse=True)
def _one_day():
    """Every test here reads a file the daemon rotates at local midnight
    (and names files after today): none starts in the minute before it."""
    clear_of_midnight()


def lines_of(path, strict=False):
    """The whole lines of a log file. strict (once godwit has stopped):
    every one ends with a newline and starts as godwit writes it (no line
    cut by a rotation); while it runs, a read may catch the parent in the
    middle of a write(), and the unfinished last line is left for later."""
    if not path.exists():
        return []
    raw = path.read_bytes()
    if strict:
        assert raw == b"" or raw.endswith(b"\n"), f"{path}: a cut last line"
    out = raw.decode("utf-8", "replace").split("\n")[:-1]
    for line in out:
        assert not strict or LINE_RE.match(line), \
            f"{path}: not a whole line: {line!r}"
    return out


def send(g, marker):
    with g.raw() as c:
        c.ehlo("logfiles.test")
        r = transaction(c, f"{marker}@example.org", ["alice@example.test"],
                        make_message(marker))
        assert r.code == 250, r
        c.cmd("QUIT")


def accepts(lines, marker):
    return [l for l in lines if "event=accept" in l and marker in l]


def holds_fd_to(pid, path):
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            if os.readlink(f"{fd_dir}/{fd}").startswith(str(path)):
                return True
        except OSError:
            pass
    return False


def test_file_log_and_sigusr1_reopen(make_godwit, uniq):
    g = make_godwit({"log": {"file": "mail.log"}})
    log = g.data_dir / "log" / "mail.log"
    moved = g.data_dir / "log" / "mail.log.1"
    wait_for(lambda: any("event=start" in l for l in lines_of(log)), 10,
             what="the start line in log/mail.log")
    st = log.stat()
    assert (st.st_uid, st.st_mode & 0o777) == (0, 0o640)
    # the file is the parent's alone
    # (a child just forked holds it until it has closed it: waited for)
    wait_for(lambda: g.runner_pid() and g.children() and not any(
        holds_fd_to(p, log) for p in g.children() + [g.runner_pid()]), 10,
        what="no child holding log/mail.log")
    assert holds_fd_to(g.pid, log)
    for pid in g.children() + [g.runner_pid()]:     # dropped to godwit
        assert os.stat(f"/proc/{pid}").st_uid != 0, pid

    send(g, f"{uniq}-a")
    wait_for(lambda: accepts(lines_of(log), f"{uniq}-a"), 10,
             what="mail a logged")
    os.rename(log, moved)
    send(g, f"{uniq}-b")            # before the signal: into the moved file
    wait_for(lambda: accepts(lines_of(moved), f"{uniq}-b"), 10,
             what="mail b logged in the moved file")
    os.kill(g.pid, signal.SIGUSR1)
    wait_for(lambda: any("event=reopened" in l for l in lines_of(log)), 10,
             what="a fresh mail.log")
    send(g, f"{uniq}-c")
    wait_for(lambda: accepts(lines_of(log), f"{uniq}-c"), 10,
             what="mail c logged in the fresh file")

    # the signal sent to a worker (whichever pid `pidof -s` gives) is
    # passed on to the parent, and the worker lives on
    moved2 = g.data_dir / "log" / "mail.log.2"
    os.rename(log, moved2)
    worker = g.children()[0]
    os.kill(worker, signal.SIGUSR1)
    wait_for(lambda: any("event=reopened" in l for l in lines_of(log)), 10,
             what="mail.log reopened on a worker's SIGUSR1")
    send(g, f"{uniq}-d")
    wait_for(lambda: accepts(lines_of(log), f"{uniq}-d"), 10,
             what="mail d logged")
    assert worker in g.children()
    g.stop()

    old, mid, new = (lines_of(moved, True), lines_of(moved2, True),
                     lines_of(log, True))
    for m, where in (("a", old), ("b", old), ("c", mid), ("d", new)):
        assert len(accepts(old + mid + new, f"{uniq}-{m}")) == 1, m
        assert len(accepts(where, f"{uniq}-{m}")) == 1, m
    assert [l for l in new if "event=stopped" in l]
    # nothing went to stderr but what precedes the file's opening
    assert "event=accept" not in g.log_text()
    # what Loki's and Logstash's logfmt readers take, every line
    _, keys = doc_tables()
    for line in old + mid + new:
        pairs = logfmt(line)
        assert {k for k, _ in pairs[1:]} <= set(keys), line


def test_json_file_lines(make_godwit, uniq):
    """log.format json into a file: every line one JSON object of the
    documented keys, as Filebeat's ndjson parser reads it."""
    g = make_godwit({"log": {"file": "mail.log", "format": "json"}})
    log = g.data_dir / "log" / "mail.log"
    send(g, uniq)
    g.stop()
    _, keys = doc_tables()
    objs = [json.loads(l) for l in log.read_text().splitlines()]
    assert objs and all(set(o) <= set(keys) for o in objs)
    acc = [o for o in objs if o["event"] == "accept" and uniq in o["from"]]
    assert len(acc) == 1 and isinstance(acc[0]["size"], int), acc


def local_midnight_after(t):
    d = datetime.datetime.fromtimestamp(t).date() + datetime.timedelta(days=1)
    return datetime.datetime.combine(d, datetime.time()).timestamp()


def line_time(line):
    """The real time of a kv log line (its UTC timestamp)."""
    ts = line.split(" ", 1)[0]
    return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def start_before_midnight(make_godwit, monkeypatch, ahead):
    """A godwit whose shifted log clock reaches midnight AHEAD seconds
    after it is started: (godwit, the day that ends, the real time of its
    midnight), or None when the daemon wrote its start line less than a
    second before that midnight (too slow a start, on a loaded machine):
    then nothing here could tell which side of midnight a line is on."""
    g = make_godwit({"log": {"file": "mail.log", "format": "kv"}},
                    start=False)
    # the clock is set last: making the instance (its users and their
    # password hashes) can take seconds on a loaded machine
    now = time.time()
    offset = int(local_midnight_after(now) - ahead - now)
    midnight = local_midnight_after(now + offset) - offset
    day = datetime.datetime.fromtimestamp(now + offset).strftime("%Y-%m-%d")
    monkeypatch.setenv("GODWIT_TEST_LOG_CLOCK_OFFSET", str(offset))
    g.start()
    d = g.data_dir / "log"

    def start_line():
        for p in (d / "mail.log", d / f"mail.log.{day}"):
            for l in lines_of(p):
                if "event=start " in l:
                    return l
        return None
    wait_for(start_line, 20, what="the daemon's start line")
    if line_time(start_line()) < midnight - 1:
        return g, day, midnight
    g.stop()
    return None


def test_daily_rotation_at_midnight(make_godwit, uniq, monkeypatch):
    # the day of the daemon's shifted clock ends AHEAD seconds after it
    # starts; a daemon that took longer than that to start (it logged
    # its start after its midnight) proves nothing: a fresh one, with
    # more time (a bounded number of tries)
    for ahead in (8, 20, 45):
        started = start_before_midnight(make_godwit, monkeypatch, ahead)
        if started is not None:
            break
    assert started is not None, "the daemon never started within 45 s"
    g, day, midnight = started
    log = g.data_dir / "log" / "mail.log"
    rotated = g.data_dir / "log" / f"mail.log.{day}"
    send(g, f"{uniq}-a")
    wait_for(lambda: rotated.exists() and any(
        "event=rotated" in l for l in lines_of(log)),
        max(1, midnight - time.time()) + 20,
        what=f"mail.log rotated to {rotated.name}")
    send(g, f"{uniq}-b")
    wait_for(lambda: accepts(lines_of(log), f"{uniq}-b"), 10,
             what="mail b in the new mail.log")
    g.stop()

    old, new = lines_of(rotated, True), lines_of(log, True)
    assert [l for l in old if "event=start" in l]
    assert not [l for l in new if "event=start" in l]
    assert [l for l in new if f"path={rotated}" in l and "event=rotated" in l]
    assert len(accepts(old + new, f"{uniq}-a")) == 1
    assert len(accepts(new, f"{uniq}-b")) == 1
    assert not accepts(old, f"{uniq}-b")
    assert sorted(p.name for p in log.parent.iterdir()
                  if p.name.startswith("mail.log")) == ["mail.log", rotated.name]


def days_ago(n):
    return (datetime.date.today() - datetime.timedelta(days=n)).isoformat()


def test_retention_logs(make_godwit):
    g = make_godwit({"log": {"file": "mail.log"},
                     "retention": {"logs": "60d"}}, start=False)
    d = g.data_dir / "log"
    d.mkdir(mode=0o750, exist_ok=True)
    old, young = days_ago(70), days_ago(10)
    files = {
        "mail.log": "current\n",
        f"mail.log.{old}": "old\n",
        f"mail.log.{young}": "young\n",
        f"other.log.{old}": "old\n",
        f"notes.txt.{old}": "not a log's name\n",
        f"audit.log.{days_ago(100)}": "older audit\n",
        f"audit.log.{days_ago(90)}": "the chain head\n",
        "audit.log": "",
    }
    for name, text in files.items():
        (d / name).write_text(text)
    # mail.log last written yesterday: rotated at start, and kept
    yesterday = time.time() - 86400
    os.utime(d / "mail.log", (yesterday, yesterday))
    g.start()
    wait_for(lambda: "event=logs-sweep" in (d / "mail.log").read_text(), 10,
             what="the sweep at start")
    names = sorted(p.name for p in d.iterdir())
    assert names == sorted(["mail.log", f"mail.log.{days_ago(1)}",
                            f"mail.log.{young}", f"notes.txt.{old}",
                            f"audit.log.{days_ago(90)}", "audit.log"]), names
    assert (d / f"mail.log.{days_ago(1)}").read_text().startswith("current\n")
    sweep = [l for l in (d / "mail.log").read_text().splitlines()
             if "event=logs-sweep" in l]
    assert len(sweep) == 1, sweep
    assert "removed=3 " in sweep[0] and "kept=audit-head" in sweep[0], sweep
    removed = [l for l in (d / "mail.log").read_text().splitlines()
               if "event=log-removed" in l]
    assert len(removed) == 3, removed
    g.stop()

    # audit.log has lines now: the old rotated one no longer holds the
    # head and goes at the next start
    (d / "audit.log").write_text('{"line": 1}\n')
    g.start()
    wait_for(lambda: not (d / f"audit.log.{days_ago(90)}").exists(), 10,
             what="the old audit file removed")
    assert (d / "audit.log").exists() and (d / "mail.log").exists()
    assert (d / f"mail.log.{young}").exists()


def test_reload_moves_the_log(make_godwit, uniq):
    """SIGHUP with another log.file: the old workers' last lines and the
    new ones each land once, in the file that was current."""
    g = make_godwit({"log": {"file": "a.log"}})
    a, b = g.data_dir / "log" / "a.log", g.data_dir / "log" / "b.log"
    send(g, f"{uniq}-a")
    wait_for(lambda: accepts(lines_of(a), f"{uniq}-a"), 10, what="a logged")
    g.update_config({"log": {"file": "b.log"}})
    g.reload()
    wait_for(lambda: any("event=reloaded" in l for l in lines_of(b)), 10,
             what="the reload logged in b.log")
    send(g, f"{uniq}-b")
    wait_for(lambda: accepts(lines_of(b), f"{uniq}-b"), 10, what="b logged")
    g.stop()
    la, lb = lines_of(a, True), lines_of(b, True)
    assert len(accepts(la, f"{uniq}-a")) == 1 and not accepts(lb, f"{uniq}-a")
    assert len(accepts(lb, f"{uniq}-b")) == 1 and not accepts(la, f"{uniq}-b")


def test_orphaned_worker_logs_to_stderr(make_godwit, uniq):
    """The parent killed (-9): a worker still serving finds the log
    pipe without a reader (EPIPE) and writes its lines to standard error
    rather than nowhere."""
    g = make_godwit({"log": {"file": "mail.log"}, "workers": 1})
    log = g.data_dir / "log" / "mail.log"
    wait_for(lambda: g.children(), 10, what="the worker")
    os.kill(g.pid, signal.SIGKILL)
    g.proc.wait(timeout=10)
    send(g, uniq)
    wait_for(lambda: accepts(g.log_text().splitlines(), uniq), 10,
             what="the accept line on stderr")
    g.kill9()
    assert not accepts(lines_of(log, True), uniq)
