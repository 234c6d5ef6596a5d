/*
 * The held message as the milters see it at its end, and what they do to
 * it (smtp_milter_private.h). The header (the job's prefix, then the
 * spool's header section) is read into a list of fields that the header
 * actions edit, so each milter sees what the ones before it left; the
 * body stays in the spool until a milter replaces it (a new spool). When
 * anything changed, the spool is written anew at the end: the local
 * header (Return-Path with the sender as it now is, Delivered-To), the
 * fields, the body. Recipients are edited in the job directly.
 *
 * Limits: a header section of at most HDR_MAX octets and HDR_FIELDS_MAX
 * fields, before and after the milters; a replacement body of at most
 * the configured message size; RCPTS_MAX recipients.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/log.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "mail/smtp_parse.h"
#include "net/lookupq.h"
#include "smtpd/smtp_milter_private.h"
#include "smtpd/smtp_private.h"
#include "smtpd/smtp_settings.h"
#include "store/deliver.h"
#include "store/recipient.h"

#define HDR_MAX (1024 * 1024)
#define HDR_FIELDS_MAX 10000
#define HDR_VALUE_MAX 8192
#define HDR_NAME_MAX 100
#define RCPTS_MAX 1000	/* a message's recipients after ADDRCPT */

/* ---- reading the header ---------------------------------------------- */

static void
field_insert(struct sf_milter_txn *mt, size_t at, char *name, char *value)
{
	if (mt->nh == mt->caph) {
		mt->caph = mt->caph == 0 ? 32 : mt->caph * 2;
		mt->h = xreallocarray(mt->h, mt->caph, sizeof(*mt->h));
	}
	memmove(mt->h + at + 1, mt->h + at, (mt->nh - at) * sizeof(*mt->h));
	mt->h[at].name = name;
	mt->h[at].value = value;
	mt->nh++;
}

/* The end of the field that starts at p: its last line's LF (or end). */
static const char *
field_end(const char *p, const char *end)
{
	for (;;) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));

		if (eol == NULL || eol + 1 >= end ||
		    (eol[1] != ' ' && eol[1] != '\t'))
			return eol != NULL ? eol : end;
		p = eol + 1;
	}
}

/*
 * Splits LF-ended header lines into fields, each with its folded lines
 * (linear: a field is cut out once, never grown line by line). -2 when
 * there are more than HDR_FIELDS_MAX.
 */
static int
fields_parse(struct sf_milter_txn *mt, const char *text, size_t len)
{
	const char *p = text, *end = text + len;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *colon, *fend;

		if (eol == NULL)
			eol = end;
		if (mt->nh >= HDR_FIELDS_MAX)
			return -2;
		colon = memchr(p, ':', (size_t)(eol - p));
		if (colon == NULL || *p == ' ' || *p == '\t') {
			/* not a field: the line is kept as it is */
			field_insert(mt, mt->nh, xstrndup(p, (size_t)(eol - p)),
				     NULL);
			p = eol + 1;
			continue;
		}
		fend = field_end(p, end);
		field_insert(mt, mt->nh, xstrndup(p, (size_t)(colon - p)),
			     xstrndup(colon + 1, (size_t)(fend - colon - 1)));
		p = fend + 1;
	}
	return 0;
}

/* The spool's header section from local_hdr_len: its text and where the
 * body starts. */
