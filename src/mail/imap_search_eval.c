/*
 * The evaluator of imap_search.h: one message against a search tree.
 * Cheap keys read nothing; the first key that needs the content parses
 * the message's structure (mail/imap_mime.h) and keeps its header (the
 * first IMAP_MIME_HEADER_MAX octets) for the rest of the evaluation.
 * Body text is decoded and converted to UTF-8 as it streams through a
 * window the length of the needle.
 */
#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/strbuf.h"
#include "lib/xalloc.h"
#include "mail/imap_mime.h"
#include "mail/imap_search.h"

struct eval {
	const struct imap_search_ctx *ctx;
	const struct imap_search_msg *msg;
	struct imap_mime *mime;
	struct strbuf hdr;	/* the message's header, raw */
	bool loaded, failed;
};

/* ---- a case-insensitive substring over a stream ------------------ */

/*
 * Case is folded octet by octet, so lengths never change: ASCII, the
 * Latin-1 capitals (U+00C0..U+00DE but U+00D7) and the Cyrillic capitals
 * U+0410..U+041F, each to its small letter. prev is the octet before.
 */
static unsigned char
fold(unsigned char prev, unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return (unsigned char)(c + 0x20);
	if (prev == 0xc3 && c >= 0x80 && c <= 0x9e && c != 0x97)
		return (unsigned char)(c + 0x20);
	if (prev == 0xd0 && c >= 0x90 && c <= 0x9f)
		return (unsigned char)(c + 0x20);
	return c;
}

struct matcher {
	char *needle;		/* folded */
	size_t nlen;
	unsigned char *win;	/* folded */
	size_t wlen;
	unsigned char prev;
	bool found;
};

static bool
contains(const unsigned char *h, size_t hlen, const char *needle,
	 size_t nlen)
{
	if (nlen == 0)
		return true;
	for (size_t i = 0; i + nlen <= hlen; i++)
		if (h[i] == (unsigned char)needle[0] &&
		    memcmp(h + i, needle, nlen) == 0)
			return true;
	return false;
}

static void
feed(struct matcher *m, const char *p, size_t n)
{
	while (n > 0 && !m->found) {
		size_t take = n < 8192 ? n : 8192;

		for (size_t i = 0; i < take; i++) {
			unsigned char c = (unsigned char)p[i];

			m->win[m->wlen++] = fold(m->prev, c);
			m->prev = c;
		}
		p += take;
		n -= take;
		if (contains(m->win, m->wlen, m->needle, m->nlen)) {
			m->found = true;
			return;
		}
		if (m->nlen > 0 && m->wlen >= m->nlen) {
			memmove(m->win, m->win + m->wlen - (m->nlen - 1),
				m->nlen - 1);
			m->wlen = m->nlen - 1;
		} else if (m->nlen == 0)
			m->wlen = 0;
	}
}

/* ---- charset conversion of a stream ----------------------------- */

struct conv {
	iconv_t cd;
	char held[16];
	size_t nheld;
};

static void
conv_open(struct conv *c, const char *charset)
{
	c->nheld = 0;
	c->cd = (iconv_t)-1;
	if (charset != NULL && strcasecmp(charset, "utf-8") != 0 &&
	    strcasecmp(charset, "us-ascii") != 0)
		c->cd = iconv_open("UTF-8", charset);
}

static void
conv_feed(struct conv *c, struct matcher *m, const char *p, size_t n)
{
	char in[8192 + 16], out[4096];
	char *ip = in;
	size_t il;

	if (c->cd == (iconv_t)-1) {
		feed(m, p, n);
		return;
	}
	memcpy(in, c->held, c->nheld);
	memcpy(in + c->nheld, p, n);
	il = c->nheld + n;
	c->nheld = 0;
	while (il > 0 && !m->found) {
		char *op = out;
		size_t ol = sizeof(out);
		size_t rc = iconv(c->cd, &ip, &il, &op, &ol);

		feed(m, out, sizeof(out) - ol);
		if (rc != (size_t)-1 || errno == E2BIG)
			continue;
		if (errno == EINVAL && il < sizeof(c->held)) {
			memcpy(c->held, ip, il);
			c->nheld = il;
			return;
		}
		feed(m, ip, 1);	/* not in the charset: as it is */
		ip++;
		il--;
	}
}

