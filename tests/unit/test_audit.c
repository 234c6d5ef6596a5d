/*
 * The audit log's chain: lib/hashchain (the SHA-256 vector, the shape of
 * a line as a table, a walk that finds a changed line), store/audit (a
 * record with hostile values stays one line; appends from several
 * processes at once stay one linear chain; a torn tail is cut off;
 * rotation links the files) and ops/audit_verify over what was written.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit.h"

#include "lib/hashchain.h"
#include "lib/xalloc.h"
#include "ops/audit_verify.h"
#include "store/audit.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ---- lib/hashchain ---------------------------------------------------- */

static void
test_sha256_vector(void **state)
{
	char hex[HASHCHAIN_HEX_LEN + 1];

	(void)state;
	hashchain_sha256_hex("abc", 3, hex);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223"
				 "b00361a396177a9cb410ff61f20015ad");
	assert_true(hashchain_is_hash(hex));
	assert_false(hashchain_is_hash("BA7816BF"));
}

#define H64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static const struct shape {
	const char *line;
	int ok;
} shapes[] = {
	{"{\"prev\":\"" H64 "\",\"a\":1}", 1},
	{"{\"prev\":\"" H64 "\"}", 1},
	{"", 0},
	{"{\"prev\":\"" H64 "\",\"a\":1", 0},		/* no } */
	{"{\"prev\":\"" H64 "X,\"a\":1}", 0},		/* no closing " */
	{"{\"prev\":\"0123\",\"a\":1}", 0},			/* short */
	{"{\"prev\":\"0123456789ABCDEF0123456789abcdef0123456789abcdef"
	 "0123456789abcdef\",\"a\":1}", 0},			/* upper case */
	{"{\"prev\" :\"" H64 "\",\"a\":1}", 0},
	{"{\"a\":1,\"prev\":\"" H64 "\"}", 0},		/* not first */
	{"{\"prev\":\"" H64 "\",\"a\":\"x\ty\"}", 0},	/* a raw tab */
	{"{\"prev\":\"" H64 "\",\"a\":\"\x7f\"}", 0},
};

static void
test_line_shapes(void **state)
{
	char prev[HASHCHAIN_HEX_LEN + 1];
	const char *why;

	(void)state;
	for (size_t i = 0; i < N(shapes); i++) {
		why = NULL;
		int r = hashchain_line_prev(shapes[i].line,
					    strlen(shapes[i].line), prev, &why);
		if (shapes[i].ok) {
			assert_int_equal(r, 0);
			assert_string_equal(prev, H64);
		} else {
			if (r != -1)
				fail_msg("row %zu accepted", i);
			assert_non_null(why);
		}
	}
}

/* Three linked lines; a changed middle line breaks the third. */
static void
test_walk(void **state)
{
	char l[3][160], h[HASHCHAIN_HEX_LEN + 1];
	struct hashchain_walk w;
	const char *why;

	(void)state;
	snprintf(l[0], sizeof(l[0]), "{\"prev\":\"%s\",\"n\":0}", H64);
	hashchain_sha256_hex(l[0], strlen(l[0]), h);
	snprintf(l[1], sizeof(l[1]), "{\"prev\":\"%s\",\"n\":1}", h);
	hashchain_sha256_hex(l[1], strlen(l[1]), h);
	snprintf(l[2], sizeof(l[2]), "{\"prev\":\"%s\",\"n\":2}", h);
	hashchain_walk_init(&w);
	for (int i = 0; i < 3; i++)
		assert_int_equal(hashchain_walk_line(&w, l[i], strlen(l[i]),
						     &why), 0);
	assert_string_equal(w.first_prev, H64);	/* any start is taken */
	assert_int_equal(w.lines, 3);
	hashchain_sha256_hex(l[2], strlen(l[2]), h);
	assert_string_equal(w.head, h);

	l[1][strlen(l[1]) - 2] = '7';
	hashchain_walk_init(&w);
	assert_int_equal(hashchain_walk_line(&w, l[0], strlen(l[0]), &why), 0);
	assert_int_equal(hashchain_walk_line(&w, l[1], strlen(l[1]), &why), 0);
	assert_int_equal(hashchain_walk_line(&w, l[2], strlen(l[2]), &why),
			 -1);
	assert_non_null(strstr(why, "prev"));
}

