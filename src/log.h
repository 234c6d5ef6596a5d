/*
 * Logging: one event per line, `key=value` (default) or JSON lines, to
 * stderr or a file opened O_APPEND (each event is one write(), so lines
 * from several workers never interleave).
 *
 *	log_event(LOG_INFO, "smtp", "connect", "session=%s ip=%s", id, ip);
 *
 * The fields argument is key=value pairs separated by single spaces;
 * values containing spaces, quotes or control characters must be quoted
 * with log_quote(). In JSON mode the pairs are converted to JSON members.
 */
#ifndef GODWIT_LOG_H
#define GODWIT_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <syslog.h>

#include "config.h"

void log_init(const char *progname, enum log_format format, int level);
/* Takes over fd (sets *fd to -1); -1 keeps stderr. */
void log_set_fd(int *fd);
void log_set_format(enum log_format format, int level);
void log_set_process(const char *name);	/* "parent", "worker/3" */

void log_event(int level, const char *facility, const char *event,
	       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

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

/*
 * Quotes s for a log value into buf: returned as-is when it has no
 * spaces, quotes, '=', backslashes or control characters, else
 * "..." with \" \\ and \xNN escapes. Truncates long values with "...".
 */
const char *log_quote(char *buf, size_t size, const char *s);

#endif
