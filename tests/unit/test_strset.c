/*
 * Tests for the string set (src/lib/strset.c) that collapses duplicate
 * recipients in an SMTP transaction: an equal string is found whatever
 * pointer it comes by, the set grows past its inline table and keeps
 * everything, and clearing empties it.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "lib/strset.h"

static void
test_add_once(void **state)
{
	struct strset set = {0};
	char a[] = "alice@example.test", b[] = "alice@example.test";

	(void)state;
	assert_false(strset_contains(&set, a));
	assert_true(strset_add(&set, a));
	/* another copy of the same text is the same member */
	assert_true(strset_contains(&set, b));
	assert_false(strset_add(&set, b));
	assert_false(strset_contains(&set, "bob@example.test"));
	assert_true(strset_add(&set, "bob@example.test"));
	assert_int_equal(set.n, 2);
	strset_clear(&set);
	assert_int_equal(set.n, 0);
	assert_false(strset_contains(&set, a));
}

/* Far past the inline table: every string stays, each exactly once. */
static void
test_grows(void **state)
{
	enum { N = 5000 };
	struct strset set = {0};
	char **v = calloc(N, sizeof(*v)), other[32];

	(void)state;
	for (int i = 0; i < N; i++) {
		v[i] = malloc(32);
		snprintf(v[i], 32, "user%d@example.test", i);
		assert_true(strset_add(&set, v[i]));
	}
	assert_int_equal(set.n, N);
	assert_true(set.cap >= N);
	for (int i = 0; i < N; i++) {
		snprintf(other, sizeof(other), "user%d@example.test", i);
		assert_true(strset_contains(&set, other));
		assert_false(strset_add(&set, other));
	}
	assert_false(strset_contains(&set, "user5000@example.test"));
	assert_int_equal(set.n, N);
	strset_clear(&set);
	for (int i = 0; i < N; i++)
		free(v[i]);
	free(v);
}

/* A cleared set is used again from its inline table. */
static void
test_clear_and_reuse(void **state)
{
	struct strset set = {0};

	(void)state;
	for (int round = 0; round < 2; round++) {
		assert_true(strset_add(&set, "a"));
		assert_true(strset_add(&set, ""));
		assert_false(strset_add(&set, ""));
		assert_ptr_equal(set.slots, set.inline_slots);
		strset_clear(&set);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_add_once),
	    cmocka_unit_test(test_grows),
	    cmocka_unit_test(test_clear_and_reuse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
