/*
 * The SMTP server session (RFC 5321 and extensions): one per connection,
 * an explicit state machine driven by libevent bufferevent callbacks.
 */
#ifndef GODWIT_SMTP_SERVER_H
#define GODWIT_SMTP_SERVER_H

struct session_ops;

/*
 * The SMTP protocol over the session core (net/session.h): MX,
 * submission and submissions listeners.
 */
extern const struct session_ops smtp_session_ops;

enum smtp_state {
	SMTP_S_GREETING,	/* early-talker pause before the final 220 */
	SMTP_S_HELO,		/* waiting for EHLO/HELO */
	SMTP_S_READY,		/* no transaction */
	SMTP_S_MAIL,		/* MAIL accepted, no RCPT yet */
	SMTP_S_RCPT,		/* at least one RCPT command */
	SMTP_S_DATA,		/* receiving DATA */
	SMTP_S_BDAT,		/* receiving a BDAT chunk */
	SMTP_S_COMMIT,		/* waiting for the durable write */
	SMTP_S_CLOSING,		/* flushing the last reply */
	SMTP_S_AUTH,		/* AUTH: waiting for a continuation line */
	SMTP_S_AUTH_WAIT,	/* AUTH failed: the reply waits (brute force) */
	SMTP_S_AUTH_BUSY,	/* a SASL step runs on the auth thread */
	SMTP_S_TLS,		/* implicit TLS: handshake before the greeting */
};

const char *smtp_state_name(enum smtp_state state);

#endif
