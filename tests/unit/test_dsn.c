/*
 * Unit tests for dsn.c. Every report made here is taken apart by a small
 * MIME reader written for the test (top header, boundary, parts, fields
 * with folding undone) and checked twice: against the invariants every
 * report must keep (lines under 998 octets, no CR and only known fields
 * in the delivery-status part, the boundary exactly where it belongs),
 * and against the row's expectations. Rows cover each action, ENVID and
 * ORCPT, RET FULL/HDRS/unset, CRLF and odd originals, injection attempts,
 * long values and UTF-8; dsn_header_len and dsn_wanted have tables of
 * their own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "mail/dsn.h"
#include "mail/smtp_parse.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define MAXPARTS 4
#define T_ARRIVAL 1700000000
#define T_NOW 1700000600

/* ---- a rough MIME reader ---------------------------------------------- */

struct part {
	char *hdr;		/* header section, without the blank line */
	char *body;
};

struct parsed {
	char *top;
	char boundary[128];
	int nparts;
	struct part part[MAXPARTS];
};

static char *
dup_n(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	assert_non_null(p);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

static void
parsed_clear(struct parsed *p)
{
	free(p->top);
	for (int i = 0; i < p->nparts; i++) {
		free(p->part[i].hdr);
		free(p->part[i].body);
	}
	memset(p, 0, sizeof(*p));
}

/*
 * The value of the nth (from 0) field called name in a header-like text,
 * unfolded, or NULL. Fields are "Name: value" lines with continuation
 * lines starting with a space or tab.
 */
static char *
field_get(const char *text, const char *name, int nth)
{
	size_t nl = strlen(name);
	const char *p = text, *e, *v;
	char *out;
	size_t olen;

	while (*p != '\0') {
		e = strchr(p, '\n');
		if (e == NULL)
			e = p + strlen(p);
		if ((size_t)(e - p) > nl + 1 && strncasecmp(p, name, nl) == 0 &&
		    p[nl] == ':' && nth-- == 0) {
			v = p + nl + 1;
			while (*v == ' ')
				v++;
			out = dup_n(v, (size_t)(e - v));
			while (*e == '\n' && (e[1] == ' ' || e[1] == '\t')) {
				p = e + 1;
				e = strchr(p, '\n');
				if (e == NULL)
					e = p + strlen(p);
				olen = strlen(out);
				out = realloc(out, olen + (size_t)(e - p) + 1);
				assert_non_null(out);
				/* unfolding removes the line end only */
				memcpy(out + olen, p, (size_t)(e - p));
				out[olen + (size_t)(e - p)] = '\0';
			}
			return out;
		}
		p = *e ? e + 1 : e;
	}
	return NULL;
}

static size_t
count(const char *hay, size_t len, const char *needle)
{
	size_t n = 0, nl = strlen(needle);
	const char *p = hay, *end = hay + len, *q;

	while ((q = memmem(p, (size_t)(end - p), needle, nl)) != NULL) {
		n++;
		p = q + 1;
	}
	return n;
}

/* Every line of s (n octets) is shorter than 998 octets; no CR. */
static void
check_lines(const char *s, size_t n, bool allow_cr)
{
	size_t col = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\n') {
			col = 0;
			continue;
		}
		if (!allow_cr)
			assert_int_not_equal(s[i], '\r');
		col++;
		assert_true(col < 998);
	}
}

/* Only RFC 3464 fields, folded lines and blank lines. */
static void
check_status_fields(const char *body)
{
	static const char *const known[] = {
		"Original-Envelope-Id", "Reporting-MTA", "Arrival-Date",
		"Original-Recipient", "Final-Recipient", "Action", "Status",
		"Remote-MTA", "Diagnostic-Code", "Last-Attempt-Date",
		"Will-Retry-Until"};
	const char *p = body, *e;
	size_t i, nl;

	for (; *p != '\0'; p = *e ? e + 1 : e) {
		e = strchr(p, '\n');
		if (e == NULL)
			e = p + strlen(p);
		if (e == p || *p == ' ')
			continue;
		for (i = 0; i < N(known); i++) {
			nl = strlen(known[i]);
			if (strncmp(p, known[i], nl) == 0 && p[nl] == ':' &&
			    p[nl + 1] == ' ')
				break;
		}
		if (i == N(known))
			fail_msg("unexpected line in delivery-status: %.*s",
				 (int)(e - p), p);
	}
}

/*
 * Splits msg into its parts and checks what holds for every report.
 * orig/origlen: the original, which must not contain the boundary.
 */
