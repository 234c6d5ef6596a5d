/*
 * Unit tests for mail/dmarc_record.c, the DMARC policy record parser
 * (RFC 7489 6.3, 6.4, and the p= rule of 6.6.3), from a table: a row per
 * record text with the return value and the fields it must give.
 */
#include <stdio.h>
#include <string.h>

#include "unit.h"

#include "mail/dmarc_record.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

#define U DMARC_P_UNSET
#define NO DMARC_P_NONE
#define Q DMARC_P_QUARANTINE
#define R DMARC_P_REJECT

static const struct row {
	const char *in;
	int rc;
	enum dmarc_policy p, sp;
	bool adkim_s, aspf_s;
	unsigned pct, ri;
	const char *rua, *ruf, *fo;
	const char *why;	/* rc -1: a word the reason must hold */
} rows[] = {
	/* the RFC 7489 examples (6.3, appendix B.2) */
	{ "v=DMARC1; p=none; rua=mailto:dmarc-feedback@example.com", 1, NO,
	  U, false, false, 100, 86400, "mailto:dmarc-feedback@example.com",
	  "", "0", NULL },
	{ "v=DMARC1; p=quarantine; rua=mailto:dmarc-feedback@example.com; "
	  "ruf=mailto:auth-reports@thirdparty.example.net; pct=25",
	  1, Q, U, false, false, 25, 86400,
	  "mailto:dmarc-feedback@example.com",
	  "mailto:auth-reports@thirdparty.example.net", "0", NULL },
	{ "v=DMARC1; p=reject; sp=none; adkim=s; aspf=s; pct=50; "
	  "ri=3600; fo=1:d; rf=afrf",
	  1, R, NO, true, true, 50, 3600, "", "", "1:d", NULL },
	/* the minimum, and the defaults */
	{ "v=DMARC1; p=reject", 1, R, U, false, false, 100, 86400, "", "",
	  "0", NULL },
	{ "v=DMARC1;p=reject;", 1, R, U, false, false, 100, 86400, "", "",
	  "0", NULL },
	/* blanks around ';' and '=', tabs, case of names and values */
	{ "v = DMARC1 ;\tp = Reject ;  SP=QUARANTINE; ADKIM=S ; aspf = R ",
	  1, R, Q, true, false, 100, 86400, "", "", "0", NULL },
	{ "V=DMARC1; P=none", 1, NO, U, false, false, 100, 86400, "", "",
	  "0", NULL },
	/* empty parts, unknown tags, parts that are not tags */
	{ "v=DMARC1;;; p=quarantine;; x-foo=bar; np=reject; t=y; junk;",
	  1, Q, U, false, false, 100, 86400, "", "", "0", NULL },
	/* the first of a repeated tag counts */
	{ "v=DMARC1; p=none; p=reject", 1, NO, U, false, false, 100, 86400,
	  "", "", "0", NULL },
	/* pct: 0..100 integers only; anything else is ignored (100) */
	{ "v=DMARC1; p=reject; pct=0", 1, R, U, false, false, 0, 86400, "",
	  "", "0", NULL },
	{ "v=DMARC1; p=reject; pct=100", 1, R, U, false, false, 100, 86400,
	  "", "", "0", NULL },
	{ "v=DMARC1; p=reject; pct=101", 1, R, U, false, false, 100, 86400,
	  "", "", "0", NULL },
	{ "v=DMARC1; p=reject; pct=-1", 1, R, U, false, false, 100, 86400,
	  "", "", "0", NULL },
	{ "v=DMARC1; p=reject; pct=5.5", 1, R, U, false, false, 100, 86400,
	  "", "", "0", NULL },
	{ "v=DMARC1; p=reject; pct=", 1, R, U, false, false, 100, 86400, "",
	  "", "0", NULL },
	{ "v=DMARC1; p=reject; pct=0000000000050", 1, R, U, false, false,
	  100, 86400, "", "", "0", NULL },
	{ "v=DMARC1; p=reject; pct=007", 1, R, U, false, false, 7, 86400, "",
	  "", "0", NULL },
	{ "v=DMARC1; p=reject; fo = 1 : D:s", 1, R, U, false, false, 100,
	  86400, "", "", "1:d:s", NULL },
	{ "v=DMARC1; p=reject; fo=0:1:d:s:0:1:d:s:0", 1, R, U, false, false,
	  100, 86400, "", "", "0", NULL },
	/* other invalid optional values fall back to their defaults */
	{ "v=DMARC1; p=reject; adkim=x; aspf=strict; ri=soon; fo=2; rf=iodef",
	  1, R, U, false, false, 100, 86400, "", "", "0", NULL },
	{ "v=DMARC1; p=reject; ri=4294967295", 1, R, U, false, false, 100,
	  4294967295u, "", "", "0", NULL },
	{ "v=DMARC1; p=reject; ri=4294967296", 1, R, U, false, false, 100,
	  86400, "", "", "0", NULL },
	/* rua/ruf lists: kept as given, blanks around URIs dropped, size
	 * limits; items that are not valid URIs are left out */
	{ "v=DMARC1; p=none; rua=mailto:a@example.com!10m , "
	  "https://r.example.net/x",
	  1, NO, U, false, false, 100, 86400,
	  "mailto:a@example.com!10m,https://r.example.net/x", "", "0", NULL },
	{ "v=DMARC1; p=none; rua=mailto:a@example.com,bad uri", 1, NO, U,
	  false, false, 100, 86400, "mailto:a@example.com", "", "0", NULL },
	{ "v=DMARC1; p=none; rua=mailto:a@example.com!x", 1, NO, U, false,
	  false, 100, 86400, "", "", "0", NULL },
	{ "v=DMARC1; p=none; ruf=,:x,mailto:f@example.com,,1:y, ", 1, NO, U,
	  false, false, 100, 86400, "", "mailto:f@example.com", "0", NULL },
	/* p= missing or invalid: p=none when rua= has a valid URI (6.6.3) */
	{ "v=DMARC1; rua=mailto:r@example.com", 1, NO, U, false, false, 100,
	  86400, "mailto:r@example.com", "", "0", NULL },
	{ "v=DMARC1; p=bogus; rua=nope,mailto:r@example.com", 1, NO, U, false,
	  false, 100, 86400, "mailto:r@example.com", "", "0", NULL },
	{ "v=DMARC1; p=bogus; sp=reject; rua=mailto:r@example.com", 1, NO, U,
	  false, false, 100, 86400, "mailto:r@example.com", "", "0", NULL },
	{ "v=DMARC1; p=reject; sp=bogus; rua=mailto:r@example.com", 1, NO, U,
	  false, false, 100, 86400, "mailto:r@example.com", "", "0", NULL },
	{ "v=DMARC1", -1, U, U, false, false, 100, 86400, "", "", "0",
	  "no p=" },
	{ "v=DMARC1;", -1, U, U, false, false, 100, 86400, "", "", "0",
	  "no p=" },
	{ "v=DMARC1; p=bogus", -1, U, U, false, false, 100, 86400, "", "",
	  "0", "p=" },
	{ "v=DMARC1; p=", -1, U, U, false, false, 100, 86400, "", "", "0",
	  "p=" },
	{ "v=DMARC1; p=reject; sp=all", -1, R, U, false, false, 100, 86400,
	  "", "", "0", "sp=" },
	{ "v=DMARC1; p=reject; rua=nope", 1, R, U, false, false, 100, 86400,
	  "", "", "0", NULL },
	{ "v=DMARC1; sp=reject; rua=bad", -1, U, R, false, false, 100, 86400,
	  "", "", "0", "no p=" },
	/* a missing ';' after the version */
	{ "v=DMARC1 p=reject", -1, U, U, false, false, 100, 86400, "", "",
	  "0", "';'" },
	/* not DMARC records at all: ignored like any TXT record */
	{ "", 0 },
	{ "v=spf1 -all", 0 },
	{ "p=reject; v=DMARC1", 0 },
	{ "v=DMARC2; p=reject", 0 },
	{ "v=DMARC10; p=reject", 0 },
	{ "v=dmarc1; p=reject", 0 },		/* 6.3: "match precisely" */
	{ "v=DMARC; p=reject", 0 },
	{ "v:DMARC1; p=reject", 0 },
	{ " x v=DMARC1; p=reject", 0 },
	{ "google-site-verification=abc", 0 },
};

