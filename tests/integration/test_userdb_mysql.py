"""
The user database on a real MariaDB 10.11 (mariadb_peer.py, one server for
the module), two ways:

- `backend: mysql` with godwit's own schema: `godwit db init`, the admin
  commands, RCPT, logins on POP3 (USER/PASS and SCRAM-SHA-256), IMAP and
  SMTP AUTH;
- `userdb.queries` over a PostfixAdmin-style schema (domain, mailbox and
  alias tables written here from PostfixAdmin's documented columns, with
  passwords hashed by Dovecot's own `doveadm pw` as {BLF-CRYPT} and
  {SHA512-CRYPT}): RCPT to a mailbox and to an alias whose goto is a
  comma-separated list, an unknown user and an inactive mailbox refused,
  logins with both hash kinds, SCRAM refused cleanly, the admin commands
  refusing to write; then MariaDB stopped under a running godwit (451
  4.3.0 and -ERR [SYS/TEMP]) and started again (served again without a
  restart of godwit).
"""

import base64
import hashlib
import hmac
import imaplib
import os
import poplib
import shutil
import smtplib
import subprocess
import time

import pytest

from conftest import (DOMAIN, PASSWORD, Godwit, _finish, free_port,
                      godwit_base, wait_for)
import mariadb_peer

pytestmark = pytest.mark.skipif(
    not mariadb_peer.available() or os.geteuid() != 0,
    reason="needs mariadb-server and root")

ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"


# ------------------------------------------------------------- fixtures ---

@pytest.fixture(scope="module")
def maria(godwit_root):
    # below a directory the mysql user can enter (pytest's is 0700)
    db = mariadb_peer.MariaDB(godwit_base(godwit_root, "mariadb") / "m")
    db.start()
    yield db
    db.cleanup()


class SqlGodwit(Godwit):
    """A godwit whose user database is on the SQL server: made with `db
    init` and the admin commands (no template copy of an SQLite file), or
    not made at all when the config reads someone else's schema."""

    def _setup_userdb(self, users, aliases):
        if self.config.get("userdb", {}).get("queries"):
            return
        self.admin("db", "init")
        self._make_userdb(users, aliases)


class BareSqlGodwit(SqlGodwit):
    """Only `godwit db init`: the users come later (db import)."""

    def _setup_userdb(self, users, aliases):
        self.admin("db", "init")


def with_listeners(g):
    """Plaintext POP3, IMAP and submission listeners (AUTH without TLS)
    on free loopback ports."""
    g.pop3_port, g.imap_port = free_port(), free_port()
    g.add_submission()
    g.config["listeners"] += [
        {"name": "pop3", "protocol": "pop3", "plaintext_auth": True,
         "listen": [f"127.0.0.1:{g.pop3_port}"]},
        {"name": "imap", "protocol": "imap", "plaintext_auth": True,
         "listen": [f"127.0.0.1:{g.imap_port}"]},
    ]
    g.write_config()


def make_sql_godwit(root, name, cert, userdb, cls=SqlGodwit, **kw):
    crt, key = cert
    g = cls(godwit_base(root, name),
                  {"userdb": userdb,
                   "tls": {"certificates": [{"cert": str(crt),
                                             "key": str(key)}]},
                   # cache_ttl 0: every login asks the database, which
                   # these tests stop
                   "auth": {"delay_base": "10ms", "delay_max": "20ms",
                            "max_failures_ip": 1000, "cache_ttl": 0}},
                  **kw)
    with_listeners(g)
    return g


def finish(g):
    problems = _finish(g)
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


# ------------------------------------------------------------- clients ---

def rcpt(g, to, sender="someone@remote.test"):
    with g.smtp() as s:
        s.ehlo("client.remote.test")
        s.mail(sender)
        return s.rcpt(to)


def pop3_login(g, user, password):
    p = poplib.POP3("127.0.0.1", g.pop3_port, timeout=20)
    try:
        p.user(user)
        p.pass_(password)
        return p.stat()
    finally:
        try:
            p.quit()
        except (poplib.error_proto, OSError):
            pass


