/*
 * The read-only user database of userdb.queries (store/userdb_query.h):
 * lookups are the operator's SELECTs over their own schema, run on a
 * PostgreSQL or MySQL connection (store/sqldrv.h) with the address parts
 * bound as parameters. Every write refuses with a message naming the mode;
 * there are no SCRAM or CRAM secrets (SCRAM-SHA-256 then fails at the
 * proof as for an unknown user; PLAIN and LOGIN check the crypt hash).
 *
 * The connection is made at the first lookup and again after it is lost:
 * a statement that fails because the connection broke is tried once more
 * on a new connection (a restarted server drops idle ones), and a failed
 * connect is not tried again for a second, so that a server that is down
 * costs one connect timeout per second, not one per lookup.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lib/log.h"
#include "lib/xalloc.h"
#include "store/sqldrv.h"
#include "store/userdb.h"
#include "store/userdb_query.h"

#define RECONNECT_PAUSE_S 1
#define ALIAS_TARGETS_MAX 1000
#define ADDRESS_MAX 320
#define DOMAINS_MAX 100000

static const char readonly_error[] =
    "the user database is read-only (userdb.queries is set: godwit reads "
    "your own schema and never writes to it; change it with the tools "
    "that own it)";

/* ---- compiling a query ------------------------------------------------ */

static int
placeholder_value(char c, enum userdb_query_value *v_r)
{
	switch (c) {
	case 's':
		*v_r = UQV_ADDRESS;
		return 0;
	case 'u':
		*v_r = UQV_LOCAL;
		return 0;
	case 'd':
		*v_r = UQV_DOMAIN;
		return 0;
	default:
		return -1;
	}
}

/* Appends $k for value v (one parameter per distinct value). */
static int
emit_param(struct userdb_query_stmt *st, char *out, size_t *o,
	   enum userdb_query_value v)
{
	size_t k;

	for (k = 0; k < st->nvals; k++)
		if (st->vals[k] == v)
			break;
	if (k == st->nvals) {
		if (st->nvals == USERDB_QUERY_MAX_PARAMS)
			return -1;
		st->vals[st->nvals++] = v;
	}
	out[(*o)++] = '$';
	out[(*o)++] = (char)('1' + k);	/* at most 3 distinct values */
	return 0;
}

int
userdb_query_compile(const char *text, struct userdb_query_stmt *st,
		     char **error_r)
{
	size_t len = strlen(text), o = 0, i;
	const char *p = text, *w;
	enum userdb_query_value v;
	char *out;

	memset(st, 0, sizeof(*st));
	if (len > USERDB_QUERY_MAX_LEN) {
		*error_r = xasprintf("longer than %d bytes",
				     USERDB_QUERY_MAX_LEN);
		return -1;
	}
	for (i = 0; i < len; i++)
		if ((unsigned char)text[i] < 0x20 && text[i] != '\t' &&
		    text[i] != '\n' && text[i] != '\r') {
			*error_r = xstrdup("control character in the query");
			return -1;
		}
	w = text;
	while (isspace((unsigned char)*w))
		w++;
	if (strncasecmp(w, "SELECT", 6) != 0 && strncasecmp(w, "WITH", 4) != 0) {
		*error_r = xstrdup("a query is one SELECT statement");
		return -1;
	}
	/* The output is never longer: '%u' -> $1, %u -> $1, %% -> %. */
	out = xmalloc(len + 1);
	while (*p != '\0') {
		if (*p == '\'' || *p == '"') {
			char q = *p;
			const char *e = p + 1;

			/* '%u' alone in quotes: the parameter, unquoted */
			if (e[0] == '%' && e[1] != '\0' && e[2] == q &&
			    placeholder_value(e[1], &v) == 0) {
				if (emit_param(st, out, &o, v) < 0)
					goto too_many;
				p = e + 3;
				continue;
			}
			out[o++] = *p++;
			while (*p != '\0') {
				if (*p == '\\' && p[1] != '\0') {
					out[o++] = *p++;
					out[o++] = *p++;
					continue;
				}
				if (*p == q && p[1] == q) {
					out[o++] = *p++;
					out[o++] = *p++;
					continue;
				}
				if (*p == q)
					break;
				if (*p == '%' && p[1] == '%') {
					out[o++] = '%';
					p += 2;
					continue;
				}
				if (*p == '%' && placeholder_value(p[1], &v) == 0) {
					*error_r = xasprintf(
					    "%%%c inside a quoted string with "
					    "other text: write '%%%c' alone (or "
					    "bare), and build the string in SQL",
					    p[1], p[1]);
					goto fail;
				}
				if (*p == '%') {
					*error_r = xasprintf(
					    "unknown placeholder %%%c in a "
					    "quoted string (write %%%% for a %%)",
					    p[1] == '\0' ? ' ' : p[1]);
					goto fail;
				}
				out[o++] = *p++;
			}
			if (*p == '\0') {
				*error_r = xstrdup("unterminated quote");
				goto fail;
			}
			out[o++] = *p++;
		} else if (*p == '%') {
			if (p[1] == '%') {
				out[o++] = '%';
				p += 2;
			} else if (placeholder_value(p[1], &v) == 0) {
				if (emit_param(st, out, &o, v) < 0)
					goto too_many;
				p += 2;
			} else {
				*error_r = xasprintf(
				    "unknown placeholder %%%c (%%s the address, "
				    "%%u the local part, %%d the domain, %%%% "
				    "a %%)",
				    p[1] == '\0' ? ' ' : p[1]);
				goto fail;
			}
		} else if (*p == '$' && isdigit((unsigned char)p[1])) {
			*error_r = xstrdup("$n in the query: write %s, %u or %d");
			goto fail;
		} else if (*p == '?') {
			*error_r = xstrdup("? in the query: write %s, %u or %d");
			goto fail;
		} else if (*p == ';') {
			const char *e = p + 1;

			while (isspace((unsigned char)*e))
				e++;
			if (*e != '\0') {
				*error_r = xstrdup("one statement only (a ';' "
						   "inside the query)");
				goto fail;
			}
			break;	/* a final ';' is dropped */
		} else {
			out[o++] = *p++;
		}
	}
	out[o] = '\0';
	st->sql = out;
	return 0;
too_many:
	*error_r = xstrdup("too many placeholders");
fail:
	free(out);
	memset(st, 0, sizeof(*st));
	return -1;
}

