/*
 * The queue on disk (see queue.h and docs/queue-format.md): ids, reading
 * queue files and state files, moving messages between the directories,
 * and what `godwit queue list|show` (cli/cmd_queue.c) read. The records'
 * text is mail/envelope.c's.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"
#include "lib/xalloc.h"
#include "store/queue.h"

const char *const queue_states[] = {"incoming", "active", "deferred", "hold",
				    NULL};

static unsigned id_slot;
static unsigned id_counter;

void
queue_id_init(unsigned slot)
{
	uint32_t r = 0;

	id_slot = slot & 0x3f;
	/* a random start keeps ids of a restarted worker apart from the
	 * previous one's within the same millisecond */
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (uint32_t)getpid();
	id_counter = r;
}

void
queue_id_new(char id[QUEUE_ID_LEN + 1])
{
	unsigned low = (id_slot << 14) | (id_counter++ & 0x3fff);

	snprintf(id, QUEUE_ID_LEN + 1, "%011llx%05x",
		 (unsigned long long)(now_ms() & 0xfffffffffffULL), low);
}

/* ---- reading -------------------------------------------------------- */

#define ENVELOPE_MAX (1024 * 1024)

int
queue_envelope_read(const char *path, struct queue_envelope *e,
		    uint64_t *data_off_r, char **error_r)
{
	char *buf = NULL, endbuf[sizeof(QUEUE_END)];
	size_t hdr_len, want;
	struct stat st;
	ssize_t n;
	int fd;

	memset(e, 0, sizeof(*e));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		*error_r = xasprintf("%s: not a regular file", path);
		goto fail;
	}
	want = st.st_size < ENVELOPE_MAX ? (size_t)st.st_size : ENVELOPE_MAX;
	buf = xmalloc(want + 1);
	if ((n = pread(fd, buf, want, 0)) < 0 || (size_t)n != want) {
		*error_r = xasprintf("%s: short read", path);
		goto fail;
	}
	if (queue_envelope_parse(buf, want, e, &hdr_len, error_r) < 0)
		goto fail;
	/* e->size is at most QUEUE_SIZE_MAX and hdr_len at most
	 * ENVELOPE_MAX: the sum cannot wrap */
	if ((uint64_t)st.st_size !=
	    hdr_len + e->size + (sizeof(QUEUE_END) - 1)) {
		queue_envelope_clear(e);
		*error_r = xasprintf("%s: size does not match (torn file?)",
				     path);
		goto fail;
	}
	if (pread(fd, endbuf, sizeof(QUEUE_END) - 1,
		  (off_t)(hdr_len + e->size)) != sizeof(QUEUE_END) - 1 ||
	    memcmp(endbuf, QUEUE_END, sizeof(QUEUE_END) - 1) != 0) {
		queue_envelope_clear(e);
		*error_r = xasprintf("%s: end marker missing (torn file?)",
				     path);
		goto fail;
	}
	*data_off_r = hdr_len;
	free(buf);
	close(fd);
	return 0;
fail:
	free(buf);
	close(fd);
	return -1;
}

/* ---- delivery state ------------------------------------------------- */

#define STATE_MAX (1024 * 1024)

static char *
state_path(const char *data_dir, const char *id)
{
	return xasprintf("%s/queue/state/%s", data_dir, id);
}

int
queue_state_read(const char *data_dir, const char *id, size_t nrcpts,
		 struct queue_state *st, char **error_r)
{
	char *path = state_path(data_dir, id), *buf = NULL;
	const char *why = NULL;
	struct stat sb;
	int fd, ret = 0;

