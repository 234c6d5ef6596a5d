/*
 * The structure walk of imap_mime.h: the stored message read line by
 * line through a fixed buffer, each header kept (bounded) while it is
 * parsed, multipart bodies split at their boundaries, part offsets
 * recorded in the stored and the CRLF form.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/strbuf.h"
#include "lib/xalloc.h"
#include "mail/imap_mime.h"
#include "mail/imap_mime_private.h"

#define LINE_PREFIX 4096	/* of a line, kept for headers/boundaries */
#define BOUNDARY_MAX 200
#define READ_BUF 65536	/* the read buffer: malloc'd, never cleared */

struct line {
	uint64_t start, cstart;	/* offsets of the line */
	uint64_t end, cend;	/* after its LF (or the end of input) */
	bool lf, crlf;		/* ends in LF; in CR LF */
	size_t plen;		/* octets of p (the line without LF) */
	char p[LINE_PREFIX];
};

struct reader {
	const struct imap_mime_src *src;
	unsigned char *buf;	/* READ_BUF octets; only [0, buflen) read */
	uint64_t bufoff;
	size_t buflen, idx;
	uint64_t pos, cpos;	/* the next line */
	bool eof, failed, again;
	uint64_t nlines;	/* lines delivered */
	bool prev_crlf;		/* the line before the current one */
	bool cur_crlf;
	struct line l;
};

struct walk {
	struct reader r;
	struct imap_mime *m;
	const char *bstack[IMAP_MIME_DEPTH_MAX + 2];
	size_t bdepth;
};

static bool
fill(struct reader *r)
{
	ssize_t n;

	if (r->eof || r->failed)
		return false;
	r->bufoff += r->buflen;
	r->buflen = r->idx = 0;
	if (r->bufoff >= r->src->size) {
		r->eof = true;
		return false;
	}
	n = r->src->read(r->src->arg, r->bufoff, r->buf, READ_BUF);
	if (n < 0)
		r->failed = true;
	if (n <= 0) {
		r->eof = true;
		return false;
	}
	r->buflen = (size_t)n;
	return true;
}

/* The next line into r->l; false at the end of input. */
static bool
next_line(struct reader *r)
{
	struct line *l = &r->l;
	unsigned char last = 0;
	bool any = false;

	if (r->again) {
		r->again = false;
		r->nlines++;
		return true;
	}
	l->start = r->pos;
	l->cstart = r->cpos;
	l->plen = 0;
	l->lf = false;
	for (;;) {
		unsigned char *p, *lf;
		size_t avail, take;

		if (r->idx >= r->buflen && !fill(r))
			break;
		p = r->buf + r->idx;
		avail = r->buflen - r->idx;
		lf = memchr(p, '\n', avail);
		take = lf != NULL ? (size_t)(lf - p) : avail;
		if (take > 0) {
			size_t k = take;

			if (k > LINE_PREFIX - l->plen)
				k = LINE_PREFIX - l->plen;
			memcpy(l->p + l->plen, p, k);
			l->plen += k;
			last = p[take - 1];
			any = true;
		}
		r->idx += take + (lf != NULL);
		r->pos += take + (lf != NULL);
		if (lf != NULL) {
			l->lf = true;
			any = true;
			break;
		}
	}
	if (!any)
		return false;
	l->crlf = l->lf && last == '\r';
	if (l->crlf && l->plen > 0 && l->p[l->plen - 1] == '\r')
		l->plen--;
	l->end = r->pos;
	r->cpos += (l->end - l->start) + (l->lf && !l->crlf ? 1 : 0);
	l->cend = r->cpos;
	r->prev_crlf = r->cur_crlf;
	r->cur_crlf = l->crlf;
	r->nlines++;
	return true;
}

/* The line just read is read again by the next next_line(). */
static void
unread_line(struct reader *r)
{
	r->again = true;
	r->nlines--;
}

