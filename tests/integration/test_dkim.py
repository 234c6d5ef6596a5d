"""
DKIM (RFC 6376, RFC 8463, RFC 8301) with real peers: godwit's signatures
(`godwit dkim sign`, RSA and Ed25519) checked by dkimpy and by OpenDKIM;
mail signed by dkimpy and by OpenDKIM checked by godwit; the RFC 6376 and
RFC 8463 example messages; the key-record rules (t=y, t=s, revoked keys,
k= and h= mismatches, x= expiry, rsa-sha1, short keys, l=). Keys are
served by a real unbound on loopback (test_dns.start_unbound).

godwit verifies through `godwit check --json` (the server's checks, with
dns.resolver pointed at the unbound). What that command does not show
(key bits, t=y, another "now" for x=, other chunkings of the body) comes
from build/asan/tools/dkim_verify, a small C driver over msgauth/dkim.h
that prints one line per signature ("RESULT d= s= a= bits= testing= b=
reason=") and streams the body one octet at a time unless told otherwise.
"""
import base64
import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from conftest import GODWIT_BIN, free_port
from test_dns import start_unbound, stop_unbound

DRIVER = os.environ.get(
    "DKIM_VERIFY_BIN", str(Path(GODWIT_BIN).parent / "tools" / "dkim_verify"))
PY = "/usr/bin/python3"

MESSAGE = (
    "From: Alice Example <alice@example.org>\n"
    "To: Bob <bob@example.net>\n"
    "Cc: carol@example.net\n"
    "Reply-To: alice@example.org\n"
    "Subject: Lunch  on\n"
    "\tThursday?\n"
    "Date: Sun, 06 Dec 2026 10:00:00 +0000\n"
    "Message-ID: <lunch.1@example.org>\n"
    "MIME-Version: 1.0\n"
    "Content-Type: text/plain; charset=us-ascii\n"
    "List-Id: <friends.example.org>\n"
    "X-Not-Signed: yes\n"
    "\n"
    "Hi Bob,  \n"
    "\n"
    "\tshall we meet at noon?\n"
    "\n"
    "Alice\n"
    "\n"
    "\n"
)

# RFC 8463 Appendix A.2 (keys) and A.3 (the signed message), typed in.
RFC8463_ED = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
RFC8463_RSA = (
    "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5"
    "V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/"
    "BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2k"
    "ryOTIKT+l/K4w3QIDAQAB")
RFC8463_MESSAGE = """\
DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;
 d=football.example.com; i=@football.example.com;
 q=dns/txt; s=brisbane; t=1528637909; h=from : to :
 subject : date : message-id : from : subject : date;
 bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;
 b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus
 Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==
DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;
 d=football.example.com; i=@football.example.com;
 q=dns/txt; s=test; t=1528637909; h=from : to : subject :
 date : message-id : from : subject : date;
 bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;
 b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3
 DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz
 dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=
From: Joe SixPack <joe@football.example.com>
To: Suzie Q <suzie@shopping.example.net>
Subject: Is dinner ready?
Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)
Message-ID: <20030712040037.46341.5F8J@football.example.com>

Hi.

We lost the game.  Are you hungry yet?

Joe.
"""

# RFC 6376 Appendix A.3 (the key) and A.2 (the signed message) as
# published (continuation lines indented 6 spaces, b='s own 8), with the
# body's two spaces in "game.  Are" (see erratum 3192).
RFC6376_KEY = (
    "v=DKIM1; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDwIRP/UC3SBsEmGqZ9ZJW3"
    "/DkMoGeLnQg1fWn7/zYtIxN2SnFCjxOCKG9v3b4jYfcTNh5ijSsq631uBItLa7od+v/RtdC"
    "2UzJ1lWT947qR+Rcac2gbto/NMqJ0fzfVjH4OuKhitdY9tf6mcwGjaNBcWToIMmPSPDdQP"
    "NUYckcQ2QIDAQAB")
