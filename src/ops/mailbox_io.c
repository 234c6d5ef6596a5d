/*
 * `godwit mailbox import|export`: see mailbox_io.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/config.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "mail/mbox.h"
#include "ops/mailbox_io.h"
#include "store/datadir.h"
#include "store/deliver.h"

struct imp {
	const struct config *config;
	struct datadir_ids ids;
	char *maildir;
	FILE *f;		/* the message being read */
	char *buf;
	size_t len;
	int64_t t;
	struct mailbox_io_stats *st;
	char *error;
};

static int imp_fail(struct imp *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
imp_fail(struct imp *m, const char *fmt, ...)
{
	va_list ap;

	if (m->error == NULL) {
		va_start(ap, fmt);
		if (vasprintf(&m->error, fmt, ap) < 0)
			m->error = NULL;
		va_end(ap);
	}
	return -1;
}

/* Root writes as the daemon user (effective ids only), and back. */
static int
as_daemon(const struct datadir_ids *ids, bool on)
{
	if (!ids->drop)
		return 0;
	if (on)
		return setegid(ids->gid) < 0 || seteuid(ids->uid) < 0 ? -1 : 0;
	return seteuid(0) < 0 || setegid(0) < 0 ? -1 : 0;
}

static int
imp_store(struct imp *m, const void *data, size_t len, const char *info,
	  int64_t mtime)
{
	int r;

	if (as_daemon(&m->ids, true) < 0)
		return imp_fail(m, "cannot become the daemon user: %s",
				strerror(errno));
	r = maildir_store(m->maildir, m->config->hostname, data, len, info,
			  mtime);
	if (r < 0)
		imp_fail(m, "%s: %s", m->maildir, strerror(errno));
	if (as_daemon(&m->ids, false) < 0)
		abort();	/* root cannot become root again: stop */
	if (r == 0) {
		m->st->messages++;
		m->st->bytes += len;
	}
	return r;
}

/* new/ and cur/ made durable once, after the batch. */
static int
imp_sync(struct imp *m)
{
	static const char *const subs[] = {"new", "cur"};
	int r = 0;

	for (size_t i = 0; i < 2 && r == 0; i++) {
		char *d = xasprintf("%s/%s", m->maildir, subs[i]);
		if (access(d, F_OK) == 0 && fsync_dir(d) < 0)
			r = imp_fail(m, "%s: fsync: %s", d, strerror(errno));
		free(d);
	}
	return r;
}

static int
imp_begin(struct imp *m, const struct config *config, const char *address,
	  struct mailbox_io_stats *st)
{
	char *err = NULL;

	memset(st, 0, sizeof(*st));
	m->config = config;
	m->st = st;
	if (datadir_ids(config->user, &m->ids, &err) < 0) {
		m->error = err;
		return -1;
	}
	if ((m->maildir = maildir_path(config->mail_dir, address)) == NULL)
		return imp_fail(m, "%s: not an address", address);
	st->maildir = xstrdup(m->maildir);
	return 0;
}

static int
imp_end(struct imp *m, int r, char **error_r)
{
	if (r == 0)
		r = imp_sync(m);
	if (m->f != NULL)
		fclose(m->f);
	free(m->buf);
	free(m->maildir);
	if (r < 0)
		*error_r = m->error != NULL ? m->error : xstrdup("import failed");
	else
		free(m->error);
	return r;
}

/* ---- from an mbox --------------------------------------------------- */

static int
mb_begin(void *arg, const char *sender, int64_t t)
{
	struct imp *m = arg;

	(void)sender;
	m->t = t;
	m->len = 0;
	m->f = open_memstream(&m->buf, &m->len);
	return m->f != NULL ? 0 : imp_fail(m, "out of memory");
}

static int
mb_data(void *arg, const void *p, size_t n)
{
	struct imp *m = arg;

	if (m->len + n > MAILBOX_IO_MSG_MAX)
		return imp_fail(m, "message %zu: larger than %zu octets",
				m->st->messages + 1, MAILBOX_IO_MSG_MAX);
	if (fwrite(p, 1, n, m->f) != n || fflush(m->f) != 0)
		return imp_fail(m, "out of memory");
	return 0;
}

static int
mb_end(void *arg)
{
	struct imp *m = arg;
	int r;

	fclose(m->f);
	m->f = NULL;
	r = imp_store(m, m->buf, m->len, NULL, m->t);
	xfree(&m->buf);
	m->len = 0;
	return r;
}

static const struct mbox_sink mb_sink = {mb_begin, mb_data, mb_end};

int
mailbox_import_mbox(const struct config *config, const char *address,
		    const char *file, struct mailbox_io_stats *st,
		    char **error_r)
{
	struct imp m = {0};
	struct mbox_reader rd;
	char buf[65536];
	ssize_t n;
	int fd = -1, r;

	r = imp_begin(&m, config, address, st);
	if (r == 0 && (fd = open(file, O_RDONLY | O_CLOEXEC)) < 0)
		r = imp_fail(&m, "%s: %s", file, strerror(errno));
	mbox_reader_init(&rd, &mb_sink, &m);
	while (r == 0 && (n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			r = imp_fail(&m, "%s: %s", file, strerror(errno));
		else if (mbox_read(&rd, buf, (size_t)n) < 0)
			r = -1;
	}
	if (r == 0 && mbox_finish(&rd) < 0)
		r = -1;
	if (r < 0 && rd.error != NULL)
		imp_fail(&m, "%s: not an mbox: %s", file, rd.error);
	if (fd >= 0)
		close(fd);
	return imp_end(&m, r, error_r);
}

/* ---- from a Maildir ------------------------------------------------- */

/* by the name after "new/" or "cur/" */
static int
cmp_tail(const void *a, const void *b)
{
	return strcmp(*(char *const *)a + 4, *(char *const *)b + 4);
}

/* "new/<name>" and "cur/<name>" of dir, sorted by name (arrival order
 * for the usual "<time>.<unique>.<host>" names). */
static char **
maildir_list(const char *dir, size_t *n_r)
{
	static const char *const subs[] = {"new", "cur"};
	char **v = NULL;
	size_t n = 0;

	for (size_t s = 0; s < 2; s++) {
		char *d = xasprintf("%s/%s", dir, subs[s]);
		DIR *dp = opendir(d);
		struct dirent *de;

		while (dp != NULL && (de = readdir(dp)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			v = xreallocarray(v, n + 1, sizeof(*v));
			v[n++] = xasprintf("%s/%s", subs[s], de->d_name);
		}
		if (dp != NULL)
			closedir(dp);
		free(d);
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_tail);
	*n_r = n;
	return v;
}

/* The info a message keeps: "2,<flags>" (letters only), for cur/. */
static char *
maildir_info(const char *rel)
{
	const char *colon = strstr(rel, ":2,");
	char flags[64];
	size_t k = 0;

	if (colon == NULL)
		return strncmp(rel, "cur/", 4) == 0 ? xstrdup("2,") : NULL;
	for (const char *p = colon + 3; *p != '\0' && k < sizeof(flags) - 1; p++)
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
			flags[k++] = *p;
	flags[k] = '\0';
	return xasprintf("2,%s", flags);
}

/* The whole of a regular file: malloc'd, or NULL with errno. */
static char *
read_whole(int fd, const struct stat *sb, size_t *len_r)
{
	size_t size = (size_t)sb->st_size, off = 0;
	char *buf;
	ssize_t n;

	if ((uint64_t)sb->st_size > MAILBOX_IO_MSG_MAX) {
		errno = EFBIG;
		return NULL;
	}
	buf = xmalloc(size + 1);
	while (off < size) {
		n = read(fd, buf + off, size - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(buf);
			if (n == 0)
				errno = EIO;
			return NULL;
		}
		off += (size_t)n;
	}
	*len_r = size;
	return buf;
}

static int
import_one(struct imp *m, const char *dir, const char *rel)
{
	char *path = xasprintf("%s/%s", dir, rel), *data = NULL, *info;
	struct stat sb;
	size_t len = 0;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) < 0)
		r = imp_fail(m, "%s: %s", path, strerror(errno));
	else if (S_ISREG(sb.st_mode) &&
		 (data = read_whole(fd, &sb, &len)) == NULL)
		r = imp_fail(m, "%s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	if (r == 0 && data != NULL) {
		info = maildir_info(rel);
		r = imp_store(m, data, len, info, (int64_t)sb.st_mtime);
		free(info);
	}
	free(data);
	free(path);
	return r;
}

int
mailbox_import_maildir(const struct config *config, const char *address,
		       const char *dir, struct mailbox_io_stats *st,
		       char **error_r)
{
	struct imp m = {0};
	char **names = NULL, *sub = xasprintf("%s/cur", dir);
	size_t n = 0;
	int r;

	r = imp_begin(&m, config, address, st);
	if (r == 0 && access(sub, F_OK) != 0) {
		free(sub);
		sub = xasprintf("%s/new", dir);
		if (access(sub, F_OK) != 0)
			r = imp_fail(&m, "%s: not a Maildir (no cur/ or new/)",
				     dir);
	}
	free(sub);
	if (r == 0)
		names = maildir_list(dir, &n);
	for (size_t i = 0; i < n && r == 0; i++)
		r = import_one(&m, dir, names[i]);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return imp_end(&m, r, error_r);
}

/* ---- to an mbox ----------------------------------------------------- */

static int
out_file(void *arg, const void *p, size_t n)
{
	return fwrite(p, 1, n, arg) == n ? 0 : -1;
}

/* The address of the first Return-Path field in the header, or "". */
static void
return_path(const char *buf, size_t len, char *out, size_t size)
{
	const char *p = buf, *end = buf + len;

	out[0] = '\0';
	while (p < end && *p != '\n' && !(*p == '\r' && p + 1 < end &&
					   p[1] == '\n')) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t k = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		if (k > 12 && strncasecmp(p, "Return-Path:", 12) == 0) {
			const char *lt = memchr(p, '<', k), *gt;
			gt = lt != NULL ? memchr(lt, '>', k - (size_t)(lt - p))
					: NULL;
			if (gt != NULL && (size_t)(gt - lt - 1) < size) {
				memcpy(out, lt + 1, (size_t)(gt - lt - 1));
				out[gt - lt - 1] = '\0';
			}
			return;
		}
		if (nl == NULL)
			return;
		p = nl + 1;
	}
}

