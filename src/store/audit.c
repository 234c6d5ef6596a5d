/*
 * The audit log: records, the locked append, the head, rotation and the
 * list of files. See audit.h; the chain's rules are lib/hashchain.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "store/audit.h"
#include "lib/log.h"
#include "lib/logfmt.h"
#include "lib/util.h"
#include "lib/xalloc.h"

/* ---- records -------------------------------------------------------- */

/* Room for one encoded field: the key, the quotes, a value cut at
 * LOGFMT_VALUE_MAX with its "...". */
#define FIELD_MAX (LOGFMT_VALUE_MAX + 96)
/* What a record may take of a line: the prefix, the hash and the brace
 * and a last field or two are left over. */
#define REC_MAX (AUDIT_LINE_MAX - 2 * FIELD_MAX)

/* One field through the encoder: ,"key":value */
static void
rec_field(struct audit_rec *r, const struct log_field *f)
{
	char buf[FIELD_MAX];
	struct logfmt_out o = {buf, 0, sizeof(buf), false};
	const struct log_field fs[] = {*f, {.key = NULL}};

	buf[0] = '\0';
	logfmt_fields(&o, LOGFMT_JSON, fs);
	strbuf_add(&r->b, buf, o.len);
}

void
audit_rec_begin(struct audit_rec *r, const char *type)
{
	char ts[UTC_TIMESTAMP_SIZE];

	memset(r, 0, sizeof(*r));
	utc_timestamp_ms(ts, sizeof(ts));
	audit_rec_str(r, "time", ts);
	audit_rec_str(r, "type", type);
}

void
audit_rec_str(struct audit_rec *r, const char *key, const char *val)
{
	const struct log_field f = {
	    .key = key, .type = LOG_FIELD_STR, .v.s = val};

	rec_field(r, &f);
}

void
audit_rec_uint(struct audit_rec *r, const char *key, uint64_t val)
{
	const struct log_field f = {
	    .key = key, .type = LOG_FIELD_UINT, .v.u = val};

	rec_field(r, &f);
}

void
audit_rec_bool(struct audit_rec *r, const char *key, bool val)
{
	char buf[FIELD_MAX];
	struct logfmt_out o = {buf, 0, sizeof(buf), false};
	const struct log_field f[] = {
	    {.key = key, .type = LOG_FIELD_UINT, .v.u = 0}, {.key = NULL}};

	/* the encoder has no booleans: the key through it, the literal
	 * after */
	buf[0] = '\0';
	logfmt_fields(&o, LOGFMT_JSON, f);
	if (o.len > 0)
		o.len--;	/* the 0 */
	strbuf_add(&r->b, buf, o.len);
	strbuf_add(&r->b, val ? "true" : "false", val ? 4 : 5);
}

void
audit_rec_strv(struct audit_rec *r, const char *key, char *const *v, size_t n)
{
	char buf[FIELD_MAX];
	size_t i;

	audit_rec_uint(r, key, 0);
	r->b.len--;		/* the 0 becomes the array */
	strbuf_addc(&r->b, '[');
	for (i = 0; i < n; i++) {
		struct logfmt_out o = {buf, 0, sizeof(buf), false};
		const struct log_field f = {
		    .key = "v", .type = LOG_FIELD_STR, .v.s = v[i]};

		logfmt_value(&o, LOGFMT_JSON, &f);
		if (r->b.len + o.len + 2 > REC_MAX) {
			r->cut = true;
			break;
		}
		if (i > 0)
			strbuf_addc(&r->b, ',');
		strbuf_add(&r->b, buf, o.len);
	}
	strbuf_addc(&r->b, ']');
}

char *
audit_rec_end(struct audit_rec *r)
{
	char *s;

	if (r->cut)
		audit_rec_bool(r, "cut", true);
	s = strbuf_steal(&r->b);
	memset(r, 0, sizeof(*r));
	return s;
}

void
audit_rec_clear(struct audit_rec *r)
{
	strbuf_free(&r->b);
	memset(r, 0, sizeof(*r));
}

/* ---- the tail of the file ------------------------------------------ */

