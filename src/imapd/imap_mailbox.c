/*
 * The IMAP mailbox commands (imap_private.h): MAILBOX's file. This is
 * the placeholder the core links with until MAILBOX's imap_mailbox.c
 * replaces it: an empty command table, and the two helpers the core
 * calls (owned by MAILBOX) in their simplest form.
 */
#include "imapd/imap_private.h"

const struct imap_cmd_def imap_mailbox_cmds[] = {
	{NULL, NULL, 0, false},
};

/* MAILBOX owns it: nothing is selected yet, so nothing to report. */
void
imap_sync_report(struct imap_session *s, bool expunges)
{
	(void)s;
	(void)expunges;
}

/* MAILBOX owns it. */
void
imap_write_flags(struct imap_session *s, struct evbuffer *out,
		 const struct imap_msg *m)
{
	(void)s;
	(void)out;
	(void)m;
}
