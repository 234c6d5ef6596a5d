/*
 * Spool and committer: see deliver.h.
 *
 * What a commit does (per message; commit_batch() runs the phases for a
 * whole batch at once):
 *   1. the spool file (queue/tmp/<id>) gets the rest of the content, and a
 *      queue file (queue/tmp/<id>.q) is written for remote recipients;
 *   2. both are made durable;
 *   3. the spool file is hard-linked into each local mailbox's
 *      Maildir/new/ (a durable copy where a link is impossible, e.g. another
 *      file system), and the spool file unlinked;
 *   4. the directories that got entries are made durable, and the
 *      message's line is in the audit log (store/audit.h), durably: one
 *      append for the batch, synced with its own fdatasync or, in a
 *      batch that syncs with syncfs(), written just before that syncfs
 *      (so a line may exist for a message a crash kept from its 250,
 *      never the other way round);
 *   5. the queue file is renamed into queue/incoming/ and that directory
 *      made durable. Last, because the queue runner takes a file from
 *      incoming/ the moment it appears: a job that failed in step 4 could
 *      no longer take it back.
 * Only then is the job done (and the session says 250). If any step fails,
 * the entries already made are removed so that the client's retry cannot
 * deliver twice. (Only a failed fsync of incoming/ itself, in step 5, can
 * still find the queue file taken: the client's retry may then reach the
 * remote recipients twice, never none.)
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>


#include <openssl/evp.h>

#include "store/deliver.h"
#include "store/audit.h"
#include "lib/util.h"
#include "lib/xalloc.h"
#include "lib/log.h"
#include "lib/loopq.h"
#include "lib/strbuf.h"
#include "lib/workq.h"

/* ---- spool ---------------------------------------------------------- */

struct spool {
	char *path;
	int fd;			/* -1 until spilled */
	struct strbuf mem;	/* the octets until spilled */
	uint64_t size;
};

struct spool *
spool_new(const char *tmp_path)
{
	struct spool *sp = xcalloc(1, sizeof(*sp));

	sp->path = xstrdup(tmp_path);
	sp->fd = -1;
	return sp;
}

static int
spool_open(struct spool *sp)
{
	sp->fd = open(sp->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	return sp->fd < 0 ? -1 : 0;
}

int
spool_write(struct spool *sp, const void *data, size_t len)
{
	if (len == 0)
		return 0;
	if (sp->fd < 0 && sp->mem.len + len <= SPOOL_MEM_MAX) {
		strbuf_add(&sp->mem, data, len);
		sp->size += len;
		return 0;
	}
	if (sp->fd < 0) {
		/* spill: the file takes everything from here on */
		if (spool_open(sp) < 0 ||
		    write_full(sp->fd, sp->mem.s, sp->mem.len) < 0)
			return -1;
		strbuf_free(&sp->mem);
	}
	if (write_full(sp->fd, data, len) < 0)
		return -1;
	sp->size += len;
	return 0;
}

int
spool_local_header(struct spool *sp, const char *sender, const char *mailbox,
		   size_t *len_r, uint64_t *lines_r)
{
	char *hdr;
	int n;

	if (mailbox != NULL)
		n = asprintf(&hdr, "Return-Path: <%s>\nDelivered-To: %s\n",
			     sender, mailbox);
	else
		n = asprintf(&hdr, "Return-Path: <%s>\n", sender);
	if (n < 0)
		abort();
	*len_r = (size_t)n;
	*lines_r = mailbox != NULL ? 2 : 1;
	n = spool_write(sp, hdr, *len_r);
	free(hdr);
	return n;
}

uint64_t
spool_size(const struct spool *sp)
{
	return sp->size;
}

void
spool_free(struct spool **spp)
{
	struct spool *sp = *spp;

	if (sp == NULL)
		return;
	if (sp->fd >= 0) {
		close(sp->fd);
		unlink(sp->path);
	}
	strbuf_free(&sp->mem);
	free(sp->path);
	free(sp);
	*spp = NULL;
}

ssize_t
spool_read(const struct spool *sp, uint64_t off, void *buf, size_t n)
{
	if (off >= sp->size)
		return 0;
	if (n > sp->size - off)
		n = (size_t)(sp->size - off);
	if (sp->fd < 0) {
		memcpy(buf, sp->mem.s + off, n);
		return (ssize_t)n;
	}
	for (;;) {
		ssize_t r = pread(sp->fd, buf, n, (off_t)off);
		if (r >= 0 || errno != EINTR)
			return r;
	}
}

int
spool_dup_fd(const struct spool *sp)
{
	return sp->fd < 0 ? -1 : fcntl(sp->fd, F_DUPFD_CLOEXEC, 0);
}

/* Writes what is still in memory to the spool file (no sync yet). */
static int
spool_flush(struct spool *sp)
{
	if (sp->fd < 0) {
		if (spool_open(sp) < 0)
			return -1;
		if (write_full(sp->fd, sp->mem.s, sp->mem.len) < 0)
			return -1;
	}
	return 0;
}

/* Copies the spool's octets [from, to) into fd (to past the end: all). */
static int
spool_copy_range(struct spool *sp, uint64_t from, uint64_t to, int fd)
{
	unsigned char buf[65536];

	if (to > sp->size)
		to = sp->size;
	if (from >= to)
		return 0;
	if (sp->fd < 0)
		return write_full(fd, sp->mem.s + from, (size_t)(to - from));
	while (from < to) {
		size_t want = to - from < sizeof(buf) ? (size_t)(to - from)
						      : sizeof(buf);
		ssize_t n = spool_read(sp, from, buf, want);

		if (n <= 0 || write_full(fd, buf, (size_t)n) < 0)
			return -1;
		from += (uint64_t)n;
	}
	return 0;
}

/* Copies the spool from offset `from` into fd. */
static int
spool_copy(struct spool *sp, uint64_t from, int fd)
{
	return spool_copy_range(sp, from, UINT64_MAX, fd);
}

/*
 * Inserts data at offset off (the prefix, after the local header). In
 * memory it moves in place; a spilled spool is rewritten into a new file
 * renamed over the old one: the one extra copy that a message larger
 * than SPOOL_MEM_MAX with a prefix costs. Committer thread.
 */
static int
spool_insert(struct spool *sp, uint64_t off, const void *data, size_t len)
{
	char *tmp;
	int fd;

	if (len == 0)
		return 0;
	if (sp->fd < 0) {
		strbuf_grow(&sp->mem, len);
		memmove(sp->mem.s + off + len, sp->mem.s + off,
			sp->mem.len - (size_t)off);
		memcpy(sp->mem.s + off, data, len);
		sp->mem.len += len;
		sp->mem.s[sp->mem.len] = '\0';
		sp->size += len;
		return 0;
	}
	tmp = xasprintf("%s.p", sp->path);
	fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd < 0 || spool_copy_range(sp, 0, off, fd) < 0 ||
	    write_full(fd, data, len) < 0 || spool_copy(sp, off, fd) < 0 ||
	    rename(tmp, sp->path) < 0) {
		if (fd >= 0) {
			close(fd);
			unlink(tmp);
		}
		free(tmp);
		return -1;
	}
	free(tmp);
	close(sp->fd);
	sp->fd = fd;
	sp->size += len;
	return 0;
}

