/* DATA/BDAT content parser: see smtp_data.h. */
#include <string.h>
#include <strings.h>

#include "mail/smtp_data.h"

enum {
	ST_LINE_START,	/* at the start of a line */
	ST_TEXT,	/* inside a line */
	ST_CR,		/* saw CR, want LF */
	ST_DOT,		/* DATA: a line started with '.' */
	ST_DOT_CR,	/* DATA: ".\r" at the start of a line */
};

void
smtp_data_init(struct smtp_data *d, enum smtp_data_mode mode, size_t max_line)
{
	memset(d, 0, sizeof(*d));
	d->mode = mode;
	d->state = ST_LINE_START;
	d->max_line = max_line;
	d->in_header = true;
}

static bool
prefix_is(const struct smtp_data *d, const char *name)
{
	size_t n = strlen(name);

	return d->line_len >= n && strncasecmp(d->prefix, name, n) == 0;
}

/* A line (without its CRLF) has ended. */
static void
end_of_line(struct smtp_data *d)
{
	if (d->in_header) {
		if (d->line_len == 0) {
			d->in_header = false;
			d->header_end = d->size;
		}
		else if (prefix_is(d, "received:"))
			d->received++;
		else if (prefix_is(d, "message-id:"))
			d->has_message_id = true;
		else if (prefix_is(d, "date:"))
			d->has_date = true;
	}
	/* +2 for the CRLF that ended it */
	if (d->line_len + 2 > d->max_line)
		d->long_line = true;
	d->line_len = 0;
	d->lines++;
	d->size++;
}

enum smtp_data_status
smtp_data_feed(struct smtp_data *d, const unsigned char *in, size_t len,
	       unsigned char *out, size_t *out_len_r, size_t *consumed_r)
{
	size_t i = 0, o = 0;

	while (i < len) {
		unsigned char c = in[i];

		switch (d->state) {
		case ST_TEXT: {
			/* fast path: copy up to the next CR or LF */
			const unsigned char *p = in + i;
			size_t n = len - i, k = 0;
			while (k < n && p[k] != '\r' && p[k] != '\n')
				k++;
			if (k > 0) {
				if (d->line_len < SMTP_DATA_PREFIX) {
					size_t room =
						SMTP_DATA_PREFIX - d->line_len;
					memcpy(d->prefix + d->line_len, p,
					       k < room ? k : room);
				}
				memcpy(out + o, p, k);
				o += k;
				d->line_len += k;
				d->size += k;
				i += k;
				continue;
			}
			if (c == '\n')
				goto bare;
			d->state = ST_CR;
			i++;
			break;
		}
		case ST_LINE_START:
			if (c == '.' && d->mode == SMTP_DATA_DOT) {
				d->state = ST_DOT;
				i++;
				break;
			}
			d->state = ST_TEXT;
			break;	/* reprocess c as text */
		case ST_DOT:
			if (c == '\r') {
				d->state = ST_DOT_CR;
				i++;
				break;
			}
			/* dot-stuffing: the leading dot is dropped */
			d->state = ST_TEXT;
			break;
		case ST_DOT_CR:
			if (c != '\n')
				goto bare;
			i++;
			*out_len_r = o;
			*consumed_r = i;
			d->state = ST_LINE_START;
			return SMTP_DATA_END;
		case ST_CR:
			if (c != '\n')
				goto bare;
			end_of_line(d);
			out[o++] = '\n';
			d->state = ST_LINE_START;
			i++;
			break;
		}
	}
	*out_len_r = o;
	*consumed_r = i;
	return SMTP_DATA_MORE;
bare:
	*out_len_r = o;
	*consumed_r = i;
	return SMTP_DATA_BARE_EOL;
}

enum smtp_data_status
smtp_data_finish(struct smtp_data *d, unsigned char *out, size_t *out_len_r)
{
	*out_len_r = 0;
	if (d->state == ST_CR)
		return SMTP_DATA_BARE_EOL;
	/* A BDAT message whose last line has no CRLF: store it with an LF so
	 * the file is well-formed; it counts as a line. */
	if (d->state == ST_TEXT && d->line_len > 0) {
		end_of_line(d);
		out[0] = '\n';
		*out_len_r = 1;
	}
	d->state = ST_LINE_START;
	return SMTP_DATA_MORE;
}
