/*
 * The log field encoder and, for the round-trip tests, its decoders.
 * See logfmt.h for the format contract.
 */
#include <stdio.h>
#include <string.h>

#include "lib/util.h"
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

/*
 * Characters written as escapes although they are valid UTF-8: the C1
 * controls (U+0080..U+009F, among them U+0085 NEXT LINE) and U+2028 LINE
 * SEPARATOR and U+2029 PARAGRAPH SEPARATOR, which line-based readers
 * (and JavaScript) may take as the end of a line.
 */
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

/* The longest encoding of one character: two bytes as \u00HH each. */
#define ENC_CHAR_MAX 12

static size_t
put_hex(char *e, const char *prefix, unsigned char c)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = strlen(prefix);

	memcpy(e, prefix, n);
	e[n++] = hex[c >> 4];
	e[n++] = hex[c & 15];
	return n;
}

/*
 * The encoding, inside double quotes, of the character at p (n bytes
 * left) into e; *in_r gets how many input bytes it stands for (a byte
 * that does not start valid UTF-8 is a character of its own).
 */
static size_t
enc_char(enum logfmt_format fmt, const unsigned char *p, size_t n,
	 size_t *in_r, char e[ENC_CHAR_MAX])
{
	const char *esc = fmt == LOGFMT_JSON ? "\\u00" : "\\x";
	size_t l, i, k = 0;
	unsigned cp;

	if ((l = utf8_seq(p, n, &cp)) == 0) {
		*in_r = 1;
		return put_hex(e, esc, p[0]);
	}
	*in_r = l;
	if (l == 1) {
		if (cp == '"' || cp == '\\') {
			e[0] = '\\';
			e[1] = (char)cp;
			return 2;
		}
		if (cp < 0x20 || cp == 0x7f)
			return put_hex(e, esc, p[0]);
		e[0] = (char)cp;
		return 1;
	}
	if (fmt == LOGFMT_JSON && (cp == 0x2028 || cp == 0x2029)) {
		memcpy(e, cp == 0x2028 ? "\\u2028" : "\\u2029", 6);
		return 6;
	}
	if (is_unicode_break(cp)) {
		/* each byte: in JSON an escape below U+0100 is a byte */
		for (i = 0; i < l; i++)
			k += put_hex(e + k, esc, p[i]);
		return k;
	}
	memcpy(e, p, l);
	return l;
}

/*
 * A string value. Its encoded form (between the quotes) is at most
 * LOGFMT_VALUE_MAX bytes: a longer one is cut at a character boundary
 * so that "..." still fits. A cut value is always quoted.
 */
static void
enc_string(struct logfmt_out *o, enum logfmt_format fmt,
	   const unsigned char *p, size_t n)
{
	char e[ENC_CHAR_MAX];
	size_t i, l, el, total = 0, keep = 0, end;
	bool bare = fmt == LOGFMT_KV && n > 0, cut = false;

	for (i = 0; i < n; i += l) {
		el = enc_char(fmt, p + i, n - i, &l, e);
		if (l != 1 || el != 1 || !bare_byte(p[i]))
			bare = false;
		if (total + el <= LOGFMT_VALUE_MAX - 3)
			keep = i + l;
		total += el;
		if (total > LOGFMT_VALUE_MAX) {
			cut = true;
			break;
		}
	}
	end = cut ? keep : n;
	if (bare && !cut) {
		out_putn(o, p, n);
		return;
	}
	out_putc(o, '"');
	for (i = 0; i < end; i += l) {
		el = enc_char(fmt, p + i, end - i, &l, e);
		out_putn(o, e, el);
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
	enc_string(o, fmt, p, n);
}

bool
logfmt_fields(struct logfmt_out *o, enum logfmt_format fmt,
	      const struct log_field *fields)
{
	const struct log_field *f;

	for (f = fields; f->type != LOG_FIELD_END; f++) {
		size_t mark = o->len;

		if (f->type == LOG_FIELD_SKIP)
			continue;

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
						   hex_digit(text[i + 2]) >= 0 &&
						   hex_digit(text[i + 3]) >= 0) {
						val[vl++] = (unsigned char)(
							hex_digit(text[i + 2]) *
								16 +
							hex_digit(text[i + 3]));
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
					int h = hex_digit(text[p + k]);
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
