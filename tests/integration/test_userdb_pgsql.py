"""
The user database on a real PostgreSQL 15 (pg_peer.py, one private
cluster for the module, a fresh database per test): `godwit db
init|migrate|export|import`, the admin commands, and the daemon with
`userdb: {backend: postgresql}` — RCPT, POP3 (poplib), IMAP (imaplib),
SMTP AUTH PLAIN and SCRAM-SHA-256 (smtplib), users moved from SQLite by
export/import — and what happens when PostgreSQL goes away and comes back
while the daemon runs, or is down when it starts, and logins served by
auth.cache_ttl while it is stopped.
"""

import base64
import hashlib
import hmac
import imaplib
import json
import os
import poplib
import shutil
import smtplib
import tempfile
import time

import pytest

from conftest import PASSWORD, free_port, wait_for
import pg_peer

why = pg_peer.available()
pytestmark = pytest.mark.skipif(why is not None, reason=why or "")

ALICE = "alice@example.test"
BOB = "bob@example.test"


@pytest.fixture(scope="module")
def pg():
    # not below pytest's 0700 directory: the postgres user must reach it
    base = tempfile.mkdtemp(prefix="godwit-pg-")
    os.chmod(base, 0o755)
    peer = pg_peer.PgPeer(os.path.join(base, "cluster")).start()
    yield peer
    peer.destroy()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pgdb(pg, request):
    """A fresh database for this test, and pg running."""
    if not pg.running():
        pg.start()
    name = "t_" + request.node.name.lower()[:40].replace("[", "_").replace(
        "]", "_").replace("-", "_")
    pg.psql("postgres", f'DROP DATABASE IF EXISTS "{name}"')
    return pg.createdb(name)


def use_pg(g, pg, db, **extra):
    u = {"backend": "postgresql", "dsn": pg.dsn(db), "connect_timeout": "2s"}
    u.update(extra)
    g.config["userdb"] = u
    g.write_config()


def with_listeners(g, cert):
    crt, key = cert
    g.pop3_port, g.imap_port, g.sub_port = free_port(), free_port(), free_port()
    g.config["tls"] = {"certificates": [{"cert": str(crt), "key": str(key)}]}
    g.config["listeners"] += [
        {"name": "pop3", "protocol": "pop3", "plaintext_auth": True,
         "listen": [f"127.0.0.1:{g.pop3_port}"]},
        {"name": "imap", "protocol": "imap", "plaintext_auth": True,
         "listen": [f"127.0.0.1:{g.imap_port}"]},
        {"name": "submission", "protocol": "submission",
         "plaintext_auth": True, "listen": [f"127.0.0.1:{g.sub_port}"]},
    ]
    g.write_config()


def rcpt(g, addr):
    s = smtplib.SMTP("127.0.0.1", g.port, timeout=20)
    try:
        s.ehlo("client.test")
        s.mail("someone@remote.test")
        return s.rcpt(addr)
    finally:
        s.close()


def pop3_login(g, user=ALICE, password=PASSWORD):
    p = poplib.POP3("127.0.0.1", g.pop3_port, timeout=20)
    try:
        p.user(user)
        return p.pass_(password)
    finally:
        try:
            p.quit()
        except Exception:
            p.close()


def imap_login(g, user=ALICE, password=PASSWORD):
    m = imaplib.IMAP4("127.0.0.1", g.imap_port, timeout=20)
    try:
        return m.login(user, password)
    finally:
        try:
            m.logout()
        except Exception:
            pass


