/*
 * The MySQL/MariaDB driver of store/sqldrv.h over libmariadb.
 *
 * A statement with parameters is a server-side prepared statement: its
 * $1..$n are rewritten to ? in order (outside quotes and comments) and each
 * ? is bound to the parameter its number names, so "$2 ... $2" binds the
 * second parameter twice; no value ever becomes SQL text. Prepared
 * statements are kept per connection, keyed by their text, so a lookup
 * costs one round trip. A statement without parameters (the schema, a
 * configured query with no placeholder) goes through the text protocol,
 * where several statements separated by ';' are allowed, as libpq's
 * PQexec allows them.
 *
 * The session is utf8mb4, with PIPES_AS_CONCAT so that the
 * SQL shared with PostgreSQL means the same thing, and CLIENT_FOUND_ROWS so
 * that an UPDATE counts the rows it matched (as PostgreSQL does), not only
 * those it changed. libmariadb's own reconnect is off: a lost connection is
 * SQLDRV_ERR_CONN and the caller (userdb_sql.c) decides when to reconnect.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <errmsg.h>
#include <mysql.h>
#include <mysqld_error.h>

#include "lib/xalloc.h"
#include "store/sqldrv.h"
#include "store/sqldrv_mysql.h"

#define MYSQL_DEFAULT_TIMEOUT 10	/* seconds, when the caller gives 0 */
#define STMT_CACHE_MAX 32
#define VALUE_MAX (16u * 1024 * 1024)	/* one column of one row */
#define DSN_MAX 4096

struct stmt_cache_entry {
	char *sql;		/* the text as the caller wrote it ($n) */
	MYSQL_STMT *stmt;
	unsigned *map;		/* ?-position -> parameter index */
	size_t nmap;
	unsigned maxparam;	/* highest $n used */
};

struct sqldrv_conn {
	MYSQL *m;
	struct stmt_cache_entry cache[STMT_CACHE_MAX];
	size_t ncache;
	size_t next_evict;
};

/* ---- the dsn ---------------------------------------------------------- */

void
sqldrv_mysql_dsn_free(struct sqldrv_mysql_dsn *d)
{
	free(d->host);
	free(d->user);
	if (d->password != NULL) {
		explicit_bzero(d->password, strlen(d->password));
		free(d->password);
	}
	free(d->dbname);
	free(d->unix_socket);
	free(d->sslmode);
	free(d->sslrootcert);
	free(d->sslcert);
	free(d->sslkey);
	memset(d, 0, sizeof(*d));
}

