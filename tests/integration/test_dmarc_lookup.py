"""
DMARC policy discovery (RFC 7489 6.6.3, src/msgauth/dmarc.c) against a
real unbound serving _dmarc records: the record at the From domain, the
fallback to the organizational domain found through libpsl and Debian's
Public Suffix List (a.b.example.co.uk -> example.co.uk), several records,
other TXT records ignored, an invalid record without fallback, p=none for
a record with only rua=, NXDOMAIN, temporary failures at either step,
CNAMEs and split TXT strings.

The lookups run through the real code, in the event loop, over libunbound:
build/asan/tests/test_dmarc_lookup (a cmocka binary, skipped in `make
unit` without a name server) is given the server and the From domains and
prints one JSON object per domain with what it found. The verdict
(relaxed and strict alignment of SPF and of DKIM signatures made by
dkimpy, sp= against p=, temperror) is then checked through the real
command, `godwit check --json`, against the same server.
"""

import json
import os
import subprocess
from pathlib import Path

import dkim
import pytest

from conftest import (GODWIT_BIN, REPO, SANITIZER_MARKERS, Godwit, free_port,
                      rsa_dkim_key)
from test_dns import start_unbound, stop_unbound

DRIVER = Path(GODWIT_BIN).resolve().parent / "tests" / "test_dmarc_lookup"

RECORDS = [
    # the organizational domain's policy; a.b.example.co.uk has none
    '_dmarc.example.co.uk. TXT "v=DMARC1; p=reject; sp=quarantine; '
    'adkim=s; pct=50; rua=mailto:d@example.co.uk"',
    # a subdomain with a record of its own
    '_dmarc.own.example.co.uk. TXT "v=DMARC1; p=none"',
    # two DMARC records: none
    '_dmarc.multi.test. TXT "v=DMARC1; p=reject"',
    '_dmarc.multi.test. TXT "v=DMARC1; p=none"',
    # other TXT records beside the DMARC one are ignored
    '_dmarc.mixed.test. TXT "v=spf1 -all"',
    '_dmarc.mixed.test. TXT "hello"',
    '_dmarc.mixed.test. TXT "v=DMARC1; p=quarantine; aspf=s"',
    # only non-DMARC records at the subdomain: on to the org domain
    '_dmarc.sub.fallback.test. TXT "not dmarc"',
    '_dmarc.fallback.test. TXT "v=DMARC1; p=reject"',
    # an invalid DMARC record: permerror, no fallback
    '_dmarc.bad.fallback.test. TXT "v=DMARC1; p=block"',
    # no p=, a valid rua=: p=none (RFC 7489 6.6.3)
    '_dmarc.ruaonly.test. TXT "v=DMARC1; rua=mailto:x@ruaonly.test"',
    # a record in several character-strings is joined
    '_dmarc.split.test. TXT "v=DMARC1; " "p=reject; " "pct=20"',
    # a CNAME is followed
    "_dmarc.cname.test. CNAME _dmarc.example.co.uk.",
    # the zone exists, nothing for _dmarc
    'nothing.test. TXT "v=DMARC1; p=reject"',
    # the second step fails temporarily
    'www.tf.test. A 192.0.2.1',
    # SPF for `godwit check`
    'bounce.example.co.uk. TXT "v=spf1 ip4:127.0.0.0/8 -all"',
    'mixed.test. TXT "v=spf1 ip4:127.0.0.0/8 -all"',
    'mail.mixed.test. TXT "v=spf1 ip4:127.0.0.0/8 -all"',
    'other.test. TXT "v=spf1 ip4:127.0.0.0/8 -all"',
    # every query of spftf.test is refused but its DMARC record
    '_dmarc.spftf.test. TXT "v=DMARC1; p=reject"',
]
ZONES = {
    "refused.test.": "always_refuse",
    "_dmarc.tf.test.": "always_refuse",
    "spftf.test.": "always_refuse",
    "_dmarc.spftf.test.": "static",
}

