/*
 * Greylisting: (client /24 or /64, sender, recipient) triplets answered
 * 451 4.7.1 on first sight, accepted after a delay within a window,
 * clients that pass remembered.
 *
 * The state is one SQLite database, <data_dir>/filter/greylist.sqlite, in WAL
 * mode with a short busy timeout, shared by every worker process. Each
 * check is one short local transaction (a few statements on indexed
 * rows), run on the worker's loop: it stays well under a millisecond on
 * a local disk, and a database that stays locked past the busy timeout
 * makes the check fail open (the mail is not greylisted; logged).
 *
 * A triplet first seen at t0 passes when retried in [t0 + delay,
 * t0 + window]; a retry after the window starts it again. A passed
 * triplet passes until unused for `expire`. Each message accepted through
 * a passed triplet counts a delivery for its client network; after
 * auto_allow of them the network passes without triplets until unused
 * for `expire`. At most max_entries triplets and as many networks are
 * kept (the oldest go first); expired rows are swept once a minute.
 */
#ifndef GODWIT_GREYLIST_H
#define GODWIT_GREYLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "net/redis.h"

/* filter.greylist */
struct greylist_config {
	bool enabled;		/* off by default */
	uint64_t delay;		/* seconds before a retry is accepted */
	uint64_t window;	/* seconds a first sight waits for its retry */
	uint64_t expire;	/* seconds a passed triplet/client is kept */
	unsigned auto_allow;	/* deliveries after which a client skips */
	char **skip_domains;	/* dkim=pass/spf=pass from these: never */
	size_t nskip_domains;
	unsigned max_entries;	/* triplets (and networks) kept at most */
};

enum greylist_verdict {
	GREYLIST_PASS,		/* a passed triplet */
	GREYLIST_ALLOWED,	/* the client network is auto-allowed */
	GREYLIST_WAIT,		/* first sight or too early: 451 */
	GREYLIST_ERROR,		/* the database failed: not greylisted */
};

struct greylist;

/* Opens (creates) the database at path. NULL with *error_r (caller
 * frees). */
struct greylist *greylist_open(const char *path,
			       const struct greylist_config *cf,
			       char **error_r);
void greylist_close(struct greylist **g);

/*
 * The triplet's verdict at now; for GREYLIST_WAIT *wait_r is the seconds
 * left before a retry passes. net is the client network
 * (greylist_client_net()), sender "" for the null sender; both are
 * lower-cased by the caller if wanted.
 */
enum greylist_verdict greylist_check(struct greylist *g, const char *net,
				     const char *sender, const char *rcpt,
				     time_t now, uint64_t *wait_r);
/* A message was accepted through passed triplets of net. */
void greylist_delivered(struct greylist *g, const char *net, time_t now);

/*
 * The same in Redis when redis: is configured (greylist_redis.c): the
 * check is asked with greylist_redis_check (NULL: Redis cannot answer
 * now, use greylist_check) and its reply read by greylist_redis_verdict
 * (false: no usable answer, use greylist_check). A delivery is counted
 * there by greylist_redis_delivered (false: count it locally).
 */
struct redis_req *greylist_redis_check(struct redis *r,
				       const struct greylist_config *cf,
				       const char *net, const char *sender,
				       const char *rcpt, redis_reply_fn *fn,
				       void *arg);
bool greylist_redis_verdict(const struct redisReply *reply,
			    enum greylist_verdict *v_r, uint64_t *wait_r);
bool greylist_redis_delivered(struct redis *r,
			      const struct greylist_config *cf,
			      const char *net);

/* "192.0.2.0/24" or "2001:db8:1:2::/64" for an address in text; -1 if it
 * is not one. IPv4-mapped IPv6 addresses count as IPv4. */
int greylist_client_net(const char *ip, char *out, size_t size);

#endif