def pop3_error(g, user, password):
    """The -ERR line a failed login gets (an assertion if it succeeds)."""
    try:
        pop3_login(g, user, password)
    except poplib.error_proto as e:
        return e.args[0].decode()
    raise AssertionError(f"login of {user} succeeded")


def imap_login(g, user, password):
    m = imaplib.IMAP4("127.0.0.1", g.imap_port, timeout=20)
    try:
        typ, _ = m.login(user, password)
        assert typ == "OK"
        typ, data = m.select("INBOX")
        assert typ == "OK"
        return int(data[0])
    finally:
        try:
            m.logout()
        except (imaplib.IMAP4.error, OSError):
            pass


def smtp_auth(g, user, password):
    with smtplib.SMTP("127.0.0.1", g.sub_port, timeout=20) as s:
        s.ehlo("client.example.test")
        return s.login(user, password)[0]


def pop3_scram(g, user, password):
    """AUTH SCRAM-SHA-256 on POP3, a client written from RFC 5802/7677:
    the final +OK/-ERR line."""
    p = poplib.POP3("127.0.0.1", g.pop3_port, timeout=20)
    try:
        cnonce = base64.b64encode(os.urandom(18)).decode()
        first_bare = f"n={user},r={cnonce}"
        r = p._shortcmd("AUTH SCRAM-SHA-256 " + base64.b64encode(
            ("n,," + first_bare).encode()).decode()).decode()
        assert r.startswith("+ "), r
        server_first = base64.b64decode(r[2:]).decode()
        attrs = dict(a.split("=", 1) for a in server_first.split(","))
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(),
                                     base64.b64decode(attrs["s"]),
                                     int(attrs["i"]))
        ckey = hmac.new(salted, b"Client Key", "sha256").digest()
        final_nop = f"c=biws,r={attrs['r']}"
        auth_msg = f"{first_bare},{server_first},{final_nop}".encode()
        sig = hmac.new(hashlib.sha256(ckey).digest(), auth_msg,
                       "sha256").digest()
        proof = base64.b64encode(bytes(a ^ b for a, b in zip(ckey, sig)))
        try:
            r = p._shortcmd(base64.b64encode(
                f"{final_nop},p={proof.decode()}".encode()).decode()).decode()
        except poplib.error_proto as e:
            return e.args[0].decode()
        if r.startswith("+ "):
            try:
                r = p._shortcmd("").decode()
            except poplib.error_proto as e:
                return e.args[0].decode()
        return r
    finally:
        try:
            p.quit()
        except (poplib.error_proto, OSError):
            pass


# ---------------------------------------------- godwit's own schema ---

def test_own_schema_on_mysql(maria, godwit_root, cert):
    g = make_sql_godwit(godwit_root, "own_mysql", cert,
                        {"backend": "mysql",
                         "dsn": maria.dsn + " connect_timeout=3"})
    try:
        g.start()
        # what the admin commands wrote is in MariaDB's tables
        out = g.admin("user", "list", DOMAIN).stdout
        assert ALICE in out and BOB in out
        # the same database through the server's Unix socket (the admin
        # commands run as root; the socket's directory is mysql's)
        sock_cfg = g.base / "socket.yaml"
        sock_cfg.write_text(g.cfg_path.read_text().replace(
            maria.dsn, maria.socket_dsn()))
        assert maria.socket_dsn() in sock_cfg.read_text()
        p = g.run("-c", sock_cfg, "user", "list", DOMAIN, global_cfg=False)
        assert p.returncode == 0 and ALICE in p.stdout, p.stderr
        assert rcpt(g, ALICE)[0] == 250
        assert rcpt(g, f"team@{DOMAIN}")[0] == 250
        code, msg = rcpt(g, f"nobody@{DOMAIN}")
        assert code == 550, msg
        assert pop3_login(g, ALICE, PASSWORD)[0] >= 0
        assert imap_login(g, BOB, PASSWORD) >= 0
        assert smtp_auth(g, ALICE, PASSWORD) == 235
        assert pop3_scram(g, ALICE, PASSWORD).startswith("+OK")
        assert pop3_error(g, ALICE, "wrong").startswith("-ERR [AUTH]")
        # a change made now is seen by the running daemon
        g.admin("user", "passwd", BOB, "--password-stdin",
                input="another pass phrase\n")
        assert pop3_login(g, BOB, "another pass phrase")[0] >= 0
        g.admin("user", "add", f"carol@{DOMAIN}", "--password-stdin",
                input=PASSWORD + "\n")
        assert rcpt(g, f"carol@{DOMAIN}")[0] == 250
        g.admin("user", "del", f"carol@{DOMAIN}")
        assert rcpt(g, f"carol@{DOMAIN}")[0] == 550
    finally:
        finish(g)


