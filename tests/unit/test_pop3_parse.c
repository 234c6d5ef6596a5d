/* Table-driven tests for the POP3 command parser (pop3_parse.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "mail/pop3_parse.h"

#define U POP3_CMD_UNKNOWN

struct parse_case {
	const char *line;
	int ret;
	enum pop3_cmd cmd;
	bool has_msg;
	unsigned long msg, lines;
	const char *arg, *arg2;	/* expected text, NULL: expected NULL */
	const char *error;	/* expected error string when ret is -1 */
};

static const struct parse_case cases[] = {
	/* every keyword, any case */
	{"USER bob", 0, POP3_CMD_USER, .arg = "bob"},
	{"user bob", 0, POP3_CMD_USER, .arg = "bob"},
	{"UsEr Bob@Example.ORG", 0, POP3_CMD_USER, .arg = "Bob@Example.ORG"},
	{"PASS secret", 0, POP3_CMD_PASS, .arg = "secret"},
	{"pass secret", 0, POP3_CMD_PASS, .arg = "secret"},
	{"pAsS secret", 0, POP3_CMD_PASS, .arg = "secret"},
	{"STAT", 0, POP3_CMD_STAT},
	{"stat", 0, POP3_CMD_STAT},
	{"sTaT", 0, POP3_CMD_STAT},
	{"LIST", 0, POP3_CMD_LIST},
	{"list", 0, POP3_CMD_LIST},
	{"LiSt 3", 0, POP3_CMD_LIST, true, 3},
	{"RETR 1", 0, POP3_CMD_RETR, true, 1},
	{"retr 1", 0, POP3_CMD_RETR, true, 1},
	{"rEtR 12", 0, POP3_CMD_RETR, true, 12},
	{"DELE 2", 0, POP3_CMD_DELE, true, 2},
	{"dele 2", 0, POP3_CMD_DELE, true, 2},
	{"DeLe 2", 0, POP3_CMD_DELE, true, 2},
	{"NOOP", 0, POP3_CMD_NOOP},
	{"noop", 0, POP3_CMD_NOOP},
	{"NoOp", 0, POP3_CMD_NOOP},
	{"RSET", 0, POP3_CMD_RSET},
	{"rset", 0, POP3_CMD_RSET},
	{"RsEt", 0, POP3_CMD_RSET},
	{"QUIT", 0, POP3_CMD_QUIT},
	{"quit", 0, POP3_CMD_QUIT},
	{"QuIt", 0, POP3_CMD_QUIT},
	{"TOP 1 10", 0, POP3_CMD_TOP, true, 1, 10},
	{"top 1 10", 0, POP3_CMD_TOP, true, 1, 10},
	{"ToP 1 0", 0, POP3_CMD_TOP, true, 1, 0},
	{"UIDL", 0, POP3_CMD_UIDL},
	{"uidl 4", 0, POP3_CMD_UIDL, true, 4},
	{"UiDl 4", 0, POP3_CMD_UIDL, true, 4},
	{"CAPA", 0, POP3_CMD_CAPA},
	{"capa", 0, POP3_CMD_CAPA},
	{"CaPa", 0, POP3_CMD_CAPA},
	{"STLS", 0, POP3_CMD_STLS},
	{"stls", 0, POP3_CMD_STLS},
	{"StLs", 0, POP3_CMD_STLS},
	{"AUTH", 0, POP3_CMD_AUTH},
	{"auth", 0, POP3_CMD_AUTH},
	{"AuTh PLAIN", 0, POP3_CMD_AUTH, .arg = "PLAIN"},

	/* unknown, refused and malformed keywords */
	{"", -1, U, .error = "empty command"},
	{"APOP bob 0123456789abcdef0123456789abcdef", -1, U,
	 .error = "unknown command"},
	{"apop", -1, U, .error = "unknown command"},
	{"XTND XMIT", -1, U, .error = "unknown command"},
	{"HELO", -1, U, .error = "unknown command"},
	{"STATS", -1, U, .error = "unknown command"},
	{"STA", -1, U, .error = "unknown command"},
	{"TOPS 1 1", -1, U, .error = "unknown command"},
	{" STAT", -1, U, .error = "unknown command"},
	{"STAT\t", -1, U, .error = "unknown command"},
	{"RETR\t1", -1, U, .error = "unknown command"},
	{"\tQUIT", -1, U, .error = "unknown command"},
	{"QUIT\x7f", -1, U, .error = "unknown command"},
	{"ST\xc3\x81T", -1, U, .error = "unknown command"},

	/* commands without arguments */
	{"STAT ", 0, POP3_CMD_STAT},
	{"QUIT   ", 0, POP3_CMD_QUIT},
	{"STAT 1", -1, POP3_CMD_STAT, .error = "syntax: STAT"},
	{"NOOP x", -1, POP3_CMD_NOOP, .error = "syntax: NOOP"},
	{"RSET  1 ", -1, POP3_CMD_RSET, .error = "syntax: RSET"},
	{"QUIT now", -1, POP3_CMD_QUIT, .error = "syntax: QUIT"},
	{"CAPA x", -1, POP3_CMD_CAPA, .error = "syntax: CAPA"},
	{"STLS x", -1, POP3_CMD_STLS, .error = "syntax: STLS"},
	{"QUIT \t", -1, POP3_CMD_QUIT, .error = "control character in command"},
	{"NOOP \x01", -1, POP3_CMD_NOOP,
	 .error = "control character in command"},

	/* message numbers */
	{"RETR 0", -1, POP3_CMD_RETR, .error = "invalid message number"},
	{"RETR 00", -1, POP3_CMD_RETR, .error = "invalid message number"},
	{"RETR 01", 0, POP3_CMD_RETR, true, 1},
	{"RETR 0000000001", 0, POP3_CMD_RETR, true, 1},
	{"RETR 00000000001", -1, POP3_CMD_RETR,
	 .error = "invalid message number"},
	{"RETR 4000000000", 0, POP3_CMD_RETR, true, 4000000000UL},
	{"RETR 4000000001", -1, POP3_CMD_RETR,
	 .error = "invalid message number"},
	{"RETR 4294967296", -1, POP3_CMD_RETR,
	 .error = "invalid message number"},
	{"RETR 9999999999", -1, POP3_CMD_RETR,
	 .error = "invalid message number"},
	{"RETR 18446744073709551617", -1, POP3_CMD_RETR,
	 .error = "invalid message number"},
	{"RETR 1234567890", 0, POP3_CMD_RETR, true, 1234567890UL},
	{"RETR 12345678901", -1, POP3_CMD_RETR,
	 .error = "invalid message number"},
	{"RETR +1", -1, POP3_CMD_RETR, .error = "invalid message number"},
	{"RETR -1", -1, POP3_CMD_RETR, .error = "invalid message number"},
	{"RETR 1x", -1, POP3_CMD_RETR, .error = "invalid message number"},
	{"RETR 0x1", -1, POP3_CMD_RETR, .error = "invalid message number"},
	{"RETR 1.0", -1, POP3_CMD_RETR, .error = "invalid message number"},
	{"RETR \xd9\xa1", -1, POP3_CMD_RETR,
	 .error = "invalid message number"},
	{"RETR", -1, POP3_CMD_RETR, .error = "syntax: RETR msg"},
	{"RETR ", -1, POP3_CMD_RETR, .error = "syntax: RETR msg"},
	{"RETR 1 2", -1, POP3_CMD_RETR, .error = "syntax: RETR msg"},
	{"RETR  7", 0, POP3_CMD_RETR, true, 7},
	{"RETR 7 ", 0, POP3_CMD_RETR, true, 7},
	{"RETR    7    ", 0, POP3_CMD_RETR, true, 7},
	{"RETR 7\t", -1, POP3_CMD_RETR, .error = "control character in command"},
	{"RETR \t7", -1, POP3_CMD_RETR, .error = "control character in command"},
	{"RETR 7\x1b", -1, POP3_CMD_RETR,
	 .error = "control character in command"},
	{"DELE", -1, POP3_CMD_DELE, .error = "syntax: DELE msg"},
	{"DELE 0", -1, POP3_CMD_DELE, .error = "invalid message number"},
	{"DELE 1 1", -1, POP3_CMD_DELE, .error = "syntax: DELE msg"},
	{"LIST 0", -1, POP3_CMD_LIST, .error = "invalid message number"},
	{"LIST ", 0, POP3_CMD_LIST},
	{"LIST 1 2", -1, POP3_CMD_LIST, .error = "syntax: LIST [msg]"},
	{"LIST 4000000000", 0, POP3_CMD_LIST, true, 4000000000UL},
	{"LIST -0", -1, POP3_CMD_LIST, .error = "invalid message number"},
	{"UIDL 0", -1, POP3_CMD_UIDL, .error = "invalid message number"},
	{"UIDL a", -1, POP3_CMD_UIDL, .error = "invalid message number"},
	{"UIDL 1 2", -1, POP3_CMD_UIDL, .error = "syntax: UIDL [msg]"},

	/* TOP */
	{"TOP 1", -1, POP3_CMD_TOP, .error = "syntax: TOP msg n"},
	{"TOP", -1, POP3_CMD_TOP, .error = "syntax: TOP msg n"},
	{"TOP 1 2 3", -1, POP3_CMD_TOP, .error = "syntax: TOP msg n"},
	{"TOP 0 1", -1, POP3_CMD_TOP, .error = "invalid message number"},
	{"TOP 1 00", 0, POP3_CMD_TOP, true, 1, 0},
	{"TOP 1 4000000000", 0, POP3_CMD_TOP, true, 1, 4000000000UL},
	{"TOP 1 4000000001", -1, POP3_CMD_TOP, .error = "invalid line count"},
	{"TOP 1 00000000000", -1, POP3_CMD_TOP, .error = "invalid line count"},
	{"TOP 1 -1", -1, POP3_CMD_TOP, .error = "invalid line count"},
	{"TOP 1 +1", -1, POP3_CMD_TOP, .error = "invalid line count"},
	{"TOP x 1", -1, POP3_CMD_TOP, .error = "invalid message number"},
	{"TOP  2   5  ", 0, POP3_CMD_TOP, true, 2, 5},
	{"TOP 2 5\t", -1, POP3_CMD_TOP, .error = "control character in command"},

	/* USER */
	{"USER", -1, POP3_CMD_USER, .error = "syntax: USER name"},
	{"USER ", -1, POP3_CMD_USER, .error = "syntax: USER name"},
	{"USER bob smith", -1, POP3_CMD_USER, .error = "syntax: USER name"},
	{"USER  bob ", 0, POP3_CMD_USER, .arg = "bob"},
	{"USER b\xc3\xb6" "b", 0, POP3_CMD_USER, .arg = "b\xc3\xb6" "b"},
	{"USER b\tob", -1, POP3_CMD_USER, .error = "control character in command"},
	{"USER bob\x7f", -1, POP3_CMD_USER,
	 .error = "control character in command"},

	/* PASS: verbatim, spaces and all */
	{"PASS", -1, POP3_CMD_PASS, .error = "syntax: PASS password"},
	{"PASS ", -1, POP3_CMD_PASS, .error = "syntax: PASS password"},
	{"PASS  ", 0, POP3_CMD_PASS, .arg = " "},
	{"PASS my secret pw", 0, POP3_CMD_PASS, .arg = "my secret pw"},
	{"PASS  lead", 0, POP3_CMD_PASS, .arg = " lead"},
	{"PASS trail  ", 0, POP3_CMD_PASS, .arg = "trail  "},
	{"PASS 0", 0, POP3_CMD_PASS, .arg = "0"},
	{"PASS p\xc3\xa4ss", 0, POP3_CMD_PASS, .arg = "p\xc3\xa4ss"},
	{"PASS a\tb", -1, POP3_CMD_PASS, .error = "control character in command"},
	{"PASS ab\x7f", -1, POP3_CMD_PASS,
	 .error = "control character in command"},

	/* AUTH (RFC 5034) */
	{"AUTH ", 0, POP3_CMD_AUTH},
	{"AUTH PLAIN =", 0, POP3_CMD_AUTH, .arg = "PLAIN", .arg2 = "="},
	{"AUTH plain AGJvYgBwdw==", 0, POP3_CMD_AUTH, .arg = "plain",
	 .arg2 = "AGJvYgBwdw=="},
	{"AUTH SCRAM-SHA-256 biwsbj11c2VyLHI9eA", 0, POP3_CMD_AUTH,
	 .arg = "SCRAM-SHA-256", .arg2 = "biwsbj11c2VyLHI9eA"},
	{"AUTH X_Y-1", 0, POP3_CMD_AUTH, .arg = "X_Y-1"},
	{"AUTH  LOGIN  ", 0, POP3_CMD_AUTH, .arg = "LOGIN"},
	{"AUTH ABCDEFGHIJKLMNOPQRST", 0, POP3_CMD_AUTH,
	 .arg = "ABCDEFGHIJKLMNOPQRST"},
	{"AUTH ABCDEFGHIJKLMNOPQRSTU", -1, POP3_CMD_AUTH,
	 .error = "invalid mechanism name"},
	{"AUTH CRAM.MD5", -1, POP3_CMD_AUTH, .error = "invalid mechanism name"},
	{"AUTH PL*IN", -1, POP3_CMD_AUTH, .error = "invalid mechanism name"},
	{"AUTH PL\xc3\x84IN", -1, POP3_CMD_AUTH,
	 .error = "invalid mechanism name"},
	{"AUTH PLAIN a b", -1, POP3_CMD_AUTH,
	 .error = "syntax: AUTH [mechanism [initial-response]]"},
	{"AUTH PLAIN ==", -1, POP3_CMD_AUTH,
	 .error = "invalid initial response"},
	{"AUTH PLAIN a===", -1, POP3_CMD_AUTH,
	 .error = "invalid initial response"},
	{"AUTH PLAIN a=b", -1, POP3_CMD_AUTH,
	 .error = "invalid initial response"},
	{"AUTH PLAIN *", -1, POP3_CMD_AUTH, .error = "invalid initial response"},
	{"AUTH PLAIN a\x7f", -1, POP3_CMD_AUTH,
	 .error = "control character in command"},
	{"AUTH PLAIN\tx", -1, POP3_CMD_AUTH,
	 .error = "control character in command"},
};

