"""
Real database and cache engines inside network-lab hosts (netlab.py), for
the multi-node tests and bench/scale-out: PostgreSQL 15, MariaDB and Redis
from their Debian packages, each initialised in a fresh directory of its
own, listening only on its lab host's address (and a Unix socket in its
directory), stopped at the end. Nothing of the system's instances
(/var/lib/postgresql, /var/lib/mysql, /etc/redis) is read or touched.

    pg = LabPostgres(lab.host("db"), tmpdir / "pg").start()
    pg.dsn                  # "host=198.18.X.k port=5432 dbname=godwit ..."
    pg.restart()            # fast shutdown, start again (same data)
    rd = LabRedis(lab.host("redis"), tmpdir / "redis").start()
    rd.cli("KEYS", "*")     # redis-cli in the lab host
    rd.stop(); rd.start()

Each engine runs as its package's system user (postgres, mysql, redis)
through setpriv, which execs: the Popen's pid is the engine's own, so
stop() signals exactly the process this module started. Every wait is
bounded. Standard library only.

These are the lab's own helpers; the single-host peers of the feature
tests (pg_peer.py, mariadb_peer.py, redis_peer.py) run on loopback.
"""

import os
import pwd
import secrets
import shutil
import signal
import subprocess
import time
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")
MARIADBD = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
MARIADB_INSTALL = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"
MARIADB = shutil.which("mariadb") or "/usr/bin/mariadb"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
SETPRIV = shutil.which("setpriv") or "/usr/bin/setpriv"


class EngineError(AssertionError):
    pass


def _user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def postgres_available():
    for p in (PG_BIN / "initdb", PG_BIN / "postgres", PG_BIN / "psql"):
        if not os.access(p, os.X_OK) and not shutil.which("psql"):
            return False, f"{p} missing (Debian package postgresql-15)"
    if not _user_exists("postgres"):
        return False, "no user postgres (Debian package postgresql-15)"
    return True, ""


def mariadb_available():
    for p in (MARIADBD, MARIADB_INSTALL, MARIADB):
        if not os.access(p, os.X_OK):
            return False, f"{p} missing (Debian package mariadb-server)"
    if not _user_exists("mysql"):
        return False, "no user mysql (Debian package mariadb-server)"
    return True, ""


def redis_available():
    for p in (REDIS_SERVER, REDIS_CLI):
        if not os.access(p, os.X_OK):
            return False, f"{p} missing (Debian packages redis-server, redis-tools)"
    return True, ""


def _as(user):
    return [SETPRIV, f"--reuid={user}", f"--regid={user}", "--init-groups", "--"]


def _chown_tree(path, user):
    pw = pwd.getpwnam(user)
    for p in [path] + list(Path(path).rglob("*")):
        os.lchown(p, pw.pw_uid, pw.pw_gid)


def _wait(pred, timeout, what, proc=None, log=None):
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise EngineError(f"{what}: the process exited with {proc.returncode}"
                              + (f"\n{_tail(log)}" if log else ""))
        if pred():
            return
        if time.monotonic() >= deadline:
            raise EngineError(f"timed out after {timeout}s waiting for {what}"
                              + (f"\n{_tail(log)}" if log else ""))
        time.sleep(0.05)


def _tail(path, n=3000):
    try:
        return Path(path).read_text(errors="replace")[-n:]
    except OSError:
        return ""


