/*
 * Byte-exact tests for the RETR/TOP transform and the size count
 * (pop3_stream.c). Every row is run through every way of cutting its
 * input into chunks, and the size is checked against the transform's
 * output for every row.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "mail/pop3_stream.h"

#define NO_TOP ((unsigned long)-1)	/* RETR */
#define BIG_OUT 8192

struct stream_case {
	const char *name;
	const char *in;
	size_t len;		/* 0: strlen(in) */
	unsigned long top;	/* NO_TOP: RETR; else TOP's line count */
	const char *out;	/* the whole response after "+OK" */
	size_t olen;		/* 0: strlen(out) */
	size_t consumed;	/* TOP: octets read before done; 0: all */
};

static const struct stream_case cases[] = {
	{"empty file", "", 0, NO_TOP, ".\r\n"},
	{"LF to CRLF", "a\nb\n", 0, NO_TOP, "a\r\nb\r\n.\r\n"},
	{"CRLF kept", "a\r\nb\r\n", 0, NO_TOP, "a\r\nb\r\n.\r\n"},
	{"mixed line ends", "a\r\nb\nc\r\n", 0, NO_TOP,
	 "a\r\nb\r\nc\r\n.\r\n"},
	{"bare CR kept", "a\rb\n", 0, NO_TOP, "a\rb\r\n.\r\n"},
	{"CR CR LF", "a\r\r\n", 0, NO_TOP, "a\r\r\n.\r\n"},
	{"LF CR", "a\n\rb\n", 0, NO_TOP, "a\r\n\rb\r\n.\r\n"},
	{"only LF", "\n", 0, NO_TOP, "\r\n.\r\n"},
	{"only CRLF", "\r\n", 0, NO_TOP, "\r\n.\r\n"},
	{"only CR", "\r", 0, NO_TOP, "\r\r\n.\r\n"},
	{"empty lines", "\n\n\r\n\n", 0, NO_TOP,
	 "\r\n\r\n\r\n\r\n.\r\n"},
	{"unterminated", "abc", 0, NO_TOP, "abc\r\n.\r\n"},
	{"unterminated after lines", "a\nbc", 0, NO_TOP,
	 "a\r\nbc\r\n.\r\n"},
	{"ends in bare CR", "a\nb\r", 0, NO_TOP, "a\r\nb\r\r\n.\r\n"},
	{"dot first line", ".a\n", 0, NO_TOP, "..a\r\n.\r\n"},
	{"dot every line", ".a\n.b\r\n.c\n", 0, NO_TOP,
	 "..a\r\n..b\r\n..c\r\n.\r\n"},
	{"lone dot line", "a\n.\nb\n", 0, NO_TOP, "a\r\n..\r\nb\r\n.\r\n"},
	{"lone dot CRLF", "a\r\n.\r\nb\r\n", 0, NO_TOP,
	 "a\r\n..\r\nb\r\n.\r\n"},
	{"lone dot first", ".\n", 0, NO_TOP, "..\r\n.\r\n"},
	{"lone dot unterminated", "a\n.", 0, NO_TOP, "a\r\n..\r\n.\r\n"},
	{"only a dot", ".", 0, NO_TOP, "..\r\n.\r\n"},
	{"two dots", "..\n", 0, NO_TOP, "...\r\n.\r\n"},
	{"three dots CRLF", "...\r\n", 0, NO_TOP, "....\r\n.\r\n"},
	{"dot not first", "a.\n a\n", 0, NO_TOP, "a.\r\n a\r\n.\r\n"},
	{"dot after bare CR", "\r.\n", 0, NO_TOP, "\r.\r\n.\r\n"},
	{"dot after CR LF CR", "a\r\n\r.\n", 0, NO_TOP,
	 "a\r\n\r.\r\n.\r\n"},
	{"dot dot dot lines", ".\n.\n.\n", 0, NO_TOP,
	 "..\r\n..\r\n..\r\n.\r\n"},
	{"NUL passes", "a\0b\n", 4, NO_TOP, "a\0b\r\n.\r\n", 8},
	{"8-bit passes", "\xc3\xa9\xff\n", 0, NO_TOP, "\xc3\xa9\xff\r\n.\r\n"},
	{"smuggling attempt", "a\n.\r\nQUIT\r\n", 0, NO_TOP,
	 "a\r\n..\r\nQUIT\r\n.\r\n"},
	{"bare LF dot bare LF", "a\r\n\n.\n", 0, NO_TOP,
	 "a\r\n\r\n..\r\n.\r\n"},

	/* TOP */
	{"TOP 0", "A: 1\nB: 2\n\nl1\nl2\nl3\n", 0, 0,
	 "A: 1\r\nB: 2\r\n\r\n.\r\n", 0, 11},
	{"TOP 1", "A: 1\nB: 2\n\nl1\nl2\nl3\n", 0, 1,
	 "A: 1\r\nB: 2\r\n\r\nl1\r\n.\r\n", 0, 14},
	{"TOP 2", "A: 1\nB: 2\n\nl1\nl2\nl3\n", 0, 2,
	 "A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\n.\r\n", 0, 17},
	{"TOP n = lines", "A: 1\nB: 2\n\nl1\nl2\nl3\n", 0, 3,
	 "A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\nl3\r\n.\r\n", 0, 20},
	{"TOP n > lines", "A: 1\nB: 2\n\nl1\nl2\nl3\n", 0, 4,
	 "A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\nl3\r\n.\r\n"},
	{"TOP huge", "A: 1\nB: 2\n\nl1\nl2\nl3\n", 0, 4000000000UL,
	 "A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\nl3\r\n.\r\n"},
	{"TOP no blank line", "A: 1\nB: 2\n", 0, 0,
	 "A: 1\r\nB: 2\r\n.\r\n"},
	{"TOP no blank line unterminated", "A: 1\nB: 2", 0, 1,
	 "A: 1\r\nB: 2\r\n.\r\n"},
	{"TOP CRLF CRLF", "A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\n", 0, 1,
	 "A: 1\r\nB: 2\r\n\r\nl1\r\n.\r\n", 0, 18},
	{"TOP CRLF CRLF 0", "A: 1\r\n\r\nl1\r\n", 0, 0,
	 "A: 1\r\n\r\n.\r\n", 0, 8},
	{"TOP header only CRLF CRLF", "A: 1\r\n\r\n", 0, 3,
	 "A: 1\r\n\r\n.\r\n"},
	{"TOP LF then CRLF blank", "A: 1\n\r\nl1\n", 0, 0,
	 "A: 1\r\n\r\n.\r\n", 0, 7},
	{"TOP unterminated body", "A\n\nl1\nl2", 0, 1,
	 "A\r\n\r\nl1\r\n.\r\n", 0, 6},
	{"TOP unterminated last line", "A\n\nl1\nl2", 0, 2,
	 "A\r\n\r\nl1\r\nl2\r\n.\r\n"},
	{"TOP CR x is not blank", "A\n\rx\n\nb\n", 0, 0,
	 "A\r\n\rx\r\n\r\n.\r\n", 0, 6},
	{"TOP CR CR LF is not blank", "A\r\r\n\r\nb\n", 0, 0,
	 "A\r\r\n\r\n.\r\n", 0, 6},
	{"TOP empty header", "\nbody\n", 0, 0, "\r\n.\r\n", 0, 1},
	{"TOP empty header CRLF", "\r\nbody\r\n", 0, 1,
	 "\r\nbody\r\n.\r\n", 0, 8},
	{"TOP stuffs body", "A\n\n.x\n..\n.\n", 0, 2,
	 "A\r\n\r\n..x\r\n...\r\n.\r\n", 0, 9},
	{"TOP stuffs header", ".A\n\nb\n", 0, 0, "..A\r\n\r\n.\r\n", 0, 4},
	{"TOP empty body lines count", "A\n\n\n\nx\n", 0, 2,
	 "A\r\n\r\n\r\n\r\n.\r\n", 0, 5},
	{"TOP empty file", "", 0, 5, ".\r\n"},
	{"TOP empty file 0", "", 0, 0, ".\r\n"},
	{"TOP bare CR in body line", "A\n\na\rb\nc\n", 0, 1,
	 "A\r\n\r\na\rb\r\n.\r\n", 0, 7},
};