struct audit_log {
	char *dir;		/* <data_dir>/log */
	char *path;		/* .../audit.log */
	int fd;			/* -1 until opened; locked while appending */
	/* the head as we left it: valid while the file is that one, that
	 * long */
	dev_t dev;
	ino_t ino;
	off_t size;
	char head[HASHCHAIN_HEX_LEN + 1];
};

/* The offset just past the last '\n' before end (0 if none). -1 on
 * error. */
static off_t
line_start(int fd, off_t end)
{
	char buf[65536];
	off_t pos = end;

	while (pos > 0) {
		size_t want = pos < (off_t)sizeof(buf) ? (size_t)pos
						       : sizeof(buf);
		ssize_t n = pread(fd, buf, want, pos - (off_t)want);

		if (n < 0 && errno == EINTR)
			continue;
		if (n != (ssize_t)want)
			return -1;
		for (ssize_t i = n - 1; i >= 0; i--)
			if (buf[i] == '\n')
				return pos - (off_t)want + i + 1;
		pos -= (off_t)want;
	}
	return 0;
}

/* SHA-256 of the bytes [from, to) of fd, in hex. */
static int
hash_range(int fd, off_t from, off_t to, char hex_r[HASHCHAIN_HEX_LEN + 1])
{
	unsigned char buf[65536], md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int r = -1;

	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		goto out;
	while (from < to) {
		size_t want = to - from < (off_t)sizeof(buf) ? (size_t)(to - from)
							      : sizeof(buf);
		ssize_t n = pread(fd, buf, want, from);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || EVP_DigestUpdate(ctx, buf, (size_t)n) != 1)
			goto out;
		from += n;
	}
	if (EVP_DigestFinal_ex(ctx, md, &mdlen) == 1) {
		hashchain_hex(md, mdlen, hex_r);
		r = 0;
	}
out:
	EVP_MD_CTX_free(ctx);
	return r;
}

/*
 * The hash of the last complete line of fd (size octets) into head_r,
 * the genesis hash when there is none. *good_r: where the complete lines
 * end (less than size when the last line was torn by a crash).
 */
static int
tail_head(int fd, off_t size, char head_r[HASHCHAIN_HEX_LEN + 1],
	  off_t *good_r)
{
	off_t end, start;

	*good_r = size;
	if (size > 0 && (end = line_start(fd, size)) != size) {
		if (end < 0)
			return -1;
		*good_r = end;	/* a torn last line */
	}
	if (*good_r == 0) {
		memcpy(head_r, HASHCHAIN_GENESIS, HASHCHAIN_HEX_LEN + 1);
		return 0;
	}
	if ((start = line_start(fd, *good_r - 1)) < 0)
		return -1;
	return hash_range(fd, start, *good_r - 1, head_r);
}

/* ---- the locked append ---------------------------------------------- */

struct audit_log *
audit_log_new(const char *data_dir)
{
	struct audit_log *al = xcalloc(1, sizeof(*al));

	al->dir = xasprintf("%s/%s", data_dir, AUDIT_DIR);
	al->path = xasprintf("%s/%s", al->dir, AUDIT_FILE);
	al->fd = -1;
	return al;
}

void
audit_log_free(struct audit_log **alp)
{
	struct audit_log *al = *alp;

	if (al == NULL)
		return;
	if (al->fd >= 0)
		close(al->fd);
	free(al->dir);
	free(al->path);
	free(al);
	*alp = NULL;
}

static int
flock_wait(int fd, int op)
{
	while (flock(fd, op) < 0)
		if (errno != EINTR)
			return -1;
	return 0;
}

/*
 * Opens (if needed) and locks audit.log, making sure the file locked is
 * the one the name points to: a rotation may have replaced it while we
 * waited. *sb_r: the locked file.
 */
static int
lock_current(struct audit_log *al, int op, struct stat *sb_r, char **error_r)
{
	struct stat named;

	for (int tries = 0; tries < 16; tries++) {
		if (al->fd < 0)
			al->fd = open(al->path,
				      (op == LOCK_EX ? O_RDWR | O_APPEND | O_CREAT
						     : O_RDONLY) |
					  O_NOFOLLOW | O_CLOEXEC,
				      0640);
		if (al->fd < 0 || flock_wait(al->fd, op) < 0 ||
		    fstat(al->fd, sb_r) < 0)
			goto fail;
		if (stat(al->path, &named) == 0 && named.st_dev == sb_r->st_dev &&
		    named.st_ino == sb_r->st_ino)
			return 0;
		close(al->fd);	/* rotated meanwhile: the new one */
		al->fd = -1;
	}
	errno = EAGAIN;
fail:
	*error_r = xasprintf("%s: %s", al->path, strerror(errno));
	if (al->fd >= 0) {
		close(al->fd);
		al->fd = -1;
	}
	return -1;
}

