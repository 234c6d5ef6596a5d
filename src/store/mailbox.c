/*
 * A Maildir as POP3 sees it: see mailbox.h for the contract.
 *
 * Everything below the Maildir is reached through directory fds with
 * O_NOFOLLOW, and only regular files are messages, so a symlink planted
 * in a Maildir never leads out of it. The scan is one readdir() per
 * directory and one qsort(): the size comes from the name (",W=") and the
 * type from d_type, so a mailbox of godwit's own files costs no stat() per
 * message.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "store/deliver.h"
#include "lib/xalloc.h"
#include "lib/log.h"
#include "store/mailbox.h"
#include "mail/pop3_stream.h"

#define LOCK_NAME "godwit-pop3.lock"
#define SUB_LEN 4		/* "new/" and "cur/" */
#define UIDL_HASH_HEX 32	/* hex digits of SHA-256 in a hashed UIDL */
#define SIZE_BUF (64 * 1024)	/* read buffer for computing sizes */

static const char *const subdirs[2] = {"new", "cur"};

/* ---- names ---------------------------------------------------------- */

/* The file name without a "new/" or "cur/" prefix. */
static const char *
file_part(const char *name)
{
	if (strncmp(name, "new/", SUB_LEN) == 0 ||
	    strncmp(name, "cur/", SUB_LEN) == 0)
		return name + SUB_LEN;
	return name;
}

/* Length of the Maildir base name: up to the first ':' or ','. */
static size_t
base_len(const char *file)
{
	return strcspn(file, ":,");
}

void
mailbox_uidl(const char *name, char *out)
{
	static const char hex[] = "0123456789abcdef";
	const char *file = file_part(name);
	size_t len = base_len(file);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	bool plain = len >= 1 && len <= MAILBOX_UIDL_MAX;

	for (size_t i = 0; plain && i < len; i++)
		if ((unsigned char)file[i] < 0x21 ||
		    (unsigned char)file[i] > 0x7e)
			plain = false;
	if (plain) {
		memcpy(out, file, len);
		out[len] = '\0';
		return;
	}
	if (EVP_Digest(file, len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen < UIDL_HASH_HEX / 2)
		fatalx("mailbox_uidl: SHA-256 failed");
	out[0] = 'X';
	for (size_t i = 0; i < UIDL_HASH_HEX / 2; i++) {
		out[1 + 2 * i] = hex[md[i] >> 4];
		out[2 + 2 * i] = hex[md[i] & 0x0f];
	}
	out[1 + UIDL_HASH_HEX] = '\0';
}

/*
 * The fields of a name are what lies between the end of the base name
 * (a ',') and the info part (the next ':'). The last "W=" field counts:
 * godwit and Dovecot write it last, so a ",W=" that some other part of the
 * name happens to contain cannot override the real one.
 */
int
mailbox_name_size(const char *name, uint64_t *size_r)
{
	const char *p = file_part(name), *w = NULL, *end;
	uint64_t v = 0;

	p += base_len(p);
	if (*p != ',')
		return 0;	/* no fields, or only the info part */
	end = p + strcspn(p, ":");
	for (; p < end; p++)
		if (*p == ',' && end - p > 2 && p[1] == 'W' && p[2] == '=')
			w = p + 3;
	if (w == NULL || w == end || *w == ',')
		return 0;
	for (; w < end && *w != ','; w++) {
		if (*w < '0' || *w > '9')
			return 0;
		if (v > (UINT64_MAX - (uint64_t)(*w - '0')) / 10)
			return 0;
		v = v * 10 + (uint64_t)(*w - '0');
	}
	*size_r = v;
	return 1;
}

/* ---- files ---------------------------------------------------------- */

/*
 * Is the entry a regular file? d_type answers without a syscall on the
 * usual file systems; DT_UNKNOWN needs an lstat-like look.
 */
static bool
entry_is_reg(int dfd, const struct dirent *de)
{
	struct stat st;

	if (de->d_type == DT_REG)
		return true;
	if (de->d_type != DT_UNKNOWN)
		return false;
	return fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       S_ISREG(st.st_mode);
}

/*
 * Opens a message file read-only. O_NONBLOCK keeps a FIFO swapped in
 * after readdir() from blocking us (it has no effect on regular files);
 * anything but a regular file is refused as if it were gone. Shared with
 * the IMAP store (store/imap_folder.c).
 */
int
maildir_msg_open(int dfd, const char *file, uint64_t *fsize_r)
{
	struct stat st;
	int fd;

	fd = openat(dfd, file,
		    O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		if (errno == ELOOP)
			errno = ENOENT;
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		errno = ENOENT;
		return -1;
	}
	if (fsize_r != NULL)
		*fsize_r = (uint64_t)st.st_size;
	return fd;
}

/* The size RETR will send (pop3_stream.h), by reading the whole file. */
static int
compute_size(int dfd, const char *file, unsigned char *buf, uint64_t *size_r)
{
	struct pop3_size sz;
	ssize_t r;
	int fd, saved;

	if ((fd = maildir_msg_open(dfd, file, NULL)) < 0)
		return -1;
	pop3_size_init(&sz);
	for (;;) {
		r = read(fd, buf, SIZE_BUF);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		pop3_size_add(&sz, buf, (size_t)r);
	}
	saved = errno;
	close(fd);
	if (r < 0) {
		errno = saved;
		return -1;
	}
	*size_r = pop3_size_end(&sz);
	return 0;
}

/* <maildir>/<sub> opened as a directory, never through a symlink. */
static int
open_sub(const char *path, const char *sub)
{
	int flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW;
	char buf[PATH_MAX];
	int n;

	n = snprintf(buf, sizeof(buf), "%s/%s", path, sub);
	if (n < 0 || (size_t)n >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return open(buf, flags);
}

/*
 * Looks in cur/ and new/ for a message with the same base name as name
 * (it was moved or got other flags). cur/ first, as in the snapshot: a
 * move goes from new/ to cur/. Returns a new "cur/..." or "new/..."
 * string, or NULL (errno ENOENT if there is none).
 */
static char *
find_by_base(const char *path, const char *name)
{
	const char *file = file_part(name);
	size_t blen = base_len(file);
	char *found = NULL;

	for (size_t s = 2; s-- > 0 && found == NULL;) {
		int dfd = open_sub(path, subdirs[s]);
		struct dirent *de;
		DIR *d;

		if (dfd < 0)
			continue;
		if ((d = fdopendir(dfd)) == NULL) {
			close(dfd);
			continue;
		}
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.' ||
			    base_len(de->d_name) != blen ||
			    memcmp(de->d_name, file, blen) != 0 ||
			    !entry_is_reg(dirfd(d), de))
				continue;
			found = xasprintf("%s/%s", subdirs[s], de->d_name);
			break;
		}
		closedir(d);
	}
	if (found == NULL)
		errno = ENOENT;
	return found;
}

