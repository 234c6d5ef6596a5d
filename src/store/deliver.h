/*
 * Durable delivery of an accepted message: into the Maildirs of its local
 * recipients (one file, hard-linked into each new/) and, for remote
 * recipients, into the queue — all fsync'd, file and directory, before the
 * session may answer 250.
 *
 * The content arrives through a spool (memory first, a file in queue/tmp/
 * once it outgrows SPOOL_MEM_MAX). The commit runs on a committer thread
 * that each worker owns, so the event loop never blocks on the disk. The
 * thread takes every job queued while it was busy as one batch and fsyncs
 * each directory once per batch (group commit): under load many messages
 * share one directory fsync.
 */
#ifndef GODWIT_DELIVER_H
#define GODWIT_DELIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "store/queue.h"

struct event_base;

#define SPOOL_MEM_MAX (256 * 1024)

struct spool;

/* tmp_path: where the spool file goes if it spills (queue/tmp/<id>). */
struct spool *spool_new(const char *tmp_path);
/* Appends; -1 with errno on an I/O error (then the message must fail). */
int spool_write(struct spool *sp, const void *data, size_t len);
uint64_t spool_size(const struct spool *sp);
/*
 * Up to n octets from offset off (the filters read the message back at
 * its end): the count (0 at the end), or -1 with errno. Loop thread only,
 * while no write runs.
 */
ssize_t spool_read(const struct spool *sp, uint64_t off, void *buf, size_t n);
/*
 * A descriptor of its own on the spool's file, for a thread that reads
 * the message while the loop goes on; it stays readable if the spool is
 * freed meanwhile. It shares the file offset the spool's writes use: read
 * it with pread() or mmap(), never read() or lseek(). -1 when the spool
 * is in memory only (or dup failed): then spool_read() it on the loop.
 */
int spool_dup_fd(const struct spool *sp);
/*
 * The header lines only the local copies of a message get, written to the
 * spool: Return-Path (RFC 5321 4.4) and, when the copy is for one mailbox
 * (mailbox not NULL), Delivered-To. *len_r is their length (the
 * delivery_job's local_hdr_len), *lines_r their line count (for vsize).
 * 0, or -1 with errno.
 */
int spool_local_header(struct spool *sp, const char *sender,
		       const char *mailbox, size_t *len_r, uint64_t *lines_r);
void spool_free(struct spool **sp);

/*
 * Who a message came from, for its line in the audit log (store/audit.h).
 * Owned by its job; strings owned.
 */
struct delivery_origin {
	/* false: a client's message at its end of data ("origin":"smtp");
	 * true: one the runner delivers locally from the queue ("queue") */
	bool from_queue;
	char *ip;		/* the client */
	char *user;		/* the authenticated account, or NULL */
	char *sender;		/* MAIL FROM ("" for the null sender) */
	char **rcpts;		/* RCPT TO, as accepted */
	size_t nrcpts;
};

void delivery_origin_free(struct delivery_origin **o);

struct delivery_job {
	/* in */
	struct spool *spool;		/* owned by the job */
	char id[QUEUE_ID_LEN + 1];
	size_t local_hdr_len;		/* leading octets only local copies get */
	uint64_t vsize;			/* size with CRLF line ends (W=), the
					 * prefix not counted: the committer
					 * adds it */
	/*
	 * Header fields known only at the end of the data
	 * (Authentication-Results, DKIM-Signature, a quarantine note): the
	 * committer puts them after the local header of local copies and
	 * first in queue copies, so the session never rewrites the spool.
	 * LF line ends; NULL for none; owned.
	 */
	char *prefix;
	size_t prefix_len;
	bool quarantine;		/* local copies into the .Junk folder */
	/* the queue file goes to queue/hold/ instead of incoming/ (a
	 * milter's quarantine: every recipient is in env, local ones too;
	 * `godwit queue release` lets the runner deliver it) */
	bool hold;
	char **mailboxes;		/* "local@domain", owned */
	size_t nmailboxes;
	/*
	 * The account ("local@domain") whose Sent folder gets a copy of the
	 * message as it goes out (submission.save_sent): the spool past the
	 * local header, into <maildir>/.Sent/cur/ flagged \Seen (":2,S"),
	 * the folder created if missing; made durable and taken back with
	 * the other entries. NULL for none; owned.
	 */
	char *sent_mailbox;
	struct queue_envelope *env;	/* remote recipients, or NULL; owned */
	/* for the audit line; NULL for mail godwit made (reports): the
	 * line then says "origin":"godwit" */
	struct delivery_origin *origin;
	/* out */
	int result;			/* 0 or -1 */
	char error[160];
	/* completion, called on the loop thread; the session may clear these
	 * (and only the loop thread touches them) if it goes away first */
	void (*done)(struct delivery_job *job, void *arg);
	void *arg;
	struct delivery_job *next;
};