RFC6376_MESSAGE = """\
DKIM-Signature: v=1; a=rsa-sha256; s=brisbane; d=example.com;
      c=simple/simple; q=dns/txt; i=joe@football.example.com;
      h=Received : From : To : Subject : Date : Message-ID;
      bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;
      b=AuUoFEfDxTDkHlLXSZEpZj79LICEps6eda7W3deTVFOk4yAUoqOB
        4nujc7YopdG5dWLSdNg6xNAZpOPr+kHxt1IrE+NahM6L/LbvaHut
        KVdkLLkpVaVVQPzeRDI009SO2Il5Lu7rDNH6mZckBdrIx0orEtZV
        4bmp/YzhwvcubU4=;
Received: from client1.football.example.com  [192.0.2.1]
      by submitserver.example.com with SUBMISSION;
      Fri, 11 Jul 2003 21:01:54 -0700 (PDT)
From: Joe SixPack <joe@football.example.com>
To: Suzie Q <suzie@shopping.example.net>
Subject: Is dinner ready?
Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)
Message-ID: <20030712040037.46341.5F8J@football.example.com>

Hi.

We lost the game.  Are you hungry yet?

Joe.
"""


# ---- helpers --------------------------------------------------------------

def run(args, input=None, check=True):
    p = subprocess.run(args, input=input, capture_output=True, timeout=60)
    if check and p.returncode != 0:
        raise AssertionError(f"{args}: exit {p.returncode}\n"
                             f"{p.stderr.decode(errors='replace')}")
    return p


def txt_records(out):
    """{name: record} from `S._domainkey.D. IN TXT "..." "..."` lines."""
    recs = {}
    for line in out.splitlines():
        m = re.search(r'(\S+\._domainkey\.\S+)\. IN TXT ((?:"[^"]*" ?)+)$',
                      line)
        assert m, f"not a TXT record line: {line!r}"
        strings = re.findall(r'"([^"]*)"', m.group(2))
        assert all(len(s) <= 255 for s in strings)
        recs[m.group(1)] = "".join(strings)
    return recs


def zone_line(name, record):
    """An unbound local-data line, the record cut into 255-octet strings."""
    parts = [record[i:i + 255] for i in range(0, len(record), 255)] or [""]
    return f"{name}. TXT " + " ".join(f'"{p}"' for p in parts)


def crlf(msg):
    if isinstance(msg, str):
        msg = msg.encode()
    return msg.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


class Verdict:
    """One signature's result: from a driver line, or from an entry of
    `godwit check --json`'s "dkim" list (fields d, s, a only)."""
    def __init__(self, line=None, entry=None):
        if entry is not None:
            self.result, self.reason = entry["result"], entry["reason"]
            self.fields = {"d": entry["domain"], "s": entry["selector"],
                           "a": entry["algorithm"]}
            self.line = json.dumps(entry)
            return
        self.line = line
        self.result, rest = line.split(" ", 1)
        self.reason = rest.split(" reason=", 1)[1]
        self.fields = dict(f.split("=", 1) for f in
                           rest.split(" reason=", 1)[0].split(" "))

    def __repr__(self):
        return self.line


# ---- the lab: keys from every signer, one unbound serving them ------------

