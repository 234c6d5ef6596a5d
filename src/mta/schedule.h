/*
 * The queue runner's scheduling, as pure functions of time and state
 * (tests/unit/test_schedule.c): when a deferred message is tried again
 * (exponential backoff from queue.retry_min, capped at
 * queue.retry_max), when it has been in the queue too long (lifetime:
 * what is still pending bounces), when the sender is told of the delay
 * (once, after queue.delay_warning), what an attempt made of each
 * recipient, and the list of deferred messages by due time.
 */
#ifndef GODWIT_SCHEDULE_H
#define GODWIT_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mail/envelope.h"

/* Seconds, from the configuration. */
struct schedule_params {
	uint64_t retry_min;
	uint64_t retry_max;
	uint64_t lifetime;
	uint64_t delay_warning;		/* 0: never warn */
};

/* The wait after the attempts-th attempt: retry_min doubled per attempt
 * after the first, never above retry_max. */
uint64_t schedule_backoff(const struct schedule_params *p, unsigned attempts);
/* now + the backoff, saturating. */
int64_t schedule_next_attempt(const struct schedule_params *p, int64_t now,
			      unsigned attempts);
/* The message has been queued for its lifetime or longer. */
bool schedule_expired(const struct schedule_params *p, int64_t arrival,
		      int64_t now);
/* arrival + lifetime, saturating (a report's Will-Retry-Until). */
int64_t schedule_retry_until(const struct schedule_params *p,
			     int64_t arrival);
/* A delay report is due: warnings on, none sent yet, and the message
 * queued for delay_warning or longer. */
bool schedule_warn_due(const struct schedule_params *p, int64_t arrival,
		       int64_t now, bool warned);

/* What one attempt made of a recipient. */
enum schedule_fate {
	FATE_UNTRIED,		/* not tried this round */
	FATE_SENT,		/* 2xx */
	FATE_BOUNCED,		/* 5xx, or out of time */
	FATE_DEFERRED,		/* 4xx within its lifetime */
};
enum schedule_fate schedule_fate(bool tried, int code, bool expired);
/*
 * The recipient's status once the round's reports are out: sent is
 * done; bounced is failed unless the failure report could not be made
 * (report_lost: then it stays pending, to be reported again).
 */
enum queue_rcpt_status schedule_status(enum schedule_fate fate,
				       bool report_lost);

/* Deferred messages by the time they are due. */
struct due {
	char id[QUEUE_ID_LEN + 1];
	int64_t when;
};

struct due_list {
	struct due *v;
	size_t n, cap;
	int64_t min;		/* the earliest when, if n > 0 */
};

/* Adds id, due at when; true if that is now the earliest. */
bool due_list_add(struct due_list *dl, const char *id, int64_t when);
/*
 * Takes out up to room entries due at now or before, in list order, and
 * returns them (caller frees; NULL if none) with their count in *n_r;
 * min is that of the rest.
 */
struct due *due_list_take(struct due_list *dl, int64_t now, size_t room,
			  size_t *n_r);
/* Makes every entry due now; returns how many there are. */
size_t due_list_flush(struct due_list *dl);
void due_list_clear(struct due_list *dl);

#endif
