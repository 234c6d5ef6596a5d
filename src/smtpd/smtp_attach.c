/*
 * The attachment rules in the SMTP session (smtp_filter.h). Placeholder
 * step until the attachments helper lands.
 */
#include "smtpd/smtp_filter.h"
#include "smtpd/smtp_private.h"

bool
sf_attach_end(struct smtp_session *s, struct sf_verdict *v)
{
	(void)s;
	(void)v;
	return true;
}

void
sf_attach_txn_free(struct smtp_txn *t)
{
	(void)t;
}
