"""
fetchmail against godwit's POP3 server: a mailbox of 1,000 messages sent
over SMTP is downloaded over pop3s into a local Maildir and deleted on the
server, and every message is compared byte for byte with what godwit
stored and with what was sent. A smaller run over the 110-style port
checks STLS, UIDL and keep.

fetchmail runs as a subprocess with its own rc file, HOME, idfile and
pidfile in the test's directory, in the foreground, with -v -v (its
transcript is shown when something fails) and a hard timeout.

What fetchmail changes in a message, with the options used here: nothing.
Its MDA gets the message as godwit stored it, LF line ends included
(godwit stores LF, sends CRLF, fetchmail's stripcr, on by default with an
MDA, takes the CR off again); "invisible" suppresses its Received header,
"no rewrite" its address rewriting, "no mimedecode" its QP decoding, and
Return-Path and Delivered-To stay (they go only with SMTP forwarding and
dropdelivered).
"""

import faulthandler
import os
import pwd
import re
import shutil
import smtplib
import subprocess
import time

import pytest

from conftest import PASSWORD, wait_for
from test_pop3 import ALICE, BOB, crlf, pop  # noqa: F401 (pop: a fixture)

N_MESSAGES = 1000
FETCHMAIL_TIMEOUT = 240
# fetchmail starts a shell and cat for each message: 1,000 of them take
# tens of seconds on a busy machine, more than conftest's 90 s allow
WATCHDOG = 360

TRACE = (b"Return-Path:", b"Delivered-To:", b"Authentication-Results:",
         b"Received:")


