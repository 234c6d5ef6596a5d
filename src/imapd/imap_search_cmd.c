/*
 * SEARCH and UID SEARCH (RFC 9051 section 6.4.4, RFC 3501) with the
 * ESEARCH return options MIN MAX ALL COUNT SAVE (RFC 4731, RFC 9051) and
 * SEARCHRES (RFC 5182: SAVE keeps the result as UIDs in s->saved, "$"
 * uses it). The keys are parsed and evaluated by mail/imap_search.h;
 * a message's file is opened only when a key needs its content.
 * IMAP4rev2 sessions get ESEARCH, rev1 ones SEARCH unless RETURN is
 * given.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "imapd/imap_fetch_private.h"
#include "imapd/imap_hcache_io.h"
#include "imapd/imap_private.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"
#include "mail/imap_mime.h"
#include "mail/imap_search.h"
#include "mail/imap_seq.h"
#include "store/imap_store.h"

_Static_assert(IMAP_SEARCH_F_ANSWERED == IMAP_F_ANSWERED &&
	       IMAP_SEARCH_F_FLAGGED == IMAP_F_FLAGGED &&
	       IMAP_SEARCH_F_DELETED == IMAP_F_DELETED &&
	       IMAP_SEARCH_F_SEEN == IMAP_F_SEEN &&
	       IMAP_SEARCH_F_DRAFT == IMAP_F_DRAFT &&
	       IMAP_SEARCH_F_FORWARDED == IMAP_F_FORWARDED,
	       "search flag bits are the store's");

#define RET_MIN 0x01u
#define RET_MAX 0x02u
#define RET_ALL 0x04u
#define RET_COUNT 0x08u
#define RET_SAVE 0x10u

static int
keyword_index(void *arg, const char *name)
{
	return imap_folder_keyword(arg, name, false);
}

/* "RETURN (opts)": the mask; false if malformed. */
static bool
return_opts(const struct imap_arg *a, unsigned *mask)
{
	static const struct {
		const char *name;
		unsigned bit;
	} opts[] = {
		{ "MIN", RET_MIN }, { "MAX", RET_MAX }, { "ALL", RET_ALL },
		{ "COUNT", RET_COUNT }, { "SAVE", RET_SAVE },
	};

	if (a->type != IMAP_ARG_LIST)
		return false;
	*mask = 0;
	for (size_t i = 0; i < a->nlist; i++) {
		size_t k;

		for (k = 0; k < sizeof(opts) / sizeof(opts[0]); k++)
			if (imap_arg_atom_is(&a->list[i], opts[k].name))
				break;
		if (k == sizeof(opts) / sizeof(opts[0]))
			return false;
		*mask |= opts[k].bit;
	}
	if (*mask == 0)
		*mask = RET_ALL;
	return true;
}

/*
 * One message with only its header needed: from the folder's header
 * cache, or read from the file (and added to the cache). 1 if it
 * matches, 0 if not, -1 on an evaluation error.
 */
static int
eval_header(struct imap_folder *f, size_t i, struct imap_hcache_io *hc,
	    const struct imap_search_node *t,
	    const struct imap_search_ctx *ctx, struct imap_search_msg *sm)
{
	const struct imap_hcache_ent *e = imap_hcache_get(hc,
							  f->msgs[i].name);
	struct imap_mime_src src = { imap_fd_read, NULL, 0 };
	struct strbuf hdr = {0};
	int fd, r;

	if (e != NULL) {
		sm->hdr = e->hdr;
		sm->hdrlen = e->hlen;
		return imap_search_eval(t, ctx, sm);
	}
	if ((fd = imap_folder_open_msg(f, i, &src.size)) < 0)
		return imap_search_eval(t, ctx, sm);	/* no content */
	src.arg = &fd;
	sm->src = &src;
	if (imap_search_read_header(&src, &hdr) == 0) {
		imap_hcache_put(hc, f->msgs[i].name, hdr.s, hdr.len);
		sm->hdr = hdr.s;
		sm->hdrlen = hdr.len;
	}
	r = imap_search_eval(t, ctx, sm);
	close(fd);
	strbuf_free(&hdr);
	return r;
}

static int
eval_one(struct imap_folder *f, size_t i, bool content,
	 struct imap_hcache_io *hc, const struct imap_search_node *t,
	 const struct imap_search_ctx *ctx, struct imap_search_msg *sm)
{
	struct imap_mime_src src = { imap_fd_read, NULL, 0 };
	int fd = -1, r;

	if (hc != NULL && !f->msgs[i].gone)
		return eval_header(f, i, hc, t, ctx, sm);
	if (content && !f->msgs[i].gone &&
	    (fd = imap_folder_open_msg(f, i, &src.size)) >= 0) {
		src.arg = &fd;
		sm->src = &src;
	}
	r = imap_search_eval(t, ctx, sm);
	if (fd >= 0)
		close(fd);
	return r;
}

/* Evaluates the tree over the folder: the matching indexes. Header-only
 * searches go through the folder's header cache. */