class Lab:
    def __init__(self, base):
        self.base = base
        self.cfg = base / "godwit.yaml"
        self.data = base / "data"
        self.port = free_port()
        # user "": the layout stays root's (the test directory is 0700)
        self.cfg.write_text(
            f"hostname: mx.example.org\ndata_dir: {self.data}\nuser: \"\"\n"
            f"dns:\n  resolver: [\"127.0.0.1@{self.port}\"]\n"
            f"checks:\n  timeout: 3s\n")
        self.records = {}
        self.keys = {}

    def godwit(self, *args, input=None, check=True):
        return run([GODWIT_BIN, "-c", str(self.cfg), *args], input=input,
                   check=check)

    def verify(self, msg):
        """godwit's verdicts, one per signature, from `godwit check`; the
        same as the driver's."""
        p = self.godwit("check", "--json", "--ip", "127.0.0.1", "--helo",
                        "mx.example.org", "--mail-from", "", input=crlf(msg))
        j = json.loads(p.stdout)
        got = [Verdict(entry=e) for e in j["dkim"]]
        ar = j["authentication_results"]
        if not got:
            assert "\tdkim=none" in ar, ar
        for v in got:
            assert f"dkim={v.result}" in ar and \
                f"header.d={v.fields['d']}" in ar, ar
        streamed = self.verify_stream(msg)
        assert [(v.result, v.reason) for v in got] == \
            [(v.result, v.reason) for v in streamed], (got, streamed)
        return got

    def verify_stream(self, msg, now=None, chunk=None):
        """The driver's verdicts (with bits= and testing=)."""
        args = [DRIVER, f"127.0.0.1@{self.port}"]
        if now is not None or chunk is not None:
            args.append(str(now if now is not None else int(time.time())))
        if chunk is not None:
            args.append(str(chunk))
        out = run(args, input=crlf(msg)).stdout.decode()
        if out == "none\n":
            return []
        return [Verdict(l) for l in out.splitlines()]

    def dkimpy_key(self, name, ktype):
        run(["dknewkey", "--ktype", ktype, str(self.base / name)])
        dns = (self.base / f"{name}.dns").read_text().strip()
        self.keys[name] = (self.base / f"{name}.key").read_bytes()
        return re.search(r"p=([A-Za-z0-9+/=]+)", dns).group(1)

    def dkimpy_sign(self, msg, selector, domain, key, **kw):
        import dkim
        m = crlf(msg)
        return dkim.sign(m, selector.encode(), domain.encode(),
                         self.keys[key], **kw) + m

    def opendkim_conf(self, name, lines):
        path = self.base / f"{name}.conf"
        path.write_text("\n".join(lines + ["Syslog no", ""]))
        return path

    def opendkim_sign(self, msg, domain, selector, keyfile, alg, extra=()):
        # OpenDKIM signs only mail whose From is in Domain
        msg = msg.replace("alice@example.org>", f"alice@{domain}>")
        conf = self.opendkim_conf(f"od-sign-{selector}", [
            "Mode s", f"Domain {domain}", f"Selector {selector}",
            f"KeyFile {keyfile}", "Canonicalization relaxed/relaxed",
            f"SignatureAlgorithm {alg}", "RequireSafeKeys no", *extra])
        return self._opendkim(conf, msg, "DKIM-Signature")

    def opendkim_verify(self, msg):
        """The Authentication-Results value OpenDKIM adds."""
        conf = self.opendkim_conf("od-verify", [
            "Mode v", f"ResolverConfiguration {self.base / 'ub-client.conf'}",
            "AuthservID test.opendkim"])
        return self._opendkim(conf, msg, "Authentication-Results")

    def _opendkim(self, conf, msg, field):
        path = self.base / "od-msg.eml"
        path.write_bytes(crlf(msg))
        p = run(["opendkim", "-x", str(conf), "-vv", "-t", str(path)])
        out = p.stdout.decode() + p.stderr.decode()
        m = re.search(r"### INSHEADER: idx=\d+ hname='" + field +
                      r"' hvalue='(.*?)'\n", out, re.S)
        assert m, f"opendkim added no {field}:\n{out}"
        if field == "DKIM-Signature":
            return (f"DKIM-Signature: {m.group(1)}\n").encode() + \
                crlf(msg).replace(b"\r\n", b"\n")
        return m.group(1)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if not Path(DRIVER).exists():
        pytest.fail(f"{DRIVER} is missing: make build/asan/tools/dkim_verify")
    lab = Lab(tmp_path_factory.mktemp("dkim"))
    # godwit's own keys (RSA-2048 and Ed25519)
    out = lab.godwit("dkim", "keygen", "example.org", "--selector", "s1")
    lab.records.update(txt_records(out.stdout.decode()))
    # dkimpy's keys, and records for the key-record rules on keys.test
    p_rsa = lab.dkimpy_key("py-rsa", "rsa")
    p_ed = lab.dkimpy_key("py-ed", "ed25519")
    lab.records.update({
        "pyrsa._domainkey.dkimpy.test": f"v=DKIM1; k=rsa; p={p_rsa}",
        "pyed._domainkey.dkimpy.test": f"v=DKIM1; k=ed25519; p={p_ed}",
        "plain._domainkey.keys.test": f"v=DKIM1; k=rsa; p={p_rsa}",
        "ty._domainkey.keys.test": f"v=DKIM1; k=rsa; t=y; p={p_rsa}",
        "ts._domainkey.keys.test": f"v=DKIM1; k=rsa; t=s; p={p_rsa}",
        "revoked._domainkey.keys.test": "v=DKIM1; k=rsa; p=",
        "kmis._domainkey.keys.test": f"v=DKIM1; k=ed25519; p={p_rsa}",
        "hsha1._domainkey.keys.test": f"v=DKIM1; k=rsa; h=sha1; p={p_rsa}",
        "notemail._domainkey.keys.test": f"v=DKIM1; s=tlsrpt; p={p_rsa}",
        "junk._domainkey.keys.test": "v=DKIM1; k=rsa; p=!!not base64!!",
        "brisbane._domainkey.football.example.com": RFC8463_ED,
        "test._domainkey.football.example.com": RFC8463_RSA,
        "brisbane._domainkey.example.com": RFC6376_KEY,
    })
    # a 512-bit RSA key (RFC 8301: never valid)
    short = lab.base / "short.pem"
    run(["openssl", "genrsa", "-traditional", "-out", str(short), "512"])
    lab.keys["short"] = short.read_bytes()
    der = run(["openssl", "rsa", "-in", str(short), "-pubout", "-outform",
               "DER"]).stdout
    lab.records["short._domainkey.keys.test"] = \
        "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()
    # OpenDKIM's RSA key (opendkim-genkey) and an Ed25519 one
    run(["opendkim-genkey", "-b", "2048", "-d", "opendkim.test", "-s",
         "od", "-D", str(lab.base)])
    zone = (lab.base / "od.txt").read_text()
    lab.records["od._domainkey.opendkim.test"] = "".join(
        re.findall(r'"([^"]*)"', zone))
    out = lab.godwit("dkim", "keygen", "opendkim.test", "--selector", "ode",
                     "--algorithm", "ed25519")
    lab.records.update(txt_records(out.stdout.decode()))

    lines = [zone_line(n, r) for n, r in lab.records.items()]
    lab.unbound = start_unbound(lab.base / "unbound", lab.port, lines,
                                zones={"refused.test.": "always_refuse"})
    (lab.base / "ub-client.conf").write_text(
        "server:\n  do-not-query-localhost: no\n"
        "  module-config: \"iterator\"\n"
        f"forward-zone:\n  name: \".\"\n  forward-addr: 127.0.0.1@{lab.port}\n")
    yield lab
    stop_unbound(lab.unbound)