static void
conv_close(struct conv *c)
{
	if (c->cd != (iconv_t)-1)
		iconv_close(c->cd);
}

/* ---- content ---------------------------------------------------- */

int
imap_search_read_header(const struct imap_mime_src *src, struct strbuf *out)
{
	struct imap_mime *mime = NULL;
	uint64_t n;

	strbuf_reset(out);
	if (imap_mime_parse_header_noenv(src, &mime) < 0)
		return -1;
	n = mime->root->body - mime->root->hdr;
	imap_mime_free(&mime);
	if (n > IMAP_MIME_HEADER_MAX)
		n = IMAP_MIME_HEADER_MAX;
	strbuf_grow(out, (size_t)n);
	while (out->len < n) {
		ssize_t k = src->read(src->arg, out->len, out->s + out->len,
				      (size_t)n - out->len);

		if (k < 0)
			return -1;
		if (k == 0)
			break;
		out->len += (size_t)k;
	}
	out->s[out->len] = '\0';
	return 0;
}

static bool
load(struct eval *e)
{
	const struct imap_search_msg *m = e->msg;

	if (e->loaded)
		return !e->failed && (m->src != NULL || m->hdr != NULL);
	e->loaded = true;
	if (m->hdr != NULL) {	/* given: the header keys need no file */
		strbuf_reset(&e->hdr);
		strbuf_add(&e->hdr, m->hdr, m->hdrlen);
		return true;
	}
	if (m->src == NULL)
		return false;
	if (imap_search_read_header(m->src, &e->hdr) < 0) {
		e->failed = true;
		return false;
	}
	return true;
}

struct hdr_match {
	const char *field;	/* NULL: every field */
	struct matcher *m;
	bool seen;
	struct strbuf dec;
};

static bool
hdr_field(void *arg, const char *name, size_t nlen, const char *v,
	  size_t vlen)
{
	struct hdr_match *h = arg;

	if (h->field != NULL && (strlen(h->field) != nlen ||
				 strncasecmp(h->field, name, nlen) != 0))
		return true;
	h->seen = true;
	strbuf_reset(&h->dec);
	imap_mime_decode_words(v, vlen, &h->dec);
	if (h->field == NULL) {
		feed(h->m, name, nlen);
		feed(h->m, ": ", 2);
	}
	feed(h->m, h->dec.s, h->dec.len);
	feed(h->m, "\n", 1);
	return !h->m->found;
}

static void
matcher_init(struct matcher *m, const char *needle)
{
	unsigned char prev = 0;

	m->nlen = strlen(needle);
	m->needle = xmalloc(m->nlen + 1);
	for (size_t i = 0; i <= m->nlen; i++) {
		m->needle[i] = (char)fold(prev, (unsigned char)needle[i]);
		prev = (unsigned char)needle[i];
	}
	m->win = xmalloc(8192 + m->nlen);
	m->wlen = 0;
	m->prev = 0;
	m->found = false;
}

static void
matcher_free(struct matcher *m)
{
	free(m->needle);
	free(m->win);
}

/*
 * Whether the header, its line ends taken out, holds str: without an
 * encoded word ("=?") a field's decoded value is its raw value with the
 * line ends taken out, so if this says no, no field holds str (a quick
 * answer for most messages of a search that uses a header cache).
 */
static unsigned char
lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 0x20) : c;
}

/* An ASCII needle (folded: lower case): a plain scan, CR and LF skipped
 * (fold() is lower() on ASCII and gives no ASCII octet otherwise). */
static bool
ascii_has(const char *h, size_t hl, const char *n, size_t nl)
{
	for (size_t i = 0; i < hl; i++) {
		size_t j = i, k = 0;

		if (lower((unsigned char)h[i]) != (unsigned char)n[0])
			continue;
		while (k < nl && j < hl) {
			if (h[j] == '\r' || h[j] == '\n') {
				j++;
				continue;
			}
			if (lower((unsigned char)h[j]) != (unsigned char)n[k])
				break;
			j++;
			k++;
		}
		if (k == nl)
			return true;
	}
	return false;
}

static bool
is_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

