/*
 * Tests for the SPF engine's life cycle (msgauth/spf.c) that the RFC 7208
 * suite cannot reach: the whole-check timer against a name server that
 * never answers (a UDP socket of the test's own that nobody reads), the
 * callback never running inside spf_check_start(), cancelling, and the
 * outcomes decided before any lookup. Verdicts themselves are tested
 * through `godwit check` (tests/integration/test_spf_suite.py).
 */
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "unit.h"

#include "msgauth/spf.h"
#include "net/dns.h"

struct got {
	struct event_base *base;
	int calls;
	bool inside;
	struct spf_outcome o;
};

static void
done_cb(const struct spf_outcome *o, void *arg)
{
	struct got *g = arg;

	g->calls++;
	g->o = *o;
	event_base_loopbreak(g->base);
}

/* A UDP socket on loopback that never answers; its port in *port_r. */
static int
silent_server(unsigned *port_r)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	assert_true(fd >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port_r = ntohs(sin.sin_port);
	return fd;
}

static struct dns_resolver *
silent_resolver(struct event_base *base, int *fd_r)
{
	static char fwd[64];
	static const char *fwds[] = { fwd };
	struct dns_resolver_config cfg = { .mode = "system",
					   .forwarders = fwds,
					   .nforwarders = 1 };
	struct dns_resolver *r;
	unsigned port;
	char *err = NULL;

	*fd_r = silent_server(&port);
	snprintf(fwd, sizeof(fwd), "127.0.0.1@%u", port);
	r = dns_resolver_new(base, &cfg, &err);
	if (r == NULL)
		fail_msg("dns_resolver_new: %s", err);
	return r;
}

static void
run_loop(struct got *g)
{
	struct timeval tv = { 10, 0 };

	/* a bound on the test itself: 10 s */
	event_base_loopexit(g->base, &tv);
	assert_int_equal(event_base_dispatch(g->base), 0);
}

static void
test_timeout(void **state)
{
	struct spf_request req = { .ip = "192.0.2.1", .helo = "h.example.org",
				   .mail_from = "a@example.org",
				   .receiver = "mx.example.net",
				   .timeout_ms = 300 };
	struct got g = { .base = event_base_new() };
	struct timeval tv;
	struct dns_resolver *r;
	int fd;

	(void)state;
	r = silent_resolver(g.base, &fd);
	assert_non_null(spf_check_start(r, &req, done_cb, &g));
	assert_int_equal(g.calls, 0);
	run_loop(&g);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.o.result, SPF_TEMPERROR);
	assert_string_equal(spf_result_name(g.o.result), "temperror");
	assert_string_equal(g.o.reason, "the SPF check timed out");
	assert_string_equal(g.o.identity, "mailfrom");
	assert_string_equal(g.o.domain, "example.org");
	assert_string_equal(g.o.mechanism, "");
	/* the lookup that was out is gone: nothing comes back later */
	tv.tv_usec = 0;
	tv.tv_sec = 2;
	event_base_loopexit(g.base, &tv);
	assert_int_equal(event_base_dispatch(g.base), 0);
	assert_int_equal(g.calls, 1);
	dns_resolver_free(&r);
	event_base_free(g.base);
	close(fd);
}

/* Cancelled: never called back, even when the timer would have fired. */
static void
test_cancel(void **state)
{
	struct spf_request req = { .ip = "2001:db8::1", .helo = "h.example.org",
				   .mail_from = "a@example.org",
				   .timeout_ms = 100 };
	struct got g = { .base = event_base_new() };
	struct timeval tv = { 0, 400000 };
	struct dns_resolver *r;
	struct spf_check *c;
	int fd;

	(void)state;
	r = silent_resolver(g.base, &fd);
	c = spf_check_start(r, &req, done_cb, &g);
	spf_check_cancel(c);
	spf_check_cancel(NULL);
	event_base_loopexit(g.base, &tv);
	assert_int_equal(event_base_dispatch(g.base), 0);
	assert_int_equal(g.calls, 0);
	dns_resolver_free(&r);
	event_base_free(g.base);
	close(fd);
}

/* Decided without DNS, yet still called back from the loop. */
static void
test_no_lookup(void **state)
{
	static const struct {
		const char *ip, *helo, *mail_from;
		enum spf_result result;
		const char *identity, *sender;
	} t[] = {
		{ "192.0.2.1", "[192.0.2.1]", "", SPF_NONE, "helo",
		  "postmaster@[192.0.2.1]" },
		{ "192.0.2.1", "localhost", "", SPF_NONE, "helo",
		  "postmaster@localhost" },
		{ "192.0.2.1", "h.example.org", "a@b..example.org", SPF_NONE,
		  "mailfrom", "a@b..example.org" },
		{ "192.0.2.1", "h.example.org", "@example", SPF_NONE,
		  "mailfrom", "postmaster@example" },
		{ "not-an-ip", "h.example.org", "a@example.org",
		  SPF_PERMERROR, "mailfrom", "a@example.org" },
	};
	struct got g = { .base = event_base_new() };
	struct spf_request req = { .timeout_ms = 1000 };
	struct dns_resolver *r;
	size_t i;
	int fd;

	(void)state;
	r = silent_resolver(g.base, &fd);
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		g.calls = 0;
		req.ip = t[i].ip;
		req.helo = t[i].helo;
		req.mail_from = t[i].mail_from;
		assert_non_null(spf_check_start(r, &req, done_cb, &g));
		assert_int_equal(g.calls, 0);
		run_loop(&g);
		assert_int_equal(g.calls, 1);
		if (g.o.result != t[i].result)
			fail_msg("row %zu: %s", i,
				 spf_result_name(g.o.result));
		assert_string_equal(g.o.identity, t[i].identity);
		assert_string_equal(g.o.sender, t[i].sender);
		assert_true(g.o.reason[0] != '\0');
	}
	dns_resolver_free(&r);
	event_base_free(g.base);
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_timeout),
	    cmocka_unit_test(test_cancel),
	    cmocka_unit_test(test_no_lookup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
