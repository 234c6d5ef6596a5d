/*
 * Delivery status notifications (RFC 3464, RFC 3461, RFC 6522): the
 * bounce, delay warning and success report the queue runner sends to an
 * envelope sender. Pure: builds the message in memory; the runner queues
 * it with the null sender (so a bounce is never bounced).
 *
 * The message (LF line ends, as the queue stores messages):
 *	From: Mail Delivery System <MAILER-DAEMON@hostname>
 *	To: <sender>
 *	Subject: Undelivered Mail Returned to Sender
 *	         | Delayed Mail (still being retried)
 *	         | Successful Mail Delivery Report	(delivered, relayed)
 *	Date: (now), Message-ID: <queueid.dsn-ACTION.now@hostname> (ACTION
 *	of the first recipient: a bounce and a delay warning differ),
 *	Auto-Submitted: auto-replied (RFC 3834), MIME-Version: 1.0,
 *	Content-Type: multipart/report; report-type=delivery-status;
 *	  boundary="...", and Content-Transfer-Encoding: 8bit when any part
 *	  holds 8-bit octets (then the report needs 8BITMIME to be relayed,
 *	  and SMTPUTF8 if the sender is not ASCII)
 *   part 1  text/plain; charset=us-ascii (or utf-8 when an address,
 *	     ORCPT or diagnostic has 8-bit octets): a readable explanation,
 *	     Postfix-like, one paragraph per action present (failed,
 *	     delayed — with the latest Will-Retry-Until —, delivered,
 *	     relayed), each naming its recipients and the remote server's
 *	     reply ("<bob@b.test>: host mx.b.test said: 550 ..."), wrapped
 *	     at 78 columns;
 *   part 2  message/delivery-status (RFC 3464 section 2.2/2.3), fields
 *	     in the RFC's order: Original-Envelope-Id (if ENVID) /
 *	     Reporting-MTA: dns; hostname / Arrival-Date (if arrival > 0),
 *	     then per recipient a blank line and Original-Recipient (if
 *	     ORCPT; "rfc822; " put in front if it has no type) /
 *	     Final-Recipient: rfc822; addr / Action / Status (a status that
 *	     is not an RFC 3463 code becomes 5.0.0, 4.0.0 or 2.0.0 by the
 *	     action) / Remote-MTA: dns; host (if any) / Diagnostic-Code:
 *	     "smtp; reply" when it starts with a reply code ("550 ",
 *	     "421-", "250"), else "X-godwit; text" (if any) /
 *	     Last-Attempt-Date (if any) / Will-Retry-Until (delayed, if
 *	     set); when an address or ORCPT has 8-bit octets:
 *	     message/global-delivery-status (RFC 6533) and "utf-8;" types
 *	     for such addresses;
 *   part 3  only if msglen > 0: text/rfc822-headers (the header section,
 *	     dsn_header_len), or message/rfc822 (the whole message) when
 *	     RET=FULL (any case), some recipient failed (RFC 3461 4.3: the
 *	     content goes with failures only), msgsize <= DSN_FULL_MAX and
 *	     msglen == msgsize; if RET=FULL was asked but not possible,
 *	     part 1 says the message was too large to return whole.
 *	     message/global(-headers) (RFC 6532) when the original needed
 *	     SMTPUTF8. CRLF becomes LF; a bare CR is kept.
 * Untrusted values (addresses, ORCPT, ENVID, diagnostics, remote host)
 * are made one line: control characters (CR, LF among them) become
 * spaces, runs of spaces one; 8-bit octets stay only as valid UTF-8 and
 * only in utf-8 / global parts, else become '?'. Addresses are cut at
 * 512 octets, ENVID at 256, a diagnostic at 900; fields are folded at
 * spaces to 78 columns where possible, so every line of the top header,
 * part 1 and part 2 stays under 998 octets and no value can start a
 * field of its own. hostname and queue_id are reduced to [A-Za-z0-9._-].
 * The boundary is "queueid.now/hostname" (at most 70 octets); if it
 * occurs in any part, a random one replaces it. An out-of-range action
 * counts as failed. nrcpts may be 0 (a failure report without
 * recipient groups).
 */
#ifndef GODWIT_DSN_H
#define GODWIT_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DSN_FULL_MAX (1024 * 1024)	/* RET=FULL beyond: headers only */

enum dsn_action {
	DSN_FAILED,
	DSN_DELAYED,
	DSN_DELIVERED,
	DSN_RELAYED,		/* to a peer without DSN (RFC 3461 5.2.2) */
};

struct dsn_rcpt {
	const char *addr;	/* final recipient */
	const char *orcpt;	/* "rfc822;a@b" as given (decoded), or "" */
	enum dsn_action action;
	const char *status;	/* "5.1.1"; required */
	const char *remote_mta;	/* MX host name, or NULL */
	const char *diagnostic;	/* the reply: "550 5.1.1 user unknown", or
				 * NULL */
	int64_t last_attempt;	/* unix time, 0 = none */
	int64_t retry_until;	/* DSN_DELAYED: the lifetime's end */
};

struct dsn_report {
	const char *hostname;	/* reporting MTA */
	const char *queue_id;	/* of the original message */
	const char *sender;	/* original envelope sender: the report's
				 * recipient (never "") */
	const char *envid;	/* "" = none */
	const char *ret;	/* "", "FULL", "HDRS" */
	bool smtputf8;		/* the original needed SMTPUTF8 */
	int64_t arrival;	/* unix time */
	int64_t now;		/* Date: */
	const struct dsn_rcpt *rcpts;	/* all of one action kind is the
					 * usual case; mixed is allowed: the
					 * subject follows the first */
	size_t nrcpts;
	/* the original as stored (LF line ends): the runner passes its first
	 * min(size, DSN_FULL_MAX) octets and the full size */
	const unsigned char *msg;
	size_t msglen;
	uint64_t msgsize;
};

/* Returns the message (malloc'd, *len_r octets, LF line ends). */
char *dsn_format(const struct dsn_report *r, size_t *len_r);

/*
 * Length of the header section of msg (through the empty line that ends
 * it, or all of msg if there is none), LF or CRLF line ends.
 */
size_t dsn_header_len(const unsigned char *msg, size_t len);

/*
 * Whether the sender wants a report for this action, from the
 * recipient's NOTIFY bits (SMTP_NOTIFY_*; 0 = not given, which means
 * FAILURE and, at the MTA's discretion, DELAY: yes). NEVER wins over any
 * other bit; delivered and relayed (RFC 3461 5.2.2) need SUCCESS. Never
 * for the null sender — the caller checks that.
 */
bool dsn_wanted(unsigned notify, enum dsn_action action);

/*
 * What a sender nobody verified may ask for (godwit must not reflect
 * mail at a forged MAIL FROM). A verified sender is one whose
 * client authenticated or is in trusted_networks; for anyone else:
 *  - no success and no delay report, now or from the next hop: NOTIFY
 *    keeps only FAILURE (unset becomes FAILURE; nothing left: NEVER);
 *  - never the full content: RET=FULL becomes RET=HDRS, so even a
 *    failure bounce carries the header section only.
 * Failure bounces themselves stay: RFC 5321 6.1 requires them. When SPF
 * exists, an spf=pass sender counts as verified here (that is the one
 * place to add it). Returns the NOTIFY bits to keep.
 */
unsigned dsn_notify_allowed(unsigned notify, bool verified);
bool dsn_ret_full_allowed(bool verified);

#endif
