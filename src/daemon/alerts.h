/*
 * The parent's side of the alerts (net/alert.h): it drains the channel
 * the workers and the runner raise alerts on, and for each writes the
 * `event=alert` line, then — at most once per kind and subject per
 * alerts.interval — queues a mail to postmaster (a queue file in
 * queue/incoming/, delivered by the runner like any mail) and runs
 * alerts.command with the alert as JSON on stdin. The command is forked
 * by the parent (the children fork nothing), runs as the daemon user
 * and is killed after alerts.command_timeout; the loop never waits for
 * it. The parent also raises two kinds itself: cert-expiry (at start
 * and daily) and crash-loop (from its reaping of workers).
 */
#ifndef GODWIT_ALERTS_H
#define GODWIT_ALERTS_H

#include <stdbool.h>
#include <sys/types.h>

#include <event2/event.h>

struct config;
struct alerts;

/* Who the command runs as (the parent's privilege drop). */
struct alerts_ids {
	bool drop;
	uid_t uid;
	gid_t gid;
	const gid_t *groups;
	int ngroups;
};

/* Made before the children are forked; NULL with errno on failure. */
struct alerts *alerts_new(struct event_base *base,
			  const struct config *config,
			  const struct alerts_ids *ids);
/* After a reload: the new configuration (alerts keeps no copy); its
 * certificates are checked at once. */
void alerts_set_config(struct alerts *al, const struct config *config);
/* In a child just forked: its alerts go to the parent's channel, whose
 * reading end it closes (nothing else of al is the child's to use). */
void alerts_in_child(struct alerts *al);
/* A child the parent reaped: true if it was a command of ours. */
bool alerts_reaped(struct alerts *al, pid_t pid, int status);
/* A worker died unexpectedly (crash-loop). */
void alerts_worker_died(struct alerts *al);
void alerts_free(struct alerts **al);

#endif
