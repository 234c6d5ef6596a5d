/* Queue file format: round trip, xtext, and refusal of torn files. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include "lib/util.h"
#include "store/queue.h"

static void
fill(struct queue_envelope *e)
{
	memset(e, 0, sizeof(*e));
	queue_id_new(e->id);
	e->arrival = 1795416528;
	e->client_ip = strdup("2001:db8::1");
	e->helo = strdup("odd helo with spaces+plus=eq\n");
	e->sender = strdup("");		/* the null sender */
	e->body = SMTP_BODY_8BITMIME;
	e->smtputf8 = true;
	e->ret = strdup("");
	e->envid = strdup("");
	e->auth = strdup("al ice@example.test");
	queue_rcpt_add(e, "b\xc3\xbc@example.net", 6, "rfc822;b@example.net");
	queue_rcpt_add(e, "c@example.org", 0, "");
	e->size = 5;
}

static void
test_roundtrip(void **state)
{
	struct queue_envelope e, r;
	size_t len, hlen;
	char *text, *err = NULL;

	(void)state;
	fill(&e);
	text = queue_envelope_format(&e, &len);
	assert_non_null(text);
	/* no raw space or newline inside a value */
	assert_null(strstr(text, "with spaces"));
	assert_int_equal(queue_envelope_parse(text, len, &r, &hlen, &err), 0);
	assert_int_equal(hlen, len);
	assert_string_equal(r.id, e.id);
	assert_int_equal(r.arrival, e.arrival);
	assert_string_equal(r.client_ip, e.client_ip);
	assert_string_equal(r.helo, e.helo);
	assert_string_equal(r.sender, "");
	assert_int_equal(r.body, SMTP_BODY_8BITMIME);
	assert_true(r.smtputf8);
	assert_string_equal(r.auth, "al ice@example.test");
	assert_int_equal(r.nrcpts, 2);
	assert_string_equal(r.rcpts[0].addr, "b\xc3\xbc@example.net");
	assert_int_equal(r.rcpts[0].notify, 6);
	assert_string_equal(r.rcpts[0].orcpt, "rfc822;b@example.net");
	assert_string_equal(r.rcpts[1].orcpt, "");
	assert_int_equal(r.size, 5);
	queue_envelope_clear(&r);
	free(text);
	/* without a user no auth line is written, and it reads as "" */
	free(e.auth);
	e.auth = NULL;
	text = queue_envelope_format(&e, &len);
	assert_null(strstr(text, "\nauth "));
	assert_int_equal(queue_envelope_parse(text, len, &r, &hlen, &err), 0);
	assert_string_equal(r.auth, "");
	queue_envelope_clear(&r);
	queue_envelope_clear(&e);
	free(text);
}

/* A message made by the daemon itself (an alert): a complete queue file
 * in incoming/, nothing left in tmp/. */
