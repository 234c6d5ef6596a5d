/*
 * Unit tests for ops/dns_records: the records a configuration asks for
 * (MX, SPF with and without a smarthost, DKIM from a keyring, DMARC,
 * TLS-RPT, the host's addresses inside the zone), the PTR advice for
 * configured and wildcard addresses, TXT splitting and quoting, and the
 * zone text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"

#include "daemon/config.h"
#include "lib/xalloc.h"
#include "msgauth/dkim.h"
#include "ops/dns_records.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static struct config *
load(const char *yaml)
{
	struct config *c = NULL;
	char *errors = NULL;

	if (config_load_buffer("t.yaml", yaml, strlen(yaml), &c, &errors) < 0)
		fail_msg("config: %s", errors);
	return c;
}

static const struct dns_record *
find(const struct dns_records *r, enum dns_rr_kind kind, size_t nth)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->v[i].kind == kind && nth-- == 0)
			return &r->v[i];
	return NULL;
}

static void
test_basic(void **state)
{
	struct config *c = load(
		"hostname: mx.example.com\n"
		"listeners:\n"
		"  - protocol: smtp\n"
		"    listen: [\"203.0.113.5:25\", \"[2001:db8::5]:25\", "
		"\"127.0.0.1:25\", \"10.1.2.3:25\"]\n");
	struct dns_records *r = dns_records_build(c, "example.com", NULL,
						  NULL, 0);
	const struct dns_record *rec;
	char *z;

	(void)state;
	rec = find(r, DNS_RR_MX, 0);
	assert_non_null(rec);
	assert_string_equal(rec->name, "example.com.");
	assert_string_equal(rec->value, "mx.example.com.");
	assert_int_equal(rec->preference, 10);
	rec = find(r, DNS_RR_SPF, 0);
	assert_string_equal(rec->value, "v=spf1 mx -all");
	rec = find(r, DNS_RR_DMARC, 0);
	assert_string_equal(rec->name, "_dmarc.example.com.");
	assert_string_equal(rec->value, "v=DMARC1; p=quarantine; "
					"rua=mailto:postmaster@example.com");
	rec = find(r, DNS_RR_TLSRPT, 0);
	assert_string_equal(rec->name, "_smtp._tls.example.com.");
	assert_string_equal(rec->value,
			    "v=TLSRPTv1; rua=mailto:postmaster@example.com");
	assert_null(find(r, DNS_RR_DKIM, 0));
	assert_true(r->no_dkim);
	/* loopback and private listener addresses get no PTR advice */
	assert_int_equal(r->nptr, 2);
	assert_false(r->wildcard);
	assert_string_equal(r->ptr[0].addr, "203.0.113.5");
	assert_string_equal(r->ptr[0].reverse, "5.113.0.203.in-addr.arpa.");
	assert_string_equal(r->ptr[1].reverse,
			    "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
			    "8.b.d.0.1.0.0.2.ip6.arpa.");
	/* the host is inside the zone: its addresses are records */
	rec = find(r, DNS_RR_ADDR, 0);
	assert_string_equal(rec->name, "mx.example.com.");
	assert_string_equal(rec->type, "A");
	assert_string_equal(rec->value, "203.0.113.5");
	rec = find(r, DNS_RR_ADDR, 1);
	assert_string_equal(rec->type, "AAAA");

	z = dns_records_zone(r);
	assert_non_null(strstr(z, "\nexample.com. 3600 IN MX 10 "
				  "mx.example.com.\n"));
	assert_non_null(strstr(z, "\nexample.com. 3600 IN TXT "
				  "\"v=spf1 mx -all\"\n"));
	assert_non_null(strstr(z, "\n_dmarc.example.com. 3600 IN TXT "
				  "\"v=DMARC1; p=quarantine; "
				  "rua=mailto:postmaster@example.com\"\n"));
	assert_non_null(strstr(z, "\nmx.example.com. 3600 IN AAAA "
				  "2001:db8::5\n"));
	assert_non_null(strstr(z, ";   5.113.0.203.in-addr.arpa. PTR "
				  "mx.example.com.\n"));
	assert_non_null(strstr(z, "godwit dkim keygen example.com"));
	assert_non_null(strstr(z, "MTA-STS"));
	/* every line is a comment or a record: no blank, no $ directive */
	for (char *l = z; *l != '\0'; l = strchr(l, '\n') + 1) {
		assert_true(*l == ';' || strncmp(l, "example.com. ", 13) == 0 ||
			    strncmp(l, "_", 1) == 0 ||
			    strncmp(l, "mx.example.com. ", 16) == 0);
		assert_non_null(strchr(l, '\n'));
	}
	free(z);
	dns_records_free(&r);
	assert_null(r);
	config_free(&c);
}

/* A host outside the domain: no address records for it; wildcard
 * listeners take the machine's public addresses. */
static void
test_wildcard(void **state)
{
	struct config *c = load("hostname: mail.other.net\n"
				"listeners:\n"
				"  - protocol: smtp\n"
				"    listen: [\"0.0.0.0:25\", \"[::]:25\"]\n");
	char *host[] = {"192.168.1.9", "198.51.100.7", "fd00::1",
			"2001:db8:1::7", "198.51.100.7"};
	struct dns_records *r = dns_records_build(c, "example.org", NULL,
						  host, N(host));
	char *z;

	(void)state;
	assert_true(r->wildcard);
	assert_int_equal(r->nptr, 2);
	assert_string_equal(r->ptr[0].addr, "198.51.100.7");
	assert_true(r->ptr[0].from_interface);
	assert_string_equal(r->ptr[1].addr, "2001:db8:1::7");
	assert_null(find(r, DNS_RR_ADDR, 0));
	assert_string_equal(find(r, DNS_RR_MX, 0)->value, "mail.other.net.");
	z = dns_records_zone(r);
	assert_non_null(strstr(z, "set the PTR of each public address"));
	free(z);
	dns_records_free(&r);

	r = dns_records_build(c, "example.org", NULL, NULL, 0);
	assert_int_equal(r->nptr, 0);
	z = dns_records_zone(r);
	assert_non_null(strstr(z, "none found on its interfaces"));
	free(z);
	dns_records_free(&r);
	config_free(&c);
}

