/*
 * The user database on a network SQL server (PostgreSQL, MySQL/MariaDB):
 * every userdb_ops operation over one store/sqldrv.h connection, with
 * the SQL written once for both engines. What differs between them (the
 * types in the schema, how to ask whether a table exists, locking during
 * a migration) is a small per-dialect table.
 *
 * The tables hold what the SQLite backend holds, with the same meaning:
 * domains, users (the libcrypt hash, the SCRAM-SHA-256 secret, the
 * CRAM-MD5 secret), aliases with their source's domain; every key
 * lower-case, a catch-all's source "@domain". The schema is a list of
 * numbered migrations compiled in; godwit_schema records which ran.
 *
 * Connections are lazy and self-healing: the first operation connects,
 * an operation that finds the connection lost returns -1 (the session
 * answers with a temporary failure) and drops it, and the next operation
 * connects again, at most once a second so that a dead server is not
 * hammered by every lookup. A SELECT on a connection that went stale
 * while idle (the server restarted) is tried once more at once, over a
 * new connection. The loss and the return are logged once each.
 *
 * Every value reaches SQL as a parameter ($1..$n, each once and in
 * order, which both drivers bind); none is spliced into the text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/log.h"
#include "lib/xalloc.h"
#include "store/sqldrv.h"
#include "store/userdb.h"

struct migration {
	int version;
	const char *what;
	const char *const *stmts; /* NULL-terminated, one statement each */
};

struct dialect {
	const char *begin, *commit, *rollback;
	/* count(*) of tables named $1 in the connection's schema */
	const char *table_exists;
	/* creates godwit_schema when missing */
	const char *schema_table;
	/* inside a migration's transaction, before reading the version
	 * again: keeps two nodes from running one migration twice (NULL:
	 * the engine has no transactional DDL anyway) */
	const char *lock_schema;
	const struct migration *migrations;
	size_t nmigrations;
};

/* ---- PostgreSQL ------------------------------------------------------- */

/* lower(x COLLATE "C") lower-cases ASCII only, as the normalisation does
 * (a non-ASCII local part keeps its case). */
static const char *const pg_v1[] = {
	"CREATE TABLE domains ("
	" name VARCHAR(255) PRIMARY KEY"
	" CHECK (name = lower(name COLLATE \"C\")))",
	"CREATE TABLE users ("
	" address VARCHAR(320) PRIMARY KEY"
	" CHECK (address = lower(address COLLATE \"C\")),"
	" domain VARCHAR(255) NOT NULL REFERENCES domains (name),"
	" password_hash TEXT NOT NULL,"
	" scram_sha256 TEXT,"
	" cram_secret TEXT,"
	" created TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)",
	"CREATE INDEX users_domain ON users (domain)",
	"CREATE TABLE aliases ("
	" source VARCHAR(320) NOT NULL"
	" CHECK (source = lower(source COLLATE \"C\")),"
	" domain VARCHAR(255) NOT NULL REFERENCES domains (name),"
	" target VARCHAR(320) NOT NULL,"
	" PRIMARY KEY (source, target))",
	"CREATE INDEX aliases_domain ON aliases (domain)",
	NULL,
};

static const struct migration pg_migrations[] = {
	{1, "domains, users (hash, scram, cram), aliases", pg_v1},
};

static const struct dialect dialect_pgsql = {
	.begin = "BEGIN",
	.commit = "COMMIT",
	.rollback = "ROLLBACK",
	.table_exists = "SELECT count(*) FROM information_schema.tables"
			" WHERE table_schema = current_schema()"
			" AND table_name = $1",
	.schema_table = "CREATE TABLE IF NOT EXISTS godwit_schema ("
			" version INTEGER PRIMARY KEY,"
			" description VARCHAR(200) NOT NULL,"
			" applied TIMESTAMP NOT NULL"
			" DEFAULT CURRENT_TIMESTAMP)",
	.lock_schema = "LOCK TABLE godwit_schema IN EXCLUSIVE MODE",
	.migrations = pg_migrations,
	.nmigrations = sizeof(pg_migrations) / sizeof(pg_migrations[0]),
};

