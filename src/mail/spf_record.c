/*
 * SPF record parser and macro expander (RFC 7208), pure: see
 * mail/spf_record.h. The grammar followed is the ABNF of RFC 7208 12.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "lib/xalloc.h"
#include "mail/spf_record.h"

#define VALUE_MAX 1100		/* longest macro value before transforms */

static bool
is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static bool
is_alnum(int c)
{
	return is_alpha(c) || is_digit(c);
}

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

bool
spf_record_is_spf(const char *txt, size_t len)
{
	return len >= 6 && strncasecmp(txt, "v=spf1", 6) == 0 &&
	       (len == 6 || txt[6] == ' ');
}

/* ---- macros -------------------------------------------------------- */

struct obuf {
	char *p;		/* NULL: syntax check only */
	size_t size, len;
};

static int
put(struct obuf *o, const char *s, size_t n)
{
	if (o->p == NULL)
		return 0;
	if (n >= o->size - o->len)
		return -1;
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
	return 0;
}

struct macro {
	int letter;		/* lower case */
	bool upper;		/* URL-escape the result */
	unsigned digits;	/* 0: all parts */
	bool reverse;
	char delims[8];		/* NUL-terminated; "" means "." */
};

static bool
letter_ok(int c, enum spf_macro_ctx ctx)
{
	if (strchr("slodiphv", c) != NULL)
		return true;
	return strchr("crt", c) != NULL && ctx != SPF_MACRO_DOMAIN;
}

/* Parses "%{...}" at s (s[0] == '%', s[1] == '{'); returns the octets
 * used or -1. */
static long
macro_parse(const char *s, size_t len, enum spf_macro_ctx ctx, struct macro *m,
	    const char **error_r)
{
	size_t i = 2, nd = 0;

	memset(m, 0, sizeof(*m));
	if (i >= len || !is_alpha(s[i]) || !letter_ok(lower(s[i]), ctx)) {
		*error_r = "invalid macro letter";
		return -1;
	}
	m->letter = lower(s[i]);
	m->upper = s[i] >= 'A' && s[i] <= 'Z';
	if (++i < len && is_digit(s[i])) {
		for (; i < len && is_digit(s[i]); i++)
			if (m->digits < 10000)
				m->digits = m->digits * 10 + (unsigned)(s[i] - '0');
		if (m->digits == 0) {
			*error_r = "macro transformer of zero parts";
			return -1;
		}
	}
	if (i < len && lower(s[i]) == 'r') {
		m->reverse = true;
		i++;
	}
	for (; i < len && s[i] != '\0' && strchr(".-+,/_=", s[i]) != NULL; i++)
		if (strchr(m->delims, s[i]) == NULL && nd < 7)
			m->delims[nd++] = s[i];
	if (i >= len || s[i] != '}') {
		*error_r = "unterminated or invalid macro";
		return -1;
	}
	return (long)i + 1;
}

static void
ip_dotted(const struct spf_macro_vars *v, char *buf, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, n = 0;

	if (v->family == AF_INET) {
		snprintf(buf, size, "%u.%u.%u.%u", v->addr[0], v->addr[1],
			 v->addr[2], v->addr[3]);
		return;
	}
	for (i = 0; i < 16 && n + 4 < size; i++) {
		buf[n++] = hex[v->addr[i] >> 4];
		buf[n++] = '.';
		buf[n++] = hex[v->addr[i] & 15];
		buf[n++] = '.';
	}
	buf[n > 0 ? n - 1 : 0] = '\0';
}

static void
ip_text(const struct spf_macro_vars *v, char *buf, size_t size)
{
	if (inet_ntop(v->family == AF_INET ? AF_INET : AF_INET6, v->addr, buf,
		      (socklen_t)size) == NULL)
		snprintf(buf, size, "unknown");
}

static const char *
str_or(const char *s, const char *dflt)
{
	return s != NULL && *s != '\0' ? s : dflt;
}

