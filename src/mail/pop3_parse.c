/*
 * POP3 command lines (see pop3_parse.h for the grammar we accept). Pure:
 * the line is cut in place into NUL-terminated arguments and the result
 * goes into the caller's struct; nothing is allocated or logged, so the
 * whole file is fuzzed and unit-tested in isolation.
 */
#include <stdint.h>
#include <string.h>

#include "mail/pop3_parse.h"

#define POP3_ARGS_MAX 3		/* TOP msg n, AUTH mech ir; one more to see
				 * that there are too many */
#define POP3_MECH_MAX 20	/* RFC 4422 3.1 */
#define POP3_NUM_DIGITS 10	/* "4000000000" */

enum args_kind {
	ARGS_NONE,		/* STAT, NOOP, RSET, QUIT, CAPA, STLS */
	ARGS_NAME,		/* USER */
	ARGS_REST,		/* PASS */
	ARGS_OPT_MSG,		/* LIST, UIDL */
	ARGS_MSG,		/* RETR, DELE */
	ARGS_MSG_LINES,		/* TOP */
	ARGS_AUTH,		/* AUTH */
};

static const struct keyword {
	const char *name;
	enum pop3_cmd cmd;
	enum args_kind args;
	const char *usage;	/* the error for a wrong number of arguments */
} keywords[] = {
	{"USER", POP3_CMD_USER, ARGS_NAME, "syntax: USER name"},
	{"PASS", POP3_CMD_PASS, ARGS_REST, "syntax: PASS password"},
	{"STAT", POP3_CMD_STAT, ARGS_NONE, "syntax: STAT"},
	{"LIST", POP3_CMD_LIST, ARGS_OPT_MSG, "syntax: LIST [msg]"},
	{"RETR", POP3_CMD_RETR, ARGS_MSG, "syntax: RETR msg"},
	{"DELE", POP3_CMD_DELE, ARGS_MSG, "syntax: DELE msg"},
	{"NOOP", POP3_CMD_NOOP, ARGS_NONE, "syntax: NOOP"},
	{"RSET", POP3_CMD_RSET, ARGS_NONE, "syntax: RSET"},
	{"QUIT", POP3_CMD_QUIT, ARGS_NONE, "syntax: QUIT"},
	{"TOP", POP3_CMD_TOP, ARGS_MSG_LINES, "syntax: TOP msg n"},
	{"UIDL", POP3_CMD_UIDL, ARGS_OPT_MSG, "syntax: UIDL [msg]"},
	{"CAPA", POP3_CMD_CAPA, ARGS_NONE, "syntax: CAPA"},
	{"STLS", POP3_CMD_STLS, ARGS_NONE, "syntax: STLS"},
	{"AUTH", POP3_CMD_AUTH, ARGS_AUTH,
	 "syntax: AUTH [mechanism [initial-response]]"},
};

static const char *const cmd_names[] = {
	[POP3_CMD_UNKNOWN] = "UNKNOWN",
	[POP3_CMD_USER] = "USER",
	[POP3_CMD_PASS] = "PASS",
	[POP3_CMD_STAT] = "STAT",
	[POP3_CMD_LIST] = "LIST",
	[POP3_CMD_RETR] = "RETR",
	[POP3_CMD_DELE] = "DELE",
	[POP3_CMD_NOOP] = "NOOP",
	[POP3_CMD_RSET] = "RSET",
	[POP3_CMD_QUIT] = "QUIT",
	[POP3_CMD_TOP] = "TOP",
	[POP3_CMD_UIDL] = "UIDL",
	[POP3_CMD_CAPA] = "CAPA",
	[POP3_CMD_STLS] = "STLS",
	[POP3_CMD_AUTH] = "AUTH",
};

const char *
pop3_cmd_name(enum pop3_cmd cmd)
{
	if ((size_t)cmd >= sizeof(cmd_names) / sizeof(cmd_names[0]) ||
	    cmd_names[cmd] == NULL)
		return "UNKNOWN";
	return cmd_names[cmd];
}

static int
fail(const char **error_r, const char *why)
{
	*error_r = why;
	return -1;
}

static unsigned char
to_upper(unsigned char c)
{
	return c >= 'a' && c <= 'z' ? (unsigned char)(c - 'a' + 'A') : c;
}