static bool
raw_may_have(const struct eval *e, const char *str)
{
	struct matcher m;
	const char *p = e->hdr.s, *lim = e->hdr.s + e->hdr.len;
	bool found;

	if (memmem(e->hdr.s, e->hdr.len, "=?", 2) != NULL)
		return true;
	if (is_ascii(str)) {
		char n[IMAP_SEARCH_STRING_MAX + 1];
		size_t nl = strlen(str);

		if (nl > IMAP_SEARCH_STRING_MAX)
			return true;
		for (size_t i = 0; i <= nl; i++)
			n[i] = (char)lower((unsigned char)str[i]);
		return ascii_has(e->hdr.s, e->hdr.len, n, nl);
	}
	matcher_init(&m, str);
	while (p < lim && !m.found) {
		const char *q = p;

		while (q < lim && *q != '\r' && *q != '\n')
			q++;
		feed(&m, p, (size_t)(q - p));
		p = q < lim ? q + 1 : q;
	}
	found = m.found;
	matcher_free(&m);
	return found;
}

/* HEADER field str (field NULL: any field, for TEXT). */
static bool
header_has(struct eval *e, const char *field, const char *str)
{
	struct matcher m;
	struct hdr_match h = {field, &m, false, {0}};

	if (field != NULL && str[0] != '\0' && !raw_may_have(e, str))
		return false;
	matcher_init(&m, str);
	imap_mime_fields(e->hdr.s, e->hdr.len, hdr_field, &h);
	strbuf_free(&h.dec);
	matcher_free(&m);
	/* an empty string matches every message that has the field */
	return field != NULL && str[0] == '\0' ? h.seen : m.found;
}

static const char *
param(const struct imap_mime_part *p, const char *name)
{
	for (size_t i = 0; i < p->nparams; i++)
		if (strcasecmp(p->params[i].name, name) == 0)
			return p->params[i].value;
	return NULL;
}

/* A text part's body, decoded and converted, into m. */
static int
part_text(struct eval *e, const struct imap_mime_part *p, struct matcher *m)
{
	struct imap_mime_range r = {p->body, p->end, p->cbody, p->cend,
				    p->cte, true};
	struct imap_mime_stream *st = xmalloc(sizeof(*st));
	struct conv c;
	char buf[8192];
	ssize_t n;

	conv_open(&c, param(p, "charset"));
	imap_mime_stream_init(st, e->msg->src, &r, true, 0, UINT64_MAX);
	while (!m->found &&
	       (n = imap_mime_stream_read(st, buf, sizeof(buf))) > 0)
		conv_feed(&c, m, buf, (size_t)n);
	conv_close(&c);
	n = st->failed ? -1 : 0;
	free(st);
	return (int)n;
}

static int
body_walk(struct eval *e, const struct imap_mime_part *p, struct matcher *m)
{
	for (; p != NULL && !m->found; p = p->next) {
		if (p->multipart || p->message) {
			/* parts, or the encapsulated message */
			if (body_walk(e, p->child, m) < 0)
				return -1;
		} else if (strcasecmp(p->type, "text") == 0 &&
			   part_text(e, p, m) < 0)
			return -1;
	}
	return 0;
}

static int
body_has(struct eval *e, const char *str)
{
	struct matcher m;
	int r;

	if (str[0] == '\0')
		return 1;
	if (e->msg->src == NULL)	/* a header given, no content */
		return 0;
	if (e->mime == NULL) {	/* the whole structure, now */
		if (imap_mime_parse(e->msg->src, &e->mime) < 0) {
			e->failed = true;
			return -1;
		}
	}
	matcher_init(&m, str);
	r = body_walk(e, e->mime->root, &m);
	matcher_free(&m);
	return r < 0 ? -1 : m.found;
}

/* ---- dates ------------------------------------------------------ */

static long
internal_day(time_t t)
{
	struct tm tm;

	if (localtime_r(&t, &tm) == NULL)
		return 0;
	return (tm.tm_year + 1900L) * 10000 + (tm.tm_mon + 1) * 100 +
	    tm.tm_mday;
}

