/*
 * clamd's INSTREAM over its UNIX or TCP socket, asynchronous on the
 * event loop: a scan connects, sends "zINSTREAM\0", the message in
 * chunks (a 4-octet big-endian length, the octets) read from its source
 * as the socket takes them (never the whole message in memory), a
 * zero-length chunk, and reads the one reply (mail/clamd_reply.h). One
 * timer bounds the whole scan. Knows nothing of SMTP: smtpd/smtp_clamd.c
 * runs it at the end of the data.
 */
#ifndef GODWIT_CLAMD_H
#define GODWIT_CLAMD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "filter/filter_socket.h"
#include "mail/clamd_reply.h"

struct event_base;

enum clamd_on_error {
	CLAMD_ON_ERROR_TEMPFAIL,	/* 451 4.7.1 */
	CLAMD_ON_ERROR_ACCEPT,		/* accepted, with a header saying so */
};

/* filter.clamd */
struct clamd_config {
	bool enabled;
	char *socket;		/* "unix:/path" or "inet:host:port" */
	struct filter_addr addr;	/* socket, parsed when loaded */
	uint64_t timeout;	/* seconds, for the whole scan */
	int on_error;		/* enum clamd_on_error */
	uint64_t max_size;	/* octets; larger messages are not scanned */
};

enum clamd_status {
	CLAMD_CLEAN,	/* clamd found nothing */
	CLAMD_VIRUS,	/* name */
	CLAMD_FAILED,	/* clamd down, too slow, its ERROR or a garbled
			 * reply: error */
	CLAMD_LOCAL,	/* the message could not be read back: error */
};

struct clamd_result {
	enum clamd_status status;
	char name[CLAMD_NAME_MAX + 1];	/* CLAMD_VIRUS: cleaned */
	char error[CLAMD_TEXT_MAX + 64];	/* printable */
	uint64_t sent;		/* octets of the message sent */
	uint64_t ms;		/* the scan's duration */
};

/* The message: up to n octets from off into buf; the count, 0 at the
 * end, or -1 with errno. */
typedef ssize_t clamd_read_fn(void *arg, uint64_t off, void *buf, size_t n);
/* The scan is over (and already freed). */
typedef void clamd_done_fn(const struct clamd_result *r, void *arg);

struct clamd_scan;

/*
 * Starts a scan of the message read() gives, with clamd at c->addr,
 * within c->timeout. done(result, arg) follows once, always from the
 * loop (never before this returns), unless the scan is cancelled first.
 */
struct clamd_scan *clamd_scan_start(struct event_base *base,
				    const struct clamd_config *c,
				    clamd_read_fn *read, void *read_arg,
				    clamd_done_fn *done, void *arg);
/* Ends a scan before its done: nothing follows. NULL is fine. */
void clamd_scan_cancel(struct clamd_scan **scan);

const char *clamd_status_name(enum clamd_status st);

#endif
