/*
 * The filter of forged Authentication-Results fields (mail/ar_filter):
 * which fields go, which stay, the body untouched, the counts of what
 * was removed right, and the same output however the input is split.
 */
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "mail/ar_filter.h"
#include "lib/xalloc.h"

#define ID "mx.example.test"

static const struct {
	const char *in;
	const char *out;
} cases[] = {
	/* ours goes, with its continuation lines */
	{"Authentication-Results: mx.example.test; spf=pass\n"
	 "\tsmtp.mailfrom=a.test\nSubject: s\n\nbody\n",
	 "Subject: s\n\nbody\n"},
	/* any case, obsolete blank before the colon, comments, version */
	{"authentication-results : (c) MX.Example.TEST 1; none\nA: 1\n\nb\n",
	 "A: 1\n\nb\n"},
	{"AUTHENTICATION-RESULTS:\t(x (y) \\) z)mx.example.test;\n\nb\n",
	 "\nb\n"},
	/* quoted */
	{"Authentication-Results: \"mx.example.test\"; none\n\nb\n", "\nb\n"},
	/* another authserv-id stays */
	{"Authentication-Results: other.test; spf=pass\n\tx=y\n\nb\n",
	 "Authentication-Results: other.test; spf=pass\n\tx=y\n\nb\n"},
	/* a longer id that starts like ours stays */
	{"Authentication-Results: mx.example.test.evil; none\n\nb\n",
	 "Authentication-Results: mx.example.test.evil; none\n\nb\n"},
	/* the id folded onto the next line: not readable, removed */
	{"Authentication-Results:\n\tmx.example.test; none\nX: y\n\nb\n",
	 "X: y\n\nb\n"},
	/* malformed ids are removed */
	{"Authentication-Results: ;spf=pass\n\nb\n", "\nb\n"},
	{"Authentication-Results: \"unterminated\n\nb\n", "\nb\n"},
	{"Authentication-Results: a/b; none\n\nb\n", "\nb\n"},
	/* id at the end of the line, then folded: readable */
	{"Authentication-Results: mx.example.test\n\t; none\n\nb\n", "\nb\n"},
	{"Authentication-Results: other.test\n\t; none\n\nb\n",
	 "Authentication-Results: other.test\n\t; none\n\nb\n"},
	/* other fields, and lookalike names, pass */
	{"Authentication-Results-X: mx.example.test\nX-Authentication-Results:"
	 " mx.example.test\n\nb\n",
	 "Authentication-Results-X: mx.example.test\nX-Authentication-Results:"
	 " mx.example.test\n\nb\n"},
	/* godwit's own fields, forged: removed, folded lines too, any case */
	{"X-Godwit-Virus-Scan: clean (clamd)\nx-godwit-dnsbl: allowed\n\tby z\n"
	 "X-Godwit: 1\nX-GodwitX: 2\n\nX-Godwit-Quarantine: body\n",
	 "X-Godwit: 1\nX-GodwitX: 2\n\nX-Godwit-Quarantine: body\n"},
	/* in the body nothing is touched */
	{"S: 1\n\nAuthentication-Results: mx.example.test; none\n",
	 "S: 1\n\nAuthentication-Results: mx.example.test; none\n"},
	/* several: each ours goes, others stay, in order */
	{"Authentication-Results: mx.example.test; a\nB: 1\n"
	 "Authentication-Results: o.test; b\n"
	 "Authentication-Results: mx.example.test; c\n d\nE: 2\n\nb\n",
	 "B: 1\nAuthentication-Results: o.test; b\nE: 2\n\nb\n"},
	/* a message that is all header, without a final LF */
	{"Authentication-Results: mx.example.test; none", ""},
	{"Authentication-Results: o.test; none", "Authentication-Results: "
						 "o.test; none"},
	{"", ""},
};

static char *
run(const char *in, size_t step, struct ar_filter *f, size_t *len_r)
{
	size_t n = strlen(in), o = 0;
	char *out = xmalloc(n + AR_FILTER_HOLD + 1);

	ar_filter_init(f, ID);
	for (size_t i = 0; i < n; i += step) {
		size_t k = n - i < step ? n - i : step;
		char *buf = xmalloc(k + AR_FILTER_HOLD);
		size_t got = ar_filter_feed(f, in + i, k, buf);
		memcpy(out + o, buf, got);
		o += got;
		free(buf);
	}
	o += ar_filter_finish(f, out + o);
	out[o] = '\0';
	*len_r = o;
	return out;
}

static void
test_cases(void **state)
{
	static const size_t steps[] = {1, 2, 3, 7, 64, 100000};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
			struct ar_filter f;
			size_t len, lf_in = 0, lf_out = 0;
			char *out = run(cases[i].in, steps[s], &f, &len);

			if (strcmp(out, cases[i].out) != 0)
				fail_msg("case %zu step %zu: got [%s]", i,
					 steps[s], out);
			assert_int_equal(len + f.dropped_octets,
					 strlen(cases[i].in));
			for (const char *p = cases[i].in; *p; p++)
				lf_in += *p == '\n';
			for (const char *p = out; *p; p++)
				lf_out += *p == '\n';
			assert_int_equal(lf_out + f.dropped_lines, lf_in);
			free(out);
		}
	}
}

/* head, pad octets of c, tail: a line longer than the hold */
static char *
long_line(const char *head, char c, size_t pad, const char *tail)
{
	size_t h = strlen(head), t = strlen(tail);
	char *s = xmalloc(h + pad + t + 1);

	memcpy(s, head, h);
	memset(s + h, c, pad);
	memcpy(s + h + pad, tail, t + 1);
	return s;
}

/* A first line longer than the hold: decided on what is held. */
static void
test_long_lines(void **state)
{
	struct ar_filter f;
	size_t len, pad = AR_FILTER_HOLD * 3;
	char *in, *out;

	(void)state;
	/* ours, with a long comment after the id: removed */
	in = long_line("Authentication-Results: mx.example.test; spf=pass (",
		       'x', pad, ")\nA: b\n\nbody\n");
	out = run(in, 5, &f, &len);
	assert_string_equal(out, "A: b\n\nbody\n");
	assert_int_equal(f.dropped_fields, 1);
	free(out);
	free(in);
	/* the id itself cut off by the hold: removed (conservative) */
	in = long_line("Authentication-Results: ", 'y', pad,
		       "; none\n\nbody\n");
	out = run(in, 100, &f, &len);
	assert_string_equal(out, "\nbody\n");
	free(out);
	free(in);
	/* another field's long line passes whole */
	in = long_line("X-Long: ", 'z', pad, "\n\nbody\n");
	out = run(in, 33, &f, &len);
	assert_string_equal(out, in);
	free(out);
	free(in);
}

static void
test_authserv_id(void **state)
{
	char id[64];
	(void)state;

	assert_int_equal(ar_field_authserv_id("Subject: x\n", 11, true, id,
					      sizeof(id)),
			 0);
	assert_int_equal(ar_field_authserv_id("Authentication-Results: "
					      "a.b 1; none\n",
					      37, true, id, sizeof(id)),
			 1);
	assert_string_equal(id, "a.b");
	/* cut off in the id: not whole */
	assert_int_equal(ar_field_authserv_id("Authentication-Results: a.b",
					      27, false, id, sizeof(id)),
			 -1);
	/* too long for id */
	assert_int_equal(ar_field_authserv_id("Authentication-Results: "
					      "abcdefgh;\n",
					      34, true, id, 4),
			 -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_authserv_id),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
