/*
 * What the files of the IMAP session share: the session struct, the
 * command tables, and the reply helpers. imap_session.c is the core
 * (connection, parser, dispatch, replies, CAPABILITY NOOP LOGOUT
 * STARTTLS AUTHENTICATE LOGIN ENABLE ID); imap_mailbox.c the mailbox
 * commands (SELECT EXAMINE CREATE DELETE RENAME SUBSCRIBE UNSUBSCRIBE
 * LIST LSUB NAMESPACE STATUS APPEND IDLE CLOSE UNSELECT EXPUNGE STORE
 * COPY MOVE, and their UID forms); imap_fetch.c FETCH and SEARCH (and
 * UID FETCH, UID SEARCH, ESEARCH).
 *
 * A command runs as one call of its handler, which ends it with
 * imap_done() (the tagged reply), or, if it cannot finish in one call
 * (a FETCH streaming message files, IDLE, AUTHENTICATE), sets cont
 * and/or line_hook and returns; the core reads no further command until
 * imap_done() is called. cont is called when the output buffer has
 * drained below the low mark; line_hook gets each raw input line (CRLF
 * stripped) instead of the parser; cleanup, if set, when the session ends
 * with the command unfinished.
 */
#ifndef GODWIT_IMAP_PRIVATE_H
#define GODWIT_IMAP_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imapd/imap_server.h"
#include "mail/imap_parse.h"
#include "net/session.h"

struct evbuffer;
struct imap_folder;
struct imap_msg;
struct imap_store;
struct maildir_watch_entry;
struct strbuf;

enum imap_state {
	IMAP_S_TLS,		/* implicit TLS: handshake before greeting */
	IMAP_S_NOTAUTH,		/* not authenticated */
	IMAP_S_AUTH,		/* authenticated, nothing selected */
	IMAP_S_SELECTED,
	IMAP_S_LOGOUT,		/* flushing the last response */
};

/* the states a command is allowed in */
#define IMAP_IN_NOTAUTH 0x1u
#define IMAP_IN_AUTH 0x2u
#define IMAP_IN_SELECTED 0x4u
#define IMAP_IN_ANY (IMAP_IN_NOTAUTH | IMAP_IN_AUTH | IMAP_IN_SELECTED)
#define IMAP_IN_LOGGED (IMAP_IN_AUTH | IMAP_IN_SELECTED)

#define IMAP_OUTPUT_HIGH (256 * 1024)	/* stop refilling above this */

struct imap_session {
	struct session ses;	/* first: the core's part */
	const struct imapd_settings *config;
	enum imap_state state;
	struct imap_parser *parser;
	char account[320];	/* normalised, once logged in */
	char *maildir;		/* the account's Maildir, once logged in */
	struct imap_store *store;	/* once logged in */
	struct imap_folder *folder;	/* SELECTED */
	bool rev2;		/* ENABLE IMAP4rev2 */
	bool utf8;		/* rev2 or UTF8=ACCEPT: names in UTF-8 */
	unsigned errors;	/* BADs; too many and we hang up */
	/* the command running (valid until imap_done()) */
	const struct imap_command *cmd;
	void (*cont)(struct imap_session *s);
	void (*line_hook)(struct imap_session *s, char *line, size_t len);
	void (*cleanup)(struct imap_session *s);
	void *cmd_state;	/* the running command's own */
	/* change notification for the selected folder */
	struct maildir_watch_entry *watch;
	bool changed;		/* a change was notified since the last sync */
	/* what the folder looked like at the last periodic check (changes
	 * by other nodes, which inotify does not see): imap_idle.c */
	uint64_t sig[9];	/* mtime (ns), size, inode of each */
	uint64_t sig_checked_ms;
	/* SEARCHRES (RFC 5182): the last SEARCH ... SAVE, as UIDs */
	uint32_t *saved;
	size_t nsaved;
};

typedef void imap_cmd_fn(struct imap_session *s, const struct imap_command *c);

struct imap_cmd_def {
	const char *name;	/* upper case; NULL ends a table */
	imap_cmd_fn *fn;
	unsigned states;	/* IMAP_IN_* */
	bool uid;		/* also as "UID <name>" */
};

/* each file's commands */
extern const struct imap_cmd_def imap_core_cmds[];
extern const struct imap_cmd_def imap_mailbox_cmds[];
extern const struct imap_cmd_def imap_fetch_cmds[];

/* ---- the core (imap_session.c) ------------------------------------- */

/* the output buffer, to build a long response in place */
struct evbuffer *imap_out(struct imap_session *s);
/* "* " fmt CRLF */
void imap_untagged(struct imap_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/*
 * Ends the running command: "<tag> <status> [<code>] <text>" CRLF; status
 * is "OK", "NO" or "BAD", code a response code without brackets or NULL.
 * Clears cont, line_hook, cleanup and cmd_state, and resumes reading.
 */
void imap_done(struct imap_session *s, const char *status, const char *code,
	       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* An astring/nstring as an atom, quoted string or literal (whichever the
 * octets allow; literal8 never). str NULL: NIL. */
void imap_write_string(struct evbuffer *out, const char *str, size_t len);
/* A mailbox name (UTF-8 inside) as this client reads it: modified UTF-7
 * unless s->utf8. */
void imap_write_mailbox(struct imap_session *s, struct evbuffer *out,
			const char *name);
/* A client's mailbox argument as UTF-8 into out ("INBOX" in any case is
 * INBOX); false if it is not a valid name (the caller answers BAD). */
bool imap_mailbox_arg(struct imap_session *s, const struct imap_arg *a,
		      struct strbuf *out);

/* ---- the selected folder (imap_mailbox.c) -------------------------- */

/*
 * Syncs the selected folder and sends what changed: EXPUNGE (only if
 * expunges), EXISTS, RECENT (rev1), FETCH FLAGS, FLAGS. FETCH, STORE and
 * SEARCH call it with expunges = false before their tagged OK, the other
 * commands with true.
 */
void imap_sync_report(struct imap_session *s, bool expunges);
/* "(\Seen \Flagged kw ...)" of message m of the selected folder */
void imap_write_flags(struct imap_session *s, struct evbuffer *out,
		      const struct imap_msg *m);
/* The session ends (or logs out) with a folder selected: closes it and
 * stops its change watch. The core calls it from its free; harmless
 * when nothing is selected. */
void imap_mailbox_end(struct imap_session *s);

#endif
