/*
 * The log file, which only the parent ever holds. Every child writes its
 * lines into one pipe made before the first fork (each line is one
 * write() of at most PIPE_BUF bytes: lines of several writers never mix
 * in a pipe), and the parent copies whole lines to standard error or to
 * log.file. (With no log.file the children write to standard error
 * themselves, as the parent does: nothing there to rotate or protect,
 * and each line is written before the reply that follows it.) Why the
 * children do not hold the file, as they did:
 *
 *   - a rotation or a SIGUSR1 reopen happens in one process, between two
 *     whole lines: no child keeps writing to a renamed file, none needs
 *     telling, and a child being forked at that moment cannot miss it;
 *   - the file stays root's (log/ is root:godwit 0750: the daemon user
 *     may only append to audit.log there): a compromised worker can add
 *     lines, as before, but can no longer truncate or rewrite what is
 *     there through its own descriptor;
 *   - log.file may be anywhere root can write (/var/log/godwit/...),
 *     since the unprivileged children never open it by name.
 *
 * What it costs: one copy of each child's line through the parent, and,
 * while the parent is busy (a reload reading keys), children's lines
 * wait in the pipe (1 MiB asked for; a child blocks only when it is
 * full, as it would on a full disk).
 *
 * Daily rotation: at local midnight FILE becomes FILE.YYYY-MM-DD (the
 * day that ended; never over an existing file) and a new FILE is opened;
 * the lines already in the pipe go to the old one first. A file last
 * written on an earlier day is rotated at start. Then the rotated log
 * and audit files older than retention.logs are removed
 * (store/retention.h), at start and after each midnight.
 *
 * GODWIT_TEST_LOG_CLOCK_OFFSET (seconds, |x| < 1 year), read at start,
 * shifts the clock that decides the day, so a test can see a midnight
 * pass in seconds through this very code; the lines' timestamps keep the
 * real time. A test hook only: nothing else reads it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "daemon/config.h"
#include "daemon/logfile.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "store/retention.h"

#define PIPE_SIZE (1 << 20)
#define RELAY_BUF 65536
#define RELAY_READS 64		/* per event; it fires again for more */
#define TICK_MAX 3600		/* s: a clock change is noticed within */
#define OFFSET_MAX (366L * 86400)

struct logfile {
	int pipe_r, pipe_w;
	int reopen_fd;		/* eventfd: a child's SIGUSR1 for the parent */
	char *path;		/* NULL: standard error */
	char *log_dir;		/* <data_dir>/log */
	enum log_rotate rotate;
	uint64_t max_age;	/* retention.logs, s; 0: forever */
	char day[16];		/* YYYY-MM-DD of the current file's lines */
	long offset;		/* the test hook above */
	struct event *ev, *tick, *reopen_ev;
	size_t len;
	char buf[RELAY_BUF];
};

/* The shifted clock, from the one source arm() uses too: time(NULL)
 * reads the kernel's coarse clock, which can still say 23:59:59 a tick
 * after gettimeofday() says midnight. */
static struct timespec
clock_now_ts(const struct logfile *lf)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += lf->offset;
	return ts;
}

static time_t
clock_now(const struct logfile *lf)
{
	return clock_now_ts(lf).tv_sec;
}

/* O_NOFOLLOW and a regular file: root never appends through a link. */
static int
open_file(const char *path, char **error_r)
{
	struct stat st;
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
			  O_NOFOLLOW | O_NOCTTY, 0640);

	if (fd < 0) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		*error_r = xasprintf("%s: not a regular file", path);
		close(fd);
		return -1;
	}
	return fd;
}

/* Whole lines from the pipe to the log; a partial one waits. */
static void
relay(struct logfile *lf)
{
	for (unsigned i = 0; i < RELAY_READS; i++) {
		ssize_t n = read(lf->pipe_r, lf->buf + lf->len,
				 sizeof(lf->buf) - lf->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		lf->len += (size_t)n;
		char *nl = memrchr(lf->buf, '\n', lf->len);
		size_t k = nl != NULL ? (size_t)(nl - lf->buf) + 1
		    : lf->len == sizeof(lf->buf) ? lf->len : 0;
		if (k == 0)
			continue;
		if (log_write_raw(lf->buf, k) < 0) {
			/* nowhere left to complain */
		}
		memmove(lf->buf, lf->buf + k, lf->len - k);
		lf->len -= k;
	}
}

static void
reopen_cb(evutil_socket_t fd, short what, void *arg)
{
	uint64_t n;

	(void)what;
	if (read(fd, &n, sizeof(n)) == sizeof(n))
		logfile_reopen(arg);
}

static void
relay_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	relay(arg);
}

