/*
 * One event per line, key=value or JSON lines. Each event is formatted in
 * a stack buffer and written with one write() so lines from several
 * processes appending to the same file never interleave.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"
#include "log.h"

#define LOG_LINE_MAX 4096
/* A log_emit() line: room for a few values of LOGFMT_VALUE_MAX. */
#define LOG_EMIT_MAX 8192

static struct {
	int fd;
	enum log_format format;
	int level;
	char process[32];
} lg = {2, LOG_FORMAT_KV, LOG_INFO, "godwit"};

void
log_init(const char *progname, enum log_format format, int level)
{
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

static bool
needs_quote(const char *s)
{
	if (*s == '\0')
		return true;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f)
			return true;
	}
	return false;
}

const char *
log_quote(char *buf, size_t size, const char *s)
{
	size_t o = 0;

	if (size < 8) {
		if (size > 0)
			buf[0] = '\0';
		return buf;
	}
	if (!needs_quote(s)) {
		if (strlcpy_checked(buf, s, size) == 0)
			return buf;
	}
	buf[o++] = '"';
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		/* leave room for an escape, "..." and the closing quote */
		if (o + 8 >= size) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (c == '"' || c == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)c;
		} else if (c < ' ' || c == 0x7f) {
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
		} else {
			buf[o++] = (char)c;
		}
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

/* Appends the key=value fields as JSON members: "key":"value". */
static size_t
kv_to_json(char *out, size_t size, const char *kv)
{
	size_t o = 0;
	const char *p = kv;

#define PUT(c)                                                                 \
	do {                                                                   \
		if (o + 1 < size)                                              \
			out[o++] = (c);                                        \
	} while (0)
	while (*p != '\0') {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		PUT(',');
		PUT('"');
		while (*p != '\0' && *p != '=' && *p != ' ')
			PUT(*p++);
		PUT('"');
		PUT(':');
		PUT('"');
		if (*p == '=')
			p++;
		if (*p == '"') {
			/* quoted value: copy escapes as JSON escapes */
			p++;
			while (*p != '\0' && *p != '"') {
				if (*p == '\\' && p[1] == 'x') {
					PUT('\\');
					PUT('u');
					PUT('0');
					PUT('0');
					p += 2;
					continue;
				}
				if (*p == '\\' && p[1] != '\0') {
					PUT('\\');
					p++;
				}
				PUT(*p++);
			}
			if (*p == '"')
				p++;
		} else {
			while (*p != '\0' && *p != ' ')
				PUT(*p++);
		}
		PUT('"');
	}
#undef PUT
	out[o] = '\0';
	return o;
}

static void vlog_event(int level, const char *facility, const char *event,
		       const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));
static void vlog_msg(int level, const char *suffix, const char *fmt,
		     va_list ap) __attribute__((format(printf, 3, 0)));

static void
vlog_event(int level, const char *facility, const char *event,
	   const char *fmt, va_list ap)
{
	char fields[LOG_LINE_MAX - 256], line[LOG_LINE_MAX], ts[96];
	struct timeval tv;
	struct tm tm;
	int n;

	if (level > lg.level)
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000) % 1000);
	if (fmt != NULL)
		vsnprintf(fields, sizeof(fields), fmt, ap);
	else
		fields[0] = '\0';

	if (lg.format == LOG_FORMAT_JSON) {
		char json[LOG_LINE_MAX];
		kv_to_json(json, sizeof(json), fields);
		n = snprintf(line, sizeof(line),
			     "{\"ts\":\"%s\",\"level\":\"%s\",\"proc\":\"%s\","
			     "\"fac\":\"%s\",\"event\":\"%s\"%s}\n",
			     ts, level_name(level), lg.process, facility, event,
			     json);
	} else {
		n = snprintf(line, sizeof(line),
			     "%s level=%s proc=%s fac=%s event=%s%s%s\n", ts,
			     level_name(level), lg.process, facility, event,
			     fields[0] != '\0' ? " " : "", fields);
	}
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	if (write(lg.fd, line, (size_t)n) < 0) {
		/* nowhere left to complain */
	}
}

void
log_eventf(int level, const char *facility, const char *event, const char *fmt,
	   ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog_event(level, facility, event, fmt, ap);
	va_end(ap);
}

/* Room kept at the end of a line for " truncated=yes" and "}\n". */
#define LINE_RESERVE 32

void
log_emit(int level, const char *facility, const char *event,
	 const struct log_field *fields)
{
	char line[LOG_EMIT_MAX], ts[48];
	struct logfmt_out o = {line, 0, sizeof(line) - LINE_RESERVE, false};
	enum logfmt_format fmt =
		lg.format == LOG_FORMAT_JSON ? LOGFMT_JSON : LOGFMT_KV;
	struct timeval tv;
	struct tm tm;
	bool whole;

	if (level > lg.level)
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000) % 1000);
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
	if (write(lg.fd, line, o.len) < 0) {
		/* nowhere left to complain */
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
