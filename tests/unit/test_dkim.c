/*
 * Unit tests for the pure DKIM parts (mail/dkim_tags, mail/dkim_sig,
 * mail/dkim_canon): tag lists, DKIM-Signature fields, key records,
 * header and body canonicalisation (RFC 6376 3.4.5's example, the
 * empty-body rules, l=, every chunking of a body), and, in
 * msgauth/dkim, a key made, loaded, and used to sign.
 */
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"

#include "mail/dkim_canon.h"
#include "mail/dkim_sig.h"
#include "mail/dkim_tags.h"
#include "msgauth/dkim.h"
#include "net/dns.h"

#include <event2/event.h>

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- tag lists -------------------------------------------------------- */

static const struct tag_case {
	const char *in;
	const char *out;	/* "name=value|..." or "ERR" */
} tag_cases[] = {
	{"v=1; a=rsa-sha256", "v=1|a=rsa-sha256"},
	{"v=1;a=x;", "v=1|a=x"},
	{"  v = 1 ;\n\ta=b c ; ", "v=1|a=b c"},
	{"h=from:to\r\n  :subject", "h=from:to\r\n  :subject"},
	{"p=", "p="},
	{"a_1=x", "a_1=x"},
	{"v=1; v=2", "ERR"},		/* duplicate */
	{"", "ERR"},
	{" ", "ERR"},
	{"v=1;;a=2", "ERR"},
	{"1v=1", "ERR"},
	{"v", "ERR"},
	{"v=1\na=2", "ERR"},		/* a line end that does not fold */
	{"v=1\n", "ERR"},
	{"v=a;b", "ERR"},
	{"v=\x01", "ERR"},
	{"v=\xc3\xa9", "ERR"},
	{"v=1 \r x", "ERR"},
	{"V=1; v=1", "V=1|v=1"},	/* names are case-sensitive */
};

static void
test_tags(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(tag_cases); i++) {
		struct dkim_tag_list l;
		const char *err = NULL;
		char out[256] = "";
		size_t o = 0;

		if (dkim_tags_parse(tag_cases[i].in, strlen(tag_cases[i].in),
				    &l, &err) < 0) {
			assert_non_null(err);
			snprintf(out, sizeof(out), "ERR");
		} else
			for (size_t k = 0; k < l.n; k++)
				o += (size_t)snprintf(out + o, sizeof(out) - o,
					"%s%.*s=%.*s", k ? "|" : "",
					(int)l.v[k].name_len, l.v[k].name,
					(int)l.v[k].value_len, l.v[k].value);
		if (strcmp(out, tag_cases[i].out) != 0)
			fail_msg("case %zu \"%s\": got \"%s\" want \"%s\"", i,
				 tag_cases[i].in, out, tag_cases[i].out);
	}
}

/* ---- DKIM-Signature --------------------------------------------------- */

#define SIG_OK "v=1; a=rsa-sha256; d=Example.COM; s=sel; h=From:To; " \
	"bh=AAAA; b=AAAA"

static void
test_sig_good(void **state)
{
	struct dkim_sig s;
	const char *err = NULL;
	const char *in = "v=1; a=ed25519-sha256; c=relaxed/simple;\n"
	    " d=example.com; s=brisbane; i=joe@football.Example.com;\n"
	    " q=dns/txt; t=100; x=200; l=5; z=From:x|To:y;\n"
	    " h=from : to:\n\tsubject;\n bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\n"
	    " b=AAAA\n BBBB";

	(void)state;
	assert_int_equal(dkim_sig_parse(in, strlen(in), &s, &err), 0);
	assert_string_equal(s.algorithm, "ed25519-sha256");
	assert_int_equal(s.key_type, DKIM_KEY_ED25519);
	assert_int_equal(s.hcanon, DKIM_CANON_RELAXED);
	assert_int_equal(s.bcanon, DKIM_CANON_SIMPLE);
	assert_string_equal(s.domain, "example.com");
	assert_string_equal(s.selector, "brisbane");
	assert_string_equal(s.auid_domain, "football.example.com");
	assert_int_equal(s.nh, 3);
	assert_string_equal(s.h[0], "from");
	assert_string_equal(s.h[2], "subject");
	assert_int_equal(s.bh_len, 32);
	assert_int_equal(s.b_len, 6);
	assert_string_equal(s.b_prefix, "AAAABBBB");
	assert_true(s.has_l && s.l == 5 && s.t == 100 && s.x == 200);

	assert_int_equal(dkim_sig_parse(SIG_OK, strlen(SIG_OK), &s, &err), 0);
	assert_string_equal(s.domain, "example.com");
	assert_string_equal(s.auid, "@example.com");
	assert_int_equal(s.hcanon, DKIM_CANON_SIMPLE);
	assert_int_equal(s.bcanon, DKIM_CANON_SIMPLE);
	assert_false(s.has_l);
}