/* An error is a short static string fit for "-ERR <error>". */
static void
check_error(const char *error)
{
	const char *p;

	assert_non_null(error);
	assert_true(error[0] != '\0');
	assert_true(strlen(error) < 64);
	for (p = error; *p != '\0'; p++)
		assert_true((unsigned char)*p >= 0x20 && *p != 0x7f);
}

/* Each argument must point into the line it came from. */
static void
check_arg(const char *got, const char *want, const char *line, size_t len)
{
	if (want == NULL) {
		assert_null(got);
		return;
	}
	assert_non_null(got);
	assert_true(got >= line && got <= line + len);
	assert_string_equal(got, want);
}

static void
run_case(const struct parse_case *t)
{
	struct pop3_command c;
	const char *error = NULL;
	size_t len = strlen(t->line);
	char *line = malloc(len + 1);	/* exact size: ASan sees overreads */
	int ret;

	assert_non_null(line);
	memcpy(line, t->line, len + 1);
	ret = pop3_parse(line, len, &c, &error);
	if (ret != t->ret || c.cmd != t->cmd)
		fail_msg("\"%s\": ret %d cmd %s (%s), want %d %s", t->line, ret,
			 pop3_cmd_name(c.cmd), ret < 0 ? error : "",
			 t->ret, pop3_cmd_name(t->cmd));
	if (ret < 0) {
		check_error(error);
		assert_string_equal(error, t->error);
	} else {
		assert_int_equal(c.has_msg, t->has_msg);
		if (c.has_msg)
			assert_int_equal(c.msg, t->msg);
		assert_int_equal(c.lines, t->lines);
		check_arg(c.arg, t->arg, line, len);
		check_arg(c.arg2, t->arg2, line, len);
	}
	free(line);
}

