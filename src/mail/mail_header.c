/*
 * RFC 5322 header sections and address lists, parsed without I/O (see
 * mail_header.h).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"
#include "lib/base64.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"
#include "mail/mail_header.h"

/* ---- header fields ---------------------------------------------------- */

void
mail_header_iter_init(struct mail_header_iter *it, const void *header,
		      size_t len)
{
	memset(it, 0, sizeof(*it));
	it->p = header;
	it->len = len;
	it->line = 1;
}

/*
 * Scans the line at pos: *content_end_r is where its text ends (before CR
 * LF or LF), *next_r where the next line starts. -1 on NUL or bare CR.
 */
static int
scan_line(const char *p, size_t len, size_t pos, size_t *content_end_r,
	  size_t *next_r, const char **error_r)
{
	size_t i = pos;

	while (i < len && p[i] != '\n') {
		if (p[i] == '\0') {
			*error_r = "NUL octet in the header section";
			return -1;
		}
		if (p[i] == '\r' && (i + 1 >= len || p[i + 1] != '\n')) {
			*error_r = "bare CR in the header section";
			return -1;
		}
		i++;
	}
	*content_end_r = i > pos && p[i - 1] == '\r' ? i - 1 : i;
	*next_r = i < len ? i + 1 : len;
	return 0;
}

/* RFC 5322 2.2: ftext is %d33-57 / %d59-126 */
static bool
is_ftext(unsigned char c)
{
	return c >= 33 && c <= 126 && c != ':';
}

int
mail_header_next(struct mail_header_iter *it, struct mail_header_field *f_r,
		 const char **error_r)
{
	const char *p = it->p;
	size_t end, next, n, line = it->line;

	if (it->error != NULL) {
		*error_r = it->error;
		return -1;
	}
	if (it->done || it->pos >= it->len) {
		it->done = true;
		return 0;
	}
	if (scan_line(p, it->len, it->pos, &end, &next, &it->error) < 0)
		goto fail;
	if (end == it->pos) {		/* the empty line */
		it->done = true;
		return 0;
	}
	if (p[it->pos] == ' ' || p[it->pos] == '\t') {
		it->error = "a continuation line without a field before it";
		goto fail;
	}
	for (n = it->pos; n < end && is_ftext((unsigned char)p[n]); n++)
		;
	f_r->name = p + it->pos;
	f_r->name_len = n - it->pos;
	/* RFC 5322 4.5: obs-optional = field-name *WSP ":" */
	while (n < end && (p[n] == ' ' || p[n] == '\t'))
		n++;
	if (f_r->name_len == 0 || n >= end || p[n] != ':') {
		it->error = "a line that is not a header field";
		goto fail;
	}
	f_r->value = p + n + 1;
	f_r->line = line;
	/* continuation lines: those that start with white space */
	while (next < it->len && (p[next] == ' ' || p[next] == '\t')) {
		line++;
		if (scan_line(p, it->len, next, &end, &next, &it->error) < 0)
			goto fail;
	}
	f_r->value_len = (size_t)(p + end - f_r->value);
	it->pos = next;
	it->line = line + 1;
	return 1;
fail:
	it->line = line;
	*error_r = it->error;
	return -1;
}

bool
mail_header_name_is(const struct mail_header_field *f, const char *name)
{
	return strlen(name) == f->name_len &&
	       strncasecmp(f->name, name, f->name_len) == 0;
}

char *
mail_header_unfold(const struct mail_header_field *f)
{
	char *v = xmalloc(f->value_len + 1);
	size_t o = 0;

	/* inside a field every line end is followed by white space, and
	 * mail_header_next() refused bare CRs: dropping CR and LF unfolds */
	for (size_t i = 0; i < f->value_len; i++)
		if (f->value[i] != '\r' && f->value[i] != '\n')
			v[o++] = f->value[i];
	v[o] = '\0';
	return v;
}

/* ---- address lists: tokens -------------------------------------------- */

enum {
	T_END = 0,
	T_ATOM = 256,
	T_QUOTED,
	T_LITERAL,
	/* the specials stand for themselves: < > @ , ; : . */
};