def test_sqlite_export_import_to_mysql(maria, godwit_root, cert):
    """godwit db export on SQLite, db import on MariaDB: the users log in
    with their passwords, SCRAM included, and the aliases resolve."""
    src = Godwit(godwit_base(godwit_root, "sqlite_src"))
    dump = src.base / "users.dump"
    src.admin("db", "export", dump)
    maria.sql("CREATE DATABASE imported CHARACTER SET utf8mb4 "
              "COLLATE utf8mb4_bin;"
              f"GRANT ALL ON imported.* TO '{maria.user}'@'%';"
              f"GRANT ALL ON imported.* TO '{maria.user}'@'localhost';",
              root=True)
    g = make_sql_godwit(godwit_root, "imported", cert,
                        {"backend": "mysql", "dsn": maria.dsn.replace(
                            f"dbname={maria.database}", "dbname=imported")},
                        cls=BareSqlGodwit)
    try:
        g.admin("db", "import", dump)
        g.start()
        assert rcpt(g, f"team@{DOMAIN}")[0] == 250
        assert pop3_login(g, BOB, PASSWORD)[0] >= 0
        assert pop3_scram(g, ALICE, PASSWORD).startswith("+OK")
    finally:
        finish(g)
        finish(src)


# ---------------------------------------- a PostfixAdmin-style schema ---

# The three tables of PostfixAdmin that mail delivery reads, written from
# its documented columns (not its files).
PFA_SCHEMA = """
CREATE TABLE domain (
  domain VARCHAR(255) NOT NULL,
  description VARCHAR(255) NOT NULL DEFAULT '',
  aliases INT NOT NULL DEFAULT 0,
  mailboxes INT NOT NULL DEFAULT 0,
  maxquota BIGINT NOT NULL DEFAULT 0,
  quota BIGINT NOT NULL DEFAULT 0,
  transport VARCHAR(255) DEFAULT NULL,
  backupmx TINYINT(1) NOT NULL DEFAULT 0,
  created DATETIME NOT NULL DEFAULT '2000-01-01 00:00:00',
  modified DATETIME NOT NULL DEFAULT '2000-01-01 00:00:00',
  active TINYINT(1) NOT NULL DEFAULT 1,
  PRIMARY KEY (domain)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE mailbox (
  username VARCHAR(255) NOT NULL,
  password VARCHAR(255) NOT NULL,
  name VARCHAR(255) NOT NULL DEFAULT '',
  maildir VARCHAR(255) NOT NULL,
  quota BIGINT NOT NULL DEFAULT 0,
  local_part VARCHAR(255) NOT NULL,
  domain VARCHAR(255) NOT NULL,
  created DATETIME NOT NULL DEFAULT '2000-01-01 00:00:00',
  modified DATETIME NOT NULL DEFAULT '2000-01-01 00:00:00',
  active TINYINT(1) NOT NULL DEFAULT 1,
  PRIMARY KEY (username),
  KEY domain (domain)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE alias (
  address VARCHAR(255) NOT NULL,
  goto TEXT NOT NULL,
  domain VARCHAR(255) NOT NULL,
  created DATETIME NOT NULL DEFAULT '2000-01-01 00:00:00',
  modified DATETIME NOT NULL DEFAULT '2000-01-01 00:00:00',
  active TINYINT(1) NOT NULL DEFAULT 1,
  PRIMARY KEY (address),
  KEY domain (domain)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
"""

