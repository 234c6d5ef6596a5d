/*
 * `godwit doctor`: the checks an administrator makes by hand on a mail
 * server (telnet to every port on IPv4 and IPv6, the certificate, an
 * open relay test, the published DNS records, blocklists, outbound port
 * 25, the queue) in one pass, each reported as a line OK, WARN or FAIL
 * with what to do. Read-only: it connects to the running server and asks
 * DNS, never changes anything; every network step is bounded by
 * doctor_options.timeout_ms.
 */
#ifndef GODWIT_DOCTOR_H
#define GODWIT_DOCTOR_H

#include "ops/doctor_types.h"

struct config;

/* "OK", "WARN", "FAIL" */
const char *doctor_status_name(enum doctor_status st);

/*
 * Runs every check against c and the server it describes, reporting
 * through fn. Returns the number of FAILs.
 */
unsigned doctor_run(const struct config *c, const struct doctor_options *o,
		    doctor_line_fn *fn, void *arg);

#endif
