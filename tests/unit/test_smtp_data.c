/* Table-driven tests for the DATA/BDAT content parser (smtp_data.c). */
#include <stdio.h>
#include <string.h>

#include "unit.h"
#include "mail/smtp_data.h"

struct data_case {
	const char *name;
	enum smtp_data_mode mode;
	const char *in;
	enum smtp_data_status status;
	const char *out;	/* stored form */
	size_t consumed;	/* 0: all of in */
	unsigned received;
	bool long_line;
	bool has_message_id, has_date;
};

static const struct data_case cases[] = {
	{"empty message", SMTP_DATA_DOT, ".\r\n", SMTP_DATA_END, "", 0},
	{"one line", SMTP_DATA_DOT, "hello\r\n.\r\n", SMTP_DATA_END,
	 "hello\n", 0},
	{"dot-stuffed", SMTP_DATA_DOT, "..x\r\n.\r\n", SMTP_DATA_END,
	 ".x\n", 0},
	{"lone dot then text", SMTP_DATA_DOT, ".x\r\n.\r\n", SMTP_DATA_END,
	 "x\n", 0},
	{"pipelined rest", SMTP_DATA_DOT, "a\r\n.\r\nQUIT\r\n", SMTP_DATA_END,
	 "a\n", 6},
	{"not at line start", SMTP_DATA_DOT, "a.\r\n.\r\n", SMTP_DATA_END,
	 "a.\n", 0},
	{"bare LF in text", SMTP_DATA_DOT, "a\nb\r\n.\r\n",
	 SMTP_DATA_BARE_EOL, "a", 1},
	{"bare CR in text", SMTP_DATA_DOT, "a\rb\r\n.\r\n",
	 SMTP_DATA_BARE_EOL, "a", 2},
	{"smuggle LF.LF", SMTP_DATA_DOT, "a\r\n\n.\n", SMTP_DATA_BARE_EOL,
	 "a\n", 3},
	{"smuggle CR.CR", SMTP_DATA_DOT, "a\r\n\r.\r", SMTP_DATA_BARE_EOL,
	 "a\n", 4},
	{"smuggle LF.CRLF", SMTP_DATA_DOT, "a\n.\r\n", SMTP_DATA_BARE_EOL,
	 "a", 1},
	{"smuggle CRLF.LF", SMTP_DATA_DOT, "a\r\n.\nMAIL", SMTP_DATA_BARE_EOL,
	 "a\n", 4},
	{"smuggle CRLF.CR", SMTP_DATA_DOT, "a\r\n.\rX", SMTP_DATA_BARE_EOL,
	 "a\n", 5},
	{"headers counted", SMTP_DATA_DOT,
	 "Received: a\r\nreceived: b\r\nMessage-ID: <x@y>\r\nDate: now\r\n"
	 "\r\nReceived: in body\r\n.\r\n",
	 SMTP_DATA_END,
	 "Received: a\nreceived: b\nMessage-ID: <x@y>\nDate: now\n\n"
	 "Received: in body\n",
	 0, 2, false, true, true},
	{"long line flagged", SMTP_DATA_DOT, "0123456789\r\n.\r\n",
	 SMTP_DATA_END, "0123456789\n", 0, 0, true},
	{"bdat keeps dots", SMTP_DATA_BDAT, ".\r\n..x\r\n", SMTP_DATA_MORE,
	 ".\n..x\n", 0},
	{"bdat bare LF", SMTP_DATA_BDAT, "a\nb", SMTP_DATA_BARE_EOL, "a", 1},
	{"8-bit passes", SMTP_DATA_DOT, "\xc3\xa9t\xc3\xa9\r\n.\r\n",
	 SMTP_DATA_END, "\xc3\xa9t\xc3\xa9\n", 0},
};

/* Feeds in one octet at a time, then all at once: results must agree. */
static void
run_case(const struct data_case *c, size_t step)
{
	struct smtp_data d;
	unsigned char out[512];
	size_t len = strlen(c->in), pos = 0, olen_total = 0;
	enum smtp_data_status st = SMTP_DATA_MORE;

	smtp_data_init(&d, c->mode, c->long_line ? 8 : 1000);
	while (pos < len) {
		size_t n = len - pos < step ? len - pos : step;
		size_t olen, consumed;
		st = smtp_data_feed(&d, (const unsigned char *)c->in + pos, n,
				    out + olen_total, &olen, &consumed);
		olen_total += olen;
		pos += consumed;
		if (st != SMTP_DATA_MORE)
			break;
		assert_int_equal(consumed, n);
	}
	if (st == SMTP_DATA_MORE && c->mode == SMTP_DATA_BDAT) {
		size_t olen;
		st = smtp_data_finish(&d, out + olen_total, &olen);
		olen_total += olen;
	}
	if (st != c->status)
		fail_msg("%s (step %zu): status %d, want %d", c->name, step,
			 st, c->status);
	if (olen_total != strlen(c->out) ||
	    memcmp(out, c->out, olen_total) != 0)
		fail_msg("%s (step %zu): output '%.*s', want '%s'", c->name,
			 step, (int)olen_total, out, c->out);
	assert_int_equal(pos, c->consumed ? c->consumed : len);
	if (st != SMTP_DATA_BARE_EOL) {
		assert_int_equal(d.size, strlen(c->out));
		assert_int_equal(d.received, c->received);
		assert_int_equal(d.long_line, c->long_line);
		assert_int_equal(d.has_message_id, c->has_message_id);
		assert_int_equal(d.has_date, c->has_date);
		/* the blank line ending the header is at header_end */
		if (!d.in_header)
			assert_int_equal(out[d.header_end], '\n');
	}
}

static void
test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		run_case(&cases[i], 1);
		run_case(&cases[i], 3);
		run_case(&cases[i], 4096);
	}
}

static void
test_bdat_unterminated_last_line(void **state)
{
	struct smtp_data d;
	unsigned char out[16];
	size_t olen, consumed;

	(void)state;
	smtp_data_init(&d, SMTP_DATA_BDAT, 1000);
	assert_int_equal(smtp_data_feed(&d, (const unsigned char *)"a\r\nb", 4,
					out, &olen, &consumed),
			 SMTP_DATA_MORE);
	assert_int_equal(olen, 3);
	assert_int_equal(smtp_data_finish(&d, out, &olen), SMTP_DATA_MORE);
	assert_int_equal(olen, 1);
	assert_int_equal(d.lines, 2);
	assert_int_equal(d.size, 4);

	/* a chunk boundary between CR and LF is fine ... */
	smtp_data_init(&d, SMTP_DATA_BDAT, 1000);
	smtp_data_feed(&d, (const unsigned char *)"a\r", 2, out, &olen,
		       &consumed);
	assert_int_equal(smtp_data_feed(&d, (const unsigned char *)"\n", 1,
					out, &olen, &consumed),
			 SMTP_DATA_MORE);
	/* ... but a message that ends in CR is a bare CR */
	smtp_data_init(&d, SMTP_DATA_BDAT, 1000);
	smtp_data_feed(&d, (const unsigned char *)"a\r", 2, out, &olen,
		       &consumed);
	assert_int_equal(smtp_data_finish(&d, out, &olen), SMTP_DATA_BARE_EOL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_bdat_unterminated_last_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
