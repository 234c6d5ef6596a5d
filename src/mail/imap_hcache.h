/*
 * The per-folder header cache, `godwit-cache` in a Maildir folder: the
 * raw header block of each message, keyed by the file's base name (the
 * name up to ':'), so that a later session answers header searches
 * without opening the messages (as Dovecot's dovecot.index.cache does).
 * A Maildir file's content never changes, so an entry stays valid for
 * as long as a file of that base name exists.
 *
 * Format: a sequence of records, each
 *   "GWH1"  namelen (2, LE)  hdrlen (4, LE)  sum (4, LE)  name  header
 * where sum is FNV-1a 32 over the two length fields, the name and the
 * header. Writers only append whole records (O_APPEND) or replace the
 * file (tmp + rename); a torn or garbled record fails its bounds or its
 * sum and the reader resynchronises at the next "GWH1". The file lies in
 * the user's Maildir and is untrusted: every length is bounded and a
 * corrupt or missing file is never an error (the messages are read).
 *
 * Pure: this file parses and formats buffers; the I/O is the caller's.
 */
#ifndef GODWIT_IMAP_HCACHE_H
#define GODWIT_IMAP_HCACHE_H

#include <stdbool.h>
#include <stddef.h>

struct strbuf;

#define IMAP_HCACHE_FILE "godwit-cache"
#define IMAP_HCACHE_NAME_MAX 255		/* octets of a base name */
#define IMAP_HCACHE_HDR_MAX (16 * 1024)		/* a longer header is not
						 * cached */
#define IMAP_HCACHE_FILE_MAX (64 * 1024 * 1024)	/* a longer file is not
						 * read (and is replaced) */
#define IMAP_HCACHE_REC_HEAD 14

struct imap_hcache_ent {
	const char *name;	/* into the parsed buffer; not terminated */
	size_t nlen;
	const char *hdr;
	size_t hlen;
	bool used;		/* for the caller (compaction) */
};

struct imap_hcache {
	struct imap_hcache_ent *v;	/* sorted by name, one per name */
	size_t n;
	size_t garbage;	/* octets outside valid records, and of
			 * records superseded by a later one */
};

/* Parses buf[0..len) into *c (whose entries point into buf; for a
 * name recorded twice, the later record wins). Never fails. */
void imap_hcache_parse(const char *buf, size_t len, struct imap_hcache *c);
struct imap_hcache_ent *imap_hcache_find(const struct imap_hcache *c,
					 const char *name, size_t nlen);
void imap_hcache_free(struct imap_hcache *c);

/* Appends one record to sb; false (nothing appended) if the name is
 * empty, too long or holds '/', ':' or NUL, or the header is too long. */
bool imap_hcache_record(struct strbuf *sb, const char *name, size_t nlen,
			const char *hdr, size_t hlen);
/* The octets of a record of these lengths. */
size_t imap_hcache_record_len(size_t nlen, size_t hlen);

/* The base name of a folder entry "cur/<file>" / "new/<file>": *nlen_r
 * octets from the returned pointer (after the last '/', up to ':'). */
const char *imap_hcache_basename(const char *entry, size_t *nlen_r);

#endif