/* ---- jobs ----------------------------------------------------------- */

void
delivery_job_prefix_add(struct delivery_job *job, const char *text,
			size_t len)
{
	job->prefix = xreallocarray(job->prefix, job->prefix_len + len + 1, 1);
	memcpy(job->prefix + job->prefix_len, text, len);
	job->prefix_len += len;
	job->prefix[job->prefix_len] = '\0';
}

void
delivery_job_free(struct delivery_job **jobp)
{
	struct delivery_job *job = *jobp;

	if (job == NULL)
		return;
	spool_free(&job->spool);
	free(job->prefix);
	for (size_t i = 0; i < job->nmailboxes; i++)
		free(job->mailboxes[i]);
	free(job->mailboxes);
	free(job->sent_mailbox);
	if (job->env != NULL) {
		queue_envelope_clear(job->env);
		free(job->env);
	}
	delivery_origin_free(&job->origin);
	free(job);
	*jobp = NULL;
}

void
delivery_origin_free(struct delivery_origin **op)
{
	struct delivery_origin *o = *op;

	if (o == NULL)
		return;
	free(o->ip);
	free(o->user);
	free(o->sender);
	for (size_t i = 0; i < o->nrcpts; i++)
		free(o->rcpts[i]);
	free(o->rcpts);
	free(o);
	*op = NULL;
}

/* ---- paths ---------------------------------------------------------- */

static void
path_component(FILE *f, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '/' || c == '%' || c < 0x20 || c == 0x7f ||
		    (i == 0 && c == '.'))
			fprintf(f, "%%%02X", c);
		else
			fputc(c, f);
	}
}

