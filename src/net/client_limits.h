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
 *
 * A "client" is an IPv4 address, or an IPv6 network of ipv6_prefix bits
 * (/64 by default): every IPv6 customer holds at least a /64, and counting
 * per /128 would let one rotate addresses past every limit. Every table
 * keyed by client (connections, rate, early-talker passes, failures,
 * bans) uses that key. IPv6 clients also share a second, wider budget per
 * ipv6_wide_prefix (/48 by default, a site's usual allocation, 65536 /64s):
 * wide_factor times the per-client connection limit, rate and failures
 * before a ban, so rotating /64s inside a /48 does not start afresh either.
 * The grouping is fixed when the table is created; the budgets are policy
 * and may change at reload.
 */
#ifndef GODWIT_CLIENT_LIMITS_H
#define GODWIT_CLIENT_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define LIMITS_MAX_WORKERS 64
#define LIMITS_SEND_NCOUNTS 4
#define LIMITS_HOUR_MS ((uint64_t)3600 * 1000)
#define LIMITS_DAY_MS (24 * LIMITS_HOUR_MS)

/* limits: in the configuration */
struct limits_config {
	unsigned max_connections;	/* all listeners, all workers */
	unsigned max_connections_per_ip;
	unsigned conn_rate_count;	/* connections per IP ... */
	uint64_t conn_rate_window;	/* ... per this many seconds; 0 = off */
	uint64_t greet_pass_ttl;	/* seconds an IP that passed is trusted */
	uint64_t shutdown_timeout;	/* seconds transactions get at SIGTERM */
	unsigned stress_threshold;	/* % of max_connections open at which
					 * stress begins; 0 = never */
	uint64_t stress_timeout;	/* seconds: pre-login line and TLS
					 * handshake deadline under stress */
	unsigned ipv6_prefix;		/* an IPv6 client is this network */
	unsigned ipv6_wide_prefix;	/* wider budget per this; 0: none */
	unsigned ipv6_wide_factor;	/* wide budget = per-client * this */
};

struct limits;

struct limits_policy {
	unsigned max_connections;	 /* total; 0 = unlimited */
	unsigned max_connections_per_ip; /* per client; 0 = unlimited */
	unsigned rate_count;		 /* per client per window; 0 = off */
	uint64_t rate_window_ms;
	uint64_t greet_pass_ttl_ms;
	unsigned wide_factor; /* wide network's budget; 0 = none */
	unsigned stress_on;		 /* total starting stress; 0 = never */
	unsigned stress_off;		 /* stress ends below this total */
};

/* How IPv6 clients are grouped (see the top of this file). */
struct limits_grouping {
	unsigned ipv6_prefix;	   /* 1..128 */
	unsigned ipv6_wide_prefix; /* 0 (none) or 1..ipv6_prefix-1 */
};

enum limits_verdict {
	LIMITS_OK = 0,
	LIMITS_TOO_MANY_TOTAL,	/* 421 4.7.0 too many connections */
	LIMITS_TOO_MANY_FROM_IP,/* 421 4.7.0 too many connections from you */
	LIMITS_RATE,		/* 421 4.7.0 connection rate limit */
	LIMITS_TOO_MANY_FROM_NET, /* the same for the wide network */
	LIMITS_RATE_NET,
};

/*
 * nentries is rounded up to a multiple of 8. Called once in the parent.
 * g NULL: every address is a client of its own, no wide budget (tests).
 * Returns NULL with errno set (EINVAL for a grouping out of range).
 */
struct limits *limits_create(unsigned nentries,
			     const struct limits_grouping *g);
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

/*
 * The client network of sa, or with wide its wide network, as text for
 * the logs ("2001:db8:1:2::/64", "2001:db8:1::/48", "192.0.2.7/32"); ""
 * for an address that is not tracked or has no wide network.
 */
void limits_net_text(const struct limits *l, const struct sockaddr *sa,
		     bool wide, char *buf, size_t size);

/* Whether a verdict concerns the wide network (for limits_net_text). */
bool limits_verdict_wide(enum limits_verdict v);

/* Open connections from sa's client (all workers), and in total. */
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
 * starts from zero. "Address" is the client (an IPv6 /64 by default); an
 * IPv6 client's wide network counts the same failures and is banned as a
 * whole at max_failures_ip * wide_factor.
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
	unsigned wide_factor; /* wide network bans at max_failures_ip * this */
};

struct limits_auth_verdict {
	uint64_t delay_ms;  /* to wait before the reply */
	bool banned_before; /* a ban was already active: not counted */
	bool ban_started;   /* this failure started a ban */
	bool wide;	    /* the ban (either kind) is on the wide network */
	/* for the alerts: the counts in their windows after this failure
	 * (0: not counted); the ip count is the one a ban then uses up */
	uint32_t ip_failures;
	uint32_t account_failures;
	/* addresses whose failures began in the server's current window
	 * (window_ms, one for the whole server) */
	uint32_t failing_ips;
};