static const struct sig_bad {
	const char *in;
	const char *err;
} sig_bad[] = {
	{"v=2; a=rsa-sha256; d=e.com; s=s; h=from; bh=AAAA; b=AAAA",
	 "missing or unknown v="},
	{"a=rsa-sha256; d=e.com; s=s; h=from; bh=AAAA; b=AAAA",
	 "missing or unknown v="},
	{"v=1; a=rsa-md5; d=e.com; s=s; h=from; bh=AAAA; b=AAAA",
	 "unknown algorithm"},
	{"v=1; a=rsa-sha256; s=s; h=from; bh=AAAA; b=AAAA", "missing or bad d="},
	{"v=1; a=rsa-sha256; d=e.com; h=from; bh=AAAA; b=AAAA",
	 "missing or bad s="},
	{"v=1; a=rsa-sha256; d=e.com; s=s; h=to; bh=AAAA; b=AAAA",
	 "missing or bad h= (it must name From)"},
	{"v=1; a=rsa-sha256; d=e.com; s=s; h=from::to; bh=AAAA; b=AAAA",
	 "missing or bad h= (it must name From)"},
	{"v=1; a=rsa-sha256; d=e.com; s=s; h=from; b=AAAA", "missing or bad bh="},
	{"v=1; a=rsa-sha256; d=e.com; s=s; h=from; bh=AAAA", "missing or bad b="},
	{"v=1; a=rsa-sha256; d=e.com; s=s; h=from; bh=AAAA; b=A!AA",
	 "missing or bad b="},
	{"v=1; a=rsa-sha256; d=e.com; s=s; h=from; bh=AAAA; b=AAAA; "
	 "i=joe@other.com", "bad i= (not in d=)"},
	{"v=1; a=rsa-sha256; d=e.com; s=s; h=from; bh=AAAA; b=AAAA; "
	 "i=joe@xe.com", "bad i= (not in d=)"},
	{"v=1; a=rsa-sha256; d=e.com; s=s; h=from; bh=AAAA; b=AAAA; "
	 "c=fancy", "unknown canonicalization"},
	{"v=1; a=rsa-sha256; d=e.com; s=s; h=from; bh=AAAA; b=AAAA; "
	 "q=http", "unknown query method"},
	{"v=1; a=rsa-sha256; d=e.com; s=s; h=from; bh=AAAA; b=AAAA; "
	 "t=200; x=100", "x= is before t="},
	{"v=1; a=rsa-sha256; d=e.com; s=s; h=from; bh=AAAA; b=AAAA; "
	 "l=-1", "bad number in l=, t= or x="},
	{"v=1; a=rsa-sha256; d=e.com; s=s; h=from; bh=AAAA; b=AAAA; "
	 "t=1234567890123", "bad number in l=, t= or x="},
	{"v=1; a=rsa-sha256; d=e..com; s=s; h=from; bh=AAAA; b=AAAA",
	 "missing or bad d="},
	{"v=1; v=1; a=rsa-sha256; d=e.com; s=s; h=from; bh=AAAA; b=AAAA",
	 "duplicate tag"},
};

static void
test_sig_bad(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(sig_bad); i++) {
		struct dkim_sig s;
		const char *err = NULL;
		if (dkim_sig_parse(sig_bad[i].in, strlen(sig_bad[i].in), &s,
				   &err) == 0)
			fail_msg("case %zu parsed", i);
		if (strcmp(err, sig_bad[i].err) != 0)
			fail_msg("case %zu: \"%s\" want \"%s\"", i, err,
				 sig_bad[i].err);
	}
}

static void
test_strip_b(void **state)
{
	const char *f = "DKIM-Signature: v=1; b=AAAA\n BBBB ; bh=CCCC;\n";
	const char *g = "DKIM-Signature: bh=CCCC; b= AAAA\n  BB==\n";
	char out[128];
	long n;

	(void)state;
	n = dkim_sig_strip_b(f, strlen(f), out);
	assert_int_equal(n, (long)strlen("DKIM-Signature: v=1; b=; bh=CCCC;"));
	assert_memory_equal(out, "DKIM-Signature: v=1; b=; bh=CCCC;", n);
	n = dkim_sig_strip_b(g, strlen(g), out);
	assert_memory_equal(out, "DKIM-Signature: bh=CCCC; b=", n);
	assert_int_equal(dkim_sig_strip_b("X: bh=1\n", 8, out), -1);
}

