/*
 * The IMAP mailbox commands: the command table, the selected folder
 * (SELECT EXAMINE CLOSE UNSELECT EXPUNGE and what a sync reports), the
 * folder commands (CREATE DELETE RENAME SUBSCRIBE UNSUBSCRIBE STATUS
 * NAMESPACE), and CHECK of IMAP4rev1. LIST and LSUB are in imap_list.c, APPEND in imap_append.c,
 * IDLE and the change watch in imap_idle.c, STORE COPY MOVE in
 * imap_msgops.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "imapd/imap_mbox.h"
#include "imapd/imap_private.h"
#include "lib/strbuf.h"
#include "lib/xalloc.h"
#include "mail/imap_seq.h"
#include "store/imap_store.h"

/* ---- replies shared by the mailbox files --------------------------- */

void
imap_store_fail(struct imap_session *s, int err, bool trycreate,
		const char *what)
{
	const char *code;

	switch (err) {
	case ENOENT:
		code = trycreate ? "TRYCREATE" : "NONEXISTENT";
		break;
	case EEXIST:
		code = "ALREADYEXISTS";
		break;
	case EINVAL:
	case EPERM:
		code = "CANNOT";
		break;
	case EACCES:
		code = "NOPERM";
		break;
	case ENOTEMPTY:
		code = "HASCHILDREN";
		break;
	case ENOSPC:
		code = "LIMIT";
		break;
	case EDQUOT:
		code = "OVERQUOTA";
		break;
	case EFBIG:
		code = "TOOBIG";
		break;
	case EAGAIN:	/* the uidlist lock is busy (store/imap_uidlist.c) */
		code = "INUSE";
		break;
	default:
		code = "SERVERBUG";
		break;
	}
	imap_done(s, "NO", code, "%s failed: %s", what,
		  err == ENOENT ? "no such mailbox" : strerror(err));
}

void
imap_write_expunges(struct imap_session *s, const struct imap_changes *ch)
{
	size_t i;

	for (i = 0; i < ch->nexpunged; i++)
		imap_untagged(s, "%u EXPUNGE", ch->expunged[i]);
}

static void
write_flag_names(struct imap_session *s, struct evbuffer *out, bool perm)
{
	const struct imap_folder *f = s->folder;
	size_t i;

	evbuffer_add_printf(out,
	    "(\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded");
	for (i = 0; i < f->nkeywords; i++)
		if (f->keywords[i] != NULL)
			evbuffer_add_printf(out, " %s", f->keywords[i]);
	if (perm && f->nkeywords < IMAP_KEYWORDS_MAX)
		evbuffer_add_printf(out, " \\*");
	evbuffer_add_printf(out, ")");
}

void
imap_write_folder_flags(struct imap_session *s)
{
	struct evbuffer *out = imap_out(s);

	evbuffer_add_printf(out, "* FLAGS ");
	write_flag_names(s, out, false);
	evbuffer_add_printf(out, "\r\n* OK [PERMANENTFLAGS ");
	if (s->folder->readonly)
		evbuffer_add_printf(out, "()");
	else
		write_flag_names(s, out, true);
	evbuffer_add_printf(out, "] Flags permitted\r\n");
}

void
imap_write_flags(struct imap_session *s, struct evbuffer *out,
		 const struct imap_msg *m)
{
	static const struct {
		unsigned bit;
		const char *name;
	} sys[] = {
		{ IMAP_F_ANSWERED, "\\Answered" },
		{ IMAP_F_FLAGGED, "\\Flagged" },
		{ IMAP_F_DELETED, "\\Deleted" },
		{ IMAP_F_SEEN, "\\Seen" },
		{ IMAP_F_DRAFT, "\\Draft" },
		{ IMAP_F_FORWARDED, "$Forwarded" },
	};
	const struct imap_folder *f = s->folder;
	const char *sep = "";
	size_t i;

	evbuffer_add_printf(out, "(");
	for (i = 0; i < sizeof(sys) / sizeof(sys[0]); i++)
		if (m->flags & sys[i].bit) {
			evbuffer_add_printf(out, "%s%s", sep, sys[i].name);
			sep = " ";
		}
	for (i = 0; f != NULL && i < f->nkeywords && i < 32; i++)
		if ((m->keywords & (1u << i)) && f->keywords[i] != NULL) {
			evbuffer_add_printf(out, "%s%s", sep, f->keywords[i]);
			sep = " ";
		}
	if (m->recent && !s->rev2)
		evbuffer_add_printf(out, "%s\\Recent", sep);
	evbuffer_add_printf(out, ")");
}

