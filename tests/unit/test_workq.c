/*
 * Unit tests for lib/workq.c, the background-thread helper: items run in
 * submission order, one at a time or in batches as asked; a stop runs
 * everything submitted before it returns; a periodic thread ticks at once,
 * and a stop wakes its sleep without waiting out the interval.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"

#include "lib/util.h"
#include "lib/workq.h"

#define N_ITEMS 5000

struct seen {
	pthread_mutex_t lock;
	int order[N_ITEMS];
	size_t n;
	size_t batches, biggest;
	unsigned slow_us;	/* per call, so that items pile up */
	pthread_t thread;	/* the one thread that ran them */
	int threads;
	size_t empty;		/* calls without an item */
};

static void
record(void *arg, void **items, size_t n)
{
	struct seen *s = arg;
	size_t i;

	if (s->slow_us > 0)
		usleep(s->slow_us);
	pthread_mutex_lock(&s->lock);
	if (s->threads == 0 || !pthread_equal(s->thread, pthread_self())) {
		s->thread = pthread_self();
		s->threads++;
	}
	if (n == 0)
		s->empty++;
	for (i = 0; i < n; i++)
		s->order[s->n++] = *(int *)items[i];
	s->batches++;
	if (n > s->biggest)
		s->biggest = n;
	pthread_mutex_unlock(&s->lock);
}

static int *
numbers(void)
{
	int *v = calloc(N_ITEMS, sizeof(*v));

	for (int i = 0; i < N_ITEMS; i++)
		v[i] = i;
	return v;
}

static void
run_queue(size_t batch_max, unsigned slow_us, struct seen *s)
{
	struct workq *q;
	int *v = numbers();

	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	s->slow_us = slow_us;
	q = workq_start("test", batch_max, record, s);
	for (int i = 0; i < N_ITEMS; i++)
		workq_submit(q, &v[i]);
	workq_stop(&q);
	assert_null(q);
	/* everything submitted ran, in order, on one thread, not this one */
	assert_int_equal(s->n, N_ITEMS);
	assert_int_equal(s->empty, 0);
	for (int i = 0; i < N_ITEMS; i++)
		assert_int_equal(s->order[i], i);
	assert_int_equal(s->threads, 1);
	assert_false(pthread_equal(s->thread, pthread_self()));
	pthread_mutex_destroy(&s->lock);
	free(v);
}

static void
test_one_at_a_time(void **state)
{
	struct seen s;

	(void)state;
	run_queue(1, 0, &s);
	assert_int_equal(s.biggest, 1);
	assert_int_equal(s.batches, N_ITEMS);
}

static void
test_batches(void **state)
{
	struct seen s;

	(void)state;
	/* a slow first call lets the rest pile up into one batch or few */
	run_queue(0, 20000, &s);
	assert_true(s.batches < N_ITEMS);
	assert_true(s.biggest > 1);

	run_queue(7, 200, &s);
	assert_true(s.biggest <= 7);
	assert_true(s.batches >= N_ITEMS / 7);
}

static void
test_stop_idle(void **state)
{
	struct seen s;
	struct workq *q;

	(void)state;
	memset(&s, 0, sizeof(s));
	pthread_mutex_init(&s.lock, NULL);
	q = workq_start("test", 1, record, &s);
	workq_stop(&q);
	assert_null(q);
	assert_int_equal(s.n, 0);
	workq_stop(&q);	/* NULL: nothing */
	pthread_mutex_destroy(&s.lock);
}

struct ticks {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int n;
};

static void
tick(void *arg)
{
	struct ticks *t = arg;

	pthread_mutex_lock(&t->lock);
	t->n++;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

static void
test_periodic(void **state)
{
	struct ticks t = {.n = 0};
	struct workq *q;
	uint64_t t0;

	(void)state;
	pthread_mutex_init(&t.lock, NULL);
	pthread_cond_init(&t.cond, NULL);

	/* the first tick comes at once, the next only after an hour */
	q = workq_start_periodic("test", 3600, tick, &t);
	pthread_mutex_lock(&t.lock);
	while (t.n == 0)
		pthread_cond_wait(&t.cond, &t.lock);
	pthread_mutex_unlock(&t.lock);
	t0 = mono_ms();
	workq_stop(&q);
	assert_null(q);
	assert_true(mono_ms() - t0 < 10000);
	assert_int_equal(t.n, 1);

	/* a 1-second interval ticks again */
	t.n = 0;
	q = workq_start_periodic("test", 1, tick, &t);
	pthread_mutex_lock(&t.lock);
	while (t.n < 2)
		pthread_cond_wait(&t.cond, &t.lock);
	pthread_mutex_unlock(&t.lock);
	workq_stop(&q);
	assert_true(t.n >= 2);

	pthread_cond_destroy(&t.cond);
	pthread_mutex_destroy(&t.lock);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_at_a_time),
		cmocka_unit_test(test_batches),
		cmocka_unit_test(test_stop_idle),
		cmocka_unit_test(test_periodic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
