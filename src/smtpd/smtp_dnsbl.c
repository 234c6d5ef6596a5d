/*
 * DNS block/allow lists and greylisting in the SMTP session
 * (smtp_filter.h; the engines are filter/dnsbl.h and filter/greylist.h).
 *
 * Blocklists: on port 25, for clients outside trusted_networks, every
 * zone is looked up as the connection arrives (sf_dnsbl_connect). The
 * verdict is applied at each RCPT, waiting there for lookups still
 * running; postmaster (bare, or at any of our domains: on port 25 an
 * accepted recipient is ours) is never refused (RFC 5321 4.5.1), nor is
 * an authenticated client. A listing that did not block, and an allow
 * list's, is recorded in the accepted message: X-Godwit-DNSBL, and for
 * an allow list an Authentication-Results field of its own with the
 * dnswl method (RFC 8904) when the mail authentication checks run.
 *
 * Greylisting: on port 25, not for authenticated clients or
 * trusted_networks. Mail with spf=pass from a skip domain passes at
 * RCPT. When a triplet would wait but the message may still prove to
 * come from a skip domain (skip_domains set, and DKIM verification on or
 * SPF not finished at RCPT), the RCPT is accepted and the decision moves
 * to the end of the data: there the message gets 451 4.7.1 unless a
 * DKIM signature that passed has d= at (or under) a skip domain, or SPF
 * passed for one. Any waiting triplet then defers the whole message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "filter/dnsbl.h"
#include "filter/greylist.h"
#include "net/redis_limits.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "msgauth/msgauth.h"
#include "smtpd/smtp_filter.h"
#include "smtpd/smtp_private.h"
#include "smtpd/smtp_settings.h"
#include "store/deliver.h"

struct sf_dnsbl {
	struct smtp_session *s;
	struct dnsbl_check *chk;
	bool waiting;		/* the RCPT step waits for it */
};

struct sf_grey {
	char net[64];		/* the client network of the triplets */
	bool passed;		/* a triplet passed: counts a delivery */
	bool deferred;		/* a triplet waits: decided at the end */
	struct redis_req *req;	/* the check asked of Redis */
	char sender[SMTP_PATH_MAX * 4 + 8];	/* of that check, lower */
	char rcpt[SMTP_PATH_MAX * 4 + 8];
};

/* ---- blocklists ------------------------------------------------------- */

enum answers { ANS_LISTED, ANS_REFUSED, ANS_OTHER };

/* "bl.example=127.0.0.2,127.0.0.3 wl.example=127.0.10.1" for the log:
 * the zones whose answers counted, were refusals, or neither. */
static void
listed_text(const struct dnsbl_result *r, char *buf, size_t size,
	    enum answers which)
{
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < r->nz; i++) {
		const struct dnsbl_zone_result *z = &r->z[i];
		int n;

		enum answers a = z->listed    ? ANS_LISTED
				 : z->refused ? ANS_REFUSED
					      : ANS_OTHER;

		if (a != which || z->codes[0] == '\0')
			continue;
		n = snprintf(buf + o, size - o, "%s%s=%s", o > 0 ? " " : "",
			     z->zone, z->codes);
		if (n < 0 || (size_t)n >= size - o) {
			buf[o] = '\0';
			return;
		}
		o += (size_t)n;
	}
}

static void
log_result(const struct smtp_session *s, const struct dnsbl_result *r)
{
	char listed[1024], refused[512], other[512];
	unsigned failed = 0;
	bool any = false;

	for (size_t i = 0; i < r->nz; i++) {
		failed += r->z[i].failed;
		any |= r->z[i].codes[0] != '\0' || r->z[i].failed;
	}
	listed_text(r, listed, sizeof(listed), ANS_LISTED);
	listed_text(r, refused, sizeof(refused), ANS_REFUSED);
	listed_text(r, other, sizeof(other), ANS_OTHER);
	log_event(any ? LOG_INFO : LOG_DEBUG, "filter", "dnsbl",
		  LF_STR("session", s->ses.id), LF_STR("ip", s->ses.ip),
		  LF_STR("verdict", r->allowed   ? "allowed"
				    : r->blocked ? "blocked"
						 : "pass"),
		  LF_STR("zone", r->named != NULL ? r->named->zone : ""),
		  LF_INT("score", r->score),
		  LF_UINT("threshold", s->config->filter->dnsbl.threshold),
		  LF_STR("listed", listed), LF_STR_IF(*refused, "refused", refused),
		  LF_STR_IF(*other, "uncounted", other),
		  LF_UINT("failed", failed));
}

