"""
`godwit firewall` (src/ops/firewall.c): the listeners' rules in the four
formats, each checked by the real tool that would load it: `nft -c -f`,
`iptables-restore --test` / `ip6tables-restore --test`, `ufw --dry-run`
(in a mount namespace over a copy of /etc/ufw) and `firewall-offline-cmd`
on a configuration directory of the test's own. Nothing is applied to the
host's packet filter.
"""

import re
import shutil
import subprocess

import pytest

LISTENERS = [
    {"name": "mx", "protocol": "smtp",
     "listen": ["0.0.0.0:25", "[::]:25", "127.0.0.1:2525"],
     "deny": ["192.0.2.0/24", "2001:db8:bad::/48"], "greet_pause": 0},
    {"name": "submission", "protocol": "submission",
     "listen": ["198.51.100.7:587", "[2001:db8::7]:587", "[::1]:587"],
     "allow": ["203.0.113.0/24", "2001:db8:1::/48"]},
    {"name": "pop3", "protocol": "pop3",
     "listen": ["198.51.100.7:110", "[2001:db8::7]:110"],
     "allow": ["203.0.113.0/24"]},
    {"name": "local", "protocol": "pop3s",
     "listen": ["127.0.0.1:995", "[::1]:995"]},
    # IMAP: STARTTLS on every address, implicit TLS on the public ones
    # minus a denied network, and a loopback-only one
    {"name": "imap", "protocol": "imap",
     "listen": ["0.0.0.0:143", "[::]:143"]},
    {"name": "imaps", "protocol": "imaps",
     "listen": ["198.51.100.7:993", "[2001:db8::7]:993"],
     "deny": ["198.51.100.0/28"]},
    {"name": "imap-local", "protocol": "imap",
     "listen": ["127.0.0.1:2143", "[::1]:2143"], "plaintext_auth": True},
]


def need(tool, probe=None, input=None):
    """Skips when tool is missing, or when probe (a command that must
    succeed where the tool can check rules: it needs root and netlink)
    fails."""
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (scripts/install-deps.sh)")
    if probe is not None:
        p = subprocess.run(probe, input=input, capture_output=True,
                           text=True, timeout=30)
        if p.returncode != 0:
            pytest.skip(f"{' '.join(probe)} cannot run here: {p.stderr}")


@pytest.fixture(scope="module")
def fw(request, godwit_root, cert):
    """A configuration (never started) with public, wildcard and loopback
    listeners, allow and deny lists, and a connection rate."""
    from conftest import Godwit, godwit_base
    crt, key = cert
    g = Godwit(godwit_base(godwit_root, "test_firewall"), {
        "listeners": LISTENERS,
        "limits": {"connection_rate": "30/60s"},
        "tls": {"certificates": [{"cert": str(crt), "key": str(key)}]},
    })
    return g


def firewall(g, *args, code=0):
    p = g.run("firewall", *args)
    assert p.returncode == code, p.stderr
    if code == 0:
        assert p.stderr == ""
    return p.stdout


