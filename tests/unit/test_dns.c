/*
 * Unit tests for dns.c: the pure parts (domain and literal parsing, MX
 * rdata parsing, MX ordering with a scripted shuffle, null MX detection)
 * from tables, and the parts of the asynchronous lookup that need no
 * name server: literals and invalid domains come back through the event
 * loop (never from inside dns_route_lookup), cancelled queries never call
 * back, and bad resolver configurations are refused. Real lookups are
 * tested against a real unbound in tests/integration/test_dns.py.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "unit.h"

#include "net/dns.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- dns_domain_parse ------------------------------------------------- */

static const struct {
	const char *in;
	int rc;
	const char *out;	/* name, or the literal's address text */
} domain_cases[] = {
	{ "example.org", 0, "example.org" },
	{ "Example.ORG.", 0, "example.org" },
	{ "a", 0, "a" },
	{ "xn--bcher-kva.example", 0, "xn--bcher-kva.example" },
	{ "_dmarc.example.org", 0, "_dmarc.example.org" },
	{ "1.2.3.4", 0, "1.2.3.4" },	/* a name, not special-cased */
	{ "a-b.c-d.e", 0, "a-b.c-d.e" },
	{ "[192.0.2.1]", 1, "192.0.2.1" },
	{ "[IPv6:2001:db8::1]", 1, "2001:db8::1" },
	{ "[ipv6:2001:DB8::1]", 1, "2001:db8::1" },
	{ "[IPv6:::ffff:192.0.2.1]", 1, "::ffff:192.0.2.1" },
	{ "", -1, NULL },
	{ ".", -1, NULL },
	{ "..", -1, NULL },
	{ "example.org..", -1, NULL },
	{ ".example.org", -1, NULL },
	{ "a..b", -1, NULL },
	{ "-a.b", -1, NULL },
	{ "a-.b", -1, NULL },
	{ "a b.c", -1, NULL },
	{ "a/b.c", -1, NULL },
	{ "b\xc3\xbc" "cher.example", -1, NULL },	/* U-label */
	{ "a\nb", -1, NULL },
	{ "[192.0.2.1", -1, NULL },
	{ "[]", -1, NULL },
	{ "[1.2.3]", -1, NULL },
	{ "[01.2.3.4]", -1, NULL },
	{ "[256.1.1.1]", -1, NULL },
	{ "[2001:db8::1]", -1, NULL },		/* v6 needs the tag */
	{ "[IPv6:192.0.2.1]", -1, NULL },
	{ "[IPv6:fe80::1%eth0]", -1, NULL },
	{ "[x:y]", -1, NULL },
	{ "[192.0.2.1] ", -1, NULL },
	{ "[IPv6:1111:2222:3333:4444:5555:6666:7777:8888:9999:0000:1111]",
	  -1, NULL },
};

static void
test_domain_parse(void **state)
{
	char name[DNS_NAME_MAX + 1], text[INET6_ADDRSTRLEN];
	struct sockaddr_storage ss;
	socklen_t len;
	size_t i;
	int rc;

	(void)state;
	for (i = 0; i < N(domain_cases); i++) {
		memset(name, 'X', sizeof(name));
		len = 0;
		rc = dns_domain_parse(domain_cases[i].in, name, sizeof(name),
				      &ss, &len);
		if (rc != domain_cases[i].rc)
			fail_msg("row %zu \"%s\": rc %d, want %d", i,
				 domain_cases[i].in, rc, domain_cases[i].rc);
		if (rc == 0)
			assert_string_equal(name, domain_cases[i].out);
		if (rc == 1) {
			const void *a;

			if (ss.ss_family == AF_INET) {
				assert_int_equal(len, sizeof(struct sockaddr_in));
				assert_int_equal(
					((struct sockaddr_in *)&ss)->sin_port, 0);
				a = &((struct sockaddr_in *)&ss)->sin_addr;
			} else {
				assert_int_equal(ss.ss_family, AF_INET6);
				assert_int_equal(len, sizeof(struct sockaddr_in6));
				assert_int_equal(
					((struct sockaddr_in6 *)&ss)->sin6_port, 0);
				a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
			}
			assert_non_null(inet_ntop(ss.ss_family, a, text,
						  sizeof(text)));
			assert_string_equal(text, domain_cases[i].out);
		}
	}
}

