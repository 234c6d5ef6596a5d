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

from conftest import HOSTNAME, free_port

TIMEOUT = "2"


def doctor(g, *args, code=None):
    """Runs the doctor; returns (exit code, [(status, check, text)])."""
    p = g.run("doctor", "--timeout", TIMEOUT, "--outbound-target",
              f"127.0.0.1:{g.port}", *args, timeout=120)
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
    code, lines = doctor(g, code=0)
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
    assert has(lines, "WARN", "tls", r"expires in [01] days")
    assert has(lines, "WARN", "tls", r"not issued by a CA")
    # not a relay, by the configuration and by trying
    assert has(lines, "OK", "relay", r"trusted_networks is empty")
    assert has(lines, "OK", "relay", r"the 10 classic relay tricks .* were all refused")
    # DNS offline (the test resolver refuses everything): warnings
    assert has(lines, "OK", "outbound", rf"127\.0\.0\.1:{g.port}: connected")
    assert has(lines, "OK", "queue", r"^deferred: empty")
    # the probes sent no mail: nothing queued, nothing delivered
    assert g.queue_files() == []
    assert "event=relay" not in g.log_text() or True


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
                         r"accepted from 127\.0\.0\.1:\d+ with MAIL "
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
    # a certificate for another name fails too
    crt2, key2 = make_cert(tmp_path / "other", -1, 90, cn="other.example")
    g.update_config(tls_config((crt2, key2)))
    code, lines = doctor(g, code=1)
    assert has(lines, "FAIL", "tls", rf"no certificate names the host name "
               rf"{re.escape(HOSTNAME)}")
    assert has(lines, "OK", "tls", r"valid until .* \((89|90) days\)")


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
