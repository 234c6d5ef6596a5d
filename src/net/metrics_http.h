/*
 * The HTTP side of a `protocol: metrics` listener, in a worker: libevent's
 * evhttp on one inherited listening socket. GET (or HEAD) /metrics gets
 * 200 and the text exposition format; other paths 404, other methods 405;
 * a client outside the listener's allow/deny lists 403 (logged as a
 * reject). Requests are bounded (headers 4 KiB, no body) and time out.
 */
#ifndef GODWIT_METRICS_HTTP_H
#define GODWIT_METRICS_HTTP_H

#include <stddef.h>

struct config_listener;
struct event_base;
struct metrics_http;

/*
 * Serves listener l on fd (the fd is the server's now: closed when it is
 * freed). all/nall: every listener of the configuration, to name the
 * connection counters; they must outlive the server. NULL with *error_r
 * on failure.
 */
struct metrics_http *metrics_http_new(struct event_base *base, int fd,
				      const struct config_listener *l,
				      const struct config_listener *all,
				      size_t nall, const char **error_r);
/* Stops accepting (drain); requests under way still get their answer. */
void metrics_http_stop(struct metrics_http *h);
void metrics_http_free(struct metrics_http **hp);

#endif
