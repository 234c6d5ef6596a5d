/*
 * Unit tests for mail_header.c: header fields (folding, the obsolete white
 * space before the colon, malformed sections), address lists (display
 * names, quoted strings holding '@', comments, groups, encoded words,
 * obsolete forms, malformed input) and the addresses a display name
 * shows. One table per function, a row per case.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "lib/strbuf.h"
#include "mail/mail_header.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- header fields ---------------------------------------------------- */

/*
 * out: the fields as "Name=unfolded value" joined by '|', then "|END" or
 * "|ERR@line".
 */
static const struct field_case {
	const char *in;
	const char *out;
} field_cases[] = {
	{"From: a@b\nTo: c@d\n\nbody\n", "From= a@b|To= c@d|END"},
	{"From: a@b\r\nTo: c@d\r\n\r\nbody", "From= a@b|To= c@d|END"},
	/* RFC 5322 4.5: white space before the colon */
	{"From : bob@x\n\n", "From= bob@x|END"},
	{"From\t \t: bob@x\n", "From= bob@x|END"},
	/* folding: line ends removed, white space kept */
	{"Subject: a\n b\n\tc\nX: y\n", "Subject= a b\tc|X= y|END"},
	{"Subject: a\r\n b\r\n\r\nbody: no\n", "Subject= a b|END"},
	/* obs-FWS: a continuation line of white space only */
	{"Subject: a\n \n b\n", "Subject= a  b|END"},
	{"From:\n a@b\n", "From= a@b|END"},
	{"From:a@b", "From=a@b|END"},			/* no final line end */
	{"", "END"},
	{"\nFrom: a@b\n", "END"},			/* empty header */
	{"X-Weird-!#$%&'*+-/=?^_`{|}~: v\n", "X-Weird-!#$%&'*+-/=?^_`{|}~= v|END"},
	{"A: 1\nA: 2\n", "A= 1|A= 2|END"},
	/* malformed */
	{"From bob@x\n", "ERR@1"},			/* mbox line: no colon */
	{"Subject: a\nnot a field\nFrom: b\n", "Subject= a|ERR@2"},
	{" From: a@b\n", "ERR@1"},			/* leading continuation */
	{": v\n", "ERR@1"},				/* empty name */
	{"Fr\xc3\xb6m: a@b\n", "ERR@1"},		/* 8-bit in the name */
	{"Fr om: a@b\n", "ERR@1"},
	{"From: a\rb\n", "ERR@1"},			/* bare CR */
	{"Subject: a\n b\r\n", "Subject= a b|END"},
	{"Subject: a\n b\rc\n", "ERR@2"},
	{"From: a\r", "ERR@1"},
};

static void
test_fields(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(field_cases); i++) {
		const struct field_case *c = &field_cases[i];
		struct mail_header_iter it;
		struct mail_header_field f;
		const char *err = NULL;
		char got[512] = "";
		int r;

		mail_header_iter_init(&it, c->in, strlen(c->in));
		while ((r = mail_header_next(&it, &f, &err)) == 1) {
			char *v = mail_header_unfold(&f);
			snprintf(got + strlen(got), sizeof(got) - strlen(got),
				 "%.*s=%s|", (int)f.name_len, f.name, v);
			free(v);
		}
		if (r == 0)
			snprintf(got + strlen(got), sizeof(got) - strlen(got),
				 "END");
		else
			snprintf(got + strlen(got), sizeof(got) - strlen(got),
				 "ERR@%zu", it.line);
		if (strcmp(got, c->out) != 0)
			fail_msg("row %zu: got \"%s\", expected \"%s\"", i,
				 got, c->out);
		if (r < 0) {
			assert_non_null(err);
			/* the error stays */
			assert_int_equal(mail_header_next(&it, &f, &err), -1);
		} else {
			assert_int_equal(mail_header_next(&it, &f, &err), 0);
		}
	}
}

static void
test_field_lines_and_names(void **state)
{
	const char *h = "Subject: x\n y\nfROM : a@b\nSender: c@d\n";
	struct mail_header_iter it;
	struct mail_header_field f;
	const char *err;

	(void)state;
	mail_header_iter_init(&it, h, strlen(h));
	assert_int_equal(mail_header_next(&it, &f, &err), 1);
	assert_int_equal(f.line, 1);
	assert_true(mail_header_name_is(&f, "subject"));
	assert_int_equal(mail_header_next(&it, &f, &err), 1);
	assert_int_equal(f.line, 3);
	assert_true(mail_header_name_is(&f, "From"));
	assert_false(mail_header_name_is(&f, "Fro"));
	assert_false(mail_header_name_is(&f, "From "));
	assert_int_equal(mail_header_next(&it, &f, &err), 1);
	assert_true(mail_header_name_is(&f, "SENDER"));
	assert_int_equal(mail_header_next(&it, &f, &err), 0);
}

