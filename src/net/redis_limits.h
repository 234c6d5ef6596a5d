/*
 * The client limits of net/client_limits.h held cluster-wide in Redis
 * (net/redis.h), so several godwit nodes count one client's or one
 * account's doings together. The local table stays the one every
 * decision reads without a round trip; Redis adds the other nodes' part:
 *
 * - Authentication failures count per client (an IPv4 address, an IPv6
 *   client network) and per wide IPv6 network in keys with a TTL of
 *   auth.failure_window, and per account under the account's keyed hash.
 *   When the cluster's count for a client reaches auth.max_failures_ip
 *   (the wide network's: times ipv6_wide_factor), one Lua script sets the
 *   ban key (TTL auth.ban_time) and publishes it; every node installs the
 *   ban in its local table (limits_ban_install), and a node that
 *   (re)connects loads the live bans.
 * - Connections count per client and wide network in a key per
 *   limits.connection_rate window; the one that goes past the limit
 *   publishes a rate block until the window ends, installed on every
 *   node (limits_rate_block).
 * - Sending limits (submission.limits) count per account in hour and day
 *   keys; the first refusal sets a block key until the window that ran
 *   out ends. This one is asked and answered: MAIL and RCPT wait for it
 *   (at most redis.timeout, then the local table decides).
 *
 * Key layout under the prefix: authfail:ip:<net>, authfail:net:<net>,
 * authfail:acct:<hash>, ban:ip:<net>, ban:net:<net>, rate:ip:<net>,
 * rate:net:<net>, send:{mh,rh,md,rd}:<hash>, send:block:<hash>, with
 * <net> as limits_net_text() writes it ("192.0.2.7/32",
 * "2001:db8:1:2::/64").
 */
#ifndef GODWIT_REDIS_LIMITS_H
#define GODWIT_REDIS_LIMITS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "net/client_limits.h"
#include "net/redis.h"

struct redis_limits;

/* Subscribes to the others' bans and blocks; NULL when r is NULL. */
struct redis_limits *rlimits_new(struct redis *r, struct limits *l);
void rlimits_free(struct redis_limits **rl);
struct redis *rlimits_redis(const struct redis_limits *rl);

/* A failed authentication counted cluster-wide (after the local
 * limits_auth_failure, which answers the session). */
void rlimits_auth_failure(struct redis_limits *rl,
			  const struct limits_auth_policy *p,
			  const struct sockaddr *sa, const char *account);
/* A connection attempt the local rate counted. */
void rlimits_connect(struct redis_limits *rl, const struct limits_policy *p,
		     const struct sockaddr *sa);

/* Redis's verdict on a message or recipient of an account. */
struct rlimits_send_answer {
	enum limits_send_verdict verdict;
	bool block_started;
	uint64_t count;		/* of the spent budget */
	uint64_t ttl_ms;	/* the block's time left */
};
/*
 * Asks Redis to take one message or recipient of account; fn gets the
 * reply, to read with rlimits_send_reply(). NULL: ask the local table.
 */
struct redis_req *rlimits_send(struct redis_limits *rl,
			       const struct limits_send_policy *p,
			       const char *account, bool message,
			       redis_reply_fn *fn, void *arg);
/* false: no usable answer (decide locally). */
bool rlimits_send_reply(const struct redisReply *reply,
			struct rlimits_send_answer *a_r);

/* For the tests: the message a ban is published as, and its parse. */
int rlimits_parse_message(const char *msg, size_t len, bool *ban_r,
			  bool *wide_r, uint64_t *ttl_ms_r,
			  struct sockaddr_storage *ss_r);

#endif
