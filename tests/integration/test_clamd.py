"""
clamd (filter.clamd) end to end: a real clamd (Debian's clamav-daemon,
started by clamd_peer.py, once for the module) with the test signature
database (no freshclam, no internet): clamd_peer's .ndb body signature for
its SAMPLE string, its EICAR hash, and here an .hdb hash signature for a
binary attachment (found only if clamd decodes the MIME part godwit
streamed). It listens on a UNIX socket, on 127.0.0.1 and on ::1, with a
small StreamMaxLength for the limit case.

The cases: clean mail delivered with its X-Godwit-Virus-Scan field; a
virus refused with 554 5.7.1 naming the signature and stored nowhere, on
port 25 and on submission; clamd down (killed, its socket file left;
stopped; a closed TCP port) answered 451 4.7.1, or accepted with the
not-scanned field under on_error: accept; a clamd that accepts and never answers giving 451 once
the timeout is over (and the scan cancelled when the client leaves
first); the stream is the message as the client sent it; a message
over clamd's StreamMaxLength (clamd's ERROR) and one over
filter.clamd.max_size (not sent); the TCP socket forms; `godwit
config check` naming the line of a bad socket.
"""

import base64
import hashlib
import os
import smtplib
import socket
import subprocess
import threading
import time

import pytest

from conftest import (PASSWORD, Godwit, serving, client_tls_context,
                      free_port, godwit_base, wait_for)
from smtpclient import crlf, make_message, transaction

import clamd_peer

ALICE = "alice@example.test"
BOB = "bob@example.test"

BODY_SIG = clamd_peer.SAMPLE_SIG
BODY_SAMPLE = clamd_peer.SAMPLE.decode()
ATTACH_SIG = "Godwit.Test.Attachment"
# a binary blob only its hash signature names
ATTACHMENT = bytes((i * 37 + 11) % 256 for i in range(3000)) + b"godwit"
# clamd's StreamMaxLength: above the spool's memory part (256K), so the
# whole-message cases read the spool file back too
STREAM_MAX = 1536 * 1024
EICAR = clamd_peer.EICAR
EICAR_SIG = clamd_peer.EICAR_SIG


def start_clamd(godwit_root, name):
    """A clamd of clamd_peer's with the test database plus ATTACHMENT's
    hash, on its UNIX socket, 127.0.0.1 and ::1."""
    ok, why = clamd_peer.available()
    if not ok:
        pytest.skip(why)
    return clamd_peer.Clamd(godwit_base(godwit_root, name), free_port(),
                            hashes=[(ATTACH_SIG, ATTACHMENT)],
                            stream_max=f"{STREAM_MAX // 1024}K",
                            ipv6=True).start()


@pytest.fixture(scope="module")
def clamd(godwit_root):
    c = start_clamd(godwit_root, "clamd")
    yield c
    c.stop()


class FakeClamd:
    """A UNIX socket that accepts and reads everything; with reply, it
    answers that (NUL added) once a zINSTREAM stream has ended, else never
    answers. Counts the connections it saw closed by the other side;
    streams: the message octets of each ended stream."""

    def __init__(self, path, reply=None):
        self.path = str(path)
        self.reply = reply
        self.streams = []
        self.lsock = socket.socket(socket.AF_UNIX)
        self.lsock.bind(self.path)
        os.chmod(self.path, 0o666)
        self.lsock.listen(16)
        self.lsock.settimeout(0.2)
        self.accepted = 0
        self.closed = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @staticmethod
    def stream(buf):
        """The message of a whole zINSTREAM request in buf, else None."""
        cmd = b"zINSTREAM\0"
        if not buf.startswith(cmd):
            return None
        i, data = len(cmd), b""
        while i + 4 <= len(buf):
            n = int.from_bytes(buf[i:i + 4], "big")
            if n == 0:
                return data
            data += buf[i + 4:i + 4 + n]
            i += 4 + n
        return None

    def _serve(self, conn):
        conn.settimeout(0.2)
        buf = b""
        with conn:
            while not self.stopping.is_set():
                try:
                    b = conn.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    b = b""
                if not b:
                    self.closed += 1
                    return
                buf += b
                data = self.stream(buf) if self.reply else None
                if data is not None:
                    self.streams.append(data)
                    conn.sendall(self.reply.encode() + b"\0")
                    buf = b""

    def _run(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._serve, args=(conn,),
                             daemon=True).start()

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=5)
        self.lsock.close()


