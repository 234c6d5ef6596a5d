"""
A private Postfix 3.7 instance inside a network-namespace lab host, as the
peer godwit delivers to and receives from (tests/integration/netlab.py).

One instance plays every role the outbound tests need at once:

  MX          inbound mail for the virtual domains (p.test, far.test) on
              HOST:25 (IPv4 and IPv6), STARTTLS offered with a self-signed
              certificate (smtpd_tls_security_level = may); accepted mail
              goes through virtual(8) into a Maildir per user under
              DIR/mail/DOMAIN/USER/.
  relay       clients in `mynetworks` (the lab subnets by default) may relay
              through port 25: Postfix's own smtp(8) client then looks the
              destination's MX up in the lab DNS (the host's
              /etc/netns/NS/resolv.conf, bind-mounted over /etc/resolv.conf
              by `ip netns exec`) and delivers with
              smtp_tls_security_level = may.
  submission  HOST:587 (STARTTLS required before anything) and HOST:465
              (implicit TLS), AUTH PLAIN/LOGIN through Cyrus SASL with a
              sasldb of our own; relaying needs authentication
              (smtpd_relay_restrictions = permit_sasl_authenticated,reject),
              so a wrong password makes the client see 535 and nothing more.

How it stays apart from the system Postfix: `postfix -c DIR/etc` reads only
our main.cf and master.cf (written from scratch here; /etc/postfix is not
read), every path (queue, data, log, pid files, Maildirs, sasldb) is under
DIR, every service runs with chroot off, and master is started with
`ip netns exec NS`, so its listeners live in the lab host's namespace:
nothing listens in the root namespace, let alone on its port 25. The
system instance and /var/spool/postfix are never touched. stop() ends only
the master whose pid our own queue directory records.

Standard library only. Every wait is bounded.
"""

import ipaddress
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
POSTCONF = shutil.which("postconf") or "/usr/sbin/postconf"
POSTQUEUE = shutil.which("postqueue") or "/usr/sbin/postqueue"
SASLPASSWD2 = shutil.which("saslpasswd2") or "/usr/sbin/saslpasswd2"

MARK = "# godwit test postfix peer (tests/integration/postfix_peer.py)"
# virtual(8) refuses uids below virtual_minimum_uid; Maildirs are nobody's.
MAIL_UID = 65534
MAIL_GID = 65534

# Services every instance needs; every one with chroot off (column 5 "n").
# Format: name type private unpriv chroot wakeup maxproc command.
BASE_SERVICES = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

SUBMISSION_OPTS = (
    "-o smtpd_tls_auth_only=yes"
    " -o smtpd_sasl_auth_enable=yes"
    " -o smtpd_client_restrictions=permit_sasl_authenticated,reject"
    " -o smtpd_relay_restrictions=permit_sasl_authenticated,reject"
)


class PostfixError(AssertionError):
    pass


def _merge_main_cf(text, extra):
    """text with each "name = value" of extra replacing the line that
    sets name (and its continuation lines), or appended."""
    lines = text.splitlines()
    for e in extra:
        name = e.split("=", 1)[0].strip()
        out, skip = [], False
        for l in lines:
            if skip and l[:1] in (" ", "\t"):
                continue
            skip = l.split("=", 1)[0].strip() == name and "=" in l
            if not skip:
                out.append(l)
        lines = out + [e]
    return "\n".join(lines) + "\n"


def _run(cmd, timeout=30, check=True, input=None, env=None):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                       input=input, env=env)
    if check and p.returncode != 0:
        raise PostfixError(f"{' '.join(map(str, cmd))} exited {p.returncode}:\n"
                           f"{p.stdout}{p.stderr}")
    return p


