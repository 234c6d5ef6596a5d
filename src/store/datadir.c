/*
 * The layout of data_dir, stated once: the table below names every
 * directory godwit keeps there, and the user database file, with owner,
 * group and mode. One function makes and checks them all, for the daemon
 * and for the admin commands alike (datadir.h).
 *
 * The rule, decided as Postfix's `postfix set-permissions` and `postfix
 * check` decide it for the queue: godwit owns this layout, so a wrong
 * owner or mode (left by an older version, a copy, a restore, or a
 * command run as root) is put right and logged; what cannot be right
 * without a person's decision is refused with the path and the remedy: a
 * symbolic link or a file where a directory belongs, an owner only root
 * could change, a directory above data_dir the daemon user cannot enter.
 *
 * Below data_dir nothing is followed: entries are opened one component
 * at a time with O_NOFOLLOW and changed through the descriptor, because
 * the daemon user can write in queue/ and mail/ and could otherwise plant
 * a link there that root would chown at the next start.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/datadir.h"
#include "store/userdb.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "lib/log.h"

enum who { ROOT, DAEMON };
enum where {
	AT_DATA,	/* path below data_dir ("" is data_dir itself) */
	AT_USERDB_DIR,	/* the directory of the SQLite user database */
	AT_USERDB,	/* the SQLite user database file */
	AT_MAIL,	/* mail_dir: below data_dir or anywhere else */
};

static const struct entry {
	enum where where;
	const char *path;
	char type;		/* 'd' directory, 'f' file (made empty) */
	enum who owner, group;
	mode_t mode;
} layout[] = {
	/* root's: whoever may rename entries here could swap the user
	 * database (or, in the dev set-up, the configuration) */
	{AT_DATA, "", 'd', ROOT, DAEMON, 0750},
	/* workers and the runner read the user database, never change it;
	 * SQLite takes an empty file as an empty database */
	{AT_USERDB_DIR, NULL, 'd', ROOT, DAEMON, 0750},
	{AT_USERDB, NULL, 'f', ROOT, DAEMON, 0640},
	/* log files are opened by the parent, as root; the daemon's group
	 * may enter, to append to audit.log, but not make or rename files */
	{AT_DATA, "log", 'd', ROOT, DAEMON, 0750},
	/* the audit log (store/audit.h): appended by every committer, so
	 * the daemon's; rotated (a new file in log/) only by root */
	{AT_DATA, "log/audit.log", 'f', DAEMON, DAEMON, 0640},
	/* Maildirs below it are made by the workers as they deliver; on a
	 * store shared by several nodes, each node's daemon user must have
	 * the same uid (a root-squashed NFS export refuses root's chown) */
	{AT_MAIL, NULL, 'd', DAEMON, DAEMON, 0750},
	{AT_DATA, "queue", 'd', DAEMON, DAEMON, 0750},
	{AT_DATA, "queue/tmp", 'd', DAEMON, DAEMON, 0750},
	{AT_DATA, "queue/incoming", 'd', DAEMON, DAEMON, 0750},
	{AT_DATA, "queue/active", 'd', DAEMON, DAEMON, 0750},
	{AT_DATA, "queue/deferred", 'd', DAEMON, DAEMON, 0750},
	{AT_DATA, "queue/hold", 'd', DAEMON, DAEMON, 0750},
	{AT_DATA, "queue/state", 'd', DAEMON, DAEMON, 0750},
	/* `godwit queue adopt`'s staged copies and records
	 * (store/queue_adopt.h) */
	{AT_DATA, "queue/adopt", 'd', DAEMON, DAEMON, 0750},
	/* the queue runner's control socket (mta/control.h) */
	{AT_DATA, "control", 'd', DAEMON, DAEMON, 0750},
	/* DKIM signing keys (msgauth/dkim.h), read by the parent as root */
	{AT_DATA, "dkim", 'd', ROOT, ROOT, 0700},
	/* DMARC aggregate-report records, appended by the workers
	 * (msgauth/dmarc_store.c) */
	{AT_DATA, "dmarc", 'd', DAEMON, DAEMON, 0750},
	/* the filters' shared state: greylisting's SQLite database
	 * (filter/greylist.h), written by every worker */
	{AT_DATA, "filter", 'd', DAEMON, DAEMON, 0750},
};

