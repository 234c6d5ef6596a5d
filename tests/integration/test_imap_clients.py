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
import pwd
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
    # Dovecot counts a connection whose remote and local addresses are
    # the same as secure and takes a password in clear on it (127.0.0.1
    # to 127.0.0.1); one to 127.0.0.2 comes from 127.0.0.1, is not
    # secure, and gets LOGINDISABLED, as on a real network (and as from
    # godwit's imap listener on any address)
    plain_host = "127.0.0.2"

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
listen = 127.0.0.1, 127.0.0.2
ssl = required
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
    address = 127.0.0.1, 127.0.0.2
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

    def drop(self, msgs):
        """Writes msgs into alice's Maildir/new as another delivery agent
        would (tmp/ then rename), owned by the mail user."""
        _drop_files(self.maildir(), msgs)
        for p in [self.dir / "mail"] + list((self.dir / "mail").rglob("*")):
            os.lchown(p, MAIL_UID, MAIL_GID)

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
    plain_host = "127.0.0.1"

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

    def drop(self, msgs):
        """Writes msgs into alice's Maildir/new as another delivery agent
        running as the daemon user would (conftest hand_over_mail())."""
        _drop_files(self.maildir(), msgs)
        self.g.hand_over_mail()

    def deliver(self, msg):
        with smtplib.SMTP("127.0.0.1", self.g.port, timeout=20) as s:
            s.ehlo("client.test")
            s.sendmail("sender@example.org", [ALICE], msg)

    def log_text(self):
        return self.g.log_text()[-6000:]

    def stop(self):
        pass    # make_godwit's teardown stops it and checks the exit


def _drop_files(md, msgs):
    """msgs (CRLF bytes) as files in the Maildir md's new/, LF line ends
    as delivery agents store them."""
    for sub in ("tmp", "new", "cur"):
        (md / sub).mkdir(parents=True, exist_ok=True)
    now = int(time.time())
    for i, m in enumerate(msgs):
        data = m.replace(b"\r\n", b"\n")
        name = f"{now}.M{i}P{os.getpid()}.clients.test,S={len(data)}"
        (md / "tmp" / name).write_bytes(data)
        os.rename(md / "tmp" / name, md / "new" / name)


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
# isync 1.4: the far side is the IMAP server over implicit TLS (IMAPS)
# or STARTTLS, the near side a local tree of Maildirs (SubFolders
# Verbatim).
IMAPAccount srv
Host {host}
Port {port}
User {user}
Pass "{password}"
SSLType {ssltype}
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
    """mbsync: server -> local with flags and folders; a local flag
    change, new message and new folder -> server; a second sync (over
    STARTTLS) changes nothing; deletions go both ways."""
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
                                  ssltype="IMAPS", user=ALICE,
                                  password=PASSWORD, cafile=server.cafile,
                                  local=local))

    def sync(what, config=rc):
        code, out = run_client([exe, "-c", str(config), "-a"], work, what)
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

    # 2. local -> server: a flag, a new message, a new folder
    set_local_flags(loc[f"{tag} 1"][0], "S")
    add_local(local / "INBOX", message(tag, 4), f"{int(time.time())}.local4.test")
    for sub in ("cur", "new", "tmp"):
        (local / "Archive" / sub).mkdir(parents=True)
    add_local(local / "Archive", message(tag, 5), f"{int(time.time())}.local5.test")
    out = sync("mbsync push")
    assert set(mailbox_state(server, "Archive")) == {f"{tag} 5"}, \
        explain(server, out)
    st = mailbox_state(server)
    assert set(st) == {f"{tag} {i}" for i in (1, 2, 3, 4)}, \
        f"{st}" + explain(server, out)
    assert "\\Seen" in st[f"{tag} 1"][1], st
    assert "\\Flagged" in st[f"{tag} 2"][1], st
    assert "\\Seen" in st[f"{tag} 3"][1], st

    # 3. nothing changed: a sync is a no-op on both sides; this one goes
    # over port 143 with STARTTLS (the same server, the same state)
    rc143 = work / "mbsyncrc-starttls"
    rc143.write_text(MBSYNCRC.format(host=HOST, port=server.imap_port,
                                     ssltype="STARTTLS", user=ALICE,
                                     password=PASSWORD,
                                     cafile=server.cafile, local=local))
    loc_before = {s: (p.name, f) for s, (p, f) in local_state(local / "INBOX").items()}
    out = sync("mbsync noop", rc143)
    assert mailbox_state(server) == st, explain(server, out)
    assert {s: (p.name, f) for s, (p, f)
            in local_state(local / "INBOX").items()} == loc_before, out
    assert set(mailbox_state(server, "Work")) == {f"{tag} 9"}
    assert set(mailbox_state(server, "Archive")) == {f"{tag} 5"}

    # 4. deletions: 3 expunged on the server, 2 trashed locally
    expunge(server, f"{tag} 3")
    set_local_flags(local_state(local / "INBOX")[f"{tag} 2"][0], "FT")
    out = sync("mbsync delete")
    want = {f"{tag} 1", f"{tag} 4"}
    assert set(mailbox_state(server)) == want, explain(server, out)
    assert set(local_state(local / "INBOX")) == want, out


