/*
 * Unit tests for msgauth/dmarc.c and dmarc_store.c without DNS: the
 * organizational domain through the real libpsl and Debian's Public
 * Suffix List (package publicsuffix), alignment, dmarc_evaluate() from a
 * table (relaxed and strict alignment for SPF and DKIM, p= against sp=,
 * pct= with given samples, the temperror rule), and the aggregate-report
 * record line (decoded back with the logfmt reader) and its file. The
 * DNS lookups are tested against a real unbound by
 * tests/integration/test_dmarc_lookup.py (through test_dmarc_lookup.c).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"

#include "lib/logfmt.h"
#include "msgauth/dmarc.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- organizational domains ------------------------------------------- */

static const struct {
	const char *in, *org;
} org_cases[] = {
	{ "example.co.uk", "example.co.uk" },
	{ "a.b.example.co.uk", "example.co.uk" },
	{ "A.B.Example.CO.UK.", "example.co.uk" },
	{ "foo.bar.example.com", "example.com" },
	{ "example.com", "example.com" },
	{ "mail.example.org", "example.org" },
	/* a public suffix itself and a single label: the name itself */
	{ "co.uk", "co.uk" },
	{ "localhost", "localhost" },
	{ "Com", "com" },
	/* private-section suffixes are suffixes too */
	{ "x.y.blogspot.com", "y.blogspot.com" },
	/* a TLD not in the list: the default rule "*" */
	{ "a.b.c.unknowntld", "c.unknowntld" },
	/* IP-like strings: not looked up, themselves */
	{ "192.0.2.1", "192.0.2.1" },
	{ "[192.0.2.1]", "[192.0.2.1]" },
	{ "2001:db8::1", "2001:db8::1" },
	{ "", "" },
};

static void
test_org_domain(void **state)
{
	char out[256], *err = NULL;
	size_t i;

	(void)state;
	if (dmarc_psl_init(&err) < 0)
		fail_msg("%s", err);
	for (i = 0; i < N(org_cases); i++) {
		memset(out, 'X', sizeof(out));
		assert_int_equal(dmarc_org_domain(org_cases[i].in, out,
						  sizeof(out)),
				 0);
		if (strcmp(out, org_cases[i].org) != 0)
			fail_msg("%s: org %s, wanted %s", org_cases[i].in, out,
				 org_cases[i].org);
	}
	/* too small an output */
	assert_int_equal(dmarc_org_domain("a.b.example.co.uk", out, 13), -1);
	assert_int_equal(dmarc_org_domain("a.b.example.co.uk", out, 14), 0);
	assert_string_equal(out, "example.co.uk");
}

static void
test_aligned(void **state)
{
	(void)state;
	assert_true(dmarc_aligned("example.com", "example.com", true));
	assert_true(dmarc_aligned("Example.COM.", "example.com", true));
	assert_false(dmarc_aligned("mail.example.com", "example.com", true));
	assert_true(dmarc_aligned("mail.example.com", "example.com", false));
	assert_true(dmarc_aligned("a.example.co.uk", "b.c.example.co.uk",
				  false));
	assert_false(dmarc_aligned("example.co.uk", "other.co.uk", false));
	assert_false(dmarc_aligned("co.uk", "example.co.uk", false));
	assert_false(dmarc_aligned("example.com", "example.net", false));
	assert_false(dmarc_aligned("", "", false));
	assert_false(dmarc_aligned(NULL, "example.com", false));
	assert_false(dmarc_aligned("evilexample.com", "example.com", false));
}

/* ---- dmarc_evaluate ------------------------------------------------- */

#define P_U DMARC_P_UNSET
#define P_N DMARC_P_NONE
#define P_Q DMARC_P_QUARANTINE
#define P_R DMARC_P_REJECT

struct sig {
	enum dkim_result res;
	const char *d;
};

