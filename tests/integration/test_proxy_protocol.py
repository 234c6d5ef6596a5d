"""
The PROXY protocol on listeners (proxy_protocol: true): a real haproxy 2.6
in TCP mode in front of godwit, with `send-proxy-v2` and `send-proxy`
(v1). Clients connect to haproxy from 127.0.0.2..4 (their sockets bound
to those sources); haproxy forwards from 127.0.0.1, the only trusted
balancer. godwit must see the clients' addresses: in the Received field,
the connect line (with proxy=127.0.0.1), and for bans. Raw headers sent
by a Python socket from the trusted address cover the edges: split
across packets, LOCAL, a bad signature, too long, pipelined data behind
the header, the deadline; an untrusted peer is refused without a word.
"""

import imaplib
import os
import poplib
import re
import shutil
import smtplib
import socket
import struct
import subprocess
import time

import pytest

from conftest import (PASSWORD, Godwit, client_tls_context, free_port,
                      godwit_base, serving, wait_for)

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
SIG = b"\r\n\r\n\x00\r\nQUIT\n"
ALICE = "alice@example.test"
BOB = "bob@example.test"

pytestmark = pytest.mark.skipif(not os.path.exists(HAPROXY),
                                reason="haproxy is not installed")


def v2_tcp4(src, sport, dst="127.0.0.1", dport=25, cmd=0x21):
    addrs = socket.inet_aton(src) + socket.inet_aton(dst)
    body = addrs + struct.pack("!HH", sport, dport)
    return SIG + bytes([cmd, 0x11]) + struct.pack("!H", len(body)) + body


def connect(port, src="127.0.0.1", timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                 source_address=(src, 0))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_until(s, pred, timeout=10):
    """Bytes from s until pred(data) or EOF, within timeout."""
    data = b""
    end = time.monotonic() + timeout
    while not pred(data):
        left = end - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            chunk = s.recv(4096)
        except socket.timeout:
            break
        except ConnectionResetError:
            # closed with our octets unread: a reset, still no reply
            break
        if not chunk:
            break
        data += chunk
    return data


def closed_silently(s, timeout=10):
    """True if the server closes without sending anything."""
    data = read_until(s, lambda d: False, timeout)
    return data == b""


class HAProxy:
    """haproxy -db in the foreground, its config in a temp dir."""

    def __init__(self, base, routes):
        """routes: name -> (backend port, 'send-proxy-v2'|'send-proxy')."""
        self.dir = base / "haproxy"
        self.dir.mkdir()
        self.ports = {name: free_port() for name in routes}
        cfg = ["global", "    maxconn 200", "defaults", "    mode tcp",
               "    timeout connect 5s", "    timeout client 30s",
               "    timeout server 30s"]
        for name, (bport, how) in routes.items():
            cfg += [f"frontend fe_{name}",
                    f"    bind 127.0.0.1:{self.ports[name]}",
                    f"    default_backend be_{name}",
                    f"backend be_{name}",
                    f"    server g 127.0.0.1:{bport} {how}"]
        self.cfg = self.dir / "haproxy.cfg"
        self.cfg.write_text("\n".join(cfg) + "\n")
        self.log = open(self.dir / "haproxy.log", "wb")
        self.proc = subprocess.Popen([HAPROXY, "-f", str(self.cfg), "-db"],
                                     stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log)

        def up():
            assert self.proc.poll() is None, (
                "haproxy exited: " + (self.dir / "haproxy.log").read_text())
            for p in self.ports.values():
                try:
                    socket.create_connection(("127.0.0.1", p), 1).close()
                except OSError:
                    return False
            return True

        wait_for(up, 10, what="haproxy to listen")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


