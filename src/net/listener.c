/*
 * Listen addresses and listener names (net/listener.h).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "lib/xalloc.h"
#include "net/listener.h"

int
parse_listen_addr(const char *s, struct listen_addr *r, const char **error_r)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *port_s;
	uint64_t port;
	size_t hlen;

	memset(r, 0, sizeof(*r));
	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (end == NULL) {
			*error_r = "missing ']' after the IPv6 address";
			return -1;
		}
		hlen = (size_t)(end - s - 1);
		if (hlen >= sizeof(host)) {
			*error_r = "not an IPv6 address";
			return -1;
		}
		memcpy(host, s + 1, hlen);
		host[hlen] = '\0';
		if (end[1] != ':') {
			*error_r = "missing ':PORT' after the address";
			return -1;
		}
		port_s = end + 2;
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&r->ss;
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
			*error_r = "not an IPv6 address";
			return -1;
		}
		sin6->sin6_family = AF_INET6;
		r->len = sizeof(*sin6);
	} else {
		const char *colon = strchr(s, ':');
		if (colon == NULL) {
			*error_r = "missing ':PORT' after the address";
			return -1;
		}
		if (strchr(colon + 1, ':') != NULL) {
			*error_r = "an IPv6 address must be written in "
			           "brackets, as in [::1]:25";
			return -1;
		}
		hlen = (size_t)(colon - s);
		if (hlen == 0) {
			*error_r = "missing address (use 0.0.0.0 or [::] for "
			           "all addresses)";
			return -1;
		}
		if (hlen >= sizeof(host)) {
			*error_r = "not an IPv4 address";
			return -1;
		}
		memcpy(host, s, hlen);
		host[hlen] = '\0';
		port_s = colon + 1;
		struct sockaddr_in *sin = (struct sockaddr_in *)&r->ss;
		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
			*error_r = "not an IPv4 address (host names are not "
			           "allowed)";
			return -1;
		}
		sin->sin_family = AF_INET;
		r->len = sizeof(*sin);
	}
	if (parse_uint64(port_s, &port) < 0 || port < 1 || port > 65535) {
		*error_r = "the port must be a number from 1 to 65535";
		memset(r, 0, sizeof(*r));
		return -1;
	}
	if (r->ss.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&r->ss)->sin6_port =
		    htons((uint16_t)port);
	else
		((struct sockaddr_in *)&r->ss)->sin_port =
		    htons((uint16_t)port);
	r->text = xstrdup(s);
	return 0;
}

const char *
listener_proto_name(enum listener_proto proto)
{
	switch (proto) {
	case PROTO_SMTP:
		return "smtp";
	case PROTO_SUBMISSION:
		return "submission";
	case PROTO_SUBMISSIONS:
		return "submissions";
	case PROTO_POP3:
		return "pop3";
	case PROTO_POP3S:
		return "pop3s";
	case PROTO_METRICS:
		return "metrics";
	case PROTO_IMAP:
		return "imap";
	case PROTO_IMAPS:
		return "imaps";
	}
	return "unknown";
}

unsigned
listener_proto_port(enum listener_proto proto)
{
	static const unsigned ports[] = {25, 587, 465, 110, 995, 9925, 143, 993};

	return (unsigned)proto < sizeof(ports) / sizeof(ports[0]) ? ports[proto]
	                                                          : 0;
}

bool
listen_addr_equal(const struct listen_addr *a, const struct listen_addr *b)
{
	if (a->ss.ss_family != b->ss.ss_family)
		return false;
	if (a->ss.ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)&a->ss;
		const struct sockaddr_in *y = (const void *)&b->ss;
		return x->sin_port == y->sin_port &&
		       x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *x = (const void *)&a->ss;
	const struct sockaddr_in6 *y = (const void *)&b->ss;
	return x->sin6_port == y->sin6_port &&
	       memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
}

void
listener_clear(struct config_listener *li)
{
	free(li->name);
	for (size_t j = 0; j < li->naddrs; j++)
		free(li->addrs[j].text);
	free(li->addrs);
	cidr_list_clear(&li->allow);
	cidr_list_clear(&li->deny);
	cidr_list_clear(&li->proxy_trusted);
	memset(li, 0, sizeof(*li));
}
