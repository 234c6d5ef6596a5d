/*
 * What the files of the IMAP core (imap_session.c: connection, input,
 * literals, dispatch, replies; imap_auth.c: CAPABILITY, STARTTLS,
 * AUTHENTICATE, LOGIN, ENABLE, ID, LOGOUT, NOOP) share and the mailbox
 * and fetch files do not see: the session's private part around the
 * struct imap_session of imap_private.h.
 */
#ifndef GODWIT_IMAP_CORE_H
#define GODWIT_IMAP_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imapd/imap_private.h"
#include "net/listener.h"

#define IMAP_MAX_ERRORS 10	/* BADs before we hang up */
#define IMAP_MAX_STREAMED 4	/* streamed literals in one command */

struct imap_core {
	struct imap_session s;	/* first: what the other files see */
	const struct config_listener *listener;
	bool in_loop;		/* inside the input loop: no recursion */
	bool parse_again;	/* after CONTINUE: the parser may STREAM */
	bool refused;		/* a literal of this command was refused */
	bool spool_failed;	/* ... because its file could not be made */
	bool counted_user;	/* holds a slot of the per-user limit */
	/* the streamed literal being received */
	bool streaming;
	int stream_fd;		/* -1: discarded */
	uint64_t stream_left;
	int fds[IMAP_MAX_STREAMED];	/* this command's streamed literals */
	size_t nfds;
	/* AUTHENTICATE and LOGIN */
	bool auth_login;	/* LOGIN, not AUTHENTICATE */
	unsigned commands;	/* commands run, for the logout line */
};

static inline struct imap_core *
imap_core(struct session *ses)
{
	return (struct imap_core *)ses;
}

/* imap_session.c */
/* A BAD outside a command (a parse error): counted like any BAD. */
void imap_bad(struct imap_core *c, const char *tag, const char *code,
	      const char *text);
/* The capabilities for the state the session is in, into buf. */
void imap_capabilities(const struct imap_core *c, char *buf, size_t size);
/* Logins (LOGIN, AUTHENTICATE) are possible now: TLS or plaintext. */
bool imap_login_allowed(const struct imap_core *c);
/* STARTTLS can be offered. */
bool imap_starttls_offered(const struct imap_core *c);
/* Closes the streamed literals' files of the running command. */
void imap_close_streamed(struct imap_core *c);

/* imap_auth.c: the auth thread's answers (session ops) */
void imap_auth_done(struct session *ses, enum sasl_status st, char *chal);
void imap_auth_delay_done(struct session *ses);
/* "* BYE" for a banned client, and the end. */
void imap_close_banned(struct imap_core *c);
/* The session ends: the per-user slot is given back. */
void imap_user_release(struct imap_core *c);

#endif