char *
maildir_path(const char *mail_dir, const char *mailbox)
{
	const char *at = strrchr(mailbox, '@');
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	if (at == NULL || at == mailbox || at[1] == '\0')
		return NULL;
	if ((f = open_memstream(&buf, &len)) == NULL)
		return NULL;
	fprintf(f, "%s/", mail_dir);
	path_component(f, at + 1, strlen(at + 1));
	fputc('/', f);
	path_component(f, mailbox, (size_t)(at - mailbox));
	fputs("/Maildir", f);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* ---- committer ------------------------------------------------------ */

/* A batch of at least this many jobs is synced with syncfs(): see
 * commit_batch(). */
#define SYNCFS_MIN_BATCH 2

struct committer {
	struct event_base *base;
	char *data_dir;
	char *mail_dir;		/* maildir_path() */
	int data_fd;		/* for syncfs() */
	char host[64];		/* for Maildir file names */
	struct workq *wq;	/* the committer thread: all that waits */
	struct loopq *back;	/* committed jobs, to the loop */
	unsigned npending;	/* loop thread only */
	unsigned seq;		/* committer thread only */
	int pid;
	bool audit;		/* set before the first job */
	bool audit_same_fs;	/* log/ is on data_dir's file system */
	struct audit_log *al;	/* committer thread only */
};

/*
 * Directories that got entries in a batch, each made durable once in
 * phase 4. There is no bound on how many: a directory synced on the spot
 * (as when a fixed-size set was full) would need its failure carried to
 * every job with an entry in it all the same, so every directory goes
 * through the one place that does that, sync_dirset().
 */
struct dirset {
	char **path;
	size_t n, cap;
};

static void
dirset_add(struct dirset *ds, const char *path)
{
	if (ds->n == ds->cap) {
		ds->cap = ds->cap ? ds->cap * 2 : 16;
		ds->path = xreallocarray(ds->path, ds->cap, sizeof(*ds->path));
	}
	ds->path[ds->n++] = xstrdup(path);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts the set and drops repeats: one fsync per directory. */
static void
dirset_unique(struct dirset *ds)
{
	size_t k = 0;

	if (ds->n == 0)
		return;
	qsort(ds->path, ds->n, sizeof(*ds->path), cmp_str);
	for (size_t i = 0; i < ds->n; i++) {
		if (k > 0 && strcmp(ds->path[k - 1], ds->path[i]) == 0)
			free(ds->path[i]);
		else
			ds->path[k++] = ds->path[i];
	}
	ds->n = k;
}

static void
dirset_clear(struct dirset *ds)
{
	for (size_t i = 0; i < ds->n; i++)
		free(ds->path[i]);
	free(ds->path);
	ds->path = NULL;
	ds->n = ds->cap = 0;
}

static int
mkdir_durable(const char *path)
{
	char *parent, *slash;
	int r;

	if (mkdir(path, 0750) == 0) {
		parent = xstrdup(path);
		if ((slash = strrchr(parent, '/')) != NULL)
			*slash = '\0';
		r = fsync_dir(parent);
		free(parent);
		return r;
	}
	return errno == EEXIST ? 0 : -1;
}

int
maildir_create(const char *maildir)
{
	char *p = xstrdup(maildir), *s;
	int r = 0;
	static const char *const subs[] = {"tmp", "new", "cur"};

	/* parents from the top: mail_dir/<domain>/<local>/Maildir */
	for (s = strchr(p + 1, '/'); s != NULL; s = strchr(s + 1, '/')) {
		*s = '\0';
		if (access(p, F_OK) != 0 && mkdir_durable(p) < 0)
			r = -1;
		*s = '/';
	}
	if (r == 0 && mkdir_durable(p) < 0)
		r = -1;
	for (size_t i = 0; r == 0 && i < 3; i++) {
		char *sub = xasprintf("%s/%s", p, subs[i]);
		if (mkdir_durable(sub) < 0)
			r = -1;
		free(sub);
	}
	free(p);
	return r;
}

/* An empty file, durably (the folder's "maildirfolder" marker). */
static int
touch_durable(const char *dir, const char *name)
{
	char *path = xasprintf("%s/%s", dir, name);
	int fd, r = 0;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd < 0)
		r = errno == EEXIST ? 0 : -1;
	else if (fsync(fd) < 0 || close(fd) < 0 || fsync_dir(dir) < 0)
		r = -1;
	free(path);
	return r;
}

int
maildir_folder_create(const char *maildir, const char *folder)
{
	char *dir = xasprintf("%s/%s", maildir, folder);
	static const char *const subs[] = {"tmp", "new", "cur"};
	int r = 0;

	if (access(maildir, F_OK) != 0 && maildir_create(maildir) < 0)
		r = -1;
	if (r == 0 && mkdir_durable(dir) < 0)
		r = -1;
	for (size_t i = 0; r == 0 && i < 3; i++) {
		char *sub = xasprintf("%s/%s", dir, subs[i]);
		if (mkdir_durable(sub) < 0)
			r = -1;
		free(sub);
	}
	if (r == 0 && touch_durable(dir, "maildirfolder") < 0)
		r = -1;
	free(dir);
	return r;
}

/*
 * The one way a message file enters a Maildir when it is not a hard link
 * of the spool: written whole to <maildir>/tmp/<name> by fill(), made
 * durable (fdatasync; fsync when mtime > 0 sets its mtime), then renamed to
 * new/<name>, or to cur/<name>:<info> when info is not NULL. The
 * directory's fsync is the caller's (one per batch). 0, or -1 with errno;
 * nothing is left in tmp/ on failure.
 */
static int
maildir_put(const char *maildir, const char *name, const char *info,
	    int64_t mtime, int (*fill)(int fd, void *arg), void *arg)
{
	char *tmp = xasprintf("%s/tmp/%s", maildir, name);
	char *dst = info != NULL ? xasprintf("%s/cur/%s:%s", maildir, name, info)
				 : xasprintf("%s/new/%s", maildir, name);
	int fd, r = -1, saved = 0;

	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd >= 0) {
		struct timespec ts[2] = {{(time_t)mtime, 0}, {(time_t)mtime, 0}};
		/* an mtime given is kept: fsync, which fdatasync is not for
		 * a time stamp */
		if (fill(fd, arg) == 0 &&
		    (mtime <= 0 ? fdatasync(fd)
				: futimens(fd, ts) < 0 ? -1 : fsync(fd)) == 0 &&
		    rename(tmp, dst) == 0)
			r = 0;
		saved = errno;
		close(fd);
		if (r < 0)
			unlink(tmp);
	} else
		saved = errno;
	free(tmp);
	free(dst);
	errno = saved;
	return r;
}