# -------------------------------------------------------- offlineimap ---

OFFLINEIMAPRC = """\
# offlineimap3: one account, the remote IMAP server over implicit TLS,
# INBOX only, into a local Maildir tree.
[general]
accounts = test
metadata = {work}/offlineimap-meta
maxsyncaccounts = 1

[Account test]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {work}/oimap

[Repository remote]
type = IMAP
remotehost = {host}
remoteport = {port}
ssl = yes
# the only trusted certificate: the test's own (verified, host name too)
sslcacertfile = {cafile}
remoteuser = {user}
remotepass = {password}
folderfilter = lambda folder: folder == "INBOX"
"""


def test_offlineimap_pull_and_push(server, work, uniq):
    """offlineimap: a mailbox pulled with its flags, then a local flag
    change and a local new message pushed to the server."""
    exe = shutil.which("offlineimap")
    assert exe, "offlineimap is not installed (offlineimap3)"
    tag = "oimap-" + uniq[-12:]
    seed(server, tag, 3)
    store(server, f"{tag} 2", "+FLAGS", "(\\Flagged)")
    rc = work / "offlineimaprc"
    rc.write_text(OFFLINEIMAPRC.format(work=work, host=HOST,
                                       port=server.imaps_port,
                                       cafile=server.cafile, user=ALICE,
                                       password=PASSWORD))

    def sync(what):
        code, out = run_client([exe, "-c", str(rc), "-o", "-u", "basic"],
                               work, what)
        assert code == 0 and "ERROR" not in out, \
            f"{what}: offlineimap exited {code}" + explain(server, out)
        return out

    out = sync("offlineimap pull")
    md = work / "oimap" / "INBOX"
    loc = local_state(md)
    assert set(loc) == {f"{tag} {i}" for i in (1, 2, 3)}, \
        f"{loc}" + explain(server, out)
    assert "F" in loc[f"{tag} 2"][1] and "F" not in loc[f"{tag} 1"][1], loc
    assert loc[f"{tag} 3"][0].read_bytes().replace(b"\r\n", b"\n").endswith(
        f"Body of message 3 of {tag}.\nSecond line.\n".encode())

    set_local_flags(loc[f"{tag} 1"][0], "S")
    add_local(md, message(tag, 4), f"{int(time.time())}_0.local4.test")
    out = sync("offlineimap push")
    st = mailbox_state(server)
    assert set(st) == {f"{tag} {i}" for i in (1, 2, 3, 4)}, \
        f"{st}" + explain(server, out)
    assert "\\Seen" in st[f"{tag} 1"][1], st
    assert "\\Flagged" in st[f"{tag} 2"][1], st
    assert not st[f"{tag} 3"][1] & {"\\Seen", "\\Flagged"}, st
    # the uploaded message came back with its server UID: local and
    # server agree, nothing is fetched twice
    out = sync("offlineimap again")
    assert set(local_state(md)) == set(st), out
    assert mailbox_state(server) == st, explain(server, out)


# --------------------------------------------------------------- curl ---