/* ---- MySQL / MariaDB -------------------------------------------------- */

/*
 * utf8mb4_bin: compared byte by byte, as in SQLite and PostgreSQL (the
 * default collations ignore case). The CHECK refuses ASCII capitals only.
 * Index keys stay under InnoDB's 3072 bytes: (320 + 320) * 4.
 */
#define MYSQL_TABLE " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
static const char *const my_v1[] = {
	"CREATE TABLE domains ("
	" name VARCHAR(255) NOT NULL PRIMARY KEY"
	" CHECK (name NOT REGEXP '[A-Z]'))" MYSQL_TABLE,
	"CREATE TABLE users ("
	" address VARCHAR(320) NOT NULL PRIMARY KEY"
	" CHECK (address NOT REGEXP '[A-Z]'),"
	" domain VARCHAR(255) NOT NULL,"
	" password_hash TEXT NOT NULL,"
	" scram_sha256 TEXT,"
	" cram_secret TEXT,"
	" created TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,"
	" INDEX users_domain (domain),"
	" FOREIGN KEY (domain) REFERENCES domains (name))" MYSQL_TABLE,
	"CREATE TABLE aliases ("
	" source VARCHAR(320) NOT NULL CHECK (source NOT REGEXP '[A-Z]'),"
	" domain VARCHAR(255) NOT NULL,"
	" target VARCHAR(320) NOT NULL,"
	" PRIMARY KEY (source, target),"
	" INDEX aliases_domain (domain),"
	" FOREIGN KEY (domain) REFERENCES domains (name))" MYSQL_TABLE,
	NULL,
};

static const struct migration my_migrations[] = {
	{1, "domains, users (hash, scram, cram), aliases", my_v1},
};

static const struct dialect dialect_mysql = {
	.begin = "BEGIN",
	.commit = "COMMIT",
	.rollback = "ROLLBACK",
	.table_exists = "SELECT count(*) FROM information_schema.tables"
			" WHERE table_schema = DATABASE()"
			" AND table_name = $1",
	.schema_table = "CREATE TABLE IF NOT EXISTS godwit_schema ("
			" version INTEGER NOT NULL PRIMARY KEY,"
			" description VARCHAR(200) NOT NULL,"
			" applied TIMESTAMP NOT NULL"
			" DEFAULT CURRENT_TIMESTAMP)" MYSQL_TABLE,
	.lock_schema = NULL,
	.migrations = my_migrations,
	.nmigrations = sizeof(my_migrations) / sizeof(my_migrations[0]),
};

/* ---- the connection ----------------------------------------------------- */

struct userdb_sql {
	struct userdb db; /* first, so a struct userdb * converts back */
	const struct sqldrv_ops *drv;
	const struct dialect *d;
	char *dsn;
	unsigned timeout;
	struct sqldrv_conn *c;
	time_t last_attempt; /* of a connect */
	time_t last_query_log; /* of a "query-failed" line */
	bool down;	     /* "disconnected" logged, not yet "reconnected" */
	bool in_txn;
	bool txn_lost;	     /* the connection dropped inside a transaction:
			      * every statement fails until the rollback */
};

static struct userdb_sql *
to_sql(struct userdb *db)
{
	return (struct userdb_sql *)db;
}

const struct sqldrv_ops *
sqldrv_find(const char *name)
{
	if (name == NULL)
		return NULL;
	if (strcmp(name, "postgresql") == 0)
		return &sqldrv_pgsql_ops;
	if (strcmp(name, "mysql") == 0)
		return &sqldrv_mysql_ops;
	return NULL;
}

static void
set_error(char **error_r, char *msg)
{
	if (error_r != NULL)
		*error_r = msg;
	else
		free(msg);
}

static void
went_down(struct userdb_sql *s, const char *error)
{
	if (s->down)
		return;
	s->down = true;
	log_event(LOG_WARNING, "userdb", "disconnected",
		  LF_STR("backend", s->drv->name), LF_STR("error", error));
}