# From domain -> the fields the lookup must give (those not named must be
# empty or "no")
CASES = {
    "example.co.uk": dict(
        status="pass", policy_domain="example.co.uk",
        org_domain="example.co.uk", at_org="no", p="reject",
        sp="quarantine", pct="50", adkim="s", aspf="r",
        rua="mailto:d@example.co.uk"),
    "a.b.example.co.uk": dict(
        status="pass", policy_domain="example.co.uk",
        org_domain="example.co.uk", at_org="yes", p="reject",
        sp="quarantine", pct="50", adkim="s", aspf="r",
        rua="mailto:d@example.co.uk"),
    "A.B.Example.CO.UK.": dict(
        from_="a.b.example.co.uk", status="pass",
        policy_domain="example.co.uk", org_domain="example.co.uk",
        at_org="yes", p="reject", sp="quarantine", pct="50", adkim="s",
        aspf="r", rua="mailto:d@example.co.uk"),
    "own.example.co.uk": dict(
        status="pass", policy_domain="own.example.co.uk",
        org_domain="example.co.uk", at_org="no", p="none", pct="100",
        adkim="r", aspf="r"),
    "multi.test": dict(
        status="none", policy_domain="multi.test", org_domain="multi.test",
        reason="several DMARC records"),
    "mixed.test": dict(
        status="pass", policy_domain="mixed.test", org_domain="mixed.test",
        at_org="no", p="quarantine", pct="100", adkim="r", aspf="s"),
    "sub.fallback.test": dict(
        status="pass", policy_domain="fallback.test",
        org_domain="fallback.test", at_org="yes", p="reject", pct="100",
        adkim="r", aspf="r"),
    "bad.fallback.test": dict(
        status="permerror", policy_domain="bad.fallback.test",
        org_domain="fallback.test",
        reason="invalid DMARC record: p= is not none, quarantine or "
               "reject"),
    "ruaonly.test": dict(
        status="pass", policy_domain="ruaonly.test",
        org_domain="ruaonly.test", at_org="no", p="none", pct="100",
        adkim="r", aspf="r", rua="mailto:x@ruaonly.test"),
    "split.test": dict(
        status="pass", policy_domain="split.test", org_domain="split.test",
        at_org="no", p="reject", pct="20", adkim="r", aspf="r"),
    "cname.test": dict(
        status="pass", policy_domain="cname.test", org_domain="cname.test",
        at_org="no", p="reject", sp="quarantine", pct="50", adkim="s",
        aspf="r", rua="mailto:d@example.co.uk"),
    "x.y.nothing.test": dict(
        status="none", policy_domain="nothing.test",
        org_domain="nothing.test", at_org="yes", reason="no DMARC record"),
    "nothing.test": dict(
        status="none", policy_domain="nothing.test",
        org_domain="nothing.test", reason="no DMARC record"),
    "www.refused.test": dict(
        status="temperror", policy_domain="www.refused.test",
        org_domain="refused.test"),
    "www.tf.test": dict(
        status="temperror", policy_domain="tf.test", org_domain="tf.test",
        at_org="yes"),
    # names the resolver refuses: an empty label, a U-label (not
    # converted to an A-label)
    "a..b.test": dict(
        status="permerror", policy_domain="a..b.test",
        org_domain="b.test", reason="invalid From domain"),
    "b\u00fccher.test": dict(
        status="permerror", policy_domain="b\u00fccher.test",
        org_domain="b\u00fccher.test", reason="invalid From domain"),
    ".": dict(
        from_="", status="permerror", reason="invalid From domain"),
}

FIELDS = ("from", "status", "policy_domain", "org_domain", "at_org", "p",
          "sp", "pct", "adkim", "aspf", "rua", "reason")


# DKIM keys of these domains (selector s1), one key for all
KEY_DOMAINS = ("example.co.uk", "a.b.example.co.uk")


@pytest.fixture(scope="module")
def rsa_key(tmp_path_factory):
    """A 1024-bit RSA key (PEM bytes) and its DKIM p= value."""
    return rsa_dkim_key(tmp_path_factory.mktemp("key") / "k.pem")


