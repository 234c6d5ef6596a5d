/*
 * Internals shared by store/imap_uidlist.c (dotlocks, directory scans,
 * UID assignment), store/imap_folders.c (names, folder operations) and
 * store/imap_folder.c (the selected folder).
 */
#ifndef GODWIT_IMAP_STORE_PRIVATE_H
#define GODWIT_IMAP_STORE_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "mail/dovecot_files.h"
#include "store/imap_store.h"

#define UIDLIST_FILE "dovecot-uidlist"
#define KEYWORDS_FILE "dovecot-keywords"
#define SUBS_FILE "subscriptions"
#define DOTLOCK_STALE_SECS 120	/* Dovecot's, for dovecot-uidlist.lock */
/* A live lock is waited for this long at most: the wait blocks the
 * worker's event loop, and every session on it. A sync that cannot take
 * the lock goes on with the UIDs it knows (the new mail gets its UID at
 * the next check); a write (APPEND, COPY, keywords, subscriptions) fails
 * with EAGAIN. */
#define DOTLOCK_WAIT_MS 200
#define STORE_FILE_MAX (64u * 1024 * 1024)	/* uidlist etc. read bound */

struct imap_store {
	char *root;		/* the Maildir: INBOX */
	char host[64];		/* for new file names */
};

/* A message file found by a scan. */
struct scan_ent {
	char *name;		/* "new/<file>" or "cur/<file>" */
	size_t baselen;		/* of the base: name + 4, up to ':' */
	uint32_t uid;		/* 0: none (yet) */
};

struct scan {
	struct scan_ent *e;	/* sorted by base, one per base */
	size_t n, cap;
	uint32_t uidvalidity, uidnext;
};

/* ---- imap_uidlist.c ---- */
/* A dotlock "<path>.lock" (O_EXCL; a stale one broken): the fd, or -1
 * (EAGAIN after DOTLOCK_WAIT_MS). */
int dotlock_take(const char *path);
/* Writes data into the lock, fsyncs, renames it over path; unlocks. */
int dotlock_replace(const char *path, int fd, const char *data, size_t len);
void dotlock_release(const char *path, int fd);
/* The whole file (NUL-terminated), at most STORE_FILE_MAX; NULL with
 * errno (ENOENT if missing). */
char *read_small_file(const char *path, size_t *len_r);

int scan_dir(const char *dir, struct scan *sc);
void scan_free(struct scan *sc);
const char *scan_base(const struct scan_ent *e);
/* Fills the UIDs of sc from the folder's uidlist; with assign, new files
 * get UIDs under the lock (and a missing uidlist is created). When the
 * lock is busy (DOTLOCK_WAIT_MS) the new files keep UID 0 and it returns
 * 0, unless there is no usable uidlist yet (-1, EAGAIN). */
int scan_uids(const char *dir, struct scan *sc, bool assign);
/*
 * Under the lock: renames each tmp[i] (a path) to dir/cur/<names[i]>
 * and gives them UIDs uidnext.. in order. uids_r[i], *uidvalidity_r.
 */
int uidlist_place(const char *dir, char *const *tmp, char *const *names,
		  size_t n, uint32_t *uidvalidity_r, uint32_t *uids_r);

/* ---- imap_folders.c ---- */
/* The directory of folder name (UTF-8), or NULL and EINVAL. */
char *folder_dir(const struct imap_store *st, const char *name);
/* The same, of a folder that exists (has cur/): else NULL and ENOENT. */
char *folder_dir_existing(const struct imap_store *st, const char *name);
enum imap_special folder_special(const char *name);
/* Flags and keyword bits from a file name's ":2," part. */
void name_flags(const char *name, unsigned *flags_r, uint32_t *kw_r);
/* "<base>:2,<letters>" into a malloc'd string. */
char *name_with_flags(const char *base, size_t baselen, unsigned flags,
		      uint32_t kw);
/* RFC822.SIZE of dir/name (",W=" or read once); 0 if unreadable. */
uint64_t file_vsize(const char *dir, const char *name);
/* The folder's keywords (names[26]), read; keyword_index() adds under
 * dovecot-keywords.lock when create. */
void keywords_read(const char *dir, char *names[IMAP_KEYWORDS_MAX]);
void keywords_free(char *names[IMAP_KEYWORDS_MAX]);
int keyword_index(const char *dir, char *names[IMAP_KEYWORDS_MAX],
		  const char *name, bool create);
/* A fresh unique base name for a message of octets / vsize. */
void store_new_base(const struct imap_store *st, char *buf, size_t size,
		    uint64_t octets, uint64_t vsize);

#endif
