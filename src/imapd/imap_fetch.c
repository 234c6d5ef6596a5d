/*
 * FETCH and UID FETCH (RFC 9051 section 6.4.5, RFC 3501, RFC 3516
 * BINARY): every item, the macros ALL FAST FULL, sections and partials,
 * streamed from the message file: a literal is written in chunks while
 * the output buffer is below IMAP_OUTPUT_HIGH, and the command resumes
 * (s->cont) when it drains, so a message of any size costs a fixed
 * buffer. The structure of a message (mail/imap_mime.h) is walked once
 * per message, in bounded memory. SEARCH is in imap_search_cmd.c; both
 * are in this file's command table.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "imapd/imap_fetch_private.h"
#include "imapd/imap_mbox.h"
#include "imapd/imap_private.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"
#include "mail/imap_mime.h"
#include "store/imap_store.h"

#define FETCH_ITEMS_MAX 64
#define CHUNK (64 * 1024)

enum fitem_kind {
	FI_UID, FI_FLAGS, FI_INTERNALDATE, FI_SIZE, FI_ENVELOPE,
	FI_BODYSTRUCTURE, FI_BODY, FI_SECTION, FI_BINARY, FI_BINARY_SIZE,
};

struct fitem {
	enum fitem_kind kind;
	struct imap_section sec;	/* SECTION BINARY BINARY_SIZE */
	bool peek;
	const char *alias;	/* RFC822, RFC822.HEADER, RFC822.TEXT */
};

struct fetch {
	struct fitem items[FETCH_ITEMS_MAX];
	size_t nitems;
	bool content;		/* an item reads the file */
	bool header_only;	/* ... but only the message's header */
	bool whole_only;	/* ... or only the whole message: no walk */
	bool envelope;		/* ENVELOPE is asked for */
	bool want_flags;
	size_t *idx;
	size_t n, pos;		/* messages, the one being written */
	size_t item;		/* the next item of it */
	bool started;		/* "* n FETCH (" written */
	bool seen_set;		/* \Seen set by this FETCH: FLAGS at the end */
	int fd;
	struct imap_mime_src src;
	struct imap_mime *mime;
	struct imap_mime_stream *st;	/* a literal being streamed */
	bool padding;		/* ... and its file ended early */
	bool gone;		/* a message could not be read */
	bool unknown_cte;
};

/* imap_fetch_private.h */
ssize_t
imap_fd_read(void *arg, uint64_t off, void *buf, size_t n)
{
	int fd = *(int *)arg;
	ssize_t r;

	do
		r = pread(fd, buf, n, (off_t)off);
	while (r < 0 && errno == EINTR);
	return r;
}

/* ---- items -------------------------------------------------------- */

static const struct {
	const char *name;
	enum fitem_kind kind;
} plain_items[] = {
	{ "UID", FI_UID }, { "FLAGS", FI_FLAGS },
	{ "INTERNALDATE", FI_INTERNALDATE }, { "RFC822.SIZE", FI_SIZE },
	{ "ENVELOPE", FI_ENVELOPE }, { "BODYSTRUCTURE", FI_BODYSTRUCTURE },
	{ "BODY", FI_BODY },
};

static bool
add_item(struct fetch *f, enum fitem_kind k)
{
	if (f->nitems >= FETCH_ITEMS_MAX)
		return false;
	memset(&f->items[f->nitems], 0, sizeof(f->items[0]));
	f->items[f->nitems++].kind = k;
	if (k == FI_FLAGS)
		f->want_flags = true;
	if (k >= FI_ENVELOPE)
		f->content = true;
	return true;
}

/* RFC822, RFC822.HEADER, RFC822.TEXT: the BODY[] forms they stand for. */
static bool
rfc822_item(struct fetch *f, const char *w)
{
	const char *spec;
	bool peek = false;

	if (strcasecmp(w, "RFC822") == 0)
		spec = "[]";
	else if (strcasecmp(w, "RFC822.HEADER") == 0) {
		spec = "[HEADER]";
		peek = true;
	} else if (strcasecmp(w, "RFC822.TEXT") == 0)
		spec = "[TEXT]";
	else
		return false;
	if (!add_item(f, FI_SECTION))
		return false;
	imap_section_parse(spec, strlen(spec), false,
			   &f->items[f->nitems - 1].sec);
	f->items[f->nitems - 1].peek = peek;
	f->items[f->nitems - 1].alias = strchr(w, '.') == NULL ? "RFC822" :
	    strcasecmp(w, "RFC822.HEADER") == 0 ? "RFC822.HEADER" :
	    "RFC822.TEXT";
	return true;
}