def _end(proc, sig, timeout):
    """Sends sig to proc (ours: its pid is the engine's), waits; SIGKILL
    after timeout."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


class LocalHost:
    """The root namespace's loopback as a "host" for the engines (the
    benchmarks run there): 127.0.0.1, plain subprocess calls."""

    ip4 = "127.0.0.1"

    def __init__(self):
        self.procs = []

    def run(self, argv, **kw):
        kw.setdefault("timeout", 30)
        return subprocess.run([str(a) for a in argv], **kw)

    def popen(self, argv, **kw):
        kw.setdefault("start_new_session", True)
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen([str(a) for a in argv], **kw)
        self.procs.append(p)
        return p

    def listening(self, port, pid):
        for name in ("tcp", "tcp6"):
            try:
                with open(f"/proc/{pid}/net/{name}") as f:
                    next(f)
                    for line in f:
                        parts = line.split()
                        if (len(parts) > 3 and parts[3] == "0A" and
                                int(parts[1].rsplit(":", 1)[1], 16) == port):
                            return True
            except (OSError, StopIteration):
                pass
        return False


class _Engine:
    port = 0

    def __init__(self, host, base, port=None):
        if port:
            self.port = port
        self.host = host
        self.ip4 = host.ip4
        self.base = Path(base)
        self.base.mkdir(parents=True, exist_ok=True)
        os.chmod(self.base, 0o755)
        self.proc = None
        self._log_f = None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def _popen(self, argv, log):
        self._log_f = open(log, "ab")
        self.proc = self.host.popen(argv, stdout=self._log_f,
                                    stderr=subprocess.STDOUT)

    def _closed(self):
        if self._log_f:
            self._log_f.close()
            self._log_f = None

    def restart(self, down=0.0):
        """Stops, stays down `down` seconds, starts again."""
        self.stop()
        time.sleep(down)
        return self.start()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class LabPostgres(_Engine):
    """PostgreSQL 15 in lab host `host`: database `godwit` owned by role
    `godwit` (password auth, SCRAM) on HOST:5432; the superuser
    `postgres` only through the Unix socket in base/sock."""

    port = 5432

    def __init__(self, host, base, settings=None, db="godwit", user="godwit",
                 port=None):
        super().__init__(host, base, port)
        self.data = self.base / "data"
        self.sock = self.base / "sock"
        self.log = self.base / "postgres.log"
        self.db, self.user = db, user
        self.password = "pg-" + secrets.token_hex(8)
        # the test's speed, not the engine's durability, is what matters
        # here unless the caller says otherwise (bench keeps fsync on)
        self.settings = {"fsync": "off", "synchronous_commit": "off",
                         "full_page_writes": "off", "max_connections": "100",
                         "shared_buffers": "32MB"}
        self.settings.update(settings or {})
        self._made = False

    @property
    def dsn(self):
        return (f"host={self.ip4} port={self.port} dbname={self.db} "
                f"user={self.user} password={self.password} connect_timeout=3")

    def _initdb(self):
        self.sock.mkdir(exist_ok=True)
        self.data.mkdir(exist_ok=True)
        os.chmod(self.data, 0o700)
        _chown_tree(self.base, "postgres")
        p = subprocess.run(_as("postgres") + [
            PG_BIN / "initdb", "-D", self.data, "-U", "postgres",
            "--auth-local=trust", "--auth-host=scram-sha-256",
            "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
            capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            raise EngineError(f"initdb failed:\n{p.stdout}{p.stderr}")
        (self.data / "pg_hba.conf").write_text(
            "local all all trust\n"
            "host all all 0.0.0.0/0 scram-sha-256\n"
            "host all all ::/0 scram-sha-256\n")

    def start(self, timeout=60):
        if self.running():
            return self
        if not self._made:
            self._initdb()
        argv = _as("postgres") + [PG_BIN / "postgres", "-D", self.data,
                                  "-c", f"listen_addresses={self.ip4}",
                                  "-c", f"port={self.port}",
                                  "-c", f"unix_socket_directories={self.sock}"]
        for k, v in self.settings.items():
            argv += ["-c", f"{k}={v}"]
        self._popen(argv, self.log)
        _wait(lambda: self.host.listening(self.port, self.proc.pid) and
              self.psql("SELECT 1", check=False).returncode == 0,
              timeout, "PostgreSQL to accept connections", self.proc, self.log)
        if not self._made:
            self.psql(f"CREATE ROLE {self.user} LOGIN PASSWORD '{self.password}'")
            self.psql(f"CREATE DATABASE {self.db} OWNER {self.user}")
            self._made = True
        return self

    def psql(self, sql, db="postgres", check=True, timeout=30):
        """Runs sql as the superuser over the Unix socket; returns the
        CompletedProcess (tuples only, unaligned)."""
        p = self.host.run(_as("postgres") + [
            PG_BIN / "psql", "-h", self.sock, "-p", self.port, "-d", db,
            "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql],
            capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise EngineError(f"psql {sql!r}: {p.returncode}\n{p.stdout}{p.stderr}")
        return p

    def stop(self, timeout=30):
        """Fast shutdown (SIGINT: clients are disconnected at once)."""
        _end(self.proc, signal.SIGINT, timeout)
        self._closed()


class LabMariaDB(_Engine):
    """MariaDB in lab host `host`: database `godwit`, user 'godwit'@'%'
    with a password, on HOST:3306; root only through the Unix socket."""

    port = 3306

    def __init__(self, host, base, db="godwit", user="godwit", port=None):
        super().__init__(host, base, port)
        self.data = self.base / "data"
        self.sock = self.base / "mysqld.sock"
        self.log = self.base / "mariadb.log"
        self.db, self.user = db, user
        self.password = "my-" + secrets.token_hex(8)
        self._made = False

    @property
    def dsn(self):
        # (the MySQL driver's dsn has no connect_timeout: userdb's own
        # connect_timeout key sets it)
        return (f"host={self.ip4} port={self.port} dbname={self.db} "
                f"user={self.user} password={self.password}")

    def _install(self):
        self.data.mkdir(exist_ok=True)
        _chown_tree(self.base, "mysql")
        p = subprocess.run([MARIADB_INSTALL, "--no-defaults", "--user=mysql",
                            f"--datadir={self.data}", "--skip-test-db",
                            "--auth-root-authentication-method=socket"],
                           capture_output=True, text=True, timeout=180)
        if p.returncode != 0:
            raise EngineError(f"mariadb-install-db failed:\n{p.stdout}{p.stderr}")

    def start(self, timeout=60):
        if self.running():
            return self
        if not self._made:
            self._install()
        self._popen([MARIADBD, "--no-defaults", "--user=mysql",
                     f"--datadir={self.data}", f"--socket={self.sock}",
                     f"--pid-file={self.base / 'mariadbd.pid'}",
                     f"--bind-address={self.ip4}", f"--port={self.port}",
                     "--skip-name-resolve", "--skip-log-bin",
                     "--innodb-buffer-pool-size=32M",
                     "--innodb-flush-log-at-trx-commit=2",
                     "--max-connections=200"], self.log)
        _wait(lambda: self.host.listening(self.port, self.proc.pid) and
              self.sql("SELECT 1", check=False).returncode == 0,
              timeout, "MariaDB to accept connections", self.proc, self.log)
        if not self._made:
            self.sql(f"CREATE DATABASE {self.db}; "
                     f"CREATE USER '{self.user}'@'%' IDENTIFIED BY '{self.password}'; "
                     f"GRANT ALL ON {self.db}.* TO '{self.user}'@'%'")
            self._made = True
        return self

    def sql(self, sql, db=None, check=True, timeout=30):
        argv = [MARIADB, "--no-defaults", f"--socket={self.sock}", "-u", "root",
                "-N", "-B", "-e", sql]
        if db:
            argv.append(db)
        p = self.host.run(argv, capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise EngineError(f"mariadb {sql!r}: {p.returncode}\n{p.stdout}{p.stderr}")
        return p

    def stop(self, timeout=30):
        _end(self.proc, signal.SIGTERM, timeout)
        self._closed()


class LabRedis(_Engine):
    """Redis 7 in lab host `host` on HOST:6379 with a password (AUTH),
    nothing saved to disk."""

    port = 6379

    def __init__(self, host, base, password=True, port=None):
        super().__init__(host, base, port)
        self.conf = self.base / "redis.conf"
        self.log = self.base / "redis.log"
        self.password = ("rd-" + secrets.token_hex(8)) if password else None

    @property
    def address(self):
        return f"{self.ip4}:{self.port}"

    def start(self, timeout=30):
        if self.running():
            return self
        lines = [f"bind {self.ip4}", f"port {self.port}", f"dir {self.base}",
                 'save ""', "appendonly no", "daemonize no",
                 "protected-mode no", f"logfile {self.log}",
                 f"unixsocket {self.base / 'redis.sock'}",
                 "unixsocketperm 700"]
        if self.password:
            lines.append(f"requirepass {self.password}")
        self.conf.write_text("\n".join(lines) + "\n")
        _chown_tree(self.base, "redis")
        self._popen(_as("redis") + [REDIS_SERVER, self.conf],
                    self.base / "redis.stdout")
        _wait(lambda: self.host.listening(self.port, self.proc.pid),
              timeout, "Redis to listen", self.proc, self.log)
        _wait(lambda: self.cli("PING", check=False).stdout.strip() == "PONG",
              timeout, "Redis to answer PING", self.proc, self.log)
        return self

    def cli(self, *args, check=True, timeout=15):
        argv = [REDIS_CLI, "-s", self.base / "redis.sock", "--no-auth-warning"]
        if self.password:
            argv += ["-a", self.password]
        p = self.host.run(argv + [str(a) for a in args], capture_output=True,
                          text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise EngineError(f"redis-cli {args}: {p.returncode}\n{p.stdout}{p.stderr}")
        return p

    def keys(self, pattern="*"):
        p = self.cli("--scan", "--pattern", pattern, check=False)
        return [l for l in p.stdout.splitlines() if l]

    def stop(self, timeout=15):
        _end(self.proc, signal.SIGTERM, timeout)
        self._closed()
