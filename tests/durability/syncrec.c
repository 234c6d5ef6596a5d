/*
 * syncrec: an LD_PRELOAD library for the power-loss tests
 * (tests/integration/test_powerloss.py). Test code only: the Makefile
 * builds it into build/tests/syncrec.so; godwit never links it.
 *
 * It records, in one trace file shared by every process of the daemon,
 * the calls that change what the file system holds (creating, writing,
 * truncating, renaming, linking, unlinking, making and removing
 * directories), the calls that make those changes durable (fsync,
 * fdatasync, syncfs, sync), and what the daemon writes to its sockets (its
 * replies), in the order they happened. tests/durability/crashmodel.py
 * replays the trace against a model of a file system that loses, at a
 * power cut, everything not made durable, and checks each reply that
 * promises durability against it.
 *
 * One record is one line written with one write(2) to a file opened
 * O_APPEND, so the lines of all processes and threads interleave whole,
 * in the order the kernel saw them. A change or a sync is recorded after
 * it returned, a reply before it is sent: a sync therefore always appears
 * before the reply that waited for it, never after.
 *
 * The environment (read once, at load):
 *   GODWIT_SYNCREC_TRACE=PATH     append the trace to PATH (without it,
 *                                 nothing is recorded)
 *   GODWIT_SYNCREC_FAIL=TEXT      fsync and fdatasync of a file or
 *                                 directory whose path contains TEXT fail
 *                                 with EIO (nothing is synced)
 *   GODWIT_SYNCREC_FAIL_SYNCFS=1  syncfs fails with EIO
 *   GODWIT_SYNCREC_DELAY_MS=N     every fsync, fdatasync and syncfs
 *                                 sleeps N ms first, so that the
 *                                 committer's next batch has time to
 *                                 gather several jobs (group commit)
 *
 * Record formats (fields separated by one space; paths and data
 * percent-encoded, so a field never holds a space or a line end):
 *   PID TID create DEV INO PATH        a new regular file
 *   PID TID trunc DEV INO PATH         an existing file opened O_TRUNC
 *   PID TID write DEV INO [audit=ID...] data written to a regular file;
 *                                 audit=ID for each audit-log line of a
 *                                 message in the data (store/audit.h:
 *                                 "type":"message","queue":"ID")
 *   PID TID fsync|fdatasync RC DEV INO ISDIR PATH
 *   PID TID syncfs RC DEV
 *   PID TID sync
 *   PID TID rename|link DEV INO OLD NEW
 *   PID TID unlink DEV INO PATH
 *   PID TID mkdir DEV INO PATH
 *   PID TID rmdir PATH
 *   PID TID reply DATA                 up to 1024 octets sent to a socket
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define REPLY_MAX 1024
#define RECORD_MAX (4 * PATH_MAX + 3 * REPLY_MAX + 256)

static int trace_fd = -1;
static dev_t trace_dev;
static ino_t trace_ino;
static const char *fail_text;
static bool fail_syncfs;
static long delay_ms;

#define REAL(name)                                                          \
	static __typeof__(name) *real_##name;                               \
	if (real_##name == NULL)                                            \
		real_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

__attribute__((constructor)) static void
syncrec_init(void)
{
	const char *path = getenv("GODWIT_SYNCREC_TRACE"), *s;
	struct stat sb;
	int fd;

	fail_text = getenv("GODWIT_SYNCREC_FAIL");
	if (fail_text != NULL && *fail_text == '\0')
		fail_text = NULL;
	s = getenv("GODWIT_SYNCREC_FAIL_SYNCFS");
	fail_syncfs = s != NULL && strcmp(s, "1") == 0;
	s = getenv("GODWIT_SYNCREC_DELAY_MS");
	delay_ms = s != NULL ? strtol(s, NULL, 10) : 0;
	if (path == NULL || *path == '\0')
		return;
	/* raw system calls for our own I/O: nothing of ours is recorded */
	fd = (int)syscall(SYS_openat, AT_FDCWD, path,
			  O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	/* far from the small numbers the daemon uses */
	int hi = (int)syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, 900);
	if (hi >= 0) {
		syscall(SYS_close, fd);
		fd = hi;
	}
	if (syscall(SYS_fstat, fd, &sb) == 0) {
		trace_fd = fd;
		trace_dev = sb.st_dev;
		trace_ino = sb.st_ino;
	}
}

/* ---- formatting --------------------------------------------------------- */

