/*
 * Attachment rules: the MIME structure of a message walked (GMime 3),
 * each file checked by name (mail/attach_name.h: blocked extensions,
 * double extensions, hidden extensions), by content (libmagic:
 * executables, whatever the name or declared type) and inside archives
 * (libarchive: the same rules on every member, nested archives within
 * the limits; encrypted archives by policy). uuencoded files in text
 * parts are found and checked too.
 *
 * The walk is CPU work on untrusted input, so it runs on a thread of its
 * own (attachq), one per worker process, with its own libmagic cookie
 * (a cookie is not to be shared between threads). Limits on nesting
 * depth, part count and decoded octets bound what one message may cost;
 * a message past one is refused, never walked further.
 */
#ifndef GODWIT_ATTACH_H
#define GODWIT_ATTACH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

enum attach_encrypted {
	ATTACH_ENCRYPTED_REFUSE,	/* the default */
	ATTACH_ENCRYPTED_ALLOW,
};

/* filter.attachments */
struct attach_config {
	bool enabled;		/* on by default */
	char **blocked_extensions;	/* without the dot, lower case */
	size_t nblocked_extensions;
	int encrypted_archives;	/* enum attach_encrypted */
	unsigned max_depth;	/* multiparts, messages, archives nested */
	unsigned max_parts;	/* MIME parts and archive members in all */
	uint64_t max_decoded_size;	/* octets decoded in all */
};

enum attach_status {
	ATTACH_OK,
	ATTACH_REFUSED,		/* a file broke a rule */
	ATTACH_LIMIT,		/* a limit was reached: refused unchecked */
	ATTACH_ERROR,		/* the message could not be read: 451 */
};

#define ATTACH_TEXT_MAX 384

struct attach_result {
	enum attach_status status;
	const char *reason;	/* for the log: "blocked-extension", ... */
	int code;		/* 554 (a rule, depth, parts), 552 (size),
				 * 451 (error) */
	const char *enh;	/* "5.7.1", "5.3.4", "4.3.0" */
	char text[ATTACH_TEXT_MAX];	/* the reply text, printable ASCII */
	unsigned parts;		/* parts and members looked at */
	uint64_t decoded;	/* octets decoded */
};

/* ---- the walk, on any one thread ---------------------------------------- */

struct attach_scanner;

/* NULL with *error_r (malloc'd) when libmagic cannot load its database. */
struct attach_scanner *attach_scanner_new(char **error_r);
void attach_scanner_free(struct attach_scanner **sc);
/* Walks the message msg[0..len) (LF or CRLF line ends) by cfg. */
void attach_scan(struct attach_scanner *sc, const struct attach_config *cfg,
		 const unsigned char *msg, size_t len, struct attach_result *r);

/* ---- the thread ----------------------------------------------------------- */

struct attach_job {
	/* in: the message, owned by the job: len octets at msg, or (msg
	 * NULL) from offset off of the file fd, which the thread maps */
	unsigned char *msg;
	int fd;
	uint64_t off;
	size_t len;
	/* out */
	struct attach_result result;
	uint64_t elapsed_us;
	/* called on the loop thread; the session may clear done (loop
	 * thread only) if it goes away first */
	void (*done)(struct attach_job *job, void *arg);
	void *arg;
	struct attach_job *next;
};

struct attachq;

/* The walk's thread for this loop; cfg is borrowed (outlives the queue).
 * NULL with *error_r when libmagic cannot be loaded. */
struct attachq *attachq_new(struct event_base *base,
			    const struct attach_config *cfg, char **error_r);
/* Takes over job: job->done runs later on the loop thread, then the job
 * is freed. */
void attachq_submit(struct attachq *q, struct attach_job *job);
/* Runs what was submitted, joins, frees. */
void attachq_free(struct attachq **q);

#endif
