/*
 * The SMTP server session: RFC 5321 with PIPELINING, SIZE, 8BITMIME,
 * ENHANCEDSTATUSCODES, SMTPUTF8 and CHUNKING.
 *
 * A session is a bufferevent plus an explicit state (enum smtp_state).
 * Input is processed in order, one complete line (or DATA/BDAT chunk) at a
 * time; replies are appended to the output buffer and libevent flushes
 * them, which gives PIPELINING for free. While a message is being made
 * durable (SMTP_S_COMMIT) the session reads nothing further: pipelined
 * commands wait in the input buffer until the 250 has been written.
 *
 * Every input is bounded: command lines by max_command_line, text lines by
 * max_text_line, messages by max_message_size, recipients by
 * max_recipients, errors by max_errors, and time by deadlines
 * (session_io.h): a whole command line within timeouts.command, a TLS
 * handshake within tls.handshake_timeout, a message's text at
 * min_data_rate after an allowance of timeouts.data_block; shorter for
 * clients not logged in while the server is under stress.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>

#include "net/listener.h"
#include "net/metrics.h"
#include "store/deliver.h"
#include "mail/dsn.h"
#include "lib/cidr.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "lib/log.h"
#include "lib/strset.h"
#include "mail/ar_filter.h"
#include "mail/mail_header.h"
#include "store/recipient.h"
#include "mail/smtp_data.h"
#include "mail/smtp_parse.h"
#include "smtpd/smtp_checks.h"
#include "smtpd/smtp_filter.h"
#include "smtpd/smtp_header.h"
#include "smtpd/smtp_private.h"
#include "smtpd/smtp_server.h"
#include "net/auth.h"
#include "net/sasl.h"
#include "net/session.h"
#include "net/tls.h"

#define HOP_LIMIT 50		/* Received: headers before we call it a loop */
#define OUTPUT_HIGH (64 * 1024)	/* stop reading while replies pile up */
#define INPUT_HIGH (256 * 1024)	/* libevent stops reading past this */
#define REPLY_MAX 1024

static struct smtp_session *
smtp(struct session *ses)
{
	return (struct smtp_session *)ses;
}

const char *
smtp_state_name(enum smtp_state state)
{
	static const char *const names[] = {
		"GREETING", "HELO", "READY", "MAIL", "RCPT",
		"DATA", "BDAT", "COMMIT", "CLOSING", "AUTH", "AUTH_WAIT", "AUTH_BUSY", "TLS",
		"CHECK", "FILTER",
	};
	if ((size_t)state < sizeof(names) / sizeof(names[0]))
		return names[state];
	return "UNKNOWN";
}

/* ---- replies -------------------------------------------------------- */


/* A 4xx/5xx reply to a command counts as an error; too many and we hang up. */
static void
reply_error(struct smtp_session *s, int code, const char *enh,
	    const char *text)
{
	smtp_reply(s, "%d %s %s", code, enh, text);
	if (++s->errors >= s->config->smtp.max_errors) {
		smtp_reply(s, "421 4.7.0 %s Error: too many errors",
		      s->config->hostname);
		log_event(LOG_INFO, "smtp", "reject",
			  LF_STR("session", s->ses.id),
			  LF_STR("ip", s->ses.ip),
			  LF_STR("reason", "too-many-errors"),
			  LF_UINT("errors", s->errors));
		metrics_reject("too-many-errors");
		session_close(&s->ses, "too-many-errors");
	}
}

void
smtp_reply(struct smtp_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	session_vreply(s->ses.bev, REPLY_MAX, fmt, ap);
	va_end(ap);
}

void
smtp_reply_error(struct smtp_session *s, int code, const char *enh,
		 const char *text)
{
	reply_error(s, code, enh, text);
}

static void
reply_parse_error(struct smtp_session *s, const struct smtp_error *e)
{
	reply_error(s, e->code, e->enh, e->text);
}

/* ---- transactions --------------------------------------------------- */

static void
rcpt_list_free(struct smtp_rcpt *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].addr);
		free(v[i].orcpt);
	}
	free(v);
}

static void
txn_free(struct smtp_txn **tp)
{
	struct smtp_txn *t = *tp;

	if (t == NULL)
		return;
	rcpt_list_free(t->rcpts, t->nrcpts);
	rcpt_list_free(t->remotes, t->nremotes);
	/* mailboxes is NULL once handed to the delivery job */
	for (size_t i = 0; t->mailboxes != NULL && i < t->nmailboxes; i++)
		free(t->mailboxes[i]);
	free(t->mailboxes);
	strset_clear(&t->mailbox_set);
	strset_clear(&t->remote_set);
	checks_txn_free(t);
	sf_txn_free(t);
	spool_free(&t->spool);
	strbuf_free(&t->hold);
	free(t->hdr_detail);
	free(t);
	*tp = NULL;
}

static void
txn_reset(struct smtp_session *s)
{
	txn_free(&s->txn);
	if (s->state != SMTP_S_HELO && s->state != SMTP_S_GREETING)
		s->state = SMTP_S_READY;
}

/* ---- session lifetime ----------------------------------------------- */

/* ops->free: the disconnect line; the core frees the rest. */
static void
smtp_free(struct session *ses, const char *reason)
{
	struct smtp_session *s = smtp(ses);

	log_event(LOG_INFO, "smtp", "disconnect", LF_STR("session", s->ses.id),
		  LF_STR("ip", s->ses.ip), LF_STR("reason", reason),
		  LF_STR("state", smtp_state_name(s->state)),
		  LF_UINT("messages", s->messages),
		  LF_UINT("errors", s->errors),
		  LF_UINT("duration_ms", mono_ms() - s->ses.started_ms));
	if (s->job != NULL) {
		/* the committer finishes the job; nobody is left to answer */
		s->job->done = NULL;
		s->job->arg = NULL;
		s->job = NULL;
	}
	txn_free(&s->txn);
	checks_session_free(s);
	sf_session_free(s);
	if (s->sf.rcpt != NULL)
		recipient_result_clear(&s->prcpt.res);
	if (s->greet_timer != NULL)
		event_free(s->greet_timer);
	free(s->helo);
}

static void
smtp_closing(struct session *ses)
{
	smtp(ses)->state = SMTP_S_CLOSING;
}

static uint64_t
smtp_line_timeout(const struct session *ses)
{
	return ((const struct smtp_session *)ses)->config->smtp.timeout_command;
}

/* DATA or a BDAT chunk: the allowance, then min_data_rate. */
static void
wait_data(struct smtp_session *s)
{
	session_wait_data(&s->ses, s->config->smtp.timeout_data_block,
			  s->config->smtp.min_data_rate);
}

static void
smtp_timeout_reply(struct session *ses)
{
	struct smtp_session *s = smtp(ses);

	smtp_reply(s, "421 4.4.2 %s Error: timeout exceeded",
		   s->config->hostname);
}

/*
 * A read timeout, which restarts with every read, is only the idle limit
 * between blocks of message text (session_set_timeouts()).
 */
static void
set_read_timeout(struct smtp_session *s, uint64_t idle_seconds)
{
	session_set_timeouts(&s->ses, idle_seconds,
			     s->config->smtp.timeout_command);
}

/* After a command completes: honour a pending shutdown. */
static void
maybe_shutdown(struct smtp_session *s)
{
	if (!s->ses.srv->stopping || s->state == SMTP_S_CLOSING)
		return;
	if (s->state == SMTP_S_HELO || s->state == SMTP_S_READY ||
	    s->state == SMTP_S_GREETING) {
		smtp_reply(s, "421 4.3.2 %s Service shutting down",
		      s->config->hostname);
		session_close(&s->ses, "shutdown");
	}
}

static void
smtp_shutdown(struct session *ses)
{
	maybe_shutdown(smtp(ses));
}

/* ---- the greeting --------------------------------------------------- */

/* The connect stage's verdict: the final 220, or a refusal and close
 * (RFC 5321 3.8: a temporary one is 421 there, whatever the filter
 * said). */