/* BODY[..] BODY.PEEK[..] BINARY[..] BINARY.PEEK[..] BINARY.SIZE[..] */
static bool
section_item(struct fetch *f, const char *w, size_t len)
{
	static const struct {
		const char *prefix;
		enum fitem_kind kind;
		bool peek;
	} forms[] = {
		{ "BODY.PEEK", FI_SECTION, true },
		{ "BODY", FI_SECTION, false },
		{ "BINARY.PEEK", FI_BINARY, true },
		{ "BINARY.SIZE", FI_BINARY_SIZE, true },
		{ "BINARY", FI_BINARY, false },
	};

	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		size_t pl = strlen(forms[i].prefix);
		struct fitem *it;

		if (len <= pl || strncasecmp(w, forms[i].prefix, pl) != 0 ||
		    w[pl] != '[')
			continue;
		if (!add_item(f, forms[i].kind))
			return false;
		it = &f->items[f->nitems - 1];
		it->peek = forms[i].peek;
		if (imap_section_parse(w + pl, len - pl,
				       forms[i].kind != FI_SECTION,
				       &it->sec) < 0 ||
		    (forms[i].kind == FI_BINARY_SIZE && it->sec.partial)) {
			f->nitems--;
			return false;
		}
		return true;
	}
	return false;
}

/* Whether every item that reads the file wants the whole message
 * (BODY[], RFC822, BINARY[]): then the file is streamed without a walk,
 * its CRLF size taken from the store (RFC822.SIZE). */
static bool
whole_items_only(const struct fetch *f)
{
	for (size_t i = 0; i < f->nitems; i++) {
		const struct fitem *it = &f->items[i];

		if (it->kind == FI_ENVELOPE || it->kind == FI_BODY ||
		    it->kind == FI_BODYSTRUCTURE)
			return false;
		if (it->kind >= FI_SECTION &&
		    (it->sec.npart > 0 || it->sec.kind != IMAP_SEC_ALL))
			return false;
	}
	return true;
}

/* Whether every item that reads the file needs only the header. */
static bool
header_items_only(const struct fetch *f)
{
	for (size_t i = 0; i < f->nitems; i++) {
		const struct fitem *it = &f->items[i];

		if (it->kind == FI_BODY || it->kind == FI_BODYSTRUCTURE ||
		    it->kind == FI_BINARY || it->kind == FI_BINARY_SIZE)
			return false;
		if (it->kind == FI_SECTION &&
		    (it->sec.npart > 0 || it->sec.kind == IMAP_SEC_ALL ||
		     it->sec.kind == IMAP_SEC_TEXT))
			return false;
	}
	return true;
}

static bool
one_item(struct fetch *f, const struct imap_arg *a)
{
	if (a->type != IMAP_ARG_ATOM)
		return false;
	for (size_t i = 0; i < sizeof(plain_items) / sizeof(plain_items[0]);
	     i++)
		if (strcasecmp(a->str, plain_items[i].name) == 0)
			return add_item(f, plain_items[i].kind);
	return rfc822_item(f, a->str) || section_item(f, a->str, a->len);
}

/* The items argument: a macro, one item, or a list. */
static bool
parse_items(struct fetch *f, const struct imap_arg *a, bool uid)
{
	static const enum fitem_kind all[] = {
		FI_FLAGS, FI_INTERNALDATE, FI_SIZE, FI_ENVELOPE, FI_BODY,
	};
	size_t nmacro = 0;

	if (uid)
		add_item(f, FI_UID);
	if (a->type == IMAP_ARG_ATOM) {
		if (strcasecmp(a->str, "ALL") == 0)
			nmacro = 4;
		else if (strcasecmp(a->str, "FAST") == 0)
			nmacro = 3;
		else if (strcasecmp(a->str, "FULL") == 0)
			nmacro = 5;
		for (size_t i = 0; i < nmacro; i++)
			add_item(f, all[i]);
		return nmacro > 0 || one_item(f, a);
	}
	if (a->type != IMAP_ARG_LIST || a->nlist == 0)
		return false;
	for (size_t i = 0; i < a->nlist; i++) {
		if (uid && a->list[i].type == IMAP_ARG_ATOM &&
		    strcasecmp(a->list[i].str, "UID") == 0)
			continue;	/* already there */
		if (!one_item(f, &a->list[i]))
			return false;
	}
	return true;
}

