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
#include "net/lookupq.h"
#include "net/session.h"
#include "imapd/imap_server.h"
#include "pop3d/pop3_server.h"
#include "smtpd/smtp_server.h"
#include "store/userdb.h"
#include "daemon/worker.h"
#include "net/dns.h"
#include "net/redis.h"
#include "net/redis_limits.h"
#include "net/metrics_http.h"
#include "net/session_proxy.h"

/*
 * The protocol of each kind of listener: its session ops, and whether
 * TLS starts with the first octet (RFC 8314). The one place where the
 * worker meets the protocols.
 */
static const struct session_ops *
listener_ops(enum listener_proto proto, bool *tls_port_r)
{
	*tls_port_r = proto == PROTO_SUBMISSIONS || proto == PROTO_POP3S ||
		      proto == PROTO_IMAPS;
	switch (proto) {
	case PROTO_SMTP:
	case PROTO_SUBMISSION:
	case PROTO_SUBMISSIONS:
		return &smtp_session_ops;
	case PROTO_POP3:
	case PROTO_POP3S:
		return &pop3_session_ops;
	case PROTO_IMAP:
	case PROTO_IMAPS:
		return &imap_session_ops;
	case PROTO_METRICS:	/* HTTP: net/metrics_http, no session */
	default:
		/* refused at start-up by serve; never reached */
		return NULL;
	}
}

/* What the listener's protocol reads of the configuration. */
static const void *
listener_settings(const struct worker *w, const struct session_ops *ops)
{
	if (ops == &pop3_session_ops)
		return &w->pop3d;
	if (ops == &imap_session_ops)
		return &w->imapd;
	return &w->smtpd;
}

static void
stress_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)what;
	session_server_stress_check(&w->srv);
}

struct accept_ctx {
	struct worker *w;
	struct session_listener l;
};

static void
on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
	  int salen, void *arg)
{
	struct accept_ctx *a = arg;

	(void)lev;
	if (a->l.ops == NULL) {
		close(fd);
		return;
	}
	if (a->l.proxy)
		session_proxy_accept(&a->w->srv, &a->l, fd, sa,
				     (socklen_t)salen);
	else
		session_accept(&a->w->srv, &a->l, fd, sa, (socklen_t)salen);
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
	for (size_t i = 0; i < w->nlev; i++) {
		if (w->lev[i] != NULL)
			evconnlistener_free(w->lev[i]);
		metrics_http_stop(w->mhttp[i]);
	}
	w->nlev = 0;
}

static void
maybe_exit(struct worker *w)
{
	if ((w->srv.stopping || w->draining) && w->srv.nsessions == 0)
		event_base_loopexit(w->srv.base, NULL);
}

/*
 * Giving memory back after a burst of sessions. glibc returns freed heap
 * memory to the system only from the top of the heap, and the few blocks
 * that outlive a burst (sessions still open, libevent's and OpenSSL's own)
 * pin the top where the burst left it: 600 sessions at once left a worker
 * at 40 MB with 1 MB in use (rounds of abuse took workers from 10 MB
 * to 60-80 MB). malloc_trim(0) also releases the free pages in
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
	w->peak = w->srv.nsessions;
}

/*
 * A session ended (nsessions already counts it out): the worker may now
 * be able to exit, or give memory back.
 */
