/*
 * The committer (store/deliver.c) through its API, on a temporary data
 * directory: jobs submitted from the loop thread, committed by the
 * thread in batches, completed on the loop. What it must do: place each
 * message in every Maildir it names (one file, hard-linked) and, for
 * remote recipients, a queue file in queue/incoming/; fail a job whose
 * phase fails and take back every entry it made, without touching the
 * other jobs of the batch; and on shutdown finish what it was given.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "unit.h"
#include "lib/xalloc.h"
#include "lib/hashchain.h"
#include "store/audit.h"
#include "store/deliver.h"
#include "store/queue.h"

#define NJOBS_MAX 64

struct fixture {
	char dir[64];
	char mail[80];
	struct event_base *base;
	struct committer *c;
	unsigned seq;
	/* completions, in the order they ran */
	unsigned ndone;
	int result[NJOBS_MAX];
	char error[NJOBS_MAX][160];
	unsigned order[NJOBS_MAX];
};

struct done_arg {
	struct fixture *f;
	unsigned n;		/* the job's number */
};

static struct done_arg args[NJOBS_MAX];

static void
rm_rf(const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *de;

	if (lstat(path, &st) < 0)
		return;
	if (S_ISDIR(st.st_mode) && (d = opendir(path)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 ||
			    strcmp(de->d_name, "..") == 0)
				continue;
			char *sub = xasprintf("%s/%s", path, de->d_name);
			rm_rf(sub);
			free(sub);
		}
		closedir(d);
		rmdir(path);
	} else {
		unlink(path);
	}
}

static char *
path_of(const struct fixture *f, const char *rel)
{
	return xasprintf("%s/%s", f->dir, rel);
}

static void
mkdir_rel(const struct fixture *f, const char *rel)
{
	char *p = path_of(f, rel);

	assert_int_equal(mkdir(p, 0750), 0);
	free(p);
}

static int
setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/godwit-committer-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	mkdir_rel(f, "queue");
	mkdir_rel(f, "queue/tmp");
	mkdir_rel(f, "queue/incoming");
	mkdir_rel(f, "mail");
	mkdir_rel(f, "log");
	f->base = event_base_new();
	assert_non_null(f->base);
	snprintf(f->mail, sizeof(f->mail), "%s/mail", f->dir);
	f->c = committer_new(f->base, f->dir, f->mail, "mx.example.test");
	assert_non_null(f->c);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	committer_free(&f->c);
	event_base_free(f->base);
	rm_rf(f->dir);
	free(f);
	return 0;
}

static void
job_done(struct delivery_job *job, void *arg)
{
	struct done_arg *a = arg;
	struct fixture *f = a->f;

	assert_true(a->n < NJOBS_MAX);
	assert_int_equal(f->result[a->n], 1);	/* once only */
	f->result[a->n] = job->result;
	snprintf(f->error[a->n], sizeof(f->error[a->n]), "%s", job->error);
	f->order[f->ndone++] = a->n;
}

/*
 * A job numbered n with content `text` for the NULL-terminated mailboxes
 * and, if remote is not NULL, a queue envelope with that one recipient.
 * local_hdr is the part of the content only local copies get.
 */
static struct delivery_job *
make_job(struct fixture *f, unsigned n, const char *local_hdr,
	 const char *text, const char *const *mailboxes, const char *remote)
{
	struct delivery_job *job = xcalloc(1, sizeof(*job));
	char *tmp;

	assert_true(n < NJOBS_MAX);
	snprintf(job->id, sizeof(job->id), "%016x", 0xc0ffee00u + f->seq++);
	tmp = xasprintf("%s/queue/tmp/%s", f->dir, job->id);
	job->spool = spool_new(tmp);
	free(tmp);
	assert_int_equal(spool_write(job->spool, local_hdr, strlen(local_hdr)),
			 0);
	assert_int_equal(spool_write(job->spool, text, strlen(text)), 0);
	job->local_hdr_len = strlen(local_hdr);
	job->vsize = spool_size(job->spool);
	for (const char *const *m = mailboxes; m != NULL && *m != NULL; m++) {
		job->mailboxes = xreallocarray(job->mailboxes,
					       job->nmailboxes + 1,
					       sizeof(*job->mailboxes));
		job->mailboxes[job->nmailboxes++] = xstrdup(*m);
	}
	if (remote != NULL) {
		/* the envelope as a queue file spells it (the on-disk format
		 * is fixed; the struct's field types are not) */
		struct queue_envelope *e = xcalloc(1, sizeof(*e));
		char *env = xasprintf("godwit-queue 1\nid %s\n"
				      "arrival 1700000000\nclient 192.0.2.1\n"
				      "helo client.test\n"
				      "sender sender@example.org\nbody 7BIT\n"
				      "smtputf8 0\nret +\nenvid +\n"
				      "rcpt %s 0 +\nsize 0\n\n",
				      job->id, remote);
		size_t hlen;
		char *err = NULL;

		if (queue_envelope_parse(env, strlen(env), e, &hlen, &err) < 0)
			fail_msg("envelope: %s", err);
		assert_int_equal(hlen, strlen(env));
		free(env);
		job->env = e;
	}
	args[n] = (struct done_arg){f, n};
	job->done = job_done;
	job->arg = &args[n];
	f->result[n] = 1;	/* not completed yet */
	return job;
}

