/*
 * The SQLite user database backend (schema, upgrade from version 1, the
 * stored secrets), the admin commands that drive it (including the
 * Dovecot passwd-file import), and password hashing. Each test works in
 * its own temporary directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pwd.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "unit.h"

#include "cli/cli.h"
#include "cli/cmd.h"
#include "store/password.h"
#include "daemon/config.h"
#include "lib/util.h"
#include "net/sasl.h"
#include "store/userdb.h"

struct fixture {
	char dir[64];
	char path[128];
	struct config config;
};

static int
rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	strcpy(f->dir, "/tmp/godwit-userdb-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	/* the mode datadir_prepare() gives data_dir: no "fixed" warning */
	assert_int_equal(chmod(f->dir, 0750), 0);
	snprintf(f->path, sizeof(f->path), "%s/db/godwit.sqlite", f->dir);
	f->config.userdb.driver = "sqlite";
	f->config.data_dir = f->dir;
	/* as the loader fills it in: datadir_prepare() makes this file */
	f->config.userdb.path = f->path;
	f->config.hostname = "mx.example.test";
	f->config.smtp.recipient_delimiter = '+';
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static struct userdb *
open_rw(struct fixture *f)
{
	struct userdb *db = NULL;
	char *err = NULL;

	if (userdb_open(&f->config.userdb, false, &db, &err) < 0)
		fail_msg("open: %s", err);
	return db;
}

static struct userdb *
open_ro(struct fixture *f)
{
	struct userdb *db = NULL;
	char *err = NULL;

	if (userdb_open(&f->config.userdb, true, &db, &err) < 0)
		fail_msg("open read-only: %s", err);
	return db;
}

