"""
Black-box integration tests for godwit: fixtures that start the real daemon
(the ASan+UBSan build named by $GODWIT_BIN) on free loopback ports, in a
fresh data directory populated through the real admin commands, and tear it
down again, failing the test if a sanitizer reported anything.

Only Python's standard library and pytest are used here; the SMTP clients
live in smtpclient.py. Every wait is bounded in time and every socket has a
timeout, so a hung daemon makes a test fail, never hang.
"""

import base64
import contextlib
import copy
import faulthandler
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import smtpclient  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
GODWIT_BIN = os.environ.get("GODWIT_BIN", str(REPO / "build" / "asan" / "godwit"))

DOMAIN = "example.test"
HOSTNAME = "mx.example.test"
USERS = ("alice", "bob")
PASSWORD = "correct horse battery staple"
# aliases created in every test data directory: source -> targets
ALIASES = {
    "postmaster@example.test": ["alice@example.test"],
    "team@example.test": ["alice@example.test", "bob@example.test"],
}

# Markers of a sanitizer report in the daemon's stderr.
SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "runtime error:",
    "SUMMARY: UndefinedBehaviorSanitizer",
    "SUMMARY: AddressSanitizer",
)

START_TIMEOUT = 15.0
STOP_TIMEOUT = 15.0
# A test that runs longer than this dumps every thread's stack and ends
# pytest: a last resort, the per-operation timeouts should fire first.
TEST_WATCHDOG = 90

DELETE = object()  # in an override dict: remove this key

# (users, aliases) -> a data directory holding just that user database
_userdb_templates = {}


# ---------------------------------------------------------------- YAML ---

_PLAIN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./@+-]*$")
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"}


def _yaml_scalar(v):
    if v is None:
        return '""'
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    s = str(v)
    if _PLAIN.match(s) and s.lower() not in _YAML_WORDS and not s[0].isdigit():
        return s
    if re.match(r"^[0-9]+[KMGsmhd]?$", s):  # sizes and durations: 1M, 2s
        return s
    # a double-quoted YAML scalar: JSON escaping is a subset of it
    out = '"'
    for ch in s:
        if ch in '"\\':
            out += "\\" + ch
        elif ord(ch) < 0x20:
            out += "\\x%02x" % ord(ch)
        else:
            out += ch
    return out + '"'


def to_yaml(obj, indent=0):
    """Block-style YAML for dicts, lists and scalars (enough for configs)."""
    pad = "  " * indent
    lines = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, dict) and v:
                lines.append(f"{pad}{k}:")
                lines.append(to_yaml(v, indent + 1))
            elif isinstance(v, list) and v:
                lines.append(f"{pad}{k}:")
                lines.append(to_yaml(v, indent + 1))
            elif isinstance(v, list):
                lines.append(f"{pad}{k}: []")
            elif isinstance(v, dict):
                lines.append(f"{pad}{k}: {{}}")
            else:
                lines.append(f"{pad}{k}: {_yaml_scalar(v)}")
    elif isinstance(obj, list):
        for v in obj:
            if isinstance(v, dict):
                sub = to_yaml(v, indent + 1).split("\n")
                first = sub[0].lstrip()
                lines.append(f"{pad}- {first}")
                lines.extend(sub[1:])
            elif isinstance(v, list):
                raise ValueError("nested lists are not needed")
            else:
                lines.append(f"{pad}- {_yaml_scalar(v)}")
    else:
        lines.append(pad + _yaml_scalar(obj))
    return "\n".join(lines)


