"""
A small multi-host network for outbound-delivery tests: Linux network
namespaces on one bridge, with a real DNS server (unbound) in one of them.

    with Lab() as lab:
        a = lab.host("a")            # 198.18.X.2, fd00:6777:X::2
        b = lab.host("b")
        lab.dns(["b.test. MX 10 mx.b.test.",
                 f"mx.b.test. A {b.ip4}"])
        a.run(["ip", "addr"])

The root namespace holds the bridge with 198.18.X.1/24 and
fd00:6777:X::1/64 (RFC 2544 benchmark and ULA ranges: never routed), so
test code in the root namespace reaches every host directly. Each host is
a namespace with lo up, one veth end (eth0) on the bridge, 198.18.X.k/24
and fd00:6777:X::k/64 (no duplicate address detection, so the addresses
are usable at once) and default routes via the bridge.

Names carry a random tag ("gwl" + 6 hex digits), and X is random, so labs
of concurrent test runs do not collide. Everything made is undone by
close(), by an atexit hook if the test forgets, and - for a run that died
without either (the pytest watchdog ends with _exit) - by the next Lab,
which sweeps the leftovers of labs whose owning process is gone (a
registry file per lab under /run/godwit-netlab/ names the owner's pid).

Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN), iproute2 and, for dns(),
/usr/sbin/unbound. netns_available() says whether the lab can run here.
"""

import atexit
import fcntl
import ipaddress
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path

IP = shutil.which("ip") or "/usr/sbin/ip"
UNBOUND = "/usr/sbin/unbound"
REGISTRY = Path("/run/godwit-netlab")
NETNS_ETC = Path("/etc/netns")
PREFIX = "gwl"  # namespaces gwl<tag>-<name>, bridge gwb<tag>, veths gwv<tag><k>

_live_labs = []


def _ip(*args, check=True, ns=None, timeout=15):
    cmd = [IP]
    if ns is not None:
        cmd += ["-n", ns]
    cmd += [str(a) for a in args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr.strip()}")
    return p


def netns_available():
    """(True, "") if namespaces, veths and bridges can be made here, else
    (False, why)."""
    if os.geteuid() != 0:
        return False, "network namespaces need root"
    if not os.path.exists(IP):
        return False, "iproute2 (ip) is not installed"
    tag = secrets.token_hex(3)
    ns, br = f"{PREFIX}{tag}-probe", f"gwb{tag}"
    try:
        p = _ip("netns", "add", ns, check=False)
        if p.returncode != 0:
            return False, f"ip netns add failed: {p.stderr.strip()}"
        p = _ip("link", "add", br, "type", "bridge", check=False)
        if p.returncode != 0:
            return False, f"cannot create a bridge: {p.stderr.strip()}"
        p = _ip("link", "add", f"gwv{tag}p", "type", "veth", "peer", "name",
                "eth0", "netns", ns, check=False)
        if p.returncode != 0:
            return False, f"cannot create a veth pair: {p.stderr.strip()}"
        return True, ""
    except (OSError, subprocess.SubprocessError) as e:
        return False, f"ip failed: {e}"
    finally:
        _ip("link", "del", f"gwv{tag}p", check=False)
        _ip("link", "del", br, check=False)
        _ip("netns", "del", ns, check=False)


def unbound_available():
    if not os.access(UNBOUND, os.X_OK):
        return False, f"{UNBOUND} is not installed (Debian package unbound)"
    return True, ""


# ------------------------------------------------------------ DNS probe ---


