/*
 * The tamper-evident audit log, <data_dir>/log/audit.log: one JSON line
 * per accepted message (written by the committers, store/deliver.c, in
 * the batch that makes the message durable, before the 250) and per
 * admin action (the admin commands, the parent's reloads), each line
 * beginning with the SHA-256 of the line before it (lib/hashchain.h):
 *
 *	{"prev":"<hex>","time":"2026-12-06T17:05:59.123Z","type":"message",...}
 *
 * Every value goes through the log field encoder (lib/logfmt.h, JSON),
 * so no client's string can break a line or make a field.
 *
 * Several processes append (each worker's committer, the runner's, the
 * parent, the admin commands): an appender takes flock(LOCK_EX) on
 * audit.log itself, checks that the file it locked is still the one
 * named audit.log (a rotation replaces it), reads the hash of the last
 * line (or remembers it from its own last append), writes its lines with
 * one write() and fdatasync()s before it unlocks: the chain stays linear
 * and every line that was answered for is durable.
 *
 * Rotation (audit_rotate) renames the current file to
 * audit.log.YYYY-MM-DD (.1, .2 ... when that name is taken) and starts a
 * new audit.log whose first line, "type":"rotate", carries the old file's
 * last hash: the chain runs on across files. Only root rotates on a
 * server (log/ is root's): the parent at local midnight and
 * `godwit audit rotate`.
 */
#ifndef GODWIT_AUDIT_H
#define GODWIT_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/hashchain.h"
#include "lib/strbuf.h"

#define AUDIT_DIR "log"
#define AUDIT_FILE "audit.log"
/* A line longer than this is never written (arrays are cut, "cut":true)
 * and is refused by verify. */
#define AUDIT_LINE_MAX (1024 * 1024)

/* audit: in the configuration */
struct audit_config {
	bool enabled;		/* the committers write message lines */
};

/* ---- records -------------------------------------------------------- */

/* The fields of one line after "prev", built one at a time. */
struct audit_rec {
	struct strbuf b;	/* the record so far */
	bool cut;		/* an array was cut to keep the line bounded */
};

/* Starts a record: "time" (now, UTC, ms) and "type". */
void audit_rec_begin(struct audit_rec *r, const char *type);
/* key: a literal of [a-z0-9_]; val NULL is written as "". */
void audit_rec_str(struct audit_rec *r, const char *key, const char *val);
void audit_rec_uint(struct audit_rec *r, const char *key, uint64_t val);
void audit_rec_bool(struct audit_rec *r, const char *key, bool val);
/* A JSON array of strings. */
void audit_rec_strv(struct audit_rec *r, const char *key, char *const *v,
		    size_t n);
/* The record's text (",\"time\":...", without the braces), owned by the
 * caller; r is emptied. */
char *audit_rec_end(struct audit_rec *r);
void audit_rec_clear(struct audit_rec *r);

/* ---- the file ------------------------------------------------------- */

struct audit_log;

/* Nothing is opened until the first append. */
struct audit_log *audit_log_new(const char *data_dir);
/*
 * Appends n records (from audit_rec_end) as n chained lines under the
 * lock, durably (fdatasync) unless flags has AUDIT_NOSYNC: the caller
 * then makes the file durable itself (the committer's syncfs, which
 * covers it when it is on the same file system). head_r (or NULL): the
 * new head. 0, or -1 with *error_r (nothing of the batch is left in the
 * file then).
 */
#define AUDIT_NOSYNC 0x1
int audit_log_append(struct audit_log *al, char *const *recs, size_t n,
		     unsigned flags, char head_r[HASHCHAIN_HEX_LEN + 1],
		     char **error_r);
void audit_log_free(struct audit_log **al);

/* One record, opening and closing the file (the admin commands). */
int audit_append_one(const char *data_dir, const char *rec, char **error_r);

/*
 * An admin action: "type":"admin", the actor (user name and uid of who
 * ran it, or a process such as "parent"), action ("user-add",
 * "queue-hold", "config-reload"), object (an address, a queue id, a
 * path), result ("ok" or a reason). 0 or -1 with *error_r.
 */
int audit_admin(const char *data_dir, const char *actor, long uid,
		const char *action, const char *object, const char *result,
		char **error_r);
/* audit_admin by a user: actor uid's name (audit_actor), result "ok"
 * or "failed". */
int audit_admin_uid(const char *data_dir, uid_t uid, const char *action,
		    const char *object, bool ok, char **error_r);
/* The name of uid for "actor": its login name, else the number (into
 * buf). */
const char *audit_actor(uid_t uid, char *buf, size_t size);

/*
 * The hash of the last line of the chain (audit.log; the genesis hash
 * when there is no line yet), under a shared lock. 0 or -1 with
 * *error_r.
 */
int audit_head(const char *data_dir, char head_r[HASHCHAIN_HEX_LEN + 1],
	       char **error_r);

/*
 * Rotates: audit.log becomes audit.log.DATE (DATE "YYYY-MM-DD"; with
 * ".N" appended when taken) and a new audit.log begins with a "rotate"
 * line naming it. The new file gets owner uid:gid when uid is not -1
 * (root rotating for the daemon user). *name_r (or NULL): the rotated
 * file's name, NULL when audit.log was empty (nothing rotated).
 * 0 or -1 with *error_r.
 */
int audit_rotate(const char *data_dir, const char *date, uid_t uid,
		 gid_t gid, char **name_r, char **error_r);


/*
 * The files of the chain, oldest first: the rotated ones
 * (audit.log.YYYY-MM-DD[.N], by date then N) and audit.log last when it
 * exists; names only, *n_r of them. 0 or -1 with *error_r.
 */
int audit_files(const char *data_dir, char ***names_r, size_t *n_r,
		char **error_r);

#endif
