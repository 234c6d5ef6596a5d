/*
 * The PostgreSQL driver of store/sqldrv.h, over libpq: one blocking
 * connection, statements sent with PQexecParams (parameters apart from
 * the text, results as text).
 *
 * A dead or unreachable server must not hang the thread that asks: the
 * connect is bounded by connect_timeout, every statement by the server's
 * statement_timeout, and a server that vanished without closing the
 * socket (a pulled cable, a frozen VM) is noticed by TCP keepalives and
 * tcp_user_timeout, which libpq passes to the socket; all from timeout_s.
 * Values the DSN sets itself win: they come after ours in the conninfo.
 * statement_timeout is a SET after the connect rather than an "options"
 * startup parameter, which poolers such as PgBouncer refuse; a DSN that
 * names statement_timeout keeps its own.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"
#include "store/sqldrv.h"

struct sqldrv_conn {
	PGconn *pg;
};

/* libpq's messages end with a newline; ours do not. */
static char *
pg_message(const char *what, const char *msg)
{
	char *s = xasprintf("%s%s%s", what, *what != '\0' ? ": " : "",
			    msg != NULL && *msg != '\0' ? msg : "unknown error");
	size_t len = strlen(s);

	while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == ' '))
		s[--len] = '\0';
	return s;
}

/* PQconnectdbParams with expand_dbname: the DSN may be a conninfo string
 * or a URI; the keys before it are defaults the DSN can override. */
static int
pgsql_connect(const char *dsn, unsigned timeout_s, struct sqldrv_conn **c_r,
	      char **error_r)
{
	char timeout[16], user_timeout[24], set[64];
	const char *keys[10], *vals[10];
	struct sqldrv_conn *c;
	size_t n = 0;

	*c_r = NULL;
	if (timeout_s == 0)
		timeout_s = 5;
	snprintf(timeout, sizeof(timeout), "%u", timeout_s);
	snprintf(user_timeout, sizeof(user_timeout), "%u", timeout_s * 1000);
	keys[n] = "connect_timeout", vals[n++] = timeout;
	keys[n] = "keepalives", vals[n++] = "1";
	keys[n] = "keepalives_idle", vals[n++] = "30";
	keys[n] = "keepalives_interval", vals[n++] = "5";
	keys[n] = "keepalives_count", vals[n++] = "3";
	keys[n] = "tcp_user_timeout", vals[n++] = user_timeout;
	keys[n] = "dbname", vals[n++] = dsn;
	keys[n] = NULL, vals[n] = NULL;

	c = xcalloc(1, sizeof(*c));
	c->pg = PQconnectdbParams(keys, vals, 1);
	if (c->pg == NULL) {
		*error_r = xstrdup("postgresql: out of memory");
		free(c);
		return -1;
	}
	if (PQstatus(c->pg) != CONNECTION_OK) {
		*error_r = pg_message("postgresql", PQerrorMessage(c->pg));
		PQfinish(c->pg);
		free(c);
		return -1;
	}
	/* our SQL compares text byte by byte; keep the client's view plain */
	PQsetClientEncoding(c->pg, "UTF8");
	if (strstr(dsn, "statement_timeout") == NULL) {
		PGresult *res;

		snprintf(set, sizeof(set), "SET statement_timeout = %u",
			 timeout_s * 1000);
		res = PQexec(c->pg, set);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			*error_r = pg_message("postgresql: statement_timeout",
					      PQerrorMessage(c->pg));
			PQclear(res);
			PQfinish(c->pg);
			free(c);
			return -1;
		}
		PQclear(res);
	}
	*c_r = c;
	return 0;
}

static void
pgsql_close(struct sqldrv_conn *c)
{
	if (c == NULL)
		return;
	PQfinish(c->pg);
	free(c);
}

static long
pgsql_exec(struct sqldrv_conn *c, const char *sql, const char *const *params,
	   size_t nparams, sqldrv_row_fn *row, void *arg,
	   enum sqldrv_error *kind_r, char **error_r)
{
	const char *vals[32];
	const char *state;
	PGresult *res;
	long n = -1;
	int nrows, ncols;

	if (nparams > sizeof(vals) / sizeof(vals[0])) {
		*kind_r = SQLDRV_ERR_QUERY;
		*error_r = xstrdup("postgresql: too many parameters");
		return -1;
	}
	for (size_t i = 0; i < nparams; i++)
		vals[i] = params[i];
	if (PQstatus(c->pg) != CONNECTION_OK) {
		*kind_r = SQLDRV_ERR_CONN;
		*error_r = pg_message("postgresql", PQerrorMessage(c->pg));
		return -1;
	}
	res = PQexecParams(c->pg, sql, (int)nparams, NULL, vals, NULL, NULL, 0);
	switch (PQresultStatus(res)) {
	case PGRES_COMMAND_OK:
		n = strtol(PQcmdTuples(res), NULL, 10);
		break;
	case PGRES_TUPLES_OK:
		nrows = PQntuples(res);
		ncols = PQnfields(res);
		n = nrows;
		for (int r = 0; r < nrows && row != NULL; r++) {
			const char *cols[16];
			int nc = ncols < 16 ? ncols : 16;

			for (int k = 0; k < nc; k++)
				cols[k] = PQgetisnull(res, r, k)
						  ? NULL
						  : PQgetvalue(res, r, k);
			if (row(arg, cols, (size_t)nc) < 0) {
				*kind_r = SQLDRV_ERR_QUERY;
				*error_r = xstrdup("stopped");
				n = -1;
				break;
			}
		}
		break;
	default:
		/*
		 * A lost connection shows as a fatal error with the
		 * connection now bad, or as SQLSTATE class 08 (connection
		 * exception) or 57P (the server shutting down, an admin
		 * ending the session): all temporary.
		 */
		state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE)
				    : NULL;
		*kind_r = PQstatus(c->pg) != CONNECTION_OK || res == NULL ||
					  (state != NULL &&
					   (strncmp(state, "08", 2) == 0 ||
					    strncmp(state, "57P", 3) == 0))
				  ? SQLDRV_ERR_CONN
				  : SQLDRV_ERR_QUERY;
		*error_r = pg_message("postgresql",
				      res != NULL ? PQresultErrorMessage(res)
						  : PQerrorMessage(c->pg));
		break;
	}
	PQclear(res);
	return n;
}

const struct sqldrv_ops sqldrv_pgsql_ops = {
	.name = "postgresql",
	.connect = pgsql_connect,
	.close = pgsql_close,
	.exec = pgsql_exec,
};
