"""
The mail-authentication peers that run beside a private Postfix
(postfix_peer.py, or bench/postfix-instance): OpenDKIM and OpenDMARC as
milters and postfix-policyd-spf-python as a policy service, all Debian
packages. Used by tests/integration/test_auth_lab.py and by
bench/auth-vs-postfix, so both run the same configuration.

  OpenDKIM    `opendkim -f -x CONF` in the foreground, a milter on
              inet:PORT@127.0.0.1 of the namespace it runs in. Mode "v"
              verifies, "s" signs with a KeyTable/SigningTable made from
              the keys given (one entry per key: several keys sign one
              message several times). AuthservID set, so its
              Authentication-Results header can be told from the others.
              Its resolver forwards to the name servers given (Nameservers:
              Debian's OpenDKIM resolves through libunbound, which would
              otherwise recurse from the root servers). Two limits of
              libunbound with its default settings, which OpenDKIM gives
              no way to change safely (a ResolverConfiguration file is
              parsed again for every message, by a parser that is not
              thread-safe: the milter dies under concurrent load): it never
              queries a loopback address (do-not-query-localhost), and it
              answers names under test., invalid., onion. and home.arpa.
              itself with NXDOMAIN (RFC 6761 default zones). So the name
              server it asks must not be 127.0.0.1/::1, and signing domains
              it verifies must be outside those zones (e.g. *.example).
  OpenDMARC   `opendmarc -f -c CONF`, a milter on inet:PORT@127.0.0.1;
              takes SPF and DKIM results from the Authentication-Results
              headers of TrustedAuthservIDs (policyd-spf's and OpenDKIM's),
              the organizational domain from Debian's public suffix list,
              RejectFailures on (a p=reject failure is refused at SMTP
              time, as godwit does).
  policyd-spf spawned by Postfix's master (the master.cf line from
              policyd_spf_master_cf()), with a configuration that checks
              the MAIL FROM identity, rejects on Fail and writes an
              Authentication-Results header with its own authserv-id.

Options are those of opendkim.conf(5), opendmarc.conf(5) and
policyd-spf.conf(5) as installed (OpenDKIM 2.11, OpenDMARC 1.4,
spf-engine 3.0). The localhost exemptions every one of them has by default
(InternalHosts, IgnoreHosts, skip_addresses: 127.0.0.1) are replaced by an
address that never connects (192.0.2.1), so mail from loopback - the
benchmark's client - is checked like any other.

Each milter is a process of ours: start() waits (bounded) until it listens
or fails with its output; stop() ends it with SIGTERM, then SIGKILL, by
its own pid. Standard library only.
"""

import os
import shutil
from pathlib import Path

from peer_proc import MilterPeer, chown_tree, installed

OPENDKIM = shutil.which("opendkim") or "/usr/sbin/opendkim"
OPENDMARC = shutil.which("opendmarc") or "/usr/sbin/opendmarc"
POLICYD_SPF = shutil.which("policyd-spf") or "/usr/bin/policyd-spf"
PSL = "/usr/share/publicsuffix/public_suffix_list.dat"
# an address no client ever has: replaces the localhost exemptions
NOBODY_ADDR = "192.0.2.1"


def available():
    """(True, "") if OpenDKIM, OpenDMARC and policyd-spf are installed."""
    return installed(
        [(OPENDKIM, "opendkim"), (OPENDMARC, "opendmarc"),
         (POLICYD_SPF, "postfix-policyd-spf-python"), (PSL, "publicsuffix")],
        [("opendkim", "opendkim"), ("opendmarc", "opendmarc"),
         ("policyd-spf", "postfix-policyd-spf-python")])


class Milter(MilterPeer):
    """One milter process listening on 127.0.0.1:port (of the namespace
    exec_prefix runs it in)."""

    def __init__(self, directory, port, exec_prefix=(), authserv_id="peer.test"):
        super().__init__(directory, port, exec_prefix)
        self.authserv_id = authserv_id

    @property
    def listen_spec(self):
        """Its own Socket setting."""
        return f"inet:{self.port}@127.0.0.1"

    def own(self):
        """Its directory to its user, the configuration root's (0644)."""
        chown_tree(self.dir, self.user)
        shutil.chown(self.conf, "root", "root")
        os.chmod(self.conf, 0o644)


