/*
 * Tests for the SPF record parser and macro expander (mail/spf_record.c):
 * records that parse and what they parse into, records that are
 * permerrors, the macro examples of RFC 7208 7.4, the letters allowed
 * per context, URL escaping, bounded output and 7.3 truncation.
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "unit.h"

#include "mail/spf_record.h"

static struct spf_record *
parse_ok(const char *txt)
{
	struct spf_record *rec = NULL;
	char err[160];

	if (spf_record_parse(txt, strlen(txt), &rec, err, sizeof(err)) < 0)
		fail_msg("\"%s\" did not parse: %s", txt, err);
	return rec;
}

static void
test_is_spf(void **state)
{
	(void)state;
	assert_true(spf_record_is_spf("v=spf1", 6));
	assert_true(spf_record_is_spf("V=SPF1 -all", 11));
	assert_false(spf_record_is_spf("v=spf10", 7));
	assert_false(spf_record_is_spf("v=spf1\t-all", 11));
	assert_false(spf_record_is_spf(" v=spf1", 7));
	assert_false(spf_record_is_spf("v=spf", 5));
}

static void
test_parse_terms(void **state)
{
	static const char bad[] = "v=spf1 a foo.bar=%{x-ignored";
	struct spf_record *rec = NULL;
	char err[160];

	(void)state;
	/* an unknown modifier is ignored, but its value must be a
	 * macro-string */
	assert_int_equal(spf_record_parse(bad, strlen(bad), &rec, err,
					  sizeof(err)), -1);
	assert_null(rec);
	rec = parse_ok("v=spf1 +a -mx:mx.%{d}/24//64 ~ptr ?ip4:192.0.2.0/24 "
		       "ip6:2001:db8::/32 include:_spf.example.com "
		       "EXISTS:%{ir}.bl.example.org a//0 "
		       "redirect=r.example.com exp=e.example.com "
		       "foo.bar=anything -all");
	assert_int_equal(rec->nterms, 9);
	assert_int_equal(rec->terms[0].mech, SPF_M_A);
	assert_int_equal(rec->terms[0].qual, SPF_Q_PASS);
	assert_null(rec->terms[0].spec);
	assert_int_equal(rec->terms[0].cidr4, 32);
	assert_int_equal(rec->terms[0].cidr6, 128);
	assert_int_equal(rec->terms[1].mech, SPF_M_MX);
	assert_int_equal(rec->terms[1].qual, SPF_Q_FAIL);
	assert_string_equal(rec->terms[1].spec, "mx.%{d}");
	assert_int_equal(rec->terms[1].cidr4, 24);
	assert_int_equal(rec->terms[1].cidr6, 64);
	assert_int_equal(rec->terms[2].mech, SPF_M_PTR);
	assert_int_equal(rec->terms[2].qual, SPF_Q_SOFTFAIL);
	assert_int_equal(rec->terms[3].mech, SPF_M_IP4);
	assert_int_equal(rec->terms[3].qual, SPF_Q_NEUTRAL);
	assert_int_equal(rec->terms[3].cidr4, 24);
	assert_int_equal(rec->terms[3].addr[0], 192);
	assert_int_equal(rec->terms[4].mech, SPF_M_IP6);
	assert_int_equal(rec->terms[4].cidr6, 32);
	assert_int_equal(rec->terms[5].mech, SPF_M_INCLUDE);
	assert_string_equal(rec->terms[5].spec, "_spf.example.com");
	assert_int_equal(rec->terms[6].mech, SPF_M_EXISTS);
	assert_string_equal(rec->terms[6].text, "EXISTS:%{ir}.bl.example.org");
	assert_int_equal(rec->terms[7].cidr6, 0);
	assert_int_equal(rec->terms[7].cidr4, 32);
	assert_int_equal(rec->terms[8].mech, SPF_M_ALL);
	assert_true(rec->has_all);
	assert_string_equal(rec->redirect, "r.example.com");
	assert_string_equal(rec->exp, "e.example.com");
	spf_record_free(&rec);
	assert_null(rec);
}

static void
test_parse_odd_but_valid(void **state)
{
	static const char *const ok[] = {
		"v=spf1",
		"v=spf1 ",
		"v=spf1   -all   ",
		"v=spf1 a:foo:bar/baz.example.com",	/* ':' and '/' */
		"v=spf1 a:foo.example.com.",		/* final dot */
		"v=spf1 a:e.b-c",			/* dash toplabel */
		"v=spf1 a:%{d}",			/* ends with a macro */
		"v=spf1 mx:%{d}.x.example.com/0",
		"v=spf1 ip4:0.0.0.0/0 ip6:::/0",
		"v=spf1 ip6:::FFFF:1.2.3.4",
		"v=spf1 unknown-mod=",
		"v=spf1 x=%% x2=%_%-",
	};
	struct spf_record *rec;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		rec = parse_ok(ok[i]);
		spf_record_free(&rec);
	}
}