/* The connection, made now if there is none (at most once a second). */
static int
get_conn(struct userdb_sql *s, char **error_r)
{
	time_t now = time(NULL);
	char *err = NULL;

	if (s->c != NULL)
		return 0;
	if (s->last_attempt != 0 && now - s->last_attempt < 1 &&
	    now >= s->last_attempt) {
		set_error(error_r,
			  xasprintf("%s: the user database is unreachable "
				    "(retrying)",
				    s->drv->name));
		return -1;
	}
	s->last_attempt = now;
	if (s->drv->connect(s->dsn, s->timeout, &s->c, &err) < 0) {
		went_down(s, err);
		set_error(error_r, err);
		return -1;
	}
	if (s->down) {
		s->down = false;
		log_event(LOG_INFO, "userdb", "reconnected",
			  LF_STR("backend", s->drv->name));
	}
	return 0;
}

static void
drop_conn(struct userdb_sql *s, const char *error)
{
	went_down(s, error);
	s->drv->close(s->c);
	s->c = NULL;
	if (s->in_txn)
		s->txn_lost = true;
	s->in_txn = false;
}

/* Counts the rows handed to the caller's callback. */
struct counted {
	sqldrv_row_fn *fn;
	void *arg;
	size_t rows;
};

static int
counted_row(void *arg, const char *const *vals, size_t nvals)
{
	struct counted *c = arg;

	c->rows++;
	return c->fn(c->arg, vals, nvals);
}

/*
 * One statement: the row count, or -1 with *error_r (error_r may be NULL).
 * A connection found lost is dropped; a SELECT outside a transaction that
 * had handed out no row yet is then tried once more on a new one.
 */
static long
q(struct userdb_sql *s, const char *sql, const char *const *params,
  size_t nparams, sqldrv_row_fn *row, void *arg, char **error_r)
{
	enum sqldrv_error kind = SQLDRV_ERR_QUERY;
	struct counted cnt = {row, arg, 0};
	bool retried = false;
	char *err = NULL;
	long n;

	if (s->txn_lost) {
		/* not on a new connection, outside the transaction */
		set_error(error_r, xasprintf("%s: the connection was lost "
					     "during a transaction",
					     s->drv->name));
		return -1;
	}
again:
	if (get_conn(s, error_r) < 0)
		return -1;
	n = s->drv->exec(s->c, sql, params, nparams,
			 row != NULL ? counted_row : NULL, &cnt, &kind, &err);
	if (n >= 0)
		return n;
	if (kind == SQLDRV_ERR_CONN) {
		bool in_txn = s->in_txn;

		drop_conn(s, err);
		if (strncmp(sql, "SELECT", 6) == 0 && !retried && !in_txn &&
		    cnt.rows == 0) {
			retried = true;
			free(err);
			err = NULL;
			goto again;
		}
	}
	if (kind != SQLDRV_ERR_CONN && error_r == NULL && err != NULL) {
		/* a lookup's error reaches no one else (the session only
		 * answers 451): say it here, at most once a minute, e.g. a
		 * database without the schema (godwit db init) */
		time_t now = time(NULL);

		if (now - s->last_query_log >= 60 || now < s->last_query_log) {
			s->last_query_log = now;
			log_event(LOG_ERR, "userdb", "query-failed",
				  LF_STR("backend", s->drv->name),
				  LF_STR("error", err));
		}
	}
	set_error(error_r, err != NULL ? err : xstrdup("query failed"));
	return -1;
}

/* ---- result helpers ---------------------------------------------------- */

struct rows {
	char **v;
	size_t n;
	bool pair; /* "col0 col1" */
};

static int
collect(void *arg, const char *const *vals, size_t nvals)
{
	struct rows *r = arg;

	if (nvals == 0 || vals[0] == NULL)
		return 0;
	if (r->n >= 10u * 1000 * 1000)
		return -1;
	r->v = xreallocarray(r->v, r->n + 1, sizeof(*r->v));
	r->v[r->n++] = r->pair && nvals > 1 && vals[1] != NULL
			       ? xasprintf("%s %s", vals[0], vals[1])
			       : xstrdup(vals[0]);
	return 0;
}

