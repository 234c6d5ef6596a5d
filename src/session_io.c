/* See session_io.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>

#include "lib/util.h"
#include "session_io.h"

void
session_vreply(struct bufferevent *bev, size_t size, const char *fmt,
	       va_list ap)
{
	char buf[1024];
	int n;

	if (size > sizeof(buf))
		size = sizeof(buf);
	n = vsnprintf(buf, size - 2, fmt, ap);
	if (n < 0)
		return;
	if ((size_t)n > size - 3)
		n = (int)size - 3;
	buf[n++] = '\r';
	buf[n++] = '\n';
	evbuffer_add(bufferevent_get_output(bev), buf, (size_t)n);
}

void
close_wait_begin(struct bufferevent *bev)
{
	struct timeval tv = {CLOSE_WAIT_MAX_MS / 1000, 0};

	bufferevent_disable(bev, EV_READ);
	bufferevent_set_timeouts(bev, NULL, &tv);
	bufferevent_enable(bev, EV_WRITE);
	/* the write callback (low watermark 0) frees the session after the
	 * flush; trigger it even when nothing is pending */
	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
	bufferevent_trigger(bev, EV_WRITE, BEV_TRIG_IGNORE_WATERMARKS |
					       BEV_TRIG_DEFER_CALLBACKS);
}

/* Under TLS the last reply may still sit in the socket's own buffer. */
static bool
output_pending(struct bufferevent *bev)
{
	struct bufferevent *under = bufferevent_get_underlying(bev);

	return evbuffer_get_length(bufferevent_get_output(bev)) > 0 ||
	       (under != NULL &&
		evbuffer_get_length(bufferevent_get_output(under)) > 0);
}

static void
poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct close_wait *cw = arg;
	struct timeval tv = {0, 20000};

	(void)fd;
	(void)what;
	if (output_pending(cw->bev) &&
	    mono_ms() - cw->since_ms < CLOSE_WAIT_MAX_MS) {
		evtimer_add(cw->timer, &tv);
		return;
	}
	cw->done(cw->arg);
}

bool
close_wait_flushed(struct close_wait *cw, struct event_base *base,
		   struct bufferevent *bev, void (*done)(void *), void *arg)
{
	struct timeval tv = {0, 20000};

	if (evbuffer_get_length(bufferevent_get_output(bev)) != 0)
		return false;
	if (bufferevent_get_underlying(bev) == NULL || !output_pending(bev))
		return true;
	cw->bev = bev;
	cw->done = done;
	cw->arg = arg;
	if (cw->timer == NULL)
		cw->timer = evtimer_new(base, poll_cb, cw);
	cw->since_ms = mono_ms();
	evtimer_add(cw->timer, &tv);
	return false;
}

void
close_wait_free(struct close_wait *cw)
{
	if (cw->timer != NULL)
		event_free(cw->timer);
	cw->timer = NULL;
}

void
session_tls_bev_setup(struct bufferevent *bev)
{
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
}

const char *
session_end_reason(struct bufferevent *bev, short what, char *err,
		   size_t size)
{
	int saved = errno;
	unsigned long e, last = 0;
	const char *r;

	if (size > 0)
		err[0] = '\0';
	if (bufferevent_openssl_get_ssl(bev) != NULL) {
		/* libevent queues SSL_get_error()'s small codes as well as
		 * OpenSSL's own errors: only the latter say anything */
		while ((e = bufferevent_get_openssl_error(bev)) != 0)
			if (ERR_GET_LIB(e) != 0)
				last = e;
	}
	/* a reset is a client gone too (one that closes with our reply
	 * unread resets the connection instead of closing it) */
	if ((what & BEV_EVENT_EOF) ||
	    (last == 0 && (saved == ECONNRESET || saved == EPIPE)))
		return "eof";
	if (what & BEV_EVENT_TIMEOUT)
		return (what & BEV_EVENT_WRITING) ? "write-timeout" : "timeout";
	if (last != 0) {
		r = ERR_reason_error_string(last);
		snprintf(err, size, "%s", r != NULL ? r : "unknown");
		return "tls-error";
	}
	snprintf(err, size, "%s", strerror(saved));
	return "io-error";
}