static int
export_one(FILE *f, const char *path, char **error_r)
{
	char buf[65536], sender[MBOX_SENDER_MAX + 1], line[MBOX_SENDER_MAX + 64];
	struct mbox_writer w;
	struct stat sb;
	ssize_t n;
	bool first = true;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return 0;	/* taken by POP3 meanwhile */
	if (fd < 0 || fstat(fd, &sb) < 0) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	mbox_writer_init(&w, out_file, f);
	while (r == 0 && (n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = xasprintf("%s: %s", path, strerror(errno));
			r = -1;
			break;
		}
		if (first) {
			return_path(buf, (size_t)n, sender, sizeof(sender));
			fwrite(line, 1, mbox_from_format(line, sizeof(line), sender,
						  (int64_t)sb.st_mtime), f);
			first = false;
		}
		r = mbox_write(&w, buf, (size_t)n);
	}
	if (r == 0 && first)	/* an empty file */
		fwrite(line, 1, mbox_from_format(line, sizeof(line), "",
					  (int64_t)sb.st_mtime), f);
	if (r == 0)
		r = mbox_write_end(&w);
	if (r < 0 && *error_r == NULL)
		*error_r = xasprintf("%s: cannot write the mbox", path);
	close(fd);
	return r;
}

static int
export_finish(FILE *f, const char *tmp, const char *file, char **error_r)
{
	char *dir = xstrdup(file), *slash = strrchr(dir, '/');
	int r = 0;

	if (slash == NULL)
		strcpy(dir, ".");
	else
		slash[slash == dir] = '\0';
	if (fflush(f) != 0 || fsync(fileno(f)) < 0 || rename(tmp, file) < 0 ||
	    fsync_dir(dir) < 0) {
		*error_r = xasprintf("%s: %s", file, strerror(errno));
		r = -1;
	}
	free(dir);
	return r;
}