def test_nftables_accepted_by_nft(fw, tmp_path):
    need("nft", ["nft", "-c", "-f", "-"], "table inet godwit_probe\n")
    out = firewall(fw)
    assert out == firewall(fw, "--format", "nftables")
    f = tmp_path / "godwit.nft"
    f.write_text(out)
    p = subprocess.run(["nft", "-c", "-f", str(f)], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0, p.stderr + out
    rules = [l.strip() for l in out.splitlines()
             if "dport" in l and not l.strip().startswith("#")]
    # deny first, then the per-source rate limit (MX: 2 x 30/60s), accept
    assert rules[:3] == [
        "meta nfproto ipv4 tcp dport 25 ip saddr { 192.0.2.0/24 } drop",
        "meta nfproto ipv4 tcp dport 25 ct state new add @mx_rate4 "
        "{ ip saddr limit rate over 60/minute burst 60 packets } drop",
        "meta nfproto ipv4 tcp dport 25 accept"]
    assert ("meta nfproto ipv6 tcp dport 25 ip6 saddr "
            "{ 2001:db8:bad::/48 } drop") in rules
    # allow: only those sources; a family the list lacks stays closed
    assert ("ip daddr 198.51.100.7 tcp dport 587 ip saddr != "
            "{ 203.0.113.0/24 } drop") in rules
    assert ("ip6 daddr 2001:db8::7 tcp dport 587 ip6 saddr != "
            "{ 2001:db8:1::/48 } drop") in rules
    assert "ip6 daddr 2001:db8::7 tcp dport 110 drop" in rules
    assert "ip6 daddr 2001:db8::7 tcp dport 110 accept" not in rules
    # IMAP: 143 open to both families, 993 on its addresses after its
    # deny list, and as POP3 no rate rule (the daemon's own brakes: auth
    # delays and bans); the loopback one needs none
    assert "meta nfproto ipv4 tcp dport 143 accept" in rules
    assert "meta nfproto ipv6 tcp dport 143 accept" in rules
    assert rules.index("ip daddr 198.51.100.7 tcp dport 993 ip saddr "
                       "{ 198.51.100.0/28 } drop") < \
        rules.index("ip daddr 198.51.100.7 tcp dport 993 accept")
    assert "ip6 daddr 2001:db8::7 tcp dport 993 accept" in rules
    assert not any("dport 993" in r and "ip6 saddr" in r for r in rules)
    assert "# imaps (imaps) 198.51.100.7:993" in out
    # only the MX is rate-limited; loopback listeners need no rule
    assert all("limit" not in r for r in rules if "dport 25 " not in r)
    assert not any(re.search(r"dport (2525|995|2143)\b", r) for r in rules)
    # nft must be able to say no: a broken rule is refused
    f.write_text(out.replace("dport 25 accept", "dport 25 acept"))
    p = subprocess.run(["nft", "-c", "-f", str(f)], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode != 0


@pytest.mark.parametrize("family", ["-4", "-6"])
def test_iptables_restore_accepts(fw, family):
    tool = "iptables-restore" if family == "-4" else "ip6tables-restore"
    need(tool, [tool, "--test"], "*filter\nCOMMIT\n")
    out = firewall(fw, "--format", "iptables", family)
    p = subprocess.run([tool, "--test", "--noflush"], input=out,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr + out
    rules = [l for l in out.splitlines() if l.startswith("-A GODWIT")]
    if family == "-4":
        deny, allow, addr = "192.0.2.0/24", "203.0.113.0/24", "198.51.100.7/32"
        assert "2001:db8" not in out
    else:
        deny, allow, addr = "2001:db8:bad::/48", "2001:db8:1::/48", \
            "2001:db8::7/128"
        assert "203.0.113" not in out
    assert rules[0].endswith(f"--dport 25 -m comment --comment \"godwit mx\" "
                             f"-s {deny} -j DROP")
    assert "--hashlimit-mode srcip" in rules[1]
    assert "--hashlimit-above 60/minute" in rules[1]
    assert rules[1].endswith("-j DROP") and "--dport 25 " in rules[1]
    assert rules[2].endswith("--dport 25 -m comment --comment \"godwit mx\" "
                             "-j ACCEPT")
    sub = [r for r in rules if "--dport 587" in r]
    assert sub == [
        f"-A GODWIT -d {addr} -p tcp --dport 587 -m comment --comment "
        f"\"godwit submission\" -s {allow} -j ACCEPT",
        f"-A GODWIT -d {addr} -p tcp --dport 587 -m comment --comment "
        f"\"godwit submission\" -j DROP"]
    assert not any("--dport 2525" in r or "--dport 995" in r or
                   "--dport 2143" in r for r in rules)
    imap = [r for r in rules if "--dport 143" in r or "--dport 993" in r]
    want = ["-A GODWIT -p tcp --dport 143 -m comment --comment "
            "\"godwit imap\" -j ACCEPT"]
    if family == "-4":
        want += [f"-A GODWIT -d {addr} -p tcp --dport 993 -m comment "
                 "--comment \"godwit imaps\" -s 198.51.100.0/28 -j DROP"]
    want += [f"-A GODWIT -d {addr} -p tcp --dport 993 -m comment "
             "--comment \"godwit imaps\" -j ACCEPT"]
    assert imap == want, imap
    # both parts by default, split where ip6tables-restore's begins
    both = firewall(fw, "--format", "iptables")
    assert "\n# ip6tables-restore\n" in both
    assert out in both


def test_ufw_dry_run(fw, tmp_path):
    need("ufw")
    need("unshare", ["unshare", "-m", "sh", "-c",
                     "mount --bind /etc/ufw /etc/ufw"])
    out = firewall(fw, "--format", "ufw")
    lines = [l for l in out.splitlines() if l.startswith("ufw ")]
    assert lines[0] == ("ufw prepend deny proto tcp from 192.0.2.0/24 to "
                        "0.0.0.0/0 port 25 comment 'godwit mx'")
    assert lines[1] == ("ufw limit proto tcp from 0.0.0.0/0 to 0.0.0.0/0 "
                        "port 25 comment 'godwit mx'")
    assert ("ufw allow proto tcp from 2001:db8:1::/48 to 2001:db8::7 port "
            "587 comment 'godwit submission'") in lines
    assert not any("port 110" in l and "2001:db8::7" in l for l in lines)
    assert not any("limit" in l for l in lines if "port 25 " not in l)
    assert ("ufw allow proto tcp from 0.0.0.0/0 to 0.0.0.0/0 port 143 "
            "comment 'godwit imap'") in lines
    assert ("ufw allow proto tcp from ::/0 to ::/0 port 143 "
            "comment 'godwit imap'") in lines
    assert ("ufw prepend deny proto tcp from 198.51.100.0/28 to "
            "198.51.100.7 port 993 comment 'godwit imaps'") in lines
    assert ("ufw allow proto tcp from ::/0 to 2001:db8::7 port 993 "
            "comment 'godwit imaps'") in lines
    assert not any("port 2143" in l for l in lines)
    # every command through ufw --dry-run, over a copy of /etc/ufw in a
    # mount namespace of its own
    script = tmp_path / "ufw.sh"
    script.write_text(out.replace("\nufw ", "\nufw --dry-run "))
    copy = tmp_path / "etc-ufw"
    shutil.copytree("/etc/ufw", copy)
    p = subprocess.run(
        ["unshare", "-m", "sh", "-c",
         f"mount --bind {copy} /etc/ufw && sh -e {script}"],
        capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "-s 192.0.2.0/24 -j DROP" in p.stdout
    assert "--dport 25 -m conntrack --ctstate NEW -m recent --set" in p.stdout
    assert ("-A ufw-user-input -p tcp -d 198.51.100.7 --dport 587 "
            "-s 203.0.113.0/24 -j ACCEPT") in p.stdout


def test_firewalld_offline(fw, tmp_path):
    need("firewall-offline-cmd")
    out = firewall(fw, "--format", "firewalld")
    lines = [l for l in out.splitlines() if l.startswith("firewall-cmd")]
    assert lines[-1] == "firewall-cmd --reload"
    assert lines[0] == (
        "firewall-cmd --permanent --add-rich-rule='rule priority=\"-10\" "
        "family=\"ipv4\" source address=\"192.0.2.0/24\" port port=\"25\" "
        "protocol=\"tcp\" drop'")
    assert lines[1].endswith("port port=\"25\" protocol=\"tcp\" accept "
                             "limit value=\"60/m\"'")
    # the commands against a configuration directory of the test's own
    cfg = tmp_path / "firewalld"
    cfg.mkdir()
    shutil.copy("/etc/firewalld/firewalld.conf", cfg)
    for l in lines[:-1]:
        rule = re.fullmatch(r"firewall-cmd --permanent --add-rich-rule='(.*)'",
                            l).group(1)
        p = subprocess.run(
            ["firewall-offline-cmd", "--system-config", str(cfg),
             "--add-rich-rule", rule],
            capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, l + "\n" + p.stdout + p.stderr
    zone = (cfg / "zones" / "public.xml").read_text()
    assert zone.count("<rule ") == len(lines) - 1
    assert '<limit value="60/m"/>' in zone
    assert '<destination address="2001:db8::7"/>' in zone
    assert 'port="143"' in zone and 'port="993"' in zone
    assert not any("limit" in l for l in lines
                   if 'port="143"' in l or 'port="993"' in l)
    assert 'port="110"' in zone and "2001:db8::7\"/>\n    <port port=\"110\"" \
        not in zone


def test_usage(fw):
    firewall(fw, "--format", "pf", code=2)
    firewall(fw, "--rate", "0", code=2)
    out = firewall(fw, "--rate", "10", "--burst", "5")
    assert "limit rate over 10/minute burst 5 packets" in out
