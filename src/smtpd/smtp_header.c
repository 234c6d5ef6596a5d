/*
 * The header section of authenticated mail (submission): held until its
 * end so that Date: and Message-ID: can be added (RFC 6409 section 8) and,
 * with submission.check_from, From: and Sender: checked against what the
 * user may send as. See smtp_header.h.
 *
 * Whether the user may send as an address is a user-database question,
 * and the database is asked off the loop (net/lookupq.h). The header is
 * complete in the middle of the data, where the session cannot stop to
 * wait without holding the client's stream; so the checks are only
 * noted there, in the order they apply (t->hchecks), and asked in one
 * lookup at the end of the data (smtp_header_lookup()), where the client
 * waits for the reply anyway. Their refusal is answered at the end of the
 * data as before; the header is written out at once, as the other
 * checks' refusals also throw the spooled message away.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "net/listener.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "mail/mail_header.h"
#include "net/auth.h"
#include "net/lookupq.h"
#include "smtpd/smtp_checks.h"
#include "smtpd/smtp_header.h"
#include "smtpd/smtp_private.h"
#include "smtpd/smtp_settings.h"
#include "store/deliver.h"

/* ---- the header of authenticated mail -------------------------------- */

/* Records why the header section is refused; returns -1. */
static int
header_refuse(struct smtp_txn *t, int code, const char *enh, const char *why,
	      const char *detail, const char *text)
{
	t->hdr_code = code;
	t->hdr_enh = enh;
	t->hdr_why = why;
	snprintf(t->hdr_text, sizeof(t->hdr_text), "%s", text);
	free(t->hdr_detail);
	t->hdr_detail = detail != NULL ? xstrdup(detail) : NULL;
	return -1;
}

#define HEADER_MAILBOXES_MAX 100

/*
 * Notes a check: addr must be the user's to send as, else the refusal
 * (addr NULL: the refusal, at this place in the order, without a
 * lookup).
 */
static void
check_add(struct smtp_session *s, const char *addr, int code,
	  const char *enh, const char *why, const char *detail,
	  const char *text)
{
	struct smtp_txn *t = s->txn;
	struct smtp_hdr_check *c;

	if (addr != NULL && auth_sender_own(s->account, addr,
					    s->config->smtp.recipient_delimiter) == 1)
		return;		/* the user's own: nothing to ask */
	t->hchecks = xreallocarray(t->hchecks, t->nhchecks + 1,
				   sizeof(*t->hchecks));
	c = &t->hchecks[t->nhchecks++];
	memset(c, 0, sizeof(*c));
	c->addr = addr != NULL ? xstrdup(addr) : NULL;
	c->code = code;
	c->enh = enh;
	c->why = why;
	c->detail = detail != NULL ? xstrdup(detail) : NULL;
	snprintf(c->text, sizeof(c->text), "%s", text);
}

/* A field's refusal found without the database: at once if no lookup
 * comes before it, else in its place after them. Returns -1. */
static int
field_refuse(struct smtp_session *s, int code, const char *enh,
	     const char *why, const char *text)
{
	struct smtp_txn *t = s->txn;

	if (t->nhchecks == 0)
		return header_refuse(t, code, enh, why, NULL, text);
	check_add(s, NULL, code, enh, why, NULL, text);
	return -1;
}

void
smtp_header_checks_free(struct smtp_txn *t)
{
	for (size_t i = 0; i < t->nhchecks; i++) {
		free(t->hchecks[i].addr);
		free(t->hchecks[i].detail);
	}
	xfree(&t->hchecks);
	t->nhchecks = 0;
}

struct lookup_job *
smtp_header_lookup(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	struct sender_lookup *l;
	const char **addrs;

	if (t->nhchecks == 0 || t->hdr_code != 0)
		return NULL;
	addrs = xcalloc(t->nhchecks, sizeof(*addrs));
	for (size_t i = 0; i < t->nhchecks; i++)
		addrs[i] = t->hchecks[i].addr;
	l = sender_lookup_new(s->account, s->config->smtp.recipient_delimiter,
			      addrs, t->nhchecks);
	free(addrs);
	return &l->job;
}

