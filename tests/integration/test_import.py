"""
`godwit user import`: an operator moves users over from Dovecot with a
real passwd-file (a SHA512-CRYPT hash made by `openssl passwd -6`, a
{PLAIN} password, and bad lines), then checks `user list`.
"""

import sqlite3
import subprocess

import pytest

from conftest import DOMAIN


@pytest.fixture
def g(make_godwit):
    return make_godwit(start=False)


def _sha512_crypt(password):
    p = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password + "\n",
                       capture_output=True, text=True, check=True)
    h = p.stdout.strip()
    assert h.startswith("$6$"), h
    return h


def _db(g):
    return sqlite3.connect(g.data_dir / "db" / "godwit.sqlite")


def test_import_dovecot_passwd_file(g, tmp_path):
    h = _sha512_crypt("dovecot pw")
    f = tmp_path / "users"
    f.write_text(
        "# exported from Dovecot\n"
        "\n"
        f"carol@{DOMAIN}:{{SHA512-CRYPT}}{h}:5000:5000::/var/vmail/carol::userdb_quota_rule=*:storage=1G\n"
        f"dave@{DOMAIN}:{{PLAIN}}plain pw::\n"
        f"eve@{DOMAIN}:{{SSHA}}abcdef:::\n"
        f"alice@{DOMAIN}:{{PLAIN}}x\n"
        "frank@elsewhere.test:{PLAIN}y\n"
    )
    p = g.run("user", "import", f)
    assert p.returncode == 1, p
    assert p.stdout == "imported 2 users, skipped 3\n", p
    assert p.stderr.splitlines() == [
        f"{f}:5: unsupported password scheme {{SSHA}} (use SHA512-CRYPT, "
        "SHA256-CRYPT, BLF-CRYPT, CRYPT or PLAIN)",
        f"{f}:6: user alice@{DOMAIN} already exists, skipped (--update replaces its password)",
        f"{f}:7: domain elsewhere.test is not local: godwit domain add "
        "elsewhere.test (or import with --create-domains)",
    ], p.stderr

    users = g.run("user", "list").stdout.split()
    assert f"carol@{DOMAIN}" in users and f"dave@{DOMAIN}" in users
    assert f"eve@{DOMAIN}" not in users and "frank@elsewhere.test" not in users

    with _db(g) as db:
        rows = dict((a, (ph, sc)) for a, ph, sc in db.execute(
            "SELECT address, password_hash, scram_sha256 FROM users"))
    # the crypt hash is kept as it is; SCRAM waits for a password change
    assert rows[f"carol@{DOMAIN}"] == (h, None)
    # a {PLAIN} password is hashed (yescrypt) and gets a SCRAM secret
    assert rows[f"dave@{DOMAIN}"][0].startswith("$y$")
    assert rows[f"dave@{DOMAIN}"][1].startswith("SCRAM-SHA-256$4096:")

    # the next password change gives carol a SCRAM secret too
    g.admin("user", "passwd", f"carol@{DOMAIN}", "--password-stdin", input="new pw\n")
    with _db(g) as db:
        (sc,) = db.execute("SELECT scram_sha256 FROM users WHERE address = ?",
                           (f"carol@{DOMAIN}",)).fetchone()
    assert sc is not None and sc.startswith("SCRAM-SHA-256$")


def test_import_stdin_update_and_create_domains(g):
    h = _sha512_crypt("other")
    p = g.run("user", "import", "-", "--update", "--create-domains",
              input=f"alice@{DOMAIN}:{h}\nFrank@Elsewhere.TEST:{{PLAIN}}y\n")
    assert p.returncode == 0, p
    assert p.stdout == "added domain elsewhere.test\nimported 2 users, skipped 0\n", p
    assert p.stderr == ""
    assert "frank@elsewhere.test" in g.run("user", "list", "elsewhere.test").stdout.split()
    with _db(g) as db:
        (ph,) = db.execute("SELECT password_hash FROM users WHERE address = ?",
                           (f"alice@{DOMAIN}",)).fetchone()
    assert ph == h


def test_import_usage(g):
    assert g.run("user", "import").returncode == 2
    p = g.run("user", "import", "/nonexistent/users")
    assert p.returncode == 1 and "No such file or directory" in p.stderr