/* Lengths: 63-octet labels, 253 octets in all, a buffer that is short. */
static void
test_domain_parse_lengths(void **state)
{
	char in[300], name[DNS_NAME_MAX + 1];
	struct sockaddr_storage ss;
	socklen_t len;

	(void)state;
	memset(in, 'a', 63);
	strcpy(in + 63, ".org");
	assert_int_equal(dns_domain_parse(in, name, sizeof(name), &ss, &len), 0);
	memset(in, 'a', 64);
	strcpy(in + 64, ".org");
	assert_int_equal(dns_domain_parse(in, name, sizeof(name), &ss, &len),
			 -1);

	/* 4 labels of 63 + 3 dots = 255: too long; trim to 253 */
	memset(in, 'b', 255);
	in[63] = in[127] = in[191] = '.';
	in[255] = '\0';
	assert_int_equal(dns_domain_parse(in, name, sizeof(name), &ss, &len),
			 -1);
	in[253] = '\0';
	assert_int_equal(dns_domain_parse(in, name, sizeof(name), &ss, &len), 0);
	assert_int_equal(strlen(name), 253);
	/* with the final dot it still fits */
	in[253] = '.';
	in[254] = '\0';
	assert_int_equal(dns_domain_parse(in, name, sizeof(name), &ss, &len), 0);
	assert_int_equal(strlen(name), 253);
	in[253] = 'c';
	assert_int_equal(dns_domain_parse(in, name, sizeof(name), &ss, &len),
			 -1);

	/* the caller's buffer bounds the name */
	assert_int_equal(dns_domain_parse("abc.de", name, 7, &ss, &len), 0);
	assert_int_equal(dns_domain_parse("abc.def", name, 7, &ss, &len), -1);
}

/* ---- dns_mx_rdata_parse ----------------------------------------------- */

#define RD(...) { __VA_ARGS__ }, sizeof((const unsigned char[]){ __VA_ARGS__ })

static const struct {
	unsigned char rd[40];
	size_t len;
	int rc;
	unsigned pref;
	const char *name;
} rdata_cases[] = {
	{ RD(0, 10, 2, 'm', 'x', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0),
	  0, 10, "mx.example" },
	{ RD(0xff, 0xff, 2, 'M', 'X', 3, 'O', 'r', 'G', 0), 0, 65535,
	  "mx.org" },
	{ RD(0, 0, 0), 0, 0, "" },			/* null MX */
	{ RD(0, 5, 0), 0, 5, "" },			/* "." any pref */
	{ RD(1, 0, 1, 'a', 0), 0, 256, "a" },
	{ RD(0, 1, 3, 'a', '-', 'b', 0), 0, 1, "a-b" },
	{ RD(0, 1, 3, 'a', '_', 'b', 0), 0, 1, "a_b" },
	{ RD(0), -1, 0, NULL },				/* too short */
	{ RD(0, 1), -1, 0, NULL },			/* no name */
	{ RD(0, 1, 2, 'm', 'x'), -1, 0, NULL },	/* no root label */
	{ RD(0, 1, 3, 'm', 'x', 0), -1, 0, NULL },	/* label overruns */
	{ RD(0, 1, 1, 'a', 0, 0), -1, 0, NULL },	/* trailing byte */
	{ RD(0, 1, 0xc0, 0x0c), -1, 0, NULL },		/* compression */
	{ RD(0, 1, 64, 'a'), -1, 0, NULL },		/* label > 63 */
	{ RD(0, 1, 3, 'a', '.', 'b', 0), -1, 0, NULL },	/* dot in label */
	{ RD(0, 1, 3, 'a', 0, 'b', 0), -1, 0, NULL },	/* NUL in label */
	{ RD(0, 1, 2, 'a', ' ', 0), -1, 0, NULL },
	{ RD(0, 1, 2, '-', 'a', 0), -1, 0, NULL },
	{ RD(0, 1, 2, 0xc3, 0xbc, 0), -1, 0, NULL },
};

