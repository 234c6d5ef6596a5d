/*
 * Unit tests for lib/logfmt.c, the log field encoder (the contract in
 * logfmt.h and docs/operations.md "Log format"), and for log.c's line
 * (one write, at most 4096 bytes, truncated=yes). Table-driven: a row per
 * value with what each format must write; every row also goes back
 * through the decoders and must come out as the same bytes.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"

#include "lib/logfmt.h"
#include "lib/log.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct row {
	const char *name;
	const char *in;
	size_t len;		/* 0: strlen(in) */
	const char *kv;		/* expected logfmt value */
	const char *json;	/* expected JSON value */
} rows[] = {
	{"bare word", "abc", 0, "abc", "\"abc\""},
	{"bare address", "alice@example.test", 0, "alice@example.test",
	 "\"alice@example.test\""},
	{"bare set", "a-b.c_d:e/f@g+h,i[j]", 0, "a-b.c_d:e/f@g+h,i[j]",
	 "\"a-b.c_d:e/f@g+h,i[j]\""},
	{"empty", "", 0, "\"\"", "\"\""},
	{"space", "a b", 0, "\"a b\"", "\"a b\""},
	{"equals", "a=b", 0, "\"a=b\"", "\"a=b\""},
	{"angle brackets", "<a@b>", 0, "\"<a@b>\"", "\"<a@b>\""},
	{"quote", "x\"y", 0, "\"x\\\"y\"", "\"x\\\"y\""},
	{"backslash", "a\\b", 0, "\"a\\\\b\"", "\"a\\\\b\""},
	{"backslash x", "\\x41", 0, "\"\\\\x41\"", "\"\\\\x41\""},
	{"forged fields", "x event=accept result=ok ip=6.6.6.6 to=x", 0,
	 "\"x event=accept result=ok ip=6.6.6.6 to=x\"",
	 "\"x event=accept result=ok ip=6.6.6.6 to=x\""},
	{"quoted local part", "\"x event=accept\"@example.org", 0,
	 "\"\\\"x event=accept\\\"@example.org\"",
	 "\"\\\"x event=accept\\\"@example.org\""},
	{"LF", "a\nb", 0, "\"a\\x0ab\"", "\"a\\u000ab\""},
	{"CR", "a\rb", 0, "\"a\\x0db\"", "\"a\\u000db\""},
	{"CRLF forged line", "x\r\n2026-01-01T00:00:00Z level=info", 0,
	 "\"x\\x0d\\x0a2026-01-01T00:00:00Z level=info\"",
	 "\"x\\u000d\\u000a2026-01-01T00:00:00Z level=info\""},
	{"tab", "\t", 0, "\"\\x09\"", "\"\\u0009\""},
	{"NUL in bytes", "a\0b", 3, "\"a\\x00b\"", "\"a\\u0000b\""},
	{"ESC", "\x1b[31m", 0, "\"\\x1b[31m\"", "\"\\u001b[31m\""},
	{"DEL", "\x7f", 0, "\"\\x7f\"", "\"\\u007f\""},
	{"UTF-8 2 bytes", "caf\xc3\xa9", 0, "\"caf\xc3\xa9\"",
	 "\"caf\xc3\xa9\""},
	{"UTF-8 3 bytes", "\xe2\x82\xac", 0, "\"\xe2\x82\xac\"",
	 "\"\xe2\x82\xac\""},
	{"UTF-8 4 bytes", "\xf0\x9f\x90\xa6", 0, "\"\xf0\x9f\x90\xa6\"",
	 "\"\xf0\x9f\x90\xa6\""},
	{"highest code point", "\xf4\x8f\xbf\xbf", 0, "\"\xf4\x8f\xbf\xbf\"",
	 "\"\xf4\x8f\xbf\xbf\""},
	{"U+00A0 is not a break", "\xc2\xa0", 0, "\"\xc2\xa0\"",
	 "\"\xc2\xa0\""},
	{"latin-1 byte", "caf\xe9", 0, "\"caf\\xe9\"", "\"caf\\u00e9\""},
	{"lone continuation", "\x80", 0, "\"\\x80\"", "\"\\u0080\""},
	{"0xff", "\xff", 0, "\"\\xff\"", "\"\\u00ff\""},
	{"overlong slash 2", "\xc0\xaf", 0, "\"\\xc0\\xaf\"",
	 "\"\\u00c0\\u00af\""},
	{"overlong 3", "\xe0\x80\xaf", 0, "\"\\xe0\\x80\\xaf\"",
	 "\"\\u00e0\\u0080\\u00af\""},
	{"overlong 4", "\xf0\x80\x80\xaf", 0, "\"\\xf0\\x80\\x80\\xaf\"",
	 "\"\\u00f0\\u0080\\u0080\\u00af\""},
	{"overlong NUL", "\xc0\x80", 0, "\"\\xc0\\x80\"",
	 "\"\\u00c0\\u0080\""},
	{"high surrogate", "\xed\xa0\x80", 0, "\"\\xed\\xa0\\x80\"",
	 "\"\\u00ed\\u00a0\\u0080\""},
	{"low surrogate", "\xed\xbf\xbf", 0, "\"\\xed\\xbf\\xbf\"",
	 "\"\\u00ed\\u00bf\\u00bf\""},
	{"above U+10FFFF", "\xf4\x90\x80\x80", 0,
	 "\"\\xf4\\x90\\x80\\x80\"", "\"\\u00f4\\u0090\\u0080\\u0080\""},
	{"cut short", "a\xe2\x82", 0, "\"a\\xe2\\x82\"",
	 "\"a\\u00e2\\u0082\""},
	{"lead then ASCII", "\xe2" "ab", 0, "\"\\xe2ab\"", "\"\\u00e2ab\""},
	{"U+0085 NEL", "a\xc2\x85" "b", 0, "\"a\\xc2\\x85b\"",
	 "\"a\\u00c2\\u0085b\""},
	{"U+0080", "\xc2\x80", 0, "\"\\xc2\\x80\"", "\"\\u00c2\\u0080\""},
	{"U+009F", "\xc2\x9f", 0, "\"\\xc2\\x9f\"", "\"\\u00c2\\u009f\""},
	{"U+2028 LS", "a\xe2\x80\xa8" "b", 0, "\"a\\xe2\\x80\\xa8b\"",
	 "\"a\\u2028b\""},
	{"U+2029 PS", "a\xe2\x80\xa9" "b", 0, "\"a\\xe2\\x80\\xa9b\"",
	 "\"a\\u2029b\""},
	{"U+2027 passes", "\xe2\x80\xa7", 0, "\"\xe2\x80\xa7\"",
	 "\"\xe2\x80\xa7\""},
	{"LS forging a line", "x\xe2\x80\xa8ip=6.6.6.6", 0,
	 "\"x\\xe2\\x80\\xa8ip=6.6.6.6\"", "\"x\\u2028ip=6.6.6.6\""},
};