def results(verdicts):
    return [v.result for v in verdicts]


# ---- the commands -----------------------------------------------------------

def test_keygen_writes_root_only_keys_and_prints_records(lab):
    """Both algorithms by default, selectors gYYYYMM-rsa/-ed25519; files
    0600 in 0700 directories; the record printed in zone-file form."""
    out = lab.godwit("dkim", "keygen", "Fresh.Example.").stdout.decode()
    month = time.strftime("g%Y%m", time.gmtime())
    recs = txt_records(out)
    assert list(recs) == [f"{month}-rsa._domainkey.fresh.example",
                          f"{month}-ed25519._domainkey.fresh.example"]
    assert recs[f"{month}-rsa._domainkey.fresh.example"].startswith(
        "v=DKIM1; k=rsa; p=MIIBIjAN")       # a 2048-bit SPKI
    assert re.fullmatch(r"v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=",
                        recs[f"{month}-ed25519._domainkey.fresh.example"])
    # the RSA record is longer than one string: split in the same line
    assert out.splitlines()[0].count('" "') >= 1
    d = lab.data / "dkim" / "fresh.example"
    assert (d.stat().st_mode & 0o777, d.parent.stat().st_mode & 0o777) == \
        (0o700, 0o700)
    for sel in (f"{month}-rsa", f"{month}-ed25519"):
        st = (d / f"{sel}.key").stat()
        assert (st.st_mode & 0o777, st.st_uid) == (0o600, 0)
        assert (d / f"{sel}.key").read_text().startswith(
            "-----BEGIN PRIVATE KEY-----\n")     # PKCS#8
    # --selector with both: S-rsa and S-ed25519; --algorithm: exactly S
    out = lab.godwit("dkim", "keygen", "fresh.example", "--selector",
                     "two").stdout.decode()
    assert list(txt_records(out)) == ["two-rsa._domainkey.fresh.example",
                                      "two-ed25519._domainkey.fresh.example"]
    out = lab.godwit("dkim", "keygen", "fresh.example", "--algorithm",
                     "ed25519", "--selector", "one").stdout.decode()
    assert list(txt_records(out)) == ["one._domainkey.fresh.example"]