/* ---- the state ---------------------------------------------------- */

static void
close_msg(struct fetch *f)
{
	free(f->st);
	f->st = NULL;
	f->padding = false;
	imap_mime_free(&f->mime);
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
}

static void
fetch_free(struct fetch *f)
{
	if (f == NULL)
		return;
	close_msg(f);
	for (size_t i = 0; i < f->nitems; i++)
		imap_section_clear(&f->items[i].sec);
	free(f->idx);
	free(f);
}

static void
fetch_cleanup(struct imap_session *s)
{
	fetch_free(s->cmd_state);
	s->cmd_state = NULL;
}

/* ---- writing one message ------------------------------------------ */

static void
write_date(struct evbuffer *out, time_t t)
{
	struct tm tm;
	char buf[64];
	long off;

	localtime_r(&t, &tm);
	off = tm.tm_gmtoff / 60;
	strftime(buf, sizeof(buf), "%d-%b-%Y %H:%M:%S", &tm);
	evbuffer_add_printf(out, "INTERNALDATE \"%s %c%02ld%02ld\"", buf,
			    off < 0 ? '-' : '+', labs(off) / 60, labs(off) % 60);
}

/* Sets \Seen (BODY[] and the like, not PEEK, not in EXAMINE). */
static void
mark_seen(struct imap_session *s, struct fetch *f, size_t i)
{
	struct imap_msg *m = &s->folder->msgs[i];

	if (s->folder->readonly || (m->flags & IMAP_F_SEEN) || m->gone)
		return;
	if (imap_folder_set_flags(s->folder, i, m->flags | IMAP_F_SEEN,
				  m->keywords) == 0)
		f->seen_set = true;
}

/* Opens the message and walks its structure; false if it is gone. */
static bool
open_msg(struct imap_session *s, struct fetch *f, size_t i)
{
	uint64_t fsize;

	f->fd = imap_folder_open_msg(s->folder, i, &fsize);
	if (f->fd < 0)
		return false;
	f->src.read = imap_fd_read;
	f->src.arg = &f->fd;
	f->src.size = fsize;
	if (f->whole_only)
		return true;
	if ((!f->header_only ? imap_mime_parse(&f->src, &f->mime) :
	     f->envelope ? imap_mime_parse_header(&f->src, &f->mime) :
	     imap_mime_parse_header_noenv(&f->src, &f->mime)) < 0) {
		close_msg(f);
		return false;
	}
	return true;
}

static void
write_struct(struct evbuffer *out, const char *name, struct fetch *f,
	     bool ext)
{
	struct strbuf b = { 0 };

	if (strcmp(name, "ENVELOPE") == 0)
		imap_mime_envelope(f->mime, &b);
	else
		imap_mime_bodystructure(f->mime, ext, &b);
	evbuffer_add_printf(out, "%s ", name);
	evbuffer_add(out, b.s, b.len);
	strbuf_free(&b);
}

/* The name a section item is echoed with. */
static void
write_section_name(struct evbuffer *out, const struct fitem *it)
{
	if (it->alias != NULL) {
		evbuffer_add_printf(out, "%s ", it->alias);
		return;
	}
	evbuffer_add_printf(out, "%s[%s]",
			    it->kind == FI_SECTION ? "BODY" :
			    it->kind == FI_BINARY ? "BINARY" : "BINARY.SIZE",
			    it->sec.text);
	if (it->sec.partial)
		evbuffer_add_printf(out, "<%llu>",
				    (unsigned long long)it->sec.start);
	evbuffer_add(out, " ", 1);
}

/*
 * A section item: its name and either the whole value (small) or the
 * literal's header with f->st set to stream the octets.
 */