/* ---- helpers ------------------------------------------------------------ */

static char *
encode_value(enum logfmt_format fmt, const struct log_field *f)
{
	static char buf[8192];
	struct logfmt_out o = {buf, 0, sizeof(buf), false};

	buf[0] = '\0';
	logfmt_value(&o, fmt, f);
	assert_false(o.full);
	return buf;
}

struct got {
	int n;
	char key[64][64];
	unsigned char val[64][LOGFMT_VALUE_MAX + 8];
	size_t len[64];
};

static void
collect(void *ctx, const char *key, size_t key_len, const unsigned char *v,
	size_t vl)
{
	struct got *g = ctx;

	assert_true(g->n < 64 && key_len < 64 && vl < sizeof(g->val[0]));
	memcpy(g->key[g->n], key, key_len);
	g->key[g->n][key_len] = '\0';
	memcpy(g->val[g->n], v, vl);
	g->len[g->n] = vl;
	g->n++;
}

static struct log_field
str_field(const char *key, const char *p, size_t len)
{
	struct log_field f = {.key = key, .type = LOG_FIELD_BYTES,
			      .v.s = p, .len = len};
	return f;
}

/* Encodes fields in fmt and decodes them back into g. */
static int
round_trip(enum logfmt_format fmt, const struct log_field *fields,
	   struct got *g, char *buf, size_t size)
{
	struct logfmt_out o = {buf, 0, size, false};
	int n;