static int
list(struct userdb_sql *s, const char *sql, const char *a1, bool pair,
     char ***list_r, size_t *n_r, char **error_r)
{
	struct rows r = {.pair = pair};
	const char *p[1] = {a1};

	*list_r = NULL;
	*n_r = 0;
	if (q(s, sql, p, a1 != NULL ? 1 : 0, collect, &r, error_r) < 0) {
		userdb_string_list_free(&r.v, r.n);
		return -1;
	}
	*list_r = r.v;
	*n_r = r.n;
	return 0;
}

/* A single value: 1 with a copy, 0 no row or NULL, -1. */
static int
value(struct userdb_sql *s, const char *sql, const char *a1, char **v_r,
      char **error_r)
{
	char **v = NULL;
	size_t n = 0;

	*v_r = NULL;
	if (list(s, sql, a1, false, &v, &n, error_r) < 0)
		return -1;
	if (n > 0) {
		*v_r = v[0];
		v[0] = NULL;
	}
	userdb_string_list_free(&v, n);
	return *v_r != NULL ? 1 : 0;
}

static long long
count(struct userdb_sql *s, const char *sql, const char *a1, char **error_r)
{
	char *v = NULL;
	long long n;

	if (value(s, sql, a1, &v, error_r) < 0)
		return -1;
	n = v != NULL ? strtoll(v, NULL, 10) : 0;
	free(v);
	return n;
}

static int
run(struct userdb_sql *s, const char *sql, const char *const *p, size_t np,
    long *changes_r, char **error_r)
{
	long n = q(s, sql, p, np, NULL, NULL, error_r);

	if (n < 0)
		return -1;
	if (changes_r != NULL)
		*changes_r = n;
	return 0;
}

/* ---- open, close, schema ---------------------------------------------- */

static int
sql_open(const struct userdb_config *udb, const struct sqldrv_ops *drv,
	 const struct dialect *d, const struct userdb_ops *ops,
	 struct userdb **db_r, char **error_r)
{
	struct userdb_sql *s;

	*db_r = NULL;
	if (udb->dsn == NULL || *udb->dsn == '\0') {
		*error_r = xasprintf("userdb: backend %s needs dsn", ops->name);
		return -1;
	}
	s = xcalloc(1, sizeof(*s));
	s->db.ops = ops;
	s->drv = drv;
	s->d = d;
	s->dsn = xstrdup(udb->dsn);
	s->timeout = udb->connect_timeout > 0 && udb->connect_timeout < 3600
			     ? (unsigned)udb->connect_timeout
			     : 5;
	*db_r = &s->db;
	return 0;
}

static void
sql_close(struct userdb *db)
{
	struct userdb_sql *s = to_sql(db);

	if (s->c != NULL)
		s->drv->close(s->c);
	free(s->dsn);
	free(s);
}

static int
read_version(struct userdb_sql *s, int *version_r, char **error_r)
{
	const char *p[1] = {"godwit_schema"};
	long long n;
	char *v = NULL;

	*version_r = 0;
	if ((n = count(s, s->d->table_exists, p[0], error_r)) < 0)
		return -1;
	if (n == 0)
		return 0;
	if (value(s, "SELECT max(version) FROM godwit_schema", NULL, &v,
		  error_r) < 0)
		return -1;
	*version_r = v != NULL ? atoi(v) : 0;
	free(v);
	return 0;
}

static int
sql_schema_version(struct userdb *db, int *version_r, int *latest_r,
		   char **error_r)
{
	struct userdb_sql *s = to_sql(db);

	*latest_r = s->d->migrations[s->d->nmigrations - 1].version;
	return read_version(s, version_r, error_r);
}

static int
sql_ping(struct userdb *db, char **error_r)
{
	struct userdb_sql *s = to_sql(db);
	int v, latest;

	/* an admin command may wait for its one attempt */
	s->last_attempt = 0;
	if (sql_schema_version(db, &v, &latest, error_r) < 0)
		return -1;
	if (v > latest) {
		*error_r = xasprintf("the user database has schema version "
				     "%d, this godwit understands up to %d",
				     v, latest);
		return -1;
	}
	return 0;
}