# --------------------------------------------------------------- godwit ---


def clamd_overrides(clamd_cfg):
    """filter.clamd enabled, with clamd_cfg merged in."""
    return {"filter": {"clamd": dict({"enabled": True}, **clamd_cfg)}}


@pytest.fixture
def started(make_godwit):
    """Factory of godwits with clamd_overrides(clamd_cfg) (conftest's
    make_godwit: stopped and checked at the end of the test)."""
    return lambda clamd_cfg: make_godwit(clamd_overrides(clamd_cfg))


@pytest.fixture(scope="module")
def unix_godwit(godwit_root, cert, clamd):
    """One godwit on clamd's UNIX socket, port 25 and submission."""
    crt, key = cert
    over = clamd_overrides({"socket": f"unix:{clamd.unix_path}",
                            "timeout": "20s"})
    over["tls"] = {"certificates": [{"cert": str(crt), "key": str(key)}]}
    over["smtp"] = {"max_message_size": "4M", "max_recipients": 100,
                    "trusted_networks": []}
    g = Godwit(godwit_base(godwit_root, "clamd_unix"), over)
    g.sub_port = free_port()
    g.config["listeners"].append(
        {"name": "submission", "protocol": "submission",
         "listen": [f"127.0.0.1:{g.sub_port}"]})
    g.write_config()
    with serving(g):
        yield g


def send(g, message, rcpt=ALICE, family=4):
    """One port 25 transaction; the reply to the final dot."""
    with g.raw(family) as c:
        assert c.cmd("EHLO client.test").code == 250
        return transaction(c, "sender@example.org", [rcpt], message)


