"""
Real IMAP clients we did not write, against godwit's IMAP server and,
with the very same scenarios, against a private Dovecot 2.3 (Debian's
dovecot-imapd, started by the test from a config in the test's
directory): the Dovecot half proves each scenario and each client's
configuration right, so a failure on the godwit half is godwit's.

- mbsync (isync 1.4): a mailbox synced both ways: server -> local Maildir
  with flags, a local flag change and a local new message -> server, a
  second sync that changes nothing, deletions in both directions;
- offlineimap (offlineimap3): a mailbox pulled into a local Maildir, then
  a local flag change and a local new message pushed back;
- neomutt driven through tmux: open imaps://, list, open a message, flag
  one, delete one, sync, quit; the effect checked on the server;
- curl imap:// (STARTTLS, --ssl-reqd) and imaps://: LIST, a message by
  UID, SEARCH, a custom STORE; plain LOGIN before STARTTLS refused;
- fetchmail over IMAP with STARTTLS: messages fetched and expunged.

TLS: every client trusts the session's test certificate (fixture `cert`,
self-signed for mx.example.test and localhost) as its only trust anchor
and connects to "localhost" (127.0.0.1 here), so certificate and host
name are verified for real; no client is told to skip verification.

Each client runs with its own HOME and config in the test's directory,
stdin closed, and a hard timeout; neomutt runs in a tmux server of its
own (a private socket) that is killed in a finally.
"""

import imaplib
import os
import re
import shutil
import signal
import smtplib
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from conftest import PASSWORD, free_port, godwit_base, wait_for

ALICE = "alice@example.test"
HOST = "localhost"          # in the test certificate's subjectAltName
CLIENT_TIMEOUT = 40         # seconds, any one client run
SERVERS = ("dovecot", "godwit")
MAIL_UID = 65534            # Dovecot's mail processes run as nobody
MAIL_GID = 65534


# ------------------------------------------------------------ Dovecot ---

class Dovecot:
    """A private Dovecot 2.3 IMAP server under one directory: IMAP with
    STARTTLS (plaintext LOGIN refused before it, as godwit's imap
    listener does) and implicit TLS, on free loopback ports, the user
    alice@example.test with the test password in a passwd-file, Maildir++
    under DIR/mail with '/' as the hierarchy separator and the
    special-use folders created, as godwit has them. Started in the
    foreground (dovecot -F) in a process group of its own; never the
    system service, /etc/dovecot never read."""

    name = "dovecot"

    def __init__(self, base, cert):
        self.dir = Path(base)
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.imap_port, self.imaps_port = free_port(), free_port()
        self.crt, self.key = cert
        self.cafile = str(self.crt)
        self.proc = None
        self.conf = self.dir / "dovecot.conf"
        self._write()

    def _write(self):
        d = self.dir
        for sub in ("etc", "run", "state", "log", "mail"):
            (d / sub).mkdir(exist_ok=True)
        os.chown(d / "mail", MAIL_UID, MAIL_GID)
        pw = d / "etc" / "passwd"
        pw.write_text(f"{ALICE}:{{PLAIN}}{PASSWORD}\n")
        shutil.chown(pw, group="dovecot")
        os.chmod(pw, 0o640)
        boxes = "".join(
            f"  mailbox {n} {{\n    special_use = \\{n}\n"
            "    auto = subscribe\n  }\n"
            for n in ("Sent", "Drafts", "Junk", "Trash"))
        self.conf.write_text(f"""\
# a private Dovecot for tests/integration/test_imap_clients.py
instance_name = godwit-it-dovecot-{self.imaps_port}
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/log/dovecot.log
info_log_path = {d}/log/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{self.crt}
ssl_key = <{self.key}
disable_plaintext_auth = yes
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%Lu {pw}
}}
userdb {{
  driver = static
  args = uid={MAIL_UID} gid={MAIL_GID} home={d}/mail/%Ld/%Ln
}}
mail_location = maildir:{d}/mail/%Ld/%Ln/Maildir
first_valid_uid = {MAIL_UID}
first_valid_gid = {MAIL_GID}
postmaster_address = postmaster@example.test
namespace inbox {{
  inbox = yes
  separator = /
{boxes}}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.imaps_port}
    ssl = yes
  }}
}}
""")

    def start(self):
        self.log = open(self.dir / "log" / "dovecot.out", "ab")
        self.proc = subprocess.Popen(
            ["/usr/sbin/dovecot", "-F", "-c", str(self.conf)],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
            start_new_session=True)

        def up():
            assert self.proc.poll() is None, (
                "dovecot exited at start:\n" + self.log_text())
            return all(_tls_greets(p, implicit)
                       for p, implicit in ((self.imap_port, False),
                                           (self.imaps_port, True)))
        wait_for(up, 20, interval=0.1, what="dovecot to answer")
        return self

    def log_text(self):
        out = ""
        for f in ("dovecot.out", "dovecot.log"):
            p = self.dir / "log" / f
            if p.exists():
                out += p.read_text(errors="replace")[-4000:]
        return out

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        # the master's children (auth, imap, ...) go with it; any left
        # in its process group are killed
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.log.close()

    def maildir(self):
        return self.dir / "mail" / "example.test" / "alice" / "Maildir"

    def deliver(self, msg):
        """Delivers msg (bytes) to alice's INBOX with dovecot-lda, the
        way Dovecot's own delivery agent stores mail."""
        p = subprocess.run(
            ["/usr/lib/dovecot/dovecot-lda", "-c", str(self.conf),
             "-d", ALICE, "-f", "sender@example.org"],
            input=msg.replace(b"\r\n", b"\n"), capture_output=True,
            timeout=30)
        assert p.returncode == 0, f"dovecot-lda: {p.stderr!r}"