static void
rollback(struct userdb_sql *s)
{
	if (s->c != NULL && !s->txn_lost)
		q(s, s->d->rollback, NULL, 0, NULL, NULL, NULL);
	s->in_txn = false;
	s->txn_lost = false;
}

/* The tables of migration 1 without godwit_schema: someone else's. */
static int
check_foreign(struct userdb_sql *s, char **error_r)
{
	static const char *const ours[] = {"domains", "users", "aliases"};
	long long n;

	for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++) {
		if ((n = count(s, s->d->table_exists, ours[i], error_r)) < 0)
			return -1;
		if (n > 0) {
			*error_r = xasprintf("the database has a table "
					     "\"%s\" but no godwit_schema: "
					     "not a godwit user database "
					     "(use an empty database)",
					     ours[i]);
			return -1;
		}
	}
	return 0;
}

static int
sql_migrate(struct userdb *db, char ***done_r, size_t *n_r, char **error_r)
{
	struct userdb_sql *s = to_sql(db);
	const struct dialect *d = s->d;
	char ver[16];
	int v;

	*done_r = NULL;
	*n_r = 0;
	s->last_attempt = 0;
	if (read_version(s, &v, error_r) < 0)
		return -1;
	if (v == 0 && (check_foreign(s, error_r) < 0 ||
		       run(s, d->schema_table, NULL, 0, NULL, error_r) < 0))
		return -1;
	for (size_t i = 0; i < d->nmigrations; i++) {
		const struct migration *m = &d->migrations[i];
		const char *p[2];

		if (m->version <= v)
			continue;
		if (run(s, d->begin, NULL, 0, NULL, error_r) < 0)
			return -1;
		s->in_txn = true;
		if (d->lock_schema != NULL &&
		    run(s, d->lock_schema, NULL, 0, NULL, error_r) < 0)
			goto fail;
		/* another node may have run it meanwhile */
		if (read_version(s, &v, error_r) < 0)
			goto fail;
		if (m->version <= v) {
			rollback(s);
			continue;
		}
		for (size_t k = 0; m->stmts[k] != NULL; k++)
			if (run(s, m->stmts[k], NULL, 0, NULL, error_r) < 0)
				goto fail;
		snprintf(ver, sizeof(ver), "%d", m->version);
		p[0] = ver;
		p[1] = m->what;
		if (run(s,
			"INSERT INTO godwit_schema (version, description)"
			" VALUES ($1, $2)",
			p, 2, NULL, error_r) < 0 ||
		    run(s, d->commit, NULL, 0, NULL, error_r) < 0)
			goto fail;
		s->in_txn = false;
		v = m->version;
		*done_r = xreallocarray(*done_r, *n_r + 1, sizeof(**done_r));
		(*done_r)[(*n_r)++] = xasprintf("migration %d: %s",
						m->version, m->what);
	}
	return 0;
fail:
	rollback(s);
	return -1;
}

static int
sql_transaction(struct userdb *db, enum userdb_txn what, char **error_r)
{
	struct userdb_sql *s = to_sql(db);
	int r;

	switch (what) {
	case USERDB_BEGIN:
		s->last_attempt = 0;
		r = run(s, s->d->begin, NULL, 0, NULL, error_r);
		s->in_txn = r == 0;
		return r;
	case USERDB_COMMIT:
		r = run(s, s->d->commit, NULL, 0, NULL, error_r);
		s->in_txn = false;
		s->txn_lost = false;
		return r;
	case USERDB_ROLLBACK:
	default:
		rollback(s);
		return 0;
	}
}

/* ---- lookups ------------------------------------------------------------ */

static int
sql_domain_exists(struct userdb *db, const char *domain)
{
	char *v = NULL;
	int r = value(to_sql(db), "SELECT 1 FROM domains WHERE name = $1",
		      domain, &v, NULL);

	free(v);
	return r;
}

