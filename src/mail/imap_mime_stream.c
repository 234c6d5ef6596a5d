/*
 * imap_mime.h's sections: the section specs of FETCH parsed, resolved to
 * ranges of the message, HEADER.FIELDS filtered, ranges streamed in CRLF
 * form with base64 / quoted-printable decoding (BINARY, RFC 3516), the
 * whole message's size checked against the one its file name claims,
 * and RFC 2047 encoded words decoded to UTF-8.
 */
#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/strbuf.h"
#include "lib/xalloc.h"
#include "mail/imap_mime.h"
#include "mail/imap_mime_private.h"
#include "mail/mail_header.h"

/* ---- section specs ---------------------------------------------- */

static bool
take_word(const char **p, const char *e, const char *w)
{
	size_t n = strlen(w);

	if ((size_t)(e - *p) < n || strncasecmp(*p, w, n) != 0)
		return false;
	*p += n;
	return true;
}

static bool
take_number(const char **p, const char *e, uint64_t *v_r, uint64_t max)
{
	uint64_t v = 0;
	const char *s = *p;

	while (*p < e && **p >= '0' && **p <= '9') {
		if (v > (max - (uint64_t)(**p - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(**p - '0');
		(*p)++;
	}
	*v_r = v;
	return *p > s;
}

/* "(" name *(SP name) ")": atoms or quoted strings. */
static bool
take_names(const char **p, const char *e, struct imap_section *sec)
{
	if (*p >= e || **p != '(')
		return false;
	(*p)++;
	for (;;) {
		struct strbuf n = {0};

		if (*p < e && **p == '"') {
			for ((*p)++; *p < e && **p != '"'; (*p)++) {
				if (**p == '\\' && *p + 1 < e)
					(*p)++;
				strbuf_addc(&n, **p);
			}
			if (*p >= e)
				return strbuf_free(&n), false;
			(*p)++;
		} else
			while (*p < e && **p != ' ' && **p != ')' &&
			       **p != '(' && **p != ']' && **p != '"' &&
			       (unsigned char)**p > 0x20)
				strbuf_addc(&n, *(*p)++);
		if (n.len == 0 || sec->nnames >= IMAP_SECTION_NAMES_MAX ||
		    memchr(n.s, ':', n.len) != NULL) {
			strbuf_free(&n);
			return false;
		}
		sec->names[sec->nnames++] = strbuf_steal(&n);
		if (*p < e && **p == ')') {
			(*p)++;
			return true;
		}
		if (*p >= e || **p != ' ')
			return false;
		(*p)++;
	}
}

static bool
section_text(const char **p, const char *e, struct imap_section *sec)
{
	if (take_word(p, e, "HEADER.FIELDS.NOT "))
		sec->kind = IMAP_SEC_FIELDS_NOT;
	else if (take_word(p, e, "HEADER.FIELDS "))
		sec->kind = IMAP_SEC_FIELDS;
	else if (take_word(p, e, "HEADER"))
		sec->kind = IMAP_SEC_HEADER;
	else if (take_word(p, e, "TEXT"))
		sec->kind = IMAP_SEC_TEXT;
	else if (sec->npart > 0 && take_word(p, e, "MIME"))
		sec->kind = IMAP_SEC_MIME;
	else
		return false;
	if (sec->kind == IMAP_SEC_FIELDS || sec->kind == IMAP_SEC_FIELDS_NOT)
		return take_names(p, e, sec);
	return true;
}

/* A header name as an atom if it is one, else quoted. */
static void
echo_name(struct strbuf *t, const char *name)
{
	for (const char *c = name; *c != '\0'; c++)
		if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f ||
		    strchr("(){%*\"\\]", *c) != NULL) {
			imap_mime_quote(t, name, strlen(name));
			return;
		}
	strbuf_addstr(t, name);
}

static void
echo_text(struct imap_section *sec)
{
	static const char *const kinds[] = {
		"", "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT",
		"MIME",
	};
	struct strbuf t = {0};

	for (size_t i = 0; i < sec->npart; i++)
		strbuf_addf(&t, "%s%u", i > 0 ? "." : "", sec->part[i]);
	if (sec->kind != IMAP_SEC_ALL)
		strbuf_addf(&t, "%s%s", sec->npart > 0 ? "." : "",
			    kinds[sec->kind]);
	if (sec->kind == IMAP_SEC_FIELDS || sec->kind == IMAP_SEC_FIELDS_NOT) {
		strbuf_addstr(&t, " (");
		for (size_t i = 0; i < sec->nnames; i++) {
			if (i > 0)
				strbuf_addc(&t, ' ');
			echo_name(&t, sec->names[i]);
		}
		strbuf_addc(&t, ')');
	}
	if (t.s == NULL)
		strbuf_add(&t, "", 0);
	sec->text = strbuf_steal(&t);
}

int
imap_section_parse(const char *s, size_t len, bool binary,
		   struct imap_section *sec)
{
	const char *p = s, *e = s + len;
	uint64_t v;

	memset(sec, 0, sizeof(*sec));
	if (p >= e || *p++ != '[')
		return -1;
	while (p < e && *p >= '0' && *p <= '9') {
		if (!take_number(&p, e, &v, UINT32_MAX) || v == 0 ||
		    sec->npart >= IMAP_SECTION_DEPTH_MAX)
			goto bad;
		sec->part[sec->npart++] = (uint32_t)v;
		if (p < e && *p == '.')
			p++;
		else
			break;
	}
	if (p < e && *p != ']') {
		if (binary || (sec->npart > 0 && p[-1] != '.') ||
		    !section_text(&p, e, sec))
			goto bad;
	} else if (sec->npart > 0 && p[-1] == '.')
		goto bad;
	if (p >= e || *p++ != ']')
		goto bad;
	if (p < e && *p == '<') {
		p++;
		if (!take_number(&p, e, &sec->start, UINT64_MAX / 2) ||
		    p >= e || *p++ != '.' ||
		    !take_number(&p, e, &sec->len, UINT64_MAX / 2) ||
		    sec->len == 0 || p >= e || *p++ != '>')
			goto bad;
		sec->partial = true;
	}
	if (p != e)
		goto bad;
	echo_text(sec);
	return 0;
bad:
	imap_section_clear(sec);
	return -1;
}

void
imap_section_clear(struct imap_section *sec)
{
	for (size_t i = 0; i < sec->nnames; i++)
		free(sec->names[i]);
	free(sec->text);
	memset(sec, 0, sizeof(*sec));
}

/* ---- ranges ----------------------------------------------------- */

static void
range_of(struct imap_mime_range *r, const struct imap_mime_part *p,
	 bool header)
{
	r->off = header ? p->hdr : p->body;
	r->end = header ? p->body : p->end;
	r->coff = header ? p->chdr : p->cbody;
	r->cend = header ? p->cbody : p->cend;
	r->cte = header ? IMAP_CTE_IDENTITY : p->cte;
	r->leaf = !header && !p->multipart && !p->message;
}

int
imap_mime_section(const struct imap_mime *m, const struct imap_section *sec,
		  struct imap_mime_range *r)
{
	const struct imap_mime_part *e = m->root, *msg = m->root;

	if (m->header_only &&
	    (sec->npart > 0 || sec->kind == IMAP_SEC_ALL ||
	     sec->kind == IMAP_SEC_TEXT))
		return -1;
	for (size_t i = 0; i < sec->npart; i++) {
		uint32_t n = sec->part[i];

		if (i > 0 && e->message)
			e = e->child;
		if (e->multipart) {
			for (e = e->child; e != NULL && n > 1; n--)
				e = e->next;
			if (e == NULL)
				return -1;
		} else if (n != 1)
			return -1;
	}
	if (sec->npart > 0 && sec->kind != IMAP_SEC_ALL &&
	    sec->kind != IMAP_SEC_MIME) {
		if (!e->message)
			return -1;
		msg = e->child;
	}
	switch (sec->kind) {
	case IMAP_SEC_ALL:
		if (sec->npart == 0) {
			r->off = 0;
			r->end = m->root->end;
			r->coff = 0;
			r->cend = m->csize;
			r->cte = IMAP_CTE_IDENTITY;
			r->leaf = false;
		} else
			range_of(r, e, false);
		break;
	case IMAP_SEC_MIME:
		range_of(r, e, true);
		break;
	case IMAP_SEC_TEXT:
		range_of(r, msg, false);
		break;
	default:
		range_of(r, msg, true);
		break;
	}
	return 0;
}

/* ---- HEADER.FIELDS ---------------------------------------------- */

static bool
listed(const char *name, size_t nlen, char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(names[i]) == nlen &&
		    strncasecmp(names[i], name, nlen) == 0)
			return true;
	return false;
}

/* Lines of s[0..n) to out with LF as CR LF. */
static void
add_crlf(struct strbuf *out, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
			strbuf_addc(out, '\r');
		strbuf_addc(out, s[i]);
	}
}

