/*
 * Tests for the growable string (src/lib/strbuf.c): appends keep every
 * byte and the NUL after them across many doublings, embedded NULs are
 * kept, printf-style appends are sized exactly (also past the first
 * allocation), reset keeps the allocation, steal hands over the string
 * and empties the buffer, and an empty buffer steals as "".
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "lib/strbuf.h"

static void
test_add_grows(void **state)
{
	struct strbuf b = {0};
	char want[16];

	(void)state;
	assert_null(b.s);
	for (int i = 0; i < 10000; i++) {
		snprintf(want, sizeof(want), "%04d", i % 10000);
		strbuf_add(&b, want, 4);
		assert_int_equal(b.len, (size_t)(i + 1) * 4);
		assert_true(b.cap > b.len);
		assert_int_equal(b.s[b.len], '\0');
	}
	for (int i = 0; i < 10000; i += 997) {
		snprintf(want, sizeof(want), "%04d", i);
		assert_memory_equal(b.s + i * 4, want, 4);
	}
	strbuf_free(&b);
	assert_null(b.s);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
}

static void
test_str_c_and_nul(void **state)
{
	struct strbuf b = {0};

	(void)state;
	strbuf_addstr(&b, "ab");
	strbuf_addc(&b, '\0');
	strbuf_addc(&b, 'c');
	strbuf_add(&b, "ignored", 0);
	strbuf_addstr(&b, "");
	assert_int_equal(b.len, 4);
	assert_memory_equal(b.s, "ab\0c", 5);
	strbuf_free(&b);
}

static void
test_addf(void **state)
{
	struct strbuf b = {0};
	char big[300];

	(void)state;
	strbuf_addf(&b, "%s=%d;", "n", 42);
	assert_string_equal(b.s, "n=42;");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	/* longer than the first allocation: sized, not cut */
	strbuf_addf(&b, "[%s]%u", big, 7u);
	assert_int_equal(b.len, 5 + 1 + 299 + 1 + 1);
	assert_int_equal(b.s[5], '[');
	assert_int_equal(b.s[b.len - 2], ']');
	assert_int_equal(b.s[b.len - 1], '7');
	assert_int_equal(b.s[b.len], '\0');
	strbuf_addf(&b, "%s", "");
	assert_int_equal(b.len, 307);
	strbuf_free(&b);
}

static void
test_reset_and_steal(void **state)
{
	struct strbuf b = {0};
	size_t cap;
	char *s;

	(void)state;
	strbuf_reset(&b);		/* on an empty one: nothing to do */
	assert_null(b.s);
	strbuf_addstr(&b, "hello");
	cap = b.cap;
	strbuf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, cap);
	assert_string_equal(b.s, "");
	strbuf_addstr(&b, "world");
	s = strbuf_steal(&b);
	assert_string_equal(s, "world");
	assert_null(b.s);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	free(s);
	s = strbuf_steal(&b);		/* never NULL */
	assert_non_null(s);
	assert_string_equal(s, "");
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_grows),
		cmocka_unit_test(test_str_c_and_nul),
		cmocka_unit_test(test_addf),
		cmocka_unit_test(test_reset_and_steal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
