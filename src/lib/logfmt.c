/*
 * The log field encoder and, for the round-trip tests, its decoders.
 * See logfmt.h for the format contract.
 */
#include <stdio.h>
#include <string.h>

#include "lib/logfmt.h"

static void
out_putn(struct logfmt_out *o, const void *p, size_t n)
{
	if (o->full || o->len + n >= o->cap) {
		o->full = true;
		return;
	}
	memcpy(o->buf + o->len, p, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

static void
out_putc(struct logfmt_out *o, char c)
{
	out_putn(o, &c, 1);
}

static void
out_hex(struct logfmt_out *o, const char *prefix, unsigned char c)
{
	static const char hex[] = "0123456789abcdef";
	char b[8];
	size_t n = strlen(prefix);

	memcpy(b, prefix, n);
	b[n++] = hex[c >> 4];
	b[n++] = hex[c & 15];
	out_putn(o, b, n);
}

/*
 * Length of the valid UTF-8 sequence at p (1..4), or 0 when the bytes
 * there are not one (overlong forms, surrogates, > U+10FFFF, cut short).
 * *cp_r gets the code point.
 */
static size_t
utf8_seq(const unsigned char *p, size_t n, unsigned *cp_r)
{
	unsigned c = p[0], cp;
	size_t len, i;

	if (c < 0x80) {
		*cp_r = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*cp_r = cp;
	return len;
}

/* Unicode characters that some line-based readers treat as a line end. */
static bool
is_unicode_break(unsigned cp)
{
	return (cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029;
}

static bool
bare_byte(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("-._:/@+,[]", c) != NULL;
}

static bool
key_ok(const char *k)
{
	if (k == NULL || *k == '\0')
		return false;
	for (; *k != '\0'; k++)
		if (!((*k >= 'a' && *k <= 'z') || (*k >= '0' && *k <= '9') ||
		      *k == '_'))
			return false;
	return true;
}

/* The value cut to LOGFMT_VALUE_MAX at a character boundary. */
static size_t
cut_len(const unsigned char *p, size_t n, bool *cut_r)
{
	size_t i = 0, l;
	unsigned cp;

	*cut_r = false;
	if (n <= LOGFMT_VALUE_MAX)
		return n;
	*cut_r = true;
	while (i < LOGFMT_VALUE_MAX) {
		l = utf8_seq(p + i, n - i, &cp);
		if (l == 0)
			l = 1;
		if (i + l > LOGFMT_VALUE_MAX)
			break;
		i += l;
	}
	return i;
}

static void
kv_string(struct logfmt_out *o, const unsigned char *p, size_t n)
{
	size_t i, l, j;
	bool bare = n > 0, cut;
	unsigned cp;

	n = cut_len(p, n, &cut);
	for (i = 0; i < n && bare; i++)
		bare = bare_byte(p[i]);
	if (bare && !cut) {
		out_putn(o, p, n);
		return;
	}
	out_putc(o, '"');
	for (i = 0; i < n; i += l) {
		unsigned char c = p[i];
		l = utf8_seq(p + i, n - i, &cp);
		if (l == 0) {
			out_hex(o, "\\x", c);
			l = 1;
		} else if (l == 1) {
			if (c == '"' || c == '\\') {
				out_putc(o, '\\');
				out_putc(o, (char)c);
			} else if (c < 0x20 || c == 0x7f) {
				out_hex(o, "\\x", c);
			} else {
				out_putc(o, (char)c);
			}
		} else if (is_unicode_break(cp)) {
			for (j = 0; j < l; j++)
				out_hex(o, "\\x", p[i + j]);
		} else {
			out_putn(o, p + i, l);
		}
	}
	if (cut)
		out_putn(o, "...", 3);
	out_putc(o, '"');
}

static void
json_string(struct logfmt_out *o, const unsigned char *p, size_t n)
{
	size_t i, l, j;
	bool cut;
	unsigned cp;

	n = cut_len(p, n, &cut);
	out_putc(o, '"');
	for (i = 0; i < n; i += l) {
		unsigned char c = p[i];
		l = utf8_seq(p + i, n - i, &cp);
		if (l == 0) {
			out_hex(o, "\\u00", c);
			l = 1;
		} else if (l == 1) {
			if (c == '"' || c == '\\') {
				out_putc(o, '\\');
				out_putc(o, (char)c);
			} else if (c < 0x20 || c == 0x7f) {
				out_hex(o, "\\u00", c);
			} else {
				out_putc(o, (char)c);
			}
		} else if (cp == 0x2028 || cp == 0x2029) {
			out_putn(o, cp == 0x2028 ? "\\u2028" : "\\u2029", 6);
		} else if (is_unicode_break(cp)) {
			/* below U+0100 an escape stands for a byte: escape both */
			for (j = 0; j < l; j++)
				out_hex(o, "\\u00", p[i + j]);
		} else {
			out_putn(o, p + i, l);
		}
	}
	if (cut)
		out_putn(o, "...", 3);
	out_putc(o, '"');
}

void
logfmt_value(struct logfmt_out *o, enum logfmt_format fmt,
	     const struct log_field *f)
{
	char num[32];
	const unsigned char *p;
	size_t n;

	switch (f->type) {
	case LOG_FIELD_INT:
		snprintf(num, sizeof(num), "%lld", f->v.i);
		out_putn(o, num, strlen(num));
		return;
	case LOG_FIELD_UINT:
		snprintf(num, sizeof(num), "%llu", f->v.u);
		out_putn(o, num, strlen(num));
		return;
	case LOG_FIELD_BYTES:
		p = (const unsigned char *)f->v.s;
		n = p != NULL ? f->len : 0;
		break;
	default:
		p = (const unsigned char *)(f->v.s != NULL ? f->v.s : "");
		n = strlen((const char *)p);
		break;
	}
	if (fmt == LOGFMT_JSON)
		json_string(o, p, n);
	else
		kv_string(o, p, n);
}

bool
logfmt_fields(struct logfmt_out *o, enum logfmt_format fmt,
	      const struct log_field *fields)
{
	const struct log_field *f;

	for (f = fields; f->type != LOG_FIELD_END; f++) {
		size_t mark = o->len;
		const char *key = key_ok(f->key) ? f->key : "badkey";

		if (fmt == LOGFMT_JSON) {
			out_putn(o, ",\"", 2);
			out_putn(o, key, strlen(key));
			out_putn(o, "\":", 2);
		} else {
			out_putc(o, ' ');
			out_putn(o, key, strlen(key));
			out_putc(o, '=');
		}
		logfmt_value(o, fmt, f);
		if (o->full) {
			o->len = mark;
			o->buf[mark] = '\0';
			return false;
		}
	}
	return true;
}

/* ---- decoders (tests and fuzzing) ---------------------------------- */

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

#define DEC_MAX (LOGFMT_VALUE_MAX * 4 + 16)

int
logfmt_parse_kv(const char *text, size_t len, logfmt_field_cb *cb, void *ctx)
{
	unsigned char val[DEC_MAX];
	size_t i = 0, k0, kl, vl;
	int count = 0;

	while (i < len) {
		if (text[i] != ' ')
			return -1;
		i++;
		k0 = i;
		while (i < len && text[i] != '=' && text[i] != ' ' &&
		       text[i] != '"')
			i++;
		kl = i - k0;
		if (kl == 0 || i >= len || text[i] != '=')
			return -1;
		i++;
		vl = 0;
		if (i < len && text[i] == '"') {
			i++;
			for (;;) {
				if (i >= len || vl + 1 >= sizeof(val))
					return -1;
				if (text[i] == '"') {
					i++;
					break;
				}
				if (text[i] == '\\') {
					if (i + 1 >= len)
						return -1;
					if (text[i + 1] == '"' ||
					    text[i + 1] == '\\') {
						val[vl++] = (unsigned char)
							text[i + 1];
						i += 2;
					} else if (text[i + 1] == 'x' &&
						   i + 3 < len &&
						   hexval(text[i + 2]) >= 0 &&
						   hexval(text[i + 3]) >= 0) {
						val[vl++] = (unsigned char)(
							hexval(text[i + 2]) *
								16 +
							hexval(text[i + 3]));
						i += 4;
					} else {
						return -1;
					}
					continue;
				}
				if ((unsigned char)text[i] < 0x20 ||
				    text[i] == 0x7f)
					return -1;
				val[vl++] = (unsigned char)text[i++];
			}
			if (i < len && text[i] != ' ')
				return -1;
		} else {
			while (i < len && text[i] != ' ') {
				if (!bare_byte((unsigned char)text[i]) ||
				    vl + 1 >= sizeof(val))
					return -1;
				val[vl++] = (unsigned char)text[i++];
			}
			if (vl == 0)
				return -1;
		}
		val[vl] = '\0';
		cb(ctx, text + k0, kl, val, vl);
		count++;
	}
	return count;
}

/* Appends the UTF-8 form of cp. */
static size_t
utf8_put(unsigned char *p, unsigned cp)
{
	if (cp < 0x80) {
		p[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		p[0] = (unsigned char)(0xc0 | (cp >> 6));
		p[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		p[0] = (unsigned char)(0xe0 | (cp >> 12));
		p[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		p[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	p[0] = (unsigned char)(0xf0 | (cp >> 18));
	p[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
	p[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
	p[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

/* A JSON string at text[*i] (the opening quote) into val; -1 if bad. */
static int
json_str(const char *text, size_t len, size_t *i, unsigned char *val,
	 size_t cap, size_t *vl_r)
{
	size_t p = *i, vl = 0, l;
	unsigned cp;

	if (p >= len || text[p] != '"')
		return -1;
	p++;
	for (;;) {
		if (p >= len || vl + 5 >= cap)
			return -1;
		if (text[p] == '"') {
			p++;
			break;
		}
		if (text[p] == '\\') {
			if (p + 1 >= len)
				return -1;
			char e = text[p + 1];
			if (e == '"' || e == '\\' || e == '/') {
				val[vl++] = (unsigned char)e;
				p += 2;
			} else if (e == 'u' && p + 5 < len) {
				unsigned u = 0;
				for (int k = 2; k < 6; k++) {
					int h = hexval(text[p + k]);
					if (h < 0)
						return -1;
					u = u * 16 + (unsigned)h;
				}
				p += 6;
				if (u < 0x100)
					val[vl++] = (unsigned char)u;
				else if (u >= 0xd800 && u <= 0xdfff)
					return -1;
				else
					vl += utf8_put(val + vl, u);
			} else {
				return -1;
			}
			continue;
		}
		l = utf8_seq((const unsigned char *)text + p, len - p, &cp);
		if (l == 0 || cp < 0x20)
			return -1;
		memcpy(val + vl, text + p, l);
		vl += l;
		p += l;
	}
	val[vl] = '\0';
	*vl_r = vl;
	*i = p;
	return 0;
}

int
logfmt_parse_json(const char *text, size_t len, logfmt_field_cb *cb,
		  void *ctx)
{
	unsigned char key[256], val[DEC_MAX];
	size_t i = 0, kl, vl;
	int count = 0;

	if (len == 0 || text[i++] != '{')
		return -1;
	if (i < len && text[i] == '}')
		return i + 1 == len ? 0 : -1;
	for (;;) {
		if (json_str(text, len, &i, key, sizeof(key), &kl) < 0)
			return -1;
		if (i >= len || text[i++] != ':')
			return -1;
		if (i < len && text[i] == '"') {
			if (json_str(text, len, &i, val, sizeof(val), &vl) < 0)
				return -1;
		} else {
			vl = 0;
			if (i < len && text[i] == '-')
				val[vl++] = (unsigned char)text[i++];
			while (i < len && text[i] >= '0' && text[i] <= '9' &&
			       vl + 1 < sizeof(val))
				val[vl++] = (unsigned char)text[i++];
			if (vl == 0 || (vl == 1 && val[0] == '-'))
				return -1;
			val[vl] = '\0';
		}
		cb(ctx, (const char *)key, kl, val, vl);
		count++;
		if (i >= len)
			return -1;
		if (text[i] == '}')
			return i + 1 == len ? count : -1;
		if (text[i++] != ',')
			return -1;
	}
}
