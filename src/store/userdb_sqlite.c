/*
 * The SQLite user database backend: domains, users with password hashes,
 * and aliases in one file (default <data_dir>/db/godwit.sqlite).
 *
 * Workers open it read-only and keep the lookup statements prepared; the
 * admin commands open it read-write, which creates the file, its
 * directory and the schema when they are missing, and upgrades the schema
 * of an older file in place. The file stays in
 * rollback-journal mode: WAL would need the readers to write the -shm
 * file, and workers run unprivileged with read access only.
 *
 * Every value reaches SQL through a bound parameter.
 */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/util.h"
#include "lib/xalloc.h"
#include "store/userdb.h"

#define SCHEMA_VERSION 2
/* A lookup during an admin write waits this long rather than fail. */
#define BUSY_TIMEOUT_MS 2000

enum lookup {
	LK_DOMAIN_EXISTS,
	LK_USER_EXISTS,
	LK_ALIAS_LOOKUP,
	LK_PASSWORD_HASH,
	LK_SCRAM_SECRET,
	LK_CRAM_SECRET,
	LK_COUNT,
};

static const char *const lookup_sql[LK_COUNT] = {
	[LK_DOMAIN_EXISTS] = "SELECT 1 FROM domains WHERE name = ?1",
	[LK_USER_EXISTS] = "SELECT 1 FROM users WHERE address = ?1",
	[LK_ALIAS_LOOKUP] =
		"SELECT target FROM aliases WHERE source = ?1 ORDER BY target",
	[LK_PASSWORD_HASH] =
		"SELECT password_hash FROM users WHERE address = ?1",
	[LK_SCRAM_SECRET] =
		"SELECT scram_sha256 FROM users WHERE address = ?1",
	[LK_CRAM_SECRET] = "SELECT cram_secret FROM users WHERE address = ?1",
};

/*
 * A version 1 file opened read-only (a daemon started before any admin
 * command upgraded it) has no secret columns: its users simply have no
 * SCRAM or CRAM secret until the upgrade, and PLAIN and LOGIN still work.
 */
static const char *const lookup_sql_v1[LK_COUNT] = {
	[LK_DOMAIN_EXISTS] = "SELECT 1 FROM domains WHERE name = ?1",
	[LK_USER_EXISTS] = "SELECT 1 FROM users WHERE address = ?1",
	[LK_ALIAS_LOOKUP] =
		"SELECT target FROM aliases WHERE source = ?1 ORDER BY target",
	[LK_PASSWORD_HASH] =
		"SELECT password_hash FROM users WHERE address = ?1",
	[LK_SCRAM_SECRET] = "SELECT NULL FROM users WHERE address = ?1",
	[LK_CRAM_SECRET] = "SELECT NULL FROM users WHERE address = ?1",
};

/*
 * Version 2 (version 1 lacked users.scram_sha256 and users.cram_secret).
 * aliases carries the source's domain as a column (beside the
 * source, target pair) so that the foreign key keeps a domain from being
 * deleted under its aliases and "alias list DOMAIN" needs no string
 * matching. The CHECKs are a second line behind the admin commands'
 * normalisation: a mixed-case key would never be found by a lookup.
 */
static const char schema_sql[] =
	"CREATE TABLE schema_version (version INTEGER NOT NULL);"
	"INSERT INTO schema_version (version) VALUES (2);"
	"CREATE TABLE domains ("
	" name TEXT PRIMARY KEY NOT NULL CHECK (name = lower(name)));"
	"CREATE TABLE users ("
	" address TEXT PRIMARY KEY NOT NULL CHECK (address = lower(address)),"
	" domain TEXT NOT NULL REFERENCES domains (name),"
	" password_hash TEXT NOT NULL,"
	" scram_sha256 TEXT,"
	" cram_secret TEXT,"
	" created INTEGER NOT NULL DEFAULT (strftime('%s', 'now')));"
	"CREATE INDEX users_domain ON users (domain);"
	"CREATE TABLE aliases ("
	" source TEXT NOT NULL CHECK (source = lower(source)),"
	" domain TEXT NOT NULL REFERENCES domains (name),"
	" target TEXT NOT NULL,"
	" PRIMARY KEY (source, target));"
	"CREATE INDEX aliases_domain ON aliases (domain);";

