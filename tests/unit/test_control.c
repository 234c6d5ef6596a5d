/*
 * The control socket (mta/control.c): what command lines parse to, and
 * both halves talking over a real socket — the client in a child
 * process, the server in this one's event loop — with the answers and
 * the log line each command gives. The daemon's use of it is
 * test_queue_runner.py's and test_admin.py's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "unit.h"
#include "lib/log.h"
#include "mta/control.h"

#define ID "0123456789abcdef"

static const struct {
	const char *line;
	int ret;
	enum control_op op;
	const char *target;
	bool bounce;
} rows[] = {
	{"flush", 0, CONTROL_FLUSH, NULL, false},
	{"hold " ID, 0, CONTROL_HOLD, ID, false},
	{"hold all", 0, CONTROL_HOLD, "all", false},
	{"release " ID, 0, CONTROL_RELEASE, ID, false},
	{"delete " ID, 0, CONTROL_DELETE, ID, false},
	{"delete all bounce", 0, CONTROL_DELETE, "all", true},
	{"delete " ID " bounce", 0, CONTROL_DELETE, ID, true},
	{"delete  " ID, 0, CONTROL_DELETE, ID, false},	/* runs of spaces */
	{"hold ../../etc/passwd", -2, CONTROL_HOLD, "../../etc/passwd", false},
	{"release 0123456789ABCDEF", -2, CONTROL_RELEASE, "0123456789ABCDEF",
	 false},
	{"", -1, 0, NULL, false},
	{"flush now", -1, 0, NULL, false},
	{"FLUSH", -1, 0, NULL, false},
	{"hold", -1, 0, NULL, false},
	{"hold " ID " bounce", -1, 0, NULL, false},
	{"delete " ID " later", -1, 0, NULL, false},
	{"delete " ID " bounce x", -1, 0, NULL, false},
	{"purge " ID, -1, 0, NULL, false},
};

static void
test_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char line[128];
		struct control_cmd cmd;
		int ret;

		snprintf(line, sizeof(line), "%s", rows[i].line);
		ret = control_parse(line, &cmd);
		if (ret != rows[i].ret)
			fail_msg("\"%s\": %d, want %d", rows[i].line, ret,
				 rows[i].ret);
		if (ret == -1)
			continue;
		assert_int_equal(cmd.op, rows[i].op);
		assert_int_equal(cmd.bounce, rows[i].bounce);
		if (rows[i].target == NULL)
			assert_null(cmd.target);
		else
			assert_string_equal(cmd.target, rows[i].target);
	}
}

static void
test_names(void **state)
{
	char *p;

	(void)state;
	assert_string_equal(control_op_name(CONTROL_FLUSH), "flush");
	assert_string_equal(control_op_name(CONTROL_HOLD), "hold");
	assert_string_equal(control_op_name(CONTROL_RELEASE), "release");
	assert_string_equal(control_op_name(CONTROL_DELETE), "delete");
	p = control_path("/var/lib/godwit");
	assert_string_equal(p, "/var/lib/godwit/control/control.sock");
	free(p);
}

/* ---- over the socket ------------------------------------------------ */

struct served {
	int count;		/* what the runner says it did */
	int calls;
	struct control_cmd last;
	char target[64];
};

static int
serve(const struct control_cmd *cmd, void *arg)
{
	struct served *sv = arg;

	sv->calls++;
	sv->last = *cmd;
	snprintf(sv->target, sizeof(sv->target), "%s",
		 cmd->target != NULL ? cmd->target : "");
	return sv->count;
}

/*
 * Sends cmd from a child and serves it here; returns the child's
 * answer ("NULL errno=N" when control_request gave none) and, in log,
 * what the server logged.
 */
