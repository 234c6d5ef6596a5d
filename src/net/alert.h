/*
 * Alerts (R4.3): things an administrator must hear about now — a burst
 * of failed logins, an account over its sending limit, the queue
 * growing or bouncing, a certificate about to expire, a worker crash
 * loop. The process that sees one raises it; the parent alone acts on
 * it (daemon/alerts.c): the `event=alert` log line, the rate limit (one
 * per kind and subject per alerts.interval), the mail to postmaster
 * and alerts.command. Workers and the runner reach the parent through
 * one datagram socket made before fork (alert_channel_new()); a send
 * never blocks: when the socket is full the alert is dropped and a
 * warning logged, because the mail loop must not wait for the parent.
 *
 * The message on the socket is a fixed struct alert, checked again by
 * the parent (alert_check()): a worker runs what the network sends it,
 * so the parent trusts nothing in it but its shape.
 */
#ifndef GODWIT_ALERT_H
#define GODWIT_ALERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* alerts: in the configuration */
struct alerts_config {
	bool enabled;			/* false: no alert at all */
	char *command;			/* run with the JSON on stdin; NULL */
	uint64_t command_timeout;	/* seconds, then SIGKILL */
	uint64_t interval;		/* seconds: one mail per kind+subject */
	unsigned auth_failures_ip;	/* per client in auth.failure_window */
	unsigned auth_failures_account;	/* per account, the same window */
	unsigned auth_failing_ips;	/* addresses failing in that window */
	unsigned queue_size;		/* messages waiting; 0: off */
	unsigned bounces_per_hour;	/* recipients bounced; 0: off */
	uint64_t cert_expiry;		/* seconds before notAfter; 0: off */
	unsigned crash_loop;		/* worker deaths ... 0: off */
	uint64_t crash_window;		/* ... within this many seconds */
};

enum alert_kind {
	ALERT_AUTH_FAILURES_IP = 1,
	ALERT_AUTH_FAILURES_ACCOUNT,
	ALERT_AUTH_FAILURES_SPREAD,
	ALERT_SENDING_LIMIT,
	ALERT_QUEUE_SIZE,
	ALERT_BOUNCES,
	ALERT_CERT_EXPIRY,
	ALERT_CRASH_LOOP,
	ALERT_REDIS_DOWN,
	ALERT_KIND_END
};

#define ALERT_VERSION 1
#define ALERT_SUBJECT_MAX 128

/*
 * What the alert is about (subject: an address, an account, a file, or
 * the kind's own word when there is one of it), the count that crossed
 * the limit, and the window it was counted in (0: none).
 */
struct alert {
	uint32_t version;
	uint32_t kind;			/* enum alert_kind */
	char subject[ALERT_SUBJECT_MAX]; /* printable ASCII, NUL-terminated */
	uint64_t count;
	uint64_t limit;
	uint64_t window_s;
};

/* "auth-failures-ip", ... (the kind= of the log and the JSON); NULL for
 * a kind out of range. */
const char *alert_kind_name(uint32_t kind);
/* One sentence for a person: what happened and what to look at. */
const char *alert_kind_text(uint32_t kind);

/*
 * Fills a: the subject is cut to fit and every byte outside printable
 * ASCII (and the quote, backslash, < and >) becomes '?', so it is safe in
 * a header field, a JSON string and a log value alike.
 */
void alert_init(struct alert *a, enum alert_kind kind, const char *subject,
		uint64_t count, uint64_t limit, uint64_t window_s);
/* A received alert's shape: version, kind, a subject alert_init() could
 * have made. false: drop it. */
bool alert_check(const struct alert *a);

/*
 * Where this process's alerts go: in a child, the channel's sending end
 * (alert_sink_fd); in the parent, a function (alert_sink_fn). Until one
 * is set, alerts are only logged by alert_raise (as "not delivered").
 */
void alert_sink_fd(int fd);
void alert_sink_fn(void (*fn)(const struct alert *a, void *arg), void *arg);
/* Raises a (see the top of the file). Never blocks. */
void alert_raise(const struct alert *a);
void alert_raise_kind(enum alert_kind kind, const char *subject,
		      uint64_t count, uint64_t limit, uint64_t window_s);

/* A datagram socket pair, both ends non-blocking and close-on-exec:
 * fds[0] the parent reads, fds[1] the children send on. 0 or -1. */
int alert_channel_new(int fds[2]);
/* Reads one alert from the parent's end: 1 read (and checked), 0 none
 * waiting, -1 a bad one (dropped) or an error. */
int alert_receive(int fd, struct alert *a_r);

#endif