/* Runs the loop until n completions have run (bounded: 20 s). */
static void
run_until(struct fixture *f, unsigned n)
{
	time_t end = time(NULL) + 20;

	while (f->ndone < n) {
		struct timeval tick = {0, 100000};

		assert_true(time(NULL) < end);
		event_base_loopexit(f->base, &tick);
		event_base_dispatch(f->base);
	}
	assert_int_equal(f->ndone, n);
	assert_int_equal(committer_pending(f->c), 0);
}

/* Names of the files in dir (sorted), their count in *n. */
static char **
list_dir(const char *dir, size_t *n)
{
	struct dirent **de;
	int k = scandir(dir, &de, NULL, alphasort);
	char **out = NULL;

	*n = 0;
	if (k < 0)
		return NULL;
	for (int i = 0; i < k; i++) {
		if (de[i]->d_name[0] != '.') {
			out = xreallocarray(out, *n + 1, sizeof(*out));
			out[(*n)++] = xstrdup(de[i]->d_name);
		}
		free(de[i]);
	}
	free(de);
	return out;
}

static void
free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static size_t
count_rel(const struct fixture *f, const char *rel)
{
	char *p = path_of(f, rel);
	size_t n;
	char **v = list_dir(p, &n);

	free_list(v, n);
	free(p);
	return n;
}

static char *
slurp(const char *path, size_t *len_r)
{
	FILE *fp = fopen(path, "rb");
	struct stat st;
	char *buf;

	assert_non_null(fp);
	assert_int_equal(fstat(fileno(fp), &st), 0);
	buf = xcalloc(1, (size_t)st.st_size + 1);
	assert_int_equal(fread(buf, 1, (size_t)st.st_size, fp),
			 (size_t)st.st_size);
	fclose(fp);
	*len_r = (size_t)st.st_size;
	return buf;
}

/*
 * The messages in <mailbox's Maildir>/new holding `text`: how many, and
 * (when one) its path in *path_r (caller frees).
 */
static size_t
find_in(const struct fixture *f, const char *mailbox, const char *text,
	char **path_r)
{
	char *md = maildir_path(f->mail, mailbox), *newdir;
	char **v;
	size_t n, found = 0;

	newdir = xasprintf("%s/new", md);
	v = list_dir(newdir, &n);
	if (path_r != NULL)
		*path_r = NULL;
	for (size_t i = 0; i < n; i++) {
		char *p = xasprintf("%s/%s", newdir, v[i]);
		size_t len;
		char *body = slurp(p, &len);

		if (strstr(body, text) != NULL) {
			found++;
			if (path_r != NULL) {
				free(*path_r);
				*path_r = xstrdup(p);
			}
		}
		free(body);
		free(p);
	}
	free_list(v, n);
	free(newdir);
	free(md);
	return found;
}

/* ---- the tests ---------------------------------------------------------- */