def deep_merge(base, over):
    """Returns base updated by over, recursively; DELETE removes a key.
    A list in `over` replaces the list in base."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if v is DELETE:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


# ---------------------------------------------------------- smtp-sink ---

SMTP_SINK = "/usr/sbin/smtp-sink"


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture
def sink(tmp_path):
    """Postfix's smtp-sink on a free loopback port, dumping each message
    into a directory: (port, directory)."""
    if not os.path.exists(SMTP_SINK):
        pytest.skip("smtp-sink (postfix) is not installed")
    port = free_port()
    d = tmp_path / "sink"
    d.mkdir()
    p = subprocess.Popen([SMTP_SINK, "-u", "root", "-d", str(d / "m"),
                          f"127.0.0.1:{port}", "50"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for(lambda: port_open(port), 10, what="smtp-sink listening")
    yield port, d
    p.terminate()
    p.wait(timeout=10)


# --------------------------------------------------------------- ports ---

_used_ports = set()


def free_port():
    """A TCP port free on both 127.0.0.1 and ::1 (and not handed out
    before in this run), found by binding port 0."""
    for _ in range(200):
        s6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s6.bind(("::1", 0))
            port = s6.getsockname()[1]
            if port in _used_ports:
                continue
            try:
                s4.bind(("127.0.0.1", port))
            except OSError:
                continue
            _used_ports.add(port)
            return port
        finally:
            s6.close()
            s4.close()
    raise RuntimeError("no free port on both 127.0.0.1 and ::1")


def listening_sockets(pid=None):
    """{port: {socket inode}} for TCP sockets in LISTEN state, from
    /proc/net/tcp{,6} (or, given pid, /proc/PID/net/tcp{,6}: the view of
    that process's network namespace). Looking there instead of connecting
    keeps readiness checks from using up connection limits and rates, or
    tripping the early-talker test."""
    socks = {}
    base = "/proc/net" if pid is None else f"/proc/{pid}/net"
    for name in (f"{base}/tcp", f"{base}/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if len(parts) > 9 and parts[3] == "0A":
                        port = int(parts[1].rsplit(":", 1)[1], 16)
                        socks.setdefault(port, set()).add(parts[9])
        except OSError:
            pass
    return socks


def socket_inodes(pid):
    """Inodes of the sockets process pid has open."""
    out = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                out.add(link[8:-1])
    except OSError:
        pass
    return out


def wait_for(pred, timeout, interval=0.05, what="condition"):
    """Polls pred() until it returns a true value (returned) or timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def clear_of_midnight(margin=60):
    """Waits (bounded) until local midnight is more than MARGIN s away,
    for a test that names rotated files after today while a daemon may
    rotate at midnight: from its start to its end it sees one day."""
    def clear():
        t = time.localtime()
        left = 86400 - (t.tm_hour * 3600 + t.tm_min * 60 + t.tm_sec)
        return left > margin
    wait_for(clear, margin + 5, interval=0.5, what="midnight to pass")


# -------------------------------------------------------------- daemon ---


def daemon_user():
    """The user the daemon drops to, as in production: started as root,
    the workers and the queue runner run as `godwit`. Without root (or
    without that user) there is nothing to drop to: "". A test that needs
    the daemon without the drop says so with {"user": ""}."""
    if os.geteuid() != 0:
        return ""
    try:
        pwd.getpwnam("godwit")
    except KeyError:
        return ""
    return "godwit"


def make_reachable(path):
    """Gives every directory from / down to path search permission for
    others (o+x, not read): pytest's temporary directories are 0700, and
    the daemon user must reach the data directory below them."""
    p = Path(path).resolve()
    for d in [p] + list(p.parents):
        try:
            mode = d.stat().st_mode
        except OSError:
            continue
        if not mode & 0o001:
            os.chmod(d, (mode & 0o7777) | 0o001)


def copy_tree_owned(src, dst):
    """copytree that also keeps owners (as a restore with tar -p or
    cp -a would): the admin commands that made src gave the layout its
    owners, and a copy without them is a different set-up."""
    shutil.copytree(src, dst, dirs_exist_ok=True)
    for s in [Path(src)] + sorted(Path(src).rglob("*")):
        st = os.lstat(s)
        os.lchown(Path(dst) / s.relative_to(src), st.st_uid, st.st_gid)


_refuser = {}


def refusing_dns_port():
    """The port of a real unbound on 127.0.0.1 that answers REFUSED to
    every query, started once per test run. It is every test daemon's
    resolver unless a test names another: each lookup (the queue
    runner's routes, the SPF/DKIM/DMARC checks on port 25) fails at once
    and temporarily, as with no usable DNS, and never leaves the machine.
    (A forwarder where nothing listens fails the same way, but only after
    libunbound's retries: seconds per lookup.)"""
    if "port" in _refuser:
        return _refuser["port"]
    d = Path(tempfile.mkdtemp(prefix="godwit-refuser-"))
    port = free_port()
    conf = d / "unbound.conf"
    conf.write_text("\n".join([
        "server:", "  interface: 127.0.0.1", f"  port: {port}",
        "  do-daemonize: no", '  username: ""', '  chroot: ""',
        f'  directory: "{d}"', f'  pidfile: "{d / "unbound.pid"}"',
        "  use-syslog: no", f'  logfile: "{d / "unbound.log"}"',
        "  num-threads: 1", '  module-config: "iterator"',
        "  access-control: 127.0.0.0/8 allow",
        # "." and the RFC 6761 zone unbound otherwise answers itself
        # (NXDOMAIN): the tests' mail domains are under test.
        '  local-zone: "." always_refuse',
        '  local-zone: "test." always_refuse',
        "remote-control:", "  control-enable: no", ""]))
    proc = subprocess.Popen(["/usr/sbin/unbound", "-d", "-c", str(conf)],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    probe = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01x\x00\x00\x01\x00\x01"
    deadline = time.monotonic() + 10
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.settimeout(0.2)
            try:
                u.sendto(probe, ("127.0.0.1", port))
                if u.recv(512)[:2] == probe[:2]:
                    break
            except OSError:
                pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError("the refusing unbound did not start")
    _refuser.update(port=port, proc=proc, dir=d)
    return port


def default_config(data_dir, port):
    return {
        "hostname": HOSTNAME,
        "data_dir": str(data_dir),
        "user": daemon_user(),
        "workers": 2,
        "log": {"format": "kv", "level": "info"},
        "smtp": {
            "max_message_size": "1M",
            "max_recipients": 100,
            "trusted_networks": [],
        },
        # the daemon must never ask a resolver outside the test: one on
        # loopback that refuses everything makes every lookup fail
        # (temporarily) at once, so remote mail stays deferred in the
        # queue and the checks on port 25 end in temperror/none
        "dns": {"resolver": [f"127.0.0.1@{refusing_dns_port()}"]},
        "limits": {
            "max_connections": 1000,
            "max_connections_per_ip": 200,
            "connection_rate": "off",
            # bounds the damage of a SIGTERM a worker misses (the kill
            # timer fires after shutdown_timeout + 5s);
            # test_sigterm_right_after_start checks that none is missed
            "shutdown_timeout": "2s",
        },
        # alerts mail postmaster (alice) and the test certificates
        # expire in days: only the tests of alerts and sending limits
        # (test_alerts.py, test_sending_limits.py) turn them on, so no
        # other test finds a mail it did not send
        "alerts": {"enabled": False},
        "submission": {"limits": {
            "messages_per_hour": 0, "recipients_per_hour": 0,
            "messages_per_day": 0, "recipients_per_day": 0}},
        "listeners": [
            {
                "name": "mx",
                "protocol": "smtp",
                "listen": [f"127.0.0.1:{port}", f"[::1]:{port}"],
                "greet_pause": 0,
            }
        ],
    }


class Godwit:
    """One godwit instance: its config, data directory and process."""

    def __init__(self, base, overrides=None, users=USERS, aliases=ALIASES,
                 netns=None, domain=DOMAIN):
        """netns: a netlab.Host or a namespace name: the daemon and the
        admin commands run in it (`ip netns exec`), it listens on port 25
        of every address there unless overrides say otherwise, and host4/
        host6 are the Host's addresses. domain: the local domain made with
        the users (and replacing example.test in the aliases)."""
        self.netns = getattr(netns, "ns", netns)
        self.nethost = netns if hasattr(netns, "ns") else None
        self.domain = domain
        if domain != DOMAIN and aliases:
            aliases = {k.replace("@" + DOMAIN, "@" + domain):
                       [t.replace("@" + DOMAIN, "@" + domain) for t in v]
                       for k, v in aliases.items()}
        self.base = Path(base)
        # The data directory sits under a 0755 directory, and every
        # directory above lets others through, so a daemon that drops
        # privileges can still reach it.
        self.base.mkdir(parents=True, exist_ok=True)
        os.chmod(self.base, 0o755)
        make_reachable(self.base)
        self.data_dir = self.base / "data"
        self.data_dir.mkdir(exist_ok=True)
        self.cfg_path = self.base / "godwit.yaml"
        self.stderr_path = self.base / "godwit.stderr"
        self.stdout_path = self.base / "godwit.stdout"
        self.host4 = "127.0.0.1"
        self.host6 = "::1"
        self.port = free_port() if self.netns is None else 25
        if self.nethost is not None:
            self.host4, self.host6 = self.nethost.ip4, self.nethost.ip6
        self.proc = None
        self.pgid = None
        self.exit_codes = []
        self.expect_crash = False
        # more ASAN_OPTIONS for the daemon, e.g. "quarantine_size_mb=1"
        self.asan_extra = ""
        self.config = default_config(self.data_dir, self.port)
        if self.netns is not None:
            self.config["listeners"][0]["listen"] = ["0.0.0.0:25", "[::]:25"]
        if overrides:
            self.config = deep_merge(self.config, overrides)
        self.write_config()
        self._admin_sanitizer_reports = []
        self._setup_userdb(users, aliases)

    # -- configuration ---------------------------------------------------

    def write_config(self, config=None, raw=None):
        """Writes self.config (or config, or raw text) atomically."""
        if config is not None:
            self.config = config
        text = raw if raw is not None else to_yaml(self.config) + "\n"
        tmp = self.cfg_path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.cfg_path)

    def update_config(self, overrides):
        self.write_config(deep_merge(self.config, overrides))

    def listener(self, name="mx"):
        for l in self.config["listeners"]:
            if l["name"] == name:
                return l
        raise KeyError(name)

    def add_submission(self):
        """Appends a submission listener on a free loopback port that
        takes AUTH PLAIN/LOGIN without TLS; sets and returns
        self.sub_port. Takes effect at the next write_config()."""
        self.sub_port = free_port()
        self.config["listeners"].append(
            {"name": "submission", "protocol": "submission",
             "plaintext_auth": True,
             "listen": [f"127.0.0.1:{self.sub_port}"]})
        return self.sub_port

    # -- admin commands --------------------------------------------------

    def run(self, *args, input=None, timeout=30, check=False, global_cfg=True):
        """Runs `godwit -c CFG args...`; returns the CompletedProcess
        (stdout/stderr as text)."""
        cmd = self._ns_prefix() + [GODWIT_BIN]
        if global_cfg:
            cmd += ["-c", str(self.cfg_path)]
        cmd += [str(a) for a in args]
        p = subprocess.run(
            cmd,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=daemon_env(),
        )
        for marker in SANITIZER_MARKERS:
            if marker in p.stderr:
                self._admin_sanitizer_reports.append(
                    f"$ {' '.join(cmd)}\n{p.stderr}"
                )
                break
        if check and p.returncode != 0:
            raise AssertionError(
                f"{' '.join(cmd)} exited {p.returncode}\n"
                f"stdout: {p.stdout}\nstderr: {p.stderr}"
            )
        return p

    def admin(self, *args, input=None, check=True):
        return self.run(*args, input=input, check=check)

    def _setup_userdb(self, users, aliases):
        """Creates the domain, users and aliases with the real admin
        commands, once per distinct set: later instances copy the data
        directory made then (hashing passwords under ASan is slow)."""
        key = (self.domain, tuple(users),
               tuple(sorted((k, tuple(v)) for k, v in (aliases or {}).items())))
        tmpl = _userdb_templates.get(key)
        if tmpl is not None:
            copy_tree_owned(tmpl, self.data_dir)
            return
        self._make_userdb(users, aliases)
        tmpl = Path(tempfile.mkdtemp(prefix="godwit-userdb-"))
        copy_tree_owned(self.data_dir, tmpl)
        _userdb_templates[key] = tmpl

    def _make_userdb(self, users, aliases):
        self.admin("domain", "add", self.domain)
        for u in users:
            self.admin("user", "add", f"{u}@{self.domain}", "--password-stdin",
                       input=PASSWORD + "\n")
        for src, targets in (aliases or {}).items():
            for t in targets:
                self.admin("alias", "add", src, t)

    def _ns_prefix(self):
        """`ip netns exec NS`, which execs the command: the pid of the
        Popen is the command's own."""
        if self.netns is None:
            return []
        return [shutil.which("ip") or "/usr/sbin/ip", "netns", "exec", self.netns]

    # -- process ---------------------------------------------------------

    def start(self, wait=True):
        assert self.proc is None or self.proc.poll() is not None
        self._stderr_f = open(self.stderr_path, "ab")
        self._stdout_f = open(self.stdout_path, "ab")
        self.proc = subprocess.Popen(
            self._ns_prefix() + [GODWIT_BIN, "-c", str(self.cfg_path), "serve"],
            stdin=subprocess.DEVNULL,
            stdout=self._stdout_f,
            stderr=self._stderr_f,
            env=daemon_env(self.asan_extra),
            start_new_session=True,  # own process group, for kill -9 of all
        )
        self.pgid = self.proc.pid
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=START_TIMEOUT):
        ports = self.all_ports()

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"godwit exited with {self.proc.returncode} at start:\n"
                    + self.log_text()[-4000:]
                )
            listening = listening_sockets(
                None if self.netns is None else self.proc.pid)
            if not all(p in listening for p in ports):
                return False
            # ... and the listening sockets are ours, not a stranger's
            # that took the port first
            mine = socket_inodes(self.proc.pid)
            return all(listening[p] & mine for p in ports)

        wait_for(ready, timeout, interval=0.005, what="godwit to listen")
        # Workers are forked after the sockets are bound; connections
        # wait in the backlog until a worker accepts, so nothing more to
        # wait for here.

    def all_ports(self):
        ports = set()
        for l in self.config["listeners"]:
            for a in l["listen"]:
                ports.add(int(a.rsplit(":", 1)[1]))
        return ports

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def reload(self):
        os.kill(self.proc.pid, signal.SIGHUP)

    def stop(self, timeout=STOP_TIMEOUT, expect_code=0):
        """SIGTERM, wait for exit, assert the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            diag = self.diagnose()
            self.kill9()
            raise AssertionError(
                f"godwit did not exit within {timeout}s of SIGTERM\n{diag}\n"
                + self.log_text()[-3000:])
        self._reap_group()
        self.exit_codes.append(code)
        if expect_code is not None:
            assert code == expect_code, (
                f"godwit exited with {code} after SIGTERM, wanted {expect_code}\n"
                + self.log_text()[-4000:]
            )
        return code

    def kill9(self):
        """kill -9 the whole process group (parent and workers)."""
        if self.pgid is not None:
            try:
                os.killpg(self.pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self._reap_group()

    def _reap_group(self):
        """After the parent exits, make sure no worker of ours lingers
        (a leftover would hold the ports and the data directory)."""
        if self.pgid is None:
            return
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.killpg(self.pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.leftover_workers = True

    def diagnose(self):
        """What the processes of the group are doing (for hang reports)."""
        out = []
        pids = [self.proc.pid] + self.all_children()
        for pid in pids:
            try:
                with open(f"/proc/{pid}/status") as f:
                    st = dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)
                with open(f"/proc/{pid}/wchan") as f:
                    wchan = f.read()
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
                out.append(f"pid {pid} ({cmd.strip()}): state {st.get('State', '?').strip()} "
                           f"wchan {wchan} SigBlk {st.get('SigBlk', '?').strip()} "
                           f"SigCgt {st.get('SigCgt', '?').strip()} "
                           f"SigPnd {st.get('SigPnd', '?').strip()} ShdPnd {st.get('ShdPnd', '?').strip()}")
            except OSError as e:
                out.append(f"pid {pid}: {e}")
        return "\n".join(out)

    def children(self):
        """Pids of the workers (the parent's children but the runner)."""
        return [p for p in self.all_children() if not self._is_runner(p)]

    def runner_pid(self):
        """Pid of the queue runner, or None."""
        for p in self.all_children():
            if self._is_runner(p):
                return p
        return None

    @staticmethod
    def _is_runner(pid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                return f.read().startswith(b"godwit: queue runner")
        except OSError:
            return False

    def group_strays(self):
        """Processes of godwit's process group other than the parent and
        its direct children, as (pid, ppid, cmdline): a grandchild (e.g.
        a helper process a child forked) or an orphan left by a child
        that was killed. Godwit's design has none."""
        known = {self.proc.pid, *self.all_children()}
        out = []
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) in known:
                continue
            try:
                with open(f"/proc/{d}/stat") as f:
                    # after the last ')' of the command: state ppid pgrp
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[2]) != self.pgid:
                    continue
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    cmd = f.read().split(b"\0")[0].decode(errors="replace")
            except (OSError, IndexError, ValueError):
                continue
            out.append((int(d), int(fields[1]), cmd))
        return out

    def all_children(self):
        """Pids of the parent's direct children: workers and runner."""
        pid = self.proc.pid
        kids = set()
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                try:
                    with open(f"/proc/{pid}/task/{tid}/children") as f:
                        kids.update(int(x) for x in f.read().split())
                except OSError:
                    pass
        except OSError:
            pass
        return sorted(kids)

    # -- logs ------------------------------------------------------------

    def log_text(self):
        try:
            return self.stderr_path.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_size(self):
        try:
            return self.stderr_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_since(self, offset):
        with open(self.stderr_path, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")

    def sanitizer_reports(self):
        text = self.log_text()
        reports = [m for m in SANITIZER_MARKERS if m in text]
        return reports, text

    # -- clients ---------------------------------------------------------

    def host(self, family=4):
        return self.host4 if family == 4 else self.host6

    def raw(self, family=4, port=None, timeout=10, greet=True):
        """A raw SMTP client; with greet it has read the 220 banner."""
        c = smtpclient.RawSMTP(self.host(family), port or self.port, timeout=timeout)
        if greet:
            r = c.reply()
            assert r.code == 220, f"greeting: {r}"
            c.greeting = r
        return c

    def smtp(self, family=4, port=None, timeout=10):
        import smtplib

        s = smtplib.SMTP(self.host(family), port or self.port,
                         local_hostname="client.test", timeout=timeout)
        return s

    # -- storage ---------------------------------------------------------

    @property
    def mail_root(self):
        """Where the Maildirs are: mail_dir, default <data_dir>/mail."""
        return Path(self.config.get("mail_dir") or self.data_dir / "mail")

    def maildir(self, address):
        local, domain = address.rsplit("@", 1)
        return self.mail_root / domain.lower() / local.lower() / "Maildir"

    def hand_over_mail(self):
        """Gives everything under mail/ to the daemon user: mail a test
        places there by hand stands for what another delivery agent or
        an import running as that user would have written (files root
        made are not the daemon's to lock, rename or delete)."""
        user = self.config.get("user") or ""
        root = self.mail_root
        if not user or not root.is_dir():
            return
        pw = pwd.getpwnam(user)
        for p in [root] + list(root.rglob("*")):
            os.lchown(p, pw.pw_uid, pw.pw_gid)

    def maildir_files(self, address):
        md = self.maildir(address)
        files = []
        for sub in ("new", "cur"):
            d = md / sub
            if d.is_dir():
                files.extend(sorted(p for p in d.iterdir() if p.is_file()))
        return files

    def maildir_messages(self, address):
        """Contents (bytes) of every message in new/ and cur/."""
        return [p.read_bytes() for p in self.maildir_files(address)]

    def all_maildir_files(self):
        root = self.mail_root
        if not root.is_dir():
            return []
        return sorted(
            p for p in root.glob("*/*/Maildir/*/*")
            if p.is_file() and p.parent.name in ("new", "cur")
        )

    def find_messages(self, needle):
        """Every stored message (any Maildir) containing needle (bytes)."""
        if isinstance(needle, str):
            needle = needle.encode()
        return [p for p in self.all_maildir_files() if needle in p.read_bytes()]

    def queue_files(self, sub=None):
        """Message files in queue/<sub>; without sub, in every state a
        queued message can be in (the queue runner moves them on at once:
        incoming -> active -> deferred; listed in that order, so a file
        that moves while we look is still seen). One file per message: a
        move out of incoming/ links the new name before it unlinks the old
        one, so for a moment a message can have both."""
        subs = [sub] if sub else ["incoming", "active", "deferred", "hold"]

        def listing():
            out = {}
            for s in subs:
                d = self.data_dir / "queue" / s
                if d.is_dir():
                    for p in d.iterdir():
                        if p.is_file():
                            out.setdefault(p.name, p)
            return out

        # A runner starting up moves deferred/ back to active/, against
        # the order listed: a file can be missed by one listing, so list
        # until two in a row name the same messages (bounded).
        out = listing()
        for _ in range(50):
            again = listing()
            if again.keys() == out.keys():
                break
            out = again
        return sorted(out.values(), key=lambda p: p.name)

    def tmp_files(self):
        """Files left in queue/tmp and every Maildir's tmp/."""
        out = self.queue_files("tmp")
        root = self.mail_root
        if root.is_dir():
            out += sorted(p for p in root.glob("*/*/Maildir/tmp/*") if p.is_file())
        return out

    def wait_messages(self, address, n, timeout=10):
        return wait_for(lambda: len(self.maildir_files(address)) >= n and
                        self.maildir_messages(address), timeout,
                        what=f"{n} message(s) for {address}")


def daemon_env(asan_extra=""):
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    if asan_extra:
        env["ASAN_OPTIONS"] += ":" + asan_extra
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    return env


# ------------------------------------------------------------ fixtures ---


def pytest_configure(config):
    if not os.path.exists(GODWIT_BIN):
        # Collection still works (so the suite can be checked before the
        # daemon builds), every test is skipped with the reason.
        config._godwit_missing = True


def pytest_collection_modifyitems(config, items):
    if getattr(config, "_godwit_missing", False):
        skip = pytest.mark.skip(reason=f"{GODWIT_BIN} not built")
        for it in items:
            it.add_marker(skip)


def pytest_unconfigure(config):
    for d in _userdb_templates.values():
        shutil.rmtree(d, ignore_errors=True)
    if "proc" in _refuser:
        _refuser["proc"].terminate()
        _refuser["proc"].wait(timeout=10)
        shutil.rmtree(_refuser["dir"], ignore_errors=True)


@pytest.fixture(autouse=True)
def _watchdog():
    faulthandler.dump_traceback_later(TEST_WATCHDOG, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


def _finish(g):
    """Stops g and returns a list of problems (empty if all is well)."""
    problems = []
    if g.proc is not None and g.proc.poll() is None:
        try:
            g.stop(expect_code=None)
        except AssertionError as e:
            problems.append(str(e))
        if g.exit_codes and g.exit_codes[-1] != 0:
            problems.append(f"godwit exited with {g.exit_codes[-1]} on SIGTERM at teardown")
    else:
        g._reap_group()
    for f in ("_stderr_f", "_stdout_f"):
        if hasattr(g, f):
            getattr(g, f).close()
    reports, text = g.sanitizer_reports()
    if reports:
        problems.append("sanitizer report in godwit's stderr:\n" + text[-12000:])
    problems.extend("sanitizer report in an admin command:\n" + r
                    for r in g._admin_sanitizer_reports)
    if g.stdout_path.exists() and g.stdout_path.stat().st_size:
        problems.append("godwit wrote to stdout: "
                        + g.stdout_path.read_text(errors="replace")[:2000])
    if getattr(g, "leftover_workers", False):
        problems.append("processes of godwit's group outlived the parent")
    return problems


@contextlib.contextmanager
def serving(g):
    """g started for the with-block (a module fixture's life), then
    stopped; what _finish() finds wrong fails the test."""
    try:
        g.start()
        yield g
    finally:
        problems = _finish(g)
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture(scope="session")
def godwit_root(request, tmp_path_factory):
    """Where the daemons' directories go: below a directory the daemon
    user can enter. pytest's own /tmp/pytest-of-root is 0700, and every
    pytest session that starts (other runs on the same machine) sets it
    back to 0700, so an o+x given to it does not last: without an
    explicit --basetemp (which pytest leaves alone) the daemons live in a
    0755 directory of our own, removed at the end unless a test failed."""
    if request.config.option.basetemp:
        root = tmp_path_factory.getbasetemp()
        make_reachable(root)
        yield root
        return
    root = Path(tempfile.mkdtemp(prefix="godwit-it-", dir="/tmp"))
    os.chmod(root, 0o755)
    yield root
    if request.session.testsfailed == 0:
        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"\ngodwit directories kept in {root}")


_bases = [0]


def godwit_base(root, name):
    """A fresh directory for one daemon below root: a counter and the
    test function's name (without parameters, which tests look for in
    config text), short because the control socket's path must fit in
    108 bytes."""
    _bases[0] += 1
    name = re.sub(r"[^A-Za-z0-9_]+", "_", name)[:24]
    d = Path(root) / f"{_bases[0]:04d}.{name}"
    d.mkdir(parents=True)
    os.chmod(d, 0o755)
    return d


@pytest.fixture
def make_godwit(request, godwit_root):
    """Factory: make_godwit(overrides=None, start=True) -> Godwit.
    overrides is merged into the default config (DELETE removes a key)."""
    made = []
    base = godwit_base(godwit_root, request.node.originalname)

    def factory(overrides=None, start=True, **kw):
        g = Godwit(base / f"g{len(made)}", overrides, **kw)
        made.append(g)
        if start:
            g.start()
        return g

    yield factory
    problems = []
    for g in made:
        problems.extend(_finish(g))
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def godwit(make_godwit):
    """A running godwit with the default config, fresh for each test."""
    return make_godwit()


@pytest.fixture(scope="module")
def shared_godwit(request, godwit_root):
    """One running godwit with the default config for a whole module, for
    tests that only look at replies or at messages they can tell apart."""
    g = Godwit(godwit_base(godwit_root, request.module.__name__ + "_shared"))
    g.start()
    yield g
    problems = _finish(g)
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture(scope="session")
def cert(tmp_path_factory):
    """A self-signed certificate for mx.example.test: (cert, key) paths."""
    d = tmp_path_factory.mktemp("cert")
    os.chmod(d, 0o755)
    key, crt = d / "k.pem", d / "c.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
         "2", "-subj", "/CN=mx.example.test", "-addext",
         "subjectAltName=DNS:mx.example.test,DNS:localhost",
         "-keyout", str(key), "-out", str(crt)],
        check=True, capture_output=True, timeout=60)
    os.chmod(key, 0o600)
    return crt, key


