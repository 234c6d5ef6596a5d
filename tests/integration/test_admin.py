"""
The administration commands (domain, user, alias, config check) as an
operator runs them: outputs, error messages on stderr, exit codes (0 ok,
1 error, 2 usage), and that a running daemon sees the changes.
"""

import sqlite3

import pytest

from conftest import GODWIT_BIN, PASSWORD, to_yaml


@pytest.fixture
def g(make_godwit):
    return make_godwit(start=False)


def _fails(p, code=1):
    assert p.returncode == code, f"exit {p.returncode}, wanted {code}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    assert p.stderr.strip(), "an error must say what is wrong on stderr"


# ------------------------------------------------------------- domain ---


def test_domain_add_list_del(g):
    p = g.run("domain", "list")
    assert p.returncode == 0 and "example.test" in p.stdout.split(), p
    assert g.run("domain", "add", "other.test").returncode == 0
    out = g.run("domain", "list").stdout.split()
    assert "other.test" in out and "example.test" in out
    assert g.run("domain", "del", "other.test").returncode == 0
    assert "other.test" not in g.run("domain", "list").stdout.split()


def test_domain_add_normalises_case(g):
    assert g.run("domain", "add", "Upper.TEST").returncode == 0
    assert "upper.test" in g.run("domain", "list").stdout.split()
    _fails(g.run("domain", "add", "UPPER.test"))  # the same domain again


@pytest.mark.parametrize("bad", ["not a domain", "-bad.test", "bad..test", "a@b.test", ""])
def test_domain_add_bad(g, bad):
    _fails(g.run("domain", "add", bad))


def test_domain_duplicate_and_unknown(g):
    _fails(g.run("domain", "add", "example.test"))
    _fails(g.run("domain", "del", "nowhere.test"))


# --------------------------------------------------------------- user ---


def test_user_list(g):
    p = g.run("user", "list")
    assert p.returncode == 0, p
    assert "alice@example.test" in p.stdout and "bob@example.test" in p.stdout
    p = g.run("user", "list", "example.test")
    assert p.returncode == 0 and "alice@example.test" in p.stdout, p


def test_user_add_unknown_domain(g):
    _fails(g.run("user", "add", "carol@nowhere.test", "--password-stdin", input="pw-pw-pw-pw\n"))


def test_user_add_duplicate(g):
    _fails(g.run("user", "add", "alice@example.test", "--password-stdin", input="pw-pw-pw-pw\n"))
    _fails(g.run("user", "add", "ALICE@example.test", "--password-stdin", input="pw-pw-pw-pw\n"))


@pytest.mark.parametrize("bad", ["carol", "carol@", "@example.test", "ca rol@example.test",
                                 "carol@@example.test", "carol@example.test@x.test"])
def test_user_add_bad_address(g, bad):
    _fails(g.run("user", "add", bad, "--password-stdin", input="pw-pw-pw-pw\n"))


def test_password_stored_as_yescrypt(g):
    db = g.data_dir / "db" / "godwit.sqlite"
    assert db.is_file()
    raw = db.read_bytes()
    assert PASSWORD.encode() not in raw, "plaintext password in the database"
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        hashes = []
        for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'"):
            for row in con.execute(f'SELECT * FROM "{table}"'):
                hashes += [v for v in row if isinstance(v, str) and v.startswith("$y$")]
    finally:
        con.close()
    assert len(hashes) == 2, f"expected a yescrypt hash per user, found {hashes}"
    assert hashes[0] != hashes[1], "same password must hash differently (salt)"


def test_user_passwd(g):
    def alice_hash():
        con = sqlite3.connect(f"file:{g.data_dir / 'db' / 'godwit.sqlite'}?mode=ro", uri=True)
        try:
            for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'"):
                for row in con.execute(f'SELECT * FROM "{table}"'):
                    if "alice@example.test" in row or "alice" in row:
                        for v in row:
                            if isinstance(v, str) and v.startswith("$y$"):
                                return v
        finally:
            con.close()

    before = alice_hash()
    assert before
    p = g.run("user", "passwd", "alice@example.test", "--password-stdin", input="a new secret\n")
    assert p.returncode == 0, p
    after = alice_hash()
    assert after and after != before
    _fails(g.run("user", "passwd", "nobody@example.test", "--password-stdin", input="x-x-x-x\n"))


def test_user_del(g):
    assert g.run("user", "del", "bob@example.test").returncode == 0
    out = g.run("user", "list").stdout
    assert "bob@example.test" not in out and "alice@example.test" in out
    _fails(g.run("user", "del", "bob@example.test"))


# -------------------------------------------------------------- alias ---


def test_alias_add_list_del(g):
    assert g.run("alias", "add", "info@example.test", "alice@example.test").returncode == 0
    p = g.run("alias", "list")
    assert p.returncode == 0, p
    lines = [l.split() for l in p.stdout.splitlines()]
    assert ["info@example.test", "alice@example.test"] in lines, p.stdout
    assert ["postmaster@example.test", "alice@example.test"] in lines, p.stdout
    assert g.run("alias", "del", "info@example.test", "alice@example.test").returncode == 0
    lines = [l.split() for l in g.run("alias", "list").stdout.splitlines()]
    assert ["info@example.test", "alice@example.test"] not in lines


