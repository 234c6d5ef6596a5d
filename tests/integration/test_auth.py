"""
Authenticated submission (RFC 6409, RFC 8314, RFC 4954) with real clients:
smtplib (starttls, login, SMTP_SSL), swaks --auth and curl --ssl-reqd.
Brute-force brakes: growing delays, then a ban.
"""

import base64
import os
import smtplib
import subprocess
import time

import pytest

from conftest import PASSWORD, client_tls_context as ctx, free_port, wait_for
from smtpclient import RawSMTP, crlf


@pytest.fixture
def sub(make_godwit, cert):
    """A godwit with mx, submission (587-style) and submissions
    (465-style) listeners on free ports."""
    crt, key = cert
    ports = {"submission": free_port(), "submissions": free_port()}

    def overrides(extra=None):
        o = {
            "tls": {"certificates": [{"cert": str(crt), "key": str(key)}]},
            "auth": {"delay_base": "100ms", "delay_max": "400ms",
                     "max_failures_ip": 4, "ban_time": "3s"},
        }
        if extra:
            o.update(extra)
        return o

    def make(extra=None, start=True):
        g = make_godwit(overrides(extra), start=False)
        g.config["listeners"] += [
            {"name": "submission", "protocol": "submission",
             "listen": [f"127.0.0.1:{ports['submission']}",
                        f"[::1]:{ports['submission']}"]},
            {"name": "submissions", "protocol": "submissions",
             "listen": [f"127.0.0.1:{ports['submissions']}",
                        f"[::1]:{ports['submissions']}"]},
        ]
        g.write_config()
        g.sub_port = ports["submission"]
        g.subs_port = ports["submissions"]
        if start:
            g.start()
        return g

    return make


def submit(g, family=4, user="alice@example.test", password=PASSWORD,
           sender="alice@example.test", rcpts=("bob@example.test",),
           body="Subject: hi\n\nsubmitted\n"):
    host = "127.0.0.1" if family == 4 else "::1"
    s = smtplib.SMTP(host, g.sub_port, local_hostname="client.test",
                     timeout=20)
    s.starttls(context=ctx())
    s.login(user, password)
    s.sendmail(sender, list(rcpts), crlf(body))
    s.quit()


@pytest.mark.parametrize("family", [4, 6])
def test_submission_starttls_login(sub, family):
    g = sub()
    submit(g, family)
    msgs = g.wait_messages("bob@example.test", 1)
    assert b"submitted" in msgs[0]
    assert b"with ESMTPSA" in msgs[0]
    assert "event=auth" in g.log_text() and "result=ok" in g.log_text()


@pytest.mark.parametrize("family", [4, 6])
def test_submissions_implicit_tls(sub, family):
    g = sub()
    host = "127.0.0.1" if family == 4 else "::1"
    s = smtplib.SMTP_SSL(host, g.subs_port, local_hostname="client.test",
                         context=ctx(), timeout=20)
    s.login("bob@example.test", PASSWORD)
    s.sendmail("bob@example.test", ["alice@example.test"],
               crlf("Subject: 465\n\nimplicit tls\n"))
    s.quit()
    assert any(b"implicit tls" in m
               for m in g.wait_messages("alice@example.test", 1))


def test_submission_relays_to_remote_domain(sub):
    g = sub()
    submit(g, rcpts=("someone@remote.example",))
    wait_for(g.queue_files, 10, interval=0.1, what="the message queued")
    assert len(g.queue_files()) == 1
    out = g.run("queue", "list", check=True).stdout
    assert "someone@remote.example" in out


def test_mail_without_auth_on_submission(sub):
    g = sub()
    c = RawSMTP("127.0.0.1", g.sub_port)
    assert c.reply().code == 220
    c.ehlo()
    r = c.cmd("MAIL FROM:<alice@example.test>")
    assert (r.code, r.enh) == (530, "5.7.0"), r
    c.close()