static int
sql_user_exists(struct userdb *db, const char *address)
{
	char *v = NULL;
	int r = value(to_sql(db), "SELECT 1 FROM users WHERE address = $1",
		      address, &v, NULL);

	free(v);
	return r;
}

static int
sql_alias_lookup(struct userdb *db, const char *source,
		 struct userdb_alias_list *r)
{
	r->targets = NULL;
	r->n = 0;
	if (list(to_sql(db),
		 "SELECT target FROM aliases WHERE source = $1"
		 " ORDER BY target",
		 source, false, &r->targets, &r->n, NULL) < 0)
		return -1;
	return r->n > 0 ? 1 : 0;
}

static int
sql_password_hash(struct userdb *db, const char *address, char **hash_r)
{
	return value(to_sql(db),
		     "SELECT password_hash FROM users WHERE address = $1",
		     address, hash_r, NULL);
}

static int
sql_scram_secret(struct userdb *db, const char *address, char **secret_r)
{
	return value(to_sql(db),
		     "SELECT scram_sha256 FROM users WHERE address = $1",
		     address, secret_r, NULL);
}

static int
sql_cram_secret(struct userdb *db, const char *address, char **secret_r)
{
	return value(to_sql(db),
		     "SELECT cram_secret FROM users WHERE address = $1",
		     address, secret_r, NULL);
}

/* ---- administration --------------------------------------------------- */

static const char *
domain_of(const char *address)
{
	const char *at = strrchr(address, '@');

	return at != NULL && at[1] != '\0' ? at + 1 : NULL;
}

/* 1 exists, 0 not, -1 with *error_r */
static int
exists_e(struct userdb_sql *s, const char *sql, const char *key,
	 char **error_r)
{
	long long n = count(s, sql, key, error_r);

	return n < 0 ? -1 : n > 0;
}

/* Runs body in a transaction unless the caller holds one already. */
static int
txn_begin(struct userdb_sql *s, bool *own_r, char **error_r)
{
	*own_r = !s->in_txn;
	if (!*own_r)
		return 0;
	if (run(s, s->d->begin, NULL, 0, NULL, error_r) < 0)
		return -1;
	s->in_txn = true;
	return 0;
}

static int
txn_end(struct userdb_sql *s, bool own, int r, char **error_r)
{
	if (!own)
		return r;
	if (r < 0) {
		rollback(s);
		return -1;
	}
	r = run(s, s->d->commit, NULL, 0, NULL, error_r);
	s->in_txn = false;
	s->txn_lost = false;
	return r;
}

static int
sql_domain_add(struct userdb *db, const char *domain, char **error_r)
{
	struct userdb_sql *s = to_sql(db);
	const char *p[1] = {domain};
	int r;

	if ((r = exists_e(s, "SELECT count(*) FROM domains WHERE name = $1",
			  domain, error_r)) != 0) {
		if (r > 0)
			*error_r = xasprintf("domain %s already exists",
					     domain);
		return -1;
	}
	return run(s, "INSERT INTO domains (name) VALUES ($1)", p, 1, NULL,
		   error_r);
}

static int
sql_domain_del(struct userdb *db, const char *domain, char **error_r)
{
	struct userdb_sql *s = to_sql(db);
	const char *p[1] = {domain};
	long long users, aliases;
	long changes = 0;
	bool own;
	int r = -1;

	if (txn_begin(s, &own, error_r) < 0)
		return -1;
	if ((users = count(s, "SELECT count(*) FROM users WHERE domain = $1",
			   domain, error_r)) < 0 ||
	    (aliases = count(s,
			     "SELECT count(*) FROM aliases WHERE domain = $1",
			     domain, error_r)) < 0)
		goto out;
	if (users > 0 || aliases > 0) {
		*error_r = xasprintf(
			"domain %s still has %lld user%s and %lld alias%s: "
			"remove them first (godwit user list %s, "
			"godwit alias list %s)",
			domain, users, users == 1 ? "" : "s", aliases,
			aliases == 1 ? "" : "es", domain, domain);
		goto out;
	}
	if (run(s, "DELETE FROM domains WHERE name = $1", p, 1, &changes,
		error_r) < 0)
		goto out;
	if (changes == 0) {
		*error_r = xasprintf("domain %s does not exist", domain);
		goto out;
	}
	r = 0;
out:
	return txn_end(s, own, r, error_r);
}

