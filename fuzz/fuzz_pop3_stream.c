/*
 * libFuzzer target for pop3_stream.c. The first two bytes of the input
 * give a split position, the third a TOP line count; the rest is a
 * stored message. It is sent as RETR whole, cut in two at the split, and
 * (when short) one octet at a time, and as TOP with that count and with
 * a count larger than any message. abort() when:
 *	- the ways of cutting the input disagree;
 *	- a call writes more than 2 * len octets (each output buffer is
 *	  exactly that big, so ASan sees a write past it as well);
 *	- the output holds a bare LF, or a line starting with '.' that is
 *	  not stuffed, or does not end in ".\r\n" after a line end;
 *	- the output, unstuffed and without ".\r\n", is not
 *	  pop3_size_end() octets long;
 *	- TOP with a huge count is not RETR, or TOP n is not a prefix of
 *	  RETR, or RETR differs from a slow reference written here.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/pop3_stream.h"

#define HUGE_TOP 4000000000UL

static void
check(bool ok)
{
	if (!ok)
		abort();
}

struct out {
	unsigned char *buf;	/* room for 2 * len + POP3_STREAM_END_MAX */
	size_t len;
};

/* One call, into a buffer of exactly 2 * n octets. */
static void
feed(struct pop3_stream *st, struct out *o, const unsigned char *in,
     size_t n, size_t *consumed_r)
{
	unsigned char *buf = malloc(2 * n + 1);
	bool was_done = pop3_stream_done(st);
	size_t w, used;

	check(buf != NULL);
	w = pop3_stream_run(st, in, n, buf, &used);
	check(w <= 2 * n && used <= n);
	check(used == n || pop3_stream_done(st));
	check(!was_done || (w == 0 && used == 0));
	memcpy(o->buf + o->len, buf, w);
	o->len += w;
	*consumed_r += used;
	free(buf);
}

/* in cut at split (and, when step > 0, into step-sized chunks). */
static size_t
transform(const unsigned char *in, size_t len, bool top, unsigned long n,
	  size_t split, size_t step, struct out *o)
{
	struct pop3_stream st;
	size_t pos, consumed = 0;

	o->len = 0;
	if (top)
		pop3_stream_init_top(&st, n);
	else
		pop3_stream_init(&st);
	if (step == 0) {
		feed(&st, o, in, split, &consumed);
		feed(&st, o, in + split, len - split, &consumed);
	} else {
		for (pos = 0; pos < len; pos += step)
			feed(&st, o, in + pos,
			     len - pos < step ? len - pos : step, &consumed);
	}
	check(top || consumed == len);
	o->len += pop3_stream_end(&st, o->buf + o->len);
	return consumed;
}

static bool
same(const struct out *a, const struct out *b)
{
	return a->len == b->len && memcmp(a->buf, b->buf, a->len) == 0;
}

/*
 * The shape of a response: CRLF line ends only, stuffed dots, and the
 * terminator after a line end. Returns the length of the message
 * unstuffed and without ".\r\n".
 */
static uint64_t
check_shape(const struct out *o)
{
	size_t i, body, dots = 0;

	check(o->len >= 3);
	body = o->len - 3;
	check(memcmp(o->buf + body, ".\r\n", 3) == 0);
	check(body == 0 || (body >= 2 && o->buf[body - 2] == '\r' &&
			    o->buf[body - 1] == '\n'));
	for (i = 0; i < body; i++) {
		if (o->buf[i] == '\n')
			check(i > 0 && o->buf[i - 1] == '\r');
		if (o->buf[i] == '.' && (i == 0 || o->buf[i - 1] == '\n')) {
			check(i + 1 < body && o->buf[i + 1] == '.');
			dots++;
		}
	}
	return body - dots;
}

/* RETR the slow and obvious way. */
static size_t
reference(const unsigned char *in, size_t len, unsigned char *out)
{
	size_t i, o = 0;

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

static uint64_t
size_of(const unsigned char *in, size_t len, size_t split)
{
	struct pop3_size sz;

	pop3_size_init(&sz);
	pop3_size_add(&sz, in, split);
	pop3_size_add(&sz, in + split, len - split);
	return pop3_size_end(&sz);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const unsigned char *in;
	struct out whole, cut, tiny, top, ref;
	size_t len, split, cap, used;
	unsigned long n;

	if (size < 3)
		return 0;
	in = data + 3;
	len = size - 3;
	split = ((size_t)data[0] | (size_t)data[1] << 8) % (len + 1);
	n = data[2];
	cap = 2 * len + POP3_STREAM_END_MAX;
	whole.buf = malloc(cap);
	cut.buf = malloc(cap);
	tiny.buf = malloc(cap);
	top.buf = malloc(cap);
	ref.buf = malloc(cap);
	check(whole.buf && cut.buf && tiny.buf && top.buf && ref.buf);

	/* RETR, however cut, is the reference, and its size is announced */
	transform(in, len, false, 0, len, 0, &whole);
	transform(in, len, false, 0, split, 0, &cut);
	check(same(&whole, &cut));
	if (len <= 512) {
		transform(in, len, false, 0, 0, 1, &tiny);
		check(same(&whole, &tiny));
	}
	ref.len = reference(in, len, ref.buf);
	check(same(&whole, &ref));
	check(check_shape(&whole) == size_of(in, len, split));
	check(size_of(in, len, 0) == size_of(in, len, len));

	/* TOP with more lines than any message holds is RETR */
	used = transform(in, len, true, HUGE_TOP, split, 0, &top);
	check(used == len && same(&whole, &top));

	/* TOP n: the same however cut, and the start of RETR */
	used = transform(in, len, true, n, len, 0, &top);
	transform(in, len, true, n, split, 0, &cut);
	check(same(&top, &cut));
	(void)check_shape(&top);
	check(top.len <= whole.len &&
	      memcmp(top.buf, whole.buf, top.len - 3) == 0);
	check(used == len || (used > 0 && in[used - 1] == '\n'));
	check(used < len || same(&top, &whole));

	free(whole.buf);
	free(cut.buf);
	free(tiny.buf);
	free(top.buf);
	free(ref.buf);
	return 0;
}