static int
spool_header(struct sf_milter_txn *mt, struct delivery_job *job,
	     char **text_r, size_t *len_r)
{
	char *text = NULL;
	size_t len = 0;
	uint64_t off = job->local_hdr_len;

	mt->blank = false;
	for (;;) {
		ssize_t n;
		size_t i, from = len;

		if (len >= HDR_MAX) {
			free(text);
			return -2;
		}
		text = xreallocarray(text, len + 65536 + 1, 1);
		n = spool_read(job->spool, off + len, text + len, 65536);
		if (n < 0) {
			free(text);
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		for (i = from; i < len; i++) {
			if (text[i] == '\n' && (i == 0 || text[i - 1] == '\n'))
				break;
		}
		if (i < len) {
			mt->blank = true;
			len = i;
			break;
		}
	}
	mt->body_off = off + len + (mt->blank ? 1 : 0);
	*text_r = text;
	*len_r = len;
	return 0;
}

int
milter_msg_load(struct sf_milter_txn *mt, struct delivery_job *job)
{
	char *text;
	size_t len;
	int r;

	if (mt->loaded)
		return 0;
	if ((r = spool_header(mt, job, &text, &len)) < 0)
		return r;
	r = job->prefix_len > 0
		? fields_parse(mt, job->prefix, job->prefix_len)
		: 0;
	if (r == 0)
		r = fields_parse(mt, text, len);
	mt->hdr_bytes = job->prefix_len + len;
	free(text);
	mt->loaded = r == 0;
	return r;
}

ssize_t
milter_msg_body(struct sf_milter_txn *mt, struct delivery_job *job,
		uint64_t *off, unsigned char *out, size_t size)
{
	const struct spool *sp = mt->newbody != NULL ? mt->newbody
						     : job->spool;
	uint64_t base = mt->newbody != NULL ? 0 : mt->body_off;
	unsigned char raw[32768];
	size_t o = 0;
	ssize_t n;

	if (mt->newbody == NULL && !mt->blank)
		return 0;
	/* each octet may become two */
	n = spool_read(sp, base + *off, raw,
		       size / 2 < sizeof(raw) ? size / 2 : sizeof(raw));
	if (n <= 0)
		return n;
	for (ssize_t i = 0; i < n; i++) {
		if (raw[i] == '\n')
			out[o++] = '\r';
		out[o++] = raw[i];
	}
	*off += (uint64_t)n;
	return (ssize_t)o;
}

/* ---- header actions --------------------------------------------------- */

static bool
name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > HDR_NAME_MAX)
		return false;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s > 0x7e ||
		    *s == ':')
			return false;
	return true;
}

/*
 * A milter's value as stored: CR dropped, a line break always followed by
 * white space (a fold, never a new field), other control characters made
 * spaces; a leading space added unless the milter gives its own
 * (HDR_LEADSPC). NULL if too long.
 */
static char *
value_clean(const char *v, bool leadspc)
{
	size_t n = strlen(v), o = 0;
	char *out;

	if (n > HDR_VALUE_MAX)
		return NULL;
	out = xmalloc(2 * n + 2);
	if (!leadspc)
		out[o++] = ' ';
	for (const char *p = v; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c == '\r')
			continue;
		if (c == '\n') {
			out[o++] = '\n';
			if (p[1] != ' ' && p[1] != '\t')
				out[o++] = '\t';
			continue;
		}
		out[o++] = c < 0x20 && c != '\t' ? ' ' : (char)c;
	}
	/* no trailing white space or line break: the field's own ends it */
	while (o > 0 && strchr("\n\t ", out[o - 1]) != NULL)
		o--;
	out[o] = '\0';
	return out;
}

/* Does name: value match cf's junk_header ("Name: value")? */
static bool
junk_match(const struct milter_config *cf, const char *name, const char *v)
{
	const char *jh = cf->junk_header, *colon, *jv;
	size_t jn, vn;

	if (jh == NULL || (colon = strchr(jh, ':')) == NULL)
		return false;
	jn = (size_t)(colon - jh);
	if (strlen(name) != jn || strncasecmp(name, jh, jn) != 0)
		return false;
	jv = colon + 1 + strspn(colon + 1, " \t");
	v += strspn(v, " \t\n");
	vn = strlen(v);
	while (vn > 0 && strchr(" \t\n", v[vn - 1]) != NULL)
		vn--;
	return strlen(jv) == vn && strncasecmp(jv, v, vn) == 0;
}

/* CHGHEADER: the index-th field named name (from 1) changed or deleted
 * (an empty value); added when there is no such field. */
static void
header_change(struct sf_milter_txn *mt, const struct milter_reply *r,
	      char *value)
{
	uint32_t seen = 0;

	for (size_t i = 0; i < mt->nh; i++) {
		struct mhdr *h = &mt->h[i];

		if (h->value == NULL || strcasecmp(h->name, r->name) != 0 ||
		    ++seen != r->index)
			continue;
		if (r->value[0] == '\0') {
			free(h->name);
			free(h->value);
			free(value);
			memmove(h, h + 1, (mt->nh - i - 1) * sizeof(*h));
			mt->nh--;
		} else {
			free(h->value);
			h->value = value;
		}
		return;
	}
	if (r->value[0] == '\0') {
		free(value);
		return;
	}
	field_insert(mt, mt->nh, xstrdup(r->name), value);
}