static size_t
in_len(const struct stream_case *t)
{
	return t->len != 0 ? t->len : strlen(t->in);
}

static size_t
out_len(const struct stream_case *t)
{
	return t->olen != 0 ? t->olen : strlen(t->out);
}

/* ---- a chunked run --------------------------------------------------- */

struct run {
	unsigned char out[BIG_OUT];
	size_t olen;
	size_t consumed;
	bool done;
};

static void
init_stream(struct pop3_stream *st, unsigned long top)
{
	if (top == NO_TOP)
		pop3_stream_init(st);
	else
		pop3_stream_init_top(st, top);
}

/*
 * Feeds one chunk, into a buffer of exactly 2 * n octets (ASan catches
 * any write past it). After TOP's limit nothing more may be consumed.
 */
static void
feed(struct pop3_stream *st, struct run *r, const unsigned char *in,
     size_t n)
{
	unsigned char *buf = malloc(2 * n + 1);
	size_t o, used = 12345;

	assert_non_null(buf);
	o = pop3_stream_run(st, in, n, buf, &used);
	assert_true(o <= 2 * n);
	assert_true(used <= n);
	if (r->done) {
		assert_int_equal(o, 0);
		assert_int_equal(used, 0);
	}
	if (used < n)
		assert_true(pop3_stream_done(st));
	assert_true(r->olen + o + POP3_STREAM_END_MAX <= BIG_OUT);
	memcpy(r->out + r->olen, buf, o);
	r->olen += o;
	r->consumed += used;
	r->done = pop3_stream_done(st);
	free(buf);
}