/* ---- address lists ---------------------------------------------------- */

/*
 * out: each mailbox as addr, with "{display}", "(comment)" and "[group]"
 * when present, joined by ' '; "ERR" for an error, "" for no mailbox.
 */
static const struct addr_case {
	const char *in;
	const char *out;
	unsigned ngroups;
} addr_cases[] = {
	{"alice@example.test", "alice@example.test", 0},
	{"  alice@example.test  ", "alice@example.test", 0},
	{"<alice@example.test>", "alice@example.test", 0},
	{"Alice <alice@example.test>", "alice@example.test{Alice}", 0},
	{"Alice Q. Example <a@x>", "a@x{Alice Q. Example}", 0},	/* obs-phrase */
	{"\"Example, Alice\" <a@x>", "a@x{Example, Alice}", 0},
	/* quoted display names holding '@' and specials */
	{"\"bob@example.test\" <alice@example.test>",
	 "alice@example.test{bob@example.test}", 0},
	{"\"a \\\"quoted\\\" \\\\ name\" <a@x>", "a@x{a \"quoted\" \\ name}", 0},
	{"\"<bob@x>\" <a@x>", "a@x{<bob@x>}", 0},
	/* an LF from a quoted-pair (obs-qp) stays quoted in the normal
	 * form, so that form parses again to itself (a fuzz finding) */
	{"\"a\\\nb\"@x", "\"a\\\nb\"@x", 0},
	{"\"a\\\nb\"@x, b@y", "\"a\\\nb\"@x b@y", 0},
	{"\"\" <a@x>", "a@x{}", 0},
	/* comments */
	{"alice@example.test (Alice)", "alice@example.test(Alice)", 0},
	{"(c1) Alice (c2) <a@x> (c3)", "a@x{Alice}(c1 c2 c3)", 0},
	{"a@x (nested (comment) \\) here)", "a@x(nested (comment) ) here)", 0},
	{"a(c)@(d)x", "a@x(c d)", 0},
	{"Alice <a (in) @ x>", "a@x{Alice}(in)", 0},
	/* lists */
	{"a@x, Bob <b@y>", "a@x b@y{Bob}", 0},
	{"a@x,b@y,,c@z", "a@x b@y c@z", 0},		/* obs: empty elements */
	{", a@x ,", "a@x", 0},
	{"", "", 0},
	{" (only a comment) ", "", 0},
	/* groups */
	{"undisclosed-recipients:;", "", 1},
	{"Team: a@x, Bob <b@y>;", "a@x[Team] b@y{Bob}[Team]", 1},
	{"Team: a@x;, c@z", "a@x[Team] c@z", 1},
	{"G1: a@x;, G2:;", "a@x[G1]", 2},
	{"G1: a@x; G2:;", "ERR", 0},
	{"G: , a@x, ;", "a@x[G]", 1},
	/* encoded words stay as they are */
	{"=?utf-8?q?Al=C3=AFce?= <a@x>", "a@x{=?utf-8?q?Al=C3=AFce?=}", 0},
	{"=?utf-8?b?Ym9iQGV4YW1wbGUudGVzdA==?= <a@x>",
	 "a@x{=?utf-8?b?Ym9iQGV4YW1wbGUudGVzdA==?=}", 0},
	/* local parts */
	{"\"john doe\"@x", "\"john doe\"@x", 0},
	{"\"john\"@x", "john@x", 0},			/* quoting a dot-atom */
	{"\"a\\\"b\"@x", "\"a\\\"b\"@x", 0},
	{"john . doe @ example . test", "john.doe@example.test", 0},
	{"\"john\".doe@x", "john.doe@x", 0},		/* obs-local-part */
	{"ALICE+tag@Example.Test", "ALICE+tag@Example.Test", 0},
	{"a@[192.0.2.1]", "a@[192.0.2.1]", 0},
	{"a@[ 192.0.2.1 ]", "a@[192.0.2.1]", 0},
	{"a@x\n (folded)", "a@x(folded)", 0},
	{"Alice\r\n <a@x>", "a@x{Alice}", 0},
	/* obs-angle-addr: a source route, dropped */
	{"<@relay.test,@other.test:a@x>", "a@x", 0},
	{"Alice <@relay.test:a@x>", "a@x{Alice}", 0},
	/* UTF-8 (RFC 6532) */
	{"J\xc3\xb6rg <j\xc3\xb6rg@\xc3\xa9xample.test>",
	 "j\xc3\xb6rg@\xc3\xa9xample.test{J\xc3\xb6rg}", 0},
	/* malformed */
	{"Alice", "ERR", 0},				/* a name without address */
	{"Alice bob@x", "ERR", 0},
	{"<a@x", "ERR", 0},
	{"a@x>", "ERR", 0},
	{"<>", "ERR", 0},
	{"<a>", "ERR", 0},
	{"@x", "ERR", 0},
	{"a@", "ERR", 0},
	{"a@x.", "ERR", 0},
	{".a@x", "ERR", 0},
	{"a..b@x", "ERR", 0},
	{"a.@x", "ERR", 0},
	{"a@@x", "ERR", 0},
	{"a@x y@z", "ERR", 0},
	{"\"unterminated <a@x>", "ERR", 0},
	{"a@x (unterminated", "ERR", 0},
	{"a@[1.2.3.4", "ERR", 0},
	{"a@[1.2[3]", "ERR", 0},
	{"a@x)", "ERR", 0},
	{"a\\b@x", "ERR", 0},
	{"a@x;", "ERR", 0},
	{"G: H: a@x;;", "ERR", 0},			/* groups do not nest */
	{"G: a@x", "ERR", 0},				/* unterminated group */
	{"G: a@x b@y;", "ERR", 0},
	{"a\x01@x", "ERR", 0},
	{"<a@\"x\">", "ERR", 0},			/* quoted domain */
	{"Alice <a@x> <b@y>", "ERR", 0},
	{"<@relay.test a@x>", "ERR", 0},
};

