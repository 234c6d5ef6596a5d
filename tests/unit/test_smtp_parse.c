/*
 * Unit tests for smtp_parse.c: SMTP verbs, paths (including every relay
 * trick we know of), MAIL/RCPT parameters, BDAT, HELO and the formatting
 * round trip. One table per function, a row per case.
 */
#include <stdio.h>
#include <string.h>

#include "unit.h"

#include "mail/smtp_parse.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Long strings for the length limits. */
#define X10 "xxxxxxxxxx"
#define X60 X10 X10 X10 X10 X10 X10
#define A64 X60 "xxxx"
#define A65 A64 "x"
#define A62 X60 "xx"
#define B63 X60 "bbb"
#define B64 B63 "b"
#define D252 B63 "." B63 "." B63 "." X60		/* 252 octets */
#define D253 B63 "." B63 "." B63 "." X60 "b"	/* 253 octets */
#define D257 B63 "." B63 "." B63 "." B63 ".b"	/* 257 octets */

static void
check_error(size_t row, const char *in, int ret, const struct smtp_error *e,
	    int code, const char *enh, const char *text)
{
	if (ret != -1)
		fail_msg("row %zu <%s>: expected an error, got %d", row, in,
			 ret);
	if (e->code != code || strcmp(e->enh, enh) != 0)
		fail_msg("row %zu <%s>: expected %d %s, got %d %s (%s)", row,
			 in, code, enh, e->code, e->enh, e->text);
	if (text != NULL && strcmp(e->text, text) != 0)
		fail_msg("row %zu <%s>: expected text \"%s\", got \"%s\"", row,
			 in, text, e->text);
	assert_non_null(e->text);
}

/* ---- smtp_parse_command --------------------------------------------- */

static const struct cmd_case {
	const char *line;
	int ret;
	enum smtp_cmd cmd;
	const char *arg;	/* on success */
	int code;		/* on error */
	const char *enh;
} cmd_cases[] = {
	{"HELO mail.example.test", 0, SMTP_CMD_HELO, "mail.example.test", 0,
	 NULL},
	{"ehlo mail.example.test", 0, SMTP_CMD_EHLO, "mail.example.test", 0,
	 NULL},
	{"EhLo x", 0, SMTP_CMD_EHLO, "x", 0, NULL},
	{"EHLO", -1, SMTP_CMD_EHLO, NULL, 501, "5.5.4"},
	{"EHLO ", -1, SMTP_CMD_EHLO, NULL, 501, "5.5.4"},
	{"HELO", -1, SMTP_CMD_HELO, NULL, 501, "5.5.4"},
	{"MAIL FROM:<a@b.test>", 0, SMTP_CMD_MAIL, "FROM:<a@b.test>", 0, NULL},
	{"mail from:<a@b.test>", 0, SMTP_CMD_MAIL, "from:<a@b.test>", 0, NULL},
	{"MAIL", -1, SMTP_CMD_MAIL, NULL, 501, "5.5.4"},
	{"RCPT TO:<a@b.test>", 0, SMTP_CMD_RCPT, "TO:<a@b.test>", 0, NULL},
	{"RCPT", -1, SMTP_CMD_RCPT, NULL, 501, "5.5.4"},
	{"DATA", 0, SMTP_CMD_DATA, "", 0, NULL},
	{"data", 0, SMTP_CMD_DATA, "", 0, NULL},
	{"DATA ", 0, SMTP_CMD_DATA, "", 0, NULL},
	{"DATA x", -1, SMTP_CMD_DATA, NULL, 501, "5.5.4"},
	{"RSET", 0, SMTP_CMD_RSET, "", 0, NULL},
	{"RSET now", -1, SMTP_CMD_RSET, NULL, 501, "5.5.4"},
	{"QUIT", 0, SMTP_CMD_QUIT, "", 0, NULL},
	{"quit please", -1, SMTP_CMD_QUIT, NULL, 501, "5.5.4"},
	{"STARTTLS", 0, SMTP_CMD_STARTTLS, "", 0, NULL},
	{"StartTLS", 0, SMTP_CMD_STARTTLS, "", 0, NULL},
	{"STARTTLS x", -1, SMTP_CMD_STARTTLS, NULL, 501, "5.5.4"},
	{"NOOP", 0, SMTP_CMD_NOOP, "", 0, NULL},
	{"NOOP hello there", 0, SMTP_CMD_NOOP, "hello there", 0, NULL},
	{"HELP", 0, SMTP_CMD_HELP, "", 0, NULL},
	{"HELP MAIL", 0, SMTP_CMD_HELP, "MAIL", 0, NULL},
	{"VRFY", -1, SMTP_CMD_VRFY, NULL, 501, "5.5.4"},
	{"VRFY user", 0, SMTP_CMD_VRFY, "user", 0, NULL},
	{"EXPN", -1, SMTP_CMD_EXPN, NULL, 501, "5.5.4"},
	{"expn staff", 0, SMTP_CMD_EXPN, "staff", 0, NULL},
	{"BDAT 100 LAST", 0, SMTP_CMD_BDAT, "100 LAST", 0, NULL},
	{"BDAT", -1, SMTP_CMD_BDAT, NULL, 501, "5.5.4"},
	{"AUTH PLAIN", 0, SMTP_CMD_AUTH, "PLAIN", 0, NULL},
	{"AUTH", -1, SMTP_CMD_AUTH, NULL, 501, "5.5.4"},
	{"FOO bar", 0, SMTP_CMD_UNKNOWN, "bar", 0, NULL},
	{"", 0, SMTP_CMD_UNKNOWN, "", 0, NULL},
	{"MAILX FROM:<>", 0, SMTP_CMD_UNKNOWN, "FROM:<>", 0, NULL},
	{"MAI", 0, SMTP_CMD_UNKNOWN, "", 0, NULL},
	{"DATA\tx", 0, SMTP_CMD_UNKNOWN, "", 0, NULL},
	{"GET / HTTP/1.1", 0, SMTP_CMD_UNKNOWN, "/ HTTP/1.1", 0, NULL},
};

