/*
 * Mail authentication in the SMTP session: see smtp_checks.h.
 *
 * On port 25 the Received field is written at the end of the data, into
 * the job's prefix, together with Authentication-Results: by then iprev
 * (started at connect) has answered, or is waited for with the other
 * checks, so the Received field can name the confirmed host.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/log.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "net/metrics.h"
#include "mail/ar_filter.h"
#include "msgauth/msgauth.h"
#include "smtpd/smtp_checks.h"
#include "smtpd/smtp_filter.h"
#include "smtpd/smtp_private.h"
#include "smtpd/smtp_settings.h"
#include "store/deliver.h"

static bool
checks_on(const struct smtpd_settings *cf)
{
	return cf->resolver != NULL &&
	       (cf->checks.spf || cf->checks.dkim_verify || cf->checks.dmarc);
}

/* Printable ASCII without blanks and parentheses (Received, replies). */
static void
sanitize(char *dst, size_t size, const char *src)
{
	size_t o = 0;

	for (; *src != '\0' && o + 1 < size; src++)
		dst[o++] = (*src > ' ' && *src < 0x7f && *src != '(' &&
			    *src != ')')
				   ? *src
				   : '_';
	dst[o] = '\0';
}

/* ---- iprev --------------------------------------------------------------- */

static void verdict(struct smtp_session *s);

static void
iprev_cb(const struct iprev_outcome *o, void *arg)
{
	struct smtp_session *s = arg;

	s->iprev = NULL;
	s->iprev_done = true;
	s->iprev_out = *o;
	if (s->txn != NULL && s->txn->wait_iprev) {
		s->txn->wait_iprev = false;
		verdict(s);
	}
}

void
checks_connect(struct smtp_session *s)
{
	const struct smtpd_settings *cf = s->config;

	if (!smtp_on_mx(s) || s->trusted || !checks_on(cf))
		return;
	s->iprev = iprev_start(cf->resolver, s->ses.ip, cf->msgauth.timeout_ms,
			       iprev_cb, s);
}

void
checks_session_free(struct smtp_session *s)
{
	iprev_cancel(s->iprev);
	s->iprev = NULL;
}

/* ---- the transaction ------------------------------------------------------ */

void
checks_mail(struct smtp_session *s)
{
	const struct smtpd_settings *cf = s->config;
	struct smtp_txn *t = s->txn;

	if (!smtp_on_mx(s) || s->ses.logged_in || s->trusted || !checks_on(cf))
		return;
	t->auth = msgauth_new(s->ses.srv->base, cf->resolver, &cf->msgauth,
			      s->ses.ip, s->helo);
	msgauth_mail(t->auth, t->sender);
}

void
checks_content_start(struct smtp_session *s)
{
	const struct smtpd_settings *cf = s->config;
	struct smtp_txn *t = s->txn;

	if (smtp_on_mx(s) && !t->holding) {
		t->arf = xmalloc(sizeof(*t->arf));
		ar_filter_init(t->arf, cf->checks.authserv_id);
	}
	if (s->ses.logged_in && cf->checks.dkim_sign && cf->keyring != NULL)
		t->signing = msgauth_signing_new(time(NULL));
}

bool
checks_received_late(const struct smtp_session *s)
{
	return s->txn->auth != NULL;
}

char *
checks_received(struct smtp_session *s, size_t *len_r)
{
	struct smtp_txn *t = s->txn;
	char date[64], helo[256], name[DNS_NAME_MAX + 1], *hdr = NULL;
	const char *proto;
	FILE *f;

	if ((f = open_memstream(&hdr, len_r)) == NULL)
		fatal("open_memstream");
	rfc5322_date(date, sizeof(date), time(NULL));
	sanitize(helo, sizeof(helo), s->helo != NULL ? s->helo : "unknown");
	/* the confirmed name, "unknown" when iprev found none, nothing when
	 * the session was not checked (submission, trusted networks) */
	sanitize(name, sizeof(name),
		 !s->iprev_done				   ? ""
		 : s->iprev_out.result == IPREV_PASS ? s->iprev_out.name
						     : "unknown");
	/* RFC 3848 / RFC 6531 protocol names */
	if (t->mail.smtputf8)
		proto = s->ses.tls ? "UTF8SMTPS" : "UTF8SMTP";
	else if (s->esmtp && s->ses.logged_in)
		proto = s->ses.tls ? "ESMTPSA" : "ESMTPA";
	else if (s->esmtp)
		proto = s->ses.tls ? "ESMTPS" : "ESMTP";
	else
		proto = "SMTP";
	fprintf(f, "Received: from %s (%s%s[%s])\n\tby %s (godwit) with %s id %s",
		helo, name, name[0] != '\0' ? " " : "", s->ses.ip,
		s->config->hostname, proto, t->id);
	if (s->ses.tls)
		fprintf(f, "\n\t(%s)", s->tls_info);
	if (t->nrcpts == 1)
		fprintf(f, "\n\tfor <%s>", t->rcpts[0].addr);
	fprintf(f, ";\n\t%s\n", date);
	if (fclose(f) != 0)
		fatal("open_memstream");
	return hdr;
}

