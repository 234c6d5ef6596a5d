/* Table-driven tests for the PROXY protocol header parser (proxy_proto.c). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "mail/proxy_proto.h"

#define SIG "\r\n\r\n\0\r\nQUIT\n"

struct pp_case {
	const char *in;
	size_t len;		/* 0: strlen(in) */
	int ret;		/* > 0: the header's length */
	bool local;
	const char *src;	/* expected client address (ret > 0, !local) */
	unsigned sport;
	const char *error;	/* ret < 0 */
};

/* Version 2 TCP4 192.0.2.1:5000 -> 198.51.100.7:25 */
#define V2_TCP4                                                                \
	SIG "\x21\x11\x00\x0c\xc0\x00\x02\x01\xc6\x33\x64\x07\x13\x88\x00\x19"
/* Version 2 TCP6 2001:db8::1:4000 -> 2001:db8::2:993 */
#define V2_TCP6                                                                \
	SIG "\x21\x21\x00\x24"                                                 \
	    "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01"                       \
	    "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x02"                       \
	    "\x0f\xa0\x03\xe1"
/* TCP6 with an IPv4-mapped source ::ffff:203.0.113.9 */
#define V2_MAPPED                                                              \
	SIG "\x21\x21\x00\x24"                                                 \
	    "\0\0\0\0\0\0\0\0\0\0\xff\xff\xcb\x00\x71\x09"                     \
	    "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01"                               \
	    "\x00\x50\x00\x19"