static void
unlock(struct audit_log *al)
{
	flock(al->fd, LOCK_UN);
}

/* The head of the locked file: remembered, or read (a torn tail is cut
 * off first: a line that was never synced was never answered for). */
static int
locked_head(struct audit_log *al, const struct stat *sb, char **error_r)
{
	off_t good;

	if (sb->st_dev == al->dev && sb->st_ino == al->ino &&
	    sb->st_size == al->size && al->head[0] != '\0')
		return 0;
	if (tail_head(al->fd, sb->st_size, al->head, &good) < 0) {
		*error_r = xasprintf("%s: reading the last line: %s", al->path,
				     strerror(errno));
		return -1;
	}
	if (good != sb->st_size) {
		log_event(LOG_WARNING, "audit", "audit-torn-tail",
			  LF_STR("path", al->path),
			  LF_UINT("dropped", (uint64_t)(sb->st_size - good)));
		if (ftruncate(al->fd, good) < 0) {
			*error_r = xasprintf("%s: truncate: %s", al->path,
					     strerror(errno));
			return -1;
		}
	}
	al->dev = sb->st_dev;
	al->ino = sb->st_ino;
	al->size = good;
	return 0;
}

/* The lines of recs chained from head (updated to the last one). */
static char *
chain_lines(char *const *recs, size_t n, char head[HASHCHAIN_HEX_LEN + 1],
	    size_t *len_r)
{
	struct strbuf out = {0};

	for (size_t i = 0; i < n; i++) {
		size_t start = out.len;

		strbuf_add(&out, HASHCHAIN_PREFIX, HASHCHAIN_PREFIX_LEN);
		strbuf_add(&out, head, HASHCHAIN_HEX_LEN);
		strbuf_addc(&out, '"');
		strbuf_addstr(&out, recs[i]);
		strbuf_addc(&out, '}');
		hashchain_sha256_hex(out.s + start, out.len - start, head);
		strbuf_addc(&out, '\n');
	}
	*len_r = out.len;
	return out.s;
}

int
audit_log_append(struct audit_log *al, char *const *recs, size_t n,
		 unsigned flags, char head_r[HASHCHAIN_HEX_LEN + 1],
		 char **error_r)
{
	char head[HASHCHAIN_HEX_LEN + 1];
	struct stat sb;
	size_t len;
	char *text;
	int r = -1;

	if (n == 0)
		return 0;
	if (lock_current(al, LOCK_EX, &sb, error_r) < 0)
		return -1;
	if (locked_head(al, &sb, error_r) < 0)
		goto out;
	memcpy(head, al->head, sizeof(head));
	text = chain_lines(recs, n, head, &len);
	if (write_full(al->fd, text, len) < 0 ||
	    ((flags & AUDIT_NOSYNC) == 0 && fdatasync(al->fd) < 0)) {
		*error_r = xasprintf("%s: %s", al->path, strerror(errno));
		/* nothing of the batch stays: the next line must link to
		 * the last line that is there */
		if (ftruncate(al->fd, al->size) < 0)
			al->head[0] = '\0';
	} else {
		memcpy(al->head, head, sizeof(head));
		al->size += (off_t)len;
		if (head_r != NULL)
			memcpy(head_r, head, sizeof(head));
		r = 0;
	}
	free(text);
out:
	if (r < 0)
		al->head[0] = '\0';	/* read it again next time */
	unlock(al);
	return r;
}

int
audit_append_one(const char *data_dir, const char *rec, char **error_r)
{
	struct audit_log *al = audit_log_new(data_dir);
	char *const recs[] = {(char *)rec};
	int r;

	r = audit_log_append(al, recs, 1, 0, NULL, error_r);
	audit_log_free(&al);
	return r;
}