static int
header_action(struct sf_milter_txn *mt, const struct milter_config *cf,
	      uint32_t protocol, const struct milter_reply *r,
	      const char **error_r)
{
	char *value;

	if (!name_valid(r->name)) {
		*error_r = "bad header field name";
		return -1;
	}
	if (mt->nh >= HDR_FIELDS_MAX ||
	    (value = value_clean(r->value,
				 protocol & MILTER_P_HDR_LEADSPC)) == NULL ||
	    mt->hdr_bytes + strlen(value) + strlen(r->name) > HDR_MAX) {
		*error_r = "header field too long or too many";
		return -1;
	}
	mt->hdr_bytes += strlen(value) + strlen(r->name) + 2;
	if (r->type != MR_CHGHEADER || r->value[0] != '\0')
		mt->junk |= junk_match(cf, r->name, value);
	if (r->type == MR_ADDHEADER)
		field_insert(mt, mt->nh, xstrdup(r->name), value);
	else if (r->type == MR_INSHEADER)
		field_insert(mt, r->index < mt->nh ? r->index : mt->nh,
			     xstrdup(r->name), value);
	else
		header_change(mt, r, value);
	mt->changed = true;
	return 0;
}

/* ---- the body --------------------------------------------------------- */

static int
replbody(struct smtp_session *s, struct sf_milter_txn *mt,
	 const struct milter_reply *r, const char **error_r)
{
	char *path;
	unsigned char *out;
	size_t o = 0;
	int rc = 0;

	if (!mt->replacing) {
		spool_free(&mt->newbody);
		path = xasprintf("%s/queue/tmp/%s.body", s->config->data_dir,
				 s->txn->id);
		mt->newbody = spool_new(path);
		free(path);
		mt->replacing = true;
		mt->newbody_cr = false;
	}
	/* CRLF to LF, a CR at a piece's end held for the next */
	out = xmalloc(r->body_len + 2);
	for (size_t i = 0; i < r->body_len; i++) {
		unsigned char c = r->body[i];

		if (mt->newbody_cr && c != '\n')
			out[o++] = '\r';
		mt->newbody_cr = c == '\r';
		if (c != '\r')
			out[o++] = c;
	}
	if (spool_size(mt->newbody) + o > s->config->smtp.max_message_size) {
		*error_r = "replacement body too large";
		rc = -1;
	} else if (spool_write(mt->newbody, out, o) < 0) {
		*error_r = "cannot write the replacement body";
		rc = -1;
	}
	free(out);
	mt->changed = true;
	return rc;
}

void
milter_msg_eom(struct sf_milter_txn *mt)
{
	mt->replacing = false;
	mt->newbody_cr = false;
}

/* ---- the envelope ----------------------------------------------------- */

/* A milter's address ("<a@b>" or "a@b") as a path; false if not valid. */
static bool
addr_parse(const char *a, bool null_ok, struct smtp_path *path)
{
	char buf[SMTP_PATH_MAX * 4 + 8];
	const char *end;
	struct smtp_error err;
	int n;

	n = a[0] == '<' ? snprintf(buf, sizeof(buf), "%s", a)
			: snprintf(buf, sizeof(buf), "<%s>", a);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return false;
	return smtp_parse_path(buf, null_ok, true, true, path, &end, &err) ==
		   0 &&
	       *end == '\0';
}

/* The job's envelope for the queue, made when it has none. */
static struct queue_envelope *
env_get(struct smtp_session *s, struct delivery_job *job)
{
	if (job->env == NULL)
		job->env = smtp_envelope_new(s);
	return job->env;
}

static bool
has_mailbox(const struct delivery_job *job, const char *m)
{
	for (size_t i = 0; i < job->nmailboxes; i++)
		if (strcasecmp(job->mailboxes[i], m) == 0)
			return true;
	return false;
}

static bool
has_remote(const struct delivery_job *job, const char *a)
{
	for (size_t i = 0; job->env != NULL && i < job->env->nrcpts; i++)
		if (strcasecmp(job->env->rcpts[i].addr, a) == 0)
			return true;
	return false;
}

/* A milter's recipient as a mailbox; a zeroed one (refused by the
 * resolution: no local part) when it is not valid. */
static void
edit_mailbox(const struct mrcpt_edit *e, struct smtp_mailbox *mbox)
{
	struct smtp_path path;

	memset(mbox, 0, sizeof(*mbox));
	if (addr_parse(e->addr, false, &path))
		*mbox = path.mbox;
}