def curl(srv, work, url, *extra, what="curl"):
    """curl with the test certificate as its only CA; (code, stdout)."""
    exe = shutil.which("curl")
    assert exe, "curl is not installed"
    return run_client([exe, "-sS", "--max-time", "20", "--cacert",
                       srv.cafile, "-u", f"{ALICE}:{PASSWORD}", *extra,
                       url], work, what)


def test_curl_imap_and_imaps(server, work, uniq):
    """curl imap:// with STARTTLS (--ssl-reqd) and imaps://: LIST, a
    message by UID, SEARCH, a custom UID STORE, an upload (APPEND),
    STATUS; imap:// without TLS cannot log in (LOGINDISABLED)."""
    tag = "curl-" + uniq[-12:]
    msgs = seed(server, tag, 3)
    st = mailbox_state(server)
    imap = f"imap://{HOST}:{server.imap_port}"
    imaps = f"imaps://{HOST}:{server.imaps_port}"

    for base, extra in ((imap, ["--ssl-reqd"]), (imaps, [])):
        code, out = curl(server, work, base + "/", *extra, what="curl list")
        assert code == 0, f"curl LIST exited {code}" + explain(server, out)
        names = re.findall(r'^\* LIST \([^)]*\) (?:"/"|NIL) "?([^"\r\n]+)"?\r?$',
                           out, re.M)
        assert "INBOX" in names, out
        assert {"Sent", "Drafts", "Junk", "Trash"} <= set(names), out

        uid = st[f"{tag} 2"][0]
        code, out = curl(server, work, f"{base}/INBOX;UID={uid}", *extra,
                         what="curl fetch")
        assert code == 0, f"curl UID FETCH exited {code}" + explain(server, out)
        assert out.encode() == server_body(server, uid), out
        assert out.encode().replace(b"\r\n", b"\n").endswith(
            msgs[1].split(b"\r\n\r\n", 1)[1].replace(b"\r\n", b"\n")), out

        code, out = curl(server, work,
                         f"{base}/INBOX?SUBJECT%20%22{tag}%203%22", *extra,
                         what="curl search")
        assert code == 0, f"curl SEARCH exited {code}" + explain(server, out)
        seq3 = sorted(st, key=lambda s: st[s][0]).index(f"{tag} 3") + 1
        assert re.search(rf"^\* SEARCH {seq3}\r?$", out, re.M), out

    # a custom command in the selected mailbox: curl SELECTs, then sends it
    uid1 = st[f"{tag} 1"][0]
    code, out = curl(server, work, f"{imaps}/INBOX", "-X",
                     f"UID STORE {uid1} +FLAGS (\\Flagged)", what="curl store")
    assert code == 0, f"curl UID STORE exited {code}" + explain(server, out)
    assert "\\Flagged" in mailbox_state(server)[f"{tag} 1"][1]

    # an upload: curl sends APPEND INBOX (\Seen) {n}, a synchronizing
    # literal (it waits for "+")
    up = work / "upload.eml"
    up.write_bytes(message(tag, 7))
    code, out = curl(server, work, f"{imaps}/INBOX", "-T", str(up),
                     what="curl append")
    assert code == 0, f"curl APPEND exited {code}" + explain(server, out)
    st2 = mailbox_state(server)
    assert set(st2) == set(st) | {f"{tag} 7"}, st2
    assert server_body(server, st2[f"{tag} 7"][0]) == message(tag, 7)

    # a custom command without a mailbox: STATUS
    code, out = curl(server, work, f"{imaps}/", "-X",
                     "STATUS INBOX (MESSAGES UIDNEXT)", what="curl status")
    assert code == 0, f"curl STATUS exited {code}" + explain(server, out)
    m = re.search(r'^\* STATUS "?INBOX"? \((.*)\)\r?$', out, re.M)
    assert m, out
    items = dict(zip(m.group(1).split()[::2], m.group(1).split()[1::2]))
    assert items.get("MESSAGES") == "4", out
    assert int(items.get("UIDNEXT", 0)) > st2[f"{tag} 7"][0], out

    # no STARTTLS: the password must not go out in clear; the server
    # says LOGINDISABLED and curl's LOGIN fails (67: login denied)
    code, out = curl(server, work,
                     f"imap://{server.plain_host}:{server.imap_port}/",
                     what="curl plain")
    assert code == 67, f"curl without TLS exited {code}" + explain(server, out)