struct tok {
	int type;
	char *text;		/* ATOM, QUOTED (unquoted), LITERAL ("[...]") */
	char *comment;		/* comments just before it, or NULL */
	bool space_before;	/* white space or a comment before it */
};

struct toks {
	struct tok *v;
	size_t n, cap;
};

static void
toks_push(struct toks *t, int type, char *text, struct strbuf *comment,
	  bool space)
{
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->v = xreallocarray(t->v, t->cap, sizeof(*t->v));
	}
	t->v[t->n].type = type;
	t->v[t->n].text = text;
	t->v[t->n].comment = comment->len > 0 ? strbuf_steal(comment) : NULL;
	t->v[t->n].space_before = space;
	t->n++;
}

static void
toks_clear(struct toks *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->v[i].text);
		free(t->v[i].comment);
	}
	free(t->v);
}

/* RFC 5322 3.2.3 atext, plus 8-bit octets (RFC 6532) */
static bool
is_atext(unsigned char c)
{
	if (c >= 0x80)
		return true;
	if (c <= ' ' || c == 0x7f)
		return false;
	return strchr("()<>[]:;@\\,.\"", c) == NULL;
}

static bool
is_fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int
tokenize(const char *s, size_t len, struct toks *t, const char **error_r)
{
	struct strbuf comment = {0}, b = {0};
	bool space = false;
	size_t i = 0;

	for (;;) {
		unsigned char c;

		if (i >= len) {
			toks_push(t, T_END, NULL, &comment, space);
			return 0;
		}
		c = (unsigned char)s[i];
		if (is_fws((char)c)) {
			space = true;
			i++;
		} else if (c == '(') {
			/* RFC 5322 3.2.2: comments nest; quoted-pair inside */
			int depth = 1;
			if (comment.len > 0)
				strbuf_addc(&comment, ' ');
			for (i++; i < len && depth > 0; i++) {
				char ch = s[i];
				if (ch == '\\' && i + 1 < len) {
					strbuf_addc(&comment, s[++i]);
					continue;
				}
				if (ch == '(')
					depth++;
				else if (ch == ')' && --depth == 0)
					break;
				if (ch == '\0')
					goto bad_char;
				if (ch != '\r' && ch != '\n')
					strbuf_addc(&comment, ch);
			}
			if (depth > 0) {
				*error_r = "unterminated comment";
				goto fail;
			}
			i++;
			space = true;
		} else if (c == '"') {
			for (i++; i < len && s[i] != '"'; i++) {
				if (s[i] == '\\') {
					if (++i >= len)
						break;
					if (s[i] == '\0')
						goto bad_char;
				} else if (s[i] == '\r' || s[i] == '\n') {
					continue;	/* folding */
				} else if (s[i] == '\0') {
					goto bad_char;
				}
				strbuf_addc(&b, s[i]);
			}
			if (i >= len) {
				*error_r = "unterminated quoted string";
				goto fail;
			}
			i++;
			toks_push(t, T_QUOTED, strbuf_steal(&b), &comment,
				  space);
			space = false;
		} else if (c == '[') {
			/* domain-literal: dtext, FWS dropped */
			strbuf_addc(&b, '[');
			for (i++; i < len && s[i] != ']'; i++) {
				unsigned char d = (unsigned char)s[i];
				if (is_fws((char)d))
					continue;
				if (d < 33 || d == 0x7f || d == '[' ||
				    d == '\\') {
					strbuf_free(&b);
					*error_r = "invalid domain literal";
					goto fail;
				}
				strbuf_addc(&b, (char)d);
			}
			if (i >= len) {
				strbuf_free(&b);
				*error_r = "unterminated domain literal";
				goto fail;
			}
			strbuf_addc(&b, ']');
			i++;
			toks_push(t, T_LITERAL, strbuf_steal(&b), &comment,
				  space);
			space = false;
		} else if (strchr("<>@,;:.", c) != NULL && c != '\0') {
			toks_push(t, c, NULL, &comment, space);
			space = false;
			i++;
		} else if (is_atext(c)) {
			size_t a = i;
			while (i < len && is_atext((unsigned char)s[i]))
				i++;
			toks_push(t, T_ATOM, xstrndup(s + a, i - a), &comment,
				  space);
			space = false;
		} else {
			goto bad_char;
		}
	}
bad_char:
	*error_r = "invalid character in an address";
fail:
	strbuf_free(&comment);
	free(b.s);
	return -1;
}

