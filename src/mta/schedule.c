/*
 * The queue runner's scheduling: see schedule.h. No clock is read here;
 * the caller passes the time.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/xalloc.h"
#include "mta/schedule.h"

/* a + b for b >= 0, at most INT64_MAX */
static int64_t
add_sat(int64_t a, uint64_t b)
{
	if (b > (uint64_t)INT64_MAX || a > INT64_MAX - (int64_t)b)
		return INT64_MAX;
	return a + (int64_t)b;
}

uint64_t
schedule_backoff(const struct schedule_params *p, unsigned attempts)
{
	uint64_t d = p->retry_min;

	for (unsigned i = 1; i < attempts && d < p->retry_max; i++)
		d = d > p->retry_max / 2 ? p->retry_max : d * 2;
	return d < p->retry_max ? d : p->retry_max;
}

int64_t
schedule_next_attempt(const struct schedule_params *p, int64_t now,
		      unsigned attempts)
{
	return add_sat(now, schedule_backoff(p, attempts));
}

bool
schedule_expired(const struct schedule_params *p, int64_t arrival,
		 int64_t now)
{
	return now - arrival >= (int64_t)p->lifetime;
}

int64_t
schedule_retry_until(const struct schedule_params *p, int64_t arrival)
{
	return add_sat(arrival, p->lifetime);
}

bool
schedule_warn_due(const struct schedule_params *p, int64_t arrival,
		  int64_t now, bool warned)
{
	return p->delay_warning > 0 && !warned &&
	       now - arrival >= (int64_t)p->delay_warning;
}

enum schedule_fate
schedule_fate(bool tried, int code, bool expired)
{
	if (!tried)
		return FATE_UNTRIED;
	if (code >= 200 && code < 300)
		return FATE_SENT;
	if (code >= 500 || expired)
		return FATE_BOUNCED;
	return FATE_DEFERRED;
}

enum queue_rcpt_status
schedule_status(enum schedule_fate fate, bool report_lost)
{
	if (fate == FATE_SENT)
		return QRS_DONE;
	if (fate == FATE_BOUNCED && !report_lost)
		return QRS_FAILED;
	return QRS_PENDING;
}

/* ---- the due list --------------------------------------------------- */

bool
due_list_add(struct due_list *dl, const char *id, int64_t when)
{
	if (dl->n == dl->cap) {
		dl->cap = dl->cap ? dl->cap * 2 : 64;
		dl->v = xreallocarray(dl->v, dl->cap, sizeof(*dl->v));
	}
	memcpy(dl->v[dl->n].id, id, sizeof(dl->v[0].id));
	dl->v[dl->n].when = when;
	dl->n++;
	if (dl->n == 1 || when < dl->min) {
		dl->min = when;
		return true;
	}
	return false;
}

struct due *
due_list_take(struct due_list *dl, int64_t now, size_t room, size_t *n_r)
{
	struct due *todo = NULL;
	size_t ntodo = 0, o = 0;

	dl->min = INT64_MAX;
	for (size_t i = 0; i < dl->n; i++) {
		if (dl->v[i].when <= now && ntodo < room) {
			if (todo == NULL)
				todo = xcalloc(room, sizeof(*todo));
			todo[ntodo++] = dl->v[i];
		} else {
			if (dl->v[i].when < dl->min)
				dl->min = dl->v[i].when;
			dl->v[o++] = dl->v[i];
		}
	}
	dl->n = o;
	*n_r = ntodo;
	return todo;
}

size_t
due_list_flush(struct due_list *dl)
{
	for (size_t i = 0; i < dl->n; i++)
		dl->v[i].when = 0;
	dl->min = 0;
	return dl->n;
}

void
due_list_clear(struct due_list *dl)
{
	free(dl->v);
	memset(dl, 0, sizeof(*dl));
}