static uint32_t
count_recent(const struct imap_folder *f)
{
	uint32_t n = 0;
	size_t i;

	for (i = 0; i < f->n; i++)
		if (f->msgs[i].recent)
			n++;
	return n;
}

void
imap_sync_report(struct imap_session *s, bool expunges)
{
	struct imap_folder *f = s->folder;
	struct imap_changes ch;
	struct evbuffer *out;
	const struct imap_msg *m;
	size_t i;

	if (f == NULL || !imap_watch_pending(s))
		return;
	memset(&ch, 0, sizeof(ch));
	if (imap_folder_sync(f, expunges, &ch) < 0)
		return;
	/* vanished messages kept in the view wait for the next sync */
	s->changed = ch.incomplete;	/* new files without a UID yet */
	for (i = 0; !expunges && i < f->n && !s->changed; i++)
		s->changed = f->msgs[i].gone;
	imap_write_expunges(s, &ch);
	if (ch.keywords_changed)
		imap_write_folder_flags(s);
	if (ch.new_messages) {
		imap_untagged(s, "%zu EXISTS", f->n);
		if (!s->rev2)
			imap_untagged(s, "%u RECENT", count_recent(f));
	}
	out = imap_out(s);
	for (i = 0; i < ch.nflagged; i++) {
		if (ch.flagged[i] >= f->n)
			continue;
		m = &f->msgs[ch.flagged[i]];
		evbuffer_add_printf(out, "* %zu FETCH (UID %u FLAGS ",
				    ch.flagged[i] + 1, m->uid);
		imap_write_flags(s, out, m);
		evbuffer_add_printf(out, ")\r\n");
	}
	imap_changes_free(&ch);
}

/* ---- the selected folder ------------------------------------------- */

static void
unselect(struct imap_session *s)
{
	imap_watch_stop(s);
	if (s->folder != NULL)
		imap_folder_close(s->folder);
	s->folder = NULL;
	free(s->saved);
	s->saved = NULL;
	s->nsaved = 0;
	s->changed = false;
}

void
imap_mailbox_end(struct imap_session *s)
{
	unselect(s);
}

static void
select_report(struct imap_session *s)
{
	const struct imap_folder *f = s->folder;
	struct evbuffer *out = imap_out(s);
	size_t i;

	imap_write_folder_flags(s);
	imap_untagged(s, "%zu EXISTS", f->n);
	if (!s->rev2) {
		imap_untagged(s, "%u RECENT", count_recent(f));
		for (i = 0; i < f->n; i++)
			if (!(f->msgs[i].flags & IMAP_F_SEEN)) {
				imap_untagged(s, "OK [UNSEEN %zu] First unseen",
					      i + 1);
				break;
			}
	}
	imap_untagged(s, "OK [UIDVALIDITY %u] UIDs valid", f->uidvalidity);
	imap_untagged(s, "OK [UIDNEXT %u] Predicted next UID", f->uidnext);
	if (s->rev2) {
		evbuffer_add_printf(out, "* LIST () \"/\" ");
		imap_write_mailbox(s, out, f->name);
		evbuffer_add_printf(out, "\r\n");
	}
}

static void
cmd_select(struct imap_session *s, const struct imap_command *c)
{
	bool ro = strcmp(c->name, "EXAMINE") == 0;
	struct strbuf name = { 0 };
	struct imap_folder *f;

	if (c->nargs == 2) {
		imap_done(s, "BAD", NULL, "%s parameters are not supported",
			  c->name);
		return;
	}
	if (c->nargs != 1 || !imap_mailbox_arg(s, &c->args[0], &name)) {
		strbuf_free(&name);
		imap_done(s, "BAD", NULL, "%s needs a mailbox name", c->name);
		return;
	}
	if (s->folder != NULL) {
		unselect(s);
		if (s->rev2)
			imap_untagged(s, "OK [CLOSED] Previous mailbox closed");
	}
	s->state = IMAP_S_AUTH;
	if (imap_folder_open(s->store, name.s, ro, &f) < 0) {
		strbuf_free(&name);
		imap_store_fail(s, errno, false, c->name);
		return;
	}
	strbuf_free(&name);
	s->folder = f;
	s->state = IMAP_S_SELECTED;
	imap_watch_start(s);
	select_report(s);
	imap_done(s, "OK", f->readonly ? "READ-ONLY" : "READ-WRITE",
		  "%s completed", c->name);
}

