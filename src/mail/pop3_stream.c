/*
 * A stored message turned into what RETR and TOP send (see pop3_stream.h):
 * CRLF line ends and dot-stuffing, chunk by chunk, and the size that
 * LIST and STAT announce for it. Pure: no I/O, no allocation.
 *
 * The transform only ever needs one octet of look-behind (was the octet
 * before this LF a CR?) and where the line started, so the state is a
 * few flags and any split of the input gives the same output.
 */
#include <string.h>

#include "mail/pop3_stream.h"

void
pop3_stream_init(struct pop3_stream *st)
{
	memset(st, 0, sizeof(*st));
	st->bol = true;
}

void
pop3_stream_init_top(struct pop3_stream *st, unsigned long lines)
{
	pop3_stream_init(st);
	st->limited = true;
	st->lines_left = lines;
}

void
pop3_stream_init_raw(struct pop3_stream *st)
{
	pop3_stream_init(st);
	st->raw = true;
}

bool
pop3_stream_done(const struct pop3_stream *st)
{
	return st->done;
}

/* A line ended (its LF was just written): count it for TOP. */
static void
line_end(struct pop3_stream *st, bool empty)
{
	if (!st->limited)
		return;
	if (!st->in_body) {
		if (!empty)
			return;
		st->in_body = true;
	} else {
		st->lines_left--;
	}
	if (st->lines_left == 0)
		st->done = true;
}

size_t
pop3_stream_run(struct pop3_stream *st, const unsigned char *in, size_t len,
		unsigned char *out, size_t *consumed_r)
{
	const unsigned char *lf;
	size_t i = 0, o = 0, n;

	while (i < len && !st->done) {
		if (in[i] == '\n') {
			bool empty = st->bol || st->cr_only;

			if (!st->cr)
				out[o++] = '\r';
			out[o++] = '\n';
			i++;
			st->bol = true;
			st->cr = st->cr_only = false;
			line_end(st, empty);
			continue;
		}
		/* Up to the next LF everything is copied as it is. */
		if (st->bol && in[i] == '.' && !st->raw)
			out[o++] = '.';
		lf = memchr(in + i, '\n', len - i);
		n = lf != NULL ? (size_t)(lf - (in + i)) : len - i;
		memcpy(out + o, in + i, n);
		st->cr_only = st->bol && n == 1 && in[i] == '\r';
		st->bol = false;
		st->cr = in[i + n - 1] == '\r';
		o += n;
		i += n;
	}
	*consumed_r = i;
	return o;
}

size_t
pop3_stream_end(struct pop3_stream *st, unsigned char *out)
{
	size_t o = 0;

	if (!st->bol) {
		out[o++] = '\r';
		out[o++] = '\n';
		st->bol = true;
		st->cr = st->cr_only = false;
	}
	if (st->raw)
		return o;
	memcpy(out + o, ".\r\n", 3);
	return o + 3;
}

void
pop3_size_init(struct pop3_size *sz)
{
	sz->size = 0;
	sz->cr = false;
	sz->bol = true;
}

/* Every octet counts once, and every LF without its CR once more. */
void
pop3_size_add(struct pop3_size *sz, const unsigned char *in, size_t len)
{
	const unsigned char *p = in, *end = in + len;
	bool cr = sz->cr;

	if (len == 0)
		return;
	sz->size += len;
	while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		if (!(p == in ? cr : p[-1] == '\r'))
			sz->size++;
		p++;
	}
	sz->cr = in[len - 1] == '\r';
	sz->bol = in[len - 1] == '\n';
}

uint64_t
pop3_size_end(const struct pop3_size *sz)
{
	return sz->size + (sz->bol ? 0 : 2);
}
