/*
 * The POP3 server session (RFC 1939) with CAPA and response codes
 * (RFC 2449, RFC 3206), STLS (RFC 2595), implicit TLS (RFC 8314) and
 * SASL AUTH (RFC 5034): one per connection, an explicit state machine
 * driven by libevent bufferevent callbacks, like the SMTP session.
 */
#ifndef GODWIT_POP3_SERVER_H
#define GODWIT_POP3_SERVER_H

#include <stdint.h>

#include "net/auth.h"
#include "net/client_limits.h"
#include "net/tls.h"
#include "store/retention.h"

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
	const char *mail_dir;	/* the Maildirs (config.h) */
	struct pop3d_config pop3;
	struct auth_config auth;
	struct limits_config limits;
	struct tls_config tls;
	struct retention_config retention;
};

struct session_ops;

/* The POP3 protocol over the session core (net/session.h). */
extern const struct session_ops pop3_session_ops;

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
