/*
 * The attachment rules that look only at a file name (pure): a blocked
 * extension, a blocked extension behind another one ("invoice.pdf.exe"),
 * and names that hide their extension from the reader (bidirectional
 * controls such as RIGHT-TO-LEFT OVERRIDE, zero-width characters). The
 * name is taken the way Windows would open it: its last path component,
 * without the trailing dots and blanks Windows drops. Also the name made
 * fit for a reply, and uuencoded files found in text (uu_next()).
 */
#ifndef GODWIT_ATTACH_NAME_H
#define GODWIT_ATTACH_NAME_H

#include <stdbool.h>
#include <stddef.h>

/* The default filter.attachments.blocked_extensions (Gmail's list, about),
 * lower case, without the dot. */
extern const char *const attach_default_extensions[];
extern const size_t attach_ndefault_extensions;

#define ATTACH_EXT_MAX 32	/* an extension's octets, at most */

enum attach_name_verdict {
	ATTACH_NAME_OK,
	ATTACH_NAME_BLOCKED,	/* ext_r: the extension */
	ATTACH_NAME_DOUBLE,	/* ext_r: the blocked one, after another */
	ATTACH_NAME_HIDDEN,	/* a control that hides the extension */
};

/*
 * name: UTF-8 (or anything: bytes are taken as they come). exts: the
 * blocked extensions, lower case without the dot. ext_r (at least
 * ATTACH_EXT_MAX + 1 octets) gets the blocked extension, lower case.
 */
enum attach_name_verdict attach_name_check(const char *name,
					   const char *const *exts,
					   size_t nexts, char *ext_r);

/* An extension for the configuration: NULL if fine, else what is wrong. */
const char *attach_ext_valid(const char *ext);

#define ATTACH_NAME_SHOW 80	/* a name in a reply: characters at most */

/*
 * name as a reply may show it: printable ASCII without '"' or '\\' (each
 * other character, or UTF-8 sequence, becomes '?'), at most
 * ATTACH_NAME_SHOW characters, the middle cut ("...") so the extension
 * stays. out has at least ATTACH_NAME_SHOW + 1 octets.
 */
void attach_name_clean(const char *name, char *out);

/*
 * uuencoded files in text: the next "begin MODE NAME" line at or after
 * *pos and the lines that follow it, decoded up to "end" or the first
 * line that is not uuencode. Returns true with *pos past what was read,
 * name_r (name_size octets, NUL-terminated, cut) and *data_r (malloc'd,
 * at most max octets: the rest is skipped, *truncated_r set) of *len_r
 * octets; false when there is no other begin line.
 */
bool uu_next(const unsigned char *text, size_t len, size_t *pos,
	     char *name_r, size_t name_size, unsigned char **data_r,
	     size_t *len_r, size_t max, bool *truncated_r);

#endif
