/*
 * What the mailbox command files share among themselves (imap_mailbox.c,
 * imap_msgops.c, imap_list.c, imap_append.c, imap_idle.c): the handlers
 * each file exports to the table in imap_mailbox.c, the selected
 * folder's change watch, and small reply helpers.
 */
#ifndef GODWIT_IMAP_MBOX_H
#define GODWIT_IMAP_MBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imapd/imap_private.h"

struct imap_changes;
struct imap_seqset;

/* the handlers, by file */
imap_cmd_fn imap_cmd_list;
imap_cmd_fn imap_cmd_lsub;
imap_cmd_fn imap_cmd_append;
imap_cmd_fn imap_cmd_idle;
imap_cmd_fn imap_cmd_store;
imap_cmd_fn imap_cmd_copy;
imap_cmd_fn imap_cmd_move;

/*
 * Ends a command after a store call failed with errno err: "NO" with the
 * response code that fits (NONEXISTENT, ALREADYEXISTS, TRYCREATE when
 * trycreate, CANNOT, LIMIT, SERVERBUG) and what.
 */
void imap_store_fail(struct imap_session *s, int err, bool trycreate,
		     const char *what);

/* "* n EXPUNGE" for each of ch->expunged */
void imap_write_expunges(struct imap_session *s, const struct imap_changes *ch);
/* "* FLAGS (...)" and "* OK [PERMANENTFLAGS (...)]" of the selected folder */
void imap_write_folder_flags(struct imap_session *s);

/*
 * A sequence set argument (numbers, or UIDs if uid; "$" the saved
 * SEARCH result) resolved against the selected folder: the indexes of
 * the messages in it, ascending, in *idx_r (the caller frees; NULL when
 * none). False if it is not a valid set, or names a message number that
 * does not exist; *err_r says which, for the BAD.
 */
bool imap_set_resolve(struct imap_session *s, const struct imap_arg *a,
		      bool uid, size_t **idx_r, size_t *n_r,
		      const char **err_r);

/* STATUS items: the list's atoms as a mask (false: not a valid list) */
bool imap_status_items(const struct imap_arg *list, unsigned *mask_r);
struct imap_status;
/* "* STATUS name (...)" with the items of mask */
void imap_write_status(struct imap_session *s, const char *name,
		       unsigned mask, const struct imap_status *st);

/* Flags of STORE and APPEND: system flags as IMAP_F_* bits, keywords by
 * name (pointing into the arguments). */
struct imap_flagset {
	unsigned flags;
	const char **kw;
	size_t nkw;
};
/* args[0..n-1], each an atom flag; false and *err_r if one is not. */
bool imap_flags_parse(const struct imap_arg *args, size_t n,
		      struct imap_flagset *fs, const char **err_r);
void imap_flagset_free(struct imap_flagset *fs);

/* The change watch of the selected folder (imap_idle.c): started at
 * SELECT, stopped when the folder is closed. */
void imap_watch_start(struct imap_session *s);
void imap_watch_stop(struct imap_session *s);
/* Whether the folder may have changed since the last sync (true when
 * there is no watch): the watch's queued events are read first. */
bool imap_watch_pending(struct imap_session *s);

#endif
