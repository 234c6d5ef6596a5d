/*
 * Worker process: accepts on the inherited listening sockets and runs the
 * sessions in one event loop. SIGTERM: stop accepting, let transactions
 * finish (bounded by shutdown_timeout), exit. SIGUSR2 (sent by the parent
 * on reload): stop accepting, let every session end by itself, exit.
 */
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "net/auth.h"
#include "daemon/config.h"
#include "store/deliver.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "lib/log.h"
#include "store/queue.h"
#include "store/retention.h"
#include "lib/cidr.h"
#include "pop3d/pop3_server.h"
#include "smtpd/smtp_server.h"
#include "store/userdb.h"
#include "daemon/worker.h"

static bool
is_pop3(const struct config_listener *l)
{
	return l->proto == PROTO_POP3 || l->proto == PROTO_POP3S;
}

/*
 * On an implicit-TLS port the client's first octets are a ClientHello: a
 * plaintext reply would only be a TLS error there, so we just close.
 */
static void
refuse(const struct config_listener *l, int fd, const char *text)
{
	if (l->proto == PROTO_SUBMISSIONS || l->proto == PROTO_POP3S) {
		close(fd);
		return;
	}
	/* best effort: the socket is fresh, the reply fits its buffer */
	if (write(fd, text, strlen(text)) < 0) {
		/* the client is gone already */
	}
	close(fd);
}

/*
 * The same three doors for every protocol, each refusal in the
 * protocol's own words: SMTP (RFC 5321 3.1: 554 or 421) or POP3 (RFC 2449
 * response codes).
 */
bool
worker_admit(struct worker *w, const struct config_listener *l, int fd,
	     const struct sockaddr *sa, char ip[INET6_ADDRSTRLEN])
{
	const struct config *cf = w->config;
	const char *cat = is_pop3(l) ? "pop3" : "smtp";
	enum limits_verdict v;
	char buf[512], net[INET6_ADDRSTRLEN + 8];
	bool wide = false;
	int one = 1;

	sockaddr_ntop(sa, ip, INET6_ADDRSTRLEN);
	if (cidr_list_match(&l->deny, sa) ||
	    (l->allow.n > 0 && !cidr_list_match(&l->allow, sa))) {
		if (is_pop3(l))
			snprintf(buf, sizeof(buf),
				 "-ERR [SYS/PERM] access denied\r\n");
		else
			snprintf(buf, sizeof(buf),
				 "554 5.7.1 %s Error: access denied\r\n",
				 cf->hostname);
		log_event(LOG_INFO, cat, "reject", LF_STR("ip", ip),
			  LF_STR("listener", l->name),
			  LF_STR("reason", "access-list"));
		refuse(l, fd, buf);
		return false;
	}
	v = limits_connect(w->limits, &w->policy, w->slot, sa, now_ms());
	worker_stress_check(w);
	if (v != LIMITS_OK) {
		if (is_pop3(l))
			snprintf(buf, sizeof(buf), "-ERR [SYS/TEMP] %s\r\n",
				 limits_verdict_text(v));
		else
			snprintf(buf, sizeof(buf),
				 "421 4.7.0 %s Error: %s\r\n", cf->hostname,
				 limits_verdict_text(v));
		limits_net_text(w->limits, sa, limits_verdict_wide(v), net,
				sizeof(net));
		log_event(LOG_INFO, cat, "reject", LF_STR("ip", ip),
			  LF_STR("net", net), LF_STR("listener", l->name),
			  LF_STR("reason", "limit"),
			  LF_STR("limit", limits_verdict_text(v)));
		refuse(l, fd, buf);
		return false;
	}
	if (limits_banned(w->limits, sa, now_ms(), NULL, &wide)) {
		worker_release(w, sa);
		if (is_pop3(l))
			snprintf(buf, sizeof(buf),
				 "-ERR [SYS/TEMP] too many failed logins "
				 "from your address\r\n");
		else
			snprintf(buf, sizeof(buf),
				 "421 4.7.0 %s Error: too many failed logins "
				 "from your address\r\n",
				 cf->hostname);
		limits_net_text(w->limits, sa, wide, net, sizeof(net));
		log_event(LOG_INFO, cat, "reject", LF_STR("ip", ip),
			  LF_STR("net", net), LF_STR("listener", l->name),
			  LF_STR("reason", "banned"));
		refuse(l, fd, buf);
		return false;
	}
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	/* replies are written whole, once per batch of commands: Nagle would
	 * only hold them back behind the client's delayed ACK */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return true;
}