/* ---- key records ------------------------------------------------------ */

static void
test_keyrec(void **state)
{
	struct dkim_keyrec k;
	const char *err;
	const char *ed = "v=DKIM1; k=ed25519; "
	    "p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";

	(void)state;
	assert_int_equal(dkim_keyrec_parse(ed, strlen(ed), &k, &err), 0);
	assert_int_equal(k.key_type, DKIM_KEY_ED25519);
	assert_int_equal(k.p_len, 32);
	assert_true(k.allows_sha256 && k.allows_sha1);
	assert_false(k.revoked || k.testing || k.strict);
#define KP(s, rc) assert_int_equal(dkim_keyrec_parse(s, strlen(s), &k, \
							 &err), rc)
	KP("p=AAAA; t=y:s; h=sha1:sha256; n=notes; zz=unknown", 0);
	assert_true(k.testing && k.strict && k.allows_sha1 && k.allows_sha256);
	assert_int_equal(k.key_type, DKIM_KEY_RSA);
	KP("p=AAAA; h=sha1", 0);
	assert_false(k.allows_sha256);
	KP("k=rsa; t=x; p=", 0);
	assert_true(k.revoked);
	assert_false(k.testing);
	KP("p=AAAA; s=email", 0);
	KP("p=AAAA; s=*", 0);
	KP("p=AAAA; s=other", -1);
	KP("p=AAAA; k=dsa", -1);
	KP("k=rsa; v=DKIM1; p=AAAA", -1);	/* v= not first */
	KP("v=DKIM2; p=AAAA", -1);
	KP("v=DKIM1; k=rsa", -1);		/* no p= */
	KP("v=DKIM1; p=AA!A", -1);
	KP("v=DKIM1; p=AAAA; p=AAAA", -1);
}

/* ---- canonicalisation ------------------------------------------------- */

static void
test_canon_header(void **state)
{
	char out[256];
	size_t n;
	const char *b = "B : Y\t\n \tZ  \n";

	(void)state;
	/* RFC 6376 3.4.5 */
	n = dkim_canon_header(DKIM_CANON_RELAXED, "A: X\n", 5, true, out);
	assert_int_equal(n, 5);
	assert_memory_equal(out, "a:X\r\n", 5);
	n = dkim_canon_header(DKIM_CANON_RELAXED, b, strlen(b), true, out);
	assert_int_equal(n, 7);
	assert_memory_equal(out, "b:Y Z\r\n", 7);
	n = dkim_canon_header(DKIM_CANON_SIMPLE, b, strlen(b), true, out);
	assert_int_equal(n, 15);
	assert_memory_equal(out, "B : Y\t\r\n \tZ  \r\n", 15);
	n = dkim_canon_header(DKIM_CANON_RELAXED, "Subject: a:  b\n", 15,
			      false, out);
	assert_int_equal(n, 12);
	assert_memory_equal(out, "subject:a: b", 12);
}

struct sink {
	char buf[4096];
	size_t len;
};

static void
sink_out(void *arg, const void *p, size_t n)
{
	struct sink *s = arg;

	assert_true(s->len + n <= sizeof(s->buf));
	memcpy(s->buf + s->len, p, n);
	s->len += n;
}

static uint64_t
canon_chunked(enum dkim_canon_alg c, const char *in, size_t chunk,
	      uint64_t limit, struct sink *s)
{
	struct dkim_body_canon b;
	size_t n = strlen(in);

	s->len = 0;
	dkim_body_canon_init(&b, c, limit, sink_out, s);
	for (size_t i = 0; i < n; i += chunk)
		dkim_body_canon_update(&b, in + i, n - i < chunk ? n - i : chunk);
	return dkim_body_canon_finish(&b);
}

