/*
 * SMTP command and address parsing (RFC 5321, 6531, 1870, 6152, 3030,
 * 3461). Pure functions: bytes in, a result or an error out. No I/O, no
 * logging, no allocation. The session (smtp_server.c) decides what to do.
 *
 * Errors carry the reply the session should send, so that every caller
 * answers the same bad input the same way.
 */
#ifndef GODWIT_SMTP_PARSE_H
#define GODWIT_SMTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMTP_LOCAL_MAX 64	/* RFC 5321 4.5.3.1.1 */
#define SMTP_DOMAIN_MAX 255	/* RFC 5321 4.5.3.1.2 */
#define SMTP_PATH_MAX 256	/* RFC 5321 4.5.3.1.3, incl. <> */
#define SMTP_XTEXT_MAX 500	/* ENVID, ORCPT values (RFC 3461) */

enum smtp_cmd {
	SMTP_CMD_UNKNOWN = 0,
	SMTP_CMD_HELO,
	SMTP_CMD_EHLO,
	SMTP_CMD_MAIL,
	SMTP_CMD_RCPT,
	SMTP_CMD_DATA,
	SMTP_CMD_BDAT,
	SMTP_CMD_RSET,
	SMTP_CMD_NOOP,
	SMTP_CMD_QUIT,
	SMTP_CMD_HELP,
	SMTP_CMD_VRFY,
	SMTP_CMD_EXPN,
	SMTP_CMD_STARTTLS,
	SMTP_CMD_AUTH,
};

/* The reply a parse error asks for: "501 5.5.4 Syntax: MAIL FROM:<address>" */
struct smtp_error {
	int code;		/* 500, 501, 504, 553, 555 ... */
	const char *enh;	/* "5.5.4" */
	const char *text;	/* static human-readable text */
};

struct smtp_command {
	enum smtp_cmd cmd;
	const char *verb;	/* points into the line */
	size_t verb_len;
	const char *arg;	/* after the verb and one space; "" if none */
};

/*
 * line is one command without its CRLF, NUL-terminated, len = strlen.
 * The caller has already refused bare CR/LF and over-long lines. Verbs are
 * case-insensitive. A command that takes no argument but got one (DATA x)
 * is an error 501 5.5.4; an unknown verb returns 0 with SMTP_CMD_UNKNOWN
 * (the session answers 500 5.5.1). Returns 0 or -1 with *err_r set.
 */
int smtp_parse_command(const char *line, size_t len, struct smtp_command *r,
		       struct smtp_error *err_r);

/*
 * A mailbox: Local-part "@" ( Domain / address-literal ), as RFC 5321
 * 4.1.2 with RFC 6531's UTF-8 extensions when utf8 is allowed.
 * - local is unquoted ("a b"@x gives `a b`); quoted is set if it was quoted.
 * - domain is lower-cased ASCII (UTF-8 domains: ASCII parts lower-cased,
 *   the rest kept); one trailing dot is removed; address literals are kept
 *   with their brackets: "[192.0.2.1]", "[IPv6:2001:db8::1]".
 * - is_literal is set for address literals.
 * - needs_utf8 is set when local or domain has non-ASCII octets.
 */
struct smtp_mailbox {
	char local[SMTP_LOCAL_MAX * 4 + 1];	/* unquoted; room for UTF-8 */
	char domain[SMTP_DOMAIN_MAX + 1];
	bool quoted;
	bool is_literal;
	bool needs_utf8;
};

/*
 * A path: "<" [ A-d-l ":" ] Mailbox ">" or, when null_ok, "<>". Source
 * routes (A-d-l) are accepted and ignored (RFC 5321 4.1.1.3 / C). A
 * missing "<>" is an error (we are strict: 501 5.5.4), as is trailing
 * garbage. Postmaster without a domain ("<postmaster>", RCPT only) is
 * accepted with an empty domain and local "postmaster".
 *
 * On return *end_r points just past the closing '>'.
 */
struct smtp_path {
	bool null;		/* "<>" */
	struct smtp_mailbox mbox;
};

int smtp_parse_path(const char *s, bool null_ok, bool postmaster_ok,
		    bool utf8_ok, struct smtp_path *r, const char **end_r,
		    struct smtp_error *err_r);

/* BODY= of MAIL (RFC 6152, RFC 3030): the one representation, from the
 * MAIL command through the queue file to the SMTP client. */
enum smtp_body { SMTP_BODY_7BIT, SMTP_BODY_8BITMIME, SMTP_BODY_BINARYMIME };
/* "7BIT", "8BITMIME", "BINARYMIME" */
const char *smtp_body_name(enum smtp_body body);
enum smtp_ret { SMTP_RET_UNSET, SMTP_RET_FULL, SMTP_RET_HDRS };

/*
 * "FROM:<path> [SP param [SP param]...]" as it follows "MAIL ".
 * Parameters: SIZE=n, BODY=7BIT|8BITMIME|BINARYMIME, SMTPUTF8,
 * RET=FULL|HDRS, ENVID=xtext, AUTH=xtext (accepted, ignored). Unknown or
 * repeated parameters: 555 5.5.4. "FROM: <a@b>" (a space after the colon)
 * is tolerated as many servers do. An address with non-ASCII octets is
 * accepted only if SMTPUTF8 is among the parameters (else 553 5.6.7).
 */
struct smtp_mail_args {
	struct smtp_path path;
	bool has_size;
	uint64_t size;
	enum smtp_body body;
	bool smtputf8;
	enum smtp_ret ret;
	char envid[SMTP_XTEXT_MAX + 1];	/* xtext-decoded; "" if none */
};
int smtp_parse_mail(const char *arg, struct smtp_mail_args *r,
		    struct smtp_error *err_r);

/*
 * "TO:<path> [SP param]...". Parameters: NOTIFY=NEVER|SUCCESS,FAILURE,DELAY
 * and ORCPT=addr-type;xtext (RFC 3461). utf8_ok: the transaction's MAIL
 * had SMTPUTF8. "<postmaster>" without a domain is accepted.
 */
enum {
	SMTP_NOTIFY_NEVER = 1 << 0,
	SMTP_NOTIFY_SUCCESS = 1 << 1,
	SMTP_NOTIFY_FAILURE = 1 << 2,
	SMTP_NOTIFY_DELAY = 1 << 3,
};
struct smtp_rcpt_args {
	struct smtp_path path;
	unsigned notify;		/* 0 = not given */
	char orcpt[SMTP_XTEXT_MAX + 1];	/* "rfc822;user@example.org" decoded */
};
int smtp_parse_rcpt(const char *arg, bool utf8_ok, struct smtp_rcpt_args *r,
		    struct smtp_error *err_r);

/* "n [LAST]" as it follows "BDAT " (RFC 3030). */
int smtp_parse_bdat(const char *arg, uint64_t *size_r, bool *last_r,
		    struct smtp_error *err_r);

/*
 * The HELO/EHLO argument: a domain or an address literal. Returns 0 if it
 * is syntactically valid. We accept what is not (many clients send junk)
 * only as far as the session decides; this says which it is.
 */
int smtp_parse_helo(const char *arg, struct smtp_error *err_r);

/* Formats a mailbox back as local@domain, quoting the local part when it
 * needs it. Returns -1 if it does not fit. */
int smtp_mailbox_format(const struct smtp_mailbox *m, char *buf, size_t size);

#endif