static const struct eval_case {
	const char *name;
	/* the policy found */
	const char *from, *policy_domain;
	bool at_org;
	enum dmarc_policy p, sp;
	bool adkim_s, aspf_s;
	unsigned pct;
	/* the message */
	enum spf_result spf;
	const char *spf_domain;
	struct sig sigs[3];
	unsigned sample;
	/* the verdict */
	enum dmarc_result result;
	enum dmarc_policy policy, disposition;
	bool spf_al, dkim_al;
} eval_cases[] = {
	{ "spf relaxed: subdomain of the From domain aligns", "example.com",
	  "example.com", false, P_R, P_U, false, false, 100, SPF_PASS,
	  "bounces.example.com", { { 0 } }, 0, DMARC_PASS, P_R, P_N, true,
	  false },
	{ "spf strict: subdomain does not align", "example.com", "example.com",
	  false, P_R, P_U, false, true, 100, SPF_PASS, "bounces.example.com",
	  { { 0 } }, 0, DMARC_FAIL, P_R, P_R, false, false },
	{ "spf strict: the same domain aligns", "example.com", "example.com",
	  false, P_R, P_U, false, true, 100, SPF_PASS, "EXAMPLE.com",
	  { { 0 } }, 0, DMARC_PASS, P_R, P_N, true, false },
	{ "spf pass for another domain", "example.com", "example.com", false,
	  P_Q, P_U, false, false, 100, SPF_PASS, "example.net", { { 0 } }, 0,
	  DMARC_FAIL, P_Q, P_Q, false, false },
	{ "spf aligned but softfail", "example.com", "example.com", false, P_R,
	  P_U, false, false, 100, SPF_SOFTFAIL, "example.com", { { 0 } }, 0,
	  DMARC_FAIL, P_R, P_R, false, false },
	{ "dkim relaxed: parent d= aligns", "mail.example.com", "example.com",
	  true, P_R, P_U, false, false, 100, SPF_NONE, "",
	  { { DKIM_PASS, "example.com" } }, 0, DMARC_PASS, P_R, P_N, false,
	  true },
	{ "dkim strict: parent d= does not", "mail.example.com", "example.com",
	  true, P_R, P_U, true, false, 100, SPF_NONE, "",
	  { { DKIM_PASS, "example.com" } }, 0, DMARC_FAIL, P_R, P_R, false,
	  false },
	{ "dkim strict: equal d= aligns", "mail.example.com", "example.com",
	  true, P_R, P_U, true, false, 100, SPF_NONE, "",
	  { { DKIM_PASS, "example.com" }, { DKIM_PASS, "mail.example.com" } },
	  0, DMARC_PASS, P_R, P_N, false, true },
	{ "dkim: a pass for another domain and a fail aligned",
	  "example.com", "example.com", false, P_R, P_U, false, false, 100,
	  SPF_FAIL, "example.com",
	  { { DKIM_PASS, "esp.example.net" }, { DKIM_FAIL, "example.com" } },
	  0, DMARC_FAIL, P_R, P_R, false, false },
	{ "dkim: policy result (rsa-sha1, l=) is not a pass", "example.com",
	  "example.com", false, P_R, P_U, false, false, 100, SPF_NONE, "",
	  { { DKIM_POLICY, "example.com" } }, 0, DMARC_FAIL, P_R, P_R, false,
	  false },
	{ "both aligned", "example.com", "example.com", false, P_N, P_U,
	  false, false, 100, SPF_PASS, "example.com",
	  { { DKIM_PASS, "example.com" } }, 0, DMARC_PASS, P_N, P_N, true,
	  true },
	/* sp= applies to subdomains found through the organizational
	 * domain, p= to the organizational domain itself and to a
	 * subdomain with a record of its own */
	{ "sp for a subdomain found at the org domain", "a.b.example.co.uk",
	  "example.co.uk", true, P_R, P_Q, false, false, 100, SPF_FAIL,
	  "a.b.example.co.uk", { { 0 } }, 0, DMARC_FAIL, P_Q, P_Q, false,
	  false },
	{ "p for a subdomain when sp is not given", "a.b.example.co.uk",
	  "example.co.uk", true, P_R, P_U, false, false, 100, SPF_FAIL,
	  "a.b.example.co.uk", { { 0 } }, 0, DMARC_FAIL, P_R, P_R, false,
	  false },
	{ "p at the org domain itself, sp ignored", "example.co.uk",
	  "example.co.uk", false, P_R, P_N, false, false, 100, SPF_FAIL,
	  "example.co.uk", { { 0 } }, 0, DMARC_FAIL, P_R, P_R, false, false },
	{ "p of a subdomain's own record, sp ignored", "a.example.com",
	  "a.example.com", false, P_Q, P_N, false, false, 100, SPF_FAIL,
	  "a.example.com", { { 0 } }, 0, DMARC_FAIL, P_Q, P_Q, false, false },
	{ "sp=none for a subdomain", "x.example.com", "example.com", true,
	  P_R, P_N, false, false, 100, SPF_FAIL, "x.example.com", { { 0 } },
	  0, DMARC_FAIL, P_N, P_N, false, false },
	/* pct= sampling: sample < pct gets the policy, else the next less
	 * strict one */
	{ "pct=50 sample 49: reject", "example.com", "example.com", false,
	  P_R, P_U, false, false, 50, SPF_FAIL, "example.com", { { 0 } }, 49,
	  DMARC_FAIL, P_R, P_R, false, false },
	{ "pct=50 sample 50: quarantine", "example.com", "example.com", false,
	  P_R, P_U, false, false, 50, SPF_FAIL, "example.com", { { 0 } }, 50,
	  DMARC_FAIL, P_R, P_Q, false, false },
	{ "pct=50 quarantine, sample 99: none", "example.com", "example.com",
	  false, P_Q, P_U, false, false, 50, SPF_FAIL, "example.com",
	  { { 0 } }, 99, DMARC_FAIL, P_Q, P_N, false, false },
	{ "pct=0: never the policy", "example.com", "example.com", false, P_R,
	  P_U, false, false, 0, SPF_FAIL, "example.com", { { 0 } }, 0,
	  DMARC_FAIL, P_R, P_Q, false, false },
	{ "pct=100 sample 99: reject", "example.com", "example.com", false,
	  P_R, P_U, false, false, 100, SPF_FAIL, "example.com", { { 0 } }, 99,
	  DMARC_FAIL, P_R, P_R, false, false },
	{ "pct does not touch a pass", "example.com", "example.com", false,
	  P_R, P_U, false, false, 0, SPF_PASS, "example.com", { { 0 } }, 99,
	  DMARC_PASS, P_R, P_N, true, false },
	/* temperror: only a temporary error that could have given an
	 * aligned pass */
	{ "spf temperror aligned", "example.com", "example.com", false, P_R,
	  P_U, false, false, 100, SPF_TEMPERROR, "example.com", { { 0 } }, 0,
	  DMARC_TEMPERROR, P_R, P_R, false, false },
	{ "spf temperror for another domain: fail", "example.com",
	  "example.com", false, P_R, P_U, false, false, 100, SPF_TEMPERROR,
	  "example.net", { { 0 } }, 0, DMARC_FAIL, P_R, P_R, false, false },
	{ "spf temperror, strict, subdomain: fail", "example.com",
	  "example.com", false, P_R, P_U, false, true, 100, SPF_TEMPERROR,
	  "b.example.com", { { 0 } }, 0, DMARC_FAIL, P_R, P_R, false, false },
	{ "dkim temperror aligned", "example.com", "example.com", false, P_R,
	  P_U, false, false, 100, SPF_FAIL, "example.com",
	  { { DKIM_TEMPERROR, "example.com" } }, 0, DMARC_TEMPERROR, P_R, P_R,
	  false, false },
	{ "dkim temperror for another domain: fail", "example.com",
	  "example.com", false, P_R, P_U, false, false, 100, SPF_FAIL,
	  "example.com", { { DKIM_TEMPERROR, "example.net" } }, 0, DMARC_FAIL,
	  P_R, P_R, false, false },
	{ "temperror, but an aligned pass: pass", "example.com",
	  "example.com", false, P_R, P_U, false, false, 100, SPF_TEMPERROR,
	  "example.com", { { DKIM_PASS, "example.com" } }, 0, DMARC_PASS, P_R,
	  P_N, false, true },
	{ "temperror with quarantine, pct not sampled", "example.com",
	  "example.com", false, P_Q, P_U, false, false, 10, SPF_TEMPERROR,
	  "example.com", { { 0 } }, 50, DMARC_TEMPERROR, P_Q, P_N, false,
	  false },
};

