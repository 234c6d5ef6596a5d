/*
 * The IMAP commands of any state and of the not-authenticated state
 * (RFC 9051 sections 6.1 and 6.2): CAPABILITY, NOOP, LOGOUT, STARTTLS
 * (RFC 9051 section 6.2.1), AUTHENTICATE (PLAIN, SCRAM-SHA-256, with
 * SASL-IR, RFC 4959), LOGIN, ENABLE (RFC 5161) and ID (RFC 2971); and
 * the login itself.
 *
 * Passwords are checked on the worker's auth thread (net/auth.h) with
 * the same brute-force brakes as SMTP and POP3 (net/session.h): LOGIN
 * runs there as a SASL PLAIN exchange, as POP3's USER/PASS does. Logins
 * are refused before TLS unless the listener allows plaintext
 * (LOGINDISABLED, RFC 9051 section 6.2.3).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "imapd/imap_core.h"
#include "lib/base64.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "net/auth.h"
#include "net/metrics.h"
#include "net/sasl.h"
#include "net/session.h"
#include "store/deliver.h"
#include "store/imap_store.h"

#define ID_FIELDS_MAX 30	/* RFC 2971 section 3.3 */
#define ID_LOG_MAX 64		/* of a client's name and version */

static struct imap_core *
core_of(struct imap_session *s)
{
	return (struct imap_core *)s;
}

/* ---- any state ------------------------------------------------------ */

static void
cmd_capability(struct imap_session *s, const struct imap_command *c)
{
	char caps[512];

	if (c->nargs > 0) {
		imap_done(s, "BAD", NULL, "CAPABILITY takes no arguments");
		return;
	}
	imap_capabilities(core_of(s), caps, sizeof(caps));
	imap_untagged(s, "CAPABILITY %s", caps);
	imap_done(s, "OK", NULL, "CAPABILITY completed");
}

static void
cmd_noop(struct imap_session *s, const struct imap_command *c)
{
	if (c->nargs > 0) {
		imap_done(s, "BAD", NULL, "NOOP takes no arguments");
		return;
	}
	if (s->state == IMAP_S_SELECTED)
		imap_sync_report(s, true);
	imap_done(s, "OK", NULL, "NOOP completed");
}

static void
cmd_logout(struct imap_session *s, const struct imap_command *c)
{
	if (c->nargs > 0) {
		imap_done(s, "BAD", NULL, "LOGOUT takes no arguments");
		return;
	}
	imap_untagged(s, "BYE Logging out");
	imap_done(s, "OK", NULL, "LOGOUT completed");
	session_close(&s->ses, "logout");
}

/* ---- STARTTLS ------------------------------------------------------- */

/*
 * Whatever the client pipelined after STARTTLS is thrown away, never run
 * after the handshake (CVE-2011-0411): session_starttls() drains the
 * input, and the parser forgets any half of a command.
 */
static void
cmd_starttls(struct imap_session *s, const struct imap_command *c)
{
	struct imap_core *core = core_of(s);
	SSL *ssl;

	if (c->nargs > 0) {
		imap_done(s, "BAD", NULL, "STARTTLS takes no arguments");
		return;
	}
	if (s->ses.tls) {
		imap_done(s, "BAD", NULL, "TLS is already active");
		return;
	}
	if (!imap_starttls_offered(core)) {
		imap_done(s, "NO", NULL, "STARTTLS is not available");
		return;
	}
	if ((ssl = session_ssl_new(&s->ses)) == NULL) {
		imap_done(s, "NO", "UNAVAILABLE", "TLS is not available");
		return;
	}
	/* the OK goes out in clear, before the handshake begins */
	imap_done(s, "OK", NULL, "Begin TLS negotiation now");
	imap_parser_reset(s->parser);
	if (session_starttls(&s->ses, ssl) < 0) {
		imap_untagged(s, "BYE TLS is not available");
		session_close(&s->ses, "tls-error");
	}
}