def scram_login(g, user=ALICE, password=PASSWORD):
    """SMTP AUTH SCRAM-SHA-256 through smtplib's challenge loop, the
    client side written from RFC 5802 here."""
    cnonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = f"n={user},r={cnonce}"
    state = {}

    def step(challenge=None):
        if challenge is None:
            return "n,," + first_bare
        text = challenge.decode()
        if "v" not in state and text.startswith("r="):
            attrs = dict(a.split("=", 1) for a in text.split(","))
            salted = hashlib.pbkdf2_hmac(
                "sha256", password.encode(), base64.b64decode(attrs["s"]),
                int(attrs["i"]))
            ckey = hmac.new(salted, b"Client Key", "sha256").digest()
            stored = hashlib.sha256(ckey).digest()
            final_nop = f"c=biws,r={attrs['r']}"
            auth_msg = f"{first_bare},{text},{final_nop}".encode()
            sig = hmac.new(stored, auth_msg, "sha256").digest()
            proof = bytes(a ^ b for a, b in zip(ckey, sig))
            skey = hmac.new(salted, b"Server Key", "sha256").digest()
            state["v"] = b"v=" + base64.b64encode(
                hmac.new(skey, auth_msg, "sha256").digest())
            return f"{final_nop},p={base64.b64encode(proof).decode()}"
        assert challenge == state["v"], challenge
        return ""

    s = smtplib.SMTP("127.0.0.1", g.sub_port, timeout=20)
    try:
        s.ehlo("client.test")
        return s.auth("SCRAM-SHA-256", step, initial_response_ok=True)
    finally:
        s.close()


def plain_login(g, user=ALICE, password=PASSWORD):
    s = smtplib.SMTP("127.0.0.1", g.sub_port, timeout=20)
    try:
        s.ehlo("client.test")
        return s.login(user, password)
    finally:
        s.close()


# ---- schema and admin commands ---------------------------------------------


def test_db_init_migrate_and_admin_commands(make_godwit, pg, pgdb):
    g = make_godwit(start=False, users=(), aliases=None)
    use_pg(g, pg, pgdb)
    # no schema yet: the admin commands say so instead of failing later
    r = g.run("domain", "list")
    assert r.returncode == 1
    r = g.run("db", "init", check=True)
    assert "migration 1:" in r.stdout and "schema version 1" in r.stdout
    assert pg.psql(pgdb, "SELECT version FROM godwit_schema") == "1"
    r = g.run("db", "init")
    assert r.returncode == 1 and "already has a godwit schema" in r.stderr
    for _ in range(2):
        r = g.run("db", "migrate", check=True)
        assert "up to date" in r.stdout, r.stdout
    assert pg.psql(pgdb, "SELECT count(*) FROM godwit_schema") == "1"

    a = g.admin
    a("domain", "add", "Example.TEST")
    assert a("domain", "add", "example.test", check=False).returncode == 1
    a("user", "add", ALICE, "--password-stdin", input=PASSWORD + "\n")
    a("user", "add", "Bob@Example.test", "--password-stdin",
      input=PASSWORD + "\n")
    assert a("user", "add", "x@nowhere.test", "--password-stdin",
             input="p\n", check=False).returncode == 1
    a("alias", "add", "@example.test", ALICE)
    a("alias", "add", "team@example.test", ALICE)
    a("alias", "add", "team@example.test", BOB)
    assert a("domain", "list").stdout.split() == ["example.test"]
    assert a("user", "list").stdout.split() == [ALICE, BOB]
    assert a("alias", "list", "example.test").stdout.splitlines() == [
        f"@example.test {ALICE}", f"team@example.test {ALICE}",
        f"team@example.test {BOB}"]
    r = a("domain", "del", "example.test", check=False)
    assert r.returncode == 1 and "still has 2 users" in r.stderr
    r = a("alias", "add", ALICE, BOB, check=False)
    assert r.returncode == 1 and "is a user" in r.stderr
    a("user", "passwd", BOB, "--password-stdin", input="new pw 1\n")
    # stored lower-case, with every secret form
    rows = pg.psql(pgdb, "SELECT address, scram_sha256 IS NOT NULL"
                   " FROM users ORDER BY address")
    assert rows.splitlines() == [f"{ALICE}|t", f"{BOB}|t"]
    a("alias", "del", "team@example.test", BOB)
    a("alias", "del", "team@example.test")
    a("alias", "del", "@example.test")
    a("user", "del", BOB)
    a("user", "del", ALICE)
    a("domain", "del", "example.test")
    assert a("domain", "list").stdout == ""
    r = g.run("config", "check")
    assert r.returncode == 0, r.stderr


