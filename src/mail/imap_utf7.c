/*
 * Modified UTF-7 (RFC 3501 section 5.1.3) to and from UTF-8: see
 * imap_utf7.h. Printable US-ASCII stands for itself ('&' as "&-"); other
 * characters are UTF-16, base64 with ',' for '/', between '&' and '-'.
 * Control characters (C0, DEL) are refused both ways: no mailbox name
 * holds one, and a NUL would cut a C string.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "lib/strbuf.h"
#include "mail/imap_utf7.h"

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static bool
direct(unsigned char c)
{
	return c >= 0x20 && c <= 0x7e;
}

/* One code point from UTF-8 at *p (strict: no overlongs, surrogates or
 * values past U+10FFFF); -1 if invalid. */
static int32_t
utf8_next(const unsigned char **p, const unsigned char *end)
{
	const unsigned char *s = *p;
	uint32_t c = *s, min;
	size_t n, i;

	if (c < 0x80)
		n = 0, min = 0;
	else if ((c & 0xe0) == 0xc0)
		n = 1, c &= 0x1f, min = 0x80;
	else if ((c & 0xf0) == 0xe0)
		n = 2, c &= 0x0f, min = 0x800;
	else if ((c & 0xf8) == 0xf0)
		n = 3, c &= 0x07, min = 0x10000;
	else
		return -1;
	if ((size_t)(end - s) < n + 1)
		return -1;
	for (i = 1; i <= n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return -1;
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return -1;
	*p = s + n + 1;
	return (int32_t)c;
}

static void
utf8_put(struct strbuf *out, uint32_t c)
{
	char b[4];
	size_t n;

	if (c < 0x80)
		b[0] = (char)c, n = 1;
	else if (c < 0x800) {
		b[0] = (char)(0xc0 | c >> 6);
		b[1] = (char)(0x80 | (c & 0x3f));
		n = 2;
	} else if (c < 0x10000) {
		b[0] = (char)(0xe0 | c >> 12);
		b[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		b[2] = (char)(0x80 | (c & 0x3f));
		n = 3;
	} else {
		b[0] = (char)(0xf0 | c >> 18);
		b[1] = (char)(0x80 | ((c >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((c >> 6) & 0x3f));
		b[3] = (char)(0x80 | (c & 0x3f));
		n = 4;
	}
	strbuf_add(out, b, n);
}

struct b64w {
	uint32_t bits;
	unsigned nbits;
};

static void
b64w_put16(struct strbuf *out, struct b64w *w, uint32_t u)
{
	w->bits = (w->bits << 16) | (u & 0xffff);
	w->nbits += 16;
	while (w->nbits >= 6) {
		w->nbits -= 6;
		strbuf_addc(out, b64[(w->bits >> w->nbits) & 0x3f]);
	}
}

static void
b64w_end(struct strbuf *out, struct b64w *w)
{
	if (w->nbits > 0)
		strbuf_addc(out, b64[(w->bits << (6 - w->nbits)) & 0x3f]);
	strbuf_addc(out, '-');
	w->bits = 0;
	w->nbits = 0;
}

int
imap_utf8_to_utf7(const char *in, size_t len, struct strbuf *out)
{
	const unsigned char *p = (const unsigned char *)in, *end = p + len;
	size_t start = out->len;
	struct b64w w = {0, 0};
	bool shifted = false;
	int32_t c;

	while (p < end) {
		if (direct(*p)) {
			if (shifted)
				b64w_end(out, &w), shifted = false;
			strbuf_add(out, *p == '&' ? "&-" : (const char *)p,
				   *p == '&' ? 2 : 1);
			p++;
			continue;
		}
		if ((c = utf8_next(&p, end)) < 0 || c < 0x20 || c == 0x7f) {
			out->len = start;
			if (out->s != NULL)
				out->s[start] = '\0';
			return -1;
		}
		if (!shifted)
			strbuf_addc(out, '&'), shifted = true;
		if (c >= 0x10000) {
			c -= 0x10000;
			b64w_put16(out, &w, 0xd800 | (uint32_t)c >> 10);
			b64w_put16(out, &w, 0xdc00 | ((uint32_t)c & 0x3ff));
		} else
			b64w_put16(out, &w, (uint32_t)c);
	}
	if (shifted)
		b64w_end(out, &w);
	if (out->s == NULL)
		strbuf_add(out, "", 0);
	return 0;
}

static int
b64_val(unsigned char c)
{
	const char *q = c != '\0' ? strchr(b64, c) : NULL;

	return q != NULL ? (int)(q - b64) : -1;
}

/* The base64 run in[0..n-1] (between '&' and '-') to UTF-8. */
static int
decode_run(const unsigned char *in, size_t n, struct strbuf *out)
{
	uint32_t bits = 0, hi = 0;
	unsigned nbits = 0;
	size_t units = 0;

	for (size_t i = 0; i < n; i++) {
		int v = b64_val(in[i]);
		if (v < 0)
			return -1;
		bits = (bits << 6) | (uint32_t)v;
		nbits += 6;
		if (nbits < 16)
			continue;
		nbits -= 16;
		uint32_t u = (bits >> nbits) & 0xffff;
		units++;
		if (hi != 0) {
			if (u < 0xdc00 || u > 0xdfff)
				return -1;
			utf8_put(out, 0x10000 + ((hi - 0xd800) << 10) +
					  (u - 0xdc00));
			hi = 0;
		} else if (u >= 0xd800 && u <= 0xdbff)
			hi = u;
		else if (u >= 0xdc00 && u <= 0xdfff)
			return -1;
		else if (u < 0x80)
			return -1;	/* printable: written directly; a
					 * control character: no name has one */
		else
			utf8_put(out, u);
	}
	/* leftover bits: fewer than 6 and all zero */
	if (hi != 0 || units == 0 || nbits >= 6 ||
	    (bits & ((1u << nbits) - 1)) != 0)
		return -1;
	return 0;
}

int
imap_utf7_to_utf8(const char *in, size_t len, struct strbuf *out)
{
	const unsigned char *p = (const unsigned char *)in, *end = p + len;
	size_t start = out->len;
	bool after_run = false;

	while (p < end) {
		if (!direct(*p))
			goto bad;
		if (*p != '&') {
			strbuf_addc(out, (char)*p++);
			after_run = false;
			continue;
		}
		const unsigned char *q = memchr(p + 1, '-', (size_t)(end - p - 1));
		if (q == NULL)
			goto bad;
		if (q == p + 1) {
			strbuf_addc(out, '&');
			after_run = false;
		} else {
			/* "&AAA-&AAA-" should have been one run */
			if (after_run || decode_run(p + 1, (size_t)(q - p - 1),
						    out) < 0)
				goto bad;
			after_run = true;
		}
		p = q + 1;
	}
	if (out->s == NULL)
		strbuf_add(out, "", 0);
	return 0;
bad:
	out->len = start;
	if (out->s != NULL)
		out->s[start] = '\0';
	return -1;
}
