/*
 * A message's round of delivery in the queue runner: loaded from
 * active/, its recipients grouped into jobs by destination (dest.c) or
 * delivered here when local, then, when every job is done, the
 * recipients' fates logged and reported (bounce.c), and the message
 * removed or deferred. Deferred messages leave active/ together, once
 * per turn of the event loop (defer_flush).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "lib/log.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "mail/smtp_parse.h"
#include "mta/runner.h"
#include "mta/runner_private.h"
#include "net/metrics.h"
#include "store/deliver.h"
#include "net/lookupq.h"

/* ---- outcomes ------------------------------------------------------- */

void
outcome_set(struct outcome *o, int code, const char *enh, const char *text,
	    const char *relay)
{
	char buf[SMTP_CLIENT_TEXT_MAX + 32];

	o->tried = true;
	o->code = code;
	snprintf(o->enh, sizeof(o->enh), "%s",
		 enh != NULL && *enh != '\0' ? enh
		 : code >= 500		     ? "5.0.0"
		 : code >= 400		     ? "4.0.0"
					     : "2.0.0");
	if (enh != NULL && *enh != '\0')
		snprintf(buf, sizeof(buf), "%d %s %s", code, enh, text);
	else
		snprintf(buf, sizeof(buf), "%d %s", code, text);
	free(o->text);
	o->text = xstrdup(buf);
	free(o->relay);
	o->relay = relay != NULL ? xstrdup(relay) : NULL;
	xfree(&o->tls);
}

void
outcome_clear(struct outcome *o)
{
	free(o->text);
	free(o->relay);
	free(o->tls);
	memset(o, 0, sizeof(*o));
}

static void
log_outcome(struct msg *m, size_t i, const char *event)
{
	struct outcome *o = &m->out[i];
	log_event(LOG_INFO, "delivery", event, LF_STR("id", m->id),
		  LF_STR("to", m->env.rcpts[i].addr),
		  LF_STR("relay", o->relay != NULL ? o->relay : "none"),
		  LF_STR("dsn", o->enh),
		  LF_STR("tls", o->tls != NULL ? o->tls : "no"),
		  LF_STR("status", o->text));
}

/* ---- messages ------------------------------------------------------- */

struct msg *
active_msg(struct runner *r, const char *id)
{
	struct msg *m;

	TAILQ_FOREACH(m, &r->msgs, entry)
		if (strcmp(m->id, id) == 0)
			return m;
	return NULL;
}

void
msg_lookup(struct msg *m, struct lookup_job *job)
{
	for (size_t i = 0; i < MSG_LOOKUPS_MAX; i++) {
		if (m->lookups[i] == NULL) {
			m->lookups[i] = job;
			lookupq_submit(m->r->lookupq, job);
			return;
		}
	}
	fatalx("msg_lookup: too many lookups out for one message");
}

void
msg_lookup_done(struct msg *m, struct lookup_job *job)
{
	for (size_t i = 0; i < MSG_LOOKUPS_MAX; i++)
		if (m->lookups[i] == job)
			m->lookups[i] = NULL;
}

void
msg_free(struct msg *m)
{
	struct runner *r = m->r;

	/* the lookup queue frees what is still out */
	for (size_t i = 0; i < MSG_LOOKUPS_MAX; i++)
		if (m->lookups[i] != NULL)
			lookup_job_cancel(m->lookups[i]);
	TAILQ_REMOVE(&r->msgs, m, entry);
	r->nmsgs--;
	if (m->fd >= 0)
		close(m->fd);
	for (size_t i = 0; i < m->env.nrcpts; i++)
		outcome_clear(&m->out[i]);
	free(m->out);
	queue_state_clear(&m->st);
	queue_envelope_clear(&m->env);
	free(m);
	/* room again after a full house: take the next batch */
	if (r->nmsgs == ACTIVE_LOW && (r->backlog || r->due.n > 0))
		timer_arm(r);
}

void
job_finish(struct job *j)
{
	struct msg *m = j->m;

	free(j->idx);
	free(j);
	if (--m->jobs == 0)
		msg_round_done(m);
}

/* ---- the end of a round --------------------------------------------- */

/* Who gets which report, this round. */
struct round {
	size_t *fail, *succ, *dly;
	size_t nf, ns, nd;
};

/* A recipient's final fate: counted, with the time since arrival. */
static void
count_final(const struct msg *m, enum metrics_msg what)
{
	uint64_t now = now_ms(), at = m->env.arrival > 0
					   ? (uint64_t)m->env.arrival * 1000
					   : now;

	metrics_message(what, 1);
	metrics_delivery_latency(now > at ? now - at : 0);
}

