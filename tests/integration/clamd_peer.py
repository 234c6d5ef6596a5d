"""
A real clamd and clamav-milter (Debian's clamav-daemon and clamav-milter,
ClamAV 1.4) as test and benchmark peers, each a process of ours with its
own configuration: no freshclam, no system socket, no database from
/var/lib/clamav. Shared by tests/integration/test_clamav_milter.py and
tests/integration/test_clamd.py and bench/filter-vs-postfix.

  Clamd         `clamd -c DIR/clamd.conf` in the foreground (as root it
                drops to the clamav user). Its database directory holds
                only the test's signatures (write_test_db()): an .ndb body
                signature for SAMPLE, a string no real file carries, and an
                .hdb hash signature for the EICAR test file (plus the
                caller's own hash signatures: `hashes`). It listens on
                TCP 127.0.0.1:port (and ::1 with ipv6=True) and on a UNIX
                socket in DIR (`unix_path`), so either kind of client can
                be tested; `stream_max` is its StreamMaxLength. Loading a
                small database takes well under a second.
  ClamavMilter  `clamav-milter -c DIR/clamav-milter.conf` in the
                foreground, a milter on inet:PORT@127.0.0.1 that asks the
                given Clamd over TCP. OnInfected Reject with RejectMsg
                REJECT_MSG ("%v" is the virus name), so the MTA's reply is
                "550 5.7.1 Virus found: Godwit.Test.Sample.UNOFFICIAL"
                (Postfix and godwit send a milter's own reply code);
                OnFail Defer (clamd down: the MTA's tempfail); AddHeader
                Replace (X-Virus-Scanned / X-Virus-Status on clean mail).

Both are peer_proc.Peer: start() waits, bounded, until the process
listens (clamd: answers PING) or fails with its output; stop() ends it by
its own pid: clamd with SIGTERM (then SIGKILL; it removes its UNIX socket
file), clamav-milter with SIGKILL (on SIGTERM libmilter waits 5 s); kill()
is SIGKILL at once (clamd leaves its socket file behind, as a crashed
clamd does). Standard library only.
"""

import os
import shutil
import signal
import socket
import struct
from pathlib import Path

from peer_proc import MilterPeer, Peer, installed, listening_tcp

CLAMD = shutil.which("clamd") or "/usr/sbin/clamd"
CLAMAV_MILTER = shutil.which("clamav-milter") or "/usr/sbin/clamav-milter"
CLAMAV_USER = "clamav"

# A test sample: any file or message part holding these bytes is
# "infected" for our database. Chosen so no real mail carries it.
SAMPLE = b"godwit-clamd-test-sample:7f3c9a1e-0b4d-4c55-9e7a-6a2f51d0c8b3"
SAMPLE_SIG = "Godwit.Test.Sample"
SAMPLE_VIRUS = SAMPLE_SIG + ".UNOFFICIAL"  # as clamd names an .ndb match
# The EICAR test file (the anti-virus industry's harmless test string).
EICAR = (b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE"
         b"!$H+H*")
EICAR_SIG = "Godwit.Test.Eicar"
EICAR_VIRUS = EICAR_SIG + ".UNOFFICIAL"
REJECT_MSG = "Virus found: %v"


def available():
    """(True, "") if clamd and clamav-milter are installed."""
    return installed([(CLAMD, "clamav-daemon"),
                      (CLAMAV_MILTER, "clamav-milter")],
                     [(CLAMAV_USER, "clamav-base")])


def write_test_db(dbdir, hashes=()):
    """The test signature database in dbdir: SAMPLE by content (.ndb,
    anywhere in any file type), EICAR and each (name, bytes) of hashes by
    its MD5 and size (.hdb; clamd reports NAME.UNOFFICIAL)."""
    import hashlib
    dbdir = Path(dbdir)
    dbdir.mkdir(parents=True, exist_ok=True)
    (dbdir / "godwit-test.ndb").write_text(
        f"{SAMPLE_SIG}:0:*:{SAMPLE.hex()}\n")
    (dbdir / "godwit-test.hdb").write_text("".join(
        f"{hashlib.md5(data).hexdigest()}:{len(data)}:{name}\n"
        for name, data in ((EICAR_SIG, EICAR),) + tuple(hashes)))