/* ---- store/audit over a temporary data_dir ------------------------------ */

struct dirs {
	char dir[64];
	char log[96];
};

static int
setup(void **state)
{
	struct dirs *d = xcalloc(1, sizeof(*d));

	snprintf(d->dir, sizeof(d->dir), "/tmp/godwit-audit-XXXXXX");
	assert_non_null(mkdtemp(d->dir));
	snprintf(d->log, sizeof(d->log), "%s/log", d->dir);
	assert_int_equal(mkdir(d->log, 0750), 0);
	*state = d;
	return 0;
}

static int
teardown(void **state)
{
	struct dirs *d = *state;
	char *cmd = xasprintf("rm -rf '%s'", d->dir);

	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(d);
	return 0;
}

static void
verify_ok(const char *dir, size_t files, uint64_t lines)
{
	struct audit_verify_report rep;
	char *err = NULL;
	int r = audit_verify(dir, NULL, &rep, &err);

	if (r != 0)
		fail_msg("verify: %d %s %s:%llu %s", r, err ? err : "",
			 rep.file ? rep.file : "", (unsigned long long)rep.line,
			 rep.why ? rep.why : "");
	assert_int_equal(rep.files, files);
	assert_int_equal(rep.lines, lines);
	audit_verify_report_clear(&rep);
}

static char *
slurp(const char *path, size_t *len_r)
{
	FILE *fp = fopen(path, "rb");
	char *buf = xcalloc(1, 1 << 20);

	assert_non_null(fp);
	*len_r = fread(buf, 1, (1 << 20) - 1, fp);
	fclose(fp);
	return buf;
}

/* Values a client controls cannot make a second line or field. */
static void
test_hostile_values(void **state)
{
	struct dirs *d = *state;
	static char *const rcpts[] = {"a\"b@x", "c\nd@x", "\xff\xfe@x",
				      "e\xe2\x80\xa8" "f@x"};
	struct audit_rec r;
	char *rec, *err = NULL, *path, *text;
	size_t len, nl = 0;

	audit_rec_begin(&r, "message");
	audit_rec_str(&r, "sender", "x\",\"evil\":\"1\r\n{\"prev\":");
	audit_rec_strv(&r, "rcpts", rcpts, N(rcpts));
	audit_rec_uint(&r, "size", 42);
	audit_rec_bool(&r, "hold", true);
	rec = audit_rec_end(&r);
	assert_int_equal(audit_append_one(d->dir, rec, &err), 0);
	free(rec);
	path = xasprintf("%s/audit.log", d->log);
	text = slurp(path, &len);
	for (size_t i = 0; i < len; i++)
		nl += text[i] == '\n';
	assert_int_equal(nl, 1);
	assert_null(strstr(text, "\"evil\":"));
	assert_non_null(strstr(text, "\"size\":42,\"hold\":true}"));
	assert_non_null(strstr(text, "\"rcpts\":[\"a\\\"b@x\",\"c\\u000ad@x\","
				     "\"\\u00ff\\u00fe@x\",\"e\\u2028f@x\"]"));
	free(text);
	free(path);
	verify_ok(d->dir, 1, 1);
}