@pytest.fixture(scope="module")
def dns(tmp_path_factory, rsa_key):
    p = rsa_key[1]
    keys = []
    for d in KEY_DOMAINS:
        strings = " ".join(f'"{p[i:i + 200]}"' for i in range(0, len(p), 200))
        keys.append(f's1._domainkey.{d}. TXT "v=DKIM1; k=rsa; p=" {strings}')
    port = free_port()
    proc = start_unbound(tmp_path_factory.mktemp("unbound"), port,
                         RECORDS + keys, zones=ZONES)
    yield f"127.0.0.1@{port}"
    stop_unbound(proc)


def driver():
    if not DRIVER.exists():
        subprocess.run(["make", "-C", str(REPO), "--no-print-directory",
                        str(DRIVER.relative_to(REPO))], check=True,
                       stdout=subprocess.DEVNULL)
    return str(DRIVER)


def run_driver(fwd, domains):
    env = dict(os.environ, GODWIT_TEST_DNS_FORWARDER=fwd,
               GODWIT_TEST_DMARC_DOMAINS=" ".join(domains))
    p = subprocess.run([driver()], env=env, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "SKIPPED" not in p.stdout, p.stdout
    assert "ERROR" not in p.stderr, p.stderr
    return [json.loads(line) for line in p.stdout.splitlines()
            if line.startswith("{")]


def test_policy_discovery(dns):
    """Every case at once, on one resolver, in the event loop."""
    domains = list(CASES)
    got = run_driver(dns, domains)
    assert [g["from"] for g in got] == [
        CASES[d].get("from_", d.lower().rstrip(".")) for d in domains]
    problems = []
    for d, g in zip(domains, got):
        want = {k: "" for k in FIELDS}
        want["at_org"] = "no"
        want["pct"] = "0"
        want["from"] = CASES[d].get("from_", d.lower().rstrip("."))
        want.update({k.rstrip("_"): v for k, v in CASES[d].items()})
        if "reason" not in CASES[d] and want["status"] != "temperror":
            want["reason"] = ""
        for k in FIELDS:
            if k == "reason" and want["status"] == "temperror":
                # the resolver's words; it names the name looked up
                if f"_dmarc.{want['policy_domain']}" not in g[k]:
                    problems.append(f"{d}: reason {g[k]!r}")
                continue
            if g[k] != want[k]:
                problems.append(f"{d}: {k}={g[k]!r}, want {want[k]!r}")
    assert not problems, "\n".join(problems)


def test_one_domain_at_a_time(dns):
    """A lookup alone gives what it gives among others (no state shared
    between lookups on one resolver)."""
    for d in ("a.b.example.co.uk", "multi.test", "www.tf.test"):
        (g,) = run_driver(dns, [d])
        assert g["status"] == CASES[d]["status"]
        assert g["policy_domain"] == CASES[d]["policy_domain"]


def test_cancel_and_unreachable(dns):
    """The driver's own checks: cancelled lookups never call back; a
    server that does not answer gives temperror within the timeout."""
    env = dict(os.environ, GODWIT_TEST_DNS_FORWARDER=dns)
    env.pop("GODWIT_TEST_DMARC_DOMAINS", None)
    p = subprocess.run([driver()], env=env, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "[       OK ] test_cancel" in p.stdout, p.stdout
    assert "[       OK ] test_unreachable" in p.stdout, p.stdout


# `godwit check`: (MAIL FROM, From domain, the dmarc object's fields)
CHECKS = [
    # relaxed aspf: the MAIL FROM domain below the org domain aligns;
    # the policy found at the org domain: sp= for a subdomain
    ("x@bounce.example.co.uk", "a.b.example.co.uk",
     dict(result="pass", policy="quarantine", disposition="none",
          policy_domain="example.co.uk", spf_aligned=True)),
    ("x@bounce.example.co.uk", "example.co.uk",
     dict(result="pass", policy="reject", disposition="none",
          policy_domain="example.co.uk", spf_aligned=True)),
    # SPF passes for another organizational domain: fail, sp=quarantine
    ("x@other.test", "a.b.example.co.uk",
     dict(result="fail", policy="quarantine", policy_domain="example.co.uk",
          spf_aligned=False)),
    # strict aspf: a subdomain does not align, the domain itself does
    ("x@mail.mixed.test", "mixed.test",
     dict(result="fail", policy="quarantine", disposition="quarantine",
          policy_domain="mixed.test", spf_aligned=False)),
    ("x@mixed.test", "mixed.test",
     dict(result="pass", policy="quarantine", disposition="none",
          policy_domain="mixed.test", spf_aligned=True)),
    # SPF of an aligned domain fails temporarily under p=reject: temperror
    # with what a fail would get (the server answers 451)
    ("x@spftf.test", "spftf.test",
     dict(result="temperror", policy="reject", disposition="reject",
          policy_domain="spftf.test", spf_aligned=False)),
    # the policy lookup fails temporarily at the org domain
    ("x@other.test", "www.tf.test",
     dict(result="temperror", policy="", disposition="none")),
    # no policy
    ("x@other.test", "x.y.nothing.test",
     dict(result="none", policy="", disposition="none")),
]


@pytest.fixture(scope="module")
def checker(dns, tmp_path_factory):
    """A configuration whose resolver is the test's unbound (no daemon
    runs: `godwit check` reads the configuration)."""
    g = Godwit(tmp_path_factory.mktemp("check") / "g", {
        "dns": {"resolver": [dns]},
        "checks": {"timeout": "3s"},
    })
    g.write_config()
    return g


@pytest.mark.parametrize("mail_from,from_domain,want", CHECKS,
                         ids=[f"{c[0]}-{c[1]}" for c in CHECKS])
def test_check_verdict(checker, mail_from, from_domain, want):
    """The verdict `godwit check --json` reports, SPF alone aligning."""
    msg = (f"From: <someone@{from_domain}>\r\nTo: <a@example.test>\r\n"
           f"Subject: dmarc\r\n\r\nbody\r\n")
    p = checker.run("check", "--ip", "127.0.0.1", "--helo",
                    "client.example.net", "--mail-from", mail_from,
                    "--json", input=msg, check=True)
    assert not any(m in p.stderr for m in SANITIZER_MARKERS), p.stderr
    d = json.loads(p.stdout)["dmarc"]
    assert d["from_domain"] == from_domain, d
    got = {k: d[k] for k in want}
    assert got == want, d


@pytest.mark.parametrize("d,aligned", [("a.b.example.co.uk", True),
                                       ("example.co.uk", False)])
def test_check_dkim_strict(checker, rsa_key, d, aligned):
    """adkim=s at example.co.uk: for From a.b.example.co.uk only a
    signature with exactly that d= aligns; SPF passes for another domain,
    so the verdict is DKIM's (sp=quarantine when it fails)."""
    msg = ("From: <someone@a.b.example.co.uk>\r\nTo: <a@example.test>\r\n"
           "Subject: dmarc dkim\r\n\r\nbody\r\n").encode()
    msg = dkim.sign(msg, b"s1", d.encode(), rsa_key[0],
                    include_headers=[b"from", b"to", b"subject"]) + msg
    p = checker.run("check", "--ip", "127.0.0.1", "--helo",
                    "client.example.net", "--mail-from", "x@other.test",
                    "--json", input=msg.decode(), check=True)
    assert not any(m in p.stderr for m in SANITIZER_MARKERS), p.stderr
    j = json.loads(p.stdout)
    assert [(s["result"], s["domain"]) for s in j["dkim"]] == \
        [("pass", d)], j["dkim"]
    got = {k: j["dmarc"][k] for k in ("result", "policy", "dkim_aligned",
                                      "spf_aligned")}
    assert got == {"result": "pass" if aligned else "fail",
                   "policy": "quarantine", "dkim_aligned": aligned,
                   "spf_aligned": False}, j["dmarc"]
