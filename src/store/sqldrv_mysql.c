/*
 * Stand-in for the MySQL/MariaDB driver until the MYSQL helper's
 * libmariadb driver lands (it replaces this file whole): every connect
 * fails, so backend: mysql is refused with a clear message.
 */
#include "lib/xalloc.h"
#include "store/sqldrv.h"

static int
mysql_connect(const char *dsn, unsigned timeout_s, struct sqldrv_conn **c_r,
	      char **error_r)
{
	(void)dsn;
	(void)timeout_s;
	*c_r = NULL;
	*error_r = xstrdup("mysql: driver not built yet");
	return -1;
}

static void
mysql_close(struct sqldrv_conn *c)
{
	(void)c;
}

static long
mysql_exec(struct sqldrv_conn *c, const char *sql, const char *const *params,
	   size_t nparams, sqldrv_row_fn *row, void *arg,
	   enum sqldrv_error *kind_r, char **error_r)
{
	(void)c, (void)sql, (void)params, (void)nparams, (void)row, (void)arg;
	*kind_r = SQLDRV_ERR_CONN;
	*error_r = xstrdup("mysql: driver not built yet");
	return -1;
}

const struct sqldrv_ops sqldrv_mysql_ops = {
	.name = "mysql",
	.connect = mysql_connect,
	.close = mysql_close,
	.exec = mysql_exec,
};
