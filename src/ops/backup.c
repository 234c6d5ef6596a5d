/*
 * `godwit backup FILE`: see backup.h for the archive and the guarantee.
 *
 * The MANIFEST's lines after the first ("godwit-backup 1"):
 *	created <unix time>
 *	data_dir <path>                 as configured when it was made
 *	config <archive path>           "config/<name>"
 *	userdb <archive path>           where the user database is, if any
 *	D <mode> <path>                 a directory (octal mode)
 *	F <sha256> <size> <mode> <path> a file
 * Paths are the archive's; no entry has a control character, a "." or
 * ".." component or a leading '/' (such names are left out).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include "daemon/config.h"
#include "lib/hashchain.h"
#include "lib/log.h"
#include "lib/strset.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "ops/backup.h"
#include "ops/backup_private.h"

struct bk {
	struct archive *a;
	const char *data_dir;
	char *userdb_rel;	/* below data_dir, or NULL */
	FILE *manifest;		/* open_memstream */
	char *mbuf;
	size_t mlen;
	struct strset seen;	/* archive paths written (owned in names) */
	char **names;
	size_t nnames;
	struct backup_stats *st;
	char *error;
};

int
bk_fail(struct bk *b, const char *fmt, ...)
{
	va_list ap;

	if (b->error == NULL) {
		va_start(ap, fmt);
		if (vasprintf(&b->error, fmt, ap) < 0)
			b->error = NULL;
		va_end(ap);
	}
	return -1;
}

static bool
bk_seen(struct bk *b, const char *apath)
{
	char *copy;

	if (strset_contains(&b->seen, apath))
		return true;
	copy = xstrdup(apath);
	b->names = xreallocarray(b->names, b->nnames + 1, sizeof(*b->names));
	b->names[b->nnames++] = copy;
	strset_add(&b->seen, copy);
	return false;
}

static int
bk_header(struct bk *b, const char *apath, mode_t type, mode_t mode,
	  uint64_t size, time_t mtime)
{
	struct archive_entry *e = archive_entry_new();
	int r;

	archive_entry_set_pathname(e, apath);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, mode & 07777);
	archive_entry_set_size(e, type == AE_IFREG ? (la_int64_t)size : 0);
	archive_entry_set_mtime(e, mtime, 0);
	r = archive_write_header(b->a, e);
	archive_entry_free(e);
	if (r != ARCHIVE_OK)
		return bk_fail(b, "%s: %s", apath, archive_error_string(b->a));
	return 0;
}

int
bk_add_dir(struct bk *b, const char *apath, mode_t mode, time_t mtime)
{
	if (bk_seen(b, apath))
		return 0;
	if (bk_header(b, apath, AE_IFDIR, mode, 0, mtime) < 0)
		return -1;
	fprintf(b->manifest, "D %04o %s\n", (unsigned)(mode & 07777), apath);
	b->st->dirs++;
	return 0;
}

static void
bk_manifest_file(struct bk *b, const char *apath, EVP_MD_CTX *md,
		 uint64_t size, mode_t mode)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	char h[2 * EVP_MAX_MD_SIZE + 1];

	EVP_DigestFinal_ex(md, d, &dlen);
	hashchain_hex(d, dlen, h);
	fprintf(b->manifest, "F %s %llu %04o %s\n", h, (unsigned long long)size,
		(unsigned)(mode & 07777), apath);
	b->st->files++;
	b->st->bytes += size;
}

/* A file from memory (a database copy, the configuration). */
int
bk_add_mem(struct bk *b, const char *apath, const void *data, size_t len,
	   mode_t mode, time_t mtime)
{
	EVP_MD_CTX *md;

	if (bk_seen(b, apath))
		return 0;
	if (bk_header(b, apath, AE_IFREG, mode, len, mtime) < 0)
		return -1;
	if (len > 0 && archive_write_data(b->a, data, len) != (la_ssize_t)len)
		return bk_fail(b, "%s: %s", apath, archive_error_string(b->a));
	md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	EVP_DigestUpdate(md, data, len);
	bk_manifest_file(b, apath, md, len, mode);
	EVP_MD_CTX_free(md);
	return 0;
}

