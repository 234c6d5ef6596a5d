/*
 * Routing by DNS (RFC 5321 section 5) over libunbound, asynchronously in
 * a libevent loop: the resolver's one fd is watched by an event, and
 * ub_process() runs the callbacks. Used by the queue runner; `godwit
 * route DOMAIN` prints what it finds.
 *
 * A route for a mail domain is the list of hosts to try, in order:
 *  - the MX records sorted by preference, equal preferences shuffled
 *    (RFC 5321 5.1), each host's A and AAAA looked up;
 *  - no MX record at all (NOERROR/NODATA): the domain itself as the one
 *    host (implicit MX), its A and AAAA;
 *  - a null MX (RFC 7505: one MX, preference 0, exchange "."): status
 *    DNS_NULLMX, the mail is bounced at once (5.1.10);
 *  - NXDOMAIN, or no MX and no address: DNS_PERMFAIL (5.1.2 / 5.4.4);
 *  - SERVFAIL, timeouts, bogus DNSSEC: DNS_TEMPFAIL (try later).
 * An MX host whose addresses cannot be found is left out of the route
 * (its error remembered); if no host has an address the status is
 * DNS_TEMPFAIL when any lookup failed temporarily, else DNS_PERMFAIL.
 * MX hosts that are IP literals or "localhost" are not special-cased
 * here: the runner decides what it refuses to connect to.
 *
 * An address literal domain "[192.0.2.1]" or "[IPv6:2001:db8::1]" (RFC
 * 5321 4.1.3), and, with DNS_ROUTE_NO_MX, a plain host name (for a
 * smarthost) skip the MX lookup: the route is that one host. A literal's
 * host is named by its bare address ("192.0.2.1", "2001:db8::1"); a
 * literal of a family that is not wanted is DNS_PERMFAIL.
 *
 * Other MX details: records whose rdata does not parse are skipped (all
 * of them bad: DNS_TEMPFAIL); a "." among real MX hosts is skipped, not a
 * null MX; a host named twice is kept at its lowest preference. A whole
 * route lookup is bounded to 60 s: lookups still pending then count as
 * temporary failures (hosts already found are still returned).
 * Domains are ASCII only: U-labels (SMTPUTF8) are not converted to
 * A-labels and are invalid here (DNS_PERMFAIL "invalid domain").
 *
 * Address order within a host: the preferred family first, then the
 * other, each in the order DNS gave; a family that is not wanted is not
 * looked up at all.
 */
#ifndef GODWIT_DNS_H
#define GODWIT_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct event_base;

/* dns: in the configuration */
struct dns_config {
	char *mode;		/* "system" (default) or "recursive" */
	char **forwarders;	/* "IP" or "IP@port"; replace mode */
	size_t nforwarders;
	char *trust_anchor;	/* NULL: no DNSSEC validation */
};

#define DNS_MAX_HOSTS 10	/* MX hosts kept per route (lowest pref.) */
#define DNS_MAX_ADDRS 8		/* addresses kept per host and family */
#define DNS_NAME_MAX 253	/* a domain name in text, no final dot */

struct dns_resolver_config {
	/* "system": the name servers of /etc/resolv.conf (ub_ctx_resolvconf);
	 * "recursive": libunbound resolves from the root itself; anything
	 * else is not allowed here: forwarders go in forwarders[]. */
	const char *mode;
	/* forwarders: "192.0.2.53", "192.0.2.53@5353", "2001:db8::53",
	 * "2001:db8::53@5353" (ub_ctx_set_fwd syntax); when non-empty they
	 * are used instead of mode. */
	const char *const *forwarders;
	size_t nforwarders;
	/* file with a DNSSEC trust anchor (ub_ctx_add_ta_file / autr); NULL or
	 * "": no validation. With one, answers must validate: bogus ones are
	 * DNS_TEMPFAIL, and dns_route.secure says whether the MX answer was
	 * validated secure (for DANE later). */
	const char *trust_anchor;
};

enum dns_family_pref {
	DNS_PREFER_IPV6,
	DNS_PREFER_IPV4,
};

struct dns_lookup_opts {
	bool want_ipv4;		/* both false: both are wanted */
	bool want_ipv6;
	enum dns_family_pref prefer;
	bool no_mx;		/* DNS_ROUTE_NO_MX: name is a host, not a domain */
};

enum dns_status {
	DNS_OK,
	DNS_TEMPFAIL,
	DNS_PERMFAIL,
	DNS_NULLMX,
};

