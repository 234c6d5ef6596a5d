/*
 * The queue file's text records (docs/queue-format.md), as pure
 * functions of bytes: the envelope at the head of every queue file and
 * the delivery state of deferred mail (queue/state/<id>). No I/O here;
 * the files themselves are store/queue.c's. String values are xtext
 * (RFC 3461 4.), so a value never holds a space, a newline or anything
 * else that would break the format. Fuzzed by fuzz/fuzz_envelope.c.
 */
#ifndef GODWIT_ENVELOPE_H
#define GODWIT_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mail/smtp_parse.h"

#define QUEUE_ID_LEN 16
#define QUEUE_VERSION 1
#define QUEUE_MAGIC "godwit-queue"
#define QUEUE_END "\n.end godwit-queue\n"
/*
 * The largest "size" an envelope may give: far above any message, and
 * low enough that the size plus an envelope and the end marker still
 * fits an off_t, so a corrupt or hostile file cannot make the
 * arithmetic on it wrap.
 */
#define QUEUE_SIZE_MAX ((uint64_t)INT64_MAX / 4)

struct queue_rcpt {
	char *addr;		/* user@domain */
	unsigned notify;	/* SMTP_NOTIFY_* or 0 */
	char *orcpt;		/* "" if none */
};

struct queue_envelope {
	char id[QUEUE_ID_LEN + 1];
	int64_t arrival;	/* unix seconds */
	char *client_ip;
	char *helo;
	char *sender;		/* "" for the null sender <> */
	enum smtp_body body;
	bool smtputf8;
	char *ret;		/* "", "FULL", "HDRS" */
	char *envid;
	char *auth;		/* the authenticated user who sent it, or ""
				 * (written only when there is one) */
	struct queue_rcpt *rcpts;
	size_t nrcpts;
	uint64_t size;		/* octets of message following the envelope,
				 * at most QUEUE_SIZE_MAX */
};

/* 16 lower-case hex digits (store/queue.h makes them). */
bool queue_id_valid(const char *id);

/* The envelope's text, up to and including the blank line (caller frees). */
char *queue_envelope_format(const struct queue_envelope *e, size_t *len_r);
/*
 * Parses the envelope at the head of buf: magic and version, every
 * field. On success *hdr_len_r is the length up to and including the
 * blank line, and the string fields an old file may lack are "". A body
 * value other than the three BODY keywords reads as 7BIT, as the runner
 * has always taken it. Returns -1 with *error_r (caller frees).
 */
int queue_envelope_parse(const char *buf, size_t len,
			 struct queue_envelope *e, size_t *hdr_len_r,
			 char **error_r);
void queue_envelope_clear(struct queue_envelope *e);
void queue_rcpt_add(struct queue_envelope *e, const char *addr,
		    unsigned notify, const char *orcpt);

/*
 * Delivery state of a message (queue/state/<id>, written only when a
 * message is deferred): attempts, the next attempt, the last error, and
 * per recipient whether it is still pending, done, or failed (bounced).
 * The message file itself is never rewritten. Absent file: nothing tried
 * yet. Format, one "key value" per line, values xtext:
 *	godwit-state 1
 *	attempts 3
 *	next 1795416528
 *	warned 0
 *	error 451+204.7.1+20greylisted
 *	rcpt 0 done +
 *	rcpt 1 pending 451+204.7.1+20greylisted
 */
enum queue_rcpt_status { QRS_PENDING, QRS_DONE, QRS_FAILED };

struct queue_state {
	unsigned attempts;
	int64_t next_attempt;		/* unix seconds; 0 = now */
	bool warned;			/* a delay DSN was sent */
	char *last_error;		/* "" = none */
	size_t nrcpts;
	enum queue_rcpt_status *status;
	char **errors;			/* per recipient, "" = none */
};

/* Sets *st to "nothing tried" for nrcpts recipients. */
void queue_state_init(struct queue_state *st, size_t nrcpts);
void queue_state_clear(struct queue_state *st);
/* The state file's text (caller frees). */
char *queue_state_format(const struct queue_state *st, size_t *len_r);
/*
 * Parses a state file's text (NUL-terminated; buf is cut up) into st,
 * made by queue_state_init() for the message's recipients. 0, or -1
 * with *why_r (static) and st partly filled.
 */
int queue_state_parse(char *buf, struct queue_state *st, const char **why_r);

#endif