	queue_state_init(st, nrcpts);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		if (errno == ENOENT) {
			free(path);
			return 0;
		}
		why = strerror(errno);
		goto bad;
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) ||
	    sb.st_size > STATE_MAX) {
		why = "not a regular file, or too large";
		goto bad;
	}
	buf = xmalloc((size_t)sb.st_size + 1);
	if (read(fd, buf, (size_t)sb.st_size) != sb.st_size) {
		why = "short read";
		goto bad;
	}
	buf[sb.st_size] = '\0';
	if (strlen(buf) != (size_t)sb.st_size) {
		why = "a NUL octet";
		goto bad;
	}
	if (queue_state_parse(buf, st, &why) == 0)
		goto out;
bad:
	*error_r = xasprintf("%s: %s", path, why);
	queue_state_clear(st);
	queue_state_init(st, nrcpts);
	ret = -1;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	free(path);
	return ret;
}

int
queue_state_write_batch(const char *data_dir, const char *const *ids,
			const struct queue_state *const *sts, size_t n,
			char **errors_r)
{
	char *dir = xasprintf("%s/queue/state", data_dir);
	size_t renamed = 0;
	int ret = 0;

	for (size_t i = 0; i < n; i++) {
		char *path = state_path(data_dir, ids[i]), *tmp, *text;
		size_t len;
		int fd;

		errors_r[i] = NULL;
		text = queue_state_format(sts[i], &len);
		tmp = xasprintf("%s.tmp", path);
		fd = open(tmp,
			  O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
			  0640);
		if (fd < 0 || write_full(fd, text, len) < 0 ||
		    fdatasync(fd) < 0 || rename(tmp, path) < 0) {
			errors_r[i] = xasprintf("%s: %s", path, strerror(errno));
			unlink(tmp);
			ret = -1;
		} else {
			renamed++;
		}
		if (fd >= 0)
			close(fd);
		free(text);
		free(tmp);
		free(path);
	}
	/* the new names, one fsync for them all */
	if (renamed > 0 && fsync_dir(dir) < 0) {
		int e = errno;
		for (size_t i = 0; i < n; i++)
			if (errors_r[i] == NULL)
				errors_r[i] = xasprintf("%s: %s", dir,
							strerror(e));
		ret = -1;
	}
	free(dir);
	return ret;
}

int
queue_state_write(const char *data_dir, const char *id,
		  const struct queue_state *st, char **error_r)
{
	char *err = NULL;

	if (queue_state_write_batch(data_dir, &id, &st, 1, &err) == 0)
		return 0;
	*error_r = err;
	return -1;
}

void
queue_state_remove(const char *data_dir, const char *id)
{
	char *path = state_path(data_dir, id);

	unlink(path);
	free(path);
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in queue/<dir> that keep() accepts, in directory order. */
static char **
dir_names(const char *data_dir, const char *dir, bool (*keep)(const char *),
	  size_t *n_r)
{
	char *path = xasprintf("%s/queue/%s", data_dir, dir);
	DIR *dp = opendir(path);
	struct dirent *de;
	char **v = NULL;
	size_t n = 0, cap = 0;

	free(path);
	*n_r = 0;
	if (dp == NULL)
		return NULL;
	while ((de = readdir(dp)) != NULL) {
		if (!keep(de->d_name))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			v = xreallocarray(v, cap, sizeof(*v));
		}
		v[n++] = xstrdup(de->d_name);
	}
	closedir(dp);
	*n_r = n;
	return v;
}

char **
queue_ids(const char *data_dir, const char *dir, size_t *n_r)
{
	char **v = dir_names(data_dir, dir, queue_id_valid, n_r);

	if (*n_r > 0)
		qsort(v, *n_r, sizeof(*v), cmp_names);
	return v;
}

int
queue_locate(const char *data_dir, const char *id)
{
	for (int i = 0; queue_states[i] != NULL; i++) {
		char *path = xasprintf("%s/queue/%s/%s", data_dir,
				       queue_states[i], id);
		int ok = access(path, F_OK) == 0;
		free(path);
		if (ok)
			return i;
	}
	return -1;
}

/* Makes queue/<to>/<id> name the message in queue/<from>/ (see
 * queue_move_batch). 0, or -1 with errno. */
