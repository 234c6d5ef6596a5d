"""
Outbound delivery against a real Postfix 3.7: interoperability
both ways and Postfix as an authenticating smarthost.

Each test builds a network lab (netlab.py): hosts a (alice's godwit,
domain a.test), b (bob's godwit, domain b.test), p (a private Postfix,
postfix_peer.py) and a DNS server (unbound) answering

    a.test   MX 10 mx.a.test  (A, AAAA of a)
    b.test   MX 10 mx.b.test  (A, AAAA of b)
    p.test   MX 10 mx.p.test  (A, AAAA of p)   Postfix: carol@p.test
    far.test: no records at all                Postfix: dave@far.test

far.test exists only in Postfix's virtual mailbox table, so mail for
dave@far.test can only arrive by going through Postfix as a smarthost:
without the smarthost godwit could not even find the domain.

  godwit -> Postfix   alice submits to godwit a for carol@p.test; godwit
                      finds the MX in the lab DNS, delivers with STARTTLS
                      (Postfix offers it with a self-signed certificate)
  Postfix -> godwit   a message injected into Postfix (port 25, the root
                      namespace is in its mynetworks) for bob@b.test;
                      Postfix's smtp(8) finds the MX in the lab DNS and
                      delivers to godwit b (which offers STARTTLS)
  smarthost           godwit a relays everything through Postfix on 587
                      (STARTTLS) or 465 (implicit TLS), verifying
                      Postfix's certificate (its subjectAltName carries the
                      IP address) against it as ca_file, with AUTH from a
                      credentials file; a wrong password defers the
                      message (535 in last_error), nothing is lost

Outcomes first (the message in the right Maildir, the queue empty or the
message deferred), then the log lines that show how it got there. Every
wait is bounded.
"""

import json
import os
import re
import shutil
import smtplib
import sys
import time

import pytest

from conftest import PASSWORD, client_tls_context, wait_for
from smtpclient import crlf

sys.path.insert(0, os.path.dirname(__file__))
import netlab  # noqa: E402
import postfix_peer  # noqa: E402

RETRY = {"retry_min": "1s", "retry_max": "2s", "lifetime": "2m"}
WAIT = 30  # seconds for any one delivery


def _postfix_available():
    for prog in ("postfix", "postconf", "postqueue", "saslpasswd2", "openssl"):
        if shutil.which(prog) is None and not os.path.exists(f"/usr/sbin/{prog}"):
            return False, f"{prog} is not installed"
    mods = [d for d in ("/usr/lib/x86_64-linux-gnu/sasl2",
                        "/usr/lib/aarch64-linux-gnu/sasl2", "/usr/lib/sasl2")
            if os.path.isdir(d)]
    for lib, pkg in (("libplain.so", "libsasl2-modules"),
                     ("libsasldb.so", "libsasl2-modules-db")):
        if not any(os.path.exists(os.path.join(d, lib)) for d in mods):
            return False, f"{pkg} is not installed ({lib})"
    return True, ""


@pytest.fixture
def lab(tmp_path):
    for ok, why in (netlab.netns_available(), netlab.unbound_available(),
                    _postfix_available()):
        if not ok:
            pytest.skip(f"postfix lab unavailable: {why}")
    with netlab.Lab(workdir=tmp_path / "lab") as l:
        yield l