static void
test_command(void **state)
{
	struct smtp_command c;
	struct smtp_error e;
	size_t i;
	int ret;

	(void)state;
	for (i = 0; i < N(cmd_cases); i++) {
		const struct cmd_case *t = &cmd_cases[i];

		memset(&e, 0, sizeof(e));
		ret = smtp_parse_command(t->line, strlen(t->line), &c, &e);
		if (t->ret < 0) {
			check_error(i, t->line, ret, &e, t->code, t->enh, NULL);
			continue;
		}
		if (ret != 0)
			fail_msg("row %zu <%s>: %d %s %s", i, t->line, e.code,
				 e.enh, e.text);
		if (c.cmd != t->cmd || strcmp(c.arg, t->arg) != 0)
			fail_msg("row %zu <%s>: cmd %d arg \"%s\"", i, t->line,
				 (int)c.cmd, c.arg);
		assert_ptr_equal(c.verb, t->line);
	}
}

static void
test_command_verb(void **state)
{
	static const char line[] = "DATA\0x";
	struct smtp_command c;
	struct smtp_error e;

	(void)state;
	assert_int_equal(smtp_parse_command("Xyzzy 1", 7, &c, &e), 0);
	assert_int_equal(c.cmd, SMTP_CMD_UNKNOWN);
	assert_int_equal(c.verb_len, 5);
	assert_memory_equal(c.verb, "Xyzzy", 5);

	/* a NUL inside the line is refused, not silently truncated */
	assert_int_equal(smtp_parse_command(line, sizeof(line) - 1, &c, &e),
			 -1);
	assert_int_equal(e.code, 500);
}

/* ---- MAIL / RCPT paths ---------------------------------------------- */

enum which { MAIL, RCPT, RCPT8 /* RCPT after MAIL ... SMTPUTF8 */ };

