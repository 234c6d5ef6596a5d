/*
 * Greylisting's state in SQLite: see greylist.h.
 *
 * Two tables, each bounded by max_entries through its rowids: a row that
 * is used again is written anew (INSERT OR REPLACE gives it the next
 * rowid), so "rowid <= max(rowid) - cap" are the least recently used
 * rows, and deleting them keeps at most cap rows with no count(*) scan.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "filter/greylist.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#define BUSY_TIMEOUT_MS 100
#define SWEEP_INTERVAL 60

enum {
	ST_TRIPLET_GET,
	ST_TRIPLET_PUT,
	ST_TRIPLET_EVICT,
	ST_CLIENT_GET,
	ST_CLIENT_PUT,
	ST_CLIENT_EVICT,
	ST_SWEEP_TRIPLETS,
	ST_SWEEP_CLIENTS,
	ST_BEGIN,
	ST_COMMIT,
	ST_N
};

static const char *const sql_text[ST_N] = {
    [ST_TRIPLET_GET] = "SELECT first, last, passed FROM triplet "
		       "WHERE net = ?1 AND sender = ?2 AND rcpt = ?3",
    [ST_TRIPLET_PUT] = "INSERT OR REPLACE INTO triplet "
		       "(net, sender, rcpt, first, last, passed) "
		       "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_TRIPLET_EVICT] = "DELETE FROM triplet WHERE rowid <= "
			 "(SELECT max(rowid) FROM triplet) - ?1",
    [ST_CLIENT_GET] = "SELECT count, last FROM client WHERE net = ?1",
    [ST_CLIENT_PUT] = "INSERT OR REPLACE INTO client (net, count, last) "
		      "VALUES (?1, ?2, ?3)",
    [ST_CLIENT_EVICT] = "DELETE FROM client WHERE rowid <= "
			"(SELECT max(rowid) FROM client) - ?1",
    [ST_SWEEP_TRIPLETS] = "DELETE FROM triplet WHERE "
			  "(passed = 0 AND first < ?1) OR last < ?2",
    [ST_SWEEP_CLIENTS] = "DELETE FROM client WHERE last < ?1",
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
};

static const char schema[] =
    "PRAGMA journal_mode = WAL;"
    "PRAGMA synchronous = NORMAL;"
    "CREATE TABLE IF NOT EXISTS triplet ("
    " net TEXT NOT NULL, sender TEXT NOT NULL, rcpt TEXT NOT NULL,"
    " first INTEGER NOT NULL, last INTEGER NOT NULL,"
    " passed INTEGER NOT NULL, UNIQUE (net, sender, rcpt));"
    "CREATE INDEX IF NOT EXISTS triplet_last ON triplet (last);"
    "CREATE TABLE IF NOT EXISTS client ("
    " net TEXT NOT NULL UNIQUE, count INTEGER NOT NULL,"
    " last INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS client_last ON client (last);"
    "PRAGMA user_version = 1;";

struct greylist {
	sqlite3 *h;
	const struct greylist_config *cf;
	sqlite3_stmt *st[ST_N];
	time_t swept;
};

struct greylist *
greylist_open(const char *path, const struct greylist_config *cf,
	      char **error_r)
{
	struct greylist *g = xcalloc(1, sizeof(*g));
	char *msg = NULL;

	g->cf = cf;
	if (sqlite3_open_v2(path, &g->h,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK)
		goto fail;
	sqlite3_busy_timeout(g->h, BUSY_TIMEOUT_MS);
	if (sqlite3_exec(g->h, schema, NULL, NULL, &msg) != SQLITE_OK)
		goto fail;
	for (int i = 0; i < ST_N; i++)
		if (sqlite3_prepare_v2(g->h, sql_text[i], -1, &g->st[i],
				       NULL) != SQLITE_OK)
			goto fail;
	return g;
fail:
	*error_r = xasprintf("%s: %s", path,
			     msg != NULL    ? msg
			     : g->h != NULL ? sqlite3_errmsg(g->h)
					    : "out of memory");
	sqlite3_free(msg);
	greylist_close(&g);
	return NULL;
}

void
greylist_close(struct greylist **gp)
{
	struct greylist *g = *gp;

	if (g == NULL)
		return;
	for (int i = 0; i < ST_N; i++)
		sqlite3_finalize(g->st[i]);
	sqlite3_close(g->h);
	free(g);
	*gp = NULL;
}

/* Binds texts and integers in order: "tti" = text, text, int64. */
static sqlite3_stmt *
bind_args(struct greylist *g, int which, const char *types, ...)
{
	sqlite3_stmt *st = g->st[which];
	va_list ap;

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	va_start(ap, types);
	for (int i = 0; types[i] != '\0'; i++) {
		if (types[i] == 't')
			sqlite3_bind_text(st, i + 1, va_arg(ap, const char *),
					  -1, SQLITE_STATIC);
		else
			sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
	}
	va_end(ap);
	return st;
}