static void
parse(const char *msg, size_t len, const unsigned char *orig,
      size_t origlen, struct parsed *p)
{
	const char *hend, *b, *q, *s, *e, *phend;
	char delim[140], close[144];
	char *ct;
	size_t n;

	memset(p, 0, sizeof(*p));
	assert_true(len > 0 && msg[len - 1] == '\n');
	assert_int_equal(strlen(msg), len);	/* no NUL in our tests */
	hend = strstr(msg, "\n\n");
	assert_non_null(hend);
	p->top = dup_n(msg, (size_t)(hend - msg) + 1);
	check_lines(p->top, strlen(p->top), false);

	ct = field_get(p->top, "Content-Type", 0);
	assert_non_null(ct);
	assert_non_null(strstr(ct, "multipart/report;"));
	assert_non_null(strstr(ct, "report-type=delivery-status"));
	b = strstr(ct, "boundary=\"");
	assert_non_null(b);
	b += 10;
	q = strchr(b, '"');
	assert_non_null(q);
	n = (size_t)(q - b);
	assert_true(n >= 1 && n <= 70);
	memcpy(p->boundary, b, n);
	p->boundary[n] = '\0';
	free(ct);
	if (orig != NULL && origlen > 0)
		assert_null(memmem(orig, origlen, p->boundary, n));

	snprintf(delim, sizeof(delim), "\n--%s\n", p->boundary);
	snprintf(close, sizeof(close), "\n--%s--\n", p->boundary);
	/* the closing delimiter ends the message */
	assert_true(len >= strlen(close));
	assert_string_equal(msg + len - strlen(close), close);

	s = strstr(hend + 1, delim);
	assert_non_null(s);
	while (s != NULL) {
		s += strlen(delim);
		e = strstr(s, delim);
		if (e == NULL)
			e = msg + len - strlen(close);
		assert_true(p->nparts < MAXPARTS);
		phend = strstr(s, "\n\n");
		assert_true(phend != NULL && phend < e + 1);
		p->part[p->nparts].hdr = dup_n(s, (size_t)(phend - s) + 1);
		/* the LF at e belongs to the delimiter */
		p->part[p->nparts].body = dup_n(phend + 2,
						(size_t)(e - phend - 2));
		p->nparts++;
		s = e < msg + len - strlen(close) ? e : NULL;
	}
	/* "--boundary" nowhere but in the delimiters */
	snprintf(delim, sizeof(delim), "--%s", p->boundary);
	assert_int_equal(count(msg, len, delim), (size_t)p->nparts + 1);

	assert_true(p->nparts == 2 || p->nparts == 3);
	check_lines(p->part[0].hdr, strlen(p->part[0].hdr), false);
	check_lines(p->part[0].body, strlen(p->part[0].body), false);
	check_lines(p->part[1].hdr, strlen(p->part[1].hdr), false);
	check_lines(p->part[1].body, strlen(p->part[1].body), false);
	check_status_fields(p->part[1].body);
	if (p->nparts == 3)
		check_lines(p->part[2].hdr, strlen(p->part[2].hdr), false);
}

static char *
part_type(const struct parsed *p, int i)
{
	return field_get(p->part[i].hdr, "Content-Type", 0);
}

/* ---- the table of reports --------------------------------------------- */

struct row {
	const char *name;
	/* input: one recipient unless rcpts2 */
	enum dsn_action action;
	const char *ret;
	const char *envid;
	const char *orcpt;
	const char *addr;	/* NULL: "bob@b.test" */
	const char *status;	/* NULL: by action */
	const char *mta;
	const char *diag;
	bool smtputf8;
	const char *msg;	/* NULL: the standard LF original */
	int64_t size_delta;	/* msgsize = msglen + this */
	/* expected */
	const char *subject;
	const char *type1, *type2, *type3;	/* type3 NULL: two parts */
	const char *top_has[3];
	const char *p1_has[4];
	const char *ds_has[8];
	const char *ds_not[4];
	const char *p3_body;	/* exactly, if set */
	const char *p3_has[2];
	const char *p3_not[2];
};

#define ORIG "From: a@a.test\nTo: bob@b.test\nSubject: hi\n\nbody line\n"
#define ORIG_HDR "From: a@a.test\nTo: bob@b.test\nSubject: hi\n\n"
#define TXT "text/plain; charset=us-ascii"
#define DS "message/delivery-status"
#define HDRS "text/rfc822-headers"
#define SUBJ_FAIL "Undelivered Mail Returned to Sender"
#define SUBJ_DELAY "Delayed Mail (still being retried)"
#define SUBJ_OK "Successful Mail Delivery Report"