static void
test_parse_errors(void **state)
{
	static const char *const bad[] = {
		"v=spf1 a:museum",		/* one label */
		"v=spf1 a:111.222.33.44",	/* numeric toplabel */
		"v=spf1 a:abc.123",
		"v=spf1 a:foo.-bar",
		"v=spf1 a/33",
		"v=spf1 a//129",
		"v=spf1 a:example.com/",
		"v=spf1 mx:example.com:8080",
		"v=spf1 ip4:1.2.3.4/032",
		"v=spf1 ip4:1.2.3.4//32",
		"v=spf1 ip4",
		"v=spf1 ip4:",
		"v=spf1 ip4:1.2.3",
		"v=spf1 ip6::CAFE::BABE",
		"v=spf1 ip6:::1/129",
		"v=spf1 include",
		"v=spf1 include:",
		"v=spf1 exists",
		"v=spf1 all:foo.com",
		"v=spf1 -all foo=%abc",		/* bad macro in a modifier */
		"v=spf1 =all",
		"v=spf1 redirect=a.example.com redirect=b.example.com",
		"v=spf1 exp=a.example.com exp=b.example.com",
		"v=spf1 redirect=",
		"v=spf1 a:%{c}.example.com",	/* c only in exp text */
		"v=spf1 a:%{d0}.example.com",	/* zero parts */
		"v=spf1 a:%{x}.example.com",
		"v=spf1 a:%{d.example.com",
		"v=spf1 a:foo%.example.com",
		"v=spf1 redirect:foo.example.com",
		"v=spf1 -all\x01",
		"v=spf1 ip4:192.0.2.1\tip4:192.0.2.2",
		"v=spf10 -all",
		"spf1 -all",
	};
	struct spf_record *rec = NULL;
	char err[160];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (spf_record_parse(bad[i], strlen(bad[i]), &rec, err,
				     sizeof(err)) == 0)
			fail_msg("\"%s\" parsed", bad[i]);
		assert_null(rec);
		assert_true(err[0] != '\0');
	}
	/* a NUL inside is refused too */
	assert_int_equal(spf_record_parse("v=spf1 a\0 -all", 14, &rec, err,
					  sizeof(err)), -1);
}

static void
vars_rfc(struct spf_macro_vars *v, bool ipv6)
{
	memset(v, 0, sizeof(*v));
	v->sender = "strong-bad@email.example.com";
	v->local = "strong-bad";
	v->sender_domain = "email.example.com";
	v->domain = "email.example.com";
	v->helo = "mx.example.org";
	v->receiver = "mx.example.net";
	v->ptr = "mx.example.org";
	v->now = 1700000000;
	v->family = ipv6 ? AF_INET6 : AF_INET;
	inet_pton(v->family, ipv6 ? "2001:db8::cb01" : "192.0.2.3", v->addr);
}

static void
expands(const char *in, const char *want, bool ipv6, enum spf_macro_ctx ctx)
{
	struct spf_macro_vars v;
	char out[1024];
	const char *err = NULL;

	vars_rfc(&v, ipv6);
	if (spf_macro_expand(in, strlen(in), &v, ctx, out, sizeof(out),
			     &err) < 0)
		fail_msg("\"%s\": %s", in, err);
	if (strcmp(out, want) != 0)
		fail_msg("\"%s\" -> \"%s\", want \"%s\"", in, out, want);
}

