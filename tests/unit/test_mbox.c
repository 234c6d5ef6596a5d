/* mboxrd (mail/mbox.c): what the reader gives for known inputs, what the
 * writer quotes, and the From_ line's two directions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "mail/mbox.h"

struct got {
	char out[4096];
	size_t len;
	size_t begins, ends;
	char sender[MBOX_SENDER_MAX + 1];
	int64_t t;
};

static int
g_begin(void *arg, const char *sender, int64_t t)
{
	struct got *g = arg;

	g->begins++;
	if (g->begins == 1) {
		strcpy(g->sender, sender);
		g->t = t;
	}
	g->len += (size_t)snprintf(g->out + g->len, sizeof(g->out) - g->len,
				   "<%zu>", g->begins);
	return 0;
}

static int
g_data(void *arg, const void *p, size_t n)
{
	struct got *g = arg;

	assert_true(g->len + n < sizeof(g->out));
	memcpy(g->out + g->len, p, n);
	g->len += n;
	g->out[g->len] = '\0';
	return 0;
}

static int
g_end(void *arg)
{
	struct got *g = arg;

	g->ends++;
	return 0;
}

static const struct mbox_sink sink = {g_begin, g_data, g_end};

/* Reads in, one octet at a time when bytewise; the messages marked
 * "<1>", "<2>"... in g->out. */
static int
read_str(const char *in, bool bytewise, struct got *g)
{
	struct mbox_reader r;
	size_t n = strlen(in);

	memset(g, 0, sizeof(*g));
	mbox_reader_init(&r, &sink, g);
	for (size_t i = 0; i < n; i += bytewise ? 1 : n)
		if (mbox_read(&r, in + i, bytewise ? 1 : n) < 0)
			return -1;
	return mbox_finish(&r);
}

static const struct {
	const char *in;
	const char *out;	/* NULL: refused */
} reads[] = {
	{"", ""},
	{"From a Sat Dec  5 10:00:00 2026\nx\n\n", "<1>x\n"},
	{"From a\nx\n\nFrom b\ny\n\n", "<1>x\n<2>y\n"},
	{"From a\n>From x\n>>From y\n>Fro\n>\n\n", "<1>From x\n>From y\n>Fro\n>\n"},
	{"From a\n\n\n\nFrom b\n", "<1>\n\n<2>"},
	{"From a\nno end", "<1>no end"},
	{"From a\n>>", "<1>>>"},
	{"From a\nFrom b\n", "<1><2>"},
	{"x\nFrom a\n", NULL},
	{"\nFrom a\n", NULL},
};

static void
test_read(void **state)
{
	struct got g;

	(void)state;
	for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++)
		for (int bytewise = 0; bytewise < 2; bytewise++) {
			int r = read_str(reads[i].in, bytewise, &g);
			if (reads[i].out == NULL) {
				assert_int_equal(r, -1);
				continue;
			}
			assert_int_equal(r, 0);
			if (strcmp(g.out, reads[i].out) != 0)
				fail_msg("case %zu: got \"%s\"", i, g.out);
			assert_int_equal(g.begins, g.ends);
		}
}

static void
test_from_line(void **state)
{
	struct got g;
	char line[MBOX_SENDER_MAX + 64];

	(void)state;
	assert_int_equal(read_str("From a@b.test Sat Dec  5 10:00:00 2026\n",
				  false, &g), 0);
	assert_string_equal(g.sender, "a@b.test");
	assert_int_equal(g.t, 1796464800);
	mbox_from_format(line, sizeof(line), "a@b.test", 1796464800);
	assert_string_equal(line, "From a@b.test Sat Dec  5 10:00:00 2026\n");
	mbox_from_format(line, sizeof(line), "", 0);
	assert_string_equal(line, "From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n");
	mbox_from_format(line, sizeof(line), "a b\n@c", 0);
	assert_true(strncmp(line, "From ab@c Thu", 13) == 0);
	assert_int_equal(read_str("From x not a date\n", false, &g), 0);
	assert_int_equal(g.t, 0);
}

static int
b_out(void *arg, const void *p, size_t n)
{
	struct got *g = arg;

	return g_data(g, p, n);
}

static void
test_write(void **state)
{
	static const struct {
		const char *in, *out;
	} w[] = {
		{"From x\n>From y\nFrom", ">From x\n>>From y\nFrom\n\n"},
		{"a\nFro\n>\n", "a\nFro\n>\n\n"},
		{"", "\n"},
	};
	struct mbox_writer wr;
	struct got g;

	(void)state;
	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
		memset(&g, 0, sizeof(g));
		mbox_writer_init(&wr, b_out, &g);
		for (const char *p = w[i].in; *p; p++)
			assert_int_equal(mbox_write(&wr, p, 1), 0);
		assert_int_equal(mbox_write_end(&wr), 0);
		if (strcmp(g.out, w[i].out) != 0)
			fail_msg("case %zu: got \"%s\"", i, g.out);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read),
		cmocka_unit_test(test_from_line),
		cmocka_unit_test(test_write),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
