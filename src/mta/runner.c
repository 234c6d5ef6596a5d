/*
 * The queue runner: see runner.h for what it does and why it is shaped
 * so. One event loop; DNS (libunbound) and SMTP connections are
 * asynchronous in it. Disk work done here is small (renames, unlinks,
 * state files of deferred mail); the reports to senders are written by a
 * committer thread like the workers' (src/deliver.c), durably, before
 * the message they report on is removed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/inotify.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "daemon/config.h"
#include "store/deliver.h"
#include "net/dns.h"
#include "mail/dsn.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "lib/log.h"
#include "lib/workq.h"
#include "store/queue.h"
#include "store/recipient.h"
#include "mta/runner.h"
#include "mta/smtp_client.h"
#include "mail/smtp_parse.h"
#include "store/userdb.h"

#ifndef TAILQ_FOREACH_SAFE
#define TAILQ_FOREACH_SAFE(var, head, field, tvar)                        \
	for ((var) = TAILQ_FIRST(head);                                   \
	     (var) != NULL && ((tvar) = TAILQ_NEXT(var, field), 1);       \
	     (var) = (tvar))
#endif

#define RUNNER_SLOT 63		/* queue id slot: workers use 0..31 */
#define ACTIVE_MAX 10000	/* messages in memory at once; when full, */
#define ACTIVE_LOW 7500		/* more are taken once down to this */
#define CTL_LINE_MAX 256
#define CTL_CLIENTS_MAX 16

struct runner;
struct dest;

/* What one attempt made of one recipient. */
struct outcome {
	bool tried;
	int code;		/* 0: not tried this round */
	char enh[16];
	char *text;		/* "550 5.1.1 user unknown" */
	char *relay;		/* "mx.b.test[198.18.0.12]:25", or NULL */
	bool relayed;		/* the peer does not do DSN */
	char *tls;		/* "TLSv1.3 with cipher ...", or NULL */
};

struct msg {
	struct runner *r;
	char id[QUEUE_ID_LEN + 1];
	struct queue_envelope env;
	uint64_t off;
	int fd;
	struct queue_state st;
	struct outcome *out;
	unsigned jobs;		/* in flight */
	unsigned dsns;		/* reports being committed */
	bool dsn_failed;
	bool hold_req;
	bool delete_req;
	bool delete_bounce;
	bool reported;		/* the reports of this round are out */
	TAILQ_ENTRY(msg) entry;
};

struct job {
	struct msg *m;
	struct dest *d;
	size_t *idx;		/* recipient indices */
	size_t n;
	TAILQ_ENTRY(job) entry;
};

struct conn {
	struct runner *r;
	struct dest *d;
	struct smtp_client *c;
	size_t host, addr;	/* next address to try */
	struct smtp_reply fail;	/* last connection failure */
	char fail_relay[300];	/* where: "host[addr]:port" */
	struct job *job;
	struct smtp_client_msg cm;
	struct smtp_client_rcpt *rcpts;
	TAILQ_ENTRY(conn) entry;
};

struct dest {
	struct runner *r;
	char *key;		/* recipient domain, or "" for the smarthost */
	bool smarthost;
	TAILQ_HEAD(jobq, job) jobs;
	unsigned njobs;
	TAILQ_HEAD(, conn) conns;
	unsigned nconns;
	unsigned nconnecting;
	struct dns_query *q;
	struct dns_route *route;
	TAILQ_ENTRY(dest) entry;
};

struct due {
	char id[QUEUE_ID_LEN + 1];
	int64_t when;
};

struct ctl_client {
	struct runner *r;
	struct bufferevent *bev;
	TAILQ_ENTRY(ctl_client) entry;
};

struct runner {
	struct event_base *base;
	const struct config *config;
	const struct runner_secrets *secrets;
	struct userdb *db;
	struct committer *committer;
	struct reaper *reaper;
	struct dns_resolver *dns;
	SSL_CTX *ssl_mx;
	SSL_CTX *ssl_relay;
	int ino_fd;
	struct event *ino_ev;
	struct event *timer;
	struct evconnlistener *ctl;
	TAILQ_HEAD(, ctl_client) ctl_clients;
	unsigned nctl;
	TAILQ_HEAD(, dest) dests;
	TAILQ_HEAD(, msg) msgs;
	unsigned nmsgs;
	unsigned nconns;
	bool backlog;		/* incoming/ has more than we took */
	struct due *due;
	size_t ndue, due_cap;
	struct msg **defer;	/* deferred, to leave active/ together */
	size_t ndefer, defer_cap;
	struct event *defer_ev;
	int64_t due_min;	/* the earliest due[].when */
	bool stopping;
};

static void dest_kick(struct dest *d);
static void msg_round_done(struct msg *m);
static void timer_arm(struct runner *r);
static void defer_flush(struct runner *r);

/* ---- secrets -------------------------------------------------------- */

int
runner_secrets_load(const struct config *config, struct runner_secrets *s,
		    char **error_r)
{
	char line[1024], *colon, *nl;
	FILE *f;

	memset(s, 0, sizeof(*s));
	if (config->smarthost_credentials == NULL)
		return 0;
	if ((f = fopen(config->smarthost_credentials, "re")) == NULL) {
		*error_r = xasprintf("%s: %s", config->smarthost_credentials,
				     strerror(errno));
		return -1;
	}
	if (fgets(line, sizeof(line), f) == NULL) {
		fclose(f);
		*error_r = xasprintf("%s: empty", config->smarthost_credentials);
		return -1;
	}
	fclose(f);
	if ((nl = strpbrk(line, "\r\n")) != NULL)
		*nl = '\0';
	if ((colon = strchr(line, ':')) == NULL || colon == line ||
	    colon[1] == '\0') {
		explicit_bzero(line, sizeof(line));
		*error_r = xasprintf("%s: expected one line user:password",
				     config->smarthost_credentials);
		return -1;
	}
	*colon = '\0';
	s->user = xstrdup(line);
	s->pass = xstrdup(colon + 1);
	explicit_bzero(line, sizeof(line));
	return 0;
}

void
runner_secrets_free(struct runner_secrets *s)
{
	free(s->user);
	if (s->pass != NULL) {
		explicit_bzero(s->pass, strlen(s->pass));
		free(s->pass);
	}
	memset(s, 0, sizeof(*s));
}

/* ---- helpers -------------------------------------------------------- */

static int64_t
now_s(void)
{
	return (int64_t)time(NULL);
}

static const char *
rcpt_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at != NULL ? at + 1 : "";
}

static bool
uses_smarthost(const struct config *c, const char *domain)
{
	if (c->smarthost_host == NULL)
		return false;
	if (c->nsmarthost_domains == 0)
		return true;
	for (size_t i = 0; i < c->nsmarthost_domains; i++)
		if (strcasecmp(c->smarthost_domains[i], domain) == 0)
			return true;
	return false;
}

static enum tls_policy
mx_policy(const struct config *c, const char *domain)
{
	for (size_t i = 0; i < c->ntls_policies; i++)
		if (strcasecmp(c->tls_policies[i].domain, domain) == 0)
			return c->tls_policies[i].policy;
	return c->outbound_tls;
}

static void
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

static void
outcome_clear(struct outcome *o)
{
	free(o->text);
	free(o->relay);
	free(o->tls);
	memset(o, 0, sizeof(*o));
}

/* ---- reports to the sender ----------------------------------------- */

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

static uint64_t
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