@pytest.fixture(scope="module")
def lab(godwit_root, cert):
    """godwit with PROXY protocol listeners for smtp, submissions, pop3
    and imaps, and haproxy in front of them."""
    crt, key = cert
    base = godwit_base(godwit_root, "proxy_protocol")
    ports = {n: free_port() for n in ("mx", "subs", "pop3", "imaps")}
    trusted = ["127.0.0.1/32"]

    def li(name, proto, **kw):
        d = {"name": name, "protocol": proto,
             "listen": [f"127.0.0.1:{ports[name]}"],
             "proxy_protocol": True, "proxy_trusted_networks": trusted}
        d.update(kw)
        return d

    g = Godwit(base / "g", {
        "tls": {"certificates": [{"cert": str(crt), "key": str(key)}],
                "handshake_timeout": "2s"},
        "auth": {"delay_base": "0", "delay_max": "0",
                 "max_failures_ip": 3, "ban_time": "1m"},
    })
    g.config["listeners"] = [
        li("mx", "smtp", greet_pause=0),
        li("subs", "submissions"),
        li("pop3", "pop3", plaintext_auth=True),
        li("imaps", "imaps"),
    ]
    g.write_config()
    g.ports = ports
    with serving(g):
        hap = HAProxy(base, {
            "mx2": (ports["mx"], "send-proxy-v2"),
            "mx1": (ports["mx"], "send-proxy"),
            "subs": (ports["subs"], "send-proxy-v2"),
            "pop3": (ports["pop3"], "send-proxy-v2"),
            "imaps": (ports["imaps"], "send-proxy-v2"),
        })
        g.hap = hap
        try:
            yield g
        finally:
            hap.stop()


def connect_line(g, ip, listener):
    """The connect line of a session from ip on listener, or None."""
    for line in g.log_text().splitlines():
        if (" event=connect " in line and f" ip={ip} " in line
                and f"listener={listener}" in line):
            return line
    return None


def smtp_from(src, port, **kw):
    return smtplib.SMTP("127.0.0.1", port, local_hostname="client.test",
                         timeout=20, source_address=(src, 0), **kw)


# -------------------------------------------------------------- haproxy ---

@pytest.mark.parametrize("route,src", [("mx2", "127.0.0.2"),
                                       ("mx1", "127.0.0.3")])
def test_smtp_through_haproxy(lab, route, src):
    """v2 and v1: the Received field and the log name the client."""
    g = lab
    mark = f"via-{route}-{time.monotonic_ns()}"
    s = smtp_from(src, g.hap.ports[route])
    s.sendmail("someone@elsewhere.test", [BOB],
               f"Subject: {mark}\r\n\r\nhello\r\n")
    s.quit()
    msgs = wait_for(lambda: g.find_messages(mark.encode()), 10,
                    what="the message")
    rcvd = re.split(rb"\r?\n\r?\n", msgs[0].read_bytes())[0]
    assert f"[{src}]".encode() in rcvd, rcvd
    assert b"[127.0.0.1]" not in rcvd
    line = wait_for(lambda: connect_line(g, src, "mx"), 5,
                    what="the connect line")
    assert " proxy=127.0.0.1" in line, line


def test_submissions_implicit_tls_through_haproxy(lab):
    """TLS passes through haproxy: the header comes before the
    ClientHello; the login and the message are the client's."""
    g = lab
    mark = f"subs-{time.monotonic_ns()}"
    s = smtplib.SMTP_SSL("127.0.0.1", g.hap.ports["subs"],
                         local_hostname="client.test", timeout=20,
                         source_address=("127.0.0.2", 0),
                         context=client_tls_context())
    s.login(ALICE, PASSWORD)
    s.sendmail(ALICE, [BOB], f"Subject: {mark}\r\n\r\nsubmitted\r\n")
    s.quit()
    msgs = wait_for(lambda: g.find_messages(mark.encode()), 10,
                    what="the message")
    text = msgs[0].read_bytes()
    assert b"[127.0.0.2]" in text
    assert b"with ESMTPSA" in text
    line = wait_for(lambda: connect_line(g, "127.0.0.2", "subs"), 5,
                    what="the connect line")
    assert " proxy=127.0.0.1" in line


class _IMAPFrom(imaplib.IMAP4_SSL):
    def __init__(self, src, *a, **kw):
        self._src = src
        super().__init__(*a, **kw)

    def _create_socket(self, timeout):
        sock = socket.create_connection((self.host, self.port), timeout,
                                        source_address=(self._src, 0))
        return self.ssl_context.wrap_socket(sock, server_hostname=self.host)


class _POP3From(poplib.POP3):
    def __init__(self, src, *a, **kw):
        self._src = src
        super().__init__(*a, **kw)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout,
                                        source_address=(self._src, 0))