def cert_days_left(crt, t0, t1):
    """The whole days (rounded down, as godwit counts them) from a
    time(NULL) between t0 and t1 (time.time() before and after the
    godwit step that read the clock) to crt's notAfter: one value, or two
    when the step straddled a boundary. The session's `cert` read within
    the second it was made has 2 whole days left, a second later 1."""
    import ssl

    p = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-in",
                        str(crt)], capture_output=True, text=True,
                       check=True, timeout=30)
    na = ssl.cert_time_to_seconds(p.stdout.strip().split("=", 1)[1])
    return sorted({(na - int(t)) // 86400 for t in (t0, t1)})


def client_tls_context():
    """A client context that accepts the test's self-signed certificate."""
    import ssl

    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


@pytest.fixture
def uniq(request):
    """A marker unique to this test, to find its messages."""
    name = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name)[-40:]
    return f"{name}-{time.monotonic_ns()}"


def rsa_dkim_key(path, bits=1024):
    """An RSA key made by openssl at path: (PEM bytes, its DKIM p= value,
    the base64 of the DER public key)."""
    subprocess.run(["openssl", "genrsa", "-out", str(path), str(bits)],
                   check=True, capture_output=True)
    der = subprocess.run(["openssl", "rsa", "-in", str(path), "-pubout",
                          "-outform", "DER"], check=True,
                         capture_output=True).stdout
    return Path(path).read_bytes(), base64.b64encode(der).decode()