/* Which boundary of the stack the line is ("--b" or "--b--"): its index,
 * or -1; *close_r: the closing form. */
static int
boundary_of(const struct walk *w, const struct line *l, bool *close_r)
{
	for (size_t i = w->bdepth; i-- > 0;) {
		size_t bl = strlen(w->bstack[i]), k;

		if (l->plen < bl + 2 || l->p[0] != '-' || l->p[1] != '-' ||
		    memcmp(l->p + 2, w->bstack[i], bl) != 0)
			continue;
		k = bl + 2;
		*close_r = l->plen >= k + 2 && l->p[k] == '-' &&
		    l->p[k + 1] == '-';
		if (*close_r)
			k += 2;
		while (k < l->plen && (l->p[k] == ' ' || l->p[k] == '\t' ||
				       l->p[k] == '\r'))
			k++;
		if (k == l->plen && l->plen < LINE_PREFIX)
			return (int)i;
	}
	return -1;
}

/* Ends part p where line l (a boundary, or NULL: the end of input)
 * starts; the line end before a boundary belongs to it (RFC 2046 5.1.1). */
static void
end_part(struct walk *w, struct imap_mime_part *p, const struct line *l,
	 uint64_t body_lines)
{
	struct reader *r = &w->r;

	if (l == NULL) {
		p->end = r->pos;
		p->cend = r->cpos;
	} else if (l->start > p->body) {
		p->end = l->start - (r->prev_crlf ? 2 : 1);
		p->cend = l->cstart - 2;
	} else {
		p->end = p->body;
		p->cend = p->cbody;
	}
	if (p->end < p->body || p->cend < p->cbody) {
		p->end = p->body;
		p->cend = p->cbody;
	}
	p->lines = body_lines;
}

/* Skips lines to a boundary of the stack (left unread) or the end;
 * returns the boundary's index or -1, with the lines skipped. */
static int
skip_to_boundary(struct walk *w, bool *close_r, uint64_t *lines_r)
{
	uint64_t n = 0;
	int b;

	while (next_line(&w->r)) {
		if ((b = boundary_of(w, &w->r.l, close_r)) >= 0) {
			unread_line(&w->r);
			*lines_r = n;
			return b;
		}
		n++;
	}
	*lines_r = n;
	return -1;
}

static int walk_entity(struct walk *w, struct imap_mime_part *p,
		       size_t depth, bool digest, bool is_msg);

/* The header of p: lines to the empty one, kept (bounded) in hdr. */
static void
read_header(struct walk *w, struct imap_mime_part *p, struct strbuf *hdr)
{
	struct reader *r = &w->r;
	bool close;

	p->hdr = r->pos;
	p->chdr = r->cpos;
	while (next_line(r)) {
		if (w->bdepth > 0 && boundary_of(w, &r->l, &close) >= 0) {
			unread_line(r);
			break;
		}
		if (r->l.plen == 0 && r->l.lf)
			break;
		if (hdr->len + r->l.plen + 1 <= IMAP_MIME_HEADER_MAX) {
			strbuf_add(hdr, r->l.p, r->l.plen);
			strbuf_addc(hdr, '\n');
		}
	}
	p->body = r->again ? r->l.start : r->pos;
	p->cbody = r->again ? r->l.cstart : r->cpos;
}

static struct imap_mime_part *
new_part(struct walk *w)
{
	w->m->nparts++;
	return xcalloc(1, sizeof(struct imap_mime_part));
}