static void
greet_done(struct smtp_session *s, const struct sf_verdict *v)
{
	if (v->action == SF_REJECT || v->action == SF_TEMPFAIL) {
		struct sf_verdict r = *v;

		if (r.action == SF_TEMPFAIL)
			r.code = 421;
		sf_reply(s, &r);
		session_close(&s->ses, v->reason != NULL ? v->reason
							 : "filter");
		return;
	}
	smtp_reply(s, "220 %s ESMTP godwit", s->config->hostname);
	s->state = SMTP_S_HELO;
	set_read_timeout(s, 0);
	session_wait_line(&s->ses);
}

static void
greet_final(struct smtp_session *s)
{
	sf_run(s, SF_CONNECT, greet_done);
}

static void
greet_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;

	(void)fd;
	(void)what;
	if (s->state != SMTP_S_GREETING)
		return;
	limits_greet_pass(s->ses.srv->limits, &s->ses.srv->policy,
			  (struct sockaddr *)&s->ses.ss, now_ms());
	greet_final(s);
	/* anything that arrived in the same instant is handled now */
	session_process(&s->ses);
}

/* ---- commands ------------------------------------------------------- */

bool
smtp_on_mx(const struct smtp_session *s)
{
	return s->listener->proto == PROTO_SMTP;
}

static bool
is_submission(const struct smtp_session *s)
{
	return s->listener->proto == PROTO_SUBMISSION ||
	       s->listener->proto == PROTO_SUBMISSIONS;
}

/* AUTH is offered on listeners that allow it, once encrypted (RFC 4954
 * section 4: never a password in the clear unless the listener says so). */
static bool
auth_offered(const struct smtp_session *s)
{
	return s->listener->auth && !s->ses.logged_in &&
	       (s->ses.tls || s->listener->plaintext_auth);
}

static void helo_done(struct smtp_session *s, const struct sf_verdict *v);

static void
cmd_ehlo(struct smtp_session *s, const struct smtp_command *c, bool esmtp)
{
	if (*c->arg == '\0') {
		reply_error(s, 501, "5.5.4",
			    esmtp ? "Syntax: EHLO hostname"
				  : "Syntax: HELO hostname");
		return;
	}
	/* Many real clients send names that are not valid hostnames; we
	 * take what they say and record it (Postfix does the same). */
	free(s->helo);
	s->helo = xstrndup(c->arg, 255);
	s->esmtp = esmtp;
	txn_free(&s->txn);
	s->state = SMTP_S_READY;
	log_event(LOG_DEBUG, "smtp", "helo", LF_STR("session", s->ses.id),
		  LF_STR("ip", s->ses.ip), LF_STR("helo", s->helo));
	sf_run(s, SF_HELO, helo_done);
}

/* The HELO stage's verdict: the capabilities, or the refusal (and the
 * client must say HELO again). */
static void
helo_done(struct smtp_session *s, const struct sf_verdict *v)
{
	const struct smtpd_settings *cf = s->config;
	bool esmtp = s->esmtp;

	if (v->action == SF_REJECT || v->action == SF_TEMPFAIL) {
		sf_reply(s, v);
		free(s->helo);
		s->helo = NULL;
		s->state = SMTP_S_HELO;
		return;
	}
	if (!esmtp) {
		smtp_reply(s, "250 %s", cf->hostname);
		return;
	}
	smtp_reply(s, "250-%s", cf->hostname);
	smtp_reply(s, "250-PIPELINING");
	smtp_reply(s, "250-SIZE %llu",
	      (unsigned long long)cf->smtp.max_message_size);
	smtp_reply(s, "250-8BITMIME");
	smtp_reply(s, "250-ENHANCEDSTATUSCODES");
	smtp_reply(s, "250-DSN");
	smtp_reply(s, "250-SMTPUTF8");
	smtp_reply(s, "250-CHUNKING");
	if (s->ses.srv->tls_ctx != NULL && !s->ses.tls)
		smtp_reply(s, "250-STARTTLS");
	if (auth_offered(s))
		smtp_reply(s, "250-AUTH PLAIN LOGIN SCRAM-SHA-256%s",
		      cf->auth.cram_md5 ? " CRAM-MD5" : "");
	smtp_reply(s, "250 HELP");
}

/*
 * Whether the MAIL FROM of this session's mail is someone's own: the
 * client authenticated, or is in trusted_networks. Success and delay
 * reports, and returning the full message, are only for such senders
 * (dsn_notify_allowed()). An SPF pass does not count: it says the client
 * may send for the domain, not that the mail is the sender's. (This also
 * keeps checked mail away from the runner's local delivery, which knows
 * nothing of quarantine: only unchecked senders can get a success report.)
 */
static bool
sender_verified(const struct smtp_session *s)
{
	return s->ses.logged_in || s->trusted;
}

/* The MAIL stage's verdict. */
static void
mail_done(struct smtp_session *s, const struct sf_verdict *v)
{
	if (v->action == SF_REJECT || v->action == SF_TEMPFAIL) {
		sf_reply(s, v);
		txn_free(&s->txn);
		return;
	}
	s->state = SMTP_S_MAIL;
	checks_mail(s);
	smtp_reply(s, "250 2.1.0 Ok");
}

/*
 * RFC 6409 6.1: a logged-in user sends as themselves only. false after
 * the refusal (553, or 451 when the database failed) was sent.
 */
static bool
sender_owned(struct smtp_session *s, const struct smtp_txn *t)
{
	int r = t->mail.path.null
	            ? 0
	            : auth_sender_allowed(s->ses.srv->db, s->account,
	                                  t->sender,
	                                  s->config->smtp.recipient_delimiter);

	if (r == 1)
		return true;
	if (r < 0) {
		reply_error(s, 451, "4.3.0", "Error: temporary failure");
		return false;
	}
	log_event(LOG_INFO, "smtp", "reject", LF_STR("session", s->ses.id),
		  LF_STR("ip", s->ses.ip), LF_STR("user", s->account),
		  LF_STR("from", t->sender), LF_UINT("code", 553),
		  LF_STR("reason", "sender-not-owned"));
	metrics_reject("sender-not-owned");
	reply_error(s, 553, "5.7.1",
		    "Error: sender address not owned by the authenticated "
		    "user");
	return false;
}

static void
cmd_mail(struct smtp_session *s, const struct smtp_command *c)
{
	struct smtp_mail_args args;
	struct smtp_error err;
	struct smtp_txn *t;

	if (s->state == SMTP_S_HELO) {
		reply_error(s, 503, "5.5.1", "Error: send HELO/EHLO first");
		return;
	}
	if (s->state != SMTP_S_READY) {
		reply_error(s, 503, "5.5.1", "Error: nested MAIL command");
		return;
	}
	if (smtp_parse_mail(c->arg, &args, &err) < 0) {
		reply_parse_error(s, &err);
		return;
	}
	if (!s->esmtp && (args.has_size || args.body != SMTP_BODY_7BIT ||
			  args.smtputf8 || args.envid[0] != '\0' ||
			  args.ret != SMTP_RET_UNSET)) {
		reply_error(s, 555, "5.5.4",
			    "Error: MAIL parameters need EHLO");
		return;
	}
	if (args.has_size && args.size > s->config->smtp.max_message_size) {
		reply_error(s, 552, "5.3.4",
			    "Error: message size exceeds fixed limit");
		return;
	}
	if (is_submission(s) && !s->ses.logged_in) {
		reply_error(s, 530, "5.7.0", "Authentication required");
		return;
	}
	t = xcalloc(1, sizeof(*t));
	t->mail = args;
	if (!args.path.null &&
	    smtp_mailbox_format(&args.path.mbox, t->sender,
				sizeof(t->sender)) < 0) {
		free(t);
		reply_error(s, 501, "5.1.7", "Error: bad sender address");
		return;
	}
	if (s->ses.logged_in && !sender_owned(s, t)) {
		free(t);
		return;
	}
	if (t->mail.ret == SMTP_RET_FULL &&
	    !dsn_ret_full_allowed(sender_verified(s))) {
		/* never the whole message to an address nobody verified */
		t->mail.ret = SMTP_RET_HDRS;
		log_event(LOG_INFO, "smtp", "dsn-limited",
			  LF_STR("session", s->ses.id), LF_STR("ret", "HDRS"),
			  LF_STR("reason", "unverified-sender"));
	}
	s->txn = t;
	sf_run(s, SF_MAIL, mail_done);
}

