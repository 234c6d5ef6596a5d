/*
 * What the DKIM verifier (dkim.c), signer (dkim_sign.c) and keyring
 * (dkim_keys.c) share: the header fields kept for the header hash, and
 * how that hash's input is put together (RFC 6376 3.7, 5.4.2).
 */
#ifndef GODWIT_DKIM_PRIVATE_H
#define GODWIT_DKIM_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

#include "mail/dkim_sig.h"

#define DKIM_HDR_MAX_FIELDS 1000	/* header fields kept per message */
#define DKIM_HDR_MAX_BYTES (512 * 1024)	/* and their octets */

/* Copies of a message's header fields, in order. */
struct dkim_hdrs {
	char **f;
	size_t *len;
	size_t n, cap, bytes;
};

/* Keeps a copy, unless the limits are reached (then it is not signed
 * over: it is as if it were absent). */
void dkim_hdrs_add(struct dkim_hdrs *h, const char *field, size_t len);
void dkim_hdrs_clear(struct dkim_hdrs *h);

/* Whether the field (raw, "Name: value") is called name (any case). */
bool dkim_field_name_is(const char *field, size_t len, const char *name);

/*
 * The octets the header hash covers: for each name in names, the last
 * field of that name not yet taken (bottom-up; a missing one adds
 * nothing), canonicalised with c; then sigfield (the DKIM-Signature
 * with b= emptied, dkim_sig_strip_b()) canonicalised without its final
 * CRLF. A new buffer (caller frees), its length in *len_r.
 */
char *dkim_header_input(const struct dkim_hdrs *h, const char *const *names,
			size_t nnames, enum dkim_canon_alg c,
			const char *sigfield, size_t siglen, size_t *len_r);

#endif
