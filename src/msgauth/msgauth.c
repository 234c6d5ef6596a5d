/*
 * One message's checks composed (see msgauth.h): the header split into
 * fields for the DKIM verifier and the From domain, the lookups started
 * as early as their input is known, the verdict once they are all in.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "lib/cidr.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "mail/mail_header.h"
#include "msgauth/msgauth.h"

/* A header field longer than this is not given to the DKIM verifier (a
 * signature over it fails). */
#define FIELD_MAX (64 * 1024)

/*
 * The header section split into whole fields as the content streams in
 * (a field is complete when the next line does not start with a blank),
 * and the From field's domains noted. Shared by the verifying side and
 * the signing side.
 */
struct hsplit {
	bool in_header, at_bol;
	char *field;
	size_t field_len, field_cap;
	bool field_long;
	enum msgauth_from from;
	char from_domain[256];
	/* the verifier or the signer */
	void (*on_field)(void *arg, const char *f, size_t n);
	void (*on_end)(void *arg);
	void (*on_body)(void *arg, const char *p, size_t n);
	void *arg;
};

struct msgauth {
	struct event_base *base;
	struct dns_resolver *r;
	const struct msgauth_config *cf;
	char *ip, *helo;
	char *mail_from;
	struct spf_check *spf;
	struct dkim_verifier *dkim;
	struct dmarc_lookup *dmarc;
	struct dmarc_found found;
	bool spf_pending, dkim_pending, dmarc_pending;
	struct hsplit hs;	/* the header section, split into fields */
	/* the end */
	msgauth_done_cb *cb;
	void *arg;
	struct event *timer;	/* twice the timeout: stop waiting */
	struct event *later;	/* cb from the loop when nothing waits */
	struct msgauth_results res;
};

/* ---- SPF -------------------------------------------------------------- */

static void check_done(struct msgauth *m);

static void
spf_cb(const struct spf_outcome *o, void *arg)
{
	struct msgauth *m = arg;

	m->spf = NULL;
	m->spf_pending = false;
	m->res.spf = *o;
	m->res.spf_done = true;
	check_done(m);
}

/* ---- the header ------------------------------------------------------- */

/* The domain of addr, lower case, into out; false if it has none. */
static bool
addr_domain(const char *addr, char *out, size_t size)
{
	const char *at = strrchr(addr, '@');

	if (at == NULL || at[1] == '\0' || strlen(at + 1) >= size)
		return false;
	snprintf(out, size, "%s", at + 1);
	ascii_lower(out);
	return true;
}

/* A From field: its addresses' domains join what earlier ones gave. */
static void
from_field(struct hsplit *h, const struct mail_header_field *f)
{
	struct mail_address_list l;
	const char *err;
	char *v = mail_header_unfold(f), dom[256];

	if (h->from == MSGAUTH_FROM_BAD)
		goto out;
	if (mail_address_list_parse(v, strlen(v), &l, &err) < 0) {
		h->from = MSGAUTH_FROM_BAD;
		goto out;
	}
	if (l.n == 0)
		h->from = MSGAUTH_FROM_BAD;
	for (size_t i = 0; i < l.n && h->from != MSGAUTH_FROM_BAD; i++) {
		if (!addr_domain(l.v[i].addr, dom, sizeof(dom)))
			h->from = MSGAUTH_FROM_BAD;
		else if (h->from == MSGAUTH_FROM_NONE) {
			h->from = MSGAUTH_FROM_ONE;
			memcpy(h->from_domain, dom, sizeof(dom));
		} else if (strcmp(dom, h->from_domain) != 0)
			h->from = MSGAUTH_FROM_MIXED;
	}
	mail_address_list_clear(&l);
out:
	free(v);
}

static void
hsplit_init(struct hsplit *h, void *arg)
{
	h->in_header = h->at_bol = true;
	h->arg = arg;
}

/* The field collected so far is complete. */
static void
field_end(struct hsplit *h)
{
	struct mail_header_iter it;
	struct mail_header_field f;
	const char *err;

	if (h->field_len > 0 && !h->field_long) {
		h->on_field(h->arg, h->field, h->field_len);
		mail_header_iter_init(&it, h->field, h->field_len);
		if (mail_header_next(&it, &f, &err) == 1 &&
		    mail_header_name_is(&f, "From"))
			from_field(h, &f);
	}
	h->field_len = 0;
	h->field_long = false;
}

