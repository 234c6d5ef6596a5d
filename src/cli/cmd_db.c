/*
 * godwit db init|migrate|export|import: the user database's schema, and
 * moving its content between backends (SQLite to PostgreSQL, say) as a
 * dump in the portable format of mail/userdump.h.
 *
 * On SQLite the schema is made and upgraded by every admin command that
 * writes (store/userdb_sqlite.c); init and migrate do it explicitly and
 * say what they did. On PostgreSQL and MySQL only these two change the
 * schema: the daemon and the other commands never do.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cmd.h"
#include "daemon/config.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"
#include "mail/userdump.h"
#include "store/userdb.h"

static const char usage_db[] =
	"usage: godwit db init\n"
	"       godwit db migrate\n"
	"       godwit db export [FILE|-]\n"
	"       godwit db import [FILE|-] [--replace]\n";

static bool
is_sqlite(const struct config *config)
{
	const char *b = config->userdb.backend;

	return b == NULL || strcmp(b, "sqlite") == 0;
}

/* False, said on stderr, for a database whose schema is not godwit's. */
static bool
manages_schema(const struct userdb *db)
{
	if (db->ops->migrate != NULL)
		return true;
	cli_fail("this user database is read-only (userdb.queries "
		 "is set): godwit does not manage its schema");
	return false;
}

/*
 * Runs the migrations still to do, prints one line for each, and reads
 * the version it reached: 0, *n_r steps and *version_r; or -1 with *err.
 */
static int
migrate_and_list(struct userdb *db, size_t *n_r, int *version_r, char **err)
{
	char **done = NULL;
	size_t n = 0;
	int latest = 0;

	if (db->ops->migrate(db, &done, &n, err) < 0)
		return -1;
	cli_print_list(&done, n);
	*n_r = n;
	return db->ops->schema_version(db, version_r, &latest, err);
}

static int
db_init(const struct config *config)
{
	struct userdb *db;
	char *err = NULL;
	size_t n = 0;
	int v = 0, latest = 0, r = 1;
	struct stat sb;

	if (is_sqlite(config) && stat(config->userdb.path, &sb) == 0 &&
	    sb.st_size > 0) {
		/* any read-write open would upgrade it: look first */
		if ((db = cli_open_db(config, true)) == NULL)
			return 1;
		if (db->ops->schema_version(db, &v, &latest, &err) == 0)
			err = xasprintf("%s already has a godwit schema "
					"(version %d); godwit db migrate "
					"upgrades it",
					config->userdb.path, v);
		userdb_close(&db);
		return cli_fail_free(&err);
	}
	if ((db = cli_open_db(config, false)) == NULL)
		return 1;
	if (!manages_schema(db))
		goto out;
	if (db->ops->schema_version(db, &v, &latest, &err) < 0)
		goto out;
	if (v > 0 && !is_sqlite(config)) {
		err = xasprintf("the database already has a godwit schema "
				"(version %d); godwit db migrate upgrades it",
				v);
		goto out;
	}
	if (migrate_and_list(db, &n, &v, &err) < 0)
		goto out;
	printf("schema version %d created (%s)\n", v,
	       db->ops->name);
	r = 0;
out:
	if (err != NULL)
		r = cli_fail_free(&err);
	userdb_close(&db);
	return r;
}

static int
db_migrate(const struct config *config)
{
	struct userdb *db;
	char *err = NULL;
	size_t n = 0;
	int v = 0, r = 1;

	if ((db = cli_open_db(config, false)) == NULL)
		return 1;
	if (!manages_schema(db))
		goto out;
	if (migrate_and_list(db, &n, &v, &err) < 0)
		goto out;
	printf("schema version %d%s (%s)\n", v,
	       n == 0 ? ": up to date, nothing to do" : "", db->ops->name);
	r = 0;
out:
	if (err != NULL)
		r = cli_fail_free(&err);
	userdb_close(&db);
	return r;
}

/* ---- export -------------------------------------------------------------- */

/* Writes out and empties b (a line or a few: the secrets in it are
 * wiped from memory as soon as they are written). */
static void
flush_lines(FILE *f, struct strbuf *b)
{
	if (b->len > 0)
		fwrite(b->s, 1, b->len, f);
	if (b->s != NULL)
		explicit_bzero(b->s, b->len);
	strbuf_reset(b);
}

