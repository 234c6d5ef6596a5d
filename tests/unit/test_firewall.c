/*
 * Unit tests for ops/firewall: which listener addresses get rules
 * (wildcards per family, specific addresses, never loopback), the order
 * deny / rate limit / allow / accept in each format, the rate from
 * limits.connection_rate, and format names. The real tools check the
 * syntax in tests/integration/test_firewall.py.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "unit.h"

#include "daemon/config.h"
#include "ops/firewall.h"

static const char yaml[] =
	"hostname: mx.example.com\n"
	"limits:\n"
	"  connection_rate: 45/90s\n"
	"listeners:\n"
	"  - name: mx\n"
	"    protocol: smtp\n"
	"    listen: [\"0.0.0.0:25\", \"[::1]:25\", \"127.0.0.2:2525\"]\n"
	"    deny: [192.0.2.0/24]\n"
	"  - name: pop\n"
	"    protocol: pop3\n"
	"    listen: [\"203.0.113.5:110\", \"[2001:db8::5]:110\"]\n"
	"    allow: [\"2001:db8:1::/48\"]\n";

static struct config *
load(const char *text)
{
	struct config *c = NULL;
	char *errors = NULL;

	if (config_load_buffer("t.yaml", text, strlen(text), &c, &errors) < 0)
		fail_msg("config: %s", errors);
	return c;
}

static char *
rules(const struct config *c, enum fw_format fmt, int family)
{
	struct fw_options o = {.format = fmt, .family = family};
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	firewall_write(c, &o, f);
	fclose(f);
	return buf;
}

/* Whether needle occurs in hay before needle2 (both present). */
static void
assert_before(const char *hay, const char *a, const char *b)
{
	const char *pa = strstr(hay, a), *pb = strstr(hay, b);

	if (pa == NULL || pb == NULL || pa > pb)
		fail_msg("want \"%s\" before \"%s\" in:\n%s", a, b, hay);
}

static void
test_nftables(void **state)
{
	struct config *c = load(yaml);
	char *s = rules(c, FW_NFTABLES, 0);

	(void)state;
	assert_before(s,
		      "meta nfproto ipv4 tcp dport 25 ip saddr "
		      "{ 192.0.2.0/24 } drop",
		      "meta nfproto ipv4 tcp dport 25 ct state new add "
		      "@mx_rate4 { ip saddr limit rate over 60/minute burst 60 "
		      "packets } drop");
	assert_before(s, "add @mx_rate4", "meta nfproto ipv4 tcp dport 25 "
					  "accept");
	/* allow has no IPv4 network: the IPv4 address stays closed */
	assert_non_null(strstr(s, "ip daddr 203.0.113.5 tcp dport 110 drop\n"));
	assert_null(strstr(s, "ip daddr 203.0.113.5 tcp dport 110 accept"));
	assert_before(s,
		      "ip6 daddr 2001:db8::5 tcp dport 110 ip6 saddr != "
		      "{ 2001:db8:1::/48 } drop",
		      "ip6 daddr 2001:db8::5 tcp dport 110 accept");
	/* loopback listeners get nothing; only MX ports are limited */
	assert_null(strstr(s, "2525"));
	assert_null(strstr(s, "::1"));
	assert_null(strstr(s, "dport 110 ct state"));
	free(s);
	config_free(&c);
}

static void
test_iptables(void **state)
{
	struct config *c = load(yaml);
	char *v4 = rules(c, FW_IPTABLES, AF_INET);
	char *v6 = rules(c, FW_IPTABLES, AF_INET6);
	char *both = rules(c, FW_IPTABLES, 0);

	(void)state;
	assert_null(strstr(v4, "2001:db8"));
	assert_null(strstr(v6, "192.0.2.0"));
	assert_before(v4, "-s 192.0.2.0/24 -j DROP", "--hashlimit-above "
						     "60/minute");
	assert_before(v4, "--hashlimit-above 60/minute",
		      "--dport 25 -m comment --comment \"godwit mx\" -j "
		      "ACCEPT");
	assert_non_null(strstr(v4, "-A GODWIT -d 203.0.113.5/32 -p tcp "
				   "--dport 110 -m comment --comment "
				   "\"godwit pop\" -j DROP\n"));
	assert_before(v6, "-d 2001:db8::5/128 -p tcp --dport 110 -m comment "
			  "--comment \"godwit pop\" -s 2001:db8:1::/48 -j "
			  "ACCEPT",
		      "-d 2001:db8::5/128 -p tcp --dport 110 -m comment "
		      "--comment \"godwit pop\" -j DROP");
	assert_before(both, v4, "# ip6tables-restore\n");
	assert_non_null(strstr(both, v6));
	free(v4);
	free(v6);
	free(both);
	config_free(&c);
}

