/* See strset.h. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "lib/strset.h"
#include "lib/xalloc.h"

static uint64_t
seed(void)
{
	static uint64_t key;
	static bool have;

	if (!have) {
		if (getentropy(&key, sizeof(key)) < 0)
			key = (uint64_t)(uintptr_t)&key;
		have = true;
	}
	return key;
}

/* FNV-1a over the octets, started from the seed, then mixed. */
static uint64_t
hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ seed();

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

/* The slot holding s, or the empty slot where it would go. */
static size_t
find(const char *const *slots, size_t cap, const char *s)
{
	size_t i = (size_t)hash(s) & (cap - 1);

	while (slots[i] != NULL && strcmp(slots[i], s) != 0)
		i = (i + 1) & (cap - 1);
	return i;
}

static void
grow(struct strset *set)
{
	size_t cap = set->cap * 2;
	const char **slots = xcalloc(cap, sizeof(*slots));

	for (size_t i = 0; i < set->cap; i++)
		if (set->slots[i] != NULL)
			slots[find(slots, cap, set->slots[i])] = set->slots[i];
	if (set->slots != set->inline_slots)
		free(set->slots);
	set->slots = slots;
	set->cap = cap;
}

bool
strset_add(struct strset *set, const char *s)
{
	size_t i;

	if (set->cap == 0) {
		set->slots = set->inline_slots;
		set->cap = STRSET_INLINE;
	}
	i = find(set->slots, set->cap, s);
	if (set->slots[i] != NULL)
		return false;
	set->slots[i] = s;
	/* at most three quarters full, so a probe ends soon */
	if (++set->n * 4 > set->cap * 3)
		grow(set);
	return true;
}

bool
strset_contains(const struct strset *set, const char *s)
{
	if (set->cap == 0)
		return false;
	return set->slots[find(set->slots, set->cap, s)] != NULL;
}

void
strset_clear(struct strset *set)
{
	if (set->slots != set->inline_slots)
		free(set->slots);
	memset(set, 0, sizeof(*set));
}