static void
test_smarthost(void **state)
{
	static const struct {
		const char *host;
		const char *spf;
	} cases[] = {
		{"relay.provider.net", "v=spf1 mx a:relay.provider.net -all"},
		{"[192.0.2.1]", "v=spf1 mx ip4:192.0.2.1 -all"},
		{"[2001:db8::1]", "v=spf1 mx ip6:2001:db8::1 -all"},
	};

	(void)state;
	for (size_t i = 0; i < N(cases); i++) {
		char *y = xasprintf("hostname: mx.example.com\n"
				    "smarthost:\n  host: \"%s\"\n",
				    cases[i].host);
		struct config *c = load(y);
		struct dns_records *r = dns_records_build(c, "example.com",
							  NULL, NULL, 0);
		assert_string_equal(find(r, DNS_RR_SPF, 0)->value,
				    cases[i].spf);
		dns_records_free(&r);
		config_free(&c);
		free(y);
	}
}

static void
test_txt_strings(void **state)
{
	char big[600], *s, *want;

	(void)state;
	s = dns_txt_strings("");
	assert_string_equal(s, "\"\"");
	free(s);
	s = dns_txt_strings("a \"q\" b\\");
	assert_string_equal(s, "\"a \\\"q\\\" b\\\\\"");
	free(s);
	memset(big, 'x', sizeof(big));
	big[599] = '\0';
	s = dns_txt_strings(big);
	want = xasprintf("\"%.255s\" \"%.255s\" \"%.89s\"", big, big, big);
	assert_string_equal(s, want);
	free(want);
	free(s);
	/* exactly 255: one string */
	big[255] = '\0';
	s = dns_txt_strings(big);
	assert_int_equal(strlen(s), 257);
	free(s);
}

/* DKIM records come from the keyring, for exactly this domain. */
static void
test_dkim(void **state)
{
	char dir[] = "/tmp/test_dns_records.XXXXXX", *err = NULL, *z, *cmd;
	struct dkim_keyring *kr = NULL;
	struct dkim_key *k;
	struct config *c = load("hostname: mx.example.com\n");
	struct dns_records *r;
	const struct dns_record *rec;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(dkim_key_create(dir, "example.com", "s1-rsa",
					 DKIM_RSA_SHA256, &k, &err), 0);
	dkim_key_free(&k);
	assert_int_equal(dkim_key_create(dir, "example.com", "s1-ed25519",
					 DKIM_ED25519_SHA256, &k, &err), 0);
	dkim_key_free(&k);
	assert_int_equal(dkim_key_create(dir, "sub.example.com", "x",
					 DKIM_ED25519_SHA256, &k, &err), 0);
	dkim_key_free(&k);
	assert_int_equal(dkim_keyring_load(dir, &kr, &err), 0);
	r = dns_records_build(c, "example.com", kr, NULL, 0);
	assert_false(r->no_dkim);
	assert_null(find(r, DNS_RR_DKIM, 2));
	for (size_t i = 0; i < 2; i++) {
		rec = find(r, DNS_RR_DKIM, i);
		assert_non_null(rec);
		assert_true(strcmp(rec->selector, "s1-rsa") == 0 ||
			    strcmp(rec->selector, "s1-ed25519") == 0);
		assert_true(strncmp(rec->value, "v=DKIM1; k=", 11) == 0);
		if (strcmp(rec->selector, "s1-rsa") == 0) {
			assert_string_equal(rec->name,
					    "s1-rsa._domainkey.example.com.");
			assert_true(strlen(rec->value) > 255);
		}
	}
	z = dns_records_zone(r);
	/* the RSA key is split into strings of 255 */
	assert_non_null(strstr(z, "s1-rsa._domainkey.example.com. 3600 IN "
				  "TXT \"v=DKIM1; k=rsa; p="));
	assert_non_null(strstr(z, "\" \""));
	assert_null(strstr(z, "godwit dkim keygen"));
	free(z);
	dns_records_free(&r);
	dkim_keyring_free(&kr);
	config_free(&c);
	cmd = xasprintf("rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

static void
test_public(void **state)
{
	static const struct {
		const char *a;
		bool pub;
	} cases[] = {
		{"203.0.113.5", true},	{"8.8.8.8", true},
		{"10.0.0.1", false},	{"172.16.0.1", false},
		{"172.32.0.1", true},	{"192.168.0.1", false},
		{"127.0.0.1", false},	{"169.254.1.1", false},
		{"100.64.0.1", false},	{"0.0.0.0", false},
		{"2001:db8::1", true},	{"::1", false},
		{"fe80::1", false},	{"fd12::1", false},
		{"::", false},		{"::ffff:10.0.0.1", false},
		{"not an address", false},
	};

	(void)state;
	for (size_t i = 0; i < N(cases); i++)
		if (dns_addr_is_public(cases[i].a) != cases[i].pub)
			fail_msg("%s", cases[i].a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_wildcard),
		cmocka_unit_test(test_smarthost),
		cmocka_unit_test(test_txt_strings),
		cmocka_unit_test(test_dkim),
		cmocka_unit_test(test_public),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
