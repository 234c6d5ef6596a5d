/*
 * The lookup thread (net/lookupq.h) against a real SQLite user database
 * in a temporary directory: answers come back on the loop in the order
 * the jobs went out, each job is freed once (ASan), a cancelled job gets
 * no done and is still freed, and lookupq_free() finishes what is out.
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "unit.h"

#include "daemon/config.h"
#include "net/lookupq.h"
#include "store/userdb.h"

static char tmpdir[] = "/tmp/godwit-lookupq-XXXXXX";
static char dbpath[128];
static struct userdb_config udb;

static int
rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

static void
must(int r, char *err)
{
	if (r < 0)
		fail_msg("setup: %s", err != NULL ? err : "?");
}

static int
setup_db(void **state)
{
	struct userdb *db;
	char *err = NULL;

	(void)state;
	if (mkdtemp(tmpdir) == NULL)
		fail_msg("mkdtemp");
	snprintf(dbpath, sizeof(dbpath), "%s/db/godwit.sqlite", tmpdir);
	udb.driver = "sqlite";
	udb.path = dbpath;
	must(userdb_open(&udb, false, &db, &err), err);
	must(db->ops->domain_add(db, "example.test", &err), err);
	must(db->ops->user_add(db, "alice@example.test", "$y$x", &err), err);
	must(db->ops->alias_add(db, "team@example.test", "alice@example.test",
				&err),
	     err);
	userdb_close(&db);
	return 0;
}

static int
teardown_db(void **state)
{
	(void)state;
	nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

struct seen {
	struct event_base *base;
	int order[16];
	int verdict[16];
	size_t n, want;
};

static struct seen seen;
static int tags[16];

static void
rcpt_done(struct lookup_job *job, void *arg)
{
	struct rcpt_lookup *l = (struct rcpt_lookup *)job;

	seen.order[seen.n] = *(int *)arg;
	seen.verdict[seen.n] = l->res[0].verdict;
	if (++seen.n == seen.want)
		event_base_loopbreak(seen.base);
}

static struct rcpt_lookup *
rcpt_job(const char *local, const char *domain, int tag)
{
	struct recipient_ctx ctx = {.hostname = "mx.example.test"};
	struct smtp_mailbox mbox;
	struct rcpt_lookup *l;

	memset(&mbox, 0, sizeof(mbox));
	snprintf(mbox.local, sizeof(mbox.local), "%s", local);
	snprintf(mbox.domain, sizeof(mbox.domain), "%s", domain);
	l = rcpt_lookup_new(&ctx, &mbox, 1);
	tags[tag] = tag;
	l->job.done = rcpt_done;
	l->job.arg = &tags[tag];
	return l;
}

/* Answers in order; the cancelled one never answers. */
static void
test_order_and_cancel(void **state)
{
	struct event_base *base = event_base_new();
	struct timeval limit = {10, 0};
	struct lookupq *q;
	struct rcpt_lookup *gone;
	char *err = NULL;

	(void)state;
	memset(&seen, 0, sizeof(seen));
	seen.base = base;
	seen.want = 3;
	q = lookupq_new(base, &udb, &err);
	assert_non_null(q);
	lookupq_submit(q, &rcpt_job("alice", "example.test", 0)->job);
	gone = rcpt_job("team", "example.test", 1);
	lookupq_submit(q, &gone->job);
	lookup_job_cancel(&gone->job);
	lookupq_submit(q, &rcpt_job("nobody", "example.test", 2)->job);
	lookupq_submit(q, &rcpt_job("x", "elsewhere.example", 3)->job);
	event_base_loopexit(base, &limit);	/* a bound, never reached */
	event_base_dispatch(base);
	assert_int_equal(seen.n, 3);
	assert_int_equal(seen.order[0], 0);
	assert_int_equal(seen.verdict[0], RCPT_ACCEPT);
	assert_int_equal(seen.order[1], 2);
	assert_int_equal(seen.verdict[1], RCPT_REJECT);	/* unknown user */
	assert_int_equal(seen.order[2], 3);
	assert_int_equal(seen.verdict[2], RCPT_REJECT);	/* relay denied */
	lookupq_free(&q);
	assert_null(q);
	event_base_free(base);
}

static void
sender_done(struct lookup_job *job, void *arg)
{
	struct sender_lookup *l = (struct sender_lookup *)job;

	(void)arg;
	seen.order[seen.n] = (int)l->failed;
	seen.verdict[seen.n] = l->r;
	seen.n++;
}

/* The sender policy stops at the first address not allowed, or at a
 * NULL; lookupq_free() runs what is still out and delivers it. */
static void
test_senders_and_free(void **state)
{
	const char *ok[] = {"alice@example.test", "team@example.test"};
	const char *bad[] = {"team@example.test", "stranger@example.test",
			     "alice@example.test"};
	const char *stop[] = {"team@example.test", NULL};
	const char *const *lists[] = {ok, bad, stop};
	size_t ns[] = {2, 3, 2};
	struct event_base *base = event_base_new();
	struct lookupq *q;
	char *err = NULL;

	(void)state;
	memset(&seen, 0, sizeof(seen));
	q = lookupq_new(base, &udb, &err);
	assert_non_null(q);
	for (size_t i = 0; i < 3; i++) {
		struct sender_lookup *l =
		    sender_lookup_new("alice@example.test", '+', lists[i], ns[i]);
		l->job.done = sender_done;
		lookupq_submit(q, &l->job);
	}
	lookupq_free(&q);	/* no loop ran: the answers come here */
	assert_int_equal(seen.n, 3);
	assert_int_equal(seen.order[0], 2);	/* all allowed */
	assert_int_equal(seen.verdict[0], 1);
	assert_int_equal(seen.order[1], 1);	/* the stranger */
	assert_int_equal(seen.verdict[1], 0);
	assert_int_equal(seen.order[2], 1);	/* the NULL */
	assert_int_equal(seen.verdict[2], 1);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_order_and_cancel),
	    cmocka_unit_test(test_senders_and_free),
	};

	return cmocka_run_group_tests(tests, setup_db, teardown_db);
}