struct dns_host {
	char *name;		/* MX exchange, no trailing dot, lower case */
	unsigned pref;		/* MX preference; 0 for implicit MX/literals */
	struct sockaddr_storage *addrs;	/* port 0; the caller sets it */
	socklen_t *addrlens;
	size_t naddrs;
};

struct dns_route {
	enum dns_status status;
	char error[256];	/* why, when status != DNS_OK: readable,
				 * e.g. "no MX or address records for
				 * example.org" or "SERVFAIL looking up MX
				 * for example.org" */
	bool secure;		/* DNSSEC-validated MX (or A/AAAA) answer */
	struct dns_host *hosts;
	size_t nhosts;
};

struct dns_resolver;
struct dns_query;

/*
 * Returns NULL with *error_r set (caller frees) if libunbound refuses the
 * configuration (bad forwarder address, unreadable trust anchor). The
 * resolver never reads /etc/hosts.
 */
struct dns_resolver *dns_resolver_new(struct event_base *base,
				      const struct dns_resolver_config *cfg,
				      char **error_r);
/* Cancels every outstanding query (their callbacks are not called). */
void dns_resolver_free(struct dns_resolver **r);
/* The event loop the resolver runs in (for callers that must defer a
 * callback to it, e.g. when no lookup was needed). */
struct event_base *dns_resolver_base(const struct dns_resolver *r);

/*
 * cb is called exactly once, later, from the event loop (never from
 * inside dns_route_lookup), unless the query is cancelled first. The
 * route belongs to the callee: free it with dns_route_free(). The domain
 * is copied; it may be upper or lower case, with or without a final dot.
 * Once cb runs the query handle is gone (do not cancel it then); cb may
 * free the resolver or cancel other queries. dns_query_cancel(NULL) is a
 * no-op.
 *
 * libunbound's background worker is a thread of the caller
 * (ub_ctx_async dothread=1: never a forked process, which would inherit
 * the locks and descriptors of the caller's other threads), started at
 * the first lookup with the asynchronous signals blocked, and ended by
 * dns_resolver_free(). If its pipe fails, pending lookups fail with
 * DNS_TEMPFAIL and a fresh context is made for later lookups.
 */
typedef void dns_route_cb(struct dns_route *route, void *arg);
struct dns_query *dns_route_lookup(struct dns_resolver *r, const char *domain,
				   const struct dns_lookup_opts *opts,
				   dns_route_cb *cb, void *arg);
void dns_query_cancel(struct dns_query *q);
void dns_route_free(struct dns_route **route);

/* ---- pure parts, exposed for tests ------------------------------------ */

struct dns_mx {
	char *name;		/* "" for the null MX's "." */
	unsigned pref;
};

/*
 * Sorts mx by preference and shuffles runs of equal preference with rnd
 * (a function returning a uniform value in [0, n), so tests can pass a
 * deterministic one; NULL: arc4random_uniform). Sorting is stable, so the
 * order rnd shuffles is the order given. A value >= n from rnd is taken
 * modulo n. Returns true if the set is a null MX (RFC 7505: exactly one
 * record, exchange "." — any preference).
 */
bool dns_mx_order(struct dns_mx *mx, size_t n,
		  unsigned (*rnd)(unsigned n, void *arg), void *rnd_arg);

/*
 * Parses one MX record's rdata as libunbound hands it out (RFC 1035
 * 3.3.9: a 16-bit preference, then the exchange as an uncompressed wire
 * name that must end exactly at len). Labels must be host-name labels
 * (letters, digits, '-' not first or last, '_'). Fills *pref_r and name
 * (size bytes; DNS_NAME_MAX + 1 always fits) with the lower-cased
 * exchange without a final dot, "" for the root. Returns 0, or -1 if
 * malformed or name is too small.
 */
int dns_mx_rdata_parse(const unsigned char *rdata, size_t len,
		       unsigned *pref_r, char *name, size_t size);

/*
 * Parses a domain as written in an address: "example.org", "Example.ORG.",
 * "[192.0.2.1]", "[IPv6:2001:db8::1]". For literals fills *ss and *len (port
 * 0) and returns 1; for names returns 0 with the lower-cased name without
 * a final dot in name (size bytes); -1 if invalid or too long. Names are
 * ASCII host names: labels of 1-63 letters, digits, '-' (not first or
 * last) and '_', at most DNS_NAME_MAX in all. The "IPv6:" tag is
 * case-insensitive; an IPv4 literal must be a strict dotted quad.
 */