static void
format_list(const struct mail_address_list *l, char *buf, size_t size)
{
	buf[0] = '\0';
	for (size_t i = 0; i < l->n; i++) {
		const struct mail_mailbox *m = &l->v[i];
		size_t o = strlen(buf);
		snprintf(buf + o, size - o, "%s%s", i > 0 ? " " : "", m->addr);
		o = strlen(buf);
		if (m->display != NULL)
			snprintf(buf + o, size - o, "{%s}", m->display);
		o = strlen(buf);
		if (m->comment != NULL)
			snprintf(buf + o, size - o, "(%s)", m->comment);
		o = strlen(buf);
		if (m->group != NULL)
			snprintf(buf + o, size - o, "[%s]", m->group);
	}
}

static void
test_address_list(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(addr_cases); i++) {
		const struct addr_case *c = &addr_cases[i];
		struct mail_address_list l;
		const char *err = NULL;
		char got[512];
		int r = mail_address_list_parse(c->in, strlen(c->in), &l, &err);

		if (r < 0) {
			if (strcmp(c->out, "ERR") != 0)
				fail_msg("row %zu <%s>: error \"%s\", expected "
					 "\"%s\"", i, c->in, err, c->out);
			assert_non_null(err);
			assert_int_equal(l.n, 0);
			assert_null(l.v);
			continue;
		}
		format_list(&l, got, sizeof(got));
		if (strcmp(got, c->out) != 0)
			fail_msg("row %zu <%s>: got \"%s\", expected \"%s\"", i,
				 c->in, got, c->out);
		if (l.ngroups != c->ngroups)
			fail_msg("row %zu <%s>: %zu groups, expected %u", i,
				 c->in, l.ngroups, c->ngroups);
		mail_address_list_clear(&l);
	}
}

/* A NUL inside the value is not text. */
static void
test_address_list_nul(void **state)
{
	struct mail_address_list l;
	const char *err;

	(void)state;
	assert_int_equal(mail_address_list_parse("a@x\0b@y", 7, &l, &err), -1);
	assert_int_equal(mail_address_list_parse("\"a\0\"@x", 6, &l, &err), -1);
	assert_int_equal(mail_address_list_parse("a@x (\0)", 7, &l, &err), -1);
	assert_int_equal(mail_address_list_parse("a@x", 3, &l, &err), 0);
	assert_int_equal(l.n, 1);
	mail_address_list_clear(&l);
}

/* ---- display names ---------------------------------------------------- */

static const struct decode_case {
	const char *in;
	const char *out;
} decode_cases[] = {
	{"plain text", "plain text"},
	{"=?utf-8?q?bob=40example.test?=", "bob@example.test"},
	{"=?UTF-8?Q?a_b?=", "a b"},
	{"=?utf-8?b?Ym9iQGV4YW1wbGUudGVzdA==?=", "bob@example.test"},
	{"=?iso-8859-1?B?Ym9i?= x", "bob x"},
	/* RFC 2047 6.2: space between encoded words is not shown */
	{"=?utf-8?q?bob?= =?utf-8?q?=40x.test?=", "bob@x.test"},
	{"=?utf-8?q?a?= b =?utf-8?q?c?=", "a b c"},
	/* not encoded words: kept */
	{"=?utf-8?x?abc?=", "=?utf-8?x?abc?="},
	{"=?utf-8?b?!!!?=", "=?utf-8?b?!!!?="},
	{"=?utf-8?q?abc", "=?utf-8?q?abc"},
	{"=?", "=?"},
	{"=?utf 8?q?a?=", "=?utf 8?q?a?="},
	{"=?utf-8?q?=4?=", "=4"},
	{"=?utf-8?q?a=00b?=", "a b"},		/* control octets read as space */
};

