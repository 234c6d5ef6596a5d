/*
 * A Redis client on a process's event loop (hiredis's asynchronous API
 * with its libevent adapter): the shared state of several godwit nodes
 * (net/redis_limits.h, filter/greylist_redis.c, the parent's alerts).
 *
 * Redis is a helper, never a dependency: every caller has a local answer
 * (the shared-memory table, the SQLite greylist) and uses it whenever
 * Redis cannot answer now. So the client is either up or down. Down, every
 * call returns NULL at once (nothing was sent, no callback will come) and
 * the caller decides locally; meanwhile the client reconnects with a
 * backoff (0.5 s doubling to 30 s). Up, a command is sent and its callback
 * comes once, from the loop: with the reply, or with NULL when Redis
 * answered an error, or did not answer within `redis.timeout` (a slow
 * Redis is a down one for that call; three timeouts in a row drop the
 * connection and it is down). At most REDIS_MAX_INFLIGHT commands wait
 * at once; past that, calls return NULL as when down. Each transition is
 * logged once (`fac=redis event=down` at ERROR with the reason,
 * `event=up` at WARNING after a down, INFO the first time).
 *
 * Two connections: one for commands, one subscribed to the channel
 * <prefix>events on which the nodes publish what every node must install
 * in its local table (bans, connection-rate blocks). The client is up
 * when both are ready and the cluster's hashing key is read: account
 * names go into Redis only as HMAC-SHA-256 under a random key that the
 * first node stores at <prefix>hashkey (SET NX), so every node computes
 * the same name for an account and Redis never holds the name itself.
 *
 * A process that forks must not use or free its client in the child
 * (the libevent registrations belong to the parent's epoll instance).
 */
#ifndef GODWIT_REDIS_H
#define GODWIT_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REDIS_MAX_INFLIGHT 1024
#define REDIS_KEY_MAX 512	/* a key or channel name we build */
#define REDIS_ACCOUNT_HEX 33	/* an account's hashed name, NUL included */

/* redis: in the configuration; address NULL or "": off */
struct redis_config {
	char *address;		/* host:port, [v6]:port, or /path.sock */
	char *password;		/* AUTH; NULL: none */
	unsigned database;	/* SELECT */
	char *prefix;		/* of every key and the channel */
	uint64_t timeout_ms;	/* a command's answer waited at most */
};

struct event_base;
struct redis;
struct redis_req;
struct redisReply;

/* The reply (NULL: no answer; decide locally), and the caller's arg. */
typedef void redis_reply_fn(struct redisReply *reply, void *arg);
/* A message published on <prefix>events (not NUL-terminated). */
typedef void redis_message_fn(const char *msg, size_t len, void *arg);
/* The client came up (again): e.g. load what the others published. */
typedef void redis_up_fn(void *arg);

/*
 * Splits an address: a unix socket path (begins with '/'), or host:port
 * with an IPv6 host in brackets. 0, or -1 with *error_r (static text).
 */
int redis_address_parse(const char *address, char *host, size_t hostsize,
			int *port_r, bool *unix_r, const char **error_r);

/* NULL when cf has no address. who: the process, for the logs. */
struct redis *redis_new(struct event_base *base, const struct redis_config *cf,
			const char *who);
/* Outstanding callbacks are dropped without being called. */
void redis_free(struct redis **r);

bool redis_up(const struct redis *r);
/* The configured prefix (never NULL). */
const char *redis_prefix(const struct redis *r);

/*
 * Sends one command (argv with lengths; argvlen NULL: strings). fn NULL:
 * fire and forget. NULL when the client is down or full (no callback
 * then); otherwise a handle that redis_cancel() can detach until fn runs.
 */
struct redis_req *redis_command(struct redis *r, redis_reply_fn *fn,
				void *arg, int argc, const char **argv,
				const size_t *argvlen);
/* fn will not be called; *req set to NULL. NULL is fine. */
void redis_cancel(struct redis_req **req);

/* Messages of <prefix>events to fn (one handler; NULL: none). */
void redis_on_message(struct redis *r, redis_message_fn *fn, void *arg);
/* fn after each connect (one handler). */
void redis_on_up(struct redis *r, redis_up_fn *fn, void *arg);

/*
 * The key <prefix><a><b> into buf: false if it does not fit (then the
 * caller skips Redis for that call).
 */
bool redis_key(const struct redis *r, char *buf, size_t size, const char *a,
	       const char *b);
/* An account's name in keys: hex HMAC of its lower-cased name (32 hex
 * digits). false when not up (no key yet) or account empty. */
bool redis_account_hash(const struct redis *r, const char *account,
			char out[REDIS_ACCOUNT_HEX]);

#endif