static void
test_mx_rdata(void **state)
{
	char name[DNS_NAME_MAX + 1];
	unsigned pref;
	size_t i;
	int rc;

	(void)state;
	for (i = 0; i < N(rdata_cases); i++) {
		pref = 12345;
		rc = dns_mx_rdata_parse(rdata_cases[i].rd, rdata_cases[i].len,
					&pref, name, sizeof(name));
		if (rc != rdata_cases[i].rc)
			fail_msg("row %zu: rc %d, want %d", i, rc,
				 rdata_cases[i].rc);
		if (rc == 0) {
			assert_int_equal(pref, rdata_cases[i].pref);
			assert_string_equal(name, rdata_cases[i].name);
		}
	}
}

/* Wire names up to 255 octets (253 in text) pass, longer ones do not. */
static void
test_mx_rdata_lengths(void **state)
{
	unsigned char rd[2 + 260];
	char name[DNS_NAME_MAX + 1], small[8];
	unsigned pref;
	size_t i, len;

	(void)state;
	/* 3 labels of 63, one of 61: 4 + 63*3 + 61 + root = 255 */
	rd[0] = 0;
	rd[1] = 7;
	len = 2;
	for (i = 0; i < 4; i++) {
		size_t l = i < 3 ? 63 : 61;

		rd[len++] = (unsigned char)l;
		memset(rd + len, 'q', l);
		len += l;
	}
	rd[len++] = 0;
	assert_int_equal(len - 2, 255);
	assert_int_equal(dns_mx_rdata_parse(rd, len, &pref, name, sizeof(name)),
			 0);
	assert_int_equal(strlen(name), 253);
	/* one more octet in the last label: 256 on the wire */
	rd[2 + 3 * 64] = 62;
	memset(rd + 2 + 3 * 64 + 1, 'q', 62);
	rd[2 + 3 * 64 + 1 + 62] = 0;
	assert_int_equal(dns_mx_rdata_parse(rd, len + 1, &pref, name,
					    sizeof(name)), -1);
	/* a small buffer */
	assert_int_equal(dns_mx_rdata_parse((const unsigned char *)
					    "\0\1\3abc\2de\0", 10, &pref, small,
					    sizeof(small)), 0);
	assert_string_equal(small, "abc.de");
	assert_int_equal(dns_mx_rdata_parse((const unsigned char *)
					    "\0\1\3abc\4defg\0", 12, &pref, small,
					    sizeof(small)), -1);
	assert_int_equal(dns_mx_rdata_parse((const unsigned char *)"\0\1\0", 3,
					    &pref, small, 0), -1);
}

/* ---- dns_mx_order ----------------------------------------------------- */

/* Returns the scripted values in turn, checking each n asked for. */
struct script {
	const unsigned *vals;
	const unsigned *ns;	/* the n expected for each call */
	size_t nvals, at;
};

static unsigned
scripted(unsigned n, void *arg)
{
	struct script *s = arg;

	if (s->at >= s->nvals)
		fail_msg("rnd called %zu times, script has %zu", s->at + 1,
			 s->nvals);
	if (s->ns != NULL && s->ns[s->at] != n)
		fail_msg("rnd call %zu: n=%u, want %u", s->at, n, s->ns[s->at]);
	return s->vals[s->at++];
}

#define MXMAX 6

