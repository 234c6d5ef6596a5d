/*
 * The PROXY protocol on a listener (proxy_protocol: true): a TCP load
 * balancer in front of several nodes sends the client's address first on
 * each connection, in clear, before the client's own protocol (and before
 * the TLS handshake of an implicit-TLS port).
 *
 * Only a peer in the listener's proxy_trusted_networks may send it; any
 * other is refused at once, without a greeting. A trusted peer's header
 * must be complete within the TLS handshake deadline (tls.handshake_
 * timeout, shortened under stress) or the connection is closed. The
 * header is read with exact reads (peek, then take no more than the
 * header), so the octets after it stay in the socket for the session:
 * a pipelined command or a TLS ClientHello is not lost. Then the session
 * starts (session_accept_proxied) as if the client itself had connected:
 * admission, limits, bans, access lists and every later check see the
 * client's address, and the connect line names the balancer (proxy=).
 */
#ifndef GODWIT_SESSION_PROXY_H
#define GODWIT_SESSION_PROXY_H

#include <sys/socket.h>

struct session_listener;
struct session_server;

/* A connection on a PROXY protocol listener. Takes over fd. */
void session_proxy_accept(struct session_server *srv,
			  const struct session_listener *l, int fd,
			  const struct sockaddr *sa, socklen_t salen);

/* Closes every connection still waiting for its header (SIGTERM, exit). */
void session_proxy_free_all(struct session_server *srv);

#endif
