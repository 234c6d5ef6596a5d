/*
 * A worker process: one libevent loop serving sessions on the listening
 * sockets it inherited from the parent. Everything a session needs is
 * reached through the worker's struct session_server (net/session.h);
 * there is no global server state. The worker knows no protocol.
 */
#ifndef GODWIT_WORKER_H
#define GODWIT_WORKER_H

#include <netinet/in.h>
#include <stdbool.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "net/session.h"
#include "imapd/imap_server.h"
#include "pop3d/pop3_server.h"
#include "smtpd/smtp_server.h"

struct config;
struct config_listener;
struct dkim_keyring;
struct dns_resolver;
struct listen_addr;

/* A bound listening socket and the listener it belongs to. */
struct bound_socket {
	int fd;
	const struct config_listener *listener;
	const struct listen_addr *addr;
	const char *addr_text;
};

struct worker {
	struct session_server srv;	/* what the sessions share */
	const struct config *config;
	struct smtpd_settings smtpd;	/* what the sessions read of it */
	struct pop3d_settings pop3d;
	struct imapd_settings imapd;
	bool draining;		/* reload: finish sessions, then exit */
	struct evconnlistener **lev;	/* NULL for a metrics socket */
	size_t nlev;
	struct metrics_http **mhttp;	/* one per metrics socket, or NULL */
	size_t nmhttp;
	unsigned peak;		/* most sessions open since the last trim */
	struct event *deadline;	/* bounds a stop or a drain */
	struct event *stress_timer;	/* looks at the shared state */
	struct event *trim;	/* gives memory back after a burst */
	struct dns_resolver *resolver;	/* the checks' (port 25), or NULL */
	struct greylist *greylist;	/* filter.greylist's state, or NULL */
	struct redis *redis;		/* the cluster's Redis, or NULL */
};

/* Runs the worker; returns the process exit code. */
/* keyring: the DKIM signing keys the parent loaded, or NULL. */
int worker_main(const struct config *config, const struct bound_socket *socks,
		size_t nsocks, struct limits *limits, struct ssl_ctx_st *tls_ctx,
		const struct dkim_keyring *keyring, unsigned slot);

#endif