static const struct {
	const char *desc;
	size_t n;
	struct { const char *name; unsigned pref; } in[MXMAX];
	unsigned rnd[MXMAX];	/* scripted rnd values */
	unsigned rnd_n[MXMAX];	/* the n each call must get */
	size_t nrnd;
	const char *out[MXMAX];
	bool null;
} order_cases[] = {
	{ "empty", 0, { { NULL, 0 } }, { 0 }, { 0 }, 0, { NULL }, false },
	{ "one", 1, { { "a", 10 } }, { 0 }, { 0 }, 0, { "a" }, false },
	{ "sorted by preference", 3,
	  { { "c", 30 }, { "a", 10 }, { "b", 20 } }, { 0 }, { 0 }, 0,
	  { "a", "b", "c" }, false },
	{ "65535 and 0", 2, { { "hi", 65535 }, { "lo", 0 } }, { 0 }, { 0 }, 0,
	  { "lo", "hi" }, false },
	/* equal run [x, y]: Fisher-Yates asks rnd(2); 1 keeps, 0 swaps */
	{ "pair kept", 3, { { "x", 5 }, { "y", 5 }, { "z", 1 } }, { 1 },
	  { 2 }, 1, { "z", "x", "y" }, false },
	{ "pair swapped", 3, { { "x", 5 }, { "y", 5 }, { "z", 1 } }, { 0 },
	  { 2 }, 1, { "z", "y", "x" }, false },
	/* run [p, q, r]: rnd(3)=0 swaps r<->p: [r, q, p];
	 * rnd(2)=0 swaps q<->r: [q, r, p] */
	{ "triple", 4, { { "p", 1 }, { "q", 1 }, { "r", 1 }, { "s", 2 } },
	  { 0, 0 }, { 3, 2 }, 2, { "q", "r", "p", "s" }, false },
	/* out-of-range rnd values are taken modulo n: 5 % 3 = 2, 7 % 2 = 1
	 * leave the order as it is */
	{ "rnd out of range", 3, { { "p", 1 }, { "q", 1 }, { "r", 1 } },
	  { 5, 7 }, { 3, 2 }, 2, { "p", "q", "r" }, false },
	/* two runs, each shuffled on its own */
	{ "two runs", 4, { { "b1", 20 }, { "a1", 10 }, { "b2", 20 },
			   { "a2", 10 } },
	  { 0, 0 }, { 2, 2 }, 2, { "a2", "a1", "b2", "b1" }, false },
	{ "null MX", 1, { { "", 0 } }, { 0 }, { 0 }, 0, { "" }, true },
	{ "null MX, other pref", 1, { { "", 10 } }, { 0 }, { 0 }, 0, { "" },
	  true },
	{ "null MX among hosts", 2, { { "", 0 }, { "mx", 10 } }, { 0 }, { 0 },
	  0, { "", "mx" }, false },
	{ "two null MX", 2, { { "", 0 }, { "", 0 } }, { 0 }, { 2 }, 1,
	  { "", "" }, false },
};

static void
test_mx_order(void **state)
{
	struct dns_mx mx[MXMAX];
	struct script s;
	size_t i, j;
	bool null;

	(void)state;
	for (i = 0; i < N(order_cases); i++) {
		for (j = 0; j < order_cases[i].n; j++) {
			mx[j].name = (char *)order_cases[i].in[j].name;
			mx[j].pref = order_cases[i].in[j].pref;
		}
		s = (struct script){ order_cases[i].rnd, order_cases[i].rnd_n,
				     order_cases[i].nrnd, 0 };
		null = dns_mx_order(mx, order_cases[i].n, scripted, &s);
		if (null != order_cases[i].null)
			fail_msg("%s: null %d", order_cases[i].desc, null);
		if (s.at != order_cases[i].nrnd)
			fail_msg("%s: rnd called %zu times, want %zu",
				 order_cases[i].desc, s.at, order_cases[i].nrnd);
		for (j = 0; j < order_cases[i].n; j++)
			if (strcmp(mx[j].name, order_cases[i].out[j]) != 0)
				fail_msg("%s: [%zu] is %s, want %s",
					 order_cases[i].desc, j, mx[j].name,
					 order_cases[i].out[j]);
		for (j = 1; j < order_cases[i].n; j++)
			assert_true(mx[j - 1].pref <= mx[j].pref);
	}
}

