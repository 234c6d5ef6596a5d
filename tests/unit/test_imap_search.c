/* Tests for the IMAP search-key parser and evaluator (mail/imap_search.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "mail/imap_mime.h"
#include "mail/imap_parse.h"
#include "mail/imap_search.h"

/* Search keys written as one string, split into args: words become
 * atoms, "..." strings, (...) lists. */
struct args {
	struct imap_arg v[256];
	size_t n;
	char text[2048];
};

static size_t
split(const char **p, struct imap_arg *v, size_t max, char **out)
{
	size_t n = 0;

	while (**p != '\0' && **p != ')' && n < max) {
		struct imap_arg *a = &v[n];

		if (**p == ' ') {
			(*p)++;
			continue;
		}
		memset(a, 0, sizeof(*a));
		if (**p == '(') {
			(*p)++;
			a->type = IMAP_ARG_LIST;
			a->list = calloc(16, sizeof(*a->list));
			a->nlist = split(p, a->list, 16, out);
			(*p)++;
		} else if (**p == '"') {
			(*p)++;
			a->type = IMAP_ARG_STRING;
			a->str = *out;
			while (**p != '"')
				*(*out)++ = *(*p)++;
			(*p)++;
			a->len = (size_t)(*out - a->str);
			*(*out)++ = '\0';
		} else {
			a->type = IMAP_ARG_ATOM;
			a->str = *out;
			while (**p != '\0' && **p != ' ' && **p != ')' &&
			       **p != '(')
				*(*out)++ = *(*p)++;
			a->len = (size_t)(*out - a->str);
			*(*out)++ = '\0';
		}
		n++;
	}
	return n;
}

static void
free_args(struct imap_arg *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].type == IMAP_ARG_LIST) {
			free_args(v[i].list, v[i].nlist);
			free(v[i].list);
		}
}

static int
parse(const char *s, struct imap_search_node **t)
{
	struct args a;
	char *out = a.text;
	const char *error;
	int r;

	a.n = split(&s, a.v, 256, &out);
	r = imap_search_parse(a.v, a.n, t, &error);
	free_args(a.v, a.n);
	return r;
}

struct mem {
	const char *p;
	size_t len;
};

static ssize_t
mem_read(void *arg, uint64_t off, void *buf, size_t n)
{
	struct mem *m = arg;

	if (off >= m->len)
		return 0;
	if (n > m->len - off)
		n = m->len - (size_t)off;
	memcpy(buf, m->p + off, n);
	return (ssize_t)n;
}

static const char message[] =
    "From: \"Alice\" <alice@example.test>\n"
    "To: bob@example.test\n"
    "Cc: carol@example.test\n"
    "Subject: =?iso-8859-1?q?Caf=E9?= meeting\n"
    "Date: Tue, 1 Jul 2003 23:52:37 -0700\n"
    "X-Tag: blue\n"
    "Content-Type: multipart/mixed; boundary=b\n"
    "\n"
    "--b\n"
    "Content-Type: text/plain; charset=iso-8859-1\n"
    "Content-Transfer-Encoding: quoted-printable\n"
    "\n"
    "Na=EFve text about =\n"
    "godwits\n"
    "--b\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    "aGlkZGVuIHdvcmQgaW4gYmFzZTY0\n"
    "--b\n"
    "Content-Type: application/octet-stream\n"
    "\n"
    "binaryneedle\n"
    "--b--\n";

static int
lookup(void *arg, const char *name)
{
	(void)arg;
	return strcmp(name, "work") == 0 ? 1 : -1;
}

static int
eval(const char *keys)
{
	static struct mem mem;
	static struct imap_mime_src src;
	static const uint32_t saved[] = {3, 7};
	struct imap_search_ctx ctx = {10, 20, saved, 2};
	struct imap_search_msg msg = {0};
	struct imap_search_node *t;
	int r;

	mem.p = message;
	mem.len = strlen(message);
	src.read = mem_read;
	src.arg = &mem;
	src.size = mem.len;
	msg.seq = 4;
	msg.uid = 7;
	msg.flags = IMAP_SEARCH_F_SEEN | IMAP_SEARCH_F_FLAGGED;
	msg.keywords = 0x2;
	msg.recent = true;
	msg.size = 1000;
	msg.internaldate = 1057128757;	/* 2003-07-02 06:52:37 UTC */
	msg.src = &src;
	assert_int_equal(parse(keys, &t), IMAP_SEARCH_OK);
	imap_search_keywords(t, lookup, NULL);
	r = imap_search_eval(t, &ctx, &msg);
	imap_search_free(&t);
	return r;
}

