/*
 * The session core: what every protocol session does the same way, with
 * the protocol (SMTP, POP3, and IMAP later) as a table of operations over
 * it (struct session_ops).
 *
 * The core owns the connection: admission (access lists, connection
 * limits, bans) and the client-limits slot, the session id, the
 * bufferevent with implicit TLS or STARTTLS on top, the bounded line
 * reader and the input loop, deadlines and timeouts, the close-and-flush
 * path, the end of a connection and its reason, and the jobs sent to the
 * auth thread. A protocol session is a struct that begins with a struct
 * session; the core allocates ops->size octets and calls the operations.
 *
 * The worker (daemon/worker.c) fills one struct session_server, keeps its
 * one list of sessions, and knows no protocol: it hands each accepted
 * connection to session_accept() with the listener's ops.
 */
#ifndef GODWIT_SESSION_H
#define GODWIT_SESSION_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "net/alert.h"
#include "net/client_limits.h"
#include "net/redis_limits.h"
#include "net/sasl.h"
#include "net/session_io.h"

/* The longest line session_process() takes, CRLF not counted. */
#define SESSION_LINE_MAX 4096

struct authq;
struct bufferevent;
struct cidr_list;
struct committer;
struct config_listener;
struct event;
struct event_base;
struct evbuffer;
struct session;
struct session_listener;
struct ssl_ctx_st;
struct ssl_st;
struct userdb;

/* What a worker shares with its sessions. The worker owns and fills it. */
struct session_server {
	struct event_base *base;
	struct userdb *db;
	struct limits *limits;
	struct redis_limits *rlimits;	/* the cluster's share, or NULL */
	struct limits_policy policy;
	struct limits_auth_policy auth_policy;
	struct alerts_config alerts;	/* the auth failure thresholds */
	struct committer *committer;
	struct authq *authq;		/* SASL steps off the loop */
	struct ssl_ctx_st *tls_ctx;	/* SSL_CTX, or NULL: no certificate */
	unsigned slot;
	uint64_t stress_timeout;	/* seconds, for the not logged in */
	uint64_t tls_handshake_timeout;	/* seconds */
	bool stopping;		/* SIGTERM: finish transactions, then exit */
	bool stress;		/* sessions given the stress timeouts */
	TAILQ_HEAD(, session) sessions;
	unsigned nsessions;
	/* PROXY protocol connections before their header (session_proxy.h);
	 * not sessions yet */
	LIST_HEAD(, proxy_wait) proxy_waits;
	unsigned nproxy_waits;
	unsigned long long session_seq;
	/* a session ended (nsessions already counts it out) */
	void (*gone)(void *arg);
	void *gone_arg;
};

/* Why admission refused a connection; the protocol words the reply. */
enum session_refusal {
	SESSION_REFUSE_ACCESS,	/* the listener's access lists */
	SESSION_REFUSE_LIMIT,	/* a connection limit (detail: which) */
	SESSION_REFUSE_BANNED,	/* too many failed logins */
};

struct session_ops {
	const char *name;	/* "smtp", "pop3": the log facility */
	size_t size;		/* of the protocol's session */
	size_t input_high;	/* libevent stops reading past this */
	size_t output_high;	/* no next command while more is unsent */
	/* the refusal line with its CRLF, into buf */
	void (*refusal)(const struct session_listener *l,
			enum session_refusal why, const char *detail,
			char *buf, size_t size);
	/* right after allocation (the protocol's fields; may be NULL) */
	void (*init)(struct session *s);
	/* connected: the connect line, and the greeting unless
	 * s->tls_pending (then on_tls after the handshake) */
	void (*start)(struct session *s);
	/* the TLS handshake is done (s->tls is set, the tls line logged) */
	void (*on_tls)(struct session *s);
	/*
	 * Before each line: <0 nothing is read in this state, >0 input was
	 * consumed otherwise (a message's text): go round again, 0 read a
	 * command line.
	 */
	int (*input)(struct session *s, struct evbuffer *in);
	/* the next line (session_line_take() plus the protocol's checks):
	 * 1 a line in buf, 0 more input needed, -1 the session closes */
	int (*next_line)(struct session *s, struct evbuffer *in, char *buf,
			 size_t size, size_t *len_r);
	void (*on_line)(struct session *s, char *line, size_t len);
	/* seconds the client has for a whole command line */
	uint64_t (*line_timeout)(const struct session *s);
	/* the reply before a timeout closes the session */
	void (*timeout_reply)(struct session *s);
	/* SIGTERM, and after each command while stopping */
	void (*shutdown)(struct session *s);
	/* session_close() began: the protocol's CLOSING state */
	void (*closing)(struct session *s);
	/* the auth thread's verdict (s->sasl is back) */
	void (*auth_done)(struct session *s, enum sasl_status st,
			  char *challenge);
	/* the delay after a failed login is over (s->auth_fail) */
	void (*auth_delay_done)(struct session *s);
	/* output fell to the write low watermark: true if the protocol
	 * took the turn (a response being streamed); may be NULL */
	bool (*drained)(struct session *s);
	/* at the end of every callback that may add output; may be NULL */
	void (*flush)(struct session *s);
	const char *(*state_name)(const struct session *s);
	/* the disconnect line, and the protocol's own state freed */
	void (*free)(struct session *s, const char *reason);
};

