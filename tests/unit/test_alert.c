/*
 * Tests for net/alert.c: the subject's cleaning (it goes into a header
 * field, a JSON string and a log value), the parent's check of what a
 * child sends, and the channel's round trip.
 */
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "unit.h"

#include "net/alert.h"

static const struct {
	const char *in;
	const char *out;
} subjects[] = {
    {"192.0.2.7/32", "192.0.2.7/32"},
    {"alice@example.test", "alice@example.test"},
    {"evil\r\nBcc: x@y", "evil??Bcc:?x@y"},
    {"a\"b\\c<d>e", "a?b?c?d?e"},
    {"caf\xc3\xa9", "caf??"},
    {"", "-"},
    {NULL, "-"},
};

static void
test_subject_cleaned(void **state)
{
	struct alert a;

	(void)state;
	for (size_t i = 0; i < sizeof(subjects) / sizeof(subjects[0]); i++) {
		alert_init(&a, ALERT_AUTH_FAILURES_ACCOUNT, subjects[i].in, 1,
			   2, 3);
		assert_string_equal(a.subject, subjects[i].out);
		assert_true(alert_check(&a));
	}
}

static void
test_subject_cut(void **state)
{
	char long_name[400];
	struct alert a;

	(void)state;
	memset(long_name, 'x', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	alert_init(&a, ALERT_SENDING_LIMIT, long_name, 0, 0, 0);
	assert_int_equal(strlen(a.subject), ALERT_SUBJECT_MAX - 1);
	assert_true(alert_check(&a));
}

static void
test_check_refuses(void **state)
{
	struct alert a;

	(void)state;
	alert_init(&a, ALERT_CRASH_LOOP, "workers", 5, 5, 600);
	assert_true(alert_check(&a));
	a.kind = 0;
	assert_false(alert_check(&a));
	a.kind = ALERT_KIND_END;
	assert_false(alert_check(&a));
	a.kind = ALERT_CRASH_LOOP;
	a.version = 2;
	assert_false(alert_check(&a));
	a.version = ALERT_VERSION;
	a.subject[2] = '\n';
	assert_false(alert_check(&a));
	memset(a.subject, 'x', sizeof(a.subject)); /* no NUL */
	assert_false(alert_check(&a));
	a.subject[0] = '\0';
	assert_false(alert_check(&a));
	assert_null(alert_kind_name(0));
	assert_string_equal(alert_kind_name(ALERT_CERT_EXPIRY), "cert-expiry");
}

static void
test_channel_round_trip(void **state)
{
	struct alert a, b;
	int fds[2];

	(void)state;
	assert_int_equal(alert_channel_new(fds), 0);
	assert_int_equal(alert_receive(fds[0], &b), 0);	/* none yet */
	alert_sink_fd(fds[1]);
	alert_raise_kind(ALERT_QUEUE_SIZE, "outbound", 1200, 1000, 0);
	assert_int_equal(alert_receive(fds[0], &b), 1);
	alert_init(&a, ALERT_QUEUE_SIZE, "outbound", 1200, 1000, 0);
	assert_memory_equal(&a, &b, sizeof(a));
	/* a short or malformed datagram is dropped */
	assert_int_equal(send(fds[1], "junk", 4, 0), 4);
	assert_int_equal(alert_receive(fds[0], &b), -1);
	a.kind = 99;
	assert_int_equal(send(fds[1], &a, sizeof(a), 0), (ssize_t)sizeof(a));
	assert_int_equal(alert_receive(fds[0], &b), -1);
	alert_sink_fd(-1);
	close(fds[0]);
	close(fds[1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_subject_cleaned),
	    cmocka_unit_test(test_subject_cut),
	    cmocka_unit_test(test_check_refuses),
	    cmocka_unit_test(test_channel_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
