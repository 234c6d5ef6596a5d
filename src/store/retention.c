/*
 * The retention thread, a periodic lib/workq: a stop wakes it at once; a
 * sweep in progress is not interrupted (mailbox_expire() works one
 * mailbox at a time and is bounded by the number of files).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "lib/util.h"
#include "lib/xalloc.h"
#include "lib/log.h"
#include "lib/workq.h"
#include "store/mailbox.h"
#include "store/retention.h"

struct retention {
	struct workq *wq;	/* sweep() now and every interval */
	char *data_dir;
	uint64_t max_age;	/* seconds */
	uint64_t interval;	/* seconds */
};

static void
sweep(void *arg)
{
	struct retention *r = arg;
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

struct retention *
retention_start(const struct retention_config *rc, const char *data_dir)
{
	struct retention *r;

	if (rc->mail == 0)
		return NULL;
	r = xcalloc(1, sizeof(*r));
	r->data_dir = xstrdup(data_dir);
	r->max_age = rc->mail;
	r->interval = rc->interval;
	r->wq = workq_start_periodic("retention", r->interval, sweep, r);
	return r;
}

void
retention_stop(struct retention **rp)
{
	struct retention *r = *rp;

	if (r == NULL)
		return;
	workq_stop(&r->wq);
	free(r->data_dir);
	free(r);
	*rp = NULL;
}
