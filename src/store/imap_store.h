/*
 * A user's mail as IMAP sees it: Maildir++ as it lies on disk, so that
 * delivery, POP3, Dovecot and other Maildir tools keep working on it.
 *
 * Layout: <maildir>/ is INBOX; a folder "A/B" is the directory
 * <maildir>/.A.B/ (Maildir++: one level of dot-directories, '.' the
 * separator on disk, '/' the one clients see). Names are UTF-8 in this
 * API and modified UTF-7 (RFC 3501 section 5.1.3) on disk, as Dovecot
 * writes them (mail/imap_utf7.h converts). The special-use folders Sent,
 * Drafts, Junk and Trash (RFC 6154 \Sent \Drafts \Junk \Trash) are
 * created when imap_store_open() finds them missing; ".Junk" is the
 * folder DMARC quarantine and the spam filters already deliver to.
 * Subscriptions: <maildir>/subscriptions, Dovecot's format.
 *
 * Messages: files in new/ and cur/, flags in the name after ":2,"
 * (D F P R S T: \Draft \Flagged $Forwarded(P) \Answered(R) \Seen
 * \Deleted(T)), keywords as the letters a..z, each an index into the
 * folder's dovecot-keywords file ("<index> <name>" lines): at most 26
 * keywords per folder, as in Dovecot. INTERNALDATE is the file's mtime,
 * looked up (a stat) only when asked for (imap_folder_internaldate()):
 * reading a folder costs no per-message system call.
 * RFC822.SIZE is the size with CRLF line ends: ",W=<n>" in the name
 * when present (store/mailbox.h mailbox_name_size()), else computed once.
 *
 * UIDs: <folder>/dovecot-uidlist in Dovecot's version 3 format
 * ("3 V<uidvalidity> N<uidnext> G<guid>" then "<uid> [ext] :<base name>"
 * lines), so a mailbox Dovecot served keeps its UIDs here and back. New
 * files get UIDs in base-name order under <folder>/dovecot-uidlist.lock
 * (a dotlock taken as Dovecot takes it; a stale one is broken after
 * Dovecot's timeout; a live one is waited for DOTLOCK_WAIT_MS at most,
 * as the wait blocks the worker: a sync then goes on with the UIDs it
 * knows, the new files appear at the next one), the file rewritten by
 * rename. \Recent (IMAP4rev1
 * only) is given to the messages a session moves from new/ to cur/.
 *
 * Header cache: <folder>/godwit-cache (mail/imap_hcache.h), written and
 * read by imapd's SEARCH, not by this store: each message's raw header
 * keyed by its base name, appended in whole checksummed records and
 * compacted by tmp + rename. Only a cache: deleting it, or any damage to
 * it, costs time (the files are read again), never a wrong answer. A
 * folder's DELETE removes it with the rest.
 *
 * Errors: -1 with errno; ENOENT (no such folder), EEXIST, EINVAL (a bad
 * name), EPERM (INBOX cannot be deleted; a special-use one can), ENOSPC
 * (no keyword slot left), EAGAIN (the uidlist lock is busy), EIO.
 */
#ifndef GODWIT_IMAP_STORE_H
#define GODWIT_IMAP_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct imap_seqset;

/* system flags, as bits */
#define IMAP_F_ANSWERED 0x01u	/* R */
#define IMAP_F_FLAGGED 0x02u	/* F */
#define IMAP_F_DELETED 0x04u	/* T */
#define IMAP_F_SEEN 0x08u	/* S */
#define IMAP_F_DRAFT 0x10u	/* D */
#define IMAP_F_FORWARDED 0x20u	/* P: the keyword $Forwarded */

#define IMAP_KEYWORDS_MAX 26

enum imap_special {
	IMAP_SPECIAL_NONE,
	IMAP_SPECIAL_SENT,
	IMAP_SPECIAL_DRAFTS,
	IMAP_SPECIAL_JUNK,
	IMAP_SPECIAL_TRASH,
};

/* folder attributes (LIST) */
#define IMAP_FA_NOSELECT 0x01u		/* a parent that has no directory */
#define IMAP_FA_HASCHILDREN 0x02u
#define IMAP_FA_HASNOCHILDREN 0x04u
#define IMAP_FA_SUBSCRIBED 0x08u
#define IMAP_FA_NONEXISTENT 0x10u	/* subscribed, but not there */

struct imap_folder_info {
	char *name;		/* UTF-8, '/'-separated; "INBOX" */
	unsigned attrs;		/* IMAP_FA_* */
	enum imap_special special;
};

struct imap_status {
	uint32_t messages, recent, unseen, deleted;
	uint32_t uidnext, uidvalidity;
	uint64_t size;		/* sum of RFC822.SIZE */
};

struct imap_store;

/* Opens the user's Maildir (creating it and the special-use folders if
 * missing; those are subscribed when created, and all of them while the
 * Maildir has no subscriptions file yet). */
int imap_store_open(const char *maildir, struct imap_store **st_r);
void imap_store_close(struct imap_store *st);

/* Every folder and every subscribed name, sorted, INBOX first. */
int imap_store_list(struct imap_store *st, struct imap_folder_info **list_r,
		    size_t *n_r);
void imap_store_list_free(struct imap_folder_info *list, size_t n);
/* LIST pattern matching: '*' matches anything, '%' anything but '/'. */
bool imap_list_match(const char *pattern, const char *name);

