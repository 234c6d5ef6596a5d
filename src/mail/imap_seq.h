/*
 * IMAP sequence sets (RFC 9051 section 9, sequence-set): "1:4,7,9:*",
 * message sequence numbers or UIDs, with '*' the largest in use, and
 * "$" (SEARCHRES, RFC 5182) left to the caller. Pure.
 */
#ifndef GODWIT_IMAP_SEQ_H
#define GODWIT_IMAP_SEQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct strbuf;

/* lo <= hi once resolved; '*' is IMAP_SEQ_STAR until then */
#define IMAP_SEQ_STAR UINT32_MAX

struct imap_seq_range {
	uint32_t lo, hi;
};

struct imap_seqset {
	struct imap_seq_range *r;
	size_t n;
};

/* Parses s (len octets); 0, or -1 if it is not a sequence set (0 is not
 * a valid number; "4:2" is the same as "2:4"). At most max_ranges
 * ranges. */
int imap_seqset_parse(const char *s, size_t len, size_t max_ranges,
		      struct imap_seqset *set);
/* Whether v is in set, '*' standing for star (the largest in use). */
bool imap_seqset_contains(const struct imap_seqset *set, uint32_t v,
			  uint32_t star);
void imap_seqset_free(struct imap_seqset *set);
/* The ascending numbers v[0..n-1] as a compact set ("1:3,7"), appended
 * to out (COPYUID, APPENDUID, ESEARCH ALL). */
void imap_seqset_format(const uint32_t *v, size_t n, struct strbuf *out);

#endif
