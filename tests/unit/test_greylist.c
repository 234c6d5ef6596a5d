/*
 * Unit tests for filter/greylist.c, greylisting's SQLite state, with the
 * clock given by the test: first sight, the delay, the window, expiry,
 * auto-allow and the row cap; two handles on one file (two workers).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"

#include "filter/greylist.h"

#define NET "192.0.2.0/24"
#define T0 1000000

static char dir[64];
static char path[128];

static struct greylist_config cf = {
	.enabled = true,
	.delay = 300,
	.window = 3600,
	.expire = 86400,
	.auto_allow = 2,
	.max_entries = 100,
};

static struct greylist *
open_db(void)
{
	char *err = NULL;
	struct greylist *g = greylist_open(path, &cf, &err);

	if (g == NULL)
		fail_msg("greylist_open: %s", err);
	return g;
}

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_greylist.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/greylist.sqlite", dir);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static enum greylist_verdict
check(struct greylist *g, const char *net, const char *from, time_t now,
      uint64_t *wait)
{
	uint64_t w;

	return greylist_check(g, net, from, "alice@example.test", now,
			      wait != NULL ? wait : &w);
}

static void
test_delay_and_window(void **state)
{
	struct greylist *g = open_db();
	uint64_t wait;

	(void)state;
	assert_int_equal(check(g, NET, "a@x.test", T0, &wait), GREYLIST_WAIT);
	assert_int_equal(wait, 300);
	assert_int_equal(check(g, NET, "a@x.test", T0 + 100, &wait),
			 GREYLIST_WAIT);
	assert_int_equal(wait, 200);
	/* another sender, recipient or network: another triplet */
	assert_int_equal(check(g, NET, "b@x.test", T0 + 300, NULL),
			 GREYLIST_WAIT);
	assert_int_equal(check(g, "198.51.100.0/24", "a@x.test", T0 + 300,
			       NULL),
			 GREYLIST_WAIT);
	assert_int_equal(check(g, NET, "a@x.test", T0 + 300, NULL),
			 GREYLIST_PASS);
	/* passed: passes again, and keeps passing while used */
	assert_int_equal(check(g, NET, "a@x.test", T0 + 80000, NULL),
			 GREYLIST_PASS);
	assert_int_equal(check(g, NET, "a@x.test", T0 + 160000, NULL),
			 GREYLIST_PASS);
	/* unused for longer than expire: forgotten */
	assert_int_equal(check(g, NET, "a@x.test", T0 + 160000 + 86401, NULL),
			 GREYLIST_WAIT);
	/* b's retry after the window: a first sight again */
	assert_int_equal(check(g, NET, "b@x.test", T0 + 300 + 3601, &wait),
			 GREYLIST_WAIT);
	assert_int_equal(wait, 300);
	assert_int_equal(check(g, NET, "b@x.test", T0 + 300 + 3601 + 300,
			       NULL),
			 GREYLIST_PASS);
	greylist_close(&g);
	assert_null(g);
}

static void
test_auto_allow_shared(void **state)
{
	struct greylist *g1 = open_db(), *g2 = open_db();
	const char *net = "203.0.113.0/24";

	(void)state;
	/* one delivery (in one worker) is not enough */
	greylist_delivered(g1, net, T0);
	assert_int_equal(check(g2, net, "c@x.test", T0 + 1, NULL),
			 GREYLIST_WAIT);
	/* the second (in the other worker) is */
	greylist_delivered(g2, net, T0 + 2);
	assert_int_equal(check(g1, net, "d@x.test", T0 + 3, NULL),
			 GREYLIST_ALLOWED);
	/* kept while used, forgotten after expire */
	assert_int_equal(check(g1, net, "e@x.test", T0 + 80000, NULL),
			 GREYLIST_ALLOWED);
	assert_int_equal(check(g1, net, "f@x.test", T0 + 80000 + 86401, NULL),
			 GREYLIST_WAIT);
	greylist_close(&g1);
	greylist_close(&g2);
}

static void
test_cap(void **state)
{
	struct greylist *g = open_db();
	char from[64];

	(void)state;
	for (int i = 0; i < 150; i++) {
		snprintf(from, sizeof(from), "cap%d@x.test", i);
		assert_int_equal(check(g, "192.0.2.0/24", from, T0, NULL),
				 GREYLIST_WAIT);
	}
	/* the 50 oldest went: a first sight again; the newest pass */
	assert_int_equal(check(g, NET, "cap0@x.test", T0 + 300, NULL),
			 GREYLIST_WAIT);
	assert_int_equal(check(g, NET, "cap49@x.test", T0 + 300, NULL),
			 GREYLIST_WAIT);
	assert_int_equal(check(g, NET, "cap149@x.test", T0 + 300, NULL),
			 GREYLIST_PASS);
	assert_int_equal(check(g, NET, "cap60@x.test", T0 + 300, NULL),
			 GREYLIST_PASS);
	greylist_close(&g);
}

static void
test_open_fails(void **state)
{
	struct greylist_config c = cf;
	char *err = NULL;

	(void)state;
	assert_null(greylist_open("/nonexistent/dir/g.sqlite", &c, &err));
	assert_non_null(err);
	assert_non_null(strstr(err, "/nonexistent/dir/g.sqlite"));
	free(err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_delay_and_window, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_auto_allow_shared, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_cap, setup, teardown),
		cmocka_unit_test(test_open_fails),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