static void
cmd_close(struct imap_session *s, const struct imap_command *c)
{
	struct imap_changes ch;

	if (c->nargs != 0) {
		imap_done(s, "BAD", NULL, "%s takes no arguments", c->name);
		return;
	}
	if (strcmp(c->name, "CLOSE") == 0 && !s->folder->readonly) {
		memset(&ch, 0, sizeof(ch));
		if (imap_folder_expunge(s->folder, NULL, &ch) == 0)
			imap_changes_free(&ch);
	}
	unselect(s);
	s->state = IMAP_S_AUTH;
	imap_done(s, "OK", NULL, "%s completed", c->name);
}

/* The UIDs of messages idx[0..n-1] as a set of single values. */
static void
uid_set(const struct imap_folder *f, const size_t *idx, size_t n,
	struct imap_seqset *set)
{
	size_t i;

	set->n = n;
	set->r = xcalloc(n ? n : 1, sizeof(*set->r));
	for (i = 0; i < n; i++)
		set->r[i].lo = set->r[i].hi = f->msgs[idx[i]].uid;
}

static void
cmd_expunge(struct imap_session *s, const struct imap_command *c)
{
	struct imap_seqset set = { 0 };
	struct imap_changes ch;
	size_t *idx = NULL, n = 0;
	const char *err;
	int r;

	if (c->nargs != (c->uid ? 1u : 0u)) {
		imap_done(s, "BAD", NULL, "wrong arguments to EXPUNGE");
		return;
	}
	if (s->folder->readonly) {
		imap_done(s, "NO", NULL, "mailbox is read-only");
		return;
	}
	imap_sync_report(s, true);
	if (c->uid) {
		if (!imap_set_resolve(s, &c->args[0], true, &idx, &n, &err)) {
			imap_done(s, "BAD", NULL, "%s", err);
			return;
		}
		uid_set(s->folder, idx, n, &set);
		free(idx);
	}
	memset(&ch, 0, sizeof(ch));
	r = imap_folder_expunge(s->folder, c->uid ? &set : NULL, &ch);
	free(set.r);
	if (r < 0) {
		imap_store_fail(s, errno, false, "EXPUNGE");
		return;
	}
	imap_write_expunges(s, &ch);
	imap_changes_free(&ch);
	imap_done(s, "OK", NULL, "EXPUNGE completed");
}

/* CHECK (IMAP4rev1 only; RFC 9051 dropped it): nothing to flush, every
 * change is on disk already; a NOOP. */
static void
cmd_check(struct imap_session *s, const struct imap_command *c)
{
	if (c->nargs != 0) {
		imap_done(s, "BAD", NULL, "CHECK takes no arguments");
		return;
	}
	imap_sync_report(s, true);
	imap_done(s, "OK", NULL, "CHECK completed");
}

/* ---- folders -------------------------------------------------------- */

/* The one mailbox argument of CREATE DELETE SUBSCRIBE UNSUBSCRIBE, or a
 * BAD. */
static bool
one_name(struct imap_session *s, const struct imap_command *c, size_t i,
	 struct strbuf *name)
{
	if (i < c->nargs && imap_mailbox_arg(s, &c->args[i], name))
		return true;
	strbuf_free(name);
	imap_done(s, "BAD", NULL, "%s needs a valid mailbox name", c->name);
	return false;
}

static void
cmd_create(struct imap_session *s, const struct imap_command *c)
{
	struct strbuf name = { 0 };
	int r;

	if (c->nargs > 2 || !one_name(s, c, 0, &name))
		return;
	while (name.len > 1 && name.s[name.len - 1] == '/')
		name.s[--name.len] = '\0';
	if (strcmp(name.s, "INBOX") == 0) {
		strbuf_free(&name);
		imap_done(s, "NO", "ALREADYEXISTS", "INBOX always exists");
		return;
	}
	r = imap_store_create(s->store, name.s);
	strbuf_free(&name);
	if (r < 0) {
		imap_store_fail(s, errno, false, "CREATE");
		return;
	}
	imap_sync_report(s, true);
	imap_done(s, "OK", NULL, "CREATE completed");
}

static void
cmd_delete(struct imap_session *s, const struct imap_command *c)
{
	struct strbuf name = { 0 };
	int r;

	if (c->nargs != 1 || !one_name(s, c, 0, &name))
		return;
	if (strcmp(name.s, "INBOX") == 0) {
		strbuf_free(&name);
		imap_done(s, "NO", "CANNOT", "INBOX cannot be deleted");
		return;
	}
	/* the selected folder is closed first, as Dovecot does: the
	 * session is then not in SELECTED state any more */
	if (s->folder != NULL && strcmp(s->folder->name, name.s) == 0) {
		unselect(s);
		s->state = IMAP_S_AUTH;
	}
	r = imap_store_delete(s->store, name.s);
	strbuf_free(&name);
	if (r < 0) {
		imap_store_fail(s, errno, false, "DELETE");
		return;
	}
	imap_sync_report(s, true);
	imap_done(s, "OK", NULL, "DELETE completed");
}