def _tls_greets(port, implicit):
    """Whether port answers an IMAP greeting (over TLS if implicit)."""
    import socket
    try:
        with socket.create_connection(("127.0.0.1", port), 1) as s:
            s.settimeout(2)
            if implicit:
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                with ctx.wrap_socket(s) as t:
                    return t.recv(512).startswith(b"* OK")
            return s.recv(512).startswith(b"* OK")
    except OSError:
        return False


# ------------------------------------------------------------- godwit ---

class GodwitImap:
    """A Godwit (conftest) with an imap (STARTTLS) and an imaps listener
    on both loopback addresses; mail is delivered over SMTP on its mx
    port, the way mail reaches a mailbox."""

    name = "godwit"

    def __init__(self, make_godwit, cert):
        crt, key = cert
        self.cafile = str(crt)
        g = make_godwit({"tls": {"certificates": [
            {"cert": str(crt), "key": str(key)}]}}, start=False)
        self.imap_port, self.imaps_port = free_port(), free_port()
        g.config["listeners"] += [
            {"name": "imap", "protocol": "imap",
             "listen": [f"127.0.0.1:{self.imap_port}",
                        f"[::1]:{self.imap_port}"]},
            {"name": "imaps", "protocol": "imaps",
             "listen": [f"127.0.0.1:{self.imaps_port}",
                        f"[::1]:{self.imaps_port}"]},
        ]
        g.write_config()
        g.start()
        self.g = g

    def maildir(self):
        return self.g.maildir(ALICE)

    def deliver(self, msg):
        with smtplib.SMTP("127.0.0.1", self.g.port, timeout=20) as s:
            s.ehlo("client.test")
            s.sendmail("sender@example.org", [ALICE], msg)

    def log_text(self):
        return self.g.log_text()[-6000:]

    def stop(self):
        pass    # make_godwit's teardown stops it and checks the exit


