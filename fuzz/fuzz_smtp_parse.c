/*
 * libFuzzer target for smtp_parse.c. The input is one command line; it
 * goes through smtp_parse_command and then, by verb, through the MAIL,
 * RCPT, BDAT and HELO parsers. Every mailbox that parses is formatted and
 * parsed again: the result must be the same mailbox, or the formatter and
 * the parser disagree about what an address means — exactly the kind of
 * gap a relay trick lives in — and we abort() so the fuzzer reports it.
 * A few invariants the rest of godwit relies on are checked too.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/smtp_parse.h"

#define LINE_MAX_FUZZ 4096

static void
check(bool ok)
{
	if (!ok)
		abort();
}

/* Nothing with a control character may come out of the parser. */
static void
check_text(const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);

	check(n <= max);
	for (; *s != '\0'; s++)
		check((unsigned char)*s >= 32 && *s != 127);
}

static void
check_mailbox(const struct smtp_mailbox *m, bool postmaster_ok,
	      bool utf8_ok)
{
	char buf[SMTP_PATH_MAX * 2], path[SMTP_PATH_MAX * 2 + 3], again[600];
	struct smtp_path q;
	struct smtp_error e;
	const char *end, *p;
	bool ascii = true;

	check_text(m->local, SMTP_LOCAL_MAX);
	check_text(m->domain, SMTP_DOMAIN_MAX);
	check(m->local[0] != '\0');
	for (p = m->local; *p != '\0'; p++)
		ascii = ascii && (unsigned char)*p < 0x80;
	/* lower-case, but for the "IPv6:" tag of a literal */
	for (p = m->domain + (m->is_literal ? 5 : 0); *p != '\0'; p++) {
		check(*p < 'A' || *p > 'Z');
		ascii = ascii && (unsigned char)*p < 0x80;
	}
	check(m->needs_utf8 == !ascii);
	if (m->domain[0] == '\0') {
		check(postmaster_ok && strcmp(m->local, "postmaster") == 0);
	} else {
		check(m->domain[strlen(m->domain) - 1] != '.');
		check(m->is_literal == (m->domain[0] == '['));
	}

	/* format, re-parse, compare */
	check(smtp_mailbox_format(m, buf, sizeof(buf)) == 0);
	snprintf(path, sizeof(path), "<%s>", buf);
	check(strlen(path) <= SMTP_PATH_MAX);
	if (smtp_parse_path(path, false, postmaster_ok, utf8_ok, &q, &end,
			    &e) != 0) {
		fprintf(stderr, "re-parse of %s failed: %d %s %s\n", path,
			e.code, e.enh, e.text);
		abort();
	}
	check(*end == '\0');
	check(!q.null);
	check(strcmp(q.mbox.local, m->local) == 0);
	check(strcmp(q.mbox.domain, m->domain) == 0);
	check(q.mbox.is_literal == m->is_literal);
	check(q.mbox.needs_utf8 == m->needs_utf8);
	/* the formatter quotes exactly when it must */
	check(q.mbox.quoted == (buf[0] == '"'));
	/* and formatting is stable */
	check(smtp_mailbox_format(&q.mbox, again, sizeof(again)) == 0);
	check(strcmp(again, buf) == 0);
}

static void
fuzz_mail(const char *arg)
{
	struct smtp_mail_args m;
	struct smtp_error e;

	if (smtp_parse_mail(arg, &m, &e) != 0) {
		check(e.code >= 500 && e.code <= 555 && e.text != NULL);
		return;
	}
	check_text(m.envid, SMTP_XTEXT_MAX);
	if (!m.path.null)
		check_mailbox(&m.path.mbox, false, m.smtputf8);
}

static void
fuzz_rcpt(const char *arg, bool utf8_ok)
{
	struct smtp_rcpt_args r;
	struct smtp_error e;

	if (smtp_parse_rcpt(arg, utf8_ok, &r, &e) != 0) {
		check(e.code >= 500 && e.code <= 555 && e.text != NULL);
		return;
	}
	check(!r.path.null);
	check_text(r.orcpt, SMTP_XTEXT_MAX);
	check(r.orcpt[0] == '\0' || strchr(r.orcpt, ';') != NULL);
	check(!(r.notify & SMTP_NOTIFY_NEVER) ||
	      r.notify == SMTP_NOTIFY_NEVER);
	check(utf8_ok || !r.path.mbox.needs_utf8);
	check_mailbox(&r.path.mbox, true, utf8_ok);
}

/* Any path-shaped text, with each combination of flags. */
static void
fuzz_path(const char *s)
{
	struct smtp_path p;
	struct smtp_error e;
	const char *end;
	unsigned f;

	for (f = 0; f < 8; f++) {
		bool null_ok = f & 1, pm_ok = f & 2, utf8_ok = f & 4;

		if (smtp_parse_path(s, null_ok, pm_ok, utf8_ok, &p, &end,
				    &e) != 0)
			continue;
		check(end > s && end[-1] == '>');
		check(*end == '\0' || *end == ' ');
		check((size_t)(end - s) <= SMTP_PATH_MAX);
		if (p.null)
			check(null_ok);
		else
			check_mailbox(&p.mbox, pm_ok, utf8_ok);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char line[LINE_MAX_FUZZ + 1];
	struct smtp_command c;
	struct smtp_error e;
	uint64_t n;
	bool last;
	size_t len;

	if (size > LINE_MAX_FUZZ)
		size = LINE_MAX_FUZZ;
	memcpy(line, data, size);
	line[size] = '\0';
	len = strlen(line);

	if (smtp_parse_command(line, len, &c, &e) != 0) {
		check(e.code >= 500 && e.code <= 555 && e.text != NULL);
		return 0;
	}
	check(c.verb == line && c.verb_len <= len);
	check(c.arg >= line && c.arg <= line + len);

	switch (c.cmd) {
	case SMTP_CMD_MAIL:
		fuzz_mail(c.arg);
		break;
	case SMTP_CMD_RCPT:
		fuzz_rcpt(c.arg, false);
		fuzz_rcpt(c.arg, true);
		break;
	case SMTP_CMD_BDAT:
		if (smtp_parse_bdat(c.arg, &n, &last, &e) != 0)
			check(e.code == 501);
		break;
	case SMTP_CMD_HELO:
	case SMTP_CMD_EHLO:
		if (smtp_parse_helo(c.arg, &e) != 0)
			check(e.code == 501);
		break;
	case SMTP_CMD_VRFY:
	case SMTP_CMD_EXPN:
		fuzz_path(c.arg);
		break;
	case SMTP_CMD_DATA:
	case SMTP_CMD_RSET:
	case SMTP_CMD_QUIT:
	case SMTP_CMD_STARTTLS:
		check(*c.arg == '\0');
		break;
	case SMTP_CMD_UNKNOWN:
		fuzz_path(line);
		break;
	default:
		break;
	}
	return 0;
}