/* The value of a macro letter, before transformers. */
static int
macro_value(const struct macro *m, const struct spf_macro_vars *v, char *buf,
	    size_t size, const char **error_r)
{
	const char *s = NULL;

	switch (m->letter) {
	case 's': s = str_or(v->sender, ""); break;
	case 'l': s = str_or(v->local, "postmaster"); break;
	case 'o': s = str_or(v->sender_domain, ""); break;
	case 'd': s = str_or(v->domain, ""); break;
	case 'h': s = str_or(v->helo, "unknown"); break;
	case 'r': s = str_or(v->receiver, "unknown"); break;
	case 'v': s = v->family == AF_INET ? "in-addr" : "ip6"; break;
	case 'p':
		if ((s = v->ptr) == NULL) {
			*error_r = "%{p} without a validated name";
			return -1;
		}
		break;
	case 'i': ip_dotted(v, buf, size); return 0;
	case 'c': ip_text(v, buf, size); return 0;
	case 't': snprintf(buf, size, "%" PRId64, v->now); return 0;
	}
	if (s == NULL || strlen(s) >= size) {
		*error_r = "macro value too long";
		return -1;
	}
	memcpy(buf, s, strlen(s) + 1);
	return 0;
}

static int
put_escaped(struct obuf *o, const char *s, size_t n, bool escape)
{
	char hx[4];
	size_t i;

	if (!escape)
		return put(o, s, n);
	for (i = 0; i < n; i++) {
		if (is_alnum(s[i]) || strchr("-._~", s[i]) != NULL) {
			if (put(o, &s[i], 1) < 0)
				return -1;
			continue;
		}
		snprintf(hx, sizeof(hx), "%%%02X", (unsigned char)s[i]);
		if (put(o, hx, 3) < 0)
			return -1;
	}
	return 0;
}

/* Splits, reverses, keeps the right-hand parts and joins with ".". */
static int
macro_transform(const struct macro *m, const char *val, struct obuf *o)
{
	uint16_t off[VALUE_MAX + 1], len[VALUE_MAX + 1];
	const char *delims = m->delims[0] != '\0' ? m->delims : ".";
	size_t n = 0, i, k, first, start = 0, vlen = strlen(val);
	char tmp[VALUE_MAX * 2 + 1];
	struct obuf t = {tmp, sizeof(tmp), 0};

	if (vlen >= VALUE_MAX)
		return -1;
	tmp[0] = '\0';
	for (i = 0; i <= vlen; i++) {
		if (i < vlen && strchr(delims, val[i]) == NULL)
			continue;
		off[n] = (uint16_t)start;
		len[n++] = (uint16_t)(i - start);
		start = i + 1;
	}
	first = m->digits != 0 && m->digits < n ? n - m->digits : 0;
	for (i = first; i < n; i++) {
		k = m->reverse ? n - 1 - i : i;
		if ((i > first && put(&t, ".", 1) < 0) ||
		    put(&t, val + off[k], len[k]) < 0)
			return -1;
	}
	return put_escaped(o, tmp, t.len, m->upper);
}

/*
 * The one scanner behind check and expand: o->p NULL checks only.
 * *tail_r: where the text after the last macro-expand begins.
 */
static int
scan(const char *s, size_t len, enum spf_macro_ctx ctx,
     const struct spf_macro_vars *v, struct obuf *o, bool *uses_p,
     size_t *tail_r, const char **error_r)
{
	char val[VALUE_MAX];
	struct macro m;
	size_t i = 0;
	long n;

	*tail_r = 0;
	while (i < len) {
		unsigned char c = (unsigned char)s[i];

		if (c != '%') {
			if (c < 0x21 || c > 0x7e) {
				if (!(c == ' ' && ctx == SPF_MACRO_EXP)) {
					*error_r = "invalid character";
					return -1;
				}
			}
			if (put(o, &s[i++], 1) < 0)
				goto toolong;
			continue;
		}
		if (i + 1 >= len) {
			*error_r = "lone % at the end";
			return -1;
		}
		switch (s[i + 1]) {
		case '%': n = put(o, "%", 1); break;
		case '_': n = put(o, " ", 1); break;
		case '-': n = put(o, "%20", 3); break;
		case '{': n = 0; break;
		default:
			*error_r = "invalid % escape";
			return -1;
		}
		if (n < 0)
			goto toolong;
		if (s[i + 1] != '{') {
			i += 2;
			*tail_r = i;
			continue;
		}
		if ((n = macro_parse(s + i, len - i, ctx, &m, error_r)) < 0)
			return -1;
		i += (size_t)n;
		*tail_r = i;
		if (m.letter == 'p' && uses_p != NULL)
			*uses_p = true;
		if (o->p == NULL)
			continue;
		if (macro_value(&m, v, val, sizeof(val), error_r) < 0)
			return -1;
		if (macro_transform(&m, val, o) < 0)
			goto toolong;
	}
	return 0;
toolong:
	*error_r = "macro expansion too long";
	return -1;
}

