/*
 * DMARC policy discovery (dmarc_lookup_start) against a real name
 * server. Skipped unless GODWIT_TEST_DNS_FORWARDER names one
 * ("127.0.0.1@PORT"): tests/integration/test_dmarc_lookup.py starts
 * unbound serving _dmarc records, sets it and GODWIT_TEST_DMARC_DOMAINS
 * (From domains, separated by spaces), runs this binary, and checks
 * what it prints: one JSON object per domain, in order, with what the
 * lookup found (written by the log encoder, so a reason or a URI cannot
 * break the line).
 *
 * Here: every callback comes once, from the event loop and never from
 * inside dmarc_lookup_start; a cancelled lookup never calls back; and
 * (run always, it needs no server) a lookup whose server does not
 * answer ends in temperror within its timeout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <event2/event.h>

#include "unit.h"

#include "lib/logfmt.h"
#include "msgauth/dmarc.h"
#include "net/dns.h"

#define DOMAINS_MAX 64

struct run {
	struct event_base *base;
	struct dns_resolver *r;
	bool starting; /* inside dmarc_lookup_start */
	int calls;
	int pending;
	struct dmarc_found found[DOMAINS_MAX];
	int idx;
};

struct slot {
	struct run *run;
	int i;
};

static void
found_cb(const struct dmarc_found *f, void *arg)
{
	struct slot *s = arg;

	assert_false(s->run->starting);
	s->run->found[s->i] = *f;
	s->run->calls++;
	if (--s->run->pending == 0)
		event_base_loopbreak(s->run->base);
}

static struct dns_resolver *
resolver(struct event_base *base, const char *fwd)
{
	const char *fwds[1] = {fwd};
	struct dns_resolver_config cfg = {.forwarders = fwds, .nforwarders = 1};
	struct dns_resolver *r;
	char *err = NULL;

	r = dns_resolver_new(base, &cfg, &err);
	if (r == NULL)
		fail_msg("resolver: %s", err);
	return r;
}

static void
print_found(const struct dmarc_found *f)
{
	bool rec = f->status == DMARC_PASS;
	char buf[4096], num[16];
	struct logfmt_out o = {buf, 0, sizeof(buf) - 1, false};
	const struct log_field fields[] = {
	    {"from", LOG_FIELD_STR, .v.s = f->from_domain},
	    {"status", LOG_FIELD_STR, .v.s = dmarc_result_name(f->status)},
	    {"policy_domain", LOG_FIELD_STR, .v.s = f->policy_domain},
	    {"org_domain", LOG_FIELD_STR, .v.s = f->org_domain},
	    {"at_org", LOG_FIELD_STR, .v.s = f->at_org ? "yes" : "no"},
	    {"p", LOG_FIELD_STR, .v.s = rec ? dmarc_policy_name(f->rec.p) : ""},
	    {"sp", LOG_FIELD_STR,
	     .v.s = rec ? dmarc_policy_name(f->rec.sp) : ""},
	    {"pct", LOG_FIELD_STR, .v.s = num},
	    {"adkim", LOG_FIELD_STR,
	     .v.s = rec ? (f->rec.adkim_strict ? "s" : "r") : ""},
	    {"aspf", LOG_FIELD_STR,
	     .v.s = rec ? (f->rec.aspf_strict ? "s" : "r") : ""},
	    {"rua", LOG_FIELD_STR, .v.s = rec ? f->rec.rua : ""},
	    {"reason", LOG_FIELD_STR, .v.s = f->reason},
	    {NULL},
	};

	snprintf(num, sizeof(num), "%u", rec ? f->rec.pct : 0);
	assert_true(logfmt_fields(&o, LOGFMT_JSON, fields));
	/* ",\"from\":..." -> "{\"from\":...}" */
	buf[0] = '{';
	printf("%.*s}\n", (int)o.len, buf);
}

/* Every domain of GODWIT_TEST_DMARC_DOMAINS at once, on one resolver. */
static void
test_lookups(void **state)
{
	const char *fwd = getenv("GODWIT_TEST_DNS_FORWARDER");
	const char *list = getenv("GODWIT_TEST_DMARC_DOMAINS");
	static struct run run;
	static struct slot slots[DOMAINS_MAX];
	char *copy, *tok, *save = NULL;
	int n = 0, i;

	(void)state;
	if (fwd == NULL || list == NULL)
		skip();
	memset(&run, 0, sizeof(run));
	run.base = event_base_new();
	run.r = resolver(run.base, fwd);
	copy = strdup(list);
	for (tok = strtok_r(copy, " ", &save); tok != NULL;
	     tok = strtok_r(NULL, " ", &save)) {
		assert_true(n < DOMAINS_MAX);
		slots[n] = (struct slot){&run, n};
		run.pending++;
		run.starting = true;
		assert_non_null(
		    dmarc_lookup_start(run.r, tok, 5000, found_cb, &slots[n]));
		run.starting = false;
		n++;
	}
	assert_int_equal(run.calls, 0);
	if (n > 0)
		event_base_dispatch(run.base);
	assert_int_equal(run.calls, n);
	for (i = 0; i < n; i++)
		print_found(&run.found[i]);
	fflush(stdout);
	free(copy);
	dns_resolver_free(&run.r);
	event_base_free(run.base);
}

static void
never_cb(const struct dmarc_found *f, void *arg)
{
	(void)f;
	(void)arg;
	fail_msg("a cancelled lookup called back");
}

static void
stop_loop(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

/* Cancelled lookups never call back, even once their answers are in. */
static void
test_cancel(void **state)
{
	const char *fwd = getenv("GODWIT_TEST_DNS_FORWARDER");
	struct event_base *base;
	struct dns_resolver *r;
	struct dmarc_lookup *l1, *l2;
	struct timeval tv = {0, 300000};

	(void)state;
	if (fwd == NULL)
		skip();
	base = event_base_new();
	r = resolver(base, fwd);
	l1 =
	    dmarc_lookup_start(r, "reject.example.co.uk", 5000, never_cb, NULL);
	l2 = dmarc_lookup_start(r, "x.y.example.co.uk", 5000, never_cb, NULL);
	dmarc_lookup_cancel(l1);
	dmarc_lookup_cancel(l2);
	dmarc_lookup_cancel(NULL);
	event_base_once(base, -1, EV_TIMEOUT, stop_loop, base, &tv);
	event_base_dispatch(base);
	dns_resolver_free(&r);
	event_base_free(base);
}

/* No server answers: temperror, within the timeout (needs no server, so
 * it runs in `make unit` too). */
static void
test_unreachable(void **state)
{
	static struct run run;
	static struct slot slot;
	struct timeval t0, t1;
	long ms;

	(void)state;
	memset(&run, 0, sizeof(run));
	run.base = event_base_new();
	run.r = resolver(run.base, "127.0.0.1@9");
	slot = (struct slot){&run, 0};
	run.pending = 1;
	gettimeofday(&t0, NULL);
	run.starting = true;
	(void)dmarc_lookup_start(run.r, "example.org", 1000, found_cb, &slot);
	run.starting = false;
	event_base_dispatch(run.base);
	gettimeofday(&t1, NULL);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_usec - t0.tv_usec) / 1000;
	assert_int_equal(run.calls, 1);
	assert_int_equal(run.found[0].status, DMARC_TEMPERROR);
	assert_string_equal(run.found[0].policy_domain, "example.org");
	assert_true(ms < 3000);
	dns_resolver_free(&run.r);
	event_base_free(run.base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lookups),
	    cmocka_unit_test(test_cancel),
	    cmocka_unit_test(test_unreachable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
