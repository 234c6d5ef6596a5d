/*
 * dovecot-uidlist as Dovecot keeps it: the dotlock "<file>.lock" (created
 * with O_EXCL; the new contents written into it and renamed over the
 * file, as Dovecot's file_dotlock_replace() does; broken when older than
 * Dovecot's 2 minutes; a live one waited for DOTLOCK_WAIT_MS at most, as
 * the wait blocks the worker), the scan of new/ and cur/ by base name,
 * and UID assignment in base-name order under that lock (when it stays
 * busy, the UIDs already known are used and new files wait for the next
 * sync).
 *
 * On a mail_dir shared by several nodes over NFS: O_EXCL creation is
 * atomic there (NFSv3 and later), and so is the rename; a lock's age is
 * measured against the file system's clock (a probe file touched "now",
 * which on NFS the server stamps, as it stamped the lock), so nodes with
 * skewed clocks do not break each other's live locks; and a stale lock is
 * first renamed aside and removed only if it is still the one judged
 * stale, so two nodes breaking it at once cannot remove a fresh lock
 * that a third has just taken.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/strbuf.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "store/imap_store_private.h"

static void
sleep_ms(long ms)
{
	struct timespec ts = {0, ms * 1000000L};

	nanosleep(&ts, NULL);
}

/* A name for this process's own files beside lock: ".<what>.<host>.<pid>"
 * appended (unique across nodes sharing the directory). */
static char *
own_name(const char *lock, const char *what)
{
	char host[64];
	size_t i;

	if (gethostname(host, sizeof(host)) < 0)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	for (i = 0; host[i] != '\0'; i++)
		if (host[i] == '/')
			host[i] = '_';
	return xasprintf("%s.%s.%s.%d", lock, what, host, (int)getpid());
}

/* Now by the clock that stamps files in lock's directory: on NFS the
 * server's (a timestamp set to "now" is set by the server); the local
 * clock when no probe can be made. */
static time_t
fs_now(const char *lock)
{
	char *probe = own_name(lock, "now");
	time_t now = time(NULL);
	struct stat sb;
	int fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
				 O_NOFOLLOW, 0600);

	if (fd >= 0) {
		if (futimens(fd, NULL) == 0 && fstat(fd, &sb) == 0)
			now = sb.st_mtime;
		close(fd);
		(void)unlink(probe);
	}
	free(probe);
	return now;
}

/* Removes lock, judged stale as sb, unless another took its place
 * meanwhile: renamed aside first, and given back if it is not sb's. */
static void
break_stale(const char *lock, const struct stat *sb)
{
	char *aside = own_name(lock, "stale");
	struct stat sa;

	if (rename(lock, aside) == 0) {
		if (lstat(aside, &sa) == 0 &&
		    (sa.st_ino != sb->st_ino || sa.st_dev != sb->st_dev ||
		     sa.st_mtime != sb->st_mtime))
			(void)link(aside, lock);	/* a live one: back */
		(void)unlink(aside);
	}
	free(aside);
}

int
dotlock_take(const char *path)
{
	char *lock = xasprintf("%s.lock", path);
	uint64_t start = mono_ms();
	struct stat sb;
	time_t now = 0;
	long wait = 2;
	int fd;

	for (;;) {
		fd = open(lock, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
		if (fd >= 0 || errno != EEXIST)
			break;
		if (now == 0)
			now = fs_now(lock);
		if (stat(lock, &sb) == 0 &&
		    sb.st_mtime + DOTLOCK_STALE_SECS < now) {
			break_stale(lock, &sb);	/* its owner died */
			continue;
		}
		if (mono_ms() - start > DOTLOCK_WAIT_MS) {
			errno = EAGAIN;
			break;
		}
		sleep_ms(wait);
		wait = wait < 20 ? wait * 2 : 20;
	}
	free(lock);
	return fd;
}

void
dotlock_release(const char *path, int fd)
{
	char *lock = xasprintf("%s.lock", path);

	if (fd >= 0) {
		(void)unlink(lock);
		close(fd);
	}
	free(lock);
}

int
dotlock_replace(const char *path, int fd, const char *data, size_t len)
{
	char *lock = xasprintf("%s.lock", path);
	int r = -1, saved;

	if (ftruncate(fd, 0) == 0 && write_full(fd, data, len) == 0 &&
	    fsync(fd) == 0 && rename(lock, path) == 0)
		r = 0;
	saved = errno;
	if (r < 0)
		(void)unlink(lock);
	close(fd);
	free(lock);
	errno = saved;
	return r;
}

char *
read_small_file(const char *path, size_t *len_r)
{
	struct strbuf b = {0};
	char buf[8192];
	ssize_t k;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);

	if (fd < 0)
		return NULL;
	while ((k = read(fd, buf, sizeof(buf))) > 0) {
		if (b.len + (size_t)k > STORE_FILE_MAX) {
			errno = EFBIG;
			k = -1;
			break;
		}
		strbuf_add(&b, buf, (size_t)k);
	}
	close(fd);
	if (k < 0) {
		int saved = errno;
		strbuf_free(&b);
		errno = saved;
		return NULL;
	}
	*len_r = b.len;
	return strbuf_steal(&b);
}