/* Which of subdirs a "new/..." or "cur/..." name is in. */
static unsigned
name_sub(const char *name)
{
	return strncmp(name, "cur/", SUB_LEN) == 0;
}

/* ---- lock ----------------------------------------------------------- */

/*
 * Opens (creating if missing) the lock file in the Maildir open as mdfd.
 * A new file gets mtime 0, "never logged in": otherwise its creation
 * time (by retention, say) would later read as a login.
 */
static int
lock_open(int mdfd, bool *created_r)
{
	static const struct timespec epoch[2] = {{0, 0}, {0, 0}};
	int flags = O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY;
	struct stat st;
	int fd;

	*created_r = false;
	for (int tries = 0; tries < 2; tries++) {
		if ((fd = openat(mdfd, LOCK_NAME, flags)) >= 0)
			break;
		if (errno != ENOENT)
			return -1;
		fd = openat(mdfd, LOCK_NAME, flags | O_CREAT | O_EXCL, 0640);
		if (fd >= 0) {
			*created_r = true;
			(void)futimens(fd, epoch);
			break;
		}
		if (errno != EEXIST)
			return -1;
		/* someone else created it meanwhile: open theirs */
	}
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	return fd;
}

/*
 * A write lock on the whole file, without waiting: 0, 1 if held
 * elsewhere, -1 on error. An open file description lock (F_OFD_SETLK):
 * owned by this open file like flock(), so two sessions of one worker
 * exclude each other, and dropped when it is closed (or the process
 * dies); unlike flock() it is a byte-range lock, which NFS (v4, and v3
 * with lockd) takes to the server, so sessions on several nodes sharing
 * one mail_dir exclude each other the same way as on one machine. (Linux
 * emulates flock() on NFS with such a lock too, but then it conflicts
 * with fcntl locks there and not locally: one semantics is better.)
 */
