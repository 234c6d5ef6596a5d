/*
 * Tests for the metrics (src/net/metrics.c): every reason string a refusal
 * is logged with falls in the category the operator expects (the table
 * below is the list of reasons the code logs; test_metrics.py checks that
 * no reason in src/ is missing from it), counting is a no-op without a
 * mapping, and the render of a counted mapping has the samples, the
 * cumulative histogram buckets and the listener names.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "unit.h"

#include "lib/xalloc.h"
#include "net/listener.h"
#include "net/metrics.h"

static const struct {
	const char *reason;
	const char *category;
} reasons[] = {
    /* smtpd: recipients */
    {"relay-denied", "relay"},
    {"unknown-user", "unknown_user"},
    {"lookup", "other"},
    /* mail authentication */
    {"dmarc", "spf_dmarc"},
    {"dmarc-temperror", "spf_dmarc"},
    {"spf", "spf_dmarc"},
    /* filters, through sf_reply */
    {"dnsbl", "dnsbl"},
    {"greylist", "other"},
    {"blocked-extension", "attachment"},
    {"double-extension", "attachment"},
    {"hidden-extension", "attachment"},
    {"executable", "attachment"},
    {"encrypted-archive", "attachment"},
    {"unreadable-archive", "attachment"},
    {"attach-limit-size", "attachment"},
    {"attach-limit-depth", "attachment"},
    {"attach-limit-parts", "attachment"},
    {"attach-io", "attachment"},
    {"virus", "virus"},
    {"clamd", "other"},
    {"milter", "other"},
    {"milter-limit", "other"},
    {"filter", "other"},
    /* connections and logins */
    {"limit", "rate_limit"},
    {"sending-limit", "rate_limit"},
    {"login-delay", "rate_limit"},
    {"banned", "auth_failure"},
    {"auth-failures", "auth_failure"},
    {"access-list", "other"},
    {"proxy-untrusted", "other"},
    {"proxy-bad", "other"},
    {"proxy-timeout", "other"},
    {"proxy-eof", "other"},
    {"in-use", "other"},
    {"lock-failed", "other"},
    {"scan-failed", "other"},
    /* protocol errors and message checks */
    {"too-many-errors", "other"},
    {"bad-bdat", "other"},
    {"bare-eol", "other"},
    {"early-talker", "other"},
    {"sender-not-owned", "other"},
    {"io-error", "other"},
    {"too-big", "other"},
    {"line-too-long", "other"},
    {"too-many-hops", "other"},
    {"bad-address-header", "other"},
    {"bad-header", "other"},
    {"header-sender-not-owned", "other"},
    {"header-too-big", "other"},
    {"multiple-from", "other"},
    {"multiple-sender", "other"},
    {"display-name-address", "other"},
    {"userdb-error", "other"},
    /* imapd: at login */
    {"user-connections", "rate_limit"},
    {"no-mailbox", "other"},
    {"maildir-failed", "other"},
};

static void
test_reason_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
		const char *got = metrics_reject_name(
		    metrics_reject_category(reasons[i].reason));

		if (strcmp(got, reasons[i].category) != 0)
			fail_msg("%s: %s, expected %s", reasons[i].reason, got,
				 reasons[i].category);
	}
	/* unknown, NULL and near misses: other */
	assert_string_equal(metrics_reject_name(metrics_reject_category(NULL)),
			    "other");
	assert_string_equal(
	    metrics_reject_name(metrics_reject_category("Relay-Denied")),
	    "other");
	assert_string_equal(
	    metrics_reject_name(metrics_reject_category("dnsbl ")), "other");
	assert_string_equal(metrics_reject_name(METRICS_REJ_COUNT), "other");
}

static char *
render(const struct metrics *m, const struct config_listener *ls, size_t n)
{
	struct evbuffer *b = evbuffer_new();
	size_t len;
	char *s;

	metrics_render(m, ls, n, b);
	len = evbuffer_get_length(b);
	s = xmalloc(len + 1);
	evbuffer_remove(b, s, len);
	s[len] = '\0';
	evbuffer_free(b);
	return s;
}

