/*
 * Retention: a background thread that removes mail older than
 * retention.mail from every mailbox, at start and then every
 * retention.interval, and logs what it did. One worker (slot 0) runs it;
 * the sweep itself is mailbox_expire(), which skips mailboxes a POP3
 * session holds, so it never pulls a message from under a client.
 */
#ifndef GODWIT_RETENTION_H
#define GODWIT_RETENTION_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct retention;

/* retention: in the configuration */
struct retention_config {
	uint64_t mail;		/* seconds mail is kept; 0 = forever */
	uint64_t interval;	/* seconds between sweeps */
	uint64_t logs;		/* seconds rotated log files are kept; 0 */
};

/*
 * Rotated log and audit files (retention.logs): in dir, every
 * `NAME.log.YYYY-MM-DD` whose day ended more than max_age seconds before
 * now is removed (only = "mail.log": only that NAME.log's). A current
 * file (no date) never matches. The newest `audit.log.DATE` is kept
 * while `audit.log` is missing or empty: it holds the head of the audit
 * chain. Run by the parent, which owns log/ (daemon/logfile.c); logs one
 * fac=retention event=log-removed per file and event=logs-sweep.
 */
struct retention_logs_stats {
	unsigned files;		/* rotated files seen */
	unsigned removed;
	unsigned errors;
	bool kept_head;		/* an old audit file kept for the chain */
};
int retention_remove_logs(const char *dir, const char *only, time_t now,
			  uint64_t max_age, struct retention_logs_stats *st);
/* "NAME.log.YYYY-MM-DD" (or "...YYYY-MM-DD.N", a day's second rotation
 * of the audit log) -> the length of "NAME.log" and the day (local
 * midnight that begins it); -1 for any other name. */
int retention_log_name(const char *name, size_t *base_len_r, time_t *day_r);

/* Sweeps the Maildirs below mail_dir (mailbox_expire()). NULL if
 * retention is off (rc->mail is 0). */
struct retention *retention_start(const struct retention_config *rc,
				  const char *mail_dir);
/* Stops the thread (waits for a sweep in progress) and frees. */
void retention_stop(struct retention **r);

#endif
