/* See session.h. */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "lib/cidr.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "net/auth.h"
#include "net/metrics.h"
#include "net/session.h"

/* ---- admission ---------------------------------------------------- */

/*
 * On an implicit-TLS port the client's first octets are a ClientHello: a
 * plaintext reply would only be a TLS error there, so we just close.
 */
static void
refuse(const struct session_listener *l, int fd, const char *text)
{
	if (l->tls_port) {
		close(fd);
		return;
	}
	/* best effort: the socket is fresh, the reply fits its buffer */
	if (write(fd, text, strlen(text)) < 0) {
		/* the client is gone already */
	}
	close(fd);
}

static void
release(struct session_server *srv, const struct sockaddr *sa)
{
	limits_disconnect(srv->limits, srv->slot, sa);
	session_server_stress_check(srv);
}

/* Too many connections: the limit's verdict, or false to go on. */
static bool
refused_by_limits(struct session_server *srv, const struct session_listener *l,
		  int fd, const struct sockaddr *sa, const char *ip)
{
	const char *cat = l->ops->name;
	enum limits_verdict v;
	char buf[512], net[INET6_ADDRSTRLEN + 8];
	bool wide = false;

	v = limits_connect(srv->limits, &srv->policy, srv->slot, sa, now_ms());
	session_server_stress_check(srv);
	/* what the local rate counted, the cluster counts too */
	if (v == LIMITS_OK || v == LIMITS_RATE || v == LIMITS_RATE_NET)
		rlimits_connect(srv->rlimits, &srv->policy, sa);
	if (v != LIMITS_OK) {
		l->ops->refusal(l, SESSION_REFUSE_LIMIT,
				limits_verdict_text(v), buf, sizeof(buf));
		limits_net_text(srv->limits, sa, limits_verdict_wide(v), net,
				sizeof(net));
		log_event(LOG_INFO, cat, "reject", LF_STR("ip", ip),
			  LF_STR("net", net), LF_STR("listener", l->name),
			  LF_STR("reason", "limit"),
			  LF_STR("limit", limits_verdict_text(v)));
		metrics_connection(l->index, METRICS_CONN_LIMIT);
		metrics_reject("limit");
		refuse(l, fd, buf);
		return true;
	}
	if (limits_banned(srv->limits, sa, now_ms(), NULL, &wide)) {
		release(srv, sa);
		l->ops->refusal(l, SESSION_REFUSE_BANNED, NULL, buf,
				sizeof(buf));
		limits_net_text(srv->limits, sa, wide, net, sizeof(net));
		log_event(LOG_INFO, cat, "reject", LF_STR("ip", ip),
			  LF_STR("net", net), LF_STR("listener", l->name),
			  LF_STR("reason", "banned"));
		metrics_connection(l->index, METRICS_CONN_BANNED);
		metrics_reject("banned");
		refuse(l, fd, buf);
		return true;
	}
	return false;
}

/*
 * The same three doors for every protocol, each refusal in the
 * protocol's own words. True with the peer's address in ip and the
 * socket tuned; false after the refusal (logged, fd closed).
 */
static bool
admit(struct session_server *srv, const struct session_listener *l, int fd,
      const struct sockaddr *sa, char ip[INET6_ADDRSTRLEN])
{
	char buf[512];
	int one = 1;

	sockaddr_ntop(sa, ip, INET6_ADDRSTRLEN);
	if (cidr_list_match(l->deny, sa) ||
	    (l->allow->n > 0 && !cidr_list_match(l->allow, sa))) {
		l->ops->refusal(l, SESSION_REFUSE_ACCESS, NULL, buf,
				sizeof(buf));
		log_event(LOG_INFO, l->ops->name, "reject", LF_STR("ip", ip),
			  LF_STR("listener", l->name),
			  LF_STR("reason", "access-list"));
		metrics_connection(l->index, METRICS_CONN_ACCESS_DENIED);
		metrics_reject("access-list");
		refuse(l, fd, buf);
		return false;
	}
	if (refused_by_limits(srv, l, fd, sa, ip))
		return false;
	metrics_connection(l->index, METRICS_CONN_ACCEPTED);
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	/* replies are written whole, once per batch of commands: Nagle would
	 * only hold them back behind the client's delayed ACK */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return true;
}