static void
test_inject(void **state)
{
	char dir[] = "/tmp/godwit-test-inject-XXXXXX", path[256];
	struct queue_envelope e, r;
	const char *msg = "Subject: x\n\nbody\n";
	char *err = NULL, **names;
	uint64_t off;
	size_t n;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/queue/tmp", dir);
	assert_int_equal(mkdir_p(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/queue/incoming", dir);
	assert_int_equal(mkdir_p(path, 0700), 0);
	fill(&e);
	assert_int_equal(queue_inject(dir, &e, msg, strlen(msg), (uid_t)-1,
				      (gid_t)-1, &err), 0);
	snprintf(path, sizeof(path), "%s/queue/incoming/%s", dir, e.id);
	assert_int_equal(queue_envelope_read(path, &r, &off, &err), 0);
	assert_int_equal(r.size, strlen(msg));
	assert_int_equal(r.nrcpts, 2);
	queue_envelope_clear(&r);
	assert_null(queue_dir_names(dir, "tmp", &n));
	assert_int_equal(n, 0);
	/* the same id again: refused, the first left alone */
	assert_int_equal(queue_inject(dir, &e, msg, 3, (uid_t)-1, (gid_t)-1,
				      &err), -1);
	assert_non_null(err);
	free(err);
	names = queue_dir_names(dir, "incoming", &n);
	assert_int_equal(n, 1);
	free(names[0]);
	free(names);
	queue_envelope_clear(&e);
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	assert_int_equal(system(path), 0);
}

struct bad_case {
	const char *name;
	const char *text;
};

static const struct bad_case bad[] = {
	{"wrong magic", "godwit-queue 2\nid 0123456789abcdef\n"},
	{"no blank line", "godwit-queue 1\nid 0123456789abcdef\nsender +\n"},
	{"bad id", "godwit-queue 1\nid 0123\nsender +\nrcpt a@b 0 +\n"
		   "size 0\n\n"},
	{"no recipients", "godwit-queue 1\nid 0123456789abcdef\nsender +\n"
			  "size 0\n\n"},
	{"no size", "godwit-queue 1\nid 0123456789abcdef\nsender +\n"
		    "rcpt a@b 0 +\n\n"},
	{"bad xtext", "godwit-queue 1\nid 0123456789abcdef\nsender a+4\n"
		      "rcpt a@b 0 +\nsize 0\n\n"},
	{"repeated key", "godwit-queue 1\nid 0123456789abcdef\nsender +\n"
			 "sender +\nrcpt a@b 0 +\nsize 0\n\n"},
	{"unknown key", "godwit-queue 1\nid 0123456789abcdef\nsender +\n"
			"bogus 1\nrcpt a@b 0 +\nsize 0\n\n"},
	{"notify range", "godwit-queue 1\nid 0123456789abcdef\nsender +\n"
			 "rcpt a@b 99 +\nsize 0\n\n"},
};

static void
test_bad(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct queue_envelope e;
		size_t hlen;
		char *err = NULL;
		if (queue_envelope_parse(bad[i].text, strlen(bad[i].text), &e,
					 &hlen, &err) == 0)
			fail_msg("%s: accepted", bad[i].name);
		assert_non_null(err);
		free(err);
	}
}

/* A file cut short, or without its end marker, is refused. */
static void
test_torn(void **state)
{
	struct queue_envelope e, r;
	char dir[] = "/tmp/godwit-test-queue-XXXXXX", path[128], *text, *err;
	size_t len;
	uint64_t off;
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/q", dir);
	fill(&e);
	text = queue_envelope_format(&e, &len);
	for (int variant = 0; variant < 3; variant++) {
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		assert_true(fd >= 0);
		assert_int_equal(write_full(fd, text, len), 0);
		assert_int_equal(write_full(fd, "hello", 5), 0);
		if (variant == 0)
			assert_int_equal(write_full(fd, QUEUE_END,
						    strlen(QUEUE_END)), 0);
		else if (variant == 1)	/* torn: end marker missing */
			;
		else	/* right length, wrong marker */
			assert_int_equal(write_full(fd, "\n.end godwit-queuX\n",
						    strlen(QUEUE_END)), 0);
		close(fd);
		err = NULL;
		int rc = queue_envelope_read(path, &r, &off, &err);
		if (variant == 0) {
			assert_int_equal(rc, 0);
			assert_int_equal(off, len);
			queue_envelope_clear(&r);
		} else {
			assert_int_equal(rc, -1);
			assert_non_null(strstr(err, "torn"));
			free(err);
		}
	}
	unlink(path);
	rmdir(dir);
	free(text);
	queue_envelope_clear(&e);
}

/*
 * A size so large that header + size + end marker wraps around to the
 * file's length: the file below has its end marker where that wrapped
 * sum puts it (17 octets after the blank line, whose LF completes it),
 * so only the bound on size refuses it.
 */
static void
test_size_wrap(void **state)
{
	struct queue_envelope e, r;
	char dir[] = "/tmp/godwit-test-queue-XXXXXX", path[128], *text, *err;
	size_t len, hlen;
	uint64_t off;
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/q", dir);
	fill(&e);
	e.size = UINT64_MAX;
	text = queue_envelope_format(&e, &len);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write_full(fd, text, len), 0);
	assert_int_equal(write_full(fd, QUEUE_END + 1, strlen(QUEUE_END) - 1),
			 0);
	close(fd);
	err = NULL;
	assert_int_equal(queue_envelope_read(path, &r, &off, &err), -1);
	assert_non_null(err);
	free(err);
	/* the bound itself: the largest size parses, one more does not */
	free(text);
	e.size = QUEUE_SIZE_MAX;
	text = queue_envelope_format(&e, &len);
	assert_int_equal(queue_envelope_parse(text, len, &r, &hlen, &err), 0);
	assert_int_equal(r.size, QUEUE_SIZE_MAX);
	queue_envelope_clear(&r);
	free(text);
	e.size = QUEUE_SIZE_MAX + 1;
	text = queue_envelope_format(&e, &len);
	err = NULL;
	assert_int_equal(queue_envelope_parse(text, len, &r, &hlen, &err), -1);
	free(err);
	free(text);
	unlink(path);
	rmdir(dir);
	queue_envelope_clear(&e);
}