static int
fill_spool(int fd, void *arg)
{
	return spool_copy(arg, 0, fd);
}

/* Copies the spool into maildir/tmp, fsyncs, renames into new/. */
static int
maildir_copy(struct committer *c, struct delivery_job *job,
	     const char *maildir, const char *name)
{
	(void)c;
	return maildir_put(maildir, name, NULL, 0, fill_spool, job->spool);
}

void
maildir_name(char *buf, size_t size, const char *host, int pid,
	     const char *id, unsigned seq, uint64_t octets, uint64_t vsize)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	snprintf(buf, size, "%lld.M%06ldP%dQ%s_%u.%s,S=%llu,W=%llu",
		 (long long)tv.tv_sec, (long)tv.tv_usec, pid, id, seq, host,
		 (unsigned long long)octets, (unsigned long long)vsize);
}

struct fill_mem {
	const void *data;
	size_t len;
};

static int
fill_mem(int fd, void *arg)
{
	struct fill_mem *m = arg;

	return write_full(fd, m->data, m->len);
}

int
maildir_store(const char *maildir, const char *host, const void *data,
	      size_t len, const char *info, int64_t mtime)
{
	static unsigned seq;
	char id[QUEUE_ID_LEN + 1], name[256], h[64];
	struct fill_mem m = {data, len};
	uint64_t vsize = len;
	size_t i;

	for (i = 0; i < len; i++)
		vsize += ((const char *)data)[i] == '\n' &&
			 (i == 0 || ((const char *)data)[i - 1] != '\r');
	for (i = 0; host[i] != '\0' && i < sizeof(h) - 1; i++)
		h[i] = host[i] == '/' || host[i] == ':' ? '_' : host[i];
	h[i] = '\0';
	queue_id_new(id);
	maildir_name(name, sizeof(name), h, (int)getpid(), id, seq++, len,
		     vsize);
	if (access(maildir, F_OK) != 0 && maildir_create(maildir) < 0)
		return -1;
	return maildir_put(maildir, name, info, mtime, fill_mem, &m);
}

static void
job_fail(struct delivery_job *job, const char *what, const char *path)
{
	if (job->result < 0)
		return;		/* keep the first reason */
	job->result = -1;
	snprintf(job->error, sizeof(job->error), "%s %s: %s", what, path,
		 strerror(errno));
}

/* What the committer knows about one job while it works on a batch. */
struct job_state {
	struct delivery_job *job;
	/* the stored message for the audit line: the Maildir file (the
	 * whole spool), or without local recipients the message in the
	 * queue file (the spool past the local header) */
	char sha256[HASHCHAIN_HEX_LEN + 1];
	uint64_t stored_size;
	bool audited;		/* its line is in the audit log */
	char *qtmp;		/* queue/tmp/<id>.q, or NULL */
	int qfd;
	char **made;		/* entries created: removed again on failure */
	size_t nmade;
};

/* The SHA-256 of what the audit line speaks for (job_state.sha256). */
static int
stored_hash(struct job_state *st)
{
	struct delivery_job *job = st->job;
	uint64_t off = job->nmailboxes > 0 ? 0 : job->local_hdr_len;
	unsigned char buf[65536], md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int r = -1;

	st->stored_size = spool_size(job->spool) - off;
	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
		goto out;
	for (;;) {
		ssize_t n = spool_read(job->spool, off, buf, sizeof(buf));

		if (n < 0)
			goto out;
		if (n == 0)
			break;
		if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1)
			goto out;
		off += (uint64_t)n;
	}
	if (EVP_DigestFinal_ex(ctx, md, &mdlen) == 1) {
		hashchain_hex(md, mdlen, st->sha256);
		r = 0;
	}
out:
	EVP_MD_CTX_free(ctx);
	return r;
}

/*
 * Phase 1: everything that must be durable before any directory entry
 * points at it is written: the spool file and, for remote recipients, the
 * queue file.
 */