/* ---- login ---------------------------------------------------------- */

void
imap_user_release(struct imap_core *c)
{
	if (!c->counted_user)
		return;
	limits_user_disconnect(c->s.ses.srv->limits, c->s.ses.srv->slot,
			       c->s.account);
	c->counted_user = false;
}

/* imap.max_connections_per_user: one more session for account? */
static bool
user_slot(struct imap_core *c, const char *account)
{
	uint64_t max = c->s.config->imap.max_connections_per_user;
	unsigned n;

	if (limits_user_connect(c->s.ses.srv->limits, c->s.ses.srv->slot,
				account, (unsigned)max, now_ms(), &n)) {
		c->counted_user = true;
		return true;
	}
	log_event(LOG_INFO, "imap", "reject", LF_STR("session", c->s.ses.id),
		  LF_STR("ip", c->s.ses.ip), LF_STR("user", account),
		  LF_STR("reason", "user-connections"), LF_UINT("count", n),
		  LF_UINT("max", max));
	metrics_reject("user-connections");
	imap_done(&c->s, "NO", "LIMIT",
		  "Too many sessions for this account (%u)", n);
	return false;
}

/* The password was right: the account's mail. */
static void
login(struct imap_core *c, const char *account)
{
	struct imap_session *s = &c->s;
	char caps[512];

	if (!user_slot(c, account))
		return;
	snprintf(s->account, sizeof(s->account), "%s", account);
	s->maildir = maildir_path(s->config->mail_dir, account);
	if (s->maildir == NULL) {
		log_event(LOG_ERR, "imap", "login-refused",
			  LF_STR("session", s->ses.id), LF_STR("ip", s->ses.ip),
			  LF_STR("user", account), LF_STR("reason", "no-mailbox"));
		metrics_reject("no-mailbox");
		imap_user_release(c);
		imap_done(s, "NO", "UNAVAILABLE", "No mailbox for this account");
		return;
	}
	/* an account that never got mail has no Maildir yet: made here,
	 * with the special-use folders */
	if (imap_store_open(s->maildir, &s->store) < 0) {
		log_event(LOG_ERR, "imap", "login-refused",
			  LF_STR("session", s->ses.id), LF_STR("ip", s->ses.ip),
			  LF_STR("user", account),
			  LF_STR("reason", "maildir-failed"),
			  LF_INT("errno", errno));
		metrics_reject("maildir-failed");
		xfree(&s->maildir);
		imap_user_release(c);
		imap_done(s, "NO", "SERVERBUG", "Cannot open the mailbox");
		return;
	}
	s->ses.logged_in = true;
	s->state = IMAP_S_AUTH;
	log_event(LOG_INFO, "imap", "login", LF_STR("session", s->ses.id),
		  LF_STR("ip", s->ses.ip), LF_STR("user", account),
		  LF_STR("mech", s->ses.auth_mech), LF_BOOL("tls", s->ses.tls));
	imap_capabilities(c, caps, sizeof(caps));
	imap_done(s, "OK", NULL, "[CAPABILITY %s] Logged in", caps);
}

void
imap_close_banned(struct imap_core *c)
{
	imap_untagged(&c->s, "BYE Too many failed logins from your address");
	session_close(&c->s.ses, "banned");
}

static bool
auth_banned(struct imap_core *c, const char *user)
{
	return session_auth_banned(&c->s.ses, user, c->s.ses.auth_mech);
}

/* A step on the auth thread; every line of an exchange comes here. */
static void
auth_submit(struct imap_core *c, const char *line)
{
	c->s.line_hook = NULL;
	if (auth_banned(c, sasl_authcid(c->s.ses.sasl))) {
		sasl_free(&c->s.ses.sasl);
		imap_close_banned(c);
		return;
	}
	session_auth_submit(&c->s.ses, line);
}