class PostfixPeer:
    """A private Postfix in lab host `host` (anything with .ns, .ip4 and
    optionally .ip6, e.g. netlab's Host).

    users: addresses with a virtual Maildir (their domains become
        virtual_mailbox_domains).
    sasl_users: {"user@realm": password} for AUTH on 587/465.
    mynetworks: CIDRs allowed to relay through port 25 without AUTH;
        default: the host's IPv4 /24 and IPv6 /64 (the lab subnet) and
        loopback.
    submission: also listen on 587 and 465.
    main_cf: main.cf lines ("name = value") that replace the default of
        that name or add to it (milters, restrictions: auth_peers.py).
    master_cf: more master.cf lines (a policy service).
    """

    def __init__(self, host, base=None, hostname="mx.p.test",
                 users=("carol@p.test", "dave@far.test"),
                 sasl_users=None, mynetworks=None, submission=True,
                 ip6=True, keep=False, main_cf=(), master_cf=()):
        if not getattr(host, "ns", None):
            # Without a namespace the listeners would open in the root
            # namespace, port 25 included: never.
            raise ValueError("PostfixPeer needs a lab host with a network namespace")
        self.host = host
        self.ns = host.ns
        self.ip4 = host.ip4
        self.ip6 = getattr(host, "ip6", None) if ip6 else None
        self.hostname = hostname
        self.users = tuple(users)
        self.domains = sorted({u.rsplit("@", 1)[1].lower() for u in self.users})
        self.sasl_users = dict(sasl_users if sasl_users is not None
                               else {"relayuser@p.test": "secret"})
        self.submission = submission
        self.keep = keep
        self.main_cf_extra = list(main_cf)
        self.master_cf_extra = list(master_cf)
        if mynetworks is None:
            mynetworks = ["127.0.0.0/8", "[::1]/128",
                          str(ipaddress.ip_interface(f"{self.ip4}/24").network)]
            if self.ip6:
                net6 = ipaddress.ip_interface(f"{self.ip6}/64").network
                mynetworks.append(f"[{net6.network_address}]/64")
        self.mynetworks = list(mynetworks)
        # Postfix wants its queue directory and the directory above it
        # owned by root and not writable by others, and its unprivileged
        # processes must be able to reach the sasldb and maps: so a fresh
        # 0755 directory directly under /tmp, not pytest's 0700 tree.
        if base is None:
            base = tempfile.mkdtemp(prefix="godwit-pfpeer-", dir="/tmp")
        self.dir = Path(base)
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chown(self.dir, 0, 0)
        os.chmod(self.dir, 0o755)
        self.etc = self.dir / "etc"
        self.spool = self.dir / "spool"
        self.data = self.dir / "data"
        self.logdir = self.dir / "log"
        self.mail = self.dir / "mail"
        self.sasl_dir = self.etc / "sasl"
        self.maillog = self.logdir / "maillog"
        self.cert = self.etc / "peer.crt"
        self.key = self.etc / "peer.key"
        self.master_pid = None
        self._setup()

    # -- configuration ---------------------------------------------------

    def listen_addrs(self):
        out = [self.ip4]
        if self.ip6:
            out.append(f"[{self.ip6}]")
        return out

    def ports(self):
        return (25, 587, 465) if self.submission else (25,)

    def _setup(self):
        for d in (self.etc, self.spool, self.data, self.logdir, self.mail,
                  self.sasl_dir):
            d.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.data, "postfix")
        shutil.chown(self.logdir, "postfix")
        os.chown(self.mail, MAIL_UID, MAIL_GID)
        self._make_cert()
        self._make_sasl()
        with open(self.etc / "vmailbox", "w") as f:
            for u in self.users:
                local, dom = u.rsplit("@", 1)
                # the trailing "/" makes virtual(8) deliver into a Maildir
                f.write(f"{u} {dom.lower()}/{local.lower()}/\n")
        (self.etc / "main.cf").write_text(_merge_main_cf(
            self._main_cf(), self.main_cf_extra))
        (self.etc / "master.cf").write_text(
            self._master_cf() + "".join(l + "\n" for l in self.master_cf_extra))
        # postconf parses both files: a typo fails here, not at start
        _run([POSTCONF, "-c", str(self.etc), "-n"])
        _run([POSTCONF, "-c", str(self.etc), "-M"])

    def _make_cert(self):
        san = [f"DNS:{self.hostname}", f"IP:{self.ip4}"]
        if self.ip6:
            san.append(f"IP:{self.ip6}")
        _run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
              "-days", "2", "-subj", f"/CN={self.hostname}",
              "-addext", "subjectAltName=" + ",".join(san),
              "-keyout", str(self.key), "-out", str(self.cert)], timeout=60)
        # smtpd reads the key as root before it drops privileges
        os.chmod(self.key, 0o600)
        os.chmod(self.cert, 0o644)

    def _make_sasl(self):
        db = self.sasl_dir / "sasldb2"
        for user, pw in self.sasl_users.items():
            name, realm = user.rsplit("@", 1)
            _run([SASLPASSWD2, "-c", "-p", "-f", str(db), "-u", realm, name],
                 input=pw + "\n")
        (self.sasl_dir / "smtpd.conf").write_text(
            "pwcheck_method: auxprop\nauxprop_plugin: sasldb\n"
            f"sasldb_path: {db}\nmech_list: PLAIN LOGIN\n")
        # smtpd checks passwords as user postfix; the sasldb library may
        # want a lock file next to the database
        shutil.chown(self.sasl_dir, "postfix")
        if db.exists():
            shutil.chown(db, "postfix")
            os.chmod(db, 0o600)

    def _main_cf(self):
        protocols = "all" if self.ip6 else "ipv4"
        return f"""{MARK}
compatibility_level = 3.6
queue_directory = {self.spool}
data_directory = {self.data}
mail_owner = postfix
setgid_group = postdrop
myhostname = {self.hostname}
mydomain = {self.domains[0] if self.domains else "p.test"}
myorigin = $mydomain
mydestination =
inet_interfaces = all
inet_protocols = {protocols}
mynetworks = {" ".join(self.mynetworks)}
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
smtpd_recipient_restrictions =
alias_maps =
alias_database =
local_recipient_maps =
biff = no
append_dot_mydomain = no
relayhost =
smtpd_banner = $myhostname ESMTP Postfix (godwit test peer)
maillog_file = {self.maillog}
maillog_file_prefixes = {self.logdir}
virtual_mailbox_domains = {" ".join(self.domains)}
virtual_mailbox_base = {self.mail}
virtual_mailbox_maps = texthash:{self.etc}/vmailbox
virtual_uid_maps = static:{MAIL_UID}
virtual_gid_maps = static:{MAIL_GID}
virtual_mailbox_limit = 0
message_size_limit = 10240000
# no PTR lookups for clients: the lab DNS need not answer them quickly
smtpd_peername_lookup = no
# the smtp(8) client: MX and addresses from the lab DNS, not /etc/hosts
smtp_host_lookup = dns
disable_dns_lookups = no
smtp_tls_security_level = may
smtp_tls_loglevel = 1
smtp_connect_timeout = 10s
# tests wait seconds, not Postfix's default minutes, for a retry
minimal_backoff_time = 2s
maximal_backoff_time = 5s
queue_run_delay = 2s
smtpd_tls_cert_file = {self.cert}
smtpd_tls_key_file = {self.key}
smtpd_tls_security_level = may
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
smtpd_sasl_auth_enable = no
cyrus_sasl_config_path = {self.sasl_dir}
smtpd_sasl_authenticated_header = yes
"""

    def _master_cf(self):
        lines = [MARK]
        for a in self.listen_addrs():
            lines.append(f"{a}:25 inet n - n - - smtpd")
            if self.submission:
                lines.append(
                    f"{a}:587 inet n - n - - smtpd"
                    " -o syslog_name=postfix/submission"
                    " -o smtpd_tls_security_level=encrypt " + SUBMISSION_OPTS)
                lines.append(
                    f"{a}:465 inet n - n - - smtpd"
                    " -o syslog_name=postfix/smtps"
                    " -o smtpd_tls_wrappermode=yes " + SUBMISSION_OPTS)
        return "\n".join(lines) + "\n" + BASE_SERVICES

    # -- process ---------------------------------------------------------

    def _ns(self, *cmd):
        return ["ip", "netns", "exec", self.ns] + [str(c) for c in cmd]

    def _read_master_pid(self):
        try:
            return int((self.spool / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def running(self):
        pid = self.master_pid or self._read_master_pid()
        if not pid:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        # a recycled pid would not be Postfix's master
        try:
            with open(f"/proc/{pid}/comm") as f:
                return f.read().strip() == "master"
        except OSError:
            return False

    def listening(self):
        """Ports the namespace has in LISTEN state (as `ss` sees them)."""
        p = _run(self._ns("ss", "-Hltn"), check=False, timeout=10)
        ports = set()
        for line in p.stdout.splitlines():
            parts = line.split()
            if len(parts) >= 4:
                try:
                    ports.add(int(parts[3].rsplit(":", 1)[1]))
                except ValueError:
                    pass
        return ports

    def start(self, timeout=20):
        p = _run(self._ns(POSTFIX, "-c", self.etc, "start"), check=False,
                 timeout=timeout)
        if p.returncode != 0:
            raise PostfixError(f"postfix start failed ({p.returncode}):\n"
                               f"{p.stdout}{p.stderr}\n{self.log_text()[-3000:]}")
        deadline = time.monotonic() + timeout
        while True:
            self.master_pid = self._read_master_pid()
            if self.master_pid and set(self.ports()) <= self.listening():
                return self
            if time.monotonic() > deadline:
                raise PostfixError(
                    f"postfix in {self.ns} not listening on {self.ports()} "
                    f"after {timeout}s:\n{self.log_text()[-3000:]}")
            time.sleep(0.1)

    def stop(self, timeout=15):
        if not self.running():
            return
        pid = self.master_pid or self._read_master_pid()
        _run(self._ns(POSTFIX, "-c", self.etc, "stop"), check=False,
             timeout=timeout)
        deadline = time.monotonic() + timeout
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.1)
        if self.running():
            # our own master (pid from our queue directory), nobody else's
            _run(self._ns(POSTFIX, "-c", self.etc, "abort"), check=False,
                 timeout=10)
            deadline = time.monotonic() + 5
            while self.running() and time.monotonic() < deadline:
                time.sleep(0.1)
            if self.running():
                os.kill(pid, signal.SIGKILL)

    def cleanup(self):
        self.stop()
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    # -- queue, mail, logs -----------------------------------------------

    def flush(self):
        _run([POSTQUEUE, "-c", str(self.etc), "-f"], check=False, timeout=20)

    def queue_ids(self):
        """Queue ids of every message still in Postfix's queue."""
        p = _run([POSTQUEUE, "-c", str(self.etc), "-j"], check=False,
                 timeout=20)
        return re.findall(r'"queue_id": "([0-9A-Za-z]+)"', p.stdout)

    def maildir(self, address):
        local, dom = address.rsplit("@", 1)
        return self.mail / dom.lower() / local.lower()

    def maildir_files(self, address):
        md = self.maildir(address)
        out = []
        for sub in ("new", "cur"):
            d = md / sub
            if d.is_dir():
                out.extend(sorted(p for p in d.iterdir() if p.is_file()))
        return out

    def find_messages(self, address, needle):
        if isinstance(needle, str):
            needle = needle.encode()
        return [p for p in self.maildir_files(address) if needle in p.read_bytes()]

    def wait_message(self, address, needle, timeout=30):
        """The first message in address's Maildir containing needle;
        fails after timeout with the tail of the mail log."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.find_messages(address, needle)
            if found:
                return found[0]
            if time.monotonic() > deadline:
                raise PostfixError(
                    f"no message with {needle!r} for {address} in Postfix's "
                    f"Maildir after {timeout}s; mail log:\n{self.log_text()[-4000:]}")
            time.sleep(0.1)

    def log_text(self):
        try:
            return self.maillog.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, pattern, timeout=20):
        """The first match of regex pattern in the mail log."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.log_text())
            if m:
                return m
            if time.monotonic() > deadline:
                raise PostfixError(f"no {pattern!r} in Postfix's log after "
                                   f"{timeout}s:\n{self.log_text()[-4000:]}")
            time.sleep(0.1)
