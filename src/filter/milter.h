/*
 * The milter client, protocol version 6 (as Postfix speaks it).
 * (Owner: the milter helper.)
 */
#ifndef GODWIT_MILTER_H
#define GODWIT_MILTER_H

#include <stdbool.h>
#include <stdint.h>

/* one item of filter.milters */
struct milter_config {
	char *name;
	char *socket;		/* "unix:/path" or "inet:host:port" */
	int on_error;		/* tempfail or accept */
	uint64_t timeout;	/* seconds, each reply */
};

#endif
