/* Tests for the MIME structure of stored messages (mail/imap_mime.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "lib/strbuf.h"
#include "mail/imap_mime.h"

struct mem {
	const char *p;
	size_t len;
	size_t chunk;		/* at most this much per read: 0 any */
};

static ssize_t
mem_read(void *arg, uint64_t off, void *buf, size_t n)
{
	struct mem *m = arg;

	if (off >= m->len)
		return 0;
	if (n > m->len - off)
		n = m->len - (size_t)off;
	if (m->chunk > 0 && n > m->chunk)
		n = m->chunk;
	memcpy(buf, m->p + off, n);
	return (ssize_t)n;
}

static struct mem mem;
static struct imap_mime_src src;

static struct imap_mime *
parse(const char *msg, size_t chunk)
{
	struct imap_mime *m;

	mem.p = msg;
	mem.len = strlen(msg);
	mem.chunk = chunk;
	src.read = mem_read;
	src.arg = &mem;
	src.size = mem.len;
	assert_int_equal(imap_mime_parse(&src, &m), 0);
	return m;
}

/* The CRLF form of s. */
static char *
crlf(const char *s)
{
	struct strbuf b = {0};

	for (; *s != '\0'; s++) {
		if (*s == '\n')
			strbuf_addc(&b, '\r');
		strbuf_addc(&b, *s);
	}
	strbuf_add(&b, "", 0);
	return strbuf_steal(&b);
}

/* What a section spec streams (decoded or not). */
static char *
fetch(struct imap_mime *m, const char *spec, bool binary)
{
	struct imap_section sec;
	struct imap_mime_range r;
	struct imap_mime_stream st;
	struct strbuf b = {0};
	char buf[7];
	ssize_t n;

	assert_int_equal(imap_section_parse(spec, strlen(spec), binary, &sec),
			 0);
	if (imap_mime_section(m, &sec, &r) < 0) {
		imap_section_clear(&sec);
		return NULL;
	}
	if (sec.kind == IMAP_SEC_FIELDS || sec.kind == IMAP_SEC_FIELDS_NOT) {
		assert_int_equal(imap_mime_header_fields(&src, &r, sec.names,
		    sec.nnames, sec.kind == IMAP_SEC_FIELDS_NOT, &b), 0);
	} else {
		imap_mime_stream_init(&st, &src, &r, binary, sec.start,
				      sec.partial ? sec.len : UINT64_MAX);
		while ((n = imap_mime_stream_read(&st, buf, sizeof(buf))) > 0)
			strbuf_add(&b, buf, (size_t)n);
		assert_int_equal(n, 0);
	}
	imap_section_clear(&sec);
	strbuf_add(&b, "", 0);
	return strbuf_steal(&b);
}

