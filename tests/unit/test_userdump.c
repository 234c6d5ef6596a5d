/*
 * Unit tests for mail/userdump.c, the JSON-lines dump of `godwit db
 * export|import`: a row per line with what it parses to (or a word of
 * the error), and the writer's lines read back to what was written.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "lib/strbuf.h"
#include "mail/userdump.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct row {
	const char *in;
	int kind;		/* -1: an error */
	const char *a, *b, *c, *d; /* the record's strings, in order */
	unsigned long n1, n2, n3;
	const char *why;	/* error: a word of the reason */
} rows[] = {
	{"{\"format\":\"godwit-userdb\",\"version\":1}", USERDUMP_HEADER,
	 NULL, NULL, NULL, NULL, 1, 0, 0, NULL},
	{" { \"version\" : 7 , \"format\" : \"godwit-userdb\" } ",
	 USERDUMP_HEADER, NULL, NULL, NULL, NULL, 7, 0, 0, NULL},
	{"{\"type\":\"domain\",\"name\":\"example.test\"}", USERDUMP_DOMAIN,
	 "example.test", NULL, NULL, NULL, 0, 0, 0, NULL},
	{"{\"type\":\"user\",\"address\":\"a@b.test\",\"hash\":\"$6$x$y\"}",
	 USERDUMP_USER, "a@b.test", "$6$x$y", NULL, NULL, 0, 0, 0, NULL},
	{"{\"type\":\"user\",\"address\":\"a@b.test\",\"hash\":\"h\","
	 "\"scram\":\"S\",\"cram\":null}",
	 USERDUMP_USER, "a@b.test", "h", "S", NULL, 0, 0, 0, NULL},
	{"{\"hash\":\"h\",\"cram\":\"C\",\"type\":\"user\",\"address\":"
	 "\"\\u00e9l\\u00e8ve@b.test\"}",
	 USERDUMP_USER, "\xc3\xa9l\xc3\xa8ve@b.test", "h", NULL, "C", 0, 0, 0,
	 NULL},
	{"{\"type\":\"alias\",\"source\":\"@b.test\",\"target\":"
	 "\"x\\\"y\\\\z\\/@c.test\"}",
	 USERDUMP_ALIAS, "@b.test", "x\"y\\z/@c.test", NULL, NULL, 0, 0, 0,
	 NULL},
	{"{\"type\":\"alias\",\"source\":\"s@b.test\",\"target\":"
	 "\"\\ud83d\\ude00@c.test\"}",
	 USERDUMP_ALIAS, "s@b.test", "\xf0\x9f\x98\x80@c.test", NULL, NULL, 0,
	 0, 0, NULL},
	{"{\"type\":\"end\",\"domains\":1,\"users\":20,\"aliases\":0}",
	 USERDUMP_END, NULL, NULL, NULL, NULL, 1, 20, 0, NULL},
	/* errors */
	{"", -1, 0, 0, 0, 0, 0, 0, 0, "object"},
	{"[]", -1, 0, 0, 0, 0, 0, 0, 0, "object"},
	{"{}", -1, 0, 0, 0, 0, 0, 0, 0, "empty"},
	{"{\"type\":\"domain\"}", -1, 0, 0, 0, 0, 0, 0, 0, "missing"},
	{"{\"type\":\"domain\",\"name\":\"\"}", -1, 0, 0, 0, 0, 0, 0, 0,
	 "empty"},
	{"{\"type\":\"domain\",\"name\":\"a\",\"name\":\"b\"}", -1, 0, 0, 0, 0,
	 0, 0, 0, "repeated"},
	{"{\"type\":\"domain\",\"name\":\"a\",\"x\":\"b\"}", -1, 0, 0, 0, 0, 0,
	 0, 0, "unknown"},
	{"{\"type\":\"group\",\"name\":\"a\"}", -1, 0, 0, 0, 0, 0, 0, 0,
	 "unknown"},
	{"{\"name\":\"a\"}", -1, 0, 0, 0, 0, 0, 0, 0, "no type"},
	{"{\"type\":\"domain\",\"name\":1}", -1, 0, 0, 0, 0, 0, 0, 0,
	 "string"},
	{"{\"type\":\"domain\",\"name\":null}", -1, 0, 0, 0, 0, 0, 0, 0,
	 "string"},
	{"{\"type\":\"domain\",\"name\":\"a\nb\"}", -1, 0, 0, 0, 0, 0, 0, 0,
	 "control"},
	{"{\"type\":\"domain\",\"name\":\"a\\nb\"}", -1, 0, 0, 0, 0, 0, 0, 0,
	 "control"},
	{"{\"type\":\"domain\",\"name\":\"a\\u0000b\"}", -1, 0, 0, 0, 0, 0, 0,
	 0, "control"},
	{"{\"type\":\"domain\",\"name\":\"\\ud800\"}", -1, 0, 0, 0, 0, 0, 0, 0,
	 "surrogate"},
	{"{\"type\":\"domain\",\"name\":\"\\q\"}", -1, 0, 0, 0, 0, 0, 0, 0,
	 "escape"},
	{"{\"type\":\"domain\",\"name\":\"a\"", -1, 0, 0, 0, 0, 0, 0, 0,
	 "expected"},
	{"{\"type\":\"domain\",\"name\":\"a", -1, 0, 0, 0, 0, 0, 0, 0,
	 "unterminated"},
	{"{\"type\":\"domain\",\"name\":\"a\"} x", -1, 0, 0, 0, 0, 0, 0, 0,
	 "after"},
	{"{\"format\":\"other\",\"version\":1}", -1, 0, 0, 0, 0, 0, 0, 0,
	 "not a"},
	{"{\"format\":\"godwit-userdb\",\"version\":\"1\"}", -1, 0, 0, 0, 0, 0,
	 0, 0, "number"},
	{"{\"format\":\"godwit-userdb\",\"type\":\"end\",\"version\":1}", -1,
	 0, 0, 0, 0, 0, 0, 0, "both"},
	{"{\"type\":\"end\",\"domains\":01,\"users\":0,\"aliases\":0}", -1, 0,
	 0, 0, 0, 0, 0, 0, "zero"},
	{"{\"type\":\"end\",\"domains\":-1,\"users\":0,\"aliases\":0}", -1, 0,
	 0, 0, 0, 0, 0, 0, "expected"},
	{"{\"type\":\"end\",\"domains\":99999999999999999,\"users\":0,"
	 "\"aliases\":0}",
	 -1, 0, 0, 0, 0, 0, 0, 0, "large"},
};