/* Runs one SQL statement on the file behind the backend's back. */
static void
raw_sql(const char *path, const char *sql)
{
	sqlite3 *h;

	assert_int_equal(sqlite3_open(path, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
}

/* ---- backend ---------------------------------------------------------- */

static void
test_create(void **state)
{
	struct fixture *f = *state;
	struct userdb *db;
	struct stat sb;
	sqlite3 *h;
	sqlite3_stmt *st;
	char dir[160];

	db = open_rw(f);
	userdb_close(&db);
	assert_null(db);

	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0640);
	snprintf(dir, sizeof(dir), "%s/db", f->dir);
	assert_int_equal(stat(dir, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0750);

	assert_int_equal(sqlite3_open_v2(f->path, &h, SQLITE_OPEN_READONLY,
					 NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h,
					    "SELECT version FROM schema_version",
					    -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 2);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_prepare_v2(h,
					    "SELECT scram_sha256, cram_secret"
					    " FROM users",
					    -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_prepare_v2(h, "PRAGMA journal_mode", -1, &st,
					    NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0),
			    "delete");
	sqlite3_finalize(st);
	sqlite3_close(h);

	/* Opening again keeps what is there. */
	db = open_rw(f);
	userdb_close(&db);
	db = open_ro(f);
	userdb_close(&db);
}

static void
test_open_errors(void **state)
{
	struct fixture *f = *state;
	struct userdb *db = NULL;
	struct config c = f->config;
	char *err = NULL, path[160];

	/* read-only never creates */
	assert_int_equal(userdb_open(&f->config.userdb, true, &db, &err), -1);
	assert_null(db);
	assert_non_null(strstr(err, f->path));
	free(err);
	err = NULL;
	assert_int_equal(access(f->path, F_OK), -1);

	c.userdb.backend = "oracle";
	assert_int_equal(userdb_open(&c.userdb, false, &db, &err), -1);
	assert_non_null(strstr(err, "unknown userdb backend"));
	free(err);
	err = NULL;
	/* a network backend needs a dsn; with one, it opens without
	 * connecting (the server is asked at the first operation) */
	c.userdb.backend = "postgresql";
	assert_int_equal(userdb_open(&c.userdb, true, &db, &err), -1);
	assert_non_null(strstr(err, "needs dsn"));
	free(err);
	err = NULL;
	c.userdb.dsn = "host=/nonexistent-dir dbname=x connect_timeout=1";
	assert_int_equal(userdb_open(&c.userdb, true, &db, &err), 0);
	assert_int_equal(userdb_domain_exists(db, "example.test"), -1);
	assert_int_equal(userdb_ping(db, &err), -1);
	assert_non_null(err);
	free(err);
	err = NULL;
	userdb_close(&db);
	c.userdb.dsn = NULL;
	c.userdb.backend = NULL;

	/* someone else's SQLite file is not touched */
	snprintf(path, sizeof(path), "%s/other.sqlite", f->dir);
	raw_sql(path, "CREATE TABLE t (x)");
	c = f->config;
	c.userdb.path = path;
	assert_int_equal(userdb_open(&c.userdb, false, &db, &err), -1);
	assert_non_null(strstr(err, "not a godwit user database"));
	free(err);
	err = NULL;
	assert_int_equal(userdb_open(&c.userdb, true, &db, &err), -1);
	assert_non_null(strstr(err, "not a godwit user database"));
	free(err);
	err = NULL;

	/* a newer schema than we know */
	db = open_rw(f);
	userdb_close(&db);
	raw_sql(f->path, "UPDATE schema_version SET version = 3");
	assert_int_equal(userdb_open(&f->config.userdb, true, &db, &err), -1);
	assert_non_null(strstr(err, "schema version 3"));
	free(err);
	err = NULL;
	assert_int_equal(userdb_open(&f->config.userdb, false, &db, &err), -1);
	assert_non_null(strstr(err, "schema version 3"));
	free(err);
}

enum op {
	DOMAIN_ADD,
	DOMAIN_DEL,
	USER_ADD,
	USER_DEL,
	USER_PASSWD,
	ALIAS_ADD,
	ALIAS_DEL,
};

struct op_case {
	enum op op;
	const char *a;
	const char *b;
	const char *error;	/* NULL: must succeed; else part of message */
};

static const struct op_case ops_script[] = {
	{DOMAIN_ADD, "example.test", NULL, NULL},
	{DOMAIN_ADD, "other.test", NULL, NULL},
	{DOMAIN_ADD, "example.test", NULL, "domain example.test already exists"},
	{USER_ADD, "alice@example.test", "$y$hash1", NULL},
	{USER_ADD, "bob@example.test", "$y$hash2", NULL},
	{USER_ADD, "alice@example.test", "$y$x", "user alice@example.test already exists"},
	{USER_ADD, "x@nowhere.test", "$y$x", "domain nowhere.test is not local: godwit domain add nowhere.test"},
	{USER_ADD, "Carol@example.test", "$y$x", "CHECK constraint failed"},
	{USER_ADD, "noat", "$y$x", "no domain"},
	{USER_PASSWD, "bob@example.test", "$y$hash3", NULL},
	{USER_PASSWD, "nobody@example.test", "$y$x", "user nobody@example.test does not exist"},
	{ALIAS_ADD, "info@example.test", "alice@example.test", NULL},
	{ALIAS_ADD, "info@example.test", "bob@example.test", NULL},
	{ALIAS_ADD, "info@example.test", "bob@example.test", "alias info@example.test -> bob@example.test already exists"},
	{ALIAS_ADD, "@example.test", "alice@example.test", NULL},
	{ALIAS_ADD, "x@nowhere.test", "alice@example.test", "domain nowhere.test is not local"},
	{ALIAS_ADD, "alice@example.test", "bob@example.test", "alice@example.test is a user"},
	{USER_ADD, "info@example.test", "$y$x", "info@example.test is an alias: remove it first"},
	{ALIAS_ADD, "fwd@other.test", "Some.One@remote.example", NULL},
	{DOMAIN_DEL, "example.test", NULL, "domain example.test still has 2 users and 3 aliases"},
	{DOMAIN_DEL, "other.test", NULL, "still has 0 users and 1 alias:"},
	{DOMAIN_DEL, "nowhere.test", NULL, "domain nowhere.test does not exist"},
	{ALIAS_DEL, "fwd@other.test", "nobody@remote.example", "no alias fwd@other.test -> nobody@remote.example"},
	{ALIAS_DEL, "fwd@other.test", NULL, NULL},
	{ALIAS_DEL, "fwd@other.test", NULL, "no alias fwd@other.test"},
	{DOMAIN_DEL, "other.test", NULL, NULL},
	{DOMAIN_ADD, "third.test", NULL, NULL},
	{USER_ADD, "zed@third.test", "$y$x", NULL},
	{USER_DEL, "zed@third.test", NULL, NULL},
	{USER_DEL, "zed@third.test", NULL, "user zed@third.test does not exist"},
};

static void
run_ops(struct userdb *db, const struct op_case *script, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const struct op_case *c = &script[i];
		char *err = NULL;
		int r = -2;

		switch (c->op) {
		case DOMAIN_ADD:
			r = db->ops->domain_add(db, c->a, &err);
			break;
		case DOMAIN_DEL:
			r = db->ops->domain_del(db, c->a, &err);
			break;
		case USER_ADD:
			r = db->ops->user_add(db, c->a, c->b, &err);
			break;
		case USER_DEL:
			r = db->ops->user_del(db, c->a, &err);
			break;
		case USER_PASSWD:
			r = db->ops->user_set_secrets(db, c->a, c->b, NULL,
						      NULL, &err);
			break;
		case ALIAS_ADD:
			r = db->ops->alias_add(db, c->a, c->b, &err);
			break;
		case ALIAS_DEL:
			r = db->ops->alias_del(db, c->a, c->b, &err);
			break;
		}
		if (c->error == NULL && r != 0)
			fail_msg("step %zu (%s): %s", i, c->a, err);
		if (c->error != NULL &&
		    (r != -1 || err == NULL || strstr(err, c->error) == NULL))
			fail_msg("step %zu (%s): want error \"%s\", got %d \"%s\"",
				 i, c->a, c->error, r, err ? err : "(none)");
		free(err);
	}
}

static void
assert_list(char **v, size_t n, const char *want)
{
	char buf[512] = "";
	size_t i;

	for (i = 0; i < n; i++) {
		if (i > 0)
			strcat(buf, ",");
		strcat(buf, v[i]);
	}
	assert_string_equal(buf, want);
	userdb_string_list_free(&v, n);
	assert_null(v);
}

static void
test_admin_ops(void **state)
{
	struct fixture *f = *state;
	struct userdb *db = open_rw(f);
	char **v, *err = NULL;
	size_t n;

	run_ops(db, ops_script, sizeof(ops_script) / sizeof(ops_script[0]));

	assert_int_equal(db->ops->domain_list(db, &v, &n, &err), 0);
	assert_list(v, n, "example.test,third.test");
	assert_int_equal(db->ops->user_list(db, NULL, &v, &n, &err), 0);
	assert_list(v, n, "alice@example.test,bob@example.test");
	assert_int_equal(db->ops->user_list(db, "third.test", &v, &n, &err), 0);
	assert_list(v, n, "");
	assert_int_equal(db->ops->alias_list(db, NULL, &v, &n, &err), 0);
	assert_list(v, n,
		    "@example.test alice@example.test,"
		    "info@example.test alice@example.test,"
		    "info@example.test bob@example.test");
	assert_int_equal(db->ops->alias_list(db, "third.test", &v, &n, &err),
			 0);
	assert_list(v, n, "");
	userdb_close(&db);
}

static void
test_lookups_read_only(void **state)
{
	static const struct op_case build[] = {
		{DOMAIN_ADD, "example.test", NULL, NULL},
		{USER_ADD, "alice@example.test", "$y$hash1", NULL},
		{ALIAS_ADD, "info@example.test", "bob@remote.example", NULL},
		{ALIAS_ADD, "info@example.test", "alice@example.test", NULL},
	};
	static const struct {
		int kind;	/* 0 domain, 1 user, 2 alias, 3 hash */
		const char *key;
		int want;
		const char *value;
	} rows[] = {
		{0, "example.test", 1, NULL},
		{0, "EXAMPLE.TEST", 0, NULL},	/* keys are normalised */
		{0, "example.tes", 0, NULL},
		{0, "xample.test", 0, NULL},
		{0, "%", 0, NULL},
		{1, "alice@example.test", 1, NULL},
		{1, "alice@example.tes", 0, NULL},
		{1, "info@example.test", 0, NULL},
		{1, "'; DROP TABLE users; --", 0, NULL},
		{2, "info@example.test", 1,
		 "alice@example.test,bob@remote.example"},
		{2, "alice@example.test", 0, ""},
		{2, "@example.test", 0, ""},
		{3, "alice@example.test", 1, "$y$hash1"},
		{3, "info@example.test", 0, NULL},
	};
	struct fixture *f = *state;
	struct userdb *db = open_rw(f);
	struct userdb_alias_list l;
	char *hash, *err = NULL, buf[256];
	size_t i, j;
	int r;

	run_ops(db, build, sizeof(build) / sizeof(build[0]));
	userdb_close(&db);

	db = open_ro(f);
	/* Twice, so that the cached statements are reused after reset. */
	for (j = 0; j < 2 * sizeof(rows) / sizeof(rows[0]); j++) {
		i = j % (sizeof(rows) / sizeof(rows[0]));
		switch (rows[i].kind) {
		case 0:
			r = userdb_domain_exists(db, rows[i].key);
			break;
		case 1:
			r = userdb_user_exists(db, rows[i].key);
			break;
		case 2:
			r = userdb_alias_lookup(db, rows[i].key, &l);
			buf[0] = '\0';
			for (size_t k = 0; k < l.n; k++) {
				if (k > 0)
					strcat(buf, ",");
				strcat(buf, l.targets[k]);
			}
			userdb_alias_list_clear(&l);
			assert_null(l.targets);
			assert_string_equal(buf, rows[i].value);
			break;
		default:
			r = db->ops->password_hash(db, rows[i].key, &hash);
			if (rows[i].value != NULL)
				assert_string_equal(hash, rows[i].value);
			else
				assert_null(hash);
			free(hash);
			break;
		}
		if (r != rows[i].want)
			fail_msg("row %zu (%s): got %d want %d", i,
				 rows[i].key, r, rows[i].want);
	}
	/* A read-only handle cannot write. */
	assert_int_equal(db->ops->domain_add(db, "new.test", &err), -1);
	assert_non_null(err);
	free(err);
	userdb_close(&db);
}

/*
 * A lookup while another process holds the write lock waits for it (the
 * busy timeout) instead of failing at once.
 */
static void
test_busy_wait(void **state)
{
	static const struct op_case build[] = {
		{DOMAIN_ADD, "example.test", NULL, NULL},
	};
	struct fixture *f = *state;
	struct userdb *db = open_rw(f);
	struct timespec t0, t1;
	int p[2], status;
	char c;
	pid_t pid;
	long ms;

	run_ops(db, build, 1);
	userdb_close(&db);
	db = open_ro(f);

	assert_int_equal(pipe(p), 0);
	if ((pid = fork()) == 0) {
		sqlite3 *h;

		close(p[0]);
		if (sqlite3_open(f->path, &h) != SQLITE_OK ||
		    sqlite3_exec(h,
				 "BEGIN EXCLUSIVE;"
				 "INSERT INTO domains VALUES ('late.test')",
				 NULL, NULL, NULL) != SQLITE_OK)
			_exit(1);
		if (write(p[1], "x", 1) != 1)
			_exit(1);
		usleep(300 * 1000);
		_exit(sqlite3_exec(h, "COMMIT", NULL, NULL, NULL) == SQLITE_OK
			      ? 0
			      : 1);
	}
	close(p[1]);
	assert_int_equal(read(p[0], &c, 1), 1);
	close(p[0]);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(userdb_domain_exists(db, "late.test"), 1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 +
	     (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms >= 100);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	userdb_close(&db);
}

/* ---- passwords ------------------------------------------------------------ */

static void
test_password_hash_verify(void **state)
{
	static const struct {
		const char *password;
		const char *hash;
		int want;
	} rows[] = {
		/* Drepper's SHA-crypt specification, test vector 1 */
		{"Hello world!",
		 "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/"
		 "O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
		 1},
		{"Hello world?",
		 "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/"
		 "O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
		 0},
		/* Drepper's SHA-crypt specification, SHA-256 vector 1 (and
		 * what `openssl passwd -5` makes of it) */
		{"Hello world!",
		 "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5", 1},
		{"Hello world.",
		 "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5", 0},
		/* OpenBSD bcrypt test vector, and the same under the other
		 * prefixes bcrypt hashes carry (Dovecot's BLF-CRYPT: $2y$) */
		{"U*U", "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
		 1},
		{"U*U", "$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
		 1},
		{"U*U", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
		 1},
		{"U*V", "$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
		 0},
		/* yescrypt, fixed salt (regression row: made by libxcrypt) */
		{"Hello world!",
		 "$y$j9T$saltstringsaltstring$"
		 "8wjgOY3Go3vdenGDG1O4O1uBTlbh6MhFfUFlkZMUNB2",
		 1},
		{"Hello world?",
		 "$y$j9T$saltstringsaltstring$"
		 "8wjgOY3Go3vdenGDG1O4O1uBTlbh6MhFfUFlkZMUNB2",
		 0},
		{"U*V", "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
		 0},
		/* locked accounts never match */
		{"", "!", 0},
		{"x", "*", 0},
		{"x", "", 0},
		{"x", "!$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl", 0},
		/* a hash libcrypt does not know is an error, not a match */
		{"x", "$unknown$abc", -1},
	};
	const char *err = NULL;
	char *h1, *h2;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if (password_verify(rows[i].password, rows[i].hash) !=
		    rows[i].want)
			fail_msg("row %zu: %s", i, rows[i].hash);

	h1 = password_hash("correct horse", &err);
	assert_non_null(h1);
	h2 = password_hash("correct horse", &err);
	assert_non_null(h2);
	assert_memory_equal(h1, "$y$", 3);
	assert_string_not_equal(h1, h2);	/* salted */
	assert_int_equal(password_verify("correct horse", h1), 1);
	assert_int_equal(password_verify("correct horse", h2), 1);
	assert_int_equal(password_verify("correct horsE", h1), 0);
	assert_int_equal(password_verify("", h1), 0);
	free(h1);
	free(h2);
}

/* ---- admin commands ------------------------------------------------------ */

struct run {
	int rc;
	char out[4096];
	char err[4096];
};

static void
slurp(FILE *fp, char *buf, size_t size)
{
	size_t n;

	rewind(fp);
	n = fread(buf, 1, size - 1, fp);
	buf[n] = '\0';
	fclose(fp);
}

/*
 * Runs an admin command with argv (NULL-terminated), stdin fed from a
 * pipe holding input (NULL: /dev/null), stdout and stderr captured.
 */
static struct run
run_cmd(struct fixture *f, int (*cmd)(const struct config *, int, char **),
	const char *input, const char *const *args)
{
	struct run r;
	char *argv[16];
	FILE *out = tmpfile(), *err = tmpfile();
	int argc = 0, saved[3], p[2];

	assert_non_null(out);
	assert_non_null(err);
	while (args[argc] != NULL && argc < 15) {
		argv[argc] = (char *)args[argc];
		argc++;
	}
	argv[argc] = NULL;

	if (input != NULL) {
		assert_int_equal(pipe(p), 0);
		assert_int_equal(write_full(p[1], input, strlen(input)), 0);
		close(p[1]);
	} else
		assert_true((p[0] = open("/dev/null", O_RDONLY)) >= 0);
	fflush(stdout);
	fflush(stderr);
	saved[0] = dup(0);
	saved[1] = dup(1);
	saved[2] = dup(2);
	dup2(p[0], 0);
	close(p[0]);
	dup2(fileno(out), 1);
	dup2(fileno(err), 2);

	r.rc = cmd(&f->config, argc, argv);

	fflush(stdout);
	fflush(stderr);
	dup2(saved[0], 0);
	dup2(saved[1], 1);
	dup2(saved[2], 2);
	close(saved[0]);
	close(saved[1]);
	close(saved[2]);
	slurp(out, r.out, sizeof(r.out));
	slurp(err, r.err, sizeof(r.err));
	return r;
}

enum which { DOMAIN, USER, ALIAS };

struct cmd_case {
	enum which which;
	const char *args[6];
	const char *input;	/* stdin; NULL = /dev/null */
	int rc;
	const char *out;	/* exact stdout, or NULL: not checked */
	const char *err;	/* substring of stderr, or NULL: must be empty */
};

static const struct cmd_case cmd_script[] = {
	/* usage */
	{DOMAIN, {"domain"}, NULL, 2, "", "usage: godwit domain"},
	{DOMAIN, {"domain", "frob", "x.test"}, NULL, 2, "", "usage:"},
	{DOMAIN, {"domain", "add"}, NULL, 2, "", "usage:"},
	{DOMAIN, {"domain", "add", "a.test", "b.test"}, NULL, 2, "", "usage:"},
	{USER, {"user"}, NULL, 2, "", "usage: godwit user"},
	{USER, {"user", "add"}, NULL, 2, "", "usage:"},
	{USER, {"user", "add", "a@b.test", "--bogus"}, NULL, 2, "", "usage:"},
	{USER, {"user", "add", "a@b.test", "c@b.test"}, NULL, 2, "", "usage:"},
	{ALIAS, {"alias", "add", "a@b.test"}, NULL, 2, "", "usage: godwit alias"},
	{ALIAS, {"alias", "del"}, NULL, 2, "", "usage:"},

	/* the list of a database that does not exist yet */
	{DOMAIN, {"domain", "list"}, NULL, 1, "", "godwit: cannot open user database"},

	/* domains */
	{DOMAIN, {"domain", "add", "Example.TEST."}, NULL, 0, "added domain example.test\n", NULL},
	{DOMAIN, {"domain", "add", "example.test"}, NULL, 1, "", "godwit: domain example.test already exists"},
	{DOMAIN, {"domain", "add", "other.test"}, NULL, 0, NULL, NULL},
	{DOMAIN, {"domain", "add", "-bad.test"}, NULL, 1, "", "not a valid domain name"},
	{DOMAIN, {"domain", "add", "a..test"}, NULL, 1, "", "not a valid domain name"},
	{DOMAIN, {"domain", "add", "a_b.test"}, NULL, 1, "", "not a valid domain name"},
	{DOMAIN, {"domain", "add", "192.0.2.1"}, NULL, 1, "", "not a valid domain name"},
	{DOMAIN, {"domain", "add", "[192.0.2.1]"}, NULL, 1, "", "not a valid domain name"},
	{DOMAIN, {"domain", "add", "b\xc3\xbc" "cher.test"}, NULL, 1, "", "xn--"},
	{DOMAIN, {"domain", "add", "a-.test"}, NULL, 1, "", "not a valid domain name"},
	{DOMAIN, {"domain", "add", ""}, NULL, 1, "", "not a valid domain name"},
	{DOMAIN, {"domain", "list"}, NULL, 0, "example.test\nother.test\n", NULL},

	/* users */
	{USER, {"user", "add", "Alice@Example.Test", "--password-stdin"}, "s3cret\n", 0, "added user alice@example.test\n", NULL},
	{USER, {"user", "add", "bob@example.test"}, "pw-bob", 0, NULL, NULL},
	{USER, {"user", "add", "carol@example.test"}, "", 1, "", "godwit: empty password refused"},
	{USER, {"user", "add", "carol@example.test"}, "\n", 1, "", "empty password refused"},
	{USER, {"user", "add", "alice@example.test"}, "x\n", 1, "", "user alice@example.test already exists"},
	{USER, {"user", "add", "x@nowhere.test"}, "x\n", 1, "", "domain nowhere.test is not local: godwit domain add nowhere.test"},
	{USER, {"user", "add", "noat.test"}, "x\n", 1, "", "not an address"},
	{USER, {"user", "add", "a..b@example.test"}, "x\n", 1, "", "local part"},
	{USER, {"user", "add", "a/b@example.test"}, "x\n", 1, "", "local part"},
	{USER, {"user", "add", "\"a b\"@example.test"}, "x\n", 1, "", "local part"},
	{USER, {"user", "add", "@example.test"}, "x\n", 1, "", "empty local part"},
	{USER, {"user", "add", "zed@other.test"}, "pw\n", 0, NULL, NULL},
	{USER, {"user", "list"}, NULL, 0, "alice@example.test\nbob@example.test\nzed@other.test\n", NULL},
	{USER, {"user", "list", "EXAMPLE.test"}, NULL, 0, "alice@example.test\nbob@example.test\n", NULL},
	{USER, {"user", "passwd", "--password-stdin", "bob@example.test"}, "new-bob\n", 0, "changed password of bob@example.test\n", NULL},
	{USER, {"user", "passwd", "nobody@example.test"}, "x\n", 1, "", "user nobody@example.test does not exist"},

	/* aliases */
	{ALIAS, {"alias", "add", "Info@example.test", "ALICE@Example.test"}, NULL, 0, "added alias info@example.test -> alice@example.test\n", NULL},
	{ALIAS, {"alias", "add", "info@example.test", "Some.One@Remote.Example"}, NULL, 0, "added alias info@example.test -> Some.One@remote.example\n", NULL},
	{ALIAS, {"alias", "add", "info@example.test", "bob@example.test"}, NULL, 0, NULL, NULL},
	{ALIAS, {"alias", "add", "info@example.test", "bob@example.test"}, NULL, 1, "", "already exists"},
	{ALIAS, {"alias", "add", "@example.test", "alice@example.test"}, NULL, 0, "added alias @example.test -> alice@example.test\n", NULL},
	{ALIAS, {"alias", "add", "x@example.test", "@example.test"}, NULL, 1, "", "empty local part"},
	{ALIAS, {"alias", "add", "x@example.test", "Later@example.test"}, NULL, 0, "added alias x@example.test -> later@example.test\n", "warning: later@example.test is neither a user nor an alias"},
	{ALIAS, {"alias", "add", "y@example.test", "x@example.test"}, NULL, 0, NULL, NULL},
	{ALIAS, {"alias", "del", "x@example.test"}, NULL, 0, NULL, NULL},
	{ALIAS, {"alias", "del", "y@example.test"}, NULL, 0, NULL, NULL},
	{ALIAS, {"alias", "add", "loop@example.test", "LOOP@example.test"}, NULL, 1, "", "cannot point to itself"},
	{ALIAS, {"alias", "add", "a@nowhere.test", "alice@example.test"}, NULL, 1, "", "domain nowhere.test is not local"},
	{ALIAS, {"alias", "add", "alice@example.test", "bob@example.test"}, NULL, 1, "", "is a user"},
	{ALIAS, {"alias", "list", "example.test"}, NULL, 0,
	 "@example.test alice@example.test\n"
	 "info@example.test Some.One@remote.example\n"
	 "info@example.test alice@example.test\n"
	 "info@example.test bob@example.test\n", NULL},
	{ALIAS, {"alias", "del", "info@example.test", "bob@example.test"}, NULL, 0, NULL, NULL},
	{ALIAS, {"alias", "del", "info@example.test", "bob@example.test"}, NULL, 1, "", "no alias info@example.test -> bob@example.test"},
	{ALIAS, {"alias", "del", "info@example.test"}, NULL, 0, "deleted alias info@example.test\n", NULL},
	{ALIAS, {"alias", "list"}, NULL, 0, "@example.test alice@example.test\n", NULL},

	/* a domain with users is not deleted */
	{DOMAIN, {"domain", "del", "example.test"}, NULL, 1, "", "domain example.test still has 2 users and 1 alias: remove them first"},
	{USER, {"user", "del", "zed@other.test"}, NULL, 0, NULL, NULL},
	{USER, {"user", "del", "zed@other.test"}, NULL, 1, "", "user zed@other.test does not exist"},
	{DOMAIN, {"domain", "del", "other.test"}, NULL, 0, "deleted domain other.test\n", NULL},
	{DOMAIN, {"domain", "del", "other.test"}, NULL, 1, "", "domain other.test does not exist"},
	{DOMAIN, {"domain", "list"}, NULL, 0, "example.test\n", NULL},
};

static void
test_admin_commands(void **state)
{
	static int (*const cmds[])(const struct config *, int, char **) = {
		[DOMAIN] = cmd_domain,
		[USER] = cmd_user,
		[ALIAS] = cmd_alias,
	};
	struct fixture *f = *state;
	struct userdb *db;
	char *hash;
	size_t i;

	for (i = 0; i < sizeof(cmd_script) / sizeof(cmd_script[0]); i++) {
		const struct cmd_case *c = &cmd_script[i];
		struct run r = run_cmd(f, cmds[c->which], c->input, c->args);

		if (r.rc != c->rc || (c->out != NULL &&
				      strcmp(r.out, c->out) != 0) ||
		    (c->err == NULL ? r.err[0] != '\0'
				    : strstr(r.err, c->err) == NULL))
			fail_msg("step %zu (%s %s %s): rc %d (want %d)\n"
				 "stdout: %s\nstderr: %s",
				 i, c->args[0], c->args[1],
				 c->args[2] ? c->args[2] : "", r.rc, c->rc,
				 r.out, r.err);
	}

	/* The passwords went through hashing, newline stripped. */
	db = open_ro(f);
	assert_int_equal(db->ops->password_hash(db, "alice@example.test", &hash),
			 1);
	assert_memory_equal(hash, "$y$", 3);
	assert_int_equal(password_verify("s3cret", hash), 1);
	assert_int_equal(password_verify("s3cret\n", hash), 0);
	free(hash);
	assert_int_equal(db->ops->password_hash(db, "bob@example.test", &hash),
			 1);
	assert_int_equal(password_verify("new-bob", hash), 1);
	assert_int_equal(password_verify("pw-bob", hash), 0);
	free(hash);
	userdb_close(&db);
}

/* One line is the password: CR LF and what follows are not part of it. */
static void
test_password_one_line(void **state)
{
	static const char *const add_domain[] = {"domain", "add", "e.test",
						 NULL};
	static const char *const add_user[] = {"user", "add", "u@e.test",
					       "--password-stdin", NULL};
	static const char *const passwd[] = {"user", "passwd", "u@e.test",
					     NULL};
	struct fixture *f = *state;
	struct userdb *db;
	struct run r;
	char *hash, big[1100];

	r = run_cmd(f, cmd_domain, NULL, add_domain);
	assert_int_equal(r.rc, 0);
	r = run_cmd(f, cmd_user, "first\r\nsecond\n", add_user);
	assert_int_equal(r.rc, 0);
	db = open_ro(f);
	assert_int_equal(db->ops->password_hash(db, "u@e.test", &hash), 1);
	assert_int_equal(password_verify("first", hash), 1);
	free(hash);
	userdb_close(&db);

	/* too long */
	memset(big, 'x', sizeof(big) - 2);
	big[sizeof(big) - 2] = '\n';
	big[sizeof(big) - 1] = '\0';
	r = run_cmd(f, cmd_user, big, passwd);
	assert_int_equal(r.rc, 1);
	assert_non_null(strstr(r.err, "too long"));
}

/*
 * As root with config->user set, a database the command creates goes to
 * that user, so that the workers, which drop to it, can read it.
 */
static void
test_ownership(void **state)
{
	static const char *const args[] = {"domain", "add", "e.test", NULL};
	struct fixture *f = *state;
	struct passwd *pw;
	struct stat sb;
	struct run r;
	char dir[160];

	if (geteuid() != 0 || (pw = getpwnam("nobody")) == NULL) {
		skip();
		return;
	}
	f->config.user = "nobody";
	r = run_cmd(f, cmd_domain, NULL, args);
	assert_int_equal(r.rc, 0);
	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(sb.st_uid, (uid_t)0);
	assert_int_equal(sb.st_gid, pw->pw_gid);
	assert_int_equal(sb.st_mode & 07777, 0640);
	snprintf(dir, sizeof(dir), "%s/db", f->dir);
	assert_int_equal(stat(dir, &sb), 0);
	assert_int_equal(sb.st_uid, (uid_t)0);
	assert_int_equal(sb.st_gid, pw->pw_gid);
	assert_int_equal(sb.st_mode & 07777, 0750);

	/* An unknown account is a warning, not a failure. */
	f->config.user = "no-such-user-godwit";
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	r = run_cmd(f, cmd_domain, NULL, args);
	assert_int_equal(r.rc, 0);
	assert_non_null(strstr(r.err, "warning: user 'no-such-user-godwit' does not exist"));
}

/* ---- schema upgrade and stored secrets ------------------------------------ */

/* The version 1 schema, as the first release wrote it. */
static const char schema_v1_sql[] =
	"CREATE TABLE schema_version (version INTEGER NOT NULL);"
	"INSERT INTO schema_version (version) VALUES (1);"
	"CREATE TABLE domains ("
	" name TEXT PRIMARY KEY NOT NULL CHECK (name = lower(name)));"
	"CREATE TABLE users ("
	" address TEXT PRIMARY KEY NOT NULL CHECK (address = lower(address)),"
	" domain TEXT NOT NULL REFERENCES domains (name),"
	" password_hash TEXT NOT NULL,"
	" created INTEGER NOT NULL DEFAULT (strftime('%s', 'now')));"
	"CREATE INDEX users_domain ON users (domain);"
	"CREATE TABLE aliases ("
	" source TEXT NOT NULL CHECK (source = lower(source)),"
	" domain TEXT NOT NULL REFERENCES domains (name),"
	" target TEXT NOT NULL,"
	" PRIMARY KEY (source, target));"
	"CREATE INDEX aliases_domain ON aliases (domain);"
	"INSERT INTO domains VALUES ('example.test');"
	"INSERT INTO users (address, domain, password_hash)"
	" VALUES ('alice@example.test', 'example.test', '$y$old');";

static int
file_version(const char *path)
{
	sqlite3 *h;
	sqlite3_stmt *st;
	int v;

	assert_int_equal(sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h,
					    "SELECT max(version) FROM"
					    " schema_version",
					    -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
	return v;
}

/* Asserts the three stored forms of address (NULL: none). */
static void
assert_secrets(struct userdb *db, const char *address, const char *hash,
	       const char *scram, const char *cram)
{
	char *v;

	assert_int_equal(db->ops->password_hash(db, address, &v),
			 hash != NULL);
	if (hash != NULL)
		assert_string_equal(v, hash);
	free(v);
	assert_int_equal(db->ops->scram_secret(db, address, &v),
			 scram != NULL);
	if (scram != NULL)
		assert_string_equal(v, scram);
	else
		assert_null(v);
	free(v);
	assert_int_equal(db->ops->cram_secret(db, address, &v), cram != NULL);
	if (cram != NULL)
		assert_string_equal(v, cram);
	else
		assert_null(v);
	free(v);
}

static void
test_upgrade_v1(void **state)
{
	static const char scram[] =
		"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"
		"WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
		"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";
	struct fixture *f = *state;
	struct userdb *db;
	char dir[160], *err = NULL;

	snprintf(dir, sizeof(dir), "%s/db", f->dir);
	assert_int_equal(mkdir(dir, 0750), 0);
	raw_sql(f->path, schema_v1_sql);

	/* A daemon reading an old file: lookups work, no secrets yet, and
	 * the file is not changed. */
	db = open_ro(f);
	assert_int_equal(userdb_user_exists(db, "alice@example.test"), 1);
	assert_secrets(db, "alice@example.test", "$y$old", NULL, NULL);
	assert_secrets(db, "nobody@example.test", NULL, NULL, NULL);
	userdb_close(&db);
	assert_int_equal(file_version(f->path), 1);

	/* Any writable open upgrades it, keeping the users. */
	db = open_rw(f);
	userdb_close(&db);
	assert_int_equal(file_version(f->path), 2);
	db = open_ro(f);
	assert_secrets(db, "alice@example.test", "$y$old", NULL, NULL);
	userdb_close(&db);

	/* Secrets round trip, and NULL clears them again. */
	db = open_rw(f);
	assert_int_equal(db->ops->user_set_secrets(db, "alice@example.test",
						   "$y$new", scram, "pencil",
						   &err),
			 0);
	assert_int_equal(db->ops->user_set_secrets(db, "bob@example.test",
						   "$y$new", NULL, NULL, &err),
			 -1);
	assert_string_equal(err, "user bob@example.test does not exist");
	free(err);
	err = NULL;
	userdb_close(&db);
	db = open_ro(f);
	assert_secrets(db, "alice@example.test", "$y$new", scram, "pencil");
	userdb_close(&db);
	db = open_rw(f);
	assert_int_equal(db->ops->user_set_secrets(db, "alice@example.test",
						   "$y$newer", NULL, NULL,
						   &err),
			 0);
	assert_secrets(db, "alice@example.test", "$y$newer", NULL, NULL);
	userdb_close(&db);
}

/* The SCRAM secret stored for user is the one password derives. */
static void
assert_scram_of(struct userdb *db, const char *user, const char *password)
{
	struct sasl_scram_secret stored, want;
	char *text;

	assert_int_equal(db->ops->scram_secret(db, user, &text), 1);
	assert_int_equal(sasl_scram_parse(text, &stored), 0);
	free(text);
	assert_int_equal(stored.iterations, SASL_SCRAM_ITER_DEFAULT);
	assert_int_equal(stored.saltlen, SASL_SCRAM_SALT_DEFAULT);
	assert_int_equal(sasl_scram_derive(password, stored.salt,
					   stored.saltlen, stored.iterations,
					   &want),
			 0);
	assert_memory_equal(stored.stored_key, want.stored_key,
			    SASL_SCRAM_KEY_LEN);
	assert_memory_equal(stored.server_key, want.server_key,
			    SASL_SCRAM_KEY_LEN);
}

/* user add and passwd store every form; CRAM only when configured. */
static void
test_secrets_commands(void **state)
{
	static const char *const add_domain[] = {"domain", "add", "e.test",
						 NULL};
	static const char *const add_user[] = {"user", "add", "u@e.test",
					       NULL};
	static const char *const passwd[] = {"user", "passwd", "u@e.test",
					     NULL};
	struct fixture *f = *state;
	struct userdb *db;
	struct run r;
	char *v, *first;

	assert_int_equal(run_cmd(f, cmd_domain, NULL, add_domain).rc, 0);
	f->config.auth.cram_md5 = true;
	r = run_cmd(f, cmd_user, "pencil\n", add_user);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.err, "");
	db = open_ro(f);
	assert_int_equal(db->ops->password_hash(db, "u@e.test", &v), 1);
	assert_int_equal(password_verify("pencil", v), 1);
	free(v);
	assert_scram_of(db, "u@e.test", "pencil");
	assert_int_equal(db->ops->cram_secret(db, "u@e.test", &v), 1);
	assert_string_equal(v, "pencil");
	free(v);
	assert_int_equal(db->ops->scram_secret(db, "u@e.test", &first), 1);
	userdb_close(&db);

	/* CRAM-MD5 turned off: the next password change drops the secret. */
	f->config.auth.cram_md5 = false;
	r = run_cmd(f, cmd_user, "pencil\n", passwd);
	assert_int_equal(r.rc, 0);
	db = open_ro(f);
	assert_scram_of(db, "u@e.test", "pencil");
	assert_int_equal(db->ops->scram_secret(db, "u@e.test", &v), 1);
	assert_string_not_equal(v, first);	/* a fresh salt */
	free(v);
	free(first);
	assert_int_equal(db->ops->cram_secret(db, "u@e.test", &v), 0);
	assert_null(v);
	userdb_close(&db);

	/* Not printable ASCII: no SCRAM secret, and a note why. */
	r = run_cmd(f, cmd_user, "p\xc3\xa4ss\n", passwd);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.err, "godwit: note: the password of u@e.test is "
				   "not printable ASCII, so it cannot be used "
				   "with SCRAM-SHA-256 (PLAIN and LOGIN "
				   "work)\n");
	db = open_ro(f);
	assert_int_equal(db->ops->password_hash(db, "u@e.test", &v), 1);
	assert_int_equal(password_verify("p\xc3\xa4ss", v), 1);
	free(v);
	assert_int_equal(db->ops->scram_secret(db, "u@e.test", &v), 0);
	userdb_close(&db);
}

/* ---- user import ---------------------------------------------------------- */

#define SHA512_HELLO                                                           \
	"$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/"                   \
	"O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"
#define SHA256_HELLO "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"
#define BCRYPT_UU "05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"

struct import_case {
	const char *args[6];	/* "@FILE@" stands for the file below */
	const char *file;	/* written to a file first; NULL: none */
	const char *input;	/* stdin */
	int rc;
	const char *out;	/* exact */
	const char *err;	/* exact, "@FILE@" replaced */
};

static const struct import_case import_script[] = {
	{{"user", "import"}, NULL, NULL, 2, "", "usage: godwit user"},
	{{"user", "import", "a", "b"}, NULL, NULL, 2, "", "usage: godwit user"},
	{{"user", "import", "-", "--bogus"}, NULL, NULL, 2, "", "usage: godwit user"},
	{{"user", "import", "/nonexistent/passwd"}, NULL, NULL, 1, "",
	 "godwit: /nonexistent/passwd: No such file or directory\n"},
	{{"user", "import", "-"}, NULL,
	 "# Dovecot users\n"
	 "\n"
	 "alice@example.test:{SHA512-CRYPT}" SHA512_HELLO ":1000:1000::/home/alice::\n"
	 "Bob@Example.Test:{blf-crypt}$2y$" BCRYPT_UU ":::\n"
	 "carol@example.test:{PLAIN}pencil\n"
	 "dave@example.test:" SHA256_HELLO "\n"
	 "erin@example.test:{CRYPT}$2b$" BCRYPT_UU "\n"
	 "frank@example.test:{MD5}$1$abc$xyz\n"
	 "gina@example.test:{SHA512-CRYPT}" SHA256_HELLO "\n"
	 "hal@example.test:{SHA512-CRYPT}$6$saltstring$svn8UoSVap\n"
	 "ivan@example.test:secret\n"
	 "judy@nowhere.test:{PLAIN}x\n"
	 "noatsign:{PLAIN}x\n"
	 "kim@example.test\n"
	 "lee@example.test:{PLAIN}\n"
	 "mo@example.test:{PLAIN\n"
	 "alice@example.test:{PLAIN}again\n",
	 1, "imported 5 users, skipped 10\n",
	 /* libxcrypt counts sha256crypt as legacy */
	 "(stdin):6: note: dave@example.test has a weak legacy hash; have the password changed\n"
	 "(stdin):8: unsupported password scheme {MD5} (use SHA512-CRYPT, SHA256-CRYPT, BLF-CRYPT, CRYPT or PLAIN)\n"
	 "(stdin):9: {SHA512-CRYPT} hash must start with $6$\n"
	 "(stdin):10: truncated or malformed crypt hash\n"
	 "(stdin):11: not a crypt hash libcrypt knows\n"
	 "(stdin):12: domain nowhere.test is not local: godwit domain add nowhere.test (or import with --create-domains)\n"
	 "(stdin):13: noatsign: not an address (expected local@domain)\n"
	 "(stdin):14: expected user@domain:{SCHEME}password\n"
	 "(stdin):15: empty password\n"
	 "(stdin):16: unterminated {SCHEME}\n"
	 "(stdin):17: user alice@example.test already exists, skipped (--update replaces its password)\n"},
	{{"user", "import", "--update", "-", "--create-domains"}, NULL,
	 "alice@example.test:{CLEARTEXT}newpw\n"
	 "judy@nowhere.test:{PLAIN}x\n"
	 "ned@example.test:{CRYPT}abJnggxhB/yWI\n",
	 0, "added domain nowhere.test\nimported 3 users, skipped 0\n",
	 "(stdin):3: note: ned@example.test has a weak legacy hash; have the password changed\n"},
	/* a file with CRLF line ends and no final newline */
	{{"user", "import", "@FILE@"},
	 "# from a Windows editor\r\nzed@example.test:{PLAIN}zzz\r\nx@example.test:{SSHA}abc",
	 NULL, 1, "imported 1 users, skipped 1\n",
	 "@FILE@:3: unsupported password scheme {SSHA} (use SHA512-CRYPT, SHA256-CRYPT, BLF-CRYPT, CRYPT or PLAIN)\n"},
	{{"user", "import", "-"}, NULL, "@LONG@", 1,
	 "imported 1 users, skipped 1\n", "(stdin):1: line too long\n"},
};

/* s with every "@FILE@" replaced by file, in buf. */
static const char *
subst(const char *s, const char *file, char *buf, size_t size)
{
	const char *p;
	size_t n = 0;

	buf[0] = '\0';
	while ((p = strstr(s, "@FILE@")) != NULL) {
		n += (size_t)snprintf(buf + n, size - n, "%.*s%s", (int)(p - s),
				      s, file);
		assert_true(n < size);
		s = p + 6;
	}
	n += (size_t)snprintf(buf + n, size - n, "%s", s);
	assert_true(n < size);
	return buf;
}

static void
test_import(void **state)
{
	static const char *const add_domain[] = {"domain", "add",
						 "example.test", NULL};
	struct fixture *f = *state;
	struct userdb *db;
	struct run r;
	char file[160], argbuf[6][200], errbuf[1024], *v, *longin = NULL;
	const char *args[7];
	size_t i, j;
	int fd;

	snprintf(file, sizeof(file), "%s/passwd", f->dir);
	longin = malloc(6000);
	assert_non_null(longin);
	memset(longin, 'a', 5000);
	strcpy(longin + 5000, "\nzed2@example.test:{PLAIN}z\n");
	assert_int_equal(run_cmd(f, cmd_domain, NULL, add_domain).rc, 0);

	for (i = 0; i < sizeof(import_script) / sizeof(import_script[0]); i++) {
		const struct import_case *c = &import_script[i];

		for (j = 0; j < 6 && c->args[j] != NULL; j++)
			args[j] = subst(c->args[j], file, argbuf[j],
					sizeof(argbuf[j]));
		args[j] = NULL;
		if (c->file != NULL) {
			fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
			assert_true(fd >= 0);
			assert_int_equal(write_full(fd, c->file,
						    strlen(c->file)),
					 0);
			close(fd);
		}
		r = run_cmd(f, cmd_user,
			    c->input != NULL && strcmp(c->input, "@LONG@") == 0
				    ? longin
				    : c->input,
			    args);
		subst(c->err, file, errbuf, sizeof(errbuf));
		if (r.rc != c->rc || strcmp(r.out, c->out) != 0 ||
		    (c->rc == 2 ? strstr(r.err, errbuf) == NULL
				: strcmp(r.err, errbuf) != 0)) {
			free(longin);
			fail_msg("row %zu: rc %d (want %d)\nstdout: %s\n"
				 "stderr: %s\nwant stderr: %s",
				 i, r.rc, c->rc, r.out, r.err, errbuf);
		}
	}
	free(longin);

	db = open_ro(f);
	/* crypt hashes are kept as they are, with no SCRAM secret */
	assert_secrets(db, "bob@example.test", "$2y$" BCRYPT_UU, NULL, NULL);
	assert_secrets(db, "dave@example.test", SHA256_HELLO, NULL, NULL);
	assert_secrets(db, "erin@example.test", "$2b$" BCRYPT_UU, NULL, NULL);
	assert_int_equal(db->ops->password_hash(db, "dave@example.test", &v),
			 1);
	assert_int_equal(password_verify("Hello world!", v), 1);
	free(v);
	/* PLAIN is hashed like "user add", with SCRAM, no CRAM (off) */
	assert_int_equal(db->ops->password_hash(db, "carol@example.test", &v),
			 1);
	assert_memory_equal(v, "$y$", 3);
	assert_int_equal(password_verify("pencil", v), 1);
	free(v);
	assert_scram_of(db, "carol@example.test", "pencil");
	assert_int_equal(db->ops->cram_secret(db, "carol@example.test", &v), 0);
	/* --update replaced alice's password */
	assert_int_equal(db->ops->password_hash(db, "alice@example.test", &v),
			 1);
	assert_int_equal(password_verify("newpw", v), 1);
	free(v);
	assert_scram_of(db, "alice@example.test", "newpw");
	assert_int_equal(userdb_user_exists(db, "judy@nowhere.test"), 1);
	assert_int_equal(userdb_user_exists(db, "zed@example.test"), 1);
	assert_int_equal(userdb_user_exists(db, "zed2@example.test"), 1);
	assert_int_equal(userdb_user_exists(db, "frank@example.test"), 0);
	userdb_close(&db);
}

/* cli_json_str: always valid JSON; UTF-8 kept, anything else escaped. */
static void
test_json_str(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "plain", "\"plain\"" },
		{ "q\"b\\", "\"q\\\"b\\\\\"" },
		{ "t\tn\n\x7f", "\"t\\u0009n\\u000a\\u007f\"" },
		{ "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xa6",
		  "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xa6\"" },
		{ "bad\xff\xc3(", "\"bad\\u00ff\\u00c3(\"" },
		{ "\xc0\xaf\xed\xa0\x80", /* overlong, a surrogate */
		  "\"\\u00c0\\u00af\\u00ed\\u00a0\\u0080\"" },
		{ "cut\xe2\x82", "\"cut\\u00e2\\u0082\"" },
	};
	char *buf;
	size_t len, i;
	FILE *f;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf = NULL;
		f = open_memstream(&buf, &len);
		assert_non_null(f);
		cli_json_str(f, cases[i].in);
		fclose(f);
		if (strcmp(buf, cases[i].out) != 0)
			fail_msg("case %zu: got %s", i, buf);
		free(buf);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_errors, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_admin_ops, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_lookups_read_only, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_busy_wait, setup,
						teardown),
		cmocka_unit_test(test_password_hash_verify),
		cmocka_unit_test_setup_teardown(test_admin_commands, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_password_one_line, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ownership, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_upgrade_v1, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_secrets_commands, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_import, setup, teardown),
		cmocka_unit_test(test_json_str),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