# ---------------------------------------------------------- fetchmail ---

def test_fetchmail_imap(server, work, uniq):
    """fetchmail over IMAP with STARTTLS: every message fetched through
    an MDA, then deleted and expunged on the server."""
    exe = shutil.which("fetchmail")
    assert exe, "fetchmail is not installed"
    tag = "fetchmail-" + uniq[-12:]
    msgs = seed(server, tag, 3)
    store(server, f"{tag} 2", "+FLAGS", "(\\Seen)")
    out_dir = work / "fetched"
    out_dir.mkdir()
    rc = work / "fetchmailrc"
    local = pwd.getpwuid(os.getuid()).pw_name
    # one file per message: the MDA's shell pid names it
    rc.write_text("\n".join([
        "set no syslog",
        "set no bouncemail",
        f"poll {HOST} protocol IMAP service {server.imap_port} timeout 30",
        f'  user "{ALICE}" there with password "{PASSWORD}" is {local} here',
        # STARTTLS required; the test certificate the only trust anchor
        f"  sslproto tls1.2+ sslcertck sslcertfile {server.cafile}",
        "  no keep fetchall",
        f'  mda "cat > {out_dir}/m.$$"',
        ""]))
    os.chmod(rc, 0o600)
    code, out = run_client(
        [exe, "--fetchmailrc", str(rc), "--nodetach", "--nosyslog", "-v",
         "--idfile", str(work / "fetchids"), "--pidfile",
         str(work / "fetchmail.pid")], work, "fetchmail",
        env_extra={"FETCHMAILHOME": str(work)})
    assert code == 0, f"fetchmail exited {code}" + explain(server, out)
    got = sorted(p.read_bytes() for p in out_dir.iterdir())
    assert len(got) == 3, out
    for m in msgs:
        body = m.split(b"\r\n\r\n", 1)[1].replace(b"\r\n", b"\n")
        assert sum(g.replace(b"\r\n", b"\n").endswith(body) for g in got) == 1
    assert mailbox_state(server) == {}, explain(server, out)


# ------------------------------------------------------ neomutt/tmux ---

