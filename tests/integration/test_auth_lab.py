"""
SPF, DKIM and DMARC end to end in the network lab, against the Debian
peers that do the same job for Postfix: OpenDKIM and OpenDMARC as milters
and postfix-policyd-spf-python as a policy service (auth_peers.py).

Hosts (netlab.py; each test makes the ones it needs) and the lab DNS:

  a   Postfix (postfix_peer.py) + OpenDKIM signing for a.example with an
      RSA-2048 key; a.example publishes SPF (a's addresses, -all), the
      DKIM key (selector "lab") and DMARC p=reject
  b   godwit, MX of b.example (bob), checks on, the lab DNS as resolver
  x   another host: not in a.example's SPF, signs nothing; x.example
      publishes SPF for x (so its own mail passes SPF, unaligned with a)
  g   godwit for g.example (alice), submission on 587; keys made with
      `godwit dkim keygen` (RSA and Ed25519), published with SPF and
      DMARC p=reject
  c   Postfix + OpenDKIM (verifying) + OpenDMARC + policyd-spf, MX of
      c.example (carol)

The domains are under example., not test.: OpenDKIM's libunbound answers
names under test. itself with NXDOMAIN (see auth_peers.py).

  a -> b   mail Postfix signed reaches godwit; its Authentication-Results
           says spf=pass, dkim=pass (header.d=a.example) and dmarc=pass
  x -> b   a forged From: of the p=reject domain a.example, sent from x,
           unsigned: 550 5.7.1 at the end of DATA; a genuine message of
           x's own after it on the same connection is accepted and
           delivered, the forged one is not
  g -> c   alice submits to godwit; the queue runner delivers to c (MX
           from the lab DNS) signed with both keys; C's OpenDKIM says
           dkim=pass for each signature and OpenDMARC dmarc=pass

Every peer process (Postfix master, milters, godwit) is stopped at the end
of the test, also when it fails (fixtures; the lab ends whatever is left
in its namespaces). Every wait is bounded.
"""

import base64
import json
import os
import re
import shutil
import smtplib
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from conftest import PASSWORD, client_tls_context, wait_for
from smtpclient import crlf

sys.path.insert(0, os.path.dirname(__file__))
import auth_peers  # noqa: E402
import netlab  # noqa: E402
import postfix_peer  # noqa: E402

WAIT = 30  # seconds for any one delivery
DKIM_PORT, DMARC_PORT = 8891, 8893
RETRY = {"retry_min": "1s", "retry_max": "2s", "lifetime": "2m"}


def _postfix_available():
    for prog in ("postfix", "postconf", "postqueue", "saslpasswd2", "openssl"):
        if shutil.which(prog) is None and not os.path.exists(f"/usr/sbin/{prog}"):
            return False, f"{prog} is not installed"
    return True, ""


@pytest.fixture
def lab(tmp_path):
    for ok, why in (netlab.netns_available(), netlab.unbound_available(),
                    _postfix_available(), auth_peers.available()):
        if not ok:
            pytest.skip(f"auth lab unavailable: {why}")
    with netlab.Lab(workdir=tmp_path / "lab") as l:
        yield l


@pytest.fixture
def peers():
    """Collects what a test starts (Postfix peers, milters) and stops all
    of it at the end, pass or fail; a 0755 directory under /tmp for their
    files (the milters' users must reach them)."""
    class Peers:
        def __init__(self):
            self.dir = Path(tempfile.mkdtemp(prefix="godwit-authpeers-",
                                             dir="/tmp"))
            os.chmod(self.dir, 0o755)
            self.items = []

        def add(self, item):
            self.items.append(item)
            return item
    p = Peers()
    try:
        yield p
    finally:
        # shown by pytest only when the test failed
        for item in p.items:
            if isinstance(item, postfix_peer.PostfixPeer):
                print(f"--- Postfix in {item.ns}, mail log:\n"
                      f"{item.log_text()[-4000:]}", file=sys.stderr)
            else:
                print(f"--- {item.name} output:\n{item.output()[-2000:]}",
                      file=sys.stderr)
        for item in reversed(p.items):
            try:
                if isinstance(item, postfix_peer.PostfixPeer):
                    item.cleanup()
                else:
                    item.stop()
            except Exception as e:  # noqa: BLE001 - stop the others too
                print(f"stopping {item}: {e}", file=sys.stderr)
        shutil.rmtree(p.dir, ignore_errors=True)


# ------------------------------------------------------------ helpers ---


def rsa_key(path):
    """An RSA-2048 private key (PEM) at path; returns the public key as
    the base64 of its DER (a DKIM record's p=)."""
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                    "rsa_keygen_bits:2048", "-out", str(path)], check=True,
                   capture_output=True, timeout=60)
    der = subprocess.run(["openssl", "pkey", "-in", str(path), "-pubout",
                          "-outform", "DER"], check=True, capture_output=True,
                         timeout=30).stdout
    return base64.b64encode(der).decode()