static void
rcpt_verdict(struct smtp_session *s, const struct dnsbl_result *r,
	     struct sf_verdict *v)
{
	const struct dnsbl_zone_result *z = r->named;

	if (!r->blocked || z == NULL)
		return;
	sf_verdict_set(v, 554, "5.7.1", "dnsbl",
		       "Service unavailable; client [%s] blocked using %s%s%s",
		       s->ses.ip, z->zone, z->reason[0] != '\0' ? "; " : "",
		       z->reason);
}

static void
dnsbl_cb(struct dnsbl_check *c, void *arg)
{
	struct sf_dnsbl *d = arg;
	struct sf_verdict v;

	log_result(d->s, dnsbl_check_result(c));
	if (!d->waiting)
		return;
	d->waiting = false;
	memset(&v, 0, sizeof(v));
	v.action = SF_CONTINUE;
	rcpt_verdict(d->s, dnsbl_check_result(c), &v);
	sf_resume(d->s, &v);
}

void
sf_dnsbl_connect(struct smtp_session *s)
{
	const struct smtpd_settings *cf = s->config;
	struct sf_dnsbl *d;

	if (!smtp_on_mx(s) || s->trusted || cf->filter == NULL ||
	    cf->resolver == NULL)
		return;
	d = xcalloc(1, sizeof(*d));
	d->s = s;
	d->chk = dnsbl_check_start(cf->resolver, &cf->filter->dnsbl,
				   s->ses.ip, dnsbl_cb, d);
	if (d->chk == NULL) {
		free(d);
		return;
	}
	s->dnsbl = d;
}

/* RFC 5321 4.5.1: postmaster, bare or at a domain of ours. */
static bool
is_postmaster(const char *rcpt)
{
	const char *at = strrchr(rcpt, '@');
	size_t n = at != NULL ? (size_t)(at - rcpt) : strlen(rcpt);

	return n == 10 && strncasecmp(rcpt, "postmaster", 10) == 0;
}

bool
sf_dnsbl_rcpt(struct smtp_session *s, struct sf_verdict *v)
{
	struct sf_dnsbl *d = s->dnsbl;

	if (d == NULL || s->ses.logged_in || s->trusted ||
	    is_postmaster(sf_rcpt(s)))
		return true;
	if (!dnsbl_check_done(d->chk)) {
		d->waiting = true;
		return false;
	}
	rcpt_verdict(s, dnsbl_check_result(d->chk), v);
	return true;
}

void
sf_dnsbl_session_free(struct smtp_session *s)
{
	if (s->dnsbl == NULL)
		return;
	dnsbl_check_free(&s->dnsbl->chk);
	free(s->dnsbl);
	s->dnsbl = NULL;
}

/* Each listing that counted on a line of its own. */
static void
dnsbl_fields(FILE *f, const struct dnsbl_result *r, unsigned threshold)
{
	unsigned shown = 0;

	if (r->allowed)
		fprintf(f, "X-Godwit-DNSBL: allowed by %s (%s)\n",
			r->named->zone, r->named->codes);
	else
		fprintf(f, "X-Godwit-DNSBL: score=%d threshold=%u%s", r->score,
			threshold, r->blocked ? " (postmaster)" : "");
	for (size_t i = 0; i < r->nz && !r->allowed; i++) {
		const struct dnsbl_zone_result *z = &r->z[i];

		if (!z->listed || z->allow || shown++ >= 8)
			continue;
		fprintf(f, ";\n\tlisted by %s (%s) weight %d", z->zone,
			z->codes, z->weight);
	}
	if (!r->allowed)
		fputc('\n', f);
}