def test_keygen_refuses_to_overwrite(lab):
    before = (lab.data / "dkim/example.org/s1-rsa.key").read_bytes()
    p = lab.godwit("dkim", "keygen", "example.org", "--selector", "s1-rsa",
                   "--algorithm", "rsa", check=False)
    assert p.returncode == 1
    assert b"exists: not overwritten" in p.stderr
    assert p.stdout == b""
    assert (lab.data / "dkim/example.org/s1-rsa.key").read_bytes() == before
    # both or none: the Ed25519 key exists, so no RSA key is made either
    lab.godwit("dkim", "keygen", "half.test", "--selector", "h-ed25519",
               "--algorithm", "ed25519")
    p = lab.godwit("dkim", "keygen", "half.test", "--selector", "h",
                   check=False)
    assert p.returncode == 1 and b"h-ed25519.key exists" in p.stderr
    assert sorted(f.name for f in (lab.data / "dkim/half.test").iterdir()) \
        == ["h-ed25519.key"]


def test_usage_errors_exit_2(lab):
    for args in (["dkim"], ["dkim", "keygen"], ["dkim", "frob"],
                 ["dkim", "keygen", "a.test", "--algorithm", "dsa"],
                 ["dkim", "keygen", "a.test", "--selector"],
                 ["dkim", "sign", "--domain"], ["dkim", "list", "x"]):
        p = lab.godwit(*args, check=False)
        assert p.returncode == 2, args
        assert b"usage: godwit dkim" in p.stderr


def test_list_shows_every_key_with_its_record(lab):
    out = lab.godwit("dkim", "list").stdout.decode().splitlines()
    rows = {tuple(l.split(" ")[:4]): l for l in out}
    assert ("example.org", "s1-rsa", "rsa", "2048") in rows
    assert ("example.org", "s1-ed25519", "ed25519", "256") in rows
    line = rows[("example.org", "s1-rsa", "rsa", "2048")]
    rec = txt_records(line.split(" ", 4)[4])
    assert rec == {"s1-rsa._domainkey.example.org":
                   lab.records["s1-rsa._domainkey.example.org"]}


def test_sign_without_a_key_fails(lab):
    p = lab.godwit("dkim", "sign", input=MESSAGE.replace(
        "alice@example.org>", "alice@nokeys.test>").encode(), check=False)
    assert p.returncode == 1
    assert b"no DKIM key for nokeys.test" in p.stderr
    assert p.stdout == b""
    p = lab.godwit("dkim", "sign", input=b"Subject: no from\n\nx\n",
                   check=False)
    assert p.returncode == 1
    assert b"no From address" in p.stderr


# ---- (a) godwit's signatures, checked by dkimpy and OpenDKIM -------------

def godwit_signed(lab, msg=MESSAGE, *args):
    return lab.godwit("dkim", "sign", *args, input=msg.encode()).stdout


