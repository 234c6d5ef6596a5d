/*
 * What the SMTP server reads of the configuration: the smtp: and
 * submission: sections, and the settings a session is given.
 */
#ifndef GODWIT_SMTP_SETTINGS_H
#define GODWIT_SMTP_SETTINGS_H

#include <stdbool.h>
#include <stdint.h>

#include "filter/filter.h"
#include "lib/cidr.h"
#include "msgauth/msgauth.h"
#include "net/auth.h"
#include "net/client_limits.h"
#include "net/tls.h"

/* smtp: in the configuration */
struct smtpd_config {
	uint64_t max_message_size;	/* bytes; SIZE and DATA enforce it */
	unsigned max_recipients;	/* per message; 452 4.5.3 past it */
	unsigned max_errors;		/* per session; then 421 + close */
	unsigned max_command_line;	/* octets incl. CRLF (RFC: 512) */
	unsigned max_text_line;		/* octets incl. CRLF (RFC: 1000) */
	bool vrfy;			/* false: VRFY answers 252 */
	char recipient_delimiter;	/* '+'; '\0' = no sub-addressing */
	struct cidr_list trusted_networks; /* may relay; empty by default */
	uint64_t timeout_command;	/* seconds for a whole command line,
					 * RFC 5321 4.5.3.2 */
	uint64_t timeout_data_block;	/* seconds without a byte in DATA/
					 * BDAT; also the allowance below */
	uint64_t timeout_data_end;
	uint64_t min_data_rate;		/* octets/s DATA/BDAT must keep up
					 * after timeout_data_block; 0 = off */
};

/* submission: in the configuration */
struct submission_config {
	bool check_from;	/* header From: must be the user's */
	/* with check_from: no display name showing another address */
	bool refuse_address_display_name;
	/* a copy of an authenticated user's message in their Sent folder */
	bool save_sent;
	struct limits_send_policy limits;	/* submission.limits */
	/* submission.limits.accounts: the accounts with limits of their
	 * own (lower-cased; keys not given are the general ones) */
	struct submission_account_limits *account_limits;
	size_t naccount_limits;
};

struct submission_account_limits {
	char *account;
	struct limits_send_policy limits;
};

/* The limits of account: its own, or the general ones. */
const struct limits_send_policy *
submission_limits_for(const struct submission_config *sc,
		      const char *account);

/*
 * What an SMTP session reads of the configuration: the top-level names
 * and copies of the sections it uses. Filled in by the worker from its
 * configuration, which outlives it (the strings and lists are borrowed).
 */
struct smtpd_settings {
	const char *hostname;		/* greeting, Received, Message-ID */
	const char *postmaster;		/* NULL = postmaster@hostname */
	const char *data_dir;
	struct smtpd_config smtp;
	struct submission_config submission;
	struct auth_config auth;
	struct limits_config limits;
	struct tls_config tls;
	struct checks_config checks;
	const struct filter_config *filter;	/* filter: (borrowed) */
	/* filled by the worker: */
	struct msgauth_config msgauth;	/* what each message's checks get */
	const struct dkim_keyring *keyring;	/* signing keys, or NULL */
	struct dns_resolver *resolver;	/* the worker's */
	struct greylist *greylist;	/* the worker's handle, or NULL */
	struct attachq *attachq;	/* the attachment walk's thread, or
					 * NULL (filter.attachments off) */
};

#endif