void
userdb_query_stmt_clear(struct userdb_query_stmt *st)
{
	free(st->sql);
	memset(st, 0, sizeof(*st));
}

/* ---- stored passwords ------------------------------------------------- */

const char *
userdb_query_crypt_hash(const char *stored)
{
	static const char *const crypt_schemes[] = {
		"CRYPT",	"MD5-CRYPT", "SHA256-CRYPT", "SHA512-CRYPT",
		"BLF-CRYPT", "DES-CRYPT", "MD5",
	};
	const char *end;
	size_t n, i;

	if (stored == NULL)
		return NULL;
	if (stored[0] != '{')
		return stored;
	if ((end = strchr(stored, '}')) == NULL)
		return stored;	/* a crypt hash never starts with '{' */
	n = (size_t)(end - stored - 1);
	for (i = 0; i < sizeof(crypt_schemes) / sizeof(crypt_schemes[0]); i++)
		if (strlen(crypt_schemes[i]) == n &&
		    strncasecmp(stored + 1, crypt_schemes[i], n) == 0)
			return end + 1;
	return NULL;
}

/* ---- the backend ------------------------------------------------------ */

enum uq_which { UQ_DOMAIN, UQ_USER, UQ_PASSWORD, UQ_ALIAS, UQ_DOMAINS, UQ_N };

static const char *const uq_names[UQ_N] = {"domain", "user", "password",
					   "alias", "domains"};

struct userdb_q {
	struct userdb base;
	const struct sqldrv_ops *drv;
	char *dsn;
	unsigned timeout_s;
	struct sqldrv_conn *conn;
	time_t next_connect;
	bool down;	/* "disconnected" logged, "reconnected" not yet */
	struct userdb_query_stmt q[UQ_N];
	bool has[UQ_N];
};

static struct userdb_q *
uq(struct userdb *db)
{
	return (struct userdb_q *)db;
}

static void
uq_close(struct userdb *db)
{
	struct userdb_q *u = uq(db);
	size_t i;

	if (u->conn != NULL)
		u->drv->close(u->conn);
	for (i = 0; i < UQ_N; i++)
		userdb_query_stmt_clear(&u->q[i]);
	if (u->dsn != NULL) {
		explicit_bzero(u->dsn, strlen(u->dsn));
		free(u->dsn);
	}
	free(u);
}