int
datadir_ids(const char *user, struct datadir_ids *ids_r, char **error_r)
{
	struct passwd *pw;

	ids_r->drop = false;
	ids_r->uid = geteuid();
	ids_r->gid = getegid();
	if (ids_r->uid != 0 || user == NULL || user[0] == '\0')
		return 0;
	if ((pw = getpwnam(user)) == NULL) {
		*error_r = xasprintf("user '%s' does not exist (create it: "
				     "useradd --system --no-create-home "
				     "--shell /usr/sbin/nologin %s)",
				     user, user);
		return -1;
	}
	if (pw->pw_uid == 0) {
		*error_r = xasprintf("user '%s' is root: workers must not "
				     "run as root",
				     user);
		return -1;
	}
	ids_r->uid = pw->pw_uid;
	ids_r->gid = pw->pw_gid;
	ids_r->drop = true;
	return 0;
}

int
datadir_become_daemon(const char *user, char **error_r)
{
	struct datadir_ids ids;

	if (datadir_ids(user, &ids, error_r) < 0)
		return -1;
	if (!ids.drop)
		return 0;
	if (setgroups(1, &ids.gid) < 0 || setgid(ids.gid) < 0 ||
	    setuid(ids.uid) < 0) {
		*error_r = xasprintf("cannot become user %s: %s", user,
				     strerror(errno));
		return -1;
	}
	if (setuid(0) == 0) {
		*error_r = xstrdup("privileges were not dropped");
		return -1;
	}
	return 0;
}

/* "godwit:godwit", or numbers for ids without a name. */
static void
owner_text(uid_t uid, gid_t gid, char *buf, size_t size)
{
	struct passwd *pw = getpwuid(uid);
	struct group *gr = getgrgid(gid);
	char u[32], g[32];

	snprintf(u, sizeof(u), "%lu", (unsigned long)uid);
	snprintf(g, sizeof(g), "%lu", (unsigned long)gid);
	snprintf(buf, size, "%s:%s", pw != NULL ? pw->pw_name : u,
		 gr != NULL ? gr->gr_name : g);
}

/*
 * Opens rel ("a/b/c") below dfd, one component at a time, following no
 * link; the last one is made (empty file, or directory) if missing and
 * its parent fsynced. Returns the descriptor or -1 with *error_r.
 */
static int
open_below(int dfd, const char *shown, const char *rel, char type,
	   bool *created_r, char **error_r)
{
	char *copy = xstrdup(rel), *comp = copy, *slash;
	int cur = dfd, fd = -1;
	const int dflags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;

	*created_r = false;
	while ((slash = strchr(comp, '/')) != NULL) {
		*slash = '\0';
		if ((fd = openat(cur, comp, dflags)) < 0)
			goto fail;
		if (cur != dfd)
			close(cur);
		cur = fd;
		comp = slash + 1;
	}
	if (type == 'd') {
		fd = openat(cur, comp, dflags);
		if (fd < 0 && errno == ENOENT) {
			/* 0700 until its owner and mode are set */
			if (mkdirat(cur, comp, 0700) < 0 && errno != EEXIST)
				goto fail;
			*created_r = true;
			fd = openat(cur, comp, dflags);
		}
	} else {
		const int fflags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
				   O_NOCTTY | O_CLOEXEC;
		fd = openat(cur, comp, fflags);
		if (fd < 0 && errno == ENOENT) {
			fd = openat(cur, comp, fflags | O_CREAT | O_EXCL,
				    0600);
			*created_r = fd >= 0;
		}
	}
	if (fd < 0)
		goto fail;
	if (*created_r && fsync(cur) < 0) {
		close(fd);
		fd = -1;
		goto fail;
	}
	if (cur != dfd)
		close(cur);
	free(copy);
	return fd;
fail:
	{
		/* O_DIRECTORY may say ENOTDIR before O_NOFOLLOW says ELOOP */
		struct stat sb;
		int saved = errno;
		if ((errno == ENOTDIR || errno == ELOOP) &&
		    fstatat(cur, comp, &sb, AT_SYMLINK_NOFOLLOW) == 0)
			errno = S_ISLNK(sb.st_mode) ? ELOOP : ENOTDIR;
		else
			errno = saved;
	}
	if (errno == ELOOP)
		*error_r = xasprintf("%s: a symbolic link where godwit keeps a "
				     "%s (nothing below data_dir is "
				     "followed): remove it",
				     shown, type == 'd' ? "directory" : "file");
	else if (errno == ENOTDIR)
		*error_r = xasprintf("%s: not a directory (or a part of its "
				     "path is not): move it away",
				     shown);
	else
		*error_r = xasprintf("%s: %s", shown, strerror(errno));
	if (cur != dfd && cur >= 0)
		close(cur);
	free(copy);
	return -1;
}

