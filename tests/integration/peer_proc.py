"""
The common part of the test peers that are daemons of ours
(clamd_peer.py, rspamd_peer.py, auth_peers.py): a process started in
the foreground in a session of its own, with its configuration, output
and log in one directory, waited for (bounded) until it serves, ended by
its own pid. Standard library only.
"""

import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path


def installed(programs, users=()):
    """(True, "") if every path of programs and every user of users, each
    given with its Debian package, is there; else (False, what is not)."""
    for path, pkg in programs:
        if not os.path.exists(path):
            return False, f"{path} is missing (Debian package {pkg})"
    for user, pkg in users:
        try:
            pwd.getpwnam(user)
        except KeyError:
            return False, f"user {user} is missing (Debian package {pkg})"
    return True, ""


def chown_tree(path, user):
    """path and everything below it to user (and its group)."""
    shutil.chown(path, user, user)
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            shutil.chown(os.path.join(root, n), user, user)


def listening_tcp(pid, port):
    """A LISTEN socket on 127.0.0.1:port in the namespace of pid."""
    want = "0100007F:%04X" % port
    try:
        with open(f"/proc/{pid}/net/tcp") as f:
            return any(l.split()[1] == want and l.split()[3] == "0A"
                       for l in list(f)[1:])
    except OSError:
        return False


class Peer:
    """One foreground daemon of ours, in a session of its own, in
    DIR, run through exec_prefix (e.g. `ip netns exec NS`): a subclass
    gives write() (its configuration), argv() and ready() (it serves),
    and may set user (as root, own() gives DIR to it after write(): the
    daemon drops to it). start() (bounded wait for ready()), stop()
    (SIGTERM, then SIGKILL), kill(), output() (its stdout/stderr, then its
    log file)."""

    name = "daemon"
    user = None

    def __init__(self, directory, exec_prefix=()):
        self.dir = Path(directory)
        self.exec_prefix = [str(a) for a in exec_prefix]
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.conf = self.dir / f"{self.name}.conf"
        self.log = self.dir / f"{self.name}.log"
        self.out = self.dir / f"{self.name}.out"
        self.proc = None
        self._out = None

    def write(self):
        raise NotImplementedError

    def argv(self):
        raise NotImplementedError

    def ready(self):
        raise NotImplementedError

    def own(self):
        if os.geteuid() == 0 and self.user is not None:
            chown_tree(self.dir, self.user)

    def start(self, timeout=60):
        self.write()
        self.own()
        self._out = open(self.out, "ab")
        self.proc = subprocess.Popen(
            self.exec_prefix + self.argv(), stdin=subprocess.DEVNULL, stdout=self._out,
            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited with {self.proc.returncode} before "
                    f"it was ready:\n{self.output()[-3000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"{self.name} not ready after "
                                     f"{timeout}s:\n{self.output()[-3000:]}")
            time.sleep(0.02)
        return self

    def output(self):
        out = ""
        for p in (self.out, self.log):
            try:
                out += p.read_text(errors="replace")
            except OSError:
                pass
        return out

    def stop(self, timeout=15):
        p = self.proc
        if p is None:
            return
        if p.poll() is None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.kill(p.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    p.wait(timeout=timeout)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self._out:
            self._out.close()
            self._out = None

    def kill(self):
        """SIGKILL, as a crash: no clean-up of its own."""
        if self.running():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=15)
        self.stop()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def pid(self):
        return self.proc.pid if self.proc else None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class MilterPeer(Peer):
    """A Peer that is a milter on 127.0.0.1:port; ready once it listens."""

    def __init__(self, directory, port, exec_prefix=()):
        super().__init__(directory, exec_prefix)
        self.port = port

    def ready(self):
        return listening_tcp(self.proc.pid, self.port)

    @property
    def socket_spec(self):
        """godwit's filter.milters socket."""
        return f"inet:127.0.0.1:{self.port}"

    @property
    def postfix_spec(self):
        return f"inet:127.0.0.1:{self.port}"
