/*
 * The outbound SMTP client: see smtp_client.h.
 *
 * One connection is a bufferevent (a socket one, with an OpenSSL filter
 * on top once TLS is up, for STARTTLS and implicit TLS alike) and a FIFO
 * of the commands whose replies are still due. Replies are matched to
 * that FIFO in order, which is all PIPELINING (RFC 2920) needs: without
 * it the same code just sends one command per reply.
 *
 * The message content is read from the queue file with pread() a chunk
 * at a time, only while the output buffer is below OUT_HIGH, so a
 * connection holds a bounded amount of memory whatever the message size
 * and however slow the peer.
 *
 * Callbacks may free the client (smtp_client_free or smtp_client_quit):
 * every entry from libevent counts itself in c->busy, and a free while
 * busy only closes the connection and marks the client; the last entry
 * to leave frees the memory.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "lib/base64.h"
#include "lib/xalloc.h"
#include "mail/pop3_stream.h"
#include "mta/smtp_client.h"
#include "mail/smtp_parse.h"
#include "net/metrics.h"
#include "net/tls.h"

#define INPUT_HIGH (64 * 1024)	/* read watermark: lines are drained */
#define OUT_HIGH (128 * 1024)	/* content is produced up to this */
#define OUT_LOW (32 * 1024)	/* and resumed below this */
#define CHUNK_IN (32 * 1024 - 1) /* file octets per read: converted, at
				 * most 64 KiB (one BDAT chunk) */
#define BDAT_INFLIGHT 4		/* chunks sent before their replies */
#define CRED_MAX 1024		/* AUTH user name or password */

/* ---- the connection --------------------------------------------------- */

enum cmd {
	CMD_GREETING,
	CMD_EHLO,
	CMD_HELO,
	CMD_STARTTLS,
	CMD_AUTH,		/* AUTH PLAIN ... or AUTH LOGIN */
	CMD_AUTH_USER,		/* LOGIN: the user name was sent */
	CMD_AUTH_PASS,		/* LOGIN: the password was sent */
	CMD_RSET,
	CMD_MAIL,
	CMD_RCPT,
	CMD_DATA,
	CMD_DOT,		/* end of data */
	CMD_DOT_DISCARD,	/* end of an empty DATA nobody gets */
	CMD_BDAT,
	CMD_BDAT_LAST,
	CMD_QUIT,
};

enum state {
	ST_CONNECTING,
	ST_TLS,			/* handshake */
	ST_GREETING,
	ST_EHLO,		/* EHLO, HELO, STARTTLS, AUTH */
	ST_READY,		/* idle: can take a transaction */
	ST_TXN,
	ST_QUIT,
	ST_DEAD,
};

enum content {
	CT_NONE,		/* DATA not sent yet */
	CT_DATA_SENT,		/* waiting for 354 */
	CT_STREAMING,		/* writing DATA content or BDAT chunks */
	CT_END_SENT,		/* nothing more to send; replies due */
};

enum rcpt_state { RS_PENDING, RS_ACCEPTED, RS_FINAL };

enum defer { DEFER_NONE, DEFER_READY, DEFER_DONE };

struct smtp_client {
	struct event_base *base;
	struct smtp_client_params p;	/* the strings point into ours: */
	char *helo_name, *server_name, *auth_user, *auth_pass;
	char hostaddr[300];		/* "HOST[ADDR]" */
	char peer[320];			/* "HOST[ADDR]:PORT" */

	struct bufferevent *bev;
	struct event *defer_ev;
	enum defer defer;
	bool defer_ok;
	struct smtp_reply defer_reply;

	enum state state;
	bool tls, verified, tls_refused, greeted;
	char tls_desc[200];
	struct smtp_ehlo ehlo;
	struct smtp_reply_parser parser;
	unsigned reply_lines;
	struct smtp_reply last;		/* the last reply: ready(ok) gets it */

	/* replies due, oldest first */
	unsigned char *pq;
	size_t pq_head, pq_len, pq_cap;

	smtp_client_ready_cb *ready;
	void *ready_arg;
	smtp_client_done_cb *done;
	void *done_arg;

	/* the transaction */
	struct smtp_client_msg *msg;
	unsigned char *rstate;		/* enum rcpt_state per recipient */
	size_t rcpt_sent, rcpt_replied, naccepted;
	bool need_rset, rset_todo, mail_sent, mail_failed, got_final;
	bool chunking, bdat_failed, bdat_last_sent;
	unsigned bdat_inflight;
	struct smtp_reply bdat_reply;	/* the first failed chunk's */
	enum content content;
	uint64_t done_octets;		/* of msg->size read so far */
	struct pop3_stream st;
	unsigned char *inbuf, *outbuf;

	int busy;			/* libevent callbacks on the stack */
	bool zombie;			/* freed while busy */
	/* on the list of clients saying QUIT (smtp_client_abort_quits) */
	struct smtp_client *qnext, **qprev;
};

static struct smtp_client *quitting;

static void client_setup_bev(struct smtp_client *c);
static void txn_step(struct smtp_client *c);

static const char *
cmd_phase(enum cmd cmd)
{
	switch (cmd) {
	case CMD_GREETING:
		return "receiving the initial server greeting";
	case CMD_EHLO:
		return "performing the EHLO handshake";
	case CMD_HELO:
		return "performing the HELO handshake";
	case CMD_STARTTLS:
		return "sending STARTTLS";
	case CMD_AUTH:
	case CMD_AUTH_USER:
	case CMD_AUTH_PASS:
		return "performing SASL authentication";
	case CMD_RSET:
		return "sending RSET";
	case CMD_MAIL:
		return "sending MAIL FROM";
	case CMD_RCPT:
		return "sending RCPT TO";
	case CMD_DATA:
		return "sending DATA command";
	case CMD_DOT:
	case CMD_DOT_DISCARD:
	case CMD_BDAT_LAST:
		return "sending end of data -- message may be sent more "
		       "than once";
	case CMD_BDAT:
		return "sending message body";
	case CMD_QUIT:
		return "sending QUIT";
	}
	return "?";
}

