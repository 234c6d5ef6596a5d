/*
 * Greylisting: (client /24 or /64, sender, recipient) triplets answered
 * 451 4.7.1 on first sight, accepted after a delay within a window,
 * clients that pass remembered. State in the data directory, bounded and
 * expired. (Owner: the DNSBL/greylist helper.)
 */
#ifndef GODWIT_GREYLIST_H
#define GODWIT_GREYLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* filter.greylist */
struct greylist_config {
	bool enabled;		/* off by default */
	uint64_t delay;		/* seconds before a retry is accepted */
	uint64_t window;	/* seconds a first sight waits for its retry */
	uint64_t expire;	/* seconds a passed triplet/client is kept */
	unsigned auto_allow;	/* deliveries after which a client skips */
	char **skip_domains;	/* dkim=pass/spf=pass from these: never */
	size_t nskip_domains;
};

#endif
