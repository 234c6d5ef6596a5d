/*
 * DNS block/allow lists and greylisting in the SMTP session
 * (smtp_filter.h). Placeholder steps until the DNSBL helper lands.
 */
#include "smtpd/smtp_filter.h"
#include "smtpd/smtp_private.h"

void
sf_dnsbl_connect(struct smtp_session *s)
{
	(void)s;
}

bool
sf_dnsbl_rcpt(struct smtp_session *s, struct sf_verdict *v)
{
	(void)s;
	(void)v;
	return true;
}

bool
sf_greylist_rcpt(struct smtp_session *s, struct sf_verdict *v)
{
	(void)s;
	(void)v;
	return true;
}

bool
sf_greylist_end(struct smtp_session *s, struct sf_verdict *v)
{
	(void)s;
	(void)v;
	return true;
}

void
sf_dnsbl_session_free(struct smtp_session *s)
{
	(void)s;
}

void
sf_greylist_txn_free(struct smtp_txn *t)
{
	(void)t;
}