/* What we were doing, for "lost connection ... while ...". */
static const char *
client_phase(const struct smtp_client *c)
{
	if (c->pq_len > 0)
		return cmd_phase(c->pq[c->pq_head]);
	switch (c->state) {
	case ST_CONNECTING:
		return "connecting";
	case ST_TLS:
		return "performing the TLS handshake";
	case ST_TXN:
		return c->content == CT_STREAMING ? "sending message body"
						  : "sending MAIL FROM";
	case ST_READY:
		return "idle";
	default:
		return "closing";
	}
}

static void
reply_set(struct smtp_reply *r, int code, const char *enh, const char *fmt,
	  ...) __attribute__((format(printf, 4, 5)));

static void
reply_set(struct smtp_reply *r, int code, const char *enh, const char *fmt,
	  ...)
{
	va_list ap;

	memset(r, 0, sizeof(*r));
	r->code = code;
	snprintf(r->enh, sizeof(r->enh), "%s", enh);
	va_start(ap, fmt);
	vsnprintf(r->text, sizeof(r->text), fmt, ap);
	va_end(ap);
}

static void
client_destroy(struct smtp_client *c)
{
	if (c->qprev != NULL) {
		*c->qprev = c->qnext;
		if (c->qnext != NULL)
			c->qnext->qprev = c->qprev;
	}
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	if (c->defer_ev != NULL)
		event_free(c->defer_ev);
	if (c->auth_pass != NULL)
		explicit_bzero(c->auth_pass, strlen(c->auth_pass));
	free(c->helo_name);
	free(c->server_name);
	free(c->auth_user);
	free(c->auth_pass);
	free(c->pq);
	free(c->rstate);
	free(c->inbuf);
	free(c->outbuf);
	free(c);
}

static void
client_close(struct smtp_client *c)
{
	if (c->bev != NULL) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	c->state = ST_DEAD;
	c->pq_len = c->pq_head = 0;
}

/* No more callbacks; the memory goes when no libevent callback of ours
 * is on the stack. */
static void
client_release(struct smtp_client *c)
{
	c->ready = NULL;
	c->done = NULL;
	client_close(c);
	if (c->defer_ev != NULL)
		event_del(c->defer_ev);
	c->zombie = true;
	if (c->busy == 0)
		client_destroy(c);
}

static void
enter(struct smtp_client *c)
{
	c->busy++;
}

static void
leave(struct smtp_client *c)
{
	if (--c->busy == 0 && c->zombie)
		client_destroy(c);
}

/* ---- timeouts --------------------------------------------------------- */

static uint64_t
cmd_timeout(const struct smtp_client *c, enum cmd cmd)
{
	switch (cmd) {
	case CMD_GREETING:
		return c->p.t_greeting;
	case CMD_DATA:
		return c->p.t_data_init;
	case CMD_DOT:
	case CMD_DOT_DISCARD:
	case CMD_BDAT_LAST:
		return c->p.t_data_end;
	case CMD_BDAT:
		return c->p.t_data_block;
	default:
		return c->p.t_command;
	}
}

/* Reads wait for the oldest reply due (none: no read timeout, e.g. idle
 * or streaming DATA); writes get data_block while content is sent. */
static void
set_timeouts(struct smtp_client *c)
{
	struct timeval r, w;
	uint64_t rs = 0, ws;

	if (c->bev == NULL)
		return;
	if (c->pq_len > 0)
		rs = cmd_timeout(c, c->pq[c->pq_head]);
	else if (c->state == ST_TLS)
		rs = c->p.t_command;
	ws = c->state == ST_TXN && c->content >= CT_STREAMING
		     ? c->p.t_data_block
		     : c->p.t_command;
	r.tv_sec = (time_t)rs;
	r.tv_usec = 0;
	w.tv_sec = (time_t)ws;
	w.tv_usec = 0;
	bufferevent_set_timeouts(c->bev, rs > 0 ? &r : NULL,
				 ws > 0 ? &w : NULL);
}

/* ---- failures and callbacks ------------------------------------------- */

static void
call_ready(struct smtp_client *c, bool ok, const struct smtp_reply *r)
{
	smtp_client_ready_cb *cb = c->ready;

	if (cb != NULL && !c->zombie)
		cb(c, ok, r, c->ready_arg);
}

static void
txn_reset(struct smtp_client *c)
{
	c->msg = NULL;
	free(c->rstate);
	c->rstate = NULL;
	c->pq_head = c->pq_len = 0;
}

static void
call_done(struct smtp_client *c, bool ok)
{
	smtp_client_done_cb *cb = c->done;

	txn_reset(c);
	c->done = NULL;
	if (cb != NULL && !c->zombie)
		cb(c, ok, c->done_arg);
}

/* Every recipient without a final answer gets r. */
static void
txn_fail_all(struct smtp_client *c, const struct smtp_reply *r)
{
	size_t i;

	for (i = 0; i < c->msg->nrcpts; i++) {
		if (c->rstate[i] != RS_FINAL) {
			c->msg->rcpts[i].reply = *r;
			c->rstate[i] = RS_FINAL;
		}
	}
}

/*
 * The connection is over (r says why): before ready, ready(false); in a
 * transaction, r for every recipient not yet answered and done(false);
 * while idle nothing (the next transaction learns it); in QUIT, free.
 */
static void
client_fail(struct smtp_client *c, const struct smtp_reply *r)
{
	enum state prev = c->state;

	client_close(c);
	c->defer_reply = *r;
	switch (prev) {
	case ST_CONNECTING:
	case ST_TLS:
	case ST_GREETING:
	case ST_EHLO:
		call_ready(c, false, r);
		break;
	case ST_TXN:
		txn_fail_all(c, r);
		call_done(c, false);
		break;
	case ST_QUIT:
		client_release(c);
		break;
	default:
		break;
	}
}