/* With the default random source every order of a run shows up. */
static void
test_mx_order_default_rnd(void **state)
{
	static const char *const names[] = { "a", "b", "c" };
	struct dns_mx mx[3];
	bool seen[3] = { false, false, false };
	size_t i, j;

	(void)state;
	for (i = 0; i < 300; i++) {
		for (j = 0; j < 3; j++) {
			mx[j].name = (char *)names[j];
			mx[j].pref = 7;
		}
		assert_false(dns_mx_order(mx, 3, NULL, NULL));
		seen[mx[0].name[0] - 'a'] = true;
	}
	assert_true(seen[0] && seen[1] && seen[2]);
}


struct raw_got {
	int calls;
	enum dns_answer_status status;
	char error[256];
};

static void
raw_cb(struct dns_answer *a, void *arg)
{
	struct raw_got *g = arg;

	g->calls++;
	g->status = a->status;
	snprintf(g->error, sizeof(g->error), "%s", a->error);
	dns_answer_free(&a);
}

/* ---- the asynchronous side, without a name server --------------------- */

struct got {
	struct dns_route *route;
	int calls;
	bool in_lookup;		/* set while dns_route_lookup runs */
	bool called_inside;
};

static void
got_cb(struct dns_route *route, void *arg)
{
	struct got *g = arg;

	g->calls++;
	if (g->in_lookup)
		g->called_inside = true;
	g->route = route;
}

static struct dns_resolver *
recursive_resolver(struct event_base *base)
{
	struct dns_resolver_config cfg = { .mode = "recursive" };
	struct dns_resolver *r;
	char *err = NULL;

	r = dns_resolver_new(base, &cfg, &err);
	if (r == NULL)
		fail_msg("dns_resolver_new: %s", err);
	assert_null(err);
	return r;
}

static const struct {
	const char *domain;
	bool v4, v6, no_mx;
	enum dns_status status;
	const char *host;	/* the one host's name, or error substring */
} local_cases[] = {
	{ "[192.0.2.7]", true, true, false, DNS_OK, "192.0.2.7" },
	{ "[IPv6:2001:db8::7]", true, true, false, DNS_OK, "2001:db8::7" },
	{ "[192.0.2.7]", false, false, false, DNS_OK, "192.0.2.7" },
	{ "[192.0.2.7]", true, false, true, DNS_OK, "192.0.2.7" },
	{ "[192.0.2.7]", false, true, false, DNS_PERMFAIL, "not enabled" },
	{ "[IPv6:2001:db8::7]", true, false, false, DNS_PERMFAIL,
	  "not enabled" },
	{ "a..b", true, true, false, DNS_PERMFAIL, "invalid domain \"a..b\"" },
	{ "x\ny", true, true, false, DNS_PERMFAIL, "invalid domain \"x?y\"" },
	{ "", true, true, true, DNS_PERMFAIL, "invalid domain" },
};

static void
test_route_local(void **state)
{
	struct event_base *base = event_base_new();
	struct dns_resolver *r = recursive_resolver(base);
	struct dns_lookup_opts opts;
	struct dns_query *q;
	struct got g;
	size_t i;

	(void)state;
	for (i = 0; i < N(local_cases); i++) {
		memset(&g, 0, sizeof(g));
		opts = (struct dns_lookup_opts){ local_cases[i].v4,
						 local_cases[i].v6,
						 DNS_PREFER_IPV6,
						 local_cases[i].no_mx };
		g.in_lookup = true;
		q = dns_route_lookup(r, local_cases[i].domain, &opts, got_cb,
				     &g);
		g.in_lookup = false;
		assert_non_null(q);
		assert_int_equal(g.calls, 0);
		assert_int_equal(event_base_loop(base, EVLOOP_NONBLOCK), 0);
		if (g.calls != 1)
			fail_msg("row %zu: %d calls", i, g.calls);
		assert_false(g.called_inside);
		assert_int_equal(g.route->status, local_cases[i].status);
		if (local_cases[i].status == DNS_OK) {
			assert_int_equal(g.route->nhosts, 1);
			assert_string_equal(g.route->hosts[0].name,
					    local_cases[i].host);
			assert_int_equal(g.route->hosts[0].pref, 0);
			assert_int_equal(g.route->hosts[0].naddrs, 1);
			assert_false(g.route->secure);
		} else {
			assert_int_equal(g.route->nhosts, 0);
			if (strstr(g.route->error, local_cases[i].host) == NULL)
				fail_msg("row %zu: error \"%s\"", i,
					 g.route->error);
		}
		dns_route_free(&g.route);
		assert_null(g.route);
	}
	dns_resolver_free(&r);
	assert_null(r);
	event_base_free(base);
}