/* A multipart body: preamble, parts, epilogue. */
static void
walk_multipart(struct walk *w, struct imap_mime_part *p, size_t depth,
	       const char *boundary)
{
	bool digest = strcasecmp(p->subtype, "digest") == 0, close = false;
	struct imap_mime_part **tail = &p->child;
	uint64_t start_lines = w->r.nlines, dummy;
	int b;

	w->bstack[w->bdepth++] = boundary;
	b = skip_to_boundary(w, &close, &dummy);
	while (b == (int)w->bdepth - 1 && !close) {
		struct imap_mime_part *c;

		next_line(&w->r);	/* the delimiter */
		if (w->m->nparts >= IMAP_MIME_PARTS_MAX) {
			b = skip_to_boundary(w, &close, &dummy);
			continue;
		}
		c = new_part(w);
		*tail = c;
		tail = &c->next;
		p->nchildren++;
		b = walk_entity(w, c, depth + 1, digest, false);
		if (b >= 0) {
			next_line(&w->r);
			boundary_of(w, &w->r.l, &close);
			unread_line(&w->r);
		}
	}
	if (b == (int)w->bdepth - 1 && close) {
		next_line(&w->r);	/* the close delimiter */
		b = skip_to_boundary(w, &close, &dummy);
	}
	w->bdepth--;
	p->multipart = p->nchildren > 0;
	if (b >= 0) {
		next_line(&w->r);
		end_part(w, p, &w->r.l, w->r.nlines - 1 - start_lines);
		unread_line(&w->r);
	} else
		end_part(w, p, NULL, w->r.nlines - start_lines);
}

/* A leaf body, or one treated as such: to the next boundary. */
static int
walk_leaf(struct walk *w, struct imap_mime_part *p)
{
	uint64_t lines;
	bool close;
	int b = skip_to_boundary(w, &close, &lines);

	if (b >= 0) {
		next_line(&w->r);
		end_part(w, p, &w->r.l, lines);
		unread_line(&w->r);
	} else
		end_part(w, p, NULL, lines);
	return b;
}

/* message/rfc822: the body is a message. */
static int
walk_message(struct walk *w, struct imap_mime_part *p, size_t depth)
{
	struct imap_mime_part *c = new_part(w);
	uint64_t start_lines = w->r.nlines;
	bool close;
	int b;

	p->child = c;
	p->message = true;
	b = walk_entity(w, c, depth + 1, false, true);
	if (b >= 0) {
		next_line(&w->r);
		boundary_of(w, &w->r.l, &close);
		end_part(w, p, &w->r.l, w->r.nlines - 1 - start_lines);
		unread_line(&w->r);
	} else
		end_part(w, p, NULL, w->r.nlines - start_lines);
	return b;
}

/*
 * One entity (a message or a part): its header, then its body by its
 * type. Returns the index of the boundary that ended it (left unread),
 * or -1 at the end of input.
 */
static int
walk_entity(struct walk *w, struct imap_mime_part *p, size_t depth,
	    bool digest, bool is_msg)
{
	struct strbuf hdr = {0};
	char boundary[BOUNDARY_MAX + 1];
	bool deep = depth >= IMAP_MIME_DEPTH_MAX ||
	    w->m->nparts >= IMAP_MIME_PARTS_MAX;
	bool close;
	int b;

	read_header(w, p, &hdr);
	imap_mime_part_fields(p, hdr.s != NULL ? hdr.s : "", hdr.len, digest,
			      boundary, sizeof(boundary));
	if (is_msg) {
		struct strbuf e = {0};

		imap_mime_render_envelope(hdr.s != NULL ? hdr.s : "", hdr.len,
					  &e);
		p->envelope = strbuf_steal(&e);
	}
	strbuf_free(&hdr);
	if (w->r.again) {	/* a boundary ended the header */
		b = boundary_of(w, &w->r.l, &close);
		p->end = p->body;
		p->cend = p->cbody;
		return b;
	}
	if (!deep && strcasecmp(p->type, "multipart") == 0 &&
	    boundary[0] != '\0') {
		walk_multipart(w, p, depth, boundary);
		if (w->r.again)
			return boundary_of(w, &w->r.l, &close);
		return -1;
	}
	if (!deep && strcasecmp(p->type, "message") == 0 &&
	    (strcasecmp(p->subtype, "rfc822") == 0 ||
	     strcasecmp(p->subtype, "global") == 0))
		return walk_message(w, p, depth);
	return walk_leaf(w, p);
}

