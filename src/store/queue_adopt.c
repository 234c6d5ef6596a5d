/*
 * Another node's queue into ours: see queue_adopt.h. The steps for one
 * source message S (id i, taken here as id L), each durable before the
 * next:
 *   1. P = queue/adopt/<i>.<L>.q, S's file (with L in its envelope when
 *      L is not i), and its state file as <i>.<L>.s; adopt/ fsynced;
 *   2. T = queue/adopt/<i>.<L>.t, S's SHA-256, then adopt/ fsynced;
 *   3. the commit: .s to queue/state/L, P to queue/incoming/L (or
 *      hold/L), each directory fsynced;
 *   4. S (every name of i at the source) and its state file unlinked,
 *      the source directories fsynced;
 *   5. T unlinked.
 * Running again: S with a T that holds S's hash was copied; P still
 * there means step 3 did not happen (do it), P gone means it did (the
 * runner may have delivered L already: only steps 4 and 5 remain). A P
 * without T is a copy never recorded: thrown away and made again.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "store/queue_adopt.h"
#include "store/queue.h"
#include "lib/util.h"
#include "lib/xalloc.h"

#define HASH_HEX 64
#define STATE_MAX (16 * 1024 * 1024)

/* The source states, in the order they are taken: a message in both
 * incoming/ and active/ (one file, two names after a crash) is taken
 * once, from the first. */
static const char *const src_states[] = {"active", "incoming", "deferred",
					 "hold"};

struct adopt {
	const char *data_dir;
	char *srcq;		/* the source's queue directory */
	char *adopt_dir;	/* our queue/adopt */
	queue_adopt_fn *fn;
	void *arg;
	struct queue_adopt_stats *st;
};

/* SHA-256 of the file at path, in hex. */
static int
hash_file(const char *path, char hex_r[HASH_HEX + 1])
{
	unsigned char buf[65536], md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), r = -1;
	ssize_t n;

	if (fd < 0 || ctx == NULL ||
	    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		goto out;
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || EVP_DigestUpdate(ctx, buf, (size_t)n) != 1)
			goto out;
	}
	if (EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen * 2 == HASH_HEX) {
		for (unsigned i = 0; i < mdlen; i++)
			snprintf(hex_r + 2 * i, 3, "%02x", md[i]);
		r = 0;
	}
out:
	if (fd >= 0)
		close(fd);
	EVP_MD_CTX_free(ctx);
	return r;
}

/* Copies sfd from offset from to its end onto dfd. */
static int
copy_from(int sfd, off_t from, int dfd)
{
	char buf[65536];
	ssize_t n;

	while ((n = pread(sfd, buf, sizeof(buf), from)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || write_full(dfd, buf, (size_t)n) < 0)
			return -1;
		from += n;
	}
	return 0;
}

/* Whether path exists (lstat). */
static bool
exists(const char *path)
{
	struct stat sb;

	return lstat(path, &sb) == 0;
}

/* Whether id is free here: no message, no state file, no adoption
 * staged under it. */
static bool
id_free(const struct adopt *a, const char *id)
{
	char *path = xasprintf("%s/queue/state/%s", a->data_dir, id);
	bool r = queue_locate(a->data_dir, id) < 0 && !exists(path);
	DIR *d;
	struct dirent *de;

	free(path);
	if (r && (d = opendir(a->adopt_dir)) != NULL) {
		while (r && (de = readdir(d)) != NULL) {
			const char *dot = strchr(de->d_name, '.');
			r = dot == NULL ||
			    strncmp(dot + 1, id, QUEUE_ID_LEN) != 0;
		}
		closedir(d);
	}
	return r;
}

/* The record of src_id whose hash is hex, if there is one: its local id
 * into id_r. 1 found, 0 none. */
static int
find_record(const struct adopt *a, const char *src_id, const char *hex,
	    char id_r[QUEUE_ID_LEN + 1])
{
	DIR *d = opendir(a->adopt_dir);
	struct dirent *de;
	int found = 0;

	if (d == NULL)
		return 0;
	while (!found && (de = readdir(d)) != NULL) {
		const char *n = de->d_name;
		char *path, buf[HASH_HEX + 2];
		ssize_t len;
		int fd;

		/* <src_id>.<id>.t */
		if (strlen(n) != 2 * QUEUE_ID_LEN + 3 ||
		    strncmp(n, src_id, QUEUE_ID_LEN) != 0 ||
		    n[QUEUE_ID_LEN] != '.' || strcmp(n + 2 * QUEUE_ID_LEN + 1,
						    ".t") != 0)
			continue;
		path = xasprintf("%s/%s", a->adopt_dir, n);
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		free(path);
		if (fd < 0)
			continue;
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len >= HASH_HEX && memcmp(buf, hex, HASH_HEX) == 0) {
			memcpy(id_r, n + QUEUE_ID_LEN + 1, QUEUE_ID_LEN);
			id_r[QUEUE_ID_LEN] = '\0';
			found = queue_id_valid(id_r);
		}
	}
	closedir(d);
	return found;
}