static void
fail_lost(struct smtp_client *c, bool timeout)
{
	struct smtp_reply r;

	if (timeout)
		reply_set(&r, 421, "4.4.2", "conversation with %s timed out "
			  "while %s", c->hostaddr, client_phase(c));
	else
		reply_set(&r, 421, "4.4.2", "lost connection with %s while %s",
			  c->hostaddr, client_phase(c));
	client_fail(c, &r);
}

static void
fail_protocol(struct smtp_client *c, const char *what)
{
	struct smtp_reply r;

	reply_set(&r, 421, "4.5.0", "%s from %s while %s", what,
		  c->hostaddr, client_phase(c));
	client_fail(c, &r);
}

static void
defer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_client *c = arg;
	enum defer d = c->defer;

	(void)fd;
	(void)what;
	enter(c);
	c->defer = DEFER_NONE;
	if (d == DEFER_READY)
		call_ready(c, false, &c->defer_reply);
	else if (d == DEFER_DONE)
		call_done(c, c->defer_ok);
	leave(c);
}

static void
defer(struct smtp_client *c, enum defer d)
{
	c->defer = d;
	event_active(c->defer_ev, EV_TIMEOUT, 1);
}

/* ---- output ----------------------------------------------------------- */

static void
pq_push(struct smtp_client *c, enum cmd cmd)
{
	if (c->pq_head + c->pq_len == c->pq_cap) {
		if (c->pq_head > 0) {
			memmove(c->pq, c->pq + c->pq_head, c->pq_len);
			c->pq_head = 0;
		} else {
			c->pq_cap = c->pq_cap == 0 ? 16 : c->pq_cap * 2;
			c->pq = xreallocarray(c->pq, c->pq_cap, 1);
		}
	}
	c->pq[c->pq_head + c->pq_len++] = (unsigned char)cmd;
	if (c->pq_len == 1)
		set_timeouts(c);
}

static void
send_cmd(struct smtp_client *c, enum cmd cmd, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
send_cmd(struct smtp_client *c, enum cmd cmd, const char *fmt, ...)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(out, fmt, ap);
	va_end(ap);
	evbuffer_add(out, "\r\n", 2);
	pq_push(c, cmd);
}

/* RFC 3461 4: xtext, "+XX" for '+', '=' and octets outside 0x21..0x7e. */
static void
xtext_add(struct evbuffer *out, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch < 0x21 || ch > 0x7e || ch == '+' || ch == '=')
			evbuffer_add_printf(out, "+%02X", ch);
		else
			evbuffer_add(out, s, 1);
	}
}

/* ---- connection set-up ------------------------------------------------ */

static bool
name_is_ip(const char *s)
{
	unsigned char b[sizeof(struct in6_addr)];

	return s[0] == '[' || inet_pton(AF_INET, s, b) == 1 ||
	       inet_pton(AF_INET6, s, b) == 1;
}

static void
ready_ok(struct smtp_client *c)
{
	c->state = ST_READY;
	set_timeouts(c);
	call_ready(c, true, &c->last);
}

static void
send_ehlo(struct smtp_client *c)
{
	memset(&c->ehlo, 0, sizeof(c->ehlo));
	c->state = ST_EHLO;
	send_cmd(c, CMD_EHLO, "EHLO %s", c->helo_name);
}

static void
start_auth(struct smtp_client *c)
{
	struct smtp_reply r;
	size_t ulen = strlen(c->auth_user), plen = strlen(c->auth_pass);

	if (!c->tls) {
		reply_set(&r, 421, "4.7.0", "godwit: refusing to send "
			  "credentials to %s without TLS", c->hostaddr);
		client_fail(c, &r);
		return;
	}
	if (c->ehlo.ext & SMTP_EXT_AUTH_PLAIN) {
		/* RFC 4616: authzid NUL authcid NUL password */
		char *raw = xmalloc(ulen + plen + 2), *b64;

		raw[0] = '\0';
		memcpy(raw + 1, c->auth_user, ulen);
		raw[1 + ulen] = '\0';
		memcpy(raw + 2 + ulen, c->auth_pass, plen);
		b64 = base64_encode_alloc(raw, ulen + plen + 2);
		send_cmd(c, CMD_AUTH, "AUTH PLAIN %s", b64);
		explicit_bzero(raw, ulen + plen + 2);
		explicit_bzero(b64, strlen(b64));
		free(raw);
		free(b64);
	} else if (c->ehlo.ext & SMTP_EXT_AUTH_LOGIN) {
		send_cmd(c, CMD_AUTH, "AUTH LOGIN");
	} else {
		reply_set(&r, 421, "4.7.0", "godwit: %s offered no supported "
			  "AUTH mechanism (PLAIN, LOGIN)", c->hostaddr);
		client_fail(c, &r);
	}
}

static void
send_b64(struct smtp_client *c, enum cmd cmd, const char *s)
{
	char *b64 = base64_encode_alloc(s, strlen(s));

	send_cmd(c, cmd, "%s", b64);
	explicit_bzero(b64, strlen(b64));
	free(b64);
}

static void
start_tls(struct smtp_client *c)
{
	struct bufferevent *tls;
	struct smtp_reply r;
	SSL *ssl;

	if ((ssl = SSL_new(c->p.ssl_ctx)) == NULL)
		goto fail;
	if (!name_is_ip(c->server_name) &&
	    SSL_set_tlsext_host_name(ssl, c->server_name) != 1)
		goto fail_ssl;
	if (c->p.tls == TLS_POLICY_VERIFY) {
		X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
		const char *n = c->server_name;
		char lit[INET6_ADDRSTRLEN + 8];
		size_t len = strlen(n);

		if (n[0] == '[' && len > 2 && len - 2 < sizeof(lit)) {
			memcpy(lit, n + 1, len - 2);
			lit[len - 2] = '\0';
			n = lit;
		}
		SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
		if (name_is_ip(n)) {
			if (X509_VERIFY_PARAM_set1_ip_asc(vp, n) != 1)
				goto fail_ssl;
		} else if (SSL_set1_host(ssl, n) != 1) {
			goto fail_ssl;
		}
	} else {
		SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
	}
	/* RFC 3207 5: no plaintext from before the handshake survives */
	evbuffer_drain(bufferevent_get_input(c->bev),
		       evbuffer_get_length(bufferevent_get_input(c->bev)));
	/* the filter's BIO stops at the socket's high watermark: without
	 * one, all of our output would move on into the socket's buffer */
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, OUT_HIGH);
	tls = bufferevent_openssl_filter_new(c->base, c->bev, ssl,
					     BUFFEREVENT_SSL_CONNECTING,
					     BEV_OPT_CLOSE_ON_FREE);
	if (tls == NULL)
		goto fail_ssl;
	bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
	c->bev = tls;
	c->state = ST_TLS;
	c->pq_head = c->pq_len = 0;
	client_setup_bev(c);
	set_timeouts(c);
	return;
