/*
 * Tests for the sending limits of net/client_limits.c (limits_send and
 * its blocks): table-driven steps of messages, recipients and time with
 * the expected verdicts, then a multi-process test that parallel workers
 * cannot overshoot a budget.
 */
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit.h"

#include "net/client_limits.h"

enum op {
	END = 0,
	MSG,	 /* account: a message; expect the verdict */
	RCPT,	 /* account: a recipient; expect the verdict */
	ADVANCE, /* arg ms */
	BLOCKED, /* account: expect limits_send_blocked (0/1) */
	GEN,	 /* expect limits_send_generation() - its start */
};

struct step {
	enum op op;
	const char *account;
	uint64_t arg;
	long expect;
	unsigned repeat;
	int started; /* MSG/RCPT: expect block_started (-1: don't care) */
};

#define H LIMITS_HOUR_MS
#define OK LIMITS_SEND_OK
#define MH LIMITS_SEND_MESSAGES_HOUR
#define RH LIMITS_SEND_RECIPIENTS_HOUR
#define MD LIMITS_SEND_MESSAGES_DAY
#define RD LIMITS_SEND_RECIPIENTS_DAY

struct scenario {
	const char *name;
	struct limits_send_policy p;
	struct step steps[16];
};

static const struct scenario scenarios[] = {
    {"messages per hour, then a block until the hour ends",
     {3, 0, 0, 0},
     {{MSG, "alice", 0, OK, 3, 0},
      {MSG, "alice", 0, MH, 1, 1},
      {MSG, "alice", 0, MH, 2, 0},   /* blocked: started only once */
      {RCPT, "alice", 0, MH, 1, 0},  /* a block refuses RCPT too */
      {BLOCKED, "alice", 0, 1, 1, -1},
      {MSG, "bob", 0, OK, 3, 0},     /* others untouched */
      {BLOCKED, "Bob", 0, 0, 1, -1},
      {GEN, NULL, 0, 1, 1, -1},
      {ADVANCE, NULL, H, 0, 1, -1},  /* the hour's window ends */
      {BLOCKED, "alice", 0, 0, 1, -1},
      {MSG, "ALICE", 0, OK, 3, 0},   /* one account, whatever the case */
      {MSG, "alice", 0, MH, 1, 1},
      {GEN, NULL, 0, 2, 1, -1}}},
    {"recipients per hour at RCPT; messages still count",
     {0, 2, 0, 0},
     {{MSG, "a", 0, OK, 1, 0},
      {RCPT, "a", 0, OK, 2, 0},
      {RCPT, "a", 0, RH, 1, 1},
      {MSG, "a", 0, RH, 1, 0}}},
    {"a day's budget outlives hours",
     {0, 0, 4, 0},
     {{MSG, "a", 0, OK, 2, 0},
      {ADVANCE, NULL, H, 0, 1, -1},
      {MSG, "a", 0, OK, 2, 0},
      {MSG, "a", 0, MD, 1, 1},
      {ADVANCE, NULL, H, 0, 1, -1},
      {BLOCKED, "a", 0, 1, 1, -1},   /* a day's block is a day's */
      {ADVANCE, NULL, 22 * H, 0, 1, -1},
      {BLOCKED, "a", 0, 0, 1, -1},
      {MSG, "a", 0, OK, 1, 0}}},
    {"recipients per day",
     {0, 0, 0, 3},
     {{RCPT, "a", 0, OK, 3, 0}, {RCPT, "a", 0, RD, 1, 1}}},
    {"zero is unlimited; no account always passes",
     {0, 0, 0, 0},
     {{MSG, "a", 0, OK, 1000, 0},
      {RCPT, "a", 0, OK, 1000, 0},
      {MSG, "", 0, OK, 1, 0},
      {MSG, NULL, 0, OK, 1, 0},
      {BLOCKED, NULL, 0, 0, 1, -1}}},
    {"the hour's limit is found before the day's",
     {2, 0, 2, 0},
     {{MSG, "a", 0, OK, 2, 0}, {MSG, "a", 0, MH, 1, 1}}},
};

static void
run_scenario(const struct scenario *sc)
{
	struct limits *l = limits_create(64, NULL);
	uint64_t now = 1000000;
	uint32_t gen0;

	assert_non_null(l);
	gen0 = limits_send_generation(l);
	for (const struct step *s = sc->steps; s->op != END; s++) {
		for (unsigned i = 0; i < (s->repeat ? s->repeat : 1); i++) {
			struct limits_send_result r;
			long got = 0;

			switch (s->op) {
			case MSG:
			case RCPT:
				got = limits_send(l, &sc->p, s->account,
						  s->op == MSG, now, &r);
				if (s->started >= 0 &&
				    r.block_started != (s->started != 0)) {
					print_error("%s: step %td: started %d\n",
						    sc->name, s - sc->steps,
						    r.block_started);
					fail();
				}
				break;
			case ADVANCE:
				now += s->arg;
				continue;
			case BLOCKED:
				got = limits_send_blocked(l, s->account, now);
				break;
			case GEN:
				got = (long)(limits_send_generation(l) - gen0);
				break;
			case END:
				break;
			}
			if (got != s->expect) {
				print_error("%s: step %td (#%u): got %ld, "
					    "want %ld\n",
					    sc->name, s - sc->steps, i, got,
					    s->expect);
				fail();
			}
		}
	}
	limits_destroy(&l);
}

static void
test_scenarios(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		run_scenario(&scenarios[i]);
}

static void
test_result_fields(void **state)
{
	struct limits_send_policy p = {5, 0, 0, 0};
	struct limits *l = limits_create(64, NULL);
	struct limits_send_result r;

	(void)state;
	for (int i = 0; i < 5; i++)
		assert_int_equal(limits_send(l, &p, "x", true, 7000, &r), OK);
	assert_int_equal(limits_send(l, &p, "x", true, 9000, &r), MH);
	assert_true(r.block_started);
	assert_int_equal(r.count, 5);
	assert_int_equal(r.limit, 5);
	assert_int_equal(r.until_ms, 7000 + H);
	assert_string_equal(limits_send_verdict_text(MH), "messages-per-hour");
	assert_string_equal(limits_send_verdict_text(RD),
			    "recipients-per-day");
	limits_destroy(&l);
}

/* Eight processes take messages at once: exactly the limit gets through. */
static void
test_concurrent_budget_exact(void **state)
{
	struct limits_send_policy p = {100, 0, 0, 0};
	struct limits *l = limits_create(64, NULL);
	int fds[2], status;
	unsigned total = 0;

	(void)state;
	assert_int_equal(pipe(fds), 0);
	for (int w = 0; w < 8; w++) {
		if (fork() == 0) {
			struct limits_send_result r;
			unsigned char ok = 0;

			for (int i = 0; i < 30; i++)
				ok += limits_send(l, &p, "shared", true, 5000,
						  &r) == OK;
			_exit(write(fds[1], &ok, 1) == 1 ? 0 : 1);
		}
	}
	close(fds[1]);
	for (int w = 0; w < 8; w++) {
		unsigned char ok;

		assert_int_equal(read(fds[0], &ok, 1), 1);
		total += ok;
		wait(&status);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	close(fds[0]);
	assert_int_equal(total, 100);
	assert_true(limits_send_blocked(l, "shared", 5000));
	limits_destroy(&l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_scenarios),
	    cmocka_unit_test(test_result_fields),
	    cmocka_unit_test(test_concurrent_budget_exact),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
