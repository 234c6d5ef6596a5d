/*
 * One event per line, key=value or JSON lines. Each event is formatted in
 * a stack buffer and written with one write() so lines from several
 * processes appending to the same file never interleave.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"

/*
 * The longest line, newline included: PIPE_BUF, so that one write() to a
 * pipe or the journal's stream is never split and interleaved with
 * another process's line (a line cut in two would start a line with
 * bytes from inside a quoted value). Room for three values of
 * LOGFMT_VALUE_MAX and the usual fields; whatever does not fit is left
 * out whole and the line says truncated=yes.
 */
#define LOG_LINE_MAX 4096
/* the children's lines reach the parent through a pipe (daemon/logfile.c):
 * a longer line could be split and interleaved there */
_Static_assert(LOG_LINE_MAX <= PIPE_BUF, "a log line must fit PIPE_BUF");

static struct {
	int fd;
	enum log_format format;
	int level;
	char process[32];
} lg = {2, LOG_FORMAT_KV, LOG_INFO, "godwit"};

void
log_init(const char *progname, enum log_format format, int level)
{
	if (lg.fd > 2)		/* a log file set before: not leaked */
		close(lg.fd);
	lg.fd = 2;
	lg.format = format;
	lg.level = level;
	snprintf(lg.process, sizeof(lg.process), "%s", progname);
}

void
log_set_fd(int *fd)
{
	if (*fd < 0)
		return;
	if (lg.fd > 2)
		close(lg.fd);
	lg.fd = *fd;
	*fd = -1;
}

void
log_set_format(enum log_format format, int level)
{
	lg.format = format;
	lg.level = level;
}

void
log_set_process(const char *name)
{
	snprintf(lg.process, sizeof(lg.process), "%s", name);
}

int
log_write_raw(const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(lg.fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void
out_append(struct logfmt_out *o, const char *s)
{
	size_t n = strlen(s);

	if (o->len + n < o->cap) {
		memcpy(o->buf + o->len, s, n + 1);
		o->len += n;
	}
}

static const char *
level_name(int level)
{
	switch (level) {
	case LOG_DEBUG:
		return "debug";
	case LOG_INFO:
	case LOG_NOTICE:
		return "info";
	case LOG_WARNING:
		return "warning";
	default:
		return "error";
	}
}

static void vlog_msg(int level, const char *suffix, const char *fmt,
		     va_list ap) __attribute__((format(printf, 3, 0)));

/* Room kept at the end of a line for " truncated=yes" and "}\n". */
#define LINE_RESERVE 32

void
log_emit(int level, const char *facility, const char *event,
	 const struct log_field *fields)
{
	char line[LOG_LINE_MAX], ts[UTC_TIMESTAMP_SIZE];
	struct logfmt_out o = {line, 0, sizeof(line) - LINE_RESERVE, false};
	enum logfmt_format fmt =
		lg.format == LOG_FORMAT_JSON ? LOGFMT_JSON : LOGFMT_KV;
	bool whole;

	if (level > lg.level)
		return;
	utc_timestamp_ms(ts, sizeof(ts));
	const struct log_field head[] = {
		LF_STR("level", level_name(level)),
		LF_STR("proc", lg.process),
		LF_STR("fac", facility),
		LF_STR("event", event),
		{.key = NULL},
	};
	line[0] = '\0';
	if (fmt == LOGFMT_JSON) {
		const struct log_field t[] = {LF_STR("ts", ts), {.key = NULL}};
		logfmt_fields(&o, fmt, t);
		line[0] = '{'; /* replaces the leading ',' */
	} else {
		o.len = (size_t)snprintf(line, sizeof(line), "%s", ts);
	}
	logfmt_fields(&o, fmt, head);
	whole = logfmt_fields(&o, fmt, fields);
	o.cap = sizeof(line);
	o.full = false;
	if (!whole) {
		const struct log_field t[] = {LF_STR("truncated", "yes"),
					      {.key = NULL}};
		logfmt_fields(&o, fmt, t);
	}
	if (fmt == LOGFMT_JSON)
		out_append(&o, "}");
	out_append(&o, "\n");
	if (write(lg.fd, line, o.len) < 0 && errno == EPIPE && lg.fd > 2) {
		/* a child whose parent (the reader of its log pipe) is gone:
		 * its lines go to standard error rather than nowhere. The
		 * pipe is not closed: another thread may be writing to it */
		lg.fd = 2;
		if (write(lg.fd, line, o.len) < 0) {
			/* nowhere left to complain */
		}
	}
}

static void
vlog_msg(int level, const char *suffix, const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (suffix != NULL) {
		size_t l = strlen(msg);
		snprintf(msg + l, sizeof(msg) - l, ": %s", suffix);
	}
	log_event(level, "daemon", "message", LF_STR("msg", msg));
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog_msg(LOG_INFO, NULL, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	if (lg.level < LOG_DEBUG)
		return;
	va_start(ap, fmt);
	vlog_msg(LOG_DEBUG, NULL, fmt, ap);
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog_msg(LOG_WARNING, NULL, fmt, ap);
	va_end(ap);
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;
	const char *e = strerror(errno);

	va_start(ap, fmt);
	vlog_msg(LOG_WARNING, e, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;
	const char *e = strerror(errno);

	va_start(ap, fmt);
	vlog_msg(LOG_ERR, e, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog_msg(LOG_ERR, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}