/* A fresh session id for logs: 16 hex digits, unique per host and boot. */
static void
session_id(struct session_server *srv, char id[17])
{
	snprintf(id, 17, "%02x%014llx", srv->slot & 0xff,
		 ((unsigned long long)(++srv->session_seq) ^
		  ((unsigned long long)getpid() << 32)) &
			 0xffffffffffffffULL);
}

/* ---- stress ------------------------------------------------------- */

void
session_server_stress_check(struct session_server *srv)
{
	struct session *s;
	unsigned total;
	int change;

	change = limits_stress_update(srv->limits, &srv->policy, &total);
	if (change > 0)
		log_event(LOG_WARNING, "daemon", "stress-on",
			  LF_UINT("connections", total),
			  LF_UINT("max_connections",
				  srv->policy.max_connections),
			  LF_UINT("threshold", srv->policy.stress_on),
			  LF_UINT("stress_timeout_s", srv->stress_timeout));
	else if (change < 0)
		log_event(LOG_INFO, "daemon", "stress-off",
			  LF_UINT("connections", total),
			  LF_UINT("max_connections",
				  srv->policy.max_connections),
			  LF_UINT("below", srv->policy.stress_off));
	if (limits_stress(srv->limits) == srv->stress)
		return;
	srv->stress = !srv->stress;
	if (!srv->stress)
		return;
	/* shorten what the not logged in wait for */
	TAILQ_FOREACH(s, &srv->sessions, entry)
		if (!s->logged_in)
			deadline_shorten(&s->deadline,
					 srv->stress_timeout * 1000);
}

/* ---- timeouts ----------------------------------------------------- */

uint64_t
session_pre_auth_ms(const struct session *s, uint64_t seconds)
{
	if (!s->logged_in && s->srv->stress &&
	    s->srv->stress_timeout < seconds)
		seconds = s->srv->stress_timeout;
	return seconds * 1000;
}

/*
 * The session waits for a command line: its deadline runs from now
 * until the line is complete, however the bytes trickle in (it is not
 * restarted while it runs).
 */
void
session_wait_line(struct session *s)
{
	if (s->tls_pending || s->deadline.kind == DEADLINE_LINE)
		return;
	deadline_start(&s->deadline, DEADLINE_LINE,
		       session_pre_auth_ms(s, s->ops->line_timeout(s)), 0);
}

void
session_wait_data(struct session *s, uint64_t allow_s, uint64_t rate)
{
	deadline_start(&s->deadline, DEADLINE_DATA, allow_s * 1000, rate);
}

static void
wait_tls(struct session *s)
{
	deadline_start(&s->deadline, DEADLINE_TLS,
		       session_pre_auth_ms(s, s->srv->tls_handshake_timeout),
		       0);
}

/*
 * libevent's timeouts: the write timeout catches a client that stops
 * reading our replies. A read timeout, which restarts with every read,
 * is only an idle limit between blocks of a message's text; everything
 * else the client must send is bounded by s->deadline instead.
 */
void
session_set_timeouts(struct session *s, uint64_t idle_s, uint64_t write_s)
{
	struct timeval r = {(time_t)idle_s, 0};
	struct timeval wr = {(time_t)write_s, 0};

	bufferevent_set_timeouts(s->bev, idle_s > 0 ? &r : NULL, &wr);
}

