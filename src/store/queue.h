/*
 * The queue's on-disk format (docs/queue-format.md): one file per message,
 * a versioned text envelope, a blank line, the message, and an end marker,
 * so that a torn or foreign file is recognised and never delivered.
 *
 *	queue/tmp/        being written (O_EXCL), fsync'd, then renamed to
 *	queue/incoming/   accepted, waiting for the queue runner
 *	queue/active/ deferred/ hold/   the queue runner's (mta/runner.h)
 */
#ifndef GODWIT_QUEUE_H
#define GODWIT_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mail/envelope.h"

/* queue: in the configuration (the runner's retry schedule) */
struct queue_config {
	uint64_t lifetime;	/* seconds until a bounce; 5d */
	uint64_t retry_min;	/* first retry after; 5m */
	uint64_t retry_max;	/* backoff cap; 4h */
	uint64_t delay_warning;	/* seconds; 0 = no warnings */
};

extern const char *const queue_states[];	/* NULL-terminated dir names */

/*
 * A new id: 11 hex digits of milliseconds, then 5 that hold the worker
 * slot (6 bits) and a per-process counter (14 bits). Sortable by time and
 * unique by construction: two workers never share a slot, and one worker
 * cannot make 16384 ids in a millisecond. queue_id_init() once per
 * process (the default slot is 0).
 */
void queue_id_init(unsigned slot);
void queue_id_new(char id[QUEUE_ID_LEN + 1]);

/*
 * Reads and checks a queue file: magic and version, every field, that
 * size matches the file and the end marker is there. On success *data_off_r
 * is where the message starts. Returns -1 with *error_r (caller frees).
 */
int queue_envelope_read(const char *path, struct queue_envelope *e,
			uint64_t *data_off_r, char **error_r);
/*
 * Reads queue/state/<id> (the record: mail/envelope.h) for a message of nrcpts recipients. 0 if read
 * (or absent: then the defaults); -1 if it exists but is not valid (then
 * the defaults too, and *error_r says why: the caller logs it — delivering
 * again is better than losing mail).
 */
int queue_state_read(const char *data_dir, const char *id, size_t nrcpts,
		     struct queue_state *st, char **error_r);
/* Durably (tmp file, fdatasync, rename, directory fsync). 0, or -1 +
 * error (caller frees). */
int queue_state_write(const char *data_dir, const char *id,
		      const struct queue_state *st, char **error_r);
/*
 * queue_state_write() for n messages with one fsync of queue/state/ (each
 * file's data still its own fdatasync). errors_r[i]: NULL if sts[i] was
 * written durably, else why not (caller frees). 0 if all were, else -1.
 */
int queue_state_write_batch(const char *data_dir, const char *const *ids,
			    const struct queue_state *const *sts, size_t n,
			    char **errors_r);
void queue_state_remove(const char *data_dir, const char *id);

/* The message ids in queue/<dir>, sorted (that is, by arrival); other
 * names are left out. NULL when there are none (*n_r = 0). Caller frees
 * each and the array. */
char **queue_ids(const char *data_dir, const char *dir, size_t *n_r);

/* queue_states[] index of the directory that holds id, or -1. */
int queue_locate(const char *data_dir, const char *id);
/*
 * Moves queue/<from>/<id> to queue/<to>/<id> durably: when it returns 0,
 * a power cut leaves the message in <to> (or, out of incoming/, possibly
 * in both; the runner's recovery takes the copy in active/ back, and a
 * pickup finds the two names of one file and takes it once). The new
 * entry is fsync'd before the old one can go: out of incoming/ a link,
 * fsync of <to>, then unlink, because a worker's committer may fsync
 * incoming/ at any moment (a rename followed by that fsync would leave no
 * durable name at all until <to> is synced); otherwise rename then fsync
 * of <to> (only the queue runner syncs the other directories, on the same
 * thread). 0, or -1 with errno.
 */
int queue_move(const char *data_dir, const char *id, const char *from,
	       const char *to);
/*
 * queue_move() for many messages of one directory at the cost of one:
 * every new entry is made, then <to> is fsync'd once, then (out of
 * incoming/) every old name is unlinked. moved_r[i] says whether ids[i]
 * was moved (not if it is gone, taken already, not an id, or named
 * earlier in ids). Returns how many were; -1 with errno if <to> could
 * not be fsync'd (then none was: out of incoming/ each is left in both,
 * out of another directory each is in <to> until recovery).
 */
ssize_t queue_move_batch(const char *data_dir, const char *from,
			 const char *to, const char *const *ids, size_t n,
			 bool *moved_r);

/*
 * hold (incoming|deferred -> hold), release (hold -> deferred, due now)
 * or delete (file and state) one message that is not being delivered.
 * 1 done, 0 nothing to do (not there, or not in a state op applies to),
 * -1 with errno.
 */
int queue_file_op(const char *data_dir, const char *op, const char *id);

/*
 * A message made here (an alert to postmaster) into queue/incoming/ like
 * any accepted one: e's text, msg (LF line ends), the end marker, into
 * queue/tmp/<e->id> (O_EXCL), owned by uid:gid when they are not -1,
 * fdatasync'd, renamed into incoming/ and the directory fsync'd. e->size
 * is set. 0, or -1 with *error_r (caller frees); nothing is left behind.
 */
int queue_inject(const char *data_dir, struct queue_envelope *e,
		 const char *msg, size_t len, uid_t uid, gid_t gid,
		 char **error_r);

/*
 * The names in queue/<state>/ in the order the directory lists them, every
 * name but dot-files (`godwit queue list` reports a file that is not a
 * message rather than hide it). NULL when there are none or the directory
 * cannot be opened (*n_r = 0). Caller frees each and the array.
 */
char **queue_dir_names(const char *data_dir, const char *state, size_t *n_r);
/* <data_dir>/queue/<state>/<name> (caller frees) */
char *queue_path(const char *data_dir, const char *state, const char *name);
/*
 * The message header of the queue file at path: from data_off (what
 * queue_envelope_read() gave) up to the blank line, which is left out.
 * NULL if the file cannot be opened or read there (caller frees).
 */
char *queue_message_header(const char *path, uint64_t data_off);

#endif
