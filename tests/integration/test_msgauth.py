"""
Mail authentication end to end: the real daemon checks SPF, DKIM, DMARC
and iprev of mail it receives on port 25 against a real unbound serving
each scenario's records on loopback, records them in one
Authentication-Results field, enforces DMARC (550 5.7.1, the .Junk
folder, 451 4.7.5), removes forged Authentication-Results fields of its
own authserv-id, exempts the allow list and authenticated senders, and
DKIM-signs what its users send and its bounces (verified by dkimpy).
"""

import json
import os
import poplib
import re
import smtplib
import subprocess

import dkim
import pytest

from conftest import (GODWIT_BIN, PASSWORD, Godwit, serving, free_port,
                      godwit_base, rsa_dkim_key, wait_for)
from smtpclient import RawSMTP, crlf, send_one
from test_dns import start_unbound, stop_unbound

ALICE = "alice@example.test"
BOB = "bob@example.test"
AUTHSERV = "mx.example.test"


def _txt(owner, text):
    """A TXT local-data line, split in strings of at most 200 octets."""
    parts = [text[i:i + 200] for i in range(0, len(text), 200)]
    return f"{owner} TXT " + " ".join(f'"{p}"' for p in parts)


def _records(p_value, godwit_keys):
    spf_fail = '"v=spf1 -all"'
    recs = [
        'pass.test. TXT "v=spf1 ip4:127.0.0.0/8 -all"',
        '_dmarc.pass.test. TXT "v=DMARC1; p=reject"',
        f"signed.test. TXT {spf_fail}",
        _txt("s1._domainkey.signed.test.", f"v=DKIM1; k=rsa; p={p_value}"),
        '_dmarc.signed.test. TXT "v=DMARC1; p=reject"',
        f"reject.test. TXT {spf_fail}",
        '_dmarc.reject.test. TXT "v=DMARC1; p=reject"',
        f"quar.test. TXT {spf_fail}",
        '_dmarc.quar.test. TXT "v=DMARC1; p=quarantine"',
        f"pct0.test. TXT {spf_fail}",
        '_dmarc.pct0.test. TXT "v=DMARC1; p=reject; pct=0"',
        f"allowed.test. TXT {spf_fail}",
        '_dmarc.allowed.test. TXT "v=DMARC1; p=reject"',
        # tf.test refuses every query but its DMARC record
        '_dmarc.tf.test. TXT "v=DMARC1; p=reject"',
        # our own domain: a forged From of it is refused on port 25
        f"example.test. TXT {spf_fail}",
        '_dmarc.example.test. TXT "v=DMARC1; p=reject"',
    ]
    return recs + godwit_keys


@pytest.fixture(scope="module")
def world(tmp_path_factory, cert, godwit_root):
    """unbound with the scenarios' records and one godwit that uses it,
    with submission and POP3 on loopback (plaintext logins) and DKIM keys
    for example.test made by `godwit dkim keygen`."""
    tmp = tmp_path_factory.mktemp("msgauth")
    priv, p_value = rsa_dkim_key(tmp / "signed.pem")
    dns_port = free_port()
    sub_port, pop_port = free_port(), free_port()
    g = Godwit(godwit_base(godwit_root, "msgauth"), {
        "dns": {"resolver": [f"127.0.0.1@{dns_port}"]},
        "checks": {"timeout": "3s"},
        "dmarc": {"allow": ["allowed.test"]},
        "smtp": {"trusted_networks": ["127.0.0.4/32"]},
        "tls": {"certificates": [{"cert": str(cert[0]),
                                  "key": str(cert[1])}]},
    })
    g.config["listeners"] += [
        {"name": "submission", "protocol": "submission",
         "listen": [f"127.0.0.1:{sub_port}"], "plaintext_auth": True},
        {"name": "pop3", "protocol": "pop3",
         "listen": [f"127.0.0.1:{pop_port}"], "plaintext_auth": True},
    ]
    g.write_config()
    out = g.admin("dkim", "keygen", "example.test", "--selector",
                  "s1").stdout
    keys = {}
    for line in out.splitlines():
        m = re.match(r'^(\S+)\. IN TXT (.*)$', line)
        if m:
            keys[m.group(1)] = "".join(re.findall(r'"([^"]*)"', m.group(2)))
    assert len(keys) == 2, out
    local = [_txt(name + ".", rec) for name, rec in keys.items()]
    ub = start_unbound(tmp / "unbound", dns_port, _records(p_value, local),
                       zones={"tf.test.": "always_refuse",
                              "_dmarc.tf.test.": "static",
                              "nxdomain.test.": "always_nxdomain"})
    g.sub_port, g.pop_port = sub_port, pop_port
    g.signed_key = priv
    g.dkim_records = keys
    try:
        with serving(g):
            yield g
    finally:
        stop_unbound(ub)


