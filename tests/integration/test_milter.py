"""Milters (filter.milters): godwit's milter client against test milters
on Debian's python3-milter (milter_peer.py, libmilter underneath).

One milter process serves every case of a module: the test writes its
mode file (what to do at which stage) before each case, and reads the
callbacks and macros the milter saw from its log file.
"""
import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import (Godwit, free_port, godwit_base, wait_for, _finish)
from smtpclient import make_message, transaction

HERE = Path(__file__).resolve().parent
PEER = HERE / "milter_peer.py"
TIMEOUT = 2  # seconds: the milters' timeout in these tests


class Peer:
    """A milter_peer.py process: socket, mode file and log file."""

    def __init__(self, base, name="m1", unix=False, style="", ipv6=False):
        self.base = Path(base)
        self.name = name
        self.style = style
        self.ipv6 = ipv6
        self.mode_path = self.base / f"{name}.mode.json"
        self.log_path = self.base / f"{name}.log"
        if ipv6:
            self.port = free_port()
            self.listen = f"inet6:{self.port}@[::1]"
            self.socket = f"inet6:[::1]:{self.port}"
        elif unix:
            self.path = self.base / f"{name}.sock"
            self.listen = f"unix:{self.path}"
            self.socket = f"unix:{self.path}"
        else:
            self.port = free_port()
            self.listen = f"inet:{self.port}@127.0.0.1"
            self.socket = f"inet:127.0.0.1:{self.port}"
        self.proc = None
        self.set_mode({})
        self.start()

    def start(self):
        self.log_path.write_text("")
        os.chmod(self.log_path, 0o666)
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", str(PEER), self.listen, str(self.mode_path),
             str(self.log_path), self.name, self.style],
            stdout=subprocess.DEVNULL, stderr=open(self.base / f"{self.name}.err", "a"))
        wait_for(self.ready, 10, what=f"milter {self.name} to listen")

    def ready(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"milter {self.name} exited")
        if self.socket.startswith("unix:"):
            addr, fam = str(self.path), socket.AF_UNIX
        elif self.ipv6:
            addr, fam = ("::1", self.port), socket.AF_INET6
        else:
            addr, fam = ("127.0.0.1", self.port), socket.AF_INET
        with socket.socket(fam, socket.SOCK_STREAM) as s:
            s.settimeout(1)
            try:
                s.connect(addr)
                return True
            except OSError:
                return False

    def ensure_running(self):
        if self.proc.poll() is not None:
            self.start()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def set_mode(self, mode):
        tmp = self.mode_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(mode))
        os.replace(tmp, self.mode_path)
        self.clear_log()

    def clear_log(self):
        with open(self.log_path, "w"):
            pass

    def events(self):
        out = []
        for line in self.log_path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def seen(self, cb):
        return [e for e in self.events() if e.get("cb") == cb]


def milter_cfg(peer, **kw):
    c = {"name": peer.name, "socket": peer.socket, "timeout": f"{TIMEOUT}s"}
    c.update(kw)
    return c


@pytest.fixture(scope="module")
def lab(request, godwit_root):
    """One milter and one godwit (on_error tempfail, junk_header) for the
    module."""
    base = godwit_base(godwit_root, "milter_lab")
    peer = Peer(base)
    g = Godwit(base / "g", {"filter": {"milters": [
        milter_cfg(peer, on_error="tempfail", junk_header="X-Spam: Yes")]}})
    g.start()
    yield g, peer
    peer.stop()
    problems = _finish(g)
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def gp(lab):
    g, peer = lab
    peer.ensure_running()
    peer.set_mode({})
    return g, peer


def send(g, marker, rcpts=("alice@example.test",), sender="sender@example.org",
         body=None, extra=()):
    """One message; the reply to its final dot."""
    with g.raw() as c:
        c.ehlo()
        return transaction(c, sender, list(rcpts),
                           make_message(marker, body=body, sender=sender,
                                        to=rcpts[0], extra_headers=extra))


def stored(g, marker, address="alice@example.test"):
    found = [m for m in g.maildir_messages(address) if marker.encode() in m]
    return found


# ---- verdicts at each stage ------------------------------------------------


