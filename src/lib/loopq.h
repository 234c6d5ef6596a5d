/*
 * Results handed back to a libevent loop from other threads, the other
 * half of every background thread of godwit (lib/workq.h): the thread
 * puts items (any thread, never blocks long), an eventfd wakes the loop,
 * and the loop calls deliver(arg, item) for each, in the order they were
 * put.
 *
 *	q = loopq_new(base, deliver, arg);
 *	loopq_put(q, items, n);		// on the worker thread
 *	loopq_free(&q);			// after the thread stopped: what is
 *					// still in is delivered first
 */
#ifndef GODWIT_LOOPQ_H
#define GODWIT_LOOPQ_H

#include <stddef.h>

struct event_base;
struct loopq;

typedef void loopq_deliver_fn(void *arg, void *item);

struct loopq *loopq_new(struct event_base *base, loopq_deliver_fn *deliver,
			void *arg);
/* Hands n items back; one wake-up for all of them. */
void loopq_put(struct loopq *q, void *const *items, size_t n);
/* Delivers what was put and not yet delivered, then frees. Loop thread,
 * once no thread puts any more. */
void loopq_free(struct loopq **q);

#endif
