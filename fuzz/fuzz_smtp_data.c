/*
 * Fuzz the DATA/BDAT content parser: the first octet picks the mode and a
 * chunk size; parsing in chunks must give exactly what parsing in one go
 * gives, output never exceeds input, and the stored form never contains a
 * CR (everything stored has LF line ends).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/smtp_data.h"

static size_t
run(const uint8_t *in, size_t len, enum smtp_data_mode mode, size_t step,
    uint8_t *out, enum smtp_data_status *st_r, size_t *consumed_r,
    struct smtp_data *d)
{
	size_t pos = 0, o = 0;
	enum smtp_data_status st = SMTP_DATA_MORE;

	smtp_data_init(d, mode, 100);
	while (pos < len) {
		size_t n = len - pos < step ? len - pos : step, olen, used;
		st = smtp_data_feed(d, in + pos, n, out + o, &olen, &used);
		if (olen > used || used > n)
			abort();
		o += olen;
		pos += used;
		if (st != SMTP_DATA_MORE)
			break;
	}
	if (st == SMTP_DATA_MORE && mode == SMTP_DATA_BDAT) {
		size_t olen;
		st = smtp_data_finish(d, out + o, &olen);
		o += olen;
	}
	*st_r = st;
	*consumed_r = pos;
	return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_data d1, d2;
	enum smtp_data_status s1, s2;
	size_t c1, c2, o1, o2;
	uint8_t *out1, *out2;

	if (size < 1)
		return 0;
	enum smtp_data_mode mode = (data[0] & 1) ? SMTP_DATA_BDAT
						 : SMTP_DATA_DOT;
	size_t step = (size_t)(data[0] >> 1) + 1;
	data++;
	size--;
	out1 = malloc(size + 1);
	out2 = malloc(size + 1);
	o1 = run(data, size, mode, size ? size : 1, out1, &s1, &c1, &d1);
	o2 = run(data, size, mode, step, out2, &s2, &c2, &d2);
	if (s1 != s2 || c1 != c2 || o1 != o2 || memcmp(out1, out2, o1) != 0)
		abort();
	if (d1.size != d2.size || d1.lines != d2.lines ||
	    d1.received != d2.received || d1.long_line != d2.long_line)
		abort();
	if (s1 != SMTP_DATA_BARE_EOL && memchr(out1, '\r', o1) != NULL)
		abort();
	if (s1 != SMTP_DATA_BARE_EOL && d1.size != o1)
		abort();
	free(out1);
	free(out2);
	return 0;
}
