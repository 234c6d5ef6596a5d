/*
 * `godwit restore`, after the archive has been read once and found whole:
 * the manifest's check, the target's, and the extraction (backup.h).
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

#include <archive.h>
#include <archive_entry.h>

#include "daemon/config.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "mail/backup_manifest.h"
#include "ops/backup.h"
#include "ops/restore_private.h"
#include "store/datadir.h"

/* An entry line into rec (mail/backup_manifest.h). */
static bool
parse_entry(const char *line, struct rs_rec *rec)
{
	struct manifest_entry e;

	memset(rec, 0, sizeof(*rec));
	if (!manifest_entry_parse(line, &e))
		return false;
	rec->type = e.type;
	rec->mode = e.mode;
	rec->size = e.size;
	memcpy(rec->hash, e.hash, sizeof(rec->hash));
	rec->path = xstrdup(e.path);
	return true;
}

static int
manifest_line(char *line, size_t no, const char *path, struct rs_info *info,
	      char **error_r)
{
	struct rs_rec rec;

	if (strncmp(line, "created ", 8) == 0)
		return 0;
	if (strncmp(line, "data_dir /", 10) == 0 && info->data_dir == NULL) {
		info->data_dir = xstrdup(line + 9);
		return 0;
	}
	if (strncmp(line, "config config/", 14) == 0 && info->config == NULL &&
	    rs_path_ok(line + 7)) {
		info->config = xstrdup(line + 7);
		return 0;
	}
	if (!parse_entry(line, &rec))
		return rs_fail(error_r, "%s: MANIFEST line %zu is damaged", path,
			       no);
	info->files.v = xreallocarray(info->files.v, info->files.n + 1,
				      sizeof(*info->files.v));
	info->files.v[info->files.n++] = rec;
	return 0;
}

static int
cmp_rec(const void *a, const void *b)
{
	return strcmp(((const struct rs_rec *)a)->path,
		      ((const struct rs_rec *)b)->path);
}

/* seen and the manifest agree, entry for entry. */
static int
manifest_compare(const char *path, struct rs_set *seen, struct rs_info *info,
		 char **error_r)
{
	struct rs_set *m = &info->files;

	if (m->n > 1)
		qsort(m->v, m->n, sizeof(*m->v), cmp_rec);
	for (size_t i = 0; i < m->n; i++) {
		struct rs_rec *a = rs_find(seen, m->v[i].path), *e = &m->v[i];
		if (i > 0 && strcmp(m->v[i - 1].path, e->path) == 0)
			return rs_fail(error_r, "%s: MANIFEST lists %s twice",
				       path, e->path);
		if (a == NULL)
			return rs_fail(error_r, "%s: %s is in the MANIFEST but "
				       "not in the archive", path, e->path);
		if (a->type != e->type || a->mode != e->mode ||
		    (e->type == 'F' && (a->size != e->size ||
					strcmp(a->hash, e->hash) != 0)))
			return rs_fail(error_r, "%s: %s does not match the "
				       "MANIFEST (SHA-256, size or mode): the "
				       "archive is damaged", path, e->path);
	}
	if (seen->n != m->n)
		return rs_fail(error_r, "%s: the archive has entries the "
			       "MANIFEST does not list", path);
	return 0;
}

int
rs_manifest_check(const char *path, const char *manifest, size_t len,
		  struct rs_set *seen, struct rs_info *info, char **error_r)
{
	char *copy = xstrndup(manifest, len), *line = copy, *nl;
	size_t no = 1;
	int r = 0;

	if (strlen(copy) != len || len == 0 || copy[len - 1] != '\n' ||
	    strncmp(copy, BACKUP_MAGIC "\n", sizeof(BACKUP_MAGIC)) != 0)
		r = rs_fail(error_r, "%s: not a godwit backup (version 1)",
			    path);
	else
		line = strchr(copy, '\n') + 1;
	while (r == 0 && (nl = strchr(line, '\n')) != NULL) {
		*nl = '\0';
		r = manifest_line(line, ++no, path, info, error_r);
		line = nl + 1;
	}
	if (r == 0 && (info->data_dir == NULL || info->config == NULL))
		r = rs_fail(error_r, "%s: MANIFEST without data_dir or config",
			    path);
	if (r == 0)
		r = manifest_compare(path, seen, info, error_r);
	free(copy);
	return r;
}

/* ---- the target ----------------------------------------------------- */

static bool
dir_is_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	bool empty = true;

	if (d == NULL)
		return errno == ENOENT;
	while (empty && (de = readdir(d)) != NULL)
		empty = strcmp(de->d_name, ".") == 0 ||
			strcmp(de->d_name, "..") == 0;
	closedir(d);
	return empty;
}