/* ---- scans --------------------------------------------------------- */

const char *
scan_base(const struct scan_ent *e)
{
	return e->name + 4;
}

static int
cmp_ent(const void *a, const void *b)
{
	const struct scan_ent *x = a, *y = b;
	size_t n = x->baselen < y->baselen ? x->baselen : y->baselen;
	int c = memcmp(scan_base(x), scan_base(y), n);

	if (c != 0)
		return c;
	if (x->baselen != y->baselen)
		return x->baselen < y->baselen ? -1 : 1;
	/* cur/ before new/: the one kept */
	return -strcmp(x->name, y->name) < 0 ? -1 : 1;
}

static int
scan_sub(const char *dir, const char *sub, struct scan *sc)
{
	char *path = xasprintf("%s/%s", dir, sub);
	DIR *d = opendir(path);
	struct dirent *de;

	free(path);
	if (d == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		if (de->d_name[0] == '.' || len > DOVECOT_NAME_MAX + 64 ||
		    (de->d_type != DT_REG && de->d_type != DT_UNKNOWN))
			continue;
		if (sc->n == sc->cap) {
			sc->cap = sc->cap ? sc->cap * 2 : 256;
			sc->e = xreallocarray(sc->e, sc->cap, sizeof(*sc->e));
		}
		struct scan_ent *e = &sc->e[sc->n++];
		e->name = xasprintf("%s/%s", sub, de->d_name);
		e->baselen = strcspn(de->d_name, ":");
		e->uid = 0;
	}
	closedir(d);
	return 0;
}

int
scan_dir(const char *dir, struct scan *sc)
{
	size_t i, j;

	memset(sc, 0, sizeof(*sc));
	if (scan_sub(dir, "new", sc) < 0 || scan_sub(dir, "cur", sc) < 0) {
		int saved = errno;
		scan_free(sc);
		errno = saved;
		return -1;
	}
	if (sc->n > 1)
		qsort(sc->e, sc->n, sizeof(*sc->e), cmp_ent);
	/* one per base: the first (cur/) is kept */
	for (i = j = 0; i < sc->n; i++) {
		if (j > 0 && sc->e[j - 1].baselen == sc->e[i].baselen &&
		    memcmp(scan_base(&sc->e[j - 1]), scan_base(&sc->e[i]),
			   sc->e[i].baselen) == 0) {
			free(sc->e[i].name);
			continue;
		}
		sc->e[j++] = sc->e[i];
	}
	sc->n = j;
	return 0;
}

void
scan_free(struct scan *sc)
{
	for (size_t i = 0; i < sc->n; i++)
		free(sc->e[i].name);
	free(sc->e);
	memset(sc, 0, sizeof(*sc));
}

/* ---- UIDs ----------------------------------------------------------- */

static int
cmp_rec_base(const void *a, const void *b)
{
	const struct dovecot_uidlist_rec *const *x = a, *const *y = b;

	return strcmp((*x)->base, (*y)->base);
}

struct recindex {
	struct dovecot_uidlist_rec **r;
	size_t n;
};

static void
recindex_build(struct recindex *ix, const struct dovecot_uidlist *ul)
{
	ix->n = ul->n;
	ix->r = xcalloc(ul->n + 1, sizeof(*ix->r));
	for (size_t i = 0; i < ul->n; i++)
		ix->r[i] = &ul->recs[i];
	if (ix->n > 1)
		qsort(ix->r, ix->n, sizeof(*ix->r), cmp_rec_base);
}

