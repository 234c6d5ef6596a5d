/*
 * The milter client, protocol version 6 (as Postfix speaks it): one
 * connection to one milter, asynchronous on the worker's libevent loop.
 * The packets are mail/milter_proto.h's; what to send at each SMTP stage
 * and what the replies do to the message is smtpd/smtp_milter.c's.
 *
 * A request is some packets and, unless the milter said it sends no reply
 * there, the wait for its final reply (accept, continue, discard, reject,
 * tempfail, replycode, skip); the modification replies that come first
 * (at the end of the message) are handed over one by one. Every wait is
 * bounded by the milter's timeout; a timeout, a closed connection or a
 * reply that does not parse ends the connection with an error.
 */
#ifndef GODWIT_MILTER_H
#define GODWIT_MILTER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "filter/filter_socket.h"
#include "mail/milter_proto.h"

struct event_base;

enum milter_on_error {
	MILTER_ON_ERROR_TEMPFAIL,	/* 451 4.7.1 */
	MILTER_ON_ERROR_ACCEPT,		/* the milter is skipped */
};

/* one item of filter.milters */
struct milter_config {
	char *name;
	char *socket;		/* "unix:/path", "inet:host:port",
				 * "inet6:host:port" */
	struct filter_addr addr;	/* socket, parsed when loaded */
	int on_error;		/* enum milter_on_error */
	uint64_t timeout;	/* seconds, connect and each reply */
	/* "Name: value": a message to which this milter adds this header
	 * field goes to the recipients' .Junk folders; NULL: none */
	char *junk_header;
	int line;		/* in the configuration file */
};


struct milter_conn;

/*
 * A reply: r is a modification (final false) or the final reply (final
 * true); r NULL with error set: the connection failed (it is closed; only
 * milter_conn_free remains). Never called from inside the function that
 * sent the request. The reply's strings live until the callback returns.
 */
typedef void milter_reply_fn(void *arg, const struct milter_reply *r,
			     bool final, const char *error);

/* Starts connecting to cf->addr (the result comes with the first
 * request's reply). */
struct milter_conn *milter_conn_new(struct event_base *base,
				    const struct milter_config *cf,
				    milter_reply_fn *cb, void *arg);

/*
 * Sends the packets of b (b is emptied). With want_reply, cb follows
 * with the replies; without, the request is over once written (errors
 * show at the next request). 0, or -1 if the connection has failed.
 */
int milter_conn_send(struct milter_conn *c, struct milter_buf *b,
		     bool want_reply);

/* Why the connection failed, or NULL. */
const char *milter_conn_error(const struct milter_conn *c);

/* True while a request waits for its final reply. */
bool milter_conn_busy(const struct milter_conn *c);

/* Closes (after a QUIT if the connection is idle and alive). */
void milter_conn_free(struct milter_conn **c);

#endif