static void
phase_write(struct committer *c, struct job_state *st)
{
	struct delivery_job *job = st->job;
	struct spool *sp = job->spool;

	(void)c;
	st->qfd = -1;
	if (job->prefix_len > 0) {
		if (spool_insert(sp, job->local_hdr_len, job->prefix,
				 job->prefix_len) < 0) {
			job_fail(job, "spool", sp->path);
			return;
		}
		job->vsize += job->prefix_len;
		for (size_t i = 0; i < job->prefix_len; i++)
			job->vsize += job->prefix[i] == '\n';
	}
	if (spool_flush(sp) < 0) {
		job_fail(job, "spool", sp->path);
		return;
	}
	if (c->audit && stored_hash(st) < 0) {
		job_fail(job, "spool", sp->path);
		return;
	}
	if (job->env == NULL)
		return;
	size_t hlen;
	char *hdr;

	st->qtmp = xasprintf("%s.q", sp->path);
	job->env->size = sp->size - job->local_hdr_len;
	hdr = queue_envelope_format(job->env, &hlen);
	st->qfd = open(st->qtmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		       0640);
	if (hdr == NULL || st->qfd < 0 || write_full(st->qfd, hdr, hlen) < 0 ||
	    spool_copy(sp, job->local_hdr_len, st->qfd) < 0 ||
	    write_full(st->qfd, QUEUE_END, sizeof(QUEUE_END) - 1) < 0)
		job_fail(job, "queue", st->qtmp);
	free(hdr);
}

/* Phase 2, one file at a time (a batch of one). */
static void
phase_sync_files(struct job_state *st)
{
	struct delivery_job *job = st->job;

	if (job->result < 0)
		return;
	if (fdatasync(job->spool->fd) < 0)
		job_fail(job, "fdatasync", job->spool->path);
	else if (st->qfd >= 0 && fdatasync(st->qfd) < 0)
		job_fail(job, "fdatasync", st->qtmp);
}

static void
made_add(struct job_state *st, char *path)
{
	st->made = xreallocarray(st->made, st->nmade + 1, sizeof(*st->made));
	st->made[st->nmade++] = path;
}

struct fill_range {
	struct spool *sp;
	uint64_t from;
};

static int
fill_spool_from(int fd, void *arg)
{
	struct fill_range *fr = arg;

	return spool_copy(fr->sp, fr->from, fd);
}

/* The lines of the spool's first len octets (the local header's). */
static uint64_t
spool_lines(struct spool *sp, uint64_t len)
{
	char buf[4096];
	uint64_t off = 0, lines = 0;

	while (off < len) {
		size_t want = len - off < sizeof(buf) ? (size_t)(len - off)
						      : sizeof(buf);
		ssize_t n = spool_read(sp, off, buf, want);

		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			lines += buf[i] == '\n';
		off += (uint64_t)n;
	}
	return lines;
}

/*
 * The Sent copy into box (<maildir>/.Sent) as cur/<name>:2,S (dst): a
 * hard link of the spool when it has no local header (*linked_r), else
 * (or where a link is impossible) a copy of the spool from hdr through
 * maildir_put(). 0, or -1 with errno.
 */
static int
sent_put(struct spool *sp, uint64_t hdr, const char *box, const char *name,
	 const char *dst, bool *linked_r)
{
	struct fill_range fr = {sp, hdr};

	*linked_r = false;
	if (hdr == 0) {
		if (link(sp->path, dst) == 0) {
			*linked_r = true;
			return 0;
		}
		if (errno != EXDEV && errno != EMLINK && errno != EPERM)
			return -1;
	}
	return maildir_put(box, name, "2,S", 0, fill_spool_from, &fr);
}

/*
 * Phase 3 for job->sent_mailbox (submission.save_sent): the message as
 * it goes out (what the queue file holds: the spool past the local
 * header, the prefix included) into the sender's .Sent/cur/ with \Seen,
 * the folder created if missing. An entry like the others: its directory
 * in ds (a link: phase 4's sync covers it) or other (a copy), removed if
 * the job fails; a failure fails the job (451: nothing half done).
 */
static void
place_sent(struct committer *c, struct job_state *st, struct dirset *ds,
	   struct dirset *other)
{
	struct delivery_job *job = st->job;
	struct spool *sp = job->spool;
	uint64_t hdr = job->local_hdr_len, cut, vsize;
	char *maildir = maildir_path(c->mail_dir, job->sent_mailbox);
	char name[256], *box, *curdir, *dst;
	bool linked;
	int r;

	if (maildir == NULL) {
		errno = EINVAL;
		job_fail(job, "sent folder of", job->sent_mailbox);
		return;
	}
	cut = hdr + spool_lines(sp, hdr);
	vsize = job->vsize > cut ? job->vsize - cut : 0;
	maildir_name(name, sizeof(name), c->host, c->pid, job->id, c->seq++,
		     sp->size - hdr, vsize);
	box = xasprintf("%s/%s", maildir, MAILDIR_SENT);
	curdir = xasprintf("%s/cur", box);
	dst = xasprintf("%s/%s:2,S", curdir, name);
	r = sent_put(sp, hdr, box, name, dst, &linked);
	if (r < 0 && errno == ENOENT &&
	    maildir_folder_create(maildir, MAILDIR_SENT) == 0)
		r = sent_put(sp, hdr, box, name, dst, &linked);
	if (r == 0) {
		made_add(st, dst);
		dirset_add(linked ? ds : other, curdir);
	} else {
		job_fail(job, "save to", dst);
		free(dst);
	}
	free(curdir);
	free(box);
	free(maildir);
}

