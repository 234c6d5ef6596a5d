"""Milters (filter.milters): godwit's milter client against test milters
on Debian's python3-milter (milter_peer.py, libmilter underneath).

One milter process serves every case of a module: the test writes its
mode file (what to do at which stage) before each case, and reads the
callbacks and macros the milter saw from its log file.
"""
import json
import os
import signal
import socket
import subprocess
import sys
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

    def __init__(self, base, name="m1", unix=False):
        self.base = Path(base)
        self.name = name
        self.mode_path = self.base / f"{name}.mode.json"
        self.log_path = self.base / f"{name}.log"
        if unix:
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
             str(self.log_path), self.name],
            stdout=subprocess.DEVNULL, stderr=open(self.base / f"{self.name}.err", "a"))
        wait_for(self.ready, 10, what=f"milter {self.name} to listen")

    def ready(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"milter {self.name} exited")
        if self.socket.startswith("unix:"):
            addr, fam = str(self.path), socket.AF_UNIX
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


@pytest.mark.parametrize("stage", ["mail", "rcpt", "data", "eom"])
def test_reject_at_stage(gp, uniq, stage):
    g, peer = gp
    peer.set_mode({"stage": stage, "action": "reject"})
    with g.raw() as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<s@example.org>")
        if stage == "mail":
            assert r.code == 550 and "5.7.1" in r.text, r
            return
        assert r.code == 250, r
        r = c.cmd("RCPT TO:<alice@example.test>")
        if stage == "rcpt":
            assert r.code == 550 and "5.7.1" in r.text, r
            return
        assert r.code == 250, r
        r = c.cmd("DATA")
        if stage == "data":
            assert r.code == 550, r
            return
        assert r.code == 354, r
        c.send(make_message(uniq) + b".\r\n")
        r = c.reply()
        assert r.code == 550 and "5.7.1" in r.text, r
    assert not stored(g, uniq)


@pytest.mark.parametrize("stage", ["mail", "rcpt", "eom"])
def test_tempfail_at_stage(gp, uniq, stage):
    g, peer = gp
    peer.set_mode({"stage": stage, "action": "tempfail"})
    with g.raw() as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<s@example.org>")
        if stage == "mail":
            assert r.code == 451 and "4.7.1" in r.text, r
            return
        r = c.cmd("RCPT TO:<alice@example.test>")
        if stage == "rcpt":
            assert r.code == 451 and "4.7.1" in r.text, r
            return
        assert c.cmd("DATA").code == 354
        c.send(make_message(uniq) + b".\r\n")
        r = c.reply()
        assert r.code == 451 and "4.7.1" in r.text, r
    assert not stored(g, uniq)


def test_reject_at_connect_and_helo(gp):
    g, peer = gp
    peer.set_mode({"stage": "connect", "action": "reject"})
    c = g.raw(greet=False)
    r = c.reply()
    assert r.code == 554, r
    c.close()
    peer.set_mode({"stage": "helo", "action": "tempfail"})
    with g.raw() as c:
        r = c.cmd("EHLO client.test")
        assert r.code == 451, r


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


def test_discard(gp, uniq):
    g, peer = gp
    peer.set_mode({"stage": "eom", "action": "discard"})
    r = send(g, uniq)
    assert r.code == 250, r
    wait_for(lambda: "discard" in g.log_text(), 5, what="discard logged")
    assert not stored(g, uniq)


def test_discard_at_rcpt(gp, uniq):
    g, peer = gp
    peer.set_mode({"stage": "rcpt", "action": "discard"})
    r = send(g, uniq)
    assert r.code == 250, r
    assert not stored(g, uniq)
    # the milter was not asked about the rest of the message
    assert not peer.seen("eom")


def test_accept_skips_rest_of_message(gp, uniq):
    g, peer = gp
    peer.set_mode({"stage": "mail", "action": "accept"})
    r = send(g, uniq)
    assert r.code == 250, r
    assert stored(g, uniq)
    assert not peer.seen("rcpt") and not peer.seen("eom")


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
