/*
 * The header cache's records (mail/imap_hcache.h): round trips, the
 * later record of a name winning, and a reader that skips garbage, bad
 * sums, impossible lengths and torn records without losing the valid
 * records around them.
 */
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "lib/strbuf.h"
#include "mail/imap_hcache.h"

static void
expect(const struct imap_hcache *c, const char *name, const char *hdr)
{
	const struct imap_hcache_ent *e = imap_hcache_find(c, name,
							   strlen(name));

	if (hdr == NULL) {
		assert_null(e);
		return;
	}
	assert_non_null(e);
	assert_int_equal(e->hlen, strlen(hdr));
	assert_memory_equal(e->hdr, hdr, e->hlen);
}

static void
test_round_trip(void **state)
{
	struct strbuf b = {0};
	struct imap_hcache c;

	(void)state;
	assert_true(imap_hcache_record(&b, "1.M1P1.h", 8, "Subject: a\r\n",
				       12));
	assert_true(imap_hcache_record(&b, "2.M2P1.h", 8, "", 0));
	assert_true(imap_hcache_record(&b, "1.M1P1.h", 8, "Subject: b\r\n",
				       12));
	assert_int_equal(b.len, 3 * IMAP_HCACHE_REC_HEAD + 24 + 24);
	imap_hcache_parse(b.s, b.len, &c);
	assert_int_equal(c.n, 2);
	expect(&c, "1.M1P1.h", "Subject: b\r\n");	/* the later one */
	expect(&c, "2.M2P1.h", "");
	expect(&c, "3.M3P1.h", NULL);
	expect(&c, "1.M1P1", NULL);
	assert_int_equal(c.garbage, IMAP_HCACHE_REC_HEAD + 8 + 12);
	imap_hcache_free(&c);
	imap_hcache_parse("", 0, &c);
	assert_int_equal(c.n, 0);
	imap_hcache_free(&c);
	strbuf_free(&b);
}

static void
test_refused_records(void **state)
{
	struct strbuf b = {0};
	char big[IMAP_HCACHE_HDR_MAX + 1];

	(void)state;
	memset(big, 'x', sizeof(big));
	assert_false(imap_hcache_record(&b, "", 0, "h", 1));
	assert_false(imap_hcache_record(&b, "a/b", 3, "h", 1));
	assert_false(imap_hcache_record(&b, "a:2,S", 5, "h", 1));
	assert_false(imap_hcache_record(&b, "a\0b", 3, "h", 1));
	assert_false(imap_hcache_record(&b, big, IMAP_HCACHE_NAME_MAX + 1,
					 "h", 1));
	assert_false(imap_hcache_record(&b, "a", 1, big, sizeof(big)));
	assert_int_equal(b.len, 0);
	assert_true(imap_hcache_record(&b, "a", 1, big, sizeof(big) - 1));
	strbuf_free(&b);
}

static void
test_corrupt(void **state)
{
	struct strbuf b = {0}, r = {0};
	struct imap_hcache c;

	(void)state;
	strbuf_add(&b, "garbage GWH GWH1", 16);
	assert_true(imap_hcache_record(&b, "good1", 5, "From: a\r\n", 9));
	/* a bad sum */
	assert_true(imap_hcache_record(&r, "bad", 3, "From: lie\r\n", 11));
	r.s[10] ^= 1;
	strbuf_add(&b, r.s, r.len);
	/* impossible lengths */
	strbuf_add(&b, "GWH1\xff\xff\xff\xff\xff\xff\0\0\0\0", 14);
	strbuf_add(&b, "GWH1\x05\0\x00\x00\x01\x00" "1234", 14);
	assert_true(imap_hcache_record(&b, "good2", 5, "To: b\r\n", 7));
	/* torn at the end */
	strbuf_reset(&r);
	assert_true(imap_hcache_record(&r, "torn", 4, "Subject: t\r\n",
				       12));
	strbuf_add(&b, r.s, r.len - 3);
	imap_hcache_parse(b.s, b.len, &c);
	assert_int_equal(c.n, 2);
	expect(&c, "good1", "From: a\r\n");
	expect(&c, "good2", "To: b\r\n");
	expect(&c, "bad", NULL);
	expect(&c, "torn", NULL);
	assert_true(c.garbage > 0);
	imap_hcache_free(&c);
	/* every prefix parses, finding only whole records */
	for (size_t n = 0; n <= b.len; n++) {
		imap_hcache_parse(b.s, n, &c);
		assert_true(c.n <= 2);
		imap_hcache_free(&c);
	}
	strbuf_free(&b);
	strbuf_free(&r);
}

static void
test_basename(void **state)
{
	size_t n;
	const char *b;

	(void)state;
	b = imap_hcache_basename("cur/123.M4P5.host,S=9,W=10:2,SF", &n);
	assert_int_equal(n, strlen("123.M4P5.host,S=9,W=10"));
	assert_memory_equal(b, "123.M4P5.host,S=9,W=10", n);
	b = imap_hcache_basename("new/123.M4P5.host", &n);
	assert_int_equal(n, strlen("123.M4P5.host"));
	assert_memory_equal(b, "123.M4P5.host", n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_refused_records),
		cmocka_unit_test(test_corrupt),
		cmocka_unit_test(test_basename),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