def attachment_message(marker):
    b64 = base64.encodebytes(ATTACHMENT).decode()
    body = ("This is a multi-part message in MIME format.\n\n"
            "--b1\nContent-Type: text/plain\n\n"
            f"see the file, {marker}\n\n"
            "--b1\nContent-Type: application/octet-stream\n"
            "Content-Transfer-Encoding: base64\n"
            'Content-Disposition: attachment; filename="payload.bin"\n\n'
            f"{b64}\n--b1--\n")
    return make_message(marker, body=body, extra_headers=(
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="b1"'))


def scan_lines(g, marker_queue=None):
    """The fac=filter event=clamd log lines (of one queue id)."""
    return [l for l in g.log_text().splitlines()
            if "fac=filter" in l and "event=clamd" in l
            and (marker_queue is None or f"queue={marker_queue}" in l)]


def queue_id(reply):
    """The queue id of a 250 reply ("... queued as ID"), else None."""
    t = reply.text
    return t.rsplit(" ", 1)[1] if "queued as" in t else None


def assert_not_stored(g, marker):
    assert g.find_messages(marker) == []
    for p in g.queue_files() + g.tmp_files():
        assert marker.encode() not in p.read_bytes(), p


def stored_with(g, marker, field):
    """The one stored message holding marker, which has field."""
    msgs = wait_for(lambda: g.find_messages(marker), 10,
                    what=f"the message {marker}")
    assert len(msgs) == 1, msgs
    data = msgs[0].read_bytes()
    head = data.split(b"\n\n", 1)[0].decode()
    assert field in head.split("\n"), head
    return data


# ---------------------------------------------------------------- cases ---


def test_clean_message_delivered(unix_godwit, uniq):
    g = unix_godwit
    r = send(g, make_message(uniq))
    assert (r.code, r.enh) == (250, "2.0.0"), r
    stored_with(g, uniq, "X-Godwit-Virus-Scan: clean (clamd)")
    lines = wait_for(lambda: scan_lines(g, queue_id(r)), 5,
                     what="the clamd log line")
    assert "result=clean" in lines[0] and "action=accept" in lines[0], lines


@pytest.mark.parametrize("family", [4, 6])
def test_virus_refused(unix_godwit, uniq, family):
    g = unix_godwit
    body = f"hello\n{BODY_SAMPLE}\nbye {uniq}\n"
    r = send(g, make_message(uniq, body=body), family=family)
    assert (r.code, r.enh) == (554, "5.7.1"), r
    assert r.text == ("5.7.1 Message refused: virus found: "
                      f"{BODY_SIG}.UNOFFICIAL"), r
    assert_not_stored(g, uniq)
    log = g.log_text()
    assert f"result=virus virus={BODY_SIG}.UNOFFICIAL" in log, log[-3000:]
    assert "reason=virus" in log


def test_virus_in_attachment_refused(unix_godwit, uniq):
    """Found only by its hash: clamd decoded the base64 part of the
    LF-ended message godwit streamed."""
    g = unix_godwit
    r = send(g, attachment_message(uniq))
    assert (r.code, r.enh) == (554, "5.7.1"), r
    assert r.text.endswith(f"virus found: {ATTACH_SIG}.UNOFFICIAL"), r
    assert_not_stored(g, uniq)


def test_eicar_with_swaks(unix_godwit, godwit_root, uniq):
    """The check of the documentation: EICAR attached by swaks, as
    eicar.txt (as eicar.com the attachment rules would refuse it first,
    for its extension)."""
    g = unix_godwit
    assert hashlib.md5(EICAR).hexdigest() == "44d88612fea8a8f36de82e1278abb02f"
    f = godwit_base(godwit_root, "eicar") / "eicar.txt"
    f.write_bytes(EICAR)
    p = subprocess.run(
        ["swaks", "--server", "127.0.0.1", "--port", str(g.port),
         "--helo", "client.test", "--from", "sender@example.org",
         "--to", ALICE, "--header", f"Subject: {uniq}", "--attach", str(f)],
        capture_output=True, text=True, timeout=30)
    assert p.returncode != 0, p.stdout
    assert (f"<** 554 5.7.1 Message refused: virus found: "
            f"{EICAR_SIG}.UNOFFICIAL") in p.stdout, p.stdout
    assert_not_stored(g, uniq)


def test_session_goes_on_after_a_virus(unix_godwit, uniq):
    """The refusal ends the transaction, not the session: the next
    message of the same connection is scanned and delivered."""
    g = unix_godwit
    bad = make_message(uniq + "-bad", body=f"{BODY_SAMPLE}\n")
    with g.raw() as c:
        assert c.cmd("EHLO client.test").code == 250
        r = transaction(c, "sender@example.org", [ALICE], bad)
        assert r.code == 554, r
        r = transaction(c, "sender@example.org", [ALICE],
                        make_message(uniq + "-good"))
        assert r.code == 250, r
    stored_with(g, uniq + "-good", "X-Godwit-Virus-Scan: clean (clamd)")
    assert_not_stored(g, uniq + "-bad")


def big_body(octets, tail):
    """About octets of text lines, then tail."""
    line = "z" * 75 + "\n"
    return line * (octets // len(line)) + tail


def test_large_message_scanned_whole(unix_godwit, uniq):
    """A message past the spool's memory part goes to clamd whole, in
    chunks: the signature on its last line is found, and a clean one of
    the same size is stored intact."""
    g = unix_godwit
    r = send(g, make_message(uniq, body=big_body(1200 * 1024,
                                                 f"{BODY_SAMPLE}\n")))
    assert (r.code, r.enh) == (554, "5.7.1"), r
    assert_not_stored(g, uniq)
    body = big_body(1200 * 1024, f"end {uniq}-ok\n")
    r = send(g, make_message(uniq + "-ok", body=body))
    assert r.code == 250, r
    data = stored_with(g, f"{uniq}-ok", "X-Godwit-Virus-Scan: clean (clamd)")
    assert data.endswith(body.encode())
    line = scan_lines(g, queue_id(r))[0]
    assert "result=clean" in line, line


def test_bdat_virus_refused(unix_godwit, uniq):
    g = unix_godwit
    msg = make_message(uniq, body=f"{BODY_SAMPLE}\n")
    with g.raw() as c:
        assert c.cmd("EHLO client.test").code == 250
        assert c.cmd("MAIL FROM:<sender@example.org>").code == 250
        assert c.cmd(f"RCPT TO:<{ALICE}>").code == 250
        half = len(msg) // 2
        c.send(f"BDAT {half}\r\n".encode() + msg[:half])
        assert c.reply().code == 250
        c.send(f"BDAT {len(msg) - half} LAST\r\n".encode() + msg[half:])
        r = c.reply()
    assert (r.code, r.enh) == (554, "5.7.1"), r
    assert r.text.endswith(f"virus found: {BODY_SIG}.UNOFFICIAL"), r
    assert_not_stored(g, uniq)


def test_pipelined_transactions_wait_for_the_scan(unix_godwit, uniq):
    """RFC 2920: what the client pipelined behind the final dot waits
    while clamd scans, and is answered in order after the verdict."""
    g = unix_godwit
    bad = make_message(uniq + "-bad", body=f"{BODY_SAMPLE}\n")
    good = make_message(uniq + "-good")
    with g.raw() as c:
        assert c.cmd("EHLO client.test").code == 250
        c.send(f"MAIL FROM:<sender@example.org>\r\nRCPT TO:<{ALICE}>\r\n"
               "DATA\r\n")
        assert [r.code for r in c.replies(3)] == [250, 250, 354]
        c.send(bad + b".\r\nMAIL FROM:<sender@example.org>\r\n"
               + f"RCPT TO:<{ALICE}>\r\nDATA\r\n".encode())
        rs = c.replies(4)
        assert [(r.code, r.enh) for r in rs] == [
            (554, "5.7.1"), (250, "2.1.0"), (250, "2.1.5"), (354, None)], rs
        c.send(good + b".\r\nQUIT\r\n")
        rs = c.replies(2)
        assert [r.code for r in rs] == [250, 221], rs
    stored_with(g, uniq + "-good", "X-Godwit-Virus-Scan: clean (clamd)")
    assert_not_stored(g, uniq + "-bad")


def submit(g, message):
    s = smtplib.SMTP("127.0.0.1", g.sub_port, local_hostname="client.test",
                     timeout=30)
    try:
        s.starttls(context=client_tls_context())
        s.login(ALICE, PASSWORD)
        s.sendmail(ALICE, [BOB], message)
        return 250, b""
    except smtplib.SMTPDataError as e:
        return e.smtp_code, e.smtp_error
    finally:
        s.close()


def test_submission_scanned(unix_godwit, uniq):
    g = unix_godwit
    hdr = f"From: <{ALICE}>\nTo: <{BOB}>\nSubject: {uniq}\n\n"
    code, text = submit(g, crlf(hdr + f"{BODY_SAMPLE}\n{uniq}\n"))
    assert (code, text) == (554, b"5.7.1 Message refused: virus found: "
                            + f"{BODY_SIG}.UNOFFICIAL".encode())
    assert_not_stored(g, uniq)
    code, text = submit(g, crlf(hdr + f"clean {uniq}-ok\n"))
    assert code == 250, text
    stored_with(g, f"{uniq}-ok", "X-Godwit-Virus-Scan: clean (clamd)")


def test_stream_max_length_is_a_clamd_error(unix_godwit, uniq):
    """Over clamd's StreamMaxLength (and under max_size) clamd ends the
    stream with its ERROR: a clamd failure, 451 by default."""
    g = unix_godwit
    r = send(g, make_message(uniq, body=big_body(STREAM_MAX + 64 * 1024,
                                                 uniq + "\n")))
    assert (r.code, r.enh) == (451, "4.7.1"), r
    assert_not_stored(g, uniq)
    line = wait_for(lambda: [l for l in scan_lines(g)
                             if "result=error" in l and "tempfail" in l],
                    5, what="the clamd error line")
    assert "error=" in line[-1], line


def test_over_max_size_accepted_unscanned(started, clamd, uniq):
    g = started({"socket": f"unix:{clamd.unix_path}",
                              "max_size": "2K"})
    body = ("y" * 60 + "\n") * 60 + f"{BODY_SAMPLE}\n{uniq}\n"
    r = send(g, make_message(uniq, body=body))
    assert r.code == 250, r
    stored_with(g, uniq,
                "X-Godwit-Virus-Scan: not scanned (message too large)")
    line = scan_lines(g, queue_id(r))
    assert "result=skipped" in line[0], line
    # under the limit the same daemon still scans
    r = send(g, make_message(uniq + "-s", body=f"{BODY_SAMPLE}\n"))
    assert r.code == 554, r


# ---------------------------------------------------- clamd unavailable ---


@pytest.mark.parametrize("how,error", [
    ("kill", "Connection refused"),          # crashed: its socket file left
    ("stop", "No such file or directory"),   # stopped: the file removed
])
def test_clamd_down_tempfails(started, godwit_root, uniq, how, error):
    """A clamd that scanned the previous message goes away: the next one
    is answered 451 at once."""
    c = start_clamd(godwit_root, "clamd_" + how)
    try:
        g = started({"socket": f"unix:{c.unix_path}"})
        assert send(g, make_message(uniq + "-up")).code == 250
        getattr(c, how)()
    finally:
        c.stop()
    assert c.unix_path.exists() == (how == "kill")
    t0 = time.monotonic()
    r = send(g, make_message(uniq + "-down"))
    assert (r.code, r.enh) == (451, "4.7.1"), r
    assert r.text == "4.7.1 Virus scanner unavailable, try again later", r
    assert time.monotonic() - t0 < 10
    assert_not_stored(g, uniq + "-down")
    line = scan_lines(g)[-1]
    assert "result=error" in line and "action=tempfail" in line, line
    assert f'error="connecting: {error}"' in line, line
    assert "reason=clamd" in g.log_text()


def test_clamd_down_accept(started, uniq):
    port = free_port()   # nothing listens there
    g = started({"socket": f"inet:127.0.0.1:{port}",
                                   "on_error": "accept"})
    r = send(g, make_message(uniq))
    assert (r.code, r.enh) == (250, "2.0.0"), r
    stored_with(g, uniq,
                "X-Godwit-Virus-Scan: not scanned (clamd unavailable)")
    line = scan_lines(g, queue_id(r))[0]
    assert "result=error" in line and "action=accept" in line, line


def test_hanging_clamd_times_out(started, godwit_root, uniq):
    d = godwit_base(godwit_root, "hang")
    hang = FakeClamd(d / "hang.sock")
    try:
        g = started({"socket": f"unix:{hang.path}",
                                   "timeout": "2s"})
        t0 = time.monotonic()
        r = send(g, make_message(uniq))
        took = time.monotonic() - t0
        assert (r.code, r.enh) == (451, "4.7.1"), r
        assert 1.5 < took < 8, took
        assert_not_stored(g, uniq)
        line = scan_lines(g)[-1]
        assert "timed out after 2s waiting for the reply" in line, line
        # the scan's connection is closed, not left to leak
        wait_for(lambda: hang.closed == hang.accepted == 1, 5,
                 what="the hung scan's connection closed")

        # the client leaves while a scan waits: the scan is cancelled
        c = g.raw()
        assert c.cmd("EHLO client.test").code == 250
        assert c.cmd("MAIL FROM:<sender@example.org>").code == 250
        assert c.cmd(f"RCPT TO:<{ALICE}>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(make_message(uniq + "-gone") + b".\r\n")
        wait_for(lambda: hang.accepted == 2, 5, what="the second scan")
        t0 = time.monotonic()
        c.close()
        wait_for(lambda: hang.closed == 2, 5,
                 what="the cancelled scan's connection closed")
        # closed by the cancel, not by the scan's own timer (2s)
        assert time.monotonic() - t0 < 1.5
        wait_for(lambda: g.log_text().count("event=disconnect") == 2, 5,
                 what="the second session's end")
        assert len(scan_lines(g)) == 1
    finally:
        hang.stop()


@pytest.mark.parametrize("checks", [True, False])
def test_stream_is_the_message_as_sent(make_godwit, godwit_root, uniq,
                                       checks):
    """clamd gets the message as the client sent it (LF line ends) under
    one constant field: none of godwit's own fields, whose queue ids and
    times would make every stream unique and defeat clamd's cache of clean
    results. The same message twice is the same stream. With the checks
    on, godwit's Received is in the prefix; off, in the spool."""
    fake = FakeClamd(godwit_base(godwit_root, "rec") / "rec.sock",
                     reply="stream: OK")
    over = clamd_overrides({"socket": f"unix:{fake.path}"})
    if not checks:
        over.update({"spf": {"enabled": False}, "dkim": {"verify": False},
                     "dmarc": {"enabled": False}})
    try:
        g = make_godwit(over)
        msg = make_message(uniq)
        for _ in range(2):
            assert send(g, msg).code == 250
        wait_for(lambda: len(fake.streams) == 2, 5, what="two streams")
    finally:
        fake.stop()
    assert fake.streams[0] == fake.streams[1]
    assert fake.streams[0] == (b"Received: by godwit\n"
                               + msg.replace(b"\r\n", b"\n")), \
        fake.streams[0][:500]
    stored = wait_for(lambda: len(g.find_messages(uniq)) == 2
                      and g.find_messages(uniq), 10, what="both messages")
    for p in stored:
        assert b"\nX-Godwit-Virus-Scan: clean (clamd)\n" in p.read_bytes()


# ------------------------------------------------------------------ TCP ---


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]"])
def test_tcp_socket(started, clamd, uniq, host):
    g = started({"socket": f"inet:{host}:{clamd.port}"})
    r = send(g, make_message(uniq + "-bad", body=f"{BODY_SAMPLE}\n"))
    assert (r.code, r.enh) == (554, "5.7.1"), r
    assert r.text.endswith(f"virus found: {BODY_SIG}.UNOFFICIAL"), r
    r = send(g, attachment_message(uniq + "-att"))
    assert r.code == 554 and ATTACH_SIG in r.text, r
    r = send(g, make_message(uniq))
    assert r.code == 250, r
    stored_with(g, uniq, "X-Godwit-Virus-Scan: clean (clamd)")


# --------------------------------------------------------- config check ---


@pytest.mark.parametrize("sock,why", [
    ("tcp:127.0.0.1:3310", "expected unix:/path or inet:host:port"),
    ("unix:clamd.ctl", "the path must be absolute"),
    ("unix:/" + "x" * 120, "too long"),
    ("inet:127.0.0.1", "expected inet:host:port"),
    ("inet:127.0.0.1:0", "the port must be a number"),
    ("inet:127.0.0.1:65536", "the port must be a number"),
    ("inet:mail.example.test:3310", "no names"),
    ("inet6:127.0.0.1:3310", "the host must be an IPv6 address"),
    ("inet:[::1:3310", "expected inet:[IPv6]:port"),
    ("inet::3310", "the host must be an IP address or localhost"),
])
def test_config_check_bad_socket(godwit_root, sock, why):
    g = Godwit(godwit_base(godwit_root, "clamd_cfg"))
    text = "\n".join([
        "hostname: mx.example.test",
        f"data_dir: {g.data_dir}",
        "filter:",
        "  clamd:",
        "    enabled: true",
        f'    socket: "{sock}"',
        ""])
    g.write_config(raw=text)
    p = g.run("config", "check")
    out = p.stdout + p.stderr
    assert p.returncode == 1, out
    assert f"{g.cfg_path}:6: filter.clamd.socket: " in out, out
    assert why in out, out


def test_config_check_good_sockets(godwit_root):
    g = Godwit(godwit_base(godwit_root, "clamd_cfg_ok"))
    for sock in ("unix:/run/clamav/clamd.ctl", "inet:127.0.0.1:3310",
                 "inet:[::1]:3310", "inet:::1:3310", "inet:localhost:3310",
                 "inet6:[::1]:3310", "inet6:localhost:3310"):
        g.update_config({"filter": {"clamd": {"enabled": True,
                                              "socket": sock}}})
        p = g.run("config", "check")
        assert p.returncode == 0, (sock, p.stdout + p.stderr)