static const struct body_case {
	const char *in;
	const char *simple;
	const char *relaxed;
} body_cases[] = {
	/* RFC 6376 3.4.5 */
	{" C \nD \t E\n\n\n", " C \r\nD \t E\r\n", " C\r\nD E\r\n"},
	{"", "\r\n", ""},
	{"\n\n", "\r\n", ""},
	{"  \n\t\n", "  \r\n\t\r\n", ""},
	{"a", "a\r\n", "a\r\n"},
	{"a  ", "a  \r\n", "a\r\n"},
	{"a\n\nb\n\n", "a\r\n\r\nb\r\n", "a\r\n\r\nb\r\n"},
	{"a\n \nb", "a\r\n \r\nb\r\n", "a\r\n\r\nb\r\n"},
	{"\tx\ty \n", "\tx\ty \r\n", " x y\r\n"},
	{"x\r\n", "x\r\r\n", "x\r\r\n"},
};

static void
test_canon_body(void **state)
{
	struct sink s;

	(void)state;
	for (size_t i = 0; i < N(body_cases); i++) {
		const struct body_case *c = &body_cases[i];
		for (size_t chunk = 1; chunk <= strlen(c->in) + 1; chunk++) {
			uint64_t t = canon_chunked(DKIM_CANON_SIMPLE, c->in,
						   chunk, UINT64_MAX, &s);
			if (s.len != strlen(c->simple) || t != s.len ||
			    memcmp(s.buf, c->simple, s.len) != 0)
				fail_msg("simple case %zu chunk %zu", i, chunk);
			t = canon_chunked(DKIM_CANON_RELAXED, c->in, chunk,
					  UINT64_MAX, &s);
			if (s.len != strlen(c->relaxed) || t != s.len ||
			    memcmp(s.buf, c->relaxed, s.len) != 0)
				fail_msg("relaxed case %zu chunk %zu", i, chunk);
		}
	}
}

static void
test_canon_limit(void **state)
{
	struct sink s;
	uint64_t t;

	(void)state;
	t = canon_chunked(DKIM_CANON_SIMPLE, "abc\ndef\n", 3, 5, &s);
	assert_int_equal(t, 10);
	assert_int_equal(s.len, 5);
	assert_memory_equal(s.buf, "abc\r\n", 5);
	t = canon_chunked(DKIM_CANON_RELAXED, "abc\n", 1, 0, &s);
	assert_int_equal(t, 5);
	assert_int_equal(s.len, 0);
}

/* ---- keys and signing ------------------------------------------------- */

static void
test_keys_sign(void **state)
{
	char dir[] = "/tmp/godwit-dkim-unit-XXXXXX", *err = NULL, *sigs;
	const struct dkim_key *const *keys;
	struct dkim_keyring *kr;
	struct dkim_key *k;
	size_t n;
	const char *msg = "From: a@Sub.Example.org\nSubject: x\n\nhello\n";

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(dkim_key_create(dir, "example.org", "e1",
					 DKIM_ED25519_SHA256, &k, &err), 0);
	dkim_key_free(&k);
	assert_int_equal(dkim_key_create(dir, "example.org", "r1",
					 DKIM_RSA_SHA256, &k, &err), 0);
	assert_int_equal(k->bits, 2048);
	sigs = dkim_key_record(k);
	assert_true(strncmp(sigs, "v=DKIM1; k=rsa; p=MIIB", 22) == 0);
	free(sigs);
	dkim_key_free(&k);
	/* never over an existing key */
	assert_int_equal(dkim_key_create(dir, "example.org", "r1",
					 DKIM_RSA_SHA256, &k, &err), -1);
	assert_non_null(strstr(err, "exists"));
	free(err);
	/* a stray file beside the domains is no domain; a directory that
	 * cannot be a domain stops the load */
	{
		char path[64];
		FILE *f;

		snprintf(path, sizeof(path), "%s/README", dir);
		assert_non_null(f = fopen(path, "w"));
		fclose(f);
		snprintf(path, sizeof(path), "%s/Bad.Dir", dir);
		assert_int_equal(mkdir(path, 0700), 0);
		assert_int_equal(dkim_keyring_load(dir, &kr, &err), -1);
		assert_non_null(strstr(err, "not a lower-case domain name"));
		free(err);
		assert_int_equal(rmdir(path), 0);
	}
	assert_int_equal(dkim_keyring_load(dir, &kr, &err), 0);
	keys = dkim_keyring_find(kr, "sub.example.org", &n);
	assert_int_equal(n, 2);
	assert_int_equal(keys[0]->alg, DKIM_RSA_SHA256);
	sigs = dkim_sign_message(msg, strlen(msg), keys, n, 1000, &err);
	assert_non_null(sigs);
	assert_true(strncmp(sigs, "DKIM-Signature: v=1; a=rsa-sha256; "
			    "c=relaxed/relaxed; d=example.org; s=r1;\n t=1000;"
			    " h=from:subject:from;", 93) == 0);
	assert_non_null(strstr(sigs, "\nDKIM-Signature: v=1; a=ed25519-sha256;"));
	for (char *p = sigs, *nl; (nl = strchr(p, '\n')) != NULL;
	     p = nl + 1) {
		assert_true(nl - p <= 78);	/* folded at 78 columns */
		assert_true(nl[1] == '\0' || nl[1] == ' ' || nl[1] == 'D');
	}
	free(sigs);
	assert_null(dkim_keyring_find(kr, "example.com", &n));
	assert_int_equal(n, 0);
	assert_null(dkim_sign_message(msg, strlen(msg), keys, 0, 1000, &err));
	free(err);
	dkim_keyring_free(&kr);
	{
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		assert_int_equal(system(cmd), 0);
	}
}

