/*
 * The POP3 server session: RFC 1939 with CAPA, RESP-CODES and
 * AUTH-RESP-CODE (RFC 2449, RFC 3206), PIPELINING, STLS (RFC 2595),
 * implicit TLS on pop3s (RFC 8314) and SASL AUTH (RFC 5034).
 *
 * A session is a bufferevent plus an explicit state (enum pop3_state).
 * Commands are handled in order, one line at a time; while a multi-line
 * response is streamed (POP3_S_SENDING) or a password is being checked
 * (POP3_S_AUTH_BUSY) nothing further is read, so pipelined commands wait
 * in the input buffer (bounded by INPUT_HIGH).
 *
 * Passwords are checked on the worker's auth thread (auth.h): USER/PASS
 * runs there as a SASL PLAIN exchange, so both ways in share one
 * implementation, one cache and the same brute-force brakes as SMTP AUTH.
 *
 * The mailbox (mailbox.h) is locked and snapshot at login; DELE only
 * marks; the files are removed in the UPDATE state, after QUIT, and never
 * when the session ends any other way (RFC 1939 section 6). Messages are
 * streamed from the file through pop3_stream.h in MSG_CHUNK pieces while
 * the output buffer is below OUTPUT_HIGH: memory per session is bounded
 * whatever the message size.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "net/auth.h"
#include "net/listener.h"
#include "net/metrics.h"
#include "store/deliver.h"
#include "lib/base64.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "lib/log.h"
#include "store/mailbox.h"
#include "mail/pop3_parse.h"
#include "pop3d/pop3_server.h"
#include "mail/pop3_stream.h"
#include "net/sasl.h"
#include "net/session.h"

#define OUTPUT_HIGH (256 * 1024)   /* refill a stream below this */
#define OUTPUT_LOW (64 * 1024)	   /* write callback threshold */
#define INPUT_HIGH (64 * 1024)	   /* libevent stops reading past this */
#define MSG_CHUNK (64 * 1024)	   /* file read size while streaming */
#define SASL_LINE_MAX 4096	   /* an AUTH continuation line */
#define REPLY_MAX 512		   /* RFC 2449 section 4 */
#define MAX_ERRORS 10		   /* bad commands before we hang up */

enum send_kind { SEND_MSG, SEND_LIST, SEND_UIDL };

struct pop3_session {
	struct session ses;	/* first: the core's part ("USER" is the
				 * auth_mech of USER/PASS) */
	const struct pop3d_settings *config;
	const struct config_listener *listener;
	enum pop3_state state;
	char *user;		/* USER given, PASS awaited */
	char account[320];	/* normalised, once logged in */
	struct mailbox mb;	/* locked and scanned while logged in */
	size_t live;		/* messages not marked deleted */
	uint64_t live_size;	/* their octets */
	unsigned errors;
	unsigned retrieved;
	uint64_t retr_octets;	/* octets of RETR responses (not TOP) */
	bool sending_retr;	/* the stream is a RETR, not a TOP */
	/* the multi-line response being streamed (POP3_S_SENDING) */
	enum send_kind send_kind;
	int send_fd;
	uint64_t send_left;	/* octets of the file not read yet */
	size_t send_idx;
	struct pop3_stream stream;
};

static struct pop3_session *
pop3(struct session *ses)
{
	return (struct pop3_session *)ses;
}

const char *
pop3_state_name(enum pop3_state state)
{
	static const char *const names[] = {
		"TLS",		"AUTHORIZATION", "SASL",    "AUTH_BUSY",
		"AUTH_WAIT",	"TRANSACTION",	 "SENDING", "CLOSING",
	};
	if ((size_t)state < sizeof(names) / sizeof(names[0]))
		return names[state];
	return "UNKNOWN";
}

/* ---- replies -------------------------------------------------------- */