def test_imaps_and_pop3_through_haproxy(lab):
    g = lab
    m = _IMAPFrom("127.0.0.2", "127.0.0.1", g.hap.ports["imaps"],
                  ssl_context=client_tls_context(), timeout=20)
    m.login(ALICE, PASSWORD)
    assert m.select("INBOX")[0] == "OK"
    m.logout()
    line = wait_for(lambda: connect_line(g, "127.0.0.2", "imaps"), 5,
                    what="the imaps connect line")
    assert " proxy=127.0.0.1" in line

    p = _POP3From("127.0.0.3", "127.0.0.1", g.hap.ports["pop3"], timeout=20)
    p.user(ALICE)
    p.pass_(PASSWORD)
    p.stat()
    p.quit()
    line = wait_for(lambda: connect_line(g, "127.0.0.3", "pop3"), 5,
                    what="the pop3 connect line")
    assert " proxy=127.0.0.1" in line
    assert re.search(r"event=auth .*ip=127\.0\.0\.3 .*result=ok",
                     g.log_text())


def test_ban_hits_the_client_not_the_balancer(lab):
    """Failed logins through haproxy from 127.0.0.4 ban 127.0.0.4; a
    client at 127.0.0.3 behind the same haproxy still logs in."""
    g = lab
    port = g.hap.ports["pop3"]
    refused = False
    for _ in range(8):
        try:
            p = _POP3From("127.0.0.4", "127.0.0.1", port, timeout=10)
        except poplib.error_proto as e:
            refused = True      # the greeting is the refusal
            assert b"-ERR" in str(e).encode()
            break
        try:
            p.user(ALICE)
            p.pass_("wrong password")
        except poplib.error_proto:
            pass
        except (OSError, EOFError):
            pass
        try:
            p.quit()
        except (poplib.error_proto, OSError, EOFError):
            pass
    assert refused, "127.0.0.4 was never banned"
    assert re.search(r"event=ban .*ip=127\.0\.0\.4 ", g.log_text())
    assert not re.search(r"event=ban .*ip=127\.0\.0\.1 ", g.log_text())
    p = _POP3From("127.0.0.3", "127.0.0.1", port, timeout=20)
    p.user(ALICE)
    p.pass_(PASSWORD)
    p.quit()


# ----------------------------------------------------------- raw headers ---

def test_untrusted_peer_refused(lab):
    g = lab
    s = connect(g.ports["mx"], src="127.0.0.2")
    s.sendall(v2_tcp4("192.0.2.66", 1234))
    assert closed_silently(s)
    s.close()
    wait_for(lambda: re.search(r"event=reject ip=127\.0\.0\.2 listener=mx "
                               r"reason=proxy-untrusted", g.log_text()),
             5, what="the reject line")
    assert connect_line(g, "192.0.2.66", "mx") is None


def test_header_split_and_pipelined(lab):
    """A v2 header in three packets; then a v1 header with the commands
    behind it in the same packet: nothing after the header is lost."""
    g = lab
    h = v2_tcp4("192.0.2.10", 40000)
    s = connect(g.ports["mx"])
    for part in (h[:5], h[5:17], h[17:]):
        s.sendall(part)
        time.sleep(0.1)
    assert read_until(s, lambda d: b"\r\n" in d).startswith(b"220 ")
    s.sendall(b"QUIT\r\n")
    assert b"221" in read_until(s, lambda d: b"221" in d)
    s.close()
    line = wait_for(lambda: connect_line(g, "192.0.2.10", "mx"), 5,
                    what="the connect line")
    assert " proxy=127.0.0.1" in line

    s = connect(g.ports["mx"])
    s.sendall(b"PROXY TCP4 192.0.2.11 127.0.0.1 40001 25\r\n"
              b"EHLO client.test\r\nNOOP\r\nQUIT\r\n")
    data = read_until(s, lambda d: b"\r\n221" in d or d.startswith(b"221"))
    s.close()
    assert data.startswith(b"220 "), data
    assert b"\r\n250-" in data and b"\r\n221" in data, data
    assert connect_line(g, "192.0.2.11", "mx") is not None


def test_local_command_keeps_the_balancer_address(lab):
    """LOCAL (a health check): the connection's own address stands."""
    g = lab
    before = g.log_size()
    s = connect(g.ports["pop3"])
    s.sendall(SIG + b"\x20\x00\x00\x00")
    assert read_until(s, lambda d: b"\r\n" in d).startswith(b"+OK")
    s.sendall(b"QUIT\r\n")
    read_until(s, lambda d: d.count(b"\r\n") >= 1)
    s.close()

    def seen():
        t = g.log_since(before)
        return re.search(r"event=connect .*ip=127\.0\.0\.1 listener=pop3 "
                         r"proxy=127\.0\.0\.1", t)
    wait_for(seen, 5, what="the connect line")


