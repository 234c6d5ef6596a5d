/*
 * A DNS block or allow list as the configuration names it, in the style
 * of Postfix's postscreen_dnsbl_sites: "zone[=codes][*weight]".
 *
 *	zen.spamhaus.org			any 127.x.x.x answer counts
 *	zen.spamhaus.org=127.0.0.2		that answer only
 *	zen.spamhaus.org=127.0.0.[2..11]	a range in an octet
 *	list.dnswl.org=127.0.[0..255].[1;3;5]	ranges and values, ';'
 *	bl.example.net*2			weight 2 (default 1)
 *	wl.example.net=127.0.0.[2..9]*-3	a negative weight
 *
 * codes is a dotted quad whose octets are each a number (0-255) or a
 * bracketed list of numbers and ranges "m..n" separated by ';'. Without
 * codes, an answer in 127.0.0.0/8 counts (an answer outside it is what a
 * lapsed zone's wildcard gives, never a listing); answers in
 * 127.255.255.0/24 ("query refused", e.g. Spamhaus to a public resolver)
 * never count, whatever the codes say: the engine logs and ignores them.
 *
 * Weights are integers from -1000 to 1000. In filter.dnsbl a listing
 * adds its weight to the client's score, so a negative weight is an
 * allow list that offsets blocklists (postscreen's way); weight 0 looks
 * the zone up and logs it without counting. In filter.dnswl any listing
 * skips the blocklists, so a weight there has no meaning and is refused
 * (dnsbl_spec_check_allow()).
 *
 * Pure: no I/O, no allocation.
 */
#ifndef GODWIT_DNSBL_SPEC_H
#define GODWIT_DNSBL_SPEC_H

#include <stdbool.h>
#include <stddef.h>

/* A zone's longest name: the IPv6 query name (64 nibble octets before
 * it, 73 with ".ip6.arpa" it does not have) must still fit in 253. */
#define DNSBL_ZONE_MAX 188
#define DNSBL_WEIGHT_MAX 1000
#define DNSBL_SPEC_MAX 512	/* octets of a spec as written */

struct dnsbl_spec {
	char zone[DNSBL_ZONE_MAX + 1];	/* lower case, no final dot */
	int weight;			/* default 1 */
	bool any;			/* no codes: any 127.0.0.0/8 answer */
	unsigned char codes[4][32];	/* per octet, a bit per value */
	bool has_weight;		/* "*weight" was written */
};

/*
 * Parses s. 0 and *r filled, or -1 with a short readable reason in
 * *error_r (a static string).
 */
int dnsbl_spec_parse(const char *s, struct dnsbl_spec *r,
		     const char **error_r);

/* Whether the A answer a (4 octets, network order) is a listing that
 * counts for sp. False for 127.255.255.0/24 always. */
bool dnsbl_spec_match(const struct dnsbl_spec *sp, const unsigned char a[4]);

/* Whether a is a "query refused" answer, 127.255.255.0/24. */
bool dnsbl_answer_refused(const unsigned char a[4]);

/* For the configuration's item checks (CONF_STRINGS): NULL, or what is
 * wrong. The allow-list check refuses weights too. */
const char *dnsbl_spec_check(const char *s);
const char *dnsbl_spec_check_allow(const char *s);

#endif