size_t
checks_filter(struct smtp_session *s, const unsigned char *in, size_t n,
	      unsigned char *out)
{
	struct smtp_txn *t = s->txn;

	if (t->arf == NULL) {
		memcpy(out, in, n);
		return n;
	}
	return ar_filter_feed(t->arf, (const char *)in, n, (char *)out);
}

size_t
checks_filter_end(struct smtp_session *s, unsigned char *out)
{
	struct smtp_txn *t = s->txn;

	return t->arf != NULL ? ar_filter_finish(t->arf, (char *)out) : 0;
}

unsigned long long
checks_filtered_lines(const struct smtp_session *s)
{
	const struct smtp_txn *t = s->txn;

	return t->arf != NULL ? t->arf->dropped_lines : 0;
}

int
checks_write(struct smtp_session *s, const void *p, size_t n)
{
	struct smtp_txn *t = s->txn;

	if (t->auth != NULL)
		msgauth_feed(t->auth, p, n);
	if (t->signing != NULL)
		msgauth_signing_feed(t->signing, p, n);
	return spool_write(t->spool, p, n);
}

void
checks_txn_free(struct smtp_txn *t)
{
	msgauth_free(&t->auth);
	msgauth_signing_free(&t->signing);
	free(t->arf);
	t->arf = NULL;
	delivery_job_free(&t->held_job);
}

/* ---- the end of the data ------------------------------------------------ */

/* Submitted mail: the DKIM-Signature fields of the From domain's keys. */
static void
sign_job(struct smtp_session *s, struct delivery_job *job)
{
	struct smtp_txn *t = s->txn;
	char domain[256], *err = NULL;
	char *sig = msgauth_signing_finish(t->signing, s->config->keyring,
					   domain, &err);

	if (sig != NULL) {
		delivery_job_prefix_add(job, sig, strlen(sig));
		free(sig);
	} else if (err != NULL) {
		log_event(LOG_ERR, "smtp", "dkim-sign-failed",
			  LF_STR("session", s->ses.id), LF_STR("queue", t->id),
			  LF_STR("domain", domain), LF_STR("error", err));
		free(err);
	}
	log_event(LOG_DEBUG, "smtp", "dkim-sign", LF_STR("session", s->ses.id),
		  LF_STR("queue", t->id), LF_STR("domain", domain),
		  LF_BOOL("signed", sig != NULL));
}

static void
auth_done(struct msgauth *m, void *arg)
{
	struct smtp_session *s = arg;

	(void)m;
	if (s->iprev != NULL) {
		/* iprev's lookups are bounded too: its answer continues */
		s->txn->wait_iprev = true;
		return;
	}
	verdict(s);
}

void
checks_end(struct smtp_session *s, struct delivery_job *job)
{
	struct smtp_txn *t = s->txn;

	if (t->signing != NULL)
		sign_job(s, job);
	if (t->auth == NULL) {
		sf_end(s, job);
		return;
	}
	t->held_job = job;
	s->state = SMTP_S_CHECK;
	/* the client waits for our reply now: no pause limit */
	session_set_timeouts(&s->ses, 0, s->config->smtp.timeout_command);
	msgauth_finish(t->auth, auth_done, s);
}

enum enforce { ENF_ACCEPT, ENF_QUARANTINE, ENF_REJECT, ENF_DEFER };

/* A check DMARC rests on failed temporarily: a fail may be a pass. */
static bool
had_temperror(const struct msgauth_results *r)
{
	if (r->spf_done && r->spf.result == SPF_TEMPERROR)
		return true;
	for (size_t i = 0; i < r->nsigs; i++)
		if (r->sigs[i].result == DKIM_TEMPERROR)
			return true;
	return false;
}

static enum enforce
action_of(int act)
{
	return act == MSGAUTH_ACT_REJECT       ? ENF_REJECT
	       : act == MSGAUTH_ACT_QUARANTINE ? ENF_QUARANTINE
					       : ENF_ACCEPT;
}