static void
field_add(struct hsplit *h, const char *p, size_t n)
{
	if (h->field_long || h->field_len + n > FIELD_MAX) {
		h->field_long = true;
		return;
	}
	if (h->field_len + n > h->field_cap) {
		h->field_cap = h->field_len + n + 1024;
		h->field = xreallocarray(h->field, h->field_cap, 1);
	}
	memcpy(h->field + h->field_len, p, n);
	h->field_len += n;
}

/* The end of the header section (the empty line, or the end of data). */
static void
hsplit_header_end(struct hsplit *h)
{
	if (!h->in_header)
		return;
	field_end(h);
	h->in_header = false;
	h->on_end(h->arg);
}

static void
hsplit_feed(struct hsplit *h, const char *p, size_t n)
{
	while (n > 0 && h->in_header) {
		const char *lf;
		size_t k;

		if (h->at_bol) {
			if (p[0] == '\n') {
				hsplit_header_end(h);
				p++;
				n--;
				break;
			}
			if (p[0] != ' ' && p[0] != '\t')
				field_end(h);
			h->at_bol = false;
		}
		lf = memchr(p, '\n', n);
		k = lf != NULL ? (size_t)(lf - p) + 1 : n;
		field_add(h, p, k);
		h->at_bol = lf != NULL;
		p += k;
		n -= k;
	}
	if (n > 0)
		h->on_body(h->arg, p, n);
}

/* ---- verifying ---------------------------------------------------------- */

static void
dmarc_cb(const struct dmarc_found *f, void *arg)
{
	struct msgauth *m = arg;

	m->dmarc = NULL;
	m->dmarc_pending = false;
	m->found = *f;
	check_done(m);
}

static void
verify_field(void *arg, const char *f, size_t n)
{
	struct msgauth *m = arg;

	if (m->dkim != NULL)
		dkim_verifier_header(m->dkim, f, n);
}

/* The header is complete; DMARC's lookup starts. */
static void
verify_header_end(void *arg)
{
	struct msgauth *m = arg;

	m->res.from = m->hs.from;
	memcpy(m->res.from_domain, m->hs.from_domain,
	       sizeof(m->res.from_domain));
	if (m->dkim != NULL)
		dkim_verifier_header_end(m->dkim);
	if (m->cf->dmarc && m->res.from == MSGAUTH_FROM_ONE) {
		m->dmarc_pending = true;
		m->dmarc = dmarc_lookup_start(m->r, m->res.from_domain,
					      m->cf->timeout_ms, dmarc_cb, m);
	}
}

static void
verify_body(void *arg, const char *p, size_t n)
{
	struct msgauth *m = arg;

	if (m->dkim != NULL)
		dkim_verifier_body(m->dkim, p, n);
}

void
msgauth_feed(struct msgauth *m, const char *p, size_t n)
{
	hsplit_feed(&m->hs, p, n);
}

struct msgauth *
msgauth_new(struct event_base *base, struct dns_resolver *r,
	    const struct msgauth_config *cf, const char *ip, const char *helo)
{
	struct msgauth *m = xcalloc(1, sizeof(*m));

	m->base = base;
	m->r = r;
	m->cf = cf;
	m->ip = xstrdup(ip);
	m->helo = xstrdup(helo != NULL ? helo : "");
	hsplit_init(&m->hs, m);
	m->hs.on_field = verify_field;
	m->hs.on_end = verify_header_end;
	m->hs.on_body = verify_body;
	m->found.status = DMARC_NONE;
	if (cf->dkim)
		m->dkim = dkim_verifier_new(r, time(NULL), cf->timeout_ms);
	return m;
}

void
msgauth_mail(struct msgauth *m, const char *mail_from)
{
	struct spf_request req = {
		.ip = m->ip,
		.helo = m->helo,
		.mail_from = mail_from,
		.receiver = m->cf->hostname,
		.timeout_ms = m->cf->timeout_ms,
	};

	spf_check_cancel(m->spf);
	m->spf = NULL;
	m->spf_pending = false;
	m->res.spf_done = false;
	free(m->mail_from);
	m->mail_from = xstrdup(mail_from);
	if (!m->cf->spf)
		return;
	m->spf_pending = true;
	m->spf = spf_check_start(m->r, &req, spf_cb, m);
}

/* ---- the end ---------------------------------------------------------- */

static void
dkim_cb(void *arg)
{
	struct msgauth *m = arg;

	m->dkim_pending = false;
	m->res.dkim_done = true;
	m->res.nsigs = dkim_verifier_results(m->dkim, &m->res.sigs);
	check_done(m);
}