/* AUTHENTICATE: the client's response line. */
static void
auth_line(struct imap_session *s, char *line, size_t len)
{
	struct imap_core *c = core_of(s);

	(void)len;
	if (sasl_is_cancel(line)) {
		/* RFC 9051 section 6.2.2: "*" cancels, BAD */
		sasl_free(&s->ses.sasl);
		imap_done(s, "BAD", NULL, "Authentication cancelled");
		return;
	}
	auth_submit(c, line);
	OPENSSL_cleanse(line, len);
}

static void
auth_ok(struct imap_core *c, const char *user, const char *account)
{
	limits_auth_success(c->s.ses.srv->limits,
			    (struct sockaddr *)&c->s.ses.ss, account, now_ms());
	log_event(LOG_INFO, "imap", "auth", LF_STR("session", c->s.ses.id),
		  LF_STR("ip", c->s.ses.ip), LF_STR("user", user),
		  LF_STR("mech", c->s.ses.auth_mech), LF_STR("result", "ok"));
	metrics_auth(c->s.ses.auth_mech, true);
	login(c, account);
}

/* ops->auth_done: as in POP3 (pop3_server.c, auth_result). */
void
imap_auth_done(struct session *ses, enum sasl_status st, char *chal)
{
	struct imap_core *c = imap_core(ses);
	const char *authcid = sasl_authcid(ses->sasl);
	char account[320], user[SASL_NAME_MAX + 1];

	snprintf(user, sizeof(user), "%s", authcid != NULL ? authcid : "");
	if (auth_banned(c, user)) {
		free(chal);
		sasl_free(&ses->sasl);
		imap_close_banned(c);
		return;
	}
	if (st == SASL_CONTINUE) {
		evbuffer_add_printf(imap_out(&c->s), "+ %s\r\n",
				    chal != NULL ? chal : "");
		free(chal);
		ses->auth_challenged = true;
		c->s.line_hook = auth_line;
		session_process(ses);
		return;
	}
	free(chal);
	sasl_free(&ses->sasl);
	if (st == SASL_OK && auth_normalize(user, account, sizeof(account)) < 0)
		st = SASL_FAIL_CREDENTIALS;	/* no such name can exist */
	switch (st) {
	case SASL_OK:
		auth_ok(c, user, account);
		return;
	case SASL_CANCELLED:
	case SASL_FAIL_SYNTAX:
		if (!ses->auth_challenged) {
			imap_done(&c->s, "BAD", NULL,
				  st == SASL_CANCELLED
					  ? "Authentication cancelled"
					  : "Cannot decode the response");
			return;
		}
		/* FALLTHROUGH */
	case SASL_FAIL_CREDENTIALS:
		if (!session_auth_failed(ses, user, st))
			imap_close_banned(c);
		/* else the reply waits (imap_auth_delay_done) */
		return;
	case SASL_FAIL_TEMP:
	default:
		imap_done(&c->s, "NO", "UNAVAILABLE",
			  "Temporary authentication failure");
		return;
	}
}

/* The delay after a failed login is over: its reply. */
void
imap_auth_delay_done(struct session *ses)
{
	struct imap_core *c = imap_core(ses);
	bool ban = ses->auth_ban;

	c->in_loop = ban;	/* no next command: the session ends */
	if (ses->auth_fail == SASL_CANCELLED)
		imap_done(&c->s, "BAD", NULL, "Authentication cancelled");
	else if (ses->auth_fail == SASL_FAIL_SYNTAX)
		imap_done(&c->s, "BAD", NULL, "Cannot decode the response");
	else
		imap_done(&c->s, "NO", "AUTHENTICATIONFAILED",
			  "Authentication failed");
	c->in_loop = false;
	if (ban && !ses->closing)
		session_close(ses, "banned");
}