/* The start and the end of both parses: a walk over src with its root. */
static struct walk *
parse_start(const struct imap_mime_src *src)
{
	struct walk *w = xcalloc(1, sizeof(*w));

	w->r.src = src;
	w->r.buf = xmalloc(READ_BUF);	/* not cleared: fill() writes first */
	w->m = xcalloc(1, sizeof(*w->m));
	w->m->root = new_part(w);
	return w;
}

static int
parse_end(struct walk *w, struct imap_mime *m, struct imap_mime **m_r)
{
	int ret = w->r.failed ? -1 : 0;

	free(w->r.buf);
	free(w);
	if (ret < 0)
		imap_mime_free(&m);
	*m_r = m;
	return ret;
}

static int
parse_header(const struct imap_mime_src *src, bool envelope,
	     struct imap_mime **m_r)
{
	struct walk *w = parse_start(src);
	struct imap_mime *m = w->m;
	struct strbuf hdr = {0}, e = {0};
	char boundary[BOUNDARY_MAX + 1];

	m->header_only = true;
	read_header(w, m->root, &hdr);
	imap_mime_part_fields(m->root, hdr.s != NULL ? hdr.s : "", hdr.len,
			      false, boundary, sizeof(boundary));
	if (envelope) {
		imap_mime_render_envelope(hdr.s != NULL ? hdr.s : "", hdr.len,
					  &e);
		m->root->envelope = strbuf_steal(&e);
	}
	m->root->end = m->root->body;
	m->root->cend = m->root->cbody;
	strbuf_free(&hdr);
	return parse_end(w, m, m_r);
}

int
imap_mime_parse_header(const struct imap_mime_src *src,
		       struct imap_mime **m_r)
{
	return parse_header(src, true, m_r);
}

int
imap_mime_parse_header_noenv(const struct imap_mime_src *src,
			     struct imap_mime **m_r)
{
	return parse_header(src, false, m_r);
}

int
imap_mime_parse(const struct imap_mime_src *src, struct imap_mime **m_r)
{
	struct walk *w = parse_start(src);
	struct imap_mime *m = w->m;

	walk_entity(w, m->root, 0, false, true);
	/* the root ends at the end of input, whatever ended its body */
	while (next_line(&w->r))
		;
	m->root->end = w->r.pos;
	m->root->cend = w->r.cpos;
	m->csize = w->r.cpos;
	return parse_end(w, m, m_r);
}

static void
free_params(struct imap_mime_param *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].value);
	}
	free(v);
}

static void
free_part(struct imap_mime_part *p)
{
	while (p != NULL) {
		struct imap_mime_part *next = p->next;

		free_part(p->child);
		free(p->type);
		free(p->subtype);
		free_params(p->params, p->nparams);
		free_params(p->disp_params, p->ndisp_params);
		free(p->id);
		free(p->desc);
		free(p->cte_name);
		free(p->md5);
		free(p->disp);
		free(p->lang);
		free(p->loc);
		free(p->envelope);
		free(p);
		p = next;
	}
}

void
imap_mime_free(struct imap_mime **m)
{
	if (*m == NULL)
		return;
	free_part((*m)->root);
	free(*m);
	*m = NULL;
}

int
imap_mime_read_all(const struct imap_mime_src *src, uint64_t off, size_t n,
		   struct strbuf *out)
{
	strbuf_grow(out, n);
	while (n > 0 && off < src->size) {
		ssize_t k = src->read(src->arg, off, out->s + out->len, n);

		if (k < 0)
			return -1;
		if (k == 0)
			break;
		out->len += (size_t)k;
		out->s[out->len] = '\0';
		off += (uint64_t)k;
		n -= (size_t)k;
	}
	return 0;
}
