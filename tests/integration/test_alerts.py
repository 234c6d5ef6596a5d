"""Alerts (issue 15 item 6, R4.3): `event=alert` lines, the mail to
postmaster (delivered through the queue into the postmaster's Maildir),
alerts.command with the alert as JSON on stdin, one mail and command per
kind and subject per alerts.interval; the kinds the parent raises itself
(cert-expiry, crash-loop) and those of failed logins."""
import json
import os
import re
import signal
import smtplib
import time

import pytest

from conftest import DOMAIN, PASSWORD, cert_days_left, wait_for

POSTMASTER = f"alice@{DOMAIN}"		# postmaster@ is an alias of alice


@pytest.fixture
def alerting(make_godwit, cert):
    """A godwit with alerts on, a submission listener and a command that
    writes each alert's stdin to a file of its own in g.drop (a
    directory the daemon user may write)."""
    def make(alerts=None, auth=None, **kw):
        crt, key = cert
        a = {"enabled": True, "cert_expiry": 0, "command": "true"}
        a.update(alerts or {})
        au = {"delay_base": "0", "delay_max": "0", "ban_time": "1s",
              "failure_window": "1h", "max_failures_ip": 100}
        au.update(auth or {})
        g = make_godwit(dict({
            "alerts": a, "auth": au,
            "tls": {"certificates": [{"cert": str(crt), "key": str(key)}]},
        }, **kw), start=False)
        g.drop = g.base / "alerts"
        g.drop.mkdir()
        os.chmod(g.drop, 0o777)
        if a["command"] == "true":
            g.config["alerts"]["command"] = f"cat > {g.drop}/alert.$$.json"
        g.add_submission()
        g.write_config()
        g.start()
        return g
    return make


def fail_login(g, user="alice", source="127.0.0.1"):
    """One failed login on a connection of its own from source; the
    reply code (535, or 421 when banned)."""
    try:
        c = smtplib.SMTP(timeout=30, source_address=(source, 0))
        c.connect("127.0.0.1", g.sub_port)
    except (smtplib.SMTPServerDisconnected, ConnectionError):
        return 421
    try:
        c.ehlo("client.example.test")
        # one mechanism, one failure (login() would try LOGIN too)
        c.user, c.password = f"{user}@{DOMAIN}", "wrong " + PASSWORD
        c.auth("PLAIN", c.auth_plain)
    except smtplib.SMTPAuthenticationError as e:
        return e.smtp_code
    except smtplib.SMTPServerDisconnected:
        return 421
    finally:
        try:
            c.close()
        except OSError:
            pass
    raise AssertionError("a wrong password was accepted")


def alert_lines(g, kind):
    return [l for l in g.log_text().splitlines()
            if "event=alert " in l and f"kind={kind} " in l]


def alert_mails(g, kind):
    return [m for m in g.maildir_messages(POSTMASTER)
            if f"[godwit alert] {kind}:".encode() in m]


def command_outputs(g):
    """The JSON each run of the command received, parsed."""
    out = []
    for p in sorted(g.drop.iterdir()):
        text = p.read_text()
        if text.endswith("\n"):
            out.append(json.loads(text))
    return out