def test_accept_passes_message(gp, uniq):
    g, peer = gp
    r = send(g, uniq)
    assert r.code == 250, r
    assert stored(g, uniq)
    cbs = [e["cb"] for e in peer.events()]
    for cb in ("connect", "helo", "mail", "rcpt", "data", "header", "eoh",
               "body", "eom"):
        assert cb in cbs, (cb, cbs)


def test_replycode_multiline(gp, uniq):
    g, peer = gp
    peer.set_mode({"stage": "eom", "action": "replycode",
                   "reply": ["554", "5.7.0", "first line", "second line"]})
    r = send(g, uniq)
    assert r.code == 554, r
    assert len(r.lines) == 2, r
    assert "5.7.0 first line" in r.lines[0], r
    assert "5.7.0 second line" in r.lines[1], r
    assert not stored(g, uniq)


def test_replycode_tempfail_at_rcpt(gp):
    g, peer = gp
    peer.set_mode({"stage": "rcpt", "action": "replycode",
                   "reply": ["452", "4.2.2", "mailbox full"]})
    with g.raw() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@example.org>").code == 250
        r = c.cmd("RCPT TO:<alice@example.test>")
        assert r.code == 452 and "4.2.2 mailbox full" in r.text, r


def test_rcpt_reject_only_one(gp, uniq):
    g, peer = gp
    peer.set_mode({"stage": "rcpt", "action": "reject", "match": "bob@"})
    with g.raw() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@example.org>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("RCPT TO:<bob@example.test>").code == 550
        assert c.cmd("DATA").code == 354
        c.send(make_message(uniq) + b".\r\n")
        assert c.reply().code == 250
    assert stored(g, uniq)
    assert not stored(g, uniq, "bob@example.test")


def test_discard_at_rcpt(gp, uniq):
    g, peer = gp
    peer.set_mode({"stage": "rcpt", "action": "discard"})
    r = send(g, uniq)
    assert r.code == 250, r
    assert not stored(g, uniq)
    # the milter was not asked about the rest of the message
    assert not peer.seen("eom")


STAGES = ["connect", "helo", "mail", "rcpt", "data", "header", "eoh", "body",
          "eom"]
# where the client sees a refusal of each stage
REFUSED_AT = {"connect": "greeting", "helo": "EHLO", "mail": "MAIL",
              "rcpt": "RCPT", "data": "DATA", "header": "end", "eoh": "end",
              "body": "end", "eom": "end"}


def run_session(g, uniq):
    """A whole session, step by step: the step that was refused (None if
    none was) and the last reply."""
    c = g.raw(greet=False)
    try:
        r = c.reply()
        if r.code != 220:
            return "greeting", r
        steps = [("EHLO", "EHLO client.test", 250),
                 ("MAIL", "MAIL FROM:<s@example.org>", 250),
                 ("RCPT", "RCPT TO:<alice@example.test>", 250),
                 ("DATA", "DATA", 354)]
        for name, line, want in steps:
            r = c.cmd(line)
            if r.code != want:
                return name, r
        c.send(make_message(uniq) + b".\r\n")
        r = c.reply()
        return ("end" if r.code != 250 else None), r
    finally:
        c.close()


@pytest.mark.parametrize("action", ["continue", "accept", "reject",
                                    "tempfail", "discard"])
@pytest.mark.parametrize("stage", STAGES)
def test_action_at_stage(gp, uniq, stage, action):
    """Each action at each stage: where the refusal comes and with which
    code, whether the message is stored, what the milter saw after."""
    g, peer = gp
    peer.set_mode({"stage": stage, "action": action})
    where, r = run_session(g, uniq)
    cbs = [e["cb"] for e in peer.events()]
    if action in ("reject", "tempfail"):
        assert where == REFUSED_AT[stage], (where, r)
        if action == "reject":
            assert r.code == (554 if stage == "connect" else 550), r
            assert r.enh == "5.7.1", r
        else:
            # RFC 5321 3.8: a temporary refusal of the greeting is 421
            assert r.code == (421 if stage == "connect" else 451), r
            assert r.enh == "4.7.1", r
        assert not stored(g, uniq)
        return
    assert where is None, (where, r)
    assert r.code == 250, r
    if action == "discard" and stage not in ("connect", "helo"):
        wait_for(lambda: "event=discard" in g.log_text(), 5,
                 what="discard logged")
        assert not stored(g, uniq)
    elif action == "discard":
        # before a transaction: every message of the session
        assert not stored(g, uniq)
    else:
        assert stored(g, uniq)
    if action == "accept":
        # nothing more for this milter in this message (or session)
        after = cbs[cbs.index(stage) + 1:]
        assert not [cb for cb in after if cb in STAGES], cbs
    if action == "continue":
        assert "eom" in cbs, cbs