static void
finish(struct pop3_stream *st, struct run *r)
{
	unsigned char end[POP3_STREAM_END_MAX];
	size_t n = pop3_stream_end(st, end);

	assert_true(n == 3 || n == 5);
	memcpy(r->out + r->olen, end, n);
	r->olen += n;
}

/* Runs in cut at the ascending offsets cuts[0..ncuts). */
static void
run_cuts(const unsigned char *in, size_t len, unsigned long top,
	 const size_t *cuts, size_t ncuts, struct run *r)
{
	struct pop3_stream st;
	size_t k, from = 0;

	memset(r, 0, sizeof(*r));
	init_stream(&st, top);
	for (k = 0; k <= ncuts; k++) {
		size_t to = k < ncuts ? cuts[k] : len;

		feed(&st, r, in + from, to - from);
		from = to;
	}
	finish(&st, r);
}

static void
run_step(const unsigned char *in, size_t len, unsigned long top,
	 size_t step, struct run *r)
{
	struct pop3_stream st;
	size_t pos;

	memset(r, 0, sizeof(*r));
	init_stream(&st, top);
	for (pos = 0; pos < len; pos += step)
		feed(&st, r, in + pos, len - pos < step ? len - pos : step);
	finish(&st, r);
}

static void
same_run(const struct run *a, const struct run *b, const char *name,
	 const char *how)
{
	if (a->olen != b->olen || memcmp(a->out, b->out, a->olen) != 0 ||
	    a->consumed != b->consumed || a->done != b->done)
		fail_msg("%s: %s gives another result", name, how);
}

/* A small deterministic generator, so failures can be replayed. */
static uint32_t rng_state = 2463534242u;

static uint32_t
rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

static int
cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * The output must not depend on how the input is cut: single octets,
 * every fixed step, every cut into two and three pieces, and random cuts
 * into up to eight.
 */
static void
check_chunking(const unsigned char *in, size_t len, unsigned long top,
	       const struct run *whole, const char *name)
{
	static struct run runs;
	struct run *r = &runs;
	size_t cuts[8], i, j, k, n;

	for (i = 1; i <= len; i++) {
		run_step(in, len, top, i, r);
		same_run(whole, r, name, "a fixed step");
	}
	for (i = 0; i <= len; i++) {
		cuts[0] = i;
		run_cuts(in, len, top, cuts, 1, r);
		same_run(whole, r, name, "a cut in two");
		for (j = i; j <= len && len <= 64; j++) {
			cuts[1] = j;
			run_cuts(in, len, top, cuts, 2, r);
			same_run(whole, r, name, "a cut in three");
		}
	}
	for (k = 0; k < 200; k++) {
		n = rng() % 8;
		for (i = 0; i < n; i++)
			cuts[i] = rng() % (len + 1);
		qsort(cuts, n, sizeof(cuts[0]), cmp_size);
		run_cuts(in, len, top, cuts, n, r);
		same_run(whole, r, name, "random cuts");
	}
}