static void
test_one_local_message(void **state)
{
	struct fixture *f = *state;
	static const char *const to[] = {"alice@example.test", NULL};
	const char *hdr = "Return-Path: <sender@example.org>\n";
	const char *text = "Subject: one\n\nhello\n";
	char *path, *want, *md, *sub;
	size_t len;
	struct stat st;

	committer_submit(f->c, make_job(f, 0, hdr, text, to, NULL));
	assert_int_equal(committer_pending(f->c), 1);
	run_until(f, 1);
	assert_int_equal(f->result[0], 0);
	assert_string_equal(f->error[0], "");

	/* the Maildir was made, with its three directories */
	md = maildir_path(f->mail, "alice@example.test");
	for (int i = 0; i < 3; i++) {
		sub = xasprintf("%s/%s", md, (const char *[]){"tmp", "new",
							       "cur"}[i]);
		assert_int_equal(stat(sub, &st), 0);
		assert_true(S_ISDIR(st.st_mode));
		free(sub);
	}
	free(md);
	/* one file: the whole spool, named with its sizes */
	assert_int_equal(find_in(f, "alice@example.test", "hello", &path), 1);
	char *body = slurp(path, &len);
	want = xasprintf("%s%s", hdr, text);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(body, want, len);
	char *tag = xasprintf(",S=%zu,W=%zu", len, len);
	assert_non_null(strstr(path, tag));
	assert_non_null(strstr(path, ".mx.example.test,"));
	free(tag);
	free(want);
	free(body);
	free(path);
	/* nothing left behind, nothing queued */
	assert_int_equal(count_rel(f, "queue/tmp"), 0);
	assert_int_equal(count_rel(f, "queue/incoming"), 0);
}

static void
test_batch_of_jobs(void **state)
{
	struct fixture *f = *state;
	static const char *const one[] = {"alice@example.test", NULL};
	static const char *const two[] = {"alice@example.test",
					  "bob@example.test", NULL};
	static const char *const other[] = {"carol@other.test", NULL};
	const unsigned n = 24;
	char text[64], *pa, *pb;
	struct stat sa, sb;

	/* submitted together: the thread takes what has queued up while it
	 * was busy as one batch (how many batches does not change what
	 * each job must come to) */
	for (unsigned i = 0; i < n; i++) {
		snprintf(text, sizeof(text), "Subject: m%u\n\nbody-%u-end\n", i,
			 i);
		committer_submit(f->c,
				 make_job(f, i, "", text,
					  i % 3 == 0 ? two
					  : i % 3 == 1 ? one
						       : other,
					  NULL));
	}
	assert_int_equal(committer_pending(f->c), n);
	run_until(f, n);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(f->result[i], 0);
		/* completions in the order of submission */
		assert_int_equal(f->order[i], i);
		snprintf(text, sizeof(text), "body-%u-end", i);
		if (i % 3 == 2) {
			assert_int_equal(
			    find_in(f, "carol@other.test", text, NULL), 1);
			continue;
		}
		assert_int_equal(find_in(f, "alice@example.test", text, &pa),
				 1);
		if (i % 3 == 0) {
			/* two mailboxes: one file, two links */
			assert_int_equal(
			    find_in(f, "bob@example.test", text, &pb), 1);
			assert_int_equal(stat(pa, &sa), 0);
			assert_int_equal(stat(pb, &sb), 0);
			assert_int_equal(sa.st_ino, sb.st_ino);
			assert_int_equal(sa.st_nlink, 2);
			free(pb);
		} else {
			assert_int_equal(find_in(f, "bob@example.test", text,
						 NULL),
					 0);
		}
		free(pa);
	}
	/* every message under its own name */
	char *md = maildir_path(f->mail, "alice@example.test");
	char *newdir = xasprintf("%s/new", md);
	size_t k;
	char **v = list_dir(newdir, &k);
	assert_int_equal(k, 16);
	free_list(v, k);
	free(newdir);
	free(md);
	assert_int_equal(count_rel(f, "queue/tmp"), 0);
}

static void
test_remote_recipient_queued(void **state)
{
	struct fixture *f = *state;
	static const char *const to[] = {"alice@example.test", NULL};
	const char *hdr = "Return-Path: <sender@example.org>\n";
	const char *text = "Subject: mixed\n\nfor both\n";
	struct queue_envelope e;
	uint64_t off;
	char *err = NULL, *qf, *body, *id;
	size_t len;

	struct delivery_job *job =
	    make_job(f, 0, hdr, text, to, "far@remote.example");
	id = xstrdup(job->id);
	committer_submit(f->c, job);
	run_until(f, 1);
	assert_int_equal(f->result[0], 0);
	/* the local copy has the local header */
	assert_int_equal(find_in(f, "alice@example.test", "for both", &qf), 1);
	body = slurp(qf, &len);
	assert_int_equal(strncmp(body, hdr, strlen(hdr)), 0);
	free(body);
	free(qf);
	/* the queue file: the envelope, then the message without it */
	qf = xasprintf("%s/queue/incoming/%s", f->dir, id);
	memset(&e, 0, sizeof(e));
	if (queue_envelope_read(qf, &e, &off, &err) < 0)
		fail_msg("%s: %s", qf, err);
	assert_string_equal(e.id, id);
	assert_string_equal(e.sender, "sender@example.org");
	assert_int_equal(e.nrcpts, 1);
	assert_string_equal(e.rcpts[0].addr, "far@remote.example");
	assert_int_equal(e.size, strlen(text));
	body = slurp(qf, &len);
	assert_true(off + strlen(text) <= len);
	assert_memory_equal(body + off, text, strlen(text));
	free(body);
	queue_envelope_clear(&e);
	free(qf);
	free(id);
	assert_int_equal(count_rel(f, "queue/tmp"), 0);
	assert_int_equal(count_rel(f, "queue/incoming"), 1);
}

