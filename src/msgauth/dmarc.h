/*
 * DMARC (RFC 7489): the From domain's policy, found in DNS at
 * _dmarc.<From domain> or, failing that, at _dmarc.<organizational
 * domain> (the Public Suffix List through libpsl); then alignment of
 * the SPF and DKIM results with the From domain, and the disposition.
 * The record parser is pure (mail/dmarc_record).
 */
#ifndef GODWIT_DMARC_H
#define GODWIT_DMARC_H

#include <stdbool.h>
#include <stddef.h>

#include "mail/dmarc_record.h"
#include "msgauth/dkim.h"
#include "msgauth/spf.h"

struct dns_resolver;

enum dmarc_result {
	DMARC_NONE,	/* no policy published */
	DMARC_PASS,
	DMARC_FAIL,
	DMARC_TEMPERROR,
	DMARC_PERMERROR,
};
/* "none", "pass", "fail", "temperror", "permerror" */
const char *dmarc_result_name(enum dmarc_result r);

/*
 * The organizational domain of a domain (libpsl, the registrable
 * domain), lower case, in out; the domain itself if libpsl has none.
 * 0, or -1 if it does not fit.
 */
int dmarc_org_domain(const char *domain, char *out, size_t size);

struct dmarc_found {
	enum dmarc_result status;	/* NONE, TEMPERROR, PERMERROR, or
					 * PASS meaning "a record was found" */
	struct dmarc_record rec;	/* when found */
	char from_domain[256];
	char policy_domain[256];	/* where the record was found */
	char org_domain[256];
	bool at_org;			/* found at the organizational domain:
					 * sp= applies */
	char reason[160];
};

struct dmarc_lookup;
typedef void dmarc_found_cb(const struct dmarc_found *f, void *arg);
/* cb once, later, from the loop, unless cancelled. */
struct dmarc_lookup *dmarc_lookup_start(struct dns_resolver *r,
					const char *from_domain,
					unsigned timeout_ms,
					dmarc_found_cb *cb, void *arg);
void dmarc_lookup_cancel(struct dmarc_lookup *l);

struct dmarc_verdict {
	enum dmarc_result result;
	enum dmarc_policy policy;	/* p= or sp= as published */
	enum dmarc_policy disposition;	/* after pct= sampling */
	bool spf_aligned;
	bool dkim_aligned;
	char from_domain[256];
	char policy_domain[256];
	char reason[160];
};

/*
 * The verdict for a message. sample is a uniform value in [0, 100) for
 * pct= (a failing message with pct=P is subject to the policy when
 * sample < P, else to the next lower one). spf_domain is the domain SPF
 * checked (MAIL FROM or HELO domain).
 */
void dmarc_evaluate(const struct dmarc_found *f, enum spf_result spf,
		    const char *spf_domain, const struct dkim_sig_result *sigs,
		    size_t nsigs, unsigned sample, struct dmarc_verdict *v);

#endif