/* The day a file's lines belong to: its last write's, or today. */
static void
file_day(struct logfile *lf, int fd)
{
	struct stat st;

	if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size > 0)
		local_date(st.st_mtime + lf->offset, lf->day, sizeof(lf->day));
	else
		local_date(clock_now(lf), lf->day, sizeof(lf->day));
}

int
logfile_open(const struct config *config, struct logfile **lf_r,
	     char **error_r)
{
	struct logfile *lf = xcalloc(1, sizeof(*lf));
	int p[2];
	const char *o = getenv("GODWIT_TEST_LOG_CLOCK_OFFSET");

	if (o != NULL) {
		long v = strtol(o, NULL, 10);
		if (v > -OFFSET_MAX && v < OFFSET_MAX)
			lf->offset = v;
	}
	if (pipe2(p, O_CLOEXEC) < 0) {
		*error_r = xasprintf("log pipe: %s", strerror(errno));
		free(lf);
		return -1;
	}
	lf->pipe_r = p[0];
	lf->pipe_w = p[1];
	if ((lf->reopen_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		*error_r = xasprintf("eventfd: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		free(lf);
		return -1;
	}
	fcntl(lf->pipe_r, F_SETFL, O_NONBLOCK);
	(void)fcntl(lf->pipe_w, F_SETPIPE_SZ, PIPE_SIZE);
	lf->log_dir = xasprintf("%s/log", config->data_dir);
	if (logfile_configure(lf, config, error_r) < 0) {
		*lf_r = lf;
		logfile_close(lf_r);
		return -1;
	}
	*lf_r = lf;
	return 0;
}

int
logfile_configure(struct logfile *lf, const struct config *config,
		  char **error_r)
{
	const char *path = config->log.file;
	int fd;

	lf->rotate = config->log.rotate;
	lf->max_age = config->retention.logs;
	if ((path == NULL && lf->path == NULL) ||
	    (path != NULL && lf->path != NULL && strcmp(path, lf->path) == 0)) {
		log_set_format(config->log.format, config->log.level);
		return 0;
	}
	if (path == NULL)
		fd = 2;
	else if ((fd = open_file(path, error_r)) < 0)
		return -1;
	relay(lf);		/* the old destination's last lines */
	log_set_format(config->log.format, config->log.level);
	file_day(lf, path != NULL ? fd : -1);
	log_set_fd(&fd);
	free(lf->path);
	lf->path = path != NULL ? xstrdup(path) : NULL;
	return 0;
}

/*
 * A child cannot signal the parent (root), so its SIGUSR1 handler writes
 * to an eventfd the parent watches. Only write(): async-signal-safe, and
 * the counter never blocks (EFD_NONBLOCK; it cannot overflow in practice).
 */
static int child_reopen_fd = -1;

static void
child_usr1(int sig)
{
	uint64_t one = 1;
	int saved = errno;

	(void)sig;
	if (write(child_reopen_fd, &one, sizeof(one)) < 0) {
		/* the parent is gone: nothing to reopen */
	}
	errno = saved;
}

void
logfile_child(struct logfile *lf)
{
	int fd = lf->pipe_w;
	struct sigaction sa;

	close(lf->pipe_r);
	lf->pipe_r = -1;
	if (lf->path == NULL) {
		/* standard error (journald): no file to rotate or to keep
		 * from the child, so it writes there itself, and a line is
		 * there before the reply that follows it (as the tests and
		 * an operator watching the journal expect) */
		close(lf->pipe_w);
		lf->pipe_w = -1;
		fd = 2;
	}
	log_set_fd(&fd);	/* and closes the inherited file */
	child_reopen_fd = lf->reopen_fd;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = child_usr1;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
}

static int
reopen(struct logfile *lf)
{
	char *error = NULL;
	int fd = open_file(lf->path, &error);

	if (fd < 0) {
		log_event(LOG_ERR, "log", "reopen-failed",
			  LF_STR("path", lf->path), LF_STR("error", error));
		free(error);
		return -1;
	}
	log_set_fd(&fd);
	return 0;
}

void
logfile_reopen(struct logfile *lf)
{
	relay(lf);
	if (lf->path == NULL || reopen(lf) < 0)
		return;
	log_event(LOG_INFO, "log", "reopened", LF_STR("path", lf->path));
}

/* FILE -> FILE.<day that ended>, never over an existing file. */
static void
rotate(struct logfile *lf)
{
	char *to = xasprintf("%s.%s", lf->path, lf->day);
	int r;

	relay(lf);
	r = renameat2(AT_FDCWD, lf->path, AT_FDCWD, to, RENAME_NOREPLACE);
	if (r < 0)
		log_event(LOG_WARNING, "log", "rotate-failed",
			  LF_STR("path", to), LF_STR("error", strerror(errno)));
	if (reopen(lf) == 0 && r == 0)
		log_event(LOG_INFO, "log", "rotated", LF_STR("path", to));
	free(to);
}

static void
sweep(struct logfile *lf)
{
	struct retention_logs_stats st, st2 = {0};
	time_t now = clock_now(lf);
	int r;

	if (lf->max_age == 0)
		return;
	r = retention_remove_logs(lf->log_dir, NULL, now, lf->max_age, &st);
	/* a log.file elsewhere: its own rotated files there */
	if (lf->path != NULL) {
		const char *slash = strrchr(lf->path, '/');
		size_t dl = slash != NULL ? (size_t)(slash - lf->path) : 0;
		if (slash != NULL && (strlen(lf->log_dir) != dl ||
				      strncmp(lf->path, lf->log_dir, dl) != 0)) {
			char *dir = xstrndup(lf->path, dl);
			if (retention_remove_logs(dir, slash + 1, now,
						  lf->max_age, &st2) < 0)
				r = -1;
			free(dir);
		}
	}
	log_event(r < 0 || st.errors + st2.errors > 0 ? LOG_WARNING : LOG_INFO,
		  "retention", "logs-sweep",
		  LF_UINT("max_age_days", lf->max_age / 86400),
		  LF_UINT("files", st.files + st2.files),
		  LF_UINT("removed", st.removed + st2.removed),
		  LF_UINT("errors", st.errors + st2.errors),
		  LF_STR_IF(st.kept_head, "kept", "audit-head"),
		  LF_STR_IF(r < 0, "result", "cannot-open-log-dir"));
}

/* The local midnight that ends lf->day; -1 when it cannot be told. */
static time_t
day_end(const struct logfile *lf)
{
	struct tm tm;
	int y, m, d;

	if (sscanf(lf->day, "%4d-%2d-%2d", &y, &m, &d) != 3)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = m - 1;
	tm.tm_mday = d + 1;
	tm.tm_isdst = -1;
	return mktime(&tm);
}

/* Until the midnight that ends the current file's day (of the shifted
 * clock), at most TICK_MAX. Aimed at that day's end, not at the next
 * midnight after now: a timer that fires a little early, or a clock that
 * says midnight passed while new_day() still saw the old day, brings the
 * next tick in a millisecond, never TICK_MAX late. */
static void
arm(struct logfile *lf)
{
	struct timespec now = clock_now_ts(lf);
	struct timeval tv;
	time_t end = day_end(lf);
	long long us;

	if (end == (time_t)-1)
		us = (long long)TICK_MAX * 1000000;
	else
		us = (long long)(end - now.tv_sec) * 1000000 -
		     now.tv_nsec / 1000;
	if (us > (long long)TICK_MAX * 1000000)
		us = (long long)TICK_MAX * 1000000;
	/* long past, the day unchanged: a midnight the zone skips (its
	 * clocks go from 23:59 to 01:00): look again each second */
	if (us < -1000000)
		us = 1000000;
	if (us < 1000)
		us = 1000;
	tv.tv_sec = (time_t)(us / 1000000);
	tv.tv_usec = (suseconds_t)(us % 1000000);
	evtimer_add(lf->tick, &tv);
}

/* A new day: rotate (log.rotate daily), then retention. */
static bool
new_day(struct logfile *lf)
{
	char today[16];

	local_date(clock_now(lf), today, sizeof(today));
	if (strcmp(today, lf->day) == 0)
		return false;
	if (lf->path != NULL && lf->rotate == LOG_ROTATE_DAILY)
		rotate(lf);
	memcpy(lf->day, today, sizeof(lf->day));
	sweep(lf);
	return true;
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct logfile *lf = arg;

	(void)fd;
	(void)what;
	new_day(lf);
	arm(lf);
}

void
logfile_attach(struct logfile *lf, struct event_base *base)
{
	lf->ev = event_new(base, lf->pipe_r, EV_READ | EV_PERSIST, relay_cb,
			   lf);
	event_add(lf->ev, NULL);
	lf->reopen_ev = event_new(base, lf->reopen_fd, EV_READ | EV_PERSIST,
				  reopen_cb, lf);
	event_add(lf->reopen_ev, NULL);
	lf->tick = evtimer_new(base, tick_cb, lf);
	if (!new_day(lf))
		sweep(lf);
	arm(lf);
}

void
logfile_close(struct logfile **lfp)
{
	struct logfile *lf = *lfp;

	if (lf == NULL)
		return;
	if (lf->pipe_r >= 0)
		relay(lf);
	if (lf->ev != NULL)
		event_free(lf->ev);
	if (lf->tick != NULL)
		event_free(lf->tick);
	if (lf->reopen_ev != NULL)
		event_free(lf->reopen_ev);
	close(lf->reopen_fd);
	if (lf->pipe_r >= 0)
		close(lf->pipe_r);
	close(lf->pipe_w);
	free(lf->path);
	free(lf->log_dir);
	free(lf);
	*lfp = NULL;
}