/*
 * Phase 3: the entries: a hard link into each Maildir/new/ (a durable copy
 * where a link is impossible). The directories go into ds (to be synced in
 * phase 4); those of copies on another file system into other (syncfs on
 * ours does not cover them). The queue file waits for phase 5.
 */
static void
phase_place(struct committer *c, struct job_state *st, struct dirset *ds,
	    struct dirset *other)
{
	struct delivery_job *job = st->job;
	struct spool *sp = job->spool;
	char name[256];

	if (job->result < 0)
		goto out;
	maildir_name(name, sizeof(name), c->host, c->pid, job->id, c->seq++,
		     sp->size, job->vsize);

	for (size_t i = 0; i < job->nmailboxes && job->result == 0; i++) {
		char *maildir = maildir_path(c->mail_dir, job->mailboxes[i]);
		char *box, *newdir, *dst;
		int r;

		if (maildir == NULL) {
			errno = EINVAL;
			job_fail(job, "mailbox", job->mailboxes[i]);
			break;
		}
		box = job->quarantine
			  ? xasprintf("%s/%s", maildir, MAILDIR_JUNK)
			  : xstrdup(maildir);
		newdir = xasprintf("%s/new", box);
		dst = xasprintf("%s/%s", newdir, name);
		r = link(sp->path, dst);
		if (r < 0 && errno == ENOENT &&
		    (job->quarantine
			 ? maildir_folder_create(maildir, MAILDIR_JUNK)
			 : maildir_create(maildir)) == 0)
			r = link(sp->path, dst);
		if (r == 0) {
			made_add(st, dst);
			dirset_add(ds, newdir);
		} else if (errno == EXDEV || errno == EMLINK ||
			   errno == EPERM) {
			if (maildir_copy(c, job, box, name) == 0) {
				made_add(st, dst);
				dirset_add(other, newdir);
			} else {
				job_fail(job, "deliver to", dst);
				free(dst);
			}
		} else {
			job_fail(job, "deliver to", dst);
			free(dst);
		}
		free(newdir);
		free(box);
		free(maildir);
	}
	if (job->result == 0 && job->sent_mailbox != NULL)
		place_sent(c, st, ds, other);
out:
	/* the spool's tmp name is not needed either way */
	if (st->qfd >= 0)
		close(st->qfd);
	st->qfd = -1;
	if (sp->fd >= 0) {
		close(sp->fd);
		sp->fd = -1;
		unlink(sp->path);
	}
}

/*
 * Phase 5, once everything else of the job is durable: its queue file
 * into incoming/, or hold/ for a held job (into qs: to be synced), or
 * removed if the job failed.
 */
static void
phase_queue(struct committer *c, struct job_state *st, struct dirset *qs)
{
	struct delivery_job *job = st->job;
	char *dst, *qdir;

	if (st->qtmp == NULL)
		return;
	if (job->result == 0) {
		const char *state = job->hold ? "hold" : "incoming";

		dst = xasprintf("%s/queue/%s/%s", c->data_dir, state, job->id);
		if (rename(st->qtmp, dst) == 0) {
			qdir = xasprintf("%s/queue/%s", c->data_dir, state);
			made_add(st, dst);
			dirset_add(qs, qdir);
			free(qdir);
		} else {
			job_fail(job, "queue", dst);
			free(dst);
		}
	}
	if (job->result < 0)
		unlink(st->qtmp);
}

/* Fails the jobs that created an entry in dir. */
static void
fail_jobs_in(struct job_state *st, size_t n, const char *dir, int err)
{
	size_t dlen = strlen(dir);

	for (size_t j = 0; j < n; j++) {
		for (size_t k = 0; k < st[j].nmade; k++) {
			if (strncmp(st[j].made[k], dir, dlen) == 0 &&
			    st[j].made[k][dlen] == '/') {
				errno = err;
				job_fail(st[j].job, "fsync", dir);
				break;
			}
		}
	}
}

/* fsyncs each directory of ds; a failure fails every job with an entry
 * in that directory (after a failed fsync the entry may be lost). */
static void
sync_dirset(struct dirset *ds, struct job_state *st, size_t n)
{
	for (size_t i = 0; i < ds->n; i++) {
		if (fsync_dir(ds->path[i]) < 0) {
			int saved = errno;
			log_event(LOG_ERR, "store", "fsync-failed",
				  LF_STR("path", ds->path[i]),
				  LF_STR("error", strerror(saved)));
			fail_jobs_in(st, n, ds->path[i], saved);
		}
	}
}

/* ---- the audit lines ------------------------------------------------ */