static int
export_all(struct userdb *db, FILE *f, unsigned long counts[3], char **err)
{
	struct strbuf b = {0};
	char **domains = NULL, **users = NULL, **aliases = NULL;
	size_t nd = 0, nu = 0, na = 0, i;
	int r = -1;

	if (db->ops->domain_list(db, &domains, &nd, err) < 0 ||
	    db->ops->user_list(db, NULL, &users, &nu, err) < 0 ||
	    db->ops->alias_list(db, NULL, &aliases, &na, err) < 0)
		goto out;
	userdump_write_header(&b);
	for (i = 0; i < nd; i++) {
		userdump_write_domain(&b, domains[i]);
		flush_lines(f, &b);
	}
	for (i = 0; i < nu; i++) {
		char *hash = NULL, *scram = NULL, *cram = NULL;
		int h = db->ops->password_hash(db, users[i], &hash);

		if (h <= 0 || db->ops->scram_secret(db, users[i], &scram) < 0 ||
		    db->ops->cram_secret(db, users[i], &cram) < 0) {
			*err = xasprintf("reading the secrets of %s failed",
					 users[i]);
			free(hash), free(scram), free(cram);
			goto out;
		}
		userdump_write_user(&b, users[i], hash, scram, cram);
		flush_lines(f, &b);
		if (scram != NULL)
			explicit_bzero(scram, strlen(scram));
		if (cram != NULL)
			explicit_bzero(cram, strlen(cram));
		free(hash), free(scram), free(cram);
	}
	for (i = 0; i < na; i++) {
		char *sp = strchr(aliases[i], ' ');

		if (sp == NULL)
			continue;
		*sp = '\0';
		userdump_write_alias(&b, aliases[i], sp + 1);
		flush_lines(f, &b);
	}
	userdump_write_end(&b, nd, nu, na);
	flush_lines(f, &b);
	counts[0] = nd, counts[1] = nu, counts[2] = na;
	r = 0;
out:
	strbuf_free(&b);
	userdb_string_list_free(&domains, nd);
	userdb_string_list_free(&users, nu);
	userdb_string_list_free(&aliases, na);
	return r;
}

static int
db_export(const struct config *config, const char *path)
{
	unsigned long counts[3] = {0};
	struct userdb *db;
	char *err = NULL;
	FILE *f = stdout;
	int fd = -1, r = 1;
	bool txn = false;

	if ((db = cli_open_db(config, true)) == NULL)
		return 1;
	if (path != NULL) {
		/* the secrets in it are the keys to every mailbox */
		fd = open(path,
			  O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
			  0600);
		if (fd < 0 || fchmod(fd, 0600) < 0 ||
		    (f = fdopen(fd, "w")) == NULL) {
			err = xasprintf("%s: %s", path, strerror(errno));
			if (fd >= 0)
				close(fd);
			f = NULL;
			goto out;
		}
	}
	/* one snapshot: a dump of a database being changed is consistent */
	if (db->ops->transaction != NULL) {
		if (db->ops->transaction(db, USERDB_BEGIN, &err) < 0)
			goto out;
		txn = true;
	}
	if (export_all(db, f, counts, &err) < 0)
		goto out;
	if (fflush(f) != 0 || ferror(f) ||
	    (path != NULL && fsync(fileno(f)) < 0)) {
		err = xasprintf("%s: %s", path != NULL ? path : "stdout",
				strerror(errno));
		goto out;
	}
	fprintf(stderr, "exported %lu domains, %lu users, %lu aliases\n",
		counts[0], counts[1], counts[2]);
	r = 0;
out:
	if (txn)
		db->ops->transaction(db, USERDB_ROLLBACK, NULL);
	if (f != NULL && f != stdout && fclose(f) != 0 && r == 0 &&
	    err == NULL)
		err = xasprintf("%s: %s", path, strerror(errno));
	if (err != NULL)
		r = cli_fail_free(&err);
	userdb_close(&db);
	return r;
}

/* ---- import -------------------------------------------------------------- */

struct dump {
	struct userdump_rec *v;
	size_t n;
	unsigned long counts[3];
};

/* The slot of a domain, user or alias record in the counts[3] arrays. */
static int
kind_index(enum userdump_kind kind)
{
	return kind == USERDUMP_DOMAIN ? 0 : kind == USERDUMP_USER ? 1 : 2;
}

static void
dump_free(struct dump *d)
{
	for (size_t i = 0; i < d->n; i++)
		userdump_rec_clear(&d->v[i]);
	free(d->v);
	d->v = NULL;
	d->n = 0;
}

