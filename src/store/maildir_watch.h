/*
 * Change notification for Maildir folders: one inotify instance per
 * process (the kernel allows few instances per user, and a worker holds
 * thousands of IDLE sessions), one watch per directory (new/ and cur/ of
 * a folder) shared by every session watching it, a callback per session.
 * The caller puts maildir_watch_fd() into its event loop and calls
 * maildir_watch_dispatch() when it is readable. Delivery (rename into
 * new/), POP3 deletes, other IMAP sessions' flag renames and expunges,
 * in this process or another, all show up. Overflow (IN_Q_OVERFLOW)
 * calls every callback.
 */
#ifndef GODWIT_MAILDIR_WATCH_H
#define GODWIT_MAILDIR_WATCH_H

struct maildir_watch;
struct maildir_watch_entry;

struct maildir_watch *maildir_watch_new(void);
void maildir_watch_free(struct maildir_watch *w);
int maildir_watch_fd(const struct maildir_watch *w);

/* Calls cb(arg) after changes in folder_path's new/ or cur/. NULL and
 * errno if the watch cannot be added (the caller falls back to polling). */
struct maildir_watch_entry *maildir_watch_add(struct maildir_watch *w,
					      const char *folder_path,
					      void (*cb)(void *arg), void *arg);
void maildir_watch_remove(struct maildir_watch *w,
			  struct maildir_watch_entry *e);
/* Reads the pending events and calls the callbacks (each at most once
 * per dispatch). A callback may remove any entry (a removed one is not
 * called) or free the watch (done when the dispatch ends); a dispatch
 * from inside a callback does nothing. */
void maildir_watch_dispatch(struct maildir_watch *w);

#endif
