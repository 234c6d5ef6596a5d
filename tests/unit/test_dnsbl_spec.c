/*
 * Unit tests for mail/dnsbl_spec.c, the postscreen-style list specs, from
 * tables: a row per spec with what it parses to (or a word of the
 * error), and a row per (spec, answer) with whether the answer counts.
 * Also the RFC 5782 query names of filter/dnsbl.c and greylisting's
 * client networks.
 */
#include <stdio.h>
#include <string.h>

#include "unit.h"

#include "filter/dnsbl.h"
#include "filter/greylist.h"
#include "mail/dnsbl_spec.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct row {
	const char *in;
	const char *zone;	/* NULL: an error */
	int weight;
	bool any;
	const char *why;	/* error: a word of the reason */
} rows[] = {
	{"zen.spamhaus.org", "zen.spamhaus.org", 1, true, NULL},
	{"Zen.Spamhaus.ORG.", "zen.spamhaus.org", 1, true, NULL},
	{"zen.spamhaus.org=127.0.0.2", "zen.spamhaus.org", 1, false, NULL},
	{"zen.spamhaus.org=127.0.0.[2..11]", "zen.spamhaus.org", 1, false,
	 NULL},
	{"zen.spamhaus.org=127.0.0.[2..11]*3", "zen.spamhaus.org", 3, false,
	 NULL},
	{"list.dnswl.org=127.0.[0..255].[1;3;5]", "list.dnswl.org", 1, false,
	 NULL},
	{"list.dnswl.org=127.0.[0..255].[1..2;3]*-2", "list.dnswl.org", -2,
	 false, NULL},
	{"bl.example*0", "bl.example", 0, true, NULL},
	{"bl.example*+7", "bl.example", 7, true, NULL},
	{"bl.example*1000", "bl.example", 1000, true, NULL},
	{"bl.example*-1000", "bl.example", -1000, true, NULL},
	{"b_l.example", "b_l.example", 1, true, NULL},
	{"localhost", "localhost", 1, true, NULL},
	/* errors */
	{"", NULL, 0, false, "zone"},
	{".", NULL, 0, false, "zone"},
	{"=127.0.0.2", NULL, 0, false, "zone"},
	{"a..b", NULL, 0, false, "empty"},
	{".a.b", NULL, 0, false, "empty"},
	{"a.b..", NULL, 0, false, "empty"},
	{"-a.b", NULL, 0, false, "starts"},
	{"a-.b", NULL, 0, false, "ends"},
	{"a.b-", NULL, 0, false, "ends"},
	{"a b.example", NULL, 0, false, "domain"},
	{"bl.example=", NULL, 0, false, "number"},
	{"bl.example=127.0.0", NULL, 0, false, "quad"},
	{"bl.example=127.0.0.256", NULL, 0, false, "range"},
	{"bl.example=127.0.0.2.5", NULL, 0, false, "unexpected"},
	{"bl.example=127.0.0.[2..]", NULL, 0, false, "number"},
	{"bl.example=127.0.0.[5..2]", NULL, 0, false, "backwards"},
	{"bl.example=127.0.0.[2;", NULL, 0, false, "number"},
	{"bl.example=127.0.0.[2", NULL, 0, false, "';'"},
	{"bl.example=127.0.0.[2:3]", NULL, 0, false, "';'"},
	{"bl.example=127.0.0.[]", NULL, 0, false, "number"},
	{"bl.example=127.0.0.00002", NULL, 0, false, "long"},
	{"bl.example*", NULL, 0, false, "weight"},
	{"bl.example*1001", NULL, 0, false, "weight"},
	{"bl.example*--1", NULL, 0, false, "weight"},
	{"bl.example*2*3", NULL, 0, false, "unexpected"},
	{"bl.example*2=127.0.0.2", NULL, 0, false, "unexpected"},
};

static void
test_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(rows); i++) {
		const struct row *w = &rows[i];
		struct dnsbl_spec sp;
		const char *err = NULL;
		int rc = dnsbl_spec_parse(w->in, &sp, &err);

		if (w->zone == NULL) {
			if (rc != -1 || err == NULL ||
			    strstr(err, w->why) == NULL)
				fail_msg("'%s': want an error with '%s', got "
					 "%d '%s'",
					 w->in, w->why, rc,
					 err != NULL ? err : "");
			continue;
		}
		if (rc != 0)
			fail_msg("'%s': %s", w->in, err);
		assert_string_equal(sp.zone, w->zone);
		assert_int_equal(sp.weight, w->weight);
		assert_int_equal(sp.any, w->any);
	}
}

static void
test_long_zones(void **state)
{
	char zone[DNSBL_SPEC_MAX + 8];
	struct dnsbl_spec sp;
	const char *err;
	size_t n = 0;

	(void)state;
	/* labels of 63: as long as DNSBL_ZONE_MAX allows */
	while (n + 64 <= DNSBL_ZONE_MAX) {
		memset(zone + n, 'a', 63);
		zone[n + 63] = '.';
		n += 64;
	}
	memcpy(zone + n, "bl", 3);
	n += 2;
	assert_true(n <= DNSBL_ZONE_MAX);
	assert_int_equal(dnsbl_spec_parse(zone, &sp, &err), 0);
	/* one label of 64 */
	memset(zone, 'a', 64);
	memcpy(zone + 64, ".bl", 4);
	assert_int_equal(dnsbl_spec_parse(zone, &sp, &err), -1);
	assert_non_null(strstr(err, "63"));
	/* too long a zone, too long a spec */
	memset(zone, 'a', sizeof(zone) - 1);
	for (size_t i = 60; i < sizeof(zone) - 1; i += 61)
		zone[i] = '.';
	zone[sizeof(zone) - 1] = '\0';
	assert_int_equal(dnsbl_spec_parse(zone, &sp, &err), -1);
	zone[DNSBL_ZONE_MAX + 1] = '\0';
	assert_int_equal(dnsbl_spec_parse(zone, &sp, &err), -1);
	assert_non_null(strstr(err, "too long"));
}