/* Gives fd the owner and mode e asks for; logs what it changed. */
static int
fix(int fd, const char *shown, const struct entry *e,
    const struct datadir_ids *ids, bool created, char **error_r)
{
	struct stat sb;
	uid_t uid = ids->uid;
	gid_t gid = ids->gid;
	char was[160], now[160];

	if (ids->drop) {
		uid = e->owner == ROOT ? 0 : ids->uid;
		gid = e->group == ROOT ? 0 : ids->gid;
	}
	if (fstat(fd, &sb) < 0) {
		*error_r = xasprintf("%s: %s", shown, strerror(errno));
		return -1;
	}
	if (e->type == 'd' ? !S_ISDIR(sb.st_mode) : !S_ISREG(sb.st_mode)) {
		*error_r = xasprintf("%s: not a %s: move it away", shown,
				     e->type == 'd' ? "directory"
						    : "regular file");
		return -1;
	}
	owner_text(sb.st_uid, sb.st_gid, was, sizeof(was));
	if (geteuid() != 0) {
		/* without root only our own entries can be put right */
		if (sb.st_uid != uid) {
			owner_text(uid, gid, now, sizeof(now));
			*error_r = xasprintf("%s: owned by %s, but godwit runs "
					     "as %s: run it as root, or "
					     "chown the directory",
					     shown, was, now);
			return -1;
		}
		gid = sb.st_gid;
	} else if ((sb.st_uid != uid || sb.st_gid != gid) &&
		   fchown(fd, uid, gid) < 0) {
		*error_r = xasprintf("%s: chown: %s", shown, strerror(errno));
		return -1;
	}
	if ((sb.st_mode & 07777) != e->mode && fchmod(fd, e->mode) < 0) {
		*error_r = xasprintf("%s: chmod: %s", shown, strerror(errno));
		return -1;
	}
	if (!created &&
	    (sb.st_uid != uid || sb.st_gid != gid ||
	     (sb.st_mode & 07777) != e->mode)) {
		char mwas[8], mnow[8];
		owner_text(uid, gid, now, sizeof(now));
		snprintf(mwas, sizeof(mwas), "%04o",
			 (unsigned)(sb.st_mode & 07777));
		snprintf(mnow, sizeof(mnow), "%04o", (unsigned)e->mode);
		log_event(LOG_WARNING, "datadir", "fixed", LF_STR("path", shown),
			  LF_STR("owner_was", was), LF_STR("mode_was", mwas),
			  LF_STR("owner", now), LF_STR("mode", mnow));
	}
	return 0;
}

/*
 * Every directory from / down to path's parent must let the daemon user
 * through (search permission), or it could not reach what we prepare.
 */
static int
reachable(const char *path, const struct datadir_config *config,
	  const struct datadir_ids *ids, char **error_r)
{
	char *real = realpath(path, NULL), *p;
	int r = 0;

	if (real == NULL) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	for (p = real; r == 0 && (p = strchr(p + 1, '/')) != NULL;) {
		struct stat sb;
		mode_t bit;
		char c = *p;

		*p = '\0';
		if (stat(real[0] == '\0' ? "/" : real, &sb) == 0) {
			bit = sb.st_uid == ids->uid	? S_IXUSR
			      : sb.st_gid == ids->gid	? S_IXGRP
							: S_IXOTH;
			if ((sb.st_mode & bit) == 0) {
				*error_r = xasprintf(
				    "%s: user %s cannot enter this directory "
				    "(mode %04o), so it cannot reach %s: give "
				    "it search permission (chmod o+x %s) or "
				    "move data_dir",
				    real, config->user,
				    (unsigned)(sb.st_mode & 07777), path,
				    real);
				r = -1;
			}
		}
		*p = c;
	}
	free(real);
	return r;
}

