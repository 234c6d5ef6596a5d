/*
 * The IMAP commands that change messages of the selected folder: STORE,
 * COPY and MOVE (RFC 6851) and their UID forms, with COPYUID (RFC 4315);
 * and what they share with the others: sequence sets resolved against
 * the folder, flag lists parsed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "imapd/imap_mbox.h"
#include "imapd/imap_private.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"
#include "mail/imap_seq.h"
#include "store/imap_store.h"

#define SET_RANGES_MAX 100000	/* a set's ranges (the line bounds it too) */
#define KEYWORD_MAX 128		/* octets of one keyword */

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* "$": the messages whose UID SEARCH ... SAVE kept. */
static void
resolve_saved(struct imap_session *s, size_t *idx, size_t *n_r)
{
	const struct imap_folder *f = s->folder;
	uint32_t *v;
	size_t i, n = 0;

	if (s->nsaved == 0)
		return;
	v = xreallocarray(NULL, s->nsaved, sizeof(*v));
	memcpy(v, s->saved, s->nsaved * sizeof(*v));
	qsort(v, s->nsaved, sizeof(*v), cmp_u32);
	for (i = 0; i < f->n; i++)
		if (bsearch(&f->msgs[i].uid, v, s->nsaved, sizeof(*v),
			    cmp_u32) != NULL)
			idx[n++] = i;
	free(v);
	*n_r = n;
}

/* Message numbers beyond the folder (a '*' is never beyond). */
static bool
numbers_valid(const struct imap_seqset *set, size_t n)
{
	size_t i;

	for (i = 0; i < set->n; i++) {
		if (set->r[i].lo != IMAP_SEQ_STAR && set->r[i].lo > n)
			return false;
		if (set->r[i].hi != IMAP_SEQ_STAR && set->r[i].hi > n)
			return false;
	}
	return n > 0 || set->n == 0;
}

bool
imap_set_resolve(struct imap_session *s, const struct imap_arg *a,
		 bool uid, size_t **idx_r, size_t *n_r, const char **err_r)
{
	const struct imap_folder *f = s->folder;
	struct imap_seqset set = { 0 };
	size_t *idx, i, n = 0;
	uint32_t star, v;

	*idx_r = NULL;
	*n_r = 0;
	if (a->type != IMAP_ARG_ATOM) {
		*err_r = "invalid sequence set";
		return false;
	}
	idx = xreallocarray(NULL, f->n ? f->n : 1, sizeof(*idx));
	if (strcmp(a->str, "$") == 0) {
		resolve_saved(s, idx, n_r);
		*idx_r = idx;
		return true;
	}
	if (imap_seqset_parse(a->str, a->len, SET_RANGES_MAX, &set) < 0) {
		free(idx);
		*err_r = "invalid sequence set";
		return false;
	}
	if (!uid && !numbers_valid(&set, f->n)) {
		imap_seqset_free(&set);
		free(idx);
		*err_r = "invalid message sequence number";
		return false;
	}
	star = uid ? (f->n ? f->msgs[f->n - 1].uid : 0) : (uint32_t)f->n;
	for (i = 0; i < f->n; i++) {
		v = uid ? f->msgs[i].uid : (uint32_t)(i + 1);
		if (imap_seqset_contains(&set, v, star))
			idx[n++] = i;
	}
	imap_seqset_free(&set);
	*idx_r = idx;
	*n_r = n;
	return true;
}

/* ---- flags ---------------------------------------------------------- */

static const struct {
	const char *name;
	unsigned bit;
} sysflags[] = {
	{ "\\Answered", IMAP_F_ANSWERED },
	{ "\\Flagged", IMAP_F_FLAGGED },
	{ "\\Deleted", IMAP_F_DELETED },
	{ "\\Seen", IMAP_F_SEEN },
	{ "\\Draft", IMAP_F_DRAFT },
	{ "$Forwarded", IMAP_F_FORWARDED },
	{ "\\Recent", 0 },	/* not settable: ignored */
};

static bool
keyword_valid(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > KEYWORD_MAX)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch <= 0x20 || ch >= 0x7f || strchr("(){%*\"\\]", ch))
			return false;
	}
	return true;
}

bool
imap_flags_parse(const struct imap_arg *args, size_t n,
		 struct imap_flagset *fs, const char **err_r)
{
	size_t i, k;

	memset(fs, 0, sizeof(*fs));
	for (i = 0; i < n; i++) {
		const struct imap_arg *a = &args[i];

		if (a->type != IMAP_ARG_ATOM) {
			*err_r = "a flag must be an atom";
			goto fail;
		}
		for (k = 0; k < sizeof(sysflags) / sizeof(sysflags[0]); k++)
			if (strcasecmp(a->str, sysflags[k].name) == 0)
				break;
		if (k < sizeof(sysflags) / sizeof(sysflags[0])) {
			fs->flags |= sysflags[k].bit;
			continue;
		}
		if (!keyword_valid(a->str, a->len)) {
			*err_r = "invalid flag";
			goto fail;
		}
		fs->kw = xreallocarray(fs->kw, fs->nkw + 1, sizeof(*fs->kw));
		fs->kw[fs->nkw++] = a->str;
	}
	return true;
fail:
	imap_flagset_free(fs);
	return false;
}