# ---- modifications ---------------------------------------------------------


def header_of(msg):
    return msg.split(b"\n\n", 1)[0].decode() + "\n"


def test_add_header(gp, uniq):
    g, peer = gp
    peer.set_mode({"stage": "eom", "mods": [["addheader", "X-Milter", uniq]]})
    assert send(g, uniq).code == 250
    msg = stored(g, uniq)
    assert len(msg) == 1
    assert f"\nX-Milter: {uniq}\n" in header_of(msg[0])


def fields(msg):
    """The header fields of a stored message: [(name, value)]."""
    out = []
    for line in header_of(msg).split("\n"):
        if not line:
            continue
        if line[0] in " \t" and out:
            out[-1] = (out[-1][0], out[-1][1] + "\n" + line)
        else:
            name, _, value = line.partition(":")
            out.append((name, value))
    return out


def test_header_actions(gp, uniq):
    """insert at the top, change the Subject, delete a field (change with
    an empty value), a folded value; the milter sees the fields as sent."""
    g, peer = gp
    peer.set_mode({"stage": "eom", "mods": [
        ["insheader", 0, "X-First", "top"],
        ["chgheader", "Subject", 1, f"changed {uniq}"],
        ["delheader", "X-Remove-Me", 1],
        ["chgheader", "X-Keep", 2, "second changed"],
        ["addheader", "X-Folded", "one\n\ttwo"],
    ]})
    r = send(g, uniq, extra=["X-Remove-Me: bye", "X-Keep: a", "X-Keep: b"])
    assert r.code == 250, r
    msg = stored(g, uniq)[0]
    f = fields(msg)
    names = [n for n, _ in f]
    # the local header first, then what the milter inserted at 0
    assert names[:3] == ["Return-Path", "Delivered-To", "X-First"], names
    assert ("Subject", f" changed {uniq}") in f
    assert "X-Remove-Me" not in names
    assert [v for n, v in f if n == "X-Keep"] == [" a", " second changed"]
    assert ("X-Folded", " one\n\ttwo") in f
    # the body is untouched
    assert msg.endswith(f"marker {uniq}\nBye.\n".encode())
    hdrs = {e["args"]["name"]: e["args"]["value"] for e in peer.seen("header")}
    assert hdrs["Subject"] == f"test {uniq}"  # without the leading space
    assert "Authentication-Results" in hdrs


def test_replace_body(gp, uniq):
    g, peer = gp
    peer.set_mode({"stage": "eom", "mods": [
        ["replbody", f"replaced {uniq}\r\nsecond line\r\n"]]})
    assert send(g, uniq).code == 250
    msg = stored(g, uniq)[0]
    assert msg.endswith(f"\n\nreplaced {uniq}\nsecond line\n".encode()), msg
    assert b"Hello from the godwit tests" not in msg
    # the Maildir size in the name is the file's
    p = [p for p in g.maildir_files("alice@example.test")
         if uniq.encode() in p.read_bytes()][0]
    assert f",S={len(msg)}," in p.name


def test_body_chunks_crlf(gp, uniq):
    """The milter gets the body in CRLF, all of it, in chunks of at most
    64 KiB."""
    g, peer = gp
    body = "".join(f"line {i:06d} {uniq}\n" for i in range(6000))
    assert send(g, uniq, body=body).code == 250
    eom = peer.seen("eom")[0]["args"]
    assert eom["body_len"] == len(body.replace("\n", "\r\n"))
    assert eom["body"].startswith(f"line 000000 {uniq}\r\n")
    sizes = [e["args"]["size"] for e in peer.seen("body")]
    assert len(sizes) >= 2 and max(sizes) <= 65535, sizes