/* The audit record of a committed job (store/audit.h). */
static char *
audit_record(const struct job_state *st)
{
	const struct delivery_job *job = st->job;
	const struct delivery_origin *o = job->origin;
	struct audit_rec r;
	char **remotes = NULL;
	size_t nremotes = job->env != NULL ? job->env->nrcpts : 0;

	audit_rec_begin(&r, "message");
	audit_rec_str(&r, "queue", job->id);
	audit_rec_str(&r, "origin", o == NULL	  ? "godwit"
				    : o->from_queue ? "queue"
						    : "smtp");
	if (o != NULL) {
		audit_rec_str(&r, "ip", o->ip);
		if (o->user != NULL)
			audit_rec_str(&r, "user", o->user);
		audit_rec_str(&r, "sender", o->sender);
		audit_rec_strv(&r, "rcpts", o->rcpts, o->nrcpts);
	} else {
		/* a report: the null sender, unless it has an envelope */
		audit_rec_str(&r, "sender",
			      job->env != NULL ? job->env->sender : "");
	}
	audit_rec_strv(&r, "mailboxes", job->mailboxes, job->nmailboxes);
	if (job->sent_mailbox != NULL)
		audit_rec_str(&r, "sent", job->sent_mailbox);
	remotes = xcalloc(nremotes + 1, sizeof(*remotes));
	for (size_t i = 0; i < nremotes; i++)
		remotes[i] = job->env->rcpts[i].addr;
	audit_rec_strv(&r, "remote", remotes, nremotes);
	free(remotes);
	if (job->quarantine)
		audit_rec_bool(&r, "quarantine", true);
	if (job->hold)
		audit_rec_bool(&r, "hold", true);
	audit_rec_uint(&r, "size", st->stored_size);
	audit_rec_str(&r, "sha256", st->sha256);
	return audit_rec_end(&r);
}

/* Appends recs (flags: audit_log_append's). */
static int
audit_put(struct committer *c, char **recs, size_t n, unsigned flags)
{
	char *error = NULL;

	if (c->al == NULL)
		c->al = audit_log_new(c->data_dir);
	if (audit_log_append(c->al, recs, n, flags, NULL, &error) == 0)
		return 0;
	log_event(LOG_ERR, "store", "audit-failed", LF_STR("error", error));
	free(error);
	return -1;
}

/*
 * Before phase 5: one line per job that has not failed so far, all in
 * one append and fdatasync (flags 0), or, in a grouped batch, one append
 * just before phase 4's syncfs, which makes the lines durable with the
 * Maildir entries (AUDIT_NOSYNC; a job that fails in phase 4 then gets a
 * "failed" line). If the append fails the jobs fail, and their entries
 * go (the queue files are not in incoming/ yet).
 */
static void
phase_audit(struct committer *c, struct job_state *st, size_t n,
	    unsigned flags)
{
	char **recs = xcalloc(n, sizeof(*recs));
	size_t k = 0, j;

	for (j = 0; j < n; j++)
		if (st[j].job->result == 0)
			recs[k++] = audit_record(&st[j]);
	if (k > 0 && audit_put(c, recs, k, flags) < 0) {
		for (j = 0; j < n; j++) {
			struct delivery_job *job = st[j].job;
			if (job->result == 0) {
				job->result = -1;
				snprintf(job->error, sizeof(job->error),
					 "the audit log could not be written");
			}
		}
	} else {
		for (j = 0; j < n; j++)
			st[j].audited = st[j].job->result == 0;
	}
	for (j = 0; j < k; j++)
		free(recs[j]);
	free(recs);
}

/* After phase 5: a job whose line is written but that failed after all
 * (its queue file could not be placed) gets a "failed" line. */
static void
audit_undo(struct committer *c, struct job_state *st, size_t n)
{
	char **recs = xcalloc(n, sizeof(*recs));
	size_t k = 0;

	for (size_t j = 0; j < n; j++) {
		struct audit_rec r;

		if (!st[j].audited || st[j].job->result == 0)
			continue;
		audit_rec_begin(&r, "failed");
		audit_rec_str(&r, "queue", st[j].job->id);
		audit_rec_str(&r, "error", st[j].job->error);
		recs[k++] = audit_rec_end(&r);
	}
	if (k > 0)
		(void)audit_put(c, recs, k, 0);
	for (size_t j = 0; j < k; j++)
		free(recs[j]);
	free(recs);
}

/*
 * A batch is committed in five phases: write (1), make the files durable
 * (2), create the Maildir entries (3), make them durable (4), then the
 * queue files into incoming/, made durable (5). The order is what makes a
 * crash at any point safe: no entry can become durable before the data it
 * names. For a batch of several jobs, phases 2 and 4 are one syncfs() each
 * — one device cache flush for the whole batch instead of one per file
 * and per directory, which is what group commit buys; phase 5 is one
 * fsync of incoming/.
 */
