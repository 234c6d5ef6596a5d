/*
 * DKIM canonicalisation (RFC 6376 3.4): header fields simple or relaxed,
 * and the body as a streaming state machine fed in any chunking (the
 * same output however the input is split). Pure: the canonical octets
 * go to a callback (the caller hashes them).
 *
 * Input is the stored form of a message: lines end in LF, and each LF
 * counts as the CRLF it was on the wire (a CR before it is kept as an
 * octet of the line).
 */
#ifndef GODWIT_DKIM_CANON_H
#define GODWIT_DKIM_CANON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mail/dkim_sig.h"

/*
 * One header field (name, colon, value with folding, the final LF
 * optional) canonicalised into out, which needs 2 * len + 2 octets.
 * crlf: end it with CRLF (every field but the DKIM-Signature being
 * verified, RFC 6376 3.7). Returns the length written.
 */
size_t dkim_canon_header(enum dkim_canon_alg c, const char *field,
			 size_t len, bool crlf, char *out);

typedef void dkim_canon_out(void *arg, const void *p, size_t n);

struct dkim_body_canon {
	enum dkim_canon_alg alg;
	bool line_start;	/* nothing of the current line seen yet */
	bool wsp;		/* relaxed: white space pending in the line */
	bool any;		/* a line was output */
	uint64_t empty;		/* empty lines held back (maybe trailing) */
	uint64_t total;		/* canonical octets so far (before l=) */
	uint64_t limit;		/* octets passed to out (l=), UINT64_MAX */
	dkim_canon_out *out;
	void *arg;
	unsigned char buf[2048];
	size_t blen;
};

/* limit: l= (UINT64_MAX: none). */
void dkim_body_canon_init(struct dkim_body_canon *b, enum dkim_canon_alg c,
			  uint64_t limit, dkim_canon_out *out, void *arg);
void dkim_body_canon_update(struct dkim_body_canon *b, const void *p,
			    size_t n);
/* The end of the body: flushes; returns the canonical body's length
 * (all of it, also what l= leaves out). */
uint64_t dkim_body_canon_finish(struct dkim_body_canon *b);

#endif