/* ---- the size count -------------------------------------------------- */

/* The stuffing dots RETR adds: a '.' at the start of a line. */
static size_t
count_stuffing(const unsigned char *in, size_t len)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++)
		if (in[i] == '.' && (i == 0 || in[i - 1] == '\n'))
			n++;
	return n;
}

static uint64_t
size_step(const unsigned char *in, size_t len, size_t step)
{
	struct pop3_size sz;
	size_t pos;

	pop3_size_init(&sz);
	pop3_size_add(&sz, in, 0);
	for (pos = 0; pos < len; pos += step)
		pop3_size_add(&sz, in + pos, len - pos < step ? len - pos : step);
	return pop3_size_end(&sz);
}

/*
 * What LIST announces is what RETR sends minus the stuffing and the
 * ".\r\n", whatever the chunking of the count.
 */
static void
check_size(const unsigned char *in, size_t len, const char *name)
{
	static struct run runs;
	struct run *r = &runs;
	uint64_t want;
	size_t step;

	run_step(in, len, NO_TOP, len + 1, r);
	assert_true(r->olen >= 3 + count_stuffing(in, len));
	want = r->olen - count_stuffing(in, len) - 3;
	for (step = 1; step <= len + 1; step++)
		if (size_step(in, len, step) != want)
			fail_msg("%s: size %llu in steps of %zu, want %llu",
				 name,
				 (unsigned long long)size_step(in, len, step),
				 step, (unsigned long long)want);
}

/* ---- the table ------------------------------------------------------- */

static void
test_table(void **state)
{
	static struct run runs;
	struct run *whole = &runs;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct stream_case *t = &cases[i];
		const unsigned char *in = (const unsigned char *)t->in;
		size_t len = in_len(t);

		run_step(in, len, t->top, len + 1, whole);
		if (whole->olen != out_len(t) ||
		    memcmp(whole->out, t->out, whole->olen) != 0)
			fail_msg("%s: output differs (%zu octets, want %zu)",
				 t->name, whole->olen, out_len(t));
		if (whole->consumed != (t->consumed != 0 ? t->consumed : len))
			fail_msg("%s: consumed %zu", t->name,
				 whole->consumed);
		assert_int_equal(whole->done, t->consumed != 0);
		check_chunking(in, len, t->top, whole, t->name);
		check_size(in, len, t->name);
	}
}

/* The sizes of a few rows spelled out, so the count is not only relative. */
static void
test_size_values(void **state)
{
	static const struct {
		const char *in;
		uint64_t size;
	} rows[] = {
		{"", 0},
		{"a", 3},
		{"a\n", 3},
		{"a\r\n", 3},
		{"a\r", 4},
		{".\n", 3},
		{"a\nb", 6},
		{"\n\n", 4},
		{"\r\r\n", 3},
		{"a\rb\n", 5},
	};
	size_t i, len;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		len = strlen(rows[i].in);
		assert_int_equal(size_step((const unsigned char *)rows[i].in,
					   len, len + 1),
				 rows[i].size);
		check_size((const unsigned char *)rows[i].in, len, rows[i].in);
	}
}

/* ---- against a model ------------------------------------------------- */

/*
 * The transform written the slow and obvious way over the whole input:
 * the reference the streaming code is compared with on random messages.
 */
