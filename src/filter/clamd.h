/*
 * clamd's INSTREAM over its UNIX or TCP socket, asynchronous on the
 * event loop. (Owner: the clamd helper.)
 */
#ifndef GODWIT_CLAMD_H
#define GODWIT_CLAMD_H

#include <stdbool.h>
#include <stdint.h>

/* filter.clamd */
struct clamd_config {
	bool enabled;
	char *socket;		/* "unix:/path" or "inet:host:port" */
	uint64_t timeout;	/* seconds */
	int on_error;		/* tempfail (451 4.7.1) or accept */
};

#endif