fail_ssl:
	SSL_free(ssl);
fail:
	reply_set(&r, 421, "4.7.5", "cannot start TLS with %s: out of "
		  "resources", c->hostaddr);
	client_fail(c, &r);
}

static void
tls_done(struct smtp_client *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	char buf[sizeof(c->tls_desc) + 8];
	const char *d = tls_describe(ssl, buf, sizeof(buf));

	metrics_tls(true, SSL_get_version(ssl));
	c->tls = true;
	c->verified = c->p.tls == TLS_POLICY_VERIFY &&
		      SSL_get_verify_result(ssl) == X509_V_OK;
	if (d != NULL && strncmp(d, "using ", 6) == 0)
		d += 6;
	snprintf(c->tls_desc, sizeof(c->tls_desc), "%s", d != NULL ? d : "");
	if (!c->greeted) {
		/* implicit TLS: now the greeting */
		c->state = ST_GREETING;
		pq_push(c, CMD_GREETING);
		set_timeouts(c);
		return;
	}
	send_ehlo(c);		/* RFC 3207 4.2: forget what came before */
}

static void
tls_failed(struct smtp_client *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	unsigned long e = bufferevent_get_openssl_error(c->bev);
	char err[256] = "connection closed";
	long v = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;
	struct smtp_reply r;

	if (c->p.tls == TLS_POLICY_VERIFY && v != X509_V_OK) {
		reply_set(&r, 421, "4.7.5", "Server certificate not verified "
			  "for %s: %s", c->hostaddr,
			  X509_verify_cert_error_string(v));
	} else {
		if (e != 0)
			ERR_error_string_n(e, err, sizeof(err));
		reply_set(&r, 421, "4.7.5", "TLS handshake with %s failed: "
			  "%s", c->hostaddr, err);
	}
	client_fail(c, &r);
}

/* EHLO (or HELO) succeeded: STARTTLS, AUTH, or ready, by policy. */
static void
after_ehlo(struct smtp_client *c)
{
	struct smtp_reply r;

	if (!c->tls && c->p.tls != TLS_POLICY_NONE && !c->tls_refused &&
	    c->p.ssl_ctx != NULL && (c->ehlo.ext & SMTP_EXT_STARTTLS)) {
		send_cmd(c, CMD_STARTTLS, "STARTTLS");
		return;
	}
	if (!c->tls && (c->p.tls == TLS_POLICY_ENCRYPT ||
			c->p.tls == TLS_POLICY_VERIFY)) {
		reply_set(&r, 421, "4.7.4", "TLS is required, but was not "
			  "offered by host %s", c->hostaddr);
		client_fail(c, &r);
		return;
	}
	if (c->auth_user != NULL) {
		start_auth(c);
		return;
	}
	ready_ok(c);
}

/* ---- the transaction -------------------------------------------------- */

static bool
reply_ok(const struct smtp_reply *r)
{
	return r->code >= 200 && r->code < 300;
}

static void
send_mail(struct smtp_client *c)
{
	const struct smtp_client_msg *m = c->msg;
	struct evbuffer *out = bufferevent_get_output(c->bev);

	evbuffer_add_printf(out, "MAIL FROM:<%s>", m->sender);
	if (c->ehlo.ext & SMTP_EXT_SIZE)
		evbuffer_add_printf(out, " SIZE=%llu",
				    (unsigned long long)m->size);
	if (m->body == SMTP_BODY_8BITMIME)
		evbuffer_add_printf(out, " BODY=8BITMIME");
	else if (m->body == SMTP_BODY_BINARYMIME)
		evbuffer_add_printf(out, " BODY=BINARYMIME");
	if (m->smtputf8)
		evbuffer_add_printf(out, " SMTPUTF8");
	if (c->ehlo.ext & SMTP_EXT_DSN) {
		if (m->ret != NULL && m->ret[0] != '\0')
			evbuffer_add_printf(out, " RET=%s", m->ret);
		if (m->envid != NULL && m->envid[0] != '\0') {
			evbuffer_add_printf(out, " ENVID=");
			xtext_add(out, m->envid);
		}
	}
	evbuffer_add(out, "\r\n", 2);
	pq_push(c, CMD_MAIL);
	c->mail_sent = true;
}

static void
send_rcpt(struct smtp_client *c)
{
	const struct smtp_client_rcpt *rc = &c->msg->rcpts[c->rcpt_sent++];
	struct evbuffer *out = bufferevent_get_output(c->bev);
	const char *semi;

	evbuffer_add_printf(out, "RCPT TO:<%s>", rc->addr);
	if (c->ehlo.ext & SMTP_EXT_DSN) {
		if (rc->notify & SMTP_NOTIFY_NEVER) {
			evbuffer_add_printf(out, " NOTIFY=NEVER");
		} else if (rc->notify != 0) {
			const char *sep = "";

			evbuffer_add_printf(out, " NOTIFY=");
			if (rc->notify & SMTP_NOTIFY_SUCCESS) {
				evbuffer_add_printf(out, "SUCCESS");
				sep = ",";
			}
			if (rc->notify & SMTP_NOTIFY_FAILURE) {
				evbuffer_add_printf(out, "%sFAILURE", sep);
				sep = ",";
			}
			if (rc->notify & SMTP_NOTIFY_DELAY)
				evbuffer_add_printf(out, "%sDELAY", sep);
		}
		/* "rfc822;a@b": the type as it is, the address as xtext */
		if (rc->orcpt != NULL && (semi = strchr(rc->orcpt, ';')) != NULL &&
		    semi > rc->orcpt && semi[1] != '\0') {
			evbuffer_add_printf(out, " ORCPT=%.*s;",
					    (int)(semi - rc->orcpt), rc->orcpt);
			xtext_add(out, semi + 1);
		}
	}
	evbuffer_add(out, "\r\n", 2);
	pq_push(c, CMD_RCPT);
}

