"""
Soak: identical rounds of abuse, after which the daemon's descriptors and
memory must come back to a steady state.

One round, from client threads at once:
  - a crowd of connections open together (SMTP in the middle of DATA,
    TLS sessions on submissions and pop3s), then all dropped;
  - SMTP sessions delivering big messages (2 MB) and a refused oversized
    one (552), sessions dropped mid-command and mid-DATA;
  - AUTH failures on submission after STARTTLS;
  - aborted TLS handshakes (half a ClientHello on the implicit-TLS port,
    STARTTLS then nothing);
  - mail through the queue runner: to a greylisting peer on loopback
    (deferred once, then delivered), held and deleted, deleted with a
    bounce (through the control socket), and to a domain the resolver
    says does not exist (bounced);
  - POP3S sessions that read and delete everything the round delivered.

A warm-up round first (libunbound's thread, TLS and database caches are
made once), then the baseline: descriptors of the parent, the workers and
the queue runner. After each further round (every connection closed, the
queue empty) each process has exactly its baseline descriptors again, no
process of godwit's group holds a deleted file of the data directory, and
the group has no process but the parent and its direct children.

Memory is measured on the normal build (build/godwit): under ASan, freed
memory sits in the allocator's quarantine (256 MB) and RSS says nothing
about the daemon. Each worker's VmRSS must come back near its size
before the first round (the burst's memory given back: +12 MB at most),
and must not grow from one round to the next (+3 MB at most). The ASan
build runs a lighter soak for descriptors, and its LeakSanitizer checks
every process at exit (true leaks).
"""

import json
import os
import poplib
import struct
import subprocess
import smtplib
import socket
import threading
from collections import Counter
from pathlib import Path

import pytest

import conftest
from conftest import PASSWORD, client_tls_context, free_port, wait_for

BIG = 2 * 1024 * 1024