static int
lock_try(int fd)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};

	while (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
		if (errno == EAGAIN || errno == EACCES)
			return 1;
		if (errno != EINTR)
			return -1;
	}
	return 0;
}

static void
mailbox_reset(struct mailbox *mb)
{
	mb->path = NULL;
	mb->lock_fd = -1;
	mb->dfd[0] = mb->dfd[1] = -1;
	mb->msgs = NULL;
	mb->n = 0;
}

int
mailbox_lock(struct mailbox *mb, const char *path, time_t *last_login_r)
{
	struct stat st;
	bool created;
	int mdfd, fd, r, saved;

	mailbox_reset(mb);
	mdfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (mdfd < 0 && errno == ENOENT) {
		if (maildir_create(path) < 0)
			return -1;
		mdfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (mdfd < 0)
		return -1;
	fd = lock_open(mdfd, &created);
	saved = errno;
	close(mdfd);
	errno = saved;
	if (fd < 0)
		return -1;
	if ((r = lock_try(fd)) != 0 || fstat(fd, &st) < 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return r == 1 ? 1 : -1;
	}
	if (last_login_r != NULL)
		*last_login_r = created ? 0 : st.st_mtime;
	mb->path = xstrdup(path);
	mb->lock_fd = fd;
	return 0;
}

void
mailbox_touch_login(struct mailbox *mb)
{
	if (mb->path == NULL || mb->lock_fd < 0)
		return;
	if (futimens(mb->lock_fd, NULL) < 0)
		log_warn("mailbox %s: touch %s", mb->path, LOCK_NAME);
}

static void
msgs_clear(struct mailbox *mb)
{
	for (size_t i = 0; i < mb->n; i++)
		free(mb->msgs[i].name);
	xfree(&mb->msgs);
	mb->n = 0;
}

void
mailbox_close(struct mailbox *mb)
{
	if (mb->path == NULL)
		return;		/* zeroed, or already closed */
	msgs_clear(mb);
	if (mb->lock_fd >= 0)
		close(mb->lock_fd);	/* drops the lock */
	for (unsigned s = 0; s < 2; s++)
		if (mb->dfd[s] >= 0)
			close(mb->dfd[s]);
	free(mb->path);
	mailbox_reset(mb);
}

/* ---- snapshot ------------------------------------------------------- */

struct scan_ent {
	char *name;		/* "new/<file>" or "cur/<file>" */
	uint64_t size;
	size_t base_len;
	unsigned sub;		/* index into subdirs */
	bool sized;		/* size known from the name */
};

struct scan {
	struct scan_ent *ents;
	size_t n, cap;
	DIR *dirs[2];
};

/*
 * By base name (arrival order for godwit's names, and stable when flags
 * change), then cur/ before new/, then by the whole file name.
 */
static int
ent_cmp(const void *a, const void *b)
{
	const struct scan_ent *x = a, *y = b;
	size_t n = x->base_len < y->base_len ? x->base_len : y->base_len;
	int r = memcmp(x->name + SUB_LEN, y->name + SUB_LEN, n);

	if (r != 0)
		return r;
	if (x->base_len != y->base_len)
		return x->base_len < y->base_len ? -1 : 1;
	if (x->sub != y->sub)
		return x->sub > y->sub ? -1 : 1;	/* cur/ first */
	return strcmp(x->name + SUB_LEN, y->name + SUB_LEN);
}

static int
scan_dir(struct scan *sc, const char *path, unsigned sub)
{
	struct dirent *de;
	int dfd;

	if ((dfd = open_sub(path, subdirs[sub])) < 0)
		return errno == ENOENT ? 0 : -1;	/* missing: empty */
	if ((sc->dirs[sub] = fdopendir(dfd)) == NULL) {
		close(dfd);
		return -1;
	}
	for (;;) {
		struct scan_ent *e;

		errno = 0;
		if ((de = readdir(sc->dirs[sub])) == NULL)
			return errno == 0 ? 0 : -1;
		if (de->d_name[0] == '.' || strlen(de->d_name) > NAME_MAX ||
		    !entry_is_reg(dfd, de))
			continue;
		if (sc->n == sc->cap) {
			sc->cap = sc->cap ? sc->cap * 2 : 256;
			sc->ents = xreallocarray(sc->ents, sc->cap,
						 sizeof(*sc->ents));
		}
		e = &sc->ents[sc->n++];
		e->name = xasprintf("%s/%s", subdirs[sub], de->d_name);
		e->base_len = base_len(de->d_name);
		e->sub = sub;
		e->sized = mailbox_name_size(de->d_name, &e->size) == 1;
	}
}

/*
 * Sorts, and keeps one entry per base name: the same message can be seen
 * twice if it moved from new/ to cur/ between the two readdir()s (new/ is
 * read first, so a move can duplicate a message but never hide it). The
 * cur/ entry sorts first and is the current one.
 */
static void
scan_sort(struct scan *sc)
{
	size_t out = 0;

	if (sc->n > 1)
		qsort(sc->ents, sc->n, sizeof(*sc->ents), ent_cmp);
	for (size_t i = 0; i < sc->n; i++) {
		struct scan_ent *prev = out ? &sc->ents[out - 1] : NULL;

		if (prev != NULL && prev->base_len == sc->ents[i].base_len &&
		    memcmp(prev->name + SUB_LEN, sc->ents[i].name + SUB_LEN,
			   prev->base_len) == 0) {
			free(sc->ents[i].name);
			continue;
		}
		sc->ents[out++] = sc->ents[i];
	}
	sc->n = out;
}

/* Turns the first max entries into messages, computing missing sizes. */
static void
scan_fill(struct scan *sc, struct mailbox *mb, size_t max)
{
	unsigned char *buf = NULL;

	mb->msgs = sc->n ? xcalloc(sc->n < max ? sc->n : max,
				   sizeof(*mb->msgs))
			 : NULL;
	for (size_t i = 0; i < sc->n; i++) {
		struct scan_ent *e = &sc->ents[i];
		struct mailbox_msg *m;

		if (mb->n == max) {
			free(e->name);
			continue;
		}
		if (!e->sized) {
			if (buf == NULL)
				buf = xmalloc(SIZE_BUF);
			if (compute_size(dirfd(sc->dirs[e->sub]),
					 e->name + SUB_LEN, buf, &e->size) < 0) {
				/* gone since readdir(), or unreadable */
				if (errno != ENOENT)
					log_warn("mailbox %s: %s", mb->path,
						 e->name);
				free(e->name);
				continue;
			}
		}
		m = &mb->msgs[mb->n++];
		m->name = e->name;
		m->size = e->size;
		mailbox_uidl(e->name, m->uidl);
	}
	free(buf);
}

int
mailbox_scan(struct mailbox *mb, size_t max_msgs)
{
	struct scan sc = {0};
	int r = 0, saved = 0;

	if (mb->path == NULL) {
		errno = EINVAL;
		return -1;
	}
	msgs_clear(mb);
	for (unsigned s = 0; s < 2 && r == 0; s++)
		r = scan_dir(&sc, mb->path, s);
	if (r < 0) {
		saved = errno;
		for (size_t i = 0; i < sc.n; i++)
			free(sc.ents[i].name);
	} else {
		scan_sort(&sc);
		scan_fill(&sc, mb, max_msgs ? max_msgs : SIZE_MAX);
	}
	for (unsigned s = 0; s < 2; s++)
		if (sc.dirs[s] != NULL)
			closedir(sc.dirs[s]);
	free(sc.ents);
	errno = saved;
	return r;
}

/* ---- open and commit ------------------------------------------------ */

/* Re-finds message i by its base name; 0, or -1 with ENOENT. */
static int
relocate(struct mailbox *mb, size_t i)
{
	char *name = find_by_base(mb->path, mb->msgs[i].name);

	if (name == NULL)
		return -1;
	free(mb->msgs[i].name);
	mb->msgs[i].name = name;
	return 0;
}

/*
 * Opens message i where the snapshot saw it, through its directory's fd
 * (so neither new/ nor cur/ is followed if it became a symlink). With
 * cached, the directory fds are kept open in mb for the next RETR: a
 * long path walked once per session instead of once per message.
 */
static int
open_at_name(struct mailbox *mb, size_t i, bool cached, uint64_t *fsize_r)
{
	const char *name = mb->msgs[i].name;
	unsigned sub = name_sub(name);
	int dfd, fd, saved;

	dfd = cached ? mb->dfd[sub] : -1;
	if (dfd < 0 && (dfd = open_sub(mb->path, subdirs[sub])) < 0) {
		if (errno == ELOOP || errno == ENOTDIR)
			errno = ENOENT;
		return -1;
	}
	fd = maildir_msg_open(dfd, name + SUB_LEN, fsize_r);
	saved = errno;
	if (cached && mb->dfd[sub] < 0)
		mb->dfd[sub] = dfd;
	else if (dfd != mb->dfd[sub])
		close(dfd);
	errno = saved;
	return fd;
}

int
mailbox_open(struct mailbox *mb, size_t i, uint64_t *fsize_r)
{
	int fd;

	if (mb->path == NULL || i >= mb->n) {
		errno = EINVAL;
		return -1;
	}
	if ((fd = open_at_name(mb, i, true, fsize_r)) >= 0 || errno != ENOENT)
		return fd;
	/* moved, or the directory itself was replaced: look afresh */
	if (relocate(mb, i) < 0)
		return -1;
	return open_at_name(mb, i, false, fsize_r);
}

/* 1 removed, 0 already gone, -1 failed; *sub_r: where it was. */
static int
remove_msg(struct mailbox *mb, size_t i, unsigned *sub_r)
{
	for (int tries = 0; tries < 2; tries++) {
		const char *name;
		int dfd, r, saved;

		if (tries == 1 && relocate(mb, i) < 0)
			return 0;
		name = mb->msgs[i].name;
		*sub_r = name_sub(name);
		if ((dfd = open_sub(mb->path, subdirs[*sub_r])) < 0) {
			if (errno == ENOENT || errno == ELOOP ||
			    errno == ENOTDIR)
				continue;
			return -1;
		}
		r = unlinkat(dfd, name + SUB_LEN, 0);
		saved = errno;
		close(dfd);
		if (r == 0)
			return 1;
		if (saved != ENOENT) {
			errno = saved;
			return -1;
		}
	}
	return 0;
}

size_t
mailbox_commit(struct mailbox *mb, size_t *failed_r)
{
	size_t removed[2] = {0, 0}, failed = 0;
	unsigned sub = 0;

	for (size_t i = 0; mb->path != NULL && i < mb->n; i++) {
		if (!mb->msgs[i].deleted)
			continue;
		switch (remove_msg(mb, i, &sub)) {
		case 1:
			removed[sub]++;
			break;
		case -1:
			log_warn("mailbox %s: unlink %s", mb->path,
				 mb->msgs[i].name);
			failed++;
			break;
		default:
			break;
		}
	}
	for (unsigned s = 0; s < 2; s++) {
		int dfd;

		if (removed[s] == 0)
			continue;
		if ((dfd = open_sub(mb->path, subdirs[s])) < 0 ||
		    fsync(dfd) < 0) {
			log_event(LOG_ERR, "store", "fsync-failed",
				  LF_STR("path", mb->path),
				  LF_STR("dir", subdirs[s]),
				  LF_STR("error", strerror(errno)));
			failed += removed[s];
			removed[s] = 0;
		}
		if (dfd >= 0)
			close(dfd);
	}
	if (failed_r != NULL)
		*failed_r = failed;
	return removed[0] + removed[1];
}

/* ---- retention ------------------------------------------------------ */

/* Opens a subdirectory entry of dfd, never through a symlink; -1 to skip. */
static int
open_child_dir(int dfd, const struct dirent *de, struct mailbox_expire_stats *st)
{
	int fd;

	if (de->d_name[0] == '.' ||
	    (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN))
		return -1;
	fd = openat(dfd, de->d_name,
		    O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno != ENOENT && errno != ENOTDIR && errno != ELOOP) {
		log_warn("expire: open %s", de->d_name);
		st->errors++;
	}
	return fd;
}

/* Removes the old messages of one locked Maildir's new/ or cur/. */
static void
expire_sub(int mdfd, const char *sub, time_t cutoff,
	   struct mailbox_expire_stats *st)
{
	struct dirent *de;
	struct stat sb;
	bool removed = false;
	int dfd;
	DIR *d;

	if ((dfd = openat(mdfd, sub,
			  O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		if (errno != ENOENT) {
			log_warn("expire: open %s", sub);
			st->errors++;
		}
		return;
	}
	if ((d = fdopendir(dfd)) == NULL) {
		close(dfd);
		st->errors++;
		return;
	}
	for (;;) {
		errno = 0;
		if ((de = readdir(d)) == NULL) {
			if (errno != 0) {
				log_warn("expire: readdir %s", sub);
				st->errors++;
			}
			break;
		}
		if (de->d_name[0] == '.' ||
		    (de->d_type != DT_REG && de->d_type != DT_UNKNOWN))
			continue;
		if (fstatat(dfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(sb.st_mode) || sb.st_mtime >= cutoff)
			continue;
		if (unlinkat(dfd, de->d_name, 0) < 0) {
			if (errno != ENOENT) {
				log_warn("expire: unlink %s/%s", sub,
					 de->d_name);
				st->errors++;
			}
			continue;
		}
		removed = true;
		st->removed++;
		st->bytes += (uint64_t)sb.st_size;
	}
	if (removed && fsync(dfd) < 0) {
		log_warn("expire: fsync %s", sub);
		st->errors++;
	}
	closedir(d);
}

/* The Maildir++ folder .Junk (quarantined mail), when there is one:
 * its new/ and cur/ expire like the inbox's. */
static void
expire_junk(int mdfd, time_t cutoff, struct mailbox_expire_stats *st)
{
	int jfd = openat(mdfd, MAILDIR_JUNK,
			 O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);

	if (jfd < 0) {
		if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP)
			st->errors++;
		return;
	}
	for (unsigned s = 0; s < 2; s++)
		expire_sub(jfd, subdirs[s], cutoff, st);
	close(jfd);
}

/* One Maildir: lock it like a POP3 login would, or skip it. */
static void
expire_maildir(int mdfd, time_t cutoff, struct mailbox_expire_stats *st)
{
	bool created;
	int fd, r;

	st->mailboxes++;
	if ((fd = lock_open(mdfd, &created)) < 0) {
		log_warn("expire: open %s", LOCK_NAME);
		st->errors++;
		return;
	}
	if ((r = lock_try(fd)) != 0) {
		if (r == 1)
			st->skipped++;
		else
			st->errors++;
		close(fd);
		return;
	}
	for (unsigned s = 0; s < 2; s++)
		expire_sub(mdfd, subdirs[s], cutoff, st);
	expire_junk(mdfd, cutoff, st);
	close(fd);
}

/* Calls fn for each child directory of the directory open as dfd. */
static void
each_child_dir(int dfd, struct mailbox_expire_stats *st,
	       void (*fn)(int, time_t, struct mailbox_expire_stats *),
	       time_t cutoff)
{
	struct dirent *de;
	DIR *d;
	int fd;

	if ((fd = dup(dfd)) < 0 || (d = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		st->errors++;
		return;
	}
	for (;;) {
		errno = 0;
		if ((de = readdir(d)) == NULL) {
			if (errno != 0)
				st->errors++;
			break;
		}
		if ((fd = open_child_dir(dfd, de, st)) < 0)
			continue;
		fn(fd, cutoff, st);
		close(fd);
	}
	closedir(d);
}

/* mail/<domain>/<local>: its Maildir, if it has one. */
static void
expire_local(int lfd, time_t cutoff, struct mailbox_expire_stats *st)
{
	int mdfd = openat(lfd, "Maildir",
			  O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);

	if (mdfd < 0) {
		if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP)
			st->errors++;
		return;
	}
	expire_maildir(mdfd, cutoff, st);
	close(mdfd);
}

static void
expire_domain(int dfd, time_t cutoff, struct mailbox_expire_stats *st)
{
	each_child_dir(dfd, st, expire_local, cutoff);
}

int
mailbox_expire(const char *mail_dir, time_t cutoff,
	       struct mailbox_expire_stats *st)
{
	char path[PATH_MAX];
	int fd, n;

	memset(st, 0, sizeof(*st));
	n = snprintf(path, sizeof(path), "%s", mail_dir);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	/* mail_dir itself may be a symlink the administrator made */
	if ((fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return errno == ENOENT ? 0 : -1;
	each_child_dir(fd, st, expire_domain, cutoff);
	close(fd);
	return 0;
}
