/*
 * The SMTP client (RFC 5321) that the queue runner delivers with: one
 * connection to one address, driven as an explicit state machine over a
 * libevent bufferevent. It does the greeting, EHLO (HELO if EHLO is
 * refused with 5xx), STARTTLS (RFC 3207) by policy, AUTH PLAIN or LOGIN
 * (smarthost, only over TLS), then any number of transactions, one at a
 * time, and QUIT.
 *
 * Per transaction: MAIL FROM with SIZE= (when offered), BODY= (8BITMIME /
 * BINARYMIME when offered), SMTPUTF8 (when the message needs it) and the
 * DSN parameters RET=/ENVID= (when the peer offers DSN); RCPT TO with
 * NOTIFY=/ORCPT= (DSN); then the content with BDAT chunks when the peer
 * offers CHUNKING, else DATA with dot-stuffing. With PIPELINING (RFC
 * 2920) MAIL, every RCPT and DATA go in one write; without it, one
 * command per round trip. A transaction after one that did not end with
 * the end-of-data reply starts with RSET.
 *
 * The content is the queue file's message part: LF line ends as stored,
 * sent with CR LF (src/pop3_stream.h does the transform; DATA adds the
 * stuffing and the final ".").
 *
 * Refusals made here, before anything is sent, as synthetic replies
 * (code, enhanced code, text that starts with "godwit: "):
 *  - message larger than the peer's SIZE:  552 5.3.4
 *  - needs SMTPUTF8, peer lacks it:        553 5.6.7 (RFC 6531 3.4)
 *  - 8BITMIME body, peer lacks 8BITMIME:   554 5.6.3 (no downgrade)
 *  - BINARYMIME, peer lacks BINARYMIME or CHUNKING: 554 5.6.3
 * Connection-level failures (refused, timeout, lost, TLS failure, TLS
 * required but not offered, 4xx/5xx greeting or EHLO, AUTH failure) are
 * reported through the ready callback, or, mid-transaction, as a result
 * for every recipient not yet answered: 4xx 4.4.2 "lost connection ..."
 * or the timeout's 4.4.2, the way Postfix words them:
 * "conversation with HOST[ADDR] timed out while sending RCPT TO".
 *
 * Timeouts (RFC 5321 4.5.3.2) are the params' values; every read is
 * bounded by one of them; reply lines are bounded (SMTP_CLIENT_LINE_MAX)
 * and a reply by SMTP_CLIENT_REPLY_LINES lines: a longer one is a
 * protocol error (the connection fails with 4.5.0... texts as above).
 */
#ifndef GODWIT_SMTP_CLIENT_H
#define GODWIT_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "config.h"	/* enum tls_policy */

struct event_base;

#define SMTP_CLIENT_LINE_MAX 1000	/* octets incl. CRLF; longer: error */
#define SMTP_CLIENT_REPLY_LINES 100
#define SMTP_CLIENT_TEXT_MAX 400	/* reply text kept (lines joined) */

/* ---- replies (pure; fuzzed) ------------------------------------------- */

struct smtp_reply {
	int code;		/* 200..599 */
	char enh[16];		/* "5.1.1", "" if the reply had none */
	char text[SMTP_CLIENT_TEXT_MAX];	/* the text of all lines, without
				 * code and enhanced code, joined with
				 * " "; control characters replaced by
				 * '?'; cut at the size */
};

/*
 * Incremental reply parser: feed it one line at a time (without CR LF).
 * Returns 0 if the reply needs more lines, 1 when it is complete (in
 * *r), -1 on a malformed line (no 3-digit code 2xx-5xx, code changing
 * between lines, separator other than '-' or ' ' / end of line, too many
 * lines). RFC 5321 4.2: "250-a" continues, "250 b" or "250" ends;
 * RFC 2034: an enhanced code is taken from the first line if it has the
 * form class.subject.detail with class matching the reply's first digit.
 */
struct smtp_reply_parser {
	/* private */
	unsigned nlines;
	int code;
	size_t textlen;
	struct smtp_reply r;
};
void smtp_reply_parser_init(struct smtp_reply_parser *p);
int smtp_reply_parser_line(struct smtp_reply_parser *p, const char *line,
			   size_t len, struct smtp_reply *r);

/* EHLO keywords (RFC 5321 4.1.1.1): parsed from the EHLO reply's lines. */
#define SMTP_EXT_PIPELINING	0x001
#define SMTP_EXT_SIZE		0x002
#define SMTP_EXT_8BITMIME	0x004
#define SMTP_EXT_SMTPUTF8	0x008
#define SMTP_EXT_CHUNKING	0x010
#define SMTP_EXT_BINARYMIME	0x020
#define SMTP_EXT_STARTTLS	0x040
#define SMTP_EXT_DSN		0x080
#define SMTP_EXT_AUTH_PLAIN	0x100
#define SMTP_EXT_AUTH_LOGIN	0x200
#define SMTP_EXT_ENHANCEDSTATUSCODES 0x400
struct smtp_ehlo {
	unsigned ext;		/* SMTP_EXT_* */
	uint64_t size;		/* SIZE's value; 0 = not given or no limit */
};
/* One line of the EHLO reply without the code and separator ("SIZE
 * 1000"), case-insensitive keywords; the first line (the greeting
 * domain) must not be fed. */