	memset(g, 0, sizeof(*g));
	buf[0] = '\0';
	if (fmt == LOGFMT_JSON) {
		assert_true(logfmt_fields(&o, fmt, fields));
		if (o.len == 0) {
			snprintf(buf, size, "{}");
			o.len = 2;
		} else {
			buf[0] = '{';	/* the leading ',' */
			buf[o.len++] = '}';
			buf[o.len] = '\0';
		}
		n = logfmt_parse_json(buf, o.len, collect, g);
	} else {
		assert_true(logfmt_fields(&o, fmt, fields));
		n = logfmt_parse_kv(buf, o.len, collect, g);
	}
	return n;
}

/* ---- the table ---------------------------------------------------------- */

static void
test_rows(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(rows); i++) {
		const struct row *r = &rows[i];
		size_t len = r->len != 0 ? r->len : strlen(r->in);
		struct log_field f = str_field("k", r->in, len);
		const char *kv = encode_value(LOGFMT_KV, &f);

		if (strcmp(kv, r->kv) != 0)
			fail_msg("%s: kv wrote %s, want %s", r->name, kv,
				 r->kv);
		const char *js = encode_value(LOGFMT_JSON, &f);
		if (strcmp(js, r->json) != 0)
			fail_msg("%s: json wrote %s, want %s", r->name, js,
				 r->json);
		/* a NUL-terminated string field writes the same */
		if (r->len == 0) {
			struct log_field s = {.key = "k",
					      .type = LOG_FIELD_STR,
					      .v.s = r->in};
			assert_string_equal(encode_value(LOGFMT_KV, &s), r->kv);
		}
	}
}

static void
test_rows_round_trip(void **state)
{
	static char buf[8192];
	struct got g;

	(void)state;
	for (size_t i = 0; i < N(rows); i++) {
		const struct row *r = &rows[i];
		size_t len = r->len != 0 ? r->len : strlen(r->in);
		struct log_field fields[] = {
			str_field("before", "x", 1),
			str_field("k", r->in, len),
			str_field("after", "y z", 3),
			{.key = NULL},
		};
		for (int fmt = LOGFMT_KV; fmt <= LOGFMT_JSON; fmt++) {
			int n = round_trip(fmt, fields, &g, buf, sizeof(buf));
			if (n != 3)
				fail_msg("%s (%s): %d fields from %s", r->name,
					 fmt == LOGFMT_KV ? "kv" : "json", n,
					 buf);
			assert_string_equal(g.key[1], "k");
			assert_int_equal(g.len[1], len);
			if (memcmp(g.val[1], r->in, len) != 0)
				fail_msg("%s: decoded differently", r->name);
			assert_string_equal(g.key[2], "after");
			assert_memory_equal(g.val[2], "y z", 3);
		}
	}
}

/* No raw line break, C1 control, LS or PS in any row's output. */
static void
test_no_raw_breaks(void **state)
{
	(void)state;
	for (size_t i = 0; i < N(rows); i++) {
		const struct row *r = &rows[i];
		const char *outs[] = {r->kv, r->json};
		for (size_t k = 0; k < 2; k++) {
			const unsigned char *p =
				(const unsigned char *)outs[k];
			for (; *p != '\0'; p++) {
				assert_true(*p >= 0x20 && *p != 0x7f);
				if (p[0] == 0xc2)
					assert_true(p[1] >= 0xa0);
				if (p[0] == 0xe2 && p[1] == 0x80)
					assert_true(p[2] != 0xa8 &&
						    p[2] != 0xa9);
			}
		}
	}
}

/* ---- numbers, keys, optional fields ------------------------------------- */