static void
check_fetch(struct imap_mime *m, const char *spec, bool binary,
	    const char *want)
{
	char *got = fetch(m, spec, binary);

	if (want == NULL) {
		assert_null(got);
		return;
	}
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static const char simple[] =
    "From: \"Alice A.\" <alice@example.test>\n"
    "To: bob@example.test, Group: c@d.test, e@f.test;\n"
    "Subject: =?utf-8?q?caf=C3=A9?= time\n"
    "Date: Tue, 1 Jul 2003 10:52:37 +0200\n"
    "Message-ID: <1@example.test>\n"
    "\n"
    "hello\n"
    "world\n";

static void
test_simple(void **state)
{
	struct imap_mime *m = parse(simple, 0);
	struct strbuf b = {0};
	char *c = crlf(simple);

	(void)state;
	assert_int_equal(m->csize, strlen(c));
	imap_mime_bodystructure(m, true, &b);
	assert_string_equal(b.s, "(\"text\" \"plain\" (\"charset\" "
	    "\"us-ascii\") NIL NIL \"7bit\" 14 2 NIL NIL NIL NIL)");
	strbuf_reset(&b);
	imap_mime_bodystructure(m, false, &b);
	assert_string_equal(b.s, "(\"text\" \"plain\" (\"charset\" "
	    "\"us-ascii\") NIL NIL \"7bit\" 14 2)");
	strbuf_reset(&b);
	imap_mime_envelope(m, &b);
	assert_string_equal(b.s,
	    "(\"Tue, 1 Jul 2003 10:52:37 +0200\" "
	    "\"=?utf-8?q?caf=C3=A9?= time\" "
	    "((\"Alice A.\" NIL \"alice\" \"example.test\")) "
	    "((\"Alice A.\" NIL \"alice\" \"example.test\")) "
	    "((\"Alice A.\" NIL \"alice\" \"example.test\")) "
	    "((NIL NIL \"bob\" \"example.test\")(NIL NIL \"Group\" NIL)"
	    "(NIL NIL \"c\" \"d.test\")(NIL NIL \"e\" \"f.test\")"
	    "(NIL NIL NIL NIL)) NIL NIL NIL \"<1@example.test>\")");
	check_fetch(m, "[]", false, c);
	check_fetch(m, "[TEXT]", false, "hello\r\nworld\r\n");
	check_fetch(m, "[1]", false, "hello\r\nworld\r\n");
	check_fetch(m, "[2]", false, NULL);
	check_fetch(m, "[TEXT]<5.3>", false, "\r\nw");
	check_fetch(m, "[TEXT]<6.100>", false, "\nworld\r\n");
	check_fetch(m, "[TEXT]<100.1>", false, "");
	check_fetch(m, "[HEADER.FIELDS (subject from)]", false,
	    "From: \"Alice A.\" <alice@example.test>\r\n"
	    "Subject: =?utf-8?q?caf=C3=A9?= time\r\n\r\n");
	check_fetch(m, "[HEADER.FIELDS.NOT (To Subject Date Message-ID)]",
	    false, "From: \"Alice A.\" <alice@example.test>\r\n\r\n");
	strbuf_free(&b);
	free(c);
	imap_mime_free(&m);
}

static const char multi[] =
    "From: a@b.test\n"
    "Subject: multi\n"
    "MIME-Version: 1.0\n"
    "Content-Type: multipart/mixed; boundary=\"outer\"\n"
    "\n"
    "preamble\n"
    "--outer\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: quoted-printable\n"
    "\n"
    "caf=C3=A9 =\n"
    "ok\n"
    "--outer\n"
    "Content-Type: multipart/alternative; boundary=inner\n"
    "\n"
    "--inner\n"
    "\n"
    "plain\n"
    "--inner\n"
    "Content-Type: text/html\n"
    "\n"
    "<b>x</b>\n"
    "--inner--\n"
    "--outer\n"
    "Content-Type: application/octet-stream; name=\"a.bin\"\n"
    "Content-Transfer-Encoding: base64\n"
    "Content-Disposition: attachment; filename=\"a.bin\"\n"
    "Content-Language: en, fr\n"
    "\n"
    "AAEC\n"
    "/w==\n"
    "--outer\n"
    "Content-Type: message/rfc822\n"
    "\n"
    "From: c@d.test\n"
    "Subject: inner\n"
    "\n"
    "body\n"
    "--outer--\n"
    "epilogue\n";

static void
test_multipart(void **state)
{
	struct imap_mime *m;
	struct strbuf b = {0};
	char *bin;

	(void)state;
	for (size_t chunk = 0; chunk < 4; chunk += 3) {
		m = parse(multi, chunk);
		imap_mime_bodystructure(m, false, &b);
		assert_string_equal(b.s,
		    "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL "
		    "\"quoted-printable\" 15 2)"
		    "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
		    "\"7bit\" 5 1)(\"text\" \"html\" NIL NIL NIL \"7bit\" 8 1)"
		    " \"alternative\")"
		    "(\"application\" \"octet-stream\" (\"name\" \"a.bin\") "
		    "NIL NIL \"base64\" 10)"
		    "(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 38 "
		    "(NIL \"inner\" ((NIL NIL \"c\" \"d.test\")) "
		    "((NIL NIL \"c\" \"d.test\")) ((NIL NIL \"c\" \"d.test\")) "
		    "NIL NIL NIL NIL NIL) "
		    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
		    "\"7bit\" 4 1) 4) \"mixed\")");
		strbuf_reset(&b);
		imap_mime_bodystructure(m, true, &b);
		assert_non_null(strstr(b.s, "\"base64\" 10 NIL "
		    "(\"attachment\" (\"filename\" \"a.bin\")) (\"en\" \"fr\") "
		    "NIL)"));
		assert_non_null(strstr(b.s, " \"mixed\" (\"boundary\" "
		    "\"outer\") NIL NIL NIL)"));
		strbuf_reset(&b);
		check_fetch(m, "[1]", false, "caf=C3=A9 =\r\nok");
		check_fetch(m, "[1]", true, "caf\xc3\xa9 ok");
		check_fetch(m, "[1.MIME]", false,
		    "Content-Type: text/plain; charset=utf-8\r\n"
		    "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
		check_fetch(m, "[2.1]", false, "plain");
		check_fetch(m, "[2.2]", false, "<b>x</b>");
		check_fetch(m, "[2.3]", false, NULL);
		bin = fetch(m, "[3]", true);
		assert_memory_equal(bin, "\x00\x01\x02\xff", 4);
		free(bin);
		check_fetch(m, "[3]<1.2>", true, "\x01\x02");
		check_fetch(m, "[4.HEADER]", false,
		    "From: c@d.test\r\nSubject: inner\r\n\r\n");
		check_fetch(m, "[4.TEXT]", false, "body");
		check_fetch(m, "[4.1]", false, "body");
		check_fetch(m, "[4]", false,
		    "From: c@d.test\r\nSubject: inner\r\n\r\nbody");
		check_fetch(m, "[1.HEADER]", false, NULL);
		check_fetch(m, "[HEADER.FIELDS (Subject)]", false,
		    "Subject: multi\r\n\r\n");
		imap_mime_free(&m);
	}
	strbuf_free(&b);
}

static void
test_sizes(void **state)
{
	struct imap_mime *m = parse(multi, 0);
	struct imap_section sec;
	struct imap_mime_range r;
	uint64_t size;

	(void)state;
	assert_int_equal(imap_section_parse("[3]", 3, true, &sec), 0);
	assert_int_equal(imap_mime_section(m, &sec, &r), 0);
	assert_int_equal(imap_mime_decoded_size(&src, &r, &size), 0);
	assert_int_equal(size, 4);
	imap_section_clear(&sec);
	imap_mime_free(&m);
}

/* ",W=" that another program got wrong: kept within what the stored
 * form allows, else counted (a last line without its end counts its
 * CR LF) */
static void
test_whole_size(void **state)
{
	struct imap_mime *m = parse("a\nbb\n", 0);

	(void)state;
	imap_mime_free(&m);
	assert_int_equal(imap_mime_whole_size(&src, 7), 7);	/* right */
	assert_int_equal(imap_mime_whole_size(&src, 5), 5);	/* bounds */
	assert_int_equal(imap_mime_whole_size(&src, 12), 12);
	assert_int_equal(imap_mime_whole_size(&src, 4), 7);	/* counted */
	assert_int_equal(imap_mime_whole_size(&src, 13), 7);
	assert_int_equal(imap_mime_whole_size(&src, UINT64_MAX), 7);
	m = parse("a\r\nno end", 3);
	imap_mime_free(&m);
	assert_int_equal(imap_mime_whole_size(&src, 0), 11);
	mem.len = src.size = 0;
	assert_int_equal(imap_mime_whole_size(&src, 9), 0);
}

static void
test_section_parse(void **state)
{
	static const char *const good[] = {
		"[]", "[HEADER]", "[TEXT]", "[1]", "[1.2.3]", "[1.MIME]",
		"[1.HEADER]", "[2.TEXT]<0.1>", "[HEADER.FIELDS (A B)]",
		"[header.fields.not (\"X\")]<10.20>", "[]<0.4294967296>",
	};
	static const char *const bad[] = {
		"", "[", "]", "[0]", "[1.]", "[.1]", "[MIME]", "[HEADER.FIELDS]",
		"[HEADER.FIELDS ()]", "[TEXT]<1.0>", "[TEXT]<1>", "[X]",
		"[1]x", "[HEADER.FIELDS (A:B)]", "[99999999999]",
	};
	struct imap_section sec;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(imap_section_parse(good[i], strlen(good[i]),
						    false, &sec), 0);
		imap_section_clear(&sec);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(imap_section_parse(bad[i], strlen(bad[i]),
						    false, &sec), -1);
	assert_int_equal(imap_section_parse("[TEXT]", 6, true, &sec), -1);
	assert_int_equal(imap_section_parse("[1.2]<3.4>", 10, true, &sec), 0);
	assert_string_equal(sec.text, "1.2");
	assert_true(sec.partial);
	assert_int_equal(sec.start, 3);
	imap_section_clear(&sec);
	assert_int_equal(imap_section_parse("[header.fields (a \"b c\")]", 25,
					    false, &sec), 0);
	assert_string_equal(sec.text, "HEADER.FIELDS (a \"b c\")");
	imap_section_clear(&sec);
}

static void
test_words(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"=?utf-8?q?caf=C3=A9?= time", "caf\xc3\xa9 time"},
		{"=?ISO-8859-1?Q?a=E9?= =?ISO-8859-1?B?6Q==?=", "a\xc3\xa9\xc3\xa9"},
		{"plain =?x?q?bad", "plain =?x?q?bad"},
		{"=?utf-8*en?Q?a_b?=", "a b"},
		{"", ""},
	};
	struct strbuf b = {0};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		strbuf_reset(&b);
		imap_mime_decode_words(cases[i].in, strlen(cases[i].in), &b);
		assert_string_equal(b.s, cases[i].out);
	}
	strbuf_free(&b);
}

static void
test_deep(void **state)
{
	struct strbuf msg = {0}, b = {0};
	struct imap_mime *m;

	(void)state;
	for (int i = 0; i < 40; i++)
		strbuf_addf(&msg, "Content-Type: multipart/mixed; "
		    "boundary=b%d\n\n--b%d\n", i, i);
	strbuf_addstr(&msg, "\nx\n");
	m = parse(msg.s, 0);
	imap_mime_bodystructure(m, true, &b);
	assert_non_null(strstr(b.s, "\"application\" \"octet-stream\""));
	imap_mime_free(&m);
	/* a CRLF-stored message and an unterminated line */
	m = parse("Subject: x\r\n\r\nab\r\ncd", 0);
	assert_int_equal(m->csize, 20);
	check_fetch(m, "[TEXT]", false, "ab\r\ncd");
	imap_mime_free(&m);
	strbuf_free(&msg);
	strbuf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple),
		cmocka_unit_test(test_multipart),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_whole_size),
		cmocka_unit_test(test_section_parse),
		cmocka_unit_test(test_words),
		cmocka_unit_test(test_deep),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