static int
sql_domain_list(struct userdb *db, char ***domains_r, size_t *n_r,
		char **error_r)
{
	return list(to_sql(db), "SELECT name FROM domains ORDER BY name", NULL,
		    false, domains_r, n_r, error_r);
}

static int
need_local_domain(struct userdb_sql *s, const char *address, char **error_r)
{
	const char *domain = domain_of(address);
	int r;

	if (domain == NULL) {
		*error_r = xasprintf("%s: no domain", address);
		return -1;
	}
	if ((r = exists_e(s, "SELECT count(*) FROM domains WHERE name = $1",
			  domain, error_r)) < 0)
		return -1;
	if (r == 0) {
		*error_r = xasprintf("domain %s is not local: "
				     "godwit domain add %s",
				     domain, domain);
		return -1;
	}
	return 0;
}

static int
sql_user_add(struct userdb *db, const char *address, const char *hash,
	     char **error_r)
{
	struct userdb_sql *s = to_sql(db);
	const char *p[3] = {address, domain_of(address), hash};
	int r;

	if (need_local_domain(s, address, error_r) < 0)
		return -1;
	/* a user would shadow an alias of the same address */
	if ((r = exists_e(s, "SELECT count(*) FROM aliases WHERE source = $1",
			  address, error_r)) != 0) {
		if (r > 0)
			*error_r = xasprintf("%s is an alias: remove it first "
					     "(godwit alias del %s)",
					     address, address);
		return -1;
	}
	if ((r = exists_e(s, "SELECT count(*) FROM users WHERE address = $1",
			  address, error_r)) != 0) {
		if (r > 0)
			*error_r = xasprintf("user %s already exists",
					     address);
		return -1;
	}
	return run(s,
		   "INSERT INTO users (address, domain, password_hash)"
		   " VALUES ($1, $2, $3)",
		   p, 3, NULL, error_r);
}

static int
sql_user_del(struct userdb *db, const char *address, char **error_r)
{
	const char *p[1] = {address};
	long changes = 0;

	if (run(to_sql(db), "DELETE FROM users WHERE address = $1", p, 1,
		&changes, error_r) < 0)
		return -1;
	if (changes == 0) {
		*error_r = xasprintf("user %s does not exist", address);
		return -1;
	}
	return 0;
}

static int
sql_user_set_secrets(struct userdb *db, const char *address,
		     const char *hash, const char *scram, const char *cram,
		     char **error_r)
{
	struct userdb_sql *s = to_sql(db);
	const char *p[4] = {hash, scram, cram, address};
	int r;

	if (hash == NULL) {
		*error_r = xstrdup("no password hash");
		return -1;
	}
	/* not the UPDATE's count: MySQL may count only rows it changed */
	if ((r = exists_e(s, "SELECT count(*) FROM users WHERE address = $1",
			  address, error_r)) <= 0) {
		if (r == 0)
			*error_r = xasprintf("user %s does not exist",
					     address);
		return -1;
	}
	return run(s,
		   "UPDATE users SET password_hash = $1, scram_sha256 = $2,"
		   " cram_secret = $3 WHERE address = $4",
		   p, 4, NULL, error_r);
}

static int
sql_user_list(struct userdb *db, const char *domain, char ***users_r,
	      size_t *n_r, char **error_r)
{
	return list(to_sql(db),
		    domain == NULL ? "SELECT address FROM users"
				     " ORDER BY domain, address"
				   : "SELECT address FROM users WHERE domain = $1"
				     " ORDER BY address",
		    domain, false, users_r, n_r, error_r);
}