static const struct mrow {
	const char *spec;
	unsigned char a[4];
	bool counts;
} mrows[] = {
	{"bl.example", {127, 0, 0, 2}, true},
	{"bl.example", {127, 1, 2, 3}, true},
	{"bl.example", {10, 0, 0, 2}, false},	/* a lapsed zone's wildcard */
	{"bl.example", {127, 255, 255, 254}, false},
	{"bl.example", {127, 255, 255, 252}, false},
	{"bl.example", {127, 255, 254, 1}, true},
	{"bl.example=127.0.0.2", {127, 0, 0, 2}, true},
	{"bl.example=127.0.0.2", {127, 0, 0, 3}, false},
	{"bl.example=127.0.0.[2..11]", {127, 0, 0, 11}, true},
	{"bl.example=127.0.0.[2..11]", {127, 0, 0, 12}, false},
	{"bl.example=127.0.0.[2..11]", {127, 0, 0, 1}, false},
	{"bl.example=127.0.[0..255].[1;3;5]", {127, 0, 200, 3}, true},
	{"bl.example=127.0.[0..255].[1;3;5]", {127, 0, 200, 4}, false},
	{"bl.example=127.0.[0..255].[1;3;5]", {127, 1, 200, 3}, false},
	{"bl.example=127.255.255.[0..255]", {127, 255, 255, 2}, false},
	{"bl.example=10.0.0.[0..255]", {10, 0, 0, 2}, true},
};

static void
test_match(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(mrows); i++) {
		struct dnsbl_spec sp;
		const char *err;

		assert_int_equal(dnsbl_spec_parse(mrows[i].spec, &sp, &err), 0);
		if (dnsbl_spec_match(&sp, mrows[i].a) != mrows[i].counts)
			fail_msg("%s with %u.%u.%u.%u: want %d", mrows[i].spec,
				 mrows[i].a[0], mrows[i].a[1], mrows[i].a[2],
				 mrows[i].a[3], mrows[i].counts);
	}
}

static void
test_checks(void **state)
{
	(void)state;
	assert_null(dnsbl_spec_check("bl.example*-2"));
	assert_non_null(dnsbl_spec_check("bl..example"));
	assert_null(dnsbl_spec_check_allow("wl.example=127.0.[0..255].2"));
	assert_non_null(strstr(dnsbl_spec_check_allow("wl.example*2"),
			       "weight"));
	assert_non_null(dnsbl_spec_check_allow("wl..example"));
}

static void
test_query_names(void **state)
{
	char out[300];

	(void)state;
	assert_int_equal(dnsbl_query_name("127.0.0.2", "bl.test", out,
					  sizeof(out)), 0);
	assert_string_equal(out, "2.0.0.127.bl.test");
	assert_int_equal(dnsbl_query_name("192.0.2.99", "zen.spamhaus.org",
					  out, sizeof(out)), 0);
	assert_string_equal(out, "99.2.0.192.zen.spamhaus.org");
	/* RFC 5782 3.2's example */
	assert_int_equal(dnsbl_query_name("2001:db8:1:2:3:4:567:89ab",
					  "ugly.example.com", out,
					  sizeof(out)), 0);
	assert_string_equal(out, "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0."
				 "1.0.0.0.8.b.d.0.1.0.0.2.ugly.example.com");
	assert_int_equal(dnsbl_query_name("::ffff:192.0.2.99", "bl.test", out,
					  sizeof(out)), 0);
	assert_string_equal(out, "99.2.0.192.bl.test");
	assert_int_equal(dnsbl_query_name("::1", "bl.test", out, sizeof(out)),
			 0);
	assert_string_equal(out, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
				 "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.bl.test");
	assert_int_equal(dnsbl_query_name("not an ip", "bl.test", out,
					  sizeof(out)), -1);
	assert_int_equal(dnsbl_query_name("127.0.0.2", "bl.test", out, 10),
			 -1);
}

static void
test_client_nets(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(greylist_client_net("192.0.2.77", out, sizeof(out)),
			 0);
	assert_string_equal(out, "192.0.2.0/24");
	assert_int_equal(greylist_client_net("::ffff:192.0.2.77", out,
					     sizeof(out)), 0);
	assert_string_equal(out, "192.0.2.0/24");
	assert_int_equal(greylist_client_net("2001:db8:1:2:3:4:5:6", out,
					     sizeof(out)), 0);
	assert_string_equal(out, "2001:db8:1:2::/64");
	assert_int_equal(greylist_client_net("::1", out, sizeof(out)), 0);
	assert_string_equal(out, "::/64");
	assert_int_equal(greylist_client_net("bogus", out, sizeof(out)), -1);
	assert_int_equal(greylist_client_net("192.0.2.77", out, 8), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_long_zones),
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_checks),
		cmocka_unit_test(test_query_names),
		cmocka_unit_test(test_client_nets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
