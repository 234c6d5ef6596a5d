/*
 * fsync_limit: how many messages per second can this disk make durable?
 *
 * Each "message" is the durable work godwit does before it answers 250:
 * create tmp/<name> with O_EXCL, write 2 KiB, fsync the file, rename it into
 * new/, and fsync new/ so the rename itself survives a crash.  The program
 * runs that loop in W parallel writer threads for a fixed time and prints the
 * rate, for several ways of handling the directory fsync:
 *
 *   nosync   no fsync at all: the cost of the file system calls alone, the
 *            ceiling nothing durable can beat
 *   each     one directory fsync per message (the naive protocol)
 *   batchN   each writer fsyncs new/ once per N of its own renames; a message
 *            is durable only when its batch closes, so this is an upper
 *            bound for "collect N messages, then sync"
 *   group    group commit across writers: after its rename a writer waits for
 *            a directory fsync that started after the rename; one writer
 *            runs it for everybody that is waiting.  Every message is still
 *            durable before its writer returns, and this is what a server
 *            with many concurrent sessions can do.
 *
 * Usage: fsync_limit [-d] DIR SECONDS MODE WRITERS...
 *   -d uses fdatasync() for the message file (godwit's choice: a new file's
 *   size and blocks are still flushed, only its timestamps are not).
 *   DIR must exist and be on the file system being measured; the program
 *   makes DIR/run/{tmp,new}, and empties and removes it after each run.
 *
 * Output: one line per run, whitespace-separated, with a header line.
 */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#define MSG_SIZE 2048
#define MAX_WRITERS 256
/* Latency samples kept per writer: enough for minutes of a fast disk. */
#define MAX_SAMPLES (1u << 20)

enum mode { MODE_NOSYNC, MODE_EACH, MODE_BATCH, MODE_GROUP };

struct shared {
	const char *dir;
	enum mode mode;
	int datasync;
	unsigned batch;
	double deadline;
	int newfd;

	/* Group commit state, guarded by lock. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t renamed;  /* tickets handed out, one per rename */
	uint64_t synced;   /* every ticket <= synced is durable */
	int syncing;       /* a directory fsync is running */
	uint64_t dirsyncs; /* directory fsyncs done, all modes */
};

