/*
 * The background-thread helper (lib/workq.h): a mutex, a condition
 * variable, a stop flag and a ring of pending items.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/log.h"
#include "lib/workq.h"
#include "lib/xalloc.h"

struct workq {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;	/* on CLOCK_MONOTONIC */
	bool stop;

	/* the pending items: a ring, under lock */
	void **ring;
	size_t cap, head, count;
	size_t batch_max;	/* 0: all */
	workq_run_fn *run;

	workq_tick_fn *tick;	/* periodic instead */
	uint64_t interval;	/* seconds */

	void *arg;
};

/* Takes up to batch_max items into *batch_r (the thread's own array). */
static size_t
take(struct workq *q, void ***batch_r, size_t *cap_r)
{
	size_t n = q->count, i;

	if (q->batch_max != 0 && n > q->batch_max)
		n = q->batch_max;
	if (n > *cap_r) {
		*batch_r = xreallocarray(*batch_r, n, sizeof(**batch_r));
		*cap_r = n;
	}
	for (i = 0; i < n; i++)
		(*batch_r)[i] = q->ring[(q->head + i) % q->cap];
	q->head = (q->head + n) % q->cap;
	q->count -= n;
	return n;
}

static void *
queue_main(void *arg)
{
	struct workq *q = arg;
	void **batch = NULL;
	size_t cap = 0, n;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		while (q->count == 0 && !q->stop)
			pthread_cond_wait(&q->cond, &q->lock);
		if (q->count == 0)
			break;
		n = take(q, &batch, &cap);
		pthread_mutex_unlock(&q->lock);
		q->run(q->arg, batch, n);
		pthread_mutex_lock(&q->lock);
	}
	pthread_mutex_unlock(&q->lock);
	free(batch);
	return NULL;
}

static void *
periodic_main(void *arg)
{
	struct workq *q = arg;
	struct timespec until;

	pthread_mutex_lock(&q->lock);
	while (!q->stop) {
		pthread_mutex_unlock(&q->lock);
		q->tick(q->arg);
		pthread_mutex_lock(&q->lock);
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += (time_t)q->interval;
		while (!q->stop &&
		       pthread_cond_timedwait(&q->cond, &q->lock, &until) !=
			       ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

static struct workq *
start(const char *name, struct workq *q, void *(*main_fn)(void *))
{
	pthread_condattr_t ca;
	char comm[16];

	pthread_mutex_init(&q->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&q->thread, NULL, main_fn, q) != 0)
		fatalx("cannot start the %s thread", name);
	/* its name in /proc/PID/task/TID/comm, top -H, perf (15 octets) */
	snprintf(comm, sizeof(comm), "%s", name);
	pthread_setname_np(q->thread, comm);
	return q;
}

struct workq *
workq_start(const char *name, size_t batch_max, workq_run_fn *run,
	    void *arg)
{
	struct workq *q = xcalloc(1, sizeof(*q));

	q->batch_max = batch_max;
	q->run = run;
	q->arg = arg;
	return start(name, q, queue_main);
}

struct workq *
workq_start_periodic(const char *name, uint64_t interval,
		     workq_tick_fn *tick, void *arg)
{
	struct workq *q = xcalloc(1, sizeof(*q));

	q->interval = interval;
	q->tick = tick;
	q->arg = arg;
	return start(name, q, periodic_main);
}

/* Doubles the ring, keeping the items in order from index 0. */
static void
grow(struct workq *q)
{
	size_t ncap = q->cap == 0 ? 16 : q->cap * 2, i;
	void **ring = xreallocarray(NULL, ncap, sizeof(*ring));

	for (i = 0; i < q->count; i++)
		ring[i] = q->ring[(q->head + i) % q->cap];
	free(q->ring);
	q->ring = ring;
	q->cap = ncap;
	q->head = 0;
}

void
workq_submit(struct workq *q, void *item)
{
	pthread_mutex_lock(&q->lock);
	if (q->count == q->cap)
		grow(q);
	q->ring[(q->head + q->count) % q->cap] = item;
	q->count++;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
}

void
workq_stop(struct workq **qp)
{
	struct workq *q = *qp;

	if (q == NULL)
		return;
	pthread_mutex_lock(&q->lock);
	q->stop = true;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
	pthread_join(q->thread, NULL);
	pthread_cond_destroy(&q->cond);
	pthread_mutex_destroy(&q->lock);
	free(q->ring);
	free(q);
	*qp = NULL;
}
