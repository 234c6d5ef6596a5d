/*
 * One background thread with a queue of work, the shape every background
 * thread of godwit has: started once, fed from the event loop, stopped by
 * finishing what it was given and joining.
 *
 *	q = workq_start("committer", 0, run, arg);
 *	workq_submit(q, item);		// any thread; never blocks long
 *	workq_stop(&q);			// runs every submitted item, joins
 *
 * run(arg, items, n) is called on the thread with up to batch_max items
 * (0: all that are waiting) in the order they were submitted; the items
 * are the caller's, as are any results and how they travel back (the auth
 * thread and the committer use an eventfd). The queue has no bound: every
 * caller's work is already bounded by what submits it (sessions, queue
 * files).
 *
 * workq_start_periodic() is the other shape: no items, tick(arg) at once
 * and then every interval seconds (CLOCK_MONOTONIC) until stopped. A stop
 * wakes the sleep at once; a tick in progress is not interrupted.
 *
 * A thread that cannot be started is fatal ("cannot start the NAME
 * thread").
 */
#ifndef GODWIT_WORKQ_H
#define GODWIT_WORKQ_H

#include <stddef.h>
#include <stdint.h>

struct workq;

typedef void workq_run_fn(void *arg, void **items, size_t n);
typedef void workq_tick_fn(void *arg);

struct workq *workq_start(const char *name, size_t batch_max,
			  workq_run_fn *run, void *arg);
struct workq *workq_start_periodic(const char *name, uint64_t interval,
				   workq_tick_fn *tick, void *arg);
void workq_submit(struct workq *q, void *item);
/* Runs what was submitted (or lets the tick in progress end), joins, frees. */
void workq_stop(struct workq **qp);

#endif
