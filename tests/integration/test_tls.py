"""
STARTTLS on the MX listener (RFC 3207), with real clients: Python's
smtplib and ssl, swaks --tls and openssl s_client -starttls smtp.
The certificate is made by the test with the openssl command.
"""

import os
import ssl
import subprocess

import pytest

from conftest import wait_for
from smtpclient import crlf

HOST = "mx.example.test"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    os.chmod(d, 0o755)
    out = {}
    for name in ("one", "two"):
        key, crt = d / f"{name}.key", d / f"{name}.crt"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
             "-days", "2", "-subj", f"/CN={name}.example.test",
             "-addext", f"subjectAltName=DNS:{name}.example.test,DNS:localhost",
             "-keyout", str(key), "-out", str(crt)],
            check=True, capture_output=True, timeout=60)
        os.chmod(key, 0o600)
        out[name] = (crt, key)
    return out


def tls_config(certs, name="one"):
    crt, key = certs[name]
    return {"tls": {"certificates": [{"cert": str(crt), "key": str(key)}]}}


def client_ctx(max_version=None):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if max_version is not None:
        ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        ctx.maximum_version = max_version
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    return ctx


def starttls(c, ctx=None):
    r = c.cmd("STARTTLS")
    assert r.code == 220, r
    assert c.buf == b"", "server sent more than the 220"
    c.sock = (ctx or client_ctx()).wrap_socket(c.sock,
                                               server_hostname="localhost")
    return c


def peer_cn(c):
    der = c.sock.getpeercert(binary_form=True)
    pem = ssl.DER_cert_to_PEM_cert(der)
    out = subprocess.run(["openssl", "x509", "-noout", "-subject"],
                         input=pem, capture_output=True, text=True,
                         check=True)
    return out.stdout.strip()


@pytest.mark.parametrize("family", [4, 6])
def test_starttls_delivery_with_smtplib(make_godwit, certs, family):
    g = make_godwit(tls_config(certs))
    s = g.smtp(family)
    code, caps = s.ehlo()
    assert code == 250 and s.has_extn("starttls")
    s.starttls(context=client_ctx())
    code, caps = s.ehlo()
    assert code == 250
    assert not s.has_extn("starttls"), "STARTTLS offered again under TLS"
    assert s.sock.version() in ("TLSv1.2", "TLSv1.3")
    s.sendmail("sender@example.org", ["alice@example.test"],
               crlf("Subject: over tls\n\nsecret body\n"))
    s.quit()
    msgs = g.wait_messages("alice@example.test", 1)
    stored = msgs[0]
    assert b"with ESMTPS" in stored
    assert b"TLSv1." in stored.split(b"\n\n", 1)[0]
    assert b"secret body" in stored
    assert "event=tls" in g.log_text()


def test_starttls_injection_is_discarded(make_godwit, certs):
    """CVE-2011-0411: commands pipelined after STARTTLS in plaintext must
    not be executed inside the TLS session."""
    g = make_godwit(tls_config(certs))
    c = g.raw()
    c.ehlo()
    c.send("STARTTLS\r\nMAIL FROM:<injected@example.org>\r\n")
    r = c.reply()
    assert r.code == 220, r
    c.sock = client_ctx().wrap_socket(c.sock, server_hostname="localhost")
    c.buf = b""
    c.ehlo()
    # had the injected MAIL run, this RCPT would be accepted
    r = c.cmd("RCPT TO:<alice@example.test>")
    assert r.code == 503, r
    r = c.cmd("MAIL FROM:<real@example.org>")
    assert r.code == 250, r
    c.close()
    assert "injected@example.org" not in g.log_text()


def test_session_forgets_ehlo_after_tls(make_godwit, certs):
    g = make_godwit(tls_config(certs))
    c = g.raw()
    c.ehlo()
    starttls(c)
    r = c.cmd("MAIL FROM:<a@example.org>")
    assert r.code == 503 and r.enh == "5.5.1", r
    c.ehlo()
    assert c.cmd("MAIL FROM:<a@example.org>").code == 250
    c.close()