static int
move_entry(const char *data_dir, const char *id, const char *from,
	   const char *to, bool linking)
{
	char *a = xasprintf("%s/queue/%s/%s", data_dir, from, id);
	char *b = xasprintf("%s/queue/%s/%s", data_dir, to, id);
	struct stat sa, sb;
	int r, saved;

	if (linking) {
		r = link(a, b);
		/* left in both by a power cut during an earlier move */
		if (r < 0 && errno == EEXIST && stat(a, &sa) == 0 &&
		    stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
		    sa.st_ino == sb.st_ino)
			r = 0;
	} else {
		r = rename(a, b);
	}
	saved = errno;
	free(a);
	free(b);
	errno = saved;
	return r;
}

static int
cmp_idp(const void *a, const void *b)
{
	return strcmp(**(const char *const *const *)a,
		      **(const char *const *const *)b);
}

ssize_t
queue_move_batch(const char *data_dir, const char *from, const char *to,
		 const char *const *ids, size_t n, bool *moved_r)
{
	bool linking = strcmp(from, "incoming") == 0;
	const char *const **order;
	char *dir;
	ssize_t moved = 0;
	int err = 0;

	if (n == 0)
		return 0;
	memset(moved_r, 0, n * sizeof(*moved_r));
	order = xcalloc(n, sizeof(*order));
	/* in id order, each id once: a second link() of the same name would
	 * find the first and take it for one left by a power cut */
	for (size_t i = 0; i < n; i++)
		order[i] = &ids[i];
	qsort(order, n, sizeof(*order), cmp_idp);
	for (size_t k = 0; k < n; k++) {
		size_t i = (size_t)(order[k] - ids);
		if (!queue_id_valid(ids[i]) ||
		    (k > 0 && strcmp(*order[k - 1], ids[i]) == 0)) {
			err = EINVAL;
			continue;
		}
		if (move_entry(data_dir, ids[i], from, to, linking) < 0) {
			err = errno;
			continue;
		}
		moved_r[i] = true;
		moved++;
	}
	free(order);
	/* one fsync of <to> for them all, before any old name goes */
	dir = xasprintf("%s/queue/%s", data_dir, to);
	if (moved > 0 && fsync_dir(dir) < 0) {
		err = errno;
		memset(moved_r, 0, n * sizeof(*moved_r));
		moved = -1;
	}
	free(dir);
	for (size_t i = 0; linking && moved > 0 && i < n; i++) {
		char *a;
		if (!moved_r[i])
			continue;
		a = xasprintf("%s/queue/%s/%s", data_dir, from, ids[i]);
		if (unlink(a) < 0) {
			/* left in both: taken again, as one, later */
			err = errno;
			moved_r[i] = false;
			moved--;
		}
		free(a);
	}
	errno = err;
	return moved;
}

int
queue_move(const char *data_dir, const char *id, const char *from,
	   const char *to)
{
	bool moved;

	return queue_move_batch(data_dir, from, to, &id, 1, &moved) == 1
		   ? 0
		   : -1;
}

