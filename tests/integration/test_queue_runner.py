"""
The queue runner on loopback, without network namespaces: DSN on the
server side (advertised, parameters accepted, a success report for a local
recipient), relaying through a smarthost to Postfix's smtp-sink, the
queue administration commands with the daemon running and stopped, and
the runner coming back after kill -9. The multi-host cases (MX routing,
retries against real peers, Postfix both ways) are in test_outbound.py and
test_outbound_postfix.py.
"""

import email
import email.policy
import json
import os
import signal
import subprocess

import pytest

from conftest import free_port, wait_for


def queue_json(g):
    r = g.run("queue", "list", "--json", check=True)
    return [json.loads(line) for line in r.stdout.splitlines() if line]


def reports(g, address):
    """The delivery reports in a mailbox, parsed."""
    out = []
    for raw in g.maildir_messages(address):
        m = email.message_from_bytes(raw, policy=email.policy.default)
        if m.get_content_type() == "multipart/report":
            out.append(m)
    return out


def assert_delivered_direct(g, queue_id=None):
    """The session's accept line (the one, or that of queue_id) says the
    message went to local mailboxes only: delivered at once, nothing
    queued for the runner."""
    lines = [l for l in g.log_text().splitlines()
             if " fac=smtp event=accept " in l and
             (queue_id is None or f" queue={queue_id} " in l)]
    assert len(lines) == 1, lines
    assert " remote=0 " in lines[0] and lines[0].endswith(
        " result=delivered"), lines[0]


def status_fields(report):
    """The per-recipient fields of the message/delivery-status part."""
    for part in report.walk():
        if part.get_content_type() == "message/delivery-status":
            # email parses the status groups as a list of header blocks
            blocks = part.get_payload()
            return [dict(b.items()) for b in blocks[1:]], dict(
                blocks[0].items())
    raise AssertionError("no message/delivery-status part")


def relay_config(port):
    return {
        "smtp": {"trusted_networks": ["127.0.0.0/8", "::1/128"]},
        "queue": {"retry_min": "1s", "retry_max": "2s"},
        "smarthost": {"host": "[127.0.0.1]", "port": port, "tls": "none",
                      "verify": False},
    }


def test_dsn_advertised_and_parameters_accepted(godwit):
    with godwit.smtp() as s:
        s.ehlo("client.test")
        assert s.has_extn("dsn")
        code, msg = s.docmd("MAIL FROM:<bob@example.test> RET=HDRS "
                            "ENVID=QQ+2Bx")
        assert code == 250, msg
        code, msg = s.docmd("RCPT TO:<alice@example.test> NOTIFY=NEVER "
                            "ORCPT=rfc822;alice@example.test")
        assert code == 250, msg
        code, msg = s.docmd("RCPT TO:<bob@example.test> NOTIFY=NEVER,DELAY")
        assert code == 501 or code == 555, (code, msg)


def test_success_report_for_local_recipient(make_godwit, uniq):
    # a trusted client: reports go only to senders someone verified
    # (test_dsn_policy.py)
    godwit = make_godwit({"smtp": {"trusted_networks": ["127.0.0.0/8"]}})
    with godwit.smtp() as s:
        s.sendmail("bob@example.test", ["alice@example.test"],
                   f"Subject: {uniq}\r\n\r\nhello\r\n".encode(),
                   mail_options=["RET=HDRS", "ENVID=env-" + uniq],
                   rcpt_options=["NOTIFY=SUCCESS,FAILURE",
                                 "ORCPT=rfc822;alice@example.test"])
    godwit.wait_messages("alice@example.test", 1)
    wait_for(lambda: reports(godwit, "bob@example.test"), 15,
             what="the success report in bob's mailbox")
    [rep] = reports(godwit, "bob@example.test")
    assert rep["Subject"] == "Successful Mail Delivery Report"
    assert "MAILER-DAEMON@" in rep["From"]
    assert rep.get_param("report-type") == "delivery-status"
    rcpts, per_msg = status_fields(rep)
    assert per_msg["Original-Envelope-Id"] == "env-" + uniq
    assert rcpts[0]["Action"] == "delivered"
    assert rcpts[0]["Status"] == "2.0.0"
    assert "alice@example.test" in rcpts[0]["Final-Recipient"]
    assert rcpts[0]["Original-Recipient"] == "rfc822;alice@example.test"
    raw = godwit.maildir_messages("bob@example.test")[0]
    assert raw.startswith(b"Return-Path: <>\n"), raw[:80]
    # the ,W= size POP3 announces is the report's size with CRLF ends
    [path] = godwit.maildir_files("bob@example.test")
    w = int(path.name.split(",W=")[1].split(":")[0].split(",")[0])
    assert w == len(raw) + raw.count(b"\n"), (path.name, len(raw))
    # RET=HDRS: the original header is returned, not the body
    assert uniq.encode() in raw and b"hello" not in raw.split(b"\n\n", 1)[1]
    assert queue_json(godwit) == []


