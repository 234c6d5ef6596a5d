/*
 * IMAP sequence sets (imap_seq.h): "1:4,7,9:*" parsed into ranges, a
 * membership test, and the compact form of a list of numbers. Pure.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/strbuf.h"
#include "lib/xalloc.h"
#include "mail/imap_seq.h"

/* seq-number = nz-number / "*"; *pos moves past it. */
static int
seq_number(const char *s, size_t len, size_t *pos, uint32_t *v_r)
{
	uint64_t v = 0;
	size_t i = *pos;

	if (i < len && s[i] == '*') {
		*v_r = IMAP_SEQ_STAR;
		*pos = i + 1;
		return 0;
	}
	if (i >= len || s[i] < '1' || s[i] > '9')
		return -1;	/* nz-number: no 0, no leading zero */
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
		v = v * 10 + (uint64_t)(s[i] - '0');
		if (v >= IMAP_SEQ_STAR)
			return -1;	/* beyond 2^32 - 2 */
	}
	*v_r = (uint32_t)v;
	*pos = i;
	return 0;
}

int
imap_seqset_parse(const char *s, size_t len, size_t max_ranges,
		  struct imap_seqset *set)
{
	size_t pos = 0, cap = 0;

	set->r = NULL;
	set->n = 0;
	if (len == 0)
		return -1;
	for (;;) {
		struct imap_seq_range r;
		if (seq_number(s, len, &pos, &r.lo) < 0)
			goto fail;
		r.hi = r.lo;
		if (pos < len && s[pos] == ':') {
			pos++;
			if (seq_number(s, len, &pos, &r.hi) < 0)
				goto fail;
		}
		if (r.lo > r.hi) {
			uint32_t t = r.lo;
			r.lo = r.hi;
			r.hi = t;
		}
		if (set->n == max_ranges)
			goto fail;
		if (set->n == cap) {
			cap = cap == 0 ? 4 : cap * 2;
			if (cap > max_ranges)
				cap = max_ranges;
			set->r = xreallocarray(set->r, cap, sizeof(*set->r));
		}
		set->r[set->n++] = r;
		if (pos == len)
			return 0;
		if (s[pos++] != ',')
			goto fail;
	}
fail:
	imap_seqset_free(set);
	return -1;
}

bool
imap_seqset_contains(const struct imap_seqset *set, uint32_t v,
		     uint32_t star)
{
	for (size_t i = 0; i < set->n; i++) {
		uint32_t lo = set->r[i].lo, hi = set->r[i].hi;
		/* '*' is the largest in use: "5:*" with 3 in use is 3:5 */
		if (lo == IMAP_SEQ_STAR)
			lo = star;
		if (hi == IMAP_SEQ_STAR)
			hi = star;
		if (lo > hi) {
			uint32_t t = lo;
			lo = hi;
			hi = t;
		}
		if (v >= lo && v <= hi)
			return true;
	}
	return false;
}

void
imap_seqset_free(struct imap_seqset *set)
{
	free(set->r);
	set->r = NULL;
	set->n = 0;
}

void
imap_seqset_format(const uint32_t *v, size_t n, struct strbuf *out)
{
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j + 1 < n && v[j + 1] == v[j] + 1)
			j++;
		if (i > 0)
			strbuf_addc(out, ',');
		if (j > i)
			strbuf_addf(out, "%u:%u", v[i], v[j]);
		else
			strbuf_addf(out, "%u", v[i]);
		i = j + 1;
	}
}
