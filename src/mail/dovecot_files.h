/*
 * Dovecot's per-mailbox files, parsed and written: pure functions over
 * bytes that another program (Dovecot, or anyone with access to the
 * Maildir) may have written, so every line is distrusted.
 *
 * dovecot-uidlist, version 3 (version 2 read the same way; version 1
 * read too):
 *   3 V<uidvalidity> N<uidnext> G<guid> [other header fields]
 *   <uid> [<ext-char><value> ...] :<file name up to ':'>
 * (version 1: "1 <uidvalidity> <uidnext>" and "<uid> <file name>").
 * Records must ascend by UID; one that does not, or that is malformed, is
 * left out (the file is still usable: its message gets a new UID).
 *
 * dovecot-keywords: "<index> <name>" lines, index 0..25.
 *
 * subscriptions: Dovecot 2.3's version 2 ("V\t2\n\n", then one name a
 * line, its levels separated by TAB, each tab-escaped: \001 followed by
 * '1' '0' 't' 'r' 'n' for \001 NUL TAB CR LF) or the older form (one
 * name a line, levels separated by '.'). Levels are modified UTF-7 on
 * disk; the parser returns UTF-8 names with '/' between levels.
 */
#ifndef GODWIT_DOVECOT_FILES_H
#define GODWIT_DOVECOT_FILES_H

#include <stddef.h>
#include <stdint.h>

struct strbuf;

#define DOVECOT_NAME_MAX 255		/* a file or level name */
#define DOVECOT_KEYWORDS_MAX 26

struct dovecot_uidlist_rec {
	uint32_t uid;
	char *base;		/* the file name up to ':' */
	char *ext;		/* "W1234 S1200" as read, or NULL */
};

struct dovecot_uidlist {
	unsigned version;	/* as read: 1, 2 or 3 */
	uint32_t uidvalidity, uidnext;
	char guid[33];		/* 32 hex digits, or "" */
	char *hdr_ext;		/* other header fields as read, or NULL */
	struct dovecot_uidlist_rec *recs;
	size_t n, cap;
};

/* 0, or -1 with *error_r (a constant) if the header is unusable. */
int dovecot_uidlist_parse(const char *buf, size_t len,
			  struct dovecot_uidlist *ul, const char **error_r);
/* Appends a record (base is copied; ext may be NULL). */
void dovecot_uidlist_add(struct dovecot_uidlist *ul, uint32_t uid,
			 const char *base, const char *ext);
/* The file, always in version 3. */
void dovecot_uidlist_write(const struct dovecot_uidlist *ul,
			   struct strbuf *out);
void dovecot_uidlist_free(struct dovecot_uidlist *ul);

/* Fills names[0..25] (NULL where unused; malloc'd); bad lines skipped. */
void dovecot_keywords_parse(const char *buf, size_t len,
			    char *names[DOVECOT_KEYWORDS_MAX]);
void dovecot_keywords_write(char *const names[DOVECOT_KEYWORDS_MAX],
			    struct strbuf *out);
/* A keyword name we accept: 1..DOVECOT_NAME_MAX atom characters. */
int dovecot_keyword_valid(const char *name);

/* The subscribed names (UTF-8, '/'-separated), malloc'd. */
void dovecot_subs_parse(const char *buf, size_t len, char ***names_r,
			size_t *n_r);
/* The version 2 file; -1 if a name is not valid UTF-8. */
int dovecot_subs_write(char *const *names, size_t n, struct strbuf *out);

#endif