def test_auth_refused_without_tls(sub):
    g = sub()
    c = RawSMTP("127.0.0.1", g.sub_port)
    c.reply()
    r = c.ehlo()
    assert "AUTH" not in r.text
    plain = base64.b64encode(b"\0alice@example.test\0" +
                             PASSWORD.encode()).decode()
    r = c.cmd(f"AUTH PLAIN {plain}")
    assert (r.code, r.enh) == (538, "5.7.11"), r
    c.close()


def test_plaintext_client_on_implicit_tls_port(sub):
    g = sub()
    c = RawSMTP("127.0.0.1", g.subs_port, timeout=5)
    c.send("EHLO client.test\r\n")
    # the server wants a TLS ClientHello: no SMTP reply, the connection ends
    assert c.wait_closed(timeout=10)


def test_wrong_password_unknown_user_and_bad_base64(sub):
    g = sub()
    s = smtplib.SMTP("127.0.0.1", g.sub_port, timeout=20)
    s.starttls(context=ctx())
    s.ehlo("client.test")
    code, _ = s.docmd("AUTH", "PLAIN " + base64.b64encode(
        b"\0alice@example.test\0wrong").decode())
    assert code == 535
    code, _ = s.docmd("AUTH", "PLAIN " + base64.b64encode(
        b"\0nobody@example.test\0" + PASSWORD.encode()).decode())
    assert code == 535
    code, _ = s.docmd("AUTH", "PLAIN !!!notbase64")
    assert code == 501
    code, _ = s.docmd("AUTH", "PLAIN")       # empty challenge follows
    assert code == 334
    code, _ = s.docmd("*")
    assert code == 501                       # cancelled
    code, _ = s.docmd("AUTH", "BOGUS")
    assert code == 504
    s.close()


def test_sending_as_someone_else_is_refused(sub):
    g = sub()
    s = smtplib.SMTP("127.0.0.1", g.sub_port, timeout=20)
    s.starttls(context=ctx())
    s.login("alice@example.test", PASSWORD)
    code, msg = s.mail("bob@example.test")
    assert code == 553 and msg.startswith(b"5.7.1"), msg
    s.rset()
    code, _ = s.mail("alice+lists@example.test")    # sub-address: hers
    assert code == 250
    s.rset()
    code, _ = s.mail("postmaster@example.test")     # an alias to her
    assert code == 250
    s.rset()
    code, _ = s.mail("team@example.test")           # alias incl. her
    assert code == 250
    s.quit()


