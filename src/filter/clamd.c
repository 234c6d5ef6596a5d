/*
 * clamd's INSTREAM, asynchronous: see clamd.h.
 *
 * The message goes out in chunks of at most CHUNK octets, read from the
 * source only while less than WINDOW octets wait in the output buffer:
 * a slow clamd holds the reading back instead of the message piling up
 * in memory. clamd may stop reading and close early (its
 * StreamMaxLength): a write that fails then is not the end, the reply
 * that says why may still be in the socket, so reading goes on until it
 * comes, the connection closes or the timer fires.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "filter/clamd.h"
#include "filter/filter_socket.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/xalloc.h"

#define CHUNK (16 * 1024)
#define WINDOW (64 * 1024)

struct clamd_scan {
	struct bufferevent *bev;
	struct event *timer;
	clamd_read_fn *read;
	void *read_arg;
	clamd_done_fn *done;
	void *arg;
	uint64_t timeout;	/* seconds, for the messages */
	uint64_t started;	/* mono_ms() */
	uint64_t off;		/* of the message, read and queued */
	bool connected;
	bool sent_all;		/* the zero-length chunk is queued */
	bool write_failed;	/* clamd closed while we sent */
	int write_errno;
	/* a failure at the start, reported from the timer */
	bool failed_early;
	struct clamd_result early;
	size_t reply_len;
	char reply[CLAMD_REPLY_MAX];
};

/* ---- a scan ------------------------------------------------------------ */

static void
scan_free(struct clamd_scan *sc)
{
	if (sc->bev != NULL)
		bufferevent_free(sc->bev);
	if (sc->timer != NULL)
		event_free(sc->timer);
	free(sc);
}

/* The end: the scan is freed, then done hears of it. */
static void
finish(struct clamd_scan *sc, struct clamd_result *r)
{
	clamd_done_fn *done = sc->done;
	void *arg = sc->arg;

	r->sent = sc->off;
	r->ms = mono_ms() - sc->started;
	scan_free(sc);
	done(r, arg);
}

