"""
`godwit quickstart` and `godwit dns`, end to end: quickstart in a
temporary directory (--config-dir/--data-dir) writes a configuration that
`godwit config check` passes; a second run keeps every file byte for byte;
the daemon starts on it as root (under exactly the systemd unit's
capability bounding set and no_new_privs, as the unit runs it) and drops
to the daemon user; the admin logs in over submission with the password
quickstart printed and mails postmaster@, which lands in the admin's
Maildir; POP3 over TLS gives it back, and IMAP logs in on 993 and on 143
after STARTTLS; the unit passes `systemd-analyze
verify`; and `godwit dns`'s output loads in nsd-checkzone and parses
with dnslib into the records the configuration asks for.

The written configuration listens on the real ports (25, 587, ...) of
every address; the test rewrites those lines to free loopback ports, and
points dns.resolver at the suite's refusing resolver so nothing leaves
the machine.
"""

import hashlib
import imaplib
import json
import os
import poplib
import pwd
import re
import shutil
import smtplib
import ssl
import urllib.request
import subprocess
from pathlib import Path

import pytest

from conftest import (GODWIT_BIN, Godwit, _finish, client_tls_context,
                      daemon_env, daemon_user, free_port, godwit_base,
                      refusing_dns_port, wait_for)

HOST = "mail.example.net"
ADMIN = "Admin@Example.NET"
ADMIN_NORM = "admin@example.net"
DOMAIN = "example.net"
PORTS = {25: "mx", 587: "submission", 465: "submissions", 110: "pop3",
         995: "pop3s", 143: "imap", 993: "imaps"}


def quickstart(base, *extra):
    p = subprocess.run(
        [GODWIT_BIN, "quickstart", HOST, ADMIN,
         "--config-dir", str(base / "etc"), "--data-dir",
         str(base / "data"), *extra],
        capture_output=True, text=True, timeout=120, env=daemon_env())
    assert "Sanitizer" not in p.stderr, p.stderr
    return p


def tree_digest(*roots):
    """path -> (sha256, mode, uid) of every file below roots."""
    out = {}
    for root in roots:
        for p in sorted(Path(root).rglob("*")):
            if p.is_file() and not p.name.endswith(("-wal", "-shm")):
                st = p.stat()
                out[str(p)] = (hashlib.sha256(p.read_bytes()).hexdigest(),
                               st.st_mode, st.st_uid)
    return out


class QuickstartGodwit(Godwit):
    """The daemon on the configuration quickstart wrote (no users or
    configuration of the fixture's own), started like the unit starts
    it: root, with the unit's capability bounding set and no_new_privs."""

    def __init__(self, base, cfg_path, data_dir, ports, prefix):
        self.netns = self.nethost = None
        self.base = Path(base)
        self.data_dir = Path(data_dir)
        self.cfg_path = Path(cfg_path)
        self.stderr_path = self.base / "godwit.stderr"
        self.stdout_path = self.base / "godwit.stdout"
        self.host4, self.host6 = "127.0.0.1", "::1"
        self.ports = ports
        self.port = ports[25]
        self.proc = self.pgid = None
        self.exit_codes = []
        self.expect_crash = False
        self.asan_extra = ""
        self._admin_sanitizer_reports = []
        self.prefix = prefix
        self.config = {"user": daemon_user(), "listeners": [
            {"name": PORTS[p], "listen": [f"127.0.0.1:{ports[p]}"]}
            for p in PORTS]}

    def _ns_prefix(self):
        return self.prefix


def unit_capabilities(unit_text):
    m = re.search(r"^CapabilityBoundingSet=(.*)$", unit_text, re.M)
    return [c.strip().lower().replace("cap_", "") for c in m.group(1).split()]


@pytest.fixture(scope="module")
def setup(request, godwit_root):
    """quickstart run once for the module: (base, first run's output)."""
    base = godwit_base(godwit_root, "quickstart")
    p = quickstart(base)
    assert p.returncode == 0, p.stdout + p.stderr
    return base, p.stdout