/* The accepted message's record of the lists that listed its client. */
static void
dnsbl_header(struct smtp_session *s, struct delivery_job *job)
{
	const struct dnsbl_result *r;
	const char *authserv;
	bool listed = false;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	if (s->dnsbl == NULL || !dnsbl_check_done(s->dnsbl->chk) ||
	    s->ses.logged_in)
		return;
	r = dnsbl_check_result(s->dnsbl->chk);
	for (size_t i = 0; i < r->nz; i++)
		listed |= r->z[i].listed;
	if (!listed)
		return;
	if ((f = open_memstream(&text, &len)) == NULL)
		fatal("open_memstream");
	authserv = s->txn->auth != NULL ? msgauth_authserv_id(s->txn->auth)
					: NULL;
	/* RFC 8904: policy.ip is the first answer (codes has them all) */
	if (r->allowed && authserv != NULL)
		fprintf(f,
			"Authentication-Results: %s;\n\tdnswl=pass "
			"dns.zone=%s policy.ip=%.*s\n",
			authserv, r->named->zone,
			(int)strcspn(r->named->codes, ","), r->named->codes);
	dnsbl_fields(f, r, s->config->filter->dnsbl.threshold);
	fclose(f);
	delivery_job_prefix_add(job, text, len);
	free(text);
}

/* ---- greylisting -------------------------------------------------------- */

/* domain is a skip domain, or under one. */
static bool
skip_domain(const struct greylist_config *gc, const char *domain)
{
	size_t dl = strlen(domain);

	for (size_t i = 0; i < gc->nskip_domains && dl > 0; i++) {
		const char *sd = gc->skip_domains[i];
		size_t sl = strlen(sd);

		if (strcasecmp(domain, sd) == 0 ||
		    (dl > sl && domain[dl - sl - 1] == '.' &&
		     strcasecmp(domain + dl - sl, sd) == 0))
			return true;
	}
	return false;
}

static bool
spf_skips(const struct smtp_session *s, const struct greylist_config *gc)
{
	const struct msgauth_results *r;

	if (s->txn->auth == NULL)
		return false;
	r = msgauth_results(s->txn->auth);
	return r->spf_done && r->spf.result == SPF_PASS &&
	       skip_domain(gc, r->spf.domain);
}

static bool
dkim_skips(const struct smtp_session *s, const struct greylist_config *gc)
{
	const struct msgauth_results *r;

	if (s->txn->auth == NULL)
		return false;
	r = msgauth_results(s->txn->auth);
	for (size_t i = 0; i < r->nsigs; i++)
		if (r->sigs[i].result == DKIM_PASS &&
		    skip_domain(gc, r->sigs[i].domain))
			return true;
	return false;
}

/* Whether a waiting triplet may still be let through at the end. */
static bool
may_skip_later(const struct smtp_session *s, const struct greylist_config *gc)
{
	struct msgauth *m = s->txn->auth;

	return gc->nskip_domains > 0 && m != NULL &&
	       (msgauth_dkim_on(m) || !msgauth_results(m)->spf_done);
}

static void
grey_log(const struct smtp_session *s, const char *verdict, uint64_t wait)
{
	log_event(LOG_INFO, "filter", "greylist", LF_STR("session", s->ses.id),
		  LF_STR("ip", s->ses.ip), LF_STR("net", s->txn->grey->net),
		  LF_STR("from", s->txn->sender), LF_STR("to", sf_rcpt(s)),
		  LF_STR("verdict", verdict), LF_UINT("wait", wait));
}

static void
grey_refuse(struct sf_verdict *v)
{
	sf_verdict_set(v, 451, "4.7.1", "greylist",
		       "Greylisted, please try again later");
}

/* The triplet's verdict applied: a refusal in v, or nothing. */
static void
grey_apply(struct smtp_session *s, enum greylist_verdict gv, uint64_t wait,
	   struct sf_verdict *v)
{
	const struct greylist_config *gc = &s->config->filter->greylist;
	struct smtp_txn *t = s->txn;

