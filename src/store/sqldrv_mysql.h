/*
 * The MySQL driver's pure pieces (store/sqldrv_mysql.c), apart so that the
 * unit tests reach them: the key=value dsn and the $n -> ? rewrite.
 */
#ifndef GODWIT_SQLDRV_MYSQL_H
#define GODWIT_SQLDRV_MYSQL_H

#include <stddef.h>

struct sqldrv_mysql_dsn {
	char *host, *user, *password, *dbname, *unix_socket;
	char *sslmode, *sslrootcert, *sslcert, *sslkey;
	unsigned port;		/* 0: the default */
	unsigned connect_timeout; /* seconds; 0: the caller's timeout */
};

/*
 * "host=... port=... user=... password='it\'s' dbname=... unix_socket=...
 * connect_timeout=3" (the keys of libpq's that make sense here, plus
 * unix_socket and sslmode/sslrootcert/sslcert/sslkey)
 * (values bare or in single quotes, \ escapes the next character).
 * 0, or -1 with *error_r (caller frees); the password is wiped on free.
 */
int sqldrv_mysql_parse_dsn(const char *dsn, struct sqldrv_mysql_dsn *d_r,
			   char **error_r);
void sqldrv_mysql_dsn_free(struct sqldrv_mysql_dsn *d);

/*
 * $1..$n -> ? in order, outside quotes and comments; (*map_r)[k] is the
 * parameter index (0-based) the k-th ? binds. A bare ? or a $n above
 * nparams is an error. 0, or -1 with *error_r.
 */
int sqldrv_mysql_rewrite(const char *sql, size_t nparams, char **out_r,
			 unsigned **map_r, size_t *nmap_r, char **error_r);

#endif
