/*
 * Unit tests for the MySQL driver's pure parts (store/sqldrv_mysql.h): the
 * key=value dsn (quotes, escapes, unknown keys, ports) and the $n -> ?
 * rewrite (order, reuse, quotes and comments left alone, bad numbers).
 */
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "store/sqldrv_mysql.h"

static void
test_dsn(void **state)
{
	struct sqldrv_mysql_dsn d;
	char *err = NULL;

	(void)state;
	assert_int_equal(sqldrv_mysql_parse_dsn(
			     " host=127.0.0.1 port=3307  user=godwit "
			     "password='it\\'s a secret' dbname=mail ",
			     &d, &err), 0);
	assert_string_equal(d.host, "127.0.0.1");
	assert_int_equal(d.port, 3307);
	assert_string_equal(d.user, "godwit");
	assert_string_equal(d.password, "it's a secret");
	assert_string_equal(d.dbname, "mail");
	assert_null(d.unix_socket);
	sqldrv_mysql_dsn_free(&d);

	assert_int_equal(sqldrv_mysql_parse_dsn(
			     "unix_socket=/run/mysqld/mysqld.sock database=x "
			     "sslmode=require connect_timeout=3", &d, &err),
			 0);
	assert_int_equal(d.connect_timeout, 3);
	assert_string_equal(d.unix_socket, "/run/mysqld/mysqld.sock");
	assert_string_equal(d.dbname, "x");
	assert_string_equal(d.sslmode, "require");
	sqldrv_mysql_dsn_free(&d);

	assert_int_equal(sqldrv_mysql_parse_dsn("", &d, &err), 0);
	sqldrv_mysql_dsn_free(&d);

	static const char *const bad[] = {
		"hots=x", "port=0", "port=65536", "port=12a", "host",
		"=x", "password='open", "sslmode=sometimes",
		"connect_timeout=0", "connect_timeout=x",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = NULL;
		assert_int_equal(sqldrv_mysql_parse_dsn(bad[i], &d, &err), -1);
		assert_non_null(err);
		free(err);
	}
}

static void
check_rewrite(const char *in, size_t np, const char *want,
	      const unsigned *map, size_t nmap)
{
	char *out = NULL, *err = NULL;
	unsigned *m = NULL;
	size_t n = 0;

	assert_int_equal(sqldrv_mysql_rewrite(in, np, &out, &m, &n, &err), 0);
	assert_string_equal(out, want);
	assert_int_equal(n, nmap);
	for (size_t i = 0; i < nmap; i++)
		assert_int_equal(m[i], map[i]);
	free(out);
	free(m);
}

static void
test_rewrite(void **state)
{
	static const unsigned m1[] = {0, 1};
	static const unsigned m2[] = {1, 0, 1};
	static const unsigned m3[] = {9};
	char *out, *err;
	unsigned *m;
	size_t n;

	(void)state;
	check_rewrite("SELECT 1", 0, "SELECT 1", NULL, 0);
	check_rewrite("SELECT a FROM t WHERE a = $1 AND b = $2", 2,
		      "SELECT a FROM t WHERE a = ? AND b = ?", m1, 2);
	check_rewrite("UPDATE t SET x=$2 WHERE a=$1 OR b=$2", 2,
		      "UPDATE t SET x=? WHERE a=? OR b=?", m2, 3);
	check_rewrite("SELECT '$1 ?', \"$2\", `$3`, 'it''s $1', 'a\\'$1' "
		      "-- $1 ?\n/* $2 ? */ FROM t", 0,
		      "SELECT '$1 ?', \"$2\", `$3`, 'it''s $1', 'a\\'$1' "
		      "-- $1 ?\n/* $2 ? */ FROM t", NULL, 0);
	check_rewrite("x=$10", 10, "x=?", m3, 1);

	static const char *const bad[] = {
		"SELECT $3", "SELECT $0", "SELECT ?", "SELECT 'open",
		"SELECT $99999999999999999999",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = NULL;
		assert_int_equal(sqldrv_mysql_rewrite(bad[i], 2, &out, &m, &n,
						      &err), -1);
		assert_non_null(err);
		free(err);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dsn),
		cmocka_unit_test(test_rewrite),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
