/*
 * The log line writer (lib/log.c) into a temporary file opened O_APPEND,
 * as the daemon's log file is: the head fields, the levels and their
 * names, the timestamp, both formats, the 4096-byte bound with
 * truncated=yes exactly where a field stops fitting, and one write() per
 * line, so that lines from processes appending at once never interleave.
 * (The value encoder itself is tests/unit/test_logfmt.c.)
 */
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "unit.h"
#include "lib/log.h"

#define LINE_MAX_BYTES 4096

static char path[64];

/* Fields of one line, decoded. */
struct got {
	int n;
	char key[16][32];
	char val[16][LINE_MAX_BYTES];
	size_t len[16];
};

static void
collect(void *ctx, const char *key, size_t key_len, const unsigned char *v,
	size_t vl)
{
	struct got *g = ctx;

	assert_true(g->n < 16 && key_len < 32 && vl < LINE_MAX_BYTES);
	memcpy(g->key[g->n], key, key_len);
	g->key[g->n][key_len] = '\0';
	memcpy(g->val[g->n], v, vl);
	g->val[g->n][vl] = '\0';
	g->len[g->n] = vl;
	g->n++;
}

/* Starts logging into a fresh temporary file, O_APPEND. */
static void
log_to_file(enum log_format format, int level)
{
	int fd;

	snprintf(path, sizeof(path), "/tmp/godwit-log-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	assert_true(fd >= 0);
	log_set_fd(&fd);	/* closes the file before, if any */
	assert_int_equal(fd, -1);
	log_set_format(format, level);
	log_set_process("test");
}

/* What the file holds (NUL-terminated; *len_r its length); removes it
 * (the next log_to_file closes it). */
static char *
log_file_take(size_t *len_r)
{
	struct stat st;
	char *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	buf = calloc(1, (size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
	close(fd);
	unlink(path);
	*len_r = (size_t)st.st_size;
	return buf;
}

/* Decodes one line (without its newline) of either format into g. */
static void
parse_line(enum log_format format, const char *line, size_t len, struct got *g)
{
	int n;

	memset(g, 0, sizeof(*g));
	if (format == LOG_FORMAT_JSON) {
		n = logfmt_parse_json(line, len, collect, g);
	} else {
		const char *sp = memchr(line, ' ', len);
		assert_non_null(sp);
		/* the timestamp first, bare, then fields */
		assert_int_equal(sp - line, 24);
		n = logfmt_parse_kv(sp, len - (size_t)(sp - line), collect, g);
		/* put the timestamp in front as JSON has it */
		memmove(&g->key[1], &g->key[0], sizeof(g->key[0]) * 15);
		memmove(&g->val[1], &g->val[0], sizeof(g->val[0]) * 15);
		memmove(&g->len[1], &g->len[0], sizeof(g->len[0]) * 15);
		snprintf(g->key[0], sizeof(g->key[0]), "ts");
		memcpy(g->val[0], line, 24);
		g->val[0][24] = '\0';
		g->len[0] = 24;
		g->n++;
		if (n >= 0)
			n++;
	}
	if (n < 0)
		fail_msg("not a line of the format: %.*s", (int)len, line);
	assert_int_equal(n, g->n);
}

/* The one line the file holds, decoded. */
static void
only_line(enum log_format format, struct got *g, size_t *len_r)
{
	size_t len;
	char *buf = log_file_take(&len);

	assert_true(len > 0);
	assert_int_equal(buf[len - 1], '\n');
	assert_null(memchr(buf, '\n', len - 1));
	parse_line(format, buf, len - 1, g);
	if (len_r != NULL)
		*len_r = len;
	free(buf);
}

static const char *
field(const struct got *g, const char *key)
{
	for (int i = 0; i < g->n; i++)
		if (strcmp(g->key[i], key) == 0)
			return g->val[i];
	return NULL;
}

/* ---- the tests ---------------------------------------------------------- */

static void
test_head_fields_in_both_formats(void **state)
{
	struct got g;

	(void)state;
	for (int fmt = LOG_FORMAT_KV; fmt <= LOG_FORMAT_JSON; fmt++) {
		log_to_file(fmt, LOG_INFO);
		log_set_process("worker/3");
		log_event(LOG_INFO, "smtp", "connect", LF_STR("ip", "192.0.2.1"),
			  LF_UINT("n", 18446744073709551615ull),
			  LF_INT("d", -42), LF_BOOL("tls", 1),
			  LF_BOOL("auth", 0), LF_STR_IF(0, "banned", "yes"),
			  LF_STR_IF(1, "reason", "limit"),
			  LF_BYTES("raw", "a\0b", 3));
		only_line(fmt, &g, NULL);
		static const char *const want[][2] = {
		    {"level", "info"},	   {"proc", "worker/3"},
		    {"fac", "smtp"},	   {"event", "connect"},
		    {"ip", "192.0.2.1"},   {"n", "18446744073709551615"},
		    {"d", "-42"},	   {"tls", "yes"},
		    {"auth", "no"},	   {"reason", "limit"},
		};
		assert_int_equal(g.n, 1 + 10 + 1);
		assert_string_equal(g.key[0], "ts");
		for (int i = 0; i < 10; i++) {
			assert_string_equal(g.key[i + 1], want[i][0]);
			assert_string_equal(g.val[i + 1], want[i][1]);
		}
		assert_string_equal(g.key[11], "raw");
		assert_int_equal(g.len[11], 3);
		assert_memory_equal(g.val[11], "a\0b", 3);
	}
}

static void
test_json_line_is_one_object(void **state)
{
	size_t len;
	char *buf;

	(void)state;
	log_to_file(LOG_FORMAT_JSON, LOG_INFO);
	log_event(LOG_INFO, "pop3", "login", LF_UINT("n", 7),
		  LF_STR("user", "a\"b"));
	buf = log_file_take(&len);
	assert_memory_equal(buf, "{\"ts\":\"", 7);
	assert_non_null(strstr(buf, "\",\"level\":\"info\",\"proc\":\"test\","
				    "\"fac\":\"pop3\",\"event\":\"login\","
				    "\"n\":7,\"user\":\"a\\\"b\"}\n"));
	free(buf);
}

static void
test_timestamp(void **state)
{
	regex_t re;
	struct got g;
	struct tm tm;
	time_t before = time(NULL), at;

	(void)state;
	assert_int_equal(regcomp(&re,
				 "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:"
				 "[0-9]{2}\\.[0-9]{3}Z$",
				 REG_EXTENDED | REG_NOSUB),
			 0);
	for (int fmt = LOG_FORMAT_KV; fmt <= LOG_FORMAT_JSON; fmt++) {
		log_to_file(fmt, LOG_INFO);
		log_event(LOG_INFO, "daemon", "tick", LF_UINT("n", 1));
		only_line(fmt, &g, NULL);
		if (regexec(&re, g.val[0], 0, NULL, 0) != 0)
			fail_msg("timestamp %s", g.val[0]);
		/* UTC, and now. time() reads the kernel's coarse clock, which
		 * lags gettimeofday()'s (the log's) by up to a tick: just
		 * after a second begins the log may already be in it */
		memset(&tm, 0, sizeof(tm));
		assert_non_null(strptime(g.val[0], "%Y-%m-%dT%H:%M:%S", &tm));
		at = timegm(&tm);
		assert_true(at >= before && at <= time(NULL) + 1);
	}
	regfree(&re);
}

static void
test_levels(void **state)
{
	size_t len;
	char *buf;

	(void)state;
	/* at info: debug is left out; notice is written as info, crit and
	 * err as error */
	log_to_file(LOG_FORMAT_KV, LOG_INFO);
	log_event(LOG_DEBUG, "t", "a", LF_UINT("n", 1));
	log_debug("not %s", "either");
	log_event(LOG_INFO, "t", "b", LF_UINT("n", 2));
	log_event(LOG_NOTICE, "t", "c", LF_UINT("n", 3));
	log_event(LOG_WARNING, "t", "d", LF_UINT("n", 4));
	log_event(LOG_ERR, "t", "e", LF_UINT("n", 5));
	log_event(LOG_CRIT, "t", "f", LF_UINT("n", 6));
	buf = log_file_take(&len);
	const char *want[] = {
	    " level=info proc=test fac=t event=b n=2\n",
	    " level=info proc=test fac=t event=c n=3\n",
	    " level=warning proc=test fac=t event=d n=4\n",
	    " level=error proc=test fac=t event=e n=5\n",
	    " level=error proc=test fac=t event=f n=6\n",
	};
	const char *p = buf;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const char *nl = strchr(p, '\n');
		assert_non_null(nl);
		assert_int_equal((size_t)(nl + 1 - p), 24 + strlen(want[i]));
		assert_memory_equal(p + 24, want[i], strlen(want[i]));
		p = nl + 1;
	}
	assert_int_equal(*p, '\0');
	free(buf);

	/* at warning: info is left out too; at debug, everything */
	log_to_file(LOG_FORMAT_KV, LOG_WARNING);
	log_event(LOG_INFO, "t", "b", LF_UINT("n", 2));
	log_info("no");
	buf = log_file_take(&len);
	assert_int_equal(len, 0);
	free(buf);
	log_to_file(LOG_FORMAT_KV, LOG_DEBUG);
	log_debug("yes %d", 1);
	buf = log_file_take(&len);
	assert_non_null(strstr(buf, " level=debug proc=test fac=daemon "
				    "event=message msg=\"yes 1\"\n"));
	free(buf);
}

static void
test_messages(void **state)
{
	struct got g;

	(void)state;
	log_to_file(LOG_FORMAT_KV, LOG_INFO);
	errno = ENOENT;
	log_warn("open %s", "/x y");
	only_line(LOG_FORMAT_KV, &g, NULL);
	assert_string_equal(field(&g, "level"), "warning");
	assert_string_equal(field(&g, "fac"), "daemon");
	assert_string_equal(field(&g, "event"), "message");
	char *want = NULL;
	assert_true(asprintf(&want, "open /x y: %s", strerror(ENOENT)) > 0);
	assert_string_equal(field(&g, "msg"), want);
	free(want);

	/* a message is one value: a line break or a planted field in it
	 * stays inside */
	log_to_file(LOG_FORMAT_KV, LOG_INFO);
	log_warnx("x\nlevel=error event=forged");
	only_line(LOG_FORMAT_KV, &g, NULL);
	assert_int_equal(g.n, 6);
	assert_string_equal(field(&g, "level"), "warning");
	assert_string_equal(field(&g, "msg"), "x\nlevel=error event=forged");
}

static void
test_process_name_is_bounded(void **state)
{
	struct got g;
	char name[64];

	(void)state;
	memset(name, 'p', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	log_to_file(LOG_FORMAT_KV, LOG_INFO);
	log_set_process(name);
	log_event(LOG_INFO, "t", "e", LF_UINT("n", 1));
	only_line(LOG_FORMAT_KV, &g, NULL);
	assert_int_equal(strlen(field(&g, "proc")), 31);
	assert_memory_equal(field(&g, "proc"), name, 31);
	log_set_process("test");
}

/* Emits the event with three values of 1000 'v', a short one, and one
 * of n 'w'. */
static void
emit_sized(size_t n)
{
	static char v[1000], w[LINE_MAX_BYTES];

	memset(v, 'v', sizeof(v));
	memset(w, 'w', sizeof(w));
	log_event(LOG_INFO, "t", "big", LF_BYTES("a", v, sizeof(v)),
		  LF_BYTES("b", v, sizeof(v)), LF_BYTES("c", v, sizeof(v)),
		  LF_UINT("z", 9), LF_BYTES("d", w, n));
}

/*
 * The bound: a line grows with its fields until one does not fit; that
 * one and all after it are left out whole, truncated=yes is added, and
 * the line is still at most 4096 bytes with its newline.
 */
static void
test_truncation_boundary(void **state)
{
	struct got g;
	size_t len, prev = 0, fit = 0;

	(void)state;
	for (int fmt = LOG_FORMAT_KV; fmt <= LOG_FORMAT_JSON; fmt++) {
		fit = 0;
		for (size_t n = 900; n <= 1024; n++) {
			log_to_file(fmt, LOG_INFO);
			emit_sized(n);
			only_line(fmt, &g, &len);
			assert_true(len <= LINE_MAX_BYTES);
			if (field(&g, "truncated") == NULL) {
				/* whole: one byte more for each byte of d */
				assert_int_equal(fit, 0);
				if (n > 900)
					assert_int_equal(len, prev + 1);
				assert_int_equal(strlen(field(&g, "d")), n);
				assert_string_equal(field(&g, "z"), "9");
				prev = len;
				continue;
			}
			if (fit == 0)
				fit = n - 1;
			/* cut: d left out whole, what came before kept */
			assert_string_equal(field(&g, "truncated"), "yes");
			assert_string_equal(g.key[g.n - 1], "truncated");
			assert_string_equal(g.key[g.n - 2], "z");
			assert_null(field(&g, "d"));
			assert_int_equal(strlen(field(&g, "c")), 1000);
		}
		/* the boundary is inside the range tried, and the longest
		 * whole line used the room up to a small reserve */
		assert_true(fit > 900 && fit < 1024);
		assert_true(prev <= LINE_MAX_BYTES);
		assert_true(prev > LINE_MAX_BYTES - 64);
	}
}

/*
 * One write() per line: four processes append 300 lines each (some near
 * the bound, some short) to one O_APPEND file at once; the file is
 * exactly those 1200 lines, each whole.
 */
static void
test_concurrent_appends_do_not_interleave(void **state)
{
	enum { PROCS = 4, LINES = 300 };
	size_t len, counts[PROCS] = {0};
	char *buf, *p, *nl;
	struct got g;

	(void)state;
	for (int fmt = LOG_FORMAT_KV; fmt <= LOG_FORMAT_JSON; fmt++) {
		log_to_file(fmt, LOG_INFO);
		pid_t pids[PROCS];
		for (int k = 0; k < PROCS; k++) {
			pids[k] = fork();
			assert_true(pids[k] >= 0);
			if (pids[k] == 0) {
				char name[16];
				snprintf(name, sizeof(name), "w%d", k);
				log_set_process(name);
				for (int i = 0; i < LINES; i++) {
					if (i % 2)
						emit_sized(1000);
					else
						log_event(LOG_INFO, "t",
							  "small",
							  LF_INT("i", i));
				}
				_exit(0);
			}
		}
		for (int k = 0; k < PROCS; k++) {
			int st;
			assert_int_equal(waitpid(pids[k], &st, 0), pids[k]);
			assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		}
		buf = log_file_take(&len);
		memset(counts, 0, sizeof(counts));
		for (p = buf; p < buf + len; p = nl + 1) {
			nl = memchr(p, '\n', (size_t)(buf + len - p));
			assert_non_null(nl);
			assert_true(nl + 1 - p <= LINE_MAX_BYTES);
			parse_line(fmt, p, (size_t)(nl - p), &g);
			const char *proc = field(&g, "proc");
			assert_non_null(proc);
			assert_true(proc[0] == 'w' && proc[1] >= '0' &&
				    proc[1] < '0' + PROCS && proc[2] == '\0');
			if (strcmp(field(&g, "event"), "big") == 0)
				assert_string_equal(field(&g, "truncated"),
						    "yes");
			else
				assert_non_null(field(&g, "i"));
			counts[proc[1] - '0']++;
		}
		for (int k = 0; k < PROCS; k++)
			assert_int_equal(counts[k], LINES);
		free(buf);
		log_set_process("test");
	}
}

/* log_set_fd takes the descriptor over and closes the one before. */
static void
test_set_fd(void **state)
{
	int p1[2], p2[2], keep, none = -1;
	char c;

	(void)state;
	assert_int_equal(pipe(p1), 0);
	assert_int_equal(pipe(p2), 0);
	keep = p1[1];
	log_set_fd(&p1[1]);
	assert_int_equal(p1[1], -1);
	log_set_fd(&none);	/* -1: nothing changes */
	log_set_fd(&p2[1]);
	/* the first pipe's write end was closed: its reader sees the end */
	assert_int_equal(fcntl(keep, F_GETFD), -1);
	assert_int_equal(errno, EBADF);
	assert_int_equal(read(p1[0], &c, 1), 0);
	log_set_format(LOG_FORMAT_KV, LOG_INFO);
	log_event(LOG_INFO, "t", "e", LF_UINT("n", 1));
	assert_int_equal(read(p2[0], &c, 1), 1);
	close(p1[0]);
	close(p2[0]);
}

/* log_init starts over on stderr and closes a descriptor set before. */
static void
test_init_closes_previous_fd(void **state)
{
	int p[2], keep;
	char c;

	(void)state;
	assert_int_equal(pipe(p), 0);
	keep = p[1];
	log_set_fd(&p[1]);
	log_init("test", LOG_FORMAT_KV, LOG_INFO);
	assert_int_equal(fcntl(keep, F_GETFD), -1);
	assert_int_equal(errno, EBADF);
	assert_int_equal(read(p[0], &c, 1), 0);
	close(p[0]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_head_fields_in_both_formats),
		cmocka_unit_test(test_json_line_is_one_object),
		cmocka_unit_test(test_timestamp),
		cmocka_unit_test(test_levels),
		cmocka_unit_test(test_messages),
		cmocka_unit_test(test_process_name_is_bounded),
		cmocka_unit_test(test_truncation_boundary),
		cmocka_unit_test(test_concurrent_appends_do_not_interleave),
		cmocka_unit_test(test_set_fd),
		cmocka_unit_test(test_init_closes_previous_fd),
	};

	log_init("test", LOG_FORMAT_KV, LOG_INFO);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
