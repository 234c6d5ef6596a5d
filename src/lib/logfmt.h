/*
 * The log field encoder: the one place where a value becomes text in a
 * log line. Knows nothing of mail or of where lines go (log.c does that).
 *
 * The contract (docs/operations.md, "Log format"); a value is bytes:
 *
 *   key=value (logfmt): a value is written bare only when it is not empty
 *   and every byte is in [A-Za-z0-9] or one of - . _ : / @ + , [ ];
 *   otherwise it is double-quoted, with \" and \\ for quote and
 *   backslash and \xHH (lower-case hex) for every other byte that is a
 *   control character (C0, DEL), not part of valid UTF-8 (overlong forms,
 *   surrogates, above U+10FFFF, cut short), or part of a C1 control
 *   (U+0080..U+009F, with U+0085 NEXT LINE) or of U+2028 or U+2029 (the
 *   Unicode line breaks, which line-based readers split on). Other UTF-8
 *   passes through inside the quotes. So no value holds a raw space, '=',
 *   quote or line break outside its quotes, and none holds a raw line
 *   break at all.
 *
 *   JSON: always valid UTF-8. \" and \\; \u00HH for a control byte or a
 *   byte that is not valid UTF-8 (one escape per byte, so the bytes can be
 *   recovered: an escape below U+0100 stands for one byte); the C1
 *   controls as the \u00HH of each of their two UTF-8 bytes; U+2028 and
 *   U+2029 as \u2028 and \u2029. Integers are JSON numbers.
 *
 *   Length: a value's encoded form (between its quotes) is at most
 *   LOGFMT_VALUE_MAX bytes; a longer one is cut at a character boundary
 *   and ends in "..." inside its quotes.
 *
 * Keys are string literals of [a-z0-9_] (log.h enforces the literal);
 * the encoder checks the character set and replaces a bad key by "badkey".
 */
#ifndef GODWIT_LOGFMT_H
#define GODWIT_LOGFMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum log_field_type {
	LOG_FIELD_END = 0,
	LOG_FIELD_STR,	 /* NUL-terminated string; NULL is written as "" */
	LOG_FIELD_BYTES, /* bytes with a length: may hold NUL */
	LOG_FIELD_INT,
	LOG_FIELD_UINT,
	LOG_FIELD_SKIP,	 /* left out (a field written only sometimes) */
};

struct log_field {
	const char *key;
	enum log_field_type type;
	union {
		const char *s;
		long long i;
		unsigned long long u;
	} v;
	size_t len; /* LOG_FIELD_BYTES */
};

/* A bounded output: writes past cap are dropped and `full` is set. */
struct logfmt_out {
	char *buf;
	size_t len, cap;
	bool full;
};

enum logfmt_format { LOGFMT_KV, LOGFMT_JSON };

/* Longest encoded value (between the quotes); longer ones end in "...". */
#define LOGFMT_VALUE_MAX 1024

/*
 * Appends each field of the LOG_FIELD_END-terminated array: for KV
 * " key=value" each, for JSON ",\"key\":value" each (LOG_FIELD_SKIP
 * fields are left out). A value whose encoding is longer than
 * LOGFMT_VALUE_MAX is cut at a character boundary and gets "..." appended
 * inside the value. Never writes half a field: when a field does not fit
 * in what is left of the output, it and all after it are left out and the
 * function returns false (the caller adds truncated=yes).
 */
bool logfmt_fields(struct logfmt_out *o, enum logfmt_format fmt,
		   const struct log_field *fields);

/* One value, as logfmt_fields would write it (no key). */
void logfmt_value(struct logfmt_out *o, enum logfmt_format fmt,
		  const struct log_field *f);

/*
 * Decoders for tests and fuzzing (the round trip): parse one encoded
 * line of fields back. Calls cb for each key/value with the decoded value
 * bytes (NUL-terminated for convenience, len excludes it). Returns the
 * number of fields, or -1 when the text is not in the format's grammar.
 * The KV decoder takes " k=v k=v"; the JSON decoder one flat object
 * {"k":"v","k":1} (no nesting, as the encoder writes).
 */
typedef void logfmt_field_cb(void *ctx, const char *key, size_t key_len,
			     const unsigned char *value, size_t value_len);
int logfmt_parse_kv(const char *text, size_t len, logfmt_field_cb *cb,
		    void *ctx);
int logfmt_parse_json(const char *text, size_t len, logfmt_field_cb *cb,
		      void *ctx);

#endif