bool
worker_auth_banned(struct worker *w, const char *cat, const char *session,
		   const struct sockaddr *sa, const char *ip, const char *user,
		   const char *mech)
{
	char net[INET6_ADDRSTRLEN + 8];
	bool wide = false;

	if (!limits_banned(w->limits, sa, now_ms(), NULL, &wide))
		return false;
	limits_net_text(w->limits, sa, wide, net, sizeof(net));
	log_event(LOG_WARNING, cat, "auth", LF_STR("session", session),
		  LF_STR("ip", ip), LF_STR("net", net),
		  LF_STR("user", user != NULL ? user : ""),
		  LF_STR("mech", mech != NULL ? mech : ""),
		  LF_STR("result", "banned"));
	return true;
}

void
worker_auth_failure(struct worker *w, const char *cat, const char *session,
		    const struct sockaddr *sa, const char *ip, const char *user,
		    const char *mech, const char *why,
		    struct limits_auth_verdict *v_r)
{
	char net[INET6_ADDRSTRLEN + 8];

	limits_auth_failure(w->limits, &w->auth_policy, sa, user, now_ms(),
			    v_r);
	limits_net_text(w->limits, sa, v_r->wide, net, sizeof(net));
	if (v_r->banned_before) {
		/* decided after the ban began: not counted, not told */
		log_event(LOG_WARNING, cat, "auth", LF_STR("session", session),
			  LF_STR("ip", ip), LF_STR("net", net),
			  LF_STR("user", user), LF_STR("mech", mech),
			  LF_STR("result", "banned"));
		return;
	}
	log_event(LOG_WARNING, cat, "auth", LF_STR("session", session),
		  LF_STR("ip", ip), LF_STR("user", user), LF_STR("mech", mech),
		  LF_STR("result", "fail"), LF_STR("failure", why),
		  LF_UINT("delay_ms", v_r->delay_ms),
		  LF_BOOL("banned", v_r->ban_started));
	if (v_r->ban_started)
		log_event(LOG_WARNING, cat, "ban", LF_STR("ip", ip),
			  LF_STR("net", net),
			  LF_STR("reason", "auth-failures"),
			  LF_UINT("ban_s", w->auth_policy.ban_ms / 1000));
}

void
worker_release(struct worker *w, const struct sockaddr *sa)
{
	limits_disconnect(w->limits, w->slot, sa);
	worker_stress_check(w);
}

void
worker_stress_check(struct worker *w)
{
	unsigned total;
	int change;

	change = limits_stress_update(w->limits, &w->policy, &total);
	if (change > 0)
		log_event(LOG_WARNING, "daemon", "stress-on",
			  LF_UINT("connections", total),
			  LF_UINT("max_connections", w->policy.max_connections),
			  LF_UINT("threshold", w->policy.stress_on),
			  LF_UINT("stress_timeout_s",
				  w->config->limits.stress_timeout));
	else if (change < 0)
		log_event(LOG_INFO, "daemon", "stress-off",
			  LF_UINT("connections", total),
			  LF_UINT("max_connections", w->policy.max_connections),
			  LF_UINT("below", w->policy.stress_off));
	if (limits_stress(w->limits) == w->stress)
		return;
	w->stress = !w->stress;
	if (w->stress) {
		smtp_sessions_stress(w);
		pop3_sessions_stress(w);
	}
}

static void
stress_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	worker_stress_check(arg);
}

void
worker_session_id(struct worker *w, char id[17])
{
	snprintf(id, 17, "%02x%014llx", w->slot & 0xff,
		 ((unsigned long long)(++w->session_seq) ^
		  ((unsigned long long)getpid() << 32)) &
			 0xffffffffffffffULL);
}

struct accept_ctx {
	struct worker *w;
	const struct bound_socket *sock;
};

static void
on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
	  int salen, void *arg)
{
	struct accept_ctx *a = arg;

	(void)lev;
	switch (a->sock->listener->proto) {
	case PROTO_SMTP:
	case PROTO_SUBMISSION:
	case PROTO_SUBMISSIONS:
		smtp_session_start(a->w, a->sock->listener, fd, sa,
				   (socklen_t)salen);
		break;
	case PROTO_POP3:
	case PROTO_POP3S:
		pop3_session_start(a->w, a->sock->listener, fd, sa,
				   (socklen_t)salen);
		break;
	default:
		/* refused at start-up by serve; never reached */
		close(fd);
		break;
	}
}

