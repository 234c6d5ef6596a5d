/*
 * The lookup thread: see lookupq.h. A workq runs the jobs in the order
 * they came, a few taken at a time, and a loopq hands each answer back
 * to the loop as soon as it is there.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/loopq.h"
#include "lib/workq.h"
#include "lib/xalloc.h"
#include "net/auth.h"
#include "net/lookupq.h"
#include "store/userdb.h"

/* Jobs taken from the queue per turn of the thread (one lock). */
#define LOOKUP_BATCH 8

struct lookupq {
	struct userdb *db;	/* used by the thread only */
	struct workq *wq;
	struct loopq *back;
};

static void
lookupq_run(void *arg, void **items, size_t n)
{
	struct lookupq *q = arg;

	for (size_t i = 0; i < n; i++) {
		struct lookup_job *job = items[i];

		if (!atomic_load_explicit(&job->cancelled,
					  memory_order_relaxed))
			job->run(job, q->db);
		/* each answer at once: one slow lookup must not hold back
		 * the ones answered before it (the loop coalesces wake-ups) */
		loopq_put(q->back, &items[i], 1);
	}
}

static void
lookupq_deliver(void *arg, void *item)
{
	struct lookup_job *job = item;

	(void)arg;
	if (job->done != NULL)
		job->done(job, job->arg);
	job->free(job);
}

struct lookupq *
lookupq_new(struct event_base *base, const struct userdb_config *udb,
	    char **error_r)
{
	struct lookupq *q = xcalloc(1, sizeof(*q));

	if (userdb_open(udb, true, &q->db, error_r) < 0) {
		free(q);
		return NULL;
	}
	q->back = loopq_new(base, lookupq_deliver, q);
	q->wq = workq_start("lookup", LOOKUP_BATCH, lookupq_run, q);
	return q;
}

void
lookupq_submit(struct lookupq *q, struct lookup_job *job)
{
	workq_submit(q->wq, job);
}

void
lookup_job_cancel(struct lookup_job *job)
{
	job->done = NULL;
	job->arg = NULL;
	atomic_store_explicit(&job->cancelled, true, memory_order_relaxed);
}

void
lookupq_free(struct lookupq **qp)
{
	struct lookupq *q = *qp;

	if (q == NULL)
		return;
	workq_stop(&q->wq);
	loopq_free(&q->back);
	userdb_close(&q->db);
	free(q);
	*qp = NULL;
}

/* ---- recipients ------------------------------------------------------- */

static void
rcpt_run(struct lookup_job *job, struct userdb *db)
{
	struct rcpt_lookup *l = (struct rcpt_lookup *)job;

	l->ctx.db = db;
	for (size_t i = 0; i < l->n; i++)
		recipient_resolve(&l->ctx, &l->mbox[i], &l->res[i]);
	l->ctx.db = NULL;
}

static void
rcpt_free(struct lookup_job *job)
{
	struct rcpt_lookup *l = (struct rcpt_lookup *)job;

	for (size_t i = 0; i < l->n; i++)
		recipient_result_clear(&l->res[i]);
	if (l->data_free != NULL)
		l->data_free(l->data);
	free(l->res);
	free(l->mbox);
	free(l);
}

struct rcpt_lookup *
rcpt_lookup_new(const struct recipient_ctx *ctx,
		const struct smtp_mailbox *mbox, size_t n)
{
	struct rcpt_lookup *l = xcalloc(1, sizeof(*l));

	l->job.run = rcpt_run;
	l->job.free = rcpt_free;
	l->ctx = *ctx;
	l->ctx.db = NULL;
	l->n = n;
	l->mbox = xcalloc(n > 0 ? n : 1, sizeof(*l->mbox));
	if (n > 0)
		memcpy(l->mbox, mbox, n * sizeof(*mbox));
	l->res = xcalloc(n > 0 ? n : 1, sizeof(*l->res));
	return l;
}

/* ---- senders ---------------------------------------------------------- */

static void
sender_run(struct lookup_job *job, struct userdb *db)
{
	struct sender_lookup *l = (struct sender_lookup *)job;

	l->r = 1;
	for (l->failed = 0; l->failed < l->n; l->failed++) {
		if (l->addrs[l->failed] == NULL)
			return;
		l->r = auth_sender_allowed(db, l->account, l->addrs[l->failed],
					   l->delimiter);
		if (l->r != 1)
			return;
	}
}

static void
sender_free(struct lookup_job *job)
{
	struct sender_lookup *l = (struct sender_lookup *)job;

	for (size_t i = 0; i < l->n; i++)
		free(l->addrs[i]);
	free(l->addrs);
	free(l);
}

struct sender_lookup *
sender_lookup_new(const char *account, char delimiter,
		  const char *const *addrs, size_t n)
{
	struct sender_lookup *l = xcalloc(1, sizeof(*l));

	l->job.run = sender_run;
	l->job.free = sender_free;
	snprintf(l->account, sizeof(l->account), "%s", account);
	l->delimiter = delimiter;
	l->n = n;
	l->addrs = xcalloc(n > 0 ? n : 1, sizeof(*l->addrs));
	for (size_t i = 0; i < n; i++)
		l->addrs[i] = addrs[i] != NULL ? xstrdup(addrs[i]) : NULL;
	return l;
}

/* ---- domains ---------------------------------------------------------- */

static void
domain_run(struct lookup_job *job, struct userdb *db)
{
	struct domain_lookup *l = (struct domain_lookup *)job;

	for (size_t i = 0; i < l->n; i++)
		l->r[i] = userdb_domain_exists(db, l->domains[i]);
}

static void
domain_free(struct lookup_job *job)
{
	struct domain_lookup *l = (struct domain_lookup *)job;

	for (size_t i = 0; i < l->n; i++)
		free(l->domains[i]);
	free(l->domains);
	free(l->r);
	free(l);
}

struct domain_lookup *
domain_lookup_new(const char *const *domains, size_t n)
{
	struct domain_lookup *l = xcalloc(1, sizeof(*l));

	l->job.run = domain_run;
	l->job.free = domain_free;
	l->n = n;
	l->domains = xcalloc(n > 0 ? n : 1, sizeof(*l->domains));
	l->r = xcalloc(n > 0 ? n : 1, sizeof(*l->r));
	for (size_t i = 0; i < n; i++)
		l->domains[i] = xstrdup(domains[i]);
	return l;
}