static const struct row rows[] = {
	{.name = "failed, RET unset: headers only",
	 .action = DSN_FAILED, .ret = "", .status = "5.1.1",
	 .mta = "mx.b.test", .diag = "550 5.1.1 user unknown",
	 .subject = SUBJ_FAIL, .type1 = TXT, .type2 = DS, .type3 = HDRS,
	 .top_has = {"From: Mail Delivery System <MAILER-DAEMON@mx.a.test>\n",
		     "To: <alice@a.test>\n", "Auto-Submitted: auto-replied\n"},
	 .p1_has = {"This is the mail system at host mx.a.test.\n",
		    "could not\nbe delivered",
		    "<bob@b.test>: host mx.b.test said: 550 5.1.1 user "
		    "unknown\n",
		    "header section of your message is attached"},
	 .ds_has = {"Reporting-MTA: dns; mx.a.test\n",
		    "Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000\n",
		    "\n\nFinal-Recipient: rfc822; bob@b.test\nAction: failed\n"
		    "Status: 5.1.1\nRemote-MTA: dns; mx.b.test\n"
		    "Diagnostic-Code: smtp; 550 5.1.1 user unknown\n"
		    "Last-Attempt-Date: Tue, 14 Nov 2023 22:23:00 +0000\n"},
	 .ds_not = {"Original-Envelope-Id", "Original-Recipient",
		    "Will-Retry-Until"},
	 .p3_body = ORIG_HDR},
	{.name = "failed, RET=FULL: whole message",
	 .action = DSN_FAILED, .ret = "FULL", .status = "5.1.1",
	 .diag = "550 5.1.1 user unknown",
	 .subject = SUBJ_FAIL, .type1 = TXT, .type2 = DS,
	 .type3 = "message/rfc822",
	 .p1_has = {"<bob@b.test>: 550 5.1.1 user unknown\n",
		    "Your message is attached."},
	 .p3_body = ORIG},
	{.name = "failed, RET=HDRS",
	 .action = DSN_FAILED, .ret = "HDRS", .status = "5.0.0",
	 .subject = SUBJ_FAIL, .type1 = TXT, .type2 = DS, .type3 = HDRS,
	 .p1_has = {"<bob@b.test>: status 5.0.0\n"},
	 .ds_not = {"Diagnostic-Code", "Remote-MTA"},
	 .p3_body = ORIG_HDR},
	{.name = "RET=FULL, one octet over DSN_FULL_MAX: headers, said so",
	 .action = DSN_FAILED, .ret = "FULL", .status = "5.2.2",
	 .size_delta = 1,
	 .subject = SUBJ_FAIL, .type1 = TXT, .type2 = DS, .type3 = HDRS,
	 .p1_has = {"too large to return whole"},
	 .p3_body = ORIG_HDR},
	{.name = "delayed, ENVID and ORCPT",
	 .action = DSN_DELAYED, .ret = "FULL", .envid = "QQ314159",
	 .orcpt = "rfc822;Bob@B.test", .status = "4.4.1",
	 .mta = "mx.b.test", .diag = "451 4.4.1 try later",
	 .subject = SUBJ_DELAY, .type1 = TXT, .type2 = DS, .type3 = HDRS,
	 .top_has = {"Message-ID: <Q1.dsn-delayed.1700000600@mx.a.test>\n"},
	 .p1_has = {"still being retried", "until\nThu, 16 Nov 2023",
		    "warning only"},
	 .ds_has = {"Original-Envelope-Id: QQ314159\nReporting-MTA:",
		    "\n\nOriginal-Recipient: rfc822;Bob@B.test\n"
		    "Final-Recipient: rfc822; bob@b.test\nAction: delayed\n"
		    "Status: 4.4.1\n",
		    "Will-Retry-Until: Thu, 16 Nov 2023 22:13:20 +0000\n"},
	 /* RET=FULL only for failures (RFC 3461 4.3) */
	 .p3_body = ORIG_HDR},
	{.name = "delivered",
	 .action = DSN_DELIVERED, .ret = "FULL", .status = "2.0.0",
	 .mta = "mx.b.test", .diag = "250 2.0.0 queued as X",
	 .subject = SUBJ_OK, .type1 = TXT, .type2 = DS, .type3 = HDRS,
	 .top_has = {"Message-ID: <Q1.dsn-delivered.1700000600@mx.a.test>\n"},
	 .p1_has = {"successfully delivered"},
	 .ds_has = {"Action: delivered\nStatus: 2.0.0\n"},
	 .ds_not = {"Will-Retry-Until"},
	 .p3_body = ORIG_HDR},
	{.name = "relayed",
	 .action = DSN_RELAYED, .status = "2.0.0", .mta = "mx.b.test",
	 .subject = SUBJ_OK, .type1 = TXT, .type2 = DS, .type3 = HDRS,
	 .p1_has = {"does not send delivery\nreports",
		    "<bob@b.test>: status 2.0.0, host mx.b.test\n"},
	 .ds_has = {"Action: relayed\n"}},
	{.name = "bad status: from the action",
	 .action = DSN_FAILED, .status = "5.1.1\nX-Evil: 1",
	 .subject = SUBJ_FAIL, .type1 = TXT, .type2 = DS, .type3 = HDRS,
	 .ds_has = {"Status: 5.0.0\n"}, .ds_not = {"X-Evil"}},
	{.name = "NULL status, delayed",
	 .action = DSN_DELAYED, .status = NULL,
	 .subject = SUBJ_DELAY, .type1 = TXT, .type2 = DS, .type3 = HDRS,
	 .ds_has = {"Status: 4.0.0\n"}},
	{.name = "CRLF original: LF out",
	 .action = DSN_FAILED, .ret = "FULL", .status = "5.1.1",
	 .msg = "From: a@a.test\r\nSubject: x\r\n\r\nbody\r\nbare\rcr\r\n",
	 .subject = SUBJ_FAIL, .type1 = TXT, .type2 = DS,
	 .type3 = "message/rfc822",
	 .p3_body = "From: a@a.test\nSubject: x\n\nbody\nbare\rcr\n"},
	{.name = "CRLF original, headers",
	 .action = DSN_FAILED, .ret = "HDRS", .status = "5.1.1",
	 .msg = "From: a@a.test\r\nSubject: x\r\n\r\nbody\r\n",
	 .subject = SUBJ_FAIL, .type1 = TXT, .type2 = DS, .type3 = HDRS,
	 .p3_body = "From: a@a.test\nSubject: x\n\n"},
	{.name = "no header/body separator, no final LF",
	 .action = DSN_FAILED, .ret = "HDRS", .status = "5.1.1",
	 .msg = "From: a@a.test\nSubject: x",
	 .subject = SUBJ_FAIL, .type1 = TXT, .type2 = DS, .type3 = HDRS,
	 .p3_body = "From: a@a.test\nSubject: x\n"},
	{.name = "empty original: no third part",
	 .action = DSN_FAILED, .ret = "FULL", .status = "5.1.1", .msg = "",
	 .subject = SUBJ_FAIL, .type1 = TXT, .type2 = DS, .type3 = NULL},
	{.name = "CR LF injection in the diagnostic",
	 .action = DSN_FAILED, .status = "5.1.1", .mta = "mx\r\nX-Evil: 1",
	 .diag = "550 no\r\nAction: delivered\r\n\r\nFinal-Recipient: "
		 "rfc822; x@y\nX-Evil: 2\r\n.\r\n",
	 .subject = SUBJ_FAIL, .type1 = TXT, .type2 = DS, .type3 = HDRS,
	 .ds_has = {"Remote-MTA: dns; mx X-Evil: 1\n",
		    /* a fold is a continuation, never a new field */
		    "Diagnostic-Code: smtp; 550 no Action: delivered "
		    "Final-Recipient: rfc822; x@y\n X-Evil: 2 .\n",
		    "Action: failed\n"},
	 .ds_not = {"Action: delivered\n", "\nX-Evil", "\r"}},
	{.name = "injection in addresses and ENVID",
	 .action = DSN_FAILED, .status = "5.1.1",
	 .addr = "bob@b.test\nAction: delivered",
	 .orcpt = "rfc822;bob\r\nX-Evil: 1", .envid = "e\r\n\r\nX-Evil: 2",
	 .subject = SUBJ_FAIL, .type1 = TXT, .type2 = DS, .type3 = HDRS,
	 .ds_has = {"Original-Envelope-Id: e X-Evil: 2\n",
		    "Final-Recipient: rfc822; bob@b.test Action: delivered\n"},
	 .ds_not = {"\nX-Evil", "\nAction: delivered"}},
	{.name = "not an SMTP reply: our own diagnostic type",
	 .action = DSN_FAILED, .status = "5.1.10",
	 .diag = "55 null MX", .subject = SUBJ_FAIL, .type1 = TXT,
	 .type2 = DS, .type3 = HDRS,
	 .ds_has = {"Status: 5.1.10\n", "Diagnostic-Code: X-godwit; 55 null "
					 "MX\n"}},
	{.name = "ORCPT without a type",
	 .action = DSN_FAILED, .status = "5.1.1", .orcpt = "bob@b.test",
	 .subject = SUBJ_FAIL, .type1 = TXT, .type2 = DS, .type3 = HDRS,
	 .ds_has = {"Original-Recipient: rfc822; bob@b.test\n"}},
	{.name = "utf-8 address: global types",
	 .action = DSN_FAILED, .ret = "FULL", .status = "5.1.1",
	 .addr = "j\xc3\xb6rg@b.test", .smtputf8 = true,
	 .diag = "550 5.1.1 n\xc3\xa4 \xff",
	 .msg = "From: j\xc3\xb6rg@a.test\n\nhej\n",
	 .subject = SUBJ_FAIL, .type1 = "text/plain; charset=utf-8",
	 .type2 = "message/global-delivery-status",
	 .type3 = "message/global",
	 .top_has = {"Content-Transfer-Encoding: 8bit\n"},
	 .p1_has = {"<j\xc3\xb6rg@b.test>: 550 5.1.1 n\xc3\xa4 ?\n"},
	 .ds_has = {"Final-Recipient: utf-8; j\xc3\xb6rg@b.test\n",
		    "Diagnostic-Code: smtp; 550 5.1.1 n\xc3\xa4 ?\n"},
	 .p3_body = "From: j\xc3\xb6rg@a.test\n\nhej\n"},
	{.name = "utf-8 ORCPT only: global, utf-8 text",
	 .action = DSN_FAILED, .status = "5.1.1",
	 .orcpt = "utf-8;b\xc3\xb6" "b@b.test", .diag = "550 no",
	 .subject = SUBJ_FAIL, .type1 = "text/plain; charset=utf-8",
	 .type2 = "message/global-delivery-status", .type3 = HDRS,
	 .ds_has = {"Original-Recipient: utf-8;b\xc3\xb6" "b@b.test\n"
		    "Final-Recipient: rfc822; bob@b.test\n"}},
	{.name = "utf-8 original, headers: message/global-headers",
	 .action = DSN_DELAYED, .status = "4.4.1", .smtputf8 = true,
	 .subject = SUBJ_DELAY, .type1 = TXT, .type2 = DS,
	 .type3 = "message/global-headers", .p3_body = ORIG_HDR},
	{.name = "8-bit diagnostic, ASCII addresses: utf-8 text, '?' in DS",
	 .action = DSN_FAILED, .status = "5.1.1",
	 .diag = "550 gr\xc3\xbc\xc3\x9f \xc0\xaf",
	 .subject = SUBJ_FAIL, .type1 = "text/plain; charset=utf-8",
	 .type2 = DS, .type3 = HDRS,
	 .p1_has = {"550 gr\xc3\xbc\xc3\x9f ??\n"},
	 .ds_has = {"Diagnostic-Code: smtp; 550 gr???? ??\n"}},
	{.name = "original quotes our boundary",
	 .action = DSN_FAILED, .ret = "FULL", .status = "5.1.1",
	 .msg = "Subject: x\n\n--Q1.1700000600/mx.a.test\n"
		"Q1.1700000600/mx.a.test--\n",
	 .subject = SUBJ_FAIL, .type1 = TXT, .type2 = DS,
	 .type3 = "message/rfc822",
	 .p3_has = {"--Q1.1700000600/mx.a.test\n"}},
	{.name = "diagnostic quotes our boundary",
	 .action = DSN_FAILED, .status = "5.1.1",
	 .diag = "550 --Q1.1700000600/mx.a.test",
	 .subject = SUBJ_FAIL, .type1 = TXT, .type2 = DS, .type3 = HDRS,
	 .ds_has = {"550 --Q1.1700000600/mx.a.test\n"}},
};

