/*
 * Delivery status notifications: see dsn.h for the contract. The three
 * parts are built into buffers of their own first, so that the boundary
 * can be checked against everything it will enclose before the message
 * is put together. Everything that comes from the original message, the
 * envelope or a remote server is distrusted: control characters never
 * reach a header-like line (a CR LF in a diagnostic cannot start a new
 * field), 8-bit octets survive only as valid UTF-8 and only where the
 * part's type allows them, and every value is cut to a length that keeps
 * its line far below 998 octets.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "mail/dsn.h"
#include "lib/strbuf.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "mail/smtp_parse.h"

#define ADDR_MAX 512		/* an address or ORCPT as shown */
#define HOST_MAX 255
#define QID_MAX 32
#define ENVID_MAX 256
#define DIAG_MAX 900		/* Diagnostic-Code value: cut beyond */
#define FOLD_COL 78		/* fold where a space allows */
#define BOUNDARY_MAX 70		/* RFC 2046 */
#define DATE_MAX 64

static bool
ob_ends_nl(const struct strbuf *b)
{
	return b->len > 0 && b->s[b->len - 1] == '\n';
}

static bool
has_8bit(const void *p, size_t n)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < n; i++)
		if (s[i] >= 0x80)
			return true;
	return false;
}

static bool
str_8bit(const char *s)
{
	return s != NULL && has_8bit(s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s (n octets left), or 0. */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	size_t len, i;
	unsigned cp;

	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* no overlong forms, no surrogates, nothing past U+10FFFF */
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

/*
 * A one-line copy of s fit for a header field or a line of text: control
 * characters (CR, LF, TAB among them) become spaces, runs of spaces one,
 * no space at either end; valid UTF-8 is kept when utf8 says so, any
 * other 8-bit octet becomes '?'. At most max octets, never ending in the
 * middle of a UTF-8 sequence. NULL gives "".
 */
static char *
clean(const char *s, size_t max, bool utf8)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t n = strlen((const char *)p), i = 0, len = 0, k;
	char *out = xmalloc(max + 1);
	bool space = false;

	while (i < n) {
		if (p[i] < 0x20 || p[i] == 0x7f || p[i] == ' ') {
			space = len > 0;
			i++;
			continue;
		}
		k = 1;
		if (p[i] >= 0x80)
			k = utf8 ? utf8_seq(p + i, n - i) : 0;
		if (len + (space ? 1 : 0) + (k ? k : 1) > max)
			break;
		if (space)
			out[len++] = ' ';
		space = false;
		if (k == 0) {
			out[len++] = '?';
			i++;
		} else {
			memcpy(out + len, p + i, k);
			len += k;
			i += k;
		}
	}
	out[len] = '\0';
	return out;
}

/* A host name or queue id for a Message-ID or boundary: [A-Za-z0-9.-_]. */
static char *
token(const char *s, size_t max)
{
	size_t n = s ? strnlen(s, max) : 0, i;
	char *out = xmalloc(n + 2);

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		out[i] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
				 (c >= '0' && c <= '9') || c == '.' ||
				 c == '-' || c == '_' ? (char)c : '_';
	}
	if (n == 0)
		out[n++] = '_';
	out[n] = '\0';
	return out;
}

/*
 * Appends text (one line, already clean) at column col, breaking at
 * spaces so that lines stay within FOLD_COL where a space allows: the
 * space is replaced by a line end and cont. cont is " " for a folded
 * header field, an indent for text.
 */
static void
fold(struct strbuf *b, size_t col, const char *text, const char *cont)
{
	const char *p = text, *sp;
	size_t w;
	bool first = true;

	while (*p != '\0') {
		sp = strchr(p, ' ');
		w = sp ? (size_t)(sp - p) : strlen(p);
		if (!first) {
			if (col + 1 + w > FOLD_COL) {
				strbuf_addstr(b, "\n");
				strbuf_addstr(b, cont);
				col = strlen(cont);
			} else {
				strbuf_addstr(b, " ");
				col++;
			}
		}
		strbuf_add(b, p, w);
		col += w;
		first = false;
		p += w;
		if (*p == ' ')
			p++;
	}
	strbuf_addstr(b, "\n");
}

/* "Name: value" folded; value is clean. */
static void
field(struct strbuf *b, const char *name, const char *value)
{
	strbuf_addstr(b, name);
	strbuf_addstr(b, ": ");
	fold(b, strlen(name) + 2, value, " ");
}