/* ---- address lists: the grammar --------------------------------------- */

struct parser {
	struct toks t;
	size_t i;
	struct strbuf comment;	/* of the element being parsed */
	struct mail_address_list *l;
	const char *error;
};

static int
peek(const struct parser *p)
{
	return p->t.v[p->i].type;
}

static struct tok *
take(struct parser *p)
{
	struct tok *k = &p->t.v[p->i];

	if (k->comment != NULL) {
		if (p->comment.len > 0)
			strbuf_addc(&p->comment, ' ');
		strbuf_addstr(&p->comment, k->comment);
	}
	if (k->type != T_END)
		p->i++;
	return k;
}

static int
fail(struct parser *p, const char *error)
{
	if (p->error == NULL)
		p->error = error;
	return -1;
}

static bool
is_word(int type)
{
	return type == T_ATOM || type == T_QUOTED;
}

/* Words and dots from here on (a phrase or a local part): their range. */
static void
words(struct parser *p, size_t *a_r, size_t *b_r)
{
	*a_r = p->i;
	while (is_word(peek(p)) || peek(p) == '.')
		take(p);
	*b_r = p->i;
}

/* obs-phrase as text: words joined by one space where there was some */
static char *
phrase_text(const struct parser *p, size_t a, size_t b)
{
	struct strbuf s = {0};

	for (size_t k = a; k < b; k++) {
		const struct tok *t = &p->t.v[k];
		if (k > a && t->space_before)
			strbuf_addc(&s, ' ');
		if (t->type == '.')
			strbuf_addc(&s, '.');
		else
			strbuf_addstr(&s, t->text);
	}
	return strbuf_steal(&s);
}

/* dot-atom-text: atext runs joined by single dots */
static bool
is_dot_atom(const char *s)
{
	bool prev_dot = true;

	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (*s == '.') {
			if (prev_dot)
				return false;
			prev_dot = true;
		} else if (is_atext((unsigned char)*s)) {
			prev_dot = false;
		} else {
			return false;
		}
	}
	return !prev_dot;
}

/*
 * local-part (dot-atom, quoted-string or obs-local-part: word *("." word))
 * in tokens [a, b) into s: unquoted when the result is a dot-atom,
 * RFC 5321 4.1.2's equivalent form, else one quoted string.
 */
static int
local_part(struct parser *p, size_t a, size_t b, struct strbuf *s)
{
	struct strbuf raw = {0};
	char *r;

	if (a == b)
		return fail(p, "an address without a local part");
	for (size_t k = a; k < b; k++) {
		const struct tok *t = &p->t.v[k];
		bool want_word = (k - a) % 2 == 0;
		if (want_word != is_word(t->type) ||
		    (!want_word && t->type != '.')) {
			free(raw.s);
			return fail(p, "invalid local part");
		}
		if (t->type == '.')
			strbuf_addc(&raw, '.');
		else
			strbuf_addstr(&raw, t->text);
	}
	if ((b - a) % 2 == 0) {		/* ends in a dot */
		free(raw.s);
		return fail(p, "invalid local part");
	}
	r = strbuf_steal(&raw);
	if (is_dot_atom(r)) {
		strbuf_addstr(s, r);
	} else {
		strbuf_addc(s, '"');
		for (const char *c = r; *c != '\0'; c++) {
			/* a CR or LF came from a quoted-pair (obs-qp):
			 * bare, it would read as folding and vanish */
			if (*c == '"' || *c == '\\' || *c == '\r' ||
			    *c == '\n')
				strbuf_addc(s, '\\');
			strbuf_addc(s, *c);
		}
		strbuf_addc(s, '"');
	}
	free(r);
	return 0;
}

