/*
 * Results back to the loop: see loopq.h. A mutex over a growing array of
 * items; the loop swaps it for an empty one and delivers outside the lock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

#include "lib/log.h"
#include "lib/loopq.h"
#include "lib/xalloc.h"

struct loopq {
	struct event *ev;
	int efd;
	loopq_deliver_fn *deliver;
	void *arg;
	pthread_mutex_t lock;	/* over items */
	void **items;
	size_t n, cap;
};

static void
deliver_all(struct loopq *q)
{
	void **items;
	size_t n;

	pthread_mutex_lock(&q->lock);
	items = q->items;
	n = q->n;
	q->items = NULL;
	q->n = q->cap = 0;
	pthread_mutex_unlock(&q->lock);
	for (size_t i = 0; i < n; i++)
		q->deliver(q->arg, items[i]);
	free(items);
}

static void
wake_cb(evutil_socket_t fd, short what, void *arg)
{
	uint64_t n;

	(void)what;
	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_warn("loopq eventfd");
	deliver_all(arg);
}

struct loopq *
loopq_new(struct event_base *base, loopq_deliver_fn *deliver, void *arg)
{
	struct loopq *q = xcalloc(1, sizeof(*q));

	q->deliver = deliver;
	q->arg = arg;
	if ((q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		fatal("eventfd");
	pthread_mutex_init(&q->lock, NULL);
	q->ev = event_new(base, q->efd, EV_READ | EV_PERSIST, wake_cb, q);
	if (q->ev == NULL || event_add(q->ev, NULL) < 0)
		fatalx("loopq: cannot watch the eventfd");
	return q;
}

void
loopq_put(struct loopq *q, void *const *items, size_t n)
{
	uint64_t one = 1;

	pthread_mutex_lock(&q->lock);
	if (q->n + n > q->cap) {
		q->cap = q->n + n > 2 * q->cap ? q->n + n : 2 * q->cap;
		q->items = xreallocarray(q->items, q->cap, sizeof(*q->items));
	}
	for (size_t i = 0; i < n; i++)
		q->items[q->n++] = items[i];
	pthread_mutex_unlock(&q->lock);
	if (write(q->efd, &one, sizeof(one)) < 0) {
		/* an eventfd counter cannot overflow in practice */
	}
}

void
loopq_free(struct loopq **qp)
{
	struct loopq *q = *qp;

	if (q == NULL)
		return;
	deliver_all(q);
	event_free(q->ev);
	close(q->efd);
	pthread_mutex_destroy(&q->lock);
	free(q);
	*qp = NULL;
}
