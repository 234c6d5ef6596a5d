"""
A private PostgreSQL 15 for tests: Debian's own binaries
(/usr/lib/postgresql/15/bin/{initdb,postgres,pg_ctl}), a cluster in a
temporary directory owned by the `postgres` system user (initdb and the
server refuse to run as root), listening on one TCP address and a unix
socket in that directory, trust authentication for local sockets and md5
for TCP (user godwit, a password), fsync off. Every wait is bounded.

    pg = PgPeer(tmpdir).start()
    pg.createdb("t1")                 # owned by pg.user
    dsn = pg.dsn("t1")                # "host=127.0.0.1 port=... dbname=t1 ..."
    pg.psql("t1", "SELECT 1")         # rows as text
    pg.stop(); pg.start()             # same cluster, same port
    pg.destroy()

Inside a netlab host: PgPeer(dir, prefix=["ip", "netns", "exec", NS],
listen="198.18.0.5") runs every command through the prefix and listens
on that address (and accepts md5 logins from anywhere).
"""

import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")
USER = "godwit"
PASSWORD = "pg-secret-1"


def _free_port(host):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host if host != "*" else "127.0.0.1", 0))
        return s.getsockname()[1]


def available():
    """None when a private PostgreSQL can run here, else why not."""
    if not (PG_BIN / "postgres").exists():
        return f"no {PG_BIN}/postgres (postgresql-15)"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no postgres system user"
    if os.geteuid() != 0:
        return "needs root (to run the cluster as the postgres user)"
    return None


class PgPeer:
    def __init__(self, base, prefix=None, listen="127.0.0.1", port=None):
        self.base = Path(base)
        self.prefix = list(prefix or [])
        self.listen = listen
        self.host = listen
        self.port = port or (_free_port(listen) if not self.prefix else 5432)
        self.datadir = self.base / "pgdata"
        self.sockdir = self.base / "pgsock"
        self.logfile = self.base / "pg.log"
        self.user = USER
        self.password = PASSWORD
        self._initialised = False
        pw = pwd.getpwnam("postgres")
        self.uid, self.gid = pw.pw_uid, pw.pw_gid

    # -- running commands as postgres -----------------------------------

    def _as_pg(self, argv, timeout=60, check=True, input=None):
        cmd = self.prefix + ["setpriv", f"--reuid={self.uid}",
                             f"--regid={self.gid}", "--init-groups", "--"]
        cmd += [str(a) for a in argv]
        p = subprocess.run(cmd, capture_output=True, text=True,
                           timeout=timeout, input=input,
                           env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8",
                                "HOME": str(self.base)})
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)}: exit {p.returncode}\n"
                                 f"{p.stdout}\n{p.stderr}\n{self.log_tail()}")
        return p

    def log_tail(self, n=3000):
        try:
            return self.logfile.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def _init(self):
        self.base.mkdir(parents=True, exist_ok=True)
        os.chmod(self.base, 0o755)
        for d in (self.datadir, self.sockdir):
            d.mkdir(exist_ok=True)
            os.chown(d, self.uid, self.gid)
        os.chmod(self.datadir, 0o700)
        self.logfile.touch()
        os.chown(self.logfile, self.uid, self.gid)
        pwfile = self.base / "pw"
        pwfile.write_text(PASSWORD + "\n")
        os.chown(pwfile, self.uid, self.gid)
        os.chmod(pwfile, 0o600)
        # the bootstrap superuser is godwit itself: md5 over TCP with
        # the password, trust on the unix socket
        self._as_pg([PG_BIN / "initdb", "-D", self.datadir, "-U", USER,
                     "--pwfile", pwfile, "-A", "trust", "-E", "UTF8",
                     "--locale", "C.UTF-8", "--no-sync"], timeout=120)
        pwfile.unlink()
        (self.datadir / "pg_hba.conf").write_text(
            "local all all trust\n"
            "host all all 0.0.0.0/0 md5\n"
            "host all all ::/0 md5\n")
        with open(self.datadir / "postgresql.conf", "a") as f:
            f.write(f"listen_addresses = '{self.listen}'\n"
                    f"port = {self.port}\n"
                    f"unix_socket_directories = '{self.sockdir}'\n"
                    "fsync = off\nsynchronous_commit = off\n"
                    "full_page_writes = off\n"
                    "password_encryption = md5\n"
                    "max_connections = 100\n"
                    "shared_buffers = 16MB\n")
        self._initialised = True

    # -- life cycle -------------------------------------------------------

    def start(self, timeout=30):
        if not self._initialised:
            self._init()
        self._as_pg([PG_BIN / "pg_ctl", "-D", self.datadir, "-l",
                     self.logfile, "-w", "-t", str(timeout), "start"],
                    timeout=timeout + 10)
        # the password of godwit, for md5 over TCP (initdb's --pwfile
        # set it, but with trust as the method it is kept in scram form
        # only when password_encryption said so at initdb time)
        self.psql("postgres", f"ALTER USER {USER} PASSWORD '{PASSWORD}'")
        return self

    def stop(self, mode="fast", timeout=30):
        if not (self.datadir / "postmaster.pid").exists():
            return
        self._as_pg([PG_BIN / "pg_ctl", "-D", self.datadir, "-m", mode, "-w",
                     "-t", str(timeout), "stop"], timeout=timeout + 10,
                    check=False)
        deadline = time.monotonic() + timeout
        while (self.datadir / "postmaster.pid").exists():
            if time.monotonic() > deadline:
                raise AssertionError("postgres did not stop\n" +
                                     self.log_tail())
            time.sleep(0.05)

    def destroy(self):
        try:
            self.stop(mode="immediate")
        finally:
            shutil.rmtree(self.base / "pgdata", ignore_errors=True)

    def running(self):
        p = self._as_pg([PG_BIN / "pg_ctl", "-D", self.datadir, "status"],
                        check=False, timeout=10)
        return p.returncode == 0

    # -- databases --------------------------------------------------------

    def psql(self, db, sql, check=True):
        """Runs sql through the unix socket; the rows, '|'-separated."""
        p = self._as_pg(["/usr/bin/psql", "-X", "-q", "-A", "-t", "-v",
                         "ON_ERROR_STOP=1", "-h", self.sockdir, "-p",
                         self.port, "-U", USER, "-d", db, "-c", sql],
                        check=check, timeout=60)
        return p.stdout.strip() if check else p

    def createdb(self, name):
        self.psql("postgres", f'CREATE DATABASE "{name}" OWNER {USER}')
        return name

    def dsn(self, db, **extra):
        """A libpq conninfo string over TCP with the password."""
        parts = {"host": self.host, "port": self.port, "dbname": db,
                 "user": USER, "password": PASSWORD, "sslmode": "disable"}
        parts.update(extra)
        return " ".join(f"{k}={v}" for k, v in parts.items())

    def uri(self, db):
        return (f"postgresql://{USER}:{PASSWORD}@{self.host}:{self.port}/"
                f"{db}?sslmode=disable")