/* Normalises the keys as the admin commands do; 0 or -1 with *why_r. */
static int
normalise(struct userdump_rec *r, char **why_r)
{
	char *s, *t;

	switch (r->kind) {
	case USERDUMP_DOMAIN:
		s = xasprintf("x@%s", r->name);
		t = cli_normalise_address(s, false, true, true, why_r);
		free(s);
		if (t == NULL)
			return -1;
		free(r->name);
		r->name = xstrdup(strchr(t, '@') + 1);
		free(t);
		return 0;
	case USERDUMP_USER:
		if ((t = cli_normalise_address(r->address, false, true, true,
					       why_r)) == NULL)
			return -1;
		free(r->address);
		r->address = t;
		return 0;
	case USERDUMP_ALIAS:
		if ((t = cli_normalise_address(r->source, true, true, true,
					       why_r)) == NULL)
			return -1;
		free(r->source);
		r->source = t;
		if ((t = cli_normalise_address(r->target, false, false, false,
					       why_r)) == NULL)
			return -1;
		free(r->target);
		r->target = t;
		return 0;
	default:
		return 0;
	}
}

/*
 * Reads and checks the whole dump before anything is written: a header
 * first, an end line last whose counts match, nothing after it.
 */
static int
read_dump(FILE *f, const char *name, struct dump *d)
{
	char *line = NULL, *why = NULL;
	size_t cap = 0, lineno = 0;
	bool header = false, end = false;
	const char *error;
	ssize_t len;
	unsigned long seen[3] = {0};
	struct userdump_rec rec;
	int r = -1;

	while ((len = getline(&line, &cap, f)) >= 0) {
		lineno++;
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if (len == 0)
			continue;
		if (end) {
			cli_fail("%s:%zu: text after the end line", name,
				 lineno);
			goto out;
		}
		if (userdump_parse_line(line, (size_t)len, &rec, &error) < 0) {
			cli_fail("%s:%zu: %s", name, lineno, error);
			goto out;
		}
		if (!header && rec.kind != USERDUMP_HEADER) {
			userdump_rec_clear(&rec);
			cli_fail("%s:%zu: not a godwit user database dump "
				 "(no header line)", name, lineno);
			goto out;
		}
		if (rec.kind == USERDUMP_HEADER) {
			if (header || rec.version != USERDUMP_VERSION) {
				cli_fail("%s:%zu: %s", name, lineno,
					 header ? "a second header"
						: "a dump version this godwit "
						  "does not know");
				userdump_rec_clear(&rec);
				goto out;
			}
			header = true;
			continue;
		}
		if (rec.kind == USERDUMP_END) {
			end = true;
			memcpy(d->counts, (unsigned long[3]){rec.domains,
							      rec.users,
							      rec.aliases},
			       sizeof(d->counts));
			continue;
		}
		if (normalise(&rec, &why) < 0) {
			cli_fail("%s:%zu: %s", name, lineno, why);
			free(why);
			userdump_rec_clear(&rec);
			goto out;
		}
		seen[kind_index(rec.kind)]++;
		d->v = xreallocarray(d->v, d->n + 1, sizeof(*d->v));
		d->v[d->n++] = rec;
	}
	if (ferror(f)) {
		cli_fail("%s: %s", name, strerror(errno));
		goto out;
	}
	if (!end) {
		cli_fail("%s: no end line: the dump is incomplete", name);
		goto out;
	}
	if (memcmp(seen, d->counts, sizeof(seen)) != 0) {
		cli_fail("%s: the end line counts %lu domains, %lu users, "
			 "%lu aliases; the dump has %lu, %lu, %lu",
			 name, d->counts[0], d->counts[1], d->counts[2],
			 seen[0], seen[1], seen[2]);
		goto out;
	}
	r = 0;
out:
	free(line);
	return r;
}