@pytest.fixture(params=SERVERS)
def server(request, cert, godwit_root):
    """The IMAP server under test: a private Dovecot or godwit."""
    if request.param == "dovecot":
        if not os.path.exists("/usr/lib/dovecot/imap"):
            pytest.fail("dovecot-imapd is not installed "
                        "(scripts/install-deps.sh)")
        base = godwit_base(godwit_root, request.node.originalname)
        srv = Dovecot(base / "dovecot", cert).start()
        try:
            yield srv
        finally:
            srv.stop()
    else:
        yield GodwitImap(request.getfixturevalue("make_godwit"), cert)


@pytest.fixture
def work(godwit_root, request):
    """A directory for the clients' HOME, configs and local Maildirs."""
    d = godwit_base(godwit_root, request.node.originalname) / "client"
    d.mkdir(parents=True)
    return d


# ------------------------------------------------------ the server side ---

def message(tag, n, body=None):
    """Message n of a test (CRLF), its Subject "<tag> <n>"."""
    body = body or f"Body of message {n} of {tag}.\r\nSecond line.\r\n"
    return (f"From: Sender <sender@example.org>\r\nTo: {ALICE}\r\n"
            f"Subject: {tag} {n}\r\n"
            f"Message-ID: <{tag}.{n}@example.org>\r\n"
            f"Date: Mon, 23 Nov 2026 09:0{n % 10}:00 +0000\r\n"
            "\r\n" + body).encode()


def imap_login(srv):
    """imaplib over implicit TLS, the test certificate trusted, logged
    in as alice."""
    ctx = ssl.create_default_context(cafile=srv.cafile)
    c = imaplib.IMAP4_SSL(HOST, srv.imaps_port, ssl_context=ctx, timeout=15)
    c.login(ALICE, PASSWORD)
    return c


def _ok(r, what):
    typ, data = r
    assert typ == "OK", f"{what}: {typ} {data!r}"
    return data


def mailbox_state(srv, box="INBOX"):
    """{subject: (uid, frozenset of flags)} of a mailbox, read after
    EXAMINE (read-only: looking changes nothing)."""
    c = imap_login(srv)
    try:
        n = int(_ok(c.select(box, readonly=True), f"EXAMINE {box}")[0])
        if n == 0:
            return {}
        uid_flags = {}
        for item in _ok(c.fetch("1:*", "(UID FLAGS)"), "FETCH (UID FLAGS)"):
            if isinstance(item, tuple):
                item = item[0]
            seq = int(item.split(b" ", 1)[0])
            uid = re.search(rb"\bUID (\d+)", item)
            flags = re.search(rb"\bFLAGS \(([^)]*)\)", item)
            assert uid and flags, item
            uid_flags[seq] = (int(uid.group(1)),
                              frozenset(flags.group(1).decode().split()))
        subjects = {}
        data = _ok(c.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])"),
                   "FETCH BODY.PEEK[HEADER.FIELDS (SUBJECT)]")
        for item in data:
            if isinstance(item, tuple):
                seq = int(item[0].split(b" ", 1)[0])
                m = re.search(rb"^Subject: *(.*?)\r?$", item[1], re.M | re.I)
                subjects[seq] = m.group(1).decode() if m else ""
        assert set(subjects) == set(uid_flags) == set(range(1, n + 1)), (
            n, subjects, uid_flags)
        return {subjects[s]: uid_flags[s] for s in subjects}
    finally:
        c.logout()


def store(srv, subject, op, flags, box="INBOX"):
    """UID STORE op flags on the message with this subject."""
    uid = mailbox_state(srv, box)[subject][0]
    c = imap_login(srv)
    try:
        _ok(c.select(box), f"SELECT {box}")
        _ok(c.uid("STORE", str(uid), op, flags), f"UID STORE {uid}")
    finally:
        c.logout()


def expunge(srv, subject, box="INBOX"):
    """Deletes the message with this subject from the server."""
    store(srv, subject, "+FLAGS", "(\\Deleted)", box)
    c = imap_login(srv)
    try:
        _ok(c.select(box), f"SELECT {box}")
        _ok(c.expunge(), "EXPUNGE")
    finally:
        c.logout()


