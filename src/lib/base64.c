/*
 * Strict base64, encode and decode (see base64.h). The character mapping
 * is arithmetic on masks rather than a table so that secrets do not
 * choose which cache lines are touched.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>

#include "lib/base64.h"
#include "lib/xalloc.h"

/*
 * All-ones if a < b, else zero. Both arguments are below 2^31, so the
 * unsigned difference has its top bit set exactly when a < b.
 */
static uint32_t
mask_lt(uint32_t a, uint32_t b)
{
	return 0U - ((a - b) >> 31);
}

/* All-ones if lo <= a <= hi. */
static uint32_t
mask_in(uint32_t a, uint32_t lo, uint32_t hi)
{
	return ~mask_lt(a, lo) & mask_lt(a, hi + 1);
}

/* The character for a 6-bit value. */
static char
enc_char(uint32_t x)
{
	uint32_t c;

	c = (mask_lt(x, 26) & (x + 'A')) |
	    (mask_in(x, 26, 51) & (x - 26 + 'a')) |
	    (mask_in(x, 52, 61) & (x - 52 + '0')) |
	    (mask_in(x, 62, 62) & '+') | (mask_in(x, 63, 63) & '/');
	return (char)c;
}

/*
 * The 6-bit value of a character, or a value with bit 8 set if the
 * character is not in the alphabet ('=' included: padding is handled by
 * the caller).
 */
static uint32_t
dec_char(unsigned char ch)
{
	uint32_t c = ch, m, v = 0, valid = 0;

	m = mask_in(c, 'A', 'Z');
	v |= m & (c - 'A');
	valid |= m;
	m = mask_in(c, 'a', 'z');
	v |= m & (c - 'a' + 26);
	valid |= m;
	m = mask_in(c, '0', '9');
	v |= m & (c - '0' + 52);
	valid |= m;
	m = mask_in(c, '+', '+');
	v |= m & 62;
	valid |= m;
	m = mask_in(c, '/', '/');
	v |= m & 63;
	valid |= m;
	return (v & 0x3f) | (~valid & 0x100);
}

size_t
base64_encoded_len(size_t n)
{
	size_t groups = n / 3 + (n % 3 != 0);

	if (groups > SIZE_MAX / 4)
		return SIZE_MAX;
	return groups * 4;
}

size_t
base64_decoded_max(size_t len)
{
	return len / 4 * 3;
}

ssize_t
base64_encode(const void *src, size_t n, char *dst, size_t size)
{
	const unsigned char *s = src;
	size_t need = base64_encoded_len(n), i, o = 0;
	uint32_t w;

	if (need >= SIZE_MAX || need + 1 > size || need > SSIZE_MAX)
		return -1;
	for (i = 0; i + 3 <= n; i += 3) {
		w = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
		dst[o++] = enc_char(w >> 18);
		dst[o++] = enc_char((w >> 12) & 0x3f);
		dst[o++] = enc_char((w >> 6) & 0x3f);
		dst[o++] = enc_char(w & 0x3f);
	}
	if (n - i == 1) {
		w = (uint32_t)s[i] << 16;
		dst[o++] = enc_char(w >> 18);
		dst[o++] = enc_char((w >> 12) & 0x3f);
		dst[o++] = '=';
		dst[o++] = '=';
	} else if (n - i == 2) {
		w = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
		dst[o++] = enc_char(w >> 18);
		dst[o++] = enc_char((w >> 12) & 0x3f);
		dst[o++] = enc_char((w >> 6) & 0x3f);
		dst[o++] = '=';
	}
	dst[o] = '\0';
	return (ssize_t)o;
}

char *
base64_encode_alloc(const void *src, size_t n)
{
	size_t need = base64_encoded_len(n);
	char *p;

	if (need >= SIZE_MAX)
		abort();	/* no caller has anything near this size */
	p = xmalloc(need + 1);
	if (base64_encode(src, n, p, need + 1) < 0)
		abort();
	return p;
}

ssize_t
base64_decode(const char *src, size_t len, void *dst, size_t size)
{
	const unsigned char *s = (const unsigned char *)src;
	unsigned char *d = dst;
	size_t pad = 0, out, full, i, o = 0;
	uint32_t a, b, c, e, bad = 0;

	if (len % 4 != 0 || len / 4 * 3 > SSIZE_MAX)
		return -1;
	if (len == 0)
		return 0;
	if (s[len - 1] == '=') {
		pad++;
		if (s[len - 2] == '=')
			pad++;
	}
	out = len / 4 * 3 - pad;
	if (out > size)
		return -1;

	/* every group but a padded last one */
	full = pad != 0 ? len - 4 : len;
	for (i = 0; i < full; i += 4) {
		a = dec_char(s[i]);
		b = dec_char(s[i + 1]);
		c = dec_char(s[i + 2]);
		e = dec_char(s[i + 3]);
		bad |= a | b | c | e;
		d[o++] = (unsigned char)(a << 2 | (b & 0x3f) >> 4);
		d[o++] = (unsigned char)(b << 4 | (c & 0x3f) >> 2);
		d[o++] = (unsigned char)(c << 6 | (e & 0x3f));
	}
	if (pad == 2) {
		/*
		 * "xx==": one byte; the 4 bits left over must be zero.
		 * (x + 0xff) has bit 8 set exactly when x, below 16, is not 0.
		 */
		a = dec_char(s[i]);
		b = dec_char(s[i + 1]);
		bad |= a | b | (((b & 0x0f) + 0xff) & 0x100);
		d[o++] = (unsigned char)(a << 2 | (b & 0x3f) >> 4);
	} else if (pad == 1) {
		/* "xxx=": two bytes; the 2 bits left over must be zero */
		a = dec_char(s[i]);
		b = dec_char(s[i + 1]);
		c = dec_char(s[i + 2]);
		bad |= a | b | c | (((c & 0x03) + 0xff) & 0x100);
		d[o++] = (unsigned char)(a << 2 | (b & 0x3f) >> 4);
		d[o++] = (unsigned char)(b << 4 | (c & 0x3f) >> 2);
	}
	if (bad & 0x100)
		return -1;
	return (ssize_t)o;
}