/* Reads the next piece of the message (up to CHUNK_IN) into inbuf. */
static bool
read_chunk(struct smtp_client *c, size_t *n_r)
{
	const struct smtp_client_msg *m = c->msg;
	size_t got = 0, n;
	ssize_t r;
	struct smtp_reply rep;

	n = m->size - c->done_octets < CHUNK_IN
		    ? (size_t)(m->size - c->done_octets)
		    : CHUNK_IN;
	*n_r = n;
	while (got < n) {
		r = pread(m->fd, c->inbuf + got, n - got,
			  (off_t)(m->offset + c->done_octets + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			reply_set(&rep, 451, "4.3.0", "godwit: error reading "
				  "the queue file: %s",
				  r < 0 ? strerror(errno) : "file truncated");
			/* no way to abort DATA but to hang up */
			client_fail(c, &rep);
			return false;
		}
		got += (size_t)r;
	}
	c->done_octets += n;
	return true;
}

/* DATA content: pread, stuff, queue, while output is below OUT_HIGH. */
static void
data_fill(struct smtp_client *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	const struct smtp_client_msg *m = c->msg;
	size_t n, olen, used;

	while (c->content == CT_STREAMING &&
	       evbuffer_get_length(out) < OUT_HIGH) {
		if (c->done_octets == m->size) {
			olen = pop3_stream_end(&c->st, c->outbuf);
			evbuffer_add(out, c->outbuf, olen);
			c->content = CT_END_SENT;
			pq_push(c, CMD_DOT);
			set_timeouts(c);
			return;
		}
		if (!read_chunk(c, &n))
			return;
		olen = pop3_stream_run(&c->st, c->inbuf, n, c->outbuf, &used);
		evbuffer_add(out, c->outbuf, olen);
	}
}

/* BDAT chunks (RFC 3030): each one file read, converted, at most 64 KiB,
 * as many in flight as PIPELINING allows and the output bound. */
static void
bdat_fill(struct smtp_client *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	const struct smtp_client_msg *m = c->msg;
	unsigned max = (c->ehlo.ext & SMTP_EXT_PIPELINING) ? BDAT_INFLIGHT : 1;
	size_t n, olen, used;
	bool last;

	while (c->content == CT_STREAMING && c->bdat_inflight < max &&
	       evbuffer_get_length(out) < OUT_HIGH) {
		if (!read_chunk(c, &n))
			return;
		olen = pop3_stream_run(&c->st, c->inbuf, n, c->outbuf, &used);
		last = c->done_octets == m->size;
		if (last)
			olen += pop3_stream_end(&c->st, c->outbuf + olen);
		evbuffer_add_printf(out, "BDAT %zu%s\r\n", olen,
				    last ? " LAST" : "");
		evbuffer_add(out, c->outbuf, olen);
		c->bdat_inflight++;
		pq_push(c, last ? CMD_BDAT_LAST : CMD_BDAT);
		if (last) {
			c->bdat_last_sent = true;
			c->content = CT_END_SENT;
		}
	}
}

static void
content_start(struct smtp_client *c)
{
	if (c->inbuf == NULL) {
		c->inbuf = xmalloc(CHUNK_IN);
		c->outbuf = xmalloc(2 * CHUNK_IN + POP3_STREAM_END_MAX);
	}
	c->done_octets = 0;
	c->content = CT_STREAMING;
	if (c->chunking)
		pop3_stream_init_raw(&c->st);
	else
		pop3_stream_init(&c->st);
	bufferevent_setwatermark(c->bev, EV_WRITE, OUT_LOW, 0);
	set_timeouts(c);
	if (c->chunking)
		bdat_fill(c);
	else
		data_fill(c);
}

static void
txn_finish(struct smtp_client *c)
{
	size_t i;

	for (i = 0; i < c->msg->nrcpts; i++) {
		if (c->rstate[i] == RS_ACCEPTED && c->bdat_failed)
			c->msg->rcpts[i].reply = c->bdat_reply;
		c->rstate[i] = RS_FINAL;
	}
	c->need_rset = !c->got_final;
	c->state = ST_READY;
	c->content = CT_NONE;
	if (c->bev != NULL)
		bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	set_timeouts(c);
	call_done(c, true);
}

/* Sends what may go now (all of it with PIPELINING, else the next
 * command), and ends the transaction when nothing more is due. */
static void
txn_step(struct smtp_client *c)
{
	const struct smtp_client_msg *m = c->msg;
	bool pipe = (c->ehlo.ext & SMTP_EXT_PIPELINING) != 0;

	while (pipe || c->pq_len == 0) {
		if (c->rset_todo) {
			c->rset_todo = false;
			send_cmd(c, CMD_RSET, "RSET");
		} else if (!c->mail_sent) {
			send_mail(c);
		} else if (c->mail_failed) {
			break;
		} else if (c->rcpt_sent < m->nrcpts) {
			send_rcpt(c);
		} else if (c->content != CT_NONE) {
			break;
		} else if (c->chunking) {
			/* BDAT only once some recipient is known to take it */
			if (c->pq_len > 0 || c->naccepted == 0)
				break;
			content_start(c);
			return;
		} else {
			if (!pipe && c->naccepted == 0)
				break;
			send_cmd(c, CMD_DATA, "DATA");
			c->content = CT_DATA_SENT;
		}
	}
	if (c->pq_len == 0 && c->content != CT_STREAMING &&
	    c->state == ST_TXN)
		txn_finish(c);
}

/* A refusal before anything is sent, or NULL. */
static bool
txn_refuse(struct smtp_client *c, struct smtp_reply *r)
{
	const struct smtp_client_msg *m = c->msg;
	unsigned ext = c->ehlo.ext;

	if ((ext & SMTP_EXT_SIZE) && c->ehlo.size > 0 && m->size > c->ehlo.size)
		reply_set(r, 552, "5.3.4", "godwit: message size %llu exceeds "
			  "size limit %llu of server %s",
			  (unsigned long long)m->size,
			  (unsigned long long)c->ehlo.size, c->hostaddr);
	else if (m->smtputf8 && !(ext & SMTP_EXT_SMTPUTF8))
		reply_set(r, 553, "5.6.7", "godwit: SMTPUTF8 is required, but "
			  "was not offered by host %s", c->hostaddr);
	else if (m->body == SMTP_BODY_8BITMIME && !(ext & SMTP_EXT_8BITMIME))
		reply_set(r, 554, "5.6.3", "godwit: 8BITMIME is required, "
			  "but was not offered by host %s", c->hostaddr);
	else if (m->body == SMTP_BODY_BINARYMIME && (!(ext & SMTP_EXT_BINARYMIME) ||
				  !(ext & SMTP_EXT_CHUNKING)))
		reply_set(r, 554, "5.6.3", "godwit: BINARYMIME and CHUNKING "
			  "are required, but were not offered by host %s",
			  c->hostaddr);
	else
		return false;
	return true;
}

void
smtp_client_send(struct smtp_client *c, struct smtp_client_msg *msg,
		 smtp_client_done_cb *done, void *arg)
{
	struct smtp_reply r;
	size_t i;

	c->msg = msg;
	c->done = done;
	c->done_arg = arg;
	free(c->rstate);
	c->rstate = xcalloc(msg->nrcpts > 0 ? msg->nrcpts : 1, 1);
	for (i = 0; i < msg->nrcpts; i++)
		memset(&msg->rcpts[i].reply, 0, sizeof(msg->rcpts[i].reply));
	c->rcpt_sent = c->rcpt_replied = c->naccepted = 0;
	c->mail_sent = c->mail_failed = c->got_final = false;
	c->bdat_failed = c->bdat_last_sent = false;
	c->bdat_inflight = 0;
	c->content = CT_NONE;
	c->chunking = (c->ehlo.ext & SMTP_EXT_CHUNKING) != 0;

	if (c->state != ST_READY || c->bev == NULL || c->defer != DEFER_NONE) {
		if (c->defer_reply.code == 0)
			reply_set(&c->defer_reply, 421, "4.4.2",
				  "lost connection with %s while idle",
				  c->hostaddr);
		txn_fail_all(c, &c->defer_reply);
		c->defer_ok = false;
		defer(c, DEFER_DONE);
		return;
	}
	if (txn_refuse(c, &r) || msg->nrcpts == 0) {
		if (msg->nrcpts == 0)
			reply_set(&r, 554, "5.5.1", "godwit: no recipients");
		txn_fail_all(c, &r);
		c->defer_ok = true;
		defer(c, DEFER_DONE);
		return;
	}
	c->state = ST_TXN;
	c->rset_todo = c->need_rset;
	txn_step(c);
}

/* ---- replies to commands ---------------------------------------------- */

static void
on_txn_reply(struct smtp_client *c, enum cmd cmd, const struct smtp_reply *r)
{
	struct smtp_client_msg *m = c->msg;
	size_t i;

	switch (cmd) {
	case CMD_RSET:
		if (!reply_ok(r)) {
			struct smtp_reply f;

			reply_set(&f, 421, "4.5.0", "RSET refused by %s: %d %s",
				  c->hostaddr, r->code, r->text);
			client_fail(c, &f);
			return;
		}
		c->need_rset = false;
		break;
	case CMD_MAIL:
		if (!reply_ok(r)) {
			c->mail_failed = true;
			txn_fail_all(c, r);
		}
		break;
	case CMD_RCPT:
		i = c->rcpt_replied++;
		if (i >= m->nrcpts || c->rstate[i] == RS_FINAL)
			break;
		m->rcpts[i].reply = *r;
		if (reply_ok(r)) {
			c->rstate[i] = RS_ACCEPTED;
			c->naccepted++;
		} else {
			c->rstate[i] = RS_FINAL;
		}
		break;
	case CMD_DATA:
		if (r->code != 354) {
			c->content = CT_END_SENT;
			for (i = 0; i < m->nrcpts; i++)
				if (c->rstate[i] == RS_ACCEPTED)
					m->rcpts[i].reply = *r;
			txn_fail_all(c, r);
			break;
		}
		if (c->naccepted == 0) {
			/* RFC 2920 3.1: nobody to send to; end it empty */
			evbuffer_add(bufferevent_get_output(c->bev), ".\r\n",
				     3);
			pq_push(c, CMD_DOT_DISCARD);
			c->content = CT_END_SENT;
			break;
		}
		content_start(c);
		return;
	case CMD_DOT:
		c->got_final = true;
		for (i = 0; i < m->nrcpts; i++)
			if (c->rstate[i] == RS_ACCEPTED)
				m->rcpts[i].reply = *r;
		txn_fail_all(c, r);
		break;
	case CMD_DOT_DISCARD:
		break;
	case CMD_BDAT:
	case CMD_BDAT_LAST:
		c->bdat_inflight--;
		if (c->bdat_failed)
			break;
		if (!reply_ok(r)) {
			c->bdat_failed = true;
			c->bdat_reply = *r;
			c->content = CT_END_SENT;
			break;
		}
		if (cmd == CMD_BDAT_LAST) {
			c->got_final = true;
			for (i = 0; i < m->nrcpts; i++)
				if (c->rstate[i] == RS_ACCEPTED)
					m->rcpts[i].reply = *r;
			txn_fail_all(c, r);
		} else {
			bdat_fill(c);
			if (c->zombie || c->bev == NULL)
				return;
		}
		break;
	default:
		break;
	}
	if (c->state == ST_TXN)
		txn_step(c);
}

static void
on_setup_reply(struct smtp_client *c, enum cmd cmd, const struct smtp_reply *r)
{
	struct smtp_reply f;

	switch (cmd) {
	case CMD_GREETING:
		c->greeted = true;
		if (!reply_ok(r)) {
			client_fail(c, r);
			return;
		}
		send_ehlo(c);
		return;
	case CMD_EHLO:
		if (reply_ok(r)) {
			after_ehlo(c);
		} else if (r->code >= 500 && !c->tls) {
			memset(&c->ehlo, 0, sizeof(c->ehlo));
			send_cmd(c, CMD_HELO, "HELO %s", c->helo_name);
		} else {
			client_fail(c, r);
		}
		return;
	case CMD_HELO:
		memset(&c->ehlo, 0, sizeof(c->ehlo));
		if (reply_ok(r))
			after_ehlo(c);
		else
			client_fail(c, r);
		return;
	case CMD_STARTTLS:
		if (reply_ok(r)) {
			start_tls(c);
		} else if (c->p.tls == TLS_POLICY_MAY) {
			c->tls_refused = true;	/* go on in plaintext */
			after_ehlo(c);
		} else {
			reply_set(&f, 421, "4.7.4", "TLS is required, but host "
				  "%s refused to start TLS: %d %s",
				  c->hostaddr, r->code, r->text);
			client_fail(c, &f);
		}
		return;
	case CMD_AUTH:
	case CMD_AUTH_USER:
		if (r->code == 334 && (cmd == CMD_AUTH_USER ||
				       !(c->ehlo.ext & SMTP_EXT_AUTH_PLAIN))) {
			send_b64(c, cmd == CMD_AUTH ? CMD_AUTH_USER
						    : CMD_AUTH_PASS,
				 cmd == CMD_AUTH ? c->auth_user : c->auth_pass);
			return;
		}
		/* fall through */
	case CMD_AUTH_PASS:
		if (r->code == 235) {
			ready_ok(c);
		} else if (r->code == 334) {
			reply_set(&f, 421, "4.7.0", "unexpected AUTH challenge "
				  "from %s", c->hostaddr);
			client_fail(c, &f);
		} else {
			client_fail(c, r);
		}
		return;
	default:
		break;
	}
}

static void
on_reply(struct smtp_client *c, enum cmd cmd, const struct smtp_reply *r)
{
	c->last = *r;
	if (cmd == CMD_QUIT) {
		client_release(c);
		return;
	}
	if (c->state == ST_TXN)
		on_txn_reply(c, cmd, r);
	else
		on_setup_reply(c, cmd, r);
}

/* One line from the peer (without CR LF). */
static void
on_line(struct smtp_client *c, const char *line, size_t len)
{
	struct smtp_reply r;
	enum cmd cmd;
	int ret;

	if (c->pq_len == 0) {
		fail_protocol(c, "unexpected reply");
		return;
	}
	cmd = c->pq[c->pq_head];
	ret = smtp_reply_parser_line(&c->parser, line, len, &r);
	if (ret < 0) {
		fail_protocol(c, "malformed reply");
		return;
	}
	if (cmd == CMD_EHLO && c->reply_lines++ > 0 && len > 4)
		smtp_ehlo_line(&c->ehlo, line + 4, len - 4);
	if (ret == 0)
		return;
	c->reply_lines = 0;
	c->pq_head++;
	if (--c->pq_len == 0)
		c->pq_head = 0;
	set_timeouts(c);
	on_reply(c, cmd, &r);
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_client *c = arg;
	char line[SMTP_CLIENT_LINE_MAX];
	struct evbuffer_ptr p;
	size_t eol;

	(void)bev;
	enter(c);
	while (c->bev != NULL && !c->zombie && c->state != ST_TLS) {
		struct evbuffer *in = bufferevent_get_input(c->bev);

		p = evbuffer_search_eol(in, NULL, &eol, EVBUFFER_EOL_CRLF);
		if (p.pos < 0) {
			if (evbuffer_get_length(in) >= SMTP_CLIENT_LINE_MAX)
				fail_protocol(c, "reply line too long");
			break;
		}
		if ((size_t)p.pos + eol > SMTP_CLIENT_LINE_MAX) {
			fail_protocol(c, "reply line too long");
			break;
		}
		evbuffer_remove(in, line, (size_t)p.pos);
		evbuffer_drain(in, eol);
		on_line(c, line, (size_t)p.pos);
	}
	leave(c);
}

static void
write_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_client *c = arg;

	(void)bev;
	enter(c);
	if (c->state == ST_TXN && c->content == CT_STREAMING) {
		if (c->chunking)
			bdat_fill(c);
		else
			data_fill(c);
	}
	leave(c);
}