static struct dovecot_uidlist_rec *
recindex_find(const struct recindex *ix, const char *base, size_t len)
{
	size_t lo = 0, hi = ix->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const char *b = ix->r[mid]->base;
		int c = strncmp(b, base, len);
		if (c == 0)
			c = b[len] == '\0' ? 0 : 1;
		if (c == 0)
			return ix->r[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Reads dir's uidlist into ul: 0, 1 if missing (ul empty), -1. */
static int
uidlist_read(const char *dir, struct dovecot_uidlist *ul)
{
	char *path = xasprintf("%s/" UIDLIST_FILE, dir), *buf;
	const char *err;
	size_t len;
	int r = 0;

	memset(ul, 0, sizeof(*ul));
	buf = read_small_file(path, &len);
	if (buf == NULL)
		r = errno == ENOENT ? 1 : -1;
	else if (dovecot_uidlist_parse(buf, len, ul, &err) < 0)
		r = 1;		/* unusable: recreated (new UIDVALIDITY) */
	free(buf);
	free(path);
	return r;
}

static size_t
map_uids(struct scan *sc, const struct dovecot_uidlist *ul)
{
	struct recindex ix;
	size_t missing = 0;

	recindex_build(&ix, ul);
	for (size_t i = 0; i < sc->n; i++) {
		struct dovecot_uidlist_rec *r =
		    recindex_find(&ix, scan_base(&sc->e[i]), sc->e[i].baselen);
		sc->e[i].uid = r != NULL ? r->uid : 0;
		missing += r == NULL;
	}
	free(ix.r);
	sc->uidvalidity = ul->uidvalidity;
	sc->uidnext = ul->uidnext;
	return missing;
}

static void
uidlist_init_new(struct dovecot_uidlist *ul)
{
	unsigned char g[16];
	FILE *f = fopen("/dev/urandom", "re");

	dovecot_uidlist_free(ul);
	ul->version = 3;
	ul->uidvalidity = (uint32_t)time(NULL);
	ul->uidnext = 1;
	if (f != NULL && fread(g, 1, sizeof(g), f) == sizeof(g))
		for (size_t i = 0; i < 16; i++)
			snprintf(ul->guid + 2 * i, 3, "%02x", g[i]);
	if (f != NULL)
		fclose(f);
}

/* Under the lock: records for sc's files that have none, in base order. */
static void
add_new(struct dovecot_uidlist *ul, struct scan *sc)
{
	if (map_uids(sc, ul) == 0)
		return;
	for (size_t i = 0; i < sc->n; i++) {
		struct scan_ent *e = &sc->e[i];
		char *b;

		if (e->uid != 0 || ul->uidnext == UINT32_MAX)
			continue;
		b = xstrndup(scan_base(e), e->baselen);
		e->uid = ul->uidnext++;
		dovecot_uidlist_add(ul, e->uid, b, NULL);
		free(b);
	}
}

/* Under the lock: records for sc2's files that have none (base order),
 * records of files in neither sc nor sc2 dropped. */
static void
uidlist_merge(struct dovecot_uidlist *ul, const struct scan *sc,
	      struct scan *sc2)
{
	struct dovecot_uidlist nu = *ul;
	struct recindex ix;
	size_t i;

	/* drop the records of files no scan saw */
	nu.recs = NULL;
	nu.n = nu.cap = 0;
	nu.hdr_ext = ul->hdr_ext != NULL ? xstrdup(ul->hdr_ext) : NULL;
	struct scan both = {0};
	both.n = sc->n + sc2->n;
	both.e = xcalloc(both.n + 1, sizeof(*both.e));
	if (sc->n > 0)
		memcpy(both.e, sc->e, sc->n * sizeof(*sc->e));
	if (sc2->n > 0)
		memcpy(both.e + sc->n, sc2->e, sc2->n * sizeof(*sc2->e));
	struct dovecot_uidlist tmp = {0};
	for (i = 0; i < both.n; i++)
		dovecot_uidlist_add(&tmp, i + 1, scan_base(&both.e[i]), NULL);
	for (i = 0; i < tmp.n; i++)
		tmp.recs[i].base[both.e[i].baselen] = '\0';
	recindex_build(&ix, &tmp);
	for (i = 0; i < ul->n; i++)
		if (recindex_find(&ix, ul->recs[i].base,
				  strlen(ul->recs[i].base)) != NULL)
			dovecot_uidlist_add(&nu, ul->recs[i].uid,
					    ul->recs[i].base, ul->recs[i].ext);
	free(ix.r);
	dovecot_uidlist_free(&tmp);
	free(both.e);
	add_new(&nu, sc2);
	dovecot_uidlist_free(ul);
	*ul = nu;
}

static int
uidlist_write(const char *dir, int fd, const struct dovecot_uidlist *ul)
{
	char *path = xasprintf("%s/" UIDLIST_FILE, dir);
	struct strbuf b = {0};
	int r;

	dovecot_uidlist_write(ul, &b);
	r = dotlock_replace(path, fd, b.s, b.len);
	strbuf_free(&b);
	free(path);
	return r;
}

/* Takes the lock and reads the uidlist (a new one if missing). */
static int
uidlist_lock_read(const char *dir, struct dovecot_uidlist *ul, int *fd_r)
{
	char *path = xasprintf("%s/" UIDLIST_FILE, dir);
	int r;

	*fd_r = dotlock_take(path);
	free(path);
	if (*fd_r < 0)
		return -1;
	r = uidlist_read(dir, ul);
	if (r < 0) {
		int saved = errno;
		path = xasprintf("%s/" UIDLIST_FILE, dir);
		dotlock_release(path, *fd_r);
		free(path);
		errno = saved;
		return -1;
	}
	if (r == 1)
		uidlist_init_new(ul);
	return 0;
}

static int
assign_locked(const char *dir, struct scan *sc)
{
	struct dovecot_uidlist ul;
	struct scan sc2;
	int fd, r;

	if (uidlist_lock_read(dir, &ul, &fd) < 0)
		return -1;
	if (scan_dir(dir, &sc2) < 0) {
		int saved = errno;
		char *path = xasprintf("%s/" UIDLIST_FILE, dir);
		dotlock_release(path, fd);
		free(path);
		dovecot_uidlist_free(&ul);
		errno = saved;
		return -1;
	}
	uidlist_merge(&ul, sc, &sc2);
	r = uidlist_write(dir, fd, &ul);
	if (r == 0)
		(void)map_uids(sc, &ul);
	scan_free(&sc2);
	dovecot_uidlist_free(&ul);
	return r;
}

int
scan_uids(const char *dir, struct scan *sc, bool assign)
{
	struct dovecot_uidlist ul;
	size_t missing;
	int r;

	if ((r = uidlist_read(dir, &ul)) < 0)
		return -1;
	missing = map_uids(sc, &ul);
	dovecot_uidlist_free(&ul);
	if (!assign || (r == 0 && missing == 0))
		return 0;
	if (assign_locked(dir, sc) < 0) {
		if (errno != EAGAIN || r == 1)
			return -1;	/* busy with no uidlist: no UIDVALIDITY */
		/* the lock is busy: what has a UID is known (mapped above);
		 * the rest gets one at the next check */
	}
	return 0;
}

int
uidlist_place(const char *dir, char *const *tmp, char *const *names,
	      size_t n, uint32_t *uidvalidity_r, uint32_t *uids_r)
{
	struct dovecot_uidlist ul;
	struct scan sc;
	char *path = xasprintf("%s/" UIDLIST_FILE, dir), *dst;
	size_t i, done = 0;
	int fd, r = 0, saved;

	if (uidlist_lock_read(dir, &ul, &fd) < 0) {
		free(path);
		return -1;
	}
	/* files already here without a UID (delivered since the last
	 * look) get theirs first, so UIDs keep the order of arrival; none
	 * is dropped here (that takes two scans, see uidlist_merge) */
	if (scan_dir(dir, &sc) == 0) {
		add_new(&ul, &sc);
		scan_free(&sc);
	}
	if (ul.uidnext > UINT32_MAX - n - 1) {
		errno = ENOSPC;
		r = -1;
	}
	for (i = 0; r == 0 && i < n; i++, done++) {
		dst = xasprintf("%s/cur/%s", dir, names[i]);
		r = rename(tmp[i], dst);
		free(dst);
		if (r == 0) {
			char *b = xstrndup(names[i], strcspn(names[i], ":"));
			uids_r[i] = ul.uidnext++;
			dovecot_uidlist_add(&ul, uids_r[i], b, NULL);
			free(b);
		}
	}
	if (r == 0)
		r = uidlist_write(dir, fd, &ul);
	else
		dotlock_release(path, fd);
	saved = errno;
	if (r < 0)
		for (i = 0; i < done; i++) {
			dst = xasprintf("%s/cur/%s", dir, names[i]);
			(void)unlink(dst);
			free(dst);
		}
	if (r == 0) {
		char *cur = xasprintf("%s/cur", dir);
		r = fsync_dir(cur);
		saved = errno;
		free(cur);
	}
	*uidvalidity_r = ul.uidvalidity;
	dovecot_uidlist_free(&ul);
	free(path);
	errno = saved;
	return r;
}