def test_recipients_and_sender(gp, uniq):
    """delrcpt alice, addrcpt bob (local) and a remote address (queued),
    chgfrom: the new Return-Path."""
    g, peer = gp
    peer.set_mode({"stage": "eom", "mods": [
        ["delrcpt", "<alice@example.test>"],
        ["addrcpt", "<bob@example.test>"],
        ["addrcpt", f"<{uniq}@remote.test>"],
        ["chgfrom", "<changed@example.org>"],
    ]})
    assert send(g, uniq).code == 250
    assert not stored(g, uniq)
    msg = stored(g, uniq, "bob@example.test")
    assert len(msg) == 1
    assert msg[0].startswith(b"Return-Path: <changed@example.org>\n"
                             b"Delivered-To: bob@example.test\n"), msg[0][:200]
    q = queue_json(g)
    e = [e for e in q if any(r["addr"] == f"{uniq}@remote.test"
                             for r in e["recipients"])]
    assert len(e) == 1, q
    assert e[0]["sender"] == "changed@example.org"


def queue_json(g):
    p = g.run("queue", "list", "--json", check=True)
    return [json.loads(l) for l in p.stdout.splitlines() if l.strip()]


def test_quarantine_hold_release(gp, uniq):
    """quarantine: every recipient, local ones too, into the hold queue;
    `godwit queue release` delivers it."""
    g, peer = gp
    peer.set_mode({"stage": "eom", "mods": [["quarantine", "looks bad"]]})
    assert send(g, uniq, rcpts=("alice@example.test", "bob@example.test")).code == 250
    assert not stored(g, uniq) and not stored(g, uniq, "bob@example.test")
    held = [e for e in queue_json(g) if e["state"] == "hold"]
    mine = [e for e in held if sorted(r["addr"] for r in e["recipients"]) ==
            ["alice@example.test", "bob@example.test"]]
    assert len(mine) == 1, held
    qid = mine[0]["id"]
    shown = g.run("queue", "show", qid, check=True).stdout
    assert uniq in shown
    assert "X-Godwit-Quarantine: held by milter m1: looks bad" in shown, shown
    g.admin("queue", "release", qid)
    g.admin("queue", "flush")
    wait_for(lambda: stored(g, uniq) and stored(g, uniq, "bob@example.test"),
             15, what="the released message delivered")
    msg = stored(g, uniq)[0]
    assert msg.startswith(b"Return-Path: <sender@example.org>\n")
    wait_for(lambda: not any(e["id"] == qid for e in queue_json(g)), 10,
             what="the message out of the queue")


def test_junk_header(gp, uniq):
    """junk_header: the milter's X-Spam: Yes sends the message to .Junk."""
    g, peer = gp
    peer.set_mode({"stage": "eom", "mods": [["addheader", "X-Spam", "Yes"]]})
    assert send(g, uniq).code == 250
    junk = g.maildir("alice@example.test") / ".Junk" / "new"
    files = wait_for(lambda: [p for p in junk.iterdir()
                              if uniq.encode() in p.read_bytes()]
                     if junk.is_dir() else [], 5, what="the message in .Junk")
    assert b"\nX-Spam: Yes\n" in files[0].read_bytes()
    assert not stored(g, uniq)
    # another value is not spam
    peer.set_mode({"stage": "eom", "mods": [["addheader", "X-Spam", "No"]]})
    assert send(g, uniq + "-no").code == 250
    assert stored(g, uniq + "-no")


def test_macros(gp, uniq):
    g, peer = gp
    r = send(g, uniq)
    assert r.code == 250
    conn = peer.seen("connect")[-1]
    m = conn["macros"]
    assert m["j"] == "mx.example.test"
    assert m["{daemon_name}"] == "mx"
    assert m["{client_addr}"] == "127.0.0.1"
    # the confirmed name, or [ip] while iprev has no answer yet
    assert m["{client_name}"] in ("localhost", "[127.0.0.1]"), m
    assert m["_"] == m["{client_name}"] + " [127.0.0.1]"
    assert int(m["{client_port}"]) > 0
    assert conn["args"]["hostname"] == m["{client_name}"]
    mail = peer.seen("mail")[-1]
    assert mail["macros"]["{mail_addr}"] == "sender@example.org"
    assert mail["macros"]["{mail_mailer}"] == "smtp"
    assert mail["args"]["sender"] == "<sender@example.org>"
    rcpt = peer.seen("rcpt")[-1]
    assert rcpt["macros"]["{rcpt_addr}"] == "alice@example.test"
    assert rcpt["args"]["to"] == "<alice@example.test>"
    eom = peer.seen("eom")[-1]
    assert len(eom["macros"]["i"]) == 16  # the queue id
    assert peer.seen("helo")[-1]["args"]["helo"] == "client.test"


