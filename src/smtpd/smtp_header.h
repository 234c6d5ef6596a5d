/*
 * The held header section of authenticated mail (smtp_txn.hold) is
 * complete, or too large to hold (complete false): adds what RFC 6409
 * section 8 lets a submission server add, checks From:/Sender: (a refusal
 * goes to t->hdr_*, answered at the end of the message), and writes it
 * all to the spool (t->io_error on failure).
 */
#ifndef GODWIT_SMTP_HEADER_H
#define GODWIT_SMTP_HEADER_H

#include <stdbool.h>

struct smtp_session;

void smtp_header_done(struct smtp_session *s, bool complete);

#endif
