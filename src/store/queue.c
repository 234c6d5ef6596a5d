/*
 * The queue on disk (see queue.h and docs/queue-format.md): ids, reading
 * queue files and state files, moving messages between the directories,
 * and the read-only queue admin commands. The records' text is
 * mail/envelope.c's.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "daemon/config.h"
#include "store/datadir.h"
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
		queue_envelope_free(e);
		*error_r = xasprintf("%s: size does not match (torn file?)",
				     path);
		goto fail;
	}
	if (pread(fd, endbuf, sizeof(QUEUE_END) - 1,
		  (off_t)(hdr_len + e->size)) != sizeof(QUEUE_END) - 1 ||
	    memcmp(endbuf, QUEUE_END, sizeof(QUEUE_END) - 1) != 0) {
		queue_envelope_free(e);
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
	queue_state_free(st);
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

char **
queue_ids(const char *data_dir, const char *dir, size_t *n_r)
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
		if (!queue_id_valid(de->d_name))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			v = xreallocarray(v, cap, sizeof(*v));
		}
		v[n++] = xstrdup(de->d_name);
	}
	closedir(dp);
	if (n > 0)
		qsort(v, n, sizeof(*v), cmp_names);
	*n_r = n;
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
			queue_state_free(&st);
			queue_envelope_free(&e);
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

char *
queue_control_path(const char *data_dir)
{
	return xasprintf("%s/control/control.sock", data_dir);
}

/* ---- admin ---------------------------------------------------------- */

/* "3d4h", "12m", "40s": a short age for the listing. */
static const char *
fmt_age(int64_t s)
{
	static char buf[32];

	if (s < 0)
		s = 0;
	if (s >= 86400)
		snprintf(buf, sizeof(buf), "%lldd%lldh", (long long)(s / 86400),
			 (long long)(s % 86400 / 3600));
	else if (s >= 3600)
		snprintf(buf, sizeof(buf), "%lldh%lldm", (long long)(s / 3600),
			 (long long)(s % 3600 / 60));
	else if (s >= 60)
		snprintf(buf, sizeof(buf), "%lldm", (long long)(s / 60));
	else
		snprintf(buf, sizeof(buf), "%llds", (long long)s);
	return buf;
}

static void
json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void
list_one(const struct config *config, const char *state,
	 const struct queue_envelope *e, bool json)
{
	static const char *const names[] = {"pending", "done", "failed"};
	struct queue_state st;
	char *err = NULL;
	int64_t now = (int64_t)time(NULL);

	if (queue_state_read(config->data_dir, e->id, e->nrcpts, &st, &err) <
	    0) {
		fprintf(stderr, "godwit: %s\n", err);
		free(err);
	}
	if (json) {
		printf("{\"id\":\"%s\",\"state\":\"%s\",\"arrival\":%lld,"
		       "\"sender\":",
		       e->id, state, (long long)e->arrival);
		json_str(stdout, e->sender);
		printf(",\"size\":%llu,\"attempts\":%u,\"next_attempt\":",
		       (unsigned long long)e->size, st.attempts);
		if (st.attempts > 0 && strcmp(state, "deferred") == 0)
			printf("%lld", (long long)st.next_attempt);
		else
			printf("null");
		printf(",\"last_error\":");
		if (st.last_error[0] != '\0')
			json_str(stdout, st.last_error);
		else
			printf("null");
		printf(",\"recipients\":[");
		for (size_t i = 0; i < e->nrcpts; i++) {
			printf("%s{\"addr\":", i ? "," : "");
			json_str(stdout, e->rcpts[i].addr);
			printf(",\"status\":\"%s\",\"error\":",
			       names[st.status[i]]);
			if (st.errors[i][0] != '\0')
				json_str(stdout, st.errors[i]);
			else
				printf("null");
			putchar('}');
		}
		printf("]}\n");
	} else {
		printf("%-16s %-8s %-8s %-8llu <%s>\n", e->id, state,
		       fmt_age(now - e->arrival), (unsigned long long)e->size,
		       e->sender);
		for (size_t i = 0; i < e->nrcpts; i++) {
			if (st.status[i] == QRS_DONE)
				continue;
			printf("    <%s>%s\n", e->rcpts[i].addr,
			       st.status[i] == QRS_FAILED ? " (failed)" : "");
			if (st.errors[i][0] != '\0')
				printf("        %s\n", st.errors[i]);
		}
		if (st.attempts > 0 && strcmp(state, "deferred") == 0)
			printf("    attempts %u, next in %s\n", st.attempts,
			       fmt_age(st.next_attempt - now));
	}
	queue_state_free(&st);
}