static int
uq_open(const struct userdb_config *udb, bool readonly, struct userdb **db_r,
	char **error_r)
{
	const struct userdb_queries *qs = &udb->queries;
	const char *text[UQ_N] = {qs->domain, qs->user, qs->password,
				  qs->alias, qs->domains};
	struct userdb_q *u;
	char *err;
	size_t i;

	(void)readonly;
	*db_r = NULL;
	u = xcalloc(1, sizeof(*u));
	u->base.ops = &userdb_query_ops;
	if (udb->backend == NULL ||
	    (u->drv = sqldrv_find(udb->backend)) == NULL) {
		*error_r = xstrdup("userdb.queries needs backend postgresql or "
				   "mysql");
		uq_close(&u->base);
		return -1;
	}
	if (udb->dsn == NULL) {
		*error_r = xstrdup("userdb.queries needs userdb.dsn");
		uq_close(&u->base);
		return -1;
	}
	for (i = 0; i < UQ_N; i++) {
		if (text[i] == NULL)
			continue;
		if (userdb_query_compile(text[i], &u->q[i], &err) < 0) {
			*error_r = xasprintf("userdb.queries.%s: %s",
					     uq_names[i], err);
			free(err);
			uq_close(&u->base);
			return -1;
		}
		u->has[i] = true;
	}
	u->dsn = xstrdup(udb->dsn);
	u->timeout_s = (unsigned)udb->connect_timeout;
	*db_r = &u->base;
	return 0;
}

static void
went_down(struct userdb_q *u, const char *error)
{
	if (u->down)
		return;
	u->down = true;
	log_event(LOG_WARNING, "userdb", "disconnected",
		  LF_STR("backend", u->drv->name), LF_STR("error", error));
}

static int
uq_connect(struct userdb_q *u, char **error_r)
{
	time_t now = time(NULL);

	if (u->conn != NULL)
		return 0;
	if (now < u->next_connect) {
		*error_r = xstrdup("the database is unreachable (retrying "
				   "shortly)");
		return -1;
	}
	if (u->drv->connect(u->dsn, u->timeout_s, &u->conn, error_r) < 0) {
		u->conn = NULL;
		u->next_connect = now + RECONNECT_PAUSE_S;
		went_down(u, *error_r);
		return -1;
	}
	if (u->down) {
		u->down = false;
		log_event(LOG_INFO, "userdb", "reconnected",
			  LF_STR("backend", u->drv->name));
	}
	return 0;
}

/* Counts the rows handed out: a statement is retried only before any. */
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
	return c->fn != NULL ? c->fn(c->arg, vals, nvals) : 0;
}

/*
 * Runs query which for address: %s address, %u its local part, %d its
 * domain (an address without '@' is a domain: %s and %d are it, %u "").
 * Rows go to row. The number of rows, or -1 (logged).
 */
static long
uq_run(struct userdb_q *u, enum uq_which which, const char *address,
       sqldrv_row_fn *row, void *arg, char **error_r)
{
	const struct userdb_query_stmt *st = &u->q[which];
	const char *params[USERDB_QUERY_MAX_PARAMS];
	char local[ADDRESS_MAX + 1];
	const char *domain, *at;
	struct counted cr = {row, arg, 0};
	enum sqldrv_error kind = SQLDRV_ERR_QUERY;
	char *err = NULL;
	long r = -1;
	int attempt;
	size_t k;

	if (!u->has[which]) {
		*error_r = xasprintf("userdb.queries.%s is not set",
				     uq_names[which]);
		return -1;
	}
	/* Longer than any address: nobody's (never a truncated key). */
	if (strlen(address) > ADDRESS_MAX)
		return 0;
	at = strrchr(address, '@');
	if (at != NULL) {
		size_t n = (size_t)(at - address);

		memcpy(local, address, n);
		local[n] = '\0';
		domain = at + 1;
	} else {
		local[0] = '\0';
		domain = address;
	}
	for (k = 0; k < st->nvals; k++)
		params[k] = st->vals[k] == UQV_ADDRESS ? address
			    : st->vals[k] == UQV_LOCAL ? local
						       : domain;
	for (attempt = 0; attempt < 2; attempt++) {
		bool had_conn = u->conn != NULL;

		free(err);
		err = NULL;
		if (uq_connect(u, &err) < 0) {
			kind = SQLDRV_ERR_CONN;
			break;
		}
		r = u->drv->exec(u->conn, st->sql, params, st->nvals,
				 counted_row, &cr, &kind, &err);
		if (r >= 0 || kind != SQLDRV_ERR_CONN)
			break;
		went_down(u, err);
		u->drv->close(u->conn);
		u->conn = NULL;
		/* A stale connection (the server restarted while it was
		 * idle) is replaced once, if no row was handed out; one
		 * made just now that fails is not. */
		if (!had_conn || cr.rows > 0)
			break;
	}
	if (r < 0) {
		/* A broken connection is logged once (disconnected); a
		 * query the server refuses, each time. */
		if (kind != SQLDRV_ERR_CONN)
			log_event(LOG_ERR, "userdb", "query-failed",
				  LF_STR("query", uq_names[which]),
				  LF_STR("backend", u->drv->name),
				  LF_STR("error", err != NULL ? err : "?"));
		*error_r = err != NULL ? err : xstrdup("query failed");
		return -1;
	}
	free(err);
	return r;
}

