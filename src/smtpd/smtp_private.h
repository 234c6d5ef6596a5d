/*
 * The SMTP session's own structures, shared by the files of smtpd/
 * (smtp_server.c, the state machine; smtp_header.c, the header checks of
 * authenticated mail). Not for other layers.
 */
#ifndef GODWIT_SMTP_PRIVATE_H
#define GODWIT_SMTP_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/strbuf.h"
#include "lib/strset.h"
#include "msgauth/iprev.h"
#include "mail/smtp_data.h"
#include "mail/smtp_parse.h"
#include "net/session.h"
#include "store/recipient.h"
#include "store/queue.h"

struct smtpd_settings;
struct config_listener;
struct ar_filter;
struct delivery_job;
struct event;
struct msgauth;
struct msgauth_signing;
struct spool;
struct sf_attach;
struct sf_clamd;
struct sf_dnsbl;
struct sf_grey;
struct redis_req;
struct sf_milter_txn;
struct sf_milters;

enum smtp_state {
	SMTP_S_GREETING,	/* early-talker pause before the final 220 */
	SMTP_S_HELO,		/* waiting for EHLO/HELO */
	SMTP_S_READY,		/* no transaction */
	SMTP_S_MAIL,		/* MAIL accepted, no RCPT yet */
	SMTP_S_RCPT,		/* at least one RCPT command */
	SMTP_S_DATA,		/* receiving DATA */
	SMTP_S_BDAT,		/* receiving a BDAT chunk */
	SMTP_S_COMMIT,		/* waiting for the durable write */
	SMTP_S_CLOSING,		/* flushing the last reply */
	SMTP_S_AUTH,		/* AUTH: waiting for a continuation line */
	SMTP_S_AUTH_WAIT,	/* AUTH failed: the reply waits (brute force) */
	SMTP_S_AUTH_BUSY,	/* a SASL step runs on the auth thread */
	SMTP_S_TLS,		/* implicit TLS: handshake before the greeting */
	SMTP_S_CHECK,		/* end of data: waiting for SPF/DKIM/DMARC */
	SMTP_S_FILTER,		/* a command waits for a filter (sf_run) */
};

const char *smtp_state_name(enum smtp_state state);

/* ---- the filters' stages (smtp_filter.h) ---- */

enum sf_stage {
	SF_CONNECT,
	SF_HELO,
	SF_MAIL,
	SF_RCPT,
	SF_DATA,
	SF_END,
	SF_NSTAGES
};

enum sf_action {
	SF_CONTINUE,	/* the next step */
	SF_REJECT,	/* code (5xx), enh and text */
	SF_TEMPFAIL,	/* code (4xx), enh and text */
	SF_DISCARD,	/* the message is accepted and dropped (milters) */
};

#define SF_TEXT_MAX 512

struct sf_verdict {
	enum sf_action action;
	int code;
	char enh[16];
	/* the reply text; '\n' separates the lines of a multi-line reply
	 * (each gets the code and enh). Printable ASCII only: the steps
	 * clean what they take from a filter. */
	char text[SF_TEXT_MAX];
	const char *reason;	/* for the log: "dnsbl", "greylist", ... */
	bool logged;		/* the step logged it: sf_reply only answers */
};

struct smtp_session;
typedef void sf_done_fn(struct smtp_session *s, const struct sf_verdict *v);

struct smtp_rcpt {
	char *addr;		/* as given, domain normalised */
	unsigned notify;
	char *orcpt;
};

struct smtp_txn {
	char sender[SMTP_PATH_MAX * 4 + 8];	/* "" for <> */
	struct smtp_mail_args mail;
	struct smtp_rcpt *rcpts;		/* accepted RCPTs */
	size_t nrcpts, rcpts_cap;
	unsigned rcpt_attempts;
	char **mailboxes;			/* local final mailboxes */
	size_t nmailboxes, mailboxes_cap;
	struct smtp_rcpt *remotes;		/* to queue */
	size_t nremotes, remotes_cap;
	/* each once: the strings of mailboxes and remotes, O(1) a look */
	struct strset mailbox_set;
	struct strset remote_set;