def server_body(srv, uid, box="INBOX"):
    """BODY.PEEK[] of a UID: the message as the server sends it."""
    c = imap_login(srv)
    try:
        _ok(c.select(box, readonly=True), f"EXAMINE {box}")
        data = _ok(c.uid("FETCH", str(uid), "(BODY.PEEK[])"), "UID FETCH")
        return [x[1] for x in data if isinstance(x, tuple)][0]
    finally:
        c.logout()


def seed(srv, tag, n):
    """Delivers messages 1..n of tag to alice's INBOX; returns them."""
    msgs = [message(tag, i) for i in range(1, n + 1)]
    for m in msgs:
        srv.deliver(m)
    want = {f"{tag} {i}" for i in range(1, n + 1)}
    wait_for(lambda: want <= set(mailbox_state(srv)), 15,
             what=f"{n} messages in INBOX")
    return msgs


# ---------------------------------------------------- local Maildirs ---

def maildir_flags(path):
    """The flags in a Maildir file name ("" without an info part)."""
    name = Path(path).name
    return name.split(":2,", 1)[1] if ":2," in name else ""


def local_state(md):
    """{subject: (path, flags)} of a local Maildir's messages."""
    out = {}
    for sub in ("new", "cur"):
        d = Path(md) / sub
        if not d.is_dir():
            continue
        for p in sorted(d.iterdir()):
            m = re.search(rb"^Subject: *(.*?)\r?$", p.read_bytes(),
                          re.M | re.I)
            s = m.group(1).decode() if m else ""
            assert s not in out, f"{s} twice in {md}: {out[s][0]}, {p}"
            out[s] = (p, maildir_flags(p))
    return out


def set_local_flags(path, flags):
    """Renames a Maildir file into cur/ with these flags (as a mail
    reader does)."""
    p = Path(path)
    base = p.name.split(":2,", 1)[0]
    new = p.parent.parent / "cur" / f"{base}:2,{''.join(sorted(flags))}"
    os.rename(p, new)
    return new


def add_local(md, msg, name):
    """Writes a new message into a local Maildir's new/ (tmp/ first)."""
    tmp = Path(md) / "tmp" / name
    tmp.write_bytes(msg.replace(b"\r\n", b"\n"))
    os.rename(tmp, Path(md) / "new" / name)


def run_client(argv, work, what, env_extra=None, timeout=CLIENT_TIMEOUT,
               input=None):
    """Runs a client with HOME=work, stdin closed (or input), a hard
    timeout; returns (exit code, output), output also kept in a file."""
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(work),
           "LC_ALL": "C.UTF-8", "TERM": "dumb"}
    env.update(env_extra or {})
    try:
        p = subprocess.run(argv, env=env, cwd=work, capture_output=True,
                           timeout=timeout, input=input,
                           stdin=None if input is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"") + (e.stderr or b"")
        raise AssertionError(f"{what} did not finish in {timeout}s:\n"
                             + out.decode(errors="replace")[-4000:])
    out = (p.stdout + p.stderr).decode(errors="replace")
    n = len(list(work.glob("*.out")))
    (work / f"{n:02d}-{what.split()[0]}.out").write_text(
        f"$ {' '.join(map(str, argv))}\nexit {p.returncode}\n{out}")
    return p.returncode, out


def explain(srv, out):
    """Text for an assertion: the client's output and the server's log."""
    return f"\n--- client output:\n{out[-4000:]}\n--- {srv.name} log:\n" \
        + srv.log_text()[-3000:]


# ------------------------------------------------------------- mbsync ---

MBSYNCRC = """\
# isync 1.4: the far side is the IMAP server over implicit TLS, the
# near side a local Maildir++-free tree (SubFolders Verbatim).
IMAPAccount srv
Host {host}
Port {port}
User {user}
Pass "{password}"
SSLType IMAPS
# the only trusted certificate: the test's own (verified, host name too)
CertificateFile {cafile}

IMAPStore far
Account srv

MaildirStore near
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel both
Far :far:
Near :near:
Patterns *
Create Both
Expunge Both
SyncState *
CopyArrivalDate yes
"""


