/*
 * DKIM signing (RFC 6376 5, RFC 8463): relaxed/relaxed, sha256, the
 * recommended header set (RFC 6376 5.4.1) with From over-signed, one
 * DKIM-Signature per key, RSA first. The body hash is computed as the
 * body streams; the header hash and the signatures at the end. See
 * dkim.h.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "lib/base64.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"
#include "mail/dkim_canon.h"
#include "msgauth/dkim.h"
#include "msgauth/dkim_private.h"

#define FOLD_AT 78

/* Signed when present, in this order; From once more (over-signed). */
static const char *const signed_fields[] = {
	"from", "reply-to", "subject", "date", "to", "cc", "message-id",
	"in-reply-to", "references", "mime-version", "content-type",
	"content-transfer-encoding",
};

struct dkim_signer {
	time_t now;
	struct dkim_hdrs hdrs;
	bool header_done;
	struct dkim_body_canon bc;
	EVP_MD_CTX *md;
};

static void
md_out(void *arg, const void *p, size_t n)
{
	if (EVP_DigestUpdate(arg, p, n) != 1)
		abort();
}

struct dkim_signer *
dkim_signer_new(time_t now)
{
	struct dkim_signer *s = xcalloc(1, sizeof(*s));

	s->now = now;
	if ((s->md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(s->md, EVP_sha256(), NULL) != 1)
		abort();
	dkim_body_canon_init(&s->bc, DKIM_CANON_RELAXED, UINT64_MAX, md_out,
			     s->md);
	return s;
}

void
dkim_signer_header(struct dkim_signer *s, const char *field, size_t len)
{
	if (!s->header_done)
		dkim_hdrs_add(&s->hdrs, field, len);
}

void
dkim_signer_header_end(struct dkim_signer *s)
{
	s->header_done = true;
}

void
dkim_signer_body(struct dkim_signer *s, const char *p, size_t n)
{
	s->header_done = true;
	dkim_body_canon_update(&s->bc, p, n);
}

/* ---- the field -------------------------------------------------------- */

struct fold {
	struct strbuf b;	/* the field so far */
	size_t col;		/* of its last line */
};

static void
fold_raw(struct fold *f, const char *s, size_t n)
{
	strbuf_add(&f->b, s, n);
	for (size_t i = 0; i < n; i++)
		f->col = s[i] == '\n' ? 0 : f->col + 1;
}

/* A token, after a space or on a new folded line if it does not fit. */
static void
fold_token(struct fold *f, const char *tok, bool space)
{
	size_t n = strlen(tok);

	if (f->col + (space ? 1 : 0) + n > FOLD_AT)
		fold_raw(f, "\n ", 2);
	else if (space)
		fold_raw(f, " ", 1);
	fold_raw(f, tok, n);
}

/* The names h= lists: each present field of the set, as often as it is
 * present, the List-* fields, and one more From. */
static size_t
choose_names(const struct dkim_hdrs *h, char names[][80], size_t max)
{
	size_t n = 0;

	for (size_t k = 0; k < sizeof(signed_fields) / sizeof(*signed_fields);
	     k++)
		for (size_t i = 0; i < h->n && n < max - 1; i++)
			if (dkim_field_name_is(h->f[i], h->len[i],
					       signed_fields[k]))
				snprintf(names[n++], 80, "%s",
					 signed_fields[k]);
	for (size_t i = 0; i < h->n && n < max - 1; i++) {
		const char *c = memchr(h->f[i], ':', h->len[i]);
		size_t nl = c == NULL ? 0 : (size_t)(c - h->f[i]);
		if (nl < 6 || nl >= 80 || strncasecmp(h->f[i], "list-", 5) != 0 ||
		    memchr(h->f[i], ' ', nl) != NULL ||
		    memchr(h->f[i], '\t', nl) != NULL)
			continue;
		for (size_t j = 0; j < nl; j++)
			names[n][j] = (char)tolower((unsigned char)h->f[i][j]);
		names[n++][nl] = '\0';
	}
	snprintf(names[n++], 80, "from");
	return n;
}

/* The field up to and including "b=" (its value empty). */
static void
field_head(struct fold *f, const struct dkim_key *k, time_t now,
	   char names[][80], size_t nnames, const char *bh)
{
	char tok[600];

	fold_raw(f, "DKIM-Signature:", 15);
	fold_token(f, "v=1;", true);
	fold_token(f, k->alg == DKIM_RSA_SHA256 ? "a=rsa-sha256;" :
		   "a=ed25519-sha256;", true);
	fold_token(f, "c=relaxed/relaxed;", true);
	snprintf(tok, sizeof(tok), "d=%s;", k->domain);
	fold_token(f, tok, true);
	snprintf(tok, sizeof(tok), "s=%s;", k->selector);
	fold_token(f, tok, true);
	snprintf(tok, sizeof(tok), "t=%lld;", (long long)now);
	fold_token(f, tok, true);
	for (size_t i = 0; i < nnames; i++) {
		snprintf(tok, sizeof(tok), "%s%.79s%s", i == 0 ? "h=" : "",
			 names[i], i + 1 == nnames ? ";" : ":");
		fold_token(f, tok, i == 0);
	}
	snprintf(tok, sizeof(tok), "bh=%s;", bh);
	fold_token(f, tok, true);
	fold_token(f, "b=", true);
}

/* b=: as many characters as fit on each line. */
static void
fold_b64(struct fold *f, const char *b)
{
	size_t n = strlen(b);

	while (n > 0) {
		size_t room = f->col < FOLD_AT ? FOLD_AT - f->col : 0;
		if (room == 0) {
			fold_raw(f, "\n ", 2);
			continue;
		}
		if (room > n)
			room = n;
		fold_raw(f, b, room);
		b += room;
		n -= room;
	}
	fold_raw(f, "\n", 1);
}

static int
sign_data(const struct dkim_key *k, const char *in, size_t len,
	  unsigned char *sig, size_t *siglen)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char dg[EVP_MAX_MD_SIZE];
	unsigned dlen;
	int ok = 0;

	if (ctx == NULL)
		abort();
	if (k->alg == DKIM_ED25519_SHA256)
		/* RFC 8463: Ed25519 signs the SHA-256 hash */
		ok = EVP_Digest(in, len, dg, &dlen, EVP_sha256(), NULL) == 1 &&
		    EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->pkey) == 1 &&
		    EVP_DigestSign(ctx, sig, siglen, dg, dlen) == 1;
	else
		ok = EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL,
					k->pkey) == 1 &&
		    EVP_DigestSign(ctx, sig, siglen, (const unsigned char *)in,
				   len) == 1;
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -1;
}