int dns_domain_parse(const char *domain, char *name, size_t size,
		     struct sockaddr_storage *ss, socklen_t *len);

/* How the hosts of a DNS_OK route were found. */
enum dns_route_kind {
	DNS_ROUTE_MX,		/* the domain's MX records */
	DNS_ROUTE_IMPLICIT,	/* no MX: the domain's own address */
	DNS_ROUTE_HOST,		/* no_mx: the name is a host */
	DNS_ROUTE_LITERAL,	/* an address literal */
};
enum dns_route_kind dns_route_kind(const struct dns_route *rt);

/*
 * One route lookup with a resolver and an event loop of its own, for a
 * command-line tool: waits for the answer. 0 with *route_r (free it with
 * dns_route_free()), or -1 with *error_r (caller frees) when the resolver
 * or the loop cannot run.
 */
int dns_route_lookup_wait(const struct dns_resolver_config *cfg,
			  const char *domain,
			  const struct dns_lookup_opts *opts,
			  struct dns_route **route_r, char **error_r);

/* ---- any one record type (SPF, DKIM, DMARC, iprev, DNSBL) ------------- */

#define DNS_T_A 1
#define DNS_T_PTR 12
#define DNS_T_MX 15
#define DNS_T_TXT 16
#define DNS_T_AAAA 28

enum dns_answer_status {
	DNS_ANS_OK,		/* records of the type asked for */
	DNS_ANS_NODATA,		/* the name exists, no such records */
	DNS_ANS_NXDOMAIN,	/* the name does not exist */
	DNS_ANS_TEMPFAIL,	/* SERVFAIL, timeout, bogus DNSSEC, ... */
	DNS_ANS_INVALID,	/* the name is not a valid domain name */
	DNS_ANS_PENDING_,	/* internal: never handed out */
};

struct dns_answer {
	enum dns_answer_status status;
	int rrtype;
	/* the rdata of each record of the type asked for (CNAMEs followed
	 * by the resolver), in the order DNS gave, each NUL-terminated after
	 * rrlen[i] octets for convenience; at most 256 records */
	unsigned char **rr;
	size_t *rrlen;
	size_t nrr;
	bool secure;		/* DNSSEC-validated (with a trust anchor) */
	char error[256];	/* why, for TEMPFAIL and INVALID */
};

/*
 * Looks up the records of type rrtype for name (ASCII, presentation
 * format, with or without a final dot; dns_name_valid() must accept it,
 * else the answer is DNS_ANS_INVALID). cb is called exactly once, later,
 * from the event loop, unless the query is cancelled first (then never);
 * the answer belongs to the callee (dns_answer_free()). After timeout_ms
 * the answer is DNS_ANS_TEMPFAIL. Names are not lower-cased.
 */
typedef void dns_answer_cb(struct dns_answer *answer, void *arg);
struct dns_query *dns_lookup(struct dns_resolver *r, const char *name,
			     int rrtype, unsigned timeout_ms,
			     dns_answer_cb *cb, void *arg);
void dns_answer_free(struct dns_answer **answer);

/*
 * A name that can be looked up: labels of 1-63 octets of printable ASCII
 * (blanks included: SPF macros can make such names, and DNS labels may
 * hold any octet), at most DNS_NAME_MAX in all, one optional final dot.
 * dns_lookup() escapes every octet but letters, digits, '-' and '_', so
 * nothing in a name is read as an escape or a zone-file token.
 */
bool dns_name_valid(const char *name);

/*
 * A TXT record's rdata: its character-strings joined with nothing in
 * between (RFC 7208 3.3, RFC 6376 3.6.2.2), NUL-terminated in out (size
 * octets). 0, or -1 if malformed or too long for out.
 */
int dns_txt_rdata(const unsigned char *rdata, size_t len, char *out,
		  size_t size, size_t *outlen_r);

/* A PTR (or CNAME) record's rdata: the name, lower case, no final dot,
 * with the label rules of dns_mx_rdata_parse(). 0 or -1. */
int dns_name_rdata_parse(const unsigned char *rdata, size_t len, char *name,
			 size_t size);

/* "192.0.2.1" -> "1.2.0.192.in-addr.arpa", an IPv6 address -> its
 * nibbles under ip6.arpa. 0, or -1 if ip is not an address or out
 * (at least 74 octets for IPv6) is too small. */
int dns_reverse_name(const char *ip, char *out, size_t size);

#endif