/*
 * Builds a report on the recipients idx[] of m and hands it to the
 * committer: into the sender's Maildir if the sender is local, into the
 * queue (null sender) if not. Returns false if nothing was submitted.
 */
static bool
dsn_send(struct msg *m, enum dsn_action action, const size_t *idx, size_t n,
	 bool failure)
{
	struct runner *r = m->r;
	const struct config *cf = r->config;
	struct dsn_rcpt *dr = xcalloc(n, sizeof(*dr));
	struct dsn_report rep;
	struct recipient_ctx rctx;
	struct recipient_result res;
	struct smtp_path path;
	struct smtp_error perr;
	struct delivery_job *job;
	struct dsn_ctx *ctx;
	const char *end;
	char *text, *ptext, *tmp, (*status)[16];
	unsigned char *orig;
	size_t len, olen;
	uint64_t want;
	ssize_t got;
	int64_t now = now_s();
	uint64_t lines = 0;
	bool hdr_ok = true;

	status = xcalloc(n + 1, sizeof(*status));
	want = m->env.size < DSN_FULL_MAX ? m->env.size : DSN_FULL_MAX;
	orig = xmalloc(want + 1);
	got = pread(m->fd, orig, want, (off_t)m->off);
	olen = got > 0 ? (size_t)got : 0;
	for (size_t i = 0; i < n; i++) {
		struct outcome *o = &m->out[idx[i]];
		struct queue_rcpt *qr = &m->env.rcpts[idx[i]];
		snprintf(status[i], sizeof(status[i]), "%s",
			 o->enh[0] != '\0' ? o->enh
			 : action == DSN_FAILED ? "5.0.0"
			 : action == DSN_DELAYED ? "4.0.0"
						 : "2.0.0");
		/* a temporary error that ran out of time keeps its 4.x.x
		 * status with Action: failed, as Postfix and Sendmail do */
		dr[i].addr = qr->addr;
		dr[i].orcpt = qr->orcpt;
		dr[i].action = action == DSN_DELIVERED && o->relayed
				       ? DSN_RELAYED
				       : action;
		dr[i].status = status[i];
		dr[i].diagnostic = o->text;
		dr[i].remote_mta = NULL;
		if (o->relay != NULL) {
			/* "host[addr]:port" -> host */
			char *b = strchr(o->relay, '[');
			if (b != NULL)
				*b = '\0';
			dr[i].remote_mta = xstrdup(o->relay);
			if (b != NULL)
				*b = '[';
		}
		dr[i].last_attempt = o->tried ? now : 0;
		dr[i].retry_until = m->env.arrival + (int64_t)cf->queue_lifetime;
	}
	memset(&rep, 0, sizeof(rep));
	rep.hostname = cf->hostname;
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
	rep.msglen = olen;
	rep.msgsize = m->env.size;
	text = dsn_format(&rep, &len);
	for (size_t i = 0; i < n; i++)
		free((char *)dr[i].remote_mta);
	free(dr);
	free(status);
	free(orig);

	/* where it goes: the sender's mailboxes, or the queue */
	ptext = xasprintf("<%s>", m->env.sender);
	if (smtp_parse_path(ptext, false, false, true, &path, &end, &perr) <
		0 ||
	    *end != '\0') {
		log_event(LOG_WARNING, "delivery", "dsn-dropped",
			  LF_STR("id", m->id), LF_STR("reason", "bad-sender"));
		free(ptext);
		free(text);
		return false;
	}
	free(ptext);
	memset(&rctx, 0, sizeof(rctx));
	rctx.db = r->db;
	rctx.hostname = cf->hostname;
	rctx.postmaster = cf->postmaster;
	rctx.delimiter = cf->recipient_delimiter;
	rctx.trusted = true;
	memset(&res, 0, sizeof(res));
	recipient_resolve(&rctx, &path.mbox, &res);
	if (res.verdict != RCPT_ACCEPT) {
		log_event(LOG_WARNING, "delivery", "dsn-dropped",
			  LF_STR("id", m->id), LF_STR("to", m->env.sender),
			  LF_STR("reason", res.verdict == RCPT_REJECT
						   ? "sender-unknown"
						   : "lookup-failed"));
		recipient_result_free(&res);
		free(text);
		if (res.verdict == RCPT_TEMPFAIL && failure)
			m->dsn_failed = true;
		return false;
	}

	job = xcalloc(1, sizeof(*job));
	queue_id_new(job->id);
	tmp = xasprintf("%s/queue/tmp/%s", cf->data_dir, job->id);
	job->spool = spool_new(tmp);
	free(tmp);
	if (res.nmailboxes > 0) {
		hdr_ok = spool_local_header(job->spool, "",
					    res.nmailboxes == 1
						    ? res.mailboxes[0]
						    : NULL,
					    &job->local_hdr_len, &lines) == 0;
		job->mailboxes = res.mailboxes;
		job->nmailboxes = res.nmailboxes;
		res.mailboxes = NULL;
		res.nmailboxes = 0;
	}
	if (!hdr_ok || spool_write(job->spool, text, len) < 0) {
		delivery_job_free(&job);
		recipient_result_free(&res);
		free(text);
		if (failure)
			m->dsn_failed = true;
		return false;
	}
	job->vsize = spool_size(job->spool) + lines + count_lf(text, len);
	if (res.nremotes > 0) {
		struct queue_envelope *e = xcalloc(1, sizeof(*e));
		memcpy(e->id, job->id, sizeof(e->id));
		e->arrival = now;
		e->client_ip = xstrdup("127.0.0.1");
		e->helo = xstrdup(cf->hostname);
		e->sender = xstrdup("");
		e->body = xstrdup(has_8bit(text, len) ? "8BITMIME" : "7BIT");
		e->smtputf8 = m->env.smtputf8;
		e->ret = xstrdup("");
		e->envid = xstrdup("");
		for (size_t i = 0; i < res.nremotes; i++)
			queue_rcpt_add(e, res.remotes[i], SMTP_NOTIFY_NEVER,
				       "");
		job->env = e;
	}
	recipient_result_free(&res);
	free(text);
	log_event(LOG_INFO, "delivery", "dsn", LF_STR("id", m->id),
		  LF_STR("dsn_id", job->id),
		  LF_STR("action", action == DSN_FAILED	   ? "failed"
				   : action == DSN_DELAYED ? "delayed"
							   : "delivered"));
	ctx = xcalloc(1, sizeof(*ctx));
	ctx->m = m;
	ctx->failure = failure;
	job->done = dsn_done;
	job->arg = ctx;
	m->dsns++;
	committer_submit(r->committer, job);
	return true;
}

/* ---- removing delivered mail ---------------------------------------- */

/*
 * Removing a file can block for a long time: on a file system mounted
 * with "discard", freeing the blocks waits for the device. So delivered
 * messages are unlinked (and their last descriptor closed) by a thread
 * of their own, never on the event loop. A crash before it gets to one
 * delivers that message again (the at-least-once window, runner.h).
 */
struct reap_item {
	char id[QUEUE_ID_LEN + 1];
	int fd;
};

struct reaper {
	struct workq *wq;	/* the reaper thread: one item at a time */
	char *data_dir;
};

static void
reaper_run(void *arg, void **items, size_t n)
{
	struct reaper *rp = arg;
	struct reap_item *it = items[0];
	char *path;

	(void)n;
	path = xasprintf("%s/queue/active/%s", rp->data_dir, it->id);
	unlink(path);
	free(path);
	queue_state_remove(rp->data_dir, it->id);
	if (it->fd >= 0)
		close(it->fd);
	free(it);
}