static void
test_integers(void **state)
{
	static char buf[512];
	struct log_field fields[] = {
		{.key = "a", .type = LOG_FIELD_INT, .v.i = -5},
		{.key = "b", .type = LOG_FIELD_INT, .v.i = LLONG_MIN},
		{.key = "c", .type = LOG_FIELD_UINT, .v.u = ULLONG_MAX},
		{.key = "d", .type = LOG_FIELD_UINT, .v.u = 0},
		{.key = NULL},
	};
	struct logfmt_out o = {buf, 0, sizeof(buf), false};
	struct got g;

	(void)state;
	assert_true(logfmt_fields(&o, LOGFMT_KV, fields));
	assert_string_equal(buf, " a=-5 b=-9223372036854775808 "
				 "c=18446744073709551615 d=0");
	o.len = 0;
	assert_true(logfmt_fields(&o, LOGFMT_JSON, fields));
	assert_string_equal(buf, ",\"a\":-5,\"b\":-9223372036854775808,"
				 "\"c\":18446744073709551615,\"d\":0");
	assert_int_equal(round_trip(LOGFMT_JSON, fields, &g, buf, sizeof(buf)),
			 4);
	assert_string_equal((char *)g.val[1], "-9223372036854775808");
}

static void
test_bad_keys(void **state)
{
	static char buf[512];
	struct log_field fields[] = {
		{.key = "Bad-Key", .type = LOG_FIELD_STR, .v.s = "1"},
		{.key = "", .type = LOG_FIELD_STR, .v.s = "2"},
		{.key = "a b=c", .type = LOG_FIELD_STR, .v.s = "3"},
		{.key = "ok_key9", .type = LOG_FIELD_STR, .v.s = "4"},
		{.key = NULL},
	};
	struct logfmt_out o = {buf, 0, sizeof(buf), false};

	(void)state;
	assert_true(logfmt_fields(&o, LOGFMT_KV, fields));
	assert_string_equal(buf, " badkey=1 badkey=2 badkey=3 ok_key9=4");
	o.len = 0;
	assert_true(logfmt_fields(&o, LOGFMT_JSON, fields));
	assert_string_equal(buf, ",\"badkey\":\"1\",\"badkey\":\"2\","
				 "\"badkey\":\"3\",\"ok_key9\":\"4\"");
}

static void
test_skip_and_null(void **state)
{
	static char buf[512];
	struct log_field fields[] = {
		LF_STR_IF(false, "banned", "yes"),
		LF_STR("user", NULL),
		LF_STR_IF(true, "reason", "deleted"),
		LF_BOOL("tls", true),
		LF_BYTES("b", NULL, 5),
		{.key = NULL},
	};
	struct logfmt_out o = {buf, 0, sizeof(buf), false};

	(void)state;
	assert_true(logfmt_fields(&o, LOGFMT_KV, fields));
	assert_string_equal(buf, " user=\"\" reason=deleted tls=yes b=\"\"");
}

/* ---- length ------------------------------------------------------------- */

static void
check_cut(enum logfmt_format fmt, const char *in, size_t len,
	  size_t want_kept)
{
	struct log_field f = str_field("k", in, len);
	const char *out = encode_value(fmt, &f);
	size_t ol = strlen(out);
	static char buf[8192];
	struct got g;
	struct log_field fields[] = {f, {.key = NULL}};

	/* quotes around at most LOGFMT_VALUE_MAX */
	assert_true(ol <= LOGFMT_VALUE_MAX + 2);
	assert_int_equal(out[0], '"');
	assert_memory_equal(out + ol - 4, "...\"", 4);
	assert_int_equal(round_trip(fmt, fields, &g, buf, sizeof(buf)), 1);
	assert_int_equal(g.len[0], want_kept + 3);
	assert_memory_equal(g.val[0], in, want_kept);
	assert_memory_equal(g.val[0] + want_kept, "...", 3);
}