static int
sql_alias_add(struct userdb *db, const char *source, const char *target,
	      char **error_r)
{
	struct userdb_sql *s = to_sql(db);
	const char *p[3] = {source, domain_of(source), target};
	int r;

	if (need_local_domain(s, source, error_r) < 0)
		return -1;
	if ((r = exists_e(s, "SELECT count(*) FROM users WHERE address = $1",
			  source, error_r)) != 0) {
		if (r > 0)
			*error_r = xasprintf("%s is a user, so an alias of "
					     "that address would never be "
					     "used",
					     source);
		return -1;
	}
	{
		const char *pp[2] = {source, target};
		struct rows rr = {0};
		long n;

		n = q(s,
		      "SELECT target FROM aliases WHERE source = $1"
		      " AND target = $2",
		      pp, 2, collect, &rr, error_r);
		userdb_string_list_free(&rr.v, rr.n);
		if (n < 0)
			return -1;
		if (n > 0) {
			*error_r = xasprintf("alias %s -> %s already exists",
					     source, target);
			return -1;
		}
	}
	return run(s,
		   "INSERT INTO aliases (source, domain, target)"
		   " VALUES ($1, $2, $3)",
		   p, 3, NULL, error_r);
}

static int
sql_alias_del(struct userdb *db, const char *source, const char *target,
	      char **error_r)
{
	const char *p[2] = {source, target};
	long changes = 0;

	if (run(to_sql(db),
		target == NULL
			? "DELETE FROM aliases WHERE source = $1"
			: "DELETE FROM aliases WHERE source = $1 AND target = $2",
		p, target == NULL ? 1 : 2, &changes, error_r) < 0)
		return -1;
	if (changes == 0) {
		*error_r = target == NULL
				   ? xasprintf("no alias %s", source)
				   : xasprintf("no alias %s -> %s", source,
					       target);
		return -1;
	}
	return 0;
}

static int
sql_alias_list(struct userdb *db, const char *domain, char ***aliases_r,
	       size_t *n_r, char **error_r)
{
	return list(to_sql(db),
		    domain == NULL
			    ? "SELECT source, target FROM aliases"
			      " ORDER BY domain, source, target"
			    : "SELECT source, target FROM aliases"
			      " WHERE domain = $1 ORDER BY source, target",
		    domain, true, aliases_r, n_r, error_r);
}

/* ---- the two backends ------------------------------------------------- */

static int
pgsql_open(const struct userdb_config *udb, bool readonly,
	   struct userdb **db_r, char **error_r)
{
	(void)readonly;
	return sql_open(udb, &sqldrv_pgsql_ops, &dialect_pgsql,
			&userdb_pgsql_ops, db_r, error_r);
}

static int
mysql_open(const struct userdb_config *udb, bool readonly,
	   struct userdb **db_r, char **error_r)
{
	(void)readonly;
	return sql_open(udb, &sqldrv_mysql_ops, &dialect_mysql,
			&userdb_mysql_ops, db_r, error_r);
}

#define SQL_OPS                                                                \
	.close = sql_close, .ping = sql_ping,                                  \
	.domain_exists = sql_domain_exists, .user_exists = sql_user_exists,   \
	.alias_lookup = sql_alias_lookup,                                      \
	.password_hash = sql_password_hash,                                    \
	.scram_secret = sql_scram_secret, .cram_secret = sql_cram_secret,     \
	.domain_add = sql_domain_add, .domain_del = sql_domain_del,           \
	.domain_list = sql_domain_list, .user_add = sql_user_add,             \
	.user_del = sql_user_del, .user_set_secrets = sql_user_set_secrets,   \
	.user_list = sql_user_list, .alias_add = sql_alias_add,               \
	.alias_del = sql_alias_del, .alias_list = sql_alias_list,             \
	.schema_version = sql_schema_version, .migrate = sql_migrate,         \
	.transaction = sql_transaction

const struct userdb_ops userdb_pgsql_ops = {
	.name = "postgresql",
	.open = pgsql_open,
	SQL_OPS,
};

const struct userdb_ops userdb_mysql_ops = {
	.name = "mysql",
	.open = mysql_open,
	SQL_OPS,
};