static bool
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_alnum(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/*
 * The keyword table entry for the n octets at s, compared in ASCII
 * (strncasecmp() would follow the process locale), or NULL.
 */
static const struct keyword *
find_keyword(const char *s, size_t n)
{
	size_t i, k;

	for (i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++) {
		const char *name = keywords[i].name;

		if (strlen(name) != n)
			continue;
		for (k = 0; k < n; k++)
			if (to_upper((unsigned char)s[k]) !=
			    (unsigned char)name[k])
				break;
		if (k == n)
			return &keywords[i];
	}
	return NULL;
}

/*
 * A message number or line count: 1..10 decimal digits, leading zeros
 * allowed, no sign or space, at most max. Accumulated in 64 bits, so ten
 * nines cannot overflow where unsigned long has 32.
 */
static bool
parse_number(const char *s, unsigned long max, unsigned long *r)
{
	uint64_t v = 0;
	size_t n;

	for (n = 0; s[n] != '\0'; n++) {
		if (!is_digit((unsigned char)s[n]) || n == POP3_NUM_DIGITS)
			return false;
		v = v * 10 + (uint64_t)(s[n] - '0');
	}
	if (n == 0 || v > max)
		return false;
	*r = (unsigned long)v;
	return true;
}

static int
parse_msg(const char *s, struct pop3_command *c, const char **error_r)
{
	if (!parse_number(s, POP3_MSG_MAX, &c->msg) || c->msg == 0)
		return fail(error_r, "invalid message number");
	c->has_msg = true;
	return 0;
}

/* RFC 4422 3.1: 1..20 of A-Z a-z 0-9 - _ (we also take lower case). */
static bool
mech_ok(const char *s)
{
	size_t n;

	for (n = 0; s[n] != '\0'; n++)
		if (n == POP3_MECH_MAX ||
		    !(is_alnum((unsigned char)s[n]) || s[n] == '-' ||
		      s[n] == '_'))
			return false;
	return n > 0;
}

/*
 * RFC 5034 4: base64 text, or "=" for an empty initial response. Only
 * the alphabet and the place of the padding are checked here; the SASL
 * decoder judges the rest.
 */
static bool
initial_response_ok(const char *s)
{
	size_t n, pad = 0;

	if (strcmp(s, "=") == 0)
		return true;
	for (n = 0; s[n] != '\0'; n++) {
		unsigned char ch = (unsigned char)s[n];

		if (ch == '=') {
			if (n == 0 || ++pad > 2)
				return false;
		} else if (pad > 0 ||
			   !(is_alnum(ch) || ch == '+' || ch == '/')) {
			return false;
		}
	}
	return n > 0 && n <= POP3_LINE_MAX;
}

/*
 * Cuts s into space-separated arguments in place: runs of spaces count as
 * one separator and trailing spaces are dropped. Returns how many were
 * found, at most POP3_ARGS_MAX + 1 (more are not looked for).
 */
static size_t
split_args(char *s, char **argv)
{
	size_t argc = 0;

	for (;;) {
		while (*s == ' ')
			s++;
		if (*s == '\0' || argc == POP3_ARGS_MAX + 1)
			return argc;
		argv[argc++] = s;
		while (*s != ' ' && *s != '\0')
			s++;
		if (*s == '\0')
			return argc;
		*s++ = '\0';
	}
}

static int
parse_args(const struct keyword *kw, char *rest, struct pop3_command *c,
	   const char **error_r)
{
	char *argv[POP3_ARGS_MAX + 1];
	size_t argc = split_args(rest, argv);

	switch (kw->args) {
	case ARGS_NONE:
		if (argc != 0)
			return fail(error_r, kw->usage);
		return 0;
	case ARGS_NAME:
		if (argc != 1)
			return fail(error_r, kw->usage);
		if (strlen(argv[0]) > POP3_NAME_MAX)
			return fail(error_r, "user name too long");
		c->arg = argv[0];
		return 0;
	case ARGS_OPT_MSG:
		if (argc > 1)
			return fail(error_r, kw->usage);
		return argc == 0 ? 0 : parse_msg(argv[0], c, error_r);
	case ARGS_MSG:
		if (argc != 1)
			return fail(error_r, kw->usage);
		return parse_msg(argv[0], c, error_r);
	case ARGS_MSG_LINES:
		if (argc != 2)
			return fail(error_r, kw->usage);
		if (parse_msg(argv[0], c, error_r) < 0)
			return -1;
		if (!parse_number(argv[1], POP3_LINES_MAX, &c->lines))
			return fail(error_r, "invalid line count");
		return 0;
	case ARGS_AUTH:
		if (argc > 2)
			return fail(error_r, kw->usage);
		if (argc >= 1 && !mech_ok(argv[0]))
			return fail(error_r, "invalid mechanism name");
		if (argc == 2 && !initial_response_ok(argv[1]))
			return fail(error_r, "invalid initial response");
		c->arg = argc >= 1 ? argv[0] : NULL;
		c->arg2 = argc == 2 ? argv[1] : NULL;
		return 0;
	case ARGS_REST:
		break;
	}
	return fail(error_r, kw->usage);	/* not reached: PASS is apart */
}

int
pop3_parse(char *line, size_t len, struct pop3_command *c,
	   const char **error_r)
{
	const struct keyword *kw;
	size_t klen, i;

	memset(c, 0, sizeof(*c));
	c->cmd = POP3_CMD_UNKNOWN;
	for (klen = 0; klen < len && line[klen] != ' '; klen++)
		;
	kw = find_keyword(line, klen);
	if (kw == NULL || len == 0)
		return fail(error_r, len == 0 ? "empty command" :
						"unknown command");
	c->cmd = kw->cmd;
	if (len > POP3_LINE_MAX)
		return fail(error_r, "line too long");
	/* A NUL counts as a control character: the line must end at len. */
	for (i = 0; i < len; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			return fail(error_r, "control character in command");
	if (kw->args == ARGS_REST) {
		/* The password is verbatim: it may hold and end in spaces. */
		if (klen + 1 >= len)
			return fail(error_r, kw->usage);
		if (len - klen - 1 > POP3_PASS_MAX)
			return fail(error_r, "password too long");
		c->arg = line + klen + 1;
		return 0;
	}
	return parse_args(kw, line + klen, c, error_r);
}