/* domain = dot-atom / domain-literal / obs-domain */
static int
domain(struct parser *p, struct strbuf *s)
{
	if (peek(p) == T_LITERAL) {
		const char *d = take(p)->text;
		strbuf_addstr(s, d);
		return 0;
	}
	for (;;) {
		const struct tok *t;
		if (peek(p) != T_ATOM)
			return fail(p, "invalid domain");
		t = take(p);
		strbuf_addstr(s, t->text);
		if (peek(p) != '.')
			return 0;
		take(p);
		strbuf_addc(s, '.');
	}
}

static void
mailbox_add(struct parser *p, char *display, char *addr, const char *group)
{
	struct mail_address_list *l = p->l;
	struct mail_mailbox *m;
	const struct tok *next = &p->t.v[p->i];

	/* a comment after the address belongs to it too */
	if (next->comment != NULL) {
		if (p->comment.len > 0)
			strbuf_addc(&p->comment, ' ');
		strbuf_addstr(&p->comment, next->comment);
	}
	l->v = xreallocarray(l->v, l->n + 1, sizeof(*l->v));
	m = &l->v[l->n++];
	m->display = display;
	m->addr = addr;
	m->comment = p->comment.len > 0 ? strbuf_steal(&p->comment) : NULL;
	m->group = group != NULL ? xstrdup(group) : NULL;
	strbuf_reset(&p->comment);
}

/* angle-addr / obs-angle-addr (with a source route, which is dropped) */
static int
angle_addr(struct parser *p, struct strbuf *addr)
{
	size_t a, b;

	take(p);		/* '<' */
	if (peek(p) == '@' || peek(p) == ',') {
		/* obs-route = obs-domain-list ":" */
		struct strbuf route = {0};
		int r = 0;
		for (;;) {
			while (peek(p) == ',')
				take(p);
			if (peek(p) != '@')
				break;
			take(p);
			if ((r = domain(p, &route)) < 0)
				break;
		}
		free(route.s);
		if (r < 0)
			return -1;
		if (peek(p) != ':')
			return fail(p, "invalid source route");
		take(p);
	}
	if (peek(p) == '>')
		return fail(p, "an empty address <>");
	words(p, &a, &b);
	if (local_part(p, a, b, addr) < 0)
		return -1;
	if (peek(p) != '@')
		return fail(p, "an address without '@'");
	take(p);
	strbuf_addc(addr, '@');
	if (domain(p, addr) < 0)
		return -1;
	if (peek(p) != '>')
		return fail(p, "expected '>' after an address");
	take(p);
	return 0;
}

/*
 * address = mailbox / group. An empty element (obs-addr-list) adds
 * nothing. group is the enclosing group's name, or NULL.
 */
static int
element(struct parser *p, const char *group)
{
	struct strbuf addr = {0};
	size_t a, b;
	int next;

	strbuf_reset(&p->comment);
	words(p, &a, &b);
	next = peek(p);
	if (next == '<') {
		char *display = a < b ? phrase_text(p, a, b) : NULL;
		if (angle_addr(p, &addr) < 0) {
			free(display);
			free(addr.s);
			return -1;
		}
		mailbox_add(p, display, strbuf_steal(&addr), group);
		return 0;
	}
	if (next == '@' && a < b) {
		if (local_part(p, a, b, &addr) < 0) {
			free(addr.s);
			return -1;
		}
		take(p);
		strbuf_addc(&addr, '@');
		if (domain(p, &addr) < 0) {
			free(addr.s);
			return -1;
		}
		mailbox_add(p, NULL, strbuf_steal(&addr), group);
		return 0;
	}
	if (next == ':' && a < b && group == NULL) {
		/* group = display-name ":" [group-list] ";" */
		char *name = phrase_text(p, a, b);
		int r = 0;
		take(p);
		p->l->ngroups++;
		for (;;) {
			if (peek(p) == ';')
				break;
			if ((r = element(p, name)) < 0)
				break;
			if (peek(p) == ',') {
				take(p);
				continue;
			}
			if (peek(p) != ';')
				r = fail(p, "expected ',' or ';' in a group");
			break;
		}
		free(name);
		if (r < 0)
			return -1;
		take(p);	/* ';' */
		return 0;
	}
	if (a == b && (next == ',' || next == T_END ||
		       (next == ';' && group != NULL)))
		return 0;	/* an empty element */
	if (a < b)
		return fail(p, "a name without an address");
	return fail(p, "unexpected character in an address list");
}

