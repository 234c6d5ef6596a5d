/*
 * libFuzzer target for lib/logfmt.c, the log field encoder. The input is
 * a list of fields chosen by the fuzzer:
 *	byte 0    bit 0: also feed the whole input to both decoders raw
 *	then per field (up to 12):
 *	  1 byte  the type: 0 string (cut at its first NUL), 1 bytes,
 *	          2 signed integer, 3 unsigned integer, 4 skipped field
 *	  2 bytes the length of the value (little-endian, at most 3000)
 *	  n bytes the value (for integers, up to 8 bytes of it)
 * Each list is encoded in both formats and must:
 *	- fit whole in a large output (logfmt_fields returns true);
 *	- hold no raw control byte, DEL, C1 control, U+2028 or U+2029;
 *	- in JSON, be valid UTF-8 (checked here, independently);
 *	- decode back (logfmt_parse_kv / logfmt_parse_json) to the same
 *	  keys and the same value bytes, or, for a value whose encoding is
 *	  longer than LOGFMT_VALUE_MAX, to a prefix of it plus "...", cut
 *	  no earlier than the limit requires.
 * A violation abort()s.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/logfmt.h"

#define MAX_FIELDS 12
#define VALUE_MAX 3000

static void
check(int ok)
{
	if (!ok)
		abort();
}

static const char *const keys[MAX_FIELDS] = {
	"session", "ip", "from", "to", "user", "helo",
	"reason", "event", "a", "b_2", "c3", "result",
};

struct decoded {
	int n;
	char key[MAX_FIELDS][16];
	unsigned char *val[MAX_FIELDS];
	size_t len[MAX_FIELDS];
	int overflow;
};

static void
collect(void *ctx, const char *key, size_t key_len, const unsigned char *v,
	size_t vl)
{
	struct decoded *d = ctx;

	if (d->n >= MAX_FIELDS || key_len >= sizeof(d->key[0])) {
		d->overflow = 1;
		return;
	}
	memcpy(d->key[d->n], key, key_len);
	d->key[d->n][key_len] = '\0';
	d->val[d->n] = malloc(vl + 1);
	memcpy(d->val[d->n], v, vl);
	d->len[d->n] = vl;
	d->n++;
}

static void
decoded_clear(struct decoded *d)
{
	for (int i = 0; i < d->n; i++)
		free(d->val[i]);
	d->n = 0;
}

static void
ignore(void *ctx, const char *key, size_t key_len, const unsigned char *v,
       size_t vl)
{
	(void)ctx;
	(void)key;
	(void)key_len;
	(void)v;
	(void)vl;
}

/* An independent UTF-8 check (RFC 3629): no overlongs, no surrogates. */
static int
valid_utf8(const unsigned char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned c = p[i], cp, need, min;
		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			need = 1, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			need = 2, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			need = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return 0;
		}
		for (unsigned k = 1; k <= need; k++) {
			if (i + k >= n || (p[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += need + 1;
	}
	return 1;
}

/* No raw byte that would end or split a line for any reader. */
static void
check_no_breaks(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		check(p[i] >= 0x20 && p[i] != 0x7f);
		if (p[i] == 0xc2 && i + 1 < n)
			check(p[i + 1] < 0x80 || p[i + 1] > 0x9f);
		if (p[i] == 0xe2 && i + 2 < n && p[i + 1] == 0x80)
			check(p[i + 2] != 0xa8 && p[i + 2] != 0xa9);
	}
}

static void
check_format(enum logfmt_format fmt, const struct log_field *fields,
	     int nfields)
{
	static char buf[MAX_FIELDS * (LOGFMT_VALUE_MAX + 64) + 16];
	struct logfmt_out o = {buf, 0, sizeof(buf) - 2, 0};
	struct decoded d = {0};
	int n, k = 0;

	buf[0] = '\0';
	check(logfmt_fields(&o, fmt, fields));
	check_no_breaks((const unsigned char *)buf, o.len);
	if (fmt == LOGFMT_JSON) {
		check(valid_utf8((const unsigned char *)buf, o.len));
		if (o.len == 0) {
			memcpy(buf, "{}", 3);
			o.len = 2;
		} else {
			buf[0] = '{';
			buf[o.len++] = '}';
			buf[o.len] = '\0';
		}
		n = logfmt_parse_json(buf, o.len, collect, &d);
	} else {
		n = logfmt_parse_kv(buf, o.len, collect, &d);
	}
	check(!d.overflow);
	for (int i = 0; i < nfields; i++) {
		const struct log_field *f = &fields[i];
		char num[32];
		const unsigned char *want;
		size_t wl;

		if (f->type == LOG_FIELD_SKIP)
			continue;
		check(k < d.n);
		check(strcmp(d.key[k], f->key) == 0);
		switch (f->type) {
		case LOG_FIELD_INT:
			snprintf(num, sizeof(num), "%lld", f->v.i);
			want = (const unsigned char *)num;
			wl = strlen(num);
			break;
		case LOG_FIELD_UINT:
			snprintf(num, sizeof(num), "%llu", f->v.u);
			want = (const unsigned char *)num;
			wl = strlen(num);
			break;
		case LOG_FIELD_BYTES:
			want = (const unsigned char *)f->v.s;
			wl = f->len;
			break;
		default:
			want = (const unsigned char *)f->v.s;
			wl = strlen(f->v.s);
			break;
		}
		if (d.len[k] != wl || memcmp(d.val[k], want, wl) != 0) {
			/* only a cut value may differ: a prefix, then "..." */
			static char one[LOGFMT_VALUE_MAX + 64];
			struct logfmt_out v = {one, 0, sizeof(one), 0};
			size_t kept = d.len[k] - 3;

			check(f->type == LOG_FIELD_STR ||
			      f->type == LOG_FIELD_BYTES);
			check(d.len[k] >= 3 && kept < wl);
			check(memcmp(d.val[k], want, kept) == 0);
			check(memcmp(d.val[k] + kept, "...", 3) == 0);
			/* quoted, at most the limit, and cut no earlier than
			 * one more character (at most 12 bytes) requires */
			logfmt_value(&v, fmt, f);
			check(!v.full && v.len >= 2 && one[0] == '"');
			check(v.len - 2 <= LOGFMT_VALUE_MAX);
			check(v.len - 2 + 12 > LOGFMT_VALUE_MAX);
		}
		k++;
	}
	check(n == k && d.n == k);
	decoded_clear(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct log_field fields[MAX_FIELDS + 1];
	char *copies[MAX_FIELDS] = {0};
	size_t i = 1;
	int n = 0;

	if (size == 0)
		return 0;
	if (data[0] & 1) {
		logfmt_parse_kv((const char *)data, size, ignore, NULL);
		logfmt_parse_json((const char *)data, size, ignore, NULL);
	}
	while (n < MAX_FIELDS && i + 3 <= size) {
		unsigned type = data[i] % 5;
		size_t len = (size_t)(data[i + 1] | data[i + 2] << 8) %
			     (VALUE_MAX + 1);
		struct log_field *f = &fields[n];

		i += 3;
		if (len > size - i)
			len = size - i;
		memset(f, 0, sizeof(*f));
		f->key = keys[n];
		switch (type) {
		case 0:
		case 4:
			copies[n] = strndup((const char *)data + i, len);
			f->type = type == 0 ? LOG_FIELD_STR : LOG_FIELD_SKIP;
			f->v.s = copies[n];
			break;
		case 1:
			f->type = LOG_FIELD_BYTES;
			f->v.s = (const char *)data + i;
			f->len = len;
			break;
		default: {
			unsigned long long u = 0;
			for (size_t b = 0; b < len && b < 8; b++)
				u |= (unsigned long long)data[i + b] << (8 * b);
			if (type == 2) {
				f->type = LOG_FIELD_INT;
				f->v.i = (long long)u;
			} else {
				f->type = LOG_FIELD_UINT;
				f->v.u = u;
			}
			break;
		}
		}
		i += len;
		n++;
	}
	memset(&fields[n], 0, sizeof(fields[n]));
	check_format(LOGFMT_KV, fields, n);
	check_format(LOGFMT_JSON, fields, n);
	for (int k = 0; k < n; k++)
		free(copies[k]);
	return 0;
}
