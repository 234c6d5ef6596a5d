/*
 * What `godwit backup` copies below data_dir, and in which order: the
 * queue, then the Maildirs, then the rest (backup.h says why this order
 * loses no message that got its 250).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/config.h"
#include "lib/strset.h"
#include "lib/xalloc.h"
#include "ops/backup.h"
#include "ops/backup_private.h"
#include "store/queue.h"

#define WALK_DEPTH_MAX 16

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
names_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* The names in rel (below data_dir), sorted, dot entries left out; NULL
 * with *n_r = 0 when it cannot be read (errno) or is empty. */
static char **
list_dir(struct bk *b, const char *rel, size_t *n_r)
{
	int fd = bk_open_rel(b, rel, O_RDONLY | O_DIRECTORY);
	char **v = NULL;
	struct dirent *de;
	DIR *d;

	*n_r = 0;
	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		int saved = errno;
		if (fd >= 0)
			close(fd);
		errno = saved;
		return NULL;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		v = xreallocarray(v, *n_r + 1, sizeof(*v));
		v[(*n_r)++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (*n_r > 1)
		qsort(v, *n_r, sizeof(*v), cmp_str);
	errno = 0;
	return v;
}

/* The directory rel as data/<rel>; 1 it is one, 0 it is not (or gone). */
static int
add_dir(struct bk *b, const char *rel)
{
	struct stat sb;
	int fd = bk_open_rel(b, rel, O_RDONLY | O_DIRECTORY), r;
	char *apath;

	if (fd < 0)
		return 0;
	r = fstat(fd, &sb);
	close(fd);
	if (r < 0)
		return 0;
	apath = rel[0] == '\0' ? xstrdup("data") : xasprintf("data/%s", rel);
	r = bk_add_dir(b, apath, sb.st_mode, sb.st_mtime);
	free(apath);
	return r < 0 ? -1 : 1;
}

/* ---- the queue ------------------------------------------------------ */

/* id, found in queue/<states[first]> or, moved meanwhile, in another. */
static int
queue_one(struct bk *b, const char *id, size_t first, size_t nstates,
	  struct strset *done, char **done_ids, size_t *ndone)
{
	for (size_t k = 0; k < nstates; k++) {
		size_t i = (first + k) % nstates;
		char *rel = xasprintf("queue/%s/%s", queue_states[i], id);
		int r = bk_add_rel(b, rel);

		free(rel);
		if (r < 0)
			return -1;
		if (r == 0)
			continue;
		if (i != first)
			bk_stats(b)->moved++;
		done_ids[*ndone] = xstrdup(id);
		strset_add(done, done_ids[(*ndone)++]);
		return 0;
	}
	bk_stats(b)->vanished++;
	return 0;
}

static int
bk_queue(struct bk *b)
{
	char **ids[8] = {0};
	size_t n[8] = {0}, total = 0, ndone = 0, nstates = 0;
	struct strset done = {0};
	char **done_ids;
	int r = 0;

	if ((r = add_dir(b, "queue")) <= 0)
		return r;
	/* every directory's names first, then the files: one that moves
	 * on (incoming -> active -> deferred|hold) is found where it went */
	for (; queue_states[nstates] != NULL && nstates < 8; nstates++) {
		char *rel = xasprintf("queue/%s", queue_states[nstates]);
		if (add_dir(b, rel) < 0)
			r = -1;
		free(rel);
		ids[nstates] = queue_ids(bk_data_dir(b), queue_states[nstates],
					 &n[nstates]);
		total += n[nstates];
	}
	r = r < 0 ? -1 : add_dir(b, "queue/tmp") < 0 ? -1 : 0;
	r = r < 0 ? -1 : add_dir(b, "queue/state") < 0 ? -1 : 0;
	done_ids = xcalloc(total + 1, sizeof(*done_ids));
	for (size_t s = 0; s < nstates && r == 0; s++)
		for (size_t i = 0; i < n[s] && r == 0; i++)
			if (!strset_contains(&done, ids[s][i]))
				r = queue_one(b, ids[s][i], s, nstates, &done,
					      done_ids, &ndone);
	/* each state file after its message: as new as the message, or
	 * newer (more recipients done) */
	for (size_t i = 0; i < ndone && r == 0; i++) {
		char *rel = xasprintf("queue/state/%s", done_ids[i]);
		r = bk_add_rel(b, rel) < 0 ? -1 : 0;
		free(rel);
	}
	for (size_t s = 0; s < nstates; s++)
		names_free(ids[s], n[s]);
	names_free(done_ids, ndone);
	strset_clear(&done);
	return r;
}

/* ---- Maildirs and the rest ------------------------------------------ */

static size_t
base_len(const char *name)
{
	const char *colon = strchr(name, ':');

	return colon != NULL ? (size_t)(colon - name) : strlen(name);
}

/*
 * A Maildir message gone from dir/name (dir ends in new or cur): moved to
 * cur/ or renamed with other flags. Looks in both by its base name.
 */
static int
maildir_refind(struct bk *b, const char *maildir, const char *name)
{
	static const char *const subs[] = {"cur", "new"};
	size_t blen = base_len(name);

	for (size_t s = 0; s < 2; s++) {
		char *sub = xasprintf("%s/%s", maildir, subs[s]);
		size_t n;
		char **v = list_dir(b, sub, &n);
		int r = 0;

		for (size_t i = 0; i < n && r == 0; i++) {
			if (base_len(v[i]) != blen ||
			    strncmp(v[i], name, blen) != 0)
				continue;
			char *rel = xasprintf("%s/%s", sub, v[i]);
			r = bk_add_rel(b, rel);
			free(rel);
		}
		names_free(v, n);
		free(sub);
		if (r != 0) {
			if (r > 0)
				bk_stats(b)->moved++;
			return r < 0 ? -1 : 0;
		}
	}
	bk_stats(b)->vanished++;	/* deleted by its reader */
	return 0;
}

static bool
is_maildir_sub(const char *rel, const char *sub)
{
	size_t n = strlen(rel), k = strlen(sub);

	return n > k && rel[n - k - 1] == '/' && strcmp(rel + n - k, sub) == 0;
}

/* Below data_dir: what a walk leaves out. */
static bool
walk_skips_content(const char *rel)
{
	return strcmp(rel, "queue") == 0 || strcmp(rel, "control") == 0 ||
	       (strncmp(rel, "mail/", 5) == 0 && is_maildir_sub(rel, "tmp"));
}

static bool
walk_skips_file(const char *rel, const char *name)
{
	size_t n = strlen(name);
	static const char *const sqlite_aux[] = {".sqlite-wal", ".sqlite-shm",
						 ".sqlite-journal"};

	if (strcmp(rel, "") == 0 && strncmp(name, ".server-secret.", 15) == 0)
		return true;
	for (size_t i = 0; i < 3; i++) {
		size_t k = strlen(sqlite_aux[i]);
		if (n > k && strcmp(name + n - k, sqlite_aux[i]) == 0)
			return true;
	}
	return false;
}

static int walk(struct bk *b, const char *rel, unsigned depth);

static int
walk_entry(struct bk *b, const char *rel, const char *name, unsigned depth)
{
	char *sub = rel[0] == '\0' ? xstrdup(name)
				   : xasprintf("%s/%s", rel, name);
	struct stat sb;
	char *path = xasprintf("%s/%s", bk_data_dir(b), sub);
	int r = 0;

	if (!bk_name_ok(name) || walk_skips_file(rel, name))
		bk_stats(b)->skipped += !walk_skips_file(rel, name);
	else if (lstat(path, &sb) < 0) {
		if (errno != ENOENT)
			r = bk_fail(b, "%s: %s", path, strerror(errno));
		else if (is_maildir_sub(rel, "new") ||
			 is_maildir_sub(rel, "cur")) {
			char *copy = xstrdup(rel);
			r = maildir_refind(b, dirname(copy), name);
			free(copy);
		}
	} else if (S_ISDIR(sb.st_mode))
		r = walk(b, sub, depth + 1);
	else if (S_ISREG(sb.st_mode)) {
		r = bk_add_rel(b, sub);
		if (r == 0 && (is_maildir_sub(rel, "new") ||
			       is_maildir_sub(rel, "cur"))) {
			char *copy = xstrdup(rel);
			r = maildir_refind(b, dirname(copy), name);
			free(copy);
		}
		r = r < 0 ? -1 : 0;
	} else
		bk_stats(b)->skipped++;
	free(path);
	free(sub);
	return r;
}

static int
walk(struct bk *b, const char *rel, unsigned depth)
{
	size_t n;
	char **v;
	int r;

	if (depth > WALK_DEPTH_MAX) {
		bk_stats(b)->skipped++;
		return 0;
	}
	if ((r = add_dir(b, rel)) <= 0)
		return r;
	if (walk_skips_content(rel))
		return 0;
	v = list_dir(b, rel, &n);
	r = 0;
	/* a Maildir's new/ before its cur/: a message moves only that way,
	 * so one gone from new/ is found in cur/, listed after */
	for (size_t i = 0; i < n && r == 0; i++)
		if (strcmp(v[i], "new") == 0)
			r = walk_entry(b, rel, v[i], depth);
	for (size_t i = 0; i < n && r == 0; i++)
		if (strcmp(v[i], "new") != 0 &&
		    (depth > 0 || (strcmp(v[i], "queue") != 0 &&
				   strcmp(v[i], "mail") != 0)))
			r = walk_entry(b, rel, v[i], depth);
	names_free(v, n);
	return r;
}

int
bk_data(struct bk *b, const struct config *config)
{
	int r;

	if (add_dir(b, "") <= 0)
		return bk_fail(b, "%s: %s", bk_data_dir(b),
			       errno != 0 ? strerror(errno) : "not a directory");
	r = bk_queue(b);
	/* mail_dir below data_dir, at its default place; elsewhere (a
	 * shared store) it is not this node's to copy: cmd_backup says so */
	if (r == 0)
		r = walk(b, "mail", 1);
	if (r == 0)
		r = walk(b, "", 0);
	if (r == 0 && bk_userdb_rel(b) == NULL && config->userdb.path != NULL &&
	    config->userdb.path[0] != '\0') {
		struct stat sb;
		char *copy = xstrdup(config->userdb.path);
		char *apath = xasprintf("userdb/%s", basename(copy));

		if (stat(config->userdb.path, &sb) < 0)
			r = bk_fail(b, "%s: %s", config->userdb.path,
				    strerror(errno));
		else
			r = bk_add_sqlite(b, apath, config->userdb.path, &sb);
		free(apath);
		free(copy);
	}
	return r;
}

/* ---- the configuration's files -------------------------------------- */

static int
config_ref(struct bk *b, const char *dir, const char *path)
{
	char *real;
	size_t dlen = strlen(dir);
	int r = 0;

	if (path == NULL || path[0] == '\0')
		return 0;
	if ((real = realpath(path, NULL)) == NULL) {
		bk_note_outside(b, path);
		return 0;
	}
	if (strncmp(real, dir, dlen) == 0 && real[dlen] == '/') {
		char *apath = xasprintf("config/%s", real + dlen + 1);
		r = bk_add_outside_file(b, real, apath);
		free(apath);
	} else
		bk_note_outside(b, path);
	free(real);
	return r;
}

int
bk_config_refs(struct bk *b, const struct config *config, const char *dir)
{
	const struct tls_config *tls = &config->tls;
	int r = 0;

	for (size_t i = 0; i < tls->ncerts && r == 0; i++) {
		r = config_ref(b, dir, tls->certs[i].cert);
		if (r == 0)
			r = config_ref(b, dir, tls->certs[i].key);
	}
	if (r == 0)
		r = config_ref(b, dir, config->smarthost.credentials);
	if (r == 0)
		r = config_ref(b, dir, config->smarthost.ca_file);
	return r;
}
