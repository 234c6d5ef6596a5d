/*
 * Table-driven tests for the IMAP command parser (mail/imap_parse.c).
 * Each case's input is fed whole, then one octet at a time, then in
 * chunks of 7: the parser is resumable, so the trace of results (and
 * every command, written out in a canonical form) must be the same.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "lib/strbuf.h"
#include "mail/imap_parse.h"

struct parse_case {
	const char *name;
	const char *in;
	size_t len;		/* 0: strlen(in) */
	const char *trace;	/* what the driver writes down */
	size_t inline_max;	/* 0: 64 */
};

static void write_args(struct strbuf *b, const struct imap_arg *a, size_t n);

static void
write_arg(struct strbuf *b, const struct imap_arg *a)
{
	switch (a->type) {
	case IMAP_ARG_ATOM:
		strbuf_addf(b, "A:%s", a->str);
		break;
	case IMAP_ARG_STRING:
		strbuf_addf(b, "Q:%s", a->str);
		break;
	case IMAP_ARG_LITERAL:
		strbuf_addf(b, "%s%zu:", a->literal8 ? "L8:" : "L:", a->len);
		for (size_t i = 0; i < a->len; i++)
			strbuf_addc(b, a->str[i] == '\0' ? '0' : a->str[i]);
		break;
	case IMAP_ARG_NIL:
		strbuf_addstr(b, "NIL");
		break;
	case IMAP_ARG_LIST:
		strbuf_addc(b, '(');
		write_args(b, a->list, a->nlist);
		strbuf_addc(b, ')');
		break;
	case IMAP_ARG_STREAMED:
		strbuf_addf(b, "S:%llu:fd%d", (unsigned long long)a->size,
			    a->fd);
		break;
	}
}

static void
write_args(struct strbuf *b, const struct imap_arg *a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			strbuf_addc(b, ' ');
		write_arg(b, &a[i]);
	}
}

/*
 * Feeds in[] in pieces of chunk octets; writes "+" for CONTINUE,
 * "S<n>" for STREAM (whose octets the driver skips, then hands back
 * fd 7), "[tag NAME args]" for DONE ("UID " before a UID command's
 * name), "E<tag>:<error>" for ERROR.
 */
static void
drive(const struct parse_case *tc, size_t chunk, struct strbuf *trace)
{
	struct imap_parser_limits lim = {
	    .line_max = 64,
	    .inline_max = tc->inline_max != 0 ? tc->inline_max : 64,
	    .total_max = 1024,
	    .depth_max = 3,
	};
	struct imap_parser *p = imap_parser_new(&lim);
	size_t len = tc->len != 0 ? tc->len : strlen(tc->in), pos = 0;
	uint64_t skip = 0;
	int rounds = 0;

	while (pos < len && rounds++ < 100000) {
		const struct imap_command *c = NULL;
		size_t n = len - pos < chunk ? len - pos : chunk, used;
		enum imap_parse_result r;

		if (skip > 0) {
			n = skip < n ? (size_t)skip : n;
			pos += n;
			skip -= n;
			if (skip == 0)
				imap_parser_stream_done(p, 7);
			continue;
		}
		r = imap_parse(p, tc->in + pos, n, &used, &c);
		assert_true(used <= n);
		pos += used;
		switch (r) {
		case IMAP_PARSE_MORE:
			assert_int_equal(used, n);
			break;
		case IMAP_PARSE_CONTINUE:
			strbuf_addc(trace, '+');
			/* the STREAM that may follow comes with no input */
			r = imap_parse(p, "", 0, &used, &c);
			if (r == IMAP_PARSE_STREAM) {
				skip = imap_parser_stream_size(p);
				strbuf_addf(trace, "S%llu",
					    (unsigned long long)skip);
				if (skip == 0)
					imap_parser_stream_done(p, 7);
			} else {
				assert_int_equal(r, IMAP_PARSE_MORE);
			}
			break;
		case IMAP_PARSE_STREAM:
			skip = imap_parser_stream_size(p);
			strbuf_addf(trace, "S%llu", (unsigned long long)skip);
			if (skip == 0)
				imap_parser_stream_done(p, 7);
			break;
		case IMAP_PARSE_DONE:
			strbuf_addf(trace, "[%s %s%s", c->tag,
				    c->uid ? "UID " : "", c->name);
			if (c->nargs > 0)
				strbuf_addc(trace, ' ');
			write_args(trace, c->args, c->nargs);
			strbuf_addc(trace, ']');
			break;
		case IMAP_PARSE_ERROR:
			strbuf_addf(trace, "E%s:%s",
				    imap_parser_partial(p)->tag,
				    imap_parser_error(p));
			break;
		}
	}
	imap_parser_free(p);
}