/* Logins are possible here and now; otherwise the NO is sent. */
static bool
check_login_allowed(struct imap_core *c)
{
	if (!c->listener->auth) {
		imap_done(&c->s, "NO", "CANNOT", "Logins are disabled here");
		return false;
	}
	if (!imap_login_allowed(c)) {
		imap_done(&c->s, "NO", "PRIVACYREQUIRED",
			  "Plaintext authentication disallowed on non-secure "
			  "(SSL/TLS) connections");
		return false;
	}
	return true;
}

static bool
start_sasl(struct imap_core *c, enum sasl_mech mech)
{
	c->s.ses.sasl = sasl_start(mech, &auth_userdb_creds,
				   authq_creds_ctx(c->s.ses.srv->authq),
				   c->s.config->hostname);
	if (c->s.ses.sasl == NULL)
		return false;
	c->s.ses.auth_mech = sasl_mech_name(mech);
	c->s.ses.auth_challenged = false;
	return true;
}

/* LOGIN user password: a PLAIN exchange with the response built here. */
static void
cmd_login(struct imap_session *s, const struct imap_command *cmd)
{
	struct imap_core *c = core_of(s);
	const char *user, *pass;
	size_t ulen, plen;
	unsigned char *msg;
	char *b64;

	if (cmd->nargs != 2 || !imap_arg_astring(&cmd->args[0], &user, &ulen) ||
	    !imap_arg_astring(&cmd->args[1], &pass, &plen) ||
	    memchr(user, '\0', ulen) != NULL || memchr(pass, '\0', plen) != NULL ||
	    ulen == 0 || ulen > SASL_NAME_MAX) {
		imap_done(s, "BAD", NULL, "Usage: LOGIN user password");
		return;
	}
	if (!check_login_allowed(c))
		return;
	s->ses.auth_mech = "LOGIN";
	if (auth_banned(c, user)) {
		imap_close_banned(c);
		return;
	}
	msg = xmalloc(ulen + plen + 2);
	msg[0] = '\0';
	memcpy(msg + 1, user, ulen);
	msg[ulen + 1] = '\0';
	memcpy(msg + ulen + 2, pass, plen);
	b64 = base64_encode_alloc(msg, ulen + plen + 2);
	OPENSSL_cleanse(msg, ulen + plen + 2);
	free(msg);
	if (b64 == NULL || !start_sasl(c, SASL_PLAIN)) {
		free(b64);
		imap_done(s, "NO", "UNAVAILABLE",
			  "Temporary authentication failure");
		return;
	}
	s->ses.auth_mech = "LOGIN";
	c->auth_login = true;
	auth_submit(c, b64);
	OPENSSL_cleanse(b64, strlen(b64));
	free(b64);
}

/* AUTHENTICATE mech [initial-response] (RFC 9051 6.2.2, RFC 4959). */
static void
cmd_authenticate(struct imap_session *s, const struct imap_command *cmd)
{
	struct imap_core *c = core_of(s);
	enum sasl_mech mech;
	const char *ir = NULL;

	if (cmd->nargs < 1 || cmd->nargs > 2 ||
	    cmd->args[0].type != IMAP_ARG_ATOM ||
	    (cmd->nargs == 2 && cmd->args[1].type != IMAP_ARG_ATOM)) {
		imap_done(s, "BAD", NULL,
			  "Usage: AUTHENTICATE mechanism [initial-response]");
		return;
	}
	if (!check_login_allowed(c))
		return;
	if (sasl_mech_from_name(cmd->args[0].str, &mech) < 0 ||
	    (mech != SASL_PLAIN && mech != SASL_SCRAM_SHA_256) ||
	    !start_sasl(c, mech)) {
		imap_done(s, "NO", "CANNOT", "Unsupported mechanism");
		return;
	}
	if (cmd->nargs == 2)
		ir = cmd->args[1].str;	/* "=" is an empty one (RFC 4959) */
	c->auth_login = false;
	auth_submit(c, ir);
}

/* ---- ENABLE and ID -------------------------------------------------- */