/* A new file at path with len octets of data, fdatasync'd. */
static int
write_small(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
				O_NOFOLLOW, 0640);

	if (fd < 0)
		return -1;
	if (write_full(fd, data, len) < 0 || fdatasync(fd) < 0) {
		int saved = errno;
		close(fd);
		unlink(path);
		errno = saved;
		return -1;
	}
	return close(fd);
}

/* The source's state file of src_id: its text (NULL: none) into
 * *text_r. -1 if it cannot be read; one that does not parse is left
 * out (the runner would ignore it too: every recipient pending). */
static int
read_state(const struct adopt *a, const char *src_id, char **text_r,
	   size_t *len_r)
{
	char *path = xasprintf("%s/state/%s", a->srcq, src_id), *buf, *copy;
	struct queue_state qs;
	const char *why;
	struct stat sb;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n;

	free(path);
	*text_r = NULL;
	*len_r = 0;
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) ||
	    sb.st_size > STATE_MAX) {
		close(fd);
		return 0;
	}
	buf = xmalloc((size_t)sb.st_size + 1);
	n = read(fd, buf, (size_t)sb.st_size);
	close(fd);
	if (n != sb.st_size) {
		free(buf);
		return -1;
	}
	buf[n] = '\0';
	copy = xstrdup(buf);
	memset(&qs, 0, sizeof(qs));
	if (strlen(buf) == (size_t)n && queue_state_parse(copy, &qs, &why) == 0) {
		*text_r = buf;
		*len_r = (size_t)n;
	} else {
		free(buf);
	}
	queue_state_clear(&qs);
	free(copy);
	return 0;
}

/* Staged files of src_id that no record names (a crash in step 1 or 2,
 * before T): thrown away. */
static void
drop_unrecorded(const struct adopt *a, const char *src_id)
{
	DIR *d = opendir(a->adopt_dir);
	struct dirent *de;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		const char *n = de->d_name;
		char *t;

		/* <src_id>.<id>.q or .s */
		if (strlen(n) != 2 * QUEUE_ID_LEN + 3 ||
		    strncmp(n, src_id, QUEUE_ID_LEN) != 0 ||
		    n[QUEUE_ID_LEN] != '.' ||
		    (strcmp(n + 2 * QUEUE_ID_LEN + 1, ".q") != 0 &&
		     strcmp(n + 2 * QUEUE_ID_LEN + 1, ".s") != 0))
			continue;
		t = xasprintf("%s/%.*s.t", a->adopt_dir, 2 * QUEUE_ID_LEN + 1,
			      n);
		if (!exists(t))
			unlinkat(dirfd(d), n, 0);
		free(t);
	}
	closedir(d);
}