static const struct addr_case {
	enum which which;
	const char *arg;
	int ret;
	/* on success */
	const char *local;
	const char *domain;
	bool quoted, literal, null, utf8;
	/* on error */
	int code;
	const char *enh;
	const char *text;	/* checked if not NULL */
} addr_cases[] = {
	/* plain addresses and keyword spelling */
	{.which = RCPT, .arg = "TO:<user@example.test>", 0, "user", "example.test"},
	{.which = RCPT, .arg = "to:<user@example.test>", 0, "user", "example.test"},
	{.which = RCPT, .arg = "To: <user@example.test>", 0, "user", "example.test"},
	{.which = RCPT, .arg = "TO:<user@example.test> ", 0, "user", "example.test"},
	{.which = RCPT, .arg = "TO:  <user@example.test>", -1, .code = 501, .enh = "5.5.4"},
	{.which = RCPT, .arg = "TO:user@example.test", -1, .code = 501, .enh = "5.5.4"},
	{.which = RCPT, .arg = "TO <user@example.test>", -1, .code = 501, .enh = "5.5.4"},
	{.which = RCPT, .arg = "TO:<user@example.test>x", -1, .code = 501, .enh = "5.5.4"},
	{.which = RCPT, .arg = "TO:<user@example.test", -1, .code = 501, .enh = "5.1.3"},
	{.which = RCPT, .arg = "TO:<user>", -1, .code = 501, .enh = "5.1.3"},
	{.which = RCPT, .arg = "TO:<user@>", -1, .code = 501, .enh = "5.1.3"},
	{.which = RCPT, .arg = "TO:<@example.test>", -1, .code = 501, .enh = "5.1.3"},
	{.which = RCPT, .arg = "TO:< user@example.test>", -1, .code = 501, .enh = "5.1.3"},
	{.which = RCPT, .arg = "TO:<>", -1, .code = 501, .enh = "5.1.3"},
	{.which = MAIL, .arg = "FROM:<>", 0, "", "", .null = true},
	{.which = MAIL, .arg = "FROM:<user@example.test>", 0, "user", "example.test"},
	{.which = MAIL, .arg = "from: <user@example.test>", 0, "user", "example.test"},
	{.which = MAIL, .arg = "FROM <user@example.test>", -1, .code = 501, .enh = "5.5.4"},
	{.which = MAIL, .arg = "FROM:<bad@@example.test>", -1, .code = 501, .enh = "5.1.7"},
	{.which = MAIL, .arg = "FROM:<a b@example.test>", -1, .code = 501, .enh = "5.1.7"},

	/* relay tricks: parsed as what they literally are */
	{.which = RCPT, .arg = "TO:<user%other.example@local.test>", 0, "user%other.example",
	 "local.test"},
	{.which = RCPT, .arg = "TO:<\"user@other.example\"@local.test>", 0,
	 "user@other.example", "local.test", .quoted = true},
	{.which = RCPT, .arg = "TO:<@local.test:user@other.example>", 0, "user",
	 "other.example"},
	{.which = RCPT, .arg = "TO:<@a.test,@b.test:user@other.example>", 0, "user",
	 "other.example"},
	{.which = RCPT, .arg = "TO:<@a.test,b.test:user@other.example>", -1, .code = 501,
	 .enh = "5.1.3"},
	{.which = RCPT, .arg = "TO:<@a..test:user@other.example>", -1, .code = 501,
	 .enh = "5.1.3"},
	{.which = RCPT, .arg = "TO:<user@other.example@local.test>", -1, .code = 501,
	 .enh = "5.1.3"},
	{.which = RCPT, .arg = "TO:<other.example!user@local.test>", 0, "other.example!user",
	 "local.test"},
	{.which = RCPT, .arg = "TO:<user@[192.0.2.1]>", 0, "user", "[192.0.2.1]",
	 .literal = true},
	{.which = RCPT, .arg = "TO:<USER@EXAMPLE.TEST>", 0, "USER", "example.test"},
	{.which = RCPT, .arg = "TO:<user@example.test.>", 0, "user", "example.test"},
	{.which = RCPT, .arg = "TO:<user@example.test..>", -1, .code = 501, .enh = "5.1.3"},
	{.which = RCPT, .arg = "TO:<user@example..test>", -1, .code = 501, .enh = "5.1.3"},
	{.which = RCPT, .arg = "TO:<user@.example>", -1, .code = 501, .enh = "5.1.3"},
	{.which = RCPT, .arg = "TO:<user@-bad-.test>", -1, .code = 501, .enh = "5.1.3"},
	{.which = RCPT, .arg = "TO:<user@bad-.test>", -1, .code = 501, .enh = "5.1.3"},
	{.which = RCPT, .arg = "TO:<user@-bad.test>", -1, .code = 501, .enh = "5.1.3"},
	{.which = RCPT, .arg = "TO:<user@a-b.test>", 0, "user", "a-b.test"},
	{.which = RCPT, .arg = "TO:<user@xn--bcher-kva.test>", 0, "user",
	 "xn--bcher-kva.test"},
	{.which = RCPT, .arg = "TO:<user@bad_host.test>", -1, .code = 501, .enh = "5.1.3"},
	{.which = RCPT, .arg = "TO:<user@localhost>", 0, "user", "localhost"},

	/* address literals */
	{.which = RCPT, .arg = "TO:<user@[IPv6:2001:DB8:0::1]>", 0, "user",
	 "[IPv6:2001:db8::1]", .literal = true},
	{.which = RCPT, .arg = "TO:<user@[ipv6:::1]>", 0, "user", "[IPv6:::1]",
	 .literal = true},
	{.which = RCPT, .arg = "TO:<user@[192.0.2.256]>", -1, .code = 501, .enh = "5.1.3"},
	{.which = RCPT, .arg = "TO:<user@[192.0.2]>", -1, .code = 501, .enh = "5.1.3"},
	{.which = RCPT, .arg = "TO:<user@[IPv6:2001:db8::g]>", -1, .code = 501,
	 .enh = "5.1.3"},
	{.which = RCPT, .arg = "TO:<user@[IPv6:192.0.2.1]>", -1, .code = 501, .enh = "5.1.3"},
	{.which = RCPT, .arg = "TO:<user@[x-tag:whatever]>", -1, .code = 501, .enh = "5.1.3",
	 .text = "Address literal type not supported"},
	{.which = RCPT, .arg = "TO:<user@[192.0.2.1>", -1, .code = 501, .enh = "5.1.3"},
	{.which = RCPT, .arg = "TO:<user@[]>", -1, .code = 501, .enh = "5.1.3"},
	{.which = RCPT, .arg = "TO:<user@[192.0.2.1].>", -1, .code = 501, .enh = "5.1.3"},

	/* postmaster and null paths */
	{.which = RCPT, .arg = "TO:<postmaster>", 0, "postmaster", ""},
	{.which = RCPT, .arg = "TO:<PostMaster>", 0, "postmaster", ""},
	{.which = RCPT, .arg = "TO:<Postmaster@example.test>", 0, "Postmaster",
	 "example.test"},
	{.which = RCPT, .arg = "TO:<postmaster> NOTIFY=NEVER", 0, "postmaster", ""},
	{.which = MAIL, .arg = "FROM:<postmaster>", -1, .code = 501, .enh = "5.1.7"},

	/* quoted local parts */
	{.which = RCPT, .arg = "TO:<\"a b\"@example.test>", 0, "a b", "example.test",
	 .quoted = true},
	{.which = RCPT, .arg = "TO:<\"a\\\"b\\\\c\"@example.test>", 0, "a\"b\\c",
	 "example.test", .quoted = true},
	{.which = RCPT, .arg = "TO:<\"\\a\"@example.test>", 0, "a", "example.test",
	 .quoted = true},
	{.which = RCPT, .arg = "TO:<\"a>b\"@example.test>", 0, "a>b", "example.test",
	 .quoted = true},
	{.which = RCPT, .arg = "TO:<\"abc@example.test>", -1, .code = 501, .enh = "5.1.3"},
	{.which = RCPT, .arg = "TO:<\"\"@example.test>", -1, .code = 501, .enh = "5.1.3"},
	{.which = RCPT, .arg = "TO:<ab\"c\"@example.test>", -1, .code = 501, .enh = "5.1.3"},

	/* dot-strings */
	{.which = RCPT, .arg = "TO:<first.last@example.test>", 0, "first.last",
	 "example.test"},
	{.which = RCPT, .arg = "TO:<a+tag@example.test>", 0, "a+tag", "example.test"},
	{.which = RCPT, .arg = "TO:<a..b@example.test>", -1, .code = 501, .enh = "5.1.3"},
	{.which = RCPT, .arg = "TO:<.a@example.test>", -1, .code = 501, .enh = "5.1.3"},
	{.which = RCPT, .arg = "TO:<a.@example.test>", -1, .code = 501, .enh = "5.1.3"},

	/* control characters, inside and outside quotes */
	{.which = RCPT, .arg = "TO:<us\x01" "er@example.test>", -1, .code = 501,
	 .enh = "5.1.3"},
	{.which = RCPT, .arg = "TO:<\"us\x7f" "er\"@example.test>", -1, .code = 501,
	 .enh = "5.1.3"},
	{.which = RCPT, .arg = "TO:<\"us\\\ter\"@example.test>", -1, .code = 501,
	 .enh = "5.1.3"},
	{.which = RCPT, .arg = "TO:<user@exa\rmple.test>", -1, .code = 501, .enh = "5.1.3"},

	/* limits */
	{.which = RCPT, .arg = "TO:<" A64 "@example.test>", 0, A64, "example.test"},
	{.which = RCPT, .arg = "TO:<" A65 "@example.test>", -1, .code = 501, .enh = "5.1.3",
	 .text = "Local part too long"},
	{.which = MAIL, .arg = "FROM:<" A65 "@example.test>", -1, .code = 501,
	 .enh = "5.1.7", .text = "Local part too long"},
	{.which = RCPT, .arg = "TO:<\"" A62 "\"@example.test>", 0, A62, "example.test",
	 .quoted = true},
	{.which = RCPT, .arg = "TO:<\"" A64 "\"@example.test>", -1, .code = 501,
	 .enh = "5.1.3", .text = "Local part too long"},
	{.which = RCPT, .arg = "TO:<u@" B63 ".test>", 0, "u", B63 ".test"},
	{.which = RCPT, .arg = "TO:<u@" B64 ".test>", -1, .code = 501, .enh = "5.1.3",
	 .text = "Domain label too long"},
	{.which = RCPT, .arg = "TO:<u@" D252 ">", 0, "u", D252},
	{.which = RCPT, .arg = "TO:<u@" D253 ">", -1, .code = 501, .enh = "5.1.3",
	 .text = "Path too long"},
	{.which = RCPT, .arg = "TO:<u@" D257 ">", -1, .code = 501, .enh = "5.1.3",
	 .text = "Domain too long"},

	/* UTF-8 (RFC 6531) */
	{.which = RCPT8, .arg = "TO:<jörg@exämple.test>", 0, "jörg", "exämple.test",
	 .utf8 = true},
	{.which = RCPT8, .arg = "TO:<用户@例子.测试>", 0, "用户", "例子.测试", .utf8 = true},
	{.which = RCPT8, .arg = "TO:<user@EXÄMPLE.TEST>", 0, "user", "exÄmple.test",
	 .utf8 = true},
	{.which = RCPT8, .arg = "TO:<\"jö rg\"@example.test>", 0, "jö rg", "example.test",
	 .quoted = true, .utf8 = true},
	{.which = RCPT8, .arg = "TO:<user@example.test>", 0, "user", "example.test"},
	{.which = RCPT, .arg = "TO:<jörg@example.test>", -1, .code = 553, .enh = "5.6.7"},
	{.which = RCPT, .arg = "TO:<user@exämple.test>", -1, .code = 553, .enh = "5.6.7"},
	{.which = RCPT8, .arg = "TO:<j\xc3@example.test>", -1, .code = 501, .enh = "5.1.3"},
	{.which = RCPT8, .arg = "TO:<j\xc0\xafrg@example.test>", -1, .code = 501,
	 .enh = "5.1.3"},
	{.which = RCPT8, .arg = "TO:<j\xed\xa0\x80rg@example.test>", -1, .code = 501,
	 .enh = "5.1.3"},
	{.which = RCPT8, .arg = "TO:<j\xf4\x90\x80\x80rg@example.test>", -1, .code = 501,
	 .enh = "5.1.3"},
	{.which = RCPT8, .arg = "TO:<j\xc2\x85rg@example.test>", -1, .code = 501,
	 .enh = "5.1.3"},
	{.which = RCPT8, .arg = "TO:<user@ex\xffmple.test>", -1, .code = 501, .enh = "5.1.3"},
	{.which = MAIL, .arg = "FROM:<jörg@example.test>", -1, .code = 553, .enh = "5.6.7"},
	{.which = MAIL, .arg = "FROM:<jörg@example.test> SMTPUTF8", 0, "jörg",
	 "example.test", .utf8 = true},
	{.which = MAIL, .arg = "FROM:<jörg@example.test> smtputf8 BODY=8BITMIME", 0, "jörg",
	 "example.test", .utf8 = true},
};

