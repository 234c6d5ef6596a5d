/*
 * Tests for the session deadlines (src/net/session_io.c) on a real libevent
 * loop: a deadline fires once, at its end and not before; octets received
 * during a DATA deadline move its end by 1 s per `rate` octets; stopping
 * and restarting replace it; shortening brings a LINE or TLS deadline
 * forward and leaves a DATA deadline alone. Every loop has a safety
 * timer, and the bounds checked are lower bounds ("not before"), or
 * generous upper ones, never a measure of speed. And the bounded line
 * reader (line_take) on an evbuffer: no socket needed.
 */
#include <stdbool.h>
#include <string.h>
#include <sys/time.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "unit.h"

#include "lib/util.h"
#include "net/session_io.h"

struct fired {
	int n;
	enum deadline_kind kind;
	uint64_t at_ms;
	struct event_base *base;
};

static void
expired(void *arg, enum deadline_kind kind)
{
	struct fired *f = arg;

	f->n++;
	f->kind = kind;
	f->at_ms = mono_ms();
	event_base_loopexit(f->base, NULL);
}

/* Runs the loop until the deadline fires or `safety_ms` pass. */
static void
run(struct fired *f, uint64_t safety_ms)
{
	struct timeval tv = {(time_t)(safety_ms / 1000),
			     (suseconds_t)(safety_ms % 1000) * 1000};

	event_base_loopexit(f->base, &tv);
	event_base_dispatch(f->base);
}

static void
test_line_fires_once_at_its_end(void **state)
{
	struct fired f = {0};
	struct deadline d;
	uint64_t t0;

	(void)state;
	f.base = event_base_new();
	deadline_init(&d, f.base, expired, &f);
	t0 = mono_ms();
	deadline_start(&d, DEADLINE_LINE, 100, 0);
	/* octets do not move a LINE deadline */
	deadline_add_octets(&d, 1000000);
	run(&f, 10000);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.kind, DEADLINE_LINE);
	assert_true(f.at_ms - t0 >= 100);
	assert_int_equal(d.kind, DEADLINE_NONE);
	/* nothing more: a second run only sees the safety timer */
	run(&f, 200);
	assert_int_equal(f.n, 1);
	deadline_clear(&d);
	event_base_free(f.base);
}

static void
test_data_credit_moves_the_end(void **state)
{
	struct fired f = {0};
	struct deadline d;
	uint64_t t0;

	(void)state;
	f.base = event_base_new();
	deadline_init(&d, f.base, expired, &f);
	t0 = mono_ms();
	/* 50 ms, then 1 s per 1000 octets: 300 octets earn 300 ms */
	deadline_start(&d, DEADLINE_DATA, 50, 1000);
	deadline_add_octets(&d, 300);
	run(&f, 10000);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.kind, DEADLINE_DATA);
	assert_true(f.at_ms - t0 >= 350);
	deadline_clear(&d);
	event_base_free(f.base);
}

static void
test_stop_and_restart(void **state)
{
	struct fired f = {0};
	struct deadline d;

	(void)state;
	f.base = event_base_new();
	deadline_init(&d, f.base, expired, &f);
	deadline_start(&d, DEADLINE_LINE, 50, 0);
	deadline_stop(&d);
	run(&f, 300);
	assert_int_equal(f.n, 0);
	deadline_start(&d, DEADLINE_TLS, 50, 0);
	run(&f, 10000);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.kind, DEADLINE_TLS);
	deadline_clear(&d);
	event_base_free(f.base);
}

static void
test_shorten(void **state)
{
	struct fired f = {0};
	struct deadline d;
	uint64_t t0;

	(void)state;
	f.base = event_base_new();
	deadline_init(&d, f.base, expired, &f);
	/* a DATA deadline is left alone */
	deadline_start(&d, DEADLINE_DATA, 60000, 0);
	deadline_shorten(&d, 50);
	run(&f, 300);
	assert_int_equal(f.n, 0);
	/* a LINE deadline of a minute comes forward to 50 ms */
	t0 = mono_ms();
	deadline_start(&d, DEADLINE_LINE, 60000, 0);
	deadline_shorten(&d, 50);
	run(&f, 10000);
	assert_int_equal(f.n, 1);
	assert_true(f.at_ms - t0 >= 50);
	assert_true(f.at_ms - t0 < 10000);
	/* never later: shortening to more than is left changes nothing */
	f.n = 0;
	t0 = mono_ms();
	deadline_start(&d, DEADLINE_TLS, 50, 0);
	deadline_shorten(&d, 60000);
	run(&f, 10000);
	assert_int_equal(f.n, 1);
	assert_true(f.at_ms - t0 < 10000);
	/* a stopped deadline stays stopped */
	f.n = 0;
	deadline_stop(&d);
	deadline_shorten(&d, 10);
	run(&f, 200);
	assert_int_equal(f.n, 0);
	deadline_clear(&d);
	event_base_free(f.base);
}

