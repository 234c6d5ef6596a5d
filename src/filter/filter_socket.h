/*
 * The socket of a filter (clamd, a milter) as the configuration writes
 * it, Postfix's milter syntax: "unix:/absolute/path", or "inet:HOST:PORT"
 * with HOST an IPv4 or IPv6 address, bracketed or not ("inet:[::1]:3310",
 * "inet:::1:3310"), or localhost (127.0.0.1); "inet6:HOST:PORT" is the
 * same for IPv6 only (localhost: ::1). No other names, which would need a
 * lookup. Parsed once, when the configuration is loaded.
 */
#ifndef GODWIT_FILTER_SOCKET_H
#define GODWIT_FILTER_SOCKET_H

#include <sys/socket.h>

struct filter_addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

/* 0, or -1 with *error_r (static text) saying what is wrong. */
int filter_socket_parse(const char *spec, struct filter_addr *a,
			const char **error_r);

/* On a TCP socket fd of family ss: TCP_NODELAY. A filter's exchanges are
 * small writes that wait for an answer: with Nagle's algorithm and the
 * peer's delayed ACK each costs some 40 ms. */
void filter_socket_nodelay(int fd, const struct sockaddr_storage *ss);

#endif
