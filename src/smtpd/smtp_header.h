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

struct lookup_job;
struct smtp_session;
struct smtp_txn;

void smtp_header_done(struct smtp_session *s, bool complete);

/*
 * The From:/Sender: ownership checks smtp_header_done() noted: the job
 * that asks the user database (to submit with smtp_lookup()), or NULL
 * when there is nothing to ask (t->hdr_* is final). Its answer goes to
 * smtp_header_looked_up(), which sets t->hdr_* on a refusal.
 */
struct lookup_job *smtp_header_lookup(struct smtp_session *s);
void smtp_header_looked_up(struct smtp_session *s, struct lookup_job *job);
void smtp_header_checks_free(struct smtp_txn *t);

#endif
