/*
 * SPF check_host() (RFC 7208 4, 5, 6) over net/dns, asynchronously: a
 * state machine driven by DNS answers. Frames are check_host() levels
 * (include pushes one, redirect replaces the current one, so an exp=
 * of the original domain is not used after a redirect and the one of an
 * included domain never is). One DNS query is outstanding at a time;
 * the whole check is bounded by a timer. See msgauth/spf.h.
 */
#include <arpa/inet.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "lib/xalloc.h"
#include "mail/spf_record.h"
#include "msgauth/spf.h"
#include "net/dns.h"

#define DEPTH_MAX 12		/* 10 include/redirect terms + the top */
#define DNS_TERMS_MAX 10	/* RFC 7208 4.6.4 */
#define VOID_MAX 2
#define NAMES_MAX 10		/* MX or PTR names per term */
#define TIMEOUT_DEFAULT_MS 20000

enum step {
	ST_RECORD,		/* the TXT lookup of a frame's domain */
	ST_A,			/* a: the target's addresses */
	ST_MX,			/* mx: the MX names */
	ST_MX_ADDR,		/* mx: one name's addresses */
	ST_PTR,			/* ptr: the client's PTR names */
	ST_PTR_ADDR,		/* ptr: one name's addresses */
	ST_EXISTS,		/* exists: an A record */
	ST_PVAL,		/* %{p}: the PTR names */
	ST_PVAL_ADDR,		/* %{p}: one name's addresses */
	ST_EXP,			/* exp=: the explanation TXT */
};

struct frame {
	char domain[DNS_NAME_MAX + 1];
	struct spf_record *rec;
	size_t next;		/* the term being evaluated */
	bool redirected;	/* reached by redirect=: none is permerror */
};

struct spf_check {
	struct dns_resolver *r;
	struct event *timer;	/* the whole check */
	struct event *later;	/* finishing from spf_check_start */
	spf_done_cb *cb;
	void *arg;
	unsigned timeout_ms;

	char helo[512];
	char receiver[DNS_NAME_MAX + 1];
	char local[sizeof(((struct spf_outcome *)0)->sender)];
	char sender_domain[DNS_NAME_MAX + 1];
	char ip_text[64];
	char ptr_name[DNS_NAME_MAX + 1];
	bool have_ptr;
	void (*resume)(struct spf_check *c);	/* after %{p} is known */
	int family;
	uint8_t addr[16];

	struct frame fr[DEPTH_MAX];
	int depth;		/* index of the current frame */
	unsigned dns_terms, voids;

	enum step step;
	struct dns_query *q;
	char target[DNS_NAME_MAX + 1];
	char names[NAMES_MAX][DNS_NAME_MAX + 1];
	size_t nnames, iname;
	bool pval_found_any;
	char *exp_text;		/* the explanation TXT, to expand */
	size_t exp_len;

	struct spf_outcome out;
};

static void run(struct spf_check *c);
static void ptr_start(struct spf_check *c, enum step st,
		      void (*resume)(struct spf_check *c));

const char *
spf_result_name(enum spf_result r)
{
	static const char *const names[] = {
		[SPF_NONE] = "none",		[SPF_NEUTRAL] = "neutral",
		[SPF_PASS] = "pass",		[SPF_FAIL] = "fail",
		[SPF_SOFTFAIL] = "softfail",	[SPF_TEMPERROR] = "temperror",
		[SPF_PERMERROR] = "permerror",
	};

	return (unsigned)r < sizeof(names) / sizeof(names[0]) ? names[r]
							       : "permerror";
}

/* ---- ending ----------------------------------------------------------- */

static void
check_free(struct spf_check *c)
{
	int i;

	dns_query_cancel(c->q);
	free(c->exp_text);
	for (i = 0; i < DEPTH_MAX; i++)
		spf_record_free(&c->fr[i].rec);
	if (c->timer != NULL)
		event_free(c->timer);
	if (c->later != NULL)
		event_free(c->later);
	free(c);
}