static void
test_keys(void **state)
{
	static const struct {
		const char *keys;
		int match;
	} cases[] = {
		{"ALL", 1}, {"SEEN", 1}, {"UNSEEN", 0}, {"FLAGGED", 1},
		{"UNFLAGGED", 0}, {"ANSWERED", 0}, {"UNANSWERED", 1},
		{"DELETED", 0}, {"UNDELETED", 1}, {"DRAFT", 0}, {"UNDRAFT", 1},
		{"RECENT", 1}, {"OLD", 0}, {"NEW", 0}, {"KEYWORD work", 1},
		{"KEYWORD other", 0}, {"UNKEYWORD work", 0},
		{"UNKEYWORD other", 1}, {"KEYWORD $Forwarded", 0},
		{"LARGER 999", 1}, {"LARGER 1000", 0}, {"SMALLER 1001", 1},
		{"SMALLER 1000", 0}, {"4", 1}, {"1:3", 0}, {"2:*", 1},
		{"*", 0}, {"UID 7", 1}, {"UID 1:6,8:*", 0}, {"$", 1},
		{"UID $", 1}, {"ON 2-Jul-2003", 1}, {"ON 1-Jul-2003", 0},
		{"BEFORE 2-Jul-2003", 0}, {"BEFORE 3-Jul-2003", 1},
		{"SINCE 2-Jul-2003", 1}, {"SINCE 3-Jul-2003", 0},
		{"SENTON 1-Jul-2003", 1}, {"SENTBEFORE 1-Jul-2003", 0},
		{"SENTBEFORE 2-Jul-2003", 1}, {"SENTSINCE 1-Jul-2003", 1},
		{"SENTSINCE \"2-Jul-2003\"", 0},
		{"FROM alice", 1}, {"FROM ALICE@EXAMPLE", 1}, {"FROM bob", 0},
		{"TO bob", 1}, {"CC carol", 1}, {"BCC carol", 0},
		{"SUBJECT \"caf\xc3\xa9 MEET\"", 1}, {"SUBJECT =?iso", 0},
		{"SUBJECT \"CAF\xc3\x89\"", 1}, {"BODY \"NA\xc3\x8fVE\"", 1},
		{"SUBJECT \"caf\xc3\xa8\"", 0},
		{"HEADER X-Tag blue", 1}, {"HEADER X-Tag \"\"", 1},
		{"HEADER X-Other \"\"", 0}, {"HEADER x-tag red", 0},
		{"BODY \"na\xc3\xafve\"", 1}, {"BODY \"about godwits\"", 1},
		{"BODY \"hidden WORD\"", 1}, {"BODY binaryneedle", 0},
		{"BODY alice", 0}, {"TEXT alice", 1}, {"TEXT godwits", 1},
		{"TEXT nothing", 0}, {"NOT SEEN", 0}, {"NOT NOT SEEN", 1},
		{"OR SEEN DELETED", 1}, {"OR DELETED DRAFT", 0},
		{"(SEEN FLAGGED)", 1}, {"(SEEN DELETED)", 0},
		{"OR (DELETED) (NOT DRAFT FROM alice)", 1},
		{"SEEN FLAGGED UID 7 FROM alice", 1},
		{"CHARSET UTF-8 BODY godwits", 1},
		{"charset us-ascii SEEN", 1},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = eval(cases[i].keys);

		if (r != cases[i].match)
			fail_msg("%s: %d", cases[i].keys, r);
	}
}

static void
test_bad(void **state)
{
	static const char *const bad[] = {
		"", "FOO", "LARGER", "LARGER x", "ON 32-Jan-2003",
		"ON 1-Foo-2003", "BEFORE 1-Jan-03", "UID", "UID x", "OR SEEN",
		"NOT", "HEADER X", "()", "1:x", "0", "KEYWORD",
	};
	struct imap_search_node *t;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse(bad[i], &t) != IMAP_SEARCH_BAD)
			fail_msg("accepted: %s", bad[i]);
	assert_int_equal(parse("CHARSET ISO-8859-1 ALL", &t),
			 IMAP_SEARCH_BADCHARSET);
	assert_null(t);
}

static void
test_deep(void **state)
{
	char keys[4096];
	size_t n = 0;
	struct imap_search_node *t;

	(void)state;
	for (int i = 0; i < 200; i++)
		n += (size_t)snprintf(keys + n, sizeof(keys) - n, "NOT ");
	snprintf(keys + n, sizeof(keys) - n, "ALL");
	assert_int_equal(parse(keys, &t), IMAP_SEARCH_BAD);
	assert_true(imap_search_date("1-Feb-1994", 10) == 19940201);
	assert_true(imap_search_date("01-feb-1994", 11) == 19940201);
	assert_true(imap_search_date("1-Feb-1994x", 11) == -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_deep),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