static int
uq_exists(struct userdb *db, enum uq_which which, const char *key)
{
	char *err = NULL;
	long r = uq_run(uq(db), which, key, NULL, NULL, &err);

	free(err);
	return r < 0 ? -1 : r > 0;
}

static int
uq_domain_exists(struct userdb *db, const char *domain)
{
	return uq_exists(db, UQ_DOMAIN, domain);
}

static int
uq_user_exists(struct userdb *db, const char *address)
{
	return uq_exists(db, UQ_USER, address);
}

/* PostfixAdmin's goto: "a@x, b@y" in one column, or one per row */
struct alias_acc {
	struct userdb_alias_list *l;
	size_t cap;
};

static void
alias_add_target(struct alias_acc *a, const char *s, size_t n)
{
	char *t;
	size_t i;

	if (n == 0 || n > ADDRESS_MAX || a->l->n >= ALIAS_TARGETS_MAX)
		return;
	t = xmalloc(n + 1);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		/* godwit keeps addresses lower-case (ASCII letters) */
		t[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : (char)c;
	}
	t[n] = '\0';
	for (i = 0; i < a->l->n; i++)
		if (strcmp(a->l->targets[i], t) == 0) {
			free(t);
			return;
		}
	if (a->l->n == a->cap) {
		a->cap = a->cap == 0 ? 4 : a->cap * 2;
		a->l->targets = xreallocarray(a->l->targets, a->cap,
					      sizeof(*a->l->targets));
	}
	a->l->targets[a->l->n++] = t;
}

static int
alias_row(void *arg, const char *const *vals, size_t nvals)
{
	const char *p;

	if (nvals == 0 || vals[0] == NULL)
		return 0;
	p = vals[0];
	while (*p != '\0') {
		size_t n = strcspn(p, ", \t\r\n");

		alias_add_target(arg, p, n);
		p += n;
		p += strspn(p, ", \t\r\n");
	}
	return 0;
}

static int
uq_alias_lookup(struct userdb *db, const char *source,
		struct userdb_alias_list *r)
{
	struct alias_acc a = {r, 0};
	char *err = NULL;
	long n;

	r->targets = NULL;
	r->n = 0;
	if (!uq(db)->has[UQ_ALIAS])
		return 0;
	n = uq_run(uq(db), UQ_ALIAS, source, alias_row, &a, &err);
	free(err);
	if (n < 0) {
		userdb_alias_list_clear(r);
		return -1;
	}
	return r->n > 0;
}

struct first_value {
	char *v;
};

static int
first_row(void *arg, const char *const *vals, size_t nvals)
{
	struct first_value *f = arg;

	if (f->v == NULL && nvals > 0 && vals[0] != NULL)
		f->v = xstrdup(vals[0]);
	return 0;
}

static int
uq_password_hash(struct userdb *db, const char *address, char **hash_r)
{
	struct first_value f = {NULL};
	const char *h;
	char *err = NULL;
	long n;

	*hash_r = NULL;
	n = uq_run(uq(db), UQ_PASSWORD, address, first_row, &f, &err);
	free(err);
	if (n < 0)
		return -1;
	if (f.v == NULL)
		return 0;
	h = userdb_query_crypt_hash(f.v);
	if (h == NULL) {
		char scheme[32];
		size_t sl = strcspn(f.v + 1, "}");

		if (sl >= sizeof(scheme))
			sl = sizeof(scheme) - 1;
		memcpy(scheme, f.v + 1, sl);
		scheme[sl] = '\0';
		log_event(LOG_WARNING, "userdb", "password-scheme-unsupported",
			  LF_STR("scheme", scheme),
			  LF_STR("hint", "store a crypt hash ({BLF-CRYPT}, "
					 "{SHA512-CRYPT}, ...)"));
		explicit_bzero(f.v, strlen(f.v));
		free(f.v);
		return 0;
	}
	if (h != f.v)
		memmove(f.v, h, strlen(h) + 1);
	*hash_r = f.v;
	return 1;
}