/* Step 1: P (and .s) for S, with id L. */
static int
stage(const struct adopt *a, const char *spath, const char *src_id,
      const char *id, const struct queue_envelope *e, uint64_t off)
{
	char *p = xasprintf("%s/%s.%s.q", a->adopt_dir, src_id, id);
	char *s = xasprintf("%s/%s.%s.s", a->adopt_dir, src_id, id);
	char *state = NULL;
	size_t slen;
	int sfd = -1, dfd = -1, r = -1;

	unlink(p);
	unlink(s);
	if (read_state(a, src_id, &state, &slen) < 0)
		goto out;
	if (state != NULL && write_small(s, state, slen) < 0)
		goto out;
	if ((sfd = open(spath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0 ||
	    (dfd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640)) < 0)
		goto out;
	if (strcmp(id, src_id) == 0) {
		if (copy_from(sfd, 0, dfd) < 0)
			goto out;
	} else {
		struct queue_envelope ne = *e;
		size_t hlen;
		char *hdr;

		memcpy(ne.id, id, sizeof(ne.id));
		hdr = queue_envelope_format(&ne, &hlen);
		r = write_full(dfd, hdr, hlen);
		free(hdr);
		if (r < 0 || copy_from(sfd, (off_t)off, dfd) < 0) {
			r = -1;
			goto out;
		}
	}
	r = fdatasync(dfd);
out:
	if (sfd >= 0)
		close(sfd);
	if (dfd >= 0 && close(dfd) < 0)
		r = -1;
	if (r < 0) {
		int saved = errno;
		unlink(p);
		unlink(s);
		errno = saved;
	}
	free(state);
	free(p);
	free(s);
	return r;
}

/* Step 3: the staged files into our queue. */
static int
commit(const struct adopt *a, const char *src_id, const char *id,
       const char *state)
{
	char *p = xasprintf("%s/%s.%s.q", a->adopt_dir, src_id, id);
	char *s = xasprintf("%s/%s.%s.s", a->adopt_dir, src_id, id);
	char *sdst = xasprintf("%s/queue/state/%s", a->data_dir, id);
	char *sdir = xasprintf("%s/queue/state", a->data_dir);
	char *qdst = xasprintf("%s/queue/%s/%s", a->data_dir, state, id);
	char *qdir = xasprintf("%s/queue/%s", a->data_dir, state);
	int r = -1;

	if (exists(s) && (rename(s, sdst) < 0 || fsync_dir(sdir) < 0))
		goto out;
	if (exists(p) && (rename(p, qdst) < 0 || fsync_dir(qdir) < 0))
		goto out;
	r = 0;
out:
	free(p);
	free(s);
	free(sdst);
	free(sdir);
	free(qdst);
	free(qdir);
	return r;
}

/* Step 4: every name of src_id at the source, and its state file. */
static int
remove_source(const struct adopt *a, const char *src_id)
{
	int r = 0;

	for (size_t k = 0; k < sizeof(src_states) / sizeof(src_states[0]);
	     k++) {
		char *path = xasprintf("%s/%s/%s", a->srcq, src_states[k],
				       src_id);
		char *dir = xasprintf("%s/%s", a->srcq, src_states[k]);

		if (unlink(path) == 0) {
			if (fsync_dir(dir) < 0)
				r = -1;
		} else if (errno != ENOENT) {
			r = -1;
		}
		free(path);
		free(dir);
	}
	{
		char *path = xasprintf("%s/state/%s", a->srcq, src_id);
		char *dir = xasprintf("%s/state", a->srcq);
		if (unlink(path) == 0)
			fsync_dir(dir);
		free(path);
		free(dir);
	}
	return r;
}

static void
report(const struct adopt *a, enum queue_adopt_what what, const char *sstate,
       const char *src_id, const char *id, const char *state, const char *why)
{
	switch (what) {
	case ADOPT_MOVED:
		a->st->moved++;
		break;
	case ADOPT_FINISHED:
		a->st->finished++;
		break;
	case ADOPT_TORN:
		a->st->torn++;
		break;
	case ADOPT_FAILED:
		a->st->failed++;
		break;
	}
	if (a->fn != NULL)
		a->fn(a->arg, what, sstate, src_id, id, state, why);
}

/* One source message: sstate/src_id. */
static void
adopt_one(struct adopt *a, const char *sstate, const char *src_id)
{
	char *spath = xasprintf("%s/%s/%s", a->srcq, sstate, src_id);
	char *err = NULL, hex[HASH_HEX + 1], id[QUEUE_ID_LEN + 1];
	const char *state = strcmp(sstate, "hold") == 0 ? "hold" : "incoming";
	struct queue_envelope e;
	uint64_t off = 0;
	enum queue_adopt_what what = ADOPT_MOVED;
	char *tpath = NULL;

	if (!exists(spath))
		goto out;	/* taken with another name of it */
	if (queue_envelope_read(spath, &e, &off, &err) < 0) {
		report(a, ADOPT_TORN, sstate, src_id, NULL, NULL, err);
		goto out;
	}
	if (strcmp(e.id, src_id) != 0) {
		report(a, ADOPT_TORN, sstate, src_id, NULL, NULL,
		       "the id in the file is not its name");
		goto clear;
	}
	if (hash_file(spath, hex) < 0) {
		report(a, ADOPT_FAILED, sstate, src_id, NULL, NULL,
		       strerror(errno));
		goto clear;
	}
	if (find_record(a, src_id, hex, id)) {
		what = ADOPT_FINISHED;
	} else {
		/* a copy never recorded (a crash in step 1 or 2) goes */
		drop_unrecorded(a, src_id);
		if (id_free(a, src_id))
			memcpy(id, src_id, sizeof(id));
		else
			do
				queue_id_new(id);
			while (!id_free(a, id));
		tpath = xasprintf("%s/%s.%s.t", a->adopt_dir, src_id, id);
		/* P's name durable before T's: a record must never
		 * outlive a copy that was not made */
		if (stage(a, spath, src_id, id, &e, off) < 0 ||
		    fsync_dir(a->adopt_dir) < 0 ||
		    write_small(tpath, hex, HASH_HEX) < 0 ||
		    fsync_dir(a->adopt_dir) < 0) {
			report(a, ADOPT_FAILED, sstate, src_id, NULL, NULL,
			       strerror(errno));
			goto clear;
		}
	}
	free(tpath);
	tpath = xasprintf("%s/%s.%s.t", a->adopt_dir, src_id, id);
	if (commit(a, src_id, id, state) < 0 || remove_source(a, src_id) < 0) {
		report(a, ADOPT_FAILED, sstate, src_id, id, state,
		       strerror(errno));
		goto clear;
	}
	unlink(tpath);
	report(a, what, sstate, src_id, id, state, NULL);
clear:
	queue_envelope_clear(&e);
out:
	free(tpath);
	free(err);
	free(spath);
}

static int
cmp_names(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* The names in dir that are queue ids, sorted. */
static char **
list_ids(const char *dir, size_t *n_r)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **v = NULL;
	size_t n = 0;

	*n_r = 0;
	if (d == NULL)
		return NULL;
	while ((de = readdir(d)) != NULL) {
		if (!queue_id_valid(de->d_name))
			continue;
		v = xreallocarray(v, n + 1, sizeof(*v));
		v[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_names);
	*n_r = n;
	return v;
}

/* src's queue directory: src/queue, or src itself when it is one. */
static char *
source_queue(const char *src)
{
	char *q = xasprintf("%s/queue/incoming", src);
	char *r = NULL;
	struct stat sb;

	if (stat(q, &sb) == 0 && S_ISDIR(sb.st_mode))
		r = xasprintf("%s/queue", src);
	free(q);
	if (r != NULL)
		return r;
	q = xasprintf("%s/incoming", src);
	if (stat(q, &sb) == 0 && S_ISDIR(sb.st_mode))
		r = xstrdup(src);
	free(q);
	return r;
}

int
queue_adopt(const char *data_dir, const char *src, queue_adopt_fn *fn,
	    void *arg, struct queue_adopt_stats *st, char **error_r)
{
	struct adopt a = {.data_dir = data_dir, .fn = fn, .arg = arg, .st = st};
	char *ours = xasprintf("%s/queue", data_dir), *r1 = NULL, *r2 = NULL;
	int r = -1;

	memset(st, 0, sizeof(*st));
	if ((a.srcq = source_queue(src)) == NULL) {
		*error_r = xasprintf("%s: neither a data_dir with queue/ nor a "
				     "queue directory (no incoming/)",
				     src);
		goto out;
	}
	r1 = realpath(a.srcq, NULL);
	r2 = realpath(ours, NULL);
	if (r1 == NULL || r2 == NULL || strcmp(r1, r2) == 0) {
		*error_r = xasprintf("%s: %s", src,
				     r1 == NULL || r2 == NULL
					 ? strerror(errno)
					 : "this is our own queue");
		goto out;
	}
	a.adopt_dir = xasprintf("%s/queue/adopt", data_dir);
	{
		struct stat sb;
		if (stat(a.adopt_dir, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
			*error_r = xasprintf("%s: %s", a.adopt_dir,
					     strerror(errno != 0 ? errno
								 : ENOTDIR));
			goto out;
		}
	}
	for (size_t k = 0; k < sizeof(src_states) / sizeof(src_states[0]);
	     k++) {
		char *dir = xasprintf("%s/%s", a.srcq, src_states[k]);
		size_t n;
		char **v = list_ids(dir, &n);

		for (size_t i = 0; i < n; i++) {
			adopt_one(&a, src_states[k], v[i]);
			free(v[i]);
		}
		free(v);
		free(dir);
	}
	/* what is left in the source's tmp/ was never acknowledged
	 * there: not ours to deliver */
	r = 0;
out:
	free(r1);
	free(r2);
	free(ours);
	free(a.srcq);
	free(a.adopt_dir);
	return r;
}