struct rec {
	char buf[RECORD_MAX];
	size_t len;
};

static void
put_raw(struct rec *r, const char *s, size_t n)
{
	if (n > sizeof(r->buf) - 2 - r->len)
		n = sizeof(r->buf) - 2 - r->len;
	memcpy(r->buf + r->len, s, n);
	r->len += n;
}

static void
put_fmt(struct rec *r, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(r->buf + r->len, sizeof(r->buf) - 2 - r->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		r->len += (size_t)n < sizeof(r->buf) - 2 - r->len
				  ? (size_t)n
				  : sizeof(r->buf) - 2 - r->len;
}

/* " " then the bytes, percent-encoded outside printable ASCII */
static void
put_enc(struct rec *r, const void *data, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p = data;

	put_raw(r, " ", 1);
	if (n == 0)
		put_raw(r, "%", 1);	/* an empty field still is a field */
	for (size_t i = 0; i < n && r->len + 4 < sizeof(r->buf); i++) {
		if (p[i] > 0x20 && p[i] < 0x7f && p[i] != '%') {
			r->buf[r->len++] = (char)p[i];
		} else {
			r->buf[r->len++] = '%';
			r->buf[r->len++] = hex[p[i] >> 4];
			r->buf[r->len++] = hex[p[i] & 15];
		}
	}
}

static void
put_str(struct rec *r, const char *s)
{
	put_enc(r, s, strlen(s));
}

static bool
rec_begin(struct rec *r, const char *op)
{
	if (trace_fd < 0)
		return false;
	r->len = 0;
	put_fmt(r, "%ld %ld %s", (long)getpid(), (long)syscall(SYS_gettid),
		op);
	return true;
}

static void
rec_end(struct rec *r)
{
	struct stat sb;
	int saved = errno;

	/* the descriptor is still ours (nothing closed and reused it) */
	if (syscall(SYS_fstat, trace_fd, &sb) == 0 && sb.st_dev == trace_dev &&
	    sb.st_ino == trace_ino) {
		r->buf[r->len++] = '\n';
		syscall(SYS_write, trace_fd, r->buf, r->len);
	}
	errno = saved;
}

/* ---- paths -------------------------------------------------------------- */

/* The absolute path of what path names relative to dirfd. */
static void
abspath(int dirfd, const char *path, char *out, size_t size)
{
	char base[PATH_MAX];
	ssize_t n;

	if (path[0] == '/') {
		snprintf(out, size, "%s", path);
		return;
	}
	if (dirfd == AT_FDCWD) {
		if (getcwd(base, sizeof(base)) == NULL)
			snprintf(base, sizeof(base), "?");
	} else {
		char proc[64];
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", dirfd);
		n = readlink(proc, base, sizeof(base) - 1);
		base[n < 0 ? 0 : n] = '\0';
	}
	if ((size_t)snprintf(out, size, "%s/%s", base, path) >= size)
		out[size - 1] = '\0';	/* a truncated path is only noted */
}

static void
fdpath(int fd, char *out, size_t size)
{
	char proc[64];
	ssize_t n;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	n = readlink(proc, out, size - 1);
	out[n < 0 ? 0 : n] = '\0';
}

/* ---- what is recorded --------------------------------------------------- */

static void
rec_open(int fd, const char *path, bool created)
{
	struct rec r;
	struct stat sb;

	if (fd < 0 || fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) ||
	    !rec_begin(&r, created ? "create" : "trunc"))
		return;
	put_fmt(&r, " %llu %llu", (unsigned long long)sb.st_dev,
		(unsigned long long)sb.st_ino);
	put_str(&r, path);
	rec_end(&r);
}

#define AUDIT_MARK "\"type\":\"message\",\"queue\":\""
#define AUDIT_IDS_MAX 256

/* The queue ids of the audit lines in one buffer, as " audit=ID". */
static void
put_audit_ids(struct rec *r, const char *p, size_t n, unsigned *count)
{
	const size_t ml = sizeof(AUDIT_MARK) - 1;
	const char *end = p + n, *m;

	while (*count < AUDIT_IDS_MAX &&
	       (m = memmem(p, (size_t)(end - p), AUDIT_MARK, ml)) != NULL) {
		const char *id = m + ml, *q = id;

		while (q < end && q - id < 32 &&
		       ((*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'f')))
			q++;
		if (q > id) {
			put_fmt(r, " audit=%.*s", (int)(q - id), id);
			(*count)++;
		}
		p = q;
	}
}