int
mail_address_list_parse(const char *value, size_t len,
			struct mail_address_list *l_r, const char **error_r)
{
	struct parser p = {0};
	int r = 0;

	memset(l_r, 0, sizeof(*l_r));
	p.l = l_r;
	if (tokenize(value, len, &p.t, error_r) < 0) {
		toks_clear(&p.t);
		return -1;
	}
	for (;;) {
		if ((r = element(&p, NULL)) < 0)
			break;
		if (peek(&p) == ',') {
			take(&p);
			continue;
		}
		if (peek(&p) != T_END)
			r = fail(&p, "expected ',' between addresses");
		break;
	}
	toks_clear(&p.t);
	free(p.comment.s);
	if (r < 0) {
		*error_r = p.error;
		mail_address_list_clear(l_r);
		return -1;
	}
	return 0;
}

void
mail_address_list_clear(struct mail_address_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].display);
		free(l->v[i].comment);
		free(l->v[i].addr);
		free(l->v[i].group);
	}
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* ---- display names ---------------------------------------------------- */


/*
 * RFC 2047 2 limits an encoded word to 75 octets; mail readers decode
 * longer ones, so the bound here is looser, but still a bound: each try
 * at a "=?" looks at most this far, so decoding stays linear.
 */
#define EW_MAX 1024

/* Base64 as mail readers take it: octets outside the alphabet skipped,
 * a last group of 2 or 3 giving 1 or 2 octets. */
static void
base64_tolerant(const char *s, const char *end, struct strbuf *out)
{
	static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				  "abcdefghijklmnopqrstuvwxyz0123456789+/";
	uint32_t acc = 0;
	int na = 0;

	for (; s < end; s++) {
		const char *v = *s != '\0' ? strchr(abc, *s) : NULL;

		if (v == NULL)
			continue;
		acc = (acc << 6) | (uint32_t)(v - abc);
		if (++na == 4) {
			strbuf_addc(out, (char)(acc >> 16));
			strbuf_addc(out, (char)(acc >> 8));
			strbuf_addc(out, (char)acc);
			na = 0;
		}
	}
	if (na == 2)
		strbuf_addc(out, (char)(acc >> 4));
	else if (na == 3) {
		strbuf_addc(out, (char)(acc >> 10));
		strbuf_addc(out, (char)(acc >> 2));
	}
}

size_t
mail_encoded_word(const char *s, const char *lim, bool strict,
		  char *charset, size_t csize, struct strbuf *out)
{
	const char *cs, *enc, *text, *end;
	size_t room = (size_t)(lim - s) < EW_MAX ? (size_t)(lim - s) : EW_MAX;

	if (room < 8 || s[0] != '=' || s[1] != '?')
		return 0;
	cs = s + 2;
	enc = memchr(cs, '?', room - 2);
	if (enc == NULL || enc == cs || enc + 3 > s + room || enc[2] != '?' ||
	    enc[1] == '\0' || strchr("BbQq", enc[1]) == NULL)
		return 0;
	text = enc + 3;
	end = memmem(text, (size_t)(s + room - text), "?=", 2);
	if (end == NULL)
		return 0;
	for (const char *c = cs; c < end; c++)
		if (*c == ' ' || *c == '\t')
			return 0;
	if (charset != NULL) {
		size_t n = strcspn(cs, "*?");	/* RFC 2231 language cut */

		if ((size_t)(enc - cs) >= csize)
			return 0;
		memcpy(charset, cs, n);
		charset[n] = '\0';
	}
	if ((enc[1] == 'B' || enc[1] == 'b') && !strict)
		base64_tolerant(text, end, out);
	else if (enc[1] == 'B' || enc[1] == 'b') {
		size_t n = (size_t)(end - text);
		char *buf = xmalloc(base64_decoded_max(n) + 1);
		ssize_t r = base64_decode(text, n, buf,
					  base64_decoded_max(n) + 1);
		if (r >= 0)
			strbuf_add(out, buf, (size_t)r);
		free(buf);
		if (r < 0)
			return 0;
	} else
		for (const char *c = text; c < end; c++) {
			int h, l;
			if (*c == '_') {
				strbuf_addc(out, ' ');
			} else if (*c == '=' && c + 2 < end &&
				   (h = hex_digit(c[1])) >= 0 &&
				   (l = hex_digit(c[2])) >= 0) {
				strbuf_addc(out, (char)(h * 16 + l));
				c += 2;
			} else {
				strbuf_addc(out, *c);
			}
		}
	return (size_t)(end + 2 - s);
}