static struct reaper *
reaper_new(const char *data_dir)
{
	struct reaper *rp = xcalloc(1, sizeof(*rp));

	rp->data_dir = xstrdup(data_dir);
	rp->wq = workq_start("reaper", 1, reaper_run, rp);
	return rp;
}

static void
reaper_add(struct reaper *rp, const char *id, int fd)
{
	struct reap_item *it = xcalloc(1, sizeof(*it));

	memcpy(it->id, id, sizeof(it->id));
	it->fd = fd;
	workq_submit(rp->wq, it);
}

/* Finishes what it has, then goes. */
static void
reaper_free(struct reaper **rpp)
{
	struct reaper *rp = *rpp;

	if (rp == NULL)
		return;
	workq_stop(&rp->wq);
	free(rp->data_dir);
	free(rp);
	*rpp = NULL;
}

/* ---- messages ------------------------------------------------------- */

static void
due_add(struct runner *r, const char *id, int64_t when)
{
	if (r->ndue == r->due_cap) {
		r->due_cap = r->due_cap ? r->due_cap * 2 : 64;
		r->due = xreallocarray(r->due, r->due_cap, sizeof(*r->due));
	}
	memcpy(r->due[r->ndue].id, id, sizeof(r->due[0].id));
	r->due[r->ndue].when = when;
	r->ndue++;
	if (r->ndue == 1 || when < r->due_min) {
		r->due_min = when;
		timer_arm(r);
	}
}

static void
msg_free(struct msg *m)
{
	struct runner *r = m->r;

	TAILQ_REMOVE(&r->msgs, m, entry);
	r->nmsgs--;
	if (m->fd >= 0)
		close(m->fd);
	for (size_t i = 0; i < m->env.nrcpts; i++)
		outcome_clear(&m->out[i]);
	free(m->out);
	queue_state_free(&m->st);
	queue_envelope_free(&m->env);
	free(m);
	/* room again after a full house: take the next batch */
	if (r->nmsgs == ACTIVE_LOW && (r->backlog || r->ndue > 0))
		timer_arm(r);
}