/* The selected folder (or one of its parents) was renamed: the session
 * follows it to its new directory (the same files, the same UIDs). */
static void
follow_rename(struct imap_session *s, const char *from, const char *to)
{
	struct imap_folder *f;
	size_t len = strlen(from);
	char *name;

	if (s->folder == NULL || strcmp(from, "INBOX") == 0 ||
	    strncmp(s->folder->name, from, len) != 0 ||
	    (s->folder->name[len] != '\0' && s->folder->name[len] != '/'))
		return;
	name = xasprintf("%s%s", to, s->folder->name + len);
	if (imap_folder_open(s->store, name, s->folder->readonly, &f) < 0)
		f = NULL;
	free(name);
	unselect(s);
	s->state = IMAP_S_AUTH;
	if (f == NULL)
		return;
	s->folder = f;
	s->state = IMAP_S_SELECTED;
	imap_watch_start(s);
}

/* Whether name is from itself or one of its inferiors ("from/..."). */
static bool
under(const char *name, const char *from)
{
	size_t len = strlen(from);

	return strncmp(name, from, len) == 0 &&
	       (name[len] == '\0' || name[len] == '/');
}

/*
 * RENAME of a name that is only a parent (\Noselect: Maildir++ has no
 * directory for it) renames its inferiors (RFC 9051 6.3.6), as Dovecot
 * does: each existing one takes its own children along, so a child
 * already moved with its parent (ENOENT) is not an error. 0, or -1 and
 * errno (ENOENT when there is nothing under from).
 */
static int
rename_inferiors(struct imap_session *s, const char *from, const char *to)
{
	struct imap_folder_info *list;
	size_t n, len = strlen(from), moved = 0;
	int r = 0;

	if (under(to, from)) {
		errno = EINVAL;
		return -1;
	}
	if (imap_store_list(s->store, &list, &n) < 0)
		return -1;
	for (size_t i = 0; i < n && r == 0; i++)
		if (under(list[i].name, to) &&
		    !(list[i].attrs & IMAP_FA_NONEXISTENT)) {
			errno = EEXIST;
			r = -1;
		}
	for (size_t i = 0; i < n && r == 0; i++) {
		const char *nm = list[i].name;
		char *t;

		if (!under(nm, from) || nm[len] == '\0' ||
		    (list[i].attrs & (IMAP_FA_NOSELECT | IMAP_FA_NONEXISTENT)))
			continue;
		t = xasprintf("%s%s", to, nm + len);
		if (imap_store_rename(s->store, nm, t) == 0)
			moved++;
		else if (errno != ENOENT)
			r = -1;
		free(t);
	}
	imap_store_list_free(list, n);
	if (r == 0 && moved == 0) {
		errno = ENOENT;
		r = -1;
	}
	return r;
}

static void
cmd_rename(struct imap_session *s, const struct imap_command *c)
{
	struct strbuf from = { 0 }, to = { 0 };
	int r;

	if (c->nargs != 2 || !one_name(s, c, 0, &from))
		return;
	if (!one_name(s, c, 1, &to)) {
		strbuf_free(&from);
		return;
	}
	if (strcmp(to.s, "INBOX") == 0) {
		r = -1;
		errno = EEXIST;
	} else {
		r = imap_store_rename(s->store, from.s, to.s);
		if (r < 0 && errno == ENOENT && strcmp(from.s, "INBOX") != 0)
			r = rename_inferiors(s, from.s, to.s);
		if (r == 0)
			follow_rename(s, from.s, to.s);
	}
	strbuf_free(&from);
	strbuf_free(&to);
	if (r < 0) {
		imap_store_fail(s, errno, false, "RENAME");
		return;
	}
	imap_sync_report(s, true);
	imap_done(s, "OK", NULL, "RENAME completed");
}

static void
cmd_subscribe(struct imap_session *s, const struct imap_command *c)
{
	bool on = strcmp(c->name, "SUBSCRIBE") == 0;
	struct strbuf name = { 0 };
	int r;

	if (c->nargs != 1 || !one_name(s, c, 0, &name))
		return;
	r = imap_store_subscribe(s->store, name.s, on);
	strbuf_free(&name);
	if (r < 0) {
		imap_store_fail(s, errno, false, c->name);
		return;
	}
	imap_sync_report(s, true);
	imap_done(s, "OK", NULL, "%s completed", c->name);
}

