/*
 * IDLE (RFC 2177) and the change watch of a selected folder.
 *
 * Each worker process has one struct maildir_watch (one inotify
 * instance), made when the first session selects a folder and freed when
 * the last one closes its folder, with its fd on the worker's event loop.
 * A selected session holds one watch entry on its folder; a change sets
 * s->changed, and a session in IDLE is told at once (EXISTS, EXPUNGE,
 * FETCH FLAGS). An IDLE session costs its entry and nothing else: no
 * timer, no thread. The same watch spares the other commands a scan
 * of the folder when nothing changed (imap_watch_pending()). If the entry cannot be added (the inotify limits),
 * IDLE polls the folder every IDLE_POLL_S seconds instead.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "imapd/imap_mbox.h"
#include "imapd/imap_private.h"
#include "lib/xalloc.h"
#include "net/session.h"
#include "store/imap_store.h"
#include "store/maildir_watch.h"

#define IDLE_POLL_S 5

static struct maildir_watch *watch;
static struct event *watch_ev;
static size_t watch_users;

static void
watch_readable(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (watch != NULL)
		maildir_watch_dispatch(watch);
}

static void
watch_release(void)
{
	if (watch_users > 0)
		return;
	if (watch_ev != NULL)
		event_free(watch_ev);
	watch_ev = NULL;
	if (watch != NULL)
		maildir_watch_free(watch);
	watch = NULL;
}

static struct maildir_watch *
watch_get(struct event_base *base)
{
	if (watch != NULL)
		return watch;
	if ((watch = maildir_watch_new()) == NULL)
		return NULL;
	watch_ev = event_new(base, maildir_watch_fd(watch),
			     EV_READ | EV_PERSIST, watch_readable, NULL);
	if (watch_ev == NULL || event_add(watch_ev, NULL) < 0) {
		watch_release();
		return NULL;
	}
	return watch;
}

static void idle_line(struct imap_session *s, char *line, size_t len);

/* Tells a session in IDLE at once; the others at their next command. */
static void
folder_changed(void *arg)
{
	struct imap_session *s = arg;

	s->changed = true;
	if (s->line_hook == idle_line && s->folder != NULL &&
	    !s->ses.closing) {
		imap_sync_report(s, true);
		session_flush(&s->ses);
	}
}

void
imap_watch_start(struct imap_session *s)
{
	if (s->watch != NULL || s->folder == NULL)
		return;
	if (watch_get(s->ses.srv->base) == NULL)
		return;
	s->watch = maildir_watch_add(watch, imap_folder_path(s->folder),
				     folder_changed, s);
	/* a change between the folder's scan and now: the next sync looks */
	s->changed = true;
	if (s->watch != NULL)
		watch_users++;
	else
		watch_release();
}

bool
imap_watch_pending(struct imap_session *s)
{
	static bool dispatching;

	if (s->watch == NULL)
		return true;
	/* inotify queues an event when the change is made: reading what
	 * is queued now shows every change made before this command, also
	 * those the event loop has not dispatched yet */
	if (!dispatching) {
		dispatching = true;
		maildir_watch_dispatch(watch);
		dispatching = false;
	}
	return s->changed;
}

void
imap_watch_stop(struct imap_session *s)
{
	if (s->watch == NULL)
		return;
	maildir_watch_remove(watch, s->watch);
	s->watch = NULL;
	watch_users--;
	watch_release();
}

/* ---- IDLE ------------------------------------------------------------ */

struct idle_state {
	struct event *poll;	/* only without a watch */
};

static void
idle_cleanup(struct imap_session *s)
{
	struct idle_state *st = s->cmd_state;

	if (st == NULL)
		return;
	if (st->poll != NULL)
		event_free(st->poll);
	free(st);
	s->cmd_state = NULL;
}

static void
idle_poll(evutil_socket_t fd, short what, void *arg)
{
	struct imap_session *s = arg;

	(void)fd;
	(void)what;
	imap_sync_report(s, true);
	session_flush(&s->ses);
}

static void
idle_line(struct imap_session *s, char *line, size_t len)
{
	idle_cleanup(s);
	if (len == 4 && strncasecmp(line, "DONE", 4) == 0)
		imap_done(s, "OK", NULL, "IDLE terminated");
	else
		imap_done(s, "BAD", NULL, "expected DONE");
}

void
imap_cmd_idle(struct imap_session *s, const struct imap_command *c)
{
	struct timeval tv = { IDLE_POLL_S, 0 };
	struct idle_state *st;

	if (c->nargs != 0) {
		imap_done(s, "BAD", NULL, "IDLE takes no arguments");
		return;
	}
	st = xcalloc(1, sizeof(*st));
	s->cmd_state = st;
	s->line_hook = idle_line;
	s->cleanup = idle_cleanup;
	if (s->folder != NULL && s->watch == NULL) {
		st->poll = event_new(s->ses.srv->base, -1, EV_PERSIST,
				     idle_poll, s);
		if (st->poll != NULL)
			(void)event_add(st->poll, &tv);
	}
	evbuffer_add_printf(imap_out(s), "+ idling\r\n");
	imap_sync_report(s, true);
}
