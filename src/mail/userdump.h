/*
 * The portable dump of a user database (`godwit db export` / `db import`):
 * JSON lines, one object per line, every value a string except the
 * numbers of the first and the last line:
 *
 *	{"format":"godwit-userdb","version":1}
 *	{"type":"domain","name":"example.test"}
 *	{"type":"user","address":"ann@example.test","hash":"$6$...",
 *	 "scram":"...","cram":"..."}          (scram, cram: when present)
 *	{"type":"alias","source":"@example.test","target":"ann@example.test"}
 *	{"type":"end","domains":1,"users":1,"aliases":1}
 *
 * The end line, with the counts, tells a complete dump from a torn one.
 * Domains come before the users and aliases that need them. Parsing is
 * pure (no I/O) and strict: unknown or repeated keys, missing fields,
 * control characters, and any other type are errors. Lines are bounded
 * by USERDUMP_MAX_LINE.
 */
#ifndef GODWIT_USERDUMP_H
#define GODWIT_USERDUMP_H

#include <stddef.h>

struct strbuf;

#define USERDUMP_FORMAT "godwit-userdb"
#define USERDUMP_VERSION 1
#define USERDUMP_MAX_LINE 65536

enum userdump_kind {
	USERDUMP_HEADER,
	USERDUMP_DOMAIN,
	USERDUMP_USER,
	USERDUMP_ALIAS,
	USERDUMP_END,
};

struct userdump_rec {
	enum userdump_kind kind;
	unsigned long version;			/* header */
	char *name;				/* domain */
	char *address, *hash, *scram, *cram;	/* user (scram, cram: NULL
						 * when absent) */
	char *source, *target;			/* alias */
	unsigned long domains, users, aliases;	/* end */
};

/*
 * One line (without its newline; len bytes, NULs refused). 0 with *r
 * filled (userdump_rec_clear() frees it), or -1 with a static *error_r.
 */
int userdump_parse_line(const char *line, size_t len, struct userdump_rec *r,
			const char **error_r);
void userdump_rec_clear(struct userdump_rec *r);

/* Writers: each appends one line, newline included, to b. */
void userdump_write_header(struct strbuf *b);
void userdump_write_domain(struct strbuf *b, const char *name);
void userdump_write_user(struct strbuf *b, const char *address,
			 const char *hash, const char *scram, const char *cram);
void userdump_write_alias(struct strbuf *b, const char *source,
			  const char *target);
void userdump_write_end(struct strbuf *b, unsigned long domains,
			unsigned long users, unsigned long aliases);

#endif