static const struct pp_case cases[] = {
    /* version 1 */
    {"PROXY TCP4 192.0.2.1 198.51.100.7 5000 25\r\n", 0, 43, false,
     "192.0.2.1", 5000},
    {"PROXY TCP6 2001:db8::1 2001:db8::2 4000 993\r\n", 0, 45, false,
     "2001:db8::1", 4000},
    {"PROXY TCP6 ::ffff:203.0.113.9 ::1 80 25\r\n", 0, 41, false,
     "203.0.113.9", 80},
    {"PROXY TCP4 192.0.2.1 198.51.100.7 0 65535\r\n", 0, 43, false,
     "192.0.2.1", 0},
    {"PROXY UNKNOWN\r\n", 0, 15, true},
    {"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", 0, 35, true},
    {"PROXY TCP4 192.0.2.1 198.51.100.7 5000 25\r\nEHLO x\r\n", 0, 43,
     false, "192.0.2.1", 5000},
    {"PROXY TCP4 192.0.2.1 198.51.100.7 5000 25\n", 0, -1,
     .error = "version 1 header not ended by CRLF"},
    {"PROXY TCP4 192.0.2.1 198.51.100.7 5000 25\rX", 0, -1,
     .error = "control character in a version 1 header"},
    {"PROXY TCP4 192.0.2.1 198.51.100.7 5000\r\n", 0, -1,
     .error = "missing field in a version 1 header"},
    {"PROXY TCP4 192.0.2.1 198.51.100.7 5000 25 1\r\n", 0, -1,
     .error = "extra field in a version 1 header"},
    {"PROXY TCP4  192.0.2.1 198.51.100.7 5000 25\r\n", 0, -1,
     .error = "extra field in a version 1 header"},
    {"PROXY TCP4  192.0.2.1 198.51.100.7 5000\r\n", 0, -1,
     .error = "bad address in a version 1 header"},
    {"PROXY TCP4 2001:db8::1 198.51.100.7 5000 25\r\n", 0, -1,
     .error = "bad address in a version 1 header"},
    {"PROXY TCP6 192.0.2.1 2001:db8::2 5000 25\r\n", 0, -1,
     .error = "bad address in a version 1 header"},
    {"PROXY TCP4 host.example 198.51.100.7 5000 25\r\n", 0, -1,
     .error = "bad address in a version 1 header"},
    {"PROXY TCP4 192.0.2.1 198.51.100.7 65536 25\r\n", 0, -1,
     .error = "bad port in a version 1 header"},
    {"PROXY TCP4 192.0.2.1 198.51.100.7 025 25\r\n", 0, -1,
     .error = "bad port in a version 1 header"},
    {"PROXY TCP4 192.0.2.1 198.51.100.7 +25 25\r\n", 0, -1,
     .error = "bad port in a version 1 header"},
    {"PROXY UDP4 192.0.2.1 198.51.100.7 5000 25\r\n", 0, -1,
     .error = "unknown protocol in a version 1 header"},
    {"proxy TCP4 192.0.2.1 198.51.100.7 5000 25\r\n", 0, -1,
     .error = "not a PROXY header"},
    {"PROXYTCP4\r\n", 0, -1, .error = "not a PROXY header"},
    {"EHLO client.example\r\n", 0, -1, .error = "not a PROXY header"},
    {"\x16\x03\x01\x02\x00", 5, -1, .error = "not a PROXY header"},
    {"PROXY \r\n", 0, -1, .error = "unknown protocol in a version 1 header"},
    {"PROXY\r\n", 0, -1, .error = "not a PROXY header"},
    {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\0\r\n", 33, -1,
     .error = "control character in a version 1 header"},

    /* version 2 */
    {V2_TCP4, 28, 28, false, "192.0.2.1", 5000},
    {V2_TCP4 "EHLO x\r\n", 36, 28, false, "192.0.2.1", 5000},
    {V2_TCP6, 52, 52, false, "2001:db8::1", 4000},
    {V2_MAPPED, 52, 52, false, "203.0.113.9", 80},
    /* LOCAL: addresses ignored, even garbage */
    {SIG "\x20\x00\x00\x00", 16, 16, true},
    {SIG "\x20\x11\x00\x03xyz", 19, 19, true},
    /* PROXY with UNSPEC or UNIX: the connection's own address */
    {SIG "\x21\x00\x00\x00", 16, 16, true},
    {SIG "\x21\x31\x00\xd8", 16 + 216, 16 + 216, true},
    /* TLVs after the addresses: walked, skipped */
    {SIG "\x21\x11\x00\x15\xc0\x00\x02\x01\xc6\x33\x64\x07\x13\x88\x00\x19"
         "\x04\x00\x00"		/* NOOP, empty */
         "\x02\x00\x03" "a.b",	/* AUTHORITY */
     37, 37, false, "192.0.2.1", 5000},
    {SIG "\x21\x11\x00\x10\xc0\x00\x02\x01\xc6\x33\x64\x07\x13\x88\x00\x19"
         "\x02\x00\x03" "a",
     32, -1, .error = "TLV overruns the header"},
    {SIG "\x21\x11\x00\x0e\xc0\x00\x02\x01\xc6\x33\x64\x07\x13\x88\x00\x19"
         "\x02\x00",
     30, -1, .error = "TLV overruns the header"},
    {SIG "\x21\x11\x00\x08\xc0\x00\x02\x01\xc6\x33\x64\x07", 24, -1,
     .error = "addresses longer than the header"},
    {SIG "\x21\x12\x00\x0c\xc0\x00\x02\x01\xc6\x33\x64\x07\x13\x88\x00\x19",
     28, -1, .error = "not a stream transport"},
    {SIG "\x21\x41\x00\x00", 16, -1, .error = "unknown address family"},
    {SIG "\x22\x11\x00\x00", 16, -1, .error = "unknown command"},
    {SIG "\x11\x11\x00\x00", 16, -1, .error = "unsupported version"},
    {SIG "\x31\x11\x00\x00", 16, -1, .error = "unsupported version"},
    /* too long: refused as soon as the length is seen */
    {SIG "\x21\x11\x0f\xa0", 16, -1, .error = "header too long"},
    {SIG "\x21\x11\xff\xff", 16, -1, .error = "header too long"},
    {"\r\n\r\n\0\r\nQUIX\n\x21\x11\x00\x00", 16, -1,
     .error = "not a PROXY header"},
};