/* Room for element n of v (n of them used), doubling: O(1) per element. */
static void *
grow(void *v, size_t n, size_t *cap_r, size_t size)
{
	if (n < *cap_r)
		return v;
	*cap_r = *cap_r == 0 ? 4 : *cap_r * 2;
	return xreallocarray(v, *cap_r, size);
}

static void
add_remote(struct smtp_txn *t, const char *addr, unsigned notify,
	   const char *orcpt)
{
	if (strset_contains(&t->remote_set, addr))
		return;
	t->remotes = grow(t->remotes, t->nremotes, &t->remotes_cap,
			  sizeof(*t->remotes));
	t->remotes[t->nremotes].addr = xstrdup(addr);
	strset_add(&t->remote_set, t->remotes[t->nremotes].addr);
	t->remotes[t->nremotes].notify = notify;
	t->remotes[t->nremotes].orcpt = xstrdup(orcpt);
	t->nremotes++;
}

static void
recipient_ctx_init(const struct smtp_session *s, struct recipient_ctx *r,
		   bool trusted, bool authenticated)
{
	r->db = s->ses.srv->db;
	r->hostname = s->config->hostname;
	r->postmaster = s->config->postmaster;
	r->delimiter = s->config->smtp.recipient_delimiter;
	r->trusted = trusted;
	r->authenticated = authenticated;
}

/* DSN NOTIFY as the sender may have it (dsn_notify_allowed()), logged. */
static unsigned
notify_allowed(const struct smtp_session *s, unsigned notify)
{
	unsigned allowed = dsn_notify_allowed(notify, sender_verified(s));

	if (allowed != notify && notify != 0)
		log_event(LOG_INFO, "smtp", "dsn-limited",
			  LF_STR("session", s->ses.id),
			  LF_STR("notify", allowed & SMTP_NOTIFY_NEVER
						   ? "NEVER"
						   : "FAILURE"),
			  LF_STR("reason", "unverified-sender"));
	return allowed;
}

/*
 * An accepted RCPT: what it resolved to joins the transaction, each
 * local mailbox and remote address once (O(1) a look, strset.h).
 */
static void
txn_add_rcpt(struct smtp_txn *t, const char *addr,
	     const struct smtp_rcpt_args *args,
	     const struct recipient_result *res)
{
	for (size_t i = 0; i < res->nmailboxes; i++) {
		/* a success report was asked for (RFC 3461): the queue
		 * runner delivers these and reports the delivery */
		if ((args->notify & SMTP_NOTIFY_SUCCESS) != 0 &&
		    !t->mail.path.null) {
			add_remote(t, res->mailboxes[i], args->notify,
				   args->orcpt);
			continue;
		}
		if (strset_contains(&t->mailbox_set, res->mailboxes[i]))
			continue;
		t->mailboxes = grow(t->mailboxes, t->nmailboxes,
				    &t->mailboxes_cap, sizeof(*t->mailboxes));
		t->mailboxes[t->nmailboxes] = xstrdup(res->mailboxes[i]);
		strset_add(&t->mailbox_set, t->mailboxes[t->nmailboxes++]);
	}
	for (size_t i = 0; i < res->nremotes; i++)
		add_remote(t, res->remotes[i], args->notify, args->orcpt);
	t->rcpts = grow(t->rcpts, t->nrcpts, &t->rcpts_cap, sizeof(*t->rcpts));
	t->rcpts[t->nrcpts].addr = xstrdup(addr);
	t->rcpts[t->nrcpts].notify = args->notify;
	t->rcpts[t->nrcpts].orcpt = xstrdup(args->orcpt);
	t->nrcpts++;
}

/* The RCPT stage's verdict on s->prcpt. */
static void
rcpt_done(struct smtp_session *s, const struct sf_verdict *v)
{
	struct smtp_pending_rcpt *p = &s->prcpt;

	if (v->action == SF_REJECT || v->action == SF_TEMPFAIL)
		sf_reply(s, v);
	else {
		txn_add_rcpt(s->txn, p->addr, &p->args, &p->res);
		smtp_reply(s, "250 2.1.5 Ok");
	}
	s->sf.rcpt = NULL;
	recipient_result_clear(&p->res);
}

static void
cmd_rcpt(struct smtp_session *s, const struct smtp_command *c)
{
	struct smtp_txn *t = s->txn;
	struct recipient_result res;
	struct recipient_ctx rctx;
	struct smtp_rcpt_args args;
	struct smtp_error err;
	char addr[SMTP_PATH_MAX * 4 + 8];

	if (s->state != SMTP_S_MAIL && s->state != SMTP_S_RCPT) {
		reply_error(s, 503, "5.5.1", "Error: need MAIL command");
		return;
	}
	if (t->bdat_started) {
		reply_error(s, 503, "5.5.1", "Error: BDAT in progress");
		return;
	}
	s->state = SMTP_S_RCPT;
	t->rcpt_attempts++;
	if (smtp_parse_rcpt(c->arg, t->mail.smtputf8, &args, &err) < 0) {
		reply_parse_error(s, &err);
		return;
	}
	if (!s->esmtp && (args.notify != 0 || args.orcpt[0] != '\0')) {
		reply_error(s, 555, "5.5.4",
			    "Error: RCPT parameters need EHLO");
		return;
	}
	if (t->nrcpts >= s->config->smtp.max_recipients) {
		/* RFC 5321 4.5.3.1.10: not an error; the client sends the
		 * rest in another transaction */
		smtp_reply(s, "452 4.5.3 Error: too many recipients");
		return;
	}
	if (smtp_mailbox_format(&args.path.mbox, addr, sizeof(addr)) < 0) {
		reply_error(s, 501, "5.1.3", "Error: bad recipient address");
		return;
	}
	args.notify = notify_allowed(s, args.notify);
	recipient_ctx_init(s, &rctx, s->trusted, s->ses.logged_in);
	memset(&res, 0, sizeof(res));
	if (recipient_resolve(&rctx, &args.path.mbox, &res) < 0 ||
	    res.verdict == RCPT_TEMPFAIL) {
		reply_error(s, 451, "4.3.0",
			    "Error: temporary failure looking up recipient");
		log_event(LOG_WARNING, "smtp", "reject",
			  LF_STR("session", s->ses.id), LF_STR("ip", s->ses.ip),
			  LF_STR("to", addr), LF_UINT("code", 451),
			  LF_STR("reason", "lookup"));
		metrics_reject("lookup");
		recipient_result_clear(&res);
		return;
	}
	if (res.verdict == RCPT_REJECT) {
		log_event(LOG_INFO, "smtp", "reject",
			  LF_STR("session", s->ses.id),
			  LF_STR("ip", s->ses.ip), LF_STR("from", t->sender),
			  LF_STR("to", addr), LF_INT("code", res.code),
			  LF_STR("enh", res.enh),
			  LF_STR("reason", res.code == 554 ? "relay-denied"
							   : "unknown-user"));
		metrics_reject(res.code == 554 ? "relay-denied"
					       : "unknown-user");
		reply_error(s, res.code, res.enh, res.text);
		recipient_result_clear(&res);
		return;
	}
	snprintf(s->prcpt.addr, sizeof(s->prcpt.addr), "%s", addr);
	s->prcpt.args = args;
	s->prcpt.res = res;
	s->sf.rcpt = s->prcpt.addr;
	sf_run(s, SF_RCPT, rcpt_done);
}