static void
test_ufw_firewalld(void **state)
{
	struct config *c = load(yaml);
	char *u = rules(c, FW_UFW, 0), *f = rules(c, FW_FIREWALLD, 0);

	(void)state;
	assert_before(u, "ufw prepend deny proto tcp from 192.0.2.0/24 to "
			 "0.0.0.0/0 port 25",
		      "ufw limit proto tcp from 0.0.0.0/0 to 0.0.0.0/0 port "
		      "25");
	assert_non_null(strstr(u, "ufw allow proto tcp from 2001:db8:1::/48 "
				  "to 2001:db8::5 port 110 comment 'godwit "
				  "pop'\n"));
	assert_null(strstr(u, "to 203.0.113.5"));
	assert_non_null(strstr(f, "rule priority=\"-10\" family=\"ipv4\" "
				  "source address=\"192.0.2.0/24\" port "
				  "port=\"25\" protocol=\"tcp\" drop'"));
	assert_non_null(strstr(f, "rule family=\"ipv4\" port port=\"25\" "
				  "protocol=\"tcp\" accept limit "
				  "value=\"60/m\"'"));
	assert_non_null(strstr(f, "rule family=\"ipv6\" source "
				  "address=\"2001:db8:1::/48\" destination "
				  "address=\"2001:db8::5\" port port=\"110\" "
				  "protocol=\"tcp\" accept'"));
	assert_non_null(strstr(f, "\nfirewall-cmd --reload\n"));
	free(u);
	free(f);
	config_free(&c);
}

static void
test_rate_and_names(void **state)
{
	struct config *c = load(yaml);
	struct fw_options o = {0};
	enum fw_format fmt;
	unsigned rate, burst;

	(void)state;
	firewall_rate(c, &o, &rate, &burst);	/* 2 x 45/90s = 2 x 30/min */
	assert_int_equal(rate, 60);
	assert_int_equal(burst, 60);
	o.rate_per_min = 10;
	o.burst = 3;
	firewall_rate(c, &o, &rate, &burst);
	assert_int_equal(rate, 10);
	assert_int_equal(burst, 3);
	c->limits.conn_rate_window = 0;
	o = (struct fw_options){0};
	firewall_rate(c, &o, &rate, &burst);
	assert_int_equal(rate, 60);
	assert_int_equal(fw_format_parse("ufw", &fmt), 0);
	assert_int_equal(fmt, FW_UFW);
	assert_int_equal(fw_format_parse("firewalld", &fmt), 0);
	assert_int_equal(fmt, FW_FIREWALLD);
	assert_int_equal(fw_format_parse("pf", &fmt), -1);
	config_free(&c);
}

/*
 * Behind a balancer (proxy_protocol) only the balancers reach the port:
 * the listener's allow/deny name clients (the daemon checks them after
 * the PROXY header), and no per-source rate limit throttles the
 * balancer.
 */
static void
test_proxy_listener(void **state)
{
	static const char y[] =
		"hostname: mx.example.com\n"
		"listeners:\n"
		"  - name: mx\n"
		"    protocol: smtp\n"
		"    listen: [\"0.0.0.0:25\"]\n"
		"    deny: [192.0.2.0/24]\n"
		"    allow: [198.51.100.0/24]\n"
		"    proxy_protocol: true\n"
		"    proxy_trusted_networks: [10.0.0.10/32, \"fd00::10/128\"]\n";
	struct config *c = load(y);
	char *nft = rules(c, FW_NFTABLES, 0);
	char *ipt = rules(c, FW_IPTABLES, AF_INET);

	(void)state;
	assert_non_null(strstr(nft, "ip saddr != { 10.0.0.10/32 } drop"));
	assert_null(strstr(nft, "192.0.2.0"));
	assert_null(strstr(nft, "198.51.100.0"));
	assert_null(strstr(nft, "limit rate"));
	assert_before(ipt, "-s 10.0.0.10/32 -j ACCEPT", "-j DROP");
	assert_null(strstr(ipt, "hashlimit"));
	assert_null(strstr(ipt, "192.0.2.0"));
	free(nft);
	free(ipt);
	config_free(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nftables),
		cmocka_unit_test(test_iptables),
		cmocka_unit_test(test_ufw_firewalld),
		cmocka_unit_test(test_rate_and_names),
		cmocka_unit_test(test_proxy_listener),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
