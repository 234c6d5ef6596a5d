/*
 * The queue runner's reports to the sender (RFC 3464 delivery status
 * notifications: failed, delayed, delivered), made with mail/dsn.c and
 * written durably by the committer — into the sender's Maildir when the
 * sender is local, into the queue (from the null sender) when not —
 * before the message they report on is let go (message.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/xalloc.h"
#include "mail/smtp_parse.h"
#include "msgauth/msgauth.h"
#include "mta/runner.h"
#include "mta/runner_private.h"
#include "store/deliver.h"
#include "net/lookupq.h"
#include "store/recipient.h"

struct dsn_ctx {
	struct msg *m;
	bool failure;		/* a failure report: its loss must not */
};

static void
dsn_done(struct delivery_job *job, void *arg)
{
	struct dsn_ctx *ctx = arg;
	struct msg *m = ctx->m;

	if (job->result != 0) {
		log_event(LOG_ERR, "delivery", "dsn-failed", LF_STR("id", m->id),
			  LF_STR("dsn_id", job->id), LF_STR("error", job->error));
		if (ctx->failure)
			m->dsn_failed = true;
	}
	free(ctx);
	if (--m->dsns == 0)
		msg_round_done(m);
}

uint64_t
count_lf(const char *s, size_t len)
{
	uint64_t n = 0;

	for (size_t i = 0; i < len; i++)
		n += s[i] == '\n';
	return n;
}

static bool
has_8bit(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] >= 0x80)
			return true;
	return false;
}

/* The report's row for recipient i; status is its buffer. */
static void
dsn_rcpt_fill(struct msg *m, size_t i, enum dsn_action action, int64_t now,
	      struct dsn_rcpt *dr, char status[16])
{
	struct outcome *o = &m->out[i];
	struct queue_rcpt *qr = &m->env.rcpts[i];

	snprintf(status, 16, "%s",
		 o->enh[0] != '\0'	? o->enh
		 : action == DSN_FAILED	? "5.0.0"
		 : action == DSN_DELAYED ? "4.0.0"
					 : "2.0.0");
	/* a temporary error that ran out of time keeps its 4.x.x
	 * status with Action: failed, as Postfix and Sendmail do */
	dr->addr = qr->addr;
	dr->orcpt = qr->orcpt;
	dr->action = action == DSN_DELIVERED && o->relayed ? DSN_RELAYED
							   : action;
	dr->status = status;
	dr->diagnostic = o->text;
	dr->remote_mta = NULL;
	if (o->relay != NULL) {
		/* "host[addr]:port" -> host */
		char *b = strchr(o->relay, '[');
		if (b != NULL)
			*b = '\0';
		dr->remote_mta = xstrdup(o->relay);
		if (b != NULL)
			*b = '[';
	}
	dr->last_attempt = o->tried ? now : 0;
	dr->retry_until = schedule_retry_until(&m->r->sched, m->env.arrival);
}

/* The report's text on the recipients idx[] (caller frees). */
static char *
dsn_text(struct msg *m, enum dsn_action action, const size_t *idx, size_t n,
	 int64_t now, size_t *len_r)
{
	struct dsn_rcpt *dr = xcalloc(n, sizeof(*dr));
	char(*status)[16] = xcalloc(n + 1, sizeof(*status));
	uint64_t want = m->env.size < DSN_FULL_MAX ? m->env.size : DSN_FULL_MAX;
	unsigned char *orig = xmalloc(want + 1);
	ssize_t got = pread(m->fd, orig, want, (off_t)m->off);
	struct dsn_report rep;
	char *text;

	for (size_t i = 0; i < n; i++)
		dsn_rcpt_fill(m, idx[i], action, now, &dr[i], status[i]);
	memset(&rep, 0, sizeof(rep));
	rep.hostname = m->r->config->hostname;
	rep.queue_id = m->id;
	rep.sender = m->env.sender;
	rep.envid = m->env.envid;
	rep.ret = m->env.ret;
	rep.smtputf8 = m->env.smtputf8;
	rep.arrival = m->env.arrival;
	rep.now = now;
	rep.rcpts = dr;
	rep.nrcpts = n;
	rep.msg = orig;
	rep.msglen = got > 0 ? (size_t)got : 0;
	rep.msgsize = m->env.size;
	text = dsn_format(&rep, len_r);
	for (size_t i = 0; i < n; i++)
		free((char *)dr[i].remote_mta);
	free(dr);
	free(status);
	free(orig);
	return text;
}

/*
 * Where the report goes: the sender's mailboxes or remote addresses, in
 * res (the user database's answer). false (logged, and a lost failure
 * report marked) if nowhere.
 */
static bool
dsn_route(struct msg *m, bool failure, struct recipient_result *res)
{
	if (res->verdict == RCPT_ACCEPT)
		return true;
	log_event(LOG_WARNING, "delivery", "dsn-dropped", LF_STR("id", m->id),
		  LF_STR("to", m->env.sender),
		  LF_STR("reason", res->verdict == RCPT_REJECT
					   ? "sender-unknown"
					   : "lookup-failed"));
	if (res->verdict == RCPT_TEMPFAIL && failure)
		m->dsn_failed = true;
	return false;
}

/* The report's queue envelope, from the null sender to the remotes. */
static struct queue_envelope *
dsn_envelope(struct msg *m, const char *id, const char *text, size_t len,
	     const struct recipient_result *res, int64_t now)
{
	struct queue_envelope *e = xcalloc(1, sizeof(*e));

	memcpy(e->id, id, sizeof(e->id));
	e->arrival = now;
	e->client_ip = xstrdup("127.0.0.1");
	e->helo = xstrdup(m->r->config->hostname);
	e->sender = xstrdup("");
	e->body = has_8bit(text, len) ? SMTP_BODY_8BITMIME : SMTP_BODY_7BIT;
	e->smtputf8 = m->env.smtputf8;
	e->ret = xstrdup("");
	e->envid = xstrdup("");
	for (size_t i = 0; i < res->nremotes; i++)
		queue_rcpt_add(e, res->remotes[i], SMTP_NOTIFY_NEVER, "");
	return e;
}

