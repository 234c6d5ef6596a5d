/*
 * The filters in the SMTP session, stage by stage (filter/filter.h has
 * the engines):
 *
 *	connect	DNSBL lookups start (sf_connect_early, never waits);
 *		before the final 220: the milters' connect
 *	HELO	milters
 *	MAIL	the sending limits, milters
 *	RCPT	the sending limits, the blocklist verdict (postmaster
 *		exempt), greylisting, milters
 *	DATA	the milters' DATA
 *	end	after the DMARC verdict, before the durable write: the
 *		attachment walk, clamd, the milters' headers, body and eom
 *
 * A stage runs its steps in order. A step answers at once (returns true
 * with v filled) or later (returns false and calls sf_resume() once, from
 * the loop); meanwhile the command waits in SMTP_S_FILTER with the input
 * held, so pipelined commands are taken in order. The first verdict that
 * is not SF_CONTINUE ends the stage. A step that is pending when the
 * session or transaction goes is cancelled by its module's free hook.
 *
 * Each filter's steps live in their own file (smtp_dnsbl.c,
 * smtp_attach.c, smtp_clamd.c, smtp_milter.c); smtp_filter.c lists them
 * per stage and applies the verdicts.
 */
#ifndef GODWIT_SMTP_FILTER_H
#define GODWIT_SMTP_FILTER_H

#include <stdbool.h>

#include "smtpd/smtp_private.h"	/* the stage and verdict types */

struct delivery_job;

/* Sets v to a refusal (action from code: 4xx tempfail, 5xx reject). */
void sf_verdict_set(struct sf_verdict *v, int code, const char *enh,
		    const char *reason, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* ---- for smtp_server.c and smtp_checks.c -------------------------------- */

/* The session started (before TLS and the greeting pause). */
void sf_connect_early(struct smtp_session *s);

/*
 * Runs the stage's steps; done(s, v) follows with the verdict: at once
 * when no step waits, else later from the loop (then the state the
 * session was in is restored first, and the input held meanwhile is
 * processed after done returns).
 */
void sf_run(struct smtp_session *s, enum sf_stage stage, sf_done_fn *done);

/* The current RCPT of the RCPT stage (the address as normalised). */
const char *sf_rcpt(const struct smtp_session *s);

/*
 * The end of the data: runs SF_END on job, then commits it, or answers
 * the refusal, or (discard) answers 250 and drops it. Called where the
 * message would otherwise be committed (smtp_checks.c).
 */
void sf_end(struct smtp_session *s, struct delivery_job *job);

/* Replies with a refusal and logs it (reason, code). */
void sf_reply(struct smtp_session *s, const struct sf_verdict *v);

void sf_session_free(struct smtp_session *s);
void sf_txn_free(struct smtp_txn *t);

/* ---- for the steps ---------------------------------------------------- */

/* A step that returned false answers here, once. */
void sf_resume(struct smtp_session *s, const struct sf_verdict *v);

typedef bool sf_step_fn(struct smtp_session *s, struct sf_verdict *v);

/* smtp_sendlimit.c: the sending limits of authenticated users */
bool sf_sendlimit_mail(struct smtp_session *s, struct sf_verdict *v);
bool sf_sendlimit_rcpt(struct smtp_session *s, struct sf_verdict *v);
void sf_sendlimit_session_free(struct smtp_session *s);

/* smtp_dnsbl.c: blocklists and greylisting */
void sf_dnsbl_connect(struct smtp_session *s);
bool sf_dnsbl_rcpt(struct smtp_session *s, struct sf_verdict *v);
bool sf_greylist_rcpt(struct smtp_session *s, struct sf_verdict *v);
bool sf_greylist_end(struct smtp_session *s, struct sf_verdict *v);
void sf_dnsbl_session_free(struct smtp_session *s);
void sf_greylist_txn_free(struct smtp_txn *t);

/* smtp_attach.c */
bool sf_attach_end(struct smtp_session *s, struct sf_verdict *v);
void sf_attach_txn_free(struct smtp_txn *t);

/* smtp_clamd.c */
bool sf_clamd_end(struct smtp_session *s, struct sf_verdict *v);
void sf_clamd_txn_free(struct smtp_txn *t);

/* smtp_milter.c */
bool sf_milter_connect(struct smtp_session *s, struct sf_verdict *v);
bool sf_milter_helo(struct smtp_session *s, struct sf_verdict *v);
bool sf_milter_mail(struct smtp_session *s, struct sf_verdict *v);
bool sf_milter_rcpt(struct smtp_session *s, struct sf_verdict *v);
bool sf_milter_data(struct smtp_session *s, struct sf_verdict *v);
bool sf_milter_end(struct smtp_session *s, struct sf_verdict *v);
void sf_milter_session_free(struct smtp_session *s);
void sf_milter_txn_free(struct smtp_txn *t);

#endif