static void
on_accept_error(struct evconnlistener *lev, void *arg)
{
	(void)lev;
	(void)arg;
	/* EMFILE and friends: libevent retries on the next readiness */
	log_warn("accept");
}

static void
stop_listening(struct worker *w)
{
	for (size_t i = 0; i < w->nlev; i++)
		evconnlistener_free(w->lev[i]);
	w->nlev = 0;
}

static void
maybe_exit(struct worker *w)
{
	if ((w->stopping || w->draining) && w->nsessions == 0)
		event_base_loopexit(w->base, NULL);
}

/*
 * Giving memory back after a burst of sessions. glibc returns freed heap
 * memory to the system only from the top of the heap, and the few blocks
 * that outlive a burst (sessions still open, libevent's and OpenSSL's own)
 * pin the top where the burst left it: 600 sessions at once left a worker
 * at 40 MB with 1 MB in use (issue 11 saw rounds of abuse take workers
 * from 10 MB to 60-80 MB). malloc_trim(0) also releases the free pages in
 * the middle of the heap. It runs a second after the open sessions have
 * fallen to half of their highest since the last trim (so at most about
 * log2(peak) times as a burst ebbs, and never under a steady load); a few
 * sessions are not worth it.
 */
#define TRIM_MIN_PEAK 8
#define TRIM_DELAY_MS 1000

static void
trim_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)what;
	malloc_trim(0);
	w->peak = w->nsessions;
}

void
worker_session_gone(struct worker *w)
{
	/* the highest count is always seen here: it lasts until a close */
	if (w->nsessions + 1 > w->peak)
		w->peak = w->nsessions + 1;
	if (w->trim != NULL && w->peak >= TRIM_MIN_PEAK &&
	    2 * w->nsessions <= w->peak && !evtimer_pending(w->trim, NULL)) {
		struct timeval tv = {TRIM_DELAY_MS / 1000,
				     (TRIM_DELAY_MS % 1000) * 1000};

		evtimer_add(w->trim, &tv);
	}
	maybe_exit(w);
}

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)what;
	log_info("exiting with %u session%s still open", w->nsessions,
		 w->nsessions == 1 ? "" : "s");
	event_base_loopexit(w->base, NULL);
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct worker *w = arg;
	struct timeval tv = {0, 0};

	(void)what;
	if (sig == SIGTERM && !w->stopping) {
		w->stopping = true;
		tv.tv_sec = (time_t)w->config->limits.shutdown_timeout;
		stop_listening(w);
		smtp_sessions_shutdown(w);
		pop3_sessions_shutdown(w);
	} else if (sig == SIGUSR2 && !w->draining && !w->stopping) {
		w->draining = true;
		/* sessions end by themselves; the command timeout bounds
		 * an idle one, this bounds a slow one */
		tv.tv_sec = (time_t)w->config->smtp.timeout_command * 2;
		stop_listening(w);
	} else {
		return;
	}
	if (w->deadline == NULL)
		w->deadline = evtimer_new(w->base, deadline_cb, w);
	evtimer_add(w->deadline, &tv);
	maybe_exit(w);
}