static struct dsn_report
make_report(const struct row *w, struct dsn_rcpt *rc)
{
	const char *msg = w->msg ? w->msg : ORIG;
	struct dsn_report r = {
		.hostname = "mx.a.test",
		.queue_id = "Q1",
		.sender = "alice@a.test",
		.envid = w->envid ? w->envid : "",
		.ret = w->ret ? w->ret : "",
		.smtputf8 = w->smtputf8,
		.arrival = T_ARRIVAL,
		.now = T_NOW,
		.rcpts = rc,
		.nrcpts = 1,
		.msg = (const unsigned char *)msg,
		.msglen = strlen(msg),
		.msgsize = strlen(msg) + (uint64_t)w->size_delta,
	};

	memset(rc, 0, sizeof(*rc));
	rc->addr = w->addr ? w->addr : "bob@b.test";
	rc->orcpt = w->orcpt ? w->orcpt : "";
	rc->action = w->action;
	rc->status = w->status;
	rc->remote_mta = w->mta;
	rc->diagnostic = w->diag;
	rc->last_attempt = T_NOW - 20;
	rc->retry_until = w->action == DSN_DELAYED ? T_ARRIVAL + 2 * 86400 : 0;
	return r;
}

static void
expect_type(const struct parsed *p, int i, const char *want)
{
	char *t = part_type(p, i);

	assert_non_null(t);
	assert_string_equal(t, want);
	free(t);
}

