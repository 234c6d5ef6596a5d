/*
 * The hourly audit head and the daily rotation, in the parent: see
 * audit_tick.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <event2/event.h>

#include "daemon/audit_tick.h"
#include "store/audit.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/xalloc.h"

struct audit_tick {
	struct event *ev;
	char *data_dir;
	uid_t uid;
	gid_t gid;
	char day[16];		/* the local day audit.log is for */
};

static void
rotate_if_new_day(struct audit_tick *t)
{
	char today[16], *name = NULL, *err = NULL;

	local_date((int64_t)time(NULL), today, sizeof(today));
	if (strcmp(today, t->day) == 0)
		return;
	if (audit_rotate(t->data_dir, t->day, t->uid, t->gid, &name,
			 &err) < 0) {
		log_event(LOG_ERR, "audit", "audit-rotate-failed",
			  LF_STR("error", err));
		free(err);
		return;		/* tried again at the next tick */
	}
	free(name);
	memcpy(t->day, today, sizeof(t->day));
}

static void
log_head(struct audit_tick *t)
{
	char head[HASHCHAIN_HEX_LEN + 1], *err = NULL;

	if (audit_head(t->data_dir, head, &err) < 0) {
		log_event(LOG_ERR, "audit", "audit-head-failed",
			  LF_STR("error", err));
		free(err);
		return;
	}
	log_event(LOG_INFO, "audit", "audit-head", LF_STR("head", head));
}

/* To the next full hour of local time (a second past it). */
static void
arm(struct audit_tick *t)
{
	time_t now = time(NULL);
	struct tm tm;
	struct timeval tv = {0, 0};

	localtime_r(&now, &tm);
	tv.tv_sec = 3600 - (tm.tm_min * 60 + tm.tm_sec) + 1;
	evtimer_add(t->ev, &tv);
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct audit_tick *t = arg;

	(void)fd;
	(void)what;
	rotate_if_new_day(t);
	log_head(t);
	arm(t);
}

struct audit_tick *
audit_tick_new(struct event_base *base, const char *data_dir, uid_t uid,
	       gid_t gid)
{
	struct audit_tick *t = xcalloc(1, sizeof(*t));
	char *path = xasprintf("%s/%s/%s", data_dir, AUDIT_DIR, AUDIT_FILE);
	struct stat sb;

	t->data_dir = xstrdup(data_dir);
	t->uid = uid;
	t->gid = gid;
	/* the day of the last line: a server that was down over midnight
	 * rotates now */
	local_date(stat(path, &sb) == 0 && sb.st_size > 0
		       ? (int64_t)sb.st_mtime
		       : (int64_t)time(NULL),
		   t->day, sizeof(t->day));
	free(path);
	t->ev = evtimer_new(base, tick_cb, t);
	rotate_if_new_day(t);
	log_head(t);
	arm(t);
	return t;
}

void
audit_tick_free(struct audit_tick **tp)
{
	struct audit_tick *t = *tp;

	if (t == NULL)
		return;
	if (t->ev != NULL)
		event_free(t->ev);
	free(t->data_dir);
	free(t);
	*tp = NULL;
}

void
audit_tick_reload(const char *data_dir, const char *path, const char *result)
{
	char *err = NULL;

	if (audit_admin(data_dir, "signal", -1, "config-reload", path, result,
			&err) < 0) {
		log_event(LOG_ERR, "audit", "audit-failed",
			  LF_STR("error", err));
		free(err);
	}
}