struct lookup_job *
milter_msg_rcpt_lookup(struct smtp_session *s, struct sf_milter_txn *mt)
{
	/* the milter is trusted: remote addresses are queued */
	struct recipient_ctx ctx = {
	    .hostname = s->config->hostname,
	    .postmaster = s->config->postmaster,
	    .delimiter = s->config->smtp.recipient_delimiter,
	    .trusted = true,
	};
	struct smtp_mailbox *mbox;
	struct rcpt_lookup *l;

	if (mt->nedits == 0)
		return NULL;
	mbox = xcalloc(mt->nedits, sizeof(*mbox));
	for (size_t i = 0; i < mt->nedits; i++)
		edit_mailbox(&mt->edits[i], &mbox[i]);
	l = rcpt_lookup_new(&ctx, mbox, mt->nedits);
	free(mbox);
	return &l->job;
}

/* ADDRCPT: what the address resolved to joins the job. */
static int
rcpt_add(struct smtp_session *s, struct delivery_job *job,
	 const struct recipient_result *res)
{
	if (job->nmailboxes + (job->env != NULL ? job->env->nrcpts : 0) >=
	    RCPTS_MAX)
		return -1;
	if (res->verdict != RCPT_ACCEPT)
		return -1;
	for (size_t i = 0; i < res->nmailboxes; i++) {
		if (has_mailbox(job, res->mailboxes[i]))
			continue;
		job->mailboxes = xreallocarray(job->mailboxes,
					       job->nmailboxes + 1,
					       sizeof(*job->mailboxes));
		job->mailboxes[job->nmailboxes++] =
		    xstrdup(res->mailboxes[i]);
	}
	for (size_t i = 0; i < res->nremotes; i++)
		if (!has_remote(job, res->remotes[i]))
			queue_rcpt_add(env_get(s, job), res->remotes[i], 0, "");
	return 0;
}

static void
remove_mailbox(struct delivery_job *job, const char *m)
{
	for (size_t i = 0; i < job->nmailboxes; i++) {
		if (strcasecmp(job->mailboxes[i], m) != 0)
			continue;
		free(job->mailboxes[i]);
		job->mailboxes[i] = job->mailboxes[--job->nmailboxes];
		return;
	}
}

static void
remove_remote(struct delivery_job *job, const char *a)
{
	struct queue_envelope *e = job->env;

	for (size_t i = 0; e != NULL && i < e->nrcpts; i++) {
		if (strcasecmp(e->rcpts[i].addr, a) != 0)
			continue;
		free(e->rcpts[i].addr);
		free(e->rcpts[i].orcpt);
		memmove(e->rcpts + i, e->rcpts + i + 1,
			(e->nrcpts - i - 1) * sizeof(*e->rcpts));
		e->nrcpts--;
		return;
	}
}

/* DELRCPT: the address and what it resolves to leave the job. */
static void
rcpt_del(struct delivery_job *job, const char *a,
	 const struct recipient_result *res)
{
	struct smtp_path path;
	char buf[SMTP_PATH_MAX * 4 + 8];

	if (addr_parse(a, false, &path) &&
	    smtp_mailbox_format(&path.mbox, buf, sizeof(buf)) == 0) {
		remove_mailbox(job, buf);
		remove_remote(job, buf);
	}
	if (res->verdict != RCPT_ACCEPT)
		return;
	for (size_t i = 0; i < res->nmailboxes; i++)
		remove_mailbox(job, res->mailboxes[i]);
	for (size_t i = 0; i < res->nremotes; i++)
		remove_remote(job, res->remotes[i]);
}

int
milter_msg_rcpts(struct smtp_session *s, struct sf_milter_txn *mt,
		 struct lookup_job *job)
{
	struct rcpt_lookup *l = (struct rcpt_lookup *)job;
	struct delivery_job *dj = s->txn->held_job;

	for (size_t i = 0; i < l->n; i++)
		if (l->res[i].verdict == RCPT_TEMPFAIL)
			return -1;
	for (size_t i = 0; i < l->n && i < mt->nedits; i++) {
		const struct mrcpt_edit *e = &mt->edits[i];

		if (!e->add) {
			rcpt_del(dj, e->addr, &l->res[i]);
			continue;
		}
		/* one we cannot deliver to is left out, not the message */
		if (rcpt_add(s, dj, &l->res[i]) < 0)
			log_event(LOG_WARNING, "milter", "addrcpt-refused",
				  LF_STR("session", s->ses.id),
				  LF_STR("milter", e->milter),
				  LF_STR("addr", e->addr));
	}
	return 0;
}