/*
 * The open file fd (size bytes, as fstat said when it was opened) into
 * the archive. Files godwit keeps are written once, or only appended to
 * (logs): the first size octets are stable.
 */
int
bk_add_fd(struct bk *b, const char *apath, int fd, const struct stat *sb)
{
	char buf[65536];
	uint64_t left = (uint64_t)sb->st_size;
	EVP_MD_CTX *md;
	int r = 0;

	if (bk_seen(b, apath))
		return 0;
	if (bk_header(b, apath, AE_IFREG, sb->st_mode, left, sb->st_mtime) < 0)
		return -1;
	md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	while (left > 0 && r == 0) {
		size_t want = left < sizeof(buf) ? (size_t)left : sizeof(buf);
		ssize_t n = read(fd, buf, want);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = bk_fail(b, "%s: %s", apath,
				    n < 0 ? strerror(errno)
					  : "file shrank while being read");
			break;
		}
		EVP_DigestUpdate(md, buf, (size_t)n);
		if (archive_write_data(b->a, buf, (size_t)n) != n)
			r = bk_fail(b, "%s: %s", apath,
				    archive_error_string(b->a));
		left -= (uint64_t)n;
	}
	if (r == 0)
		bk_manifest_file(b, apath, md, (uint64_t)sb->st_size,
				 sb->st_mode);
	EVP_MD_CTX_free(md);
	return r;
}

/* A SQLite database, copied with the online backup API into memory. */
int
bk_add_sqlite(struct bk *b, const char *apath, const char *path,
	      const struct stat *sb)
{
	sqlite3 *src = NULL, *dst = NULL;
	sqlite3_backup *bu;
	unsigned char *data = NULL;
	sqlite3_int64 len = 0;
	int rc, r = -1;

	rc = sqlite3_open_v2(path, &src, SQLITE_OPEN_READONLY, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_open(":memory:", &dst);
	if (rc == SQLITE_OK) {
		sqlite3_busy_timeout(src, 10000);
		bu = sqlite3_backup_init(dst, "main", src, "main");
		if (bu == NULL)
			rc = sqlite3_errcode(dst);
		else {
			/* one step: the source is read in one transaction */
			rc = sqlite3_backup_step(bu, -1);
			if (rc == SQLITE_DONE)
				rc = SQLITE_OK;
			if (sqlite3_backup_finish(bu) != SQLITE_OK &&
			    rc == SQLITE_OK)
				rc = sqlite3_errcode(dst);
		}
	}
	if (rc == SQLITE_OK) {
		data = sqlite3_serialize(dst, "main", &len, 0);
		if (data == NULL)
			rc = SQLITE_NOMEM;
	}
	if (rc != SQLITE_OK)
		bk_fail(b, "%s: SQLite backup: %s", path, sqlite3_errstr(rc));
	else if (bk_add_mem(b, apath, data, (size_t)len, sb->st_mode,
			    sb->st_mtime) == 0) {
		b->st->databases++;
		r = 0;
	}
	sqlite3_free(data);
	sqlite3_close(dst);
	sqlite3_close(src);
	return r;
}

/* A name fit for the archive and the manifest (one line, no escape). */
bool
bk_name_ok(const char *name)
{
	if (name[0] == '\0' || strcmp(name, ".") == 0 ||
	    strcmp(name, "..") == 0)
		return false;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p < 0x20 || *p == 0x7f || *p == '/' || *p == '\\')
			return false;
	return true;
}

static bool
ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Opens rel below data_dir following no link: fd or -1 with errno. */
int
bk_open_rel(struct bk *b, const char *rel, int flags)
{
	char *path = xasprintf("%s/%s", b->data_dir, rel);
	int fd = open(path, flags | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);

	free(path);
	return fd;
}

