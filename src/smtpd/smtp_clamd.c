/*
 * clamd in the SMTP session (smtp_filter.h). Placeholder step until the
 * clamd helper lands.
 */
#include "smtpd/smtp_filter.h"
#include "smtpd/smtp_private.h"

bool
sf_clamd_end(struct smtp_session *s, struct sf_verdict *v)
{
	(void)s;
	(void)v;
	return true;
}

void
sf_clamd_txn_free(struct smtp_txn *t)
{
	(void)t;
}
