"""
`godwit doctor` (src/ops/doctor*.c) against the real daemon: no FAIL on a
healthy test server (its DNS offline, or served with the records `godwit
dns` prints), and a FAIL, with exit code 1, for each thing the issue
names: trusted_networks 0.0.0.0/0 (in the configuration and by the live
relay probe), an expired certificate, a listener that is down; every
network step bounded by --timeout (a port that never greets).
"""

import datetime
import os
import re
import socket
import subprocess
import time

import pytest

from conftest import HOSTNAME, cert_days_left, free_port, wait_for

TIMEOUT = "2"


def doctor(g, *args, code=None, outbound=True):
    """Runs the doctor; returns (exit code, [(status, check, text)])."""
    target = ["--outbound-target", f"127.0.0.1:{g.port}"] if outbound else []
    p = g.run("doctor", "--timeout", TIMEOUT, *target, *args, timeout=120)
    assert p.stderr == "", p.stderr
    lines = []
    for l in p.stdout.splitlines():
        m = re.fullmatch(r"(OK|WARN|FAIL) +(\S+) +(.*)", l)
        if m is None:
            assert re.fullmatch(r"\d+ checks? FAILED", l), l
            continue
        lines.append(m.groups())
    assert lines, p.stdout
    if os.environ.get("DOCTOR_SHOW"):
        print(p.stdout)
    if code is not None:
        assert p.returncode == code, p.stdout
    return p.returncode, lines


def fails(lines, check=None):
    return [t for s, c, t in lines if s == "FAIL" and check in (None, c)]


def has(lines, status, check, pattern):
    return any(s == status and c == check and re.search(pattern, t)
               for s, c, t in lines)


def day_words(n):
    return f"{n} day" if n == 1 else f"{n} days"


def tls_config(cert):
    crt, key = cert
    return {"tls": {"certificates": [{"cert": str(crt), "key": str(key)}]}}


def healthy(make_godwit, cert, extra=None):
    """A running godwit: the default MX on both loopbacks and a
    submissions listener (implicit TLS) beside it."""
    over = tls_config(cert)
    if extra:
        over.update(extra)
    g = make_godwit(over, start=False)
    port = free_port()
    g.config["listeners"].append(
        {"name": "submissions", "protocol": "submissions",
         "listen": [f"127.0.0.1:{port}", f"[::1]:{port}"]})
    g.write_config()
    g.start()
    return g


def test_healthy_server_offline_dns(make_godwit, cert):
    g = healthy(make_godwit, cert)
    t0 = time.time()
    code, lines = doctor(g, code=0)
    t1 = time.time()
    assert fails(lines) == []
    subs = [l for l in g.config["listeners"] if l["name"] == "submissions"][0]
    sport = subs["listen"][0].rsplit(":", 1)[1]
    # every listener on both families, with its greeting (TLS first on 465)
    assert has(lines, "OK", "listener", rf"^mx \(smtp\) 127\.0\.0\.1:{g.port}: 220 ")
    assert has(lines, "OK", "listener", rf"^mx \(smtp\) \[::1\]:{g.port}: 220 ")
    assert has(lines, "OK", "listener",
               rf"^submissions \(submissions\) \[::1\]:{sport} TLS: 220 ")
    # the certificate: self-signed and 2 days left are warnings only
    assert has(lines, "OK", "tls", re.escape(f"a certificate names {HOSTNAME}"))
    assert any(has(lines, "WARN", "tls", rf"^{re.escape(str(cert[0]))}: "
                   rf"expires in {day_words(n)} \(\d{{4}}-\d\d-\d\d \d\d:\d\d "
                   r"UTC\): renew it now$")
               for n in cert_days_left(cert[0], t0, t1)), lines
    assert has(lines, "WARN", "tls", r"not issued by a CA")
    # STARTTLS on the MX and TLS on 465 serve the configured certificate
    assert not any("STARTTLS" in t or "serves a certificate" in t
                   for s, c, t in lines), lines
    # not a relay, by the configuration and by trying
    assert has(lines, "OK", "relay", r"trusted_networks is empty")
    assert has(lines, "OK", "relay", r"the 10 classic relay tricks .* were all refused")
    # DNS offline (the test resolver refuses everything): warnings
    assert has(lines, "OK", "outbound", rf"127\.0\.0\.1:{g.port}: connected")
    assert has(lines, "OK", "queue", r"^deferred: empty")
    # the probes sent no mail: nothing queued, nothing delivered
    assert g.queue_files() == []