def crlf_msg(frm, to, subject, body_size):
    line = b"x" * 76 + b"\r\n"
    body = line * (body_size // len(line) + 1)
    return (f"From: <{frm}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}@soak.test>\r\n\r\n"
            ).encode() + body


class Round:
    """The clients of one abuse round against g."""

    def __init__(self, g, n, crowd, big):
        self.g = g
        self.n = n
        self.ncrowd = crowd
        self.nbig = big
        self.errors = []
        self.lock = threading.Lock()

    def err(self, what, e):
        with self.lock:
            self.errors.append(f"{what}: {e!r}")

    # -- port 25 ---------------------------------------------------------

    def big_mail(self, i):
        try:
            with smtplib.SMTP("127.0.0.1", self.g.port, timeout=30) as s:
                s.ehlo("soak.test")
                to = "alice@example.test" if i % 2 else "bob@example.test"
                s.sendmail("sender@example.org", [to],
                           crlf_msg("sender@example.org", to,
                                    f"soak {self.n} {i}", BIG))
        except Exception as e:  # noqa: BLE001
            self.err("big mail", e)

    def oversized(self):
        try:
            with smtplib.SMTP("127.0.0.1", self.g.port, timeout=30) as s:
                s.ehlo("soak.test")
                try:
                    s.sendmail("sender@example.org", ["alice@example.test"],
                               crlf_msg("sender@example.org",
                                        "alice@example.test", "too big",
                                        3 * 1024 * 1024))
                except smtplib.SMTPResponseException as e:
                    assert e.smtp_code == 552, e
                except smtplib.SMTPServerDisconnected:
                    pass
        except Exception as e:  # noqa: BLE001
            self.err("oversized", e)

    def dropped(self, i):
        """Connections closed without QUIT: after the banner, after EHLO,
        in the middle of a command line, in the middle of DATA."""
        try:
            s = socket.create_connection(("127.0.0.1", self.g.port), 10)
            s.settimeout(10)
            s.recv(512)
            if i % 4 >= 1:
                s.sendall(b"EHLO soak.test\r\n")
                s.recv(4096)
            if i % 4 == 2:
                s.sendall(b"MAIL FROM:<half")
            if i % 4 == 3:
                s.sendall(b"MAIL FROM:<a@soak.test>\r\nRCPT TO:"
                          b"<alice@example.test>\r\nDATA\r\n")
                recv_until(s, b"354 ")  # in DATA: cut there
                s.sendall(b"Subject: cut\r\n\r\n" + b"y" * 200000)
            s.close()
        except OSError as e:
            self.err("dropped", e)

    # -- submission ------------------------------------------------------

    def auth_fail(self):
        try:
            with smtplib.SMTP("127.0.0.1", self.g.sub_port, timeout=30) as s:
                s.ehlo("soak.test")
                s.starttls(context=client_tls_context())
                s.ehlo("soak.test")
                try:
                    s.login("alice@example.test", "wrong password")
                except smtplib.SMTPAuthenticationError:
                    pass
        except Exception as e:  # noqa: BLE001
            self.err("auth failure", e)

    def tls_abort(self, i):
        try:
            if i % 2:
                # half a TLS ClientHello on the implicit-TLS port
                s = socket.create_connection(("127.0.0.1", self.g.subs_port), 10)
                s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"
                          + os.urandom(40))
            else:
                s = socket.create_connection(("127.0.0.1", self.g.sub_port), 10)
                s.settimeout(10)
                s.recv(512)
                s.sendall(b"EHLO soak.test\r\nSTARTTLS\r\n")
                recv_until(s, b"220 2.0.0 ")  # ready for a handshake: none
            s.close()
        except OSError as e:
            self.err("tls abort", e)

    def submit_remote(self):
        """Mail for the queue runner: to the greylisting peer (deferred
        once, then delivered), to be held and deleted, to be deleted with
        a bounce, and to a domain that does not exist (bounced)."""
        rcpts = [f"d{self.n}-{k}@[127.0.0.1]" for k in range(4)]
        rcpts += [f"hold{self.n}@[127.0.0.1]", f"bounce{self.n}@[127.0.0.1]"]
        rcpts += [f"x{self.n}-{k}@nx{k}.example.net" for k in range(2)]
        try:
            with smtplib.SMTP_SSL("127.0.0.1", self.g.subs_port, timeout=30,
                                  context=client_tls_context()) as s:
                s.login("alice@example.test", PASSWORD)
                for to in rcpts:
                    s.sendmail("alice@example.test", [to],
                               crlf_msg("alice@example.test", to,
                                        f"remote {to}", 30000))
        except Exception as e:  # noqa: BLE001
            self.err("submit remote", e)

    def queue_admin(self):
        """hold + delete, delete --bounce, through the control socket,
        whatever state the messages are in."""
        g = self.g
        for e in queue_list(g):
            to = e["recipients"][0]["addr"]
            if to.startswith("hold"):
                g.admin("queue", "hold", e["id"], check=False)
                g.admin("queue", "delete", e["id"], check=False)
            elif to.startswith("bounce"):
                g.admin("queue", "delete", e["id"], "--bounce", check=False)

    # -- POP3 ------------------------------------------------------------

    def pop_all(self, user):
        try:
            p = poplib.POP3_SSL("127.0.0.1", self.g.pop3s_port,
                                context=client_tls_context(), timeout=30)
            p.user(user)
            p.pass_(PASSWORD)
            n, _ = p.stat()
            for k in range(1, n + 1):
                p.retr(k)
                p.dele(k)
            p.quit()
        except Exception as e:  # noqa: BLE001
            self.err(f"pop3 {user}", e)

    def crowd(self, n):
        """n connections open at once (plain SMTP in the middle of DATA,
        TLS sessions on submissions and pop3s), then all dropped."""
        ctx = client_tls_context()
        socks = []
        try:
            for i in range(n):
                k = i % 3
                if k == 0:
                    s = socket.create_connection(("127.0.0.1", self.g.port), 10)
                    s.settimeout(10)
                    s.recv(512)
                    s.sendall(b"EHLO soak.test\r\nMAIL FROM:<a@soak.test>\r\n"
                              b"RCPT TO:<alice@example.test>\r\nDATA\r\n")
                    recv_until(s, b"354 ")
                    s.sendall(b"Subject: crowd\r\n\r\n" + b"z" * 250000)
                elif k == 1:
                    r = socket.create_connection(("127.0.0.1", self.g.subs_port), 10)
                    s = ctx.wrap_socket(r)
                    s.settimeout(10)
                    s.recv(512)
                    s.sendall(b"EHLO soak.test\r\n")
                    recv_until(s, b"250 ")
                else:
                    r = socket.create_connection(("127.0.0.1", self.g.pop3s_port), 10)
                    s = ctx.wrap_socket(r)
                    s.settimeout(10)
                    s.recv(512)
                    s.sendall(b"USER alice@example.test\r\n")
                    recv_until(s, b"+OK")
                socks.append(s)
            # every one of them answered (the DATA ones are taking their
            # body): all open at once in the daemon; now dropped together
        except OSError as e:
            self.err("crowd", e)
        finally:
            for s in socks:
                s.close()

    def run(self):
        ths = []

        def go(f, *a):
            t = threading.Thread(target=f, args=a)
            t.start()
            ths.append(t)

        go(self.submit_remote)
        go(self.crowd, self.ncrowd)
        for i in range(self.nbig):
            go(self.big_mail, i)
        go(self.oversized)
        for i in range(40):
            go(self.dropped, i)
        for i in range(10):
            go(self.auth_fail)
        for i in range(20):
            go(self.tls_abort, i)
        for t in ths:
            t.join(60)
        self.queue_admin()
        wait_for(lambda: not queue_ids(self.g), 30, what="the queue empty")
        # reading (and deleting) what the round delivered, bounces too
        for user in ("alice@example.test", "bob@example.test"):
            self.pop_all(user)