static void
test_display_decode(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(decode_cases); i++) {
		char *d = mail_display_decode(decode_cases[i].in);
		if (strcmp(d, decode_cases[i].out) != 0)
			fail_msg("row %zu <%s>: got \"%s\", expected \"%s\"", i,
				 decode_cases[i].in, d, decode_cases[i].out);
		free(d);
	}
}

/* out: the addresses found joined by ' ' */
static const struct shows_case {
	const char *in;
	const char *out;
} shows_cases[] = {
	{"Alice Example", ""},
	{"bob@example.test", "bob@example.test"},
	{"Bob (bob@example.test)", "bob@example.test"},
	{"<bob@example.test>", "bob@example.test"},
	{"'bob@example.test'", "bob@example.test"},
	{"mailto:bob@example.test", "bob@example.test"},
	{"bob@example.test.", "bob@example.test"},
	{"bob@example.test via alice@example.test",
	 "bob@example.test alice@example.test"},
	{"=?utf-8?q?bob=40example.test?=", "bob@example.test"},
	{"=?utf-8?b?Ym9iQGV4YW1wbGUudGVzdA==?=", "bob@example.test"},
	/* the full-width and small commercial ats */
	{"bob\xef\xbc\xa0" "example.test", "bob@example.test"},
	{"bob\xef\xb9\xab" "example.test", "bob@example.test"},
	{"=?utf-8?q?bob=EF=BC=A0example.test?=", "bob@example.test"},
	/* not addresses */
	{"@bob", ""},
	{"bob@", ""},
	{"bob @ example.test", ""},
	{"@", ""},
	{"", ""},
};

static void
test_display_addresses(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(shows_cases); i++) {
		char **v, got[256] = "";
		size_t n = mail_display_addresses(shows_cases[i].in, &v);
		for (size_t k = 0; k < n; k++)
			snprintf(got + strlen(got), sizeof(got) - strlen(got),
				 "%s%s", k > 0 ? " " : "", v[k]);
		if (strcmp(got, shows_cases[i].out) != 0)
			fail_msg("row %zu <%s>: got \"%s\", expected \"%s\"", i,
				 shows_cases[i].in, got, shows_cases[i].out);
		if (n == 0)
			assert_null(v);
		mail_strings_free(&v, n);
		assert_null(v);
	}
}

/* The one encoded-word decoder, strict (display checks) and tolerant
 * (IMAP): bad base64 is no word only when strict; the charset is cut at
 * an RFC 2231 '*'; a word longer than the bound is no word. */
static void
test_encoded_word(void **state)
{
	const char *w = "=?ISO-8859-1*fr?B?Y!2Fm?= x", *lim = w + strlen(w);
	struct strbuf out = {0};
	char cs[64], *big;
	size_t n;

	(void)state;
	assert_int_equal(mail_encoded_word(w, lim, true, NULL, 0, &out), 0);
	assert_int_equal(mail_encoded_word(w, lim, false, cs, sizeof(cs),
					   &out), strlen(w) - 2);
	assert_string_equal(cs, "ISO-8859-1");
	assert_int_equal(out.len, 3);
	assert_memory_equal(out.s, "caf", 3);
	strbuf_reset(&out);
	w = "=?utf-8?q?a_b=3D?=";
	assert_int_equal(mail_encoded_word(w, w + strlen(w), true, cs, 4,
					   &out), 0);	/* charset too long */
	assert_int_equal(mail_encoded_word(w, w + strlen(w), true, NULL, 0,
					   &out), strlen(w));
	assert_memory_equal(out.s, "a b=", 4);
	big = calloc(1, 1200);
	assert_non_null(big);
	memcpy(big, "=?a?q?", 6);
	memset(big + 6, 'x', 1100);
	memcpy(big + 1106, "?=", 2);
	n = mail_encoded_word(big, big + 1108, false, NULL, 0, &out);
	assert_int_equal(n, 0);
	free(big);
	strbuf_free(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fields),
	    cmocka_unit_test(test_field_lines_and_names),
	    cmocka_unit_test(test_address_list),
	    cmocka_unit_test(test_address_list_nul),
	    cmocka_unit_test(test_display_decode),
	    cmocka_unit_test(test_encoded_word),
	    cmocka_unit_test(test_display_addresses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