static size_t
model(const unsigned char *in, size_t len, unsigned long top,
      unsigned char *out)
{
	size_t i, o = 0, start;
	bool in_body = false;
	unsigned long left = top;

	if (top != NO_TOP) {
		/* cut len after the header and top body lines */
		for (start = 0, i = 0; i < len; i++) {
			if (in[i] != '\n')
				continue;
			if (in_body)
				left--;
			else if (i == start ||
				 (i == start + 1 && in[start] == '\r'))
				in_body = true;
			start = i + 1;
			if (in_body && left == 0) {
				len = i + 1;
				break;
			}
		}
	}
	for (i = 0; i < len; i++) {
		if (in[i] == '.' && (i == 0 || in[i - 1] == '\n'))
			out[o++] = '.';
		if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
			out[o++] = '\r';
		out[o++] = in[i];
	}
	if (len > 0 && in[len - 1] != '\n') {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	memcpy(out + o, ".\r\n", 3);
	return o + 3;
}

static void
test_random_messages(void **state)
{
	static const unsigned char alphabet[] = "a.\r\n\n:";
	static unsigned char want[BIG_OUT];
	static struct run runs;
	struct run *whole = &runs;
	unsigned char in[300];
	unsigned long top;
	size_t k, i, len, wlen;

	(void)state;
	for (k = 0; k < 400; k++) {
		len = rng() % (k < 300 ? 24 : sizeof(in));
		for (i = 0; i < len; i++)
			in[i] = alphabet[rng() % (sizeof(alphabet) - 1)];
		top = k % 3 == 0 ? NO_TOP : rng() % 6;
		wlen = model(in, len, top, want);
		run_step(in, len, top, len + 1, whole);
		if (whole->olen != wlen || memcmp(whole->out, want, wlen) != 0)
			fail_msg("random message %zu differs from the model",
				 k);
		check_chunking(in, len, top, whole, "random message");
		check_size(in, len, "random message");
	}
}

/* A larger message in buffer-sized chunks, as the session reads it. */
static void
test_large(void **state)
{
	static const char line[] = "Line of text.\n.dot\r\n\r\n";
	size_t len = 64 * 1024, i, olen = 0, used, total = 0, stuff = 0;
	unsigned char *in = malloc(len), *out = malloc(2 * len + 5);
	struct pop3_stream st;
	struct pop3_size sz;

	(void)state;
	assert_non_null(in);
	assert_non_null(out);
	for (i = 0; i < len; i++)
		in[i] = (unsigned char)line[i % (sizeof(line) - 1)];
	pop3_stream_init(&st);
	pop3_size_init(&sz);
	for (i = 0; i < len; i += 4096) {
		olen += pop3_stream_run(&st, in + i, 4096, out + olen, &used);
		total += used;
		pop3_size_add(&sz, in + i, 4096);
	}
	olen += pop3_stream_end(&st, out + olen);
	assert_int_equal(total, len);
	stuff = count_stuffing(in, len);
	assert_true(stuff > 0);
	assert_int_equal(pop3_size_end(&sz), olen - stuff - 3);
	assert_memory_equal(out + olen - 5, "\r\n.\r\n", 5);
	free(in);
	free(out);
}

/* Raw mode (BDAT): line ends only, no stuffing, no terminator; every
 * split of the input gives the same output. */
static void
test_raw(void **state)
{
	static const struct {
		const char *in, *out;
	} rows[] = {
		{"", ""},
		{"a\n", "a\r\n"},
		{".a\n.\n", ".a\r\n.\r\n"},
		{"a\r\nb", "a\r\nb\r\n"},
		{"a\r", "a\r\r\n"},
		{"..\n\n", "..\r\n\r\n"},
	};
	unsigned char out[64], end[POP3_STREAM_END_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		size_t len = strlen(rows[i].in);

		for (size_t cut = 0; cut <= len; cut++) {
			struct pop3_stream st;
			size_t o, used, n;

			pop3_stream_init_raw(&st);
			o = pop3_stream_run(&st, (const unsigned char *)rows[i].in,
					    cut, out, &used);
			assert_int_equal(used, cut);
			o += pop3_stream_run(&st,
					     (const unsigned char *)rows[i].in +
						     cut,
					     len - cut, out + o, &used);
			n = pop3_stream_end(&st, end);
			assert_true(n <= 2);
			memcpy(out + o, end, n);
			o += n;
			assert_int_equal(o, strlen(rows[i].out));
			assert_memory_equal(out, rows[i].out, o);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_size_values),
		cmocka_unit_test(test_random_messages),
		cmocka_unit_test(test_large),
		cmocka_unit_test(test_raw),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
