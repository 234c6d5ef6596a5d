/*
 * libFuzzer target for mail/mbox.c. The input is an mbox. Checked, with
 * abort() on a violation: reading it whole and in two pieces (split where
 * the first octet says) gives the same messages; writing those messages
 * (mbox_writer, From_ lines from mbox_from_format) and reading them back
 * gives each one again, octet for octet, but for a line end added to a
 * message that had none at its end; and a second write and read of that
 * gives exactly the same (the round trip is a fixed point). From_ lines
 * parse into a bounded sender.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/mbox.h"

struct msgs {
	char **data;
	size_t *len;
	char **sender;
	int64_t *t;
	size_t n;
	size_t total;
};

static void
check(int ok)
{
	if (!ok)
		abort();
}

static int
m_begin(void *arg, const char *sender, int64_t t)
{
	struct msgs *m = arg;

	check(strlen(sender) <= MBOX_SENDER_MAX);
	m->data = realloc(m->data, (m->n + 1) * sizeof(*m->data));
	m->len = realloc(m->len, (m->n + 1) * sizeof(*m->len));
	m->sender = realloc(m->sender, (m->n + 1) * sizeof(*m->sender));
	m->t = realloc(m->t, (m->n + 1) * sizeof(*m->t));
	m->data[m->n] = NULL;
	m->len[m->n] = 0;
	m->sender[m->n] = strdup(sender);
	m->t[m->n] = t;
	m->n++;
	return 0;
}

static int
m_data(void *arg, const void *p, size_t n)
{
	struct msgs *m = arg;
	size_t i = m->n - 1;

	check(m->n > 0 && n > 0);
	m->data[i] = realloc(m->data[i], m->len[i] + n);
	memcpy(m->data[i] + m->len[i], p, n);
	m->len[i] += n;
	m->total += n;
	check(m->total < (64u << 20));
	return 0;
}

static int
m_end(void *arg)
{
	(void)arg;
	return 0;
}

static const struct mbox_sink sink = {m_begin, m_data, m_end};

static void
m_free(struct msgs *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->data[i]);
		free(m->sender[i]);
	}
	free(m->data);
	free(m->len);
	free(m->sender);
	free(m->t);
	memset(m, 0, sizeof(*m));
}

static int
read_all(const uint8_t *d, size_t n, size_t split, struct msgs *m)
{
	struct mbox_reader r;

	mbox_reader_init(&r, &sink, m);
	if (mbox_read(&r, d, split) < 0 ||
	    (n > split && mbox_read(&r, d + split, n - split) < 0))
		return -1;
	return mbox_finish(&r);
}

struct buf {
	char *p;
	size_t n;
};

static int
b_out(void *arg, const void *p, size_t n)
{
	struct buf *b = arg;

	b->p = realloc(b->p, b->n + n);
	memcpy(b->p + b->n, p, n);
	b->n += n;
	return 0;
}

static struct buf
write_all(const struct msgs *m)
{
	struct buf b = {0};
	struct mbox_writer w;
	char line[MBOX_SENDER_MAX + 64];

	for (size_t i = 0; i < m->n; i++) {
		size_t k = mbox_from_format(line, sizeof(line), m->sender[i],
					    m->t[i]);
		check(k > 5 && line[k - 1] == '\n');
		b_out(&b, line, k);
		mbox_writer_init(&w, b_out, &b);
		check(mbox_write(&w, m->data[i], m->len[i]) == 0);
		check(mbox_write_end(&w) == 0);
	}
	return b;
}

static void
same(const struct msgs *a, const struct msgs *b, int exact)
{
	check(a->n == b->n);
	for (size_t i = 0; i < a->n; i++) {
		size_t la = a->len[i], lb = b->len[i];
		if (!exact && la > 0 && a->data[i][la - 1] != '\n') {
			check(lb == la + 1 && b->data[i][la] == '\n');
			lb = la;
		}
		check(la == lb);
		check(la == 0 || memcmp(a->data[i], b->data[i], la) == 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct msgs whole = {0}, parts = {0}, again = {0}, third = {0};
	struct buf b1, b2;
	size_t split = size > 0 ? data[0] % (size + 1) : 0;
	int r1, r2;

	r1 = read_all(data, size, size, &whole);
	r2 = read_all(data, size, split, &parts);
	check(r1 == r2);
	if (r1 == 0) {
		same(&whole, &parts, 1);
		b1 = write_all(&whole);
		check(read_all((uint8_t *)b1.p, b1.n, b1.n / 2, &again) == 0);
		same(&whole, &again, 0);
		b2 = write_all(&again);
		check(read_all((uint8_t *)b2.p, b2.n, 1 % (b2.n + 1),
			       &third) == 0);
		same(&again, &third, 1);
		check(b1.n == b2.n || b2.n > b1.n);
		free(b1.p);
		free(b2.p);
	}
	m_free(&whole);
	m_free(&parts);
	m_free(&again);
	m_free(&third);
	return 0;
}
