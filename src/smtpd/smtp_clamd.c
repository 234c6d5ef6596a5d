/*
 * clamd in the SMTP session (smtp_filter.h): at the end of the data,
 * every message (port 25 and submission alike) is streamed to clamd as
 * the client sent it (LF line ends), under one constant trace field,
 * LEAD: without godwit's own fields (Received, Authentication-Results,
 * DKIM-Signature: the prefix, and the Received at the spool's start).
 * Those hold a queue id and a time, unique to every message, and clamd
 * caches clean results by a hash of the whole stream: with them a
 * message sent again (another transaction, a retry, a campaign) was
 * scanned again in full, at twice the CPU of the cache hit it is behind
 * clamav-milter, whose stream is also what the client sent
 * (bench/RESULTS.md). LEAD stays because clamd recognises a mail by its
 * first line: a message starting with an unknown field and no
 * MIME-Version was scanned as text, its attachments not decoded.
 *
 *	clean		accepted, "X-Godwit-Virus-Scan: clean (clamd)"
 *	a virus		554 5.7.1 Message refused: virus found: NAME
 *	clamd failed	on_error tempfail: 451 4.7.1; accept: accepted,
 *			"X-Godwit-Virus-Scan: not scanned (clamd
 *			unavailable)"
 *	too large	(over filter.clamd.max_size) accepted unscanned,
 *			"X-Godwit-Virus-Scan: not scanned (message too
 *			large)": a permanent condition must not be
 *			answered with a temporary failure
 *
 * Every scan is logged: fac=filter event=clamd.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "filter/clamd.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "smtpd/smtp_filter.h"
#include "smtpd/smtp_private.h"
#include "smtpd/smtp_settings.h"
#include "store/deliver.h"

#define SCAN_HEADER "X-Godwit-Virus-Scan: "
#define LEAD "Received: by godwit\n"
#define LEAD_LEN (sizeof(LEAD) - 1)

struct sf_clamd {
	struct smtp_session *s;
	struct clamd_scan *scan;
	const struct spool *spool;
	uint64_t start;		/* of the client's message in the spool */
};

static const struct clamd_config *
clamd_conf(const struct smtp_session *s)
{
	const struct filter_config *f = s->config->filter;

	return f != NULL && f->clamd.enabled ? &f->clamd : NULL;
}

/* Where the client's message starts in the job's spool: past the local
 * header and the Received field written before the data. */
static uint64_t
message_start(const struct smtp_session *s, const struct delivery_job *job)
{
	return job->local_hdr_len + s->txn->rcvd_len;
}

/* The octets clamd gets: LEAD, then the client's message. */
static uint64_t
message_size(const struct smtp_session *s, const struct delivery_job *job)
{
	return LEAD_LEN + spool_size(job->spool) - message_start(s, job);
}

static ssize_t
read_message(void *arg, uint64_t off, void *buf, size_t n)
{
	const struct sf_clamd *c = arg;

	if (off < LEAD_LEN) {
		size_t k = LEAD_LEN - (size_t)off;

		if (k > n)
			k = n;
		memcpy(buf, &LEAD[off], k);
		return (ssize_t)k;
	}
	return spool_read(c->spool, c->start + (off - LEAD_LEN), buf, n);
}

/* "X-Godwit-Virus-Scan: <what>\n" at the end of the job's prefix. */
static void
add_header(struct delivery_job *job, const char *what)
{
	char line[256];
	int n = snprintf(line, sizeof(line), "%s%s\n", SCAN_HEADER, what);

	delivery_job_prefix_add(job, line, (size_t)n < sizeof(line)
						   ? (size_t)n
						   : sizeof(line) - 1);
}

static void
log_scan(const struct smtp_session *s, const char *result,
	 const struct clamd_result *r, uint64_t size, const char *action,
	 const char *reason)
{
	log_event(LOG_INFO, "filter", "clamd", LF_STR("session", s->ses.id),
		  LF_STR("queue", s->txn->id), LF_STR("result", result),
		  LF_STR_IF(reason != NULL, "reason", reason),
		  LF_STR_IF(r != NULL && r->status == CLAMD_VIRUS, "virus",
			    r != NULL ? r->name : ""),
		  LF_STR_IF(r != NULL && r->error[0] != '\0', "error",
			    r != NULL ? r->error : ""),
		  LF_UINT("size", size), LF_UINT("ms", r != NULL ? r->ms : 0),
		  LF_STR("action", action));
}

/* The scan's verdict into v; the header of accepted mail. */
static void
decide(struct smtp_session *s, const struct clamd_result *r,
       struct sf_verdict *v)
{
	const struct clamd_config *c = &s->config->filter->clamd;
	struct delivery_job *job = s->txn->held_job;
	const char *action = "accept";

	switch (r->status) {
	case CLAMD_CLEAN:
		add_header(job, "clean (clamd)");
		break;
	case CLAMD_VIRUS:
		sf_verdict_set(v, 554, "5.7.1", "virus",
			       "Message refused: virus found: %s", r->name);
		action = "reject";
		break;
	case CLAMD_FAILED:
		if (c->on_error == CLAMD_ON_ERROR_ACCEPT) {
			add_header(job, "not scanned (clamd unavailable)");
			break;
		}
		sf_verdict_set(v, 451, "4.7.1", "clamd",
			       "Virus scanner unavailable, try again later");
		action = "tempfail";
		break;
	case CLAMD_LOCAL:
		sf_verdict_set(v, 451, "4.3.0", "clamd",
			       "Local error in processing, try again later");
		action = "tempfail";
		break;
	}
	log_scan(s, clamd_status_name(r->status), r, message_size(s, job),
		 action, NULL);
}

static void
scan_done(const struct clamd_result *r, void *arg)
{
	struct sf_clamd *c = arg;
	struct smtp_session *s = c->s;
	struct sf_verdict v;

	/* the scan is gone; so is this, before the session moves on */
	s->txn->clamd = NULL;
	free(c);
	memset(&v, 0, sizeof(v));
	v.action = SF_CONTINUE;
	decide(s, r, &v);
	sf_resume(s, &v);
}

bool
sf_clamd_end(struct smtp_session *s, struct sf_verdict *v)
{
	const struct clamd_config *cc = clamd_conf(s);
	struct delivery_job *job = s->txn->held_job;
	struct sf_clamd *c;

	(void)v;
	if (cc == NULL || job == NULL)
		return true;
	if (message_size(s, job) > cc->max_size) {
		add_header(job, "not scanned (message too large)");
		log_scan(s, "skipped", NULL, message_size(s, job), "accept",
			 "larger than max_size");
		return true;
	}
	c = xcalloc(1, sizeof(*c));
	c->s = s;
	c->spool = job->spool;
	c->start = message_start(s, job);
	s->txn->clamd = c;
	c->scan = clamd_scan_start(s->ses.srv->base, cc, read_message, c,
				   scan_done, c);
	return false;
}

void
sf_clamd_txn_free(struct smtp_txn *t)
{
	if (t->clamd == NULL)
		return;
	clamd_scan_cancel(&t->clamd->scan);
	free(t->clamd);
	t->clamd = NULL;
}
