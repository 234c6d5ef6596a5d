"""
A real Redis (Debian's redis-server 7) for the tests: started in the
foreground in a directory of its own, with no persistence, on one
address and port, through an optional command prefix (`ip netns exec
NS` in the network lab), stopped by its own pid. redis-cli (redis-tools)
is the client the tests read keys with.

    r = RedisPeer(tmp / "redis", port, bind="127.0.0.1").start()
    r.cli("KEYS", "godwit:*")   -> the reply lines
    r.stop(); r.start()         -> the same port again (state is gone)

Standard library only.
"""

import os
import subprocess
import time

from peer_proc import Peer, installed

REDIS_SERVER = "/usr/bin/redis-server"
REDIS_CLI = "/usr/bin/redis-cli"


def available():
    """(True, "") when redis-server and redis-cli are installed."""
    return installed([(REDIS_SERVER, "redis-server"),
                      (REDIS_CLI, "redis-tools")])


class RedisPeer(Peer):
    name = "redis"
    user = "redis"

    def __init__(self, directory, port, bind="127.0.0.1", password=None,
                 exec_prefix=()):
        super().__init__(directory, exec_prefix)
        self.port = port
        self.bind = bind
        self.password = password

    @property
    def address(self):
        """godwit's redis.address."""
        host = f"[{self.bind}]" if ":" in self.bind else self.bind
        return f"{host}:{self.port}"

    def write(self):
        lines = [
            f"port {self.port}",
            f"bind {self.bind}",
            'save ""',
            "appendonly no",
            f"dir {self.dir}",
            "daemonize no",
            f"logfile {self.log}",
            "protected-mode no",
        ]
        if self.password:
            lines.append(f"requirepass {self.password}")
        self.conf.write_text("\n".join(lines) + "\n")

    def own(self):
        # redis-server runs as root in the tests (no drop); the files
        # stay root's
        pass

    def argv(self):
        return [REDIS_SERVER, str(self.conf)]

    def cli_argv(self, *args):
        a = self.exec_prefix + [REDIS_CLI, "-h", self.bind, "-p",
                                str(self.port), "--no-auth-warning"]
        if self.password:
            a += ["-a", self.password]
        return a + [str(x) for x in args]

    def cli(self, *args, timeout=10):
        """A command's reply as a list of lines ("" lines dropped)."""
        p = subprocess.run(self.cli_argv(*args), capture_output=True,
                           text=True, timeout=timeout)
        return [l for l in p.stdout.splitlines() if l != ""]

    def ready(self):
        try:
            return self.cli("PING", timeout=2) == ["PONG"]
        except (subprocess.TimeoutExpired, OSError):
            return False

    def keys(self, pattern="*"):
        return sorted(self.cli("--scan", "--pattern", pattern))

    def pttl(self, key):
        out = self.cli("PTTL", key)
        return int(out[0]) if out else -2

    def flush(self):
        self.cli("FLUSHALL")

    def wait_gone(self, timeout=10):
        """Waits (bounded) until the port no longer answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.ready():
                return True
            time.sleep(0.05)
        return False


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False
