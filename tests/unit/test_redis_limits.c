/*
 * Tests for the Redis side of the client limits (net/redis.h,
 * net/redis_limits.h) that need no server: the address syntax of
 * redis.address, the messages the nodes publish (a row per case, good and
 * bad), and the installation of another node's ban, rate block and
 * sending block in the local table, with the IPv6 grouping.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>

#include "unit.h"

#include "net/client_limits.h"
#include "net/redis.h"
#include "net/redis_limits.h"

static void
test_address_parse(void **state)
{
	static const struct {
		const char *in;
		int ok;
		const char *host;
		int port;
		bool unix_sock;
	} rows[] = {
	    {"127.0.0.1:6379", 1, "127.0.0.1", 6379, false},
	    {"redis.example:1", 1, "redis.example", 1, false},
	    {"[2001:db8::5]:6380", 1, "2001:db8::5", 6380, false},
	    {"/run/redis/redis.sock", 1, "/run/redis/redis.sock", 0, true},
	    {"", 0, NULL, 0, false},
	    {"127.0.0.1", 0, NULL, 0, false},
	    {"127.0.0.1:", 0, NULL, 0, false},
	    {"127.0.0.1:0", 0, NULL, 0, false},
	    {"127.0.0.1:65536", 0, NULL, 0, false},
	    {"127.0.0.1:12x", 0, NULL, 0, false},
	    {"2001:db8::5:6379", 0, NULL, 0, false},
	    {"[2001:db8::5]6379", 0, NULL, 0, false},
	    {"[]:6379", 0, NULL, 0, false},
	    {":6379", 0, NULL, 0, false},
	    {"a b:6379", 0, NULL, 0, false},
	};
	char host[256];
	const char *err;
	int port;
	bool unix_sock;

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int r = redis_address_parse(rows[i].in, host, sizeof(host),
					    &port, &unix_sock, &err);

		if (!rows[i].ok) {
			assert_int_equal(r, -1);
			continue;
		}
		assert_int_equal(r, 0);
		assert_string_equal(host, rows[i].host);
		assert_int_equal(port, rows[i].port);
		assert_int_equal(unix_sock, rows[i].unix_sock);
	}
}

static void
test_messages(void **state)
{
	static const struct {
		const char *in;
		int ok;
		bool ban, wide;
		unsigned long long ttl;
		const char *addr;
	} rows[] = {
	    {"ban 0 60000 192.0.2.7/32", 1, true, false, 60000, "192.0.2.7"},
	    {"ban 1 5 2001:db8:1::/48", 1, true, true, 5, "2001:db8:1::"},
	    {"rate 0 999 2001:db8:1:2::/64", 1, false, false, 999,
	     "2001:db8:1:2::"},
	    {"rate 1 1 ::/48", 1, false, true, 1, "::"},
	    {"ban 2 1 192.0.2.7/32", 0, false, false, 0, NULL},
	    {"ban 0 x 192.0.2.7/32", 0, false, false, 0, NULL},
	    {"ban 0  192.0.2.7/32", 0, false, false, 0, NULL},
	    {"ban 0 1 ", 0, false, false, 0, NULL},
	    {"ban 0 1 999.0.2.7/32", 0, false, false, 0, NULL},
	    {"ban 0 1 192.0.2.7 trailing", 0, false, false, 0, NULL},
	    {"ban 0 99999999999999999999999 192.0.2.7", 0, false, false, 0,
	     NULL},
	    {"unban 0 1 192.0.2.7", 0, false, false, 0, NULL},
	    {"", 0, false, false, 0, NULL},
	};
	struct sockaddr_storage ss;
	char text[INET6_ADDRSTRLEN];
	uint64_t ttl;
	bool ban, wide;

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int r = rlimits_parse_message(rows[i].in, strlen(rows[i].in),
					      &ban, &wide, &ttl, &ss);

		if (!rows[i].ok) {
			assert_int_equal(r, -1);
			continue;
		}
		assert_int_equal(r, 0);
		assert_int_equal(ban, rows[i].ban);
		assert_int_equal(wide, rows[i].wide);
		assert_int_equal(ttl, rows[i].ttl);
		if (ss.ss_family == AF_INET)
			inet_ntop(AF_INET,
				  &((struct sockaddr_in *)&ss)->sin_addr, text,
				  sizeof(text));
		else
			inet_ntop(AF_INET6,
				  &((struct sockaddr_in6 *)&ss)->sin6_addr,
				  text, sizeof(text));
		assert_string_equal(text, rows[i].addr);
	}
}

static struct sockaddr_in6
v6(const char *s)
{
	struct sockaddr_in6 a = {.sin6_family = AF_INET6};

	inet_pton(AF_INET6, s, &a.sin6_addr);
	return a;
}

/* Another node's ban of a /64 covers every address in it, and its text
 * is the key Redis uses. */