static void
fill_found(const struct eval_case *c, struct dmarc_found *f)
{
	memset(f, 0, sizeof(*f));
	f->status = DMARC_PASS;
	snprintf(f->from_domain, sizeof(f->from_domain), "%s", c->from);
	snprintf(f->policy_domain, sizeof(f->policy_domain), "%s",
		 c->policy_domain);
	assert_int_equal(dmarc_org_domain(c->from, f->org_domain,
					  sizeof(f->org_domain)),
			 0);
	f->at_org = c->at_org;
	f->rec.p = c->p;
	f->rec.sp = c->sp;
	f->rec.adkim_strict = c->adkim_s;
	f->rec.aspf_strict = c->aspf_s;
	f->rec.pct = c->pct;
	f->rec.ri = 86400;
}

static void
test_evaluate(void **state)
{
	struct dkim_sig_result sigs[3];
	struct dmarc_found f;
	struct dmarc_verdict v;
	size_t i, n;

	(void)state;
	for (i = 0; i < N(eval_cases); i++) {
		const struct eval_case *c = &eval_cases[i];

		fill_found(c, &f);
		memset(sigs, 0, sizeof(sigs));
		for (n = 0; n < 3 && c->sigs[n].d != NULL; n++) {
			sigs[n].result = c->sigs[n].res;
			snprintf(sigs[n].domain, sizeof(sigs[n].domain), "%s",
				 c->sigs[n].d);
		}
		dmarc_evaluate(&f, c->spf, c->spf_domain, sigs, n, c->sample,
			       &v);
		if (v.result != c->result || v.policy != c->policy ||
		    v.disposition != c->disposition ||
		    v.spf_aligned != c->spf_al || v.dkim_aligned != c->dkim_al)
			fail_msg("%s: %s policy=%s disposition=%s spf=%d "
				 "dkim=%d (%s)",
				 c->name, dmarc_result_name(v.result),
				 dmarc_policy_name(v.policy),
				 dmarc_policy_name(v.disposition),
				 v.spf_aligned, v.dkim_aligned, v.reason);
		assert_string_equal(v.from_domain, c->from);
		assert_string_equal(v.policy_domain, c->policy_domain);
		assert_true(v.reason[0] != '\0');
	}
}