/* Logs what this round made of recipient i, and notes the report due. */
static void
round_rcpt(struct msg *m, size_t i, bool expired, int64_t now,
	   struct round *rd)
{
	struct outcome *o = &m->out[i];
	unsigned notify = m->env.rcpts[i].notify;
	bool null_sender = m->env.sender[0] == '\0';

	if (m->delete_bounce && !(o->tried && o->code >= 200 && o->code < 300))
		outcome_set(o, 550, "5.0.0",
			    "message deleted by the administrator", NULL);
	switch (schedule_fate(o->tried, o->code, expired)) {
	case FATE_UNTRIED:
		break;
	case FATE_SENT:
		log_outcome(m, i, "sent");
		count_final(m, METRICS_MSG_DELIVERED);
		if (!null_sender && (notify & SMTP_NOTIFY_SUCCESS) != 0)
			rd->succ[rd->ns++] = i;
		break;
	case FATE_BOUNCED:
		log_outcome(m, i, "bounced");
		watch_bounced(m->r);
		count_final(m, METRICS_MSG_BOUNCED);
		if (!null_sender && dsn_wanted(notify, DSN_FAILED))
			rd->fail[rd->nf++] = i;
		break;
	case FATE_DEFERRED:
		log_outcome(m, i, "deferred");
		metrics_message(METRICS_MSG_DEFERRED, 1);
		if (!null_sender &&
		    schedule_warn_due(&m->r->sched, m->env.arrival, now,
				      m->st.warned) &&
		    dsn_wanted(notify, DSN_DELAYED))
			rd->dly[rd->nd++] = i;
		break;
	}
}

/* First pass: each pending recipient's fate logged, the reports sent. */
static void
round_report(struct msg *m, bool expired, int64_t now)
{
	size_t n = m->env.nrcpts;
	struct round rd = {
		.fail = xcalloc(n + 1, sizeof(size_t)),
		.succ = xcalloc(n + 1, sizeof(size_t)),
		.dly = xcalloc(n + 1, sizeof(size_t)),
	};

	for (size_t i = 0; i < n; i++)
		if (m->st.status[i] == QRS_PENDING)
			round_rcpt(m, i, expired, now, &rd);
	m->reported = true;
	m->dsns++;	/* no second pass while submitting */
	if (rd.nf > 0)
		dsn_send(m, DSN_FAILED, rd.fail, rd.nf, true);
	if (rd.ns > 0)
		dsn_send(m, DSN_DELIVERED, rd.succ, rd.ns, false);
	/* a delay report that goes out sets m->st.warned (bounce.c) */
	if (rd.nd > 0)
		dsn_send(m, DSN_DELAYED, rd.dly, rd.nd, false);
	m->dsns--;
	free(rd.fail);
	free(rd.succ);
	free(rd.dly);
}

/* Second pass: each pending recipient's new status; how many remain. */
static size_t
round_record(struct msg *m, bool expired)
{
	/* a failure report that could not be written leaves the recipient
	 * pending: reported again */
	bool lost = m->dsn_failed && m->env.sender[0] != '\0';
	size_t pending = 0;

	m->st.attempts++;
	for (size_t i = 0; i < m->env.nrcpts; i++) {
		struct outcome *o = &m->out[i];
		if (m->st.status[i] != QRS_PENDING)
			continue;
		m->st.status[i] = schedule_status(
			schedule_fate(o->tried, o->code, expired), lost);
		if (m->st.status[i] == QRS_PENDING)
			pending++;
		if (o->tried) {
			free(m->st.errors[i]);
			m->st.errors[i] = xstrdup(o->text);
			free(m->st.last_error);
			m->st.last_error = xstrdup(o->text);
		}
	}
	return pending;
}

/* Kept, with the others deferred in this turn of the event loop, for
 * defer_flush(). */
static void
msg_defer(struct msg *m, int64_t now)
{
	struct runner *r = m->r;

	m->st.next_attempt = schedule_next_attempt(&r->sched, now,
						   m->st.attempts);
	if (r->ndefer == r->defer_cap) {
		r->defer_cap = r->defer_cap ? r->defer_cap * 2 : 64;
		r->defer = xreallocarray(r->defer, r->defer_cap,
					 sizeof(*r->defer));
	}
	r->defer[r->ndefer++] = m;
	if (r->ndefer == 1)
		event_active(r->defer_ev, EV_TIMEOUT, 0);
}

/*
 * Every job of this round is done: decide each recipient's fate and send
 * the reports (first pass); once the reports are durable (dsn_done calls
 * back), keep or drop the message (second pass).
 */