static void
test_rows(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(rows); i++) {
		const struct row *w = &rows[i];
		struct dsn_rcpt rc;
		struct dsn_report r = make_report(w, &rc);
		struct parsed p;
		char *out, *subj;
		size_t len, k;

		print_message("  %s\n", w->name);
		out = dsn_format(&r, &len);
		assert_non_null(out);
		parse(out, len, r.msg, r.msglen, &p);

		subj = field_get(p.top, "Subject", 0);
		assert_non_null(subj);
		assert_string_equal(subj, w->subject);
		free(subj);
		assert_int_equal(p.nparts, w->type3 ? 3 : 2);
		expect_type(&p, 0, w->type1);
		expect_type(&p, 1, w->type2);
		if (w->type3)
			expect_type(&p, 2, w->type3);
		for (k = 0; k < N(w->top_has) && w->top_has[k]; k++)
			if (strstr(p.top, w->top_has[k]) == NULL)
				fail_msg("top lacks %s", w->top_has[k]);
		for (k = 0; k < N(w->p1_has) && w->p1_has[k]; k++)
			if (strstr(p.part[0].body, w->p1_has[k]) == NULL)
				fail_msg("part 1 lacks %s", w->p1_has[k]);
		for (k = 0; k < N(w->ds_has) && w->ds_has[k]; k++)
			if (strstr(p.part[1].body, w->ds_has[k]) == NULL)
				fail_msg("part 2 lacks %s", w->ds_has[k]);
		for (k = 0; k < N(w->ds_not) && w->ds_not[k]; k++)
			if (strstr(p.part[1].body, w->ds_not[k]) != NULL)
				fail_msg("part 2 has %s", w->ds_not[k]);
		if (w->p3_body)
			assert_string_equal(p.part[2].body, w->p3_body);
		for (k = 0; k < N(w->p3_has) && w->p3_has[k]; k++)
			assert_non_null(strstr(p.part[2].body, w->p3_has[k]));
		/* every line of the top header is a field or a fold */
		for (const char *l = p.top; *l; l = strchr(l, '\n') + 1) {
			const char *c = strstr(l, ": ");

			assert_true(*l == ' ' || *l == '\t' ||
				    (c != NULL && c < strchr(l, '\n')));
		}
		parsed_clear(&p);
		free(out);
	}
}