def recv_until(s, marker):
    """Reads from s until marker has come (at a line start); the socket's
    timeout bounds each read."""
    buf = b""
    while not (buf.startswith(marker) or b"\n" + marker in buf):
        chunk = s.recv(4096)
        if not chunk:
            raise OSError(f"closed before {marker!r}: {buf[-200:]!r}")
        buf += chunk
    return buf


def queue_list(g):
    out = []
    for line in g.run("queue", "list", "--json", check=True).stdout.splitlines():
        if line.strip():
            out.append(json.loads(line))
    return out


def queue_ids(g):
    out = []
    for sub in ("incoming", "active", "deferred", "hold"):
        d = g.data_dir / "queue" / sub
        if d.is_dir():
            out += [p.name for p in d.iterdir() if p.is_file()]
    return out


def vmrss(pid):
    """VmRSS of pid in kB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def fd_targets(pid):
    """Counter of what pid's descriptors point at: paths as they are,
    sockets and pipes as their kind (their inodes change). A worker's
    committer opens log/audit.log at its first message and keeps it: one
    such descriptor counts as none (the warm-up may not have reached
    every worker), a second would still show."""
    out = Counter()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            t = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        out[t.split(":[", 1)[0] + ":" if t.startswith(("socket:[", "pipe:["))
            else t] += 1
    for t in [t for t in out if t.endswith("/log/audit.log")]:
        out[t] -= 1
        if out[t] == 0:
            del out[t]
    return out


def signals_unblocked(pid):
    """True when pid's main thread blocks no signal."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("SigBlk:"):
                return int(line.split()[1], 16) == 0
    return False


def tcp_connections_held(pids):
    """(pid, state) of each TCP socket of pids that is not listening: a
    connection a process still holds open."""
    state = {}
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(name) as f:
            next(f)
            for line in f:
                parts = line.split()
                state[parts[9]] = parts[3]
    out = []
    for pid in pids:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                t = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if t.startswith("socket:["):
                st = state.get(t[8:-1])
                if st is not None and st != "0A":
                    out.append((pid, st))
    return out


def processes(g):
    """{name: pid} of the parent, the runner and each worker."""
    procs = {"parent": g.pid, "runner": g.runner_pid()}
    for k, w in enumerate(sorted(g.children())):
        procs[f"worker{k}"] = w
    return procs