/*
 * An encoded word at s, decoded into out (strictly: bad base64 is no
 * word), control octets read as space; its length in *len_r. -1 if it
 * is not one. lim is the end of the string.
 */
static int
encoded_word(const char *s, const char *lim, struct strbuf *out, size_t *len_r)
{
	struct strbuf d = {0};
	size_t n = mail_encoded_word(s, lim, true, NULL, 0, &d);

	if (n == 0) {
		strbuf_free(&d);
		return -1;
	}
	/* control octets (NUL included) read as space */
	for (size_t i = 0; i < d.len; i++)
		if ((unsigned char)d.s[i] < 0x20 || d.s[i] == 0x7f)
			d.s[i] = ' ';
	if (d.len > 0)
		strbuf_add(out, d.s, d.len);
	strbuf_free(&d);
	*len_r = n;
	return 0;
}

char *
mail_display_decode(const char *s)
{
	const char *lim = s + strlen(s);
	struct strbuf out = {0};
	size_t after_word = (size_t)-1;	/* out.len after the last one */

	while (*s != '\0') {
		size_t n, before = out.len;
		if (s[0] == '=' && s[1] == '?' &&
		    encoded_word(s, lim, &out, &n) == 0) {
			/* RFC 2047 6.2: white space between two encoded
			 * words is not shown */
			if (after_word != (size_t)-1 && before > after_word) {
				bool ws = true;
				for (size_t i = after_word; i < before; i++)
					if (!is_fws(out.s[i]))
						ws = false;
				if (ws) {
					memmove(out.s + after_word,
						out.s + before,
						out.len - before);
					out.len -= before - after_word;
					out.s[out.len] = '\0';
				}
			}
			after_word = out.len;
			s += n;
			continue;
		}
		strbuf_addc(&out, *s++);
	}
	return strbuf_steal(&out);
}

static bool
is_display_sep(unsigned char c)
{
	return c <= ' ' || c == 0x7f || strchr("<>()[]\"',;:", c) != NULL;
}

size_t
mail_display_addresses(const char *text, char ***addrs_r)
{
	char *d = mail_display_decode(text), *w = d;
	char **v = NULL;
	size_t n = 0;

	/* the full-width and small commercial ats read as '@' */
	for (char *r = d; *r != '\0';) {
		const unsigned char *u = (const unsigned char *)r;
		if (u[0] == 0xef && ((u[1] == 0xbc && u[2] == 0xa0) ||
				     (u[1] == 0xb9 && u[2] == 0xab))) {
			*w++ = '@';
			r += 3;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
	for (char *p = d; *p != '\0';) {
		char *at, *e;
		size_t len;
		if (is_display_sep((unsigned char)*p)) {
			p++;
			continue;
		}
		for (e = p; *e != '\0' &&
			    !is_display_sep((unsigned char)*e); e++)
			;
		len = (size_t)(e - p);
		at = memchr(p, '@', len);
		/* text on both sides of the '@'; a final dot is punctuation */
		while (len > 0 && p[len - 1] == '.')
			len--;
		if (at != NULL && at > p && at + 1 < p + len) {
			v = xreallocarray(v, n + 1, sizeof(*v));
			v[n++] = xstrndup(p, len);
		}
		p = e;
	}
	free(d);
	*addrs_r = v;
	return n;
}

void
mail_strings_free(char ***v, size_t n)
{
	if (*v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free((*v)[i]);
	free(*v);
	*v = NULL;
}