/* Creates the spool and writes the trace header fields (on port 25 the
 * Received field waits for the prefix: smtp_checks.c). */
static int
content_start(struct smtp_session *s, enum smtp_data_mode mode)
{
	struct smtp_txn *t = s->txn;
	char *tmp_path, *hdr;
	size_t len = 0;
	int r;

	queue_id_new(t->id);
	t->holding = s->ses.logged_in;
	tmp_path = xasprintf("%s/queue/tmp/%s", s->config->data_dir, t->id);
	t->spool = spool_new(tmp_path);
	free(tmp_path);
	smtp_data_init(&t->data, mode, s->config->smtp.max_text_line);
	checks_content_start(s);

	t->local_hdr_len = 0;
	t->rcvd_len = 0;
	if (t->nmailboxes > 0 &&
	    spool_local_header(t->spool, t->sender,
			       t->nmailboxes == 1 ? t->mailboxes[0] : NULL,
			       &t->local_hdr_len, &t->hdr_lines) < 0)
		return -1;
	if (checks_received_late(s))
		return 0;
	hdr = checks_received(s, &len);
	for (size_t i = 0; i < len; i++)
		if (hdr[i] == '\n')
			t->hdr_lines++;
	t->rcvd_len = len;
	r = spool_write(t->spool, hdr, len);
	free(hdr);
	return r;
}

static bool
txn_has_recipients(struct smtp_session *s, bool *no_valid_r)
{
	struct smtp_txn *t = s->txn;

	*no_valid_r = false;
	if (s->state != SMTP_S_RCPT && s->state != SMTP_S_MAIL)
		return false;
	if (t->nrcpts == 0) {
		*no_valid_r = t->rcpt_attempts > 0;
		return false;
	}
	return true;
}

static void data_done(struct smtp_session *s, const struct sf_verdict *v);

static void
cmd_data(struct smtp_session *s)
{
	bool no_valid;

	if (s->state == SMTP_S_HELO || s->state == SMTP_S_READY) {
		reply_error(s, 503, "5.5.1", "Error: need MAIL command");
		return;
	}
	if (s->txn->bdat_started) {
		reply_error(s, 503, "5.5.1", "Error: BDAT in progress");
		return;
	}
	if (!txn_has_recipients(s, &no_valid)) {
		if (no_valid)
			reply_error(s, 554, "5.5.1",
				    "Error: no valid recipients");
		else
			reply_error(s, 503, "5.5.1",
				    "Error: need RCPT command");
		return;
	}
	if (s->txn->mail.body == SMTP_BODY_BINARYMIME) {
		reply_error(s, 503, "5.5.1",
			    "Error: BINARYMIME requires BDAT");
		return;
	}
	sf_run(s, SF_DATA, data_done);
}

/* The DATA stage's verdict: the 354, or the refusal (the transaction
 * stays: the client may RSET). */