int
spf_macro_check(const char *s, size_t len, enum spf_macro_ctx ctx,
		bool *uses_p_r, const char **error_r)
{
	struct obuf o = {NULL, 0, 0};
	bool uses_p = false;
	size_t tail;
	int r = scan(s, len, ctx, NULL, &o, &uses_p, &tail, error_r);

	if (uses_p_r != NULL)
		*uses_p_r = uses_p;
	return r;
}

int
spf_macro_expand(const char *s, size_t len, const struct spf_macro_vars *v,
		 enum spf_macro_ctx ctx, char *out, size_t size,
		 const char **error_r)
{
	struct obuf o = {out, size > SPF_MACRO_OUT_MAX ? SPF_MACRO_OUT_MAX
						       : size, 0};
	size_t tail;

	if (size == 0) {
		*error_r = "no room";
		return -1;
	}
	out[0] = '\0';
	if (scan(s, len, ctx, v, &o, NULL, &tail, error_r) < 0) {
		out[0] = '\0';
		return -1;
	}
	return 0;
}

void
spf_domain_truncate(char *name)
{
	size_t n = strlen(name);
	char *dot;

	if (n > 0 && name[n - 1] == '.')
		name[--n] = '\0';
	while (n > 253 && (dot = strchr(name, '.')) != NULL) {
		memmove(name, dot + 1, strlen(dot + 1) + 1);
		n = strlen(name);
	}
	if (n > 253)
		name[253] = '\0';
}

/* ---- the record ---------------------------------------------------- */

/* A term made printable for messages, cut to size. */
static void
show(char *buf, size_t size, const char *term, size_t n)
{
	size_t i, k = 0;

	for (i = 0; i < n && k + 1 < size; i++)
		buf[k++] = (term[i] >= 0x20 && term[i] < 0x7f) ? term[i] : '?';
	buf[k] = '\0';
}

static void
set_err(char *error, size_t size, const char *what, const char *term,
	size_t n)
{
	char shown[64];

	show(shown, sizeof(shown), term, n);
	snprintf(error, size, "%s \"%s\"", what, shown);
}