/* The user and the user database from the archived configuration. */
static int
rs_from_config(struct rs_ctx *c, char **error_r)
{
	const struct rs_file *f = rs_mem_find(&c->conf, c->info.config);
	struct config *cf = NULL;
	char *errors = NULL;
	size_t dlen = strlen(c->info.data_dir);

	if (f == NULL)
		return rs_fail(error_r, "%s: the configuration %s is missing",
			       c->o->archive, c->info.config);
	if (config_load_buffer(c->info.config, f->data, f->len, &cf,
			       &errors) < 0) {
		rs_fail(error_r, "%s: the archived configuration does not "
			"load:\n%s", c->o->archive, errors);
		free(errors);
		return -1;
	}
	c->user = xstrdup(c->o->user != NULL ? c->o->user
			  : cf->user != NULL ? cf->user : "");
	c->res->audit = cf->audit.enabled;
	c->userdb_driver = cf->userdb.backend != NULL
				   ? xstrdup(cf->userdb.backend) : NULL;
	if (cf->userdb.path != NULL &&
	    strncmp(cf->userdb.path, c->info.data_dir, dlen) == 0 &&
	    cf->userdb.path[dlen] == '/')
		c->userdb_rel = xstrdup(cf->userdb.path + dlen + 1);
	else if (cf->userdb.path != NULL) {
		char *copy = xstrdup(cf->userdb.path);
		c->userdb_rel = xasprintf("db/%s", basename(copy));
		free(copy);
	}
	config_free(&cf);
	return 0;
}

int
rs_prepare(struct rs_ctx *c, char **error_r)
{
	const struct restore_options *o = c->o;
	char *err = NULL;

	if (rs_from_config(c, error_r) < 0)
		return -1;
	if (datadir_ids(c->user, &c->ids, &err) < 0) {
		rs_fail(error_r, "%s", err);
		free(err);
		return -1;
	}
	c->res->old_data_dir = xstrdup(c->info.data_dir);
	c->res->config_path = xstrdup(o->config_out);
	if (c->userdb_rel != NULL)
		c->userdb_path = xasprintf("%s/%s", o->data_dir, c->userdb_rel);
	c->udb.backend = c->userdb_driver;
	c->udb.path = c->userdb_path;
	c->dcfg.data_dir = o->data_dir;
	c->dcfg.user = c->user;
	c->dcfg.userdb = &c->udb;
	if (!o->force && !dir_is_empty(o->data_dir))
		return rs_fail(error_r, "%s: not empty (restore into a new "
			       "directory, or give --force to write over "
			       "it)", o->data_dir);
	if (!o->force && access(o->config_out, F_OK) == 0)
		return rs_fail(error_r, "%s: exists (name another with -c "
			       "FILE, or give --force to replace it)",
			       o->config_out);
	/* parents as mkdir -p makes them; data_dir gets its mode last */
	if (mkdir_p(o->data_dir, 0755) < 0)
		return rs_fail(error_r, "%s: %s", o->data_dir, strerror(errno));
	return 0;
}

/* ---- extraction ----------------------------------------------------- */

/* Where an archive path goes; NULL for the manifest. *rel_r: below
 * data_dir (owner from the table), NULL for the configuration's files. */
static char *
rs_target(struct rs_ctx *c, const char *name, const char **rel_r)
{
	*rel_r = NULL;
	if (strcmp(name, "data") == 0) {
		*rel_r = "";
		return xstrdup(c->o->data_dir);
	}
	if (strncmp(name, "data/", 5) == 0) {
		*rel_r = name + 5;
		return xasprintf("%s/%s", c->o->data_dir, name + 5);
	}
	if (strncmp(name, "userdb/", 7) == 0 && c->userdb_rel != NULL) {
		*rel_r = c->userdb_rel;
		return xstrdup(c->userdb_path);
	}
	if (strcmp(name, c->info.config) == 0)
		return xstrdup(c->o->config_out);
	if (strncmp(name, "config/", 7) == 0) {
		char *copy = xstrdup(c->o->config_out), *r;
		r = xasprintf("%s/%s", dirname(copy), name + 7);
		free(copy);
		return r;
	}
	return NULL;
}

static void
rs_dir_add(struct rs_ctx *c, const char *path, unsigned mode, uid_t uid,
	   gid_t gid)
{
	c->dirs = xreallocarray(c->dirs, c->ndirs + 1, sizeof(*c->dirs));
	c->dirs[c->ndirs].path = xstrdup(path);
	c->dirs[c->ndirs].mode = mode;
	c->dirs[c->ndirs].uid = uid;
	c->dirs[c->ndirs].gid = gid;
	c->ndirs++;
}

