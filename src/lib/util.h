/*
 * Small string and number helpers that know nothing of mail.
 */
#ifndef GODWIT_UTIL_H
#define GODWIT_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ASCII-only lower-casing in place (domains, command verbs). */
void ascii_lower(char *s);
int ascii_strcasecmp_prefix(const char *s, const char *prefix);

/*
 * "30s", "5m", "2h", "7d", or a plain number of seconds. Returns 0, or -1
 * with *error_r set to a static message.
 */
int parse_duration(const char *s, uint64_t *seconds_r, const char **error_r);
/* "512", "64K", "25M", "1G" (binary multiples). */
int parse_size(const char *s, uint64_t *bytes_r, const char **error_r);
/* A decimal unsigned integer with no sign, no spaces, no overflow. */
int parse_uint64(const char *s, uint64_t *v_r);

/* The value of a hexadecimal digit of either case, or -1. */
int hex_digit(int c);

/* Copies with truncation check: returns -1 if src does not fit. */
int strlcpy_checked(char *dst, const char *src, size_t size);
/* src[0..len) into dst (size > 0), each octet outside printable ASCII
 * (0x20-0x7e) as '?', cut at size - 1 octets, NUL-terminated. For text
 * from another process going into a reply, a header or a log. */
void ascii_printable(char *dst, size_t size, const char *src, size_t len);

/* Wall-clock time in milliseconds and a monotonic clock in milliseconds. */
uint64_t now_ms(void);
uint64_t mono_ms(void);

/* Now, UTC, with milliseconds: "2026-11-23T06:48:48.463Z" (the log's and
 * the audit log's timestamps); buf of UTC_TIMESTAMP_SIZE or more. */
#define UTC_TIMESTAMP_SIZE 48
void utc_timestamp_ms(char *buf, size_t size);
/* The local date of t, "2026-12-06" (rotated log file names); buf of 11
 * or more. */
void local_date(int64_t t, char *buf, size_t size);
/* RFC 5322 date-time for headers: "Mon, 23 Nov 2026 06:29:00 +0000". */
void rfc5322_date(char *buf, size_t size, int64_t t);

/* Writes all of buf, retrying on EINTR and short writes. */
int write_full(int fd, const void *buf, size_t len);
/* fsync() the directory at path. */
int fsync_dir(const char *path);
/* Unblocks every signal (after the handlers are installed). */
void signals_unblock_all(void);
/* mkdir -p with mode; existing directories are fine. */
int mkdir_p(const char *path, unsigned mode);

/*
 * What ps shows for this process: proc_title_init() from main() with the
 * original argv, then proc_title() in a child ("godwit: queue runner").
 * The title is cut to the space the arguments had.
 */
void proc_title_init(int argc, char **argv);
void proc_title(const char *title);

#endif
