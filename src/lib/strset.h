/*
 * A set of strings for "have we seen this one?" in O(1): open addressing
 * over a power-of-two table of pointers, keyed by a hash with a random
 * per-process seed (the strings are a client's, so collisions cannot be
 * chosen in advance). The set does not copy: a string added must outlive
 * the set (or the next strset_clear()). The first 12 strings need no
 * allocation (the table starts inside the struct, which therefore must
 * not be copied or moved once used).
 */
#ifndef GODWIT_STRSET_H
#define GODWIT_STRSET_H

#include <stdbool.h>
#include <stddef.h>

#define STRSET_INLINE 16

struct strset {
	const char **slots;	/* inline, or allocated once it grows */
	size_t cap;		/* a power of two; 0: empty, never used */
	size_t n;
	const char *inline_slots[STRSET_INLINE];
};

/* Adds s unless an equal string is in the set: true if it was added. */
bool strset_add(struct strset *set, const char *s);
bool strset_contains(const struct strset *set, const char *s);
/* Empties the set and frees what it allocated (a zeroed set is empty). */
void strset_clear(struct strset *set);

#endif
