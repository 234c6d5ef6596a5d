/*
 * A Maildir as POP3 sees it: a lock, a snapshot taken at login, messages
 * opened by number, deletions applied at the end, and retention.
 *
 * Layout: <maildir>/{tmp,new,cur}/ as deliver.c writes it
 * (maildir_path()). Only regular files in new/ and cur/ whose names do
 * not start with '.' are messages; tmp/ and Maildir++ folders (".Foo/")
 * are ignored.
 *
 * Lock: one POP3 session per mailbox (RFC 1939 section 8: "[IN-USE]").
 * mailbox_lock() takes flock(LOCK_EX | LOCK_NB) on <maildir>/godwit-pop3.lock
 * (created 0640 if missing; the Maildir is created if missing). flock locks
 * belong to the open file description, so two sessions of the same
 * process exclude each other as two processes do, and the kernel drops
 * the lock when the process dies: a crashed worker leaves nothing stale.
 * The lock file's mtime is the time of the last successful login
 * (mailbox_touch_login()), which [LOGIN-DELAY] uses.
 *
 * Snapshot order: by file name (godwit's names start with the delivery
 * time in seconds, so this is arrival order), new/ and cur/ merged; ties
 * cannot happen (a base name is unique in a Maildir).
 *
 * Size (LIST, STAT): from ",W=<n>" in the name when present (godwit and
 * Dovecot write it: the size with CRLF line ends); otherwise computed
 * once at snapshot time by reading the file through pop3_size_*() (see
 * pop3_stream.h), so it is always exactly what RETR will send, unstuffed.
 *
 * UIDL (RFC 1939 section 7: 1..70 characters 0x21..0x7E, unique and
 * stable): the Maildir base name — the name up to the first ':' or ',' —
 * which never changes, also not when a file moves from new/ to cur/ or
 * gains flags. If that is longer than 70 octets or holds a character
 * outside 0x21..0x7E, it is "X" followed by 32 lower-case hex digits of
 * SHA-256 of the base name instead (no base name can look like that:
 * ours start with a digit). Identical for the same base name, forever.
 *
 * A message that was moved between new/ and cur/ (or renamed with other
 * flags) after the snapshot is found again by its base name.
 */
#ifndef GODWIT_MAILBOX_H
#define GODWIT_MAILBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define MAILBOX_UIDL_MAX 70

struct mailbox_msg {
	char *name;		/* "new/<file>" or "cur/<file>", as found */
	uint64_t size;		/* octets as RETR sends them, unstuffed */
	char uidl[MAILBOX_UIDL_MAX + 1];
	bool deleted;		/* DELE in this session */
	bool retrieved;		/* RETR in this session */
};

struct mailbox {
	char *path;		/* the Maildir */
	int lock_fd;		/* holds the flock; -1 when unlocked */
	struct mailbox_msg *msgs;
	size_t n;
};

/*
 * Locks path (creating the Maildir and the lock file if needed) and fills
 * *mb with an empty snapshot. Returns 0, 1 if another session holds the
 * lock (nothing changed), or -1 with errno (the caller answers
 * "-ERR [SYS/TEMP]"). If last_login_r is not NULL it receives the lock
 * file's mtime (0 if the file was just created).
 */
int mailbox_lock(struct mailbox *mb, const char *path, time_t *last_login_r);

/* Sets the lock file's mtime to now: a login happened. */
void mailbox_touch_login(struct mailbox *mb);

/*
 * Takes the snapshot (new/ and cur/; a missing one is empty). Returns 0,
 * or -1 with errno if a directory cannot be read. max_msgs bounds the
 * count (0: no bound); a mailbox with more gets only the first max_msgs
 * in order. Sizes of foreign files are computed here (one read each).
 */
int mailbox_scan(struct mailbox *mb, size_t max_msgs);

/*
 * Opens message i (0-based) read-only and returns the fd, or -1 with
 * errno: ENOENT if it is gone (removed by retention or by hand) even
 * under another name with the same base name in new/ or cur/.
 */
int mailbox_open(struct mailbox *mb, size_t i);

/*
 * UPDATE state (RFC 1939 section 6): unlinks every deleted message (found
 * by base name if it moved), then fsyncs new/ and cur/. Returns how many
 * were removed; *failed_r is the count that could not be (other than
 * already gone). Messages retrieved but not deleted are left where they
 * are.
 */
size_t mailbox_commit(struct mailbox *mb, size_t *failed_r);

/* Frees the snapshot and drops the lock. mb may be zeroed or unlocked. */
void mailbox_close(struct mailbox *mb);

/*
 * The UIDL of a file name (with or without "new/" / "cur/"), as above,
 * into out (MAILBOX_UIDL_MAX + 1 octets).
 */
void mailbox_uidl(const char *name, char *out);

/*
 * The size from a name's ",W=<n>" field: 1 and *size_r if present and
 * valid (digits only, no overflow), else 0.
 */
int mailbox_name_size(const char *name, uint64_t *size_r);

/*
 * Retention (R3.6): removes from every Maildir under <data_dir>/mail/
 * (mail/<domain>/<local>/Maildir/{new,cur}) the messages whose mtime is
 * before cutoff. A mailbox whose POP3 lock is held is skipped this round
 * (the lock is taken with LOCK_NB for the duration). Touches nothing else:
 * not tmp/, not other files, never follows symlinks out of the tree.
 * Fills *st; returns 0, or -1 if <data_dir>/mail cannot be opened (a
 * missing one is not an error: nothing to do).
 */
struct mailbox_expire_stats {
	size_t mailboxes;	/* looked at */
	size_t skipped;		/* locked: in use */
	size_t removed;		/* messages */
	uint64_t bytes;		/* their file sizes */
	size_t errors;		/* unlink/readdir failures */
};
int mailbox_expire(const char *data_dir, time_t cutoff,
		   struct mailbox_expire_stats *st);

#endif