def test_starttls_twice_is_refused(make_godwit, certs):
    g = make_godwit(tls_config(certs))
    c = g.raw()
    c.ehlo()
    starttls(c)
    c.ehlo()
    r = c.cmd("STARTTLS")
    assert r.code == 503 and r.enh == "5.5.1", r
    assert c.cmd("NOOP").code == 250
    c.close()


def test_starttls_in_transaction_is_refused(make_godwit, certs):
    g = make_godwit(tls_config(certs))
    c = g.raw()
    c.ehlo()
    assert c.cmd("MAIL FROM:<a@example.org>").code == 250
    r = c.cmd("STARTTLS")
    assert r.code == 503, r
    c.close()


def test_no_starttls_without_certificate(godwit):
    c = godwit.raw()
    r = c.ehlo()
    assert "STARTTLS" not in r.text.upper()
    r = c.cmd("STARTTLS")
    assert r.code == 502, r
    c.close()


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1,
                                     ssl.TLSVersion.TLSv1_1])
def test_old_tls_versions_refused(make_godwit, certs, version):
    g = make_godwit(tls_config(certs))
    c = g.raw()
    c.ehlo()
    r = c.cmd("STARTTLS")
    assert r.code == 220
    try:
        ctx = client_ctx(max_version=version)
    except (ssl.SSLError, ValueError):
        pytest.skip("this Python's OpenSSL cannot even offer it")
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        ctx.wrap_socket(c.sock, server_hostname="localhost")
    c.close()
    assert "event=tls-error" in g.log_text()


def test_openssl_s_client_and_swaks(make_godwit, certs):
    g = make_godwit(tls_config(certs))
    out = subprocess.run(
        ["openssl", "s_client", "-starttls", "smtp", "-connect",
         f"127.0.0.1:{g.port}", "-servername", "localhost", "-brief"],
        input="QUIT\r\n", capture_output=True, text=True, timeout=30)
    assert "CN = one.example.test" in out.stderr + out.stdout, out.stderr
    r = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{g.port}", "--tls",
         "--to", "bob@example.test", "--from", "s@example.org",
         "--body", "swaks over tls"],
        capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert any(b"swaks over tls" in m for m in
               g.wait_messages("bob@example.test", 1))


def test_world_readable_key_refused(make_godwit, certs, tmp_path):
    crt, key = certs["one"]
    bad = tmp_path / "bad.key"
    bad.write_bytes(key.read_bytes())
    os.chmod(bad, 0o644)
    g = make_godwit({"tls": {"certificates": [{"cert": str(crt),
                                               "key": str(bad)}]}},
                    start=False)
    r = g.run("serve", timeout=30)
    assert r.returncode != 0
    assert "readable" in r.stderr and str(bad) in r.stderr, r.stderr


def test_certificate_reload_on_sighup(make_godwit, certs):
    g = make_godwit(tls_config(certs, "one"))
    old = g.raw()
    old.ehlo()
    starttls(old)
    assert "one.example.test" in peer_cn(old)
    old.ehlo()
    g.update_config(tls_config(certs, "two"))
    g.reload()
    # new connections get the new certificate (bounded wait for the reload)
    def new_cn():
        c = g.raw()
        c.ehlo()
        starttls(c)
        cn = peer_cn(c)
        c.close()
        return "two.example.test" in cn
    wait_for(new_cn, 15, interval=0.2, what="the new certificate")
    # the session open across the reload still works to the end
    assert old.cmd("MAIL FROM:<a@example.org>").code == 250
    assert old.cmd("RCPT TO:<alice@example.test>").code == 250
    assert old.cmd("DATA").code == 354
    old.send(crlf("Subject: across reload\n\nstill here\n.\n"))
    assert old.reply().code == 250
    old.close()


def test_config_check_reports_bad_key_file(make_godwit, certs, tmp_path):
    crt, key = certs["one"]
    bad = tmp_path / "open.key"
    bad.write_bytes(key.read_bytes())
    os.chmod(bad, 0o644)
    g = make_godwit({"tls": {"certificates": [{"cert": str(crt),
                                               "key": str(bad)}]}},
                    start=False)
    r = g.run("config", "check")
    assert r.returncode == 1
    assert "readable by group or others" in r.stderr and ".yaml:" in r.stderr
