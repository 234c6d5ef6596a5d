/*
 * The I/O of a folder's header cache (mail/imap_hcache.h) for one
 * SEARCH: the file read once, looked up per message, new records
 * appended at the end (O_APPEND, whole records) or the file replaced by
 * a compacted copy (tmp + rename) when most of it is dead. Nothing here
 * fails: a missing, unreadable or corrupt cache only means messages are
 * read again.
 */
#ifndef GODWIT_IMAP_HCACHE_IO_H
#define GODWIT_IMAP_HCACHE_IO_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/strbuf.h"
#include "mail/imap_hcache.h"

struct imap_hcache_io {
	char *path;		/* <folder>/godwit-cache */
	char *buf;		/* the file */
	size_t len;
	bool replace;		/* too big or unreadable as a file: rewrite */
	struct imap_hcache c;
	struct strbuf add;	/* records to append */
};

void imap_hcache_load(struct imap_hcache_io *h, const char *dir);
/* The cached header of a folder entry ("cur/<file>"), or NULL. */
const struct imap_hcache_ent *imap_hcache_get(struct imap_hcache_io *h,
					      const char *entry);
void imap_hcache_put(struct imap_hcache_io *h, const char *entry,
		     const char *hdr, size_t hlen);
/* Writes what was added (or compacts) and frees h. */
void imap_hcache_finish(struct imap_hcache_io *h);

#endif