void smtp_ehlo_line(struct smtp_ehlo *e, const char *line, size_t len);

/* ---- the connection --------------------------------------------------- */

struct smtp_client_params {
	const char *helo_name;		/* our hostname */
	const char *server_name;	/* host connected to (MX name): for the
					 * log, SNI and verify; may be an IP */
	enum tls_policy tls;
	bool implicit_tls;		/* port 465: TLS before the greeting */
	SSL_CTX *ssl_ctx;		/* from smtp_client_ssl_ctx_new(); may be
					 * NULL only with TLS_POLICY_NONE */
	const char *auth_user;		/* NULL: no AUTH */
	const char *auth_pass;
	/* seconds */
	uint64_t t_connect, t_greeting, t_command, t_data_init, t_data_block,
		t_data_end;
};

struct smtp_client_rcpt {
	const char *addr;
	unsigned notify;		/* SMTP_NOTIFY_* bits, 0 = not given */
	const char *orcpt;		/* decoded "rfc822;a@b", "" = none */
	/* out: the reply to RCPT, or, when RCPT was accepted, to the end of
	 * data (or the synthetic/connection-loss one) */
	struct smtp_reply reply;
};

struct smtp_client_msg {
	const char *sender;		/* "" for <> */
	const char *envid;		/* "" = none */
	const char *ret;		/* "", "FULL", "HDRS" */
	int body;			/* 0 7BIT, 1 8BITMIME, 2 BINARYMIME */
	bool smtputf8;
	int fd;				/* the queue file, read with pread */
	uint64_t offset;		/* where the message starts in fd */
	uint64_t size;			/* its length as stored (LF ends) */
	struct smtp_client_rcpt *rcpts;
	size_t nrcpts;
};

struct smtp_client;

/*
 * Ready: the session reached the point where it can take a transaction
 * (ok = true), or failed before that (ok = false, *reply says why: the
 * server's reply, or a synthetic 4.4.1 "connect to HOST[ADDR]:PORT:
 * Connection refused" / 4.4.2 timeout / 4.7.5 TLS / 4.7.4 TLS not
 * offered / 5.7.8 or 4.7.0 AUTH text, Postfix-like). After ok = false
 * the client is dead: the caller frees it.
 */
typedef void smtp_client_ready_cb(struct smtp_client *c, bool ok,
				  const struct smtp_reply *reply, void *arg);
/*
 * Done: every rcpts[i].reply is set. ok = true if the connection can take
 * another transaction; false if it is dead (then free it).
 */
typedef void smtp_client_done_cb(struct smtp_client *c, bool ok, void *arg);

/*
 * Starts a non-blocking connect to sa (port set) from src (NULL = any).
 * ready is called later from the loop, never from inside this call.
 */
struct smtp_client *smtp_client_new(struct event_base *base,
				    const struct smtp_client_params *params,
				    const struct sockaddr *sa, socklen_t salen,
				    const struct sockaddr *src,
				    socklen_t srclen,
				    smtp_client_ready_cb *ready, void *arg);

/*
 * Runs one transaction; msg (and what it points to, fd included) must
 * stay valid until done is called. Only when ready/done said ok.
 */
void smtp_client_send(struct smtp_client *c, struct smtp_client_msg *msg,
		      smtp_client_done_cb *done, void *arg);

/* QUIT, then frees itself (bounded by t_command); no more callbacks. */
void smtp_client_quit(struct smtp_client *c);
/* Closes at once; no more callbacks. NULL-safe. */
void smtp_client_free(struct smtp_client **c);

/* "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)" or NULL,
 * and whether the peer's certificate was verified (policy verify). */
const char *smtp_client_tls(const struct smtp_client *c, char *buf,
			    size_t size);
bool smtp_client_verified(const struct smtp_client *c);
/* "HOST[ADDR]:PORT" for logs. */
const char *smtp_client_peer(const struct smtp_client *c);
const struct smtp_ehlo *smtp_client_ehlo(const struct smtp_client *c);

/*
 * A client context: TLS 1.2+, the system's trust store plus ca_file (may
 * be NULL), peer verification done per connection (only with verify).
 * Returns NULL with *error_r (caller frees).
 */
SSL_CTX *smtp_client_ssl_ctx_new(const char *ca_file, char **error_r);

#endif