static void
test_table(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		run_case(&cases[i]);
}

/* A line of n octets: prefix, then fill up to n. */
static char *
long_line(const char *prefix, char fill, size_t n)
{
	size_t plen = strlen(prefix);
	char *s = malloc(n + 1);

	assert_non_null(s);
	assert_true(plen <= n);
	memcpy(s, prefix, plen);
	memset(s + plen, fill, n - plen);
	s[n] = '\0';
	return s;
}

static void
parse_long(const char *prefix, char fill, size_t n, int want_ret,
	   enum pop3_cmd want_cmd, size_t want_arglen)
{
	struct pop3_command c;
	const char *error = NULL;
	char *s = long_line(prefix, fill, n);
	int ret = pop3_parse(s, n, &c, &error);

	assert_int_equal(ret, want_ret);
	assert_int_equal(c.cmd, want_cmd);
	if (ret < 0)
		check_error(error);
	else if (want_arglen == 0)
		assert_null(c.arg);
	else
		assert_int_equal(strlen(c.arg), want_arglen);
	free(s);
}

/*
 * The session caps lines at POP3_LINE_MAX, which also bounds USER and
 * PASS; a longer line that gets here anyway is refused, command known.
 */
static void
test_lengths(void **state)
{
	(void)state;
	parse_long("USER ", 'u', POP3_LINE_MAX, 0, POP3_CMD_USER,
		   POP3_LINE_MAX - 5);
	parse_long("USER ", 'u', POP3_LINE_MAX + 1, -1, POP3_CMD_USER, 0);
	parse_long("USER ", 'u', 1000, -1, POP3_CMD_USER, 0);
	parse_long("PASS ", 'p', POP3_LINE_MAX, 0, POP3_CMD_PASS,
		   POP3_PASS_MAX);
	parse_long("PASS ", ' ', POP3_LINE_MAX, 0, POP3_CMD_PASS,
		   POP3_PASS_MAX);
	parse_long("PASS ", 'p', POP3_LINE_MAX + 1, -1, POP3_CMD_PASS, 0);
	parse_long("AUTH PLAIN ", 'A', POP3_LINE_MAX, 0, POP3_CMD_AUTH, 5);
	parse_long("AUTH PLAIN ", 'A', POP3_LINE_MAX + 1, -1, POP3_CMD_AUTH,
		   0);
	parse_long("STAT", ' ', POP3_LINE_MAX, 0, POP3_CMD_STAT, 0);
	parse_long("STAT", ' ', POP3_LINE_MAX + 1, -1, POP3_CMD_STAT, 0);
	parse_long("XXXX", 'x', POP3_LINE_MAX + 1, -1, POP3_CMD_UNKNOWN, 0);
}