/* Without a record the verdict is the lookup's status, and nothing is
 * enforced. */
static void
test_evaluate_no_record(void **state)
{
	static const enum dmarc_result st[] = { DMARC_NONE, DMARC_TEMPERROR,
						DMARC_PERMERROR };
	struct dmarc_found f;
	struct dmarc_verdict v;
	size_t i;

	(void)state;
	for (i = 0; i < N(st); i++) {
		memset(&f, 0, sizeof(f));
		f.status = st[i];
		snprintf(f.from_domain, sizeof(f.from_domain), "example.com");
		snprintf(f.reason, sizeof(f.reason), "why %zu", i);
		dmarc_evaluate(&f, SPF_FAIL, "example.com", NULL, 0, 0, &v);
		assert_int_equal(v.result, st[i]);
		assert_int_equal(v.policy, DMARC_P_UNSET);
		assert_int_equal(v.disposition, DMARC_P_NONE);
		assert_false(v.spf_aligned || v.dkim_aligned);
		assert_string_equal(v.from_domain, "example.com");
		assert_string_equal(v.reason, f.reason);
	}
}

/* dmarc_sample() stays below 100 and is not constant. */
static void
test_sample(void **state)
{
	unsigned seen[100] = { 0 }, i, distinct = 0;

	(void)state;
	for (i = 0; i < 10000; i++) {
		unsigned s = dmarc_sample();

		assert_true(s < 100);
		seen[s]++;
	}
	for (i = 0; i < 100; i++)
		distinct += seen[i] > 0;
	assert_true(distinct > 90);
}

static void
test_result_names(void **state)
{
	(void)state;
	assert_string_equal(dmarc_result_name(DMARC_NONE), "none");
	assert_string_equal(dmarc_result_name(DMARC_PASS), "pass");
	assert_string_equal(dmarc_result_name(DMARC_FAIL), "fail");
	assert_string_equal(dmarc_result_name(DMARC_TEMPERROR), "temperror");
	assert_string_equal(dmarc_result_name(DMARC_PERMERROR), "permerror");
}

