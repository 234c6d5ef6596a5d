/*
 * Logging: one event per line, `key=value` (default) or JSON lines, to
 * stderr or a file opened O_APPEND (each event is one write(), so lines
 * from several workers never interleave).
 *
 *	log_event(LOG_INFO, "smtp", "connect",
 *		  LF_STR("session", id), LF_STR("ip", ip), LF_UINT("n", n));
 *
 * Every value goes through the one encoder (lib/logfmt.h): no value can
 * become a key, a second field or a second line. Keys must be string
 * literals; the macros refuse anything else at compile time. There is no
 * printf form: log_info() and friends below format a message, but it is
 * one value (msg=) like any other.
 */
#ifndef GODWIT_LOG_H
#define GODWIT_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <syslog.h>

#include "lib/logfmt.h"

enum log_format { LOG_FORMAT_KV, LOG_FORMAT_JSON };
enum log_rotate { LOG_ROTATE_DAILY, LOG_ROTATE_NONE };

/* log: in the configuration */
struct log_config {
	enum log_format format;
	char *file;		/* NULL = stderr; made absolute at load */
	int level;		/* LOG_DEBUG .. LOG_ERR (syslog.h values) */
	enum log_rotate rotate;	/* of file, by godwit at local midnight */
};

void log_init(const char *progname, enum log_format format, int level);
/* Takes over fd (sets *fd to -1); -1 keeps stderr. */
void log_set_fd(int *fd);
void log_set_format(enum log_format format, int level);
void log_set_process(const char *name);	/* "parent", "worker/3" */
/* Whole lines formatted elsewhere (the children's, relayed by the
 * parent: daemon/logfile.h), written as they are; 0, or -1 with errno. */
int log_write_raw(const char *p, size_t n);

/* One field each; keys are literals of [a-z0-9_]. An event has at least
 * one field. */
#define LF_STR(k, val)                                                         \
	{.key = "" k "", .type = LOG_FIELD_STR, .v.s = (val)}
#define LF_BYTES(k, p, n)                                                      \
	{.key = "" k "", .type = LOG_FIELD_BYTES, .v.s = (const char *)(p),   \
	 .len = (n)}
#define LF_INT(k, val)                                                         \
	{.key = "" k "", .type = LOG_FIELD_INT, .v.i = (long long)(val)}
#define LF_UINT(k, val)                                                        \
	{.key = "" k "", .type = LOG_FIELD_UINT,                               \
	 .v.u = (unsigned long long)(val)}
#define LF_BOOL(k, b) LF_STR(k, (b) ? "yes" : "no")
/* A field written only when cond holds (e.g. banned=yes). */
#define LF_STR_IF(cond, k, val)                                                \
	{.key = "" k "",                                                       \
	 .type = (cond) ? LOG_FIELD_STR : LOG_FIELD_SKIP, .v.s = (val)}

#define log_event(level, facility, event, ...)                                 \
	log_emit((level), (facility), (event),                                 \
		 (const struct log_field[]){__VA_ARGS__, {.key = NULL}})

/* A list of fields built at run time (a variable number of them). */
void log_emit(int level, const char *facility, const char *event,
	      const struct log_field *fields);

/* Plain messages for errors and operator notices (msg="..."). */
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Appends ": strerror(errno)". */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Impossible state or unrecoverable error: log and exit(1). */
void fatal(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

#endif
