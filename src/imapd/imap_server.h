/*
 * The IMAP server session: IMAP4rev2 (RFC 9051) with IMAP4rev1 (RFC 3501)
 * compatibility, over the session core (net/session.h), one per
 * connection, an explicit state machine like the SMTP and POP3 sessions.
 */
#ifndef GODWIT_IMAP_SERVER_H
#define GODWIT_IMAP_SERVER_H

#include <stdint.h>

#include "net/auth.h"
#include "net/client_limits.h"
#include "net/tls.h"

/* imap: in the configuration */
struct imapd_config {
	uint64_t timeout;	/* seconds: autologout once logged in
				 * (RFC 9051 section 5.4: at least 30 min) */
	uint64_t login_timeout;	/* seconds, before login */
	uint64_t max_connections_per_user;	/* 0: no limit */
	uint64_t max_append;	/* octets of one APPEND message */
	uint64_t idle_check_interval;	/* seconds; 0: inotify alone */
};

/*
 * What an IMAP session reads of the configuration (borrowed from the
 * worker's configuration, which outlives it).
 */
struct imapd_settings {
	const char *hostname;
	const char *data_dir;
	const char *mail_dir;	/* the Maildirs (config.h) */
	struct imapd_config imap;
	struct auth_config auth;
	struct limits_config limits;
	struct tls_config tls;
};

struct session_ops;

/* The IMAP protocol over the session core. */
extern const struct session_ops imap_session_ops;

#endif
