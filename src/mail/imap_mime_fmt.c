/*
 * imap_mime.h's header side: fields of a kept header, the Content-*
 * fields (RFC 2045, RFC 2183 disposition, RFC 3282 language, RFC 2557
 * location), the ENVELOPE (address lists through mail/mail_header.h) and
 * BODYSTRUCTURE / BODY rendering, and IMAP string quoting.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/strbuf.h"
#include "lib/xalloc.h"
#include "mail/imap_mime.h"
#include "mail/imap_mime_private.h"
#include "mail/mail_header.h"

#define PARAMS_MAX 32
#define QUOTED_MAX 1024		/* longer strings go as literals */

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

void
imap_mime_fields(const char *hdr, size_t len, imap_mime_field_fn *fn,
		 void *arg)
{
	size_t pos = 0;
	struct strbuf v = {0};

	while (pos < len) {
		size_t ls = pos, colon, e;

		if (hdr[pos] == '\n' || (hdr[pos] == '\r' && pos + 1 < len &&
					 hdr[pos + 1] == '\n'))
			break;	/* the empty line */
		/* the field: this line and the continuation lines */
		e = pos;
		for (;;) {
			const char *lf = memchr(hdr + e, '\n', len - e);

			e = lf != NULL ? (size_t)(lf - hdr) + 1 : len;
			if (e >= len || !is_wsp(hdr[e]))
				break;
		}
		pos = e;
		if (is_wsp(hdr[ls]))
			continue;	/* a stray continuation */
		for (colon = ls; colon < e && hdr[colon] != ':' &&
		     hdr[colon] != '\n'; colon++)
			;
		if (colon >= e || hdr[colon] != ':')
			continue;	/* not a field */
		size_t ne = colon;

		while (ne > ls && is_wsp(hdr[ne - 1]))
			ne--;
		if (ne == ls)
			continue;
		strbuf_reset(&v);
		for (size_t i = colon + 1, j; i < e; i = j + 1) {
			/* a run up to the next CR or LF, appended at once */
			for (j = i; j < e && hdr[j] != '\n' && hdr[j] != '\r';
			     j++)
				;
			strbuf_add(&v, hdr + i, j - i);
		}
		size_t vs = 0, ve = v.len;

		while (vs < ve && is_wsp(v.s[vs]))
			vs++;
		while (ve > vs && is_wsp(v.s[ve - 1]))
			ve--;
		if (!fn(arg, hdr + ls, ne - ls, v.s != NULL ? v.s + vs : "",
			ve - vs))
			break;
	}
	strbuf_free(&v);
}

size_t
imap_mime_header_len(const char *hdr, size_t len)
{
	size_t pos = 0;

	while (pos < len) {
		const char *lf = memchr(hdr + pos, '\n', len - pos);

		if (hdr[pos] == '\n')
			return pos + 1;
		if (hdr[pos] == '\r' && pos + 1 < len && hdr[pos + 1] == '\n')
			return pos + 2;
		if (lf == NULL)
			return len;
		pos = (size_t)(lf - hdr) + 1;
	}
	return len;
}

/* ---- Content-* values ------------------------------------------- */

struct tok {
	const char *s;
	size_t len;
	size_t pos;
};

/* Skips white space and (nested) comments. */
static void
skip_cfws(struct tok *t)
{
	int depth = 0;

	while (t->pos < t->len) {
		char c = t->s[t->pos];

		if (depth > 0 && c == '\\' && t->pos + 1 < t->len) {
			t->pos += 2;
			continue;
		}
		if (c == '(')
			depth++;
		else if (c == ')' && depth > 0)
			depth--;
		else if (depth == 0 && !is_wsp(c) && c != '\r' && c != '\n')
			return;
		t->pos++;
	}
}

static bool
is_tspecial(char c)
{
	return strchr("()<>@,;:\\\"/[]?=", c) != NULL || c == ' ' ||
	    c == '\t' || (unsigned char)c < 0x20;
}

/* A token or a quoted string (unquoted) into out; false if none. */
static bool
token(struct tok *t, struct strbuf *out, bool allow_slash)
{
	strbuf_reset(out);
	skip_cfws(t);
	if (t->pos < t->len && t->s[t->pos] == '"') {
		t->pos++;
		while (t->pos < t->len && t->s[t->pos] != '"') {
			if (t->s[t->pos] == '\\' && t->pos + 1 < t->len)
				t->pos++;
			strbuf_addc(out, t->s[t->pos++]);
		}
		t->pos++;
		if (out->s == NULL)
			strbuf_add(out, "", 0);
		return true;
	}
	while (t->pos < t->len && (!is_tspecial(t->s[t->pos]) ||
				   (allow_slash && t->s[t->pos] == '/')))
		strbuf_addc(out, t->s[t->pos++]);
	return out->len > 0;
}