/* ---- the record line ------------------------------------------------ */

struct fields {
	char keys[32][32];
	char vals[32][1100];
	int n;
};

static void
collect(void *ctx, const char *key, size_t key_len,
	const unsigned char *value, size_t value_len)
{
	struct fields *fs = ctx;

	assert_true(fs->n < 32 && key_len < 32 && value_len < 1100);
	memcpy(fs->keys[fs->n], key, key_len);
	fs->keys[fs->n][key_len] = '\0';
	memcpy(fs->vals[fs->n], value, value_len);
	fs->vals[fs->n][value_len] = '\0';
	fs->n++;
}

static const char *
field(const struct fields *fs, const char *key)
{
	int i;

	for (i = 0; i < fs->n; i++)
		if (strcmp(fs->keys[i], key) == 0)
			return fs->vals[i];
	fail_msg("no field %s", key);
	return NULL;
}

static void
sample_message(struct dmarc_found *f, struct dmarc_verdict *v,
	       struct dkim_sig_result *sigs, struct dmarc_record_info *info)
{
	static const struct eval_case c = {
		"", "a.b.example.co.uk", "example.co.uk", true, P_R, P_Q, true,
		false, 25,
	};

	fill_found(&c, f);
	memset(sigs, 0, 2 * sizeof(*sigs));
	sigs[0].result = DKIM_PASS;
	snprintf(sigs[0].domain, sizeof(sigs[0].domain), "esp.example");
	snprintf(sigs[0].selector, sizeof(sigs[0].selector), "s1");
	sigs[1].result = DKIM_FAIL;
	/* a hostile d= and s=: separators and a forged field */
	snprintf(sigs[1].domain, sizeof(sigs[1].domain), "x,y:z");
	snprintf(sigs[1].selector, sizeof(sigs[1].selector),
		 "a dmarc=pass\nv=1");
	*info = (struct dmarc_record_info){
		.time = 1700000000,
		.ip = "192.0.2.7",
		.envelope_from = "bounce.example.net",
		.spf = SPF_SOFTFAIL,
		.spf_domain = "bounce.example.net",
		.sigs = sigs,
		.nsigs = 2,
	};
	dmarc_evaluate(f, info->spf, info->spf_domain, sigs, 2, 10, v);
}

static void
test_record_format(void **state)
{
	struct dkim_sig_result sigs[2];
	struct dmarc_record_info info;
	struct dmarc_found f;
	struct dmarc_verdict v;
	struct fields fs = { .n = 0 };
	char line[8192];
	size_t len;

	(void)state;
	sample_message(&f, &v, sigs, &info);
	len = dmarc_record_format(&v, &f, &info, line, sizeof(line));
	assert_true(len > 0 && len == strlen(line));
	assert_true(line[len - 1] == '\n');
	assert_null(memchr(line, '\n', len - 1));
	assert_true(strncmp(line, "v=1 time=2023-11-14T22:13:20Z ip=", 33) ==
		    0);
	/* the KV reader takes " k=v k=v" */
	{
		char buf[8200];

		snprintf(buf, sizeof(buf), " %.*s", (int)(len - 1), line);
		assert_int_equal(logfmt_parse_kv(buf, len, collect, &fs), 16);
	}
	assert_string_equal(field(&fs, "v"), "1");
	assert_string_equal(field(&fs, "ip"), "192.0.2.7");
	assert_string_equal(field(&fs, "header_from"), "a.b.example.co.uk");
	assert_string_equal(field(&fs, "envelope_from"), "bounce.example.net");
	assert_string_equal(field(&fs, "policy_domain"), "example.co.uk");
	assert_string_equal(field(&fs, "p"), "reject");
	assert_string_equal(field(&fs, "sp"), "quarantine");
	assert_string_equal(field(&fs, "pct"), "25");
	assert_string_equal(field(&fs, "adkim"), "s");
	assert_string_equal(field(&fs, "aspf"), "r");
	assert_string_equal(field(&fs, "disposition"), "quarantine");
	assert_string_equal(field(&fs, "dmarc"), "fail");
	assert_string_equal(field(&fs, "dkim"),
			    "esp.example:s1:pass,x?y?z:a dmarc=pass\nv=1:fail");
	assert_string_equal(field(&fs, "spf_domain"), "bounce.example.net");
	assert_string_equal(field(&fs, "spf"), "softfail");
	/* too small a buffer: whole fields and truncated=yes, or nothing */
	len = dmarc_record_format(&v, &f, &info, line, 120);
	assert_true(len > 0 && len < 120 && line[len - 1] == '\n');
	assert_non_null(strstr(line, " truncated=yes\n"));
	assert_int_equal(dmarc_record_format(&v, &f, &info, line, 10), 0);
}

