/*
 * iprev (RFC 8601 section 3): forward-confirmed reverse DNS of an SMTP
 * client. The PTR records of its address are looked up, then the
 * addresses (A for an IPv4 client, AAAA for IPv6) of up to
 * IPREV_MAX_NAMES of the names found, all at once; the check passes when
 * one of them maps back to the client's address. Asynchronous over
 * net/dns in the event loop.
 *
 *   pass       a name maps back (outcome.name is it)
 *   fail       no PTR (NXDOMAIN, NODATA), or no name maps back
 *   temperror  a lookup failed temporarily and nothing passed
 *   permerror  the address is not an address
 */
#ifndef GODWIT_IPREV_H
#define GODWIT_IPREV_H

#include "net/dns.h"

#define IPREV_MAX_NAMES 10

enum iprev_result {
	IPREV_PASS,
	IPREV_FAIL,
	IPREV_TEMPERROR,
	IPREV_PERMERROR,
};

/* "pass", "fail", "temperror", "permerror" (RFC 8601 spelling) */
const char *iprev_result_name(enum iprev_result r);

struct iprev_outcome {
	enum iprev_result result;
	char name[DNS_NAME_MAX + 1];	/* pass: the confirmed name, else "" */
	char reason[160];		/* not pass: why, readable */
};

struct iprev_check;
typedef void iprev_done_cb(const struct iprev_outcome *o, void *arg);

/*
 * Starts the check of ip ("192.0.2.1", "2001:db8::1"); cb runs exactly
 * once, later, from the event loop, unless cancelled first. timeout_ms
 * bounds each lookup. The outcome is valid during cb only.
 */
struct iprev_check *iprev_start(struct dns_resolver *r, const char *ip,
				unsigned timeout_ms, iprev_done_cb *cb,
				void *arg);
/* Stops a check: cb is never called. NULL is a no-op. */
void iprev_cancel(struct iprev_check *c);

#endif