/* One DKIM-Signature field for key k, appended to out. */
static int
sign_one(struct dkim_signer *s, const struct dkim_key *k, const char *bh,
	 struct fold *out, char **error_r)
{
	char names[DKIM_SIG_H_MAX][80], *in, *b64;
	unsigned char sig[1024];
	size_t nnames, len, siglen = sizeof(sig);
	const char *hn[DKIM_SIG_H_MAX];
	struct fold f = {0};

	nnames = choose_names(&s->hdrs, names, DKIM_SIG_H_MAX);
	for (size_t i = 0; i < nnames; i++)
		hn[i] = names[i];
	field_head(&f, k, s->now, names, nnames, bh);
	in = dkim_header_input(&s->hdrs, hn, nnames, DKIM_CANON_RELAXED, f.b.s,
			       f.b.len, &len);
	if (EVP_PKEY_get_size(k->pkey) > (int)sizeof(sig) ||
	    sign_data(k, in, len, sig, &siglen) < 0) {
		*error_r = xasprintf("dkim: signing with %s failed", k->path);
		free(in);
		strbuf_free(&f.b);
		return -1;
	}
	free(in);
	b64 = base64_encode_alloc(sig, siglen);
	fold_b64(&f, b64);
	fold_raw(out, f.b.s, f.b.len);
	free(b64);
	strbuf_free(&f.b);
	return 0;
}

char *
dkim_signer_finish(struct dkim_signer *s, const struct dkim_key *const *keys,
		   size_t nkeys, char **error_r)
{
	unsigned char dg[EVP_MAX_MD_SIZE];
	unsigned dlen;
	char *bh;
	struct fold out = {0};

	*error_r = NULL;
	if (nkeys == 0) {
		*error_r = xstrdup("dkim: no key to sign with");
		return NULL;
	}
	dkim_body_canon_finish(&s->bc);
	if (EVP_DigestFinal_ex(s->md, dg, &dlen) != 1)
		abort();
	bh = base64_encode_alloc(dg, dlen);
	/* RSA first: receivers that know only RSA read the first one */
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < nkeys; i++) {
			if ((keys[i]->alg == DKIM_RSA_SHA256) != (pass == 0))
				continue;
			if (sign_one(s, keys[i], bh, &out, error_r) < 0) {
				free(bh);
				strbuf_free(&out.b);
				return NULL;
			}
		}
	free(bh);
	return out.b.s;
}

void
dkim_signer_free(struct dkim_signer **sp)
{
	struct dkim_signer *s = *sp;

	if (s == NULL)
		return;
	EVP_MD_CTX_free(s->md);
	dkim_hdrs_clear(&s->hdrs);
	free(s);
	*sp = NULL;
}

/* The header fields of msg (stored form), then its body. */
char *
dkim_sign_message(const char *msg, size_t len,
		  const struct dkim_key *const *keys, size_t nkeys, time_t now,
		  char **error_r)
{
	struct dkim_signer *s = dkim_signer_new(now);
	size_t pos = 0;
	char *r;

	while (pos < len && msg[pos] != '\n' &&
	       !(msg[pos] == '\r' && pos + 1 < len && msg[pos + 1] == '\n')) {
		size_t start = pos;
		do {	/* the line, then its continuation lines */
			const char *nl = memchr(msg + pos, '\n', len - pos);
			pos = nl == NULL ? len : (size_t)(nl - msg) + 1;
		} while (pos < len && (msg[pos] == ' ' || msg[pos] == '\t'));
		dkim_signer_header(s, msg + start, pos - start);
	}
	dkim_signer_header_end(s);
	if (pos < len)
		pos += msg[pos] == '\r' ? 2 : 1;
	dkim_signer_body(s, msg + pos, len - pos);
	r = dkim_signer_finish(s, keys, nkeys, error_r);
	dkim_signer_free(&s);
	return r;
}