def test_auth_failure_burst_alert_mail_command_rate_limited(alerting):
    g = alerting({"auth_failures_ip": 3},
                 auth={"max_failures_ip": 3})
    for _ in range(2):
        assert fail_login(g) == 535
    # the failure that begins the ban is the last one answered
    assert fail_login(g) in (421, 535)
    wait_for(lambda: alert_mails(g, "auth-failures-ip"), 30,
             what="the alert mail")
    lines = alert_lines(g, "auth-failures-ip")
    assert len(lines) == 1
    assert "subject=127.0.0.1/32 count=3 max=3 window_s=3600" in lines[0]
    assert "notified=yes" in lines[0]
    outs = wait_for(lambda: command_outputs(g), 30,
                    what="the command's JSON")
    assert len(outs) == 1
    j = outs[0]
    assert j["kind"] == "auth-failures-ip" and j["subject"] == "127.0.0.1/32"
    assert j["count"] == 3 and j["limit"] == 3 and j["window_s"] == 3600
    assert j["host"] == g.config["hostname"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", j["time"])
    mail = alert_mails(g, "auth-failures-ip")[0]
    assert b"Subject: [godwit alert] auth-failures-ip: 127.0.0.1/32" in mail
    assert b'"kind":"auth-failures-ip"' in mail

    # the ban (1s) ends; a second burst within the hour: logged, not sent
    wait_for(lambda: fail_login(g) == 535, 30, interval=0.3,
             what="the ban to end")
    for _ in range(2):
        assert fail_login(g) in (421, 535)
    wait_for(lambda: len(alert_lines(g, "auth-failures-ip")) == 2, 30,
             what="the second alert line")
    second = alert_lines(g, "auth-failures-ip")[1]
    assert "notified=no reason=rate-limited" in second
    # nothing more was queued or run: the first mail and command only
    # (the queue is empty once the first mail is delivered)
    wait_for(lambda: not g.queue_files(), 30, what="an empty queue")
    assert len(alert_mails(g, "auth-failures-ip")) == 1
    assert len(command_outputs(g)) == 1


def test_account_and_spread_alerts(alerting):
    """Failures on one account from three addresses: the account's alert
    (subject: the account) and, with three addresses failing in the
    window, the spread alert."""
    g = alerting({"auth_failures_ip": 0, "auth_failures_account": 3,
                  "auth_failing_ips": 3})
    for src in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
        assert fail_login(g, "bob", src) == 535
    wait_for(lambda: alert_mails(g, "auth-failures-account") and
             alert_mails(g, "auth-failures-spread"), 30,
             what="both alert mails")
    acc = alert_lines(g, "auth-failures-account")
    assert len(acc) == 1 and "subject=bob@example.test count=3" in acc[0]
    spread = alert_lines(g, "auth-failures-spread")
    assert len(spread) == 1 and "count=3 max=3" in spread[0]
    assert not alert_lines(g, "auth-failures-ip")
    kinds = sorted(j["kind"] for j in
                   wait_for(lambda: len(command_outputs(g)) == 2 and
                            command_outputs(g), 30, what="two commands"))
    assert kinds == ["auth-failures-account", "auth-failures-spread"]


def test_certificate_near_expiry(alerting, cert):
    """The test certificate expires in two days: within cert_expiry."""
    t0 = time.time()
    g = alerting({"cert_expiry": "14d", "command": "exit 3"})
    crt = str(cert[0])
    wait_for(lambda: alert_lines(g, "cert-expiry"), 30,
             what="the cert-expiry alert")
    t1 = time.time()
    wait_for(lambda: alert_mails(g, "cert-expiry"), 30,
             what="the cert-expiry mail")
    lines = alert_lines(g, "cert-expiry")
    assert len(lines) == 1
    # the days left by the daemon's clock, at its start
    assert any(f"subject={crt} count={n} max=14 " in lines[0]
               for n in cert_days_left(cert[0], t0, t1)), lines
    mail = alert_mails(g, "cert-expiry")[0]
    assert crt.encode() in mail
    # a command that fails is logged, and nothing else breaks
    wait_for(lambda: "event=error action=command" in g.log_text() and
             "status=3" in g.log_text(), 30, what="the command's failure")


def test_no_alert_when_far_from_expiry(alerting):
    g = alerting({"cert_expiry": "1d"})
    # the start is done once the runner is up; the check runs before
    wait_for(lambda: "event=runner-start" in g.log_text(), 30,
             what="the runner")
    g.stop()
    assert not alert_lines(g, "cert-expiry")


def test_worker_crash_loop(alerting):
    g = alerting({"crash_loop": 2, "crash_window": "10m"}, workers=2)
    g.expect_crash = True
    for _ in range(2):
        kids = wait_for(lambda: len(g.children()) == 2 and g.children(),
                        30, what="two workers")
        os.kill(kids[0], signal.SIGKILL)
        wait_for(lambda: kids[0] not in g.children(), 30,
                 what="the worker to go")
    wait_for(lambda: alert_mails(g, "crash-loop"), 30,
             what="the crash-loop mail")
    lines = alert_lines(g, "crash-loop")
    assert len(lines) == 1 and "subject=workers count=2 max=2" in lines[0]


def submit(g, user, rcpts, subject):
    c = smtplib.SMTP("127.0.0.1", g.sub_port, timeout=30)
    c.ehlo("client.example.test")
    c.login(f"{user}@{DOMAIN}", PASSWORD)
    frm = f"{user}@{DOMAIN}"
    c.sendmail(frm, rcpts, f"From: <{frm}>\r\nSubject: {subject}\r\n\r\n"
               f"{subject}\r\n")
    c.quit()


def test_queue_size_and_bounces(alerting, uniq):
    """Two messages deferred (the test's resolver refuses every lookup):
    the queue-size alert; two recipients bounced at once (.invalid has
    no DNS at all): the bounces alert. Each once, though the queue stays
    that large."""
    g = alerting({"queue_size": 2, "bounces_per_hour": 2})
    for i in range(3):
        submit(g, "bob", [f"r{i}@far.example.net"], f"{uniq}-d{i}")
    wait_for(lambda: alert_lines(g, "queue-size"), 30,
             what="the queue-size alert")
    submit(g, "bob", ["x@nowhere.invalid", "y@nowhere.invalid"],
           f"{uniq}-b")
    wait_for(lambda: alert_mails(g, "bounces") and
             alert_mails(g, "queue-size"), 30, what="both mails")
    q = alert_lines(g, "queue-size")
    # checked every second: the third message may be in by then
    assert len(q) == 1 and re.search(r"subject=outbound count=[23] max=2 ",
                                     q[0]), q
    b = alert_lines(g, "bounces")
    assert len(b) == 1 and "subject=outbound count=2 max=2" in b[0]
    assert "window_s=3600" in b[0]


def test_slow_command_is_killed_and_blocks_nothing(alerting, uniq):
    """A command that never ends is killed after command_timeout; mail
    flows meanwhile (the parent never waits for it)."""
    g = alerting({"cert_expiry": "14d", "command": "exec sleep 300",
                  "command_timeout": "2s"})
    wait_for(lambda: alert_lines(g, "cert-expiry"), 30,
             what="the cert-expiry alert")
    # while the command sleeps, a message goes through and the alert
    # mail is delivered
    submit(g, "bob", [POSTMASTER], f"{uniq}-during")
    wait_for(lambda: any(uniq.encode() in m for m in
                         g.maildir_messages(POSTMASTER)) and
             alert_mails(g, "cert-expiry"), 30, what="both mails")
    wait_for(lambda: "error=\"timed out: killed\"" in g.log_text() and
             re.search(r"action=command pid=\d+ status=-1 signal=9",
                       g.log_text()), 30, what="the command killed")