struct committer;

/* Queue files go below data_dir/queue, Maildirs below mail_dir (which
 * may be another file system: a shared store, see maildir_path()). */
struct committer *committer_new(struct event_base *base, const char *data_dir,
				const char *mail_dir, const char *hostname);
/* Takes over job; job->done runs later on the loop thread, then the job is
 * freed. */
void committer_submit(struct committer *c, struct delivery_job *job);
/*
 * Whether each committed batch gets its lines in the audit log
 * (audit.enabled; on by default): appended and fdatasync'd after the
 * Maildir entries are durable and before the queue files appear in
 * incoming/, so that a failed append takes the whole job back (451).
 */
void committer_set_audit(struct committer *c, bool enabled);
/* Jobs submitted but not yet completed. */
unsigned committer_pending(const struct committer *c);
/* Waits for the thread to finish what it has, then frees. */
void committer_free(struct committer **c);

/* Appends len octets of text (header fields, LF line ends) to the
 * job's prefix. */
void delivery_job_prefix_add(struct delivery_job *job, const char *text,
			     size_t len);
void delivery_job_free(struct delivery_job **job);

/*
 * <mail_dir>/<domain>/<local>/Maildir for a mailbox "local@domain";
 * mail_dir is the configuration's (default <data_dir>/mail) and may be a
 * store shared by several nodes;
 * characters that could escape the directory ('/', a leading '.', control
 * characters, '%') are %XX-encoded. NULL if the mailbox has no '@'.
 */
char *maildir_path(const char *mail_dir, const char *mailbox);

/* Creates <maildir>/{tmp,new,cur} and the parents, durably (mode 0750).
 * 0, or -1 with errno. */
int maildir_create(const char *maildir);

/*
 * A Maildir file name as godwit's deliveries make them:
 * "<sec>.M<usec>P<pid>Q<id>_<seq>.<host>,S=<octets>,W=<vsize>" (the
 * time now; host without '/' or ':').
 */
void maildir_name(char *buf, size_t size, const char *host, int pid,
		  const char *id, unsigned seq, uint64_t octets,
		  uint64_t vsize);

/*
 * One message (len octets, as they are: no Return-Path is added) into
 * maildir, created if missing, through the same write as the committer's
 * copies: tmp/, fdatasync, mtime (when > 0), rename into new/ — or into
 * cur/ as "<name>:<info>" when info is not NULL ("2,S": seen). The
 * directory is not fsynced: call fsync_dir() on new/ and cur/ once after
 * a batch. For `godwit mailbox import`. 0, or -1 with errno.
 */
int maildir_store(const char *maildir, const char *host, const void *data,
		  size_t len, const char *info, int64_t mtime);

/* The Maildir++ folder where quarantined mail goes (IMAP shows it as
 * Junk; POP3 reads only the inbox). */
#define MAILDIR_JUNK ".Junk"

/* The Maildir++ folder where a copy of submitted mail goes
 * (submission.save_sent; IMAP shows it as \Sent). */
#define MAILDIR_SENT ".Sent"

/*
 * Creates the Maildir++ folder <maildir>/<folder> (".Junk"): the Maildir
 * if missing, the folder's {tmp,new,cur} and its empty "maildirfolder"
 * file, all durably. 0, or -1 with errno.
 */
int maildir_folder_create(const char *maildir, const char *folder);

#endif