/* A write of n octets to fd: data for a regular file, a reply on a
 * socket. */
static void
rec_write(int fd, const struct iovec *iov, int iovcnt)
{
	struct rec r;
	struct stat sb;

	if (trace_fd < 0 || fd == trace_fd || fstat(fd, &sb) < 0)
		return;
	if (S_ISREG(sb.st_mode)) {
		if (!rec_begin(&r, "write"))
			return;
		put_fmt(&r, " %llu %llu", (unsigned long long)sb.st_dev,
			(unsigned long long)sb.st_ino);
		unsigned ids = 0;
		for (int i = 0; i < iovcnt; i++)
			put_audit_ids(&r, iov[i].iov_base, iov[i].iov_len,
				      &ids);
		rec_end(&r);
	} else if (S_ISSOCK(sb.st_mode)) {
		char data[REPLY_MAX];
		size_t n = 0;

		for (int i = 0; i < iovcnt && n < sizeof(data); i++) {
			size_t k = iov[i].iov_len;
			if (k > sizeof(data) - n)
				k = sizeof(data) - n;
			memcpy(data + n, iov[i].iov_base, k);
			n += k;
		}
		if (n == 0 || !rec_begin(&r, "reply"))
			return;
		put_enc(&r, data, n);
		rec_end(&r);
	}
}

static void
rec_write1(int fd, const void *buf, size_t n)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = n};

	rec_write(fd, &iov, 1);
}

static void
rec_fd_op(const char *op, int fd)
{
	struct rec r;
	struct stat sb;

	if (trace_fd < 0 || fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) ||
	    !rec_begin(&r, op))
		return;
	put_fmt(&r, " %llu %llu", (unsigned long long)sb.st_dev,
		(unsigned long long)sb.st_ino);
	rec_end(&r);
}

static void
rec_path_op(const char *op, const char *path, const struct stat *sb)
{
	struct rec r;

	if (!rec_begin(&r, op))
		return;
	if (sb != NULL)
		put_fmt(&r, " %llu %llu", (unsigned long long)sb->st_dev,
			(unsigned long long)sb->st_ino);
	put_str(&r, path);
	rec_end(&r);
}

static void
rec_two_paths(const char *op, const char *from, const char *to)
{
	struct rec r;
	struct stat sb;

	if (trace_fd < 0 || lstat(to, &sb) < 0 || !rec_begin(&r, op))
		return;
	put_fmt(&r, " %llu %llu", (unsigned long long)sb.st_dev,
		(unsigned long long)sb.st_ino);
	put_str(&r, from);
	put_str(&r, to);
	rec_end(&r);
}

/* ---- opening ------------------------------------------------------------ */

static int
traced_openat(int (*real)(int, const char *, int, ...), int dirfd,
	      const char *path, int flags, mode_t mode)
{
	char abs[PATH_MAX];
	bool existed = false;
	struct stat sb;
	int fd, saved;

	if (trace_fd < 0 || !(flags & (O_CREAT | O_TRUNC)))
		return real(dirfd, path, flags, mode);
	abspath(dirfd, path, abs, sizeof(abs));
	if ((flags & O_CREAT) && !(flags & O_EXCL))
		existed = fstatat(dirfd, path, &sb, AT_SYMLINK_NOFOLLOW) == 0;
	else if (!(flags & O_CREAT))
		existed = true;
	fd = real(dirfd, path, flags, mode);
	saved = errno;
	if (fd >= 0 && (!existed || (flags & O_TRUNC)))
		rec_open(fd, abs, !existed);
	errno = saved;
	return fd;
}