/*
 * Counts a failed authentication from ip for account (NULL or "" when the
 * client never named one), the moment the failure is decided, and says
 * what to do. A failure that arrives while a ban is active (from a session
 * whose attempt was under way when another session's failure began the
 * ban) is not counted and gets banned_before: the session must answer 421
 * and close WITHOUT telling the client the verdict, or parallel sessions
 * would each learn one more than max_failures_ip verdicts. A failure that
 * starts a ban is the last one answered. A key the full table cannot
 * track gets delay_max_ms.
 */
void limits_auth_failure(struct limits *l, const struct limits_auth_policy *p,
			 const struct sockaddr *ip, const char *account,
			 uint64_t now_ms, struct limits_auth_verdict *v_r);

/*
 * Whether ip's client or wide network is banned at now_ms; if so
 * *until_ms_r and *wide_r (each may be NULL) are set. Checked at every
 * authentication step and before a success is let in.
 */
bool limits_banned(struct limits *l, const struct sockaddr *ip,
		   uint64_t now_ms, uint64_t *until_ms_r, bool *wide_r);

/*
 * State another node decided (net/redis_limits.h), installed here so the
 * connect-time admission and the checks above see it without a round
 * trip. A ban on sa's client (or with wide its wide network) until
 * until_ms, as if its failures had reached the limit here (an active
 * ban is only lengthened); a connection-rate block of the same key
 * (connections refused with LIMITS_RATE or LIMITS_RATE_NET until then);
 * a sending block of account (every MAIL and RCPT refused with reason
 * until then). Each is dropped when the table has no room for it.
 */
void limits_ban_install(struct limits *l, const struct sockaddr *sa,
			bool wide, uint64_t until_ms, uint64_t now_ms);
void limits_rate_block(struct limits *l, const struct sockaddr *sa, bool wide,
		       uint64_t until_ms, uint64_t now_ms);

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

/*
 * Sending limits of submission (R4.3): messages and recipients per
 * authenticated account, per hour and per day, counted by every worker
 * in entries of their own kind (keyed like an account's failures). Each
 * window is fixed: it starts with the first message or recipient after
 * the last one ended. A MAIL takes a message from both budgets and a
 * RCPT a recipient, the moment they are answered, so parallel sessions
 * cannot overshoot; what a transaction took is not given back when it
 * is abandoned later (an attempt is sending enough).
 *
 * The first refusal blocks the account until the window that ran out
 * ends: every MAIL and RCPT of it is refused meanwhile, and
 * limits_send_blocked() says so (the queue runner holds its queued
 * mail). A blocked entry is never replaced. 0 limits are unlimited.
 */
struct limits_send_policy {
	unsigned messages_per_hour;
	unsigned recipients_per_hour;
	unsigned messages_per_day;
	unsigned recipients_per_day;
};

enum limits_send_verdict {
	LIMITS_SEND_OK = 0,
	LIMITS_SEND_MESSAGES_HOUR,
	LIMITS_SEND_RECIPIENTS_HOUR,
	LIMITS_SEND_MESSAGES_DAY,
	LIMITS_SEND_RECIPIENTS_DAY,
};

struct limits_send_result {
	bool block_started;	/* this call began the block */
	uint64_t count, limit;	/* of the budget that is spent */
	uint64_t until_ms;	/* the block ends then */
};

/*
 * One message (message true) or recipient of account at now_ms: taken,
 * LIMITS_SEND_OK, or refused with the budget that is spent. An account
 * the full table cannot track is let by. NULL or "" accounts always pass.
 */
enum limits_send_verdict limits_send(struct limits *l,
				     const struct limits_send_policy *p,
				     const char *account, bool message,
				     uint64_t now_ms,
				     struct limits_send_result *r_r);
void limits_send_block(struct limits *l, const char *account,
		       enum limits_send_verdict reason, uint64_t until_ms,
		       uint64_t now_ms);
/* Whether account is blocked at now_ms. */
bool limits_send_blocked(struct limits *l, const char *account,
			 uint64_t now_ms);
/*
 * Sessions logged in per account (IMAP's max_connections_per_user),
 * counted per worker like connections (so a dead worker's are forgotten
 * by limits_worker_reset()) in entries of their own kind, keyed like an
 * account's failures; an entry with sessions is never replaced. One more
 * for account unless it already holds max (0: no limit): true if taken;
 * *count_r is how many it held before. An account the full table cannot
 * track is let in. Each one taken is given back by
 * limits_user_disconnect().
 */
bool limits_user_connect(struct limits *l, unsigned worker,
			 const char *account, unsigned max, uint64_t now_ms,
			 unsigned *count_r);
void limits_user_disconnect(struct limits *l, unsigned worker,
			    const char *account);
/* Moves on every time a block begins: the runner then looks for mail of
 * blocked accounts in its queue. */
uint32_t limits_send_generation(struct limits *l);
/* "messages-per-hour", ... (a log field value) */
const char *limits_send_verdict_text(enum limits_send_verdict v);

#endif
