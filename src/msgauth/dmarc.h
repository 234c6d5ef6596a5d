/*
 * DMARC (RFC 7489): the From domain's policy, found in DNS at
 * _dmarc.<From domain> or, failing that, at _dmarc.<organizational
 * domain> (the Public Suffix List through libpsl); then alignment of
 * the SPF and DKIM results with the From domain, and the disposition.
 * The record parser is pure (mail/dmarc_record).
 *
 * This follows RFC 7489. DMARCbis (the draft that replaces it) differs:
 * it finds the organizational domain by a DNS tree walk instead of the
 * Public Suffix List, drops pct= (a t= test flag instead), and adds np=
 * (the policy for non-existent subdomains); none of that is done here.
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
 * The Public Suffix List: libpsl's psl_latest(NULL), which in Debian
 * reads /usr/share/publicsuffix/public_suffix_list.dafsa (package
 * publicsuffix; the newer of that file and the copy built into libpsl
 * from the same package). Loaded once per process, at the first
 * dmarc_org_domain() or by this call (meant for the parent before it
 * forks, so the workers share the pages and a missing list is reported
 * at start; the file is world-readable, so a lazy load in a worker
 * after it dropped privileges works too). -1 with *error_r (caller
 * frees) if no list can be loaded; dmarc_org_domain() then returns the
 * domain itself (every domain is its own organizational domain).
 */
int dmarc_psl_init(char **error_r);

/*
 * The organizational domain of a domain (libpsl, the registrable
 * domain), lower case, without a final dot, in out; the domain itself
 * (lower-cased) if libpsl has none (a public suffix itself, a single
 * label) or if it looks like an IP address (last label all digits, or
 * a ':' or '[' in it). 0, or -1 if it does not fit.
 */
int dmarc_org_domain(const char *domain, char *out, size_t size);

/* Do two domains align (RFC 7489 3.1)? strict: equal; relaxed: the same
 * organizational domain. Case-insensitive, a final dot ignored; an empty
 * domain aligns with nothing. */
bool dmarc_aligned(const char *a, const char *b, bool strict);

/*
 * Policy discovery (RFC 7489 6.6.3): the TXT records at
 * _dmarc.<From domain>; those not starting with "v=DMARC1" are ignored;
 * if none is left, the same at _dmarc.<organizational domain> (when it
 * differs). Exactly one DMARC record: PASS with it (an invalid one:
 * PERMERROR, and no fallback to the organizational domain); several:
 * NONE (6.6.3: no DMARC processing); a temporary DNS failure at either
 * step: TEMPERROR; an invalid From domain: PERMERROR.
 */
struct dmarc_found {
	enum dmarc_result status;	/* NONE, TEMPERROR, PERMERROR, or
					 * PASS meaning "a record was found" */
	struct dmarc_record rec;	/* when found */
	char from_domain[256];		/* lower case, no final dot */
	char policy_domain[256];	/* where the record was found (or
					 * the invalid/several records) */
	char org_domain[256];
	bool at_org;			/* found by the fallback to the
					 * organizational domain (the From
					 * domain is below it): sp= applies */
	char reason[160];
};

struct dmarc_lookup;
typedef void dmarc_found_cb(const struct dmarc_found *f, void *arg);
/*
 * cb once, later, from the loop (never from inside dmarc_lookup_start),
 * unless cancelled; the lookup is gone once cb has run (do not cancel
 * it then). timeout_ms bounds each of the (at most two) DNS lookups.
 * from_domain is copied. dmarc_lookup_cancel(NULL) is a no-op.
 */
struct dmarc_lookup *dmarc_lookup_start(struct dns_resolver *r,
					const char *from_domain,
					unsigned timeout_ms,
					dmarc_found_cb *cb, void *arg);
void dmarc_lookup_cancel(struct dmarc_lookup *l);

struct dmarc_verdict {
	enum dmarc_result result;
	enum dmarc_policy policy;	/* p= or sp= as published; UNSET
					 * when no record was found */
	enum dmarc_policy disposition;	/* after pct= sampling: NONE for
					 * pass, none, permerror; for fail
					 * and temperror what a fail gets
					 * (a TEMPERROR with REJECT here is
					 * answered 451, never 550) */
	bool spf_aligned;
	bool dkim_aligned;
	char from_domain[256];
	char policy_domain[256];
	char reason[160];
};

/*
 * The verdict for a message. sample is a uniform value in [0, 100) for
 * pct= (a failing message with pct=P is subject to the policy when
 * sample < P, else to the next lower one: reject -> quarantine ->
 * none). spf_domain is the domain SPF checked (MAIL FROM or HELO
 * domain).
 *
 * SPF is aligned when spf is PASS and spf_domain aligns with the From
 * domain (aspf=); DKIM when any signature whose result is PASS has an
 * aligned d= (adkim=; DKIM_POLICY is not a pass). PASS if either is
 * aligned. Otherwise TEMPERROR if a temporary error could have made it
 * pass: spf is TEMPERROR and spf_domain aligns, or a signature with an
 * aligned d= has DKIM_TEMPERROR; else FAIL. Without a record the result
 * is the lookup's status (NONE, TEMPERROR, PERMERROR).
 */
void dmarc_evaluate(const struct dmarc_found *f, enum spf_result spf,
		    const char *spf_domain, const struct dkim_sig_result *sigs,
		    size_t nsigs, unsigned sample, struct dmarc_verdict *v);

/* A sample for dmarc_evaluate(): uniform in [0, 100) (arc4random). */
unsigned dmarc_sample(void);

/* ---- the aggregate-report record store -------------------------------- */

/* What else a record line holds, besides the verdict and the policy. */
struct dmarc_record_info {
	long long time;			/* when the message came (Unix time) */
	const char *ip;			/* the client's address */
	const char *envelope_from;	/* MAIL FROM domain ("" for <>) */
	enum spf_result spf;
	const char *spf_domain;		/* the domain SPF checked */
	const struct dkim_sig_result *sigs;
	size_t nsigs;
};

/*
 * Appends one line for one message to <data_dir>/dmarc/records.log (the
 * format is in docs/operations.md, "DMARC records"), with a single
 * write() on a descriptor opened O_APPEND, so lines of several workers
 * never interleave. The file is created (0640) if missing; the directory
 * is made by the data directory layout (store/datadir.c). 0, or -1 with
 * *error_r (caller frees).
 */
int dmarc_record_append(const char *data_dir, const struct dmarc_verdict *v,
			const struct dmarc_found *f,
			const struct dmarc_record_info *info, char **error_r);

/* The line dmarc_record_append() writes, with its newline, in buf: its
 * length, or 0 if buf is too small for even the first fields. */
size_t dmarc_record_format(const struct dmarc_verdict *v,
			   const struct dmarc_found *f,
			   const struct dmarc_record_info *info, char *buf,
			   size_t size);

#endif