def host_records(domain, host, mx=True):
    out = [f"mx.{domain}. A {host.ip4}", f"mx.{domain}. AAAA {host.ip6}"]
    if mx:
        out.append(f"{domain}. MX 10 mx.{domain}.")
    return out


def spf_for(domain, *hosts):
    mech = " ".join(f"ip4:{h.ip4} ip6:{h.ip6}" for h in hosts)
    return netlab.txt_record(f"{domain}.", f"v=spf1 {mech} -all")


def header_fields(raw, name):
    """The unfolded values of every header field called name, in order."""
    head = raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].decode(
        "utf-8", "replace")
    out = []
    for m in re.finditer(r"^([!-9;-~]+):[ \t]*(.*(?:\n[ \t].*)*)", head, re.M):
        if m.group(1).lower() == name.lower():
            out.append(re.sub(r"\s*\n\s*", " ", m.group(2)).strip())
    return out


def _strip_comments(s):
    out, depth, quoted, esc = [], 0, False, False
    for ch in s:
        if esc:
            esc = False
            if depth == 0:
                out.append(ch)
            continue
        if ch == "\\":
            esc = True
            if depth == 0:
                out.append(ch)
            continue
        if quoted:
            quoted = ch != '"'
            out.append(ch)
        elif ch == '"' and depth == 0:
            quoted = True
            out.append(ch)
        elif ch == "(":
            depth += 1
        elif ch == ")" and depth > 0:
            depth -= 1
        elif depth == 0:
            out.append(ch)
    return "".join(out)


def parse_ar(value):
    """An Authentication-Results value (RFC 8601) as (authserv-id,
    [(method, result, {property: value})]); comments dropped, quoted
    values unquoted. Enough for the headers these peers and godwit
    write; a value that does not parse fails the test."""
    parts = [p.strip() for p in
             re.split(r';(?=(?:[^"]*"[^"]*")*[^"]*$)', _strip_comments(value))]
    authserv = parts[0].split()[0] if parts[0] else ""
    results = []
    for p in parts[1:]:
        if not p or p == "none":
            continue
        tokens = re.findall(r'[^\s=]+=(?:"(?:[^"\\]|\\.)*"|[^\s"]*)|\S+', p)
        m = re.fullmatch(r"([a-z0-9-]+)(?:/\d+)?=([a-z]+)", tokens[0], re.I)
        assert m, f"unparsable result {p!r} in {value!r}"
        props = {}
        for t in tokens[1:]:
            k, _, v = t.partition("=")
            props[k.lower()] = v[1:-1].replace('\\"', '"') \
                if v.startswith('"') else v
        results.append((m.group(1).lower(), m.group(2).lower(), props))
    return authserv, results


def results_of(raw, authserv):
    """Every (method, result, props) in the Authentication-Results fields
    with that authserv-id; also returns how many such fields there were."""
    mine = []
    fields = 0
    for v in header_fields(raw, "Authentication-Results"):
        a, res = parse_ar(v)
        if a.lower() == authserv.lower():
            fields += 1
            mine += res
    return fields, mine


def godwit_config(host, hostname, dns, cert=None, submission=False):
    o = {
        "hostname": hostname,
        "dns": {"resolver": [dns.ip4] if dns else ["127.0.0.1@9"]},
        "queue": dict(RETRY),
        "outbound": {"timeouts": {"connect": "5s"}},
        "listeners": [
            {"name": "mx", "protocol": "smtp",
             "listen": ["0.0.0.0:25", "[::]:25"], "greet_pause": 0},
        ],
    }
    if submission:
        crt, key = cert
        o["tls"] = {"certificates": [{"cert": str(crt), "key": str(key)}]}
        o["listeners"].append(
            {"name": "submission", "protocol": "submission",
             "listen": ["0.0.0.0:587", "[::]:587"]})
    return o


def inject(host_ip, port, sender, to, data):
    s = smtplib.SMTP(host_ip, port, local_hostname="client.example",
                     timeout=30)
    try:
        refused = s.sendmail(sender, [to], data)
    finally:
        s.quit()
    assert not refused, refused


# Runs inside a lab host: one SMTP session to godwit, the replies to the
# end of DATA of each message printed as JSON.
SESSION_SCRIPT = textwrap.dedent("""\
    import json, smtplib, sys
    server, helo, msgs = json.loads(sys.argv[1])
    s = smtplib.SMTP(server, 25, local_hostname=helo, timeout=30)
    out = []
    for sender, rcpt, data in msgs:
        s.ehlo_or_helo_if_needed()
        s.rset()
        code, msg = s.mail(sender)
        assert code == 250, (code, msg)
        code, msg = s.rcpt(rcpt)
        assert code == 250, (code, msg)
        code, msg = s.data(data.encode())
        out.append([code, msg.decode("utf-8", "replace")])
    s.quit()
    print(json.dumps(out))
""")


