/*
 * The user database dump (mail/userdump.h): a strict reader of the small
 * subset of JSON the writer produces (one flat object per line, string
 * and non-negative integer values, null), and the writer.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lib/strbuf.h"
#include "lib/xalloc.h"
#include "mail/userdump.h"

#define MAX_FIELDS 8

struct field {
	char key[16];
	char *s;		/* string value; NULL for a number or null */
	bool is_num, is_null;
	unsigned long num;
};

struct cursor {
	const char *p, *end;
};

static void
skip_ws(struct cursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' ||
				 *c->p == '\r'))
		c->p++;
}

static int
hex4(const char *p, unsigned *v_r)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		char ch = p[i];

		v <<= 4;
		if (ch >= '0' && ch <= '9')
			v |= (unsigned)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			v |= (unsigned)(ch - 'a' + 10);
		else if (ch >= 'A' && ch <= 'F')
			v |= (unsigned)(ch - 'A' + 10);
		else
			return -1;
	}
	*v_r = v;
	return 0;
}

static size_t
put_utf8(char *out, unsigned cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/*
 * A JSON string at c->p (the opening quote). The decoded text is at most
 * as long as the source, so out is sized by it. NUL and control
 * characters are refused, escaped or not: no field may hold them.
 */
static int
parse_string(struct cursor *c, char **s_r, const char **error_r)
{
	const char *p = c->p + 1;
	char *out = xmalloc((size_t)(c->end - c->p) + 1);
	size_t n = 0;
	unsigned cp, lo;

	while (p < c->end && *p != '"') {
		unsigned char ch = (unsigned char)*p;

		if (ch < 0x20 || ch == 0x7f) {
			*error_r = "control character in a string";
			goto fail;
		}
		if (ch != '\\') {
			out[n++] = (char)ch;
			p++;
			continue;
		}
		if (++p >= c->end)
			break;
		switch (*p) {
		case '"': case '\\': case '/':
			out[n++] = *p++;
			continue;
		case 'b': case 'f': case 'n': case 'r': case 't':
			*error_r = "control character in a string";
			goto fail;
		case 'u':
			if (c->end - p < 5 || hex4(p + 1, &cp) < 0) {
				*error_r = "bad \\u escape";
				goto fail;
			}
			p += 5;
			if (cp >= 0xdc00 && cp <= 0xdfff) {
				*error_r = "lone low surrogate";
				goto fail;
			}
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (c->end - p < 6 || p[0] != '\\' ||
				    p[1] != 'u' || hex4(p + 2, &lo) < 0 ||
				    lo < 0xdc00 || lo > 0xdfff) {
					*error_r = "lone high surrogate";
					goto fail;
				}
				p += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) +
				     (lo - 0xdc00);
			}
			if (cp < 0x20 || cp == 0x7f) {
				*error_r = "control character in a string";
				goto fail;
			}
			/* 6 source bytes give at most 4 here, 12 give 4 */
			n += put_utf8(out + n, cp);
			continue;
		default:
			*error_r = "bad escape";
			goto fail;
		}
	}
	if (p >= c->end) {
		*error_r = "unterminated string";
		goto fail;
	}
	out[n] = '\0';
	c->p = p + 1;
	*s_r = out;
	return 0;
fail:
	free(out);
	return -1;
}

static void
fields_free(struct field *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(f[i].s);
}