static void
write_section(struct imap_session *s, struct fetch *f, struct fitem *it)
{
	struct evbuffer *out = imap_out(s);
	struct imap_mime_range r;
	uint64_t total, len;
	bool binary = it->kind != FI_SECTION;

	write_section_name(out, it);
	if (f->mime == NULL) {	/* whole_only: the file as it is */
		r = (struct imap_mime_range){ 0, f->src.size, 0,
		    s->folder->msgs[f->idx[f->pos]].size, IMAP_CTE_IDENTITY,
		    false };
	} else if (imap_mime_section(f->mime, &it->sec, &r) < 0) {
		evbuffer_add_printf(out, "NIL");
		return;
	}
	if (binary && r.cte == IMAP_CTE_UNKNOWN) {
		f->unknown_cte = true;
		evbuffer_add_printf(out, "NIL");
		return;
	}
	if (it->sec.kind == IMAP_SEC_FIELDS ||
	    it->sec.kind == IMAP_SEC_FIELDS_NOT) {
		struct strbuf b = { 0 };

		imap_mime_header_fields(&f->src, &r, it->sec.names,
					it->sec.nnames,
					it->sec.kind == IMAP_SEC_FIELDS_NOT, &b);
		len = b.len;
		if (it->sec.partial)
			len = it->sec.start >= b.len ? 0 :
			    b.len - it->sec.start < it->sec.len ?
			    b.len - it->sec.start : it->sec.len;
		evbuffer_add_printf(out, "{%llu}\r\n", (unsigned long long)len);
		evbuffer_add(out, b.s + (len > 0 ? it->sec.start : 0), len);
		strbuf_free(&b);
		return;
	}
	total = r.cend - r.coff;
	/* the whole message is RFC822.SIZE octets, whichever way it is
	 * asked for */
	if (it->sec.npart == 0 && it->sec.kind == IMAP_SEC_ALL)
		total = imap_mime_whole_size(&f->src,
		    s->folder->msgs[f->idx[f->pos]].size);
	if (binary && r.cte != IMAP_CTE_IDENTITY &&
	    imap_mime_decoded_size(&f->src, &r, &total) < 0)
		total = 0;
	if (it->kind == FI_BINARY_SIZE) {
		evbuffer_add_printf(out, "%llu", (unsigned long long)total);
		return;
	}
	len = total;
	if (it->sec.partial)
		len = it->sec.start >= total ? 0 :
		    total - it->sec.start < it->sec.len ?
		    total - it->sec.start : it->sec.len;
	evbuffer_add_printf(out, "%s{%llu}\r\n", binary ? "~" : "",
			    (unsigned long long)len);
	f->st = xmalloc(sizeof(*f->st));
	imap_mime_stream_init(f->st, &f->src, &r, binary,
			      it->sec.partial ? it->sec.start : 0, len);
}

/*
 * Streams the current literal while the buffer allows; true when done.
 * A file that gives less than was announced (it shrank under us, or its
 * last line has no end that RFC822.SIZE counted) is padded, CR LF for
 * the two octets of a missing line end, so the literal stays whole.
 */
static bool
pump(struct imap_session *s, struct fetch *f)
{
	struct evbuffer *out = imap_out(s);
	char buf[CHUNK];

	while (evbuffer_get_length(out) < IMAP_OUTPUT_HIGH) {
		ssize_t n = 0;
		size_t k;

		if (!f->padding)
			n = imap_mime_stream_read(f->st, buf, sizeof(buf));
		if (n > 0) {
			evbuffer_add(out, buf, (size_t)n);
			continue;
		}
		f->padding = true;
		if (f->st->left == 0) {
			free(f->st);
			f->st = NULL;
			f->padding = false;
			return true;
		}
		k = f->st->left < sizeof(buf) ? (size_t)f->st->left :
		    sizeof(buf);
		if (f->st->left == 2)
			memcpy(buf, "\r\n", 2);
		else
			memset(buf, ' ', k);
		evbuffer_add(out, buf, k);
		f->st->left -= k;
	}
	return false;
}

static void
write_item(struct imap_session *s, struct fetch *f, struct fitem *it,
	   size_t i)
{
	struct evbuffer *out = imap_out(s);
	const struct imap_msg *m = &s->folder->msgs[i];

	switch (it->kind) {
	case FI_UID:
		evbuffer_add_printf(out, "UID %u", m->uid);
		break;
	case FI_FLAGS:
		evbuffer_add_printf(out, "FLAGS ");
		imap_write_flags(s, out, m);
		break;
	case FI_INTERNALDATE:
		write_date(out, imap_folder_internaldate(s->folder, i));
		break;
	case FI_SIZE:
		evbuffer_add_printf(out, "RFC822.SIZE %llu",
				    (unsigned long long)m->size);
		break;
	case FI_ENVELOPE:
		write_struct(out, "ENVELOPE", f, false);
		break;
	case FI_BODYSTRUCTURE:
		write_struct(out, "BODYSTRUCTURE", f, true);
		break;
	case FI_BODY:
		write_struct(out, "BODY", f, false);
		break;
	default:
		write_section(s, f, it);
		break;
	}
}