def test_swaks_and_curl(sub):
    g = sub()
    for mech in ("PLAIN", "LOGIN"):
        r = subprocess.run(
            ["swaks", "--server", f"127.0.0.1:{g.sub_port}", "--tls",
             "--auth", mech, "--auth-user", "alice@example.test",
             "--auth-password", PASSWORD, "--from", "alice@example.test",
             "--to", "bob@example.test", "--body", f"swaks {mech}"],
            capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
    msg = crlf("From: alice@example.test\nSubject: curl\n\ncurl body\n")
    if isinstance(msg, bytes):
        msg = msg.decode()
    for url, port in (("smtp", g.sub_port), ("smtps", g.subs_port)):
        r = subprocess.run(
            ["curl", "-sS", "--ssl-reqd", "-k", f"{url}://127.0.0.1:{port}",
             "--user", f"alice@example.test:{PASSWORD}",
             "--mail-from", "alice@example.test",
             "--mail-rcpt", "bob@example.test", "-T", "-"],
            input=msg, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
    bodies = g.wait_messages("bob@example.test", 4)
    assert sum(b"curl body" in m for m in bodies) == 2


def test_scram_sha256_with_a_real_client(sub):
    """SCRAM-SHA-256 (RFC 7677) with a client written from the RFC here,
    against the stored secret created by `godwit user add`."""
    import hashlib
    import hmac
    g = sub()
    c = RawSMTP("127.0.0.1", g.sub_port)
    c.reply()
    c.ehlo()
    r = c.cmd("STARTTLS")
    assert r.code == 220
    c.sock = ctx().wrap_socket(c.sock, server_hostname="localhost")
    r = c.ehlo()
    assert "SCRAM-SHA-256" in r.text
    cnonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = f"n=alice@example.test,r={cnonce}"
    r = c.cmd("AUTH SCRAM-SHA-256 " +
              base64.b64encode(("n,," + first_bare).encode()).decode())
    assert r.code == 334, r
    server_first = base64.b64decode(r.lines[0][4:]).decode()
    attrs = dict(a.split("=", 1) for a in server_first.split(","))
    assert attrs["r"].startswith(cnonce)
    salted = hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(),
                                 base64.b64decode(attrs["s"]), int(attrs["i"]))
    ckey = hmac.new(salted, b"Client Key", "sha256").digest()
    stored = hashlib.sha256(ckey).digest()
    final_nop = f"c=biws,r={attrs['r']}"
    auth_msg = f"{first_bare},{server_first},{final_nop}".encode()
    sig = hmac.new(stored, auth_msg, "sha256").digest()
    proof = bytes(a ^ b for a, b in zip(ckey, sig))
    r = c.cmd(base64.b64encode(
        f"{final_nop},p={base64.b64encode(proof).decode()}".encode()).decode())
    assert r.code == 334, r
    skey = hmac.new(salted, b"Server Key", "sha256").digest()
    want = base64.b64encode(hmac.new(skey, auth_msg, "sha256").digest())
    assert base64.b64decode(r.lines[0][4:]) == b"v=" + want
    r = c.cmd("")
    assert r.code == 235, r
    c.close()


def test_brute_force_delay_ban_and_unban(sub):
    g = sub()
    bad = "PLAIN " + base64.b64encode(b"\0alice@example.test\0nope").decode()
    times = []
    s = smtplib.SMTP("127.0.0.1", g.sub_port, timeout=20)
    s.starttls(context=ctx())
    s.ehlo("client.test")
    for i in range(3):
        t0 = time.monotonic()
        code, _ = s.docmd("AUTH", bad)
        times.append(time.monotonic() - t0)
        assert code == 535
    # the delay grows (100 ms, 200 ms, 400 ms)
    assert times[0] >= 0.08 and times[2] >= 0.35, times
    t0 = time.monotonic()
    code, _ = s.docmd("AUTH", bad)       # the 4th failure: banned
    assert code == 535
    # the 535, then the 421 of the ban, then the close (written in that
    # order before the server closes)
    code, msg = s.getreply()
    assert (code, msg[:6]) == (421, b"4.7.0 "), (code, msg)
    s.close()
    # while banned: refused at connect, even with the right password
    c = RawSMTP("127.0.0.1", g.sub_port)
    r = c.reply()
    assert (r.code, r.enh) == (421, "4.7.0"), r
    c.close()
    log = g.log_text()
    assert "event=ban" in log and "result=fail" in log
    assert "user=alice@example.test" in log
    # after ban_time (3 s from the 4th failure, which came after t0) the
    # door opens again: not before, and soon after
    def unbanned():
        c = RawSMTP("127.0.0.1", g.sub_port)
        try:
            r = c.reply()
        finally:
            c.close()
        if r.code == 220:
            return time.monotonic() - t0
        assert (r.code, r.enh) == (421, "4.7.0"), r
        return False
    elapsed = wait_for(unbanned, t0 + 4.5 - time.monotonic(), interval=0.1,
                       what="the ban to end")
    assert elapsed >= 2.9, f"the 3 s ban ended after {elapsed:.2f}s"
    submit(g)
    assert g.wait_messages("bob@example.test", 1)


def _submit_raw(g, body, sender="alice@example.test"):
    s = smtplib.SMTP("127.0.0.1", g.sub_port, timeout=20)
    s.starttls(context=ctx())
    s.login("alice@example.test", PASSWORD)
    try:
        s.sendmail(sender, ["bob@example.test"], crlf(body))
        return 250, b""
    except smtplib.SMTPDataError as e:
        return e.smtp_code, e.smtp_error
    finally:
        s.close()


def test_submission_adds_date_and_message_id(sub):
    g = sub()
    code, _ = _submit_raw(g, "From: alice@example.test\nSubject: bare\n\nno date\n")
    assert code == 250
    code, _ = _submit_raw(g, "From: alice@example.test\nDate: Mon, 1 Jan 2024 "
                             "00:00:00 +0000\nMessage-ID: <own@client>\n"
                             "Subject: full\n\nhas both\n")
    assert code == 250
    msgs = g.wait_messages("bob@example.test", 2)
    bare = next(m for m in msgs if b"no date" in m)
    full = next(m for m in msgs if b"has both" in m)
    head = bare.split(b"\n\n", 1)[0]
    assert head.count(b"\nDate: ") == 1 and head.count(b"\nMessage-ID: <") == 1
    # added in the header, before the body
    assert bare.index(b"Message-ID:") < bare.index(b"no date")
    head = full.split(b"\n\n", 1)[0]
    assert head.count(b"Date:") == 1 and b"Message-ID: <own@client>" in head
    assert head.count(b"Message-ID:") == 1


@pytest.mark.parametrize("from_field,ok", [
    ("alice@example.test", True),
    ("Alice Example <alice@example.test>", True),
    ("\"Team\" <team@example.test>", True),        # alias delivering to her
    ("Alice <ALICE+news@Example.Test>", True),      # sub-address, any case
    ("bob@example.test", False),
    ("Bob <bob@example.test>", False),
    ("Alice <alice@example.test>, Bob <bob@example.test>", False),
    ("Alice <alice@example.test>\n  (folded)", True),
])
def test_header_from_must_be_the_users(sub, from_field, ok):
    g = sub()
    code, err = _submit_raw(g, f"From: {from_field}\nSubject: from check\n\nbody\n")
    if ok:
        assert code == 250, err
    else:
        assert code == 553 and err.startswith(b"5.7.1"), (code, err)


def test_cram_md5_when_enabled(sub):
    """CRAM-MD5 is off by default (it needs a plaintext-equivalent secret);
    with auth.cram_md5 the secret is stored at the next password change."""
    g = sub({"auth": {"cram_md5": True, "delay_base": "100ms",
                      "delay_max": "400ms", "max_failures_ip": 4,
                      "ban_time": "3s"}})
    g.run("user", "passwd", "alice@example.test", "--password-stdin",
          input=PASSWORD + "\n", check=True)
    r = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{g.sub_port}", "--tls",
         "--auth", "CRAM-MD5", "--auth-user", "alice@example.test",
         "--auth-password", PASSWORD, "--from", "alice@example.test",
         "--to", "bob@example.test", "--body", "swaks cram"],
        capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "mech=CRAM-MD5 result=ok" in g.log_text()