static int
parse_object(struct cursor *c, struct field *f, size_t *n_r,
	     const char **error_r)
{
	size_t n = 0;
	char *key;

	*n_r = 0;
	memset(f, 0, MAX_FIELDS * sizeof(*f));
	skip_ws(c);
	if (c->p >= c->end || *c->p != '{') {
		*error_r = "not a JSON object";
		return -1;
	}
	c->p++;
	skip_ws(c);
	if (c->p < c->end && *c->p == '}') {
		*error_r = "empty object";
		return -1;
	}
	for (;;) {
		skip_ws(c);
		if (c->p >= c->end || *c->p != '"') {
			*error_r = "expected a key";
			goto fail;
		}
		if (n == MAX_FIELDS) {
			*error_r = "too many keys";
			goto fail;
		}
		if (parse_string(c, &key, error_r) < 0)
			goto fail;
		if (strlen(key) >= sizeof(f[n].key)) {
			free(key);
			*error_r = "unknown key";
			goto fail;
		}
		memcpy(f[n].key, key, strlen(key) + 1);
		free(key);
		for (size_t i = 0; i < n; i++)
			if (strcmp(f[i].key, f[n].key) == 0) {
				*error_r = "repeated key";
				goto fail;
			}
		skip_ws(c);
		if (c->p >= c->end || *c->p != ':') {
			*error_r = "expected ':'";
			goto fail;
		}
		c->p++;
		skip_ws(c);
		if (c->p < c->end && *c->p == '"') {
			if (parse_string(c, &f[n].s, error_r) < 0)
				goto fail;
		} else if (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
			unsigned long v = 0;

			if (*c->p == '0' && c->end - c->p > 1 &&
			    c->p[1] >= '0' && c->p[1] <= '9') {
				*error_r = "leading zero";
				goto fail;
			}
			while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
				if (v > 999999999999UL) {
					*error_r = "number too large";
					goto fail;
				}
				v = v * 10 + (unsigned long)(*c->p++ - '0');
			}
			f[n].is_num = true;
			f[n].num = v;
		} else if (c->end - c->p >= 4 && memcmp(c->p, "null", 4) == 0) {
			c->p += 4;
			f[n].is_null = true;
		} else {
			*error_r = "expected a string, a number or null";
			goto fail;
		}
		n++;
		skip_ws(c);
		if (c->p < c->end && *c->p == ',') {
			c->p++;
			continue;
		}
		if (c->p < c->end && *c->p == '}') {
			c->p++;
			break;
		}
		*error_r = "expected ',' or '}'";
		goto fail;
	}
	skip_ws(c);
	if (c->p != c->end) {
		*error_r = "text after the object";
		goto fail;
	}
	*n_r = n;
	return 0;
fail:
	fields_free(f, MAX_FIELDS);
	return -1;
}

/*
 * The fields a type allows, by name: each must be there once unless
 * optional, and no other key may be.
 */
struct want {
	const char *key;
	bool num, optional;
	size_t off;		/* char * or unsigned long in the record */
};

#define S(k, o) {k, false, false, offsetof(struct userdump_rec, o)}
#define SO(k, o) {k, false, true, offsetof(struct userdump_rec, o)}
#define N(k, o) {k, true, false, offsetof(struct userdump_rec, o)}

static const struct want want_header[] = {N("version", version)};
static const struct want want_domain[] = {S("name", name)};
static const struct want want_user[] = {S("address", address),
					S("hash", hash), SO("scram", scram),
					SO("cram", cram)};
static const struct want want_alias[] = {S("source", source),
					 S("target", target)};
static const struct want want_end[] = {N("domains", domains),
				       N("users", users),
				       N("aliases", aliases)};

static const struct {
	const char *type;
	enum userdump_kind kind;
	const struct want *w;
	size_t nw;
} types[] = {
	{"domain", USERDUMP_DOMAIN, want_domain, 1},
	{"user", USERDUMP_USER, want_user, 4},
	{"alias", USERDUMP_ALIAS, want_alias, 2},
	{"end", USERDUMP_END, want_end, 3},
};