#define C(n, i, t) {n, i, 0, t, 0}

static const struct parse_case cases[] = {
    C("simple", "a NOOP\r\n", "[a NOOP]"),
    C("LF alone, name in any case", "a1 noop\n", "[a1 NOOP]"),
    C("pipelined", "a NOOP\r\nb CAPABILITY\r\n", "[a NOOP][b CAPABILITY]"),
    C("atoms, quoted, NIL",
      "t LOGIN bob \"p a\\\"ss\\\\\"\r\n", "[t LOGIN A:bob Q:p a\"ss\\]"),
    C("NIL any case and empty string", "t X nil \"\"\r\n", "[t X NIL Q:]"),
    C("UID prefix and a FETCH section with spaces",
      "f uid fetch 1:*,5 (FLAGS BODY.PEEK[HEADER.FIELDS (A B)]<0.9>)\r\n",
      "[f UID FETCH A:1:*,5 (A:FLAGS A:BODY.PEEK[HEADER.FIELDS (A B)]<0.9>)]"),
    C("empty and nested lists", "t X () ((a) b)\r\n",
      "[t X () ((A:a) A:b)]"),
    C("flags and wildcards are atoms", "t X \\Seen % * INBOX/*\r\n",
      "[t X A:\\Seen A:% A:* A:INBOX/*]"),
    C("trailing space tolerated", "t NOOP \r\n", "[t NOOP]"),
    C("synchronizing literals", "t LOGIN {3}\r\nbob {2}\r\npw\r\n",
      "++[t LOGIN L:3:bob L:2:pw]"),
    C("LITERAL+", "t LOGIN {3+}\r\nbob {2+}\r\npw\r\nu NOOP\r\n",
      "[t LOGIN L:3:bob L:2:pw][u NOOP]"),
    C("a literal with CRLF inside, and in a list",
      "t X ({4+}\r\na\r\nb)\r\n", "[t X (L:4:a\r\nb)]"),
    C("literal8", "t APPEND INBOX ~{3+}\r\nxyz\r\n",
      "[t APPEND A:INBOX L8:3:xyz]"),
    C("empty literals", "t LOGIN {0}\r\n {0+}\r\n\r\n", "+[t LOGIN L:0: L:0:]"),
    {"a literal holding NUL", "t X {3+}\r\na\0b\r\n", 16, "[t X L:3:a0b]",
     0},
    {"streamed, non-synchronizing",
     "t APPEND INBOX (\\Seen) {10+}\r\n0123456789\r\nu NOOP\r\n", 0,
     "S10[t APPEND A:INBOX (A:\\Seen) S:10:fd7][u NOOP]", 4},
    {"streamed, synchronizing: CONTINUE first",
     "t APPEND INBOX {10}\r\n0123456789 {2}\r\nab\r\n", 0,
     "+S10+[t APPEND A:INBOX S:10:fd7 L:2:ab]", 4},
    /* errors, and the next command is read as usual */
    C("no command", "a\r\nb NOOP\r\n", "Ea:Missing command[b NOOP]"),
    C("invalid tag", "* NOOP\r\n+x NOOP\r\n",
      "E*:Invalid tagE*:Invalid tag"),
    C("unterminated quoted", "t X \"abc\r\n", "Et:Invalid quoted string"),
    C("bad escape", "t X \"a\\b\"\r\n", "Et:Invalid quoted string"),
    C("missing )", "t X (a b\r\n", "Et:Missing )"),
    C("missing ]", "t FETCH 1 BODY[HEADER\r\n", "Et:Missing ]"),
    C("nested too deep", "t X ((((a))))\r\n", "Et:Lists nested too deep"),
    C("two spaces", "t X a  b\r\n", "Et:Invalid character"),
    C("literal not at the end of the line", "t X {3}abc\r\n",
      "Et:Invalid literal"),
    C("literal marker without digits", "t X {}\r\n", "Et:Invalid literal"),
    C("literal size too big", "t X {123456789012345678901}\r\n",
      "Et:Invalid literal"),
    C("an atom ending in }", "t LOGIN a} b}\r\n", "[t LOGIN A:a} A:b}]"),
    C("space missing after )", "t X (a)b\r\n", "Et:Missing space"),
    C("line too long, then the next",
      "t X aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"
      "u NOOP\r\n",
      "Et:Line too long[u NOOP]"),
    C("a long line's LITERAL+ octets are skipped",
      "t X aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa {5+}\r\n"
      "v NOP\r\nu NOOP\r\n",
      "Et:Line too long[u NOOP]"),
    {"NUL in a line, its LITERAL+ skipped", "t X\0 {3+}\r\nabc\r\nu NOOP\r\n",
     24, "Et:NUL in a command[u NOOP]", 0},
};