static int
queue_list(const struct config *config, bool json)
{
	int count = 0;

	if (!json)
		printf("%-16s %-8s %-8s %-8s %s\n", "ID", "STATE", "AGE",
		       "SIZE", "SENDER / RECIPIENTS");
	for (const char *const *s = queue_states; *s != NULL; s++) {
		char *dir = xasprintf("%s/queue/%s", config->data_dir, *s);
		DIR *d = opendir(dir);
		struct dirent *de;

		if (d == NULL) {
			free(dir);
			continue;
		}
		while ((de = readdir(d)) != NULL) {
			struct queue_envelope e;
			uint64_t off;
			char *path, *err = NULL;

			if (de->d_name[0] == '.')
				continue;
			path = xasprintf("%s/%s", dir, de->d_name);
			if (queue_envelope_read(path, &e, &off, &err) < 0) {
				fprintf(stderr, "godwit: %s\n", err);
				free(err);
				free(path);
				continue;
			}
			list_one(config, *s, &e, json);
			count++;
			queue_envelope_free(&e);
			free(path);
		}
		closedir(d);
		free(dir);
	}
	if (!json)
		printf("%d message%s in the queue\n", count,
		       count == 1 ? "" : "s");
	return 0;
}

static int
queue_show(const struct config *config, const char *id)
{
	if (!queue_id_valid(id)) {
		fprintf(stderr, "godwit: %s: not a queue id\n", id);
		return 1;
	}
	for (const char *const *s = queue_states; *s != NULL; s++) {
		char *path = xasprintf("%s/queue/%s/%s", config->data_dir, *s,
				       id);
		struct queue_envelope e;
		uint64_t off;
		char *err = NULL;

		if (access(path, F_OK) != 0) {
			free(path);
			continue;
		}
		if (queue_envelope_read(path, &e, &off, &err) < 0) {
			fprintf(stderr, "godwit: %s\n", err);
			free(err);
			free(path);
			return 1;
		}
		printf("id: %s\nstate: %s\narrival: %lld\nclient: %s\n"
		       "helo: %s\nsender: <%s>\nsize: %llu\n",
		       e.id, *s, (long long)e.arrival, e.client_ip, e.helo,
		       e.sender, (unsigned long long)e.size);
		for (size_t i = 0; i < e.nrcpts; i++)
			printf("recipient: <%s>\n", e.rcpts[i].addr);
		/* the message header */
		FILE *f = fopen(path, "r");
		if (f != NULL && fseeko(f, (off_t)off, SEEK_SET) == 0) {
			char line[1024];
			putchar('\n');
			while (fgets(line, sizeof(line), f) != NULL &&
			       line[0] != '\n')
				fputs(line, stdout);
		}
		if (f != NULL)
			fclose(f);
		queue_envelope_free(&e);
		free(path);
		return 0;
	}
	fprintf(stderr, "godwit: %s: no such message in the queue\n", id);
	return 1;
}

/*
 * Sends one command to the running daemon's queue runner. Returns its
 * answer (caller frees), or NULL with errno when nobody listens.
 */
static char *
control_send(const struct config *config, const char *cmd)
{
	char *path = queue_control_path(config->data_dir), buf[512];
	struct sockaddr_un sun;
	size_t o = 0;
	ssize_t n;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		free(path);
		errno = ENAMETOOLONG;
		return NULL;
	}
	memcpy(sun.sun_path, path, strlen(path));
	free(path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return NULL;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return NULL;
	}
	{
		struct timeval tv = {30, 0};
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	}
	if (write_full(fd, cmd, strlen(cmd)) < 0 ||
	    write_full(fd, "\n", 1) < 0) {
		close(fd);
		return xstrdup("error cannot talk to the daemon");
	}
	while (o + 1 < sizeof(buf) &&
	       (n = read(fd, buf + o, sizeof(buf) - 1 - o)) > 0)
		o += (size_t)n;
	close(fd);
	buf[o] = '\0';
	if (o > 0 && buf[o - 1] == '\n')
		buf[o - 1] = '\0';
	return xstrdup(o > 0 ? buf : "error no answer from the daemon");
}