/*
 * Phase 3 fails for one job of a batch (its second Maildir cannot be
 * made: a file stands where its domain's directory should be): that job
 * fails, its entry in the first Maildir is taken back (a retry must not
 * deliver twice), and the jobs around it are delivered.
 */
static void
test_failing_placement_fails_only_its_job(void **state)
{
	struct fixture *f = *state;
	static const char *const good[] = {"alice@example.test", NULL};
	static const char *const bad[] = {"alice@example.test",
					  "x@blocked.test", NULL};
	char *blocker = path_of(f, "mail/blocked.test");
	int fd = open(blocker, O_WRONLY | O_CREAT | O_EXCL, 0640);

	assert_true(fd >= 0);
	close(fd);
	committer_submit(f->c, make_job(f, 0, "", "m-before\n", good, NULL));
	committer_submit(f->c, make_job(f, 1, "", "m-bad\n", bad, NULL));
	committer_submit(f->c, make_job(f, 2, "", "m-after\n", good, NULL));
	run_until(f, 3);
	assert_int_equal(f->result[0], 0);
	assert_int_equal(f->result[1], -1);
	assert_int_equal(f->result[2], 0);
	assert_non_null(strstr(f->error[1], "deliver to "));
	assert_non_null(strstr(f->error[1], "/mail/blocked.test/x/Maildir/new/"));
	assert_int_equal(find_in(f, "alice@example.test", "m-before", NULL), 1);
	assert_int_equal(find_in(f, "alice@example.test", "m-bad", NULL), 0);
	assert_int_equal(find_in(f, "alice@example.test", "m-after", NULL), 1);
	assert_int_equal(count_rel(f, "queue/tmp"), 0);
	free(blocker);
}

/*
 * Phase 5 fails (queue/incoming/ is gone): the job with a remote
 * recipient fails, its Maildir entry and its queue file are removed;
 * a local-only job of the same batch is delivered.
 */
static void
test_failing_queue_phase(void **state)
{
	struct fixture *f = *state;
	static const char *const to[] = {"alice@example.test", NULL};
	char *incoming = path_of(f, "queue/incoming");

	assert_int_equal(rmdir(incoming), 0);
	committer_submit(f->c, make_job(f, 0, "", "q-remote\n", to,
					"far@remote.example"));
	committer_submit(f->c, make_job(f, 1, "", "q-local\n", to, NULL));
	run_until(f, 2);
	assert_int_equal(f->result[0], -1);
	assert_non_null(strstr(f->error[0], "queue "));
	assert_non_null(strstr(f->error[0], "/queue/incoming/"));
	assert_int_equal(f->result[1], 0);
	assert_int_equal(find_in(f, "alice@example.test", "q-remote", NULL), 0);
	assert_int_equal(find_in(f, "alice@example.test", "q-local", NULL), 1);
	/* neither the spool nor the queue file is left in queue/tmp */
	assert_int_equal(count_rel(f, "queue/tmp"), 0);
	free(incoming);
}

/* Phase 1 fails (the spool's directory does not exist): nothing placed. */
static void
test_failing_write_phase(void **state)
{
	struct fixture *f = *state;
	static const char *const to[] = {"alice@example.test", NULL};
	struct delivery_job *job = make_job(f, 0, "", "w-lost\n", to, NULL);
	char *tmp = xasprintf("%s/no-such-dir/%s", f->dir, job->id);

	spool_free(&job->spool);
	job->spool = spool_new(tmp);
	assert_int_equal(spool_write(job->spool, "w-lost\n", 7), 0);
	committer_submit(f->c, job);
	committer_submit(f->c, make_job(f, 1, "", "w-kept\n", to, NULL));
	run_until(f, 2);
	assert_int_equal(f->result[0], -1);
	assert_non_null(strstr(f->error[0], "spool "));
	assert_non_null(strstr(f->error[0], strerror(ENOENT)));
	assert_int_equal(f->result[1], 0);
	assert_int_equal(find_in(f, "alice@example.test", "w-lost", NULL), 0);
	assert_int_equal(find_in(f, "alice@example.test", "w-kept", NULL), 1);
	free(tmp);
}