static void reply(struct pop3_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
reply(struct pop3_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	session_vreply(s->ses.bev, REPLY_MAX, fmt, ap);
	va_end(ap);
}

/*
 * A "-ERR" to a command; code is an RFC 2449/3206 response code without
 * brackets, or NULL. Too many and we hang up.
 */
static void
reply_err(struct pop3_session *s, const char *code, const char *text)
{
	if (code != NULL)
		reply(s, "-ERR [%s] %s", code, text);
	else
		reply(s, "-ERR %s", text);
	if (++s->errors >= MAX_ERRORS) {
		log_event(LOG_INFO, "pop3", "reject",
			  LF_STR("session", s->ses.id),
			  LF_STR("ip", s->ses.ip),
			  LF_STR("reason", "too-many-errors"),
			  LF_UINT("errors", s->errors));
		metrics_reject("too-many-errors");
		session_close(&s->ses, "too-many-errors");
	}
}

/* ---- session lifetime ----------------------------------------------- */

static void
send_stop(struct pop3_session *s)
{
	if (s->send_fd >= 0)
		close(s->send_fd);
	s->send_fd = -1;
}

static void
log_logout(struct pop3_session *s, const char *reason, size_t deleted,
	   size_t failed)
{
	log_event(LOG_INFO, "pop3", "logout", LF_STR("session", s->ses.id),
		  LF_STR("ip", s->ses.ip), LF_STR("user", s->account),
		  LF_STR("reason", reason), LF_UINT("retrieved", s->retrieved),
		  LF_UINT("deleted", deleted), LF_UINT("delete_failed", failed),
		  LF_UINT("octets", s->retr_octets));
}

/* ops->free: the logout and disconnect lines; the core frees the rest. */
static void
pop3_free(struct session *ses, const char *reason)
{
	struct pop3_session *s = pop3(ses);

	if (s->ses.logged_in)	/* ended without QUIT: nothing deleted */
		log_logout(s, reason, 0, 0);
	log_event(LOG_INFO, "pop3", "disconnect", LF_STR("session", s->ses.id),
		  LF_STR("ip", s->ses.ip), LF_STR("reason", reason),
		  LF_STR("state", pop3_state_name(s->state)),
		  LF_UINT("errors", s->errors),
		  LF_UINT("duration_ms", mono_ms() - s->ses.started_ms));
	send_stop(s);
	mailbox_close(&s->mb);
	if (s->user != NULL) {
		OPENSSL_cleanse(s->user, strlen(s->user));
		free(s->user);
	}
}

/*
 * session_close(): the logout and disconnect lines give the first reason
 * the session was closed for (docs/operations.md, "Disconnect reasons").
 */
static void
pop3_closing(struct session *ses)
{
	struct pop3_session *s = pop3(ses);

	send_stop(s);
	s->state = POP3_S_CLOSING;
}

/*
 * A command line must arrive whole within the autologout time (RFC 1939
 * section 3), before login within login_timeout (session_wait_line()
 * makes it shorter still while the server is under stress).
 */
static uint64_t
pop3_line_timeout(const struct session *ses)
{
	const struct pop3_session *s = (const struct pop3_session *)ses;

	return s->ses.logged_in ? s->config->pop3.timeout
				: s->config->pop3.login_timeout;
}

/* RFC 1939 section 3: the autologout timer; no UPDATE */
static void
pop3_timeout_reply(struct session *ses)
{
	reply(pop3(ses), "-ERR Disconnected: timeout exceeded");
}

/*
 * Writes what the session has to say now, from the callback that made
 * it, instead of waiting for libevent's next round: on a plain socket the
 * reply usually fits the kernel's buffer, and then no write interest is
 * ever registered. A POP3 client does one round trip per RETR, and the
 * epoll_ctl pair (add write, delete write) and the extra epoll_wait per
 * response were a third of the syscalls of a small RETR. EV_WRITE stays
 * enabled only while output is left over, which libevent then finishes
 * (and calls write_cb, which ends with settle() again). Every callback
 * that can add output ends with settle(); TLS sessions keep libevent's
 * usual way. (libevent freezes the start of a bufferevent's output
 * buffer outside its own write callback; we unfreeze it for our write.)
 */
static void send_more(struct pop3_session *s, bool from_cb);

static void
settle(struct session *ses)
{
	struct pop3_session *s = pop3(ses);
	struct evbuffer *out;
	int rounds;

	if (s->state == POP3_S_CLOSING || s->ses.tls || s->ses.tls_pending ||
	    bufferevent_get_underlying(s->ses.bev) != NULL)
		return;
	out = bufferevent_get_output(s->ses.bev);
	/* a stream the socket swallows whole is refilled here, a bounded
	 * number of times so that other sessions get their turn */
	for (rounds = 0; rounds < 16; rounds++) {
		if (evbuffer_get_length(out) > 0) {
			evbuffer_unfreeze(out, 1);
			if (evbuffer_write(out, bufferevent_getfd(s->ses.bev)) <
			    0) {
				/* EAGAIN, or an error libevent will report */
			}
			evbuffer_freeze(out, 1);
		}
		if (evbuffer_get_length(out) > 0 ||
		    s->state != POP3_S_SENDING)
			break;
		send_more(s, true);
	}
	if (s->state == POP3_S_CLOSING)
		return;		/* session_close() has set up the flush */
	if (evbuffer_get_length(out) > 0) {
		bufferevent_enable(s->ses.bev, EV_WRITE);
	} else if (s->state == POP3_S_SENDING) {
		/* out of rounds: come back through write_cb */
		bufferevent_enable(s->ses.bev, EV_WRITE);
		bufferevent_trigger(s->ses.bev, EV_WRITE,
				    BEV_TRIG_IGNORE_WATERMARKS |
					    BEV_TRIG_DEFER_CALLBACKS);
	} else {
		bufferevent_disable(s->ses.bev, EV_WRITE);
	}
}

static bool
idle(const struct pop3_session *s)
{
	return s->state == POP3_S_AUTHORIZATION ||
	       s->state == POP3_S_TRANSACTION || s->state == POP3_S_SASL;
}

/* After a command completes: honour a pending shutdown. */
static void
maybe_shutdown(struct pop3_session *s)
{
	if (!s->ses.srv->stopping || !idle(s))
		return;
	reply(s, "-ERR [SYS/TEMP] Server shutting down");
	session_close(&s->ses, "shutdown");
}

static void
pop3_shutdown(struct session *ses)
{
	maybe_shutdown(pop3(ses));
}

/* ---- capabilities --------------------------------------------------- */

/* USER/PASS and AUTH only under TLS unless the listener allows plaintext
 * (RFC 2595 section 2, RFC 8314). */
static bool
login_allowed(const struct pop3_session *s)
{
	return s->listener->auth && (s->ses.tls || s->listener->plaintext_auth);
}

static bool
stls_offered(const struct pop3_session *s)
{
	return s->listener->proto == PROTO_POP3 &&
	       s->ses.srv->tls_ctx != NULL && !s->ses.tls;
}

static void
mechanisms(const struct pop3_session *s, char *buf, size_t size)
{
	snprintf(buf, size, "PLAIN LOGIN SCRAM-SHA-256%s",
		 s->config->auth.cram_md5 ? " CRAM-MD5" : "");
}

/* RFC 2449: what is said depends on the state. */
static void
cmd_capa(struct pop3_session *s)
{
	char mechs[64];

	reply(s, "+OK Capability list follows");
	reply(s, "TOP");
	reply(s, "UIDL");
	reply(s, "RESP-CODES");
	reply(s, "AUTH-RESP-CODE");
	reply(s, "PIPELINING");
	if (!s->ses.logged_in) {
		if (login_allowed(s)) {
			mechanisms(s, mechs, sizeof(mechs));
			reply(s, "USER");
			reply(s, "SASL %s", mechs);
		}
		if (stls_offered(s))
			reply(s, "STLS");
	}
	if (s->config->pop3.login_delay > 0)
		reply(s, "LOGIN-DELAY %llu",
		      (unsigned long long)s->config->pop3.login_delay);
	if (s->config->retention.mail > 0)
		reply(s, "EXPIRE %llu",
		      (unsigned long long)(s->config->retention.mail / 86400));
	else
		reply(s, "EXPIRE NEVER");
	reply(s, "IMPLEMENTATION godwit");
	reply(s, ".");
}

/* ---- STLS (RFC 2595 section 4) -------------------------------------- */

/*
 * As with SMTP STARTTLS: whatever the client pipelined after STLS is
 * thrown away, never executed after the handshake (CVE-2011-0411).
 * session_starttls() turns writing on again, which settle() may have
 * turned off: the filter needs it.
 */
static void
cmd_stls(struct pop3_session *s)
{
	SSL *ssl;

	if (s->ses.tls) {
		reply_err(s, NULL, "TLS already active");
		return;
	}
	if (!stls_offered(s)) {
		reply_err(s, NULL, "STLS not available");
		return;
	}
	if (s->user != NULL) {
		/* RFC 2595 4: not after USER; start over under TLS */
		reply_err(s, NULL, "STLS not allowed after USER");
		return;
	}
	if ((ssl = session_ssl_new(&s->ses)) == NULL) {
		reply_err(s, "SYS/TEMP", "TLS not available");
		return;
	}
	reply(s, "+OK Begin TLS negotiation");
	if (session_starttls(&s->ses, ssl) < 0) {
		reply(s, "-ERR [SYS/TEMP] TLS not available");
		session_close(&s->ses, "tls-error");
	}
}

static void
greet(struct pop3_session *s)
{
	s->state = POP3_S_AUTHORIZATION;
	reply(s, "+OK %s POP3 server ready", s->config->hostname);
	session_wait_line(&s->ses);
}

static void
pop3_on_tls(struct session *ses)
{
	struct pop3_session *s = pop3(ses);

	if (s->state == POP3_S_TLS)
		greet(s);	/* implicit TLS: now the greeting */
}

/* ---- login ---------------------------------------------------------- */

static void
recount(struct pop3_session *s)
{
	s->live = 0;
	s->live_size = 0;
	for (size_t i = 0; i < s->mb.n; i++) {
		if (!s->mb.msgs[i].deleted) {
			s->live++;
			s->live_size += s->mb.msgs[i].size;
		}
	}
}

/*
 * The password was right: lock and snapshot the mailbox. A failure here
 * leaves the session in the AUTHORIZATION state; the client may retry.
 */
static void
login(struct pop3_session *s, const char *account)
{
	char *path = maildir_path(s->config->mail_dir, account);
	time_t last = 0, now = time(NULL);
	int r;

	if (path == NULL) {
		reply_err(s, "SYS/PERM", "No mailbox for this account");
		return;
	}
	r = mailbox_lock(&s->mb, path, &last);
	free(path);
	if (r == 1) {
		log_event(LOG_INFO, "pop3", "login-refused",
			  LF_STR("session", s->ses.id), LF_STR("ip", s->ses.ip),
			  LF_STR("user", account), LF_STR("reason", "in-use"));
		metrics_reject("in-use");
		reply_err(s, "IN-USE", "Mailbox is locked by another session");
		return;
	}
	if (r < 0) {
		log_event(LOG_ERR, "pop3", "login-refused",
			  LF_STR("session", s->ses.id), LF_STR("ip", s->ses.ip),
			  LF_STR("user", account),
			  LF_STR("reason", "lock-failed"),
			  LF_INT("errno", errno));
		metrics_reject("lock-failed");
		reply_err(s, "SYS/TEMP", "Cannot open the mailbox");
		return;
	}
	if (s->config->pop3.login_delay > 0 && last > 0 && now >= last &&
	    (uint64_t)(now - last) < s->config->pop3.login_delay) {
		mailbox_close(&s->mb);
		log_event(LOG_INFO, "pop3", "login-refused",
			  LF_STR("session", s->ses.id), LF_STR("ip", s->ses.ip),
			  LF_STR("user", account),
			  LF_STR("reason", "login-delay"));
		metrics_reject("login-delay");
		reply_err(s, "LOGIN-DELAY", "Logged in too recently");
		return;
	}
	if (mailbox_scan(&s->mb, 0) < 0) {
		log_event(LOG_ERR, "pop3", "login-refused",
			  LF_STR("session", s->ses.id), LF_STR("ip", s->ses.ip),
			  LF_STR("user", account),
			  LF_STR("reason", "scan-failed"),
			  LF_INT("errno", errno));
		metrics_reject("scan-failed");
		mailbox_close(&s->mb);
		reply_err(s, "SYS/TEMP", "Cannot read the mailbox");
		return;
	}
	mailbox_touch_login(&s->mb);
	snprintf(s->account, sizeof(s->account), "%s", account);
	s->ses.logged_in = true;
	s->state = POP3_S_TRANSACTION;
	recount(s);
	log_event(LOG_INFO, "pop3", "login", LF_STR("session", s->ses.id),
		  LF_STR("ip", s->ses.ip), LF_STR("user", account),
		  LF_STR("mech", s->ses.auth_mech), LF_BOOL("tls", s->ses.tls),
		  LF_UINT("messages", s->live),
		  LF_UINT("octets", s->live_size));
	reply(s, "+OK Logged in, %zu messages (%llu octets)", s->live,
	      (unsigned long long)s->live_size);
}

/* ---- authentication (USER/PASS and AUTH) ---------------------------- */

static void auth_result(struct pop3_session *s, enum sasl_status st,
			char *challenge);

static void
pop3_auth_done(struct session *ses, enum sasl_status st, char *chal)
{
	struct pop3_session *s = pop3(ses);

	auth_result(s, st, chal);
	if (s->state != POP3_S_AUTH_WAIT)
		session_process(&s->ses); /* commands pipelined behind */
}

static void
close_banned(struct pop3_session *s)
{
	reply(s, "-ERR [SYS/TEMP] too many failed logins from your address");
	session_close(&s->ses, "banned");
}

static bool
auth_banned(struct pop3_session *s, const char *user)
{
	return session_auth_banned(&s->ses, user, s->ses.auth_mech);
}

/*
 * The step (password hashing!) runs on the worker's auth thread. Every
 * PASS, AUTH and SASL line comes here: a ban that began since the session
 * opened ends it before the step runs.
 */
static void
auth_submit(struct pop3_session *s, const char *line)
{
	if (auth_banned(s, sasl_authcid(s->ses.sasl))) {
		sasl_free(&s->ses.sasl);
		close_banned(s);
		return;
	}
	s->state = POP3_S_AUTH_BUSY;
	session_auth_submit(&s->ses, line);
}

/* The delay after a failed login is over: its reply. */
static void
pop3_auth_delay_done(struct session *ses)
{
	struct pop3_session *s = pop3(ses);

	s->state = POP3_S_AUTHORIZATION;
	if (s->ses.auth_fail == SASL_CANCELLED)
		reply_err(s, NULL, "Authentication cancelled");
	else if (s->ses.auth_fail == SASL_FAIL_SYNTAX)
		reply_err(s, NULL, "Cannot decode the response");
	else
		reply_err(s, "AUTH", "Authentication failed");
	if (s->ses.auth_ban && s->state != POP3_S_CLOSING) {
		session_close(&s->ses, "banned");
		return;
	}
	session_process(&s->ses);
}

/* As in SMTP (smtp_server.c, auth_result): the same brakes. */
static void
auth_result(struct pop3_session *s, enum sasl_status st, char *chal)
{
	const char *authcid = sasl_authcid(s->ses.sasl);
	char account[320], user[SASL_NAME_MAX + 1];

	snprintf(user, sizeof(user), "%s", authcid != NULL ? authcid : "");
	if (auth_banned(s, user)) {
		free(chal);
		sasl_free(&s->ses.sasl);
		close_banned(s);
		return;
	}
	if (st == SASL_CONTINUE) {
		reply(s, "+ %s", chal != NULL ? chal : "");
		free(chal);
		s->ses.auth_challenged = true;
		s->state = POP3_S_SASL;
		return;
	}
	free(chal);
	sasl_free(&s->ses.sasl);
	s->state = POP3_S_AUTHORIZATION;
	if (st == SASL_OK &&
	    auth_normalize(user, account, sizeof(account)) < 0)
		st = SASL_FAIL_CREDENTIALS;	/* no such name can exist */
	switch (st) {
	case SASL_OK:
		limits_auth_success(s->ses.srv->limits,
				    (struct sockaddr *)&s->ses.ss, account,
				    now_ms());
		log_event(LOG_INFO, "pop3", "auth",
			  LF_STR("session", s->ses.id),
			  LF_STR("ip", s->ses.ip), LF_STR("user", user),
			  LF_STR("mech", s->ses.auth_mech),
			  LF_STR("result", "ok"));
		metrics_auth(s->ses.auth_mech, true);
		login(s, account);
		return;
	case SASL_CANCELLED:
	case SASL_FAIL_SYNTAX:
		if (!s->ses.auth_challenged) {
			reply_err(s, NULL,
				  st == SASL_CANCELLED
					  ? "Authentication cancelled"
					  : "Cannot decode the response");
			return;
		}
		/* FALLTHROUGH */
	case SASL_FAIL_CREDENTIALS:
		if (!session_auth_failed(&s->ses, user, st)) {
			close_banned(s);
			return;
		}
		s->state = POP3_S_AUTH_WAIT;
		return;
	case SASL_FAIL_TEMP:
		reply_err(s, "SYS/TEMP", "Temporary authentication failure");
		return;
	default:
		reply_err(s, NULL, "Cannot decode the response");
		return;
	}
}

static bool
check_login_allowed(struct pop3_session *s)
{
	if (!s->listener->auth) {
		reply_err(s, "SYS/PERM", "Logins are disabled here");
		return false;
	}
	if (!login_allowed(s)) {
		/* RFC 2595 section 4 and Dovecot's words */
		reply_err(s, "AUTH",
			  "Plaintext authentication disallowed on non-secure "
			  "(SSL/TLS) connections");
		return false;
	}
	return true;
}

static void
cmd_user(struct pop3_session *s, const struct pop3_command *c)
{
	if (!check_login_allowed(s))
		return;
	if (auth_banned(s, c->arg)) {
		close_banned(s);
		return;
	}
	free(s->user);
	s->user = xstrdup(c->arg);
	reply(s, "+OK");
}

/* USER/PASS is a PLAIN exchange with the initial response built here. */
static void
cmd_pass(struct pop3_session *s, const struct pop3_command *c)
{
	size_t ulen, plen;
	unsigned char *msg;
	char *b64;

	if (!check_login_allowed(s))
		return;
	if (s->user == NULL) {
		reply_err(s, NULL, "No username given (USER first)");
		return;
	}
	ulen = strlen(s->user);
	plen = strlen(c->arg);
	msg = xmalloc(ulen + plen + 2);
	msg[0] = '\0';
	memcpy(msg + 1, s->user, ulen);
	msg[ulen + 1] = '\0';
	memcpy(msg + ulen + 2, c->arg, plen);
	b64 = base64_encode_alloc(msg, ulen + plen + 2);
	OPENSSL_cleanse(msg, ulen + plen + 2);
	free(msg);
	OPENSSL_cleanse(s->user, ulen);
	xfree(&s->user);
	s->ses.sasl = sasl_start(SASL_PLAIN, &auth_userdb_creds,
			     authq_creds_ctx(s->ses.srv->authq),
			     s->config->hostname);
	if (s->ses.sasl == NULL || b64 == NULL) {
		if (b64 != NULL) {
			OPENSSL_cleanse(b64, strlen(b64));
			free(b64);
		}
		reply_err(s, "SYS/TEMP", "Temporary authentication failure");
		return;
	}
	s->ses.auth_mech = "USER";
	s->ses.auth_challenged = false;
	auth_submit(s, b64);
	OPENSSL_cleanse(b64, strlen(b64));
	free(b64);
}

static void
cmd_auth(struct pop3_session *s, const struct pop3_command *c)
{
	enum sasl_mech mech;
	char mechs[64];

	if (c->arg == NULL) {
		/* the pre-RFC 5034 listing some clients still ask for */
		if (!login_allowed(s)) {
			reply(s, "+OK");
			reply(s, ".");
			return;
		}
		mechanisms(s, mechs, sizeof(mechs));
		reply(s, "+OK");
		for (char *p = strtok(mechs, " "); p != NULL;
		     p = strtok(NULL, " "))
			reply(s, "%s", p);
		reply(s, ".");
		return;
	}
	if (!check_login_allowed(s))
		return;
	if (sasl_mech_from_name(c->arg, &mech) < 0 ||
	    (mech == SASL_CRAM_MD5 && !s->config->auth.cram_md5) ||
	    (s->ses.sasl = sasl_start(mech, &auth_userdb_creds,
				  authq_creds_ctx(s->ses.srv->authq),
				  s->config->hostname)) == NULL) {
		reply_err(s, NULL, "Unsupported authentication mechanism");
		return;
	}
	xfree(&s->user);
	s->ses.auth_mech = sasl_mech_name(mech);
	s->ses.auth_challenged = false;
	auth_submit(s, c->arg2);
}

/* ---- the TRANSACTION state ------------------------------------------ */

/* Message n of the snapshot, or NULL after a "-ERR". */
static struct mailbox_msg *
message(struct pop3_session *s, unsigned long n)
{
	struct mailbox_msg *m;

	if (n == 0 || n > s->mb.n) {
		reply_err(s, NULL, "No such message");
		return NULL;
	}
	m = &s->mb.msgs[n - 1];
	if (m->deleted) {
		reply_err(s, NULL, "Message is deleted");
		return NULL;
	}
	return m;
}

static void
start_send(struct pop3_session *s, enum send_kind kind)
{
	s->send_kind = kind;
	s->send_idx = 0;
	s->state = POP3_S_SENDING;
	/* refill when the output falls below OUTPUT_LOW */
	bufferevent_setwatermark(s->ses.bev, EV_WRITE, OUTPUT_LOW, 0);
}

static void
cmd_list(struct pop3_session *s, const struct pop3_command *c,
	 enum send_kind kind)
{
	struct mailbox_msg *m;

	if (c->has_msg) {
		if ((m = message(s, c->msg)) == NULL)
			return;
		if (kind == SEND_LIST)
			reply(s, "+OK %lu %llu", c->msg,
			      (unsigned long long)m->size);
		else
			reply(s, "+OK %lu %s", c->msg, m->uidl);
		return;
	}
	if (kind == SEND_LIST)
		reply(s, "+OK %zu messages (%llu octets)", s->live,
		      (unsigned long long)s->live_size);
	else
		reply(s, "+OK");
	start_send(s, kind);
}

static void
cmd_retr(struct pop3_session *s, const struct pop3_command *c, bool top)
{
	struct mailbox_msg *m;
	uint64_t fsize;
	int fd;

	if ((m = message(s, c->msg)) == NULL)
		return;
	if ((fd = mailbox_open(&s->mb, c->msg - 1, &fsize)) < 0) {
		if (errno == ENOENT)
			reply_err(s, "SYS/PERM", "Message was removed");
		else
			reply_err(s, "SYS/TEMP", "Cannot read the message");
		log_event(LOG_WARNING, "pop3", "read-error",
			  LF_STR("session", s->ses.id),
			  LF_STR("user", s->account),
			  LF_STR("message", m->uidl), LF_INT("errno", errno));
		return;
	}
	if (fsize > MSG_CHUNK)
		posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	s->send_fd = fd;
	s->send_left = fsize;
	s->sending_retr = !top;
	if (top) {
		pop3_stream_init_top(&s->stream, c->lines);
		reply(s, "+OK");
	} else {
		pop3_stream_init(&s->stream);
		m->retrieved = true;
		s->retrieved++;
		reply(s, "+OK %llu octets", (unsigned long long)m->size);
	}
	start_send(s, SEND_MSG);
}

static void
cmd_dele(struct pop3_session *s, const struct pop3_command *c)
{
	struct mailbox_msg *m;

	if ((m = message(s, c->msg)) == NULL)
		return;
	m->deleted = true;
	s->live--;
	s->live_size -= m->size;
	reply(s, "+OK Marked to be deleted");
}

static void
cmd_rset(struct pop3_session *s)
{
	for (size_t i = 0; i < s->mb.n; i++)
		s->mb.msgs[i].deleted = false;
	recount(s);
	reply(s, "+OK %zu messages (%llu octets)", s->live,
	      (unsigned long long)s->live_size);
}

/* QUIT in TRANSACTION: the UPDATE state (RFC 1939 section 6). */
static void
cmd_quit_update(struct pop3_session *s)
{
	size_t failed = 0, removed = mailbox_commit(&s->mb, &failed);

	/* unlocked before the reply, so that the client's next login,
	 * however quick, finds the mailbox free */
	mailbox_close(&s->mb);
	log_logout(s, "quit", removed, failed);
	s->ses.logged_in = false;
	if (failed > 0)
		reply(s, "-ERR [SYS/TEMP] %zu messages could not be deleted",
		      failed);
	else
		reply(s, "+OK Logging out, %zu messages deleted", removed);
	session_close(&s->ses, "quit");
}

/* ---- streaming ------------------------------------------------------ */

/* One piece of the message; false when it is complete (or failed). */
static bool
send_msg_chunk(struct pop3_session *s, struct evbuffer *out)
{
	unsigned char in[MSG_CHUNK], end[POP3_STREAM_END_MAX];
	struct evbuffer_iovec v;
	size_t used, n;
	ssize_t r;

	/* a Maildir file does not change: what fstat saw at the open is
	 * the message, and the read that would only say EOF is saved */
	r = pop3_stream_done(&s->stream) || s->send_left == 0
		    ? 0
		    : read(s->send_fd, in, sizeof(in));
	if (r < 0) {
		if (errno == EINTR)
			return true;
		/* the +OK is out: all we can do is hang up (RFC 1939 has
		 * no way to take a response back) */
		log_event(LOG_ERR, "pop3", "read-error",
			  LF_STR("session", s->ses.id),
			  LF_STR("user", s->account),
			  LF_INT("errno", errno));
		session_close(&s->ses, "read-error");
		return false;
	}
	if (r == 0) {
		n = pop3_stream_end(&s->stream, end);
		evbuffer_add(out, end, n);
		send_stop(s);
		return false;
	}
	if (evbuffer_reserve_space(out, (ev_ssize_t)(2 * (size_t)r), &v,
				   1) < 1) {
		session_close(&s->ses, "no-memory");
		return false;
	}
	if ((uint64_t)r > s->send_left)
		r = (ssize_t)s->send_left;
	s->send_left -= (uint64_t)r;
	n = pop3_stream_run(&s->stream, in, (size_t)r, v.iov_base, &used);
	v.iov_len = n;
	evbuffer_commit_space(out, &v, 1);
	if (s->sending_retr)
		s->retr_octets += n;
	return true;
}

/* Up to 1000 lines of a LIST or UIDL listing; false when it is complete. */
static bool
send_list_chunk(struct pop3_session *s, struct evbuffer *out)
{
	for (unsigned k = 0; k < 1000; k++) {
		struct mailbox_msg *m;
		if (s->send_idx >= s->mb.n) {
			evbuffer_add(out, ".\r\n", 3);
			return false;
		}
		m = &s->mb.msgs[s->send_idx++];
		if (m->deleted)
			continue;
		if (s->send_kind == SEND_LIST)
			evbuffer_add_printf(out, "%zu %llu\r\n", s->send_idx,
					    (unsigned long long)m->size);
		else
			evbuffer_add_printf(out, "%zu %s\r\n", s->send_idx,
					    m->uidl);
	}
	return true;
}

/*
 * Fills the output up to OUTPUT_HIGH; the write callback calls again.
 * from_cb: called by the write callback, so pipelined commands behind the
 * response are ours to start (otherwise the command loop that started
 * the response goes on by itself: no recursion per pipelined command).
 */
static void
send_more(struct pop3_session *s, bool from_cb)
{
	struct evbuffer *out = bufferevent_get_output(s->ses.bev);
	bool more = true;

	while (more && s->state == POP3_S_SENDING &&
	       evbuffer_get_length(out) < OUTPUT_HIGH) {
		if (s->send_kind == SEND_MSG)
			more = send_msg_chunk(s, out);
		else
			more = send_list_chunk(s, out);
	}
	if (!more && s->state == POP3_S_SENDING) {
		s->state = POP3_S_TRANSACTION;
		bufferevent_setwatermark(s->ses.bev, EV_WRITE, 0, 0);
		maybe_shutdown(s);
		if (from_cb)
			session_process(&s->ses);
	}
}

/* ---- commands ------------------------------------------------------- */

static void
handle_authorization(struct pop3_session *s, const struct pop3_command *c)
{
	switch (c->cmd) {
	case POP3_CMD_CAPA:
		cmd_capa(s);
		break;
	case POP3_CMD_STLS:
		cmd_stls(s);
		break;
	case POP3_CMD_USER:
		cmd_user(s, c);
		break;
	case POP3_CMD_PASS:
		cmd_pass(s, c);
		break;
	case POP3_CMD_AUTH:
		cmd_auth(s, c);
		break;
	case POP3_CMD_QUIT:
		reply(s, "+OK Bye");
		session_close(&s->ses, "quit");
		break;
	default:
		reply_err(s, NULL, "Not logged in (USER/PASS or AUTH first)");
		break;
	}
}

static void
handle_transaction(struct pop3_session *s, const struct pop3_command *c)
{
	switch (c->cmd) {
	case POP3_CMD_CAPA:
		cmd_capa(s);
		break;
	case POP3_CMD_STAT:
		reply(s, "+OK %zu %llu", s->live,
		      (unsigned long long)s->live_size);
		break;
	case POP3_CMD_LIST:
		cmd_list(s, c, SEND_LIST);
		break;
	case POP3_CMD_UIDL:
		cmd_list(s, c, SEND_UIDL);
		break;
	case POP3_CMD_RETR:
		cmd_retr(s, c, false);
		break;
	case POP3_CMD_TOP:
		cmd_retr(s, c, true);
		break;
	case POP3_CMD_DELE:
		cmd_dele(s, c);
		break;
	case POP3_CMD_NOOP:
		reply(s, "+OK");
		break;
	case POP3_CMD_RSET:
		cmd_rset(s);
		break;
	case POP3_CMD_QUIT:
		cmd_quit_update(s);
		break;
	case POP3_CMD_USER:
	case POP3_CMD_PASS:
	case POP3_CMD_AUTH:
	case POP3_CMD_STLS:
		reply_err(s, NULL, "Already logged in");
		break;
	default:
		reply_err(s, NULL, "Unknown command");
		break;
	}
}

static void
handle_command(struct pop3_session *s, char *line, size_t len)
{
	struct pop3_command c;
	const char *error;

	if (pop3_parse(line, len, &c, &error) < 0) {
		log_event(LOG_DEBUG, "pop3", "bad-command",
			  LF_STR("session", s->ses.id), LF_STR("ip", s->ses.ip),
			  LF_STR("cmd", pop3_cmd_name(c.cmd)));
		reply_err(s, NULL, error);
		return;
	}
	if (s->state == POP3_S_AUTHORIZATION)
		handle_authorization(s, &c);
	else
		handle_transaction(s, &c);
	if (s->state == POP3_S_SENDING)
		send_more(s, false);
}

/*
 * ops->next_line: the next line (LF or CRLF ended: RFC 1939 says CRLF,
 * but some clients end lines with LF alone, and nothing in POP3 makes the
 * difference dangerous). Returns 1 with the line NUL-terminated in buf, 0
 * if more input is needed, -1 if the session is closing.
 */
static int
pop3_next_line(struct session *ses, struct evbuffer *in, char *buf,
	       size_t size, size_t *len_r)
{
	struct pop3_session *s = pop3(ses);
	size_t max = s->state == POP3_S_SASL ? SASL_LINE_MAX + 2
					     : POP3_LINE_MAX + 2;
	size_t n;
	int r;

	if (max > size)
		max = size;
	for (;;) {
		if ((r = line_take(&s->ses.line, in, max, buf, size, &n)) == 0)
			return 0;
		if (r < 0) {
			reply_err(s, NULL, "Line too long");
			if (s->state == POP3_S_CLOSING)
				return -1;
			continue;
		}
		n--;
		if (n > 0 && buf[n - 1] == '\r')
			n--;
		buf[n] = '\0';
		if (memchr(buf, '\0', n) != NULL ||
		    memchr(buf, '\r', n) != NULL) {
			reply_err(s, NULL, "Invalid characters in line");
			if (s->state == POP3_S_CLOSING)
				return -1;
			continue;
		}
		*len_r = n;
		return 1;
	}
}

/* ops->input: lines are read in these states only. */
static int
pop3_input(struct session *ses, struct evbuffer *in)
{
	(void)in;
	switch (pop3(ses)->state) {
	case POP3_S_AUTHORIZATION:
	case POP3_S_TRANSACTION:
	case POP3_S_SASL:
		return 0;
	default:
		return -1;
	}
}

static void
pop3_on_line(struct session *ses, char *line, size_t len)
{
	struct pop3_session *s = pop3(ses);

	if (s->state == POP3_S_SASL)
		auth_submit(s, line);
	else
		handle_command(s, line, len);
	OPENSSL_cleanse(line, len);	/* PASS, AUTH */
}

/* The output fell below OUTPUT_LOW: more of the response. */
static bool
pop3_drained(struct session *ses)
{
	struct pop3_session *s = pop3(ses);

	if (s->state != POP3_S_SENDING)
		return false;
	send_more(s, true);
	return true;
}

/* ---- start ---------------------------------------------------------- */

/* Admission's refusals, with RFC 2449 response codes. */
static void
pop3_refusal(const struct session_listener *l, enum session_refusal why,
	     const char *detail, char *buf, size_t size)
{
	(void)l;
	switch (why) {
	case SESSION_REFUSE_ACCESS:
		snprintf(buf, size, "-ERR [SYS/PERM] access denied\r\n");
		break;
	case SESSION_REFUSE_LIMIT:
		snprintf(buf, size, "-ERR [SYS/TEMP] %s\r\n", detail);
		break;
	case SESSION_REFUSE_BANNED:
		snprintf(buf, size, "-ERR [SYS/TEMP] too many failed logins "
				    "from your address\r\n");
		break;
	}
}

static void
pop3_init(struct session *ses)
{
	struct pop3_session *s = pop3(ses);

	s->config = ses->listener->settings;
	s->listener = ses->listener->conf;
	/* the write timeout catches a client that stops reading a
	 * response; what the client sends is bounded by deadlines */
	s->ses.write_timeout_s = s->config->pop3.timeout;
	s->send_fd = -1;
	s->mb.lock_fd = -1;
	if (s->ses.tls_pending)
		s->state = POP3_S_TLS;
}

static void
pop3_start(struct session *ses)
{
	struct pop3_session *s = pop3(ses);

	log_event(LOG_INFO, "pop3", "connect", LF_STR("session", s->ses.id),
		  LF_STR("ip", s->ses.ip),
		  LF_STR("listener", s->listener->name),
		  LF_STR_IF(s->ses.proxy[0] != '\0', "proxy", s->ses.proxy),
		  LF_STR("tls", s->ses.tls_pending ? "implicit" : "no"));
	if (!s->ses.tls_pending)
		greet(s);
}

static const char *
pop3_ops_state_name(const struct session *ses)
{
	return pop3_state_name(((const struct pop3_session *)ses)->state);
}

const struct session_ops pop3_session_ops = {
	.name = "pop3",
	.size = sizeof(struct pop3_session),
	.input_high = INPUT_HIGH,
	.output_high = OUTPUT_HIGH,
	.refusal = pop3_refusal,
	.init = pop3_init,
	.start = pop3_start,
	.on_tls = pop3_on_tls,
	.input = pop3_input,
	.next_line = pop3_next_line,
	.on_line = pop3_on_line,
	.line_timeout = pop3_line_timeout,
	.timeout_reply = pop3_timeout_reply,
	.shutdown = pop3_shutdown,
	.closing = pop3_closing,
	.auth_done = pop3_auth_done,
	.auth_delay_done = pop3_auth_delay_done,
	.drained = pop3_drained,
	.flush = settle,
	.state_name = pop3_ops_state_name,
	.free = pop3_free,
};