/* A listening socket's view for the core. */
struct session_listener {
	const struct session_ops *ops;
	const char *name;
	unsigned index;		/* the listener's place (metrics' label) */
	const struct cidr_list *allow;	/* empty: everyone */
	const struct cidr_list *deny;
	bool tls_port;		/* TLS from the first octet (RFC 8314) */
	bool proxy;		/* a PROXY protocol header comes first */
	const struct cidr_list *proxy_trusted;	/* who may send it */
	/* the protocol's own: the listener's and what it reads of the
	 * configuration (the core never looks inside them) */
	const struct config_listener *conf;
	const void *settings;
};

struct session {
	TAILQ_ENTRY(session) entry;
	struct session_server *srv;
	const struct session_ops *ops;
	const struct session_listener *listener;
	struct bufferevent *bev;
	struct sockaddr_storage ss;
	char ip[INET6_ADDRSTRLEN];
	char proxy[INET6_ADDRSTRLEN];	/* the balancer's address, or "" */
	char id[17];
	bool tls;		/* the TLS handshake is done */
	bool tls_pending;	/* handshake running */
	bool counted;		/* holds a slot in the limits table */
	bool paused;		/* not reading while output drains */
	bool closing;		/* session_close() was called */
	bool logged_in;		/* authenticated: no stress timeouts */
	struct line_reader line;
	const char *close_reason;	/* why session_close() was called */
	struct deadline deadline;	/* for the line, handshake or text */
	struct close_wait close_wait;	/* TLS output draining at the end */
	uint64_t started_ms;
	uint64_t write_timeout_s;	/* set by ops->init */
	/* authentication */
	struct sasl_session *sasl;	/* an exchange in progress */
	struct auth_job *auth_job;	/* a step out on the auth thread */
	const char *auth_mech;
	struct event *auth_timer;	/* delays a failed login's reply */
	bool auth_ban;		/* that failure started a ban */
	bool auth_challenged;	/* this exchange got a challenge */
	enum sasl_status auth_fail;	/* what the delayed reply says */
};

/*
 * A new connection on l: admission (refused ones are answered in the
 * protocol's words, logged and closed), then the session. Takes over fd.
 */
void session_accept(struct session_server *srv,
		    const struct session_listener *l, int fd,
		    const struct sockaddr *sa, socklen_t salen);
/*
 * The same, once a PROXY protocol header has named the client (sa):
 * proxy_ip is the balancer's address, for the connect line.
 */
void session_accept_proxied(struct session_server *srv,
			    const struct session_listener *l, int fd,
			    const struct sockaddr *sa, socklen_t salen,
			    const char *proxy_ip);

/* Stops reading; the session ends once the output is flushed. */
void session_close(struct session *s, const char *reason);
/* Ends the session now (the disconnect line says why). */
void session_free(struct session *s, const char *reason);

/* The input loop: lines to ops->on_line while the state reads them. */
void session_process(struct session *s);
/* ops->flush, if any. */
void session_flush(struct session *s);

/* The session waits for a command line (the deadline, not restarted). */
void session_wait_line(struct session *s);
/* A message's text: an allowance, then rate octets per second. */
void session_wait_data(struct session *s, uint64_t allow_s, uint64_t rate);
/* Not logged in, and the server under stress: the short timeout. */
uint64_t session_pre_auth_ms(const struct session *s, uint64_t seconds);
/* libevent's timeouts: an idle limit between reads (0: none), and the
 * write timeout that catches a client that stops reading (seconds). */
void session_set_timeouts(struct session *s, uint64_t idle_s,
			  uint64_t write_s);

/*
 * STARTTLS, after the protocol has checked it may start. ssl from
 * session_ssl_new() (NULL: TLS is not available, say so); after the go-ahead
 * reply session_starttls() throws away what the client pipelined behind
 * the command (CVE-2011-0411) and starts the handshake; -1 if the TLS
 * layer could not be made (ssl is freed; the caller answers and closes).
 */
struct ssl_st *session_ssl_new(struct session *s);
int session_starttls(struct session *s, struct ssl_st *ssl);

/* SIGTERM: ops->shutdown for every session. */
void session_server_shutdown(struct session_server *srv);
/* At exit: frees every session left ("exit"). */
void session_server_free_all(struct session_server *srv);
/*
 * Stress (client_limits.h): brings the shared state up to date, logs a
 * change, and when stress has begun shortens the waits of the sessions
 * not logged in. At every admission and release and once a second.
 */
void session_server_stress_check(struct session_server *srv);

/*
 * The brute-force brakes (client_limits.h). session_auth_banned: whether
 * the client is banned now; if so an auth event with result=banned is
 * logged (user, mech may be NULL) and the session must say so and close.
 * Called at every login line and again with each verdict.
 */
bool session_auth_banned(struct session *s, const char *user,
			 const char *mech);
/* The step (password hashing) runs on the auth thread; ops->auth_done. */
void session_auth_submit(struct session *s, const char *line);
/*
 * A failed login (why: "credentials", "cancelled", "syntax"): counted
 * and logged now, its reply delayed (ops->auth_delay_done, with
 * s->auth_fail = st and s->auth_ban). False if the client was banned
 * before it was decided: the caller closes the session as banned.
 */
bool session_auth_failed(struct session *s, const char *user,
			 enum sasl_status st);

#endif