def session_from(host, server_ip, helo, msgs):
    msgs = [[f, t, d.decode() if isinstance(d, bytes) else d]
            for f, t, d in msgs]
    p = host.run(["/usr/bin/python3", "-c", SESSION_SCRIPT,
                  json.dumps([server_ip, helo, msgs])],
                 capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def message(frm, to, marker, extra=""):
    return crlf(f"From: {frm}\nTo: <{to}>\nSubject: auth lab {marker}\n"
                f"Message-ID: <{marker}@lab.example>\n"
                "Date: Sun, 06 Dec 2026 12:00:00 +0000\n"
                f"{extra}\n{marker}\nSecond line.\n")


# --------------------------------------------- Postfix+OpenDKIM -> godwit ---


def test_postfix_signed_mail_passes_spf_dkim_dmarc_at_godwit(
        lab, peers, make_godwit, uniq):
    a, b = lab.host("a"), lab.host("b")
    pub = rsa_key(peers.dir / "a.pem")
    dns = lab.dns(
        host_records("a.example", a) + host_records("b.example", b) + [
            spf_for("a.example", a),
            netlab.txt_record("lab._domainkey.a.example.",
                              f"v=DKIM1; k=rsa; p={pub}"),
            netlab.txt_record("_dmarc.a.example.", "v=DMARC1; p=reject"),
        ])
    gb = make_godwit(godwit_config(b, "mx.b.example", dns), users=("bob",),
                     aliases={}, netns=b, domain="b.example")
    signer = peers.add(auth_peers.OpenDKIM(
        peers.dir / "opendkim-a", DKIM_PORT, a.exec_prefix(),
        authserv_id="opendkim.a.example", mode="s",
        keys=[("a.example", "lab", peers.dir / "a.pem")],
        nameservers=[dns.ip4],
        # the test injects from the root namespace's bridge address
        internal_hosts=[lab.gw4, "127.0.0.1"]))
    signer.start()
    pf = peers.add(postfix_peer.PostfixPeer(
        a, hostname="mx.a.example", users=("postmaster@a.example",),
        submission=False,
        main_cf=auth_peers.postfix_main_cf([signer], policy=False)))
    pf.start()

    inject(a.ip4, 25, "alice@a.example", "bob@b.example",
           message("Alice <alice@a.example>", "bob@b.example", uniq))
    found = wait_for(lambda: gb.find_messages(uniq), WAIT,
                     what="Postfix's message in bob's Maildir")
    raw = found[0].read_bytes()

    # Postfix's OpenDKIM did sign it (so dkim=pass is godwit's verdict
    # on a real signature, not on nothing)
    sigs = header_fields(raw, "DKIM-Signature")
    assert len(sigs) == 1 and re.search(r"\bd=a\.example;", sigs[0]) and \
        re.search(r"\bs=lab;", sigs[0]), sigs
    n, res = results_of(raw, "mx.b.example")
    assert n == 1, header_fields(raw, "Authentication-Results")
    by = {}
    for method, result, props in res:
        by.setdefault(method, []).append((result, props))
    assert [(r, p.get("smtp.mailfrom")) for r, p in by.get("spf", [])] == \
        [("pass", "alice@a.example")], res
    assert [(r, p.get("header.d"), p.get("header.s")) for r, p in
            by.get("dkim", [])] == [("pass", "a.example", "lab")], res
    assert [(r, p.get("header.from")) for r, p in by.get("dmarc", [])] == \
        [("pass", "a.example")], res


# ------------------------------------------------- forged From: refused ---


def test_forged_from_of_p_reject_domain_is_refused_at_end_of_data(
        lab, make_godwit, uniq):
    a, b, x = lab.host("a"), lab.host("b"), lab.host("x")
    dns = lab.dns(
        host_records("b.example", b) + [
            spf_for("a.example", a),
            netlab.txt_record("_dmarc.a.example.", "v=DMARC1; p=reject"),
            spf_for("x.example", x),
        ])
    gb = make_godwit(godwit_config(b, "mx.b.example", dns), users=("bob",),
                     aliases={}, netns=b, domain="b.example")
    forged = f"{uniq}-forged"
    genuine = f"{uniq}-genuine"
    replies = session_from(x, b.ip4, "mx.x.example", [
        ["mallory@x.example", "bob@b.example",
         message("Alice <alice@a.example>", "bob@b.example", forged)],
        ["mallory@x.example", "bob@b.example",
         message("Mallory <mallory@x.example>", "bob@b.example", genuine)],
    ])
    code, text = replies[0]
    assert code == 550, replies
    assert text.startswith("5.7.1 "), replies
    assert "a.example" in text, replies  # names the domain whose policy
    assert replies[1][0] == 250, replies
    # the genuine message after it is delivered: the forged one would be
    # there by now
    wait_for(lambda: gb.find_messages(genuine), WAIT,
             what="the genuine message in bob's Maildir")
    assert gb.find_messages(forged) == []


# ----------------------------------------------- godwit -> Postfix stack ---


def keygen(g, domain, selector, algorithm):
    """`godwit dkim keygen`; returns its record as a zone-file line for
    the lab DNS (strings joined and re-split)."""
    p = g.run("dkim", "keygen", domain, "--selector", selector,
              "--algorithm", algorithm, check=True)
    m = re.search(r"^(\S+)\s+IN\s+TXT\s+((?:\"[^\"]*\"\s*)+)$", p.stdout, re.M)
    assert m, p.stdout
    owner = m.group(1)
    assert owner == f"{selector}._domainkey.{domain}.", p.stdout
    text = "".join(re.findall(r'"([^"]*)"', m.group(2)))
    return netlab.txt_record(owner, text)


def test_godwit_signed_mail_passes_dkim_and_dmarc_at_postfix(
        lab, peers, make_godwit, cert, uniq):
    g, c = lab.host("g"), lab.host("c")
    gg = make_godwit(godwit_config(g, "mx.g.example", None, cert,
                                   submission=True),
                     start=False, users=("alice",), aliases={}, netns=g,
                     domain="g.example")
    keys = [keygen(gg, "g.example", "rsa1", "rsa"),
            keygen(gg, "g.example", "ed1", "ed25519")]
    dns = lab.dns(
        host_records("g.example", g) + host_records("c.example", c) + keys + [
            spf_for("g.example", g),
            netlab.txt_record("_dmarc.g.example.", "v=DMARC1; p=reject"),
        ])
    gg.update_config({"dns": {"resolver": [dns.ip4]}})
    gg.start()

    dkim = peers.add(auth_peers.OpenDKIM(
        peers.dir / "opendkim-c", DKIM_PORT, c.exec_prefix(),
        authserv_id="opendkim.c.example", mode="v", nameservers=[dns.ip4]))
    dmarc = peers.add(auth_peers.OpenDMARC(
        peers.dir / "opendmarc-c", DMARC_PORT, c.exec_prefix(),
        authserv_id="opendmarc.c.example",
        trusted=["opendkim.c.example", "spf.c.example"]))
    spf_conf = auth_peers.write_policyd_spf_conf(
        peers.dir / "policyd-spf-c.conf", "spf.c.example")
    dkim.start()
    dmarc.start()
    pf = peers.add(postfix_peer.PostfixPeer(
        c, hostname="mx.c.example", users=("carol@c.example",),
        submission=False,
        main_cf=auth_peers.postfix_main_cf([dkim, dmarc]),
        master_cf=[auth_peers.policyd_spf_master_cf(spf_conf)]))
    pf.start()

    s = smtplib.SMTP(g.ip4, 587, local_hostname="client.example", timeout=30)
    try:
        s.starttls(context=client_tls_context())
        s.login("alice@g.example", PASSWORD)
        refused = s.sendmail("alice@g.example", ["carol@c.example"], message(
            "Alice <alice@g.example>", "carol@c.example", uniq))
    finally:
        s.quit()
    assert not refused, refused
    raw = pf.wait_message("carol@c.example", uniq, timeout=WAIT).read_bytes()

    sigs = header_fields(raw, "DKIM-Signature")
    algs = sorted(re.search(r"\ba=([a-z0-9-]+)", v).group(1) for v in sigs)
    assert algs == ["ed25519-sha256", "rsa-sha256"], sigs
    _, dk = results_of(raw, "opendkim.c.example")
    assert sorted((m, r, p.get("header.d"), p.get("header.s"),
                   p.get("header.a")) for m, r, p in dk if m == "dkim") == [
        ("dkim", "pass", "g.example", "ed1", "ed25519-sha256"),
        ("dkim", "pass", "g.example", "rsa1", "rsa-sha256"),
    ], header_fields(raw, "Authentication-Results")
    _, dm = results_of(raw, "opendmarc.c.example")
    assert [(m, r, p.get("header.from")) for m, r, p in dm] == \
        [("dmarc", "pass", "g.example")], \
        header_fields(raw, "Authentication-Results")
    _, sp = results_of(raw, "spf.c.example")
    assert [(m, r, p.get("smtp.mailfrom")) for m, r, p in sp] == \
        [("spf", "pass", "g.example")], \
        header_fields(raw, "Authentication-Results")