static void
fail(struct clamd_scan *sc, enum clamd_status st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
fail(struct clamd_scan *sc, enum clamd_status st, const char *fmt, ...)
{
	struct clamd_result r;
	va_list ap;

	memset(&r, 0, sizeof(r));
	r.status = st;
	va_start(ap, fmt);
	vsnprintf(r.error, sizeof(r.error), fmt, ap);
	va_end(ap);
	finish(sc, &r);
}

/* The reply, reply[0..len), is in. */
static void
reply_done(struct clamd_scan *sc, size_t len)
{
	struct clamd_reply rp;
	struct clamd_result r;

	clamd_reply_parse(sc->reply, len, &rp);
	memset(&r, 0, sizeof(r));
	switch (rp.kind) {
	case CLAMD_REPLY_OK:
		if (!sc->sent_all || sc->write_failed) {
			r.status = CLAMD_FAILED;
			snprintf(r.error, sizeof(r.error),
				 "clamd answered OK before the end");
			break;
		}
		r.status = CLAMD_CLEAN;
		break;
	case CLAMD_REPLY_FOUND:
		r.status = CLAMD_VIRUS;
		memcpy(r.name, rp.name, sizeof(r.name));
		break;
	case CLAMD_REPLY_ERROR:
		r.status = CLAMD_FAILED;
		snprintf(r.error, sizeof(r.error), "clamd: %s ERROR", rp.text);
		break;
	case CLAMD_REPLY_BAD:
		r.status = CLAMD_FAILED;
		snprintf(r.error, sizeof(r.error), "garbled reply: \"%s\"",
			 rp.text);
		break;
	}
	finish(sc, &r);
}

/* Takes what arrived; true if the reply is complete (sc is gone). */
static bool
take_input(struct clamd_scan *sc)
{
	struct evbuffer *in = bufferevent_get_input(sc->bev);
	size_t room = sizeof(sc->reply) - sc->reply_len;
	char *nul;
	int n;

	n = evbuffer_remove(in, sc->reply + sc->reply_len, room);
	if (n <= 0)
		return false;
	nul = memchr(sc->reply + sc->reply_len, '\0', (size_t)n);
	sc->reply_len += (size_t)n;
	if (nul != NULL) {
		reply_done(sc, (size_t)(nul - sc->reply));
		return true;
	}
	if (sc->reply_len == sizeof(sc->reply)) {
		fail(sc, CLAMD_FAILED, "garbled reply: longer than %d octets",
		     CLAMD_REPLY_MAX);
		return true;
	}
	return false;
}

static void
put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static void fail_early(struct clamd_scan *sc, enum clamd_status st,
		       const char *what, int err);

/* Queues chunks while the window has room. A read error is reported from
 * the timer, so that this can run before clamd_scan_start() returns. */
static void
fill(struct clamd_scan *sc)
{
	struct evbuffer *out = bufferevent_get_output(sc->bev);
	unsigned char buf[4 + CHUNK];
	ssize_t n;

	while (!sc->sent_all && !sc->write_failed && !sc->failed_early &&
	       evbuffer_get_length(out) < WINDOW) {
		n = sc->read(sc->read_arg, sc->off, buf + 4, CHUNK);
		if (n < 0) {
			fail_early(sc, CLAMD_LOCAL, "reading the message",
				   errno);
			return;
		}
		if (n == 0)
			sc->sent_all = true;
		put_be32(buf, (uint32_t)n);
		evbuffer_add(out, buf, 4 + (size_t)n);
		sc->off += (uint64_t)n;
	}
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	(void)bev;
	take_input(arg);
}

static void
on_write(struct bufferevent *bev, void *arg)
{
	(void)bev;
	fill(arg);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct clamd_scan *sc = arg;
	int err = EVUTIL_SOCKET_ERROR();

	if (what & BEV_EVENT_CONNECTED) {
		sc->connected = true;
		return;
	}
	if ((what & BEV_EVENT_ERROR) && (what & BEV_EVENT_WRITING) &&
	    sc->connected) {
		/* clamd stopped reading: its reply may follow */
		sc->write_failed = true;
		sc->write_errno = err;
		bufferevent_disable(bev, EV_WRITE);
		return;
	}
	if (take_input(sc))
		return;
	if ((what & BEV_EVENT_EOF) && sc->reply_len > 0) {
		reply_done(sc, sc->reply_len);
		return;
	}
	if (!sc->connected)
		fail(sc, CLAMD_FAILED, "connecting: %s",
		     evutil_socket_error_to_string(err != 0 ? err
							      : ECONNREFUSED));
	else if (sc->write_failed)
		fail(sc, CLAMD_FAILED, "clamd closed while we sent (%s)",
		     evutil_socket_error_to_string(sc->write_errno));
	else if (what & BEV_EVENT_EOF)
		fail(sc, CLAMD_FAILED, "clamd closed without a reply");
	else
		fail(sc, CLAMD_FAILED, "%s",
		     evutil_socket_error_to_string(err));
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct clamd_scan *sc = arg;
	struct clamd_result r;

	(void)fd;
	(void)what;
	if (sc->failed_early) {
		r = sc->early;
		finish(sc, &r);
		return;
	}
	fail(sc, CLAMD_FAILED, "timed out after %llus %s",
	     (unsigned long long)sc->timeout,
	     !sc->connected	 ? "connecting"
	     : !sc->sent_all ? "sending the message"
			     : "waiting for the reply");
}

/* A failure found outside the socket's callbacks (at the start, or
 * reading the message): reported from the timer, at once. */
static void
fail_early(struct clamd_scan *sc, enum clamd_status st, const char *what,
	   int err)
{
	sc->failed_early = true;
	sc->early.status = st;
	snprintf(sc->early.error, sizeof(sc->early.error), "%s: %s", what,
		 strerror(err));
	if (sc->bev != NULL)
		bufferevent_disable(sc->bev, EV_READ | EV_WRITE);
	event_active(sc->timer, EV_TIMEOUT, 1);
}

static void
connect_start(struct clamd_scan *sc, struct event_base *base,
	      const struct filter_addr *a)
{
	static const char cmd[] = "zINSTREAM";	/* with its NUL */
	int fd;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0) {
		fail_early(sc, CLAMD_FAILED, "socket", errno);
		return;
	}
	sc->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (sc->bev == NULL) {
		close(fd);
		fail_early(sc, CLAMD_FAILED, "socket", ENOMEM);
		return;
	}
	filter_socket_nodelay(fd, &a->ss);
	bufferevent_setcb(sc->bev, on_read, on_write, on_event, sc);
	bufferevent_setwatermark(sc->bev, EV_WRITE, WINDOW / 2, 0);
	if (bufferevent_socket_connect(sc->bev, (const struct sockaddr *)&a->ss,
				       (int)a->len) < 0) {
		fail_early(sc, CLAMD_FAILED, "connecting",
			   errno != 0 ? errno : ECONNREFUSED);
		return;
	}
	evbuffer_add(bufferevent_get_output(sc->bev), cmd, sizeof(cmd));
	bufferevent_enable(sc->bev, EV_READ | EV_WRITE);
	fill(sc);
}

struct clamd_scan *
clamd_scan_start(struct event_base *base, const struct clamd_config *c,
		 clamd_read_fn *read, void *read_arg, clamd_done_fn *done,
		 void *arg)
{
	struct clamd_scan *sc = xcalloc(1, sizeof(*sc));
	struct timeval tv = {(time_t)c->timeout, 0};

	sc->read = read;
	sc->read_arg = read_arg;
	sc->done = done;
	sc->arg = arg;
	sc->timeout = c->timeout;
	sc->started = mono_ms();
	sc->timer = evtimer_new(base, on_timer, sc);
	if (sc->timer == NULL)
		fatalx("clamd: evtimer_new");
	evtimer_add(sc->timer, &tv);
	connect_start(sc, base, &c->addr);
	return sc;
}

void
clamd_scan_cancel(struct clamd_scan **scan)
{
	if (*scan == NULL)
		return;
	scan_free(*scan);
	*scan = NULL;
}

const char *
clamd_status_name(enum clamd_status st)
{
	switch (st) {
	case CLAMD_CLEAN:
		return "clean";
	case CLAMD_VIRUS:
		return "virus";
	case CLAMD_FAILED:
		return "error";
	case CLAMD_LOCAL:
		break;
	}
	return "local-error";
}