int
sqldrv_mysql_parse_dsn(const char *dsn, struct sqldrv_mysql_dsn *d_r,
		       char **error_r)
{
	struct sqldrv_mysql_dsn d = {0};
	const char *p = dsn;
	char key[32], *val;
	size_t klen, vlen, cap;
	int r = -1;

	if (strlen(dsn) > DSN_MAX) {
		*error_r = xstrdup("dsn too long");
		return -1;
	}
	val = xmalloc(strlen(dsn) + 1);
	for (;;) {
		char **slot = NULL;

		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
		if (*p == '\0')
			break;
		klen = strcspn(p, "= \t\n");
		if (klen == 0 || klen >= sizeof(key) || p[klen] != '=') {
			*error_r = xstrdup("dsn: expected key=value");
			goto out;
		}
		memcpy(key, p, klen);
		key[klen] = '\0';
		p += klen + 1;
		while (*p == ' ' || *p == '\t')
			p++;
		/* value: bare up to white space, or '...' with \' and \\ */
		vlen = 0;
		cap = strlen(dsn);
		if (*p == '\'') {
			p++;
			while (*p != '\'' && *p != '\0') {
				if (*p == '\\' && p[1] != '\0')
					p++;
				if (vlen < cap)
					val[vlen++] = *p;
				p++;
			}
			if (*p != '\'') {
				*error_r = xstrdup("dsn: unterminated quote");
				goto out;
			}
			p++;
		} else {
			while (*p != '\0' && *p != ' ' && *p != '\t' &&
			       *p != '\n') {
				if (*p == '\\' && p[1] != '\0')
					p++;
				if (vlen < cap)
					val[vlen++] = *p;
				p++;
			}
		}
		val[vlen] = '\0';

		if (strcmp(key, "host") == 0 || strcmp(key, "hostaddr") == 0)
			slot = &d.host;
		else if (strcmp(key, "user") == 0)
			slot = &d.user;
		else if (strcmp(key, "password") == 0)
			slot = &d.password;
		else if (strcmp(key, "dbname") == 0 ||
			 strcmp(key, "database") == 0)
			slot = &d.dbname;
		else if (strcmp(key, "unix_socket") == 0 ||
			 strcmp(key, "socket") == 0)
			slot = &d.unix_socket;
		else if (strcmp(key, "sslmode") == 0)
			slot = &d.sslmode;
		else if (strcmp(key, "sslrootcert") == 0)
			slot = &d.sslrootcert;
		else if (strcmp(key, "sslcert") == 0)
			slot = &d.sslcert;
		else if (strcmp(key, "sslkey") == 0)
			slot = &d.sslkey;
		if (strcmp(key, "port") == 0 ||
		    strcmp(key, "connect_timeout") == 0) {
			bool port = key[0] == 'p';
			char *end;
			unsigned long n;

			errno = 0;
			n = strtoul(val, &end, 10);
			if (errno != 0 || end == val || *end != '\0' ||
			    n == 0 || n > (port ? 65535 : 3600)) {
				*error_r = xstrdup(port ? "dsn: port must be "
							  "1..65535"
							: "dsn: connect_timeout "
							  "must be 1..3600 "
							  "(seconds)");
				goto out;
			}
			if (port)
				d.port = (unsigned)n;
			else
				d.connect_timeout = (unsigned)n;
		} else if (slot == NULL) {
			*error_r = xasprintf("dsn: unknown key \"%s\" (host, "
					     "port, user, password, dbname, "
					     "unix_socket, connect_timeout, "
					     "sslmode, sslrootcert, sslcert, "
					     "sslkey)",
					     key);
			goto out;
		} else {
			free(*slot);
			*slot = xstrdup(val);
		}
	}
	if (d.sslmode != NULL && strcmp(d.sslmode, "disable") != 0 &&
	    strcmp(d.sslmode, "prefer") != 0 &&
	    strcmp(d.sslmode, "require") != 0 &&
	    strcmp(d.sslmode, "verify-ca") != 0 &&
	    strcmp(d.sslmode, "verify-full") != 0) {
		*error_r = xstrdup("dsn: sslmode is disable, prefer, require, "
				   "verify-ca or verify-full");
		goto out;
	}
	r = 0;
out:
	explicit_bzero(val, strlen(dsn) + 1);
	free(val);
	if (r == 0)
		*d_r = d;
	else
		sqldrv_mysql_dsn_free(&d);
	return r;
}

/* ---- $n -> ? ---------------------------------------------------------- */

