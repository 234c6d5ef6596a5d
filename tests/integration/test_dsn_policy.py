"""
Delivery reports and reflection: a client that neither
authenticated nor is trusted can write any MAIL FROM, so godwit must not
send success or delay reports to that address (that would reflect mail at
a third party), and never return the full message to it: RET=FULL becomes
headers only, even on a failure bounce. Failure bounces themselves stay
(RFC 5321 6.1). Authenticated and trusted senders get what they ask for.
"""

import smtplib


from conftest import PASSWORD, client_tls_context, free_port, wait_for
from test_queue_runner import (assert_delivered_direct, queue_json, reports,
                               status_fields)


def _body(marker, kb=40, sender="victim@outside.example"):
    """A message with a body worth reflecting (about kb KiB)."""
    line = "x" * 70 + "\r\n"
    return (f"Subject: {marker}\r\nFrom: {sender}\r\n\r\n"
            f"body-marker-{marker}\r\n" + line * (kb * 1024 // 72)).encode()


def test_no_success_report_to_unverified_sender(godwit, uniq):
    """The issue's reproduction: unauthenticated on the MX port,
    MAIL FROM:<victim@outside.example> RET=FULL and RCPT
    TO:<alice@example.test> NOTIFY=SUCCESS: alice gets the mail, no
    report is queued for the victim."""
    with godwit.raw() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<victim@outside.example> RET=FULL").code == 250
        assert c.cmd("RCPT TO:<alice@example.test> NOTIFY=SUCCESS").code == 250
        assert c.cmd("DATA").code == 354
        c.send(_body(uniq) + b".\r\n")
        r = c.reply()
        assert r.code == 250, r
        c.cmd("QUIT")
    godwit.wait_messages("alice@example.test", 1)
    # The old runner queued the report within a moment of the delivery.
    # Now NOTIFY=SUCCESS is dropped at RCPT, so the session delivers the
    # message itself and nothing reaches the queue, where a report could
    # be made later: the accept line says so, and the queue is empty.
    assert_delivered_direct(godwit, r.text.rsplit(" ", 1)[1])
    q = queue_json(godwit)
    assert q == [], f"a report was queued: {q}"
    log = godwit.log_text()
    assert "fac=smtp event=dsn-limited" in log
    assert "victim@outside.example" not in "".join(
        p.read_text(errors="replace") for p in
        (godwit.data_dir / "queue").rglob("*") if p.is_file())


def _submission(make_godwit, cert, extra=None):
    crt, key = cert
    port = free_port()
    o = {"tls": {"certificates": [{"cert": str(crt), "key": str(key)}]}}
    if extra:
        o.update(extra)
    g = make_godwit(o, start=False)
    g.config["listeners"].append(
        {"name": "submission", "protocol": "submission",
         "listen": [f"127.0.0.1:{port}"]})
    g.write_config()
    g.sub_port = port
    g.start()
    return g


def test_success_report_for_authenticated_sender(make_godwit, cert, uniq):
    """The same request from an authenticated user: the report comes,
    and (a success report) with the header section only."""
    g = _submission(make_godwit, cert)
    s = smtplib.SMTP("127.0.0.1", g.sub_port, local_hostname="client.test",
                     timeout=20)
    s.starttls(context=client_tls_context())
    s.login("alice@example.test", PASSWORD)
    s.sendmail("alice@example.test", ["bob@example.test"], _body(uniq, 4, "alice@example.test"),
               mail_options=["RET=FULL"], rcpt_options=["NOTIFY=SUCCESS"])
    s.quit()
    g.wait_messages("bob@example.test", 1)
    wait_for(lambda: reports(g, "alice@example.test"), 15,
             what="the success report in alice's mailbox")
    [rep] = reports(g, "alice@example.test")
    rcpts, _ = status_fields(rep)
    assert rcpts[0]["Action"] == "delivered"
    assert "dsn-limited" not in g.log_text()


def test_failure_bounce_to_unverified_sender_has_headers_only(make_godwit,
                                                              uniq):
    """A failure bounce still goes to an unverified sender, but RET=FULL
    is not honoured: the header section only."""
    g = make_godwit()
    g.admin("alias", "add", "fwd@example.test", "far@remote.example")
    with g.raw() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<bob@example.test> RET=FULL").code == 250
        assert c.cmd("RCPT TO:<fwd@example.test> NOTIFY=SUCCESS,FAILURE"
                     ).code == 250
        assert c.cmd("DATA").code == 354
        c.send(_body(uniq, 2) + b".\r\n")
        assert c.reply().code == 250
        c.cmd("QUIT")
    [m] = wait_for(lambda: [m for m in queue_json(g)
                            if m["state"] == "deferred"], 30,
                   what="the forwarded message deferred")
    r = g.run("queue", "delete", m["id"], "--bounce")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: reports(g, "bob@example.test"), 15,
             what="the bounce in bob's mailbox")
    [rep] = reports(g, "bob@example.test")
    rcpts, _ = status_fields(rep)
    assert rcpts[0]["Action"] == "failed"
    raw = g.maildir_messages("bob@example.test")[0]
    assert uniq.encode() in raw                     # the header section
    assert f"body-marker-{uniq}".encode() not in raw  # not the body
    assert "ret=HDRS" in g.log_text()
