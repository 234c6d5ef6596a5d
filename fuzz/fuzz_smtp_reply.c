/*
 * libFuzzer target for the SMTP client's reply and EHLO parsers
 * (smtp_client.c). The input is split at LF into lines as the client's
 * line reader hands them over (at most SMTP_CLIENT_LINE_MAX octets,
 * CR LF removed; NUL may appear). Each line is fed to the reply parser
 * and, past the first line of a reply, to the EHLO keyword parser, in a
 * buffer of exactly its length so ASan sees any read past it. Checked
 * invariants (abort() on violation): the parser returns -1, 0 or 1; a
 * complete reply has a code 200..599 equal to the first line's digits,
 * an enhanced code that is empty or "d.d.d" with the reply's class, and
 * text that is NUL-terminated within SMTP_CLIENT_TEXT_MAX, printable
 * ASCII only; a reply never has more than SMTP_CLIENT_REPLY_LINES lines;
 * the EHLO parser sets only known bits.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/smtp_reply.h"

#define EXT_ALL 0x7ff

static void
check(int ok)
{
	if (!ok)
		abort();
}

static void
check_reply(const struct smtp_reply *r, const char *first)
{
	size_t n, i;

	check(r->code >= 200 && r->code <= 599);
	check(r->code == (first[0] - '0') * 100 + (first[1] - '0') * 10 +
				 (first[2] - '0'));
	n = strnlen(r->enh, sizeof(r->enh));
	check(n < sizeof(r->enh));
	if (n > 0) {
		check(n >= 5 && r->enh[0] == first[0] && r->enh[1] == '.');
		for (i = 0; i < n; i++)
			check((r->enh[i] >= '0' && r->enh[i] <= '9') ||
			      r->enh[i] == '.');
	}
	n = strnlen(r->text, sizeof(r->text));
	check(n < sizeof(r->text));
	for (i = 0; i < n; i++)
		check(r->text[i] >= 0x20 && r->text[i] < 0x7f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_reply_parser p;
	struct smtp_ehlo e = {0, 0};
	struct smtp_reply r;
	char first[4] = "";
	unsigned lines = 0;
	size_t pos = 0;

	smtp_reply_parser_init(&p);
	while (pos < size) {
		const uint8_t *lf = memchr(data + pos, '\n', size - pos);
		size_t len = lf != NULL ? (size_t)(lf - (data + pos))
					: size - pos;
		size_t next = pos + len + (lf != NULL);
		char *line;
		int ret;

		if (len > 0 && data[pos + len - 1] == '\r')
			len--;
		if (len > SMTP_CLIENT_LINE_MAX - 2)
			len = SMTP_CLIENT_LINE_MAX - 2;
		line = malloc(len > 0 ? len : 1);
		check(line != NULL);
		memcpy(line, data + pos, len);
		if (lines == 0 && len >= 3)
			memcpy(first, line, 3);
		ret = smtp_reply_parser_line(&p, line, len, &r);
		check(ret >= -1 && ret <= 1);
		if (ret >= 0) {
			lines++;
			check(lines <= SMTP_CLIENT_REPLY_LINES);
			if (lines > 1 && len > 4)
				smtp_ehlo_line(&e, line + 4, len - 4);
		}
		if (ret == 1)
			check_reply(&r, first);
		if (ret != 0)
			lines = 0;
		check((e.ext & ~(unsigned)EXT_ALL) == 0);
		check(e.size == 0 || (e.ext & SMTP_EXT_SIZE));
		/* the raw line as an EHLO line too, whatever it holds */
		smtp_ehlo_line(&e, line, len);
		free(line);
		pos = next;
	}
	return 0;
}