int
sqldrv_mysql_rewrite(const char *sql, size_t nparams, char **out_r,
		     unsigned **map_r, size_t *nmap_r, char **error_r)
{
	size_t len = strlen(sql), o = 0, nmap = 0;
	char *out = xmalloc(len + 1);
	unsigned *map = xcalloc(len / 2 + 1, sizeof(*map));
	const char *p = sql;

	while (*p != '\0') {
		if (*p == '\'' || *p == '"' || *p == '`') {
			char q = *p;

			out[o++] = *p++;
			while (*p != '\0') {
				if (*p == '\\' && q == '\'' && p[1] != '\0') {
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
				out[o++] = *p++;
			}
			if (*p == '\0') {
				*error_r = xstrdup("unterminated quote in "
						   "the statement");
				goto fail;
			}
			out[o++] = *p++;
		} else if (p[0] == '-' && p[1] == '-') {
			while (*p != '\0' && *p != '\n')
				out[o++] = *p++;
		} else if (p[0] == '/' && p[1] == '*') {
			const char *e = strstr(p + 2, "*/");
			size_t n = e == NULL ? strlen(p) : (size_t)(e + 2 - p);

			memcpy(out + o, p, n);
			o += n;
			p += n;
		} else if (*p == '$' && p[1] >= '0' && p[1] <= '9') {
			unsigned long n = 0;

			p++;
			while (*p >= '0' && *p <= '9') {
				if (n < 100000)
					n = n * 10 + (unsigned long)(*p - '0');
				p++;
			}
			if (n < 1 || n > nparams) {
				*error_r = xasprintf("the statement uses $%lu "
						     "but has %zu parameters",
						     n, nparams);
				goto fail;
			}
			map[nmap++] = (unsigned)(n - 1);
			out[o++] = '?';
		} else if (*p == '?') {
			*error_r = xstrdup("a bare ? in the statement (write "
					   "$1..$n)");
			goto fail;
		} else {
			out[o++] = *p++;
		}
	}
	out[o] = '\0';
	*out_r = out;
	*map_r = map;
	*nmap_r = nmap;
	return 0;
fail:
	free(out);
	free(map);
	return -1;
}

/* ---- errors ----------------------------------------------------------- */

static bool
errno_is_conn(unsigned e)
{
	switch (e) {
	case CR_SERVER_GONE_ERROR:
	case CR_SERVER_LOST:
	case CR_SERVER_LOST_EXTENDED:
	case CR_CONN_HOST_ERROR:
	case CR_CONNECTION_ERROR:
	case CR_UNKNOWN_HOST:
	case CR_IPSOCK_ERROR:
	case CR_SOCKET_CREATE_ERROR:
	case CR_COMMANDS_OUT_OF_SYNC:
	case CR_ERR_NET_READ:
	case CR_ERR_NET_WRITE:
	case ER_CON_COUNT_ERROR:
	case ER_SERVER_SHUTDOWN:
	case ER_NET_READ_ERROR:
	case ER_NET_READ_INTERRUPTED:
	case ER_NET_ERROR_ON_WRITE:
	case ER_NET_WRITE_INTERRUPTED:
	case ER_CONNECTION_KILLED:
	case ER_QUERY_INTERRUPTED:
		return true;
	default:
		return false;
	}
}

static long
fail_conn(struct sqldrv_conn *c, enum sqldrv_error *kind_r, char **error_r)
{
	unsigned e = mysql_errno(c->m);

	*kind_r = errno_is_conn(e) ? SQLDRV_ERR_CONN : SQLDRV_ERR_QUERY;
	*error_r = xasprintf("mysql: %s (%u)", mysql_error(c->m), e);
	return -1;
}

static long
fail_stmt(MYSQL_STMT *st, enum sqldrv_error *kind_r, char **error_r)
{
	unsigned e = mysql_stmt_errno(st);

	*kind_r = errno_is_conn(e) ? SQLDRV_ERR_CONN : SQLDRV_ERR_QUERY;
	*error_r = xasprintf("mysql: %s (%u)", mysql_stmt_error(st), e);
	return -1;
}

/* ---- connect ---------------------------------------------------------- */

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static int lib_init_failed;

static void
lib_init(void)
{
	/* Not thread-safe inside mysql_init(): done once, here. */
	lib_init_failed = mysql_library_init(0, NULL, NULL) != 0;
}

static int
mysql_connect(const char *dsn, unsigned timeout_s, struct sqldrv_conn **c_r,
	      char **error_r)
{
	struct sqldrv_mysql_dsn d;
	struct sqldrv_conn *c;
	unsigned t = timeout_s != 0 ? timeout_s : MYSQL_DEFAULT_TIMEOUT, ct = t;
	my_bool off = 0, on = 1;
	const char *host;
	MYSQL *m;

	*c_r = NULL;
	pthread_once(&lib_once, lib_init);
	if (lib_init_failed) {
		*error_r = xstrdup("mysql: cannot initialise libmariadb");
		return -1;
	}
	if (sqldrv_mysql_parse_dsn(dsn, &d, error_r) < 0)
		return -1;
	if ((m = mysql_init(NULL)) == NULL) {
		sqldrv_mysql_dsn_free(&d);
		*error_r = xstrdup("mysql: out of memory");
		return -1;
	}
	if (d.connect_timeout != 0)
		ct = d.connect_timeout;
	mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &ct);
	mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &t);
	mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &t);
	mysql_options(m, MYSQL_OPT_RECONNECT, &off);
	mysql_options(m, MYSQL_REPORT_DATA_TRUNCATION, &on);
	mysql_options(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	mysql_options(m, MYSQL_INIT_COMMAND,
		      "SET SESSION sql_mode = 'PIPES_AS_CONCAT,"
		      "STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION', "
		      "time_zone = '+00:00'");
	if (d.sslmode != NULL && strcmp(d.sslmode, "disable") != 0) {
		if (d.sslrootcert != NULL)
			mysql_options(m, MYSQL_OPT_SSL_CA, d.sslrootcert);
		if (d.sslcert != NULL)
			mysql_options(m, MYSQL_OPT_SSL_CERT, d.sslcert);
		if (d.sslkey != NULL)
			mysql_options(m, MYSQL_OPT_SSL_KEY, d.sslkey);
		if (strcmp(d.sslmode, "prefer") != 0)
			mysql_options(m, MYSQL_OPT_SSL_ENFORCE, &on);
		if (strcmp(d.sslmode, "verify-ca") == 0 ||
		    strcmp(d.sslmode, "verify-full") == 0)
			mysql_options(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &on);
	}
	host = d.host;
	if (host == NULL && d.unix_socket == NULL)
		host = "localhost";
	if (mysql_real_connect(m, host, d.user, d.password, d.dbname, d.port,
			       d.unix_socket,
			       CLIENT_MULTI_STATEMENTS | CLIENT_FOUND_ROWS) ==
	    NULL) {
		*error_r = xasprintf("mysql: cannot connect: %s (%u)",
				     mysql_error(m), mysql_errno(m));
		mysql_close(m);
		sqldrv_mysql_dsn_free(&d);
		return -1;
	}
	sqldrv_mysql_dsn_free(&d);
	c = xcalloc(1, sizeof(*c));
	c->m = m;
	*c_r = c;
	return 0;
}