static void
check_row(const struct row *r, const char *in, size_t len)
{
	struct dmarc_record rec;
	char why[128];
	int rc;

	memset(&rec, 0x5a, sizeof(rec));
	rc = dmarc_record_parse(in, len, &rec, why, sizeof(why));
	if (rc != r->rc)
		fail_msg("\"%s\": rc %d, wanted %d (%s)", r->in, rc, r->rc, why);
	if (rc == 1) {
		assert_int_equal(rec.p, r->p);
		assert_int_equal(rec.sp, r->sp);
		assert_int_equal(rec.adkim_strict, r->adkim_s);
		assert_int_equal(rec.aspf_strict, r->aspf_s);
		assert_int_equal(rec.pct, r->pct);
		assert_int_equal(rec.ri, r->ri);
		assert_string_equal(rec.rua, r->rua);
		assert_string_equal(rec.ruf, r->ruf);
		assert_string_equal(rec.fo, r->fo);
	} else if (rc == -1) {
		assert_true(why[0] != '\0');
		if (r->why != NULL && strstr(why, r->why) == NULL)
			fail_msg("\"%s\": reason \"%s\" lacks \"%s\"", r->in,
				 why, r->why);
	}
}

static void
test_table(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < N(rows); i++)
		check_row(&rows[i], rows[i].in, strlen(rows[i].in));
}