/* DKIM-Signature fields for the report, by its From domain's keys
 * (dkim.sign), into the job's prefix. */
static void
dsn_sign(struct msg *m, struct delivery_job *job, const char *text,
	 size_t len)
{
	const struct runner_settings *cf = m->r->config;
	char *err = NULL, *sig;

	if (!cf->dkim_sign || cf->keyring == NULL)
		return;
	sig = msgauth_sign_message(text, len, cf->keyring, &err);
	if (sig == NULL) {
		if (err != NULL)
			log_event(LOG_ERR, "delivery", "dkim-sign-failed",
				  LF_STR("id", m->id),
				  LF_STR("dsn_id", job->id),
				  LF_STR("error", err));
		free(err);
		return;
	}
	job->prefix = sig;
	job->prefix_len = strlen(sig);
}

/* The committer's job for the report: spooled, with where it goes
 * (taken from *res). NULL if it could not be spooled. */
static struct delivery_job *
dsn_job(struct msg *m, const char *text, size_t len,
	struct recipient_result *res, int64_t now)
{
	struct delivery_job *job = xcalloc(1, sizeof(*job));
	uint64_t lines = 0;
	bool hdr_ok = true;
	char *tmp;

	queue_id_new(job->id);
	tmp = xasprintf("%s/queue/tmp/%s", m->r->config->data_dir, job->id);
	job->spool = spool_new(tmp);
	free(tmp);
	if (res->nmailboxes > 0) {
		hdr_ok = spool_local_header(job->spool, "",
					    res->nmailboxes == 1
						    ? res->mailboxes[0]
						    : NULL,
					    &job->local_hdr_len, &lines) == 0;
		job->mailboxes = res->mailboxes;
		job->nmailboxes = res->nmailboxes;
		res->mailboxes = NULL;
		res->nmailboxes = 0;
	}
	if (!hdr_ok || spool_write(job->spool, text, len) < 0) {
		delivery_job_free(&job);
		return NULL;
	}
	job->vsize = spool_size(job->spool) + lines + count_lf(text, len);
	dsn_sign(m, job, text, len);
	if (res->nremotes > 0)
		job->env = dsn_envelope(m, job->id, text, len, res, now);
	return job;
}

/* A report whose route the user database is looking up. */
struct dsn_pending {
	struct msg *m;
	enum dsn_action action;
	bool failure;
	int64_t now;
	char *text;
	size_t len;
};

static void
dsn_pending_free(void *arg)
{
	struct dsn_pending *p = arg;

	free(p->text);
	free(p);
}

/* The route is known: the report to the committer. */
static void
dsn_routed(struct lookup_job *lj, void *arg)
{
	struct rcpt_lookup *l = (struct rcpt_lookup *)lj;
	struct dsn_pending *p = arg;
	struct msg *m = p->m;
	struct delivery_job *job = NULL;
	struct dsn_ctx *ctx;

	msg_lookup_done(m, lj);
	if (dsn_route(m, p->failure, &l->res[0])) {
		job = dsn_job(m, p->text, p->len, &l->res[0], p->now);
		if (job == NULL && p->failure)
			m->dsn_failed = true;
	}
	if (job == NULL) {
		if (--m->dsns == 0)
			msg_round_done(m);
		return;
	}
	log_event(LOG_INFO, "delivery", "dsn", LF_STR("id", m->id),
		  LF_STR("dsn_id", job->id),
		  LF_STR("action", p->action == DSN_FAILED    ? "failed"
				   : p->action == DSN_DELAYED ? "delayed"
							      : "delivered"));
	if (p->action == DSN_DELAYED)
		m->st.warned = true;
	ctx = xcalloc(1, sizeof(*ctx));
	ctx->m = m;
	ctx->failure = p->failure;
	job->done = dsn_done;
	job->arg = ctx;
	/* m->dsns counted it already: dsn_done takes it off */
	committer_submit(m->r->committer, job);
}

bool
dsn_send(struct msg *m, enum dsn_action action, const size_t *idx, size_t n,
	 bool failure)
{
	const struct runner_settings *cf = m->r->config;
	struct recipient_ctx rctx;
	struct smtp_path path;
	struct smtp_error perr;
	struct dsn_pending *p;
	struct rcpt_lookup *l;
	const char *end;
	char *ptext = xasprintf("<%s>", m->env.sender);
	bool ok = smtp_parse_path(ptext, false, false, true, &path, &end,
				  &perr) == 0 &&
		  *end == '\0';

	free(ptext);
	if (!ok) {
		log_event(LOG_WARNING, "delivery", "dsn-dropped",
			  LF_STR("id", m->id), LF_STR("reason", "bad-sender"));
		return false;
	}
	p = xcalloc(1, sizeof(*p));
	p->m = m;
	p->action = action;
	p->failure = failure;
	p->now = now_s();
	p->text = dsn_text(m, action, idx, n, p->now, &p->len);
	memset(&rctx, 0, sizeof(rctx));
	rctx.hostname = cf->hostname;
	rctx.postmaster = cf->postmaster;
	rctx.delimiter = cf->smtp.recipient_delimiter;
	rctx.trusted = true;
	l = rcpt_lookup_new(&rctx, &path.mbox, 1);
	l->data = p;
	l->data_free = dsn_pending_free;
	l->job.done = dsn_routed;
	l->job.arg = p;
	m->dsns++;
	msg_lookup(m, &l->job);
	return true;
}