static void
test_ids(void **state)
{
	char a[QUEUE_ID_LEN + 1], b[QUEUE_ID_LEN + 1];

	(void)state;
	queue_id_init(5);
	queue_id_new(a);
	usleep(2000);
	queue_id_new(b);
	assert_int_equal(strtoul(b + 11, NULL, 16) >> 14, 5);	/* the slot */
	/* many in the same millisecond never collide */
	char ids[1000][QUEUE_ID_LEN + 1];
	for (int i = 0; i < 1000; i++)
		queue_id_new(ids[i]);
	for (int i = 0; i < 1000; i++)
		for (int j = i + 1; j < 1000; j++)
			assert_string_not_equal(ids[i], ids[j]);
	assert_true(queue_id_valid(a));
	assert_true(strcmp(a, b) < 0);	/* sortable by time */
	assert_false(queue_id_valid("0123456789ABCDEF"));
	assert_false(queue_id_valid("../../etc/passwd"));
	assert_false(queue_id_valid("0123456789abcde"));
}

static bool
exists(const char *dir, const char *sub, const char *id)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/queue/%s/%s", dir, sub, id);
	return access(path, F_OK) == 0;
}

/*
 * queue_move_batch: out of incoming/ by link and unlink, elsewhere by
 * rename; an id named twice, not an id, or gone is not moved; a message
 * already under both names (a power cut mid-move) is moved once.
 */
static void
test_move_batch(void **state)
{
	char dir[] = "/tmp/godwit-test-queue-XXXXXX", path[256], *err = NULL;
	char ids[4][QUEUE_ID_LEN + 1];
	const char *v[7];
	bool moved[7];

	(void)state;
	assert_non_null(mkdtemp(dir));
	for (int i = 0; i < 5; i++) {
		static const char *const sub[] = {"incoming", "active",
						  "deferred", "hold", "state"};
		snprintf(path, sizeof(path), "%s/queue/%s", dir, sub[i]);
		assert_int_equal(mkdir_p(path, 0700), 0);
	}
	queue_id_init(1);
	for (int i = 0; i < 4; i++) {
		queue_id_new(ids[i]);
		snprintf(path, sizeof(path), "%s/queue/incoming/%s", dir,
			 ids[i]);
		close(open(path, O_WRONLY | O_CREAT | O_EXCL, 0600));
	}
	/* ids[1] left in both by an earlier move */
	{
		char to[256];
		snprintf(path, sizeof(path), "%s/queue/incoming/%s", dir,
			 ids[1]);
		snprintf(to, sizeof(to), "%s/queue/active/%s", dir, ids[1]);
		assert_int_equal(link(path, to), 0);
	}
	v[0] = ids[2];
	v[1] = ids[0];
	v[2] = "../../etc/passwd";
	v[3] = ids[1];
	v[4] = ids[0];		/* twice */
	v[5] = "0123456789abcdef";	/* not there */
	v[6] = ids[3];
	assert_int_equal(queue_move_batch(dir, "incoming", "active", v, 7,
					  moved), 4);
	assert_true(moved[0] && moved[1] && moved[3] && moved[6]);
	assert_false(moved[2] || moved[4] || moved[5]);
	for (int i = 0; i < 4; i++) {
		assert_true(exists(dir, "active", ids[i]));
		assert_false(exists(dir, "incoming", ids[i]));
	}
	/* and on by rename; what is gone is not moved */
	v[0] = ids[0];
	v[1] = ids[1];
	v[2] = ids[0];
	assert_int_equal(queue_move_batch(dir, "active", "deferred", v, 3,
					  moved), 2);
	assert_true(moved[0] && moved[1] && !moved[2]);
	assert_true(exists(dir, "deferred", ids[0]));
	assert_false(exists(dir, "active", ids[0]));
	assert_int_equal(queue_move_batch(dir, "active", "deferred", v, 0,
					  moved), 0);
	assert_int_equal(queue_move(dir, ids[0], "deferred", "hold"), 0);
	assert_int_equal(queue_move(dir, ids[0], "deferred", "hold"), -1);
	free(err);
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	assert_int_equal(system(path), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_inject),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_torn),
		cmocka_unit_test(test_size_wrap),
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_move_batch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
