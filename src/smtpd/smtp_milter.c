/*
 * Milters in the SMTP session (smtp_filter.h): one connection per milter
 * per session, opened at the connect stage; at each stage the macros and
 * the command go to each milter in order (filter.milters), each reply
 * waited for unless the milter said it sends none there. At the end of
 * the data the held message goes to each milter (header fields, body in
 * CRLF chunks, end of message) and its modifications are collected
 * (smtp_milter_msg.c), then applied to the job before the durable write.
 *
 * A milter that is down, times out or misbehaves: on_error tempfail
 * answers 451 4.7.1 from then on (MAIL, RCPT, DATA, the end; the
 * greeting and HELO pass, as with Postfix), on_error accept skips that
 * milter for the rest of the session. "accept" from a milter skips it for
 * the session (at connect or HELO) or the transaction (later).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>

#include "filter/filter.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "net/listener.h"
#include "net/lookupq.h"
#include "smtpd/smtp_filter.h"
#include "smtpd/smtp_milter_private.h"
#include "smtpd/smtp_private.h"
#include "smtpd/smtp_settings.h"
#include "store/deliver.h"

/* where a milter is in the end stage (and the connect stage) */
enum mphase {
	MP_START,
	MP_OPTNEG,	/* connect: the negotiation is out */
	MP_CMD,		/* the stage's command is out */
	MP_DATA,	/* end: DATA (after BDAT) */
	MP_HDR,
	MP_EOH,
	MP_BODY,
	MP_EOB,
};

struct milter_state {
	const struct milter_config *cf;
	struct sf_milters *ms;
	struct milter_conn *conn;
	uint32_t actions, protocol;
	char *symlist[MM_NSTAGES];	/* macros asked for, NULL: ours */
	bool off;		/* skipped for the session */
	bool off_txn;		/* accepted this transaction */
	bool failed;		/* on_error tempfail: 451 from now on */
	bool in_txn;		/* MAIL went out, no end of message yet */
	bool data_sent;
};

struct sf_milters {
	struct smtp_session *s;
	struct milter_state *m;
	size_t n;
	size_t cur;		/* the milter the stage is at */
	enum sf_stage stage;
	enum mphase phase;
	size_t hdr_i;		/* end: the next header field */
	uint64_t body_off;	/* end: where the body chunks are */
	const char *error;	/* STEP_FAIL's reason (static text) */
	bool discard_all;	/* discard at connect or HELO: every message */
	struct milter_buf buf;
};

static const char *const tempfail_text = "Service unavailable - try again later";

/* ---- macros ----------------------------------------------------------- */

/* the macros sent at each stage unless the milter asks for others */
static const char *const default_macros[MM_NSTAGES] = {
    [MM_CONNECT] = "j {daemon_name} {daemon_addr} v _ {client_addr} "
		   "{client_name} {client_port} {client_ptr}",
    [MM_HELO] = "{tls_version} {cipher} {cipher_bits} {cert_subject} "
		"{cert_issuer}",
    [MM_MAIL] = "i {auth_type} {auth_authen} {auth_author} {mail_mailer} "
		"{mail_host} {mail_addr}",
    [MM_RCPT] = "i {rcpt_mailer} {rcpt_host} {rcpt_addr}",
    [MM_DATA] = "i",
    [MM_EOH] = "i",
    [MM_EOM] = "i",
};

static const char *
client_name(const struct smtp_session *s, char *buf, size_t size)
{
	if (s->iprev_done && s->iprev_out.result == IPREV_PASS)
		return s->iprev_out.name;
	snprintf(buf, size, "[%s]", s->ses.ip);
	return buf;
}

