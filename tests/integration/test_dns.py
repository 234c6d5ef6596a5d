"""
DNS routing (src/net/dns.c) end to end: a real unbound serves test zones from
local-data on 127.0.0.1, godwit's resolver forwards to it, and
`godwit route DOMAIN` must print the route RFC 5321 section 5 and RFC 7505
ask for.

start_unbound() is meant for other tests too: it starts unbound on a free
(or given) port with the records given and returns the Popen once it
answers queries.
"""

import os
import random
import re
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest

from conftest import free_port

UNBOUND = os.environ.get("UNBOUND_BIN", "/usr/sbin/unbound")

# zone-file lines; every owner's zone is a "static" local-zone (names not
# given answer NXDOMAIN or NODATA, nothing is looked up upstream)
RECORDS = [
    # MX, with two hosts of equal preference
    "a.test. MX 10 mx1.a.test.",
    "a.test. MX 20 mx2.a.test.",
    "a.test. MX 20 mx3.a.test.",
    "mx1.a.test. A 198.18.0.11",
    "mx1.a.test. A 198.18.0.111",
    "mx1.a.test. AAAA fd00::11",
    "mx2.a.test. A 198.18.0.12",
    "mx3.a.test. AAAA fd00::13",
    # no MX: the domain's own address (implicit MX)
    "nomx.test. A 198.18.0.20",
    "nomx.test. AAAA fd00::20",
    # RFC 7505 null MX, and a "." mixed with a real host (not null)
    "null.test. MX 0 .",
    "mixed.test. MX 0 .",
    "mixed.test. MX 10 mx1.a.test.",
    # an MX host that does not exist, and one that exists without address
    "noaddr.test. MX 10 ghost.noaddr.test.",
    "noaddr.test. MX 20 txtonly.noaddr.test.",
    'txtonly.noaddr.test. TXT "no address here"',
    # the zone exists but has nothing for the domain at all
    "empty.test. TXT \"nothing\"",
    # upper case and a CNAME'd MX target
    "Upper.Test. MX 5 MX.Upper.Test.",
    "mx.upper.test. CNAME real.upper.test.",
    "real.upper.test. A 198.18.0.30",
]
# zone -> local-zone type, on top of those derived from RECORDS
EXTRA_ZONES = {
    "nx.test.": "always_nxdomain",
    "refused.test.": "always_refuse",
}


def _zone_of(owner):
    """The zone an owner name goes in: its last two labels."""
    labels = owner.rstrip(".").lower().split(".")
    return ".".join(labels[-2:]) + "."


def dns_rcode(port, name, qtype=1, host="127.0.0.1", timeout=1.0):
    """Sends one query (RD set) over UDP; returns the answer's RCODE, or
    None if nothing came back in time."""
    qid = random.randrange(65536)
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack(">HH", qtype, 1)
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(q, (host, port))
            data, _ = s.recvfrom(4096)
        except OSError:
            return None
    if len(data) < 12 or struct.unpack(">H", data[:2])[0] != qid:
        return None
    return data[3] & 0x0F