/* A mailbox without '@' has no Maildir: the job fails with EINVAL. */
static void
test_mailbox_without_domain(void **state)
{
	struct fixture *f = *state;
	static const char *const to[] = {"noat", NULL};

	committer_submit(f->c, make_job(f, 0, "", "x\n", to, NULL));
	run_until(f, 1);
	assert_int_equal(f->result[0], -1);
	assert_non_null(strstr(f->error[0], "mailbox noat: "));
	assert_non_null(strstr(f->error[0], strerror(EINVAL)));
	assert_int_equal(count_rel(f, "queue/tmp"), 0);
}

/*
 * Shutdown with jobs pending, the loop never run: committer_free lets the
 * thread finish every job, then runs their completions; a job whose
 * session went away (done cleared) is committed all the same.
 */
static void
test_shutdown_finishes_pending_jobs(void **state)
{
	struct fixture *f = *state;
	static const char *const to[] = {"bob@example.test", NULL};
	const unsigned n = 12;
	char text[32];

	for (unsigned i = 0; i < n; i++) {
		snprintf(text, sizeof(text), "s-%u-end\n", i);
		struct delivery_job *job = make_job(f, i, "", text, to, NULL);
		if (i == 5) {
			job->done = NULL;
			job->arg = NULL;
		}
		committer_submit(f->c, job);
	}
	assert_int_equal(committer_pending(f->c), n);
	committer_free(&f->c);
	assert_null(f->c);
	assert_int_equal(f->ndone, n - 1);
	for (unsigned i = 0; i < n; i++) {
		snprintf(text, sizeof(text), "s-%u-end", i);
		assert_int_equal(find_in(f, "bob@example.test", text, NULL), 1);
		if (i != 5)
			assert_int_equal(f->result[i], 0);
	}
	assert_int_equal(count_rel(f, "queue/tmp"), 0);
}

static const char prefix_text[] = "Authentication-Results: mx.example.test;\n"
				  "\tspf=pass smtp.mailfrom=example.org\n";

static size_t
count_lf(const char *s, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		k += s[i] == '\n';
	return k;
}

/*
 * The prefix goes after the local header of the local copy and first in
 * the queue copy; S= and W= count it. body_len picks an in-memory spool
 * or one spilled to a file (past SPOOL_MEM_MAX).
 */
static void
prefix_case(struct fixture *f, size_t body_len)
{
	static const char *const to[] = {"alice@example.test", NULL};
	const char *hdr = "Return-Path: <sender@example.org>\n";
	char *text = xmalloc(body_len + 1), *pfx = xstrdup(prefix_text);
	char *path, *body, *want, *qf, *id, *tag, *err = NULL;
	struct queue_envelope e;
	size_t len;
	uint64_t off;

	memcpy(text, "Subject: p\n\n", 12);
	for (size_t i = 12; i < body_len; i++)
		text[i] = (i % 70 == 69) ? '\n' : 'a' + (char)(i % 26);
	text[body_len - 1] = '\n';
	text[body_len] = '\0';
	struct delivery_job *job =
	    make_job(f, 0, hdr, text, to, "far@remote.example");
	job->vsize = spool_size(job->spool) + count_lf(hdr, strlen(hdr)) +
		     count_lf(text, body_len);
	job->prefix = pfx;
	job->prefix_len = strlen(pfx);
	id = xstrdup(job->id);
	committer_submit(f->c, job);
	run_until(f, 1);
	assert_int_equal(f->result[0], 0);

	assert_int_equal(find_in(f, "alice@example.test", "Subject: p", &path),
			 1);
	body = slurp(path, &len);
	want = xasprintf("%s%s%s", hdr, prefix_text, text);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(body, want, len);
	tag = xasprintf(",S=%zu,W=%zu", len, len + count_lf(want, len));
	if (strstr(path, tag) == NULL)
		fail_msg("%s: not %s", path, tag);
	free(tag);
	free(body);
	free(path);

	qf = xasprintf("%s/queue/incoming/%s", f->dir, id);
	memset(&e, 0, sizeof(e));
	if (queue_envelope_read(qf, &e, &off, &err) < 0)
		fail_msg("%s: %s", qf, err);
	assert_int_equal(e.size, strlen(want) - strlen(hdr));
	body = slurp(qf, &len);
	assert_true(off + e.size <= len);
	assert_memory_equal(body + off, want + strlen(hdr), e.size);
	free(body);
	queue_envelope_clear(&e);
	free(qf);
	free(want);
	free(text);
	free(id);
	assert_int_equal(count_rel(f, "queue/tmp"), 0);
}

