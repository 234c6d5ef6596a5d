/*
 * Per-client-IP state shared by all worker processes: concurrent
 * connections, the connection rate, early-talker passes (and, with issue 4,
 * authentication failures and bans). It lives in one anonymous shared
 * mapping created by the parent before it forks, guarded by a robust
 * process-shared mutex, so a worker that dies holding it cannot wedge the
 * others.
 *
 * The table is bounded: a fixed number of entries in sets of 8 (a set-
 * associative cache keyed by a hash of the address). When a set is full,
 * the least recently used entry with no open connections is replaced; if
 * every entry holds connections, the new address is not tracked (its
 * connection is still counted in the totals). Bounded memory beats exact
 * accounting under a flood of spoofed-looking addresses.
 *
 * Connections are counted per worker slot, so when a worker dies the
 * parent forgets exactly that worker's connections (limits_worker_reset).
 */
#ifndef GODWIT_CLIENT_LIMITS_H
#define GODWIT_CLIENT_LIMITS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define LIMITS_MAX_WORKERS 64

struct limits;

struct limits_policy {
	unsigned max_connections;	 /* total; 0 = unlimited */
	unsigned max_connections_per_ip; /* 0 = unlimited */
	unsigned rate_count;		 /* per IP per window; 0 = off */
	uint64_t rate_window_ms;
	uint64_t greet_pass_ttl_ms;
};

enum limits_verdict {
	LIMITS_OK = 0,
	LIMITS_TOO_MANY_TOTAL,	/* 421 4.7.0 too many connections */
	LIMITS_TOO_MANY_FROM_IP,/* 421 4.7.0 too many connections from you */
	LIMITS_RATE,		/* 421 4.7.0 connection rate limit */
};

/* nentries is rounded up to a multiple of 8. Called once in the parent. */
struct limits *limits_create(unsigned nentries);
void limits_destroy(struct limits **l);

/*
 * A new connection from sa on worker slot `worker`, at time now_ms.
 * On LIMITS_OK the connection is counted and must be released with
 * limits_disconnect(); otherwise nothing is counted.
 */
enum limits_verdict limits_connect(struct limits *l,
				   const struct limits_policy *p,
				   unsigned worker, const struct sockaddr *sa,
				   uint64_t now_ms);
void limits_disconnect(struct limits *l, unsigned worker,
		       const struct sockaddr *sa);

/* Early-talker test passes: remembered for greet_pass_ttl_ms. */
bool limits_greet_passed(struct limits *l, const struct sockaddr *sa,
			 uint64_t now_ms);
void limits_greet_pass(struct limits *l, const struct limits_policy *p,
		       const struct sockaddr *sa, uint64_t now_ms);

/* Parent: a worker slot died or exited; forget its connections. */
void limits_worker_reset(struct limits *l, unsigned worker);

/* Open connections from sa (all workers), and in total; for tests/metrics. */
unsigned limits_ip_connections(struct limits *l, const struct sockaddr *sa);
unsigned limits_total_connections(struct limits *l);

const char *limits_verdict_text(enum limits_verdict v);

#endif