int imap_store_create(struct imap_store *st, const char *name);
int imap_store_delete(struct imap_store *st, const char *name);
/* Renaming INBOX moves its messages into a new folder (RFC 9051 6.3.6). */
int imap_store_rename(struct imap_store *st, const char *from,
		      const char *to);
int imap_store_subscribe(struct imap_store *st, const char *name, bool on);
/* STATUS of a folder that need not be selected (assigns UIDs to new
 * files, as a SELECT would). */
int imap_store_status(struct imap_store *st, const char *name,
		      struct imap_status *status);

/*
 * APPEND: the message from fd (read from its start, size octets) or, if
 * fd < 0, from buf; CRLF line ends are stored as LF, as delivery stores
 * them. Written to tmp/, fsync'd, renamed into cur/ with the flags and
 * keywords (names, created in the folder's list as needed; ENOSPC when
 * none is left), mtime = internaldate (0: now). *uidvalidity_r, *uid_r
 * for APPENDUID.
 */
int imap_store_append(struct imap_store *st, const char *name, int fd,
		      const char *buf, uint64_t size, unsigned flags,
		      const char *const *keywords, size_t nkeywords,
		      time_t internaldate, uint32_t *uidvalidity_r,
		      uint32_t *uid_r);

/* ---- a selected folder ------------------------------------------- */

struct imap_msg {
	uint32_t uid;
	unsigned flags;		/* IMAP_F_* */
	uint32_t keywords;	/* bit i: the folder's keyword i */
	bool recent;		/* this session moved it out of new/ */
	bool gone;		/* the file vanished; kept until an EXPUNGE
				 * may be sent (imap_folder_sync()) */
	char *name;		/* "cur/<file>" or "new/<file>", as last seen */
	uint64_t size;		/* RFC822.SIZE */
	time_t internaldate;	/* IMAP_DATE_UNKNOWN until
				 * imap_folder_internaldate() looked */
};

#define IMAP_DATE_UNKNOWN ((time_t)-1)

struct imap_folder {
	char *name;		/* UTF-8, as selected */
	enum imap_special special;
	bool readonly;		/* EXAMINE: no flag changes, no \Recent */
	uint32_t uidvalidity, uidnext;
	struct imap_msg *msgs;	/* sequence number i + 1, ascending UID */
	size_t n;
	char **keywords;	/* the folder's keyword names, by index */
	size_t nkeywords;
	struct imap_folder_private *priv;
};

/* What changed since the session's last view (imap_folder_sync()). */
struct imap_changes {
	uint32_t *expunged;	/* old sequence numbers, each as it must be
				 * sent (already adjusted for the earlier
				 * EXPUNGEs of this list) */
	size_t nexpunged;
	size_t *flagged;	/* indexes (new view) whose flags changed */
	size_t nflagged;
	size_t exists;		/* n after the sync */
	bool new_messages;	/* n grew: "* n EXISTS" */
	bool keywords_changed;	/* the keyword list grew: "* FLAGS" */
	bool incomplete;	/* files left without a UID (the uidlist lock
				 * was busy): sync again at the next chance */
};

int imap_folder_open(struct imap_store *st, const char *name, bool readonly,
		     struct imap_folder **f_r);
/*
 * Re-reads the folder. expunges=false (during FETCH, STORE, SEARCH: RFC
 * 9051 section 7.5.1) keeps vanished messages in the view with gone set;
 * true removes them and lists them in ch->expunged.
 */
int imap_folder_sync(struct imap_folder *f, bool expunges,
		     struct imap_changes *ch);
void imap_changes_free(struct imap_changes *ch);

/* Sets message i's flags and keywords (renames its file; a gone one is
 * ENOENT). */
int imap_folder_set_flags(struct imap_folder *f, size_t i, unsigned flags,
			  uint32_t keywords);
/* The index of keyword name, added to the folder's list if create
 * (ENOSPC: 26 in use); -1 and ENOENT if absent and !create. */
int imap_folder_keyword(struct imap_folder *f, const char *name, bool create);

/*
 * EXPUNGE: removes the \Deleted messages (only those whose UID is in
 * uids, if not NULL), fsyncs the directories, and drops them from the
 * view; ch->expunged lists them as for imap_folder_sync().
 */
int imap_folder_expunge(struct imap_folder *f, const struct imap_seqset *uids,
			struct imap_changes *ch);

/*
 * COPY: messages idx[0..n-1] into folder dest (hard links where the file
 * system allows, a copy otherwise), flags and keywords kept, new UIDs in
 * the same order in uids_r[0..n-1] (the caller's array), the dest's
 * UIDVALIDITY in *uidvalidity_r. All or nothing.
 */
int imap_folder_copy(struct imap_folder *f, const size_t *idx, size_t n,
		     const char *dest, uint32_t *uidvalidity_r,
		     uint32_t *uids_r);

/* Message i's INTERNALDATE (its file's mtime): the file is stat()ed at
 * the first call, not when the folder is read; 0 if it has vanished. */
time_t imap_folder_internaldate(struct imap_folder *f, size_t i);

/* Opens message i read-only: the fd, and *fsize_r its size on disk. */
int imap_folder_open_msg(struct imap_folder *f, size_t i, uint64_t *fsize_r);

/* The folder's directory (for change notification). */
const char *imap_folder_path(const struct imap_folder *f);

void imap_folder_close(struct imap_folder *f);

#endif