static void
date_field(struct strbuf *b, const char *name, int64_t t)
{
	char date[DATE_MAX];

	rfc5322_date(date, sizeof(date), t);
	strbuf_addf(b, "%s: %s\n", name, date);
}

static const char *
action_name(enum dsn_action a)
{
	switch (a) {
	case DSN_FAILED:
		return "failed";
	case DSN_DELAYED:
		return "delayed";
	case DSN_DELIVERED:
		return "delivered";
	case DSN_RELAYED:
		return "relayed";
	}
	return "failed";
}

/* An out-of-range action is treated as a failure everywhere. */
static enum dsn_action
action_of(const struct dsn_rcpt *rc)
{
	switch (rc->action) {
	case DSN_FAILED:
	case DSN_DELAYED:
	case DSN_DELIVERED:
	case DSN_RELAYED:
		return rc->action;
	}
	return DSN_FAILED;
}

/* RFC 3463 status-code: class "." subject "." detail. */
static bool
status_ok(const char *s)
{
	size_t n;

	if (s == NULL || (s[0] != '2' && s[0] != '4' && s[0] != '5') ||
	    s[1] != '.')
		return false;
	s += 2;
	for (int part = 0; part < 2; part++) {
		n = strspn(s, "0123456789");
		if (n < 1 || n > 3)
			return false;
		s += n;
		if (part == 0 && *s++ != '.')
			return false;
	}
	return *s == '\0';
}

static const char *
status_of(const struct dsn_rcpt *rc)
{
	if (status_ok(rc->status))
		return rc->status;
	switch (action_of(rc)) {
	case DSN_DELAYED:
		return "4.0.0";
	case DSN_DELIVERED:
	case DSN_RELAYED:
		return "2.0.0";
	default:
		return "5.0.0";
	}
}

/* "550 ..." or "421-...": an SMTP reply, as opposed to our own text. */
static bool
is_smtp_reply(const char *d)
{
	return d[0] >= '2' && d[0] <= '5' && d[1] >= '0' && d[1] <= '9' &&
	       d[2] >= '0' && d[2] <= '9' &&
	       (d[3] == '\0' || d[3] == ' ' || d[3] == '-');
}

/* What the whole report needs to know before any part is written. */
struct ctx {
	const struct dsn_report *r;
	char *host;		/* clean, for text */
	bool global;		/* message/global-delivery-status */
	bool utf8_text;		/* part 1 in utf-8 */
	bool any_failed;
	bool full;		/* return the whole message */
	bool too_large;		/* RET=FULL asked, headers only given */
	size_t msglen;		/* what of r->msg may be used */
};

static bool
ret_is(const struct dsn_report *r, const char *v)
{
	return r->ret != NULL && strcasecmp(r->ret, v) == 0;
}

static void
ctx_init(struct ctx *c, const struct dsn_report *r)
{
	const struct dsn_rcpt *rc;

	memset(c, 0, sizeof(*c));
	c->r = r;
	c->host = token(r->hostname, HOST_MAX);
	for (size_t i = 0; i < r->nrcpts; i++) {
		rc = &r->rcpts[i];
		if (str_8bit(rc->addr) || str_8bit(rc->orcpt))
			c->global = true;
		if (str_8bit(rc->diagnostic))
			c->utf8_text = true;
		if (action_of(rc) == DSN_FAILED)
			c->any_failed = true;
	}
	if (c->global)
		c->utf8_text = true;
	c->msglen = r->msg != NULL ? r->msglen : 0;
	if (c->msglen > DSN_FULL_MAX)
		c->msglen = DSN_FULL_MAX;
	/* RFC 3461 4.3: the content goes only with a failure */
	if (ret_is(r, "FULL") && c->any_failed) {
		if (r->msgsize <= DSN_FULL_MAX && r->msglen == r->msgsize &&
		    r->msg != NULL)
			c->full = true;
		else
			c->too_large = true;
	}
}

/* "<addr>: host mx said: 550 ..." as a wrapped paragraph. */
static void
text_rcpt(struct strbuf *b, const struct ctx *c, const struct dsn_rcpt *rc)
{
	char *addr = clean(rc->addr, ADDR_MAX, c->utf8_text);
	char *mta = clean(rc->remote_mta, HOST_MAX, false);
	char *diag = clean(rc->diagnostic, DIAG_MAX, c->utf8_text);
	struct strbuf line = {0};

	strbuf_addf(&line, "<%s>:", addr);
	if (*mta != '\0' && *diag != '\0')
		strbuf_addf(&line, " host %s said: %s", mta, diag);
	else if (*diag != '\0')
		strbuf_addf(&line, " %s", diag);
	else if (*mta != '\0')
		strbuf_addf(&line, " status %s, host %s", status_of(rc), mta);
	else
		strbuf_addf(&line, " status %s", status_of(rc));
	fold(b, 0, line.s, "    ");
	strbuf_free(&line);
	free(addr);
	free(mta);
	free(diag);
}

