/*
 * The attachment rules in the SMTP session (smtp_filter.h), at the end
 * of the data, for every message (port 25, submission, trusted
 * clients): the message (the octets stored after the local header; the
 * prefix holds only our own trace fields) is walked on the worker's
 * attachment thread (filter/attach.h), which maps the spool's file or
 * gets a copy of a spool still in memory; the verdict comes back
 * through sf_resume().
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "filter/attach.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "smtpd/smtp_filter.h"
#include "smtpd/smtp_private.h"
#include "smtpd/smtp_settings.h"
#include "store/deliver.h"

struct sf_attach {
	struct attach_job *job;	/* on the thread; done cleared on free */
};

static void
attach_done(struct attach_job *job, void *arg)
{
	struct smtp_session *s = arg;
	struct smtp_txn *t = s->txn;
	const struct attach_result *r = &job->result;
	struct sf_verdict v;

	t->attach->job = NULL;
	log_event(r->status == ATTACH_OK ? LOG_DEBUG : LOG_INFO, "smtp",
		  "attachments", LF_STR("session", s->ses.id),
		  LF_STR("queue", t->id),
		  LF_STR("result", r->status == ATTACH_OK      ? "pass"
				   : r->status == ATTACH_LIMIT	 ? "limit"
				   : r->status == ATTACH_ERROR ? "error"
								 : "refused"),
		  LF_STR_IF(r->reason != NULL, "reason", r->reason),
		  LF_UINT("parts", r->parts),
		  LF_UINT("decoded", r->decoded),
		  LF_UINT("us", job->elapsed_us));
	memset(&v, 0, sizeof(v));
	v.action = SF_CONTINUE;
	if (r->status != ATTACH_OK)
		sf_verdict_set(&v, r->code, r->enh, r->reason, "%s", r->text);
	sf_resume(s, &v);
}

/* The stored message after the local header, or NULL (a spool read
 * failed). */
static unsigned char *
copy_message(const struct delivery_job *dj, size_t *len_r)
{
	uint64_t size = spool_size(dj->spool), off = dj->local_hdr_len;
	unsigned char *buf;
	size_t len = 0;

	if (off > size || size - off > SIZE_MAX - 1)
		return NULL;
	buf = xmalloc((size_t)(size - off) + 1);
	while (off + len < size) {
		ssize_t n = spool_read(dj->spool, off + len, buf + len,
				       (size_t)(size - off) - len);

		if (n <= 0) {
			free(buf);
			return NULL;
		}
		len += (size_t)n;
	}
	*len_r = len;
	return buf;
}

/* The job for the stored message after the local header: a spool in a
 * file is mapped by the thread, one in memory (256 KiB at most) copied
 * here. NULL if the spool cannot be read. */
static struct attach_job *
job_new(const struct delivery_job *dj)
{
	struct attach_job *job = xcalloc(1, sizeof(*job));
	uint64_t size = spool_size(dj->spool);

	job->off = dj->local_hdr_len;
	job->fd = spool_dup_fd(dj->spool);
	if (job->fd >= 0 && size >= job->off && size - job->off < SIZE_MAX) {
		job->len = (size_t)(size - job->off);
		return job;
	}
	if (job->fd >= 0)
		close(job->fd);
	job->fd = -1;
	if ((job->msg = copy_message(dj, &job->len)) == NULL) {
		free(job);
		return NULL;
	}
	return job;
}

bool
sf_attach_end(struct smtp_session *s, struct sf_verdict *v)
{
	struct smtp_txn *t = s->txn;
	struct attach_job *job;

	if (s->config->attachq == NULL || t == NULL || t->held_job == NULL)
		return true;
	if ((job = job_new(t->held_job)) == NULL) {
		sf_verdict_set(v, 451, "4.3.0", "attach-io",
			       "Requested action aborted: local error in "
			       "processing");
		return true;
	}
	job->done = attach_done;
	job->arg = s;
	if (t->attach == NULL)
		t->attach = xcalloc(1, sizeof(*t->attach));
	t->attach->job = job;
	attachq_submit(s->config->attachq, job);
	return false;
}

void
sf_attach_txn_free(struct smtp_txn *t)
{
	if (t->attach == NULL)
		return;
	/* the thread's answer finds no one */
	if (t->attach->job != NULL)
		t->attach->job->done = NULL;
	xfree(&t->attach);
}
