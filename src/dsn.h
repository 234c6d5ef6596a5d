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
 *	         | Successful Mail Delivery Report
 *	Date:, Message-ID: <queueid.dsn@hostname>, Auto-Submitted:
 *	auto-replied (RFC 3834), MIME-Version: 1.0,
 *	Content-Type: multipart/report; report-type=delivery-status;
 *	  boundary="..."
 *   part 1  text/plain; charset=us-ascii (or utf-8 when an address or
 *	     diagnostic has 8-bit octets): a readable explanation naming each
 *	     recipient and the remote server's reply, Postfix-like;
 *   part 2  message/delivery-status (RFC 3464 section 2.2/2.3):
 *	     Reporting-MTA: dns; hostname / Original-Envelope-Id (if ENVID)
 *	     / Arrival-Date, then per recipient a blank line and
 *	     Original-Recipient (if ORCPT) / Final-Recipient: rfc822; addr /
 *	     Action / Status / Remote-MTA: dns; host (if any) /
 *	     Diagnostic-Code: smtp; reply (if any) / Last-Attempt-Date (if
 *	     any) / Will-Retry-Until (delayed only);
 *	     with utf-8 addresses: message/global-delivery-status (RFC 6533)
 *	     and "utf-8;" address types;
 *   part 3  text/rfc822-headers (RET=HDRS, or RET unset for failures and
 *	     delays, as Postfix does, or a message over DSN_FULL_MAX), or
 *	     message/rfc822 (RET=FULL, whole message up to DSN_FULL_MAX);
 *	     message/global(-headers) (RFC 6532) when the original needs
 *	     SMTPUTF8.
 * Header field values are folded to stay under 998 octets; a
 * Diagnostic-Code longer than that is cut. The boundary is made from the
 * queue id and cannot appear in the parts (checked; changed if it does).
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
 * FAILURE and, at the MTA's discretion, DELAY: yes). Never for the null
 * sender — the caller checks that.
 */
bool dsn_wanted(unsigned notify, enum dsn_action action);

#endif