int
worker_main(const struct config *config, const struct bound_socket *socks,
	    size_t nsocks, struct limits *limits, struct ssl_ctx_st *tls_ctx,
	    unsigned slot)
{
	struct worker w;
	struct retention *retention = NULL;
	struct event *sigs[3];
	struct accept_ctx *actx;
	char name[32], *error = NULL;
	int sigv[3] = {SIGTERM, SIGUSR2, SIGHUP};

	memset(&w, 0, sizeof(w));
	snprintf(name, sizeof(name), "worker/%u", slot);
	log_set_process(name);
	TAILQ_INIT(&w.sessions);
	TAILQ_INIT(&w.pop3_sessions);
	w.config = config;
	config_smtpd_settings(config, &w.smtpd);
	config_pop3d_settings(config, &w.pop3d);
	w.limits = limits;
	w.slot = slot;
	w.tls_ctx = tls_ctx;
	queue_id_init(slot);
	w.policy.max_connections = config->limits.max_connections;
	w.policy.max_connections_per_ip = config->limits.max_connections_per_ip;
	w.policy.rate_count = config->limits.conn_rate_count;
	w.policy.rate_window_ms = config->limits.conn_rate_window * 1000;
	w.policy.greet_pass_ttl_ms = config->limits.greet_pass_ttl * 1000;
	if (config->limits.stress_threshold > 0) {
		/* at least one connection; stress ends below two thirds */
		uint64_t on = ((uint64_t)config->limits.max_connections *
				   config->limits.stress_threshold + 99) / 100;

		w.policy.stress_on = (unsigned)on;
		if (w.policy.stress_on == 0)
			w.policy.stress_on = 1;
		w.policy.stress_off = w.policy.stress_on * 2 / 3;
		if (w.policy.stress_off == 0)
			w.policy.stress_off = 1;
	}
	w.policy.wide_factor = config->limits.ipv6_wide_factor;
	w.auth_policy.max_failures_ip = config->auth.max_failures_ip;
	w.auth_policy.max_failures_account = config->auth.max_failures_account;
	w.auth_policy.window_ms = config->auth.failure_window * 1000;
	w.auth_policy.ban_ms = config->auth.ban_time * 1000;
	w.auth_policy.delay_base_ms = config->auth.delay_base_ms;
	w.auth_policy.delay_max_ms = config->auth.delay_max_ms;
	w.auth_policy.wide_factor = config->limits.ipv6_wide_factor;
	signal(SIGINT, SIG_IGN);	/* the parent decides */
	signal(SIGPIPE, SIG_IGN);

	/* the changelist folds the add/del pairs a bufferevent makes within
	 * one loop iteration into one epoll_ctl (or none) */
	struct event_config *ecfg = event_config_new();
	event_config_set_flag(ecfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	w.base = event_base_new_with_config(ecfg);
	event_config_free(ecfg);
	if (w.base == NULL)
		fatalx("event_base_new failed");
	if (userdb_open(&config->userdb, true, &w.db, &error) < 0)
		fatalx("user database: %s", error);
	w.committer = committer_new(w.base, config->data_dir,
				    config->hostname);
	if ((w.authq = authq_new(w.base, &config->userdb, &error)) == NULL)
		fatalx("user database: %s", error);
	if ((w.trim = evtimer_new(w.base, trim_cb, &w)) == NULL)
		fatalx("event_new failed");

	actx = xcalloc(nsocks, sizeof(*actx));
	w.lev = xcalloc(nsocks, sizeof(*w.lev));
	for (size_t i = 0; i < nsocks; i++) {
		actx[i].w = &w;
		actx[i].sock = &socks[i];
		/* backlog 0: the parent's listen() stands; any other value
		 * makes libevent call listen() again (-1 means 128), which
		 * shrinks the queue every worker shares */
		w.lev[i] = evconnlistener_new(w.base, on_accept, &actx[i],
					      LEV_OPT_CLOSE_ON_FREE, 0,
					      socks[i].fd);
		if (w.lev[i] == NULL)
			fatalx("cannot listen on %s", socks[i].addr_text);
		evconnlistener_set_error_cb(w.lev[i], on_accept_error);
	}
	w.nlev = nsocks;
	for (size_t i = 0; i < 3; i++) {
		sigs[i] = evsignal_new(w.base, sigv[i], signal_cb, &w);
		evsignal_add(sigs[i], NULL);
	}
	/* another worker's admissions can begin stress: this one learns of
	 * it within a second */
	{
		struct timeval one = {1, 0};

		w.stress_timer = event_new(w.base, -1, EV_PERSIST,
					   stress_timer_cb, &w);
		evtimer_add(w.stress_timer, &one);
	}
	/* one sweeper is enough; across a reload two may overlap briefly,
	 * which the per-mailbox lock makes harmless. Started while signals
	 * are blocked, like the other threads, so they reach the loop. */
	if (slot == 0)
		retention = retention_start(&config->retention, config->data_dir);
	/* blocked by the parent across fork(); ours to take now */
	signals_unblock_all();

	log_event(LOG_DEBUG, "daemon", "worker-start", LF_UINT("slot", slot),
		  LF_INT("pid", getpid()));
	event_base_dispatch(w.base);
	retention_stop(&retention);

	stop_listening(&w);
	event_free(w.stress_timer);
	smtp_sessions_free(&w);
	pop3_sessions_free(&w);
	/* what was accepted must be made durable (or fail) before exit */
	committer_free(&w.committer);
	authq_free(&w.authq);
	for (size_t i = 0; i < 3; i++)
		event_free(sigs[i]);
	if (w.deadline != NULL)
		event_free(w.deadline);
	event_free(w.trim);
	event_base_free(w.base);
	userdb_close(&w.db);
	free(w.lev);
	free(actx);
	log_event(LOG_DEBUG, "daemon", "worker-exit", LF_UINT("slot", slot));
	return 0;
}