class OpenDKIM(Milter):
    """keys: [(domain, selector, private_key_pem_path)] to sign with (mode
    "s" or "sv"); nameservers: addresses for libunbound (IP or IP@port)."""

    name = "opendkim"
    user = "opendkim"

    def __init__(self, directory, port, exec_prefix=(), authserv_id="peer.test",
                 mode="v", keys=(), nameservers=("127.0.0.1",),
                 internal_hosts=(NOBODY_ADDR,)):
        super().__init__(directory, port, exec_prefix, authserv_id)
        self.mode = mode
        self.keys = list(keys)
        self.nameservers = list(nameservers)
        self.internal_hosts = list(internal_hosts)

    def argv(self):
        return [OPENDKIM, "-f", "-x", str(self.conf)]

    def write(self):
        d = self.dir
        (d / "internal").write_text("\n".join(self.internal_hosts) + "\n")
        lines = [
            "# written by tests/integration/auth_peers.py",
            f"Mode {self.mode}",
            f"Socket {self.listen_spec}",
            "Background false",
            f"PidFile {d}/opendkim.pid",
            f"UserID {self.user}",
            "Syslog false",
            f"AuthservID {self.authserv_id}",
            f"Nameservers {','.join(self.nameservers)}",
            f"InternalHosts {d}/internal",
            "Canonicalization relaxed/relaxed",
            "SignatureAlgorithm rsa-sha256",
            "OversignHeaders From",
            "AlwaysAddARHeader true",
            "DNSTimeout 5",
        ]
        if self.keys:
            kdir = d / "keys"
            kdir.mkdir(exist_ok=True)
            kt, st = [], []
            for i, (domain, sel, pem) in enumerate(self.keys):
                dst = kdir / f"{i}.pem"
                shutil.copyfile(pem, dst)
                os.chmod(dst, 0o600)
                kt.append(f"k{i} {domain}:{sel}:{dst}")
                st.append(f"*@{domain} k{i}")
            (d / "KeyTable").write_text("\n".join(kt) + "\n")
            (d / "SigningTable").write_text("\n".join(st) + "\n")
            lines += [f"KeyTable file:{d}/KeyTable",
                      f"SigningTable refile:{d}/SigningTable",
                      "MultipleSignatures true",
                      # its "safe key" check walks up to / and refuses a
                      # key below /tmp (world-writable); the key file
                      # itself is 0600 and the milter user's
                      "RequireSafeKeys false"]
        self.conf.write_text("\n".join(lines) + "\n")


class OpenDMARC(Milter):
    name = "opendmarc"
    user = "opendmarc"

    def __init__(self, directory, port, exec_prefix=(), authserv_id="peer.test",
                 trusted=(), reject=True, ignore_hosts=(NOBODY_ADDR,)):
        super().__init__(directory, port, exec_prefix, authserv_id)
        self.trusted = list(trusted) or [authserv_id]
        self.reject = reject
        self.ignore_hosts = list(ignore_hosts)

    def argv(self):
        return [OPENDMARC, "-f", "-c", str(self.conf)]

    def write(self):
        d = self.dir
        (d / "ignore").write_text("\n".join(self.ignore_hosts) + "\n")
        lines = [
            "# written by tests/integration/auth_peers.py",
            f"Socket {self.listen_spec}",
            "Background false",
            f"PidFile {d}/opendmarc.pid",
            f"UserID {self.user}",
            "Syslog false",
            f"AuthservID {self.authserv_id}",
            f"TrustedAuthservIDs {','.join(self.trusted)}",
            f"IgnoreHosts {d}/ignore",
            f"PublicSuffixList {PSL}",
            f"RejectFailures {'true' if self.reject else 'false'}",
            "FailureReports false",
            "SPFIgnoreResults false",
            "SPFSelfValidate false",
            "DNSTimeout 5",
        ]
        self.conf.write_text("\n".join(lines) + "\n")


def write_policyd_spf_conf(path, authserv_id):
    """A policyd-spf.conf: MAIL FROM checked, Fail rejected, HELO only
    recorded, loopback not exempt, an Authentication-Results header."""
    path = Path(path)
    path.write_text(
        "# written by tests/integration/auth_peers.py\n"
        "debugLevel = 1\n"
        "TestOnly = 1\n"
        "HELO_reject = False\n"
        "Mail_From_reject = Fail\n"
        "PermError_reject = False\n"
        "TempError_Defer = False\n"
        f"skip_addresses = {NOBODY_ADDR}/32\n"
        "Header_Type = AR\n"
        f"Authserv_Id = {authserv_id}\n")
    os.chmod(path, 0o644)
    return path


def policyd_spf_master_cf(conf):
    """The master.cf line that spawns policyd-spf (as its man page says)."""
    return (f"policyd-spf unix - n n - 0 spawn user=policyd-spf "
            f"argv={POLICYD_SPF} {conf}")


def postfix_main_cf(milters, policy=True):
    """main.cf lines: the milters in order (OpenDKIM first, so OpenDMARC
    sees its header) and the SPF policy check at RCPT TO."""
    out = [
        "smtpd_milters = " + ", ".join(m.postfix_spec for m in milters),
        "non_smtpd_milters =",
        "milter_default_action = tempfail",
        "milter_protocol = 6",
    ]
    if policy:
        out += [
            "policyd-spf_time_limit = 3600",
            "smtpd_recipient_restrictions = reject_unauth_destination, "
            "check_policy_service unix:private/policyd-spf",
        ]
    return out