static int
parse_addr(enum which which, const char *arg, struct smtp_path *p,
	   struct smtp_error *e)
{
	struct smtp_mail_args m;
	struct smtp_rcpt_args r;
	int ret;

	if (which == MAIL) {
		ret = smtp_parse_mail(arg, &m, e);
		*p = m.path;
	} else {
		ret = smtp_parse_rcpt(arg, which == RCPT8, &r, e);
		*p = r.path;
	}
	return ret;
}

/* Formats a parsed mailbox and parses "<it>" again: it must not change. */
static void
check_roundtrip(size_t row, const struct smtp_mailbox *m)
{
	char buf[600], path[610];
	struct smtp_path q;
	struct smtp_error e;
	const char *end;

	if (smtp_mailbox_format(m, buf, sizeof(buf)) != 0)
		fail_msg("row %zu: format failed", row);
	snprintf(path, sizeof(path), "<%s>", buf);
	if (smtp_parse_path(path, false, true, true, &q, &end, &e) != 0)
		fail_msg("row %zu %s: re-parse: %d %s %s", row, path, e.code,
			 e.enh, e.text);
	assert_string_equal(q.mbox.local, m->local);
	assert_string_equal(q.mbox.domain, m->domain);
	assert_int_equal(q.mbox.is_literal, m->is_literal);
	assert_int_equal(q.mbox.needs_utf8, m->needs_utf8);
	assert_string_equal(end, "");
}