def message(marker, from_addr, extra=()):
    hdrs = [f"From: <{from_addr}>", f"To: <{ALICE}>",
            f"Subject: msgauth {marker}", f"Message-ID: <{marker}@sender.test>",
            "Date: Mon, 23 Nov 2026 06:40:00 +0000"] + list(extra)
    return crlf("\n".join(hdrs) + f"\n\nbody {marker}\n")


def send(g, mail_from, msg, rcpt=ALICE, source=None):
    """One transaction on port 25; the reply to the final dot."""
    return send_one(g.port, mail_from, [rcpt], msg, helo="client.sender.test",
                    source=source)


def stored(g, marker, folder="new"):
    md = g.maildir(ALICE) / folder
    if not md.is_dir():
        return []
    return [p.read_bytes() for p in md.iterdir()
            if marker.encode() in p.read_bytes()]


def head_of(raw):
    return raw.split(b"\n\n", 1)[0].decode()


def ar_fields(raw):
    """The unfolded Authentication-Results fields of a stored message."""
    head = head_of(raw)
    return [re.sub(r"\n[ \t]+", " ", m) for m in
            re.findall(r"^Authentication-Results:(.*?\n)(?=\S)", head + "\nX",
                       re.M | re.S | re.I)]


def test_pass_recorded_in_authentication_results(world, uniq):
    r = send(world, "a@pass.test", message(uniq, "a@pass.test"))
    assert r.code == 250, r
    got = wait_for(lambda: stored(world, uniq), 10, what="the message")
    ar = ar_fields(got[0])
    assert len(ar) == 1, got[0]
    v = ar[0]
    assert v.strip().startswith(f"{AUTHSERV};"), v
    # libunbound answers the loopback reverse zone itself (RFC 6761
    # local data): 127.0.0.1 is localhost and back
    assert "iprev=pass policy.iprev=127.0.0.1 (localhost)" in v, v
    assert "spf=pass smtp.mailfrom=a@pass.test" in v, v
    assert "dkim=none" in v, v
    assert re.search(r"dmarc=pass \(p=reject sp=reject dis=none\) "
                     r"header\.from=pass\.test", v), v
    head = head_of(got[0])
    # the confirmed name in godwit's Received field
    assert re.search(r"^Received: from client\.sender\.test "
                     r"\(localhost \[127\.0\.0\.1\]\)", head,
                     re.M), head
    log = world.log_text()
    assert re.search(r"fac=msgauth event=result .*iprev=pass spf=pass "
                     r".*dmarc=pass .*action=accept", log), log[-3000:]


def test_dkim_pass_aligned_passes_dmarc(world, uniq):
    """SPF fails, a dkimpy signature of the From domain passes: DMARC
    passes through DKIM."""
    msg = message(uniq, "a@signed.test")
    sig = dkim.sign(msg, b"s1", b"signed.test", world.signed_key,
                    include_headers=[b"from", b"to", b"subject"])
    r = send(world, "a@signed.test", sig + msg)
    assert r.code == 250, r
    got = wait_for(lambda: stored(world, uniq), 10, what="the message")
    v = ar_fields(got[0])[0]
    assert "spf=fail smtp.mailfrom=a@signed.test" in v, v
    assert re.search(r"dkim=pass header\.d=signed\.test header\.s=s1 "
                     r"header\.a=rsa-sha256 header\.b=\S{8}", v), v
    assert "dmarc=pass" in v and "header.from=signed.test" in v, v


def test_broken_dkim_signature_fails_dmarc(world, uniq):
    msg = message(uniq, "a@signed.test")
    sig = dkim.sign(msg, b"s1", b"signed.test", world.signed_key)
    r = send(world, "a@signed.test", sig + msg.replace(b"body", b"BODY"))
    assert (r.code, r.text[:5]) == (550, "5.7.1"), r
    assert stored(world, uniq) == []


