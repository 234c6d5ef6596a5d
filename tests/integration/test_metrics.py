"""
Prometheus metrics (`protocol: metrics` listeners): the real promtool
accepts what the daemon serves, the counters move with real traffic
(smtplib, poplib, imaplib), counters of one process show up in a scrape served by
another (a worker serves what the runner counted), and the HTTP side
answers only GET/HEAD /metrics to the networks it allows.
"""

import http.client
import imaplib
import json
import os
import poplib
import re
import signal
import smtplib
import socket
import subprocess

import pytest

from conftest import (PASSWORD, client_tls_context, free_port, wait_for)

ALICE = "alice@example.test"
PROMTOOL = "/usr/bin/promtool"

SAMPLE = re.compile(r'^([a-z_]+)(\{[^}]*\})? (\S+)$')


def scrape(g, port=None, method="GET", path="/metrics", host="127.0.0.1"):
    c = http.client.HTTPConnection(host, port or g.metrics_port, timeout=10)
    try:
        c.request(method, path)
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read().decode()
    finally:
        c.close()


def samples(text):
    """{'name{labels}': value} of every sample line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def value(g, key):
    status, _, text = scrape(g)
    assert status == 200
    return samples(text).get(key, 0.0)


def value_soon(g, key):
    """value(), or None when the scrape's connection was cut: a worker
    killed or replaced (a reload) with the connection in its hands."""
    try:
        return value(g, key)
    except ConnectionError:
        return None


def promtool_check(text):
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(),
                       capture_output=True, timeout=30)
    return r.returncode, (r.stdout + r.stderr).decode()


@pytest.fixture
def mg(make_godwit, cert):
    """A godwit with mx, submission (STARTTLS), pop3 (plaintext logins on
    loopback) and a metrics listener on loopback."""
    crt, key = cert
    g = make_godwit({
        "tls": {"certificates": [{"cert": str(crt), "key": str(key)}]},
        "auth": {"delay_base": "10ms", "delay_max": "20ms"},
    }, start=False)
    g.sub_port, g.pop3_port, g.metrics_port = (free_port(), free_port(),
                                               free_port())
    g.config["listeners"] += [
        {"name": "submission", "protocol": "submission",
         "listen": [f"127.0.0.1:{g.sub_port}"]},
        {"name": "pop3", "protocol": "pop3", "plaintext_auth": True,
         "listen": [f"127.0.0.1:{g.pop3_port}"]},
        {"name": "metrics", "protocol": "metrics",
         "listen": [f"127.0.0.1:{g.metrics_port}",
                    f"[::1]:{g.metrics_port}"]},
    ]
    g.write_config()
    g.start()
    return g


def test_promtool_accepts_the_output(mg):
    status, headers, text = scrape(mg)
    assert status == 200
    assert headers["Content-Type"].startswith(
        "text/plain; version=0.0.4"), headers
    code, out = promtool_check(text)
    assert code == 0, out + text[:3000]
    # every family is there from the start, at zero
    s = samples(text)
    for key in ('godwit_messages_total{result="accepted"}',
                'godwit_rejections_total{reason="relay"}',
                'godwit_auth_total{mechanism="PLAIN",result="failure"}',
                'godwit_queue_messages{state="deferred"}',
                'godwit_delivery_duration_seconds_count',
                'godwit_dns_lookup_duration_seconds_count',
                'godwit_worker_restarts_total{process="worker"}',
                'godwit_connections_total{listener="mx",protocol="smtp",'
                'result="accepted"}'):
        assert key in s, key
    # and IPv6 serves the same
    status, _, text6 = scrape(mg, host="::1")
    assert status == 200 and "godwit_messages_total" in text6


def test_counters_move_with_traffic(mg):
    before = samples(scrape(mg)[2])

    def delta(key):
        return samples(scrape(mg)[2]).get(key, 0.0) - before.get(key, 0.0)

    with smtplib.SMTP("127.0.0.1", mg.port, timeout=20) as s:
        s.ehlo("client.test")
        s.sendmail("sender@example.org", [ALICE],
                   b"Subject: metrics\r\n\r\nhello\r\n")
        code, _ = s.mail("sender@example.org")
        assert code == 250
        code, _ = s.rcpt("someone@example.org")
        assert code == 554
        code, _ = s.rcpt("nobody@example.test")
        assert code == 550
    with smtplib.SMTP("127.0.0.1", mg.sub_port, timeout=20) as s:
        s.starttls(context=client_tls_context())
        s.ehlo("client.test")
        s.user, s.password = ALICE, "wrong password"
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            s.auth("PLAIN", s.auth_plain)
        assert e.value.smtp_code == 535
    p = poplib.POP3("127.0.0.1", mg.pop3_port, timeout=20)
    p.user(ALICE)
    p.pass_(PASSWORD)
    p.quit()

    assert delta('godwit_messages_total{result="accepted"}') == 1
    assert delta('godwit_messages_total{result="delivered"}') == 1
    assert delta('godwit_rejections_total{reason="relay"}') == 1
    assert delta('godwit_rejections_total{reason="unknown_user"}') == 1
    assert delta('godwit_rejections_total{reason="auth_failure"}') == 1
    assert delta('godwit_auth_total{mechanism="USER",result="success"}') == 1
    assert delta('godwit_auth_total{mechanism="PLAIN",'
                 'result="failure"}') == 1
    assert delta('godwit_tls_handshakes_total{direction="inbound",'
                 'version="TLSv1.3"}') == 1
    assert delta('godwit_connections_total{listener="mx",protocol="smtp",'
                 'result="accepted"}') == 1
    assert delta('godwit_connections_total{listener="pop3",'
                 'protocol="pop3",result="accepted"}') == 1
    code, out = promtool_check(scrape(mg)[2])
    assert code == 0, out


def test_imap_listeners_and_logins(make_godwit, cert):
    """IMAP's listeners carry their protocol in the connection counter,
    its logins count by mechanism (the LOGIN command as LOGIN,
    AUTHENTICATE by its SASL name), its TLS handshakes as the others."""
    crt, key = cert
    g = make_godwit({
        "tls": {"certificates": [{"cert": str(crt), "key": str(key)}]},
        "auth": {"delay_base": "10ms", "delay_max": "20ms"},
    }, start=False)
    g.imap_port, g.imaps_port, g.metrics_port = (free_port(), free_port(),
                                                 free_port())
    g.config["listeners"] += [
        {"name": "imap-local", "protocol": "imap", "plaintext_auth": True,
         "listen": [f"127.0.0.1:{g.imap_port}"]},
        {"name": "imaps", "protocol": "imaps",
         "listen": [f"127.0.0.1:{g.imaps_port}"]},
        {"name": "metrics", "protocol": "metrics",
         "listen": [f"127.0.0.1:{g.metrics_port}"]},
    ]
    g.write_config()
    g.start()
    before = samples(scrape(g)[2])

    def delta(key):
        return samples(scrape(g)[2]).get(key, 0.0) - before.get(key, 0.0)

    m = imaplib.IMAP4("127.0.0.1", g.imap_port, timeout=20)
    try:
        assert m.login(ALICE, PASSWORD)[0] == "OK"
    finally:
        m.logout()
    m = imaplib.IMAP4_SSL("127.0.0.1", g.imaps_port,
                          ssl_context=client_tls_context(), timeout=20)
    try:
        with pytest.raises(imaplib.IMAP4.error):
            m.login(ALICE, "wrong password")
    finally:
        m.logout()
    m = imaplib.IMAP4_SSL("127.0.0.1", g.imaps_port,
                          ssl_context=client_tls_context(), timeout=20)
    try:
        typ, _ = m.authenticate(
            "PLAIN", lambda _: f"\0{ALICE}\0{PASSWORD}".encode())
        assert typ == "OK"
    finally:
        m.logout()

    assert delta('godwit_connections_total{listener="imap-local",'
                 'protocol="imap",result="accepted"}') == 1
    assert delta('godwit_connections_total{listener="imaps",'
                 'protocol="imaps",result="accepted"}') == 2
    assert delta('godwit_auth_total{mechanism="LOGIN",'
                 'result="success"}') == 1
    assert delta('godwit_auth_total{mechanism="LOGIN",'
                 'result="failure"}') == 1
    assert delta('godwit_auth_total{mechanism="PLAIN",'
                 'result="success"}') == 1
    assert delta('godwit_rejections_total{reason="auth_failure"}') == 1
    assert delta('godwit_tls_handshakes_total{direction="inbound",'
                 'version="TLSv1.3"}') == 2
    code, out = promtool_check(scrape(g)[2])
    assert code == 0, out


def test_http_errors(mg):
    status, _, _ = scrape(mg, path="/")
    assert status == 404
    status, _, _ = scrape(mg, path="/metricsx")
    assert status == 404
    status, headers, _ = scrape(mg, method="POST")
    assert status == 405
    assert headers.get("Allow") == "GET, HEAD"
    status, _, _ = scrape(mg, method="DELETE")
    assert status == 405
    status, headers, body = scrape(mg, method="HEAD")
    assert status == 200 and body == ""
    assert int(headers["Content-Length"]) > 1000
    # a request line longer than the bound is refused, not buffered
    c = http.client.HTTPConnection("127.0.0.1", mg.metrics_port, timeout=10)
    c.putrequest("GET", "/metrics")
    c.putheader("X-Pad", "a" * 8000)
    c.endheaders()
    r = c.getresponse()
    assert r.status in (400, 413, 431), r.status
    c.close()


def test_allow_list_refuses(make_godwit):
    """Three metrics listeners: one allowing another network, one
    allowing loopback but denying 127.0.0.1, one allowing loopback."""
    g = make_godwit(start=False)
    g.metrics_port, deny_port, ok_port = free_port(), free_port(), free_port()
    g.config["listeners"] += [
        {"name": "metrics", "protocol": "metrics",
         "listen": [f"127.0.0.1:{g.metrics_port}"],
         "allow": ["192.0.2.0/24"]},
        {"name": "metrics-deny", "protocol": "metrics",
         "listen": [f"127.0.0.1:{deny_port}"],
         "allow": ["127.0.0.0/8"], "deny": ["127.0.0.1/32"]},
        {"name": "metrics-ok", "protocol": "metrics",
         "listen": [f"127.0.0.1:{ok_port}"], "allow": ["127.0.0.0/8"]},
    ]
    g.write_config()
    g.start()
    status, _, body = scrape(g)
    assert status == 403
    assert "godwit_" not in body
    status, _, body = scrape(g, port=deny_port)
    assert status == 403 and "godwit_" not in body
    status, _, body = scrape(g, port=ok_port)
    assert status == 200
    s = samples(body)
    assert s['godwit_connections_total{listener="metrics",'
             'protocol="metrics",result="access_denied"}'] == 1
    assert s['godwit_connections_total{listener="metrics-deny",'
             'protocol="metrics",result="access_denied"}'] == 1
    wait_for(lambda: g.log_text().count("reason=access-list") == 2, 10,
             what="the refusals logged")


def test_config_check_public_address(make_godwit):
    g = make_godwit(start=False)
    g.config["listeners"].append(
        {"name": "metrics", "protocol": "metrics",
         "listen": ["0.0.0.0:9925"]})
    g.write_config()
    r = g.run("config", "check")
    assert r.returncode != 0
    assert "not a loopback address" in r.stderr, r.stderr
    assert "needs an allow" in r.stderr
    # with an allow list it is the admin's choice
    g.config["listeners"][-1]["allow"] = ["192.0.2.0/24"]
    g.write_config()
    r = g.run("config", "check")
    assert r.returncode == 0, r.stderr
    # keys of the mail protocols are refused
    g.config["listeners"][-1]["auth"] = True
    g.write_config()
    r = g.run("config", "check")
    assert r.returncode != 0
    assert "not a key of protocol metrics" in r.stderr, r.stderr


def test_head_sends_no_body(mg):
    with socket.create_connection(("127.0.0.1", mg.metrics_port),
                                  timeout=10) as s:
        s.sendall(b"HEAD /metrics HTTP/1.0\r\n\r\n")
        data = b""
        for _ in range(1000):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200"), head
    assert body == b""


# Where the code names a refusal's reason: the literal strings there must
# all be in the unit test's table (tests/unit/test_metrics.c), so that a
# new reason is counted in the category somebody chose for it.
REASON_SITES = [
    r'metrics_reject\("([a-z0-9-]+)"',
    r'sf_verdict_set\([^;]*?,\s*"[0-9.]+",\s*"([a-z0-9-]+)"',
    r'walk_refuse\([^,]+,[^,]+,\s*"([a-z0-9-]+)"',
    r'header_refuse\([^;]*?"[0-9.]+",\s*"([a-z0-9-]+)"',
    r'reason = "([a-z0-9-]+)"',
    r'\? "(attach-limit-[a-z]+)"',
    r'why = "([a-z0-9-]+)"',
]


def test_every_reason_has_a_category():
    import pathlib
    root = pathlib.Path(__file__).resolve().parents[2]
    found = set()
    for f in (root / "src").rglob("*.c"):
        text = f.read_text()
        for pat in REASON_SITES:
            found.update(re.findall(pat, text, re.S))
        for args in re.findall(r'metrics_reject\(([^;]*)\);', text):
            found.update(re.findall(r'"([a-z0-9-]+)"', args))
    table = set(re.findall(r'\{"([a-z0-9-]+)", "[a-z_]+"\}',
                           (root / "tests/unit/test_metrics.c").read_text()))
    assert {"relay-denied", "dnsbl", "virus", "executable",
            "multiple-from"} <= found, found
    assert found - table == set()


def test_every_refusal_log_is_counted():
    """Each log_event of a refusal (event reject or login-refused) is
    followed by its metrics_reject() in the same statement block: a new
    refusal site that forgets it fails here."""
    import pathlib
    root = pathlib.Path(__file__).resolve().parents[2]
    sites, missing = 0, []
    for f in (root / "src").rglob("*.c"):
        lines = f.read_text().splitlines()
        for i, line in enumerate(lines):
            if "log_event(" not in line or not re.search(
                    r'"(reject|login-refused)",', line + " ".join(
                        lines[i + 1:i + 2])):
                continue
            sites += 1
            if not any("metrics_reject(" in l for l in lines[i:i + 20]):
                missing.append(f"{f.relative_to(root)}:{i + 1}")
    assert sites >= 20, sites
    assert missing == []


# ------------------------------------------------------ the queue runner ---

def with_metrics(g):
    g.metrics_port = free_port()
    g.config["listeners"].append(
        {"name": "metrics", "protocol": "metrics",
         "listen": [f"127.0.0.1:{g.metrics_port}"]})
    g.write_config()
    return g


def test_runner_counts_reach_a_worker_scrape(make_godwit, sink):
    """The runner delivers through a smarthost (smtp-sink); a worker
    serves the scrape that shows it. A worker killed with -9 is counted
    as a restart, and nothing counted before is lost, nor across a
    reload."""
    port, d = sink
    g = make_godwit({
        "smtp": {"trusted_networks": ["127.0.0.0/8", "::1/128"]},
        "smarthost": {"host": "[127.0.0.1]", "port": port, "tls": "none",
                      "verify": False},
    }, start=False)
    with_metrics(g).start()
    key = 'godwit_messages_total{result="delivered"}'
    with g.smtp() as s:
        s.sendmail(ALICE, ["r@remote.example", "s@remote.example"],
                   b"Subject: out\r\n\r\nx\r\n")
    wait_for(lambda: value(g, key) == 2, 20, what="2 delivered")
    assert value(g, "godwit_delivery_duration_seconds_count") == 2
    assert value(g, 'godwit_messages_total{result="accepted"}') == 1
    assert len(os.listdir(d)) == 1

    [w] = g.children()[:1]
    os.kill(w, signal.SIGKILL)
    g.expect_crash = True
    restarts = 'godwit_worker_restarts_total{process="worker"}'
    wait_for(lambda: value_soon(g, restarts) == 1, 15,
             what="a restart counted")
    assert wait_for(lambda: value_soon(g, key), 15, what="a scrape") == 2
    g.reload()
    wait_for(lambda: "event=reloaded" in g.log_text(), 15, what="reload")
    assert wait_for(lambda: value_soon(g, key), 15, what="a scrape") == 2
    # a reload is no restart
    assert wait_for(lambda: value_soon(g, restarts), 15,
                    what="a scrape") == 1
    code, out = promtool_check(scrape(g)[2])
    assert code == 0, out


def test_deferred_bounced_dns_and_queue_gauge(make_godwit):
    """Without a usable resolver (the tests' refusing one) remote mail is
    deferred; the MX lookups are counted, the queue gauge sees the message
    in deferred/ and then in hold/, and a delete --bounce counts a
    bounce."""
    g = make_godwit({
        "smtp": {"trusted_networks": ["127.0.0.0/8", "::1/128"]},
        "queue": {"retry_min": "1h"},
    }, start=False)
    with_metrics(g).start()
    with g.smtp() as s:
        s.sendmail(ALICE, ["r@remote.example"],
                   b"Subject: deferred\r\n\r\nx\r\n")
    wait_for(lambda: value(g, 'godwit_messages_total{result="deferred"}')
             == 1, 30, what="a deferral counted")
    text = scrape(g)[2]
    mx = sum(v for k, v in samples(text).items()
             if k.startswith('godwit_dns_lookups_total{type="MX"'))
    assert mx >= 1, text
    assert samples(text)["godwit_dns_lookup_duration_seconds_count"] >= mx
    wait_for(lambda: value(g, 'godwit_queue_messages{state="deferred"}')
             == 1, 15, what="the gauge of deferred/")
    [m] = [json.loads(l) for l in g.run("queue", "list", "--json",
                                        check=True).stdout.splitlines()]
    g.admin("queue", "hold", m["id"])
    wait_for(lambda: value(g, 'godwit_queue_messages{state="hold"}') == 1
             and value(g, 'godwit_queue_messages{state="deferred"}') == 0,
             15, what="the gauge of hold/")
    g.admin("queue", "delete", m["id"], "--bounce")
    wait_for(lambda: value(g, 'godwit_messages_total{result="bounced"}')
             == 1, 20, what="a bounce counted")
    assert value(g, "godwit_delivery_duration_seconds_count") == 1