def test_config_check_reports_userdb_mistakes(make_godwit, pg, pgdb):
    g = make_godwit(start=False, users=(), aliases=None)
    base = open(g.cfg_path).read()
    cases = [
        ("userdb:\n  backend: postgresql\n", "needs dsn"),
        ("userdb:\n  backend: sqlite\n  dsn: \"host=x\"\n",
         "userdb.dsn: only for backend postgresql or mysql"),
        ("userdb:\n  backend: postgresql\n  dsn: \"host=x\"\n"
         "  path: /tmp/x.sqlite\n", "userdb.path: only for backend sqlite"),
        ("userdb:\n  backend: oracle\n", "userdb.backend"),
        ("userdb:\n  backend: sqlite\n  driver: sqlite\n",
         "old spelling"),
        ("userdb:\n  backend: postgresql\n  dsn: \"x\"\n"
         "  connect_timeout: 0s\n", "userdb.connect_timeout"),
    ]
    for extra, want in cases:
        text = "\n".join(l for l in base.splitlines()
                         if not l.startswith("userdb")) + "\n" + extra
        g.write_config(raw=text)
        r = g.run("config", "check")
        assert r.returncode != 0, (extra, r.stdout, r.stderr)
        assert want in r.stderr, (extra, r.stderr)
        assert f"{g.cfg_path}:" in r.stderr, r.stderr   # file:line
    # the old spelling alone still works
    g.write_config(raw="\n".join(l for l in base.splitlines()
                                 if not l.startswith("userdb"))
                   + "\nuserdb:\n  driver: sqlite\n")
    r = g.run("domain", "list")
    assert r.returncode == 0, r.stderr


# ---- the daemon ----------------------------------------------------------------