static void
test_truncation(void **state)
{
	static char in[4096];
	struct log_field f;
	const char *out;

	(void)state;
	/* exactly LOGFMT_VALUE_MAX bare bytes: whole and bare */
	memset(in, 'a', sizeof(in));
	f = str_field("k", in, LOGFMT_VALUE_MAX);
	out = encode_value(LOGFMT_KV, &f);
	assert_int_equal(strlen(out), LOGFMT_VALUE_MAX);
	assert_int_equal(out[0], 'a');
	/* one more: cut, quoted, "..." */
	check_cut(LOGFMT_KV, in, LOGFMT_VALUE_MAX + 1, LOGFMT_VALUE_MAX - 3);
	check_cut(LOGFMT_JSON, in, 3000, LOGFMT_VALUE_MAX - 3);

	/* escapes count at their encoded length: 4 (\xHH) or 6 (\u00HH) */
	memset(in, '\n', 600);
	check_cut(LOGFMT_KV, in, 600, (LOGFMT_VALUE_MAX - 3) / 4);
	check_cut(LOGFMT_JSON, in, 600, (LOGFMT_VALUE_MAX - 3) / 6);

	/* never inside a character: 1020 x then two euro signs */
	memset(in, 'x', 1020);
	memcpy(in + 1020, "\xe2\x82\xac\xe2\x82\xac", 6);
	check_cut(LOGFMT_KV, in, 1026, 1020);
	/* nor inside an escaped one: U+2028 is 12 bytes in KV */
	memset(in, 'x', 1010);
	memcpy(in + 1010, "\xe2\x80\xa8\xe2\x80\xa8", 6);
	check_cut(LOGFMT_KV, in, 1016, 1010);

	/* 1020 x and one euro: 1023 bytes with the quotes' content, whole */
	memset(in, 'x', 1020);
	memcpy(in + 1020, "\xe2\x82\xac", 3);
	f = str_field("k", in, 1023);
	out = encode_value(LOGFMT_KV, &f);
	assert_int_equal(strlen(out), 1025);
	assert_memory_equal(out + 1021, "\xe2\x82\xac\"", 4);
}

/* A field that does not fit is left out whole, with all after it. */
static void
test_output_full(void **state)
{
	char buf[32];
	struct logfmt_out o = {buf, 0, sizeof(buf), false};
	struct log_field fields[] = {
		LF_STR("a", "1"),
		LF_STR("b", "a value too long for the rest"),
		LF_STR("c", "2"),
		{.key = NULL},
	};

	(void)state;
	assert_false(logfmt_fields(&o, LOGFMT_KV, fields));
	assert_string_equal(buf, " a=1");
	assert_int_equal(o.len, 4);
}

/* ---- the decoders refuse what the encoder never writes ------------------- */

static void
test_decoders_strict(void **state)
{
	static const char *const bad_kv[] = {
		"k=v",		/* no leading space */
		" k=a b",	/* bare then a word without '=' */
		" k=\"a",	/* open quote */
		" k=\"a\\q\"",	/* unknown escape */
		" k=\"a\\x4\"", /* short escape */
		" k=\"a\nb\"",	/* raw LF */
		" k=",		/* empty bare value */
		" k=a=b",	/* '=' in a bare value */
		" =v",		/* empty key */
		" k=\"a\"b",	/* junk after the quote */
	};
	static const char *const bad_json[] = {
		"",		"{",	     "{\"k\":\"v\"",
		"{\"k\":\"v\"}x", "{\"k\":\"a\nb\"}", "{\"k\":\"\\q\"}",
		"{\"k\":\"\\ud800\"}", "{\"k\":-}", "{\"k\":\"\xff\"}",
		"{\"k\" :1}",
	};
	struct got g;

	(void)state;
	for (size_t i = 0; i < N(bad_kv); i++)
		if (logfmt_parse_kv(bad_kv[i], strlen(bad_kv[i]), collect,
				    &g) >= 0)
			fail_msg("kv decoder took %s", bad_kv[i]);
	for (size_t i = 0; i < N(bad_json); i++)
		if (logfmt_parse_json(bad_json[i], strlen(bad_json[i]),
				      collect, &g) >= 0)
			fail_msg("json decoder took %s", bad_json[i]);
}

