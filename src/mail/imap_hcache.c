/*
 * The header cache's records (mail/imap_hcache.h): a bounded reader that
 * skips anything that is not a whole, checksummed record, and the
 * writer of one record.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/strbuf.h"
#include "lib/xalloc.h"
#include "mail/imap_hcache.h"

#define MAGIC "GWH1"

static uint32_t
fnv(uint32_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 16777619u;
	}
	return h;
}

static uint32_t
le(const char *p, size_t n)
{
	uint32_t v = 0;

	for (size_t i = n; i > 0; i--)
		v = (v << 8) | (unsigned char)p[i - 1];
	return v;
}

static bool
name_ok(const char *name, size_t nlen)
{
	if (nlen == 0 || nlen > IMAP_HCACHE_NAME_MAX)
		return false;
	for (size_t i = 0; i < nlen; i++)
		if (name[i] == '/' || name[i] == ':' || name[i] == '\0')
			return false;
	return true;
}

size_t
imap_hcache_record_len(size_t nlen, size_t hlen)
{
	return IMAP_HCACHE_REC_HEAD + nlen + hlen;
}

/* The record at p (avail octets), or 0 if there is none whole there. */
static size_t
record_at(const char *p, size_t avail, struct imap_hcache_ent *e)
{
	size_t nlen, hlen;

	if (avail < IMAP_HCACHE_REC_HEAD || memcmp(p, MAGIC, 4) != 0)
		return 0;
	nlen = le(p + 4, 2);
	hlen = le(p + 6, 4);
	if (nlen > IMAP_HCACHE_NAME_MAX || hlen > IMAP_HCACHE_HDR_MAX ||
	    avail - IMAP_HCACHE_REC_HEAD < nlen + hlen)
		return 0;
	if (!name_ok(p + IMAP_HCACHE_REC_HEAD, nlen))
		return 0;
	if (fnv(fnv(2166136261u, p + 4, 6), p + IMAP_HCACHE_REC_HEAD,
		nlen + hlen) != le(p + 10, 4))
		return 0;
	e->name = p + IMAP_HCACHE_REC_HEAD;
	e->nlen = nlen;
	e->hdr = e->name + nlen;
	e->hlen = hlen;
	e->used = false;
	return imap_hcache_record_len(nlen, hlen);
}

static int
cmp_name(const char *a, size_t an, const char *b, size_t bn)
{
	int r = memcmp(a, b, an < bn ? an : bn);

	if (r != 0)
		return r;
	return an < bn ? -1 : an > bn;
}

/* by name, then by position in the file */
static int
cmp_ent(const void *x, const void *y)
{
	const struct imap_hcache_ent *a = x, *b = y;
	int r = cmp_name(a->name, a->nlen, b->name, b->nlen);

	if (r != 0)
		return r;
	return a->name < b->name ? -1 : a->name > b->name;
}

static void
dedup(struct imap_hcache *c)
{
	size_t k = 0;

	if (c->n == 0)
		return;
	qsort(c->v, c->n, sizeof(*c->v), cmp_ent);
	for (size_t i = 0; i < c->n; i++) {
		if (i + 1 < c->n && cmp_name(c->v[i].name, c->v[i].nlen,
					     c->v[i + 1].name,
					     c->v[i + 1].nlen) == 0) {
			c->garbage += imap_hcache_record_len(c->v[i].nlen,
							     c->v[i].hlen);
			continue;	/* a later record of the name */
		}
		c->v[k++] = c->v[i];
	}
	c->n = k;
}

void
imap_hcache_parse(const char *buf, size_t len, struct imap_hcache *c)
{
	size_t off = 0, cap = 0;

	memset(c, 0, sizeof(*c));
	while (off < len) {
		struct imap_hcache_ent e;
		size_t r = record_at(buf + off, len - off, &e);
		const char *next;

		if (r == 0) {	/* resynchronise at the next magic */
			next = memmem(buf + off + 1, len - off - 1, MAGIC, 4);
			r = next != NULL ? (size_t)(next - (buf + off)) :
			    len - off;
			c->garbage += r;
			off += r;
			continue;
		}
		if (c->n == cap) {
			cap = cap ? cap * 2 : 64;
			c->v = xreallocarray(c->v, cap, sizeof(*c->v));
		}
		c->v[c->n++] = e;
		off += r;
	}
	dedup(c);
}

struct imap_hcache_ent *
imap_hcache_find(const struct imap_hcache *c, const char *name, size_t nlen)
{
	size_t lo = 0, hi = c->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = cmp_name(c->v[mid].name, c->v[mid].nlen, name, nlen);

		if (r == 0)
			return &c->v[mid];
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

void
imap_hcache_free(struct imap_hcache *c)
{
	free(c->v);
	memset(c, 0, sizeof(*c));
}

bool
imap_hcache_record(struct strbuf *sb, const char *name, size_t nlen,
		   const char *hdr, size_t hlen)
{
	char head[IMAP_HCACHE_REC_HEAD];
	uint32_t sum;

	if (!name_ok(name, nlen) || hlen > IMAP_HCACHE_HDR_MAX)
		return false;
	memcpy(head, MAGIC, 4);
	for (size_t i = 0; i < 2; i++)
		head[4 + i] = (char)((nlen >> (8 * i)) & 0xff);
	for (size_t i = 0; i < 4; i++)
		head[6 + i] = (char)((hlen >> (8 * i)) & 0xff);
	sum = fnv(fnv(fnv(2166136261u, head + 4, 6), name, nlen), hdr, hlen);
	for (size_t i = 0; i < 4; i++)
		head[10 + i] = (char)((sum >> (8 * i)) & 0xff);
	strbuf_add(sb, head, sizeof(head));
	strbuf_add(sb, name, nlen);
	strbuf_add(sb, hdr, hlen);
	return true;
}

const char *
imap_hcache_basename(const char *entry, size_t *nlen_r)
{
	const char *b = strrchr(entry, '/'), *colon;

	b = b != NULL ? b + 1 : entry;
	colon = strchr(b, ':');
	*nlen_r = colon != NULL ? (size_t)(colon - b) : strlen(b);
	return b;
}