void
msg_round_done(struct msg *m)
{
	int64_t now = now_s();
	bool expired = schedule_expired(&m->r->sched, m->env.arrival, now);

	if (m->jobs > 0 || m->dsns > 0)
		return;
	if (!m->reported) {
		round_report(m, expired, now);
		if (m->dsns > 0)
			return;
	}
	if (round_record(m, expired) == 0 || m->delete_req) {
		reaper_add(m->r->reaper, m->id, m->fd);
		m->fd = -1;
		log_event(LOG_INFO, "delivery", "removed", LF_STR("id", m->id),
			  LF_STR_IF(m->delete_req, "reason", "deleted"));
		msg_free(m);
		return;
	}
	msg_defer(m, now);
}

/* ---- leaving active/ ------------------------------------------------ */

/* The deferred (hold: held) ones of v[] to deferred/ (hold/). */
static void
defer_move(struct runner *r, struct msg **v, size_t n, bool hold)
{
	const char *to = hold ? "hold" : "deferred";
	const char **sub = xcalloc(n, sizeof(*sub));
	struct msg **subm = xcalloc(n, sizeof(*subm));
	bool *submoved = xcalloc(n, sizeof(*submoved));
	size_t k = 0;
	int e = 0;

	for (size_t i = 0; i < n; i++)
		if (v[i]->hold_req == hold) {
			subm[k] = v[i];
			sub[k++] = v[i]->id;
		}
	if (k > 0 && queue_move_batch(r->config->data_dir, "active", to, sub,
				      k, submoved) < (ssize_t)k)
		e = errno;
	for (size_t j = 0; j < k; j++) {
		if (!submoved[j])
			log_event(LOG_ERR, "delivery", "move-failed",
				  LF_STR("id", sub[j]), LF_STR("to", to),
				  LF_STR("error", strerror(e)));
		else if (!hold)
			due_add(r, sub[j], subm[j]->st.next_attempt);
	}
	free(sub);
	free(subm);
	free(submoved);
}

/*
 * The messages deferred (or held) since the last call leave active/, at
 * the cost of one fsync of queue/state/ and one of each directory they
 * go to for them all: every state file is durable first (the retry
 * count, errors and expiry must not be lost), then they move.
 */
void
defer_flush(struct runner *r)
{
	struct msg **v = r->defer;
	size_t n = r->ndefer;
	const char **ids;
	const struct queue_state **sts;
	char **errs;

	if (n == 0)
		return;
	r->defer = NULL;
	r->ndefer = r->defer_cap = 0;
	ids = xcalloc(n, sizeof(*ids));
	sts = xcalloc(n, sizeof(*sts));
	errs = xcalloc(n, sizeof(*errs));
	for (size_t i = 0; i < n; i++) {
		ids[i] = v[i]->id;
		sts[i] = &v[i]->st;
	}
	queue_state_write_batch(r->config->data_dir, ids, sts, n, errs);
	for (size_t i = 0; i < n; i++) {
		if (errs[i] == NULL)
			continue;
		log_event(LOG_ERR, "delivery", "state-failed",
			  LF_STR("id", ids[i]), LF_STR("error", errs[i]));
		free(errs[i]);
	}
	/* then the moves: to deferred/, and to hold/ what was held */
	defer_move(r, v, n, false);
	defer_move(r, v, n, true);
	for (size_t i = 0; i < n; i++)
		msg_free(v[i]);
	free(errs);
	free(sts);
	free(ids);
	free(v);
}

/* ---- local recipients ------------------------------------------------ */

/*
 * Recipients in local domains reach the queue only when the client asked
 * for a success report (NOTIFY=SUCCESS, RFC 3461), or with a message a
 * milter quarantined (held, then released): they are delivered to their
 * Maildirs here, by the committer, and reported as "delivered" (a report
 * only to those who asked).
 */
struct local_job {
	struct msg *m;
	size_t *idx;
	size_t n;
};

static void
local_done(struct delivery_job *job, void *arg)
{
	struct local_job *lj = arg;
	struct msg *m = lj->m;

	for (size_t i = 0; i < lj->n; i++) {
		if (job->result == 0)
			outcome_set(&m->out[lj->idx[i]], 250, "2.0.0",
				    "delivered to mailbox", NULL);
		else
			outcome_set(&m->out[lj->idx[i]], 451, "4.3.0",
				    job->error, NULL);
	}
	free(lj->idx);
	free(lj);
	if (--m->jobs == 0)
		msg_round_done(m);
}