def test_no_report_without_notify_success(godwit, uniq):
    with godwit.smtp() as s:
        s.sendmail("bob@example.test", ["alice@example.test"],
                   f"Subject: {uniq}\r\n\r\nhello\r\n".encode(),
                   rcpt_options=["NOTIFY=FAILURE"])
    godwit.wait_messages("alice@example.test", 1)
    # delivered by the session itself, not through the queue (where a
    # report could be made later): the queue holds nothing that could
    # become a report
    assert_delivered_direct(godwit)
    assert queue_json(godwit) == []
    assert reports(godwit, "bob@example.test") == []


def test_smarthost_relays_everything(make_godwit, sink, uniq):
    port, d = sink
    g = make_godwit(relay_config(port))
    n = 20
    with g.smtp() as s:
        for i in range(n):
            s.sendmail("alice@example.test",
                       [f"r{i}@remote.example", f"x{i}@other.example"],
                       f"Subject: {uniq} {i}\r\n\r\n.dot line\r\nbody {i}\r\n"
                       .encode())
    wait_for(lambda: len(os.listdir(d)) == n, 30,
             what=f"{n} messages at the sink")
    wait_for(lambda: queue_json(g) == [], 10, what="an empty queue")
    bodies = [open(d / f, "rb").read() for f in os.listdir(d)]
    for i in range(n):
        # smtp-sink stores what it got with LF line ends
        [b] = [b for b in bodies if f"{uniq} {i}\n".encode() in b]
        # both recipients in one transaction, the dot line unstuffed
        assert f"X-Rcpt-Args: <r{i}@remote.example>".encode() in b
        assert f"X-Rcpt-Args: <x{i}@other.example>".encode() in b
        assert b"\n.dot line\n" in b
    assert g.log_text().count("fac=delivery event=sent") == 2 * n


def test_queue_admin_with_and_without_daemon(make_godwit, uniq):
    dead = free_port()  # nothing listens here: every attempt defers
    g = make_godwit(relay_config(dead))
    with g.smtp() as s:
        for i in range(3):
            s.sendmail("alice@example.test", [f"r{i}@remote.example"],
                       f"Subject: {uniq} {i}\r\n\r\nx\r\n".encode())

    def states():
        return sorted(m["state"] for m in queue_json(g))

    wait_for(lambda: states() == ["deferred"] * 3, 15, what="3 deferred")
    q = queue_json(g)
    assert all(m["attempts"] >= 1 and "Connection refused" in m["last_error"]
               for m in q), q
    ids = sorted(m["id"] for m in q)

    r = g.run("queue", "hold", ids[0])
    assert r.returncode == 0, r.stderr
    wait_for(lambda: sorted(m["state"] for m in queue_json(g)
                            if m["id"] == ids[0]) == ["hold"], 10,
             what="held")
    r = g.run("queue", "flush")
    assert r.returncode == 0 and "scheduled" in r.stdout, r
    r = g.run("queue", "hold", "0123456789abcdef")
    assert r.returncode == 1 and "no such message" in r.stderr, r
    r = g.run("queue", "hold", "../etc/passwd")
    assert r.returncode == 1 and "not a queue id" in r.stderr, r

    # delete --bounce: alice is told, the message is gone
    r = g.run("queue", "delete", ids[1], "--bounce")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: reports(g, "alice@example.test"), 15,
             what="the bounce for the deleted message")
    [rep] = reports(g, "alice@example.test")
    rcpts, _ = status_fields(rep)
    assert rcpts[0]["Action"] == "failed" and rcpts[0]["Status"] == "5.0.0"
    wait_for(lambda: ids[1] not in [m["id"] for m in queue_json(g)], 10,
             what="the deleted message gone")

    # without the daemon: the files are moved directly; flush refuses
    g.stop()
    r = g.run("queue", "release", ids[0])
    assert r.returncode == 0 and "daemon not running" in r.stdout, r
    r = g.run("queue", "flush")
    assert r.returncode == 1 and "not running" in r.stderr, r
    r = g.run("queue", "delete", ids[2])
    assert r.returncode == 0, r
    assert [(m["id"], m["state"]) for m in queue_json(g)] == [
        (ids[0], "deferred")]
    r = g.run("queue", "delete", "all")
    assert r.returncode == 0 and "1 message" in r.stdout, r
    assert queue_json(g) == []
    log = g.log_text()
    assert "fac=queue event=hold" in log and "fac=queue event=delete" in log