/* Runs a statement that returns no rows: 0 or -1. */
static int
run(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static void
db_error(struct greylist *g, const char *what)
{
	log_event(LOG_ERR, "filter", "greylist-db-error", LF_STR("op", what),
		  LF_STR("error", sqlite3_errmsg(g->h)));
}

/* Expired rows, once a minute per process (inside the transaction). */
static int
sweep(struct greylist *g, time_t now)
{
	if (now - g->swept < SWEEP_INTERVAL && g->swept <= now)
		return 0;
	g->swept = now;
	if (run(bind_args(g, ST_SWEEP_TRIPLETS, "ii",
		     (int64_t)now - (int64_t)g->cf->window,
		     (int64_t)now - (int64_t)g->cf->expire)) < 0)
		return -1;
	return run(bind_args(g, ST_SWEEP_CLIENTS, "i",
			(int64_t)now - (int64_t)g->cf->expire));
}

static int
put_triplet(struct greylist *g, const char *net, const char *sender,
	    const char *rcpt, int64_t first, int64_t last, int64_t passed)
{
	if (run(bind_args(g, ST_TRIPLET_PUT, "tttiii", net, sender, rcpt, first,
		     last, passed)) < 0)
		return -1;
	return run(bind_args(g, ST_TRIPLET_EVICT, "i",
			(int64_t)g->cf->max_entries));
}

/* The client network auto-allowed: 1 (its row refreshed), 0, -1. */
static int
client_allowed(struct greylist *g, const char *net, time_t now)
{
	sqlite3_stmt *st;
	int64_t count, last;
	int rc;

	if (g->cf->auto_allow == 0)
		return 0;
	st = bind_args(g, ST_CLIENT_GET, "t", net);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		return 0;
	}
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return -1;
	}
	count = sqlite3_column_int64(st, 0);
	last = sqlite3_column_int64(st, 1);
	sqlite3_reset(st);
	if (count < (int64_t)g->cf->auto_allow ||
	    now - last > (int64_t)g->cf->expire)
		return 0;
	return run(bind_args(g, ST_CLIENT_PUT, "tii", net, count, (int64_t)now)) <
		       0
		   ? -1
		   : 1;
}