static int
run(struct imap_session *s, const struct imap_search_node *t,
    size_t **idx_r, size_t *n_r)
{
	struct imap_folder *f = s->folder;
	struct imap_search_ctx ctx = {
		(uint32_t)f->n, f->n > 0 ? f->msgs[f->n - 1].uid : 0,
		s->saved, s->nsaved,
	};
	bool content = imap_search_needs_content(t);
	struct imap_hcache_io hc;
	bool cached = content && !imap_search_needs_body(t);
	bool dates = imap_search_needs_date(t);
	size_t *idx = xreallocarray(NULL, f->n > 0 ? f->n : 1, sizeof(*idx));
	size_t n = 0;
	int r = 0;

	if (cached)
		imap_hcache_load(&hc, imap_folder_path(f));
	for (size_t i = 0; i < f->n && r >= 0; i++) {
		const struct imap_msg *m = &f->msgs[i];
		struct imap_search_msg sm = {
			(uint32_t)(i + 1), m->uid, m->flags, m->keywords,
			m->recent, m->size, 0, NULL, NULL, 0,
		};

		if (dates)	/* a stat: only when a key needs it */
			sm.internaldate = imap_folder_internaldate(f, i);

		r = eval_one(f, i, content, cached ? &hc : NULL, t, &ctx, &sm);
		if (r > 0)
			idx[n++] = i;
	}
	if (cached)
		imap_hcache_finish(&hc);
	if (r < 0) {
		free(idx);
		return -1;
	}
	*idx_r = idx;
	*n_r = n;
	return 0;
}

/* SAVE: the UIDs of the result (only MIN/MAX of it when those are the
 * other options, RFC 5182 section 2.4). */
static void
save(struct imap_session *s, const size_t *idx, size_t n, unsigned mask)
{
	const struct imap_folder *f = s->folder;
	size_t k = 0;

	free(s->saved);
	s->saved = xreallocarray(NULL, n > 0 ? n : 1, sizeof(uint32_t));
	if ((mask & (RET_MIN | RET_MAX)) && !(mask & (RET_ALL | RET_COUNT))) {
		if (n > 0 && (mask & RET_MIN))
			s->saved[k++] = f->msgs[idx[0]].uid;
		if (n > 0 && (mask & RET_MAX) && (k == 0 || n > 1))
			s->saved[k++] = f->msgs[idx[n - 1]].uid;
	} else
		for (k = 0; k < n; k++)
			s->saved[k] = f->msgs[idx[k]].uid;
	s->nsaved = k;
}

static void
write_esearch(struct imap_session *s, const struct imap_command *c,
	      const uint32_t *v, size_t n, unsigned mask)
{
	struct evbuffer *out = imap_out(s);
	struct strbuf set = { 0 };

	/* a tag is atom characters: quoted as it is */
	evbuffer_add_printf(out, "* ESEARCH (TAG \"%s\")%s", c->tag,
			    c->uid ? " UID" : "");
	if (n > 0 && (mask & RET_MIN))
		evbuffer_add_printf(out, " MIN %u", v[0]);
	if (n > 0 && (mask & RET_MAX))
		evbuffer_add_printf(out, " MAX %u", v[n - 1]);
	if (mask & RET_COUNT)
		evbuffer_add_printf(out, " COUNT %zu", n);
	if (n > 0 && (mask & RET_ALL)) {
		imap_seqset_format(v, n, &set);
		evbuffer_add_printf(out, " ALL %s", set.s);
	}
	evbuffer_add_printf(out, "\r\n");
	strbuf_free(&set);
}

static void
respond(struct imap_session *s, const struct imap_command *c,
	const size_t *idx, size_t n, unsigned mask, bool esearch)
{
	uint32_t *v = xreallocarray(NULL, n > 0 ? n : 1, sizeof(*v));
	struct evbuffer *out = imap_out(s);

	for (size_t i = 0; i < n; i++)
		v[i] = c->uid ? s->folder->msgs[idx[i]].uid :
		    (uint32_t)(idx[i] + 1);
	if (mask & RET_SAVE)
		save(s, idx, n, mask);
	if (esearch && mask != RET_SAVE)
		write_esearch(s, c, v, n, mask);
	else if (!esearch) {
		evbuffer_add_printf(out, "* SEARCH");
		for (size_t i = 0; i < n; i++)
			evbuffer_add_printf(out, " %u", v[i]);
		evbuffer_add_printf(out, "\r\n");
	}
	free(v);
}

void
imap_cmd_search(struct imap_session *s, const struct imap_command *c)
{
	struct imap_search_node *t;
	const char *err;
	unsigned mask = RET_ALL;
	bool esearch = s->rev2;
	size_t first = 0, *idx, n;
	int r;

	if (c->nargs >= 2 && imap_arg_atom_is(&c->args[0], "RETURN")) {
		if (!return_opts(&c->args[1], &mask)) {
			imap_done(s, "BAD", NULL, "Invalid RETURN options");
			return;
		}
		esearch = true;
		first = 2;
	}
	r = imap_search_parse(c->args + first, c->nargs - first, &t, &err);
	if (r != IMAP_SEARCH_OK && (mask & RET_SAVE))
		s->nsaved = 0;	/* a failed SAVE leaves "$" empty */
	if (r == IMAP_SEARCH_BADCHARSET) {
		imap_done(s, "NO", "BADCHARSET (UTF-8 US-ASCII)",
			  "Unsupported charset");
		return;
	}
	if (r != IMAP_SEARCH_OK) {
		imap_done(s, "BAD", NULL, "%s", err);
		return;
	}
	imap_search_keywords(t, keyword_index, s->folder);
	if (run(s, t, &idx, &n) < 0) {
		imap_search_free(&t);
		imap_done(s, "NO", "SERVERBUG", "Cannot read a message");
		return;
	}
	imap_search_free(&t);
	respond(s, c, idx, n, mask, esearch);
	free(idx);
	imap_sync_report(s, false);
	imap_done(s, "OK", NULL, "SEARCH completed");
}