def test_alias_errors(g):
    _fails(g.run("alias", "add", "info@nowhere.test", "alice@example.test"))
    _fails(g.run("alias", "add", "info@example.test", "not-an-address"))
    _fails(g.run("alias", "add", "info example@example.test", "alice@example.test"))
    _fails(g.run("alias", "del", "nothing@example.test", "alice@example.test"))
    _fails(g.run("alias", "add", "postmaster@example.test", "alice@example.test"))  # duplicate


# -------------------------------------------------------------- usage ---


@pytest.mark.parametrize("args", [
    ("domain",), ("domain", "frob"), ("user", "add"), ("alias", "add", "x@example.test"),
    ("no-such-command",),
])
def test_usage_errors(g, args):
    p = g.run(*args, input="")
    assert p.returncode == 2, f"{args}: exit {p.returncode}\n{p.stderr}"
    assert p.stderr.strip()


# ------------------------------------------------ changes while running ---


def test_running_daemon_sees_new_and_deleted_users(make_godwit, uniq):
    g = make_godwit()
    with g.raw() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@example.org>").code == 250
        r = c.cmd("RCPT TO:<carol@example.test>")
        assert (r.code, r.enh) == (550, "5.1.1"), r
    g.admin("user", "add", "carol@example.test", "--password-stdin", input="pw-pw-pw-pw\n")
    g.admin("user", "del", "bob@example.test")
    with g.raw() as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<sender@example.org>").code == 250
        r = c.cmd("RCPT TO:<carol@example.test>")
        assert r.code == 250, f"new user not seen by the running daemon: {r}"
        r = c.cmd("RCPT TO:<bob@example.test>")
        assert (r.code, r.enh) == (550, "5.1.1"), f"deleted user still accepted: {r}"


# ------------------------------------------------------- config check ---


def test_config_check_valid(g):
    p = g.run("config", "check")
    assert p.returncode == 0, p
    # the other placement of -c
    p = g.run("config", "check", "-c", str(g.cfg_path), global_cfg=False)
    assert p.returncode == 0, p


def _broken(g, text, needle, slack=0):
    """Writes text, runs config check, asserts `file:line: message` for
    the line holding needle (or up to slack lines after it: a YAML syntax
    error may be noticed only at the next token)."""
    g.write_config(raw=text)
    line = next(i for i, l in enumerate(text.splitlines(), 1) if needle in l)
    p = g.run("config", "check")
    assert p.returncode == 1, f"exit {p.returncode}\n{p.stdout}{p.stderr}"
    out = p.stdout + p.stderr
    wanted = [f"{g.cfg_path}:{n}: " for n in range(line, line + slack + 1)]
    assert any(w in out for w in wanted), f"wanted {wanted[0]}...\ngot: {out}"
    return out


def test_config_check_unknown_key(g):
    lines = to_yaml(g.config).splitlines()
    lines.insert(1, "hostnmae: typo.example.test")
    _broken(g, "\n".join(lines) + "\n", "hostnmae")


def test_config_check_nested_unknown_key(g):
    text = to_yaml(g.config).replace("  max_recipients: 100", "  max_recipients: 100\n  max_recipeints: 5")
    _broken(g, text + "\n", "max_recipeints")


@pytest.mark.parametrize("old,new,needle,slack", [
    ("max_recipients: 100", "max_recipients: lots", "lots", 0),
    ("max_recipients: 100", "max_recipients: -3", "-3", 0),
    ("max_message_size: 1M", "max_message_size: 1Q", "1Q", 0),
    ("trusted_networks: []", "trusted_networks: [10.0.0.0/33]", "10.0.0.0/33", 0),
    ("protocol: smtp", "protocol: gopher", "gopher", 0),
    ("workers: 2", "workers: [2", "workers", 1),
    ("hostname: mx.example.test", "hostname: \"mx.example.test", "hostname", 1),
])
def test_config_check_bad_values(g, old, new, needle, slack):
    text = to_yaml(g.config) + "\n"
    assert old in text, old
    text = text.replace(old, new)
    # the needle finds the broken line; a random temporary path elsewhere
    # in the file (data_dir) may contain it too, so it must be on the line
    # that was changed
    assert needle in new
    _broken(g, text, new.split("\n")[0], slack)


def test_config_check_bad_listen_address(g):
    text = to_yaml(g.config) + "\n"
    assert f"127.0.0.1:{g.port}" in text
    text = text.replace(f"127.0.0.1:{g.port}", "127.0.0.300:25")
    _broken(g, text, "127.0.0.300")


def test_config_check_missing_file(g):
    p = g.run("-c", str(g.base / "nope.yaml"), "config", "check", global_cfg=False)
    assert p.returncode == 1
    assert "nope.yaml" in p.stderr + p.stdout


def test_serve_refuses_broken_config(g):
    lines = to_yaml(g.config).splitlines()
    lines.insert(1, "bogus: 1")
    g.write_config(raw="\n".join(lines) + "\n")
    import subprocess
    p = subprocess.run([GODWIT_BIN, "-c", str(g.cfg_path), "serve"],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode != 0
    assert f"{g.cfg_path}:2:" in p.stderr, p.stderr