static void
connect_failed(struct smtp_client *c, int err)
{
	struct smtp_reply r;

	reply_set(&r, 421, "4.4.1", "connect to %s: %s", c->peer,
		  strerror(err));
	client_fail(c, &r);
}

static void
connected(struct smtp_client *c)
{
	if (c->p.implicit_tls) {
		start_tls(c);
		return;
	}
	c->state = ST_GREETING;
	pq_push(c, CMD_GREETING);
	set_timeouts(c);
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_client *c = arg;

	enter(c);
	if (what & BEV_EVENT_CONNECTED) {
		if (c->state == ST_CONNECTING)
			connected(c);
		else if (c->state == ST_TLS)
			tls_done(c);
	} else if (c->state == ST_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (what & BEV_EVENT_TIMEOUT)
			err = ETIMEDOUT;
		else if (getsockopt(bufferevent_getfd(bev), SOL_SOCKET,
				    SO_ERROR, &err, &len) < 0 || err == 0)
			err = errno != 0 ? errno : ECONNREFUSED;
		connect_failed(c, err);
	} else if (c->state == ST_TLS && !(what & BEV_EVENT_TIMEOUT)) {
		tls_failed(c);
	} else if (c->state == ST_QUIT) {
		client_release(c);
	} else {
		fail_lost(c, (what & BEV_EVENT_TIMEOUT) != 0);
	}
	leave(c);
}