/* From version 1 to 2, run inside init_schema()'s transaction. */
static const char upgrade_v1_sql[] =
	"ALTER TABLE users ADD COLUMN scram_sha256 TEXT;"
	"ALTER TABLE users ADD COLUMN cram_secret TEXT;"
	"UPDATE schema_version SET version = 2;";

struct userdb_sqlite {
	struct userdb db;	/* first, so a struct userdb * converts back */
	sqlite3 *h;
	char *path;
	bool readonly;
	int version;		/* of the file: 1 only when read-only */
	int opened_version;	/* before an upgrade by this open; 0: the
				 * schema was created by it */
	bool in_txn;		/* inside transaction(USERDB_BEGIN) */
	sqlite3_stmt *lookup[LK_COUNT];
};

static struct userdb_sqlite *
to_sqlite(struct userdb *db)
{
	return (struct userdb_sqlite *)db;
}

static char *
db_error(struct userdb_sqlite *s, const char *what)
{
	return xasprintf("%s: %s: %s", s->path, what, sqlite3_errmsg(s->h));
}

static int
exec_sql(struct userdb_sqlite *s, const char *sql, char **error_r)
{
	char *msg = NULL;

	if (sqlite3_exec(s->h, sql, NULL, NULL, &msg) != SQLITE_OK) {
		*error_r = xasprintf("%s: %s", s->path,
				     msg != NULL ? msg : sqlite3_errmsg(s->h));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

/*
 * Runs one statement with up to three text parameters ?1..?3 (NULL: not
 * bound), discarding any rows. Returns the final SQLite code (SQLITE_DONE when
 * all went well); on anything else *error_r holds SQLite's message.
 */
static int
run(struct userdb_sqlite *s, const char *sql, const char *a1, const char *a2,
    const char *a3, int *changes_r, char **error_r)
{
	const char *args[3] = {a1, a2, a3};
	sqlite3_stmt *st;
	int i, rc;

	if ((rc = sqlite3_prepare_v2(s->h, sql, -1, &st, NULL)) != SQLITE_OK) {
		*error_r = db_error(s, "prepare");
		return rc;
	}
	for (i = 0; i < 3; i++) {
		if (args[i] == NULL)
			continue;
		rc = sqlite3_bind_text(st, i + 1, args[i], -1, SQLITE_STATIC);
		if (rc != SQLITE_OK) {
			*error_r = db_error(s, "bind");
			sqlite3_finalize(st);
			return rc;
		}
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	if (rc != SQLITE_DONE)
		*error_r = db_error(s, "write");
	else if (changes_r != NULL)
		*changes_r = sqlite3_changes(s->h);
	sqlite3_finalize(st);
	return rc;
}

/* SELECT count(*) ... with one parameter. Returns the count or -1. */
static long long
count(struct userdb_sqlite *s, const char *sql, const char *a1,
      char **error_r)
{
	sqlite3_stmt *st;
	long long n = -1;

	if (sqlite3_prepare_v2(s->h, sql, -1, &st, NULL) != SQLITE_OK) {
		*error_r = db_error(s, "prepare");
		return -1;
	}
	if (sqlite3_bind_text(st, 1, a1, -1, SQLITE_STATIC) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	else
		*error_r = db_error(s, "read");
	sqlite3_finalize(st);
	return n;
}

/*
 * Rows of one or two text columns as strings ("a" or "a b"); a1 bound to
 * ?1 when not NULL. Returns 0 or -1.
 */
static int
list(struct userdb_sqlite *s, const char *sql, const char *a1, char ***list_r,
     size_t *n_r, char **error_r)
{
	sqlite3_stmt *st;
	char **v = NULL;
	size_t n = 0;
	int rc;

	*list_r = NULL;
	*n_r = 0;
	if (sqlite3_prepare_v2(s->h, sql, -1, &st, NULL) != SQLITE_OK) {
		*error_r = db_error(s, "prepare");
		return -1;
	}
	if (a1 != NULL &&
	    sqlite3_bind_text(st, 1, a1, -1, SQLITE_STATIC) != SQLITE_OK) {
		*error_r = db_error(s, "bind");
		sqlite3_finalize(st);
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *c0 = (const char *)sqlite3_column_text(st, 0);
		const char *c1 = NULL;

		if (sqlite3_column_count(st) > 1)
			c1 = (const char *)sqlite3_column_text(st, 1);
		if (c0 == NULL)
			continue;
		v = xreallocarray(v, n + 1, sizeof(*v));
		v[n++] = c1 != NULL ? xasprintf("%s %s", c0, c1) : xstrdup(c0);
	}
	if (rc != SQLITE_DONE) {
		*error_r = db_error(s, "read");
		sqlite3_finalize(st);
		userdb_string_list_free(&v, n);
		return -1;
	}
	sqlite3_finalize(st);
	*list_r = v;
	*n_r = n;
	return 0;
}

static int
read_version(struct userdb_sqlite *s, int *version_r, char **error_r)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(s->h, "SELECT max(version) FROM schema_version",
			       -1, &st, NULL) != SQLITE_OK) {
		*error_r = xasprintf("%s: not a godwit user database (%s)",
				     s->path, sqlite3_errmsg(s->h));
		return -1;
	}
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW || sqlite3_column_type(st, 0) != SQLITE_INTEGER) {
		*error_r = rc == SQLITE_ROW
				   ? xasprintf("%s: schema_version is empty",
					       s->path)
				   : db_error(s, "reading schema_version");
		sqlite3_finalize(st);
		return -1;
	}
	*version_r = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return 0;
}

/* Sets s->version; a version this code cannot read is an error. */
static int
check_version(struct userdb_sqlite *s, char **error_r)
{
	int v;

	if (read_version(s, &v, error_r) < 0)
		return -1;
	if (v < 1 || v > SCHEMA_VERSION) {
		*error_r = xasprintf("%s: schema version %d, this godwit "
				     "understands versions 1 to %d",
				     s->path, v, SCHEMA_VERSION);
		return -1;
	}
	s->version = v;
	return 0;
}

/*
 * Creates the schema in a fresh file, or checks the version of an old one
 * and upgrades it, all in one transaction: a failed upgrade leaves the
 * file as it was. A foreign SQLite file (tables, but not ours) is left
 * alone.
 */
static int
init_schema(struct userdb_sqlite *s, char **error_r)
{
	long long ours, tables;

	if (exec_sql(s, "BEGIN IMMEDIATE", error_r) < 0)
		return -1;
	ours = count(s,
		     "SELECT count(*) FROM sqlite_master"
		     " WHERE type = 'table' AND name = ?1",
		     "schema_version", error_r);
	if (ours < 0)
		goto fail;
	if (ours == 0) {
		tables = count(s,
			       "SELECT count(*) FROM sqlite_master"
			       " WHERE type = 'table' AND name <> ?1",
			       "", error_r);
		if (tables < 0)
			goto fail;
		if (tables > 0) {
			*error_r = xasprintf("%s: an SQLite database, but not "
					     "a godwit user database",
					     s->path);
			goto fail;
		}
		if (exec_sql(s, schema_sql, error_r) < 0)
			goto fail;
		s->version = SCHEMA_VERSION;
	} else if (check_version(s, error_r) < 0)
		goto fail;
	s->opened_version = ours == 0 ? 0 : s->version;
	if (s->version == 1) {
		if (exec_sql(s, upgrade_v1_sql, error_r) < 0)
			goto fail;
		s->version = 2;
	}
	if (exec_sql(s, "COMMIT", error_r) < 0)
		goto fail;
	return 0;
fail:
	sqlite3_exec(s->h, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

/*
 * The database's own directory is made 0750 (the admin command hands it
 * to the daemon's group); directories above it 0755 so that the daemon
 * can reach it at all.
 */
static int
make_parent_dir(const char *path, char **error_r)
{
	char *dir = xstrdup(path);
	char *slash;
	struct stat sb;
	int r = -1;

	if ((slash = strrchr(dir, '/')) == NULL || slash == dir) {
		r = 0;
		goto out;
	}
	*slash = '\0';
	if (stat(dir, &sb) == 0) {
		r = 0;
		goto out;
	}
	if (errno != ENOENT)
		goto fail;
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if (mkdir_p(dir, 0755) < 0)
			goto fail;
		*slash = '/';
	}
	if (mkdir(dir, 0750) < 0 && errno != EEXIST)
		goto fail;
	r = 0;
	goto out;
fail:
	*error_r = xasprintf("%s: %s", dir, strerror(errno));
out:
	free(dir);
	return r;
}

/* Creating the file ourselves sets its mode: SQLite would use 0644. */
static int
create_file(const char *path, char **error_r)
{
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		  0640);
	if (fd < 0) {
		if (errno == EEXIST)
			return 0;
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	/* The umask may have taken the group's read bit. */
	if (fchmod(fd, 0640) < 0) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static void
sqlite_close(struct userdb *db)
{
	struct userdb_sqlite *s = to_sqlite(db);
	size_t i;

	for (i = 0; i < LK_COUNT; i++)
		sqlite3_finalize(s->lookup[i]);
	sqlite3_close(s->h);
	free(s->path);
	free(s);
}

static int
sqlite_open(const struct userdb_config *udb, bool readonly,
	    struct userdb **db_r, char **error_r)
{
	const char *path = udb->path;
	struct userdb_sqlite *s;
	int flags;
	size_t i;

	*db_r = NULL;
	/* The loader fills in the default (<data_dir>/db/godwit.sqlite). */
	if (path == NULL || *path == '\0') {
		*error_r = xstrdup("no userdb path configured");
		return -1;
	}
	if (!readonly &&
	    (make_parent_dir(path, error_r) < 0 || create_file(path, error_r) < 0))
		return -1;

	s = xcalloc(1, sizeof(*s));
	s->db.ops = &userdb_sqlite_ops;
	s->path = xstrdup(path);
	s->readonly = readonly;
	flags = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
	if (sqlite3_open_v2(path, &s->h, flags, NULL) != SQLITE_OK) {
		*error_r = xasprintf("cannot open user database %s: %s", path,
				     s->h != NULL ? sqlite3_errmsg(s->h)
						  : "out of memory");
		goto fail;
	}
	sqlite3_busy_timeout(s->h, BUSY_TIMEOUT_MS);

	if (readonly) {
		if (check_version(s, error_r) < 0)
			goto fail;
	} else {
		/* secure_delete: a replaced CRAM secret is overwritten in
		 * the file, not left in a free page. */
		if (exec_sql(s, "PRAGMA foreign_keys = ON", error_r) < 0 ||
		    exec_sql(s, "PRAGMA journal_mode = DELETE", error_r) < 0 ||
		    exec_sql(s, "PRAGMA secure_delete = ON", error_r) < 0 ||
		    init_schema(s, error_r) < 0)
			goto fail;
	}

	for (i = 0; i < LK_COUNT; i++) {
		if (sqlite3_prepare_v3(s->h,
				       s->version == 1 ? lookup_sql_v1[i]
						       : lookup_sql[i],
				       -1,
				       SQLITE_PREPARE_PERSISTENT,
				       &s->lookup[i], NULL) != SQLITE_OK) {
			*error_r = db_error(s, "prepare");
			goto fail;
		}
	}
	*db_r = &s->db;
	return 0;
fail:
	sqlite_close(&s->db);
	return -1;
}

/*
 * Binds key to a cached lookup and steps it once. Returns 1 with the
 * statement positioned on the row, 0 for no row, -1 on error. The caller
 * reads the row and calls lookup_done(): a statement left unreset would
 * hold the read lock and block the admin's writes.
 */
static int
lookup_step(struct userdb_sqlite *s, enum lookup id, const char *key)
{
	sqlite3_stmt *st = s->lookup[id];
	int rc;

	if (sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC) != SQLITE_OK)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : -1;
}

static void
lookup_done(struct userdb_sqlite *s, enum lookup id)
{
	sqlite3_reset(s->lookup[id]);
	sqlite3_clear_bindings(s->lookup[id]);
}

static int
exists(struct userdb *db, enum lookup id, const char *key)
{
	struct userdb_sqlite *s = to_sqlite(db);
	int r = lookup_step(s, id, key);

	lookup_done(s, id);
	return r;
}

static int
sqlite_domain_exists(struct userdb *db, const char *domain)
{
	return exists(db, LK_DOMAIN_EXISTS, domain);
}

static int
sqlite_user_exists(struct userdb *db, const char *address)
{
	return exists(db, LK_USER_EXISTS, address);
}

static int
sqlite_alias_lookup(struct userdb *db, const char *source,
		    struct userdb_alias_list *r)
{
	struct userdb_sqlite *s = to_sqlite(db);
	sqlite3_stmt *st = s->lookup[LK_ALIAS_LOOKUP];
	int rc;

	r->targets = NULL;
	r->n = 0;
	rc = lookup_step(s, LK_ALIAS_LOOKUP, source);
	while (rc == 1) {
		const char *t = (const char *)sqlite3_column_text(st, 0);

		if (t != NULL) {
			r->targets = xreallocarray(r->targets, r->n + 1,
						   sizeof(*r->targets));
			r->targets[r->n++] = xstrdup(t);
		}
		rc = sqlite3_step(st);
		rc = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
	}
	lookup_done(s, LK_ALIAS_LOOKUP);
	if (rc < 0) {
		userdb_alias_list_clear(r);
		return -1;
	}
	return r->n > 0 ? 1 : 0;
}

/* A text column of one user's row: 1 with a copy, 0 no user or NULL. */
static int
user_column(struct userdb *db, enum lookup id, const char *address,
	    char **value_r)
{
	struct userdb_sqlite *s = to_sqlite(db);
	sqlite3_stmt *st = s->lookup[id];
	const char *v;
	int r;

	*value_r = NULL;
	if ((r = lookup_step(s, id, address)) == 1) {
		if ((v = (const char *)sqlite3_column_text(st, 0)) != NULL)
			*value_r = xstrdup(v);
		else
			r = 0;
	}
	lookup_done(s, id);
	return r;
}

static int
sqlite_password_hash(struct userdb *db, const char *address, char **hash_r)
{
	return user_column(db, LK_PASSWORD_HASH, address, hash_r);
}

static int
sqlite_scram_secret(struct userdb *db, const char *address, char **secret_r)
{
	return user_column(db, LK_SCRAM_SECRET, address, secret_r);
}

static int
sqlite_cram_secret(struct userdb *db, const char *address, char **secret_r)
{
	return user_column(db, LK_CRAM_SECRET, address, secret_r);
}

/* The domain part of "local@domain" or "@domain"; NULL if there is none. */
static const char *
domain_of(const char *address)
{
	const char *at = strrchr(address, '@');

	return at != NULL && at[1] != '\0' ? at + 1 : NULL;
}

static int
sqlite_domain_add(struct userdb *db, const char *domain, char **error_r)
{
	struct userdb_sqlite *s = to_sqlite(db);
	char *err = NULL;
	int rc;

	rc = run(s, "INSERT INTO domains (name) VALUES (?1)", domain, NULL,
		 NULL, NULL, &err);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc == SQLITE_CONSTRAINT) {
		free(err);
		*error_r = xasprintf("domain %s already exists", domain);
	} else
		*error_r = err;
	return -1;
}

static int
sqlite_domain_del(struct userdb *db, const char *domain, char **error_r)
{
	struct userdb_sqlite *s = to_sqlite(db);
	long long users, aliases;
	int changes = 0;

	if (!s->in_txn && exec_sql(s, "BEGIN IMMEDIATE", error_r) < 0)
		return -1;
	if ((users = count(s, "SELECT count(*) FROM users WHERE domain = ?1",
			   domain, error_r)) < 0 ||
	    (aliases = count(s,
			     "SELECT count(*) FROM aliases WHERE domain = ?1",
			     domain, error_r)) < 0)
		goto fail;
	if (users > 0 || aliases > 0) {
		*error_r = xasprintf(
			"domain %s still has %lld user%s and %lld alias%s: "
			"remove them first (godwit user list %s, "
			"godwit alias list %s)",
			domain, users, users == 1 ? "" : "s", aliases,
			aliases == 1 ? "" : "es", domain, domain);
		goto fail;
	}
	if (run(s, "DELETE FROM domains WHERE name = ?1", domain, NULL, NULL,
		&changes, error_r) != SQLITE_DONE)
		goto fail;
	if (changes == 0) {
		*error_r = xasprintf("domain %s does not exist", domain);
		goto fail;
	}
	if (!s->in_txn && exec_sql(s, "COMMIT", error_r) < 0)
		goto fail;
	return 0;
fail:
	/* inside the caller's transaction, the caller rolls back */
	if (!s->in_txn)
		sqlite3_exec(s->h, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

static int
sqlite_domain_list(struct userdb *db, char ***domains_r, size_t *n_r,
		   char **error_r)
{
	return list(to_sqlite(db), "SELECT name FROM domains ORDER BY name",
		    NULL, domains_r, n_r, error_r);
}

/* A new user or alias source needs its domain to be local. */
static int
need_local_domain(struct userdb *db, const char *address, char **error_r)
{
	const char *domain = domain_of(address);
	int r;

	if (domain == NULL) {
		*error_r = xasprintf("%s: no domain", address);
		return -1;
	}
	if ((r = sqlite_domain_exists(db, domain)) < 0) {
		*error_r = db_error(to_sqlite(db), "read");
		return -1;
	}
	if (r == 0) {
		*error_r = xasprintf("domain %s is not local: "
				     "godwit domain add %s",
				     domain, domain);
		return -1;
	}
	return 0;
}

static int
sqlite_user_add(struct userdb *db, const char *address, const char *hash,
		char **error_r)
{
	struct userdb_sqlite *s = to_sqlite(db);
	long long n;
	char *err = NULL;
	int rc;

	if (need_local_domain(db, address, error_r) < 0)
		return -1;
	/* A user would shadow an alias of the same address (users are
	 * looked up first), so the alias would silently stop working. */
	if ((n = count(s, "SELECT count(*) FROM aliases WHERE source = ?1",
		       address, error_r)) < 0)
		return -1;
	if (n > 0) {
		*error_r = xasprintf("%s is an alias: remove it first "
				     "(godwit alias del %s)",
				     address, address);
		return -1;
	}
	rc = run(s,
		 "INSERT INTO users (address, domain, password_hash)"
		 " VALUES (?1, ?3, ?2)",
		 address, hash, domain_of(address), NULL, &err);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc == SQLITE_CONSTRAINT && sqlite_user_exists(db, address) == 1) {
		free(err);
		*error_r = xasprintf("user %s already exists", address);
	} else
		*error_r = err;
	return -1;
}

static int
sqlite_user_del(struct userdb *db, const char *address, char **error_r)
{
	int changes = 0;

	if (run(to_sqlite(db), "DELETE FROM users WHERE address = ?1", address,
		NULL, NULL, &changes, error_r) != SQLITE_DONE)
		return -1;
	if (changes == 0) {
		*error_r = xasprintf("user %s does not exist", address);
		return -1;
	}
	return 0;
}

static int
sqlite_user_set_secrets(struct userdb *db, const char *address,
			const char *hash, const char *scram, const char *cram,
			char **error_r)
{
	struct userdb_sqlite *s = to_sqlite(db);
	sqlite3_stmt *st;
	int changes = 0, rc;

	if (hash == NULL) {
		*error_r = xstrdup("no password hash");
		return -1;
	}
	/* Not run(): a NULL argument here must bind SQL NULL. */
	if (sqlite3_prepare_v2(s->h,
			       "UPDATE users SET password_hash = ?2,"
			       " scram_sha256 = ?3, cram_secret = ?4"
			       " WHERE address = ?1",
			       -1, &st, NULL) != SQLITE_OK) {
		*error_r = db_error(s, "prepare");
		return -1;
	}
	if (sqlite3_bind_text(st, 1, address, -1, SQLITE_STATIC) !=
		    SQLITE_OK ||
	    sqlite3_bind_text(st, 2, hash, -1, SQLITE_STATIC) != SQLITE_OK ||
	    (scram != NULL &&
	     sqlite3_bind_text(st, 3, scram, -1, SQLITE_STATIC) !=
		     SQLITE_OK) ||
	    (cram != NULL &&
	     sqlite3_bind_text(st, 4, cram, -1, SQLITE_STATIC) != SQLITE_OK)) {
		*error_r = db_error(s, "bind");
		sqlite3_finalize(st);
		return -1;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE)
		changes = sqlite3_changes(s->h);
	else
		*error_r = db_error(s, "write");
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return -1;
	if (changes == 0) {
		*error_r = xasprintf("user %s does not exist", address);
		return -1;
	}
	return 0;
}

static int
sqlite_user_list(struct userdb *db, const char *domain, char ***users_r,
		 size_t *n_r, char **error_r)
{
	return list(to_sqlite(db),
		    domain == NULL ? "SELECT address FROM users"
				     " ORDER BY domain, address"
				   : "SELECT address FROM users WHERE domain = ?1"
				     " ORDER BY address",
		    domain, users_r, n_r, error_r);
}

static int
sqlite_alias_add(struct userdb *db, const char *source, const char *target,
		 char **error_r)
{
	struct userdb_sqlite *s = to_sqlite(db);
	char *err = NULL;
	int rc;

	if (need_local_domain(db, source, error_r) < 0)
		return -1;
	if ((rc = sqlite_user_exists(db, source)) != 0) {
		*error_r = rc < 0 ? db_error(s, "read")
				  : xasprintf("%s is a user, so an alias of "
					      "that address would never be "
					      "used",
					      source);
		return -1;
	}
	rc = run(s,
		 "INSERT INTO aliases (source, domain, target)"
		 " VALUES (?1, ?3, ?2)",
		 source, target, domain_of(source), NULL, &err);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc == SQLITE_CONSTRAINT) {
		free(err);
		*error_r = xasprintf("alias %s -> %s already exists", source,
				     target);
	} else
		*error_r = err;
	return -1;
}

static int
sqlite_alias_del(struct userdb *db, const char *source, const char *target,
		 char **error_r)
{
	int changes = 0;

	if (run(to_sqlite(db),
		target == NULL
			? "DELETE FROM aliases WHERE source = ?1"
			: "DELETE FROM aliases WHERE source = ?1 AND target = ?2",
		source, target, NULL, &changes, error_r) != SQLITE_DONE)
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
sqlite_alias_list(struct userdb *db, const char *domain, char ***aliases_r,
		  size_t *n_r, char **error_r)
{
	return list(to_sqlite(db),
		    domain == NULL
			    ? "SELECT source, target FROM aliases"
			      " ORDER BY domain, source, target"
			    : "SELECT source, target FROM aliases"
			      " WHERE domain = ?1 ORDER BY source, target",
		    domain, aliases_r, n_r, error_r);
}

/*
 * The file's schema is created or upgraded by every read-write open
 * (init_schema), so by the time godwit db asks, it is current: the
 * version found and what this open did are reported.
 */
static int
sqlite_schema_version(struct userdb *db, int *version_r, int *latest_r,
		      char **error_r)
{
	(void)error_r;
	*version_r = to_sqlite(db)->version;
	*latest_r = SCHEMA_VERSION;
	return 0;
}

static int
sqlite_migrate(struct userdb *db, char ***done_r, size_t *n_r,
	       char **error_r)
{
	struct userdb_sqlite *s = to_sqlite(db);

	*done_r = NULL;
	*n_r = 0;
	if (s->readonly) {
		*error_r = xasprintf("%s: opened read-only", s->path);
		return -1;
	}
	if (s->opened_version == s->version)
		return 0;
	*done_r = xcalloc(1, sizeof(**done_r));
	(*done_r)[0] = s->opened_version == 0
			       ? xasprintf("created schema version %d",
					   s->version)
			       : xasprintf("upgraded schema version %d to %d",
					   s->opened_version, s->version);
	*n_r = 1;
	s->opened_version = s->version;
	return 0;
}

static int
sqlite_transaction(struct userdb *db, enum userdb_txn what, char **error_r)
{
	struct userdb_sqlite *s = to_sqlite(db);
	static const char *const sql[] = {
		[USERDB_BEGIN] = "BEGIN IMMEDIATE",
		[USERDB_COMMIT] = "COMMIT",
		[USERDB_ROLLBACK] = "ROLLBACK",
	};
	int r;

	/* read-only: a deferred transaction, a consistent snapshot */
	r = exec_sql(s, what == USERDB_BEGIN && s->readonly ? "BEGIN"
							     : sql[what],
		     error_r);
	if (what == USERDB_BEGIN)
		s->in_txn = r == 0;
	else
		s->in_txn = false;
	return r;
}

const struct userdb_ops userdb_sqlite_ops = {
	.name = "sqlite",
	.open = sqlite_open,
	.close = sqlite_close,
	.domain_exists = sqlite_domain_exists,
	.user_exists = sqlite_user_exists,
	.alias_lookup = sqlite_alias_lookup,
	.password_hash = sqlite_password_hash,
	.scram_secret = sqlite_scram_secret,
	.cram_secret = sqlite_cram_secret,
	.domain_add = sqlite_domain_add,
	.domain_del = sqlite_domain_del,
	.domain_list = sqlite_domain_list,
	.user_add = sqlite_user_add,
	.user_del = sqlite_user_del,
	.user_set_secrets = sqlite_user_set_secrets,
	.user_list = sqlite_user_list,
	.alias_add = sqlite_alias_add,
	.alias_del = sqlite_alias_del,
	.alias_list = sqlite_alias_list,
	.schema_version = sqlite_schema_version,
	.migrate = sqlite_migrate,
	.transaction = sqlite_transaction,
};