@pytest.fixture(autouse=True)
def _watchdog():
    """Replaces conftest's watchdog with a longer one for this module."""
    faulthandler.dump_traceback_later(WATCHDOG, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


# ------------------------------------------------------------ messages ---

def _body(i):
    """The body of message i and whether it is 8-bit. The kinds cycle
    so every one of them occurs many times among 1,000."""
    kind = i % 10
    if kind == 0:
        return f"Plain message {i}.\nSecond line.\n", False
    if kind == 1:
        return (".starts with a dot\n..two dots\n.\n. \n...\n"
                f"after the lone dot {i}\n.\n"), False
    if kind == 2:
        return ("8-bit: caf\u00e9 \u00fc\u00f1\u00ee\u00e7\u00f8d\u00e9 "
                "\u65e5\u672c\u8a9e \u0440\u0443\u0441\u0441\u043a\u0438\u0439"
                f" \U0001f426 {i}\n.caf\u00e9 after a dot\n"), True
    if kind == 3:
        return "", False                                # empty body
    if kind == 4:
        # the longest lines SMTP allows (998 octets plus CRLF); the one
        # that starts with a dot is 999 octets on the wire, stuffed
        return ("x" * 997 + f"{i % 10}\n" + "." + "y" * 997 + "\n"
                + "\u00e9" * 499 + "\n"), True
    if kind == 5:
        # lines an mbox writer or a header parser could trip over
        return (f"From the body of {i}, not a separator\n>From quoted\n"
                "Received: not a header\nStatus: RO\n\n\n"), False
    if kind == 6:
        return "  leading spaces\n\ttab\ntrailing spaces   \n \n\t\n", False
    if kind == 7:
        return "\n\n\nthree blank lines above, two below\n\n\n", False
    if kind == 8 and i % 200 == 8:
        # a few of 100 KiB, dots at the start of many lines
        line = ".0123456789abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ\n"
        return line * (100 * 1024 // len(line) + 1), False
    return "".join(f"line {j} of message {i}\n" for j in range(40)), False


def make_message(i, tag):
    """Message i as sent over SMTP (CRLF) and whether it needs
    BODY=8BITMIME. The Message-ID tells the messages apart."""
    body, eight = _body(i)
    head = (f"From: Sender <sender@example.org>\nTo: {ALICE}\n"
            f"Subject: fetchmail {i} of {tag}\n"
            f"Message-ID: <fm.{i}.{tag}@example.org>\n"
            "Date: Mon, 23 Nov 2026 09:00:00 +0000\n")
    if i % 10 == 6:
        head += ("X-Folded: a header folded\n over two\n\tand three lines\n"
                 "X-Long: " + "h" * 900 + "\n")
    if eight:
        head += ("MIME-Version: 1.0\n"
                 "Content-Type: text/plain; charset=utf-8\n"
                 "Content-Transfer-Encoding: 8bit\n")
    return crlf(head + "\n" + body), eight


def send_all(g, rcpt, n, tag):
    """Sends n messages over one SMTP connection; returns
    {Message-ID: message as sent}."""
    sent = {}
    with smtplib.SMTP("127.0.0.1", g.port, timeout=60) as s:
        s.ehlo("client.test")
        for i in range(n):
            m, eight = make_message(i, tag)
            s.sendmail("sender@example.org", [rcpt], m,
                       mail_options=["BODY=8BITMIME"] if eight else [])
            sent[message_id(m)] = m
    assert len(sent) == n
    return sent


def message_id(msg):
    """The Message-ID of msg (LF or CRLF), from its header section."""
    head = re.split(rb"\r?\n\r?\n", msg, maxsplit=1)[0]
    found = re.findall(rb"^Message-ID: *(<[^>\r\n]+>)\r?$", head,
                       re.M | re.I)
    assert len(found) == 1, head[:2000]
    return found[0].decode()


def split_trace(stored):
    """(trace, rest) of a message godwit stored: its Return-Path,
    Delivered-To, Authentication-Results (port 25) and Received headers,
    in that order, each once."""
    lines = stored.split(b"\n")
    seen = []
    i = 0
    while i < len(lines):
        if lines[i].startswith(TRACE) and len(seen) < len(TRACE):
            seen.append(lines[i].split(b":", 1)[0] + b":")
        elif not (seen and lines[i][:1] in (b" ", b"\t")):
            break
        i += 1
    assert tuple(seen) == TRACE, stored[:600]
    return b"\n".join(lines[:i]) + b"\n", b"\n".join(lines[i:])


def stored_messages(g, address, n, sent):
    """Waits for n messages in address's Maildir and checks that each is
    godwit's trace headers plus exactly what was sent; returns
    {Message-ID: stored bytes}."""
    wait_for(lambda: len(g.maildir_files(address)) >= n, 120,
             what=f"{n} messages for {address}")
    stored = {}
    for p in g.maildir_files(address):
        data = p.read_bytes()
        mid = message_id(data)
        assert mid not in stored, f"{mid} stored twice"
        stored[mid] = data
    assert set(stored) == set(sent)
    for mid, data in stored.items():
        trace, rest = split_trace(data)
        assert trace.startswith(b"Return-Path: <sender@example.org>\n")
        assert f"Delivered-To: {address}\n".encode() in trace
        assert rest == sent[mid].replace(b"\r\n", b"\n"), mid
        assert b"\r" not in data
    return stored


# ----------------------------------------------------------- fetchmail ---

class Fetchmail:
    """fetchmail with everything it keeps (rc file, idfile, pidfile,
    HOME) in one directory, delivering into DIR/Maildir/new through an
    MDA that writes one file per message."""

    def __init__(self, base):
        self.home = base
        self.home.mkdir(parents=True, exist_ok=True)
        self.maildir = self.home / "Maildir"
        for sub in ("tmp", "new", "cur"):
            (self.maildir / sub).mkdir(parents=True, exist_ok=True)
        self.runs = 0
        self.output = ""

    def rc(self, user, port, tls, keep=False, fetchall=True, uidl=False,
           auth="password"):
        new = self.maildir / "new"
        # One shell and one cat per message, nothing more (fetchmail
        # hands the command to sh -c): the shell's pid names the file;
        # should a pid come round again, mktemp picks another name.
        mda = (f"[ -e {new}/m.$$ ] && exec cat >$(mktemp {new}/c.XXXXXXXXXX);"
               f" set -C; exec cat >{new}/m.$$")
        local = pwd.getpwuid(os.getuid()).pw_name
        return "\n".join([
            "set no syslog",
            "set no bouncemail",
            "set invisible",
            f"poll 127.0.0.1 protocol pop3 service {port} timeout 60"
            + (f" auth {auth}" if auth else "") + (" uidl" if uidl else ""),
            f'  user "{user}" there with password "{PASSWORD}"'
            f" is {local} here",
            "  ssl" if tls == "implicit" else "  sslproto tls1.2+",
            "  no sslcertck",
            "  " + ("keep" if keep else "no keep"),
            "  " + ("fetchall" if fetchall else "no fetchall"),
            "  expunge 0 limit 0 fetchlimit 0",
            "  stripcr no forcecr no rewrite no mimedecode",
            "  no dropstatus no dropdelivered no pass8bits",
            f'  mda "{mda}"',
            "",
        ])

    def run(self, user, port, tls, **kw):
        """Runs fetchmail once; returns its exit code. Its output (-v -v)
        is in self.output."""
        self.runs += 1
        rc = self.home / f"fetchmailrc.{self.runs}"
        rc.write_text(self.rc(user, port, tls, **kw))
        os.chmod(rc, 0o600)
        out = self.home / f"fetchmail.{self.runs}.out"
        env = {"PATH": "/usr/bin:/bin", "HOME": str(self.home),
               "FETCHMAILHOME": str(self.home), "LC_ALL": "C"}
        exe = shutil.which("fetchmail", path=env["PATH"])
        assert exe, "fetchmail is not installed (scripts/install-deps.sh)"
        with open(out, "wb") as f:
            try:
                p = subprocess.run(
                    [exe, "--fetchmailrc", str(rc), "--nodetach",
                     "--nosyslog", "--invisible", "-v", "-v",
                     "--idfile", str(self.home / "fetchids"),
                     "--pidfile", str(self.home / "fetchmail.pid")],
                    stdin=subprocess.DEVNULL, stdout=f,
                    stderr=subprocess.STDOUT, env=env,
                    timeout=FETCHMAIL_TIMEOUT)
                code = p.returncode
            except subprocess.TimeoutExpired:
                code = None
        self.output = out.read_bytes().decode("utf-8", "replace")
        assert code is not None, (
            f"fetchmail did not finish in {FETCHMAIL_TIMEOUT}s\n"
            + self.tail())
        return code

    def tail(self, n=6000):
        return "fetchmail's output (end):\n" + self.output[-n:]

    def files(self):
        return sorted(p for p in (self.maildir / "new").iterdir()
                      if p.is_file())

    def fetched(self):
        """{Message-ID: bytes} of what fetchmail delivered, failing on a
        message delivered twice."""
        got = {}
        for p in self.files():
            data = p.read_bytes()
            mid = message_id(data)
            assert mid not in got, f"{mid} delivered twice"
            got[mid] = data
        return got

    def clear(self):
        for p in self.files():
            p.unlink()


def pop3_logouts(g, user):
    """(retrieved, deleted, delete_failed) of every logout of user."""
    return [tuple(int(x) for x in m) for m in re.findall(
        r"fac=pop3 event=logout [^\n]*user=" + re.escape(user) +
        r" reason=quit retrieved=(\d+) deleted=(\d+) delete_failed=(\d+)",
        g.log_text())]


def assert_same(fetched, stored, fm):
    missing = sorted(set(stored) - set(fetched))
    extra = sorted(set(fetched) - set(stored))
    assert not missing and not extra, (
        f"{len(fetched)} fetched, {len(stored)} stored; missing "
        f"{missing[:5]}, unexpected {extra[:5]}\n" + fm.tail())
    for mid, data in stored.items():
        if fetched[mid] != data:
            a, b = fetched[mid], data
            i = next((k for k in range(min(len(a), len(b)))
                      if a[k] != b[k]), min(len(a), len(b)))
            raise AssertionError(
                f"{mid}: fetched {len(a)} octets, stored {len(b)}, first "
                f"difference at {i}: fetched {a[max(0, i - 40):i + 40]!r}"
                f" stored {b[max(0, i - 40):i + 40]!r}")


# --------------------------------------------------------------- tests ---

def test_fetchmail_downloads_and_deletes_1000_messages(pop, tmp_path):
    g = pop()
    t0 = time.monotonic()
    sent = send_all(g, ALICE, N_MESSAGES, "pop3s")
    stored = stored_messages(g, ALICE, N_MESSAGES, sent)
    t_smtp = time.monotonic() - t0

    fm = Fetchmail(tmp_path / "fetchmail")
    t0 = time.monotonic()
    code = fm.run(ALICE, g.pop3s_port, "implicit")
    t_fetch = time.monotonic() - t0
    assert code == 0, f"fetchmail exited {code}\n" + fm.tail()
    assert f"{N_MESSAGES} messages for {ALICE}" in fm.output, fm.tail()
    assert "SSL/TLS: using protocol TLSv1." in fm.output

    # every message arrived once, exactly as godwit stored it: fetchmail
    # changed nothing; and what follows godwit's trace headers is what
    # was sent over SMTP (checked in stored_messages)
    fetched = fm.fetched()
    assert len(fm.files()) == N_MESSAGES
    assert_same(fetched, stored, fm)

    # deleted on the server: DELE for each, committed by one QUIT
    assert g.maildir_files(ALICE) == [], fm.tail()
    assert g.tmp_files() == []
    assert pop3_logouts(g, ALICE) == [(N_MESSAGES, N_MESSAGES, 0)]
    assert fm.output.count("POP3> DELE ") == N_MESSAGES
    assert f"POP3< +OK Logging out, {N_MESSAGES} messages deleted" \
        in fm.output

    # nothing left: fetchmail's exit code 1 is "no mail"
    code = fm.run(ALICE, g.pop3s_port, "implicit")
    assert code == 1, f"second run exited {code}\n" + fm.tail()
    assert len(fm.files()) == N_MESSAGES
    assert pop3_logouts(g, ALICE) == [(N_MESSAGES, N_MESSAGES, 0),
                                      (0, 0, 0)]
    # for the record when run with -s: where the time goes
    print(f"SMTP {t_smtp:.1f}s, fetchmail {t_fetch:.1f}s")


def test_fetchmail_stls_uidl_keep(pop, tmp_path):
    """The 110-style port: fetchmail must upgrade with STLS before it
    logs in (sslproto), picks its authentication itself from CAPA, reads
    the messages with TOP and leaves them with keep, knows them by UIDL
    on the next run, and deletes them when told to."""
    g = pop()
    n = 40
    sent = send_all(g, BOB, n, "stls")
    stored = stored_messages(g, BOB, n, sent)
    fm = Fetchmail(tmp_path / "fetchmail")

    code = fm.run(BOB, g.pop3_port, "stls", keep=True, fetchall=False,
                  uidl=True, auth=None)
    assert code == 0, f"fetchmail exited {code}\n" + fm.tail()
    out = fm.output
    assert "upgrade to TLS succeeded" in out, fm.tail()
    assert out.index("POP3> STLS") < out.index("POP3> USER "), fm.tail()
    assert "POP3> UIDL" in out
    # with keep, fetchmail reads with TOP n 99999999 (RETR would mark
    # the message seen on some servers): the whole message, byte exact,
    # and not counted as retrieved
    assert len(re.findall(r"POP3> TOP \d+ 99999999\n", out)) == n
    assert "POP3> RETR" not in out
    assert_same(fm.fetched(), stored, fm)
    assert len(g.maildir_files(BOB)) == n        # kept
    assert pop3_logouts(g, BOB) == [(0, 0, 0)]

    # the same UIDs on the next login: nothing new, nothing retrieved
    fm.clear()
    code = fm.run(BOB, g.pop3_port, "stls", keep=True, fetchall=False,
                  uidl=True, auth=None)
    assert code == 1, f"fetchmail exited {code}\n" + fm.tail()
    assert fm.files() == []
    assert "POP3> RETR" not in fm.output and "POP3> TOP" not in fm.output
    assert pop3_logouts(g, BOB)[-1] == (0, 0, 0)

    # fetch them all again, deleting this time
    code = fm.run(BOB, g.pop3_port, "stls", keep=False, fetchall=True,
                  uidl=True, auth=None)
    assert code == 0, f"fetchmail exited {code}\n" + fm.tail()
    assert_same(fm.fetched(), stored, fm)
    assert g.maildir_files(BOB) == []
    assert pop3_logouts(g, BOB)[-1] == (n, n, 0)