static void
check_str(const char *got, const char *want, const char *line)
{
	if (want == NULL && got == NULL)
		return;
	if (want == NULL || got == NULL || strcmp(got, want) != 0)
		fail_msg("'%s': got '%s', want '%s'", line,
			 got != NULL ? got : "(null)",
			 want != NULL ? want : "(null)");
}

static void
test_rows(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(rows); i++) {
		const struct row *w = &rows[i];
		struct userdump_rec r;
		const char *err = NULL;
		int rc = userdump_parse_line(w->in, strlen(w->in), &r, &err);

		if (w->kind < 0) {
			if (rc == 0)
				fail_msg("'%s': parsed", w->in);
			if (strstr(err, w->why) == NULL)
				fail_msg("'%s': '%s' lacks '%s'", w->in, err,
					 w->why);
			continue;
		}
		if (rc != 0)
			fail_msg("'%s': %s", w->in, err);
		assert_int_equal(r.kind, w->kind);
		switch (r.kind) {
		case USERDUMP_HEADER:
			assert_int_equal(r.version, w->n1);
			break;
		case USERDUMP_DOMAIN:
			check_str(r.name, w->a, w->in);
			break;
		case USERDUMP_USER:
			check_str(r.address, w->a, w->in);
			check_str(r.hash, w->b, w->in);
			check_str(r.scram, w->c, w->in);
			check_str(r.cram, w->d, w->in);
			break;
		case USERDUMP_ALIAS:
			check_str(r.source, w->a, w->in);
			check_str(r.target, w->b, w->in);
			break;
		case USERDUMP_END:
			assert_int_equal(r.domains, w->n1);
			assert_int_equal(r.users, w->n2);
			assert_int_equal(r.aliases, w->n3);
			break;
		}
		userdump_rec_clear(&r);
	}
}

static void
test_nul_and_length(void **state)
{
	static const char nul[] = "{\"type\":\"domain\",\"name\":\"a\0b\"}";
	struct userdump_rec r;
	const char *err;
	char *big;

	(void)state;
	assert_int_equal(userdump_parse_line(nul, sizeof(nul) - 1, &r, &err),
			 -1);
	big = malloc(USERDUMP_MAX_LINE + 2);
	memset(big, ' ', USERDUMP_MAX_LINE + 1);
	assert_int_equal(
		userdump_parse_line(big, USERDUMP_MAX_LINE + 1, &r, &err), -1);
	assert_non_null(strstr(err, "too long"));
	free(big);
}

/* What the writer writes, the reader reads back the same. */
static void
test_round_trip(void **state)
{
	/* control characters are refused both ways: none here */
	static const char odd[] = "q\"u\\o/t e\xc3\xa9@x.test";
	struct strbuf b = {0};
	char *buf, *line, *save = NULL;
	struct userdump_rec r;
	const char *err;
	int n = 0;

	(void)state;
	userdump_write_header(&b);
	userdump_write_domain(&b, "x.test");
	userdump_write_user(&b, odd, "$y$h", "SCRAM-SHA-256$4096:a$b:c", NULL);
	userdump_write_user(&b, "b@x.test", "h", NULL, "cram");
	userdump_write_alias(&b, "@x.test", odd);
	userdump_write_end(&b, 1, 2, 1);
	buf = strbuf_steal(&b);
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save), n++) {
		if (userdump_parse_line(line, strlen(line), &r, &err) != 0)
			fail_msg("'%s': %s", line, err);
		switch (n) {
		case 0:
			assert_int_equal(r.kind, USERDUMP_HEADER);
			assert_int_equal(r.version, USERDUMP_VERSION);
			break;
		case 2:
			assert_string_equal(r.address, odd);
			assert_string_equal(r.scram, "SCRAM-SHA-256$4096:a$b:c");
			assert_null(r.cram);
			break;
		case 3:
			assert_null(r.scram);
			assert_string_equal(r.cram, "cram");
			break;
		case 4:
			assert_string_equal(r.target, odd);
			break;
		case 5:
			assert_int_equal(r.kind, USERDUMP_END);
			assert_int_equal(r.users, 2);
			break;
		}
		userdump_rec_clear(&r);
	}
	assert_int_equal(n, 6);
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rows),
		cmocka_unit_test(test_nul_and_length),
		cmocka_unit_test(test_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