static bool
expect(struct tok *t, char c)
{
	skip_cfws(t);
	if (t->pos < t->len && t->s[t->pos] == c) {
		t->pos++;
		return true;
	}
	return false;
}

/* ";" name "=" value ...: the parameters. */
static void
params(struct tok *t, struct imap_mime_param **v_r, size_t *n_r)
{
	struct strbuf name = {0}, val = {0};

	while (*n_r < PARAMS_MAX && expect(t, ';')) {
		if (!token(t, &name, false) || !expect(t, '='))
			break;
		if (!token(t, &val, true) && val.s == NULL)
			strbuf_add(&val, "", 0);
		*v_r = xreallocarray(*v_r, *n_r + 1, sizeof(**v_r));
		(*v_r)[*n_r].name = xstrdup(name.s);
		(*v_r)[(*n_r)++].value = xstrdup(val.s);
	}
	strbuf_free(&name);
	strbuf_free(&val);
}

static void
content_type(struct imap_mime_part *p, const char *v, size_t len)
{
	struct tok t = {v, len, 0};
	struct strbuf a = {0}, b = {0};

	if (!token(&t, &a, false) || !expect(&t, '/') ||
	    !token(&t, &b, false)) {
		strbuf_free(&a);
		strbuf_free(&b);
		return;		/* invalid: the default stays */
	}
	free(p->type);
	free(p->subtype);
	p->type = strbuf_steal(&a);
	p->subtype = strbuf_steal(&b);
	p->has_ctype = true;
	params(&t, &p->params, &p->nparams);
}

static void
disposition(struct imap_mime_part *p, const char *v, size_t len)
{
	struct tok t = {v, len, 0};
	struct strbuf a = {0};

	if (!token(&t, &a, false)) {
		strbuf_free(&a);
		return;
	}
	free(p->disp);
	p->disp = strbuf_steal(&a);
	params(&t, &p->disp_params, &p->ndisp_params);
}

static char *
first_token(const char *v, size_t len)
{
	struct tok t = {v, len, 0};
	struct strbuf a = {0};

	if (!token(&t, &a, false)) {
		strbuf_free(&a);
		return NULL;
	}
	return strbuf_steal(&a);
}

static void
set_str(char **dst, const char *v, size_t len)
{
	free(*dst);
	*dst = xmalloc(len + 1);
	memcpy(*dst, v, len);
	(*dst)[len] = '\0';
}

static bool
name_is(const char *name, size_t nlen, const char *want)
{
	return strlen(want) == nlen && strncasecmp(name, want, nlen) == 0;
}

static bool
part_field(void *arg, const char *name, size_t nlen, const char *v,
	   size_t vlen)
{
	struct imap_mime_part *p = arg;

	if (nlen < 8 || strncasecmp(name, "Content-", 8) != 0)
		return true;
	if (name_is(name, nlen, "Content-Type") && !p->has_ctype)
		content_type(p, v, vlen);
	else if (name_is(name, nlen, "Content-ID") && p->id == NULL)
		set_str(&p->id, v, vlen);
	else if (name_is(name, nlen, "Content-Description") && p->desc == NULL)
		set_str(&p->desc, v, vlen);
	else if (name_is(name, nlen, "Content-Transfer-Encoding") &&
		 p->cte_name == NULL)
		p->cte_name = first_token(v, vlen);
	else if (name_is(name, nlen, "Content-MD5") && p->md5 == NULL)
		set_str(&p->md5, v, vlen);
	else if (name_is(name, nlen, "Content-Disposition") && p->disp == NULL)
		disposition(p, v, vlen);
	else if (name_is(name, nlen, "Content-Language") && p->lang == NULL)
		set_str(&p->lang, v, vlen);
	else if (name_is(name, nlen, "Content-Location") && p->loc == NULL)
		set_str(&p->loc, v, vlen);
	return true;
}

