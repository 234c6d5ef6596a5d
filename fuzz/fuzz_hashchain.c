/*
 * libFuzzer target for lib/hashchain.c, what `godwit audit verify` runs
 * on every line of the audit log (a file anyone with the daemon's rights
 * could have written). The input is split at '\n' into lines and walked.
 * Invariants, abort() on violation:
 *  - hashchain_line_prev returns 0 or -1; -1 comes with a reason; 0 gives
 *    64 lower-case hex digits that are the line's own octets 9..72;
 *  - a walk accepts a line only if its shape is accepted, and after it
 *    the head is the SHA-256 of that line;
 *  - a line rebuilt with the head as its prev is accepted next.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hashchain.h"

static void
one_line(struct hashchain_walk *w, const char *p, size_t n)
{
	char prev[HASHCHAIN_HEX_LEN + 1], h[HASHCHAIN_HEX_LEN + 1];
	const char *why = NULL;
	int shape = hashchain_line_prev(p, n, prev, &why);

	if (shape != 0 && (shape != -1 || why == NULL))
		abort();
	if (shape == 0 && (!hashchain_is_hash(prev) ||
			   memcmp(prev, p + HASHCHAIN_PREFIX_LEN,
				  HASHCHAIN_HEX_LEN) != 0))
		abort();
	why = NULL;
	if (hashchain_walk_line(w, p, n, &why) == 0) {
		if (shape != 0)
			abort();
		hashchain_sha256_hex(p, n, h);
		if (strcmp(h, w->head) != 0)
			abort();
	} else if (why == NULL) {
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hashchain_walk w;
	const char *p = (const char *)data, *end = p + size;

	hashchain_walk_init(&w);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);

		one_line(&w, p, n);
		p += n + 1;
	}
	if (w.any) {
		/* the next line, linked to the head, is taken */
		char line[HASHCHAIN_PREFIX_LEN + HASHCHAIN_HEX_LEN + 8];
		const char *why = NULL;

		memcpy(line, HASHCHAIN_PREFIX, HASHCHAIN_PREFIX_LEN);
		memcpy(line + HASHCHAIN_PREFIX_LEN, w.head, HASHCHAIN_HEX_LEN);
		memcpy(line + HASHCHAIN_PREFIX_LEN + HASHCHAIN_HEX_LEN, "\"}",
		       2);
		if (hashchain_walk_line(&w, line, sizeof(line) - 6, &why) != 0)
			abort();
	}
	return 0;
}
