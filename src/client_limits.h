/*
 * Per-client-IP state shared by all worker processes: concurrent
 * connections, the connection rate, early-talker passes, authentication
 * failures and bans (and failures per account). It lives in one anonymous
 * shared mapping created by the parent before it forks, guarded by a robust
 * process-shared mutex, so a worker that dies holding it cannot wedge the
 * others.
 *
 * The table is bounded: a fixed number of entries in sets of 8 (a set-
 * associative cache keyed by a hash of the address). When a set is full,
 * the least recently used entry with no open connections and no active
 * ban is replaced (one that remembers nothing live first); if every entry
 * holds connections or a ban, the new address is not tracked (its
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
	unsigned stress_on;		 /* total starting stress; 0 = never */
	unsigned stress_off;		 /* stress ends below this total */
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

/*
 * Stress (Postfix's word for it): most connection slots are taken, so
 * the sessions that have not logged in get short timeouts, and clients
 * that only hold a connection open lose it quickly. Stress begins when
 * the total reaches p->stress_on and ends when it falls below
 * p->stress_off (a lower mark, so a total moving around one number does
 * not switch it on and off with every connection).
 *
 * limits_stress_update() looks at the total and switches the shared
 * state; it returns 1 if this call began stress, -1 if it ended it, 0 if
 * nothing changed, with the total in *total_r: the one caller that sees
 * the change logs it. limits_stress() reads the state without the mutex.
 */
int limits_stress_update(struct limits *l, const struct limits_policy *p,
			 unsigned *total_r);
bool limits_stress(struct limits *l);

/*
 * Authentication failures (brute-force brakes).
 *
 * Failures are counted per client address and per account (the authcid,
 * ASCII-lower-cased, stored as a keyed hash in an entry of its own kind,
 * so it never meets an address's entry). Each count lives in a fixed window
 * of window_ms that starts with the first failure. The n-th failure in a
 * window earns a delay of min(delay_base_ms * 2^(n-1), delay_max_ms) before
 * the reply; a failure's delay is the larger of its address's and its
 * account's.
 *
 * At max_failures_ip failures in the window the address is banned for
 * ban_ms: the session answers 421 4.7.0 to its connections and AUTH
 * attempts meanwhile. The ban uses up the count, so after it the address
 * starts from zero.
 *
 * An account is never banned: a ban on an account would let anyone who
 * knows a user's name lock that user out. Failures on one account from
 * many addresses (a distributed guess) only slow down, and from
 * max_failures_account failures on every one waits delay_max_ms.
 *
 * A success clears the account's count but not the address's: an attacker
 * holding one valid account must not wipe its address's record by logging
 * in between guesses.
 *
 * Zero values: max_failures_ip 0 never bans (delays still grow);
 * max_failures_account 0 does not count accounts at all; window_ms 0 counts
 * each failure on its own. Addresses that are not IPv4 or IPv6 (AF_UNIX)
 * are not counted; their accounts are.
 */
struct limits_auth_policy {
	unsigned max_failures_ip;
	unsigned max_failures_account;
	uint64_t window_ms;
	uint64_t ban_ms;
	uint64_t delay_base_ms;
	uint64_t delay_max_ms;
};

/*
 * Counts a failed authentication from ip for account (NULL or "" when the
 * client never named one) and returns the delay in ms to wait before the
 * reply. *banned_r (may be NULL) is set when this failure started a ban or
 * came while one was active: the session should then answer 421 and close.
 * A key the full table cannot track gets delay_max_ms.
 */
uint64_t limits_auth_failure(struct limits *l,
			     const struct limits_auth_policy *p,
			     const struct sockaddr *ip, const char *account,
			     uint64_t now_ms, bool *banned_r);

/* Whether ip is banned at now_ms; if so *until_ms_r (may be NULL) is set. */
bool limits_banned(struct limits *l, const struct sockaddr *ip,
		   uint64_t now_ms, uint64_t *until_ms_r);

/*
 * A successful authentication: forgets the account's failures. ip's count
 * is deliberately left alone (see above).
 */
void limits_auth_success(struct limits *l, const struct sockaddr *ip,
			 const char *account, uint64_t now_ms);

/*
 * The table key of an account (false for NULL or ""). Only the tests need
 * it, to build an address with exactly the same 16 bytes.
 */
bool limits_account_key(struct limits *l, const char *account,
			uint8_t key_r[16]);

#endif