/* What DMARC's verdict asks of this message, by the configuration. */
static enum enforce
decide(const struct smtp_session *s, const struct msgauth_results *r)
{
	const struct checks_config *cc = &s->config->checks;
	const struct dmarc_verdict *v = &r->dmarc;

	if (!r->dmarc_done ||
	    checks_allowed(cc, (const struct sockaddr *)&s->ses.ss,
			   r->from == MSGAUTH_FROM_ONE ? r->from_domain
						       : NULL))
		return ENF_ACCEPT;
	if (v->result == DMARC_TEMPERROR)
		return v->policy == DMARC_P_REJECT &&
				       cc->reject_action != MSGAUTH_ACT_NONE
			   ? ENF_DEFER
			   : ENF_ACCEPT;
	if (v->result != DMARC_FAIL)
		return ENF_ACCEPT;
	switch (v->disposition) {
	case DMARC_P_REJECT:
		if (had_temperror(r) && cc->reject_action != MSGAUTH_ACT_NONE)
			return ENF_DEFER;
		return action_of(cc->reject_action);
	case DMARC_P_QUARANTINE:
		return action_of(cc->quarantine_action);
	default:
		return ENF_ACCEPT;
	}
}

/* The verdict's policy, in words, for replies and the quarantine note. */
static void
policy_text(const struct msgauth_results *r, enum enforce e, char *buf,
	    size_t size)
{
	const struct dmarc_verdict *v = &r->dmarc;
	char dom[256];
	enum dmarc_policy p = e == ENF_DEFER ? v->policy : v->disposition;

	sanitize(dom, sizeof(dom),
		 v->policy_domain[0] != '\0' ? v->policy_domain
					     : r->from_domain);
	snprintf(buf, size, "DMARC policy of %s is %s", dom,
		 dmarc_policy_name(p));
}

static const char *const enforce_names[] = {"accept", "quarantine", "reject",
					    "defer"};

/* Accepted: the prefix (Authentication-Results, Received, the
 * quarantine note) and the commit. */
static void
accept_job(struct smtp_session *s, enum enforce e, const char *why)
{
	struct smtp_txn *t = s->txn;
	struct delivery_job *job = t->held_job;
	const struct iprev_outcome *ip = s->iprev_done ? &s->iprev_out : NULL;
	char *ar = msgauth_ar_header(t->auth, ip, s->ses.ip), *rcv;
	size_t len;

	t->held_job = NULL;
	delivery_job_prefix_add(job, ar, strlen(ar));
	free(ar);
	rcv = checks_received(s, &len);
	delivery_job_prefix_add(job, rcv, len);
	free(rcv);
	if (e == ENF_QUARANTINE) {
		char note[300];
		int n = snprintf(note, sizeof(note),
				 "X-Godwit-Quarantine: %s\n", why);
		delivery_job_prefix_add(job, note, (size_t)n < sizeof(note)
					  ? (size_t)n
					  : sizeof(note) - 1);
		job->quarantine = true;
	}
	sf_end(s, job);
}

/* The line for DMARC's aggregate reports. */
static void
record(struct smtp_session *s)
{
	char *err = NULL;

	if (msgauth_record(s->txn->auth, s->config->data_dir, &err) < 0) {
		log_event(LOG_ERR, "msgauth", "record-failed",
			  LF_STR("session", s->ses.id),
			  LF_STR("queue", s->txn->id), LF_STR("error", err));
		free(err);
	}
}

static void
verdict(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	const struct msgauth_results *r = msgauth_results(t->auth);
	enum enforce e = decide(s, r);
	char why[300], text[400];

	policy_text(r, e, why, sizeof(why));
	record(s);
	msgauth_log(t->auth, s->ses.id, t->id, s->ses.ip,
		    s->iprev_done ? &s->iprev_out : NULL, enforce_names[e]);
	if (e == ENF_REJECT || e == ENF_DEFER) {
		log_event(LOG_INFO, "smtp", "reject",
			  LF_STR("session", s->ses.id), LF_STR("ip", s->ses.ip),
			  LF_STR("from", t->sender),
			  LF_STR("reason", e == ENF_REJECT ? "dmarc"
							   : "dmarc-temperror"),
			  LF_UINT("code", e == ENF_REJECT ? 550 : 451));
		metrics_reject(e == ENF_REJECT ? "dmarc" : "dmarc-temperror");
	}
	switch (e) {
	case ENF_REJECT:
		snprintf(text, sizeof(text), "Message rejected: %s", why);
		smtp_reply_error(s, 550, "5.7.1", text);
		smtp_txn_refused(s);
		return;
	case ENF_DEFER:
		snprintf(text, sizeof(text),
			 "Message deferred: temporary error checking DMARC; "
			 "%s", why);
		smtp_reply_error(s, 451, "4.7.5", text);
		smtp_txn_refused(s);
		return;
	default:
		accept_job(s, e, why);
		return;
	}
}