static void
cache_entry_free(struct stmt_cache_entry *e)
{
	if (e->stmt != NULL)
		mysql_stmt_close(e->stmt);
	free(e->sql);
	free(e->map);
	memset(e, 0, sizeof(*e));
}

static void
mysql_conn_close(struct sqldrv_conn *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->ncache; i++)
		cache_entry_free(&c->cache[i]);
	mysql_close(c->m);
	free(c);
}

/* ---- statements ------------------------------------------------------- */

/* Without parameters: the text protocol, one or more statements. */
static long
exec_text(struct sqldrv_conn *c, const char *sql, sqldrv_row_fn *row,
	  void *arg, enum sqldrv_error *kind_r, char **error_r)
{
	long count = 0;
	bool stopped = false;
	int st;

	if (mysql_real_query(c->m, sql, strlen(sql)) != 0)
		return fail_conn(c, kind_r, error_r);
	do {
		MYSQL_RES *res = mysql_store_result(c->m);

		if (res != NULL) {
			unsigned nf = mysql_num_fields(res);
			MYSQL_ROW r;

			while ((r = mysql_fetch_row(res)) != NULL) {
				count++;
				if (stopped || row == NULL)
					continue;
				/* libmariadb NUL-terminates text values */
				if (row(arg, (const char *const *)r, nf) < 0)
					stopped = true;
			}
			mysql_free_result(res);
		} else if (mysql_field_count(c->m) != 0) {
			return fail_conn(c, kind_r, error_r);
		} else {
			my_ulonglong n = mysql_affected_rows(c->m);

			if (n != (my_ulonglong)-1)
				count += (long)(n > LONG_MAX ? LONG_MAX : n);
		}
	} while ((st = mysql_next_result(c->m)) == 0);
	if (st > 0)
		return fail_conn(c, kind_r, error_r);
	if (stopped) {
		*kind_r = SQLDRV_ERR_QUERY;
		*error_r = xstrdup("stopped");
		return -1;
	}
	return count;
}

static struct stmt_cache_entry *
stmt_get(struct sqldrv_conn *c, const char *sql, size_t nparams,
	 enum sqldrv_error *kind_r, char **error_r)
{
	struct stmt_cache_entry *e, ne = {0};
	char *text;
	my_bool on = 1;
	size_t i;

	for (i = 0; i < c->ncache; i++) {
		e = &c->cache[i];
		if (strcmp(e->sql, sql) == 0) {
			if (e->maxparam > nparams) {
				*kind_r = SQLDRV_ERR_QUERY;
				*error_r = xasprintf("the statement uses $%u "
						     "but has %zu parameters",
						     e->maxparam, nparams);
				return NULL;
			}
			return e;
		}
	}
	if (sqldrv_mysql_rewrite(sql, nparams, &text, &ne.map, &ne.nmap,
				 error_r) < 0) {
		*kind_r = SQLDRV_ERR_QUERY;
		return NULL;
	}
	for (i = 0; i < ne.nmap; i++)
		if (ne.map[i] + 1 > ne.maxparam)
			ne.maxparam = ne.map[i] + 1;
	if ((ne.stmt = mysql_stmt_init(c->m)) == NULL) {
		free(text);
		cache_entry_free(&ne);
		fail_conn(c, kind_r, error_r);
		return NULL;
	}
	mysql_stmt_attr_set(ne.stmt, STMT_ATTR_UPDATE_MAX_LENGTH, &on);
	if (mysql_stmt_prepare(ne.stmt, text, strlen(text)) != 0) {
		free(text);
		fail_stmt(ne.stmt, kind_r, error_r);
		cache_entry_free(&ne);
		return NULL;
	}
	free(text);
	if (mysql_stmt_param_count(ne.stmt) != ne.nmap) {
		cache_entry_free(&ne);
		*kind_r = SQLDRV_ERR_QUERY;
		*error_r = xstrdup("mysql: parameter count mismatch");
		return NULL;
	}
	ne.sql = xstrdup(sql);
	if (c->ncache < STMT_CACHE_MAX) {
		e = &c->cache[c->ncache++];
	} else {
		e = &c->cache[c->next_evict];
		c->next_evict = (c->next_evict + 1) % STMT_CACHE_MAX;
		cache_entry_free(e);
	}
	*e = ne;
	return e;
}

