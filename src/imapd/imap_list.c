/*
 * LIST (RFC 9051, with RFC 5258 extended LIST: selection options
 * SUBSCRIBED REMOTE RECURSIVEMATCH SPECIAL-USE, return options CHILDREN
 * SUBSCRIBED SPECIAL-USE STATUS (RFC 5819), several patterns; RFC 6154
 * special-use attributes) and LSUB (IMAP4rev1).
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
#include "mail/imap_utf7.h"
#include "store/imap_store.h"

#define PATTERNS_MAX 64

struct list_req {
	bool sel_subscribed, sel_recursive, sel_special;
	bool ret_subscribed;
	unsigned status;	/* STATUS items, 0: none */
	char *pat[PATTERNS_MAX];	/* reference + pattern, UTF-8 */
	size_t npat;
	bool lsub;
};

static void
list_req_free(struct list_req *req)
{
	size_t i;

	for (i = 0; i < req->npat; i++)
		free(req->pat[i]);
	req->npat = 0;
}

/* An astring as UTF-8 (modified UTF-7 unless the client speaks UTF-8). */
static bool
arg_utf8(struct imap_session *s, const struct imap_arg *a, struct strbuf *out)
{
	const char *str;
	size_t len;

	if (!imap_arg_astring(a, &str, &len) || memchr(str, '\0', len))
		return false;
	if (s->utf8) {
		strbuf_add(out, str, len);
		return true;
	}
	return imap_utf7_to_utf8(str, len, out) == 0;
}

static bool
add_pattern(struct imap_session *s, struct list_req *req, const char *ref,
	    const struct imap_arg *a)
{
	struct strbuf p = { 0 };

	if (req->npat == PATTERNS_MAX)
		return false;
	strbuf_addstr(&p, ref);
	if (!arg_utf8(s, a, &p)) {
		strbuf_free(&p);
		return false;
	}
	req->pat[req->npat++] = strbuf_steal(&p);
	return true;
}

static bool
selection(const struct imap_arg *l, struct list_req *req)
{
	size_t i;

	for (i = 0; i < l->nlist; i++) {
		const struct imap_arg *a = &l->list[i];

		if (imap_arg_atom_is(a, "SUBSCRIBED"))
			req->sel_subscribed = true;
		else if (imap_arg_atom_is(a, "RECURSIVEMATCH"))
			req->sel_recursive = true;
		else if (imap_arg_atom_is(a, "SPECIAL-USE"))
			req->sel_special = true;
		else if (!imap_arg_atom_is(a, "REMOTE"))
			return false;
	}
	/* RFC 5258 section 3.1: RECURSIVEMATCH alone is an error */
	return !req->sel_recursive || req->sel_subscribed;
}

static bool
returns(const struct imap_arg *l, struct list_req *req)
{
	size_t i;

	if (l->type != IMAP_ARG_LIST)
		return false;
	for (i = 0; i < l->nlist; i++) {
		const struct imap_arg *a = &l->list[i];

		if (imap_arg_atom_is(a, "SUBSCRIBED"))
			req->ret_subscribed = true;
		else if (imap_arg_atom_is(a, "STATUS")) {
			if (i + 1 == l->nlist ||
			    !imap_status_items(&l->list[i + 1], &req->status))
				return false;
			i++;
		} else if (!imap_arg_atom_is(a, "CHILDREN") &&
			   !imap_arg_atom_is(a, "SPECIAL-USE"))
			return false;
	}
	return true;
}

/* The arguments of LIST (or LSUB) into req; false: BAD. */
static bool
list_parse(struct imap_session *s, const struct imap_command *c,
	   struct list_req *req)
{
	struct strbuf ref = { 0 };
	const struct imap_arg *p;
	size_t i = 0, k;
	bool ok = false;

	if (!req->lsub && c->nargs > 0 && c->args[0].type == IMAP_ARG_LIST) {
		if (!selection(&c->args[0], req))
			return false;
		i++;
	}
	if (i + 2 > c->nargs || !arg_utf8(s, &c->args[i], &ref))
		goto out;
	strbuf_addstr(&ref, "");
	p = &c->args[i + 1];
	if (p->type == IMAP_ARG_LIST && !req->lsub) {
		if (p->nlist == 0)
			goto out;
		for (k = 0; k < p->nlist; k++)
			if (!add_pattern(s, req, ref.s, &p->list[k]))
				goto out;
	} else if (!add_pattern(s, req, ref.s, p))
		goto out;
	i += 2;
	if (i < c->nargs) {
		if (req->lsub || i + 2 != c->nargs ||
		    !imap_arg_atom_is(&c->args[i], "RETURN") ||
		    !returns(&c->args[i + 1], req))
			goto out;
	}
	ok = true;
out:
	strbuf_free(&ref);
	return ok;
}

static bool
match_any(const struct list_req *req, const char *name)
{
	bool inbox = strncmp(name, "INBOX", 5) == 0 &&
		     (name[5] == '\0' || name[5] == '/');
	char *p;
	size_t i;
	bool m;

	for (i = 0; i < req->npat; i++) {
		if (imap_list_match(req->pat[i], name))
			return true;
		/* INBOX is INBOX in any case */
		if (!inbox || strncasecmp(req->pat[i], "INBOX", 5) != 0)
			continue;
		p = xstrdup(req->pat[i]);
		memcpy(p, "INBOX", 5);
		m = imap_list_match(p, name);
		free(p);
		if (m)
			return true;
	}
	return false;
}