/*
 * Adds the regular file rel (below data_dir). 1 added, 0 gone (ENOENT:
 * errno kept), -1 error. SQLite files go through the backup API.
 */
int
bk_add_rel(struct bk *b, const char *rel)
{
	char *apath = xasprintf("data/%s", rel);
	struct stat sb;
	int fd, r;

	if ((fd = bk_open_rel(b, rel, O_RDONLY)) < 0) {
		int saved = errno;
		free(apath);
		errno = saved;
		if (errno == ENOENT)
			return 0;
		if (errno == ELOOP) {
			b->st->skipped++;
			return 1;
		}
		return bk_fail(b, "%s/%s: %s", b->data_dir, rel,
			       strerror(errno));
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		b->st->skipped++;
		r = 1;
	} else if (ends_with(rel, ".sqlite")) {
		char *path = xasprintf("%s/%s", b->data_dir, rel);
		r = bk_add_sqlite(b, apath, path, &sb) < 0 ? -1 : 1;
		free(path);
	} else
		r = bk_add_fd(b, apath, fd, &sb) < 0 ? -1 : 1;
	close(fd);
	free(apath);
	return r;
}

const char *
bk_data_dir(const struct bk *b)
{
	return b->data_dir;
}

struct backup_stats *
bk_stats(struct bk *b)
{
	return b->st;
}

const char *
bk_userdb_rel(const struct bk *b)
{
	return b->userdb_rel;
}

void
backup_stats_clear(struct backup_stats *st)
{
	for (size_t i = 0; i < st->noutside; i++)
		free(st->outside[i]);
	free(st->outside);
	memset(st, 0, sizeof(*st));
}

/* config/<name> and what it names below its directory. */
static int
bk_config(struct bk *b, const struct config *config, char **config_apath_r)
{
	char *real = realpath(config->path, NULL), *dir, *copy;
	int r;

	if (real == NULL)
		return bk_fail(b, "%s: %s", config->path, strerror(errno));
	copy = xstrdup(real);
	dir = xstrdup(dirname(copy));
	free(copy);
	copy = xstrdup(real);
	*config_apath_r = xasprintf("config/%s", basename(copy));
	free(copy);
	r = bk_add_outside_file(b, real, *config_apath_r);
	if (r == 0)
		r = bk_config_refs(b, config, dir);
	free(dir);
	free(real);
	return r;
}

/* A file outside data_dir (the configuration's) into apath. */
int
bk_add_outside_file(struct bk *b, const char *path, const char *apath)
{
	struct stat sb;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK), r;

	if (fd < 0)
		return bk_fail(b, "%s: %s", path, strerror(errno));
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode))
		r = bk_fail(b, "%s: not a regular file", path);
	else
		r = bk_add_fd(b, apath, fd, &sb);
	close(fd);
	return r;
}

void
bk_note_outside(struct bk *b, const char *path)
{
	struct backup_stats *st = b->st;

	for (size_t i = 0; i < st->noutside; i++)
		if (strcmp(st->outside[i], path) == 0)
			return;
	st->outside = xreallocarray(st->outside, st->noutside + 1,
				    sizeof(*st->outside));
	st->outside[st->noutside++] = xstrdup(path);
}

static int
bk_open(struct bk *b, const char *tmp, int *fd_r)
{
	unlink(tmp);
	*fd_r = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		     0600);
	if (*fd_r < 0)
		return bk_fail(b, "%s: %s", tmp, strerror(errno));
	b->a = archive_write_new();
	if (archive_write_set_format_pax_restricted(b->a) != ARCHIVE_OK ||
	    archive_write_add_filter_gzip(b->a) != ARCHIVE_OK ||
	    archive_write_open_fd(b->a, *fd_r) != ARCHIVE_OK)
		return bk_fail(b, "%s: %s", tmp, archive_error_string(b->a));
	b->manifest = open_memstream(&b->mbuf, &b->mlen);
	return 0;
}

