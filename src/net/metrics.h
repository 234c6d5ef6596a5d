/*
 * Prometheus metrics: counters, gauges and histograms kept in one
 * anonymous shared mapping that the parent makes before it forks, so
 * that every process (workers, the queue runner, the parent itself)
 * counts into the same place and a scrape served by any worker sees
 * them all. The mapping lives as long as the parent: counters stay
 * monotonic across reloads and worker restarts.
 *
 * Every slot is a 64-bit integer changed with a relaxed __atomic add
 * (or store, for a gauge) on the one shared block. One slot per writer
 * would avoid sharing cache lines, but the events counted here are per
 * connection, message or lookup (thousands a second at most), where an
 * uncontended atomic add costs nanoseconds; one block keeps the render
 * simple and needs no writer index in the runner or the parent.
 *
 * The counting functions are no-ops until metrics_use() is called
 * (the CLI, unit tests and fuzz targets never call it). Labels are
 * fixed sets: listener index (named from the configuration when
 * rendered), fixed enums, and reason strings folded through one table
 * (metrics_reject_category).
 */
#ifndef GODWIT_METRICS_H
#define GODWIT_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config_listener;
struct evbuffer;

#define METRICS_MAX_LISTENERS 64	/* CONFIG_MAX_LISTENERS */

/* What became of a connection on a listener. */
enum metrics_conn {
	METRICS_CONN_ACCEPTED,
	METRICS_CONN_ACCESS_DENIED,	/* the listener's allow/deny lists */
	METRICS_CONN_LIMIT,		/* per-client or total limits */
	METRICS_CONN_BANNED,		/* a ban after auth failures */
	METRICS_CONN_COUNT
};

/* Messages: accepted by a session; recipients' fates in the runner. */
enum metrics_msg {
	METRICS_MSG_ACCEPTED,	/* 250 after DATA/BDAT */
	METRICS_MSG_DELIVERED,	/* a recipient delivered (runner, or a
				 * local mailbox at acceptance) */
	METRICS_MSG_BOUNCED,	/* a recipient failed for good (runner) */
	METRICS_MSG_DEFERRED,	/* a recipient's attempt failed, retried */
	METRICS_MSG_COUNT
};

/* The categories of refusals; every reason string maps to one. */
enum metrics_reject {
	METRICS_REJ_RELAY,
	METRICS_REJ_UNKNOWN_USER,
	METRICS_REJ_SPF_DMARC,
	METRICS_REJ_DNSBL,
	METRICS_REJ_ATTACHMENT,
	METRICS_REJ_VIRUS,
	METRICS_REJ_RATE_LIMIT,
	METRICS_REJ_AUTH_FAILURE,
	METRICS_REJ_OTHER,
	METRICS_REJ_COUNT
};

enum metrics_queue_state {
	METRICS_Q_INCOMING,
	METRICS_Q_ACTIVE,
	METRICS_Q_DEFERRED,
	METRICS_Q_HOLD,
	METRICS_Q_COUNT
};

enum metrics_dns_result {
	METRICS_DNS_OK,		/* an answer with data */
	METRICS_DNS_NODATA,	/* NOERROR, no record of the type */
	METRICS_DNS_NXDOMAIN,
	METRICS_DNS_SERVFAIL,
	METRICS_DNS_REFUSED,
	METRICS_DNS_RCODE,	/* any other error rcode */
	METRICS_DNS_BOGUS,	/* DNSSEC validation failed */
	METRICS_DNS_ERROR,	/* libunbound's own error */
	METRICS_DNS_TIMEOUT,	/* no answer in the caller's time */
	METRICS_DNS_RESULT_COUNT
};

struct metrics;

/*
 * The shared mapping (parent, before any fork); NULL when mmap fails.
 * metrics_destroy unmaps it (and metrics_use(NULL) should come first).
 */
struct metrics *metrics_create(void);
void metrics_destroy(struct metrics **mp);
/* Where this process counts from now on; NULL: counting is a no-op. */
void metrics_use(struct metrics *m);

void metrics_connection(unsigned listener, enum metrics_conn result);
/* n more messages (accepted) or recipients (the others). */
void metrics_message(enum metrics_msg what, uint64_t n);
/* A refusal logged with this reason string (any string; NULL: other). */
void metrics_reject(const char *reason);
/* An authentication's end; mech as sasl_mech_name() or "USER". */
void metrics_auth(const char *mech, bool success);
/* A finished TLS handshake; version as SSL_get_version() gives it. */
void metrics_tls(bool outbound, const char *version);
/* Queue gauge (the runner sets it from its own bookkeeping). */
void metrics_queue_set(enum metrics_queue_state state, uint64_t n);
/* A recipient's final fate, ms after the message arrived. */
void metrics_delivery_latency(uint64_t ms);
/* One DNS query to the resolver: its type (RR_TYPE_*), result, time. */
void metrics_dns(int rrtype, enum metrics_dns_result result, uint64_t us);
/* A worker (or the runner) that died and is replaced. */
void metrics_restart(bool runner);
/* A Redis client went down (false) or came up (true). */
void metrics_redis(bool up);

/* Pure: the category of a refusal's reason string (unknown: OTHER). */
enum metrics_reject metrics_reject_category(const char *reason);
/* "relay", "unknown_user", ... as in the label. */
const char *metrics_reject_name(enum metrics_reject r);

/*
 * The text exposition format (version 0.0.4) of everything counted,
 * appended to out. Listener indexes are named from ls (indexes at or
 * past n, from an older configuration, are left out).
 */
void metrics_render(const struct metrics *m, const struct config_listener *ls,
		    size_t n, struct evbuffer *out);
/* The mapping this process counts into, or NULL. */
const struct metrics *metrics_current(void);

#endif