void
smtp_header_looked_up(struct smtp_session *s, struct lookup_job *job)
{
	struct sender_lookup *l = (struct sender_lookup *)job;
	struct smtp_txn *t = s->txn;
	const struct smtp_hdr_check *c;

	if (l->failed >= t->nhchecks)
		return;		/* all the user's */
	c = &t->hchecks[l->failed];
	if (c->addr != NULL && l->r < 0)
		header_refuse(t, 451, "4.3.0", "userdb-error", NULL,
			      "Error: local error");
	else
		header_refuse(t, c->code, c->enh, c->why, c->detail, c->text);
}

/*
 * The addresses a display name or comment shows must be the mailbox's own
 * or others the user may send as: "bob@example.test" <alice@example.test>
 * reads as bob's mail in most mail readers.
 */
static int
display_check(struct smtp_session *s, const struct mail_mailbox *m,
	      const char *field)
{
	const char *texts[] = {m->display, m->comment};

	for (size_t k = 0; k < 2; k++) {
		char **v;
		size_t n;
		if (texts[k] == NULL)
			continue;
		n = mail_display_addresses(texts[k], &v);
		for (size_t i = 0; i < n; i++) {
			if (strcasecmp(v[i], m->addr) == 0)
				continue;
			check_add(s, v[i], 550, "5.7.1",
				  "display-name-address", v[i],
				  strcmp(field, "From") == 0
				      ? "Error: a display name in header "
					"From: shows another address"
				      : "Error: the display name in header "
					"Sender: shows another address");
		}
		mail_strings_free(&v, n);
	}
	return 0;
}

/*
 * From: (a mailbox-list) or Sender: (one mailbox): every mailbox must be
 * an address the user may send as, the rule MAIL FROM follows.
 */
static int
mailbox_field_check(struct smtp_session *s, const struct mail_header_field *f,
		    bool sender)
{
	struct mail_address_list l;
	const char *err, *field = sender ? "Sender" : "From";
	char *v = mail_header_unfold(f);
	char text[200];

	if (mail_address_list_parse(v, strlen(v), &l, &err) < 0) {
		snprintf(text, sizeof(text),
			 "Error: header %s: is not a valid address: %s", field,
			 err);
		free(v);
		return field_refuse(s, 550, "5.6.0", "bad-address-header",
				    text);
	}
	free(v);
	if (l.ngroups > 0 || l.n == 0 || (sender && l.n != 1)) {
		/* RFC 5322 3.6.2: from = mailbox-list, sender = mailbox */
		snprintf(text, sizeof(text),
			 sender ? "Error: header Sender: must hold exactly one "
				  "address (RFC 5322 3.6.2)"
				: "Error: header From: must hold one or more "
				  "addresses and no group (RFC 5322 3.6.2)");
		mail_address_list_clear(&l);
		return field_refuse(s, 550, "5.6.0", "bad-address-header",
				    text);
	}
	if (l.n > HEADER_MAILBOXES_MAX) {
		/* each may cost a user-database lookup */
		snprintf(text, sizeof(text),
			 "Error: header %s: has more than %d addresses", field,
			 HEADER_MAILBOXES_MAX);
		mail_address_list_clear(&l);
		return field_refuse(s, 550, "5.6.0", "bad-address-header",
				    text);
	}
	snprintf(text, sizeof(text),
		 "Error: header %s: not owned by the authenticated user",
		 field);
	for (size_t i = 0; i < l.n; i++) {
		check_add(s, l.v[i].addr, 553, "5.7.1",
			  sender ? "header-sender-not-owned" : "from-not-owned",
			  l.v[i].addr, text);
		if (s->config->submission.refuse_address_display_name)
			display_check(s, &l.v[i], field);
	}
	mail_address_list_clear(&l);
	return 0;
}

