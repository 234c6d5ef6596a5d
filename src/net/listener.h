/*
 * A listener of the configuration (listeners: in godwit.yaml): a name,
 * a protocol, the addresses it binds and who may connect. The daemon
 * binds them; the protocol servers read the per-listener settings.
 */
#ifndef GODWIT_LISTENER_H
#define GODWIT_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lib/cidr.h"

enum listener_proto {
	PROTO_SMTP,        /* MX, port 25: STARTTLS optional, AUTH optional */
	PROTO_SUBMISSION,  /* 587: STARTTLS, AUTH required */
	PROTO_SUBMISSIONS, /* 465: implicit TLS, AUTH required */
	PROTO_POP3,        /* 110 */
	PROTO_POP3S,       /* 995 */
	PROTO_METRICS,     /* Prometheus over HTTP/1.1 (net/metrics_http) */
	PROTO_IMAP,        /* 143: STARTTLS (RFC 9051) */
	PROTO_IMAPS,       /* 993: implicit TLS (RFC 8314) */
};

struct listen_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char *text; /* as written: "0.0.0.0:25", "[::1]:2525" */
};

struct config_listener {
	char *name; /* unique, used in logs: listener=mx */
	enum listener_proto proto;
	struct listen_addr *addrs;
	size_t naddrs;
	struct cidr_list allow; /* empty: everybody (minus deny) */
	struct cidr_list deny;
	uint64_t greet_pause_ms; /* early-talker test; 0 = off */
	bool auth;           /* offer AUTH (default: submission(s), pop3(s),
	                      * imap(s)) */
	bool plaintext_auth; /* allow AUTH/USER without TLS (e.g. loopback);
	                      * default false */
	bool proxy_protocol; /* a PROXY header (v1 or v2) from a balancer
	                      * comes first (net/session_proxy.h) */
	struct cidr_list proxy_trusted; /* proxy_trusted_networks: the
	                                 * balancers; required with it */
	int line;            /* where it was defined, for messages */
	unsigned index;      /* its place in the list (metrics' label) */
};

/* "smtp", "submission", "submissions", "pop3", "pop3s", "metrics", "imap",
 * "imaps" */
const char *listener_proto_name(enum listener_proto proto);
/* The protocol's well-known port: 25, 587, 465, 110, 995, 143, 993; metrics: 9925
 * (ours: Prometheus has no port for godwit). */
unsigned listener_proto_port(enum listener_proto proto);

/*
 * "0.0.0.0:25", "[::]:25", "[::1]:2525", "127.0.0.1:2525". Returns -1 with
 * *error_r set for anything else.
 */
int parse_listen_addr(const char *s, struct listen_addr *r,
                      const char **error_r);
/* Whether a and b are the same address and port. */
bool listen_addr_equal(const struct listen_addr *a,
                       const struct listen_addr *b);
/* Frees what a listener owns (not li itself). */
void listener_clear(struct config_listener *li);

#endif