int
imap_mime_header_fields(const struct imap_mime_src *src,
			const struct imap_mime_range *r,
			char *const *names, size_t nnames, bool not,
			struct strbuf *out)
{
	struct strbuf h = {0};
	uint64_t n = r->end - r->off;
	size_t pos = 0, len;

	if (n > IMAP_MIME_FIELDS_MAX)
		n = IMAP_MIME_FIELDS_MAX;
	if (imap_mime_read_all(src, r->off, (size_t)n, &h) < 0) {
		strbuf_free(&h);
		return -1;
	}
	len = imap_mime_header_len(h.s != NULL ? h.s : "", h.len);
	while (pos < len) {
		size_t s = pos, colon;
		const char *lf;

		if (h.s[pos] == '\n' || h.s[pos] == '\r')
			break;
		do {
			lf = memchr(h.s + pos, '\n', len - pos);
			pos = lf != NULL ? (size_t)(lf - h.s) + 1 : len;
		} while (pos < len && (h.s[pos] == ' ' || h.s[pos] == '\t'));
		for (colon = s; colon < pos && h.s[colon] != ':'; colon++)
			;
		while (colon > s && (h.s[colon - 1] == ' ' ||
				     h.s[colon - 1] == '\t'))
			colon--;
		if (colon >= pos || h.s[s] == ' ' || h.s[s] == '\t')
			continue;
		if (listed(h.s + s, colon - s, names, nnames) != not) {
			add_crlf(out, h.s + s, pos - s);
			if (h.s[pos - 1] != '\n')
				strbuf_addstr(out, "\r\n");
		}
	}
	strbuf_addstr(out, "\r\n");
	strbuf_free(&h);
	return 0;
}