@pytest.mark.parametrize("header,why", [
    (b"\r\n\r\n\x00\r\nQUIX\n\x21\x11\x00\x0c" + bytes(12), "signature"),
    (SIG + b"\x21\x11\xff\xff", "too long"),
    (b"EHLO client.test\r\n", "no header"),
    (b"PROXY TCP4 192.0.2.1 127.0.0.1 99999 25\r\n", "bad port"),
])
def test_bad_header_closed(lab, header, why):
    g = lab
    before = g.log_size()
    s = connect(g.ports["mx"])
    s.sendall(header)
    t0 = time.monotonic()
    assert closed_silently(s, timeout=5), why
    # refused at once, not after the deadline
    assert time.monotonic() - t0 < 1.5, why
    s.close()
    wait_for(lambda: "reason=proxy-bad" in g.log_since(before), 5,
             what="the proxy-bad line")


def test_header_deadline(lab):
    """Half a header, then nothing: closed after tls.handshake_timeout."""
    g = lab
    before = g.log_size()
    s = connect(g.ports["imaps"])
    s.sendall(v2_tcp4("192.0.2.12", 1)[:10])
    t0 = time.monotonic()
    assert closed_silently(s, timeout=8)
    took = time.monotonic() - t0
    s.close()
    assert 1.0 < took < 7, took
    wait_for(lambda: "reason=proxy-timeout" in g.log_since(before), 5,
             what="the proxy-timeout line")


# -------------------------------------------------------- configuration ---

def test_config_check_needs_trusted_networks(tmp_path, godwit_root):
    g = Godwit(godwit_base(godwit_root, "proxy_config"))
    g.config["listeners"][0]["proxy_protocol"] = True
    g.write_config()
    r = g.run("config", "check")
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert re.search(r"godwit\.yaml:\d+: .*proxy_trusted_networks", out), out

    g.config["listeners"][0]["proxy_trusted_networks"] = []
    g.write_config()
    r = g.run("config", "check")
    assert r.returncode != 0
    assert "proxy_trusted_networks" in r.stdout + r.stderr

    g.config["listeners"][0]["proxy_trusted_networks"] = ["10.0.0.0/8",
                                                          "fd00::/8"]
    g.write_config()
    r = g.run("config", "check")
    assert r.returncode == 0, r.stdout + r.stderr


# --------------------------------------------------------------- doctor ---

def test_doctor_speaks_as_a_health_check(lab):
    """`godwit doctor` sends a PROXY LOCAL header to the listeners whose
    proxy_trusted_networks hold its address, and says why it skips the
    others."""
    g = lab
    p = g.run("doctor", "--timeout", "2", "--outbound-target",
              f"127.0.0.1:{g.ports['mx']}", timeout=120)
    out = p.stdout
    for name, proto, greet in (("mx", "smtp", "220"),
                               ("subs", "submissions", "220"),
                               ("pop3", "pop3", r"\+OK"),
                               ("imaps", "imaps", r"\* OK")):
        assert re.search(rf"^OK +listener +{name} \({proto}\) 127\.0\.0\.1:"
                         rf"{g.ports[name]}( TLS)?: {greet}", out, re.M), out
    assert not re.search(r"^FAIL +(listener|relay) ", out, re.M), out

    cfg = g.cfg_path.read_text().replace('"127.0.0.1/32"', '"10.9.9.9/32"')
    assert "10.9.9.9/32" in cfg
    other = g.base / "untrusted.yaml"
    other.write_text(cfg)
    p = g.run("-c", str(other), "doctor", "--timeout", "2",
              "--outbound-target", f"127.0.0.1:{g.ports['mx']}",
              global_cfg=False, timeout=120)
    assert re.search(r"^WARN +listener +pop3 \(pop3\) 127\.0\.0\.1:\d+: not "
                     r"tried: proxy_protocol is on", p.stdout, re.M), p.stdout
    assert re.search(r"^WARN +relay +127\.0\.0\.1:\d+: relay probe not run: "
                     r"proxy_protocol is on", p.stdout, re.M), p.stdout