static int
queue_control(const struct config *config, const char *op, const char *target,
	      bool bounce)
{
	char cmd[128], *answer;
	int count = 0;

	if (strcmp(target, "all") != 0 && !queue_id_valid(target)) {
		fprintf(stderr, "godwit: %s: not a queue id\n", target);
		return 1;
	}
	snprintf(cmd, sizeof(cmd), "%s %s%s", op, target,
		 bounce ? " bounce" : "");
	if ((answer = control_send(config, cmd)) != NULL) {
		int r = strncmp(answer, "ok ", 3) == 0 ? 0 : 1;
		if (r == 0)
			printf("%s: %s message%s\n", op, answer + 3,
			       strcmp(answer + 3, "1") == 0 ? "" : "s");
		else
			fprintf(stderr, "godwit: %s\n",
				strncmp(answer, "error ", 6) == 0 ? answer + 6
								  : answer);
		free(answer);
		return r;
	}
	if (bounce) {
		fprintf(stderr,
			"godwit: delete --bounce needs the running daemon "
			"(%s)\n",
			strerror(errno));
		return 1;
	}
	/* no daemon: the files are ours to move, as the daemon's user, so
	 * that the state files written here stay the runner's to rewrite */
	{
		char *err = NULL;
		if (datadir_become_daemon(config, &err) < 0) {
			fprintf(stderr, "godwit: %s\n", err);
			free(err);
			return 1;
		}
	}
	if (strcmp(target, "all") == 0) {
		for (const char *const *s = queue_states; *s != NULL; s++) {
			size_t n;
			char **v = queue_ids(config->data_dir, *s, &n);
			for (size_t i = 0; i < n; i++) {
				if (queue_file_op(config->data_dir, op, v[i]) >
				    0)
					count++;
				free(v[i]);
			}
			free(v);
		}
	} else {
		int r = queue_file_op(config->data_dir, op, target);
		if (r < 0) {
			fprintf(stderr, "godwit: %s: %s\n", target,
				strerror(errno));
			return 1;
		}
		if (r == 0) {
			fprintf(stderr,
				"godwit: %s: no such message (or not one "
				"%s applies to)\n",
				target, op);
			return 1;
		}
		count = 1;
	}
	printf("%s: %d message%s (daemon not running)\n", op, count,
	       count == 1 ? "" : "s");
	return 0;
}

static int
queue_flush(const struct config *config)
{
	char *answer = control_send(config, "flush");

	if (answer == NULL) {
		fprintf(stderr,
			"godwit: queue flush: the daemon is not running "
			"(%s)\n",
			strerror(errno));
		return 1;
	}
	if (strncmp(answer, "ok ", 3) != 0) {
		fprintf(stderr, "godwit: %s\n", answer);
		free(answer);
		return 1;
	}
	printf("flush: %s deferred message%s scheduled now\n", answer + 3,
	       strcmp(answer + 3, "1") == 0 ? "" : "s");
	free(answer);
	return 0;
}

int
queue_admin(const struct config *config, int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "list") == 0)
		return queue_list(config, false);
	if (argc == 3 && strcmp(argv[1], "list") == 0 &&
	    strcmp(argv[2], "--json") == 0)
		return queue_list(config, true);
	if (argc == 3 && strcmp(argv[1], "show") == 0)
		return queue_show(config, argv[2]);
	if (argc == 2 && strcmp(argv[1], "flush") == 0)
		return queue_flush(config);
	if (argc == 3 && (strcmp(argv[1], "hold") == 0 ||
			  strcmp(argv[1], "release") == 0 ||
			  strcmp(argv[1], "delete") == 0))
		return queue_control(config, argv[1], argv[2], false);
	if (argc == 4 && strcmp(argv[1], "delete") == 0 &&
	    strcmp(argv[3], "--bounce") == 0)
		return queue_control(config, argv[1], argv[2], true);
	fprintf(stderr, "usage: godwit queue list [--json]\n"
			"       godwit queue show ID\n"
			"       godwit queue hold ID|all\n"
			"       godwit queue release ID|all\n"
			"       godwit queue delete ID|all [--bounce]\n"
			"       godwit queue flush\n");
	return 2;
}
