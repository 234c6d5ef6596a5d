/*
 * The milter client's connection: see milter.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "filter/milter.h"
#include "lib/log.h"
#include "lib/util.h"
#include "lib/xalloc.h"

/* A milter that says "progress" gets at most this many timeouts for one
 * reply. */
#define PROGRESS_MAX 10

struct milter_conn {
	const struct milter_config *cf;
	struct bufferevent *bev;
	struct event *timer;
	milter_reply_fn *cb;
	void *arg;
	const char *error;	/* the connection failed: why */
	bool waiting;		/* for a final reply */
	uint64_t asked_ms;	/* when the awaited request went out */
	bool in_cb;
	bool free_later;	/* milter_conn_free() from the callback */
};

/* ---- the connection --------------------------------------------------- */

static void conn_destroy(struct milter_conn *c);

/* Calls the callback; false if the connection was freed meanwhile. */
static bool
deliver(struct milter_conn *c, const struct milter_reply *r, bool final,
	const char *error)
{
	c->in_cb = true;
	c->cb(c->arg, r, final, error);
	c->in_cb = false;
	if (c->free_later) {
		conn_destroy(c);
		return false;
	}
	return true;
}

static void
fail(struct milter_conn *c, const char *error)
{
	if (c->error != NULL)
		return;
	c->error = error;
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	c->bev = NULL;
	evtimer_del(c->timer);
	if (c->waiting) {
		c->waiting = false;
		deliver(c, NULL, true, error);
	}
}

static bool
is_final(int type)
{
	switch (type) {
	case MR_ACCEPT: case MR_CONTINUE: case MR_DISCARD: case MR_REJECT:
	case MR_TEMPFAIL: case MR_REPLYCODE: case MR_SKIP: case MR_OPTNEG:
		return true;
	}
	return false;
}

static void
arm_timer(struct milter_conn *c)
{
	struct timeval tv = {.tv_sec = (time_t)c->cf->timeout};

	evtimer_add(c->timer, &tv);
}

/* One reply; false if the connection is gone. */
static bool
on_reply(struct milter_conn *c, const struct milter_reply *r)
{
	if (!c->waiting) {
		fail(c, "reply nobody asked for");
		return false;
	}
	switch (r->type) {
	case MR_PROGRESS:
		/* more time, but not without end */
		if (mono_ms() - c->asked_ms > PROGRESS_MAX * 1000 *
						  c->cf->timeout) {
			fail(c, "progress without end");
			return false;
		}
		arm_timer(c);
		return true;
	case MR_SHUTDOWN: case MR_CONN_FAIL:
		fail(c, "milter closed the session");
		return false;
	default:
		break;
	}
	if (is_final(r->type)) {
		c->waiting = false;
		evtimer_del(c->timer);
		return deliver(c, r, true, NULL);
	}
	return deliver(c, r, false, NULL);
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct milter_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	for (;;) {
		size_t len = evbuffer_get_length(in), used = 0;
		size_t want = len < 4 + MILTER_REPLY_MAX ? len
							 : 4 + MILTER_REPLY_MAX;
		const unsigned char *p;
		struct milter_reply r;
		const char *err = NULL;
		int rc;

		if (len == 0)
			return;
		p = evbuffer_pullup(in, (ssize_t)want);
		rc = milter_reply_parse(p, want, &r, &used, &err);
		if (rc == 0)
			return;
		if (rc < 0) {
			log_event(LOG_WARNING, "milter", "bad-reply",
				  LF_STR("milter", c->cf->name),
				  LF_STR("error", err));
			fail(c, err);
			return;
		}
		if (!on_reply(c, &r))
			return;
		if (c->bev == NULL)
			return;
		evbuffer_drain(in, used);
	}
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct milter_conn *c = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED)
		return;
	if (what & BEV_EVENT_EOF)
		fail(c, "milter closed the connection");
	else if (what & BEV_EVENT_ERROR)
		fail(c, errno == ECONNREFUSED ? "connection refused"
		     : errno == ENOENT	      ? "no such socket"
					      : "connection error");
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct milter_conn *c = arg;

	(void)fd;
	(void)what;
	fail(c, "timeout");
}

struct milter_conn *
milter_conn_new(struct event_base *base, const struct milter_config *cf,
		milter_reply_fn *cb, void *arg)
{
	struct milter_conn *c = xcalloc(1, sizeof(*c));

	c->cf = cf;
	c->cb = cb;
	c->arg = arg;
	c->timer = evtimer_new(base, timer_cb, c);
	c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (c->timer == NULL || c->bev == NULL)
		fatal("milter: out of memory");
	bufferevent_setcb(c->bev, read_cb, NULL, event_cb, c);
	if (bufferevent_socket_connect(c->bev,
				       (const struct sockaddr *)&cf->addr.ss,
				       (int)cf->addr.len) < 0) {
		/* reported at the first request, never from here */
		c->error = errno == ENOENT ? "no such socket"
					   : "connection refused";
		bufferevent_free(c->bev);
		c->bev = NULL;
		return c;
	}
	filter_socket_nodelay(bufferevent_getfd(c->bev), &cf->addr.ss);
	bufferevent_enable(c->bev, EV_READ);
	return c;
}

int
milter_conn_send(struct milter_conn *c, struct milter_buf *b,
		 bool want_reply)
{
	if (c->error != NULL || c->waiting) {
		strbuf_reset(&b->out);
		return -1;
	}
	if (bufferevent_write(c->bev, b->out.s, b->out.len) < 0) {
		strbuf_reset(&b->out);
		c->error = "write failed";
		bufferevent_free(c->bev);
		c->bev = NULL;
		return -1;
	}
	strbuf_reset(&b->out);
	/* a milter that does not read shows at the next request's wait */
	if (want_reply) {
		c->waiting = true;
		c->asked_ms = mono_ms();
		arm_timer(c);
	}
	return 0;
}

bool
milter_conn_busy(const struct milter_conn *c)
{
	return c->waiting;
}

const char *
milter_conn_error(const struct milter_conn *c)
{
	return c->error;
}

static void
conn_destroy(struct milter_conn *c)
{
	static const unsigned char quit[5] = {0, 0, 0, 1, MC_QUIT};

	if (c->bev != NULL) {
		evutil_socket_t fd = bufferevent_getfd(c->bev);

		/* a polite end when nothing is pending; never waits */
		if (!c->waiting && fd >= 0 &&
		    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
			(void)send(fd, quit, sizeof(quit),
				   MSG_DONTWAIT | MSG_NOSIGNAL);
		bufferevent_free(c->bev);
	}
	event_free(c->timer);
	free(c);
}

void
milter_conn_free(struct milter_conn **cp)
{
	struct milter_conn *c = *cp;

	*cp = NULL;
	if (c == NULL)
		return;
	if (c->in_cb) {
		c->free_later = true;
		return;
	}
	conn_destroy(c);
}