/* The message into the job's spool; false if it cannot be read. */
static bool
local_spool(struct msg *m, struct delivery_job *job, uint64_t *lines_r)
{
	char buf[64 * 1024];
	uint64_t left = m->env.size, off = m->off;

	while (left > 0) {
		size_t want = left < sizeof(buf) ? (size_t)left : sizeof(buf);
		ssize_t got = pread(m->fd, buf, want, (off_t)off);
		if (got <= 0)
			return false;
		if (spool_write(job->spool, buf, (size_t)got) != 0)
			return false;
		*lines_r += count_lf(buf, (size_t)got);
		left -= (uint64_t)got;
		off += (uint64_t)got;
	}
	return true;
}

/* Who sent it, for the audit line (store/deliver.h). */
static struct delivery_origin *
local_origin(const struct msg *m, const size_t *idx, size_t n)
{
	struct delivery_origin *o = xcalloc(1, sizeof(*o));

	o->from_queue = true;
	o->ip = xstrdup(m->env.client_ip != NULL ? m->env.client_ip : "");
	o->sender = xstrdup(m->env.sender != NULL ? m->env.sender : "");
	o->rcpts = xcalloc(n + 1, sizeof(*o->rcpts));
	for (size_t i = 0; i < n; i++)
		o->rcpts[i] = xstrdup(m->env.rcpts[idx[i]].addr);
	o->nrcpts = n;
	return o;
}

static void
local_deliver(struct msg *m, size_t *idx, size_t n)
{
	struct runner *r = m->r;
	struct delivery_job *job = xcalloc(1, sizeof(*job));
	struct local_job *lj = xcalloc(1, sizeof(*lj));
	uint64_t lines = 0;
	char *tmp;
	bool ok;

	memcpy(job->id, m->id, sizeof(job->id));
	/* a distinct spool name: the message file keeps its own id */
	tmp = xasprintf("%s/queue/tmp/%s.local", r->config->data_dir, m->id);
	job->spool = spool_new(tmp);
	free(tmp);
	ok = spool_local_header(job->spool, m->env.sender,
				n == 1 ? m->env.rcpts[idx[0]].addr : NULL,
				&job->local_hdr_len, &lines) == 0 &&
	     local_spool(m, job, &lines);
	job->vsize = spool_size(job->spool) + lines;
	job->mailboxes = xcalloc(n, sizeof(*job->mailboxes));
	for (size_t i = 0; i < n; i++)
		job->mailboxes[i] = xstrdup(m->env.rcpts[idx[i]].addr);
	job->nmailboxes = n;
	job->origin = local_origin(m, idx, n);
	lj->m = m;
	lj->idx = idx;
	lj->n = n;
	m->jobs++;
	if (!ok) {
		job->result = -1;
		snprintf(job->error, sizeof(job->error),
			 "cannot read the queue file");
		local_done(job, lj);
		delivery_job_free(&job);
		return;
	}
	job->done = local_done;
	job->arg = lj;
	committer_submit(r->committer, job);
}

/* ---- loading -------------------------------------------------------- */

/* Reads m's envelope and state from active/; false (the message held,
 * and freed) if the file is not a good one. */