static void
test_addr(void **state)
{
	struct smtp_path p;
	struct smtp_error e;
	size_t i;
	int ret;

	(void)state;
	for (i = 0; i < N(addr_cases); i++) {
		const struct addr_case *t = &addr_cases[i];

		memset(&e, 0, sizeof(e));
		ret = parse_addr(t->which, t->arg, &p, &e);
		if (t->ret < 0) {
			check_error(i, t->arg, ret, &e, t->code, t->enh,
				    t->text);
			continue;
		}
		if (ret != 0)
			fail_msg("row %zu <%s>: %d %s %s", i, t->arg, e.code,
				 e.enh, e.text);
		if (strcmp(p.mbox.local, t->local) != 0 ||
		    strcmp(p.mbox.domain, t->domain) != 0)
			fail_msg("row %zu <%s>: got local \"%s\" domain "
				 "\"%s\"",
				 i, t->arg, p.mbox.local, p.mbox.domain);
		if (p.mbox.quoted != t->quoted ||
		    p.mbox.is_literal != t->literal || p.null != t->null ||
		    p.mbox.needs_utf8 != t->utf8)
			fail_msg("row %zu <%s>: flags quoted=%d literal=%d "
				 "null=%d utf8=%d",
				 i, t->arg, p.mbox.quoted, p.mbox.is_literal,
				 p.null, p.mbox.needs_utf8);
		if (!p.null)
			check_roundtrip(i, &p.mbox);
	}
}

/* smtp_parse_path directly: flags, and where it leaves *end_r. */
static void
test_path(void **state)
{
	struct smtp_path p;
	struct smtp_error e;
	const char *end;
	const char *s;

	(void)state;
	s = "<a@b.test> SIZE=10";
	assert_int_equal(smtp_parse_path(s, false, false, false, &p, &end, &e),
			 0);
	assert_ptr_equal(end, s + 10);
	assert_string_equal(p.mbox.domain, "b.test");

	s = "<>";
	assert_int_equal(smtp_parse_path(s, true, false, false, &p, &end, &e),
			 0);
	assert_true(p.null);
	assert_ptr_equal(end, s + 2);
	assert_int_equal(smtp_parse_path(s, false, true, true, &p, &end, &e),
			 -1);
	assert_int_equal(e.code, 501);
	assert_string_equal(e.enh, "5.1.3");

	/* "<postmaster>" only where the caller allows it */
	s = "<postmaster>";
	assert_int_equal(smtp_parse_path(s, false, false, false, &p, &end, &e),
			 -1);
	assert_int_equal(smtp_parse_path(s, false, true, false, &p, &end, &e),
			 0);
	assert_string_equal(p.mbox.local, "postmaster");
	assert_string_equal(p.mbox.domain, "");

	/* a null_ok path is a sender's: its errors are 5.1.7 */
	assert_int_equal(
	    smtp_parse_path("<a@@b>", true, false, false, &p, &end, &e), -1);
	assert_string_equal(e.enh, "5.1.7");
}

/* ---- MAIL parameters ------------------------------------------------ */

