/* Tests for IMAP sequence sets (mail/imap_seq.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "lib/strbuf.h"
#include "mail/imap_seq.h"

#define STAR IMAP_SEQ_STAR

static void
test_parse(void **state)
{
	static const struct {
		const char *in;
		int ret;
		size_t n;
		struct imap_seq_range r[3];
	} cases[] = {
	    {"1", 0, 1, {{1, 1}}},
	    {"1:4", 0, 1, {{1, 4}}},
	    {"4:1", 0, 1, {{1, 4}}},
	    {"1:*", 0, 1, {{1, STAR}}},
	    {"*:3", 0, 1, {{3, STAR}}},
	    {"*", 0, 1, {{STAR, STAR}}},
	    {"1,3:5,9:*", 0, 3, {{1, 1}, {3, 5}, {9, STAR}}},
	    {"4294967294", 0, 1, {{4294967294u, 4294967294u}}},
	    {"4294967295", -1, 0, {{0, 0}}},
	    {"99999999999999999999", -1, 0, {{0, 0}}},
	    {"0", -1, 0, {{0, 0}}},
	    {"01", -1, 0, {{0, 0}}},
	    {"1:0", -1, 0, {{0, 0}}},
	    {"", -1, 0, {{0, 0}}},
	    {",1", -1, 0, {{0, 0}}},
	    {"1,", -1, 0, {{0, 0}}},
	    {"1::2", -1, 0, {{0, 0}}},
	    {"1:2:3", -1, 0, {{0, 0}}},
	    {"$", -1, 0, {{0, 0}}},
	    {"1 2", -1, 0, {{0, 0}}},
	    {"-1", -1, 0, {{0, 0}}},
	    {"1,2,3,4", -1, 0, {{0, 0}}},	/* more than 3 ranges */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct imap_seqset set;
		int r = imap_seqset_parse(cases[i].in, strlen(cases[i].in), 3,
					  &set);
		print_message("seq: '%s'\n", cases[i].in);
		assert_int_equal(r, cases[i].ret);
		assert_int_equal(set.n, cases[i].n);
		for (size_t k = 0; k < set.n; k++) {
			assert_int_equal(set.r[k].lo, cases[i].r[k].lo);
			assert_int_equal(set.r[k].hi, cases[i].r[k].hi);
		}
		imap_seqset_free(&set);
		assert_null(set.r);
	}
}

static void
test_contains(void **state)
{
	struct imap_seqset set;

	(void)state;
	assert_int_equal(imap_seqset_parse("2,5:7,10:*", 10, 8, &set), 0);
	assert_false(imap_seqset_contains(&set, 1, 20));
	assert_true(imap_seqset_contains(&set, 2, 20));
	assert_false(imap_seqset_contains(&set, 4, 20));
	assert_true(imap_seqset_contains(&set, 6, 20));
	assert_true(imap_seqset_contains(&set, 20, 20));
	assert_false(imap_seqset_contains(&set, 21, 20));
	/* "10:*" with 8 in use is 8:10 (RFC 9051 section 9) */
	assert_true(imap_seqset_contains(&set, 8, 8));
	assert_true(imap_seqset_contains(&set, 9, 8));
	imap_seqset_free(&set);
	assert_int_equal(imap_seqset_parse("*", 1, 8, &set), 0);
	assert_true(imap_seqset_contains(&set, 5, 5));
	assert_false(imap_seqset_contains(&set, 4, 5));
	/* an empty mailbox: '*' is 0, which no message has */
	assert_false(imap_seqset_contains(&set, 1, 0));
	imap_seqset_free(&set);
}

static void
test_format(void **state)
{
	static const uint32_t v1[] = {1, 2, 3, 7, 9, 10, 4294967294u};
	static const uint32_t v2[] = {5};
	struct strbuf b = {0};

	(void)state;
	imap_seqset_format(v1, 7, &b);
	assert_string_equal(b.s, "1:3,7,9:10,4294967294");
	strbuf_reset(&b);
	imap_seqset_format(v2, 1, &b);
	assert_string_equal(b.s, "5");
	strbuf_reset(&b);
	imap_seqset_format(v2, 0, &b);
	assert_true(b.len == 0);
	strbuf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_contains),
		cmocka_unit_test(test_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