/* The text is bytes with a length: nothing is read past it, and a NUL
 * inside a DMARC record makes it invalid. */
static void
test_lengths(void **state)
{
	static const char txt[] = "v=DMARC1; p=reject; sp=none";
	struct dmarc_record rec;
	char why[64];

	(void)state;
	assert_int_equal(dmarc_record_parse(txt, 18, &rec, why, sizeof(why)),
			 1);
	assert_int_equal(rec.p, DMARC_P_REJECT);
	assert_int_equal(rec.sp, DMARC_P_UNSET);
	/* "v=DMARC1; p=rejec" */
	assert_int_equal(dmarc_record_parse(txt, 17, &rec, why, sizeof(why)),
			 -1);
	assert_int_equal(dmarc_record_parse("v=DMARC1; p=reject\0; sp=none",
					    28, &rec, why, sizeof(why)),
			 -1);
	assert_non_null(strstr(why, "NUL"));
	assert_int_equal(dmarc_record_parse("v=spf1\0", 7, &rec, why,
					    sizeof(why)),
			 0);
	/* a reason buffer of any size, even none */
	assert_int_equal(dmarc_record_parse("v=DMARC1", 8, &rec, why, 4), -1);
	assert_int_equal(strlen(why), 3);
	assert_int_equal(dmarc_record_parse("v=DMARC1", 8, &rec, NULL, 0), -1);
}

/* rua= longer than the field keeps the whole URIs that fit, in order. */
static void
test_long_rua(void **state)
{
	char txt[4096], want[DMARC_URI_MAX];
	struct dmarc_record rec;
	size_t n = 0, w = 0;
	int i;

	(void)state;
	n = (size_t)snprintf(txt, sizeof(txt), "v=DMARC1; p=none; rua=");
	for (i = 0; i < 40; i++) {
		char uri[64];
		int len = snprintf(uri, sizeof(uri), "mailto:r%02d@%s.example",
				   i, "reports-reports-reports");

		n += (size_t)snprintf(txt + n, sizeof(txt) - n, "%s%s",
				      i ? "," : "", uri);
		if (w + (w > 0) + (size_t)len < sizeof(want))
			w += (size_t)snprintf(want + w, sizeof(want) - w,
					      "%s%s", w ? "," : "", uri);
	}
	assert_int_equal(dmarc_record_parse(txt, n, &rec, NULL, 0), 1);
	assert_string_equal(rec.rua, want);
	assert_true(strlen(rec.rua) < DMARC_URI_MAX);
	assert_true(strlen(rec.rua) > DMARC_URI_MAX - 64);
}

static void
test_policy_names(void **state)
{
	(void)state;
	assert_string_equal(dmarc_policy_name(DMARC_P_UNSET), "");
	assert_string_equal(dmarc_policy_name(DMARC_P_NONE), "none");
	assert_string_equal(dmarc_policy_name(DMARC_P_QUARANTINE),
			    "quarantine");
	assert_string_equal(dmarc_policy_name(DMARC_P_REJECT), "reject");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_lengths),
		cmocka_unit_test(test_long_rua),
		cmocka_unit_test(test_policy_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
