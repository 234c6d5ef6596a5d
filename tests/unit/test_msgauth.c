/*
 * One message's checks composed (msgauth/msgauth.c), without DNS: the
 * header split into fields however the content is chunked, the From
 * domain found (folded, several fields, several addresses), and what
 * DMARC makes of a From field it cannot evaluate (RFC 7489 6.6.1: no
 * From is none; several domains or no usable address is permerror).
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "unit.h"
#include "msgauth/msgauth.h"

static const struct {
	const char *msg;
	enum msgauth_from from;
	const char *domain;
	enum dmarc_result dmarc;	/* with DMARC on (no lookup made) */
	const char *ar_dmarc;		/* in the A-R field */
} cases[] = {
	{"From: A <a@Example.TEST>\nSubject: s\n\nbody\n", MSGAUTH_FROM_ONE,
	 "example.test", DMARC_NONE, NULL},
	{"Subject: s\nFrom: \"x\" <a@\n  x.test>\n\nFrom: b@y.test\n",
	 MSGAUTH_FROM_ONE, "x.test", DMARC_NONE, NULL},
	{"From: a@x.test\nFrom: b@X.test\n\n", MSGAUTH_FROM_ONE, "x.test",
	 DMARC_NONE, NULL},
	{"From: a@x.test, b@y.test\n\n", MSGAUTH_FROM_MIXED, "x.test",
	 DMARC_PERMERROR, "dmarc=permerror (From addresses in several domains)"},
	{"From: a@x.test\nFrom: b@y.test\n\n", MSGAUTH_FROM_MIXED, "x.test",
	 DMARC_PERMERROR, "dmarc=permerror (From addresses in several domains)"},
	{"Subject: no from\n\nFrom: a@x.test\n", MSGAUTH_FROM_NONE, "",
	 DMARC_NONE, "dmarc=none (no From field)\n"},
	{"From: not an address\n\n", MSGAUTH_FROM_BAD, "", DMARC_PERMERROR,
	 "dmarc=permerror (From field without a usable address)"},
	{"From: undisclosed:;\n\n", MSGAUTH_FROM_BAD, "", DMARC_PERMERROR,
	 NULL},
	/* all header, no empty line, no final LF */
	{"From: a@z.test", MSGAUTH_FROM_ONE, "z.test", DMARC_NONE, NULL},
};

static struct event_base *base;

static void
done(struct msgauth *m, void *arg)
{
	(void)m;
	*(int *)arg += 1;
	event_base_loopbreak(base);
}

static void
run_case(size_t i, size_t step, bool dmarc)
{
	struct msgauth_config cf = {.authserv_id = "mx.example.test",
				    .hostname = "mx.example.test",
				    .timeout_ms = 1000,
				    .dmarc = dmarc};
	const char *msg = cases[i].msg;
	size_t n = strlen(msg);
	int called = 0;
	struct msgauth *m;
	const struct msgauth_results *r;

	base = event_base_new();
	m = msgauth_new(base, NULL, &cf, "192.0.2.1", "h");
	msgauth_mail(m, "a@x.test");
	for (size_t o = 0; o < n; o += step)
		msgauth_feed(m, msg + o, n - o < step ? n - o : step);
	msgauth_finish(m, done, &called);
	assert_int_equal(called, 0);	/* never from inside finish */
	event_base_dispatch(base);
	assert_int_equal(called, 1);
	r = msgauth_results(m);
	if (r->from != cases[i].from)
		fail_msg("case %zu step %zu: from %d", i, step, r->from);
	if (r->from != MSGAUTH_FROM_NONE && r->from != MSGAUTH_FROM_BAD)
		assert_string_equal(r->from_domain, cases[i].domain);
	assert_false(r->spf_done);
	assert_int_equal(r->dmarc_done, dmarc);
	if (dmarc && cases[i].from != MSGAUTH_FROM_ONE) {
		char *ar = msgauth_ar_header(m, NULL, "192.0.2.1");
		assert_int_equal(r->dmarc.result, cases[i].dmarc);
		if (cases[i].ar_dmarc != NULL &&
		    strstr(ar, cases[i].ar_dmarc) == NULL)
			fail_msg("case %zu: %s", i, ar);
		free(ar);
	}
	msgauth_free(&m);
	assert_null(m);
	event_base_free(base);
}

static void
test_from_domain(void **state)
{
	static const size_t steps[] = {1, 2, 5, 4096};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++)
			run_case(i, steps[s], false);
	/* DMARC on: only cases that need no lookup */
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (cases[i].from != MSGAUTH_FROM_ONE)
			run_case(i, 3, true);
}

/* Freed before the end: nothing is called, nothing leaks. */
static void
test_free_while_pending(void **state)
{
	struct msgauth_config cf = {.authserv_id = "a", .hostname = "a",
				    .timeout_ms = 1000};
	struct msgauth *m;
	int called = 0;

	(void)state;
	base = event_base_new();
	m = msgauth_new(base, NULL, &cf, "192.0.2.1", "h");
	msgauth_feed(m, "From: a@x.test\n\nb\n", 18);
	msgauth_finish(m, done, &called);
	msgauth_free(&m);
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(called, 0);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_from_domain),
		cmocka_unit_test(test_free_while_pending),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