def test_cram_md5_not_offered_by_default(sub):
    g = sub()
    s = smtplib.SMTP("127.0.0.1", g.sub_port, timeout=20)
    s.starttls(context=ctx())
    s.ehlo("client.test")
    assert "CRAM-MD5" not in s.esmtp_features.get("auth", "").upper()
    code, _ = s.docmd("AUTH", "CRAM-MD5")
    assert code == 504
    s.close()


def test_authenticated_relay_on_port_25(sub):
    """On the MX listener AUTH is off by default; a listener that allows it
    lets authenticated users relay, and nobody else."""
    g = sub(start=False)
    g.listener("mx")["auth"] = True
    g.write_config()
    g.start()
    c = RawSMTP("127.0.0.1", g.port)
    c.reply()
    c.ehlo()
    c.cmd("MAIL FROM:<alice@example.test>")
    r = c.cmd("RCPT TO:<far@remote.example>")
    assert (r.code, r.enh) == (554, "5.7.1"), r
    c.close()
    s = smtplib.SMTP("127.0.0.1", g.port, timeout=20)
    s.starttls(context=ctx())
    s.login("alice@example.test", PASSWORD)
    s.sendmail("alice@example.test", ["far@remote.example"],
               crlf("Subject: relay\n\nvia 25\n"))
    s.quit()
    assert len(g.queue_files()) == 1


def _smtp_login(g, pw):
    s = smtplib.SMTP("127.0.0.1", g.sub_port, timeout=20)
    s.starttls(context=ctx())
    try:
        s.login("alice@example.test", pw)
        return True
    except smtplib.SMTPAuthenticationError:
        return False
    finally:
        s.close()