static uint64_t
backoff(const struct config *c, unsigned attempts)
{
	uint64_t d = c->queue_retry_min;

	for (unsigned i = 1; i < attempts && d < c->queue_retry_max; i++)
		d *= 2;
	return d < c->queue_retry_max ? d : c->queue_retry_max;
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

/*
 * Every job of this round is done: decide each recipient's fate and send
 * the reports (first pass); once the reports are durable (dsn_done calls
 * back), keep or drop the message (second pass).
 */
static void
msg_round_done(struct msg *m)
{
	struct runner *r = m->r;
	const struct config *cf = r->config;
	int64_t now = now_s();
	bool expired = now - m->env.arrival >= (int64_t)cf->queue_lifetime;
	bool null_sender = m->env.sender[0] == '\0';
	size_t n = m->env.nrcpts, nf = 0, ns = 0, nd = 0, pending = 0;
	size_t *fail, *succ, *dly;

	if (m->jobs > 0 || m->dsns > 0)
		return;
	if (m->reported)
		goto finish;
	fail = xcalloc(n + 1, sizeof(*fail));
	succ = xcalloc(n + 1, sizeof(*succ));
	dly = xcalloc(n + 1, sizeof(*dly));
	for (size_t i = 0; i < n; i++) {
		struct outcome *o = &m->out[i];
		unsigned notify = m->env.rcpts[i].notify;

		if (m->st.status[i] != QRS_PENDING)
			continue;
		if (m->delete_bounce &&
		    !(o->tried && o->code >= 200 && o->code < 300))
			outcome_set(o, 550, "5.0.0",
				    "message deleted by the administrator",
				    NULL);
		if (!o->tried)
			continue;
		if (o->code >= 200 && o->code < 300) {
			log_outcome(m, i, "sent");
			if (!null_sender &&
			    (notify & SMTP_NOTIFY_SUCCESS) != 0)
				succ[ns++] = i;
		} else if (o->code >= 500 || expired) {
			log_outcome(m, i, "bounced");
			if (!null_sender && dsn_wanted(notify, DSN_FAILED))
				fail[nf++] = i;
		} else {
			log_outcome(m, i, "deferred");
			if (!null_sender && cf->queue_delay_warning > 0 &&
			    !m->st.warned &&
			    now - m->env.arrival >=
				(int64_t)cf->queue_delay_warning &&
			    dsn_wanted(notify, DSN_DELAYED))
				dly[nd++] = i;
		}
	}
	m->reported = true;
	m->dsns++;	/* no second pass while submitting */
	if (nf > 0)
		dsn_send(m, DSN_FAILED, fail, nf, true);
	if (ns > 0)
		dsn_send(m, DSN_DELIVERED, succ, ns, false);
	if (nd > 0 && dsn_send(m, DSN_DELAYED, dly, nd, false))
		m->st.warned = true;
	m->dsns--;
	free(fail);
	free(succ);
	free(dly);
	if (m->dsns > 0)
		return;

finish:
	m->st.attempts++;
	for (size_t i = 0; i < n; i++) {
		struct outcome *o = &m->out[i];
		if (m->st.status[i] != QRS_PENDING)
			continue;
		if (o->tried && o->code >= 200 && o->code < 300) {
			m->st.status[i] = QRS_DONE;
		} else if (o->tried && (o->code >= 500 || expired) &&
			   !(m->dsn_failed && !null_sender)) {
			/* (a failure report that could not be written
			 * leaves the recipient pending: reported again) */
			m->st.status[i] = QRS_FAILED;
		} else {
			pending++;
		}
		if (o->tried) {
			free(m->st.errors[i]);
			m->st.errors[i] = xstrdup(o->text);
			free(m->st.last_error);
			m->st.last_error = xstrdup(o->text);
		}
	}
	if (pending == 0 || m->delete_req) {
		reaper_add(r->reaper, m->id, m->fd);
		m->fd = -1;
		log_event(LOG_INFO, "delivery", "removed", LF_STR("id", m->id),
			  LF_STR_IF(m->delete_req, "reason", "deleted"));
		msg_free(m);
		return;
	}
	m->st.next_attempt = now + (int64_t)backoff(cf, m->st.attempts);
	/* kept, with the others deferred in this turn of the event loop, for
	 * defer_flush() */
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
 * The messages deferred (or held) since the last call leave active/, at
 * the cost of one fsync of queue/state/ and one of each directory they
 * go to for them all: every state file is durable first (the retry
 * count, errors and expiry must not be lost), then they move.
 */
static void
defer_flush(struct runner *r)
{
	const struct config *cf = r->config;
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
	queue_state_write_batch(cf->data_dir, ids, sts, n, errs);
	for (size_t i = 0; i < n; i++) {
		if (errs[i] == NULL)
			continue;
		log_event(LOG_ERR, "delivery", "state-failed",
			  LF_STR("id", ids[i]), LF_STR("error", errs[i]));
		free(errs[i]);
	}
	/* then the moves: to deferred/, and to hold/ what was held */
	for (int hold = 0; hold < 2; hold++) {
		const char *to = hold ? "hold" : "deferred";
		const char **sub = xcalloc(n, sizeof(*sub));
		struct msg **subm = xcalloc(n, sizeof(*subm));
		bool *submoved = xcalloc(n, sizeof(*submoved));
		size_t k = 0;
		int e = 0;

		for (size_t i = 0; i < n; i++)
			if (v[i]->hold_req == (hold == 1)) {
				subm[k] = v[i];
				sub[k++] = ids[i];
			}
		if (k > 0 && queue_move_batch(cf->data_dir, "active", to, sub,
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
	for (size_t i = 0; i < n; i++)
		msg_free(v[i]);
	free(errs);
	free(sts);
	free(ids);
	free(v);
}

static void
defer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	defer_flush(arg);
}

static struct dest *
dest_get(struct runner *r, const char *key, bool smarthost)
{
	struct dest *d;

	TAILQ_FOREACH(d, &r->dests, entry)
		if (d->smarthost == smarthost && strcmp(d->key, key) == 0)
			return d;
	d = xcalloc(1, sizeof(*d));
	d->r = r;
	d->key = xstrdup(key);
	d->smarthost = smarthost;
	TAILQ_INIT(&d->jobs);
	TAILQ_INIT(&d->conns);
	TAILQ_INSERT_TAIL(&r->dests, d, entry);
	return d;
}

static void
dest_maybe_free(struct dest *d)
{
	if (d->njobs > 0 || d->nconns > 0)
		return;
	if (d->q != NULL)
		dns_query_cancel(d->q);
	dns_route_free(&d->route);
	TAILQ_REMOVE(&d->r->dests, d, entry);
	free(d->key);
	free(d);
}

static void
job_finish(struct job *j)
{
	struct msg *m = j->m;

	free(j->idx);
	free(j);
	if (--m->jobs == 0)
		msg_round_done(m);
}

/*
 * Fails (or defers) a job's recipients with one reply. soft: whatever
 * its code, the reply only defers (connection-level trouble: the reply
 * is kept as the server gave it, for the operator, with a 4 as its
 * class).
 */
static void
job_fail(struct job *j, int code, const char *enh, const char *text,
	 const char *relay, bool soft)
{
	for (size_t i = 0; i < j->n; i++) {
		struct outcome *o = &j->m->out[j->idx[i]];
		outcome_set(o, code, enh, text, relay);
		if (soft && o->code >= 500) {
			o->code = 400 + o->code % 100;
			o->enh[0] = '4';
		}
	}
	job_finish(j);
}

/* ---- local recipients ------------------------------------------------ */

/*
 * Recipients in local domains reach the queue only when the client asked
 * for a success report (NOTIFY=SUCCESS, RFC 3461): they are delivered to
 * their Maildirs here, by the committer, and reported as "delivered".
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

static void
local_deliver(struct msg *m, size_t *idx, size_t n)
{
	struct runner *r = m->r;
	const struct config *cf = r->config;
	struct delivery_job *job = xcalloc(1, sizeof(*job));
	struct local_job *lj = xcalloc(1, sizeof(*lj));
	char *tmp, buf[64 * 1024];
	uint64_t left = m->env.size, off = m->off, lines = 0;
	bool ok = true;

	memcpy(job->id, m->id, sizeof(job->id));
	/* a distinct spool name: the message file keeps its own id */
	tmp = xasprintf("%s/queue/tmp/%s.local", cf->data_dir, m->id);
	job->spool = spool_new(tmp);
	free(tmp);
	ok = spool_local_header(job->spool, m->env.sender,
				n == 1 ? m->env.rcpts[idx[0]].addr : NULL,
				&job->local_hdr_len, &lines) == 0;
	while (ok && left > 0) {
		size_t want = left < sizeof(buf) ? (size_t)left : sizeof(buf);
		ssize_t got = pread(m->fd, buf, want, (off_t)off);
		if (got <= 0) {
			ok = false;
			break;
		}
		ok = spool_write(job->spool, buf, (size_t)got) == 0;
		lines += count_lf(buf, (size_t)got);
		left -= (uint64_t)got;
		off += (uint64_t)got;
	}
	job->vsize = spool_size(job->spool) + lines;
	job->mailboxes = xcalloc(n, sizeof(*job->mailboxes));
	for (size_t i = 0; i < n; i++)
		job->mailboxes[i] = xstrdup(m->env.rcpts[idx[i]].addr);
	job->nmailboxes = n;
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

/* Loads a message just moved to active/ and queues its jobs. */
static void
msg_load(struct runner *r, const char *id, const char *from,
	 bool delete_bounce)
{
	const struct config *cf = r->config;
	struct msg *m;
	char *path, *err = NULL;
	size_t *local = NULL, nlocal = 0;

	m = xcalloc(1, sizeof(*m));
	m->r = r;
	m->fd = -1;
	memcpy(m->id, id, sizeof(m->id));
	TAILQ_INSERT_TAIL(&r->msgs, m, entry);
	r->nmsgs++;
	path = xasprintf("%s/queue/active/%s", cf->data_dir, id);
	if (queue_envelope_read(path, &m->env, &m->off, &err) < 0 ||
	    (m->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		log_event(LOG_ERR, "delivery", "corrupt", LF_STR("id", id),
			  LF_STR("error", err != NULL ? err : strerror(errno)),
			  LF_STR("action", "hold"));
		free(err);
		free(path);
		queue_move(cf->data_dir, id, "active", "hold");
		queue_state_init(&m->st, 0);
		msg_free(m);
		return;
	}
	free(path);
	if (queue_state_read(cf->data_dir, id, m->env.nrcpts, &m->st, &err) <
	    0) {
		log_event(LOG_WARNING, "delivery", "state-invalid",
			  LF_STR("id", id), LF_STR("error", err));
		free(err);
	}
	m->out = xcalloc(m->env.nrcpts + 1, sizeof(*m->out));
	if (strcmp(from, "incoming") == 0) {
		log_event(LOG_INFO, "delivery", "queued", LF_STR("id", id),
			  LF_STR("from", m->env.sender),
			  LF_UINT("nrcpt", m->env.nrcpts),
			  LF_UINT("size", m->env.size));
	}
	m->jobs = 1;	/* held while the jobs are made */
	m->delete_req = m->delete_bounce = delete_bounce;
	for (size_t i = 0; i < m->env.nrcpts && !delete_bounce; i++) {
		const char *dom;
		bool sh;
		struct dest *d;
		struct job *j;

		if (m->st.status[i] != QRS_PENDING)
			continue;
		dom = rcpt_domain(m->env.rcpts[i].addr);
		if (m->env.sender[0] != '\0' &&
		    (m->env.rcpts[i].notify & SMTP_NOTIFY_SUCCESS) != 0 &&
		    userdb_domain_exists(r->db, dom) == 1) {
			if (local == NULL)
				local = xcalloc(m->env.nrcpts, sizeof(*local));
			local[nlocal++] = i;
			continue;
		}
		sh = uses_smarthost(cf, dom);
		/* one job per destination: this message's job there, if
		 * any, is the last one queued (made just now) */
		d = dest_get(r, sh ? "" : dom, sh);
		j = TAILQ_LAST(&d->jobs, jobq);
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
	if (nlocal > 0)
		local_deliver(m, local, nlocal);
	/* then start them (a kick may fail jobs at once, even free d) */
	{
		struct dest *d, *dn;
		TAILQ_FOREACH_SAFE(d, &r->dests, entry, dn)
			if (d->njobs > d->nconnecting)
				dest_kick(d);
	}
	if (--m->jobs == 0)
		msg_round_done(m);
}

/*
 * Moves messages of one queue directory to active/ (one directory fsync
 * for the lot: queue_move_batch) and loads each. Those gone, held or
 * taken already are skipped.
 */
static void
msgs_activate(struct runner *r, const char *const *ids, size_t n,
	      const char *from, bool delete_bounce)
{
	const struct config *cf = r->config;
	bool *moved;

	if (n == 0)
		return;
	moved = xcalloc(n, sizeof(*moved));
	if (queue_move_batch(cf->data_dir, from, "active", ids, n, moved) < 0)
		log_event(LOG_ERR, "delivery", "move-failed",
			  LF_STR("from", from), LF_STR("to", "active"),
			  LF_UINT("n", n), LF_STR("error", strerror(errno)));
	for (size_t i = 0; i < n; i++)
		if (moved[i])
			msg_load(r, ids[i], from, delete_bounce);
	free(moved);
}

/* ---- connections ---------------------------------------------------- */

static void conn_try(struct conn *c);
static void conn_next_job(struct conn *c);

static void
conn_free(struct conn *c, bool quit)
{
	struct dest *d = c->d;
	struct runner *r = c->r;

	if (quit && c->c != NULL)
		smtp_client_quit(c->c);
	else
		smtp_client_free(&c->c);
	TAILQ_REMOVE(&d->conns, c, entry);
	d->nconns--;
	r->nconns--;
	free(c->rcpts);
	free(c);
	/* the global limit was reached and a slot is free: whoever waits
	 * for one may go (below the limit, nobody waits) */
	if (!r->stopping &&
	    r->nconns + 1 == r->config->outbound_max_connections) {
		struct dest *x, *xn;
		TAILQ_FOREACH_SAFE(x, &r->dests, entry, xn)
			if (x != d && x->njobs > x->nconnecting)
				dest_kick(x);
	}
}

/*
 * No address of the route took us: every job still waiting here gets
 * this failure, unless another connection is still at work on them.
 */
static void
dest_fail_all(struct dest *d, int code, const char *enh, const char *text,
	      const char *relay, bool soft)
{
	struct job *j;

	while ((j = TAILQ_FIRST(&d->jobs)) != NULL) {
		TAILQ_REMOVE(&d->jobs, j, entry);
		d->njobs--;
		job_fail(j, code, enh, text, relay, soft);
	}
}

static void
conn_ready_cb(struct smtp_client *sc, bool ok, const struct smtp_reply *reply,
	      void *arg)
{
	struct conn *c = arg;
	struct dest *d = c->d;

	(void)sc;
	if (ok) {
		d->nconnecting--;
		conn_next_job(c);
		return;
	}
	c->fail = *reply;
	snprintf(c->fail_relay, sizeof(c->fail_relay), "%s",
		 smtp_client_peer(sc));
	smtp_client_free(&c->c);
	conn_try(c);
}

static void
conn_done_cb(struct smtp_client *sc, bool ok, void *arg)
{
	struct conn *c = arg;
	struct job *j = c->job;
	const char *relay = smtp_client_peer(sc);
	bool relayed = (smtp_client_ehlo(sc)->ext & SMTP_EXT_DSN) == 0;
	char tlsbuf[160];
	const char *tls = smtp_client_tls(sc, tlsbuf, sizeof(tlsbuf));

	c->job = NULL;
	for (size_t i = 0; i < j->n; i++) {
		struct outcome *o = &j->m->out[j->idx[i]];
		const struct smtp_reply *rp = &c->rcpts[i].reply;
		outcome_set(o, rp->code, rp->enh, rp->text, relay);
		o->relayed = relayed;
		o->tls = tls != NULL ? xstrdup(tls) : NULL;
	}
	job_finish(j);
	if (ok) {
		conn_next_job(c);
	} else {
		struct dest *d = c->d;
		conn_free(c, false);
		if (d->njobs > 0)
			dest_kick(d);
		else
			dest_maybe_free(d);
	}
}

static void
conn_next_job(struct conn *c)
{
	struct dest *d = c->d;
	struct job *j = TAILQ_FIRST(&d->jobs);
	struct msg *m;

	if (j == NULL || c->r->stopping) {
		conn_free(c, true);
		dest_maybe_free(d);
		return;
	}
	TAILQ_REMOVE(&d->jobs, j, entry);
	d->njobs--;
	c->job = j;
	m = j->m;
	free(c->rcpts);
	c->rcpts = xcalloc(j->n, sizeof(*c->rcpts));
	for (size_t i = 0; i < j->n; i++) {
		struct queue_rcpt *qr = &m->env.rcpts[j->idx[i]];
		c->rcpts[i].addr = qr->addr;
		c->rcpts[i].notify = qr->notify;
		c->rcpts[i].orcpt = qr->orcpt;
	}
	memset(&c->cm, 0, sizeof(c->cm));
	c->cm.sender = m->env.sender;
	c->cm.envid = m->env.envid;
	c->cm.ret = m->env.ret;
	c->cm.body = strcmp(m->env.body, "BINARYMIME") == 0 ? 2
		     : strcmp(m->env.body, "8BITMIME") == 0 ? 1
							      : 0;
	c->cm.smtputf8 = m->env.smtputf8;
	c->cm.fd = m->fd;
	c->cm.offset = m->off;
	c->cm.size = m->env.size;
	c->cm.rcpts = c->rcpts;
	c->cm.nrcpts = j->n;
	smtp_client_send(c->c, &c->cm, conn_done_cb, c);
}

/*
 * The client TLS context, made when first needed (loading the system's
 * CA store takes a while, and a server that only relays in clear never
 * needs it). One context when both ask for the same CA file.
 */
static SSL_CTX *
ssl_ctx_for(struct runner *r, bool smarthost)
{
	const struct config *cf = r->config;
	const char *mx_ca = cf->outbound_ca_file, *sh_ca = cf->smarthost_ca_file;
	bool same = (mx_ca == NULL && sh_ca == NULL) ||
		    (mx_ca != NULL && sh_ca != NULL && strcmp(mx_ca, sh_ca) == 0);
	SSL_CTX **slot = smarthost && !same ? &r->ssl_relay : &r->ssl_mx;
	char *error = NULL;

	if (*slot == NULL &&
	    (*slot = smtp_client_ssl_ctx_new(smarthost ? sh_ca : mx_ca,
					     &error)) == NULL) {
		log_event(LOG_ERR, "delivery", "tls-setup-failed",
			  LF_STR("error", error));
		free(error);
	}
	return *slot;
}

/* Connects to the next address of the route; at the end, gives up. */
static void
conn_try(struct conn *c)
{
	struct runner *r = c->r;
	const struct config *cf = r->config;
	struct dest *d = c->d;
	struct dns_route *rt = d->route;
	struct smtp_client_params p;
	struct sockaddr_storage ss;
	const struct sockaddr *src = NULL;
	socklen_t srclen = 0, salen;
	struct dns_host *h;

	while (rt != NULL && c->host < rt->nhosts &&
	       c->addr >= rt->hosts[c->host].naddrs) {
		c->host++;
		c->addr = 0;
	}
	if (rt == NULL || c->host >= rt->nhosts || r->stopping) {
		char text[SMTP_CLIENT_TEXT_MAX + 16], enh[16], relay[300];
		int code = c->fail.code != 0 ? c->fail.code : 451;

		snprintf(enh, sizeof(enh), "%s",
			 c->fail.enh[0] != '\0' ? c->fail.enh : "4.4.1");
		snprintf(text, sizeof(text), "%s",
			 c->fail.code != 0 ? c->fail.text
					   : "no address to connect to");
		snprintf(relay, sizeof(relay), "%s", c->fail_relay);
		d->nconnecting--;
		conn_free(c, false);
		/* the last connection out takes the waiting jobs with it;
		 * while others live, they take them. A refusal at the door
		 * of every host (greeting, EHLO, even a smarthost refusing
		 * our password) is not the mail's fault: it only defers
		 * (soft), as in Postfix, with the server's reply kept */
		if (d->nconns == 0)
			dest_fail_all(d, code, enh, text,
				      relay[0] != '\0' ? relay : NULL, true);
		dest_maybe_free(d);
		return;
	}
	h = &rt->hosts[c->host];
	memcpy(&ss, &h->addrs[c->addr], sizeof(ss));
	salen = h->addrlens[c->addr];
	c->addr++;
	{
		unsigned port = d->smarthost ? cf->smarthost_port
					     : cf->outbound_port;
		if (ss.ss_family == AF_INET)
			((struct sockaddr_in *)&ss)->sin_port = htons(port);
		else
			((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
	}
	if (ss.ss_family == AF_INET && cf->outbound_source4_len > 0) {
		src = (const struct sockaddr *)&cf->outbound_source4;
		srclen = cf->outbound_source4_len;
	} else if (ss.ss_family == AF_INET6 && cf->outbound_source6_len > 0) {
		src = (const struct sockaddr *)&cf->outbound_source6;
		srclen = cf->outbound_source6_len;
	}
	memset(&p, 0, sizeof(p));
	p.helo_name = cf->hostname;
	p.server_name = h->name;
	p.t_connect = cf->outbound_timeout_connect;
	p.t_greeting = cf->outbound_timeout_greeting;
	p.t_command = cf->outbound_timeout_command;
	p.t_data_init = cf->outbound_timeout_data_init;
	p.t_data_block = cf->outbound_timeout_data_block;
	p.t_data_end = cf->outbound_timeout_data_end;
	if (d->smarthost) {
		p.implicit_tls = cf->smarthost_tls == SMARTHOST_IMPLICIT;
		p.tls = cf->smarthost_tls == SMARTHOST_NONE ? TLS_POLICY_NONE
			: cf->smarthost_verify		    ? TLS_POLICY_VERIFY
							    : TLS_POLICY_ENCRYPT;
		p.auth_user = r->secrets->user;
		p.auth_pass = r->secrets->pass;
	} else {
		p.tls = mx_policy(cf, d->key);
	}
	/* without a context the client cannot do TLS: "may" goes on in
	 * clear, the stricter policies fail (deferred), as they must */
	if (p.tls != TLS_POLICY_NONE || p.implicit_tls)
		p.ssl_ctx = ssl_ctx_for(r, d->smarthost);
	c->c = smtp_client_new(r->base, &p, (struct sockaddr *)&ss, salen, src,
			       srclen, conn_ready_cb, c);
}

static void
conn_start(struct dest *d)
{
	struct runner *r = d->r;
	struct conn *c = xcalloc(1, sizeof(*c));

	c->r = r;
	c->d = d;
	TAILQ_INSERT_TAIL(&d->conns, c, entry);
	d->nconns++;
	d->nconnecting++;
	r->nconns++;
	conn_try(c);
}

/* ---- destinations --------------------------------------------------- */

static void
route_cb(struct dns_route *route, void *arg)
{
	struct dest *d = arg;

	d->q = NULL;
	if (route->status != DNS_OK) {
		int code = route->status == DNS_TEMPFAIL ? 451 : 550;
		const char *enh = route->status == DNS_NULLMX	 ? "5.1.10"
				  : route->status == DNS_TEMPFAIL ? "4.4.3"
								  : "5.1.2";
		char text[300];
		snprintf(text, sizeof(text), "%s",
			 route->status == DNS_NULLMX
				 ? "Domain does not accept mail (null MX)"
				 : route->error);
		if (route->status == DNS_NULLMX)
			code = 556;
		dns_route_free(&route);
		dest_fail_all(d, code, enh, text, NULL, false);
		dest_maybe_free(d);
		return;
	}
	/* RFC 5321 5.1: when we are one of the MX hosts, only the ones
	 * preferred to us may be used; none left is a loop */
	if (!d->smarthost) {
		const char *me = d->r->config->hostname;
		for (size_t i = 0; i < route->nhosts; i++) {
			size_t cut = 0;
			if (strcasecmp(route->hosts[i].name, me) != 0)
				continue;
			/* hosts sorted by preference: keep the ones below ours */
			while (cut < route->nhosts &&
			       route->hosts[cut].pref < route->hosts[i].pref)
				cut++;
			i = cut;
			if (i == 0) {
				char text[300];
				snprintf(text, sizeof(text),
					 "mail for %s loops back to myself",
					 d->key);
				dns_route_free(&route);
				dest_fail_all(d, 554, "5.4.6", text, NULL,
					      false);
				dest_maybe_free(d);
				return;
			}
			for (size_t k = i; k < route->nhosts; k++) {
				free(route->hosts[k].name);
				free(route->hosts[k].addrs);
				free(route->hosts[k].addrlens);
			}
			route->nhosts = i;
			break;
		}
	}
	d->route = route;
	dest_kick(d);
}

/* Starts what the destination's queue calls for, within the limits. */
static void
dest_kick(struct dest *d)
{
	struct runner *r = d->r;
	const struct config *cf = r->config;

	if (r->stopping || d->q != NULL)
		return;
	if (d->route == NULL) {
		struct dns_lookup_opts o;
		const char *name = d->smarthost ? cf->smarthost_host : d->key;
		o.want_ipv4 = cf->outbound_ipv4;
		o.want_ipv6 = cf->outbound_ipv6;
		o.prefer = cf->outbound_prefer_ipv4 ? DNS_PREFER_IPV4
						    : DNS_PREFER_IPV6;
		o.no_mx = d->smarthost;
		d->q = dns_route_lookup(r->dns, name, &o, route_cb, d);
		return;
	}
	while (d->njobs > d->nconnecting &&
	       d->nconns < cf->outbound_max_per_domain &&
	       r->nconns < cf->outbound_max_connections)
		conn_start(d);
}

/* ---- picking up ----------------------------------------------------- */

static void
pickup_incoming(struct runner *r)
{
	size_t n;
	char **v = queue_ids(r->config->data_dir, "incoming", &n);
	size_t room = r->nmsgs < ACTIVE_MAX ? ACTIVE_MAX - r->nmsgs : 0;

	r->backlog = n > room;
	msgs_activate(r, (const char *const *)v, n < room ? n : room,
		      "incoming", false);
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void
timer_arm(struct runner *r)
{
	struct timeval tv = {0, 0};
	int64_t next = INT64_MAX, now = now_s();

	if (r->stopping)
		return;
	if (r->nmsgs >= ACTIVE_MAX) {
		evtimer_del(r->timer);	/* msg_free() calls again */
		return;
	}
	if (r->ndue > 0)
		next = r->due_min;
	if (r->backlog)
		next = now;
	if (next == INT64_MAX) {
		evtimer_del(r->timer);
		return;
	}
	tv.tv_sec = next > now ? (time_t)(next - now) : 0;
	evtimer_add(r->timer, &tv);
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct runner *r = arg;
	int64_t now = now_s();
	size_t o = 0;

	(void)fd;
	(void)what;
	if (r->backlog && r->nmsgs < ACTIVE_MAX)
		pickup_incoming(r);
	/* the due ones are taken out first: activating one may add to
	 * due[] (a message deferred again at once) */
	struct due *todo = NULL;
	const char **ids = NULL;
	size_t ntodo = 0, room = r->nmsgs < ACTIVE_MAX ? ACTIVE_MAX - r->nmsgs
						       : 0;
	r->due_min = INT64_MAX;
	for (size_t i = 0; i < r->ndue; i++) {
		if (r->due[i].when <= now && ntodo < room) {
			if (todo == NULL) {
				todo = xcalloc(room, sizeof(*todo));
				ids = xcalloc(room, sizeof(*ids));
			}
			todo[ntodo] = r->due[i];
			ids[ntodo] = todo[ntodo].id;
			ntodo++;
		} else {
			if (r->due[i].when < r->due_min)
				r->due_min = r->due[i].when;
			r->due[o++] = r->due[i];
		}
	}
	r->ndue = o;
	msgs_activate(r, ids, ntodo, "deferred", false);
	free(ids);
	free(todo);
	timer_arm(r);
}

static void
inotify_cb(evutil_socket_t fd, short what, void *arg)
{
	struct runner *r = arg;
	char buf[64 * 1024]
	    __attribute__((aligned(__alignof__(struct inotify_event))));
	size_t room = r->nmsgs < ACTIVE_MAX ? ACTIVE_MAX - r->nmsgs : 0;
	char **ids = NULL;
	size_t nids = 0, cap = 0;
	ssize_t n;

	(void)what;
	/* everything that arrived, then one move for the lot */
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			p += sizeof(*ev) + ev->len;
			if ((ev->mask & IN_Q_OVERFLOW) != 0) {
				r->backlog = true;
				continue;
			}
			if (ev->len == 0 || r->stopping ||
			    !queue_id_valid(ev->name))
				continue;
			if (nids == room) {
				r->backlog = true;
				continue;
			}
			if (nids == cap) {
				cap = cap ? cap * 2 : 64;
				ids = xreallocarray(ids, cap, sizeof(*ids));
			}
			ids[nids++] = xstrdup(ev->name);
		}
	}
	msgs_activate(r, (const char *const *)ids, nids, "incoming", false);
	for (size_t i = 0; i < nids; i++)
		free(ids[i]);
	free(ids);
	if (r->backlog)
		timer_arm(r);
}

/* At start: what a previous runner left in active/ goes back to
 * incoming/, deferred mail is scheduled by its state. */
static void
recover(struct runner *r)
{
	const struct config *cf = r->config;
	size_t n;
	char **v = queue_ids(cf->data_dir, "active", &n);
	bool *moved = xcalloc(n + 1, sizeof(*moved));

	queue_move_batch(cf->data_dir, "active", "incoming",
			 (const char *const *)v, n, moved);
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
	free(moved);
	v = queue_ids(cf->data_dir, "deferred", &n);
	for (size_t i = 0; i < n; i++) {
		struct queue_envelope e;
		struct queue_state st;
		uint64_t off;
		char *path = xasprintf("%s/queue/deferred/%s", cf->data_dir,
				       v[i]);
		char *err = NULL;
		int64_t when = 0;

		if (queue_envelope_read(path, &e, &off, &err) == 0) {
			if (queue_state_read(cf->data_dir, v[i], e.nrcpts,
					     &st, &err) == 0)
				when = st.next_attempt;
			queue_state_free(&st);
			queue_envelope_free(&e);
		}
		free(err);
		free(path);
		due_add(r, v[i], when);
		free(v[i]);
	}
	free(v);
}

/* ---- control socket ------------------------------------------------- */

static struct msg *
active_msg(struct runner *r, const char *id)
{
	struct msg *m;

	TAILQ_FOREACH(m, &r->msgs, entry)
		if (strcmp(m->id, id) == 0)
			return m;
	return NULL;
}

/* One message by id; returns 1 if it was affected. */
static int
ctl_one(struct runner *r, const char *op, const char *id, bool bounce)
{
	const struct config *cf = r->config;
	struct msg *m;
	int where;

	defer_flush(r);	/* none half-way between active/ and deferred/ */
	m = active_msg(r, id);

	if (m != NULL) {
		if (strcmp(op, "hold") == 0)
			m->hold_req = true;
		else if (strcmp(op, "release") == 0)
			m->hold_req = false;
		else if (strcmp(op, "delete") == 0) {
			/* a later plain delete (e.g. "delete all") must not
			 * take back a report an earlier --bounce asked for */
			m->delete_req = true;
			m->delete_bounce = m->delete_bounce || bounce;
		}
		return 1;
	}
	if ((where = queue_locate(cf->data_dir, id)) < 0)
		return 0;
	if (strcmp(op, "delete") == 0 && bounce) {
		/* through the active queue, so the report is made like any
		 * other; the message is then removed */
		msgs_activate(r, &id, 1, queue_states[where], true);
		return 1;
	}
	if (queue_file_op(cf->data_dir, op, id) <= 0)
		return 0;
	if (strcmp(op, "release") == 0)
		due_add(r, id, 0);
	return 1;
}

static void
ctl_reply(struct ctl_client *cc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
ctl_reply(struct ctl_client *cc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(cc->bev), fmt, ap);
	va_end(ap);
}

static void
ctl_free(struct ctl_client *cc)
{
	TAILQ_REMOVE(&cc->r->ctl_clients, cc, entry);
	cc->r->nctl--;
	bufferevent_free(cc->bev);
	free(cc);
}

static void
ctl_write_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	ctl_free(arg);
}

static void
ctl_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	ctl_free(arg);
}

static void
ctl_execute(struct ctl_client *cc, char *line)
{
	struct runner *r = cc->r;
	char *argv[4] = {NULL}, *save = NULL;
	int argc = 0, count = 0;
	bool bounce;

	for (char *t = strtok_r(line, " ", &save); t != NULL && argc < 4;
	     t = strtok_r(NULL, " ", &save))
		argv[argc++] = t;
	if (argc == 1 && strcmp(argv[0], "flush") == 0) {
		for (size_t i = 0; i < r->ndue; i++, count++)
			r->due[i].when = 0;
		r->due_min = 0;
		timer_arm(r);
		log_event(LOG_INFO, "queue", "flush", LF_INT("messages", count));
		ctl_reply(cc, "ok %d\n", count);
		return;
	}
	bounce = argc == 3 && strcmp(argv[2], "bounce") == 0;
	if (argc < 2 || (argc == 3 && !bounce) || argc > 3 ||
	    (strcmp(argv[0], "hold") != 0 && strcmp(argv[0], "release") != 0 &&
	     strcmp(argv[0], "delete") != 0) ||
	    (bounce && strcmp(argv[0], "delete") != 0)) {
		ctl_reply(cc, "error unknown command\n");
		return;
	}
	if (strcmp(argv[1], "all") == 0) {
		/* every message in every directory, active ones included */
		for (int s = 0; queue_states[s] != NULL; s++) {
			size_t n;
			char **v = queue_ids(r->config->data_dir,
					     queue_states[s], &n);
			for (size_t i = 0; i < n; i++) {
				count += ctl_one(r, argv[0], v[i], bounce);
				free(v[i]);
			}
			free(v);
		}
	} else if (!queue_id_valid(argv[1])) {
		ctl_reply(cc, "error %s: not a queue id\n", argv[1]);
		return;
	} else {
		count = ctl_one(r, argv[0], argv[1], bounce);
		if (count == 0) {
			ctl_reply(cc, "error %s: no such message\n", argv[1]);
			return;
		}
	}
	log_event(LOG_INFO, "queue", argv[0], LF_STR("target", argv[1]),
		  LF_INT("messages", count), LF_STR_IF(bounce, "bounce", "yes"));
	ctl_reply(cc, "ok %d\n", count);
}

static void
ctl_read_cb(struct bufferevent *bev, void *arg)
{
	struct ctl_client *cc = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len;
	char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);

	if (line == NULL) {
		if (evbuffer_get_length(in) > CTL_LINE_MAX)
			ctl_free(cc);
		return;
	}
	bufferevent_disable(bev, EV_READ);
	if (len > CTL_LINE_MAX)
		ctl_reply(cc, "error line too long\n");
	else
		ctl_execute(cc, line);
	free(line);
	bufferevent_setcb(bev, NULL, ctl_write_cb, ctl_event_cb, cc);
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		ctl_free(cc);
}

static void
ctl_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
	      struct sockaddr *sa, int salen, void *arg)
{
	struct runner *r = arg;
	struct ctl_client *cc;
	struct timeval tv = {10, 0};

	(void)l;
	(void)sa;
	(void)salen;
	if (r->nctl >= CTL_CLIENTS_MAX) {
		close(fd);
		return;
	}
	cc = xcalloc(1, sizeof(*cc));
	cc->r = r;
	cc->bev = bufferevent_socket_new(r->base, fd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(cc->bev, ctl_read_cb, NULL, ctl_event_cb, cc);
	bufferevent_set_timeouts(cc->bev, &tv, &tv);
	bufferevent_enable(cc->bev, EV_READ);
	TAILQ_INSERT_TAIL(&r->ctl_clients, cc, entry);
	r->nctl++;
}

static struct evconnlistener *
ctl_listen(struct runner *r)
{
	char *path = queue_control_path(r->config->data_dir);
	struct sockaddr_un sun;
	struct evconnlistener *l;
	mode_t old;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		log_warnx("control socket path too long: %s", path);
		free(path);
		return NULL;
	}
	memcpy(sun.sun_path, path, strlen(path));
	unlink(path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
			 0)) < 0) {
		free(path);
		return NULL;
	}
	/* owner only: the admin commands run as root or as our user */
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		umask(old);
		log_warn("control socket %s", path);
		close(fd);
		free(path);
		return NULL;
	}
	umask(old);
	free(path);
	l = evconnlistener_new(r->base, ctl_accept_cb, r,
			       LEV_OPT_CLOSE_ON_FREE, 16, fd);
	if (l == NULL)
		close(fd);
	return l;
}