/* Notes an ADDRCPT or DELRCPT for the end (milter_msg_rcpt_lookup). */
static int
edit_add(struct sf_milter_txn *mt, const struct milter_config *cf, bool add,
	 const char *a)
{
	struct mrcpt_edit *e;

	if (mt->nedits >= RCPTS_MAX)
		return -1;
	mt->edits = xreallocarray(mt->edits, mt->nedits + 1,
				  sizeof(*mt->edits));
	e = &mt->edits[mt->nedits++];
	e->add = add;
	e->addr = xstrdup(a);
	e->milter = cf->name;
	mt->changed = true;
	return 0;
}

static int
chgfrom(struct sf_milter_txn *mt, const struct milter_reply *r)
{
	struct smtp_path path;
	char buf[SMTP_PATH_MAX * 4 + 8];

	if (!addr_parse(r->addr, true, &path))
		return -1;
	if (path.null)
		buf[0] = '\0';
	else if (smtp_mailbox_format(&path.mbox, buf, sizeof(buf)) < 0)
		return -1;
	free(mt->sender);
	mt->sender = xstrdup(buf);
	mt->changed = true;
	return 0;
}

/* QUARANTINE: held, with a field saying by whom and why (the reason
 * made printable ASCII, cut). */
static int
quarantine(struct sf_milter_txn *mt, const struct milter_config *cf,
	   const char *reason)
{
	char why[160];

	ascii_printable(why, sizeof(why), reason, strlen(reason));
	if (!mt->hold && mt->nh < HDR_FIELDS_MAX) {
		field_insert(mt, 0, xstrdup("X-Godwit-Quarantine"),
			     xasprintf(" held by milter %s: %s", cf->name,
				       why));
		mt->changed = true;
	}
	mt->hold = true;
	return 0;
}

/* ---- a modification --------------------------------------------------- */

static uint32_t
action_needed(enum milter_reply_type type)
{
	switch ((int)type) {
	case MR_ADDHEADER: case MR_INSHEADER: return MILTER_ACT_ADDHDRS;
	case MR_CHGHEADER: return MILTER_ACT_CHGHDRS;
	case MR_ADDRCPT: return MILTER_ACT_ADDRCPT;
	case MR_ADDRCPT_PAR: return MILTER_ACT_ADDRCPT_PAR;
	case MR_DELRCPT: return MILTER_ACT_DELRCPT;
	case MR_CHGFROM: return MILTER_ACT_CHGFROM;
	case MR_REPLBODY: return MILTER_ACT_CHGBODY;
	case MR_QUARANTINE: return MILTER_ACT_QUARANTINE;
	}
	return 0;
}

int
milter_msg_modify(struct smtp_session *s, struct sf_milter_txn *mt,
		  const struct milter_config *cf, uint32_t actions,
		  uint32_t protocol, const struct milter_reply *r,
		  const char **error_r)
{
	uint32_t need = action_needed(r->type);

	*error_r = "action not negotiated";
	if (need == 0 || (actions & need) == 0)
		return -1;
	log_event(LOG_INFO, "milter", "modify", LF_STR("session", s->ses.id),
		  LF_STR("queue", s->txn->id), LF_STR("milter", cf->name),
		  LF_STR("action", milter_reply_name(r->type)),
		  LF_STR_IF(r->name != NULL, "name", r->name),
		  LF_STR_IF(r->addr != NULL, "addr", r->addr));
	switch (r->type) {
	case MR_ADDHEADER: case MR_INSHEADER: case MR_CHGHEADER:
		return header_action(mt, cf, protocol, r, error_r);
	case MR_REPLBODY:
		return replbody(s, mt, r, error_r);
	case MR_ADDRCPT: case MR_ADDRCPT_PAR:
		/* one we cannot deliver to is left out, not the message */
		if (edit_add(mt, cf, true, r->addr) < 0)
			log_event(LOG_WARNING, "milter", "addrcpt-refused",
				  LF_STR("session", s->ses.id),
				  LF_STR("milter", cf->name),
				  LF_STR("addr", r->addr));
		mt->changed = true;
		return 0;
	case MR_DELRCPT: {
		struct smtp_path path;
		char buf[SMTP_PATH_MAX * 4 + 8];

		*error_r = "bad recipient";
		mt->changed = true;
		if (!addr_parse(r->addr, false, &path) ||
		    smtp_mailbox_format(&path.mbox, buf, sizeof(buf)) < 0)
			return -1;
		return edit_add(mt, cf, false, r->addr) < 0 ? -1 : 0;
	}
	case MR_CHGFROM:
		*error_r = "bad sender";
		return chgfrom(mt, r);
	case MR_QUARANTINE:
		return quarantine(mt, cf, r->addr);
	default:
		return -1;
	}
}