/* ---- reports that need more than a row -------------------------------- */

static void
test_mixed_and_subject(void **state)
{
	struct dsn_rcpt rc[3] = {
		{.addr = "d@b.test", .action = DSN_DELAYED, .status = "4.4.1",
		 .retry_until = T_NOW + 3600},
		{.addr = "f@b.test", .action = DSN_FAILED, .status = "5.1.1",
		 .diagnostic = "550 no"},
		{.addr = "ok@b.test", .action = DSN_DELIVERED,
		 .status = "2.0.0"},
	};
	struct dsn_report r = {
		.hostname = "mx.a.test", .queue_id = "Q2",
		.sender = "alice@a.test", .envid = "", .ret = "FULL",
		.now = T_NOW, .rcpts = rc, .nrcpts = 3,
		.msg = (const unsigned char *)ORIG, .msglen = strlen(ORIG),
		.msgsize = strlen(ORIG)};
	struct parsed p;
	char *out, *v;
	size_t len;

	(void)state;
	out = dsn_format(&r, &len);
	parse(out, len, r.msg, r.msglen, &p);
	/* the subject follows the first recipient */
	v = field_get(p.top, "Subject", 0);
	assert_string_equal(v, SUBJ_DELAY);
	free(v);
	/* one group per recipient, in order; no Arrival-Date for 0 */
	assert_null(strstr(p.part[1].body, "Arrival-Date"));
	for (int i = 0; i < 3; i++) {
		v = field_get(p.part[1].body, "Final-Recipient", i);
		assert_non_null(v);
		assert_non_null(strstr(v, rc[i].addr));
		free(v);
	}
	assert_null(field_get(p.part[1].body, "Final-Recipient", 3));
	assert_int_equal(count(p.part[1].body, strlen(p.part[1].body),
			       "\n\n"), 3);
	/* one recipient failed and RET=FULL: the whole message */
	expect_type(&p, 2, "message/rfc822");
	/* the failure paragraph comes first in the text */
	assert_true(strstr(p.part[0].body, "<f@b.test>") <
		    strstr(p.part[0].body, "<d@b.test>"));
	assert_true(strstr(p.part[0].body, "<d@b.test>") <
		    strstr(p.part[0].body, "<ok@b.test>"));
	parsed_clear(&p);
	free(out);
}

static void
test_message_ids_differ(void **state)
{
	struct dsn_rcpt rc = {.addr = "b@b.test", .status = "5.1.1"};
	struct dsn_report r = {
		.hostname = "mx.a.test", .queue_id = "Q3",
		.sender = "alice@a.test", .envid = "", .ret = "",
		.now = T_NOW, .rcpts = &rc, .nrcpts = 1};
	char *ids[2], *out;
	struct parsed p;
	size_t len;

	(void)state;
	for (int i = 0; i < 2; i++) {
		rc.action = i == 0 ? DSN_FAILED : DSN_DELAYED;
		out = dsn_format(&r, &len);
		parse(out, len, NULL, 0, &p);
		assert_int_equal(p.nparts, 2);	/* no original at all */
		ids[i] = field_get(p.top, "Message-ID", 0);
		assert_non_null(ids[i]);
		assert_true(ids[i][0] == '<' &&
			    ids[i][strlen(ids[i]) - 1] == '>');
		parsed_clear(&p);
		free(out);
	}
	assert_string_not_equal(ids[0], ids[1]);
	free(ids[0]);
	free(ids[1]);
}