class Clamd(Peer):
    """clamd on 127.0.0.1:port (and [::1]:port with ipv6) and
    DIR/clamd.sock with the test database plus hashes ((name, bytes): more
    hash signatures), or the signature files in db_files ({name: text})
    instead. threads: MaxThreads (scans in parallel); stream_max:
    StreamMaxLength (clamd's own size, e.g. "25M" or "1536K")."""

    name = "clamd"
    user = CLAMAV_USER

    def __init__(self, directory, port, db_files=None, threads=4, hashes=(),
                 stream_max="25M", ipv6=False):
        super().__init__(directory)
        self.port = port
        self.db = self.dir / "db"
        self.db_files = db_files
        self.hashes = tuple(hashes)
        self.threads = threads
        self.stream_max = stream_max
        self.ipv6 = ipv6
        self.unix_path = self.dir / "clamd.sock"

    @property
    def tcp_spec(self):
        """clamav-milter's ClamdSocket."""
        return f"tcp:127.0.0.1:{self.port}"

    def write(self):
        if self.db_files is None:
            write_test_db(self.db, self.hashes)
        else:
            self.db.mkdir(parents=True, exist_ok=True)
            for n, text in self.db_files.items():
                (self.db / n).write_text(text)
        user = f"User {CLAMAV_USER}\n" if os.geteuid() == 0 else ""
        self.conf.write_text(f"""\
# written by tests/integration/clamd_peer.py
Foreground yes
{user}DatabaseDirectory {self.db}
TemporaryDirectory {self.dir}
LocalSocket {self.unix_path}
LocalSocketMode 666
FixStaleSocket yes
TCPSocket {self.port}
TCPAddr 127.0.0.1
{"TCPAddr ::1" + chr(10) if self.ipv6 else ""}LogFile {self.log}
LogTime yes
LogClean no
LogVerbose no
ExtendedDetectionInfo yes
MaxThreads {self.threads}
MaxQueue 200
MaxConnectionQueueLength 200
ReadTimeout 30
CommandReadTimeout 10
IdleTimeout 30
SelfCheck 0
StreamMaxLength {self.stream_max}
OfficialDatabaseOnly no
Bytecode no
""")

    def argv(self):
        return [CLAMD, "-c", str(self.conf)]

    def ready(self):
        return (listening_tcp(self.proc.pid, self.port)
                and self.unix_path.exists() and self.ping())

    def _ask(self, request, timeout):
        """One z-command over the UNIX socket: the answer, NUL removed."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(timeout)
            s.connect(str(self.unix_path))
            s.sendall(request)
            buf = b""
            while not buf.endswith(b"\0") and len(buf) < 4096:
                b = s.recv(4096)
                if not b:
                    break
                buf += b
        return buf.rstrip(b"\0").decode(errors="replace")

    def ping(self):
        try:
            return self._ask(b"zPING\0", 2) == "PONG"
        except OSError:
            return False

    def scan(self, data, timeout=10):
        """INSTREAM: clamd's answer, e.g. 'stream: OK'."""
        return self._ask(b"zINSTREAM\0" + struct.pack(">I", len(data))
                         + data + struct.pack(">I", 0), timeout)


class ClamavMilter(MilterPeer):
    """clamav-milter on inet:port@127.0.0.1, asking clamd (a Clamd)."""

    name = "clamav-milter"
    user = CLAMAV_USER

    def __init__(self, directory, port, clamd, on_infected="Reject",
                 reject_msg=REJECT_MSG):
        super().__init__(directory, port)
        self.clamd = clamd
        self.on_infected = on_infected
        self.reject_msg = reject_msg

    def write(self):
        user = f"User {CLAMAV_USER}\n" if os.geteuid() == 0 else ""
        reject = f"RejectMsg {self.reject_msg}\n" if self.reject_msg else ""
        self.conf.write_text(f"""\
# written by tests/integration/clamd_peer.py
MilterSocket inet:{self.port}@127.0.0.1
Foreground yes
{user}ClamdSocket {self.clamd.tcp_spec}
OnClean Accept
OnInfected {self.on_infected}
OnFail Defer
{reject}AddHeader Replace
ReadTimeout 30
MaxFileSize 25M
TemporaryDirectory {self.dir}
LogFile {self.log}
LogTime yes
LogInfected Basic
LogClean Off
""")

    def argv(self):
        return [CLAMAV_MILTER, "-c", str(self.conf)]

    def stop(self, timeout=15):
        """SIGKILL at once: on SIGTERM libmilter waits 5 s for its
        threads, and a test peer has nothing to save."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=timeout)
        super().stop(timeout)