/* The DMARC verdict from what is in. */
static void
verdict(struct msgauth *m)
{
	struct msgauth_results *r = &m->res;
	struct dmarc_verdict *v = &r->dmarc;
	enum spf_result spf = r->spf_done ? r->spf.result : SPF_NONE;

	if (!m->cf->dmarc)
		return;
	r->dmarc_done = true;
	memset(v, 0, sizeof(*v));
	switch (r->from) {
	case MSGAUTH_FROM_NONE:
		v->result = DMARC_NONE;
		snprintf(v->reason, sizeof(v->reason), "no From field");
		return;
	case MSGAUTH_FROM_MIXED:
		v->result = DMARC_PERMERROR;
		snprintf(v->reason, sizeof(v->reason),
			 "From addresses in several domains");
		return;
	case MSGAUTH_FROM_BAD:
		v->result = DMARC_PERMERROR;
		snprintf(v->reason, sizeof(v->reason),
			 "From field without a usable address");
		return;
	case MSGAUTH_FROM_ONE:
		break;
	}
	r->found = m->found;
	r->sp = m->found.status == DMARC_PASS ? m->found.rec.sp
					      : DMARC_P_UNSET;
	dmarc_evaluate(&m->found, spf,
		       r->spf_done ? r->spf.domain : "", r->sigs, r->nsigs,
		       arc4random_uniform(100), v);
}

static void
report(struct msgauth *m)
{
	msgauth_done_cb *cb = m->cb;

	m->cb = NULL;
	if (m->timer != NULL)
		evtimer_del(m->timer);
	verdict(m);
	cb(m, m->arg);
}

static void
check_done(struct msgauth *m)
{
	if (m->cb == NULL || m->spf_pending || m->dkim_pending ||
	    m->dmarc_pending)
		return;
	report(m);
}

static void
later_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	check_done(arg);
}

/* Twice the timeout: what has not answered counts as temperror. */
static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct msgauth *m = arg;

	(void)fd;
	(void)what;
	if (m->spf_pending) {
		spf_check_cancel(m->spf);
		m->spf = NULL;
		m->spf_pending = false;
		memset(&m->res.spf, 0, sizeof(m->res.spf));
		m->res.spf.result = SPF_TEMPERROR;
		m->res.spf.identity = "mailfrom";
		snprintf(m->res.spf.reason, sizeof(m->res.spf.reason),
			 "timed out");
		m->res.spf_done = true;
	}
	if (m->dkim_pending) {
		/* no results without the verifier's callback */
		dkim_verifier_free(&m->dkim);
		m->dkim_pending = false;
	}
	if (m->dmarc_pending) {
		dmarc_lookup_cancel(m->dmarc);
		m->dmarc = NULL;
		m->dmarc_pending = false;
		m->found.status = DMARC_TEMPERROR;
		snprintf(m->found.reason, sizeof(m->found.reason),
			 "timed out");
	}
	if (m->cb != NULL)
		report(m);
}

void
msgauth_finish(struct msgauth *m, msgauth_done_cb *cb, void *arg)
{
	unsigned ms = m->cf->timeout_ms * 2 + 1000;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	hsplit_header_end(&m->hs);
	m->cb = cb;
	m->arg = arg;
	if (m->dkim != NULL) {
		m->dkim_pending = true;
		dkim_verifier_finish(m->dkim, dkim_cb, m);
	}
	m->timer = evtimer_new(m->base, timer_cb, m);
	evtimer_add(m->timer, &tv);
	m->later = event_new(m->base, -1, 0, later_cb, m);
	event_active(m->later, 0, 0);
}

const struct msgauth_results *
msgauth_results(const struct msgauth *m)
{
	return &m->res;
}

int
msgauth_record(const struct msgauth *m, const char *data_dir,
	       char **error_r)
{
	const struct msgauth_results *r = &m->res;
	const char *at = m->mail_from != NULL ? strrchr(m->mail_from, '@')
					      : NULL;
	struct dmarc_record_info info = {
		.time = (long long)time(NULL),
		.ip = m->ip,
		.envelope_from = at != NULL ? at + 1 : "",
		.spf = r->spf_done ? r->spf.result : SPF_NONE,
		.spf_domain = r->spf_done ? r->spf.domain : "",
		.sigs = r->sigs,
		.nsigs = r->nsigs,
	};

	*error_r = NULL;
	if (!r->dmarc_done || r->found.status != DMARC_PASS)
		return 0;
	return dmarc_record_append(data_dir, &r->dmarc, &r->found, &info,
				   error_r);
}

const char *
msgauth_authserv_id(const struct msgauth *m)
{
	return m->cf->authserv_id;
}

bool
msgauth_dkim_on(const struct msgauth *m)
{
	return m->cf->dkim;
}

