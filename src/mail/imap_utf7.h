/*
 * Modified UTF-7 mailbox names (RFC 3501 section 5.1.3), as IMAP4rev1
 * clients send them and as Dovecot's Maildir++ stores folder names; UTF-8
 * is what IMAP4rev2 and UTF8=ACCEPT clients use. Pure.
 */
#ifndef GODWIT_IMAP_UTF7_H
#define GODWIT_IMAP_UTF7_H

#include <stddef.h>

struct strbuf;

/* UTF-8 → modified UTF-7, appended to out. -1 if in is not valid UTF-8. */
int imap_utf8_to_utf7(const char *in, size_t len, struct strbuf *out);
/* modified UTF-7 → UTF-8, appended to out. -1 if in is not valid
 * modified UTF-7 (RFC 3501's rules: no unneeded shifts, "&-" for '&'). */
int imap_utf7_to_utf8(const char *in, size_t len, struct strbuf *out);

#endif