static void
data_done(struct smtp_session *s, const struct sf_verdict *v)
{
	if (v->action == SF_REJECT || v->action == SF_TEMPFAIL) {
		sf_reply(s, v);
		return;
	}
	if (content_start(s, SMTP_DATA_DOT) < 0) {
		reply_error(s, 451, "4.3.0", "Error: local error");
		txn_reset(s);
		return;
	}
	s->state = SMTP_S_DATA;
	set_read_timeout(s, s->config->smtp.timeout_data_block);
	wait_data(s);
	smtp_reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

static void
cmd_bdat(struct smtp_session *s, const struct smtp_command *c)
{
	struct smtp_error err;
	uint64_t size;
	bool last, no_valid;
	struct smtp_txn *t;

	if (smtp_parse_bdat(c->arg, &size, &last, &err) < 0) {
		/* without a valid size we cannot find the next command */
		smtp_reply(s, "%d %s %s", err.code, err.enh, err.text);
		s->errors++;
		log_event(LOG_INFO, "smtp", "reject",
			  LF_STR("session", s->ses.id),
			  LF_STR("ip", s->ses.ip),
			  LF_STR("reason", "bad-bdat"));
		metrics_reject("bad-bdat");
		session_close(&s->ses, "bad-bdat");
		return;
	}
	if (s->txn == NULL || !txn_has_recipients(s, &no_valid)) {
		/* RFC 3030: the chunk is still read, then refused */
		if (s->txn == NULL)
			s->txn = xcalloc(1, sizeof(*s->txn));
		t = s->txn;
		t->bdat_bad = true;
		t->bdat_code = 503;
		t->bdat_enh = "5.5.1";
		t->bdat_text = "Error: need MAIL and RCPT before BDAT";
		t->bdat_remaining = size;
		t->bdat_last = last;
		s->state = SMTP_S_BDAT;
		set_read_timeout(s, s->config->smtp.timeout_data_block);
		wait_data(s);
		return;
	}
	t = s->txn;
	if (!t->bdat_started) {
		if (content_start(s, SMTP_DATA_BDAT) < 0)
			t->io_error = true;
		t->bdat_started = true;
	}
	if (size > s->config->smtp.max_message_size ||
	    spool_size(t->spool) + size >
	        s->config->smtp.max_message_size + 4096)
		t->too_big = true;
	t->bdat_remaining = size;
	t->bdat_last = last;
	s->state = SMTP_S_BDAT;
	set_read_timeout(s, s->config->smtp.timeout_data_block);
	wait_data(s);
}

static void
cmd_vrfy(struct smtp_session *s, const struct smtp_command *c)
{
	struct smtp_path path;
	struct smtp_error err;
	struct recipient_ctx rctx;
	struct recipient_result res;
	char buf[SMTP_PATH_MAX + 8];
	const char *end;

	if (!s->config->smtp.vrfy) {
		smtp_reply(s, "252 2.5.0 Cannot VRFY user, but will accept "
			 "message and attempt delivery");
		return;
	}
	/* accept both "user@domain" and "<user@domain>" */
	if (c->arg[0] == '<')
		snprintf(buf, sizeof(buf), "%s", c->arg);
	else
		snprintf(buf, sizeof(buf), "<%s>", c->arg);
	if (smtp_parse_path(buf, false, true, false, &path, &end, &err) < 0 ||
	    *end != '\0') {
		reply_error(s, 501, "5.1.3", "Error: bad address syntax");
		return;
	}
	recipient_ctx_init(s, &rctx, false, false);
	memset(&res, 0, sizeof(res));
	if (recipient_resolve(&rctx, &path.mbox, &res) < 0 ||
	    res.verdict == RCPT_TEMPFAIL)
		reply_error(s, 451, "4.3.0", "Error: temporary failure");
	else if (res.verdict == RCPT_REJECT)
		reply_error(s, res.code, res.enh, res.text);
	else
		smtp_reply(s, "250 2.1.5 <%s@%s>", path.mbox.local,
		      path.mbox.domain);
	recipient_result_clear(&res);
}

/*
 * RFC 3207. The 220 goes out in plaintext; anything the client sent after
 * STARTTLS in the same packet is thrown away, never executed (the
 * CVE-2011-0411 command injection); the TLS layer is put on top of the
 * socket's bufferevent; once the handshake is done the session starts
 * over (smtp_on_tls).
 */
static void
cmd_starttls(struct smtp_session *s)
{
	SSL *ssl;

	if (s->ses.srv->tls_ctx == NULL) {
		reply_error(s, 502, "5.5.1", "Error: command not implemented");
		return;
	}
	if (s->ses.tls) {
		reply_error(s, 503, "5.5.1", "Error: TLS already active");
		return;
	}
	if (s->state != SMTP_S_HELO && s->state != SMTP_S_READY) {
		reply_error(s, 503, "5.5.1",
			    "Error: STARTTLS not allowed in a transaction");
		return;
	}
	if ((ssl = session_ssl_new(&s->ses)) == NULL) {
		reply_error(s, 454, "4.7.0", "TLS not available");
		return;
	}
	smtp_reply(s, "220 2.0.0 Ready to start TLS");
	if (session_starttls(&s->ses, ssl) < 0) {
		smtp_reply(s, "421 4.7.0 %s TLS not available",
			   s->config->hostname);
		session_close(&s->ses, "tls-error");
		return;
	}
	txn_free(&s->txn);
}

/* The handshake is done: the session forgets everything from before. */
static void
smtp_on_tls(struct session *ses)
{
	struct smtp_session *s = smtp(ses);

	tls_describe(bufferevent_openssl_get_ssl(s->ses.bev), s->tls_info,
		     sizeof(s->tls_info));
	if (s->state == SMTP_S_TLS) {
		/* implicit TLS: now the greeting */
		greet_final(s);
		return;
	}
	free(s->helo);
	s->helo = NULL;
	s->esmtp = false;
	txn_free(&s->txn);
	if (s->state != SMTP_S_CLOSING)
		s->state = SMTP_S_HELO;
}

/* ---- AUTH (RFC 4954) ------------------------------------------------- */

static void auth_result(struct smtp_session *s, enum sasl_status st,
			char *challenge);

static void
smtp_auth_done(struct session *ses, enum sasl_status st, char *chal)
{
	struct smtp_session *s = smtp(ses);

	s->state = SMTP_S_READY;
	auth_result(s, st, chal);
	if (s->state != SMTP_S_AUTH_WAIT)
		session_process(&s->ses);
}

/* The step (password hashing!) runs on the worker's auth thread. */
static void
auth_submit(struct smtp_session *s, const char *line)
{
	s->state = SMTP_S_AUTH_BUSY;
	session_auth_submit(&s->ses, line);
}

static void
close_banned(struct smtp_session *s)
{
	smtp_reply(s, "421 4.7.0 %s Error: too many failed logins",
	      s->config->hostname);
	session_close(&s->ses, "banned");
}

/* The delay after a failed AUTH is over: its reply. */
static void
smtp_auth_delay_done(struct session *ses)
{
	struct smtp_session *s = smtp(ses);

	switch (s->ses.auth_fail) {
	case SASL_CANCELLED:
		reply_error(s, 501, "5.0.0", "Authentication cancelled");
		break;
	case SASL_FAIL_SYNTAX:
		reply_error(s, 501, "5.5.2",
			    "Error: cannot decode the response");
		break;
	default:
		reply_error(s, 535, "5.7.8",
			    "Error: authentication credentials invalid");
		break;
	}
	if (s->state == SMTP_S_CLOSING)
		return;
	if (s->ses.auth_ban) {
		close_banned(s);
		return;
	}
	s->state = SMTP_S_READY;
	session_process(&s->ses);
}

static void
cmd_auth(struct smtp_session *s, const struct smtp_command *c)
{
	char mechname[32];
	const char *sp, *initial = NULL;
	enum sasl_mech mech;
	size_t n;

	if (!s->listener->auth) {
		reply_error(s, 502, "5.5.1", "Error: command not implemented");
		return;
	}
	if (s->ses.logged_in) {
		reply_error(s, 503, "5.5.1", "Error: already authenticated");
		return;
	}
	if (s->state != SMTP_S_READY) {
		reply_error(s, 503, "5.5.1",
			    s->state == SMTP_S_HELO
				    ? "Error: send EHLO first"
				    : "Error: AUTH not allowed in a transaction");
		return;
	}
	if (!s->ses.tls && !s->listener->plaintext_auth) {
		reply_error(s, 538, "5.7.11",
			    "Error: encryption required for authentication "
			    "(STARTTLS first)");
		return;
	}
	if (session_auth_banned(&s->ses, NULL, NULL)) {
		close_banned(s);
		return;
	}
	sp = strchr(c->arg, ' ');
	n = sp != NULL ? (size_t)(sp - c->arg) : strlen(c->arg);
	if (n == 0 || n >= sizeof(mechname)) {
		reply_error(s, 501, "5.5.4", "Syntax: AUTH mechanism");
		return;
	}
	memcpy(mechname, c->arg, n);
	mechname[n] = '\0';
	if (sp != NULL)
		initial = sp + 1;
	if (sasl_mech_from_name(mechname, &mech) < 0 ||
	    (mech == SASL_CRAM_MD5 && !s->config->auth.cram_md5) ||
	    (s->ses.sasl = sasl_start(mech, &auth_userdb_creds,
				  authq_creds_ctx(s->ses.srv->authq),
				  s->config->hostname)) == NULL) {
		reply_error(s, 504, "5.5.4",
			    "Error: unrecognized authentication type");
		return;
	}
	s->ses.auth_mech = sasl_mech_name(mech);
	s->ses.auth_challenged = false;
	auth_submit(s, initial);
}

/*
 * A continuation line (SMTP_S_AUTH). A ban that began since the exchange
 * started (from another session) ends it here, before the step runs.
 */
static void
auth_continue(struct smtp_session *s, const char *line)
{
	if (session_auth_banned(&s->ses, sasl_authcid(s->ses.sasl),
				s->ses.auth_mech)) {
		sasl_free(&s->ses.sasl);
		close_banned(s);
		return;
	}
	auth_submit(s, line);
}

/*
 * A verdict from the auth thread. The ban is checked again here: another
 * session's failure may have begun one while this step ran, and then
 * neither a success nor the verdict of a failure may reach the client.
 * Failures are counted now, when they are decided; only the reply waits.
 * A credentials failure counts, and so does an exchange that ends after
 * our challenge in a cancel ("*") or an undecodable answer: otherwise a
 * client could ask for SCRAM salts or CRAM-MD5 challenges for free.
 */
static void
auth_result(struct smtp_session *s, enum sasl_status st, char *chal)
{
	const char *authcid = sasl_authcid(s->ses.sasl);
	char account[320], user[SASL_NAME_MAX + 1];

	/* the session's copy goes with sasl_free() below */
	snprintf(user, sizeof(user), "%s", authcid != NULL ? authcid : "");
	if (session_auth_banned(&s->ses, user, s->ses.auth_mech)) {
		free(chal);
		sasl_free(&s->ses.sasl);
		close_banned(s);
		return;
	}
	switch (st) {
	case SASL_CONTINUE:
		smtp_reply(s, "334 %s", chal != NULL ? chal : "");
		free(chal);
		s->ses.auth_challenged = true;
		s->state = SMTP_S_AUTH;
		return;
	case SASL_OK:
		if (auth_normalize(user, account, sizeof(account)) < 0) {
			/* the callbacks accepted no such name */
			st = SASL_FAIL_CREDENTIALS;
			break;
		}
		memcpy(s->account, account, sizeof(s->account));
		s->ses.logged_in = true;
		limits_auth_success(s->ses.srv->limits,
				    (struct sockaddr *)&s->ses.ss, account,
				    now_ms());
		log_event(LOG_INFO, "smtp", "auth",
			  LF_STR("session", s->ses.id),
			  LF_STR("ip", s->ses.ip), LF_STR("user", user),
			  LF_STR("mech", s->ses.auth_mech),
			  LF_STR("result", "ok"));
		metrics_auth(s->ses.auth_mech, true);
		sasl_free(&s->ses.sasl);
		s->state = SMTP_S_READY;
		smtp_reply(s, "235 2.7.0 Authentication successful");
		return;
	default:
		break;
	}
	free(chal);
	sasl_free(&s->ses.sasl);
	s->state = SMTP_S_READY;
	switch (st) {
	case SASL_CANCELLED:
	case SASL_FAIL_SYNTAX:
		if (!s->ses.auth_challenged) {
			if (st == SASL_CANCELLED)
				reply_error(s, 501, "5.0.0",
					    "Authentication cancelled");
			else
				reply_error(s, 501, "5.5.2",
					    "Error: cannot decode the response");
			return;
		}
		/* FALLTHROUGH */
	case SASL_FAIL_CREDENTIALS:
		if (!session_auth_failed(&s->ses, user, st)) {
			close_banned(s);
			return;
		}
		s->state = SMTP_S_AUTH_WAIT;
		return;
	case SASL_FAIL_TEMP:
		reply_error(s, 454, "4.7.0",
			    "Temporary authentication failure");
		return;
	default:
		reply_error(s, 501, "5.5.2",
			    "Error: cannot decode the response");
		return;
	}
}

static void
handle_command(struct smtp_session *s, const char *line, size_t len)
{
	struct smtp_command c;
	struct smtp_error err;

	if (smtp_parse_command(line, len, &c, &err) < 0) {
		reply_parse_error(s, &err);
		return;
	}
	switch (c.cmd) {
	case SMTP_CMD_EHLO:
		cmd_ehlo(s, &c, true);
		break;
	case SMTP_CMD_HELO:
		cmd_ehlo(s, &c, false);
		break;
	case SMTP_CMD_MAIL:
		cmd_mail(s, &c);
		break;
	case SMTP_CMD_RCPT:
		cmd_rcpt(s, &c);
		break;
	case SMTP_CMD_DATA:
		cmd_data(s);
		break;
	case SMTP_CMD_BDAT:
		if (!s->esmtp) {
			reply_error(s, 503, "5.5.1", "Error: BDAT needs EHLO");
			break;
		}
		cmd_bdat(s, &c);
		break;
	case SMTP_CMD_RSET:
		txn_reset(s);
		smtp_reply(s, "250 2.0.0 Ok");
		break;
	case SMTP_CMD_NOOP:
		smtp_reply(s, "250 2.0.0 Ok");
		break;
	case SMTP_CMD_QUIT:
		smtp_reply(s, "221 2.0.0 Bye");
		session_close(&s->ses, "quit");
		break;
	case SMTP_CMD_HELP:
		smtp_reply(s, "214 2.0.0 See RFC 5321 (godwit)");
		break;
	case SMTP_CMD_VRFY:
		cmd_vrfy(s, &c);
		break;
	case SMTP_CMD_EXPN:
		reply_error(s, 502, "5.5.1", "Error: EXPN is not available");
		break;
	case SMTP_CMD_STARTTLS:
		cmd_starttls(s);
		break;
	case SMTP_CMD_AUTH:
		cmd_auth(s, &c);
		break;
	case SMTP_CMD_UNKNOWN:
	default:
		reply_error(s, 500, "5.5.1", "Error: command not recognized");
		break;
	}
}

/* ---- finishing a message -------------------------------------------- */

static void
log_accept(struct smtp_session *s, const char *result, const char *sent)
{
	struct smtp_txn *t = s->txn;
	size_t len = 0, n;
	char *to;

	/* the recipients, comma-separated (a quoted local part keeps its
	 * quotes, so a comma inside one is no separator) */
	for (size_t i = 0; i < t->nrcpts; i++)
		len += strlen(t->rcpts[i].addr) + 1;
	to = xmalloc(len + 1);
	len = 0;
	for (size_t i = 0; i < t->nrcpts; i++) {
		if (i > 0)
			to[len++] = ',';
		n = strlen(t->rcpts[i].addr);
		memcpy(to + len, t->rcpts[i].addr, n);
		len += n;
	}
	to[len] = '\0';
	log_event(LOG_INFO, "smtp", "accept", LF_STR("session", s->ses.id),
		  LF_STR("queue", t->id), LF_STR("ip", s->ses.ip),
		  LF_STR("helo", s->helo), LF_STR("from", t->sender),
		  LF_STR("to", to), LF_UINT("rcpts", t->nrcpts),
		  LF_UINT("local", t->nmailboxes),
		  LF_UINT("remote", t->nremotes), LF_UINT("size", t->size),
		  LF_STR("result", result),
		  LF_STR_IF(sent != NULL, "sent_copy", sent));
	free(to);
}

static void
commit_done(struct delivery_job *job, void *arg)
{
	struct smtp_session *s = arg;

	s->job = NULL;
	if (job->result == 0) {
		smtp_reply(s, "250 2.0.0 Ok: queued as %s", job->id);
		log_accept(s, s->txn->nremotes > 0 ? "queued" : "delivered",
			   job->sent_mailbox);
		metrics_message(METRICS_MSG_ACCEPTED, 1);
		metrics_message(METRICS_MSG_DELIVERED, s->txn->nmailboxes);
		s->messages++;
	} else {
		smtp_reply(s, "451 4.3.0 Error: local error, try again later");
		log_event(LOG_ERR, "smtp", "error",
			  LF_STR("session", s->ses.id),
			  LF_STR("queue", job->id), LF_STR("ip", s->ses.ip),
			  LF_STR("reason", "commit"),
			  LF_STR("msg", job->error));
	}
	smtp_txn_refused(s);
}

void
smtp_txn_refused(struct smtp_session *s)
{
	if (s->state == SMTP_S_CLOSING)
		return;
	txn_reset(s);
	s->state = SMTP_S_READY;
	set_read_timeout(s, 0);
	maybe_shutdown(s);
	if (s->state != SMTP_S_CLOSING)
		session_process(&s->ses);
}

/* Who sent it, for the audit line (after the filters, which may have
 * changed the envelope's sender). */
static struct delivery_origin *
job_origin(const struct smtp_session *s, const struct delivery_job *job)
{
	const struct smtp_txn *t = s->txn;
	struct delivery_origin *o = xcalloc(1, sizeof(*o));

	o->ip = xstrdup(s->ses.ip);
	if (s->ses.logged_in && s->account[0] != '\0')
		o->user = xstrdup(s->account);
	o->sender = xstrdup(job->env != NULL ? job->env->sender : t->sender);
	o->rcpts = xcalloc(t->nrcpts + 1, sizeof(*o->rcpts));
	for (size_t i = 0; i < t->nrcpts; i++)
		o->rcpts[i] = xstrdup(t->rcpts[i].addr);
	o->nrcpts = t->nrcpts;
	return o;
}

void
smtp_commit(struct smtp_session *s, struct delivery_job *job)
{
	if (job->origin == NULL)
		job->origin = job_origin(s, job);
	job->done = commit_done;
	job->arg = s;
	s->job = job;
	/* input that arrives meanwhile waits in the buffer (bounded by the
	 * read high-watermark) until the reply is out */
	s->state = SMTP_S_COMMIT;
	/* the client waits for our reply now: no pause limit */
	set_read_timeout(s, 0);
	committer_submit(s->ses.srv->committer, job);
}

struct queue_envelope *
smtp_envelope_new(const struct smtp_session *s)
{
	const struct smtp_txn *t = s->txn;
	struct queue_envelope *e = xcalloc(1, sizeof(*e));

	memcpy(e->id, t->id, sizeof(e->id));
	e->arrival = (int64_t)time(NULL);
	e->client_ip = xstrdup(s->ses.ip);
	e->helo = xstrdup(s->helo != NULL ? s->helo : "");
	e->sender = xstrdup(t->sender);
	e->body = t->mail.body;
	e->smtputf8 = t->mail.smtputf8;
	e->ret = xstrdup(t->mail.ret == SMTP_RET_FULL   ? "FULL"
			 : t->mail.ret == SMTP_RET_HDRS ? "HDRS"
							: "");
	e->envid = xstrdup(t->mail.envid);
	e->auth = xstrdup(s->ses.logged_in ? s->account : "");
	return e;
}

/* The message's checks found nothing wrong: the delivery job. */
static struct delivery_job *
job_make(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	struct delivery_job *job = xcalloc(1, sizeof(*job));

	memcpy(job->id, t->id, sizeof(job->id));
	t->size = spool_size(t->spool);
	job->spool = t->spool;
	t->spool = NULL;
	job->local_hdr_len = t->local_hdr_len;
	job->vsize = spool_size(job->spool) + t->data.lines -
		     checks_filtered_lines(s) + t->hdr_lines;
	job->mailboxes = t->mailboxes;
	job->nmailboxes = t->nmailboxes;
	t->mailboxes = NULL;
	/* submission.save_sent: the account as it authenticated, whatever
	 * the envelope sender (one of its addresses or aliases) */
	if (s->config->submission.save_sent && s->ses.logged_in &&
	    s->account[0] != '\0')
		job->sent_mailbox = xstrdup(s->account);
	/* keep the count for the log line */
	if (t->nremotes > 0) {
		struct queue_envelope *e = smtp_envelope_new(s);

		for (size_t i = 0; i < t->nremotes; i++)
			queue_rcpt_add(e, t->remotes[i].addr,
				       t->remotes[i].notify,
				       t->remotes[i].orcpt);
		job->env = e;
	}
	return job;
}

static void content_out(struct smtp_session *s, const unsigned char *p,
			size_t n);

static void
content_end(struct smtp_session *s)
{
	struct smtp_txn *t = s->txn;
	const char *why = NULL;
	char text[160];
	unsigned char rest[AR_FILTER_HOLD];

	content_out(s, rest, checks_filter_end(s, rest));
	if (t->holding && !t->too_big && !t->io_error)
		smtp_header_done(s, true); /* a message that is all header */
	if (t->io_error) {
		reply_error(s, 451, "4.3.0", "Error: local error");
		why = "io-error";
	} else if (t->too_big) {
		reply_error(s, 552, "5.3.4",
			    "Error: message size exceeds fixed limit");
		why = "too-big";
	} else if (t->data.long_line) {
		snprintf(text, sizeof(text),
			 "Error: message has a line longer than %u octets "
			 "(RFC 5321 4.5.3.1.6)",
			 s->config->smtp.max_text_line);
		reply_error(s, 550, "5.6.0", text);
		why = "line-too-long";
	} else if (t->hdr_code != 0) {
		reply_error(s, t->hdr_code, t->hdr_enh, t->hdr_text);
		why = t->hdr_why;
	} else if (t->data.received > HOP_LIMIT) {
		reply_error(s, 554, "5.4.6",
			    "Error: too many hops (mail loop?)");
		why = "too-many-hops";
	}
	if (why != NULL) {
		if (t->hdr_code != 0 && strcmp(why, t->hdr_why) == 0)
			log_event(LOG_INFO, "smtp", "reject",
				  LF_STR("session", s->ses.id),
				  LF_STR("ip", s->ses.ip),
				  LF_STR("from", t->sender),
				  LF_STR("reason", why),
				  LF_UINT("code", t->hdr_code),
				  LF_STR("enh", t->hdr_enh),
				  LF_STR("header_addr", t->hdr_detail != NULL
							    ? t->hdr_detail
							    : ""));
		else
			log_event(LOG_INFO, "smtp", "reject",
				  LF_STR("session", s->ses.id),
				  LF_STR("ip", s->ses.ip),
				  LF_STR("from", t->sender),
				  LF_STR("reason", why));
		metrics_reject(why);
		if (s->state != SMTP_S_CLOSING) {
			txn_reset(s);
			set_read_timeout(s, 0);
		}
		return;
	}

	checks_end(s, job_make(s));
}

/* ---- input ---------------------------------------------------------- */

static void
bare_eol(struct smtp_session *s, const char *where)
{
	smtp_reply(s, "521 5.5.2 %s Error: bare <CR> or <LF> received; lines "
		 "must end with <CR><LF> (RFC 5321 2.3.8)",
	      s->config->hostname);
	s->errors++;	/* a 5xx like any other: counted */
	log_event(LOG_INFO, "smtp", "reject", LF_STR("session", s->ses.id),
		  LF_STR("ip", s->ses.ip), LF_STR("reason", "bare-eol"),
		  LF_STR("where", where));
	metrics_reject("bare-eol");
	session_close(&s->ses, "bare-eol");
}

#define HOLD_MAX (64 * 1024)

/* Stored-form content on its way to the spool (or, while the header is
 * held, into t->hold). */
static void
content_out(struct smtp_session *s, const unsigned char *p, size_t n)
{
	struct smtp_txn *t = s->txn;

	if (t->too_big || t->io_error || n == 0)
		return;
	if (t->data.size > s->config->smtp.max_message_size) {
		t->too_big = true;
		return;
	}
	if (t->holding) {
		if (t->hold.len + n > HOLD_MAX && !t->data.in_header &&
		    t->data.header_end >= t->hold.len &&
		    t->data.header_end <= HOLD_MAX) {
			/* the header ends in this piece, within the limit:
			 * hold it to its end, write the rest */
			size_t k = (size_t)t->data.header_end - t->hold.len;

			strbuf_add(&t->hold, p, k);
			smtp_header_done(s, true);
			p += k;
			n -= k;
		} else if (t->hold.len + n > HOLD_MAX) {
			smtp_header_done(s, false);
		} else {
			strbuf_add(&t->hold, p, n);
			if (!t->data.in_header)
				smtp_header_done(s, true);
			return;
		}
	}
	if (checks_write(s, p, n) < 0)
		t->io_error = true;
}

/* Feeds the parser with what is buffered. */
static void
content_feed(struct smtp_session *s, struct evbuffer *in, size_t max,
	     enum smtp_data_status *st_r, size_t *used_r)
{
	struct smtp_txn *t = s->txn;
	struct evbuffer_iovec v[8];
	unsigned char out[16384], filtered[sizeof(out) + AR_FILTER_HOLD];
	size_t used = 0;
	enum smtp_data_status st = SMTP_DATA_MORE;
	int n = evbuffer_peek(in, (ev_ssize_t)max, NULL, v, 8);

	/* at most 8 vectors at a time; the caller comes back for the rest */
	if (n > 8)
		n = 8;
	for (int i = 0; i < n && st == SMTP_DATA_MORE; i++) {
		const unsigned char *p = v[i].iov_base;
		size_t left = v[i].iov_len;
		if (used + left > max)
			left = max - used;
		while (left > 0 && st == SMTP_DATA_MORE) {
			size_t chunk = left < sizeof(out) ? left : sizeof(out);
			size_t olen, c;
			st = smtp_data_feed(&t->data, p, chunk, out, &olen, &c);
			content_out(s, filtered,
				    checks_filter(s, out, olen, filtered));
			p += c;
			left -= c;
			used += c;
		}
	}
	*st_r = st;
	*used_r = used;
}

/* DATA: returns true if the state changed (more work may be possible). */
static bool
data_process(struct smtp_session *s, struct evbuffer *in)
{
	size_t avail = evbuffer_get_length(in), used;
	enum smtp_data_status st;

	if (avail == 0)
		return false;
	content_feed(s, in, avail, &st, &used);
	evbuffer_drain(in, used);
	deadline_add_octets(&s->ses.deadline, used);
	if (st == SMTP_DATA_BARE_EOL) {
		bare_eol(s, "data");
		return false;
	}
	if (st == SMTP_DATA_END) {
		deadline_stop(&s->ses.deadline);
		content_end(s);
		return true;
	}
	return used > 0 && evbuffer_get_length(in) > 0;
}

static bool
bdat_process(struct smtp_session *s, struct evbuffer *in)
{
	struct smtp_txn *t = s->txn;
	size_t avail = evbuffer_get_length(in), take, used;
	enum smtp_data_status st = SMTP_DATA_MORE;

	take = avail < t->bdat_remaining ? avail : (size_t)t->bdat_remaining;
	if (take > 0) {
		if (t->bdat_bad || t->too_big || t->io_error ||
		    t->spool == NULL) {
			used = take;
		} else {
			content_feed(s, in, take, &st, &used);
			if (st == SMTP_DATA_BARE_EOL) {
				/* length-framed: refuse the message, keep
				 * the session */
				t->bdat_bad = true;
				t->bdat_code = 550;
				t->bdat_enh = "5.6.0";
				t->bdat_text = "Error: bare <CR> or <LF> in "
					       "message";
				used = take;
			}
		}
		evbuffer_drain(in, used);
		t->bdat_remaining -= used;
		deadline_add_octets(&s->ses.deadline, used);
	}
	if (t->bdat_remaining > 0)
		return take > 0 && evbuffer_get_length(in) > 0;
	deadline_stop(&s->ses.deadline);

	/* the chunk is complete */
	if (t->bdat_bad) {
		int code = t->bdat_code;
		const char *enh = t->bdat_enh, *text = t->bdat_text;
		s->state = t->nrcpts > 0 ? SMTP_S_RCPT : SMTP_S_READY;
		txn_reset(s);
		reply_error(s, code, enh, text);
		if (s->state != SMTP_S_CLOSING)
			set_read_timeout(s, 0);
		return true;
	}
	if (!t->bdat_last) {
		s->state = SMTP_S_RCPT;
		set_read_timeout(s, 0);
		smtp_reply(s, "250 2.0.0 Ok: %llu octets",
		      (unsigned long long)spool_size(t->spool));
		return true;
	}
	if (!t->too_big && !t->io_error) {
		unsigned char out[2], filtered[2 + AR_FILTER_HOLD];
		size_t olen;
		if (smtp_data_finish(&t->data, out, &olen) ==
		    SMTP_DATA_BARE_EOL) {
			s->state = SMTP_S_RCPT;
			txn_reset(s);
			reply_error(s, 550, "5.6.0",
				    "Error: bare <CR> at the end of message");
			return true;
		}
		content_out(s, filtered, checks_filter(s, out, olen, filtered));
	}
	s->state = SMTP_S_RCPT;
	content_end(s);
	return true;
}

/*
 * ops->next_line: the next command line. Returns 1 with the line (CRLF
 * removed, NUL-terminated) in buf, 0 if more input is needed, -1 if the
 * session is closing.
 */
static int
smtp_next_line(struct session *ses, struct evbuffer *in, char *buf,
	       size_t size, size_t *len_r)
{
	struct smtp_session *s = smtp(ses);
	/* SASL responses may be longer than commands (RFC 4954 4.) */
	size_t max = s->state == SMTP_S_AUTH ? size
					     : s->config->smtp.max_command_line;
	size_t n;
	int r;

	for (;;) {
		if ((r = line_take(&s->ses.line, in, max, buf, size, &n)) == 0)
			return 0;
		if (r < 0) {
			reply_error(s, 500, "5.5.2", "Error: line too long");
			if (s->state == SMTP_S_CLOSING)
				return -1;
			continue;
		}
		if (n < 2 || buf[n - 2] != '\r' ||
		    memchr(buf, '\r', n - 2) != NULL) {
			bare_eol(s, "command");
			return -1;
		}
		n -= 2;
		buf[n] = '\0';
		if (memchr(buf, '\0', n) != NULL) {
			reply_error(s, 500, "5.5.2",
				    "Error: NUL in command line");
			if (s->state == SMTP_S_CLOSING)
				return -1;
			continue;
		}
		*len_r = n;
		return 1;
	}
}

/* Input before the 220: the client did not wait for the greeting. */
static void
early_talker(struct smtp_session *s)
{
	smtp_reply(s, "554 5.5.1 %s Error: you talked before the greeting",
	      s->config->hostname);
	s->errors++;
	log_event(LOG_INFO, "smtp", "reject", LF_STR("session", s->ses.id),
		  LF_STR("ip", s->ses.ip), LF_STR("reason", "early-talker"));
	metrics_reject("early-talker");
	session_close(&s->ses, "early-talker");
}

/* ops->input: what the state does with input (session.h). */
static int
smtp_input(struct session *ses, struct evbuffer *in)
{
	struct smtp_session *s = smtp(ses);

	switch (s->state) {
	case SMTP_S_GREETING:
		if (evbuffer_get_length(in) > 0)
			early_talker(s);
		return -1;
	case SMTP_S_COMMIT:
	case SMTP_S_CHECK:
	case SMTP_S_FILTER:
	case SMTP_S_CLOSING:
	case SMTP_S_AUTH_WAIT:
	case SMTP_S_AUTH_BUSY:
	case SMTP_S_TLS:
		return -1;
	case SMTP_S_DATA:
		return data_process(s, in) ? 1 : -1;
	case SMTP_S_BDAT:
		return bdat_process(s, in) ? 1 : -1;
	default:
		return 0;
	}
}

static void
smtp_on_line(struct session *ses, char *line, size_t len)
{
	struct smtp_session *s = smtp(ses);

	if (s->state == SMTP_S_AUTH)
		auth_continue(s, line);
	else
		handle_command(s, line, len);
}

/* ---- start ---------------------------------------------------------- */

/* Admission's refusals (RFC 5321 3.1: 554 or 421). */
static void
smtp_refusal(const struct session_listener *l, enum session_refusal why,
	     const char *detail, char *buf, size_t size)
{
	const struct smtpd_settings *cf = l->settings;
	const char *host = cf->hostname;

	switch (why) {
	case SESSION_REFUSE_ACCESS:
		snprintf(buf, size, "554 5.7.1 %s Error: access denied\r\n",
			 host);
		break;
	case SESSION_REFUSE_LIMIT:
		snprintf(buf, size, "421 4.7.0 %s Error: %s\r\n", host, detail);
		break;
	case SESSION_REFUSE_BANNED:
		snprintf(buf, size,
			 "421 4.7.0 %s Error: too many failed logins "
			 "from your address\r\n",
			 host);
		break;
	}
}

static void
smtp_init(struct session *ses)
{
	struct smtp_session *s = smtp(ses);

	s->config = ses->listener->settings;
	s->listener = ses->listener->conf;
	s->ses.write_timeout_s = s->config->smtp.timeout_command;
	s->trusted = cidr_list_match(&s->config->smtp.trusted_networks,
				     (struct sockaddr *)&s->ses.ss);
	if (s->ses.tls_pending)
		s->state = SMTP_S_TLS;
}

static void
smtp_start(struct session *ses)
{
	struct smtp_session *s = smtp(ses);
	const struct config_listener *l = s->listener;
	uint64_t pause = l->greet_pause_ms;

	log_event(LOG_INFO, "smtp", "connect", LF_STR("session", s->ses.id),
		  LF_STR("ip", s->ses.ip), LF_STR("listener", l->name),
		  LF_STR_IF(s->ses.proxy[0] != '\0', "proxy", s->ses.proxy),
		  LF_BOOL("trusted", s->trusted));
	checks_connect(s);
	sf_connect_early(s);
	if (s->state == SMTP_S_TLS)
		return;		/* smtp_on_tls() greets */
	if (pause > 0 &&
	    !limits_greet_passed(s->ses.srv->limits,
				 (struct sockaddr *)&s->ses.ss, now_ms())) {
		struct timeval tv = {(time_t)(pause / 1000),
				     (suseconds_t)(pause % 1000) * 1000};
		s->state = SMTP_S_GREETING;
		smtp_reply(s, "220-%s ESMTP godwit", s->config->hostname);
		s->greet_timer = evtimer_new(s->ses.srv->base, greet_timer_cb,
					     s);
		evtimer_add(s->greet_timer, &tv);
		set_read_timeout(s, 0);
		return;
	}
	greet_final(s);
}

static const char *
smtp_ops_state_name(const struct session *ses)
{
	return smtp_state_name(((const struct smtp_session *)ses)->state);
}

const struct session_ops smtp_session_ops = {
	.name = "smtp",
	.size = sizeof(struct smtp_session),
	.input_high = INPUT_HIGH,
	.output_high = OUTPUT_HIGH,
	.refusal = smtp_refusal,
	.init = smtp_init,
	.start = smtp_start,
	.on_tls = smtp_on_tls,
	.input = smtp_input,
	.next_line = smtp_next_line,
	.on_line = smtp_on_line,
	.line_timeout = smtp_line_timeout,
	.timeout_reply = smtp_timeout_reply,
	.shutdown = smtp_shutdown,
	.closing = smtp_closing,
	.auth_done = smtp_auth_done,
	.auth_delay_done = smtp_auth_delay_done,
	.state_name = smtp_ops_state_name,
	.free = smtp_free,
};
