/*
 * libFuzzer target for pop3_parse.c. The input is one command line as
 * the session hands it over: at most POP3_LINE_MAX octets (longer input
 * is cut), and inputs holding NUL, CR or LF are skipped (the session's
 * line reader never passes them). The line goes into a buffer of exactly
 * its size so ASan sees any read past the NUL. Invariants the POP3
 * session relies on are checked and abort() on violation: arguments
 * point into the line and end there, hold no control characters and
 * respect their bounds; message numbers are in range; errors are short
 * printable text; and keywords really are case-insensitive.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/pop3_parse.h"

static void
check(bool ok)
{
	if (!ok)
		abort();
}

/* An argument: inside [line, line + len], NUL-terminated there, clean. */
static size_t
check_arg(const char *arg, const char *line, size_t len)
{
	size_t n;

	check(arg >= line && arg <= line + len);
	n = strnlen(arg, (size_t)(line + len - arg) + 1);
	check(arg + n <= line + len);
	for (const char *p = arg; *p != '\0'; p++)
		check((unsigned char)*p >= 0x20 && *p != 0x7f);
	return n;
}

static void
check_error(const char *error)
{
	size_t n;

	check(error != NULL);
	n = strlen(error);
	check(n > 0 && n < 80);
	for (; *error != '\0'; error++)
		check((unsigned char)*error >= 0x20 &&
		      (unsigned char)*error < 0x7f);
}

/*
 * The next space-separated token at *pp: all decimal digits, at most
 * ten, and its value. Written apart from the parser on purpose.
 */
static uint64_t
token_value(const char **pp)
{
	const char *p = *pp;
	uint64_t v = 0;
	size_t n = 0;

	while (*p == ' ')
		p++;
	for (; *p != ' ' && *p != '\0'; p++, n++) {
		check(*p >= '0' && *p <= '9' && n < 10);
		v = v * 10 + (uint64_t)(*p - '0');
	}
	check(n > 0);
	*pp = p;
	return v;
}

static void
check_success(const struct pop3_command *c, const char *line, size_t len,
	      const char *orig)
{
	const char *name = pop3_cmd_name(c->cmd);
	size_t klen = strlen(name), n;

	check(c->cmd != POP3_CMD_UNKNOWN);
	/* the keyword, in any case, then a space or the end */
	check(len >= klen && strncasecmp(orig, name, klen) == 0);
	check(len == klen || orig[klen] == ' ');
	check(!c->has_msg || (c->msg >= 1 && c->msg <= POP3_MSG_MAX));
	check(c->lines <= POP3_LINES_MAX);
	check(c->arg2 == NULL || c->arg != NULL);

	switch (c->cmd) {
	case POP3_CMD_USER:
		n = check_arg(c->arg, line, len);
		check(n >= 1 && n <= POP3_NAME_MAX && strchr(c->arg, ' ') == NULL);
		break;
	case POP3_CMD_PASS:
		/* verbatim: the rest of the line after "PASS " */
		n = check_arg(c->arg, line, len);
		check(n >= 1 && n <= POP3_PASS_MAX);
		check(c->arg == line + 5 && n == len - 5);
		check(memcmp(c->arg, orig + 5, n) == 0);
		break;
	case POP3_CMD_RETR:
	case POP3_CMD_DELE:
	case POP3_CMD_TOP:
		check(c->has_msg);
		/* fall through */
	case POP3_CMD_LIST:
	case POP3_CMD_UIDL:
		check(c->arg == NULL);
		check(c->cmd == POP3_CMD_TOP || c->lines == 0);
		break;
	case POP3_CMD_AUTH:
		if (c->arg != NULL) {
			n = check_arg(c->arg, line, len);
			check(n >= 1 && n <= 20);
			for (const char *p = c->arg; *p != '\0'; p++)
				check((*p >= 'A' && *p <= 'Z') ||
				      (*p >= 'a' && *p <= 'z') ||
				      (*p >= '0' && *p <= '9') || *p == '-' ||
				      *p == '_');
		}
		if (c->arg2 != NULL) {
			n = check_arg(c->arg2, line, len);
			check(n >= 1 && strchr(c->arg2, ' ') == NULL);
		}
		check(!c->has_msg);
		break;
	default:
		check(c->arg == NULL && !c->has_msg && c->lines == 0);
		break;
	}
	if (c->cmd != POP3_CMD_AUTH)
		check(c->arg2 == NULL);
	/* the numbers are the digits of the line */
	if (c->has_msg) {
		const char *p = orig + klen;

		check(token_value(&p) == c->msg);
		if (c->cmd == POP3_CMD_TOP)
			check(token_value(&p) == c->lines);
		while (*p == ' ')
			p++;
		check(*p == '\0');
	}
}

static int
parse_copy(const char *orig, size_t len, char **line_r,
	   struct pop3_command *c, const char **error_r)
{
	char *line = malloc(len + 1);

	check(line != NULL);
	memcpy(line, orig, len + 1);
	*line_r = line;
	*error_r = NULL;
	return pop3_parse(line, len, c, error_r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pop3_command c, c2;
	const char *error, *error2;
	char orig[POP3_LINE_MAX + 1], *line, *line2;
	size_t len = size < POP3_LINE_MAX ? size : POP3_LINE_MAX, k;
	int ret, ret2;

	if (memchr(data, '\0', len) != NULL || memchr(data, '\r', len) != NULL ||
	    memchr(data, '\n', len) != NULL)
		return 0;
	memcpy(orig, data, len);
	orig[len] = '\0';

	ret = parse_copy(orig, len, &line, &c, &error);
	check(ret == 0 || ret == -1);
	if (ret < 0)
		check_error(error);
	else
		check_success(&c, line, len, orig);

	/* the keyword's case does not matter */
	for (k = 0; k < len && orig[k] != ' '; k++)
		if (orig[k] >= 'a' && orig[k] <= 'z')
			orig[k] = (char)(orig[k] - 'a' + 'A');
		else if (orig[k] >= 'A' && orig[k] <= 'Z')
			orig[k] = (char)(orig[k] - 'A' + 'a');
	ret2 = parse_copy(orig, len, &line2, &c2, &error2);
	check(ret2 == ret && c2.cmd == c.cmd);
	if (ret == 0) {
		check(c2.has_msg == c.has_msg && c2.msg == c.msg &&
		      c2.lines == c.lines);
		check((c.arg == NULL) == (c2.arg == NULL));
		check(c.arg == NULL || (c.arg - line == c2.arg - line2 &&
					strcmp(c.arg, c2.arg) == 0));
		check((c.arg2 == NULL) == (c2.arg2 == NULL));
		check(c.arg2 == NULL || strcmp(c.arg2, c2.arg2) == 0);
	} else {
		check(strcmp(error, error2) == 0);
	}
	free(line);
	free(line2);
	return 0;
}
