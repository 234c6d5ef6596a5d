/*
 * The password cache of net/auth.c (auth.cache_ttl): which logins skip the
 * database and which do not. The database here is a stand-in that counts
 * password_hash lookups and can be "down" (-1) or forget the user (0), so
 * the test sees each lookup; the real databases are driven by
 * tests/integration (test_auth.py, test_userdb_pgsql.py). The expiry of
 * cache_ttl itself is timed there too.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "lib/xalloc.h"
#include "net/auth.h"
#include "store/password.h"
#include "store/userdb.h"

struct stub_db {
	struct userdb base;	/* first: the creds get a struct userdb * */
	char *hash;		/* NULL: the user does not exist */
	bool down;
	int lookups;
};

static int
stub_password_hash(struct userdb *db, const char *address, char **hash_r)
{
	struct stub_db *s = (struct stub_db *)db;

	(void)address;
	s->lookups++;
	if (s->down)
		return -1;
	if (s->hash == NULL)
		return 0;
	*hash_r = xstrdup(s->hash);
	return 1;
}

static const struct userdb_ops stub_ops = {
	.name = "stub",
	.password_hash = stub_password_hash,
};

static void
stub_set_password(struct stub_db *s, const char *password)
{
	const char *err;

	free(s->hash);
	s->hash = password != NULL ? password_hash(password, &err) : NULL;
	if (password != NULL)
		assert_non_null(s->hash);
}

/* verify_password() for `user`, and how many lookups it made */
static int
login(struct stub_db *s, const char *user, const char *password, int *lookups)
{
	int before = s->lookups, r;

	r = auth_userdb_creds.verify_password(&s->base, user, password);
	*lookups = s->lookups - before;
	return r;
}

static void
test_ttl_skips_the_lookup_of_a_confirmed_password(void **state)
{
	struct stub_db s = {.base.ops = &stub_ops};
	int n;

	(void)state;
	auth_cache_set_ttl(30);
	stub_set_password(&s, "right horse battery");
	/* the first login asks the database */
	assert_int_equal(login(&s, "ann@example.test", "right horse battery",
			       &n), 1);
	assert_int_equal(n, 1);
	/* the second does not, in any case of the name */
	assert_int_equal(login(&s, "Ann@Example.TEST", "right horse battery",
			       &n), 1);
	assert_int_equal(n, 0);
	/* a wrong password is never served from the cache */
	assert_int_equal(login(&s, "ann@example.test", "wrong", &n), 0);
	assert_int_equal(n, 1);
	/* and leaves the entry alone */
	assert_int_equal(login(&s, "ann@example.test", "right horse battery",
			       &n), 1);
	assert_int_equal(n, 0);
	/* the database down: the cached password still logs in, others get
	 * the temporary failure */
	s.down = true;
	assert_int_equal(login(&s, "ann@example.test", "right horse battery",
			       &n), 1);
	assert_int_equal(n, 0);
	assert_int_equal(login(&s, "ann@example.test", "wrong", &n), -1);
	assert_int_equal(n, 1);
	assert_int_equal(login(&s, "bob@example.test", "right horse battery",
			       &n), -1);
	assert_int_equal(n, 1);
	s.down = false;
	/* a new password is a miss, checked against the database, and
	 * replaces the entry: the old one goes to the database and fails */
	stub_set_password(&s, "a new pass phrase");
	assert_int_equal(login(&s, "ann@example.test", "a new pass phrase",
			       &n), 1);
	assert_int_equal(n, 1);
	assert_int_equal(login(&s, "ann@example.test", "right horse battery",
			       &n), 0);
	assert_int_equal(n, 1);
	/* a user the database no longer has loses the entry */
	stub_set_password(&s, NULL);
	assert_int_equal(login(&s, "ann@example.test", "nope", &n), 0);
	stub_set_password(&s, "a new pass phrase");
	assert_int_equal(login(&s, "ann@example.test", "a new pass phrase",
			       &n), 1);
	assert_int_equal(n, 1);
	/* not an address: no lookup, no entry */
	assert_int_equal(login(&s, "ann", "a new pass phrase", &n), 0);
	assert_int_equal(n, 0);
	free(s.hash);
}

static void
test_ttl_zero_always_asks(void **state)
{
	struct stub_db s = {.base.ops = &stub_ops};
	int n;

	(void)state;
	auth_cache_set_ttl(0);
	stub_set_password(&s, "zero ttl secret");
	for (int i = 0; i < 3; i++) {
		assert_int_equal(login(&s, "cy@example.test",
				       "zero ttl secret", &n), 1);
		assert_int_equal(n, 1);
	}
	s.down = true;
	assert_int_equal(login(&s, "cy@example.test", "zero ttl secret", &n),
			 -1);
	s.down = false;
	/* a password change is seen at once */
	stub_set_password(&s, "changed secret");
	assert_int_equal(login(&s, "cy@example.test", "zero ttl secret", &n),
			 0);
	assert_int_equal(login(&s, "cy@example.test", "changed secret", &n),
			 1);
	free(s.hash);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ttl_skips_the_lookup_of_a_confirmed_password),
	    cmocka_unit_test(test_ttl_zero_always_asks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
