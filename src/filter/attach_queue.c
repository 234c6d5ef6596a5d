/*
 * The attachment walk's thread (attach.h): jobs submitted from the loop,
 * walked one at a time with the thread's own libmagic cookie, handed
 * back to the loop through a loopq (lib/loopq.h).
 */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "filter/attach.h"
#include "lib/log.h"
#include "lib/loopq.h"
#include "lib/workq.h"
#include "lib/xalloc.h"

struct attachq {
	const struct attach_config *cfg;
	struct attach_scanner *sc;	/* the thread's only */
	struct workq *wq;
	struct loopq *back;		/* walked jobs, to the loop */
};

static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* A message in a file: mapped (the page cache, not a copy), walked. */
static void
scan_file(struct attachq *q, struct attach_job *job)
{
	struct attach_result *r = &job->result;
	size_t size = (size_t)job->off + job->len;
	void *map;

	map = job->len == 0 ? MAP_FAILED
			    : mmap(NULL, size, PROT_READ, MAP_PRIVATE,
				   job->fd, 0);
	close(job->fd);
	job->fd = -1;
	if (map == MAP_FAILED) {
		memset(r, 0, sizeof(*r));
		r->status = job->len == 0 ? ATTACH_OK : ATTACH_ERROR;
		if (r->status == ATTACH_ERROR) {
			r->reason = "attach-io";
			r->code = 451;
			r->enh = "4.3.0";
			snprintf(r->text, sizeof(r->text),
				 "Requested action aborted: local error in "
				 "processing");
			log_warn("attach: mmap");
		}
		return;
	}
	attach_scan(q->sc, q->cfg, (const unsigned char *)map + job->off,
		    job->len, r);
	munmap(map, size);
}

static void
attachq_run(void *arg, void **items, size_t n)
{
	struct attachq *q = arg;
	struct attach_job *job = items[0];
	uint64_t t0 = now_us();

	(void)n;
	if (job->msg == NULL && job->fd >= 0)
		scan_file(q, job);
	else
		attach_scan(q->sc, q->cfg, job->msg, job->len, &job->result);
	job->elapsed_us = now_us() - t0;
	free(job->msg);
	job->msg = NULL;
	loopq_put(q->back, items, 1);
}

/* Loop thread: a walked job's verdict to its session. */
static void
attachq_deliver(void *arg, void *item)
{
	struct attach_job *job = item;

	(void)arg;
	if (job->done != NULL)
		job->done(job, job->arg);
	free(job->msg);
	if (job->fd >= 0)
		close(job->fd);
	free(job);
}

struct attachq *
attachq_new(struct event_base *base, const struct attach_config *cfg,
	    char **error_r)
{
	struct attachq *q = xcalloc(1, sizeof(*q));

	if ((q->sc = attach_scanner_new(error_r)) == NULL) {
		free(q);
		return NULL;
	}
	q->cfg = cfg;
	q->back = loopq_new(base, attachq_deliver, q);
	q->wq = workq_start("attach", 1, attachq_run, q);
	return q;
}

void
attachq_submit(struct attachq *q, struct attach_job *job)
{
	job->next = NULL;
	workq_submit(q->wq, job);
}

void
attachq_free(struct attachq **qp)
{
	struct attachq *q = *qp;

	if (q == NULL)
		return;
	workq_stop(&q->wq);
	loopq_free(&q->back);
	attach_scanner_free(&q->sc);
	free(q);
	*qp = NULL;
}