void
imap_mime_part_fields(struct imap_mime_part *p, const char *hdr, size_t len,
		      bool digest, char *boundary, size_t bsize)
{
	boundary[0] = '\0';
	imap_mime_fields(hdr, len, part_field, p);
	if (p->type == NULL) {
		p->type = xstrdup(digest ? "message" : "text");
		p->subtype = xstrdup(digest ? "rfc822" : "plain");
		if (!digest) {
			p->params = xcalloc(1, sizeof(*p->params));
			p->params[0].name = xstrdup("charset");
			p->params[0].value = xstrdup("us-ascii");
			p->nparams = 1;
		}
	}
	p->cte = IMAP_CTE_IDENTITY;
	if (p->cte_name != NULL) {
		if (strcasecmp(p->cte_name, "base64") == 0)
			p->cte = IMAP_CTE_BASE64;
		else if (strcasecmp(p->cte_name, "quoted-printable") == 0)
			p->cte = IMAP_CTE_QP;
		else if (strcasecmp(p->cte_name, "7bit") != 0 &&
			 strcasecmp(p->cte_name, "8bit") != 0 &&
			 strcasecmp(p->cte_name, "binary") != 0)
			p->cte = IMAP_CTE_UNKNOWN;
	}
	if (strcasecmp(p->type, "multipart") != 0)
		return;
	for (size_t i = 0; i < p->nparams; i++) {
		size_t n = strlen(p->params[i].value);

		if (strcasecmp(p->params[i].name, "boundary") == 0 && n > 0 &&
		    n < bsize) {
			memcpy(boundary, p->params[i].value, n + 1);
			break;
		}
	}
}

/* ---- strings ---------------------------------------------------- */

void
imap_mime_quote(struct strbuf *out, const char *s, size_t len)
{
	bool quoted = len <= QUOTED_MAX;

	if (s == NULL) {
		strbuf_addstr(out, "NIL");
		return;
	}
	for (size_t i = 0; i < len && quoted; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
			quoted = false;
	if (!quoted) {
		strbuf_addf(out, "{%zu}\r\n", len);
		strbuf_add(out, s, len);
		return;
	}
	strbuf_addc(out, '"');
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '"' || s[i] == '\\')
			strbuf_addc(out, '\\');
		strbuf_addc(out, s[i]);
	}
	strbuf_addc(out, '"');
}

static void
quote_str(struct strbuf *out, const char *s)
{
	imap_mime_quote(out, s, s != NULL ? strlen(s) : 0);
}

/* ---- ENVELOPE --------------------------------------------------- */

enum { E_DATE, E_SUBJECT, E_FROM, E_SENDER, E_REPLY_TO, E_TO, E_CC, E_BCC,
       E_IN_REPLY_TO, E_MESSAGE_ID, E_N };

static const char *const env_names[E_N] = {
	"Date", "Subject", "From", "Sender", "Reply-To", "To", "Cc", "Bcc",
	"In-Reply-To", "Message-ID",
};

static bool
env_field(void *arg, const char *name, size_t nlen, const char *v,
	  size_t vlen)
{
	char **vals = arg;

	for (size_t i = 0; i < E_N; i++)
		if (vals[i] == NULL && name_is(name, nlen, env_names[i]))
			set_str(&vals[i], v, vlen);
	return true;
}

static void
write_addr(struct strbuf *out, const struct mail_mailbox *mb)
{
	const char *at = strrchr(mb->addr, '@');

	strbuf_addc(out, '(');
	quote_str(out, mb->display);
	strbuf_addstr(out, " NIL ");
	if (at != NULL) {
		imap_mime_quote(out, mb->addr, (size_t)(at - mb->addr));
		strbuf_addc(out, ' ');
		quote_str(out, at + 1);
	} else {
		quote_str(out, mb->addr);
		strbuf_addstr(out, " \"\"");
	}
	strbuf_addc(out, ')');
}

/* An empty group ("undisclosed-recipients:;"): its name. */
static void
empty_group(struct strbuf *out, const char *v)
{
	const char *colon = strchr(v, ':');
	struct tok t = {v, colon != NULL ? (size_t)(colon - v) : 0, 0};
	struct strbuf name = {0};

	if (colon != NULL && token(&t, &name, false)) {
		strbuf_addstr(out, "((NIL NIL ");
		quote_str(out, name.s);
		strbuf_addstr(out, " NIL)(NIL NIL NIL NIL))");
	} else
		strbuf_addstr(out, "NIL");
	strbuf_free(&name);
}

/* v[*b, *e) without blanks, line ends and the brackets around it */
static void
trim_addr(const char *v, size_t *b, size_t *e)
{
	while (*b < *e && (is_wsp(v[*b]) || v[*b] == '\r' || v[*b] == '\n' ||
			   v[*b] == '<' || v[*b] == '"'))
		(*b)++;
	while (*e > *b && (is_wsp(v[*e - 1]) || v[*e - 1] == '\r' ||
			   v[*e - 1] == '\n' || v[*e - 1] == '>' ||
			   v[*e - 1] == '"'))
		(*e)--;
}