static const struct mail_case {
	const char *arg;
	int ret;
	bool has_size;
	uint64_t size;
	enum smtp_body body;
	bool smtputf8;
	enum smtp_ret ret_;
	const char *envid;
	int code;
	const char *enh;
} mail_cases[] = {
	{"FROM:<a@b.test>", 0, .envid = ""},
	{"FROM:<a@b.test> SIZE=1000", 0, true, 1000, .envid = ""},
	{"FROM:<a@b.test> size=0", 0, true, 0, .envid = ""},
	{"FROM:<a@b.test> SIZE=18446744073709551615", 0, true, UINT64_MAX,
	 .envid = ""},
	{"FROM:<a@b.test> SIZE=18446744073709551616", -1, .code = 501,
	 .enh = "5.5.4"},
	{"FROM:<a@b.test> SIZE=99999999999999999999", -1, .code = 501,
	 .enh = "5.5.4"},
	{"FROM:<a@b.test> SIZE=12k", -1, .code = 501, .enh = "5.5.4"},
	{"FROM:<a@b.test> SIZE=-1", -1, .code = 501, .enh = "5.5.4"},
	{"FROM:<a@b.test> SIZE=", -1, .code = 501, .enh = "5.5.4"},
	{"FROM:<a@b.test> SIZE", -1, .code = 501, .enh = "5.5.4"},
	{"FROM:<a@b.test> SIZE=1 SIZE=2", -1, .code = 555, .enh = "5.5.4"},
	{"FROM:<a@b.test> BODY=8BITMIME", 0, .body = SMTP_BODY_8BITMIME,
	 .envid = ""},
	{"FROM:<a@b.test> body=7bit", 0, .body = SMTP_BODY_7BIT, .envid = ""},
	{"FROM:<a@b.test> BODY=BINARYMIME", 0, .body = SMTP_BODY_BINARYMIME,
	 .envid = ""},
	{"FROM:<a@b.test> BODY=9BIT", -1, .code = 501, .enh = "5.5.4"},
	{"FROM:<a@b.test> BODY=8BITMIME BODY=7BIT", -1, .code = 555,
	 .enh = "5.5.4"},
	{"FROM:<a@b.test> SMTPUTF8", 0, .smtputf8 = true, .envid = ""},
	{"FROM:<a@b.test> SMTPUTF8=yes", -1, .code = 501, .enh = "5.5.4"},
	{"FROM:<a@b.test> RET=HDRS", 0, .ret_ = SMTP_RET_HDRS, .envid = ""},
	{"FROM:<a@b.test> ret=full", 0, .ret_ = SMTP_RET_FULL, .envid = ""},
	{"FROM:<a@b.test> RET=ALL", -1, .code = 501, .enh = "5.5.4"},
	{"FROM:<a@b.test> ENVID=QQ314159", 0, .envid = "QQ314159"},
	{"FROM:<a@b.test> ENVID=abc+2Bdef+3D", 0, .envid = "abc+def="},
	{"FROM:<a@b.test> ENVID=abc+2bdef", 0, .envid = "abc+def"},
	{"FROM:<a@b.test> ENVID=abc+2", -1, .code = 501, .enh = "5.5.4"},
	{"FROM:<a@b.test> ENVID=abc+ZZ", -1, .code = 501, .enh = "5.5.4"},
	{"FROM:<a@b.test> ENVID=a+0D+0Ab", -1, .code = 501, .enh = "5.5.4"},
	{"FROM:<a@b.test> ENVID=a+00", -1, .code = 501, .enh = "5.5.4"},
	{"FROM:<a@b.test> ENVID=a+C3", -1, .code = 501, .enh = "5.5.4"},
	{"FROM:<a@b.test> ENVID=a+C3+B6", 0, .envid = "aö"},
	{"FROM:<a@b.test> AUTH=<>", 0, .envid = ""},
	{"FROM:<a@b.test> AUTH=user+40example.test", 0, .envid = ""},
	{"FROM:<a@b.test> AUTH=user+4", -1, .code = 501, .enh = "5.5.4"},
	{"FROM:<a@b.test> FOO=bar", -1, .code = 555, .enh = "5.5.4"},
	{"FROM:<a@b.test> XYZ", -1, .code = 555, .enh = "5.5.4"},
	{"FROM:<a@b.test> NOTIFY=NEVER", -1, .code = 555, .enh = "5.5.4"},
	{"FROM:<a@b.test> =x", -1, .code = 501, .enh = "5.5.4"},
	{"FROM:<a@b.test> SIZE=1=2", -1, .code = 501, .enh = "5.5.4"},
	{"FROM:<a@b.test> SIZE=10\tBODY=8BITMIME", -1, .code = 501,
	 .enh = "5.5.4"},
	{"FROM:<a@b.test>  SIZE=10   BODY=8BITMIME SMTPUTF8 ", 0, true, 10,
	 SMTP_BODY_8BITMIME, true, .envid = ""},
	{"FROM:<> SIZE=5 RET=HDRS ENVID=x AUTH=<>", 0, true, 5,
	 .ret_ = SMTP_RET_HDRS, .envid = "x"},
};