def test_godwit_signature_shape(lab):
    signed = godwit_signed(lab).decode()
    head = signed[:signed.index("From: Alice")]
    fields = re.split(r"\n(?=DKIM-Signature:)", head.rstrip("\n"))
    assert len(fields) == 2
    assert "a=rsa-sha256;" in fields[0] and "a=ed25519-sha256;" in fields[1]
    for f in fields:
        assert all(len(l) <= 78 for l in f.split("\n")), f
        flat = re.sub(r"\s+", "", f)
        assert "c=relaxed/relaxed;" in flat and "d=example.org;" in flat
        h = re.search(r"h=([^;]*);", flat).group(1).split(":")
        assert h == ["from", "reply-to", "subject", "date", "to", "cc",
                     "message-id", "mime-version", "content-type",
                     "list-id", "from"]
    assert signed.endswith(MESSAGE)


def test_godwit_signatures_verify_with_dkimpy(lab):
    import dkim
    signed = crlf(godwit_signed(lab))
    d = dkim.DKIM(signed)

    def dnsfunc(name, timeout=5):
        return lab.records.get(name.decode().rstrip(".")).encode()

    def ok(d, idx):
        try:
            return d.verify(idx=idx, dnsfunc=dnsfunc)
        except dkim.DKIMException:
            return False
    assert ok(d, 0) is True
    assert ok(d, 1) is True
    # and a changed body does not
    d = dkim.DKIM(signed.replace(b"noon", b"nine"))
    assert ok(d, 0) is False
    assert ok(d, 1) is False


def test_godwit_signatures_verify_with_opendkim(lab):
    signed = godwit_signed(lab)
    ar = lab.opendkim_verify(signed)
    assert len(re.findall(r"dkim=pass", ar)) == 2, ar
    assert "header.d=example.org" in ar
    ar = lab.opendkim_verify(signed.replace(b"Lunch", b"Dinner"))
    assert "dkim=pass" not in ar and "dkim=fail" in ar, ar


def test_godwit_signatures_verify_with_godwit(lab):
    v = lab.verify(godwit_signed(lab))
    assert results(v) == ["pass", "pass"], v
    assert [x.fields["a"] for x in v] == ["rsa-sha256", "ed25519-sha256"]
    v = lab.verify_stream(godwit_signed(lab))
    assert [x.fields["bits"] for x in v] == ["2048", "256"]
    assert [x.fields["s"] for x in v] == ["s1-rsa", "s1-ed25519"]


def test_sign_with_domain_of_a_subdomain_sender(lab):
    """--domain picks the keys; a From in a subdomain uses the parent's
    keys (relaxed alignment)."""
    msg = MESSAGE.replace("alice@example.org>", "alice@news.example.org>")
    v = lab.verify(godwit_signed(lab, msg))
    assert results(v) == ["pass", "pass"]
    assert {x.fields["d"] for x in v} == {"example.org"}
    v = lab.verify(godwit_signed(lab, MESSAGE, "--domain", "opendkim.test"))
    assert results(v) == ["pass"] and v[0].fields["s"] == "ode"


# ---- (b) dkimpy and OpenDKIM signatures, checked by godwit -----------------

@pytest.mark.parametrize("canon", [(b"simple", b"simple"),
                                   (b"relaxed", b"relaxed"),
                                   (b"relaxed", b"simple"),
                                   (b"simple", b"relaxed")])
def test_dkimpy_signatures_verify(lab, canon):
    rsa = lab.dkimpy_sign(MESSAGE, "pyrsa", "dkimpy.test", "py-rsa",
                          canonicalize=canon)
    both = lab.dkimpy_sign(rsa, "pyed", "dkimpy.test", "py-ed",
                           canonicalize=canon,
                           signature_algorithm=b"ed25519-sha256")
    v = lab.verify(both)
    assert results(v) == ["pass", "pass"], v
    assert [x.fields["a"] for x in v] == ["ed25519-sha256", "rsa-sha256"]
    # the body arriving in other chunkings gives the same verdicts
    assert results(lab.verify_stream(both, chunk=7)) == ["pass", "pass"]
    assert results(lab.verify_stream(both, chunk=100000)) == ["pass", "pass"]


def test_opendkim_signatures_verify(lab):
    rsa = lab.opendkim_sign(MESSAGE, "opendkim.test", "od",
                            lab.base / "od.private", "rsa-sha256")
    v = lab.verify(rsa)
    assert results(v) == ["pass"], v
    ed = lab.opendkim_sign(MESSAGE, "opendkim.test", "ode",
                           lab.data / "dkim/opendkim.test/ode.key",
                           "ed25519-sha256")
    v = lab.verify(ed)
    assert results(v) == ["pass"] and v[0].fields["a"] == "ed25519-sha256"


