/*
 * A filter's socket: see filter_socket.h.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <string.h>
#include <sys/un.h>

#include "filter/filter_socket.h"

static int
parse_unix(const char *path, struct filter_addr *a, const char **error_r)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)&a->ss;
	size_t len = strlen(path);

	if (path[0] != '/') {
		*error_r = "the path must be absolute (unix:/path)";
		return -1;
	}
	if (len >= sizeof(sun->sun_path)) {
		*error_r = "the path is too long for a UNIX socket";
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)path[i] < 0x20 || path[i] == 0x7f) {
			*error_r = "control characters in the path";
			return -1;
		}
	}
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, len + 1);
	a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
	return 0;
}

static int
parse_port(const char *s, unsigned *port_r)
{
	unsigned v = 0;

	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (unsigned)(*s - '0');
		if (v > 65535)
			return -1;
	}
	*port_r = v;
	return v == 0 ? -1 : 0;
}

/* host (IPv4 or IPv6, no brackets; family AF_INET6 for IPv6 only) and
 * port into a. */
static int
inet_addr_set(const char *host, int family, unsigned port,
	      struct filter_addr *a)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;

	if (strcmp(host, "localhost") == 0)
		host = family == AF_INET6 ? "::1" : "127.0.0.1";
	if (family != AF_INET6 &&
	    inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		a->len = sizeof(*sin);
		return 0;
	}
	memset(&a->ss, 0, sizeof(a->ss));
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		a->len = sizeof(*sin6);
		return 0;
	}
	return -1;
}

static int
parse_inet(const char *s, int family, struct filter_addr *a,
	   const char **error_r)
{
	char host[INET6_ADDRSTRLEN];
	const char *end, *port;
	unsigned p;

	if (s[0] == '[') {
		end = strchr(s, ']');
		if (end == NULL || end[1] != ':') {
			*error_r = "expected inet:[IPv6]:port";
			return -1;
		}
		s++;
		port = end + 2;
	} else {
		end = strrchr(s, ':');
		if (end == NULL) {
			*error_r = "expected inet:host:port";
			return -1;
		}
		port = end + 1;
	}
	if (parse_port(port, &p) < 0) {
		*error_r = "the port must be a number 1..65535";
		return -1;
	}
	if (end == s || (size_t)(end - s) >= sizeof(host)) {
		*error_r = "the host must be an IP address or localhost";
		return -1;
	}
	memcpy(host, s, (size_t)(end - s));
	host[end - s] = '\0';
	if (inet_addr_set(host, family, p, a) < 0) {
		*error_r = family == AF_INET6
				   ? "the host must be an IPv6 address or "
				     "localhost (no names)"
				   : "the host must be an IP address or "
				     "localhost (no names)";
		return -1;
	}
	return 0;
}

int
filter_socket_parse(const char *spec, struct filter_addr *a,
		    const char **error_r)
{
	memset(a, 0, sizeof(*a));
	if (strncmp(spec, "unix:", 5) == 0)
		return parse_unix(spec + 5, a, error_r);
	if (strncmp(spec, "inet:", 5) == 0)
		return parse_inet(spec + 5, AF_UNSPEC, a, error_r);
	if (strncmp(spec, "inet6:", 6) == 0)
		return parse_inet(spec + 6, AF_INET6, a, error_r);
	*error_r = "expected unix:/path or inet:host:port";
	return -1;
}

void
filter_socket_nodelay(int fd, const struct sockaddr_storage *ss)
{
	int one = 1;

	if (ss->ss_family == AF_INET || ss->ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
				 sizeof(one));
}