def test_open_relay_fails(make_godwit, cert):
    g = healthy(make_godwit, cert,
                {"smtp": {"max_message_size": "1M", "max_recipients": 100,
                          "trusted_networks": ["0.0.0.0/0"]}})
    code, lines = doctor(g, code=1)
    relay = fails(lines, "relay")
    # the configuration ...
    assert any("smtp.trusted_networks: 0.0.0.0/0 is wider than any private "
               "range" in t for t in relay), lines
    # ... and the running server: RCPT to outside accepted over IPv4
    assert any(re.search(r"OPEN RELAY: RCPT TO:<doctor-probe@example\.com> "
                         r"accepted from 127\.0\.0\.1 with MAIL "
                         r"FROM:<doctor@example\.test>", t) for t in relay), lines
    assert any("MAIL FROM:<doctor@example.com>" in t for t in relay), lines
    assert g.queue_files() == [], "the probe must never send DATA"


def test_trusted_private_network_is_not_a_relay_fail(make_godwit, cert):
    """127.0.0.0/8 trusted: the probe's RCPT is accepted, but that is
    what the configuration says for loopback: a warning, no FAIL."""
    g = healthy(make_godwit, cert,
                {"smtp": {"max_message_size": "1M", "max_recipients": 100,
                          "trusted_networks": ["127.0.0.0/8"]}})
    code, lines = doctor(g, code=0)
    assert has(lines, "OK", "relay", r"127\.0\.0\.0/8 is a private network")
    assert has(lines, "WARN", "relay", r"a trusted network; probe from outside")


