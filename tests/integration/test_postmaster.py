"""
Postmaster of the server's own host name (RFC 5321 4.5.1): mail to
postmaster@HOSTNAME and to the bare <Postmaster> (any case) goes to the
configured postmaster address -- by default postmaster@ the first local
domain, an alias to alice here -- never refused as relay and never into
a Maildir for the host name. `godwit config check` warns when nobody
would read it.
"""

import shutil
import subprocess

import pytest

from conftest import DOMAIN, HOSTNAME, wait_for
from smtpclient import make_message


def _hostname_maildirs(g):
    return sorted((g.data_dir / "mail").glob(f"{HOSTNAME}/**/*"))


@pytest.mark.parametrize("rcpt", [
    f"postmaster@{HOSTNAME}",
    f"Postmaster@{HOSTNAME.upper()}",
    "postmaster",
    "Postmaster",
    "POSTMASTER",
])
def test_postmaster_of_hostname_reaches_the_alias(shared_godwit, uniq, rcpt):
    g = shared_godwit
    with g.smtp() as s:
        s.ehlo("client.test")
        s.mail("someone@outside.example")
        code, msg = s.rcpt(rcpt)
        assert code == 250, (code, msg)
        code, msg = s.data(make_message(uniq, to=rcpt))
        assert code == 250, (code, msg)
    # postmaster@example.test -> alice (conftest ALIASES)
    found = wait_for(lambda: g.find_messages(uniq), 10, what="the message")
    assert len(found) == 1, found
    assert found[0].parent.parent == g.maildir("alice@example.test")
    assert _hostname_maildirs(g) == []


def test_swaks_to_postmaster_of_hostname(godwit, uniq):
    swaks = shutil.which("swaks")
    if swaks is None:
        pytest.skip("swaks is not installed")
    p = subprocess.run(
        [swaks, "--server", f"127.0.0.1:{godwit.port}", "--helo", "client.test",
         "--from", "someone@outside.example", "--to", f"postmaster@{HOSTNAME}",
         "--header", f"Subject: {uniq}"],
        capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "Relay access denied" not in p.stdout
    godwit.wait_messages("alice@example.test", 1)
    assert len(godwit.find_messages(uniq)) == 1
    assert _hostname_maildirs(godwit) == []


def test_other_names_at_hostname_still_refused(shared_godwit):
    with shared_godwit.smtp() as s:
        s.ehlo("client.test")
        s.mail("someone@outside.example")
        code, msg = s.rcpt(f"alice@{HOSTNAME}")
        assert code == 554 and b"5.7.1" in msg, (code, msg)
        code, msg = s.rcpt("postmaster@other.example")
        assert code == 554, (code, msg)


def test_configured_postmaster(make_godwit, uniq):
    g = make_godwit({"postmaster": "bob@example.test"})
    with g.smtp() as s:
        assert s.sendmail("someone@outside.example",
                          [f"postmaster@{HOSTNAME}"],
                          make_message(uniq)) == {}
    g.wait_messages("bob@example.test", 1)
    assert g.find_messages(uniq) == g.maildir_files("bob@example.test")
    # postmaster of a local domain is still that domain's own
    with g.smtp() as s:
        s.sendmail("someone@outside.example", [f"postmaster@{DOMAIN}"],
                   make_message(uniq + "-dom"))
    assert len(g.wait_messages("alice@example.test", 1)) == 1
    p = g.run("config", "check")
    assert p.returncode == 0 and "warning" not in p.stderr, p.stderr


def test_config_check_postmaster_warnings(make_godwit):
    # no postmaster alias at all: the mailbox nobody reads is named
    g = make_godwit(aliases={}, start=False)
    p = g.run("config", "check")
    assert p.returncode == 0, p.stderr
    assert "warning: postmaster: no user, alias or catch-all" in p.stderr
    assert f"postmaster@{DOMAIN}, which nobody reads" in p.stderr
    # a configured address that is nobody
    g.update_config({"postmaster": "nobody@example.test"})
    p = g.run("config", "check")
    assert p.returncode == 0, p.stderr
    assert ("warning: postmaster: nobody@example.test is no user, alias "
            "or catch-all here") in p.stderr
    # not an address: an error with file:line
    g.update_config({"postmaster": "not an address"})
    line = [i for i, l in enumerate(g.cfg_path.read_text().splitlines(), 1)
            if l.startswith("postmaster:")][0]
    p = g.run("config", "check")
    assert p.returncode == 1
    assert (f"godwit.yaml:{line}: postmaster: 'not an address' is not an "
            "address") in p.stderr, p.stderr
    # the default set-up: postmaster@example.test -> alice, no warning
    g2 = make_godwit(start=False)
    p = g2.run("config", "check")
    assert p.returncode == 0 and "warning" not in p.stderr, p.stderr