void
imap_flagset_free(struct imap_flagset *fs)
{
	free(fs->kw);
	memset(fs, 0, sizeof(*fs));
}

/* ---- STORE ----------------------------------------------------------- */

enum store_op { STORE_SET, STORE_ADD, STORE_REMOVE };

struct store_req {
	enum store_op op;
	bool silent;
	unsigned flags;
	uint32_t kw;		/* keyword bits */
};

static bool
store_item(const struct imap_arg *a, struct store_req *req)
{
	const char *p;

	if (a->type != IMAP_ARG_ATOM)
		return false;
	p = a->str;
	req->op = STORE_SET;
	if (*p == '+' || *p == '-')
		req->op = *p++ == '+' ? STORE_ADD : STORE_REMOVE;
	if (strncasecmp(p, "FLAGS", 5) != 0)
		return false;
	p += 5;
	req->silent = strcasecmp(p, ".SILENT") == 0;
	return *p == '\0' || req->silent;
}

/* The keyword names as bits, added to the folder's list unless the
 * request removes them. -1 and errno (ENOSPC) on failure. */
static int
store_keywords(struct imap_folder *f, const struct imap_flagset *fs,
	       struct store_req *req)
{
	size_t i;
	int k;

	req->kw = 0;
	for (i = 0; i < fs->nkw; i++) {
		k = imap_folder_keyword(f, fs->kw[i], req->op != STORE_REMOVE);
		if (k < 0 && errno == ENOENT && req->op == STORE_REMOVE)
			continue;
		if (k < 0)
			return -1;
		if (k < 32)
			req->kw |= 1u << k;
	}
	return 0;
}

static void
store_apply(struct imap_session *s, const struct imap_command *c,
	    const struct store_req *req, const size_t *idx, size_t n)
{
	struct imap_folder *f = s->folder;
	struct evbuffer *out = imap_out(s);
	unsigned flags;
	uint32_t kw;
	size_t i;

	for (i = 0; i < n; i++) {
		struct imap_msg *m = &f->msgs[idx[i]];

		if (m->gone)
			continue;
		flags = req->flags;
		kw = req->kw;
		if (req->op == STORE_ADD) {
			flags |= m->flags;
			kw |= m->keywords;
		} else if (req->op == STORE_REMOVE) {
			flags = m->flags & ~req->flags;
			kw = m->keywords & ~req->kw;
		}
		if ((flags != m->flags || kw != m->keywords) &&
		    imap_folder_set_flags(f, idx[i], flags, kw) < 0)
			continue;	/* vanished meanwhile */
		if (req->silent)
			continue;
		evbuffer_add_printf(out, "* %zu FETCH (FLAGS ", idx[i] + 1);
		imap_write_flags(s, out, m);
		if (c->uid)
			evbuffer_add_printf(out, " UID %u", m->uid);
		evbuffer_add_printf(out, ")\r\n");
	}
}

void
imap_cmd_store(struct imap_session *s, const struct imap_command *c)
{
	struct imap_folder *f = s->folder;
	struct imap_flagset fs;
	struct store_req req;
	const struct imap_arg *fl;
	size_t *idx, n, nfl, nkw0 = f->nkeywords;
	const char *err = "STORE needs a set, an item and flags";

	memset(&req, 0, sizeof(req));
	if (c->nargs >= 2 && c->args[1].type == IMAP_ARG_LIST) {
		imap_done(s, "BAD", NULL, "STORE modifiers are not supported");
		return;
	}
	if (c->nargs < 3 || !store_item(&c->args[1], &req)) {
		imap_done(s, "BAD", NULL, "%s", err);
		return;
	}
	fl = &c->args[2];
	nfl = c->nargs - 2;
	if (fl->type == IMAP_ARG_LIST && c->nargs == 3) {
		nfl = fl->nlist;
		fl = fl->list;
	}
	if (!imap_flags_parse(fl, nfl, &fs, &err) ||
	    !imap_set_resolve(s, &c->args[0], c->uid, &idx, &n, &err)) {
		imap_flagset_free(&fs);
		imap_done(s, "BAD", NULL, "%s", err);
		return;
	}
	if (f->readonly) {
		imap_flagset_free(&fs);
		free(idx);
		imap_done(s, "NO", NULL, "mailbox is read-only");
		return;
	}
	req.flags = fs.flags;
	if (store_keywords(f, &fs, &req) < 0) {
		imap_flagset_free(&fs);
		free(idx);
		imap_store_fail(s, errno, false, "STORE");
		return;
	}
	imap_flagset_free(&fs);
	if (f->nkeywords != nkw0)
		imap_write_folder_flags(s);
	store_apply(s, c, &req, idx, n);
	free(idx);
	imap_sync_report(s, false);
	imap_done(s, "OK", NULL, "STORE completed");
}