static void
client_setup_bev(struct smtp_client *c)
{
	bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, INPUT_HIGH);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void
fail_at_start(struct smtp_client *c, int err)
{
	reply_set(&c->defer_reply, 421, "4.4.1", "connect to %s: %s", c->peer,
		  strerror(err));
	client_close(c);
	defer(c, DEFER_READY);
}

static void
peer_names(struct smtp_client *c, const struct sockaddr *sa)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		port = ntohs(s4->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;

		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		port = ntohs(s6->sin6_port);
	}
	snprintf(c->hostaddr, sizeof(c->hostaddr), "%.250s[%s]",
		 c->server_name, ip);
	snprintf(c->peer, sizeof(c->peer), "%s:%u", c->hostaddr, port);
}

struct smtp_client *
smtp_client_new(struct event_base *base,
		const struct smtp_client_params *params,
		const struct sockaddr *sa, socklen_t salen,
		const struct sockaddr *src, socklen_t srclen,
		smtp_client_ready_cb *ready, void *arg)
{
	struct smtp_client *c = xcalloc(1, sizeof(*c));
	struct timeval tv;
	int fd, one = 1;

	c->base = base;
	c->p = *params;
	c->helo_name = xstrdup(params->helo_name);
	c->server_name = xstrdup(params->server_name != NULL
					 ? params->server_name
					 : "unknown");
	if (params->auth_user != NULL) {
		c->auth_user = xstrdup(params->auth_user);
		c->auth_pass = xstrdup(params->auth_pass != NULL
					       ? params->auth_pass
					       : "");
	}
	c->p.helo_name = c->helo_name;
	c->p.server_name = c->server_name;
	c->p.auth_user = c->auth_user;
	c->p.auth_pass = c->auth_pass;
	c->ready = ready;
	c->ready_arg = arg;
	c->state = ST_CONNECTING;
	peer_names(c, sa);
	if ((c->defer_ev = event_new(base, -1, 0, defer_cb, c)) == NULL)
		abort();

	if (c->p.ssl_ctx == NULL && c->p.tls != TLS_POLICY_NONE) {
		/* nothing to do TLS with: MAY degrades, the others fail */
		if (c->p.tls == TLS_POLICY_MAY && !c->p.implicit_tls)
			c->p.tls = TLS_POLICY_NONE;
	}
	if (c->p.implicit_tls && c->p.ssl_ctx == NULL) {
		fail_at_start(c, EPROTONOSUPPORT);
		return c;
	}
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0) {
		fail_at_start(c, errno);
		return c;
	}
	if (src != NULL) {
#ifdef IP_BIND_ADDRESS_NO_PORT
		/* the port is chosen at connect(): no early exhaustion */
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
			   sizeof(one));