/* Long values: cut and folded, every line < 998, nothing lost early. */
static void
test_long_values(void **state)
{
	static char diag[5000], word[3000], addr[2000], host[600];
	struct dsn_rcpt rc[2];
	struct dsn_report r;
	struct parsed p;
	char *out, *v;
	size_t len;

	(void)state;
	strcpy(diag, "550 5.1.1");
	while (strlen(diag) < sizeof(diag) - 10)
		strcat(diag, " word");
	memset(word, 'w', sizeof(word) - 1);
	memcpy(word, "421", 3);
	memset(addr, 'a', sizeof(addr) - 1);
	addr[100] = '@';
	memset(host, 'h', sizeof(host) - 1);
	rc[0] = (struct dsn_rcpt){.addr = addr, .orcpt = addr,
				  .action = DSN_FAILED, .status = "5.1.1",
				  .remote_mta = host, .diagnostic = diag};
	rc[1] = (struct dsn_rcpt){.addr = "b@b.test", .action = DSN_DELAYED,
				  .status = "4.4.1", .diagnostic = word};
	r = (struct dsn_report){.hostname = host, .queue_id = host,
				.sender = addr, .envid = addr, .ret = "",
				.now = T_NOW, .rcpts = rc, .nrcpts = 2,
				.msg = (const unsigned char *)ORIG,
				.msglen = strlen(ORIG),
				.msgsize = strlen(ORIG)};
	out = dsn_format(&r, &len);
	parse(out, len, r.msg, r.msglen, &p);
	v = field_get(p.part[1].body, "Diagnostic-Code", 0);
	assert_non_null(v);
	assert_true(strncmp(v, "smtp; 550 5.1.1 word word", 25) == 0);
	assert_true(strlen(v) < 998 && strlen(v) > 800);
	free(v);
	/* a word with no space cannot be folded: cut; "421w" is no reply */
	v = field_get(p.part[1].body, "Diagnostic-Code", 1);
	assert_non_null(v);
	assert_true(strncmp(v, "X-godwit; 421www", 16) == 0);
	assert_true(strlen(v) < 998 && strlen(v) > 800);
	free(v);
	/* the folded diagnostic keeps to 78 columns */
	for (const char *l = strstr(p.part[1].body, "Diagnostic-Code");
	     *l == 'D' || *l == ' '; l = strchr(l, '\n') + 1)
		assert_true(strchr(l, '\n') - l <= 78);
	parsed_clear(&p);
	free(out);
}

/* RET=FULL with the runner's cut original: headers only, said so. */
static void
test_over_full_max(void **state)
{
	struct dsn_rcpt rc = {.addr = "b@b.test", .action = DSN_FAILED,
			      .status = "5.3.4"};
	unsigned char *msg = malloc(DSN_FULL_MAX);
	struct dsn_report r = {
		.hostname = "mx.a.test", .queue_id = "Q4",
		.sender = "alice@a.test", .envid = "", .ret = "FULL",
		.now = T_NOW, .rcpts = &rc, .nrcpts = 1, .msg = msg,
		.msglen = DSN_FULL_MAX, .msgsize = DSN_FULL_MAX + 5000};
	struct parsed p;
	char *out;
	size_t len;

	(void)state;
	assert_non_null(msg);
	memset(msg, 'x', DSN_FULL_MAX);
	memcpy(msg, "Subject: big\n\n", 14);
	out = dsn_format(&r, &len);
	assert_true(len < 10000);
	parse(out, len, msg, DSN_FULL_MAX, &p);
	expect_type(&p, 2, HDRS);
	assert_string_equal(p.part[2].body, "Subject: big\n\n");
	assert_non_null(strstr(p.part[0].body, "(1053576 octets)"));
	parsed_clear(&p);
	free(out);

	/* exactly DSN_FULL_MAX: whole */
	r.msgsize = DSN_FULL_MAX;
	out = dsn_format(&r, &len);
	assert_true(len > DSN_FULL_MAX);
	parse(out, len, msg, DSN_FULL_MAX, &p);
	expect_type(&p, 2, "message/rfc822");
	assert_int_equal(strlen(p.part[2].body), DSN_FULL_MAX + 1);
	parsed_clear(&p);
	free(out);

	/* msglen short of msgsize (a read cut short): headers */
	r.msglen = 1000;
	out = dsn_format(&r, &len);
	parse(out, len, msg, 1000, &p);
	expect_type(&p, 2, HDRS);
	parsed_clear(&p);
	free(out);
	free(msg);
}