/* Cancelled queries and a freed resolver never call back. */
static void
test_route_cancel(void **state)
{
	struct event_base *base = event_base_new();
	struct dns_resolver *r = recursive_resolver(base);
	struct dns_lookup_opts opts = { true, true, DNS_PREFER_IPV4, false };
	struct dns_query *q1, *q2;
	struct got g1, g2, g3;

	(void)state;
	memset(&g1, 0, sizeof(g1));
	memset(&g2, 0, sizeof(g2));
	memset(&g3, 0, sizeof(g3));
	q1 = dns_route_lookup(r, "[192.0.2.1]", &opts, got_cb, &g1);
	q2 = dns_route_lookup(r, "[192.0.2.2]", &opts, got_cb, &g2);
	dns_query_cancel(q1);
	dns_query_cancel(NULL);
	assert_int_equal(event_base_loop(base, EVLOOP_NONBLOCK), 0);
	assert_int_equal(g1.calls, 0);
	assert_int_equal(g2.calls, 1);
	dns_route_free(&g2.route);
	(void)q2;

	/* pending at free time: dropped, the callback never runs */
	(void)dns_route_lookup(r, "[192.0.2.3]", &opts, got_cb, &g3);
	dns_resolver_free(&r);
	/* 1: no events left at all */
	assert_int_equal(event_base_loop(base, EVLOOP_NONBLOCK), 1);
	assert_int_equal(g3.calls, 0);
	dns_route_free(&g3.route);	/* NULL: a no-op */
	event_base_free(base);
}

static const struct {
	struct dns_resolver_config cfg;
	const char *err;	/* substring of the error */
} bad_configs[] = {
	{ { .mode = "forward" }, "unknown resolver mode" },
	{ { .mode = "recursive",
	    .forwarders = (const char *const[]){ "not-an-address" },
	    .nforwarders = 1 }, "forwarder \"not-an-address\"" },
	{ { .mode = "recursive",
	    .forwarders = (const char *const[]){ "192.0.2.53", "1.2.3.4@x" },
	    .nforwarders = 2 }, "forwarder \"1.2.3.4@x\"" },
	{ { .mode = "recursive", .trust_anchor = "/nonexistent/anchor" },
	  "trust anchor" },
};

static void
test_resolver_config(void **state)
{
	struct event_base *base = event_base_new();
	struct dns_resolver *r;
	struct dns_resolver_config ok = {
		.mode = "",	/* empty: system */
		.forwarders = (const char *const[]){ "192.0.2.53",
						     "2001:db8::53@5353" },
		.nforwarders = 2,
		.trust_anchor = "",
	};
	char *err;
	size_t i;

	(void)state;
	for (i = 0; i < N(bad_configs); i++) {
		err = NULL;
		r = dns_resolver_new(base, &bad_configs[i].cfg, &err);
		assert_null(r);
		assert_non_null(err);
		if (strstr(err, bad_configs[i].err) == NULL)
			fail_msg("row %zu: error \"%s\"", i, err);
		free(err);
	}
	err = NULL;
	r = dns_resolver_new(base, &ok, &err);
	assert_non_null(r);
	assert_null(err);
	dns_resolver_free(&r);
	dns_resolver_free(&r);	/* NULL: a no-op */
	event_base_free(base);
}

