/*
 * DKIM canonicalisation (RFC 6376 3.4): see dkim_canon.h.
 */
#include <string.h>

#include "mail/dkim_canon.h"

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* simple: the field unchanged but for LF -> CRLF. */
static size_t
header_simple(const char *f, size_t len, bool crlf, char *out)
{
	size_t o = 0;

	if (len > 0 && f[len - 1] == '\n')
		len--;
	for (size_t i = 0; i < len; i++) {
		if (f[i] == '\n' && (i == 0 || f[i - 1] != '\r'))
			out[o++] = '\r';
		out[o++] = f[i];
	}
	if (crlf) {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	return o;
}

/*
 * relaxed (3.4.2): name lower-cased, white space around the colon gone,
 * line ends of folding removed, WSP runs one SP, none at the end.
 */
static size_t
header_relaxed(const char *f, size_t len, bool crlf, char *out)
{
	size_t o = 0, i = 0;
	bool wsp = false, started = false;

	while (i < len && f[i] != ':') {
		char c = f[i++];
		if (is_wsp(c))
			continue;
		out[o++] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
	}
	if (i < len) {
		out[o++] = ':';
		i++;
	}
	for (; i < len; i++) {
		char c = f[i];
		if (c == '\n' || (c == '\r' && i + 1 < len && f[i + 1] == '\n'))
			continue;
		if (is_wsp(c)) {
			wsp = true;
			continue;
		}
		if (wsp && started)
			out[o++] = ' ';
		wsp = false;
		started = true;
		out[o++] = c;
	}
	if (crlf) {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	return o;
}

size_t
dkim_canon_header(enum dkim_canon_alg c, const char *field, size_t len,
		  bool crlf, char *out)
{
	if (c == DKIM_CANON_SIMPLE)
		return header_simple(field, len, crlf, out);
	return header_relaxed(field, len, crlf, out);
}

void
dkim_body_canon_init(struct dkim_body_canon *b, enum dkim_canon_alg c,
		     uint64_t limit, dkim_canon_out *out, void *arg)
{
	memset(b, 0, sizeof(*b));
	b->alg = c;
	b->line_start = true;
	b->limit = limit;
	b->out = out;
	b->arg = arg;
}

static void
flush(struct dkim_body_canon *b)
{
	if (b->blen > 0)
		b->out(b->arg, b->buf, b->blen);
	b->blen = 0;
}

/* One canonical octet: counted, and passed on while within l=. */
static void
put(struct dkim_body_canon *b, char c)
{
	if (b->total++ >= b->limit)
		return;
	if (b->blen == sizeof(b->buf))
		flush(b);
	b->buf[b->blen++] = (unsigned char)c;
}

/* A non-empty line starts: the empty lines held back were not trailing. */
static void
line_begins(struct dkim_body_canon *b)
{
	for (; b->empty > 0; b->empty--) {
		put(b, '\r');
		put(b, '\n');
	}
	b->line_start = false;
	b->any = true;
}

static void
update_simple(struct dkim_body_canon *b, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n') {
			if (b->line_start)
				b->empty++;
			else {
				put(b, '\r');
				put(b, '\n');
				b->line_start = true;
			}
			continue;
		}
		if (b->line_start)
			line_begins(b);
		put(b, p[i]);
	}
}

static void
update_relaxed(struct dkim_body_canon *b, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (c == '\n') {
			b->wsp = false;
			if (b->line_start)
				b->empty++;
			else {
				put(b, '\r');
				put(b, '\n');
				b->line_start = true;
			}
		} else if (is_wsp(c))
			b->wsp = true;
		else {
			if (b->line_start)
				line_begins(b);
			if (b->wsp)
				put(b, ' ');
			b->wsp = false;
			put(b, c);
		}
	}
}

void
dkim_body_canon_update(struct dkim_body_canon *b, const void *p, size_t n)
{
	if (b->alg == DKIM_CANON_SIMPLE)
		update_simple(b, p, n);
	else
		update_relaxed(b, p, n);
}

uint64_t
dkim_body_canon_finish(struct dkim_body_canon *b)
{
	if (!b->line_start) {		/* a last line without its LF */
		put(b, '\r');
		put(b, '\n');
	} else if (!b->any && b->alg == DKIM_CANON_SIMPLE) {
		put(b, '\r');		/* simple: an empty body is CRLF */
		put(b, '\n');
	}
	b->wsp = false;
	b->line_start = true;
	b->empty = 0;
	flush(b);
	return b->total;
}