/* ---- COPY and MOVE -------------------------------------------------- */

/* The messages of the set that are still there; a BAD when the set is
 * not valid (false). */
static bool
copy_set(struct imap_session *s, const struct imap_command *c,
	 struct strbuf *dest, size_t **idx_r, size_t *n_r)
{
	const char *err = "invalid arguments";
	size_t i, k = 0;

	if (c->nargs != 2 || !imap_mailbox_arg(s, &c->args[1], dest) ||
	    !imap_set_resolve(s, &c->args[0], c->uid, idx_r, n_r, &err)) {
		strbuf_free(dest);
		imap_done(s, "BAD", NULL, "%s %s", c->name, err);
		return false;
	}
	for (i = 0; i < *n_r; i++)
		if (!s->folder->msgs[(*idx_r)[i]].gone)
			(*idx_r)[k++] = (*idx_r)[i];
	*n_r = k;
	return true;
}

/* Copies idx[0..n-1] to dest; the COPYUID response code into code. */
static int
copy_msgs(struct imap_session *s, const size_t *idx, size_t n,
	  const char *dest, struct strbuf *code)
{
	uint32_t *src, *dst, uidvalidity;
	size_t i;

	src = xreallocarray(NULL, n, sizeof(*src));
	dst = xcalloc(n, sizeof(*dst));
	for (i = 0; i < n; i++)
		src[i] = s->folder->msgs[idx[i]].uid;
	if (imap_folder_copy(s->folder, idx, n, dest, &uidvalidity, dst) < 0) {
		free(src);
		free(dst);
		return -1;
	}
	strbuf_addf(code, "COPYUID %u ", uidvalidity);
	imap_seqset_format(src, n, code);
	strbuf_addc(code, ' ');
	imap_seqset_format(dst, n, code);
	free(src);
	free(dst);
	return 0;
}

void
imap_cmd_copy(struct imap_session *s, const struct imap_command *c)
{
	struct strbuf dest = { 0 }, code = { 0 };
	size_t *idx, n;

	if (!copy_set(s, c, &dest, &idx, &n))
		return;
	if (n > 0 && copy_msgs(s, idx, n, dest.s, &code) < 0) {
		free(idx);
		strbuf_free(&dest);
		imap_store_fail(s, errno, true, "COPY");
		return;
	}
	free(idx);
	strbuf_free(&dest);
	imap_sync_report(s, true);
	imap_done(s, "OK", code.s, "COPY completed");
	strbuf_free(&code);
}

/* Removes the moved messages from the source: \Deleted, then an expunge
 * of exactly their UIDs. */
static int
move_expunge(struct imap_session *s, const size_t *idx, size_t n)
{
	struct imap_folder *f = s->folder;
	struct imap_seqset set;
	struct imap_changes ch;
	size_t i;
	int r;

	set.n = n;
	set.r = xcalloc(n, sizeof(*set.r));
	for (i = 0; i < n; i++) {
		struct imap_msg *m = &f->msgs[idx[i]];

		set.r[i].lo = set.r[i].hi = m->uid;
		if (!(m->flags & IMAP_F_DELETED))
			(void)imap_folder_set_flags(f, idx[i],
			    m->flags | IMAP_F_DELETED, m->keywords);
	}
	memset(&ch, 0, sizeof(ch));
	r = imap_folder_expunge(f, &set, &ch);
	free(set.r);
	if (r < 0)
		return -1;
	imap_write_expunges(s, &ch);
	imap_changes_free(&ch);
	return 0;
}

void
imap_cmd_move(struct imap_session *s, const struct imap_command *c)
{
	struct strbuf dest = { 0 }, code = { 0 };
	size_t *idx, n;

	if (!copy_set(s, c, &dest, &idx, &n))
		return;
	if (s->folder->readonly) {
		free(idx);
		strbuf_free(&dest);
		imap_done(s, "NO", NULL, "mailbox is read-only");
		return;
	}
	if (n > 0 && copy_msgs(s, idx, n, dest.s, &code) < 0) {
		free(idx);
		strbuf_free(&dest);
		imap_store_fail(s, errno, true, "MOVE");
		return;
	}
	strbuf_free(&dest);
	if (n > 0) {
		imap_untagged(s, "OK [%s] Moved", code.s);
		if (move_expunge(s, idx, n) < 0) {
			free(idx);
			strbuf_free(&code);
			imap_store_fail(s, errno, false, "MOVE (expunge)");
			return;
		}
	}
	free(idx);
	strbuf_free(&code);
	imap_sync_report(s, true);
	imap_done(s, "OK", NULL, "MOVE completed");
}