static void
test_prefix_in_memory(void **state)
{
	prefix_case(*state, 200);
}

static void
test_prefix_spilled(void **state)
{
	struct fixture *f = *state;

	prefix_case(f, SPOOL_MEM_MAX + 5000);
}

/*
 * A quarantined message goes into the .Junk folder of every mailbox,
 * made on first use as a Maildir++ folder (with its maildirfolder
 * marker), and not into new/.
 */
static void
test_quarantine_into_junk(void **state)
{
	struct fixture *f = *state;
	static const char *const to[] = {"alice@example.test",
					 "bob@example.test", NULL};
	struct delivery_job *job;
	char *md, *p, **v;
	size_t n;
	struct stat st;

	job = make_job(f, 0, "", "Subject: junk\n\nspam\n", to, NULL);
	job->quarantine = true;
	committer_submit(f->c, job);
	run_until(f, 1);
	assert_int_equal(f->result[0], 0);
	for (int i = 0; i < 2; i++) {
		md = maildir_path(f->mail, to[i]);
		p = xasprintf("%s/.Junk/new", md);
		v = list_dir(p, &n);
		assert_int_equal(n, 1);
		free_list(v, n);
		free(p);
		for (int k = 0; k < 2; k++) {
			p = xasprintf("%s/.Junk/%s", md,
				      k == 0 ? "tmp" : "cur");
			assert_int_equal(stat(p, &st), 0);
			assert_true(S_ISDIR(st.st_mode));
			free(p);
		}
		p = xasprintf("%s/.Junk/maildirfolder", md);
		assert_int_equal(stat(p, &st), 0);
		assert_true(S_ISREG(st.st_mode));
		free(p);
		free(md);
		assert_int_equal(find_in(f, to[i], "spam", NULL), 0);
	}
	/* a second one finds the folder made */
	job = make_job(f, 1, "", "Subject: junk2\n\nspam2\n", to, NULL);
	job->quarantine = true;
	committer_submit(f->c, job);
	run_until(f, 2);
	assert_int_equal(f->result[1], 0);
	md = maildir_path(f->mail, to[0]);
	p = xasprintf("%s/.Junk/new", md);
	v = list_dir(p, &n);
	assert_int_equal(n, 2);
	free_list(v, n);
	free(p);
	free(md);
}

/*
 * submission.save_sent: the sender's .Sent/cur/<name>:2,S holds the
 * message as the queue file does (no local header, the prefix first),
 * with S= and W= of that copy; with a local header it is a copy, without
 * one a hard link of the spool. body_len: in memory or spilled; two jobs
 * in a batch take the syncfs path.
 */
