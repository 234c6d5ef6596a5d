/*
 * SMTP replies and EHLO keywords as a client reads them (RFC 5321 4.2,
 * RFC 2034): pure parsers, no I/O, fuzzed by fuzz/fuzz_smtp_reply.c.
 * The outbound SMTP client (mta/smtp_client.h) feeds them line by line.
 */
#ifndef GODWIT_SMTP_REPLY_H
#define GODWIT_SMTP_REPLY_H

#include <stddef.h>
#include <stdint.h>

#define SMTP_CLIENT_LINE_MAX 1000	/* octets incl. CRLF; longer: error */
#define SMTP_CLIENT_REPLY_LINES 100
#define SMTP_CLIENT_TEXT_MAX 400	/* reply text kept (lines joined) */

struct smtp_reply {
	int code;		/* 200..599 */
	char enh[16];		/* "5.1.1", "" if the reply had none */
	char text[SMTP_CLIENT_TEXT_MAX];	/* the text of all lines, without
				 * code and enhanced code, joined with
				 * " " (empty lines add nothing); octets
				 * outside printable ASCII (controls,
				 * DEL, NUL, 8-bit) replaced by '?'; cut
				 * at the size; always NUL-terminated */
};

/*
 * Incremental reply parser: feed it one line at a time (without CR LF).
 * Returns 0 if the reply needs more lines, 1 when it is complete (in
 * *r), -1 on a malformed line (no 3-digit code 2xx-5xx, code changing
 * between lines, separator other than '-' or ' ' / end of line, too many
 * lines). RFC 5321 4.2: "250-a" continues, "250 b" or "250" ends;
 * RFC 2034: an enhanced code is taken from the first line if it has the
 * form class.subject.detail (1-3 digits each) with class matching the
 * reply's first digit, followed by a space or the end of the line; it
 * is removed from the text of later lines that repeat it. After
 * returning 1 or -1 the parser is reset: the next line starts a new
 * reply.
 */
struct smtp_reply_parser {
	/* private */
	unsigned nlines;
	int code;
	size_t textlen;
	struct smtp_reply r;
};
void smtp_reply_parser_init(struct smtp_reply_parser *p);
int smtp_reply_parser_line(struct smtp_reply_parser *p, const char *line,
			   size_t len, struct smtp_reply *r);

/* EHLO keywords (RFC 5321 4.1.1.1): parsed from the EHLO reply's lines. */
#define SMTP_EXT_PIPELINING	0x001
#define SMTP_EXT_SIZE		0x002
#define SMTP_EXT_8BITMIME	0x004
#define SMTP_EXT_SMTPUTF8	0x008
#define SMTP_EXT_CHUNKING	0x010
#define SMTP_EXT_BINARYMIME	0x020
#define SMTP_EXT_STARTTLS	0x040
#define SMTP_EXT_DSN		0x080
#define SMTP_EXT_AUTH_PLAIN	0x100
#define SMTP_EXT_AUTH_LOGIN	0x200
#define SMTP_EXT_ENHANCEDSTATUSCODES 0x400
struct smtp_ehlo {
	unsigned ext;		/* SMTP_EXT_* */
	uint64_t size;		/* SIZE's value; 0 = not given or no limit */
};
/* One line of the EHLO reply without the code and separator ("SIZE
 * 1000"), case-insensitive keywords; the first line (the greeting
 * domain) must not be fed. Bits accumulate: zero *e before the first
 * line. "SIZE" with no value, a value that is not all digits or does
 * not fit in 64 bits: size 0 (no known limit). AUTH takes PLAIN and
 * LOGIN from its list, also in the old "AUTH=LOGIN PLAIN" form. */
void smtp_ehlo_line(struct smtp_ehlo *e, const char *line, size_t len);

#endif