/* ---- the verifier without DNS ------------------------------------------ */

static int called;

static void
count_cb(void *arg)
{
	called++;
	event_base_loopbreak(arg);
}

/* No signature, a malformed one, an expired one: no key is looked up,
 * and cb still runs from the loop, never inside finish. */
static void
test_verifier_without_lookups(void **state)
{
	struct event_base *base = event_base_new();
	struct dns_resolver_config cfg = {0};
	const char *fwd[] = {"127.0.0.1@9"};
	const struct dkim_sig_result *res;
	struct dns_resolver *r;
	struct dkim_verifier *v;
	char *err = NULL;
	const char *bad = "DKIM-Signature: v=1; a=rsa-sha256; d=e.test; "
	    "s=s; h=to; bh=AAAA; b=AAAA\n";
	const char *old = "dkim-signature:v=1; a=ed25519-sha256; d=E.test;\n"
	    " s=sel; h=from; bh=AAAA; b=AAAAAAAAAAAA; t=10; x=20\n";

	(void)state;
	cfg.forwarders = fwd;
	cfg.nforwarders = 1;
	assert_non_null(base);
	assert_non_null(r = dns_resolver_new(base, &cfg, &err));
	v = dkim_verifier_new(r, 1000, 1000);
	dkim_verifier_finish(v, count_cb, base);
	assert_int_equal(called, 0);
	event_base_dispatch(base);
	assert_int_equal(called, 1);
	assert_int_equal(dkim_verifier_results(v, &res), 0);
	dkim_verifier_free(&v);

	v = dkim_verifier_new(r, 1000, 1000);
	dkim_verifier_header(v, bad, strlen(bad));
	dkim_verifier_header(v, old, strlen(old));
	dkim_verifier_header(v, "From: a@e.test\n", 15);
	dkim_verifier_body(v, "hi\n", 3);
	dkim_verifier_finish(v, count_cb, base);
	assert_int_equal(called, 1);
	event_base_dispatch(base);
	assert_int_equal(called, 2);
	assert_int_equal(dkim_verifier_results(v, &res), 2);
	assert_int_equal(res[0].result, DKIM_NEUTRAL);
	assert_string_equal(res[0].reason,
			    "missing or bad h= (it must name From)");
	assert_string_equal(res[0].domain, "e.test");
	assert_int_equal(res[1].result, DKIM_FAIL);
	assert_string_equal(res[1].reason, "signature expired");
	assert_string_equal(res[1].domain, "e.test");
	assert_string_equal(res[1].algorithm, "ed25519-sha256");
	assert_string_equal(res[1].b_prefix, "AAAAAAAA");
	assert_string_equal(dkim_result_name(res[1].result), "fail");
	dkim_verifier_free(&v);

	/* freed before the loop runs: cb never called */
	v = dkim_verifier_new(r, 1000, 1000);
	dkim_verifier_finish(v, count_cb, base);
	dkim_verifier_free(&v);
	event_base_loop(base, EVLOOP_NONBLOCK);
	assert_int_equal(called, 2);
	dns_resolver_free(&r);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tags),
		cmocka_unit_test(test_sig_good),
		cmocka_unit_test(test_sig_bad),
		cmocka_unit_test(test_strip_b),
		cmocka_unit_test(test_keyrec),
		cmocka_unit_test(test_canon_header),
		cmocka_unit_test(test_canon_body),
		cmocka_unit_test(test_canon_limit),
		cmocka_unit_test(test_keys_sign),
		cmocka_unit_test(test_verifier_without_lookups),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
