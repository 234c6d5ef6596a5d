/*
 * DNS block and allow lists for the client address (RFC 5782), IPv4 and
 * IPv6, postscreen-style specs ("zen.spamhaus.org=127.0.0.[2..11]*3"),
 * all zones queried in parallel through net/dns.
 * (Owner: the DNSBL helper; the config struct is the shared part.)
 */
#ifndef GODWIT_DNSBL_H
#define GODWIT_DNSBL_H

#include <stdbool.h>
#include <stddef.h>

/* filter.dnsbl, filter.dnswl, filter.dnsbl_threshold */
struct dnsbl_config {
	char **dnsbl;		/* specs, as written */
	size_t ndnsbl;
	char **dnswl;
	size_t ndnswl;
	unsigned threshold;	/* score that blocks; default 1 */
};

#endif
