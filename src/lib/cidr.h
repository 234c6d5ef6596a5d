/*
 * CIDR networks (IPv4 and IPv6) and matching of socket addresses against
 * lists of them. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) match IPv4
 * networks.
 */
#ifndef GODWIT_CIDR_H
#define GODWIT_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct cidr {
	int family;		/* AF_INET or AF_INET6 */
	uint8_t addr[16];	/* network byte order, host bits zero */
	uint8_t prefix;		/* 0..32 or 0..128 */
};

struct cidr_list {
	struct cidr *v;
	size_t n;
};

/* "192.0.2.0/24", "2001:db8::/32", "192.0.2.7" (a /32), "::1". */
int cidr_parse(const char *s, struct cidr *r, const char **error_r);
bool cidr_match(const struct cidr *c, const struct sockaddr *sa);
bool cidr_list_match(const struct cidr_list *l, const struct sockaddr *sa);
void cidr_list_add(struct cidr_list *l, const struct cidr *c);
void cidr_list_clear(struct cidr_list *l);
/* c in text: "192.0.2.0/24", "2001:db8::/32" (prefix always shown). */
void cidr_text(const struct cidr *c, char *buf, size_t size);

/*
 * The address of sa as 16 bytes (IPv4 as ::ffff:a.b.c.d) for use as a key,
 * and its text form ("192.0.2.7", "2001:db8::1").
 */
void sockaddr_key(const struct sockaddr *sa, uint8_t key[16]);
void sockaddr_ntop(const struct sockaddr *sa, char *buf, size_t size);

/* Whether a key from sockaddr_key() is an IPv4 address (::ffff:a.b.c.d). */
bool key_is_v4(const uint8_t key[16]);

/* Clears every bit of key after the first prefix bits (0..128). */
void key_mask(uint8_t key[16], unsigned prefix);

/*
 * A key and a prefix length as a network in text: "2001:db8:1::/64", or
 * for an IPv4 key with a prefix of 96 or more, the IPv4 form with its
 * prefix less 96 ("192.0.2.7/32").
 */
void key_net_text(const uint8_t key[16], unsigned prefix, char *buf,
		  size_t size);

#endif
