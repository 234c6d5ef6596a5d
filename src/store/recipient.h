/*
 * Recipient resolution and the relay rule. Given a RCPT address and
 * who the client is, decides: deliver locally (to these mailboxes), queue
 * for remote delivery, or refuse — with the reply to give. This is the one
 * place that decides whether godwit relays; nothing else may.
 *
 * A recipient is accepted only if
 *  - its domain is local (userdb) and, after sub-address stripping
 *    ("user+tag@"), the user exists or an alias (or the domain's catch-all)
 *    matches; aliases expand recursively (bounded depth) to local mailboxes
 *    and/or remote addresses; or it is postmaster at a local domain
 *    (always accepted, RFC 5321 4.5.1: to the user or alias of that name,
 *    else the catch-all, else the mailbox "postmaster@domain");
 *  - or it is postmaster of this host: the bare "<postmaster>", or
 *    postmaster@ ctx->hostname when that is not a local domain (any case
 *    of "postmaster"): see recipient_postmaster();
 *  - or the client is trusted (trusted_networks) or authenticated, in which
 *    case a non-local domain is queued for remote delivery.
 * Anything else: 554 5.7.1 relay access denied. Unknown local users: 550
 * 5.1.1 at RCPT time (no backscatter). Database trouble: 451 4.3.0.
 */
#ifndef GODWIT_RECIPIENT_H
#define GODWIT_RECIPIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "mail/smtp_parse.h"

struct userdb;

struct recipient_ctx {
	struct userdb *db;
	const char *hostname;	/* postmaster@hostname, "<postmaster>" */
	const char *postmaster;	/* config postmaster; NULL: the default */
	char delimiter;		/* '+' or '\0' */
	bool trusted;		/* client in trusted_networks */
	bool authenticated;	/* SMTP AUTH succeeded */
};

enum recipient_verdict {
	RCPT_ACCEPT,		/* see mailboxes / remotes */
	RCPT_REJECT,		/* permanent: reply code/enh/text */
	RCPT_TEMPFAIL,		/* 451 4.3.0 */
};

struct recipient_result {
	enum recipient_verdict verdict;
	int code;
	const char *enh;
	const char *text;	/* static */
	/* on accept: final local mailboxes ("user@domain", normalised) and
	 * remote addresses to queue; both de-duplicated. */
	char **mailboxes;
	size_t nmailboxes;
	char **remotes;
	size_t nremotes;
	/* accepted only as the mailbox "postmaster@domain", which is no
	 * user's and no alias's: nobody reads it */
	bool unowned;
};

/* Always returns 0: the outcome, reply included, is in *r (free it with
 * recipient_result_clear() whatever the verdict). */
int recipient_resolve(const struct recipient_ctx *ctx,
		      const struct smtp_mailbox *rcpt,
		      struct recipient_result *r);
void recipient_result_clear(struct recipient_result *r);

/*
 * Where mail for the postmaster of this host goes: ctx->postmaster
 * (config `postmaster`, local or remote) when it resolves to someone,
 * else postmaster@ the first local domain in `godwit domain list` order
 * (its user, alias or catch-all; r->unowned when none exists), and with
 * no domain at all 451 4.3.0. Never the hostname's own Maildir, never a
 * relay refusal. Always 0; the outcome is in *r as recipient_resolve's.
 */
int recipient_postmaster(const struct recipient_ctx *ctx,
			 struct recipient_result *r);

/* True if domain is one of ours (userdb); -1 on error. */
int recipient_domain_is_local(const struct recipient_ctx *ctx,
			      const char *domain);

#endif