def test_bdat(gp, uniq):
    """BDAT: the DATA stage does not run; the milter gets DATA, the header
    and the body at the end."""
    g, peer = gp
    peer.set_mode({"stage": "eom", "mods": [["addheader", "X-Bdat", uniq]]})
    msg = make_message(uniq)
    with g.raw() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@example.org>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        c.send(b"BDAT %d LAST\r\n" % len(msg) + msg)
        r = c.reply()
        assert r.code == 250, r
    cbs = [e["cb"] for e in peer.events()]
    assert "data" in cbs and cbs.index("data") < cbs.index("eom")
    assert f"X-Bdat: {uniq}" in header_of(stored(g, uniq)[0])


def test_skip_body(gp, uniq):
    """SKIP during the body: no more chunks, straight to the end."""
    g, peer = gp
    peer.set_mode({"stage": "body", "action": "skip"})
    body = "x" * 100 + "\n"
    assert send(g, uniq, body=body * 2000).code == 250
    assert len(peer.seen("body")) == 1
    assert peer.seen("eom")[-1]["args"]["body_len"] <= 65535
    assert stored(g, uniq)


def test_abort_on_rset(gp, uniq):
    g, peer = gp
    with g.raw() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@example.org>").code == 250
        assert c.cmd("RCPT TO:<alice@example.test>").code == 250
        assert c.cmd("RSET").code == 250
        wait_for(lambda: peer.seen("abort"), 5, what="ABORT at the milter")
        r = transaction(c, "s@example.org", ["alice@example.test"],
                        make_message(uniq))
        assert r.code == 250, r
    assert stored(g, uniq)


# ---- a milter that fails -----------------------------------------------------


def test_crash_mid_session(gp, uniq):
    """The milter dies at RCPT: 451 4.7.1 (on_error tempfail), and the
    rest of the session too."""
    g, peer = gp
    peer.set_mode({"stage": "rcpt", "action": "crash"})
    with g.raw() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<s@example.org>").code == 250
        r = c.cmd("RCPT TO:<alice@example.test>")
        assert r.code == 451 and "4.7.1" in r.text, r
        r = c.cmd("RCPT TO:<bob@example.test>")
        assert r.code == 451, r
    peer.proc.wait(10)
    peer.set_mode({})
    peer.start()
    assert send(g, uniq).code == 250
    assert "milter=m1" in g.log_text() and "error=" in g.log_text()


def test_hang_tempfail(gp, uniq):
    g, peer = gp
    peer.set_mode({"stage": "eom", "action": "hang", "seconds": TIMEOUT + 3})
    t0 = time.monotonic()
    r = send(g, uniq)
    took = time.monotonic() - t0
    assert r.code == 451 and "4.7.1" in r.text, r
    assert TIMEOUT - 0.5 <= took < TIMEOUT + 2, took
    assert not stored(g, uniq)
    wait_for(lambda: "error=timeout" in g.log_text(), 5, what="timeout logged")


# ---- milters of their own godwit ---------------------------------------------


@pytest.fixture
def base(request, godwit_root):
    return godwit_base(godwit_root, request.node.originalname)


def test_hang_accept(make_godwit, base, uniq):
    """on_error accept: a milter that does not answer is skipped for the
    rest of the session; the message is delivered."""
    peer = Peer(base)
    try:
        g = make_godwit({"filter": {"milters": [
            milter_cfg(peer, on_error="accept")]}})
        peer.set_mode({"stage": "rcpt", "action": "hang",
                       "seconds": TIMEOUT + 3})
        t0 = time.monotonic()
        r = send(g, uniq, rcpts=("alice@example.test", "bob@example.test"))
        assert r.code == 250, r
        # one timeout, not one per recipient
        assert time.monotonic() - t0 < 2 * TIMEOUT, time.monotonic() - t0
        assert stored(g, uniq) and stored(g, uniq, "bob@example.test")
        assert "action=accept" in g.log_text()
    finally:
        peer.stop()