/* ---- dsn_header_len --------------------------------------------------- */

static void
test_header_len(void **state)
{
	static const struct {
		const char *msg;
		size_t want;
	} t[] = {
		{"", 0},
		{"\n", 1},
		{"\r\n", 2},
		{"\r\nbody", 2},
		{"A: b\n\nbody", 6},
		{"A: b\r\n\r\nbody", 8},
		{"A: b\r\n\nbody", 7},
		{"A: b\n c\n\nbody\n\nmore", 9},
		{"A: b\nC: d", 9},
		{"A: b\nC: d\n", 10},
		{"A: b\n\r\r\nx", 9},	/* "\r\r\n" is not an empty line */
		{"A: b\n\r", 6},
	};

	(void)state;
	for (size_t i = 0; i < N(t); i++) {
		size_t n = strlen(t[i].msg);

		if (dsn_header_len((const unsigned char *)t[i].msg, n) !=
		    t[i].want)
			fail_msg("row %zu: got %zu want %zu", i,
				 dsn_header_len((const unsigned char *)t[i].msg,
						n),
				 t[i].want);
	}
	assert_int_equal(dsn_header_len(NULL, 0), 0);
}

/* ---- dsn_wanted ------------------------------------------------------- */

static void
test_wanted(void **state)
{
	enum { F = SMTP_NOTIFY_FAILURE, D = SMTP_NOTIFY_DELAY,
	       S = SMTP_NOTIFY_SUCCESS, NV = SMTP_NOTIFY_NEVER };
	/* failed, delayed, delivered, relayed */
	static const struct {
		unsigned notify;
		bool want[4];
	} t[] = {
		{0, {true, true, false, false}},
		{NV, {false, false, false, false}},
		{S, {false, false, true, true}},
		{F, {true, false, false, false}},
		{D, {false, true, false, false}},
		{S | F, {true, false, true, true}},
		{S | D, {false, true, true, true}},
		{F | D, {true, true, false, false}},
		{S | F | D, {true, true, true, true}},
		/* NEVER wins over anything it was (wrongly) mixed with */
		{NV | S | F | D, {false, false, false, false}},
	};
	static const enum dsn_action act[4] = {DSN_FAILED, DSN_DELAYED,
					       DSN_DELIVERED, DSN_RELAYED};

	(void)state;
	for (size_t i = 0; i < N(t); i++)
		for (size_t a = 0; a < 4; a++)
			if (dsn_wanted(t[i].notify, act[a]) != t[i].want[a])
				fail_msg("notify %#x action %zu: want %d",
					 t[i].notify, a, t[i].want[a]);
}

/* What an unverified sender may ask for. */
static void
test_notify_allowed(void **state)
{
	static const struct {
		unsigned notify;
		bool verified;
		unsigned want;
	} nrows[] = {
		{0, true, 0},
		{SMTP_NOTIFY_SUCCESS, true, SMTP_NOTIFY_SUCCESS},
		{SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_DELAY, true,
		 SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_DELAY},
		/* unverified: FAILURE only; unset is FAILURE (no DELAY) */
		{0, false, SMTP_NOTIFY_FAILURE},
		{SMTP_NOTIFY_SUCCESS, false, SMTP_NOTIFY_NEVER},
		{SMTP_NOTIFY_DELAY, false, SMTP_NOTIFY_NEVER},
		{SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE, false,
		 SMTP_NOTIFY_FAILURE},
		{SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_DELAY | SMTP_NOTIFY_FAILURE,
		 false, SMTP_NOTIFY_FAILURE},
		{SMTP_NOTIFY_FAILURE, false, SMTP_NOTIFY_FAILURE},
		{SMTP_NOTIFY_NEVER, false, SMTP_NOTIFY_NEVER},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(nrows) / sizeof(nrows[0]); i++) {
		unsigned got = dsn_notify_allowed(nrows[i].notify,
						  nrows[i].verified);
		if (got != nrows[i].want)
			fail_msg("row %zu: %#x -> %#x, want %#x", i,
				 nrows[i].notify, got, nrows[i].want);
		if (!nrows[i].verified) {
			assert_false(dsn_wanted(got, DSN_DELIVERED));
			assert_false(dsn_wanted(got, DSN_RELAYED));
			assert_false(dsn_wanted(got, DSN_DELAYED));
		}
	}
	assert_true(dsn_ret_full_allowed(true));
	assert_false(dsn_ret_full_allowed(false));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_notify_allowed),
		cmocka_unit_test(test_rows),
		cmocka_unit_test(test_mixed_and_subject),
		cmocka_unit_test(test_message_ids_differ),
		cmocka_unit_test(test_long_values),
		cmocka_unit_test(test_over_full_max),
		cmocka_unit_test(test_header_len),
		cmocka_unit_test(test_wanted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