# ---- (c) changes fail -------------------------------------------------------

def test_body_and_header_changes_fail(lab):
    signed = godwit_signed(lab)
    v = lab.verify(signed.replace(b"noon", b"nine"))
    assert results(v) == ["fail", "fail"]
    assert {x.reason for x in v} == {"body hash mismatch"}
    v = lab.verify(signed.replace(b"Subject: Lunch", b"Subject: Brunch"))
    assert results(v) == ["fail", "fail"]
    assert {x.reason for x in v} == {"signature did not verify"}
    # an added From (over-signing): the header hash changes
    v = lab.verify(signed.replace(b"From: Alice",
                                  b"From: eve@evil.test\nFrom: Alice"))
    assert results(v) == ["fail", "fail"]
    # an unsigned field may be added; relaxed folding changes are fine
    v = lab.verify(signed.replace(b"X-Not-Signed: yes",
                                  b"X-Not-Signed: no\nX-Added: 1")
                   .replace(b"Subject: Lunch  on", b"Subject:   Lunch on "))
    assert results(v) == ["pass", "pass"]
    # simple/simple: the same white-space change breaks it
    s = lab.dkimpy_sign(MESSAGE, "pyrsa", "dkimpy.test", "py-rsa",
                        canonicalize=(b"simple", b"simple"))
    assert results(lab.verify(s.replace(b"Lunch  on", b"Lunch on"))) == \
        ["fail"]
    assert results(lab.verify(s.replace(b"noon?", b"noon? "))) == ["fail"]


# ---- (d) the RFC examples ----------------------------------------------------

def test_rfc8463_example_verifies(lab):
    v = lab.verify(RFC8463_MESSAGE)
    assert results(v) == ["pass", "pass"], v
    assert [x.fields["a"] for x in v] == ["ed25519-sha256", "rsa-sha256"]
    v = lab.verify_stream(RFC8463_MESSAGE)
    assert [x.fields["bits"] for x in v] == ["256", "1024"]
    v = lab.verify(RFC8463_MESSAGE.replace("dinner", "lunch"))
    assert results(v) == ["fail", "fail"]


def test_rfc6376_example_and_its_erratum(lab):
    """As published, RFC 6376's A.2 does not verify: its body says "game.
    Are" with two spaces, but bh= is the hash of the body with one
    (erratum 3192; with c=simple the spaces count). With that corrected
    it verifies: the header signature was right all along."""
    v = lab.verify(RFC6376_MESSAGE)
    assert [(x.result, x.reason) for x in v] == [
        ("fail", "body hash mismatch")]
    fixed = RFC6376_MESSAGE.replace("game.  Are", "game. Are")
    v = lab.verify_stream(fixed)
    assert results(v) == ["pass"], v
    assert v[0].fields["d"] == "example.com" and v[0].fields["bits"] == "1024"
    assert results(lab.verify(fixed)) == ["pass"]
    # and a header change still breaks it (c=simple: even white space)
    v = lab.verify(fixed.replace("Subject: Is", "Subject:  Is"))
    assert [(x.result, x.reason) for x in v] == [
        ("fail", "signature did not verify")]


# ---- (e) key records and policy ---------------------------------------------

def keys_signed(lab, selector, **kw):
    return lab.dkimpy_sign(MESSAGE, selector, "keys.test", "py-rsa", **kw)