static bool
msg_open(struct msg *m, const char *from)
{
	const struct runner_settings *cf = m->r->config;
	char *path, *err = NULL;

	path = xasprintf("%s/queue/active/%s", cf->data_dir, m->id);
	if (queue_envelope_read(path, &m->env, &m->off, &err) < 0 ||
	    (m->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		log_event(LOG_ERR, "delivery", "corrupt", LF_STR("id", m->id),
			  LF_STR("error", err != NULL ? err : strerror(errno)),
			  LF_STR("action", "hold"));
		free(err);
		free(path);
		queue_move(cf->data_dir, m->id, "active", "hold");
		/* (read but not opened: no outcomes to free for it) */
		queue_envelope_clear(&m->env);
		queue_state_init(&m->st, 0);
		msg_free(m);
		return false;
	}
	free(path);
	if (queue_state_read(cf->data_dir, m->id, m->env.nrcpts, &m->st,
			     &err) < 0) {
		log_event(LOG_WARNING, "delivery", "state-invalid",
			  LF_STR("id", m->id), LF_STR("error", err));
		free(err);
	}
	m->out = xcalloc(m->env.nrcpts + 1, sizeof(*m->out));
	if (strcmp(from, "incoming") == 0) {
		log_event(LOG_INFO, "delivery", "queued", LF_STR("id", m->id),
			  LF_STR("from", m->env.sender),
			  LF_UINT("nrcpt", m->env.nrcpts),
			  LF_UINT("size", m->env.size));
	}
	return true;
}

/* Recipient i into this message's job for its destination. */
static void
msg_job_add(struct msg *m, size_t i, const char *dom)
{
	bool sh = uses_smarthost(m->r->config, dom);
	/* one job per destination: this message's job there, if any, is
	 * the last one queued (made just now) */
	struct dest *d = dest_get(m->r, sh ? "" : dom, sh);
	struct job *j = TAILQ_LAST(&d->jobs, jobq);

	if (j == NULL || j->m != m) {
		j = xcalloc(1, sizeof(*j));
		j->m = m;
		j->d = d;
		j->idx = xcalloc(m->env.nrcpts, sizeof(*j->idx));
		TAILQ_INSERT_TAIL(&d->jobs, j, entry);
		d->njobs++;
		m->jobs++;
	}
	j->idx[j->n++] = i;
}

static const char *
rcpt_domain(const struct msg *m, size_t i)
{
	const char *at = strrchr(m->env.rcpts[i].addr, '@');

	return at != NULL ? at + 1 : "";
}

/*
 * Which pending recipients are local (the user database answered l, in
 * the order of the pending ones; NULL: none asked): local delivery,
 * jobs by destination for the others; a database error leaves the
 * recipient for the next round (451 4.3.0).
 */
static void
msg_route(struct msg *m, const struct domain_lookup *l)
{
	struct runner *r = m->r;
	size_t *local = NULL, nlocal = 0, k = 0;

	for (size_t i = 0; i < m->env.nrcpts && l != NULL; i++) {
		int is_local;

		if (m->st.status[i] != QRS_PENDING)
			continue;
		is_local = k < l->n ? l->r[k++] : -1;
		if (is_local < 0) {
			outcome_set(&m->out[i], 451, "4.3.0",
				    "temporary failure looking up the "
				    "recipient's domain",
				    NULL);
			continue;
		}
		if (is_local == 1) {
			if (local == NULL)
				local = xcalloc(m->env.nrcpts, sizeof(*local));
			local[nlocal++] = i;
			continue;
		}
		msg_job_add(m, i, rcpt_domain(m, i));
	}
	if (nlocal > 0)
		local_deliver(m, local, nlocal);
	/* then start them (a kick may fail jobs at once, even free d) */
	dests_kick(r, NULL);
	if (--m->jobs == 0)
		msg_round_done(m);
}

static void
msg_domains_done(struct lookup_job *job, void *arg)
{
	struct msg *m = arg;

	msg_lookup_done(m, job);
	msg_route(m, (struct domain_lookup *)job);
}

/*
 * Loads a message just moved to active/ and queues its jobs, once the
 * user database (on the lookup thread) has said which recipients'
 * domains are ours.
 */
static void
msg_load(struct runner *r, const char *id, const char *from,
	 bool delete_bounce)
{
	struct msg *m = xcalloc(1, sizeof(*m));
	struct domain_lookup *l;
	const char **doms;
	size_t n = 0;

	m->r = r;
	m->fd = -1;
	memcpy(m->id, id, sizeof(m->id));
	TAILQ_INSERT_TAIL(&r->msgs, m, entry);
	r->nmsgs++;
	if (!msg_open(m, from) || watch_hold(m, from))
		return;
	m->jobs = 1;	/* held while the jobs are made */
	m->delete_req = m->delete_bounce = delete_bounce;
	doms = xcalloc(m->env.nrcpts + 1, sizeof(*doms));
	for (size_t i = 0; i < m->env.nrcpts && !delete_bounce; i++)
		if (m->st.status[i] == QRS_PENDING)
			doms[n++] = rcpt_domain(m, i);
	if (n == 0) {
		free(doms);
		msg_route(m, NULL);
		return;
	}
	l = domain_lookup_new(doms, n);
	free(doms);
	l->job.done = msg_domains_done;
	l->job.arg = m;
	msg_lookup(m, &l->job);
}

/*
 * Moves messages of one queue directory to active/ (one directory fsync
 * for the lot: queue_move_batch) and loads each. Those gone, held or
 * taken already are skipped.
 */
void
msgs_activate(struct runner *r, const char *const *ids, size_t n,
	      const char *from, bool delete_bounce)
{
	bool *moved;

	if (n == 0)
		return;
	moved = xcalloc(n, sizeof(*moved));
	if (queue_move_batch(r->config->data_dir, from, "active", ids, n,
			     moved) < 0)
		log_event(LOG_ERR, "delivery", "move-failed",
			  LF_STR("from", from), LF_STR("to", "active"),
			  LF_UINT("n", n), LF_STR("error", strerror(errno)));
	for (size_t i = 0; i < n; i++)
		if (moved[i])
			msg_load(r, ids[i], from, delete_bounce);
	free(moved);
}
