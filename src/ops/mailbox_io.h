/*
 * `godwit mailbox import|export`: moving a user's mail in and out.
 *
 * Import writes each message into the user's Maildir (store/deliver.h's
 * maildir_store(): the committer's own write, tmp/ + fdatasync + rename,
 * then one fsync of new/ and cur/ at the end) as the daemon user (root
 * switches its effective ids for the writes only, so the input may be a
 * file only root can read). From an mbox (mboxrd, mail/mbox.h) each
 * message lands in new/ with the From_ line's date as its mtime; from a
 * Maildir (DIR/new and DIR/cur) each keeps its flags (":2,<flags>" into
 * cur/) and its mtime. Messages are taken as they are: no header is
 * added, so an export gives them back octet for octet.
 *
 * Export writes the inbox (new/ and cur/, in the order of their names,
 * which is arrival order for godwit's) as mboxrd to FILE.tmp, fsyncs and
 * renames it to FILE (mode 0600): each message after a From_ line with
 * the sender of its Return-Path field (MAILER-DAEMON when it has none or
 * <>) and its file's mtime (the delivery time) as the date.
 */
#ifndef GODWIT_MAILBOX_IO_H
#define GODWIT_MAILBOX_IO_H

#include <stddef.h>
#include <stdint.h>

struct config;

#define MAILBOX_IO_MSG_MAX ((size_t)512 << 20)	/* octets, one message */

struct mailbox_io_stats {
	size_t messages;
	uint64_t bytes;
	char *maildir;		/* the user's Maildir (caller frees) */
};

/* address: normalised "local@domain" of an existing user. 0 or -1 with
 * *error_r (caller frees); messages stored before an error stay. */
int mailbox_import_mbox(const struct config *config, const char *address,
			const char *file, struct mailbox_io_stats *st,
			char **error_r);
int mailbox_import_maildir(const struct config *config, const char *address,
			   const char *dir, struct mailbox_io_stats *st,
			   char **error_r);
int mailbox_export_mbox(const struct config *config, const char *address,
			const char *file, struct mailbox_io_stats *st,
			char **error_r);

#endif