static void
test_installed_ban_and_rate(void **state)
{
	struct limits_grouping g = {64, 48};
	struct limits *l = limits_create(64, &g);
	struct sockaddr_in6 a = v6("2001:db8:1:2::1"), b = v6("2001:db8:1:2::99");
	struct sockaddr_in6 c = v6("2001:db8:1:3::1");
	struct limits_policy p = {.rate_count = 100, .rate_window_ms = 1000,
				  .wide_factor = 4};
	char net[64];
	uint64_t until = 0;
	bool wide = true;

	(void)state;
	assert_non_null(l);
	limits_net_text(l, (struct sockaddr *)&a, false, net, sizeof(net));
	assert_string_equal(net, "2001:db8:1:2::/64");
	limits_net_text(l, (struct sockaddr *)&a, true, net, sizeof(net));
	assert_string_equal(net, "2001:db8:1::/48");

	limits_ban_install(l, (struct sockaddr *)&a, false, 5000, 1000);
	assert_true(limits_banned(l, (struct sockaddr *)&b, 1000, &until,
				  &wide));
	assert_int_equal(until, 5000);
	assert_false(wide);
	assert_false(limits_banned(l, (struct sockaddr *)&c, 1000, NULL,
				   NULL));
	assert_false(limits_banned(l, (struct sockaddr *)&b, 5000, NULL,
				   NULL));
	/* the wide network's ban covers the other /64 */
	limits_ban_install(l, (struct sockaddr *)&a, true, 9000, 1000);
	assert_true(limits_banned(l, (struct sockaddr *)&c, 2000, NULL,
				  &wide));
	assert_true(wide);

	/* a rate block refuses connections until it ends */
	limits_rate_block(l, (struct sockaddr *)&c, false, 3000, 2000);
	assert_int_equal(limits_connect(l, &p, 0, (struct sockaddr *)&c, 2500),
			 LIMITS_RATE);
	assert_int_equal(limits_connect(l, &p, 0, (struct sockaddr *)&c, 3000),
			 LIMITS_OK);
	limits_rate_block(l, (struct sockaddr *)&c, true, 4000, 3000);
	assert_int_equal(limits_connect(l, &p, 0, (struct sockaddr *)&a, 3500),
			 LIMITS_RATE_NET);
	limits_destroy(&l);
}

static void
test_installed_send_block(void **state)
{
	struct limits *l = limits_create(64, NULL);
	struct limits_send_policy p = {.messages_per_hour = 10};
	struct limits_send_result r;
	uint32_t gen;

	(void)state;
	gen = limits_send_generation(l);
	limits_send_block(l, "Alice@Example.test",
			  LIMITS_SEND_MESSAGES_HOUR, 60000, 1000);
	assert_true(limits_send_blocked(l, "alice@example.test", 1000));
	assert_int_not_equal(limits_send_generation(l), gen);
	assert_int_equal(limits_send(l, &p, "alice@example.test", true, 2000,
				     &r),
			 LIMITS_SEND_MESSAGES_HOUR);
	assert_false(limits_send_blocked(l, "alice@example.test", 60000));
	assert_false(limits_send_blocked(l, "bob@example.test", 1000));
	limits_destroy(&l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_address_parse),
	    cmocka_unit_test(test_messages),
	    cmocka_unit_test(test_installed_ban_and_rate),
	    cmocka_unit_test(test_installed_send_block),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
