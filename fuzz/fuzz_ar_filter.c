/*
 * Fuzz the filter of forged Authentication-Results fields: the first
 * octet picks a chunk size; filtering in chunks must give exactly what
 * filtering in one go gives, never write more than the bound, and
 * account for every octet and line it removes; what it keeps of our
 * own fields is nothing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/ar_filter.h"

static size_t
run(const char *in, size_t len, size_t step, char *out, struct ar_filter *f)
{
	size_t o = 0;
	char *buf = malloc(step + AR_FILTER_HOLD);

	if (buf == NULL)
		abort();
	ar_filter_init(f, "mx.example.test");
	for (size_t i = 0; i < len; i += step) {
		size_t k = len - i < step ? len - i : step;
		size_t got = ar_filter_feed(f, in + i, k, buf);
		if (got > k + AR_FILTER_HOLD)
			abort();
		memcpy(out + o, buf, got);
		o += got;
	}
	o += ar_filter_finish(f, out + o);
	free(buf);
	return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ar_filter f1, f2;
	size_t step, n1, n2, lf_in = 0, lf_out = 0;
	char *o1, *o2;
	const char *in;

	if (size < 1)
		return 0;
	step = (size_t)data[0] % 40 + 1;
	in = (const char *)data + 1;
	size--;
	o1 = malloc(size + AR_FILTER_HOLD);
	o2 = malloc(size + AR_FILTER_HOLD);
	if (o1 == NULL || o2 == NULL)
		abort();
	n1 = run(in, size, size > 0 ? size : 1, o1, &f1);
	n2 = run(in, size, step, o2, &f2);
	if (n1 != n2 || memcmp(o1, o2, n1) != 0)
		abort();
	if (n1 + f1.dropped_octets != size ||
	    f1.dropped_lines != f2.dropped_lines)
		abort();
	for (size_t i = 0; i < size; i++)
		lf_in += in[i] == '\n';
	for (size_t i = 0; i < n1; i++)
		lf_out += o1[i] == '\n';
	if (lf_out + f1.dropped_lines != lf_in)
		abort();
	free(o1);
	free(o2);
	return 0;
}