/* Every control character, anywhere in an argument, is refused. */
static void
test_control_chars(void **state)
{
	static const char *const prefixes[] = {"USER a", "PASS a", "RETR 1",
					       "AUTH PLAIN", "QUIT "};
	struct pop3_command c;
	const char *error;
	char line[32];
	size_t p, n;
	int ch;

	(void)state;
	for (p = 0; p < sizeof(prefixes) / sizeof(prefixes[0]); p++) {
		for (ch = 0; ch <= 0x7f; ch = ch == 0x1f ? 0x7f : ch + 1) {
			n = strlen(prefixes[p]);
			memcpy(line, prefixes[p], n);
			line[n++] = (char)ch;
			line[n] = '\0';
			error = NULL;
			assert_int_equal(pop3_parse(line, n, &c, &error), -1);
			assert_int_not_equal(c.cmd, POP3_CMD_UNKNOWN);
			assert_string_equal(error,
					    "control character in command");
		}
	}
}

/* The parse writes NULs only where it ends arguments, and stays inside. */
static void
test_arg_in_place(void **state)
{
	struct pop3_command c;
	const char *error;
	char line[] = "TOP 3 4 \0guard";
	char auth[] = "AUTH PLAIN AGJvYgBwdw==";

	(void)state;
	assert_int_equal(pop3_parse(line, 8, &c, &error), 0);
	assert_string_equal(line + 9, "guard");
	assert_int_equal(c.msg, 3);
	assert_int_equal(c.lines, 4);
	assert_null(c.arg);
	assert_int_equal(pop3_parse(auth, strlen(auth), &c, &error), 0);
	assert_ptr_equal(c.arg, auth + 5);
	assert_ptr_equal(c.arg2, auth + 11);
	assert_int_equal(auth[10], '\0');
}

static void
test_names(void **state)
{
	(void)state;
	assert_string_equal(pop3_cmd_name(POP3_CMD_UNKNOWN), "UNKNOWN");
	assert_string_equal(pop3_cmd_name(POP3_CMD_USER), "USER");
	assert_string_equal(pop3_cmd_name(POP3_CMD_TOP), "TOP");
	assert_string_equal(pop3_cmd_name(POP3_CMD_AUTH), "AUTH");
	assert_string_equal(pop3_cmd_name((enum pop3_cmd)99), "UNKNOWN");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_lengths),
		cmocka_unit_test(test_control_chars),
		cmocka_unit_test(test_arg_in_place),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
