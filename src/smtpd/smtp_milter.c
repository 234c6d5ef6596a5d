/*
 * Milters in the SMTP session (smtp_filter.h). Placeholder steps until
 * the milter helper lands.
 */
#include "smtpd/smtp_filter.h"
#include "smtpd/smtp_private.h"

bool
sf_milter_connect(struct smtp_session *s, struct sf_verdict *v)
{
	(void)s;
	(void)v;
	return true;
}

bool
sf_milter_helo(struct smtp_session *s, struct sf_verdict *v)
{
	(void)s;
	(void)v;
	return true;
}

bool
sf_milter_mail(struct smtp_session *s, struct sf_verdict *v)
{
	(void)s;
	(void)v;
	return true;
}

bool
sf_milter_rcpt(struct smtp_session *s, struct sf_verdict *v)
{
	(void)s;
	(void)v;
	return true;
}

bool
sf_milter_data(struct smtp_session *s, struct sf_verdict *v)
{
	(void)s;
	(void)v;
	return true;
}

bool
sf_milter_end(struct smtp_session *s, struct sf_verdict *v)
{
	(void)s;
	(void)v;
	return true;
}

void
sf_milter_session_free(struct smtp_session *s)
{
	(void)s;
}

void
sf_milter_txn_free(struct smtp_txn *t)
{
	(void)t;
}
