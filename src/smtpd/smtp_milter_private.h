/*
 * What the two files of the milters in the SMTP session share:
 * smtp_milter.c (the stages, the macros, the verdicts) and
 * smtp_milter_msg.c (the message at its end: header fields and body as
 * the milters see them, their modifications, the rewrite of the spool).
 */
#ifndef GODWIT_SMTP_MILTER_PRIVATE_H
#define GODWIT_SMTP_MILTER_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "filter/milter.h"

struct delivery_job;
struct lookup_job;
struct smtp_session;
struct spool;

/* a header field: "name:value\n" in the message (value as stored:
 * leading space kept, folded lines joined with '\n', no final '\n') */
struct mhdr {
	char *name;
	char *value;	/* NULL: a line without a colon, kept as it was */
};

/* an ADDRCPT or DELRCPT, resolved at the end (user database) */
struct mrcpt_edit {
	bool add;
	char *addr;	/* as the milter sent it */
	const char *milter;	/* its name (configuration) */
};

/* the transaction's part (smtp_private.h: t->milter) */
struct sf_milter_txn {
	struct sf_milters *ms;
	bool loaded;		/* the header is read from the message */
	struct mhdr *h;
	size_t nh, caph;
	size_t hdr_bytes;	/* of the fields, bounded */
	bool blank;		/* the message has a body separator */
	uint64_t body_off;	/* the body in job->spool */
	struct spool *newbody;	/* a milter's replacement (LF), or NULL */
	bool newbody_cr;	/* its last piece ended in CR */
	bool replacing;		/* this milter's first REPLBODY is in */
	bool changed;		/* the spool must be rewritten */
	char *sender;		/* CHGFROM's, or NULL */
	bool hold;		/* QUARANTINE */
	bool junk;		/* a junk_header was added */
	struct mrcpt_edit *edits;	/* recipients, in the milters' order */
	size_t nedits;
	struct lookup_job *lookup;	/* their resolution, while out */
};

/*
 * Reads the header of the held message (job->prefix, then the spool's
 * header from local_hdr_len): 0, -1 on an I/O error, -2 when the header
 * is over the limits.
 */
int milter_msg_load(struct sf_milter_txn *mt, struct delivery_job *job);
/* Up to MILTER_CHUNK octets of the body from *off, CRLF line ends: the
 * length, 0 at the end, -1 on an I/O error. */
ssize_t milter_msg_body(struct sf_milter_txn *mt, struct delivery_job *job,
			uint64_t *off, unsigned char *out, size_t size);
/*
 * A modification reply of milter cf (actions/protocol as negotiated):
 * 0, or -1 with *error_r when the milter was not allowed it or sent
 * something not acceptable.
 */
int milter_msg_modify(struct smtp_session *s, struct sf_milter_txn *mt,
		      const struct milter_config *cf, uint32_t actions,
		      uint32_t protocol, const struct milter_reply *r,
		      const char **error_r);
/*
 * The recipients the milters added or removed are resolved off the loop
 * (net/lookupq.h) once every milter is through: the job to submit, or
 * NULL when there are none. Its answer goes to milter_msg_rcpts(),
 * which edits the job in the milters' order: 0, or -1 when the database
 * failed (the message is refused for now: 451).
 */
struct lookup_job *milter_msg_rcpt_lookup(struct smtp_session *s,
					  struct sf_milter_txn *mt);
int milter_msg_rcpts(struct smtp_session *s, struct sf_milter_txn *mt,
		     struct lookup_job *job);
/* A milter's end of message reply came: its REPLBODY, if any, is whole. */
void milter_msg_eom(struct sf_milter_txn *mt);
/* Applies the changes to the job (spool, envelope, hold, .Junk): 0, or
 * -1 on an I/O error. */
int milter_msg_apply(struct smtp_session *s, struct sf_milter_txn *mt,
		     struct delivery_job *job);
void milter_msg_clear(struct sf_milter_txn *mt);

#endif
