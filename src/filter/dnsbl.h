/*
 * DNS block and allow lists for the client address (RFC 5782), IPv4 and
 * IPv6, postscreen-style specs ("zen.spamhaus.org=127.0.0.[2..11]*3",
 * mail/dnsbl_spec.h), all zones queried in parallel through net/dns.
 *
 * For each zone the A records of the RFC 5782 name (the IPv4 octets
 * reversed, or the 32 nibbles of an IPv6 address, then the zone) are
 * looked up; when an answer counts, the TXT records of the same name
 * give the reason. Every lookup is bounded by the timeout; one that
 * fails or times out is "not listed". Answers in 127.255.255.0/24
 * ("query refused": Spamhaus says so to public resolvers) never count
 * and are logged at LOG_ERR, once per zone per ten minutes per process.
 *
 * The verdict: a listing in any filter.dnswl zone allows the client
 * (the blocklists are skipped); otherwise the score is the sum of the
 * weights of the blocklists that list it, and a score of at least the
 * threshold blocks.
 */
#ifndef GODWIT_DNSBL_H
#define GODWIT_DNSBL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* filter.dnsbl, filter.dnswl, filter.dnsbl_threshold */
struct dnsbl_config {
	char **dnsbl;		/* specs, as written */
	size_t ndnsbl;
	char **dnswl;
	size_t ndnswl;
	unsigned threshold;	/* score that blocks; default 1 */
	uint64_t timeout_ms;	/* filter.dnsbl_timeout, each lookup */
};

#define DNSBL_MAX_ZONES 32	/* dnsbl and dnswl zones looked up at most */
#define DNSBL_REASON_MAX 200	/* a TXT reason kept, cleaned */
#define DNSBL_CODES_MAX 64	/* the answers, "127.0.0.2,127.0.0.4" */

struct dnsbl_zone_result {
	const char *spec;	/* as configured (borrowed) */
	char zone[256];
	int weight;
	bool allow;		/* a filter.dnswl zone */
	bool listed;		/* an answer that counts */
	bool refused;		/* a 127.255.255.x answer */
	bool failed;		/* SERVFAIL, timeout */
	char codes[DNSBL_CODES_MAX];	/* the A answers, printable */
	char reason[DNSBL_REASON_MAX];	/* TXT, printable ASCII, or "" */
};

struct dnsbl_result {
	struct dnsbl_zone_result *z;
	size_t nz;
	int score;		/* sum of the listing blocklists' weights */
	bool allowed;		/* listed in a filter.dnswl zone */
	bool blocked;		/* !allowed and score >= threshold */
	/* blocked: the listing blocklist of the greatest weight, for the
	 * reply; allowed: the allow list */
	const struct dnsbl_zone_result *named;
};

struct dns_resolver;
struct dnsbl_check;

/*
 * Starts the lookups of every zone of cf for ip (text, IPv4 or IPv6).
 * NULL when there is nothing to look up (no zones, or ip is not an
 * address). cb runs once, later, from the loop, unless the check is
 * freed first; the result stays readable (dnsbl_check_result()) until
 * dnsbl_check_free().
 */
typedef void dnsbl_done_cb(struct dnsbl_check *c, void *arg);
struct dnsbl_check *dnsbl_check_start(struct dns_resolver *r,
				      const struct dnsbl_config *cf,
				      const char *ip, dnsbl_done_cb *cb,
				      void *arg);
bool dnsbl_check_done(const struct dnsbl_check *c);
/* After cb. */
const struct dnsbl_result *dnsbl_check_result(const struct dnsbl_check *c);
/* Cancels what is pending. NULL is a no-op. */
void dnsbl_check_free(struct dnsbl_check **c);

/* The RFC 5782 name of ip in zone into out (size octets): 0, or -1 if ip
 * is not an address or the name does not fit. */
int dnsbl_query_name(const char *ip, const char *zone, char *out,
		     size_t size);

#endif