static bool
toplabel_ok(const char *s, size_t n)
{
	size_t i;
	bool alpha = false;

	if (n == 0 || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
		return false;
	for (i = 0; i < n; i++) {
		if (is_alpha(s[i]))
			alpha = true;
		else if (!is_digit(s[i]) && s[i] != '-')
			return false;
	}
	/* all-alphanumeric labels need a letter; with a dash any will do */
	return alpha || memchr(s, '-', n) != NULL;
}

/* domain-spec = macro-string domain-end (RFC 7208 12) */
static bool
domain_spec_ok(const char *s, size_t n)
{
	const char *err, *dot;
	struct obuf o = {NULL, 0, 0};
	size_t tail, tn;

	if (n == 0 || scan(s, n, SPF_MACRO_DOMAIN, NULL, &o, NULL, &tail,
			   &err) < 0)
		return false;
	if (tail == n)
		return true;	/* ends with a macro-expand */
	tn = n - tail;
	if (s[n - 1] == '.')
		tn--;
	dot = NULL;
	for (size_t i = tail; i < tail + tn; i++)
		if (s[i] == '.')
			dot = s + i;
	if (dot == NULL)
		return false;
	return toplabel_ok(dot + 1, (size_t)(s + tail + tn - dot - 1));
}

/* "/N" with N in 0..max, no leading zeros; exactly n octets */
static bool
cidr_ok(const char *s, size_t n, unsigned max, unsigned *v_r)
{
	unsigned v = 0;
	size_t i;

	if (n < 2 || n > 4 || s[0] != '/' || (s[1] == '0' && n > 2))
		return false;
	for (i = 1; i < n; i++) {
		if (!is_digit(s[i]))
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*v_r = v;
	return v <= max;
}

static bool
dual_cidr_ok(const char *s, size_t n, struct spf_term *t)
{
	const char *dd;

	if (n == 0)
		return true;
	if (n >= 2 && s[0] == '/' && s[1] == '/')
		return cidr_ok(s + 1, n - 1, 128, &t->cidr6);
	dd = NULL;
	for (size_t i = 1; i + 1 < n; i++)
		if (s[i] == '/' && s[i + 1] == '/') {
			dd = s + i;
			break;
		}
	if (dd == NULL)
		return cidr_ok(s, n, 32, &t->cidr4);
	return cidr_ok(s, (size_t)(dd - s), 32, &t->cidr4) &&
	       cidr_ok(dd + 1, (size_t)(s + n - dd - 1), 128, &t->cidr6);
}

/*
 * Where a dual-cidr-length at the end of s begins ("/24", "//64",
 * "/24//64"), or n. A domain-spec may hold '/' itself ("a:foo/bar.com"),
 * so only digits at the very end make a CIDR length.
 */
static size_t
cidr_start(const char *s, size_t n)
{
	size_t e = n, k = n;

	while (k > 0 && is_digit(s[k - 1]))
		k--;
	if (k == e || k == 0 || s[k - 1] != '/')
		return n;
	if (k < 2 || s[k - 2] != '/')
		return k - 1;		/* "/N" alone */
	e = k - 2;			/* "//N"; a "/N" before it? */
	k = e;
	while (k > 0 && is_digit(s[k - 1]))
		k--;
	if (k < e && k > 0 && s[k - 1] == '/' && (k < 2 || s[k - 2] != '/'))
		return k - 1;
	return e;
}

static bool
ip_ok(const char *s, size_t n, int family, unsigned max, struct spf_term *t)
{
	char buf[64];
	size_t c = 0;

	while (c < n && s[c] != '/')
		c++;
	if (c == 0 || c >= sizeof(buf))
		return false;
	memcpy(buf, s, c);
	buf[c] = '\0';
	if (inet_pton(family, buf, t->addr) != 1)
		return false;
	if (c == n)
		return true;
	return cidr_ok(s + c, n - c, max, family == AF_INET ? &t->cidr4
							    : &t->cidr6);
}

static const struct {
	const char *name;
	enum spf_mech mech;
} mechs[] = {
	{"all", SPF_M_ALL},	{"include", SPF_M_INCLUDE},
	{"a", SPF_M_A},		{"mx", SPF_M_MX},
	{"ptr", SPF_M_PTR},	{"ip4", SPF_M_IP4},
	{"ip6", SPF_M_IP6},	{"exists", SPF_M_EXISTS},
};

static int
mech_lookup(const char *s, size_t n, enum spf_mech *m)
{
	size_t i;

	for (i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++)
		if (strlen(mechs[i].name) == n &&
		    strncasecmp(mechs[i].name, s, n) == 0) {
			*m = mechs[i].mech;
			return 0;
		}
	return -1;
}

/* The argument of a mechanism: s points after the name. */
static bool
mech_args_ok(struct spf_term *t, const char *s, size_t n)
{
	bool colon = n > 0 && s[0] == ':';
	size_t c;

	switch (t->mech) {
	case SPF_M_ALL:
		return n == 0;
	case SPF_M_INCLUDE:
	case SPF_M_EXISTS:
		if (!colon || !domain_spec_ok(s + 1, n - 1))
			return false;
		t->spec = xstrndup(s + 1, n - 1);
		return true;
	case SPF_M_PTR:
		if (n == 0)
			return true;
		if (!colon || !domain_spec_ok(s + 1, n - 1))
			return false;
		t->spec = xstrndup(s + 1, n - 1);
		return true;
	case SPF_M_A:
	case SPF_M_MX:
		c = colon ? cidr_start(s + 1, n - 1) + 1 : 0;
		if (colon && !domain_spec_ok(s + 1, c - 1))
			return false;
		if (!dual_cidr_ok(s + c, n - c, t))
			return false;
		if (colon)
			t->spec = xstrndup(s + 1, c - 1);
		return true;
	case SPF_M_IP4:
		return colon && ip_ok(s + 1, n - 1, AF_INET, 32, t);
	case SPF_M_IP6:
		return colon && ip_ok(s + 1, n - 1, AF_INET6, 128, t);
	}
	return false;
}

static int
parse_directive(struct spf_record *rec, const char *s, size_t n, char *error,
		size_t errsize)
{
	struct spf_term t;
	const char *q = strchr("+-~?", s[0]);
	size_t i = 0, nl;

	memset(&t, 0, sizeof(t));
	t.cidr4 = 32;
	t.cidr6 = 128;
	t.qual = SPF_Q_PASS;
	if (q != NULL && s[0] != '\0') {
		t.qual = s[0] == '-' ? SPF_Q_FAIL : s[0] == '~' ? SPF_Q_SOFTFAIL
				   : s[0] == '?' ? SPF_Q_NEUTRAL : SPF_Q_PASS;
		i = 1;
	}
	for (nl = 0; i + nl < n && is_alnum(s[i + nl]); nl++)
		;
	if (mech_lookup(s + i, nl, &t.mech) < 0) {
		set_err(error, errsize, "unknown mechanism in", s, n);
		return -1;
	}
	if (!mech_args_ok(&t, s + i + nl, n - i - nl)) {
		set_err(error, errsize, "invalid term", s, n);
		return -1;
	}
	show(t.text, sizeof(t.text), s, n);
	if (t.mech == SPF_M_ALL)
		rec->has_all = true;
	rec->terms = xreallocarray(rec->terms, rec->nterms + 1,
				   sizeof(*rec->terms));
	rec->terms[rec->nterms++] = t;
	return 0;
}

/* A modifier's name length (name "=" ...), or 0 if s is not one. */
static size_t
modifier_name(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || !is_alpha(s[0]))
		return 0;
	for (i = 1; i < n && (is_alnum(s[i]) || strchr("-_.", s[i]) != NULL);
	     i++)
		;
	return i < n && s[i] == '=' ? i : 0;
}

static int
parse_modifier(struct spf_record *rec, const char *s, size_t n, size_t nl,
	       char *error, size_t errsize)
{
	const char *v = s + nl + 1, *err;
	size_t vn = n - nl - 1;
	char **slot = NULL;

	if (nl == 8 && strncasecmp(s, "redirect", 8) == 0)
		slot = &rec->redirect;
	else if (nl == 3 && strncasecmp(s, "exp", 3) == 0)
		slot = &rec->exp;
	if (slot == NULL) {
		if (spf_macro_check(v, vn, SPF_MACRO_ANY, NULL, &err) == 0)
			return 0;
		set_err(error, errsize, "invalid modifier", s, n);
		return -1;
	}
	if (*slot != NULL) {
		set_err(error, errsize, "modifier given twice:", s, nl);
		return -1;
	}
	if (!domain_spec_ok(v, vn)) {
		set_err(error, errsize, "invalid modifier", s, n);
		return -1;
	}
	*slot = xstrndup(v, vn);
	return 0;
}

int
spf_record_parse(const char *txt, size_t len, struct spf_record **rec_r,
		 char *error, size_t errsize)
{
	struct spf_record *rec;
	size_t i, j, nl;
	int r = 0;

	*rec_r = NULL;
	if (len > SPF_RECORD_MAX || memchr(txt, '\0', len) != NULL ||
	    !spf_record_is_spf(txt, len)) {
		snprintf(error, errsize, len > SPF_RECORD_MAX
			 ? "record too long" : "not an SPF record");
		return -1;
	}
	rec = xcalloc(1, sizeof(*rec));
	for (i = 6; i < len && r == 0; i = j) {
		while (i < len && txt[i] == ' ')
			i++;
		for (j = i; j < len && txt[j] != ' '; j++)
			;
		if (j == i)
			break;
		if ((nl = modifier_name(txt + i, j - i)) > 0)
			r = parse_modifier(rec, txt + i, j - i, nl, error,
					   errsize);
		else
			r = parse_directive(rec, txt + i, j - i, error,
					    errsize);
	}
	if (r < 0) {
		spf_record_free(&rec);
		return -1;
	}
	*rec_r = rec;
	return 0;
}

void
spf_record_free(struct spf_record **recp)
{
	struct spf_record *rec = *recp;
	size_t i;

	if (rec == NULL)
		return;
	for (i = 0; i < rec->nterms; i++)
		free(rec->terms[i].spec);
	free(rec->terms);
	free(rec->redirect);
	free(rec->exp);
	free(rec);
	*recp = NULL;
}