# The queries as a Postfix/Dovecot setup over PostfixAdmin writes them
# (quoted placeholders included).
PFA_QUERIES = {
    "domain": "SELECT domain FROM domain WHERE domain = '%s' "
              "AND backupmx = '0' AND active = '1'",
    "user": "SELECT maildir FROM mailbox WHERE username = '%s' "
            "AND active = '1'",
    "password": "SELECT password FROM mailbox WHERE local_part = '%u' "
                "AND domain = '%d' AND active = '1'",
    "alias": "SELECT goto FROM alias WHERE address = '%s' AND active = '1'",
    "domains": "SELECT domain FROM domain WHERE active = '1' "
               "AND backupmx = '0'",
}

CAROL_PW = "carol's own pass"


def doveadm_pw(scheme, password):
    p = subprocess.run([shutil.which("doveadm") or "/usr/bin/doveadm", "pw",
                        "-s", scheme, "-p", password],
                       capture_output=True, text=True, timeout=60,
                       check=True)
    h = p.stdout.strip()
    assert h.startswith("{" + scheme + "}"), h
    return h


def sql_str(s):
    return "'" + s.replace("\\", "\\\\").replace("'", "''") + "'"


@pytest.fixture(scope="module")
def pfa(maria, godwit_root, cert):
    """MariaDB database `postfixadmin` with alice ({BLF-CRYPT}), bob
    ({SHA512-CRYPT}), an inactive carol, alice's and bob's self-aliases
    (as PostfixAdmin makes them), team@ -> "alice, bob" and a catch-all
    of other.test; and a godwit reading it through userdb.queries."""
    maria.sql("CREATE DATABASE postfixadmin CHARACTER SET utf8mb4;"
              f"GRANT SELECT ON postfixadmin.* TO '{maria.user}'@'%';"
              f"GRANT SELECT ON postfixadmin.* TO '{maria.user}'@'localhost';"
              "CREATE DATABASE pfa_admin_only;", root=True)
    rows = []
    for local, scheme, pw, active in (
            ("alice", "BLF-CRYPT", PASSWORD, 1),
            ("bob", "SHA512-CRYPT", PASSWORD, 1),
            ("carol", "SHA512-CRYPT", CAROL_PW, 0)):
        rows.append(
            "INSERT INTO mailbox (username, password, maildir, local_part, "
            f"domain, active) VALUES ('{local}@{DOMAIN}', "
            f"{sql_str(doveadm_pw(scheme, pw))}, "
            f"'{DOMAIN}/{local}/', '{local}', '{DOMAIN}', {active});"
            "INSERT INTO alias (address, goto, domain, active) VALUES "
            f"('{local}@{DOMAIN}', '{local}@{DOMAIN}', '{DOMAIN}', "
            f"{active});")
    maria.sql(
        "USE postfixadmin;" + PFA_SCHEMA +
        f"INSERT INTO domain (domain, description) VALUES ('{DOMAIN}', "
        "'ours'), ('other.test', 'a catch-all to alice');"
        "INSERT INTO domain (domain, backupmx) VALUES ('backup.test', 1);"
        + "".join(rows) +
        "INSERT INTO alias (address, goto, domain) VALUES "
        f"('team@{DOMAIN}', 'alice@{DOMAIN}, Bob@{DOMAIN},', '{DOMAIN}'),"
        f"('@other.test', 'alice@{DOMAIN}', 'other.test');",
        root=True)
    dsn = maria.dsn.replace(f"dbname={maria.database}",
                            "dbname=postfixadmin")
    g = make_sql_godwit(godwit_root, "pfa", cert,
                        {"backend": "mysql", "dsn": dsn,
                         "queries": PFA_QUERIES},
                        users=(), aliases={})
    g.start()
    yield g
    finish(g)


def test_pfa_rcpt(pfa):
    assert rcpt(pfa, ALICE)[0] == 250
    assert rcpt(pfa, BOB)[0] == 250
    assert rcpt(pfa, f"team@{DOMAIN}")[0] == 250
    assert rcpt(pfa, "whoever@other.test")[0] == 250
    code, msg = rcpt(pfa, f"nobody@{DOMAIN}")
    assert code == 550, msg
    # inactive: neither a mailbox nor an alias
    code, msg = rcpt(pfa, f"carol@{DOMAIN}")
    assert code == 550, msg
    # a backup MX domain is not ours: relaying refused
    code, msg = rcpt(pfa, "x@backup.test")
    assert code == 554 or code // 100 == 5, msg
    # an address that looks like SQL is only ever a value
    code, msg = rcpt(pfa, f"x'or'1'='1@{DOMAIN}")
    assert code // 100 == 5, msg