/* The directory of path (a new string), "" for none. */
static char *
dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash == NULL ? xstrdup("") : xstrndup(path, (size_t)(slash - path));
}

static bool
userdb_is_sqlite(const struct datadir_config *config)
{
	return config->userdb->path != NULL && config->userdb->path[0] != '\0' &&
	       (config->userdb->backend == NULL ||
		config->userdb->backend[0] == '\0' ||
		strcmp(config->userdb->backend, "sqlite") == 0);
}

/* mail_dir as configured; <data_dir>/mail when the caller left it out. */
static char *
mail_dir_of(const struct datadir_config *config)
{
	return config->mail_dir != NULL && config->mail_dir[0] != '\0'
		   ? xstrdup(config->mail_dir)
		   : xasprintf("%s/mail", config->data_dir);
}

/* The path e stands for (a new string): NULL for an AT_DATA entry or an
 * entry this configuration does not use. */
static char *
entry_target(const struct datadir_config *config, const struct entry *e)
{
	if (e->where == AT_DATA)
		return NULL;
	if (e->where == AT_MAIL)
		return mail_dir_of(config);
	if (!userdb_is_sqlite(config))
		return NULL;
	return e->where == AT_USERDB ? xstrdup(config->userdb->path)
				     : dir_of(config->userdb->path);
}

/*
 * Where e is: a directory descriptor to open it below (*base_r, closed
 * by the caller unless it is data_fd) and the relative path. 1 found,
 * 0 not used by this configuration, -1 error.
 */