static void
test_mail_params(void **state)
{
	struct smtp_mail_args m;
	struct smtp_error e;
	size_t i;
	int ret;

	(void)state;
	for (i = 0; i < N(mail_cases); i++) {
		const struct mail_case *t = &mail_cases[i];

		memset(&e, 0, sizeof(e));
		ret = smtp_parse_mail(t->arg, &m, &e);
		if (t->ret < 0) {
			check_error(i, t->arg, ret, &e, t->code, t->enh, NULL);
			continue;
		}
		if (ret != 0)
			fail_msg("row %zu <%s>: %d %s %s", i, t->arg, e.code,
				 e.enh, e.text);
		if (m.has_size != t->has_size || m.size != t->size ||
		    m.body != t->body || m.smtputf8 != t->smtputf8 ||
		    m.ret != t->ret_ || strcmp(m.envid, t->envid) != 0)
			fail_msg("row %zu <%s>: size %d/%llu body %d utf8 %d "
				 "ret %d envid \"%s\"",
				 i, t->arg, m.has_size,
				 (unsigned long long)m.size, (int)m.body,
				 m.smtputf8, (int)m.ret, m.envid);
	}
}

/* ---- RCPT parameters ------------------------------------------------ */

static const struct rcpt_case {
	const char *arg;
	int ret;
	unsigned notify;
	const char *orcpt;
	int code;
	const char *enh;
} rcpt_cases[] = {
	{.arg = "TO:<a@b.test>", 0, 0, ""},
	{.arg = "TO:<a@b.test> NOTIFY=NEVER", 0, SMTP_NOTIFY_NEVER, ""},
	{.arg = "TO:<a@b.test> NOTIFY=SUCCESS,FAILURE", 0,
	 SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE, ""},
	{.arg = "TO:<a@b.test> notify=delay,success,failure", 0,
	 SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY, ""},
	{.arg = "TO:<a@b.test> NOTIFY=NEVER,SUCCESS", -1, .code = 501,
	 .enh = "5.5.4"},
	{.arg = "TO:<a@b.test> NOTIFY=SUCCESS,SUCCESS", -1, .code = 501,
	 .enh = "5.5.4"},
	{.arg = "TO:<a@b.test> NOTIFY=SUCCESS,", -1, .code = 501, .enh = "5.5.4"},
	{.arg = "TO:<a@b.test> NOTIFY=,SUCCESS", -1, .code = 501, .enh = "5.5.4"},
	{.arg = "TO:<a@b.test> NOTIFY=BOGUS", -1, .code = 501, .enh = "5.5.4"},
	{.arg = "TO:<a@b.test> NOTIFY", -1, .code = 501, .enh = "5.5.4"},
	{.arg = "TO:<a@b.test> NOTIFY=NEVER NOTIFY=NEVER", -1, .code = 555,
	 .enh = "5.5.4"},
	{.arg = "TO:<a@b.test> ORCPT=rfc822;user+40example.org", 0, 0,
	 "rfc822;user@example.org"},
	{.arg = "TO:<a@b.test> ORCPT=utf-8;j+C3+B6rg@example.org", 0, 0,
	 "utf-8;jörg@example.org"},
	{.arg = "TO:<a@b.test> ORCPT=rfc822", -1, .code = 501, .enh = "5.5.4"},
	{.arg = "TO:<a@b.test> ORCPT=;abc", -1, .code = 501, .enh = "5.5.4"},
	{.arg = "TO:<a@b.test> ORCPT=rfc822;", -1, .code = 501, .enh = "5.5.4"},
	{.arg = "TO:<a@b.test> ORCPT=rfc_822;a", -1, .code = 501, .enh = "5.5.4"},
	{.arg = "TO:<a@b.test> ORCPT=rfc822;a+0Ab", -1, .code = 501, .enh = "5.5.4"},
	{.arg = "TO:<a@b.test> ORCPT=rfc822;a ORCPT=rfc822;b", -1, .code = 555,
	 .enh = "5.5.4"},
	{.arg = "TO:<a@b.test> SIZE=10", -1, .code = 555, .enh = "5.5.4"},
	{.arg = "TO:<a@b.test> NOTIFY=FAILURE ORCPT=rfc822;a@b.test", 0,
	 SMTP_NOTIFY_FAILURE, "rfc822;a@b.test"},
};

static void
test_rcpt_params(void **state)
{
	struct smtp_rcpt_args r;
	struct smtp_error e;
	size_t i;
	int ret;

	(void)state;
	for (i = 0; i < N(rcpt_cases); i++) {
		const struct rcpt_case *t = &rcpt_cases[i];

		memset(&e, 0, sizeof(e));
		ret = smtp_parse_rcpt(t->arg, false, &r, &e);
		if (t->ret < 0) {
			check_error(i, t->arg, ret, &e, t->code, t->enh, NULL);
			continue;
		}
		if (ret != 0)
			fail_msg("row %zu <%s>: %d %s %s", i, t->arg, e.code,
				 e.enh, e.text);
		if (r.notify != t->notify || strcmp(r.orcpt, t->orcpt) != 0)
			fail_msg("row %zu <%s>: notify %u orcpt \"%s\"", i,
				 t->arg, r.notify, r.orcpt);
	}
}

/* ---- BDAT ----------------------------------------------------------- */

static const struct bdat_case {
	const char *arg;
	int ret;
	uint64_t size;
	bool last;
} bdat_cases[] = {
	{.arg = "100", 0, 100, false},
	{.arg = "0 LAST", 0, 0, true},
	{.arg = "100 last", 0, 100, true},
	{.arg = "007", 0, 7, false},
	{.arg = "18446744073709551615", 0, UINT64_MAX, false},
	{.arg = "18446744073709551616", -1},
	{.arg = "", -1},
	{.arg = "abc", -1},
	{.arg = "-1", -1},
	{.arg = "+1", -1},
	{.arg = " 100", -1},
	{.arg = "100 LAST extra", -1},
	{.arg = "100  LAST", -1},
	{.arg = "100 LASTX", -1},
	{.arg = "100 FIRST", -1},
	{.arg = "1e3", -1},
};