static int
rs_file(struct rs_ctx *c, struct archive *a, const char *name,
	const char *target, struct rs_rec *m, uid_t uid, gid_t gid,
	char **error_r)
{
	int flags = O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC |
		    (c->o->force ? O_TRUNC : O_EXCL);
	char hex[65], *copy = xstrdup(target);
	size_t len;
	int fd, r;

	mkdir_p(dirname(copy), 0755);
	free(copy);
	if ((fd = open(target, flags, 0600)) < 0)
		return rs_fail(error_r, "%s: %s", target, strerror(errno));
	r = rs_data(a, name, fd, false, 0, hex, NULL, &len, error_r);
	if (r == 0 && (len != m->size || strcmp(hex, m->hash) != 0))
		r = rs_fail(error_r, "%s: changed since it was checked: the "
			    "archive is damaged", name);
	if (r == 0 && (fchown(fd, uid, gid) < 0 || fchmod(fd, m->mode) < 0 ||
		       fsync(fd) < 0))
		r = rs_fail(error_r, "%s: %s", target, strerror(errno));
	if (close(fd) < 0 && r == 0)
		r = rs_fail(error_r, "%s: %s", target, strerror(errno));
	c->res->files++;
	c->res->bytes += len;
	return r;
}

static int
rs_entry(struct rs_ctx *c, struct archive *a, struct archive_entry *e,
	 char **error_r)
{
	char *name = rs_name(e), *target = NULL;
	const char *rel;
	struct rs_rec *m;
	uid_t uid = geteuid();
	gid_t gid = getegid();
	int r = 0;

	if (name == NULL || strcmp(name, "MANIFEST") == 0)
		goto out;
	if ((m = rs_find(&c->info.files, name)) == NULL) {
		r = rs_fail(error_r, "%s: %s: not in the MANIFEST",
			    c->o->archive, name);
		goto out;
	}
	if ((target = rs_target(c, name, &rel)) == NULL)
		goto out;
	if (rel != NULL)
		datadir_owner(&c->dcfg, &c->ids, rel, &uid, &gid);
	if (m->type == 'D') {
		if (mkdir(target, 0700) < 0 && errno != EEXIST)
			r = rs_fail(error_r, "%s: %s", target, strerror(errno));
		else {
			rs_dir_add(c, target, m->mode, uid, gid);
			c->res->dirs++;
		}
	} else
		r = rs_file(c, a, name, target, m, uid, gid, error_r);
out:
	free(target);
	free(name);
	return r;
}

int
rs_extract(struct rs_ctx *c, char **error_r)
{
	struct archive *a = rs_open(c->o->archive, error_r);
	struct archive_entry *e;
	int rc, r = 0;

	if (a == NULL)
		return -1;
	while (r == 0 && (rc = archive_read_next_header(a, &e)) == ARCHIVE_OK)
		r = rs_entry(c, a, e, error_r);
	if (r == 0 && rc != ARCHIVE_EOF)
		r = rs_fail(error_r, "%s: %s", c->o->archive,
			    archive_error_string(a));
	archive_read_free(a);
	return r;
}

/* Directories' owners and modes last (deepest first), each fsynced. */
int
rs_finish(struct rs_ctx *c, char **error_r)
{
	char *err = NULL;
	int r = 0;

	for (size_t i = c->ndirs; i-- > 0 && r == 0;) {
		struct rs_dir *d = &c->dirs[i];
		int fd = open(d->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					       O_CLOEXEC);
		if (fd < 0 || fchown(fd, d->uid, d->gid) < 0 ||
		    fchmod(fd, d->mode) < 0 || fsync(fd) < 0)
			r = rs_fail(error_r, "%s: %s", d->path, strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	if (r == 0 && datadir_prepare(&c->dcfg, &c->ids, &err) < 0) {
		r = rs_fail(error_r, "%s", err);
		free(err);
	}
	if (r == 0) {
		char *copy = xstrdup(c->o->config_out);
		if (fsync_dir(dirname(copy)) < 0)
			r = rs_fail(error_r, "%s: fsync of its directory: %s",
				    c->o->config_out, strerror(errno));
		free(copy);
	}
	if (r == 0 && c->userdb_path != NULL)
		c->res->userdb_path = xstrdup(c->userdb_path);
	return r;
}

void
rs_ctx_clear(struct rs_ctx *c)
{
	rs_mem_clear(&c->conf);
	free(c->info.data_dir);
	free(c->info.config);
	rs_set_clear(&c->info.files);
	free(c->user);
	free(c->userdb_rel);
	free(c->userdb_path);
	free(c->userdb_driver);
	for (size_t i = 0; i < c->ndirs; i++)
		free(c->dirs[i].path);
	free(c->dirs);
}