/*
 * The held header section (LF line ends) of authenticated mail: notes
 * Date: and Message-ID: in any spelling of the name, and with
 * submission.check_from applies RFC 5322 3.6 (one From:, at most one
 * Sender:, a well-formed header section) and notes the ownership
 * checks (t->hchecks). Returns 0, or -1 with a refusal in t->hdr_* or
 * noted after the lookups before it.
 */
static int
header_check(struct smtp_session *s, const unsigned char *h, size_t len)
{
	struct smtp_txn *t = s->txn;
	struct mail_header_iter it;
	struct mail_header_field f, from = {0}, sender = {0};
	unsigned nfrom = 0, nsender = 0;
	const char *err;
	char text[200];
	int r;

	mail_header_iter_init(&it, h, len);
	while ((r = mail_header_next(&it, &f, &err)) == 1) {
		if (mail_header_name_is(&f, "From")) {
			if (nfrom++ == 0)
				from = f;
		} else if (mail_header_name_is(&f, "Sender")) {
			if (nsender++ == 0)
				sender = f;
		} else if (mail_header_name_is(&f, "Date")) {
			t->data.has_date = true;
		} else if (mail_header_name_is(&f, "Message-ID")) {
			t->data.has_message_id = true;
		}
	}
	if (!s->config->submission.check_from)
		return 0;
	if (r < 0) {
		snprintf(text, sizeof(text),
			 "Error: malformed header section at line %zu: %s",
			 it.line, err);
		return header_refuse(t, 550, "5.6.0", "bad-header", NULL, text);
	}
	if (nfrom > 1)
		return header_refuse(t, 550, "5.6.0", "multiple-from", NULL,
				     "Error: more than one From: header field "
				     "(RFC 5322 3.6)");
	if (nsender > 1)
		return header_refuse(t, 550, "5.6.0", "multiple-sender", NULL,
				     "Error: more than one Sender: header field "
				     "(RFC 5322 3.6)");
	if (nfrom == 1 && mailbox_field_check(s, &from, false) < 0)
		return -1;
	if (nsender == 1 && mailbox_field_check(s, &sender, true) < 0)
		return -1;
	return 0;
}

/*
 * The held header is complete (or too large to hold): add what RFC 6409
 * section 8 lets a submission server add, check From:, write it all out.
 */
void
smtp_header_done(struct smtp_session *s, bool complete)
{
	struct smtp_txn *t = s->txn;
	size_t split = t->hold.len;
	char add[512], date[64];
	size_t alen = 0;

	t->holding = false;
	if (complete) {
		if (!t->data.in_header && t->data.header_end < t->hold.len)
			split = (size_t)t->data.header_end;
		header_check(s, (const unsigned char *)t->hold.s, split);
		if (!t->data.has_date) {
			rfc5322_date(date, sizeof(date), time(NULL));
			alen += (size_t)snprintf(add + alen, sizeof(add) - alen,
						 "Date: %s\n", date);
			t->hdr_lines++;
		}
		if (!t->data.has_message_id) {
			alen += (size_t)snprintf(add + alen, sizeof(add) - alen,
						 "Message-ID: <%s@%s>\n", t->id,
						 s->config->hostname);
			t->hdr_lines++;
		}
	} else if (s->config->submission.check_from) {
		/* From: may come after what is held: no way to check it */
		header_refuse(t, 552, "5.3.4", "header-too-big", NULL,
			      "Error: header section exceeds 65536 octets");
	}
	if (checks_write(s, t->hold.s, split) < 0 ||
	    checks_write(s, add, alen) < 0 ||
	    checks_write(s, t->hold.s + split, t->hold.len - split) < 0)
		t->io_error = true;
	strbuf_free(&t->hold);
}