/* One piece of a refused field: the address in its last <...> if any. */
static void
write_raw_one(struct strbuf *out, const char *v, size_t b, size_t e)
{
	const char *lt = memrchr(v + b, '<', e - b), *at;

	if (lt != NULL)
		b = (size_t)(lt - v);
	trim_addr(v, &b, &e);
	if (b == e)
		return;
	at = memrchr(v + b, '@', e - b);
	strbuf_addstr(out, "(NIL NIL ");
	if (at != NULL && at > v + b && at + 1 < v + e) {
		imap_mime_quote(out, v + b, (size_t)(at - (v + b)));
		strbuf_addc(out, ' ');
		imap_mime_quote(out, at + 1, (size_t)(v + e - (at + 1)));
	} else {
		imap_mime_quote(out, v + b, e - b);
		strbuf_addstr(out, " \"MISSING_DOMAIN\"");
	}
	strbuf_addc(out, ')');
}

/*
 * A field the address parser refuses ("From: nobody", a stray bracket):
 * each comma-separated piece (commas in quotes do not count) as an
 * address made of its text, so that the client still sees who it was:
 * the part before the last '@' as the mailbox, the rest as the host or,
 * without an '@', "MISSING_DOMAIN" (as Dovecot answers). NIL only for a
 * field with nothing in it.
 */
static void
write_raw_addr(struct strbuf *out, const char *v)
{
	size_t len = strlen(v), start = 0, mark = out->len;
	bool quoted = false;

	strbuf_addc(out, '(');
	for (size_t i = 0; i <= len; i++) {
		if (i < len && v[i] == '"')
			quoted = !quoted;
		if (i == len || (v[i] == ',' && !quoted)) {
			write_raw_one(out, v, start, i);
			start = i + 1;
		}
	}
	if (out->len == mark + 1) {
		out->len = mark;
		out->s[mark] = '\0';
		strbuf_addstr(out, "NIL");
		return;
	}
	strbuf_addc(out, ')');
}

static void
write_addrs(struct strbuf *out, const char *v)
{
	struct mail_address_list l;
	const char *error, *group = NULL;

	if (v == NULL) {
		strbuf_addstr(out, "NIL");
		return;
	}
	if (mail_address_list_parse(v, strlen(v), &l, &error) < 0) {
		write_raw_addr(out, v);
		return;
	}
	if (l.n == 0) {
		if (l.ngroups > 0)
			empty_group(out, v);
		else
			strbuf_addstr(out, "NIL");
		mail_address_list_clear(&l);
		return;
	}
	strbuf_addc(out, '(');
	for (size_t i = 0; i < l.n; i++) {
		const char *g = l.v[i].group;

		if (group != NULL && (g == NULL || strcmp(g, group) != 0)) {
			strbuf_addstr(out, "(NIL NIL NIL NIL)");
			group = NULL;
		}
		if (g != NULL && group == NULL) {
			strbuf_addstr(out, "(NIL NIL ");
			quote_str(out, g);
			strbuf_addstr(out, " NIL)");
			group = g;
		}
		write_addr(out, &l.v[i]);
	}
	if (group != NULL)
		strbuf_addstr(out, "(NIL NIL NIL NIL)");
	strbuf_addc(out, ')');
	mail_address_list_clear(&l);
}

void
imap_mime_render_envelope(const char *hdr, size_t len, struct strbuf *out)
{
	char *vals[E_N] = {0};

	imap_mime_fields(hdr, len, env_field, vals);
	strbuf_addc(out, '(');
	quote_str(out, vals[E_DATE]);
	strbuf_addc(out, ' ');
	quote_str(out, vals[E_SUBJECT]);
	for (int i = E_FROM; i <= E_BCC; i++) {
		const char *v = vals[i];

		if ((i == E_SENDER || i == E_REPLY_TO) &&
		    (v == NULL || v[0] == '\0'))
			v = vals[E_FROM];
		strbuf_addc(out, ' ');
		write_addrs(out, v);
	}
	strbuf_addc(out, ' ');
	quote_str(out, vals[E_IN_REPLY_TO]);
	strbuf_addc(out, ' ');
	quote_str(out, vals[E_MESSAGE_ID]);
	strbuf_addc(out, ')');
	for (int i = 0; i < E_N; i++)
		free(vals[i]);
}

