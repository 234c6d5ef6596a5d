/*
 * The retention thread. It sleeps on a condition variable so that
 * retention_stop() wakes it at once; a sweep in progress is not
 * interrupted (mailbox_expire() works one mailbox at a time and is
 * bounded by the number of files).
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "lib/util.h"
#include "lib/xalloc.h"
#include "lib/log.h"
#include "store/mailbox.h"
#include "store/retention.h"

struct retention {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;	/* on CLOCK_MONOTONIC */
	bool stop;
	char *data_dir;
	uint64_t max_age;	/* seconds */
	uint64_t interval;	/* seconds */
};

static void
sweep(struct retention *r)
{
	struct mailbox_expire_stats st = {0};
	time_t cutoff = time(NULL) - (time_t)r->max_age;
	uint64_t t0 = mono_ms();
	int rc;

	rc = mailbox_expire(r->data_dir, cutoff, &st);
	log_event(rc < 0 || st.errors > 0 ? LOG_WARNING : LOG_INFO,
		  "retention", "sweep", LF_UINT("max_age_days", r->max_age / 86400),
		  LF_UINT("mailboxes", st.mailboxes),
		  LF_UINT("skipped_in_use", st.skipped),
		  LF_UINT("removed", st.removed), LF_UINT("bytes", st.bytes),
		  LF_UINT("errors", st.errors),
		  LF_STR_IF(rc < 0, "result", "cannot-open-mail-dir"),
		  LF_UINT("duration_ms", mono_ms() - t0));
}

static void *
run(void *arg)
{
	struct retention *r = arg;
	struct timespec until;

	pthread_mutex_lock(&r->lock);
	while (!r->stop) {
		pthread_mutex_unlock(&r->lock);
		sweep(r);
		pthread_mutex_lock(&r->lock);
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += (time_t)r->interval;
		while (!r->stop &&
		       pthread_cond_timedwait(&r->cond, &r->lock, &until) !=
			       ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

struct retention *
retention_start(const struct retention_config *rc, const char *data_dir)
{
	struct retention *r;
	pthread_condattr_t ca;

	if (rc->mail == 0)
		return NULL;
	r = xcalloc(1, sizeof(*r));
	r->data_dir = xstrdup(data_dir);
	r->max_age = rc->mail;
	r->interval = rc->interval;
	pthread_mutex_init(&r->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&r->thread, NULL, run, r) != 0)
		fatalx("cannot start the retention thread");
	return r;
}

void
retention_stop(struct retention **rp)
{
	struct retention *r = *rp;

	if (r == NULL)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	free(r->data_dir);
	free(r);
	*rp = NULL;
}
