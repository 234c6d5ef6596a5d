"""
clamav-milter as a godwit milter: a real clamd with the test's own
signature database and a real clamav-milter in front of it
(clamd_peer.py), in filter.milters. The attachment rules are off here,
so every verdict is clamav-milter's:

  the test sample in a text part    550 5.7.1 Virus found: <name>
  EICAR as a base64 attachment      550 5.7.1 Virus found: <name>
  a clean message                   250, delivered with X-Virus-Scanned
                                    and X-Virus-Status: Clean
  clamd down behind the milter      clamav-milter's OnFail Defer: 451

The reply is clamav-milter's own (its RejectMsg through SMFIR_REPLYCODE),
passed on by godwit. One clamd, one clamav-milter and one godwit serve the
module; the clamd-down test has a milter and a godwit of its own.
"""

import base64
import re

import pytest

import clamd_peer
from conftest import Godwit, serving, free_port, godwit_base, wait_for
from smtpclient import crlf, send_one

ALICE = "alice@example.test"


def milter(socket_spec):
    return {"name": "clamav", "socket": socket_spec, "on_error": "tempfail",
            "timeout": "30s"}


def overrides(socket_spec):
    return {"filter": {"attachments": {"enabled": False},
                       "milters": [milter(socket_spec)]}}


@pytest.fixture(scope="module")
def clamd(godwit_root):
    ok, why = clamd_peer.available()
    if not ok:
        pytest.skip(why)
    d = clamd_peer.Clamd(godwit_base(godwit_root, "clamd"), free_port())
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="module")
def clamav_milter(godwit_root, clamd):
    m = clamd_peer.ClamavMilter(godwit_base(godwit_root, "clamav_milter"),
                                free_port(), clamd)
    m.start()
    yield m
    m.stop()


@pytest.fixture(scope="module")
def world(godwit_root, clamav_milter):
    g = Godwit(godwit_base(godwit_root, "clamav_godwit"),
               overrides(clamav_milter.socket_spec))
    with serving(g):
        yield g


def message(marker, body="", attachment=None):
    """A text message, or a multipart/mixed one with attachment
    (name, bytes) in base64."""
    hdrs = ["From: <sender@client.test>", f"To: <{ALICE}>",
            f"Subject: clamav {marker}", f"Message-ID: <{marker}@client.test>",
            "Date: Sun, 06 Dec 2026 12:00:00 +0000", "MIME-Version: 1.0"]
    if attachment is None:
        text = "\n".join(hdrs) + f"\n\nbody {marker}\n{body}\n"
        return crlf(text)
    name, data = attachment
    b = "=_clamav_test"
    text = "\n".join(hdrs + [
        f'Content-Type: multipart/mixed; boundary="{b}"', "",
        f"--{b}", "Content-Type: text/plain", "", f"body {marker}",
        f"--{b}", f'Content-Type: application/octet-stream; name="{name}"',
        "Content-Transfer-Encoding: base64",
        f'Content-Disposition: attachment; filename="{name}"', "",
        base64.encodebytes(data).decode().rstrip("\n"),
        f"--{b}--", ""])
    return crlf(text)


def send(g, msg, rcpt=ALICE):
    return send_one(g.port, "sender@client.test", [rcpt], msg, timeout=60)


def stored(g, marker):
    md = g.maildir(ALICE) / "new"
    if not md.is_dir():
        return []
    return [p.read_bytes() for p in md.iterdir()
            if marker.encode() in p.read_bytes()]


def test_infected_sample_refused(world, uniq):
    r = send(world, message(uniq, clamd_peer.SAMPLE.decode()))
    assert (r.code, r.text) == (
        550, f"5.7.1 Virus found: {clamd_peer.SAMPLE_VIRUS}"), r
    assert world.find_messages(uniq) == []
    assert re.search(r"milter=clamav\b", world.log_text())


def test_eicar_attachment_refused(world, uniq):
    r = send(world, message(uniq, attachment=("eicar.txt", clamd_peer.EICAR)))
    assert (r.code, r.text) == (
        550, f"5.7.1 Virus found: {clamd_peer.EICAR_VIRUS}"), r
    assert world.find_messages(uniq) == []


def test_clean_message_delivered(world, uniq):
    r = send(world, message(uniq, attachment=("notes.txt", b"just notes\n")))
    assert r.code == 250, r
    got = wait_for(lambda: stored(world, uniq), 10, what="the message")
    head = got[0].split(b"\n\n", 1)[0].decode()
    assert "\nX-Virus-Status: Clean\n" in head + "\n", head
    assert re.search(r"^X-Virus-Scanned: clamav-milter ", head, re.M), head


def test_clamd_down_defers(godwit_root, make_godwit, uniq):
    """clamav-milter with no clamd behind it answers tempfail (OnFail
    Defer): 451, nothing stored."""
    dead = clamd_peer.Clamd(godwit_base(godwit_root, "clamd_dead"),
                            free_port())  # never started
    m = clamd_peer.ClamavMilter(godwit_base(godwit_root, "milter_nodb"),
                                free_port(), dead)
    m.start()
    try:
        g = make_godwit(overrides(m.socket_spec))
        r = send(g, message(uniq, "clean"))
        assert (r.code, r.enh) == (451, "4.7.1"), r
        assert g.find_messages(uniq) == []
    finally:
        m.stop()
    assert "No clamd server appears to be available" in m.output()
