/* CIDR parsing and matching. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/cidr.h"
#include "lib/util.h"
#include "lib/xalloc.h"

int
cidr_parse(const char *s, struct cidr *r, const char **error_r)
{
	char buf[INET6_ADDRSTRLEN + 8];
	char *slash;
	uint64_t prefix;
	unsigned max, i;

	memset(r, 0, sizeof(*r));
	if (strlcpy_checked(buf, s, sizeof(buf)) < 0) {
		*error_r = "network too long";
		return -1;
	}
	if ((slash = strchr(buf, '/')) != NULL)
		*slash++ = '\0';
	if (inet_pton(AF_INET, buf, r->addr) == 1) {
		r->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, r->addr) == 1) {
		r->family = AF_INET6;
		max = 128;
	} else {
		*error_r = "not an IPv4 or IPv6 address";
		return -1;
	}
	if (slash == NULL) {
		prefix = max;
	} else if (parse_uint64(slash, &prefix) < 0 || prefix > max) {
		*error_r = "invalid prefix length";
		return -1;
	}
	r->prefix = (uint8_t)prefix;
	for (i = 0; i < max / 8; i++) {
		unsigned bits = prefix > i * 8 ? (unsigned)prefix - i * 8 : 0;
		if (bits >= 8)
			continue;
		if ((r->addr[i] & (uint8_t)(0xff >> bits)) != 0) {
			*error_r = "host bits set after the prefix length";
			return -1;
		}
	}
	return 0;
}

static bool
prefix_equal(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
	unsigned whole = prefix / 8, rest = prefix % 8;

	if (memcmp(a, b, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (a[whole] & mask) == (b[whole] & mask);
}

bool
cidr_match(const struct cidr *c, const struct sockaddr *sa)
{
	static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0,
					     0, 0, 0, 0, 0xff, 0xff};

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;
		if (c->family != AF_INET)
			return false;
		return prefix_equal((const uint8_t *)&sin->sin_addr, c->addr,
				    c->prefix);
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;
		const uint8_t *a = sin6->sin6_addr.s6_addr;
		if (c->family == AF_INET6)
			return prefix_equal(a, c->addr, c->prefix);
		if (memcmp(a, v4mapped, 12) == 0)
			return prefix_equal(a + 12, c->addr, c->prefix);
	}
	return false;
}

bool
cidr_list_match(const struct cidr_list *l, const struct sockaddr *sa)
{
	for (size_t i = 0; i < l->n; i++)
		if (cidr_match(&l->v[i], sa))
			return true;
	return false;
}

void
cidr_list_add(struct cidr_list *l, const struct cidr *c)
{
	l->v = xreallocarray(l->v, l->n + 1, sizeof(*l->v));
	l->v[l->n++] = *c;
}

void
cidr_text(const struct cidr *c, char *buf, size_t size)
{
	char a[INET6_ADDRSTRLEN] = "?";

	inet_ntop(c->family, c->addr, a, sizeof(a));
	snprintf(buf, size, "%s/%u", a, c->prefix);
}

void
cidr_list_clear(struct cidr_list *l)
{
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

void
sockaddr_key(const struct sockaddr *sa, uint8_t key[16])
{
	memset(key, 0, 16);
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &sin->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;
		memcpy(key, sin6->sin6_addr.s6_addr, 16);
	}
}

void
sockaddr_ntop(const struct sockaddr *sa, char *buf, size_t size)
{
	const void *a;

	if (sa->sa_family == AF_INET)
		a = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	else {
		strlcpy_checked(buf, "unknown", size);
		return;
	}
	if (inet_ntop(sa->sa_family, a, buf, (socklen_t)size) == NULL)
		strlcpy_checked(buf, "unknown", size);
}

bool
key_is_v4(const uint8_t key[16])
{
	static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0,
					     0, 0, 0, 0, 0xff, 0xff};

	return memcmp(key, v4mapped, 12) == 0;
}

void
key_mask(uint8_t key[16], unsigned prefix)
{
	unsigned i;

	for (i = 0; i < 16; i++) {
		unsigned bits = prefix > i * 8 ? prefix - i * 8 : 0;

		if (bits < 8)
			key[i] &= (uint8_t)(0xff00 >> bits);
	}
}

void
key_net_text(const uint8_t key[16], unsigned prefix, char *buf, size_t size)
{
	char a[INET6_ADDRSTRLEN];
	bool v4 = key_is_v4(key) && prefix >= 96;

	if (inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? key + 12 : key, a,
		      sizeof(a)) == NULL) {
		strlcpy_checked(buf, "unknown", size);
		return;
	}
	snprintf(buf, size, "%s/%u", a, v4 ? prefix - 96 : prefix);
}
