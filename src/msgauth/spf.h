/*
 * SPF (RFC 7208): is this client allowed to send mail for the domain of
 * the envelope sender? Evaluated asynchronously over net/dns in the
 * event loop; the record parser and the macro expander are pure
 * (mail/spf_record).
 *
 * The identity checked is the MAIL FROM domain; with the null sender
 * (mail_from "") it is "postmaster@" the HELO name (RFC 7208 2.4), and
 * outcome.identity says "helo". Limits (RFC 7208 4.6.4): 10 terms that
 * query DNS, 2 void lookups, 10 MX/PTR names each; expansion is bounded.
 */
#ifndef GODWIT_SPF_H
#define GODWIT_SPF_H

#include <stdbool.h>

struct dns_resolver;

enum spf_result {
	SPF_NONE,
	SPF_NEUTRAL,
	SPF_PASS,
	SPF_FAIL,
	SPF_SOFTFAIL,
	SPF_TEMPERROR,
	SPF_PERMERROR,
};

/* "none", "neutral", "pass", "fail", "softfail", "temperror",
 * "permerror" (RFC 8601 spelling) */
const char *spf_result_name(enum spf_result r);

struct spf_request {
	const char *ip;		/* client address, text, v4 or v6 */
	const char *helo;	/* HELO/EHLO argument as given ("" if none) */
	const char *mail_from;	/* reverse-path without <>, "" = null */
	const char *receiver;	/* our host name, for %{r} */
	unsigned timeout_ms;	/* whole check; then temperror (0: 20 s) */
};

struct spf_outcome {
	enum spf_result result;
	const char *identity;	/* "mailfrom" or "helo" (static) */
	char sender[520];	/* the sender checked: "local@domain" */
	char domain[256];	/* the domain checked */
	char mechanism[128];	/* the term that matched ("ip4:192.0.2.0/24",
				 * "default" when none did), "" on errors */
	char explanation[512];	/* fail: the exp= text, expanded, or "" */
	char reason[256];	/* errors: why, readable */
};

struct spf_check;
typedef void spf_done_cb(const struct spf_outcome *o, void *arg);

/*
 * Starts a check; cb runs exactly once, later, from the event loop
 * (never from inside spf_check_start), unless cancelled first. The
 * request's strings are copied. The outcome is valid during cb only.
 */
struct spf_check *spf_check_start(struct dns_resolver *r,
				  const struct spf_request *req,
				  spf_done_cb *cb, void *arg);
/* Stops a check: cb is never called. NULL is a no-op. */
void spf_check_cancel(struct spf_check *c);

#endif
