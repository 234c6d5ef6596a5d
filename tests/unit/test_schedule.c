/*
 * The queue runner's scheduling (mta/schedule.c): retry times and their
 * cap, lifetime to bounce, the delay warning, what an attempt makes of
 * a recipient, and the list of deferred messages by due time.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "mta/schedule.h"

/* retry_min 5m, retry_max 1h, lifetime 5d, delay warning 4h */
static const struct schedule_params P = {300, 3600, 5 * 86400, 4 * 3600};

static void
test_backoff(void **state)
{
	static const struct {
		unsigned attempts;
		uint64_t wait;
	} rows[] = {
		{0, 300},  {1, 300},   {2, 600},   {3, 1200},
		{4, 2400}, {5, 3600},  {6, 3600},  {100, 3600},
		{UINT32_MAX, 3600},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if (schedule_backoff(&P, rows[i].attempts) != rows[i].wait)
			fail_msg("attempts %u: %llu, want %llu",
				 rows[i].attempts,
				 (unsigned long long)schedule_backoff(
					 &P, rows[i].attempts),
				 (unsigned long long)rows[i].wait);
}

/* a minimum above the maximum: the maximum wins, from the first retry */
static void
test_backoff_cap(void **state)
{
	struct schedule_params p = P;

	(void)state;
	p.retry_min = 7200;
	assert_int_equal(schedule_backoff(&p, 1), 3600);
	p.retry_min = 1;
	p.retry_max = UINT64_MAX;
	/* doubling stops before it wraps */
	assert_true(schedule_backoff(&p, 64) == (uint64_t)1 << 63);
	assert_true(schedule_backoff(&p, 200) == UINT64_MAX);
	assert_int_equal(schedule_backoff(&p, 11), 1024);
}

static void
test_next_attempt(void **state)
{
	struct schedule_params p = P;

	(void)state;
	assert_int_equal(schedule_next_attempt(&P, 1000000, 1), 1000300);
	assert_int_equal(schedule_next_attempt(&P, 1000000, 3), 1001200);
	assert_int_equal(schedule_next_attempt(&P, 1000000, 9), 1003600);
	/* saturates, never wraps to the past */
	assert_true(schedule_next_attempt(&P, INT64_MAX - 10, 1) == INT64_MAX);
	p.retry_min = p.retry_max = UINT64_MAX;
	assert_true(schedule_next_attempt(&p, 5, 1) == INT64_MAX);
}

/* in the queue for its lifetime: what is still pending bounces */
static void
test_lifetime(void **state)
{
	const int64_t arrival = 1795416528;

	(void)state;
	assert_false(schedule_expired(&P, arrival, arrival));
	assert_false(schedule_expired(&P, arrival, arrival + 5 * 86400 - 1));
	assert_true(schedule_expired(&P, arrival, arrival + 5 * 86400));
	assert_true(schedule_expired(&P, arrival, arrival + 50 * 86400));
	assert_int_equal(schedule_retry_until(&P, arrival),
			 arrival + 5 * 86400);
	assert_true(schedule_retry_until(&P, INT64_MAX - 1) == INT64_MAX);
	/* a temporary failure within the lifetime defers; out of it, or a
	 * permanent one, bounces */
	assert_int_equal(schedule_fate(true, 451, false), FATE_DEFERRED);
	assert_int_equal(schedule_fate(true, 451, true), FATE_BOUNCED);
	assert_int_equal(schedule_fate(true, 550, false), FATE_BOUNCED);
}

static void
test_delay_warning(void **state)
{
	const int64_t arrival = 1795416528;
	struct schedule_params p = P;

	(void)state;
	assert_false(schedule_warn_due(&P, arrival, arrival + 4 * 3600 - 1,
				       false));
	assert_true(schedule_warn_due(&P, arrival, arrival + 4 * 3600, false));
	assert_true(schedule_warn_due(&P, arrival, arrival + 86400, false));
	/* once only */
	assert_false(schedule_warn_due(&P, arrival, arrival + 86400, true));
	/* 0: never */
	p.delay_warning = 0;
	assert_false(schedule_warn_due(&p, arrival, arrival + 86400, false));
}

static void
test_fate(void **state)
{
	static const struct {
		bool tried;
		int code;
		bool expired;
		enum schedule_fate fate;
		enum queue_rcpt_status status, status_lost;
	} rows[] = {
		{false, 0, false, FATE_UNTRIED, QRS_PENDING, QRS_PENDING},
		{false, 0, true, FATE_UNTRIED, QRS_PENDING, QRS_PENDING},
		{true, 250, false, FATE_SENT, QRS_DONE, QRS_DONE},
		{true, 250, true, FATE_SENT, QRS_DONE, QRS_DONE},
		{true, 299, false, FATE_SENT, QRS_DONE, QRS_DONE},
		{true, 421, false, FATE_DEFERRED, QRS_PENDING, QRS_PENDING},
		{true, 499, false, FATE_DEFERRED, QRS_PENDING, QRS_PENDING},
		{true, 451, true, FATE_BOUNCED, QRS_FAILED, QRS_PENDING},
		{true, 500, false, FATE_BOUNCED, QRS_FAILED, QRS_PENDING},
		{true, 556, false, FATE_BOUNCED, QRS_FAILED, QRS_PENDING},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		enum schedule_fate f = schedule_fate(
			rows[i].tried, rows[i].code, rows[i].expired);
		if (f != rows[i].fate)
			fail_msg("row %zu: fate %d, want %d", i, f,
				 rows[i].fate);
		/* a failure report that could not be written leaves the
		 * recipient pending (lost) */
		assert_int_equal(schedule_status(f, false), rows[i].status);
		assert_int_equal(schedule_status(f, true),
				 rows[i].status_lost);
	}
}

static void
id_of(char id[QUEUE_ID_LEN + 1], unsigned n)
{
	snprintf(id, QUEUE_ID_LEN + 1, "%016x", n);
}

/* which message when: taken when due, at most room at once, in order */
static void
test_due_list(void **state)
{
	struct due_list dl = {0};
	char id[QUEUE_ID_LEN + 1];
	struct due *t;
	size_t n;

	(void)state;
	t = due_list_take(&dl, 1000, 10, &n);
	assert_null(t);
	assert_int_equal(n, 0);
	id_of(id, 1);
	assert_true(due_list_add(&dl, id, 500));	/* the first */
	id_of(id, 2);
	assert_false(due_list_add(&dl, id, 700));	/* later */
	id_of(id, 3);
	assert_true(due_list_add(&dl, id, 100));	/* earlier */
	id_of(id, 4);
	assert_false(due_list_add(&dl, id, 2000));
	assert_int_equal(dl.min, 100);

	/* at 600: 1 and 3 are due, but room for one only */
	t = due_list_take(&dl, 600, 1, &n);
	assert_int_equal(n, 1);
	id_of(id, 1);
	assert_string_equal(t[0].id, id);
	free(t);
	assert_int_equal(dl.n, 3);
	assert_int_equal(dl.min, 100);	/* 3 is still waiting */
	t = due_list_take(&dl, 600, 10, &n);
	assert_int_equal(n, 1);
	id_of(id, 3);
	assert_string_equal(t[0].id, id);
	free(t);
	assert_int_equal(dl.min, 700);
	/* nothing due before its time */
	t = due_list_take(&dl, 699, 10, &n);
	assert_null(t);
	assert_int_equal(dl.n, 2);
	/* flush: all due now */
	assert_int_equal(due_list_flush(&dl), 2);
	assert_int_equal(dl.min, 0);
	t = due_list_take(&dl, 0, 10, &n);
	assert_int_equal(n, 2);
	id_of(id, 2);
	assert_string_equal(t[0].id, id);
	id_of(id, 4);
	assert_string_equal(t[1].id, id);
	free(t);
	assert_int_equal(dl.n, 0);
	/* empty again: the next one added is the earliest */
	id_of(id, 5);
	assert_true(due_list_add(&dl, id, 9999));
	due_list_clear(&dl);
	assert_null(dl.v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_backoff_cap),
		cmocka_unit_test(test_next_attempt),
		cmocka_unit_test(test_lifetime),
		cmocka_unit_test(test_delay_warning),
		cmocka_unit_test(test_fate),
		cmocka_unit_test(test_due_list),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
