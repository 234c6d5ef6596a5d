/*
 * The filters' stages in the SMTP session: see smtp_filter.h.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "net/metrics.h"
#include "smtpd/smtp_filter.h"
#include "smtpd/smtp_private.h"
#include "smtpd/smtp_settings.h"
#include "store/deliver.h"

/* Each stage's steps, in the order they run. */
static sf_step_fn *const connect_steps[] = {sf_milter_connect, NULL};
static sf_step_fn *const helo_steps[] = {sf_milter_helo, NULL};
static sf_step_fn *const mail_steps[] = {sf_sendlimit_mail, sf_milter_mail,
					 NULL};
static sf_step_fn *const rcpt_steps[] = {sf_sendlimit_rcpt, sf_dnsbl_rcpt,
					 sf_greylist_rcpt, sf_milter_rcpt,
					 NULL};
static sf_step_fn *const data_steps[] = {sf_milter_data, NULL};
static sf_step_fn *const end_steps[] = {sf_greylist_end, sf_attach_end,
					sf_clamd_end, sf_milter_end, NULL};

static sf_step_fn *const *const stages[SF_NSTAGES] = {
    [SF_CONNECT] = connect_steps, [SF_HELO] = helo_steps,
    [SF_MAIL] = mail_steps,	  [SF_RCPT] = rcpt_steps,
    [SF_DATA] = data_steps,	  [SF_END] = end_steps,
};

void
sf_verdict_set(struct sf_verdict *v, int code, const char *enh,
	       const char *reason, const char *fmt, ...)
{
	va_list ap;

	v->action = code >= 500 ? SF_REJECT : SF_TEMPFAIL;
	v->code = code;
	snprintf(v->enh, sizeof(v->enh), "%s", enh);
	v->reason = reason;
	va_start(ap, fmt);
	vsnprintf(v->text, sizeof(v->text), fmt, ap);
	va_end(ap);
}

void
sf_connect_early(struct smtp_session *s)
{
	sf_dnsbl_connect(s);
}

const char *
sf_rcpt(const struct smtp_session *s)
{
	return s->sf.rcpt;
}

/* The stage is over: the state it interrupted back, then its verdict. */
static void
finish(struct smtp_session *s, const struct sf_verdict *v)
{
	bool waited = s->sf.waiting;
	sf_done_fn *done = s->sf.done;

	if (waited) {
		s->state = s->sf.saved;
		s->sf.waiting = false;
	}
	s->sf.done = NULL;
	done(s, v);
	/* what the client pipelined meanwhile */
	if (waited && s->state != SMTP_S_CLOSING)
		session_process(&s->ses);
}

/* Whether v ends the stage. A discard before the end of the data marks
 * the transaction (its message is dropped at the end) and goes on. */
static bool
ends_stage(struct smtp_session *s, const struct sf_verdict *v)
{
	if (v->action == SF_DISCARD && s->sf.stage != SF_END &&
	    s->txn != NULL) {
		s->txn->discard = true;
		return false;
	}
	return v->action != SF_CONTINUE;
}

/* From step s->sf.step on; v is the answer of the step that waited. */
static void
advance(struct smtp_session *s, const struct sf_verdict *v)
{
	struct sf_verdict cur;

	if (v != NULL) {
		s->sf.step++;
		if (ends_stage(s, v)) {
			finish(s, v);
			return;
		}
	}
	for (;;) {
		sf_step_fn *fn = stages[s->sf.stage][s->sf.step];

		memset(&cur, 0, sizeof(cur));
		cur.action = SF_CONTINUE;
		if (fn == NULL)
			break;
		if (!fn(s, &cur)) {
			if (!s->sf.waiting) {
				s->sf.saved = s->state;
				s->sf.waiting = true;
				s->state = SMTP_S_FILTER;
				/* the client waits for our reply */
				session_set_timeouts(
				    &s->ses, 0, s->config->smtp.timeout_command);
			}
			return;
		}
		s->sf.step++;
		if (ends_stage(s, &cur))
			break;
	}
	finish(s, &cur);
}

void
sf_run(struct smtp_session *s, enum sf_stage stage, sf_done_fn *done)
{
	s->sf.stage = stage;
	s->sf.step = 0;
	s->sf.done = done;
	s->sf.waiting = false;
	advance(s, NULL);
}

void
sf_resume(struct smtp_session *s, const struct sf_verdict *v)
{
	if (s->sf.done == NULL || !s->sf.waiting)
		fatal("sf_resume: no stage waits");
	advance(s, v);
}

void
sf_reply(struct smtp_session *s, const struct sf_verdict *v)
{
	const char *p = v->text, *nl;
	struct smtp_txn *t = s->txn;

	if (v->logged)
		goto reply;
	log_event(LOG_INFO, "smtp", "reject", LF_STR("session", s->ses.id),
		  LF_STR("ip", s->ses.ip),
		  LF_STR("from", t != NULL ? t->sender : ""),
		  LF_STR_IF(s->sf.rcpt != NULL, "to", s->sf.rcpt),
		  LF_STR("reason", v->reason != NULL ? v->reason : "filter"),
		  LF_UINT("code", (unsigned)v->code), LF_STR("enh", v->enh),
		  LF_STR("text", v->text));
	metrics_reject(v->reason != NULL ? v->reason : "filter");
reply:
	while ((nl = strchr(p, '\n')) != NULL) {
		smtp_reply(s, "%d-%s %.*s", v->code, v->enh, (int)(nl - p), p);
		p = nl + 1;
	}
	smtp_reply_error(s, v->code, v->enh, p);
}

/* ---- the end of the data ---------------------------------------------- */

static void
end_done(struct smtp_session *s, const struct sf_verdict *v)
{
	struct smtp_txn *t = s->txn;
	struct delivery_job *job = t->held_job;

	t->held_job = NULL;
	switch (v->action) {
	case SF_CONTINUE:
		if (!t->discard) {
			smtp_commit(s, job);
			return;
		}
		/* FALLTHROUGH */
	case SF_DISCARD:
		log_event(LOG_INFO, "smtp", "discard",
			  LF_STR("session", s->ses.id), LF_STR("queue", t->id),
			  LF_STR("ip", s->ses.ip), LF_STR("from", t->sender),
			  LF_STR("reason",
				 v->reason != NULL ? v->reason : "filter"));
		smtp_reply(s, "250 2.0.0 Ok: queued as %s", t->id);
		break;
	default:
		sf_reply(s, v);
		break;
	}
	delivery_job_free(&job);
	smtp_txn_refused(s);
}

void
sf_end(struct smtp_session *s, struct delivery_job *job)
{
	s->txn->held_job = job;
	sf_run(s, SF_END, end_done);
}

/* ---- lifetime --------------------------------------------------------- */

void
sf_session_free(struct smtp_session *s)
{
	sf_sendlimit_session_free(s);
	sf_dnsbl_session_free(s);
	sf_milter_session_free(s);
}

void
sf_txn_free(struct smtp_txn *t)
{
	sf_greylist_txn_free(t);
	sf_attach_txn_free(t);
	sf_clamd_txn_free(t);
	sf_milter_txn_free(t);
}
