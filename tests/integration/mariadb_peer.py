"""
A private MariaDB (Debian's mariadb-server 10.11) for the tests: a data
directory made by `mariadb-install-db` in a temporary directory, `mariadbd`
started on a free port of one address (127.0.0.1, or a netlab host's
address when a command prefix such as `ip netns exec NS` is given) and on
a private Unix socket, a database and a user with a password for godwit,
and a stop that waits for the server to end (then SIGKILL).

The server runs as the `mysql` user (`--user=mysql` when the tests run as
root). InnoDB is kept small and lazy (`innodb_flush_log_at_trx_commit=2`,
a 16 MiB buffer pool, no doublewrite): durability across a crash of the
test machine does not matter here. Every wait is bounded.

    db = MariaDB(tmp_path)          # or MariaDB(d, prefix=[...], host=ip)
    db.start()
    db.dsn                          # "host=127.0.0.1 port=N user=... "
    db.sql("CREATE TABLE ...", database="godwit")
    db.stop(); db.start()           # same data, same port
    db.cleanup()
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

MARIADBD = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
INSTALL_DB = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"
CLIENT = shutil.which("mariadb") or "/usr/bin/mariadb"

START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0


def available():
    return all(os.access(p, os.X_OK) for p in (MARIADBD, INSTALL_DB, CLIENT))


def _free_port(host):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class MariaDB:
    def __init__(self, base=None, prefix=None, host="127.0.0.1", port=None,
                 database="godwit", user="godwit", password="godwit-db-pw"):
        """prefix: a command prefix (e.g. ["ip", "netns", "exec", NS]) for
        the server and the client; host: the address it listens on."""
        if base is None:
            base = tempfile.mkdtemp(prefix="godwit-mariadb-")
        self.base = Path(base)
        self.base.mkdir(parents=True, exist_ok=True)
        os.chmod(self.base, 0o755)
        self.prefix = list(prefix or [])
        self.host = host
        # A port free in the namespace is not known from here: the caller
        # may pass one; on the host's loopback one is picked.
        self.port = port or (_free_port(host) if not self.prefix else 3306)
        self.database = database
        self.user = user
        self.password = password
        self.datadir = self.base / "data"
        self.rundir = self.base / "run"
        self.socket = self.rundir / "mysqld.sock"
        self.log = self.base / "mariadb.err"
        self.proc = None
        self._initialised = False
        self._as_root = os.geteuid() == 0

    # -- properties ------------------------------------------------------

    @property
    def dsn(self):
        return (f"host={self.host} port={self.port} user={self.user} "
                f"password={self.password} dbname={self.database}")

    def socket_dsn(self):
        return (f"unix_socket={self.socket} user={self.user} "
                f"password={self.password} dbname={self.database}")

    # -- life cycle ------------------------------------------------------

    def _chown(self, path):
        if self._as_root:
            pw = pwd.getpwnam("mysql")
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def _init_datadir(self):
        self.datadir.mkdir(exist_ok=True)
        self.rundir.mkdir(exist_ok=True)
        for p in (self.datadir, self.rundir):
            os.chmod(p, 0o750)
            self._chown(p)
        cmd = self.prefix + [
            INSTALL_DB, "--no-defaults", f"--datadir={self.datadir}",
            "--auth-root-authentication-method=normal", "--skip-test-db",
            "--skip-name-resolve",
            # the same small InnoDB the server runs with
            "--innodb-buffer-pool-size=16M", "--innodb-log-file-size=8M",
        ]
        if self._as_root:
            cmd.append("--user=mysql")
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed:\n{p.stdout}\n"
                               f"{p.stderr}")
        self._initialised = True

    def start(self):
        first = not self._initialised
        if first:
            self._init_datadir()
        cmd = self.prefix + [
            MARIADBD, "--no-defaults", f"--datadir={self.datadir}",
            f"--socket={self.socket}", f"--port={self.port}",
            f"--bind-address={self.host}",
            f"--pid-file={self.rundir / 'mysqld.pid'}",
            f"--log-error={self.log}",
            "--skip-name-resolve", "--skip-log-bin",
            "--performance-schema=OFF", "--innodb-buffer-pool-size=16M",
            "--innodb-log-file-size=8M",
            "--innodb-flush-log-at-trx-commit=2", "--innodb-doublewrite=0",
            "--max-connections=300", "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_bin",
        ]
        if self._as_root:
            cmd.append("--user=mysql")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mariadbd exited "
                                   f"{self.proc.returncode}:\n"
                                   f"{self.log_text()[-3000:]}")
            if self.socket.exists():
                p = self._client(["-e", "SELECT 1"], root=True, check=False)
                if p.returncode == 0:
                    break
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("mariadbd did not come up:\n" +
                                   self.log_text()[-3000:])
            time.sleep(0.1)
        if first:
            self.sql(
                "DELETE FROM mysql.global_priv WHERE User = '';"
                "FLUSH PRIVILEGES;"
                f"CREATE DATABASE IF NOT EXISTS `{self.database}` "
                "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;"
                f"CREATE USER '{self.user}'@'%' IDENTIFIED BY "
                f"'{self.password}';"
                f"CREATE USER '{self.user}'@'localhost' IDENTIFIED BY "
                f"'{self.password}';"
                f"GRANT ALL ON `{self.database}`.* TO '{self.user}'@'%';"
                f"GRANT ALL ON `{self.database}`.* TO "
                f"'{self.user}'@'localhost';",
                root=True)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=STOP_TIMEOUT):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None

    def kill9(self):
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    # -- client ----------------------------------------------------------

    def _client(self, args, root=False, database=None, input=None,
                check=True):
        cmd = self.prefix + [CLIENT, "--no-defaults", f"--socket={self.socket}",
                             "--batch", "--skip-column-names",
                             "--connect-timeout=5"]
        if root:
            cmd += ["-uroot"]
        else:
            cmd += [f"-u{self.user}", f"-p{self.password}"]
        if database:
            cmd += [database]
        p = subprocess.run(cmd + args, input=input, capture_output=True,
                           text=True, timeout=60)
        if check and p.returncode != 0:
            raise RuntimeError(f"mariadb {' '.join(args)}: {p.stderr}")
        return p

    def sql(self, text, root=False, database=None):
        """Runs SQL text (several statements allowed); returns the rows as
        lists of strings (tab-separated output, NULL as 'NULL')."""
        p = self._client([], root=root, database=database or
                         (None if root else self.database), input=text)
        return [line.split("\t") for line in p.stdout.splitlines()]

    def log_text(self):
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""