static int
uq_no_secret(struct userdb *db, const char *address, char **secret_r)
{
	(void)db;
	(void)address;
	*secret_r = NULL;
	return 0;
}

static int
uq_ping(struct userdb *db, char **error_r)
{
	struct userdb_q *u = uq(db);
	size_t i;

	u->next_connect = 0;
	/* Each query once, so that a mistake in one shows now. */
	for (i = 0; i < UQ_N; i++) {
		const char *key = i == UQ_DOMAIN || i == UQ_DOMAINS
					  ? "example.invalid"
					  : "postmaster@example.invalid";

		char *err = NULL;

		if (u->has[i] && uq_run(u, i, key, NULL, NULL, &err) < 0) {
			*error_r = xasprintf("userdb.queries.%s: %s",
					     uq_names[i], err);
			free(err);
			return -1;
		}
	}
	return 0;
}

/* ---- administration: reads where a query exists, writes refused ------ */

static int
refuse(char **error_r)
{
	*error_r = xstrdup(readonly_error);
	return -1;
}

/* domain add|del, user del */
static int
uq_refuse_name(struct userdb *db, const char *name, char **error_r)
{
	(void)db, (void)name;
	return refuse(error_r);
}

static int
uq_user_add(struct userdb *db, const char *address, const char *hash,
	    char **error_r)
{
	(void)db, (void)address, (void)hash;
	return refuse(error_r);
}

static int
uq_user_set_secrets(struct userdb *db, const char *address, const char *hash,
		    const char *scram, const char *cram, char **error_r)
{
	(void)db, (void)address, (void)hash, (void)scram, (void)cram;
	return refuse(error_r);
}

/* alias add|del */
static int
uq_alias_change(struct userdb *db, const char *source, const char *target,
		char **error_r)
{
	(void)db, (void)source, (void)target;
	return refuse(error_r);
}

struct string_acc {
	char **v;
	size_t n, cap;
};

static int
domains_row(void *arg, const char *const *vals, size_t nvals)
{
	struct string_acc *a = arg;

	if (nvals == 0 || vals[0] == NULL || vals[0][0] == '\0' ||
	    a->n >= DOMAINS_MAX)
		return 0;
	if (a->n == a->cap) {
		a->cap = a->cap == 0 ? 8 : a->cap * 2;
		a->v = xreallocarray(a->v, a->cap, sizeof(*a->v));
	}
	a->v[a->n++] = xstrdup(vals[0]);
	return 0;
}

static int
uq_domain_list(struct userdb *db, char ***domains_r, size_t *n_r,
	       char **error_r)
{
	struct string_acc a = {NULL, 0, 0};

	*domains_r = NULL;
	*n_r = 0;
	if (!uq(db)->has[UQ_DOMAINS]) {
		*error_r = xstrdup("userdb.queries.domains is not set: godwit "
				   "cannot list the domains of your schema");
		return -1;
	}
	if (uq_run(uq(db), UQ_DOMAINS, "", domains_row, &a, error_r) < 0) {
		userdb_string_list_free(&a.v, a.n);
		return -1;
	}
	*domains_r = a.v;
	*n_r = a.n;
	return 0;
}

static int
uq_list_unavailable(struct userdb *db, const char *domain, char ***list_r,
		    size_t *n_r, char **error_r)
{
	(void)db, (void)domain;
	*list_r = NULL;
	*n_r = 0;
	*error_r = xstrdup("not available with userdb.queries (list them "
			   "with the tools that own your schema)");
	return -1;
}

const struct userdb_ops userdb_query_ops = {
	.name = "queries",
	.open = uq_open,
	.close = uq_close,
	.ping = uq_ping,
	.domain_exists = uq_domain_exists,
	.user_exists = uq_user_exists,
	.alias_lookup = uq_alias_lookup,
	.password_hash = uq_password_hash,
	.scram_secret = uq_no_secret,
	.cram_secret = uq_no_secret,
	.domain_add = uq_refuse_name,
	.domain_del = uq_refuse_name,
	.domain_list = uq_domain_list,
	.user_add = uq_user_add,
	.user_del = uq_refuse_name,
	.user_set_secrets = uq_user_set_secrets,
	.user_list = uq_list_unavailable,
	.alias_add = uq_alias_change,
	.alias_del = uq_alias_change,
	.alias_list = uq_list_unavailable,
};