static void
session_gone(void *arg)
{
	struct worker *w = arg;
	unsigned n = w->srv.nsessions;

	/* the highest count is always seen here: it lasts until a close */
	if (n + 1 > w->peak)
		w->peak = n + 1;
	if (w->trim != NULL && w->peak >= TRIM_MIN_PEAK &&
	    2 * n <= w->peak && !evtimer_pending(w->trim, NULL)) {
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
	log_info("exiting with %u session%s still open", w->srv.nsessions,
		 w->srv.nsessions == 1 ? "" : "s");
	event_base_loopexit(w->srv.base, NULL);
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct worker *w = arg;
	struct timeval tv = {0, 0};

	(void)what;
	if (sig == SIGTERM && !w->srv.stopping) {
		w->srv.stopping = true;
		tv.tv_sec = (time_t)w->config->limits.shutdown_timeout;
		stop_listening(w);
		session_proxy_free_all(&w->srv);
		session_server_shutdown(&w->srv);
	} else if (sig == SIGUSR2 && !w->draining && !w->srv.stopping) {
		w->draining = true;
		/* sessions end by themselves; the command timeout bounds
		 * an idle one, this bounds a slow one */
		tv.tv_sec = (time_t)w->config->smtp.timeout_command * 2;
		stop_listening(w);
	} else {
		return;
	}
	if (w->deadline == NULL)
		w->deadline = evtimer_new(w->srv.base, deadline_cb, w);
	evtimer_add(w->deadline, &tv);
	maybe_exit(w);
}

/* The connection limits and the brute-force brakes, from the config. */
static void
policies_init(struct session_server *srv, const struct config *config)
{
	srv->policy.max_connections = config->limits.max_connections;
	srv->policy.max_connections_per_ip =
	    config->limits.max_connections_per_ip;
	srv->policy.rate_count = config->limits.conn_rate_count;
	srv->policy.rate_window_ms = config->limits.conn_rate_window * 1000;
	srv->policy.greet_pass_ttl_ms = config->limits.greet_pass_ttl * 1000;
	if (config->limits.stress_threshold > 0) {
		/* at least one connection; stress ends below two thirds */
		uint64_t on = ((uint64_t)config->limits.max_connections *
				   config->limits.stress_threshold + 99) / 100;

		srv->policy.stress_on = (unsigned)on;
		if (srv->policy.stress_on == 0)
			srv->policy.stress_on = 1;
		srv->policy.stress_off = srv->policy.stress_on * 2 / 3;
		if (srv->policy.stress_off == 0)
			srv->policy.stress_off = 1;
	}
	srv->policy.wide_factor = config->limits.ipv6_wide_factor;
	srv->auth_policy.max_failures_ip = config->auth.max_failures_ip;
	srv->auth_policy.max_failures_account =
		config->auth.max_failures_account;
	srv->auth_policy.window_ms = config->auth.failure_window * 1000;
	srv->auth_policy.ban_ms = config->auth.ban_time * 1000;
	srv->auth_policy.delay_base_ms = config->auth.delay_base_ms;
	srv->auth_policy.delay_max_ms = config->auth.delay_max_ms;
	srv->auth_policy.wide_factor = config->limits.ipv6_wide_factor;
	srv->alerts = config->alerts;	/* its strings stay the config's */
}

/* What the SMTP sessions need for mail authentication: the checks'
 * settings, the signing keys, a resolver when any check is on. */
static void
checks_init(struct worker *w, const struct config *config,
	    const struct dkim_keyring *keyring)
{
	const struct checks_config *cc = &config->checks;
	struct dns_resolver_config dc = {
		.mode = config->dns.mode,
		.forwarders = (const char *const *)config->dns.forwarders,
		.nforwarders = config->dns.nforwarders,
		.trust_anchor = config->dns.trust_anchor,
	};
	char *error = NULL;

	w->smtpd.keyring = keyring;
	w->smtpd.msgauth = (struct msgauth_config){
		.authserv_id = cc->authserv_id,
		.hostname = config->hostname,
		.timeout_ms = (unsigned)cc->timeout * 1000,
		.spf = cc->spf,
		.dkim = cc->dkim_verify,
		.dmarc = cc->dmarc,
	};
	/* the DNS block and allow lists need it too */
	if (!cc->spf && !cc->dkim_verify && !cc->dmarc &&
	    config->filter.dnsbl.ndnsbl + config->filter.dnsbl.ndnswl == 0)
		return;
	if ((w->resolver = dns_resolver_new(w->srv.base, &dc, &error)) == NULL)
		fatalx("dns: %s", error);
	w->smtpd.resolver = w->resolver;
}

/* Greylisting's database, shared by the workers. A database that cannot
 * be opened stops the worker: greylisting was asked for. */
static void
greylist_init(struct worker *w, const struct config *config)
{
	char *path, *error = NULL;

	if (!config->filter.greylist.enabled)
		return;
	path = xasprintf("%s/filter/greylist.sqlite", config->data_dir);
	w->greylist = greylist_open(path, &config->filter.greylist, &error);
	free(path);
	if (w->greylist == NULL)
		fatalx("greylist: %s", error);
	w->smtpd.greylist = w->greylist;
}

/* A listener on every inherited socket, each with its protocol's ops. */
static struct accept_ctx *
listen_all(struct worker *w, const struct bound_socket *socks, size_t nsocks)
{
	struct accept_ctx *actx;

	actx = xcalloc(nsocks, sizeof(*actx));
	w->lev = xcalloc(nsocks, sizeof(*w->lev));
	w->mhttp = xcalloc(nsocks, sizeof(*w->mhttp));
	w->nmhttp = nsocks;
	for (size_t i = 0; i < nsocks; i++) {
		const struct config_listener *l = socks[i].listener;
		const char *error;

		actx[i].w = w;
		if (l->proto == PROTO_METRICS) {
			w->mhttp[i] = metrics_http_new(
			    w->srv.base, socks[i].fd, l, w->config->listeners,
			    w->config->nlisteners, &error);
			if (w->mhttp[i] == NULL)
				fatalx("cannot serve metrics on %s: %s",
				       socks[i].addr_text, error);
			continue;
		}
		actx[i].l.ops = listener_ops(l->proto, &actx[i].l.tls_port);
		actx[i].l.name = l->name;
		actx[i].l.index = l->index;
		actx[i].l.allow = &l->allow;
		actx[i].l.deny = &l->deny;
		actx[i].l.proxy = l->proxy_protocol;
		actx[i].l.proxy_trusted = &l->proxy_trusted;
		actx[i].l.conf = l;
		actx[i].l.settings = listener_settings(w, actx[i].l.ops);
		/* backlog 0: the parent's listen() stands; any other value
		 * makes libevent call listen() again (-1 means 128), which
		 * shrinks the queue every worker shares */
		w->lev[i] = evconnlistener_new(w->srv.base, on_accept,
					       &actx[i], LEV_OPT_CLOSE_ON_FREE,
					       0, socks[i].fd);
		if (w->lev[i] == NULL)
			fatalx("cannot listen on %s", socks[i].addr_text);
		evconnlistener_set_error_cb(w->lev[i], on_accept_error);
	}
	w->nlev = nsocks;
	return actx;
}

/*
 * What a worker opens before its loop runs: the user database, the
 * checks' resolver and keys, greylisting, and its threads (committer,
 * auth, the attachment walk), and the heap trim's timer.
 */
static void
worker_open(struct worker *w, const struct config *config,
	    const struct dkim_keyring *keyring)
{
	char *error = NULL;

	if ((w->srv.lookupq = lookupq_new(w->srv.base, &config->userdb,
					  &error)) == NULL)
		fatalx("user database: %s", error);
	checks_init(w, config, keyring);
	greylist_init(w, config);
	/* down until connected: the local tables answer meanwhile */
	if ((w->redis = redis_new(w->srv.base, &config->redis)) !=
	    NULL)
		w->srv.rlimits = rlimits_new(w->redis, w->srv.limits);
	w->srv.committer = committer_new(w->srv.base, config->data_dir,
					 config->mail_dir, config->hostname);
	committer_set_audit(w->srv.committer, config->audit.enabled);
	auth_cache_set_ttl(config->auth.cache_ttl);
	if ((w->srv.authq = authq_new(w->srv.base, &config->userdb,
				      &error)) == NULL)
		fatalx("user database: %s", error);
	if (config->filter.attachments.enabled &&
	    (w->smtpd.attachq = attachq_new(w->srv.base,
					    &config->filter.attachments,
					    &error)) == NULL)
		fatalx("filter.attachments: %s", error);
	if ((w->trim = evtimer_new(w->srv.base, trim_cb, w)) == NULL)
		fatalx("event_new failed");
}

/* After the loop: sessions, listeners, threads and the rest closed. */
static void
worker_close(struct worker *w)
{
	stop_listening(w);
	event_free(w->stress_timer);
	session_proxy_free_all(&w->srv);
	session_server_free_all(&w->srv);
	dns_resolver_free(&w->resolver);
	greylist_close(&w->greylist);
	rlimits_free(&w->srv.rlimits);
	redis_free(&w->redis);
	/* what was accepted must be made durable (or fail) before exit */
	committer_free(&w->srv.committer);
	authq_free(&w->srv.authq);
	lookupq_free(&w->srv.lookupq);
	attachq_free(&w->smtpd.attachq);
	if (w->deadline != NULL)
		event_free(w->deadline);
	event_free(w->trim);
	for (size_t i = 0; i < w->nmhttp; i++)
		metrics_http_free(&w->mhttp[i]);
	event_base_free(w->srv.base);
	free(w->lev);
	free(w->mhttp);
}

int
worker_main(const struct config *config, const struct bound_socket *socks,
	    size_t nsocks, struct limits *limits, struct ssl_ctx_st *tls_ctx,
	    const struct dkim_keyring *keyring, unsigned slot)
{
	struct worker w;
	struct retention *retention = NULL;
	struct event *sigs[3];
	struct accept_ctx *actx;
	char name[32];
	int sigv[3] = {SIGTERM, SIGUSR2, SIGHUP};

	memset(&w, 0, sizeof(w));
	snprintf(name, sizeof(name), "worker/%u", slot);
	log_set_process(name);
	TAILQ_INIT(&w.srv.sessions);
	w.config = config;
	config_smtpd_settings(config, &w.smtpd);
	config_pop3d_settings(config, &w.pop3d);
	config_imapd_settings(config, &w.imapd);
	w.srv.limits = limits;
	w.srv.slot = slot;
	w.srv.tls_ctx = tls_ctx;
	w.srv.stress_timeout = config->limits.stress_timeout;
	w.srv.tls_handshake_timeout = config->tls.handshake_timeout;
	w.srv.gone = session_gone;
	w.srv.gone_arg = &w;
	queue_id_init(slot);
	policies_init(&w.srv, config);
	signal(SIGINT, SIG_IGN);	/* the parent decides */
	signal(SIGPIPE, SIG_IGN);

	/* the changelist folds the add/del pairs a bufferevent makes within
	 * one loop iteration into one epoll_ctl (or none) */
	struct event_config *ecfg = event_config_new();
	event_config_set_flag(ecfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	w.srv.base = event_base_new_with_config(ecfg);
	event_config_free(ecfg);
	if (w.srv.base == NULL)
		fatalx("event_base_new failed");
	worker_open(&w, config, keyring);

	actx = listen_all(&w, socks, nsocks);
	for (size_t i = 0; i < 3; i++) {
		sigs[i] = evsignal_new(w.srv.base, sigv[i], signal_cb, &w);
		evsignal_add(sigs[i], NULL);
	}
	/* another worker's admissions can begin stress: this one learns of
	 * it within a second */
	{
		struct timeval one = {1, 0};

		w.stress_timer = event_new(w.srv.base, -1, EV_PERSIST,
					   stress_timer_cb, &w);
		evtimer_add(w.stress_timer, &one);
	}
	/* one sweeper is enough; across a reload two may overlap briefly,
	 * which the per-mailbox lock makes harmless. Started while signals
	 * are blocked, like the other threads, so they reach the loop. */
	if (slot == 0)
		retention =
		    retention_start(&config->retention, config->mail_dir);
	/* blocked by the parent across fork(); ours to take now */
	signals_unblock_all();

	log_event(LOG_DEBUG, "daemon", "worker-start", LF_UINT("slot", slot),
		  LF_INT("pid", getpid()));
	event_base_dispatch(w.srv.base);
	retention_stop(&retention);

	for (size_t i = 0; i < 3; i++)
		event_free(sigs[i]);
	worker_close(&w);
	free(actx);
	log_event(LOG_DEBUG, "daemon", "worker-exit", LF_UINT("slot", slot));
	return 0;
}