/* ---- main ----------------------------------------------------------- */

static void
sig_cb(evutil_socket_t sig, short what, void *arg)
{
	struct runner *r = arg;

	(void)what;
	if (sig == SIGHUP)
		return;	/* the parent replaces us on reload */
	r->stopping = true;
	event_base_loopbreak(r->base);
}

static void
runner_shutdown(struct runner *r)
{
	struct dest *d;
	struct msg *m;

	r->stopping = true;
	/* connections go at once: what they carried is retried later, from
	 * active/ via incoming/ at the next start */
	while ((d = TAILQ_FIRST(&r->dests)) != NULL) {
		struct conn *c;
		struct job *j;
		while ((c = TAILQ_FIRST(&d->conns)) != NULL) {
			if (c->job != NULL) {
				free(c->job->idx);
				free(c->job);
			}
			smtp_client_free(&c->c);
			TAILQ_REMOVE(&d->conns, c, entry);
			free(c->rcpts);
			free(c);
		}
		while ((j = TAILQ_FIRST(&d->jobs)) != NULL) {
			TAILQ_REMOVE(&d->jobs, j, entry);
			free(j->idx);
			free(j);
		}
		if (d->q != NULL)
			dns_query_cancel(d->q);
		dns_route_free(&d->route);
		TAILQ_REMOVE(&r->dests, d, entry);
		free(d->key);
		free(d);
	}
	smtp_client_abort_quits();
	/* reports in flight are made durable (their callbacks may finish
	 * messages) before the messages are let go */
	committer_free(&r->committer);
	defer_flush(r);
	while ((m = TAILQ_FIRST(&r->msgs)) != NULL) {
		r->backlog = false;
		msg_free(m);
	}
	while ((m = TAILQ_FIRST(&r->msgs)) != NULL)
		msg_free(m);
	reaper_free(&r->reaper);
}

