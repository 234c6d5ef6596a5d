/*
 * A Maildir as POP3 sees it: a lock, a snapshot taken at login, messages
 * opened by number, deletions applied at the end, and retention.
 *
 * Layout: <maildir>/{tmp,new,cur}/ as deliver.c writes it
 * (maildir_path()). Only regular files in new/ and cur/ whose names do
 * not start with '.' are messages; tmp/ and Maildir++ folders (".Foo/")
 * are ignored. Symlinks are never followed below the Maildir: a symlink
 * in new/ or cur/ is not a message, and a new/ or cur/ that is a symlink
 * cannot be read (ELOOP).
 *
 * Lock: one POP3 session per mailbox (RFC 1939 section 8: "[IN-USE]").
 * mailbox_lock() takes a non-blocking whole-file write lock (an open file
 * description lock, fcntl F_OFD_SETLK) on <maildir>/godwit-pop3.lock
 * (created 0640 if missing; the Maildir is created if missing). Such locks
 * belong to the open file description, so two sessions of the same
 * process exclude each other as two processes do, and the kernel drops
 * the lock when the process dies: a crashed worker leaves nothing stale.
 * On a mail_dir shared over NFS (v4, or v3 with lockd) the lock is the
 * server's, so sessions on different nodes exclude each other too; a
 * node that dies loses its locks when its lease (v4) or its lockd
 * state (v3, at its reboot) runs out.
 * The lock file's mtime is the time of the last successful login
 * (mailbox_touch_login()), which [LOGIN-DELAY] uses; a lock file is
 * created with mtime 0 ("never"), so that one made by retention, or by a
 * session that never logged in, does not read as a login.
 *
 * Snapshot order: by base name (see UIDL; godwit's names start with the
 * delivery time in seconds, so this is arrival order, and it does not
 * change when flags do), new/ and cur/ merged. A base name is unique in a
 * Maildir, but one message can be seen twice when it moves from new/ to
 * cur/ during the scan (new/ is read first, so a move never hides one):
 * a base name is listed once, the cur/ file.
 *
 * Size (LIST, STAT): from ",W=<n>" in the name when present (godwit and
 * Dovecot write it: the size with CRLF line ends; see mailbox_name_size());
 * otherwise computed once at snapshot time by reading the file through
 * pop3_size_*() (see pop3_stream.h), so it is always exactly what RETR
 * will send, unstuffed.
 *
 * UIDL (RFC 1939 section 7: 1..70 characters 0x21..0x7E, unique and
 * stable): the Maildir base name — the name up to the first ':' or ',' —
 * which never changes, also not when a file moves from new/ to cur/ or
 * gains flags. If that is empty, longer than 70 octets or holds a
 * character outside 0x21..0x7E, it is "X" followed by 32 lower-case hex
 * digits (the first 16 octets) of SHA-256 of the base name instead (ours
 * start with a digit, so none of godwit's names looks like that).
 * Identical for the same base name, forever.
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
	int lock_fd;		/* holds the lock; -1 when unlocked */
	int dfd[2];		/* new/ and cur/, opened by mailbox_open */
	struct mailbox_msg *msgs;
	size_t n;
};

/*
 * Locks path (creating the Maildir and the lock file if needed) and fills
 * *mb with an empty snapshot. Returns 0, 1 if another session holds the
 * lock (nothing changed), or -1 with errno (the caller answers
 * "-ERR [SYS/TEMP]"). On 1 and -1 *mb is left empty and unlocked
 * (mailbox_close() on it is harmless). If last_login_r is not NULL it
 * receives the lock file's mtime (0 if the file was just created, or
 * never touched since).
 */
int mailbox_lock(struct mailbox *mb, const char *path, time_t *last_login_r);

/* Sets the lock file's mtime to now: a login happened. */
void mailbox_touch_login(struct mailbox *mb);

/*
 * Takes the snapshot (new/ and cur/; a missing one is empty), replacing
 * any earlier one. Returns 0, or -1 with errno if a directory cannot be
 * read (EINVAL if mb is not locked). max_msgs bounds the count (0: no
 * bound); a mailbox with more gets only the first max_msgs in order.
 * Sizes of foreign files are computed here (one read each); a file that
 * is gone by then, or cannot be read (logged), is left out.
 */
int mailbox_scan(struct mailbox *mb, size_t max_msgs);

/*
 * Opens message i (0-based) read-only and returns the fd, or -1 with
 * errno: ENOENT if it is gone (removed by retention or by hand) even
 * under another name with the same base name in new/ or cur/, or is no
 * longer a regular file; EINVAL if i is out of range. If it moved,
 * msgs[i].name is updated. The fd may have O_NONBLOCK set (it keeps a
 * FIFO from blocking the open; on a regular file it does nothing).
 * *fsize_r (if not NULL) receives the file's size in octets. The
 * directories new/ and cur/ stay open in mb (dfd) until mailbox_close().
 */
int mailbox_open(struct mailbox *mb, size_t i, uint64_t *fsize_r);
/* Opens message file (relative to dfd, or AT_FDCWD) read-only, without
 * following a symlink or blocking on a FIFO: anything but a regular file
 * is ENOENT, as if gone. *fsize_r (if not NULL) receives its size. */
int maildir_msg_open(int dfd, const char *file, uint64_t *fsize_r);

/*
 * UPDATE state (RFC 1939 section 6): unlinks every deleted message (found
 * by base name if it moved), then fsyncs new/ and cur/. Returns how many
 * were removed; *failed_r (if not NULL) is the count that could not be
 * (other than already gone, which counts as neither). Only directories
 * something was removed from are fsync'd. When that fsync fails, the
 * removals from that directory may not survive a power cut, so they count
 * as failed, not removed (the session must not say +OK for them).
 * Messages retrieved but not deleted are left where they are.
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
 * valid (digits only, at least one, no overflow), else 0 (*size_r
 * untouched). The fields are the ','-separated part after the base name
 * and before the info part (":2,<flags>"); a "W=" in the info part does
 * not count. If several fields start with "W=", the last one decides:
 * godwit and Dovecot write W= last, so a ",W=" that an odd host name part
 * might contain cannot override the real one.
 */
int mailbox_name_size(const char *name, uint64_t *size_r);

/*
 * Retention: removes from every Maildir under mail_dir
 * (<mail_dir>/<domain>/<local>/Maildir/{new,cur}, and the same below its
 * Maildir++ folder .Junk, where quarantined mail goes) the messages whose
 * mtime is before cutoff. A mailbox whose POP3 lock is held is skipped this round
 * (the lock is taken with LOCK_NB for the duration; a missing lock file
 * is created, with mtime 0, so that no login slips in meanwhile). Touches
 * nothing else: not tmp/, not other files, not names starting with '.'.
 * mail_dir itself may be a symlink; nothing below it is followed.
 * Fills *st; returns 0, or -1 if mail_dir cannot be opened (a
 * missing one is not an error: nothing to do).
 */
struct mailbox_expire_stats {
	size_t mailboxes;	/* looked at, skipped ones included */
	size_t skipped;		/* locked: in use */
	size_t removed;		/* messages */
	uint64_t bytes;		/* their file sizes */
	size_t errors;		/* open/lock/unlink/readdir/fsync failures */
};
int mailbox_expire(const char *mail_dir, time_t cutoff,
		   struct mailbox_expire_stats *st);

#endif