	/* content */
	char id[QUEUE_ID_LEN + 1];
	struct spool *spool;
	struct smtp_data data;
	size_t local_hdr_len;
	size_t rcvd_len;	/* the Received field after it, 0 when that
				 * waits for the prefix */
	uint64_t hdr_lines;
	uint64_t size;		/* stored size, once committed */
	/* authenticated senders: the header is held until its end so that
	 * Date:/Message-ID: can be added and From: checked */
	bool holding;
	struct strbuf hold;
	/* a refused header section: its reply and reason (static strings
	 * but text), and what was wrong for the log (client text) */
	int hdr_code;
	const char *hdr_enh, *hdr_why;
	char hdr_text[200];
	char *hdr_detail;
	bool too_big;
	bool io_error;
	bool bdat_started;
	bool bdat_last;
	bool bdat_bad;		/* chunk is read and thrown away */
	uint64_t bdat_remaining;
	int bdat_code;		/* reply for a discarded chunk */
	const char *bdat_enh, *bdat_text;

	/* mail authentication (smtp_checks.c) */
	struct msgauth *auth;		/* port 25: this message's checks */
	struct ar_filter *arf;		/* port 25: forged A-R removed */
	struct msgauth_signing *signing; /* submitted: DKIM-signed */
	struct delivery_job *held_job;	/* waits for the checks' verdict */
	bool wait_iprev;		/* the checks are in, iprev is not */

	/* filters (smtp_filter.h): each step file's own state */
	struct sf_grey *grey;		/* smtp_dnsbl.c */
	struct sf_attach *attach;	/* smtp_attach.c */
	struct sf_clamd *clamd;		/* smtp_clamd.c */
	struct sf_milter_txn *milter;	/* smtp_milter.c */
	bool discard;			/* a filter said discard */
};

/* A RCPT that waits for the RCPT stage's verdict. */
struct smtp_pending_rcpt {
	char addr[SMTP_PATH_MAX * 4 + 8];
	struct smtp_rcpt_args args;
	struct recipient_result res;
};

struct smtp_session {
	struct session ses;	/* first: the core's part */
	const struct smtpd_settings *config;
	const struct config_listener *listener;
	struct event *greet_timer;
	enum smtp_state state;
	bool esmtp;
	char *helo;
	bool trusted;
	char account[320];	/* normalised, once authenticated */
	char tls_info[128];	/* for the Received header and the log */
	unsigned errors;
	unsigned messages;
	struct smtp_txn *txn;
	struct delivery_job *job;	/* while SMTP_S_COMMIT */
	/* iprev, started at connect on port 25 (smtp_checks.c) */
	struct iprev_check *iprev;
	bool iprev_done;
	struct iprev_outcome iprev_out;
	/* filters (smtp_filter.c): the stage that runs */
	struct {
		enum sf_stage stage;
		unsigned step;
		sf_done_fn *done;
		bool waiting;		/* in SMTP_S_FILTER */
		enum smtp_state saved;	/* the state it interrupted */
		const char *rcpt;	/* SF_RCPT: the address */
	} sf;
	struct smtp_pending_rcpt prcpt;	/* SF_RCPT: the command's */
	struct sf_dnsbl *dnsbl;		/* smtp_dnsbl.c */
	struct sf_milters *milters;	/* smtp_milter.c */
	struct redis_req *send_req;	/* smtp_sendlimit.c: Redis asked */
	bool send_message;		/* ... about a message (or a RCPT) */
};

/* smtp_server.c, for smtp_checks.c and smtp_filter.c */
void smtp_reply(struct smtp_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void smtp_reply_error(struct smtp_session *s, int code, const char *enh,
		      const char *text);
/* Hands the message to the committer; the reply comes when it is done. */
void smtp_commit(struct smtp_session *s, struct delivery_job *job);
/* The session is on an MX listener (port 25): the checks and the DNS
 * lists apply. */
bool smtp_on_mx(const struct smtp_session *s);
/* The queue envelope of the transaction, without recipients. */
struct queue_envelope *smtp_envelope_new(const struct smtp_session *s);
/* A message was refused at its end: the transaction is over. */
void smtp_txn_refused(struct smtp_session *s);


#endif
