/*
 * Mail authentication in the SMTP session: on port 25, iprev at connect,
 * SPF at MAIL FROM, the content fed to the DKIM verifier and forged
 * Authentication-Results fields removed as it streams, and at the end
 * of the data the wait for the verdict, DMARC enforcement (550 5.7.1,
 * .Junk, 451 4.7.5) and the header prefix (Authentication-Results and
 * the Received field, written last so it can name the client's
 * confirmed host name). Authenticated senders' mail is DKIM-signed
 * instead. Not for trusted_networks or authenticated clients.
 */
#ifndef GODWIT_SMTP_CHECKS_H
#define GODWIT_SMTP_CHECKS_H

#include <stdbool.h>
#include <stddef.h>

struct delivery_job;
struct smtp_session;
struct smtp_txn;

/* The session started: iprev on port 25. */
void checks_connect(struct smtp_session *s);
/* The session ends: what is pending is cancelled. */
void checks_session_free(struct smtp_session *s);
/* MAIL FROM accepted (s->txn is new): SPF starts. */
void checks_mail(struct smtp_session *s);
/* DATA or the first BDAT: the filter and the signer, as they apply. */
void checks_content_start(struct smtp_session *s);
/* Whether the Received field waits for the prefix (checks run). */
bool checks_received_late(const struct smtp_session *s);
/* The Received field of this message (caller frees), *len_r its length. */
char *checks_received(struct smtp_session *s, size_t *len_r);
/* Stored-form content from the parser: filtered into out (room for n +
 * AR_FILTER_HOLD). Returns what is in out. */
size_t checks_filter(struct smtp_session *s, const unsigned char *in,
		     size_t n, unsigned char *out);
/* The end of the content: what the filter still holds, into out (room for
 * AR_FILTER_HOLD). */
size_t checks_filter_end(struct smtp_session *s, unsigned char *out);
/* Lines the filter removed (for the size with CRLF). */
unsigned long long checks_filtered_lines(const struct smtp_session *s);
/* Content on its way to the spool: the checks and the signer see it. */
int checks_write(struct smtp_session *s, const void *p, size_t n);
/* The message is complete and job made: signs, or waits for the
 * verdict and enforces it; then smtp_commit() or a refusal. */
void checks_end(struct smtp_session *s, struct delivery_job *job);
/* The transaction goes: its checks with it. */
void checks_txn_free(struct smtp_txn *t);

#endif