static void
test_cases(void **state)
{
	static const size_t chunks[] = {SIZE_MAX, 1, 7};
	size_t failed = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (size_t k = 0; k < 3; k++) {
			struct strbuf t = {0};
			drive(&cases[i], chunks[k], &t);
			if (strcmp(t.s != NULL ? t.s : "", cases[i].trace) != 0) {
				print_error("%s (chunk %zu):\n want %s\n  got %s\n",
					    cases[i].name, chunks[k],
					    cases[i].trace, t.s ? t.s : "");
				failed++;
			}
			strbuf_free(&t);
		}
	}
	assert_int_equal(failed, 0);
}

/* The tag and name are known before the literal: the caller's choice. */
static void
test_partial_and_reset(void **state)
{
	struct imap_parser_limits lim = {200, 100, 4096, 8};
	struct imap_parser *p = imap_parser_new(&lim);
	const struct imap_command *c;
	const char *in = "A7 APPEND INBOX {5000}\r\n";
	size_t used;

	(void)state;
	assert_int_equal(imap_parse(p, in, strlen(in), &used, &c),
			 IMAP_PARSE_CONTINUE);
	assert_int_equal(used, strlen(in));
	assert_string_equal(imap_parser_partial(p)->tag, "A7");
	assert_string_equal(imap_parser_partial(p)->name, "APPEND");
	assert_int_equal(imap_parser_stream_size(p), 5000);
	/* refused: the client sends nothing more of it */
	imap_parser_reset(p);
	in = "A8 UID MOVE 1 x\r\n";
	assert_int_equal(imap_parse(p, in, strlen(in), &used, &c),
			 IMAP_PARSE_DONE);
	assert_true(c->uid);
	assert_string_equal(c->name, "MOVE");
	assert_int_equal(c->nargs, 2);
	imap_parser_free(p);
}

/* A command's memory is bounded by total_max, not only per line: the
 * literals that no longer fit are streamed. */
static void
test_total_max(void **state)
{
	struct imap_parser_limits lim = {100, 100, 300, 8};
	struct imap_parser *p = imap_parser_new(&lim);
	const struct imap_command *c = NULL;
	struct strbuf in = {0}, t = {0};
	enum imap_parse_result r;
	size_t used, pos = 0;
	int rounds = 0;

	(void)state;
	strbuf_addstr(&in, "t X");
	for (int i = 0; i < 4; i++)
		strbuf_addstr(&in, " {90+}\r\n"
				   "012345678901234567890123456789"
				   "012345678901234567890123456789"
				   "012345678901234567890123456789");
	strbuf_addstr(&in, "\r\n");
	while (pos < in.len && rounds++ < 100) {
		r = imap_parse(p, in.s + pos, in.len - pos, &used, &c);
		pos += used;
		if (r == IMAP_PARSE_ERROR)
			print_error("%s\n", imap_parser_error(p));
		assert_int_not_equal(r, IMAP_PARSE_ERROR);
		if (r == IMAP_PARSE_STREAM) {
			pos += imap_parser_stream_size(p);
			imap_parser_stream_done(p, -1);
		}
	}
	assert_non_null(c);
	assert_int_equal(c->nargs, 4);
	for (size_t i = 0; i < c->nargs; i++)
		strbuf_addc(&t, c->args[i].type == IMAP_ARG_STREAMED ? 'S' : 'L');
	assert_string_equal(t.s, "LLLS");
	strbuf_free(&t);
	strbuf_free(&in);
	imap_parser_free(p);
}

static void
test_helpers(void **state)
{
	struct imap_arg atom = {.type = IMAP_ARG_ATOM, .str = "Inbox", .len = 5};
	struct imap_arg sect = {.type = IMAP_ARG_ATOM, .str = "B[]", .len = 3};
	struct imap_arg list = {.type = IMAP_ARG_LIST};
	struct imap_arg nil = {.type = IMAP_ARG_NIL, .str = "nil", .len = 3};
	const char *s;
	size_t len;

	(void)state;
	assert_true(imap_arg_astring(&atom, &s, &len));
	assert_int_equal(len, 5);
	assert_false(imap_arg_astring(&sect, &s, &len));
	assert_false(imap_arg_astring(&list, &s, &len));
	/* astring = 1*ASTRING-CHAR / string: NIL is a name like any other */
	assert_true(imap_arg_astring(&nil, &s, &len));
	assert_int_equal(len, 3);
	assert_string_equal(s, "nil");
	assert_true(imap_arg_atom_is(&atom, "INBOX"));
	assert_false(imap_arg_atom_is(&atom, "INBO"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_partial_and_reset),
		cmocka_unit_test(test_total_max),
		cmocka_unit_test(test_helpers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
