/*
 * The queue's on-disk format (docs/queue-format.md): one file per message,
 * a versioned text envelope, a blank line, the message, and an end marker,
 * so that a torn or foreign file is recognised and never delivered.
 *
 *	queue/tmp/        being written (O_EXCL), fsync'd, then renamed to
 *	queue/incoming/   accepted, waiting for the queue runner
 *	queue/active/ deferred/ hold/   (outbound delivery, later issues)
 */
#ifndef GODWIT_QUEUE_H
#define GODWIT_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QUEUE_ID_LEN 16
#define QUEUE_VERSION 1
#define QUEUE_MAGIC "godwit-queue"
#define QUEUE_END "\n.end godwit-queue\n"

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
	char *body;		/* "7BIT", "8BITMIME", "BINARYMIME" */
	bool smtputf8;
	char *ret;		/* "", "FULL", "HDRS" */
	char *envid;
	struct queue_rcpt *rcpts;
	size_t nrcpts;
	uint64_t size;		/* octets of message following the envelope */
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
bool queue_id_valid(const char *id);

/* The envelope's text, up to and including the blank line (caller frees). */
char *queue_envelope_format(const struct queue_envelope *e, size_t *len_r);
/*
 * Parses and checks a queue file: magic and version, every field, that
 * size matches the file and the end marker is there. On success *data_off_r
 * is where the message starts. Returns -1 with *error_r (caller frees).
 */
int queue_envelope_read(const char *path, struct queue_envelope *e,
			uint64_t *data_off_r, char **error_r);
int queue_envelope_parse(const char *buf, size_t len,
			 struct queue_envelope *e, size_t *hdr_len_r,
			 char **error_r);
void queue_envelope_free(struct queue_envelope *e);
void queue_rcpt_add(struct queue_envelope *e, const char *addr,
		    unsigned notify, const char *orcpt);

/* Creates data_dir/queue/{tmp,incoming,...}. */
int queue_dirs_create(const char *data_dir, char **error_r);

/* godwit queue list|show: argv[0] is "queue". Returns the exit code. */
struct config;
int queue_admin(const struct config *config, int argc, char **argv);

#endif
