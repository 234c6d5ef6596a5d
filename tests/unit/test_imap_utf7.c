/*
 * Modified UTF-7 (RFC 3501 section 5.1.3: its examples, round trips,
 * what must be refused) and the pure parsers of Dovecot's files
 * (dovecot-uidlist versions 1 and 3, dovecot-keywords, subscriptions in
 * both forms).
 */
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "lib/strbuf.h"
#include "mail/dovecot_files.h"
#include "mail/imap_utf7.h"

static void
to7(const char *in, const char *want)
{
	struct strbuf b = {0};

	assert_int_equal(imap_utf8_to_utf7(in, strlen(in), &b), 0);
	assert_string_equal(b.s, want);
	strbuf_reset(&b);
	assert_int_equal(imap_utf7_to_utf8(want, strlen(want), &b), 0);
	assert_string_equal(b.s, in);
	strbuf_free(&b);
}

static void
bad7(const char *in)
{
	struct strbuf b = {0};

	strbuf_addstr(&b, "keep");
	assert_int_equal(imap_utf7_to_utf8(in, strlen(in), &b), -1);
	assert_string_equal(b.s, "keep");	/* nothing appended */
	strbuf_free(&b);
}

static void
test_utf7_rfc3501(void **state)
{
	(void)state;
	/* RFC 3501 section 5.1.3's examples */
	to7("~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac"
	    "\xe8\xaa\x9e",
	    "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
	to7("\xe2\x98\xba!", "&Jjo-!");
	to7("Hi Mom -\xe2\x98\xba-!", "Hi Mom -&Jjo--!");
	to7("&", "&-");
	to7("A&B", "A&-B");
	to7("", "");
	to7("Entw\xc3\xbcrfe", "Entw&APw-rfe");
	to7("\xf0\x9f\x98\x80", "&2D3eAA-");		/* a surrogate pair */
	to7("INBOX", "INBOX");
}

static void
test_utf7_refused(void **state)
{
	struct strbuf b = {0};

	(void)state;
	bad7("&Jjo");		/* no '-' */
	bad7("&");
	bad7("&AGE-");		/* 'a' must be written directly */
	bad7("&ACY-");		/* '&' must be "&-" */
	bad7("&U,BTFw-&ZeVnLIqe-");	/* two runs where one will do */
	bad7("&2D0-");		/* a lone high surrogate */
	bad7("&3gA-");		/* a lone low surrogate */
	bad7("&Jj-");		/* bits left over */
	bad7("&Jjp-");		/* non-zero padding bits */
	bad7("a\x80");		/* 8-bit */
	bad7("a\tb");
	bad7("&U/BTFw-");	/* '/' is not modified base64 */
	/* invalid UTF-8 */
	assert_int_equal(imap_utf8_to_utf7("\xc0\x80", 2, &b), -1);
	assert_int_equal(imap_utf8_to_utf7("\xed\xa0\x80", 3, &b), -1);
	assert_int_equal(imap_utf8_to_utf7("\xe2\x98", 2, &b), -1);
	assert_int_equal(imap_utf8_to_utf7("\xf4\x90\x80\x80", 4, &b), -1);
	assert_int_equal(b.len, 0);
	strbuf_free(&b);
}

static void
test_utf7_round_trips(void **state)
{
	struct strbuf a = {0}, b = {0};
	char in[64];

	(void)state;
	/* every BMP code point in steps, and runs of mixed text */
	for (unsigned c = 0x20; c < 0x10000; c += 97) {
		if (c >= 0xd800 && c <= 0xdfff)
			continue;
		size_t n = 0;
		in[n++] = 'x';
		if (c < 0x80)
			in[n++] = (char)c;
		else if (c < 0x800) {
			in[n++] = (char)(0xc0 | c >> 6);
			in[n++] = (char)(0x80 | (c & 0x3f));
		} else {
			in[n++] = (char)(0xe0 | c >> 12);
			in[n++] = (char)(0x80 | ((c >> 6) & 0x3f));
			in[n++] = (char)(0x80 | (c & 0x3f));
		}
		in[n++] = 'y';
		strbuf_reset(&a);
		strbuf_reset(&b);
		assert_int_equal(imap_utf8_to_utf7(in, n, &a), 0);
		assert_int_equal(imap_utf7_to_utf8(a.s, a.len, &b), 0);
		assert_int_equal(b.len, n);
		assert_memory_equal(b.s, in, n);
	}
	strbuf_free(&a);
	strbuf_free(&b);
}

/* ---- dovecot files ------------------------------------------------ */

static void
test_uidlist_v3(void **state)
{
	static const char f[] =
	    "3 V1733500000 N7 G0123456789abcdef0123456789abcdef X1\n"
	    "1 :1733500001.M1P2.host,S=100,W=104\n"
	    "3 W2100 S2000 :1733500003.M1P2.host\n"
	    "2 :out.of.order\n"		/* not ascending: left out */
	    "4 W99\n"			/* no name: left out */
	    "5 :a/b\n"			/* a '/': left out */
	    "6 :1733500006.M1P2.host:2,S\n"	/* flags cut off */
	    "\n";
	struct dovecot_uidlist ul;
	struct strbuf out = {0};
	const char *err = NULL;

	(void)state;
	assert_int_equal(dovecot_uidlist_parse(f, sizeof(f) - 1, &ul, &err), 0);
	assert_int_equal(ul.version, 3);
	assert_int_equal(ul.uidvalidity, 1733500000u);
	assert_int_equal(ul.uidnext, 7);
	assert_string_equal(ul.guid, "0123456789abcdef0123456789abcdef");
	assert_string_equal(ul.hdr_ext, "X1");
	assert_int_equal(ul.n, 3);
	assert_int_equal(ul.recs[0].uid, 1);
	assert_string_equal(ul.recs[0].base, "1733500001.M1P2.host,S=100,W=104");
	assert_null(ul.recs[0].ext);
	assert_int_equal(ul.recs[1].uid, 3);
	assert_string_equal(ul.recs[1].ext, "W2100 S2000");
	assert_string_equal(ul.recs[2].base, "1733500006.M1P2.host");
	dovecot_uidlist_write(&ul, &out);
	assert_string_equal(out.s,
	    "3 V1733500000 N7 G0123456789abcdef0123456789abcdef X1\n"
	    "1 :1733500001.M1P2.host,S=100,W=104\n"
	    "3 W2100 S2000 :1733500003.M1P2.host\n"
	    "6 :1733500006.M1P2.host\n");
	strbuf_free(&out);
	dovecot_uidlist_free(&ul);
}

static void
test_uidlist_v1_and_bad(void **state)
{
	static const char v1[] = "1 12345 10\n3 1.M1.h:2,S\n12 2.M2.h\n";
	struct dovecot_uidlist ul;
	const char *err = NULL;

	(void)state;
	assert_int_equal(dovecot_uidlist_parse(v1, sizeof(v1) - 1, &ul, &err), 0);
	assert_int_equal(ul.version, 1);
	assert_int_equal(ul.uidvalidity, 12345);
	assert_int_equal(ul.uidnext, 13);	/* raised past the last UID */
	assert_int_equal(ul.n, 2);
	assert_string_equal(ul.recs[0].base, "1.M1.h");
	dovecot_uidlist_free(&ul);
	assert_int_equal(dovecot_uidlist_parse("", 0, &ul, &err), -1);
	assert_int_equal(dovecot_uidlist_parse("3 N5\n", 5, &ul, &err), -1);
	assert_int_equal(dovecot_uidlist_parse("3 V0 N5\n", 8, &ul, &err), -1);
	assert_int_equal(dovecot_uidlist_parse("9 V1 N5\n", 8, &ul, &err), -1);
	assert_int_equal(dovecot_uidlist_parse("3 V99999999999 N5\n", 18, &ul,
					       &err), -1);
	assert_non_null(err);
}

static void
test_keywords(void **state)
{
	static const char f[] = "0 $Junk\n1 NonJunk\n1 Dup\n30 TooHigh\n"
				"2 bad name\nx Foo\n4 \\Seen\n3 work\n";
	char *names[DOVECOT_KEYWORDS_MAX];
	struct strbuf out = {0};

	(void)state;
	dovecot_keywords_parse(f, sizeof(f) - 1, names);
	assert_string_equal(names[0], "$Junk");
	assert_string_equal(names[1], "NonJunk");
	assert_null(names[2]);
	assert_string_equal(names[3], "work");
	assert_null(names[4]);
	dovecot_keywords_write(names, &out);
	assert_string_equal(out.s, "0 $Junk\n1 NonJunk\n3 work\n");
	for (int i = 0; i < DOVECOT_KEYWORDS_MAX; i++)
		free(names[i]);
	strbuf_free(&out);
}

static void
test_subscriptions(void **state)
{
	static const char v2[] = "V\t2\n\nINBOX\nSent\nA\tB\nEntw&APw-rfe\n"
				 "x\001ty\nC\001z\nD\001\n\n";
	static const char v1[] = "INBOX\nA.B\nTrash\n";
	char **n;
	size_t cnt;
	struct strbuf out = {0};

	(void)state;
	dovecot_subs_parse(v2, sizeof(v2) - 1, &n, &cnt);
	/* a tab-escaped TAB is a control character in a name: refused, as
	 * are bad escapes */
	assert_int_equal(cnt, 4);
	assert_string_equal(n[0], "INBOX");
	assert_string_equal(n[2], "A/B");
	assert_string_equal(n[3], "Entw\xc3\xbcrfe");
	assert_int_equal(dovecot_subs_write(n, 4, &out), 0);
	assert_string_equal(out.s, "V\t2\n\nINBOX\nSent\nA\tB\nEntw&APw-rfe\n");
	for (size_t i = 0; i < cnt; i++)
		free(n[i]);
	free(n);
	dovecot_subs_parse(v1, sizeof(v1) - 1, &n, &cnt);
	assert_int_equal(cnt, 3);
	assert_string_equal(n[1], "A/B");
	for (size_t i = 0; i < cnt; i++)
		free(n[i]);
	free(n);
	strbuf_free(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utf7_rfc3501),
		cmocka_unit_test(test_utf7_refused),
		cmocka_unit_test(test_utf7_round_trips),
		cmocka_unit_test(test_uidlist_v3),
		cmocka_unit_test(test_uidlist_v1_and_bad),
		cmocka_unit_test(test_keywords),
		cmocka_unit_test(test_subscriptions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