static void
text_intro(struct strbuf *b, const struct ctx *c, enum dsn_action a)
{
	const struct dsn_report *r = c->r;
	char date[DATE_MAX];
	int64_t until = 0;

	switch (a) {
	case DSN_FAILED:
		strbuf_addstr(b, "I'm sorry to have to inform you that your "
				 "message could not\nbe delivered to one or "
				 "more recipients. The reasons follow.\n");
		break;
	case DSN_DELAYED:
		for (size_t i = 0; i < r->nrcpts; i++)
			if (action_of(&r->rcpts[i]) == DSN_DELAYED &&
			    r->rcpts[i].retry_until > until)
				until = r->rcpts[i].retry_until;
		strbuf_addstr(b, "This is a warning only: you do not need to "
				 "send your message again.\n\nYour message "
				 "could not yet be delivered to the recipients "
				 "below.\n");
		if (until > 0) {
			rfc5322_date(date, sizeof(date), until);
			strbuf_addf(b, "It is still being retried, and will be "
				       "until\n%s.\n", date);
		} else
			strbuf_addstr(b, "It is still being retried.\n");
		break;
	case DSN_DELIVERED:
		strbuf_addstr(b, "Your message was successfully delivered to "
				 "the destination(s) listed\nbelow.\n");
		break;
	case DSN_RELAYED:
		strbuf_addstr(b, "Your message was passed on to a mail system "
				 "that does not send delivery\nreports, for "
				 "the destination(s) listed below. You may "
				 "hear nothing more\nabout it.\n");
		break;
	}
	strbuf_addstr(b, "\n");
}

static void
build_text(struct strbuf *b, const struct ctx *c)
{
	static const enum dsn_action order[] = {DSN_FAILED, DSN_DELAYED,
						DSN_DELIVERED, DSN_RELAYED};
	const struct dsn_report *r = c->r;
	bool seen;

	strbuf_addf(b, "This is the mail system at host %s.\n\n", c->host);
	for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
		seen = false;
		for (size_t i = 0; i < r->nrcpts; i++) {
			if (action_of(&r->rcpts[i]) != order[k])
				continue;
			if (!seen)
				text_intro(b, c, order[k]);
			seen = true;
			text_rcpt(b, c, &r->rcpts[i]);
		}
		if (seen)
			strbuf_addstr(b, "\n");
	}
	if (c->msglen > 0 && c->too_large)
		strbuf_addf(b, "Your message was too large to return whole "
			       "(%llu octets);\nonly its header section is "
			       "attached.\n\n",
			    (unsigned long long)r->msgsize);
	else if (c->msglen > 0 && c->full)
		strbuf_addstr(b, "Your message is attached.\n\n");
	else if (c->msglen > 0)
		strbuf_addstr(b, "The header section of your message is "
				 "attached.\n\n");
	strbuf_addf(b, "If you need help, write to postmaster@%s and include "
		       "this report.\n", c->host);
}

static void
ds_rcpt(struct strbuf *b, const struct ctx *c, const struct dsn_rcpt *rc)
{
	char *addr = clean(rc->addr, ADDR_MAX, c->global);
	char *orcpt = clean(rc->orcpt, ADDR_MAX, c->global);
	char *mta = clean(rc->remote_mta, HOST_MAX, false);
	char *diag = clean(rc->diagnostic, DIAG_MAX, c->global);
	enum dsn_action a = action_of(rc);
	struct strbuf v = {0};

	strbuf_addstr(b, "\n");
	if (*orcpt != '\0') {
		/* the type is the sender's; one is needed all the same */
		strbuf_addf(&v, "%s%s", strchr(orcpt, ';') ? "" : "rfc822; ",
			    orcpt);
		field(b, "Original-Recipient", v.s);
		strbuf_reset(&v);
	}
	strbuf_addf(&v, "%s; %s", str_8bit(addr) ? "utf-8" : "rfc822", addr);
	field(b, "Final-Recipient", v.s);
	strbuf_addf(b, "Action: %s\nStatus: %s\n", action_name(a),
		    status_of(rc));
	if (*mta != '\0') {
		strbuf_reset(&v);
		strbuf_addf(&v, "dns; %s", mta);
		field(b, "Remote-MTA", v.s);
	}
	if (*diag != '\0') {
		strbuf_reset(&v);
		strbuf_addf(&v, "%s; %s",
			    is_smtp_reply(diag) ? "smtp" : "X-godwit", diag);
		field(b, "Diagnostic-Code", v.s);
	}
	if (rc->last_attempt > 0)
		date_field(b, "Last-Attempt-Date", rc->last_attempt);
	if (a == DSN_DELAYED && rc->retry_until > 0)
		date_field(b, "Will-Retry-Until", rc->retry_until);
	strbuf_free(&v);
	free(addr);
	free(orcpt);
	free(mta);
	free(diag);
}

