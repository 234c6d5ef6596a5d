"""
Outbound delivery between real hosts: every test builds a small
network of namespaces on a bridge (netlab.py) with a real DNS server
(unbound) answering MX/A/AAAA for the test domains, a godwit in host "a"
(domain a.test, user alice) that alice submits to from the root namespace,
and as the far end either a second godwit in host "b" (domain b.test,
user bob) or greylist_server.py (aiosmtpd) in host "p".

    a.test      alice's godwit, host a
    b.test      MX 10 mx.b.test (A and AAAA of host b)
    b6.test     MX 10 mx6.b.test (AAAA only)      -> bob@b.test (alias)
    b4.test     MX 10 mx4.b.test (A only)         -> bob@b.test (alias)
    backup.test MX 10 mx.dead.test, MX 20 mx.b.test -> bob@b.test (alias)
    peer.test   MX 10 mx.peer.test (host p: greylist_server.py)
    s0.test ... s9.test   MX 10 mx.peer.test (ten domains, one MX host)
    dead.test   MX 10 mx.dead.test (host z: up, nothing listens: refused)
    gone.test   MX 10 mx.gone.test (an address no host has: unreachable)
    null.test   MX 0 .  (RFC 7505)

Outcomes are checked first (the message in a Maildir, a bounce parsed
with the email package, the queue empty); log lines only where the
outcome cannot show it. Every wait is bounded.
"""

import email
import email.policy
import json
import os
import re
import signal
import smtplib
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import PASSWORD, client_tls_context, wait_for
from smtpclient import crlf

sys.path.insert(0, os.path.dirname(__file__))
import netlab  # noqa: E402

HERE = Path(__file__).resolve().parent
PEER = str(HERE / "greylist_server.py")
PYTHON = "/usr/bin/python3"  # Debian's, which has python3-aiosmtpd

# Queue timing for the tests: quick retries, a lifetime long enough for
# every delivering test and overridden by the expiry tests.
RETRY = {"retry_min": "1s", "retry_max": "2s", "lifetime": "2m"}

SHARED_MX = 10  # s0.test ... s9.test, all with MX mx.peer.test


# ------------------------------------------------------------ fixtures ---


@pytest.fixture
def lab(tmp_path):
    ok, why = netlab.netns_available()
    if not ok:
        pytest.skip(f"network lab unavailable: {why}")
    ok, why = netlab.unbound_available()
    if not ok:
        pytest.skip(f"network lab unavailable: {why}")
    if subprocess.run([PYTHON, "-c", "import aiosmtpd"],
                      capture_output=True, timeout=30).returncode != 0:
        pytest.skip("network lab unavailable: python3-aiosmtpd is not installed")
    with netlab.Lab(workdir=tmp_path / "lab") as l:
        yield l