@pytest.mark.parametrize("on_error", ["tempfail", "accept"])
def test_milter_down(make_godwit, uniq, on_error):
    port = free_port()  # nothing listens there
    g = make_godwit({"filter": {"milters": [
        {"name": "down", "socket": f"inet:127.0.0.1:{port}",
         "on_error": on_error, "timeout": f"{TIMEOUT}s"}]}})
    with g.raw() as c:  # the greeting and EHLO pass
        assert c.ehlo().code == 250
        r = c.cmd("MAIL FROM:<s@example.org>")
        if on_error == "tempfail":
            assert r.code == 451 and "4.7.1" in r.text, r
            return
        assert r.code == 250, r
    assert send(g, uniq).code == 250
    assert stored(g, uniq)


def test_unix_socket_down(make_godwit, base, uniq):
    g = make_godwit({"filter": {"milters": [
        {"name": "gone", "socket": f"unix:{base}/nobody.sock",
         "timeout": f"{TIMEOUT}s"}]}})
    with g.raw() as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<s@example.org>")
        assert r.code == 451 and "4.7.1" in r.text, r


def test_two_milters_in_order(make_godwit, base, uniq):
    """m1 (TCP over IPv6) then m2 (UNIX socket): m2 sees what m1 added; a
    reject by m1 means m2 is not asked."""
    m1 = Peer(base, "m1", ipv6=True)
    m2 = Peer(base, "m2", unix=True)
    try:
        g = make_godwit({"filter": {"milters": [milter_cfg(m1),
                                                milter_cfg(m2)]}})
        mode = {"milters": {
            "m1": {"stage": "eom", "mods": [["addheader", "X-Order", "m1"],
                                            ["replbody", "from m1\r\n"]]},
            "m2": {"stage": "eom", "mods": [["addheader", "X-Order", "m2"]]},
        }}
        m1.set_mode(mode)
        m2.set_mode(mode)
        assert send(g, uniq).code == 250
        msg = stored(g, uniq)[0]
        assert [v for n, v in fields(msg) if n == "X-Order"] == [" m1", " m2"]
        assert msg.endswith(b"\n\nfrom m1\n")
        seen = {e["args"]["name"]: e["args"]["value"]
                for e in m2.seen("header")}
        assert seen.get("X-Order") == "m1"
        assert m2.seen("eom")[-1]["args"]["body"] == "from m1\r\n"

        m1.set_mode({"stage": "rcpt", "action": "reject"})
        m2.set_mode({})
        with g.raw() as c:
            c.ehlo()
            assert c.cmd("MAIL FROM:<s@example.org>").code == 250
            assert c.cmd("RCPT TO:<alice@example.test>").code == 550
        assert m1.seen("rcpt") and not m2.seen("rcpt")
    finally:
        m1.stop()
        m2.stop()


def test_no_reply_steps(make_godwit, base, uniq):
    """A milter that negotiated no replies to CONNECT, HELO, headers and
    body, and no EOH: it still gets them, and its end of message counts."""
    peer = Peer(base, style="noreply")
    try:
        g = make_godwit({"filter": {"milters": [milter_cfg(peer)]}})
        peer.set_mode({"stage": "eom", "mods": [["addheader", "X-NR", uniq]]})
        assert send(g, uniq).code == 250
        assert f"X-NR: {uniq}" in header_of(stored(g, uniq)[0])
        cbs = [e["cb"] for e in peer.events()]
        assert "connect" in cbs and "helo" in cbs and "header" in cbs
        assert "eoh" not in cbs
        assert peer.seen("eom")[-1]["args"]["body_len"] > 0
        peer.set_mode({"stage": "eom", "action": "reject"})
        assert send(g, uniq + "-2").code == 550
    finally:
        peer.stop()


