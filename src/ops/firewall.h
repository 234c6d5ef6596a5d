/*
 * `godwit firewall`: packet filter rules for the configured listeners, in
 * the syntax of nftables, iptables-restore (IPv4 and IPv6), ufw or
 * firewalld. The rules open each listener's port on each of its
 * addresses (a wildcard address on every address of its family; a
 * loopback address needs no rule), drop what the listener's deny list
 * names first, let in only what its allow list names when it has one,
 * and limit new connections per source to the MX (protocol smtp)
 * listeners in the kernel, an outer layer in front of limits.*.
 */
#ifndef GODWIT_FIREWALL_H
#define GODWIT_FIREWALL_H

#include <stdbool.h>
#include <stdio.h>

struct config;

enum fw_format {
	FW_NFTABLES,
	FW_IPTABLES,
	FW_UFW,
	FW_FIREWALLD,
};

/* "nftables", "iptables", "ufw", "firewalld"; -1 for anything else. */
int fw_format_parse(const char *s, enum fw_format *r);

struct fw_options {
	enum fw_format format;
	/* new connections per minute and source to an MX listener, and the
	 * burst allowed above it; 0: from limits.connection_rate (doubled,
	 * so that the daemon's own limit, which answers 421, is met first),
	 * else 60 */
	unsigned rate_per_min;
	unsigned burst;
	/* iptables: AF_INET for the iptables-restore part only, AF_INET6
	 * for the ip6tables-restore part only, 0 for both */
	int family;
};

/*
 * Writes the rules for c's listeners to f in o->format (whole text: a
 * file for `nft -f`; iptables-restore input for IPv4, then, after a line
 * "# ip6tables-restore", the IPv6 rules for ip6tables-restore, both for
 * --noflush, as a chain GODWIT that INPUT must jump to; shell scripts of
 * ufw and of `firewall-cmd --permanent` commands).
 */
void firewall_write(const struct config *c, const struct fw_options *o,
		    FILE *f);

/* The per-minute rate and burst firewall_write() uses for c and o. */
void firewall_rate(const struct config *c, const struct fw_options *o,
		   unsigned *rate_r, unsigned *burst_r);

#endif
