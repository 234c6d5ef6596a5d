/*
 * inotify change notification for Maildir folders: see maildir_watch.h.
 * One inotify fd per process; a directory (a folder's new/ or cur/) is
 * watched once, however many sessions watch its folder; each inotify
 * watch descriptor maps to the entries of the folders it belongs to.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "lib/xalloc.h"
#include "store/maildir_watch.h"

#define WATCH_MASK (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | \
		    IN_ATTRIB | IN_CLOSE_WRITE | IN_ONLYDIR)

struct maildir_watch_entry {
	struct maildir_watch_entry *next;
	int wd[2];		/* new/, cur/ */
	void (*cb)(void *arg);
	void *arg;
	bool fire;
	bool dead;		/* removed during a dispatch */
};

/* one per watch descriptor: how many entries use it */
struct wd_ref {
	int wd;
	size_t refs;
};

struct maildir_watch {
	int fd;
	struct maildir_watch_entry *entries;
	struct wd_ref *wds;
	size_t nwds, capwds;
	bool dispatching;
	bool free_pending;	/* maildir_watch_free() from a callback */
};

struct maildir_watch *
maildir_watch_new(void)
{
	struct maildir_watch *w;
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);

	if (fd < 0)
		return NULL;
	w = xcalloc(1, sizeof(*w));
	w->fd = fd;
	return w;
}

int
maildir_watch_fd(const struct maildir_watch *w)
{
	return w->fd;
}

static void
wd_ref(struct maildir_watch *w, int wd)
{
	for (size_t i = 0; i < w->nwds; i++)
		if (w->wds[i].wd == wd) {
			w->wds[i].refs++;
			return;
		}
	if (w->nwds == w->capwds) {
		w->capwds = w->capwds ? w->capwds * 2 : 16;
		w->wds = xreallocarray(w->wds, w->capwds, sizeof(*w->wds));
	}
	w->wds[w->nwds].wd = wd;
	w->wds[w->nwds++].refs = 1;
}

static void
wd_unref(struct maildir_watch *w, int wd)
{
	for (size_t i = 0; i < w->nwds; i++) {
		if (w->wds[i].wd != wd)
			continue;
		if (--w->wds[i].refs == 0) {
			(void)inotify_rm_watch(w->fd, wd);
			w->wds[i] = w->wds[--w->nwds];
		}
		return;
	}
}

struct maildir_watch_entry *
maildir_watch_add(struct maildir_watch *w, const char *folder_path,
		  void (*cb)(void *arg), void *arg)
{
	static const char *const subs[2] = {"new", "cur"};
	struct maildir_watch_entry *e = xcalloc(1, sizeof(*e));
	char path[PATH_MAX];

	for (int i = 0; i < 2; i++) {
		e->wd[i] = -1;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", folder_path,
				     subs[i]) >= sizeof(path)) {
			errno = ENAMETOOLONG;
			goto fail;
		}
		/* the same directory gives the same wd: shared */
		if ((e->wd[i] = inotify_add_watch(w->fd, path, WATCH_MASK)) < 0)
			goto fail;
		wd_ref(w, e->wd[i]);
	}
	e->cb = cb;
	e->arg = arg;
	e->next = w->entries;
	w->entries = e;
	return e;
fail:;
	int saved = errno;
	if (e->wd[0] >= 0)
		wd_unref(w, e->wd[0]);
	free(e);
	errno = saved;
	return NULL;
}

static void
entry_unlink(struct maildir_watch *w, struct maildir_watch_entry *e)
{
	for (struct maildir_watch_entry **p = &w->entries; *p; p = &(*p)->next)
		if (*p == e) {
			*p = e->next;
			break;
		}
	free(e);
}

void
maildir_watch_remove(struct maildir_watch *w, struct maildir_watch_entry *e)
{
	if (e == NULL)
		return;
	wd_unref(w, e->wd[0]);
	wd_unref(w, e->wd[1]);
	e->wd[0] = e->wd[1] = -1;
	if (w->dispatching)
		e->dead = true;	/* freed when the dispatch ends */
	else
		entry_unlink(w, e);
}

static void
mark(struct maildir_watch *w, int wd, bool all)
{
	for (struct maildir_watch_entry *e = w->entries; e; e = e->next)
		if (all || e->wd[0] == wd || e->wd[1] == wd)
			e->fire = true;
}

void
maildir_watch_dispatch(struct maildir_watch *w)
{
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	struct maildir_watch_entry *e, *next;
	ssize_t k;
	int rounds = 0;

	if (w->dispatching)
		return;		/* called again from a callback: the outer
				 * dispatch calls the marked ones */
	while (rounds++ < 64 && (k = read(w->fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + k;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			mark(w, ev->wd, (ev->mask & IN_Q_OVERFLOW) != 0);
			p += sizeof(*ev) + ev->len;
		}
	}
	w->dispatching = true;
	for (e = w->entries; e && !w->free_pending; e = e->next)
		if (e->fire && !e->dead) {
			e->fire = false;
			e->cb(e->arg);
		}
	w->dispatching = false;
	for (e = w->entries; e; e = next) {
		next = e->next;
		if (e->dead)
			entry_unlink(w, e);
	}
	if (w->free_pending)
		maildir_watch_free(w);
}

void
maildir_watch_free(struct maildir_watch *w)
{
	struct maildir_watch_entry *e, *next;

	if (w == NULL)
		return;
	if (w->dispatching) {
		/* from a callback: freed when the dispatch ends */
		w->free_pending = true;
		return;
	}
	for (e = w->entries; e; e = next) {
		next = e->next;
		free(e);
	}
	free(w->wds);
	close(w->fd);
	free(w);
}