/* What one record did: 0 added, 1 replaced/kept, -1 error. */
static int
import_one(struct userdb *db, const struct userdump_rec *r, bool replace,
	   char **err)
{
	struct userdb_alias_list al = {0};
	int e;

	switch (r->kind) {
	case USERDUMP_DOMAIN:
		if ((e = db->ops->domain_exists(db, r->name)) < 0)
			break;
		if (e > 0) {
			if (replace)
				return 1;
			*err = xasprintf("domain %s exists (--replace "
					 "keeps it)", r->name);
			return -1;
		}
		return db->ops->domain_add(db, r->name, err);
	case USERDUMP_USER:
		if ((e = db->ops->user_exists(db, r->address)) < 0)
			break;
		if (e > 0 && !replace) {
			*err = xasprintf("user %s exists (--replace "
					 "replaces its password)", r->address);
			return -1;
		}
		if (e == 0 && db->ops->user_add(db, r->address, r->hash, err) < 0)
			return -1;
		if (db->ops->user_set_secrets(db, r->address, r->hash, r->scram,
					      r->cram, err) < 0)
			return -1;
		return e;
	case USERDUMP_ALIAS:
		if ((e = db->ops->alias_lookup(db, r->source, &al)) < 0)
			break;
		for (size_t i = 0; i < al.n; i++)
			if (strcmp(al.targets[i], r->target) == 0) {
				userdb_alias_list_clear(&al);
				if (replace)
					return 1;
				*err = xasprintf("alias %s -> %s exists",
						 r->source, r->target);
				return -1;
			}
		userdb_alias_list_clear(&al);
		return db->ops->alias_add(db, r->source, r->target, err);
	default:
		return 0;
	}
	*err = xstrdup("the user database failed a lookup");
	return -1;
}

static int
db_import(const struct config *config, const char *path, bool replace)
{
	static const char *const kinds[] = {"domain", "user", "alias"};
	struct dump d = {0};
	struct userdb *db = NULL;
	unsigned long added[3] = {0}, kept[3] = {0};
	char *err = NULL;
	FILE *f = stdin;
	int r = 1, e;

	if (path != NULL && (f = fopen(path, "re")) == NULL)
		return cli_fail("%s: %s", path, strerror(errno));
	e = read_dump(f, path != NULL ? path : "stdin", &d);
	if (f != stdin)
		fclose(f);
	if (e < 0)
		goto out;
	if ((db = cli_open_db(config, false)) == NULL)
		goto out;
	if (db->ops->transaction == NULL) {
		cli_fail("this user database is read-only (userdb.queries "
			 "is set): godwit does not write to it");
		goto out;
	}
	if (db->ops->transaction(db, USERDB_BEGIN, &err) < 0)
		goto out;
	for (size_t i = 0; i < d.n; i++) {
		int k = kind_index(d.v[i].kind);

		if ((e = import_one(db, &d.v[i], replace, &err)) < 0) {
			char *m = xasprintf("%s (%s %zu of the dump); nothing "
					    "imported",
					    err != NULL ? err : "?", kinds[k],
					    i + 1);
			free(err);
			err = m;
			db->ops->transaction(db, USERDB_ROLLBACK, NULL);
			goto out;
		}
		if (e == 0)
			added[k]++;
		else
			kept[k]++;
	}
	if (db->ops->transaction(db, USERDB_COMMIT, &err) < 0) {
		db->ops->transaction(db, USERDB_ROLLBACK, NULL);
		goto out;
	}
	printf("imported %lu domains, %lu users, %lu aliases",
	       added[0], added[1], added[2]);
	if (replace)
		printf(" (already there: %lu domains, %lu users replaced, "
		       "%lu aliases)",
		       kept[0], kept[1], kept[2]);
	printf("\n");
	r = 0;
out:
	if (err != NULL)
		r = cli_fail_free(&err);
	userdb_close(&db);
	dump_free(&d);
	return r;
}

int
cmd_db(const struct config *config, int argc, char **argv)
{
	const char *file = NULL;
	bool replace = false;

	if (argc < 2)
		return cli_usage(usage_db);
	if (strcmp(argv[1], "init") == 0 && argc == 2)
		return db_init(config);
	if (strcmp(argv[1], "migrate") == 0 && argc == 2)
		return db_migrate(config);
	if (strcmp(argv[1], "export") == 0 && argc <= 3) {
		if (argc == 3 && strcmp(argv[2], "-") != 0)
			file = argv[2];
		return db_export(config, file);
	}
	if (strcmp(argv[1], "import") == 0) {
		for (int i = 2; i < argc; i++) {
			if (strcmp(argv[i], "--replace") == 0)
				replace = true;
			else if (file == NULL && argv[i][0] != '-')
				file = argv[i];
			else if (strcmp(argv[i], "-") != 0)
				return cli_usage(usage_db);
		}
		return db_import(config, file, replace);
	}
	return cli_usage(usage_db);
}