/* message/delivery-status: the per-message fields in RFC 3464 order. */
static void
build_status(struct strbuf *b, const struct ctx *c)
{
	const struct dsn_report *r = c->r;
	char *envid;

	if (r->envid != NULL && r->envid[0] != '\0') {
		envid = clean(r->envid, ENVID_MAX, c->global);
		if (*envid != '\0')
			field(b, "Original-Envelope-Id", envid);
		free(envid);
	}
	strbuf_addf(b, "Reporting-MTA: dns; %s\n", c->host);
	if (r->arrival > 0)
		date_field(b, "Arrival-Date", r->arrival);
	for (size_t i = 0; i < r->nrcpts; i++)
		ds_rcpt(b, c, &r->rcpts[i]);
}

/* Copies msg with CRLF made LF (a bare CR is the original's content). */
static void
copy_lf(struct strbuf *b, const unsigned char *msg, size_t len)
{
	size_t i = 0, start = 0;

	for (; i < len; i++) {
		if (msg[i] == '\r' && i + 1 < len && msg[i + 1] == '\n') {
			strbuf_add(b, msg + start, i - start);
			start = i + 1;
		}
	}
	strbuf_add(b, msg + start, len - start);
}

static void
build_original(struct strbuf *b, const struct ctx *c)
{
	size_t n = c->full ? c->msglen
			   : dsn_header_len(c->r->msg, c->msglen);

	copy_lf(b, c->r->msg, n);
}

static bool
contains(const struct strbuf *b, const char *s)
{
	return b->len > 0 && memmem(b->s, b->len, s, strlen(s)) != NULL;
}

/*
 * "qid.now[.random]/host", cut to 70 octets. The first try is
 * predictable; if it occurs in a part (the original may quote an earlier
 * report of ours), a random one follows, which an attacker cannot plant.
 */
static char *
make_boundary(const struct ctx *c, const struct strbuf *parts, size_t nparts)
{
	char *qid = token(c->r->queue_id, QID_MAX), *bd = NULL;
	unsigned long long rnd;
	bool clash = true;

	for (int tries = 0; clash; tries++) {
		free(bd);
		if (tries == 0)
			bd = xasprintf("%s.%lld/%s", qid, (long long)c->r->now,
				       c->host);
		else {
			if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
				rnd = (unsigned long long)now_ms() * 2654435761u +
				      (unsigned)tries;
			bd = xasprintf("%s.%lld.%016llx/%s", qid,
				       (long long)c->r->now, rnd, c->host);
		}
		if (strlen(bd) > BOUNDARY_MAX)
			bd[BOUNDARY_MAX] = '\0';
		clash = false;
		for (size_t i = 0; i < nparts; i++)
			if (contains(&parts[i], bd))
				clash = true;
	}
	free(qid);
	return bd;
}

static const char *
subject_of(const struct dsn_report *r)
{
	switch (r->nrcpts > 0 ? action_of(&r->rcpts[0]) : DSN_FAILED) {
	case DSN_DELAYED:
		return "Delayed Mail (still being retried)";
	case DSN_DELIVERED:
	case DSN_RELAYED:
		return "Successful Mail Delivery Report";
	default:
		return "Undelivered Mail Returned to Sender";
	}
}

static void
part_header(struct strbuf *b, const char *bd, const char *desc,
	    const char *type, bool eight)
{
	strbuf_addf(b, "\n--%s\nContent-Description: %s\nContent-Type: %s\n",
		    bd, desc, type);
	if (eight)
		strbuf_addstr(b, "Content-Transfer-Encoding: 8bit\n");
	strbuf_addstr(b, "\n");
}

static void
put_part(struct strbuf *out, const struct strbuf *p)
{
	strbuf_add(out, p->s, p->len);
	if (!ob_ends_nl(p))
		strbuf_addstr(out, "\n");
}

