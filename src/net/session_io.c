/* See session_io.h. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>

#include "lib/util.h"
#include "net/session_io.h"

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
close_wait_clear(struct close_wait *cw)
{
	if (cw->timer != NULL)
		event_free(cw->timer);
	cw->timer = NULL;
}

/* ---- deadlines -------------------------------------------------------- */

/* When the deadline ends, in mono_ms() time. */
static uint64_t
deadline_end(const struct deadline *d)
{
	uint64_t end = d->start_ms + d->allow_ms;

	if (d->kind == DEADLINE_DATA && d->rate > 0) {
		uint64_t credit = d->octets / d->rate * 1000 +
				  d->octets % d->rate * 1000 / d->rate;
		end = credit > UINT64_MAX - end ? UINT64_MAX : end + credit;
	}
	return end;
}

static void
deadline_arm(struct deadline *d, uint64_t now)
{
	uint64_t end = deadline_end(d), left = end > now ? end - now : 0;
	struct timeval tv;

	/* a day at most per sleep; the callback works out the rest */
	if (left > 86400000)
		left = 86400000;
	tv.tv_sec = (time_t)(left / 1000);
	tv.tv_usec = (suseconds_t)(left % 1000) * 1000;
	evtimer_add(d->timer, &tv);
}

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct deadline *d = arg;
	enum deadline_kind kind = d->kind;
	uint64_t now = mono_ms();

	(void)fd;
	(void)what;
	if (kind == DEADLINE_NONE)
		return;
	if (now < deadline_end(d)) {
		deadline_arm(d, now);	/* data arrived meanwhile */
		return;
	}
	d->kind = DEADLINE_NONE;
	d->expired(d->arg, kind);
}

void
deadline_init(struct deadline *d, struct event_base *base,
	      void (*expired)(void *, enum deadline_kind), void *arg)
{
	memset(d, 0, sizeof(*d));
	d->timer = evtimer_new(base, deadline_cb, d);
	d->expired = expired;
	d->arg = arg;
}

void
deadline_start(struct deadline *d, enum deadline_kind kind,
	       uint64_t allow_ms, uint64_t rate)
{
	if (d->timer == NULL)
		return;
	d->kind = kind;
	d->start_ms = mono_ms();
	d->allow_ms = allow_ms;
	d->rate = rate;
	d->octets = 0;
	deadline_arm(d, d->start_ms);
}

void
deadline_stop(struct deadline *d)
{
	d->kind = DEADLINE_NONE;
	if (d->timer != NULL)
		evtimer_del(d->timer);
}

void
deadline_add_octets(struct deadline *d, uint64_t n)
{
	d->octets = n > UINT64_MAX - d->octets ? UINT64_MAX : d->octets + n;
}

void
deadline_shorten(struct deadline *d, uint64_t allow_ms)
{
	uint64_t now = mono_ms();

	if (d->kind != DEADLINE_LINE && d->kind != DEADLINE_TLS)
		return;
	if (deadline_end(d) <= now + allow_ms)
		return;
	d->start_ms = now;
	d->allow_ms = allow_ms;
	deadline_arm(d, now);
}

void
deadline_clear(struct deadline *d)
{
	if (d->timer != NULL)
		event_free(d->timer);
	d->timer = NULL;
	d->kind = DEADLINE_NONE;
}

const char *
deadline_kind_name(enum deadline_kind kind)
{
	switch (kind) {
	case DEADLINE_LINE:
		return "line";
	case DEADLINE_TLS:
		return "tls-handshake";
	case DEADLINE_DATA:
		return "data";
	case DEADLINE_NONE:
		break;
	}
	return "none";
}

int
line_take(struct line_reader *lr, struct evbuffer *in, size_t max, char *buf,
	  size_t size, size_t *n_r)
{
	for (;;) {
		struct evbuffer_ptr p;
		size_t avail = evbuffer_get_length(in), n;

		if (avail == 0)
			return 0;
		p = evbuffer_search(in, "\n", 1, NULL);
		if (p.pos < 0) {
			if (avail < max && !lr->skip)
				return 0;
			evbuffer_drain(in, avail);
			if (lr->skip)
				return 0;
			lr->skip = true;
			return -1;
		}
		n = (size_t)p.pos + 1;
		if (lr->skip) {
			evbuffer_drain(in, n);
			lr->skip = false;
			continue;
		}
		if (n > max || n > size) {
			evbuffer_drain(in, n);
			return -1;
		}
		evbuffer_remove(in, buf, n);
		*n_r = n;
		return 1;
	}
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