/* ---- the end ---------------------------------------------------------- */

static int
spool_copy_from(struct spool *dst, const struct spool *src, uint64_t off,
		uint64_t *lines)
{
	char buf[65536];
	ssize_t n;

	while ((n = spool_read(src, off, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++)
			*lines += buf[i] == '\n';
		if (spool_write(dst, buf, (size_t)n) < 0)
			return -1;
		off += (uint64_t)n;
	}
	return n < 0 ? -1 : 0;
}

static int
put_text(struct spool *sp, const char *text, uint64_t *lines)
{
	for (const char *p = text; *p != '\0'; p++)
		*lines += *p == '\n';
	return spool_write(sp, text, strlen(text));
}

/* The message written anew: local header, fields, body. */
static int
rewrite(struct smtp_session *s, struct sf_milter_txn *mt,
	struct delivery_job *job, const char *sender)
{
	char *path = xasprintf("%s/queue/tmp/%s.m", s->config->data_dir,
			       job->id);
	struct spool *sp = spool_new(path);
	size_t lhl = 0;
	uint64_t lines = 0;
	int r = 0;

	free(path);
	if (job->nmailboxes > 0)
		r = spool_local_header(sp, sender,
				       job->nmailboxes == 1 ? job->mailboxes[0]
							    : NULL,
				       &lhl, &lines);
	for (size_t i = 0; r == 0 && i < mt->nh; i++) {
		r = put_text(sp, mt->h[i].name, &lines);
		if (r == 0 && mt->h[i].value != NULL)
			r = spool_write(sp, ":", 1) < 0 ||
			    put_text(sp, mt->h[i].value, &lines) < 0 ? -1 : 0;
		if (r == 0)
			r = put_text(sp, "\n", &lines);
	}
	if (r == 0 && (mt->blank || mt->newbody != NULL))
		r = put_text(sp, "\n", &lines);
	if (r == 0)
		r = mt->newbody != NULL
			? spool_copy_from(sp, mt->newbody, 0, &lines)
			: spool_copy_from(sp, job->spool, mt->body_off, &lines);
	if (r < 0) {
		spool_free(&sp);
		return -1;
	}
	spool_free(&job->spool);
	job->spool = sp;
	job->local_hdr_len = lhl;
	job->vsize = spool_size(sp) + lines;
	/* the prefix is among the fields now */
	xfree(&job->prefix);
	job->prefix_len = 0;
	return 0;
}

/* QUARANTINE: every recipient, local ones too, into the hold queue. */
static void
to_hold(struct smtp_session *s, struct delivery_job *job)
{
	struct queue_envelope *e = env_get(s, job);

	for (size_t i = 0; i < job->nmailboxes; i++) {
		if (!has_remote(job, job->mailboxes[i]))
			queue_rcpt_add(e, job->mailboxes[i], 0, "");
		free(job->mailboxes[i]);
	}
	xfree(&job->mailboxes);
	job->nmailboxes = 0;
	job->hold = true;
}

int
milter_msg_apply(struct smtp_session *s, struct sf_milter_txn *mt,
		 struct delivery_job *job)
{
	struct smtp_txn *t = s->txn;

	if (mt->junk)
		job->quarantine = true;
	if (mt->sender != NULL) {
		snprintf(t->sender, sizeof(t->sender), "%s", mt->sender);
		if (job->env != NULL) {
			free(job->env->sender);
			job->env->sender = xstrdup(mt->sender);
		}
	}
	if (mt->hold) {
		to_hold(s, job);
		log_event(LOG_INFO, "milter", "hold",
			  LF_STR("session", s->ses.id), LF_STR("queue", t->id));
	}
	if (mt->changed && rewrite(s, mt, job, t->sender) < 0)
		return -1;
	return 0;
}

void
milter_msg_clear(struct sf_milter_txn *mt)
{
	for (size_t i = 0; i < mt->nh; i++) {
		free(mt->h[i].name);
		free(mt->h[i].value);
	}
	xfree(&mt->h);
	mt->nh = mt->caph = 0;
	spool_free(&mt->newbody);
	xfree(&mt->sender);
	for (size_t i = 0; i < mt->nedits; i++)
		free(mt->edits[i].addr);
	xfree(&mt->edits);
	mt->nedits = 0;
	if (mt->lookup != NULL) {
		/* the lookup queue frees it */
		lookup_job_cancel(mt->lookup);
		mt->lookup = NULL;
	}
	mt->loaded = false;
}