static void
finish(struct spf_check *c, enum spf_result res, const char *why)
{
	spf_done_cb *cb = c->cb;
	void *arg = c->arg;
	struct spf_outcome out = c->out;

	out.result = res;
	if (why != NULL)
		snprintf(out.reason, sizeof(out.reason), "%s", why);
	if (res == SPF_TEMPERROR || res == SPF_PERMERROR)
		out.mechanism[0] = '\0';
	check_free(c);		/* cancels a lookup still out (timeout) */
	cb(&out, arg);
}

static void
finish_cb(evutil_socket_t fd, short what, void *arg)
{
	struct spf_check *c = arg;

	(void)fd;
	(void)what;
	finish(c, c->out.result, NULL);
}

static void
timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	finish(arg, SPF_TEMPERROR, "the SPF check timed out");
}

/* ---- helpers -------------------------------------------------------- */

/* Copies what fits (names here are bounded before they arrive). */
static void
scopy(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void
fill_vars(const struct spf_check *c, struct spf_macro_vars *v)
{
	memset(v, 0, sizeof(*v));
	v->sender = c->out.sender;
	v->local = c->local;
	v->sender_domain = c->sender_domain;
	v->domain = c->fr[c->depth].domain;
	v->helo = c->helo;
	v->receiver = c->receiver;
	v->ptr = c->have_ptr ? c->ptr_name : NULL;
	v->family = c->family;
	memcpy(v->addr, c->addr, sizeof(v->addr));
	v->now = (int64_t)time(NULL);
}

/* Expands a domain-spec (NULL: the current domain) into c->target. */
static int
expand_target(struct spf_check *c, const char *spec)
{
	struct spf_macro_vars v;
	char buf[SPF_MACRO_OUT_MAX];
	const char *err;

	if (spec == NULL) {
		scopy(c->target, sizeof(c->target), c->fr[c->depth].domain);
		return 0;
	}
	fill_vars(c, &v);
	if (spf_macro_expand(spec, strlen(spec), &v, SPF_MACRO_DOMAIN, buf,
			     sizeof(buf), &err) < 0) {
		finish(c, SPF_PERMERROR, err);
		return -1;
	}
	spf_domain_truncate(buf);
	scopy(c->target, sizeof(c->target), buf);
	return 0;
}

static bool
needs_ptr(const struct spf_check *c, const char *spec)
{
	bool uses_p = false;
	const char *err;

	if (spec == NULL || c->have_ptr)
		return false;
	(void)spf_macro_check(spec, strlen(spec), SPF_MACRO_EXP, &uses_p,
			      &err);
	return uses_p;
}

static void answer_cb(struct dns_answer *a, void *arg);

static void
lookup(struct spf_check *c, enum step st, const char *name, int rrtype)
{
	c->step = st;
	/* the whole-check timer is the bound; a lookup's own is later */
	c->q = dns_lookup(c->r, name, rrtype, c->timeout_ms + 1000, answer_cb,
			  c);
}

static int
addr_type(const struct spf_check *c)
{
	return c->family == AF_INET ? DNS_T_A : DNS_T_AAAA;
}

/* Whether an A/AAAA rdata is within prefix bits of the client. */
static bool
addr_match(const struct spf_check *c, const unsigned char *rd, size_t len,
	   unsigned prefix)
{
	size_t n = c->family == AF_INET ? 4 : 16;
	unsigned full = prefix / 8, rest = prefix % 8;

	if (len != n || prefix > n * 8)
		return false;
	if (memcmp(rd, c->addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((rd[full] ^ c->addr[full]) & (0xff00 >> rest) & 0xff) == 0;
}

static bool
answer_match(const struct spf_check *c, const struct dns_answer *a,
	     unsigned prefix)
{
	size_t i;

	for (i = 0; a->status == DNS_ANS_OK && i < a->nrr; i++)
		if (addr_match(c, a->rr[i], a->rrlen[i], prefix))
			return true;
	return false;
}

static unsigned
term_prefix(const struct spf_check *c, const struct spf_term *t)
{
	return c->family == AF_INET ? t->cidr4 : t->cidr6;
}

static struct spf_term *
cur_term(struct spf_check *c)
{
	struct frame *f = &c->fr[c->depth];

	return &f->rec->terms[f->next];
}

/* ---- results of terms and frames ------------------------------------ */

static enum spf_result
qual_result(enum spf_qualifier q)
{
	switch (q) {
	case SPF_Q_PASS: return SPF_PASS;
	case SPF_Q_FAIL: return SPF_FAIL;
	case SPF_Q_SOFTFAIL: return SPF_SOFTFAIL;
	case SPF_Q_NEUTRAL: break;
	}
	return SPF_NEUTRAL;
}

static void frame_result(struct spf_check *c, enum spf_result res);

static void
term_done(struct spf_check *c, bool match)
{
	const struct spf_term *t = cur_term(c);

	if (!match) {
		c->fr[c->depth].next++;
		run(c);
		return;
	}
	if (c->depth == 0)
		snprintf(c->out.mechanism, sizeof(c->out.mechanism), "%s",
			 t->text);
	frame_result(c, qual_result(t->qual));
}

static void
exp_start(struct spf_check *c)
{
	const char *spec = c->fr[0].rec->exp;

	if (needs_ptr(c, spec)) {
		ptr_start(c, ST_PVAL, exp_start);
		return;
	}
	if (expand_target(c, spec) < 0)
		return;
	lookup(c, ST_EXP, c->target, DNS_T_TXT);
}

/*
 * A frame has its result: the check's, or its include term's (an
 * include matches on pass only; errors and "none" inside an include
 * have ended the check already, as temperror or permerror).
 */
static void
frame_result(struct spf_check *c, enum spf_result res)
{
	if (c->depth == 0) {
		c->out.result = res;
		if (res == SPF_FAIL && c->fr[0].rec != NULL &&
		    c->fr[0].rec->exp != NULL) {
			exp_start(c);
			return;
		}
		finish(c, res, NULL);
		return;
	}
	spf_record_free(&c->fr[c->depth].rec);
	c->depth--;
	term_done(c, res == SPF_PASS);
}

/* Looks up the SPF record of c->target for frame depth. */
static void
frame_start(struct spf_check *c, int depth, bool redirected)
{
	struct frame *f = &c->fr[depth];

	spf_record_free(&f->rec);
	memset(f, 0, sizeof(*f));
	snprintf(f->domain, sizeof(f->domain), "%s", c->target);
	f->redirected = redirected;
	c->depth = depth;
	lookup(c, ST_RECORD, f->domain, DNS_T_TXT);
}

/* No term matched: redirect=, else neutral (RFC 7208 4.7, 6.1). */
static void
frame_end(struct spf_check *c)
{
	const struct spf_record *rec = c->fr[c->depth].rec;

	if (rec->redirect == NULL || rec->has_all) {
		if (c->depth == 0)
			snprintf(c->out.mechanism, sizeof(c->out.mechanism),
				 "default");
		frame_result(c, SPF_NEUTRAL);
		return;
	}
	if (needs_ptr(c, rec->redirect)) {
		ptr_start(c, ST_PVAL, frame_end);
		return;
	}
	if (++c->dns_terms > DNS_TERMS_MAX) {
		finish(c, SPF_PERMERROR, "more than 10 DNS-querying terms");
		return;
	}
	if (expand_target(c, rec->redirect) < 0)
		return;
	frame_start(c, c->depth, true);
}

/* ---- evaluation ------------------------------------------------------ */

static void
term_start(struct spf_check *c, const struct spf_term *t)
{
	if (expand_target(c, t->spec) < 0)
		return;
	switch (t->mech) {
	case SPF_M_INCLUDE:
		if (c->depth + 1 >= DEPTH_MAX) {
			finish(c, SPF_PERMERROR, "includes nested too deep");
			return;
		}
		frame_start(c, c->depth + 1, false);
		return;
	case SPF_M_A: lookup(c, ST_A, c->target, addr_type(c)); return;
	case SPF_M_MX: lookup(c, ST_MX, c->target, DNS_T_MX); return;
	case SPF_M_PTR: ptr_start(c, ST_PTR, NULL); return;
	case SPF_M_EXISTS: lookup(c, ST_EXISTS, c->target, DNS_T_A); return;
	default: break;
	}
	finish(c, SPF_PERMERROR, "internal: not a DNS term");
}

/* Evaluates the current frame's terms from f->next on. */
static void
run(struct spf_check *c)
{
	struct frame *f = &c->fr[c->depth];
	const struct spf_term *t;

	for (; f->next < f->rec->nterms; f->next++) {
		t = &f->rec->terms[f->next];
		switch (t->mech) {
		case SPF_M_ALL:
			term_done(c, true);
			return;
		case SPF_M_IP4:
		case SPF_M_IP6:
			if ((t->mech == SPF_M_IP4) == (c->family == AF_INET) &&
			    addr_match(c, t->addr, c->family == AF_INET ? 4 : 16,
				       term_prefix(c, t))) {
				term_done(c, true);
				return;
			}
			continue;
		default:
			break;
		}
		if (needs_ptr(c, t->spec)) {
			ptr_start(c, ST_PVAL, run);
			return;
		}
		if (++c->dns_terms > DNS_TERMS_MAX) {
			finish(c, SPF_PERMERROR,
			       "more than 10 DNS-querying terms");
			return;
		}
		term_start(c, t);
		return;
	}
	frame_end(c);
}

/* ---- answers ---------------------------------------------------------- */

static bool
voids_exceeded(struct spf_check *c)
{
	if (++c->voids <= VOID_MAX)
		return false;
	finish(c, SPF_PERMERROR, "more than 2 void DNS lookups");
	return true;
}

static void
dns_error(struct spf_check *c, const struct dns_answer *a)
{
	char why[sizeof(c->out.reason)];

	snprintf(why, sizeof(why), "DNS error: %.200s", a->error);
	finish(c, SPF_TEMPERROR, why);
}

/* A term's lookup came back empty (NODATA, NXDOMAIN, a name that cannot
 * exist): a void lookup and no match. */
static void
term_void(struct spf_check *c)
{
	if (!voids_exceeded(c))
		term_done(c, false);
}

/* Counts the SPF records among TXT answers (rdata that does not parse
 * is not one); *rec_r is the text of the last (caller frees). */
static size_t
spf_records(const struct dns_answer *a, char **rec_r, size_t *len_r)
{
	size_t i, n = 0, len;
	char *buf;

	*rec_r = NULL;
	for (i = 0; a->status == DNS_ANS_OK && i < a->nrr; i++) {
		buf = xmalloc(a->rrlen[i] + 1);
		if (dns_txt_rdata(a->rr[i], a->rrlen[i], buf, a->rrlen[i] + 1,
				  &len) < 0 || !spf_record_is_spf(buf, len)) {
			free(buf);
			continue;
		}
		n++;
		free(*rec_r);
		*rec_r = buf;
		*len_r = len;
	}
	return n;
}

static void
on_record(struct spf_check *c, const struct dns_answer *a)
{
	struct frame *f = &c->fr[c->depth];
	char *txt, why[sizeof(c->out.reason)], err[160];
	size_t n, len = 0;
	int r;

	if (a->status == DNS_ANS_TEMPFAIL) {
		dns_error(c, a);
		return;
	}
	n = spf_records(a, &txt, &len);
	if (n != 1) {
		free(txt);
		snprintf(why, sizeof(why), "%s SPF record for %s",
			 n == 0 ? "no" : "more than one", f->domain);
		finish(c, n == 0 && c->depth == 0 && !f->redirected
			  ? SPF_NONE : SPF_PERMERROR, why);
		return;
	}
	r = spf_record_parse(txt, len, &f->rec, err, sizeof(err));
	free(txt);
	if (r < 0) {
		snprintf(why, sizeof(why), "SPF record of %s: %s", f->domain,
			 err);
		finish(c, SPF_PERMERROR, why);
		return;
	}
	f->next = 0;
	run(c);
}

static void
names_next(struct spf_check *c)
{
	enum step st = c->step;

	if (c->iname < c->nnames) {
		lookup(c, st, c->names[c->iname], addr_type(c));
		return;
	}
	if (st != ST_PVAL_ADDR) {
		term_done(c, false);
		return;
	}
	if (!c->pval_found_any)
		snprintf(c->ptr_name, sizeof(c->ptr_name), "unknown");
	c->have_ptr = true;
	c->resume(c);
}

/*
 * A wire-format name (uncompressed, as libunbound hands rdata out) in
 * text, lower case, no final dot ("" for the root), ending exactly at
 * len. Any label octets that dns_lookup() takes are allowed: an MX or
 * PTR name in SPF need not be a host name ("foo:bar/baz.example.com").
 */
static int
wire_name(const unsigned char *p, size_t len, char *out, size_t size)
{
	size_t i = 0, n = 0, l;

	while (i < len && p[i] != 0) {
		l = p[i++];
		if (l > 63 || i + l > len || n + l + 2 > size)
			return -1;
		if (n > 0)
			out[n++] = '.';
		for (; l > 0; l--, i++) {
			if (p[i] <= ' ' || p[i] >= 0x7f || p[i] == '.')
				return -1;
			out[n++] = (char)(p[i] >= 'A' && p[i] <= 'Z'
					  ? p[i] - 'A' + 'a' : p[i]);
		}
	}
	if (i + 1 != len || n > DNS_NAME_MAX)
		return -1;
	out[n] = '\0';
	return dns_name_valid(out) || n == 0 ? 0 : -1;
}

static void
on_mx(struct spf_check *c, const struct dns_answer *a)
{
	char name[DNS_NAME_MAX + 2];
	size_t i;

	if (a->status == DNS_ANS_TEMPFAIL) {
		dns_error(c, a);
		return;
	}
	if (a->status != DNS_ANS_OK || a->nrr == 0) {
		term_void(c);
		return;
	}
	if (a->nrr > NAMES_MAX) {
		finish(c, SPF_PERMERROR, "more than 10 MX names");
		return;
	}
	c->nnames = c->iname = 0;
	for (i = 0; i < a->nrr; i++)
		if (a->rrlen[i] > 2 &&
		    wire_name(a->rr[i] + 2, a->rrlen[i] - 2, name,
			      sizeof(name)) == 0 && name[0] != '\0')
			scopy(c->names[c->nnames++], sizeof(c->names[0]), name);
	c->step = ST_MX_ADDR;
	names_next(c);
}

static bool
in_domain(const char *name, const char *domain)
{
	size_t n = strlen(name), dl = strlen(domain);

	return strcasecmp(name, domain) == 0 ||
	       (n > dl && name[n - dl - 1] == '.' &&
		strcasecmp(name + n - dl, domain) == 0);
}

/* PTR names, the first 10; for the ptr mechanism only those in the
 * target domain (the others cannot match). */
static void
on_ptr(struct spf_check *c, const struct dns_answer *a)
{
	char name[DNS_NAME_MAX + 2];
	size_t i;

	c->nnames = c->iname = 0;
	for (i = 0; a->status == DNS_ANS_OK && i < a->nrr && i < NAMES_MAX;
	     i++) {
		if (wire_name(a->rr[i], a->rrlen[i], name, sizeof(name)) < 0)
			continue;
		if (c->step == ST_PTR && !in_domain(name, c->target))
			continue;
		scopy(c->names[c->nnames++], sizeof(c->names[0]), name);
	}
	if (c->step == ST_PTR && a->status != DNS_ANS_OK &&
	    a->status != DNS_ANS_TEMPFAIL && voids_exceeded(c))
		return;
	c->step = c->step == ST_PTR ? ST_PTR_ADDR : ST_PVAL_ADDR;
	c->pval_found_any = false;
	names_next(c);
}

static void
on_name_addr(struct spf_check *c, const struct dns_answer *a)
{
	const struct spf_term *t;
	const char *name = c->names[c->iname];

	if (c->step == ST_MX_ADDR) {
		t = cur_term(c);
		if (a->status == DNS_ANS_TEMPFAIL) {
			dns_error(c, a);
			return;
		}
		if (answer_match(c, a, term_prefix(c, t))) {
			term_done(c, true);
			return;
		}
	} else if (answer_match(c, a, c->family == AF_INET ? 32 : 128)) {
		if (c->step == ST_PTR_ADDR) {
			term_done(c, true);
			return;
		}
		if (!c->pval_found_any ||
		    in_domain(name, c->fr[c->depth].domain))
			snprintf(c->ptr_name, sizeof(c->ptr_name), "%s", name);
		if (in_domain(name, c->fr[c->depth].domain))
			c->iname = c->nnames;
		c->pval_found_any = true;
	}
	if (c->iname < c->nnames)
		c->iname++;
	names_next(c);
}

static void
on_a(struct spf_check *c, const struct dns_answer *a)
{
	if (a->status == DNS_ANS_TEMPFAIL) {
		dns_error(c, a);
		return;
	}
	if (a->status != DNS_ANS_OK || a->nrr == 0) {
		term_void(c);
		return;
	}
	if (c->step == ST_EXISTS)
		term_done(c, true);
	else
		term_done(c, answer_match(c, a, term_prefix(c, cur_term(c))));
}

/* The explanation text expanded (errors leave it out). */
static void
exp_expand(struct spf_check *c)
{
	struct spf_macro_vars v;
	const char *err;
	char *buf = xmalloc(SPF_MACRO_OUT_MAX);

	fill_vars(c, &v);
	if (spf_macro_expand(c->exp_text, c->exp_len, &v, SPF_MACRO_EXP, buf,
			     SPF_MACRO_OUT_MAX, &err) == 0)
		scopy(c->out.explanation, sizeof(c->out.explanation), buf);
	free(buf);
	finish(c, SPF_FAIL, NULL);
}

/* exp=: exactly one TXT record, else no explanation (RFC 7208 6.2). */
static void
on_exp(struct spf_check *c, const struct dns_answer *a)
{
	bool uses_p = false;
	const char *err;

	if (a->status != DNS_ANS_OK || a->nrr != 1) {
		finish(c, SPF_FAIL, NULL);
		return;
	}
	c->exp_text = xmalloc(a->rrlen[0] + 1);
	if (dns_txt_rdata(a->rr[0], a->rrlen[0], c->exp_text,
			  a->rrlen[0] + 1, &c->exp_len) < 0 ||
	    spf_macro_check(c->exp_text, c->exp_len, SPF_MACRO_EXP, &uses_p,
			    &err) < 0) {
		finish(c, SPF_FAIL, NULL);
		return;
	}
	if (uses_p && !c->have_ptr)
		ptr_start(c, ST_PVAL, exp_expand);
	else
		exp_expand(c);
}

static void
answer_cb(struct dns_answer *a, void *arg)
{
	struct spf_check *c = arg;

	c->q = NULL;
	switch (c->step) {
	case ST_RECORD: on_record(c, a); break;
	case ST_A:
	case ST_EXISTS: on_a(c, a); break;
	case ST_MX: on_mx(c, a); break;
	case ST_PTR:
	case ST_PVAL: on_ptr(c, a); break;
	case ST_MX_ADDR:
	case ST_PTR_ADDR:
	case ST_PVAL_ADDR: on_name_addr(c, a); break;
	case ST_EXP: on_exp(c, a); break;
	}
	dns_answer_free(&a);
}

static void
ptr_start(struct spf_check *c, enum step st,
	  void (*resume)(struct spf_check *c))
{
	char rev[80];

	c->resume = resume;
	if (dns_reverse_name(c->ip_text, rev, sizeof(rev)) == 0) {
		lookup(c, st, rev, DNS_T_PTR);
		return;
	}
	if (st == ST_PTR) {
		term_done(c, false);
		return;
	}
	snprintf(c->ptr_name, sizeof(c->ptr_name), "unknown");
	c->have_ptr = true;
	resume(c);
}

/* ---- starting ----------------------------------------------------------- */

/* RFC 7208 4.3: a multi-label name with labels of 1-63 octets. */
static bool
domain_ok(const char *d)
{
	const char *p = d, *dot;
	size_t labels = 0;

	if (d[0] == '[' || !dns_name_valid(d))
		return false;
	for (; *p != '\0'; p = dot + 1) {
		dot = strchr(p, '.');
		if (dot == NULL)
			dot = p + strlen(p);
		if (dot == p || dot - p > 63)
			return false;
		labels++;
		if (*dot == '\0')
			break;
	}
	return labels >= 2;
}

static int
client_addr(struct spf_check *c, const char *ip)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
					   0xff, 0xff};

	if (inet_pton(AF_INET, ip, c->addr) == 1)
		c->family = AF_INET;
	else if (inet_pton(AF_INET6, ip, c->addr) == 1) {
		c->family = AF_INET6;
		if (memcmp(c->addr, mapped, sizeof(mapped)) == 0) {
			memmove(c->addr, c->addr + 12, 4);
			c->family = AF_INET;
		}
	} else
		return -1;
	inet_ntop(c->family, c->addr, c->ip_text, sizeof(c->ip_text));
	return 0;
}

/* The identity (RFC 7208 2.4, 4.3): sender, local part, domain. */
static void
set_identity(struct spf_check *c, const struct spf_request *req)
{
	const char *mf = req->mail_from != NULL ? req->mail_from : "";
	const char *at = strrchr(mf, '@');
	size_t dl;

	c->out.identity = mf[0] == '\0' ? "helo" : "mailfrom";
	scopy(c->out.domain, sizeof(c->out.domain),
	      mf[0] == '\0' ? c->helo : at != NULL ? at + 1 : mf);
	if (mf[0] != '\0' && at != NULL && at != mf)
		snprintf(c->local, sizeof(c->local), "%.*s", (int)(at - mf),
			 mf);
	else
		snprintf(c->local, sizeof(c->local), "postmaster");
	dl = strlen(c->out.domain);
	if (dl > 0 && c->out.domain[dl - 1] == '.')
		c->out.domain[dl - 1] = '\0';
	scopy(c->sender_domain, sizeof(c->sender_domain), c->out.domain);
	snprintf(c->out.sender, sizeof(c->out.sender), "%.260s@%.255s",
		 c->local, c->out.domain);
}

struct spf_check *
spf_check_start(struct dns_resolver *r, const struct spf_request *req,
		spf_done_cb *cb, void *arg)
{
	struct spf_check *c = xcalloc(1, sizeof(*c));
	struct event_base *base = dns_resolver_base(r);
	struct timeval tv;

	c->r = r;
	c->cb = cb;
	c->arg = arg;
	c->timeout_ms = req->timeout_ms > 0 ? req->timeout_ms
					    : TIMEOUT_DEFAULT_MS;
	tv.tv_sec = c->timeout_ms / 1000;
	tv.tv_usec = (c->timeout_ms % 1000) * 1000;
	c->timer = evtimer_new(base, timeout_cb, c);
	c->later = evtimer_new(base, finish_cb, c);
	if (c->timer == NULL || c->later == NULL)
		abort();
	evtimer_add(c->timer, &tv);
	snprintf(c->helo, sizeof(c->helo), "%s",
		 req->helo != NULL ? req->helo : "");
	snprintf(c->receiver, sizeof(c->receiver), "%s",
		 req->receiver != NULL ? req->receiver : "");
	set_identity(c, req);
	if (client_addr(c, req->ip != NULL ? req->ip : "") < 0) {
		c->out.result = SPF_PERMERROR;
		snprintf(c->out.reason, sizeof(c->out.reason),
			 "the client address is not an IP address");
	} else if (!domain_ok(c->out.domain)) {
		c->out.result = SPF_NONE;
		snprintf(c->out.reason, sizeof(c->out.reason),
			 "not a domain name that can have SPF");
	} else {
		scopy(c->target, sizeof(c->target), c->out.domain);
		frame_start(c, 0, false);
		return c;
	}
	event_active(c->later, EV_TIMEOUT, 0);
	return c;
}

void
spf_check_cancel(struct spf_check *c)
{
	if (c != NULL)
		check_free(c);
}