/* The triplet's own verdict (inside the transaction). */
static enum greylist_verdict
triplet_verdict(struct greylist *g, const char *net, const char *sender,
		const char *rcpt, time_t now, uint64_t *wait_r)
{
	const struct greylist_config *cf = g->cf;
	sqlite3_stmt *st = bind_args(g, ST_TRIPLET_GET, "ttt", net, sender, rcpt);
	int rc = sqlite3_step(st);
	int64_t first = 0, last = 0, passed = 0, age;

	if (rc == SQLITE_ROW) {
		first = sqlite3_column_int64(st, 0);
		last = sqlite3_column_int64(st, 1);
		passed = sqlite3_column_int64(st, 2);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return GREYLIST_ERROR;
	age = now - first;
	if (rc == SQLITE_ROW && passed && now - last <= (int64_t)cf->expire)
		return put_triplet(g, net, sender, rcpt, first, now, 1) < 0
			   ? GREYLIST_ERROR
			   : GREYLIST_PASS;
	if (rc == SQLITE_ROW && !passed && age >= 0 &&
	    age <= (int64_t)cf->window) {
		if (age >= (int64_t)cf->delay && age > 0)
			return put_triplet(g, net, sender, rcpt, first, now,
					   1) < 0
				   ? GREYLIST_ERROR
				   : GREYLIST_PASS;
		*wait_r = cf->delay > (uint64_t)age ? cf->delay - (uint64_t)age
						    : 1;
		return GREYLIST_WAIT;
	}
	/* first sight, or its window or expiry passed: start again */
	*wait_r = cf->delay;
	return put_triplet(g, net, sender, rcpt, now, now, 0) < 0
		   ? GREYLIST_ERROR
		   : GREYLIST_WAIT;
}

enum greylist_verdict
greylist_check(struct greylist *g, const char *net, const char *sender,
	       const char *rcpt, time_t now, uint64_t *wait_r)
{
	enum greylist_verdict v;
	int allowed;

	*wait_r = 0;
	if (run(bind_args(g, ST_BEGIN, "")) < 0) {
		db_error(g, "begin");
		return GREYLIST_ERROR;
	}
	if (sweep(g, now) < 0 || (allowed = client_allowed(g, net, now)) < 0)
		v = GREYLIST_ERROR;
	else if (allowed)
		v = GREYLIST_ALLOWED;
	else
		v = triplet_verdict(g, net, sender, rcpt, now, wait_r);
	if (v == GREYLIST_ERROR) {
		db_error(g, "check");
		sqlite3_exec(g->h, "ROLLBACK", NULL, NULL, NULL);
		return v;
	}
	if (run(bind_args(g, ST_COMMIT, "")) < 0) {
		db_error(g, "commit");
		sqlite3_exec(g->h, "ROLLBACK", NULL, NULL, NULL);
		return GREYLIST_ERROR;
	}
	return v;
}

void
greylist_delivered(struct greylist *g, const char *net, time_t now)
{
	sqlite3_stmt *st;
	int64_t count = 0;
	int rc;

	if (run(bind_args(g, ST_BEGIN, "")) < 0) {
		db_error(g, "begin");
		return;
	}
	st = bind_args(g, ST_CLIENT_GET, "t", net);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		count = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if ((rc != SQLITE_ROW && rc != SQLITE_DONE) ||
	    run(bind_args(g, ST_CLIENT_PUT, "tii", net, count + 1, (int64_t)now)) <
		0 ||
	    run(bind_args(g, ST_CLIENT_EVICT, "i", (int64_t)g->cf->max_entries)) <
		0 ||
	    run(bind_args(g, ST_COMMIT, "")) < 0) {
		db_error(g, "delivered");
		sqlite3_exec(g->h, "ROLLBACK", NULL, NULL, NULL);
	}
}

int
greylist_client_net(const char *ip, char *out, size_t size)
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0,
						 0, 0, 0, 0, 0xff, 0xff};
	unsigned char a[16];
	char text[INET6_ADDRSTRLEN];
	int n;

	if (inet_pton(AF_INET, ip, a) == 1)
		n = snprintf(out, size, "%u.%u.%u.0/24", a[0], a[1], a[2]);
	else if (inet_pton(AF_INET6, ip, a) != 1)
		return -1;
	else if (memcmp(a, mapped, sizeof(mapped)) == 0)
		n = snprintf(out, size, "%u.%u.%u.0/24", a[12], a[13], a[14]);
	else {
		memset(a + 8, 0, 8);
		if (inet_ntop(AF_INET6, a, text, sizeof(text)) == NULL)
			return -1;
		n = snprintf(out, size, "%s/64", text);
	}
	return n < 0 || (size_t)n >= size ? -1 : 0;
}