def test_auth_cache_never_admits_a_wrong_or_old_password(sub):
    """Successful logins are cached (one yescrypt per hour per user); the
    cache must still refuse a wrong password, and with auth.cache_ttl 0
    (every login asks the database) forget the old password at once when
    it is changed."""
    # smtplib's login() tries every mechanism: each wrong password counts
    # twice, so this test needs room below the ban threshold
    g = sub({"auth": {"delay_base": "50ms", "delay_max": "100ms",
                      "max_failures_ip": 20, "cache_ttl": 0}})

    def login(pw):
        return _smtp_login(g, pw)

    assert login(PASSWORD)
    assert login(PASSWORD)                  # from the cache
    assert not login(PASSWORD + "x")        # never from the cache
    g.run("user", "passwd", "alice@example.test", "--password-stdin",
          input="a brand new password\n", check=True)
    assert not login(PASSWORD)              # the old one is gone
    assert login("a brand new password")


def test_auth_cache_ttl_bounds_an_old_password(sub):
    """auth.cache_ttl: a password the database confirmed logs in again
    without a lookup for that long, so a password change reaches the
    node at most cache_ttl late; past it the old password fails, the new
    one works. A wrong password is never served from the cache."""
    ttl = 2.0
    g = sub({"workers": 1,
             "auth": {"delay_base": "50ms", "delay_max": "100ms",
                      "max_failures_ip": 20, "cache_ttl": "2s"}})
    assert _smtp_login(g, PASSWORD)
    confirmed = time.monotonic()
    assert not _smtp_login(g, PASSWORD + "x")
    g.run("user", "passwd", "alice@example.test", "--password-stdin",
          input="a brand new password\n", check=True)
    # the new password is not the cached one: asked, and right
    assert _smtp_login(g, "a brand new password")
    # that login replaced the entry: the old password goes to the
    # database at once
    assert not _smtp_login(g, PASSWORD)
    # again, this time nobody logs in with the new password first
    g.run("user", "passwd", "alice@example.test", "--password-stdin",
          input=PASSWORD + "\n", check=True)
    assert _smtp_login(g, PASSWORD)
    confirmed = time.monotonic()
    g.run("user", "passwd", "alice@example.test", "--password-stdin",
          input="a third password\n", check=True)
    time.sleep(max(0.0, confirmed + ttl + 0.2 - time.monotonic()))
    assert not _smtp_login(g, PASSWORD)
    assert _smtp_login(g, "a third password")


def test_plain_empty_password_is_a_failed_login(sub):
    """AUTH PLAIN with an empty password decodes fine: it is a wrong
    password (535 5.7.8, was 501 "cannot decode"), logged as an auth
    failure and counted towards the ban like any other; AUTH LOGIN
    likewise."""
    g = sub()
    c = RawSMTP("127.0.0.1", g.sub_port)
    c.reply()
    c.ehlo()
    assert c.cmd("STARTTLS").code == 220
    c.sock = ctx().wrap_socket(c.sock, server_hostname="localhost")
    c.ehlo()
    empty = base64.b64encode(b"\0alice@example.test\0").decode()
    r = c.cmd("AUTH PLAIN " + empty)
    assert (r.code, r.enh) == (535, "5.7.8"), r
    r = c.cmd("AUTH LOGIN " + base64.b64encode(b"alice@example.test").decode())
    assert r.code == 334, r
    r = c.cmd("")
    assert (r.code, r.enh) == (535, "5.7.8"), r
    # two more: the 4th failure (max_failures_ip 4) bans the address
    for _ in range(2):
        r = c.cmd("AUTH PLAIN " + empty)
        assert r.code == 535, r
    c.close()
    log = g.log_text()
    fails = [l for l in log.splitlines()
             if "event=auth" in l and "result=fail" in l]
    assert len(fails) == 4, log
    assert all("user=alice@example.test" in l for l in fails), fails
    assert "fac=smtp event=ban" in log, log