static void
cmd_namespace(struct imap_session *s, const struct imap_command *c)
{
	if (c->nargs != 0) {
		imap_done(s, "BAD", NULL, "NAMESPACE takes no arguments");
		return;
	}
	imap_untagged(s, "NAMESPACE ((\"\" \"/\")) NIL NIL");
	imap_sync_report(s, true);
	imap_done(s, "OK", NULL, "NAMESPACE completed");
}

/* ---- STATUS (also LIST-STATUS) -------------------------------------- */

static const char *const status_names[] = {
	"MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "DELETED", "SIZE",
	"RECENT",
};
#define N_STATUS (sizeof(status_names) / sizeof(status_names[0]))

bool
imap_status_items(const struct imap_arg *list, unsigned *mask_r)
{
	size_t i, k;

	*mask_r = 0;
	if (list->type != IMAP_ARG_LIST || list->nlist == 0)
		return false;
	for (i = 0; i < list->nlist; i++) {
		for (k = 0; k < N_STATUS; k++)
			if (imap_arg_atom_is(&list->list[i], status_names[k]))
				break;
		if (k == N_STATUS)
			return false;
		*mask_r |= 1u << k;
	}
	return true;
}

void
imap_write_status(struct imap_session *s, const char *name, unsigned mask,
		  const struct imap_status *st)
{
	const uint64_t v[N_STATUS] = {
		st->messages, st->uidnext, st->uidvalidity, st->unseen,
		st->deleted, st->size, st->recent,
	};
	struct evbuffer *out = imap_out(s);
	const char *sep = "";
	size_t k;

	evbuffer_add_printf(out, "* STATUS ");
	imap_write_mailbox(s, out, name);
	evbuffer_add_printf(out, " (");
	for (k = 0; k < N_STATUS; k++)
		if (mask & (1u << k)) {
			evbuffer_add_printf(out, "%s%s %llu", sep,
					    status_names[k],
					    (unsigned long long)v[k]);
			sep = " ";
		}
	evbuffer_add_printf(out, ")\r\n");
}

static void
cmd_status(struct imap_session *s, const struct imap_command *c)
{
	struct strbuf name = { 0 };
	struct imap_status st;
	unsigned mask;

	if (c->nargs != 2 || !imap_status_items(&c->args[1], &mask)) {
		imap_done(s, "BAD", NULL, "STATUS needs a mailbox and items");
		return;
	}
	if (!one_name(s, c, 0, &name))
		return;
	memset(&st, 0, sizeof(st));
	if (imap_store_status(s->store, name.s, &st) < 0) {
		strbuf_free(&name);
		imap_store_fail(s, errno, false, "STATUS");
		return;
	}
	imap_write_status(s, name.s, mask, &st);
	strbuf_free(&name);
	imap_sync_report(s, true);
	imap_done(s, "OK", NULL, "STATUS completed");
}

const struct imap_cmd_def imap_mailbox_cmds[] = {
	{ "SELECT", cmd_select, IMAP_IN_LOGGED, false },
	{ "EXAMINE", cmd_select, IMAP_IN_LOGGED, false },
	{ "CREATE", cmd_create, IMAP_IN_LOGGED, false },
	{ "DELETE", cmd_delete, IMAP_IN_LOGGED, false },
	{ "RENAME", cmd_rename, IMAP_IN_LOGGED, false },
	{ "SUBSCRIBE", cmd_subscribe, IMAP_IN_LOGGED, false },
	{ "UNSUBSCRIBE", cmd_subscribe, IMAP_IN_LOGGED, false },
	{ "LIST", imap_cmd_list, IMAP_IN_LOGGED, false },
	{ "LSUB", imap_cmd_lsub, IMAP_IN_LOGGED, false },
	{ "NAMESPACE", cmd_namespace, IMAP_IN_LOGGED, false },
	{ "STATUS", cmd_status, IMAP_IN_LOGGED, false },
	{ "APPEND", imap_cmd_append, IMAP_IN_LOGGED, false },
	{ "IDLE", imap_cmd_idle, IMAP_IN_LOGGED, false },
	{ "CHECK", cmd_check, IMAP_IN_SELECTED, false },
	{ "CLOSE", cmd_close, IMAP_IN_SELECTED, false },
	{ "UNSELECT", cmd_close, IMAP_IN_SELECTED, false },
	{ "EXPUNGE", cmd_expunge, IMAP_IN_SELECTED, true },
	{ "STORE", imap_cmd_store, IMAP_IN_SELECTED, true },
	{ "COPY", imap_cmd_copy, IMAP_IN_SELECTED, true },
	{ "MOVE", imap_cmd_move, IMAP_IN_SELECTED, true },
	{ NULL, NULL, 0, false },
};
