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
 *
 * inotify sees the changes made through this machine's kernel only: on
 * a mail_dir shared over NFS another node's delivery or expunge raises no
 * event here. So every imap.idle_check_interval seconds (Dovecot's
 * mailbox_idle_check_interval) a session in IDLE, and a command after
 * that long, also stat()s the folder's new/, cur/ and dovecot-uidlist
 * and rescans when any of them changed (mtime, size or inode): what
 * other nodes did arrives within the interval (plus the NFS client's
 * attribute cache time, acdirmin). A directory whose mtime is within
 * RECENT_S seconds of now is rescanned at every check: two changes in one
 * tick of the file system's timestamps look like one, so a signature
 * taken between them would hide the second.
 *
 * GODWIT_TEST_BLIND_WATCH (tests only) drops every inotify event, as if
 * all changes came from another node: the periodic check alone is left.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "imapd/imap_mbox.h"
#include "imapd/imap_private.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "net/session.h"
#include "store/imap_store.h"
#include "store/maildir_watch.h"

#define IDLE_POLL_S 5
#define RECENT_S 2

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

/* The folder's signature: mtime, size and inode of new/, cur/ and
 * dovecot-uidlist (a missing one reads as zeros). */
static void
folder_sig(const char *folder, uint64_t sig[9])
{
	static const char *const names[] = {"new", "cur", "dovecot-uidlist"};
	char path[4096];

	for (size_t i = 0; i < 3; i++) {
		struct stat sb;
		int n = snprintf(path, sizeof(path), "%s/%s", folder, names[i]);

		memset(&sb, 0, sizeof(sb));
		if (n > 0 && (size_t)n < sizeof(path))
			(void)stat(path, &sb);
		sig[3 * i] = (uint64_t)sb.st_mtim.tv_sec * 1000000000u +
			     (uint64_t)sb.st_mtim.tv_nsec;
		sig[3 * i + 1] = (uint64_t)sb.st_size;
		sig[3 * i + 2] = (uint64_t)sb.st_ino;
	}
}

/* The periodic check: once the interval has passed (always when force),
 * a changed signature marks the session changed. */
static void
check_sig(struct imap_session *s, bool force)
{
	uint64_t every = s->config->imap.idle_check_interval * 1000, now;
	uint64_t sig[9];

	if (every == 0 || s->folder == NULL)
		return;
	now = mono_ms();
	if (!force && now - s->sig_checked_ms < every)
		return;
	s->sig_checked_ms = now;
	folder_sig(imap_folder_path(s->folder), sig);
	if (memcmp(sig, s->sig, sizeof(sig)) != 0) {
		memcpy(s->sig, sig, sizeof(sig));
		s->changed = true;
	}
	for (size_t i = 0; i < 2; i++)
		if ((time_t)(sig[3 * i] / 1000000000u) + RECENT_S >= time(NULL))
			s->changed = true;
}

/* Tells a session in IDLE at once; the others at their next command. */
static void
folder_changed(void *arg)
{
	struct imap_session *s = arg;
	static int blind = -1;

	if (blind < 0)
		blind = getenv("GODWIT_TEST_BLIND_WATCH") != NULL;
	if (blind)
		return;
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
	folder_sig(imap_folder_path(s->folder), s->sig);
	s->sig_checked_ms = mono_ms();
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
	check_sig(s, false);
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
	struct event *poll;	/* without a watch: the folder, every
				 * IDLE_POLL_S; with one: its signature, every
				 * idle_check_interval */
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
	if (s->watch != NULL)
		check_sig(s, true);
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
	if (s->folder != NULL && s->watch != NULL &&
	    s->config->imap.idle_check_interval > 0)
		tv.tv_sec = (time_t)s->config->imap.idle_check_interval;
	if (s->folder != NULL &&
	    (s->watch == NULL || s->config->imap.idle_check_interval > 0)) {
		st->poll = event_new(s->ses.srv->base, -1, EV_PERSIST,
				     idle_poll, s);
		if (st->poll != NULL)
			(void)event_add(st->poll, &tv);
	}
	evbuffer_add_printf(imap_out(s), "+ idling\r\n");
	imap_sync_report(s, true);
}