static int
locate(const struct datadir_config *config, const struct entry *e, int data_fd,
       int *base_r, char **rel_r, char **error_r)
{
	size_t dlen = strlen(config->data_dir);
	char *target, *dir, *slash;

	*base_r = data_fd;
	*rel_r = NULL;
	if (e->where == AT_DATA) {
		*rel_r = xstrdup(e->path);
		return 1;
	}
	if ((target = entry_target(config, e)) == NULL)
		return 0;
	if (strncmp(target, config->data_dir, dlen) == 0 &&
	    target[dlen] == '/') {
		*rel_r = xstrdup(target + dlen + 1);
		free(target);
		return 1;
	}
	/* data_dir itself (its own entry), or no directory at all */
	if (strcmp(target, config->data_dir) == 0 || target[0] == '\0') {
		free(target);
		return 0;
	}
	/* elsewhere, where the administrator put it: links above the
	 * database's directory (or mail_dir) are theirs to choose; its
	 * parents are made 0755 as mkdir -p does */
	dir = e->where == AT_MAIL ? xstrdup(target)
				  : dir_of(config->userdb->path);
	slash = strrchr(dir, '/');
	if (e->where == AT_USERDB)
		*rel_r = xasprintf("%s/%s", slash != NULL ? slash + 1 : dir,
				   strrchr(target, '/') != NULL
				       ? strrchr(target, '/') + 1
				       : target);
	else
		*rel_r = xstrdup(slash != NULL ? slash + 1 : dir);
	if (slash == NULL)
		dir[0] = '\0';
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	if ((dir[0] != '\0' && mkdir_p(dir, 0755) < 0) ||
	    (*base_r = open(dir[0] != '\0' ? dir : ".",
			    O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		*error_r = xasprintf("%s: %s", dir, strerror(errno));
		*base_r = data_fd;
		xfree(rel_r);
		free(dir);
		free(target);
		return -1;
	}
	free(dir);
	free(target);
	return 1;
}

/* e's path relative to data_dir, or NULL when it is not below it. */
static char *
entry_rel(const struct datadir_config *config, const struct entry *e)
{
	size_t dlen = strlen(config->data_dir);
	char *target, *r = NULL;

	if (e->where == AT_DATA)
		return xstrdup(e->path);
	if ((target = entry_target(config, e)) == NULL)
		return NULL;
	if (strncmp(target, config->data_dir, dlen) == 0 &&
	    target[dlen] == '/')
		r = xstrdup(target + dlen + 1);
	free(target);
	return r;
}

void
datadir_owner(const struct datadir_config *config,
	      const struct datadir_ids *ids, const char *rel, uid_t *uid_r,
	      gid_t *gid_r)
{
	const struct entry *best = &layout[0];
	size_t best_len = 0;

	*uid_r = ids->uid;
	*gid_r = ids->gid;
	if (!ids->drop)
		return;
	for (size_t i = 1; i < sizeof(layout) / sizeof(layout[0]); i++) {
		char *er = entry_rel(config, &layout[i]);
		size_t n = er != NULL ? strlen(er) : 0;

		if (er != NULL && n > best_len && strncmp(rel, er, n) == 0 &&
		    (rel[n] == '\0' || rel[n] == '/')) {
			best = &layout[i];
			best_len = n;
		}
		free(er);
	}
	if (best == &layout[0] && rel[0] != '\0') {
		/* a file of data_dir's own (server-secret) is made by the
		 * parent as root, for root */
		*uid_r = 0;
		*gid_r = 0;
		return;
	}
	*uid_r = best->owner == ROOT ? 0 : ids->uid;
	*gid_r = best->group == ROOT ? 0 : ids->gid;
}

int
datadir_prepare(const struct datadir_config *config, const struct datadir_ids *ids,
		char **error_r)
{
	const char *dd = config->data_dir;
	int data_fd = -1, r = -1;
	char *parent;

	if (dd == NULL || dd[0] == '\0') {
		*error_r = xstrdup("no data_dir configured");
		return -1;
	}
	/* data_dir's parents as mkdir -p makes them; data_dir itself is
	 * the table's first entry, and may be a link the administrator
	 * chose (it is opened following links) */
	parent = dir_of(dd);
	if (parent[0] != '\0' && mkdir_p(parent, 0755) < 0) {
		*error_r = xasprintf("%s: %s", parent, strerror(errno));
		free(parent);
		return -1;
	}
	free(parent);
	{
		bool created = false;
		if (mkdir(dd, 0700) == 0)
			created = true;
		else if (errno != EEXIST) {
			*error_r = xasprintf("%s: %s", dd, strerror(errno));
			return -1;
		}
		if ((data_fd = open(dd, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) <
		    0) {
			*error_r = xasprintf("%s: %s", dd, strerror(errno));
			return -1;
		}
		if (created) {
			char *up = dir_of(dd);
			if (fsync_dir(up[0] != '\0' ? up : "/") < 0)
				log_warn("fsync %s", up);
			free(up);
		}
		if (fix(data_fd, dd, &layout[0], ids, created, error_r) < 0)
			goto out;
	}
	if (ids->drop && reachable(dd, config, ids, error_r) < 0)
		goto out;

	for (size_t i = 1; i < sizeof(layout) / sizeof(layout[0]); i++) {
		const struct entry *e = &layout[i];
		int base, fd, found;
		char *rel = NULL, *shown;
		bool created;

		found = locate(config, e, data_fd, &base, &rel, error_r);
		if (found < 0)
			goto out;
		if (found == 0)
			continue;
		shown = e->where == AT_DATA ? xasprintf("%s/%s", dd, rel)
					    : entry_target(config, e);
		fd = open_below(base, shown, rel, e->type, &created, error_r);
		if (fd >= 0 && fix(fd, shown, e, ids, created, error_r) < 0) {
			close(fd);
			fd = -1;
		}
		if (fd >= 0 &&
		    (e->where == AT_USERDB_DIR || e->where == AT_MAIL) &&
		    base != data_fd &&
		    ids->drop && reachable(shown, config, ids, error_r) < 0) {
			close(fd);
			fd = -1;
		}
		if (base != data_fd)
			close(base);
		free(rel);
		free(shown);
		if (fd < 0)
			goto out;
		close(fd);
	}
	r = 0;
out:
	close(data_fd);
	return r;
}
