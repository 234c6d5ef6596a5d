/*
 * A worker process: one libevent loop serving sessions on the listening
 * sockets it inherited from the parent. Everything a session needs is
 * reached through its struct worker; there is no global server state.
 */
#ifndef GODWIT_WORKER_H
#define GODWIT_WORKER_H

#include <netinet/in.h>
#include <stdbool.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "net/client_limits.h"
#include "pop3d/pop3_server.h"
#include "smtpd/smtp_server.h"

struct config;
struct config_listener;
struct listen_addr;
struct committer;
struct authq;
struct userdb;
struct event_base;
struct smtp_session;
struct pop3_session;

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
	struct smtpd_settings smtpd;	/* what the sessions read of it */
	struct pop3d_settings pop3d;
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
	TAILQ_HEAD(, pop3_session) pop3_sessions;
	unsigned nsessions;	/* of both kinds */
	unsigned peak;		/* most sessions open since the last trim */
	unsigned long long session_seq;
	struct event *deadline;	/* bounds a stop or a drain */
	bool stress;		/* sessions given the stress timeouts */
	struct event *stress_timer;	/* looks at the shared state */
	struct event *trim;	/* gives memory back after a burst */
};

/* Runs the worker; returns the process exit code. */
int worker_main(const struct config *config, const struct bound_socket *socks,
		size_t nsocks, struct limits *limits, struct ssl_ctx_st *tls_ctx,
		unsigned slot);

/*
 * A new connection on listener l: access lists, connection limits and
 * auth bans. Returns true with the peer's address in ip and the socket
 * tuned, or false after answering the refusal in l's protocol and closing
 * fd (logged).
 */
bool worker_admit(struct worker *w, const struct config_listener *l, int fd,
		  const struct sockaddr *sa, char ip[INET6_ADDRSTRLEN]);

/*
 * A session that worker_admit() let in has ended: gives its connection
 * back to the limits (sa is the peer's address).
 */
void worker_release(struct worker *w, const struct sockaddr *sa);

/*
 * Stress (client_limits.h): brings the shared state up to date, logs a
 * change, and when stress has begun shortens the waits of this worker's
 * sessions that are not logged in. Called at every admission and release
 * and once a second.
 */
void worker_stress_check(struct worker *w);

/*
 * The brute-force brakes, shared by SMTP and POP3 (cat "smtp" or "pop3").
 *
 * worker_auth_banned: whether sa's client or network is banned now; if so
 * an auth event with result=banned is logged (user may be NULL) and the
 * session must answer 421 / -ERR [SYS/TEMP] and close, saying nothing of
 * any verdict. Sessions call it at every AUTH, USER, PASS and SASL line,
 * and again when a verdict comes back from the auth thread, before a
 * success is let in.
 *
 * worker_auth_failure: counts a failure the moment it is decided (why:
 * "credentials", "cancelled", "syntax") and logs it, and the ban it
 * started; see limits_auth_failure() for *v_r.
 */
bool worker_auth_banned(struct worker *w, const char *cat, const char *session,
			const struct sockaddr *sa, const char *ip,
			const char *user, const char *mech);
void worker_auth_failure(struct worker *w, const char *cat,
			 const char *session, const struct sockaddr *sa,
			 const char *ip, const char *user, const char *mech,
			 const char *why, struct limits_auth_verdict *v_r);

/* A fresh session id for logs: 16 hex digits, unique per host and boot. */
void worker_session_id(struct worker *w, char id[17]);

/*
 * A session ended (w->nsessions already counts it out): the worker may now
 * be able to exit, or give memory back.
 */
void worker_session_gone(struct worker *w);

#endif