#endif
		if (bind(fd, src, srclen) < 0) {
			int err = errno;

			close(fd);
			fail_at_start(c, err);
			return c;
		}
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		close(fd);
		fail_at_start(c, ENOMEM);
		return c;
	}
	client_setup_bev(c);
	tv.tv_sec = (time_t)c->p.t_connect;
	tv.tv_usec = 0;
	bufferevent_set_timeouts(c->bev, NULL, c->p.t_connect > 0 ? &tv : NULL);
	if (bufferevent_socket_connect(c->bev, sa, (int)salen) < 0)
		fail_at_start(c, errno != 0 ? errno : ECONNREFUSED);
	return c;
}

void
smtp_client_quit(struct smtp_client *c)
{
	if (c == NULL)
		return;
	c->ready = NULL;
	c->done = NULL;
	if (c->state != ST_READY || c->bev == NULL || c->zombie) {
		client_release(c);
		return;
	}
	c->state = ST_QUIT;
	c->qnext = quitting;
	if (quitting != NULL)
		quitting->qprev = &c->qnext;
	c->qprev = &quitting;
	quitting = c;
	send_cmd(c, CMD_QUIT, "QUIT");
}

void
smtp_client_abort_quits(void)
{
	while (quitting != NULL)
		client_release(quitting);
}

void
smtp_client_free(struct smtp_client **cp)
{
	struct smtp_client *c = *cp;

	if (c == NULL)
		return;
	*cp = NULL;
	client_release(c);
}

const char *
smtp_client_tls(const struct smtp_client *c, char *buf, size_t size)
{
	int n;

	if (!c->tls || c->tls_desc[0] == '\0' || size == 0)
		return NULL;
	n = snprintf(buf, size, "%s", c->tls_desc);
	if (n < 0 || (size_t)n >= size) {
		buf[0] = '\0';
		return NULL;
	}
	return buf;
}

bool
smtp_client_verified(const struct smtp_client *c)
{
	return c->verified;
}

const char *
smtp_client_peer(const struct smtp_client *c)
{
	return c->peer;
}

const struct smtp_ehlo *
smtp_client_ehlo(const struct smtp_client *c)
{
	return &c->ehlo;
}

SSL_CTX *
smtp_client_ssl_ctx_new(const char *ca_file, char **error_r)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	char err[256];

	if (ctx == NULL)
		goto fail;
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
		goto fail;
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
					 SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if (SSL_CTX_set_default_verify_paths(ctx) != 1)
		goto fail;
	if (ca_file != NULL && ca_file[0] != '\0' &&
	    SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
		ERR_error_string_n(ERR_get_error(), err, sizeof(err));
		*error_r = xasprintf("%s: %s", ca_file, err);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
fail:
	ERR_error_string_n(ERR_get_error(), err, sizeof(err));
	*error_r = xasprintf("TLS client context: %s", err);
	SSL_CTX_free(ctx);
	return NULL;
}