class World:
    def __init__(self, lab, make_godwit, cert, tmp_path):
        self.lab = lab
        self.make_godwit = make_godwit
        self.cert = cert
        self.tmp = tmp_path
        self.a = lab.host("a")
        self.b = lab.host("b")
        self.p = lab.host("p")
        a, b, p = self.a, self.b, self.p
        # dns() before Postfix starts: `ip netns exec` bind-mounts
        # /etc/netns/NS/resolv.conf only if it exists then
        self.dns = lab.dns([
            "a.test. MX 10 mx.a.test.",
            f"mx.a.test. A {a.ip4}",
            f"mx.a.test. AAAA {a.ip6}",
            "b.test. MX 10 mx.b.test.",
            f"mx.b.test. A {b.ip4}",
            f"mx.b.test. AAAA {b.ip6}",
            "p.test. MX 10 mx.p.test.",
            f"mx.p.test. A {p.ip4}",
            f"mx.p.test. AAAA {p.ip6}",
        ])
        self.pf = postfix_peer.PostfixPeer(
            p, hostname="mx.p.test",
            users=("carol@p.test", "dave@far.test", "relayuser@p.test"),
            sasl_users={"relayuser@p.test": "secret"})
        self.pf.start()
        self.ga = None
        self.gb = None
        self.seq = 0

    def close(self):
        self.pf.cleanup()

    def godwit_a(self, smarthost=None, start=True):
        """alice's godwit in host a: mx on 25, submission (STARTTLS, AUTH)
        on 587, the lab DNS as its resolver."""
        crt, key = self.cert
        o = {
            "hostname": "mx.a.test",
            "tls": {"certificates": [{"cert": str(crt), "key": str(key)}]},
            "dns": {"resolver": [self.dns.ip4]},
            "queue": dict(RETRY),
            "outbound": {"timeouts": {"connect": "5s"}},
            "listeners": [
                {"name": "mx", "protocol": "smtp",
                 "listen": ["0.0.0.0:25", "[::]:25"], "greet_pause": 0},
                {"name": "submission", "protocol": "submission",
                 "listen": ["0.0.0.0:587", "[::]:587"]},
            ],
        }
        if smarthost:
            o["smarthost"] = smarthost
        self.ga = self.make_godwit(o, start=start, users=("alice",),
                                   aliases={}, netns=self.a, domain="a.test")
        return self.ga

    def godwit_b(self):
        """bob's godwit in host b: mx on 25 with STARTTLS."""
        crt, key = self.cert
        o = {
            "hostname": "mx.b.test",
            "tls": {"certificates": [{"cert": str(crt), "key": str(key)}]},
            "listeners": [
                {"name": "mx", "protocol": "smtp",
                 "listen": ["0.0.0.0:25", "[::]:25"], "greet_pause": 0},
            ],
        }
        self.gb = self.make_godwit(o, users=("bob",), aliases={},
                                   netns=self.b, domain="b.test")
        return self.gb

    def message(self, sender, to, marker):
        self.seq += 1
        mid = f"<pf-{os.getpid()}-{time.monotonic_ns()}-{self.seq}@test>"
        return mid, crlf(f"From: <{sender}>\nTo: <{to}>\n"
                         f"Subject: postfix interop {marker}\n"
                         f"Message-ID: {mid}\n"
                         "Date: Mon, 23 Nov 2026 12:00:00 +0000\n\n"
                         f"{marker}\n")

    def submit_a(self, to, marker):
        """alice submits one message to godwit a (587, STARTTLS, AUTH)
        from the root namespace; returns its Message-ID."""
        mid, data = self.message("alice@a.test", to, marker)
        s = smtplib.SMTP(self.a.ip4, 587, local_hostname="client.test",
                         timeout=30)
        try:
            s.starttls(context=client_tls_context())
            s.login("alice@a.test", PASSWORD)
            refused = s.sendmail("alice@a.test", [to], data)
        finally:
            s.quit()
        assert not refused, refused
        return mid

    def inject_postfix(self, sender, to, marker):
        """One message into Postfix's port 25 from the root namespace
        (198.18.X.1: inside Postfix's mynetworks, so it may relay)."""
        mid, data = self.message(sender, to, marker)
        s = smtplib.SMTP(self.p.ip4, 25, local_hostname="client.test",
                         timeout=30)
        try:
            refused = s.sendmail(sender, [to], data)
        finally:
            s.quit()
        assert not refused, refused
        return mid

    def queue(self, g):
        p = g.run("queue", "list", "--json", check=True)
        return [json.loads(l) for l in p.stdout.splitlines() if l.strip()]

    def wait_queue_empty(self, g, timeout=WAIT):
        last = []

        def pred():
            last[:] = self.queue(g)
            return not last
        try:
            wait_for(pred, timeout, interval=0.3, what="godwit's queue to drain")
        except AssertionError as e:
            raise AssertionError(f"{e}; queue: {json.dumps(last)[:3000]}\n"
                                 + g.log_text()[-3000:]) from None

    def credentials(self, text):
        f = self.tmp / f"credentials-{self.seq}"
        self.seq += 1
        f.write_text(text + "\n")
        os.chmod(f, 0o600)
        return str(f)


@pytest.fixture
def world(lab, make_godwit, cert, tmp_path):
    w = World(lab, make_godwit, cert, tmp_path)
    try:
        yield w
    finally:
        w.close()


def received_by_postfix(raw):
    """The Received: header Postfix put on top of a message it took
    ("from ... by mx.p.test (Postfix) with ESMTPS id QUEUEID ...")."""
    text = raw.decode("utf-8", "replace")
    m = re.search(r"^Received: (.*?\n)(?=\S)", text, re.M | re.S)
    assert m, f"no Received header:\n{text[:2000]}"
    return re.sub(r"\s+", " ", m.group(1))


# --------------------------------------------------- godwit -> Postfix ---


