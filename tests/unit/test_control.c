/*
 * The control socket's command lines (mta/control.c): what parses to
 * which command, what is not a command, and a target that is not a
 * queue id. The exchange over the socket is test_admin.py's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