int
mailbox_export_mbox(const struct config *config, const char *address,
		    const char *file, struct mailbox_io_stats *st,
		    char **error_r)
{
	char *maildir = maildir_path(config->mail_dir, address), **names;
	char *tmp = xasprintf("%s.tmp", file);
	size_t n = 0;
	FILE *f = NULL;
	int fd, r = 0;

	memset(st, 0, sizeof(*st));
	*error_r = NULL;
	if (maildir == NULL) {
		*error_r = xasprintf("%s: not an address", address);
		free(tmp);
		return -1;
	}
	st->maildir = xstrdup(maildir);
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
		*error_r = xasprintf("%s: %s", tmp, strerror(errno));
		r = -1;
	}
	names = r == 0 ? maildir_list(maildir, &n) : NULL;
	for (size_t i = 0; i < n && r == 0; i++) {
		char *path = xasprintf("%s/%s", maildir, names[i]);
		r = export_one(f, path, error_r);
		st->messages += r == 0;
		free(path);
	}
	if (r == 0 && (r = export_finish(f, tmp, file, error_r)) == 0 && f)
		st->bytes = (uint64_t)ftello(f);
	if (f != NULL)
		fclose(f);
	else if (fd >= 0)
		close(fd);
	if (r < 0)
		unlink(tmp);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(maildir);
	free(tmp);
	return r;
}