static void
stmt_forget(struct sqldrv_conn *c, struct stmt_cache_entry *e)
{
	size_t i = (size_t)(e - c->cache);

	cache_entry_free(e);
	c->ncache--;
	if (i != c->ncache)
		c->cache[i] = c->cache[c->ncache];
	memset(&c->cache[c->ncache], 0, sizeof(c->cache[0]));
	if (c->next_evict >= c->ncache)
		c->next_evict = 0;
}

struct result_bufs {
	MYSQL_BIND *bind;
	char **buf;
	unsigned long *len, *size;
	my_bool *isnull, *err;
	const char **vals;
	unsigned n;
};

static void
result_bufs_free(struct result_bufs *rb)
{
	unsigned i;

	for (i = 0; i < rb->n; i++)
		free(rb->buf[i]);
	free(rb->bind);
	free(rb->buf);
	free(rb->len);
	free(rb->size);
	free(rb->isnull);
	free(rb->err);
	free(rb->vals);
}

static void
result_bufs_init(struct result_bufs *rb, MYSQL_RES *meta)
{
	MYSQL_FIELD *f = mysql_fetch_fields(meta);
	unsigned i;

	rb->n = mysql_num_fields(meta);
	rb->bind = xcalloc(rb->n, sizeof(*rb->bind));
	rb->buf = xcalloc(rb->n, sizeof(*rb->buf));
	rb->len = xcalloc(rb->n, sizeof(*rb->len));
	rb->size = xcalloc(rb->n, sizeof(*rb->size));
	rb->isnull = xcalloc(rb->n, sizeof(*rb->isnull));
	rb->err = xcalloc(rb->n, sizeof(*rb->err));
	rb->vals = xcalloc(rb->n, sizeof(*rb->vals));
	for (i = 0; i < rb->n; i++) {
		unsigned long sz = f[i].max_length;

		if (sz < 64)
			sz = 64;
		if (sz > VALUE_MAX)
			sz = VALUE_MAX;
		rb->size[i] = sz + 1;
		rb->buf[i] = xmalloc(rb->size[i]);
		rb->bind[i].buffer_type = MYSQL_TYPE_STRING;
		rb->bind[i].buffer = rb->buf[i];
		rb->bind[i].buffer_length = rb->size[i];
		rb->bind[i].length = &rb->len[i];
		rb->bind[i].is_null = &rb->isnull[i];
		rb->bind[i].error = &rb->err[i];
	}
}

