/*
 * clamd's reply to INSTREAM, the one line a scan ends with: "stream: OK",
 * "stream: NAME FOUND", or a text ending in " ERROR" ("INSTREAM size
 * limit exceeded. ERROR"). The reply comes from another process and is
 * not trusted: anything else is garbled, the virus name is cut and
 * cleaned before it reaches a reply or a log, and the text of an error
 * is made printable. Pure: no I/O.
 */
#ifndef GODWIT_CLAMD_REPLY_H
#define GODWIT_CLAMD_REPLY_H

#include <stddef.h>

/* A reply longer than this (terminator included) is garbled. */
#define CLAMD_REPLY_MAX 1024
/* The longest virus name kept (longer ones are cut). */
#define CLAMD_NAME_MAX 100
/* The longest error text kept (for the log). */
#define CLAMD_TEXT_MAX 160

enum clamd_reply_kind {
	CLAMD_REPLY_OK,		/* no virus */
	CLAMD_REPLY_FOUND,	/* name: the signature that matched */
	CLAMD_REPLY_ERROR,	/* text: what clamd said failed */
	CLAMD_REPLY_BAD,	/* text: the garbled reply, made printable */
};

struct clamd_reply {
	enum clamd_reply_kind kind;
	/* FOUND: letters, digits and ._-:+/()[]!#@=, only (anything else
	 * became '_'), never empty */
	char name[CLAMD_NAME_MAX + 1];
	/* ERROR, BAD: printable ASCII ('?' for the rest), cut */
	char text[CLAMD_TEXT_MAX + 1];
};

/*
 * Parses the reply in buf[0..len): the octets up to clamd's terminator (a
 * NUL for the "z" commands; a final LF, CR or NUL is dropped too). A NUL
 * or another control character inside makes it garbled.
 */
void clamd_reply_parse(const char *buf, size_t len, struct clamd_reply *r);

/* "ok", "found", "error", "garbled": for the log. */
const char *clamd_reply_kind_name(enum clamd_reply_kind kind);

#endif