def password_of(out):
    m = re.search(r"^  password   (\S+)$", out, re.M)
    assert m, out
    return m.group(1)


def unit_of(out):
    m = re.search(r"^--- save as /etc/systemd/system/godwit.service ---\n"
                  r"(.*?)^--- end ---$", out, re.M | re.S)
    assert m, out
    return m.group(1)


def test_first_run(setup):
    base, out = setup
    etc, data = base / "etc", base / "data"
    cfg = (etc / "godwit.yaml").read_text()
    assert f"hostname: {HOST}\n" in cfg
    assert f"data_dir: {data}\n" in cfg
    for port, name in PORTS.items():
        assert (f"  - name: {name}\n    protocol: {name if port != 25 else 'smtp'}\n"
                f"    listen: [\"0.0.0.0:{port}\", \"[::]:{port}\"]\n") in cfg
    assert "greylist:\n    enabled: true" in cfg
    assert "zen.spamhaus.org" in cfg
    key = etc / "tls" / f"{HOST}.key"
    crt = etc / "tls" / f"{HOST}.crt"
    assert key.stat().st_mode & 0o777 == 0o600
    x = subprocess.run(["openssl", "x509", "-in", str(crt), "-noout",
                        "-subject", "-ext", "subjectAltName"],
                       capture_output=True, text=True, check=True)
    assert f"DNS:{HOST}" in x.stdout
    keys = sorted(p.name for p in (data / "dkim" / DOMAIN).iterdir())
    assert len(keys) == 2 and keys[0].endswith("-ed25519.key") and \
        keys[1].endswith("-rsa.key"), keys
    pw = password_of(out)
    assert re.fullmatch(r"[A-Za-z0-9]{24}", pw)
    # never stored in clear
    for p in [etc / "godwit.yaml", *data.rglob("*")]:
        if p.is_file():
            assert pw.encode() not in p.read_bytes(), p
    assert f"postmaster@{DOMAIN} -> {ADMIN_NORM} (alias added)" in out
    # the three additions are in the audit log, as the commands alone
    # would have written them
    recs = [json.loads(l) for l in
            (data / "log" / "audit.log").read_text().splitlines()]
    assert [(r["type"], r["action"], r["object"], r["result"])
            for r in recs] == [
        ("admin", "domain-add", DOMAIN, "ok"),
        ("admin", "user-add", ADMIN_NORM, "ok"),
        ("admin", "alias-add", f"postmaster@{DOMAIN} {ADMIN_NORM}", "ok")]
    assert f"{etc}/godwit.yaml: ok" in out
    # the DNS records and the next steps
    assert f"{DOMAIN}. 3600 IN MX 10 {HOST}." in out
    assert "firewall --format iptables" in out
    # the firewall rules themselves, which nft accepts as they are printed
    m = re.search(r"^#!/usr/sbin/nft -f\n(.*?^\}\n)", out, re.M | re.S)
    assert m, out
    rules = m.group(0)
    for port in (25, 587, 465, 110, 995, 143, 993):
        assert f"dport {port} " in rules, (port, rules)
    nft = base / "quickstart.nft"
    nft.write_text(rules)
    r = subprocess.run(["nft", "-c", "-f", str(nft)], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr + rules
    assert "systemctl daemon-reload && systemctl enable --now godwit" in out
    # not the system's configuration directory: printed, not installed
    assert "not installed" in out


def test_config_check(setup):
    base, _ = setup
    p = subprocess.run([GODWIT_BIN, "-c", str(base / "etc" / "godwit.yaml"),
                        "config", "check"], capture_output=True, text=True,
                       timeout=60, env=daemon_env())
    assert p.returncode == 0, p.stderr
    assert p.stdout == f"{base}/etc/godwit.yaml: ok\n"
    assert p.stderr == ""


def test_second_run_changes_nothing(setup):
    base, _ = setup
    before = tree_digest(base / "etc", base / "data")
    p = quickstart(base)
    assert p.returncode == 0, p.stdout + p.stderr
    assert tree_digest(base / "etc", base / "data") == before
    out = p.stdout.split("\n\n")[1]     # the rows, before the unit
    assert "(kept: it exists)" in out
    assert "2 key(s) of example.net (kept)" in out
    assert f"{ADMIN_NORM} (kept, password unchanged" in out
    assert "is already an alias" in out
    assert "  password " not in out
    assert "written" not in out and "made" not in out and "added" not in out


def test_unit_verifies(setup, tmp_path):
    _, out = setup
    unit = unit_of(out)
    for line in ("ProtectSystem=strict", "NoNewPrivileges=yes",
                 "LimitNOFILE=", "PrivateTmp=yes", "ProtectHome=yes",
                 "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
                 f"ExecStart={os.path.realpath(GODWIT_BIN)} -c "):
        assert line in unit
    assert set(unit_capabilities(unit)) == {
        "net_bind_service", "setuid", "setgid", "chown", "fowner",
        "dac_override", "kill"}
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    f = tmp_path / "godwit.service"
    f.write_text(unit)
    p = subprocess.run(["systemd-analyze", "verify", str(f)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    # it warns (exit 0) about unknown keys and bad values: none of those
    assert str(f) not in p.stderr, p.stderr


def serve_config(base, ports):
    """The written configuration on loopback ports, with the suite's
    refusing resolver: what the test starts."""
    text = (base / "etc" / "godwit.yaml").read_text()
    for port in PORTS:
        text = text.replace(f'["0.0.0.0:{port}", "[::]:{port}"]',
                            f'["127.0.0.1:{ports[port]}", "[::1]:{ports[port]}"]')
    # the loopback metrics listener, on a free port too
    assert '["127.0.0.1:9925", "[::1]:9925"]' in text
    text = text.replace('["127.0.0.1:9925", "[::1]:9925"]',
                        f'["127.0.0.1:{ports["metrics"]}"]')
    text = text.replace("resolver: recursive",
                        f'resolver: ["127.0.0.1@{refusing_dns_port()}"]')
    text = re.sub(r"^  trust_anchor: .*\n", "", text, flags=re.M)
    assert "0.0.0.0" not in text and "[::]" not in text
    path = base / "etc" / "serve.yaml"
    path.write_text(text)
    return path


def test_serve_submit_and_collect(setup):
    base, out = setup
    pw = password_of(out)
    ports = {p: free_port() for p in PORTS}
    ports["metrics"] = free_port()
    cfg = serve_config(base, ports)
    caps = ",".join("+" + c for c in unit_capabilities(unit_of(out)))
    setpriv = shutil.which("setpriv")
    prefix = [setpriv, "--bounding-set", "-all," + caps,
              "--no-new-privs"] if setpriv else []
    g = QuickstartGodwit(base, cfg, base / "data", ports, prefix)
    problems = []
    try:
        g.start()
        uid = str(pwd.getpwnam("godwit").pw_uid)

        def uids(pid):
            with open(f"/proc/{pid}/status") as f:
                return re.search(r"^Uid:\s+(.*)$", f.read(), re.M).group(1)

        # the parent stays root; its children (forked after the bind)
        # switch to the daemon user before they serve
        assert uids(g.pid).split() == ["0"] * 4
        wait_for(lambda: len(g.all_children()) == 3 and all(
            uids(p).split() == [uid] * 4 for p in g.all_children()), 20,
            what="the workers and the runner to run as godwit")
        with smtplib.SMTP("127.0.0.1", ports[587], timeout=30,
                          local_hostname="client.test") as s:
            s.starttls(context=client_tls_context())
            s.ehlo("client.test")
            code, _ = s.login(ADMIN_NORM, pw)
            assert code == 235
            refused = s.sendmail(
                ADMIN_NORM, [f"postmaster@{DOMAIN}"],
                f"From: {ADMIN_NORM}\r\nTo: postmaster@{DOMAIN}\r\n"
                "Subject: quickstart\r\n\r\nhello from quickstart\r\n")
            assert refused == {}
        # the metrics listener quickstart wrote counts it
        url = f"http://127.0.0.1:{ports['metrics']}/metrics"
        page = urllib.request.urlopen(url, timeout=10).read().decode()
        assert 'godwit_messages_total{result="accepted"} 1\n' in page, page
        md = base / "data" / "mail" / DOMAIN / "admin" / "Maildir" / "new"
        files = wait_for(lambda: md.is_dir() and list(md.iterdir()), 20,
                         what="the message in the admin's Maildir")
        msg = files[0].read_bytes()
        assert b"hello from quickstart" in msg
        # signed with the DKIM keys quickstart made
        assert msg.count(b"DKIM-Signature:") == 2
        # and POP3 over TLS gives it back with the same password
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        p = poplib.POP3_SSL("127.0.0.1", ports[995], context=ctx, timeout=30)
        try:
            p.user(ADMIN_NORM)
            assert p.pass_(pw).startswith(b"+OK")
            assert p.stat()[0] == 1
        finally:
            p.quit()
        # and IMAP logs in with it, over TLS on 993 and after STARTTLS on
        # 143 (where LOGIN is disabled before it)
        m = imaplib.IMAP4_SSL("127.0.0.1", ports[993], ssl_context=ctx,
                              timeout=30)
        try:
            assert m.login(ADMIN_NORM, pw)[0] == "OK"
        finally:
            m.logout()
        m = imaplib.IMAP4("127.0.0.1", ports[143], timeout=30)
        try:
            assert "LOGINDISABLED" in m.capabilities
            assert "STARTTLS" in m.capabilities
            m.starttls(ssl_context=ctx)
            assert m.login(ADMIN_NORM, pw)[0] == "OK"
        finally:
            m.logout()
        # a reload signals the workers, which run as another user: the
        # parent needs CAP_KILL for it (and for the stop below)
        g.reload()
        wait_for(lambda: "event=reloaded" in g.log_text(), 20,
                 what="the reload")
    finally:
        problems = _finish(g)
    assert not problems, "\n".join(problems)
    assert g.exit_codes == [0]


def test_dns_zone(setup, tmp_path):
    base, _ = setup
    cfg = str(base / "etc" / "godwit.yaml")
    p = subprocess.run([GODWIT_BIN, "-c", cfg, "dns"], capture_output=True,
                       text=True, timeout=60, env=daemon_env())
    assert p.returncode == 0, p.stderr
    zone = p.stdout
    one = subprocess.run([GODWIT_BIN, "-c", cfg, "dns", DOMAIN.upper() + "."],
                         capture_output=True, text=True, timeout=60,
                         env=daemon_env())
    assert one.returncode == 0 and one.stdout == zone
    # a zone nsd loads: the records after an SOA and NS of the test's
    z = tmp_path / "zone"
    z.write_text(f"$ORIGIN {DOMAIN}.\n$TTL 3600\n"
                 f"@ IN SOA ns1.{DOMAIN}. hostmaster.{DOMAIN}. 1 3600 600 "
                 f"86400 300\n@ IN NS ns1.{DOMAIN}.\nns1 IN A 192.0.2.53\n"
                 + zone)
    c = subprocess.run(["nsd-checkzone", DOMAIN, str(z)],
                       capture_output=True, text=True, timeout=60)
    assert c.returncode == 0, c.stdout + c.stderr + zone
    assert f"zone {DOMAIN} is ok" in c.stdout
    # the RSA key's record unsplit (one string over 255 octets) is
    # refused: the splitting matters, and the check can fail
    bad = tmp_path / "bad"
    assert '" "' in zone
    bad.write_text(z.read_text().replace('" "', "", 1))
    c = subprocess.run(["nsd-checkzone", DOMAIN, str(bad)],
                       capture_output=True, text=True, timeout=60)
    assert c.returncode != 0

    from dnslib import QTYPE, RR
    rrs = RR.fromZone(zone)
    by = {}
    for rr in rrs:
        txt = b"".join(rr.rdata.data).decode() if QTYPE[rr.rtype] == "TXT" \
            else str(rr.rdata)
        by.setdefault((str(rr.rname), QTYPE[rr.rtype]), []).append(txt)
        assert rr.ttl == 3600
        if QTYPE[rr.rtype] == "TXT":
            assert all(len(s) <= 255 for s in rr.rdata.data)
    assert by[(f"{DOMAIN}.", "MX")] == [f"10 {HOST}."]
    assert by[(f"{DOMAIN}.", "TXT")] == ["v=spf1 mx -all"]
    assert by[(f"_dmarc.{DOMAIN}.", "TXT")] == [
        f"v=DMARC1; p=quarantine; rua=mailto:postmaster@{DOMAIN}"]
    assert by[(f"_smtp._tls.{DOMAIN}.", "TXT")] == [
        f"v=TLSRPTv1; rua=mailto:postmaster@{DOMAIN}"]
    # every key `godwit dkim list` knows, with its record
    lst = subprocess.run([GODWIT_BIN, "-c", cfg, "dkim", "list"],
                         capture_output=True, text=True, timeout=60,
                         env=daemon_env(), check=True).stdout.splitlines()
    assert len(lst) == 2
    for line in lst:
        dom, sel = line.split()[:2]
        rec = by[(f"{sel}._domainkey.{dom}.", "TXT")]
        assert len(rec) == 1 and rec[0].startswith("v=DKIM1; k=")
        assert "".join(re.findall(r'"([^"]*)"', line)) == rec[0]
    # the comments: MTA-STS not yet, PTR advice for the wildcard listeners
    assert "; MTA-STS" in zone and "not implemented" in zone
    assert "set the PTR of each public address of this machine" in zone


def test_dns_every_domain(setup):
    """Without DOMAIN: one block per local domain; a domain without keys
    gets the hint to make them instead of DKIM records."""
    base, _ = setup
    cfg = str(base / "etc" / "godwit.yaml")

    def godwit(*args):
        return subprocess.run([GODWIT_BIN, "-c", cfg, *args],
                              capture_output=True, text=True, timeout=60,
                              env=daemon_env())

    assert godwit("domain", "add", "example.org").returncode == 0
    try:
        p = godwit("dns")
        assert p.returncode == 0, p.stderr
        blocks = p.stdout.split("\n\n")
        assert len(blocks) == 2
        org = next(b for b in blocks if "example.org. 3600 IN MX" in b)
        assert "; DKIM: no key for example.org yet: make one with " \
               "godwit dkim keygen example.org" in org
        assert "_domainkey" not in org
        assert f"example.org. 3600 IN MX 10 {HOST}." in org
    finally:
        assert godwit("domain", "del", "example.org").returncode == 0
    p = godwit("dns", "not a domain")
    assert p.returncode == 1 and p.stdout == ""
    p = godwit("dns", "a.example", "b.example")
    assert p.returncode == 2 and p.stderr.startswith("usage: godwit dns")


def test_refusals(godwit_root):
    base = godwit_base(godwit_root, "quickstart_bad")
    dirs = ["--config-dir", str(base / "etc"), "--data-dir",
            str(base / "data")]
    for args, code, what in [
            ([HOST, *dirs], 2, "usage"),
            (["localhost", ADMIN, *dirs], 1, "fully qualified"),
            ([HOST, "nobody", *dirs], 1, "not an address"),
            ([HOST, ADMIN, "--config-dir", "relative", *dirs[2:]], 1,
             "absolute"),
            ([HOST, ADMIN, "--bogus", *dirs], 2, "usage")]:
        p = subprocess.run([GODWIT_BIN, "quickstart", *args],
                           capture_output=True, text=True, timeout=60,
                           env=daemon_env(), cwd=base)
        assert p.returncode == code, (args, p.stdout, p.stderr)
        assert what in p.stderr, (args, p.stderr)
        assert p.stdout == ""
    assert list(base.iterdir()) == []
