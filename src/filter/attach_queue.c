/*
 * The attachment walk's thread (attach.h): jobs submitted from the loop,
 * walked one at a time with the thread's own libmagic cookie, handed
 * back through an eventfd (the shape of net/auth.c's thread).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "filter/attach.h"
#include "lib/log.h"
#include "lib/workq.h"
#include "lib/xalloc.h"

struct attachq {
	const struct attach_config *cfg;
	struct attach_scanner *sc;	/* the thread's only */
	struct event *ev;
	int efd;
	struct workq *wq;
	pthread_mutex_t lock;		/* over done */
	struct attach_job *done, **done_tail;
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
	uint64_t one = 1, t0 = now_us();

	(void)n;
	if (job->msg == NULL && job->fd >= 0)
		scan_file(q, job);
	else
		attach_scan(q->sc, q->cfg, job->msg, job->len, &job->result);
	job->elapsed_us = now_us() - t0;
	free(job->msg);
	job->msg = NULL;

	pthread_mutex_lock(&q->lock);
	job->next = NULL;
	*q->done_tail = job;
	q->done_tail = &job->next;
	pthread_mutex_unlock(&q->lock);
	if (write(q->efd, &one, sizeof(one)) < 0) {
		/* an eventfd counter cannot overflow in practice */
	}
}

static void
attachq_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct attachq *q = arg;
	struct attach_job *list, *job;
	uint64_t n;

	(void)what;
	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_warn("attach eventfd");
	pthread_mutex_lock(&q->lock);
	list = q->done;
	q->done = NULL;
	q->done_tail = &q->done;
	pthread_mutex_unlock(&q->lock);
	while ((job = list) != NULL) {
		list = job->next;
		if (job->done != NULL)
			job->done(job, job->arg);
		free(job->msg);
		if (job->fd >= 0)
			close(job->fd);
		free(job);
	}
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
	q->done_tail = &q->done;
	if ((q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		fatal("eventfd");
	pthread_mutex_init(&q->lock, NULL);
	q->ev = event_new(base, q->efd, EV_READ | EV_PERSIST, attachq_done_cb,
			  q);
	event_add(q->ev, NULL);
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
	attachq_done_cb(q->efd, EV_READ, q);
	event_free(q->ev);
	close(q->efd);
	pthread_mutex_destroy(&q->lock);
	attach_scanner_free(&q->sc);
	free(q);
	*qp = NULL;
}