def make_cert(d, days_from, days_to, cn=HOSTNAME):
    """A self-signed certificate valid from now+days_from to now+days_to."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    crt = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
           .public_key(key.public_key()).serial_number(x509.random_serial_number())
           .not_valid_before(now + datetime.timedelta(days=days_from))
           .not_valid_after(now + datetime.timedelta(days=days_to))
           .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]),
                          critical=False)
           .sign(key, hashes.SHA256()))
    d.mkdir(parents=True, exist_ok=True)
    kp, cp = d / "key.pem", d / "cert.pem"
    kp.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    os.chmod(kp, 0o600)
    cp.write_bytes(crt.public_bytes(serialization.Encoding.PEM))
    os.chmod(d, 0o755)
    return cp, kp


def test_expired_certificate_fails(make_godwit, cert, tmp_path):
    crt, key = make_cert(tmp_path / "expired", -30, -1)
    g = healthy(make_godwit, cert, tls_config((crt, key)))
    code, lines = doctor(g, code=1)
    assert has(lines, "FAIL", "tls", rf"^{re.escape(str(crt))}: EXPIRED on "
               r"\d{4}-\d\d-\d\d")
    # and the running server serves it, on 465 (implicit TLS) and through
    # STARTTLS on the MX
    assert has(lines, "FAIL", "tls", r"^\[::1\]:\d+ serves a certificate "
               r"that EXPIRED on ")
    assert has(lines, "FAIL", "tls", rf"^\[::1\]:{g.port} serves a "
               r"certificate that EXPIRED on ")
    # a certificate for another name fails too
    crt2, key2 = make_cert(tmp_path / "other", -1, 90, cn="other.example")
    g.update_config(tls_config((crt2, key2)))
    t0 = time.time()
    code, lines = doctor(g, code=1)
    t1 = time.time()
    assert has(lines, "FAIL", "tls", rf"no certificate names the host name "
               rf"{re.escape(HOSTNAME)}")
    assert any(has(lines, "OK", "tls", rf"valid until .* \({n} days\)$")
               for n in cert_days_left(crt2, t0, t1)), lines
    # the daemon was not reloaded: it still serves the old one
    assert has(lines, "FAIL", "tls", r"^127\.0\.0\.1:\d+ serves a "
               r"certificate that EXPIRED")
    g.reload()

    def served_new():
        _, lines = doctor(g)
        return not fails(lines, "listener") and not any(
            "serves a certificate" in t for s, c, t in lines)
    wait_for(served_new, 20, interval=0.5, what="the new certificate served")


def with_imap(make_godwit, cert, extra=None):
    """healthy() plus IMAP on 143-style (STARTTLS) and 993-style
    (implicit TLS) listeners and a POP3 one with STLS, on both
    loopbacks."""
    over = tls_config(cert)
    if extra:
        over.update(extra)
    g = make_godwit(over, start=False)
    g.imap_port, g.imaps_port, g.pop3_port = (free_port(), free_port(),
                                              free_port())
    g.config["listeners"] += [
        {"name": "imap", "protocol": "imap",
         "listen": [f"127.0.0.1:{g.imap_port}", f"[::1]:{g.imap_port}"]},
        {"name": "imaps", "protocol": "imaps",
         "listen": [f"127.0.0.1:{g.imaps_port}", f"[::1]:{g.imaps_port}"]},
        {"name": "pop3", "protocol": "pop3",
         "listen": [f"127.0.0.1:{g.pop3_port}"]},
    ]
    g.write_config()
    g.start()
    return g


def test_imap_listeners(make_godwit, cert):
    """IMAP greets "* OK" (TLS first on imaps); STARTTLS is offered on
    imap and serves the configured certificate: no tls line for it."""
    g = with_imap(make_godwit, cert)
    code, lines = doctor(g, code=0)
    for host in (r"127\.0\.0\.1", r"\[::1\]"):
        assert has(lines, "OK", "listener",
                   rf"^imap \(imap\) {host}:{g.imap_port}: \* OK")
        assert has(lines, "OK", "listener",
                   rf"^imaps \(imaps\) {host}:{g.imaps_port} TLS: \* OK")
    assert has(lines, "OK", "listener",
               rf"^pop3 \(pop3\) 127\.0\.0\.1:{g.pop3_port}: \+OK")
    assert not any(c == "tls" and (str(g.imap_port) in t or
                                   str(g.imaps_port) in t or
                                   str(g.pop3_port) in t)
                   for s, c, t in lines), lines


def test_imap_starttls_serves_expired(make_godwit, cert, tmp_path):
    """An expired certificate is found through STARTTLS on imap, STLS
    on pop3, and on imaps, each by its address: the probes reached TLS."""
    crt, key = make_cert(tmp_path / "expired", -30, -1)
    g = with_imap(make_godwit, cert, tls_config((crt, key)))
    code, lines = doctor(g, code=1)
    for port in (g.imap_port, g.imaps_port):
        for host in (r"127\.0\.0\.1", r"\[::1\]"):
            assert has(lines, "FAIL", "tls", rf"^{host}:{port} serves a "
                       r"certificate that EXPIRED on "), (port, lines)
    assert has(lines, "FAIL", "tls", rf"^127\.0\.0\.1:{g.pop3_port} serves "
               r"a certificate that EXPIRED on ")


def test_listener_down_fails(make_godwit, cert):
    g = healthy(make_godwit, cert)
    down = free_port()
    # the file gains a listener the running daemon does not serve
    g.config["listeners"].append({"name": "pop3", "protocol": "pop3",
                                  "listen": [f"127.0.0.1:{down}"]})
    g.write_config()
    code, lines = doctor(g, code=1)
    assert fails(lines, "listener") == [
        f"pop3 (pop3) 127.0.0.1:{down}: cannot connect: Connection refused; "
        "is `godwit serve` running, and does a firewall let it in?"]
    assert has(lines, "OK", "listener", rf"^mx \(smtp\) \[::1\]:{g.port}: 220 ")


def test_silent_port_bounded(make_godwit, cert):
    """A port that accepts and never greets: FAIL within the timeout, the
    whole run bounded, never a hang."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    port = srv.getsockname()[1]
    try:
        g = make_godwit(tls_config(cert), start=False)
        g.config["listeners"] = [{"name": "mx", "protocol": "smtp",
                                  "listen": [f"127.0.0.1:{port}"],
                                  "greet_pause": 0}]
        g.write_config()
        t0 = time.monotonic()
        p = g.run("doctor", "--timeout", "1", "--outbound-target",
                  f"127.0.0.1:{port}", timeout=60)
        took = time.monotonic() - t0
    finally:
        srv.close()
    assert p.returncode == 1, p.stdout
    assert re.search(rf"FAIL listener +mx \(smtp\) 127\.0\.0\.1:{port}: "
                     r"connected, but no greeting \"220\" within 1000 ms",
                     p.stdout), p.stdout
    assert took < 30, took