static void
deadline_expired(void *arg, enum deadline_kind kind)
{
	struct session *s = arg;

	if (s->closing)
		return;
	log_event(LOG_INFO, s->ops->name, "timeout", LF_STR("session", s->id),
		  LF_STR("ip", s->ip), LF_STR("state", s->ops->state_name(s)),
		  LF_STR("wait", deadline_kind_name(kind)),
		  LF_UINT("limit_ms", s->deadline.allow_ms));
	if (kind == DEADLINE_TLS) {
		/* nothing can be said in the middle of a handshake */
		session_free(s, "timeout");
		return;
	}
	s->ops->timeout_reply(s);
	session_close(s, "timeout");
}

/* ---- the end ------------------------------------------------------ */

void
session_free(struct session *s, const char *reason)
{
	struct session_server *srv = s->srv;

	s->ops->free(s, reason);
	if (s->auth_job != NULL) {
		/* the auth queue frees the job and its SASL session */
		s->auth_job->done = NULL;
		s->auth_job->arg = NULL;
		s->auth_job = NULL;
	}
	sasl_free(&s->sasl);
	if (s->auth_timer != NULL)
		event_free(s->auth_timer);
	close_wait_clear(&s->close_wait);
	deadline_clear(&s->deadline);
	if (s->bev != NULL)
		bufferevent_free(s->bev);
	if (s->counted)
		release(srv, (struct sockaddr *)&s->ss);
	TAILQ_REMOVE(&srv->sessions, s, entry);
	srv->nsessions--;
	free(s);
	srv->gone(srv->gone_arg);
}

/*
 * The session ends once the output is flushed, and its disconnect line
 * gives the first reason it was closed for (one of the words listed in
 * docs/operations.md, "Disconnect reasons").
 */
void
session_close(struct session *s, const char *reason)
{
	if (s->close_reason == NULL)
		s->close_reason = reason;
	s->closing = true;
	s->ops->closing(s);
	deadline_stop(&s->deadline);
	close_wait_begin(s->bev);
}

void
session_server_shutdown(struct session_server *srv)
{
	struct session *s, *next;

	for (s = TAILQ_FIRST(&srv->sessions); s != NULL; s = next) {
		next = TAILQ_NEXT(s, entry);
		s->ops->shutdown(s);
	}
}

void
session_server_free_all(struct session_server *srv)
{
	struct session *s;

	while ((s = TAILQ_FIRST(&srv->sessions)) != NULL)
		session_free(s, "exit");
}

/* ---- input -------------------------------------------------------- */

void
session_flush(struct session *s)
{
	if (s->ops->flush != NULL)
		s->ops->flush(s);
}

void
session_process(struct session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	char line[SESSION_LINE_MAX + 2];
	size_t len;
	int r;

	/* nothing counts until the TLS handshake is done (tls_done), and
	 * STARTTLS may be the last command */
	while (!s->tls_pending) {
		if ((r = s->ops->input(s, in)) < 0)
			return;
		if (r > 0)
			continue;
		if (evbuffer_get_length(bufferevent_get_output(s->bev)) >
		    s->ops->output_high) {
			/* the client pipelines but does not read: wait */
			s->paused = true;
			bufferevent_disable(s->bev, EV_READ);
			deadline_stop(&s->deadline);
			return;
		}
		r = s->ops->next_line(s, in, line, sizeof(line), &len);
		if (r == 0)
			session_wait_line(s);
		if (r <= 0)
			return;
		deadline_stop(&s->deadline);
		s->ops->on_line(s, line, len);
		if (s->srv->stopping)
			s->ops->shutdown(s);
	}
}

/* ---- callbacks ---------------------------------------------------- */

static void
read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	session_process(arg);
	session_flush(arg);
}

/* The TLS output has drained (or never will): the end. */
static void
free_closed(void *arg)
{
	struct session *s = arg;

	session_free(s, s->close_reason);
}