int
userdump_parse_line(const char *line, size_t len, struct userdump_rec *r,
		    const char **error_r)
{
	struct cursor c = {line, line + len};
	struct field f[MAX_FIELDS];
	const struct want *w = NULL;
	size_t n, nw = 0, i, k, seen = 0;
	int type = -1;

	memset(r, 0, sizeof(*r));
	if (len > USERDUMP_MAX_LINE) {
		*error_r = "line too long";
		return -1;
	}
	if (memchr(line, '\0', len) != NULL) {
		*error_r = "NUL in the line";
		return -1;
	}
	if (parse_object(&c, f, &n, error_r) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (strcmp(f[i].key, "format") == 0) {
			if (f[i].s == NULL ||
			    strcmp(f[i].s, USERDUMP_FORMAT) != 0) {
				*error_r = "not a godwit-userdb dump";
				goto fail;
			}
			r->kind = USERDUMP_HEADER;
			w = want_header;
			nw = 1;
			type = (int)i;
		} else if (strcmp(f[i].key, "type") == 0) {
			if (f[i].s == NULL) {
				*error_r = "type: expected a string";
				goto fail;
			}
			for (k = 0; k < sizeof(types) / sizeof(types[0]); k++)
				if (strcmp(f[i].s, types[k].type) == 0)
					break;
			if (k == sizeof(types) / sizeof(types[0])) {
				*error_r = "unknown type";
				goto fail;
			}
			r->kind = types[k].kind;
			w = types[k].w;
			nw = types[k].nw;
			type = (int)i;
		}
	}
	if (type < 0) {
		*error_r = "no type";
		goto fail;
	}
	for (i = 0; i < n; i++) {
		if ((int)i == type)
			continue;
		for (k = 0; k < nw; k++)
			if (strcmp(f[i].key, w[k].key) == 0)
				break;
		if (k == nw) {
			/* "type" in a header, "format" in a record */
			*error_r = strcmp(f[i].key, "type") == 0 ||
						   strcmp(f[i].key, "format") == 0
					   ? "both format and type"
					   : "unknown key";
			goto fail;
		}
		if (w[k].optional && f[i].is_null)
			continue;
		if (w[k].num != f[i].is_num || (!w[k].num && f[i].s == NULL)) {
			*error_r = w[k].num ? "expected a number"
					    : "expected a string";
			goto fail;
		}
		if (w[k].num)
			*(unsigned long *)((char *)r + w[k].off) = f[i].num;
		else {
			if (*f[i].s == '\0') {
				*error_r = "empty value";
				goto fail;
			}
			*(char **)((char *)r + w[k].off) = f[i].s;
			f[i].s = NULL;
		}
		seen |= (size_t)1 << k;
	}
	for (k = 0; k < nw; k++)
		if (!w[k].optional && (seen & ((size_t)1 << k)) == 0) {
			*error_r = "a required key is missing";
			goto fail;
		}
	fields_free(f, n);
	return 0;
fail:
	fields_free(f, n);
	userdump_rec_clear(r);
	return -1;
}

void
userdump_rec_clear(struct userdump_rec *r)
{
	free(r->name);
	free(r->address);
	free(r->hash);
	free(r->scram);
	free(r->cram);
	free(r->source);
	free(r->target);
	memset(r, 0, sizeof(*r));
}

/* ---- writing ------------------------------------------------------------ */

/* Quotes, backslashes and control characters escaped; other bytes as
 * they are (the values are UTF-8 already). */
static void
put_str(struct strbuf *b, const char *s)
{
	strbuf_addc(b, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\') {
			strbuf_addc(b, '\\');
			strbuf_addc(b, (char)*p);
		} else if (*p < 0x20 || *p == 0x7f)
			strbuf_addf(b, "\\u%04x", *p);
		else
			strbuf_addc(b, (char)*p);
	}
	strbuf_addc(b, '"');
}

static void
put_kv(struct strbuf *b, const char *key, const char *s)
{
	strbuf_addf(b, ",\"%s\":", key);
	put_str(b, s);
}

void
userdump_write_header(struct strbuf *b)
{
	strbuf_addf(b, "{\"format\":\"%s\",\"version\":%d}\n",
		    USERDUMP_FORMAT, USERDUMP_VERSION);
}

void
userdump_write_domain(struct strbuf *b, const char *name)
{
	strbuf_addstr(b, "{\"type\":\"domain\"");
	put_kv(b, "name", name);
	strbuf_addstr(b, "}\n");
}

void
userdump_write_user(struct strbuf *b, const char *address, const char *hash,
		    const char *scram, const char *cram)
{
	strbuf_addstr(b, "{\"type\":\"user\"");
	put_kv(b, "address", address);
	put_kv(b, "hash", hash);
	if (scram != NULL)
		put_kv(b, "scram", scram);
	if (cram != NULL)
		put_kv(b, "cram", cram);
	strbuf_addstr(b, "}\n");
}

void
userdump_write_alias(struct strbuf *b, const char *source, const char *target)
{
	strbuf_addstr(b, "{\"type\":\"alias\"");
	put_kv(b, "source", source);
	put_kv(b, "target", target);
	strbuf_addstr(b, "}\n");
}

void
userdump_write_end(struct strbuf *b, unsigned long domains,
		   unsigned long users, unsigned long aliases)
{
	strbuf_addf(b,
		    "{\"type\":\"end\",\"domains\":%lu,\"users\":%lu,"
		    "\"aliases\":%lu}\n",
		    domains, users, aliases);
}