def test_godwit_delivers_to_postfix_mx_with_starttls(world, uniq):
    w = world
    ga = w.godwit_a()
    w.submit_a("carol@p.test", uniq)
    msg = w.pf.wait_message("carol@p.test", uniq, timeout=WAIT)
    w.wait_queue_empty(ga)
    raw = msg.read_bytes()
    rcv = received_by_postfix(raw)
    # Postfix took it over TLS (smtpd_tls_received_header) from host a
    assert "by mx.p.test (Postfix)" in rcv, rcv
    assert re.search(r"with ESMTPS id [0-9A-F]+", rcv), rcv
    assert re.search(r"\(using TLSv1\.[23] ", rcv), rcv
    assert re.search(r"\[(IPv6:)?(%s|%s)\]" % (re.escape(w.a.ip4),
                                               re.escape(w.a.ip6)), rcv), rcv
    assert b"Delivered-To: carol@p.test" in raw
    # ... and the message godwit sent is the one alice submitted
    assert b"Subject: postfix interop " + uniq.encode() in raw
    qid = re.search(r"with ESMTPS id ([0-9A-F]+)", rcv).group(1)
    pflog = w.pf.log_text()
    assert re.search(r"TLS connection established from \S*\[(%s|%s)\]" % (
        re.escape(w.a.ip4), re.escape(w.a.ip6)), pflog), pflog[-3000:]
    assert re.search(rf"{qid}: to=<carol@p.test>.*status=sent", pflog), pflog[-3000:]
    # godwit's own record of it: the sent line names Postfix as the relay
    # (TLS is proven above by Postfix's side)
    log = ga.log_text()
    m = re.search(r"fac=delivery event=sent .*to=<?carol@p\.test>?.*", log)
    assert m, log[-3000:]
    assert "dsn=2." in m.group(0), m.group(0)
    assert w.p.ip4 in m.group(0) or w.p.ip6 in m.group(0), m.group(0)


# --------------------------------------------------- Postfix -> godwit ---


def test_postfix_delivers_to_godwit_mx(world, uniq):
    w = world
    gb = w.godwit_b()
    w.inject_postfix("sender@p.test", "bob@b.test", uniq)
    got = wait_for(lambda: gb.find_messages(uniq), WAIT,
                   what="the message from Postfix in bob's Maildir")
    raw = got[0].read_bytes()
    assert len(got) == 1, got
    assert b"Subject: postfix interop " + uniq.encode() in raw
    # godwit's Received header names Postfix's host as the client
    head = raw.split(b"\n\n", 1)[0].decode("utf-8", "replace")
    assert re.search(r"^Received: from mx\.p\.test \(\S+ \[[0-9a-f.:]+\]\)\s+"
                     r"by mx\.b\.test \(godwit\) with ESMTPS ", head, re.M), head
    assert w.p.ip4 in head or w.p.ip6 in head, head
    # Postfix: relayed through godwit b's MX found in the lab DNS, over TLS
    m = w.pf.wait_log(r"postfix/smtp\[\d+\]: [0-9A-F]+: to=<bob@b\.test>, "
                      r"relay=mx\.b\.test\[[^\]]+\]:25,.*status=sent \(250", 10)
    assert m
    pflog = w.pf.log_text()
    assert re.search(r"TLS connection established to mx\.b\.test\[[^\]]+\]:25",
                     pflog), pflog[-3000:]
    # nothing left in Postfix's queue
    wait_for(lambda: not w.pf.queue_ids(), 10, what="Postfix's queue to drain")


# --------------------------------------------------------- smarthost ---


def _smarthost(w, port, tls, secret="secret"):
    return {"host": f"[{w.p.ip4}]", "port": port, "tls": tls,
            "verify": True, "ca_file": str(w.pf.cert),
            "credentials": w.credentials(f"relayuser@p.test:{secret}")}


def _check_relayed(w, ga, uniq, service):
    msg = w.pf.wait_message("dave@far.test", uniq, timeout=WAIT)
    w.wait_queue_empty(ga)
    raw = msg.read_bytes()
    rcv = received_by_postfix(raw)
    # ESMTPSA: authenticated and TLS (RFC 3848)
    m = re.search(r"from \S+ \(\S* ?\[([0-9a-f.:]+)\]\) .*by mx\.p\.test "
                  r"\(Postfix\) with ESMTPSA id ([0-9A-F]+)", rcv)
    assert m, rcv
    assert m.group(1) == w.a.ip4, rcv
    assert "(Authenticated sender: relayuser@p.test)" in rcv, rcv
    assert re.search(r"\(using TLSv1\.[23] ", rcv), rcv
    qid = m.group(2)
    pflog = w.pf.log_text()
    assert re.search(
        rf"postfix/{service}/smtpd\[\d+\]: {qid}: client=\S+\[{re.escape(w.a.ip4)}\], "
        r"sasl_method=(PLAIN|LOGIN), sasl_username=relayuser@p\.test", pflog), \
        pflog[-3000:]
    assert re.search(rf"{qid}: to=<dave@far\.test>, relay=virtual.*status=sent",
                     pflog), pflog[-3000:]
    log = ga.log_text()
    line = re.search(r"fac=delivery event=sent .*to=<?dave@far\.test>?.*", log)
    assert line, log[-3000:]
    assert w.p.ip4 in line.group(0), line.group(0)