def test_runner_restarted_after_kill9(make_godwit, sink, uniq):
    port, d = sink
    g = make_godwit(relay_config(port))
    pid = wait_for(lambda: g.runner_pid(), 10, what="the queue runner")
    os.kill(pid, signal.SIGKILL)
    g.expect_crash = True
    new = wait_for(lambda: (p := g.runner_pid()) and p != pid and p, 15,
                   what="a new queue runner")
    assert new != pid
    with g.smtp() as s:
        s.sendmail("alice@example.test", ["r@remote.example"],
                   f"Subject: {uniq}\r\n\r\nx\r\n".encode())
    wait_for(lambda: len(os.listdir(d)) == 1, 20, what="delivery")
    assert "event=runner-died" in g.log_text()


def test_route_command_literal(godwit):
    r = godwit.run("route", "[192.0.2.1]")
    assert r.returncode == 0, r
    assert "192.0.2.1" in r.stdout


def test_mx_loop_and_mx_preferred_to_us(make_godwit, sink, tmp_path, uniq):
    """RFC 5321 5.1: when godwit (mx.example.test) is an MX host of the
    domain, only hosts preferred to it are used; if it is the best one,
    the mail loops and bounces at once (5.4.6)."""
    from test_dns import start_unbound, stop_unbound

    port, d = sink
    dns_port = free_port()
    records = [
        "loop.test. MX 10 mx.example.test.",
        "mx.example.test. A 127.0.0.1",
        "backup.test. MX 20 mx.example.test.",
        "backup.test. MX 10 relay.backup.test.",
        "relay.backup.test. A 127.0.0.1",
    ]
    unbound = start_unbound(tmp_path / "unbound", dns_port, records)
    try:
        g = make_godwit({
            "smtp": {"trusted_networks": ["127.0.0.0/8", "::1/128"]},
            "dns": {"resolver": [f"127.0.0.1@{dns_port}"]},
            "outbound": {"port": port, "ip_version": "ipv4"},
        })
        with g.smtp() as s:
            s.sendmail("alice@example.test", ["x@loop.test"],
                       f"Subject: {uniq} loop\r\n\r\nx\r\n".encode())
            s.sendmail("alice@example.test", ["y@backup.test"],
                       f"Subject: {uniq} backup\r\n\r\nx\r\n".encode())
        wait_for(lambda: len(os.listdir(d)) == 1, 20,
                 what="delivery through the MX preferred to us")
        body = open(d / os.listdir(d)[0], "rb").read()
        assert b"<y@backup.test>" in body
        wait_for(lambda: reports(g, "alice@example.test"), 20,
                 what="the loop bounce")
        [rep] = reports(g, "alice@example.test")
        rcpts, _ = status_fields(rep)
        assert rcpts[0]["Action"] == "failed"
        assert rcpts[0]["Status"] == "5.4.6"
        assert "loops back to myself" in rcpts[0]["Diagnostic-Code"]
        wait_for(lambda: queue_json(g) == [], 10, what="an empty queue")
    finally:
        stop_unbound(unbound)


def test_message_in_incoming_and_active_taken_once(make_godwit, sink, uniq):
    """A power cut during a move out of incoming/ (link into active/,
    fsync, unlink) can leave a message under both names, one file. At the
    next start the runner's recovery and its batched pickup take it as
    one message: delivered once, nothing left behind."""
    port, d = sink
    g = make_godwit(relay_config(free_port()))  # nothing listens: deferred
    with g.smtp() as s:
        for i in range(3):
            s.sendmail("alice@example.test", [f"r{i}@remote.example"],
                       f"Subject: {uniq} {i}\r\n\r\nx\r\n".encode())
    wait_for(lambda: sorted(m["state"] for m in queue_json(g)) ==
             ["deferred"] * 3, 15, what="3 deferred")
    g.stop()
    q = g.data_dir / "queue"
    ids = sorted(p.name for p in (q / "deferred").iterdir())
    for qid in ids[:2]:
        os.rename(q / "deferred" / qid, q / "incoming" / qid)
        os.link(q / "incoming" / qid, q / "active" / qid)
    g.config["smarthost"]["port"] = port
    g.write_config()
    g.start()
    g.run("queue", "flush", check=True)
    wait_for(lambda: len(os.listdir(d)) >= 3, 30, what="3 messages at the sink")
    wait_for(lambda: queue_json(g) == [], 15, what="an empty queue")
    # no file left to send a second copy from, and none due in the runner
    # (its own count, through the control socket)
    out = g.run("queue", "flush", check=True).stdout
    assert out.startswith("flush: 0 "), out
    assert len(os.listdir(d)) == 3
    assert g.log_text().count("fac=delivery event=sent") == 3
    for sub in ("incoming", "active", "deferred", "hold"):
        assert not list((q / sub).iterdir()), sub