def test_forged_authentication_results_removed(world, uniq):
    forged = ["Authentication-Results: mx.example.test; dmarc=pass",
              "Authentication-Results: MX.Example.TEST;\n\tspf=pass",
              "Authentication-Results:\n mx.example.test; dkim=pass",
              "Authentication-Results: other.example; spf=pass smtp.mailfrom=x"]
    msg = message(uniq, "a@pass.test", forged)
    r = send(world, "a@pass.test", msg)
    assert r.code == 250, r
    got = wait_for(lambda: stored(world, uniq), 10, what="the message")
    ar = ar_fields(got[0])
    ours = [v for v in ar if v.strip().lower().startswith(AUTHSERV)]
    assert len(ours) == 1, ar
    assert "iprev=pass" in ours[0], ours
    assert [v for v in ar if "other.example" in v] == \
        [" other.example; spf=pass smtp.mailfrom=x\n"], ar
    assert b"dmarc=pass\n" not in got[0]


def test_forged_godwit_fields_removed(world, uniq):
    """The filters' own fields (X-Godwit-*) arriving from outside are
    forged verdicts: removed on port 25, other X- fields kept."""
    forged = ["X-Godwit-Virus-Scan: clean (clamd)",
              "x-godwit-dnsbl: allowed by\n\tlist.example",
              "X-Godwit-Quarantine: no",
              "X-Godwitness: kept"]
    r = send(world, "a@pass.test", message(uniq, "a@pass.test", forged))
    assert r.code == 250, r
    got = wait_for(lambda: stored(world, uniq), 10, what="the message")[0]
    assert b"X-Godwitness: kept\n" in got, got
    low = got.lower()
    assert b"x-godwit-virus-scan" not in low and \
        b"x-godwit-dnsbl" not in low and b"list.example" not in low and \
        b"x-godwit-quarantine" not in low, got


def test_reject_policy_refused(world, uniq):
    r = send(world, "a@reject.test", message(uniq, "a@reject.test"))
    assert r.code == 550, r
    assert r.text == ("5.7.1 Message rejected: DMARC policy of reject.test "
                      "is reject"), r
    assert world.find_messages(uniq) == []
    assert re.search(r"fac=smtp event=reject .*reason=dmarc code=550",
                     world.log_text())
    # one line for the aggregate reports
    records = world.data_dir / "dmarc" / "records.log"
    assert [l for l in records.read_text().splitlines()
            if "reject.test" in l], records.read_text()


def test_forged_from_of_our_domain_refused(world, uniq):
    r = send(world, "ceo@example.test", message(uniq, "ceo@example.test"))
    assert (r.code, r.text[:5]) == (550, "5.7.1"), r


def test_quarantine_policy_into_junk(world, uniq):
    r = send(world, "a@quar.test", message(uniq, "a@quar.test"))
    assert r.code == 250, r
    got = wait_for(lambda: stored(world, uniq, ".Junk/new"), 10,
                   what="the message in .Junk")
    assert stored(world, uniq) == []
    head = head_of(got[0])
    assert ("X-Godwit-Quarantine: DMARC policy of quar.test is quarantine"
            in head), head
    assert "dmarc=fail (p=quarantine" in "".join(ar_fields(got[0]))
    assert (world.maildir(ALICE) / ".Junk" / "maildirfolder").is_file()
    # POP3 shows the inbox only
    p = poplib.POP3("127.0.0.1", world.pop_port, timeout=30)
    try:
        p.user(ALICE)
        p.pass_(PASSWORD)
        n, _ = p.stat()
        for i in range(1, n + 1):
            assert uniq.encode() not in b"\n".join(p.retr(i)[1])
    finally:
        p.quit()


def test_temperror_under_reject_defers(world, uniq):
    """tf.test's SPF record cannot be had (REFUSED); its DMARC record
    says p=reject: not a permanent refusal, not an accept either."""
    r = send(world, "a@tf.test", message(uniq, "a@tf.test"))
    assert (r.code, r.text[:5]) == (451, "4.7.5"), r
    assert world.find_messages(uniq) == []
    assert re.search(r"reason=dmarc-temperror code=451", world.log_text())


def test_pct_zero_not_rejected(world, uniq):
    r = send(world, "a@pct0.test", message(uniq, "a@pct0.test"))
    assert r.code == 250, r
    # not sampled: the next policy down (quarantine) applies
    wait_for(lambda: stored(world, uniq, ".Junk/new"), 10,
             what="the message in .Junk")


def test_allow_list_exempt(world, uniq):
    r = send(world, "a@allowed.test", message(uniq, "a@allowed.test"))
    assert r.code == 250, r
    got = wait_for(lambda: stored(world, uniq), 10, what="the message")
    # checked and recorded all the same
    assert "dmarc=fail" in "".join(ar_fields(got[0]))