/* ---- streaming and decoding ------------------------------------- */

enum { QP_TEXT, QP_EQ, QP_HEX, QP_EQ_CR };

void
imap_mime_stream_init(struct imap_mime_stream *st,
		      const struct imap_mime_src *src,
		      const struct imap_mime_range *r, bool decode,
		      uint64_t skip, uint64_t limit)
{
	memset(st, 0, sizeof(*st));
	st->src = src;
	st->pos = r->off;
	st->end = r->end;
	st->dec = decode && (r->cte == IMAP_CTE_BASE64 ||
			     r->cte == IMAP_CTE_QP) ? r->cte :
	    IMAP_CTE_IDENTITY;
	st->skip = skip;
	st->left = limit;
}

static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int
b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

static void
put(struct imap_mime_stream *st, unsigned char c)
{
	st->q[st->nq++] = c;
}

static void
step_qp(struct imap_mime_stream *st, unsigned char c)
{
	switch (st->state) {
	case QP_EQ:
		if (hexval(c) >= 0) {
			st->hold[0] = c;
			st->state = QP_HEX;
		} else if (c == '\n')
			st->state = QP_TEXT;
		else if (c == '\r')
			st->state = QP_EQ_CR;
		else {
			put(st, '=');
			st->state = QP_TEXT;
			step_qp(st, c);
		}
		return;
	case QP_HEX:
		st->state = QP_TEXT;
		if (hexval(c) >= 0) {
			put(st, (unsigned char)(hexval(st->hold[0]) * 16 +
						hexval(c)));
			return;
		}
		put(st, '=');
		put(st, st->hold[0]);
		step_qp(st, c);
		return;
	case QP_EQ_CR:
		st->state = QP_TEXT;
		if (c != '\n')
			step_qp(st, c);
		return;
	default:
		break;
	}
	if (c == '=')
		st->state = QP_EQ;
	else if (c == '\n') {
		if (!st->prev_cr)
			put(st, '\r');
		put(st, '\n');
	} else
		put(st, c);
	st->prev_cr = c == '\r';
}