def test_key_record_rules(lab):
    assert results(lab.verify(keys_signed(lab, "ty"))) == ["pass"]
    v = lab.verify_stream(keys_signed(lab, "ty"))
    assert results(v) == ["pass"] and v[0].fields["testing"] == "1"
    v = lab.verify_stream(keys_signed(lab, "plain"))
    assert v[0].fields["testing"] == "0"
    # t=s: i= must be d= itself, not a subdomain
    assert results(lab.verify(keys_signed(lab, "ts"))) == ["pass"]
    v = lab.verify(keys_signed(lab, "ts", identity=b"joe@sub.keys.test"))
    assert results(v) == ["permerror"] and "t=s" in v[0].reason
    assert results(lab.verify(keys_signed(
        lab, "plain", identity=b"joe@sub.keys.test"))) == ["pass"]
    cases = {
        "revoked": ("fail", "key revoked"),
        "kmis": ("permerror", "key type (k=) does not match a="),
        "hsha1": ("permerror", "key h= does not allow sha256"),
        "notemail": ("permerror", "key not for email (s=)"),
        "junk": ("permerror", "bad p= in key record"),
        "missing": ("permerror", "no key"),
    }
    for sel, (res, reason) in cases.items():
        v = lab.verify(keys_signed(lab, sel))
        assert [(x.result, x.reason) for x in v] == [(res, reason)], sel
    v = lab.verify(lab.dkimpy_sign(MESSAGE, "x", "refused.test", "py-rsa"))
    assert results(v) == ["temperror"], v
    assert v[0].reason.startswith("key lookup failed")


def test_rsa_sha1_is_policy(lab):
    s = keys_signed(lab, "plain", signature_algorithm=b"rsa-sha1")
    v = lab.verify(s)
    assert [(x.result, x.reason) for x in v] == [
        ("policy", "rsa-sha1 is not accepted (RFC 8301); signature valid")]
    v = lab.verify(s.replace(b"Lunch", b"Dinner"))
    assert v[0].result == "policy"
    assert v[0].reason.endswith("signature did not verify")


def test_short_rsa_key_is_policy(lab):
    s = lab.dkimpy_sign(MESSAGE, "short", "keys.test", "short")
    assert results(lab.verify(s)) == ["policy"]
    v = lab.verify_stream(s)
    assert [(x.result, x.reason, x.fields["bits"]) for x in v] == [
        ("policy", "RSA key of 512 bits is too short (RFC 8301); "
         "signature valid", "512")]


def test_l_tag_leaving_content_unsigned_is_policy(lab):
    s = keys_signed(lab, "plain", length=True)
    assert re.search(rb"l=\d+", s)
    assert results(lab.verify(s)) == ["pass"]
    v = lab.verify(s + b"Click here: http://evil.test/\r\n")
    assert [(x.result, x.reason) for x in v] == [
        ("policy", "l= leaves the body partly unsigned; signature valid")]


def test_x_expiry(lab):
    s = lab.opendkim_sign(MESSAGE, "opendkim.test", "od",
                          lab.base / "od.private", "rsa-sha256",
                          extra=["SignatureTTL 600"])
    t = int(re.search(rb"t=(\d+)", s).group(1))
    x = int(re.search(rb"x=(\d+)", s).group(1))
    assert x == t + 600
    assert results(lab.verify_stream(s, now=t + 10)) == ["pass"]
    v = lab.verify_stream(s, now=x + 1)
    assert [(r.result, r.reason) for r in v] == [("fail", "signature expired")]


def test_malformed_and_too_many_signatures(lab):
    s = keys_signed(lab, "plain")
    bad = b"DKIM-Signature: v=1; a=rsa-sha256; d=keys.test; s=plain; h=to;" \
        b" bh=AAAA; b=AAAA\r\n"
    v = lab.verify(bad + s)
    assert [(x.result, x.reason) for x in v] == [
        ("neutral", "missing or bad h= (it must name From)"), ("pass", "")]
    assert v[0].fields["d"] == "keys.test"
    many = s
    for _ in range(8):
        many = lab.dkimpy_sign(many, "plain", "keys.test", "py-rsa")
    v = lab.verify(many)
    assert results(v) == ["pass"] * 8 + ["permerror"], v
    assert v[8].reason == "too many signatures"


def test_no_signature_is_none(lab):
    assert [v.line for v in lab.verify(MESSAGE)] == []   # and dkim=none
    out = run([DRIVER, f"127.0.0.1@{lab.port}"], input=crlf(MESSAGE))
    assert out.stdout == b"none\n"
