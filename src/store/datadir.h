/*
 * The layout of data_dir: every directory godwit keeps there (and the
 * user database file), each with its owner and mode stated once, in one
 * table (datadir.c). datadir_prepare() makes what is missing and puts
 * right what is wrong, the way `postfix set-permissions` does for
 * Postfix's queue; `godwit serve` calls it as root before the workers and
 * the queue runner drop to the daemon user, and the admin commands call
 * it before they create anything there, so whichever runs first, the
 * daemon finds what it must write owned by it.
 */
#ifndef GODWIT_DATADIR_H
#define GODWIT_DATADIR_H

#include <stdbool.h>
#include <sys/types.h>

struct userdb_config;

/* What the layout is made from: top-level keys of the configuration. */
struct datadir_config {
	const char *data_dir;
	const char *mail_dir;	/* the Maildirs (config.h) */
	const char *user;	/* the daemon user; NULL or "": don't drop */
	const struct userdb_config *userdb;	/* its files are placed too */
};

/* Who the daemon's processes run as. */
struct datadir_ids {
	bool drop;	/* we are root and drop to user */
	uid_t uid;	/* that user, or our own ids when !drop */
	gid_t gid;
};

/*
 * Resolves user (the configured daemon user) when running as root (drop =
 * true); otherwise the processes keep our own ids. -1 with *error_r when
 * the user does not exist or is root.
 */
int datadir_ids(const char *user, struct datadir_ids *ids_r, char **error_r);

/*
 * Creates every directory of the layout that is missing (fsyncing its
 * parent), and gives each existing one the owner and mode the table
 * says, logging each change (fac=datadir event=fixed). Refuses, with the
 * path and what to do in *error_r: a symbolic link or a non-directory
 * where a directory belongs (nothing below data_dir is followed: the
 * daemon user can write there), an owner we cannot change (not root),
 * and, when dropping, a directory above data_dir that the daemon user
 * cannot enter.
 */
int datadir_prepare(const struct datadir_config *config,
		    const struct datadir_ids *ids, char **error_r);

/*
 * Who should own rel, a path below data_dir ("" is data_dir itself), or
 * an entry in it: the owner and group of the deepest entry of the table
 * that holds it (the daemon user's directories' files are the daemon
 * user's, root's are root's; the user database file is its own entry).
 * Our own ids when !ids->drop. For a restore (ops/backup.h).
 */
void datadir_owner(const struct datadir_config *config,
		   const struct datadir_ids *ids, const char *rel,
		   uid_t *uid_r, gid_t *gid_r);

/*
 * As root with a daemon user configured: become that user (for admin
 * commands that write files the daemon must own, e.g. queue state).
 * 0 (also when there is nothing to do) or -1 with *error_r.
 */
int datadir_become_daemon(const char *user, char **error_r);

#endif