def test_trusted_network_not_checked(world, uniq):
    """A client in smtp.trusted_networks is one of ours: not checked, so
    reject.test's policy does not apply and no A-R field is added."""
    r = send(world, "a@reject.test", message(uniq, "a@reject.test"),
             source="127.0.0.4")
    assert r.code == 250, r
    got = wait_for(lambda: stored(world, uniq), 10, what="the message")
    assert ar_fields(got[0]) == [], got[0]


def test_iprev_fail_unknown_in_received(world, uniq):
    """127.0.0.2 has no PTR record: iprev fails, Received says unknown."""
    r = send(world, "a@pass.test", message(uniq, "a@pass.test"),
             source="127.0.0.2")
    assert r.code == 250, r
    got = wait_for(lambda: stored(world, uniq), 10, what="the message")
    v = ar_fields(got[0])[0]
    assert "iprev=fail policy.iprev=127.0.0.2;" in v, v
    assert re.search(r"^Received: from client\.sender\.test "
                     r"\(unknown \[127\.0\.0\.2\]\)", head_of(got[0]), re.M)


def _dnsfunc(records):
    def f(name, timeout=5):
        return records.get(name.decode().rstrip(".")).encode()
    return f


def _submit(g, marker, rcpt=BOB, body_from=ALICE):
    s = smtplib.SMTP("127.0.0.1", g.sub_port, local_hostname="client.test",
                     timeout=30)
    try:
        s.login(ALICE, PASSWORD)
        s.sendmail(ALICE, [rcpt], crlf(
            f"From: <{body_from}>\nTo: <{rcpt}>\nSubject: signed {marker}\n"
            f"\nsigned body {marker}\n"))
    finally:
        s.quit()


def test_submitted_mail_signed_and_exempt(world, uniq):
    """alice's own mail (example.test publishes p=reject and SPF -all) is
    not checked, and carries DKIM-Signature fields, RSA and Ed25519, that
    dkimpy verifies."""
    _submit(world, uniq)
    got = wait_for(lambda: world.find_messages(uniq), 10, what="the message")
    raw = got[0].read_bytes()
    assert b"Authentication-Results" not in raw
    # no iprev for an unchecked session: the bare address, as before
    assert re.search(rb"^Received: from \S+ \(\[127\.0\.0\.1\]\)$", raw,
                     re.M), raw[:2000]
    sigs = re.findall(rb"^DKIM-Signature:", raw, re.M)
    assert len(sigs) == 2, raw[:2000]
    # the stored copy starts with godwit's local trace fields
    msg = raw.split(b"\n", 2)[2] if raw.startswith(b"Return-Path") else raw
    msg = crlf(msg)
    d = dkim.DKIM(msg)
    for i in range(2):
        assert d.verify(idx=i, dnsfunc=_dnsfunc(world.dkim_records)), i


def test_bounce_signed(world, uniq):
    """A bounce (the recipient's domain does not exist) comes from
    MAILER-DAEMON@mx.example.test, signed with example.test's keys."""
    _submit(world, uniq, rcpt=f"x-{uniq}@nxdomain.test")
    got = wait_for(lambda: [p for p in world.maildir_files(ALICE)
                            if uniq.encode() in p.read_bytes()
                            and b"MAILER-DAEMON" in p.read_bytes()],
                   30, what="the bounce")
    raw = got[0].read_bytes()
    assert re.search(rb"^DKIM-Signature:.*d=example\.test", raw, re.M | re.S)
    lines = raw.split(b"\n")
    while lines and lines[0].startswith((b"Return-Path:", b"Delivered-To:")):
        lines.pop(0)
    d = dkim.DKIM(crlf(b"\n".join(lines)))
    assert d.verify(idx=0, dnsfunc=_dnsfunc(world.dkim_records))