def test_usage(make_godwit):
    g = make_godwit(start=False)
    assert g.run("doctor", "--timeout", "x").returncode == 2
    assert g.run("doctor", "--bogus").returncode == 2


def zone_of(text):
    """`godwit dns` output -> spf_dns_server zone data {name: [{T: v}]}."""
    zone = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith(";"):
            continue
        name, ttl, cls, rtype, rdata = line.split(None, 4)
        assert cls == "IN", line
        if rtype == "MX":
            pref, host = rdata.split()
            value = [int(pref), host]
        elif rtype == "TXT":
            value = re.findall(r'"((?:[^"\\]|\\.)*)"', rdata)
        else:
            value = rdata
        zone.setdefault(name.rstrip("."), []).append({rtype: value})
    return zone


@pytest.fixture
def dns_server():
    from spf_dns_server import SuiteDNS
    s = SuiteDNS(free_port())
    s.start()
    yield s
    s.stop()


def test_published_records(make_godwit, cert, dns_server):
    g = healthy(make_godwit, cert, {
        "dns": {"resolver": [f"127.0.0.1@{dns_server.port}"]}})
    g.admin("dkim", "keygen", "example.test", "--selector", "doc")
    out = g.admin("dns", "example.test").stdout
    zone = zone_of(out)
    dns_server.set_zone(zone)
    code, lines = doctor(g, code=0)
    assert fails(lines) == []
    dns = [(s, t) for s, c, t in lines if c == "dns"]
    assert ("OK", f"MX of example.test.: {HOSTNAME}") in dns, dns
    for what, name in [("v=spf1", "example.test."),
                       ("v=DMARC1", "_dmarc.example.test."),
                       ("v=TLSRPTv1", "_smtp._tls.example.test."),
                       ("v=DKIM1", "doc-rsa._domainkey.example.test."),
                       ("v=DKIM1", "doc-ed25519._domainkey.example.test.")]:
        assert ("OK", f"{what} {name} as `godwit dns` says") in dns, dns

    # a DKIM key that is not ours, no MX, two SPF records: FAILs
    bad = {k: list(v) for k, v in zone.items()}
    bad["doc-rsa._domainkey.example.test"] = [{"TXT": ["v=DKIM1; k=rsa; p=AAAA"]}]
    bad["example.test"] = [r for r in bad["example.test"] if "MX" not in r]
    bad["example.test"].append({"TXT": ["v=spf1 a -all"]})
    dns_server.set_zone(bad)
    code, lines = doctor(g, code=1)
    f = fails(lines, "dns")
    assert any(t.startswith("DKIM doc-rsa._domainkey.example.test.: the "
                            "published key is not the key") for t in f), f
    assert any(t.startswith(f"MX of example.test. does not name {HOSTNAME}")
               for t in f), f
    assert any(t.startswith("2 v=spf1 records at example.test.") for t in f), f
    # a DMARC policy of one's own is the administrator's choice: a warning
    own = {k: list(v) for k, v in zone.items()}
    own["_dmarc.example.test"] = [{"TXT": ["v=DMARC1; p=reject"]}]
    dns_server.set_zone(own)
    code, lines = doctor(g, code=0)
    assert has(lines, "WARN", "dns", r'^v=DMARC1 at _dmarc\.example\.test\. '
               r'is "v=DMARC1; p=reject"')


