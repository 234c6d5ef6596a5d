/*
 * What the queue runner's files share (runner.h says what the runner
 * does): runner.c the process, its event loop and the control commands;
 * message.c a message's round of delivery; dest.c destinations and
 * their connections; bounce.c the reports to the sender; schedule.c
 * when (pure).
 *
 * A message's recipients are grouped by destination (the recipient
 * domain, or "" for the smarthost) into one job per destination; a
 * destination's connections take jobs from its queue until none is
 * left. When every job of a message is done (msg_round_done), the
 * reports go out, then the message is removed or deferred.
 */
#ifndef GODWIT_RUNNER_PRIVATE_H
#define GODWIT_RUNNER_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <openssl/ssl.h>

#include "mail/dsn.h"
#include "mta/schedule.h"
#include "mta/smtp_client.h"
#include "store/queue.h"

#ifndef TAILQ_FOREACH_SAFE
#define TAILQ_FOREACH_SAFE(var, head, field, tvar)                        \
	for ((var) = TAILQ_FIRST(head);                                   \
	     (var) != NULL && ((tvar) = TAILQ_NEXT(var, field), 1);       \
	     (var) = (tvar))
#endif

#define ACTIVE_MAX 10000	/* messages in memory at once; when full, */
#define ACTIVE_LOW 7500		/* more are taken once down to this */

struct lookup_job;
struct lookupq;
struct runner;
struct runner_settings;
struct dest;

/* What one attempt made of one recipient. */
struct outcome {
	bool tried;
	int code;		/* 0: not tried this round */
	char enh[16];
	char *text;		/* "550 5.1.1 user unknown" */
	char *relay;		/* "mx.b.test[198.18.0.12]:25", or NULL */
	bool relayed;		/* the peer does not do DSN */
	char *tls;		/* "TLSv1.3 with cipher ...", or NULL */
};

#define MSG_LOOKUPS_MAX 4	/* the load, and one per kind of report */

struct msg {
	struct runner *r;
	char id[QUEUE_ID_LEN + 1];
	struct queue_envelope env;
	uint64_t off;
	int fd;
	struct queue_state st;
	struct outcome *out;
	unsigned jobs;		/* in flight */
	unsigned dsns;		/* reports being committed */
	bool dsn_failed;
	bool hold_req;
	bool delete_req;
	bool delete_bounce;
	bool reported;		/* the reports of this round are out */
	/* user-database lookups out for it (its domains, its reports'
	 * routes): cancelled if it goes first */
	struct lookup_job *lookups[MSG_LOOKUPS_MAX];
	TAILQ_ENTRY(msg) entry;
};

struct job {
	struct msg *m;
	struct dest *d;
	size_t *idx;		/* recipient indices */
	size_t n;
	TAILQ_ENTRY(job) entry;
};

struct conn {
	struct runner *r;
	struct dest *d;
	struct smtp_client *c;
	size_t host, addr;	/* next address to try */
	struct smtp_reply fail;	/* last connection failure */
	char fail_relay[300];	/* where: "host[addr]:port" */
	struct job *job;
	struct smtp_client_msg cm;
	struct smtp_client_rcpt *rcpts;
	TAILQ_ENTRY(conn) entry;
};

TAILQ_HEAD(jobq, job);

struct dest {
	struct runner *r;
	char *key;		/* recipient domain, or "" for the smarthost */
	bool smarthost;
	struct jobq jobs;
	unsigned njobs;
	TAILQ_HEAD(, conn) conns;
	unsigned nconns;
	unsigned nconnecting;
	struct dns_query *q;
	struct dns_route *route;
	TAILQ_ENTRY(dest) entry;
};

struct runner {
	struct event_base *base;
	const struct runner_settings *config;
	const struct runner_secrets *secrets;
	struct schedule_params sched;
	struct lookupq *lookupq;	/* the user database, off the loop */
	struct committer *committer;
	struct reaper *reaper;
	struct gauge *gauge;	/* the queue's size for the metrics, or NULL */
	struct dns_resolver *dns;
	SSL_CTX *ssl_mx;
	SSL_CTX *ssl_relay;
	int ino_fd;
	struct event *ino_ev;
	struct event *timer;
	struct control *ctl;
	TAILQ_HEAD(, dest) dests;
	TAILQ_HEAD(, msg) msgs;
	unsigned nmsgs;
	unsigned nconns;
	bool backlog;		/* incoming/ has more than we took */
	struct due_list due;
	struct msg **defer;	/* deferred, to leave active/ together */
	size_t ndefer, defer_cap;
	struct event *defer_ev;
	struct watch *watch;	/* watch.c */
	bool stopping;
};

/* watch.c: sending-limit holds, queue-size and bounces alerts */
void watch_start(struct runner *r);
void watch_stop(struct runner *r);
/* m just loaded from incoming/: if its account is over its sending
 * limit, it goes to hold/ and is freed (true). */
bool watch_hold(struct msg *m, const char *from);
/* A recipient bounced (the bounces alert). */
void watch_bounced(struct runner *r);

/* runner.c */
int64_t now_s(void);
void timer_arm(struct runner *r);
void due_add(struct runner *r, const char *id, int64_t when);
void reaper_add(struct reaper *rp, const char *id, int fd);

/* message.c */
void outcome_set(struct outcome *o, int code, const char *enh,
		 const char *text, const char *relay);
void outcome_clear(struct outcome *o);
void msgs_activate(struct runner *r, const char *const *ids, size_t n,
		   const char *from, bool delete_bounce);
void msg_free(struct msg *m);
/* job goes to the lookup thread for m (job->done and arg are set);
 * msg_lookup_done() in done. */
void msg_lookup(struct msg *m, struct lookup_job *job);
void msg_lookup_done(struct msg *m, struct lookup_job *job);
/* Every job of this round is done: report, then keep or drop m. */
void msg_round_done(struct msg *m);
/* One job's recipients have their outcomes. */
void job_finish(struct job *j);
/* The messages deferred since the last call leave active/. */
void defer_flush(struct runner *r);
struct msg *active_msg(struct runner *r, const char *id);

/* dest.c */
/* The destination for key (made if new). */
struct dest *dest_get(struct runner *r, const char *key, bool smarthost);
/* Starts what the destination's queue calls for, within the limits. */
void dest_kick(struct dest *d);
/* Kicks every destination with jobs waiting for a connection. */
void dests_kick(struct runner *r, const struct dest *except);
/* At shutdown: every destination, connection and job goes. */
void dests_free(struct runner *r);
/* The recipient's domain goes by the smarthost. */
bool uses_smarthost(const struct runner_settings *c, const char *domain);

/* bounce.c */
/*
 * Builds a report on the recipients idx[] of m and hands it to the
 * committer: into the sender's Maildir if the sender is local, into the
 * queue (null sender) if not, once the user database has said which
 * (the lookup thread; m->dsns counts it meanwhile). Returns false if
 * nothing was submitted.
 */
bool dsn_send(struct msg *m, enum dsn_action action, const size_t *idx,
	      size_t n, bool failure);
uint64_t count_lf(const char *s, size_t len);

#endif
