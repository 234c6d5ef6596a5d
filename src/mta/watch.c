/*
 * The queue runner's watch over its queue (R4.3): mail of an account
 * over its submission sending limit is held (net/client_limits.h keeps
 * the blocks: a message is looked at when it is loaded, and every
 * message in active/ and deferred/ when a new block begins), and the
 * queue-size and bounces alerts are raised as their counts cross the
 * thresholds of alerts:. One timer a second; no disk is read unless a
 * block began.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "lib/log.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "mta/runner.h"
#include "mta/runner_private.h"
#include "net/alert.h"
#include "net/client_limits.h"

#define WATCH_MINUTES 60

struct watch {
	struct event *tick;
	uint32_t send_gen;		/* limits_send_generation() seen */
	uint32_t bounces[WATCH_MINUTES]; /* recipients bounced, per minute */
	uint64_t bounce_minute;		/* the minute of bounces[0..] slots */
	bool queue_over, bounces_over;	/* above: raised once until below */
};

static bool
blocked(const struct runner *r, const char *auth)
{
	const struct runner_settings *cf = r->config;

	return cf->limits != NULL && auth != NULL && auth[0] != '\0' &&
	       limits_send_blocked(cf->limits, auth, now_ms());
}

static void
log_held(const char *id, const char *auth)
{
	log_event(LOG_WARNING, "delivery", "held", LF_STR("id", id),
		  LF_STR("user", auth), LF_STR("reason", "sending-limit"));
}

bool
watch_hold(struct msg *m, const char *from)
{
	struct runner *r = m->r;
	const char *auth = m->env.auth;

	/* deferred mail was swept when the block began; what comes from
	 * hold/ again was released by the administrator and goes */
	if (strcmp(from, "incoming") != 0 || !blocked(r, auth))
		return false;
	if (queue_move(r->config->data_dir, m->id, "active", "hold") < 0) {
		log_event(LOG_ERR, "delivery", "move-failed",
			  LF_STR("id", m->id), LF_STR("to", "hold"),
			  LF_STR("error", strerror(errno)));
		return false;
	}
	log_held(m->id, auth);
	msg_free(m);
	return true;
}

/* A new block: the blocked accounts' mail in active/ and deferred/. */
static void
sweep(struct runner *r)
{
	const char *dd = r->config->data_dir;
	struct msg *m;
	char **ids;
	size_t n;

	TAILQ_FOREACH(m, &r->msgs, entry)
		if (!m->hold_req && blocked(r, m->env.auth)) {
			m->hold_req = true;
			log_held(m->id, m->env.auth);
		}
	ids = queue_ids(dd, "deferred", &n);
	for (size_t i = 0; i < n; i++) {
		struct queue_envelope e;
		uint64_t off;
		char *path = queue_path(dd, "deferred", ids[i]), *err = NULL;

		if (queue_envelope_read(path, &e, &off, &err) == 0 &&
		    blocked(r, e.auth) &&
		    queue_file_op(dd, "hold", ids[i]) == 1)
			log_held(ids[i], e.auth);
		queue_envelope_clear(&e);
		free(err);
		free(path);
		free(ids[i]);
	}
	free(ids);
}

/* The bounce buckets moved on to the current minute; their sum. */
static uint64_t
bounces_last_hour(struct watch *w)
{
	uint64_t minute = mono_ms() / 60000, sum = 0;

	if (minute - w->bounce_minute >= WATCH_MINUTES)
		memset(w->bounces, 0, sizeof(w->bounces));
	else
		for (uint64_t m = w->bounce_minute + 1; m <= minute; m++)
			w->bounces[m % WATCH_MINUTES] = 0;
	w->bounce_minute = minute;
	for (size_t i = 0; i < WATCH_MINUTES; i++)
		sum += w->bounces[i];
	return sum;
}

void
watch_bounced(struct runner *r)
{
	const struct alerts_config *ac = &r->config->alerts;
	struct watch *w = r->watch;
	uint64_t sum;

	if (w == NULL)
		return;
	sum = bounces_last_hour(w);
	w->bounces[w->bounce_minute % WATCH_MINUTES]++;
	sum++;
	if (ac->enabled && ac->bounces_per_hour != 0 && !w->bounces_over &&
	    sum >= ac->bounces_per_hour) {
		w->bounces_over = true;
		alert_raise_kind(ALERT_BOUNCES, "outbound", sum,
				 ac->bounces_per_hour, 3600);
	}
}

/* The queue: messages in memory (active/) and deferred ones waiting. */
static void
check_counts(struct runner *r)
{
	const struct alerts_config *ac = &r->config->alerts;
	struct watch *w = r->watch;
	uint64_t size = (uint64_t)r->nmsgs + r->due.n;

	if (ac->bounces_per_hour != 0 &&
	    bounces_last_hour(w) < ac->bounces_per_hour)
		w->bounces_over = false;
	if (ac->queue_size == 0)
		return;
	if (size < ac->queue_size) {
		w->queue_over = false;
	} else if (!w->queue_over && ac->enabled) {
		w->queue_over = true;
		alert_raise_kind(ALERT_QUEUE_SIZE, "outbound", size,
				 ac->queue_size, 0);
	}
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct runner *r = arg;
	struct watch *w = r->watch;
	uint32_t gen;

	(void)fd;
	(void)what;
	if (r->config->limits != NULL &&
	    (gen = limits_send_generation(r->config->limits)) != w->send_gen) {
		w->send_gen = gen;
		defer_flush(r); /* none half-way to deferred/ */
		sweep(r);
	}
	check_counts(r);
}

void
watch_start(struct runner *r)
{
	struct watch *w = xcalloc(1, sizeof(*w));
	struct timeval one = {1, 0};

	if (r->config->limits != NULL)
		w->send_gen = limits_send_generation(r->config->limits);
	w->bounce_minute = mono_ms() / 60000;
	w->tick = event_new(r->base, -1, EV_PERSIST, tick_cb, r);
	evtimer_add(w->tick, &one);
	r->watch = w;
}

void
watch_stop(struct runner *r)
{
	struct watch *w = r->watch;

	if (w == NULL)
		return;
	r->watch = NULL;
	event_free(w->tick);
	free(w);
}