static void
write_cb(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;

	if (s->closing) {
		if (close_wait_flushed(&s->close_wait, s->srv->base, bev,
				       free_closed, s))
			session_free(s, s->close_reason);
		return;
	}
	if (s->ops->drained != NULL && s->ops->drained(s)) {
		/* the protocol took the turn */
	} else if (s->paused) {
		s->paused = false;
		bufferevent_enable(bev, EV_READ);
		session_process(s);
	}
	session_flush(s);
}

/* The handshake is done. */
static void
tls_done(struct session *s)
{
	SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
	const SSL_CIPHER *c = SSL_get_current_cipher(ssl);

	s->tls_pending = false;
	s->tls = true;
	deadline_stop(&s->deadline);
	metrics_tls(false, SSL_get_version(ssl));
	log_event(LOG_INFO, s->ops->name, "tls", LF_STR("session", s->id),
		  LF_STR("ip", s->ip), LF_STR("version", SSL_get_version(ssl)),
		  LF_STR("cipher", c != NULL ? SSL_CIPHER_get_name(c) : "-"));
	s->ops->on_tls(s);
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct session *s = arg;
	const char *reason;
	char err[128];

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		tls_done(s);
		session_process(s);
		return;
	}
	if ((what & BEV_EVENT_TIMEOUT) && !s->closing &&
	    (what & BEV_EVENT_READING)) {
		/* the idle limit between blocks of a message's text */
		s->ops->timeout_reply(s);
		log_event(LOG_INFO, s->ops->name, "timeout",
			  LF_STR("session", s->id), LF_STR("ip", s->ip),
			  LF_STR("state", s->ops->state_name(s)),
			  LF_STR("wait", "idle"));
		session_close(s, "timeout");
		return;
	}
	reason = session_end_reason(s->bev, what, err, sizeof(err));
	if (s->close_reason != NULL) {
		/* we were closing anyway: that is the reason */
		session_free(s, s->close_reason);
		return;
	}
	if (strcmp(reason, "tls-error") == 0)
		log_event(LOG_INFO, s->ops->name, "tls-error",
			  LF_STR("session", s->id), LF_STR("ip", s->ip),
			  LF_STR("error", err));
	session_free(s, reason);
}

/* ---- start and STARTTLS ------------------------------------------- */

static void
setup_bev(struct session *s)
{
	bufferevent_setcb(s->bev, read_cb, write_cb, event_cb, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, s->ops->input_high);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	session_set_timeouts(s, 0, s->write_timeout_s);
}

SSL *
session_ssl_new(struct session *s)
{
	return SSL_new(s->srv->tls_ctx);
}

int
session_starttls(struct session *s, SSL *ssl)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct bufferevent *tls_bev;

	/* a protocol that writes by itself may have turned writing off;
	 * the filter needs it */
	bufferevent_enable(s->bev, EV_WRITE);
	evbuffer_drain(in, evbuffer_get_length(in));
	tls_bev = bufferevent_openssl_filter_new(s->srv->base, s->bev, ssl,
						 BUFFEREVENT_SSL_ACCEPTING,
						 BEV_OPT_CLOSE_ON_FREE);
	if (tls_bev == NULL) {
		SSL_free(ssl);
		return -1;
	}
	session_tls_bev_setup(tls_bev);
	s->bev = tls_bev;
	s->tls_pending = true;
	setup_bev(s);
	wait_tls(s);
	return 0;
}