void
imap_mime_envelope(const struct imap_mime *m, struct strbuf *out)
{
	if (m->root->envelope != NULL)
		strbuf_addstr(out, m->root->envelope);
	else
		strbuf_addstr(out, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
}

/* ---- BODYSTRUCTURE ---------------------------------------------- */

static void
write_params(struct strbuf *out, const struct imap_mime_param *v, size_t n)
{
	if (n == 0) {
		strbuf_addstr(out, "NIL");
		return;
	}
	strbuf_addc(out, '(');
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			strbuf_addc(out, ' ');
		quote_str(out, v[i].name);
		strbuf_addc(out, ' ');
		quote_str(out, v[i].value);
	}
	strbuf_addc(out, ')');
}

static void
write_lang(struct strbuf *out, const char *lang)
{
	struct strbuf t = {0};
	char *v[16];
	size_t n = 0;
	struct tok k = {lang, lang != NULL ? strlen(lang) : 0, 0};

	while (n < 16 && token(&k, &t, false)) {
		v[n++] = strbuf_steal(&t);
		if (!expect(&k, ','))
			break;
	}
	strbuf_free(&t);
	if (n == 0)
		strbuf_addstr(out, "NIL");
	else if (n == 1)
		quote_str(out, v[0]);
	else {
		strbuf_addc(out, '(');
		for (size_t i = 0; i < n; i++) {
			if (i > 0)
				strbuf_addc(out, ' ');
			quote_str(out, v[i]);
		}
		strbuf_addc(out, ')');
	}
	for (size_t i = 0; i < n; i++)
		free(v[i]);
}

/* disposition language location */
static void
write_ext_tail(struct strbuf *out, const struct imap_mime_part *p)
{
	strbuf_addc(out, ' ');
	if (p->disp != NULL) {
		strbuf_addc(out, '(');
		quote_str(out, p->disp);
		strbuf_addc(out, ' ');
		write_params(out, p->disp_params, p->ndisp_params);
		strbuf_addc(out, ')');
	} else
		strbuf_addstr(out, "NIL");
	strbuf_addc(out, ' ');
	write_lang(out, p->lang);
	strbuf_addc(out, ' ');
	quote_str(out, p->loc);
}

static void write_part(struct strbuf *out, const struct imap_mime_part *p,
		       bool ext);

static void
write_leaf(struct strbuf *out, const struct imap_mime_part *p, bool ext)
{
	/* a multipart or message beyond the bounds: opaque octets */
	bool opaque = (strcasecmp(p->type, "multipart") == 0 &&
		       !p->multipart) ||
	    (strcasecmp(p->type, "message") == 0 && !p->message &&
	     (strcasecmp(p->subtype, "rfc822") == 0 ||
	      strcasecmp(p->subtype, "global") == 0));

	strbuf_addc(out, '(');
	quote_str(out, opaque ? "application" : p->type);
	strbuf_addc(out, ' ');
	quote_str(out, opaque ? "octet-stream" : p->subtype);
	strbuf_addc(out, ' ');
	write_params(out, p->params, p->nparams);
	strbuf_addc(out, ' ');
	quote_str(out, p->id);
	strbuf_addc(out, ' ');
	quote_str(out, p->desc);
	strbuf_addc(out, ' ');
	quote_str(out, p->cte_name != NULL ? p->cte_name : "7bit");
	strbuf_addf(out, " %llu", (unsigned long long)(p->cend - p->cbody));
	if (p->message && p->child != NULL) {
		strbuf_addc(out, ' ');
		strbuf_addstr(out, p->child->envelope != NULL ?
		    p->child->envelope :
		    "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
		strbuf_addc(out, ' ');
		write_part(out, p->child, ext);
		strbuf_addf(out, " %llu", (unsigned long long)p->lines);
	} else if (strcasecmp(p->type, "text") == 0)
		strbuf_addf(out, " %llu", (unsigned long long)p->lines);
	if (ext) {
		strbuf_addc(out, ' ');
		quote_str(out, p->md5);
		write_ext_tail(out, p);
	}
	strbuf_addc(out, ')');
}

static void
write_part(struct strbuf *out, const struct imap_mime_part *p, bool ext)
{
	if (!p->multipart) {
		write_leaf(out, p, ext);
		return;
	}
	strbuf_addc(out, '(');
	for (const struct imap_mime_part *c = p->child; c != NULL; c = c->next)
		write_part(out, c, ext);
	strbuf_addc(out, ' ');
	quote_str(out, p->subtype);
	if (ext) {
		strbuf_addc(out, ' ');
		write_params(out, p->params, p->nparams);
		write_ext_tail(out, p);
	}
	strbuf_addc(out, ')');
}

void
imap_mime_bodystructure(const struct imap_mime *m, bool extended,
			struct strbuf *out)
{
	write_part(out, m->root, extended);
}