def test_offline_dns_warns(make_godwit, cert):
    """The default test resolver refuses everything: the DNS checks warn,
    none fails."""
    g = healthy(make_godwit, cert)
    g.admin("dkim", "keygen", "example.test", "--selector", "doc")
    code, lines = doctor(g, code=0)
    assert has(lines, "WARN", "dns", r"^no DNS answer for example\.test .*"
               r"offline\?")
    assert not any(c == "dns" and s == "OK" for s, c, t in lines)
    # without a target, outbound port 25 is tried on an MX found in DNS
    code, lines = doctor(g, code=0, outbound=False)
    assert has(lines, "WARN", "outbound", r"^no DNS answer for the MX of "
               r"gmail\.com: outgoing port 25 not tested")
    # a smarthost takes its place
    g.update_config({"smarthost": {"host": "[127.0.0.1]", "port": g.port,
                                   "tls": "none"}})
    code, lines = doctor(g, code=0, outbound=False)
    assert has(lines, "OK", "outbound", rf"^mail leaves through smarthost "
               rf"\[127\.0\.0\.1\] port {g.port}$")


def test_stuck_queue_fails(make_godwit):
    """Deferred mail older than queue.lifetime (the runner should have
    bounced it): FAIL; younger than half of it: OK. Read from the
    queue ids, which carry their birth time."""
    g = make_godwit({"queue": {"lifetime": "1d"}}, start=False)
    deferred = g.data_dir / "queue" / "deferred"
    deferred.mkdir(parents=True, exist_ok=True)
    old = int((time.time() - 3 * 86400) * 1000)
    qid = f"{old:011x}00001"
    (deferred / qid).write_bytes(b"")
    t0 = time.time()
    code, lines = doctor(g, code=1)
    t1 = time.time()
    # the age by the doctor's clock, somewhere in the run
    ages = range(int(t0) - old // 1000, int(t1) - old // 1000 + 1)
    assert any(has(lines, "FAIL", "queue", rf"^deferred: 1 messages, the "
                   rf"oldest \({qid}\) {a} s old: mail is not delivered")
               for a in ages), lines
    # the daemon is not running: its listener is down too
    assert has(lines, "FAIL", "listener", r"cannot connect: Connection refused")
    (deferred / qid).unlink()
    young = int((time.time() - 60) * 1000)
    (deferred / f"{young:011x}00001").write_bytes(b"")
    code, lines = doctor(g)
    assert has(lines, "OK", "queue", r"^deferred: 1 messages, the oldest "
               r"\d+ s old$")
    assert not fails(lines, "queue")


@pytest.fixture
def lab(tmp_path):
    import netlab
    for ok, why in (netlab.netns_available(), netlab.unbound_available()):
        if not ok:
            pytest.skip(f"network lab unavailable: {why}")
    with netlab.Lab(workdir=tmp_path / "lab") as l:
        yield l


def reverse4(ip):
    return ".".join(reversed(ip.split("."))) + ".in-addr.arpa."


def test_public_address_ptr_and_blocklist(lab, make_godwit, cert):
    """In a namespace of the lab, a wildcard MX: the doctor connects on
    loopback and on the host's own addresses, and checks the PTR of its
    address (198.18.0.0/15, not a private range) forward-confirmed and
    its listing on a blocklist, all through a real unbound."""
    a = lab.host("a")
    g = make_godwit({"filter": {"dnsbl": ["bl.test"]}, **tls_config(cert)},
                    start=False, netns=a)
    zone = [l for l in g.admin("dns", "example.test").stdout.splitlines()
            if l.strip() and not l.startswith(";")]
    rev = reverse4(a.ip4)
    records = zone + [
        f"{HOSTNAME}. A {a.ip4}",
        f"{rev} PTR {HOSTNAME}.",
        f"{rev.replace('.in-addr.arpa.', '.bl.test.')} A 127.0.0.2",
    ]
    dns = lab.dns([r.replace(" 3600 IN ", " ") for r in records])
    g.update_config({"dns": {"resolver": [dns.ip4]}})
    g.start()
    p = g.run("doctor", "--timeout", TIMEOUT, "--outbound-target",
              "127.0.0.1:25", timeout=120)
    out = p.stdout
    if os.environ.get("DOCTOR_SHOW"):
        print(out)
    assert p.returncode == 1, out
    assert re.search(r"^OK +listener +mx \(smtp\) 127\.0\.0\.1:25: 220 ", out, re.M), out
    assert re.search(rf"^OK +listener +mx \(smtp\) {re.escape(a.ip4)}:25: 220 ",
                     out, re.M), out
    assert re.search(rf"^OK +listener +mx \(smtp\) \[{re.escape(a.ip6)}\]:25: 220 ",
                     out, re.M), out
    assert re.search(rf"^OK +dns +PTR of {re.escape(a.ip4)} is {HOSTNAME}, "
                     r"forward-confirmed$", out, re.M), out
    assert re.search(r"^OK +dns +MX of example\.test\.: ", out, re.M), out
    fails_ = [l for l in out.splitlines() if l.startswith("FAIL")]
    assert fails_ == [f"FAIL blocklist {a.ip4} is LISTED on bl.test "
                      "(127.0.0.2): mail from it is refused; find out why "
                      "on the list's site and ask for removal"], out


def test_catchall_forwarding_out(make_godwit, cert):
    """A catch-all that forwards outside: a warning; the odd local parts
    of the relay probe (%-hack, bang path, quoted) are taken by it and
    delivered here, which is not relaying."""
    g = make_godwit(tls_config(cert), aliases={
        "postmaster@example.test": ["alice@example.test"],
        "@example.test": ["someone@elsewhere.example"]})
    code, lines = doctor(g, code=0)
    assert has(lines, "WARN", "relay", r"^catch-all @example\.test forwards "
               r"to someone@elsewhere\.example, outside")
    assert has(lines, "OK", "relay", r"RCPT TO:<doctor-probe%example\.com@"
               r"example\.test> taken by the catch-all")
    assert not fails(lines, "relay")
    assert g.queue_files() == []


def test_plaintext_auth_on_public_address(make_godwit, cert):
    """Configuration only (the daemon is not started): plaintext_auth on
    a listener bound to a public address fails, on loopback it is OK."""
    g = make_godwit(tls_config(cert), start=False)
    g.config["listeners"] += [
        {"name": "sub-public", "protocol": "submission",
         "listen": ["203.0.113.9:2587"], "plaintext_auth": True},
        {"name": "sub-local", "protocol": "submission",
         "listen": [f"127.0.0.1:{free_port()}"], "plaintext_auth": True},
    ]
    g.write_config()
    code, lines = doctor(g, code=1)
    assert has(lines, "FAIL", "relay", r"^listener sub-public: plaintext_auth "
               r"on a public address")
    assert has(lines, "OK", "relay", r"^listener sub-local: plaintext_auth "
               r"only on private addresses")
