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
 * sent with CR LF (mail/pop3_stream.h does the transform; DATA adds the
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
 * for every recipient not yet answered (and for those whose RCPT was
 * accepted but whose end of data was not answered), the way Postfix
 * words them. The synthetic ones all have code 421 (never 5xx: a
 * connection problem is not a reason to bounce):
 *  4.4.1 "connect to HOST[ADDR]:PORT: Connection refused" (any errno)
 *  4.4.2 "lost connection with HOST[ADDR] while sending RCPT TO",
 *        "conversation with HOST[ADDR] timed out while sending MAIL FROM"
 *        (the phase is the oldest command whose reply is due, Postfix's
 *        words: "receiving the initial server greeting", "performing the
 *        EHLO handshake", "sending message body", "sending end of data --
 *        message may be sent more than once", ...)
 *  4.5.0 "malformed reply|unexpected reply|reply line too long from
 *        HOST[ADDR] while ...", and "RSET refused by HOST[ADDR]: ..."
 *  4.7.5 "TLS handshake with HOST[ADDR] failed: <openssl error>",
 *        "Server certificate not verified for HOST[ADDR]: <reason>"
 *  4.7.4 "TLS is required, but was not offered by host HOST[ADDR]" (also
 *        when STARTTLS is refused under encrypt/verify; under may a
 *        refused STARTTLS means going on in plaintext)
 *  4.7.0 "godwit: refusing to send credentials to HOST[ADDR] without
 *        TLS", no supported AUTH mechanism, unexpected AUTH challenge
 * A greeting, EHLO+HELO or AUTH refusal is the server's own reply, code
 * kept (e.g. 535 5.7.8). An error reading the queue file mid-content
 * hangs up (DATA cannot be aborted otherwise): 451 4.3.0 "godwit: error
 * reading the queue file: ...", done(ok = false).
 *
 * Timeouts (RFC 5321 4.5.3.2) are the params' values (0 = none): a read
 * waits at most the timeout of the oldest reply due (greeting: greeting;
 * EHLO/HELO/STARTTLS/AUTH/MAIL/RCPT/RSET/QUIT and the TLS handshake:
 * command; DATA: data_init; end of data and BDAT LAST: data_end; other
 * BDAT chunks: data_block); writes get data_block while content is
 * sent, else command; connect gets connect. An idle connection (ready,
 * no transaction) has no read timeout: the runner decides how long to
 * keep it. Reply lines are bounded (SMTP_CLIENT_LINE_MAX) and a reply by
 * SMTP_CLIENT_REPLY_LINES lines: a longer one is a protocol error (4.5.0
 * above). Peer input is never buffered beyond one line plus a 64 KiB
 * read watermark; message content is read from the file only while
 * less than 128 KiB of output is pending.
 *
 * SIZE= (RFC 1870) and the SIZE refusal use msg->size, the size as
 * stored (LF line ends), as Postfix does with its queue file size.
 * BDAT chunks carry at most 64 KiB (CR LF converted), "BDAT 0 LAST" for
 * an empty message; with PIPELINING up to 4 chunks go before their
 * replies. With PIPELINING and DATA: if no RCPT was accepted but DATA
 * got 354 anyway, an empty content (".") ends it (RFC 2920 3.1).
 */
#ifndef GODWIT_SMTP_CLIENT_H
#define GODWIT_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "mail/smtp_parse.h"	/* enum smtp_body */
#include "mail/smtp_reply.h"

/* Outbound TLS: none = never STARTTLS; may = when offered
 * (opportunistic, RFC 3207, unauthenticated); encrypt = TLS required, the
 * certificate is not checked; verify = TLS required and the certificate
 * must chain to a trusted CA and name the host connected to. */
enum tls_policy { TLS_POLICY_NONE, TLS_POLICY_MAY, TLS_POLICY_ENCRYPT,
		  TLS_POLICY_VERIFY };

struct event_base;

/* ---- the connection --------------------------------------------------- */

/* The strings are copied; ssl_ctx must outlive the client. */
struct smtp_client_params {
	const char *helo_name;		/* our hostname */
	const char *server_name;	/* host connected to (MX name): for the
					 * log, SNI and verify; may be an IP */
	enum tls_policy tls;
	bool implicit_tls;		/* port 465: TLS before the greeting */
	SSL_CTX *ssl_ctx;		/* from smtp_client_ssl_ctx_new(); may be
					 * NULL only with TLS_POLICY_NONE (with
					 * MAY it then acts as NONE) */
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
	enum smtp_body body;
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
 * (ok = true; *reply is the last server reply, EHLO's or AUTH's), or
 * failed before that (ok = false, *reply says why: the server's reply,
 * or a synthetic one as listed at the top). After ok = false the client
 * is dead: the caller frees it.
 *
 * Both callbacks may call smtp_client_free() or smtp_client_quit() on
 * the client (the memory goes when the callback has returned), and done
 * may call smtp_client_send() for the next transaction. They are always
 * called from the event loop, never from inside smtp_client_new() or
 * smtp_client_send().
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
 * stay valid until done is called. Only when ready/done said ok. If the
 * connection died while idle, or a refusal listed at the top applies,
 * or nrcpts is 0 (554 5.5.1), done comes from the loop without anything
 * sent (ok = true for the refusals, false for a dead connection).
 */
void smtp_client_send(struct smtp_client *c, struct smtp_client_msg *msg,
		      smtp_client_done_cb *done, void *arg);

/* QUIT, then frees itself (bounded by t_command); no more callbacks. */
/* Closes every client still saying QUIT (before the event base goes). */
void smtp_client_abort_quits(void);
void smtp_client_quit(struct smtp_client *c);
/* Closes at once; no more callbacks. NULL-safe. */
void smtp_client_free(struct smtp_client **c);

/* "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)" (that is
 * tls_describe() without its "using ") or NULL, and whether the peer's
 * certificate was verified (policy verify). Both stay valid after the
 * connection failed. */
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
