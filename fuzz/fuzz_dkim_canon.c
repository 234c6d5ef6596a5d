/*
 * Fuzz DKIM body canonicalisation for chunking invariance: the input's
 * first octets choose split points (and l=); the rest is the body, fed
 * whole and then in the chosen pieces, simple and relaxed. The SHA-256
 * of the output and the canonical length must be the same either way,
 * the output never longer than l=; the header canonicalisers are run
 * on the body as a field too (output within 2 * len + 2).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "mail/dkim_canon.h"

struct hash {
	EVP_MD_CTX *md;
	uint64_t n;
};

static void
out(void *arg, const void *p, size_t n)
{
	struct hash *h = arg;

	h->n += n;
	if (EVP_DigestUpdate(h->md, p, n) != 1)
		abort();
}

static uint64_t
run(enum dkim_canon_alg c, const uint8_t *body, size_t len,
    const uint8_t *cuts, size_t ncuts, uint64_t limit, unsigned char *dg)
{
	struct dkim_body_canon b;
	struct hash h = {EVP_MD_CTX_new(), 0};
	size_t pos = 0, k = 0;
	uint64_t total;
	unsigned dlen;

	if (h.md == NULL || EVP_DigestInit_ex(h.md, EVP_sha256(), NULL) != 1)
		abort();
	dkim_body_canon_init(&b, c, limit, out, &h);
	while (pos < len) {
		size_t step = ncuts == 0 ? len - pos : (size_t)cuts[k++ % ncuts];
		if (step == 0 || step > len - pos)
			step = len - pos;
		dkim_body_canon_update(&b, body + pos, step);
		pos += step;
	}
	total = dkim_body_canon_finish(&b);
	if (h.n > limit || (limit == UINT64_MAX && h.n != total))
		abort();
	EVP_DigestFinal_ex(h.md, dg, &dlen);
	EVP_MD_CTX_free(h.md);
	return total;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char a[32], b[32];
	size_t ncuts;
	uint64_t limit;
	char *hdr;

	if (size < 2)
		return 0;
	ncuts = data[0] % 16;
	limit = data[1] < 128 ? UINT64_MAX : data[1] - 128u;
	if (size < 2 + ncuts)
		return 0;
	const uint8_t *cuts = data + 2, *body = data + 2 + ncuts;
	size_t len = size - 2 - ncuts;
	for (int c = 0; c < 2; c++) {
		enum dkim_canon_alg alg = c ? DKIM_CANON_RELAXED :
		    DKIM_CANON_SIMPLE;
		if (run(alg, body, len, NULL, 0, limit, a) !=
		    run(alg, body, len, cuts, ncuts, limit, b) ||
		    memcmp(a, b, sizeof(a)) != 0)
			abort();
	}
	hdr = malloc(2 * len + 2);
	for (int c = 0; c < 2; c++)
		if (dkim_canon_header(c ? DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE,
				      (const char *)body, len, c == 1, hdr) >
		    2 * len + 2)
			abort();
	free(hdr);
	return 0;
}