/* Starts message f->pos: false if it is gone (skipped). */
static bool
start_msg(struct imap_session *s, struct fetch *f)
{
	size_t i = f->idx[f->pos];

	f->item = 0;
	f->seen_set = false;
	if (f->content && !open_msg(s, f, i)) {
		f->gone = true;
		return false;
	}
	for (size_t k = 0; k < f->nitems; k++)
		if ((f->items[k].kind == FI_SECTION ||
		     f->items[k].kind == FI_BINARY) && !f->items[k].peek)
			mark_seen(s, f, i);
	evbuffer_add_printf(imap_out(s), "* %zu FETCH (", i + 1);
	f->started = true;
	return true;
}

static void
end_msg(struct imap_session *s, struct fetch *f)
{
	struct evbuffer *out = imap_out(s);
	size_t i = f->idx[f->pos];

	if (f->seen_set && !f->want_flags) {
		evbuffer_add_printf(out, " FLAGS ");
		imap_write_flags(s, out, &s->folder->msgs[i]);
	}
	evbuffer_add_printf(out, ")\r\n");
	close_msg(f);
	f->started = false;
	f->pos++;
}

static void
fetch_finish(struct imap_session *s, struct fetch *f)
{
	bool gone = f->gone, cte = f->unknown_cte;

	fetch_free(f);
	s->cmd_state = NULL;
	s->cleanup = NULL;
	s->cont = NULL;
	imap_sync_report(s, false);
	if (cte)
		imap_done(s, "NO", "UNKNOWN-CTE",
			  "Unknown content-transfer-encoding");
	else if (gone)
		imap_done(s, "NO", "EXPUNGEISSUED",
			  "Some messages were expunged");
	else
		imap_done(s, "OK", NULL, "FETCH completed");
}

/* Writes as much as the output buffer takes; resumes from cont. */
static void
fetch_run(struct imap_session *s)
{
	struct fetch *f = s->cmd_state;
	struct evbuffer *out = imap_out(s);

	while (f->pos < f->n) {
		if (f->st != NULL && !pump(s, f))
			goto later;
		if (!f->started && !start_msg(s, f)) {
			f->pos++;
			continue;
		}
		while (f->st == NULL && f->item < f->nitems) {
			if (f->item > 0)
				evbuffer_add(out, " ", 1);
			write_item(s, f, &f->items[f->item],
				   f->idx[f->pos]);
			f->item++;
		}
		if (f->st != NULL)
			continue;
		end_msg(s, f);
		if (evbuffer_get_length(out) >= IMAP_OUTPUT_HIGH)
			goto later;
	}
	fetch_finish(s, f);
	return;
later:
	s->cont = fetch_run;
}

static void
cmd_fetch(struct imap_session *s, const struct imap_command *c)
{
	struct fetch *f;
	const char *err;

	if (c->nargs == 3) {
		/* CHANGEDSINCE, VANISHED, PARTIAL: none advertised */
		imap_done(s, "BAD", NULL, "FETCH modifiers are not supported");
		return;
	}
	if (c->nargs != 2) {
		imap_done(s, "BAD", NULL, "FETCH needs a set and items");
		return;
	}
	f = xcalloc(1, sizeof(*f));
	f->fd = -1;
	if (!parse_items(f, &c->args[1], c->uid)) {
		fetch_free(f);
		imap_done(s, "BAD", NULL, "Invalid FETCH items");
		return;
	}
	f->header_only = header_items_only(f);
	for (size_t i = 0; i < f->nitems; i++)
		if (f->items[i].kind == FI_ENVELOPE)
			f->envelope = true;
	f->whole_only = !f->header_only && whole_items_only(f);
	if (!imap_set_resolve(s, &c->args[0], c->uid, &f->idx, &f->n, &err)) {
		fetch_free(f);
		imap_done(s, "BAD", NULL, "%s", err);
		return;
	}
	s->cmd_state = f;
	s->cleanup = fetch_cleanup;
	fetch_run(s);
}

const struct imap_cmd_def imap_fetch_cmds[] = {
	{ "FETCH", cmd_fetch, IMAP_IN_SELECTED, true },
	{ "SEARCH", imap_cmd_search, IMAP_IN_SELECTED, true },
	{ NULL, NULL, 0, false },
};
