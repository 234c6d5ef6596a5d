/*
 * A worker process: one libevent loop serving sessions on the listening
 * sockets it inherited from the parent. Everything a session needs is
 * reached through its struct worker; there is no global server state.
 */
#ifndef GODWIT_WORKER_H
#define GODWIT_WORKER_H

#include <stdbool.h>
#include <sys/queue.h>

#include "client_limits.h"

struct config;
struct config_listener;
struct listen_addr;
struct committer;
struct authq;
struct userdb;
struct event_base;
struct smtp_session;

/* A bound listening socket and the listener it belongs to. */
struct bound_socket {
	int fd;
	const struct config_listener *listener;
	const struct listen_addr *addr;
	const char *addr_text;
};

struct worker {
	struct event_base *base;
	const struct config *config;
	struct userdb *db;
	struct limits *limits;
	struct limits_policy policy;
	struct limits_auth_policy auth_policy;
	struct committer *committer;
	struct authq *authq;		/* SASL steps off the loop */
	struct ssl_ctx_st *tls_ctx;	/* SSL_CTX, or NULL: no certificate */
	unsigned slot;
	bool stopping;		/* SIGTERM: finish transactions, then exit */
	bool draining;		/* reload: finish sessions, then exit */
	struct evconnlistener **lev;
	size_t nlev;
	TAILQ_HEAD(, smtp_session) sessions;
	unsigned nsessions;
	unsigned long long session_seq;
	struct event *deadline;	/* bounds a stop or a drain */
};

/* Runs the worker; returns the process exit code. */
int worker_main(const struct config *config, const struct bound_socket *socks,
		size_t nsocks, struct limits *limits, struct ssl_ctx_st *tls_ctx,
		unsigned slot);

/* A session ended: the worker may now be able to exit. */
void worker_session_gone(struct worker *w);

#endif
