/*
 * Retention: a background thread that removes mail older than
 * retention.mail from every mailbox, at start and then every
 * retention.interval, and logs what it did. One worker (slot 0) runs it;
 * the sweep itself is mailbox_expire(), which skips mailboxes a POP3
 * session holds, so it never pulls a message from under a client.
 */
#ifndef GODWIT_RETENTION_H
#define GODWIT_RETENTION_H

#include <stdint.h>

struct retention;

/* retention: in the configuration */
struct retention_config {
	uint64_t mail;		/* seconds mail is kept; 0 = forever */
	uint64_t interval;	/* seconds between sweeps */
};

/* NULL if retention is off (rc->mail is 0). */
struct retention *retention_start(const struct retention_config *rc,
				  const char *data_dir);
/* Stops the thread (waits for a sweep in progress) and frees. */
void retention_stop(struct retention **r);

#endif
