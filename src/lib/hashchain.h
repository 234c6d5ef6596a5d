/*
 * A hash-chained line file (the audit log, store/audit.h): every line is
 * one JSON object that begins with the SHA-256 of the line before it,
 *
 *	{"prev":"<64 lower-case hex digits>",...}\n
 *
 * where the hash is taken over the previous line's bytes without its
 * newline. The first line of a chain carries HASHCHAIN_GENESIS (64
 * zeros). Changing, inserting or removing any line breaks the link of
 * the line after it; only the last line (the head) has no successor, so
 * its hash is what gets anchored outside (the log, another store).
 *
 * Pure: bytes in, a verdict out; no I/O. Knows nothing of what the lines
 * say.
 */
#ifndef GODWIT_HASHCHAIN_H
#define GODWIT_HASHCHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HASHCHAIN_HEX_LEN 64
#define HASHCHAIN_GENESIS                                                      \
	"0000000000000000000000000000000000000000000000000000000000000000"
/* What every line begins with, before the hash. */
#define HASHCHAIN_PREFIX "{\"prev\":\""
#define HASHCHAIN_PREFIX_LEN (sizeof(HASHCHAIN_PREFIX) - 1)

/* hex_r: SHA-256 of p[0..n) in lower-case hex, NUL-terminated. */
void hashchain_sha256_hex(const void *p, size_t n,
			  char hex_r[HASHCHAIN_HEX_LEN + 1]);

/* Bytes to hex (2n digits and a NUL into hex_r). */
void hashchain_hex(const unsigned char *p, size_t n, char *hex_r);

/* Whether s is 64 lower-case hex digits (and nothing else). */
bool hashchain_is_hash(const char *s);

/*
 * The "prev" hash of one line (without its newline) into prev_r. -1 with
 * *why_r (a static string) when the line does not have the shape: the
 * prefix, 64 lower-case hex digits, '"', then ',' or '}', and '}' last;
 * no control character anywhere (a line holds no raw newline or NUL).
 */
int hashchain_line_prev(const char *line, size_t len,
			char prev_r[HASHCHAIN_HEX_LEN + 1], const char **why_r);

/* Walking a chain line by line. */
struct hashchain_walk {
	uint64_t lines;			/* lines seen */
	bool any;			/* a line was seen */
	char head[HASHCHAIN_HEX_LEN + 1];	/* hash of the last line */
	char first_prev[HASHCHAIN_HEX_LEN + 1];	/* prev of the first line */
};

void hashchain_walk_init(struct hashchain_walk *w);
/*
 * Takes the next line (without its newline). The first line of the walk
 * may link to anything (older files may have been removed by
 * retention; first_prev says where it starts); every later one must
 * carry the hash of the line before. 0, or -1 with *why_r (static).
 */
int hashchain_walk_line(struct hashchain_walk *w, const char *line,
			size_t len, const char **why_r);

#endif