struct writer {
	struct shared *sh;
	unsigned id;
	uint64_t done;
	double *lat; /* seconds per message, first MAX_SAMPLES */
	size_t nlat;
	int err;
};

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
die(const char *what)
{
	fprintf(stderr, "fsync_limit: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void
count_dirsync(struct shared *sh)
{
	pthread_mutex_lock(&sh->lock);
	sh->dirsyncs++;
	pthread_mutex_unlock(&sh->lock);
}

/*
 * Make everything renamed so far durable, sharing one fsync among every
 * writer that arrives while another fsync is running.  A writer's ticket is
 * covered only by an fsync that *started* after its rename, hence the target
 * is read when the fsync starts.
 */
static int
group_commit(struct shared *sh)
{
	uint64_t ticket, target;
	int rc = 0;

	pthread_mutex_lock(&sh->lock);
	ticket = ++sh->renamed;
	while (sh->synced < ticket) {
		if (sh->syncing) {
			pthread_cond_wait(&sh->cond, &sh->lock);
			continue;
		}
		sh->syncing = 1;
		target = sh->renamed;
		pthread_mutex_unlock(&sh->lock);
		if (fsync(sh->newfd) < 0)
			rc = -1;
		pthread_mutex_lock(&sh->lock);
		sh->syncing = 0;
		sh->dirsyncs++;
		if (target > sh->synced)
			sh->synced = target;
		pthread_cond_broadcast(&sh->cond);
		if (rc < 0)
			break;
	}
	pthread_mutex_unlock(&sh->lock);
	return rc;
}

static void *
writer_main(void *arg)
{
	struct writer *w = arg;
	struct shared *sh = w->sh;
	char buf[MSG_SIZE], tmp[512], dst[512];
	unsigned pending = 0;
	uint64_t seq = 0;
	double t0;
	int fd;

	memset(buf, 'x', sizeof(buf));
	for (size_t i = 76; i < sizeof(buf); i += 78)
		buf[i] = '\n';
	while ((t0 = now()) < sh->deadline) {
		seq++;
		snprintf(tmp, sizeof(tmp), "%s/run/tmp/%u.%llu", sh->dir, w->id,
			 (unsigned long long)seq);
		snprintf(dst, sizeof(dst), "%s/run/new/%u.%llu", sh->dir, w->id,
			 (unsigned long long)seq);
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			goto fail;
		if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
			goto fail_fd;
		if (sh->mode != MODE_NOSYNC &&
		    (sh->datasync ? fdatasync(fd) : fsync(fd)) < 0)
			goto fail_fd;
		if (close(fd) < 0)
			goto fail;
		if (rename(tmp, dst) < 0)
			goto fail;
		switch (sh->mode) {
		case MODE_NOSYNC:
			break;
		case MODE_EACH:
			if (fsync(sh->newfd) < 0)
				goto fail;
			count_dirsync(sh);
			break;
		case MODE_BATCH:
			if (++pending >= sh->batch) {
				if (fsync(sh->newfd) < 0)
					goto fail;
				count_dirsync(sh);
				pending = 0;
			}
			break;
		case MODE_GROUP:
			if (group_commit(sh) < 0)
				goto fail;
			break;
		}
		w->done++;
		if (w->nlat < MAX_SAMPLES)
			w->lat[w->nlat++] = now() - t0;
	}
	if (pending > 0) {
		if (fsync(sh->newfd) < 0)
			goto fail;
		count_dirsync(sh);
	}
	return NULL;
fail_fd:
	close(fd);
fail:
	w->err = errno ? errno : EIO;
	return NULL;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Empty and remove DIR/run/<sub>; the files are ours, names flat. */
static void
remove_tree(const char *dir, const char *sub)
{
	char path[512], f[1024];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "%s/run/%s", dir, sub);
	if ((d = opendir(path)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(f, sizeof(f), "%s/%s", path, de->d_name);
		unlink(f);
	}
	closedir(d);
	rmdir(path);
}

static void
run(const char *dir, int datasync, double seconds, enum mode mode,
    unsigned batch, const char *label, unsigned nwriters)
{
	struct writer *ws;
	pthread_t *th;
	struct shared sh;
	char path[512];
	double start, elapsed, *all;
	uint64_t total = 0;
	size_t nall = 0;

	memset(&sh, 0, sizeof(sh));
	sh.dir = dir;
	sh.mode = mode;
	sh.datasync = datasync;
	sh.batch = batch;
	pthread_mutex_init(&sh.lock, NULL);
	pthread_cond_init(&sh.cond, NULL);

	snprintf(path, sizeof(path), "%s/run", dir);
	if (mkdir(path, 0700) < 0)
		die(path);
	snprintf(path, sizeof(path), "%s/run/tmp", dir);
	if (mkdir(path, 0700) < 0)
		die(path);
	snprintf(path, sizeof(path), "%s/run/new", dir);
	if (mkdir(path, 0700) < 0)
		die(path);
	if ((sh.newfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		die(path);
	/* Start from a quiet disk: flush what earlier runs left dirty. */
	sync();

	ws = calloc(nwriters, sizeof(*ws));
	th = calloc(nwriters, sizeof(*th));
	if (ws == NULL || th == NULL)
		die("calloc");
	start = now();
	sh.deadline = start + seconds;
	for (unsigned i = 0; i < nwriters; i++) {
		ws[i].sh = &sh;
		ws[i].id = i;
		if ((ws[i].lat = malloc(MAX_SAMPLES * sizeof(double))) == NULL)
			die("malloc");
		errno = pthread_create(&th[i], NULL, writer_main, &ws[i]);
		if (errno != 0)
			die("pthread_create");
	}
	for (unsigned i = 0; i < nwriters; i++)
		pthread_join(th[i], NULL);
	elapsed = now() - start;

	for (unsigned i = 0; i < nwriters; i++) {
		if (ws[i].err) {
			errno = ws[i].err;
			die("writer");
		}
		total += ws[i].done;
		nall += ws[i].nlat;
	}
	if ((all = malloc((nall ? nall : 1) * sizeof(double))) == NULL)
		die("malloc");
	nall = 0;
	for (unsigned i = 0; i < nwriters; i++) {
		memcpy(all + nall, ws[i].lat, ws[i].nlat * sizeof(double));
		nall += ws[i].nlat;
		free(ws[i].lat);
	}
	qsort(all, nall, sizeof(double), cmp_double);
	printf("%-8s %7u %9llu %10.0f %9llu %8.1f %8.2f %8.2f\n", label,
	       nwriters, (unsigned long long)total, (double)total / elapsed,
	       (unsigned long long)sh.dirsyncs,
	       sh.dirsyncs ? (double)total / (double)sh.dirsyncs : 0.0,
	       nall ? all[nall / 2] * 1e3 : 0.0,
	       nall ? all[nall * 99 / 100] * 1e3 : 0.0);
	fflush(stdout);

	free(all);
	free(ws);
	free(th);
	close(sh.newfd);
	remove_tree(dir, "tmp");
	remove_tree(dir, "new");
	snprintf(path, sizeof(path), "%s/run", dir);
	rmdir(path);
	pthread_mutex_destroy(&sh.lock);
	pthread_cond_destroy(&sh.cond);
}

int
main(int argc, char **argv)
{
	enum mode mode;
	unsigned batch = 0;
	double seconds;
	int datasync = 0;
	char *end;

	if (argc > 1 && strcmp(argv[1], "-d") == 0) {
		datasync = 1;
		argc--;
		argv++;
	}
	if (argc < 5) {
		fprintf(stderr, "usage: fsync_limit [-d] DIR SECONDS "
				"nosync|each|batchN|group WRITERS...\n");
		return 2;
	}
	if (strlen(argv[1]) > 300) {
		fprintf(stderr, "fsync_limit: directory name too long\n");
		return 2;
	}
	seconds = strtod(argv[2], &end);
	if (*end != '\0' || seconds <= 0 || seconds > 3600) {
		fprintf(stderr, "fsync_limit: bad SECONDS: %s\n", argv[2]);
		return 2;
	}
	if (strcmp(argv[3], "nosync") == 0)
		mode = MODE_NOSYNC;
	else if (strcmp(argv[3], "each") == 0)
		mode = MODE_EACH;
	else if (strcmp(argv[3], "group") == 0)
		mode = MODE_GROUP;
	else if (strncmp(argv[3], "batch", 5) == 0) {
		unsigned long b = strtoul(argv[3] + 5, &end, 10);

		if (*end != '\0' || b < 1 || b > 100000) {
			fprintf(stderr, "fsync_limit: bad batch: %s\n",
				argv[3]);
			return 2;
		}
		mode = MODE_BATCH;
		batch = (unsigned)b;
	} else {
		fprintf(stderr, "fsync_limit: bad MODE: %s\n", argv[3]);
		return 2;
	}
	printf("%-8s %7s %9s %10s %9s %8s %8s %8s\n", "mode", "writers",
	       "messages", "msg/s", "dirsyncs", "msg/sync", "p50_ms", "p99_ms");
	for (int i = 4; i < argc; i++) {
		unsigned long n = strtoul(argv[i], &end, 10);

		if (*end != '\0' || n < 1 || n > MAX_WRITERS) {
			fprintf(stderr, "fsync_limit: bad WRITERS: %s\n",
				argv[i]);
			return 2;
		}
		run(argv[1], datasync, seconds, mode, batch, argv[3],
		    (unsigned)n);
	}
	return 0;
}
