/*
 * The header section of a message (RFC 5322), parsed without I/O: header
 * fields one at a time, unfolding, and the address lists of From:,
 * Sender:, To: and the like, down to each mailbox's addr-spec.
 *
 * Field names are what RFC 5322 2.2 and 3.6.8 define (printable US-ASCII
 * except the colon), with the obsolete form of 4.5.* that allows white
 * space before the colon ("From : a@b"): a mail reader shows that field as
 * From:, so everything that checks From: must see it as From: too. Names
 * compare case-insensitively.
 *
 * The address parser takes RFC 5322 3.4 with the obsolete syntax of 4.4:
 * display names of atoms, quoted strings and dots, angle addresses with or
 * without a source route, groups, comments (nested) and folding white
 * space anywhere CFWS may be, and empty list elements. 8-bit octets are
 * taken as text (RFC 6532). Encoded words (RFC 2047) stay as they are in
 * the display name; mail_display_decode() decodes them for policy checks.
 */
#ifndef GODWIT_MAIL_HEADER_H
#define GODWIT_MAIL_HEADER_H

#include <stdbool.h>
#include <stddef.h>

/* One header field; name and value point into the input. */
struct mail_header_field {
	const char *name;	/* without trailing white space or colon */
	size_t name_len;
	const char *value;	/* after the colon to the end of the field's
				 * last line, folding line ends included */
	size_t value_len;
	size_t line;		/* 1-based line where the field starts */
};

struct mail_header_iter {
	const char *p;
	size_t len;
	size_t pos;
	size_t line;		/* next line's number; on error, the bad one */
	bool done;
	const char *error;
};

/*
 * Iterates over a header section with LF or CRLF line ends; the input may
 * go on past the empty line that ends the header (the body is not read).
 */
void mail_header_iter_init(struct mail_header_iter *it, const void *header,
			   size_t len);

/*
 * 1: *f_r is the next field. 0: the end of the header section (an empty
 * line or the end of input). -1: the header section is malformed at line
 * it->line (a line that is neither a field nor a continuation, a NUL, a
 * bare CR); *error_r says why. The iterator stays at the error.
 */
int mail_header_next(struct mail_header_iter *it,
		     struct mail_header_field *f_r, const char **error_r);

/* Whether the field's name is name, ignoring case. */
bool mail_header_name_is(const struct mail_header_field *f,
			 const char *name);

/*
 * The field's value unfolded (RFC 5322 2.2.3: each line end before white
 * space removed, the white space kept), NUL-terminated; free() it.
 */
char *mail_header_unfold(const struct mail_header_field *f);

struct mail_mailbox {
	char *display;	/* the display name or NULL: quoted strings
			 * unquoted, words joined by one space, encoded
			 * words as they are */
	char *comment;	/* the text of comments around it, or NULL */
	char *addr;	/* the addr-spec, CFWS removed: local@domain; the
			 * local part unquoted when it is a dot-atom */
	char *group;	/* the name of the group it is in, or NULL */
};

struct mail_address_list {
	struct mail_mailbox *v;
	size_t n;
	size_t ngroups;	/* groups, including empty ones */
};

/*
 * Parses an address-list (an unfolded field value; line ends inside are
 * taken as folding white space). 0 with every mailbox in *l_r, or -1
 * with *error_r. An empty list is not an error (l_r->n == 0).
 */
int mail_address_list_parse(const char *value, size_t len,
			    struct mail_address_list *l_r,
			    const char **error_r);
void mail_address_list_clear(struct mail_address_list *l);

/*
 * Display text with its RFC 2047 encoded words decoded to their octets
 * (charset not converted: enough to find ASCII in UTF-8 and ISO 8859);
 * what does not decode stays as it is. free() it.
 */
char *mail_display_decode(const char *s);

struct strbuf;
/*
 * One RFC 2047 encoded word at s ("=?" charset "?" B|Q "?" text "?=", no
 * white space, at most 1024 octets looked at, so that decoding a string
 * stays linear), lim the string's end: its length, 0 if there is none.
 * The text's octets are appended to out (the charset not converted); the
 * charset, cut at an RFC 2231 '*', into charset[csize] unless NULL (a
 * longer name is no word). strict: bad base64 is no word (the display
 * checks above rely on it); else octets outside the alphabet are
 * skipped, as mail readers do (IMAP's ENVELOPE and SEARCH).
 */
size_t mail_encoded_word(const char *s, const char *lim, bool strict,
			 char *charset, size_t csize, struct strbuf *out);

/*
 * The e-mail addresses that a display name or comment shows to a reader,
 * once its encoded words are decoded: "bob@example.test" in
 * "bob@example.test" <alice@example.test>. Words are split at white space
 * and at <>()[]"',;: and a word with text on both sides of an '@' counts;
 * the full-width and small commercial ats (U+FF20, U+FE6B) count as '@'.
 * Returns how many were found, in *addrs_r (free with
 * mail_strings_free(); NULL when none).
 */
size_t mail_display_addresses(const char *text, char ***addrs_r);
void mail_strings_free(char ***v, size_t n);

#endif