def test_mbsync_both_ways(server, work, uniq):
    """mbsync: server -> local with flags and folders; local flag change
    and new message -> server; a second sync changes nothing; deletions
    go both ways."""
    exe = shutil.which("mbsync")
    assert exe, "mbsync is not installed (isync, scripts/install-deps.sh)"
    tag = "mbsync-" + uniq[-12:]
    seed(server, tag, 3)
    store(server, f"{tag} 2", "+FLAGS", "(\\Flagged)")
    store(server, f"{tag} 3", "+FLAGS", "(\\Seen)")
    c = imap_login(server)
    try:
        _ok(c.create("Work"), "CREATE Work")
        _ok(c.append("Work", "(\\Answered)", None, message(tag, 9)),
            "APPEND Work")
    finally:
        c.logout()

    local = work / "mail"
    local.mkdir()
    rc = work / "mbsyncrc"
    rc.write_text(MBSYNCRC.format(host=HOST, port=server.imaps_port,
                                  user=ALICE, password=PASSWORD,
                                  cafile=server.cafile, local=local))

    def sync(what):
        code, out = run_client([exe, "-c", str(rc), "-a"], work, what)
        assert code == 0, f"{what}: mbsync exited {code}" + explain(server, out)
        return out

    # 1. server -> local, with flags and the folder
    out = sync("mbsync first")
    loc = local_state(local / "INBOX")
    assert set(loc) == {f"{tag} {i}" for i in (1, 2, 3)}, \
        f"{loc}" + explain(server, out)
    assert "F" not in loc[f"{tag} 1"][1] and "S" not in loc[f"{tag} 1"][1]
    assert "F" in loc[f"{tag} 2"][1], loc
    assert "S" in loc[f"{tag} 3"][1], loc
    work_loc = local_state(local / "Work")
    assert set(work_loc) == {f"{tag} 9"} and "R" in work_loc[f"{tag} 9"][1], \
        work_loc
    for s, (p, _) in loc.items():
        n = int(s.rsplit(" ", 1)[1])
        assert p.read_bytes().replace(b"\r\n", b"\n").endswith(
            f"Body of message {n} of {tag}.\nSecond line.\n".encode()), p

    # 2. local -> server: a flag and a new message
    set_local_flags(loc[f"{tag} 1"][0], "S")
    add_local(local / "INBOX", message(tag, 4), f"{int(time.time())}.local4.test")
    out = sync("mbsync push")
    st = mailbox_state(server)
    assert set(st) == {f"{tag} {i}" for i in (1, 2, 3, 4)}, \
        f"{st}" + explain(server, out)
    assert "\\Seen" in st[f"{tag} 1"][1], st
    assert "\\Flagged" in st[f"{tag} 2"][1], st
    assert "\\Seen" in st[f"{tag} 3"][1], st

    # 3. nothing changed: a sync is a no-op on both sides
    loc_before = {s: (p.name, f) for s, (p, f) in local_state(local / "INBOX").items()}
    out = sync("mbsync noop")
    assert mailbox_state(server) == st, explain(server, out)
    assert {s: (p.name, f) for s, (p, f)
            in local_state(local / "INBOX").items()} == loc_before, out
    assert set(mailbox_state(server, "Work")) == {f"{tag} 9"}

    # 4. deletions: 3 expunged on the server, 2 trashed locally
    expunge(server, f"{tag} 3")
    set_local_flags(local_state(local / "INBOX")[f"{tag} 2"][0], "FT")
    out = sync("mbsync delete")
    want = {f"{tag} 1", f"{tag} 4"}
    assert set(mailbox_state(server)) == want, explain(server, out)
    assert set(local_state(local / "INBOX")) == want, out
