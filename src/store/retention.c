/*
 * The retention thread, a periodic lib/workq: a stop wakes it at once; a
 * sweep in progress is not interrupted (mailbox_expire() works one
 * mailbox at a time and is bounded by the number of files). And the
 * removal of rotated log files, which the parent runs (it owns log/).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"
#include "lib/xalloc.h"
#include "lib/log.h"
#include "lib/workq.h"
#include "store/mailbox.h"
#include "store/retention.h"

struct retention {
	struct workq *wq;	/* sweep() now and every interval */
	char *mail_dir;
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

	rc = mailbox_expire(r->mail_dir, cutoff, &st);
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
retention_start(const struct retention_config *rc, const char *mail_dir)
{
	struct retention *r;

	if (rc->mail == 0)
		return NULL;
	r = xcalloc(1, sizeof(*r));
	r->mail_dir = xstrdup(mail_dir);
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
	free(r->mail_dir);
	free(r);
	*rp = NULL;
}

/* ---- rotated log files ---------------------------------------------- */

int
retention_log_name(const char *name, size_t *base_len_r, time_t *day_r)
{
	size_t n = strlen(name), b, k = n;
	const char *d;
	struct tm tm = {0};

	/* a day's second rotation of the audit log: ".N" after the date
	 * (store/audit.h), N from 1, at most 3 digits */
	while (k > 0 && k + 3 > n && name[k - 1] >= '0' && name[k - 1] <= '9')
		k--;
	if (k < n && k > 16 && name[k - 1] == '.' && name[k] != '0')
		n = k - 1;
	/* "X.log." + "YYYY-MM-DD" */
	if (n < 6 + 10)
		return -1;
	b = n - 11;
	d = name + b + 1;
	if (name[b] != '.' || memcmp(name + b - 4, ".log", 4) != 0 || b == 4)
		return -1;
	for (size_t i = 0; i < 10; i++) {
		bool dash = i == 4 || i == 7;
		if (dash ? d[i] != '-' : !(d[i] >= '0' && d[i] <= '9'))
			return -1;
	}
	tm.tm_year = atoi(d) - 1900;
	tm.tm_mon = atoi(d + 5) - 1;
	tm.tm_mday = atoi(d + 8);
	tm.tm_isdst = -1;
	if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 ||
	    tm.tm_mday > 31 || tm.tm_year < 70)
		return -1;
	*day_r = mktime(&tm);
	if (*day_r == (time_t)-1 || tm.tm_mday != atoi(d + 8))
		return -1;	/* 2026-02-31 */
	*base_len_r = b;
	return 0;
}

/* The local midnight after day (DST days are 23 or 25 hours). */
static time_t
day_end(time_t day)
{
	struct tm tm;

	localtime_r(&day, &tm);
	tm.tm_mday++;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	tm.tm_isdst = -1;
	return mktime(&tm);
}

/* The day of the newest audit.log.DATE in d, and whether audit.log is
 * missing or empty (then that file holds the chain head). */
static bool
audit_head_day(DIR *d, time_t *newest_r)
{
	struct dirent *de;
	struct stat st;
	size_t b;
	time_t day;

	*newest_r = (time_t)-1;
	rewinddir(d);
	while ((de = readdir(d)) != NULL)
		if (retention_log_name(de->d_name, &b, &day) == 0 &&
		    b == 9 && memcmp(de->d_name, "audit.log", 9) == 0 &&
		    day > *newest_r)
			*newest_r = day;
	if (fstatat(dirfd(d), "audit.log", &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st.st_mode) && st.st_size > 0)
		return false;
	return *newest_r != (time_t)-1;
}

int
retention_remove_logs(const char *dir, const char *only, time_t now,
		      uint64_t max_age, struct retention_logs_stats *st)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	time_t head = (time_t)-1, day;
	size_t b;

	memset(st, 0, sizeof(*st));
	if (d == NULL)
		return errno == ENOENT ? 0 : -1;
	bool protect = audit_head_day(d, &head);
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		const char *name = de->d_name;
		if (retention_log_name(name, &b, &day) < 0)
			continue;
		if (only != NULL &&
		    (strlen(only) != b || memcmp(name, only, b) != 0))
			continue;
		st->files++;
		time_t end = day_end(day);
		if (max_age == 0 || end > now || (uint64_t)(now - end) < max_age)
			continue;
		if (protect && day == head && b == 9 &&
		    memcmp(name, "audit.log", 9) == 0) {
			st->kept_head = true;
			continue;
		}
		if (unlinkat(dirfd(d), name, 0) < 0) {
			log_event(LOG_WARNING, "retention", "log-remove-failed",
				  LF_STR("dir", dir), LF_STR("path", name),
				  LF_STR("error", strerror(errno)));
			st->errors++;
			continue;
		}
		st->removed++;
		log_event(LOG_INFO, "retention", "log-removed",
			  LF_STR("dir", dir), LF_STR("path", name));
	}
	closedir(d);
	return 0;
}