def test_pfa_delivery_through_alias(pfa, uniq):
    with pfa.smtp() as s:
        s.sendmail("someone@remote.test", [f"team@{DOMAIN}"],
                   f"Subject: {uniq}\r\n\r\nto the team\r\n")
    pfa.wait_messages(ALICE, 1)
    pfa.wait_messages(BOB, 1)


def test_pfa_logins(pfa):
    # {BLF-CRYPT} (bcrypt) and {SHA512-CRYPT} hashes made by doveadm
    assert pop3_login(pfa, ALICE, PASSWORD)[0] >= 0
    assert pop3_login(pfa, BOB, PASSWORD)[0] >= 0
    assert imap_login(pfa, ALICE, PASSWORD) >= 0
    assert smtp_auth(pfa, BOB, PASSWORD) == 235
    assert pop3_error(pfa, ALICE, "wrong").startswith("-ERR [AUTH]")
    # inactive mailbox: no login, even with its password
    assert pop3_error(pfa, f"carol@{DOMAIN}", CAROL_PW).startswith(
        "-ERR [AUTH]")
    # no SCRAM secret in this schema: refused, not a temporary failure
    r = pop3_scram(pfa, ALICE, PASSWORD)
    assert r.startswith("-ERR") and "SYS/TEMP" not in r, r


def test_pfa_readonly(pfa):
    for args, inp in (
            (("user", "add", f"dave@{DOMAIN}", "--password-stdin"),
             PASSWORD + "\n"),
            (("user", "passwd", ALICE, "--password-stdin"), "x y z w\n"),
            (("domain", "add", "new.test"), None),
            (("alias", "add", f"x@{DOMAIN}", ALICE), None),
            (("db", "init"), None)):
        p = pfa.run(*args, input=inp)
        assert p.returncode != 0, (args, p.stdout)
        assert "read-only" in p.stderr and "userdb.queries" in p.stderr, \
            (args, p.stderr)
    assert rcpt(pfa, f"dave@{DOMAIN}")[0] == 550
    # the domains query serves the commands that list domains
    p = pfa.run("domain", "list")
    assert p.returncode == 0 and DOMAIN in p.stdout and \
        "other.test" in p.stdout and "backup.test" not in p.stdout, p


def test_pfa_config_check(pfa, tmp_path):
    cfg = pfa.cfg_path.read_text()
    bad = cfg.replace("AND backupmx = '0' AND active = '1'",
                      "AND x = '%x'", 1)
    assert bad != cfg
    f = tmp_path / "bad.yaml"
    f.write_text(bad)
    p = pfa.run("-c", str(f), "config", "check", global_cfg=False)
    assert p.returncode != 0
    line = next(i for i, l in enumerate(bad.splitlines(), 1) if "%x" in l)
    assert f"{f}:{line}" in p.stderr + p.stdout, p.stderr + p.stdout
    assert "userdb.queries.domain" in p.stderr + p.stdout
    # valid as a query, refused by the server: the admin commands (which
    # run each query once at the start) say which and why
    bad = cfg.replace("SELECT maildir FROM mailbox", "SELECT maildir FROM "
                      "mailboxes", 1)
    assert bad != cfg
    f.write_text(bad)
    p = pfa.run("-c", str(f), "domain", "list", global_cfg=False)
    assert p.returncode != 0
    assert "userdb.queries.user" in p.stderr and "mailboxes" in p.stderr, \
        p.stderr