static void
step(struct imap_mime_stream *st, unsigned char c)
{
	int v;

	switch (st->dec) {
	case IMAP_CTE_BASE64:
		if ((v = b64val(c)) < 0)
			return;
		st->acc = (st->acc << 6) | (uint32_t)v;
		if (++st->nacc == 4) {
			put(st, (unsigned char)(st->acc >> 16));
			put(st, (unsigned char)(st->acc >> 8));
			put(st, (unsigned char)st->acc);
			st->nacc = 0;
			st->acc = 0;
		}
		return;
	case IMAP_CTE_QP:
		step_qp(st, c);
		return;
	default:
		if (c == '\n' && !st->prev_cr)
			put(st, '\r');
		put(st, c);
		st->prev_cr = c == '\r';
		return;
	}
}

/* The decoder's last octets, at the end of the range. */
static void
finish(struct imap_mime_stream *st)
{
	if (st->dec == IMAP_CTE_BASE64) {
		if (st->nacc == 2)
			put(st, (unsigned char)(st->acc >> 4));
		else if (st->nacc == 3) {
			put(st, (unsigned char)(st->acc >> 10));
			put(st, (unsigned char)(st->acc >> 2));
		}
		st->nacc = 0;
	} else if (st->dec == IMAP_CTE_QP) {
		if (st->state == QP_EQ)
			put(st, '=');
		else if (st->state == QP_HEX) {
			put(st, '=');
			put(st, st->hold[0]);
		}
		st->state = QP_TEXT;
	}
}

static bool
refill(struct imap_mime_stream *st)
{
	size_t want = sizeof(st->in);
	ssize_t n;

	if (st->pos >= st->end || st->eof)
		return false;
	if (st->end - st->pos < want)
		want = (size_t)(st->end - st->pos);
	n = st->src->read(st->src->arg, st->pos, st->in, want);
	if (n <= 0) {
		st->failed = n < 0;
		st->eof = true;
		return false;
	}
	st->pos += (uint64_t)n;
	st->inlen = (size_t)n;
	st->inpos = 0;
	return true;
}

/* Identity: a run of octets without LF at once. */
static bool
fast_run(struct imap_mime_stream *st, unsigned char *buf, size_t n,
	 size_t *k)
{
	unsigned char *p = st->in + st->inpos, *lf;
	size_t run, t;

	lf = memchr(p, '\n', st->inlen - st->inpos);
	run = lf != NULL ? (size_t)(lf - p) : st->inlen - st->inpos;
	if (run == 0)
		return false;
	if (st->skip > 0) {
		t = run < st->skip ? run : (size_t)st->skip;
		st->skip -= t;
	} else {
		t = run;
		if (t > n - *k)
			t = n - *k;
		if (t > st->left)
			t = (size_t)st->left;
		memcpy(buf + *k, p, t);
		*k += t;
		st->left -= t;
	}
	st->prev_cr = p[t - 1] == '\r';
	st->inpos += t;
	return true;
}

ssize_t
imap_mime_stream_read(struct imap_mime_stream *st, void *out, size_t n)
{
	unsigned char *buf = out;
	size_t k = 0;

	while (k < n && st->left > 0) {
		if (st->qpos < st->nq) {
			unsigned char c = st->q[st->qpos++];

			if (st->skip > 0)
				st->skip--;
			else {
				buf[k++] = c;
				st->left--;
			}
			continue;
		}
		st->nq = st->qpos = 0;
		if (st->inpos >= st->inlen && !refill(st)) {
			if (st->failed)
				return -1;
			finish(st);
			if (st->nq == 0)
				break;
			continue;
		}
		if (st->dec == IMAP_CTE_IDENTITY && fast_run(st, buf, n, &k))
			continue;
		step(st, st->in[st->inpos++]);
	}
	return (ssize_t)k;
}

int
imap_mime_decoded_size(const struct imap_mime_src *src,
		       const struct imap_mime_range *r, uint64_t *size_r)
{
	struct imap_mime_stream *st = xmalloc(sizeof(*st));
	unsigned char buf[8192];
	ssize_t n;

	*size_r = 0;
	imap_mime_stream_init(st, src, r, true, 0, UINT64_MAX);
	while ((n = imap_mime_stream_read(st, buf, sizeof(buf))) > 0)
		*size_r += (uint64_t)n;
	free(st);
	return n < 0 ? -1 : 0;
}

