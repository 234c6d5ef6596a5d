/*
 * A metrics listener served by evhttp (net/metrics_http.h). The render is
 * a few kilobytes built from the shared counters in one pass, so a scrape
 * holds the worker's loop for microseconds.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "lib/cidr.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "net/listener.h"
#include "net/metrics.h"
#include "net/metrics_http.h"

#define METRICS_HTTP_MAX_HEADERS 4096
#define METRICS_HTTP_TIMEOUT_S 10

struct metrics_http {
	struct evhttp *http;
	struct evhttp_bound_socket *bound;	/* NULL once stopped */
	const struct config_listener *l;
	const struct config_listener *all;
	size_t nall;
};

/* An error in plain text (evhttp_send_error would drop our headers). */
static void
reply_error(struct evhttp_request *req, int code, const char *reason)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	struct evbuffer *body = evbuffer_new();

	if (body == NULL)
		fatalx("evbuffer_new failed");
	evhttp_add_header(h, "Content-Type", "text/plain; charset=utf-8");
	if (code == HTTP_BADMETHOD)
		evhttp_add_header(h, "Allow", "GET, HEAD");
	/* a refused client gets no second request on this connection */
	if (code == 403)
		evhttp_add_header(h, "Connection", "close");
	evbuffer_add_printf(body, "%d %s\n", code, reason);
	evhttp_send_reply(req, code, reason, body);
	evbuffer_free(body);
}

/* Whether the client is let in by the listener's lists (logged if not). */
static bool
admitted(struct metrics_http *mh, struct evhttp_request *req)
{
	struct evhttp_connection *conn = evhttp_request_get_connection(req);
	const struct sockaddr *sa =
	    conn != NULL ? evhttp_connection_get_addr(conn) : NULL;
	char ip[INET6_ADDRSTRLEN];

	if (sa == NULL)
		return false;
	if (!cidr_list_match(&mh->l->deny, sa) &&
	    (mh->l->allow.n == 0 || cidr_list_match(&mh->l->allow, sa)))
		return true;
	sockaddr_ntop(sa, ip, sizeof(ip));
	log_event(LOG_INFO, "metrics", "reject", LF_STR("ip", ip),
		  LF_STR("listener", mh->l->name),
		  LF_STR("reason", "access-list"));
	metrics_connection(mh->l->index, METRICS_CONN_ACCESS_DENIED);
	metrics_reject("access-list");
	return false;
}

static void
handle(struct evhttp_request *req, void *arg)
{
	struct metrics_http *mh = arg;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	const struct metrics *m = metrics_current();
	struct evbuffer *body;
	char len[32];

	if (!admitted(mh, req)) {
		reply_error(req, 403, "Forbidden");
		return;
	}
	metrics_connection(mh->l->index, METRICS_CONN_ACCEPTED);
	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
		reply_error(req, HTTP_BADMETHOD, "Method Not Allowed");
		return;
	}
	if (path == NULL || strcmp(path, "/metrics") != 0) {
		reply_error(req, HTTP_NOTFOUND, "Not Found");
		return;
	}
	if (m == NULL) {
		reply_error(req, HTTP_SERVUNAVAIL, "No metrics");
		return;
	}
	if ((body = evbuffer_new()) == NULL)
		fatalx("evbuffer_new failed");
	metrics_render(m, mh->all, mh->nall, body);
	evhttp_add_header(h, "Content-Type", "text/plain; version=0.0.4; "
					     "charset=utf-8");
	if (cmd == EVHTTP_REQ_HEAD) {
		/* the length of what GET would send, and no body */
		snprintf(len, sizeof(len), "%zu", evbuffer_get_length(body));
		evhttp_add_header(h, "Content-Length", len);
		evhttp_send_reply(req, HTTP_OK, "OK", NULL);
	} else {
		evhttp_send_reply(req, HTTP_OK, "OK", body);
	}
	evbuffer_free(body);
}

static void
accept_error(struct evconnlistener *lev, void *arg)
{
	(void)lev;
	(void)arg;
	/* EMFILE and friends: libevent retries on the next readiness */
	log_warn("accept (metrics)");
}

struct metrics_http *
metrics_http_new(struct event_base *base, int fd,
		 const struct config_listener *l,
		 const struct config_listener *all, size_t nall,
		 const char **error_r)
{
	struct metrics_http *mh = xcalloc(1, sizeof(*mh));

	mh->l = l;
	mh->all = all;
	mh->nall = nall;
	if ((mh->http = evhttp_new(base)) == NULL) {
		*error_r = "evhttp_new failed";
		free(mh);
		return NULL;
	}
	evhttp_set_max_headers_size(mh->http, METRICS_HTTP_MAX_HEADERS);
	evhttp_set_max_body_size(mh->http, 0);
	evhttp_set_timeout(mh->http, METRICS_HTTP_TIMEOUT_S);
	/* every method reaches handle(), which answers 405 itself */
	evhttp_set_allowed_methods(
	    mh->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
			  EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
			  EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
			  EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	evhttp_set_gencb(mh->http, handle, mh);
	if ((mh->bound = evhttp_accept_socket_with_handle(mh->http, fd)) ==
	    NULL) {
		*error_r = "evhttp_accept_socket failed";
		evhttp_free(mh->http);
		free(mh);
		return NULL;
	}
	evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(mh->bound),
				    accept_error);
	return mh;
}

void
metrics_http_stop(struct metrics_http *h)
{
	if (h != NULL && h->bound != NULL) {
		evhttp_del_accept_socket(h->http, h->bound);
		h->bound = NULL;
	}
}

void
metrics_http_free(struct metrics_http **hp)
{
	struct metrics_http *h = *hp;

	if (h == NULL)
		return;
	evhttp_free(h->http);
	free(h);
	*hp = NULL;
}
