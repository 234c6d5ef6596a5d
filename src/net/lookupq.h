/*
 * User-database lookups off the event loop. Over a network database a
 * lookup is a round trip, and seconds while the server is down or a
 * connection is being made again: run in the loop it would stall every
 * other session of the process. Each worker (and the runner) has one
 * lookup thread with its own user database handle (a connection of its
 * own for a network backend); a job carries its question there and its
 * answer back, and its done callback runs on the loop thread.
 *
 *	job = rcpt_lookup_new(&ctx, &mbox, 1);	// or any struct lookup_job
 *	job->done = my_done; job->arg = me;
 *	lookupq_submit(q, job);
 *	...
 *	lookup_job_cancel(job);		// I go away first: the queue frees it
 *
 * A job is the queue's from submit on: after done (or in its place, when
 * the asker cancelled) the queue calls job->free; a job cancelled before
 * its turn is not run (a client that hung up costs no query). Cancelling is for the
 * loop thread only, the one that runs done. A database error is an
 * answer like any other (-1 from the userdb op, RCPT_TEMPFAIL): the
 * asker turns it into its temporary reply.
 */
#ifndef GODWIT_LOOKUPQ_H
#define GODWIT_LOOKUPQ_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "mail/smtp_parse.h"
#include "store/recipient.h"

struct event_base;
struct lookupq;
struct userdb;
struct userdb_config;

struct lookup_job {
	/* on the lookup thread, with its database */
	void (*run)(struct lookup_job *job, struct userdb *db);
	/* on the loop thread; NULL once cancelled */
	void (*done)(struct lookup_job *job, void *arg);
	void *arg;
	/* on the loop thread, after done or in its place */
	void (*free)(struct lookup_job *job);
	/* set by lookup_job_cancel(): the thread need not ask at all */
	atomic_bool cancelled;
};

/* NULL with *error_r if the database cannot be opened. */
struct lookupq *lookupq_new(struct event_base *base,
			    const struct userdb_config *udb, char **error_r);
void lookupq_submit(struct lookupq *q, struct lookup_job *job);
/* The asker goes away: no done, the queue frees the job. */
void lookup_job_cancel(struct lookup_job *job);
/* Finishes the jobs submitted (their done runs), joins, closes. */
void lookupq_free(struct lookupq **q);

/*
 * Recipient resolution (store/recipient.h) of n mailboxes with one
 * context (its db is the thread's; the strings it points to must live
 * as long as the job: the configuration's do). res[i] is mbox[i]'s
 * answer; take what you keep out of it in done (the job's free clears
 * what is left).
 */
struct rcpt_lookup {
	struct lookup_job job;
	struct recipient_ctx ctx;
	size_t n;
	struct smtp_mailbox *mbox;
	struct recipient_result *res;
	/* the asker's, freed with the job (data_free may be NULL) */
	void *data;
	void (*data_free)(void *data);
};

struct rcpt_lookup *rcpt_lookup_new(const struct recipient_ctx *ctx,
				    const struct smtp_mailbox *mbox, size_t n);

/*
 * The submission sender policy (auth_sender_allowed) for a list of
 * addresses, in order, stopping at the first that is not allowed: a
 * NULL address stops the walk too (the asker's own refusal at that
 * place, decided without the database). failed is the index it stopped
 * at (n: all allowed), r the answer there (0 not allowed, -1 database
 * error; 1 when failed is n or the address was NULL).
 */
struct sender_lookup {
	struct lookup_job job;
	char account[320];
	char delimiter;
	size_t n;
	char **addrs;		/* n entries, some NULL */
	size_t failed;		/* out */
	int r;			/* out */
};

struct sender_lookup *sender_lookup_new(const char *account, char delimiter,
					const char *const *addrs, size_t n);

/* Whether each of n domains is local (userdb domain_exists): r[i] 1, 0
 * or -1. */
struct domain_lookup {
	struct lookup_job job;
	size_t n;
	char **domains;
	int *r;			/* out */
};

struct domain_lookup *domain_lookup_new(const char *const *domains, size_t n);

#endif