static void
sent_case(struct fixture *f, size_t body_len)
{
	static const char *const to[] = {"bob@example.test", NULL};
	const char *hdr = "Return-Path: <alice@example.test>\n"
			  "Delivered-To: bob@example.test\n";
	char *text = xmalloc(body_len + 1), *md, *dir, *path, *body, *tag;
	char *want;
	struct delivery_job *job[2];
	struct stat st;
	size_t len;

	memcpy(text, "Subject: s\n\n", 12);
	for (size_t i = 12; i < body_len; i++)
		text[i] = (i % 70 == 69) ? '\n' : 'a' + (char)(i % 26);
	text[body_len - 1] = '\n';
	text[body_len] = '\0';
	/* 0: local and remote recipients (a local header); 1: remote only */
	job[0] = make_job(f, 0, hdr, text, to, "far@remote.example");
	job[1] = make_job(f, 1, "", text, NULL, "far@remote.example");
	for (int i = 0; i < 2; i++) {
		job[i]->vsize = spool_size(job[i]->spool) +
				count_lf(i == 0 ? hdr : "", i == 0 ? strlen(hdr)
								  : 0) +
				count_lf(text, body_len);
		job[i]->prefix = xstrdup(prefix_text);
		job[i]->prefix_len = strlen(prefix_text);
		job[i]->sent_mailbox = xstrdup("alice@example.test");
		committer_submit(f->c, job[i]);
	}
	run_until(f, 2);
	assert_int_equal(f->result[0], 0);
	assert_int_equal(f->result[1], 0);
	want = xasprintf("%s%s", prefix_text, text);
	md = maildir_path(f->mail, "alice@example.test");
	dir = xasprintf("%s/.Sent/cur", md);
	{
		size_t n;
		char **v = list_dir(dir, &n);

		assert_int_equal(n, 2);
		for (size_t i = 0; i < n; i++) {
			path = xasprintf("%s/%s", dir, v[i]);
			body = slurp(path, &len);
			assert_int_equal(len, strlen(want));
			assert_memory_equal(body, want, len);
			tag = xasprintf(",S=%zu,W=%zu:2,S", len,
					len + count_lf(want, len));
			if (strstr(path, tag) == NULL ||
			    strcmp(path + strlen(path) - strlen(tag), tag) != 0)
				fail_msg("%s: not %s", path, tag);
			assert_int_equal(stat(path, &st), 0);
			assert_int_equal(st.st_nlink, 1);
			free(tag);
			free(body);
			free(path);
		}
		free_list(v, n);
	}
	free(dir);
	/* a Maildir++ folder; nothing in new/, tmp/ or alice's inbox */
	for (int k = 0; k < 2; k++) {
		size_t n;
		char **v;

		dir = xasprintf("%s/.Sent/%s", md, k == 0 ? "new" : "tmp");
		v = list_dir(dir, &n);
		assert_int_equal(n, 0);
		free_list(v, n);
		assert_int_equal(stat(dir, &st), 0);
		free(dir);
	}
	path = xasprintf("%s/.Sent/maildirfolder", md);
	assert_int_equal(stat(path, &st), 0);
	free(path);
	assert_int_equal(find_in(f, "alice@example.test", "Subject: s", NULL),
			 0);
	/* bob's copy as always */
	assert_int_equal(find_in(f, to[0], "Subject: s", &path), 1);
	body = slurp(path, &len);
	assert_int_equal(len, strlen(hdr) + strlen(want));
	assert_memory_equal(body, hdr, strlen(hdr));
	free(body);
	free(path);
	free(md);
	free(want);
	free(text);
	assert_int_equal(count_rel(f, "queue/tmp"), 0);
	assert_int_equal(count_rel(f, "queue/incoming"), 2);
}

static void
test_sent_copy_in_memory(void **state)
{
	sent_case(*state, 300);
}

static void
test_sent_copy_spilled(void **state)
{
	sent_case(*state, SPOOL_MEM_MAX + 3000);
}

/* A Sent folder that cannot be made fails the job, and its other
 * entries go: bob's copy and the queue file. */
static void
test_sent_copy_failure_takes_all_back(void **state)
{
	struct fixture *f = *state;
	static const char *const to[] = {"bob@example.test", NULL};
	struct delivery_job *job;
	char *md, *p;
	int fd;

	md = maildir_path(f->mail, "alice@example.test");
	assert_int_equal(maildir_create(md), 0);
	p = xasprintf("%s/.Sent", md);
	fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0640);
	assert_true(fd >= 0);
	close(fd);
	job = make_job(f, 0, "Return-Path: <alice@example.test>\n",
		       "Subject: f\n\nx\n", to, "far@remote.example");
	job->sent_mailbox = xstrdup("alice@example.test");
	committer_submit(f->c, job);
	run_until(f, 1);
	assert_int_equal(f->result[0], -1);
	if (strstr(f->error[0], "save to ") == NULL)
		fail_msg("error: %s", f->error[0]);
	assert_int_equal(find_in(f, to[0], "Subject: f", NULL), 0);
	assert_int_equal(count_rel(f, "queue/incoming"), 0);
	assert_int_equal(count_rel(f, "queue/tmp"), 0);
	free(p);
	free(md);
}

/* Shutdown with nothing to do returns at once, twice is harmless. */
/* ---- the audit log ---------------------------------------------------- */

/* The value of "key":"..." in a line (a plain value: no escapes). */
static char *
field(const char *line, const char *key)
{
	char *pat = xasprintf("\"%s\":\"", key);
	const char *p = strstr(line, pat), *q;

	assert_non_null(p);
	p += strlen(pat);
	q = strchr(p, '"');
	assert_non_null(q);
	free(pat);
	return xstrndup(p, (size_t)(q - p));
}

