/*
 * The DKIM-Signature header field (RFC 6376 3.5) and the key record in
 * DNS (RFC 6376 3.6.1, RFC 8463 for Ed25519), parsed from their tag
 * lists (mail/dkim_tags.h). Pure: no I/O; results in fixed-size structs.
 */
#ifndef GODWIT_DKIM_SIG_H
#define GODWIT_DKIM_SIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum dkim_canon_alg { DKIM_CANON_SIMPLE, DKIM_CANON_RELAXED };
enum dkim_hash_alg { DKIM_HASH_SHA256, DKIM_HASH_SHA1 };
enum dkim_key_type { DKIM_KEY_RSA, DKIM_KEY_ED25519 };

#define DKIM_SIG_H_MAX 64	/* names in h= */
#define DKIM_SIG_B_MAX 1024	/* octets of b= (RSA 8192 is 1024) */

struct dkim_sig {
	char algorithm[32];		/* a= as given */
	enum dkim_key_type key_type;
	enum dkim_hash_alg hash;
	unsigned char b[DKIM_SIG_B_MAX];
	size_t b_len;
	char b_prefix[16];		/* first 8 characters of b= */
	unsigned char bh[64];
	size_t bh_len;
	enum dkim_canon_alg hcanon, bcanon;
	char domain[256];		/* d=, lower case */
	char selector[256];		/* s=, lower case */
	char auid[520];			/* i= as given, or "@" d= */
	char auid_domain[256];		/* its domain, lower case */
	char h_buf[2048];		/* the h= names, NUL-separated */
	const char *h[DKIM_SIG_H_MAX];
	size_t nh;
	bool has_l, has_t, has_x;
	uint64_t l, t, x;
};

/*
 * Parses the value of a DKIM-Signature field (after the colon, folding
 * included). 0, or -1 with *error_r a static message. On error, domain,
 * selector, algorithm and b_prefix hold what could be read (else "").
 * rsa-sha1 parses (the verifier decides); an unknown a=, c= or q=, a
 * missing required tag (v a b bh d h s), h= without From, an i= outside
 * d=, and x= before t= are errors.
 */
int dkim_sig_parse(const char *value, size_t len, struct dkim_sig *sig,
		   const char **error_r);

/*
 * The field as the header hash takes it (RFC 6376 3.7): the whole
 * field, its final line end dropped, with the value of b= (and the white
 * space around it) removed. Writes at most len octets to out; returns
 * their number, or -1 if the field has no b= tag or does not parse.
 */
long dkim_sig_strip_b(const char *field, size_t len, char *out);

#define DKIM_KEY_P_MAX 2048	/* octets of p= (RSA 8192 SPKI fits) */

struct dkim_keyrec {
	enum dkim_key_type key_type;	/* k=, default rsa */
	bool allows_sha256, allows_sha1;	/* h=, default both */
	bool revoked;			/* p= empty */
	bool testing;			/* t=y */
	bool strict;			/* t=s: i= domain must be d= */
	unsigned char p[DKIM_KEY_P_MAX];	/* decoded p= */
	size_t p_len;
};

/*
 * Parses a key record (the TXT record's strings joined). Unknown tags
 * and flags are ignored; v= if present must be first and "DKIM1"; an
 * unknown k= and an s= without "*" or "email" are errors. 0, or -1
 * with *error_r a static message.
 */
int dkim_keyrec_parse(const char *txt, size_t len, struct dkim_keyrec *k,
		      const char **error_r);

#endif