def test_macros_submission(make_godwit, base, cert, uniq):
    """On submission, after STARTTLS and AUTH: the TLS and AUTH macros,
    and the listener's name in {daemon_name}."""
    import smtplib
    from conftest import PASSWORD, client_tls_context
    peer = Peer(base)
    try:
        crt, key = cert
        port = free_port()
        g = make_godwit({"tls": {"certificates": [{"cert": str(crt),
                                                   "key": str(key)}]},
                         "filter": {"milters": [milter_cfg(peer)]}},
                        start=False)
        g.config["listeners"].append(
            {"name": "sub", "protocol": "submission",
             "listen": [f"127.0.0.1:{port}"]})
        g.write_config()
        g.start()
        s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.test",
                         timeout=30)
        s.starttls(context=client_tls_context())
        s.login("alice@example.test", PASSWORD)
        s.sendmail("alice@example.test", ["bob@example.test"],
                   make_message(uniq, sender="alice@example.test",
                                to="bob@example.test"))
        s.quit()
        assert stored(g, uniq, "bob@example.test")
        conn = peer.seen("connect")[-1]["macros"]
        assert conn["{daemon_name}"] == "sub"
        assert conn["{daemon_addr}"] == "127.0.0.1"
        helo = peer.seen("helo")[-1]["macros"]
        assert helo["{tls_version}"].startswith("TLSv1."), helo
        assert helo["{cipher}"] and int(helo["{cipher_bits}"]) >= 128, helo
        mail = peer.seen("mail")[-1]["macros"]
        assert mail["{auth_authen}"] == "alice@example.test", mail
        assert mail["{auth_type}"] in ("PLAIN", "LOGIN", "SCRAM-SHA-256",
                                       "CRAM-MD5"), mail
    finally:
        peer.stop()


def test_header_limits(make_godwit, base, uniq):
    """A field longer than a milter packet: the milter gets its start, the
    message keeps it whole; a header over the milters' 1 MiB is refused
    for good (552 5.3.4), not retried."""
    peer = Peer(base)
    try:
        g = make_godwit({"smtp": {"max_message_size": "4M"},
                         "filter": {"milters": [milter_cfg(peer)]}})
        folded = "X-Long: start\n" + "".join(
            f" fold{i:06d}\n" for i in range(8000))
        r = send(g, uniq, extra=[folded.rstrip("\n")])
        assert r.code == 250, r
        # the milter gets what libmilter takes (a packet of 64 KiB at
        # most), the message keeps all of it
        seen = [e for e in peer.seen("header") if e["args"]["name"] == "X-Long"]
        v = seen[0]["args"]["value"]
        assert v.startswith("start\n fold000000") and 60000 < len(v) < 65536
        msg = stored(g, uniq)[0]
        assert folded.encode() in msg
        big = [f"X-Big-{i}: " + "y" * 900 for i in range(1200)]
        r = send(g, uniq + "-big", extra=big)
        assert r.code == 552 and r.enh == "5.3.4", r
    finally:
        peer.stop()