int
runner_main(const struct config *config, const struct runner_secrets *secrets)
{
	struct runner r;
	struct event *sigs[3];
	int sigv[3] = {SIGTERM, SIGINT, SIGHUP};
	char *error = NULL, *dir;
	struct dns_resolver_config dc;

	memset(&r, 0, sizeof(r));
	log_set_process("runner");
	r.config = config;
	r.secrets = secrets;
	TAILQ_INIT(&r.dests);
	TAILQ_INIT(&r.msgs);
	TAILQ_INIT(&r.ctl_clients);
	queue_id_init(RUNNER_SLOT);
	signal(SIGPIPE, SIG_IGN);
	if ((r.base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	if (userdb_open(config, true, &r.db, &error) < 0)
		fatalx("user database: %s", error);
	memset(&dc, 0, sizeof(dc));
	dc.mode = config->dns_mode;
	dc.forwarders = (const char *const *)config->dns_forwarders;
	dc.nforwarders = config->ndns_forwarders;
	dc.trust_anchor = config->dns_trust_anchor;
	if ((r.dns = dns_resolver_new(r.base, &dc, &error)) == NULL)
		fatalx("dns: %s", error);
	r.committer = committer_new(r.base, config->data_dir,
				    config->hostname);
	r.reaper = reaper_new(config->data_dir);
	r.timer = evtimer_new(r.base, timer_cb, &r);
	r.defer_ev = event_new(r.base, -1, 0, defer_cb, &r);

	dir = xasprintf("%s/queue/incoming", config->data_dir);
	r.ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (r.ino_fd < 0 ||
	    inotify_add_watch(r.ino_fd, dir, IN_MOVED_TO) < 0)
		fatal("inotify on %s", dir);
	free(dir);
	r.ino_ev = event_new(r.base, r.ino_fd, EV_READ | EV_PERSIST,
			     inotify_cb, &r);
	event_add(r.ino_ev, NULL);
	r.ctl = ctl_listen(&r);
	for (size_t i = 0; i < 3; i++) {
		sigs[i] = evsignal_new(r.base, sigv[i], sig_cb, &r);
		evsignal_add(sigs[i], NULL);
	}
	signals_unblock_all();
	log_event(LOG_INFO, "daemon", "runner-start", LF_INT("pid", getpid()));

	/* the watch is in place before the scan: nothing slips between */
	recover(&r);
	pickup_incoming(&r);
	timer_arm(&r);
	event_base_dispatch(r.base);

	runner_shutdown(&r);
	if (r.ctl != NULL) {
		char *path = queue_control_path(config->data_dir);
		evconnlistener_free(r.ctl);
		unlink(path);
		free(path);
	}
	while (!TAILQ_EMPTY(&r.ctl_clients))
		ctl_free(TAILQ_FIRST(&r.ctl_clients));
	for (size_t i = 0; i < 3; i++)
		event_free(sigs[i]);
	event_free(r.ino_ev);
	close(r.ino_fd);
	event_free(r.timer);
	event_free(r.defer_ev);
	dns_resolver_free(&r.dns);
	SSL_CTX_free(r.ssl_mx);
	SSL_CTX_free(r.ssl_relay);
	userdb_close(&r.db);
	free(r.due);
	event_base_free(r.base);
	log_event(LOG_DEBUG, "daemon", "runner-exit", LF_INT("pid", getpid()));
	return 0;
}