/* RFC 8314: TLS from the first octet, then the greeting. */
static struct bufferevent *
implicit_tls_bev(struct session_server *srv, int fd)
{
	SSL *ssl = SSL_new(srv->tls_ctx);
	struct bufferevent *bev;

	if (ssl == NULL)
		return NULL;
	bev = bufferevent_openssl_socket_new(srv->base, fd, ssl,
					     BUFFEREVENT_SSL_ACCEPTING,
					     BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	session_tls_bev_setup(bev);
	return bev;
}

void
session_accept(struct session_server *srv, const struct session_listener *l,
	       int fd, const struct sockaddr *sa, socklen_t salen)
{
	session_accept_proxied(srv, l, fd, sa, salen, NULL);
}

void
session_accept_proxied(struct session_server *srv,
		       const struct session_listener *l, int fd,
		       const struct sockaddr *sa, socklen_t salen,
		       const char *proxy_ip)
{
	struct session *s;
	char ip[INET6_ADDRSTRLEN];

	if (!admit(srv, l, fd, sa, ip))
		return;
	s = xcalloc(1, l->ops->size);
	s->srv = srv;
	s->ops = l->ops;
	s->listener = l;
	s->counted = true;
	memcpy(&s->ss, sa, salen < sizeof(s->ss) ? salen : sizeof(s->ss));
	memcpy(s->ip, ip, sizeof(s->ip));
	if (proxy_ip != NULL)
		snprintf(s->proxy, sizeof(s->proxy), "%s", proxy_ip);
	session_id(srv, s->id);
	s->started_ms = mono_ms();
	s->tls_pending = l->tls_port && srv->tls_ctx != NULL;
	deadline_init(&s->deadline, srv->base, deadline_expired, s);
	if (s->ops->init != NULL)
		s->ops->init(s);
	TAILQ_INSERT_TAIL(&srv->sessions, s, entry);
	srv->nsessions++;

	if (s->tls_pending)
		s->bev = implicit_tls_bev(srv, fd);
	else
		s->bev = bufferevent_socket_new(srv->base, fd,
						BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL) {
		close(fd);
		session_free(s, "no-memory");
		return;
	}
	setup_bev(s);
	s->ops->start(s);
	if (s->tls_pending)
		wait_tls(s);	/* on_tls greets */
}

/* ---- authentication ----------------------------------------------- */

bool
session_auth_banned(struct session *s, const char *user, const char *mech)
{
	struct session_server *srv = s->srv;
	const struct sockaddr *sa = (struct sockaddr *)&s->ss;
	char net[INET6_ADDRSTRLEN + 8];
	bool wide = false;

	if (!limits_banned(srv->limits, sa, now_ms(), NULL, &wide))
		return false;
	limits_net_text(srv->limits, sa, wide, net, sizeof(net));
	log_event(LOG_WARNING, s->ops->name, "auth", LF_STR("session", s->id),
		  LF_STR("ip", s->ip), LF_STR("net", net),
		  LF_STR("user", user != NULL ? user : ""),
		  LF_STR("mech", mech != NULL ? mech : ""),
		  LF_STR("result", "banned"));
	return true;
}

static void
auth_job_done(struct auth_job *job, void *arg)
{
	struct session *s = arg;
	char *chal = job->challenge;

	s->auth_job = NULL;
	s->sasl = job->sasl;
	job->sasl = NULL;
	job->challenge = NULL;
	if (s->closing) {
		/* timed out or shut down meanwhile: nothing more to say */
		free(chal);
		return;
	}
	s->ops->auth_done(s, job->status, chal);
	session_flush(s);
}

void
session_auth_submit(struct session *s, const char *line)
{
	struct auth_job *job = xcalloc(1, sizeof(*job));

	job->sasl = s->sasl;
	s->sasl = NULL;
	job->line = line != NULL ? xstrdup(line) : NULL;
	job->done = auth_job_done;
	job->arg = s;
	s->auth_job = job;
	authq_submit(s->srv->authq, job);
}

static void
auth_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	(void)fd;
	(void)what;
	s->ops->auth_delay_done(s);
	session_flush(s);
}

/*
 * The alerts of a counted failure: each fires once, when its count
 * reaches the threshold (a ban that comes first also fires the
 * address's), so a burst raises one alert and not one per guess.
 */
