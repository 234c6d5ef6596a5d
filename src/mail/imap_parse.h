/*
 * The IMAP command parser: RFC 9051 section 9 (IMAP4rev2) and RFC 3501
 * (IMAP4rev1), with LITERAL+ / LITERAL- (RFC 7888) and literal8 (RFC 3516).
 *
 * Pure and resumable: it sees octets, never a socket. The session feeds
 * it what has arrived; it says how much it used and whether a command is
 * whole, needs more, needs a continuation request ("+ ") for a
 * synchronizing literal, or starts a literal too big for memory, which the
 * caller consumes itself (streams to a file) and then hands back.
 *
 * Bounded: a command's text outside literals is at most
 * limits.line_max octets per line, literals up to limits.inline_max are
 * held in memory, larger ones are streamed; all memory for one command's
 * arguments is at most limits.total_max; lists nest at most
 * limits.depth_max deep. Anything over a bound is an error, not a crash.
 *
 * A command is: tag SP name [SP "UID"-prefixed name] [SP args] CRLF. The
 * parser knows the generic syntax (atoms, quoted strings, literals, NIL,
 * parenthesised lists, and the bracketed section specs of FETCH such as
 * BODY[HEADER.FIELDS (A B)]<0.100>, which it keeps as one atom whose
 * text includes the brackets and the list) and nothing of what a
 * command's arguments mean: each command interprets its arguments.
 */
#ifndef GODWIT_IMAP_PARSE_H
#define GODWIT_IMAP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IMAP_TAG_MAX 64		/* longer tags are an error */
#define IMAP_NAME_MAX 32	/* a command name, "UID" not counted */

enum imap_arg_type {
	IMAP_ARG_ATOM,		/* atom, incl. \Flags, sets, FETCH items */
	IMAP_ARG_STRING,	/* a quoted string, unescaped */
	IMAP_ARG_LITERAL,	/* a literal held in memory */
	IMAP_ARG_NIL,		/* the atom NIL (any case) */
	IMAP_ARG_LIST,		/* ( ... ) */
	IMAP_ARG_STREAMED,	/* a literal the caller consumed itself */
};

struct imap_arg {
	enum imap_arg_type type;
	bool literal8;		/* ~{n}: may hold NUL octets (BINARY) */
	/* ATOM, STRING, LITERAL: the text, NUL-terminated (a literal may
	 * also hold NULs: use len) */
	const char *str;
	size_t len;
	/* LIST: its elements */
	struct imap_arg *list;
	size_t nlist;
	/* STREAMED: the literal's size, and the caller's handle for it
	 * (what imap_parser_stream_done() was given) */
	uint64_t size;
	int fd;
};

struct imap_command {
	char tag[IMAP_TAG_MAX + 1];
	char name[IMAP_NAME_MAX + 1];	/* upper case; "FETCH" for UID FETCH */
	bool uid;			/* the UID prefix */
	struct imap_arg *args;		/* after the name */
	size_t nargs;
};

struct imap_parser_limits {
	size_t line_max;	/* octets of one line outside literals */
	size_t inline_max;	/* a larger literal is streamed */
	size_t total_max;	/* a command's arguments in memory */
	unsigned depth_max;	/* list nesting */
};

enum imap_parse_result {
	IMAP_PARSE_MORE,	/* all input used; a command is not whole */
	IMAP_PARSE_DONE,	/* *cmd_r is a whole command */
	/* a synchronizing literal was announced: the caller sends a
	 * continuation request ("+ Ready") and feeds the rest */
	IMAP_PARSE_CONTINUE,
	/* a literal too big for memory (imap_parser_stream_size() octets)
	 * starts right after the used input: the caller consumes exactly
	 * that many octets itself, then calls imap_parser_stream_done();
	 * imap_parser_partial() says which command it belongs to. When the
	 * literal was synchronizing, CONTINUE comes first. */
	IMAP_PARSE_STREAM,
	/* a syntax or bound error: imap_parser_error() says what, the
	 * command's tag (or "*") is in imap_parser_partial()->tag; the
	 * parser has skipped or will skip the rest of that command
	 * (including the octets of a non-synchronizing literal on it) */
	IMAP_PARSE_ERROR,
};

struct imap_parser;

struct imap_parser *imap_parser_new(const struct imap_parser_limits *lim);
void imap_parser_free(struct imap_parser *p);

/*
 * Feeds len octets; *used_r is how many were taken (the rest is fed
 * again). On DONE, *cmd_r points into the parser and stays valid until
 * the next imap_parse() or imap_parser_reset().
 */
enum imap_parse_result imap_parse(struct imap_parser *p, const char *buf,
				  size_t len, size_t *used_r,
				  const struct imap_command **cmd_r);

/* After STREAM, or CONTINUE (to refuse it before "+ Ready": answer and
 * imap_parser_reset()): the literal's size. */
uint64_t imap_parser_stream_size(const struct imap_parser *p);
/* After STREAM: the octets were consumed (fd: the caller's handle, kept
 * in the IMAP_ARG_STREAMED arg; -1 if they were discarded). */
void imap_parser_stream_done(struct imap_parser *p, int fd);
/* The command being parsed: tag and name as far as known ("" if not). */
const struct imap_command *imap_parser_partial(const struct imap_parser *p);
/* After ERROR: what was wrong, for "tag BAD <text>". */
const char *imap_parser_error(const struct imap_parser *p);
/* Forgets any half-parsed command (after STARTTLS, after a line read
 * outside the parser such as IDLE's DONE). */
void imap_parser_reset(struct imap_parser *p);

/* Helpers for the commands' own argument checks. */
/* An astring (atom, quoted string or literal; the atom NIL counts, as
 * the grammar says): true, and its text in *s and *len. */
bool imap_arg_astring(const struct imap_arg *a, const char **s, size_t *len);
/* An atom equal to word, any case. */
bool imap_arg_atom_is(const struct imap_arg *a, const char *word);

#endif