static void
test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct pp_case *c = &cases[i];
		size_t len = c->len != 0 ? c->len : strlen(c->in), need;
		struct proxy_info info;
		const char *error;
		char ip[INET6_ADDRSTRLEN];
		unsigned port;
		int r;

		r = proxy_parse((const unsigned char *)c->in, len, &info, &need,
				&error);
		if (r != c->ret)
			fail_msg("case %zu: %d, not %d (%s)", i, r, c->ret,
				 error != NULL ? error : "");
		if (r < 0) {
			assert_non_null(error);
			assert_string_equal(error, c->error);
			continue;
		}
		assert_int_equal(info.local, c->local);
		assert_true(info.version == 1 || info.version == 2);
		if (c->local)
			continue;
		if (info.src.ss_family == AF_INET) {
			const struct sockaddr_in *sin = (void *)&info.src;
			inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
			port = ntohs(sin->sin_port);
			assert_int_equal(info.srclen, sizeof(*sin));
		} else {
			const struct sockaddr_in6 *sin6 = (void *)&info.src;
			assert_int_equal(info.src.ss_family, AF_INET6);
			inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
			port = ntohs(sin6->sin6_port);
			assert_int_equal(info.srclen, sizeof(*sin6));
		}
		assert_string_equal(ip, c->src);
		assert_int_equal(port, c->sport);
		assert_true(info.dst.ss_family == AF_INET ||
			    info.dst.ss_family == AF_INET6);
	}
}

/*
 * Every strict prefix of a valid header asks for more, with a need
 * beyond what it has; given all octets, the header's length comes back.
 */
static void
test_prefixes(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct pp_case *c = &cases[i];
		struct proxy_info info;
		const char *error;
		size_t need;

		if (c->ret <= 0)
			continue;
		for (size_t n = 0; n < (size_t)c->ret; n++) {
			int r = proxy_parse((const unsigned char *)c->in, n,
					    &info, &need, &error);
			if (r != 0)
				fail_msg("case %zu prefix %zu: %d (%s)", i, n,
					 r, error != NULL ? error : "");
			assert_true(need > n && need <= (size_t)c->ret);
		}
	}
}

/* Version 2 knows its exact length once the fixed part is in. */
static void
test_v2_need(void **state)
{
	static const char h[] = V2_TCP6;
	struct proxy_info info;
	const char *error;
	size_t need;

	(void)state;
	assert_int_equal(proxy_parse((const unsigned char *)h, 5, &info, &need,
				     &error),
			 0);
	assert_int_equal(need, PROXY_V2_FIXED);
	assert_int_equal(proxy_parse((const unsigned char *)h, 16, &info,
				     &need, &error),
			 0);
	assert_int_equal(need, 52);
}

/* Version 1: 107 octets at most, CRLF included. */
static void
test_v1_limit(void **state)
{
	char line[200];
	struct proxy_info info;
	const char *error;
	size_t need, n;

	(void)state;
	/* UNKNOWN may carry anything up to the limit */
	memset(line, 'x', sizeof(line));
	memcpy(line, "PROXY UNKNOWN ", 14);
	line[105] = '\r';
	line[106] = '\n';
	assert_int_equal(proxy_parse((unsigned char *)line, 107, &info, &need,
				     &error),
			 107);
	assert_true(info.local);
	line[105] = 'x';
	line[106] = '\r';
	line[107] = '\n';
	n = 108;
	assert_int_equal(proxy_parse((unsigned char *)line, n, &info, &need,
				     &error),
			 -1);
	assert_string_equal(error, "version 1 header longer than 107 octets");
	/* and without an end, the 107th octet decides */
	memset(line + 14, 'y', sizeof(line) - 14);
	assert_int_equal(proxy_parse((unsigned char *)line, 106, &info, &need,
				     &error),
			 0);
	assert_int_equal(need, 107);
	assert_int_equal(proxy_parse((unsigned char *)line, 107, &info, &need,
				     &error),
			 -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_prefixes),
		cmocka_unit_test(test_v2_need),
		cmocka_unit_test(test_v1_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