const char *
audit_actor(uid_t uid, char *buf, size_t size)
{
	struct passwd *pw = getpwuid(uid);

	if (pw != NULL && strlen(pw->pw_name) < size)
		snprintf(buf, size, "%s", pw->pw_name);
	else
		snprintf(buf, size, "%lu", (unsigned long)uid);
	return buf;
}

int
audit_admin_uid(const char *data_dir, uid_t uid, const char *action,
		const char *object, bool ok, char **error_r)
{
	char actor[64];

	return audit_admin(data_dir, audit_actor(uid, actor, sizeof(actor)),
			   (long)uid, action, object, ok ? "ok" : "failed",
			   error_r);
}

int
audit_admin(const char *data_dir, const char *actor, long uid,
	    const char *action, const char *object, const char *result,
	    char **error_r)
{
	struct audit_rec rec;
	char *text;
	int r;

	audit_rec_begin(&rec, "admin");
	audit_rec_str(&rec, "actor", actor);
	if (uid >= 0)
		audit_rec_uint(&rec, "uid", (uint64_t)uid);
	audit_rec_str(&rec, "action", action);
	audit_rec_str(&rec, "object", object);
	audit_rec_str(&rec, "result", result);
	text = audit_rec_end(&rec);
	r = audit_append_one(data_dir, text, error_r);
	free(text);
	return r;
}

int
audit_head(const char *data_dir, char head_r[HASHCHAIN_HEX_LEN + 1],
	   char **error_r)
{
	struct audit_log *al = audit_log_new(data_dir);
	struct stat sb;
	off_t good;
	int r = -1;

	if (access(al->path, F_OK) != 0 && errno == ENOENT) {
		memcpy(head_r, HASHCHAIN_GENESIS, HASHCHAIN_HEX_LEN + 1);
		r = 0;
	} else if (lock_current(al, LOCK_SH, &sb, error_r) == 0) {
		if (tail_head(al->fd, sb.st_size, head_r, &good) == 0)
			r = 0;
		else
			*error_r = xasprintf("%s: %s", al->path,
					     strerror(errno));
		unlock(al);
	}
	audit_log_free(&al);
	return r;
}

/* ---- rotation ------------------------------------------------------- */

/*
 * The current file's second name, audit.log.DATE[.N]: a hard link, so
 * that audit.log always exists (an appender never finds it missing).
 * A name that already links to this file is a rotation a crash cut
 * short: it is taken as it is.
 */
static char *
rotated_link(struct audit_log *al, const char *date, const struct stat *sb,
	     char **error_r)
{
	for (unsigned n = 0; n < 1000; n++) {
		char *name = n == 0 ? xasprintf("%s.%s", AUDIT_FILE, date)
				    : xasprintf("%s.%s.%u", AUDIT_FILE, date, n);
		char *path = xasprintf("%s/%s", al->dir, name);
		struct stat other;
		int r = link(al->path, path);

		if (r < 0 && errno == EEXIST && stat(path, &other) == 0 &&
		    other.st_dev == sb->st_dev && other.st_ino == sb->st_ino)
			r = 0;
		if (r == 0) {
			free(path);
			return name;
		}
		if (errno != EEXIST) {
			*error_r = xasprintf("%s: %s", path, strerror(errno));
			free(path);
			free(name);
			return NULL;
		}
		free(path);
		free(name);
	}
	*error_r = xasprintf("%s/%s.%s: every name is taken", al->dir,
			     AUDIT_FILE, date);
	return NULL;
}

/* The new audit.log, its first line linking to the old head, put in
 * place over the old name. */
static int
new_file(struct audit_log *al, const char *rotated, uid_t uid, gid_t gid,
	 char **error_r)
{
	char *tmp = xasprintf("%s.new", al->path), *rec, *text;
	char head[HASHCHAIN_HEX_LEN + 1];
	struct audit_rec r;
	size_t len;
	int fd, ok = -1;

	audit_rec_begin(&r, "rotate");
	audit_rec_str(&r, "previous", rotated);
	rec = audit_rec_end(&r);
	memcpy(head, al->head, sizeof(head));
	text = chain_lines(&rec, 1, head, &len);
	(void)unlink(tmp);	/* left by a crash; we hold the lock */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0640);
	if (fd >= 0 && (uid == (uid_t)-1 || fchown(fd, uid, gid) == 0) &&
	    write_full(fd, text, len) == 0 && fdatasync(fd) == 0 &&
	    rename(tmp, al->path) == 0)
		ok = 0;
	if (ok < 0) {
		*error_r = xasprintf("%s: %s", tmp, strerror(errno));
		(void)unlink(tmp);
	}
	if (fd >= 0)
		close(fd);
	free(tmp);
	free(rec);
	free(text);
	return ok;
}

