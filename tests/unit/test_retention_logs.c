/*
 * Tests for the names of rotated log files (store/retention.c): which
 * names retention.logs may remove, and the day each one names. Table
 * driven: a current file, a wrong date or another suffix never matches.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "unit.h"

#include "store/retention.h"

static const struct {
	const char *name;
	int ok;
	size_t base;		/* length of NAME.log */
	int y, m, d;
} cases[] = {
    {"mail.log.2026-12-06", 0, 8, 2026, 12, 6},
    {"audit.log.2024-02-29", 0, 9, 2024, 2, 29},
    {"x.log.1999-01-31", 0, 5, 1999, 1, 31},
    {"mail.log", -1, 0, 0, 0, 0},
    {"audit.log", -1, 0, 0, 0, 0},
    {".log.2026-12-06", -1, 0, 0, 0, 0},
    {"mail.log.1", -1, 0, 0, 0, 0},
    {"mail.log.2026-12-6", -1, 0, 0, 0, 0},
    {"mail.log.2026-13-01", -1, 0, 0, 0, 0},
    {"mail.log.2026-02-30", -1, 0, 0, 0, 0},
    {"mail.log.2026-12-00", -1, 0, 0, 0, 0},
    {"mail.log.2026_12_06", -1, 0, 0, 0, 0},
    {"mail.txt.2026-12-06", -1, 0, 0, 0, 0},
    {"mail.log.2026-12-06.gz", -1, 0, 0, 0, 0},
    {"mail.log.20261206", -1, 0, 0, 0, 0},
    {"mail.log.+026-12-06", -1, 0, 0, 0, 0},
};

static void
test_names(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t base = 0;
		time_t day = 0;
		int r = retention_log_name(cases[i].name, &base, &day);

		if (r != cases[i].ok)
			fail_msg("%s: %d, wanted %d", cases[i].name, r,
				 cases[i].ok);
		if (r < 0)
			continue;
		struct tm tm;
		localtime_r(&day, &tm);
		assert_int_equal(base, cases[i].base);
		assert_int_equal(tm.tm_year + 1900, cases[i].y);
		assert_int_equal(tm.tm_mon + 1, cases[i].m);
		assert_int_equal(tm.tm_mday, cases[i].d);
		assert_int_equal(tm.tm_hour, 0);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