static bool
date_field(void *arg, const char *name, size_t nlen, const char *v,
	   size_t vlen)
{
	long *d = arg;
	const char *p = v, *lim = v + vlen, *comma;
	char buf[32];
	size_t k = 0;

	if (nlen != 4 || strncasecmp(name, "Date", 4) != 0)
		return true;
	if ((comma = memchr(v, ',', vlen)) != NULL)
		p = comma + 1;
	while (p < lim && (*p == ' ' || *p == '\t'))
		p++;
	/* "1 Jul 2003 ..." as "1-Jul-2003" */
	for (int word = 0; p < lim && word < 3 && k < sizeof(buf) - 1; p++) {
		if (*p == ' ' || *p == '\t') {
			while (p + 1 < lim && (p[1] == ' ' || p[1] == '\t'))
				p++;
			if (++word < 3)
				buf[k++] = '-';
			continue;
		}
		buf[k++] = *p;
	}
	*d = imap_search_date(buf, k);
	return false;
}

static long
sent_day(struct eval *e)
{
	long d = -1;

	imap_mime_fields(e->hdr.s, e->hdr.len, date_field, &d);
	return d > 0 ? d : internal_day(e->msg->internaldate);
}

/* ---- the tree --------------------------------------------------- */

static bool
saved_has(const struct imap_search_ctx *ctx, uint32_t uid)
{
	size_t lo = 0, hi = ctx->nsaved;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ctx->saved[mid] == uid)
			return true;
		if (ctx->saved[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static int eval(struct eval *e, const struct imap_search_node *n);

static int
content_key(struct eval *e, const struct imap_search_node *n)
{
	long d;

	if (!load(e))
		return e->failed ? -1 : 0;
	switch (n->type) {
	case IMAP_SK_HEADER:
		return header_has(e, n->field, n->str);
	case IMAP_SK_BODY:
		return body_has(e, n->str);
	case IMAP_SK_TEXT:
		if (n->str[0] == '\0' || header_has(e, NULL, n->str))
			return 1;
		return body_has(e, n->str);
	default:
		d = sent_day(e);
		if (n->type == IMAP_SK_SENTBEFORE)
			return d < n->date;
		if (n->type == IMAP_SK_SENTON)
			return d == n->date;
		return d >= n->date;
	}
}

static int
eval(struct eval *e, const struct imap_search_node *n)
{
	const struct imap_search_msg *m = e->msg;
	int r;

	switch (n->type) {
	case IMAP_SK_ALL:
		return 1;
	case IMAP_SK_AND:
		for (size_t i = 0; i < n->nkids; i++)
			if ((r = eval(e, &n->kids[i])) <= 0)
				return r;
		return 1;
	case IMAP_SK_OR:
		if ((r = eval(e, &n->kids[0])) != 0)
			return r;
		return eval(e, &n->kids[1]);
	case IMAP_SK_NOT:
		return (r = eval(e, &n->kids[0])) < 0 ? r : !r;
	case IMAP_SK_SEQ:
		return imap_seqset_contains(&n->set, m->seq, e->ctx->max_seq);
	case IMAP_SK_UID:
		return imap_seqset_contains(&n->set, m->uid, e->ctx->max_uid);
	case IMAP_SK_SAVED:
		return saved_has(e->ctx, m->uid);
	case IMAP_SK_FLAG:
		return (m->flags & n->flag) != 0;
	case IMAP_SK_KEYWORD:
		return n->keyword >= 0 && n->keyword < 32 &&
		    (m->keywords & (1u << n->keyword)) != 0;
	case IMAP_SK_RECENT:
		return m->recent;
	case IMAP_SK_LARGER:
		return m->size > n->num;
	case IMAP_SK_SMALLER:
		return m->size < n->num;
	case IMAP_SK_BEFORE:
		return internal_day(m->internaldate) < n->date;
	case IMAP_SK_ON:
		return internal_day(m->internaldate) == n->date;
	case IMAP_SK_SINCE:
		return internal_day(m->internaldate) >= n->date;
	default:
		return content_key(e, n);
	}
}

int
imap_search_eval(const struct imap_search_node *tree,
		 const struct imap_search_ctx *ctx,
		 const struct imap_search_msg *msg)
{
	struct eval e = {ctx, msg, NULL, {0}, false, false};
	int r = eval(&e, tree);

	imap_mime_free(&e.mime);
	strbuf_free(&e.hdr);
	return r;
}