int
queue_file_op(const char *data_dir, const char *op, const char *id)
{
	int where = queue_locate(data_dir, id);
	const char *w;

	if (where < 0)
		return 0;
	w = queue_states[where];
	if (strcmp(op, "hold") == 0) {
		if (strcmp(w, "incoming") != 0 && strcmp(w, "deferred") != 0)
			return 0;
		return queue_move(data_dir, id, w, "hold") < 0 ? -1 : 1;
	}
	if (strcmp(op, "release") == 0) {
		struct queue_state st;
		struct queue_envelope e;
		uint64_t off;
		char *path, *err = NULL;

		if (strcmp(w, "hold") != 0)
			return 0;
		/* due now: the next attempt recorded is cleared */
		path = xasprintf("%s/queue/hold/%s", data_dir, id);
		if (queue_envelope_read(path, &e, &off, &err) == 0) {
			if (queue_state_read(data_dir, id, e.nrcpts, &st,
					     &err) == 0 &&
			    st.attempts > 0) {
				st.next_attempt = 0;
				free(err);
				err = NULL;
				queue_state_write(data_dir, id, &st, &err);
			}
			queue_state_clear(&st);
			queue_envelope_clear(&e);
		}
		free(err);
		free(path);
		return queue_move(data_dir, id, "hold", "deferred") < 0 ? -1
									: 1;
	}
	if (strcmp(op, "delete") == 0) {
		char *path = xasprintf("%s/queue/%s/%s", data_dir, w, id);
		int r = unlink(path);
		free(path);
		if (r < 0)
			return errno == ENOENT ? 0 : -1;
		queue_state_remove(data_dir, id);
		return 1;
	}
	errno = EINVAL;
	return -1;
}

/* ---- what `godwit queue list|show` read ------------------------------- */

static bool
not_dot_file(const char *name)
{
	return name[0] != '.';
}

char **
queue_dir_names(const char *data_dir, const char *state, size_t *n_r)
{
	return dir_names(data_dir, state, not_dot_file, n_r);
}

char *
queue_path(const char *data_dir, const char *state, const char *name)
{
	return xasprintf("%s/queue/%s/%s", data_dir, state, name);
}

char *
queue_message_header(const char *path, uint64_t data_off)
{
	FILE *f = fopen(path, "r"), *out;
	char line[1024], *text = NULL;
	size_t len;

	if (f == NULL)
		return NULL;
	if (fseeko(f, (off_t)data_off, SEEK_SET) == 0 &&
	    (out = open_memstream(&text, &len)) != NULL) {
		/* up to the blank line, in the pieces fgets() gives */
		while (fgets(line, sizeof(line), f) != NULL && line[0] != '\n')
			fputs(line, out);
		fclose(out);
	}
	fclose(f);
	return text;
}

/* ---- injecting ------------------------------------------------------ */

static int
inject_write(int fd, struct queue_envelope *e, const char *msg, size_t len,
	     uid_t uid, gid_t gid)
{
	size_t hlen;
	char *hdr;
	int r;

	e->size = len;
	hdr = queue_envelope_format(e, &hlen);
	r = hdr != NULL && write_full(fd, hdr, hlen) == 0 &&
	    write_full(fd, msg, len) == 0 &&
	    write_full(fd, QUEUE_END, sizeof(QUEUE_END) - 1) == 0 &&
	    (uid == (uid_t)-1 || fchown(fd, uid, gid) == 0) &&
	    fdatasync(fd) == 0 ? 0 : -1;
	free(hdr);
	return r;
}

int
queue_inject(const char *data_dir, struct queue_envelope *e, const char *msg,
	     size_t len, uid_t uid, gid_t gid, char **error_r)
{
	char *tmp = queue_path(data_dir, "tmp", e->id);
	char *dst = queue_path(data_dir, "incoming", e->id);
	char *dir = xasprintf("%s/queue/incoming", data_dir);
	int fd, r = -1;

	/* renamed (the runner's inotify waits for IN_MOVED_TO), but never
	 * over a file of the same id */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd < 0 || inject_write(fd, e, msg, len, uid, gid) < 0 ||
	    renameat2(AT_FDCWD, tmp, AT_FDCWD, dst, RENAME_NOREPLACE) < 0) {
		*error_r = xasprintf("%s: %s", fd < 0 ? tmp : dst,
				     strerror(errno));
		if (fd >= 0)
			unlink(tmp);
	} else if (fsync_dir(dir) < 0) {
		*error_r = xasprintf("%s: %s", dir, strerror(errno));
		unlink(dst);
	} else {
		r = 0;
	}
	if (fd >= 0)
		close(fd);
	free(tmp);
	free(dst);
	free(dir);
	return r;
}
