/*
 * Inside the attachment walk: what attach.c (the MIME walk, the rules)
 * and attach_archive.c (archives through libarchive) share. Not for
 * other modules.
 */
#ifndef GODWIT_ATTACH_PRIVATE_H
#define GODWIT_ATTACH_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

#include <magic.h>

#include "mail/attach_name.h"

struct attach_config;
struct attach_result;

struct attach_scanner {
	magic_t magic;
};

/* One message's walk. */
struct walk {
	struct attach_scanner *sc;
	const struct attach_config *cfg;
	struct attach_result *r;
	/* the attachment being looked at, as a reply shows it ("" for a
	 * part without a name) */
	char top[ATTACH_NAME_SHOW + 1];
};

/* A rule was broken: the refusal, once (the first one stands). inner is
 * the archive member's name or NULL; what says what the file is ("a
 * blocked file type (.exe)"). */
void walk_refuse(struct walk *w, const char *inner, const char *reason,
		 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* A limit was reached: "nesting depth", "part count", "decoded size". */
void walk_limit(struct walk *w, const char *which);
bool walk_stopped(const struct walk *w);
/* One more part, at depth: false (and the refusal) past a limit. */
bool walk_count(struct walk *w, unsigned depth);
/* n more octets decoded: false (and the refusal) past the limit. */
bool walk_decoded(struct walk *w, size_t n);

/* The name rules on name (inner: inside an archive). */
void walk_check_name(struct walk *w, const char *name, bool inner);
/* The content rules on data: an executable; an archive is listed. */
void walk_check_content(struct walk *w, const char *inner,
			const unsigned char *data, size_t len,
			unsigned depth);
/* The same, with data's type already known (walk_sniff()). */
void walk_check_sniffed(struct walk *w, const char *inner, const char *mime,
			const unsigned char *data, size_t len,
			unsigned depth);
/* data's MIME type (libmagic's, or the signature's where that decides),
 * or "" when it starts like no executable or archive. */
const char *walk_sniff(struct walk *w, const unsigned char *data,
		       size_t len);
/* Does data start like an executable or an archive? */
bool walk_has_signature(const unsigned char *p, size_t len);
bool attach_is_archive_type(const char *mime);

/* attach_archive.c: the members of the archive data[0..len). */
void walk_archive(struct walk *w, const char *inner,
		  const unsigned char *data, size_t len, unsigned depth);

#endif