void
msgauth_free(struct msgauth **mp)
{
	struct msgauth *m = *mp;

	if (m == NULL)
		return;
	spf_check_cancel(m->spf);
	dkim_verifier_free(&m->dkim);
	if (m->dmarc != NULL)
		dmarc_lookup_cancel(m->dmarc);
	if (m->timer != NULL)
		event_free(m->timer);
	if (m->later != NULL)
		event_free(m->later);
	free(m->hs.field);
	free(m->mail_from);
	free(m->ip);
	free(m->helo);
	free(m);
	*mp = NULL;
}

/* domain is d or below it */
static bool
domain_within(const char *domain, const char *d)
{
	size_t n = strlen(domain), k = strlen(d);

	if (n == k)
		return strcasecmp(domain, d) == 0;
	return n > k && domain[n - k - 1] == '.' &&
	       strcasecmp(domain + n - k, d) == 0;
}

bool
checks_allowed(const struct checks_config *c, const struct sockaddr *sa,
	       const char *from_domain)
{
	for (size_t i = 0; i < c->nallow; i++) {
		struct cidr net;
		const char *err;

		if (cidr_parse(c->allow[i], &net, &err) == 0) {
			if (sa != NULL && cidr_match(&net, sa))
				return true;
		} else if (from_domain != NULL && *from_domain != '\0' &&
			   domain_within(from_domain, c->allow[i])) {
			return true;
		}
	}
	return false;
}

/* ---- signing ------------------------------------------------------------ */

struct msgauth_signing {
	struct hsplit hs;
	struct dkim_signer *signer;
};

static void
sign_field(void *arg, const char *f, size_t n)
{
	struct msgauth_signing *g = arg;

	dkim_signer_header(g->signer, f, n);
}

static void
sign_header_end(void *arg)
{
	struct msgauth_signing *g = arg;

	dkim_signer_header_end(g->signer);
}

static void
sign_body(void *arg, const char *p, size_t n)
{
	struct msgauth_signing *g = arg;

	dkim_signer_body(g->signer, p, n);
}

struct msgauth_signing *
msgauth_signing_new(time_t now)
{
	struct msgauth_signing *g = xcalloc(1, sizeof(*g));

	g->signer = dkim_signer_new(now);
	hsplit_init(&g->hs, g);
	g->hs.on_field = sign_field;
	g->hs.on_end = sign_header_end;
	g->hs.on_body = sign_body;
	return g;
}

void
msgauth_signing_feed(struct msgauth_signing *g, const char *p, size_t n)
{
	hsplit_feed(&g->hs, p, n);
}

char *
msgauth_signing_finish(struct msgauth_signing *g,
		       const struct dkim_keyring *kr, char *domain,
		       char **error_r)
{
	const struct dkim_key *const *keys;
	size_t n = 0;

	*error_r = NULL;
	hsplit_header_end(&g->hs);
	domain[0] = '\0';
	if (g->hs.from != MSGAUTH_FROM_ONE)
		return NULL;
	memcpy(domain, g->hs.from_domain, sizeof(g->hs.from_domain));
	if (kr == NULL ||
	    (keys = dkim_keyring_find(kr, g->hs.from_domain, &n)) == NULL ||
	    n == 0)
		return NULL;
	return dkim_signer_finish(g->signer, keys, n, error_r);
}

void
msgauth_signing_free(struct msgauth_signing **gp)
{
	struct msgauth_signing *g = *gp;

	if (g == NULL)
		return;
	dkim_signer_free(&g->signer);
	free(g->hs.field);
	free(g);
	*gp = NULL;
}

static void
no_field(void *arg, const char *f, size_t n)
{
	(void)arg;
	(void)f;
	(void)n;
}

static void
no_end(void *arg)
{
	(void)arg;
}

char *
msgauth_sign_message(const char *msg, size_t len,
		     const struct dkim_keyring *kr, char **error_r)
{
	struct hsplit h = {.on_field = no_field, .on_end = no_end,
			   .on_body = no_field};
	const struct dkim_key *const *keys;
	size_t n = 0;

	*error_r = NULL;
	hsplit_init(&h, NULL);
	hsplit_feed(&h, msg, len);
	hsplit_header_end(&h);
	free(h.field);
	if (kr == NULL || h.from != MSGAUTH_FROM_ONE ||
	    (keys = dkim_keyring_find(kr, h.from_domain, &n)) == NULL ||
	    n == 0)
		return NULL;
	return dkim_sign_message(msg, len, keys, n, time(NULL), error_r);
}