static void
test_kind_names(void **state)
{
	(void)state;
	assert_string_equal(deadline_kind_name(DEADLINE_LINE), "line");
	assert_string_equal(deadline_kind_name(DEADLINE_TLS), "tls-handshake");
	assert_string_equal(deadline_kind_name(DEADLINE_DATA), "data");
}

/* ---- the line reader ---- */

static void
add(struct evbuffer *in, const char *s)
{
	evbuffer_add(in, s, strlen(s));
}

/* Whole lines come out one at a time, LF included; a part waits. */
static void
test_line_take_lines(void **state)
{
	struct evbuffer *in = evbuffer_new();
	struct line_reader lr = {0};
	char buf[64];
	size_t n = 0;

	(void)state;
	assert_int_equal(line_take(&lr, in, 32, buf, sizeof(buf), &n), 0);
	add(in, "NOOP\r\nQUIT\r\nRS");
	assert_int_equal(line_take(&lr, in, 32, buf, sizeof(buf), &n), 1);
	assert_int_equal(n, 6);
	assert_memory_equal(buf, "NOOP\r\n", 6);
	assert_int_equal(line_take(&lr, in, 32, buf, sizeof(buf), &n), 1);
	assert_memory_equal(buf, "QUIT\r\n", 6);
	/* a part below the limit waits, untouched */
	assert_int_equal(line_take(&lr, in, 32, buf, sizeof(buf), &n), 0);
	assert_int_equal(evbuffer_get_length(in), 2);
	add(in, "ET\n");
	assert_int_equal(line_take(&lr, in, 32, buf, sizeof(buf), &n), 1);
	assert_int_equal(n, 5);
	assert_memory_equal(buf, "RSET\n", 5);
	evbuffer_free(in);
}

/* A whole line over max (or over the buffer) is thrown away, once. */
static void
test_line_take_too_long(void **state)
{
	struct evbuffer *in = evbuffer_new();
	struct line_reader lr = {0};
	char buf[16];
	size_t n = 0;

	(void)state;
	add(in, "0123456789\r\nNOOP\r\n");
	assert_int_equal(line_take(&lr, in, 8, buf, sizeof(buf), &n), -1);
	assert_int_equal(line_take(&lr, in, 8, buf, sizeof(buf), &n), 1);
	assert_memory_equal(buf, "NOOP\r\n", 6);
	/* max allows it, the buffer does not */
	add(in, "0123456789ABCDEFG\r\n");
	assert_int_equal(line_take(&lr, in, 64, buf, sizeof(buf), &n), -1);
	assert_int_equal(evbuffer_get_length(in), 0);
	assert_false(lr.skip);
	evbuffer_free(in);
}

/*
 * The start of a line with no LF within max: thrown away at once (-1),
 * then the rest of it as it comes, silently, up to its LF.
 */
static void
test_line_take_skips_the_rest(void **state)
{
	struct evbuffer *in = evbuffer_new();
	struct line_reader lr = {0};
	char buf[64];
	size_t n = 0;

	(void)state;
	add(in, "AAAAAAAAAA");
	assert_int_equal(line_take(&lr, in, 8, buf, sizeof(buf), &n), -1);
	assert_int_equal(evbuffer_get_length(in), 0);
	assert_true(lr.skip);
	add(in, "AAAAAAAAAAAAAAAAAAAA");
	assert_int_equal(line_take(&lr, in, 8, buf, sizeof(buf), &n), 0);
	assert_int_equal(evbuffer_get_length(in), 0);
	add(in, "AA\r\nQUIT\r\n");
	assert_int_equal(line_take(&lr, in, 8, buf, sizeof(buf), &n), 1);
	assert_false(lr.skip);
	assert_int_equal(n, 6);
	assert_memory_equal(buf, "QUIT\r\n", 6);
	assert_int_equal(line_take(&lr, in, 8, buf, sizeof(buf), &n), 0);
	evbuffer_free(in);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_line_fires_once_at_its_end),
	    cmocka_unit_test(test_data_credit_moves_the_end),
	    cmocka_unit_test(test_stop_and_restart),
	    cmocka_unit_test(test_shorten),
	    cmocka_unit_test(test_kind_names),
	    cmocka_unit_test(test_line_take_lines),
	    cmocka_unit_test(test_line_take_too_long),
	    cmocka_unit_test(test_line_take_skips_the_rest),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