/* ---- whole lines through log.c ------------------------------------------- */

static size_t
capture(enum log_format format, const struct log_field *fields, char *buf,
	size_t size)
{
	int p[2];
	ssize_t n;

	assert_int_equal(pipe(p), 0);
	log_init("test", format, LOG_INFO);
	log_set_fd(&p[1]);
	assert_int_equal(p[1], -1);
	log_emit(LOG_INFO, "smtp", "reject", fields);
	n = read(p[0], buf, size - 1);
	assert_true(n > 0);
	buf[n] = '\0';
	close(p[0]);
	p[1] = dup(2);		/* closes the pipe's write end */
	log_set_fd(&p[1]);
	return (size_t)n;
}

static void
test_log_line(void **state)
{
	static char line[8192], big[3000];
	struct got g;
	size_t n;

	(void)state;
	const struct log_field f1[] = {
		LF_STR("ip", "127.0.0.1"),
		LF_STR("from", "\"x event=accept ip=6.6.6.6\"@example.org"),
		{.key = NULL},
	};
	n = capture(LOG_FORMAT_KV, f1, line, sizeof(line));
	assert_int_equal(line[n - 1], '\n');
	assert_non_null(strstr(line, " level=info proc=test fac=smtp "
				     "event=reject ip=127.0.0.1 from=\"\\\""
				     "x event=accept ip=6.6.6.6\\\"@example"
				     ".org\"\n"));
	/* everything after the timestamp is fields */
	const char *sp = strchr(line, ' ');
	memset(&g, 0, sizeof(g));
	assert_int_equal(logfmt_parse_kv(sp, (size_t)(line + n - 1 - sp),
					 collect, &g),
			 6);
	assert_string_equal(g.key[5], "from");

	n = capture(LOG_FORMAT_JSON, f1, line, sizeof(line));
	assert_memory_equal(line, "{\"ts\":\"", 7);
	memset(&g, 0, sizeof(g));
	assert_int_equal(logfmt_parse_json(line, n - 1, collect, &g), 7);
	assert_string_equal(g.key[0], "ts");
	assert_string_equal(g.key[4], "event");
	assert_string_equal((char *)g.val[4], "reject");
	assert_string_equal((char *)g.val[5], "127.0.0.1");

	/* five values of the longest kind: the line stays one write of at
	 * most 4096 bytes, fields that do not fit are left out whole */
	memset(big, '\n', sizeof(big));
	const struct log_field f2[] = {
		LF_BYTES("a", big, sizeof(big)), LF_BYTES("b", big, sizeof(big)),
		LF_BYTES("c", big, sizeof(big)), LF_BYTES("d", big, sizeof(big)),
		LF_BYTES("e", big, sizeof(big)), {.key = NULL},
	};
	for (int fmt = LOG_FORMAT_KV; fmt <= LOG_FORMAT_JSON; fmt++) {
		n = capture(fmt, f2, line, sizeof(line));
		assert_true(n <= 4096);
		assert_int_equal(line[n - 1], '\n');
		assert_null(memchr(line, '\n', n - 1));
		memset(&g, 0, sizeof(g));
		if (fmt == LOG_FORMAT_JSON) {
			assert_true(logfmt_parse_json(line, n - 1, collect,
						      &g) > 0);
		} else {
			sp = strchr(line, ' ');
			assert_true(logfmt_parse_kv(sp,
						    (size_t)(line + n - 1 - sp),
						    collect, &g) > 0);
		}
		assert_string_equal(g.key[g.n - 1], "truncated");
		assert_string_equal((char *)g.val[g.n - 1], "yes");
		assert_string_equal(g.key[g.n - 2], "c");
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rows),
		cmocka_unit_test(test_rows_round_trip),
		cmocka_unit_test(test_no_raw_breaks),
		cmocka_unit_test(test_integers),
		cmocka_unit_test(test_bad_keys),
		cmocka_unit_test(test_skip_and_null),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_output_full),
		cmocka_unit_test(test_decoders_strict),
		cmocka_unit_test(test_log_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