def test_pfa_database_down_then_back(pfa, maria):
    assert rcpt(pfa, ALICE)[0] == 250
    maria.stop()
    try:
        code, msg = rcpt(pfa, ALICE)
        assert (code, msg[:5]) == (451, b"4.3.0"), (code, msg)
        r = pop3_error(pfa, BOB, PASSWORD)
        assert r.startswith("-ERR [SYS/TEMP]"), r
        with pytest.raises(imaplib.IMAP4.error, match="UNAVAILABLE"):
            imap_login(pfa, ALICE, PASSWORD)
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            smtp_auth(pfa, BOB, PASSWORD)
        assert e.value.smtp_code == 454, e.value
    finally:
        maria.start()
    # served again, without restarting godwit (a reconnect after a
    # pause of a second at most)
    wait_for(lambda: rcpt(pfa, ALICE)[0] == 250, 15, interval=0.3,
             what="RCPT accepted again")

    def pop3_ok():
        try:
            return pop3_login(pfa, BOB, PASSWORD)[0] >= 0
        except poplib.error_proto as e:
            # the auth side has its own connection, and waits a second
            # after a failed connect before the next
            assert b"SYS/TEMP" in e.args[0], e
            return False
    wait_for(pop3_ok, 15, interval=0.3, what="POP3 login again")
    assert pfa.running()
    log = pfa.log_text()
    assert "fac=userdb event=disconnected backend=mysql" in log
    assert "fac=userdb event=reconnected backend=mysql" in log


# ------------------------------- the same queries over PostgreSQL ---

PFA_SCHEMA_PG = """
CREATE TABLE domain (
  domain VARCHAR(255) PRIMARY KEY,
  description VARCHAR(255) NOT NULL DEFAULT '',
  backupmx BOOLEAN NOT NULL DEFAULT false,
  active BOOLEAN NOT NULL DEFAULT true);
CREATE TABLE mailbox (
  username VARCHAR(255) PRIMARY KEY,
  password VARCHAR(255) NOT NULL,
  maildir VARCHAR(255) NOT NULL,
  local_part VARCHAR(255) NOT NULL,
  domain VARCHAR(255) NOT NULL,
  active BOOLEAN NOT NULL DEFAULT true);
CREATE TABLE alias (
  address VARCHAR(255) PRIMARY KEY,
  goto TEXT NOT NULL,
  domain VARCHAR(255) NOT NULL,
  active BOOLEAN NOT NULL DEFAULT true);
"""


def test_pfa_on_postgresql(godwit_root, cert):
    """userdb.queries is the same over backend postgresql (PostfixAdmin's
    PostgreSQL schema has booleans: active = '1' still reads them)."""
    import pg_peer
    why = pg_peer.available()
    if why is not None:
        pytest.skip(why)
    pg = pg_peer.PgPeer(godwit_base(godwit_root, "pg") / "pg")
    pg.start()
    g = None
    try:
        pg.createdb("pfa")
        pg.psql("pfa", PFA_SCHEMA_PG +
                f"INSERT INTO domain (domain) VALUES ('{DOMAIN}');"
                "INSERT INTO mailbox (username, password, maildir, "
                f"local_part, domain) VALUES ('{ALICE}', "
                f"{sql_str(doveadm_pw('SHA512-CRYPT', PASSWORD))}, "
                f"'{DOMAIN}/alice/', 'alice', '{DOMAIN}');"
                "INSERT INTO alias (address, goto, domain) VALUES "
                f"('team@{DOMAIN}', 'alice@{DOMAIN},bob@{DOMAIN}', "
                f"'{DOMAIN}');")
        g = make_sql_godwit(godwit_root, "pfa_pg", cert,
                            {"backend": "postgresql", "dsn": pg.dsn("pfa"),
                             "queries": PFA_QUERIES},
                            users=(), aliases={})
        g.start()
        assert rcpt(g, ALICE)[0] == 250
        assert rcpt(g, f"team@{DOMAIN}")[0] == 250
        assert rcpt(g, f"nobody@{DOMAIN}")[0] == 550
        assert pop3_login(g, ALICE, PASSWORD)[0] >= 0
        p = g.run("user", "add", f"dave@{DOMAIN}", "--password-stdin",
                  input=PASSWORD + "\n")
        assert p.returncode != 0 and "read-only" in p.stderr, p.stderr
    finally:
        if g is not None:
            finish(g)
        pg.destroy()