class Tmux:
    """A tmux server of our own (its socket in the test's directory,
    -f /dev/null: no user config) running one command in a 200x50
    window. Every tmux call has a timeout, every wait a deadline; close()
    kills the server (and with it the client) whatever happened."""

    def __init__(self, work, cmd, env):
        self.sock = str(work / "tmux.sock")
        self.env = env
        self.pid = self.pane_pid = None
        try:
            self._tmux("new-session", "-d", "-x", "200", "-y", "50", "-s",
                       "t", cmd)
            ids = self._tmux("display-message", "-p", "-t", "t",
                             "#{pid} #{pane_pid}").split()
            self.pid, self.pane_pid = int(ids[0]), int(ids[1])
        except BaseException:
            self.close()
            raise

    def _tmux(self, *args, timeout=10):
        p = subprocess.run(["tmux", "-S", self.sock, "-f", "/dev/null",
                            *args], env=self.env, capture_output=True,
                           stdin=subprocess.DEVNULL, timeout=timeout)
        assert p.returncode == 0, f"tmux {args[0]}: {p.stderr!r}"
        return p.stdout.decode(errors="replace")

    def keys(self, *keys):
        self._tmux("send-keys", "-t", "t", *keys)

    def text(self, s):
        """Types s literally (-l: no key names)."""
        self._tmux("send-keys", "-t", "t", "-l", s)

    def screen(self):
        return self._tmux("capture-pane", "-p", "-t", "t")

    def wait(self, pattern, timeout=15, what=None):
        """Waits for pattern (a regex) on the screen; returns the match."""
        last = [""]

        def seen():
            last[0] = self.screen()
            return re.search(pattern, last[0], re.M)
        try:
            return wait_for(seen, timeout, interval=0.1,
                            what=what or repr(pattern))
        except AssertionError as e:
            raise AssertionError(f"{e}; the screen:\n{last[0]}") from None

    def close(self):
        """The pane's shell and the client first (their process group:
        sh -c runs them without job control; the shell sleeps, so the
        group is still ours), then the tmux server."""
        if self.pane_pid is not None:
            try:
                os.killpg(self.pane_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            subprocess.run(["tmux", "-S", self.sock, "kill-server"],
                           env=self.env, capture_output=True,
                           stdin=subprocess.DEVNULL, timeout=10)
        except subprocess.TimeoutExpired:
            if self.pid is not None:
                os.kill(self.pid, signal.SIGKILL)


MUTTRC = """\
# neomutt over implicit TLS; the user name is in the URL, the password
# here (no prompt)
set folder = "imaps://{user_url}@{host}:{port}/"
set spoolfile = "+INBOX"
set imap_user = "{user}"
set imap_pass = "{password}"
# the trusted certificates: just the test's (GnuTLS; the host name is
# checked too, ssl_verify_host stays yes)
set certificate_file = "{work}/certificates"
set ssl_force_tls = yes
set header_cache = ""
set message_cachedir = ""
set tmpdir = "{work}"
set record = ""
set sort = unsorted
set index_format = "%4C %Z %s"
set arrow_cursor = yes
set help = no
set mark_old = no
set delete = yes
set quit = yes
set move = no
set wait_key = no
set beep = no
set confirmappend = no
set imap_check_subscribed = no
set imap_idle = yes
set mail_check = 2
set timeout = 2
"""


def test_neomutt_in_tmux(server, work, uniq):
    """neomutt driven through tmux: opens imaps://, lists the messages,
    opens one, flags it, deletes another, syncs ($): the server sees the
    flag and the expunge; saves one to =Trash and syncs: it moved; a
    message delivered then shows up in the index; quits."""
    exe = shutil.which("neomutt") or shutil.which("mutt")
    assert exe, "neomutt is not installed"
    assert shutil.which("tmux"), "tmux is not installed"
    tag = "mutt-" + uniq[-12:]
    seed(server, tag, 3)
    shutil.copy(server.cafile, work / "certificates")
    rc = work / "muttrc"
    rc.write_text(MUTTRC.format(user_url=ALICE.replace("@", "%40"),
                                host=HOST, port=server.imaps_port,
                                user=ALICE, password=PASSWORD, work=work))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "TERM": "xterm",
           "LC_ALL": "C.UTF-8", "TMUX_TMPDIR": str(work)}
    # the shell after neomutt shows its exit code and keeps the pane for
    # capture-pane; the sleep is bounded and tmux is killed anyway
    cmd = (f"TERM=screen {exe} -n -F {rc}; "
           "echo NEOMUTT-EXITED-$?; sleep 120")
    t = Tmux(work, cmd, env)
    try:
        _drive_neomutt(t, server, tag)
    finally:
        try:
            (work / "screen.txt").write_text(t.screen())
        except (AssertionError, subprocess.TimeoutExpired):
            pass
        t.close()