/* Whether a name below list[i] is subscribed. */
static bool
subscribed_child(const struct imap_folder_info *list, size_t n, size_t i)
{
	size_t len = strlen(list[i].name), k;

	for (k = 0; k < n; k++)
		if ((list[k].attrs & IMAP_FA_SUBSCRIBED) &&
		    strncmp(list[k].name, list[i].name, len) == 0 &&
		    list[k].name[len] == '/')
			return true;
	return false;
}

static const char *const special_attr[] = {
	[IMAP_SPECIAL_NONE] = NULL,
	[IMAP_SPECIAL_SENT] = "\\Sent",
	[IMAP_SPECIAL_DRAFTS] = "\\Drafts",
	[IMAP_SPECIAL_JUNK] = "\\Junk",
	[IMAP_SPECIAL_TRASH] = "\\Trash",
};

static void
write_attrs(struct evbuffer *out, const struct imap_folder_info *e,
	    bool subscribed, bool lsub)
{
	const char *a[6];
	size_t n = 0, i;

	if (e->attrs & IMAP_FA_NONEXISTENT)
		a[n++] = lsub ? "\\Noselect" : "\\NonExistent";
	else if (e->attrs & IMAP_FA_NOSELECT)
		a[n++] = "\\Noselect";
	if (!lsub && subscribed)
		a[n++] = "\\Subscribed";
	if (!lsub && !(e->attrs & IMAP_FA_NONEXISTENT)) {
		if (e->attrs & IMAP_FA_HASCHILDREN)
			a[n++] = "\\HasChildren";
		else if (e->attrs & IMAP_FA_HASNOCHILDREN)
			a[n++] = "\\HasNoChildren";
	}
	if (e->special > IMAP_SPECIAL_NONE && e->special <= IMAP_SPECIAL_TRASH)
		a[n++] = special_attr[e->special];
	evbuffer_add_printf(out, "(");
	for (i = 0; i < n; i++)
		evbuffer_add_printf(out, "%s%s", i ? " " : "", a[i]);
	evbuffer_add_printf(out, ")");
}

static void
list_status(struct imap_session *s, const struct list_req *req,
	    const struct imap_folder_info *e)
{
	struct imap_status st;

	if (req->status == 0 ||
	    (e->attrs & (IMAP_FA_NOSELECT | IMAP_FA_NONEXISTENT)))
		return;
	memset(&st, 0, sizeof(st));
	if (imap_store_status(s->store, e->name, &st) == 0)
		imap_write_status(s, e->name, req->status, &st);
}

/* One entry of the store's list: written if the request selects it. */
static void
list_entry(struct imap_session *s, const struct list_req *req,
	   const struct imap_folder_info *list, size_t n, size_t i)
{
	const struct imap_folder_info *e = &list[i];
	struct evbuffer *out = imap_out(s);
	bool sub = (e->attrs & IMAP_FA_SUBSCRIBED) != 0, childinfo = false;

	if (!match_any(req, e->name))
		return;
	if (req->sel_subscribed || req->lsub) {
		if (req->sel_recursive && subscribed_child(list, n, i))
			childinfo = true;
		else if (req->lsub && !sub && strchr(req->pat[0], '%') &&
			 subscribed_child(list, n, i))
			;	/* RFC 3501 6.3.9: a \Noselect parent */
		else if (!sub)
			return;
	} else if (e->attrs & IMAP_FA_NONEXISTENT)
		return;
	if (req->sel_special && e->special == IMAP_SPECIAL_NONE)
		return;
	evbuffer_add_printf(out, "* %s ", req->lsub ? "LSUB" : "LIST");
	if (req->lsub && !sub) {
		evbuffer_add_printf(out, "(\\Noselect)");
	} else
		write_attrs(out, e, sub && (req->ret_subscribed ||
					    req->sel_subscribed), req->lsub);
	evbuffer_add_printf(out, " \"/\" ");
	imap_write_mailbox(s, out, e->name);
	if (childinfo)
		evbuffer_add_printf(out, " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
	evbuffer_add_printf(out, "\r\n");
	list_status(s, req, e);
}

static void
list_run(struct imap_session *s, const struct imap_command *c,
	 struct list_req *req)
{
	struct imap_folder_info *list;
	size_t n, i;

	if (!list_parse(s, c, req)) {
		list_req_free(req);
		imap_done(s, "BAD", NULL, "invalid %s arguments", c->name);
		return;
	}
	/* LIST "" "": the hierarchy delimiter and the root */
	if (!req->lsub && req->npat == 1 && req->pat[0][0] == '\0') {
		list_req_free(req);
		imap_untagged(s, "LIST (\\Noselect) \"/\" \"\"");
		imap_done(s, "OK", NULL, "LIST completed");
		return;
	}
	if (imap_store_list(s->store, &list, &n) < 0) {
		list_req_free(req);
		imap_store_fail(s, errno, false, c->name);
		return;
	}
	for (i = 0; i < n; i++)
		list_entry(s, req, list, n, i);
	imap_store_list_free(list, n);
	list_req_free(req);
	imap_sync_report(s, true);
	imap_done(s, "OK", NULL, "%s completed", c->name);
}

void
imap_cmd_list(struct imap_session *s, const struct imap_command *c)
{
	struct list_req req;

	memset(&req, 0, sizeof(req));
	list_run(s, c, &req);
}

void
imap_cmd_lsub(struct imap_session *s, const struct imap_command *c)
{
	struct list_req req;

	memset(&req, 0, sizeof(req));
	req.lsub = true;
	list_run(s, c, &req);
}