/* RFC 7208 7.4 */
static void
test_macro_rfc_examples(void **state)
{
	static const struct {
		const char *in, *out;
	} t[] = {
		{"%{s}", "strong-bad@email.example.com"},
		{"%{o}", "email.example.com"},
		{"%{d}", "email.example.com"},
		{"%{d4}", "email.example.com"},
		{"%{d3}", "email.example.com"},
		{"%{d2}", "example.com"},
		{"%{d1}", "com"},
		{"%{dr}", "com.example.email"},
		{"%{d2r}", "example.email"},
		{"%{l}", "strong-bad"},
		{"%{l-}", "strong.bad"},
		{"%{lr}", "strong-bad"},
		{"%{lr-}", "bad.strong"},
		{"%{l1r-}", "strong"},
		{"%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"},
		{"%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"},
		{"%{lr-}.lp.%{ir}.%{v}._spf.%{d2}",
		 "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"},
		{"%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}",
		 "3.2.0.192.in-addr.strong.lp._spf.example.com"},
		{"%{d2}.trusted-domains.example.net",
		 "example.com.trusted-domains.example.net"},
		{"%{d999999999999999}", "email.example.com"},
		{"%{l-+.}", "strong.bad"},
		{"%%%_%-", "% %20"},
		{"%{p}.%{h}", "mx.example.org.mx.example.org"},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		expands(t[i].in, t[i].out, false, SPF_MACRO_DOMAIN);
	expands("%{ir}.%{v}._spf.%{d2}",
		"1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2"
		".ip6._spf.example.com", true, SPF_MACRO_DOMAIN);
	expands("%{c} %{r} %{t}", "2001:db8::cb01 mx.example.net 1700000000",
		true, SPF_MACRO_EXP);
	expands("%{c}", "192.0.2.3", false, SPF_MACRO_EXP);
}

static void
test_macro_escape_and_errors(void **state)
{
	struct spf_macro_vars v;
	char out[64];
	const char *err;
	bool uses_p = false;

	(void)state;
	expands("%{S}", "strong-bad%40email.example.com", false,
		SPF_MACRO_DOMAIN);
	vars_rfc(&v, false);
	v.local = "a b/c";
	assert_int_equal(spf_macro_expand("%{L}", 4, &v, SPF_MACRO_DOMAIN, out,
					  sizeof(out), &err), 0);
	assert_string_equal(out, "a%20b%2Fc");
	/* letters per context */
	assert_int_equal(spf_macro_expand("%{c}", 4, &v, SPF_MACRO_DOMAIN, out,
					  sizeof(out), &err), -1);
	assert_int_equal(spf_macro_expand("%{t}", 4, &v, SPF_MACRO_DOMAIN, out,
					  sizeof(out), &err), -1);
	assert_int_equal(spf_macro_expand("a b", 3, &v, SPF_MACRO_DOMAIN, out,
					  sizeof(out), &err), -1);
	assert_int_equal(spf_macro_expand("a b", 3, &v, SPF_MACRO_EXP, out,
					  sizeof(out), &err), 0);
	/* %{p} needs the engine's name */
	v.ptr = NULL;
	assert_int_equal(spf_macro_expand("%{p}", 4, &v, SPF_MACRO_DOMAIN, out,
					  sizeof(out), &err), -1);
	assert_int_equal(spf_macro_check("x.%{p2}.y", 9, SPF_MACRO_DOMAIN,
					 &uses_p, &err), 0);
	assert_true(uses_p);
	/* bounded output: never past size, an error instead */
	vars_rfc(&v, false);
	assert_int_equal(spf_macro_expand("%{s}%{s}%{s}", 12, &v,
					  SPF_MACRO_DOMAIN, out, sizeof(out),
					  &err), -1);
	assert_string_equal(out, "");
	assert_int_equal(spf_macro_expand("%", 1, &v, SPF_MACRO_EXP, out,
					  sizeof(out), &err), -1);
	assert_int_equal(spf_macro_expand("%{d", 3, &v, SPF_MACRO_EXP, out,
					  sizeof(out), &err), -1);
}

static void
test_truncate(void **state)
{
	char name[600], want[300];
	size_t i;

	(void)state;
	strcpy(name, "a.example.com.");
	spf_domain_truncate(name);
	assert_string_equal(name, "a.example.com");
	/* 30 labels of 9 octets + "example.com": 281 octets */
	name[0] = '\0';
	for (i = 0; i < 30; i++)
		strcat(name, "abcdefgh.");
	strcat(name, "example.com");
	spf_domain_truncate(name);
	assert_true(strlen(name) <= 253);
	/* whole labels were dropped from the left */
	want[0] = '\0';
	for (i = 0; i < 26; i++)
		strcat(want, "abcdefgh.");
	strcat(want, "example.com");
	assert_string_equal(name, want);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_is_spf),
	    cmocka_unit_test(test_parse_terms),
	    cmocka_unit_test(test_parse_odd_but_valid),
	    cmocka_unit_test(test_parse_errors),
	    cmocka_unit_test(test_macro_rfc_examples),
	    cmocka_unit_test(test_macro_escape_and_errors),
	    cmocka_unit_test(test_truncate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