/* The helpers of raw lookups: TXT strings, reverse names, valid names. */
static void
test_raw_helpers(void **state)
{
	static const unsigned char txt[] = "\x05" "v=spf" "\x0c" "1 -all extra";
	static const unsigned char bad[] = "\x09" "short";
	static const unsigned char ptr[] = "\x04" "mail" "\x07" "Example" "\x03" "org" "\x00";
	char out[64], name[DNS_NAME_MAX + 1], v6[80];
	size_t n;

	(void)state;
	assert_int_equal(dns_txt_rdata(txt, sizeof(txt) - 1, out, sizeof(out),
				       &n), 0);
	assert_string_equal(out, "v=spf1 -all extra");
	assert_int_equal(n, 17);
	assert_int_equal(dns_txt_rdata(bad, sizeof(bad) - 1, out, sizeof(out),
				       &n), -1);
	assert_int_equal(dns_txt_rdata(txt, sizeof(txt) - 1, out, 17, &n), -1);
	assert_int_equal(dns_txt_rdata(txt, 0, out, sizeof(out), &n), 0);
	assert_string_equal(out, "");

	assert_int_equal(dns_name_rdata_parse(ptr, sizeof(ptr) - 1, name,
					      sizeof(name)), 0);
	assert_string_equal(name, "mail.example.org");
	assert_int_equal(dns_name_rdata_parse(ptr, sizeof(ptr) - 2, name,
					      sizeof(name)), -1);

	assert_int_equal(dns_reverse_name("192.0.2.10", out, sizeof(out)), 0);
	assert_string_equal(out, "10.2.0.192.in-addr.arpa");
	assert_int_equal(dns_reverse_name("2001:db8::1", v6, sizeof(v6)), 0);
	assert_string_equal(v6, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0"
				".0.8.b.d.0.1.0.0.2.ip6.arpa");
	assert_int_equal(dns_reverse_name("2001:db8::1", v6, 70), -1);
	assert_int_equal(dns_reverse_name("example.org", out, sizeof(out)), -1);

	assert_true(dns_name_valid("_spf.example.org."));
	assert_true(dns_name_valid("s1._domainkey.example.org"));
	assert_false(dns_name_valid(""));
	assert_false(dns_name_valid("a..b"));
	assert_true(dns_name_valid("a b.org"));
	assert_true(dns_name_valid("a\\065%.org"));
	assert_false(dns_name_valid("a\tb.org"));
	assert_false(dns_name_valid("a\xc3\xa9.org"));
	assert_false(dns_name_valid("x.1234567890123456789012345678901234567890"
				    "123456789012345678901234.org"));
}

/* An invalid name is answered DNS_ANS_INVALID, from the loop. */
static void
test_raw_invalid(void **state)
{
	struct event_base *base = event_base_new();
	struct dns_resolver *r = recursive_resolver(base);
	struct raw_got g = { 0 };

	(void)state;
	assert_non_null(dns_lookup(r, "bad\001name.example", DNS_T_TXT, 1000,
				   raw_cb, &g));
	assert_int_equal(g.calls, 0);
	assert_int_equal(event_base_loop(base, EVLOOP_NONBLOCK), 0);
	assert_int_equal(g.calls, 1);
	assert_int_equal(g.status, DNS_ANS_INVALID);
	assert_non_null(strstr(g.error, "invalid domain name"));
	/* a cancelled lookup never calls back */
	dns_query_cancel(dns_lookup(r, "bad\001name.example", DNS_T_TXT, 1000,
				    raw_cb, &g));
	assert_int_equal(event_base_loop(base, EVLOOP_NONBLOCK), 0);
	assert_int_equal(g.calls, 1);
	dns_resolver_free(&r);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_domain_parse),
		cmocka_unit_test(test_domain_parse_lengths),
		cmocka_unit_test(test_mx_rdata),
		cmocka_unit_test(test_mx_rdata_lengths),
		cmocka_unit_test(test_mx_order),
		cmocka_unit_test(test_mx_order_default_rnd),
		cmocka_unit_test(test_route_local),
		cmocka_unit_test(test_route_cancel),
		cmocka_unit_test(test_resolver_config),
		cmocka_unit_test(test_raw_helpers),
		cmocka_unit_test(test_raw_invalid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