static uint16_t
client_port(const struct smtp_session *s)
{
	const struct sockaddr *sa = (const struct sockaddr *)&s->ses.ss;

	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

static SSL *
session_ssl(const struct smtp_session *s)
{
	return s->ses.tls && s->ses.bev != NULL
		   ? bufferevent_openssl_get_ssl(s->ses.bev)
		   : NULL;
}

/* The server's address of the connection. */
static void
daemon_addr(const struct smtp_session *s, char *buf, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	evutil_socket_t fd = s->ses.bev != NULL ? bufferevent_getfd(s->ses.bev)
						: -1;

	buf[0] = '\0';
	if (fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return;
	if (ss.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, buf,
			  (socklen_t)size);
	else if (ss.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr,
			  buf, (socklen_t)size);
}

/* The envelope address without its brackets (RCPT: the current one). */
static const char *
bare_addr(const char *a, char *buf, size_t size)
{
	size_t n = strlen(a);

	if (n >= 2 && a[0] == '<' && a[n - 1] == '>') {
		snprintf(buf, size, "%.*s", (int)(n - 2), a + 1);
		return buf;
	}
	return a;
}

/* A macro's value in buf, or NULL when it has none now. */
static const char *
macro_value(struct smtp_session *s, const char *name, char *buf, size_t size)
{
	struct smtp_txn *t = s->txn;
	char tmp[300];
	SSL *ssl = session_ssl(s);

	if (strcmp(name, "j") == 0)
		return s->config->hostname;
	if (strcmp(name, "{daemon_name}") == 0)
		return s->listener != NULL ? s->listener->name : "godwit";
	if (strcmp(name, "{daemon_addr}") == 0) {
		daemon_addr(s, buf, size);
		return buf[0] != '\0' ? buf : NULL;
	}
	if (strcmp(name, "v") == 0)
		return "godwit";
	if (strcmp(name, "_") == 0) {
		if (snprintf(buf, size, "%s [%s]",
			     client_name(s, tmp, sizeof(tmp)),
			     s->ses.ip) >= (int)size)
			return NULL;
		return buf;
	}
	if (strcmp(name, "{client_addr}") == 0)
		return s->ses.ip;
	if (strcmp(name, "{client_name}") == 0 ||
	    strcmp(name, "{client_ptr}") == 0)
		return client_name(s, buf, size);
	if (strcmp(name, "{client_port}") == 0) {
		snprintf(buf, size, "%u", client_port(s));
		return buf;
	}
	if (strcmp(name, "i") == 0)
		return t != NULL && t->id[0] != '\0' ? t->id : NULL;
	if (strcmp(name, "{tls_version}") == 0)
		return ssl != NULL ? SSL_get_version(ssl) : NULL;
	if (strcmp(name, "{cipher}") == 0)
		return ssl != NULL ? SSL_get_cipher_name(ssl) : NULL;
	if (strcmp(name, "{cipher_bits}") == 0) {
		if (ssl == NULL)
			return NULL;
		snprintf(buf, size, "%d", SSL_get_cipher_bits(ssl, NULL));
		return buf;
	}
	if (strcmp(name, "{auth_type}") == 0)
		return s->ses.logged_in ? s->ses.auth_mech : NULL;
	if (strcmp(name, "{auth_authen}") == 0)
		return s->ses.logged_in ? s->account : NULL;
	if (strcmp(name, "{mail_mailer}") == 0)
		return t != NULL ? "smtp" : NULL;
	if (strcmp(name, "{mail_addr}") == 0)
		return t != NULL ? t->sender : NULL;
	if (strcmp(name, "{mail_host}") == 0 && t != NULL &&
	    strrchr(t->sender, '@') != NULL)
		return strrchr(t->sender, '@') + 1;
	if (strcmp(name, "{rcpt_mailer}") == 0)
		return s->sf.rcpt != NULL ? "smtp" : NULL;
	if (strcmp(name, "{rcpt_addr}") == 0)
		return s->sf.rcpt != NULL ? bare_addr(s->sf.rcpt, buf, size)
					  : NULL;
	if (strcmp(name, "{rcpt_host}") == 0 && s->sf.rcpt != NULL &&
	    strrchr(s->sf.rcpt, '@') != NULL) {
		snprintf(buf, size, "%s", strrchr(s->sf.rcpt, '@') + 1);
		buf[strcspn(buf, ">")] = '\0';
		return buf;
	}
	return NULL;
}

#define MACROS_MAX 24

/* The MACRO packet for stage ms (command cmd) to milter m. */
static void
put_macros(struct milter_state *m, enum milter_macro_stage stage,
	   enum milter_cmd cmd)
{
	struct smtp_session *s = m->ms->s;
	const char *list = m->symlist[stage] != NULL ? m->symlist[stage]
						     : default_macros[stage];
	const char *names[MACROS_MAX], *values[MACROS_MAX];
	char nbuf[MACROS_MAX][40], vbuf[MACROS_MAX][300];
	size_t n = 0;

	while (*list != '\0' && n < MACROS_MAX) {
		size_t len = strcspn(list, " ");
		const char *v;

		if (len > 0 && len < sizeof(nbuf[n])) {
			memcpy(nbuf[n], list, len);
			nbuf[n][len] = '\0';
			/* "{x}" and "x" name one macro */
			v = macro_value(s, nbuf[n], vbuf[n], sizeof(vbuf[n]));
			if (v == NULL && nbuf[n][0] != '{' && len + 2 < 40) {
				char braced[40];

				snprintf(braced, sizeof(braced), "{%s}",
					 nbuf[n]);
				v = macro_value(s, braced, vbuf[n],
						sizeof(vbuf[n]));
			}
			if (v != NULL) {
				names[n] = nbuf[n];
				values[n] = v;
				n++;
			}
		}
		list += len;
		list += strspn(list, " ");
	}
	if (n > 0)
		milter_put_macros(&m->ms->buf, cmd, names, values, n);
}

/* ---- verdicts --------------------------------------------------------- */

/* The milter's own reply ("550-5.7.1 a\r\n550 5.7.1 b") as a verdict. */
static void
replycode_verdict(const char *text, int code, struct sf_verdict *v)
{
	const char *p = text;
	size_t out = 0;

	v->action = code >= 500 ? SF_REJECT : SF_TEMPFAIL;
	v->code = code;
	v->logged = false;
	snprintf(v->enh, sizeof(v->enh), "%s", code >= 500 ? "5.7.1" : "4.7.1");
	v->text[0] = '\0';
	for (bool first = true; *p != '\0'; first = false) {
		size_t n = strcspn(p, "\r");
		const char *line = p + 3, *end = p + n;
		size_t en;

		if (line < end)
			line++;
		/* an enhanced code: d.d.d */
		en = strspn(line, "0123456789.");
		if (en >= 5 && en < sizeof(v->enh) && line + en < end &&
		    line[en] == ' ' && line[1] == '.') {
			if (first)
				snprintf(v->enh, sizeof(v->enh), "%.*s",
					 (int)en, line);
			line += en + 1;
		} else if (en >= 5 && line + en == end && line[1] == '.') {
			if (first)
				snprintf(v->enh, sizeof(v->enh), "%.*s",
					 (int)en, line);
			line = end;
		}
		if (line > end)
			line = end;
		out += (size_t)snprintf(v->text + out,
					out < sizeof(v->text)
					    ? sizeof(v->text) - out : 0,
					"%s%.*s", first ? "" : "\n",
					(int)(end - line), line);
		if (out >= sizeof(v->text))
			break;
		p = end;
		if (p[0] == '\r' && p[1] == '\n')
			p += 2;
	}
	if (out >= sizeof(v->text))
		v->text[sizeof(v->text) - 1] = '\0';
	if (v->text[0] == '\0')
		snprintf(v->text, sizeof(v->text), "%s",
			 code >= 500 ? "Command rejected" : tempfail_text);
	v->reason = "milter";
}

static void
tempfail_verdict(struct sf_verdict *v)
{
	sf_verdict_set(v, 451, "4.7.1", "milter", "%s", tempfail_text);
}

static const char *
stage_name(enum sf_stage st)
{
	static const char *const names[SF_NSTAGES] = {
	    "connect", "helo", "mail", "rcpt", "data", "end"};

	return names[st];
}

/*
 * The milter failed (down, timeout, bad reply): logged, then tempfail
 * (true, v set, and 451 from now on) or accept (false: skipped).
 */
static bool
milter_failed(struct milter_state *m, const char *error, struct sf_verdict *v)
{
	struct sf_milters *ms = m->ms;

	log_event(LOG_WARNING, "milter", "error",
		  LF_STR("session", ms->s->ses.id),
		  LF_STR("milter", m->cf->name),
		  LF_STR("stage", stage_name(ms->stage)),
		  LF_STR("error", error),
		  LF_STR("action", m->cf->on_error == MILTER_ON_ERROR_ACCEPT
				       ? "accept" : "tempfail"));
	milter_conn_free(&m->conn);
	m->in_txn = false;
	if (m->cf->on_error == MILTER_ON_ERROR_ACCEPT) {
		m->off = true;
		return false;
	}
	m->failed = true;
	/* the greeting and HELO pass: the refusal comes at MAIL */
	if (ms->stage < SF_MAIL)
		return false;
	tempfail_verdict(v);
	return true;
}

/* ---- the stages ------------------------------------------------------- */

enum step { STEP_NEXT, STEP_WAIT, STEP_FAIL };

static void on_reply(void *arg, const struct milter_reply *r, bool final,
		     const char *error);

static enum step
send_buf(struct milter_state *m, bool want)
{
	if (milter_conn_send(m->conn, &m->ms->buf, want) < 0) {
		m->ms->error = milter_conn_error(m->conn) != NULL
				   ? milter_conn_error(m->conn)
				   : "send failed";
		return STEP_FAIL;
	}
	return want ? STEP_WAIT : STEP_NEXT;
}

static enum step
step_connect(struct milter_state *m)
{
	struct sf_milters *ms = m->ms;
	struct smtp_session *s = ms->s;
	const struct sockaddr *sa = (const struct sockaddr *)&s->ses.ss;
	char name[300];
	char fam = sa->sa_family == AF_INET    ? '4'
		   : sa->sa_family == AF_INET6 ? '6'
					       : 'U';

	if (ms->phase == MP_START) {
		m->conn = milter_conn_new(s->ses.srv->base, m->cf, on_reply, m);
		milter_put_optneg(&ms->buf, MILTER_ACT_ALL, MILTER_P_OFFER);
		ms->phase = MP_OPTNEG;
		return send_buf(m, true);
	}
	ms->phase = MP_CMD;
	if (m->protocol & MILTER_P_NOCONNECT)
		return STEP_NEXT;
	put_macros(m, MM_CONNECT, MC_CONNECT);
	milter_put_connect(&ms->buf, client_name(s, name, sizeof(name)), fam,
			   client_port(s), s->ses.ip);
	return send_buf(m, !(m->protocol & MILTER_P_NR_CONN));
}

static enum step
step_data(struct milter_state *m)
{
	if (m->data_sent || (m->protocol & MILTER_P_NODATA)) {
		m->data_sent = true;
		return STEP_NEXT;
	}
	m->data_sent = true;
	put_macros(m, MM_DATA, MC_DATA);
	milter_put_simple(&m->ms->buf, MC_DATA);
	return send_buf(m, !(m->protocol & MILTER_P_NR_DATA));
}

static enum step
step_mail(struct milter_state *m)
{
	struct smtp_txn *t = m->ms->s->txn;
	char addr[sizeof(t->sender) + 2], size[32];
	const char *args[2];
	size_t n = 0;

	m->in_txn = true;
	m->data_sent = false;
	if (m->protocol & MILTER_P_NOMAIL)
		return STEP_NEXT;
	snprintf(addr, sizeof(addr), "<%s>", t->sender);
	if (t->mail.has_size) {
		snprintf(size, sizeof(size), "SIZE=%llu",
			 (unsigned long long)t->mail.size);
		args[n++] = size;
	}
	if (t->mail.body == SMTP_BODY_8BITMIME)
		args[n++] = "BODY=8BITMIME";
	put_macros(m, MM_MAIL, MC_MAIL);
	milter_put_envaddr(&m->ms->buf, MC_MAIL, addr, args, n);
	return send_buf(m, !(m->protocol & MILTER_P_NR_MAIL));
}

static enum step
step_cmd(struct milter_state *m)
{
	struct sf_milters *ms = m->ms;
	struct smtp_session *s = ms->s;
	char addr[SMTP_PATH_MAX * 4 + 12];

	ms->phase = MP_CMD;
	switch (ms->stage) {
	case SF_HELO:
		if (m->protocol & MILTER_P_NOHELO)
			return STEP_NEXT;
		put_macros(m, MM_HELO, MC_HELO);
		milter_put_helo(&ms->buf, s->helo != NULL ? s->helo : "");
		return send_buf(m, !(m->protocol & MILTER_P_NR_HELO));
	case SF_MAIL:
		return step_mail(m);
	case SF_RCPT:
		if (m->protocol & MILTER_P_NORCPT)
			return STEP_NEXT;
		snprintf(addr, sizeof(addr), "<%s>", s->sf.rcpt);
		put_macros(m, MM_RCPT, MC_RCPT);
		milter_put_envaddr(&ms->buf, MC_RCPT, addr, NULL, 0);
		return send_buf(m, !(m->protocol & MILTER_P_NR_RCPT));
	case SF_DATA:
		return step_data(m);
	default:
		fatal("milter: step_cmd at stage %d", ms->stage);
	}
	return STEP_NEXT;
}

/* ---- the end of the message ------------------------------------------- */

#define MP_EOB_WAIT (MP_EOB + 1)

/* The longest header field a milter is sent: libmilter drops a
 * connection whose packet is over 64 KiB (its default). */
#define HDR_SENT_MAX (MILTER_CHUNK - 512)

/*
 * The HEADER packet of field h: its value as the milter wants it
 * (without the leading space unless it negotiated HDR_LEADSPC), cut to
 * HDR_SENT_MAX (the stored message keeps all of it, as Postfix keeps
 * what its header_size_limit lets through).
 */
static void
put_header(struct milter_state *m, const struct mhdr *h)
{
	const char *v = h->value;
	size_t n;
	char *cut;

	if (!(m->protocol & MILTER_P_HDR_LEADSPC))
		v += strspn(v, " \t");
	n = strlen(v);
	if (n + strlen(h->name) <= HDR_SENT_MAX) {
		milter_put_header(&m->ms->buf, h->name, v);
		return;
	}
	n = strlen(h->name) < HDR_SENT_MAX ? HDR_SENT_MAX - strlen(h->name)
					   : 0;
	cut = xstrndup(v, n);
	milter_put_header(&m->ms->buf, h->name, cut);
	free(cut);
}

static enum step
step_body(struct milter_state *m, struct sf_milter_txn *mt)
{
	struct sf_milters *ms = m->ms;
	unsigned char *chunk;
	ssize_t n;

	if (m->protocol & MILTER_P_NOBODY) {
		ms->phase = MP_EOB;
		return STEP_NEXT;
	}
	chunk = xmalloc(MILTER_CHUNK);
	n = milter_msg_body(mt, ms->s->txn->held_job, &ms->body_off, chunk,
			    MILTER_CHUNK);
	if (n <= 0) {
		free(chunk);
		ms->phase = MP_EOB;
		if (n < 0) {
			ms->error = "cannot read the message";
			return STEP_FAIL;
		}
		return STEP_NEXT;
	}
	milter_put_body(&ms->buf, chunk, (size_t)n);
	free(chunk);
	return send_buf(m, !(m->protocol & MILTER_P_NR_BODY));
}

/* The phases of the end: each sends at most one packet that waits. */
static enum step
step_end(struct milter_state *m)
{
	struct sf_milters *ms = m->ms;
	struct sf_milter_txn *mt = ms->s->txn->milter;
	uint32_t p = m->protocol;
	enum step r = STEP_NEXT;

	while (r == STEP_NEXT) {
		switch ((int)ms->phase) {
		case MP_START:
			ms->phase = MP_HDR;
			ms->hdr_i = 0;
			ms->body_off = 0;
			/* BDAT: the DATA stage did not run */
			r = step_data(m);
			break;
		case MP_HDR:
			if ((p & MILTER_P_NOHDRS) || ms->hdr_i >= mt->nh) {
				ms->phase = MP_EOH;
				break;
			}
			if (mt->h[ms->hdr_i].value == NULL) {
				ms->hdr_i++;
				break;
			}
			put_header(m, &mt->h[ms->hdr_i++]);
			r = send_buf(m, !(p & MILTER_P_NR_HDR));
			break;
		case MP_EOH:
			ms->phase = MP_BODY;
			if (p & MILTER_P_NOEOH)
				break;
			put_macros(m, MM_EOH, MC_EOH);
			milter_put_simple(&ms->buf, MC_EOH);
			r = send_buf(m, !(p & MILTER_P_NR_EOH));
			break;
		case MP_BODY:
			r = step_body(m, mt);
			break;
		case MP_EOB:
			ms->phase = MP_EOB_WAIT;
			mt->replacing = false;
			put_macros(m, MM_EOM, MC_BODYEOB);
			milter_put_simple(&ms->buf, MC_BODYEOB);
			r = send_buf(m, true);
			break;
		default:
			fatal("milter: step_end in phase %d", (int)ms->phase);
		}
	}
	return r;
}

/* ---- the driver ------------------------------------------------------- */

static bool
skipped(const struct milter_state *m, enum sf_stage stage)
{
	return m->off || (stage >= SF_MAIL && m->off_txn) ||
	       (m->conn == NULL && stage != SF_CONNECT);
}

/* The changes into the job (the recipients are in already). */
static void
end_finish(struct sf_milters *ms, struct sf_verdict *v)
{
	struct smtp_txn *t = ms->s->txn;

	if (milter_msg_apply(ms->s, t->milter, t->held_job) < 0)
		sf_verdict_set(v, 451, "4.3.0", "milter", "%s",
			       "Error: local error");
}

/* The user database resolved the recipients the milters edited. */
static void
rcpts_resolved(struct lookup_job *job, void *arg)
{
	struct sf_milters *ms = arg;
	struct smtp_session *s = ms->s;
	struct sf_verdict v;

	s->txn->milter->lookup = NULL;
	if (s->state == SMTP_S_CLOSING)
		return;
	memset(&v, 0, sizeof(v));
	v.action = SF_CONTINUE;
	if (milter_msg_rcpts(s, s->txn->milter, job) < 0) {
		log_event(LOG_WARNING, "milter", "rcpt-lookup-failed",
			  LF_STR("session", s->ses.id),
			  LF_STR("queue", s->txn->id));
		sf_verdict_set(&v, 451, "4.3.0", "lookup", "%s",
			       "Error: temporary failure looking up "
			       "recipient");
	} else
		end_finish(ms, &v);
	sf_resume(s, &v);
	session_flush(&s->ses);
}

/*
 * All milters are through the end: the changes into the job. False
 * while the recipients they edited are being resolved (rcpts_resolved
 * resumes the stage).
 */
static bool
end_apply(struct sf_milters *ms, struct sf_verdict *v)
{
	struct smtp_txn *t = ms->s->txn;
	struct lookup_job *job;

	for (size_t i = 0; i < ms->n; i++)
		ms->m[i].in_txn = false;
	if (t->milter == NULL || !t->milter->loaded)
		return true;
	if ((job = milter_msg_rcpt_lookup(ms->s, t->milter)) != NULL) {
		job->done = rcpts_resolved;
		job->arg = ms;
		t->milter->lookup = job;
		lookupq_submit(ms->s->ses.srv->lookupq, job);
		return false;
	}
	end_finish(ms, v);
	return true;
}

/*
 * From milter ms->cur in its phase on: true when the stage is over (v
 * set), false when a reply is awaited.
 */
static bool
run(struct sf_milters *ms, struct sf_verdict *v)
{
	memset(v, 0, sizeof(*v));
	v->action = SF_CONTINUE;
	for (; ms->cur < ms->n; ms->cur++, ms->phase = MP_START) {
		struct milter_state *m = &ms->m[ms->cur];
		enum step r;

		if (m->failed && ms->stage >= SF_MAIL) {
			tempfail_verdict(v);
			return true;
		}
		if (m->failed || skipped(m, ms->stage))
			continue;
		r = ms->stage == SF_CONNECT ? step_connect(m)
		    : ms->stage == SF_END   ? step_end(m)
					    : step_cmd(m);
		if (r == STEP_WAIT)
			return false;
		if (r == STEP_FAIL && milter_failed(m, ms->error, v))
			return true;
	}
	if (ms->stage == SF_END)
		return end_apply(ms, v);
	return true;
}

static void
proceed(struct sf_milters *ms)
{
	struct sf_verdict v;

	if (run(ms, &v))
		sf_resume(ms->s, &v);
}

static void
log_verdict(const struct milter_state *m, const struct milter_reply *r)
{
	struct sf_milters *ms = m->ms;

	/* an accept is the usual answer: only refusals are news */
	log_event(r->type == MR_ACCEPT ? LOG_DEBUG : LOG_INFO, "milter",
		  "reply", LF_STR("session", ms->s->ses.id),
		  LF_STR("milter", m->cf->name),
		  LF_STR("stage", stage_name(ms->stage)),
		  LF_STR("reply", milter_reply_name(r->type)),
		  LF_STR_IF(r->text != NULL, "text", r->text));
}

/* A final reply that ends the stage: true with v. */
static bool
reply_verdict(struct milter_state *m, const struct milter_reply *r,
	      struct sf_verdict *v)
{
	struct sf_milters *ms = m->ms;

	switch (r->type) {
	case MR_REJECT:
		sf_verdict_set(v, ms->stage == SF_CONNECT ? 554 : 550, "5.7.1",
			       "milter", "Command rejected");
		break;
	case MR_TEMPFAIL:
		tempfail_verdict(v);
		break;
	case MR_REPLYCODE:
		replycode_verdict(r->text, r->code, v);
		break;
	case MR_DISCARD:
		memset(v, 0, sizeof(*v));
		v->action = SF_DISCARD;
		v->reason = "milter";
		/* before a transaction: each one of the session (Postfix) */
		if (ms->stage < SF_MAIL) {
			ms->discard_all = true;
			v->action = SF_CONTINUE;
			log_verdict(m, r);
			return false;
		}
		for (size_t i = 0; i < ms->n; i++)
			ms->m[i].off_txn = true;
		break;
	default:
		return false;
	}
	log_verdict(m, r);
	return true;
}

static void
negotiated(struct milter_state *m, const struct milter_reply *r)
{
	struct sf_milters *ms = m->ms;
	struct sf_verdict v;
	const char *err;

	if (milter_negotiate(r, MILTER_ACT_ALL, MILTER_P_OFFER, &m->actions,
			     &m->protocol, &err) < 0) {
		if (milter_failed(m, err, &v))
			sf_resume(ms->s, &v);
		else {
			ms->cur++;
			ms->phase = MP_START;
			proceed(ms);
		}
		return;
	}
	for (int i = 0; i < MM_NSTAGES; i++)
		if (r->symlist[i] != NULL && strlen(r->symlist[i]) < 1000)
			m->symlist[i] = xstrdup(r->symlist[i]);
	proceed(ms);
}

/* A final reply at the stage's current milter. */
static void
final_reply(struct milter_state *m, const struct milter_reply *r)
{
	struct sf_milters *ms = m->ms;
	struct sf_verdict v;

	if (ms->phase == MP_OPTNEG) {
		negotiated(m, r);
		return;
	}
	/* whatever it says, its end of message ends its transaction */
	if (ms->stage == SF_END && (int)ms->phase == MP_EOB_WAIT)
		m->in_txn = false;
	if (r->type == MR_OPTNEG) {
		if (milter_failed(m, "unexpected negotiation", &v)) {
			sf_resume(ms->s, &v);
			return;
		}
	} else if (reply_verdict(m, r, &v)) {
		sf_resume(ms->s, &v);
		return;
	} else if (r->type == MR_ACCEPT) {
		log_verdict(m, r);
		if (ms->stage < SF_MAIL)
			m->off = true;
		else
			m->off_txn = true;
	} else if (r->type == MR_SKIP && ms->phase == MP_BODY) {
		ms->phase = MP_EOB;
		proceed(ms);
		return;
	} else if (ms->stage == SF_END && (int)ms->phase != MP_EOB_WAIT) {
		/* continue inside the end: the next packet */
		proceed(ms);
		return;
	}
	if (ms->stage == SF_END && (int)ms->phase == MP_EOB_WAIT)
		milter_msg_eom(ms->s->txn->milter);
	ms->cur++;
	ms->phase = MP_START;
	proceed(ms);
}

static void
on_reply(void *arg, const struct milter_reply *r, bool final,
	 const char *error)
{
	struct milter_state *m = arg;
	struct sf_milters *ms = m->ms;
	struct sf_verdict v;
	const char *err = error;

	if (r != NULL && !final) {
		if (ms->stage != SF_END || (int)ms->phase != MP_EOB_WAIT)
			err = "modification before the end of the message";
		else if (milter_msg_modify(ms->s, ms->s->txn->milter, m->cf,
					   m->actions, m->protocol, r,
					   &err) == 0)
			return;
	} else if (r != NULL) {
		final_reply(m, r);
		return;
	}
	if (milter_failed(m, err, &v)) {
		sf_resume(ms->s, &v);
		return;
	}
	ms->cur++;
	ms->phase = MP_START;
	proceed(ms);
}

/* ---- the steps -------------------------------------------------------- */

static bool
stage(struct smtp_session *s, enum sf_stage st, struct sf_verdict *v)
{
	struct sf_milters *ms = s->milters;

	if (ms == NULL)
		return true;
	ms->stage = st;
	ms->cur = 0;
	ms->phase = MP_START;
	if (st == SF_MAIL && ms->discard_all) {
		for (size_t i = 0; i < ms->n; i++)
			ms->m[i].off_txn = true;
		memset(v, 0, sizeof(*v));
		v->action = SF_DISCARD;
		v->reason = "milter";
		return true;
	}
	return run(ms, v);
}

bool
sf_milter_connect(struct smtp_session *s, struct sf_verdict *v)
{
	const struct filter_config *fc = s->config->filter;
	struct sf_milters *ms;

	if (fc == NULL || fc->nmilters == 0 || s->milters != NULL)
		return true;
	ms = s->milters = xcalloc(1, sizeof(*ms));
	ms->s = s;
	ms->n = fc->nmilters;
	ms->m = xcalloc(ms->n, sizeof(*ms->m));
	for (size_t i = 0; i < ms->n; i++) {
		ms->m[i].cf = &fc->milters[i];
		ms->m[i].ms = ms;
	}
	return stage(s, SF_CONNECT, v);
}

bool
sf_milter_helo(struct smtp_session *s, struct sf_verdict *v)
{
	return stage(s, SF_HELO, v);
}

bool
sf_milter_mail(struct smtp_session *s, struct sf_verdict *v)
{
	struct sf_milters *ms = s->milters;

	if (ms == NULL)
		return true;
	for (size_t i = 0; i < ms->n; i++)
		ms->m[i].off_txn = false;
	if (s->txn->milter == NULL) {
		s->txn->milter = xcalloc(1, sizeof(*s->txn->milter));
		s->txn->milter->ms = ms;
	}
	return stage(s, SF_MAIL, v);
}

bool
sf_milter_rcpt(struct smtp_session *s, struct sf_verdict *v)
{
	return stage(s, SF_RCPT, v);
}

bool
sf_milter_data(struct smtp_session *s, struct sf_verdict *v)
{
	return stage(s, SF_DATA, v);
}

bool
sf_milter_end(struct smtp_session *s, struct sf_verdict *v)
{
	struct smtp_txn *t = s->txn;
	struct sf_milters *ms = s->milters;
	bool any = false;

	if (ms == NULL || t->discard)
		return true;
	for (size_t i = 0; i < ms->n; i++)
		any |= ms->m[i].failed || !skipped(&ms->m[i], SF_END);
	if (!any)
		return true;
	if (t->milter == NULL) {
		t->milter = xcalloc(1, sizeof(*t->milter));
		t->milter->ms = ms;
	}
	switch (milter_msg_load(t->milter, t->held_job)) {
	case 0:
		break;
	case -2:
		sf_verdict_set(v, 552, "5.3.4", "milter-limit", "%s",
			       "Error: message header too large");
		return true;
	default:
		sf_verdict_set(v, 451, "4.3.0", "milter", "%s",
			       "Error: local error");
		return true;
	}
	return stage(s, SF_END, v);
}

/* ---- lifetime --------------------------------------------------------- */

/* The transaction is over: an ABORT to milters inside it (a milter whose
 * reply is still awaited is closed: the session moved on). */
static void
txn_over(struct sf_milters *ms)
{
	for (size_t i = 0; i < ms->n; i++) {
		struct milter_state *m = &ms->m[i];

		if (m->conn == NULL)
			continue;
		if (milter_conn_busy(m->conn)) {
			milter_conn_free(&m->conn);
			m->off = true;
			continue;
		}
		if (!m->in_txn)
			continue;
		m->in_txn = false;
		milter_put_simple(&ms->buf, MC_ABORT);
		(void)milter_conn_send(m->conn, &ms->buf, false);
	}
}

void
sf_milter_session_free(struct smtp_session *s)
{
	struct sf_milters *ms = s->milters;

	if (ms == NULL)
		return;
	for (size_t i = 0; i < ms->n; i++) {
		milter_conn_free(&ms->m[i].conn);
		for (int j = 0; j < MM_NSTAGES; j++)
			free(ms->m[i].symlist[j]);
	}
	free(ms->m);
	milter_buf_clear(&ms->buf);
	xfree(&s->milters);
}

void
sf_milter_txn_free(struct smtp_txn *t)
{
	if (t->milter == NULL)
		return;
	txn_over(t->milter->ms);
	milter_msg_clear(t->milter);
	xfree(&t->milter);
}
