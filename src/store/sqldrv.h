/*
 * A connection to a network SQL server, as the user database over
 * PostgreSQL or MySQL/MariaDB needs it (store/userdb_sql.c). Each driver
 * (sqldrv_pgsql.c over libpq, sqldrv_mysql.c over libmariadb) fills in a
 * struct sqldrv_ops; the SQL text and the reconnect policy live above, in
 * userdb_sql.c, once for both.
 *
 * Every call is synchronous: a connection belongs to one thread (the auth
 * thread, a lookup thread, an admin command), never to an event loop.
 *
 * Statements carry their parameters separately, never spliced into the
 * text: parameters are written $1 .. $n in the SQL (PostgreSQL's form);
 * the MySQL driver rewrites them to ? in order and binds them, so no
 * value from a client ever becomes SQL.
 */
#ifndef GODWIT_SQLDRV_H
#define GODWIT_SQLDRV_H

#include <stdbool.h>
#include <stddef.h>

struct sqldrv_conn;

/*
 * One result row: vals[i] is NUL-terminated text, NULL for SQL NULL.
 * Return 0 to go on, -1 to stop (the exec then returns -1 too, with
 * *error_r "stopped").
 */
typedef int sqldrv_row_fn(void *arg, const char *const *vals, size_t nvals);

enum sqldrv_error {
	SQLDRV_ERR_QUERY = 1,	/* the statement failed (syntax, constraint) */
	SQLDRV_ERR_CONN,	/* the connection is lost or unusable:
				 * temporary, reconnect and try later */
};

struct sqldrv_ops {
	const char *name;	/* "postgresql", "mysql" */

	/*
	 * dsn is the driver's connection string (libpq conninfo or URI;
	 * for MySQL the same key=value form: host, port, user, password,
	 * dbname, unix_socket). timeout_s bounds the connect and each
	 * statement (0: the driver's default). 0, or -1 with *error_r.
	 */
	int (*connect)(const char *dsn, unsigned timeout_s,
		       struct sqldrv_conn **c_r, char **error_r);
	void (*close)(struct sqldrv_conn *c);

	/*
	 * One statement with nparams text parameters ($1..$n; NULL is SQL
	 * NULL). row (may be NULL) sees every result row. Returns the
	 * number of rows (for statements without rows: of rows changed),
	 * or -1 with *error_r (caller frees) and *kind_r.
	 */
	long (*exec)(struct sqldrv_conn *c, const char *sql,
		     const char *const *params, size_t nparams,
		     sqldrv_row_fn *row, void *arg,
		     enum sqldrv_error *kind_r, char **error_r);
};

extern const struct sqldrv_ops sqldrv_pgsql_ops;
extern const struct sqldrv_ops sqldrv_mysql_ops;

/* The driver of a userdb backend name ("postgresql", "mysql"), or NULL. */
const struct sqldrv_ops *sqldrv_find(const char *name);

#endif
