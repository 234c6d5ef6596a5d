/*
 * libFuzzer target for mail/imap_hcache.c, the reader of a folder's
 * godwit-cache file (untrusted: it lies in the user's Maildir). The input
 * is parsed as a cache file. Invariants (abort() on violation): every
 * entry lies inside the input and is within bounds; the entries are
 * sorted, one per name, and each is found by its name; writing the
 * entries out again and parsing that gives the same entries and no
 * garbage.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/strbuf.h"
#include "mail/imap_hcache.h"

static void
check(int ok)
{
	if (!ok)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size ? size : 1);
	struct imap_hcache c, d;
	struct strbuf out = {0};

	if (in == NULL)
		return 0;
	memcpy(in, data, size);
	imap_hcache_parse(in, size, &c);
	for (size_t i = 0; i < c.n; i++) {
		const struct imap_hcache_ent *e = &c.v[i];

		check(e->name >= in && e->hdr + e->hlen <= in + size);
		check(e->nlen > 0 && e->nlen <= IMAP_HCACHE_NAME_MAX);
		check(e->hlen <= IMAP_HCACHE_HDR_MAX);
		check(imap_hcache_find(&c, e->name, e->nlen) == e);
		check(imap_hcache_record(&out, e->name, e->nlen, e->hdr,
					 e->hlen));
	}
	imap_hcache_parse(out.s != NULL ? out.s : "", out.len, &d);
	check(d.n == c.n && d.garbage == 0);
	for (size_t i = 0; i < c.n; i++)
		check(d.v[i].nlen == c.v[i].nlen && d.v[i].hlen == c.v[i].hlen &&
		      memcmp(d.v[i].name, c.v[i].name, c.v[i].nlen) == 0 &&
		      memcmp(d.v[i].hdr, c.v[i].hdr, c.v[i].hlen) == 0);
	imap_hcache_free(&d);
	imap_hcache_free(&c);
	strbuf_free(&out);
	free(in);
	return 0;
}
