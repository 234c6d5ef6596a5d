/*
 * IMAP SEARCH (RFC 9051 section 6.4.4, RFC 3501 6.4.4): the search keys
 * of a command parsed into a tree, and the tree evaluated against one
 * message at a time. Pure: a message's content is read through the
 * callback of mail/imap_mime.h, and only if a key needs it (flags, sizes,
 * dates, sequence numbers and UIDs are answered without it).
 *
 * Text keys (BCC BODY CC FROM HEADER SUBJECT TEXT TO) match a substring,
 * ignoring case (ASCII, Latin-1 and basic Cyrillic letters), of the
 * decoded text: header values with their RFC
 * 2047 encoded words decoded and converted to UTF-8, bodies with their
 * transfer encoding undone and their charset converted to UTF-8 (iconv),
 * streamed through a bounded window. BODY searches the text parts (of
 * encapsulated messages too); TEXT the header and the same parts.
 *
 * Dates: BEFORE ON SINCE compare the INTERNALDATE's day in the server's
 * time zone; SENT* the Date: field's day in its own zone (the
 * INTERNALDATE's if the field is missing or does not parse).
 */
#ifndef GODWIT_IMAP_SEARCH_H
#define GODWIT_IMAP_SEARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "mail/imap_seq.h"

struct imap_arg;
struct imap_mime_src;
struct strbuf;

/* system flags as bits: the values of store/imap_store.h's IMAP_F_* */
#define IMAP_SEARCH_F_ANSWERED 0x01u
#define IMAP_SEARCH_F_FLAGGED 0x02u
#define IMAP_SEARCH_F_DELETED 0x04u
#define IMAP_SEARCH_F_SEEN 0x08u
#define IMAP_SEARCH_F_DRAFT 0x10u
#define IMAP_SEARCH_F_FORWARDED 0x20u

#define IMAP_SEARCH_NODES_MAX 1000
#define IMAP_SEARCH_DEPTH_MAX 64
#define IMAP_SEARCH_STRING_MAX 1000	/* octets of a text key */

enum imap_search_type {
	IMAP_SK_ALL,
	IMAP_SK_AND,		/* kids */
	IMAP_SK_OR,		/* kids[0] or kids[1] */
	IMAP_SK_NOT,		/* kids[0] */
	IMAP_SK_SEQ,		/* set: sequence numbers */
	IMAP_SK_UID,		/* set: UIDs */
	IMAP_SK_SAVED,		/* "$": the saved result */
	IMAP_SK_FLAG,		/* flag set */
	IMAP_SK_KEYWORD,	/* str; keyword: the index, -1: none */
	IMAP_SK_RECENT,
	IMAP_SK_LARGER,		/* num */
	IMAP_SK_SMALLER,
	IMAP_SK_BEFORE,		/* date: yyyymmdd */
	IMAP_SK_ON,
	IMAP_SK_SINCE,
	IMAP_SK_SENTBEFORE,
	IMAP_SK_SENTON,
	IMAP_SK_SENTSINCE,
	IMAP_SK_HEADER,		/* field, str */
	IMAP_SK_BODY,		/* str */
	IMAP_SK_TEXT,		/* str */
};

struct imap_search_node {
	enum imap_search_type type;
	struct imap_search_node *kids;
	size_t nkids;
	struct imap_seqset set;
	unsigned flag;
	uint64_t num;
	long date;
	char *field, *str;	/* str lower-cased (ASCII) */
	int keyword;
};

enum imap_search_parse_result {
	IMAP_SEARCH_OK = 0,
	IMAP_SEARCH_BAD = -1,		/* syntax: BAD */
	IMAP_SEARCH_BADCHARSET = -2,	/* NO [BADCHARSET (UTF-8 US-ASCII)] */
};

/*
 * Parses the search keys args[0..n-1] (after any RETURN options; a
 * leading CHARSET x is taken here) into *tree_r (an AND node). On
 * IMAP_SEARCH_BAD, *error_r says what.
 */
int imap_search_parse(const struct imap_arg *args, size_t n,
		      struct imap_search_node **tree_r, const char **error_r);
void imap_search_free(struct imap_search_node **tree);

/* Resolves KEYWORD/UNKEYWORD names to the folder's indexes: lookup
 * returns the index of a name or -1. */
void imap_search_keywords(struct imap_search_node *tree,
			  int (*lookup)(void *arg, const char *name),
			  void *arg);
/* Whether the tree needs the message's content (header or body). */
bool imap_search_needs_content(const struct imap_search_node *tree);
/* Whether it needs the INTERNALDATE (BEFORE ON SINCE, and SENT* for a
 * message whose Date: is missing or bad). */
bool imap_search_needs_date(const struct imap_search_node *tree);
/* Whether it needs the body (BODY, TEXT): a header alone will not do. */
bool imap_search_needs_body(const struct imap_search_node *tree);

struct imap_search_ctx {
	uint32_t max_seq, max_uid;	/* what '*' stands for */
	const uint32_t *saved;		/* "$": ascending UIDs */
	size_t nsaved;
};

struct imap_search_msg {
	uint32_t seq, uid;
	unsigned flags;		/* IMAP_SEARCH_F_* */
	uint32_t keywords;	/* bit i: the folder's keyword i */
	bool recent;
	uint64_t size;
	time_t internaldate;
	/* the content, or NULL (a text key does not match) */
	const struct imap_mime_src *src;
	/* if not NULL: the message's header as imap_search_read_header()
	 * gives it (e.g. from a header cache); header keys use it and do
	 * not read src */
	const char *hdr;
	size_t hdrlen;
};

/* 1 if msg matches, 0 if not, -1 on a read error. */
int imap_search_eval(const struct imap_search_node *tree,
		     const struct imap_search_ctx *ctx,
		     const struct imap_search_msg *msg);

/* The header the header keys search: its first IMAP_MIME_HEADER_MAX
 * octets, into out (reset first, NUL-terminated). -1 on a read error. */
int imap_search_read_header(const struct imap_mime_src *src,
			    struct strbuf *out);

/* "1-Feb-1994" as yyyymmdd; -1 if it is not a date. */
long imap_search_date(const char *s, size_t len);

#endif
