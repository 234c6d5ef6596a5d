/* See session_proxy.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/event.h>

#include "lib/cidr.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "mail/proxy_proto.h"
#include "net/metrics.h"
#include "net/session.h"
#include "net/session_proxy.h"

/* A connection from a trusted balancer, its header not complete yet. */
struct proxy_wait {
	LIST_ENTRY(proxy_wait) entry;
	struct session_server *srv;
	const struct session_listener *l;
	int fd;
	struct event *ev;
	struct sockaddr_storage peer;	/* the balancer */
	socklen_t peerlen;
	char ip[INET6_ADDRSTRLEN];
	uint64_t end_ms;	/* mono_ms() when the header is due */
	size_t have;		/* octets of the header taken so far */
	unsigned char buf[PROXY_HEADER_MAX];
};

static void
wait_free(struct proxy_wait **wp)
{
	struct proxy_wait *w = *wp;

	if (w == NULL)
		return;
	LIST_REMOVE(w, entry);
	w->srv->nproxy_waits--;
	if (w->ev != NULL)
		event_free(w->ev);
	if (w->fd >= 0)
		close(w->fd);
	free(w);
	*wp = NULL;
}

/* The connection is closed: logged with why, and counted as a refusal. */
static void
wait_fail(struct proxy_wait *w, int level, const char *reason,
	  const char *error)
{
	const struct session_listener *l = w->l;

	log_event(level, l->ops->name, "reject", LF_STR("ip", w->ip),
		  LF_STR("listener", l->name), LF_STR("reason", reason),
		  LF_STR_IF(error != NULL, "error", error),
		  LF_UINT("received", w->have));
	metrics_reject(reason);
	wait_free(&w);
}

static void
wait_arm(struct proxy_wait *w)
{
	uint64_t now = mono_ms(), left = w->end_ms > now ? w->end_ms - now : 0;
	struct timeval tv = {(time_t)(left / 1000),
			     (suseconds_t)(left % 1000) * 1000};

	event_add(w->ev, &tv);
}

/* The header is in: the session starts with the client's address. */
static void
wait_done(struct proxy_wait *w, const struct proxy_info *info)
{
	struct session_server *srv = w->srv;
	const struct session_listener *l = w->l;
	struct sockaddr_storage ss;
	socklen_t len;
	char ip[INET6_ADDRSTRLEN];
	int fd = w->fd;

	if (info->local) {
		/* a health check, or no address given: the balancer's own */
		ss = w->peer;
		len = w->peerlen;
	} else {
		ss = info->src;
		len = info->srclen;
	}
	memcpy(ip, w->ip, sizeof(ip));
	w->fd = -1;
	wait_free(&w);
	session_accept_proxied(srv, l, fd, (struct sockaddr *)&ss, len, ip);
}

static void
wait_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proxy_wait *w = arg;
	struct proxy_info info;
	const char *error;
	size_t need, room = sizeof(w->buf) - w->have;
	ssize_t n, got;
	int r;

	if (what & EV_TIMEOUT) {
		wait_fail(w, LOG_INFO, "proxy-timeout", NULL);
		return;
	}
	/* look first: what follows the header is the session's */
	n = recv(fd, w->buf + w->have, room, MSG_PEEK);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
		      errno == EINTR)) {
		wait_arm(w);
		return;
	}
	if (n <= 0) {
		/* a balancer's bare TCP check connects and closes: quiet */
		wait_fail(w, w->have == 0 && n == 0 ? LOG_DEBUG : LOG_INFO,
			  "proxy-eof", n < 0 ? strerror(errno) : NULL);
		return;
	}
	r = proxy_parse(w->buf, w->have + (size_t)n, &info, &need, &error);
	if (r < 0) {
		w->have += (size_t)n;
		wait_fail(w, LOG_INFO, "proxy-bad", error);
		return;
	}
	/* need more: all of it is header; done: up to its end only */
	if (r > 0)
		n = (ssize_t)((size_t)r - w->have);
	got = recv(fd, w->buf + w->have, (size_t)n, 0);
	if (got != n) {
		wait_fail(w, LOG_INFO, "proxy-eof",
			  got < 0 ? strerror(errno) : "short read");
		return;
	}
	w->have += (size_t)got;
	if (r == 0) {
		wait_arm(w);
		return;
	}
	wait_done(w, &info);
}

void
session_proxy_accept(struct session_server *srv,
		     const struct session_listener *l, int fd,
		     const struct sockaddr *sa, socklen_t salen)
{
	struct proxy_wait *w;
	uint64_t allow_s = srv->tls_handshake_timeout;
	char ip[INET6_ADDRSTRLEN];

	sockaddr_ntop(sa, ip, sizeof(ip));
	if (l->proxy_trusted == NULL ||
	    !cidr_list_match(l->proxy_trusted, sa)) {
		/* not a balancer of ours: a client must not name its own
		 * address, and nothing is said (it would not be read as
		 * either protocol) */
		log_event(LOG_INFO, l->ops->name, "reject", LF_STR("ip", ip),
			  LF_STR("listener", l->name),
			  LF_STR("reason", "proxy-untrusted"));
		metrics_connection(l->index, METRICS_CONN_ACCESS_DENIED);
		metrics_reject("proxy-untrusted");
		close(fd);
		return;
	}
	if (srv->policy.max_connections > 0 &&
	    srv->nproxy_waits >= srv->policy.max_connections) {
		log_event(LOG_WARNING, l->ops->name, "reject", LF_STR("ip", ip),
			  LF_STR("listener", l->name),
			  LF_STR("reason", "limit"),
			  LF_STR("limit", "proxy-pending"));
		metrics_connection(l->index, METRICS_CONN_LIMIT);
		metrics_reject("limit");
		close(fd);
		return;
	}
	w = xcalloc(1, sizeof(*w));
	w->srv = srv;
	w->l = l;
	w->fd = fd;
	memcpy(&w->peer, sa,
	       salen < sizeof(w->peer) ? salen : sizeof(w->peer));
	w->peerlen = salen < sizeof(w->peer) ? salen : sizeof(w->peer);
	memcpy(w->ip, ip, sizeof(ip));
	if (srv->stress && srv->stress_timeout < allow_s)
		allow_s = srv->stress_timeout;
	w->end_ms = mono_ms() + allow_s * 1000;
	LIST_INSERT_HEAD(&srv->proxy_waits, w, entry);
	srv->nproxy_waits++;
	w->ev = event_new(srv->base, fd, EV_READ, wait_cb, w);
	if (w->ev == NULL) {
		wait_fail(w, LOG_WARNING, "no-memory", NULL);
		return;
	}
	wait_arm(w);
}

void
session_proxy_free_all(struct session_server *srv)
{
	struct proxy_wait *w;

	while ((w = LIST_FIRST(&srv->proxy_waits)) != NULL)
		wait_free(&w);
}
