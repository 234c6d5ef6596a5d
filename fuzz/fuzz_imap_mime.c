/*
 * libFuzzer target for mail/imap_mime.h: the input is a stored message
 * (its first two octets pick the read chunk size and a section spec from
 * a small table, so short reads and every section kind are reached). The
 * structure is walked, BODYSTRUCTURE / BODY / ENVELOPE rendered and each
 * section streamed, plain and decoded. Invariants, abort() on violation:
 * every part's offsets are ordered and inside the message, in both forms;
 * the CRLF size is at least the stored size; a streamed range yields
 * exactly its CRLF length (partials: what is left of it, at most len);
 * the decoded size equals what the decoding stream yields; the header
 * alone (imap_mime_parse_header()) gives the same ENVELOPE.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/strbuf.h"
#include "mail/imap_mime.h"

struct mem {
	const uint8_t *p;
	size_t len, chunk;
};

static ssize_t
mem_read(void *arg, uint64_t off, void *buf, size_t n)
{
	struct mem *m = arg;

	if (off >= m->len)
		return 0;
	if (n > m->len - off)
		n = m->len - (size_t)off;
	if (n > m->chunk)
		n = m->chunk;
	memcpy(buf, m->p + off, n);
	return (ssize_t)n;
}

static void
check(bool ok)
{
	if (!ok)
		abort();
}

static void
check_part(const struct imap_mime_part *p, const struct imap_mime *m,
	   uint64_t size)
{
	for (; p != NULL; p = p->next) {
		check(p->hdr <= p->body && p->body <= p->end && p->end <= size);
		check(p->chdr <= p->cbody && p->cbody <= p->cend &&
		      p->cend <= m->csize);
		check(p->chdr >= p->hdr && p->cend - p->cbody >=
		      p->end - p->body);
		check_part(p->child, m, size);
	}
}

static const char *const specs[] = {
	"[]", "[HEADER]", "[TEXT]", "[1]", "[1.MIME]", "[2]", "[1.2]",
	"[2.HEADER]", "[2.TEXT]", "[HEADER.FIELDS (From Subject)]",
	"[HEADER.FIELDS.NOT (Content-Type)]", "[1]<3.10>", "[]<1.5>",
	"[2.1.1]", "[3]", "[1.1]", "[4.2]", "[TEXT]<0.1>",
};

static uint64_t
drain(const struct imap_mime_src *src, const struct imap_mime_range *r,
      bool decode, uint64_t skip, uint64_t limit)
{
	struct imap_mime_stream st;
	char buf[333];
	uint64_t total = 0;
	ssize_t n;

	imap_mime_stream_init(&st, src, r, decode, skip, limit);
	while ((n = imap_mime_stream_read(&st, buf, sizeof(buf))) > 0)
		total += (uint64_t)n;
	check(n == 0);
	return total;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mem mem;
	struct imap_mime_src src = {mem_read, &mem, 0};
	struct imap_mime *m, *h;
	struct imap_section sec;
	struct imap_mime_range r;
	struct strbuf b = {0};
	const char *spec;
	uint64_t want, dsize;

	if (size < 2 || size > 256 * 1024)
		return 0;
	mem.chunk = 1 + data[0] % 64 * 97;
	spec = specs[data[1] % (sizeof(specs) / sizeof(specs[0]))];
	mem.p = data + 2;
	mem.len = size - 2;
	src.size = mem.len;
	check(imap_mime_parse(&src, &m) == 0);
	check(m->csize >= mem.len);
	check_part(m->root, m, mem.len);
	imap_mime_bodystructure(m, true, &b);
	imap_mime_bodystructure(m, false, &b);
	imap_mime_envelope(m, &b);
	/* the header alone gives the same ENVELOPE and header range */
	check(imap_mime_parse_header(&src, &h) == 0);
	check(strcmp(h->root->envelope, m->root->envelope) == 0);
	check(h->root->body == m->root->body);
	imap_mime_free(&h);
	/* ... and without the ENVELOPE, the same header range */
	check(imap_mime_parse_header_noenv(&src, &h) == 0);
	check(h->root->envelope == NULL);
	check(h->root->body == m->root->body);
	check(h->root->cbody == m->root->cbody);
	imap_mime_free(&h);
	check(imap_section_parse(spec, strlen(spec), false, &sec) == 0);
	if (imap_mime_section(m, &sec, &r) == 0) {
		if (sec.kind == IMAP_SEC_FIELDS ||
		    sec.kind == IMAP_SEC_FIELDS_NOT)
			check(imap_mime_header_fields(&src, &r, sec.names,
			    sec.nnames, sec.kind == IMAP_SEC_FIELDS_NOT,
			    &b) == 0);
		want = r.cend - r.coff;
		check(drain(&src, &r, false, 0, UINT64_MAX) == want);
		if (sec.partial) {
			uint64_t left = sec.start < want ? want - sec.start : 0;

			check(drain(&src, &r, false, sec.start, sec.len) ==
			      (left < sec.len ? left : sec.len));
		}
		check(imap_mime_decoded_size(&src, &r, &dsize) == 0);
		check(drain(&src, &r, true, 0, UINT64_MAX) == dsize);
	}
	imap_section_clear(&sec);
	strbuf_reset(&b);
	imap_mime_decode_words((const char *)data, size, &b);
	strbuf_free(&b);
	imap_mime_free(&m);
	return 0;
}