def deleted_files(g):
    """(pid, target) for every descriptor of a process of godwit's group
    that points at a deleted file in the data directory."""
    pids = [g.pid] + g.all_children() + [p for p, _, _ in g.group_strays()]
    out = []
    for pid in pids:
        try:
            names = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in names:
            try:
                t = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if t.endswith(" (deleted)") and t.startswith(str(g.data_dir)):
                out.append((pid, t))
    return out


class NxDns:
    """A DNS server on 127.0.0.1 (UDP) that answers every question at once
    with NXDOMAIN: lookups for the runner that fail for good, quickly."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stop:
            try:
                q, addr = self.sock.recvfrom(4096)
            except OSError:
                continue
            if len(q) < 12:
                continue
            qid, flags = struct.unpack("!HH", q[:4])
            # the question section as asked (one question)
            end = 12
            while end < len(q) and q[end] != 0:
                end += q[end] + 1
            question = q[12:end + 5]
            rflags = 0x8000 | (flags & 0x0100) | 0x0080 | 3  # QR RD RA NXDOMAIN
            self.sock.sendto(struct.pack("!HHHHHH", qid, rflags, 1, 0, 0, 0)
                             + question, addr)

    def close(self):
        self.stop = True
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def soak(make_godwit, cert, tmp_path):
    """A godwit with mx, submission (STARTTLS), submissions and pop3s,
    outbound mail going to a greylisting peer on loopback (address
    literals), and a resolver that answers NXDOMAIN."""
    crt, key = cert
    dns = NxDns()
    peer_port = free_port()
    peer_log = open(tmp_path / "peer.log", "ab")
    peer = subprocess.Popen(
        ["/usr/bin/python3", str(Path(__file__).parent / "greylist_server.py"),
         "--listen", "127.0.0.1", "--port", str(peer_port),
         "--mode", "greylist:1", "--maildir", str(tmp_path / "peer-mail")],
        stdout=peer_log, stderr=subprocess.STDOUT)
    peer_log.close()

    def make():
        g = make_godwit({
            "tls": {"certificates": [{"cert": str(crt), "key": str(key)}]},
            "auth": {"delay_base": "0", "delay_max": "0",
                     "max_failures_ip": 1000000,
                     "max_failures_account": 1000000},
            "smtp": {"max_message_size": "3M"},
            "limits": {"max_connections": 5000,
                       "max_connections_per_ip": 5000},
            "queue": {"retry_min": "1s", "retry_max": "2s"},
            "dns": {"resolver": [f"127.0.0.1@{dns.port}"]},
            "outbound": {"port": peer_port, "tls": "none"},
        }, start=False)
        g.sub_port, g.subs_port, g.pop3s_port = (free_port(), free_port(),
                                                 free_port())
        g.config["listeners"] += [
            {"name": "submission", "protocol": "submission",
             "listen": [f"127.0.0.1:{g.sub_port}"]},
            {"name": "submissions", "protocol": "submissions",
             "listen": [f"127.0.0.1:{g.subs_port}"]},
            {"name": "pop3s", "protocol": "pop3s",
             "listen": [f"127.0.0.1:{g.pop3s_port}"]},
        ]
        g.write_config()
        g.start()
        return g

    try:
        wait_for(lambda: peer.poll() is not None or
                 peer_port in conftest.listening_sockets(), 15,
                 what="the peer listening")
        assert peer.poll() is None, (tmp_path / "peer.log").read_text()
        yield make
    finally:
        peer.terminate()
        try:
            peer.wait(10)
        except subprocess.TimeoutExpired:
            peer.kill()
        dns.close()


def plain_bin():
    """The normal build next to the ASan one ($GODWIT_PLAIN_BIN, or
    build/godwit beside build/asan/godwit)."""
    p = os.environ.get("GODWIT_PLAIN_BIN")
    if not p:
        a = Path(conftest.GODWIT_BIN)
        p = str(a.parent.parent / "godwit") if a.parent.name == "asan" else ""
    if not p or not os.access(p, os.X_OK):
        pytest.skip(f"the normal build is not there ({p or 'unknown'}): "
                    "make build/godwit")
    return p


def soak_rounds(g, rounds, crowd, big, memory):
    """The warm-up and `rounds` measured rounds, with the checks of the
    module docstring; memory: the RSS checks too."""
    wait_for(g.runner_pid, 10, what="the queue runner")
    # the workers have opened their databases and TLS contexts: each
    # unblocks its signals last, as it enters its event loop
    nworkers = g.config["workers"]
    wait_for(lambda: len(g.children()) == nworkers and
             all(signals_unblocked(p) for p in g.children()), 10,
             what="the workers in their event loops")
    procs = processes(g)
    start_rss = {n: vmrss(p) for n, p in procs.items() if n.startswith("worker")}
    last_rss = {}
    for n in range(rounds + 1):
        r = Round(g, n, crowd, big)
        r.run()
        assert not r.errors, r.errors[:5]
        assert processes(g) == procs, \
            f"round {n}: a process was replaced ({procs} -> {processes(g)})"
        if n == 0:
            # the baseline, once the warm-up's connections are gone
            wait_for(lambda: not tcp_connections_held(procs.values()), 10,
                     interval=0.2, what="the warm-up's connections closed")
            base = {name: fd_targets(pid) for name, pid in procs.items()}
        for name, pid in procs.items():
            want = base[name]

            def same():
                return fd_targets(pid) == want
            try:
                wait_for(same, 10, interval=0.2,
                         what=f"round {n}: {name}'s descriptors")
            except AssertionError:
                now = fd_targets(pid)
                raise AssertionError(
                    f"round {n}: {name} (pid {pid}) has descriptors it did "
                    f"not have before: {dict(now - want)}; lacks "
                    f"{dict(want - now)}") from None
        assert not deleted_files(g), \
            f"round {n}: deleted files held open: {deleted_files(g)}"
        assert not g.group_strays(), \
            f"round {n}: stray processes in godwit's group: {g.group_strays()}"
        if not memory:
            continue
        for name, rss0 in start_rss.items():
            pid = procs[name]
            limit = rss0 + 12 * 1024
            try:
                wait_for(lambda: vmrss(pid) <= limit, 10, interval=0.2,
                         what=f"round {n}: {name}'s memory given back")
            except AssertionError:
                raise AssertionError(
                    f"round {n}: {name} keeps {vmrss(pid)} kB after the "
                    f"burst (it started at {rss0} kB)") from None
            if name in last_rss and n >= 2:
                # The worker trims its heap a second after its sessions
                # ebb (daemon/worker.c), so a reading taken at once may
                # come before that: a leak stays above the bound, a burst
                # not yet trimmed falls under it.
                bound = last_rss[name] + 3 * 1024
                try:
                    wait_for(lambda: vmrss(pid) <= bound, 10, interval=0.2,
                             what=f"round {n}: {name}'s memory steady")
                except AssertionError:
                    raise AssertionError(
                        f"round {n}: {name} grew from {last_rss[name]} to "
                        f"{vmrss(pid)} kB") from None
            last_rss[name] = vmrss(pid)
        print(f"round {n}: RSS {last_rss} kB (at start {start_rss})")


def test_soak_normal_build(soak, monkeypatch):
    """Three identical rounds after a warm-up, on the normal build:
    descriptors back to the baseline, no deleted file held, no stray
    process, and the workers' memory given back after each burst."""
    monkeypatch.setattr(conftest, "GODWIT_BIN", plain_bin())
    g = soak()
    soak_rounds(g, rounds=3, crowd=600, big=8, memory=True)


def test_soak_asan(soak):
    """A lighter soak on the ASan build: descriptors, deleted files and
    stray processes as above; LeakSanitizer checks every process at exit
    (the teardown fails on a report)."""
    g = soak()
    soak_rounds(g, rounds=2, crowd=150, big=4, memory=False)