def test_smarthost_587_starttls_auth(world, uniq):
    w = world
    ga = w.godwit_a(smarthost=_smarthost(w, 587, "starttls"))
    w.submit_a("dave@far.test", uniq)
    _check_relayed(w, ga, uniq, "submission")


def test_smarthost_465_implicit_tls_auth(world, uniq):
    w = world
    ga = w.godwit_a(smarthost=_smarthost(w, 465, "implicit"))
    w.submit_a("dave@far.test", uniq)
    _check_relayed(w, ga, uniq, "smtps")


def test_smarthost_wrong_password_defers(world, uniq):
    """535 5.7.8 from the smarthost is our configuration's fault, not the
    message's: it stays queued for a retry (as Postfix does by default,
    smtp_sasl_auth_soft_bounce = yes) instead of bouncing, and the
    operator sees what the smarthost really said (535) in last_error."""
    w = world
    ga = w.godwit_a(smarthost=_smarthost(w, 587, "starttls", secret="wrong"))
    w.submit_a("dave@far.test", uniq)
    last = []

    def deferred():
        last[:] = w.queue(ga)
        return [q for q in last
                if q.get("attempts", 0) >= 1 and q.get("last_error")]
    try:
        got = wait_for(deferred, WAIT, interval=0.3,
                       what="a failed attempt on the message")
    except AssertionError as e:
        raise AssertionError(f"{e}; queue: {json.dumps(last)[:3000]}\n"
                             + ga.log_text()[-3000:]) from None
    q = got[0]
    assert q["sender"] == "alice@a.test", q
    # racy by nature: the runner may be on its next attempt already
    assert q["state"] in ("deferred", "active", "incoming"), q
    assert [r["addr"] for r in q["recipients"]] == ["dave@far.test"], q
    assert all(r["status"] == "pending" for r in q["recipients"]), q
    # Postfix saw the failed AUTH from host a and took nothing
    pflog = w.pf.log_text()
    assert re.search(rf"\[{re.escape(w.a.ip4)}\]: SASL (PLAIN|LOGIN) "
                     r"authentication failed", pflog), pflog[-3000:]
    assert not w.pf.find_messages("dave@far.test", uniq)
    # not bounced: the runner logged the attempt's outcome as deferred
    # (it decides on reports in the same step, and logs each one it
    # makes: none), nothing came back to alice, the message is still there
    wait_for(lambda: re.search(
        r"fac=delivery event=deferred .*to=<?dave@far\.test>?",
        ga.log_text()), WAIT, what="the deferral logged")
    log = ga.log_text()
    assert "fac=delivery event=bounced" not in log, log[-3000:]
    assert "fac=delivery event=dsn" not in log, log[-3000:]
    assert not ga.maildir_files("alice@a.test"), "bounced to alice"
    assert any(x["id"] == q["id"] for x in w.queue(ga))
    # the smarthost's own reply, not a code godwit made up
    assert "535" in q["last_error"], \
        f"last_error does not carry the smarthost's 535: {q['last_error']!r}"


def test_smarthost_certificate_mismatch_defers(world, uniq):
    """verify: true with a CA that did not sign Postfix's certificate (the
    conftest one): the TLS handshake must fail, nothing is sent, and the
    password is never offered."""
    w = world
    sh = _smarthost(w, 587, "starttls")
    sh["ca_file"] = str(w.cert[0])
    ga = w.godwit_a(smarthost=sh)
    w.submit_a("dave@far.test", uniq)
    last = []

    def deferred():
        last[:] = w.queue(ga)
        return [q for q in last
                if q.get("attempts", 0) >= 1 and q.get("last_error")]
    try:
        got = wait_for(deferred, WAIT, interval=0.3, what="the message deferred")
    except AssertionError as e:
        raise AssertionError(f"{e}; queue: {json.dumps(last)[:3000]}\n"
                             + ga.log_text()[-3000:]) from None
    assert "535" not in got[0]["last_error"], got[0]
    assert not w.pf.find_messages("dave@far.test", uniq)
    pflog = w.pf.log_text()
    assert "sasl_username=relayuser@p.test" not in pflog, pflog[-3000:]
    assert not ga.maildir_files("alice@a.test")