static void
test_bdat(void **state)
{
	struct smtp_error e;
	uint64_t size;
	bool last;
	size_t i;
	int ret;

	(void)state;
	for (i = 0; i < N(bdat_cases); i++) {
		const struct bdat_case *t = &bdat_cases[i];

		memset(&e, 0, sizeof(e));
		size = 12345;
		last = false;
		ret = smtp_parse_bdat(t->arg, &size, &last, &e);
		if (t->ret < 0) {
			check_error(i, t->arg, ret, &e, 501, "5.5.4", NULL);
			continue;
		}
		if (ret != 0 || size != t->size || last != t->last)
			fail_msg("row %zu <%s>: ret %d size %llu last %d", i,
				 t->arg, ret, (unsigned long long)size, last);
	}
}

/* ---- HELO ----------------------------------------------------------- */

static const struct helo_case {
	const char *arg;
	int ret;
} helo_cases[] = {
	{"mail.example.test", 0},
	{"mail.example.test.", 0},
	{"MAIL.Example.TEST", 0},
	{"localhost", 0},
	{"[192.0.2.1]", 0},
	{"[IPv6:2001:db8::1]", 0},
	{"", -1},
	{"bad_host", -1},
	{"mail.example.test extra", -1},
	{"-bad.test", -1},
	{"a..b", -1},
	{"exämple.test", -1},
	{"[300.1.1.1]", -1},
	{"[192.0.2.1", -1},
	{"[x-tag:abc]", -1},
	{"192.0.2.1", 0},
	{B64 ".test", -1},
};

static void
test_helo(void **state)
{
	struct smtp_error e;
	size_t i;
	int ret;

	(void)state;
	for (i = 0; i < N(helo_cases); i++) {
		const struct helo_case *t = &helo_cases[i];

		memset(&e, 0, sizeof(e));
		ret = smtp_parse_helo(t->arg, &e);
		if (t->ret < 0)
			check_error(i, t->arg, ret, &e, 501, "5.5.4", NULL);
		else if (ret != 0)
			fail_msg("row %zu <%s>: %d %s %s", i, t->arg, e.code,
				 e.enh, e.text);
	}
}

/* ---- smtp_mailbox_format -------------------------------------------- */

static const struct format_case {
	const char *local;
	const char *domain;
	size_t size;		/* 0: a roomy buffer */
	const char *out;	/* NULL: -1 expected */
} format_cases[] = {
	{"user", "example.test", 0, "user@example.test"},
	{"first.last", "example.test", 0, "first.last@example.test"},
	{"user%other", "local.test", 0, "user%other@local.test"},
	{"a b", "example.test", 0, "\"a b\"@example.test"},
	{"a\"b\\c", "example.test", 0, "\"a\\\"b\\\\c\"@example.test"},
	{"user@other.example", "local.test", 0,
	 "\"user@other.example\"@local.test"},
	{"a..b", "x.test", 0, "\"a..b\"@x.test"},
	{".a", "x.test", 0, "\".a\"@x.test"},
	{"a.", "x.test", 0, "\"a.\"@x.test"},
	{"postmaster", "", 0, "postmaster"},
	{"jörg", "exämple.test", 0, "jörg@exämple.test"},
	{"u", "[192.0.2.1]", 0, "u@[192.0.2.1]"},
	{"a\x01" "b", "x.test", 0, NULL},
	{"a\xc3", "x.test", 0, NULL},
	{"user", "example.test", 17, NULL},
	{"user", "example.test", 18, "user@example.test"},
	{"a b", "x", 7, NULL},
	{"a b", "x", 8, "\"a b\"@x"},
};

static void
test_format(void **state)
{
	struct smtp_mailbox m;
	char buf[600];
	size_t i, size;
	int ret;

	(void)state;
	for (i = 0; i < N(format_cases); i++) {
		const struct format_case *t = &format_cases[i];

		memset(&m, 0, sizeof(m));
		snprintf(m.local, sizeof(m.local), "%s", t->local);
		snprintf(m.domain, sizeof(m.domain), "%s", t->domain);
		size = t->size != 0 ? t->size : sizeof(buf);
		ret = smtp_mailbox_format(&m, buf, size);
		if (t->out == NULL) {
			if (ret != -1)
				fail_msg("row %zu: expected -1, got \"%s\"", i,
					 buf);
			continue;
		}
		if (ret != 0 || strcmp(buf, t->out) != 0)
			fail_msg("row %zu: ret %d \"%s\", expected \"%s\"", i,
				 ret, ret == 0 ? buf : "", t->out);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_command),
	    cmocka_unit_test(test_command_verb),
	    cmocka_unit_test(test_addr),
	    cmocka_unit_test(test_path),
	    cmocka_unit_test(test_mail_params),
	    cmocka_unit_test(test_rcpt_params),
	    cmocka_unit_test(test_bdat),
	    cmocka_unit_test(test_helo),
	    cmocka_unit_test(test_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