/* RFC 5161; IMAP4rev2 (RFC 9051 6.3.1) and UTF8=ACCEPT (RFC 6855). */
static void
cmd_enable(struct imap_session *s, const struct imap_command *cmd)
{
	char enabled[128] = "";

	if (cmd->nargs == 0) {
		imap_done(s, "BAD", NULL, "Usage: ENABLE capability ...");
		return;
	}
	for (size_t i = 0; i < cmd->nargs; i++) {
		const struct imap_arg *a = &cmd->args[i];
		if (a->type != IMAP_ARG_ATOM) {
			imap_done(s, "BAD", NULL, "Invalid capability");
			return;
		}
		if (imap_arg_atom_is(a, "IMAP4rev2") && !s->rev2) {
			s->rev2 = s->utf8 = true;
			strcat(enabled, " IMAP4rev2");
		} else if (imap_arg_atom_is(a, "UTF8=ACCEPT") && !s->utf8) {
			s->utf8 = true;
			strcat(enabled, " UTF8=ACCEPT");
		}
	}
	imap_untagged(s, "ENABLED%s", enabled);
	imap_done(s, "OK", NULL, "ENABLE completed");
}

/* "name" and "version" of the client's ID list, printable, for the log. */
static void
id_log(struct imap_session *s, const struct imap_arg *list, size_t n)
{
	char name[ID_LOG_MAX + 1] = "", version[ID_LOG_MAX + 1] = "";
	const char *k, *v;
	size_t klen, vlen;

	for (size_t i = 0; i + 1 < n; i += 2) {
		if (list[i + 1].type == IMAP_ARG_NIL ||
		    !imap_arg_astring(&list[i], &k, &klen) ||
		    !imap_arg_astring(&list[i + 1], &v, &vlen))
			continue;
		if (klen == 4 && strncasecmp(k, "name", 4) == 0)
			ascii_printable(name, sizeof(name), v, vlen);
		else if (klen == 7 && strncasecmp(k, "version", 7) == 0)
			ascii_printable(version, sizeof(version), v, vlen);
	}
	log_event(LOG_INFO, "imap", "id", LF_STR("session", s->ses.id),
		  LF_STR("ip", s->ses.ip), LF_STR("client", name),
		  LF_STR("client_version", version));
}

/* RFC 2971: the client's list (logged) and ours. */
static void
cmd_id(struct imap_session *s, const struct imap_command *cmd)
{
	const struct imap_arg *a = cmd->nargs == 1 ? &cmd->args[0] : NULL;

	if (a == NULL || (a->type != IMAP_ARG_NIL &&
			  (a->type != IMAP_ARG_LIST || a->nlist % 2 != 0 ||
			   a->nlist > 2 * ID_FIELDS_MAX))) {
		imap_done(s, "BAD", NULL, "Usage: ID (field value ...) or ID NIL");
		return;
	}
	if (a->type == IMAP_ARG_LIST)
		id_log(s, a->list, a->nlist);
	imap_untagged(s, "ID (\"name\" \"godwit\" \"vendor\" \"godwit\")");
	imap_done(s, "OK", NULL, "ID completed");
}

const struct imap_cmd_def imap_core_cmds[] = {
	{"CAPABILITY", cmd_capability, IMAP_IN_ANY, false},
	{"NOOP", cmd_noop, IMAP_IN_ANY, false},
	{"LOGOUT", cmd_logout, IMAP_IN_ANY, false},
	{"ID", cmd_id, IMAP_IN_ANY, false},
	{"STARTTLS", cmd_starttls, IMAP_IN_NOTAUTH, false},
	{"AUTHENTICATE", cmd_authenticate, IMAP_IN_NOTAUTH, false},
	{"LOGIN", cmd_login, IMAP_IN_NOTAUTH, false},
	{"ENABLE", cmd_enable, IMAP_IN_AUTH, false},
	{NULL, NULL, 0, false},
};