def test_check_command_runs_the_server_checks(world):
    """`godwit check` with the daemon's configuration: the same checks,
    the same field, and the per-method results as JSON."""
    msg = message("check", "a@signed.test")
    msg = dkim.sign(msg, b"s1", b"signed.test", world.signed_key) + msg
    args = ("check", "--ip", "127.0.0.1", "--helo", "client.sender.test",
            "--mail-from", "a@signed.test")
    p = world.run(*args, "--json", input=msg.decode(), check=True)
    j = json.loads(p.stdout)
    assert j["dkim"] == [{"result": "pass", "domain": "signed.test",
                          "selector": "s1", "algorithm": "rsa-sha256",
                          "reason": ""}], j
    assert j["spf"]["result"] == "fail" and j["spf"]["domain"] == \
        "signed.test", j
    assert {k: j["dmarc"][k] for k in ("result", "policy", "from_domain",
                                       "spf_aligned", "dkim_aligned")} == \
        {"result": "pass", "policy": "reject", "from_domain": "signed.test",
         "spf_aligned": False, "dkim_aligned": True}, j
    assert j["iprev"]["result"] == "pass" and \
        j["iprev"]["name"] == "localhost", j
    ar = j["authentication_results"]
    assert ar.startswith(f"Authentication-Results: {AUTHSERV};\n\tiprev=pass")
    assert "\tdkim=pass header.d=signed.test header.s=s1" in ar, ar
    # the plain form prints that field
    p = world.run(*args, input=msg.decode(), check=True)
    assert p.stdout.startswith(f"Authentication-Results: {AUTHSERV};\n"), \
        p.stdout
    assert "\tdmarc=pass (p=reject sp=reject dis=none) " \
        "header.from=signed.test\n" in p.stdout, p.stdout


def test_unusable_dkim_key_stops_the_start(make_godwit):
    """The parent loads the signing keys as root before it forks: a key
    file that is no key is an error naming the file, and nothing starts."""
    g = make_godwit(start=False)
    d = g.data_dir / "dkim" / "example.test"
    d.mkdir(parents=True)
    (d / "broken.key").write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n"
                                  "-----END PRIVATE KEY-----\n")
    os.chmod(d / "broken.key", 0o600)
    p = subprocess.run([GODWIT_BIN, "-c", str(g.cfg_path), "serve"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 1, p.stderr
    assert "DKIM keys:" in p.stderr and "broken.key" in p.stderr, p.stderr


def test_bdat_checked_and_filtered(world, uniq):
    """BDAT takes the same path: forged fields removed across chunks, the
    checks fed, the verdict enforced at the last chunk."""
    msg = message(uniq, "a@pass.test",
                  ["Authentication-Results: mx.example.test; dmarc=pass"])
    cut = msg.index(b"example.test; dmarc") + 3
    with RawSMTP("127.0.0.1", world.port, timeout=30) as c:
        assert c.reply().code == 220
        c.ehlo("client.sender.test")
        assert c.cmd("MAIL FROM:<a@pass.test>").code == 250
        assert c.cmd(f"RCPT TO:<{ALICE}>").code == 250
        c.send(b"BDAT %d\r\n" % cut + msg[:cut])
        assert c.reply().code == 250
        c.send(b"BDAT %d LAST\r\n" % (len(msg) - cut) + msg[cut:])
        r = c.reply(timeout=30)
        assert r.code == 250, r
        assert c.cmd("MAIL FROM:<a@reject.test>").code == 250
        assert c.cmd(f"RCPT TO:<{ALICE}>").code == 250
        bad = message(uniq + "-r", "a@reject.test")
        c.send(b"BDAT %d LAST\r\n" % len(bad) + bad)
        r = c.reply(timeout=30)
        assert (r.code, r.text[:5]) == (550, "5.7.1"), r
    got = wait_for(lambda: stored(world, uniq), 10, what="the message")
    ar = ar_fields(got[0])
    assert len(ar) == 1 and "dmarc=pass (p=reject" in ar[0], ar
    assert world.find_messages(uniq + "-r") == []


def test_records_file_rotated_away(world, uniq):
    """The DMARC records file stays open in the workers; one renamed away
    (log rotation) is followed by a new one within a second or so."""
    records = world.data_dir / "dmarc" / "records.log"

    def lines():
        return records.read_text().count("\n") if records.exists() else 0
    before = lines()
    assert send(world, "a@pass.test", message(uniq, "a@pass.test")).code \
        == 250
    wait_for(lambda: lines() > before, 10, what="a line for the message")
    os.rename(records, records.with_suffix(".log.1"))
    n = [0]

    def again():
        n[0] += 1
        assert send(world, "a@pass.test",
                    message(f"{uniq}-{n[0]}", "a@pass.test")).code == 250
        return lines() > 0
    wait_for(again, 15, interval=0.5, what="a line in a new records.log")
    assert "header_from=pass.test" in records.read_text()
    assert records.stat().st_mode & 0o777 == 0o640
