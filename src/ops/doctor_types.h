/*
 * The types of `godwit doctor` (ops/doctor.h) that its files share
 * (ops/doctor_private.h): a finding's status, the options, the
 * reporting function.
 */
#ifndef GODWIT_DOCTOR_TYPES_H
#define GODWIT_DOCTOR_TYPES_H

enum doctor_status {
	DOCTOR_OK,
	DOCTOR_WARN,
	DOCTOR_FAIL,
};

struct doctor_options {
	unsigned timeout_ms;	/* each connect, read, lookup; 0: 5000 */
	/* "HOST:PORT" or "[IPv6]:PORT" to try for outbound port 25; NULL:
	 * the MX of outbound_domain */
	const char *outbound_target;
	const char *outbound_domain;	/* NULL: "gmail.com" */
	/* the outside domain of the relay probes; NULL: "example.com" */
	const char *probe_domain;
	unsigned cert_days;		/* warn this close to expiry; 0: 14 */
};

/* Called for every finding: check is a short name ("listener",
 * "tls", "relay", "dns", "blocklist", "outbound", "queue"), text says
 * what was found and, for WARN and FAIL, what to do. */
typedef void doctor_line_fn(enum doctor_status st, const char *check,
			    const char *text, void *arg);

#endif