def start_unbound(tmpdir, port, records, bind="127.0.0.1", zones=None,
                  timeout=10.0):
    """Starts unbound in the foreground on bind:port (UDP and TCP),
    serving `records` (zone-file lines "owner. TYPE RDATA") from static
    local zones (each owner's last two labels, unless `zones` names the
    zone: {"zone.": "static" | "always_nxdomain" | "always_refuse" ...}).
    Config, log and pid file live in tmpdir. Returns the Popen once a
    query is answered; the caller terminates it (stop_unbound)."""
    tmpdir = Path(tmpdir)
    tmpdir.mkdir(parents=True, exist_ok=True)
    allzones = {}
    for r in records:
        allzones.setdefault(_zone_of(r.split()[0]), "static")
    allzones.update(zones or {})
    lines = [
        "server:",
        f"  interface: {bind}",
        f"  port: {port}",
        "  do-daemonize: no",
        '  username: ""',
        '  chroot: ""',
        f'  directory: "{tmpdir}"',
        f'  pidfile: "{tmpdir / "unbound.pid"}"',
        "  use-syslog: no",
        f'  logfile: "{tmpdir / "unbound.log"}"',
        "  verbosity: 1",
        "  num-threads: 1",
        '  module-config: "iterator"',
        "  access-control: 127.0.0.0/8 allow",
        "  access-control: ::1/128 allow",
        "  do-ip6: yes",
        "  cache-max-ttl: 0",
        "  cache-max-negative-ttl: 0",
    ]
    for z, kind in allzones.items():
        lines.append(f'  local-zone: "{z}" {kind}')
    for r in records:
        lines.append(f"  local-data: '{r}'")
    lines += ["remote-control:", "  control-enable: no", ""]
    conf = tmpdir / "unbound.conf"
    conf.write_text("\n".join(lines))
    proc = subprocess.Popen(
        [UNBOUND, "-d", "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=open(tmpdir / "unbound.stderr", "wb"),
    )
    deadline = time.monotonic() + timeout
    while dns_rcode(port, "unbound-ready.invalid", host=bind,
                    timeout=0.2) is None:
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_unbound(proc)
            log = ""
            for f in ("unbound.stderr", "unbound.log"):
                if (tmpdir / f).exists():
                    log += (tmpdir / f).read_text(errors="replace")
            raise AssertionError(f"unbound did not start:\n{log[-4000:]}")
        time.sleep(0.05)
    return proc


def stop_unbound(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def unbound(tmp_path_factory):
    """(port) of one unbound serving RECORDS for the whole module."""
    port = free_port()
    proc = start_unbound(tmp_path_factory.mktemp("unbound"), port, RECORDS,
                         zones=EXTRA_ZONES)
    yield port
    stop_unbound(proc)


@pytest.fixture
def gw(make_godwit, unbound):
    """A godwit config (not started) resolving through the test unbound."""
    return make_godwit({"dns": {"resolver": [f"127.0.0.1@{unbound}"]}},
                       start=False)


def route(g, *args):
    p = g.run("route", *args, timeout=30)
    return p.returncode, p.stdout, p.stderr


def host_lines(out):
    """[(pref, name, [addrs])] from route's output."""
    res = []
    for line in out.splitlines()[1:]:
        f = line.split()
        res.append((int(f[0]), f[1], f[2:]))
    return res


def test_mx_route_in_preference_order(gw):
    code, out, err = route(gw, "a.test")
    assert code == 0, out + err
    assert out.splitlines()[0] == "a.test: MX"
    hosts = host_lines(out)
    assert [h[0] for h in hosts] == [10, 20, 20]
    assert hosts[0][1] == "mx1.a.test"
    assert {h[1] for h in hosts[1:]} == {"mx2.a.test", "mx3.a.test"}
    by = {h[1]: h[2] for h in hosts}
    # IPv6 preferred by default, then IPv4 in DNS order
    assert by["mx1.a.test"][0] == "fd00::11"
    assert sorted(by["mx1.a.test"][1:]) == ["198.18.0.11", "198.18.0.111"]
    assert by["mx2.a.test"] == ["198.18.0.12"]
    assert by["mx3.a.test"] == ["fd00::13"]


def test_equal_preferences_are_shuffled(gw):
    seen = set()
    for _ in range(16):
        code, out, err = route(gw, "a.test")
        assert code == 0, out + err
        seen.add(tuple(h[1] for h in host_lines(out)))
        if len(seen) == 2:
            break
    assert seen == {("mx1.a.test", "mx2.a.test", "mx3.a.test"),
                    ("mx1.a.test", "mx3.a.test", "mx2.a.test")}


def test_prefer_ipv4(make_godwit, unbound):
    g = make_godwit({"dns": {"resolver": [f"127.0.0.1@{unbound}"]},
                     "outbound": {"prefer": "ipv4"}}, start=False)
    code, out, err = route(g, "a.test")
    assert code == 0, out + err
    by = {h[1]: h[2] for h in host_lines(out)}
    assert by["mx1.a.test"][-1] == "fd00::11"
    assert by["mx1.a.test"][0].startswith("198.18.0.")


@pytest.mark.parametrize("flag,present,absent", [
    ("-4", "198.18.0.12", "fd00::"),
    ("-6", "fd00::11", "198.18."),
])
def test_one_family_only(gw, flag, present, absent):
    code, out, err = route(gw, flag, "a.test")
    assert code == 0, out + err
    assert present in out and absent not in out
    names = [h[1] for h in host_lines(out)]
    # the host without an address of that family is left out
    assert ("mx3.a.test" in names) == (flag == "-6")
    assert ("mx2.a.test" in names) == (flag == "-4")


def test_ip_version_from_config(make_godwit, unbound):
    g = make_godwit({"dns": {"resolver": [f"127.0.0.1@{unbound}"]},
                     "outbound": {"ip_version": "ipv4"}}, start=False)
    code, out, err = route(g, "a.test")
    assert code == 0, out + err
    assert "fd00::" not in out and "198.18.0.11" in out


def test_implicit_mx(gw):
    code, out, err = route(gw, "nomx.test")
    assert code == 0, out + err
    assert out.splitlines()[0].startswith("nomx.test: no MX, implicit MX")
    assert host_lines(out) == [(0, "nomx.test", ["fd00::20", "198.18.0.20"])]


def test_null_mx(gw):
    code, out, err = route(gw, "null.test")
    assert code == 1, out + err
    assert out.strip() == "null.test: null MX (RFC 7505): domain accepts no mail"


def test_null_mx_mixed_with_a_host_is_not_null(gw):
    code, out, err = route(gw, "mixed.test")
    assert code == 0, out + err
    assert [h[1] for h in host_lines(out)] == ["mx1.a.test"]


def test_nxdomain_is_permanent(gw):
    code, out, err = route(gw, "nx.test")
    assert code == 1, out + err
    assert out.startswith("nx.test: permanent failure:")
    assert "does not exist" in out


def test_no_mx_no_address_is_permanent(gw):
    code, out, err = route(gw, "empty.test")
    assert code == 1, out + err
    assert "no MX or address records for empty.test" in out


def test_mx_hosts_without_addresses_is_permanent(gw):
    code, out, err = route(gw, "noaddr.test")
    assert code == 1, out + err
    assert "no address records for the MX hosts of noaddr.test" in out


def test_refused_is_temporary(gw):
    code, out, err = route(gw, "refused.test")
    assert code == 2, out + err
    assert out.startswith("refused.test: temporary failure:")
    # libunbound turns the forwarder's REFUSED into SERVFAIL
    assert "looking up MX for refused.test" in out


def test_case_trailing_dot_and_cname(gw):
    code, out, err = route(gw, "UPPER.test.")
    assert code == 0, out + err
    assert host_lines(out) == [(5, "mx.upper.test", ["198.18.0.30"])]


def test_host_without_mx_lookup(gw):
    # -n: as for a smarthost, a.test itself has no address
    code, out, err = route(gw, "-n", "mx2.a.test")
    assert code == 0, out + err
    assert out.splitlines()[0].startswith("mx2.a.test: host")
    assert host_lines(out) == [(0, "mx2.a.test", ["198.18.0.12"])]
    code, out, err = route(gw, "-n", "a.test")
    assert code == 1, out + err
    assert "no address records for host a.test" in out


@pytest.mark.parametrize("lit,addr", [
    ("[198.18.0.5]", "198.18.0.5"),
    ("[IPv6:fd00::5]", "fd00::5"),
])
def test_address_literal(gw, lit, addr):
    code, out, err = route(gw, lit)
    assert code == 0, out + err
    assert out.splitlines()[0] == f"{lit}: address literal"
    assert host_lines(out) == [(0, addr, [addr])]


@pytest.mark.parametrize("bad", ["a..test", "-a.test", "[1.2.3]",
                                 "x" * 64 + ".test", "a test"])
def test_invalid_domain(gw, bad):
    code, out, err = route(gw, bad)
    assert code == 1, out + err
    assert "invalid domain" in out


def test_usage(gw):
    for args in ([], ["-x", "a.test"], ["a.test", "b.test"]):
        code, out, err = route(gw, *args)
        assert code == 2
        assert "usage: godwit route" in err


def test_dead_forwarder_is_temporary(make_godwit):
    # nothing listens there: libunbound gives up, a TEMPFAIL, not a hang
    g = make_godwit({"dns": {"resolver": [f"127.0.0.1@{free_port()}"]}},
                    start=False)
    t = time.monotonic()
    code, out, err = route(g, "a.test")
    assert code == 2, out + err
    assert out.startswith("a.test: temporary failure:")
    assert time.monotonic() - t < 30


def test_bad_forwarder_is_a_config_error(make_godwit):
    g = make_godwit({"dns": {"resolver": ["not-an-address"]}}, start=False)
    code, out, err = route(g, "a.test")
    assert code != 0
    assert re.search(r"forwarder|resolver", err), err