int
audit_rotate(const char *data_dir, const char *date, uid_t uid, gid_t gid,
	     char **name_r, char **error_r)
{
	struct audit_log *al = audit_log_new(data_dir);
	struct stat sb;
	char *name = NULL;
	int r = -1;

	if (name_r != NULL)
		*name_r = NULL;
	if (lock_current(al, LOCK_EX, &sb, error_r) < 0)
		goto out;
	if (locked_head(al, &sb, error_r) < 0)
		goto unlock;
	if (al->size == 0) {
		r = 0;		/* nothing to rotate */
		goto unlock;
	}
	if ((name = rotated_link(al, date, &sb, error_r)) == NULL ||
	    new_file(al, name, uid, gid, error_r) < 0)
		goto unlock;
	if (fsync_dir(al->dir) < 0) {
		*error_r = xasprintf("%s: fsync: %s", al->dir, strerror(errno));
		goto unlock;
	}
	log_event(LOG_INFO, "audit", "audit-rotated", LF_STR("file", name),
		  LF_STR("head", al->head));
	r = 0;
unlock:
	unlock(al);
out:
	if (r == 0 && name_r != NULL)
		*name_r = name;
	else
		free(name);
	audit_log_free(&al);
	return r;
}

/* ---- the files of the chain ---------------------------------------- */

/* "YYYY-MM-DD" then nothing or ".N": 0 and *n_r, or -1. */
static int
rotated_suffix(const char *s, unsigned long *n_r)
{
	static const char pat[] = "dddd-dd-dd";
	char *end;

	for (size_t i = 0; i < sizeof(pat) - 1; i++)
		if (pat[i] == 'd' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != pat[i])
			return -1;
	*n_r = 0;
	if (s[10] == '\0')
		return 0;
	if (s[10] != '.' || !(s[11] >= '1' && s[11] <= '9'))
		return -1;
	errno = 0;
	*n_r = strtoul(s + 11, &end, 10);
	return *end == '\0' && errno == 0 ? 0 : -1;
}

static int
cmp_rotated(const void *a, const void *b)
{
	const char *x = *(char *const *)a + sizeof(AUDIT_FILE);
	const char *y = *(char *const *)b + sizeof(AUDIT_FILE);
	unsigned long nx, ny;
	int c = strncmp(x, y, 10);

	if (c != 0)
		return c;
	rotated_suffix(x, &nx);
	rotated_suffix(y, &ny);
	return nx < ny ? -1 : nx > ny;
}

int
audit_files(const char *data_dir, char ***names_r, size_t *n_r,
	    char **error_r)
{
	char *dir = xasprintf("%s/%s", data_dir, AUDIT_DIR);
	DIR *d = opendir(dir);
	struct dirent *de;
	char **v = NULL;
	size_t n = 0;
	bool current = false;
	unsigned long num;

	if (d == NULL) {
		*error_r = xasprintf("%s: %s", dir, strerror(errno));
		free(dir);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		const char *s = de->d_name;

		if (strcmp(s, AUDIT_FILE) == 0) {
			current = true;
			continue;
		}
		if (strncmp(s, AUDIT_FILE ".", sizeof(AUDIT_FILE)) != 0 ||
		    rotated_suffix(s + sizeof(AUDIT_FILE), &num) < 0)
			continue;
		v = xreallocarray(v, n + 2, sizeof(*v));
		v[n++] = xstrdup(s);
	}
	closedir(d);
	free(dir);
	if (n > 0)
		qsort(v, n, sizeof(*v), cmp_rotated);
	if (current) {
		v = xreallocarray(v, n + 1, sizeof(*v));
		v[n++] = xstrdup(AUDIT_FILE);
	}
	*names_r = v;
	*n_r = n;
	return 0;
}
