/*
 * mboxrd reading and writing: see mbox.h.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "mail/mbox.h"

enum { ST_PREFIX, ST_BODY, ST_FROM };

static const char from_[] = "From ";
static const char gts[64] = ">>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>";

typedef int (*emit_fn)(void *arg, const void *p, size_t n);

static int
emit_gt(emit_fn out, void *arg, uint64_t n)
{
	while (n > 0) {
		size_t k = n < sizeof(gts) ? (size_t)n : sizeof(gts);
		if (out(arg, gts, k) < 0)
			return -1;
		n -= k;
	}
	return 0;
}

/* ---- reading -------------------------------------------------------- */

void
mbox_reader_init(struct mbox_reader *r, const struct mbox_sink *sink,
		 void *arg)
{
	memset(r, 0, sizeof(*r));
	r->sink = sink;
	r->arg = arg;
	r->state = ST_PREFIX;
}

static int
rd_data(struct mbox_reader *r, const void *p, size_t n)
{
	if (!r->in_msg) {
		r->error = "no From_ line at the start";
		return -1;
	}
	if (r->held_blank) {
		r->held_blank = false;
		if (r->sink->data(r->arg, "\n", 1) < 0)
			return -1;
	}
	return n > 0 ? r->sink->data(r->arg, p, n) : 0;
}

static int
rd_end(struct mbox_reader *r)
{
	r->held_blank = false;	/* the separator */
	if (!r->in_msg)
		return 0;
	r->in_msg = false;
	return r->sink->end(r->arg);
}

static int
rd_from_done(struct mbox_reader *r)
{
	char sender[MBOX_SENDER_MAX + 1];
	int64_t t;

	if (rd_end(r) < 0)
		return -1;
	mbox_from_parse(r->from, r->flen, sender, &t);
	r->in_msg = true;
	r->messages++;
	r->flen = 0;
	return r->sink->begin(r->arg, sender, t);
}

/* The line's start was not a From_ line: what was held back, then c. */
static int
rd_prefix_out(struct mbox_reader *r, uint64_t gt, const char *c, size_t n)
{
	if (rd_data(r, NULL, 0) < 0 ||
	    (gt > 0 && emit_gt(r->sink->data, r->arg, gt) < 0) ||
	    (r->matched > 0 && r->sink->data(r->arg, from_, r->matched) < 0) ||
	    (n > 0 && r->sink->data(r->arg, c, n) < 0))
		return -1;
	return 0;
}

/* One octet at a line's start (ST_PREFIX). */
static int
rd_prefix(struct mbox_reader *r, char c)
{
	if (c == '>' && r->matched == 0) {
		r->gt++;
		return 0;
	}
	if (c == from_[r->matched]) {
		if (++r->matched < 5)
			return 0;
		r->state = r->gt == 0 ? ST_FROM : ST_BODY;
		if (r->gt == 0)
			return 0;
		/* ">From " quoted: one '>' less */
		r->matched = 0;
		if (rd_data(r, NULL, 0) < 0 ||
		    emit_gt(r->sink->data, r->arg, r->gt - 1) < 0)
			return -1;
		return r->sink->data(r->arg, from_, 5);
	}
	if (c == '\n' && r->gt == 0 && r->matched == 0) {
		/* an empty line: held, it may be the separator */
		if (r->held_blank && rd_data(r, NULL, 0) < 0)
			return -1;
		if (!r->in_msg) {
			r->error = "no From_ line at the start";
			return -1;
		}
		r->held_blank = true;
		return 0;
	}
	r->state = c == '\n' ? ST_PREFIX : ST_BODY;
	if (rd_prefix_out(r, r->gt, &c, 1) < 0)
		return -1;
	r->gt = 0;
	r->matched = 0;
	return 0;
}

int
mbox_read(struct mbox_reader *r, const void *buf, size_t n)
{
	const char *p = buf, *end;

	if (n == 0)
		return 0;
	end = p + n;
	while (p < end) {
		if (r->state == ST_BODY) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			const char *stop = nl != NULL ? nl + 1 : end;
			if (rd_data(r, p, (size_t)(stop - p)) < 0)
				return -1;
			p = stop;
			if (nl != NULL) {
				r->state = ST_PREFIX;
				r->gt = 0;
				r->matched = 0;
			}
		} else if (r->state == ST_FROM) {
			if (*p == '\n') {
				r->state = ST_PREFIX;
				r->gt = 0;
				r->matched = 0;
				if (rd_from_done(r) < 0)
					return -1;
			} else if (r->flen < MBOX_FROM_MAX)
				r->from[r->flen++] = *p;
			p++;
		} else if (rd_prefix(r, *p++) < 0)
			return -1;
	}
	return 0;
}

int
mbox_finish(struct mbox_reader *r)
{
	if (r->state == ST_FROM) {
		if (rd_from_done(r) < 0)
			return -1;
	} else if (r->state == ST_PREFIX && (r->gt > 0 || r->matched > 0)) {
		if (rd_prefix_out(r, r->gt, NULL, 0) < 0)
			return -1;
	}
	r->state = ST_PREFIX;
	r->gt = 0;
	r->matched = 0;
	return rd_end(r);
}

/* ---- From_ lines ---------------------------------------------------- */

static const char *const wdays[] = {"Sun", "Mon", "Tue", "Wed", "Thu",
				    "Fri", "Sat"};