def test_move_from_sqlite_and_serve_from_postgresql(make_godwit, pg, pgdb,
                                                    cert, tmp_path):
    # the default instance's users and aliases, made in SQLite
    g = make_godwit(start=False)
    dump = tmp_path / "dump.jsonl"
    r = g.run("db", "export", dump, check=True)
    assert "exported 1 domains, 2 users" in r.stderr
    lines = [json.loads(l) for l in dump.read_text().splitlines()]
    assert lines[0] == {"format": "godwit-userdb", "version": 1}
    assert lines[-1]["type"] == "end" and lines[-1]["users"] == 2
    users = [l for l in lines if l.get("type") == "user"]
    assert all(u["hash"] and u["scram"] for u in users)
    assert (os.stat(dump).st_mode & 0o777) == 0o600
    sqlite_aliases = g.admin("alias", "list").stdout

    use_pg(g, pg, pgdb)
    g.run("db", "init", check=True)
    r = g.run("db", "import", dump, check=True)
    assert "imported 1 domains, 2 users" in r.stdout, r.stdout
    # again: refused as a whole, nothing changed
    r = g.run("db", "import", dump)
    assert r.returncode == 1 and "exists" in r.stderr
    r = g.run("db", "import", "--replace", dump, check=True)
    assert "2 users replaced" in r.stdout, r.stdout
    assert g.admin("alias", "list").stdout == sqlite_aliases
    # a torn dump is refused before anything is written
    torn = tmp_path / "torn.jsonl"
    torn.write_text("\n".join(dump.read_text().splitlines()[:-1]) + "\n")
    r = g.run("db", "import", "--replace", torn)
    assert r.returncode == 1 and "no end line" in r.stderr

    # every login asks the database (test_auth_cache_ttl_while_... shows
    # the cache)
    g.config.setdefault("auth", {})["cache_ttl"] = 0
    with_listeners(g, cert)
    g.start()
    assert rcpt(g, ALICE)[0] == 250
    assert rcpt(g, "postmaster@example.test")[0] == 250
    code, msg = rcpt(g, "nobody@other.test")
    assert code >= 500, (code, msg)
    assert pop3_login(g).startswith(b"+OK")
    assert imap_login(g)[0] == "OK"
    assert plain_login(g, BOB)[0] == 235
    assert scram_login(g)[0] == 235
    with pytest.raises(poplib.error_proto):
        pop3_login(g, password="wrong")

    # PostgreSQL goes away: temporary failures, the daemon stays up
    pg.stop()
    code, msg = rcpt(g, BOB)
    assert code == 451 and msg.startswith(b"4.3.0"), (code, msg)
    time.sleep(1.1)     # past the reconnect limit: a real attempt
    with pytest.raises(poplib.error_proto) as e:
        pop3_login(g)
    assert b"[SYS/TEMP]" in e.value.args[0], e.value.args
    time.sleep(1.1)
    with pytest.raises(smtplib.SMTPAuthenticationError) as e:
        plain_login(g)
    assert e.value.smtp_code == 454, e.value
    time.sleep(1.1)
    with pytest.raises(imaplib.IMAP4.error) as e:
        imap_login(g)
    assert "UNAVAILABLE" in str(e.value), e.value
    assert g.running()
    # ... and comes back: no restart of godwit needed
    pg.start()
    wait_for(lambda: rcpt(g, BOB)[0] == 250, 15, interval=0.3,
             what="RCPT to work again")
    # each worker's auth thread reconnects on its own, at most once a
    # second: the first login it sees may still fail
    wait_for(lambda: _pop3_ok(g), 15, interval=0.3, what="POP3 login")
    wait_for(lambda: _imap_ok(g), 15, interval=0.3, what="IMAP login")
    log = g.log_text()
    assert "fac=userdb event=disconnected" in log
    assert "fac=userdb event=reconnected" in log
    # a restart while godwit is idle costs no failed lookup: a stale
    # connection is replaced at once (both workers, both protocols)
    time.sleep(1.1)
    pg.stop()
    pg.start()
    for _ in range(4):
        assert rcpt(g, BOB)[0] == 250
    assert pop3_login(g).startswith(b"+OK")


def _imap_ok(g):
    try:
        return imap_login(g)[0] == "OK"
    except imaplib.IMAP4.error:
        return False


def _scram_ok(g):
    try:
        return scram_login(g)[0] == 235
    except smtplib.SMTPAuthenticationError:
        return False


def _pop3_ok(g):
    try:
        return pop3_login(g).startswith(b"+OK")
    except poplib.error_proto:
        return False


def test_daemon_starts_while_postgresql_is_down(make_godwit, pg, pgdb,
                                                cert):
    g = make_godwit(start=False, users=(), aliases=None)
    use_pg(g, pg, pgdb)
    g.run("db", "init", check=True)
    g.admin("domain", "add", "example.test")
    g.admin("user", "add", ALICE, "--password-stdin", input=PASSWORD + "\n")
    with_listeners(g, cert)
    pg.stop()
    r = g.run("domain", "list")
    assert r.returncode == 1 and "user database" in r.stderr, r.stderr
    g.start()
    code, msg = rcpt(g, ALICE)
    assert code == 451 and msg.startswith(b"4.3.0"), (code, msg)
    code, _ = rcpt(g, "nobody@other.test")
    assert code in (451, 550, 554), code
    pg.start()
    wait_for(lambda: rcpt(g, ALICE)[0] == 250, 15, interval=0.3,
             what="RCPT to work once PostgreSQL is up")
    wait_for(lambda: _pop3_ok(g), 15, interval=0.3, what="POP3 login")
    wait_for(lambda: _scram_ok(g), 15, interval=0.3, what="SCRAM login")