static void
commit_batch(struct committer *c, struct delivery_job *batch)
{
	struct dirset ds = {.path = NULL}, other = {.path = NULL};
	struct dirset qs = {.path = NULL};
	struct delivery_job *job;
	struct job_state *st;
	size_t n = 0, j;
	bool grouped, audited;

	for (job = batch; job != NULL; job = job->next)
		n++;
	st = xcalloc(n, sizeof(*st));
	j = 0;
	for (job = batch; job != NULL; job = job->next, j++) {
		job->result = 0;
		st[j].job = job;
		phase_write(c, &st[j]);
	}
	grouped = n >= SYNCFS_MIN_BATCH && c->data_fd >= 0;
	if (grouped) {
		if (syncfs(c->data_fd) < 0) {
			int saved = errno;
			log_event(LOG_ERR, "store", "syncfs-failed",
				  LF_STR("path", c->data_dir),
				  LF_STR("error", strerror(saved)));
			for (j = 0; j < n; j++) {
				errno = saved;
				job_fail(st[j].job, "syncfs", c->data_dir);
			}
		}
	} else {
		for (j = 0; j < n; j++)
			phase_sync_files(&st[j]);
	}
	for (j = 0; j < n; j++)
		phase_place(c, &st[j], &ds, &other);
	dirset_unique(&ds);
	dirset_unique(&other);
	/* the audit lines ride on phase 4's syncfs when it covers them */
	audited = grouped && ds.n > 0 && c->audit && c->audit_same_fs;
	if (audited)
		phase_audit(c, st, n, AUDIT_NOSYNC);
	if (grouped) {
		if (ds.n > 0 && syncfs(c->data_fd) < 0) {
			int saved = errno;
			log_event(LOG_ERR, "store", "syncfs-failed",
				  LF_STR("path", c->data_dir),
				  LF_STR("error", strerror(saved)));
			for (size_t i = 0; i < ds.n; i++)
				fail_jobs_in(st, n, ds.path[i], saved);
		}
	} else {
		sync_dirset(&ds, st, n);
	}
	sync_dirset(&other, st, n);
	if (c->audit && !audited)
		phase_audit(c, st, n, 0);
	for (j = 0; j < n; j++)
		phase_queue(c, &st[j], &qs);
	dirset_unique(&qs);
	sync_dirset(&qs, st, n);
	if (c->audit)
		audit_undo(c, st, n);

	for (j = 0; j < n; j++) {
		for (size_t k = 0; k < st[j].nmade; k++) {
			if (st[j].job->result < 0)
				unlink(st[j].made[k]);
			free(st[j].made[k]);
		}
		free(st[j].made);
		free(st[j].qtmp);
	}
	free(st);
	dirset_clear(&ds);
	dirset_clear(&other);
	dirset_clear(&qs);
}

/*
 * The committer thread: every job that waits is one batch, linked in the
 * order it was submitted.
 */
static void
committer_run(void *arg, void **items, size_t n)
{
	struct committer *c = arg;
	size_t i;

	for (i = 0; i + 1 < n; i++)
		((struct delivery_job *)items[i])->next = items[i + 1];
	((struct delivery_job *)items[n - 1])->next = NULL;

	commit_batch(c, items[0]);
	loopq_put(c->back, items, n);
}

/* Loop thread: a committed job's completion. */
static void
committer_deliver(void *arg, void *item)
{
	struct committer *c = arg;
	struct delivery_job *job = item;

	job->next = NULL;
	c->npending--;
	if (job->done != NULL)
		job->done(job, job->arg);
	delivery_job_free(&job);
}

/* Whether <data_dir>/log is on the file system that syncfs(data_fd)
 * flushes. */
static bool
same_fs(int data_fd, const char *data_dir)
{
	char *log = xasprintf("%s/%s", data_dir, AUDIT_DIR);
	struct stat a, b;
	bool r = data_fd >= 0 && fstat(data_fd, &a) == 0 &&
		 stat(log, &b) == 0 && a.st_dev == b.st_dev;

	free(log);
	return r;
}

struct committer *
committer_new(struct event_base *base, const char *data_dir,
	      const char *mail_dir, const char *hostname)
{
	struct committer *c = xcalloc(1, sizeof(*c));
	size_t i;

	c->base = base;
	c->data_dir = xstrdup(data_dir);
	c->mail_dir = xstrdup(mail_dir);
	/* Maildir names must not contain '/' or ':' */
	for (i = 0; hostname[i] != '\0' && i < sizeof(c->host) - 1; i++)
		c->host[i] = (hostname[i] == '/' || hostname[i] == ':')
				     ? '_'
				     : hostname[i];
	c->host[i] = '\0';
	c->pid = (int)getpid();
	c->audit = true;
	c->data_fd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	c->audit_same_fs = same_fs(c->data_fd, data_dir);
	c->back = loopq_new(base, committer_deliver, c);
	c->wq = workq_start("committer", 0, committer_run, c);
	return c;
}

void
committer_set_audit(struct committer *c, bool enabled)
{
	c->audit = enabled;
}

void
committer_submit(struct committer *c, struct delivery_job *job)
{
	job->next = NULL;
	c->npending++;
	workq_submit(c->wq, job);
}

unsigned
committer_pending(const struct committer *c)
{
	return c->npending;
}

void
committer_free(struct committer **cp)
{
	struct committer *c = *cp;

	if (c == NULL)
		return;
	workq_stop(&c->wq);
	loopq_free(&c->back);
	audit_log_free(&c->al);
	if (c->data_fd >= 0)
		close(c->data_fd);
	free(c->data_dir);
	free(c->mail_dir);
	free(c);
	*cp = NULL;
}
