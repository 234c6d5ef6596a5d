/*
 * One message's authentication checks composed: SPF at MAIL FROM, DKIM
 * verification while the content streams in, DMARC's policy lookup at
 * the end of the header, and at the end of the data the DMARC verdict
 * and the Authentication-Results header field (RFC 8601) that records
 * them. The SMTP server (smtpd/smtp_checks.c) and `godwit check` run
 * exactly this.
 *
 * The From domain for DMARC (RFC 7489 6.6.1): no From field gives DMARC
 * none (no domain to find a policy for); several From fields, or several
 * addresses, are evaluated as one domain when they all have the same one,
 * and give DMARC permerror (nothing enforced) when their domains differ
 * or the field does not parse.
 */
#ifndef GODWIT_MSGAUTH_H
#define GODWIT_MSGAUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "msgauth/dkim.h"
#include "msgauth/dmarc.h"
#include "msgauth/iprev.h"
#include "msgauth/spf.h"

struct dns_resolver;
struct event_base;

/* What is done with mail that fails DMARC under a policy. */
enum msgauth_action {
	MSGAUTH_ACT_NONE,	/* delivered as if it had passed */
	MSGAUTH_ACT_QUARANTINE,	/* delivered into .Junk */
	MSGAUTH_ACT_REJECT,	/* 550 5.7.1 at the end of the data */
};

/* checks:, spf:, dkim: and dmarc: in the configuration */
struct checks_config {
	char *authserv_id;	/* checks.authserv_id; default hostname */
	uint64_t timeout;	/* checks.timeout: seconds, each lookup */
	bool spf;		/* spf.enabled */
	bool dkim_verify;	/* dkim.verify */
	bool dkim_sign;		/* dkim.sign: submitted mail and bounces */
	bool dmarc;		/* dmarc.enabled */
	int reject_action;	/* enum msgauth_action, for p=reject */
	int quarantine_action;	/* enum msgauth_action, for p=quarantine */
	char **allow;		/* dmarc.allow: domains, addresses,
				 * networks exempt from enforcement */
	size_t nallow;
};

/* Whether the client sa, or the From domain (or a domain above it), is
 * in dmarc.allow. from_domain may be NULL. */
bool checks_allowed(const struct checks_config *c, const struct sockaddr *sa,
		    const char *from_domain);

struct msgauth_config {
	const char *authserv_id;	/* ours, in Authentication-Results */
	const char *hostname;		/* SPF's %{r} */
	unsigned timeout_ms;		/* each DNS lookup; twice it bounds the
					 * wait at the end */
	bool spf;
	bool dkim;
	bool dmarc;
};

/* How the From field came out (for DMARC). */
enum msgauth_from {
	MSGAUTH_FROM_NONE,	/* no From field */
	MSGAUTH_FROM_ONE,	/* one domain (from_domain) */
	MSGAUTH_FROM_MIXED,	/* several domains */
	MSGAUTH_FROM_BAD,	/* unparsable, or no address in it */
};

struct msgauth_results {
	bool spf_done;			/* SPF ran (spf set) */
	struct spf_outcome spf;
	const struct dkim_sig_result *sigs;	/* dkim: one per signature */
	size_t nsigs;
	bool dkim_done;			/* the verifier finished in time */
	enum msgauth_from from;
	char from_domain[256];		/* lower case */
	bool dmarc_done;		/* dmarc and a verdict was reached */
	struct dmarc_verdict dmarc;
	enum dmarc_policy sp;		/* sp= as published (for the A-R) */
	struct dmarc_found found;	/* the policy lookup's answer */
};

struct msgauth;

/* The client: ip text, the EHLO/HELO argument ("" if none). The strings
 * are copied. cf and r outlive the msgauth. */
struct msgauth *msgauth_new(struct event_base *base, struct dns_resolver *r,
			    const struct msgauth_config *cf, const char *ip,
			    const char *helo);
/* MAIL FROM (reverse-path without <>, "" for the null sender): SPF
 * starts. */
void msgauth_mail(struct msgauth *m, const char *mail_from);
/* The message in its stored form (LF line ends), in any chunking. */
void msgauth_feed(struct msgauth *m, const char *p, size_t n);
/*
 * The end of the data: cb runs once every result is in (or twice the
 * timeout passed: what is missing counts as temperror), always later,
 * from the loop.
 */
typedef void msgauth_done_cb(struct msgauth *m, void *arg);
void msgauth_finish(struct msgauth *m, msgauth_done_cb *cb, void *arg);
/* After cb. */
const struct msgauth_results *msgauth_results(const struct msgauth *m);
const char *msgauth_authserv_id(const struct msgauth *m);
/* DKIM verification ran for this message (its config). */
bool msgauth_dkim_on(const struct msgauth *m);

/*
 * The Authentication-Results field, folded, with its final LF (caller
 * frees): the authserv-id, then iprev (when iprev is not NULL), spf,
 * one dkim per signature (dkim=none without), dmarc, each of the checks
 * that ran. Every value taken from the client or DNS is quoted or
 * replaced so that it cannot end the field or start another.
 */
char *msgauth_ar_header(const struct msgauth *m,
			const struct iprev_outcome *iprev, const char *ip);
/* The same from results alone (`godwit check`, tests). */
char *msgauth_ar_format(const struct msgauth_results *r,
			const char *authserv_id, bool dkim_on,
			const struct iprev_outcome *iprev, const char *ip);

/*
 * One line for the DMARC aggregate reports (dmarc_record_append()), for
 * a message whose From domain publishes a DMARC record. 0 (also when
 * there is nothing to record), or -1 with *error_r (caller frees).
 */
int msgauth_record(const struct msgauth *m, const char *data_dir,
		   char **error_r);

/* The log line of the verdicts (fac=msgauth event=result); action is
 * what was done ("accept", "quarantine", "reject", "defer"). */
void msgauth_log(const struct msgauth *m, const char *session,
		 const char *queue_id, const char *ip,
		 const struct iprev_outcome *iprev, const char *action);

/* Cancels what is pending (cb is then never called). */
void msgauth_free(struct msgauth **m);

/* ---- signing (submitted mail, bounces) -------------------------------- */

/*
 * Submitted mail is signed as it is written: the final header fields
 * (with what the submission server added) and the body are fed in their
 * stored form; at the end the keys of the From domain (or of the
 * nearest domain above it with keys) sign. A message whose From field
 * has no single domain with keys is not signed.
 */
struct msgauth_signing;
struct msgauth_signing *msgauth_signing_new(time_t now);
void msgauth_signing_feed(struct msgauth_signing *g, const char *p,
			  size_t n);
/* The DKIM-Signature fields to put at the top (caller frees), or NULL:
 * no keys (*error_r NULL), or signing failed (*error_r, caller frees).
 * domain (256 octets) gets the From domain, "" if none. */
char *msgauth_signing_finish(struct msgauth_signing *g,
			     const struct dkim_keyring *kr, char *domain,
			     char **error_r);
void msgauth_signing_free(struct msgauth_signing **g);

/* A whole message at once (bounces), as msgauth_signing_finish(). */
char *msgauth_sign_message(const char *msg, size_t len,
			   const struct dkim_keyring *kr, char **error_r);

#endif