/* A long array is cut, the line stays under AUDIT_LINE_MAX. */
static void
test_long_record_is_cut(void **state)
{
	struct dirs *d = *state;
	size_t n = 3000;
	char **v = xcalloc(n, sizeof(*v));
	struct audit_rec r;
	char *rec, *err = NULL;

	(void)d;
	for (size_t i = 0; i < n; i++) {
		v[i] = xcalloc(1, 1001);
		memset(v[i], 'a' + (int)(i % 26), 1000);
	}
	audit_rec_begin(&r, "message");
	audit_rec_strv(&r, "rcpts", v, n);
	rec = audit_rec_end(&r);
	assert_true(strlen(rec) < AUDIT_LINE_MAX - 100);
	assert_non_null(strstr(rec, "],\"cut\":true"));
	assert_int_equal(audit_append_one(d->dir, rec, &err), 0);
	verify_ok(d->dir, 1, 1);
	free(rec);
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void
append_n(const char *dir, int who, int n)
{
	struct audit_log *al = audit_log_new(dir);
	char *err = NULL;

	for (int i = 0; i < n; i++) {
		struct audit_rec r;
		char *rec;

		audit_rec_begin(&r, "test");
		audit_rec_uint(&r, "who", (uint64_t)who);
		audit_rec_uint(&r, "i", (uint64_t)i);
		rec = audit_rec_end(&r);
		if (audit_log_append(al, &rec, 1, 0, NULL, &err) < 0)
			_exit(1);
		free(rec);
	}
	audit_log_free(&al);
}

/* Four processes append at once (each its own handle, as the workers'
 * committers do); one rotation in between: one linear chain. */
static void
test_concurrent_appends(void **state)
{
	struct dirs *d = *state;
	pid_t pids[4];
	int status;
	char *err = NULL, *name = NULL;

	for (int k = 0; k < 4; k++) {
		pids[k] = fork();
		assert_true(pids[k] >= 0);
		if (pids[k] == 0) {
			append_n(d->dir, k, 50);
			_exit(0);
		}
	}
	append_n(d->dir, 9, 5);
	assert_int_equal(audit_rotate(d->dir, "2026-01-01", (uid_t)-1,
				      (gid_t)-1, &name, &err), 0);
	assert_string_equal(name, "audit.log.2026-01-01");
	free(name);
	for (int k = 0; k < 4; k++) {
		assert_int_equal(waitpid(pids[k], &status, 0), pids[k]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	/* 4 * 50 + 5 lines and the new file's "rotate" line */
	verify_ok(d->dir, 2, 4 * 50 + 5 + 1);
}

/* Rotation names, their order, and an empty file not rotated. */
static void
test_rotation_names(void **state)
{
	struct dirs *d = *state;
	char *err = NULL, *name = NULL, **names;
	size_t n;

	assert_int_equal(audit_rotate(d->dir, "2026-01-01", (uid_t)-1,
				      (gid_t)-1, &name, &err), 0);
	assert_null(name);	/* nothing written yet */
	for (int i = 0; i < 12; i++) {
		append_n(d->dir, i, 1);
		assert_int_equal(audit_rotate(d->dir,
					      i < 11 ? "2026-01-02"
						     : "2025-12-31",
					      (uid_t)-1, (gid_t)-1, &name,
					      &err),
				 0);
		free(name);
	}
	assert_int_equal(audit_files(d->dir, &names, &n, &err), 0);
	assert_int_equal(n, 13);
	assert_string_equal(names[0], "audit.log.2025-12-31");
	assert_string_equal(names[1], "audit.log.2026-01-02");
	assert_string_equal(names[2], "audit.log.2026-01-02.1");
	assert_string_equal(names[3], "audit.log.2026-01-02.2");
	assert_string_equal(names[11], "audit.log.2026-01-02.10");
	assert_string_equal(names[12], "audit.log");
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* A line torn by a crash (no newline) is cut off by the next append. */
static void
test_torn_tail(void **state)
{
	struct dirs *d = *state;
	char *path = xasprintf("%s/audit.log", d->log);
	char head[HASHCHAIN_HEX_LEN + 1], head2[HASHCHAIN_HEX_LEN + 1];
	char *err = NULL;
	int fd;

	append_n(d->dir, 1, 2);
	assert_int_equal(audit_head(d->dir, head, &err), 0);
	fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "{\"prev\":\"", 9), 9);
	close(fd);
	/* the head is still the last whole line's; verify names the tear */
	assert_int_equal(audit_head(d->dir, head2, &err), 0);
	assert_string_equal(head, head2);
	{
		struct audit_verify_report rep;
		assert_int_equal(audit_verify(d->dir, NULL, &rep, &err), 1);
		assert_int_equal(rep.line, 3);
		assert_non_null(strstr(rep.why, "incomplete"));
		audit_verify_report_clear(&rep);
	}
	append_n(d->dir, 2, 1);
	verify_ok(d->dir, 1, 3);
	free(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256_vector),
		cmocka_unit_test(test_line_shapes),
		cmocka_unit_test(test_walk),
		cmocka_unit_test_setup_teardown(test_hostile_values, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_long_record_is_cut,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_appends,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotation_names, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