static void
auth_alerts(struct session *s, const char *user,
	    const struct limits_auth_verdict *v)
{
	const struct alerts_config *a = &s->srv->alerts;
	uint64_t win = s->srv->auth_policy.window_ms / 1000;
	const struct sockaddr *sa = (struct sockaddr *)&s->ss;
	char net[INET6_ADDRSTRLEN + 8];

	if (!a->enabled)
		return;
	limits_net_text(s->srv->limits, sa, v->wide && v->ban_started, net,
			sizeof(net));
	if (a->auth_failures_ip != 0 &&
	    (v->ip_failures == a->auth_failures_ip ||
	     (v->ban_started && v->ip_failures < a->auth_failures_ip)))
		alert_raise_kind(ALERT_AUTH_FAILURES_IP,
				 net[0] != '\0' ? net : s->ip,
				 v->ip_failures, a->auth_failures_ip, win);
	if (a->auth_failures_account != 0 && user != NULL &&
	    v->account_failures == a->auth_failures_account)
		alert_raise_kind(ALERT_AUTH_FAILURES_ACCOUNT, user,
				 v->account_failures,
				 a->auth_failures_account, win);
	if (a->auth_failing_ips != 0 && v->ip_failures == 1 &&
	    v->failing_ips == a->auth_failing_ips)
		alert_raise_kind(ALERT_AUTH_FAILURES_SPREAD, "all-addresses",
				 v->failing_ips, a->auth_failing_ips, win);
}

/* Counts a failure the moment it is decided, and logs it and its ban. */
static void
auth_failure(struct session *s, const char *user, const char *why,
	     struct limits_auth_verdict *v_r)
{
	struct session_server *srv = s->srv;
	const struct sockaddr *sa = (struct sockaddr *)&s->ss;
	const char *cat = s->ops->name, *mech = s->auth_mech;
	char net[INET6_ADDRSTRLEN + 8];

	limits_auth_failure(srv->limits, &srv->auth_policy, sa, user,
			    now_ms(), v_r);
	if (!v_r->banned_before)
		rlimits_auth_failure(srv->rlimits, &srv->auth_policy, sa, user);
	metrics_auth(mech, false);
	metrics_reject("auth-failures");
	limits_net_text(srv->limits, sa, v_r->wide, net, sizeof(net));
	if (v_r->banned_before) {
		/* decided after the ban began: not counted, not told */
		log_event(LOG_WARNING, cat, "auth", LF_STR("session", s->id),
			  LF_STR("ip", s->ip), LF_STR("net", net),
			  LF_STR("user", user), LF_STR("mech", mech),
			  LF_STR("result", "banned"));
		return;
	}
	log_event(LOG_WARNING, cat, "auth", LF_STR("session", s->id),
		  LF_STR("ip", s->ip), LF_STR("user", user),
		  LF_STR("mech", mech), LF_STR("result", "fail"),
		  LF_STR("failure", why), LF_UINT("delay_ms", v_r->delay_ms),
		  LF_BOOL("banned", v_r->ban_started));
	auth_alerts(s, user, v_r);
	if (v_r->ban_started)
		log_event(LOG_WARNING, cat, "ban", LF_STR("ip", s->ip),
			  LF_STR("net", net),
			  LF_STR("reason", "auth-failures"),
			  LF_UINT("ban_s", srv->auth_policy.ban_ms / 1000));
}

bool
session_auth_failed(struct session *s, const char *user, enum sasl_status st)
{
	struct limits_auth_verdict v;
	struct timeval tv;

	auth_failure(s, user,
		     st == SASL_CANCELLED     ? "cancelled"
		     : st == SASL_FAIL_SYNTAX ? "syntax"
					      : "credentials",
		     &v);
	if (v.banned_before)
		return false;
	s->auth_ban = v.ban_started;
	s->auth_fail = st;
	tv.tv_sec = (time_t)(v.delay_ms / 1000);
	tv.tv_usec = (suseconds_t)(v.delay_ms % 1000) * 1000;
	if (s->auth_timer == NULL)
		s->auth_timer = evtimer_new(s->srv->base, auth_timer_cb, s);
	evtimer_add(s->auth_timer, &tv);
	return true;
}
