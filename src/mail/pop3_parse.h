/*
 * POP3 command lines (RFC 1939, RFC 2449, RFC 2595, RFC 5034): pure
 * parsing, no I/O. The session reads one line (CRLF removed, no NUL in
 * it, at most POP3_LINE_MAX octets without the CRLF) and hands it here.
 *
 * Grammar (RFC 1939 section 3, RFC 2449 section 3):
 *	keyword [SP arg]*
 * Keywords are case-insensitive. Arguments are separated by exactly one
 * space in the RFC; like Dovecot and Qpopper we also accept several spaces
 * and a trailing space, but never a TAB or other control character (those
 * are refused: no argument may hold a control character, 0x00-0x1F or
 * 0x7F). Each argument is at most POP3_ARG_MAX octets (RFC 2449: 40),
 * except the ones noted below.
 *
 *	command	 arguments			fields set
 *	USER	 name (1..POP3_NAME_MAX)	arg (may hold any octet >= 0x20
 *						 but no space)
 *	PASS	 password: the rest of the line after "PASS ", spaces
 *		 included, 1..POP3_PASS_MAX	arg
 *	STAT, NOOP, RSET, QUIT, CAPA, STLS	none (an argument is an error)
 *	LIST, UIDL	[msg]			has_msg, msg
 *	RETR, DELE	msg			has_msg = true, msg
 *	TOP	 msg n				has_msg = true, msg, lines
 *	AUTH	 [mechanism [initial-response]]	arg (mechanism, 1..20 chars of
 *		 A-Z a-z 0-9 - _ per RFC 4422 3.1, may be NULL for bare
 *		 "AUTH", which lists mechanisms like CAPA's SASL line),
 *		 arg2 (initial response, 1..POP3_LINE_MAX octets of
 *		 base64 or "=", or NULL)
 *	APOP	 refused: POP3_CMD_UNKNOWN (we never offer it: it needs
 *		 plaintext-equivalent secrets)
 *
 * msg is a message number, 1..POP3_MSG_MAX, in decimal digits only: no
 * sign, no space; leading zeros are accepted ("01" is 1, as in Dovecot),
 * more than 10 digits are an error. lines (TOP) is 0..POP3_LINES_MAX,
 * digits only, the same way.
 *
 * The keyword is what precedes the first space: a line that starts with
 * a space, or has a TAB after the keyword, is an unknown command, and an
 * empty line is refused ("empty command"). A line longer than
 * POP3_LINE_MAX is refused ("line too long") with cmd set. The AUTH
 * mechanism is returned as the client wrote it (compare it without case);
 * the initial response is checked for the base64 alphabet with '=' only
 * as trailing padding, the SASL decoder judges the rest.
 *
 * Whether msg names a message of the mailbox, and whether the command is
 * allowed in the session's state, is the session's business.
 */
#ifndef GODWIT_POP3_PARSE_H
#define GODWIT_POP3_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#define POP3_LINE_MAX 255	/* command line without CRLF (RFC 2449 4.) */
#define POP3_ARG_MAX 40		/* RFC 2449 section 4 */
#define POP3_NAME_MAX 254	/* USER: an email address fits */
#define POP3_PASS_MAX 250	/* PASS: what fits the line */
#define POP3_MSG_MAX 4000000000UL
#define POP3_LINES_MAX 4000000000UL

enum pop3_cmd {
	POP3_CMD_UNKNOWN,	/* not a command we know (or APOP) */
	POP3_CMD_USER,
	POP3_CMD_PASS,
	POP3_CMD_STAT,
	POP3_CMD_LIST,
	POP3_CMD_RETR,
	POP3_CMD_DELE,
	POP3_CMD_NOOP,
	POP3_CMD_RSET,
	POP3_CMD_QUIT,
	POP3_CMD_TOP,
	POP3_CMD_UIDL,
	POP3_CMD_CAPA,
	POP3_CMD_STLS,
	POP3_CMD_AUTH,
};

struct pop3_command {
	enum pop3_cmd cmd;
	bool has_msg;
	unsigned long msg;	/* 1-based message number */
	unsigned long lines;	/* TOP */
	const char *arg;	/* points into the line buffer, or NULL */
	const char *arg2;	/* AUTH initial response, or NULL */
};

/*
 * Parses line (len octets, NUL-terminated at line[len]); may write NULs
 * into line to end the arguments it points to. Returns 0 and fills *c, or
 * -1 with *c->cmd set as far as known and *error_r set to a short
 * human-readable reason for the "-ERR" reply ("unknown command",
 * "syntax: RETR msg", "invalid message number", ...), a static string
 * without control characters or CR/LF.
 */
int pop3_parse(char *line, size_t len, struct pop3_command *c,
	       const char **error_r);

/* "USER", "RETR", ... for logs; "UNKNOWN" for POP3_CMD_UNKNOWN. */
const char *pop3_cmd_name(enum pop3_cmd cmd);

#endif