static long
exec_prepared(struct sqldrv_conn *c, const char *sql,
	      const char *const *params, size_t nparams, sqldrv_row_fn *row,
	      void *arg, enum sqldrv_error *kind_r, char **error_r)
{
	struct stmt_cache_entry *e;
	struct result_bufs rb = {0};
	MYSQL_BIND *pb = NULL;
	unsigned long *plen = NULL;
	MYSQL_RES *meta = NULL;
	MYSQL_STMT *st;
	long count = 0, r = -1;
	bool stopped = false;
	size_t i;
	int f;

	if ((e = stmt_get(c, sql, nparams, kind_r, error_r)) == NULL)
		return -1;
	st = e->stmt;
	if (e->nmap > 0) {
		pb = xcalloc(e->nmap, sizeof(*pb));
		plen = xcalloc(e->nmap, sizeof(*plen));
		for (i = 0; i < e->nmap; i++) {
			const char *v = params[e->map[i]];

			if (v == NULL) {
				pb[i].buffer_type = MYSQL_TYPE_NULL;
				continue;
			}
			plen[i] = strlen(v);
			pb[i].buffer_type = MYSQL_TYPE_STRING;
			pb[i].buffer = (void *)(uintptr_t)v;
			pb[i].buffer_length = plen[i];
			pb[i].length = &plen[i];
		}
		if (mysql_stmt_bind_param(st, pb) != 0) {
			fail_stmt(st, kind_r, error_r);
			goto out;
		}
	}
	if (mysql_stmt_execute(st) != 0) {
		fail_stmt(st, kind_r, error_r);
		goto out;
	}
	if ((meta = mysql_stmt_result_metadata(st)) == NULL) {
		my_ulonglong n;

		if (mysql_stmt_field_count(st) != 0) {
			fail_stmt(st, kind_r, error_r);
			goto out;
		}
		n = mysql_stmt_affected_rows(st);
		r = n == (my_ulonglong)-1 ? 0 : (long)(n > LONG_MAX ? LONG_MAX
								    : n);
		goto out;
	}
	if (mysql_stmt_store_result(st) != 0) {
		fail_stmt(st, kind_r, error_r);
		goto out;
	}
	result_bufs_init(&rb, meta);
	if (mysql_stmt_bind_result(st, rb.bind) != 0) {
		fail_stmt(st, kind_r, error_r);
		goto out;
	}
	while ((f = mysql_stmt_fetch(st)) == 0 || f == MYSQL_DATA_TRUNCATED) {
		bool rebind = false;

		count++;
		for (i = 0; i < rb.n; i++) {
			if (rb.isnull[i]) {
				rb.vals[i] = NULL;
				continue;
			}
			if (rb.len[i] >= rb.size[i]) {
				if (rb.len[i] >= VALUE_MAX) {
					*kind_r = SQLDRV_ERR_QUERY;
					*error_r = xstrdup("mysql: a value "
							   "over 16 MiB");
					goto out;
				}
				free(rb.buf[i]);
				rb.size[i] = rb.len[i] + 1;
				rb.buf[i] = xmalloc(rb.size[i]);
				rb.bind[i].buffer = rb.buf[i];
				rb.bind[i].buffer_length = rb.size[i];
				if (mysql_stmt_fetch_column(st, &rb.bind[i],
							    (unsigned)i,
							    0) != 0) {
					fail_stmt(st, kind_r, error_r);
					goto out;
				}
				rebind = true;
			}
			rb.buf[i][rb.len[i]] = '\0';
			rb.vals[i] = rb.buf[i];
		}
		if (rebind && mysql_stmt_bind_result(st, rb.bind) != 0) {
			fail_stmt(st, kind_r, error_r);
			goto out;
		}
		if (!stopped && row != NULL &&
		    row(arg, rb.vals, rb.n) < 0)
			stopped = true;
	}
	if (f != MYSQL_NO_DATA) {
		fail_stmt(st, kind_r, error_r);
		goto out;
	}
	if (stopped) {
		*kind_r = SQLDRV_ERR_QUERY;
		*error_r = xstrdup("stopped");
		goto out;
	}
	r = count;
out:
	for (i = 0; i < rb.n; i++)
		if (rb.buf[i] != NULL)
			explicit_bzero(rb.buf[i], rb.size[i]);
	result_bufs_free(&rb);
	if (meta != NULL)
		mysql_free_result(meta);
	mysql_stmt_free_result(st);
	free(pb);
	free(plen);
	/* A statement that failed may be unusable (e.g. its table was
	 * dropped): prepared again next time. */
	if (r < 0)
		stmt_forget(c, e);
	return r;
}

static long
mysql_exec(struct sqldrv_conn *c, const char *sql, const char *const *params,
	   size_t nparams, sqldrv_row_fn *row, void *arg,
	   enum sqldrv_error *kind_r, char **error_r)
{
	*kind_r = SQLDRV_ERR_QUERY;
	if (nparams == 0 && strchr(sql, '$') == NULL && strchr(sql, '?') == NULL)
		return exec_text(c, sql, row, arg, kind_r, error_r);
	return exec_prepared(c, sql, params, nparams, row, arg, kind_r,
			     error_r);
}

const struct sqldrv_ops sqldrv_mysql_ops = {
	.name = "mysql",
	.connect = mysql_connect,
	.close = mysql_conn_close,
	.exec = mysql_exec,
};