class BrokenMilter:
    """A milter that breaks the protocol, which no libmilter does: a
    socket server on a thread that negotiates (actions 0: no
    modifications) and answers each command with continue, except the
    command `at`, answered with the raw bytes `reply`."""

    def __init__(self, at, reply):
        import threading
        self.at, self.reply = at, reply
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    @staticmethod
    def packet(data):
        return len(data).to_bytes(4, "big") + data

    def serve(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            with c:
                c.settimeout(10)
                try:
                    self.session(c)
                except OSError:
                    pass

    def session(self, c):
        buf = b""
        while not self.stop:
            while len(buf) < 4 or len(buf) < 4 + int.from_bytes(buf[:4], "big"):
                more = c.recv(65536)
                if not more:
                    return
                buf += more
            n = int.from_bytes(buf[:4], "big")
            cmd, buf = buf[4:5], buf[4 + n:]
            if cmd == b"O":
                c.sendall(self.packet(b"O" + (6).to_bytes(4, "big") +
                                      bytes(8)))
            elif cmd == self.at:
                c.sendall(self.reply)
            elif cmd in b"CHMRTLNBE":
                c.sendall(self.packet(b"c"))

    def close(self):
        self.stop = True
        self.thread.join(5)
        self.sock.close()


@pytest.mark.parametrize("at,reply,why", [
    (b"M", b"\xff\xff\xff\xff", "packet too large"),
    (b"M", BrokenMilter.packet(b"y250 fine\0"), "replycode"),
    (b"M", BrokenMilter.packet(b"y550 4.7.1 mixed\0"), "replycode"),
    (b"R", BrokenMilter.packet(b"hX-Early\0v\0"), "modification before"),
    (b"E", BrokenMilter.packet(b"hX-Not-Allowed\0v\0") +
     BrokenMilter.packet(b"c"), "not negotiated"),
    (b"M", BrokenMilter.packet(b"c") + BrokenMilter.packet(b"c"),
     "nobody asked"),
    (b"M", BrokenMilter.packet(b"Z"), "unknown reply"),
])
def test_broken_milter(make_godwit, uniq, at, reply, why):
    """A milter that breaks the protocol is a failed milter: 451 4.7.1
    under on_error tempfail, logged with what was wrong."""
    bm = BrokenMilter(at, reply)
    try:
        g = make_godwit({"filter": {"milters": [
            {"name": "broken", "socket": f"inet:127.0.0.1:{bm.port}",
             "timeout": f"{TIMEOUT}s"}]}})
        with g.raw() as c:
            c.ehlo()
            r = c.cmd("MAIL FROM:<s@example.org>")
            if at == b"M" and why != "nobody asked":
                assert r.code == 451 and r.enh == "4.7.1", r
            else:
                assert r.code == 250, r
                r = c.cmd("RCPT TO:<alice@example.test>")
                if at == b"R" or why == "nobody asked":
                    assert r.code == 451 and r.enh == "4.7.1", r
                else:
                    assert r.code == 250, r
                    assert c.cmd("DATA").code == 354
                    c.send(make_message(uniq) + b".\r\n")
                    r = c.reply()
                    assert r.code == 451 and r.enh == "4.7.1", r
        assert not stored(g, uniq)
        wait_for(lambda: "milter=broken" in g.log_text() and
                 why in g.log_text(), 5, what=f"the error logged ({why})")
    finally:
        bm.close()


# ---- configuration -----------------------------------------------------------


@pytest.mark.parametrize("item,needle,message", [
    ("{name: a, socket: 'tcp:1.2.3.4:1'}", "tcp:", "socket"),
    ("{name: a, socket: 'inet:example.org:25'}", "example.org", "an IP address or localhost (no names)"),
    ("{name: a, socket: 'inet:127.0.0.1:99999'}", "99999", "socket"),
    ("{name: a}", "{name: a}", "missing required key 'socket'"),
    ("{socket: 'unix:/x'}", "unix:/x", "missing required key 'name'"),
    ("{name: a, socket: 'unix:/x', on_error: maybe}", "maybe", "on_error"),
    ("{name: a, socket: 'unix:/x', timeout: 0s}", "0s}", "timeout"),
    ("{name: a, socket: 'unix:/x', junk_header: 'X-Spam'}", "junk_header",
     "junk_header"),
    ("{name: a, socket: 'unix:/x', colour: red}", "colour", "colour"),
])
def test_config_check(make_godwit, item, needle, message):
    g = make_godwit(start=False)
    text = (Path(g.cfg_path).read_text() +
            "filter:\n  milters:\n    - {name: ok, socket: 'unix:/ok'}\n"
            f"    - {item}\n")
    g.write_config(raw=text)
    line = next(i for i, l in enumerate(text.splitlines(), 1) if needle in l)
    p = g.run("config", "check")
    out = p.stdout + p.stderr
    assert p.returncode == 1, out
    assert f"{g.cfg_path}:{line}: " in out and message in out, out


def test_config_check_duplicate_name(make_godwit):
    g = make_godwit(start=False)
    text = (Path(g.cfg_path).read_text() +
            "filter:\n  milters:\n    - {name: a, socket: 'unix:/a'}\n"
            "    - {name: a, socket: 'inet:127.0.0.1:1'}\n")
    g.write_config(raw=text)
    p = g.run("config", "check")
    out = p.stdout + p.stderr
    assert p.returncode == 1, out
    assert f"{g.cfg_path}:{len(text.splitlines())}: " in out, out
    assert "already the name" in out, out