static void
test_counting_and_render(void **state)
{
	struct metrics *m = metrics_create();
	struct config_listener ls[2] = {
	    {.name = "mx", .proto = PROTO_SMTP, .index = 0},
	    {.name = "metrics", .proto = PROTO_METRICS, .index = 1},
	};
	char *text;

	(void)state;
	assert_non_null(m);
	/* no mapping in use: nothing counted, nothing crashes */
	metrics_use(NULL);
	metrics_reject("relay-denied");
	metrics_connection(0, METRICS_CONN_ACCEPTED);
	assert_null(metrics_current());

	metrics_use(m);
	metrics_reject("relay-denied");
	metrics_reject("relay-denied");
	metrics_reject("something new");
	metrics_connection(0, METRICS_CONN_ACCEPTED);
	metrics_connection(1, METRICS_CONN_ACCESS_DENIED);
	metrics_connection(METRICS_MAX_LISTENERS, METRICS_CONN_ACCEPTED);
	metrics_message(METRICS_MSG_DELIVERED, 3);
	metrics_auth("scram-sha-256", true);
	metrics_auth("XOAUTH2", false);
	metrics_tls(false, "TLSv1.3");
	metrics_tls(true, "SSLv3");
	metrics_queue_set(METRICS_Q_DEFERRED, 7);
	metrics_queue_set(METRICS_Q_DEFERRED, 5);
	metrics_delivery_latency(500);		/* <= 1 s */
	metrics_delivery_latency(2000);		/* <= 5 s */
	metrics_delivery_latency(999999999);	/* +Inf */
	metrics_dns(15, METRICS_DNS_NXDOMAIN, 3000);
	metrics_dns(99, METRICS_DNS_TIMEOUT, 20000000);
	metrics_restart(false);

	text = render(m, ls, 2);
	assert_non_null(strstr(text, "godwit_rejections_total{reason=\"relay\"} 2\n"));
	assert_non_null(strstr(text, "godwit_rejections_total{reason=\"other\"} 1\n"));
	assert_non_null(strstr(text, "godwit_connections_total{listener=\"mx\","
				     "protocol=\"smtp\",result=\"accepted\"} 1\n"));
	assert_non_null(strstr(text, "godwit_connections_total{listener="
				     "\"metrics\",protocol=\"metrics\","
				     "result=\"access_denied\"} 1\n"));
	assert_non_null(strstr(text, "godwit_messages_total{result=\"delivered\"} 3\n"));
	assert_non_null(strstr(text, "godwit_auth_total{mechanism=\"SCRAM-SHA-256\","
				     "result=\"success\"} 1\n"));
	assert_non_null(strstr(text, "godwit_auth_total{mechanism=\"other\","
				     "result=\"failure\"} 1\n"));
	assert_non_null(strstr(text, "godwit_tls_handshakes_total{direction="
				     "\"outbound\",version=\"other\"} 1\n"));
	assert_non_null(strstr(text, "godwit_queue_messages{state=\"deferred\"} 5\n"));
	assert_non_null(strstr(text, "godwit_delivery_duration_seconds_bucket"
				     "{le=\"1\"} 1\n"));
	assert_non_null(strstr(text, "godwit_delivery_duration_seconds_bucket"
				     "{le=\"5\"} 2\n"));
	assert_non_null(strstr(text, "godwit_delivery_duration_seconds_bucket"
				     "{le=\"+Inf\"} 3\n"));
	assert_non_null(strstr(text, "godwit_delivery_duration_seconds_count 3\n"));
	assert_non_null(strstr(text, "godwit_dns_lookups_total{type=\"MX\","
				     "result=\"nxdomain\"} 1\n"));
	assert_non_null(strstr(text, "godwit_dns_lookups_total{type=\"other\","
				     "result=\"timeout\"} 1\n"));
	assert_non_null(strstr(text, "godwit_dns_lookup_duration_seconds_bucket"
				     "{le=\"0.005\"} 1\n"));
	assert_non_null(strstr(text, "godwit_worker_restarts_total{process="
				     "\"worker\"} 1\n"));
	free(text);

	/* a listener index from an older configuration is left out */
	text = render(m, ls, 1);
	assert_null(strstr(text, "listener=\"metrics\""));
	free(text);

	metrics_destroy(&m);
	assert_null(m);
	assert_null(metrics_current());
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reason_table),
	    cmocka_unit_test(test_counting_and_render),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