def _drive_neomutt(t, server, tag):
    def line(i, mark=""):
        """A regex for message i's index line (the cursor anywhere),
        with mark among its status flags."""
        return (rf"^.{{0,8}}\d+ .{{0,3}}{mark}.{{0,3}}"
                rf" *{re.escape(tag)} {i}\s*$")

    def goto(i):
        """Searches message i: the cursor ("->") lands on it."""
        t.keys("/")
        t.wait(r"^Search for:", what="the search prompt")
        t.keys("C-u")       # the last pattern is offered: kill it
        t.wait(r"^Search for: *$", what="an empty search prompt")
        t.text(f"~s '{tag} {i}'")
        t.keys("Enter")
        t.wait(rf"^->.* {re.escape(tag)} {i}\s*$", what=f"cursor on {i}")

    def server_has(inbox, more=lambda st: True, box_trash=None):
        def ok():
            st = mailbox_state(server)
            if set(st) != inbox or not more(st):
                return False
            return box_trash is None or \
                set(mailbox_state(server, "Trash")) == box_trash
        try:
            wait_for(ok, 15, interval=0.3, what="the server to follow")
        except AssertionError:
            raise AssertionError(
                f"server INBOX {mailbox_state(server)}, Trash "
                f"{mailbox_state(server, 'Trash')}; the screen:\n"
                + t.screen() + explain(server, "")) from None
        return mailbox_state(server)

    # the index, every message listed
    for i in (1, 2, 3):
        t.wait(line(i), what=f"message {i} in the index")
    # open message 1, back to the index, flag it
    goto(1)
    t.keys("Enter")
    t.wait(rf"Body of message 1 of {re.escape(tag)}\.",
           what="message 1 in the pager")
    t.keys("q")
    t.wait(rf"^->.* {re.escape(tag)} 1\s*$", what="back in the index")
    t.keys("F")                 # the cursor moves on (resolve)
    t.wait(line(1, "!"), what="message 1 flagged")
    # delete message 2, sync: flags set, message 2 expunged
    goto(2)
    t.keys("d")
    t.wait(line(2, "D"), what="message 2 marked deleted")
    t.keys("$")
    st = server_has({f"{tag} 1", f"{tag} 3"},
                    lambda st: {"\\Seen", "\\Flagged"} <= st[f"{tag} 1"][1])
    assert not st[f"{tag} 3"][1] & {"\\Seen", "\\Flagged"}, st
    t.wait(line(3), what="message 3 still listed")
    # save message 3 to =Trash (COPY or MOVE), sync: gone from INBOX
    goto(3)
    t.keys("s")
    t.wait(r"^Save to mailbox", what="the save prompt")
    t.keys("C-u")
    t.text("=Trash")
    t.keys("Enter")
    t.wait(line(3, "D"), what="message 3 saved (and marked deleted)")
    t.keys("$")
    server_has({f"{tag} 1"}, box_trash={f"{tag} 3"})
    # new mail shows up in the open mailbox (IDLE, or the check every
    # mail_check seconds)
    server.deliver(message(tag, 4))
    t.wait(line(4), what="new message 4 in the index")
    t.keys("q")
    t.wait(r"NEOMUTT-EXITED-0", what="neomutt to exit 0")


def test_mbsync_many_pipelined(server, work, uniq):
    """mbsync pulls 120 messages (it pipelines its UID FETCHes, no
    PipelineDepth limit by default) put into the Maildir by another
    delivery agent, then pushes 40 local ones (pipelined APPENDs): every
    message arrives once, byte for byte."""
    exe = shutil.which("mbsync")
    assert exe, "mbsync is not installed (isync, scripts/install-deps.sh)"
    tag = "many-" + uniq[-12:]
    sent = {f"{tag} {i}": message(tag, i, f"Body {i}.\r\n" + "x" * (i * 91)
                                  + "\r\n") for i in range(120)}
    server.drop(list(sent.values()))
    local = work / "mail"
    local.mkdir()
    rc = work / "mbsyncrc"
    rc.write_text(MBSYNCRC.format(host=HOST, port=server.imaps_port,
                                  ssltype="IMAPS", user=ALICE,
                                  password=PASSWORD, cafile=server.cafile,
                                  local=local).replace("Patterns *",
                                                       "Patterns INBOX"))
    code, out = run_client([exe, "-c", str(rc), "-a"], work, "mbsync pull")
    assert code == 0, f"mbsync exited {code}" + explain(server, out)
    loc = local_state(local / "INBOX")
    assert set(loc) == set(sent), explain(server, out)
    for s, (p, _) in loc.items():
        # mbsync adds its X-TUID: header (the copy's temporary id)
        got = re.sub(rb"(?m)^X-TUID: [^\n]*\n", b"", p.read_bytes())
        assert got.replace(b"\r\n", b"\n") == \
            sent[s].replace(b"\r\n", b"\n"), s

    for i in range(120, 160):
        add_local(local / "INBOX", message(tag, i), f"{i}.local.test")
    code, out = run_client([exe, "-c", str(rc), "-a"], work, "mbsync push")
    assert code == 0, f"mbsync exited {code}" + explain(server, out)
    st = mailbox_state(server)
    assert set(st) == set(sent) | {f"{tag} {i}" for i in range(120, 160)}, \
        explain(server, out)
    assert len({uid for uid, _ in st.values()}) == 160