def test_auth_cache_ttl_while_postgresql_is_down(make_godwit, pg, pgdb,
                                                cert):
    """auth.cache_ttl: within it after a login PostgreSQL confirmed, the
    same password logs in again (POP3 USER/PASS, IMAP LOGIN) while
    PostgreSQL is stopped; past it, or with another password, the
    temporary failure as without a cache."""
    ttl = 5.0
    g = make_godwit(start=False, users=(), aliases=None)
    use_pg(g, pg, pgdb)
    g.run("db", "init", check=True)
    g.admin("domain", "add", "example.test")
    g.admin("user", "add", ALICE, "--password-stdin", input=PASSWORD + "\n")
    g.config["workers"] = 1     # one worker: one cache
    g.config["auth"] = {"cache_ttl": "5s", "delay_base": "10ms",
                        "delay_max": "20ms"}
    with_listeners(g, cert)
    g.start()
    assert pop3_login(g).startswith(b"+OK")
    confirmed = time.monotonic()
    pg.stop()
    try:
        assert time.monotonic() - confirmed < ttl - 1, "pg.stop too slow"
        assert pop3_login(g).startswith(b"+OK")
        assert imap_login(g)[0] == "OK"
        # not the cached password: the database, which is down
        with pytest.raises(poplib.error_proto) as e:
            pop3_login(g, password="wrong")
        assert b"[SYS/TEMP]" in e.value.args[0], e.value.args
        time.sleep(max(0.0, confirmed + ttl + 0.2 - time.monotonic()))
        with pytest.raises(poplib.error_proto) as e:
            pop3_login(g)
        assert b"[SYS/TEMP]" in e.value.args[0], e.value.args
    finally:
        pg.start()
    wait_for(lambda: _pop3_ok(g), 15, interval=0.3, what="POP3 login")


def test_db_commands_on_sqlite(make_godwit, tmp_path):
    """db init/migrate/export/import mean the same on SQLite, whose
    writing admin commands make the schema anyway."""
    g = make_godwit(start=False)
    r = g.run("db", "init")
    assert r.returncode == 1 and "already has a godwit schema" in r.stderr
    r = g.run("db", "migrate", check=True)
    assert "up to date" in r.stdout, r.stdout
    dump = g.run("db", "export", "-", check=True).stdout
    users = g.admin("user", "list").stdout
    aliases = g.admin("alias", "list").stdout
    g.config["userdb"] = {"path": str(g.data_dir / "db" / "new.sqlite")}
    g.write_config()
    r = g.run("db", "init", check=True)
    assert "created schema version" in r.stdout, r.stdout
    r = g.run("db", "import", input=dump, check=True)
    assert "imported 1 domains, 2 users" in r.stdout, r.stdout
    assert g.admin("user", "list").stdout == users
    assert g.admin("alias", "list").stdout == aliases
    r = g.run("db", "import", "-", "--replace", input=dump, check=True)
    assert "2 users replaced" in r.stdout
    # a line that is not ours: refused with its line number
    bad = dump.replace('"type":"alias"', '"type":"group"', 1)
    r = g.run("db", "import", "--replace", input=bad)
    assert r.returncode == 1 and "stdin:" in r.stderr and "unknown type" \
        in r.stderr, r.stderr
    g.start()
    assert rcpt(g, ALICE)[0] == 250
    assert rcpt(g, "postmaster@example.test")[0] == 250


def test_daemon_on_a_database_without_schema(make_godwit, pg, pgdb):
    """A daemon pointed at an empty database answers 451 and says why in
    its log; `godwit db init` and the admin commands fix it live."""
    g = make_godwit(start=False, users=(), aliases=None)
    use_pg(g, pg, pgdb)
    g.start()
    code, msg = rcpt(g, ALICE)
    assert code == 451 and msg.startswith(b"4.3.0"), (code, msg)
    wait_for(lambda: "fac=userdb event=query-failed" in g.log_text(), 10,
             what="the query error in the log")
    g.run("db", "init", check=True)
    g.admin("domain", "add", "example.test")
    g.admin("user", "add", ALICE, "--password-stdin", input=PASSWORD + "\n")
    assert rcpt(g, ALICE)[0] == 250
