/*
 * Unit tests for the compiling of userdb.queries (store/userdb_query.h):
 * Postfix placeholders to numbered parameters (quoted or bare, reused,
 * %%), what a query may not hold, and the Dovecot {SCHEME} prefixes of
 * stored passwords.
 */
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "store/userdb_query.h"

static void
check(const char *in, const char *want, size_t nvals,
      const enum userdb_query_value *vals)
{
	struct userdb_query_stmt st;
	char *err = NULL;

	assert_int_equal(userdb_query_compile(in, &st, &err), 0);
	assert_string_equal(st.sql, want);
	assert_int_equal(st.nvals, nvals);
	for (size_t i = 0; i < nvals; i++)
		assert_int_equal(st.vals[i], vals[i]);
	userdb_query_stmt_clear(&st);
}

static void
test_compile(void **state)
{
	static const enum userdb_query_value s[] = {UQV_ADDRESS};
	static const enum userdb_query_value ud[] = {UQV_LOCAL, UQV_DOMAIN};
	static const enum userdb_query_value dus[] = {UQV_DOMAIN, UQV_LOCAL,
						      UQV_ADDRESS};

	(void)state;
	check("SELECT goto FROM alias WHERE address='%s' AND active = '1'",
	      "SELECT goto FROM alias WHERE address=$1 AND active = '1'", 1, s);
	check("select 1 from mailbox where local_part = \"%u\" and "
	      "domain = %d and x = '%%'",
	      "select 1 from mailbox where local_part = $1 and "
	      "domain = $2 and x = '%'", 2, ud);
	check("  SELECT a FROM t WHERE d = %d AND u = %u AND s = %s OR "
	      "d2 = '%d' LIKE 'a%%b';",
	      "  SELECT a FROM t WHERE d = $1 AND u = $2 AND s = $3 OR "
	      "d2 = $1 LIKE 'a%b'", 3, dus);
	check("WITH x AS (SELECT 1) SELECT * FROM x", "WITH x AS (SELECT 1) "
	      "SELECT * FROM x", 0, NULL);
	check("SELECT 'it''s', 'a\\'b' FROM t WHERE a = '%s'",
	      "SELECT 'it''s', 'a\\'b' FROM t WHERE a = $1", 1, s);

	static const char *const bad[] = {
		"DELETE FROM mailbox",
		"SELECT 1 WHERE a = %x",
		"SELECT 1 WHERE a = 'x%x'",
		"SELECT 1 WHERE a = '%u@%d'",
		"SELECT 1 WHERE a = $1",
		"SELECT 1 WHERE a = ?",
		"SELECT 1; DROP TABLE mailbox",
		"SELECT 'open",
		"SELECT 1 WHERE a = %",
		"SELECT\x01 1",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct userdb_query_stmt st;
		char *err = NULL;

		assert_int_equal(userdb_query_compile(bad[i], &st, &err), -1);
		assert_non_null(err);
		assert_null(st.sql);
		free(err);
	}
}

static void
test_crypt_hash(void **state)
{
	(void)state;
	assert_string_equal(userdb_query_crypt_hash("{BLF-CRYPT}$2y$05$abc"),
			    "$2y$05$abc");
	assert_string_equal(userdb_query_crypt_hash("{sha512-crypt}$6$s$h"),
			    "$6$s$h");
	assert_string_equal(userdb_query_crypt_hash("{CRYPT}$1$s$h"),
			    "$1$s$h");
	assert_string_equal(userdb_query_crypt_hash("{MD5}$1$s$h"), "$1$s$h");
	assert_string_equal(userdb_query_crypt_hash("$y$j9T$s$h"),
			    "$y$j9T$s$h");
	assert_null(userdb_query_crypt_hash("{PLAIN}secret"));
	assert_null(userdb_query_crypt_hash("{SSHA}abcd"));
	assert_null(userdb_query_crypt_hash(NULL));
	assert_string_equal(userdb_query_crypt_hash("{no end"), "{no end");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compile),
		cmocka_unit_test(test_crypt_hash),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