/*
 * A batch: a line per committed job, each linked to the one before, with
 * the SHA-256 of the Maildir file (local) or of the message in the queue
 * file (remote only, without the local header).
 */
static void
test_audit_lines(void **state)
{
	struct fixture *f = *state;
	static const char *const to[] = {"alice@example.test", NULL};
	const char *hdr = "Return-Path: <s@example.org>\n";
	char *path, *log = path_of(f, "log/audit.log"), *text, *line, *save;
	char want[HASHCHAIN_HEX_LEN + 1], *got;
	struct hashchain_walk w;
	const char *why = NULL;
	size_t len, n = 0;

	committer_submit(f->c, make_job(f, 0, hdr, "a-local\n", to, NULL));
	committer_submit(f->c, make_job(f, 1, hdr, "b-remote\n", NULL,
					"r@remote.test"));
	run_until(f, 2);
	assert_int_equal(f->result[0], 0);
	assert_int_equal(f->result[1], 0);
	text = slurp(log, &len);
	hashchain_walk_init(&w);
	for (line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save), n++) {
		assert_int_equal(hashchain_walk_line(&w, line, strlen(line),
						     &why), 0);
		got = field(line, "sha256");
		if (n == 0) {
			size_t blen;
			char *body;

			assert_int_equal(find_in(f, "alice@example.test",
						 "a-local", &path), 1);
			body = slurp(path, &blen);
			hashchain_sha256_hex(body, blen, want);
			free(body);
			free(path);
			assert_non_null(strstr(line, "\"mailboxes\":["
						     "\"alice@example.test\"]"));
		} else {
			hashchain_sha256_hex("b-remote\n", 9, want);
			assert_non_null(strstr(line, "\"remote\":["
						     "\"r@remote.test\"]"));
			assert_non_null(strstr(line, "\"sender\":"
						     "\"sender@example.org\""));
		}
		assert_string_equal(got, want);
		assert_non_null(strstr(line, "\"origin\":\"godwit\""));
		free(got);
	}
	assert_int_equal(n, 2);
	assert_string_equal(w.first_prev, HASHCHAIN_GENESIS);
	free(text);
	free(log);
}

/* The audit log cannot be written: every job of the batch fails, and
 * nothing of it stays in the Maildirs or the queue. */
static void
test_audit_failure_fails_the_batch(void **state)
{
	struct fixture *f = *state;
	static const char *const to[] = {"alice@example.test", NULL};

	mkdir_rel(f, "log/audit.log");	/* a directory: open() fails */
	committer_submit(f->c, make_job(f, 0, "", "x-local\n", to, NULL));
	committer_submit(f->c, make_job(f, 1, "", "x-both\n", to,
					"r@remote.test"));
	run_until(f, 2);
	assert_int_equal(f->result[0], -1);
	assert_int_equal(f->result[1], -1);
	assert_string_equal(f->error[0], "the audit log could not be written");
	assert_int_equal(find_in(f, "alice@example.test", "x-", NULL), 0);
	assert_int_equal(count_rel(f, "queue/incoming"), 0);
	assert_int_equal(count_rel(f, "queue/tmp"), 0);
}

/* audit.enabled off: no line, and no file needed. */
static void
test_audit_off(void **state)
{
	struct fixture *f = *state;
	static const char *const to[] = {"alice@example.test", NULL};
	char *log = path_of(f, "log/audit.log");
	struct stat st;

	committer_set_audit(f->c, false);
	committer_submit(f->c, make_job(f, 0, "", "quiet\n", to, NULL));
	run_until(f, 1);
	assert_int_equal(f->result[0], 0);
	assert_int_equal(stat(log, &st), -1);
	free(log);
}

static void
test_shutdown_idle(void **state)
{
	struct fixture *f = *state;

	committer_free(&f->c);
	assert_null(f->c);
	committer_free(&f->c);
	assert_int_equal(f->ndone, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_one_local_message, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_batch_of_jobs, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_remote_recipient_queued,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_failing_placement_fails_only_its_job, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failing_queue_phase, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_failing_write_phase, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_mailbox_without_domain,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_shutdown_finishes_pending_jobs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_lines, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
		    test_audit_failure_fails_the_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_off, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_shutdown_idle, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_prefix_in_memory, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_prefix_spilled, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_quarantine_into_junk,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_sent_copy_in_memory,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_sent_copy_spilled, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
		    test_sent_copy_failure_takes_all_back, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