static mode_t
open_mode(int flags, va_list ap)
{
	return (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

int
open(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;
	REAL(openat);

	va_start(ap, flags);
	mode = open_mode(flags, ap);
	va_end(ap);
	return traced_openat(real_openat, AT_FDCWD, path, flags, mode);
}

int
open64(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;
	REAL(openat64);

	va_start(ap, flags);
	mode = open_mode(flags, ap);
	va_end(ap);
	return traced_openat(real_openat64, AT_FDCWD, path, flags, mode);
}

int
openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;
	REAL(openat);

	va_start(ap, flags);
	mode = open_mode(flags, ap);
	va_end(ap);
	return traced_openat(real_openat, dirfd, path, flags, mode);
}

int
openat64(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;
	REAL(openat64);

	va_start(ap, flags);
	mode = open_mode(flags, ap);
	va_end(ap);
	return traced_openat(real_openat64, dirfd, path, flags, mode);
}

int
creat(const char *path, mode_t mode)
{
	REAL(openat);

	return traced_openat(real_openat, AT_FDCWD, path,
			     O_CREAT | O_WRONLY | O_TRUNC, mode);
}

/* ---- data --------------------------------------------------------------- */

ssize_t
write(int fd, const void *buf, size_t n)
{
	ssize_t r;
	int saved;
	REAL(write);

	if (trace_fd < 0)
		return real_write(fd, buf, n);
	/* a reply is recorded before it can reach the client */
	struct stat sb;
	bool sock = fstat(fd, &sb) == 0 && S_ISSOCK(sb.st_mode);
	if (sock)
		rec_write1(fd, buf, n);
	r = real_write(fd, buf, n);
	saved = errno;
	if (!sock && r > 0)
		rec_write1(fd, buf, (size_t)r);
	errno = saved;
	return r;
}

ssize_t
writev(int fd, const struct iovec *iov, int iovcnt)
{
	ssize_t r;
	int saved;
	REAL(writev);

	if (trace_fd < 0)
		return real_writev(fd, iov, iovcnt);
	struct stat sb;
	bool sock = fstat(fd, &sb) == 0 && S_ISSOCK(sb.st_mode);
	if (sock)
		rec_write(fd, iov, iovcnt);
	r = real_writev(fd, iov, iovcnt);
	saved = errno;
	if (!sock && r > 0)
		rec_write(fd, iov, iovcnt);
	errno = saved;
	return r;
}

ssize_t
send(int fd, const void *buf, size_t n, int flags)
{
	REAL(send);

	rec_write1(fd, buf, n);
	return real_send(fd, buf, n, flags);
}

ssize_t
sendto(int fd, const void *buf, size_t n, int flags,
       const struct sockaddr *to, socklen_t tolen)
{
	REAL(sendto);

	rec_write1(fd, buf, n);
	return real_sendto(fd, buf, n, flags, to, tolen);
}

ssize_t
sendmsg(int fd, const struct msghdr *msg, int flags)
{
	REAL(sendmsg);

	rec_write(fd, msg->msg_iov, (int)msg->msg_iovlen);
	return real_sendmsg(fd, msg, flags);
}

#define FILE_WRITE(ret, name, params, args)                                 \
	ret name params                                                     \
	{                                                                   \
		ret r;                                                      \
		int saved;                                                  \
		REAL(name);                                                 \
                                                                            \
		r = real_##name args;                                       \
		saved = errno;                                              \
		if (r >= 0)                                                 \
			rec_fd_op("write", fd);                             \
		errno = saved;                                              \
		return r;                                                   \
	}

FILE_WRITE(ssize_t, pwrite, (int fd, const void *buf, size_t n, off_t off),
	   (fd, buf, n, off))
FILE_WRITE(ssize_t, pwrite64,
	   (int fd, const void *buf, size_t n, off64_t off), (fd, buf, n, off))
FILE_WRITE(ssize_t, pwritev,
	   (int fd, const struct iovec *iov, int iovcnt, off_t off),
	   (fd, iov, iovcnt, off))
FILE_WRITE(int, ftruncate, (int fd, off_t len), (fd, len))
FILE_WRITE(int, ftruncate64, (int fd, off64_t len), (fd, len))
FILE_WRITE(int, fallocate, (int fd, int mode, off_t off, off_t len),
	   (fd, mode, off, len))

/* ---- syncs -------------------------------------------------------------- */

static void
sync_delay(void)
{
	struct timespec ts;

	if (delay_ms <= 0)
		return;
	ts.tv_sec = delay_ms / 1000;
	ts.tv_nsec = (delay_ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int
traced_fsync(const char *op, int (*real)(int), int fd)
{
	char path[PATH_MAX];
	struct stat sb;
	struct rec r;
	int ret, saved;

	sync_delay();
	fdpath(fd, path, sizeof(path));
	if (fail_text != NULL && strstr(path, fail_text) != NULL) {
		ret = -1;
		saved = EIO;
	} else {
		ret = real(fd);
		saved = errno;
	}
	if (fstat(fd, &sb) == 0 && rec_begin(&r, op)) {
		put_fmt(&r, " %d %llu %llu %d", ret,
			(unsigned long long)sb.st_dev,
			(unsigned long long)sb.st_ino,
			S_ISDIR(sb.st_mode) ? 1 : 0);
		put_str(&r, path);
		rec_end(&r);
	}
	errno = saved;
	return ret;
}

int
fsync(int fd)
{
	REAL(fsync);

	return traced_fsync("fsync", real_fsync, fd);
}

int
fdatasync(int fd)
{
	REAL(fdatasync);

	return traced_fsync("fdatasync", real_fdatasync, fd);
}

int
syncfs(int fd)
{
	struct stat sb;
	struct rec r;
	int ret, saved;
	REAL(syncfs);

	sync_delay();
	if (fail_syncfs) {
		ret = -1;
		saved = EIO;
	} else {
		ret = real_syncfs(fd);
		saved = errno;
	}
	if (fstat(fd, &sb) == 0 && rec_begin(&r, "syncfs")) {
		put_fmt(&r, " %d %llu", ret, (unsigned long long)sb.st_dev);
		rec_end(&r);
	}
	errno = saved;
	return ret;
}

void
sync(void)
{
	struct rec r;
	REAL(sync);

	real_sync();
	if (rec_begin(&r, "sync"))
		rec_end(&r);
}

/* ---- names -------------------------------------------------------------- */

int
renameat2(int olddirfd, const char *old, int newdirfd, const char *new,
	  unsigned int flags)
{
	char a[PATH_MAX], b[PATH_MAX];
	int ret, saved;
	REAL(renameat2);

	ret = real_renameat2(olddirfd, old, newdirfd, new, flags);
	saved = errno;
	if (ret == 0 && trace_fd >= 0) {
		abspath(olddirfd, old, a, sizeof(a));
		abspath(newdirfd, new, b, sizeof(b));
		rec_two_paths("rename", a, b);
	}
	errno = saved;
	return ret;
}

int
renameat(int olddirfd, const char *old, int newdirfd, const char *new)
{
	return renameat2(olddirfd, old, newdirfd, new, 0);
}

int
rename(const char *old, const char *new)
{
	return renameat2(AT_FDCWD, old, AT_FDCWD, new, 0);
}

int
linkat(int olddirfd, const char *old, int newdirfd, const char *new,
       int flags)
{
	char a[PATH_MAX], b[PATH_MAX];
	int ret, saved;
	REAL(linkat);

	ret = real_linkat(olddirfd, old, newdirfd, new, flags);
	saved = errno;
	if (ret == 0 && trace_fd >= 0) {
		abspath(olddirfd, old, a, sizeof(a));
		abspath(newdirfd, new, b, sizeof(b));
		rec_two_paths("link", a, b);
	}
	errno = saved;
	return ret;
}

int
link(const char *old, const char *new)
{
	return linkat(AT_FDCWD, old, AT_FDCWD, new, 0);
}

int
unlinkat(int dirfd, const char *path, int flags)
{
	char abs[PATH_MAX];
	struct stat sb;
	bool known = false;
	int ret, saved;
	REAL(unlinkat);

	if (trace_fd >= 0) {
		abspath(dirfd, path, abs, sizeof(abs));
		known = fstatat(dirfd, path, &sb, AT_SYMLINK_NOFOLLOW) == 0;
	}
	ret = real_unlinkat(dirfd, path, flags);
	saved = errno;
	if (ret == 0 && trace_fd >= 0) {
		if (flags & AT_REMOVEDIR)
			rec_path_op("rmdir", abs, NULL);
		else if (known)
			rec_path_op("unlink", abs, &sb);
	}
	errno = saved;
	return ret;
}

int
unlink(const char *path)
{
	return unlinkat(AT_FDCWD, path, 0);
}

int
rmdir(const char *path)
{
	return unlinkat(AT_FDCWD, path, AT_REMOVEDIR);
}

int
mkdirat(int dirfd, const char *path, mode_t mode)
{
	char abs[PATH_MAX];
	struct stat sb;
	int ret, saved;
	REAL(mkdirat);

	ret = real_mkdirat(dirfd, path, mode);
	saved = errno;
	if (ret == 0 && trace_fd >= 0 &&
	    fstatat(dirfd, path, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
		abspath(dirfd, path, abs, sizeof(abs));
		rec_path_op("mkdir", abs, &sb);
	}
	errno = saved;
	return ret;
}

int
mkdir(const char *path, mode_t mode)
{
	return mkdirat(AT_FDCWD, path, mode);
}
