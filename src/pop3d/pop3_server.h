/*
 * The POP3 server session (RFC 1939) with CAPA and response codes
 * (RFC 2449, RFC 3206), STLS (RFC 2595), implicit TLS (RFC 8314) and
 * SASL AUTH (RFC 5034): one per connection, an explicit state machine
 * driven by libevent bufferevent callbacks, like the SMTP session.
 */
#ifndef GODWIT_POP3_SERVER_H
#define GODWIT_POP3_SERVER_H

#include <stdint.h>
#include <sys/socket.h>

#include "net/auth.h"
#include "net/client_limits.h"
#include "net/tls.h"
#include "store/retention.h"

struct worker;
struct config_listener;

/* pop3: in the configuration */
struct pop3d_config {
	uint64_t timeout;	/* seconds for a command line once logged in
				 * (autologout) */
	uint64_t login_timeout;	/* the same before login */
	uint64_t login_delay;	/* seconds between logins per mailbox;
				 * 0 = none */
};

/*
 * What a POP3 session reads of the configuration: the top-level names and
 * copies of the sections it uses. Filled in by the worker from its
 * configuration, which outlives it (the strings are borrowed).
 */
struct pop3d_settings {
	const char *hostname;
	const char *data_dir;
	struct pop3d_config pop3;
	struct auth_config auth;
	struct limits_config limits;
	struct tls_config tls;
	struct retention_config retention;
};

/* Takes over fd. Applies access lists, connection limits and bans first. */
void pop3_session_start(struct worker *w, const struct config_listener *l,
			int fd, const struct sockaddr *sa, socklen_t salen);

/* SIGTERM: idle sessions end now (nothing deleted), the others once the
 * response they are sending is complete. */
void pop3_sessions_shutdown(struct worker *w);
/* Stress began: sessions not logged in get the short timeouts now. */
void pop3_sessions_stress(struct worker *w);
/* At exit: frees whatever sessions are left (nothing deleted). */
void pop3_sessions_free(struct worker *w);

enum pop3_state {
	POP3_S_TLS,		/* implicit TLS: handshake before the greeting */
	POP3_S_AUTHORIZATION,	/* RFC 1939 section 4 */
	POP3_S_SASL,		/* AUTH: waiting for a continuation line */
	POP3_S_AUTH_BUSY,	/* a SASL step runs on the auth thread */
	POP3_S_AUTH_WAIT,	/* a failed login's reply waits (brute force) */
	POP3_S_TRANSACTION,	/* logged in, mailbox locked and scanned */
	POP3_S_SENDING,		/* a multi-line response is being streamed */
	POP3_S_CLOSING,		/* flushing the last response */
};

const char *pop3_state_name(enum pop3_state state);

#endif