	if (gv == GREYLIST_PASS)
		t->grey->passed = true;
	if (gv != GREYLIST_WAIT)
		return;
	if (may_skip_later(s, gc)) {
		t->grey->deferred = true;
		grey_log(s, "wait-end", wait);
		return;
	}
	grey_log(s, "wait", wait);
	grey_refuse(v);
}

static struct redis *
grey_redis(const struct smtp_session *s)
{
	return rlimits_redis(s->ses.srv->rlimits);
}

/* Redis's answer; none (down, slow): the local database decides. */
static void
grey_redis_answer(struct redisReply *reply, void *arg)
{
	struct smtp_session *s = arg;
	struct sf_grey *g = s->txn->grey;
	struct sf_verdict v = {.action = SF_CONTINUE};
	enum greylist_verdict gv;
	uint64_t wait = 0;

	g->req = NULL;
	if (!greylist_redis_verdict(reply, &gv, &wait))
		gv = greylist_check(s->config->greylist, g->net, g->sender,
				    g->rcpt, time(NULL), &wait);
	grey_apply(s, gv, wait, &v);
	sf_resume(s, &v);
}

bool
sf_greylist_rcpt(struct smtp_session *s, struct sf_verdict *v)
{
	const struct smtpd_settings *cf = s->config;
	const struct greylist_config *gc;
	struct smtp_txn *t = s->txn;
	struct sf_grey *g;
	enum greylist_verdict gv;
	uint64_t wait = 0;

	if (cf->greylist == NULL || cf->filter == NULL || !smtp_on_mx(s) ||
	    s->ses.logged_in || s->trusted)
		return true;
	gc = &cf->filter->greylist;
	if (!gc->enabled || spf_skips(s, gc))
		return true;
	if (t->grey == NULL) {
		t->grey = xcalloc(1, sizeof(*t->grey));
		if (greylist_client_net(s->ses.ip, t->grey->net,
					sizeof(t->grey->net)) < 0)
			snprintf(t->grey->net, sizeof(t->grey->net), "%s",
				 s->ses.ip);
	}
	g = t->grey;
	snprintf(g->sender, sizeof(g->sender), "%s", t->sender);
	snprintf(g->rcpt, sizeof(g->rcpt), "%s", sf_rcpt(s));
	ascii_lower(g->sender);
	ascii_lower(g->rcpt);
	g->req = greylist_redis_check(grey_redis(s), gc, g->net, g->sender,
				      g->rcpt, grey_redis_answer, s);
	if (g->req != NULL)
		return false;
	gv = greylist_check(cf->greylist, g->net, g->sender, g->rcpt,
			    time(NULL), &wait);
	grey_apply(s, gv, wait, v);
	return true;
}

bool
sf_greylist_end(struct smtp_session *s, struct sf_verdict *v)
{
	struct smtp_txn *t = s->txn;
	struct sf_grey *g = t->grey;
	const struct greylist_config *gc;

	if (t->held_job != NULL)
		dnsbl_header(s, t->held_job);
	if (g == NULL || s->config->greylist == NULL)
		return true;
	gc = &s->config->filter->greylist;
	if (g->deferred) {
		bool skip = dkim_skips(s, gc) || spf_skips(s, gc);

		log_event(LOG_INFO, "filter", "greylist",
			  LF_STR("session", s->ses.id), LF_STR("queue", t->id),
			  LF_STR("ip", s->ses.ip), LF_STR("net", g->net),
			  LF_STR("from", t->sender),
			  LF_STR("verdict", skip ? "skip-end" : "wait"));
		if (!skip)
			grey_refuse(v);
		return true;
	}
	if (g->passed &&
	    !greylist_redis_delivered(grey_redis(s), gc, g->net))
		greylist_delivered(s->config->greylist, g->net, time(NULL));
	return true;
}

void
sf_greylist_txn_free(struct smtp_txn *t)
{
	if (t->grey != NULL)
		redis_cancel(&t->grey->req);
	free(t->grey);
	t->grey = NULL;
}