def dns_query(server, name, qtype="A", timeout=1.0, port=53):
    """Sends one query over UDP; returns (rcode, answer count) or raises
    OSError/TimeoutError. Enough to see that a server answers."""
    types = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15,
             "TXT": 16, "AAAA": 28}
    qid = random.randrange(65536)
    pkt = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)  # RD set
    for label in name.rstrip(".").split("."):
        b = label.encode("ascii")
        pkt += bytes([len(b)]) + b
    pkt += b"\0" + struct.pack("!HH", types[qtype], 1)
    fam = socket.AF_INET6 if ":" in server else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(pkt, (server, port))
        deadline = time.monotonic() + timeout
        while True:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            data, _ = s.recvfrom(4096)
            if len(data) >= 12:
                rid, flags, _qd, an, _ns, _ar = struct.unpack("!HHHHHH", data[:12])
                if rid == qid and flags & 0x8000:
                    return flags & 0xF, an


# ----------------------------------------------------------------- Host ---


class Host:
    """One namespace on the lab's bridge."""

    def __init__(self, lab, name, k):
        self.lab = lab
        self.name = name
        self.k = k
        self.ns = f"{PREFIX}{lab.tag}-{name}"
        self.veth = f"gwv{lab.tag}{k}"
        self.ip4 = f"{lab.net4}.{k}"
        self.ip6 = f"{lab.net6}::{k:x}"
        self.procs = []

    def __repr__(self):
        return f"<Host {self.name} ns={self.ns} {self.ip4} {self.ip6}>"

    def _setup(self):
        lab = self.lab
        _ip("netns", "add", self.ns)
        _ip("link", "add", self.veth, "type", "veth", "peer", "name", "eth0",
            "netns", self.ns)
        _ip("link", "set", self.veth, "master", lab.bridge)
        _ip("link", "set", self.veth, "up")
        _ip("link", "set", "lo", "up", ns=self.ns)
        _ip("addr", "add", f"{self.ip4}/24", "dev", "eth0", ns=self.ns)
        _ip("-6", "addr", "add", f"{self.ip6}/64", "dev", "eth0", "nodad",
            ns=self.ns)
        _ip("link", "set", "eth0", "up", ns=self.ns)
        _ip("route", "add", "default", "via", lab.gw4, ns=self.ns)
        _ip("-6", "route", "add", "default", "via", lab.gw6, ns=self.ns)
        if lab.dns_host is not None:
            lab._write_resolv(self)

    def _cmd(self, argv):
        return [IP, "netns", "exec", self.ns] + [str(a) for a in argv]

    def run(self, argv, **kw):
        """subprocess.run of argv inside the namespace (timeout 30s unless
        given)."""
        kw.setdefault("timeout", 30)
        return subprocess.run(self._cmd(argv), **kw)

    def popen(self, argv, **kw):
        """subprocess.Popen of argv inside the namespace, in a process
        group of its own; the lab ends it at close(). `ip netns exec`
        execs the command, so the Popen's pid is the command's."""
        kw.setdefault("start_new_session", True)
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(self._cmd(argv), **kw)
        self.procs.append(p)
        return p

    def exec_prefix(self):
        """The argv prefix that runs a command in this namespace."""
        return [IP, "netns", "exec", self.ns]

    def set_link(self, up):
        """Takes the host off the network (its eth0 down) or back on."""
        _ip("link", "set", "eth0", "up" if up else "down", ns=self.ns)

    def listening(self, port, pid):
        """True if a TCP socket in LISTEN state on port exists in the
        namespace process pid lives in (its /proc/PID/net view)."""
        return bool(self._listening_families(port, pid))

    def wait_listening(self, port, proc, timeout=15, families=(4, 6)):
        """Waits until proc (a Popen in this host) listens on port; raises
        if it exits first or the time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"{proc.args} exited with {proc.returncode}"
                                     f" before listening on {port}")
            if self._listening_families(port, proc.pid) >= set(families):
                return
            if time.monotonic() >= deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for "
                                     f"{proc.args} to listen on {port}")
            time.sleep(0.02)

    def _listening_families(self, port, pid):
        fams = set()
        for name, fam in (("tcp", 4), ("tcp6", 6)):
            try:
                with open(f"/proc/{pid}/net/{name}") as f:
                    next(f)
                    for line in f:
                        parts = line.split()
                        if (len(parts) > 3 and parts[3] == "0A" and
                                int(parts[1].rsplit(":", 1)[1], 16) == port):
                            fams.add(fam)
            except (OSError, StopIteration):
                pass
        return fams

    def _stop_procs(self):
        for p in self.procs:
            _end(p)
        self.procs = []


def _end(p, timeout=5):
    """SIGTERM a Popen's process group, then SIGKILL; reaps it."""
    if p.poll() is not None:
        return
    try:
        os.killpg(p.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        try:
            p.terminate()
        except ProcessLookupError:
            pass
    try:
        p.wait(timeout=timeout)
        return
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            p.kill()
        except ProcessLookupError:
            pass
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass


# ------------------------------------------------------------------ Lab ---


class Lab:
    """A bridge and namespaces; see the module docstring."""

    def __init__(self, workdir=None):
        REGISTRY.mkdir(parents=True, exist_ok=True)
        # one lab at a time picks its net and claims it with the bridge's
        # address, so concurrent runs never pick the same X
        with open(REGISTRY / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            _sweep_stale()
            self._init(workdir)

    def _init(self, workdir):
        self.tag = secrets.token_hex(3)
        self.x = _free_x()
        self.net4 = f"198.18.{self.x}"
        self.net6 = f"fd00:6777:{self.x:x}"
        self.gw4 = f"{self.net4}.1"
        self.gw6 = f"{self.net6}::1"
        self.bridge = f"gwb{self.tag}"
        self.hosts = {}
        self.dns_host = None
        self.dns_proc = None
        self.dns_records = []
        self._next_k = 2
        self._closed = False
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix=f"{PREFIX}{self.tag}-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        _live_labs.append(self)
        self._write_registry()
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            _ip("addr", "add", f"{self.gw4}/24", "dev", self.bridge)
            _ip("-6", "addr", "add", f"{self.gw6}/64", "dev", self.bridge, "nodad")
            _ip("link", "set", self.bridge, "up")
        except Exception:
            self.close()
            raise

    # -- registry of live labs, for the sweep after a crashed run ----------

    def _write_registry(self):
        info = {"pid": os.getpid(), "start": _proc_start(os.getpid()),
                "bridge": self.bridge,
                "namespaces": [h.ns for h in self.hosts.values()],
                "veths": [h.veth for h in self.hosts.values()]}
        tmp = REGISTRY / f".{self.tag}.tmp"
        tmp.write_text(json.dumps(info))
        os.replace(tmp, REGISTRY / f"{self.tag}.json")

    # -- hosts -------------------------------------------------------------

    def host(self, name):
        """A new host (namespace) on the bridge; name is [a-z0-9]{1,12}."""
        if self._closed:
            raise RuntimeError("lab closed")
        if name in self.hosts:
            raise ValueError(f"host {name} exists")
        if not name or len(name) > 12 or not name.isalnum():
            raise ValueError(f"bad host name {name!r}")
        if self._next_k > 250:
            raise RuntimeError("too many hosts")
        h = Host(self, name, self._next_k)
        self._next_k += 1
        self.hosts[name] = h
        self._write_registry()  # before setup: a half-made host is swept too
        h._setup()
        return h

    def addr4(self, k):
        """An address in the lab's IPv4 net (k 2..254), used or not."""
        return f"{self.net4}.{k}"

    def addr6(self, k):
        return f"{self.net6}::{k:x}"

    def unused_ip4(self):
        """An address in the lab's net that no host has: connections to it
        time out (nothing answers ARP)."""
        return self.addr4(253)

    def unused_ip6(self):
        return self.addr6(253)

    # -- DNS ---------------------------------------------------------------

    def dns(self, records, timeout=15):
        """Starts unbound in a host "dns" serving records (zone-file lines,
        e.g. "b.test. MX 10 mx.b.test.", 'a.example. TXT "v=spf1 -all"';
        a TXT string over 255 bytes is split by txt_record()); every name
        outside them is
        NXDOMAIN, nothing is looked up on the Internet. Points every host's
        /etc/resolv.conf (through /etc/netns/NS/) at it. Returns the host."""
        ok, why = unbound_available()
        if not ok:
            raise RuntimeError(why)
        if self.dns_host is not None:
            raise RuntimeError("dns() already called")
        h = self.host("dns")
        self.dns_host = h
        self.dns_records = list(records)
        d = self.workdir / "unbound"
        d.mkdir(exist_ok=True)
        conf = d / "unbound.conf"
        conf.write_text(self._unbound_conf(h, d))
        chk = subprocess.run(["/usr/sbin/unbound-checkconf", str(conf)],
                             capture_output=True, text=True, timeout=30)
        if chk.returncode != 0:
            raise RuntimeError(f"unbound config rejected:\n{chk.stdout}{chk.stderr}\n"
                               + conf.read_text())
        self._dns_log = open(d / "unbound.log", "ab")
        self.dns_proc = h.popen([UNBOUND, "-d", "-c", str(conf)],
                                stdout=self._dns_log, stderr=subprocess.STDOUT)
        for host in self.hosts.values():
            self._write_resolv(host)
        deadline = time.monotonic() + timeout
        probe = self._probe_name()
        for server in (h.ip4, h.ip6):
            while True:
                if self.dns_proc.poll() is not None:
                    raise RuntimeError(
                        f"unbound exited with {self.dns_proc.returncode}:\n"
                        + (d / "unbound.log").read_text(errors="replace")[-3000:])
                try:
                    dns_query(server, probe, "SOA", timeout=0.5)
                    break
                except OSError:
                    pass
                if time.monotonic() >= deadline:
                    raise RuntimeError(f"unbound did not answer on {server} "
                                       f"within {timeout}s")
                time.sleep(0.05)
        return h

    def _probe_name(self):
        for r in self.dns_records:
            return r.split()[0]
        return "test."

    def _unbound_conf(self, h, d):
        zones = {"test."}
        for r in self.dns_records:
            # TXT records carry their strings in double quotes; the line
            # goes into local-data in single quotes, so it may not have any
            if "\n" in r or "'" in r or "\\" in r:
                raise ValueError(f"bad record {r!r}")
            owner = r.split()[0].lower()
            if not owner.endswith("."):
                raise ValueError(f"record owner must be absolute: {r!r}")
            zones.add(owner.rstrip(".").split(".")[-1] + ".")
        lines = [
            "server:",
            f"  interface: {h.ip4}",
            f"  interface: {h.ip6}",
            "  port: 53",
            "  do-ip4: yes",
            "  do-ip6: yes",
            "  do-udp: yes",
            "  do-tcp: yes",
            "  do-daemonize: no",
            '  username: ""',
            '  chroot: ""',
            f'  directory: "{d}"',
            '  pidfile: ""',
            "  use-syslog: no",
            '  logfile: ""',
            "  verbosity: 1",
            "  log-queries: yes",
            "  num-threads: 1",
            "  access-control: 0.0.0.0/0 allow",
            "  access-control: ::/0 allow",
            '  module-config: "iterator"',
            "  do-not-query-localhost: yes",
            "  cache-max-ttl: 1",
            "  cache-max-negative-ttl: 1",
            # nothing outside the lab is ever asked
            '  local-zone: "." static',
        ]
        for z in sorted(zones):
            lines.append(f'  local-zone: "{z}" static')
        for r in self.dns_records:
            lines.append(f"  local-data: '{r}'")
        lines += ["remote-control:", "  control-enable: no", ""]
        return "\n".join(lines)

    def _write_resolv(self, host):
        d = NETNS_ETC / host.ns
        d.mkdir(parents=True, exist_ok=True)
        (d / "resolv.conf").write_text(
            f"# godwit netlab {self.tag}\n"
            f"nameserver {self.dns_host.ip4}\n"
            f"nameserver {self.dns_host.ip6}\n"
            "options timeout:1 attempts:2\n")

    # -- teardown ----------------------------------------------------------

    def close(self):
        if self._closed:
            return
        self._closed = True
        for h in self.hosts.values():
            try:
                h._stop_procs()
            except Exception:
                pass
        if getattr(self, "_dns_log", None):
            self._dns_log.close()
        for h in self.hosts.values():
            _teardown_ns(h.ns)
            _ip("link", "del", h.veth, check=False)
        _ip("link", "del", self.bridge, check=False)
        try:
            (REGISTRY / f"{self.tag}.json").unlink()
        except FileNotFoundError:
            pass
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        if self in _live_labs:
            _live_labs.remove(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _teardown_ns(ns):
    """Ends what still runs in namespace ns (only processes in our own
    lab's namespace: started by the tests), removes it and its /etc/netns
    directory."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        p = _ip("netns", "pids", ns, check=False)
        pids = [int(x) for x in p.stdout.split()] if p.returncode == 0 else []
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            p = _ip("netns", "pids", ns, check=False)
            if p.returncode != 0 or not p.stdout.split():
                break
            time.sleep(0.05)
    _ip("netns", "del", ns, check=False)
    shutil.rmtree(NETNS_ETC / ns, ignore_errors=True)
    try:
        NETNS_ETC.rmdir()  # only if empty
    except OSError:
        pass


def _free_x():
    """A random X for 198.18.X.0/24 that no address or route in the root
    namespace touches yet (other labs, someone's hand-made namespace)."""
    p = _ip("-o", "addr", "show", check=False)
    r = _ip("route", "show", check=False)
    taken = set()
    for text in (p.stdout, r.stdout):
        for m in re.finditer(r"\b198\.18\.(\d+)\.", text):
            taken.add(int(m.group(1)))
    free = [x for x in range(1, 255) if x not in taken]
    if not free:
        raise RuntimeError("no free 198.18.X.0/24 for a lab")
    return random.choice(free)


def _proc_start(pid):
    """The start time of pid (field 22 of /proc/PID/stat), to tell a pid
    from a later process that reused it."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _sweep_stale():
    """Removes labs left behind by processes that died without close()."""
    try:
        entries = list(REGISTRY.glob("*.json"))
    except OSError:
        return
    for e in entries:
        try:
            info = json.loads(e.read_text())
        except (OSError, ValueError):
            continue
        pid, start = info.get("pid"), info.get("start")
        if isinstance(pid, int) and _proc_start(pid) is not None and \
                _proc_start(pid) == start:
            continue  # its owner is alive
        for ns in info.get("namespaces", []):
            if isinstance(ns, str) and ns.startswith(PREFIX):
                _teardown_ns(ns)
        for v in info.get("veths", []):
            if isinstance(v, str) and v.startswith("gwv"):
                _ip("link", "del", v, check=False)
        br = info.get("bridge")
        if isinstance(br, str) and br.startswith("gwb"):
            _ip("link", "del", br, check=False)
        try:
            e.unlink()
        except FileNotFoundError:
            pass


@atexit.register
def _close_all():
    for lab in list(_live_labs):
        try:
            lab.close()
        except Exception:
            pass


def txt_record(owner, text):
    """A zone-file TXT line for dns(): text split into quoted strings of
    at most 250 bytes (a DKIM key is longer than one string may be)."""
    if '"' in text or "'" in text or "\\" in text or "\n" in text:
        raise ValueError(f"bad TXT text {text!r}")
    parts = " ".join(f'"{text[i:i + 250]}"' for i in range(0, len(text), 250))
    return f"{owner} TXT {parts}"


def is_ip(s):
    try:
        ipaddress.ip_address(s)
        return True
    except ValueError:
        return False