uint64_t
imap_mime_whole_size(const struct imap_mime_src *src, uint64_t claimed)
{
	struct imap_mime_range r = { 0, src->size, 0, 0, IMAP_CTE_IDENTITY,
				     false };
	struct imap_mime_stream *st;
	unsigned char buf[8192];
	uint64_t size = 0;
	ssize_t n;

	if (claimed >= src->size && claimed - src->size <= src->size + 2)
		return claimed;
	st = xmalloc(sizeof(*st));
	imap_mime_stream_init(st, src, &r, false, 0, UINT64_MAX);
	while ((n = imap_mime_stream_read(st, buf, sizeof(buf))) > 0)
		size += (uint64_t)n;
	free(st);
	/* a last line without its end gets one, as POP3 sends it */
	if (src->size > 0 && src->read(src->arg, src->size - 1, buf, 1) == 1 &&
	    buf[0] != '\n')
		size += 2;
	return size;
}

/* ---- RFC 2047 --------------------------------------------------- */

/* s[0..n) in charset to UTF-8, appended; as it is if iconv cannot. */
static void
to_utf8(const char *charset, const char *s, size_t n, struct strbuf *out)
{
	iconv_t cd;
	char *in = (char *)s;
	size_t inleft = n;

	if (strcasecmp(charset, "utf-8") == 0 ||
	    strcasecmp(charset, "us-ascii") == 0 ||
	    (cd = iconv_open("UTF-8", charset)) == (iconv_t)-1) {
		strbuf_add(out, s, n);
		return;
	}
	while (inleft > 0) {
		char tmp[1024], *o = tmp;
		size_t oleft = sizeof(tmp);
		size_t rc = iconv(cd, &in, &inleft, &o, &oleft);

		strbuf_add(out, tmp, sizeof(tmp) - oleft);
		if (rc == (size_t)-1 && errno != E2BIG) {
			/* an invalid or cut sequence: the octet as it is */
			strbuf_addc(out, *in);
			in++;
			inleft--;
		}
	}
	iconv_close(cd);
}

/* One "=?cs?e?text?=" at s: its length, the decoded text into out, or 0
 * if it is not an encoded word (mail/mail_header.h, tolerant). */
static size_t
encoded_word(const char *s, const char *lim, struct strbuf *out)
{
	char charset[64];
	struct strbuf raw = {0};
	size_t n = mail_encoded_word(s, lim, false, charset, sizeof(charset),
				     &raw);

	if (n > 0)
		to_utf8(charset, raw.s != NULL ? raw.s : "", raw.len, out);
	strbuf_free(&raw);
	return n;
}

void
imap_mime_decode_words(const char *s, size_t len, struct strbuf *out)
{
	const char *p = s, *lim = s + len;
	bool after_word = false;

	while (p < lim) {
		size_t n = 0, ws = 0;

		if (p + 1 < lim && p[0] == '=' && p[1] == '?' &&
		    (n = encoded_word(p, lim, out)) > 0) {
			p += n;
			after_word = true;
			continue;
		}
		/* white space between two encoded words is dropped */
		while (p + ws < lim && (p[ws] == ' ' || p[ws] == '\t' ||
					p[ws] == '\r' || p[ws] == '\n'))
			ws++;
		if (ws > 0 && after_word && p + ws + 1 < lim &&
		    p[ws] == '=' && p[ws + 1] == '?') {
			struct strbuf probe = {0};

			if (encoded_word(p + ws, lim, &probe) > 0) {
				strbuf_free(&probe);
				p += ws;
				continue;
			}
			strbuf_free(&probe);
		}
		if (ws > 0) {
			strbuf_add(out, p, ws);
			p += ws;
		} else
			strbuf_addc(out, *p++);
		after_word = false;
	}
	if (out->s == NULL)
		strbuf_add(out, "", 0);
}

void
imap_mime_to_utf8(const char *charset, const char *s, size_t n,
		  struct strbuf *out)
{
	to_utf8(charset, s, n, out);
}