class World:
    """The lab populated for these tests (see the module docstring)."""

    def __init__(self, lab, make_godwit, cert, tmp_path):
        self.lab = lab
        self.make_godwit = make_godwit
        self.cert = cert
        self.tmp = tmp_path
        self.a = lab.host("a")
        self.b = lab.host("b")
        self.p = lab.host("p")
        self.z = lab.host("z")
        a, b, p, z = self.a, self.b, self.p, self.z
        self.gone4, self.gone6 = lab.unused_ip4(), lab.unused_ip6()
        self.dns = lab.dns([
            "a.test. MX 10 mx.a.test.",
            f"mx.a.test. A {a.ip4}",
            f"mx.a.test. AAAA {a.ip6}",
            "b.test. MX 10 mx.b.test.",
            f"mx.b.test. A {b.ip4}",
            f"mx.b.test. AAAA {b.ip6}",
            "b6.test. MX 10 mx6.b.test.",
            f"mx6.b.test. AAAA {b.ip6}",
            "b4.test. MX 10 mx4.b.test.",
            f"mx4.b.test. A {b.ip4}",
            "backup.test. MX 10 mx.dead.test.",
            "backup.test. MX 20 mx.b.test.",
            "peer.test. MX 10 mx.peer.test.",
            f"mx.peer.test. A {p.ip4}",
            f"mx.peer.test. AAAA {p.ip6}",
            "dead.test. MX 10 mx.dead.test.",
            f"mx.dead.test. A {z.ip4}",
            f"mx.dead.test. AAAA {z.ip6}",
            "gone.test. MX 10 mx.gone.test.",
            f"mx.gone.test. A {self.gone4}",
            f"mx.gone.test. AAAA {self.gone6}",
            "null.test. MX 0 .",
        ] + [f"s{i}.test. MX 10 mx.peer.test." for i in range(SHARED_MX)])
        self.ga = None
        self.gb = None
        self.peer_proc = None
        self.peer_dir = tmp_path / "peer-mail"
        self.peer_log = tmp_path / "peer.log"
        self.seq = 0

    # -- the godwits -----------------------------------------------------

    def godwit_a(self, queue=None, outbound=None, extra=None, start=True):
        """alice's godwit in host a: mx on 25, submission (STARTTLS, AUTH)
        on 587, resolving through the lab's DNS."""
        crt, key = self.cert
        o = {
            "hostname": "mx.a.test",
            "tls": {"certificates": [{"cert": str(crt), "key": str(key)}]},
            "dns": {"resolver": [self.dns.ip4]},
            "queue": dict(RETRY, **(queue or {})),
            "outbound": dict({"timeouts": {"connect": "5s"}}, **(outbound or {})),
            "listeners": [
                {"name": "mx", "protocol": "smtp",
                 "listen": ["0.0.0.0:25", "[::]:25"], "greet_pause": 0},
                {"name": "submission", "protocol": "submission",
                 "listen": ["0.0.0.0:587", "[::]:587"]},
            ],
        }
        if extra:
            o.update(extra)
        self.ga = self.make_godwit(o, start=start, users=("alice",),
                                   aliases={}, netns=self.a, domain="a.test")
        return self.ga

    def godwit_b(self, tls=False, start=True):
        """bob's godwit in host b: mx on 25; b6.test, b4.test and
        backup.test are aliases of bob@b.test. With tls it offers
        STARTTLS (the conftest certificate)."""
        o = {
            "hostname": "mx.b.test",
            "listeners": [
                {"name": "mx", "protocol": "smtp",
                 "listen": ["0.0.0.0:25", "[::]:25"], "greet_pause": 0},
            ],
        }
        if tls:
            crt, key = self.cert
            o["tls"] = {"certificates": [{"cert": str(crt), "key": str(key)}]}
        g = self.make_godwit(o, start=False, users=("bob",), aliases={},
                             netns=self.b, domain="b.test")
        for d in ("b6.test", "b4.test", "backup.test"):
            g.admin("domain", "add", d)
            g.admin("alias", "add", f"bob@{d}", "bob@b.test")
        if start:
            g.start()
        self.gb = g
        return g

    # -- the aiosmtpd peer -----------------------------------------------

    def start_peer(self, mode="accept", delay=0.0):
        """greylist_server.py in host p on port 25 (IPv4 and IPv6)."""
        self.stop_peer()
        log = open(self.peer_log, "ab")
        self.peer_proc = self.p.popen(
            [PYTHON, PEER, "--listen", self.p.ip4, "--listen", self.p.ip6,
             "--port", "25", "--mode", mode, "--maildir", str(self.peer_dir),
             "--delay", str(delay), "--hostname", "mx.peer.test"],
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.p.wait_listening(25, self.peer_proc)
        return self.peer_proc

    def stop_peer(self):
        if self.peer_proc is not None:
            netlab._end(self.peer_proc)
            self.peer_proc = None

    def peer_messages(self):
        d = self.peer_dir / "new"
        if not d.is_dir():
            return []
        return [f.read_bytes() for f in sorted(d.iterdir()) if f.is_file()]

    def peer_log_text(self):
        try:
            return self.peer_log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # -- submitting ------------------------------------------------------

    def message(self, to, subject=None, body="Hello over the lab.\n"):
        """(message-id, CRLF bytes) of a new message from alice."""
        self.seq += 1
        mid = f"<lab-{os.getpid()}-{time.monotonic_ns()}-{self.seq}@a.test>"
        subject = subject or f"lab test {self.seq}"
        text = (f"From: Alice <alice@a.test>\n"
                f"To: <{to}>\n"
                f"Subject: {subject}\n"
                f"Message-ID: {mid}\n"
                "Date: Mon, 23 Nov 2026 12:00:00 +0000\n"
                "\n" + body)
        return mid, crlf(text)

    def smtp_a(self, family=4):
        """An authenticated submission session to godwit a, from the root
        namespace over the bridge."""
        host = self.a.ip4 if family == 4 else self.a.ip6
        s = smtplib.SMTP(host, 587, local_hostname="client.test", timeout=30)
        s.starttls(context=client_tls_context())
        s.login("alice@a.test", PASSWORD)
        return s

    def submit(self, to, subject=None, family=4, body="Hello over the lab.\n"):
        """Submits one message; returns its Message-ID. Every recipient
        must be accepted (250)."""
        mid, data = self.message(to, subject, body)
        s = self.smtp_a(family)
        try:
            refused = s.sendmail("alice@a.test", [to], data)
        finally:
            s.quit()
        assert not refused, f"recipients refused: {refused}"
        return mid

    # -- the queue -------------------------------------------------------

    def queue(self, g=None):
        """`godwit queue list --json` of godwit a, parsed."""
        g = g or self.ga
        p = g.run("queue", "list", "--json", check=True)
        out = []
        for line in p.stdout.splitlines():
            if line.strip():
                out.append(json.loads(line))
        return out

    def queue_dump(self):
        """The queue of godwit a as text, for failure messages (never
        raises)."""
        try:
            p = self.ga.run("queue", "list", "--json")
            return f"queue list --json (exit {p.returncode}): {p.stdout[-2000:]}{p.stderr[-500:]}"
        except Exception as e:  # noqa: BLE001 - diagnostics only
            return f"queue list failed: {e}"

    def diag(self):
        return (f"{self.queue_dump()}\nlog of a:\n{self.ga.log_text()[-3000:]}"
                f"\npeer log:\n{self.peer_log_text()[-1500:]}")

    def runner_pid(self, g=None):
        g = g or self.ga
        for pid in g.all_children():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ")
            except OSError:
                continue
            if b"queue runner" in cmd:
                return pid
        return None


@pytest.fixture
def world(lab, make_godwit, cert, tmp_path):
    # lab before make_godwit: the godwits are stopped (and checked) before
    # the lab's namespaces go
    w = World(lab, make_godwit, cert, tmp_path)
    yield w
    w.stop_peer()


def wait_queue_empty(w, timeout=30):
    last = []

    def pred():
        q = w.queue()
        last[:] = q
        return not q
    try:
        wait_for(pred, timeout, interval=0.3, what="the queue to drain")
    except AssertionError as e:
        raise AssertionError(f"{e}; queue: {json.dumps(last)[:3000]}\n"
                             + w.ga.log_text()[-3000:]) from None


def wait(w, pred, timeout, what):
    """wait_for with the queue, a's log and the peer's log in the failure
    message."""
    try:
        return wait_for(pred, timeout, interval=0.2, what=what)
    except AssertionError as e:
        raise AssertionError(f"{e}\n{w.diag()}") from None


def parse(raw):
    return email.message_from_bytes(raw, policy=email.policy.compat32)


def bounce_parts(raw):
    """(message, {field: value} of the per-message block, [per-recipient
    blocks], text of the returned headers) of an RFC 3464 bounce."""
    m = parse(raw)
    assert m.get_content_type() == "multipart/report", m.get_content_type()
    assert m.get_param("report-type", "").lower() == "delivery-status", \
        m.get("Content-Type")
    status = None
    original = None
    for part in m.walk():
        ct = part.get_content_type()
        if ct == "message/delivery-status":
            status = part
        elif ct in ("text/rfc822-headers", "message/rfc822",
                    "message/global-headers", "message/global") and original is None:
            original = part
    assert status is not None, "no message/delivery-status part"
    assert original is not None, "no part with the original message or headers"
    blocks = status.get_payload()
    if isinstance(blocks, str):
        # not parsed into blocks: do it here
        raw_blocks = [b for b in re.split(r"\r?\n\r?\n", blocks.strip()) if b.strip()]
        blocks = [email.message_from_string(b) for b in raw_blocks]
    assert len(blocks) >= 2, f"want a per-message and a per-recipient block: {blocks}"
    if original.get_content_type() in ("message/rfc822", "message/global"):
        inner = original.get_payload()
        inner = inner[0] if isinstance(inner, list) else inner
        orig_text = inner.as_string() if hasattr(inner, "as_string") else str(inner)
    else:
        payload = original.get_payload(decode=True)
        orig_text = payload.decode("utf-8", "replace") if payload else str(original.get_payload())
    return m, blocks[0], blocks[1:], orig_text


def bounces(g):
    """alice's messages that are bounces (multipart/report)."""
    out = []
    for raw in g.maildir_messages("alice@a.test"):
        if b"multipart/report" in raw[:8192].lower() or \
                b"report-type" in raw.lower():
            out.append(raw)
    return out


def wait_bounce(w, n=1, timeout=30):
    try:
        return wait_for(lambda: len(bounces(w.ga)) >= n and bounces(w.ga),
                        timeout, interval=0.2, what=f"{n} bounce(s) for alice")
    except AssertionError as e:
        raise AssertionError(f"{e}\n{w.diag()}") from None


def check_bounce(raw, rcpt, status_re, subject):
    m, per_msg, per_rcpt, orig = bounce_parts(raw)
    # the stored copy records the null envelope sender
    assert raw.startswith(b"Return-Path: <>"), raw[:200]
    assert "mailer-daemon" in (m.get("From") or "").lower(), m.get("From")
    mine = [b for b in per_rcpt if rcpt.lower() in (b.get("Final-Recipient") or "").lower()]
    assert mine, f"no Final-Recipient {rcpt}: {[dict(b.items()) for b in per_rcpt]}"
    r = mine[0]
    assert (r.get("Action") or "").strip().lower() == "failed", dict(r.items())
    st = (r.get("Status") or "").strip()
    assert re.fullmatch(status_re, st), f"Status {st!r} !~ {status_re}"
    assert subject in orig, f"original Subject {subject!r} not returned:\n{orig[:2000]}"
    return m, r


def received_headers(raw):
    return parse(raw).get_all("Received") or []


def wait_bob(w, mid, timeout=30):
    """bob's copy (on godwit b) of the message with Message-ID mid."""
    def find():
        for raw in w.gb.maildir_messages("bob@b.test"):
            if mid.encode() in raw:
                return raw
        return None
    try:
        return wait_for(find, timeout, interval=0.1,
                        what=f"{mid} in bob's Maildir")
    except AssertionError as e:
        raise AssertionError(f"{e}\n{w.diag()}") from None


def peer_ids(w):
    """Message-IDs of every message the aiosmtpd peer stored, in order."""
    out = []
    for raw in w.peer_messages():
        m = re.search(rb"^Message-ID:\s*(<[^>\r\n]*>)", raw, re.M | re.I)
        if m:
            out.append(m.group(1).decode())
    return out


# ---------------------------------------------- the lab itself (today) ---


def test_lab_dns_and_reachability(world):
    """The lab works: unbound answers MX/A/AAAA and NXDOMAIN from every
    host through /etc/resolv.conf, the peer is reachable from host a over
    IPv4 and IPv6, and nothing answers on the refused and gone hosts."""
    w = world
    r = w.a.run(["getent", "ahosts", "mx.b.test"], capture_output=True, text=True)
    assert w.b.ip4 in r.stdout and w.b.ip6 in r.stdout, r
    r = w.a.run(["getent", "ahosts", "mx6.b.test"], capture_output=True, text=True)
    assert w.b.ip6 in r.stdout and w.b.ip4 not in r.stdout, r
    r = w.a.run(["getent", "hosts", "nothing.test"], capture_output=True, text=True)
    assert r.returncode != 0, r
    assert netlab.dns_query(w.dns.ip6, "null.test", "MX") == (0, 1)
    assert netlab.dns_query(w.dns.ip4, "backup.test", "MX") == (0, 2)
    assert netlab.dns_query(w.dns.ip4, "example.com", "A")[0] == 3  # NXDOMAIN

    w.start_peer("accept")
    probe = (
        "import smtplib,sys\n"
        "for h in sys.argv[1:]:\n"
        "    s=smtplib.SMTP(h,25,local_hostname='a.test',timeout=10)\n"
        "    s.sendmail('x@a.test',['y@peer.test'],b'Subject: probe '+h.encode()+b'\\r\\n\\r\\nhi\\r\\n')\n"
        "    s.quit()\n"
        "for h in ('%s','%s'):\n"
        "    try:\n"
        "        smtplib.SMTP(h,25,timeout=5)\n"
        "        print('connected', h)\n"
        "    except OSError as e:\n"
        "        print('refused ' + h)\n" % (w.z.ip4, w.z.ip6))
    r = w.a.run([PYTHON, "-c", probe, w.p.ip4, w.p.ip6],
                capture_output=True, text=True)
    assert r.returncode == 0, r
    assert r.stdout.count("refused ") == 2 and "connected" not in r.stdout, r.stdout
    msgs = w.peer_messages()
    assert len(msgs) == 2, w.peer_log_text()
    assert b"X-Peer-Mail-From: <x@a.test>" in msgs[0]
    assert f"peer={w.a.ip4}" in w.peer_log_text()
    assert f"peer={w.a.ip6}" in w.peer_log_text()


def test_lab_greylist_peer_modes(world):
    """greylist:2 answers 451 4.7.1 twice per (sender, rcpt), then 250;
    reject answers 550 5.1.1."""
    w = world
    w.start_peer("greylist:2")
    probe = (
        "import smtplib,sys\n"
        "codes=[]\n"
        "for i in range(3):\n"
        "    s=smtplib.SMTP(sys.argv[1],25,local_hostname='a.test',timeout=10)\n"
        "    s.ehlo(); s.mail('x@a.test'); c,m=s.rcpt('y@peer.test'); codes.append((c,m.decode()))\n"
        "    if c==250:\n"
        "        s.data(b'Subject: g\\r\\n\\r\\nhi\\r\\n')\n"
        "    s.quit()\n"
        "print(codes)\n")
    r = w.a.run([PYTHON, "-c", probe, w.p.ip6], capture_output=True, text=True)
    assert r.returncode == 0, r
    codes = eval(r.stdout)  # noqa: S307 - our own probe's repr
    assert [c for c, _ in codes] == [451, 451, 250], codes
    assert codes[0][1].startswith("4.7.1"), codes
    assert len(w.peer_messages()) == 1

    w.start_peer("reject")
    r = w.a.run([PYTHON, "-c",
                 "import smtplib,sys\n"
                 "s=smtplib.SMTP(sys.argv[1],25,timeout=10); s.ehlo(); s.mail('x@a.test')\n"
                 "c,m=s.rcpt('y@peer.test'); print(c, m.decode()); s.quit()\n",
                 w.p.ip4], capture_output=True, text=True)
    assert r.stdout.startswith("550 5.1.1"), r


def test_lab_godwits_in_namespaces(world):
    """A godwit runs in host b (mx on port 25, v4 and v6); a godwit
    without the outbound keys runs in host a and takes alice's
    submission from the root namespace over the bridge, delivering
    locally. Only what works without the queue runner."""
    w = world
    gb = w.godwit_b(tls=True)
    s = smtplib.SMTP(w.b.ip6, 25, local_hostname="client.test", timeout=20)
    s.starttls(context=client_tls_context())
    s.sendmail("x@peer.test", ["bob@b6.test"], crlf("Subject: v6\n\nhello\n"))
    s.quit()
    msgs = gb.wait_messages("bob@b.test", 1)
    assert b"using TLS" in msgs[0], msgs[0][:600]
    assert w.lab.gw6.encode() in msgs[0][:600], msgs[0][:600]

    crt, key = w.cert
    ga = w.make_godwit(
        {"hostname": "mx.a.test",
         "tls": {"certificates": [{"cert": str(crt), "key": str(key)}]},
         "listeners": [
             {"name": "mx", "protocol": "smtp",
              "listen": ["0.0.0.0:25", "[::]:25"], "greet_pause": 0},
             {"name": "submission", "protocol": "submission",
              "listen": ["0.0.0.0:587", "[::]:587"]}]},
        users=("alice",), aliases={}, netns=w.a, domain="a.test")
    w.ga = ga
    for fam in (4, 6):
        mid = w.submit("alice@a.test", f"self {fam}", family=fam)
        wait_for(lambda: any(mid.encode() in m for m in
                             ga.maildir_messages("alice@a.test")), 10,
                 what="alice's own message")
    assert ga.run("domain", "list", check=True).stdout.split() == ["a.test"]


# ------------------------------------------------ outbound (the runner) ---


@pytest.mark.parametrize("family", [4, 6])
def test_godwit_to_godwit_single_family(world, family):
    """b4.test has only an A record, b6.test only AAAA: the runner
    delivers over that family, and godwit b records a's address of it."""
    w = world
    w.godwit_a()
    w.godwit_b()
    dom = "b4.test" if family == 4 else "b6.test"
    mid = w.submit(f"bob@{dom}", f"family {family}")
    raw = wait_bob(w, mid)
    want = w.a.ip4 if family == 4 else w.a.ip6
    rec = received_headers(raw)
    assert any(want in h and "mx.b.test" in h for h in rec), rec
    wait_queue_empty(w)
    assert "fac=delivery event=sent" in w.ga.log_text()


@pytest.mark.parametrize("ipv", ["ipv4", "ipv6"])
def test_outbound_ip_version(world, ipv):
    """outbound.ip_version restricts the family even when the MX host
    has both A and AAAA."""
    w = world
    w.godwit_a(outbound={"ip_version": ipv})
    w.godwit_b()
    mid = w.submit("bob@b.test", f"ip_version {ipv}")
    raw = wait_bob(w, mid)
    want, other = (w.a.ip4, w.a.ip6) if ipv == "ipv4" else (w.a.ip6, w.a.ip4)
    rec = received_headers(raw)
    assert any(want in h for h in rec), rec
    assert not any(other in h for h in rec), rec
    wait_queue_empty(w)


@pytest.mark.parametrize("prefer", ["ipv6", "ipv4"])
def test_outbound_prefer(world, prefer):
    """mx.b.test has A and AAAA: outbound.prefer picks the family tried
    first (and, b being up, used)."""
    w = world
    w.godwit_a(outbound={"prefer": prefer})
    w.godwit_b()
    mid = w.submit("bob@b.test", f"prefer {prefer}")
    raw = wait_bob(w, mid)
    want = w.a.ip6 if prefer == "ipv6" else w.a.ip4
    rec = received_headers(raw)
    assert any(want in h for h in rec), rec
    wait_queue_empty(w)


def test_nxdomain_bounces_at_once(world):
    """A recipient domain that does not exist (NXDOMAIN from the lab's
    DNS) is bounced at once, not retried for the lifetime."""
    w = world
    w.godwit_a()
    subject = "to a domain that is not"
    w.submit("user@nothing.test", subject)
    raw = wait_bounce(w, timeout=15)[0]
    check_bounce(raw, "user@nothing.test", r"5\.(1\.2|4\.4)", subject)
    wait_queue_empty(w)


def test_godwit_to_godwit_starttls(world):
    """b offers STARTTLS: with the default policy (may) a uses it; bob's
    copy says so and a's delivery line names the protocol."""
    w = world
    w.godwit_a()
    w.godwit_b(tls=True)
    mid = w.submit("bob@b.test", "over tls")
    raw = wait_bob(w, mid)
    rec = received_headers(raw)
    assert any("using TLSv1." in h and "mx.b.test" in h for h in rec), rec
    wait_queue_empty(w)
    log = w.ga.log_text()
    sent = [l for l in log.splitlines() if "fac=delivery" in l and "event=sent" in l]
    # tls=TLSv1.3 or tls="TLSv1.3 with cipher ..."
    assert sent and re.search(r"\btls=\"?TLSv1\.[23]\b", sent[-1]), sent
    assert "relay=mx.b.test[" in sent[-1], sent


def test_greylisted_then_delivered(world):
    """The peer answers 451 4.7.1 to the first two attempts: the message
    is deferred, retried and delivered once; the queue drains."""
    w = world
    w.start_peer("greylist:2")
    w.godwit_a()
    mid = w.submit("user@peer.test", "greylisted")
    wait(w, lambda: mid in peer_ids(w), 30, "the greylisted message at the peer")
    wait_queue_empty(w)
    ids = peer_ids(w)
    assert ids.count(mid) == 1, ids
    attempts = [l for l in w.peer_log_text().splitlines() if " rcpt " in l]
    assert [l.split("reply=")[1] for l in attempts] == ["451", "451", "250"], attempts
    log = w.ga.log_text()
    assert "fac=delivery event=deferred" in log and "dsn=4.7.1" in log, log[-3000:]


def test_5xx_bounces_to_sender(world):
    """The peer answers 550 5.1.1 at RCPT: alice gets an RFC 3464 bounce
    from MAILER-DAEMON with a null envelope sender, naming the recipient,
    Action failed, Status 5.1.1, and the original Subject."""
    w = world
    w.start_peer("reject")
    w.godwit_a()
    subject = "this one bounces 5xx"
    w.submit("nobody@peer.test", subject)
    raw = wait_bounce(w)[0]
    check_bounce(raw, "nobody@peer.test", r"5\.1\.1", subject)
    wait_queue_empty(w)
    assert w.peer_messages() == []
    assert "fac=delivery event=bounced" in w.ga.log_text()


def test_unreachable_deferred_then_expired(world):
    """mx.dead.test refuses connections: the message is deferred (the
    queue shows it with last_error), retried, and bounced at the end of
    its lifetime with Action failed and a 4.4.x status."""
    w = world
    w.godwit_a(queue={"lifetime": "12s"})
    subject = "nobody home"
    t0 = time.monotonic()
    w.submit("user@dead.test", subject)

    def deferred():
        for e in w.queue():
            if e.get("state") == "deferred" and e.get("last_error"):
                return e
        return None
    e = wait(w, deferred, 15, "a deferred entry with last_error")
    assert e["sender"] in ("alice@a.test", "<alice@a.test>"), e
    assert e["attempts"] >= 1, e
    assert [r["addr"] for r in e["recipients"]] == ["user@dead.test"], e
    assert e["recipients"][0]["status"] == "pending", e
    assert isinstance(e["next_attempt"], (int, float)), e
    assert bounces(w.ga) == [], "bounced before the lifetime ran out"
    raw = wait_bounce(w, timeout=40)[0]
    took = time.monotonic() - t0
    assert took >= 11, f"bounced after {took:.1f}s, lifetime is 12s"
    check_bounce(raw, "user@dead.test", r"4\.4\.\d{1,3}", subject)
    wait_queue_empty(w)


def test_unreachable_address_times_out(world):
    """mx.gone.test's addresses belong to no host (no ARP/ND answer): the
    attempts fail within the connect timeout and the message is deferred,
    not lost, not bounced at once."""
    w = world
    w.godwit_a(outbound={"timeouts": {"connect": "2s"}})
    w.submit("user@gone.test", "gone")

    def deferred():
        for e in w.queue():
            if e.get("state") == "deferred" and e.get("last_error"):
                return e
        return None
    e = wait(w, deferred, 30, "a deferred entry")
    assert e["recipients"][0]["status"] == "pending", e
    assert bounces(w.ga) == []


def test_null_mx_bounces_at_once(world):
    """null.test publishes MX 0 . (RFC 7505): the submission is accepted,
    then bounced at once with Status 5.1.10."""
    w = world
    w.godwit_a()
    subject = "to a null mx"
    s = w.smtp_a()
    try:
        mid, data = w.message("user@null.test", subject)
        s.mail("alice@a.test")
        code, _ = s.rcpt("user@null.test")
        assert code == 250, code
        code, msg = s.data(data)
        assert code == 250, (code, msg)
    finally:
        s.quit()
    raw = wait_bounce(w, timeout=15)[0]
    check_bounce(raw, "user@null.test", r"5\.1\.10", subject)
    wait_queue_empty(w)


def test_backup_mx(world):
    """backup.test: MX 10 refuses connections, MX 20 is godwit b: the
    message goes to the backup at the first attempt."""
    w = world
    w.godwit_a()
    w.godwit_b()
    mid = w.submit("bob@backup.test", "via backup")
    raw = wait_bob(w, mid, timeout=20)
    assert mid.encode() in raw
    wait_queue_empty(w)
    assert bounces(w.ga) == []


def test_runner_killed_no_loss(world):
    """50 messages to a slow peer (0.4 s per message, at most 5
    connections); the queue runner is killed with SIGKILL mid-delivery;
    the parent starts a new one, and every message arrives. Duplicates are
    allowed only for deliveries the kill cut off between the peer's 250
    and the runner's record of it: at most one per connection."""
    w = world
    w.start_peer("accept", delay=0.4)
    g = w.godwit_a(outbound={"max_per_domain": 5})
    runner = wait(w, w.runner_pid, 10, "the queue runner process")
    mids = []
    s = w.smtp_a()
    try:
        for i in range(50):
            mid, data = w.message(f"user{i}@peer.test", f"crash {i}")
            refused = s.sendmail("alice@a.test", [f"user{i}@peer.test"], data)
            assert not refused, refused
            mids.append(mid)
    finally:
        s.quit()
    wait(w, lambda: len(w.peer_messages()) >= 3, 30, "the first deliveries")
    os.kill(runner, signal.SIGKILL)
    before = len(w.peer_messages())
    assert before < 50, "all delivered before the kill: the test proves nothing"
    wait(w, lambda: (p := w.runner_pid()) and p != runner, 15,
         "a new queue runner")
    assert g.running(), "the parent died with its runner"
    wait(w, lambda: set(mids) <= set(peer_ids(w)), 60,
         "all 50 messages at the peer")
    ids = peer_ids(w)
    dups = len(ids) - len(set(ids))
    missing = set(mids) - set(ids)
    assert not missing, f"lost {len(missing)} of 50"
    assert dups <= 5, f"{dups} duplicate(s) (peer had {before} at the kill)"
    wait_queue_empty(w)
    print(f"runner kill: {before} delivered before, {dups} duplicate(s)")


def _age(pid):
    """Seconds since process pid started (from /proc, in clock ticks)."""
    with open(f"/proc/{pid}/stat") as f:
        start = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as f:
        up = float(f.read().split()[0])
    return up - start / os.sysconf("SC_CLK_TCK")


def test_runner_restarts_resolve_and_leave_nothing(world):
    """The queue runner killed with SIGKILL eight times, each time with
    mail to ten domains that share one MX host waiting for it, so the
    new runner starts ten route lookups (twenty address lookups of one
    host) the moment it starts, while its own threads start too. Every
    new runner must resolve at once (libunbound's timeout is 60 s; each
    round here waits 25 s at most), the runner must have no child process
    (libunbound's worker is a thread: a worker forked from the threaded
    runner inherited locks held by other threads and hung, at its first
    lookup or at its exit), and nothing of the killed runners may be
    left in godwit's process group."""
    w = world
    w.start_peer("accept", delay=0.1)
    g = w.godwit_a(outbound={"max_per_domain": 2})
    mids = []
    runner = wait(w, w.runner_pid, 10, "the queue runner process")
    for rnd in range(8):
        if rnd > 0:
            # it delivered the last round, so it has looked up routes
            kids = [c for t in os.listdir(f"/proc/{runner}/task")
                    for c in open(f"/proc/{runner}/task/{t}/children").read().split()]
            assert not kids, f"the queue runner has child processes: {kids}"
        s = w.smtp_a()
        try:
            for i in range(SHARED_MX):
                to = f"r{rnd}-{i}@s{i}.test"
                mid, data = w.message(to, f"restart {rnd} {i}")
                assert not s.sendmail("alice@a.test", [to], data)
                mids.append(mid)
        finally:
            s.quit()
        # killed with this round's mail queued: the next runner starts
        # with it (the parent replaces a runner that lived 1 s at once)
        os.kill(runner, signal.SIGKILL)
        runner = wait(w, lambda: (p := w.runner_pid()) and p != runner and p,
                      15, "a new queue runner")
        wait(w, lambda: set(mids) <= set(peer_ids(w)), 25,
             f"round {rnd}: every message at the peer")
        # the parent replaces at once only a runner that lived 1 s: the
        # next kill must find one that did
        wait(w, lambda: _age(runner) >= 1.05, 5,
             "the runner to have lived 1 s")
    assert g.running(), "the parent died"
    log = g.log_text()
    assert "timed out looking up" not in log, \
        [l for l in log.splitlines() if "timed out looking up" in l][:3]
    # a killed runner's helpers die with it (SIGKILL leaves them no time
    # to linger, but give the kernel a moment to reap)
    try:
        wait_for(lambda: not g.group_strays(), 5, interval=0.2,
                 what="no stray process in godwit's group")
    except AssertionError:
        raise AssertionError(f"stray processes: {g.group_strays()}") from None
    wait_queue_empty(w)


def test_queue_hold_release_flush_delete(world):
    """A held message stays put through flush; release + flush delivers
    it. delete --bounce removes a message and bounces it to alice."""
    w = world
    w.start_peer("tempfail")
    w.godwit_a()
    mid = w.submit("held@peer.test", "to be held")

    def entry(rcpt, state):
        for e in w.queue():
            if e.get("state") == state and \
                    any(r["addr"] == rcpt for r in e["recipients"]):
                return e
        return None
    e = wait(w, lambda: entry("held@peer.test", "deferred"), 15,
             "the message deferred")
    qid = e["id"]
    w.ga.admin("queue", "hold", qid)
    # an attempt under way when hold came ends in hold too
    wait(w, lambda: entry("held@peer.test", "hold"), 10, "the message held")

    w.start_peer("accept")
    w.ga.admin("queue", "flush")
    # The flush made everything due at once: a held message taken for
    # due would be on its way before a message submitted after the flush
    # (the runner activates due mail on its next turn, new mail when it
    # sees it in incoming/). That one arriving proves the runner got past
    # the point where the held one would have gone.
    probe = w.submit("probe@peer.test", "after the flush")
    wait(w, lambda: probe in peer_ids(w), 15, "the probe at the peer")
    wait(w, lambda: not any(any(r["addr"] == "probe@peer.test"
                                for r in e["recipients"]) for e in w.queue()),
         10, "the probe out of the queue")
    assert mid not in peer_ids(w), "a held message was delivered"
    assert entry("held@peer.test", "hold"), w.queue_dump()

    w.ga.admin("queue", "release", qid)
    w.ga.admin("queue", "flush")
    wait(w, lambda: mid in peer_ids(w), 15, "the released message at the peer")
    wait_queue_empty(w)
    assert peer_ids(w).count(mid) == 1

    # delete --bounce
    w.start_peer("tempfail")
    subject = "deleted by the admin"
    w.submit("deleted@peer.test", subject)
    e = wait(w, lambda: entry("deleted@peer.test", "deferred"), 15,
             "the second message deferred")
    w.ga.admin("queue", "delete", e["id"], "--bounce")
    raw = wait_bounce(w, timeout=15)[0]
    m, per_msg, per_rcpt, orig = bounce_parts(raw)
    assert raw.startswith(b"Return-Path: <>"), raw[:200]
    assert any("deleted@peer.test" in (b.get("Final-Recipient") or "")
               for b in per_rcpt), [dict(b.items()) for b in per_rcpt]
    assert subject in orig
    wait_queue_empty(w)
    assert len(bounces(w.ga)) == 1