/* The manifest last, the archive closed, the file made durable. */
static int
bk_finish(struct bk *b, int fd, const char *tmp, const char *path)
{
	char *copy, *dir;
	int r;

	fflush(b->manifest);
	if (bk_add_mem(b, "MANIFEST", b->mbuf, b->mlen, 0600, time(NULL)) < 0)
		return -1;
	b->st->files--;		/* the manifest is not a file of the server */
	b->st->bytes -= b->mlen;
	if (archive_write_close(b->a) != ARCHIVE_OK)
		return bk_fail(b, "%s: %s", tmp, archive_error_string(b->a));
	if (fsync(fd) < 0)
		return bk_fail(b, "%s: fsync: %s", tmp, strerror(errno));
	if (rename(tmp, path) < 0)
		return bk_fail(b, "%s: %s", path, strerror(errno));
	copy = xstrdup(path);
	dir = dirname(copy);
	r = fsync_dir(dir);
	free(copy);
	if (r < 0)
		return bk_fail(b, "%s: fsync of its directory: %s", path,
			       strerror(errno));
	return 0;
}

static void
bk_userdb(struct bk *b, const struct config *config)
{
	size_t dlen = strlen(b->data_dir);
	const char *p = config->userdb.path;

	if (p != NULL && strncmp(p, b->data_dir, dlen) == 0 && p[dlen] == '/')
		b->userdb_rel = xstrdup(p + dlen + 1);
}

static int
bk_run(struct bk *b, const struct config *config)
{
	char *config_apath = NULL;
	int r;

	r = bk_config(b, config, &config_apath);
	if (r == 0) {
		fprintf(b->manifest, "created %lld\ndata_dir %s\nconfig %s\n",
			(long long)time(NULL), b->data_dir, config_apath);
		r = bk_data(b, config);
	}
	free(config_apath);
	return r;
}

/* The archive must not be written below data_dir: the walk would take
 * its own half-written file along. */
static bool
below_data_dir(const char *data_dir, const char *path)
{
	char *copy = xstrdup(path), *dir = realpath(dirname(copy), NULL);
	char *dd = realpath(data_dir, NULL);
	size_t n = dd != NULL ? strlen(dd) : 0;
	bool below = dir != NULL && dd != NULL && strncmp(dir, dd, n) == 0 &&
		     (dir[n] == '\0' || dir[n] == '/');

	free(copy);
	free(dir);
	free(dd);
	return below;
}

int
backup_create(const struct config *config, const char *path,
	      struct backup_stats *st, char **error_r)
{
	struct bk b = {.data_dir = config->data_dir, .st = st};
	char *tmp;
	int fd = -1, r = -1;

	memset(st, 0, sizeof(*st));
	if (below_data_dir(config->data_dir, path)) {
		*error_r = xasprintf("%s: inside data_dir %s: write the backup "
				     "elsewhere", path, config->data_dir);
		return -1;
	}
	tmp = xasprintf("%s.tmp", path);
	bk_userdb(&b, config);
	if (bk_open(&b, tmp, &fd) == 0) {
		fprintf(b.manifest, "%s\n", BACKUP_MAGIC);
		if (bk_run(&b, config) == 0 && bk_finish(&b, fd, tmp, path) == 0)
			r = 0;
	}
	if (b.a != NULL) {
		if (r < 0)
			archive_write_fail(b.a);
		archive_write_free(b.a);
	}
	if (fd >= 0)
		close(fd);
	if (r < 0) {
		unlink(tmp);
		*error_r = b.error != NULL ? b.error : xstrdup("backup failed");
	} else
		free(b.error);
	if (b.manifest != NULL)
		fclose(b.manifest);
	free(b.mbuf);
	for (size_t i = 0; i < b.nnames; i++)
		free(b.names[i]);
	free(b.names);
	strset_clear(&b.seen);
	free(b.userdb_rel);
	free(tmp);
	return r;
}