/* No record found: the policy fields are empty. */
static void
test_record_format_none(void **state)
{
	struct dmarc_record_info info = { .time = 0, .ip = "2001:db8::1",
					  .envelope_from = "",
					  .spf = SPF_NONE,
					  .spf_domain = "h.example" };
	struct dmarc_found f = { .status = DMARC_NONE };
	struct dmarc_verdict v;
	char line[1024];

	(void)state;
	snprintf(f.from_domain, sizeof(f.from_domain), "example.org");
	dmarc_evaluate(&f, SPF_NONE, "h.example", NULL, 0, 0, &v);
	assert_true(dmarc_record_format(&v, &f, &info, line, sizeof(line)) >
		    0);
	assert_string_equal(line,
			    "v=1 time=1970-01-01T00:00:00Z ip=2001:db8::1 "
			    "header_from=example.org envelope_from=\"\" "
			    "policy_domain=\"\" p=\"\" sp=\"\" pct=\"\" "
			    "adkim=\"\" aspf=\"\" disposition=none "
			    "dmarc=none dkim=\"\" spf_domain=h.example "
			    "spf=none\n");
}

/* Two appends give two whole lines; a missing directory is an error. */
static void
test_record_append(void **state)
{
	struct dkim_sig_result sigs[2];
	struct dmarc_record_info info;
	struct dmarc_found f;
	struct dmarc_verdict v;
	char dir[] = "/tmp/test_dmarc.XXXXXX", path[256], buf[8192], *err;
	struct stat st;
	mode_t mask;
	size_t one;
	ssize_t n;
	char *nl;
	int fd;

	(void)state;
	sample_message(&f, &v, sigs, &info);
	assert_non_null(mkdtemp(dir));
	err = NULL;
	assert_int_equal(dmarc_record_append(dir, &v, &f, &info, &err), -1);
	assert_non_null(err);
	assert_non_null(strstr(err, "records.log"));
	free(err);
	snprintf(path, sizeof(path), "%s/dmarc", dir);
	assert_int_equal(mkdir(path, 0750), 0);
	err = NULL;
	assert_int_equal(dmarc_record_append(dir, &v, &f, &info, &err), 0);
	assert_int_equal(dmarc_record_append(dir, &v, &f, &info, &err), 0);
	assert_null(err);
	snprintf(path, sizeof(path), "%s/dmarc/records.log", dir);
	assert_int_equal(stat(path, &st), 0);
	mask = umask(0);
	umask(mask);
	assert_int_equal(st.st_mode & 07777, 0640 & ~mask);
	assert_true((fd = open(path, O_RDONLY)) >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n > 0);
	buf[n] = '\0';
	/* two equal lines, each ending in its newline */
	nl = strchr(buf, '\n');
	assert_non_null(nl);
	one = (size_t)(nl + 1 - buf);
	assert_int_equal(one * 2, (size_t)n);
	assert_memory_equal(buf, buf + one, one);
	assert_true(buf[n - 1] == '\n');
	snprintf(path, sizeof(path), "%s/dmarc/records.log", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/dmarc", dir);
	rmdir(path);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_org_domain),
		cmocka_unit_test(test_aligned),
		cmocka_unit_test(test_evaluate),
		cmocka_unit_test(test_evaluate_no_record),
		cmocka_unit_test(test_sample),
		cmocka_unit_test(test_result_names),
		cmocka_unit_test(test_record_format),
		cmocka_unit_test(test_record_format_none),
		cmocka_unit_test(test_record_append),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
