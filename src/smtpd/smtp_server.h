/*
 * The SMTP server session (RFC 5321 and extensions): one per connection,
 * an explicit state machine driven by libevent bufferevent callbacks.
 */
#ifndef GODWIT_SMTP_SERVER_H
#define GODWIT_SMTP_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lib/cidr.h"
#include "net/auth.h"
#include "net/client_limits.h"
#include "net/tls.h"

struct worker;
struct config_listener;

/* smtp: in the configuration */
struct smtpd_config {
	uint64_t max_message_size;	/* bytes; SIZE and DATA enforce it */
	unsigned max_recipients;	/* per message; 452 4.5.3 past it */
	unsigned max_errors;		/* per session; then 421 + close */
	unsigned max_command_line;	/* octets incl. CRLF (RFC: 512) */
	unsigned max_text_line;		/* octets incl. CRLF (RFC: 1000) */
	bool vrfy;			/* false: VRFY answers 252 */
	char recipient_delimiter;	/* '+'; '\0' = no sub-addressing */
	struct cidr_list trusted_networks; /* may relay; empty by default */
	uint64_t timeout_command;	/* seconds for a whole command line,
					 * RFC 5321 4.5.3.2 */
	uint64_t timeout_data_block;	/* seconds without a byte in DATA/
					 * BDAT; also the allowance below */
	uint64_t timeout_data_end;
	uint64_t min_data_rate;		/* octets/s DATA/BDAT must keep up
					 * after timeout_data_block; 0 = off */
};

/* submission: in the configuration */
struct submission_config {
	bool check_from;	/* header From: must be the user's */
	/* with check_from: no display name showing another address */
	bool refuse_address_display_name;
};

/*
 * What an SMTP session reads of the configuration: the top-level names
 * and copies of the sections it uses. Filled in by the worker from its
 * configuration, which outlives it (the strings and lists are borrowed).
 */
struct smtpd_settings {
	const char *hostname;		/* greeting, Received, Message-ID */
	const char *postmaster;		/* NULL = postmaster@hostname */
	const char *data_dir;
	struct smtpd_config smtp;
	struct submission_config submission;
	struct auth_config auth;
	struct limits_config limits;
	struct tls_config tls;
};

/* Takes over fd. Applies access lists and connection limits first. */
void smtp_session_start(struct worker *w, const struct config_listener *l,
			int fd, const struct sockaddr *sa, socklen_t salen);

/* SIGTERM: idle sessions get 421 now; the others after their transaction. */
void smtp_sessions_shutdown(struct worker *w);
/* Stress began: sessions not logged in get the short timeouts now. */
void smtp_sessions_stress(struct worker *w);
/* At exit: frees whatever sessions are left. */
void smtp_sessions_free(struct worker *w);

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