static void
exchange(struct event_base *base, const char *path,
	 const struct control_cmd *cmd, char *answer, size_t asize,
	 char *log, size_t lsize)
{
	int ap[2], lp[2], status;
	ssize_t n;
	pid_t pid;

	assert_int_equal(pipe(ap), 0);
	assert_int_equal(pipe(lp), 0);
	log_set_fd(&lp[1]);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char *a = control_request(path, cmd), buf[600];
		int len = a != NULL ? snprintf(buf, sizeof(buf), "%s", a)
				    : snprintf(buf, sizeof(buf), "NULL errno=%d",
					       errno);
		_exit(write(ap[1], buf, (size_t)len) == len ? 0 : 1);
	}
	close(ap[1]);
	while (waitpid(pid, &status, WNOHANG) == 0)
		event_base_loop(base, EVLOOP_NONBLOCK);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	n = read(ap[0], answer, asize - 1);
	answer[n > 0 ? n : 0] = '\0';
	close(ap[0]);
	lp[1] = dup(2);		/* closes the pipe's write end */
	log_set_fd(&lp[1]);
	n = read(lp[0], log, lsize - 1);
	log[n > 0 ? n : 0] = '\0';
	close(lp[0]);
}

static void
test_socket(void **state)
{
	char dir[] = "/tmp/godwit-test-control-XXXXXX", answer[600], log[600];
	struct event_base *base = event_base_new();
	struct served sv = {0};
	struct control *ctl;
	struct control_cmd cmd = {0};
	char *path;

	(void)state;
	assert_non_null(mkdtemp(dir));
	path = malloc(strlen(dir) + 16);
	sprintf(path, "%s/control.sock", dir);
	log_init("test", LOG_FORMAT_KV, LOG_INFO);
	ctl = control_listen(base, path, serve, &sv);
	assert_non_null(ctl);

	cmd.op = CONTROL_HOLD;
	cmd.target = ID;
	sv.count = 1;
	exchange(base, path, &cmd, answer, sizeof(answer), log, sizeof(log));
	assert_string_equal(answer, "ok 1");
	assert_int_equal(sv.last.op, CONTROL_HOLD);
	assert_string_equal(sv.target, ID);
	assert_non_null(strstr(log, "fac=queue event=hold target=" ID
				    " messages=1"));

	sv.count = 0;	/* one id, nothing done */
	exchange(base, path, &cmd, answer, sizeof(answer), log, sizeof(log));
	assert_string_equal(answer, "error " ID ": no such message");
	assert_null(strstr(log, "event=hold"));

	cmd.target = "all";	/* all, nothing done: fine */
	exchange(base, path, &cmd, answer, sizeof(answer), log, sizeof(log));
	assert_string_equal(answer, "ok 0");

	cmd.op = CONTROL_DELETE;
	cmd.bounce = true;
	sv.count = 7;
	exchange(base, path, &cmd, answer, sizeof(answer), log, sizeof(log));
	assert_string_equal(answer, "ok 7");
	assert_true(sv.last.bounce);
	assert_non_null(strstr(log, "event=delete target=all messages=7 "
				    "bounce=yes"));

	cmd.op = CONTROL_FLUSH;
	cmd.target = NULL;
	cmd.bounce = false;
	sv.count = 3;
	exchange(base, path, &cmd, answer, sizeof(answer), log, sizeof(log));
	assert_string_equal(answer, "ok 3");
	assert_non_null(strstr(log, "fac=queue event=flush messages=3"));
	assert_int_equal(sv.calls, 5);

	cmd.op = CONTROL_RELEASE;	/* not an id: the runner is not asked */
	cmd.target = "nonsense";
	exchange(base, path, &cmd, answer, sizeof(answer), log, sizeof(log));
	assert_string_equal(answer, "error nonsense: not a queue id");
	assert_int_equal(sv.calls, 5);

	/* gone: the name is removed, and a client finds nobody */
	control_free(&ctl);
	assert_null(ctl);
	assert_int_equal(access(path, F_OK), -1);
	cmd.target = ID;
	exchange(base, path, &cmd, answer, sizeof(answer), log, sizeof(log));
	assert_true(strncmp(answer, "NULL errno=", 11) == 0);
	free(path);
	rmdir(dir);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_socket),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