static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May",
				     "Jun", "Jul", "Aug", "Sep", "Oct",
				     "Nov", "Dec"};

static int64_t
parse_date(const char *s)
{
	char wd[4], mon[4];
	int day, hh, mm, ss, year, m = -1;
	struct tm tm = {0};

	if (sscanf(s, "%3s %3s %d %d:%d:%d %d", wd, mon, &day, &hh, &mm, &ss,
		   &year) != 7)
		return 0;
	for (int i = 0; i < 12; i++)
		if (strcmp(mon, months[i]) == 0)
			m = i;
	if (m < 0 || day < 1 || day > 31 || hh < 0 || hh > 23 || mm < 0 ||
	    mm > 59 || ss < 0 || ss > 60 || year < 1970 || year > 9999)
		return 0;
	tm.tm_year = year - 1900;
	tm.tm_mon = m;
	tm.tm_mday = day;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	return (int64_t)timegm(&tm);
}

void
mbox_from_parse(const char *rest, size_t len, char *sender, int64_t *t_r)
{
	char line[MBOX_FROM_MAX + 1];
	size_t i = 0, k;

	*t_r = 0;
	sender[0] = '\0';
	if (len > MBOX_FROM_MAX)
		len = MBOX_FROM_MAX;
	for (k = 0; k < len; k++)	/* no NUL inside: C strings below */
		line[k] = rest[k] == '\0' ? ' ' : rest[k];
	line[len] = '\0';
	if (len > 0 && line[len - 1] == '\r')
		line[--len] = '\0';
	while (line[i] == ' ')
		i++;
	k = strcspn(line + i, " \t");
	if (k <= MBOX_SENDER_MAX) {
		memcpy(sender, line + i, k);
		sender[k] = '\0';
	}
	i += k;
	while (line[i] == ' ' || line[i] == '\t')
		i++;
	*t_r = parse_date(line + i);
}

size_t
mbox_from_format(char *buf, size_t size, const char *sender, int64_t t)
{
	char clean[MBOX_SENDER_MAX + 1];
	size_t n = 0;
	struct tm tm;
	time_t tt = (time_t)t;
	int len;

	for (const unsigned char *p = (const unsigned char *)sender;
	     *p != '\0' && n < MBOX_SENDER_MAX; p++)
		if (*p > 0x20 && *p != 0x7f)
			clean[n++] = (char)*p;
	clean[n] = '\0';
	if (gmtime_r(&tt, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	len = snprintf(buf, size, "From %s %s %s %2d %02d:%02d:%02d %d\n",
		       n > 0 ? clean : "MAILER-DAEMON",
		       wdays[tm.tm_wday % 7], months[tm.tm_mon % 12],
		       tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		       tm.tm_year + 1900);
	if (len < 0)
		return 0;
	return (size_t)len < size ? (size_t)len : size - 1;
}

/* ---- writing -------------------------------------------------------- */

void
mbox_writer_init(struct mbox_writer *w,
		 int (*out)(void *arg, const void *p, size_t n), void *arg)
{
	memset(w, 0, sizeof(*w));
	w->out = out;
	w->arg = arg;
	w->state = ST_PREFIX;
	w->at_line_start = true;
	w->empty = true;
}

static int
wr_flush_prefix(struct mbox_writer *w)
{
	if (emit_gt(w->out, w->arg, w->gt) < 0 ||
	    (w->matched > 0 && w->out(w->arg, from_, w->matched) < 0))
		return -1;
	w->gt = 0;
	w->matched = 0;
	return 0;
}

static int
wr_prefix(struct mbox_writer *w, char c)
{
	if (c == '>' && w->matched == 0) {
		w->gt++;
		return 0;
	}
	if (c == from_[w->matched]) {
		if (++w->matched < 5)
			return 0;
		w->state = ST_BODY;
		w->matched = 0;
		if (w->out(w->arg, ">", 1) < 0 || emit_gt(w->out, w->arg, w->gt) < 0)
			return -1;
		w->gt = 0;
		return w->out(w->arg, from_, 5);
	}
	w->state = c == '\n' ? ST_PREFIX : ST_BODY;
	if (wr_flush_prefix(w) < 0)
		return -1;
	return w->out(w->arg, &c, 1);
}

int
mbox_write(struct mbox_writer *w, const void *buf, size_t n)
{
	const char *p = buf, *end;

	if (n == 0)
		return 0;
	end = p + n;
	w->empty = false;
	while (p < end) {
		if (w->state == ST_BODY) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			const char *stop = nl != NULL ? nl + 1 : end;
			if (w->out(w->arg, p, (size_t)(stop - p)) < 0)
				return -1;
			p = stop;
			if (nl != NULL)
				w->state = ST_PREFIX;
			w->at_line_start = nl != NULL;
		} else {
			char c = *p++;
			if (wr_prefix(w, c) < 0)
				return -1;
			w->at_line_start = c == '\n';
		}
	}
	return 0;
}

int
mbox_write_end(struct mbox_writer *w)
{
	bool line_start = w->at_line_start && w->gt == 0 && w->matched == 0;

	if (wr_flush_prefix(w) < 0)
		return -1;
	if (!line_start && !w->empty && w->out(w->arg, "\n", 1) < 0)
		return -1;
	w->state = ST_PREFIX;
	w->at_line_start = true;
	w->empty = true;
	return w->out(w->arg, "\n", 1);
}