char *
dsn_format(const struct dsn_report *r, size_t *len_r)
{
	struct strbuf out = {0}, parts[3] = {{0}};
	struct ctx c;
	char *bd, *sender, *qid, date[DATE_MAX];
	bool eight[3], has3;
	const char *type3, *desc3;

	ctx_init(&c, r);
	build_text(&parts[0], &c);
	build_status(&parts[1], &c);
	has3 = c.msglen > 0;
	if (has3)
		build_original(&parts[2], &c);
	for (int i = 0; i < 3; i++)
		eight[i] = has_8bit(parts[i].s, parts[i].len);
	bd = make_boundary(&c, parts, 3);

	sender = clean(r->sender, ADDR_MAX, true);
	qid = token(r->queue_id, QID_MAX);
	strbuf_addf(&out, "From: Mail Delivery System <MAILER-DAEMON@%s>\n",
		    c.host);
	strbuf_addf(&out, "To: <%s>\n", sender);
	strbuf_addf(&out, "Subject: %s\n", subject_of(r));
	rfc5322_date(date, sizeof(date), r->now);
	strbuf_addf(&out, "Date: %s\n", date);
	/* the action makes a delay warning and a bounce differ */
	strbuf_addf(&out, "Message-ID: <%s.dsn-%s.%lld@%s>\n", qid,
		    action_name(r->nrcpts > 0 ? action_of(&r->rcpts[0])
					      : DSN_FAILED),
		    (long long)r->now, c.host);
	strbuf_addstr(&out, "Auto-Submitted: auto-replied\n"
			    "MIME-Version: 1.0\n");
	strbuf_addf(&out, "Content-Type: multipart/report; "
			  "report-type=delivery-status;\n\tboundary=\"%s\"\n",
		    bd);
	if (eight[0] || eight[1] || eight[2])
		strbuf_addstr(&out, "Content-Transfer-Encoding: 8bit\n");
	strbuf_addstr(&out, "\nThis is a MIME-encapsulated message.\n");

	part_header(&out, bd, "Notification",
		    c.utf8_text ? "text/plain; charset=utf-8"
				: "text/plain; charset=us-ascii",
		    eight[0]);
	put_part(&out, &parts[0]);
	part_header(&out, bd, "Delivery report",
		    c.global ? "message/global-delivery-status"
			     : "message/delivery-status",
		    eight[1]);
	put_part(&out, &parts[1]);
	if (has3) {
		if (c.full) {
			type3 = r->smtputf8 ? "message/global" : "message/rfc822";
			desc3 = "Undelivered Message";
		} else {
			type3 = r->smtputf8 ? "message/global-headers"
					    : "text/rfc822-headers";
			desc3 = "Message Headers";
		}
		part_header(&out, bd, desc3, type3, eight[2]);
		put_part(&out, &parts[2]);
	}
	strbuf_addf(&out, "\n--%s--\n", bd);

	for (int i = 0; i < 3; i++)
		strbuf_free(&parts[i]);
	free(c.host);
	free(bd);
	free(sender);
	free(qid);
	*len_r = out.len;
	return strbuf_steal(&out);
}

size_t
dsn_header_len(const unsigned char *msg, size_t len)
{
	size_t i = 0;

	/* i is at the start of a line */
	while (i < len) {
		if (msg[i] == '\n')
			return i + 1;
		if (msg[i] == '\r' && i + 1 < len && msg[i + 1] == '\n')
			return i + 2;
		while (i < len && msg[i] != '\n')
			i++;
		if (i < len)
			i++;
	}
	return len;
}

bool
dsn_wanted(unsigned notify, enum dsn_action action)
{
	if (notify & SMTP_NOTIFY_NEVER)
		return false;
	if (notify == 0)
		return action == DSN_FAILED || action == DSN_DELAYED;
	switch (action) {
	case DSN_FAILED:
		return (notify & SMTP_NOTIFY_FAILURE) != 0;
	case DSN_DELAYED:
		return (notify & SMTP_NOTIFY_DELAY) != 0;
	case DSN_DELIVERED:
	case DSN_RELAYED:
		return (notify & SMTP_NOTIFY_SUCCESS) != 0;
	}
	return false;
}

unsigned
dsn_notify_allowed(unsigned notify, bool verified)
{
	if (verified || (notify & SMTP_NOTIFY_NEVER) != 0)
		return notify;
	if (notify == 0)
		return SMTP_NOTIFY_FAILURE;
	notify &= SMTP_NOTIFY_FAILURE;
	return notify != 0 ? notify : SMTP_NOTIFY_NEVER;
}

bool
dsn_ret_full_allowed(bool verified)
{
	return verified;
}
