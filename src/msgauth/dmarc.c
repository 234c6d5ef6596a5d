/*
 * DMARC (RFC 7489): the organizational domain through libpsl, policy
 * discovery over net/dns, alignment and the disposition; see dmarc.h for
 * the contract. The record parser is mail/dmarc_record.c; the aggregate-
 * report record store is dmarc_store.c.
 *
 * RFC 7489 is followed, not DMARCbis: the organizational domain comes
 * from the Public Suffix List (DMARCbis walks the DNS tree instead),
 * pct= is honoured (DMARCbis drops it for t=), and there is no np=.
 */
#include <libpsl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgauth/dmarc.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "net/dns.h"

#define TXT_MAX 4096 /* a DMARC record longer than this is ignored */

/* A bounded copy, cut if it does not fit (size > 0). */
static void
copy(char *dst, const char *src, size_t size)
{
	size_t n = strnlen(src, size - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

const char *
dmarc_result_name(enum dmarc_result r)
{
	switch (r) {
	case DMARC_PASS:
		return "pass";
	case DMARC_FAIL:
		return "fail";
	case DMARC_TEMPERROR:
		return "temperror";
	case DMARC_PERMERROR:
		return "permerror";
	default:
		return "none";
	}
}

/* ---- the Public Suffix List ------------------------------------------- */

/* One per process: loaded once, never freed (the process's lifetime). */
static const psl_ctx_t *psl;
static bool psl_tried;

int
dmarc_psl_init(char **error_r)
{
	if (!psl_tried) {
		psl_tried = true;
		/* psl_latest(NULL): the newer of Debian's
		 * /usr/share/publicsuffix file and libpsl's built-in copy
		 * of the same package's list */
		psl = psl_latest(NULL);
		if (psl == NULL)
			psl = psl_builtin();
		if (psl == NULL)
			log_event(LOG_ERR, "dmarc", "psl-missing",
			          LF_STR("file", psl_dist_filename()));
	}
	if (psl == NULL) {
		*error_r = xasprintf("dmarc: no Public Suffix List (%s; "
		                     "install the publicsuffix package)",
		                     psl_dist_filename());
		return -1;
	}
	return 0;
}

/* Lower case, one final dot dropped, into out; -1 if it does not fit. */
static int
lower_name(const char *in, char *out, size_t size)
{
	size_t n = strlen(in), i;

	if (n > 0 && in[n - 1] == '.')
		n--;
	if (n >= size)
		return -1;
	for (i = 0; i < n; i++)
		out[i] = (in[i] >= 'A' && in[i] <= 'Z') ? in[i] + 32 : in[i];
	out[n] = '\0';
	return 0;
}

static bool
ip_like(const char *name)
{
	const char *last = strrchr(name, '.');

	if (strchr(name, ':') != NULL || strchr(name, '[') != NULL)
		return true;
	last = last != NULL ? last + 1 : name;
	if (*last == '\0')
		return false;
	return strspn(last, "0123456789") == strlen(last);
}

int
dmarc_org_domain(const char *domain, char *out, size_t size)
{
	char name[DNS_NAME_MAX + 2], *err = NULL;
	const char *reg = NULL;

	if (lower_name(domain, name, sizeof(name)) < 0) {
		/* longer than any domain: not looked up, itself */
		return lower_name(domain, out, size);
	}
	if (!psl_tried && dmarc_psl_init(&err) < 0)
		free(err);
	if (psl != NULL && name[0] != '\0' && !ip_like(name))
		reg = psl_registrable_domain(psl, name);
	if (reg == NULL)
		reg = name;
	if (strlen(reg) >= size)
		return -1;
	memcpy(out, reg, strlen(reg) + 1);
	return 0;
}

bool
dmarc_aligned(const char *a, const char *b, bool strict)
{
	char la[DNS_NAME_MAX + 2], lb[DNS_NAME_MAX + 2];
	char oa[DNS_NAME_MAX + 2], ob[DNS_NAME_MAX + 2];

	if (a == NULL || b == NULL || lower_name(a, la, sizeof(la)) < 0 ||
	    lower_name(b, lb, sizeof(lb)) < 0 || la[0] == '\0' || lb[0] == '\0')
		return false;
	if (strcmp(la, lb) == 0)
		return true;
	if (strict)
		return false;
	if (dmarc_org_domain(la, oa, sizeof(oa)) < 0 ||
	    dmarc_org_domain(lb, ob, sizeof(ob)) < 0)
		return false;
	return strcmp(oa, ob) == 0;
}

/* ---- policy discovery (RFC 7489 6.6.3) -------------------------------- */

struct dmarc_lookup {
	struct dns_resolver *r;
	struct dns_query *q;
	unsigned timeout_ms;
	bool at_org; /* the second lookup is under way */
	struct dmarc_found f;
	dmarc_found_cb *cb;
	void *arg;
};

static void lookup_answer(struct dns_answer *a, void *arg);

static void
lookup_query(struct dmarc_lookup *l, const char *domain)
{
	char name[DNS_NAME_MAX + 16];

	copy(l->f.policy_domain, domain, sizeof(l->f.policy_domain));
	/* an empty or too long a name is refused by dns_lookup: INVALID
	 * (and "_dmarc." alone would be a valid name) */
	if (domain[0] == '\0')
		name[0] = '\0';
	else
		snprintf(name, sizeof(name), "_dmarc.%s", domain);
	l->q =
	    dns_lookup(l->r, name, DNS_T_TXT, l->timeout_ms, lookup_answer, l);
}

static void
lookup_done(struct dmarc_lookup *l, enum dmarc_result status,
            const char *reason)
{
	l->f.status = status;
	l->f.at_org = l->at_org;
	copy(l->f.reason, reason, sizeof(l->f.reason));
	l->cb(&l->f, l->arg);
	free(l);
}

/*
 * The DMARC records among the answer's TXT records: their number, the
 * first one in f->rec (rc 1 valid, -1 invalid with why).
 */
static size_t
scan_records(const struct dns_answer *a, struct dmarc_found *f, int *rc_r,
             char *why, size_t size)
{
	struct dmarc_record rec;
	char *txt = xmalloc(TXT_MAX + 1), w[128];
	size_t i, n = 0, len;
	int rc;

	for (i = 0; i < a->nrr; i++) {
		if (dns_txt_rdata(a->rr[i], a->rrlen[i], txt, TXT_MAX + 1,
		                  &len) < 0)
			continue;
		if ((rc = dmarc_record_parse(txt, len, &rec, w, sizeof(w))) ==
		    0)
			continue;
		if (n++ == 0) {
			f->rec = rec;
			*rc_r = rc;
			snprintf(why, size, "%s", w);
		}
	}
	free(txt);
	return n;
}

static void
lookup_answer(struct dns_answer *a, void *arg)
{
	struct dmarc_lookup *l = arg;
	char why[128], reason[640];
	size_t n = 0;
	int rc = 0;

	l->q = NULL;
	if (a->status == DNS_ANS_TEMPFAIL) {
		snprintf(reason, sizeof(reason), "looking up _dmarc.%s: %s",
		         l->f.policy_domain, a->error);
		dns_answer_free(&a);
		lookup_done(l, DMARC_TEMPERROR, reason);
		return;
	}
	if (a->status == DNS_ANS_INVALID) {
		dns_answer_free(&a);
		lookup_done(l, DMARC_PERMERROR, "invalid From domain");
		return;
	}
	if (a->status == DNS_ANS_OK)
		n = scan_records(a, &l->f, &rc, why, sizeof(why));
	dns_answer_free(&a);
	if (n == 0 && !l->at_org &&
	    strcmp(l->f.org_domain, l->f.from_domain) != 0) {
		l->at_org = true;
		lookup_query(l, l->f.org_domain);
		return;
	}
	if (n == 0)
		lookup_done(l, DMARC_NONE, "no DMARC record");
	else if (n > 1)
		lookup_done(l, DMARC_NONE, "several DMARC records");
	else if (rc < 0) {
		snprintf(reason, sizeof(reason), "invalid DMARC record: %s",
		         why);
		lookup_done(l, DMARC_PERMERROR, reason);
	} else
		lookup_done(l, DMARC_PASS, "");
}

struct dmarc_lookup *
dmarc_lookup_start(struct dns_resolver *r, const char *from_domain,
                   unsigned timeout_ms, dmarc_found_cb *cb, void *arg)
{
	struct dmarc_lookup *l = xcalloc(1, sizeof(*l));

	l->r = r;
	l->timeout_ms = timeout_ms;
	l->cb = cb;
	l->arg = arg;
	if (lower_name(from_domain, l->f.from_domain,
	               sizeof(l->f.from_domain)) < 0 ||
	    dmarc_org_domain(l->f.from_domain, l->f.org_domain,
	                     sizeof(l->f.org_domain)) < 0) {
		/* longer than any name: dns_lookup answers INVALID */
		snprintf(l->f.from_domain, sizeof(l->f.from_domain), "%.*s",
		         DNS_NAME_MAX + 1, from_domain);
		copy(l->f.org_domain, l->f.from_domain,
		     sizeof(l->f.org_domain));
	}
	lookup_query(l, l->f.from_domain);
	return l;
}

void
dmarc_lookup_cancel(struct dmarc_lookup *l)
{
	if (l == NULL)
		return;
	dns_query_cancel(l->q);
	free(l);
}

/* ---- the verdict (RFC 7489 6.6.2, 6.6.4) ------------------------------ */

static enum dmarc_policy
sampled(enum dmarc_policy p, unsigned pct, unsigned sample)
{
	if (sample < pct)
		return p;
	/* not sampled: the next less strict policy (6.3 "pct") */
	return p == DMARC_P_REJECT ? DMARC_P_QUARANTINE : DMARC_P_NONE;
}

unsigned
dmarc_sample(void)
{
	return arc4random_uniform(100);
}

/* DKIM: 1 an aligned pass, 0 none; *temp_r an aligned temperror. */
static bool
dkim_aligned(const struct dmarc_found *f, const struct dkim_sig_result *sigs,
             size_t nsigs, bool *temp_r)
{
	bool pass = false;
	size_t i;

	for (i = 0; i < nsigs; i++) {
		if (sigs[i].result != DKIM_PASS &&
		    sigs[i].result != DKIM_TEMPERROR)
			continue;
		if (!dmarc_aligned(sigs[i].domain, f->from_domain,
		                   f->rec.adkim_strict))
			continue;
		if (sigs[i].result == DKIM_PASS)
			pass = true;
		else
			*temp_r = true;
	}
	return pass;
}

static void
verdict_reason(struct dmarc_verdict *v, bool spf_temp, bool dkim_temp)
{
	const char *why;

	switch (v->result) {
	case DMARC_PASS:
		why = v->spf_aligned && v->dkim_aligned ? "SPF and DKIM aligned"
		      : v->spf_aligned                  ? "SPF aligned"
		                                        : "DKIM aligned";
		break;
	case DMARC_TEMPERROR:
		why = spf_temp && dkim_temp
		          ? "aligned SPF and DKIM had temporary errors"
		      : spf_temp ? "aligned SPF had a temporary error"
		                 : "aligned DKIM had a temporary error";
		break;
	default:
		why = "neither SPF nor DKIM aligned with a pass";
		break;
	}
	copy(v->reason, why, sizeof(v->reason));
}

void
dmarc_evaluate(const struct dmarc_found *f, enum spf_result spf,
               const char *spf_domain, const struct dkim_sig_result *sigs,
               size_t nsigs, unsigned sample, struct dmarc_verdict *v)
{
	bool spf_ok, spf_temp = false, dkim_temp = false;

	memset(v, 0, sizeof(*v));
	copy(v->from_domain, f->from_domain, sizeof(v->from_domain));
	v->policy = DMARC_P_UNSET;
	v->disposition = DMARC_P_NONE;
	if (f->status != DMARC_PASS) {
		v->result =
		    f->status == DMARC_FAIL ? DMARC_PERMERROR : f->status;
		copy(v->policy_domain,
		     f->status == DMARC_NONE ? "" : f->policy_domain,
		     sizeof(v->policy_domain));
		copy(v->reason, f->reason, sizeof(v->reason));
		return;
	}
	copy(v->policy_domain, f->policy_domain, sizeof(v->policy_domain));
	v->policy =
	    f->at_org && f->rec.sp != DMARC_P_UNSET ? f->rec.sp : f->rec.p;
	spf_ok = dmarc_aligned(spf_domain, f->from_domain, f->rec.aspf_strict);
	v->spf_aligned = spf_ok && spf == SPF_PASS;
	spf_temp = spf_ok && spf == SPF_TEMPERROR;
	v->dkim_aligned = dkim_aligned(f, sigs, nsigs, &dkim_temp);
	if (v->spf_aligned || v->dkim_aligned)
		v->result = DMARC_PASS;
	else if (spf_temp || dkim_temp)
		v->result = DMARC_TEMPERROR;
	else
		v->result = DMARC_FAIL;
	if (v->result != DMARC_PASS)
		v->disposition = sampled(v->policy, f->rec.pct, sample);
	verdict_reason(v, spf_temp, dkim_temp);
}
